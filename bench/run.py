#!/usr/bin/env python3
"""bench/run.py: turbo side by side with the servers a user would pick instead.

    python3 bench/run.py            full run (about 20 minutes)
    python3 bench/run.py --quick    one short repetition (under 3 minutes)

Every server runs pinned to CPU 0 with one worker process; wrk runs pinned to
CPU 1 (`wrk -t1 -c64`). Each server is checked to answer every case correctly
before it is measured; repetitions are interleaved across servers. Besides
requests per second, the server's own CPU time per request is recorded, since
on a 2-core machine one wrk thread saturates before the fastest servers do.
Writes bench/results/latest.{json,md,png}. Method: bench/README.md.

Python 3 standard library only; the chart uses matplotlib when any Python on
the machine has it.
"""
import argparse
import atexit
import contextlib
import json
import math
import os
import platform
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
PEERS = os.path.join(BENCH, "peers")
WRK_DIR = os.path.join(BENCH, "wrk")
RESULTS = os.path.join(BENCH, "results")
BUILD = os.path.join(ROOT, "build")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
STATIC_DIR = os.path.join(BUILD, "bench-static")  # the files of the static cases
STATIC_FILES = {"4k.bin": bytes(range(256)) * 16, "1m.bin": bytes(range(256)) * 4096}
SERVER_CPU = "0"
CLIENT_CPU = "1"
NOFILE = 65536

APT_PACKAGES = ["wrk", "nginx", "python3-fastapi", "python3-uvicorn", "python3-uvloop",
                "python3-httptools", "gunicorn", "python3-flask", "python3-matplotlib",
                "libcjson-dev", "valgrind"]
# The hyper peer, built offline from Debian's packaged crates with Debian's
# cargo and rustc (installed apart, so that a failure here costs only hyper).
RUST_PACKAGES = ["cargo", "rustc", "librust-hyper-dev", "librust-tokio-dev",
                 "librust-serde-json-dev"]
DEBIAN_CRATES = "/usr/share/cargo/registry"
HYPER_DIR = os.path.join(BENCH, "peers", "hyper")
HYPER_TARGET = os.path.join(BUILD, "hyper")
HYPER_BIN = os.path.join(HYPER_TARGET, "release", "turbo-bench-hyper")
# Why a peer that build() makes could not be built: {server name: reason}.
BUILD_PROBLEMS = {}

MODES = {
    "full": {"duration": 8, "warmup": 2, "reps": 3, "connections": 64, "idle": 10000,
             "warmup_each_case": True, "cg_requests": 5000, "cg_requests_py": 2000,
             "mixed_routes": True},
    "quick": {"duration": 2, "warmup": 1, "reps": 1, "connections": 64, "idle": 10000,
              "warmup_each_case": False, "cg_requests": 1000, "cg_requests_py": 500,
              "mixed_routes": False},
}

# A run during which other work took more than this share of the server's
# core is called noisy in the report.
NOISY_SHARE = 0.15
PLAINTEXT = b"Hello, World!"
PIPELINE_DEPTH = 16
# What Firefox 120 sends besides Host when it opens a page: a head of ~450
# bytes, where a parser's cost per byte shows (plaintext's is 35 bytes).
BROWSER_HEADERS = [
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"),
    ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"),
    ("Accept-Language", "en-US,en;q=0.5"),
    ("Accept-Encoding", "gzip, deflate, br"),
    ("Connection", "keep-alive"),
    ("Upgrade-Insecure-Requests", "1"),
    ("Sec-Fetch-Dest", "document"),
    ("Sec-Fetch-Mode", "navigate"),
    ("Sec-Fetch-Site", "none"),
    ("Sec-Fetch-User", "?1"),
]


def log(msg):
    print(msg, flush=True)


# ------------------------------------------------------------ HTTP client

def http_request(method, path, body=None, content_type="application/json", headers=()):
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers)
    if body is not None:
        head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + (body or b"")


def parse_response(buf, pos=0):
    """One response from buf[pos:]: (end, status, headers, body), or None if
    it is not all there yet. Handles Content-Length and chunked bodies."""
    head_end = buf.find(b"\r\n\r\n", pos)
    if head_end < 0:
        return None
    lines = buf[pos:head_end].decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    at = head_end + 4
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = b""
        while True:
            size_end = buf.find(b"\r\n", at)
            if size_end < 0:
                return None
            size = int(buf[at:size_end].split(b";")[0], 16)
            if len(buf) < size_end + 2 + size + 2:
                return None
            body += buf[size_end + 2:size_end + 2 + size]
            at = size_end + 2 + size + 2
            if size == 0:
                return at, status, headers, body
    length = int(headers.get("content-length", "0"))
    if len(buf) < at + length:
        return None
    return at + length, status, headers, buf[at:at + length]


def http_exchange(port, payload, count, timeout=15.0):
    """Send payload on one connection and read count responses."""
    responses = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        buf, pos = b"", 0
        while len(responses) < count:
            parsed = parse_response(buf, pos)
            if parsed:
                pos = parsed[0]
                responses.append(parsed[1:])
                continue
            data = sock.recv(65536)
            if not data:
                raise ConnectionError(
                    f"connection closed after {len(responses)} of {count} responses")
            buf += data
    return responses


def expect(response, status=200, media=None, body=None, json_body=None):
    """None if the response is as expected, else what was wrong."""
    got_status, headers, got_body = response
    if got_status != status:
        return f"status {got_status}, expected {status}: {got_body[:80]!r}"
    ctype = headers.get("content-type", "")
    if media and ctype.split(";")[0].strip().lower() != media:
        return f"Content-Type {ctype!r}, expected {media}"
    if body is not None and got_body != body:
        return f"body {got_body[:80]!r}, expected {body[:80]!r}"
    if json_body is not None:
        try:
            decoded = json.loads(got_body)
        except ValueError:
            return f"body is not JSON: {got_body[:80]!r}"
        if decoded != json_body:
            return f"body {decoded!r}, expected {json_body!r}"
    return None


def echo_document():
    """A 1 KiB JSON document, the same bytes on every run."""
    items, doc = [], {"user": "bench", "items": []}
    doc["items"] = items
    while len(json.dumps(doc, separators=(",", ":"))) < 900:
        n = len(items)
        items.append({"id": n, "name": f"item-{n}", "tags": ["a", "b"], "price": n * 1.5})
    doc["pad"] = ""
    doc["pad"] = "x" * (1024 - len(json.dumps(doc, separators=(",", ":"))))
    text = json.dumps(doc, separators=(",", ":")).encode()
    assert len(text) == 1024
    return text


ECHO_BODY = echo_document()


# ------------------------------------------------------------ cases

class Case:
    """A workload: what wrk sends, and how one exchange is checked first."""

    def __init__(self, name, title, script, lua_vars, requests, checks):
        self.name, self.title = name, title
        self.script, self.lua_vars = script, lua_vars
        self.requests = requests      # bytes sent on one connection to verify
        self.checks = checks          # one expect() kwargs dict per response

    def verify(self, port):
        try:
            responses = http_exchange(port, self.requests, len(self.checks))
        except (OSError, ValueError, IndexError) as err:
            return f"{type(err).__name__}: {err}"
        for i, (response, check) in enumerate(zip(responses, self.checks)):
            problem = expect(response, **check)
            if problem:
                return problem if len(self.checks) == 1 else f"response {i + 1}: {problem}"
        return None

    def lua(self):
        lines = []
        for key, value in self.lua_vars.items():
            lines.append(f"{key} = {lua_literal(value)}")
        with open(os.path.join(WRK_DIR, self.script)) as f:
            lines.append(f.read())
        with open(os.path.join(WRK_DIR, "report.lua")) as f:
            lines.append(f.read())
        return "\n".join(lines)


def lua_literal(value):
    if isinstance(value, (bytes, str)):
        text = value.decode() if isinstance(value, bytes) else value
        assert "]==]" not in text
        return "[==[" + text + "]==]"
    if isinstance(value, (list, tuple)):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    if value is None:
        return "nil"
    return str(value)


PLAIN_CHECK = {"media": "text/plain", "body": PLAINTEXT}

