"""The mixed demo app: Python routes on turbo, with a native C route beside them.

    make                      # builds the turbo module and examples/handlers.so
    python3 examples/app.py   # serves on 127.0.0.1:8000, one process per CPU

PORT, TURBO_HOST, TURBO_PROCESSES, TURBO_THREADS (threads per process) and the
other TURBO_* variables override the arguments of app.run. The same app for
FastAPI is bench/app_fastapi.py."""
import atexit
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
from typing import Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import turbo  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
HANDLERS = os.environ.get("TURBO_HANDLERS", os.path.join(HERE, "handlers.so"))

app = turbo.App()

# SQLite in a fresh temporary directory, removed at exit by the process that
# made it (the worker processes forked from it leave it alone); one connection
# per thread, opened on first use (so after the worker processes have forked).
DB_DIR = tempfile.mkdtemp(prefix="turbo-app-")
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
        raise turbo.HTTPException(400, detail="name must be a string")
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
        raise turbo.HTTPException(400, detail="mb must be between 0 and 1024")
    block = b"x" * (mb << 20)  # filled, so the pages are really touched
    size = len(block)
    del block
    return {"mb": mb, "bytes": size}


app.native("GET", "/health", HANDLERS, "health")

if __name__ == "__main__":
    app.run(host="127.0.0.1", port=8000, workers=None)
