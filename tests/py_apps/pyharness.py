"""Helpers shared by the Python suites (test_py, test_py_hostile, test_fastapi_parity,
test_hosting): start an app as a server process (tests/harness.py's Process, which runs
the C servers too), talk HTTP to it, run the tests."""
import base64
import hashlib
import http.client
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APPS = os.path.join(ROOT, "tests", "py_apps")
PYTHON = os.environ.get("PYTHON", sys.executable)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import harness  # noqa: E402  (its Process runs the C servers too)

# Native handlers for the tests: tid answers the id of the thread serving it;
# hold blocks until a request to let_go (10 s at most), as a native call waiting on I/O;
# holding answers whether one is blocked now.
TID_SOURCE = r"""
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "turbo.h"
void tid(turbo_req *req, turbo_res *res, void *user) {
    char text[32];
    (void)req; (void)user;
    snprintf(text, sizeof text, "%ld", (long)syscall(SYS_gettid));
    turbo_res_text(res, 200, text);
}
static int let_go_asked, holds;
void hold(turbo_req *req, turbo_res *res, void *user) {
    struct timespec ms = {0, 1000000};
    int i;
    (void)req; (void)user;
    __atomic_add_fetch(&holds, 1, __ATOMIC_RELEASE);
    for (i = 0; i < 10000 && !__atomic_load_n(&let_go_asked, __ATOMIC_ACQUIRE); i++) nanosleep(&ms, NULL);
    __atomic_sub_fetch(&holds, 1, __ATOMIC_RELEASE);
    turbo_res_text(res, 200, i < 10000 ? "let go" : "gave up");
}
void holding(turbo_req *req, turbo_res *res, void *user) {
    (void)req; (void)user;
    turbo_res_text(res, 200, __atomic_load_n(&holds, __ATOMIC_ACQUIRE) ? "yes" : "no");
}
void let_go(turbo_req *req, turbo_res *res, void *user) {
    (void)req; (void)user;
    __atomic_store_n(&let_go_asked, 1, __ATOMIC_RELEASE);
    turbo_res_text(res, 200, "ok");
}
"""


def build_native(workdir):
    """Builds examples/handlers.c and the tid handler as shared libraries in workdir."""
    cc = os.environ.get("CC", "cc")
    handlers = os.path.join(workdir, "handlers.so")
    tid_c, tid = os.path.join(workdir, "tid.c"), os.path.join(workdir, "tid.so")
    with open(tid_c, "w") as f:
        f.write(TID_SOURCE)
    for src, out in ((os.path.join(ROOT, "examples", "handlers.c"), handlers), (tid_c, tid)):
        subprocess.run([cc, "-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror", "-I", ROOT, src,
                        "-o", out], check=True)
    return handlers, tid


