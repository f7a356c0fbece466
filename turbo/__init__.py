"""turbo: FastAPI-style Python apps on turbo.h, a small multi-core HTTP/1.1 server in C,
with native C routes and existing ASGI/WSGI apps beside them (README.md: the API).

Everything a request touches lives in the native module turbo._turbo (turbo_py.c). This package
is what runs at import and decoration time, and the command line (python3 -m turbo --help); per
request nothing here runs, but a response model's validation (_plans.Shaper).
"""
import asyncio
import ctypes
import functools
import inspect
import os
import re
import sys
import types
import typing

from . import _plans, _support, _turbo, middleware, openapi, responses, routing, status
from . import dependencies as _dependencies
from ._turbo import JSONResponse, Request, Response, WebSocket, __version__
from .exceptions import HTTPException, RequestValidationError, WebSocketException
from .background import BackgroundTasks
from .background import run_sync as _run_sync
from .dependencies import Depends, Security, SecurityScopes
from .encoders import jsonable_encoder
from ._support import UploadFile, WebSocketDisconnect
from .params import Body, Cookie, File, Form, Header, Path, Query
from .responses import (EventSourceResponse, FileResponse, HTMLResponse, PlainTextResponse,
                        RedirectResponse, ServerSentEvent, StaticFiles, StreamingResponse)
from .routing import APIRouter

__all__ = ["APIRouter", "App", "BackgroundTasks", "Body", "Cookie", "Depends",
           "EventSourceResponse", "File", "FileResponse", "Form", "HTMLResponse", "HTTPException",
           "Header", "JSONResponse", "Path", "PlainTextResponse", "Query", "RedirectResponse",
           "Request", "RequestValidationError", "Response", "Security", "SecurityScopes",
           "ServerSentEvent", "StaticFiles", "StreamingResponse", "UploadFile", "WebSocket",
           "WebSocketDisconnect", "WebSocketException", "__version__", "interface_of", "jsonable_encoder", "status"]


def interface_of(app):
    """"asgi" for an ASGI 3 app (a coroutine function, or an object whose __call__ is one),
    "wsgi" for any other callable, as uvicorn and Granian tell them apart."""
    if not callable(app):
        raise TypeError("%r is not an ASGI or WSGI app: it is not callable" % (app,))
    call = app if inspect.isroutine(app) or inspect.isclass(app) else type(app).__call__
    return "asgi" if asyncio.iscoroutinefunction(call) else "wsgi"


