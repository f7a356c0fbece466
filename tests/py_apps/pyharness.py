"""Helpers shared by the Python suites (test_py, test_py_hostile, test_fastapi_parity,
test_hosting): start an app as a server process (tests/harness.py's Process, which runs
the C servers too), talk HTTP to it, run the tests."""
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APPS = os.path.join(ROOT, "tests", "py_apps")
PYTHON = os.environ.get("PYTHON", sys.executable)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import harness  # noqa: E402  (its Process runs the C servers too)

# A native handler for the tests: answers the id of the thread serving it.
TID_SOURCE = r"""
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "turbo.h"
void tid(turbo_req *req, turbo_res *res, void *user) {
    char text[32];
    (void)req; (void)user;
    snprintf(text, sizeof text, "%ld", (long)syscall(SYS_gettid));
    turbo_res_text(res, 200, text);
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
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed or not result.testsRun else 0)


def workdir():
    d = tempfile.mkdtemp(prefix="turbo-test-")
    return d, lambda: shutil.rmtree(d, ignore_errors=True)
