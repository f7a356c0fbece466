/* ws_turbo.c - turbo's WebSocket echo, the peer of ws_node.js and ws_python.py
   for bench/ws.py: GET /echo upgrades, and every message goes back as it came
   (text or binary). One event loop (threads = 1); PORT and TURBO_* from the
   environment (turbo_config_env) may change that.

   cc -std=c99 -O2 -o ws_turbo bench/peers/ws_turbo.c -lpthread
   PORT=8080 ./ws_turbo */
#define TURBO_IMPL
#include "../../turbo.h"

static void on_message(turbo_ws *ws, const char *data, size_t len, int text, void *user) {
    (void)user;
    turbo_ws_send(ws, data, len, text); /* a 1 (over 1 MiB waiting) cannot come from a closed loop */
}

static const turbo_ws_handler echo_handler = {NULL, on_message, NULL, NULL};

static void echo(turbo_req *req, turbo_res *res, void *user) {
    char accept[29];
    int status = turbo_ws_accept_key(req, accept);
    (void)user;
    if (status == 426) turbo_res_header(res, "Sec-WebSocket-Version", "13");
    if (status) turbo_res_text(res, status, "not a WebSocket upgrade");
    else turbo_res_websocket(res, accept, NULL, &echo_handler, NULL); /* NULL: out of memory, a 500 */
}

int main(void) {
    turbo_config cfg = {.threads = 1};
    turbo_server *s;
    int rc;
    if (turbo_config_env(&cfg) != 0 || !(s = turbo_new(&cfg))) return 1;
    if (turbo_get(s, "/echo", echo, NULL)) {
        fprintf(stderr, "ws_turbo: %s\n", turbo_error(s));
        turbo_free(s);
        return 1;
    }
    rc = turbo_run(s);
    turbo_free(s);
    return rc == 0 ? 0 : 1;
}
