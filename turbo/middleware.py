"""ASGI middleware around turbo's Python routes (App.add_middleware), and the classes that come
with turbo, as Starlette's: app.add_middleware(CORSMiddleware, allow_origins=[...]) or
app.add_middleware(GZipMiddleware). Any pure ASGI middleware class is added the same way."""
import re
import zlib

from ._turbo import Response
from .exceptions import HTTPException
from .responses import content_type

__all__ = ["CORSMiddleware", "GZipMiddleware"]

_ALL_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
_SAFELISTED = {"Accept", "Accept-Language", "Content-Language", "Content-Type"}


def _header(scope_or_message, name):
    """The first value of a header among ASGI's (bytes name, bytes value) pairs, or None."""
    name = name.encode()
    for key, value in scope_or_message.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _set(message, name, value):
    """Sets a header of an http.response.start message, in place of any of that name."""
    key = name.lower().encode()
    message["headers"] = [(k, v) for k, v in message.get("headers", ()) if k.lower() != key]
    message["headers"].append((key, value.encode("latin-1")))


def _vary(message, name):
    """Adds name to the message's Vary header."""
    vary = _header(message, "vary")
    _set(message, "vary", name if not vary else "%s, %s" % (vary, name))


async def send_response(response, send):
    """A Response as ASGI messages (a FileResponse's file read, for middleware that rewrites
    bodies)."""
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
    if response.media_type and not any(k == b"content-type" for k, _ in headers):
        headers.append((b"content-type", content_type(response.media_type).encode("latin-1")))
    body = response.body
    if response._file is not None:
        with open(response._file, "rb") as f:
            body = f.read()
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class CORSMiddleware:
    """Cross-origin requests, with Starlette's options and answers: a preflight request is
    answered here (200 "OK", or 400 "Disallowed CORS origin, method, headers"), any other
    request with an Origin gets the Access-Control-* headers the options give."""

    def __init__(self, app, allow_origins=(), allow_methods=("GET",), allow_headers=(),
                 allow_credentials=False, allow_origin_regex=None, expose_headers=(), max_age=600):
        self.app = app
        self.origins, self.any_origin = set(allow_origins), "*" in allow_origins
        self.origin_regex = re.compile(allow_origin_regex) if allow_origin_regex else None
        self.methods = _ALL_METHODS if "*" in allow_methods else tuple(allow_methods)
        named = sorted(_SAFELISTED | set(allow_headers))
        self.headers, self.any_header = {h.lower() for h in named}, "*" in allow_headers
        self.name_origin = not self.any_origin or allow_credentials  # never "*" in a preflight
        self.simple = {}
        if self.any_origin:
            self.simple["access-control-allow-origin"] = "*"
        if allow_credentials:
            self.simple["access-control-allow-credentials"] = "true"
        if expose_headers:
            self.simple["access-control-expose-headers"] = ", ".join(expose_headers)
        self.preflight = {"vary": "Origin"} if self.name_origin else {
            "access-control-allow-origin": "*"}
        self.preflight["access-control-allow-methods"] = ", ".join(self.methods)
        self.preflight["access-control-max-age"] = str(max_age)
        if not self.any_header:
            self.preflight["access-control-allow-headers"] = ", ".join(named)
        if allow_credentials:
            self.preflight["access-control-allow-credentials"] = "true"

    def allowed(self, origin):
        return (self.any_origin or origin in self.origins
                or bool(self.origin_regex and self.origin_regex.fullmatch(origin)))

    async def __call__(self, scope, receive, send):
        origin = _header(scope, "origin") if scope["type"] == "http" else None
        if origin is None:
            return await self.app(scope, receive, send)
        if scope["method"] == "OPTIONS" and _header(scope, "access-control-request-method"):
            return await self.answer_preflight(scope, origin, send)
        named = self.allowed(origin) and (not self.any_origin or _header(scope, "cookie") is not None)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                for name, value in self.simple.items():
                    _set(message, name, value)
                if named:
                    _set(message, "access-control-allow-origin", origin)
                    _vary(message, "Origin")
            await send(message)
        await self.app(scope, receive, with_headers)

    async def answer_preflight(self, scope, origin, send):
        headers, refused = dict(self.preflight), []
        if not self.allowed(origin):
            refused.append("origin")
        elif self.name_origin:
            headers["access-control-allow-origin"] = origin
        if _header(scope, "access-control-request-method") not in self.methods:
            refused.append("method")
        asked = _header(scope, "access-control-request-headers")
        if asked is not None and self.any_header:
            headers["access-control-allow-headers"] = asked
        elif asked is not None and any(h.strip().lower() not in self.headers for h in asked.split(",")):
            refused.append("headers")
        text = "Disallowed CORS " + ", ".join(refused) if refused else "OK"
        await send_response(Response(text, 400 if refused else 200, headers, "text/plain"), send)