CASES = [
    Case("plaintext", "GET / (plaintext)", "get.lua", {"PATH_": "/"},
         http_request("GET", "/"), [PLAIN_CHECK]),
    Case("headers", "GET / with a browser's headers", "get.lua",
         {"PATH_": "/", "HEADERS_": [part for header in BROWSER_HEADERS for part in header]},
         http_request("GET", "/", headers=BROWSER_HEADERS), [PLAIN_CHECK]),
    Case("json", "GET /json", "get.lua", {"PATH_": "/json"},
         http_request("GET", "/json"),
         [{"media": "application/json", "json_body": {"message": "Hello, World!"}}]),
    Case("path", "GET /users/{id}", "get.lua", {"PATH_": "/users/42"},
         http_request("GET", "/users/42"),
         [{"media": "application/json", "json_body": {"id": "42"}}]),
    Case("echo", "POST /echo, 1 KiB JSON", "post.lua", {"PATH_": "/echo", "BODY_": ECHO_BODY},
         http_request("POST", "/echo", ECHO_BODY),
         [{"media": "application/json", "body": ECHO_BODY}]),
    Case("query", "GET /items/{id}?limit=5 (int path and query)", "get.lua",
         {"PATH_": "/items/42?limit=5"}, http_request("GET", "/items/42?limit=5"),
         [{"media": "application/json", "json_body": {"id": 42, "limit": 5}}]),
    Case("depends", "the same, limit=Query(gt=0), one dependency", "get.lua",
         {"PATH_": "/dep/items/42?limit=5"}, http_request("GET", "/dep/items/42?limit=5"),
         [{"media": "application/json", "json_body": {"id": 42, "limit": 5, "user": "anonymous"}}]),
    Case("static-4k", "GET a 4 KiB static file", "get.lua", {"PATH_": "/static/4k.bin"},
         http_request("GET", "/static/4k.bin"), [{"body": STATIC_FILES["4k.bin"]}]),
    Case("static-1m", "GET a 1 MiB static file", "get.lua", {"PATH_": "/static/1m.bin"},
         http_request("GET", "/static/1m.bin"), [{"body": STATIC_FILES["1m.bin"]}]),
    Case("pipelined", f"GET / pipelined {PIPELINE_DEPTH} deep", "pipeline.lua",
         {"PATH_": "/", "DEPTH_": PIPELINE_DEPTH},
         http_request("GET", "/") * PIPELINE_DEPTH, [PLAIN_CHECK] * PIPELINE_DEPTH),
]

# The routes of examples/app.py and its FastAPI twin bench/app_fastapi.py:
# (method, path, body, check).
JSON_OK = {"media": "application/json"}
MIXED_ROUTES = [
    ("GET", "/", None, {**JSON_OK, "json_body": {"message": "Hello, World!"}}),
    ("GET", "/health", None, {**JSON_OK, "json_body": {"status": "ok"}}),
    ("POST", "/echo", ECHO_BODY, {**JSON_OK, "json_body": json.loads(ECHO_BODY)}),
    ("GET", "/db/items", None, JSON_OK),
    ("POST", "/db/items", b'{"name":"bench"}', {**JSON_OK, "status": 201}),
    ("GET", "/stress/cpu/1000", None,
     {**JSON_OK, "json_body": {"n": 1000, "result": sum(i * i for i in range(1000))}}),
    ("GET", "/stress/memory/1", None, {**JSON_OK, "json_body": {"mb": 1, "bytes": 1 << 20}}),
]
# Each app server's table gets the same rows before measuring, and only the
# POST /db/items row (measured after every GET /db/items row) adds more: a
# write in the round-robin mix would grow the list GET /db/items returns,
# so the faster server would be handed more work.
SEED_ITEMS = 20


def mixed_case(routes, name, title):
    payload = b"".join(http_request(m, p, b) for m, p, b, _ in routes)
    checks = [check for _, _, _, check in routes]
    if len(routes) == 1:
        method, path, body, _ = routes[0]
        script, lua_vars = ("post.lua", {"PATH_": path, "BODY_": body}) if body \
            else ("get.lua", {"PATH_": path})
    else:
        script = "mixed.lua"
        lua_vars = {"REQUESTS_": [[m, p, b] for m, p, b, _ in routes]}
    return Case(name, title, script, lua_vars, payload, checks)


def mixed_cases(per_route):
    reads = [r for r in MIXED_ROUTES if (r[0], r[1]) != ("POST", "/db/items")]
    cases = [mixed_case(reads, "mixed", "mixed app: every route but POST /db/items, in turn")]
    if per_route:
        for route in MIXED_ROUTES:
            label = f"{route[0]} {route[1]}"
            cases.append(mixed_case([route], "app " + label, "mixed app: " + label))
    return cases


def seed_items(port):
    payload = b"".join(http_request("POST", "/db/items", f'{{"name":"seed-{i}"}}'.encode())
                       for i in range(SEED_ITEMS))
    for response in http_exchange(port, payload, SEED_ITEMS):
        problem = expect(response, status=201)
        if problem:
            return "seeding /db/items: " + problem
    return None


# ------------------------------------------------------------ processes

def process_tree(root):
    """root and all its descendants, read from /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def cpu_ticks(pids):
    """utime + stime of every thread of these processes, in clock ticks."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total


def cpu_line(cpu):
    """(busy, total) clock ticks of one CPU, from /proc/stat."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                ticks = [int(x) for x in line.split()[1:]]
                idle = ticks[3] + ticks[4]
                return sum(ticks) - idle, sum(ticks)
    return 0, 0


def thread_count(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                total += int(re.search(r"^Threads:\s+(\d+)", f.read(), re.M).group(1))
        except (OSError, AttributeError):
            pass
    return total


def rss_kb(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * PAGE_KB
        except (OSError, IndexError, ValueError):
            pass
    return total


def listening(port):
    """True once some socket listens on 127.0.0.1:port (read from /proc, so
    the server under test sees no probe connections)."""
    want = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                for line in f.readlines()[1:]:
                    fields = line.split()
                    if fields[1].endswith(want) and fields[3] == "0A":
                        return True
        except OSError:
            pass
    return False


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def raise_nofile():
    """As many descriptors as allowed, up to NOFILE: 10,000 idle connections
    need them, on both sides."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = NOFILE if hard == resource.RLIM_INFINITY else min(NOFILE, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))


class Running:
    """A started server: its process group, port and log. Every one started is
    in Running.started, so that an interrupted run stops them all (stop_all)."""

    started = []

    def __init__(self, server, port, scratch, argv, env):
        self.server, self.port, self.scratch = server, port, scratch
        self.log_path = os.path.join(scratch, f"{server.name}.{port}.log")
        self.log = open(self.log_path, "wb")
        # a server's access log goes to a file of this run, removed when it stops: the bytes
        # are written as they would be in production, and no run leaves gigabytes behind
        self.access_log = os.path.join(scratch, f"{server.name}.{port}.access.log")
        if env.get("TURBO_ACCESS_LOG"):
            env = dict(env, TURBO_ACCESS_LOG_PATH=self.access_log)
        self.proc = subprocess.Popen(argv, env=env, cwd=server.cwd, stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     preexec_fn=self._child_setup)
        self.pids = [self.proc.pid]
        Running.started.append(self)

    @staticmethod
    def _child_setup():
        os.setsid()
        raise_nofile()

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return f"exited with {self.proc.returncode}: {self.log_tail()}"
            if listening(self.port):
                return None
            time.sleep(0.05)
        return f"not listening on {self.port} after {timeout:.0f} s: {self.log_tail()}"

    def refresh_pids(self):
        self.pids = process_tree(self.proc.pid)

    def log_tail(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            text = f.read()[-600:].decode("utf-8", "replace").strip()
        return text.replace("\n", " | ") or "(no output)"

    def stop(self, timeout=10.0):
        if self.log.closed:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.access_log)


# ------------------------------------------------------------ servers

class Server:
    """How to start one contender. argv(port, scratch) gives the command,
    without the taskset prefix; cases is the set of case names it serves."""

    def __init__(self, name, label, argv, cases, env=None, cwd=ROOT, idle_env=None,
                 missing=None, ready_timeout=30.0, not_applicable=None):
        self.name, self.label, self.argv, self.cases = name, label, argv, cases
        self.not_applicable = not_applicable or {}
        self.env, self.cwd, self.idle_env = env or {}, cwd, idle_env or {}
        self.missing = missing or (lambda: None)
        self.ready_timeout = ready_timeout

    def start(self, scratch, idle=False, wrap=()):
        port = free_port()
        env = dict(os.environ)
        env.update(self.env)
        if idle:
            env.update(self.idle_env)
        env["PORT"] = str(port)
        argv = ["taskset", "-c", SERVER_CPU, *wrap, *self.argv(port, scratch)]
        return Running(self, port, scratch, argv, env)


