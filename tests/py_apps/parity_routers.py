"""Routers, redirects and response classes, one source for two frameworks: FastAPI when
PARITY_FRAMEWORK=fastapi (served by uvicorn), turbo otherwise. tests/test_fastapi_parity.py
compares them."""
import os

if os.environ.get("PARITY_FRAMEWORK") == "fastapi":
    from fastapi import APIRouter, Depends, FastAPI as App, Header, HTTPException
    from fastapi import Response
    from fastapi.responses import (FileResponse, HTMLResponse, JSONResponse, PlainTextResponse,
                                   RedirectResponse, StreamingResponse)
else:
    from turbo import (APIRouter, App, Depends, FileResponse, Header, HTMLResponse, HTTPException,
                       JSONResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse)

CALLS = []


def token(x_token: str = Header()):
    if x_token != "secret":
        raise HTTPException(status_code=400, detail="X-Token header invalid")


def audit(x_audit: str = Header("none")):
    CALLS.append(x_audit)


users = APIRouter(prefix="/users", tags=["users"], dependencies=[Depends(token)])


@users.get("/")
def list_users():
    return [{"name": "ann"}]


@users.get("/{user_id}")
def read_user(user_id: int):
    return {"user_id": user_id}


admin = APIRouter()


@admin.post("/reset", status_code=202)
def reset():
    return {"reset": True}


@admin.get("/audit")
def read_audit():
    return {"calls": len(CALLS)}


settings = APIRouter(prefix="/settings")


@settings.get("")
def read_settings():
    return {"theme": "dark"}


admin.include_router(settings)

probes = APIRouter(prefix="/probe")


@probes.head("/")
def probe_head():
    return Response(headers={"X-A": "router head"})


@probes.trace("/")
def probe_trace():
    return PlainTextResponse("router trace")


app = App()
app.include_router(users)
app.include_router(admin, prefix="/admin", tags=["admin"], dependencies=[Depends(audit)])
app.include_router(probes)


@app.head("/status")
def status_head():
    return JSONResponse({"up": True}, headers={"X-A": "head"})


@app.trace("/status")
def status_trace():
    return {"traced": True}


@app.get("/items/")
def list_items():
    return ["a", "b"]


@app.post("/items/")
def add_item():
    return {"added": True}


@app.get("/things")
def list_things():
    return ["t"]


@app.get("/page", response_class=HTMLResponse)
def page():
    return "<h1>hi</h1>"


@app.get("/text", response_class=PlainTextResponse, status_code=201)
def text():
    return "plain words"


@app.get("/go")
def go():
    return RedirectResponse("/items/?a b=c")


@app.get("/go-permanent")
def go_permanent():
    return RedirectResponse(url="https://example.com/x", status_code=301)


@app.get("/cookie", status_code=201)
def cookie(response: Response, n: int = 1):
    response.set_cookie("session", "abc", max_age=60, httponly=True)
    response.headers["X-A"] = str(n)
    if n == 2:
        response.status_code = 202
    return {"n": n}


@app.get("/cookie-page", response_class=HTMLResponse)
def cookie_page(response: Response):
    response.headers["X-A"] = "html"
    return "<p>page</p>"


@app.get("/forget")
def forget():
    response = JSONResponse({"forgotten": True})
    response.delete_cookie("session")
    response.headers["X-A"] = "gone"
    return response


@app.get("/stream")
def stream(n: int = 3):
    return StreamingResponse(("line %d\n" % i for i in range(n)), media_type="text/plain",
                             headers={"X-A": "streamed"})


@app.get("/stream-async", status_code=201)
async def stream_async():
    async def parts():
        yield b"one,"
        yield "two"
    return StreamingResponse(parts(), status_code=202, media_type="text/csv")


@app.get("/file")
def a_file():
    return FileResponse(__file__, filename="routers.py")


@app.get("/file-typed")
async def a_typed_file():
    return FileResponse(__file__, media_type="text/csv", headers={"X-A": "file"})


@app.get("/raw", response_class=Response)
def raw():
    return Response(b"\x89PNG", media_type="image/png")


@app.get("/raw-json", response_class=JSONResponse)
def raw_json():
    return {"json": True}


@app.get("/to-items", response_class=RedirectResponse)
def to_items():
    return "/items/"


@app.get("/file-class", response_class=FileResponse)
def file_class():
    return __file__


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=0, workers=1)
