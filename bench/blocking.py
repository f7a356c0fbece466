#!/usr/bin/env python3
"""bench/blocking.py: real handlers block; does anything else wait for them?

    python3 bench/blocking.py            full run (about 2 minutes)
    python3 bench/blocking.py --quick    shorter runs

Four rows, each side by side with FastAPI + uvicorn in the same run (one
process each, server pinned to CPU 0, clients to CPU 1):
  a. a sync route that sleeps 10 ms (a database call), wrk -c64: requests/s;
  b. the native route's latency while 32 connections drive that route;
  e. the same while 160 connections drive it, more than turbo's 64 spare
     threads: the requests over wait for a thread, the loop must not;
  c. the native route on 40 fresh connections while a Python handler keeps
     the GIL busy for 2 s: the slowest answer;
  d. the same 10 ms route written in C (examples/handlers.c slow_io) on one
     event loop: requests/s against what the spare threads allow.
Writes bench/results/blocking.{json,md}. Uses bench/run.py's helpers.
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402

TURBO_ENV = {"TURBO_THREADS": "1", "TURBO_PROCESSES": "1", "PYTHONPATH": bench.ROOT,
             "PYTHONUNBUFFERED": "1"}
SPARE_THREADS = 64  # turbo's default blocking_threads


def servers(pythons):
    uvicorn = ["--loop", "uvloop", "--http", "httptools", "--workers", "1", "--no-access-log",
               "--log-level", "warning", "--backlog", "4096"]
    return {
        "turbo-py": bench.Server(
            "turbo-py", "turbo Python (bench/peers/turbo_blocking.py)",
            lambda port, _: [pythons["turbo"], os.path.join(bench.PEERS, "turbo_blocking.py")],
            set(), env=TURBO_ENV),
        "fastapi": bench.Server(
            "fastapi", "FastAPI + uvicorn (bench/peers/fastapi_blocking.py)",
            lambda port, _: [pythons["fastapi"], "-m", "uvicorn", "fastapi_blocking:app",
                             "--host", "127.0.0.1", "--port", str(port), *uvicorn],
            set(), cwd=bench.PEERS),
        "turbo-c": bench.Server(
            "turbo-c", "turbo C (build/native_server, one event loop)",
            lambda port, _: [os.path.join(bench.BUILD, "native_server")], set(), env=TURBO_ENV),
    }


def wrk(port, path, connections, seconds, scratch):
    """wrk's result line (requests, latency percentiles in µs, errors)."""
    script = os.path.join(scratch, "get_%d.lua" % connections)
    with open(script, "w") as f:
        f.write("PATH_ = [==[%s]==]\n" % path)
        for name in ("get.lua", "report.lua"):
            with open(os.path.join(bench.WRK_DIR, name)) as g:
                f.write(g.read() + "\n")
    out = subprocess.run(["taskset", "-c", bench.CLIENT_CPU, "wrk", "-t1", "-c%d" % connections,
                          "-d%ds" % seconds, "--timeout", "5s", "-s", script,
                          "http://127.0.0.1:%d" % port], capture_output=True, text=True).stdout
    m = re.search(r"^BENCH (\{.*\})$", out, re.M)
    if not m:
        raise RuntimeError("wrk printed no result: " + out[-300:])
    got = json.loads(m.group(1))
    got["rps"] = got["requests"] / (got["duration_us"] / 1e6)
    got["errors"] = sum(got[k] for k in ("connect", "read", "write", "status", "timeout"))
    return got


