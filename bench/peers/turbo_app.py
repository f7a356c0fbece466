"""turbo Python twin of bench/peers/fastapi_plain.py, for bench/run.py.

Same routes, written the same way as the FastAPI app: plain returns, and a
turbo.Request for the raw echo. Run: PORT=8080 TURBO_THREADS=1 python3 turbo_app.py
"""
import os

import turbo

app = turbo.App()


@app.get("/")
def plaintext():
    return turbo.Response("Hello, World!", media_type="text/plain")


@app.get("/json")
def json():
    return {"message": "Hello, World!"}


@app.get("/users/{id}")
def user(id: str):
    return {"id": id}


@app.get("/items/{id}")
def item(id: int, limit: int = 10):
    return {"id": id, "limit": limit}


def current_user(x_user: str = turbo.Header("anonymous")):
    return x_user


@app.get("/dep/items/{id}")
def item_for_user(id: int, limit: int = turbo.Query(10, gt=0), user: str = turbo.Depends(current_user)):
    return {"id": id, "limit": limit, "user": user}


@app.post("/echo")
def echo(request: turbo.Request):
    return turbo.Response(request.body, media_type=request.headers.get("content-type"))


if __name__ == "__main__":
    app.run(port=int(os.environ.get("PORT", "8000")), workers=1)
