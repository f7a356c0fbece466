"""No async route, but an async exception handler: the asyncio loop starts at the first
exception, on whichever of the 8 threads meets one first, however many meet one at once."""
import os
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import turbo  # noqa: E402

app = turbo.App()


class Refused(Exception):
    pass


@app.exception_handler(Refused)
async def refused(request, exc):
    return turbo.JSONResponse({"refused": request.url.path}, 418)


@app.get("/refused")
def refuse():
    raise Refused()


@app.get("/loops")
def loops():
    return [t.name for t in threading.enumerate() if t.name == "turbo-asyncio"]


if __name__ == "__main__":
    app.run(port=int(os.environ["PORT"]), workers=1, threads=8)
