"""The app most of tests/test_py.py talks to: one route per behaviour.

Configured from the environment: APP_WORKERS (processes, default 1),
APP_THREADS (threads per process, default 1), TURBO_TEST_HANDLERS (the
built examples/handlers.so), TURBO_TEST_TID_LIB (native routes: one
answers its thread id, one blocks until another is asked), plus turbo's
own TURBO_* and PORT."""
import asyncio
import datetime
import decimal
import enum
import gc
import json
import os
import sys
import threading
import time
import uuid
from typing import Any, Dict, List, Optional

import turbo

app = turbo.App()


@app.get("/users/{id}")
def get_user(id: int, q: Optional[str] = None, limit: int = 10):
    return {"id": id, "q": q, "limit": limit}


@app.get("/conv")
def conv(i: int, f: float, b: bool, s: str):
    return {"i": i, "f": f, "b": b, "s": s}


@app.get("/opt")
def opt(n: Optional[int] = None, flag: bool = False, ratio: float = 0.5, name="anon"):
    return {"n": n, "flag": flag, "ratio": ratio, "name": name}


@app.get("/kwonly/{a}")
def kwonly(a: int, *, b: int = 2, c: str = "x"):
    return [a, b, c]


@app.get("/files/{path:path}")
def files(path: str):
    return {"path": path}


@app.post("/items", status_code=201)
def create_item(item: dict):
    return item


@app.post("/typed")
def typed(item: Dict[str, Any]):
    return {"keys": sorted(item)}


@app.post("/list")
def count(items: list):
    return {"n": len(items)}


@app.post("/maybe")
def maybe(item: Optional[dict] = None):
    return {"item": item}


@app.put("/items/{id}")
def put_item(id: int, item: dict):
    return {"put": id, "item": item}


@app.patch("/items/{id}")
def patch_item(id: int):
    return {"patched": id}


@app.delete("/items/{id}")
def delete_item(id: int):
    return {"deleted": id}


@app.route("/multi", methods=["GET", "post"])
def multi(request: turbo.Request):
    return {"method": request.method}


@app.get("/status204", status_code=204)
def no_content():
    return None


class Color(enum.Enum):
    RED = "red"


class Opaque:
    pass


RESULTS = {
    "dict": lambda: {"a": 1, "b": [1, 2], "c": {"d": None}},
    "list": lambda: [1, "two", 3.5, True, None],
    "tuple": lambda: (1, 2),
    "str": lambda: "hé \"quoted\"\n",
    "int": lambda: 42,
    "negative": lambda: -9223372036854775808,
    "uint64": lambda: 18446744073709551615,
    "bigint": lambda: 123456789012345678901234567890,
    "float": lambda: [0.1, 1.5, 1e20, 1e-7, 123456789012345680000.0, -0.0, 3.0],
    "true": lambda: True,
    "false": lambda: False,
    "none": lambda: None,
    "nested": lambda: {"a": [{"b": [[1], {"c": "d"}]}]},
    "keys": lambda: {1: "int", 2.5: "float", False: "bool", None: "none"},
    "enum": lambda: {"color": Color.RED},
    "set": lambda: {7},
    "generator": lambda: (i * i for i in range(3)),
    "datetime": lambda: {"at": datetime.datetime(2024, 1, 2, 3, 4, 5), "id": uuid.UUID(int=1),
                         "price": decimal.Decimal("9.99")},
    "bytes": lambda: b"\x00\x01raw",
    "unsupported": lambda: {"x": Opaque()},
    "nan": lambda: float("nan"),
    "json_response": lambda: turbo.JSONResponse({"made": "here"}, status_code=203, headers={"X-J": "yes"}),
}


@app.get("/result/{kind}")
def result(kind: str):
    return RESULTS[kind]()


@app.get("/http-error")
def http_error():
    raise turbo.HTTPException(418, detail={"why": "teapot"}, headers={"X-Reason": "tea"})


@app.get("/http-error-default")
def http_error_default():
    raise turbo.HTTPException(status_code=404)


@app.get("/boom")
def boom():
    raise ValueError("kaboom")


@app.get("/response")
def response():
    return turbo.Response(content="hello", status_code=202, headers={"X-A": "1", "X-B": "two"},
                          media_type="text/plain")


class HTMLResponse(turbo.Response):
    media_type = "text/html"


@app.get("/html")
def html():
    return HTMLResponse("<p>hi</p>")


@app.get("/request/{name}")
def raw(name: str, request: turbo.Request):
    return {"method": request.method, "path": request.path, "test": request.headers.get("x-test"),
            "query": request.query_params, "path_params": request.path_params,
            "body": request.body.decode()}


@app.get("/headers")
def headers(request: turbo.Request):
    h = request.headers
    return {"get": h.get("X-Test"), "item": h["X-TEST"], "in": "x-TeSt" in h, "default": h.get("X-None", "d"),
            "names": sorted(k for k in h if k.startswith("x-")), "is_dict": isinstance(h, dict),
            "all": h.getlist("X-TEST"), "raw": [[k.decode(), v.decode()] for k, v in h.raw if k.startswith(b"x-")],
            "scope": [[k.decode(), v.decode()] for k, v in request.scope["headers"] if k == b"x-test"]}


