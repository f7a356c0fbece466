"""HTTP middleware, one source for two frameworks: FastAPI when PARITY_FRAMEWORK=fastapi (served
by uvicorn), turbo otherwise. tests/test_fastapi_parity.py compares them. MIDDLEWARE_EXTRAS (turbo
only, for tests/test_py.py): "around" adds an ASGI middleware class, a native route, a static
folder ($MIDDLEWARE_FILES) and a handler for 404; "catch-all" adds a route that takes every path."""
import asyncio
import os
import threading

if os.environ.get("PARITY_FRAMEWORK") == "fastapi":
    from fastapi import Depends, FastAPI as App, HTTPException, Request, Response, WebSocket
    from fastapi.responses import JSONResponse, StreamingResponse
else:
    from turbo import App, Depends, HTTPException, JSONResponse, Request, Response, StreamingResponse, WebSocket

app = App()
# Met once 12 requests wait on it at once: sync functions behind an http middleware run on as
# many threads as FastAPI's (40), not asyncio's default pool (6 on 2 cores).
met = threading.Barrier(12, timeout=15)


async def _again(pieces):
    for piece in pieces:
        yield piece


@app.middleware("http")
async def read_body(request: Request, call_next):
    """Reads the answer's body, as logging or signing middleware does, when asked to."""
    response = await call_next(request)
    if request.headers.get("x-put-back"):  # a recipe of FastAPI users: read it, then put it back
        pieces = [piece async for piece in response.body_iterator]
        response.body_iterator = _again(pieces)
        response.headers["X-Body-Length"] = str(sum(map(len, pieces)))
        return response
    if not request.headers.get("x-read-body"):
        return response
    body = b"".join([piece async for piece in response.body_iterator])
    headers = dict(response.headers, **{"X-Body-Length": str(len(body))})
    return Response(content=body, status_code=response.status_code, media_type=response.media_type,
                    headers=headers)


@app.middleware("http")
async def tag_answers(request: Request, call_next):
    response = await call_next(request)
    response.headers["X-A"] = "tagged " + request.url.path
    return response


@app.middleware("http")
async def refuse_blocked(request: Request, call_next):
    if request.headers.get("x-block"):
        return JSONResponse({"blocked": True}, status_code=403)
    return await call_next(request)


def user(x_user: str = "anon"):
    return x_user


@app.get("/sync/{n}")
def sync_route(n: int, who: str = Depends(user)):
    return {"n": n, "who": who}


@app.get("/async")
async def async_route():
    await asyncio.sleep(0)
    return {"async": True}


@app.get("/stream")
def stream():
    return StreamingResponse(iter([b"ab", b"cd"]), media_type="text/plain")


@app.get("/meet")
def meet():
    met.wait()
    return {"met": True}


@app.post("/notes")
def add_note(note: dict):
    return {"noted": note}


@app.websocket("/ws")
async def say_n(websocket: WebSocket, n: int):
    """A WebSocket route: http middleware never sees its handshake (tests/test_py.py)."""
    await websocket.accept()
    await websocket.send_text(str(n))
    await websocket.close()


@app.get("/missing")
def missing():
    raise HTTPException(status_code=404, detail="nope", headers={"X-Reason": "mw"})


EXTRAS = os.environ.get("MIDDLEWARE_EXTRAS", "")
if EXTRAS == "around":
    class TagOutside:
        """A pure ASGI middleware class: outside the http middleware, it tags every answer."""

        def __init__(self, app):
            self.app = app

        async def __call__(self, scope, receive, send):
            async def tagged(message):
                if message["type"] == "http.response.start":
                    message["headers"] = list(message.get("headers", [])) + [(b"x-b", b"outside")]
                await send(message)
            await self.app(scope, receive, tagged)

    app.add_middleware(TagOutside)
    app.native("GET", "/health", os.environ["TURBO_TEST_HANDLERS"], "health")
    app.static("/files", os.environ["MIDDLEWARE_FILES"])

    @app.exception_handler(404)
    def custom_404(request, exc):
        return JSONResponse({"custom404": request.url.path}, status_code=404)
elif EXTRAS == "catch-all":
    @app.get("/{rest:path}")
    def catch_all(rest: str):
        return {"rest": rest}


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=0, workers=1)
