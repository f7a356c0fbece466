"""FastAPI twin of examples/hello.c, the peer for bench/run.py.

Run: uvicorn fastapi_plain:app --loop uvloop --http httptools --workers 1
Written as a FastAPI user would: plain returns and a Request for the raw echo.
"""
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.responses import PlainTextResponse, Response

app = FastAPI()


@app.get("/", response_class=PlainTextResponse)
async def plaintext():
    return "Hello, World!"


@app.get("/json")
async def json():
    return {"message": "Hello, World!"}


@app.get("/users/{id}")
async def user(id: str):
    return {"id": id}


@app.get("/items/{id}")
async def item(id: int, limit: int = 10):
    return {"id": id, "limit": limit}


async def current_user(x_user: str = Header("anonymous")):
    return x_user


@app.get("/dep/items/{id}")
async def item_for_user(id: int, limit: int = Query(10, gt=0), user: str = Depends(current_user)):
    return {"id": id, "limit": limit, "user": user}


@app.post("/echo")
async def echo(request: Request):
    body = await request.body()
    return Response(body, media_type=request.headers.get("content-type"))
