/* turbo.h - a small, strict, multi-core HTTP/1.1 server in one header.

   USAGE
     In exactly one C (or C++) file of your program:

         #define TURBO_IMPL
         #include "turbo.h"

     Every other file includes "turbo.h" alone and sees the declarations.

   WHAT IT IS
     One event loop per thread (epoll on Linux, kqueue on BSD/macOS),
     each with its own SO_REUSEPORT listener (on macOS they share one); a
     strict HTTP/1.1 parser (keep-alive, pipelining, chunked bodies,
     100-continue); a router with {name} and {name...} captures; a JSON
     writer that streams into the response; streamed answers, files and
     WebSockets (RFC 6455). Needs libc and POSIX threads, nothing else.

   AN APP IN ONE SCREEN

         #define TURBO_IMPL
         #include "turbo.h"

         static void hello(turbo_req *req, turbo_res *res, void *user) {
             (void)req; (void)user;
             turbo_res_text(res, 200, "Hello, World!");
         }

         static void get_user(turbo_req *req, turbo_res *res, void *user) {
             turbo_str id = turbo_req_param(req, "id");   // a view into the request
             turbo_json *j = turbo_res_json(res, 200);    // application/json
             (void)user;
             turbo_json_object_begin(j);
             turbo_json_key(j, "id");
             turbo_json_stringn(j, id.ptr, id.len);
             turbo_json_object_end(j);
         }

         int main(void) {
             turbo_server *s = turbo_new(&(turbo_config){ .port = 8080 });
             if (turbo_get(s, "/", hello, NULL) || turbo_get(s, "/users/{id}", get_user, NULL)) {
                 fprintf(stderr, "%s\n", turbo_error(s));  // route "/a/{id" is missing "}"
                 return 1;
             }
             int rc = turbo_run(s);   // until SIGINT or SIGTERM, then drains: 0
             turbo_free(s);
             return rc;
         }

     cc -O2 app.c -o app -lpthread

   EXECUTION MODEL (README.md says more)
     Each of `threads` event loops (a "worker") is run by one thread, which
     reads, parses and calls the handler inline. A handler may block (a
     database call, a sleep, a lock): a monitor thread gives the loop of a
     handler still running after handoff_ms (1) to a spare thread, which
     serves the loop's other connections while the stuck thread finishes
     that one request, sends its answer and parks as a spare:

         loop A: thread 1 ---- handler blocks ...... answers, parks
                                    \-> thread 2 serves loop A on
     A route that overstayed once (or was registered TURBO_BLOCKING) gives
     its loop away before its handler starts. Spare threads are bounded by
     blocking_threads (64 per process); with none spare, its requests wait
     for one, in order, kept with their connections, while the loop serves
     the rest.
     So a handler runs on many threads, several at once: the `user` data it
     is given is shared (make it read-only, or guard it). From another
     thread only turbo_defer_resume, turbo_ws_send, turbo_ws_close and
     turbo_stop may be called.

   CONFIGURATION MACROS (define before including)
     TURBO_STATIC          make every function static (one translation unit)
     TURBO_MAX_HEADERS     header lines a request may carry, hard cap (100)
     TURBO_MAX_PARAMS      path captures a route may have (16)
     TURBO_JSON_MAX_DEPTH  nesting depth of the JSON writer (1024: what json.loads takes)
     TURBO_MALLOC, TURBO_REALLOC, TURBO_FREE   the allocator (libc's)
     TURBO_KQUEUE          kqueue even on Linux (with tests/kqueue_shim)
     TURBO_SHARED_LISTENER loops share one listening socket, as on macOS

   MEMORY RULE
     What turbo hands you (strings, requests, responses, writers) is valid
     until your handler returns: copy what you keep. What you hand turbo is
     copied before the call returns.

   WHAT TURBO ANSWERS BY ITSELF
     400 a malformed or ambiguous request (bad framing, bare CR/LF, bad Host),
         then close; 404 no route; 405 (with Allow) a route with other
         methods; OPTIONS: 200 with Allow; 408 a head or body too slow;
     413 a body over max_body; 414 a request line over max_request_line;
     100 Continue to Expect: 100-continue when the body is wanted, 417 to
         another Expect; 431 a head over max_header_bytes
         or max_headers; 500 a handler that answered nothing, invalid JSON,
         a status outside 200-599; 501 an unknown method or transfer coding;
     503 over max_connections; 505 an HTTP version other than 1.x.
     json_errors = 1 makes their bodies {"detail":"Not Found"}.

   NOT INCLUDED
     TLS and HTTP/2 (put nginx, HAProxy or a cloud balancer in front),
     compression, caching, cookies and sessions, permessage-deflate,
     request bodies over max_body.

   License: MIT, at the end of this file.
*/
#ifndef TURBO_H
#define TURBO_H

/* The implementation needs POSIX and Linux's accept4 even under -std=c99:
   this works when turbo.h is the first header of that file (otherwise
   compile it with -D_GNU_SOURCE). */
#if defined(TURBO_IMPL) && defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE
#endif

#include <stddef.h>
#include <stdint.h>

#if defined(TURBO_STATIC) && defined(__GNUC__)
#define TURBO_API static __attribute__((unused)) /* a program uses only some */
#elif defined(TURBO_STATIC)
#define TURBO_API static
#else
#define TURBO_API extern
#endif

#ifndef TURBO_MAX_HEADERS
#define TURBO_MAX_HEADERS 100
#endif
#ifndef TURBO_MAX_PARAMS
#define TURBO_MAX_PARAMS 16
#endif
#ifndef TURBO_JSON_MAX_DEPTH
#define TURBO_JSON_MAX_DEPTH 1024
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- API: types */

/* A view of bytes owned by someone else; not NUL-terminated. */
typedef struct turbo_str {
    const char *ptr;
    size_t len;
} turbo_str;

/* A growable byte buffer. `oom` is set when an allocation failed; later
   appends are then ignored, so one check at the end is enough. */
typedef struct turbo_buf {
    char *data;
    size_t len;
    size_t cap;
    int oom;
} turbo_buf;

/* Error codes of the JSON writer (turbo_json.error). */
enum {
    TURBO_JSON_OK = 0,
    TURBO_JSON_EXPECTED_KEY,   /* a value where an object wanted a key */
    TURBO_JSON_UNEXPECTED_KEY, /* a key outside an object, or twice */
    TURBO_JSON_BAD_END,        /* an end that does not match the open container */
    TURBO_JSON_TOO_DEEP,       /* nesting beyond TURBO_JSON_MAX_DEPTH */
    TURBO_JSON_NOT_FINITE,     /* NaN or an infinity */
    TURBO_JSON_AFTER_END,      /* a value after the top-level value was complete */
    TURBO_JSON_INCOMPLETE,     /* finished with containers open, or empty */
    TURBO_JSON_OOM             /* the output buffer could not grow */
};

/* The streaming JSON writer. Zero it with turbo_json_init; read `error`
   (first error, sticky) or call turbo_json_finish. Fields are private. */
typedef struct turbo_json {
    turbo_buf *out;
    int error;
    int depth;
    int state;                                           /* what the writer expects next: internal */
    unsigned char stack[(TURBO_JSON_MAX_DEPTH + 7) / 8]; /* a bit per level: 1 = object */
} turbo_json;

typedef struct turbo_server turbo_server;
typedef struct turbo_req turbo_req;
typedef struct turbo_res turbo_res;
typedef struct turbo_defer turbo_defer;

/* A request handler. Answer through `res` before returning (or defer it,
   see turbo_res_defer). A handler that answers nothing yields a 500. */
typedef void (*turbo_handler)(turbo_req *req, turbo_res *res, void *user);

/* Server settings. Zero means "the default" for every field, so set only
   what you care about: turbo_new(&(turbo_config){ .port = 9000 }). */
typedef struct turbo_config {
    const char *host;         /* address to bind: "0.0.0.0"; "::" = IPv6 (+IPv4) */
    int port;                 /* 8080; -1 asks the kernel for a free port */
    int threads;              /* event loops per process, a thread each; 0 = one per usable CPU */
    int processes;            /* prefork this many processes; 0 = no fork */
    int blocking_threads;     /* spare threads per process for handlers that block: 64 */
    int handoff_ms;           /* a handler running this long hands its loop over: 1 */
    int wait_timeout_ms;      /* a request waiting for a spare thread: 30000 (else 503) */
    int backlog;              /* listen(2) backlog: 1024 */
    size_t max_request_line;  /* bytes in the request line: 8192 (else 414) */
    size_t max_header_bytes;  /* bytes in the whole head: 32768 (else 431) */
    int max_headers;          /* header lines: 100, at most TURBO_MAX_HEADERS (else 431) */
    size_t max_body;          /* request body bytes: 1 MiB (else 413) */
    int header_timeout_ms;    /* first byte to end of head: 10000 (else 408) */
    int body_timeout_ms;      /* end of head to end of body: 30000 (else 408) */
    int keepalive_timeout_ms; /* idle time between requests: 15000, then close */
    int write_timeout_ms;     /* a client that stops reading: 30000, then close */
    int max_requests;         /* requests per connection: 10000, then close */
    int max_connections;      /* per event loop: 10000 (else 503 and close) */
    int shutdown_timeout_ms;  /* grace for requests in flight: 10000 */
    size_t ws_max_message;    /* bytes in a WebSocket message: 1 MiB (else close 1009) */
    int ws_idle_timeout_ms;   /* a silent WebSocket is pinged after 60000, closed after twice */
    /* For a load balancer: health_path (e.g. "/healthz") is answered by
       turbo itself, before routing, 200 "ok"; once a stop is asked, 503
       "draining". Shutdown then waits drain_delay_ms (default 0) serving
       as usual, so that the balancer sees it and stops sending, before it
       stops accepting and drains. */
    const char *health_path;
    int drain_delay_ms;
    /* metrics_path (e.g. "/metrics") is answered by turbo, before routing,
       with the process's counters in Prometheus' text format. */
    const char *metrics_path;
    /* A line per answer: TURBO_LOG_COMMON in the Common Log Format,
       TURBO_LOG_JSON as a JSON object. Appended to access_log_path (opened
       again on SIGUSR1, for logrotate), else to stderr, from a buffer per
       thread: one write per turn of a loop, not one per request. */
    int access_log;
    const char *access_log_path;
    int json_errors; /* 1: turbo's own errors as {"detail":"Not Found"} */
    int no_signals;  /* 1: do not install SIGINT/SIGTERM handlers */
    /* Hooks for embedders (the Python binding uses them). Called in each
       serving process, before its threads start and after they stop. A
       process that cannot serve (its app failed to start) calls turbo_stop
       when it is the only one (its threads then never start), or exits
       with TURBO_EXIT_NO_START when it is a worker process: that one is
       not replaced, all stop, and turbo_run returns TURBO_EXIT_NO_START.
       A restart's old generation drains only once every process of the
       new one is past this hook. */
    void (*on_process_start)(int process_index, void *hook_arg);
    void (*on_process_stop)(int process_index, void *hook_arg);
    /* With processes: in the parent just before each fork, and right after
       it in both parent (in_child = 0) and child (in_child = 1). */
    void (*before_fork)(void *hook_arg);
    void (*after_fork)(int in_child, void *hook_arg);
    /* A lock of the embedder's that handlers flagged TURBO_LOCKED run
       holding (the Python binding's GIL): acquire takes it on the calling
       thread (0, or -1: the request gets a 500), release lets go of it. */
    int (*acquire)(void *hook_arg);
    void (*release)(void *hook_arg);
    /* Optional: asked, holding that lock, each time the loop is about to
       wait for more requests: for how many ms after the lock was taken it
       may keep it, through waits and the requests they bring (0: it lets
       go at once, as it does when this is NULL). A busy loop then takes
       the lock once for many requests; another thread that wants it waits
       that long, and for the requests of one wait, at most. */
    int (*keep_ms)(void *hook_arg);
    void *hook_arg;
} turbo_config;

enum { TURBO_LOG_COMMON = 1, TURBO_LOG_JSON = 2 }; /* turbo_config.access_log */

/* ---------------------------------------------------------------- API: server */

/* Creates a server; cfg may be NULL for all defaults. NULL on out of memory. */
TURBO_API turbo_server *turbo_new(const turbo_config *cfg);

/* Overrides fields of cfg from environment variables named after them with
   a TURBO_ prefix (TURBO_PORT, TURBO_MAX_BODY, ...: README.md lists them),
   and PORT (0: any free port). Returns 0, or -1 after printing which
   variable is not a non-negative integer. */
TURBO_API int turbo_config_env(turbo_config *cfg);

/* Registers handler for method (any token, e.g. "GET"; "*" for every
   method the path has no handler of its own for) and pattern.
   Patterns: "/users/{id}", "/files/{path...}" (a tail capture, last only).
   Returns 0, or -1 with the reason in turbo_error(): malformed pattern,
   route already registered, capture names conflicting with another route
   at the same place, or called after turbo_run started. */
TURBO_API int turbo_route(turbo_server *s, const char *method, const char *pattern, turbo_handler handler,
                          void *user);

/* Route flags. TURBO_BLOCKING: the handler is known to block (a database
   call, a sleep), so its loop goes to a spare thread before it starts
   rather than after handoff_ms (see EXECUTION MODEL above).
   TURBO_LOCKED: the handler runs holding the lock of turbo_config.acquire
   and release. Pipelined requests read together take it once: turbo lets
   go of it before it runs another handler or a callback, writes its access
   log, or waits for events (its own answers between them, a 404 or a
   health check, are made holding it). With turbo_config.keep_ms, it may
   keep it through a wait, and for the requests that come meanwhile. */
#define TURBO_BLOCKING 1
#define TURBO_LOCKED 2
TURBO_API int turbo_route_ex(turbo_server *s, const char *method, const char *pattern, turbo_handler handler,
                             void *user, int flags);
TURBO_API int turbo_get(turbo_server *s, const char *pattern, turbo_handler h, void *user);
TURBO_API int turbo_post(turbo_server *s, const char *pattern, turbo_handler h, void *user);
TURBO_API int turbo_put(turbo_server *s, const char *pattern, turbo_handler h, void *user);
TURBO_API int turbo_delete(turbo_server *s, const char *pattern, turbo_handler h, void *user);

/* The last error of turbo_route/turbo_listen/turbo_run, as a sentence. */
TURBO_API const char *turbo_error(const turbo_server *s);

/* Binds the listening sockets now (turbo_run does it otherwise), so that
   turbo_port() is known. Started by systemd with sockets passed in
   (LISTEN_PID, LISTEN_FDS), it listens on those instead: the event loops
   share them when there are fewer than loops (and use the first ones when
   there are more). Returns 0, or -1 with turbo_error() set. */
TURBO_API int turbo_listen(turbo_server *s);
TURBO_API int turbo_port(const turbo_server *s);

/* A worker process's exit status when its app failed to start (see on_process_start). */
#define TURBO_EXIT_NO_START 3

/* Serves until SIGINT/SIGTERM or turbo_stop: stops accepting, finishes
   requests in flight, closes idle connections. Returns 0 after a clean
   shutdown, -1 if it could not start (see turbo_error), or
   TURBO_EXIT_NO_START when a worker process's app could not. A second signal
   exits the process at once; so does a handler still running 2 s after
   shutdown_timeout_ms (exit status 1). */
TURBO_API int turbo_run(turbo_server *s);

/* Asks a running server to shut down gracefully. Safe from any thread and
   from a signal handler. */
TURBO_API void turbo_stop(turbo_server *s);

/* Frees a server that is not running. */
TURBO_API void turbo_free(turbo_server *s);

/* ---------------------------------------------------------------- API: request */

TURBO_API turbo_str turbo_req_method(const turbo_req *r);
TURBO_API turbo_str turbo_req_path(const turbo_req *r);  /* raw, without the query */
TURBO_API turbo_str turbo_req_query(const turbo_req *r); /* raw, after '?', may be empty */
TURBO_API int turbo_req_version(const turbo_req *r);     /* 10 or 11 */

/* The header's value (first one if repeated), case-insensitive name;
   {NULL, 0} when absent. */
TURBO_API turbo_str turbo_req_header(const turbo_req *r, const char *name);
TURBO_API int turbo_req_header_count(const turbo_req *r);
TURBO_API turbo_str turbo_req_header_name(const turbo_req *r, int i);
TURBO_API turbo_str turbo_req_header_value(const turbo_req *r, int i);

/* A path capture by name, raw (not percent-decoded); {NULL, 0} if none. */
TURBO_API turbo_str turbo_req_param(const turbo_req *r, const char *name);
TURBO_API int turbo_req_param_count(const turbo_req *r);
TURBO_API turbo_str turbo_req_param_name(const turbo_req *r, int i);
TURBO_API turbo_str turbo_req_param_value(const turbo_req *r, int i);

/* Looks up a query parameter and percent-decodes it ('+' is a space);
   of repeated names, the last counts (as in Starlette and most others).
   Returns 1 and sets *out (valid until the handler returns), 0 when
   absent, -1 when the value has a malformed %-escape or memory ran out. */
TURBO_API int turbo_req_query_get(turbo_req *r, const char *name, turbo_str *out);

/* Takes the next name=value pair off *rest, a query string (start with
   turbo_req_query): 1 with *name and *value set, raw (see turbo_url_decode),
   or 0 at the end. A pair without "=" has an empty value; empty pairs
   ("a=1&&b=2") are skipped. */
TURBO_API int turbo_query_next(turbo_str *rest, turbo_str *name, turbo_str *value);

/* The request body, de-chunked; empty when there is none. */
TURBO_API turbo_str turbo_req_body(const turbo_req *r);

/* A multipart/form-data body (RFC 7578), part by part, without copying:
       turbo_multipart m;
       turbo_part part;
       if (turbo_multipart_begin(&m, turbo_req_header(req, "content-type"), turbo_req_body(req)) == 0)
           while ((rc = turbo_multipart_next(&m, &part)) == 1) use(part.name, part.data);
   begin: 0 for a multipart/form-data content_type with a boundary, else -1;
   body may be any bytes. next: 1 with *part set (views into the body, raw:
   a quoted name or filename loses its quotes only), 0 after the closing
   delimiter, -1 for a malformed body (no delimiter, a part without a name...). */
typedef struct {
    turbo_str name, filename; /* filename.ptr is NULL for a field that is no file */
    turbo_str content_type;   /* {NULL, 0} when the part has none */
    turbo_str head;           /* the part's header lines, raw */
    turbo_str data;
} turbo_part;

typedef struct {
    const char *at, *end; /* after the last delimiter; the body's end */
    char delim[76];       /* CRLF "--" boundary (RFC 2046: 70 bytes at most) */
    size_t delim_len;
} turbo_multipart;

TURBO_API int turbo_multipart_begin(turbo_multipart *m, turbo_str content_type, turbo_str body);
TURBO_API int turbo_multipart_next(turbo_multipart *m, turbo_part *part);

/* The client's address as text into host (room for 46 bytes is enough);
   returns its port, or -1 if it is not an IP address. */
TURBO_API int turbo_req_peer(const turbo_req *r, char *host, size_t cap);

/* A copy of the request that outlives its handler, for an answer deferred
   past it (turbo_res_defer): every accessor reads it as it read r, from
   any one thread at a time. NULL when out of memory. turbo_req_free frees
   it, and the values turbo_req_query_get found in it, which stay until
   then (room for four of the whole query's length, as in a handler). */
TURBO_API turbo_req *turbo_req_copy(const turbo_req *r);
TURBO_API void turbo_req_free(turbo_req *copy);

/* Percent-decodes src into dst (room for len bytes is enough).
   Returns the decoded length, or -1 on a malformed escape. */
TURBO_API long turbo_url_decode(char *dst, const char *src, size_t len, int plus_is_space);

/* ---------------------------------------------------------------- API: response */

/* Status, headers and body. Set status and headers before the body.
   turbo sets Content-Length, Date, Server and Connection itself.
   turbo_res_header returns -1 (and adds nothing) for a header that
   turbo_header_check refuses, or a header after the body has begun. */
TURBO_API void turbo_res_status(turbo_res *res, int status);
TURBO_API int turbo_res_header(turbo_res *res, const char *name, const char *value);
TURBO_API int turbo_res_headern(turbo_res *res, const char *name, size_t name_len, const char *value,
                                size_t value_len);
TURBO_API void turbo_res_body(turbo_res *res, const void *data, size_t len);

/* The statuses a handler may answer with: 200 to 599 (1xx are not final
   answers, and HTTP has none past 599); another is answered as a 500. */
TURBO_API int turbo_status_allowed(int status);
/* 0 for 204, 205 and 304, which carry no body: turbo drops what was written. */
TURBO_API int turbo_status_has_body(int status);

/* Checks a response header as turbo_res_header does: 0 if it may be sent,
   else TURBO_HEADER_BAD_NAME (not a token), TURBO_HEADER_BAD_VALUE (CR, LF,
   NUL or another control byte) or TURBO_HEADER_OWNED (Content-Length,
   Transfer-Encoding, Date, Server, Connection: turbo writes those). */
enum { TURBO_HEADER_BAD_NAME = 1, TURBO_HEADER_BAD_VALUE, TURBO_HEADER_OWNED };
TURBO_API int turbo_header_check(const char *name, size_t name_len, const char *value, size_t value_len);

/* Shorthands: status, Content-Type and the whole body in one call. */
TURBO_API void turbo_res_send(turbo_res *res, int status, const char *content_type, const void *body,
                              size_t len);
TURBO_API void turbo_res_text(turbo_res *res, int status, const char *text);

/* Streams the answer: sends the status, headers and body so far now, in
   chunked coding (until close in HTTP/1.0); write more and flush again.
   The body ends with the answer (the handler, or a deferred answer's resume
   function, returns without deferring again). Waits while the client reads
   slowly (the handler's event loop goes on with another thread). Returns 0,
   or -1 when the client has gone, after a JSON body was begun, or for a
   status that has no body. */
TURBO_API int turbo_res_flush(turbo_res *res);

/* Ends a streamed answer that went wrong: the connection closes without
   the end of the body, so the client knows it is incomplete. */
TURBO_API void turbo_res_abort(turbo_res *res);

/* Server-sent events: sends one event now, as turbo_res_flush sends (the
   first call begins the answer, text/event-stream unless the handler set a
   Content-Type): "event: " event (NULL: none), a "data: " line for each
   line of data (CR, LF or CRLF end one), a blank line. data NULL sends
   only the comment ": ping", which keeps proxies from closing an idle
   stream. Returns turbo_res_flush's, or -1 for an event holding CR or LF. */
TURBO_API int turbo_res_event(turbo_res *res, const char *event, const char *data);

/* The Content-Length of a body turbo cannot measure: an answer to HEAD that
   writes none (the length a GET would have), or a streamed answer, set
   before its first turbo_res_flush. Then the parts go out as they are, not
   chunked (HTTP/1.0 keeps the connection too); a stream that ends longer or
   shorter is cut off (a part that goes past the length is not sent) and the
   connection closes, so the client knows.
   Ignored for a body written whole: turbo measures it. */
TURBO_API void turbo_res_head_length(turbo_res *res, uint64_t length);

/* Answers with the file at path (a path the program trusts; for a folder
   a client names, see turbo_static): Content-Type from its extension unless
   set, ETag, Last-Modified, 304, one Range (206, or 416, bodiless if the type
   was set; several: the whole file), If-Range, HEAD; the body goes by
   sendfile past 64 KiB, by the event loop as the client takes it (no thread
   waits for a slow client). The answer is complete then: what the handler
   writes after it, a second file, an error or a defer change nothing (but
   after turbo_res_flush, a file up to 64 KiB is read into the body). req
   gives the conditional headers (NULL: the request being answered). A
   missing or unreadable file, or no regular one, is turbo's 404. Returns
   0, or -1 after a 404, for a second file, for a file past 64 KiB once
   turbo_res_flush has sent the head, or after turbo_res_defer (refused:
   the answer goes on as it was; a deferred one is its resume function's). */
TURBO_API int turbo_res_file(turbo_res *res, const turbo_req *req, const char *path);

/* The body is the file at path (after any bytes already written), sent as
   turbo_res_file sends it, under the status (200 if none) and headers the
   handler set (ASGI's http.response.pathsend). A file that cannot be read
   is a 500 and a log line. Returns 0, or -1 after a 500 or when refused as
   turbo_res_file refuses. */
TURBO_API int turbo_res_body_file(turbo_res *res, const char *path);

/* Serves the files under the folder root for GET and HEAD of prefix/...
   ("/assets/app.js" is root/app.js) with turbo_res_file. Refused with 404,
   never a file from elsewhere: a path that does not decode, holds NUL, a
   "." or ".." segment, a name that starts with "." (unless dotfiles), or
   resolves (symlinks followed) outside root; a folder (unless index: its
   index.html). cache_control, if set, is sent with every file. -1 (see
   turbo_error) when root is no folder or the pattern is taken. */
typedef struct {
    int index;                 /* a folder answers with its index.html */
    int dotfiles;              /* serve names that start with "." */
    const char *cache_control; /* e.g. "public, max-age=3600"; NULL: none */
} turbo_static_options;

TURBO_API int turbo_static(turbo_server *s, const char *prefix, const char *root,
                           const turbo_static_options *opts);

/* Starts a JSON body (Content-Type: application/json) and returns a writer
   whose output is the body. If the writer ends in error or incomplete, the
   client gets a 500 instead and the cause is logged. */
TURBO_API turbo_json *turbo_res_json(turbo_res *res, int status);

/* Defers the answer: the handler returns without answering and the
   connection waits (later pipelined requests behind it); the request is
   gone then. Later, from any thread, turbo_defer_resume runs fn on the
   connection's worker thread with a response to fill, or with res NULL if
   the client has gone (free arg then). Shutdown waits for deferred answers
   up to shutdown_timeout_ms; a resume after that calls fn(NULL, arg) at
   once, in the calling thread. NULL if out of memory, or after
   turbo_res_websocket (answer at once). */
TURBO_API turbo_defer *turbo_res_defer(turbo_res *res);
TURBO_API void turbo_defer_resume(turbo_defer *d, void (*fn)(turbo_res *res, void *arg), void *arg);

/* Resumes n answers at once, each as turbo_defer_resume would: a worker
   is woken once for all of its own. For a thread that answers many
   requests per turn (an event loop): one wake-up, not one each. */
typedef struct {
    turbo_defer *defer;
    void (*fn)(turbo_res *res, void *arg);
    void *arg;
} turbo_resumption;
TURBO_API void turbo_defer_resume_all(turbo_resumption *batch, size_t n);

/* Optional, from the handler that deferred: ended(arg, gone) is called
   once on the connection's worker thread: gone = 1 as soon as the
   connection is lost before the answer is resumed (the client left, a
   timeout, shutdown), else gone = 0 once the answer has been written. */
TURBO_API void turbo_defer_watch(turbo_defer *d, void (*ended)(void *arg, int gone), void *arg);

/* ---------------------------------------------------------------- API: WebSockets */

/* A WebSocket (RFC 6455). turbo answers pings, puts fragments together,
   checks every frame (masked, no reserved bit or unknown opcode, control
   frames short and whole, text valid UTF-8, a message within
   ws_max_message) and closes a client that breaks a rule with the code
   the RFC gives (1002, 1007, 1009); at shutdown it closes with 1001. */
typedef struct turbo_ws turbo_ws;

/* Called on the connection's worker thread, as handlers are (one that
   blocks gives its loop to a spare thread, see EXECUTION MODEL), never two
   at once for one ws. All but on_message may be NULL. */
typedef struct {
    void (*on_open)(turbo_ws *ws, void *user); /* the 101 is out: may send */
    /* A whole message, text (1: valid UTF-8) or binary (0); data is valid
       until the callback returns. */
    void (*on_message)(turbo_ws *ws, const char *data, size_t len, int text, void *user);
    /* Less than 256 KiB waits to be sent, after turbo_ws_send returned 1. */
    void (*on_drain)(turbo_ws *ws, void *user);
    /* Once, last: the code of the client's close frame (1005 if it had
       none), the one turbo closed with (1001, 1002, 1007, 1009), or 1006
       when the connection was lost without a close. */
    void (*on_close)(turbo_ws *ws, int code, void *user);
} turbo_ws_handler;

/* 0, with accept set to the Sec-WebSocket-Accept value (NUL-terminated),
   when req asks for a WebSocket turbo can take: GET, HTTP/1.1, Upgrade:
   websocket, Connection: upgrade, Sec-WebSocket-Version: 13, a 16-byte
   Sec-WebSocket-Key. Else the status to answer: 426 for another version
   (send Sec-WebSocket-Version: 13 with it), 400 for the rest. */
TURBO_API int turbo_ws_accept_key(const turbo_req *req, char accept[29]);

/* Answers 101 and makes the connection a WebSocket once that is out; h
   (which must outlive it) and user are its callbacks'. subprotocol, when
   not NULL, is the one of the client's Sec-WebSocket-Protocol chosen.
   From a handler or a deferred answer's resume function (keep the accept
   key from the request). NULL if memory ran out (the answer is a 500). */
TURBO_API turbo_ws *turbo_res_websocket(turbo_res *res, const char *accept, const char *subprotocol,
                                        const turbo_ws_handler *h, void *user);

/* Sends a message, text (UTF-8: the caller's to ensure) or binary; from
   any thread. Returns 0; 1 when over 1 MiB now waits to be sent (wait for
   on_drain before sending more); -1 when the WebSocket is closing, or
   when over 16 MiB was waiting: the client does not read, and is closed. */
TURBO_API int turbo_ws_send(turbo_ws *ws, const void *data, size_t len, int text);

/* Starts the closing handshake with code (1000: normal; 3000-4999: the
   app's) and reason (UTF-8, at most 123 bytes; NULL: none); from any
   thread. on_close follows when the client answers, or after
   write_timeout_ms. */
TURBO_API void turbo_ws_close(turbo_ws *ws, int code, const char *reason);

/* Stops (paused = 1) or resumes (0) reading the client's frames, from any
   thread: a consumer that falls behind makes the client wait (TCP's flow
   control) rather than letting messages pile up. A paused WebSocket is not
   pinged for idleness; one that closes is read again. */
TURBO_API void turbo_ws_pause(turbo_ws *ws, int paused);

/* A ws is valid inside its callbacks. To use it elsewhere (send from
   another thread, later), retain it there and release it when done; once
   closed, turbo_ws_send returns -1. */
TURBO_API void turbo_ws_retain(turbo_ws *ws);
TURBO_API void turbo_ws_release(turbo_ws *ws);

/* ---------------------------------------------------------------- API: JSON writer */

/* Writes JSON into out (appending); commas and colons are the writer's job.
   Strings are escaped per RFC 8259 (control characters without a short form
   as lower-case \u00xx), plus U+2028/U+2029; each maximal invalid UTF-8
   subpart becomes one U+FFFD, as Python's decode('utf-8', 'replace') does;
   a NULL string is null. Doubles are the shortest text that reads back to
   the same bits, Python's repr(); NaN and infinities are refused
   (TURBO_JSON_NOT_FINITE). Each call returns 0, or the writer's first
   error, which sticks. */
TURBO_API void turbo_json_init(turbo_json *j, turbo_buf *out);
TURBO_API int turbo_json_object_begin(turbo_json *j);
TURBO_API int turbo_json_object_end(turbo_json *j);
TURBO_API int turbo_json_array_begin(turbo_json *j);
TURBO_API int turbo_json_array_end(turbo_json *j);
TURBO_API int turbo_json_key(turbo_json *j, const char *key);
TURBO_API int turbo_json_keyn(turbo_json *j, const char *key, size_t len);
TURBO_API int turbo_json_string(turbo_json *j, const char *s);
TURBO_API int turbo_json_stringn(turbo_json *j, const char *s, size_t len);
TURBO_API int turbo_json_int(turbo_json *j, int64_t v);
TURBO_API int turbo_json_uint(turbo_json *j, uint64_t v);
TURBO_API int turbo_json_double(turbo_json *j, double v);
TURBO_API int turbo_json_bool(turbo_json *j, int v);
TURBO_API int turbo_json_null(turbo_json *j);
/* Pre-encoded JSON, copied as is (it is the caller's to be valid). */
TURBO_API int turbo_json_raw(turbo_json *j, const char *json, size_t len);
/* 0 if exactly one complete value was written, else the error. */
TURBO_API int turbo_json_finish(turbo_json *j);
TURBO_API const char *turbo_json_strerror(int error);

/* Shortest round-trip form of a double into dst (at least 32 bytes);
   returns its length. The text equals Python's repr(), "nan" and "inf"
   included. */
TURBO_API int turbo_dtoa(double v, char *dst);

/* Buffer helpers (also used by the writer). */
TURBO_API int turbo_buf_reserve(turbo_buf *b, size_t extra); /* 0 or -1 (oom set) */
TURBO_API void turbo_buf_append(turbo_buf *b, const void *data, size_t len);
TURBO_API void turbo_buf_free(turbo_buf *b);

#ifdef __cplusplus
}
#endif
#endif /* TURBO_H */

/* ======================================================================== */
/*                              IMPLEMENTATION                              */
/* ======================================================================== */
#ifdef TURBO_IMPL
#ifndef TURBO_IMPL_DONE
#define TURBO_IMPL_DONE

/* HOW A REQUEST FLOWS (each step in its section; in the order a request meets them)

     tb__worker_run      worker      one event loop: wait, then each ready socket
     tb__worker_accept   worker      a new connection: a tb__conn, TB__T_HEAD timer
     tb__conn_readable   connections read into the thread's buffer (or the conn's own)
     tb__process         connections every complete request in the bytes read:
       tb__parse_head    parser        request line and headers, framing checked
       tb__dechunk       parser        a chunked body, decoded in place
       tb__dispatch      connections   501, OPTIONS *, route, 404, 405
         tb__route       router          the handler and its {captures}
         tb__run_handler connections     the handler, watched by the monitor (hand-off)
       tb__res_finish    response      status line and turbo's headers put in front
     tb__conn_after      connections one send of every answer; keep the rest; next timer
     tb__worker_resumed  deferred    answers resumed from other threads, lent
                                     connections handed back
     tb__worker_expire   worker      timers: 408, idle close, write deadline

   State: a server has its workers (one event loop each, with its listening
   socket, connections, timers and mailbox) and a pool of threads; a thread
   runs one worker at a time and owns the buffers a request is parsed from
   and answered into (tb__thread). */

#if defined(__linux__) && !defined(_GNU_SOURCE)
#error "turbo.h: include it first in the TURBO_IMPL file, or compile with -D_GNU_SOURCE"
#endif

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#ifdef __linux__
#include <sched.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#ifdef SYS_openat2
#include <linux/openat2.h>
#endif
#endif
#include <time.h>
#include <unistd.h>
/* SSE2, which every x86-64 has, scans a head's names and values and the
   JSON writer's strings 16 bytes at a time; elsewhere (or with
   TURBO_NO_SIMD, which the tests build too) values and strings go in 8-byte
   words and names a byte at a time. */
#if defined(__SSE2__) && defined(__GNUC__) && !defined(TURBO_NO_SIMD)
#include <emmintrin.h>
#define TB__SSE2 1
#endif

/* Hints where the compiler's own sizing misjudges: TB__INLINE for a small
   function on every request's path that gcc -O2 would call (its call and
   the spills around it cost more than its body: measured with callgrind,
   README "Performance"); TB__NOINLINE keeps a slow path out of its caller,
   whose fast path then needs no stack frame. */
#if defined(__GNUC__)
#define TB__INLINE static inline __attribute__((always_inline))
#define TB__NOINLINE __attribute__((noinline))
#else
#define TB__INLINE static inline
#define TB__NOINLINE
#endif
/* The same for the functions of the API that a handler calls to write an
   answer: a handler in this file, the one with TURBO_IMPL, gets their
   bodies, so that the length of a literal key or string is known when it
   compiles. Other files call them as usual: C99 makes the definition of an
   inline function declared extern (as the API is, above) its one external
   definition (and gcc's old -fgnu89-inline, a definition that is inline
   but not extern). Only with gcc in C: C++ wants an inline function inline
   in every file, and clang holds these to the rules of inline definitions
   (no static callee). */
#if defined(TURBO_STATIC)
#define TB__API_INLINE TURBO_API inline
#elif defined(__GNUC__) && !defined(__clang__) && !defined(__cplusplus)
#define TB__API_INLINE inline __attribute__((always_inline))
#else
#define TB__API_INLINE TURBO_API
#endif

#if defined(TURBO_MALLOC) != defined(TURBO_FREE) || defined(TURBO_MALLOC) != defined(TURBO_REALLOC)
#error "turbo.h: define all of TURBO_MALLOC, TURBO_REALLOC and TURBO_FREE, or none"
#endif
#ifndef TURBO_MALLOC
#define TURBO_MALLOC(n) malloc(n)
#define TURBO_REALLOC(p, n) realloc(p, n)
#define TURBO_FREE(p) free(p)
#endif

/* Each worker has its own listening socket where the kernel balances
   connections over sockets bound to one port (Linux's SO_REUSEPORT,
   FreeBSD's SO_REUSEPORT_LB). Elsewhere (macOS, the other BSDs, where
   SO_REUSEPORT hands every connection to one socket) the workers share
   one socket, each through a dup of it, and race to accept.
   TURBO_SHARED_LISTENER forces sharing, to test that path on Linux. */
#if defined(__linux__) && !defined(TURBO_SHARED_LISTENER)
#define TB__REUSEPORT SO_REUSEPORT
#elif defined(SO_REUSEPORT_LB) && !defined(TURBO_SHARED_LISTENER)
#define TB__REUSEPORT SO_REUSEPORT_LB
#endif

#if defined(TURBO_KQUEUE) || defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) || \
    defined(__NetBSD__) || defined(__DragonFly__)
#define TB__KQUEUE 1 /* TURBO_KQUEUE forces it, e.g. on Linux with tests/kqueue_shim */
#elif defined(__linux__)
#define TB__EPOLL 1
#else
#error "turbo.h needs epoll (Linux) or kqueue (BSD, macOS)"
#endif

#define TB__MIN(a, b) ((a) < (b) ? (a) : (b))

/* ---------------------------------------------------------------- platform */
/* The event loop behind a few small functions, one set per backend, chosen at
   compile time (the shape of redis's ae.c). Interest is level-triggered;
   each registration carries a pointer handed back with its events. The
   system writes events straight into the array of the thread that waits
   (tb__event is its own event type), read by tb__event_ptr and
   tb__event_writable. */

#define TB__READ 1
#define TB__WRITE 2
#define TB__MAX_EVENTS 256

/* glibc's read, send, epoll_wait and nanosleep are cancellation points: in
   a process with threads, each turns asynchronous cancellation on and off
   around its system call (~90 instructions a request in all, and half of
   the monitor's every millisecond). turbo cancels no thread, so on Linux
   its loop and its monitor make the same system calls directly. */
#ifdef __linux__
static ssize_t tb__read(int fd, void *buf, size_t n) { return (ssize_t)syscall(SYS_read, fd, buf, n); }
static ssize_t tb__send(int fd, const void *buf, size_t n) {
    return (ssize_t)syscall(SYS_sendto, fd, buf, n, MSG_NOSIGNAL, NULL, 0);
}
#else
#define tb__read read
#define tb__send(fd, buf, n) send(fd, buf, n, MSG_NOSIGNAL)
#endif
#if defined(__linux__) && defined(__LP64__) /* where the kernel's timespec is the C library's */
static void tb__sleep(const struct timespec *step) { syscall(SYS_nanosleep, step, NULL); }
#else
#define tb__sleep(step) nanosleep(step, NULL)
#endif

static void tb__nonblock_cloexec(int fd) {
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
}

#if defined(TB__EPOLL)
#include <sys/epoll.h>

typedef struct tb__loop {
    int fd;
} tb__loop;

typedef struct epoll_event tb__event;

static void *tb__event_ptr(const tb__event *e) { return e->data.ptr; }

/* An error or a hang-up is neither: the next read tells. */
static int tb__event_writable(const tb__event *e) { return (e->events & EPOLLOUT) != 0; }

static int tb__loop_init(tb__loop *l) {
    l->fd = epoll_create1(EPOLL_CLOEXEC);
    return l->fd < 0 ? -1 : 0;
}

/* Sets fd's interest to mask; old is the current one (0 = not registered). */
static int tb__loop_set(tb__loop *l, int fd, int old, int mask, void *ptr) {
    struct epoll_event ev;
    if (old == mask) return 0;
    memset(&ev, 0, sizeof ev);
    ev.events = (mask & TB__READ ? EPOLLIN : 0u) | (mask & TB__WRITE ? EPOLLOUT : 0u);
    ev.data.ptr = ptr;
    return epoll_ctl(l->fd, !mask ? EPOLL_CTL_DEL : old ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
}

static int tb__loop_wait(tb__loop *l, tb__event *out, int timeout_ms) {
    int n = (int)syscall(SYS_epoll_pwait, l->fd, out, TB__MAX_EVENTS, timeout_ms, NULL, 0);
    return n < 0 ? 0 : n;
}

static int tb__accept(int lfd, struct sockaddr_storage *peer) {
    socklen_t len = sizeof *peer;
    return accept4(lfd, (struct sockaddr *)peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

#else /* TB__KQUEUE */
#include <sys/event.h>

#ifndef MSG_NOSIGNAL /* macOS: SO_NOSIGPIPE on each socket instead (tb__accept) */
#define MSG_NOSIGNAL 0
#endif

typedef struct tb__loop {
    int fd;
} tb__loop;

typedef struct kevent tb__event;

static void *tb__event_ptr(const tb__event *e) { return (void *)e->udata; }

/* An error or the end (EV_EOF, EV_ERROR) comes with the filter it hit. */
static int tb__event_writable(const tb__event *e) { return e->filter == EVFILT_WRITE; }

static int tb__loop_init(tb__loop *l) {
    l->fd = kqueue();
    if (l->fd < 0) return -1;
    fcntl(l->fd, F_SETFD, FD_CLOEXEC);
    return 0;
}

/* kqueue keeps one filter per direction: add or delete each that changed. */
static int tb__loop_set(tb__loop *l, int fd, int old, int mask, void *ptr) {
    struct kevent ch[2];
    int n = 0;
    if ((old ^ mask) & TB__READ)
        EV_SET(&ch[n++], fd, EVFILT_READ, mask & TB__READ ? EV_ADD : EV_DELETE, 0, 0, ptr);
    if ((old ^ mask) & TB__WRITE)
        EV_SET(&ch[n++], fd, EVFILT_WRITE, mask & TB__WRITE ? EV_ADD : EV_DELETE, 0, 0, ptr);
    return n ? kevent(l->fd, ch, n, NULL, 0, NULL) : 0;
}

static int tb__loop_wait(tb__loop *l, tb__event *out, int timeout_ms) {
    struct timespec ts, *tsp = NULL;
    int n;
    if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
        tsp = &ts;
    }
    n = kevent(l->fd, NULL, 0, out, TB__MAX_EVENTS, tsp);
    return n < 0 ? 0 : n;
}

static int tb__accept(int lfd, struct sockaddr_storage *peer) {
    socklen_t len = sizeof *peer;
    int fd = accept(lfd, (struct sockaddr *)peer, &len);
    if (fd < 0) return -1;
    tb__nonblock_cloexec(fd);
#ifdef SO_NOSIGPIPE
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
    return fd;
}
#endif

/* The monotonic clock, in units of 1/per_second s (inlined: one division). */
static inline int64_t tb__clock(long per_second) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * per_second + ts.tv_nsec / (1000000000 / per_second);
}

static int64_t tb__now_us(void) { return tb__clock(1000000); }

static int64_t tb__now_ms(void) { return tb__clock(1000); }

/* Waits up to timeout_ms for events (POLLIN, POLLOUT) on fd: poll's result. */
static int tb__poll(int fd, int events, int timeout_ms) {
    struct pollfd p;
    p.fd = fd;
    p.events = (short)events;
    p.revents = 0;
    return poll(&p, 1, timeout_ms);
}

/* ---------------------------------------------------------------- buffers */

/* turbo_buf_reserve's growing half, out of line: the check that usually
   answers alone is then small enough to be inlined where it is called. */
static int tb__buf_grow(turbo_buf *b, size_t extra) {
    size_t cap;
    char *data;
    if (b->oom) return -1; /* else tb__reserve found too little room */
    cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra && cap <= ((size_t)-1) / 2) cap *= 2;
    data = cap - b->len >= extra ? (char *)TURBO_REALLOC(b->data, cap) : NULL; /* NULL: no size is enough */
    if (!data) {
        b->oom = 1;
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static inline int tb__reserve(turbo_buf *b, size_t extra) {
    return b->cap - b->len >= extra && !b->oom ? 0 : tb__buf_grow(b, extra);
}

static inline void tb__append(turbo_buf *b, const void *data, size_t len) {
    if (len == 0 || tb__reserve(b, len) != 0) return;
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

TURBO_API int turbo_buf_reserve(turbo_buf *b, size_t extra) { return tb__reserve(b, extra); }

TURBO_API void turbo_buf_append(turbo_buf *b, const void *data, size_t len) { tb__append(b, data, len); }

TURBO_API void turbo_buf_free(turbo_buf *b) {
    TURBO_FREE(b->data);
    memset(b, 0, sizeof *b);
}

static void tb__buf_puts(turbo_buf *b, const char *s) { tb__append(b, s, strlen(s)); }

static turbo_str tb__str(const char *p, size_t n) {
    turbo_str s = {p, n};
    return s;
}

/* Writes the reason something is refused into err (cap bytes): -1, for a
   return. */
static int tb__errorf(char *err, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return -1;
}

/* memcmp(a, b, n) == 0 for the few bytes of a method or a path segment,
   where a loop costs less than the call. */
static inline int tb__same(const char *a, const char *b, size_t n) {
    while (n && *a == *b) a++, b++, n--;
    return n == 0;
}

#ifdef TB__SSE2
static inline int tb__equal16(const char *a, const char *b) {
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)a);
    return _mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_loadu_si128((const __m128i *)(const void *)b))) == 0xffff;
}
#endif

/* Are the n bytes at a and b the same? A word (16 bytes with SSE2) at a
   time, the last overlapping the one before, so nothing past either end is
   read. */
static inline int tb__equal(const char *a, const char *b, size_t n) {
    uint64_t x, y;
    uint32_t u[2], v[2];
    size_t i;
#ifdef TB__SSE2
    if (n >= 16) {
        for (i = 0; i + 16 < n; i += 16)
            if (!tb__equal16(a + i, b + i)) return 0;
        return tb__equal16(a + n - 16, b + n - 16);
    }
#endif
    if (n >= 8) {
        for (i = 0; i + 8 < n; i += 8) {
            memcpy(&x, a + i, 8);
            memcpy(&y, b + i, 8);
            if (x != y) return 0;
        }
        memcpy(&x, a + n - 8, 8);
        memcpy(&y, b + n - 8, 8);
        return x == y;
    }
    if (n >= 4) {
        memcpy(&u[0], a, 4);
        memcpy(&v[0], b, 4);
        memcpy(&u[1], a + n - 4, 4);
        memcpy(&v[1], b + n - 4, 4);
        return u[0] == v[0] && u[1] == v[1];
    }
    return n == 0 || (a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1]);
}

/* Copies n bytes to o and returns their end, as mempcpy does. */
static char *tb__put(char *o, const void *src, size_t n) {
    memcpy(o, src, n);
    return o + n;
}

/* Copies n bytes to just before o and returns where they begin. */
static char *tb__put_back(char *o, const void *src, size_t n) {
    memcpy(o - n, src, n);
    return o - n;
}

/* ---------------------------------------------------------------- HTTP/1.1 parser */
/* Stateless, in the manner of picohttpparser: given the bytes received so
   far, tb__parse_head returns the length of a complete head, 0 when more
   bytes are needed, or -status for a request that must be refused. It
   never copies: names, values and the target point into the buffer. */

/* A client's address, as accept gave it: kept small, per connection. */
typedef struct tb__peer {
    unsigned char addr[16]; /* 4 bytes for IPv4 */
    uint16_t port;
    unsigned char family; /* 4, 6, or 0 when unknown */
} tb__peer;

#define TB__HOST_SEEN 31 /* bytes of the Host value kept (tb__host_valid): most are shorter */

/* How the body is framed and what the head asked of the connection. */
typedef struct tb__framing {
    uint64_t content_length;
    int chunked, keep_alive, expect_continue;
} tb__framing;

#define TB__SEEN_BYTES 1024 /* header lines kept to compare the next head's with (a browser's fit) */
#define TB__SEEN_LINES 32
#define TB__SEEN_TRIES 4 /* heads in a row that differ from the last: then 1 in 64 is kept */

/* The header lines of the last head a parser took, when they fit, and what
   it found in them: a client sends the same lines with every request. The
   verdict on them rested on nothing else but the version and max_headers
   (and the head's room, checked again). Where heads differ every time (an
   ID in each), keeping and comparing would be paid for nothing: after a
   few such, only now and then. */
typedef struct tb__seen {
    uint16_t len, count, misses;
    int version, max_headers; /* version 0: nothing kept */
    uintptr_t at;             /* where they were last found (an address only: the bytes may be gone) */
    tb__framing framing;
    struct {
        uint16_t name, name_len, value, value_len; /* offsets into bytes */
    } line[TB__SEEN_LINES];
    char bytes[TB__SEEN_BYTES];
} tb__seen;

struct turbo_req {
    turbo_str method, target, path, query, body;
    const tb__peer *peer;
    int version;    /* 10 or 11 */
    int std_method; /* tb__std_method(method), once the request line is whole */
    int header_count, param_count;
    turbo_str header_name[TURBO_MAX_HEADERS], header_value[TURBO_MAX_HEADERS];
    turbo_str param_name[TURBO_MAX_PARAMS], param_value[TURBO_MAX_PARAMS];
    turbo_buf *scratch; /* the worker's, for decoded query values */
    /* The last Host value found valid and the last header lines, by the
       parser of the thread that owns this (reused) request: zeroed with it,
       never grown. */
    unsigned char host_seen_len;
    char host_seen[TB__HOST_SEEN];
    tb__seen seen;
};

#define TB__METHOD_MAX 24 /* longest method a route may name, plus one */

typedef struct tb__limits {
    size_t max_line, max_head;
    int max_headers;
    uint64_t max_body;
} tb__limits;

/* Byte classes, one table lookup per byte: token characters (tchar), the
   characters of a request target (and those of them the target's scan
   passes over: all but "%" and "?"), field-value bytes (HTAB, SP, VCHAR,
   obs-text), the white space around a value (SP, HTAB) and the characters
   of a Host's reg-name ("%" aside: it must begin an escape). A target's
   are RFC 3986's, and "[ ] { } | \ ^ `", which browsers (WHATWG URLs) and
   axios send unescaped in a path or query ("?filter[name]=x"), as nginx
   takes them: no framing rests on them. */
#define TB__TCHAR 1
#define TB__TARGET 2
#define TB__VALUE 4
#define TB__HOST 8
#define TB__PLAIN 16
#define TB__OWS 32
/* clang-format off */
static const unsigned char tb__class[256] = {
    0,0,0,0,0,0,0,0,0,36,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    36,31,4,5,31,7,31,31,30,30,31,31,30,31,31,22,31,31,31,31,31,31,31,31,31,31,22,30,4,30,4,6,
    22,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,22,22,22,23,31,
    23,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,31,22,23,22,31,0,
    4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,
    4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,
    4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,
    4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,
};
/* clang-format on */

#define TB__IS(cls, c) (tb__class[(unsigned char)(c)] & (cls))

#define TB__BYTES(b) (0x0101010101010101ull * (b))
/* Where the first flagged byte of a word that memcpy loaded lies: on a
   little-endian machine (TB__LITTLE_ENDIAN, with gcc or clang) the first
   byte is the lowest, so the trailing zero bits / 8. Elsewhere 0:
   tb__flagged then steps to it a byte at a time. */
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define TB__LITTLE_ENDIAN 1
#define TB__FIRST_FLAGGED(hits) ((size_t)__builtin_ctzll(hits) / 8)
#else
#define TB__LITTLE_ENDIAN 0
#define TB__FIRST_FLAGGED(hits) 0
#endif

#ifdef TB__SSE2
/* A bit for each of the 16 bytes at p that is a control byte or DEL.
   Unsigned x < 0x20 is (x ^ 0x80) < (0x20 ^ 0x80) signed. */
static inline unsigned tb__controls16(const char *p) {
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i control = _mm_cmplt_epi8(_mm_xor_si128(x, _mm_set1_epi8(-128)), _mm_set1_epi8(-96));
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(control, _mm_cmpeq_epi8(x, _mm_set1_epi8(0x7f))));
}

/* A bit for each of the 16 bytes at p that is not a letter, "-" or a byte
   from low to "9": low "0" gives a field name's usual bytes, low "-" a
   path's ("-", ".", "/" and the digits). Signed: bytes from 0x80 are
   negative, outside every range. */
static inline unsigned tb__not_word16(const char *p, char low) {
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p),
            folded = _mm_or_si128(x, _mm_set1_epi8(0x20));
    __m128i letter = _mm_and_si128(_mm_cmpgt_epi8(folded, _mm_set1_epi8('a' - 1)),
                                   _mm_cmplt_epi8(folded, _mm_set1_epi8('z' + 1)));
    __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8((char)(low - 1))),
                                  _mm_cmplt_epi8(x, _mm_set1_epi8('9' + 1)));
    __m128i dash = _mm_cmpeq_epi8(x, _mm_set1_epi8('-'));
    return ~(unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(letter, digit), dash)) & 0xffff;
}
#endif

/* The first control byte (HTAB too) or DEL from p, or end; the bytes from
   start (<= p) may be read. With SSE2, 16 at a time, and fewer than 16 by
   reading the 16 that end at end and dropping the bits of those before p.
   Else 8 at a time: x - 0x20 sets the top bit of each byte below 0x20,
   (x ^ 0x7f) - 1 that of each DEL, and "& ~" keeps out obs-text, whose top
   bit was set. A borrow can flag a byte after a flagged one, never before:
   the first is exact. */
static inline const char *tb__flagged(const char *start, const char *p, const char *end) {
#ifdef TB__SSE2
    unsigned hits;
    for (; end - p >= 16; p += 16)
        if ((hits = tb__controls16(p)) != 0) return p + __builtin_ctz(hits);
    if (p < end && end - start >= 16) {
        hits = tb__controls16(end - 16) >> (16 - (end - p));
        return hits ? p + __builtin_ctz(hits) : end;
    }
#else
    (void)start;
    for (; end - p >= 8; p += 8) {
        uint64_t x, del, hits;
        memcpy(&x, p, 8); /* memcpy: p has no alignment */
        del = x ^ TB__BYTES(0x7f);
        hits = (((x - TB__BYTES(0x20)) & ~x) | ((del - TB__BYTES(1)) & ~del)) & TB__BYTES(0x80);
        if (hits) {
            p += TB__FIRST_FLAGGED(hits);
            break;
        }
    }
#endif
    while (p < end && (unsigned char)*p >= 0x20 && *p != 0x7f) p++;
    return p;
}

/* The first byte from p that no field value may hold (CR, LF, NUL, DEL and
   the other controls but HTAB), or end. */
static inline const char *tb__field_end(const char *start, const char *p, const char *end) {
    for (;; p++) {
        p = tb__flagged(start, p, end);
        if (p == end || *p != '\t') return p;
    }
}

/* Where a field name's letters, digits and "-" (the bytes of nearly every
   name) end, 16 at a time while 16 are left; else p. The caller judges the
   bytes from there one at a time. */
static inline const char *tb__name_end(const char *p, const char *end) {
#ifdef TB__SSE2
    for (; end - p >= 16; p += 16) {
        unsigned misses = tb__not_word16(p, '0');
        if (misses) return p + __builtin_ctz(misses);
    }
#else
    (void)end;
#endif
    return p;
}

/* Are all n bytes field-value bytes (HTAB, SP, VCHAR, obs-text)? */
static int tb__valid_value(const char *p, size_t n) { return tb__field_end(p, p, p + n) == p + n; }

static int tb__hex(int c) {
    return c >= '0' && c <= '9' ? c - '0' : (c | 32) >= 'a' && (c | 32) <= 'f' ? (c | 32) - 'a' + 10 : -1;
}

/* Do the 8 bytes in x and y match, ignoring ASCII case? They may differ
   in bit 0x20 alone, and only where x | 0x20 is a letter: the top bit of
   each such byte (x's own top bit clear) is set in letters, and >> 2 moves
   it to 0x20. No byte's sum carries into the next. */
static int tb__ieq8(uint64_t x, uint64_t y) {
    uint64_t low = (x | TB__BYTES(0x20)) & TB__BYTES(0x7f);
    uint64_t letters = (low + TB__BYTES(0x80 - 'a')) & ~(low + TB__BYTES(0x7f - 'z')) & ~x & TB__BYTES(0x80);
    return ((x ^ y) & ~(letters >> 2)) == 0;
}

/* Do the n bytes at a and at b match, ignoring ASCII case? Two bytes that
   differ only in bit 0x20 are one letter in two cases, or no letter. From
   8 bytes on, a word at a time, the last word overlapping the one before. */
static int tb__ieq_n(const char *a, const char *b, size_t n) {
    uint64_t x, y;
    size_t i;
    if (n < 8) {
        for (i = 0; i < n; i++) {
            unsigned lower = (unsigned char)a[i] | 32;
            if (a[i] != b[i] && (lower != ((unsigned char)b[i] | 32) || lower - 'a' > 'z' - 'a')) return 0;
        }
        return 1;
    }
    for (i = 0; i + 8 < n; i += 8) {
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (!tb__ieq8(x, y)) return 0;
    }
    memcpy(&x, a + n - 8, 8);
    memcpy(&y, b + n - 8, 8);
    return tb__ieq8(x, y);
}

/* a (length n) equals b (NUL-terminated), ignoring ASCII case? Inlined, a
   literal b's length is a constant. */
static inline int tb__ieq(const char *a, size_t n, const char *b) {
    return strlen(b) == n && tb__ieq_n(a, b, n);
}

static int tb__is_method(turbo_str m, const char *name) {
    size_t n = strlen(name);
    return m.len == n && memcmp(m.ptr, name, n) == 0;
}

/* The standard methods, whose handler each node resolves when routes are
   added; a request's method is looked up here once, then indexes. */
static const char *const tb__std_methods[] = {"GET",    "HEAD",    "POST",  "PUT",
                                              "DELETE", "OPTIONS", "TRACE", "PATCH"};
#define TB__STD_METHODS 8
#define TB__STD_HEAD 1

/* m's index in tb__std_methods, or TB__STD_METHODS for another method. */
TB__INLINE int tb__std_method(turbo_str m) {
    int i;
    if (m.len == 3 && memcmp(m.ptr, "GET", 3) == 0) return 0; /* the most requests, with no loop */
    /* tb__same stops at a shorter name's NUL: m holds none. */
    for (i = 1; i < TB__STD_METHODS; i++)
        if (tb__same(tb__std_methods[i], m.ptr, m.len) && !tb__std_methods[i][m.len]) return i;
    return i;
}

static turbo_str tb__trim_ows(const char *p, size_t n) {
    while (n && (*p == ' ' || *p == '\t')) p++, n--;
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
    return tb__str(p, n);
}

/* Takes the next element of a list separated by sep off *rest, OWS
   trimmed: 1 with *item set (empty ones too), or 0 after the last. An
   empty list has one empty element; rest->ptr is NULL once it is used up. */
static int tb__list_next(turbo_str *rest, char sep, turbo_str *item) {
    const char *p = rest->ptr, *stop;
    if (!p) return 0;
    stop = (const char *)memchr(p, sep, rest->len);
    *item = tb__trim_ows(p, stop ? (size_t)(stop - p) : rest->len);
    rest->len -= stop ? (size_t)(stop + 1 - p) : rest->len;
    rest->ptr = stop ? stop + 1 : NULL;
    return 1;
}

static int tb__parse_content_length(turbo_str v, uint64_t *out) {
    uint64_t n = 0;
    size_t i;
    if (v.len == 0) return -400;
    for (i = 0; i < v.len; i++) {
        unsigned d = (unsigned)(unsigned char)v.ptr[i] - '0';
        if (d > 9) return -400;
        if (n > (UINT64_MAX - d) / 10) return -400; /* not a length we could represent */
        n = n * 10 + d;
    }
    *out = n;
    return 0;
}

/* IP-literal = "[" ( IPv6address / IPvFuture ) "]", without the brackets.
   An IPv6address (RFC 3986 3.2.2) is the text form of RFC 4291 2.2 that
   inet_pton reads, an IPv4 tail included; 46 bytes hold the longest. */
static int tb__valid_ip_literal(const char *p, size_t n) {
    char text[INET6_ADDRSTRLEN];
    unsigned char addr[16];
    size_t i = 1, start;
    if (n == 0 || (p[0] != 'v' && p[0] != 'V')) {
        if (n >= sizeof text) return 0;
        memcpy(text, p, n);
        text[n] = 0;
        return inet_pton(AF_INET6, text, addr) == 1;
    }
    while (i < n && tb__hex((unsigned char)p[i]) >= 0) i++; /* IPvFuture: "v" HEXDIG+ "." ... */
    if (i == 1 || i == n || p[i++] != '.') return 0;
    for (start = i; i < n; i++)
        if (!TB__IS(TB__HOST, p[i]) && p[i] != ':') return 0;
    return i > start;
}

/* The end of the uri-host [":" port] at p, a uri-host being a reg-name or
   "[" IP-literal "]" (p itself for a bad IP-literal). It stops at the first
   byte outside them: in a Host field, at its line's end at the latest. */
static inline const char *tb__host_end(const char *p, const char *end) {
    const char *s = p;
    for (;;) { /* a reg-name (its "%" HEXDIG HEXDIG too), or none before "[" */
        while (s < end && TB__IS(TB__HOST, *s)) s++;
        if (end - s < 3 || *s != '%' || tb__hex((unsigned char)s[1]) < 0 || tb__hex((unsigned char)s[2]) < 0)
            break;
        s += 3;
    }
    if (s == p && s < end && *s == '[') {
        for (s++; s < end && (TB__IS(TB__HOST, *s) || *s == ':');) s++;
        if (s == end || *s != ']' || !tb__valid_ip_literal(p + 1, (size_t)(s - p - 1))) return p;
        s++;
    }
    if (s < end && *s == ':')
        for (s++; s < end && *s >= '0' && *s <= '9';) s++;
    return s;
}

/* Is the Host value from v to ve a uri-host [":" port]? A client sends the
   same one every time, and a site's clients all send its own: bytes equal
   to the last valid value r saw are valid, with no second look at them. */
static inline int tb__host_valid(turbo_req *r, const char *v, const char *ve) {
    size_t n = (size_t)(ve - v);
    if (n == r->host_seen_len && tb__equal(v, r->host_seen, n)) return 1;
    if (tb__host_end(v, ve) != ve) return 0;
    if (n <= TB__HOST_SEEN) {
        memcpy(r->host_seen, v, n);
        r->host_seen_len = (unsigned char)n;
    }
    return 1;
}

/* Are the 4 bytes at p "Host" in any case? OR-ing 0x20 into each turns
   "H" into "h" and keeps "h"; no other byte becomes one of these letters. */
static int tb__is_host(const char *p) {
    uint32_t x, host;
    memcpy(&x, p, 4);
    memcpy(&host, "host", 4);
    return (x | 0x20202020u) == host;
}

/* The request line, method SP request-target SP HTTP-version CRLF, from
   the n bytes at p, whose first m < n bytes are the method's tokens.
   Returns its length, 0 when more bytes are needed, or -400, -414, -505.
   An origin-form target ("/a?b") is split into path and query here; for
   another, r->query.ptr is left at its first "?" (NULL for none), for
   tb__split_target. */
static int tb__parse_request_line(const char *p, size_t n, size_t m, size_t max_line, turbo_req *r) {
    const char *end = p + n, *s = p + m, *q, *room = p + TB__MIN(n, max_line > 9 ? max_line - 8 : 0);
    const char *query = NULL;
    if (m == 0 || *s != ' ') return -400;
    r->method = tb__str(p, m);
    /* The target, up to where " HTTP/x.y" would no longer fit in max_line
       (s passes room when the method alone is past it). An absolute-form's
       authority, "http://[::1]:80/", is judged by tb__split_target. */
    q = ++s;
#ifdef TB__SSE2
    /* A path's usual bytes, which need no look of their own, 16 at a time;
       not for one byte ("/"), cheaper alone. */
    if (room - s >= 16 && s[1] != ' ')
        for (; room - s >= 16; s += 16) {
            unsigned misses = tb__not_word16(s, '-');
            if (misses) {
                s += __builtin_ctz(misses);
                break;
            }
        }
#endif
    for (; s < room && TB__IS(TB__TARGET, *s); s++) {
        if (TB__IS(TB__PLAIN, *s)) continue;
        if (*s == '?') {
            if (!query) query = s;
            continue;
        }
        if ((end - s > 1 && tb__hex((unsigned char)s[1]) < 0) || /* "%" HEXDIG HEXDIG, judged */
            (end - s > 2 && tb__hex((unsigned char)s[2]) < 0))   /* as far as it has come */
            return -400;
        if (end - s < 3) return 0;
    }
    if ((size_t)(s - p) + 9 > max_line) return -414;
    if (s == end) return 0;
    if (s == q || *s != ' ') return -400;
    r->target = tb__str(q, (size_t)(s - q));
    if (*q == '/') {
        r->path = tb__str(q, (size_t)((query ? query : s) - q));
        r->query = query ? tb__str(query + 1, (size_t)(s - query - 1)) : tb__str(s, 0);
    } else {
        r->query.ptr = query;
    }
    r->version = 11;
    s++; /* the version: "HTTP/" DIGIT "." DIGIT, then CRLF */
    if (end - s >= 10 && memcmp(s, "HTTP/1.1\r\n", 10) == 0) return (int)(s + 10 - p); /* the usual one */
    for (q = s; q < end && q - s < 10; q++) /* any other, judged as far as it has come */
        if (q - s == 5 || q - s == 7 ? *q < '0' || *q > '9' : *q != "HTTP/1.1\r\n"[q - s]) return -400;
    if (q - s < 10) return 0;
    if (s[5] != '1') return -505;
    r->version = s[7] == '0' ? 10 : 11;
    return (int)(s + 10 - p);
}

/* The path of "http://host", followed like any other by the end of a
   request line, which tb__find may read a word of. */
static const char tb__root_path[] = "/ HTTP/1.1\r\n";

/* Splits a target that is not origin-form into path and query: absolute
   form ("http://host/a?b": the path is what follows the authority) and "*"
   (OPTIONS only) are served; authority-form is CONNECT's, refused. */
static int tb__split_target(turbo_req *r) {
    const char *t = r->target.ptr, *end = t + r->target.len, *q;
    if (r->target.len == 1 && t[0] == '*') {
        if (!tb__is_method(r->method, "OPTIONS")) return -400;
    } else {
        const char *a;
        if (r->target.len > 7 && tb__ieq(t, 7, "http://")) t += 7;
        else if (r->target.len > 8 && tb__ieq(t, 8, "https://")) t += 8;
        else return -400;
        for (a = t; t < end && *t != '/' && *t != '?';) t++;
        /* A host and port: userinfo in an http(s) URI is an error (RFC 9110 4.2.4). */
        if (t == a || tb__host_end(a, t) != t) return -400;
    }
    q = r->query.ptr;
    r->path = tb__str(t, (size_t)((q ? q : end) - t));
    r->query = q ? tb__str(q + 1, (size_t)(end - q - 1)) : tb__str(end, 0);
    if (r->path.len == 0) r->path = tb__str(tb__root_path, 1); /* "http://host" or "http://host?x" */
    return 0;
}

/* After a line's fields, at e, must come CRLF: 1 when it does, -400 when
   another byte does, or `more` when the bytes (up to stop) end first. */
static int tb__crlf(const char *e, const char *stop, int more) {
    if (e == stop) return more;
    if (*e != '\r') return -400;
    if (e + 1 == stop) return more;
    return e[1] == '\n' ? 1 : -400;
}

/* The first letter of each name tb__apply_headers looks for, by its length
   (modulo 32: a longer name may be noted for nothing): the parser notes the
   lines whose name might be one. */
static const char tb__framing_first[32] = {0, 0, 0, 0, 0, 0, 'e', 0, 0, 0, 'c', 0, 0, 0, 'c', 0, 0, 't'};
#define TB__FRAMING_NOTED 8 /* more such lines: all lines are looked at */

/* Applies the headers that frame the message or steer the connection:
   those of the noted lines (noted[0..n_noted)), or of every line when
   n_noted is over TB__FRAMING_NOTED. */
static int tb__apply_headers(turbo_req *r, tb__framing *f, int hosts, const int *noted, int n_noted) {
    int has_cl = 0, te = 0, chunked = 0, unknown = 0, k, rc;
    int conn_close = 0, conn_keep = 0, all = n_noted > TB__FRAMING_NOTED;
    turbo_str rest, item; /* v's address is never taken, so v can stay in registers */
    for (k = 0; k < (all ? r->header_count : n_noted); k++) {
        int i = all ? k : noted[k];
        turbo_str n = r->header_name[i], v = r->header_value[i];
        switch (n.len) { /* the length picks the one name to compare */
        case 14:
            if (!tb__ieq(n.ptr, n.len, "content-length")) break;
            if (has_cl++) return -400;
            if ((rc = tb__parse_content_length(v, &f->content_length)) != 0) return rc;
            break;
        case 17:
            if (!tb__ieq(n.ptr, n.len, "transfer-encoding")) break;
            te = 1;
            /* Over every TE line, chunked comes last, once. RFC 9110 5.6.1.2
               lets a recipient skip empty elements, but a front end that
               does not would read other framing: refused. */
            for (rest = v; tb__list_next(&rest, ',', &item);) {
                if (!item.len || chunked) return -400;
                if (tb__ieq(item.ptr, item.len, "chunked")) chunked = 1;
                else unknown = 1;
            }
            break;
        case 10:
            if (!tb__ieq(n.ptr, n.len, "connection")) break;
            for (rest = v; tb__list_next(&rest, ',', &item);) {
                conn_close |= tb__ieq(item.ptr, item.len, "close");
                conn_keep |= tb__ieq(item.ptr, item.len, "keep-alive");
            }
            break;
        case 6:
            if (!tb__ieq(n.ptr, n.len, "expect") || r->version != 11) break;
            if (!tb__ieq(v.ptr, v.len, "100-continue")) return -417;
            f->expect_continue = 1;
            break;
        }
    }
    if (r->version == 11 && hosts != 1) return -400;
    if (te) {
        if (r->version == 10 || has_cl || !chunked) return -400;
        if (unknown) return -501;
        f->chunked = 1;
    }
    f->keep_alive = r->version == 11 ? !conn_close : conn_keep && !conn_close;
    return 0;
}

/* An absolute-form target's host is the request's, whatever Host says (RFC
   9112 3.2.2): the Host line's value becomes the target's authority, what
   is between its "//" and its path, query or end. ("*" has none.) */
static void tb__host_from_target(turbo_req *r) {
    const char *a = r->target.ptr, *end = a + r->target.len, *t;
    turbo_str authority;
    int i;
    if (r->target.len < 7) return;
    for (a = a[4] == ':' ? a + 7 : a + 8, t = a; t < end && *t != '/' && *t != '?';) t++;
    authority = tb__str(a, (size_t)(t - a));
    r->seen.at = 0; /* a view is rewritten */
    for (i = 0; i < r->header_count; i++)
        if (r->header_name[i].len == 4 && tb__is_host(r->header_name[i].ptr)) r->header_value[i] = authority;
}

/* The header lines from p, name ":" OWS value OWS CRLF, up to the empty
   line, into r and f; the head, its last CRLF included, fits in stop (more:
   the verdict when a line reaches it). Returns the head's length from buf,
   or as tb__parse_head. */
static int tb__parse_fields(const char *buf, const char *p, const char *stop, int more, turbo_req *r,
                            tb__framing *f, int max_headers) {
    const char *e, *name, *v, *ve;
    int rc, hosts = 0;
    int noted[TB__FRAMING_NOTED], n_noted = 0;
    for (;; p = e + 2) {
        name = p;
        if (stop - p > 4 && tb__is_host(p) && p[4] == ':') p += 4; /* nearly every request's: no scan */
        else
            for (p = tb__name_end(p, stop); p < stop && TB__IS(TB__TCHAR, *p);) p++;
        if (p >= stop) return more;
        if (p == name && *p == '\r') break;      /* the empty line */
        if (p == name || *p != ':') return -400; /* no name (obs-fold too), a bad byte, space before ":" */
        for (v = p + 1; v < stop && TB__IS(TB__OWS, *v);) v++;
        e = tb__field_end(buf, v, stop);
        if ((rc = tb__crlf(e, stop, more)) != 1) return rc;
        for (ve = e; ve > v && TB__IS(TB__OWS, ve[-1]);) ve--;
        if (p - name == 4 && tb__is_host(name) && (!tb__host_valid(r, v, ve) || hosts++))
            return -400; /* not all host, or a second Host */
        /* Checked before counted: a malformed line is a 400 however the
           bytes arrive, as it is while still incomplete. */
        if (r->header_count >= max_headers) return -431;
        if ((*name | 0x20) == tb__framing_first[(p - name) & 31] && n_noted++ < TB__FRAMING_NOTED)
            noted[n_noted - 1] = r->header_count;
        r->header_name[r->header_count] = tb__str(name, (size_t)(p - name));
        r->header_value[r->header_count++] = tb__str(v, (size_t)(ve - v));
    }
    if ((rc = tb__crlf(p, stop, more)) != 1) return rc;
    if (!n_noted && r->version == 11 && hosts == 1) f->keep_alive = 1; /* what tb__apply_headers would find */
    else if ((rc = tb__apply_headers(r, f, hosts, noted, n_noted)) != 0) return rc;
    return (int)(p + 2 - buf);
}

/* Are the bytes from p the header lines r's parser kept, whole before stop
   (which a long request line may have passed), under the same version and
   max_headers? Then they were judged already. */
static inline int tb__seen_again(const turbo_req *r, const char *p, const char *stop, int max_headers) {
    const tb__seen *s = &r->seen;
    return s->version == r->version && stop - p >= (ptrdiff_t)s->len && s->max_headers == max_headers &&
           tb__equal(p, s->bytes, s->len);
}

/* What r's parser found in the lines it kept, for their copy at p. */
static int tb__seen_take(turbo_req *r, tb__framing *f, const char *p, const char *buf) {
    tb__seen *s = &r->seen;
    int i;
    s->misses = 0;
    if ((uintptr_t)p != s->at) { /* else in the same place as last time: r's views stand */
        for (i = 0; i < s->count; i++) {
            r->header_name[i] = tb__str(p + s->line[i].name, s->line[i].name_len);
            r->header_value[i] = tb__str(p + s->line[i].value, s->line[i].value_len);
        }
        s->at = (uintptr_t)p;
    }
    r->header_count = s->count;
    *f = s->framing;
    return (int)(p + s->len - buf);
}

/* Keeps the header lines from p to end that r's parser took, when they fit. */
static void tb__seen_keep(turbo_req *r, const tb__framing *f, const char *p, const char *end,
                          int max_headers) {
    tb__seen *s = &r->seen;
    int i;
    s->version = 0;
    if (++s->misses > TB__SEEN_TRIES && s->misses % 64) return;
    if (end - p > TB__SEEN_BYTES || r->header_count > TB__SEEN_LINES) return;
    for (i = 0; i < r->header_count; i++) {
        s->line[i].name = (uint16_t)(r->header_name[i].ptr - p);
        s->line[i].name_len = (uint16_t)r->header_name[i].len;
        s->line[i].value = (uint16_t)(r->header_value[i].ptr - p);
        s->line[i].value_len = (uint16_t)r->header_value[i].len;
    }
    memcpy(s->bytes, p, (size_t)(end - p));
    s->at = (uintptr_t)p;
    s->len = (uint16_t)(end - p);
    s->count = (uint16_t)r->header_count;
    s->version = r->version;
    s->max_headers = max_headers;
    s->framing = *f;
}

/* Parses a request head from buf. Returns its length (through the empty
   line), 0 if incomplete, or -status: 400 malformed, 413 absurd
   Content-Length, 414 request line too long, 417 unknown expectation, 431
   head too large or too many headers, 501 unknown transfer coding or
   CONNECT, 505 unsupported HTTP major version. A line is read in one pass,
   each byte judged as it arrives: every split of a request gets the same
   answer. r must start zeroed: it keeps the last valid Host and header
   lines between calls. */
static int tb__parse_head(const char *buf, size_t len, turbo_req *r, tb__framing *f, const tb__limits *lim) {
    const char *p = buf, *end = buf + len, *stop;
    size_t m = 0;
    int rc, get;
    r->method.len = 0;
    r->std_method = TB__STD_METHODS;
    r->header_count = r->param_count = 0;
    /* RFC 9112 2.2: ignore empty lines before the request line. */
    while (end - p >= 2 && p[0] == '\r' && p[1] == '\n') p += 2;
    if ((size_t)(p - buf) > lim->max_head) return -431; /* an endless run of empty lines */
    /* A method longer than any route's is refused from its first bytes
       alone, and nothing is decided before they are in. */
    if ((get = end - p > 3 && memcmp(p, "GET ", 4) == 0)) m = 3; /* most requests' method: no scan */
    else
        while (m < TB__MIN((size_t)(end - p), TB__METHOD_MAX) && TB__IS(TB__TCHAR, p[m])) m++;
    if (m == TB__METHOD_MAX) return -501;
    if (p + m == end || (p + 1 == end && *p == '\r')) return 0; /* all tokens so far, or half an empty line */
    if ((rc = tb__parse_request_line(p, (size_t)(end - p), m, lim->max_line, r)) <= 0) return rc;
    p += rc;
    r->std_method = get ? 0 : tb__std_method(r->method);
    if (r->std_method == TB__STD_METHODS && tb__is_method(r->method, "CONNECT")) return -501;
    if (r->target.ptr[0] != '/' && (rc = tb__split_target(r)) != 0) return rc;
    /* The head, its last CRLF included, fits in max_head + 2 bytes. */
    stop = buf + TB__MIN(len, lim->max_head + 2);
    if (tb__seen_again(r, p, stop, lim->max_headers)) {
        rc = tb__seen_take(r, f, p, buf);
    } else {
        memset(f, 0, sizeof *f);
        r->seen.at = 0; /* r's views are rewritten */
        rc = tb__parse_fields(buf, p, stop, len >= lim->max_head + 2 ? -431 : 0, r, f, lim->max_headers);
        if (rc <= 0) return rc;
        tb__seen_keep(r, f, p, buf + rc, lim->max_headers);
    }
    if (!f->chunked && f->content_length > lim->max_body) return -413;
    if (r->target.ptr[0] != '/') tb__host_from_target(r);
    return rc;
}

static size_t tb__skip_bws(const char *p, size_t i, size_t n) {
    while (i < n && (p[i] == ' ' || p[i] == '\t')) i++;
    return i;
}

/* chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ) */
static int tb__valid_chunk_ext(const char *p, size_t n) {
    size_t i = 0, start;
    while (i < n) {
        i = tb__skip_bws(p, i, n);
        if (i == n || p[i] != ';') return 0;
        start = i = tb__skip_bws(p, i + 1, n);
        while (i < n && TB__IS(TB__TCHAR, p[i])) i++;
        if (i == start) return 0;
        start = tb__skip_bws(p, i, n);
        if (start == n || p[start] != '=') continue; /* BWS only before "=" or ";" */
        start = i = tb__skip_bws(p, start + 1, n);
        if (i < n && p[i] == '"') {
            for (i++; i < n && p[i] != '"'; i++)
                if (p[i] == '\\' && ++i == n) return 0;
            if (i++ == n) return 0;
        } else {
            while (i < n && TB__IS(TB__TCHAR, p[i])) i++;
            if (i == start) return 0;
        }
    }
    return 1;
}

/* Incremental, in-place chunked decoder. The body region starts right
   after the head; decoded bytes are compacted to its front while raw bytes
   are still being read behind them, so the decoder never allocates and can
   resume after any split. */
enum {
    TB__CH_SIZE,     /* hex digits of the chunk size */
    TB__CH_EXT,      /* chunk extensions, up to CR */
    TB__CH_SIZE_LF,  /* LF ending the size line */
    TB__CH_DATA,     /* chunk data */
    TB__CH_DATA_END, /* CRLF after the data */
    TB__CH_TRAILER,  /* start of a trailer line, or the final CRLF */
    TB__CH_TRAILER_LINE,
    TB__CH_END_LF, /* LF of the final CRLF */
    TB__CH_DONE
};

typedef struct tb__chunked {
    size_t src;      /* raw bytes consumed, from the body start */
    size_t dst;      /* decoded bytes, at the body start */
    size_t line;     /* bytes of the current chunk extension, which ends at src */
    int colon;       /* the trailer line in progress has its colon */
    size_t trailers; /* bytes of trailer section so far */
    uint64_t remaining;
    int state, digits;
} tb__chunked;

#define TB__CHUNK_LINE_MAX 4096

/* Returns 1 when the body is complete (st->src is its raw length), 0 when
   more bytes are needed, or -400 / -413 / -431. */
static int tb__dechunk(char *body, size_t avail, tb__chunked *st, const tb__limits *lim) {
    while (st->src < avail) {
        char c = body[st->src];
        switch (st->state) {
        case TB__CH_SIZE: {
            int d = tb__hex((unsigned char)c);
            if (d >= 0) {
                if (st->remaining > (lim->max_body - st->dst) >> 4) return -413;
                st->remaining = st->remaining * 16 + (unsigned)d;
                if (++st->digits > TB__CHUNK_LINE_MAX) return -400;
                st->src++;
                continue;
            }
            if (!st->digits) return -400;
            if (st->remaining > lim->max_body - st->dst) return -413;
            st->state = TB__CH_EXT;
            continue; /* re-examine c as part of the extension */
        }
        case TB__CH_EXT:
            if (c == '\r') {
                if (!tb__valid_chunk_ext(body + st->src - st->line, st->line)) return -400;
                st->state = TB__CH_SIZE_LF;
            } else if (!TB__IS(TB__VALUE, c) || ++st->line > TB__CHUNK_LINE_MAX) {
                return -400;
            }
            st->src++;
            continue;
        case TB__CH_SIZE_LF:
            if (c != '\n') return -400;
            if (st->src - st->dst > lim->max_body + lim->max_head) return -413; /* framing overhead */
            st->src++;
            st->line = 0;
            st->digits = 0;
            st->state = st->remaining ? TB__CH_DATA : TB__CH_TRAILER;
            continue;
        case TB__CH_DATA: {
            size_t n = (size_t)TB__MIN((uint64_t)(avail - st->src), st->remaining);
            memmove(body + st->dst, body + st->src, n);
            st->dst += n;
            st->src += n;
            st->remaining -= n;
            if (!st->remaining) st->state = TB__CH_DATA_END;
            continue;
        }
        case TB__CH_DATA_END:
            if (c != '\r') return -400;
            if (st->src + 1 == avail) return 0; /* wait for the LF */
            if (body[st->src + 1] != '\n') return -400;
            st->src += 2;
            st->state = TB__CH_SIZE;
            continue;
        case TB__CH_TRAILER:
            if (c != '\r' && !TB__IS(TB__TCHAR, c)) return -400;
            st->src++;
            st->colon = 0;
            st->state = c == '\r' ? TB__CH_END_LF : TB__CH_TRAILER_LINE;
            continue;
        case TB__CH_TRAILER_LINE: /* a field line: name ":" value */
            if (c == '\r') {
                if (!st->colon) return -400;
                if (st->src + 1 == avail) return 0; /* wait for the LF */
                if (body[st->src + 1] != '\n') return -400;
                st->src += 2;
                st->state = TB__CH_TRAILER;
                continue;
            }
            if (!st->colon && c == ':') st->colon = 1;
            else if (st->colon ? !TB__IS(TB__VALUE, c) : !TB__IS(TB__TCHAR, c)) return -400;
            if (++st->trailers > lim->max_head) return -431;
            st->src++;
            continue;
        case TB__CH_END_LF:
            if (c != '\n') return -400;
            st->src++;
            st->state = TB__CH_DONE;
            return 1;
        default: return 1;
        }
    }
    return st->state == TB__CH_DONE;
}

/* ---------------------------------------------------------------- request accessors */

TURBO_API turbo_str turbo_req_method(const turbo_req *r) { return r->method; }
TURBO_API turbo_str turbo_req_path(const turbo_req *r) { return r->path; }
TURBO_API turbo_str turbo_req_query(const turbo_req *r) { return r->query; }
TURBO_API int turbo_req_version(const turbo_req *r) { return r->version; }
TURBO_API turbo_str turbo_req_body(const turbo_req *r) { return r->body; }

static char *tb__peer_text(char *o, const tb__peer *p);

TURBO_API int turbo_req_peer(const turbo_req *r, char *host, size_t cap) {
    char text[INET6_ADDRSTRLEN];
    size_t n;
    if (!r->peer || !r->peer->family) return -1;
    n = (size_t)(tb__peer_text(text, r->peer) - text);
    if (n >= cap) return -1;
    memcpy(host, text, n);
    host[n] = '\0';
    return r->peer->port;
}

/* A request copied in one block: this, then its bytes, from its method to
   its body's end (one buffer held them), then its path captures' names. */
typedef struct tb__req_copy {
    turbo_req req;
    tb__peer peer;
    turbo_buf scratch; /* its own, for turbo_req_query_get */
} tb__req_copy;

/* Points s, if it is a view of the n bytes at from, at their copy in to;
   a view of anything else (a constant) stays as it is. */
static void tb__rebase(turbo_str *s, const char *from, size_t n, char *to) {
    uintptr_t at = (uintptr_t)s->ptr - (uintptr_t)from; /* integers: from may not be s's object */
    if (s->ptr && at <= n) s->ptr = to + at;
}

TURBO_API turbo_req *turbo_req_copy(const turbo_req *r) {
    const char *from = r->method.ptr;
    size_t n = (size_t)(r->body.ptr + r->body.len - from), names = 0;
    tb__req_copy *c;
    char *bytes, *name;
    int i;
    for (i = 0; i < r->param_count; i++) names += r->param_name[i].len;
    if (!(c = (tb__req_copy *)TURBO_MALLOC(sizeof *c + n + names))) return NULL;
    bytes = (char *)(c + 1);
    memcpy(&c->req, r, offsetof(turbo_req, seen)); /* not the parser's kept lines */
    c->req.seen.version = 0;
    memcpy(bytes, from, n);
    tb__rebase(&c->req.method, from, n, bytes);
    tb__rebase(&c->req.target, from, n, bytes);
    tb__rebase(&c->req.path, from, n, bytes);
    tb__rebase(&c->req.query, from, n, bytes);
    tb__rebase(&c->req.body, from, n, bytes);
    for (i = 0; i < r->header_count; i++) {
        tb__rebase(&c->req.header_name[i], from, n, bytes);
        tb__rebase(&c->req.header_value[i], from, n, bytes);
    }
    name = bytes + n;
    for (i = 0; i < r->param_count; i++) {
        tb__rebase(&c->req.param_value[i], from, n, bytes);
        memcpy(name, r->param_name[i].ptr, r->param_name[i].len); /* the router's: the server's lifetime */
        c->req.param_name[i].ptr = name;
        name += r->param_name[i].len;
    }
    memset(&c->peer, 0, sizeof c->peer);
    if (r->peer) c->peer = *r->peer;
    c->req.peer = &c->peer;
    memset(&c->scratch, 0, sizeof c->scratch);
    c->req.scratch = &c->scratch;
    return &c->req;
}

TURBO_API void turbo_req_free(turbo_req *copy) {
    if (!copy) return;
    turbo_buf_free(copy->scratch);
    TURBO_FREE(copy); /* the block's first member */
}

TURBO_API int turbo_req_header_count(const turbo_req *r) { return r->header_count; }
TURBO_API int turbo_req_param_count(const turbo_req *r) { return r->param_count; }

static turbo_str tb__str_at(const turbo_str *a, int n, int i) {
    return i >= 0 && i < n ? a[i] : tb__str(NULL, 0);
}

TURBO_API turbo_str turbo_req_header_name(const turbo_req *r, int i) {
    return tb__str_at(r->header_name, r->header_count, i);
}
TURBO_API turbo_str turbo_req_header_value(const turbo_req *r, int i) {
    return tb__str_at(r->header_value, r->header_count, i);
}
TURBO_API turbo_str turbo_req_param_name(const turbo_req *r, int i) {
    return tb__str_at(r->param_name, r->param_count, i);
}
TURBO_API turbo_str turbo_req_param_value(const turbo_req *r, int i) {
    return tb__str_at(r->param_value, r->param_count, i);
}

TURBO_API turbo_str turbo_req_header(const turbo_req *r, const char *name) {
    size_t n = strlen(name);
    int i;
    for (i = 0; i < r->header_count; i++) /* the length first: most names differ in it */
        if (r->header_name[i].len == n && tb__ieq(r->header_name[i].ptr, n, name)) return r->header_value[i];
    return tb__str(NULL, 0);
}

TURBO_API turbo_str turbo_req_param(const turbo_req *r, const char *name) {
    size_t n = strlen(name);
    int i;
    for (i = 0; i < r->param_count; i++)
        if (r->param_name[i].len == n && tb__same(r->param_name[i].ptr, name, n)) return r->param_value[i];
    return tb__str(NULL, 0);
}

TURBO_API long turbo_url_decode(char *dst, const char *src, size_t len, int plus_is_space) {
    size_t i, n = 0;
    for (i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= len) return -1;
            hi = tb__hex((unsigned char)src[i + 1]);
            lo = tb__hex((unsigned char)src[i + 2]);
            if (hi < 0 || lo < 0) return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        dst[n++] = c;
    }
    return (long)n;
}

TURBO_API int turbo_query_next(turbo_str *rest, turbo_str *name, turbo_str *value) {
    while (rest->len) {
        const char *p = rest->ptr, *amp = (const char *)memchr(p, '&', rest->len);
        const char *stop = amp ? amp : p + rest->len, *eq;
        rest->ptr = amp ? amp + 1 : stop;
        rest->len -= (size_t)(rest->ptr - p);
        if (stop == p) continue;
        eq = (const char *)memchr(p, '=', (size_t)(stop - p));
        *name = tb__str(p, (size_t)((eq ? eq : stop) - p));
        *value = eq ? tb__str(eq + 1, (size_t)(stop - eq - 1)) : tb__str(stop, 0);
        return 1;
    }
    return 0;
}

/* ---- multipart/form-data */

/* The first n bytes at what between p and end, or NULL. */
static const char *tb__search(const char *p, const char *end, const char *what, size_t n) {
    return (const char *)memmem(p, (size_t)(end - p), what, n);
}

/* The next ";"-separated item of a header value. A ";" inside a
   quoted-string (or escaped there by a backslash) separates nothing (RFC
   9110 5.6.4): a filename="a; name=b" names no field "b". */
static int tb__param_next(turbo_str *rest, turbo_str *item) {
    const char *p = rest->ptr, *end, *s;
    int quoted = 0;
    if (!p) return 0;
    for (end = p + rest->len, s = p; s < end && (quoted || *s != ';'); s++) {
        if (*s == '"') quoted = !quoted;
        else if (*s == '\\' && quoted && s + 1 < end) s++;
    }
    *item = tb__trim_ows(p, (size_t)(s - p));
    rest->len = s < end ? (size_t)(end - s - 1) : 0;
    rest->ptr = s < end ? s + 1 : NULL;
    return 1;
}

/* The value of parameter key (lower case, with its "=") in a header value
   such as `form-data; name="a"; filename="b"`, quotes removed. */
static turbo_str tb__header_param(turbo_str v, const char *key) {
    turbo_str item;
    size_t n = strlen(key);
    while (tb__param_next(&v, &item)) {
        if (item.len < n || !tb__ieq(item.ptr, n, key)) continue;
        item = tb__str(item.ptr + n, item.len - n);
        if (item.len >= 2 && item.ptr[0] == '"' && item.ptr[item.len - 1] == '"')
            item = tb__str(item.ptr + 1, item.len - 2);
        return item;
    }
    return tb__str(NULL, 0);
}

TURBO_API int turbo_multipart_begin(turbo_multipart *m, turbo_str ct, turbo_str b) {
    turbo_str boundary;
    const char *first;
    if (ct.len < 19 || !tb__ieq(ct.ptr, 19, "multipart/form-data")) return -1;
    boundary = tb__header_param(ct, "boundary=");
    if (!boundary.len || boundary.len > 70) return -1;
    memcpy(m->delim, "\r\n--", 4);
    memcpy(m->delim + 4, boundary.ptr, boundary.len);
    m->delim_len = boundary.len + 4;
    m->end = b.ptr + b.len;
    /* The first delimiter opens the body, or follows a preamble. */
    if (b.len >= m->delim_len - 2 && memcmp(b.ptr, m->delim + 2, m->delim_len - 2) == 0)
        m->at = b.ptr + m->delim_len - 2;
    else if ((first = b.len ? tb__search(b.ptr, m->end, m->delim, m->delim_len) : NULL))
        m->at = first + m->delim_len;
    else m->at = NULL; /* none: next() says malformed */
    return 0;
}

/* The part at p (just after a delimiter), or -1; next() makes -1 stick. */
static int tb__multipart_part(turbo_multipart *m, const char *p, turbo_part *part) {
    const char *head_end, *next, *line;
    while (p < m->end && (*p == ' ' || *p == '\t')) p++; /* transport padding */
    if (m->end - p < 2 || p[0] != '\r' || p[1] != '\n') return -1;
    /* The blank line that ends the head: right here when the part has no headers. */
    if (!(head_end = tb__search(p, m->end, "\r\n\r\n", 4))) return -1;
    head_end += 2;
    p += 2;
    if (!(next = tb__search(head_end + 2, m->end, m->delim, m->delim_len))) return -1;
    memset(part, 0, sizeof *part);
    part->head = tb__str(p, (size_t)(head_end - p));
    part->data = tb__str(head_end + 2, (size_t)(next - head_end - 2));
    m->at = next + m->delim_len;
    for (line = p; line < head_end;) { /* each line ends with CRLF, the last at head_end - 2 */
        const char *eol = tb__search(line, head_end, "\r\n", 2), *colon;
        turbo_str value;
        colon = (const char *)memchr(line, ':', (size_t)(eol - line));
        if (colon) {
            value = tb__trim_ows(colon + 1, (size_t)(eol - colon - 1));
            if (tb__ieq(line, (size_t)(colon - line), "content-disposition")) {
                part->name = tb__header_param(value, "name=");
                part->filename = tb__header_param(value, "filename=");
            } else if (tb__ieq(line, (size_t)(colon - line), "content-type")) {
                part->content_type = value;
            }
        }
        line = eol + 2;
    }
    return part->name.ptr ? 1 : -1;
}

TURBO_API int turbo_multipart_next(turbo_multipart *m, turbo_part *part) {
    int rc;
    if (!m->at) return -1;
    if (m->end - m->at >= 2 && m->at[0] == '-' && m->at[1] == '-') return 0; /* closing delimiter */
    rc = tb__multipart_part(m, m->at, part);
    if (rc < 0) m->at = NULL;
    return rc;
}

TURBO_API int turbo_req_query_get(turbo_req *r, const char *name, turbo_str *out) {
    turbo_str rest = r->query, key, value, found = {NULL, 0};
    size_t name_len = strlen(name);
    long dlen;
    while (turbo_query_next(&rest, &key, &value)) {
        char decoded[256];
        long klen = key.len <= sizeof decoded ? turbo_url_decode(decoded, key.ptr, key.len, 1) : -1;
        if (klen == (long)name_len && memcmp(decoded, name, name_len) == 0) found = value;
    }
    if (!found.ptr) return 0;
    /* Decoded values stay valid until the handler returns, so each lookup
       appends to the scratch buffer; reserving up front means earlier
       values never move. */
    if (!r->scratch->len && tb__reserve(r->scratch, r->query.len * 4 + 64) != 0) return -1;
    if (r->scratch->cap - r->scratch->len < found.len) return -1;
    dlen = turbo_url_decode(r->scratch->data + r->scratch->len, found.ptr, found.len, 1);
    if (dlen < 0) return -1;
    *out = tb__str(r->scratch->data + r->scratch->len, (size_t)dlen);
    r->scratch->len += (size_t)dlen;
    return 1;
}

/* ---------------------------------------------------------------- router */
/* A trie of path segments built before the server starts and read-only
   after. Each node finds a static child through a small hash table, so a
   lookup costs one hash per segment however many routes there are; then
   it tries its {name} child, then its {name...} child, backtracking when a
   branch dead-ends (static beats capture beats tail). */

typedef struct tb__handler {
    char method[TB__METHOD_MAX];
    size_t method_len;
    turbo_handler fn;
    void *user;
    int flags;      /* TURBO_BLOCKING, TURBO_LOCKED */
    int overstayed; /* atomic: its last run outlasted handoff_ms (see hand-off) */
} tb__handler;

typedef struct tb__node {
    char *seg; /* static text, or the capture's name: stored after the node */
    size_t seg_len;
    struct tb__node **slots; /* the static children, by open addressing: NULL = empty */
    int nslots, nchildren;
    struct tb__node *param, *tail;
    tb__handler *handlers;
    int nhandlers;
    tb__handler *serves[TB__STD_METHODS]; /* tb__node_handler's answer for each */
} tb__node;

/* A segment's hash: its bytes 8 at a time as memcpy loads them into a
   word, the last word (0 to 7 bytes) zero-padded, each mixed in with a
   multiply; a second one at the end lets every byte reach the low bits
   that pick a slot. tb__find computes the same in the pass that finds
   the segment's end. */
#define TB__HASH_STEP(h, w) (((h) ^ (w)) * 0x9e3779b97f4a7c15ull)

static uint32_t tb__hash_end(uint64_t h) { return (uint32_t)(((h ^ (h >> 32)) * 0xd6e8feb86659fd93ull) >> 32); }

static uint32_t tb__hash(const char *p, size_t n) {
    uint64_t h = 0, w;
    for (; n >= 8; p += 8, n -= 8) {
        memcpy(&w, p, 8);
        h = TB__HASH_STEP(h, w);
    }
    w = 0;
    memcpy(&w, p, n);
    return tb__hash_end(TB__HASH_STEP(h, w));
}

/* How many of the 8 bytes of w, loaded from q, come before the first '/'
   and before end. With the trick of tb__flagged on a little-endian
   machine: x - 1 & ~x sets the top bit of each zero byte of x = w ^ "/"
   (and of bytes after one, which the first hides); else a byte at a time. */
TB__INLINE size_t tb__segment_bytes(uint64_t w, const char *q, const char *end) {
    size_t left = (size_t)(end - q), k;
#if TB__LITTLE_ENDIAN
    uint64_t x = w ^ TB__BYTES('/'), hits = (x - TB__BYTES(1)) & ~x & TB__BYTES(0x80);
    k = hits ? TB__FIRST_FLAGGED(hits) : 8;
#else
    (void)w;
    for (k = 0; k < 8 && k < left && q[k] != '/';) k++;
#endif
    return k < left ? k : left;
}

/* The first k < 8 bytes of w, loaded from q, the others zero: as tb__hash
   pads its last word. */
TB__INLINE uint64_t tb__word_head(uint64_t w, const char *q, size_t k) {
#if TB__LITTLE_ENDIAN
    (void)q;
    return w & ((1ull << (8 * k)) - 1);
#else
    uint64_t head = 0;
    (void)w;
    memcpy(&head, q, k);
    return head;
#endif
}

/* The static child for seg, whose tb__hash is h. */
TB__INLINE tb__node *tb__node_child(const tb__node *n, const char *seg, size_t len, uint32_t h) {
    uint32_t i;
    if (!n->nslots) return NULL;
    for (i = h;; i++) {
        tb__node *c = n->slots[i & (uint32_t)(n->nslots - 1)];
        if (!c || (c->seg_len == len && tb__equal(c->seg, seg, len))) return c;
    }
}

/* Puts c in the first free slot from its hash on. */
static void tb__node_place(tb__node **slots, int nslots, tb__node *c) {
    uint32_t h = tb__hash(c->seg, c->seg_len);
    while (slots[h & (uint32_t)(nslots - 1)]) h++;
    slots[h & (uint32_t)(nslots - 1)] = c;
}

static tb__node *tb__node_new(const char *seg, size_t len) {
    tb__node *n = (tb__node *)TURBO_MALLOC(sizeof *n + len + 1);
    if (!n) return NULL;
    memset(n, 0, sizeof *n);
    n->seg = (char *)(n + 1);
    memcpy(n->seg, seg, len);
    n->seg[len] = 0;
    n->seg_len = len;
    return n;
}

static void tb__node_free(tb__node *n) {
    int i;
    if (!n) return;
    for (i = 0; i < n->nslots; i++) tb__node_free(n->slots[i]);
    tb__node_free(n->param);
    tb__node_free(n->tail);
    TURBO_FREE(n->slots);
    TURBO_FREE(n->handlers);
    TURBO_FREE(n);
}

static tb__node *tb__node_add_static(tb__node *n, const char *seg, size_t len) {
    tb__node *c = tb__node_child(n, seg, len, tb__hash(seg, len));
    int i;
    if (c) return c;
    if ((n->nchildren + 1) * 2 > n->nslots) { /* at most half full: short probes */
        int nslots = n->nslots ? n->nslots * 2 : 8;
        tb__node **slots = (tb__node **)TURBO_MALLOC((size_t)nslots * sizeof *slots);
        if (!slots) return NULL;
        memset(slots, 0, (size_t)nslots * sizeof *slots);
        for (i = 0; i < n->nslots; i++)
            if (n->slots[i]) tb__node_place(slots, nslots, n->slots[i]);
        TURBO_FREE(n->slots);
        n->slots = slots;
        n->nslots = nslots;
    }
    if (!(c = tb__node_new(seg, len))) return NULL;
    tb__node_place(n->slots, n->nslots, c);
    n->nchildren++;
    return c;
}

/* The handler for method: its own, else GET's for HEAD, else the "*" one. */
static tb__handler *tb__node_handler(const tb__node *n, turbo_str method) {
    tb__handler *get = NULL, *any = NULL;
    int i;
    for (i = 0; i < n->nhandlers; i++) {
        tb__handler *h = &n->handlers[i];
        if (h->method_len == method.len && tb__same(h->method, method.ptr, method.len)) return h;
        if (!strcmp(h->method, "GET")) get = h;
        if (!strcmp(h->method, "*")) any = h;
    }
    return get && tb__is_method(method, "HEAD") ? get : any;
}

typedef struct tb__lookup {
    turbo_str method;
    int std; /* tb__std_method(method) */
    turbo_req *req;
    const tb__node *allow; /* first node matching the path, for 405 */
} tb__lookup;

static tb__handler *tb__node_accept(const tb__node *n, tb__lookup *lk) {
    tb__handler *h = lk->std < TB__STD_METHODS ? n->serves[lk->std] : tb__node_handler(n, lk->method);
    if (!h && n->nhandlers && !lk->allow) lk->allow = n;
    return h;
}

static int tb__push_param(turbo_req *r, const tb__node *n, const char *v, size_t len) {
    if (r->param_count >= TURBO_MAX_PARAMS) return 0;
    r->param_name[r->param_count] = tb__str(n->seg, n->seg_len);
    r->param_value[r->param_count++] = tb__str(v, len);
    return 1;
}

/* p is the start of a segment (just after a '/'); end is the path's end.
   The parser saw to it that a request's path is followed by at least the
   11 bytes of " HTTP/1.x\r\n" (tb__root_path too): 8 may be read from any
   byte up to end. */
static tb__handler *tb__find(const tb__node *n, const char *p, const char *end, tb__lookup *lk) {
    const char *seg_end = p, *slash;
    uint32_t hash = 0;
    uint64_t mix = 0, w;
    size_t len, k;
    const tb__node *c;
    tb__handler *h;
    if (!n->nchildren) { /* a capture's value, or no match: no hash */
        while (seg_end < end && *seg_end != '/') seg_end++;
    } else {
        for (;; seg_end += 8) {
            memcpy(&w, seg_end, 8);
            if ((k = tb__segment_bytes(w, seg_end, end)) < 8) break;
            mix = TB__HASH_STEP(mix, w);
        }
        hash = tb__hash_end(TB__HASH_STEP(mix, tb__word_head(w, seg_end, k)));
        seg_end += k;
    }
    slash = seg_end < end ? seg_end : NULL;
    len = (size_t)(seg_end - p);
    c = tb__node_child(n, p, len, hash);
    if (c && (h = slash ? tb__find(c, slash + 1, end, lk) : tb__node_accept(c, lk))) return h;
    if (n->param && len && tb__push_param(lk->req, n->param, p, len)) {
        h = slash ? tb__find(n->param, slash + 1, end, lk) : tb__node_accept(n->param, lk);
        if (h) return h;
        lk->req->param_count--;
    }
    if (n->tail && tb__push_param(lk->req, n->tail, p, (size_t)(end - p))) {
        if ((h = tb__node_accept(n->tail, lk))) return h;
        lk->req->param_count--;
    }
    return NULL;
}

/* Finds the handler for the request's method (r->std_method as the parser
   found it) and path, filling its params. NULL when none: *allow is then
   the node whose methods make the 405's Allow header, or NULL for a 404.
   The handler is not const: its overstayed flag is the one thing that
   changes once the server runs. */
TB__INLINE tb__handler *tb__route(const tb__node *root, turbo_req *r, const tb__node **allow) {
    tb__lookup lk = {r->method, r->std_method, r, NULL};
    tb__handler *h;
    r->param_count = 0;
    h = r->path.len == 1 ? tb__node_accept(root, &lk) : NULL;
    if (!h) /* for "/" too: a root "/{rest...}" takes it with an empty capture */
        h = tb__find(root, r->path.ptr + 1, r->path.ptr + r->path.len, &lk);
    *allow = lk.allow;
    return h;
}

/* A method some route serves, one of the standard ones, or any when a "*"
   route exists; methods[0..n) are the server's (turbo_route keeps them). */
static int tb__known_method(char (*methods)[TB__METHOD_MAX], int n, turbo_str m) {
    int i;
    if (tb__std_method(m) < TB__STD_METHODS) return 1;
    for (i = 0; i < n; i++)
        if (tb__is_method(m, methods[i]) || !strcmp(methods[i], "*")) return 1;
    return 0;
}

/* The Allow header of "OPTIONS *": every method some route serves. */
static void tb__allow_all(char (*methods)[TB__METHOD_MAX], int n, turbo_buf *b) {
    int i;
    tb__buf_puts(b, "GET, HEAD, OPTIONS");
    for (i = 0; i < n; i++) {
        if (!strcmp(methods[i], "GET") || !strcmp(methods[i], "HEAD") || !strcmp(methods[i], "OPTIONS") ||
            !strcmp(methods[i], "*"))
            continue;
        tb__buf_puts(b, ", ");
        tb__buf_puts(b, methods[i]);
    }
}

static void tb__allow_value(const tb__node *n, turbo_buf *b) {
    int i, get = 0, head = 0, options = 0;
    for (i = 0; i < n->nhandlers; i++) {
        const char *m = n->handlers[i].method;
        if (i) tb__buf_puts(b, ", ");
        tb__buf_puts(b, m);
        get |= !strcmp(m, "GET");
        head |= !strcmp(m, "HEAD");
        options |= !strcmp(m, "OPTIONS");
    }
    if (get && !head) tb__buf_puts(b, ", HEAD");
    if (!options) tb__buf_puts(b, ", OPTIONS");
}

/* Letters, digits and '_', not a digit first. p is in a pattern, its n
   bytes followed by "}" or "...}": strspn stops there. */
static int tb__is_ident(const char *p, size_t n) {
    return n && !(p[0] >= '0' && p[0] <= '9') &&
           strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == n;
}

/* Checks one pattern segment. Returns 0 static, 1 {name}, 2 {name...},
   or -1 with the reason in err. */
static int tb__segment_kind(const char *pattern, const char *p, size_t n, char *err, size_t cap) {
    const char *open = (const char *)memchr(p, '{', n), *close = (const char *)memchr(p, '}', n);
    const char *why;
    size_t i = 0;
    int tail = n > 5 && memcmp(p + n - 4, "...}", 4) == 0;
    if (!open && !close) {
        while (i < n && TB__IS(TB__TARGET, p[i]) && p[i] != '?' && p[i] != '#') i++;
        if (i == n) return 0;
        why = " has a character not allowed in a path";
    } else if (!close || (open && close < open)) {
        why = " is missing \"}\"";
    } else if (!open) {
        why = " has \"}\" without \"{\"";
    } else if (open != p || close != p + n - 1) {
        why = ": a capture must be a whole segment";
    } else if (tb__is_ident(p + 1, n - (tail ? 5 : 2))) {
        return tail ? 2 : 1;
    } else {
        return tb__errorf(err, cap, "route \"%s\": capture name \"%.*s\" is not an identifier", pattern,
                          (int)(n - 2), p + 1);
    }
    return tb__errorf(err, cap, "route \"%s\"%s", pattern, why);
}

/* Walks the trie for pattern: 0 with *out its node, or -1 with err set.
   With out NULL it only checks, creating nothing, so that a refused pattern
   leaves no nodes behind. */
static int tb__router_node(tb__node *root, const char *pattern, tb__node **out, char *err, size_t cap) {
    const char *p = pattern[1] ? pattern + 1 : NULL, *end = pattern + strlen(pattern); /* "/": the root */
    turbo_str names[TURBO_MAX_PARAMS]; /* the captures so far */
    int captures = 0, i;
    tb__node *n = root;
    if (pattern[0] != '/') return tb__errorf(err, cap, "route \"%s\" must start with \"/\"", pattern);
    while (p) {
        const char *slash = (const char *)memchr(p, '/', (size_t)(end - p));
        size_t len = (size_t)((slash ? slash : end) - p);
        int kind = tb__segment_kind(pattern, p, len, err, cap);
        if (kind < 0) return -1;
        if (!len && slash) return tb__errorf(err, cap, "route \"%s\" has an empty segment", pattern);
        if (kind == 0) {
            n = out ? tb__node_add_static(n, p, len) : n ? tb__node_child(n, p, len, tb__hash(p, len)) : NULL;
        } else {
            const char *name = p + 1;
            size_t name_len = len - (kind == 2 ? 5 : 2);
            tb__node **slot = !n ? NULL : kind == 1 ? &n->param : &n->tail;
            if (kind == 2 && slash)
                return tb__errorf(err, cap, "route \"%s\": {%.*s...} must be the last segment", pattern,
                                  (int)name_len, name);
            for (i = 0; i < captures; i++)
                if (names[i].len == name_len && memcmp(names[i].ptr, name, name_len) == 0)
                    return tb__errorf(err, cap, "route \"%s\" uses the capture {%.*s} twice", pattern,
                                      (int)name_len, name);
            if (captures == TURBO_MAX_PARAMS)
                return tb__errorf(err, cap, "route \"%s\" has more than %d captures", pattern,
                                  TURBO_MAX_PARAMS);
            names[captures++] = tb__str(name, name_len);
            if (slot && *slot && ((*slot)->seg_len != name_len || memcmp((*slot)->seg, name, name_len)))
                return tb__errorf(err, cap,
                                  "route \"%s\": capture {%.*s} conflicts with {%s} of an earlier route",
                                  pattern, (int)name_len, name, (*slot)->seg);
            if (out && !*slot) *slot = tb__node_new(name, name_len);
            n = slot ? *slot : NULL;
        }
        if (out && !n) return tb__errorf(err, cap, "out of memory adding route \"%s\"", pattern);
        p = slash ? slash + 1 : NULL;
    }
    if (out) *out = n;
    return 0;
}

static int tb__router_add(tb__node *root, const char *method, const char *pattern, turbo_handler fn,
                          void *user, int flags, char *err, size_t cap) {
    size_t mlen = strlen(method), i = 0;
    tb__node *n;
    tb__handler *h;
    while (i < mlen && TB__IS(TB__TCHAR, method[i])) i++;
    if (!mlen || i < mlen || mlen >= TB__METHOD_MAX)
        return tb__errorf(err, cap, "method \"%s\" is not a valid HTTP method token", method);
    if (!fn) return tb__errorf(err, cap, "route %s \"%s\" has no handler", method, pattern);
    if (tb__router_node(root, pattern, NULL, err, cap) || tb__router_node(root, pattern, &n, err, cap))
        return -1;
    for (i = 0; i < (size_t)n->nhandlers; i++)
        if (!strcmp(n->handlers[i].method, method))
            return tb__errorf(err, cap, "route %s \"%s\" is already registered", method, pattern);
    h = (tb__handler *)TURBO_REALLOC(n->handlers, (size_t)(n->nhandlers + 1) * sizeof *h);
    if (!h) return tb__errorf(err, cap, "out of memory adding route \"%s\"", pattern);
    n->handlers = h;
    h += n->nhandlers++;
    memset(h, 0, sizeof *h);
    memcpy(h->method, method, mlen + 1);
    h->method_len = mlen;
    h->fn = fn;
    h->user = user;
    h->flags = flags;
    for (i = 0; i < TB__STD_METHODS; i++) /* the array may have moved: all anew */
        n->serves[i] = tb__node_handler(n, tb__str(tb__std_methods[i], strlen(tb__std_methods[i])));
    return 0;
}

/* ---------------------------------------------------------------- JSON writer */

/* The writer streams into a turbo_buf: each call checks that its token may
   come now, makes room (calling turbo_buf_reserve only when short of it),
   then writes the comma it needs and the token through a plain pointer.
   j->state says what may come next (its low 4 bits, zero: the start) and
   what may come after a value at this level (its high bits): a value
   completes a level in one step, state = (state >> 4) * 0x11. j->stack keeps
   a bit per open container, whether it is an object, which gives the state
   to return to when it ends. The first error sticks: later calls write
   nothing and return it. Output is not rolled back on error; the caller
   discards it (turbo answers 500). */
enum {
    TB__JSON_START = 0,        /* top level, nothing written yet */
    TB__JSON_MEMBER = 2,       /* after a key: its value */
    TB__JSON_ARRAY_FIRST = 4,  /* after '[': a value or ']' */
    TB__JSON_ARRAY_NEXT = 5,   /* after an element: ',' value or ']' */
    TB__JSON_OBJECT_FIRST = 6, /* after '{': a key or '}' */
    TB__JSON_OBJECT_NEXT = 7,  /* after a member: ',' key or '}' */
    TB__JSON_DONE = 8          /* the one top-level value is complete */
};
/* Values may come in the states below TB__JSON_OBJECT_FIRST, keys in the
   two object ones; the odd states, the NEXT ones, want a comma first. */
#define TB__JSON_EXPECT(j) ((j)->state & 15)

/* Input bytes a string is escaped in at a time: each round reserves room for
   the worst case (6 output bytes per input byte), so this bounds how much
   spare room one call asks for. */
enum { TB__JSON_CHUNK = 4096 };

static const char tb__json_pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

static int tb__json_fail(turbo_json *j, int error) {
    j->error = error;
    return error;
}

/* Makes room for n more bytes: 0, or OOM (set). The common case, room
   already there, costs no call. */
TB__INLINE int tb__json_room(turbo_json *j, size_t n) {
    turbo_buf *b = j->out;
    if (b->cap - b->len >= n && !b->oom) return 0;
    return tb__reserve(b, n) ? tb__json_fail(j, TURBO_JSON_OOM) : 0;
}

/* The error of a value that may not come now (the sticky one first). */
static int tb__json_misplaced(turbo_json *j) {
    if (j->error) return j->error;
    return tb__json_fail(j, TB__JSON_EXPECT(j) == TB__JSON_DONE ? TURBO_JSON_AFTER_END
                                                                : TURBO_JSON_EXPECTED_KEY);
}

/* Checks that a value may come now, makes room for it and its comma and
   writes the comma. Returns where to write the value, or NULL (error set). */
static inline char *tb__json_value_at(turbo_json *j, size_t room) {
    char *o;
    if (j->error || TB__JSON_EXPECT(j) >= TB__JSON_OBJECT_FIRST) {
        tb__json_misplaced(j);
        return NULL;
    }
    if (tb__json_room(j, room + 1)) return NULL;
    o = j->out->data + j->out->len;
    *o = ',';
    return o + (j->state & 1);
}

/* Ends a value written up to p: the level wants its next member, or the
   document is complete. */
static int tb__json_value_done(turbo_json *j, char *p) {
    j->out->len = (size_t)(p - j->out->data);
    j->state = (j->state >> 4) * 0x11;
    return 0;
}

/* ---- strings ----
   Escapes as turbo_json_init's comment says ('/' and DEL stay as they are).
   Invalid UTF-8 becomes U+FFFD, one per maximal subpart (The Unicode
   Standard, 3.9, "U+FFFD Substitution of Maximal Subparts"), as Python's
   bytes.decode("utf-8", "replace") does: a byte that cannot start a
   sequence (80-C1, F5-FF) is one subpart; otherwise the subpart is the
   longest prefix of a well-formed sequence that is there, so E2 82 followed
   by 'A' (or by the end) is one U+FFFD, then 'A'. Overlongs, surrogates and
   values above U+10FFFF fail at their first or second byte (C0, E0 80, ED
   A0, F0 80, F4 90), so each of their bytes becomes one U+FFFD. */

/* Nonzero if any of the 8 bytes of w is below 0x20, '"', '\\' or 0x80 and
   above. XOR with 2 moves '"' to 0x20 and keeps the controls below it, so
   one subtraction finds both. Exact as a yes/no: in a word of plain bytes
   no lane borrows or sets its top bit, and the first special byte sets its
   own. */
static uint64_t tb__json_special8(uint64_t w) {
    const uint64_t ones = 0x0101010101010101u;
    uint64_t t = ((w ^ ones * 2) - ones * 0x21) | ((w ^ ones * '\\') - ones);
    return (t | w) & ones * 0x80;
}

/* tb__json_special8 for n <= 16 bytes: two overlapping words (or halves,
   or three bytes and spaces), no loop. */
static inline uint64_t tb__json_special16(const unsigned char *s, size_t n) {
    uint64_t a, b;
    uint32_t lo, hi;
    if (n >= 8) {
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        return tb__json_special8(a) | tb__json_special8(b);
    }
    if (n >= 4) {
        memcpy(&lo, s, 4);
        memcpy(&hi, s + n - 4, 4);
    } else if (n) {
        lo = hi = s[0] | (uint32_t)s[n / 2] << 8 | (uint32_t)s[n - 1] << 16 | (uint32_t)' ' << 24;
    } else {
        return 0;
    }
    return tb__json_special8(lo | (uint64_t)hi << 32);
}

/* The first byte from s that a JSON string cannot hold as it is ('"',
   '\\', a control byte) or that is not ASCII, or stop: with SSE2 16 bytes at
   a time (a byte's top bit is its sign, which movemask gathers), then 8. */
static inline const unsigned char *tb__json_plain_end(const unsigned char *s, const unsigned char *stop) {
    uint64_t w;
#ifdef TB__SSE2
    for (; stop - s >= 16; s += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)s);
        __m128i control = _mm_cmplt_epi8(_mm_xor_si128(x, _mm_set1_epi8(-128)), _mm_set1_epi8(-96));
        __m128i quote =
            _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')), _mm_cmpeq_epi8(x, _mm_set1_epi8('\\')));
        unsigned hits = (unsigned)(_mm_movemask_epi8(_mm_or_si128(control, quote)) | _mm_movemask_epi8(x));
        if (hits) return s + __builtin_ctz(hits);
    }
#endif
    for (; stop - s >= 8; s += 8) {
        memcpy(&w, s, 8);
        if (tb__json_special8(w)) break;
    }
    if (stop - s < 8 && !tb__json_special16(s, (size_t)(stop - s))) return stop;
    while (s < stop && *s >= 0x20 && *s < 0x80 && *s != '"' && *s != '\\') s++;
    return s;
}

/* The length of the well-formed UTF-8 sequence at s (n >= 1 bytes left,
   s[0] >= 0x80), or minus the length of its maximal ill-formed subpart. */
static int tb__json_utf8(const unsigned char *s, size_t n) {
    unsigned c = s[0], lo = 0x80, hi = 0xBF;
    int len = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4, i;
    if (c < 0xC2 || c > 0xF4) return -1;
    if (c == 0xE0) lo = 0xA0; /* overlong */
    if (c == 0xED) hi = 0x9F; /* surrogates */
    if (c == 0xF0) lo = 0x90; /* overlong */
    if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
    if (n < 2 || s[1] < lo || s[1] > hi) return -1;
    for (i = 2; i < len; i++)
        if ((size_t)i >= n || (s[i] & 0xC0) != 0x80) return -i;
    return len;
}

static char *tb__json_escape_ascii(char *o, unsigned c) {
    static const char hex[] = "0123456789abcdef", from[] = "\"\\\b\f\n\r\t", to[] = "\"\\bfnrt";
    const char *k = c ? strchr(from, (int)c) : NULL; /* not NUL: strchr finds the terminator */
    if (k) {
        o[0] = '\\';
        o[1] = to[k - from];
        return o + 2;
    }
    memcpy(o, "\\u00", 4);
    o[4] = hex[c >> 4];
    o[5] = hex[c & 15];
    return o + 6;
}

/* memcpy for the short runs most strings are made of: no call up to 16. */
static inline void tb__json_copy(char *o, const unsigned char *s, size_t n) {
    if (n > 16) {
        memcpy(o, s, n);
    } else if (n >= 8) {
        memcpy(o, s, 8);
        memcpy(o + n - 8, s + n - 8, 8);
    } else if (n >= 4) {
        memcpy(o, s, 4);
        memcpy(o + n - 4, s + n - 4, 4);
    } else if (n) {
        o[0] = (char)s[0];
        o[n / 2] = (char)s[n / 2];
        o[n - 1] = (char)s[n - 1];
    }
}

/* Escapes the bytes from s to stop into *out, which has room for 6 bytes
   per byte up to 3 past stop: a sequence that starts before stop may end
   there (never past `end`). Bytes that need nothing, valid multi-byte
   sequences included, are copied in runs with one copy each; 8 bytes are
   checked at a time. Returns where it stopped: stop, or up to 3 past it. */
static const unsigned char *tb__json_escape(char **out, const unsigned char *s, const unsigned char *stop,
                                            const unsigned char *end) {
    char *o = *out;
    const unsigned char *run = s;
    while (s < stop) {
        unsigned c;
        int n;
        if ((s = tb__json_plain_end(s, stop)) >= stop) break;
        c = *s;
        n = c >= 0x80 ? tb__json_utf8(s, (size_t)(end - s)) : 0;
        /* U+2028 and U+2029 are E2 80 A8 and E2 80 A9 */
        if (n > 0 && !(n == 3 && c == 0xE2 && s[1] == 0x80 && (s[2] & 0xFE) == 0xA8)) {
            s += n;
            continue;
        }
        tb__json_copy(o, run, (size_t)(s - run));
        o += s - run;
        if (n == 0) {
            o = tb__json_escape_ascii(o, c);
            s++;
        } else if (n > 0) {
            o = tb__put(o, s[2] == 0xA8 ? "\\u2028" : "\\u2029", 6);
            s += 3;
        } else {
            o = tb__put(o, "\xEF\xBF\xBD", 3);
            s += -n;
        }
        run = s;
    }
    tb__json_copy(o, run, (size_t)(s - run));
    *out = o + (s - run);
    return s;
}


/* tb__json_put_string for a long string, one that needs escaping, or one
   that needs more room: escaped a chunk at a time. */
static TB__NOINLINE int tb__json_put_long(turbo_json *j, size_t comma, const unsigned char *s, size_t len,
                                           size_t key) {
    turbo_buf *b = j->out;
    const unsigned char *start, *end;
    char *o;
    if (!s) s = (const unsigned char *)""; /* (NULL, 0): no arithmetic on a null pointer */
    start = s;
    end = s + len;
    do {
        size_t left = (size_t)(end - s), chunk = TB__JSON_CHUNK, take = left < chunk ? left : chunk;
        /* 6 per byte, a sequence may end 3 past the chunk, 4 for comma, quotes, colon */
        if (tb__json_room(j, (take + 3) * 6 + 4)) return j->error;
        o = b->data + b->len;
        if (s == start) {
            *o = ',';
            o += comma;
            *o++ = '"';
        }
        s = tb__json_escape(&o, s, s + take, end);
        b->len = (size_t)(o - b->data);
    } while (s < end);
    *o++ = '"';
    *o = ':';
    b->len = (size_t)(o + key - b->data);
    return 0;
}

/* Appends a comma if `comma`, the quoted and escaped string, then ':' if
   `key`. A short plain string that fits, the common case, costs no loop,
   no call and no stack frame (nor a read of s when len is 0: s may be NULL). */
TB__INLINE int tb__json_put_string(turbo_json *j, size_t comma, const char *str, size_t len, size_t key) {
    turbo_buf *b = j->out;
    const unsigned char *s = (const unsigned char *)str;
    char *o;
    if (len > 16 || tb__json_special16(s, len) || b->cap - b->len < len + 4 || b->oom)
        return tb__json_put_long(j, comma, s, len, key);
    o = b->data + b->len;
    *o = ',';
    o += comma;
    *o = '"';
    o[len + 1] = '"';
    o[len + 2] = ':';
    b->len = (size_t)(o + len + 2 + key - b->data);
    tb__json_copy(o + 1, s, len);
    return 0;
}

/* ---- integers ----
   Two digits per step from a table, in 32-bit pieces of 8 digits; every
   division is by a constant, so the compiler makes it a multiplication.
   Content-Length and the Date's year are written with them too. */

/* v without leading zeros, ending just before end; returns its start. */
static char *tb__digits_back(char *end, uint64_t v) {
    for (; v >= 100; v /= 100) end = tb__put_back(end, tb__json_pairs + 2 * (v % 100), 2);
    if (v >= 10) return tb__put_back(end, tb__json_pairs + 2 * v, 2);
    *--end = (char)('0' + v);
    return end;
}

/* v < 10^8 without leading zeros; returns the end. */
static char *tb__json_u32(char *o, uint32_t v) {
    int n = v < 10000 ? (v < 100 ? (v < 10 ? 1 : 2) : (v < 1000 ? 3 : 4))
                      : (v < 1000000 ? (v < 100000 ? 5 : 6) : (v < 10000000 ? 7 : 8));
    tb__digits_back(o + n, v);
    return o + n;
}

/* v < 10^8 as exactly 8 digits. */
static void tb__json_8digits(char *o, uint32_t v) {
    uint32_t hi = v / 10000, lo = v % 10000;
    memcpy(o, tb__json_pairs + 2 * (hi / 100), 2);
    memcpy(o + 2, tb__json_pairs + 2 * (hi % 100), 2);
    memcpy(o + 4, tb__json_pairs + 2 * (lo / 100), 2);
    memcpy(o + 6, tb__json_pairs + 2 * (lo % 100), 2);
}

/* v in decimal; returns the end. Past 10^8, the digits above the last 8
   first (a call deeper at most twice). */
static char *tb__json_u64(char *o, uint64_t v) {
    if (v < 100000000) return tb__json_u32(o, (uint32_t)v);
    o = tb__json_u64(o, v / 100000000);
    tb__json_8digits(o, (uint32_t)(v % 100000000));
    return o + 8;
}

/* ---- doubles: shortest round-trip decimal (Schubfach) ----
   After R. Giulietti, "The Schubfach way to render doubles" (2020). For
   v = c * 2^q, its rounding interval R (the reals that read back as v) is
   scaled by 10^-k, k = floor(log10(width of R)), with one 128-bit
   multiplication per end, rounded to odd so that comparisons with even
   integers stay exact. R then holds at most one multiple of 10^(k+1) and at
   least one of 10^k; the shortest decimal is the former if present, else
   the multiple of 10^k nearest v (ties to even digits). These are the digits
   of David Gay's dtoa in shortest mode, which Python's repr() uses.

   The scale factors g(e) = floor(10^e * 2^(127 - floor(log2 10^e))) + 1,
   e in [-292, 324], are rebuilt from every 28th one times 5^r plus a 2-bit
   correction: 23 stored entries instead of 617, for two multiplications per
   call. tests/gen_pow10.py generated the tables and checked every entry and
   every range assumption below. */

typedef struct tb__dtoa_u128 {
    uint64_t hi, lo;
} tb__dtoa_u128;

/* clang-format off */
static const uint64_t tb__dtoa_pow10_base[23][2] = {
    {0xff77b1fcbebcdc4f, 0x25e8e89c13bb0f7a}, {0x80fa687f881c7f8e, 0x7ce66634bc9d0b99},
    {0x823c12795db6ce57, 0x76c53d08d6b70858}, {0x8380dea93da4bc60, 0x4247cb9e59f71e6d},
    {0x84c8d4dfd2c63f3b, 0x29ecd9f40041e073}, {0x8613fd0145877585, 0xbd06742ce95f5f36},
    {0x87625f056c7c4a8b, 0x11471cd764ad4972}, {0x88b402f7fd75539b, 0x11dbcb0218ebb414},
    {0x8a08f0f8bf0f156b, 0x1b8e9ecb641b58ff}, {0x8b61313bbabce2c6, 0x2323ac4b3b3da015},
    {0x8cbccc096f5088cb, 0xf93f87b7442e45d3}, {0x8e1bc9bf04000000, 0x0000000000000000},
    {0x8f7e32ce7bea5c6f, 0xe4820023a2000000}, {0x90e40fbeea1d3a4a, 0xbc8955e946fe31cd},
    {0x924d692ca61be758, 0x593c2626705f9c56}, {0x93ba47c980e98cdf, 0xc66f336c36b10137},
    {0x952ab45cfa97a0b2, 0xdd945a747bf26183}, {0x969eb7c47859e743, 0x9f644ae5a4b1b325},
    {0x98165af37b2153de, 0xc3727a337a8b704a}, {0x9991a6f3d6bf1765, 0xacca6da1e0a8ef29},
    {0x9b10a4e5e9913128, 0xca7cf2b4191c8326}, {0x9c935e00d4b9d8d2, 0x6ed1bf9a569f33d3},
    {0x9e19db92b4e31ba9, 0x6c07a2c26a8346d1},
};
static const uint64_t tb__dtoa_pow5[28] = {
    1u, 5u, 25u, 125u,
    625u, 3125u, 15625u, 78125u,
    390625u, 1953125u, 9765625u, 48828125u,
    244140625u, 1220703125u, 6103515625u, 30517578125u,
    152587890625u, 762939453125u, 3814697265625u, 19073486328125u,
    95367431640625u, 476837158203125u, 2384185791015625u, 11920928955078125u,
    59604644775390625u, 298023223876953125u, 1490116119384765625u, 7450580596923828125u,
};
static const uint64_t tb__dtoa_pow10_fix[20] = {
    0x9404410050001400, 0x0040555569565565, 0x4410100400000000, 0x5451541455055151,
    0x1541551554014514, 0x9554555555545545, 0x0544554554000056, 0x1051555595555514,
    0x5524001500101100, 0x000000a6aaaaa955, 0x0000000000000000, 0x5555925514000000,
    0x505440505554525a, 0x0000000000000055, 0x1045145450511554, 0x4400414555415141,
    0x0000004000404040, 0x5514151400000000, 0x0410000414014415, 0x0000000000005550,
};
/* clang-format on */

/* 64x64 -> 128-bit product: one instruction where the compiler has a
   128-bit type, else from 32-bit halves. */
static tb__dtoa_u128 tb__dtoa_mul(uint64_t a, uint64_t b) {
    tb__dtoa_u128 r;
#if defined(__SIZEOF_INT128__)
    __extension__ typedef unsigned __int128 tb__dtoa_wide;
    tb__dtoa_wide p = (tb__dtoa_wide)a * b;
    r.hi = (uint64_t)(p >> 64);
    r.lo = (uint64_t)p;
#else
    uint64_t a0 = a & 0xffffffffu, a1 = a >> 32, b0 = b & 0xffffffffu, b1 = b >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);
    r.hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
    r.lo = (mid << 32) | (p00 & 0xffffffffu);
#endif
    return r;
}

/* floor(q log10 2) (for an irregular c, floor(q log10 2 + log10 3/4)) and
   floor(e log2 10) by fixed-point multiplication, exact over the ranges used;
   the bias keeps the shifted value non-negative (right shifts of negatives
   are not portable). */
static int tb__dtoa_log10_pow2(int q, int irregular) {
    return ((q * 315653 - (irregular ? 131237 : 0) + (1024 << 20)) >> 20) - 1024;
}
static int tb__dtoa_log2_pow10(int e) { return ((e * 1741647 + (1024 << 19)) >> 19) - 1024; }

/* g(e), e in [-292, 324]: base * 5^r / 2^sh, plus the stored correction and 1. */
static tb__dtoa_u128 tb__dtoa_pow10(int e) {
    int i = (e + 292) / 28, r = (e + 292) % 28;
    unsigned fix = (unsigned)(tb__dtoa_pow10_fix[(e + 292) / 32] >> (2 * ((e + 292) % 32))) & 3;
    tb__dtoa_u128 g;
    g.hi = tb__dtoa_pow10_base[i][0];
    g.lo = tb__dtoa_pow10_base[i][1];
    if (r) {
        int sh = tb__dtoa_log2_pow10(e) - tb__dtoa_log2_pow10(e - r) - r; /* 1..63 */
        tb__dtoa_u128 lo = tb__dtoa_mul(g.lo, tb__dtoa_pow5[r]);
        tb__dtoa_u128 hi = tb__dtoa_mul(g.hi, tb__dtoa_pow5[r]);
        uint64_t mid = hi.lo + lo.hi, top = hi.hi + (mid < lo.hi);
        g.hi = (top << (64 - sh)) | (mid >> sh);
        g.lo = (mid << (64 - sh)) | (lo.lo >> sh);
    }
    g.lo += fix + 1;
    g.hi += g.lo < fix + 1;
    return g;
}

/* g * cp / 2^128 rounded to odd: the floor, its low bit set if inexact. */
static uint64_t tb__dtoa_round_odd(tb__dtoa_u128 g, uint64_t cp) {
    tb__dtoa_u128 x = tb__dtoa_mul(g.lo, cp), y = tb__dtoa_mul(g.hi, cp);
    uint64_t z = y.lo + x.hi;
    return (y.hi + (z < y.lo)) | (z != 0);
}

/* The shortest decimal in the rounding interval of v = c * 2^q: returns its
   digits, *k its power of ten. `irregular`: c is a power of two above the
   subnormals, so the gap below v is half the gap above. */
static uint64_t tb__dtoa_schubfach(uint64_t c, int q, int irregular, int *k) {
    uint64_t cb = c << 2, cbl = cb - 2 + (uint64_t)irregular, cbr = cb + 2;
    uint64_t vb, lower, upper, s, sp, mid;
    int kk = tb__dtoa_log10_pow2(q, irregular);
    int h = q + tb__dtoa_log2_pow10(-kk) + 1; /* 1..4: cbr << h fits */
    tb__dtoa_u128 g = tb__dtoa_pow10(-kk);
    uint64_t odd = c & 1; /* ends of R belong to it only for an even c */
    vb = tb__dtoa_round_odd(g, cb << h);
    lower = tb__dtoa_round_odd(g, cbl << h) + odd;
    upper = tb__dtoa_round_odd(g, cbr << h) - odd;
    /* all values below are in units of 10^kk / 4 */
    s = vb >> 2;
    sp = s / 10;
    if ((lower <= 40 * sp) != (40 * sp + 40 <= upper)) {
        *k = kk + 1;
        return sp + (40 * sp + 40 <= upper);
    }
    *k = kk;
    if ((lower <= 4 * s) != (4 * s + 4 <= upper)) return s + (4 * s + 4 <= upper);
    mid = 4 * s + 2;
    return s + (vb > mid || (vb == mid && (s & 1)));
}

/* Digits (no trailing zeros) and power of ten of the shortest decimal of
   the positive finite double with biased exponent be and fraction f. */
static uint64_t tb__dtoa_decimal(int be, uint64_t f, int *k) {
    uint64_t c = be ? f | ((uint64_t)1 << 52) : f, d;
    int q = be ? be - 1075 : -1074;
    if (q <= 0 && q >= -52 && !(c & (((uint64_t)1 << -q) - 1))) {
        /* an integer below 2^53: its own digits are the shortest */
        d = c >> -q;
        *k = 0;
    } else {
        d = tb__dtoa_schubfach(c, q, f == 0 && be > 1, k);
    }
    while (d % 10000 == 0) {
        d /= 10000;
        *k += 4;
    }
    while (d % 10 == 0) {
        d /= 10;
        *k += 1;
    }
    return d;
}

/* Lays out the digits as Python's repr() does: positional when
   1e-4 <= |v| < 1e16, with ".0" added to integers; otherwise d.ddde+XX with
   at least two exponent digits. */
TURBO_API int turbo_dtoa(double v, char *dst) {
    char digits[20], *o = dst;
    uint64_t bits, d;
    int be, k, n, point, e;
    memcpy(&bits, &v, sizeof bits);
    be = (int)(bits >> 52) & 0x7ff;
    if (be == 0x7ff && (bits << 12)) return (int)(tb__put(dst, "nan", 3) - dst);
    if (bits >> 63) *o++ = '-';
    if (be == 0x7ff) return (int)(tb__put(o, "inf", 3) - dst);
    if (!(bits << 1)) return (int)(tb__put(o, "0.0", 3) - dst);
    d = tb__dtoa_decimal(be, bits & (((uint64_t)1 << 52) - 1), &k);
    n = (int)(tb__json_u64(digits, d) - digits);
    point = n + k; /* v = 0.DIGITS * 10^point */
    if (point > 16 || point <= -4) {
        *o++ = digits[0];
        if (n > 1) {
            *o++ = '.';
            o = tb__put(o, digits + 1, (size_t)(n - 1));
        }
        e = point - 1;
        *o++ = 'e';
        *o++ = e < 0 ? '-' : '+';
        if (e < 0) e = -e;
        if (e < 10) *o++ = '0'; /* two digits at least */
        o = tb__json_u32(o, (uint32_t)e);
    } else if (point <= 0) {
        o = tb__put(o, "0.000", (size_t)(2 - point));
        o = tb__put(o, digits, (size_t)n);
    } else if (point >= n) {
        o = tb__put(o, digits, (size_t)n);
        memset(o, '0', (size_t)(point - n));
        o = tb__put(o + point - n, ".0", 2);
    } else {
        o = tb__put(o, digits, (size_t)point);
        *o++ = '.';
        o = tb__put(o, digits + point, (size_t)(n - point));
    }
    return (int)(o - dst);
}

/* ---- the API ---- */

TURBO_API void turbo_json_init(turbo_json *j, turbo_buf *out) {
    j->out = out;
    j->error = TURBO_JSON_OK;
    j->depth = 0;
    j->state = TB__JSON_START | TB__JSON_DONE << 4;
}

/* A level's bit is the first written in its byte of j->stack (which
   turbo_json_init leaves as it is) or joins those of the levels below. */
static inline int tb__json_open(turbo_json *j, int is_object) {
    char *p = tb__json_value_at(j, 1);
    int d = j->depth;
    unsigned bit = 1u << (d & 7), below = d & 7 ? j->stack[d >> 3] & (bit - 1) : 0;
    if (!p) return j->error;
    if (d >= TURBO_JSON_MAX_DEPTH) return tb__json_fail(j, TURBO_JSON_TOO_DEEP);
    *p = is_object ? '{' : '[';
    j->out->len = (size_t)(p + 1 - j->out->data);
    j->stack[d >> 3] = (unsigned char)(below | (is_object ? bit : 0));
    j->depth = d + 1;
    j->state = is_object ? TB__JSON_OBJECT_FIRST | TB__JSON_OBJECT_NEXT << 4
                         : TB__JSON_ARRAY_FIRST | TB__JSON_ARRAY_NEXT << 4;
    return 0;
}

/* A container may end after its opening or after a complete member; a key
   still waiting for its value makes the end a bad one. The level it
   returns to is the enclosing container's, or the top's. */
static inline int tb__json_close(turbo_json *j, int is_object) {
    turbo_buf *b = j->out;
    int level, next;
    if (j->error) return j->error;
    if (TB__JSON_EXPECT(j) >> 1 != (is_object ? TB__JSON_OBJECT_FIRST : TB__JSON_ARRAY_FIRST) >> 1)
        return tb__json_fail(j, TURBO_JSON_BAD_END);
    if (tb__json_room(j, 1)) return j->error;
    b->data[b->len++] = is_object ? '}' : ']';
    level = --j->depth - 1;
    if (level < 0) next = TB__JSON_DONE;
    else next = j->stack[level >> 3] >> (level & 7) & 1 ? TB__JSON_OBJECT_NEXT : TB__JSON_ARRAY_NEXT;
    j->state = next * 0x11;
    return 0;
}

TB__API_INLINE int turbo_json_object_begin(turbo_json *j) { return tb__json_open(j, 1); }
TB__API_INLINE int turbo_json_object_end(turbo_json *j) { return tb__json_close(j, 1); }
TB__API_INLINE int turbo_json_array_begin(turbo_json *j) { return tb__json_open(j, 0); }
TB__API_INLINE int turbo_json_array_end(turbo_json *j) { return tb__json_close(j, 0); }

TB__API_INLINE int turbo_json_keyn(turbo_json *j, const char *key, size_t len) {
    size_t comma;
    if (j->error) return j->error;
    if (TB__JSON_EXPECT(j) >> 1 != TB__JSON_OBJECT_FIRST >> 1)
        return tb__json_fail(j, TURBO_JSON_UNEXPECTED_KEY);
    comma = (size_t)j->state & 1;
    j->state = (j->state & ~15) | TB__JSON_MEMBER; /* not read again if the key fails: the error sticks */
    return tb__json_put_string(j, comma, key, len, 1);
}
TB__API_INLINE int turbo_json_key(turbo_json *j, const char *key) { return turbo_json_keyn(j, key, strlen(key)); }

TB__API_INLINE int turbo_json_stringn(turbo_json *j, const char *s, size_t len) {
    size_t comma = (size_t)j->state & 1;
    if (j->error || TB__JSON_EXPECT(j) >= TB__JSON_OBJECT_FIRST) return tb__json_misplaced(j);
    j->state = (j->state >> 4) * 0x11;
    return tb__json_put_string(j, comma, s, len, 0);
}
/* A NULL string is written as null, so optional fields need no branch. */
TB__API_INLINE int turbo_json_string(turbo_json *j, const char *s) {
    return s ? turbo_json_stringn(j, s, strlen(s)) : turbo_json_null(j);
}

/* An integer: its sign (1 for a negative one) and magnitude. */
static int tb__json_integer(turbo_json *j, int negative, uint64_t v) {
    char *p = tb__json_value_at(j, 20);
    if (!p) return j->error;
    if (negative) *p++ = '-';
    return tb__json_value_done(j, tb__json_u64(p, v));
}
TURBO_API int turbo_json_int(turbo_json *j, int64_t v) {
    return tb__json_integer(j, v < 0, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
}
TURBO_API int turbo_json_uint(turbo_json *j, uint64_t v) { return tb__json_integer(j, 0, v); }

TURBO_API int turbo_json_double(turbo_json *j, double v) {
    char *p = tb__json_value_at(j, 32);
    uint64_t bits;
    if (!p) return j->error;
    memcpy(&bits, &v, sizeof bits);
    if ((bits >> 52 & 0x7ff) == 0x7ff) return tb__json_fail(j, TURBO_JSON_NOT_FINITE);
    return tb__json_value_done(j, p + turbo_dtoa(v, p));
}

TURBO_API int turbo_json_bool(turbo_json *j, int v) {
    return turbo_json_raw(j, v ? "true" : "false", v ? 4 : 5);
}
TURBO_API int turbo_json_null(turbo_json *j) { return turbo_json_raw(j, "null", 4); }
TURBO_API int turbo_json_raw(turbo_json *j, const char *json, size_t len) {
    char *p = tb__json_value_at(j, len);
    if (!p) return j->error;
    if (len) memcpy(p, json, len);
    return tb__json_value_done(j, p + len);
}

TURBO_API int turbo_json_finish(turbo_json *j) {
    if (j->error) return j->error;
    if (TB__JSON_EXPECT(j) != TB__JSON_DONE) return tb__json_fail(j, TURBO_JSON_INCOMPLETE);
    return 0;
}

TURBO_API const char *turbo_json_strerror(int error) {
    switch (error) {
    case TURBO_JSON_OK: return "no error";
    case TURBO_JSON_EXPECTED_KEY: return "a value was written where an object needed a key";
    case TURBO_JSON_UNEXPECTED_KEY: return "a key was written outside an object or after a key";
    case TURBO_JSON_BAD_END: return "an end does not match the open container";
    case TURBO_JSON_TOO_DEEP: return "nesting is deeper than TURBO_JSON_MAX_DEPTH";
    case TURBO_JSON_NOT_FINITE: return "NaN or infinity is not JSON";
    case TURBO_JSON_AFTER_END: return "a value was written after the complete document";
    case TURBO_JSON_INCOMPLETE: return "the document is empty or has containers still open";
    case TURBO_JSON_OOM: return "out of memory for the JSON output";
    default: return "unknown JSON writer error";
    }
}

/* ---------------------------------------------------------------- server state */
/* The state HOW A REQUEST FLOWS names. Normally a worker keeps its thread;
   a handler that blocks makes them part (see "hand-off"). */

/* connection states */
enum {
    TB__C_IDLE,   /* between requests */
    TB__C_HEAD,   /* part of a head received */
    TB__C_BODY,   /* head parsed, body being received */
    TB__C_DEFER,  /* a handler deferred its answer */
    TB__C_WAIT,   /* its request (kept in c->in) waits for a spare thread: see tb__lend */
    TB__C_LINGER, /* answered and closing: the read side is drained */
    TB__C_WS      /* a WebSocket */
};

/* timer classes: every connection in a class has the same timeout */
enum {
    TB__T_HEAD,
    TB__T_BODY,
    TB__T_IDLE,
    TB__T_WRITE,
    TB__T_LINGER,
    TB__T_DEFER,
    TB__T_WAIT, /* the requests that wait for a thread, in order: wait_timeout_ms */
    TB__T_GRACE,
    TB__T_WS,
    TB__T_COUNT
};

enum {
    TB__STREAM_NONE,
    TB__STREAM_CHUNKED,
    TB__STREAM_UNTIL_CLOSE,
    TB__STREAM_LENGTH, /* its length stated (turbo_res_head_length): parts as they are */
    TB__STREAM_ABORTED,
    TB__STREAM_FILE /* a file's answer, complete: the loop sends the file after it */
};

#define TB__LINGER_MS 2000
/* At shutdown, a connection accepted without a byte yet may have its
   request on the way: it gets this long to send it. */
#define TB__DRAIN_GRACE_MS 500
/* A handler still running this long after the shutdown grace period
   (a sync Python handler in an endless loop, say) ends the process. */
#define TB__STOP_GRACE_MS 2000
#define TB__OUT_HIGH (1u << 20)    /* stop serving pipelined requests once this much output waits */
#define TB__OUT_KEEP (256u << 10)  /* a thread's output buffer grown past this is given back */
#define TB__DEFER_HOLD (64u << 10) /* behind a deferred answer, reading stops once this much waits */

typedef struct tb__worker tb__worker;
typedef struct tb__conn tb__conn;
typedef struct tb__thread tb__thread;

struct tb__conn {
    int fd;
    int mask; /* interest registered with the loop */
    int state;
    int requests;
    int close_after; /* close once the output has drained */
    int out_full;    /* complete requests wait in c->in until the output (a file too) drains */
    int saw_lf;      /* the head in progress has a complete request line */
    int head_len;    /* in TB__C_BODY: length of the parsed head */
    int head_only;   /* in TB__C_BODY: the request is a HEAD, whose errors carry no body */
    tb__framing framing;
    tb__chunked chunk;
    size_t head_scan; /* the bytes of the head in progress searched for a line's end */
    turbo_buf in;     /* an unfinished request, or requests held while deferred */
    turbo_buf out;    /* output the kernel has not taken yet */
    size_t out_sent;
    turbo_defer *defer;
    turbo_ws *ws; /* once it answered 101 */
    tb__peer peer;
    int streaming;        /* the answer under way was flushed: TB__STREAM_* */
    uint64_t stream_left; /* TB__STREAM_LENGTH: the body bytes its head still promises */
    /* A file an answer ends with, sent by the loop as the socket takes it
       (after c->out): open while file_left > 0. */
    int file;
    off_t file_at;
    uint64_t file_left;
    int timer;            /* timer class, -1 when in none */
    int idle_kept;        /* empty lines alone came since the last request: its deadline stands */
    int read_shut;        /* the client shut its side while its request waited: nothing more to read */
    int64_t deadline;
    tb__conn *prev, *next; /* in the timer list, or the free list */
    /* While lent (a thread outside the loop runs its handler) the loop
       leaves it alone; the thread hands it back through the mailbox. */
    int lent;
    int dead;                /* the lending thread found the client gone */
    int refused;             /* answered 503 at max_connections, lingering: in w->refused, not counted */
    tb__conn *returned_next; /* in the mailbox's returned list */
};

/* What a worker shares with other threads: those that resume its deferred
   answers and those that hand back lent connections. It outlives the
   worker while answers the worker gave up on at shutdown are still to be
   resumed; the last of them frees it. */
typedef struct tb__mailbox {
    pthread_mutex_t lock;
    int wake_fd;          /* the worker's wake pipe; -1 once the worker has stopped */
    turbo_defer *resumed; /* handed over, not yet answered; oldest first */
    turbo_defer **resumed_tail;
    tb__conn *returned; /* lent connections whose handler has finished */
    turbo_ws *sockets;  /* WebSockets with frames to send */
    int orphans;        /* once stopped: defers not yet resumed */
} tb__mailbox;

struct turbo_defer {
    tb__conn *conn; /* NULL once the connection is gone */
    tb__mailbox *box;
    int keep_alive, head_only, version;
    void (*fn)(turbo_res *res, void *arg);
    void *arg;
    void (*ended)(void *arg, int gone); /* turbo_defer_watch */
    void *ended_arg;
    turbo_defer *next;
    int64_t started_us; /* for the metrics and the log: see turbo_res */
    int method_ix;
    turbo_buf log; /* the access log line's start, until the answer */
};

#define TB__WS_HIGH (1u << 20)  /* turbo_ws_send returns 1 with more than this waiting */
#define TB__WS_MAX (16u << 20)  /* ... and gives up on a client with more than this */
#define TB__WS_LOW (256u << 10) /* on_drain once less than this waits */

/* A WebSocket: see "WebSockets". */
struct turbo_ws {
    pthread_mutex_t lock; /* guards the fields from pending to sent_code */
    turbo_buf pending;    /* frames sent, not yet moved to the connection's output */
    tb__mailbox *box;     /* NULL once the connection is gone */
    int closing;          /* a close frame is in pending or out: nothing more is sent */
    int queued;           /* in box->sockets */
    int in_callback;      /* the worker takes pending when the callback returns */
    int dropped;          /* over TB__WS_MAX: the worker closes the connection */
    int want_drain;       /* turbo_ws_send returned 1 */
    int sent_code;        /* of the close frame in pending, for on_close if the client never answers */
    int paused;           /* turbo_ws_pause's (atomic: read unlocked as frames are served) */
    int refs;             /* atomic: the connection's, turbo_ws_retain's, box->sockets' */
    size_t backlog;       /* atomic: bytes in the connection's output, as last seen */
    /* The rest is the worker's. */
    tb__conn *conn; /* NULL once gone */
    const turbo_ws_handler *h;
    void *user;
    int opened, pinged, close_sent, read_paused;
    int code;         /* for on_close: the client's close, or turbo's */
    int msg_op;       /* 1 text, 2 binary: the fragmented message under way */
    size_t msg_valid; /* bytes of msg known to be UTF-8 */
    turbo_buf msg;
    turbo_ws *next;              /* in box->sockets */
    turbo_ws *prev_ws, *next_ws; /* in the worker's list */
};

struct turbo_res {
    tb__worker *w;
    tb__thread *t;
    tb__conn *c;
    turbo_buf *out;
    size_t start;      /* where this response begins in out */
    size_t body_start; /* where its body begins; (size_t)-1 until it does */
    int status;
    int answered;        /* the handler set anything at all */
    int head_only;       /* a HEAD request: the body is measured, then dropped */
    int64_t head_length; /* turbo_res_head_length's, or -1 */
    int keep_alive;
    int json_active;
    int deferred;
    int typed; /* the handler set a Content-Type */
    turbo_json json;
    /* When observing (metrics or access log): when the request's head was
       parsed, its method's place in tb__methods_counted, the bytes of the
       answer sent before it ended, where its log line starts in t->log. */
    int64_t started_us;
    int method_ix;
    uint64_t sent;
    size_t log_mark;
};

/* A thread's counters for the metrics, by the places below, in memory the
   processes of a server share (tb__slot): only their thread writes them,
   with relaxed atomic stores (no read-modify-write), so that tb__metrics
   may read them from any thread of any process. */
#define TB__METHODS 8  /* GET HEAD POST PUT DELETE PATCH OPTIONS, other */
#define TB__BUCKETS 14 /* latency histogram bounds, plus one over the last */
enum {
    TB__N_REQUESTS = 0, /* [method * 5 + status class]: 1xx (101, a WebSocket) to 5xx */
    TB__N_LATENCY = TB__METHODS * 5,
    TB__N_LATENCY_US = TB__N_LATENCY + TB__BUCKETS + 1,
    TB__N_BYTES_IN,
    TB__N_BYTES_OUT,
    TB__N_HANDOFFS,
    TB__N_DEFERRED,
    TB__N_RESUMED,
    TB__NCOUNTS,
    TB__SLOT = (TB__NCOUNTS + 7) / 8 * 8 /* whole cache lines: no false sharing */
};
/* a worker's gauges: open connections, those idle among them, those whose request waits for a thread */
enum { TB__G_CONNS, TB__G_IDLE, TB__G_WAITING, TB__G_COUNT };
#define TB__ADD(counter, n) __atomic_store_n(&(counter), (counter) + (n), __ATOMIC_RELAXED)

/* A thread's serving buffers, whichever worker it runs. */
struct tb__thread {
    turbo_server *s;
    pthread_t id;
    tb__thread *next;   /* every thread of the pool, for joining */
    int detached;       /* it gave its worker away (see hand-off) */
    int holding;        /* the lock of TURBO_LOCKED handlers, kept for the next */
    int64_t held_since; /* its worker's clock (ms) when it took that lock */
    unsigned long call; /* the worker's call count while a handler runs */
    char rbuf[65536];
    turbo_buf out, scratch;
    size_t out_from; /* where out's bytes to send begin: the room a head left unused is before */
    turbo_req req;
    turbo_res res;
    time_t date_sec;
    int64_t date_next; /* the monotonic ms when date_sec may be over */
    char head[72];     /* "HTTP/1.1 200 OK\r\nServer: turbo\r\nDate: " and the date: tb__update_date */
    tb__event events[TB__MAX_EVENTS];
    uint64_t *counts; /* its slot: TB__N_* */
    turbo_buf log;    /* access log lines not yet written */
    time_t log_sec;
    char log_time[80]; /* log_sec in the access log's format */
};

/* The threads of a process: those running a worker, those inside a
   handler that blocked, and idle ones parked for the next hand-off. */
typedef struct tb__pool {
    pthread_mutex_t lock;
    pthread_cond_t cond;            /* parked threads wait here for a worker */
    pthread_cond_t changed;         /* a worker ended or a thread parked: for tb__serve */
    tb__worker *queue, *queue_tail; /* workers waiting for a thread */
    int queued;                     /* in the queue, or promised a place in it */
    int starving;                   /* workers with requests waiting for a thread */
    int idle, nthreads, max_threads, closing;
    int nworkers, workers_ended;
    tb__thread *threads;
    pthread_t monitor;
} tb__pool;

struct turbo_server {
    turbo_config cfg; /* with every default filled in */
    tb__node *root;
    char (*methods)[TB__METHOD_MAX]; /* every method some route serves */
    int nmethods;
    char error[256];
    int *listen_fds;
    int nlisten;
    int port;
    int stop_pipe[2];
    int ready_fd;   /* a restart's old generation waits to read that this one serves */
    int started_fd; /* in a worker process: its supervisor's stop pipe, told once it serves */
    int running;
    size_t health_len;  /* of cfg.health_path; 0: none */
    size_t metrics_len; /* of cfg.metrics_path; 0: none */
    int observing;      /* metrics or access log: requests are timed */
    int log_fd;
    uint64_t *counts; /* shared by the processes: see tb__slot */
    size_t counts_size;
    int process_index;
    tb__worker *workers;
    tb__pool pool;
    struct tb__static *statics; /* turbo_static's folders */
};

struct tb__worker {
    turbo_server *s;
    tb__loop loop;
    int listen_fd;
    int listening;
    int stop_fd; /* read end of the server's stop pipe */
    int wake[2]; /* turbo_defer_resume and returned connections wake the loop */
    tb__mailbox *box;
    int draining, gave_up;
    int defers;         /* turbo_defer objects not yet answered or given up */
    int lent;           /* connections whose handler runs outside the loop */
    turbo_defer *held;  /* resumed answers not yet answered (lent connections'), in order */
    tb__conn *returned; /* connections handed back, not yet taken up */
    turbo_ws *sockets;  /* its WebSockets, for shutdown */
    int64_t now, drain_deadline, accept_resume;
    int64_t drain_at; /* stopping: serving on until then (drain_delay_ms), health says 503 */
    int64_t wake_at;  /* no deadline is earlier (0: one may be): expiry waits until then */
    uint64_t *gauges; /* its slot, for tb__metrics too: TB__G_* */
    tb__conn *free_conns;
    int refused; /* connections lingering after a 503 at max_connections */
    tb__conn *timer_head[TB__T_COUNT], *timer_tail[TB__T_COUNT];
    int64_t timeout[TB__T_COUNT];
    tb__limits limits;
    /* The hand-off: calls is odd while the worker's thread runs a handler
       for busy (atomic: the monitor reads it, and takes the worker by making
       it even). A worker given away leaves busy for its next thread to lend. */
    unsigned long calls;
    tb__conn *busy;
    tb__worker *queue_next;
    int starving;             /* with the pool locked: its TB__T_WAIT list waits for a thread */
    unsigned long seen_calls; /* the monitor's last look */
    int64_t seen_at;
};

/* ---------------------------------------------------------------- response */
/* A response is written straight into the thread's output buffer: room
   for its head, then the handler's headers, the blank line, its body.
   When the handler returns, the status line and the headers turbo owns
   (Date, Content-Length, ...) are written into the room, backwards from
   the handler's headers: the answer is sent from where they begin, and
   only a later answer of a pipelined batch slides down against the one
   before. Handlers need not declare lengths up front. */

/* The longest head tb__res_head writes: a status line of 44 bytes ("HTTP/1.1
   431 Request Header Fields Too Large"), Server and Date (52), Content-Length
   with 20 digits (38), "Connection: keep-alive" (24), CRLF (2). Written
   backwards, a longer one would run into the answer before: a longer
   reason or another header of turbo's must grow it. */
#define TB__HEAD_ROOM 160

static const char *tb__reason(int status) {
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 426: return "Upgrade Required";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default:
        return status < 300   ? "OK"
               : status < 400 ? "Redirect"
               : status < 500 ? "Client Error"
                              : "Server Error";
    }
}

static int tb__res_body_started(const turbo_res *res) { return res->body_start != (size_t)-1; }

/* The headers end and the body begins: the blank line between them. */
TB__INLINE void tb__res_body_begin(turbo_res *res) {
    tb__append(res->out, "\r\n", 2);
    res->body_start = res->out->len;
}

TURBO_API void turbo_res_status(turbo_res *res, int status) {
    res->status = status;
    res->answered = 1;
}

/* The headers turbo writes itself; a handler may not set them. */
static int tb__owned_header(const char *name, size_t len) {
    switch (len) {
    case 4: return tb__ieq(name, len, "date");
    case 6: return tb__ieq(name, len, "server");
    case 10: return tb__ieq(name, len, "connection");
    case 14: return tb__ieq(name, len, "content-length");
    case 17: return tb__ieq(name, len, "transfer-encoding");
    default: return 0;
    }
}

TURBO_API int turbo_status_allowed(int status) { return status >= 200 && status <= 599; }

TURBO_API int turbo_status_has_body(int status) { return status != 204 && status != 205 && status != 304; }

TURBO_API int turbo_header_check(const char *name, size_t name_len, const char *value, size_t value_len) {
    size_t i;
    if (!name_len) return TURBO_HEADER_BAD_NAME;
    for (i = 0; i < name_len; i++)
        if (!TB__IS(TB__TCHAR, name[i])) return TURBO_HEADER_BAD_NAME;
    if (!tb__valid_value(value, value_len)) return TURBO_HEADER_BAD_VALUE;
    return tb__owned_header(name, name_len) ? TURBO_HEADER_OWNED : 0;
}

TURBO_API int turbo_res_headern(turbo_res *res, const char *name, size_t name_len, const char *value,
                                size_t value_len) {
    char *o;
    if (tb__res_body_started(res) || res->deferred) return -1;
    if (turbo_header_check(name, name_len, value, value_len) != 0) return -1;
    if (tb__reserve(res->out, name_len + value_len + 4) != 0) return -1;
    o = tb__put(res->out->data + res->out->len, name, name_len);
    o = tb__put(o, ": ", 2);
    o = tb__put(o, value, value_len);
    o = tb__put(o, "\r\n", 2);
    res->out->len = (size_t)(o - res->out->data);
    res->answered = 1;
    res->typed |= tb__ieq(name, name_len, "content-type");
    return 0;
}

/* A header turbo itself sets, whose bytes are known to be valid. */
static void tb__res_own_header(turbo_res *res, const char *line, size_t len) {
    if (tb__res_body_started(res) || res->deferred) return;
    tb__append(res->out, line, len);
    res->answered = 1;
}

/* The Content-Type turbo sets, its line ending in the blank one: the body
   begins, with one copy for both. */
TB__INLINE void tb__res_own_type(turbo_res *res, const char *line, size_t len) {
    if (tb__res_body_started(res) || res->deferred) return;
    tb__res_own_header(res, line, len);
    res->body_start = res->out->len;
}

TURBO_API int turbo_res_header(turbo_res *res, const char *name, const char *value) {
    return turbo_res_headern(res, name, strlen(name), value, strlen(value));
}

TURBO_API void turbo_res_body(turbo_res *res, const void *data, size_t len) {
    if (res->deferred || res->json_active) return;
    if (!tb__res_body_started(res)) tb__res_body_begin(res);
    tb__append(res->out, data, len);
    res->answered = 1;
}

TURBO_API void turbo_res_send(turbo_res *res, int status, const char *content_type, const void *body,
                              size_t len) {
    turbo_res_status(res, status);
    if (content_type) turbo_res_header(res, "Content-Type", content_type);
    turbo_res_body(res, body, len);
}

TB__API_INLINE void turbo_res_text(turbo_res *res, int status, const char *text) {
    static const char type[] = "Content-Type: text/plain; charset=utf-8\r\n\r\n";
    turbo_res_status(res, status);
    tb__res_own_type(res, type, sizeof type - 1);
    turbo_res_body(res, text, strlen(text));
}

TURBO_API void turbo_res_head_length(turbo_res *res, uint64_t length) {
    res->head_length = (int64_t)(length & 0x7fffffffffffffffull);
}

TB__API_INLINE turbo_json *turbo_res_json(turbo_res *res, int status) {
    static const char type[] = "Content-Type: application/json\r\n\r\n";
    int body_started = tb__res_body_started(res);
    turbo_res_status(res, status);
    if (res->json_active) return &res->json;
    tb__res_own_type(res, type, sizeof type - 1);
    turbo_json_init(&res->json, res->out);
    res->json_active = 1;
    if (body_started) res->json.error = TURBO_JSON_AFTER_END; /* a body was already written */
    return &res->json;
}

static const char tb__months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

/* t as an HTTP date, "Sun, 06 Nov 1994 08:49:37 GMT" and a NUL, into d
   (32 bytes): the fields written over a template. -1 (d untouched) for a
   time whose year has no 4 digits (a file's mtime may be any). */
static int tb__format_date(time_t t, char *d) {
    static const char days[] = "SunMonTueWedThuFriSat";
    struct tm tm;
    int year;
    if (!gmtime_r(&t, &tm) || (year = tm.tm_year + 1900) < 0 || year > 9999) return -1;
    memcpy(d, "Sun, 00 Jan 0000 00:00:00 GMT", 30);
    memcpy(d, days + 3 * tm.tm_wday, 3);
    memcpy(d + 5, tb__json_pairs + 2 * tm.tm_mday, 2);
    memcpy(d + 8, tb__months + 3 * tm.tm_mon, 3);
    memcpy(d + 12, tb__json_pairs + 2 * (year / 100), 2);
    memcpy(d + 14, tb__json_pairs + 2 * (year % 100), 2);
    memcpy(d + 17, tb__json_pairs + 2 * tm.tm_hour, 2);
    memcpy(d + 20, tb__json_pairs + 2 * tm.tm_min, 2);
    memcpy(d + 23, tb__json_pairs + 2 * tm.tm_sec, 2);
    return 0;
}

/* The start of a 200's head, through the Date header's value, cached per
   thread and renewed once a second: most heads copy it whole. now_ms is the
   monotonic clock; the wall clock is read only when its second may have
   changed (a clock set back or forth is seen within a second). */
#define TB__HEAD_LEN 67 /* 15 bytes of status line, 23 of Server and Date, 29 of date */
static void tb__renew_date(tb__thread *th, int64_t now_ms) {
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    th->date_next = now_ms + 1000 - wall.tv_nsec / 1000000;
    if (wall.tv_sec == th->date_sec) return;
    th->date_sec = wall.tv_sec;
    memcpy(th->head, "HTTP/1.1 200 OK\r\nServer: turbo\r\nDate: ", 38);
    tb__format_date(wall.tv_sec, th->head + 38);
}

static inline void tb__update_date(tb__thread *th, int64_t now_ms) {
    if (now_ms >= th->date_next) tb__renew_date(th, now_ms);
}

/* The response starts over from nothing written: room for its head. (Out
   of memory, the room is missing, and the buffer's oom says why.) */
static void tb__res_clear(turbo_res *res) {
    res->out->len = res->start;
    if (res->c->streaming) { /* a resumed stream: its head is out, the rest is body */
        res->body_start = res->start;
        return;
    }
    res->body_start = (size_t)-1;
    if (tb__reserve(res->out, TB__HEAD_ROOM) == 0) res->out->len += TB__HEAD_ROOM;
}

static void tb__res_begin(tb__worker *w, tb__thread *t, tb__conn *c, int keep_alive, int head_only) {
    turbo_res *res = &t->res;
    res->w = w;
    res->t = t;
    res->c = c;
    res->out = &t->out;
    res->start = t->out.len;
    res->out->oom = 0; /* an answer before ran out: this one may not */
    tb__res_clear(res);
    res->status = 0;
    res->answered = res->json_active = res->deferred = res->typed = 0;
    res->head_only = head_only;
    res->head_length = -1;
    res->keep_alive = keep_alive;
}

/* turbo's own error body: the reason as text, or {"detail":"Reason"}. */
static void tb__res_error_body(turbo_res *res, int status) {
    int json = res->w->s->cfg.json_errors;
    char body[64];
    int n = snprintf(body, sizeof body, json ? "{\"detail\":\"%s\"}" : "%s\n", tb__reason(status));
    turbo_res_send(res, status, json ? "application/json" : "text/plain; charset=utf-8", body, (size_t)n);
}

/* Drops what the response under way has written (a JSON body too). */
static void tb__res_restart(turbo_res *res) {
    res->out->oom = 0;
    res->json_active = 0;
    tb__res_clear(res);
}

/* Rewrites the response under way as an error; a file's answer is complete
   (tb__res_file_body) and stays as it is. */
static void tb__res_fail(turbo_res *res, int status) {
    if (res->c->streaming == TB__STREAM_FILE) return;
    tb__res_restart(res);
    tb__res_error_body(res, status);
}

/* Writes the status line and turbo's own headers (through the CRLF that
   ends the last of them) back from end, into at most TB__HEAD_ROOM bytes
   before it; returns where they begin. */
static char *tb__res_head(const turbo_res *res, int status, size_t body_len, char *end) {
    int streaming = res->c->streaming;
    const char *reason;
    char *o = tb__put_back(end, "\r\n", 2);
    if (!res->keep_alive) o = tb__put_back(o, "\r\nConnection: close", 19);
    else if (res->t->req.version == 10) o = tb__put_back(o, "\r\nConnection: keep-alive", 24);
    if (streaming == TB__STREAM_CHUNKED) {
        o = tb__put_back(o, "\r\nTransfer-Encoding: chunked", 28);
    } else if ((!streaming || streaming == TB__STREAM_LENGTH) && status >= 200 && status != 204 &&
               status != 304) { /* else none: RFC 9112 6.3 */
        o = tb__put_back(tb__digits_back(o, body_len), "\r\nContent-Length: ", 18);
    }
    if (status == 200) /* a copy of constant length: a few moves, no loop */
        return tb__put_back(o, res->t->head, TB__HEAD_LEN);
    o = tb__put_back(o, res->t->head + 15, TB__HEAD_LEN - 15);
    reason = tb__reason(status);
    o = tb__put_back(o, reason, strlen(reason));
    *--o = ' ';
    return tb__put_back(tb__digits_back(o, (uint64_t)status), "HTTP/1.1 ", 9);
}

/* The body written since the last flush, framed as one chunk (or left as it
   is until close; dropped for HEAD). 0, or -1 out of memory. */
static int tb__res_frame_body(turbo_res *res) {
    char size[24], *o;
    size_t body = res->out->len - res->body_start, n;
    if (res->out->oom) return -1; /* a part of the body is missing */
    if (res->head_only) res->out->len = res->body_start;
    if (res->c->streaming == TB__STREAM_LENGTH && !res->head_only) {
        if (body > res->c->stream_left) return -1; /* more than the head said */
        res->c->stream_left -= body;
    }
    if (res->head_only || !body || res->c->streaming != TB__STREAM_CHUNKED) return 0;
    n = (size_t)snprintf(size, sizeof size, "%lx\r\n", (unsigned long)body);
    if (tb__reserve(res->out, n + 2) != 0) return -1;
    o = res->out->data + res->body_start;
    memmove(o + n, o, body);
    memcpy(o, size, n);
    memcpy(o + n + body, "\r\n", 2);
    res->out->len += n + 2;
    return 0;
}

/* A streamed answer ends: its last chunk and the empty one (or the close,
   which keep_alive has said since turbo_res_flush began an HTTP/1.0 one). */
static void tb__res_end_stream(turbo_res *res) {
    tb__conn *c = res->c;
    if (c->streaming == TB__STREAM_FILE) {
        res->out->len = res->body_start; /* nothing written after the file goes before it */
    } else if (c->streaming == TB__STREAM_ABORTED || tb__res_frame_body(res) != 0) {
        res->out->len = res->start; /* nothing more of it: the close tells */
        res->keep_alive = 0;
    } else if (c->streaming == TB__STREAM_LENGTH && !res->head_only && c->stream_left) {
        res->keep_alive = 0; /* shorter than the head said: the close tells */
    } else if (c->streaming == TB__STREAM_CHUNKED && !res->head_only) {
        tb__append(res->out, "0\r\n\r\n", 5);
        if (res->out->oom) { /* no end to it: the close tells */
            res->out->len = res->start;
            res->keep_alive = 0;
        }
    }
    c->streaming = TB__STREAM_NONE;
}

/* Sends what it can of data to c's socket: the bytes sent, or -1 when
   the client has gone. */
static inline ssize_t tb__send_some(tb__conn *c, const char *data, size_t len) {
    size_t sent = 0;
    while (sent < len) {
        ssize_t n = tb__send(c->fd, data + sent, len - sent);
        if (n > 0) sent += (size_t)n;
        else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        else if (n == 0 || errno != EINTR) return -1;
    }
    return (ssize_t)sent;
}

/* The file an answer ended with goes no further (the connection closes). */
static void tb__conn_drop_file(tb__conn *c) {
    if (c->file_left) close(c->file);
    c->file_left = 0;
}

/* Sends what the socket takes of the file an answer ends with (c->out
   first: on BSD and macOS each part goes through it). 0, or -1 when the
   client has gone or the file shrank. */
static int tb__conn_send_file(tb__conn *c) {
    while (c->file_left && !c->out.len) {
        size_t part = c->file_left > (1u << 30) ? (1u << 30) : (size_t)c->file_left;
#ifdef __linux__
        ssize_t k = sendfile(c->fd, c->file, &c->file_at, part);
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
#else
        char chunk[65536];
        ssize_t k = pread(c->file, chunk, part > sizeof chunk ? sizeof chunk : part, c->file_at), sent;
        if (k > 0 && (sent = tb__send_some(c, chunk, (size_t)k)) < k) {
            if (sent < 0) return -1;
            tb__append(&c->out, chunk + sent, (size_t)(k - sent)); /* the rest when the socket takes more */
            if (c->out.oom) return -1;
        }
        if (k > 0) c->file_at += k;
#endif
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1; /* the file shrank (0), or the client went */
        c->file_left -= (uint64_t)k;
        if (!c->file_left) close(c->file);
    }
    return 0;
}

/* Sends all of data, waiting for the socket up to timeout_ms each time: 0,
   or -1 when the client has gone (or stopped reading that long). */
static int tb__send_all(tb__conn *c, const char *data, size_t len, int timeout_ms) {
    for (;;) {
        ssize_t n = tb__send_some(c, data, len);
        if (n < 0) return -1;
        if ((size_t)n == len) return 0;
        data += n;
        len -= (size_t)n;
        if (tb__poll(c->fd, POLLOUT, timeout_ms) <= 0) return -1;
    }
}

/* Sends what waits in c->out, then the answer so far, now: 0, or -1 when
   the client has gone. Both buffers are empty afterwards. */
static int tb__res_send_now(turbo_res *res) {
    tb__conn *c = res->c;
    int timeout = res->w->s->cfg.write_timeout_ms, rc = 0;
    size_t from = res->t->out_from;
    if (c->out.len) rc = tb__send_all(c, c->out.data + c->out_sent, c->out.len - c->out_sent, timeout);
    if (rc == 0) rc = tb__send_all(c, res->out->data + from, res->out->len - from, timeout);
    res->sent += res->out->len - res->start;
    turbo_buf_free(&c->out);
    c->out_sent = 0;
    res->out->len = res->start = res->body_start = res->t->out_from = 0;
    return rc;
}

/* Writes the status line and turbo's own headers into the room in front of
   the handler's headers, against them; length is the Content-Length. The
   room they leave is skipped when the answer is the first of t->out to go
   out, else the answer slides down against the one before. 0, or -1 out
   of memory. */
static int tb__res_put_head(turbo_res *res, int status, size_t length) {
    tb__thread *t = res->t;
    char *room;
    size_t gap;
    if (!tb__res_body_started(res)) tb__res_body_begin(res);
    /* No room: out of memory, or a head already written (a stream's, a file's) */
    if (res->out->oom || res->body_start < res->start + TB__HEAD_ROOM || status < 100 || status > 999)
        return -1;
    room = res->out->data + res->start;
    gap = (size_t)(tb__res_head(res, status, length, room + TB__HEAD_ROOM) - room);
    if (res->start == t->out_from) {
        res->start = t->out_from = res->start + gap;
        return 0;
    }
    memmove(room, room + gap, res->out->len - res->start - gap);
    res->body_start -= gap;
    res->out->len -= gap;
    return 0;
}

TURBO_API int turbo_res_flush(turbo_res *res) {
    tb__conn *c = res->c;
    int status = res->status ? res->status : 200, rc;
    if (res->deferred || res->json_active || c->streaming == TB__STREAM_ABORTED ||
        c->streaming == TB__STREAM_FILE || !turbo_status_allowed(status) || !turbo_status_has_body(status))
        return -1;
    if (!c->streaming) { /* the head first */
        c->streaming = res->head_length >= 0       ? TB__STREAM_LENGTH
                       : res->t->req.version == 11 ? TB__STREAM_CHUNKED
                                                   : TB__STREAM_UNTIL_CLOSE;
        if (c->streaming == TB__STREAM_UNTIL_CLOSE) res->keep_alive = 0;
        if (c->streaming == TB__STREAM_LENGTH) c->stream_left = (uint64_t)res->head_length;
        if (tb__res_put_head(res, status, res->head_length >= 0 ? (size_t)res->head_length : 0) != 0) {
            /* nothing of it may go out: the close tells */
            c->streaming = TB__STREAM_ABORTED;
            return -1;
        }
        res->status = status;
    }
    if (tb__res_frame_body(res) != 0 || res->out->oom) return -1;
    rc = tb__res_send_now(res);
    if (rc) c->streaming = TB__STREAM_ABORTED;
    return rc;
}

TURBO_API void turbo_res_abort(turbo_res *res) {
    tb__conn *c = res->c;
    if (c->streaming == TB__STREAM_FILE) tb__conn_drop_file(c);
    if (c->streaming) c->streaming = TB__STREAM_ABORTED;
}

TURBO_API int turbo_res_event(turbo_res *res, const char *event, const char *data) {
    static const char type[] = "Content-Type: text/event-stream\r\n";
    size_t n;
    if (event && event[strcspn(event, "\r\n")]) return -1;
    if (!res->c->streaming && !res->typed) tb__res_own_header(res, type, sizeof type - 1);
    if (!data) turbo_res_body(res, ": ping\n", 7);
    if (event && data) {
        turbo_res_body(res, "event: ", 7);
        turbo_res_body(res, event, strlen(event));
        turbo_res_body(res, "\n", 1);
    }
    while (data) {
        n = strcspn(data, "\r\n");
        turbo_res_body(res, "data: ", 6);
        turbo_res_body(res, data, n);
        turbo_res_body(res, "\n", 1);
        data = !data[n] ? NULL : data + n + (data[n] == '\r' && data[n + 1] == '\n' ? 2 : 1);
    }
    turbo_res_body(res, "\n", 1);
    return turbo_res_flush(res);
}

/* ---- files */

static const char *const tb__mime[][2] = {
    {"html", "text/html"},        {"css", "text/css"},        {"js", "text/javascript"},
    {"json", "application/json"}, {"txt", "text/plain"},      {"xml", "application/xml"},
    {"svg", "image/svg+xml"},     {"png", "image/png"},       {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},       {"gif", "image/gif"},       {"webp", "image/webp"},
    {"ico", "image/x-icon"},      {"pdf", "application/pdf"}, {"wasm", "application/wasm"},
    {"woff2", "font/woff2"},      {"mp4", "video/mp4"},       {"zip", "application/zip"}};

static const char *tb__mime_type(const char *path) {
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    size_t i;
    for (i = 0; dot && dot > slash && i < sizeof tb__mime / sizeof *tb__mime; i++)
        if (tb__ieq(dot + 1, strlen(dot + 1), tb__mime[i][0])) return tb__mime[i][1];
    return "application/octet-stream";
}

/* The n decimal digits at p as a number, or -1. */
static int64_t tb__digits(const char *p, int n) {
    int64_t v = 0;
    int i;
    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* An HTTP-date as seconds since 1970, or -1. RFC 9110 5.6.7: recipients
   take the two obsolete formats too, and a two-digit year that looks more
   than 50 years ahead is of the century before. Its parts at fixed places:
     IMF-fixdate  "Sun, 06 Nov 1994 08:49:37 GMT"
     rfc850-date  "Sunday, 06-Nov-94 08:49:37 GMT"  (after the comma)
     asctime      "Sun Nov  6 08:49:37 1994"                              */
static int64_t tb__parse_date(turbo_str v) {
    const char *p = v.ptr, *comma = (const char *)memchr(p, ',', v.len), *m, *clock;
    int64_t day, year, hour, min, sec, mon, y, days;
    if (v.len == 29 && comma == p + 3 && p[4] == ' ' && p[7] == ' ' && p[11] == ' ' && p[16] == ' ' &&
        memcmp(p + 25, " GMT", 4) == 0) {
        m = p + 8, day = tb__digits(p + 5, 2), year = tb__digits(p + 12, 4), clock = p + 17;
    } else if (comma && (size_t)(p + v.len - comma) == 24 && comma[1] == ' ' && comma[4] == '-' &&
               comma[8] == '-' && comma[11] == ' ' && memcmp(comma + 20, " GMT", 4) == 0) {
        m = comma + 5, day = tb__digits(comma + 2, 2), year = tb__digits(comma + 9, 2), clock = comma + 12;
        if (year >= 0) year += 2000 - (2000 + year > 1970 + 50 + time(NULL) / 31556952 ? 100 : 0);
    } else if (v.len == 24 && !comma && p[3] == ' ' && p[7] == ' ' && p[10] == ' ' && p[19] == ' ') {
        m = p + 4, day = tb__digits(p + 8 + (p[8] == ' '), 2 - (p[8] == ' ')), year = tb__digits(p + 20, 4);
        clock = p + 11;
    } else {
        return -1;
    }
    if (clock[2] != ':' || clock[5] != ':') return -1;
    hour = tb__digits(clock, 2);
    min = tb__digits(clock + 3, 2);
    sec = tb__digits(clock + 6, 2);
    m = tb__search(tb__months, tb__months + 36, m, 3);
    if (!m || (m - tb__months) % 3 || day < 1 || day > 31 || year < 1970 || hour < 0 || hour > 23 ||
        min < 0 || min > 59 || sec < 0 || sec > 60)
        return -1;
    mon = (m - tb__months) / 3 + 1;
    /* Days since 1970-01-01, counting years from March so that leap days come last. */
    y = year - (mon <= 2);
    days = 365 * y + y / 4 - y / 100 + y / 400 + (153 * (mon > 2 ? mon - 3 : mon + 9) + 2) / 5 + day - 1 -
           719468;
    return days * 86400 + hour * 3600 + min * 60 + sec;
}

/* Do the lines of req's header name (If-None-Match, If-Match: one list
   however many lines carry it, RFC 9110 5.3) hold etag or "*"? Compared
   weakly (a W/ tag matches) or strongly (If-Match: it never does). */
static int tb__etag_listed(const turbo_req *req, const char *name, const char *etag, int strong) {
    size_t n = strlen(etag);
    turbo_str v, item;
    int i;
    for (i = 0; i < req->header_count; i++) {
        if (!tb__ieq(req->header_name[i].ptr, req->header_name[i].len, name)) continue;
        for (v = req->header_value[i]; tb__list_next(&v, ',', &item);) {
            if (item.len >= 2 && item.ptr[0] == 'W' && item.ptr[1] == '/') {
                if (strong) continue;
                item = tb__str(item.ptr + 2, item.len - 2);
            }
            if ((item.len == 1 && item.ptr[0] == '*') || (item.len == n && memcmp(item.ptr, etag, n) == 0))
                return 1;
        }
    }
    return 0;
}

/* The digits at *p (past them after) as a number that stops growing at
   UINT64_MAX: a position past any file's end is as good as the largest.
   0 if there are none. */
static int tb__range_number(const char **p, const char *end, uint64_t *n) {
    const char *digits = *p;
    for (*n = 0; *p < end && **p >= '0' && **p <= '9'; (*p)++)
        *n = *n > (UINT64_MAX - 9) / 10 ? UINT64_MAX : *n * 10 + (uint64_t)(**p - '0');
    return *p > digits;
}

/* The one range of "bytes=a-b", "bytes=a-" or "bytes=-n" (the unit in any
   case, spaces around the range) against size: 1 with *from and *len, 0
   for none to apply (absent, malformed, several: the whole file; a suffix
   of an empty file, which RFC 9110 14.1.1 says is satisfied by all of it),
   -1 when it cannot be satisfied (416). */
static int tb__range(turbo_str v, uint64_t size, uint64_t *from, uint64_t *len) {
    const char *p = v.ptr + 6, *end = v.ptr + v.len;
    uint64_t a, b;
    int has_a, has_b;
    if (v.len < 7 || !tb__ieq_n(v.ptr, "bytes=", 6)) return 0;
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t')) end--;
    has_a = tb__range_number(&p, end, &a);
    if (p == end || *p++ != '-') return 0;
    has_b = tb__range_number(&p, end, &b);
    if (p != end || (!has_a && !has_b) || (has_a && has_b && b < a)) return 0; /* several too (a comma) */

    if (!has_a) { /* the last b bytes */
        if (!b) return -1;
        if (!size) return 0;
        *from = b >= size ? 0 : size - b;
        *len = size - *from;
        return 1;
    }
    if (a >= size) return -1;
    *from = a;
    *len = (has_b && b < size - 1 ? b : size - 1) - a + 1;
    return 1;
}

/* Appends len bytes of fd from off to the body: 0, or -1. */
static int tb__res_read_file(turbo_res *res, int fd, off_t off, uint64_t len) {
    turbo_buf *out = res->out;
    if (!tb__res_body_started(res)) tb__res_body_begin(res);
    if (tb__reserve(out, (size_t)len) != 0) return -1;
    if (pread(fd, out->data + out->len, (size_t)len, off) != (ssize_t)len) return -1;
    out->len += (size_t)len;
    return 0;
}

/* The body: what it holds so far, then len bytes of fd from off, and the
   answer is complete (what the handler writes later is dropped): its head
   goes in front now, with the length of all of it, and a file past 64 KiB
   is the connection's to send after it (tb__conn_send_file: the loop sends
   it as the client takes it, so a slow client holds no thread); a smaller
   one is read into the body. Refused in an answer deferred: what answers is
   its resume function. fd is closed, or the connection's. 0, or -1. */
static int tb__res_file_body(turbo_res *res, int fd, uint64_t from, uint64_t len) {
    tb__conn *c = res->c;
    int status = res->status ? res->status : 200, body = !res->head_only && turbo_status_has_body(status);
    size_t before = tb__res_body_started(res) ? res->out->len - res->body_start : 0;
    if (res->deferred || c->streaming == TB__STREAM_FILE || (c->streaming && len > 65536)) {
        close(fd); /* refused: deferred, a second file, or a big one after turbo_res_flush sent the head */
        return -1;
    }
    if (c->streaming) { /* into the body: the stream's next part */
        int rc = 0;
        if (res->head_only) {
            res->out->len -= before;
            turbo_res_head_length(res, before + len);
        } else if ((rc = tb__res_read_file(res, fd, (off_t)from, len)) != 0) {
            tb__res_fail(res, 500);
        }
        close(fd);
        return rc;
    }
    if (body && len <= 65536 && tb__res_read_file(res, fd, (off_t)from, len) != 0) {
        tb__res_fail(res, 500);
        close(fd);
        return -1;
    }
    res->status = status;
    if (tb__res_put_head(res, status, before + (size_t)len) != 0) {
        close(fd);
        return -1;
    }
    if (!body) res->out->len = res->body_start; /* HEAD, 204, 304: the head alone */
    if (body && len > 65536) {
        c->file = fd;
        c->file_at = (off_t)from;
        c->file_left = len;
        c->out_full = 1; /* the requests after it wait */
        res->sent += len;
    } else {
        close(fd);
    }
    c->streaming = TB__STREAM_FILE;
    res->body_start = res->out->len; /* where tb__res_end_stream cuts what comes after */
    return 0;
}

/* turbo_res_file for a file already open (or fd -1): fd (closed here) and
   its st; name's extension gives the Content-Type. */
static int tb__res_fd(turbo_res *res, const turbo_req *req, int fd, const struct stat *st, const char *name) {
    turbo_str none = tb__str(NULL, 0);
    turbo_str inm = req ? turbo_req_header(req, "if-none-match") : none;
    turbo_str ims = req ? turbo_req_header(req, "if-modified-since") : none;
    turbo_str im = req ? turbo_req_header(req, "if-match") : none;
    turbo_str ius = req ? turbo_req_header(req, "if-unmodified-since") : none;
    int64_t unmodified = !im.ptr && ius.ptr ? tb__parse_date(ius) : -1; /* If-Unmodified-Since, or -1 */
    /* If-Modified-Since and Range are for GET (and HEAD) alone; If-None-Match
       stops another method with a 412 (RFC 9110 13.1.2, 13.1.3, 14.2). */
    int reads = !req || tb__is_method(req->method, "GET") || tb__is_method(req->method, "HEAD");
    turbo_str want = req && reads ? turbo_req_header(req, "range") : none;
    turbo_str if_range = req ? turbo_req_header(req, "if-range") : none;
    int64_t since = ims.ptr && reads ? tb__parse_date(ims) : -1; /* If-Modified-Since, or -1 */
    char etag[48], modified[32], range[80];
    uint64_t from = 0, len;
    int ranged = 0;
    if (fd < 0 || !S_ISREG(st->st_mode)) {
        if (fd >= 0) close(fd);
        tb__res_fail(res, 404);
        return -1;
    }
    len = (uint64_t)st->st_size;
    snprintf(etag, sizeof etag, "\"%llx-%llx\"", (unsigned long long)st->st_mtime, (unsigned long long)len);
    turbo_res_header(res, "ETag", etag);
    if (tb__format_date(st->st_mtime, modified) == 0) turbo_res_header(res, "Last-Modified", modified);
    /* The preconditions in RFC 9110 13.2.2's order: If-Match (else
       If-Unmodified-Since), then If-None-Match (else If-Modified-Since). */
    if (im.ptr ? !tb__etag_listed(req, "if-match", etag, 1)
               : unmodified >= 0 && (int64_t)st->st_mtime > unmodified) {
        if (res->typed) turbo_res_status(res, 412); /* the handler's type is the file's: no body of another */
        else tb__res_error_body(res, 412);
        close(fd);
        return 0;
    }
    if (inm.ptr ? tb__etag_listed(req, "if-none-match", etag, 0)
                : since >= 0 && (int64_t)st->st_mtime <= since) {
        if (reads) turbo_res_status(res, 304);
        else if (res->typed) turbo_res_status(res, 412);
        else tb__res_error_body(res, 412);
        close(fd);
        return 0;
    }
    turbo_res_header(res, "Accept-Ranges", "bytes");
    /* If-Range: the range only if the file is still the one the client has. */
    if (want.ptr &&
        (!if_range.ptr || (if_range.len == strlen(etag) && memcmp(if_range.ptr, etag, if_range.len) == 0) ||
         (if_range.len == 29 && memcmp(if_range.ptr, modified, 29) == 0)))
        ranged = tb__range(want, len, &from, &len);
    if (ranged < 0) {
        snprintf(range, sizeof range, "bytes */%llu", (unsigned long long)st->st_size);
        turbo_res_header(res, "Content-Range", range);
        if (res->typed) turbo_res_status(res, 416); /* the handler's type is the file's: no body of another */
        else tb__res_error_body(res, 416);
        close(fd);
        return 0;
    }
    if (ranged) {
        snprintf(range, sizeof range, "bytes %llu-%llu/%llu", (unsigned long long)from,
                 (unsigned long long)(from + len - 1), (unsigned long long)st->st_size);
        turbo_res_header(res, "Content-Range", range);
    }
    turbo_res_status(res, ranged ? 206 : 200);
    if (!res->typed) turbo_res_header(res, "Content-Type", tb__mime_type(name));
    return tb__res_file_body(res, fd, from, len);
}

TURBO_API int turbo_res_file(turbo_res *res, const turbo_req *req, const char *path) {
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO would block: it is no file */
    if (fd >= 0 && fstat(fd, &st) != 0) st.st_mode = 0;     /* no file: 404 */
    if (!req && res->t->req.method.len) req = &res->t->req; /* a resumed answer has none */
    return tb__res_fd(res, req, fd, &st, path);
}

TURBO_API int turbo_res_body_file(turbo_res *res, const char *path) {
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO would block: it is no file */
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "turbo: cannot send %s as a body: %s\n", path,
                fd < 0 ? strerror(errno) : "not a file");
        if (fd >= 0) close(fd);
        tb__res_fail(res, 500);
        return -1;
    }
    return tb__res_file_body(res, fd, 0, (uint64_t)st.st_size);
}

/* Completes the response under way: status line and turbo's own headers
   go in front of the handler's headers, a blank line before the body. */
static void tb__res_finish(turbo_res *res, const turbo_req *req) {
    size_t length;
    int status, failed = 1;
    if (res->deferred) {
        res->out->len = res->start;
        return;
    }
    if (res->c->streaming) {
        tb__res_end_stream(res);
        return;
    }
    if (res->c->ws) { /* turbo_res_websocket's 101, whatever came after it: no body */
        failed = 0;
        res->status = 101;
        if (tb__res_body_started(res)) res->out->len = res->body_start;
    } else if (res->json_active && turbo_json_finish(&res->json) != 0)
        fprintf(stderr, "turbo: invalid JSON in the response to %.*s %.*s: %s\n", (int)req->method.len,
                req->method.ptr, (int)req->path.len, req->path.ptr, turbo_json_strerror(res->json.error));
    else if (!res->answered)
        fprintf(stderr, "turbo: the handler for %.*s %.*s answered nothing\n", (int)req->method.len,
                req->method.ptr, (int)req->path.len, req->path.ptr);
    else if (res->status && !turbo_status_allowed(res->status))
        fprintf(stderr, "turbo: the handler for %.*s %.*s set status %d\n", (int)req->method.len,
                req->method.ptr, (int)req->path.len, req->path.ptr, res->status);
    else failed = res->out->oom;
    if (failed) tb__res_fail(res, 500);
    if (!tb__res_body_started(res)) tb__res_body_begin(res);
    status = res->status ? res->status : 200;
    length = turbo_status_has_body(status) ? res->out->len - res->body_start : 0;
    if (res->head_only && res->head_length >= 0 && !length && turbo_status_has_body(status))
        length = (size_t)res->head_length;
    res->out->len = res->body_start + (res->head_only ? 0 : length); /* a HEAD's body is measured only */
    if (tb__res_put_head(res, status, length) != 0) {
        res->out->len = res->start; /* nothing sensible can be sent: close */
        res->keep_alive = 0;
    }
}

/* ---------------------------------------------------------------- timers */
/* One FIFO list per timeout class. Arming appends at the tail with
   deadline now + the class's timeout, so each list stays sorted and only
   its head is ever checked: O(1) to arm, disarm and expire. */

static void tb__timer_clear(tb__worker *w, tb__conn *c) {
    if (c->timer < 0) return;
    if (c->timer == TB__T_IDLE) TB__ADD(w->gauges[TB__G_IDLE], -1);
    if (c->timer == TB__T_WAIT) TB__ADD(w->gauges[TB__G_WAITING], -1);
    if (c->prev) c->prev->next = c->next;
    else w->timer_head[c->timer] = c->next;
    if (c->next) c->next->prev = c->prev;
    else w->timer_tail[c->timer] = c->prev;
    c->prev = c->next = NULL;
    c->timer = -1;
}

static void tb__timer_set(tb__worker *w, tb__conn *c, int cls) {
    if (c->timer == cls && !c->next) { /* the tail already: the list stays sorted */
        c->deadline = w->now + w->timeout[cls];
        return;
    }
    tb__timer_clear(w, c);
    if (cls == TB__T_IDLE) TB__ADD(w->gauges[TB__G_IDLE], 1);
    if (cls == TB__T_WAIT) TB__ADD(w->gauges[TB__G_WAITING], 1);
    c->timer = cls;
    c->deadline = w->now + w->timeout[cls];
    w->wake_at = TB__MIN(w->wake_at, c->deadline);
    c->prev = w->timer_tail[cls];
    if (c->prev) c->prev->next = c;
    else w->timer_head[cls] = c;
    w->timer_tail[cls] = c;
}

/* Does a class's list end by its deadlines? Not a deferred answer's: its
   list only keeps them in order. */
static int tb__timer_expires(int cls) { return cls != TB__T_DEFER; }

/* The next deadline, INT64_MAX for none. */
static int64_t tb__timer_next(const tb__worker *w) {
    int64_t next = INT64_MAX;
    int i;
    for (i = 0; i < TB__T_COUNT; i++)
        if (w->timer_head[i] && tb__timer_expires(i)) next = TB__MIN(next, w->timer_head[i]->deadline);
    if (!w->listening && w->accept_resume) next = TB__MIN(next, w->accept_resume);
    if (w->draining && !w->gave_up) next = TB__MIN(next, w->drain_deadline);
    if (w->drain_at && !w->draining) next = TB__MIN(next, w->drain_at);
    return next;
}

/* ---------------------------------------------------------------- hand-off */
/* EXECUTION MODEL, at the top, says what this does. A quick handler pays a
   store before its call and a compare-and-swap after; the stuck thread's
   one connection is "lent", and goes back to its worker through the
   mailbox. A slow route that gives its worker away before it starts costs
   no stall at all, only two thread wake-ups. */

/* With the pool locked: promises a thread for one more worker; -1 if the
   bound is reached or no thread can be started. */
static int tb__pool_reserve(turbo_server *s);

/* With the pool locked, after tb__pool_reserve: the worker's next thread takes it. */
static void tb__pool_push(tb__pool *p, tb__worker *w) {
    w->queue_next = NULL;
    if (p->queue_tail) p->queue_tail->queue_next = w;
    else p->queue = w;
    p->queue_tail = w;
    pthread_cond_signal(&p->cond);
}

/* Before a handler runs for c on the worker's thread: from now on the
   monitor may hand the worker to another thread. */
static void tb__call_begin(tb__worker *w, tb__thread *t, tb__conn *c) {
    w->busy = c;
    t->call = __atomic_load_n(&w->calls, __ATOMIC_RELAXED) + 1;
    __atomic_store_n(&w->calls, t->call, __ATOMIC_RELEASE);
}

/* After it: 0 if this thread still runs the worker, 1 if the monitor gave
   the worker away meanwhile (t is detached: it owns only busy now; its
   Date is renewed, as the handler may have run for seconds). */
static int tb__call_end(tb__worker *w, tb__thread *t) {
    unsigned long expected = t->call;
    if (__atomic_compare_exchange_n(&w->calls, &expected, expected + 1, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE))
        return 0;
    t->detached = 1;
    TB__ADD(t->counts[TB__N_HANDOFFS], 1);
    tb__update_date(t, tb__now_ms());
    return 1;
}

/* A handler about to block: gives the worker to a spare thread now and
   keeps only c; 1 then. With no thread spare, -1: c's request waits for
   one, kept in c->in (a chunked body decoded there, c->chunk done), on
   the worker's TB__T_WAIT list, while the loop serves the other
   connections; the next thread that parks wakes the worker to try again
   (tb__pool_freed), the oldest first (a request that finds others waiting
   queues behind them). */
static int tb__lend(tb__worker *w, tb__thread *t, tb__conn *c) {
    tb__pool *p = &w->s->pool;
    tb__conn *first = w->timer_head[TB__T_WAIT];
    int rc;
    pthread_mutex_lock(&p->lock);
    if ((!first || first == c) && tb__pool_reserve(w->s) == 0) {
        w->busy = c; /* as the monitor leaves it: the worker's next thread lends it to this one */
        t->detached = 1;
        TB__ADD(t->counts[TB__N_HANDOFFS], 1);
        tb__pool_push(p, w);
        rc = 1;
    } else {
        rc = -1;
        if (!w->starving) {
            w->starving = 1;
            p->starving++;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

/* With the pool locked: a thread may be had again (one parked, or a
   promise came to nothing); workers with requests waiting for one try. */
static void tb__pool_freed(turbo_server *s) {
    tb__pool *p = &s->pool;
    int i;
    for (i = 0; i < p->nworkers && p->starving; i++) {
        tb__worker *w = &s->workers[i];
        if (!w->starving) continue;
        w->starving = 0;
        p->starving--;
        while (write(w->wake[1], "t", 1) < 0 && errno == EINTR) { /* full: it is woken already */
        }
    }
}

/* The monitor's look at one worker. Returns 1 if the worker is busy (the
   monitor keeps looking every millisecond). */
static int tb__monitor_check(turbo_server *s, tb__worker *w, int64_t now_us) {
    tb__pool *p = &s->pool;
    unsigned long calls = __atomic_load_n(&w->calls, __ATOMIC_ACQUIRE);
    if (calls != w->seen_calls) {
        w->seen_calls = calls;
        w->seen_at = now_us;
        return 1;
    }
    if (!(calls & 1)) return 0;
    if (now_us - w->seen_at < (int64_t)s->cfg.handoff_ms * 1000) return 1;
    pthread_mutex_lock(&p->lock);
    if (tb__pool_reserve(s) == 0) {
        if (__atomic_compare_exchange_n(&w->calls, &calls, calls + 1, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
            tb__pool_push(p, w); /* its next thread lends w->busy to the stuck one */
        } else {
            p->queued--; /* the handler returned meanwhile: the promise is void */
            if (p->starving) tb__pool_freed(s);
        }
    }
    pthread_mutex_unlock(&p->lock);
    return 1;
}

/* Blocks SIGINT and SIGTERM in the calling thread; old gets the mask before. */
static void tb__block_stops(sigset_t *old) {
    sigset_t stops;
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stops, old);
}

/* Every millisecond while any worker is busy; every 10 ms after 100 quiet
   ones. It takes no lock unless it hands a worker over. */
static void *tb__monitor_main(void *arg) {
    turbo_server *s = (turbo_server *)arg;
    tb__pool *p = &s->pool;
    int quiet = 0, i;
    tb__block_stops(NULL); /* stop signals are for the workers' loops */
    while (!__atomic_load_n(&p->closing, __ATOMIC_ACQUIRE)) {
        struct timespec step = {0, quiet > 100 ? 10000000L : 1000000L};
        int64_t now;
        int busy = 0;
        tb__sleep(&step);
        now = tb__now_us();
        for (i = 0; i < p->nworkers; i++) busy |= tb__monitor_check(s, &s->workers[i], now);
        quiet = busy ? 0 : quiet + 1;
    }
    return NULL;
}

/* ---------------------------------------------------------------- metrics and access log */
/* While observing, an answer is timed from its head to its end and
   counted in its thread's counters (tb__metrics sums them), and its log
   line goes into its thread's buffer, which the thread writes out before
   it waits (tb__log_flush). The line begins as the request is routed,
   with what only the request knows, and ends with the answer's status,
   bytes and time; a deferred answer carries its beginning along. */

static const char *const tb__methods_counted[TB__METHODS] = {"GET",    "HEAD",  "POST",    "PUT",
                                                             "DELETE", "PATCH", "OPTIONS", "other"};
static const int64_t tb__bounds_us[TB__BUCKETS] = {
    500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};

/* The counters of slot k of this process: its threads' are slots 0 to
   max_threads (in the order they start), its workers' gauges the next. */
static uint64_t *tb__slot(turbo_server *s, int k) {
    size_t per_process = (size_t)(s->pool.max_threads + s->cfg.threads);
    return s->counts + ((size_t)s->process_index * per_process + (size_t)k) * TB__SLOT;
}

/* SIGUSR1 asks for the log file to be opened again (logrotate moved it). */
static int tb__reopen_asked = 0; /* atomic: the handler runs on whichever thread */

/* Opens access_log_path onto log_fd (writers in flight see the old file
   or the new one: dup2 swaps them at once). 0, or -1 with s->error. */
static int tb__log_open(turbo_server *s) {
    int fd = open(s->cfg.access_log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return tb__errorf(s->error, sizeof s->error, "access log %s: %s", s->cfg.access_log_path,
                          strerror(errno));
    if (s->log_fd > 2) {
        dup2(fd, s->log_fd);
        close(fd);
    } else {
        s->log_fd = fd;
    }
    return 0;
}

static void tb__log_reopen(turbo_server *s) {
    if (!__atomic_exchange_n(&tb__reopen_asked, 0, __ATOMIC_RELAXED) || !s->cfg.access_log_path) return;
    if (tb__log_open(s) != 0) fprintf(stderr, "turbo: %s; logging on to the old file\n", s->error);
}

/* Writes the thread's log lines; what the log does not take is lost. */
static void tb__log_flush(tb__thread *t) {
    size_t done = 0;
    while (done < t->log.len) {
        ssize_t n = write(t->s->log_fd, t->log.data + done, t->log.len - done);
        if (n > 0) done += (size_t)n;
        else if (n == 0 || errno != EINTR) break;
    }
    t->log.len = 0;
    if (t->log.cap > TB__OUT_KEEP || t->log.oom) turbo_buf_free(&t->log);
}

/* The thread's time in the log's format, renewed once a second:
   "10/Oct/2000:13:55:36 +0000" (Common), "2000-10-10T13:55:36Z" (JSON). */
static const char *tb__log_time(tb__thread *t, int json) {
    struct tm tm;
    if (t->log_sec == t->date_sec) return t->log_time;
    t->log_sec = t->date_sec;
    gmtime_r(&t->log_sec, &tm);
    if (json) strftime(t->log_time, sizeof t->log_time, "%Y-%m-%dT%H:%M:%SZ", &tm);
    else
        snprintf(t->log_time, sizeof t->log_time, "%02d/%.3s/%d:%02d:%02d:%02d +0000", tm.tm_mday,
                 tb__months + 3 * tm.tm_mon, tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return t->log_time;
}

static void tb__log_field(turbo_json *j, const char *key, turbo_str value) {
    turbo_json_key(j, key);
    if (value.ptr) turbo_json_stringn(j, value.ptr, value.len);
    else turbo_json_null(j);
}

/* The client's address as text at o ("-" when unknown); returns its end. */
static char *tb__peer_text(char *o, const tb__peer *p) {
    int i;
    if (p->family == 6 && inet_ntop(AF_INET6, p->addr, o, INET6_ADDRSTRLEN)) return o + strlen(o);
    if (p->family != 4) return tb__put(o, "-", 1);
    for (i = 0; i < 4; i++) { /* printf would cost more than the rest of the line */
        if (i) *o++ = '.';
        o = tb__json_u32(o, p->addr[i]);
    }
    return o;
}

/* The start of the log line, up to the status: r is NULL for a request
   the engine refuses unread ("-" or null in its place). A method and a
   target hold no quote or control byte (the parser's rules): the quoted
   request line is a JSON string once a target's backslash is written
   twice (README). JSON escapes the headers. */
static void tb__log_begin(tb__thread *t, const tb__conn *c, const turbo_req *r) {
    turbo_str none = tb__str(NULL, 0), version = tb__str(r && r->version == 10 ? "HTTP/1.0" : "HTTP/1.1", 8);
    char peer[INET6_ADDRSTRLEN], *o;
    turbo_json j;
    if (t->s->cfg.access_log == TURBO_LOG_JSON) { /* the object stays open for tb__observe_end */
        size_t peer_len = (size_t)(tb__peer_text(peer, &c->peer) - peer);
        turbo_json_init(&j, &t->log);
        turbo_json_object_begin(&j);
        tb__log_field(&j, "time", tb__str(tb__log_time(t, 1), 20));
        tb__log_field(&j, "remote", c->peer.family ? tb__str(peer, peer_len) : none);
        tb__log_field(&j, "method", r ? r->method : none);
        tb__log_field(&j, "target", r ? r->target : none);
        tb__log_field(&j, "version", r ? version : none);
        tb__log_field(&j, "user_agent", r ? turbo_req_header(r, "user-agent") : none);
        tb__log_field(&j, "referer", r ? turbo_req_header(r, "referer") : none);
        return;
    }
    if (tb__reserve(&t->log, 96 + (r ? r->method.len + 2 * r->target.len : 0)) != 0) return;
    o = tb__peer_text(t->log.data + t->log.len, &c->peer);
    o = tb__put(o, " - - [", 6);
    o = tb__put(o, tb__log_time(t, 0), 26);
    o = tb__put(o, "] \"", 3);
    if (r) {
        o = tb__put(o, r->method.ptr, r->method.len);
        *o++ = ' ';
        if (!memchr(r->target.ptr, '\\', r->target.len)) {
            o = tb__put(o, r->target.ptr, r->target.len);
        } else {
            size_t i;
            for (i = 0; i < r->target.len; i++)
                o = r->target.ptr[i] == '\\' ? tb__put(o, "\\\\", 2) : tb__put(o, r->target.ptr + i, 1);
        }
        *o++ = ' ';
        o = tb__put(o, version.ptr, version.len);
    } else {
        *o++ = '-';
    }
    t->log.len = (size_t)(tb__put(o, "\" ", 2) - t->log.data);
}

/* The answer under way starts (r as in tb__log_begin). */
static void tb__observe_begin(tb__thread *t, const tb__conn *c, const turbo_req *r) {
    int ix = r ? 0 : TB__METHODS - 1; /* its method in tb__methods_counted, or the last: "other" */
    while (ix < TB__METHODS - 1 && !tb__is_method(r->method, tb__methods_counted[ix])) ix++;
    t->res.started_us = tb__now_us();
    t->res.method_ix = ix;
    t->res.sent = 0;
    t->res.log_mark = t->log.len;
    if (t->s->cfg.access_log) tb__log_begin(t, c, r);
}

/* A resumed answer goes on from where its request left it. */
static void tb__observe_resumed(tb__thread *t, turbo_defer *d) {
    t->res.started_us = d->started_us;
    t->res.method_ix = d->method_ix;
    t->res.sent = 0;
    t->res.log_mark = t->log.len;
    tb__append(&t->log, d->log.data, d->log.len);
    turbo_buf_free(&d->log);
}

/* Lets go of the lock that the last handlers ran holding (TURBO_LOCKED). */
static void tb__release(tb__thread *t) {
    t->holding = 0;
    t->s->cfg.release(t->s->cfg.hook_arg);
}

/* Before what may run a callback, or block: the lock is let go. */
static void tb__let_go(tb__thread *t) {
    if (t->holding) tb__release(t);
}

/* The answer has ended: counted, and its log line completed. Deferred,
   it takes its start time and line along instead. */
static void tb__observe_end(tb__thread *t, turbo_res *res) {
    uint64_t *n = t->counts, bytes = res->sent + (t->out.len - res->start);
    int64_t us = tb__now_us() - res->started_us;
    int status = res->status ? res->status : 200, bucket = 0;
    int cls = status >= 100 && status <= 599 ? status / 100 - 1 : 4; /* 1xx to 5xx */
    char end[80], *o = end;
    if (res->deferred) {
        turbo_defer *d = res->c->defer;
        d->started_us = res->started_us;
        d->method_ix = res->method_ix;
        tb__append(&d->log, t->log.data + res->log_mark, t->log.len - res->log_mark);
        t->log.len = res->log_mark;
        return;
    }
    while (bucket < TB__BUCKETS && us > tb__bounds_us[bucket]) bucket++;
    TB__ADD(n[TB__N_REQUESTS + res->method_ix * 5 + cls], 1);
    TB__ADD(n[TB__N_LATENCY + bucket], 1);
    TB__ADD(n[TB__N_LATENCY_US], (uint64_t)us);
    TB__ADD(n[TB__N_BYTES_OUT], bytes);
    if (!t->s->cfg.access_log) return;
    if (t->s->cfg.access_log == TURBO_LOG_JSON) {
        o = tb__put(o, ",\"status\":", 10);
        o = tb__json_u32(o, (uint32_t)status);
        o = tb__put(o, ",\"bytes\":", 9);
        o = tb__json_u64(o, bytes);
        o = tb__put(o, ",\"duration_us\":", 15);
        o = tb__put(tb__json_u64(o, (uint64_t)us), "}\n", 2);
    } else {
        o = tb__json_u32(o, (uint32_t)status);
        *o++ = ' ';
        o = tb__put(tb__json_u64(o, bytes), "\n", 1);
    }
    tb__append(&t->log, end, (size_t)(o - end));
    if (t->log.len >= TB__OUT_KEEP) {
        tb__let_go(t); /* the write may block */
        tb__log_flush(t);
    }
}

/* The answer to metrics_path: the counters of every thread of every
   process summed, in Prometheus' text format (version 0.0.4; README.md says what
   each one counts). */
static void tb__metrics(turbo_server *s, turbo_buf *b) {
    uint64_t n[TB__NCOUNTS] = {0}, below = 0, conns = 0, idle = 0, waiting = 0;
    int procs = s->cfg.processes > 0 ? s->cfg.processes : 1,
        per_process = s->pool.max_threads + s->cfg.threads;
    char line[192];
    int i, k;
    for (k = 0; k < procs * per_process; k++) {
        const uint64_t *slot = s->counts + (size_t)k * TB__SLOT;
        if (k % per_process >= s->pool.max_threads) { /* a worker's */
            conns += __atomic_load_n(&slot[TB__G_CONNS], __ATOMIC_RELAXED);
            idle += __atomic_load_n(&slot[TB__G_IDLE], __ATOMIC_RELAXED);
            waiting += __atomic_load_n(&slot[TB__G_WAITING], __ATOMIC_RELAXED);
        } else {
            for (i = 0; i < TB__NCOUNTS; i++) n[i] += __atomic_load_n(&slot[i], __ATOMIC_RELAXED);
        }
    }
    tb__buf_puts(b, "# HELP turbo_requests_total Requests answered, by method and status class.\n"
                    "# TYPE turbo_requests_total counter\n");
    for (i = 0; i < TB__METHODS * 5; i++) {
        if (!n[TB__N_REQUESTS + i]) continue;
        snprintf(line, sizeof line, "turbo_requests_total{method=\"%s\",code=\"%dxx\"} %llu\n",
                 tb__methods_counted[i / 5], i % 5 + 1, (unsigned long long)n[TB__N_REQUESTS + i]);
        tb__buf_puts(b, line);
    }
    tb__buf_puts(b, "# HELP turbo_request_duration_seconds From a request's head to the end of its answer.\n"
                    "# TYPE turbo_request_duration_seconds histogram\n");
    for (i = 0; i <= TB__BUCKETS; i++) {
        char bound[16] = "+Inf";
        if (i < TB__BUCKETS) snprintf(bound, sizeof bound, "%g", (double)tb__bounds_us[i] / 1e6);
        below += n[TB__N_LATENCY + i];
        snprintf(line, sizeof line, "turbo_request_duration_seconds_bucket{le=\"%s\"} %llu\n", bound,
                 (unsigned long long)below);
        tb__buf_puts(b, line);
    }
    snprintf(line, sizeof line,
             "turbo_request_duration_seconds_sum %.6f\nturbo_request_duration_seconds_count %llu\n",
             (double)n[TB__N_LATENCY_US] / 1e6, (unsigned long long)below);
    tb__buf_puts(b, line);
    {
        const struct {
            const char *name, *type, *help;
            uint64_t value;
        } one[] = {
            {"turbo_received_bytes_total", "counter", "Bytes read from clients.", n[TB__N_BYTES_IN]},
            {"turbo_sent_bytes_total", "counter", "Bytes of the answers, heads included.",
             n[TB__N_BYTES_OUT]},
            {"turbo_connections", "gauge", "Open connections.", conns},
            {"turbo_idle_connections", "gauge", "Connections kept alive between requests.", idle},
            {"turbo_deferred_total", "counter", "Answers deferred by their handler.", n[TB__N_DEFERRED]},
            {"turbo_deferred_waiting", "gauge", "Deferred answers not resumed yet.",
             n[TB__N_DEFERRED] - n[TB__N_RESUMED]},
            {"turbo_handoffs_total", "counter", "Loops handed to a spare thread by a handler that blocked.",
             n[TB__N_HANDOFFS]},
            {"turbo_waiting_requests", "gauge", "Requests for blocking routes waiting for a spare thread.",
             waiting}};
        for (i = 0; i < (int)(sizeof one / sizeof *one); i++) {
            snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", one[i].name, one[i].help,
                     one[i].name, one[i].type, one[i].name, (unsigned long long)one[i].value);
            tb__buf_puts(b, line);
        }
    }
}

/* ---------------------------------------------------------------- connections */
/* A connection reads into its thread's read buffer and parses every
   complete request there (pipelining); only the unfinished tail of a
   request is copied into the connection's own buffer. Responses to one
   read are appended to the thread's output buffer and sent with one
   write; only what the kernel refuses is kept per connection, and reading
   stops until it has drained. An idle connection owns no buffer at all. */

static void tb__defer_lost(turbo_defer *d);
static void tb__ws_gone(tb__worker *w, tb__conn *c);
static size_t tb__ws_process(tb__worker *w, tb__thread *t, tb__conn *c, char *data, size_t len);
static void tb__ws_frame(turbo_buf *b, int opcode, const void *data, size_t len);
static void tb__ws_sent(tb__conn *c);

static void tb__conn_free(tb__worker *w, tb__conn *c) {
    tb__timer_clear(w, c);
    if (c->defer) tb__defer_lost(c->defer);
    if (c->ws) tb__ws_gone(w, c);
    /* close alone leaves it registered in epoll while a fork (a restart, a
       handler's subprocess) still holds the socket: its events would come */
    tb__loop_set(&w->loop, c->fd, c->mask, 0, c);
    close(c->fd);
    tb__conn_drop_file(c);
    turbo_buf_free(&c->in);
    turbo_buf_free(&c->out);
    if (c->refused) w->refused--;
    else TB__ADD(w->gauges[TB__G_CONNS], -1);
    c->next = w->free_conns;
    w->free_conns = c;
}

static int tb__conn_watch(tb__worker *w, tb__conn *c, int mask) {
    if (tb__loop_set(&w->loop, c->fd, c->mask, mask, c) != 0) return -1;
    c->mask = mask;
    return 0;
}

/* Waits for the events of mask with the timeout of class cls; -1 if c
   could not be watched (it is closed then). */
static int tb__conn_await(tb__worker *w, tb__conn *c, int mask, int cls) {
    if (tb__conn_watch(w, c, mask) != 0) {
        tb__conn_free(w, c);
        return -1;
    }
    tb__timer_set(w, c, cls);
    return 0;
}

/* The answer is out: half-close and drain what the client still sends, so
   that closing does not reset the connection under the response. */
static void tb__conn_linger(tb__worker *w, tb__conn *c) {
    shutdown(c->fd, SHUT_WR);
    c->state = TB__C_LINGER;
    turbo_buf_free(&c->in);
    tb__conn_await(w, c, TB__READ, TB__T_LINGER);
}

/* Sends the thread's output for c; what the socket refuses (all of it,
   behind a backlog) waits in c->out. -1 if the client is gone or c->out
   could not grow. The buffer is kept unless one big answer made it big. */
static inline int tb__out_flush(tb__thread *t, tb__conn *c) {
    const char *from = t->out.data + t->out_from;
    size_t len = t->out.len - t->out_from;
    ssize_t sent = c->out.len ? 0 : tb__send_some(c, from, len);
    if (sent >= 0 && (size_t)sent < len) tb__append(&c->out, from + sent, len - (size_t)sent);
    t->out.len = t->out_from = 0;
    if (t->out.cap > TB__OUT_KEEP) turbo_buf_free(&t->out);
    if (c->ws) tb__ws_sent(c);
    return sent < 0 || c->out.oom ? -1 : 0;
}

/* Sends what the thread's output buffer holds for c. Returns 0 when all
   went out, 1 when the rest waits in c->out, -1 when c was closed. */
static inline int tb__conn_send(tb__worker *w, tb__thread *t, tb__conn *c) {
    if (tb__out_flush(t, c) != 0) {
        tb__conn_free(w, c);
        return -1;
    }
    if (!c->out.len) return 0;
    return tb__conn_await(w, c, TB__WRITE, TB__T_WRITE) == 0 ? 1 : -1;
}

/* Completes the response; c closes after it unless kept alive or deferred. */
static void tb__res_end(tb__worker *w, tb__thread *t, tb__conn *c, const turbo_req *r) {
    tb__res_finish(&t->res, r);
    if (w->s->observing) tb__observe_end(t, &t->res);
    if (!t->res.keep_alive && !t->res.deferred) c->close_after = 1;
}

/* An engine error: a complete response, then close. */
static void tb__conn_error(tb__worker *w, tb__thread *t, tb__conn *c, int status, int head_only) {
    t->req.path.len = 0;
    t->req.version = 11;
    tb__res_begin(w, t, c, 0, head_only);
    if (w->s->observing) tb__observe_begin(t, c, NULL);
    tb__res_fail(&t->res, status);
    tb__res_end(w, t, c, &t->req);
}

/* Takes the lock of TURBO_LOCKED handlers: 0, or -1 when it cannot be
   taken (the answer is then a 500). */
static int tb__lock_take(tb__thread *t, int64_t now) {
    if (t->s->cfg.acquire(t->s->cfg.hook_arg) != 0) {
        tb__res_fail(&t->res, 500);
        return -1;
    }
    t->holding = 1;
    t->held_since = now;
    return 0;
}

/* Calls a route's handler. Its worker goes to a spare thread first if the
   route is known to block, or meanwhile if the handler overstays (see
   hand-off); either way this thread then keeps only c (t->detached).
   1 if, instead, the request waits for a thread (see tb__lend). */
static int tb__run_handler(tb__worker *w, tb__thread *t, tb__conn *c, tb__handler *h, turbo_req *r) {
    int blocks = (h->flags & TURBO_BLOCKING) || __atomic_load_n(&h->overstayed, __ATOMIC_RELAXED), lent;
    int64_t now = w->now, started; /* w's clock read while w is this thread's: once lent, it is another's */
    if (t->holding && !(h->flags & TURBO_LOCKED)) tb__release(t); /* before h is timed, or lent a thread */
    lent = blocks ? tb__lend(w, t, c) : 0;
    if (lent < 0) return 1;
    started = lent ? tb__now_us() : 0;
    if (!lent) tb__call_begin(w, t, c);
    if (!(h->flags & TURBO_LOCKED) || t->holding || tb__lock_take(t, now) == 0) h->fn(r, &t->res, h->user);
    if (!lent) {
        if (tb__call_end(w, t)) __atomic_store_n(&h->overstayed, 1, __ATOMIC_RELAXED);
    } else {
        if (tb__now_us() - started < (int64_t)w->s->cfg.handoff_ms * 1000) /* it has become quick */
            __atomic_store_n(&h->overstayed, 0, __ATOMIC_RELAXED);
        tb__update_date(t, tb__now_ms()); /* it may have run for seconds */
    }
    if (t->res.deferred && !t->detached) w->defers++;
    return 0;
}

static int tb__static_bare(const turbo_server *s, const turbo_req *r, turbo_res *res);

/* Routes one complete request and writes its response; 1 if, instead,
   the request waits for a thread (c in TB__C_WAIT, nothing written). */
static int tb__dispatch(tb__worker *w, tb__thread *t, tb__conn *c, turbo_req *r, const tb__framing *f) {
    turbo_server *s = w->s;
    turbo_res *res = &t->res;
    const tb__node *allow = NULL;
    tb__handler *h = NULL;
    int keep = ++c->requests < s->cfg.max_requests && f->keep_alive && !w->draining;
    tb__res_begin(w, t, c, keep, r->std_method == TB__STD_HEAD);
    if (s->observing) tb__observe_begin(t, c, r);
    t->scratch.len = 0;
    if (s->health_len && r->path.len == s->health_len &&
        memcmp(r->path.ptr, s->cfg.health_path, r->path.len) == 0) {
        int stopping = w->draining || w->drain_at;
        turbo_res_send(res, stopping ? 503 : 200, "text/plain; charset=utf-8",
                       stopping ? "draining\n" : "ok\n", stopping ? 9 : 3);
    } else if (s->metrics_len && r->path.len == s->metrics_len &&
               memcmp(r->path.ptr, s->cfg.metrics_path, r->path.len) == 0) {
        tb__metrics(s, &t->scratch);
        turbo_res_send(res, 200, "text/plain; version=0.0.4; charset=utf-8", t->scratch.data, t->scratch.len);
    } else if (r->path.ptr[0] == '*') { /* OPTIONS *: tb__split_target saw to it (a path begins with /) */
        tb__allow_all(s->methods, s->nmethods, &t->scratch);
        turbo_res_status(res, 200); /* RFC 9110 9.3.7: with Content-Length: 0 */
        turbo_res_headern(res, "Allow", 5, t->scratch.data, t->scratch.len);
    } else if ((h = tb__route(s->root, r, &allow)) != NULL) { /* a method with a route is known */
        if (tb__run_handler(w, t, c, h, r)) {                 /* as if it had not come yet */
            t->out.len = res->start;
            if (s->observing) t->log.len = res->log_mark;
            c->requests--;
            c->state = TB__C_WAIT;
            return 1;
        }
    } else if (!tb__known_method(s->methods, s->nmethods, r->method)) {
        tb__res_fail(res, 501);
    } else if (allow) {
        int options = tb__is_method(r->method, "OPTIONS");
        tb__allow_value(allow, &t->scratch);
        turbo_res_status(res, options ? 200 : 405);
        turbo_res_headern(res, "Allow", 5, t->scratch.data, t->scratch.len);
        if (!options) tb__res_error_body(res, 405);
    } else if (!tb__static_bare(s, r, res)) {
        tb__res_fail(res, 404);
    }
    tb__res_end(w, t, c, r);
    return 0;
}

#define TB__HEAD_EAGER 1024 /* bytes of a head in progress parsed again on every read */

/* Is the head in progress worth parsing again? When a line has ended since
   the last look (the parser judges each line; a blank one ends the head),
   while the head is short (each byte judged as it comes, as in one read),
   or past a limit: a bad byte gets its 400 however the bytes are split,
   by the end of its line at the latest. The bytes are scanned once, and a
   head trickled byte by byte is parsed on every read only while short,
   then once a line (and max_headers lines at most), so it costs O(n). */
static int tb__head_ready(tb__conn *c, const char *msg, size_t avail, const tb__limits *lim) {
    size_t from = c->head_scan;
    const char *lf = from < avail ? (const char *)memchr(msg + from, '\n', avail - from) : NULL;
    c->head_scan = avail;
    if (lf && (lf - msg > 1 || (lf - msg == 1 && msg[0] != '\r'))) c->saw_lf = 1;
    return lf || avail <= TB__HEAD_EAGER || (!c->saw_lf && avail > lim->max_line + 1) ||
           avail > lim->max_head + 2;
}

/* A few empty lines alone (old clients end a body with one) begin no
   request (RFC 9112 2.2): 1, with *pos past them, when avail bytes are
   that, the connection staying idle rather than waiting for a head that
   would time out with a 408. A CR alone waits for its LF. */
static int tb__empty_lines(const char *msg, size_t avail, size_t *pos) {
    size_t k = 0;
    if (avail > 8) return 0;
    while (k + 1 < avail && msg[k] == '\r' && msg[k + 1] == '\n') k += 2;
    if (k < avail && (k + 1 < avail || msg[k] != '\r')) return 0;
    *pos += k;
    return 1;
}

static void tb__request_done(tb__conn *c) {
    c->state = TB__C_IDLE;
    c->idle_kept = 0;
    c->head_scan = 0;
    c->saw_lf = 0;
}

/* What stops the requests in a read from being answered now; tested as one
   value (a branch for all five, not one each: every request pays it). */
static int tb__conn_stops(const tb__thread *t, const tb__conn *c) {
    return t->detached | c->close_after | c->out_full | (c->defer != NULL) | (c->ws != NULL);
}

/* Does a route take r (and so want its body)? Else its answer (404, 405,
   501) needs none. Rare (a 100 Continue asked for): kept out of the path
   of every request, where tb__route is inlined. */
static TB__NOINLINE int tb__routed(const turbo_server *s, turbo_req *r) {
    const tb__node *allow = NULL;
    return tb__route(s->root, r, &allow) != NULL;
}

/* Serves every complete request in data; returns the bytes consumed. The
   rest is an unfinished request (or requests waiting behind a deferred
   one, or one waiting for a thread) for the caller to keep. Stops after a
   handler that detached t, and at a request that waits. */
static size_t tb__process(tb__worker *w, tb__thread *t, tb__conn *c, char *data, size_t len) {
    size_t pos = 0;
    turbo_req *r = &t->req;
    while (pos < len && !tb__conn_stops(t, c)) {
        char *msg = data + pos;
        size_t avail = len - pos, consumed;
        tb__framing f;
        int hl;
        if (t->out.len >= TB__OUT_HIGH) { /* answer the rest once this much has drained */
            c->out_full = 1;
            break;
        }
        if (c->state == TB__C_BODY) {
            hl = c->head_len;
            f = c->framing;
        } else {
            if (c->state == TB__C_HEAD && !tb__head_ready(c, msg, avail, &w->limits)) break;
            hl = tb__parse_head(msg, avail, r, &f, &w->limits);
            if (hl < 0) {
                tb__conn_error(w, t, c, -hl, tb__is_method(r->method, "HEAD"));
                break;
            }
            if (hl == 0) {
                size_t served = pos; /* the bytes of the requests this read ended */
                if (c->state == TB__C_IDLE && tb__empty_lines(msg, avail, &pos)) {
                    c->idle_kept = !served;
                    break;
                }
                if (pos)
                    tb__timer_clear(w, c); /* it began in the read that ended another: its own deadline */
                c->state = TB__C_HEAD;
                tb__head_ready(c, msg, avail, &w->limits);
                break;
            }
        }
        if (f.chunked) {
            int rc;
            /* A body decoded in an earlier read (BODY) or before its request
               waited (WAIT: in place, done) goes on from where it was. */
            if (c->state != TB__C_BODY && c->state != TB__C_WAIT) memset(&c->chunk, 0, sizeof c->chunk);
            rc = tb__dechunk(msg + hl, avail - (size_t)hl, &c->chunk, &w->limits);
            if (rc < 0) { /* in TB__C_BODY the thread's request is another's: c says */
                tb__conn_error(w, t, c, -rc,
                               c->state == TB__C_BODY ? c->head_only : tb__is_method(r->method, "HEAD"));
                break;
            }
            consumed = rc ? (size_t)hl + c->chunk.src : 0;
        } else {
            consumed = avail - (size_t)hl >= f.content_length ? (size_t)hl + f.content_length : 0;
        }
        if (!consumed && c->state != TB__C_BODY && f.expect_continue && !tb__routed(w->s, r)) {
            /* Asked for a 100 Continue that no route would want: answered now, the
               body unread, and the connection closed after it (RFC 9110 10.1.1). */
            f.keep_alive = 0;
            f.chunked = 0;
            f.content_length = 0;
            consumed = (size_t)hl;
        }
        if (!consumed) { /* the body is still on its way (100 Continue, if asked, the first time) */
            if (c->state != TB__C_BODY) {
                if (f.expect_continue) tb__buf_puts(&t->out, "HTTP/1.1 100 Continue\r\n\r\n");
                c->head_only = tb__is_method(r->method, "HEAD");
            }
            c->state = TB__C_BODY;
            c->head_len = hl;
            c->framing = f;
            break;
        }
        /* A body that came in later reads: the views into the head are
           stale (the bytes moved into c->in), so the head is parsed again. */
        if (c->state == TB__C_BODY) tb__parse_head(msg, avail, r, &f, &w->limits);
        r->peer = &c->peer;
        r->body = tb__str(msg + hl, f.chunked ? c->chunk.dst : (size_t)f.content_length);
        tb__request_done(c);
        if (tb__dispatch(w, t, c, r, &f)) break; /* it waits for a thread, kept in c->in */
        pos += consumed;
    }
    if (t->holding && (t->detached || c->ws || c->defer || !w->s->cfg.keep_ms))
        tb__release(t); /* else kept for the next requests, if the loop may (tb__worker_run) */
    if (c->ws && !t->detached)
        pos += tb__ws_process(w, t, c, len ? data + pos : data, len - pos); /* data: NULL if len is 0 */
    return pos;
}

/* Arms the timer that fits what the connection waits for now. A deadline
   runs from the end of the last request (empty lines after it,
   ignored, move none), or from the first byte of a head. */
static void tb__conn_arm(tb__worker *w, tb__conn *c, int was) {
    if (c->state == TB__C_IDLE) {
        if (c->timer != TB__T_IDLE || !c->idle_kept) tb__timer_set(w, c, TB__T_IDLE);
    } else if (c->state == TB__C_DEFER) tb__timer_set(w, c, TB__T_DEFER);
    else if (c->state == TB__C_WAIT && c->timer != TB__T_WAIT) tb__timer_set(w, c, TB__T_WAIT); /* in turn */
    else if (c->state == TB__C_WS && c->ws->read_paused) tb__timer_clear(w, c);
    else if (c->state == TB__C_WS) tb__timer_set(w, c, c->ws->close_sent ? TB__T_WRITE : TB__T_WS);
    else if (c->state != was || c->timer < 0 || c->timer == TB__T_IDLE || c->timer == TB__T_WRITE)
        tb__timer_set(w, c, c->state == TB__C_HEAD ? TB__T_HEAD : TB__T_BODY);
}

/* Keeps the bytes of data past used (an unfinished request) in c->in. */
static void tb__conn_keep(tb__conn *c, char *data, size_t len, size_t used) {
    if (used < len) {
        if (data != c->in.data) {
            tb__append(&c->in, data + used, len - used);
            if (c->in.oom) c->close_after = 1;
        } else {
            memmove(c->in.data, c->in.data + used, len - used);
            c->in.len = len - used;
        }
    } else if (data == c->in.data) {
        turbo_buf_free(&c->in); /* an idle connection keeps no buffer */
    }
    if (c->defer) c->state = TB__C_DEFER;
}

/* With the mailbox locked: items added to an empty mailbox wake the worker
   (it empties the pipe, then takes every item). */
static int tb__mailbox_empty(const tb__mailbox *box) {
    return !box->resumed && !box->returned && !box->sockets;
}

static void tb__mailbox_wake(tb__mailbox *box) {
    while (write(box->wake_fd, "r", 1) < 0 && errno == EINTR) {
    }
}

/* A detached thread gives its lent connection back: it sends the answers
   itself (what the socket refuses waits in c->out) and posts c to the
   worker's mailbox. */
static void tb__conn_return(tb__worker *w, tb__thread *t, tb__conn *c) {
    tb__mailbox *box = w->box;
    if (tb__out_flush(t, c) != 0) c->dead = 1;
    pthread_mutex_lock(&box->lock);
    int wake = tb__mailbox_empty(box);
    c->returned_next = box->returned;
    box->returned = c;
    if (wake) tb__mailbox_wake(box);
    pthread_mutex_unlock(&box->lock);
}

/* After processing: keep the unconsumed bytes, send, pick the next wait;
   a detached thread gives its lent connection back instead. */
static void tb__conn_after(tb__worker *w, tb__thread *t, tb__conn *c, char *data, size_t len, size_t used,
                           int was) {
    int hold; /* reading stops: behind a deferred answer, or a paused WebSocket */
    tb__conn_keep(c, data, len, used);
    if (t->detached) {
        tb__conn_return(w, t, c);
        return;
    }
    if (tb__conn_send(w, t, c) != 0) return; /* closed, or reading resumes once the output drains */
    if (c->out_full) { /* a file, or requests in c->in: served once the socket takes more */
        tb__conn_await(w, c, TB__WRITE, TB__T_WRITE);
        return;
    }
    if (c->close_after) {
        tb__conn_linger(w, c);
        return;
    }
    hold = ((c->state == TB__C_DEFER || c->state == TB__C_WAIT) && c->in.len >= TB__DEFER_HOLD) ||
           (c->state == TB__C_WAIT && c->read_shut) || (c->ws && c->ws->read_paused);
    if ((w->draining && c->state == TB__C_IDLE && !c->in.len) || tb__conn_watch(w, c, hold ? 0 : TB__READ)) {
        tb__conn_free(w, c);
        return;
    }
    tb__conn_arm(w, c, was);
}

static void tb__conn_readable(tb__worker *w, tb__thread *t, tb__conn *c) {
    char *data;
    size_t len, used;
    ssize_t n;
    int was = c->state;
    if (!c->in.len) {
        n = tb__read(c->fd, t->rbuf, sizeof t->rbuf);
        data = t->rbuf;
        len = n > 0 ? (size_t)n : 0;
    } else {
        size_t room = c->state == TB__C_BODY || c->ws ? 65536 : 4096;
        if (tb__reserve(&c->in, room) != 0) {
            tb__conn_free(w, c);
            return;
        }
        n = tb__read(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len);
        if (n > 0) c->in.len += (size_t)n;
        data = c->in.data;
        len = c->in.len;
    }
    if (n == 0 && c->state == TB__C_WAIT) { /* a client done sending still gets its answer */
        c->read_shut = 1;
        tb__conn_watch(w, c, 0);
        return;
    }
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        tb__conn_free(w, c);
        return;
    }
    if (n < 0 || c->state == TB__C_LINGER) return; /* lingering (no c->in): dropped */
    TB__ADD(t->counts[TB__N_BYTES_IN], (uint64_t)n);
    used = tb__process(w, t, c, data, len);
    tb__conn_after(w, t, c, data, len, used, was);
}

/* Requests held in c->in (behind a deferred answer or a backed-up
   output) are served now. */
static void tb__conn_resume(tb__worker *w, tb__thread *t, tb__conn *c) {
    int was = c->state;
    size_t used;
    c->out_full = c->file_left > 0; /* a resumed answer's file holds the requests behind it */
    used = tb__process(w, t, c, c->in.data, c->in.len);
    tb__conn_after(w, t, c, c->in.data, c->in.len, used, was);
    tb__let_go(t); /* kept only for what the loop reads next: a resume function may come first */
}

static void tb__conn_writable(tb__worker *w, tb__thread *t, tb__conn *c) {
    ssize_t n = tb__send_some(c, c->out.data + c->out_sent, c->out.len - c->out_sent);
    if (n < 0) {
        tb__conn_free(w, c);
        return;
    }
    c->out_sent += (size_t)n;
    if (c->ws) tb__ws_sent(c);
    if (c->out_sent < c->out.len) {
        tb__timer_set(w, c, TB__T_WRITE);
        return;
    }
    turbo_buf_free(&c->out);
    c->out_sent = 0;
    if (c->file_left && tb__conn_send_file(c) != 0) {
        tb__conn_free(w, c);
        return;
    }
    if (c->file_left || c->out.len) { /* the rest once the socket takes more */
        tb__timer_set(w, c, TB__T_WRITE);
        return;
    }
    if (c->close_after) {
        tb__conn_linger(w, c);
        return;
    }
    tb__conn_resume(w, t, c);
}

/* A lent connection is back: the loop takes it up where its thread left it. */
static void tb__conn_returned(tb__worker *w, tb__thread *t, tb__conn *c) {
    c->lent = 0;
    w->lent--;
    if (c->defer) w->defers++;
    if (c->dead || w->gave_up) {
        tb__conn_free(w, c);
        return;
    }
    if (c->out.len) /* send the rest first; reading resumes once it has drained */
        tb__conn_after(w, t, c, c->in.data, c->in.len, 0, -1);
    else tb__conn_resume(w, t, c);
}

/* A request that found no thread within wait_timeout_ms gets a 503; what
   came after it goes unread. */
static void tb__wait_expired(tb__worker *w, tb__thread *t, tb__conn *c) {
    turbo_req *r = &t->req;
    tb__framing f;
    tb__parse_head(c->in.data, c->in.len, r, &f, &w->limits); /* whole, as when it began to wait */
    r->peer = &c->peer;
    tb__res_begin(w, t, c, 0, tb__is_method(r->method, "HEAD"));
    if (w->s->observing) tb__observe_begin(t, c, r);
    tb__res_fail(&t->res, 503);
    tb__res_end(w, t, c, r);
}

static void tb__conn_timeout(tb__worker *w, tb__thread *t, tb__conn *c) {
    int cls = c->timer;
    tb__timer_clear(w, c);
    if ((cls == TB__T_HEAD && c->state == TB__C_HEAD) || cls == TB__T_BODY || cls == TB__T_WAIT) {
        if (cls == TB__T_WAIT) tb__wait_expired(w, t, c);
        else tb__conn_error(w, t, c, 408, cls == TB__T_BODY && c->head_only);
        if (tb__conn_send(w, t, c) == 0) tb__conn_linger(w, c); /* one call: it stays inlined elsewhere */
    } else if (cls == TB__T_WS && !c->ws->pinged) {             /* a silent WebSocket: a ping, then close */
        c->ws->pinged = 1;
        tb__ws_frame(&t->out, 9, NULL, 0);
        if (tb__conn_send(w, t, c) == 0) tb__timer_set(w, c, TB__T_WS);
    } else {
        tb__conn_free(w, c);
    }
}

/* ---------------------------------------------------------------- WebSockets */
/* A connection that answered 101 reads frames (RFC 6455) instead of
   requests, in tb__ws_process, called by tb__process: a message in one
   frame reaches on_message unmasked in place, in the read buffer; one in
   fragments is put together in ws->msg. Frames sent, from any thread,
   gather whole in ws->pending under ws->lock; the worker moves them to the
   connection's output after its callbacks, or when its mailbox says so. */

/* SHA-1 (RFC 3174) of msg, n < 120 bytes: the handshake's only need. */
static void tb__sha1(const unsigned char *msg, size_t n, unsigned char digest[20]) {
    uint32_t h[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u}, w[80];
    unsigned char buf[128] = {0};
    size_t len = ((n + 8) / 64 + 1) * 64, blk; /* with 0x80 and the 64-bit bit count */
    int i;
    memcpy(buf, msg, n);
    buf[n] = 0x80;
    for (i = 0; i < 8; i++) buf[len - 1 - (size_t)i] = (unsigned char)((uint64_t)n * 8 >> (8 * i));
    for (blk = 0; blk < len; blk += 64) {
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f, k, tmp;
        for (i = 0; i < 16; i++) {
            const unsigned char *q = buf + blk + 4 * i;
            w[i] = (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3];
        }
        for (i = 16; i < 80; i++) {
            tmp = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16];
            w[i] = tmp << 1 | tmp >> 31;
        }
        for (i = 0; i < 80; i++) {
            if (i < 20) f = (b & c) | (~b & d), k = 0x5A827999u;
            else if (i < 40) f = b ^ c ^ d, k = 0x6ED9EBA1u;
            else if (i < 60) f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDCu;
            else f = b ^ c ^ d, k = 0xCA62C1D6u;
            tmp = (a << 5 | a >> 27) + f + e + k + w[i];
            e = d;
            d = c;
            c = b << 30 | b >> 2;
            b = a;
            a = tmp;
        }
        h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
    }
    for (i = 0; i < 20; i++) digest[i] = (unsigned char)(h[i / 4] >> (24 - 8 * (i % 4)));
}

static const char tb__base64_abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Does list v (a header's value) hold token, ignoring case? */
static int tb__has_token(turbo_str v, const char *token) {
    turbo_str item;
    while (tb__list_next(&v, ',', &item))
        if (tb__ieq(item.ptr, item.len, token)) return 1;
    return 0;
}

TURBO_API int turbo_ws_accept_key(const turbo_req *req, char accept[29]) {
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    turbo_str key = turbo_req_header(req, "sec-websocket-key");
    turbo_str version = turbo_req_header(req, "sec-websocket-version");
    unsigned char in[60], digest[21] = {0};
    int i;
    /* the key: 16 bytes in base64, so 22 letters (the last with 4 zero bits), "==" */
    if (!tb__is_method(req->method, "GET") || req->version != 11 || key.len != 24 ||
        memcmp(key.ptr + 22, "==", 2) != 0 || strspn(key.ptr, tb__base64_abc) != 22 ||
        !strchr("AQgw", key.ptr[21]) || !tb__has_token(turbo_req_header(req, "upgrade"), "websocket") ||
        !tb__has_token(turbo_req_header(req, "connection"), "upgrade"))
        return 400;
    if (version.len != 2 || memcmp(version.ptr, "13", 2) != 0) return 426;
    memcpy(in, key.ptr, 24);
    memcpy(in + 24, guid, 36);
    tb__sha1(in, sizeof in, digest);
    for (i = 0; i < 7; i++) { /* 20 bytes: six groups of three, then two and a '=' */
        uint32_t v = (uint32_t)digest[3 * i] << 16 | (uint32_t)digest[3 * i + 1] << 8 | digest[3 * i + 2];
        accept[4 * i] = tb__base64_abc[v >> 18];
        accept[4 * i + 1] = tb__base64_abc[v >> 12 & 63];
        accept[4 * i + 2] = tb__base64_abc[v >> 6 & 63];
        accept[4 * i + 3] = i < 6 ? tb__base64_abc[v & 63] : '=';
    }
    accept[28] = 0;
    return 0;
}

/* Bytes at the end of s that begin a UTF-8 sequence still incomplete, or
   -1 if s is not UTF-8. */
static long tb__utf8_tail(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint64_t word;
        int k;
        if (n - i >= 8 && (memcpy(&word, s + i, 8), !(word & 0x8080808080808080u))) {
            i += 8; /* ASCII, eight bytes at once */
        } else if (s[i] < 0x80) {
            i++;
        } else if ((k = tb__json_utf8(s + i, n - i)) > 0) {
            i += (size_t)k;
        } else {
            return (size_t)-k == n - i ? (long)(n - i) : -1; /* cut short by the end, or broken */
        }
    }
    return 0;
}

/* Appends a frame (a server's: not masked). The length is in the second
   byte below 126, else that byte says 126 or 127 and 16 or 64 bits follow. */
static void tb__ws_frame(turbo_buf *b, int opcode, const void *data, size_t len) {
    unsigned char head[10];
    size_t n = len < 126 ? 2 : len < 65536 ? 4 : 10, i;
    head[0] = (unsigned char)(0x80 | opcode);
    head[1] = (unsigned char)(n == 2 ? len : n == 4 ? 126 : 127);
    for (i = 2; i < n; i++) head[i] = (unsigned char)((uint64_t)len >> (8 * (n - 1 - i))); /* big-endian */
    tb__append(b, head, n);
    tb__append(b, data, len);
}

TURBO_API void turbo_ws_retain(turbo_ws *ws) { __atomic_add_fetch(&ws->refs, 1, __ATOMIC_RELAXED); }

TURBO_API void turbo_ws_release(turbo_ws *ws) {
    if (__atomic_sub_fetch(&ws->refs, 1, __ATOMIC_ACQ_REL)) return;
    pthread_mutex_destroy(&ws->lock);
    turbo_buf_free(&ws->pending);
    turbo_buf_free(&ws->msg);
    TURBO_FREE(ws);
}

/* With ws->lock held: the worker is to take pending, after the callback
   under way if there is one, else when its mailbox wakes it. */
static void tb__ws_notify(turbo_ws *ws) {
    tb__mailbox *box = ws->box;
    if (ws->in_callback || ws->queued) return;
    ws->queued = 1;
    turbo_ws_retain(ws);
    pthread_mutex_lock(&box->lock);
    if (tb__mailbox_empty(box)) tb__mailbox_wake(box);
    ws->next = box->sockets;
    box->sockets = ws;
    pthread_mutex_unlock(&box->lock);
}

TURBO_API int turbo_ws_send(turbo_ws *ws, const void *data, size_t len, int text) {
    int rc = -1;
    size_t waiting;
    pthread_mutex_lock(&ws->lock);
    waiting = ws->pending.len + __atomic_load_n(&ws->backlog, __ATOMIC_RELAXED);
    if (ws->box && !ws->closing) {
        if (waiting <= TB__WS_MAX) tb__ws_frame(&ws->pending, text ? 1 : 2, data, len);
        if (waiting > TB__WS_MAX || ws->pending.oom) { /* a frame cut short would break the stream */
            ws->closing = ws->dropped = 1;
        } else {
            rc = waiting + len > TB__WS_HIGH;
            ws->want_drain |= rc;
        }
        tb__ws_notify(ws);
    }
    pthread_mutex_unlock(&ws->lock);
    return rc;
}

/* May a close frame carry code (RFC 6455 7.4, and 1012-1014 registered since)? */
static int tb__ws_code_ok(int code) {
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

/* With ws->lock held: a close frame goes last into pending. A code that
   may not be sent is sent as 1000; a reason is cut to 123 bytes, at the
   start of a UTF-8 sequence. */
static void tb__ws_close_frame(turbo_ws *ws, int code, const char *reason) {
    char body[125];
    size_t n = reason ? strlen(reason) : 0;
    if (n > 123)
        for (n = 123; n && ((unsigned char)reason[n] & 0xC0) == 0x80;) n--;
    code = tb__ws_code_ok(code) ? code : 1000;
    body[0] = (char)(code >> 8);
    body[1] = (char)(code & 255);
    if (n) memcpy(body + 2, reason, n);
    tb__ws_frame(&ws->pending, 8, body, n + 2);
    ws->closing = 1;
    ws->sent_code = code;
}

TURBO_API void turbo_ws_pause(turbo_ws *ws, int paused) {
    pthread_mutex_lock(&ws->lock);
    __atomic_store_n(&ws->paused, paused, __ATOMIC_RELAXED); /* tb__ws_process reads it unlocked */
    if (ws->box) tb__ws_notify(ws);                          /* the worker watches the socket anew */
    pthread_mutex_unlock(&ws->lock);
}

TURBO_API void turbo_ws_close(turbo_ws *ws, int code, const char *reason) {
    pthread_mutex_lock(&ws->lock);
    if (ws->box && !ws->closing) {
        tb__ws_close_frame(ws, code, reason);
        tb__ws_notify(ws);
    }
    pthread_mutex_unlock(&ws->lock);
}

TURBO_API turbo_ws *turbo_res_websocket(turbo_res *res, const char *accept, const char *subprotocol,
                                        const turbo_ws_handler *h, void *user) {
    static const char upgrade[] = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ";
    tb__conn *c = res->c;
    turbo_ws *ws;
    if (c->ws || res->deferred || c->streaming || tb__res_body_started(res) || strlen(accept) != 28 ||
        !(ws = (turbo_ws *)TURBO_MALLOC(sizeof *ws))) {
        tb__res_fail(res, 500);
        return NULL;
    }
    memset(ws, 0, sizeof *ws);
    pthread_mutex_init(&ws->lock, NULL);
    tb__res_own_header(res, upgrade, sizeof upgrade - 1);
    tb__append(res->out, accept, 28);
    tb__append(res->out, "\r\n", 2);
    if (subprotocol) turbo_res_header(res, "Sec-WebSocket-Protocol", subprotocol);
    res->keep_alive = 1; /* no "Connection: close": the connection goes on as a WebSocket */
    res->status = 101;
    ws->refs = 1; /* the connection's */
    ws->box = res->w->box;
    ws->conn = c;
    ws->h = h;
    ws->user = user;
    c->ws = ws;
    c->state = TB__C_WS;
    return ws;
}

/* As its connection is freed: sends fail from now on; on_close, last. */
static void tb__ws_gone(tb__worker *w, tb__conn *c) {
    turbo_ws *ws = c->ws;
    pthread_mutex_lock(&ws->lock);
    ws->box = NULL;
    ws->closing = 1;
    pthread_mutex_unlock(&ws->lock);
    if (ws->prev_ws) ws->prev_ws->next_ws = ws->next_ws;
    else if (ws->opened) w->sockets = ws->next_ws;
    if (ws->next_ws) ws->next_ws->prev_ws = ws->prev_ws;
    ws->conn = NULL;
    c->ws = NULL;
    if (ws->h->on_close) ws->h->on_close(ws, ws->code ? ws->code : 1006, ws->user);
    turbo_ws_release(ws);
}

/* Breaks the connection off for a broken rule: a close frame with code,
   then close (c->close_after). Returns 0, for tb__ws_frame_in. */
static size_t tb__ws_fail(tb__conn *c, int code) {
    turbo_ws *ws = c->ws;
    pthread_mutex_lock(&ws->lock);
    if (!ws->closing) tb__ws_close_frame(ws, code, NULL);
    pthread_mutex_unlock(&ws->lock);
    if (!ws->code) ws->code = code;
    c->close_after = 1;
    return 0;
}

/* XORs p with the frame's mask, eight bytes at a time. */
static void tb__ws_unmask(unsigned char *p, size_t n, const unsigned char mask[4]) {
    uint64_t m8, word;
    size_t i = 0;
    memcpy(&m8, mask, 4);
    memcpy((char *)&m8 + 4, mask, 4);
    for (; i + 8 <= n; i += 8) {
        memcpy(&word, p + i, 8);
        word ^= m8;
        memcpy(p + i, &word, 8);
    }
    for (; i < n; i++) p[i] ^= mask[i & 3];
}

/* Takes one frame off data: its length, or 0 while it is incomplete (or
   after tb__ws_fail). */
static size_t tb__ws_frame_in(tb__worker *w, tb__thread *t, tb__conn *c, char *data, size_t avail) {
    turbo_ws *ws = c->ws;
    unsigned char *f = (unsigned char *)data, *p;
    unsigned op = f[0] & 15, fin = f[0] >> 7;
    size_t hl, n, frame, i;
    uint64_t n64;
    int code;
    long tail;
    if (avail < 2) return 0;
    if ((f[0] & 0x70) || !(f[1] & 0x80) || (op > 2 && op < 8) || op > 10) return tb__ws_fail(c, 1002);
    n = f[1] & 127;
    hl = n == 126 ? 8 : n == 127 ? 14 : 6; /* with the mask */
    if (avail < hl) return 0;
    n64 = hl == 6 ? n : 0;
    for (i = 2; i < hl - 4; i++) n64 = n64 << 8 | f[i]; /* or the 16- or 64-bit length after it */
    if (n64 >> 63) return tb__ws_fail(c, 1002);
    n = n64 > SIZE_MAX - hl ? SIZE_MAX - hl : (size_t)n64;
    if (op >= 8 && (!fin || n > 125)) return tb__ws_fail(c, 1002);
    if (op < 8 && (op == 0) != (ws->msg_op != 0)) return tb__ws_fail(c, 1002); /* continuation out of place */
    if (op < 8 && n > w->s->cfg.ws_max_message - ws->msg.len) return tb__ws_fail(c, 1009);
    if (avail - hl < n) return 0;
    frame = hl + n;
    p = f + hl;
    tb__ws_unmask(p, n, p - 4);
    ws->pinged = 0;
    if (op == 9 && !ws->close_sent) tb__ws_frame(&t->out, 10, p, n);
    if (op == 8) {
        code = n >= 2 ? p[0] << 8 | p[1] : 1005;
        if (n == 1 || (n >= 2 && !tb__ws_code_ok(code))) return tb__ws_fail(c, 1002);
        if (n > 2 && tb__utf8_tail(p + 2, n - 2) != 0) return tb__ws_fail(c, 1007);
        pthread_mutex_lock(&ws->lock);
        if (!ws->closing) tb__ws_frame(&ws->pending, 8, p, n >= 2 ? 2 : 0); /* the same code back */
        ws->closing = 1;
        pthread_mutex_unlock(&ws->lock);
        ws->code = code;
        c->close_after = 1;
    }
    if (op >= 8) return frame;
    if (!fin || ws->msg_op) { /* a fragment */
        if (op) ws->msg_op = (int)op;
        tb__append(&ws->msg, p, n);
        if (ws->msg.oom) return tb__ws_fail(c, 1009);
        if (ws->msg_op == 1) {
            tail = tb__utf8_tail((unsigned char *)ws->msg.data + ws->msg_valid, ws->msg.len - ws->msg_valid);
            if (tail < 0 || (fin && tail)) return tb__ws_fail(c, 1007);
            ws->msg_valid = ws->msg.len - (size_t)tail;
        }
        if (!fin) return frame;
        p = (unsigned char *)ws->msg.data;
        n = ws->msg.len;
        op = (unsigned)ws->msg_op;
    } else if (op == 1 && tb__utf8_tail(p, n) != 0) {
        return tb__ws_fail(c, 1007);
    }
    if (!ws->close_sent) {
        tb__call_begin(w, t, c);
        ws->h->on_message(ws, (const char *)p, n, op == 1, ws->user);
        tb__call_end(w, t);
    }
    if (ws->msg_op) {
        ws->msg_op = 0;
        ws->msg_valid = ws->msg.len = 0;
        if (ws->msg.cap > TB__OUT_KEEP) turbo_buf_free(&ws->msg);
    }
    return frame;
}

/* Serves the frames in data (and, first, on_open and on_drain when due);
   returns the bytes consumed: the rest is a frame still incomplete. */
static size_t tb__ws_process(tb__worker *w, tb__thread *t, tb__conn *c, char *data, size_t len) {
    turbo_ws *ws = c->ws;
    size_t pos = 0, n = 1;
    int drained;
    pthread_mutex_lock(&ws->lock);
    ws->in_callback = 1;
    drained = ws->want_drain && c->out.len - c->out_sent + ws->pending.len < TB__WS_LOW;
    ws->want_drain &= !drained;
    pthread_mutex_unlock(&ws->lock);
    if (!ws->opened) { /* on the worker's thread: the handler that upgraded may have run on another */
        ws->opened = 1;
        ws->next_ws = w->sockets;
        if (ws->next_ws) ws->next_ws->prev_ws = ws;
        w->sockets = ws;
        if (w->draining) turbo_ws_close(ws, 1001, NULL);
        tb__call_begin(w, t, c);
        if (ws->h->on_open) ws->h->on_open(ws, ws->user);
        tb__call_end(w, t);
    }
    if (drained && ws->h->on_drain && !t->detached) {
        tb__call_begin(w, t, c);
        ws->h->on_drain(ws, ws->user);
        tb__call_end(w, t);
    }
    while (pos < len && n && !t->detached && !c->close_after &&
           (!__atomic_load_n(&ws->paused, __ATOMIC_RELAXED) || ws->close_sent))
        pos += n = tb__ws_frame_in(w, t, c, data + pos, len - pos);
    pthread_mutex_lock(&ws->lock); /* the frames sent meanwhile go out with the answers to these */
    ws->in_callback = 0;
    tb__append(&t->out, ws->pending.data, ws->pending.len);
    ws->pending.len = 0;
    if (ws->pending.cap > TB__OUT_KEEP) turbo_buf_free(&ws->pending);
    ws->close_sent = ws->closing;
    ws->read_paused = ws->paused && !ws->closing;
    if (!ws->code) ws->code = ws->sent_code;
    if (ws->dropped) { /* the client does not read: what waits is dropped */
        t->out.len = t->out_from = 0;
        shutdown(c->fd, SHUT_RDWR);
        c->close_after = 1;
    }
    pthread_mutex_unlock(&ws->lock);
    return pos;
}

/* After a send to c: a producer waiting for on_drain is due once little
   waits (tb__ws_flush_all, then tb__ws_process, call it). */
static void tb__ws_sent(tb__conn *c) {
    turbo_ws *ws = c->ws;
    size_t backlog = c->out.len - c->out_sent;
    __atomic_store_n(&ws->backlog, backlog, __ATOMIC_RELAXED);
    if (backlog >= TB__WS_LOW) return; /* no on_drain due: no lock taken on a backed-up socket */
    pthread_mutex_lock(&ws->lock);
    if (ws->want_drain && ws->box) tb__ws_notify(ws);
    pthread_mutex_unlock(&ws->lock);
}

/* Serves the WebSockets of list (box->sockets): their frames go out, a
   due on_drain is called; then releases them. Once t detaches in a
   callback, the rest wait for the worker's next thread; without t (the
   worker has stopped), they are released only. */
static void tb__ws_flush_all(tb__worker *w, tb__thread *t, turbo_ws *list) {
    while (list) {
        turbo_ws *ws = list;
        tb__conn *c = t && !t->detached ? ws->conn : NULL; /* detached, t owns another's connection only */
        list = ws->next;
        pthread_mutex_lock(&ws->lock);
        ws->queued = 0;
        if (t && t->detached && ws->box) tb__ws_notify(ws);
        pthread_mutex_unlock(&ws->lock);
        /* a lent one is served as its thread gives it back */
        if (c && !c->lent && c->state == TB__C_WS) tb__conn_resume(w, t, c);
        turbo_ws_release(ws);
    }
}

/* ---------------------------------------------------------------- deferred answers */
/* The one place where other threads meet a worker: they resume deferred
   answers, and detached threads return lent connections, through its
   mailbox; the wake pipe tells the worker's loop. */

TURBO_API turbo_defer *turbo_res_defer(turbo_res *res) {
    turbo_defer *d;
    if (res->deferred) return res->c->defer;
    if (res->c->ws || res->c->streaming == TB__STREAM_FILE) return NULL; /* the answer is made */
    d = (turbo_defer *)TURBO_MALLOC(sizeof *d);
    if (!d) return NULL;
    memset(d, 0, sizeof *d);
    d->conn = res->c;
    d->box = res->w->box;
    d->keep_alive = res->keep_alive;
    d->head_only = res->head_only;
    d->version = res->t->req.version;
    TB__ADD(res->t->counts[TB__N_DEFERRED], 1);
    res->c->defer = d;
    res->deferred = 1; /* counted in the worker's defers by its loop, after the handler */
    return d;
}

static void tb__mailbox_free(tb__mailbox *box) {
    pthread_mutex_destroy(&box->lock);
    TURBO_FREE(box);
}

TURBO_API void turbo_defer_watch(turbo_defer *d, void (*ended)(void *arg, int gone), void *arg) {
    d->ended = ended;
    d->ended_arg = arg;
}

/* On the worker's thread, as its connection goes: a watcher is told,
   unless the answer was resumed first (it hears of the end then). fn is
   set under the mailbox lock, so that the two never both happen. */
static void tb__defer_lost(turbo_defer *d) {
    int tell;
    d->conn = NULL;
    if (!d->ended) return;
    pthread_mutex_lock(&d->box->lock);
    tell = !d->fn;
    pthread_mutex_unlock(&d->box->lock);
    if (tell) {
        d->ended(d->ended_arg, 1);
        d->ended = NULL;
    }
}

/* A resumed answer no one will send (the client or the worker is gone):
   its function runs with res NULL, then d is freed. Returns d's next. */
static turbo_defer *tb__defer_dropped(turbo_defer *d) {
    turbo_defer *next = d->next;
    d->fn(NULL, d->arg);
    if (d->ended) d->ended(d->ended_arg, 1);
    turbo_buf_free(&d->log);
    TURBO_FREE(d);
    return next;
}

TURBO_API void turbo_defer_resume(turbo_defer *d, void (*fn)(turbo_res *res, void *arg), void *arg) {
    turbo_resumption one = {d, fn, arg};
    turbo_defer_resume_all(&one, 1);
}

/* Takes the batch's entries for one mailbox at a time (and clears them),
   under its lock. */
TURBO_API void turbo_defer_resume_all(turbo_resumption *batch, size_t n) {
    for (size_t i = 0; i < n; i++) {
        tb__mailbox *box = batch[i].defer ? batch[i].defer->box : NULL;
        turbo_defer *orphans = NULL, *d;
        if (!box) continue;
        pthread_mutex_lock(&box->lock);
        int stopped = box->wake_fd < 0, wake = !stopped && tb__mailbox_empty(box), last = 0;
        turbo_defer **tail = stopped ? &orphans : box->resumed_tail; /* stopped: no one will answer */
        for (size_t k = i; k < n; k++) {
            if (!(d = batch[k].defer) || d->box != box) continue;
            batch[k].defer = NULL;
            d->fn = batch[k].fn;
            d->arg = batch[k].arg;
            d->next = NULL;
            *tail = d;
            tail = &d->next;
            if (stopped) last = --box->orphans == 0;
        }
        if (!stopped) box->resumed_tail = tail;
        if (wake) tb__mailbox_wake(box);
        pthread_mutex_unlock(&box->lock);
        while (orphans) orphans = tb__defer_dropped(orphans);
        if (last) tb__mailbox_free(box);
    }
}

/* Answers one resumed defer (and frees it). May detach t: the resume
   function is a handler too. */
static void tb__answer_resumed(tb__worker *w, tb__thread *t, turbo_defer *d) {
    tb__conn *c = d->conn;
    TB__ADD(t->counts[TB__N_RESUMED], 1);
    if (!c) {
        tb__call_begin(w, t, NULL);
        tb__defer_dropped(d);
        tb__call_end(w, t);
        return;
    }
    t->req.method.len = t->req.path.len = 0;
    t->req.version = d->version;
    tb__res_begin(w, t, c, d->keep_alive && !w->draining, d->head_only);
    if (w->s->observing) tb__observe_resumed(t, d);
    c->defer = NULL;
    c->state = TB__C_IDLE;
    tb__call_begin(w, t, c);
    d->fn(&t->res, d->arg);
    if (!tb__call_end(w, t) && t->res.deferred) w->defers++;
    tb__res_end(w, t, c, &t->req);
    if (d->ended) d->ended(d->ended_arg, 0);
    TURBO_FREE(d);
    tb__conn_resume(w, t, c); /* or, detached, gives c back */
}

/* Takes what the mailbox holds: returned connections first, then the
   resumed answers, oldest first, after those held for lent connections;
   then tries the requests that wait for a thread. The lists wait in the
   worker while they are worked through, so that a thread that detaches on
   the way leaves the rest to the worker's next thread (tb__worker_run),
   which goes on at once. */
static void tb__worker_resumed(tb__worker *w, tb__thread *t) {
    char drain[64];
    turbo_defer *d, **tail;
    tb__conn *c, *back;
    turbo_ws *ws;
    while (read(w->wake[0], drain, sizeof drain) == (ssize_t)sizeof drain) { /* a short one empties it */
    }
    pthread_mutex_lock(&w->box->lock);
    ws = w->box->sockets;
    w->box->sockets = NULL;
    d = w->box->resumed;
    w->box->resumed = NULL;
    w->box->resumed_tail = &w->box->resumed;
    back = w->box->returned;
    w->box->returned = NULL;
    pthread_mutex_unlock(&w->box->lock);
    for (tail = &w->held; *tail; tail = &(*tail)->next) {
    }
    *tail = d;
    while (back) {
        c = back;
        back = c->returned_next;
        c->returned_next = w->returned;
        w->returned = c;
    }
    while (!t->detached && w->returned) { /* once detached, the worker is not this thread's */
        c = w->returned;
        w->returned = c->returned_next;
        tb__conn_returned(w, t, c);
    }
    for (tail = &w->held; !t->detached && *tail;) {
        d = *tail;
        if (d->conn && d->conn->lent) { /* its handler still runs: after it returns */
            tail = &d->next;
            continue;
        }
        *tail = d->next;
        w->defers--;
        tb__answer_resumed(w, t, d);
    }
    tb__ws_flush_all(w, t, ws);
    /* A thread may be spare: the requests that wait for one go, in turn,
       until one still finds none (or this thread is lent with one). */
    while (!t->detached && (c = w->timer_head[TB__T_WAIT]) != NULL) {
        tb__conn_resume(w, t, c);
        if (!t->detached && w->timer_head[TB__T_WAIT] == c) break;
    }
}

/* ---------------------------------------------------------------- worker */

static void tb__peer_keep(tb__peer *p, const struct sockaddr_storage *a) {
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)a;
        memcpy(p->addr, &in->sin_addr, 4);
        p->port = ntohs(in->sin_port);
        p->family = 4;
    } else if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)a;
        memcpy(p->addr, &in6->sin6_addr, 16);
        p->port = ntohs(in6->sin6_port);
        p->family = 6;
    }
}

/* A connection for fd, counted (a refused one apart); NULL (fd closed)
   when there is no memory. */
static tb__conn *tb__conn_new(tb__worker *w, int fd, const struct sockaddr_storage *peer, int refused) {
    tb__conn *c;
    if ((c = w->free_conns) != NULL) w->free_conns = c->next;
    else if (!(c = (tb__conn *)TURBO_MALLOC(sizeof *c))) {
        close(fd);
        return NULL;
    }
    memset(c, 0, sizeof *c);
    c->fd = fd;
    tb__peer_keep(&c->peer, peer);
    c->timer = -1;
    c->refused = refused;
    if (refused) w->refused++;
    else TB__ADD(w->gauges[TB__G_CONNS], 1);
    return c;
}

static void tb__worker_accept(tb__worker *w) {
    uint64_t max = (uint64_t)w->s->cfg.max_connections;
    int i;
    for (i = 0; i < 64; i++) { /* a bounded batch keeps other connections served */
        struct sockaddr_storage peer;
        int fd = tb__accept(w->listen_fd, &peer), one = 1;
        tb__conn *c;
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors: stop accepting for a moment rather
                   than spin on a listener that stays readable. */
                fprintf(stderr, "turbo: accept: %s; pausing accepts for 100 ms\n", strerror(errno));
                tb__loop_set(&w->loop, w->listen_fd, TB__READ, 0, &w->listen_fd);
                w->listening = 0;
                w->accept_resume = w->now + 100;
                w->wake_at = 0;
            }
            return;
        }
        if (w->gauges[TB__G_CONNS] >= max) {
            static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nServer: turbo\r\n"
                                       "Content-Type: text/plain; charset=utf-8\r\n"
                                       "Content-Length: 20\r\nConnection: close\r\n\r\n"
                                       "Service Unavailable\n";
            ssize_t ignored = send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL);
            (void)ignored;
            /* Its request, read and dropped while it lingers, cannot reset
               the connection before the client has read the 503. Such
               connections take no slot; past an eighth more, a flood is
               only closed. */
            if (w->refused >= (int)(max / 8) + 8) close(fd);
            else if ((c = tb__conn_new(w, fd, &peer, 1)) != NULL) tb__conn_linger(w, c);
            continue;
        }
        if ((c = tb__conn_new(w, fd, &peer, 0)) == NULL) continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        tb__conn_await(w, c, TB__READ, TB__T_HEAD);
    }
}

static void tb__worker_expire(tb__worker *w, tb__thread *t) {
    int i;
    for (i = 0; i < TB__T_COUNT; i++)
        while (tb__timer_expires(i) && w->timer_head[i] && w->timer_head[i]->deadline <= w->now)
            tb__conn_timeout(w, t, w->timer_head[i]);
    if (!w->listening && w->accept_resume && w->accept_resume <= w->now && !w->draining) {
        w->accept_resume = 0;
        if (tb__loop_set(&w->loop, w->listen_fd, 0, TB__READ, &w->listen_fd) == 0) w->listening = 1;
    }
}

/* Shutdown: stop accepting, close idle connections (one accepted but still
   silent gets TB__DRAIN_GRACE_MS); the busy ones close after their answer
   (keep-alive is off from now on). */
static void tb__worker_drain(tb__worker *w) {
    tb__conn *c, *next;
    turbo_ws *ws;
    w->draining = 1;
    w->drain_deadline = w->now + w->s->cfg.shutdown_timeout_ms;
    w->wake_at = 0;
    if (!w->drain_at) tb__loop_set(&w->loop, w->stop_fd, TB__READ, 0, &w->stop_fd);
    if (w->listening) tb__loop_set(&w->loop, w->listen_fd, TB__READ, 0, &w->listen_fd);
    w->listening = 0;
    w->accept_resume = 0; /* a paused accept: it does not resume now */
    close(w->listen_fd);
    __atomic_store_n(&w->listen_fd, -1, __ATOMIC_RELAXED); /* a restart reads it from another thread */
    while (w->timer_head[TB__T_IDLE]) tb__conn_free(w, w->timer_head[TB__T_IDLE]);
    for (ws = w->sockets; ws; ws = ws->next_ws) turbo_ws_close(ws, 1001, NULL);
    for (c = w->timer_head[TB__T_HEAD]; c; c = next) {
        next = c->next;
        if (c->state == TB__C_IDLE) tb__timer_set(w, c, TB__T_GRACE);
    }
}

static void tb__worker_close_all(tb__worker *w) {
    int i;
    for (i = 0; i < TB__T_COUNT; i++)
        while (w->timer_head[i]) tb__conn_free(w, w->timer_head[i]);
}

/* Runs worker w on thread t until the worker ends, or until t detaches
   inside a handler (the worker is then another thread's). Events of a
   batch left unhandled are reported again: interest is level-triggered. */
static void tb__worker_run(tb__worker *w, tb__thread *t) {
    tb__pool *p = &w->s->pool;
    t->detached = 0;
    w->now = tb__now_ms();      /* as the worker's last thread may have been, in a handler */
    tb__update_date(t, w->now); /* it may have been parked a long time */
    if (w->busy) {              /* taken from a thread in a handler: the loop lets go of its connection */
        tb__timer_clear(w, w->busy);
        tb__conn_watch(w, w->busy, 0);
        w->busy->lent = 1;
        w->lent++;
        w->busy = NULL;
    }
    if (w->returned || w->held || w->timer_head[TB__T_WAIT])
        tb__worker_resumed(w, t); /* what the last thread left */
    if (t->detached) return;
    for (;;) {
        int n, i, stop = 0, wake = 0, timeout, keep;
        if (w->draining && w->now >= w->drain_deadline && !w->gave_up) {
            if (w->defers)
                fprintf(stderr, "turbo: shutdown: not waiting for %d deferred answers\n", w->defers);
            tb__let_go(t);
            tb__worker_close_all(w);
            w->gave_up = 1;
        }
        if (w->gave_up && !w->lent) break; /* else wait for their handlers; a stuck one ends the process */
        if (w->draining && !w->gauges[TB__G_CONNS] && !w->refused && !w->defers) break;
        if (t->log.len) {
            tb__let_go(t);
            tb__log_flush(t);
        }
        timeout = w->wake_at == INT64_MAX ? -1
                  : w->wake_at <= w->now  ? 0
                                          : (int)TB__MIN(w->wake_at - w->now, 60000);
        /* The lock the last handlers ran holding is kept through the wait,
           if the embedder lets it be, so that a busy loop takes it once;
           for keep_ms after it was taken at most, however busy the loop,
           so that another thread that wants it gets it. */
        if (t->holding) {
            keep = w->s->cfg.keep_ms ? w->s->cfg.keep_ms(w->s->cfg.hook_arg) : 0;
            if (keep > 0) keep -= (int)TB__MIN(w->now - t->held_since, keep);
            if (keep <= 0) tb__release(t);
            else if (timeout < 0 || timeout > keep) timeout = keep;
        }
        n = tb__loop_wait(&w->loop, t->events, timeout);
        if (n == 0) tb__let_go(t); /* nothing came while it was kept */
        w->now = tb__now_ms();
        tb__update_date(t, w->now);
        for (i = 0; i < n && !t->detached; i++) {
            void *ptr = tb__event_ptr(&t->events[i]);
            if ((uintptr_t)ptr - (uintptr_t)w < sizeof *w) { /* one of w's own: one test for a connection's */
                if (ptr == &w->listen_fd) tb__worker_accept(w);
                else if (ptr == &w->stop_fd) stop = 1;
                else wake = 1; /* &w->wake[0], the third and last of w's own */
            } else {
                tb__conn *c = (tb__conn *)ptr;
                int writable = tb__event_writable(&t->events[i]) || (c->mask & TB__WRITE);
                if (t->holding && (writable || c->ws || c->defer)) tb__release(t); /* it may call back, or block */
                if (writable) tb__conn_writable(w, t, c);
                else tb__conn_readable(w, t, c);
            }
        }
        if (t->detached) return;
        /* Both may free connections, so they wait until no event of this
           batch can still point at one. */
        if (wake | stop | (w->drain_at != 0)) { /* one test while none is */
            if (wake) {
                tb__let_go(t);
                tb__worker_resumed(w, t);
                if (t->detached) return;
            }
            if (stop && !w->draining && w->s->cfg.drain_delay_ms > 0 && !w->drain_at) {
                tb__loop_set(&w->loop, w->stop_fd, TB__READ, 0, &w->stop_fd);
                w->drain_at = w->now + w->s->cfg.drain_delay_ms;
                w->wake_at = 0;
            } else if ((stop || (w->drain_at && w->now >= w->drain_at)) && !w->draining) {
                tb__let_go(t);
                tb__worker_drain(w);
            }
        }
        if (w->now >= w->wake_at) { /* else nothing can be due */
            tb__let_go(t);
            tb__worker_expire(w, t);
            w->wake_at = tb__timer_next(w);
        }
    }
    tb__let_go(t);
    tb__worker_close_all(w);
    pthread_mutex_lock(&p->lock);
    p->workers_ended++;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
}

static void tb__worker_free(tb__worker *w) {
    turbo_defer *d, *resumed = w->held;
    tb__conn *c;
    turbo_ws *ws = NULL;
    if (w->box) { /* from now on turbo_defer_resume answers a NULL response itself */
        pthread_mutex_lock(&w->box->lock);
        w->box->wake_fd = -1;
        ws = w->box->sockets; /* of connections gone since */
        w->box->sockets = NULL;
        *w->box->resumed_tail = w->held;
        resumed = w->box->resumed;
        w->box->resumed = NULL;
        for (d = resumed; d; d = d->next) w->defers--;
        w->box->orphans = w->defers;
        pthread_mutex_unlock(&w->box->lock);
        if (!w->defers) tb__mailbox_free(w->box);
        w->box = NULL;
    }
    if (w->loop.fd >= 0) close(w->loop.fd);
    if (w->wake[0] >= 0) close(w->wake[0]);
    if (w->wake[1] >= 0) close(w->wake[1]);
    if (w->listen_fd >= 0) close(w->listen_fd);
    while (resumed) resumed = tb__defer_dropped(resumed); /* resumed after the worker stopped */
    tb__ws_flush_all(w, NULL, ws);
    while ((c = w->free_conns) != NULL) {
        w->free_conns = c->next;
        TURBO_FREE(c);
    }
}

static int tb__pipe(int fds[2]) {
    int i;
    if (pipe(fds) != 0) return -1;
    for (i = 0; i < 2; i++) tb__nonblock_cloexec(fds[i]);
    return 0;
}

static int tb__worker_init(tb__worker *w, turbo_server *s, int listen_fd) {
    const turbo_config *cfg = &s->cfg;
    memset(w, 0, sizeof *w);
    w->s = s;
    w->listen_fd = listen_fd;
    w->gauges = tb__slot(s, s->pool.max_threads + (int)(w - s->workers));
    memset(w->gauges, 0, TB__G_COUNT * sizeof *w->gauges); /* those of a process that died */
    w->stop_fd = s->stop_pipe[0];
    w->wake[0] = w->wake[1] = -1;
    w->loop.fd = -1;
    if (!(w->box = (tb__mailbox *)TURBO_MALLOC(sizeof *w->box))) return -1;
    memset(w->box, 0, sizeof *w->box);
    pthread_mutex_init(&w->box->lock, NULL);
    w->box->resumed_tail = &w->box->resumed;
    w->timeout[TB__T_HEAD] = cfg->header_timeout_ms;
    w->timeout[TB__T_BODY] = cfg->body_timeout_ms;
    w->timeout[TB__T_IDLE] = cfg->keepalive_timeout_ms;
    w->timeout[TB__T_WRITE] = cfg->write_timeout_ms;
    w->timeout[TB__T_LINGER] = TB__MIN(TB__LINGER_MS, cfg->write_timeout_ms);
    w->timeout[TB__T_GRACE] = TB__DRAIN_GRACE_MS;
    w->timeout[TB__T_WS] = cfg->ws_idle_timeout_ms;
    w->timeout[TB__T_WAIT] = cfg->wait_timeout_ms;
    w->limits.max_line = cfg->max_request_line;
    w->limits.max_head = cfg->max_header_bytes;
    w->limits.max_headers = cfg->max_headers;
    w->limits.max_body = cfg->max_body;
    w->now = tb__now_ms();
    if (tb__pipe(w->wake) != 0 || tb__loop_init(&w->loop) != 0 ||
        tb__loop_set(&w->loop, w->wake[0], 0, TB__READ, &w->wake[0]) ||
        tb__loop_set(&w->loop, w->stop_fd, 0, TB__READ, &w->stop_fd) ||
        tb__loop_set(&w->loop, listen_fd, 0, TB__READ, &w->listen_fd))
        return -1;
    w->box->wake_fd = w->wake[1];
    w->listening = 1;
    return 0;
}

/* ---------------------------------------------------------------- threads */
/* A process's threads are alike: each parks in the pool until a worker
   needs one, runs it until the worker ends or a handler detaches the
   thread, and parks again. The pool starts them as needed, up to one per
   worker plus blocking_threads. */

static void tb__thread_free(tb__thread *t) {
    turbo_buf_free(&t->log);
    turbo_buf_free(&t->out);
    turbo_buf_free(&t->scratch);
    TURBO_FREE(t);
}

static void *tb__thread_main(void *arg) {
    tb__thread *t = (tb__thread *)arg;
    tb__pool *p = &t->s->pool;
    pthread_mutex_lock(&p->lock);
    for (;;) { /* counted idle here, by whoever started it or by itself */
        tb__worker *w;
        while (!p->queue && !p->closing) pthread_cond_wait(&p->cond, &p->lock);
        if (!p->queue) break;
        w = p->queue;
        p->queue = w->queue_next;
        if (!p->queue) p->queue_tail = NULL;
        p->queued--;
        p->idle--;
        pthread_mutex_unlock(&p->lock);
        tb__worker_run(w, t);
        if (t->log.len) tb__log_flush(t);
        pthread_mutex_lock(&p->lock);
        p->idle++;
        if (p->starving) tb__pool_freed(t->s);
        if (p->workers_ended == p->nworkers) pthread_cond_broadcast(&p->changed);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static int tb__pool_reserve(turbo_server *s) {
    tb__pool *p = &s->pool;
    tb__thread *t;
    if (p->idle > p->queued) {
        p->queued++;
        return 0;
    }
    if (p->nthreads >= p->max_threads || p->closing) return -1;
    if (!(t = (tb__thread *)TURBO_MALLOC(sizeof *t))) return -1;
    memset(t, 0, sizeof *t);
    t->s = s;
    t->counts = tb__slot(s, p->nthreads); /* where a replaced process's thread left off */
    t->req.scratch = &t->scratch;
    tb__update_date(t, tb__now_ms());
    if (pthread_create(&t->id, NULL, tb__thread_main, t) != 0) {
        tb__thread_free(t);
        return -1;
    }
    t->next = p->threads;
    p->threads = t;
    p->nthreads++;
    p->idle++;
    p->queued++;
    return 0;
}

static void tb__pool_init(turbo_server *s) {
    tb__pool *p = &s->pool;
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    pthread_cond_init(&p->changed, NULL);
    p->max_threads = s->cfg.threads + s->cfg.blocking_threads;
}

/* Every worker has ended and every thread is parked: stops and joins them all. */
static void tb__pool_close(turbo_server *s, int monitor_started) {
    tb__pool *p = &s->pool;
    tb__thread *t;
    pthread_mutex_lock(&p->lock);
    __atomic_store_n(&p->closing, 1, __ATOMIC_RELEASE); /* the monitor reads it unlocked */
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    if (monitor_started) pthread_join(p->monitor, NULL);
    while ((t = p->threads) != NULL) {
        p->threads = t->next;
        pthread_join(t->id, NULL);
        tb__thread_free(t);
    }
    pthread_cond_destroy(&p->changed);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
}

/* ---------------------------------------------------------------- server */

/* The one piece of global state: how a signal asks for shutdown. A
   second signal exits at once, unless it is the supervisor passing on
   the first one (a terminal's Ctrl-C reaches every process of a group).
   The handler may run on any thread: the fd and the count are read and
   written with atomic builtins (lock-free on an int, so signal-safe). */
static int tb__signal_fd = -1;
static int tb__signals_seen = 0;
static volatile sig_atomic_t tb__supervisor_pid = 0;
static int tb__restart_asked = 0; /* SIGUSR2, see tb__restart; atomic, as tb__reopen_asked */

/* From a signal handler: one byte into the stop pipe ('s' stop, 'c' a child ended). */
static void tb__signal_write(const char *what) {
    int saved = errno;
    int fd = __atomic_load_n(&tb__signal_fd, __ATOMIC_RELAXED);
    ssize_t ignored = fd >= 0 ? write(fd, what, 1) : 0;
    (void)ignored;
    errno = saved;
}

/* The handler of every signal turbo takes: SIGINT and SIGTERM stop, SIGCHLD
   wakes the supervisor, SIGUSR1 and SIGUSR2 ask for what their flags say. */
static void tb__on_signal(int sig, siginfo_t *info, void *context) {
    (void)context;
    if (sig == SIGCHLD) tb__signal_write("c");
    if (sig == SIGUSR1) __atomic_store_n(&tb__reopen_asked, 1, __ATOMIC_RELAXED);
    if (sig == SIGUSR2) __atomic_store_n(&tb__restart_asked, 1, __ATOMIC_RELAXED);
    if (sig != SIGINT && sig != SIGTERM) return;
    if (tb__supervisor_pid && info && info->si_pid == tb__supervisor_pid &&
        __atomic_load_n(&tb__signals_seen, __ATOMIC_RELAXED))
        return;
    if (__atomic_fetch_add(&tb__signals_seen, 1, __ATOMIC_RELAXED)) _exit(1);
    tb__signal_write("s");
}

/* Restart (SIGUSR2): a new generation of this program takes the listening
   sockets over, then this one drains as at shutdown. Nothing closes the
   sockets meanwhile, so no connection is refused. */
#ifdef __linux__
/* Starts this program again (the file now at its path: an upgrade is a
   restart) with this process's arguments and environment, the listening
   sockets as fds 3.. (socket activation: it listens on them) and
   TURBO_READY_FD, on which it says when it serves. 0 once it does; else -1
   (logged), and this generation serves on. */
static int tb__restart(turbo_server *s) {
    char cmdline[8192], exe[4096], pid_var[32] = "LISTEN_PID=", fds_var[32], ready_var[32], *argv[128],
                                   **envp;
    int n = s->nlisten, ready[2], fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC), i, k = 0, argc = 0;
    int base = 3 + n + 1, *high, got = 0, nenv = 0;
    ssize_t len = fd >= 0 ? read(fd, cmdline, sizeof cmdline) : -1,
            exe_len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    int64_t deadline = tb__now_ms() + 30000;
    pid_t pid;
    if (fd >= 0) close(fd);
    if (exe_len > 0) exe[exe_len] = '\0';
    if (exe_len > 10 && strcmp(exe + exe_len - 10, " (deleted)") == 0)
        exe[exe_len - 10] = '\0'; /* replaced */
    while (environ[nenv]) nenv++;
    envp = (char **)TURBO_MALLOC((size_t)(nenv + 4) * sizeof *envp);
    high = (int *)TURBO_MALLOC((size_t)(n + 1) * sizeof *high);
    if (len <= 0 || len == (ssize_t)sizeof cmdline || exe_len <= 0 || !envp || !high ||
        tb__pipe(ready) != 0) {
        fprintf(stderr, "turbo: restart: cannot start a new generation: %s\n",
                len == (ssize_t)sizeof cmdline ? "command line too long" : strerror(errno));
        TURBO_FREE(envp);
        TURBO_FREE(high);
        return -1;
    }
    for (i = 0; i < len && argc < 127; i += (int)strlen(cmdline + i) + 1) argv[argc++] = cmdline + i;
    argv[argc] = NULL;
    for (i = 0; environ[i]; i++)
        if (strncmp(environ[i], "LISTEN_", 7) != 0 && strncmp(environ[i], "TURBO_READY_FD=", 15) != 0)
            envp[k++] = environ[i];
    snprintf(fds_var, sizeof fds_var, "LISTEN_FDS=%d", n);
    snprintf(ready_var, sizeof ready_var, "TURBO_READY_FD=%d", 3 + n);
    envp[k++] = fds_var;
    envp[k++] = ready_var;
    envp[k++] = pid_var;
    envp[k] = NULL;
    for (i = 0; i < n; i++) /* a worker process's loops own theirs; a supervisor keeps them all */
        high[i] = s->workers ? __atomic_load_n(&s->workers[i].listen_fd, __ATOMIC_RELAXED) : s->listen_fds[i];
    high[n] = ready[1];
    for (i = 0; i <= n; i++)
        if (high[i] >= base) base = high[i] + 1;
    if ((pid = fork()) == 0) { /* above every fd it needs, then down to 3.. */
        sigset_t none;
        sigemptyset(&none);
        pthread_sigmask(SIG_SETMASK, &none, NULL);
        *tb__json_u64(pid_var + 11, (uint64_t)getpid()) = '\0'; /* until exec, no printf: no lock */
        for (i = 0; i <= n; i++) high[i] = fcntl(high[i], F_DUPFD_CLOEXEC, base);
        for (i = 0; i <= n; i++) dup2(high[i], 3 + i);
        execve(exe, argv, envp);
        _exit(127);
    }
    close(ready[1]);
    TURBO_FREE(envp);
    TURBO_FREE(high);
    while (pid > 0 && tb__now_ms() < deadline) { /* EOF: it died first */
        int rc = tb__poll(ready[0], POLLIN, (int)(deadline - tb__now_ms()));
        if (rc > 0) got = read(ready[0], cmdline, 1) == 1;
        if (rc > 0 || (rc < 0 && errno != EINTR)) break;
    }
    close(ready[0]);
    if (got) {
        fprintf(stderr, "turbo: restart: pid %ld serves; pid %ld drains\n", (long)pid, (long)getpid());
        return 0;
    }
    fprintf(stderr, "turbo: restart: the new generation did not start; serving on\n");
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    return -1;
}
#else
static int tb__restart(turbo_server *s) {
    (void)s;
    fprintf(stderr, "turbo: restart: supported on Linux only; serving on\n");
    return -1;
}
#endif

/* A restart's new generation takes the fd on which the old one waits
   (tb__restart), out of reach of the programs its app may start. */
static void tb__take_ready_fd(turbo_server *s) {
    const char *fd = getenv("TURBO_READY_FD");
    if (!fd) return;
    s->ready_fd = atoi(fd);
    unsetenv("TURBO_READY_FD");
    if (fcntl(s->ready_fd, F_SETFD, FD_CLOEXEC) != 0) s->ready_fd = -1;
}

/* Says that this process serves, its app started: a worker process to its
   supervisor (which says it once all of them do), any other to a
   restart's old generation, which may then drain. */
static void tb__say_ready(turbo_server *s) {
    int *fd = s->started_fd >= 0 ? &s->started_fd : &s->ready_fd;
    ssize_t ignored;
    if (*fd < 0) return;
    ignored = write(*fd, "r", 1);
    (void)ignored;
    close(*fd);
    *fd = -1;
}

/* The CPUs this process may run on (taskset, a container's cpuset), else
   the online ones (more than cpu_set_t holds, or no sched_getaffinity). */
static int tb__cpus(void) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
#ifdef __linux__
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
#endif
    return online > 0 ? (int)online : 1;
}

static void tb__config_defaults(turbo_config *c) {
    if (!c->host) c->host = "0.0.0.0";
    if (!c->port) c->port = 8080;
    if (c->threads <= 0) c->threads = tb__cpus();
    if (c->processes < 0) c->processes = 0;
    if (c->blocking_threads <= 0) c->blocking_threads = 64;
    if (c->handoff_ms <= 0) c->handoff_ms = 1;
    if (c->wait_timeout_ms <= 0) c->wait_timeout_ms = 30000;
    if (c->backlog <= 0) c->backlog = 1024;
    if (!c->max_request_line) c->max_request_line = 8192;
    if (!c->max_header_bytes) c->max_header_bytes = 32768;
    if (c->max_headers <= 0 || c->max_headers > TURBO_MAX_HEADERS) c->max_headers = TURBO_MAX_HEADERS;
    if (!c->max_body) c->max_body = 1 << 20;
    if (c->header_timeout_ms <= 0) c->header_timeout_ms = 10000;
    if (c->body_timeout_ms <= 0) c->body_timeout_ms = 30000;
    if (c->keepalive_timeout_ms <= 0) c->keepalive_timeout_ms = 15000;
    if (c->write_timeout_ms <= 0) c->write_timeout_ms = 30000;
    if (c->max_requests <= 0) c->max_requests = 10000;
    if (c->max_connections <= 0) c->max_connections = 10000;
    if (c->shutdown_timeout_ms <= 0) c->shutdown_timeout_ms = 10000;
    if (!c->ws_max_message) c->ws_max_message = 1 << 20;
    if (c->ws_idle_timeout_ms <= 0) c->ws_idle_timeout_ms = 60000;
}

TURBO_API turbo_server *turbo_new(const turbo_config *cfg) {
    turbo_server *s = (turbo_server *)TURBO_MALLOC(sizeof *s);
    if (!s) return NULL;
    memset(s, 0, sizeof *s);
    if (cfg) s->cfg = *cfg;
    tb__config_defaults(&s->cfg);
    s->health_len = s->cfg.health_path ? strlen(s->cfg.health_path) : 0;
    s->metrics_len = s->cfg.metrics_path ? strlen(s->cfg.metrics_path) : 0;
    s->observing = s->metrics_len || s->cfg.access_log;
    s->log_fd = 2;
    s->stop_pipe[0] = s->stop_pipe[1] = -1;
    s->ready_fd = s->started_fd = -1;
    if (!(s->root = tb__node_new("", 0))) {
        TURBO_FREE(s);
        return NULL;
    }
    return s;
}

/* Reads a non-negative integer variable into *out; -1 if malformed. */
static int tb__env_num(const char *name, unsigned long long max, unsigned long long *out) {
    const char *v = getenv(name);
    char *end;
    if (!v || !*v) return 0;
    errno = 0;
    *out = strtoull(v, &end, 10);
    if (*end || errno || *v == '-' || *out > max) {
        fprintf(stderr, "turbo: %s=\"%s\" is not an integer from 0 to %llu\n", name, v, max);
        return -1;
    }
    return 1;
}

static int tb__env_int(const char *name, int *out) {
    unsigned long long v;
    int rc = tb__env_num(name, 0x7fffffff, &v);
    if (rc > 0) *out = (int)v;
    return rc;
}

static int tb__env_size(const char *name, size_t *out) {
    unsigned long long v;
    int rc = tb__env_num(name, (size_t)-1 / 2, &v);
    if (rc > 0) *out = (size_t)v;
    return rc;
}

TURBO_API int turbo_config_env(turbo_config *c) {
    const char *host = getenv("TURBO_HOST"), *health = getenv("TURBO_HEALTH_PATH");
    const char *metrics = getenv("TURBO_METRICS_PATH"), *log = getenv("TURBO_ACCESS_LOG");
    const char *log_path = getenv("TURBO_ACCESS_LOG_PATH");
    unsigned long long port = 0, turbo_port = 0;
    int from_port = tb__env_num("PORT", 65535, &port),
        from_turbo = tb__env_num("TURBO_PORT", 65535, &turbo_port);
    int bad = from_port < 0 || from_turbo < 0;
    if (from_port <= 0) port = turbo_port; /* PORT, as hosting platforms set it, wins */
    if (from_port > 0 || from_turbo > 0) c->port = port == 0 ? -1 : (int)port; /* 0: any free port */
    if (host && *host) c->host = host;
    bad |= tb__env_int("TURBO_THREADS", &c->threads) < 0;
    bad |= tb__env_int("TURBO_PROCESSES", &c->processes) < 0;
    bad |= tb__env_int("TURBO_BLOCKING_THREADS", &c->blocking_threads) < 0;
    bad |= tb__env_int("TURBO_HANDOFF_MS", &c->handoff_ms) < 0;
    bad |= tb__env_int("TURBO_WAIT_TIMEOUT_MS", &c->wait_timeout_ms) < 0;
    bad |= tb__env_size("TURBO_MAX_REQUEST_LINE", &c->max_request_line) < 0;
    bad |= tb__env_size("TURBO_MAX_HEADER_BYTES", &c->max_header_bytes) < 0;
    bad |= tb__env_int("TURBO_MAX_HEADERS", &c->max_headers) < 0;
    bad |= tb__env_size("TURBO_MAX_BODY", &c->max_body) < 0;
    bad |= tb__env_int("TURBO_HEADER_TIMEOUT_MS", &c->header_timeout_ms) < 0;
    bad |= tb__env_int("TURBO_BODY_TIMEOUT_MS", &c->body_timeout_ms) < 0;
    bad |= tb__env_int("TURBO_KEEPALIVE_TIMEOUT_MS", &c->keepalive_timeout_ms) < 0;
    bad |= tb__env_int("TURBO_WRITE_TIMEOUT_MS", &c->write_timeout_ms) < 0;
    bad |= tb__env_int("TURBO_MAX_REQUESTS", &c->max_requests) < 0;
    bad |= tb__env_int("TURBO_MAX_CONNECTIONS", &c->max_connections) < 0;
    bad |= tb__env_int("TURBO_SHUTDOWN_TIMEOUT_MS", &c->shutdown_timeout_ms) < 0;
    bad |= tb__env_size("TURBO_WS_MAX_MESSAGE", &c->ws_max_message) < 0;
    bad |= tb__env_int("TURBO_WS_IDLE_TIMEOUT_MS", &c->ws_idle_timeout_ms) < 0;
    bad |= tb__env_int("TURBO_DRAIN_DELAY_MS", &c->drain_delay_ms) < 0;
    if (health && *health) c->health_path = health;
    if (metrics && *metrics) c->metrics_path = metrics;
    if (log && (!strcmp(log, "common") || !strcmp(log, "json")))
        c->access_log = log[0] == 'j' ? TURBO_LOG_JSON : TURBO_LOG_COMMON;
    else bad |= tb__env_int("TURBO_ACCESS_LOG", &c->access_log) < 0;
    if (log_path && *log_path) c->access_log_path = log_path;
    bad |= tb__env_int("TURBO_JSON_ERRORS", &c->json_errors) < 0;
    return bad ? -1 : 0;
}

TURBO_API int turbo_route(turbo_server *s, const char *method, const char *pattern, turbo_handler handler,
                          void *user) {
    return turbo_route_ex(s, method, pattern, handler, user, 0);
}

TURBO_API int turbo_route_ex(turbo_server *s, const char *method, const char *pattern, turbo_handler handler,
                             void *user, int flags) {
    char(*m)[TB__METHOD_MAX];
    int i;
    if (s->running)
        return tb__errorf(s->error, sizeof s->error, "route %s \"%s\" added while the server runs", method,
                          pattern);
    if ((flags & TURBO_LOCKED) && !(s->cfg.acquire && s->cfg.release))
        return tb__errorf(s->error, sizeof s->error,
                          "route %s \"%s\": TURBO_LOCKED needs acquire and release", method, pattern);
    if (tb__router_add(s->root, method, pattern, handler, user, flags, s->error, sizeof s->error) != 0)
        return -1;
    for (i = 0; i < s->nmethods; i++)
        if (!strcmp(s->methods[i], method)) return 0;
    m = (char(*)[TB__METHOD_MAX])TURBO_REALLOC(s->methods, (size_t)(s->nmethods + 1) * sizeof *m);
    if (!m) return tb__errorf(s->error, sizeof s->error, "out of memory");
    s->methods = m;
    strcpy(s->methods[s->nmethods++], method);
    return 0;
}

/* ---- static files */

typedef struct tb__static {
    char root[PATH_MAX]; /* resolved: no symlink, no "..", no trailing "/" */
    size_t root_len;
    char prefix[1024]; /* where it is mounted, without a trailing "/" */
    size_t prefix_len;
    int dir; /* root, opened once */
    turbo_static_options opts;
    struct tb__static *next; /* the server's, freed with it */
} tb__static;

/* Is the decoded path (after the prefix) one to look up: no NUL, no "." or
   ".." segment, and no name starting with "." unless dotfiles? */
static int tb__static_path_ok(const char *p, size_t n, int dotfiles) {
    size_t i = 0;
    if (memchr(p, '\0', n)) return 0;
    while (i < n) {
        size_t start = i, len;
        while (i < n && p[i] != '/') i++;
        len = i - start;
        if (len && p[start] == '.' && (!dotfiles || len == 1 || (len == 2 && p[start + 1] == '.'))) return 0;
        i++;
    }
    return 1;
}

/* Opens rel, a checked path under root ("" for root itself), and stats it.
   On Linux with one openat2 beneath root's fd; what that refuses (an
   absolute symlink, even one to inside root), or a kernel without it, goes
   the portable way: the path realpath resolves must be under root. */
static int tb__static_open(const tb__static *st, const char *rel, struct stat *sb) {
    char full[PATH_MAX + 16], real[PATH_MAX];
    int fd = -1;
#ifdef SYS_openat2
    struct open_how how = {O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    fd = (int)syscall(SYS_openat2, st->dir, *rel ? rel : ".", &how, sizeof how);
    if (fd < 0 && errno != EXDEV && errno != ENOSYS && errno != EPERM) return -1;
#endif
    if (fd < 0 && snprintf(full, sizeof full, "%s/%s", st->root, rel) < (int)sizeof full &&
        realpath(full, real) && strncmp(real, st->root, st->root_len) == 0 &&
        (real[st->root_len] == '/' || real[st->root_len] == '\0'))
        fd = open(real, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO would block: it is no file */
    if (fd >= 0 && fstat(fd, sb) != 0) sb->st_mode = 0; /* no file: 404 */
    return fd;
}

/* A folder asked for without its final "/": its index's relative links
   would resolve against the parent, so the client is sent to the folder
   (301, as nginx sends), with the query. Its path begins with one "/":
   "//docs/" would send a browser to the host "docs". */
static void tb__static_to_folder(const turbo_req *req, turbo_res *res) {
    const char *path = req->path.ptr;
    size_t n = req->path.len, q = req->query.len ? req->query.len + 1 : 0; /* "?" and the query */
    char *to;
    for (; n > 1 && path[1] == '/'; n--) path++;
    if (!(to = (char *)TURBO_MALLOC(n + 1 + q))) {
        tb__res_fail(res, 500);
        return;
    }
    memcpy(to, path, n);
    to[n] = '/';
    if (q) memcpy(to + n + 1, req->query.ptr - 1, q);
    turbo_res_status(res, 301);
    turbo_res_headern(res, "Location", 8, to, n + 1 + q);
    TURBO_FREE(to);
}

static void tb__static_handler(turbo_req *req, turbo_res *res, void *user) {
    tb__static *st = (tb__static *)user;
    turbo_str raw = turbo_req_param(req, "tb_file");
    char rel[PATH_MAX + 16]; /* and room for "/index.html" */
    long n = raw.len < PATH_MAX ? turbo_url_decode(rel, raw.ptr ? raw.ptr : "", raw.len, 0) : -1;
    struct stat sb;
    int fd = -1;
    if (n >= 0 && tb__static_path_ok(rel, (size_t)n, st->opts.dotfiles)) {
        rel[n] = '\0';
        fd = tb__static_open(st, rel, &sb);
    }
    if (fd >= 0 && S_ISDIR(sb.st_mode)) { /* its index.html, if asked for */
        close(fd);
        if (st->opts.index && req->path.ptr[req->path.len - 1] != '/') {
            tb__static_to_folder(req, res);
            return;
        }
        strcpy(rel + n, n && rel[n - 1] != '/' ? "/index.html" : "index.html");
        fd = st->opts.index ? tb__static_open(st, rel, &sb) : -1;
    }
    if (st->opts.cache_control) turbo_res_header(res, "Cache-Control", st->opts.cache_control);
    tb__res_fd(res, req, fd, &sb, rel);
}

TURBO_API int turbo_static(turbo_server *s, const char *prefix, const char *root,
                           const turbo_static_options *opts) {
    tb__static *st = (tb__static *)TURBO_MALLOC(sizeof *st);
    char pattern[1024];
    size_t n = strlen(prefix);
    if (!st) return tb__errorf(s->error, sizeof s->error, "out of memory");
    memset(st, 0, sizeof *st);
    if (opts) st->opts = *opts;
    st->dir = realpath(root, st->root) ? open(st->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (st->dir < 0) {
        TURBO_FREE(st);
        return tb__errorf(s->error, sizeof s->error, "static files: \"%s\" is no folder", root);
    }
    st->root_len = strlen(st->root);
    if (st->root_len == 1) st->root_len = 0; /* "/": every path is under it */
    if (n && prefix[n - 1] == '/') n--;
    if ((size_t)snprintf(pattern, sizeof pattern, "%.*s/{tb_file...}", (int)n, prefix) >= sizeof pattern ||
        turbo_route(s, "GET", pattern, tb__static_handler, st) != 0) {
        close(st->dir);
        TURBO_FREE(st);
        return -1;
    }
    memcpy(st->prefix, prefix, n);
    st->prefix_len = n;
    st->next = s->statics;
    s->statics = st;
    return 0;
}

/* "/static", the folder of turbo_static("/static") asked for without its
   "/", which its route does not take: sent to "/static/" when it answers
   with its index, as its other folders are. Found only on the way to a 404
   (an app's own route for "/static" comes first). 1 when so answered. */
static int tb__static_bare(const turbo_server *s, const turbo_req *r, turbo_res *res) {
    const tb__static *st;
    if (!tb__is_method(r->method, "GET") && !tb__is_method(r->method, "HEAD")) return 0;
    for (st = s->statics; st; st = st->next)
        if (st->opts.index && st->prefix_len && r->path.len == st->prefix_len &&
            memcmp(r->path.ptr, st->prefix, st->prefix_len) == 0) {
            tb__static_to_folder(r, res);
            return 1;
        }
    return 0;
}

TURBO_API int turbo_get(turbo_server *s, const char *p, turbo_handler h, void *u) {
    return turbo_route(s, "GET", p, h, u);
}
TURBO_API int turbo_post(turbo_server *s, const char *p, turbo_handler h, void *u) {
    return turbo_route(s, "POST", p, h, u);
}
TURBO_API int turbo_put(turbo_server *s, const char *p, turbo_handler h, void *u) {
    return turbo_route(s, "PUT", p, h, u);
}
TURBO_API int turbo_delete(turbo_server *s, const char *p, turbo_handler h, void *u) {
    return turbo_route(s, "DELETE", p, h, u);
}

TURBO_API const char *turbo_error(const turbo_server *s) { return s->error; }
TURBO_API int turbo_port(const turbo_server *s) { return s->port; }

static int tb__bind_one(turbo_server *s, const struct addrinfo *ai, int port) {
    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol), one = 1, zero = 0;
    struct sockaddr_storage addr;
    if (fd < 0) return -1;
    tb__nonblock_cloexec(fd);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
#ifdef TB__REUSEPORT
    setsockopt(fd, SOL_SOCKET, TB__REUSEPORT, &one, sizeof one);
#endif
    if (ai->ai_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
    if (ai->ai_family == AF_INET6) ((struct sockaddr_in6 *)&addr)->sin6_port = htons((uint16_t)port);
    else ((struct sockaddr_in *)&addr)->sin_port = htons((uint16_t)port);
    if (bind(fd, (struct sockaddr *)&addr, ai->ai_addrlen) != 0 || listen(fd, s->cfg.backlog) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void tb__close_listeners(turbo_server *s) {
    int i;
    for (i = 0; i < s->nlisten; i++)
        if (s->listen_fds[i] >= 0) close(s->listen_fds[i]);
    TURBO_FREE(s->listen_fds);
    s->listen_fds = NULL;
    s->nlisten = 0;
}

/* systemd's socket activation: LISTEN_FDS sockets passed from fd 3 on, if
   LISTEN_PID names this process. The variables are unset (not for children). */
static int tb__passed_listeners(void) {
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    long n = pid && fds && strtol(pid, NULL, 10) == (long)getpid() ? strtol(fds, NULL, 10) : 0;
    if (n <= 0) return 0;
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return n > 64 ? 64 : (int)n;
}

/* The listening socket of event loop i: one passed in (shared when there
   are fewer than loops), else its own (SO_REUSEPORT), else a dup of the first. */
static int tb__listener(turbo_server *s, const struct addrinfo *ai, int i, int passed) {
    if (i < passed) {
        tb__nonblock_cloexec(3 + i);
        return 3 + i;
    }
    if (passed) return fcntl(s->listen_fds[i % passed], F_DUPFD_CLOEXEC, 0);
#ifdef TB__REUSEPORT
    return tb__bind_one(s, ai, s->port);
#else
    return i ? fcntl(s->listen_fds[0], F_DUPFD_CLOEXEC, 0) : tb__bind_one(s, ai, s->port);
#endif
}

TURBO_API int turbo_listen(turbo_server *s) {
    struct addrinfo hints, *ai = NULL;
    int i, n = s->cfg.threads * (s->cfg.processes > 0 ? s->cfg.processes : 1), rc;
    int passed;
    if (s->nlisten) return 0;
    passed = tb__passed_listeners();
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    if ((rc = getaddrinfo(s->cfg.host, NULL, &hints, &ai)) != 0)
        return tb__errorf(s->error, sizeof s->error, "cannot resolve host \"%s\": %s", s->cfg.host,
                          gai_strerror(rc));
    if (!(s->listen_fds = (int *)TURBO_MALLOC((size_t)n * sizeof(int)))) {
        freeaddrinfo(ai);
        return tb__errorf(s->error, sizeof s->error, "out of memory");
    }
    s->port = s->cfg.port < 0 ? 0 : s->cfg.port;
    for (i = 0; i < n; i++) {
        int fd = tb__listener(s, ai, i, passed);
        if (fd < 0) break;
        if (i == 0 && (s->port == 0 || passed)) { /* the kernel chose, or systemd: the others join it */
            struct sockaddr_storage a;
            socklen_t len = sizeof a;
            getsockname(fd, (struct sockaddr *)&a, &len);
            s->port = ntohs(a.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&a)->sin6_port
                                                    : ((struct sockaddr_in *)&a)->sin_port);
        }
        s->listen_fds[i] = fd;
    }
    s->nlisten = i;
    rc = i == n ? 0
                : tb__errorf(s->error, sizeof s->error, "cannot listen on %s port %d: %s", s->cfg.host,
                             s->port, strerror(errno));
    freeaddrinfo(ai);
    if (rc) tb__close_listeners(s);
    return rc;
}

/* Waits until the workers have ended and every thread is parked; ends
   the process if a handler still runs well past the shutdown grace period. */
static void tb__await_workers(turbo_server *s) {
    tb__pool *p = &s->pool;
    int64_t stop_at = 0, grace = s->cfg.drain_delay_ms + s->cfg.shutdown_timeout_ms + TB__STOP_GRACE_MS;
    pthread_mutex_lock(&p->lock);
    while (p->workers_ended < p->nworkers || p->idle < p->nthreads) {
        struct timespec until;
        /* The stop pipe's byte stays unread, for every worker to see. */
        if (!stop_at && tb__poll(s->stop_pipe[0], POLLIN, 0) > 0) stop_at = tb__now_ms();
        tb__log_reopen(s);
        if (!stop_at && __atomic_exchange_n(&tb__restart_asked, 0, __ATOMIC_RELAXED)) {
            pthread_mutex_unlock(&p->lock); /* the pool goes on without it meanwhile */
            if (tb__restart(s) == 0) turbo_stop(s);
            pthread_mutex_lock(&p->lock);
            continue;
        }
        if (stop_at && tb__now_ms() > stop_at + grace) {
            fprintf(stderr, "turbo: a handler is still running %d ms after shutdown began; exiting\n",
                    (int)grace);
            _exit(1);
        }
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_cond_timedwait(&p->changed, &p->lock, &until);
    }
    pthread_mutex_unlock(&p->lock);
}

static int tb__worker_start(turbo_server *s, tb__worker *w) {
    tb__pool *p = &s->pool;
    int rc;
    pthread_mutex_lock(&p->lock);
    rc = tb__pool_reserve(s);
    if (rc == 0) {
        tb__pool_push(p, w);
        p->nworkers++;
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

/* Runs this process's workers on listen_fds[0..threads), with the monitor
   that hands a stuck worker to another thread. */
static int tb__serve(turbo_server *s, int process_index, int *fds) {
    int i, rc = 0, monitor = 0, stopped;
    sigset_t old_mask;
    s->workers = (tb__worker *)TURBO_MALLOC((size_t)s->cfg.threads * sizeof *s->workers);
    if (!s->workers) return -1;
    s->process_index = process_index;
    tb__pool_init(s);
    if (s->cfg.on_process_start) s->cfg.on_process_start(process_index, s->cfg.hook_arg);
    /* Stopped while it started (its app could not start, or a signal): no
       worker starts, so no connection queued meanwhile is answered. */
    stopped = tb__poll(s->stop_pipe[0], POLLIN, 0) > 0;
    for (i = 0; i < s->cfg.threads && !stopped && !rc; i++) {
        if (tb__worker_init(&s->workers[i], s, fds[i]) != 0 || tb__worker_start(s, &s->workers[i]) != 0) {
            rc = tb__errorf(s->error, sizeof s->error, "cannot start worker %d: %s", i, strerror(errno));
            tb__worker_free(&s->workers[i]);
        }
        fds[i] = -1; /* the worker owns it now */
    }
    if (!rc && !stopped && pthread_create(&s->pool.monitor, NULL, tb__monitor_main, s) != 0)
        rc = tb__errorf(s->error, sizeof s->error, "cannot start the monitor thread: %s", strerror(errno));
    monitor = !rc && !stopped;
    if (rc) turbo_stop(s);
    if (monitor) tb__say_ready(s);
    /* Stop signals go to a worker (each waits in its loop), not to this
       thread: a handler deferred inside a wait (as sanitizers defer them)
       would never reach the stop pipe. */
    tb__block_stops(&old_mask);
    tb__await_workers(s);
    tb__pool_close(s, monitor);
    for (i = 0; i < s->pool.nworkers; i++) tb__worker_free(&s->workers[i]);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    TURBO_FREE(s->workers);
    s->workers = NULL;
    if (s->cfg.on_process_stop) s->cfg.on_process_stop(process_index, s->cfg.hook_arg);
    return rc;
}

static pid_t tb__spawn(turbo_server *s, int index) {
    int i, threads = s->cfg.threads;
    pid_t pid;
    sigset_t old_mask;
    if (s->cfg.before_fork) s->cfg.before_fork(s->cfg.hook_arg);
    /* A stop signal waits until the child has a stop pipe of its own: taken
       before, it would go down the supervisor's, and the child never stop. */
    tb__block_stops(&old_mask);
    pid = fork();
    if (pid != 0) {
        pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
        if (s->cfg.after_fork) s->cfg.after_fork(0, s->cfg.hook_arg);
        return pid;
    }
    /* The child: its own stop pipe, default SIGCHLD, its share of sockets,
       and an end when the supervisor ends, however it ends. */
    signal(SIGCHLD, SIG_DFL);
    signal(SIGUSR2, SIG_IGN); /* a restart is the supervisor's */
    __atomic_store_n(&tb__signals_seen, 0, __ATOMIC_RELAXED);
    tb__supervisor_pid = (sig_atomic_t)getppid();
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != tb__supervisor_pid) _exit(1);
#endif
    if (s->cfg.after_fork) s->cfg.after_fork(1, s->cfg.hook_arg);
    close(s->stop_pipe[0]);
    s->started_fd = s->stop_pipe[1];
    if (s->ready_fd >= 0) close(s->ready_fd);
    s->ready_fd = -1;
    if (tb__pipe(s->stop_pipe) != 0) _exit(1);
    __atomic_store_n(&tb__signal_fd, s->stop_pipe[1], __ATOMIC_RELAXED);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    for (i = 0; i < s->nlisten; i++)
        if (i / threads != index) close(s->listen_fds[i]);
    _exit(tb__serve(s, index, s->listen_fds + index * threads) ? 1 : 0);
}

/* The prefork supervisor: starts the processes, replaces any that dies
   (but one whose app could not start: then all stop), and on a stop signal
   passes SIGTERM on and waits for them all. */
static int tb__supervise(turbo_server *s) {
    int n = s->cfg.processes, i, alive = 0, stopping = 0, failed = 0, no_start = 0, started = 0;
    int64_t kill_at = 0; /* a process past its own shutdown deadline is killed */
    struct tb__proc {
        pid_t pid;
        int64_t born;
    } *procs = (struct tb__proc *)TURBO_MALLOC((size_t)n * sizeof *procs);
    if (!procs) return -1;
    for (i = 0; i < n; i++) {
        procs[i].born = tb__now_ms();
        if ((procs[i].pid = tb__spawn(s, i)) > 0) alive++;
    }
    while (alive > 0) {
        char cmd[64];
        ssize_t got;
        pid_t pid;
        int status, k;
        if (tb__poll(s->stop_pipe[0], POLLIN, 1000) < 0 && errno != EINTR) break;
        if (!stopping && __atomic_exchange_n(&tb__restart_asked, 0, __ATOMIC_RELAXED) && tb__restart(s) == 0)
            turbo_stop(s);
        if (__atomic_exchange_n(&tb__reopen_asked, 0, __ATOMIC_RELAXED)) /* each process has its log fd */
            for (i = 0; i < n; i++)
                if (procs[i].pid > 0) kill(procs[i].pid, SIGUSR1);
        while ((got = read(s->stop_pipe[0], cmd, sizeof cmd)) > 0) {
            for (i = 0; i < got; i++) started += cmd[i] == 'r'; /* a worker process serves */
            if (started >= n) tb__say_ready(s);
            if (!stopping && memchr(cmd, 's', (size_t)got)) {
                stopping = 1;
                kill_at =
                    tb__now_ms() + s->cfg.drain_delay_ms + s->cfg.shutdown_timeout_ms + 2 * TB__STOP_GRACE_MS;
                for (i = 0; i < n; i++)
                    if (procs[i].pid > 0) kill(procs[i].pid, SIGTERM);
                tb__close_listeners(s); /* else new connections would queue unanswered */
            }
        }
        if (kill_at && tb__now_ms() >= kill_at) {
            fprintf(stderr, "turbo: killing worker processes that did not stop\n");
            for (i = 0; i < n; i++)
                if (procs[i].pid > 0) kill(procs[i].pid, SIGKILL);
            kill_at = 0;
        }
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (k = 0; k < n && procs[k].pid != pid; k++) {
            }
            if (k == n) continue;
            alive--;
            procs[k].pid = 0;
            if (WIFEXITED(status) && WEXITSTATUS(status) == TURBO_EXIT_NO_START) {
                if (!stopping && !no_start)
                    fprintf(stderr, "turbo: worker process %d (pid %ld) could not start; stopping\n", k,
                            (long)pid);
                no_start = 1;
                turbo_stop(s); /* read at the top of the loop */
                continue;
            }
            if (stopping) { /* replaced processes do not count: only how these stop */
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed = 1;
                continue;
            }
            fprintf(stderr, "turbo: worker process %d (pid %ld) ended (status %d); starting another\n", k,
                    (long)pid, status);
            if (tb__now_ms() - procs[k].born < 1000) usleep(1000 * 1000); /* no fork storm */
            procs[k].born = tb__now_ms();
            if ((procs[k].pid = tb__spawn(s, k)) > 0) alive++;
        }
    }
    TURBO_FREE(procs);
    if (no_start) return TURBO_EXIT_NO_START;
    if (failed) snprintf(s->error, sizeof s->error, "a worker process did not stop cleanly");
    return stopping && !failed ? 0 : -1;
}

TURBO_API int turbo_run(turbo_server *s) {
    static const int handled[4] = {SIGINT, SIGTERM, SIGUSR2, SIGUSR1}; /* unless no_signals */
    struct sigaction sa, old[4], old_chld, old_pipe;                   /* old[i]: handled[i]'s */
    int rc, i, procs = s->cfg.processes > 0 ? s->cfg.processes : 1;
    char host[64];
    if (s->running) return -1;
    if (turbo_listen(s) != 0 || (s->cfg.access_log_path && s->log_fd == 2 && tb__log_open(s) != 0)) {
        fprintf(stderr, "turbo: %s\n", s->error);
        return -1;
    }
    if (!s->counts) { /* kept by turbo_free: a second run counts on */
        s->counts_size = (size_t)procs * (size_t)(2 * s->cfg.threads + s->cfg.blocking_threads) * TB__SLOT *
                         sizeof *s->counts;
        s->counts =
            (uint64_t *)mmap(NULL, s->counts_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (s->counts == MAP_FAILED) {
            s->counts = NULL;
            return tb__errorf(s->error, sizeof s->error, "mmap: %s", strerror(errno));
        }
    }
    if (s->stop_pipe[0] < 0 && tb__pipe(s->stop_pipe) != 0)
        return tb__errorf(s->error, sizeof s->error, "pipe: %s", strerror(errno));
    while (read(s->stop_pipe[0], host, sizeof host) > 0) { /* the stop of a run before */
    }
    s->running = 1;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, &old_pipe);
    __atomic_store_n(&tb__signal_fd, s->stop_pipe[1], __ATOMIC_RELAXED);
    __atomic_store_n(&tb__signals_seen, 0, __ATOMIC_RELAXED);
    sa.sa_sigaction = tb__on_signal;
    sa.sa_flags = SA_SIGINFO;
    for (i = 0; i < 4 && !s->cfg.no_signals; i++) sigaction(handled[i], &sa, &old[i]);
    snprintf(host, sizeof host, strchr(s->cfg.host, ':') ? "[%s]" : "%s", s->cfg.host);
    fprintf(stderr, "turbo: listening on http://%s:%d (%d process%s x %d thread%s)\n", host, s->port, procs,
            procs == 1 ? "" : "es", s->cfg.threads, s->cfg.threads == 1 ? "" : "s");
    tb__take_ready_fd(s);
    if (s->cfg.processes > 0) {
        sigaction(SIGCHLD, &sa, &old_chld);
        rc = tb__supervise(s);
        sigaction(SIGCHLD, &old_chld, NULL);
    } else {
        rc = tb__serve(s, 0, s->listen_fds);
    }
    for (i = 0; i < 4 && !s->cfg.no_signals; i++) sigaction(handled[i], &old[i], NULL);
    sigaction(SIGPIPE, &old_pipe, NULL);
    __atomic_store_n(&tb__signal_fd, -1, __ATOMIC_RELAXED);
    tb__close_listeners(s); /* the stop pipe stays: a signal handled on another thread may write to it yet */
    s->running = 0;
    return rc;
}

TURBO_API void turbo_stop(turbo_server *s) {
    ssize_t ignored;
    if (s->stop_pipe[1] >= 0) ignored = write(s->stop_pipe[1], "s", 1);
    (void)ignored;
}

TURBO_API void turbo_free(turbo_server *s) {
    if (!s) return;
    if (s->counts) munmap(s->counts, s->counts_size);
    if (s->log_fd > 2) close(s->log_fd);
    if (s->stop_pipe[0] >= 0) close(s->stop_pipe[0]);
    if (s->stop_pipe[1] >= 0) close(s->stop_pipe[1]);
    while (s->statics) {
        struct tb__static *next = s->statics->next;
        close(s->statics->dir);
        TURBO_FREE(s->statics);
        s->statics = next;
    }
    tb__close_listeners(s);
    tb__node_free(s->root);
    TURBO_FREE(s->methods);
    TURBO_FREE(s);
}

#endif /* TURBO_IMPL_DONE */
#endif /* TURBO_IMPL */

/*
MIT License

Copyright (c) 2026 the turbo authors

Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies
of the Software, and to permit persons to whom the Software is furnished to do
so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
*/
