"""The handler for 500 (or for Exception) answering the exceptions no other handler takes, one
source for two frameworks: FastAPI when PARITY_FRAMEWORK=fastapi (served by uvicorn), turbo
otherwise. tests/test_fastapi_parity.py compares them. PARITY_VARIANT=middleware declares the
handler for 500 after the one for Exception, and adds an @app.middleware("http")."""
import asyncio
import os

if os.environ.get("PARITY_FRAMEWORK") == "fastapi":
    from fastapi import Depends, FastAPI as App, HTTPException
    from fastapi.responses import JSONResponse, PlainTextResponse
else:
    from turbo import App, Depends, HTTPException, JSONResponse, PlainTextResponse

VARIANT = os.environ.get("PARITY_VARIANT", "")


def answer_from(name):
    def handler(request, exc):
        return JSONResponse({"handler": name, "error": type(exc).__name__, "message": str(exc)},
                            status_code=503)
    return handler


if VARIANT == "middleware":
    app = App()
    app.add_exception_handler(Exception, answer_from("Exception"))
    app.add_exception_handler(500, answer_from("500"))  # later: it wins

    @app.middleware("http")
    async def tag_answers(request, call_next):
        response = await call_next(request)
        response.headers["X-A"] = "tagged"
        return response
else:
    app = App(exception_handlers={500: answer_from("500")})
    app.add_exception_handler(Exception, answer_from("Exception"))  # later: it wins


@app.exception_handler(LookupError)
def lookup_handler(request, exc):
    return PlainTextResponse("lookup: %s" % exc, status_code=409)


class Flaky(Exception):
    pass


@app.exception_handler(Flaky)
def flaky_handler(request, exc):
    raise ValueError("the handler failed too")  # on to the handler for 500


@app.get("/flaky")
def flaky():
    raise Flaky()


@app.get("/boom")
def boom():
    raise RuntimeError("unhandled")


@app.get("/async-boom")
async def async_boom():
    await asyncio.sleep(0)
    raise ZeroDivisionError("async unhandled")


def failing_dependency():
    raise OSError("dependency failed")


@app.get("/dependency")
def with_dependency(value=Depends(failing_dependency)):
    return value


@app.get("/lookup")
def lookup():
    raise KeyError("own handler")


@app.get("/http500")
def http500():
    raise HTTPException(500, "an HTTPException keeps its default answer")


@app.get("/items/{item_id}")
def item(item_id: int):
    return {"item_id": item_id}


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=0, workers=1)
