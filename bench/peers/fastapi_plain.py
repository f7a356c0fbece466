"""FastAPI twin of examples/hello.c, the peer for bench/run.py.

Run: uvicorn fastapi_plain:app --loop uvloop --http httptools --workers 1
Written as a FastAPI user would: plain returns and a Request for the raw echo.
"""
from fastapi import FastAPI, Request
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


@app.post("/echo")
async def echo(request: Request):
    body = await request.body()
    return Response(body, media_type=request.headers.get("content-type"))
