"""Runs the test suites and sums their closing `N passed, N failed` lines.

    python3 tests/run_all.py              every suite (what `make test` runs)
    python3 tests/run_all.py http json    only suites whose name has one of
                                          these words (`make test T="http json"`)

Each suite is a command that prints its own summary as its last such line;
a suite that crashes or prints none counts as one failure. A failing suite's
output tail is shown, with the command that runs it alone.
"""
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = os.environ.get("PYTHON", sys.executable)

SUITES = [
    ("header compiles (c99, c11, c++17)", [PY, "tests/test_compile.py"]),
    ("parser and router", ["build/test_parser"]),
    ("parser and router, no SSE2", ["build/test_parser-portable"]),
    ("json writer", ["build/test_json"]),
    ("json writer, no SSE2", ["build/test_json-portable"]),
    ("writer round trip vs python", [PY, "tests/test_json_roundtrip.py", "build/test_json"]),
    ("json decoder vs json.loads", [PY, "tests/test_json_decode.py"]),
    ("http over sockets (asan+ubsan)", [PY, "tests/test_http.py", "build/hello-asan"]),
    ("http over sockets (tsan)", [PY, "tests/test_http.py", "build/hello-tsan"]),
    ("kqueue shim semantics", ["build/test_shim"]),
    ("http, kqueue shim, no SSE2", [PY, "tests/test_http.py", "build/hello-kqueue"]),
    ("c api over sockets (asan+ubsan)", [PY, "tests/test_c_api.py", "build/c_api_server-asan", "build/native_server"]),
    ("c api, deferred answers (tsan)", [PY, "tests/test_c_api.py", "build/c_api_server-tsan"]),
    ("websockets (asan+ubsan)", [PY, "tests/test_websocket.py", "build/ws_server-asan"]),
    # the slow reader's 64 MiB push stays in: about 6 s of the TSan run
    ("websockets (tsan)", [PY, "tests/test_websocket.py", "build/ws_server-tsan"]),
    ("static files vs nginx (asan+ubsan)", [PY, "tests/test_static_vs_nginx.py", "build/hello-asan"]),
    ("behind nginx: drain, restart, SIGKILL", [PY, "tests/test_deploy.py", "build/hello"]),
    ("hostile clients (asan+ubsan)", [PY, "tests/test_hostile.py", "build/hello-asan"]),
    ("hostile clients (release build)", [PY, "tests/test_hostile.py", "build/hello"]),
    ("valgrind memcheck, http subset", ["bash", "tests/valgrind.sh", "build/hello-debug",
                                         "pipelin", "keep", "chunk", "shutdown", "split", "limit"]),
    ("fuzz targets, smoke", ["bash", "tests/fuzz/run.sh", "smoke"]),
    ("python binding", [PY, "tests/test_py.py"]),
    ("python handlers failing every way", [PY, "tests/test_py_hostile.py"]),
    ("fastapi parity", [PY, "tests/test_fastapi_parity.py"]),
    ("asgi and wsgi apps hosted (vs uvicorn, gunicorn)", [PY, "tests/test_hosting.py"]),
]

SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed", re.M)


def main(words):
    total_pass = total_fail = 0
    suites = [(n, c) for n, c in SUITES if not words or any(w.lower() in n.lower() for w in words)]
    if not suites:
        print("no suite's name has any of: %s" % " ".join(words))
        print("0 passed, 1 failed")
        return 1
    for name, cmd in suites:
        started = time.time()
        proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out = proc.stdout.decode("utf-8", "replace")
        found = SUMMARY.findall(out)
        if found:
            p, f = int(found[-1][0]), int(found[-1][1])
        else:
            p, f = 0, 1
        if proc.returncode != 0 and f == 0:
            f = 1  # a non-zero exit with no failure counted is still a failure
        if f:
            sys.stdout.write(out[-6000:])
            print("rerun alone: %s" % " ".join(cmd))
        print("%-40s %4d passed, %d failed (%.1f s)" % (name, p, f, time.time() - started))
        sys.stdout.flush()
        total_pass += p
        total_fail += f
    print("%d passed, %d failed" % (total_pass, total_fail))
    return 1 if total_fail else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