@app.post("/request-json")
def raw_json(request: turbo.Request):
    return {"parsed": json.loads(request.body)}


@app.post("/request-await/{name}")
async def awaited_request(name: str, request: turbo.Request):
    request.state.seen = name
    return {"body": (await request.body()).decode(), "json": await request.json(), "url": request.url,
            "url_path": request.url.path, "query": request.url.query, "cookies": request.cookies,
            "client_host": request.client.host, "client_port_is_int": isinstance(request.client.port, int),
            "state": request.state.seen, "scope": [request.scope[k] for k in ("type", "method", "path")],
            "scope_query": request.scope["query_string"].decode(), "is_bytes": isinstance(request.body, bytes)}


@app.get("/query-params")
def query_params(request: turbo.Request):
    q = request.query_params
    return {"str": str(q), "q": q["q"], "all_q": q.getlist("q"), "pairs": q.multi_items(), "keys": list(q)}


@app.get("/url/{rest:path}")
def url_parts(request: turbo.Request):
    return {"url": request.url, "url_path": request.url.path, "path": request.path,
            "scope_path": request.scope["path"], "client": request.client.host}


@app.post("/request-form")
async def request_form(request: turbo.Request):
    form = await request.form()
    files = [(f.filename, (await f.read()).decode()) for f in form.getlist("file")]
    return {"fields": {k: v for k, v in form.items() if isinstance(v, str)}, "tags": form.getlist("tag"),
            "files": files}


KEPT = []


@app.get("/keep")
def keep(request: turbo.Request):
    KEPT.append(request)
    return len(KEPT)


class Kept(Exception):
    pass


@app.exception_handler(Kept)
def keep_the_request(request, exc):  # of a route that took none: it must outlive the route
    KEPT.append(request)
    return turbo.JSONResponse({"kept": len(KEPT)}, 409)


@app.post("/keep-failing")
def keep_failing():
    raise Kept()


@app.get("/kept")
def kept():
    r = KEPT[-1]
    return {"path": r.path, "query": r.query_params, "agent": r.headers.get("x-test")}


app.state.visits = 0


@app.get("/app-state")
def app_state(request: turbo.Request):
    request.app.state.visits += 1  # as in Starlette: the app, from the request
    return {"visits": app.state.visits, "scope_app": request.scope["app"] is app}


@app.get("/debug/counts")
def counts():
    """For the leak test: what the interpreter holds, after a collection."""
    gc.collect()
    return {"blocks": sys.getallocatedblocks(), "objects": len(gc.get_objects())}


@app.get("/pid")
def pid():
    return {"pid": os.getpid()}


@app.get("/spin/{seconds}")
def spin(seconds: float):
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
    return {"spun": seconds, "thread": threading.get_native_id()}


@app.get("/async/sleep/{ms}")
async def async_sleep(ms: int):
    await asyncio.sleep(ms / 1000)
    return {"slept": ms}


@app.get("/async/fail")
async def async_fail():
    await asyncio.sleep(0)
    raise turbo.HTTPException(409, detail="conflict")


@app.get("/async/boom")
async def async_boom():
    await asyncio.sleep(0)
    raise RuntimeError("async kaboom")


@app.get("/async/request")
async def async_request(request: turbo.Request, tag: str = "none"):
    await asyncio.sleep(0.01)
    return {"path": request.path, "test": request.headers.get("x-test"), "tag": tag}


try:
    import pydantic
except ImportError:
    pydantic = None

if pydantic is not None:
    class Item(pydantic.BaseModel):
        name: str
        price: float

    @app.post("/model")
    def model(item: Item):
        return item


# Rules written twice, in C and in Python: each route answers with both (BasicApp.test_twins).
@app.get("/twins/cookie")
def twin_cookie(request: turbo.Request, a: Optional[str] = turbo.Cookie(None)):
    return {"c": a, "python": request.cookies.get("a")}


@app.get("/twins/type")
def twin_type(m: str):
    return turbo.Response(b"", media_type=m)


@app.post("/twins/form")
async def twin_form(request: turbo.Request, a: List[str] = turbo.Form([])):
    return {"c": a, "python": (await request.form()).getlist("a")}


if os.environ.get("TURBO_TEST_HANDLERS"):
    app.native("GET", "/health", os.environ["TURBO_TEST_HANDLERS"], "health")
    app.native("POST", "/native/echo", os.environ["TURBO_TEST_HANDLERS"], "echo")
if os.environ.get("TURBO_TEST_TID_LIB"):
    app.native("GET", "/native/tid", os.environ["TURBO_TEST_TID_LIB"], "tid")
    app.native("GET", "/native/hold", os.environ["TURBO_TEST_TID_LIB"], "hold")
    app.native("GET", "/native/let-go", os.environ["TURBO_TEST_TID_LIB"], "let_go")
    app.native("GET", "/native/holding", os.environ["TURBO_TEST_TID_LIB"], "holding")

if __name__ == "__main__":
    app.run(host="127.0.0.1", port=0, workers=int(os.environ.get("APP_WORKERS", "1")),
            threads=int(os.environ.get("APP_THREADS", "1")))
