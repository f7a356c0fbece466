"""TestClient, as FastAPI's (Starlette's), for an App's tests.

The app is served for real: at the first request the process forks, and the child runs app.run
on a free port, started again when dependency_overrides have changed. It stops with the client.
"""
import atexit
import contextlib
import functools
import http.client
import json as jsonlib
import os
import signal
import socket
import time
import urllib.parse
import uuid

from . import _support

__all__ = ["TestClient"]


class Response:
    """What a request got: status_code, headers (read in any case), content, text, json()."""

    def __init__(self, status, headers, content, url):
        self.status_code, self.content, self.url = status, content, url
        self.headers = _support.Headers((k.lower(), v) for k, v in headers)
        self.is_success = 200 <= status < 300
        self.cookies = {}  # what Set-Cookie sets, None for what it deletes (Max-Age=0)
        for line in (v for k, v in headers if k.lower() == "set-cookie"):
            name, _, rest = line.partition("=")
            deleted = "max-age=0" in rest.lower().replace(" ", "")
            value = rest.split(";", 1)[0].strip().strip('"')
            self.cookies[name.strip()] = None if deleted else value

    @property
    def text(self):
        return self.content.decode("utf-8", "replace")

    def json(self):
        return jsonlib.loads(self.content)

    def __repr__(self):
        return "<Response [%d]>" % self.status_code


class TestClient:
    __test__ = False  # not a test class, for pytest

    def __init__(self, app, base_url="http://testserver", raise_server_exceptions=True,
                 cookies=None, headers=None):
        self.app, self.base_url = app, base_url
        self.cookies = dict(cookies or {})
        self.headers = dict(headers or {})
        self._child = None  # (pid, port, the overrides it was started with)
        atexit.register(self.close)

    def __enter__(self):
        self._serving()
        return self

    def __exit__(self, *exc):
        self.close()

    def _serving(self):
        overrides = dict(self.app.dependency_overrides)
        if self._child and self._child[2] != overrides:
            self.close()
        if self._child:
            return self._child[1]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.environ.update(TURBO_PROCESSES="0", TURBO_THREADS="1")
                self.app.run(host="127.0.0.1", port=port, workers=1)
                code = 0
            finally:
                os._exit(code)
        self._child = (pid, port, overrides)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return port
            if os.waitpid(pid, os.WNOHANG)[0]:
                self._child = None
                raise RuntimeError("the app stopped before it served (see stderr)")
            time.sleep(0.01)
        self.close()
        raise RuntimeError("the app did not listen within 30 s")

    def close(self):
        child, self._child = self._child, None
        if child:
            with contextlib.suppress(ProcessLookupError, ChildProcessError):
                os.kill(child[0], signal.SIGTERM)
                os.waitpid(child[0], 0)

    def request(self, method, url, *, params=None, json=None, data=None, files=None,
                content=None, headers=None, cookies=None, follow_redirects=True,
                allow_redirects=None):
        """One request: params the query (dict or pairs), json a JSON body, data a form (or
        bytes), files {name: (filename, bytes, type) or bytes or a file}, content raw bytes;
        headers a dict or (name, value) pairs (a name may repeat)."""
        port = self._serving()
        follow = follow_redirects if allow_redirects is None else allow_redirects
        parts = urllib.parse.urlsplit(url)
        path = parts.path or "/"
        query = parts.query
        if params:
            query = "&".join(x for x in (query, urllib.parse.urlencode(params, doseq=True)) if x)
        target = urllib.parse.quote(path, safe="/%:@!$&'()*+,;=") + ("?" + query if query else "")
        given = list(headers.items()) if hasattr(headers, "items") else list(headers or ())
        overridden = {name.lower() for name, _ in given}
        sent = [(k, v) for k, v in self.headers.items() if k.lower() not in overridden] + given
        body, kind = content, None
        if json is not None:
            body, kind = jsonlib.dumps(json).encode(), "application/json"
        elif files:
            body, kind = _multipart(data or {}, files)
            sent = [(k, v) for k, v in sent if k.lower() != "content-type"]  # its boundary is this body's
        elif isinstance(data, dict):
            body, kind = urllib.parse.urlencode(data, doseq=True).encode(), "application/x-www-form-urlencoded"
        elif data is not None:
            body = data.encode() if isinstance(data, str) else data
        names = {name.lower() for name, _ in sent}
        if kind and "content-type" not in names:
            sent.append(("Content-Type", kind))
        jar = dict(self.cookies, **(cookies or {}))
        if jar and "cookie" not in names:  # one Cookie line (RFC 6265): a given one, as httpx, wins
            sent.append(("Cookie", "; ".join("%s=%s" % kv for kv in jar.items() if kv[1] is not None)))
        if "host" not in names:
            sent.append(("Host", urllib.parse.urlsplit(self.base_url).netloc or "testserver"))
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            conn.request(method.upper(), target, body=body, headers=_Lines(sent))
            r = conn.getresponse()
            response = Response(r.status, r.getheaders(), r.read(), self.base_url + target)
        finally:
            conn.close()
        for name, value in response.cookies.items():
            if value is None:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        location = response.headers.get("location")
        if follow and location and response.status_code in (301, 302, 303, 307, 308):
            again = "GET" if response.status_code == 303 else method
            return self.request(again, location, headers=headers, follow_redirects=True,
                                content=body if again == method else None)
        return response

    get = functools.partialmethod(request, "GET")
    head = functools.partialmethod(request, "HEAD")
    options = functools.partialmethod(request, "OPTIONS")
    delete = functools.partialmethod(request, "DELETE")
    post = functools.partialmethod(request, "POST")
    put = functools.partialmethod(request, "PUT")
    patch = functools.partialmethod(request, "PATCH")


class _Lines:
    """Header lines as http.client takes them (it iterates the names, then asks items()),
    where a name may come more than once."""

    def __init__(self, pairs):
        self.pairs = pairs

    def __iter__(self):
        return (name for name, _ in self.pairs)

    def items(self):
        return self.pairs


def _multipart(fields, files):
    boundary = uuid.uuid4().hex
    out = []
    for name, value in fields.items():
        for v in value if isinstance(value, (list, tuple)) else [value]:
            out.append(b'--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
                       % (boundary.encode(), name.encode(), str(v).encode()))
    items = files.items() if isinstance(files, dict) else files
    for name, spec in items:
        if not isinstance(spec, tuple):
            spec = (getattr(spec, "name", name), spec)
        filename, data = os.path.basename(str(spec[0])), spec[1]
        ctype = spec[2] if len(spec) > 2 else "application/octet-stream"
        data = data.read() if hasattr(data, "read") else data
        data = data.encode() if isinstance(data, str) else data
        out.append(b'--%s\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\n'
                   b"Content-Type: %s\r\n\r\n%s\r\n" % (boundary.encode(), name.encode(),
                                                       filename.encode(), ctype.encode(), data))
    out.append(b"--%s--\r\n" % boundary.encode())
    return b"".join(out), "multipart/form-data; boundary=" + boundary
