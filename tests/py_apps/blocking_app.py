"""Handlers that block or spin beside a native route, for the execution
model tests of tests/test_py.py. One process; APP_THREADS event loops
(default 1) and APP_BLOCKING_THREADS spare threads (default 0: turbo's 64)."""
import os
import threading
import time

import turbo

app = turbo.App()


began = [0]  # /sleep handlers begun, which a test waits for (not for a fixed time)
counting = threading.Lock()


@app.get("/sleep")
def sleep(s: float):
    with counting:
        began[0] += 1
    time.sleep(s)
    return {"slept": s}


@app.get("/began")
def how_many_began():
    return {"began": began[0]}


@app.get("/spin")
def spin(s: float):
    end = time.monotonic() + s
    n = 0
    while time.monotonic() < end:
        n += 1
    return {"spun": s}


@app.get("/io", blocking=True)
def io(s: float):
    time.sleep(s)
    return {"io": s}


@app.get("/quick")
def quick():
    return {"quick": True}


app.native("GET", "/health", os.environ["TURBO_TEST_HANDLERS"], "health")

if __name__ == "__main__":
    app.run(host="127.0.0.1", port=0, workers=1, threads=int(os.environ.get("APP_THREADS", "1")),
            blocking_threads=int(os.environ.get("APP_BLOCKING_THREADS", "0")))
