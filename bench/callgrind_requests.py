"""Instructions per request of one kind of request, under callgrind, for
comparing two builds: the server runs with one thread, answers 50 requests
on one keep-alive connection, its counts are dumped and zeroed
(callgrind_control -d), it answers N more, and they are dumped again. Prints
the busiest thread's count per request (the event loop's: exact, run after
run) and all threads' (the monitor's 1 ms ticks add some, more under
valgrind's slow clock).

    python3 bench/callgrind_requests.py [--path /json] [--count 2000]
        [--headers] [--vary] [--echo] [--port 8300] -- build/hello

--headers adds run.py's browser headers; --vary adds an X-Request-Id that
changes with every request (a head that is never the same twice); --echo
makes each request a POST of run.py's 1 KiB JSON document (its echo case)."""

import argparse
import glob
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import BROWSER_HEADERS, ECHO_BODY, parse_response  # noqa: E402


def dump(pid, scratch, before):
    """Dumps pid's counts; returns the files that dump wrote."""
    subprocess.run(["callgrind_control", "-d", str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = set(glob.glob(os.path.join(scratch, "cg.*"))) - before
        if new:
            time.sleep(0.5)  # one file per thread: let them all be written
            return set(glob.glob(os.path.join(scratch, "cg.*"))) - before
        time.sleep(0.1)
    raise RuntimeError("callgrind wrote no dump")


def total(path):
    with open(path) as f:
        for line in f:
            match = re.match(r"(summary|totals): (\d+)", line)
            if match:
                return int(match.group(2))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--path", default="/")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--headers", action="store_true")
    ap.add_argument("--vary", action="store_true")
    ap.add_argument("--echo", action="store_true")
    ap.add_argument("--port", type=int, default=8300)
    ap.add_argument("server", nargs="+")
    args = ap.parse_args()

    extra = "".join(f"{name}: {value}\r\n" for name, value in BROWSER_HEADERS) if args.headers else ""
    method, body = "GET", b""
    if args.echo:
        method, body = "POST", ECHO_BODY
        extra += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    scratch = tempfile.mkdtemp(prefix="cg-requests-")
    env = dict(os.environ, PORT=str(args.port), TURBO_THREADS="1", TURBO_PROCESSES="0")
    server = subprocess.Popen(["valgrind", "--tool=callgrind", "--separate-threads=yes",
                               "--callgrind-out-file=" + os.path.join(scratch, "cg.%p")] + args.server,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                sock = socket.create_connection(("127.0.0.1", args.port))
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("the server did not listen")
        sent = 0

        def answer(n):
            nonlocal sent
            for _ in range(n):
                sent += 1
                vary = f"X-Request-Id: {sent:08d}\r\n" if args.vary else ""
                sock.sendall(f"{method} {args.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}{vary}\r\n".encode() + body)
                buf, parsed = b"", None
                while not parsed:
                    data = sock.recv(65536)
                    if not data:
                        raise RuntimeError("the server closed the connection")
                    buf += data
                    parsed = parse_response(buf)
                if parsed[1] != 200:
                    raise RuntimeError(f"{method} {args.path} answered {parsed[1]}")

        answer(50)
        dump(server.pid, scratch, set(glob.glob(os.path.join(scratch, "cg.*"))))
        answer(args.count)
        counts = [total(f) for f in dump(server.pid, scratch, set(glob.glob(os.path.join(scratch, "cg.*"))))]
        sock.close()
    finally:
        server.terminate()
        server.wait()
    print(f"{max(counts) / args.count:,.1f} instructions per request on the busiest thread, "
          f"{sum(counts) / args.count:,.1f} on all")


if __name__ == "__main__":
    main()
