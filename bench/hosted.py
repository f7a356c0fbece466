#!/usr/bin/env python3
"""bench/hosted.py: existing apps on turbo against their usual servers, in one run.

    python3 bench/hosted.py            full run (about 7 minutes)
    python3 bench/hosted.py --quick    shorter runs

The apps of bench/peers/hosted_apps.py, one process each, the server pinned to CPU 0 and
wrk (-t1 -c64, keep-alive) to CPU 1: a bare ASGI app and a FastAPI async route on uvicorn
(uvloop, httptools) and on turbo; a bare WSGI app and a Flask route on gunicorn's sync worker
(which closes every connection) and on turbo. Reported: the server's CPU time per request and
requests/s, and the memory of the bare ASGI app's idle keep-alive connections. Writes
bench/results/hosted.{json,md}. Uses bench/run.py's helpers.
"""
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import blocking  # noqa: E402
import run as bench  # noqa: E402

ROWS = [  # (row, app, path, peer, the peer's app: the same app if None)
    ("bare ASGI app (two sends)", "bare_asgi", "/", "uvicorn", None),
    ("FastAPI async JSON route", "fastapi_app", "/json", "uvicorn", None),
    ("bare WSGI app", "bare_wsgi", "/", "gunicorn", None),
    ("Flask JSON route", "flask_app", "/json", "gunicorn", None),
    ("turbo.App vs FastAPI: sync JSON route, one http middleware", "turbo_mw", "/json", "uvicorn",
     "fastapi_mw"),
    ("turbo.App vs FastAPI: the same, CORSMiddleware", "turbo_cors", "/json", "uvicorn",
     "fastapi_cors"),
]
TARGETS = {"bare_asgi": 0.4, "fastapi_app": 0.8, "bare_wsgi": 0.15, "flask_app": 0.55,
           "turbo_mw": 0.2, "turbo_cors": None}
IDLE_CONNECTIONS = 2000
REPS = 3


def server(kind, app, python):
    module = "hosted_apps:" + app
    if kind == "turbo":
        argv = lambda port, _: [python, "-m", "turbo", module, "--port", str(port)]  # noqa: E731
        env = {"PYTHONPATH": bench.ROOT, "TURBO_THREADS": "1"}
    elif kind == "uvicorn":
        argv = lambda port, _: [python, "-m", "uvicorn", module, "--port", str(port),  # noqa: E731
                                "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                                "--log-level", "warning", "--backlog", "4096",
                                "--timeout-keep-alive", "600"]
        env = {"PYTHONPATH": bench.ROOT}  # hosted_apps.py imports turbo for the twins
    else:
        argv = lambda port, _: [python, "-m", "gunicorn", "--workers", "1", "--bind",  # noqa: E731
                                "127.0.0.1:%d" % port, "--backlog", "4096", "--log-level",
                                "warning", module]
        env = {"PYTHONPATH": bench.ROOT}
    return bench.Server("%s-%s" % (kind, app), "%s %s" % (kind, app), argv, set(),
                        cwd=bench.PEERS, env=env, idle_env={"TURBO_KEEPALIVE_TIMEOUT_MS": "600000"})


def measure(kind, app, path, python, seconds, scratch):
    running = server(kind, app, python).start(scratch)
    try:
        problem = running.wait_ready(30)
        if problem:
            raise RuntimeError("%s %s: %s" % (kind, app, problem))
        blocking.get_once(running.port, path)
        running.refresh_pids()
        cpu0 = bench.cpu_ticks(running.pids)
        got = blocking.wrk(running.port, path, 64, seconds, scratch)
        cpu1 = bench.cpu_ticks(running.pids)
    finally:
        running.stop()
    cpu_us = (cpu1 - cpu0) / bench.CLK_TCK * 1e6 / max(1, got["requests"])
    return {"rps": got["rps"], "cpu_us": cpu_us, "errors": got["errors"]}


