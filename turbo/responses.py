"""Response classes as Starlette has them, and StaticFiles. StreamingResponse and
EventSourceResponse are ASGI apps, which C runs on the asyncio loop."""
import asyncio
import json
import mimetypes
import os
import re
import urllib.parse

from ._support import MutableHeaders
from .background import process_threads
from ._turbo import JSONResponse, Response
from .encoders import jsonable_encoder

__all__ = ["EventSourceResponse", "FileResponse", "HTMLResponse", "JSONResponse",
           "PlainTextResponse", "RedirectResponse", "Response", "ServerSentEvent", "StaticFiles",
           "StreamingResponse"]


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
    """A file, sent by C as app.static sends one; Content-Disposition when filename is given.
    A path that is no file fails here (Starlette fails when it sends)."""

    def __init__(self, path, status_code=200, headers=None, media_type=None, background=None,
                 filename=None, content_disposition_type="attachment"):
        if not os.path.isfile(path):
            raise RuntimeError("File at path %s %s." % (
                path, "is not a file" if os.path.exists(path) else "does not exist"))
        pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or ())
        if filename is not None:
            quoted = urllib.parse.quote(filename)
            name = "filename*=utf-8''" + quoted if quoted != filename else 'filename="%s"' % filename
            pairs.append(("content-disposition", content_disposition_type + "; " + name))
        media_type = media_type or mimetypes.guess_type(filename or str(path))[0] or "text/plain"
        super().__init__(b"", status_code, pairs, media_type, background)
        self.path, self._file = path, os.fsencode(path)


class StaticFiles:
    """app.mount("/static", StaticFiles(directory="static")): the folder, by app.static."""

    def __init__(self, *, directory, html=False, check_dir=True):
        if check_dir and not os.path.isdir(directory):
            raise RuntimeError("Directory '%s' does not exist" % directory)
        self.directory, self.html = directory, html


def content_type(media_type):
    """The Content-Type of a media type as C writes it: text/* gets a charset."""
    text = media_type.lower().startswith("text/") and "charset=" not in media_type.lower()
    return media_type + "; charset=utf-8" if text else media_type


_END = object()


async def _gone(receive):
    """Returns when the client has gone (or the answer is complete)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _in_threads(content):
    """A sync iterator's pieces, each step on a thread (it may block), as Starlette's
    iterate_in_threadpool."""
    loop, steps = asyncio.get_running_loop(), iter(content)
    threads = process_threads("stream", 64)
    while (piece := await loop.run_in_executor(threads, next, steps, _END)) is not _END:
        yield piece


class StreamingResponse:
    """A body sent piece by piece as content (an iterator or async iterator of str or bytes)
    yields it, the next piece asked for once the client has taken the last; a sync iterator
    runs on threads of its own. background runs once the body is sent. body_iterator is
    async, as Starlette's: an http middleware may read it."""

    media_type = None

    def __init__(self, content, status_code=200, headers=None, media_type=None, background=None):
        Response(b"", status_code)  # a status turbo cannot send is refused here
        self.body_iterator = content if hasattr(content, "__aiter__") else _in_threads(content)
        self.status_code, self.background = status_code, background
        self.media_type = media_type or self.media_type
        self.headers = MutableHeaders(list(headers.items()) if isinstance(headers, dict)
                                      else list(headers or ()))
        if self.media_type and "content-type" not in self.headers:
            self.headers["content-type"] = content_type(self.media_type)

    async def _pieces(self):
        async for piece in self.body_iterator:
            yield piece

    async def __call__(self, scope, receive, send):
        task, gone, streaming = asyncio.current_task(), asyncio.ensure_future(_gone(receive)), True
        gone.add_done_callback(lambda _: task.cancel() if streaming else None)
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": [(k.lower().encode("latin-1"), v.encode("latin-1"))
                                for k, v in self.headers.items()]})
        try:
            async for piece in self._pieces():
                await send({"type": "http.response.body", "more_body": True,
                            "body": piece.encode() if isinstance(piece, str) else piece})
        except asyncio.CancelledError:
            if not gone.done():  # the process stops, not the client
                raise
            return
        finally:
            streaming = False
        await send({"type": "http.response.body", "body": b""})
        if self.background is not None:
            self.background.run_later()


_LINES = re.compile("\r\n|\r|\n")  # the line breaks of text/event-stream


class ServerSentEvent:
    """One event of an EventSourceResponse: data (sent as JSON) or raw_data (a str sent as it
    is), with event (its type), id, retry (milliseconds) and comment, as FastAPI's."""

    def __init__(self, data=None, *, raw_data=None, event=None, id=None, retry=None, comment=None):
        if data is not None and raw_data is not None:
            raise ValueError("a ServerSentEvent takes data or raw_data, not both")
        for name, value in (("event", event), ("id", id)):
            if value is not None and len(_LINES.split(value)) > 1:
                raise ValueError("a ServerSentEvent's %s cannot hold a line break" % name)
        if data is not None:
            raw_data = json.dumps(jsonable_encoder(data), separators=(",", ":"), ensure_ascii=False)
        self.raw_data, self.event, self.id, self.retry = raw_data, event, id, retry
        self.comment = comment

    def encode(self):
        lines = [": " + line for line in _LINES.split(self.comment)] if self.comment else []
        lines += ["event: " + self.event] if self.event is not None else []
        if self.raw_data is not None:
            lines += ["data: " + line for line in _LINES.split(self.raw_data)]
        lines += ["id: " + self.id] if self.id is not None else []
        lines += ["retry: %d" % self.retry] if self.retry is not None else []
        return ("\n".join(lines) + "\n\n").encode()


class EventSourceResponse(StreamingResponse):
    """Server-sent events: content yields a ServerSentEvent per event (or str or bytes in the
    format); ": ping" after ping_seconds without one keeps proxies from closing it."""

    media_type = "text/event-stream"
    ping_seconds = 15.0

    async def _pieces(self):
        pieces, step = super()._pieces(), None
        try:
            while True:
                step = step or asyncio.ensure_future(pieces.__anext__())
                done, _ = await asyncio.wait((step,), timeout=self.ping_seconds)
                if not done:
                    yield b": ping\n\n"
                    continue
                done, step = step, None
                try:
                    piece = done.result()
                except StopAsyncIteration:
                    return
                yield piece.encode() if isinstance(piece, ServerSentEvent) else piece
        finally:
            if step is not None:
                step.cancel()


class Items:
    """A generator handler's items streamed as FastAPI's: JSON lines, or events with
    response_class=EventSourceResponse; model shapes each item."""

    def __init__(self, cls, status_code, model):
        self.cls, self.status_code, self.model = cls or StreamingResponse, status_code, model
        self.events = issubclass(self.cls, EventSourceResponse)

    def encode(self, item):
        if self.events and isinstance(item, ServerSentEvent):
            return item
        text = json.dumps(jsonable_encoder(self.model(item) if self.model else item),
                          separators=(",", ":"), ensure_ascii=False)
        return ServerSentEvent(raw_data=text) if self.events else text + "\n"

    async def _each(self, items):
        async for item in items:
            yield self.encode(item)

    def __call__(self, items, *status_and_headers):
        pieces = self._each(items) if hasattr(items, "__aiter__") else map(self.encode, items)
        media_type = None if self.events else "application/jsonl"
        return self.cls(pieces, *(status_and_headers or (self.status_code,)), media_type=media_type)
