"""Handlers that block, on turbo: the app of bench/blocking.py.

/io sleeps 10 ms as a database call would, /spin keeps the GIL busy for s
seconds, /health is the native C route of examples/handlers.c. Its FastAPI
twin is bench/peers/fastapi_blocking.py.
Run: PORT=8080 TURBO_THREADS=1 python3 turbo_blocking.py"""
import os
import time

import turbo

HERE = os.path.dirname(os.path.abspath(__file__))
app = turbo.App()


@app.get("/io")
def io():
    time.sleep(0.01)
    return {"ok": True}


@app.get("/spin")
def spin(s: float):
    end = time.monotonic() + s
    while time.monotonic() < end:
        pass
    return {"spun": s}


app.native("GET", "/health", os.path.join(HERE, "..", "..", "examples", "handlers.so"), "health")

if __name__ == "__main__":
    app.run(port=int(os.environ.get("PORT", "8000")), workers=1)
