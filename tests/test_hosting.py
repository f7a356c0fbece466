#!/usr/bin/env python3
"""Existing ASGI and WSGI apps on turbo: the same apps (tests/py_apps/hosted/) served by
their usual server (uvicorn for FastAPI and Starlette, gunicorn for Flask and Django) and by
turbo (`python3 -m turbo module:app`) get the same requests; statuses, headers (less Date,
Server, Connection and the framing ones) and bodies must agree. Then what only turbo does: a
FastAPI app mounted beside turbo routes (one Python, one native), lifespan state, and apps that
break the protocol.

Runs on Debian's interpreter and packages (python3-fastapi, python3-starlette, python3-flask,
python3-django, python3-uvicorn, gunicorn; .ci/run installs them): HOSTING_PYTHON picks
another. Without them the suite says so and fails.

    python3 tests/test_hosting.py"""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "py_apps"))
import pyharness as harness  # noqa: E402
from harness import process_gone, wait_until  # noqa: E402

PY = os.environ.get("HOSTING_PYTHON", "/usr/bin/python3")
HOSTED = os.path.join(harness.APPS, "hosted")
WORK, CLEANUP = harness.workdir()
HANDLERS, _ = harness.build_native(WORK)
NOT_COMPARED = {"date", "server", "connection", "keep-alive", "transfer-encoding"}
JSON = {"Content-Type": "application/json"}
BIG = b"x" * 100000


def turbo(spec, *extra, env=None):
    return harness.Server([PY, "-m", "turbo", spec, "--port", "0", *extra], cwd=HOSTED,
                          env=dict(env or {}, TURBO_TEST_HANDLERS=HANDLERS))


def uvicorn(spec):
    port = harness.free_port()
    return harness.Server([PY, "-m", "uvicorn", spec, "--port", str(port), "--no-access-log",
                           "--log-level", "warning"], cwd=HOSTED, port=port)


def gunicorn(spec):
    port = harness.free_port()
    return harness.Server([PY, "-m", "gunicorn", "--bind", "127.0.0.1:%d" % port, "--log-level",
                           "warning", spec], cwd=HOSTED, port=port)


