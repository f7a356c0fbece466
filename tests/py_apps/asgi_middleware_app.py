"""ASGI middleware classes on a turbo.App (app.add_middleware): what the parity suite cannot
show. A middleware of the app's own answers some requests itself and counts the others."""
import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import turbo  # noqa: E402
from turbo import EventSourceResponse, JSONResponse, RequestValidationError  # noqa: E402
from turbo.middleware import GZipMiddleware  # noqa: E402

app = turbo.App()
SEEN = []


class Gate:
    """Refuses requests with X-Block before any route runs; counts the rest it lets through."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if any(k == b"x-block" for k, _ in scope["headers"]):
            await send({"type": "http.response.start", "status": 403,
                        "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"blocked"})
            return
        SEEN.append(scope["path"])
        await self.app(scope, receive, send)


app.add_middleware(GZipMiddleware, minimum_size=10)
app.add_middleware(Gate)


@app.exception_handler(RequestValidationError)
def invalid(request, exc):
    return JSONResponse({"path": request.url.path, "errors": len(exc.errors())}, status_code=400)


@app.get("/count/{n}")
def count(n: int):
    return {"n": n, "seen": len(SEEN)}


@app.post("/echo")
async def echo(request: turbo.Request):
    return {"body": (await request.body()).decode()}


@app.get("/fails")
def fails():
    raise RuntimeError("a route failed under middleware")


@app.get("/events", response_class=EventSourceResponse)
async def events():
    yield {"first": True}
    await asyncio.Event().wait()


if __name__ == "__main__":
    app.run(port=int(os.environ["PORT"]), workers=1)
