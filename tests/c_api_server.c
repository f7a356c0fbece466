/* A server exercising the parts of the C API the demo does not: handlers
   that misbehave, deferred answers from another thread, query decoding,
   header validation, custom methods and large streamed bodies. Driven by
   tests/test_c_api.py. */
#define TURBO_IMPL
#include "../turbo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void answers_nothing(turbo_req *req, turbo_res *res, void *user) { (void)req, (void)res, (void)user; }

static void leaves_json_open(turbo_req *req, turbo_res *res, void *user) {
    turbo_json *j = turbo_res_json(res, 200);
    (void)req, (void)user;
    turbo_json_object_begin(j);
    turbo_json_key(j, "a");
}

static void json_value_for_key(turbo_req *req, turbo_res *res, void *user) {
    turbo_json *j = turbo_res_json(res, 200);
    (void)req, (void)user;
    turbo_json_object_begin(j);
    turbo_json_int(j, 1); /* a value where a key is due */
    turbo_json_object_end(j);
}

static void bad_status(turbo_req *req, turbo_res *res, void *user) {
    (void)req, (void)user;
    turbo_res_text(res, 99, "no");
}

/* Answers with the status in the path (and a body, which some must drop). */
static void any_status(turbo_req *req, turbo_res *res, void *user) {
    turbo_str v = turbo_req_param(req, "code");
    int code = 0;
    size_t i;
    (void)user;
    for (i = 0; i < v.len && i < 4; i++) code = code * 10 + (v.ptr[i] - '0');
    turbo_res_text(res, code, "body");
}

/* Echoes query values as JSON: each of ?a, ?b, ?c, with -1 shown as "malformed". */
static void query(turbo_req *req, turbo_res *res, void *user) {
    static const char *const names[] = {"a", "b", "c"};
    turbo_json *j = turbo_res_json(res, 200);
    int i;
    (void)user;
    turbo_json_object_begin(j);
    for (i = 0; i < 3; i++) {
        turbo_str v;
        int rc = turbo_req_query_get(req, names[i], &v);
        turbo_json_key(j, names[i]);
        if (rc == 1) turbo_json_stringn(j, v.ptr, v.len);
        else if (rc == 0) turbo_json_null(j);
        else turbo_json_string(j, "malformed");
    }
    turbo_json_object_end(j);
}

/* Tries to set a header with CR LF in its value and one turbo owns: both
   must be refused; reports what the calls returned. */
static void header_injection(turbo_req *req, turbo_res *res, void *user) {
    char body[64];
    int injected = turbo_res_header(res, "X-Evil", "a\r\nSet-Cookie: x=1");
    int owned = turbo_res_header(res, "Content-Length", "5");
    int bad_name = turbo_res_header(res, "Bad Name", "v");
    int fine = turbo_res_header(res, "X-Fine", "yes");
    (void)req, (void)user;
    snprintf(body, sizeof body, "%d %d %d %d", injected, owned, bad_name, fine);
    turbo_res_text(res, 200, body);
}

static void purge(turbo_req *req, turbo_res *res, void *user) {
    (void)req, (void)user;
    turbo_res_text(res, 200, "purged");
}

/* A large body written in pieces. */
static void big(turbo_req *req, turbo_res *res, void *user) {
    char chunk[1024];
    int i;
    (void)req, (void)user;
    memset(chunk, 'x', sizeof chunk);
    turbo_res_status(res, 200);
    turbo_res_header(res, "Content-Type", "application/octet-stream");
    for (i = 0; i < 4096; i++) turbo_res_body(res, chunk, sizeof chunk);
}

/* Deferred: a helper thread sleeps, then resumes the answer. */
typedef struct later {
    turbo_defer *defer;
    int ms;
    int again;      /* the resume function defers once more */
    int after_stop; /* resumed once turbo_run has returned: too late, by design */
    char id[32];
} later;

/* /later/after-stop's resume waits for run_over; main then waits for it. */
static pthread_mutex_t stop_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stop_changed = PTHREAD_COND_INITIALIZER;
static int run_over, late_resumes;

static void defer_to_sleeper(turbo_res *res, later *l, void (*ended)(void *, int));