class Server(harness.Process):
    """A Python app (or a peer server) as a child process, with PYTHONPATH at the
    repository; port: a peer's, known in advance, else read from turbo's listening line."""

    def __init__(self, argv, env=None, cwd=None, port=None, ready_timeout=15):
        full_env = dict(os.environ, PORT="0", PYTHONPATH=ROOT)
        full_env.update(env or {})
        harness.Process.__init__(self, argv, full_env, cwd=cwd, port=port,
                                 startup_timeout=ready_timeout)

    def log(self):
        return self.stderr()

    def raw_log(self):
        return self.stderr().encode()

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Signals the server and returns its exit status ("sanitizer" if its log has a
        report, "timeout" if it did not end)."""
        if self.alive():
            self.proc.send_signal(sig)
        rc = self.wait(timeout)
        if rc is None:
            self.kill()
            return "timeout"
        return "sanitizer" if any(mark in self.log() for mark in harness.SANITIZER_MARKS) else rc

    def request(self, method, path, body=None, headers=None, timeout=10):
        """One request on a new connection: (status, headers with lower-case names, body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()


class Closed(Exception):
    """The server closed the WebSocket: code (1006: without a close frame) and reason."""

    def __init__(self, code, reason=""):
        super().__init__(code, reason)
        self.code, self.reason = code, reason


class WebSocket:
    """A WebSocket client on a raw socket (RFC 6455), for the suites' checks: the handshake
    (status, headers), masked frames out, whole messages in. recv() raises Closed at the
    server's close frame, which it answers."""

    def __init__(self, port, path, protocols=(), headers=(), timeout=20):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1:%d" % port, "Upgrade: websocket",
                 "Connection: Upgrade", "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"]
        lines += ["Sec-WebSocket-Protocol: " + ", ".join(protocols)] if protocols else []
        self.sock.sendall(("\r\n".join(lines + ["%s: %s" % h for h in headers]) + "\r\n\r\n").encode())
        self.buf = b""
        head = self._take_until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        self.status = int(head[0].split()[1])
        self.headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
        if self.status == 101:
            want = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
                                                 .encode()).digest()).decode()
            assert self.headers["sec-websocket-accept"] == want, self.headers
        else:
            self.body = self._take(int(self.headers.get("content-length", 0)))
            self.sock.close()

    def _fill(self):
        part = self.sock.recv(1 << 20)
        if not part:
            raise Closed(1006)
        self.buf += part

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _take_until(self, marker):
        while marker not in self.buf:
            self._fill()
        data, _, self.buf = self.buf.partition(marker)
        return data

    @staticmethod
    def frame(opcode, data):
        """A client's frame: masked."""
        n, mask = len(data), os.urandom(4)
        size = bytes([0x80 | n]) if n < 126 else struct.pack("!BH", 0xFE, n) if n < 65536 \
            else struct.pack("!BQ", 0xFF, n)
        masked = (int.from_bytes(data, "big") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big"))
        return bytes([0x80 | opcode]) + size + mask + masked.to_bytes(n, "big")

    def send(self, *messages):
        """Each str as a text message, bytes as a binary one, in one write."""
        self.sock.sendall(b"".join(self.frame(1, m.encode()) if isinstance(m, str) else self.frame(2, m)
                                   for m in messages))

    def recv(self):
        """The next message (str or bytes); pings are answered."""
        while True:
            first, second = self._take(2)
            n = second & 0x7F
            n = struct.unpack("!H", self._take(2))[0] if n == 126 else \
                struct.unpack("!Q", self._take(8))[0] if n == 127 else n
            opcode, data = first & 0x0F, self._take(n)
            if opcode == 9:
                self.sock.sendall(self.frame(10, data))
            elif opcode == 8:
                code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                self.sock.sendall(self.frame(8, data[:2]))
                raise Closed(code, data[2:].decode())
            elif opcode in (1, 2):
                return data.decode() if opcode == 1 else data

    def close(self, code=1000):
        """Starts the closing handshake: the code the server answers with."""
        self.sock.sendall(self.frame(8, struct.pack("!H", code)))
        try:
            while True:
                self.recv()
        except Closed as e:
            return e.code
        finally:
            self.sock.close()


def turbo_app(name, env=None, python=PYTHON):
    return Server([python, os.path.join(APPS, name)], env=env)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def name_filter(argv):
    """The words after -k on the command line: only tests whose name has one run."""
    return argv[argv.index("-k") + 1:] if "-k" in argv else []


def run(test_classes):
    """Runs the tests (python3 SUITE.py -k WORD... runs only those whose name has one of the
    words), prints `N passed, N failed` last, exits non-zero on failure. A skipped test (a
    package missing) counts as failed, and so does running no test at all."""
    words = name_filter(sys.argv)
    suite = unittest.TestSuite()
    for cls in test_classes:
        for test in unittest.defaultTestLoader.loadTestsFromTestCase(cls):
            if not words or any(w in test.id() for w in words):
                suite.addTest(test)
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    for test, reason in result.skipped:  # a test that cannot run is a failure, never a pass
        print(f"FAIL (could not run): {test.id()}: {reason}")
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses) + len(result.skipped)
    passed = result.testsRun - failed
    if not result.testsRun:
        print("FAIL: no test ran" + (" (none has any of: %s)" % " ".join(words) if words else ""))
        failed = 1
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


def workdir():
    d = tempfile.mkdtemp(prefix="turbo-test-")
    return d, lambda: shutil.rmtree(d, ignore_errors=True)
