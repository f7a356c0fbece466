/* A WebSocket server for tests/test_websocket.py:
     /echo            every message back, with its type; subprotocol "chat" if offered
     /push?n=N&size=S on open, a thread of its own sends N binary messages of S
                      bytes (message i: i in 4 bytes big-endian, then the byte i & 255),
                      waiting for on_drain whenever turbo_ws_send says 1, then closes 1000
     /slow?ms=M&before=B
                      echo, each message once its callback has blocked M milliseconds,
                      the upgrade once its handler has blocked B milliseconds
     /close/{code}    the first message is answered with turbo_ws_close(code, "bye")
     /deferred?ms=MS  echo, its 101 sent from a resume function on another thread,
                      after MS milliseconds (0 if not given)
     /paused?id=ID    echo, once GET /resume?id=ID has let turbo read its frames
                      (turbo_ws_pause from on_open, then from that handler)
     /plain           plain HTTP
     /counts?id=ID    JSON of what the WebSockets opened with ?id=ID went through
                      (without id: the totals)
   Configured by the environment (turbo_config_env). */
#define TURBO_IMPL
#include "../turbo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { ECHO, SLOW, PUSH, CLOSE, PAUSED };

/* What happened to the WebSockets of one ?id=, for /counts. */
typedef struct record {
    char id[48];
    int opens, closes;
    int codes[8];     /* the first on_close codes */
    long sent;        /* messages /push had turbo take */
    int waits;        /* turbo_ws_send said 1 */
    int waiting;      /* the producer waits for on_drain now */
    int producer;     /* 0 none, 1 running, 2 stopped */
    int gone;         /* /deferred: the client left before the 101 */
    long received;    /* messages on_message was given */
    turbo_ws *paused; /* /paused's, retained until /resume */
} record;

/* One lock for everything shared: the records, the totals and the state of
   each WebSocket a producer thread waits on; `changed` is signalled with it. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static record records[4096];
static int nrecords, total_opens, total_closes, producers_running;

/* A WebSocket's user data; the producer thread of /push holds a reference. */
typedef struct ws_conn {
    int route;
    record *rec; /* NULL: no ?id=, or the table is full */
    int close_code;
    int close_sent;
    long ms; /* /slow */
    long n;
    size_t size;
    turbo_ws *ws;
    int drained, closed, refs; /* under lock */
} ws_conn;

static void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = ms % 1000 * 1000000L;
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static void conn_unref(ws_conn *c) {
    int last;
    pthread_mutex_lock(&lock);
    last = --c->refs == 0;
    pthread_mutex_unlock(&lock);
    if (last) free(c);
}

/* The record of id, made if new; NULL when id is empty or the table full. Under lock. */
static record *record_of(turbo_str id) {
    int i;
    if (id.len == 0 || id.len >= sizeof records[0].id) return NULL;
    for (i = 0; i < nrecords; i++)
        if (strlen(records[i].id) == id.len && memcmp(records[i].id, id.ptr, id.len) == 0) return &records[i];
    if (nrecords == (int)(sizeof records / sizeof records[0])) return NULL;
    memcpy(records[nrecords].id, id.ptr, id.len);
    return &records[nrecords++];
}

static ws_conn *conn_new(turbo_req *req, int route) {
    ws_conn *c = (ws_conn *)calloc(1, sizeof *c);
    turbo_str id = {NULL, 0};
    if (!c) return NULL;
    c->route = route;
    c->refs = 1;
    if (turbo_req_query_get(req, "id", &id) != 1) id.len = 0;
    pthread_mutex_lock(&lock);
    c->rec = record_of(id);
    pthread_mutex_unlock(&lock);
    return c;
}

static void wait_drained_or_closed(ws_conn *c, int *closed) {
    pthread_mutex_lock(&lock);
    if (c->rec) {
        c->rec->waiting = 1;
        c->rec->waits++;
    }
    while (!c->drained && !c->closed) pthread_cond_wait(&changed, &lock);
    if (c->rec) c->rec->waiting = 0;
    *closed = c->closed;
    pthread_mutex_unlock(&lock);
}

