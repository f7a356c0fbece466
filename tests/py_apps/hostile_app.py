"""The app tests/test_py_hostile.py throws at: handlers that fail in every
way a Python handler can. Configured from the environment: APP_WORKERS
(processes, default 2), plus turbo's own TURBO_* and PORT."""
import asyncio
import ctypes
import enum
import os
import signal
import sys
import time

import turbo

app = turbo.App()


@app.get("/ok")
def ok():
    return {"pid": os.getpid()}


class Boom(Exception):
    pass


class WeirdBase(BaseException):
    pass


class BadStr(Exception):
    def __str__(self):
        raise ValueError("str() of this exception fails too")


RAISES = {
    "value": lambda: ValueError("plain"),
    "custom": lambda: Boom("custom"),
    "keyerror": lambda: KeyError("k"),
    "memory": lambda: MemoryError(),
    "recursion": lambda: RecursionError("deep"),
    "systemexit": lambda: SystemExit(3),
    "keyboard": lambda: KeyboardInterrupt(),
    "generatorexit": lambda: GeneratorExit(),
    "basebase": lambda: WeirdBase("not an Exception"),
    "badstr": lambda: BadStr(),
    "stopiteration": lambda: StopIteration(),
}


@app.get("/raise/{kind}")
def raise_kind(kind: str):
    raise RAISES[kind]()


def recurse(n):
    return recurse(n + 1) + 1


@app.get("/recursion")
def recursion():
    return recurse(0)


@app.get("/async/raise/{kind}")
async def async_raise(kind: str):
    await asyncio.sleep(0)
    raise RAISES[kind]()


@app.get("/sync/forever")
def sync_forever():
    time.sleep(3600)


@app.get("/async/forever")
async def async_forever():
    try:
        await asyncio.sleep(3600)
    finally:
        print("hostile_app: /async/forever cleaned up", file=sys.stderr, flush=True)


class Unencodable:
    pass


def cyclic():
    d = {}
    d["self"] = d
    return d


def deep(n):
    v = []
    for _ in range(n):
        v = [v]
    return v


RESULTS = {
    "object": Unencodable,
    "set": lambda: {1, 2, 3},
    "generator": lambda: (i for i in range(3)),
    "function": lambda: ok,
    "cyclic": cyclic,
    "deep": lambda: deep(100000),
    "nonstr_keys": lambda: {(1, 2): "tuple key"},
    "nan": lambda: {"x": float("nan")},
    "inf": lambda: [float("inf")],
    "bigint": lambda: {"n": 2 ** 200},
    "surrogate": lambda: {"s": "\ud800"},
    "exception_object": lambda: ValueError("returned, not raised"),
    "coroutine_object": lambda: asyncio.sleep(0),
}


class SelfValued(enum.Enum):
    A = 1


SelfValued.A._value_ = SelfValued.A  # its FastAPI form is itself, forever


def meta_items():
    yield {"meta": turbo.JSONResponse({"k": [1, 2]}).body.decode()}


RESULTS.update({
    "self_enum": lambda: SelfValued.A,
    "reentrant": lambda: {"k": [1, 2], "items": meta_items()},
    "deep100": lambda: deep(100),
})


@app.post("/echo/list")
def echo_list(payload: list):
    return payload


@app.post("/need/dict")
def need_dict(payload: dict):
    return payload


try:
    import pydantic
except ImportError:
    pydantic = None

if pydantic is not None:
    class Item(pydantic.BaseModel):
        name: str

    @app.post("/model")
    def model(item: Item):
        return item


@app.get("/media/{how}")
def media(how: str):
    bad = "text/html\r\nSet-Cookie: x=1"
    if how == "made":
        try:
            turbo.Response("x", media_type=bad)
        except ValueError as e:
            return {"raised": type(e).__name__}
        return {"raised": None}
    r = turbo.Response("x", media_type="text/plain")
    r.media_type = bad
    return r


@app.get("/status/{code}")
def status(code: int):
    try:
        turbo.Response(b"hi", status_code=code)
    except ValueError as e:
        return {"response": str(e)}
    return {"response": None}


@app.get("/result/{kind}")
def result(kind: str):
    return RESULTS[kind]()


@app.get("/huge/{mib}")
def huge(mib: int):
    return "x" * (mib << 20)


@app.get("/hugelist/{n}")
def hugelist(n: int):
    return list(range(n))


@app.get("/die/exit")
def die_exit():
    os._exit(7)


@app.get("/die/segv")
def die_segv():
    ctypes.string_at(0)


@app.get("/die/kill")
def die_kill():
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=0, workers=int(os.environ.get("APP_WORKERS", "2")), threads=1)
