"""HTTPException, RequestValidationError and WebSocketException, as FastAPI's, and the default
handlers of the first two, as fastapi.exception_handlers has them."""
import contextlib
import http
import json
import sys

from ._turbo import JSONResponse, Response

__all__ = ["HTTPException", "RequestValidationError", "WebSocketException", "http_exception_handler",
           "request_validation_exception_handler"]


class HTTPException(Exception):
    """Raised to answer {"detail": detail} (the reason phrase by default) with that status
    and headers, checked as a Response's are."""

    def __init__(self, status_code, detail=None, headers=None):
        checked = Response(b"", status_code, headers)
        if detail is None:
            detail = http.HTTPStatus(status_code).phrase
        super().__init__(status_code, detail)
        self.status_code, self.detail, self.headers = status_code, detail, headers
        self.header_list = checked.headers.raw  # what C sends: the checked (name, value) pairs

    def __str__(self):
        return "%d: %s" % (self.status_code, self.detail)

    def __repr__(self):
        return "HTTPException(status_code=%r, detail=%r)" % (self.status_code, self.detail)

    def response(self):
        """FastAPI's answer to it: {"detail": detail}, or no body for a status without one."""
        if self.status_code in (204, 304) or self.status_code < 200:
            return Response(b"", self.status_code, self.header_list)
        return JSONResponse({"detail": self.detail}, self.status_code, self.header_list)


class RequestValidationError(ValueError):
    """The values of a request that did not validate (errors()), and its body."""

    def __init__(self, errors, body=None):
        super().__init__(errors)
        self._errors = errors
        self.body = body or None
        if isinstance(body, bytes) and body:
            with contextlib.suppress(ValueError):
                self.body = json.loads(body)

    def errors(self):
        return self._errors

    def response(self):
        """turbo's 422: {"detail": errors}, what cannot be JSON as text (a ValueError in a ctx)."""
        text = json.dumps({"detail": self._errors}, separators=(",", ":"), ensure_ascii=False,
                          default=lambda o: o.decode("utf-8", "replace") if isinstance(o, bytes) else str(o))
        return Response(text, 422, None, "application/json")

    def __str__(self):
        lines = ["%d validation error%s" % (len(self._errors), "" if len(self._errors) == 1 else "s")]
        for e in self._errors:
            lines += [" -> ".join(str(part) for part in e["loc"]), "  %s (type=%s)" % (e["msg"], e["type"])]
        return "\n".join(lines)


class WebSocketException(Exception):
    """Raised by a WebSocket endpoint or one of its dependencies to close the WebSocket with
    code and reason (before it is accepted, the handshake is refused with a 403)."""

    def __init__(self, code, reason=None):
        super().__init__(code, reason)
        self.code, self.reason = code, reason or ""

    def __str__(self):
        return "%d: %s" % (self.code, self.reason)

    def __repr__(self):
        return "WebSocketException(code=%r, reason=%r)" % (self.code, self.reason)


def websocket_exceptions():
    """turbo's WebSocketException and, if the program imported Starlette, Starlette's (FastAPI's
    is that one)."""
    theirs = getattr(sys.modules.get("starlette.exceptions"), "WebSocketException", None)
    return (WebSocketException, theirs) if theirs else WebSocketException


async def http_exception_handler(request, exc):
    """FastAPI's default answer to an HTTPException, for a handler of one's own to fall back on."""
    return exc.response()


async def request_validation_exception_handler(request, exc):
    """turbo's 422 for a RequestValidationError, the same way."""
    return exc.response()
