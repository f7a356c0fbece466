"""A handler for 500 on an app with ASGI middleware (app.add_middleware) and an
@app.middleware("http"): what the parity suite cannot show (the request it is given, and the log
of the exception it answered)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import turbo  # noqa: E402
from turbo import JSONResponse  # noqa: E402

app = turbo.App()


class PassThrough:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)


app.add_middleware(PassThrough)


@app.middleware("http")
async def tag_answers(request, call_next):
    response = await call_next(request)
    response.headers["X-Tag"] = "tagged"
    return response


@app.exception_handler(500)
async def server_error(request, exc):
    return JSONResponse({"path": request.url.path, "error": str(exc)}, status_code=503)


@app.get("/fails")
def fails():
    raise RuntimeError("failed under middleware")


@app.get("/works")
def works():
    return {"works": True}


if __name__ == "__main__":
    app.run(port=int(os.environ["PORT"]), workers=1)
