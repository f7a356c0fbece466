/* handlers.c - native route handlers, written against turbo.h only.

   The same file serves two ways, unchanged:
   - in a C server: compile it beside a file that includes turbo.h with
     TURBO_IMPL (see native_server.c):
         cc -O2 -I. examples/native_server.c examples/handlers.c -o native_server -lpthread
   - in a Python app: build a shared library and register its functions
     with app.native (see app.py). The turbo_* functions it calls are
     provided by the turbo module itself, so the library links nothing:
         cc -O2 -fPIC -shared -I. examples/handlers.c -o examples/handlers.so
         app.native("GET", "/health", "./examples/handlers.so", "health")

   Native handlers run on turbo's threads without the GIL: they must not
   call into Python. They may block (slow_io below): their event loop
   then goes on with another thread. Memory rule: everything turbo hands you (the
   request, its strings, the response, the JSON writer) belongs to turbo
   and is valid until the handler returns; copy what you keep. */
#define _POSIX_C_SOURCE 200809L /* nanosleep, under -std=c99 */
#include "turbo.h"

#include <time.h>

/* GET /health -> {"status":"ok"} */
void health(turbo_req *req, turbo_res *res, void *user) {
    turbo_json *j = turbo_res_json(res, 200);
    (void)req;
    (void)user;
    turbo_json_object_begin(j);
    turbo_json_key(j, "status");
    turbo_json_string(j, "ok");
    turbo_json_object_end(j);
}

/* GET / -> Hello, World! as text/plain */
void hello(turbo_req *req, turbo_res *res, void *user) {
    (void)req;
    (void)user;
    turbo_res_text(res, 200, "Hello, World!");
}

/* GET /json -> {"message":"Hello, World!"} */
void hello_json(turbo_req *req, turbo_res *res, void *user) {
    turbo_json *j = turbo_res_json(res, 200);
    (void)req;
    (void)user;
    turbo_json_object_begin(j);
    turbo_json_key(j, "message");
    turbo_json_string(j, "Hello, World!");
    turbo_json_object_end(j);
}

/* GET /users/{id} -> {"id":"<id>"}: the capture as a JSON string */
void user_by_id(turbo_req *req, turbo_res *res, void *user) {
    turbo_str id = turbo_req_param(req, "id");
    turbo_json *j = turbo_res_json(res, 200);
    (void)user;
    turbo_json_object_begin(j);
    turbo_json_key(j, "id");
    turbo_json_stringn(j, id.ptr, id.len);
    turbo_json_object_end(j);
}

/* POST /echo -> the request body, with the request's Content-Type */
void echo(turbo_req *req, turbo_res *res, void *user) {
    turbo_str type = turbo_req_header(req, "Content-Type");
    turbo_str body = turbo_req_body(req);
    (void)user;
    turbo_res_status(res, 200);
    if (type.len) turbo_res_headern(res, "Content-Type", 12, type.ptr, type.len);
    turbo_res_body(res, body.ptr, body.len);
}

/* GET /io -> {"waited_ms":10} after 10 ms asleep: a stand-in for a
   database call. turbo runs it off the event loop (see Execution model). */
void slow_io(turbo_req *req, turbo_res *res, void *user) {
    struct timespec ten_ms = {0, 10000000L};
    turbo_json *j;
    (void)req;
    (void)user;
    while (nanosleep(&ten_ms, &ten_ms) != 0) {
    }
    j = turbo_res_json(res, 200);
    turbo_json_object_begin(j);
    turbo_json_key(j, "waited_ms");
    turbo_json_int(j, 10);
    turbo_json_object_end(j);
}
