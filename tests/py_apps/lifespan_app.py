"""Lifespan and startup/shutdown handlers in every serving process (tests/test_py.py). Each
event is a line in the file $LIFESPAN_LOG, so the test can read them after the stop."""
import contextlib
import os

from turbo import App, Request

LOG = os.environ["LIFESPAN_LOG"]


def note(event):
    with open(LOG, "a") as f:
        f.write("%s %d\n" % (event, os.getpid()))


@contextlib.asynccontextmanager
async def lifespan(app):
    note("lifespan enter")
    yield {"pool": "pool of %d" % os.getpid()}
    note("lifespan exit")


app = App(lifespan=lifespan, on_shutdown=[lambda: note("shutdown handler")])


@app.on_event("startup")
async def warm_up():
    note("startup handler")
    if os.environ.get("FAIL_STARTUP"):
        raise ConnectionError("database unreachable")


@app.get("/state")
def state(request: Request):
    return {"pool": request.state.pool, "pid": os.getpid()}


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=0, workers=int(os.environ.get("WORKERS", "1")))