static void answer_later(turbo_res *res, void *arg) {
    later *l = (later *)arg;
    if (res && l->again) {
        l->again = 0;
        defer_to_sleeper(res, l, NULL);
        return;
    }
    if (!res) fprintf(stderr, "c_api_server: no one to answer /later/%s\n", l->id);
    if (res) {
        turbo_json *j = turbo_res_json(res, 200);
        turbo_json_object_begin(j);
        turbo_json_key(j, "deferred");
        turbo_json_string(j, l->id);
        turbo_json_object_end(j);
    }
    free(l);
}

static void *sleeper(void *arg) {
    later *l = (later *)arg;
    struct timespec ts;
    int after_stop = l->after_stop;
    ts.tv_sec = l->ms / 1000;
    ts.tv_nsec = (long)(l->ms % 1000) * 1000000L;
    pthread_mutex_lock(&stop_lock);
    while (after_stop && !run_over) pthread_cond_wait(&stop_changed, &stop_lock);
    pthread_mutex_unlock(&stop_lock);
    if (!after_stop) nanosleep(&ts, NULL);
    turbo_defer_resume(l->defer, answer_later, l);
    if (after_stop) {
        pthread_mutex_lock(&stop_lock);
        late_resumes--;
        pthread_cond_broadcast(&stop_changed);
        pthread_mutex_unlock(&stop_lock);
    }
    return NULL;
}

/* How the deferred answers of /watched ended (turbo_defer_watch). */
static int watched_gone, watched_answered;

static void watched_end(void *arg, int gone) {
    (void)arg;
    __atomic_add_fetch(gone ? &watched_gone : &watched_answered, 1, __ATOMIC_RELAXED);
}

/* Defers res, watched with ended if given; a thread resumes it with l
   after l->ms. Answers 500 (and frees l) if that cannot be done. */
static void defer_to_sleeper(turbo_res *res, later *l, void (*ended)(void *, int)) {
    pthread_t t;
    l->defer = turbo_res_defer(res);
    if (l->defer && ended) turbo_defer_watch(l->defer, ended, NULL);
    if (!l->defer || pthread_create(&t, NULL, sleeper, l) != 0) {
        free(l);
        turbo_res_text(res, 500, "cannot defer");
        return;
    }
    pthread_detach(t);
}

/* /later/{id}: answered after 100 ms; /watched/{ms}: after ms, watched;
   /twice/{id}: resumed after 100 ms, deferred again, answered 100 ms later. */
static void deferred(turbo_req *req, turbo_res *res, void *user) {
    turbo_str id = turbo_req_param(req, "id"), ms = turbo_req_param(req, "ms");
    later *l = (later *)calloc(1, sizeof *l);
    if (!l || id.len >= sizeof l->id) {
        free(l);
        turbo_res_text(res, 500, "no memory");
        return;
    }
    memcpy(l->id, id.ptr, id.len); /* the request is gone once we return */
    l->ms = ms.len ? atoi(ms.ptr) : 100;
    l->again = turbo_req_path(req).ptr[1] == 't';
    if ((l->after_stop = strcmp(l->id, "after-stop") == 0)) {
        pthread_mutex_lock(&stop_lock);
        late_resumes++;
        pthread_mutex_unlock(&stop_lock);
        fprintf(stderr, "c_api_server: /later/after-stop deferred\n");
    }
    defer_to_sleeper(res, l, user ? watched_end : NULL);
}

/* /gathered/{id}: answers wait until four have come, then one thread
   resumes the four together (turbo_defer_resume_all). */
static pthread_mutex_t gathered_lock = PTHREAD_MUTEX_INITIALIZER;
static turbo_resumption gathered[4];
static int ngathered;

static void *resume_gathered(void *arg) {
    turbo_resumption *batch = (turbo_resumption *)arg;
    turbo_defer_resume_all(batch, 4);
    free(batch);
    return NULL;
}

