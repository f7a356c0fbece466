"""Streamed answers: StreamingResponse from sync and async iterators, generator routes (JSON
lines, server-sent events), and what happens when the client goes (the generators note it in
files under $STREAM_DIR, which the tests wait for)."""
import asyncio
import itertools
import os
import sys
import time
from typing import AsyncIterable, Iterator

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from pydantic import BaseModel  # noqa: E402

import turbo  # noqa: E402
from turbo import (BackgroundTasks, EventSourceResponse, ServerSentEvent,  # noqa: E402
                   StreamingResponse)

app = turbo.App()
NOTES = os.environ["STREAM_DIR"]


def note(name, text="done"):
    # Written whole, then renamed, so a test that sees the file never reads it half written.
    with open(os.path.join(NOTES, name + ".tmp"), "w") as f:
        f.write(text)
    os.rename(os.path.join(NOTES, name + ".tmp"), os.path.join(NOTES, name))


class Item(BaseModel):
    name: str
    price: float


class QuickPings(EventSourceResponse):
    ping_seconds = 0.05


@app.get("/sync")
def sync_parts(n: int = 3):
    def parts():
        for i in range(n):
            time.sleep(0.001)  # a sync iterator may block: it runs on a thread of its own
            yield "part %d\n" % i
    return StreamingResponse(parts(), media_type="text/plain", headers={"X-Kind": "sync"})


@app.get("/async")
async def async_parts():
    async def parts():
        for i in range(3):
            await asyncio.sleep(0)
            yield b"chunk %d\n" % i
    return StreamingResponse(parts(), status_code=201)


@app.get("/watch-client")
async def watch_client(request: turbo.Request):
    """Answers once the client has gone, noting what is_disconnected() said first and then."""
    note("watching", str(await request.is_disconnected()))
    while not await request.is_disconnected():
        await asyncio.sleep(0.01)
    note("watched", "gone")
    return {"gone": True}


@app.get("/big")
def big(mib: int):
    return StreamingResponse(itertools.repeat(b"x" * (1 << 20), mib))


@app.get("/endless-async")
async def endless_async():
    async def parts():
        try:
            while True:
                yield b"tick\n"
                await asyncio.sleep(0.001)
        finally:
            note("endless-async")
    return StreamingResponse(parts())


@app.get("/endless-sync")
def endless_sync():
    def parts():
        try:
            while True:
                yield b"tick\n"
        finally:
            note("endless-sync")
    return StreamingResponse(parts())


@app.get("/broken")
async def broken():
    async def parts():
        yield b"first\n"
        raise RuntimeError("the stream broke")
    return StreamingResponse(parts())


@app.get("/later")
def later(tasks: BackgroundTasks):
    tasks.add_task(note, "later")
    return StreamingResponse(iter(["a", "b"]), background=tasks)


@app.get("/later-json")
def later_json(tasks: BackgroundTasks):
    tasks.add_task(note, "later-json")
    return turbo.JSONResponse({"queued": True}, background=tasks)


@app.get("/lines")
async def lines() -> AsyncIterable[Item]:
    for i in range(2):
        yield {"name": "n%d" % i, "price": i, "secret": "filtered out by Item"}


@app.get("/plain-lines")
def plain_lines():
    yield {"a": 1}
    yield [1, "two"]


def user(x_user: str = turbo.Header("anon")):
    return x_user


@app.get("/greetings")
def greetings(name: str = turbo.Depends(user)):
    """A generator route with a dependency: its Solver streams what it yields too."""
    for word in ("hello", "bye"):
        yield {"word": word, "to": name}


@app.get("/events", response_class=EventSourceResponse)
def events() -> Iterator[Item]:
    yield Item(name="a", price=1)
    yield ServerSentEvent(data={"x": 1}, event="update", id="7", retry=100, comment="two\nlines")
    yield ServerSentEvent(raw_data="line 1\nline 2")


@app.get("/quiet", response_class=QuickPings)
async def quiet():
    try:
        yield "hello"
        await asyncio.Event().wait()  # nothing more: pings keep the connection alive
    finally:
        note("quiet")


if __name__ == "__main__":
    app.run(port=int(os.environ["PORT"]), workers=1)