/* /push's thread: it may only send, close, and wait for the callbacks. */
static void *produce(void *arg) {
    ws_conn *c = (ws_conn *)arg;
    char *msg = (char *)malloc(c->size);
    long i;
    int closed = 0;
    for (i = 0; msg && i < c->n && !closed; i++) {
        int rc, k;
        memset(msg, (int)(i & 255), c->size);
        for (k = 0; k < 4; k++) msg[k] = (char)(i >> (24 - 8 * k));
        pthread_mutex_lock(&lock);
        c->drained = 0; /* on_drain may come before turbo_ws_send returns */
        pthread_mutex_unlock(&lock);
        rc = turbo_ws_send(c->ws, msg, c->size, 0);
        if (rc < 0) break;
        pthread_mutex_lock(&lock);
        if (c->rec) c->rec->sent++;
        pthread_mutex_unlock(&lock);
        if (rc == 1) wait_drained_or_closed(c, &closed);
    }
    if (msg && i == c->n && !closed) turbo_ws_close(c->ws, 1000, "pushed");
    free(msg);
    turbo_ws_release(c->ws);
    pthread_mutex_lock(&lock);
    if (c->rec) c->rec->producer = 2;
    producers_running--;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
    conn_unref(c);
    return NULL;
}

static void start_producer(turbo_ws *ws, ws_conn *c) {
    pthread_t t;
    c->ws = ws;
    turbo_ws_retain(ws);
    pthread_mutex_lock(&lock);
    c->refs++;
    producers_running++;
    if (c->rec) c->rec->producer = 1;
    pthread_mutex_unlock(&lock);
    if (pthread_create(&t, NULL, produce, c) == 0) {
        pthread_detach(t);
        return;
    }
    fprintf(stderr, "ws_server: no thread for /push\n");
    turbo_ws_close(ws, 1011, "no thread");
    turbo_ws_release(ws);
    pthread_mutex_lock(&lock);
    if (c->rec) c->rec->producer = 2;
    producers_running--;
    pthread_mutex_unlock(&lock);
    conn_unref(c);
}

static void on_open(turbo_ws *ws, void *user) {
    ws_conn *c = (ws_conn *)user;
    pthread_mutex_lock(&lock);
    total_opens++;
    if (c->rec) c->rec->opens++;
    if (c->route == PAUSED && c->rec && !c->rec->paused) {
        turbo_ws_pause(ws, 1);
        turbo_ws_retain(ws);
        c->rec->paused = ws;
    }
    pthread_mutex_unlock(&lock);
    if (c->route == PUSH) start_producer(ws, c);
}

static void on_message(turbo_ws *ws, const char *data, size_t len, int text, void *user) {
    ws_conn *c = (ws_conn *)user;
    if (c->route == SLOW) sleep_ms(c->ms); /* as a database call would: the loop goes on without it */
    pthread_mutex_lock(&lock);
    if (c->rec) c->rec->received++;
    pthread_mutex_unlock(&lock);
    /* The echo ignores a 1 from turbo_ws_send: the tests read each echo
       before they send much more. */
    if (c->route == ECHO || c->route == SLOW || c->route == PAUSED) turbo_ws_send(ws, data, len, text);
    if (c->route == CLOSE && !c->close_sent) {
        c->close_sent = 1;
        turbo_ws_close(ws, c->close_code, "bye");
    }
}