def exchange(port, method, path, body=None, headers=None, chunked=False):
    """(status, {header: value} less the ones not compared, body, was_chunked)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=float(os.environ.get("EXCHANGE_TIMEOUT", 20)))
    try:
        if chunked:
            conn.request(method, path, body=iter([body[:7], body[7:]]), headers=headers or {},
                         encode_chunked=True)
        else:
            conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        raw = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        if "allow" in hdrs:  # a set in Flask: its order changes from process to process
            hdrs["allow"] = ", ".join(sorted(m.strip() for m in hdrs["allow"].split(",")))
        was_chunked = "chunked" in hdrs.get("transfer-encoding", "")
        return r.status, {k: v for k, v in hdrs.items() if k not in NOT_COMPARED}, raw, was_chunked
    finally:
        conn.close()


FASTAPI_CASES = [
    ("GET", "/items/5?q=x"), ("GET", "/items/abc"), ("GET", "/items/5?q=%C3%A9+b"),
    ("POST", "/items", b'{"name": "pen", "price": "1.5"}', JSON),
    ("POST", "/items", b'{"price": "x"}', JSON), ("POST", "/items", b"{bad", JSON),
    ("GET", "/sync"), ("GET", "/teapot"), ("GET", "/text"), ("GET", "/stream"),
    ("POST", "/echo", BIG, {"Content-Type": "application/octet-stream"}),
    ("POST", "/echo", b"chunked body here", {"Content-Type": "text/plain"}, True),
    ("HEAD", "/items/5"), ("GET", "/nope"), ("DELETE", "/items/5"), ("OPTIONS", "/items/5"),
    ("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/background"), ("GET", "/boom"),
]
FLASK_CASES = [
    ("GET", "/hello/bob?q=1"), ("POST", "/echo", b"abc", {"Content-Type": "text/plain"}),
    ("POST", "/echo", BIG, {"Content-Type": "application/octet-stream"}),
    ("GET", "/stream"), ("GET", "/missing"), ("POST", "/hello/x"), ("HEAD", "/hello/x"),
    ("GET", "/boom"), ("GET", "/hello/%C3%A9t%C3%A9"), ("GET", "/latin1"),
    ("POST", "/echo", b"a chunked body", {"Content-Type": "text/plain"}, True),
]
DJANGO_CASES = [
    ("GET", "/hello/x?q=2"), ("POST", "/echo", b'{"a": 1}', JSON), ("GET", "/missing"),
    ("PUT", "/hello/y"),
]


def request_of(case):
    method, path = case[0], case[1]
    body = case[2] if len(case) > 2 else None
    headers = case[3] if len(case) > 3 else None
    chunked = len(case) > 4 and case[4]
    return method, path, body, headers, chunked


# What a proxy in front says of a client (uvicorn and gunicorn trust 127.0.0.1 by default, as turbo).
FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7, 198.51.100.2"}
# Through two proxies, the nearer one trusted: the client is the address before it.
FORWARDED_TWICE = {"X-Forwarded-For": "203.0.113.7, 127.0.0.1"}


def ws_transcript(port):
    """What a client sees of fastapi_app's WebSockets: messages, close codes, refusals."""
    seen = []
    ws = harness.WebSocket(port, "/ws/kitchen?n=2", protocols=["superchat", "chat"])
    seen.append((ws.status, ws.headers.get("sec-websocket-protocol"), json.loads(ws.recv())))
    many = ["m%d" % i for i in range(500)]
    ws.send("héllo", b"abc", *many, bytes(range(256)) * 4096)  # the last one: 1 MiB
    seen += [ws.recv() for _ in range(len(many) + 3)]
    ws.send("close")
    try:
        ws.recv()
    except harness.Closed as e:
        seen.append(("server closed", e.code, e.reason))
    ws = harness.WebSocket(port, "/ws/den")
    seen.append((ws.recv(), "client closed", ws.close(4001)))
    wait_for(lambda: exchange(port, "GET", "/ws-disconnects")[2] != b"[]", "no disconnect seen")
    seen.append(exchange(port, "GET", "/ws-disconnects")[2])
    seen += [(path, harness.WebSocket(port, path).status) for path in ("/ws-refuse", "/ws-never")]
    seen.append(exchange(port, "GET", "/ws/den")[:3])  # no handshake: the app's 404
    return seen


