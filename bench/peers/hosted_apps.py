"""The apps of bench/hosted.py, each served by its usual server and by turbo
(`python3 -m turbo hosted_apps:NAME`): a bare ASGI app, a FastAPI async JSON route, a bare
WSGI app and a Flask JSON route."""
from fastapi import FastAPI
from flask import Flask, jsonify


async def bare_asgi(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"Hello, World!"})


fastapi_app = FastAPI()


@fastapi_app.get("/json")
async def fastapi_json():
    return {"message": "Hello, World!"}


def bare_wsgi(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello, World!"]


flask_app = Flask(__name__)


@flask_app.route("/json")
def flask_json():
    return jsonify(message="Hello, World!")
