#!/usr/bin/env python3
"""Hostile clients and resource exhaustion, over real sockets on 127.0.0.1:
slowloris, a reader that never reads, clients vanishing mid-request and
mid-response, a connection flood past a low file-descriptor limit, and
10,000 concurrent keep-alive connections.

    python3 tests/test_hostile.py build/hello [name-substring ...]

Each test starts its own server (examples/hello.c) with the knobs it needs
and stops it with SIGTERM: an exit status other than 0, or a sanitizer
report, fails the test. Ends with `N passed, N failed`; exits 1 on failure."""

import os
import resource
import selectors
import signal
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BadResponse, Conn, Server, Skip, TestFailure, check,  # noqa: E402
                     parse_response, short)

GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
HELLO = b"Hello, World!"
TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


# ---------------------------------------------------------------- helpers

def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    """utime + stime of the whole process (all threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def get_ok(port, timeout=2.0, path=b"/"):
    with Conn(port, timeout=timeout) as c:
        c.send(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        r = c.read_response()
        check(r.status == 200, "status %d for GET %s" % (r.status, path.decode()))
        return r


def timed_get(port, timeout=2.0):
    t0 = time.monotonic()
    r = get_ok(port, timeout)
    check(r.body == HELLO, "body %s" % short(r.body))
    return time.monotonic() - t0


def rst_close(sock):
    """Close with a reset (SO_LINGER 0): the abrupt way a client vanishes."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def stderr_problems(srv):
    """stderr lines that are not turbo's own one-line logs."""
    return [l for l in srv.stderr().splitlines() if l.strip() and not l.startswith("turbo: ")]


