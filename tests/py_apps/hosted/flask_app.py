"""A Flask app, for tests/test_hosting.py: served by gunicorn and by turbo."""
from flask import Flask, jsonify, request

app = Flask(__name__)


@app.route("/hello/<name>")
def hello(name):
    return jsonify(hello=name, q=request.args.get("q"))


@app.route("/echo", methods=["POST"])
def echo():
    data = request.get_data()
    return jsonify(length=len(data), type=request.content_type, script=request.script_root)


@app.route("/stream")
def stream():
    return app.response_class((b"line %d\n" % i for i in range(4)), mimetype="text/plain")


@app.route("/latin1")
def latin1():  # PEP 3333: header values are Latin-1 str
    return "ok", 200, {"X-Author": "Jos\u00e9"}


@app.route("/boom")
def boom():
    raise RuntimeError("the app failed")


def bare(environ, start_response):
    """A WSGI app with no framework."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Path", environ["PATH_INFO"])])
    return [b"bare ", environ["QUERY_STRING"].encode()]


def environ_dump(environ, start_response):
    """The environ's PEP 3333 entries, their values and types, less what differs by nature: the
    ports, and wsgi.multithread (gunicorn's sync worker has one thread)."""
    import json
    keys = ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE", "CONTENT_LENGTH",
            "SERVER_NAME", "SERVER_PROTOCOL", "REMOTE_ADDR", "wsgi.version", "wsgi.url_scheme",
            "wsgi.multiprocess", "wsgi.run_once", "wsgi.input_terminated")
    shown = {k: [type(v).__name__, v] for k, v in environ.items()
             if k in keys or (k.startswith("HTTP_") and k != "HTTP_HOST")}
    shown.update({k: type(environ[k]).__name__ for k in ("SERVER_PORT", "REMOTE_PORT", "wsgi.multithread")})
    shown["body"] = environ["wsgi.input"].read().decode("latin-1")
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(shown, sort_keys=True).encode()]


class _Failing:
    """An iterable with no close() whose iteration fails after the head."""
    def __iter__(self):
        yield b"part"
        raise ValueError("the iterable failed")


def failing_iterable(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "8")])
    return _Failing()


def late_exc_info(environ, start_response):
    """start_response(..., exc_info) after a body part (PEP 3333: it must raise again), on a
    streamed body (/) or one under a stated length, which turbo holds back (/length)."""
    import sys
    stated = [("Content-Length", "10")] if environ["PATH_INFO"] == "/length" else []
    start_response("200 OK", [("Content-Type", "text/plain")] + stated)
    yield b"first"
    try:
        raise ValueError("failed after the first part")
    except ValueError:
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
        print("start_response did not raise", file=environ["wsgi.errors"])
    yield b"second"


def http_keys(environ, start_response):
    """The environ's header keys (HTTP_*, CONTENT_LENGTH) and their values, as JSON."""
    import json
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({k: v for k, v in environ.items() if k.startswith("HTTP_") or k == "CONTENT_LENGTH"}).encode()]


def gated(environ, start_response):
    """Streams "first", then waits (10 s at most) for the file named by the query to
    exist before "second": a client sees the first part only if it was sent at once."""
    import os
    import time
    gate = environ["QUERY_STRING"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"first\n"
    deadline = time.monotonic() + 10
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.01)
    yield b"second\n"


def _wait_for(gate):
    import os
    import time
    deadline = time.monotonic() + 10
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.01)


def written(environ, start_response):
    """PEP 3333's write(): "first" written, then a wait for the gate (as gated), then the rest."""
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"first\n")
    _wait_for(environ["QUERY_STRING"])
    return [b"second\n"]


def big_stated(environ, start_response):
    """2 MiB under a stated length of 4, then a wait for the gate before the other 2: a client
    gets the first 2 only if a body with a stated length is not held whole (werkzeug's
    send_file of a big file is such a body)."""
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(4 << 20))])
    for _ in range(32):
        yield b"a" * 65536
    _wait_for(environ["QUERY_STRING"])
    for _ in range(32):
        yield b"b" * 65536


class _CloseFails:
    def __iter__(self):
        yield b"whole"

    def close(self):
        raise RuntimeError("close failed after the body")


def close_fails(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return _CloseFails()


def too_long(environ, start_response):
    """States 100000 bytes and gives twice as many, in parts: the stated ones go out, as gunicorn
    sends them."""
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", "100000")])
    for i in range(20):
        yield bytes([65 + i]) * 10000