static void gather_with(turbo_req *req, turbo_res *res, void (*fn)(turbo_res *res, void *arg)) {
    turbo_str id = turbo_req_param(req, "id");
    later *l = (later *)calloc(1, sizeof *l);
    turbo_defer *d = l && id.len < sizeof l->id ? turbo_res_defer(res) : NULL;
    turbo_resumption *full = NULL;
    pthread_t t;
    if (!d) {
        free(l);
        turbo_res_text(res, 500, "cannot defer");
        return;
    }
    memcpy(l->id, id.ptr, id.len);
    pthread_mutex_lock(&gathered_lock);
    gathered[ngathered].defer = d;
    gathered[ngathered].fn = fn;
    gathered[ngathered].arg = l;
    if (++ngathered == 4 && (full = (turbo_resumption *)malloc(sizeof gathered)) != NULL) {
        memcpy(full, gathered, sizeof gathered);
        ngathered = 0;
    }
    pthread_mutex_unlock(&gathered_lock);
    if (full && pthread_create(&t, NULL, resume_gathered, full) == 0) pthread_detach(t);
    else if (full) resume_gathered(full);
}

static void gather(turbo_req *req, turbo_res *res, void *user) {
    (void)user;
    gather_with(req, res, answer_later);
}

static void watch_stats(turbo_req *req, turbo_res *res, void *user) {
    turbo_json *j = turbo_res_json(res, 200);
    (void)req, (void)user;
    turbo_json_object_begin(j);
    turbo_json_key(j, "gone");
    turbo_json_int(j, __atomic_load_n(&watched_gone, __ATOMIC_RELAXED));
    turbo_json_key(j, "answered");
    turbo_json_int(j, __atomic_load_n(&watched_answered, __ATOMIC_RELAXED));
    turbo_json_object_end(j);
}

/* POST /copied/{name}: the request is copied (turbo_req_copy) and its
   answer deferred until a request to /copied-release, whose handler
   resumes it: the answer is read from the copy after the worker has read
   another request into the buffers the first one was in. */
static pthread_mutex_t copied_lock = PTHREAD_MUTEX_INITIALIZER;
static turbo_defer *copied_defer;
static turbo_req *copied_req;

static void json_pair(turbo_json *j, const char *key, turbo_str value) {
    turbo_json_key(j, key);
    turbo_json_stringn(j, value.ptr, value.len);
}

static void answer_from_copy(turbo_res *res, void *arg) {
    turbo_req *copy = (turbo_req *)arg;
    turbo_str q = {NULL, 0};
    char host[64];
    if (res) {
        turbo_json *j = turbo_res_json(res, 200);
        turbo_json_object_begin(j);
        json_pair(j, "method", turbo_req_method(copy));
        json_pair(j, "path", turbo_req_path(copy));
        json_pair(j, "name", turbo_req_param(copy, "name"));
        json_pair(j, "header", turbo_req_header(copy, "x-copied"));
        json_pair(j, "body", turbo_req_body(copy));
        turbo_json_key(j, "q");
        if (turbo_req_query_get(copy, "q", &q) == 1) turbo_json_stringn(j, q.ptr, q.len);
        else turbo_json_null(j);
        turbo_json_key(j, "peer");
        turbo_json_bool(j, turbo_req_peer(copy, host, sizeof host) > 0 && strcmp(host, "127.0.0.1") == 0);
        turbo_json_object_end(j);
    }
    turbo_req_free(copy);
}

static void copied(turbo_req *req, turbo_res *res, void *user) {
    turbo_req *copy = turbo_req_copy(req);
    turbo_defer *d = copy ? turbo_res_defer(res) : NULL;
    int held = 0;
    (void)user;
    if (!d) {
        turbo_req_free(copy);
        turbo_res_text(res, 500, "cannot defer");
        return;
    }
    pthread_mutex_lock(&copied_lock);
    if (!copied_defer) {
        copied_defer = d;
        copied_req = copy;
        held = 1;
    }
    pthread_mutex_unlock(&copied_lock);
    if (!held) turbo_defer_resume(d, answer_from_copy, copy); /* one is held at a time */
}

