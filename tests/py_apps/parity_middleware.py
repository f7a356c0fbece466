"""HTTP middleware, one source for two frameworks: FastAPI when PARITY_FRAMEWORK=fastapi (served
by uvicorn), turbo otherwise. tests/test_fastapi_parity.py compares them."""
import asyncio
import os

if os.environ.get("PARITY_FRAMEWORK") == "fastapi":
    from fastapi import Depends, FastAPI as App, HTTPException, Request
    from fastapi.responses import JSONResponse
else:
    from turbo import App, Depends, HTTPException, JSONResponse, Request

app = App()


@app.middleware("http")
async def tag_answers(request: Request, call_next):
    response = await call_next(request)
    response.headers["X-A"] = "tagged " + request.url.path
    return response


@app.middleware("http")
async def refuse_blocked(request: Request, call_next):
    if request.headers.get("x-block"):
        return JSONResponse({"blocked": True}, status_code=403)
    return await call_next(request)


def user(x_user: str = "anon"):
    return x_user


@app.get("/sync/{n}")
def sync_route(n: int, who: str = Depends(user)):
    return {"n": n, "who": who}


@app.get("/async")
async def async_route():
    await asyncio.sleep(0)
    return {"async": True}


@app.get("/missing")
def missing():
    raise HTTPException(status_code=404, detail="nope", headers={"X-Reason": "mw"})


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=0, workers=1)
