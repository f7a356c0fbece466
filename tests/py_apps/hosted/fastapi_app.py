"""A FastAPI app as its users write it, for tests/test_hosting.py: served by uvicorn and by
turbo (python3 -m turbo), the answers must be the same."""
from fastapi import BackgroundTasks, FastAPI, HTTPException, Request, WebSocket
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel

app = FastAPI()
done = []


class Item(BaseModel):
    name: str
    price: float


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: str = None):
    return {"item_id": item_id, "q": q}


@app.post("/items", status_code=201)
def create_item(item: Item):
    return item


@app.get("/sync")
def sync_route():
    return {"sync": True}


@app.get("/teapot")
async def teapot():
    raise HTTPException(418, detail="short and stout", headers={"X-Tea": "earl grey"})


@app.get("/text", response_class=PlainTextResponse)
async def text():
    return "plain words"


@app.get("/stream")
async def stream():
    async def parts():
        for i in range(5):
            yield b"part %d\n" % i
    return StreamingResponse(parts(), media_type="text/plain")


@app.post("/echo")
async def echo(request: Request):
    body = await request.body()
    return {"length": len(body), "head": body[:16].decode("latin-1"),
            "type": request.headers.get("content-type")}


@app.get("/scope")
async def scope(request: Request):
    s = request.scope
    return {"keys": sorted(k for k in s if k not in ("app", "router", "endpoint", "path_params",
                                                      "route", "fastapi_astack", "extensions")),
            "path": s["path"], "raw_path": s["raw_path"].decode(), "query": s["query_string"].decode(),
            "root_path": s["root_path"], "method": s["method"], "http_version": s["http_version"],
            "client_host": s["client"][0], "headers": [k.decode() for k, _ in s["headers"]]}


@app.get("/background")
async def background(tasks: BackgroundTasks):
    tasks.add_task(done.append, 1)
    return {"queued": len(done)}


@app.get("/boom")
async def boom():
    raise RuntimeError("the app failed")


disconnects = []  # the close codes the WebSocket endpoints were told of


@app.websocket("/ws/{room}")
async def chat(websocket: WebSocket, room: str, n: int = 0):
    offered = websocket.scope["subprotocols"]
    await websocket.accept(subprotocol="chat" if "chat" in offered else None)
    await websocket.send_json({"room": room, "n": n, "offered": offered})
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            disconnects.append(message["code"])
            return
        if message.get("text") == "close":
            await websocket.close(4002, "asked")
            return
        if message.get("text") is not None:
            await websocket.send_text(message["text"].upper())
        else:
            await websocket.send_bytes(message["bytes"][::-1])


@app.get("/ws-disconnects")
def ws_disconnects():
    return disconnects


@app.websocket("/ws-refuse")
async def ws_refuse(websocket: WebSocket):
    await websocket.close(1008)


@app.websocket("/ws-never")
async def ws_never(websocket: WebSocket):
    return


@app.websocket("/ws-boom")
async def ws_boom(websocket: WebSocket):
    await websocket.accept()
    await websocket.receive_text()
    raise RuntimeError("the WebSocket endpoint failed")


# Behind an http middleware (Starlette's BaseHTTPMiddleware, whose receive() waits for a
# disconnect with a task it cancels): a stream, one that asks whether the client has gone
# (as server-sent events do), and JSON.
with_middleware = FastAPI()


@with_middleware.middleware("http")
async def tag(request: Request, call_next):
    response = await call_next(request)
    response.headers["X-MW"] = "1"
    return response


@with_middleware.get("/json")
def mw_json():
    return {"a": 1}


@with_middleware.get("/stream")
def mw_stream():
    return StreamingResponse(iter(["line%d\n" % i for i in range(3)]), media_type="text/plain")


@with_middleware.get("/events")
async def mw_events(request: Request):
    async def events():
        for i in range(3):
            if await request.is_disconnected():
                return
            yield "data: %d\n\n" % i
    return StreamingResponse(events(), media_type="text/event-stream")