class Parity(unittest.TestCase):
    def compare(self, spec, peer, cases):
        theirs, ours = peer(spec), turbo(spec)
        try:
            for case in cases:
                method, path, body, headers, chunked = request_of(case)
                with self.subTest(spec=spec, method=method, path=path):
                    want = exchange(theirs.port, method, path, body, headers, chunked)
                    got = exchange(ours.port, method, path, body, headers, chunked)
                    want_headers, got_headers = dict(want[1]), dict(got[1])
                    if want[3]:  # the peer streamed it: turbo sends a length instead
                        got_headers.pop("content-length", None)
                    self.assertEqual((got[0], got_headers, got[2]), (want[0], want_headers, want[2]))
        finally:
            theirs.kill()
            self.assertEqual(ours.stop(), 0, ours.log()[-2000:])
        return ours

    def test_fastapi_as_on_uvicorn(self):
        self.compare("fastapi_app:app", uvicorn, FASTAPI_CASES)

    def test_fastapi_websockets_as_on_uvicorn(self):
        theirs, ours = uvicorn("fastapi_app:app"), turbo("fastapi_app:app")
        try:
            self.assertEqual(ws_transcript(ours.port), ws_transcript(theirs.port))
        finally:
            theirs.kill()
            self.assertEqual(ours.stop(), 0, ours.log()[-2000:])
        self.assertIn("ASGI app at /: returned without accepting or closing the WebSocket", ours.log())

    def test_starlette_as_on_uvicorn(self):
        self.compare("starlette_app:app", uvicorn, [("GET", "/?a=1&b=%20"), ("GET", "/plain"),
                                                   ("HEAD", "/plain"), ("GET", "/x")])

    def test_a_bare_asgi_app_as_on_uvicorn(self):
        self.compare("starlette_app:bare", uvicorn, [("GET", "/anything?x=1"), ("POST", "/", b"b")])

    def test_a_bare_asgi_apps_scope_as_on_uvicorn(self):
        self.compare("starlette_app:scope_dump", uvicorn,
                     [("GET", "/a%20b/%C3%A9?x=1&y=%20"), ("POST", "/p", b"body", {"X-Custom": "v", "A": ""}),
                      ("GET", "/"), ("GET", "/proxied", None, FORWARDED), ("GET", "/half", None, {"X-Forwarded-Proto": "http"}),
                      ("GET", "/twice", None, FORWARDED_TWICE)])

    def test_a_body_in_parts_keeps_the_length_the_app_states(self):
        self.compare("starlette_app:stated_length", uvicorn, [("GET", "/"), ("HEAD", "/")])

    def test_fastapi_behind_http_middleware_as_on_uvicorn(self):
        ours = self.compare("fastapi_app:with_middleware", uvicorn,
                            [("GET", "/json"), ("GET", "/stream"), ("GET", "/events"), ("GET", "/json")])
        self.assertNotIn("Traceback", ours.log())

    def test_an_app_polling_for_a_disconnect_as_on_uvicorn(self):
        self.compare("starlette_app:poll_twice", uvicorn, [("GET", "/"), ("POST", "/", b"body")])

    def test_flask_as_on_gunicorn(self):
        self.compare("flask_app:app", gunicorn, FLASK_CASES)

    def test_a_bare_wsgi_app_as_on_gunicorn(self):
        self.compare("flask_app:bare", gunicorn, [("GET", "/a/b%20c?q=1"), ("GET", "/")])

    def test_a_bare_wsgi_apps_environ_as_on_gunicorn(self):
        self.compare("flask_app:environ_dump", gunicorn,
                     [("GET", "/a%20b/%C3%A9?x=1&y=%20"), ("POST", "/p", b"body", {"X-Custom": "v", "A": ""}),
                      ("POST", "/c", b"a chunked body", {"X-Custom": "v"}, True), ("GET", "/"),
                      ("GET", "/proxied", None, FORWARDED)])

    def test_django_as_on_gunicorn(self):
        self.compare("django_app:app", gunicorn, DJANGO_CASES)


