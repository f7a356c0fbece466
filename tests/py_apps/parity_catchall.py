"""A handler for Exception beside the default answers to HTTPException and
RequestValidationError, one source for two frameworks: FastAPI when PARITY_FRAMEWORK=fastapi
(served by uvicorn), turbo otherwise. tests/test_fastapi_parity.py compares them."""
import os

if os.environ.get("PARITY_FRAMEWORK") == "fastapi":
    from fastapi import Depends, FastAPI as App, HTTPException
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
else:
    from turbo import App, Depends, HTTPException, JSONResponse, RequestValidationError


class NotYours(HTTPException):
    pass


class Gone(HTTPException):
    pass


app = App()


@app.exception_handler(Exception)
def catch_all(request, exc):
    return JSONResponse({"error": type(exc).__name__}, status_code=500)


@app.exception_handler(Gone)
def gone_handler(request, exc):
    return JSONResponse({"gone": exc.detail}, status_code=410)


@app.get("/sync")
def sync():
    raise HTTPException(404, "no such item")


@app.get("/async")
async def async_route():
    raise HTTPException(404, "no such item")


def who():
    raise HTTPException(401, "who are you", headers={"WWW-Authenticate": "Bearer"})


@app.get("/guarded")
def guarded(user=Depends(who)):
    return user


@app.get("/not-yours")
def not_yours():
    raise NotYours(403, "not yours")


@app.get("/gone")
def gone():
    raise Gone(410, "long gone")


@app.get("/invalid")
def invalid():
    raise RequestValidationError([])


@app.get("/items/{item_id}")
def item(item_id: int):
    return item_id


@app.get("/boom")
def boom():
    raise RuntimeError("unhandled")


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=0, workers=1)
