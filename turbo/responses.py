"""Response classes as Starlette has them, to return from a handler or to name in a route's
response_class=. Each is a turbo.Response: its body, status and headers are checked when it is
made and sent by C as they are."""
import urllib.parse

from ._turbo import JSONResponse, Response

__all__ = ["HTMLResponse", "JSONResponse", "PlainTextResponse", "RedirectResponse", "Response"]


class HTMLResponse(Response):
    media_type = "text/html"


class PlainTextResponse(Response):
    media_type = "text/plain"


class RedirectResponse(Response):
    """An empty answer with Location: url (quoted as Starlette quotes it), 307 by default."""

    def __init__(self, url, status_code=307, headers=None):
        pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or ())
        location = urllib.parse.quote(str(url), safe=":/%#?=@[]!$&'()*+,;")
        super().__init__(b"", status_code, pairs + [("location", location)])
