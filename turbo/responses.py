"""Response classes as Starlette has them, to return from a handler or to name in a route's
response_class=. Each is a turbo.Response: its body, status and headers are checked when it is
made and sent by C as they are. StaticFiles, to mount a folder as Starlette's is mounted."""
import email.utils
import mimetypes
import os
import urllib.parse

from ._turbo import JSONResponse, Response

__all__ = ["FileResponse", "HTMLResponse", "JSONResponse", "PlainTextResponse", "RedirectResponse",
           "Response", "StaticFiles"]


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


class FileResponse(Response):
    """A file, read when the response is made, with its type (from its name, or media_type),
    Last-Modified and ETag, and Content-Disposition when filename is given; for big files,
    Range and 304s, serve the folder with app.static, which sends from C."""

    def __init__(self, path, status_code=200, headers=None, media_type=None, filename=None):
        with open(path, "rb") as f:
            data = f.read()
            stat = os.fstat(f.fileno())
        pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or ())
        pairs += [("last-modified", email.utils.formatdate(stat.st_mtime, usegmt=True)),
                  ("etag", '"%x-%x"' % (int(stat.st_mtime), stat.st_size))]
        if filename is not None:
            pairs.append(("content-disposition",
                          "attachment; filename*=utf-8''%s" % urllib.parse.quote(filename)))
        media_type = media_type or mimetypes.guess_type(filename or str(path))[0] or "text/plain"
        super().__init__(data, status_code, pairs, media_type)


class StaticFiles:
    """app.mount("/static", StaticFiles(directory="static")): the folder, served by
    app.static (html=True: a folder's index.html)."""

    def __init__(self, *, directory, html=False, check_dir=True):
        if check_dir and not os.path.isdir(directory):
            raise RuntimeError("Directory '%s' does not exist" % directory)
        self.directory, self.html = directory, html
