"""turbo: FastAPI-style Python apps on turbo.h, a small multi-core HTTP/1.1 server in C,
with native C routes beside them.

    import turbo
    app = turbo.App()

    @app.get("/users/{id}")
    def get_user(id: int):
        return {"id": id}

    app.run(port=8000)

Everything a request touches lives in the native module turbo._turbo (turbo_py.c): routing,
argument conversion, the call, the JSON answer. This package is what runs at import and
decoration time, and the command line (python3 -m turbo --help). Nothing here runs per request.
"""
from ._turbo import App, HTTPException, JSONResponse, Request, Response, __version__

__all__ = ["App", "HTTPException", "JSONResponse", "Request", "Response", "__version__"]