static void copied_release(turbo_req *req, turbo_res *res, void *user) {
    turbo_defer *d;
    turbo_req *copy;
    (void)req, (void)user;
    pthread_mutex_lock(&copied_lock);
    d = copied_defer;
    copy = copied_req;
    copied_defer = NULL;
    copied_req = NULL;
    pthread_mutex_unlock(&copied_lock);
    if (d) turbo_defer_resume(d, answer_from_copy, copy);
    turbo_res_text(res, 200, d ? "released" : "none");
}

/* Defers and does not resume while the server runs: shutdown must not
   wait for it forever. main resumes it once turbo_run has returned. */
static turbo_defer *never_resumed;

static void given_up(turbo_res *res, void *arg) {
    (void)arg;
    fprintf(stderr, "c_api_server: /never resumed after shutdown, %s response\n", res ? "with a" : "no");
}

static void never(turbo_req *req, turbo_res *res, void *user) {
    (void)req, (void)user;
    never_resumed = turbo_res_defer(res);
    if (!never_resumed) turbo_res_text(res, 500, "cannot defer");
    else fprintf(stderr, "c_api_server: /never deferred\n");
}

/* Never returns: shutdown has to end the process around it. */
static void hang(turbo_req *req, turbo_res *res, void *user) {
    struct timespec hour = {3600, 0};
    (void)req, (void)res, (void)user;
    fprintf(stderr, "c_api_server: /hang running\n");
    for (;;) nanosleep(&hour, NULL);
}

static void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = ms % 1000 * 1000000L;
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static long param_ms(turbo_req *req) {
    turbo_str v = turbo_req_param(req, "ms");
    long ms = 0;
    size_t i;
    for (i = 0; i < v.len && i < 6; i++) ms = ms * 10 + (v.ptr[i] - '0');
    return ms;
}

/* Blocks its thread, as a database call would: the other connections of
   its worker must go on being served. */
static void sleeps(turbo_req *req, turbo_res *res, void *user) {
    char text[32];
    long ms = param_ms(req);
    (void)user;
    /* a test waits for it: a signal before the handler runs finds no request in flight */
    fprintf(stderr, "c_api_server: %.*s began\n", (int)req->path.len, req->path.ptr);
    sleep_ms(ms);
    snprintf(text, sizeof text, "slept %ld", ms);
    turbo_res_text(res, 200, text);
}

/* Blocks until the file named by its query exists (30 s at most): a test
   decides when these end. Answers "opened", and the body after it. */
static void gated(turbo_req *req, turbo_res *res, void *user) {
    char path[256];
    int waited = 0;
    (void)user;
    snprintf(path, sizeof path, "%.*s", (int)req->query.len, req->query.ptr);
    while (access(path, F_OK) != 0 && waited++ < 3000) sleep_ms(10);
    turbo_res_status(res, 200);
    turbo_res_body(res, "opened", 6);
    turbo_res_body(res, req->body.ptr, req->body.len);
}

/* Keeps its CPU busy instead. */
static void spins(turbo_req *req, turbo_res *res, void *user) {
    struct timespec start, now;
    long ms = param_ms(req), elapsed = 0;
    volatile unsigned long n = 0;
    (void)user;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (elapsed < ms) {
        n++;
        clock_gettime(CLOCK_MONOTONIC, &now);
        elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
    }
    turbo_res_text(res, 200, "spun");
}

/* Defers, has the answer resumed at once from another thread, and only
   then blocks: the resume arrives while the handler still runs. */
static void defer_then_sleep(turbo_req *req, turbo_res *res, void *user) {
    later *l = (later *)calloc(1, sizeof *l);
    (void)req, (void)user;
    if (!l) {
        turbo_res_text(res, 500, "no memory");
        return;
    }
    memcpy(l->id, "early", 6);
    defer_to_sleeper(res, l, NULL);
    sleep_ms(400);
}

/* /defer-then-file: a file after the defer is refused (-1) without being
   read: the answer is answer_later's. */
static void defer_then_file(turbo_req *req, turbo_res *res, void *user) {
    later *l = (later *)calloc(1, sizeof *l);
    (void)user;
    if (!l) {
        turbo_res_text(res, 500, "no memory");
        return;
    }
    memcpy(l->id, "file", 5);
    defer_to_sleeper(res, l, NULL);
    if (turbo_res_file(res, req, getenv("STATIC_FILE") ? getenv("STATIC_FILE") : "/nonexistent") != -1)
        abort();
}

