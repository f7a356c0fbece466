#!/usr/bin/env python3
"""Python handlers that fail in every way, against tests/py_apps/hostile_app.py:
exceptions of every kind (BaseException subclasses included), sync and
async; results that cannot be encoded; recursion; huge responses; a worker
process that dies mid-request. The server must answer each with a 500 (or
the right answer), never a hang or a crash, keep serving, replace a dead
worker process, and exit cleanly on SIGTERM.

    python3 tests/test_py_hostile.py

Ends with `N passed, N failed`; exits 1 on failure."""
import http.client
import json
import os
import re
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "py_apps"))
from pyharness import run, turbo_app  # noqa: E402

RAISES = ["value", "custom", "keyerror", "memory", "recursion", "systemexit", "keyboard",
          "generatorexit", "basebase", "badstr", "stopiteration"]
UNENCODABLE = ["object", "function", "cyclic", "nonstr_keys", "nan", "inf",
               "exception_object"]


def worker_pids(pid):
    out = []
    try:
        for task in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return sorted(out)


class Hostile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = turbo_app("hostile_app.py", {"APP_WORKERS": "2", "TURBO_WRITE_TIMEOUT_MS": "10000"})

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        if rc != 0:
            raise AssertionError("server exit status %r on SIGTERM; log tail:\n%s" % (rc, cls.srv.log()[-2000:]))

    def get(self, path, timeout=10):
        try:
            return self.srv.request("GET", path, timeout=timeout)
        except socket.timeout:
            self.fail("GET %s: no answer within %ds (a hang)" % (path, timeout))

    def assert_generic_500(self, path, timeout=10):
        status, headers, body = self.get(path, timeout)
        self.assertEqual(status, 500, "GET %s: %d %r" % (path, status, body[:200]))
        self.assertNotIn(b"Traceback", body, "GET %s leaks a traceback" % path)
        self.assertLess(len(body), 200, "GET %s: error body of %d bytes" % (path, len(body)))

    def assert_serving(self, times=6):
        for _ in range(times):  # new connections: both worker processes get some
            status, _, body = self.get("/ok", timeout=5)
            self.assertEqual(status, 200, body)

    def test_every_exception_kind_is_a_500_and_the_server_keeps_serving(self):
        """Exception subclasses and the BaseException ones alike (SystemExit,
        KeyboardInterrupt, GeneratorExit): a generic 500, no traceback."""
        for kind in RAISES:
            with self.subTest(kind=kind):
                self.assert_generic_500("/raise/" + kind, timeout=5)
                self.assert_serving(2)
        self.assert_serving()

    def test_runaway_recursion_is_a_500(self):
        for _ in range(3):
            self.assert_generic_500("/recursion")
        self.assert_serving()

    def test_results_that_cannot_be_json_are_500(self):
        for kind in UNENCODABLE:
            with self.subTest(kind=kind):
                self.assert_generic_500("/result/" + kind, timeout=5)
        self.assert_serving()

    def test_hard_results_are_500_or_correct(self):
        """A 100,000-deep list (the encoder must not overflow the C stack), an
        int beyond 64 bits, a lone surrogate, a set (FastAPI sends a list), a
        coroutine from a sync handler: each a 500 or a right answer."""
        checks = (("deep", None), ("bigint", lambda v: v == {"n": 2 ** 200}), ("surrogate", None),
                  ("set", lambda v: sorted(v) == [1, 2, 3]), ("coroutine_object", lambda v: v is None))
        for kind, check in checks:
            with self.subTest(kind=kind):
                status, _, body = self.get("/result/" + kind, timeout=10)
                if status == 200:
                    value = json.loads(body)
                    if check:
                        self.assertTrue(check(value), "%s: %r" % (kind, body[:100]))
                else:
                    self.assertEqual(status, 500, body[:200])
        self.assert_serving()

    def test_huge_responses_are_sent_whole(self):
        status, _, body = self.get("/huge/64", timeout=30)
        self.assertEqual(status, 200)
        self.assertEqual(len(body), (64 << 20) + 2, "64 MiB string as JSON")
        status, _, body = self.get("/hugelist/2000000", timeout=30)
        self.assertEqual(status, 200)
        self.assertEqual(len(json.loads(body)), 2000000)
        self.assert_serving()

    def test_a_reader_that_vanishes_during_a_huge_response_does_no_harm(self):
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", self.srv.port))
            s.sendall(b"GET /huge/32 HTTP/1.1\r\nHost: x\r\n\r\n")
            s.recv(1000)
            s.close()
        self.assert_serving()



