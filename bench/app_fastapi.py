"""examples/app.py written for FastAPI, route for route (GET /health is
Python here: FastAPI has no native routes). For the benchmarks and
tests/test_fastapi_parity.py.

    python3 bench/app_fastapi.py            # uvicorn on 127.0.0.1:$PORT (8000)
    python3 -m uvicorn bench.app_fastapi:app --port 8000"""
import atexit
import os
import shutil
import sqlite3
import tempfile
import threading
from typing import Optional

from fastapi import FastAPI, HTTPException

app = FastAPI()

# SQLite in a fresh temporary directory, removed at exit by the process that
# made it (not by any process forked from it).
DB_DIR = tempfile.mkdtemp(prefix="fastapi-app-")
DB_PATH = os.path.join(DB_DIR, "items.db")
DB_OWNER = os.getpid()


@atexit.register
def remove_db_dir():
    if os.getpid() == DB_OWNER:
        shutil.rmtree(DB_DIR, ignore_errors=True)


with sqlite3.connect(DB_PATH) as setup:
    setup.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
setup.close()
local = threading.local()


def db():
    if not hasattr(local, "conn"):
        local.conn = sqlite3.connect(DB_PATH, timeout=10)
    return local.conn


@app.get("/")
def index():
    return {"message": "Hello, World!"}


@app.get("/health")
def health():
    return {"status": "ok"}


@app.post("/echo")
def echo(payload: dict):
    return payload


@app.get("/echo/{text}")
def echo_text(text: str):
    return {"echo": text}


@app.get("/users/{id}")
def get_user(id: int, q: Optional[str] = None, limit: int = 10):
    return {"id": id, "q": q, "limit": limit}


@app.get("/db/items")
def list_items():
    rows = db().execute("SELECT id, name FROM items ORDER BY id").fetchall()
    return {"items": [{"id": i, "name": n} for i, n in rows]}


@app.post("/db/items", status_code=201)
def add_item(item: dict):
    name = item.get("name")
    if not isinstance(name, str):
        raise HTTPException(400, detail="name must be a string")
    conn = db()
    with conn:
        cur = conn.execute("INSERT INTO items (name) VALUES (?)", (name,))
    return {"id": cur.lastrowid, "name": name}


@app.get("/stress/cpu/{n}")
def stress_cpu(n: int):
    total = 0
    for i in range(n):
        total += i * i
    return {"n": n, "result": total}


@app.get("/stress/memory/{mb}")
def stress_memory(mb: int):
    if not 0 <= mb <= 1024:
        raise HTTPException(400, detail="mb must be between 0 and 1024")
    block = b"x" * (mb << 20)
    size = len(block)
    del block
    return {"mb": mb, "bytes": size}


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "8000")),
                log_level="warning")