class TurboOnly(unittest.TestCase):
    def json(self, server, path, method="GET"):
        status, _, body, _ = exchange(server.port, method, path)
        return status, json.loads(body)

    def test_the_scope_has_every_key_asgi_requires(self):
        server = turbo("fastapi_app:app")
        try:
            status, scope = self.json(server, "/scope?a=1")
        finally:
            self.assertEqual(server.stop(), 0, server.log()[-2000:])
        self.assertEqual(status, 200)
        for key in ("asgi", "client", "headers", "http_version", "method", "path", "query_string",
                    "raw_path", "root_path", "scheme", "server", "state", "type"):
            self.assertIn(key, scope["keys"])
        self.assertEqual((scope["path"], scope["raw_path"], scope["query"], scope["client_host"]),
                         ("/scope", "/scope", "a=1", "127.0.0.1"))
        self.assertIn("host", scope["headers"])

    def test_wsgi_leaves_out_header_names_with_underscores(self):
        # X_Forwarded_For would become HTTP_X_FORWARDED_FOR, the key of the
        # X-Forwarded-For a proxy sets: such names are dropped, as gunicorn 22 and nginx do.
        server = turbo("flask_app:http_keys")
        try:
            status, _, body, _ = exchange(server.port, "GET", "/", headers={
                "X_Forwarded_For": "6.6.6.6", "X-Real-Name": "a", "Content_Length": "9"})
        finally:
            self.assertEqual(server.stop(), 0, server.log()[-2000:])
        self.assertEqual(status, 200)
        keys = json.loads(body)
        self.assertEqual(keys.get("HTTP_X_REAL_NAME"), "a")
        self.assertNotIn("HTTP_X_FORWARDED_FOR", keys)
        self.assertIn(keys.get("CONTENT_LENGTH"), (None, "", "0"))

    def test_a_fastapi_app_mounted_beside_turbo_routes(self):
        server = harness.Server([PY, os.path.join(HOSTED, "hybrid_app.py")],
                                env={"TURBO_TEST_HANDLERS": HANDLERS})
        try:
            self.assertEqual(self.json(server, "/items/7?q=z"),
                             (200, {"item_id": 7, "q": "z", "served_by": "turbo"}))
            self.assertEqual(self.json(server, "/health"), (200, {"status": "ok"}))
            status, headers, body, _ = exchange(server.port, "GET", "/moved-over")
            self.assertEqual((status, body, headers.get("x-from")),
                             (203, b"from a Starlette response", "starlette"))
            self.assertEqual(self.json(server, "/sync"), (200, {"sync": True}))
            self.assertEqual(self.json(server, "/items/7", "DELETE")[0], 405)  # FastAPI's answer
            self.assertEqual(self.json(server, "/nope"), (404, {"detail": "Not Found"}))
            status, openapi = self.json(server, "/openapi.json")
            self.assertEqual(status, 200)
            self.assertIn("/items/{item_id}", openapi["paths"])
            status, _, page, _ = exchange(server.port, "GET", "/docs")
            self.assertEqual(status, 200)
            self.assertIn(b"swagger-ui", page)
        finally:
            self.assertEqual(server.stop(), 0, server.log()[-2000:])

    def test_metrics_and_access_log_count_what_a_hosted_app_answers(self):
        """--metrics-path and --access-log-format json: the answers of a FastAPI app (deferred to
        its loop, sync routes on its thread pool) are counted and logged, one line each."""
        server = turbo("fastapi_app:app", "--metrics-path", "/metrics",
                       "--access-log-format", "json")
        try:
            for path in ("/items/1", "/sync", "/teapot", "/nowhere"):
                exchange(server.port, "GET", path)
            status, _, body, _ = exchange(server.port, "GET", "/metrics")
            self.assertEqual(status, 200)
            counts = dict(re.findall(r'^turbo_requests_total\{method="GET",code="(\dxx)"\} (\d+)$',
                                     body.decode(), re.M))
            self.assertEqual(counts, {"2xx": "2", "4xx": "2"})
            self.assertIn("turbo_deferred_total 4\n", body.decode())
            lines = lambda: [json.loads(x) for x in server.log().splitlines()  # noqa: E731
                             if x.startswith("{") and "/metrics" not in x]
            wait_until(lambda: len(lines()) >= 4, "4 log lines")
            self.assertEqual(sorted((x["target"], x["status"]) for x in lines()),
                             [("/items/1", 200), ("/nowhere", 404), ("/sync", 200),
                              ("/teapot", 418)])
        finally:
            self.assertEqual(server.stop(), 0, server.log()[-2000:])

    def test_an_app_mounted_at_a_prefix_sees_its_root_path(self):
        server = harness.Server([PY, "-c", "import sys, turbo; sys.path.insert(0, %r); "
                                 "import fastapi_app, flask_app; app = turbo.App(); "
                                 "app.mount('/api', fastapi_app.app); app.mount('/old', flask_app.app); "
                                 "app.run(port=0, workers=1)" % HOSTED])
        try:
            status, scope = self.json(server, "/api/scope")
            self.assertEqual((status, scope["root_path"], scope["path"]), (200, "/api", "/scope"))
            status, echo = self.json(server, "/old/echo", "POST")
            self.assertEqual((status, echo["script"]), (200, "/old"))
            self.assertEqual(self.json(server, "/elsewhere")[0], 404)
        finally:
            self.assertEqual(server.stop(), 0, server.log()[-2000:])

    def test_reload_restarts_the_server_when_a_source_changes(self):
        folder = os.path.join(WORK, "reloaded")
        os.makedirs(folder, exist_ok=True)
        source = os.path.join(folder, "reloaded_app.py")

        def write(version):
            # whole, then renamed: the reloader, polling, never imports a file half written
            with open(source + ".tmp", "w") as f:
                f.write("import turbo\napp = turbo.App()\n\n@app.get('/v')\n"
                        "def v():\n    return {'version': %d}\n" % version)
            os.utime(source + ".tmp", ns=(version * 10**9, version * 10**9))  # a new time, however fast
            os.replace(source + ".tmp", source)
        write(1)
        port = harness.free_port()
        server = harness.Server([PY, "-m", "turbo", "reloaded_app:app", "--reload", "--app-dir",
                                 folder, "--port", str(port)], env={"PORT": str(port)}, port=port)
        try:
            self.assertEqual(self.json(server, "/v"), (200, {"version": 1}))
            write(2)

            def answers_2():
                try:
                    return self.json(server, "/v") == (200, {"version": 2})
                except OSError:  # between the two servers
                    return False
            harness.harness.wait_until(answers_2, "the new source was never served", timeout=30)
        finally:
            self.assertEqual(server.stop(), 0, server.log()[-2000:])
        self.assertIn("the sources changed, restarting", server.log())
        with self.assertRaises(OSError):  # the child server stopped with the supervisor
            socket.create_connection(("127.0.0.1", port), timeout=2).close()

    def test_an_app_whose_startup_fails_is_not_served(self):
        """As uvicorn: lifespan.startup.failed ends the server with status 3, one process or
        several (whose supervisor then stops them all instead of starting others)."""
        for processes in ("1", "2"):
            done = subprocess.run([PY, "-m", "turbo", "starlette_app:failing_startup", "--port", "0",
                                   "--processes", processes], cwd=HOSTED, capture_output=True, text=True,
                                  env=dict(os.environ, PYTHONPATH=harness.ROOT), timeout=60)
            self.assertEqual(done.returncode, 3, done.stderr[-2000:])
            self.assertIn("ConnectionError: database unreachable", done.stderr)
            self.assertIn("turbo: application startup failed; exiting", done.stderr)

    def test_a_request_queued_while_the_app_fails_to_start_is_not_answered(self):
        """A lone process listens before its app starts: a request sent meanwhile is not
        answered by the app that then fails to start; its connection is closed."""
        gate = os.path.join(WORK, "startup-gate")
        server = turbo("starlette_app:gated_failing_startup", env={"GATE": gate})
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=20) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                open(gate, "w").close()
                try:
                    got = s.recv(4096)
                except ConnectionResetError:
                    got = b""
            self.assertEqual(got, b"")
            wait_until(lambda: not server.alive(), "the server did not exit")
            self.assertEqual(server.proc.returncode, 3, server.log()[-2000:])
        finally:
            os.unlink(gate)
            server.kill()

    def test_a_restart_whose_app_fails_to_start_leaves_the_old_one_serving(self):
        """SIGUSR2 once the app's startup fails (a bad deploy): the new generation exits 3
        without saying it serves, and the old one, one process or several, serves on."""
        for processes in ("1", "2"):
            flag = os.path.join(WORK, "fail-flag-" + processes)
            server = turbo("starlette_app:flagged_startup", "--processes", processes, env={"FAIL_FLAG": flag})
            try:
                wait_until(lambda: server.log().count("flagged_startup: started") == int(processes),
                           "the first generation did not start")
                self.assertEqual(exchange(server.port, "GET", "/")[0], 200)
                open(flag, "w").close()
                os.kill(server.proc.pid, signal.SIGUSR2)
                wait_until(lambda: "the new generation did not start; serving on" in server.log(),
                           "the old generation never heard of the new one's end", timeout=60)
                self.assertIn("ConnectionError: database unreachable", server.log())
                self.assertNotIn("drains", server.log())
                for _ in range(20):
                    try:
                        status = exchange(server.port, "GET", "/", headers={"Connection": "close"})[0]
                    except OSError as e:
                        status = repr(e)
                    self.assertEqual(status, 200, "%s processes: %s" % (processes, server.log()[-3000:]))
            finally:
                os.unlink(flag)
                self.assertEqual(server.stop(), 0, server.log()[-2000:])

    def test_lifespan_runs_per_process_and_its_state_reaches_requests(self):
        server = turbo("starlette_app:stateful")
        try:
            self.assertEqual(self.json(server, "/state"), (200, {"db": "connected"}))
        finally:
            self.assertEqual(server.stop(), 0, server.log()[-2000:])
        log = server.log()
        self.assertLess(log.index("starlette_app: started"), log.index("starlette_app: stopped"))

    def test_an_asgi_app_that_breaks_the_protocol_is_a_500_and_a_log_line(self):
        server = turbo("starlette_app:misbehaving")
        try:
            status, _, body, _ = exchange(server.port, "GET", "/")
            self.assertEqual((status, body), (500, b'{"detail":"Internal Server Error"}'))
            self.assertEqual(exchange(server.port, "GET", "/")[0], 500)  # and it goes on serving
        finally:
            self.assertEqual(server.stop(), 0, server.log()[-2000:])
        self.assertIn("ASGI app at /: sent http.response.body before http.response.start", server.log())

    def test_a_wsgi_iterable_that_fails_is_a_500_and_its_error_logged(self):
        server = turbo("flask_app:failing_iterable")
        try:
            self.assertEqual(exchange(server.port, "GET", "/")[:3:2], (500, b'{"detail":"Internal Server Error"}'))
            self.assertEqual(exchange(server.port, "GET", "/")[0], 500)  # and it goes on serving
        finally:
            self.assertEqual(server.stop(), 0, server.log()[-2000:])
        self.assertIn("ValueError: the iterable failed", server.log())

    def test_exc_info_after_the_body_began_raises_again(self):
        server = turbo("flask_app:late_exc_info")
        try:
            # The head held back for its length: a clean 500 instead.
            self.assertEqual(exchange(server.port, "GET", "/length")[:3:2],
                             (500, b'{"detail":"Internal Server Error"}'))
            with socket.create_connection(("127.0.0.1", server.port), timeout=20) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                got = b""
                while True:  # the stream is cut after its first part: no last chunk
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
            self.assertIn(b"\r\n\r\n5\r\nfirst\r\n", got)
            self.assertNotIn(b"second", got)
            self.assertFalse(got.endswith(b"0\r\n\r\n"), got)
        finally:
            self.assertEqual(server.stop(), 0, server.log()[-2000:])
        self.assertIn("ValueError: failed after the first part", server.log())
        self.assertNotIn("did not raise", server.log())

    def test_pathsend_sends_the_file_under_the_apps_head(self):
        server = turbo("starlette_app:pathsend")
        mine = open(os.path.join(HOSTED, "starlette_app.py"), "rb").read()
        try:
            status, headers, body, _ = exchange(server.port, "GET", "/starlette_app.py")
            self.assertEqual((status, body, headers.get("content-type"), headers.get("x-sent-by")),
                             (200, mine, "text/x-python", "pathsend"))
            status, headers, body, _ = exchange(server.port, "HEAD", "/starlette_app.py")
            self.assertEqual((status, body, headers.get("content-length")), (200, b"", str(len(mine))))
            self.assertEqual(exchange(server.port, "GET", "/missing.py")[0], 500)
            with socket.create_connection(("127.0.0.1", server.port), timeout=20) as s:
                s.sendall(b"GET /starlette_app.py?after-a-part HTTP/1.1\r\nHost: x\r\n\r\n")
                got = b""
                while True:  # the part, then the connection is closed: no last chunk
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got += chunk
            self.assertTrue(got.endswith(b"\r\n\r\n6\r\na part\r\n"), got[-200:])
        finally:
            self.assertEqual(server.stop(), 0, server.log()[-2000:])
        self.assertIn("missing.py as a body: No such file or directory", server.log())
        self.assertIn("sent http.response.pathsend after body parts", server.log())

    def test_restart_under_load_with_processes(self):
        """SIGUSR2 to python3 -m turbo --processes 2, three times under a stream of requests on
        fresh connections: each new generation (supervisor and processes) takes the sockets
        over, the old drains; no request fails, no old process stays."""
        server = turbo("starlette_app:bare", "--processes", "2")
        failures, served, running = [], [0], [True]

        def load():
            while running[0]:
                try:
                    status, _, body, _ = exchange(server.port, "GET", "/", headers={"Connection": "close"})
                    if (status, body) == (200, b"bare"):
                        served[0] += 1
                    else:
                        failures.append(status)
                except (OSError, http.client.HTTPException) as e:
                    failures.append(repr(e))

        def family(pid):  # the supervisor's worker processes
            found = []
            for entry in os.listdir("/proc"):
                try:
                    with open("/proc/%s/stat" % entry) as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                    if entry.isdigit() and int(fields[1]) == pid and fields[0] != "Z":
                        found.append(int(entry))
                except OSError:
                    pass
            return found

        loader = threading.Thread(target=load, daemon=True)
        loader.start()
        pid = server.proc.pid
        try:
            for n in range(3):
                old_family, before = [pid] + family(pid), served[0]
                os.kill(pid, signal.SIGUSR2)
                deadline = time.monotonic() + 60
                pattern = r"restart: pid (\d+) serves; pid %d drains" % pid
                while not re.search(pattern, server.log()):
                    self.assertTrue(time.monotonic() < deadline, "restart %d: no new generation" % n)
                    time.sleep(0.02)
                pid = int(re.search(pattern, server.log()).group(1))
                while not all(process_gone(p) for p in old_family) or served[0] < before + 20:
                    self.assertTrue(time.monotonic() < deadline, "restart %d: %r still running" % (
                        n, [p for p in old_family if not process_gone(p)]))
                    time.sleep(0.02)
            running[0] = False
            loader.join(10)
            self.assertEqual(failures, [], "of %d" % served[0])
        finally:
            running[0] = False
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 15
            while not process_gone(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            self.assertTrue(process_gone(pid), "the last generation did not stop")
            server.kill()

    def test_a_wsgi_generator_is_streamed_part_by_part(self):
        self.check_streamed("flask_app:gated", "wsgi-gate")

    def test_a_wsgi_write_is_sent_at_once(self):
        self.check_streamed("flask_app:written", "wsgi-written")

    def test_a_big_wsgi_body_of_a_stated_length_is_not_held_whole(self):
        server = turbo("flask_app:big_stated")
        gate = os.path.join(WORK, "wsgi-big-gate")
        try:
            with get_on(server.port, gate) as s:  # 1 MiB before the app goes on: no gate needed
                got = receive_until(s, b"", lambda got: got.count(b"a") >= 1 << 20, "the first MiB")
                self.assertIn(b"Content-Length: 4194304\r\n", got)
                open(gate, "w").close()
                body = receive_until(s, got.split(b"\r\n\r\n", 1)[1], lambda body: len(body) >= 4 << 20, "the rest")
                self.assertEqual(body, b"a" * (2 << 20) + b"b" * (2 << 20))
        finally:
            self.assertEqual(server.stop(), 0, server.log()[-2000:])

    def test_a_wsgi_body_past_its_content_length_is_cut_there_and_said(self):
        server = turbo("flask_app:too_long")
        try:
            status, _, body, _ = exchange(server.port, "GET", "/")
            self.assertEqual((status, body), (200, b"".join(bytes([65 + i]) * 10000 for i in range(10))))
            wait_for(lambda: "the body went past its Content-Length" in server.log(), "no log line")
        finally:
            self.assertEqual(server.stop(), 0, server.log()[-2000:])

    def test_a_close_that_raises_after_the_body_is_logged_and_the_answer_stands(self):
        server = turbo("flask_app:close_fails")
        try:
            self.assertEqual(exchange(server.port, "GET", "/")[:3:2], (200, b"whole"))
            wait_for(lambda: "close failed after the body" in server.log(), "no log line")
        finally:
            self.assertEqual(server.stop(), 0, server.log()[-2000:])

    def test_an_asgi_body_with_more_body_is_streamed_part_by_part(self):
        self.check_streamed("starlette_app:gated", "asgi-gate")

    def check_streamed(self, spec, name):
        server = turbo(spec)
        gate = os.path.join(WORK, name)
        try:
            with get_on(server.port, gate) as s:  # the first part before the app goes on: no gate needed
                got = receive_until(s, b"", lambda got: b"first\n" in got, "the first part")
                self.assertIn(b"Transfer-Encoding: chunked", got)
                self.assertNotIn(b"second", got)  # a buffered body would bring both at once
                open(gate, "w").close()
                got = receive_until(s, got, lambda got: got.endswith(b"0\r\n\r\n"), "the end")
                self.assertIn(b"second\n", got)
        finally:
            self.assertEqual(server.stop(), 0, server.log()[-2000:])

    def test_an_app_waiting_on_receive_hears_the_client_leave(self):
        server = turbo("starlette_app:watching")
        marker = os.path.join(WORK, "left-before-answer")
        try:
            with get_on(server.port, marker):
                wait_for(lambda: os.path.exists(marker + ".waiting"), "the app never waited")
            wait_for(lambda: os.path.exists(marker), "the app never heard the client leave")
            with open(marker) as f:
                self.assertEqual(f.read(), "http.disconnect")
        finally:
            self.assertEqual(server.stop(), 0, server.log()[-2000:])

    def test_a_stream_stops_when_the_client_leaves(self):
        server = turbo("starlette_app:streaming")
        marker = os.path.join(WORK, "left-mid-stream")
        try:
            with get_on(server.port, marker) as s:
                receive_until(s, b"", lambda got: got.count(b"part") >= 3, "mid-stream")
            wait_for(lambda: os.path.exists(marker), "the stream went on after the client left: " + server.log()[-3000:])
        finally:
            self.assertEqual(server.stop(), 0, server.log()[-2000:])

    def test_a_fastapi_websocket_that_raises_closes_1011_and_logs_and_the_server_goes_on(self):
        server = turbo("fastapi_app:app")
        try:
            ws = harness.WebSocket(server.port, "/ws-boom")
            ws.send("go")
            with self.assertRaises(harness.Closed) as caught:
                ws.recv()
            self.assertEqual(caught.exception.code, 1011)  # uvicorn 0.17 drops the connection: 1006
            self.assertEqual(exchange(server.port, "GET", "/items/1")[0], 200)
            wait_for(lambda: "the WebSocket endpoint failed" in server.log(), "no log line")
        finally:
            self.assertEqual(server.stop(), 0, server.log()[-2000:])
        self.assertIn("RuntimeError: the WebSocket endpoint failed", server.log())

    def test_the_command_line_refuses_what_it_cannot_do(self):
        for argv, text in ((["nosuchmodule:app"], "cannot import"),
                           (["fastapi_app:nothing"], "has no attribute"),
                           (["fastapi_app"], "module:attribute")):
            out = subprocess.run([PY, "-m", "turbo", *argv], cwd=HOSTED, capture_output=True,
                                 text=True, timeout=60, env=dict(os.environ, PYTHONPATH=harness.ROOT))
            self.assertNotEqual(out.returncode, 0, argv)
            self.assertIn(text, out.stderr, argv)


def get_on(port, marker):
    """A connection that has sent GET /?marker (the file an app waits for, or writes)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=float(os.environ.get("EXCHANGE_TIMEOUT", 20)))
    sock.sendall(b"GET /?%s HTTP/1.1\r\nHost: x\r\n\r\n" % marker.encode())
    return sock


def receive_until(sock, got, done, what):
    """got and what sock sends after it, until done(all of it); fails with what if it closes first."""
    while not done(got):
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("%s: closed after %d bytes: %r" % (what, len(got), got[-200:]))
        got += chunk
    return got


def wait_for(condition, what, timeout=float(os.environ.get("EXCHANGE_TIMEOUT", 20))):
    """Polls condition until it holds; fails with what after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(what)
        time.sleep(0.01)


def main():
    probe = subprocess.run([PY, "-c", "import sys, fastapi, starlette, flask, django, uvicorn, "
                            "gunicorn, turbo; print(sys.version.split()[0], fastapi.__version__, "
                            "starlette.__version__, flask.__version__, django.__version__)"],
                           capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=harness.ROOT))
    if probe.returncode != 0:
        print("test_hosting: %s cannot import the frameworks or turbo (apt-get install "
              "python3-fastapi python3-starlette python3-flask python3-django python3-uvicorn "
              "gunicorn; make): %s" % (PY, probe.stderr.strip()[-400:]))
        print("0 passed, 1 failed")
        sys.exit(1)
    print("interpreter %s: Python, FastAPI, Starlette, Flask, Django = %s" % (PY, probe.stdout.strip()))
    try:
        harness.run([Parity, TurboOnly])
    finally:
        CLEANUP()


if __name__ == "__main__":
    main()
