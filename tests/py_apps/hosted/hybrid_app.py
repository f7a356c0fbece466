"""A FastAPI app mounted under a turbo.App that took two of its routes over: one in Python,
one native C. Those two answer from turbo; everything else, /docs included, from FastAPI."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import turbo  # noqa: E402
from fastapi_app import app as fastapi_app  # noqa: E402
from starlette.responses import PlainTextResponse  # noqa: E402

app = turbo.App()


@app.get("/items/{item_id}")
def read_item(item_id: int, q: str = None):
    return {"item_id": item_id, "q": q, "served_by": "turbo"}


@app.get("/moved-over")
def moved_over():
    """A route moved from Starlette keeps its Starlette response: turbo runs it as an ASGI app."""
    return PlainTextResponse("from a Starlette response", status_code=203, headers={"X-From": "starlette"})


app.native("GET", "/health", os.environ["TURBO_TEST_HANDLERS"], "health")
app.mount("/", fastapi_app)

if __name__ == "__main__":
    app.run(host="127.0.0.1", port=0, workers=1)
