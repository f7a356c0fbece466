/* The demo server that `make run` starts: plaintext, JSON, a path
   parameter and a body echo, and the files of the folder $STATIC_ROOT at
   /static/ when it is set. Settings come from the environment (PORT,
   TURBO_THREADS, ... see README), so tests can start it with tiny limits. */
#define TURBO_IMPL
#include "../turbo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void hello(turbo_req *req, turbo_res *res, void *user) {
    (void)req;
    (void)user;
    turbo_res_text(res, 200, "Hello, World!");
}

static void hello_json(turbo_req *req, turbo_res *res, void *user) {
    turbo_json *j = turbo_res_json(res, 200);
    (void)req;
    (void)user;
    turbo_json_object_begin(j);
    turbo_json_key(j, "message");
    turbo_json_string(j, "Hello, World!");
    turbo_json_object_end(j);
}

static void get_user(turbo_req *req, turbo_res *res, void *user) {
    turbo_str id = turbo_req_param(req, "id");
    turbo_json *j = turbo_res_json(res, 200);
    (void)user;
    turbo_json_object_begin(j);
    turbo_json_key(j, "id");
    turbo_json_stringn(j, id.ptr, id.len);
    turbo_json_object_end(j);
}

static void echo(turbo_req *req, turbo_res *res, void *user) {
    turbo_str type = turbo_req_header(req, "Content-Type");
    turbo_str body = turbo_req_body(req);
    (void)user;
    turbo_res_status(res, 200);
    if (type.ptr) turbo_res_headern(res, "Content-Type", 12, type.ptr, type.len);
    else turbo_res_header(res, "Content-Type", "application/octet-stream");
    turbo_res_body(res, body.ptr, body.len);
}

int main(void) {
    turbo_config cfg = {0}; /* every field its default, then TURBO_* and PORT from the environment */
    turbo_server *s;
    int rc;
    if (turbo_config_env(&cfg) != 0 || !(s = turbo_new(&cfg))) return 1;
    if (turbo_get(s, "/", hello, NULL) || turbo_get(s, "/json", hello_json, NULL) ||
        turbo_get(s, "/users/{id}", get_user, NULL) || turbo_post(s, "/echo", echo, NULL)) {
        fprintf(stderr, "hello: %s\n", turbo_error(s));
        turbo_free(s);
        return 1;
    }
    if (getenv("STATIC_ROOT") && turbo_static(s, "/static", getenv("STATIC_ROOT"), NULL) != 0) {
        fprintf(stderr, "hello: %s\n", turbo_error(s));
        turbo_free(s);
        return 1;
    }
    rc = turbo_run(s);
    turbo_free(s);
    return rc == 0 ? 0 : 1;
}
