"""Dependencies as turbo serves them beyond what FastAPI 0.92 shows (tests/test_py.py):
when cleanups run, Annotated, overrides, an exception in a cleanup."""
import asyncio
import os
import threading
from typing import Annotated, List, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from turbo import (App, BackgroundTasks, Body, Cookie, Depends, FileResponse, Form, Header, JSONResponse, Query,
                   StaticFiles, StreamingResponse, UploadFile)

app = App()
EVENTS = []


def resource(name: str = "r"):
    EVENTS.append("open " + name)
    yield {"name": name, "open": True}
    EVENTS.append("close " + name)


@app.get("/yield")
def use_resource(r: dict = Depends(resource)):
    EVENTS.append("handler " + r["name"])
    return {"open": r["open"]}


async def async_resource(name: str = "a"):
    EVENTS.append("open " + name)
    await asyncio.sleep(0)
    yield name
    await asyncio.sleep(0)
    EVENTS.append("close " + name)


@app.get("/async-yield")
async def use_async_resource(r: str = Depends(async_resource)):
    EVENTS.append("handler " + r)
    return r


def broken_cleanup():
    yield 1
    raise RuntimeError("cleanup failed on purpose")


@app.get("/broken-cleanup")
def use_broken_cleanup(v: int = Depends(broken_cleanup)):
    return {"v": v}


@app.get("/events")
def events():
    return EVENTS


def pages(skip: int = 0, limit: Annotated[int, Query(le=50)] = 10):
    return skip, limit


@app.get("/annotated")
def annotated(p: Annotated[tuple, Depends(pages)], q: Optional[str] = None):
    return {"skip": p[0], "limit": p[1], "q": q}


def real_user(token: str = Query()):
    return "user of " + token


@app.get("/user")
def user(name: str = Depends(real_user)):
    return name


@app.post("/upload")
async def upload(file: UploadFile, n: int = Form()):
    return {"size": file.size, "n": n, "on_disk": file.file._rolled, "type": file.headers["content-type"]}


RELEASE = threading.Event()


def waits_for_release(name):
    RELEASE.wait(20)
    EVENTS.append("task " + name)


async def async_task(name):
    await asyncio.sleep(0)
    EVENTS.append("async task " + name)


def failing_task():
    raise RuntimeError("background task failed on purpose")


@app.get("/background/{name}")
def background(name: str, tasks: BackgroundTasks, fail: bool = False):
    tasks.add_task(waits_for_release, name)
    tasks.add_task(failing_task)
    tasks.add_task(async_task, name=name)
    if fail:
        raise RuntimeError("the handler failed: its tasks must not run")
    return "queued " + name


@app.get("/release")
def release():
    RELEASE.set()
    return "released"


def send_email(to):
    EVENTS.append("email " + to)


@app.get("/signup/{name}")
def signup(name: str, tasks: BackgroundTasks):
    tasks.add_task(send_email, name)
    return JSONResponse({"ok": True}, status_code=201, background=tasks)


@app.get("/async-signup/{name}")
async def async_signup(name: str, tasks: BackgroundTasks):
    tasks.add_task(send_email, name)
    return JSONResponse({"ok": True}, status_code=201, background=tasks)


@app.get("/streamed-signup/{name}")
def streamed_signup(name: str, tasks: BackgroundTasks):
    def parts():
        EVENTS.append("stream " + name)
        yield "ok"
    tasks.add_task(send_email, name)
    return StreamingResponse(parts(), status_code=201, background=tasks)


@app.get("/queue-last")
def queue_last(tasks: BackgroundTasks):
    """Its task is queued after those of the answers before it."""
    tasks.add_task(EVENTS.append, "last")
    return "queued"


@app.get("/factory")
def factory(tags: list = Body(default_factory=list), seen: int = Query(default_factory=lambda: len(EVENTS))):
    tags.append("mine")  # a fresh list each time: a shared default would grow
    return {"tags": tags, "seen_is_int": isinstance(seen, int)}


FILES = os.environ["FILES_DIR"]
app.mount("/files", StaticFiles(directory=FILES, html=True))
app.static("/raw", FILES, cache_control="no-store")


@app.get("/download")
def download():
    return FileResponse(os.path.join(FILES, "notes.txt"), filename="my notes.txt")


@app.get("/file/{name}")
async def a_file(name: str, status: int = 200, media_type: str = None):
    """An async handler's FileResponse: its answer is resumed, without the request."""
    return FileResponse(os.path.join(FILES, name), status_code=status, media_type=media_type)


@app.get("/sync-file/{name}")
def sync_file(name: str, status: int = 200, media_type: str = None):
    return FileResponse(os.path.join(FILES, name), status_code=status, media_type=media_type)


app.dependency_overrides[real_user] = lambda: "overridden"  # after the route: run() applies it

class Filters(BaseModel):  # FastAPI 0.115's parameter models (Debian's 0.92 has none to compare)
    limit: int = Field(100, gt=0, le=100)
    offset: int = 0
    order_by: Literal["created_at", "updated_at"] = "created_at"
    tags: List[str] = []
    since: List[int] = Field(default_factory=list)


class Auth(BaseModel):
    x_token: str
    agent: Optional[str] = Field(None, alias="user-agent")


class Prefs(BaseModel):
    theme: str = "light"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    a: int = 0


@app.get("/models/items")
def model_items(filters: Annotated[Filters, Query()], auth: Annotated[Auth, Header()],
                prefs: Prefs = Cookie()):
    return {"filters": filters.model_dump(), "set": sorted(filters.model_fields_set),
            "auth": auth.model_dump(), "prefs": prefs.model_dump()}


@app.get("/models/strict")
async def model_strict(q: Annotated[Strict, Query()]):
    return q.model_dump()


@app.post("/models/form")
def model_form(form: Annotated[Prefs, Form()]):
    return form.model_dump()


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=0, workers=1)
