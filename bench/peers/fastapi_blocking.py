"""FastAPI twin of bench/peers/turbo_blocking.py: a sync route that sleeps
10 ms (FastAPI runs it on its thread pool), one that spins, and a trivial
async route in place of turbo's native one.
Run: uvicorn fastapi_blocking:app --loop uvloop --http httptools --workers 1"""
import time

from fastapi import FastAPI

app = FastAPI()


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


@app.get("/health")
async def health():
    return {"status": "ok"}