/* A resume function that blocks: it is a handler too. */
static void answer_slowly(turbo_res *res, void *arg) {
    (void)arg;
    sleep_ms(1500);
    if (res) turbo_res_text(res, 200, "resumed slowly");
}

static void *resume_slowly(void *arg) {
    turbo_defer_resume((turbo_defer *)arg, answer_slowly, NULL);
    return NULL;
}

static void slow_resume(turbo_req *req, turbo_res *res, void *user) {
    turbo_defer *d = turbo_res_defer(res);
    pthread_t t;
    (void)req, (void)user;
    if (!d || pthread_create(&t, NULL, resume_slowly, d) != 0) {
        turbo_res_text(res, 500, "cannot defer");
        return;
    }
    pthread_detach(t);
}

/* A body of n pieces of 64 KiB, each flushed as it is made: the client reads
   it as it comes, and a client that leaves stops the producer. */
static void stream(turbo_req *req, turbo_res *res, void *user) {
    char piece[65536]; /* per call: streams run on several threads at once */
    turbo_str v = turbo_req_param(req, "n");
    int n = 0, i;
    size_t k;
    (void)user;
    for (k = 0; k < v.len && k < 5; k++) n = n * 10 + (v.ptr[k] - '0');
    memset(piece, 's', sizeof piece);
    turbo_res_status(res, 200);
    turbo_res_header(res, "Content-Type", "application/octet-stream");
    for (i = 0; i < n; i++) {
        turbo_res_body(res, piece, sizeof piece);
        if (turbo_res_flush(res) < 0) {
            fprintf(stderr, "c_api_server: /stream: the client left after %d pieces\n", i);
            return;
        }
    }
}

/* /stream-length/{n}/{declared}: n flushed parts of 16 bytes under a
   Content-Length of declared (turbo_res_head_length). */
static void stream_length(turbo_req *req, turbo_res *res, void *user) {
    int n = atoi(turbo_req_param(req, "n").ptr), i;
    (void)user;
    turbo_res_status(res, 200);
    turbo_res_head_length(res, (uint64_t)atoi(turbo_req_param(req, "declared").ptr));
    for (i = 0; i < n; i++) {
        turbo_res_body(res, "0123456789abcdef", 16);
        if (turbo_res_flush(res) < 0) return;
    }
}

/* A stream whose first flush cannot write its head: the output cannot grow
   (no size holds this body; any failed realloc does the same). */
static void stream_oom(turbo_req *req, turbo_res *res, void *user) {
    (void)req, (void)user;
    turbo_res_status(res, 200);
    turbo_res_header(res, "X-Part", "one");
    turbo_res_body(res, "x", (size_t)-1 - 64);
    turbo_res_flush(res);
}

/* A file past 64 KiB (this program) after a flush: its head is out already. */
static void stream_file(turbo_req *req, turbo_res *res, void *user) {
    (void)user;
    turbo_res_body(res, "a", 1);
    turbo_res_flush(res);
    if (turbo_res_file(res, req, "/proc/self/exe") != -1) turbo_res_body(res, "!", 1); /* not refused */
}

/* Three server-sent events and a keep-alive comment, each sent as it is made. */
static void events(turbo_req *req, turbo_res *res, void *user) {
    (void)req, (void)user;
    if (turbo_res_event(res, "bad\nname", "x") != -1)
        fprintf(stderr, "c_api_server: an event name with LF was sent\n");
    if (turbo_res_event(res, "greet", "hello") || turbo_res_event(res, NULL, "two\nlines\r\nthree\rfour") ||
        turbo_res_event(res, "ignored", NULL) || turbo_res_event(res, NULL, ""))
        fprintf(stderr, "c_api_server: /events: the client left\n");
}

/* Every method: answers with the one it got. */
static void any_method(turbo_req *req, turbo_res *res, void *user) {
    turbo_str m = turbo_req_method(req);
    (void)user;
    turbo_res_send(res, 200, "text/plain", m.ptr, m.len);
}