def python_with(modules, candidates):
    """The first interpreter of candidates that imports all of modules, as
    the real binary path (valgrind must not meet a pyenv shim script)."""
    code = f"import sys, {', '.join(modules)}; print(sys.executable)"
    for candidate in candidates:
        if not candidate:
            continue
        try:
            out = subprocess.run([candidate, "-c", code], capture_output=True, text=True,
                                 cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip().splitlines()[-1]
    return None


PYTHONS = [sys.executable, "/usr/bin/python3", shutil.which("python3")]
MAIN_CASES = {"plaintext", "headers", "json", "path", "echo", "pipelined"}
PARAM_CASES = {"query", "depends"}  # FastAPI's surface: Python servers only
STATIC_CASES = {"static-4k", "static-1m"}  # against nginx's sendfile


def nginx_argv(port, scratch):
    prefix = os.path.join(scratch, f"nginx.{port}")
    os.makedirs(prefix, exist_ok=True)
    with open(os.path.join(PEERS, "nginx.conf")) as f:
        conf = f.read().replace("@PORT@", str(port)).replace("@PREFIX@", prefix)
        conf = conf.replace("@STATIC@", STATIC_DIR)
    with open(os.path.join(prefix, "nginx.conf"), "w") as f:
        f.write(conf)
    return ["nginx", "-p", prefix, "-e", os.path.join(prefix, "error.log"),
            "-c", os.path.join(prefix, "nginx.conf")]


def need_file(path, hint):
    return lambda: None if os.path.exists(path) else f"{os.path.relpath(path, ROOT)} missing ({hint})"


def need_program(name):
    return lambda: None if shutil.which(name) else f"{name} not installed"


def need_python(python, modules):
    return lambda: None if python else f"no Python here imports {modules}"


def need_all(*checks):
    return lambda: next((reason for reason in (check() for check in checks) if reason), None)


def define_servers(pythons):
    turbo_py, peer_py, flask_py = pythons["turbo"], pythons["fastapi"], pythons["flask"]
    turbo_env = {"TURBO_THREADS": "1", "TURBO_PROCESSES": "1"}
    turbo_idle = {"TURBO_KEEPALIVE_TIMEOUT_MS": "600000", "TURBO_MAX_CONNECTIONS": "20000"}
    py_env = {"PYTHONPATH": ROOT, "PYTHONHASHSEED": "0", "PYTHONUNBUFFERED": "1"}
    uvicorn = ["--loop", "uvloop", "--http", "httptools", "--workers", "1",
               "--no-access-log", "--log-level", "warning", "--backlog", "4096",
               "--timeout-keep-alive", "600"]
    servers = [
        Server("floor", "floor (bench/floor.c)",
               lambda port, _: [os.path.join(BUILD, "floor"), str(port)],
               {"plaintext", "pipelined"},  # not headers: it steps through a head a byte at a time
               missing=need_file(os.path.join(BUILD, "floor"), "cc failed")),
        Server("turbo-c", "turbo C (build/hello)",
               lambda port, _: [os.path.join(BUILD, "hello")], MAIN_CASES | STATIC_CASES,
               env={**turbo_env, "STATIC_ROOT": STATIC_DIR}, idle_env=turbo_idle,
               missing=need_file(os.path.join(BUILD, "hello"), "make build/hello failed")),
        Server("turbo-c-observed", "turbo C, metrics and access log on",
               lambda port, _: [os.path.join(BUILD, "hello")], {"plaintext", "json", "pipelined"},
               env={**turbo_env, "TURBO_METRICS_PATH": "/metrics", "TURBO_ACCESS_LOG": "common"},
               missing=need_file(os.path.join(BUILD, "hello"), "make build/hello failed")),
        Server("turbo-py", "turbo Python (bench/peers/turbo_app.py)",
               lambda port, _: [turbo_py, os.path.join(PEERS, "turbo_app.py")],
               MAIN_CASES | PARAM_CASES,
               env={**turbo_env, **py_env}, idle_env=turbo_idle,
               missing=need_python(turbo_py, "turbo (make builds it)")),
        Server("nginx", "nginx (return 200)", nginx_argv,
               {"plaintext", "headers", "json", "path", "pipelined"} | STATIC_CASES, missing=need_program("nginx"),
               not_applicable={"echo": "n/a: nginx cannot answer with the request body by itself"}),
        Server("hyper", "hyper 0.14 (tokio current_thread)",
               lambda port, _: [HYPER_BIN, str(port)], MAIN_CASES,
               missing=lambda: BUILD_PROBLEMS.get("hyper") or need_file(
                   HYPER_BIN, "cargo build failed")()),
        Server("node", "node http", lambda port, _: ["node", os.path.join(PEERS, "node_app.js")],
               MAIN_CASES, missing=need_program("node")),
        Server("fastapi", "FastAPI + uvicorn",
               lambda port, _: [peer_py, "-m", "uvicorn", "fastapi_plain:app",
                                "--host", "127.0.0.1", "--port", str(port), *uvicorn],
               MAIN_CASES | PARAM_CASES, cwd=PEERS, env={"PYTHONHASHSEED": "0"},
               missing=need_python(peer_py, "fastapi, uvicorn, uvloop, httptools")),
        Server("flask", "Flask + gunicorn",
               lambda port, _: [flask_py, "-m", "gunicorn", "--workers", "1",
                                "--bind", f"127.0.0.1:{port}", "--backlog", "4096",
                                "--log-level", "warning", "flask_app:app"],
               MAIN_CASES, cwd=PEERS,
               missing=need_python(flask_py, "flask, gunicorn")),
        Server("turbo-py-app", "turbo Python (examples/app.py)",
               lambda port, _: [turbo_py, os.path.join(ROOT, "examples", "app.py")], set(),
               env={**turbo_env, **py_env}, idle_env=turbo_idle,
               missing=need_all(need_file(os.path.join(ROOT, "examples", "app.py"), "not written"),
                                need_python(turbo_py, "turbo (make builds it)"))),
        Server("fastapi-app", "FastAPI + uvicorn (bench/app_fastapi.py)",
               lambda port, _: [peer_py, "-m", "uvicorn", "app_fastapi:app",
                                "--host", "127.0.0.1", "--port", str(port), *uvicorn],
               set(), cwd=BENCH, env={"PYTHONHASHSEED": "0"},
               missing=need_all(need_file(os.path.join(BENCH, "app_fastapi.py"), "not written"),
                                need_python(peer_py, "fastapi, uvicorn, uvloop, httptools"))),
    ]
    return servers


# ------------------------------------------------------------ setup

def install_missing():
    groups = [APT_PACKAGES + ([] if shutil.which("node") else ["nodejs"]), RUST_PACKAGES]
    groups = [[p for p in wanted
               if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0]
              for wanted in groups]
    groups = [missing for missing in groups if missing]
    if not groups:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        log(f"missing packages (not root, not installing): {' '.join(sum(groups, []))}")
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], env=env)
    for missing in groups:
        log(f"installing: {' '.join(missing)}")
        result = subprocess.run(["apt-get", "install", "-y", "-qq", *missing], env=env)
        if result.returncode != 0:
            log("apt-get install failed; the servers it would have provided are skipped")


def rust_toolchain():
    """(cargo, extra environment): Debian's cargo and rustc, the toolchain its
    crates are packaged for, else whichever cargo is on PATH (None: none)."""
    if os.path.exists("/usr/bin/cargo") and os.path.exists("/usr/bin/rustc"):
        return "/usr/bin/cargo", {"RUSTC": "/usr/bin/rustc"}
    return shutil.which("cargo"), {}


