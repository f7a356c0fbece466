"""What the native module needs written in Python, imported once by turbo._turbo.

Nothing here runs for an ordinary request: C calls these only when a handler reads a field
of the request or response they make, for a file, a refused body or a result that is no JSON
type, and for the asyncio loop (once per process, per awaited coroutine, per streamed part);
per WebSocket, a hosted app's scope, and iter_text() and co, which loop over C's receives.
"""
import asyncio
import collections
import contextlib
import dataclasses
import datetime
import decimal
import email.utils
import enum
import http.cookies
import inspect
import os
import pathlib
import sys
import tempfile
import threading
import types
import urllib.parse
import uuid
from collections import deque  # noqa: F401  (the module takes it from here)
from json import JSONDecodeError, loads  # noqa: F401  (the module takes them from here)


class Headers(dict):
    """Request headers, names in lower case, read in any case as Starlette's are: a repeated
    name's first value; getlist(name) gives each, raw every (name, value) as bytes."""

    _pairs = ()  # every (name, value) in order, set by turbo_py.c; else the dict's items

    def getlist(self, name):
        name = str(name).lower()
        return [v for k, v in self._pairs or self.items() if k == name]

    @property
    def raw(self):
        return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self._pairs or self.items()]

    def __getitem__(self, name):
        return dict.__getitem__(self, str(name).lower())

    def get(self, name, default=None):
        return dict.get(self, str(name).lower(), default)

    def __contains__(self, name):
        return dict.__contains__(self, str(name).lower())


class Body(bytes):
    """request.body: the bytes; called, an awaitable of them, as Starlette's request.body()."""

    async def __call__(self):
        return bytes(self)


Address = collections.namedtuple("Address", "host port")  # request.client, as Starlette's


class URL(str):
    """request.url: the URL as text, with Starlette's parts (scheme, netloc, path...)."""

    def __getattr__(self, part):
        split = urllib.parse.urlsplit(self)
        if part in ("scheme", "netloc", "hostname", "port", "path", "query", "fragment"):
            return getattr(split, part)
        raise AttributeError(part)

    def replace(self, **parts):
        """The URL with some of scheme, netloc, path, query and fragment changed."""
        return URL(urllib.parse.urlunsplit(urllib.parse.urlsplit(self)._replace(**parts)))

    def include_query_params(self, **params):
        """The URL with these query parameters set (after the others, as Starlette's)."""
        kept = [(k, v) for k, v in urllib.parse.parse_qsl(self.query, keep_blank_values=True)
                if k not in params]
        return self.replace(query=urllib.parse.urlencode(kept + [(k, str(v)) for k, v in params.items()]))


def request_url(request, path=None):
    """request.url, made of the decoded path as Starlette's (its str and its .path show it
    decoded); with path, the same URL with that path instead."""
    query = request.query_string.decode("latin-1")
    host = request.headers.get("host", "")
    path = request.path if path is None else path
    return URL("%s://%s%s%s" % (request.scheme, host, path, "?" + query if query else ""))


def request_cookies(request):
    """The Cookie header's pairs, split as Starlette splits them and unquoted as it does with
    http.cookies' _unquote: double quotes off, the backslash escapes inside them undone."""
    cookies = {}
    for chunk in request.headers.get("cookie", "").split(";"):
        name, sep, value = chunk.partition("=")
        name, value = (name.strip(), value.strip()) if sep else ("", chunk.strip())
        if name or value:
            cookies[name] = http.cookies._unquote(value)
    return cookies


def request_scope(request):
    """An ASGI-style http scope for code that reads request.scope."""
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1", "method": request.method, "scheme": request.scheme,
            "path": request.path, "raw_path": request.raw_path,
            "query_string": request.query_string, "root_path": "",
            "headers": request.headers.raw,
            "client": request.client, "server": None, "path_params": request.path_params, "app": APP}


LIFESPAN_STATE = {}  # what the app's lifespan yielded, in this process


class State(types.SimpleNamespace):
    """request.state: attributes for one request, starting from what the lifespan yielded."""

    def __init__(self, request=None):
        super().__init__(**LIFESPAN_STATE)


