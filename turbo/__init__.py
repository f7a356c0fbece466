"""turbo: FastAPI-style Python apps on turbo.h, a small multi-core HTTP/1.1 server in C,
with native C routes and existing ASGI/WSGI apps beside them.

    import turbo
    app = turbo.App()

    @app.get("/users/{id}")
    def get_user(id: int):
        return {"id": id}

    app.mount("/", fastapi_app)   # every other request goes to an existing app
    app.run(port=8000)

Everything a request touches lives in the native module turbo._turbo (turbo_py.c): routing,
argument conversion, the call, the JSON answer, the ASGI scope and WSGI environ. This package
is what runs at import and decoration time (routes, parameter markers, response models), and
the command line (python3 -m turbo --help). Per request nothing here runs, but for a route
with a response model its validation (pydantic's, through _plans.ResponseModel).
"""
import asyncio
import inspect

from . import _plans, _turbo
from . import dependencies as _dependencies
from ._turbo import HTTPException, JSONResponse, Request, Response, __version__
from .dependencies import Depends, Security, SecurityScopes
from .params import Cookie, Header, Path, Query

__all__ = ["App", "Cookie", "Depends", "HTTPException", "Header", "JSONResponse", "Path", "Query",
           "Request", "Response", "Security", "SecurityScopes", "__version__", "interface_of"]


def interface_of(app):
    """"asgi" for an ASGI 3 app (a coroutine function, or an object whose __call__ is one),
    "wsgi" for any other callable, as uvicorn and Granian tell them apart."""
    if not callable(app):
        raise TypeError("%r is not an ASGI or WSGI app: it is not callable" % (app,))
    call = app if inspect.isroutine(app) or inspect.isclass(app) else type(app).__call__
    return "asgi" if asyncio.iscoroutinefunction(call) else "wsgi"


class App(_turbo.App):
    """App(dependencies=None): routes declared with decorators, served by app.run().
    dependencies: Depends(...) run before every route's handler, results unused.
    dependency_overrides: {dependency: replacement}, as FastAPI's; read when a route is
    declared, and again by run() for replacements that ask no more of the request."""

    def __init__(self, *, dependencies=None):
        super().__init__()
        self.dependencies = list(dependencies or ())
        self.dependency_overrides = {}
        self._solvers = []

    def route(self, path, methods=None, status_code=200, *, blocking=False, dependencies=None,
              response_model=_plans._DEFAULT, response_model_include=None,
              response_model_exclude=None, response_model_exclude_unset=False,
              response_model_exclude_none=False):
        """Decorates a handler for path and methods (default ["GET"]). blocking=True: the
        handler blocks (I/O), so its event loop is given away before it starts.
        dependencies: Depends(...) run before the handler, results unused.
        response_model (default: the return annotation, when it names a pydantic model)
        validates and filters what the handler returns, with FastAPI's response_model_*
        options."""
        def register(func):
            shape = _plans.response_model(func, response_model, include=response_model_include,
                                          exclude=response_model_exclude,
                                          exclude_unset=response_model_exclude_unset,
                                          exclude_none=response_model_exclude_none)
            endpoint, deps = func, self.dependencies + list(dependencies or ())
            if _dependencies.needed(func, deps):
                label = "%s %s" % ("|".join(methods or ["GET"]), path)
                endpoint = _dependencies.Solver(func, _plans.translate(path), deps,
                                                self.dependency_overrides, label)
                self._solvers.append(endpoint)
            self.add_route(path, endpoint, methods, status_code, blocking=blocking,
                           response=shape)
            return func
        return register

    def get(self, path, **options):
        """A GET route: route(path, ["GET"], ...) with the same options."""
        return self.route(path, ["GET"], **options)

    def post(self, path, **options):
        """A POST route."""
        return self.route(path, ["POST"], **options)

    def put(self, path, **options):
        """A PUT route."""
        return self.route(path, ["PUT"], **options)

    def patch(self, path, **options):
        """A PATCH route."""
        return self.route(path, ["PATCH"], **options)

    def delete(self, path, **options):
        """A DELETE route."""
        return self.route(path, ["DELETE"], **options)

    def run(self, host="127.0.0.1", port=8000, workers=None, threads=1, blocking_threads=0):
        """Serves until SIGINT/SIGTERM. workers: processes (None: one per CPU); threads: event
        loops per process; blocking_threads: spare threads per process for handlers that
        block (0: 64). port=0 picks a free port. TURBO_* environment variables override these.
        dependency_overrides set since the routes were declared apply from here."""
        if self.dependency_overrides:
            for solver in self._solvers:
                solver.override(self.dependency_overrides)
        return super().run(host, port, workers, threads, blocking_threads)

    def mount(self, path, app, *, interface=None, root_path=None):
        """Serves an existing ASGI (FastAPI, Starlette) or WSGI (Flask, Django) app for every
        request under path that turbo's own routes do not take, its 404s and /docs included.
        At a prefix ("/api") the app sees it as root_path (ASGI) or SCRIPT_NAME (WSGI), and the
        rest as its path; root_path= sets that value itself (a proxy in front strips a prefix).
        interface: "asgi" or "wsgi" when detection would guess wrong."""
        kind = interface or interface_of(app)
        if kind not in ("asgi", "wsgi"):
            raise ValueError("interface must be 'asgi' or 'wsgi', not %r" % (kind,))
        if root_path is None:
            self._mount(path, app, kind == "asgi")
        else:
            self._mount(path, app, kind == "asgi", root_path)
        return app
