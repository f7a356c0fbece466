"""A sync app for tests/test_py.py's checks of the GIL kept between requests.
CPython's switch interval is 60 s here, so a loop that kept the GIL through
its wait while another thread wanted it would hold that thread up a minute.
APP_WATCHER=1 starts a thread that waits for GET /kick, then prints."""
import os
import sys
import threading

import turbo

sys.setswitchinterval(60)
app = turbo.App()
kicked = threading.Event()


@app.get("/")
def hello():
    return {"hello": "world"}


@app.get("/kick")
def kick():
    kicked.set()
    return {"kicked": True}


def watch():
    kicked.wait()
    print("watcher: kicked", flush=True)


if os.environ.get("APP_WATCHER"):
    threading.Thread(target=watch, daemon=True).start()

if __name__ == "__main__":
    app.run(host="127.0.0.1", port=0, workers=1, threads=1)
