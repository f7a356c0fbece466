"""WebSocket endpoints for tests/test_py.py: echoes, parameters, subprotocols, closes, refusals
and failures. What an endpoint learns of the client's close it notes in a file under $WS_NOTES
(named by the id query parameter), which the tests wait for."""
import asyncio
import os
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import turbo  # noqa: E402
from pydantic import BaseModel, Field  # noqa: E402

from turbo import Depends, Header, Query, WebSocket, WebSocketDisconnect, WebSocketException, status  # noqa: E402

app = turbo.App()
router = turbo.APIRouter(prefix="/routed")
NOTES = os.environ["WS_NOTES"]


def note(name, text):
    if not name:  # the test does not wait for one
        return
    with open(os.path.join(NOTES, name + ".tmp"), "w") as f:
        f.write(text)
    os.rename(os.path.join(NOTES, name + ".tmp"), os.path.join(NOTES, name))


@app.websocket("/echo/{kind}")
async def echo(websocket: WebSocket, kind: str, id: str = ""):
    await websocket.accept()
    receive = getattr(websocket, "receive_" + kind)
    send = getattr(websocket, "send_" + kind)
    try:
        while True:
            await send(await receive())
    except WebSocketDisconnect as e:
        note(id, "%s %d" % (type(e).__name__, e.code))


@app.websocket("/rooms/{room}")
async def room(ws: WebSocket, room: str, n: int = 1):
    await ws.accept()
    await ws.send_json({"room": room, "n": n, "path_params": ws.path_params,
                        "query_params": ws.query_params, "user": ws.headers.get("x-user")})
    await ws.close(4000, "bye")


@app.websocket("/protocol")
async def protocol(websocket: WebSocket):
    offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",")]
    await websocket.accept(subprotocol="chat" if "chat" in offered else None,
                           headers=[(b"x-accepted", b"yes")])
    await websocket.send_text("protocol")
    await websocket.close()


@app.websocket("/never")
async def never(websocket: WebSocket):
    return


@app.websocket("/refuse")
async def refuse(websocket: WebSocket):
    await websocket.close(status.WS_1008_POLICY_VIOLATION)


@app.websocket("/fail-before")
async def fail_before(websocket: WebSocket):
    raise RuntimeError("failed before accepting")


@app.websocket("/fail-after")
async def fail_after(websocket: WebSocket):
    await websocket.accept()
    await websocket.receive_text()
    raise RuntimeError("failed after accepting")


@app.websocket("/count")
async def count(websocket: WebSocket, n: int):
    await websocket.accept()
    for i in range(n):
        await websocket.send_text(str(i))
    await websocket.close()


@app.websocket("/burst")
async def burst(websocket: WebSocket, mib: int):
    """mib messages of 1 MiB, as fast as sends return: each waits while turbo holds 1 MiB."""
    await websocket.accept()
    for i in range(mib):
        await websocket.send_bytes(bytes([i]) * (1 << 20))
    await websocket.close()


_released = []  # the asyncio.Event /slow waits on, made on the loop's thread


def released():
    if not _released:
        _released.append(asyncio.Event())
    return _released[0]


@app.get("/slow/release")
async def slow_release():
    released().set()
    return {"released": True}


@app.websocket("/slow")
async def slow(websocket: WebSocket, n: int):
    """Receives nothing until released, then n messages: meanwhile turbo stops reading."""
    await websocket.accept()
    await released().wait()
    size = 0
    for _ in range(n):
        size += len(await websocket.receive_bytes())
    await websocket.send_text("%d messages, %d bytes" % (n, size))


_stalled = threading.Event()  # set by /stall/release, a plain def route: turbo's thread runs it


@app.get("/stall/release")
def stall_release():
    _stalled.set()
    return {"released": True}


@app.websocket("/stall")
async def stall(websocket: WebSocket, n: int):
    """Receives a message, says so, then holds the loop's thread itself until released (a loop
    fallen behind: none of turbo's events is handled meanwhile), then receives the other n - 1."""
    _stalled.clear()
    await websocket.accept()
    size = len(await websocket.receive_bytes())
    await websocket.send_text("stalling")
    _stalled.wait(60)
    for _ in range(n - 1):
        size += len(await websocket.receive_bytes())
    await websocket.send_text("%d messages, %d bytes" % (n, size))


@app.websocket("/timeout")
async def timeout(websocket: WebSocket):
    """A receive given up (its future cancelled) loses no message."""
    await websocket.accept()
    try:
        await asyncio.wait_for(websocket.receive_text(), 0.01)
    except asyncio.TimeoutError:
        await websocket.send_text("timed out")
    await websocket.send_text("then " + await websocket.receive_text())


@app.websocket("/messages")
async def messages(websocket: WebSocket):
    """receive() and send() as ASGI messages, as Starlette's WebSocket has them too."""
    first = await websocket.receive()
    await websocket.send({"type": "websocket.accept"})
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            break
        await websocket.send({"type": "websocket.send", "text": "%s %s" % (first["type"], message)})


@router.websocket("/upper")
async def upper(websocket: WebSocket, id: str = ""):
    await websocket.accept()
    async for text in websocket.iter_text():
        await websocket.send_text(text.upper())
    note(id, "iteration ended")


def token_user(token: str = "", websocket: WebSocket = None):
    """A dependency of a WebSocket route: the query, and the WebSocket itself, as in FastAPI."""
    if token != "ok":
        raise WebSocketException(status.WS_1008_POLICY_VIOLATION)
    return {"token": token, "path": websocket.url.path}


async def session(id: str = ""):
    try:
        yield "session"
    finally:
        note(id, "cleaned up")  # once the endpoint is done, or has raised


audited = turbo.APIRouter(dependencies=[Depends(token_user)])


@audited.websocket("/guarded")
async def guarded(websocket: WebSocket, user=Depends(token_user), s=Depends(session),
                  agent: str = Header("")):
    await websocket.accept()
    await websocket.send_json({"user": user, "session": s, "agent": agent})
    if await websocket.receive_text() == "refuse":
        raise WebSocketException(4001, "refused after accepting")
    await websocket.close()


def real_user():
    return "real"


class Paging(BaseModel):
    limit: int = Field(10, gt=0)


@app.websocket("/who")
async def who(websocket: WebSocket, user: str = Depends(real_user), paging: Paging = Query()):
    await websocket.accept()
    await websocket.send_json({"user": user, "limit": paging.limit})
    await websocket.close()


@app.get("/plain")
def plain():
    return {"plain": True}


app.include_router(router)
app.include_router(audited, prefix="/audited")
app.dependency_overrides[real_user] = lambda: "overridden"  # after the route: run() applies it

if __name__ == "__main__":
    app.run(port=int(os.environ.get("PORT", 0)), workers=1)
