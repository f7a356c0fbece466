#!/usr/bin/env python3
"""Two turbo instances behind Debian's nginx, configured by examples/deploy/nginx.conf as it is
(ports substituted), under a steady stream of GETs: one instance shut down gracefully (its
health path says draining while it goes on serving, then it drains), then started again, then
the other killed with SIGKILL. No request may fail through nginx.

Run: python3 tests/test_deploy.py build/hello (one scenario: -k is accepted and ignored)"""
import http.client
import os
import re
import shutil
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def instance(binary, port):
    return harness.Server(binary, {"PORT": str(port), "TURBO_THREADS": "1", "TURBO_HEALTH_PATH": "/healthz",
                                   "TURBO_DRAIN_DELAY_MS": "1000", "TURBO_ACCESS_LOG": "1"})


def serves(server, timeout=20):
    """Waits until nginx sends the instance requests (its access log shows them): an instance
    nginx saw fail is left alone for fail_timeout (5 s)."""
    line = re.compile(r'"GET / HTTP/1\.[01]" 200 ')  # the Common Log Format's
    deadline = time.monotonic() + timeout
    while not line.search(server.stderr()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return bool(line.search(server.stderr()))


def start_nginx(ports, front):
    with open(os.path.join(ROOT, "examples", "deploy", "nginx.conf")) as f:
        conf = f.read()
    conf = conf.replace("127.0.0.1:8081", "127.0.0.1:%d" % ports[0])
    conf = conf.replace("127.0.0.1:8082", "127.0.0.1:%d" % ports[1])
    conf = re.sub(r"listen 8080;", "listen 127.0.0.1:%d;" % front, conf)
    return harness.nginx(conf, front)


class Load(threading.Thread):
    """GETs through nginx, one after another on a keep-alive connection, until stopped."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.ok, self.failures, self.running = port, 0, [], True

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while self.running:
            try:
                conn.request("GET", "/")
                r = conn.getresponse()
                body = r.read()
                if r.status == 200 and body == b"Hello, World!":
                    self.ok += 1
                else:
                    self.failures.append((r.status, body[:100]))
            except (OSError, http.client.HTTPException) as e:
                self.failures.append(repr(e))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.close()

    def served_more(self, n, timeout=20):
        """Waits until n more requests have succeeded (or timeout)."""
        target, deadline = self.ok + n, time.monotonic() + timeout
        while self.ok < target and time.monotonic() < deadline and self.is_alive():
            time.sleep(0.01)
        return self.ok >= target


def wait_exit(server, timeout=15):
    deadline = time.monotonic() + timeout
    while server.alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    return not server.alive()


def main(argv):
    binary = argv[1] if len(argv) > 1 and not argv[1].startswith("-") else "build/hello"
    passed = failed = 0
    ports = [harness.free_port(), harness.free_port()]
    nginx = start_nginx(ports, harness.free_port())
    if not nginx:
        print("nginx is not installed (apt-get install nginx; .ci/run does)")
        print("0 passed, 1 failed")
        return 1
    a, b = instance(binary, ports[0]), instance(binary, ports[1])
    load = Load(nginx.port)
    load.start()
    try:
        steps = []
        steps.append(("traffic flows through nginx", load.served_more(200)))
        a.signal(signal.SIGTERM)  # health says draining for 1 s while it serves; then it drains
        steps.append(("the instance shut down gracefully exits", wait_exit(a)))
        steps.append(("the other one takes the traffic", load.served_more(200)))
        steps.append(("it exited cleanly", a.stop() is None or a.proc.returncode == 0))
        a = instance(binary, ports[0])
        steps.append(("nginx sends the restarted instance requests again", serves(a)))
        b.kill()  # SIGKILL: in-flight GETs are retried by nginx on the other instance
        steps.append(("after a SIGKILL, traffic goes on", load.served_more(300)))
        load.running = False
        load.join(15)
        steps.append(("no request failed through nginx (%d served)" % load.ok, not load.failures))
        for name, ok in steps:
            print(("ok   " if ok else "FAIL ") + name + ("" if ok else ": %r" % load.failures[:5]))
            passed, failed = passed + ok, failed + (not ok)
    finally:
        load.running = False
        nginx.kill()
        shutil.rmtree(nginx.prefix, ignore_errors=True)
        for server in (a, b):
            if server.alive():
                server.kill()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
