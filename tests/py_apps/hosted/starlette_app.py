"""A bare Starlette app with a lifespan that fills the request state, for
tests/test_hosting.py."""
import contextlib
import json
import os
import time

from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@contextlib.asynccontextmanager
async def lifespan(app):
    print("starlette_app: started", flush=True)
    yield {"db": "connected"}
    print("starlette_app: stopped", flush=True)


async def home(request):
    return JSONResponse({"path": request.url.path, "query": dict(request.query_params)})


async def state(request):
    return JSONResponse({"db": request.state.db})


async def head_or_get(request):
    return Response("twelve bytes", media_type="text/plain")


app = Starlette(routes=[Route("/", home), Route("/plain", head_or_get)])
# Lifespan state is ASGI spec 2.3 (uvicorn 0.17 has none): turbo-only tests use this one.
stateful = Starlette(routes=[Route("/state", state)], lifespan=lifespan)


def _unreachable():
    raise ConnectionError("database unreachable")


# Its startup fails (Starlette sends lifespan.startup.failed): served by no process.
failing_startup = Starlette(routes=[Route("/", home)], on_startup=[_unreachable])


def _unreachable_once_flagged():
    if os.path.exists(os.environ["FAIL_FLAG"]):
        _unreachable()
    print("flagged_startup: started", flush=True)


# Starts while the file named by $FAIL_FLAG does not exist: a deploy that goes wrong.
flagged_startup = Starlette(routes=[Route("/", home)], on_startup=[_unreachable_once_flagged])


def _unreachable_once_gated():
    while not os.path.exists(os.environ["GATE"]):
        time.sleep(0.01)
    _unreachable()


# Its startup fails once the file named by $GATE exists, requests queued meanwhile.
gated_failing_startup = Starlette(routes=[Route("/", home)], on_startup=[_unreachable_once_gated])


async def bare(scope, receive, send):
    """An ASGI app with no framework: two sends."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"bare"})


def _shown(v):
    """A scope value as JSON, with the type of each part."""
    if isinstance(v, bytes):
        return ["bytes", v.decode("latin-1")]
    if isinstance(v, (list, tuple)):
        return [type(v).__name__, [_shown(x) for x in v]]
    if isinstance(v, dict):
        return ["dict", {k: _shown(x) for k, x in v.items()}]
    return [type(v).__name__, v]


async def scope_dump(scope, receive, send):
    """The scope's keys, values and types and the request message, less what differs by nature:
    ports, the Host's port, and what uvicorn 0.17 has not (state, extensions)."""
    if scope["type"] != "http":
        return
    shown = {k: _shown(v) for k, v in scope.items() if k not in ("client", "server", "state", "extensions")}
    shown["headers"] = _shown([(k, b"-" if k == b"host" else v) for k, v in scope["headers"]])
    for k in ("client", "server"):
        shown[k] = [type(scope[k]).__name__, scope[k][0], type(scope[k][1]).__name__]
    shown["message"] = _shown(await receive())
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(shown, sort_keys=True).encode()})


async def stated_length(scope, receive, send):
    """A body in two parts under the Content-Length the app states."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"6")]})
    await send({"type": "http.response.body", "body": b"abc", "more_body": True})
    await send({"type": "http.response.body", "body": b"def"})


async def pathsend(scope, receive, send):
    """ASGI's http.response.pathsend, when the server offers it: /<name> of this folder's
    files, with a type of its own; any other name is a file that is not there."""
    if scope["type"] != "http":
        return
    assert "http.response.pathsend" in scope["extensions"], scope["extensions"]
    name = scope["path"].lstrip("/")
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/x-python"), (b"x-sent-by", b"pathsend")]})
    if scope["query_string"] == b"after-a-part":  # out of the protocol: the stream is cut
        await send({"type": "http.response.body", "body": b"a part", "more_body": True})
    await send({"type": "http.response.pathsend",
                "path": os.path.join(os.path.dirname(os.path.abspath(__file__)), name)})


async def misbehaving(scope, receive, send):
    """Sends a body before the start: an error the server must catch."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.body", "body": b"too early"})


async def gated(scope, receive, send):
    """Streams "first", then waits (10 s at most) for the file named by the query to exist
    before "second": a client sees the first part only if it was sent at once."""
    import asyncio
    import os
    import time
    if scope["type"] != "http":
        return
    gate = scope["query_string"].decode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"first\n", "more_body": True})
    deadline = time.monotonic() + 10
    while not os.path.exists(gate) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await send({"type": "http.response.body", "body": b"second\n", "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def watching(scope, receive, send):
    """Answers nothing until receive() reports that the client left; then writes the message's
    type to the file named by the query (its ".waiting" twin says the app is waiting)."""
    if scope["type"] != "http":
        return
    marker = scope["query_string"].decode()
    await receive()  # the (empty) body
    open(marker + ".waiting", "w").close()
    message = await receive()
    # Written whole, then renamed, so the test that sees the file never reads it half written.
    with open(marker + ".tmp", "w") as f:
        f.write(message["type"])
    os.rename(marker + ".tmp", marker)


async def endless(request):
    """Streams until the client leaves (Starlette stops the stream when receive() says so)."""
    import asyncio

    async def parts():
        while True:
            yield b"part\n"
            await asyncio.sleep(0.005)
    return StreamingResponse(parts(), media_type="text/plain")


async def streaming(scope, receive, send):
    """The endless stream; once it has ended, writes "stopped" to the file named by the query."""
    await Starlette(routes=[Route("/", endless)])(scope, receive, send)
    if scope["type"] == "http":
        with open(scope["query_string"].decode(), "w") as f:
            f.write("stopped")


async def poll_twice(scope, receive, send):
    """Waits for a disconnect twice with a timeout, as an app polling for one does: each
    receive() the timeout cancels must leave the next one waiting."""
    import asyncio
    if scope["type"] != "http":
        return
    await receive()  # the body
    seen = []
    for _ in range(2):
        try:
            seen.append((await asyncio.wait_for(receive(), 0.05))["type"])
        except asyncio.TimeoutError:
            seen.append("timeout")
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": ",".join(seen).encode()})
