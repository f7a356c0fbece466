"""The apps of bench/hosted.py, each served by its usual server and by turbo
(`python3 -m turbo hosted_apps:NAME`): a bare ASGI app, a FastAPI async JSON route, a bare
WSGI app and a Flask JSON route; and twins, one a FastAPI app, the other a turbo.App, with the
same middleware: an @app.middleware("http") that adds a header, and CORSMiddleware."""
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from flask import Flask, jsonify

import turbo
import turbo.middleware


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


async def tag(request, call_next):
    response = await call_next(request)
    response.headers["X-Tag"] = "tagged"
    return response


def hello():
    return {"message": "Hello, World!"}


fastapi_mw, turbo_mw = FastAPI(), turbo.App()
fastapi_cors, turbo_cors = FastAPI(), turbo.App()
for app in (fastapi_mw, turbo_mw):
    app.middleware("http")(tag)
    app.get("/json")(hello)
for app, cls in ((fastapi_cors, CORSMiddleware), (turbo_cors, turbo.middleware.CORSMiddleware)):
    app.add_middleware(cls, allow_origins=["https://a.example"])
    app.get("/json")(hello)
