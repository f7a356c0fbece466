/* native_server.c - the handlers of handlers.c served by a plain C program.

   cc -O2 -I. examples/native_server.c examples/handlers.c -o native_server -lpthread
   PORT=8080 ./native_server        (configuration from TURBO_* variables) */
#define TURBO_IMPL
#include "turbo.h"

void health(turbo_req *req, turbo_res *res, void *user);
void hello(turbo_req *req, turbo_res *res, void *user);
void hello_json(turbo_req *req, turbo_res *res, void *user);
void user_by_id(turbo_req *req, turbo_res *res, void *user);
void echo(turbo_req *req, turbo_res *res, void *user);
void slow_io(turbo_req *req, turbo_res *res, void *user);

int main(void) {
    turbo_config cfg = {0};
    turbo_server *s;
    if (turbo_config_env(&cfg) != 0) return 2;
    s = turbo_new(&cfg);
    if (!s) return 1;
    if (turbo_get(s, "/", hello, NULL) || turbo_get(s, "/json", hello_json, NULL) ||
        turbo_get(s, "/health", health, NULL) || turbo_get(s, "/users/{id}", user_by_id, NULL) ||
        turbo_post(s, "/echo", echo, NULL) || turbo_get(s, "/io", slow_io, NULL)) {
        fprintf(stderr, "native_server: %s\n", turbo_error(s));
        return 1;
    }
    if (turbo_run(s) != 0) {
        turbo_free(s);
        return 1;
    }
    turbo_free(s);
    return 0;
}
