"""Dependencies, as FastAPI declares them: Depends, Security and SecurityScopes.

A route's graph is read once, at decoration, into a Solver: every parameter a dependency asks
of the request joins the route's plan, which C finds, converts and checks (one 422 for all).
Per request only the calls remain, in order, then the cleanup of yield dependencies.
"""
import asyncio
import contextlib
import functools
import inspect
import sys
import traceback

from . import _plans, _support, security, status
from ._turbo import JSONResponse, Response
from .exceptions import RequestValidationError, websocket_exceptions
from .background import BackgroundTasks, run_sync
from .responses import StreamingResponse

__all__ = ["Depends", "Security", "SecurityScopes", "Solver"]

# The request as a plan's last value: given to the middleware, or a WebSocket route's graph.
_REQUEST = _plans.Leaf(name="request", key="request", source="request", conv="request", nullable=False,
                       default=(), model=None, kwonly=False, rules=(), rank=1 << 21, many=0)


class Depends:
    """A parameter whose value is what dependency returns (or yields); Depends() alone: the
    annotation is the dependency. use_cache=False: called for each parameter that names it."""

    def __init__(self, dependency=None, *, use_cache=True):
        self.dependency, self.use_cache = dependency, use_cache

    def __repr__(self):
        name = getattr(self.dependency, "__name__", type(self.dependency).__name__)
        return "%s(%s)" % (type(self).__name__, name if self.dependency is not None else "")


class Security(Depends):
    """Depends, with the OAuth2 scopes the route requires (SecurityScopes below gather them)."""

    def __init__(self, dependency=None, *, scopes=None, use_cache=True):
        super().__init__(dependency, use_cache=use_cache)
        self.scopes = list(scopes or ())


class SecurityScopes:
    """The scopes required by the chain of Security() above a dependency."""

    def __init__(self, scopes=None):
        self.scopes = list(scopes or ())
        self.scope_str = " ".join(self.scopes)


def _kind(call):
    """How a dependency is called: "call", "await", "gen" (a generator) or "agen"."""
    if not (inspect.isroutine(call) or inspect.isclass(call)):
        call = getattr(type(call), "__call__", call)
    if inspect.isasyncgenfunction(call):
        return "agen"
    if inspect.isgeneratorfunction(call):
        return "gen"
    return "await" if inspect.iscoroutinefunction(call) else "call"


