"""Flask twin of examples/hello.c, the peer for bench/run.py.

Run: gunicorn --workers 1 flask_app:app   (gunicorn's default sync worker)
"""
from flask import Flask, Response, request

app = Flask(__name__)


@app.get("/")
def plaintext():
    return Response("Hello, World!", mimetype="text/plain")


@app.get("/json")
def json():
    return {"message": "Hello, World!"}


@app.get("/users/<id>")
def user(id):
    return {"id": id}


@app.post("/echo")
def echo():
    return Response(request.get_data(), content_type=request.content_type)