def build_hyper():
    """build/hyper/release/turbo-bench-hyper from bench/peers/hyper, offline
    (its .cargo/config.toml puts Debian's crates in crates.io's place).
    None when built, else why not."""
    hint = "apt-get install " + " ".join(RUST_PACKAGES)
    cargo, extra = rust_toolchain()
    if not cargo:
        return f"cargo not installed ({hint})"
    crates = os.listdir(DEBIAN_CRATES) if os.path.isdir(DEBIAN_CRATES) else []
    if not any(name.startswith("hyper-0.14") for name in crates):
        return f"hyper 0.14 not in {DEBIAN_CRATES} ({hint})"
    env = dict(os.environ, CARGO_TARGET_DIR=HYPER_TARGET, **extra)
    argv = [cargo, "build", "--release", "--offline", "--quiet"]
    lock = os.path.join(HYPER_DIR, "Cargo.lock")
    for attempt in range(2):
        try:
            built = subprocess.run(argv, cwd=HYPER_DIR, env=env, capture_output=True,
                                   text=True, timeout=1800)
        except (OSError, subprocess.TimeoutExpired) as err:
            return f"cargo build failed: {err}"
        if built.returncode == 0:
            return None
        # A Cargo.lock from before an upgrade of Debian's crates names
        # versions no longer there: resolve again, once.
        if attempt == 0 and os.path.exists(lock):
            os.remove(lock)
            continue
    log(f"building bench/peers/hyper failed:\n{built.stderr[-1500:]}")
    last = [line for line in built.stderr.strip().splitlines() if line.strip()]
    return "cargo build --offline failed: " + (last[0] if last else f"exit {built.returncode}")


def hyper_versions():
    """hyper's version as Cargo.lock resolved it, and the rustc that built it."""
    out = {}
    try:
        with open(os.path.join(HYPER_DIR, "Cargo.lock")) as f:
            match = re.search(r'name = "hyper"\nversion = "([^"]+)"', f.read())
        if match:
            out["hyper"] = match.group(1)
    except OSError:
        pass
    cargo, extra = rust_toolchain()
    rustc = extra.get("RUSTC") or shutil.which("rustc")
    if cargo and rustc:
        out["rustc"] = command_output([rustc, "--version"])
    return out


def build(servers=None):
    """Builds what the servers (names; None: all) need."""
    os.makedirs(BUILD, exist_ok=True)
    made = subprocess.run(["make", "-C", ROOT, "build/hello"], capture_output=True, text=True)
    if made.returncode != 0:
        log(f"make build/hello failed:\n{made.stdout[-1500:]}{made.stderr[-1500:]}")
    floor = os.path.join(BUILD, "floor")
    source = os.path.join(BENCH, "floor.c")
    if not os.path.exists(floor) or os.path.getmtime(floor) < os.path.getmtime(source):
        cc = os.environ.get("CC", "cc")
        built = subprocess.run([cc, "-std=c99", "-O2", "-Wall", "-Wextra", "-o", floor, source],
                               capture_output=True, text=True)
        if built.returncode != 0:
            log(f"building bench/floor.c failed:\n{built.stderr}")
    if servers is None or "hyper" in servers:
        BUILD_PROBLEMS.pop("hyper", None)
        problem = build_hyper()
        if problem:
            BUILD_PROBLEMS["hyper"] = problem
            log(f"hyper peer not built: {problem}")


def command_output(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return None


def module_versions(python, modules):
    if not python:
        return {}
    code = ("import importlib, json, sys\nout = {'python': sys.version.split()[0]}\n"
            f"for m in {modules!r}:\n"
            "    try: out[m] = importlib.import_module(m).__version__\n"
            "    except Exception: pass\n"
            "print(json.dumps(out))")
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60,
                             env=dict(os.environ, PYTHONPATH=ROOT), cwd=ROOT)
        return json.loads(out.stdout)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return {}


def machine_info(pythons):
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    git = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain"],
                           capture_output=True, text=True).stdout.strip()
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kb / 2**20, 1),
        "kernel": platform.release(), "os": platform.freedesktop_os_release().get(
            "PRETTY_NAME", "") if hasattr(platform, "freedesktop_os_release") else "",
        "turbo_commit": (git or "none") + (" (modified)" if dirty else ""),
        "versions": {
            "wrk": command_output(["wrk", "-v"]),
            "nginx": command_output(["nginx", "-v"]),
            "node": command_output(["node", "--version"]),
            "cc": command_output([os.environ.get("CC", "cc"), "--version"]),
            "valgrind": command_output(["valgrind", "--version"]),
            "rust_peer": hyper_versions(),
            "peers_python": module_versions(pythons["fastapi"], [
                "fastapi", "starlette", "pydantic", "uvicorn", "uvloop", "httptools"]),
            "flask_python": module_versions(pythons["flask"], ["flask", "werkzeug", "gunicorn"]),
            "turbo_python": module_versions(pythons["turbo"], ["turbo"]),
        },
    }


# ------------------------------------------------------------ measuring

def run_wrk(running, case, settings, scratch, duration):
    """One wrk run against a started server: wrk's counts, the server's CPU
    time and RSS over the run, and how busy each side was."""
    script = os.path.join(scratch, f"{case.name.replace(' ', '_').replace('/', '_')}.lua")
    with open(script, "w") as f:
        f.write(case.lua())
    argv = ["taskset", "-c", CLIENT_CPU, "wrk", "-t1", f"-c{settings['connections']}",
            f"-d{duration}s", "--timeout", "2s", "-s", script, f"http://127.0.0.1:{running.port}"]
    running.refresh_pids()
    pids = running.pids
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0 = cpu_ticks(pids)
    core0 = cpu_line(SERVER_CPU)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak_kb = rss_kb(pids)
    while True:
        try:
            proc.wait(timeout=0.25)
            break
        except subprocess.TimeoutExpired:
            peak_kb = max(peak_kb, rss_kb(pids))
    cpu1 = cpu_ticks(pids)
    core1 = cpu_line(SERVER_CPU)
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = proc.stdout.read()
    proc.stdout.close()
    match = re.search(r"^BENCH (\{.*\})$", output, re.M)
    if not match:
        raise RuntimeError(f"wrk printed no result: {output.strip()[-400:]}")
    got = json.loads(match.group(1))
    # Busy fractions over wrk's measured interval; the CPU deltas also span
    # wrk's start and exit, so they lean slightly high, for every server alike.
    wall = got["duration_us"] / 1e6
    cpu_s = (cpu1 - cpu0) / CLK_TCK
    wrk_cpu = (after_children.ru_utime - before_children.ru_utime
               + after_children.ru_stime - before_children.ru_stime)
    requests = got["requests"]
    # Debian's wrk 4.1 records one latency per pipelined batch but counts
    # every response, so its percentiles come out as 0 there: not reported.
    latency = {k: got[k] for k in ("p50_us", "p90_us", "p99_us", "mean_us", "max_us")}
    if case.lua_vars.get("DEPTH_", 1) > 1:
        latency = {k: None for k in latency}
    errors = {k: got[k] for k in ("connect", "read", "write", "status", "timeout")}
    return {
        "requests": requests,
        "seconds": got["duration_us"] / 1e6,
        "rps": requests / (got["duration_us"] / 1e6),
        "server_cpu_s": cpu_s,
        "cpu_us_per_req": cpu_s * 1e6 / requests if requests else None,
        "server_cpu_util": cpu_s / wall,
        # The server's core busy with anything else (other processes, and the
        # kernel's own network work): near 0.05 on a quiet machine.
        "core_other_util": ((core1[0] - core0[0]) - (cpu1 - cpu0)) / max(1, core1[1] - core0[1]),
        "wrk_cpu_util": wrk_cpu / wall,
        **latency,
        "errors": errors, "error_total": sum(errors.values()),
        "peak_rss_kb": peak_kb,
        "processes": len(pids), "threads": thread_count(pids),
    }