def get_once(port, path, timeout=30):
    """Seconds to answer one GET on a fresh connection; raises on a bad answer."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n" % path.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    if not data.startswith(b"HTTP/1.1 200"):
        raise RuntimeError("%s answered %r" % (path, data[:80]))
    return time.monotonic() - started


def started(server, scratch):
    running = server.start(scratch)
    problem = running.wait_ready(server.ready_timeout)
    if problem:
        running.stop()
        raise RuntimeError("%s: %s" % (server.name, problem))
    get_once(running.port, "/io")  # warm: a turbo route learns it blocks on its first call
    return running


def row_a(running, seconds, scratch):
    got = wrk(running.port, "/io", 64, seconds, scratch)
    return {"rps": got["rps"], "errors": got["errors"], "p99_us": got["p99_us"]}


def row_b(running, seconds, scratch, connections=32):
    load = {}
    driver = threading.Thread(target=lambda: load.update(wrk(running.port, "/io", connections, seconds + 2,
                                                             scratch)))
    driver.start()
    time.sleep(1)
    got = wrk(running.port, "/health", 4, seconds, scratch)
    driver.join()
    return {"p50_us": got["p50_us"], "p99_us": got["p99_us"], "max_us": got["max_us"],
            "rps": got["rps"], "errors": got["errors"] + load.get("errors", 0),
            "blocking_rps": load.get("rps")}


def row_c(running):
    spinner = threading.Thread(target=get_once, args=(running.port, "/spin?s=2"))
    spinner.start()
    time.sleep(0.1)
    times = []
    for _ in range(10):  # 40 fresh connections, 4 at a time
        batch = []
        threads = [threading.Thread(target=lambda: batch.append(get_once(running.port, "/health")))
                   for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        times += batch
    spinner.join()
    times.sort()
    return {"slowest_ms": times[-1] * 1000, "p50_ms": times[len(times) // 2] * 1000,
            "over_100ms": sum(t > 0.1 for t in times), "count": len(times)}


def measure(names, pythons, seconds, scratch):
    results = {}
    for name in names:
        server = servers(pythons)[name]
        running = started(server, scratch)
        try:
            if name == "turbo-c":
                results[name] = {"d": row_a(running, seconds, scratch)}
            else:
                results[name] = {"a": row_a(running, seconds, scratch),
                                 "b": row_b(running, seconds, scratch), "c": row_c(running),
                                 "e": row_b(running, seconds, scratch, 2 * SPARE_THREADS + 32)}
        finally:
            running.stop()
        bench.log("  %s: %s" % (name, json.dumps(results[name])))
    return results


def markdown(results, seconds):
    t, f, c = results["turbo-py"], results["fastapi"], results["turbo-c"]["d"]
    pool = SPARE_THREADS / 0.010
    lines = [
        "| blocking handlers (one process) | turbo | FastAPI + uvicorn | target |",
        "|---|---:|---:|---|",
        "| a. `def io(): time.sleep(0.01)`, 64 connections: requests/s | %.0f | %.0f | turbo >= FastAPI |"
        % (t["a"]["rps"], f["a"]["rps"]),
        "| b. native `/health` while 32 connections drive `/io`: p50 / p99 | %.2f / %.2f ms | %.2f / %.2f ms (async route) | p99 <= 2 ms |"
        % (t["b"]["p50_us"] / 1000, t["b"]["p99_us"] / 1000, f["b"]["p50_us"] / 1000,
           f["b"]["p99_us"] / 1000),
        "| c. native `/health`, 40 fresh connections, while a handler spins 2 s: slowest (p50) | %.1f ms (%.1f) | %.1f ms (%.1f) | <= 20 ms |"
        % (t["c"]["slowest_ms"], t["c"]["p50_ms"], f["c"]["slowest_ms"], f["c"]["p50_ms"]),
        "| d. the 10 ms route in C, one event loop, 64 connections: requests/s | %.0f (%.2fx of %d spare threads / 10 ms) | | >= 0.9x |"
        % (c["rps"], c["rps"] / pool, SPARE_THREADS),
        "| e. native `/health` while %d connections drive `/io` (more than the spare threads): p50 / p99 | %.2f / %.2f ms | %.2f / %.2f ms (async route) | p99 <= 2 ms |"
        % (2 * SPARE_THREADS + 32, t["e"]["p50_us"] / 1000, t["e"]["p99_us"] / 1000, f["e"]["p50_us"] / 1000,
           f["e"]["p99_us"] / 1000),
        "",
        "wrk -t1, %d s per run; errors: turbo %d, FastAPI %d." % (
            seconds, t["a"]["errors"] + t["b"]["errors"] + t["e"]["errors"] + c["errors"],
            f["a"]["errors"] + f["b"]["errors"] + f["e"]["errors"]),
    ]
    return "\n".join(lines) + "\n"


def main():
    args, seconds = bench.side_script(__doc__)
    pythons = {
        "turbo": bench.python_with(["turbo"], bench.PYTHONS),
        "fastapi": bench.python_with(["fastapi", "uvicorn", "uvloop", "httptools"],
                                     ["/usr/bin/python3", *bench.PYTHONS]),
    }
    if not pythons["turbo"] or not pythons["fastapi"]:
        sys.exit("bench/blocking.py: needs the turbo module (make) and FastAPI, uvicorn, uvloop, "
                 "httptools (make bench installs them)")
    os.sched_setaffinity(0, {int(bench.CLIENT_CPU)})
    scratch = tempfile.mkdtemp(prefix="turbo-blocking-")
    bench.log("blocking handlers:")
    results = measure(["turbo-py", "fastapi", "turbo-c"], pythons, seconds, scratch)
    results["date"] = time.strftime("%Y-%m-%d %H:%M %Z")
    results["seconds"] = seconds
    return bench.side_results(args.out, "blocking", results, markdown(results, seconds))


if __name__ == "__main__":
    sys.exit(main())