/* The client's address and port, as "host port", then what turbo_req_peer
   returns given room for the address but not its NUL, and for both. */
static void peer(turbo_req *req, turbo_res *res, void *user) {
    char host[64], exact[64], text[160];
    int port = turbo_req_peer(req, host, sizeof host);
    size_t n = port < 0 ? 0 : strlen(host);
    (void)user;
    snprintf(text, sizeof text, "%s %d %d %d", port < 0 ? "?" : host, port, turbo_req_peer(req, exact, n),
             turbo_req_peer(req, exact, n + 1));
    turbo_res_text(res, 200, text);
}

/* The request's Host, as handlers see it. */
static void host(turbo_req *req, turbo_res *res, void *user) {
    turbo_str h = turbo_req_header(req, "host");
    (void)user;
    turbo_res_send(res, 200, "text/plain", h.ptr, h.len);
}

/* The parts of a multipart/form-data body as a JSON list of [name, filename
   or null, content type or null, data]; 400 for a body that is not one. */
static void parts(turbo_req *req, turbo_res *res, void *user) {
    turbo_multipart m;
    turbo_part part;
    turbo_json *j;
    int rc;
    (void)user;
    turbo_str ct = turbo_req_header(req, "content-type"), body = turbo_req_body(req);
    if (turbo_multipart_begin(&m, ct, body) != 0) {
        turbo_res_text(res, 415, "not multipart/form-data");
        return;
    }
    while ((rc = turbo_multipart_next(&m, &part)) == 1) continue;
    if (rc < 0) {
        turbo_res_text(res, 400, "malformed multipart body");
        return;
    }
    turbo_multipart_begin(&m, ct, body);
    j = turbo_res_json(res, 200);
    turbo_json_array_begin(j);
    while ((rc = turbo_multipart_next(&m, &part)) == 1) {
        turbo_json_array_begin(j);
        turbo_json_stringn(j, part.name.ptr, part.name.len);
        if (part.filename.ptr) turbo_json_stringn(j, part.filename.ptr, part.filename.len);
        else turbo_json_null(j);
        if (part.content_type.ptr) turbo_json_stringn(j, part.content_type.ptr, part.content_type.len);
        else turbo_json_null(j);
        turbo_json_stringn(j, part.data.ptr, part.data.len);
        turbo_json_array_end(j);
    }
    turbo_json_array_end(j);
}

/* The file named by $STATIC_FILE, through turbo_res_file. */
static void one_file(turbo_req *req, turbo_res *res, void *user) {
    (void)user;
    turbo_res_file(res, req, getenv("STATIC_FILE") ? getenv("STATIC_FILE") : "/nonexistent");
}

/* The same file with a type of the handler's own, and no req: turbo_res_file
   takes the conditional headers from the request being answered. */
static void typed_file(turbo_req *req, turbo_res *res, void *user) {
    (void)req, (void)user;
    turbo_res_header(res, "Content-Type", "application/x-typed");
    turbo_res_file(res, NULL, getenv("STATIC_FILE") ? getenv("STATIC_FILE") : "/nonexistent");
}

/* /body-file/{name}: status and headers of the handler's, the body a file
   (turbo_res_body_file); any name but "small" is a file that is not there. */
static void body_file(turbo_req *req, turbo_res *res, void *user) {
    turbo_str name = turbo_req_param(req, "name");
    int small = name.len == 5 && memcmp(name.ptr, "small", 5) == 0;
    (void)user;
    turbo_res_status(res, 201);
    turbo_res_header(res, "Content-Type", "application/x-own");
    turbo_res_header(res, "X-Own", "1");
    turbo_res_body_file(res, small && getenv("STATIC_FILE") ? getenv("STATIC_FILE") : "/nonexistent");
}

/* /prefixed-file/{name}: a few bytes of body, then the file of the static
   folder (turbo_res_body_file): one body, under one length. ?status=S
   sets the status first (else turbo's 200). Then what cannot change the
   answer made: more body, a second file (missing: no 404), a defer. */