class App(_turbo.App, routing.Routes):
    """Routes declared with decorators (get, post, ..., as FastAPI's), served by app.run(); the
    options are FastAPI's (README.md, "App"). Routes are checked as they are declared and
    registered by run(), with the dependency_overrides and the middleware of that time."""

    def __init__(self, *, dependencies=None, redirect_slashes=True, lifespan=None,
                 on_startup=None, on_shutdown=None, exception_handlers=None, title="turbo",
                 version="0.1.0", description="", summary=None, terms_of_service=None,
                 contact=None, license_info=None, servers=None, openapi_tags=None,
                 openapi_url="/openapi.json", docs_url="/docs", redoc_url="/redoc",
                 swagger_js_url=openapi.SWAGGER_JS, swagger_css_url=openapi.SWAGGER_CSS,
                 redoc_js_url=openapi.REDOC_JS):
        super().__init__()
        self.dependencies = list(dependencies or ())
        self.redirect_slashes = redirect_slashes
        self.title, self.version, self.description = title, version, description
        self.info_extra = dict(summary=summary, termsOfService=terms_of_service,  # the document's
                               contact=contact, license=license_info)
        self.servers, self.openapi_tags = servers, openapi_tags
        self.openapi_url, self.docs_url, self.redoc_url = openapi_url, docs_url, redoc_url
        self.swagger_js_url, self.swagger_css_url = swagger_js_url, swagger_css_url
        self.redoc_js_url = redoc_js_url
        self.natives = []     # (method, path, symbol, openapi) of each native route
        self.lifespan = lifespan
        self.handlers = {"startup": list(on_startup or ()), "shutdown": list(on_shutdown or ())}
        self._hosted = []     # (app, its lifespan state) of each mounted ASGI app
        self.exception_handlers = dict(exception_handlers or {})
        self.state = types.SimpleNamespace()  # Starlette's app.state: one per process
        self.dependency_overrides = {}
        self.middleware_stack = []  # @app.middleware("http") functions, the outermost last
        self.user_middleware = []   # (class, args, options) of add_middleware, the outermost last
        self._around = None         # their middleware.Around, made by run()
        self.routes = []      # routing.Route of every Python route, for the API document
        self._pending = []    # (build, pattern, label, methods, status, blocking): run() registers
        self._taken = set()   # every path served here: routes, native routes, mounts
        self._mounts = []     # prefixes that take every path under them: mounts, static folders
        self._statics = []    # (prefix, folder, index, dotfiles, cache_control) for turbo_static

    def _add(self, path, endpoint, o):
        methods = routing.methods_of(o["methods"])
        deps = self.dependencies + list(o["dependencies"] or ())
        label = "%s %s" % ("|".join(methods), path)
        if methods == ("WEBSOCKET",):  # C gives it a turbo.WebSocket, runs no middleware
            def build_websocket(middleware):
                """Made by run(), as a route's: the dependency_overrides of then apply."""
                return _dependencies.Solver(endpoint, _plans.translate(path), deps, self.dependency_overrides,
                                            label).for_websocket(), None
            build_websocket(())  # checked now
            return self._declare(path, build_websocket, methods, 200, False)
        if inspect.isgeneratorfunction(endpoint) or inspect.isasyncgenfunction(endpoint):
            item = typing.get_args(_plans._hints(endpoint).get("return"))[:1]  # AsyncIterable[X]
            model = item and _plans._mentions_model(*item) and _plans.Shaper(*item, None, o)
            shape = responses.Items(o["response_class"], o["status_code"], model or None)
        else:
            shape = _plans.shaper(endpoint, o)

        def build(middleware):
            """The call and result shaper C gets: the handler, or a Solver around it."""
            if not middleware and not _dependencies.needed(endpoint, deps):
                return endpoint, shape
            solver = _dependencies.Solver(endpoint, _plans.translate(path), deps,
                                          self.dependency_overrides, label, o["status_code"],
                                          shape, middleware, self._exception_response,
                                          self._server_error)
            return solver, None if middleware else shape
        route = routing.Route(path, endpoint, list(methods), o)
        route.call = build(())[0]  # checked now; the API document reads its plan
        _plans.describe(route.call, _plans.translate(path))
        self._declare(path, build, methods, o["status_code"], o["blocking"])
        self.routes.append(route)

    def add_route(self, path, endpoint, methods=None, status_code=200, *, blocking=False,
                  response=None):
        """A route without the decorators' options; response, if given, makes what is sent
        of each result that is no Response."""
        _plans.describe(endpoint, _plans.translate(path))  # refused now, not at run()
        self._declare(path, lambda middleware: (endpoint, response), routing.methods_of(methods),
                      status_code, blocking)

    def _declare(self, path, build, methods, status_code, blocking):
        Response(b"", status_code)  # a status turbo cannot send is refused here, as C would
        pattern = _plans.translate(path)
        self._check_route(pattern, methods)
        self._pending.append((build, pattern, "%s %s" % ("|".join(methods), path), methods,
                              status_code, blocking))
        self._taken.add(path)

    def middleware(self, middleware_type):
        """Decorates async mw(request, call_next), as FastAPI's @app.middleware("http"), for
        the app's Python routes; the last declared is the outermost."""
        if middleware_type != "http":
            raise ValueError('only "http" middleware is supported, not %r' % (middleware_type,))
        return routing.decorator(self.middleware_stack.append)

    def add_middleware(self, middleware_class, *args, **options):
        """A pure ASGI middleware class, as Starlette's app.add_middleware, outside the
        @app.middleware("http") functions: for the Python routes and the requests no route
        takes (turbo's 404 and 405), not native routes, static folders or mounted apps."""
        self.user_middleware.append((middleware_class, args, options))

    def native(self, method, path, library, symbol, *, blocking=False, openapi=None):
        """Serves a C turbo_handler, symbol, from the shared library at library. openapi: the
        operation's entries in the API document (summary, responses...), else a minimal one."""
        self._native(method.upper(), _plans.translate(path), _handler_address(library, symbol),
                     blocking)
        self._taken.add(path)
        self.natives.append((method.upper(), path, symbol, openapi))

    def static(self, path, directory, *, index=False, dotfiles=False, cache_control=None):
        """Serves the files under directory at path, in C (turbo.h's turbo_static); a
        folder's index.html with index=True, names starting with "." with dotfiles=True."""
        if not os.path.isdir(directory):
            raise ValueError("static files: %r is no folder" % (directory,))
        self._check_route(_plans.translate(path.rstrip("/")) + "/{tb_file...}", ("GET",))
        self._statics.append((path, directory, index, dotfiles, cache_control))
        self._mounts.append(path.rstrip("/") or "/")

    def exception_handler(self, exc_class_or_status_code):
        """Decorates handler(request, exc) (sync or async), which returns the Response for an
        exception of that class (or a subclass), or an HTTPException of that status."""
        return routing.decorator(functools.partial(self.add_exception_handler,
                                                   exc_class_or_status_code))

    def add_exception_handler(self, exc_class_or_status_code, handler):
        if exc_class_or_status_code is _starlette_http_exception():  # FastAPI's docs register it
            exc_class_or_status_code = HTTPException
        self.exception_handlers[exc_class_or_status_code] = handler

    def _handler_for(self, exc):
        """The handler of an HTTPException's status, else of the nearest class of exc, else
        None. HTTPException and RequestValidationError have default answers (None here), which
        are nearer than a handler for a class above them. 500 and Exception name the handler of
        the exceptions nothing else answers (_server_error), as in Starlette."""
        handlers, theirs = self.exception_handlers, _starlette_http_exception()
        if isinstance(exc, (HTTPException, theirs or HTTPException)) and exc.status_code != 500 \
                and exc.status_code in handlers:
            return handlers[exc.status_code]
        for cls in type(exc).__mro__:
            cls = HTTPException if cls is theirs else cls  # a handler for either takes both
            if cls is Exception:
                return None
            if cls in handlers or cls in _DEFAULT_ANSWERS:
                return handlers.get(cls)
        return None

    def _handle_exception(self, exc, request):
        """Called by C for a route's exception: its Response, _server_error's answer, None (a
        500), or for an async handler a coroutine that gives one of those, which C awaits on the
        asyncio loop as it awaits a route (a turbo thread waiting for it would hold its event
        loop)."""
        handler = self._handler_for(exc)
        if handler is None:
            answer = _default_answer(exc)
            return answer if answer is not None else self._server_error(exc, request)
        try:
            value = handler(request, exc)
        except Exception as raised:
            return self._handler_failed(raised, request)
        return self._awaited_answer(value, request) if inspect.isawaitable(value) else _as_response(value)

    async def _awaited_answer(self, value, request):
        try:
            value = await value
        except Exception as raised:
            return self._handler_failed(raised, request)
        return _as_response(value)

    def _handler_failed(self, raised, request):
        """An exception handler raised: as in Starlette, the handler for 500 answers, if any; else
        raised is raised again, for C to log with a 500."""
        answer = self._server_error(raised, request)
        if answer is None:
            raise raised
        return answer

    async def _exception_response(self, exc, request):
        """The same, on the loop, for the middleware's call_next; what is left goes out through
        the middleware to _server_error, as in Starlette."""
        handler = self._handler_for(exc)
        if handler is None:
            return _default_answer(exc)
        value = await _support._maybe_await(handler(request, exc))
        return value if isinstance(value, Response) else JSONResponse(value)

    def _server_error(self, exc, request):
        """For an exception nothing else answers, with a handler for 500 or for Exception (the
        later of the two in exception_handlers, as Starlette takes them): an ASGI app that sends
        its answer, then raises exc for C to log under the route, as Starlette's
        ServerErrorMiddleware raises it again for the server to log. Else None."""
        handlers = [h for key, h in self.exception_handlers.items() if key in (500, Exception)]
        if not handlers or self._handler_for(exc) is not None or _default_answer(exc) is not None:
            return None
        handler = handlers[-1]

        async def answer(scope, receive, send):
            if inspect.iscoroutinefunction(handler):
                value = await handler(request, exc)
            else:  # off the loop, as Starlette runs it in its thread pool
                value = await _run_sync(handler, request, exc)
            response = value if isinstance(value, Response) else JSONResponse(value)
            await middleware.send_response(response, send)
            raise exc
        return answer

    def _handle_invalid(self, errors, request, http_middleware=True):
        """Called by C with a request's 422 errors: a Response, or None (turbo's 422); under
        middleware, what comes out of it (a coroutine or an ASGI app C runs)."""
        handler = self.exception_handlers.get(RequestValidationError)
        http_middleware = http_middleware and self.middleware_stack
        if handler is None and self._around is None and not http_middleware:
            return None
        exc = RequestValidationError(errors, request.body)
        if http_middleware:  # answered inside the http middleware, as FastAPI's 422
            async def call_next(request):
                return await self._exception_response(exc, request)
            respond = functools.partial(_dependencies.through_middleware, tuple(self.middleware_stack),
                                        call_next, request, self._server_error)
            return respond() if self._around is None else self._around.exchange(request, respond)
        answer = None
        if handler is not None:  # an async one's answer awaited on the loop, as above
            value = handler(request, exc)
            answer = _as_response_of(value) if inspect.isawaitable(value) else _as_response(value)
        if self._around is None:
            return answer
        respond = (lambda: answer) if inspect.isawaitable(answer) else _support.ready(answer or exc.response())
        return self._around.exchange(request, respond)

    def _handle_invalid_handshake(self, errors, request):
        """The same for a WebSocket route's handshake, which no http middleware sees (Starlette's
        run for http requests only)."""
        return self._handle_invalid(errors, request, False)

    def on_event(self, event):
        """Decorates a function (sync or async) to call as each process starts or stops."""
        return routing.decorator(functools.partial(self.add_event_handler, event))

    def add_event_handler(self, event, func):
        if event not in self.handlers:
            raise ValueError("event must be 'startup' or 'shutdown', not %r" % (event,))
        self.handlers[event].append(func)

    def _lifespan(self, starting):
        """Called by C as each process starts and stops: the mounted apps' lifespans, then
        this app's, entered in order on the loop and left in reverse order. False when one
        failed to start (the process then serves nothing)."""
        loop = _support.Loop.current
        if loop is not None and not starting:
            loop.run(loop.lifespans.aclose())
        elif loop is not None:
            own = (_support.OwnLifespan(self), _support.LIFESPAN_STATE)
            for app, state in self._hosted + [own]:
                try:
                    loop.run(loop.lifespans.enter_async_context(_support.lifespan(app, state)))
                except _support.StartupFailed:
                    return False
        return True

    def run(self, host="127.0.0.1", port=8000, workers=None, threads=1, blocking_threads=0,
            forwarded_allow_ips=None):
        """Serves until SIGINT/SIGTERM. workers: processes (None: one per usable CPU); threads: event
        loops per process; blocking_threads: spare threads for handlers that block (0: 64);
        forwarded_allow_ips: the proxies whose X-Forwarded-Proto and -For are believed (None:
        $FORWARDED_ALLOW_IPS, else 127.0.0.1, as uvicorn; "*": any; "": none)."""
        if self.openapi_url:
            openapi.add_routes(self, self._free)
        if self.redirect_slashes:
            self._add_slash_redirects()
        paths = self._served_paths()
        around = self._around = self.user_middleware and middleware.Around(self.user_middleware, paths) or None
        # The requests no route takes go through the middleware, unless something has them all.
        if "/" not in self._mounts and not any(_ROOT_TAIL.fullmatch(p[1]) for p in self._pending):
            if self.middleware_stack:
                self._pending.append(self._unrouted_route(paths))
            elif around:
                self._mount(("/{tb_path...}",), around.app, True, "", 0, "ASGI middleware at /", {})
        for build, pattern, label, methods, status_code, blocking in self._pending:
            call, shape = build(tuple(self.middleware_stack) + ((around,) if around else ()))
            self._add_route(pattern, label, call, methods, status_code, blocking, shape)
        self._pending = []
        processes = _usable_cpus() if workers is None else workers
        if processes < 1 or threads < 1 or blocking_threads < 0:
            raise ValueError("workers and threads must be at least 1, blocking_threads at least 0")
        needs_loop = bool(self.lifespan or self.handlers["startup"] or self.handlers["shutdown"])
        # A loop with the GIL keeps it this long through a wait, while no other thread wants it.
        keep_gil_ms = int(sys.getswitchinterval() * 1000)  # 0 below 1 ms: not kept
        _support.APP = self
        self._run(host, port, processes, threads, blocking_threads, needs_loop, tuple(self._statics),
                  keep_gil_ms, os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
                  if forwarded_allow_ips is None else forwarded_allow_ips)

    def _served_paths(self):
        """What is served here, for the 405s of the requests no route takes: the routes (the API
        pages and slash twins among them), the native routes and the static folders."""
        served = [(pattern, methods) for _, pattern, _, methods, _, _ in self._pending
                  if methods != ("WEBSOCKET",)]
        served += [(_plans.translate(path), (method,)) for method, path, _, _ in self.natives]
        served += [(prefix.rstrip("/") + "/{tb_path...}", ("GET", "HEAD")) for prefix, *_ in self._statics]
        return middleware.route_paths(served)

    def _unrouted_route(self, paths):
        """A route under every other, for the requests none takes: its 404 or 405 is raised
        inside the http middleware (and the handlers for those statuses answer it), as FastAPI's
        router raises them."""
        def unrouted(request: Request):
            raise middleware.unrouted(paths, request.url.path)

        def build(stack):
            return _dependencies.Solver(unrouted, "/{tb_path...}", (), {}, "unrouted", 200, None, stack,
                                        self._exception_response, self._server_error), None
        return build, "/{tb_path...}", "requests no route takes", ("*",), 200, False

    def _free(self, path):
        return path not in self._taken and not any(_under(path, m) for m in self._mounts)

    def _add_slash_redirects(self):
        """For any method, as Starlette redirects before it looks at the method."""
        for path in {r.path for r in self.routes}:
            twin = routing.slash_twin(path)
            if twin is None or not self._free(twin):
                continue
            try:
                self.add_route(twin, _redirect_to_twin, routing.METHODS)
            except ValueError:  # the twin's shape is another route's ({id} against {name})
                continue

    def mount(self, path, app, *, interface=None, root_path=None):
        """Serves an existing ASGI or WSGI app for every request under path that turbo's own
        routes do not take; it sees path as its root_path (ASGI) or SCRIPT_NAME (WSGI) unless
        root_path= is given. interface: "asgi" or "wsgi" when detection would guess wrong."""
        if isinstance(app, StaticFiles):
            return self.static(path, app.directory, index=app.html)
        kind = interface or interface_of(app)
        if kind not in ("asgi", "wsgi"):
            raise ValueError("interface must be 'asgi' or 'wsgi', not %r" % (kind,))
        if not path.startswith("/") or (path != "/" and path.endswith("/")) or "{" in path:
            raise ValueError('mount path "%s" must start with "/", not end with one (but "/" '
                             'itself), and have no captures' % path)
        prefix = "" if path == "/" else path
        patterns = (prefix + "/{tb_path...}",) if path == "/" else (prefix, prefix + "/{tb_path...}")
        state = {}
        self._mount(patterns, app, kind == "asgi", prefix if root_path is None else root_path,
                    len(prefix.encode()), "%s app at %s" % (kind.upper(), path), state)
        if kind == "asgi":
            self._hosted.append((app, state))
        self._mounts.append(path)
        return app


