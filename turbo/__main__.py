"""python3 -m turbo module:app: serves an existing app on turbo, as uvicorn and Granian do.

    python3 -m turbo main:app                          # FastAPI or Starlette (ASGI)
    python3 -m turbo wsgi:application --interface wsgi # Flask or Django (WSGI)
    python3 -m turbo main:app --processes 2 --port 8080
    python3 -m turbo main:app --reload                 # restarted when a .py file changes

The app may be an ASGI 3 app, a WSGI app or a turbo.App; which one is detected (--interface
forces it). An ASGI or WSGI app is mounted at "/" of a turbo.App, so it answers every request.
"""
import argparse
import contextlib
import ctypes
import importlib
import os
import signal
import subprocess
import sys
import time

from . import App, interface_of


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python3 -m turbo", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("app", help="module:attribute, e.g. main:app (module.attr.attr works too)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; "
                   "'::' for IPv6 and IPv4)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free one)")
    p.add_argument("--processes", "--workers", type=int, default=1, dest="processes",
                   help="worker processes (default 1)")
    p.add_argument("--threads", type=int, default=1, help="event loops per process (default 1)")
    p.add_argument("--blocking-threads", type=int, default=0,
                   help="spare threads per process for handlers that block (default 64)")
    p.add_argument("--interface", choices=("auto", "asgi", "wsgi", "turbo"), default="auto",
                   help="what the app is (default: detected)")
    p.add_argument("--loop", choices=("auto", "asyncio", "uvloop"),
                   help="the asyncio loop ASGI apps and async routes run on (default: "
                        "TURBO_LOOP, else uvloop when installed)")
    p.add_argument("--app-dir", default=".", help="directory put first on sys.path (default .)")
    p.add_argument("--factory", action="store_true",
                   help="the attribute is a function returning the app")
    p.add_argument("--root-path", default="", help="the prefix a proxy in front strips: the app's "
                   "root_path (ASGI) or SCRIPT_NAME (WSGI)")
    p.add_argument("--access-log", action="store_const", const="common",
                   help="a line per request, in the Common Log Format")
    p.add_argument("--access-log-format", choices=("common", "json"), dest="access_log",
                   help="a line per request in this format")
    p.add_argument("--access-log-path", help="append the access log there (default stderr; "
                   "SIGUSR1 opens it again, for logrotate)")
    p.add_argument("--forwarded-allow-ips", help="proxies whose X-Forwarded-Proto and "
                   "X-Forwarded-For are believed, comma-separated, or * (default "
                   "$FORWARDED_ALLOW_IPS, else 127.0.0.1)")
    p.add_argument("--metrics-path", help="serve Prometheus metrics there, e.g. /metrics")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"),
                   help="accepted for uvicorn's command lines; turbo logs errors and its "
                        "listening line")
    p.add_argument("--reload", action="store_true", help="serve from a child process, started "
                   "again when a .py file under --app-dir changes (for development)")
    return p.parse_args(argv)


def load(spec, app_dir, factory):
    module_name, _, attrs = spec.partition(":")
    if not module_name or not attrs:
        raise SystemExit("turbo: the app must be given as module:attribute, not %r" % spec)
    sys.path.insert(0, os.path.abspath(app_dir))
    try:
        obj = importlib.import_module(module_name)
    except ImportError as e:
        raise SystemExit("turbo: cannot import %r: %s" % (module_name, e))
    for attr in attrs.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise SystemExit("turbo: %r has no attribute %r" % (module_name, attrs))
    return obj() if factory else obj


def sources(folder):
    """The modification time of every .py file under folder, by path."""
    stamps = {}
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
        for name in files:
            if name.endswith(".py"):
                with contextlib.suppress(OSError):  # gone between the listing and the stat
                    stamps[os.path.join(root, name)] = os.stat(os.path.join(root, name)).st_mtime_ns
    return stamps


def _end_with_parent():
    """In the child, on Linux: SIGTERM when the supervisor dies, even of SIGKILL."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


def reload_forever(argv, folder):
    """--reload: the server runs in a child process (the same command without --reload),
    started again when the sources change."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    command = [sys.executable, "-m", "turbo"] + [a for a in argv if a != "--reload"]
    stamps = sources(folder)
    while True:
        child = subprocess.Popen(command, preexec_fn=_end_with_parent)
        try:
            now = stamps
            while now == stamps:
                time.sleep(0.5)
                now = sources(folder)
            sys.stderr.write("turbo: the sources changed, restarting\n")
        finally:
            child.terminate()
            child.wait()
        stamps = now


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.reload:
        return reload_forever(argv, args.app_dir)
    app = load(args.app, args.app_dir, args.factory)
    kind = args.interface
    if kind == "auto":
        kind = "turbo" if isinstance(app, App) else interface_of(app)
    if kind == "turbo":
        server = app
    else:
        server = App()
        server.mount("/", app, interface=kind, root_path=args.root_path.rstrip("/"))
    if args.loop:
        os.environ["TURBO_LOOP"] = args.loop
    for name, value in (("TURBO_ACCESS_LOG", args.access_log),
                        ("TURBO_ACCESS_LOG_PATH", args.access_log_path),
                        ("TURBO_METRICS_PATH", args.metrics_path)):
        if value:
            os.environ[name] = value
    server.run(host=args.host, port=args.port, workers=args.processes, threads=args.threads,
               blocking_threads=args.blocking_threads, forwarded_allow_ips=args.forwarded_allow_ips)


if __name__ == "__main__":
    main()