static void prefixed_file(turbo_req *req, turbo_res *res, void *user) {
    turbo_str name = turbo_req_param(req, "name"), status;
    char path[512];
    (void)user;
    snprintf(path, sizeof path, "%s/%.*s", getenv("STATIC_ROOT") ? getenv("STATIC_ROOT") : "/nonexistent",
             (int)name.len, name.ptr);
    if (turbo_req_query_get(req, "status", &status) == 1 && status.len == 3)
        turbo_res_status(res, (status.ptr[0] - '0') * 100 + (status.ptr[1] - '0') * 10 + (status.ptr[2] - '0'));
    turbo_res_body(res, "PREFIX", 6);
    turbo_res_body_file(res, path);
    turbo_res_body(res, "AFTER", 5);
    if (turbo_res_file(res, req, "/nonexistent") != -1 || turbo_res_defer(res) != NULL) abort();
}

/* The embedder's lock of the TURBO_LOCKED routes (turbo_config.acquire and
   release), error-checking: taken again by the thread that holds it, or let
   go by one that does not, and the server aborts. keep_ms lets a loop keep
   it through a wait of up to 1 s. */
static pthread_mutex_t app_lock;
static unsigned long lock_takes; /* under app_lock */

static void lock_check(int rc, const char *what) {
    if (rc == 0) return;
    fprintf(stderr, "c_api_server: %s: %s\n", what, strerror(rc));
    abort();
}

static int lock_acquire(void *arg) {
    (void)arg;
    lock_check(pthread_mutex_lock(&app_lock), "acquire");
    lock_takes++;
    return 0;
}

static void lock_release(void *arg) {
    (void)arg;
    lock_check(pthread_mutex_unlock(&app_lock), "release");
}

static int lock_keep_ms(void *arg) {
    (void)arg;
    return 1000;
}

/* GET /locked runs holding the lock: how many times it has been taken. */
static void locked(turbo_req *req, turbo_res *res, void *user) {
    char body[32];
    (void)req, (void)user;
    snprintf(body, sizeof body, "%lu", lock_takes);
    turbo_res_text(res, 200, body);
}

static void *lock_wanter(void *arg) {
    (void)arg;
    lock_check(pthread_mutex_lock(&app_lock), "wanter");
    fprintf(stderr, "c_api_server: another thread took the lock\n");
    lock_check(pthread_mutex_unlock(&app_lock), "wanter");
    return NULL;
}

/* A resume function that takes the lock, as the Python binding's do. */
static void answer_locked(turbo_res *res, void *arg) {
    lock_acquire(NULL);
    answer_later(res, arg);
    lock_release(NULL);
}

/* /locked/gathered/{id}: /gathered/{id}'s answers, by answer_locked. */
static void gather_locked(turbo_req *req, turbo_res *res, void *user) {
    (void)user;
    gather_with(req, res, answer_locked);
}

/* GET /locked/contend, holding the lock: starts a thread that wants it. */
static void locked_contend(turbo_req *req, turbo_res *res, void *user) {
    pthread_t id;
    (void)req, (void)user;
    if (pthread_create(&id, NULL, lock_wanter, NULL) != 0) {
        turbo_res_text(res, 500, "no thread");
        return;
    }
    pthread_detach(id);
    turbo_res_text(res, 200, "started");
}