def idle_memory(kind, python, scratch):
    """Bytes of RSS per idle keep-alive connection to the bare ASGI app, each having made one
    request (the kernel's socket buffers are in no one's RSS)."""
    running = server(kind, "bare_asgi", python).start(scratch, idle=True)
    sockets = []
    try:
        problem = running.wait_ready(30)
        if problem:
            raise RuntimeError("%s bare_asgi: %s" % (kind, problem))
        blocking.get_once(running.port, "/")
        running.refresh_pids()
        base_kb = bench.rss_kb(running.pids)
        sockets, problem = bench.open_idle(running.port, IDLE_CONNECTIONS)
        time.sleep(1.0)  # what the server does with them once answered is in the figure
        held_kb = bench.rss_kb(running.pids)
        alive = sum(1 for s in sockets if bench.still_open(s))
        if problem or alive < IDLE_CONNECTIONS:
            raise RuntimeError("%s bare_asgi: %d of %d idle connections open (%s)" % (
                kind, alive, IDLE_CONNECTIONS, problem))
        return (held_kb - base_kb) * 1024 / alive
    finally:
        for sock in sockets:
            sock.close()
        running.stop()


def markdown(results, idle, seconds, errors):
    lines = ["| hosted app (one process) | turbo: CPU µs/req (req/s) | peer: CPU µs/req (req/s) | "
             "turbo / peer | target |", "|---|---:|---:|---:|---|"]
    for row, app, _, peer, _ in ROWS:
        t, p = results[app]["turbo"], results[app][peer]
        lines.append("| %s | %.1f (%.0f) | %s %.1f (%.0f) | %.2fx | %s |" % (
            row, t["cpu_us"], t["rps"], peer, p["cpu_us"], p["rps"], t["cpu_us"] / p["cpu_us"],
            "<= %.2fx" % TARGETS[app] if TARGETS[app] else "none"))
    lines.append("| bare ASGI app: memory per idle keep-alive connection (%d) | %.0f B | uvicorn "
                 "%.0f B | %.2fx | <= 2 KiB |" % (IDLE_CONNECTIONS, idle["turbo"], idle["uvicorn"],
                                                   idle["turbo"] / idle["uvicorn"]))
    lines.append("")
    lines.append("Median of %d interleaved runs, wrk -t1 -c64, %d s each, keep-alive (gunicorn's sync "
                 "worker closes each connection); errors in all runs: %d." % (REPS, seconds, errors))
    return "\n".join(lines) + "\n"


def main():
    args, seconds = bench.side_script(__doc__)
    python = bench.python_with(["turbo", "fastapi", "flask", "uvicorn", "uvloop", "httptools",
                                "gunicorn"], ["/usr/bin/python3", *bench.PYTHONS])
    if not python:
        sys.exit("bench/hosted.py: needs one Python with turbo (make), FastAPI, Flask, uvicorn, "
                 "uvloop, httptools and gunicorn (make bench installs Debian's)")
    os.sched_setaffinity(0, {int(bench.CLIENT_CPU)})
    scratch = tempfile.mkdtemp(prefix="turbo-hosted-")
    results = {}
    bench.log("hosted apps:")
    runs = {}
    for rep in range(REPS):  # interleaved: turbo, its peer, the next row..., then again
        for _, app, path, peer, peer_app in ROWS:
            for kind in ("turbo", peer):
                served = peer_app if kind == peer and peer_app else app
                got = measure(kind, served, path, python, seconds, scratch)
                runs.setdefault(app, {}).setdefault(kind, []).append(got)
                bench.log("  %s on %s (run %d): %s" % (app, kind, rep + 1, json.dumps(got)))
    for app, kinds in runs.items():  # each figure the run of median CPU per request
        results[app] = {kind: sorted(got, key=lambda r: r["cpu_us"])[len(got) // 2]
                        for kind, got in kinds.items()}
    errors = sum(r["errors"] for kinds in runs.values() for got in kinds.values() for r in got)
    idle = {kind: idle_memory(kind, python, scratch) for kind in ("turbo", "uvicorn")}
    bench.log("  idle connections: %s" % json.dumps(idle))
    return bench.side_results(args.out, "hosted", {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"), "seconds": seconds, "python": python,
        "results": results, "idle_bytes": idle}, markdown(results, idle, seconds, errors))


if __name__ == "__main__":
    sys.exit(main())