class OwnLifespan:
    """A turbo.App's lifespan (lifespan=, on_event handlers) as an ASGI lifespan app."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        await receive()  # lifespan.startup
        try:
            for handler in self.app.handlers["startup"]:
                await _maybe_await(handler())
            context = self.app.lifespan(self.app) if self.app.lifespan else None
            state = await context.__aenter__() if context else None
            scope["state"].update(state or {})
        except BaseException as e:
            await send({"type": "lifespan.startup.failed", "message": "%s: %s" % (type(e).__name__, e)})
            raise
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        try:
            if context:
                await context.__aexit__(None, None, None)
            for handler in self.app.handlers["shutdown"]:
                await _maybe_await(handler())
        except BaseException as e:
            await send({"type": "lifespan.shutdown.failed", "message": "%s: %s" % (type(e).__name__, e)})
            raise
        await send({"type": "lifespan.shutdown.complete"})


async def _maybe_await(value):
    """value, awaited if it is awaitable (a coroutine, as run_coroutine_threadsafe needs)."""
    return await value if inspect.isawaitable(value) else value


class UploadFile:
    """A file of a multipart form, as Starlette's: filename, content_type, headers, size, and
    file (a SpooledTemporaryFile), with the async read, write, seek and close."""
    spool_max_size = 1024 * 1024

    def __init__(self, filename, content_type, data, head=b""):
        self.filename, self.content_type, self.size = filename, content_type, len(data)
        self.file = tempfile.SpooledTemporaryFile(max_size=self.spool_max_size)
        self.file.write(data)
        self.file.seek(0)
        self._head = head

    @property
    def headers(self):
        """The part's headers (names in lower case)."""
        pairs = (line.partition(":") for line in self._head.decode("latin-1").split("\r\n"))
        return Headers((k.strip().lower(), v.strip()) for k, sep, v in pairs if sep)

    async def read(self, size=-1):
        return self.file.read(size)

    async def write(self, data):
        self.file.write(data)

    async def seek(self, offset):
        self.file.seek(offset)

    async def close(self):
        self.file.close()

    def __repr__(self):
        return "UploadFile(filename=%r, size=%d)" % (self.filename, self.size)


class MultiDict(dict):
    """The last value of each name, as Starlette's ImmutableMultiDict, with every pair kept:
    getlist(name) gives each value of a name, multi_items() the pairs."""

    def __init__(self, pairs):
        super().__init__(pairs)
        self._pairs = pairs

    def getlist(self, name):
        return [v for k, v in self._pairs if k == name]

    def multi_items(self):
        return list(self._pairs)


class QueryParams(MultiDict):
    """request.query_params, as Starlette's; str() gives the query string again."""

    def __str__(self):
        return urllib.parse.urlencode(self._pairs)


class FormData(MultiDict):
    """await request.form(): the fields (str) and files (UploadFile) of a form, as Starlette's
    FormData."""

    async def close(self):
        for _, v in self._pairs:
            if isinstance(v, UploadFile):
                await v.close()


APP = None  # the turbo.App this process serves: request.app, scope["app"]
request_app = property(lambda request: APP)

# request.base_url, as Starlette's: the URL of the app's root.
request_base_url = property(lambda request: request.url.replace(path="/", query="", fragment=""))


async def request_stream(request):
    """request.stream(), as Starlette's: the body's parts (here, the body in one)."""
    if request.body:
        yield bytes(request.body)
    yield b""


async def request_form(request):
    """Request.form(): the body as a form; an empty one for another content type."""
    from . import _turbo
    from .exceptions import HTTPException
    ctype = request.headers.get("content-type", "")
    if ctype.lower().startswith("application/x-www-form-urlencoded"):
        return FormData(urllib.parse.parse_qsl(request.body.decode("latin-1"), keep_blank_values=True,
                                               encoding="utf-8", errors="replace"))
    try:
        parts = _turbo.form_parts(ctype, request.body) or []
    except ValueError:
        raise HTTPException(400, "There was an error parsing the body") from None
    return FormData([(name, data.decode("utf-8", "replace") if filename is None
                      else UploadFile(filename, part_type, data, head))
                     for name, filename, part_type, head, data in parts])


class MutableHeaders:
    """Response.headers: the (name, value) pairs of a response, read and set by name in any
    case as Starlette's MutableHeaders; equal to the list of pairs it shows."""

    def __init__(self, raw):
        self.raw = raw

    def getlist(self, name):
        name = name.lower()
        return [v for k, v in self.raw if k.lower() == name]

    def get(self, name, default=None):
        found = self.getlist(name)
        return found[0] if found else default

    def __getitem__(self, name):
        found = self.getlist(name)
        if not found:
            raise KeyError(name)
        return found[0]

    def __setitem__(self, name, value):
        del self[name]
        self.raw.append((name, value))

    def __delitem__(self, name):
        self.raw[:] = [pair for pair in self.raw if pair[0].lower() != name.lower()]

    def __contains__(self, name):
        return bool(self.getlist(name))

    def append(self, name, value):
        self.raw.append((name, value))

    def items(self):
        return list(self.raw)

    def keys(self):
        return [k for k, _ in self.raw]

    def __iter__(self):
        return iter(self.keys())

    def __len__(self):
        return len(self.raw)

    def __eq__(self, other):
        return self.raw == (other.raw if isinstance(other, MutableHeaders) else other)

    def __repr__(self):
        return "MutableHeaders(%r)" % (self.raw,)