_DEFAULT_ANSWERS = (HTTPException, RequestValidationError)  # exc.response() answers them


_ROOT_TAIL = re.compile(r"/\{[^}]*\.\.\.\}")  # a route's pattern that takes every path


def _starlette_http_exception():
    """Starlette's HTTPException (FastAPI's is one) if the program imported Starlette, else None."""
    return getattr(sys.modules.get("starlette.exceptions"), "HTTPException", None)


def _default_answer(exc):
    """The default answer of an HTTPException, turbo's or Starlette's (code written for FastAPI
    raises that), or of a RequestValidationError; else None (also for a status turbo cannot
    send, which is a 500)."""
    if isinstance(exc, _DEFAULT_ANSWERS):
        return exc.response()
    theirs = _starlette_http_exception()
    if theirs is None or not isinstance(exc, theirs):
        return None
    try:
        return HTTPException(exc.status_code, exc.detail, getattr(exc, "headers", None)).response()
    except ValueError:
        return None

_LIBRARIES = []  # native handler libraries, never closed: the server calls into them


def _handler_address(library, symbol):
    """The address of a turbo_handler in a shared library (which calls the module's turbo_*
    functions, made visible first)."""
    if not _LIBRARIES:
        ctypes.CDLL(_turbo.__file__, mode=os.RTLD_NOW | os.RTLD_NOLOAD | os.RTLD_GLOBAL)
    try:
        lib = ctypes.CDLL(library, mode=os.RTLD_NOW | os.RTLD_LOCAL)
    except OSError as e:
        raise OSError("cannot load %s: %s" % (library, e)) from None
    try:
        address = ctypes.cast(getattr(lib, symbol), ctypes.c_void_p).value
    except AttributeError:
        raise OSError("%s has no symbol %s" % (library, symbol)) from None
    _LIBRARIES.append(lib)
    return address


def _as_response(value):
    """What an exception handler returned as a Response."""
    return value if isinstance(value, Response) else JSONResponse(value)


async def _as_response_of(awaitable):
    return _as_response(await awaitable)


def _usable_cpus():
    """The CPUs this process may run on (taskset, a container's cpuset), as turbo.h counts."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def _under(path, prefix):
    return prefix in ("", "/") or path == prefix or path.startswith(prefix.rstrip("/") + "/")


def _redirect_to_twin(request: Request):
    """307 to the same URL with the trailing slash added or taken away."""
    return RedirectResponse(_support.request_url(request, routing.slash_twin(request.path)))
