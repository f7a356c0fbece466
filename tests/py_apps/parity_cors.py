"""ASGI middleware classes, one source for two frameworks: FastAPI when PARITY_FRAMEWORK=fastapi
(served by uvicorn), turbo otherwise, each with its own CORSMiddleware and GZipMiddleware.
tests/test_fastapi_parity.py compares them."""
import os

if os.environ.get("PARITY_FRAMEWORK") == "fastapi":
    from fastapi import FastAPI as App, HTTPException, Request
    from fastapi.middleware.cors import CORSMiddleware
    from fastapi.middleware.gzip import GZipMiddleware
    from fastapi.responses import PlainTextResponse, StreamingResponse
else:
    from turbo import App, HTTPException, PlainTextResponse, Request, StreamingResponse
    from turbo.middleware import CORSMiddleware, GZipMiddleware

app = App()
app.add_middleware(GZipMiddleware, minimum_size=100)
app.add_middleware(CORSMiddleware, allow_origins=["https://a.example"],
                   allow_origin_regex=r"https://.*\.b\.example", allow_methods=["GET", "POST"],
                   allow_headers=["X-Token"], allow_credentials=True, expose_headers=["X-Count"],
                   max_age=300)


class Stamp:
    """A pure ASGI middleware of the app's own: a header on every answer, the scope's path."""

    def __init__(self, app, name):
        self.app, self.name = app, name

    async def __call__(self, scope, receive, send):
        async def stamped(message):
            if message["type"] == "http.response.start":
                message["headers"] = list(message["headers"]) + [
                    (b"x-a", ("%s %s %s" % (self.name, scope["method"], scope["path"])).encode())]
            await send(message)
        await self.app(scope, receive, stamped)


app.add_middleware(Stamp, name="stamp")


@app.get("/items/{item_id}")
def item(item_id: int, q: str = ""):
    return {"item_id": item_id, "q": q}


@app.post("/items")
async def make(request: Request):
    return {"made": (await request.json())["name"]}


@app.get("/big")
def big(n: int = 300):
    return PlainTextResponse("x" * n)


@app.get("/teapot")
def teapot():
    raise HTTPException(status_code=418, detail="short and stout")


@app.get("/stream")
def stream():
    return StreamingResponse(("line %d\n" % i for i in range(50)), media_type="text/plain")


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=0, workers=1)