class AsyncFailures(unittest.TestCase):
    """Each exception kind raised by an async handler, on a fresh one-process
    server: a 500, the asyncio loop still running for the next async request,
    and a clean exit."""

    def check_kind(self, kind):
        srv = turbo_app("hostile_app.py", {"APP_WORKERS": "1", "TURBO_SHUTDOWN_TIMEOUT_MS": "2000"})
        try:
            for path in ("/async/raise/" + kind, "/async/raise/value"):
                try:
                    status, _, body = srv.request("GET", path, timeout=4)
                except socket.timeout:
                    self.fail("GET %s: no answer within 4s (a hang)" % path)
                self.assertEqual(status, 500, "GET %s: %d %r" % (path, status, body[:100]))
        finally:
            rc = srv.stop(timeout=10)
        self.assertEqual(rc, 0, "exit status after /async/raise/%s; log tail:\n%s" % (kind, srv.log()[-800:]))


for _kind in RAISES:
    setattr(AsyncFailures, "test_async_handler_raising_%s_is_a_500" % _kind,
            lambda self, k=_kind: self.check_kind(k))


class NeverFinishing(unittest.TestCase):
    """SIGTERM while a handler never finishes, with one process and with two."""

    def shutdown_during(self, path, workers, timeout):
        """Leaves GET path in flight, sends SIGTERM: (exit status, log, what the client got)."""
        srv = turbo_app("hostile_app.py", {"APP_WORKERS": workers, "TURBO_SHUTDOWN_TIMEOUT_MS": "300"})
        try:
            with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as conn:
                conn.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: t\r\n\r\n")
                time.sleep(0.3)
                rc = srv.stop(timeout=timeout)
                try:
                    got = conn.recv(100)
                except ConnectionError:
                    got = b""
            return rc, srv.log(), got
        finally:
            srv.kill()

    def test_sigterm_does_not_wait_forever_for_an_async_handler(self):
        """An async handler awaiting for an hour: its connection is closed after
        TURBO_SHUTDOWN_TIMEOUT_MS, the task is cancelled (its finally block
        runs) and the server exits 0."""
        for workers in ("1", "2"):
            with self.subTest(workers=workers):
                rc, log, got = self.shutdown_during(b"/async/forever", workers, 8)
                self.assertEqual(rc, 0, "exit status %r; log tail:\n%s" % (rc, log[-800:]))
                self.assertEqual(got, b"", "the waiting client got an answer")
                self.assertIn("not waiting for 1 deferred", log)
                self.assertIn("/async/forever cleaned up", log, "the task was not cancelled")
                self.assertNotIn("Task was destroyed", log)

    def test_sigterm_ends_a_process_stuck_in_a_sync_handler(self):
        """A sync handler that never returns cannot be interrupted: past the
        grace period the process ends itself (status 1, a log line)."""
        for workers in ("1", "2"):
            with self.subTest(workers=workers):
                rc, log, _ = self.shutdown_during(b"/sync/forever", workers, 10)
                self.assertEqual(rc, 1, "exit status %r; log tail:\n%s" % (rc, log[-800:]))
                self.assertIn("still running", log)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"^VmRSS:\s+(\d+)", f.read(), re.M).group(1))


def nested(depth):
    value = []
    for _ in range(depth - 1):
        value = [value]
    return value