class Solver:
    """A route's handler with its dependencies (and the app's middleware), read once into steps
    and the plan of every value they take. C calls call with the values: it returns the
    handler's result, or (result, finish) when finishes."""

    def __init__(self, endpoint, pattern, dependencies=(), overrides=None, label="",
                 status_code=200, shape=None, middleware=(), on_error=None, on_server_error=None):
        self.endpoint, self.label, self.middleware = endpoint, label, tuple(middleware)
        self.status_code, self.shape = status_code, shape
        self.on_error = on_error  # async (exc, request): the Response for an exception, or None
        self.on_server_error = on_server_error  # (exc, request): an ASGI answer, or None
        self.in_path, self.overrides = _plans.captures(pattern), overrides or {}
        self.params = []  # the route's plan: each value the graph asks of the request
        self.consts = []  # the SecurityScopes given to dependencies
        self.steps = []   # (call, kind, ((parameter name, ref), ...)), in the order they run
        self.cached = {}  # (call, scopes) -> the ref of its result
        self.bodies = []  # (parameter, annotation, marker, leaf) of each body member
        self.documented = []  # the Leaf of each value but the body, for the API document
        self.callers = []  # (call, scopes) of every step: the security schemes among them
        self.wants_response = False
        self.wants_background = False  # one BackgroundTasks per request, run after the answer
        for d in dependencies:
            if not isinstance(d, Depends):
                raise TypeError("dependencies=[...] takes Depends(...), not %r" % (d,))
            self._add(d.dependency, getattr(d, "scopes", []), d.use_cache)
        self._add(endpoint, [], False)
        call, kind, args = self.steps[-1]
        if kind in ("gen", "agen"):  # a generator handler's result is streamed (responses.Items)
            self.steps[-1] = (call, "call", args)
        self._settle_body()
        self._load()
        self.params = tuple(self.params)
        self.is_async, self.finishes, self.call = self.runs_async, self.closes, self.run_steps
        if self.middleware:  # the request is the last value; the answer a Response, then cleanup
            self.params += (_REQUEST,)
            self.is_async, self.finishes, self.call = True, False, self._through_middleware
        if self.middleware and hasattr(self.middleware[-1], "exchange"):  # middleware.Around
            self.around, self.middleware = self.middleware[-1], self.middleware[:-1]
            self.is_async, self.call = False, self._exchange

    def for_websocket(self):
        """Made a WebSocket route's call: the WebSocket is the last value, closed with the code of
        a WebSocketException the graph raises; yield dependencies are cleaned up once the endpoint
        is done."""
        self.params += (_REQUEST,)
        self.is_async, self.finishes, self.call = True, False, self._call_websocket
        return self

    async def _call_websocket(self, *values):
        websocket, values = values[-1], values[:-1]
        try:
            done = await self._call_async(*values)
        except websocket_exceptions() as exc:  # as Starlette's ExceptionMiddleware answers it
            await websocket.close(exc.code, exc.reason)
            return
        except RequestValidationError:  # a parameter model's: FastAPI's close (a 403 before the accept)
            await websocket.close(status.WS_1008_POLICY_VIOLATION)
            return
        if self.closes:
            done[1]()

    def __call__(self, *values):
        """Runs the graph for one request (C calls self.call, but checks a handler is callable)."""
        return self.call(*values)

    def _add(self, call, scopes, use_cache):
        """The ref of call's result, its dependencies made steps before it."""
        call = self.overrides.get(call, call)
        if not callable(call):
            raise TypeError("dependency %r is not callable" % (call,))
        args, own = [], []
        for p, ann, marker in _plans.parameters(call):
            if p.kind == p.POSITIONAL_ONLY:
                raise TypeError("%r: parameter '%s' is positional-only; dependencies and "
                                "their handlers take keywords" % (call, p.name))
            if isinstance(marker, Depends):
                dep = ann if marker.dependency is None else marker.dependency
                more = marker.scopes if isinstance(marker, Security) else []
                args.append((p.name, self._add(dep, scopes + more, marker.use_cache)))
            elif _plans.parameter_model(ann, marker):
                args.append((p.name, self._add(_plans.model_reader(ann, marker, p.name), scopes, False)))
            elif isinstance(ann, type) and issubclass(ann, Response):
                self.wants_response = True  # a Response to set headers, cookies, status on
                args.append((p.name, ("response", 0)))
            elif isinstance(ann, type) and issubclass(ann, BackgroundTasks):
                self.wants_background = True
                args.append((p.name, ("background", 0)))
            elif ann is SecurityScopes:
                self.consts.append(SecurityScopes(scopes))
                args.append((p.name, ("const", len(self.consts) - 1)))
            else:
                own.append((p, ann, marker))
        for p, ann, marker in own:
            q = _plans.leaf(p, ann, marker, self.in_path)
            if q.source == "body":  # one body for the whole graph: see _settle_body
                keys = [b[3].key for b in self.bodies]
                if q.key not in keys:
                    self.bodies.append((p, ann, marker, q))
                    keys.append(q.key)
                args.append((p.name, ("body", keys.index(q.key))))
                continue
            args.append((p.name, ("param", len(self.params))))
            # checked, and their errors listed, dependency by dependency (callers: those before)
            group = len(self.callers) + 1
            rank = 1 << 20 if q.source in ("form", "file") else group * 8 + q.rank
            self.params.append(q._replace(kwonly=False, rank=rank))
            if q.source != "request" and not isinstance(call, security._Scheme):  # its own
                self.documented.append(q)
        self.callers.append((call, scopes))
        key = (call, tuple(sorted(set(scopes))))
        if use_cache and key in self.cached:
            return self.cached[key]
        self.steps.append((call, _kind(call), tuple(args)))
        ref = ("step", len(self.steps) - 1)
        if use_cache:
            self.cached[key] = ref
        return ref

    def _settle_body(self):
        """The body parameters of the graph become the last value of the plan."""
        self.members, self.body_at = None, len(self.params)
        if not self.bodies:
            return
        found = [b[:3] for b in self.bodies]
        if _plans.one_body(found):
            self.params.append(self.bodies[0][3]._replace(kwonly=False, rank=1 << 20))
        else:
            self.members = _plans.Members(found)
            self.params.append(self.members.leaf)

    def _load(self):
        """Makes each step's arguments indexes in the pool of a call (see _pool)."""
        kinds = {kind for _, kind, _ in self.steps}
        self.runs_async = bool(kinds & {"await", "agen"})
        self.closes = bool(kinds & {"gen", "agen"}) or self.wants_background
        self.run_steps = self._call_async if self.runs_async else self._call
        nvalues, nconsts = len(self.params), len(self.consts)
        nmembers = len(self.members.names) if self.members else 0
        self.response_at = nvalues + nconsts + nmembers
        self.background_at = self.response_at + self.wants_response
        base = {"param": 0, "const": nvalues, "response": self.response_at,
                "body": nvalues + nconsts if self.members else self.body_at,
                "background": self.background_at,
                "step": self.background_at + self.wants_background}
        steps = []
        for n, (call, kind, args) in enumerate(self.steps, 1):
            if kind == "gen":
                call = contextlib.contextmanager(call)
            elif kind == "agen":
                call = contextlib.asynccontextmanager(call)
            elif kind == "call" and self.runs_async and n == len(self.steps):
                kind = "thread"  # a sync handler of an async route must not stall the loop
            steps.append((call, kind, tuple((name, base[ref] + i) for name, (ref, i) in args)))
        self.consts, self.steps = tuple(self.consts), tuple(steps)

    def _exchange(self, *values):
        """What C runs as the answer: the ASGI middleware, with the route inside it."""
        return self.around.exchange(values[-1], functools.partial(self._through_middleware, *values))

    async def _through_middleware(self, *values):
        """The app's middleware around the route, whose call_next gives its Response (an
        exception with a handler answered there; one without, by the handler for 500 outside
        the middleware, as Starlette's ServerErrorMiddleware)."""
        request, values = values[-1], values[:-1]

        async def call_next(request):
            try:
                if self.runs_async:
                    result = await self.run_steps(*values)
                else:
                    result = await run_sync(self.run_steps, *values)
            except Exception as exc:  # answered inside the middleware, as in Starlette
                answer = await self.on_error(exc, request)
                if answer is None:
                    raise
                return answer
            finish = None
            if self.closes:
                result, finish = result
            try:
                return self._response(result)
            finally:
                if finish is not None:
                    finish()

        return await through_middleware(self.middleware, call_next, request, self.on_server_error)

    def _response(self, value, *status_and_headers):
        """A result as the Response C would have made of it."""
        if self.shape is not None and not isinstance(value, Response) and not callable(value):
            value = self.shape(value, *status_and_headers)  # a Response with a response_class
        if isinstance(value, Response) or callable(value):  # a callable streams (responses.py)
            return value
        return JSONResponse(value, *(status_and_headers or (self.status_code,)))

    def _pool(self, values):
        """What the steps take their arguments from, then each step's result."""
        pool = [*values, *self.consts]
        if self.members:
            pool += self.members.members(values[self.body_at])
        if self.wants_response:
            pool.append(Response(b"", self.status_code))
        if self.wants_background:
            pool.append(BackgroundTasks())
        return pool

    def _finish(self, stack, tasks):
        """After the answer: the cleanup of yield dependencies, then the background tasks."""
        try:
            stack.close()
        finally:
            if tasks is not None:
                tasks.run_later()

    def _result(self, pool):
        """The handler's result, with a response parameter's status, headers and cookies; and
        the request's background tasks, to run after the answer, or None when the result is a
        Response: it runs them if it has no tasks of its own, else drops them (FastAPI's rule)."""
        result = pool[-1]
        if self.wants_response:
            sub = pool[self.response_at]
            result = self._response(result, sub.status_code, sub.headers.raw)
        tasks = pool[self.background_at] if self.wants_background else None
        if tasks is not None and isinstance(result, (Response, StreamingResponse)):
            if result.background is None:
                result.background = tasks
            tasks = None
        return result, tasks

    def _call(self, *values):
        pool, stack = self._pool(values), contextlib.ExitStack()
        try:
            for call, kind, args in self.steps:
                value = call(**{name: pool[i] for name, i in args})
                pool.append(stack.enter_context(value) if kind == "gen" else value)
        except BaseException:
            stack.__exit__(*sys.exc_info())  # the generators see the exception
            raise
        result, tasks = self._result(pool)
        if not self.closes:
            return result
        return result, functools.partial(self._finish, stack, tasks)

    async def _call_async(self, *values):
        pool, stack = self._pool(values), contextlib.AsyncExitStack()
        try:
            for call, kind, args in self.steps:
                kwargs = {name: pool[i] for name, i in args}
                if kind == "call":
                    value = call(**kwargs)
                elif kind == "await":
                    value = await call(**kwargs)
                elif kind == "gen":
                    value = stack.enter_context(call(**kwargs))
                elif kind == "agen":
                    value = await stack.enter_async_context(call(**kwargs))
                else:
                    value = await run_sync(functools.partial(call, **kwargs))
                pool.append(value)
        except BaseException:
            await stack.__aexit__(*sys.exc_info())
            raise
        result, tasks = self._result(pool)
        if not self.closes:
            return result
        loop = asyncio.get_running_loop()
        return result, functools.partial(loop.call_soon_threadsafe, self._close_later, stack,
                                         tasks)

    def _close_later(self, stack, tasks):
        asyncio.get_running_loop().create_task(self._close(stack, tasks))

    async def _close(self, stack, tasks):
        try:
            await stack.aclose()
        except Exception:
            sys.stderr.write("turbo: %s: the cleanup of a dependency raised\n" % self.label)
            traceback.print_exc()
        if tasks is not None:
            tasks.run_later()


async def _dispatch(middleware, call_next, request):
    return await middleware(request, call_next)


async def through_middleware(middleware, call_next, request, on_server_error):
    """call_next's answer through the http middleware functions (the last declared outermost); an
    exception that leaves them goes to on_server_error, as Starlette's ServerErrorMiddleware
    takes it, or is raised again."""
    handler = call_next
    for mw in middleware:
        handler = functools.partial(_dispatch, mw, handler)
    try:
        return _support.replaced_body(await handler(request))
    except Exception as exc:
        answer = on_server_error(exc, request)
        if answer is None:
            raise
        return answer


def needed(func, dependencies):
    """Whether a handler needs a Solver: dependencies, or a parameter only a Solver gives."""
    if dependencies:
        return True
    found = list(_plans.parameters(func))
    bodies = [b for b in found if not isinstance(b[2], Depends) and _plans.is_body(*b[1:])]
    return bool(bodies and not _plans.one_body(bodies)) or any(
        isinstance(marker, Depends) or ann is SecurityScopes or _plans.parameter_model(ann, marker)
        or isinstance(ann, type) and issubclass(ann, (Response, BackgroundTasks))
        for _, ann, marker in found)