def set_cookie(response, key, value="", max_age=None, expires=None, path="/", domain=None,
               secure=False, httponly=False, samesite="lax"):
    """Response.set_cookie, as Starlette's: a Set-Cookie header."""
    if samesite is not None and samesite.lower() not in ("strict", "lax", "none"):
        raise ValueError("samesite must be 'strict', 'lax' or 'none'")
    if isinstance(expires, datetime.datetime):
        expires = email.utils.format_datetime(expires, usegmt=True)
    cookie = http.cookies.SimpleCookie()
    cookie[key] = value
    attributes = {"max-age": max_age, "expires": expires, "path": path, "domain": domain,
                  "secure": secure, "httponly": httponly, "samesite": samesite}
    cookie[key].update({k: v for k, v in attributes.items() if v is not None and v is not False})
    response.headers.append("set-cookie", cookie.output(header="").strip())


def delete_cookie(response, key, path="/", domain=None, secure=False, httponly=False,
                  samesite="lax"):
    """Response.delete_cookie: the cookie set again, expired."""
    set_cookie(response, key, max_age=0, expires=0, path=path, domain=domain, secure=secure,
               httponly=httponly, samesite=samesite)


async def _one_piece(body):
    yield body


def _body_iterator(response):
    return response.__dict__.get("body_iterator") or _one_piece(response.body)


def _replace_body_iterator(response, iterator):
    response.__dict__["body_iterator"] = iterator


# Response.body_iterator, as Starlette has it on the answer call_next gives an http middleware:
# the body, in one piece; one set in its place is what is sent (see replaced_body).
body_iterator = property(_body_iterator, _replace_body_iterator)


def replaced_body(response):
    """The answer of an http middleware: a Response whose body_iterator it set (to put back a
    body it read, say) as the StreamingResponse that sends that iterator; else as it is."""
    from ._turbo import Response
    from .responses import StreamingResponse
    if not isinstance(response, Response) or "body_iterator" not in response.__dict__:
        return response
    return StreamingResponse(response.__dict__["body_iterator"], response.status_code,
                             list(response.headers.items()), response.media_type, response.background)


def model_errors(exc, *where):
    """A pydantic ValidationError's errors as a 422 lists them (loc starting with where: "body",
    or "query" and a name...)."""
    try:
        errors = exc.errors(include_url=False)
    except TypeError:  # pydantic 1
        errors = exc.errors()
    for e in errors:
        e["loc"] = where + tuple(e["loc"])
        if "ctx" in e:
            e["ctx"] = {k: _ctx_value(v) for k, v in e["ctx"].items()}
    return errors


def _ctx_value(v):
    """An error's context value as FastAPI encodes it (pydantic 1's enum_values as the values, a
    Decimal bound as a number); one JSON has no form for (an exception) as its str."""
    if isinstance(v, (list, tuple)):
        return [_ctx_value(x) for x in v]
    if isinstance(v, (int, float, str, bool, type(None))):
        return v
    try:
        made = plain(v)
    except (TypeError, ValueError):  # a Decimal that is no number
        made = NotImplemented
    return str(v) if made is NotImplemented or isinstance(made, (list, dict)) else made


def plain(o):
    """The JSON form of an object that is no JSON type, as FastAPI's jsonable_encoder's."""
    if isinstance(o, enum.Enum):
        return o.value
    if isinstance(o, (set, frozenset, types.GeneratorType)):
        return list(o)
    if isinstance(o, (datetime.date, datetime.time)):
        return o.isoformat()
    if isinstance(o, datetime.timedelta):
        return o.total_seconds()
    if isinstance(o, (uuid.UUID, pathlib.PurePath)):
        return str(o)
    if isinstance(o, decimal.Decimal):
        return int(o) if o.as_tuple().exponent >= 0 else float(o)
    if isinstance(o, bytes):
        return o.decode()
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    return NotImplemented


async def _guard(coro):
    """A KeyboardInterrupt or SystemExit in a handler must not stop the loop."""
    try:
        return await coro
    except (KeyboardInterrupt, SystemExit) as e:
        raise RuntimeError("handler raised " + type(e).__name__) from e


def ready(value):
    """An async function that returns value."""
    async def give():
        return value
    return give


class WebSocketDisconnect(Exception):
    """Raised by a WebSocket's receive once the client has closed (code: its close code; 1005
    if it gave none, 1006 if the connection was lost), and by a send after that."""

    def __init__(self, code=1000, reason=None):
        super().__init__(code, reason)
        self.code, self.reason = code, reason or ""