def with_nofile(limit, fn):
    """Runs fn with this process's soft RLIMIT_NOFILE at limit (children
    started meanwhile inherit it), then restores it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    try:
        return fn()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class Client:
    """A non-blocking client socket driven by a selector."""

    def __init__(self, port, sel, out=b""):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.sock.connect_ex(("127.0.0.1", port))
        self.out, self.sent, self.buf = out, 0, bytearray()
        self.responses, self.closed, self.error = [], False, None
        self.sel = sel
        sel.register(self.sock, selectors.EVENT_WRITE if out else selectors.EVENT_READ, self)

    def send_more(self, data):
        self.out, self.sent = self.out[self.sent:] + data, 0
        self.sel.modify(self.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, self)

    def on_event(self, ev):
        if ev & selectors.EVENT_WRITE and self.sent < len(self.out):
            try:
                self.sent += self.sock.send(self.out[self.sent:])
            except BlockingIOError:
                pass
            except OSError as e:
                self.finish(e)
                return
            if self.sent == len(self.out):
                self.sel.modify(self.sock, selectors.EVENT_READ, self)
        if ev & selectors.EVENT_READ:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError as e:
                self.finish(e)
                return
            if not data:
                self.finish(None)
                return
            self.buf += data
            while True:
                try:
                    got = parse_response(self.buf)
                except BadResponse as e:
                    self.finish(e)
                    return
                if not got:
                    break
                self.responses.append((time.monotonic(), got[0]))
                del self.buf[:got[1]]

    def finish(self, error):
        self.closed, self.error = True, error
        if error is None and self.buf:
            try:
                got = parse_response(self.buf, eof=True)
                if got:
                    self.responses.append((time.monotonic(), got[0]))
            except BadResponse as e:
                self.error = e
        try:
            self.sel.unregister(self.sock)
        except (KeyError, ValueError):
            pass

    def close(self):
        if not self.closed:
            self.finish(None)
        self.sock.close()


def pump(sel, seconds):
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        for key, ev in sel.select(timeout=min(left, 0.05)):
            key.data.on_event(ev)


def stop_server(srv):
    problem = srv.stop()
    check(problem is None, problem)


# ---------------------------------------------------------------- slowloris

@test
def test_slowloris_is_cut_at_header_deadline_while_others_are_served(binary):
    """300 connections trickle a header a byte at a time. Ordinary clients
    keep getting answers within 250 ms; every trickler gets a 408 close to
    TURBO_HEADER_TIMEOUT_MS after it connected, and is closed."""
    n, timeout_s = 300, 2.0
    srv = Server(binary, {"TURBO_HEADER_TIMEOUT_MS": str(int(timeout_s * 1000))})
    sel = selectors.DefaultSelector()
    slow, latencies = [], []
    try:
        t0 = time.monotonic()
        for _ in range(n):
            slow.append(Client(srv.port, sel, b"G"))
        pending = b"ET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
        i = 0
        next_normal = time.monotonic()
        while time.monotonic() - t0 < timeout_s + 2.0:
            pump(sel, 0.1)
            for c in slow:          # one more byte each, ten times a second
                if not c.closed and not c.responses and c.sent == len(c.out):
                    c.send_more(pending[i:i + 1])
            i += 1
            if time.monotonic() >= next_normal:
                latencies.append(timed_get(srv.port, timeout=2.0))
                next_normal = time.monotonic() + 0.2
            if all(c.closed for c in slow):
                break
        got = [c for c in slow if c.responses]
        check(len(got) == n, "%d of %d trickling connections got no response" % (n - len(got), n))
        statuses = sorted(set(r.status for c in got for _, r in c.responses))
        check(statuses == [408], "trickling connections got statuses %s, want only 408" % statuses)
        when = sorted(c.responses[0][0] - t0 for c in got)
        check(when[0] >= timeout_s - 0.3, "first 408 after %.2fs, before the %.1fs deadline" % (when[0], timeout_s))
        check(when[-1] <= timeout_s + 1.5, "last 408 after %.2fs, deadline %.1fs" % (when[-1], timeout_s))
        pump(sel, 0.5)
        still = sum(1 for c in slow if not c.closed)
        check(still == 0, "%d trickling connections still open after their 408" % still)
        check(max(latencies) < 1.0, "an ordinary request took %.0f ms during the attack (%d requests)"
              % (max(latencies) * 1000, len(latencies)))
    finally:
        for c in slow:
            c.close()
        sel.close()
        stop_server(srv)


# ---------------------------------------------------------------- slow reader

@test
def test_slow_reader_keeps_memory_bounded_and_is_cut_at_write_timeout(binary):
    """A client pipelines 32 POST /echo of 1 MiB each (32 MiB of answers) and
    never reads. The server must stop reading from it instead of buffering
    the answers (its RSS grows by a few MiB at most), close the connection
    about TURBO_WRITE_TIMEOUT_MS after it last made progress, and go on
    serving others meanwhile and after."""
    write_timeout = 2.0
    srv = Server(binary, {"TURBO_WRITE_TIMEOUT_MS": str(int(write_timeout * 1000)),
                          "TURBO_THREADS": "1"})
    try:
        get_ok(srv.port)
        base = rss_kib(srv.proc.pid)
        body = b"x" * (1 << 20)
        request = (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                   b"Content-Length: %d\r\n\r\n" % len(body)) + body
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", srv.port))
        outcome = {}

        def send_all():
            try:
                for _ in range(32):
                    sock.sendall(request)
                outcome["sent"] = True
            except OSError as e:
                outcome["error"] = e
            outcome["at"] = time.monotonic()

        t0 = time.monotonic()
        sender = threading.Thread(target=send_all, daemon=True)
        sender.start()
        peak = base
        served_meanwhile = 0
        while sender.is_alive() and time.monotonic() - t0 < write_timeout + 8:
            peak = max(peak, rss_kib(srv.proc.pid))
            timed_get(srv.port)
            served_meanwhile += 1
            time.sleep(0.1)
        sender.join(1)
        check(not sender.is_alive(), "the stalled connection was still open %.0fs later"
              % (time.monotonic() - t0))
        check("sent" not in outcome, "the server read all 32 MiB of requests from a client that never reads")
        took = outcome["at"] - t0
        check(write_timeout - 0.5 <= took <= write_timeout + 4,
              "connection cut %.1fs after the stall began; write timeout %.1fs" % (took, write_timeout))
        growth = (peak - base) / 1024.0
        limit = 64 if "asan" in os.path.basename(binary) else 16
        check(growth < limit, "RSS grew %.1f MiB for one stalled reader (limit %d MiB)" % (growth, limit))
        check(served_meanwhile >= 5, "only %d ordinary requests served meanwhile" % served_meanwhile)
        sock.close()
        timed_get(srv.port)
    finally:
        stop_server(srv)


# ---------------------------------------------------------------- vanishing clients

@test
def test_clients_vanishing_mid_request_and_mid_response_do_no_harm(binary):
    """Clients close (FIN or RST) after part of a head, part of a body, part
    of a chunked body, and right after asking for large answers, pipelined
    or not. The server logs at most a line per event, keeps serving, and
    exits cleanly; no sanitizer report."""
    srv = Server(binary, {})
    partial = [
        b"GET /users/1 HTTP/1.1\r\nHo",
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"a" * 10,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 99\r\n\r\n",
        GET + b"GET /json HTTP/1.1\r\n",
    ]
    big = b"y" * (512 << 10)
    big_post = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(big) + big
    try:
        for round_ in range(10):
            for i, raw in enumerate(partial):
                s = socket.create_connection(("127.0.0.1", srv.port))
                s.sendall(raw)
                if (round_ + i) % 2:
                    rst_close(s)
                else:
                    s.close()
            for k in range(4):      # ask for large answers, read a little, vanish
                s = socket.create_connection(("127.0.0.1", srv.port))
                s.settimeout(1.0)
                try:
                    s.sendall(big_post * 2 if k % 2 else GET * 200)
                    if k >= 2:
                        s.recv(1000)
                except OSError:     # the server stopped reading: fine, vanish now
                    pass
                if k % 2:
                    rst_close(s)
                else:
                    s.close()
            check(timed_get(srv.port) < 1.0, "slow answer after round %d" % round_)
        time.sleep(0.3)
        check(srv.alive(), "server died")
        for _ in range(20):
            timed_get(srv.port)
        bad = stderr_problems(srv)
        check(not bad, "unexpected stderr: %s" % bad[:3])
    finally:
        stop_server(srv)


# ---------------------------------------------------------------- fd flood

@test
def test_connection_flood_past_fd_limit_recovers_without_busy_loop(binary):
    """With RLIMIT_NOFILE at 64, 300 clients connect at once and hold their
    connections. The server must not spin on a listener it cannot accept
    from (its CPU time over 3 s of saturation stays under 0.6 s), keep
    answering the connections it has, and serve new clients once the flood
    is gone."""
    env = {"TURBO_THREADS": "1", "TURBO_HEADER_TIMEOUT_MS": "30000",
           "TURBO_KEEPALIVE_TIMEOUT_MS": "30000"}
    srv = with_nofile(64, lambda: Server(binary, env))
    flood = []
    try:
        keep = Conn(srv.port, timeout=2)           # accepted before the flood
        keep.send(GET)
        check(keep.read_response().body == HELLO, "no answer before the flood")
        for _ in range(300):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", srv.port))
            flood.append(s)
        time.sleep(0.5)                            # the server fills its table
        cpu0, t0 = cpu_seconds(srv.proc.pid), time.monotonic()
        time.sleep(3.0)
        cpu = cpu_seconds(srv.proc.pid) - cpu0
        wall = time.monotonic() - t0
        check(cpu < 0.6, "server used %.2fs of CPU in %.1fs while out of descriptors (busy loop?)"
              % (cpu, wall))
        check(srv.alive(), "server died when out of descriptors")
        keep.send(GET)
        check(keep.read_response(timeout=2).body == HELLO,
              "a connection accepted before the flood went unanswered during it")
        keep.close()
        for s in flood:
            rst_close(s)
        flood = []
        deadline = time.monotonic() + 5
        while True:                                # the backlog drains, then new clients are served
            try:
                timed_get(srv.port, timeout=1.0)
                break
            except (TestFailure, OSError) as e:
                if time.monotonic() > deadline:
                    raise TestFailure("not serving 5s after the flood ended: %s" % e)
        for _ in range(20):
            check(timed_get(srv.port) < 0.5, "slow answer after the flood")
    finally:
        for s in flood:
            s.close()
        stop_server(srv)


@test
def test_shutdown_while_accepts_are_paused_does_not_spin(binary):
    """Out of descriptors, the server pauses accepting; a shutdown that
    starts then waits for a request still arriving (its drain lasts up to
    the shutdown timeout). The paused accept's time must not become a
    deadline always due: its CPU time over a second of that drain stays
    under 0.4 s, and it exits when the timeout is up."""
    env = {"TURBO_THREADS": "1", "TURBO_HEADER_TIMEOUT_MS": "30000", "TURBO_SHUTDOWN_TIMEOUT_MS": "3000"}
    srv = with_nofile(64, lambda: Server(binary, env))
    flood = []
    try:
        busy = Conn(srv.port, timeout=2)  # accepted first; its head never ends
        busy.send(b"GET / HTTP/1.1\r\n")
        deadline = time.monotonic() + 10
        while "pausing accepts" not in srv.stderr():
            check(time.monotonic() < deadline, "no accept paused for want of descriptors")
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", srv.port))
            flood.append(s)
            if len(flood) % 50 == 0:
                time.sleep(0.05)
        srv.signal(signal.SIGTERM)
        cpu0 = cpu_seconds(srv.proc.pid)
        time.sleep(1.0)  # a span to measure the drain's CPU over, well inside its 3 s
        cpu = cpu_seconds(srv.proc.pid) - cpu0
        check(cpu < 0.4, "server used %.2fs of CPU in a second of its drain (busy loop?)" % cpu)
        check(srv.wait(10) is not None, "still running 10 s after SIGTERM")
        busy.close()
    finally:
        for s in flood:
            s.close()
        srv.kill()


# ---------------------------------------------------------------- 10,000 connections

def open_many(port, n, sel, batch=500):
    """n keep-alive connections, each answered once; opened in batches so
    the listen backlog never overflows."""
    conns = []
    for start in range(0, n, batch):
        group_ = [Client(port, sel, b"GET /users/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
                  for i in range(start, min(n, start + batch))]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(c.responses or c.closed for c in group_):
            pump(sel, 0.05)
        conns += group_
    return conns


def check_round(conns, label, expect):
    failures = []
    for i, c in enumerate(conns):
        want = expect(i)
        if c.closed:
            failures.append("conn %d closed (%s)" % (i, c.error))
        elif not c.responses:
            failures.append("conn %d got no answer" % i)
        else:
            r = c.responses[-1][1]
            if r.status != 200 or r.body != want:
                failures.append("conn %d: %d %s" % (i, r.status, short(r.body, 40)))
    check(not failures, "%s: %d of %d failed, e.g. %s" % (label, len(failures), len(conns), failures[:3]))


def ten_thousand(binary, env):
    n = 10000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < n + 200:
        raise Skip("RLIMIT_NOFILE hard limit %d is below %d" % (hard, n + 200))
    resource.setrlimit(resource.RLIMIT_NOFILE, (n + 200 if hard == resource.RLIM_INFINITY
                                                else min(hard, 2 * n + 400), hard))
    base_env = {"TURBO_MAX_CONNECTIONS": str(2 * n), "TURBO_KEEPALIVE_TIMEOUT_MS": "60000"}
    base_env.update(env)
    srv = Server(binary, base_env)
    sel = selectors.DefaultSelector()
    conns = []
    try:
        base = rss_kib(srv.proc.pid)
        conns = open_many(srv.port, n, sel)
        check_round(conns, "first request", lambda i: b'{"id":"%d"}' % i)
        return srv, sel, conns, base
    except BaseException:
        for c in conns:
            c.close()
        sel.close()
        stop_server(srv)
        raise


@test
def test_10000_concurrent_keepalive_connections_are_held_and_served(binary):
    """10,000 connections open at once, each answered, all held open, then
    each asked again on the same connection."""
    srv, sel, conns, _ = ten_thousand(binary, {})
    try:
        for i, c in enumerate(conns):
            c.send_more(b"GET /users/again-%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(len(c.responses) >= 2 or c.closed for c in conns):
            pump(sel, 0.1)
        check_round(conns, "second request", lambda i: b'{"id":"again-%d"}' % i)
        late = Client(srv.port, sel, GET)        # and a newcomer on top of them
        conns.append(late)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and not late.responses:
            pump(sel, 0.05)
        check(late.responses and late.responses[0][1].body == HELLO,
              "a new connection went unanswered with 10,000 held")
    finally:
        for c in conns:
            c.close()
        sel.close()
        stop_server(srv)


@test
def test_10000_idle_connections_cost_under_2_kib_each(binary):
    """DESIGN.md's target: an idle keep-alive connection costs the server
    under 2 KiB. Measured as RSS growth over 10,000 of them (one worker, so
    no per-thread arenas blur it); only for a build without sanitizers."""
    name = os.path.basename(binary)
    if "asan" in name or "tsan" in name:
        raise Skip("RSS of a sanitizer build says nothing about turbo's own memory")
    srv, sel, conns, base = ten_thousand(binary, {"TURBO_THREADS": "1"})
    try:
        pump(sel, 0.3)
        per = (rss_kib(srv.proc.pid) - base) * 1024.0 / len(conns)
        check(per < 2048, "%.0f bytes of RSS per idle connection (target 2048)" % per)
        print("# %.0f bytes of server RSS per idle keep-alive connection" % per)
    finally:
        for c in conns:
            c.close()
        sel.close()
        stop_server(srv)


# ---------------------------------------------------------------- main

def main(argv):
    if len(argv) < 2:
        print("usage: %s SERVER_BINARY [name-substring ...]" % argv[0], file=sys.stderr)
        return 2
    binary = os.path.abspath(argv[1])
    filters = argv[2:]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    passed = failed = 0
    t_start = time.monotonic()
    for fn in TESTS:
        name = fn.__name__
        if filters and not any(s in name for s in filters):
            continue
        t0 = time.monotonic()
        try:
            fn(binary)
            passed += 1
            print("ok   %s (%.1fs)" % (name, time.monotonic() - t0))
        except Skip as e:
            print("SKIP %s: %s" % (name, e))
        except (TestFailure, BadResponse) as e:
            failed += 1
            print("FAIL %s: %s" % (name, e))
        except Exception as e:  # a crash in a test is a failure of that test
            failed += 1
            print("FAIL %s: %s: %s" % (name, type(e).__name__, e))
        sys.stdout.flush()
    print("# %s: %.1fs" % (os.path.basename(binary), time.monotonic() - t_start))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