class GZipMiddleware:
    """Compresses answers of minimum_size bytes or more for clients that accept gzip, as
    Starlette's; a streamed answer as it streams, each part flushed to reach the client."""

    def __init__(self, app, minimum_size=500, compresslevel=9):
        self.app, self.minimum_size, self.level = app, minimum_size, compresslevel

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or "gzip" not in (_header(scope, "accept-encoding") or ""):
            return await self.app(scope, receive, send)
        start, packer = None, None

        async def compressed(message):
            nonlocal start, packer
            if message["type"] == "http.response.start":
                start = message
                return
            if start is None:  # the start went out: the body is passed on as it is, or packed
                if packer is not None:
                    more = message.get("more_body", False)
                    message["body"] = packer.compress(message.get("body", b"")) + packer.flush(
                        zlib.Z_SYNC_FLUSH if more else zlib.Z_FINISH)
                return await send(message)
            head, start = start, None
            body, more = message.get("body", b""), message.get("more_body", False)
            if _header(head, "content-encoding") is None and (more or len(body) >= self.minimum_size):
                packer = zlib.compressobj(self.level, zlib.DEFLATED, 31)  # 31: the gzip format
                message["body"] = packer.compress(body) + packer.flush(
                    zlib.Z_SYNC_FLUSH if more else zlib.Z_FINISH)
                _set(head, "content-encoding", "gzip")
                _vary(head, "Accept-Encoding")
                head["headers"] = [(k, v) for k, v in head["headers"] if k.lower() != b"content-length"]
                if not more:
                    _set(head, "content-length", str(len(message["body"])))
            await send(head)
            await send(message)
        await self.app(scope, receive, compressed)


def _path_regex(pattern):
    """A turbo pattern ({name} a segment, {name...} the rest) as a regex."""
    return re.compile("".join(
        (".+" if part.endswith("...}") else "[^/]+") if part.startswith("{") else re.escape(part)
        for part in re.split(r"(\{[^}]*\})", pattern)))


def route_paths(served):
    """Each (pattern, methods) served as (regex, methods): what unrouted() reads."""
    return [(_path_regex(pattern), methods) for pattern, methods in served]


def unrouted(paths, path):
    """What FastAPI's router raises for a request no route took: a 405 with the Allow of the
    routes that have its path, else a 404."""
    allowed = sorted({m for regex, methods in paths if regex.fullmatch(path) for m in methods})
    if allowed:
        return HTTPException(405, "Method Not Allowed", {"allow": ", ".join(allowed)})
    return HTTPException(404, "Not Found")


class Around:
    """The ASGI middleware of an App, built by run(), each class around the ones added before.
    The innermost app is the route, which a Solver hands in through exchange(); a request no
    route takes comes through a mount at "/" (app) and gets turbo's 404 or 405."""

    def __init__(self, entries, paths):
        self.app = self.route
        for cls, args, options in entries:
            self.app = cls(self.app, *args, **options)
        self.paths = paths  # of route_paths()

    def exchange(self, request, respond):
        """One request through the middleware, as an ASGI app C runs as the answer."""
        async def app(scope, receive, send):
            first = True

            async def receive_body():
                nonlocal first
                if not first:
                    return await receive()
                first = False
                await receive()  # C's own first message, without the body, which the route read
                return {"type": "http.request", "body": bytes(request.body), "more_body": False}
            await self.app(dict(request.scope, **{"turbo.respond": respond}), receive_body, send)
        return app

    async def route(self, scope, receive, send):
        if scope["type"] == "websocket":  # no WebSocket route has its path: refused, as Starlette's
            await send({"type": "websocket.close", "code": 1000})
            return
        respond = scope.get("turbo.respond")
        response = await respond() if respond else unrouted(self.paths, scope["path"]).response()
        if callable(response):  # it streams
            return await response(scope, receive, send)
        await send_response(response, send)
        if response.background is not None:
            response.background.run_later()