def _messages(kind):
    async def iterate(websocket):
        """Each message received (receive_text...), until the client closes, as Starlette's."""
        receive = getattr(websocket, "receive_" + kind)
        try:
            while True:
                yield await receive()
        except WebSocketDisconnect:
            pass
    return iterate


iter_text, iter_bytes, iter_json = (_messages(kind) for kind in ("text", "bytes", "json"))


def websocket_scope(scope):
    """The scope of a hosted ASGI app's WebSocket, from the http scope C made of the handshake."""
    protocols = dict(scope["headers"]).get(b"sec-websocket-protocol", b"")
    del scope["method"]
    scope.update(type="websocket", scheme="wss" if scope["scheme"] == "https" else "ws", extensions={}, subprotocols=[
        p.strip().decode("latin-1") for p in protocols.split(b",") if p.strip()])
    return scope


shield = asyncio.shield  # for turbo_py.c: each receive() of a hosted ASGI app waits on its own


def _resolve(future, value=None):
    """Lets an ASGI app's send() or receive() go on (unless its task was cancelled)."""
    if not future.done():
        future.set_result(value)


def new_event_loop():
    """uvloop's loop when it is installed, else asyncio's; TURBO_LOOP=asyncio or uvloop."""
    choice = os.environ.get("TURBO_LOOP", "auto")
    if choice not in ("auto", "asyncio", "uvloop"):
        raise ValueError("TURBO_LOOP must be auto, asyncio or uvloop, not %r" % choice)
    if choice != "asyncio":
        try:
            import uvloop
            return uvloop.new_event_loop()
        except ImportError:
            if choice == "uvloop":
                raise
    return asyncio.new_event_loop()


class Loop:
    """The asyncio loop of a serving process, in a daemon thread of its own."""
    current = None  # this process's, while it serves

    def __init__(self):
        Loop.current = self
        self.loop = new_event_loop()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="turbo-asyncio", daemon=True)
        self.thread.start()
        self.lifespans = contextlib.AsyncExitStack()  # the lifespans entered, see App._lifespan

    def _run(self):
        """Runs on past a KeyboardInterrupt or SystemExit of an app's task (answered 500)."""
        # Woken as a batch thread (Linux), this thread waits for the worker that handed it a
        # request to pause, then answers all those handed over, not one at a time.
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
        while True:
            try:
                self.loop.run_forever()
                return
            except (KeyboardInterrupt, SystemExit):
                if self.stopping:
                    return

    def submit(self, coro):
        return asyncio.run_coroutine_threadsafe(_guard(coro), self.loop)

    def stop(self):
        """Stops the loop, then cancels the tasks still pending (their finally blocks run)."""
        self.stopping = True
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        tasks = asyncio.all_tasks(self.loop)
        for task in tasks:
            task.cancel()
        if tasks:
            self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self.loop.close()
        Loop.current = None

    def run(self, coro):
        """Runs coro on the loop, from another thread, and waits for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()


class StartupFailed(Exception):
    """An app sent lifespan.startup.failed: the process must not serve it."""


@contextlib.asynccontextmanager
async def lifespan(app, state):
    """The ASGI lifespan protocol for one app, as uvicorn's "auto" mode (an app that raises on
    the lifespan scope at once is served all the same; one that says its startup failed is not:
    StartupFailed)."""
    inbox, started, stopped, failed = asyncio.Queue(), asyncio.Event(), asyncio.Event(), []

    async def send(message):
        kind = message["type"]
        if kind in ("lifespan.startup.failed", "lifespan.shutdown.failed"):
            print("turbo: %s: %s" % (kind, message.get("message", "")), file=sys.stderr, flush=True)
        if kind == "lifespan.startup.failed":
            failed.append(kind)
        if kind.startswith("lifespan.startup."):
            started.set()
        elif kind.startswith("lifespan.shutdown."):
            stopped.set()

    async def run():
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"},
                 "state": state}
        try:
            await app(scope, inbox.get, send)
        except BaseException as e:
            if started.is_set():
                print("turbo: lifespan of %r: %s: %s" % (app, type(e).__name__, e),
                      file=sys.stderr, flush=True)
        finally:
            started.set()
            stopped.set()

    state.clear()
    inbox.put_nowait({"type": "lifespan.startup"})
    task = asyncio.ensure_future(run())
    await started.wait()
    if failed:
        raise StartupFailed(app)
    yield
    if not task.done():
        inbox.put_nowait({"type": "lifespan.shutdown"})
        await stopped.wait()