def measure_cases(cases, servers, settings, scratch, results):
    """Start every server once, check each case, then per case: a warm-up of
    each server (in quick mode only before its first case), then repetitions
    interleaved across servers (A B C A B C)."""
    running = {}
    try:
        for server in servers:
            reason = server.missing()
            if reason:
                results["unavailable"][server.name] = reason
                log(f"  {server.name}: not available: {reason}")
                continue
            started = server.start(scratch)
            problem = started.wait_ready(server.ready_timeout)
            if problem:
                results["unavailable"][server.name] = problem
                log(f"  {server.name}: failed to start: {problem}")
                started.stop()
                continue
            if server.name.endswith("-app"):
                problem = seed_items(started.port)
                if problem:
                    results["unavailable"][server.name] = problem
                    log(f"  {server.name}: {problem}")
                    started.stop()
                    continue
            running[server.name] = started
        total = sum(len([s for s in servers if s.name in running and c.name in s.cases])
                    for c in cases) * settings["reps"]
        done, warmed = 0, set()
        for case in cases:
            contenders = []
            for server in servers:
                key = f"{case.name}/{server.name}"
                if case.name in server.not_applicable:
                    results["row_errors"][key] = server.not_applicable[case.name]
                if case.name not in server.cases:
                    continue
                if server.name not in running:
                    results["row_errors"][key] = "not available: " + results["unavailable"].get(
                        server.name, "?")
                    continue
                problem = case.verify(running[server.name].port)
                if problem:
                    results["row_errors"][key] = "fails the check, not measured: " + problem
                    log(f"  {case.name:<14} {server.name:<12} fails the check, not measured: {problem}")
                    done += settings["reps"]
                    continue
                contenders.append(server)
            for rep in [None] + list(range(settings["reps"])):
                for server in list(contenders):
                    if rep is None and server.name in warmed and not settings["warmup_each_case"]:
                        continue
                    warmed.add(server.name)
                    done += rep is not None
                    run = measure_once(running, server, case, settings, scratch, rep, results)
                    if not run:
                        contenders.remove(server)
                    elif rep is not None:
                        log(progress_line(done, total, case, server, rep, settings, run))
    finally:
        for started in running.values():
            started.stop()


def measure_once(running, server, case, settings, scratch, rep, results):
    """One wrk run (rep None: the warm-up), recorded in results; None when
    the server failed, which is recorded as the row's error instead."""
    started = running[server.name]
    problem = None
    try:
        duration = settings["warmup"] if rep is None else settings["duration"]
        run = run_wrk(started, case, settings, scratch, duration)
    except RuntimeError as err:
        problem = str(err)
    if started.proc.poll() is not None:
        problem = "server died: " + started.log_tail()
        results["unavailable"][server.name] = problem
        del running[server.name]
        started.stop()
    if problem:
        results["row_errors"][f"{case.name}/{server.name}"] = problem
        log(f"  {case.name:<14} {server.name:<12} {problem}")
        return None
    results["runs"].append({"case": case.name, "server": server.name, "warmup": rep is None,
                            **({} if rep is None else {"rep": rep + 1}), **run})
    return run


def progress_line(done, total, case, server, rep, settings, run):
    cpu = run["cpu_us_per_req"]
    return (f"[{done:3d}/{total}] {case.name:<14} {server.name:<12} rep {rep + 1}/{settings['reps']}"
            f"  {run['rps']:>9,.0f} req/s  {cpu if cpu is not None else float('nan'):7.1f} us CPU/req"
            f"  p50 {fmt_ms(run['p50_us']):>6} ms  p99 {fmt_ms(run['p99_us']):>6} ms"
            f"  errors {run['error_total']}  server {run['server_cpu_util']:.0%}"
            f" wrk {run['wrk_cpu_util']:.0%} others on CPU {SERVER_CPU} {run['core_other_util']:.0%}")


# ------------------------------------------------------------ idle connections

def open_idle(port, count, batch=500, timeout=120.0):
    """Open count connections, send one GET / on each and read its answer.
    Returns the sockets (kept open by the caller) and any problem."""
    request = http_request("GET", "/")
    sel = selectors.DefaultSelector()
    sockets, problem = [], None
    deadline = time.monotonic() + timeout
    while len(sockets) < count and not problem:
        pending = {}
        for _ in range(min(batch, count - len(sockets))):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            pending[sock] = b""
            sel.register(sock, selectors.EVENT_WRITE)
        while pending and not problem:
            if time.monotonic() > deadline:
                problem = f"timed out with {len(pending)} connections unanswered"
                break
            for key, events in sel.select(timeout=1.0):
                sock = key.fileobj
                if events & selectors.EVENT_WRITE:
                    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if error:
                        problem = f"connect failed: {os.strerror(error)}"
                        break
                    sock.send(request)
                    sel.modify(sock, selectors.EVENT_READ)
                    continue
                try:
                    data = sock.recv(65536)
                except OSError as err:
                    problem = f"read failed: {err}"
                    break
                pending[sock] += data
                if parse_response(pending[sock]) or not data:
                    sel.unregister(sock)
                    del pending[sock]
                    sockets.append(sock)
        for sock in pending:
            sel.unregister(sock)
            sock.close()
    sel.close()
    return sockets, problem


def still_open(sock):
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def measure_idle(servers, settings, scratch, results):
    """Per server, freshly started: RSS after one request, then RSS with
    settings['idle'] keep-alive connections held open, each having made one
    request. (RSS counts the server's user-space memory; the kernel's socket
    buffers are not in it, for any server.)"""
    count = settings["idle"]
    for server in servers:
        reason = server.missing()
        if reason:
            results["idle"][server.name] = {"error": "not available: " + reason}
            continue
        started = server.start(scratch, idle=True)
        sockets = []
        try:
            problem = started.wait_ready(server.ready_timeout) or CASES[0].verify(started.port)
            if problem:
                results["idle"][server.name] = {"error": problem}
                log(f"  idle {server.name:<12} not measured: {problem}")
                continue
            time.sleep(0.5)
            started.refresh_pids()
            base_kb = rss_kb(started.pids)
            t0 = time.monotonic()
            sockets, problem = open_idle(started.port, count)
            time.sleep(1.0)
            started.refresh_pids()
            held_kb = rss_kb(started.pids)
            alive = sum(1 for s in sockets if still_open(s))
            row = {"connections": count, "answered": len(sockets), "open": alive,
                   "baseline_kb": base_kb, "held_kb": held_kb,
                   "seconds_to_open": round(time.monotonic() - t0, 2)}
            if problem:
                row["error"] = problem
            if alive >= 0.9 * count:
                row["bytes_per_conn"] = (held_kb - base_kb) * 1024 / alive
            elif not problem:
                row["error"] = f"server closed {count - alive} of {count} idle connections"
            results["idle"][server.name] = row
            per = row.get("bytes_per_conn")
            log(f"  idle {server.name:<12} open {alive}/{count}  RSS {base_kb / 1024:.1f} -> "
                f"{held_kb / 1024:.1f} MiB  " + (f"{per:,.0f} B/conn" if per is not None
                                                 else row.get("error", "")))
        finally:
            for sock in sockets:
                sock.close()
            started.stop()


# ------------------------------------------------------------ callgrind

def callgrind_total(pattern_dir, tag):
    total = 0
    for name in os.listdir(pattern_dir):
        if not name.startswith(f"cg.{tag}."):
            continue
        with open(os.path.join(pattern_dir, name)) as f:
            for line in f:
                match = re.match(r"(summary|totals): (\d+)", line)
                if match:
                    total += int(match.group(2))
                    break
    return total


def callgrind_run(server, requests, scratch, tag):
    """Instructions the server executes from start to exit when it answers
    requests, a list of (bytes, how many requests they hold), sent one after
    another on one keep-alive connection once the last is answered."""
    wrap = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" +
            os.path.join(scratch, f"cg.{tag}.%p")]
    started = server.start(scratch, wrap=wrap)
    try:
        problem = started.wait_ready(180.0)
        if problem:
            raise RuntimeError(problem)
        with socket.create_connection(("127.0.0.1", started.port), timeout=60) as sock:
            buf = b""
            for one, answers in requests:
                sock.sendall(one)
                for _ in range(answers):
                    while not parse_response(buf):
                        data = sock.recv(65536)
                        if not data:
                            raise RuntimeError("server closed the connection")
                        buf += data
                    buf = buf[parse_response(buf)[0]:]
    finally:
        started.stop(timeout=60.0)
    total = callgrind_total(scratch, tag)
    if not total:
        raise RuntimeError("no callgrind output: the server did not exit on SIGTERM "
                           f"within 60 s ({started.log_tail()})")
    return total


CALLGRIND_CASES = ("plaintext", "headers", "json", "pipelined")


