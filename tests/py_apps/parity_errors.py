"""Exception handlers, one source for two frameworks: FastAPI when PARITY_FRAMEWORK=fastapi
(served by uvicorn), turbo otherwise. tests/test_fastapi_parity.py compares them."""
import os

if os.environ.get("PARITY_FRAMEWORK") == "fastapi":
    from fastapi import Depends, FastAPI as App, HTTPException
    from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, PlainTextResponse
    from starlette.exceptions import HTTPException as BaseHTTPException
else:
    from turbo import App, Depends, HTTPException, JSONResponse, PlainTextResponse, RequestValidationError
    from turbo.exceptions import http_exception_handler, request_validation_exception_handler
    try:  # code written for FastAPI registers Starlette's, and may raise it
        from starlette.exceptions import HTTPException as BaseHTTPException
    except ImportError:
        BaseHTTPException = HTTPException


class UnicornException(Exception):
    def __init__(self, name):
        self.name = name


class TeapotError(LookupError):
    pass


app = App()


@app.exception_handler(UnicornException)
async def unicorn_exception_handler(request, exc):  # the request of a route that took none
    return JSONResponse(status_code=418, content={
        "message": "Oops! %s did something." % exc.name, "method": request.method, "path": request.url.path,
        "params": request.path_params, "q": request.query_params.get("q"), "agent": request.headers.get("x-agent"),
        "disconnected": await request.is_disconnected()})


@app.exception_handler(LookupError)
def lookup_handler(request, exc):
    return PlainTextResponse("lookup: %s" % exc, status_code=409)


@app.exception_handler(RequestValidationError)
async def validation_handler(request, exc):
    if exc.body == [1]:  # the default answer, FastAPI's own handler
        return await request_validation_exception_handler(request, exc)
    return JSONResponse(status_code=400, content={"errors": len(exc.errors()), "body": exc.body,
                                                  "where": [list(e["loc"]) for e in exc.errors()]})


@app.exception_handler(BaseHTTPException)
async def http_handler(request, exc):
    if exc.status_code == 404:
        return await http_exception_handler(request, exc)
    return JSONResponse({"custom": exc.detail}, status_code=exc.status_code, headers=exc.headers)


@app.get("/taken")
def taken():
    raise BaseHTTPException(409, "taken")


class OutOfStock(BaseHTTPException):
    def __init__(self, sku):
        super().__init__(409, "out of stock")
        self.sku = sku


@app.exception_handler(OutOfStock)
async def out_of_stock(request, exc):  # nearer than the handler for HTTPException
    return JSONResponse({"sku": exc.sku}, status_code=409)


@app.get("/stock")
def stock():
    raise OutOfStock("A1")


@app.get("/conflict")
def conflict():  # FastAPI's own is a Starlette one: the handler above takes it
    raise HTTPException(409, "conflict", headers={"X-A": "c"})


@app.get("/unicorns/{name}")
def read_unicorn(name: str):
    if name == "yolo":
        raise UnicornException(name=name)
    return {"unicorn_name": name}


@app.get("/async-unicorns/{name}")
async def read_unicorn_async(name: str):
    raise UnicornException(name=name)


def teapot_dependency(brew: bool = False):
    if brew:
        raise TeapotError("short and stout")


@app.get("/tea")
def tea(ok=Depends(teapot_dependency)):
    return {"tea": True}


@app.post("/items/{item_id}")
def create(item_id: int, item: dict):
    return {"item_id": item_id, "item": item}


@app.get("/missing")
def missing():
    raise HTTPException(status_code=404, detail="Item not found", headers={"X-Reason": "none"})


@app.get("/boom")
def boom():
    raise RuntimeError("unhandled")


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=0, workers=1)