class Probed(unittest.TestCase):
    """What probing the binding found (a crash, a corrupt 200, 500s on valid
    input, rules that had drifted apart, memory kept, log floods), each
    checked on one serving process."""

    @classmethod
    def setUpClass(cls):
        cls.srv = turbo_app("hostile_app.py", {"APP_WORKERS": "1"})

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        if rc != 0:
            raise AssertionError("server exit status %r; log tail:\n%s" % (rc, cls.srv.log()[-2000:]))

    def call(self, method, path, body=None, headers=None):
        status, hdrs, raw = self.srv.request(method, path, body, headers, timeout=30)
        return status, hdrs, raw

    def test_a_conversion_that_never_ends_is_a_500_not_a_crash(self):
        status, _, body = self.call("GET", "/result/self_enum")
        self.assertEqual((status, body), (500, b'{"detail":"Internal Server Error"}'))
        self.assertIn("RecursionError", self.srv.log())
        self.assertEqual(self.call("GET", "/ok")[0], 200)

    def test_encoding_inside_an_encoding_gives_valid_json(self):
        status, _, body = self.call("GET", "/result/reentrant")
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body), {"k": [1, 2], "items": [{"meta": '{"k":[1,2]}'}]})

    def test_json_deeper_than_64_levels_is_served(self):
        for depth in (65, 500):
            doc = json.dumps(nested(depth)).encode()
            status, _, body = self.call("POST", "/echo/list", doc, {"Content-Type": "application/json"})
            self.assertEqual((status, body), (200, doc.replace(b" ", b"")))
        status, _, body = self.call("POST", "/need/dict", json.dumps(nested(65)).encode(),
                                    {"Content-Type": "application/json"})
        self.assertEqual(status, 422, body[:200])
        self.assertEqual(json.loads(body)["detail"][0]["input"], nested(65))
        status, _, body = self.call("GET", "/result/deep100")
        self.assertEqual((status, json.loads(body)), (200, nested(101)))

    def test_a_model_body_that_is_not_utf8_under_another_type_is_422(self):
        try:
            import pydantic  # noqa: F401
        except ImportError:
            self.skipTest("pydantic is not installed")
        status, _, body = self.call("POST", "/model", b"\xff\xfe", {"Content-Type": "text/plain"})
        self.assertEqual(status, 422, body)
        self.assertEqual(json.loads(body)["detail"][0]["loc"][0], "body")

    def test_a_media_type_with_cr_lf_is_refused_where_it_is_set(self):
        self.assertEqual(json.loads(self.call("GET", "/media/made")[2]), {"raised": "ValueError"})
        status, headers, body = self.call("GET", "/media/changed")
        self.assertEqual(status, 500)
        self.assertNotIn("set-cookie", headers)
        self.assertIn("control character", self.srv.log())

    def test_a_status_turbo_cannot_send_is_refused_when_written(self):
        for code in (101, 150, 600, 999):
            status, _, body = self.call("GET", "/status/%d" % code)
            self.assertIn("cannot be sent", json.loads(body)["response"], code)
        self.assertEqual(json.loads(self.call("GET", "/status/599")[2]), {"response": None})

    def test_memory_goes_back_after_big_answers(self):
        pid = self.srv.proc.pid
        self.assertEqual(self.call("GET", "/huge/1")[0], 200)
        before = rss_kib(pid)
        for _ in range(5):
            status, _, body = self.call("GET", "/huge/50")
            self.assertEqual((status, len(body)), (200, (50 << 20) + 2))
        grown = rss_kib(pid) - before
        self.assertLess(grown, 40 << 10, "RSS grew by %d KiB after five 50 MiB answers" % grown)

    def test_repeated_exceptions_log_one_line_each_after_the_first_ten(self):
        log_before = self.srv.log()
        for _ in range(30):
            self.assertEqual(self.call("GET", "/raise/custom")[0], 500)
        log = self.srv.log()[len(log_before):]
        self.assertEqual(log.count("Traceback"), 10, log[-3000:])
        self.assertEqual(log.count("(unhandled exception "), 20)
        self.assertIn("Boom: custom (unhandled exception 30 of this route)", log)


class DyingWorkers(unittest.TestCase):
    def test_a_worker_process_that_dies_is_replaced_and_shutdown_stays_clean(self):
        """os._exit, a segfault and SIGKILL in a handler: the client's
        connection ends, the supervisor starts a new process, the app is back
        to two worker processes serving, and SIGTERM still ends it with 0."""
        srv = turbo_app("hostile_app.py", {"APP_WORKERS": "2"})
        try:
            for how in ("exit", "segv", "kill"):
                with self.subTest(how=how):
                    self.die_and_recover(srv, how)
            self.assertIn("starting another", srv.log())
        finally:
            rc = srv.stop()
        self.assertEqual(rc, 0, "exit status on SIGTERM after replacing workers; log tail:\n%s"
                         % srv.log()[-600:])

    def die_and_recover(self, srv, how):
        parent = srv.proc.pid
        deadline = time.monotonic() + 10  # the listening line comes before the forks
        before = worker_pids(parent)
        while time.monotonic() < deadline and len(before) != 2:
            time.sleep(0.05)
            before = worker_pids(parent)
        self.assertEqual(len(before), 2, "worker processes before: %s" % before)
        try:
            status, _, _ = srv.request("GET", "/die/" + how, timeout=10)
            self.assertGreaterEqual(status, 500)
        except (ConnectionError, http.client.HTTPException, socket.timeout):
            pass  # the process serving it is gone: no answer is the expected outcome
        deadline = time.monotonic() + 10
        now = worker_pids(parent)
        while time.monotonic() < deadline and (len(now) != 2 or now == before):
            time.sleep(0.1)
            now = worker_pids(parent)
        self.assertEqual(len(now), 2, "worker processes after /die/%s: %s" % (how, now))
        self.assertNotEqual(now, before, "no process was replaced after /die/%s" % how)
        for _ in range(6):
            status, _, body = srv.request("GET", "/ok", timeout=5)
            self.assertEqual(status, 200, body)


if __name__ == "__main__":
    run([Hostile, Probed, AsyncFailures, NeverFinishing, DyingWorkers])