static void on_drain(turbo_ws *ws, void *user) {
    ws_conn *c = (ws_conn *)user;
    (void)ws;
    pthread_mutex_lock(&lock);
    c->drained = 1;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static void on_close(turbo_ws *ws, int code, void *user) {
    ws_conn *c = (ws_conn *)user;
    (void)ws;
    pthread_mutex_lock(&lock);
    total_closes++;
    if (c->rec && c->rec->closes < (int)(sizeof c->rec->codes / sizeof c->rec->codes[0]))
        c->rec->codes[c->rec->closes] = code;
    if (c->rec) c->rec->closes++;
    c->closed = 1;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
    conn_unref(c);
}

static const turbo_ws_handler handler = {on_open, on_message, on_drain, on_close};

/* Answers a request that is no WebSocket upgrade as turbo_ws_accept_key
   says, and returns its status; 0, with accept set, for an upgrade. */
static int refuse_bad_upgrade(turbo_req *req, turbo_res *res, char accept[29]) {
    int status = turbo_ws_accept_key(req, accept);
    if (status == 426) turbo_res_header(res, "Sec-WebSocket-Version", "13");
    if (status) turbo_res_text(res, status, "not a WebSocket upgrade");
    return status;
}

/* "chat" if the client's Sec-WebSocket-Protocol lists it, else NULL. */
static const char *chosen_subprotocol(turbo_req *req) {
    turbo_str offered = turbo_req_header(req, "sec-websocket-protocol");
    size_t i = 0;
    while (i < offered.len) {
        size_t start, end;
        while (i < offered.len && (offered.ptr[i] == ' ' || offered.ptr[i] == ',')) i++;
        start = i;
        while (i < offered.len && offered.ptr[i] != ',' && offered.ptr[i] != ' ') i++;
        end = i;
        if (end - start == 4 && memcmp(offered.ptr + start, "chat", 4) == 0) return "chat";
    }
    return NULL;
}

static void upgrade(turbo_req *req, turbo_res *res, ws_conn *c) {
    char accept[29];
    if (!c) {
        turbo_res_text(res, 500, "no memory");
        return;
    }
    if (refuse_bad_upgrade(req, res, accept) != 0 ||
        !turbo_res_websocket(res, accept, chosen_subprotocol(req), &handler, c))
        conn_unref(c);
}

static void echo(turbo_req *req, turbo_res *res, void *user) {
    (void)user;
    upgrade(req, res, conn_new(req, ECHO));
}

/* The query value's digits (it is no C string), or fallback. */
static long query_num(turbo_req *req, const char *name, long fallback) {
    turbo_str v;
    long n = 0;
    size_t i;
    if (turbo_req_query_get(req, name, &v) != 1 || v.len == 0 || v.len > 9) return fallback;
    for (i = 0; i < v.len; i++) {
        if (v.ptr[i] < '0' || v.ptr[i] > '9') return fallback;
        n = n * 10 + (v.ptr[i] - '0');
    }
    return n;
}

static void push(turbo_req *req, turbo_res *res, void *user) {
    ws_conn *c = conn_new(req, PUSH);
    (void)user;
    if (c) {
        c->n = query_num(req, "n", 1);
        c->size = (size_t)query_num(req, "size", 4);
        if (c->size < 4 || c->size > (16 << 20)) c->size = 4;
    }
    upgrade(req, res, c);
}

static void slow(turbo_req *req, turbo_res *res, void *user) {
    ws_conn *c = conn_new(req, SLOW);
    (void)user;
    if (c) c->ms = query_num(req, "ms", 0);
    sleep_ms(query_num(req, "before", 0)); /* a database call, say: its loop goes on without it */
    upgrade(req, res, c);
}

static void close_with(turbo_req *req, turbo_res *res, void *user) {
    turbo_str code = turbo_req_param(req, "code");
    ws_conn *c = conn_new(req, CLOSE);
    size_t i;
    (void)user;
    for (i = 0; c && i < code.len && i < 5; i++) c->close_code = c->close_code * 10 + (code.ptr[i] - '0');
    upgrade(req, res, c);
}

/* /deferred: the accept key is taken from the request, which is gone by
   the time the resume function answers. */
typedef struct later_upgrade {
    turbo_defer *defer;
    char accept[29];
    long ms;
    ws_conn *conn;
} later_upgrade;

static void open_later(turbo_res *res, void *arg) {
    later_upgrade *l = (later_upgrade *)arg;
    if (!res && l->conn->rec) {
        pthread_mutex_lock(&lock);
        l->conn->rec->gone++;
        pthread_mutex_unlock(&lock);
    }
    if (!res || !turbo_res_websocket(res, l->accept, NULL, &handler, l->conn)) conn_unref(l->conn);
    free(l);
}

static void *resume_upgrade(void *arg) {
    later_upgrade *l = (later_upgrade *)arg;
    sleep_ms(l->ms);
    turbo_defer_resume(l->defer, open_later, l);
    return NULL;
}

static void deferred(turbo_req *req, turbo_res *res, void *user) {
    later_upgrade *l = (later_upgrade *)calloc(1, sizeof *l);
    pthread_t t;
    (void)user;
    if (!l || !(l->conn = conn_new(req, ECHO))) {
        free(l);
        turbo_res_text(res, 500, "no memory");
        return;
    }
    l->ms = query_num(req, "ms", 0);
    if (refuse_bad_upgrade(req, res, l->accept) == 0 && !(l->defer = turbo_res_defer(res)))
        turbo_res_text(res, 500, "cannot defer");
    if (!l->defer) {
        conn_unref(l->conn);
        free(l);
        return;
    }
    if (pthread_create(&t, NULL, resume_upgrade, l) != 0) {
        resume_upgrade(l); /* from this thread, then */
        return;
    }
    pthread_detach(t);
}

static void paused(turbo_req *req, turbo_res *res, void *user) {
    (void)user;
    upgrade(req, res, conn_new(req, PAUSED));
}

static void resume(turbo_req *req, turbo_res *res, void *user) {
    turbo_str id = {NULL, 0};
    turbo_ws *ws = NULL;
    record *r;
    (void)user;
    if (turbo_req_query_get(req, "id", &id) != 1) id.len = 0;
    pthread_mutex_lock(&lock);
    if ((r = record_of(id)) != NULL) {
        ws = r->paused;
        r->paused = NULL;
    }
    pthread_mutex_unlock(&lock);
    if (ws) {
        turbo_ws_pause(ws, 0);
        turbo_ws_release(ws);
    }
    turbo_res_text(res, ws ? 200 : 404, ws ? "resumed" : "none paused");
}

static void plain(turbo_req *req, turbo_res *res, void *user) {
    (void)req, (void)user;
    turbo_res_text(res, 200, "plain");
}

static void counts(turbo_req *req, turbo_res *res, void *user) {
    turbo_json *j = turbo_res_json(res, 200);
    turbo_str id = {NULL, 0};
    record *r;
    int i;
    (void)user;
    if (turbo_req_query_get(req, "id", &id) != 1) id.len = 0;
    pthread_mutex_lock(&lock);
    r = record_of(id);
    turbo_json_object_begin(j);
    turbo_json_key(j, "opens");
    turbo_json_int(j, r ? r->opens : total_opens);
    turbo_json_key(j, "closes");
    turbo_json_int(j, r ? r->closes : total_closes);
    turbo_json_key(j, "producers_running");
    turbo_json_int(j, producers_running);
    if (r) {
        turbo_json_key(j, "codes");
        turbo_json_array_begin(j);
        for (i = 0; i < r->closes && i < (int)(sizeof r->codes / sizeof r->codes[0]); i++)
            turbo_json_int(j, r->codes[i]);
        turbo_json_array_end(j);
        turbo_json_key(j, "sent");
        turbo_json_int(j, r->sent);
        turbo_json_key(j, "waits");
        turbo_json_int(j, r->waits);
        turbo_json_key(j, "waiting");
        turbo_json_int(j, r->waiting);
        turbo_json_key(j, "producer");
        turbo_json_string(j, r->producer == 0 ? "none" : r->producer == 1 ? "running" : "stopped");
        turbo_json_key(j, "gone");
        turbo_json_int(j, r->gone);
        turbo_json_key(j, "received");
        turbo_json_int(j, r->received);
    }
    turbo_json_object_end(j);
    pthread_mutex_unlock(&lock);
}

/* Producers end once their WebSocket is closed, which turbo_run has done
   by the time it returns; the server is freed only after them. */
static int producers_ended(void) {
    struct timespec until;
    int ended;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&lock);
    while (producers_running > 0 && pthread_cond_timedwait(&changed, &lock, &until) == 0) {
    }
    ended = producers_running == 0;
    fprintf(stderr, "ws_server: %d opened, %d closed, %d producers running\n", total_opens, total_closes,
            producers_running);
    pthread_mutex_unlock(&lock);
    return ended;
}

int main(void) {
    turbo_config cfg; /* zeroed, not a designated initializer: as in c_api_server.c */
    turbo_server *s;
    int rc;
    memset(&cfg, 0, sizeof cfg);
    if (turbo_config_env(&cfg) != 0 || !(s = turbo_new(&cfg))) return 1;
    /* "*": a POST upgrade reaches turbo_ws_accept_key, which refuses it */
    if (turbo_route(s, "*", "/echo", echo, NULL) || turbo_get(s, "/push", push, NULL) ||
        turbo_get(s, "/close/{code}", close_with, NULL) || turbo_get(s, "/deferred", deferred, NULL) ||
        turbo_get(s, "/plain", plain, NULL) || turbo_get(s, "/slow", slow, NULL) ||
        turbo_get(s, "/counts", counts, NULL) || turbo_get(s, "/paused", paused, NULL) ||
        turbo_get(s, "/resume", resume, NULL)) {
        fprintf(stderr, "ws_server: %s\n", turbo_error(s));
        return 1;
    }
    rc = turbo_run(s);
    if (!producers_ended()) return 1; /* a producer still holds its WebSocket: no turbo_free */
    turbo_free(s);
    return rc == 0 ? 0 : 1;
}