def measure_callgrind(servers, settings, scratch, results):
    """Instructions per request. Each server runs once answering W of each
    case's requests (the base), and once per case answering the base plus N
    more of that case; (that run - base) / N leaves out start-up, the first
    requests' one-time work and shutdown. Deterministic, unlike time."""
    if not shutil.which("valgrind"):
        results["callgrind"]["error"] = "valgrind not installed"
        return
    warm = 50
    for server in servers:
        reason = server.missing()
        if reason:
            results["callgrind"][server.name] = {"error": "not available: " + reason}
            continue
        n = settings["cg_requests_py"] if server.name.startswith("turbo-py") \
            else settings["cg_requests"]
        cases = [c for c in CASES if c.name in CALLGRIND_CASES and c.name in server.cases]
        base_requests = [(c.requests, len(c.checks)) for c in cases for _ in range(warm)]
        rows = {}
        try:
            base = callgrind_run(server, base_requests, scratch, f"{server.name}.base")
        except (OSError, RuntimeError) as err:
            results["callgrind"][server.name] = {"error": str(err)}
            log(f"  callgrind {server.name:<10} failed: {err}")
            continue
        for case in cases:
            batches = max(1, n // len(case.checks))  # about n requests, under max_requests
            try:
                full = callgrind_run(server, base_requests + [(case.requests, len(case.checks))] * batches,
                                     scratch, f"{server.name}.{case.name}")
            except (OSError, RuntimeError) as err:
                rows[case.name] = {"error": str(err)}
                log(f"  callgrind {server.name:<10} {case.name:<10} failed: {err}")
                continue
            per = (full - base) / (batches * len(case.checks))
            rows[case.name] = {"instructions_per_request": round(per), "requests": batches * len(case.checks),
                               "warmup_requests": len(base_requests),
                               "base_instructions": base, "total_instructions": full}
            log(f"  callgrind {server.name:<10} {case.name:<10} {per:,.0f} instructions/request")
        results["callgrind"][server.name] = rows


# ------------------------------------------------------------ reporting

def summarize(results):
    summary = {}
    for run in results["runs"]:
        if run["warmup"]:
            continue
        summary.setdefault(run["case"], {}).setdefault(run["server"], []).append(run)
    out = {}
    for case, by_server in summary.items():
        for server, runs in by_server.items():
            rps = [r["rps"] for r in runs]
            cpu = [r["cpu_us_per_req"] for r in runs if r["cpu_us_per_req"] is not None]
            server_util = statistics.median(r["server_cpu_util"] for r in runs)
            wrk_util = statistics.median(r["wrk_cpu_util"] for r in runs)
            if server_util >= 0.9:
                bound = "server"
            elif wrk_util >= 0.9:
                bound = "wrk"
            else:
                bound = "neither"
            out.setdefault(case, {})[server] = {
                "rps_median": statistics.median(rps), "rps_min": min(rps), "rps_max": max(rps),
                "cpu_us_per_req": statistics.median(cpu) if cpu else None,
                "p50_us": median_or_none(r["p50_us"] for r in runs),
                "p99_us": median_or_none(r["p99_us"] for r in runs),
                "errors": sum(r["error_total"] for r in runs),
                "requests": sum(r["requests"] for r in runs),
                "peak_rss_kb": max(r["peak_rss_kb"] for r in runs),
                "server_cpu_util": server_util, "wrk_cpu_util": wrk_util, "bound": bound,
                "runs": len(runs),
            }
    return out


def median_or_none(values):
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def fmt_ms(us):
    return "n/a" if us is None else f"{us / 1000:.2f}"


def ratio_rows(summary):
    """(what, {case: "cpu ratio (rps ratio)"}, target) for the ratios that matter."""
    def cell(case_a, a, case_b, b):
        x = summary.get(case_a, {}).get(a)
        y = summary.get(case_b, {}).get(b)
        if not x or not y or not x["cpu_us_per_req"] or not y["cpu_us_per_req"]:
            return None
        return f"{x['cpu_us_per_req'] / y['cpu_us_per_req']:.2f}x ({x['rps_median'] / y['rps_median']:.2f}x)"

    main = ["plaintext", "headers", "json", "path", "echo", "pipelined", "static-4k", "static-1m"]
    floor_case = {"plaintext": "plaintext", "json": "plaintext", "path": "plaintext",
                  "pipelined": "pipelined"}
    rows = [
        ("turbo C / floor", {c: cell(c, "turbo-c", floor_case[c], "floor") for c in floor_case},
         "<= 1.1x (plaintext, json)"),
        ("turbo C / nginx", {c: cell(c, "turbo-c", c, "nginx") for c in main}, "< 1x"),
        ("turbo C / hyper", {c: cell(c, "turbo-c", c, "hyper") for c in main}, ""),
        ("turbo C, metrics and access log on / off", {c: cell(c, "turbo-c-observed", c, "turbo-c")
                                                      for c in ("plaintext", "json", "pipelined")},
         "<= 1.03x"),
        ("turbo Python / floor", {c: cell(c, "turbo-py", floor_case[c], "floor")
                                  for c in ("plaintext", "json", "path")}, "<= 1.3x"),
        ("FastAPI / turbo Python", {c: cell(c, "fastapi", c, "turbo-py") for c in main},
         ">= 10x"),
        ("FastAPI / turbo Python, parameters", {c: cell(c, "fastapi", c, "turbo-py")
                                                for c in ("query", "depends")}, ">= 5x (depends)"),
        ("turbo Python, depends / query", {"depends": cell("depends", "turbo-py", "query", "turbo-py")},
         "<= 1.5x"),
        ("turbo Python / turbo C", {c: cell(c, "turbo-py", c, "turbo-c") for c in main}, ""),
        ("FastAPI / turbo Python, app", {c: cell(c, "fastapi-app", c, "turbo-py-app")
                                         for c in summary if not c in main}, ">= 10x"),
    ]
    return [(what, {c: v for c, v in cells.items() if v}, target) for what, cells, target in rows]


def cpu_of(summary, case, server):
    return (summary.get(case, {}).get(server) or {}).get("cpu_us_per_req")


def target_rows(results, summary):
    """(target, measured, met) for the project's targets (DESIGN.md)."""
    rows = []
    floor = cpu_of(summary, "plaintext", "floor")

    def ratio(what, case, server, base, limit, above=False):
        value = cpu_of(summary, case, server)
        if value and base:
            r = value / base if not above else base / value
            rows.append((what, f"{r:.2f}x", r >= limit if above else r <= limit))
    for case in ("plaintext", "json"):
        ratio(f"turbo C {case} CPU/req <= 1.1x floor", case, "turbo-c", floor, 1.1)
    for case in ("plaintext", "json", "path", "static-4k", "static-1m"):
        ratio(f"turbo C {case} CPU/req < nginx", case, "turbo-c",
              cpu_of(summary, case, "nginx"), 0.9999)
    for case in ("plaintext", "json", "path"):
        ratio(f"turbo Python {case} CPU/req <= 1.3x floor", case, "turbo-py", floor, 1.3)
    for case in ("plaintext", "json", "path"):
        fastapi = cpu_of(summary, case, "fastapi")
        if fastapi:
            ratio(f"FastAPI / turbo Python {case} CPU/req >= 10x", case, "turbo-py", fastapi,
                  10, above=True)
    ratio("turbo Python depends CPU/req <= 1.5x query", "depends", "turbo-py",
          cpu_of(summary, "query", "turbo-py"), 1.5)
    ratio("turbo Python depends CPU/req <= 0.2x FastAPI's", "depends", "turbo-py",
          cpu_of(summary, "depends", "fastapi"), 0.2)
    for case in ("plaintext", "json"):
        ratio(f"turbo C {case}, metrics and access log on, CPU/req <= 1.03x off", case,
              "turbo-c-observed", cpu_of(summary, case, "turbo-c"), 1.03)
    echo = cpu_of(summary, "app POST /echo", "turbo-py-app")
    if echo:  # issue 17's, set on a machine whose raw echo (the echo case) took 5.9 us
        rows.append(("turbo Python app POST /echo (a dict) CPU/req <= 12 us", f"{echo:.1f} us", echo <= 12))
    pipelined = cpu_of(summary, "pipelined", "turbo-c")
    if pipelined:
        rows.append(("turbo C pipelined CPU/req < 1.5 us", f"{pipelined:.2f} us", pipelined < 1.5))
    idle = results["idle"].get("turbo-c", {}).get("bytes_per_conn")
    if idle is not None:
        rows.append(("turbo C idle connection < 2 KiB RSS", f"{idle:,.0f} B", idle < 2048))
    return rows


def noise_note(results):
    """A warning when other work shared the server's core during the runs."""
    shares = [r["core_other_util"] for r in results["runs"] if "core_other_util" in r]
    busy = [x for x in shares if x > NOISY_SHARE]
    if not busy:
        return []
    return [f"**Noisy machine:** in {len(busy)} of {len(shares)} runs something else used more "
            f"than {NOISY_SHARE:.0%} of CPU {SERVER_CPU} (median {statistics.median(shares):.0%}, "
            f"max {max(shares):.0%}); figures from a shared core run high and spread wide.", ""]


def md_runs(results, summary, settings, names):
    """The heading, the method and the table of every run."""
    m = results["machine"]
    warmup = "per case" if settings.get("warmup_each_case", True) else "before each server's first case"
    lines = [
        f"# turbo benchmarks ({results['mode']} run, {results['date']})", "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}"
        f" ({m['os']}); turbo {m['turbo_commit']}.",
        f"Method: each server pinned to CPU {SERVER_CPU} with one worker process; "
        f"`taskset -c {CLIENT_CPU} wrk -t1 -c{settings['connections']} -d{settings['duration']}s`; "
        f"{settings['warmup']} s warm-up "
        f"({warmup}), "
        f"then {settings['reps']} repetition(s) interleaved "
        "across servers. RPS is the median [min-max]; CPU/req is the server's utime+stime "
        "(all its processes and threads) over the run divided by requests answered. "
        "`bound` says which side saturated: `server` (its CPU near 100%: RPS is its limit), "
        "`wrk` (the load generator's core is the limit: compare CPU/req), or `neither`.", "",
        *noise_note(results),
        "| case | server | RPS median [min-max] | CPU us/req | p50 ms | p99 ms | errors | peak RSS MiB | bound |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for case in case_order(summary):
        rows = summary.get(case, {})
        for server in [s["name"] for s in results["servers"]]:
            key = f"{case}/{server}"
            if server in rows:
                r = rows[server]
                cpu = f"{r['cpu_us_per_req']:.1f}" if r["cpu_us_per_req"] else "-"
                util = f"{r['server_cpu_util']:.0%}/{r['wrk_cpu_util']:.0%}"
                lines.append(
                    f"| {case} | {names[server]} | {r['rps_median']:,.0f} [{r['rps_min']:,.0f}-"
                    f"{r['rps_max']:,.0f}] | {cpu} | {fmt_ms(r['p50_us'])} | {fmt_ms(r['p99_us'])} | "
                    f"{r['errors']} | {r['peak_rss_kb'] / 1024:.1f} | {r['bound']} ({util}) |")
            if key in results["row_errors"]:
                lines.append(f"| {case} | {names[server]} | {results['row_errors'][key]} "
                             "| | | | | | |")
    return lines + ["", "`bound` (server CPU / wrk CPU).", ""]


def case_order(summary):
    titles = {c.name for c in CASES}
    return [c.name for c in CASES] + [c for c in summary if c not in titles]


def md_ratios(summary):
    ratios = ratio_rows(summary)
    if not any(cells for _, cells, _ in ratios):
        return []
    used = [c for c in case_order(summary) if any(c in cells for _, cells, _ in ratios)]
    lines = ["## Ratios", "",
             "Server CPU per request, A / B (and RPS, A / B); lower CPU is better. "
             "turbo's JSON and path rows are set against the floor's plaintext, "
             "since the floor parses nothing.", "",
             "| A / B | " + " | ".join(used) + " | target (CPU) |",
             "|---|" + "---|" * len(used) + "---|"]
    for what, cells, target in ratios:
        if cells:
            lines.append(f"| {what} | " + " | ".join(cells.get(c, "") for c in used)
                         + f" | {target} |")
    return lines + [""]


def md_targets(results, summary):
    goals = target_rows(results, summary)
    if not goals:
        return []
    lines = ["## Targets", "", "| target | measured | met |", "|---|---|---|"]
    lines += [f"| {what} | {value} | {'yes' if met else '**no**'} |" for what, value, met in goals]
    return lines + [""]


def md_idle(results, settings, names):
    if not results["idle"]:
        return []
    lines = [f"## {settings['idle']:,} idle keep-alive connections", "",
             "Each connection made one GET / and stays open. RSS of the server's "
             "processes, fresh start, after one request and with the connections held "
             "(kernel socket buffers are not in RSS).", "",
             "| server | open | RSS before MiB | RSS held MiB | bytes per connection |",
             "|---|---|---|---|---|"]
    for server in [s["name"] for s in results["servers"]]:
        row = results["idle"].get(server)
        if not row:
            continue
        if "baseline_kb" not in row:
            lines.append(f"| {names[server]} | {row['error']} | | | |")
            continue
        per = f"{row['bytes_per_conn']:,.0f}" if "bytes_per_conn" in row else \
            f"n/a: {row.get('error', '')}"
        lines.append(f"| {names[server]} | {row['open']:,}/{row['connections']:,} | "
                     f"{row['baseline_kb'] / 1024:.1f} | {row['held_kb'] / 1024:.1f} | {per} |")
    return lines + [""]


def md_callgrind(results, settings, names):
    cg = results["callgrind"]
    if not cg:
        return []
    lines = ["## Instructions per request (callgrind)", "",
             "`valgrind --tool=callgrind`, one keep-alive connection, one request at a "
             "time (pipelined: 16 at a time; headers: `GET /` with a browser's 10 more headers, a "
             "450-byte head): (a run answering a warm-up of 50 of each, "
             "then about N requests of this one) - (a run answering the warm-up alone), over "
             "those requests. User-space instructions only; "
             f"N = {settings['cg_requests']} (C, Rust), {settings['cg_requests_py']} (Python). "
             "Does not move with machine noise.", "",
             "| server | plaintext | headers | json | pipelined |", "|---|---|---|---|---|"]
    for server, rows in cg.items():
        if not isinstance(rows, dict):
            continue
        if "error" in rows:
            lines.append(f"| {names.get(server, server)} | {rows['error']} | | | |")
            continue

        def one(case):
            r = rows.get(case)
            if not r:
                return "-"
            return f"{r['instructions_per_request']:,}" if "error" not in r else r["error"]
        lines.append(f"| {names.get(server, server)} | {one('plaintext')} | {one('headers')} | "
                     f"{one('json')} | {one('pipelined')} |")
    return lines + [""]


def md_versions(results, names):
    lines = []
    unavailable = results["unavailable"]
    if unavailable:
        lines += ["Not available: " + "; ".join(f"{names.get(k, k)}: {v}"
                                                for k, v in unavailable.items()), ""]
    v = results["machine"]["versions"]
    peers = v.get("peers_python", {})
    flask = v.get("flask_python", {})
    rust = v.get("rust_peer", {})
    return lines + ["Versions: " + ", ".join(x for x in [
        v.get("wrk") and v["wrk"].split(" Copyright")[0],
        v.get("nginx"), v.get("node") and "node " + v["node"],
        rust.get("hyper") and f"hyper {rust['hyper']}" + (
            f" ({rust['rustc']})" if rust.get("rustc") else ""),
        peers.get("python") and "Python " + peers["python"],
        peers.get("fastapi") and "FastAPI " + peers["fastapi"],
        peers.get("uvicorn") and "uvicorn " + peers["uvicorn"],
        peers.get("uvloop") and "uvloop " + peers["uvloop"],
        peers.get("httptools") and "httptools " + peers["httptools"],
        flask.get("flask") and "Flask " + flask["flask"],
        flask.get("gunicorn") and "gunicorn " + flask["gunicorn"],
        v.get("cc")] if x) + ".", ""]


def markdown(results, summary, settings):
    names = {s["name"]: s["label"] for s in results["servers"]}
    return "\n".join(md_runs(results, summary, settings, names) + md_ratios(summary)
                     + md_targets(results, summary) + md_idle(results, settings, names)
                     + md_callgrind(results, settings, names) + md_versions(results, names))


def chart(results_path, png_path):
    """Draw RPS and CPU/request per server per case. Runs under whichever
    Python has matplotlib (this one or Debian's)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    with open(results_path) as f:
        results = json.load(f)
    summary = results["summary"]
    if not summary:
        return
    names = {s["name"]: s["label"] for s in results["servers"]}
    cases = [c for c in summary if not c.startswith("app ")]  # per-route app rows: table only
    servers = [s["name"] for s in results["servers"] if any(s["name"] in summary[c] for c in cases)]
    fig, axes = plt.subplots(2, 1, figsize=(13, 9))
    colors = {s: plt.cm.tab10(i % 10) for i, s in enumerate(servers)}
    width = 0.8 / max(1, max(len(summary[c]) for c in cases))
    labelled = set()
    for j, case in enumerate(cases):
        present = [s for s in servers if s in summary[case]]
        for i, server in enumerate(present):
            x = j + (i - (len(present) - 1) / 2) * width
            row = summary[case][server]
            label = None if server in labelled else names.get(server, server)
            labelled.add(server)
            axes[0].bar(x, row["rps_median"], width, color=colors[server], label=label)
            axes[1].bar(x, row["cpu_us_per_req"] or 0, width, color=colors[server])
    for ax, title in ((axes[0], "requests per second (median, log scale), higher is better"),
                      (axes[1], "server CPU microseconds per request (log scale), lower is better")):
        ax.set_xticks(range(len(cases)))
        ax.set_xticklabels(cases, rotation=15)
        ax.set_title(title)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"
                                                                      if v >= 1 else f"{v:g}"))
        ax.grid(axis="y", which="both", alpha=0.3)
        heights = [b.get_height() for b in ax.patches if b.get_height() > 0]
        if heights:
            ax.set_ylim(bottom=10 ** math.floor(math.log10(min(heights))))
    axes[0].legend(fontsize=8, ncol=3)
    m = results["machine"]
    fig.suptitle(f"turbo bench ({results['mode']}): {m['cpu']}, {m['cores']} cores, "
                 f"server on CPU {SERVER_CPU}, wrk -t1 -c64 on CPU {CLIENT_CPU}")
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)


def draw_chart(results_path, png_path):
    try:
        chart(results_path, png_path)
        return True
    except ImportError:
        pass
    for python in [p for p in ("/usr/bin/python3",) if p != sys.executable and os.path.exists(p)]:
        drawn = subprocess.run([python, os.path.abspath(__file__), "--chart-only",
                                results_path, png_path])
        if drawn.returncode == 0:
            return True
    log("no matplotlib: chart not drawn (apt-get install python3-matplotlib)")
    return False


# ------------------------------------------------------------ main

def stop_all_on_exit():
    """SIGTERM ends the run as Ctrl-C does: every server started is stopped."""
    def stop(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, stop)
    atexit.register(lambda: [r.stop() for r in Running.started])


def side_script(doc):
    """The start of bench/blocking.py and bench/hosted.py: their servers stopped on exit, their
    options (--quick: 3 s runs, else 8 s; --out DIR), the file limit raised. (args, seconds)."""
    stop_all_on_exit()
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 s runs instead of 8 s")
    parser.add_argument("--out", default=RESULTS, help="directory for the table and JSON")
    args = parser.parse_args()
    raise_nofile()
    return args, 3 if args.quick else 8


def side_results(out, name, data, table):
    """The end of bench/blocking.py and bench/hosted.py: out/NAME.json and out/NAME.md
    written, the table printed. Returns 0, their exit status."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, name + ".json"), "w") as f:
        json.dump(data, f, indent=1)
    with open(os.path.join(out, name + ".md"), "w") as f:
        f.write(table)
    print()
    print(table)
    return 0


def main():
    stop_all_on_exit()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one short repetition")
    parser.add_argument("--cases", help="comma-separated case names (default: all)")
    parser.add_argument("--servers", help="comma-separated server names (default: all)")
    parser.add_argument("--duration", type=int, help="seconds per run")
    parser.add_argument("--reps", type=int, help="repetitions per server and case")
    parser.add_argument("--no-install", action="store_true", help="do not apt-get install")
    parser.add_argument("--skip-idle", action="store_true")
    parser.add_argument("--skip-callgrind", action="store_true")
    parser.add_argument("--out", default=RESULTS, help="directory for latest.{json,md,png}")
    parser.add_argument("--report", metavar="JSON",
                        help="only rewrite latest.md and latest.png from a results file")
    parser.add_argument("--chart-only", nargs=2, metavar=("JSON", "PNG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.chart_only:
        chart(*args.chart_only)
        return 0
    if args.report:
        with open(args.report) as f:
            results = json.load(f)
        write_report(results, os.path.abspath(args.report), args.out)
        return 0

    mode = "quick" if args.quick else "full"
    settings = dict(MODES[mode])
    if args.duration:
        settings["duration"] = args.duration
    if args.reps:
        settings["reps"] = args.reps
    started_at = time.monotonic()
    raise_nofile()
    if not args.no_install:
        install_missing()
    build(set(args.servers.split(",")) if args.servers else None)
    pythons = {
        "turbo": python_with(["turbo"], PYTHONS),
        "fastapi": python_with(["fastapi", "uvicorn", "uvloop", "httptools"],
                               ["/usr/bin/python3", *PYTHONS]),
        "flask": python_with(["flask", "gunicorn"], ["/usr/bin/python3", *PYTHONS]),
    }
    # Everything this script does while measuring stays off the server's core.
    os.sched_setaffinity(0, {int(CLIENT_CPU)})

    servers = define_servers(pythons)
    if args.servers:
        wanted = set(args.servers.split(","))
        servers = [s for s in servers if s.name in wanted]
    cases = CASES + mixed_cases(settings["mixed_routes"])
    for server in servers:
        if server.name.endswith("-app"):
            server.cases = {c.name for c in cases if c.name not in MAIN_CASES | PARAM_CASES}
    if args.cases:
        wanted = set(args.cases.split(","))
        cases = [c for c in cases if c.name in wanted]

    results = {
        "mode": mode, "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "settings": settings, "machine": machine_info(pythons),
        "servers": [{"name": s.name, "label": s.label} for s in servers],
        "cases": [{"name": c.name, "title": c.title} for c in cases],
        "runs": [], "row_errors": {}, "unavailable": {}, "idle": {}, "callgrind": {},
    }
    scratch = tempfile.mkdtemp(prefix="turbo-bench-")
    os.makedirs(STATIC_DIR, exist_ok=True)
    for name, data in STATIC_FILES.items():
        with open(os.path.join(STATIC_DIR, name), "wb") as f:
            f.write(data)
    try:
        def section(title):
            log(f"== {title} (at {time.monotonic() - started_at:.0f} s)")

        section(f"{mode} run: {len(cases)} cases x {len(servers)} servers, "
                f"{settings['reps']} x {settings['duration']} s each")
        measure_cases(cases, servers, settings, scratch, results)
        if not args.skip_idle:
            section(f"{settings['idle']:,} idle keep-alive connections")
            idle_servers = [s for s in servers if "plaintext" in s.cases]
            measure_idle(idle_servers, settings, scratch, results)
        if not args.skip_callgrind:
            section("callgrind")
            cg_servers = [s for s in servers
                          if s.name in ("floor", "turbo-c", "turbo-c-observed", "turbo-py", "hyper")]
            measure_callgrind(cg_servers, settings, scratch, results)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    results["summary"] = summarize(results)
    results["elapsed_s"] = round(time.monotonic() - started_at, 1)
    os.makedirs(args.out, exist_ok=True)
    json_path = os.path.join(args.out, "latest.json")
    with open(json_path, "w") as f:
        json.dump(results, f, indent=1)
    write_report(results, json_path, args.out)
    log(f"wrote {os.path.relpath(args.out, os.getcwd())}/latest.{{json,md,png}} "
        f"in {results['elapsed_s']:.0f} s")
    return 0


def write_report(results, json_path, out):
    table = markdown(results, results["summary"], results["settings"])
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "latest.md"), "w") as f:
        f.write(table)
    draw_chart(json_path, os.path.join(out, "latest.png"))
    print()
    print(table)


if __name__ == "__main__":
    sys.exit(main())