int main(void) {
    turbo_config cfg; /* zeroed, not a designated initializer: this file also compiles as C++17 */
    turbo_server *s;
    int rc;
    pthread_mutexattr_t checked;
    memset(&cfg, 0, sizeof cfg);
    pthread_mutexattr_init(&checked);
    pthread_mutexattr_settype(&checked, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&app_lock, &checked);
    cfg.acquire = lock_acquire;
    cfg.release = lock_release;
    cfg.keep_ms = lock_keep_ms;
    if (turbo_config_env(&cfg) != 0 || !(s = turbo_new(&cfg))) return 1;
    if (turbo_get(s, "/nothing", answers_nothing, NULL) ||
        turbo_get(s, "/json/open", leaves_json_open, NULL) ||
        turbo_get(s, "/json/misuse", json_value_for_key, NULL) ||
        turbo_get(s, "/status/bad", bad_status, NULL) || turbo_get(s, "/status/{code}", any_status, NULL) ||
        turbo_get(s, "/query", query, NULL) || turbo_get(s, "/headers", header_injection, NULL) ||
        turbo_route(s, "PURGE", "/cache", purge, NULL) || turbo_get(s, "/big", big, NULL) ||
        turbo_get(s, "/later/{id}", deferred, NULL) || turbo_get(s, "/twice/{id}", deferred, NULL) ||
        turbo_get(s, "/gathered/{id}", gather, NULL) || turbo_get(s, "/watched/{id}/{ms}", deferred, s) ||
        turbo_get(s, "/watch-stats", watch_stats, NULL) || turbo_get(s, "/never", never, NULL) ||
        turbo_route(s, "POST", "/copied/{name}", copied, NULL) ||
        turbo_get(s, "/copied-release", copied_release, NULL) || turbo_get(s, "/hang", hang, NULL) ||
        turbo_get(s, "/sleep/{ms}", sleeps, NULL) ||
        turbo_route_ex(s, "GET", "/blocking/{ms}", sleeps, NULL, TURBO_BLOCKING) ||
        turbo_route_ex(s, "GET", "/gated", gated, NULL, TURBO_BLOCKING) ||
        turbo_route_ex(s, "POST", "/gated", gated, NULL, TURBO_BLOCKING) ||
        turbo_get(s, "/spin/{ms}", spins, NULL) || turbo_get(s, "/defer-sleep", defer_then_sleep, NULL) ||
        turbo_get(s, "/slow-resume", slow_resume, NULL) ||
        turbo_get(s, "/defer-then-file", defer_then_file, NULL) ||
        turbo_route(s, "*", "/any/{rest...}", any_method, NULL) || turbo_get(s, "/any/get", peer, NULL) ||
        turbo_get(s, "/peer", peer, NULL) || turbo_get(s, "/host", host, NULL) ||
        turbo_get(s, "/stream/{n}", stream, NULL) ||
        turbo_get(s, "/stream-length/{n}/{declared}", stream_length, NULL) ||
        turbo_get(s, "/events", events, NULL) || turbo_get(s, "/stream-oom", stream_oom, NULL) ||
        turbo_get(s, "/stream-file", stream_file, NULL) || turbo_route(s, "POST", "/parts", parts, NULL) ||
        turbo_get(s, "/file", one_file, NULL) || turbo_route(s, "POST", "/file", one_file, NULL) ||
        turbo_route(s, "DELETE", "/file", one_file, NULL) || turbo_get(s, "/typed-file", typed_file, NULL) ||
        turbo_get(s, "/body-file/{name}", body_file, NULL) ||
        turbo_get(s, "/prefixed-file/{name}", prefixed_file, NULL) ||
        turbo_route_ex(s, "GET", "/locked", locked, NULL, TURBO_LOCKED) ||
        turbo_route_ex(s, "GET", "/locked/contend", locked_contend, NULL, TURBO_LOCKED) ||
        turbo_get(s, "/locked/gathered/{id}", gather_locked, NULL)) {
        fprintf(stderr, "c_api_server: %s\n", turbo_error(s));
        return 1;
    }
    if (getenv("STATIC_ROOT")) { /* the folder of tests/test_c_api.py's static file tests */
        turbo_static_options opts;
        memset(&opts, 0, sizeof opts);
        opts.index = 1;
        opts.cache_control = "public, max-age=60";
        if (turbo_static(s, getenv("STATIC_PREFIX") ? getenv("STATIC_PREFIX") : "/static",
                         getenv("STATIC_ROOT"), &opts) != 0) {
            fprintf(stderr, "c_api_server: %s\n", turbo_error(s));
            return 1;
        }
    }
    rc = turbo_run(s);
    if (never_resumed) turbo_defer_resume(never_resumed, given_up, NULL);
    pthread_mutex_lock(&stop_lock);
    run_over = 1;
    pthread_cond_broadcast(&stop_changed);
    while (late_resumes) pthread_cond_wait(&stop_changed, &stop_lock);
    pthread_mutex_unlock(&stop_lock);
    turbo_free(s);
    return rc == 0 ? 0 : 1;
}
