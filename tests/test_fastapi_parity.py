#!/usr/bin/env python3
"""FastAPI parity: the same apps under real FastAPI (Debian's python3-fastapi,
run by uvicorn with /usr/bin/python3) and under turbo receive the same
requests, valid and invalid; status codes, content types, JSON bodies and
the loc/type of every 422 error must agree.

Debian's FastAPI is 0.92 on pydantic 1, whose error types have older names
(type_error.integer); turbo follows pydantic 2 (int_parsing). TYPE_NAMES maps
the old names onto the new; msg and input are not compared, as pydantic 1
words them differently and has no input.

Run: python3 tests/test_fastapi_parity.py   (FASTAPI_PYTHON=... picks FastAPI's interpreter)"""
import gzip
import json
import os
import re
import subprocess
import sys
import unittest
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "py_apps"))
import pyharness as harness  # noqa: E402

FASTAPI_PYTHON = os.environ.get("FASTAPI_PYTHON", "/usr/bin/python3")
TYPE_NAMES = {
    "type_error.integer": "int_parsing",
    "type_error.float": "float_parsing",
    "type_error.bool": "bool_parsing",
    "value_error.missing": "missing",
    "value_error.jsondecode": "json_invalid",
    "type_error.dict": "dict_type",
    "type_error.list": "list_type",
    "value_error.number.not_gt": "greater_than",
    "value_error.number.not_ge": "greater_than_equal",
    "value_error.number.not_lt": "less_than",
    "value_error.number.not_le": "less_than_equal",
    "value_error.number.not_multiple": "multiple_of",
    "value_error.any_str.min_length": "string_too_short",
    "value_error.any_str.max_length": "string_too_long",
    "value_error.str.regex": "string_pattern_mismatch",
    "type_error.enum": "enum",
    "value_error.date": "date_from_datetime_parsing",
    "type_error.uuid": "uuid_parsing",
    "type_error.decimal": "decimal_parsing",
}
JSON = {"Content-Type": "application/json"}
# What a proxy in front says of a client: uvicorn believes it from 127.0.0.1 by default, as turbo.
FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7, 198.51.100.2"}

PARITY_CASES = [
    ("POST", "/request-url/n?a=1&b=1&a=2", b"the body"), ("POST", "/request-url/n", b""),
    ("GET", "/items/5"),
    ("GET", "/items/5?q=x&limit=3&ratio=1.5&flag=true"),
    ("GET", "/items/5?limit=1&q=a&limit=2&q=b"),
    ("GET", "/items/abc"),
    ("GET", "/items/5?limit=x"),
    ("GET", "/items/5?ratio=x"),
    ("GET", "/items/5?flag=maybe"),
    ("GET", "/items/5?flag=on"),
    ("GET", "/items/5?flag=0&limit=-7&ratio=1e3"),
    ("GET", "/items/x?limit=y&ratio=z"),
    ("GET", "/items/%35?q=a%20b+c%2B"),
    ("GET", "/items/5?q="),
    ("GET", "/need"),
    ("GET", "/need?a=1&b=x&c=2.5&d=yes"),
    ("GET", "/need?a=1.5&b=&c=&d="),
    ("POST", "/body", b'{"a": 1, "b": [true, null]}', JSON),
    ("POST", "/body", b"[1, 2]", JSON),
    ("POST", "/body", b'{"a":', JSON),
    ("POST", "/body", b"{'a': 1}", JSON),
    ("POST", "/body", b"[" * 100000 + b"]" * 100000, JSON),  # too deep for json.loads
    ("POST", "/body", b'{"a": ' + b"9" * 5000 + b"}", JSON),  # more digits than int() takes
    ("POST", "/body"),
    ("POST", "/body", b'{"no": "content-type"}'),
    ("POST", "/list", b"[1, 2, 3]", JSON),
    ("POST", "/list", b'{"a": 1}', JSON),
    ("PUT", "/items/3", b'{"v": 1}', JSON),
    ("PUT", "/items/x", b"[1]", JSON),  # not [], which pydantic 1 turns into {}
    ("DELETE", "/items/3"),
    ("GET", "/error/http"),
    ("GET", "/error/detail"),
    ("GET", "/response"),
    ("GET", "/response/status"),
    ("GET", "/request/bob?x=1&y=two", None, {"X-Test": "yes"}),
    ("GET", "/async/21"),
    ("GET", "/status204"),
    ("GET", "/nowhere"),
    ("POST", "/items/5"),
    ("PATCH", "/need"),
    ("POST", "/users", b'{"name": "ann", "password": "secret", "email": "a@x"}', JSON),
    ("GET", "/users/dict"), ("GET", "/users/list"), ("GET", "/users/unset"), ("GET", "/users/aliased"), ("GET", "/users/none"),
    ("GET", "/users/broken"), ("GET", "/users/off"),
    ("GET", "/rules/3"), ("GET", "/rules/0"), ("GET", "/rules/3?q=b"), ("GET", "/rules/3?q=abcdefg"),
    ("GET", "/rules/3?q=bcd"), ("GET", "/rules/3?q=abc&size=10&num=4"), ("GET", "/rules/3?size=0"),
    ("GET", "/rules/3?size=11"), ("GET", "/rules/3?num=3"), ("GET", "/rules/x?size=y&num=z"),
    ("GET", "/rules/3", None, {"X-Token": "tok", "Cookie": "a=1; sess=zz"}),
    ("GET", "/rules/3", None, {"X-Token": "caf\xe9", "Cookie": "sess=\xe9t\xe9"}),  # Latin-1 bytes
    ("GET", "/needs-header"), ("GET", "/needs-header", None, {"X-Key": "k"}), ("GET", "/aliased-header"),
    ("GET", "/aliased-header", None, {"x-token": "t", "X-TAG": "1"}),
    ("GET", "/users/defaults"), ("GET", "/users/by-name"), ("GET", "/starlette-409"),
    ("GET", "/whoami"), ("GET", "/whoami", None, FORWARDED), ("GET", "/whoami", None, {"X-Forwarded-Proto": "http"}),
    ("GET", "/typed/small"), ("GET", "/typed/medium"), ("GET", "/typed/large?level=2&day=2024-02-29&price=3.25"),
    ("GET", "/typed/small?key=6f1b1c50-6d1e-4d0c-9a77-2f0d3c1a9b10&either=y&sizes=large&sizes=small"),
    ("GET", "/typed/small?either=x&level=3&day=2023-02-30&key=nope&price=abc&sizes=huge"),
    ("GET", "/typed-rules?price=2", None, {"Day": "2024-01-02"}), ("GET", "/typed-rules?price=0"),
] + [("GET", "/types/" + kind) for kind in ("dict", "list", "str", "int", "big", "floats", "true", "none", "tuple",
                                                  "datetime", "uuid", "decimal", "dataclass", "enum_set", "path",
                                                  "bytes_inside")]

BASIC = {"Authorization": "Basic " + __import__("base64").b64encode(b"ann:pa:ss").decode()}
DEPENDS_CASES = [
    ("GET", "/common"), ("GET", "/common?q=x&skip=2&limit=7"), ("GET", "/common?limit=101&skip=y"),
    ("GET", "/common", None, {"X-Block": "1"}),
    ("GET", "/class?q=a&limit=3"), ("GET", "/class?skip=z"), ("GET", "/class-named?q=b"),
    ("GET", "/sub?q=from-query"), ("GET", "/sub", None, {"Cookie": "last_query=from-cookie"}), ("GET", "/sub"),
    ("GET", "/cache"),
    ("GET", "/guarded"), ("GET", "/guarded", None, {"X-Token": "fake-super-secret-token"}),
    ("GET", "/guarded", None, {"X-Token": "bad", "X-Key": "fake-super-secret-key"}),
    ("GET", "/guarded", None, {"X-Token": "fake-super-secret-token", "X-Key": "bad"}),
    ("GET", "/guarded", None, {"X-Token": "fake-super-secret-token", "X-Key": "fake-super-secret-key"}),
    ("GET", "/db"), ("GET", "/db?fail=http"), ("GET", "/db?fail=owner"),
    ("GET", "/async?n=21"), ("GET", "/async?n=x&limit=500"), ("GET", "/async-sync-handler?n=4"),
    ("GET", "/order/1?a=2&b=3", None, {"H": "h"}), ("GET", "/order/x"), ("GET", "/order/x?a=q&b=1"),
    ("GET", "/request", None, {"X-Test": "seen"}),
    ("GET", "/oauth2"), ("GET", "/oauth2", None, {"Authorization": "Bearer abc"}),
    ("GET", "/oauth2", None, {"Authorization": "Basic abc"}), ("GET", "/oauth2", None, {"Authorization": "Bearer"}),
    ("GET", "/basic"), ("GET", "/basic", None, BASIC), ("GET", "/basic", None, {"Authorization": "Basic !!!"}),
    ("GET", "/basic", None, {"Authorization": "Basic " + __import__("base64").b64encode(b"nocolon").decode()}),
    ("GET", "/basic", None, {"Authorization": "Bearer x"}), ("GET", "/basic-realm"),
    ("GET", "/bearer"), ("GET", "/bearer", None, {"Authorization": "Bearer t0k"}),
    ("GET", "/bearer", None, {"Authorization": "Basic t0k"}), ("GET", "/bearer", None, {"Authorization": "Bearer"}),
    ("GET", "/soft-bearer"), ("GET", "/soft-bearer", None, {"Authorization": "Bearer t"}),
    ("GET", "/keys"), ("GET", "/keys?api_key=q", None, {"X-API-Key": "h", "Cookie": "session=c"}),
    ("GET", "/keys?api_key=q", None, {"X-API-Key": "h"}),
    ("GET", "/scoped"), ("GET", "/scoped", None, {"Authorization": "Bearer u"}),
    ("GET", "/scoped-admin", None, {"Authorization": "Bearer u"}),
    ("GET", "/scoped-admin", None, {"Authorization": "Bearer root"}),
]

BODY_CASES = [
    ("PUT", "/items/5", b'{"item": {"name": "a"}, "user": {"username": "u"}, "importance": 3}', JSON),
    ("PUT", "/items/5", b'{"item": {"name": "a"}, "importance": 0}', JSON),
    ("PUT", "/items/5", b'{"item": {"price": "x"}, "user": {}, "importance": "y"}', JSON),
    ("PUT", "/items/5", None, JSON), ("PUT", "/items/5", b"null", JSON), ("PUT", "/items/5", b"[1]", JSON),
    ("PUT", "/items/5", b'{"item": ', JSON), ("PUT", "/items/x", b"{}", JSON),
    ("PUT", "/embed", b'{"item": {"name": "e"}}', JSON), ("PUT", "/embed", b'{"name": "e"}', JSON),
    ("PUT", "/embed-alias", b'{"thing": {"name": "t"}, "note": "hi"}', JSON),
    ("PUT", "/embed-alias", b'{"item": {"name": "t"}, "note": "too long"}', JSON),
    ("POST", "/list", b'[{"name": "a"}, {"name": "b", "tags": ["x"]}]', JSON),
    ("POST", "/list", b'[{"name": "a"}, {"price": 2}]', JSON), ("POST", "/list", b'{"name": "a"}', JSON),
    ("POST", "/weights", b'{"a": 1.5, "b": 2}', JSON), ("POST", "/weights", b'{"a": "heavy"}', JSON),
    ("POST", "/scalar", b"7", JSON), ("POST", "/scalar", b'"8"', JSON), ("POST", "/scalar", b'"x"', JSON),
    ("POST", "/scalar"),
    ("POST", "/optional"), ("POST", "/optional", b'{"name": "o"}', JSON), ("POST", "/optional", b'{}', JSON),
    ("POST", "/union", b'{"name": "u"}', JSON), ("POST", "/union", b"[1, 2]", JSON),
    ("POST", "/dep-body", b'{"item": {"name": "d"}, "extra": "y"}', JSON),
    ("POST", "/dep-body", b'{"item": {"name": "d"}}', JSON), ("POST", "/dep-body", b'{"extra": "y"}', JSON),
]

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def multipart(*parts, boundary="B0und"):
    """A multipart/form-data body: parts are (name, value) or (name, filename, type, data)."""
    out = b""
    for part in parts:
        name, rest = part[0], part[1:]
        if len(rest) == 1:
            out += b'--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (
                boundary.encode(), name.encode(), rest[0].encode())
        else:
            out += (b'--%s\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\n'
                    b"Content-Type: %s\r\n\r\n%s\r\n" % (boundary.encode(), name.encode(), rest[0].encode(),
                                                          rest[1].encode(), rest[2]))
    return out + b"--%s--\r\n" % boundary.encode(), {"Content-Type": "multipart/form-data; boundary=" + boundary}


FORM_CASES = [
    ("POST", "/login", b"username=ann&password=secret&remember=on", FORM),
    ("POST", "/login", b"username=a+b%21&password=xy", FORM), ("POST", "/login", b"password=abcd", FORM),
    ("POST", "/login", b"username=bob&password=50%off", FORM),  # a % that begins no escape: kept
    ("POST", "/login", b"x%zz=1&username=b%2&password=abc%", FORM),
    ("POST", "/login", b"username=ann&password=pw&remember=maybe", FORM), ("POST", "/login", b"", FORM),
    ("POST", "/login", b'{"username": "json"}', JSON), ("POST", "/login", b"username=&password=abcd", FORM),
    ("POST", "/optional-form", b"age=&name=&tags=&tags=a", FORM), ("POST", "/optional-form", b"age=7&age=", FORM),
    ("POST", "/optional-form", b"age=&age=7&name=n", FORM),
    ("POST", "/optional-form", *multipart(("age", ""), ("name", ""))),
    ("POST", "/login", *multipart(("username", "mp"), ("password", "long enough"))),
    ("POST", "/token", b"username=u&password=p&scope=a+b&grant_type=password&client_id=c", FORM),
    ("POST", "/token", b"username=u&password=p&grant_type=other", FORM), ("POST", "/token", b"username=u", FORM),
    ("POST", "/bytes", *multipart(("file", "a.bin", "application/octet-stream", b"\x00\x01binary"))),
    ("POST", "/bytes", *multipart(("other", "x"))),
    ("POST", "/optional-form", b"", {"Content-Type": "multipart/form-data; boundary=B0und"}),  # no parts
    ("POST", "/optional-file", b"", {"Content-Type": "multipart/form-data; boundary=B0und"}),
    ("POST", "/upload", *multipart(("file", "r\xc3\xa9sum\xc3\xa9.txt", "text/plain", b"hello\r\n--B0un not it"),
                                    ("note", "n1"))),
    ("POST", "/upload", *multipart(("note", "no file"))),
    ("POST", "/uploads", *multipart(("files", "a.txt", "text/plain", b"aa"), ("files", "b.txt", "text/plain", b"bbb"))),
    ("POST", "/uploads", *multipart(("x", "y"))),
    ("POST", "/optional-file", *multipart(("x", "y"))),
    ("POST", "/optional-file", *multipart(("file", "f", "text/plain", b"z"))),
    ("GET", "/list-query?q=a&q=b&n=1&n=2"), ("GET", "/list-query"), ("GET", "/list-query?n=1&n=x&n=3&n=y"),
    ("GET", "/list-header", None, {"X-Tag": "one"}), ("GET", "/set-query?s=3&s=1&s=3&t=b&t=a"),
    ("GET", "/set-query"), ("GET", "/set-query?s=x"),
]

ANN, BOB = {"Authorization": "Bearer ann"}, {"Authorization": "Bearer bob"}
PORTED_CASES = [  # in order: the later ones see what the earlier ones made
    ("GET", "/health"), ("GET", "/items/"), ("GET", "/items/", None, {"Authorization": "Bearer nobody"}),
    ("POST", "/token", b"username=ann&password=secret", FORM), ("POST", "/token", b"username=ann&password=x", FORM),
    ("POST", "/token", b"username=ann", FORM),
    ("GET", "/users/me", None, ANN), ("GET", "/users/me"),
    ("POST", "/users/", b'{"username": "bob", "password": "pw", "full_name": "Bob"}', JSON),
    ("POST", "/users/", b'{"username": "bob", "password": "pw"}', JSON), ("POST", "/users/", b'{"password": "x"}', JSON),
    ("GET", "/users/me", None, BOB),
    ("POST", "/items/", b'{"title": "pen", "price": 1.5, "tags": ["office"]}', {**JSON, **ANN}),
    ("POST", "/items/", b'{"title": "ink", "price": "x"}', {**JSON, **ANN}),
    ("POST", "/items/", b'{"title": "cup", "price": 3}', {**JSON, **BOB}),
    ("GET", "/items/", None, ANN), ("GET", "/items/?skip=1&limit=1", None, ANN), ("GET", "/items/?limit=0", None, ANN),
    ("GET", "/items/1", None, BOB), ("GET", "/items/9", None, BOB), ("GET", "/items/x", None, BOB),
    ("GET", "/items", None, ANN), ("DELETE", "/items/1", None, BOB), ("DELETE", "/items/1", None, ANN),
    ("DELETE", "/items/1", None, ANN), ("GET", "/items/", None, ANN), ("GET", "/health"),
]

ERROR_CASES = [
    ("GET", "/unicorns/yolo"), ("GET", "/unicorns/ann"), ("GET", "/tea?brew=true"), ("GET", "/tea"),
    ("GET", "/tea?brew=maybe"), ("POST", "/items/x", b'{"a": 1}', JSON), ("POST", "/items/3", b"[1]", JSON),
    ("POST", "/items/3", b'{"a": 1}', JSON), ("GET", "/missing"), ("GET", "/boom"), ("GET", "/taken"),
    ("GET", "/conflict"), ("GET", "/stock"), ("GET", "/unicorns/yolo?q=1", None, {"X-Agent": "t"}),
    ("GET", "/async-unicorns/n%C3%A9?q=2&q=3", None, {"X-Agent": "u"}),
]

CATCHALL_CASES = [
    ("GET", "/sync"), ("GET", "/async"), ("GET", "/guarded"), ("GET", "/not-yours"), ("GET", "/gone"),
    ("GET", "/invalid"), ("GET", "/items/x"), ("GET", "/items/3"), ("GET", "/boom"),
]

SERVER_ERROR_CASES = [
    ("GET", "/boom"), ("GET", "/async-boom"), ("GET", "/dependency"), ("GET", "/lookup"), ("GET", "/http500"),
    ("GET", "/items/3"), ("GET", "/flaky"),
]

MIDDLEWARE_CASES = [
    ("GET", "/sync/3"), ("GET", "/sync/4?x_user=ann"), ("GET", "/async"), ("GET", "/missing"),
    ("GET", "/async", None, {"X-Block": "1"}), ("GET", "/sync/5", None, {"X-Block": "1"}),
    ("GET", "/sync/6", None, {"X-Read-Body": "1"}), ("GET", "/stream"), ("GET", "/stream", None, {"X-Read-Body": "1"}),
    ("GET", "/sync/7", None, {"X-Put-Back": "1"}), ("GET", "/stream", None, {"X-Put-Back": "1"}),
    # what is refused before a route runs goes through the middleware too: 422, 404, 405
    ("GET", "/sync/x"), ("GET", "/sync/x", None, {"X-Block": "1"}), ("GET", "/sync/x", None, {"X-Read-Body": "1"}),
    ("POST", "/notes", b'{"text": 1', {"Content-Type": "application/json"}),
    ("POST", "/notes", b'{"text": "hi"}', {"Content-Type": "application/json"}),
    ("GET", "/nowhere"), ("GET", "/nowhere", None, {"X-Block": "1"}), ("GET", "/sync/3/more"),
    ("DELETE", "/async"), ("POST", "/sync/3", None, {"X-Read-Body": "1"}), ("POST", "/openapi.json"),
]

A, B, EVIL = {"Origin": "https://a.example"}, {"Origin": "https://x.b.example"}, {"Origin": "https://evil.example"}
PREFLIGHT = {"Access-Control-Request-Method": "POST"}
GZIP = {"Accept-Encoding": "gzip, br"}
CORS_CASES = [
    ("GET", "/items/1"), ("GET", "/items/1?q=z", None, A), ("GET", "/items/1", None, B),
    ("GET", "/items/1", None, EVIL), ("GET", "/items/x", None, A), ("GET", "/nowhere", None, A),
    ("GET", "/teapot", None, A), ("DELETE", "/items/1", None, A),
    ("POST", "/items", b'{"name": "pen"}', dict(A, **{"Content-Type": "application/json"})),
    ("OPTIONS", "/items", None, dict(A, **PREFLIGHT)), ("OPTIONS", "/items/1", None, dict(B, **PREFLIGHT)),
    ("OPTIONS", "/anywhere", None, dict(EVIL, **PREFLIGHT)),
    ("OPTIONS", "/items", None, dict(A, **{"Access-Control-Request-Method": "PUT"})),
    ("OPTIONS", "/items", None, dict(A, **PREFLIGHT, **{"Access-Control-Request-Headers": "X-Token, content-type"})),
    ("OPTIONS", "/items", None, dict(A, **PREFLIGHT, **{"Access-Control-Request-Headers": "X-Other"})),
    ("OPTIONS", "/items", None, dict(EVIL, **{"Access-Control-Request-Method": "PATCH"})),
    ("OPTIONS", "/items", None, A),
    ("GET", "/big", None, GZIP), ("GET", "/big?n=50", None, GZIP), ("GET", "/big", None, dict(A, **GZIP)),
    ("GET", "/big"), ("GET", "/stream", None, GZIP), ("GET", "/stream", None, A),
]

SECRET = {"X-Token": "secret"}
ROUTER_CASES = [
    ("GET", "/users/", None, SECRET), ("GET", "/users/", None, {"X-Token": "no"}), ("GET", "/users/"),
    ("GET", "/users/7", None, SECRET), ("GET", "/users/x", None, SECRET), ("GET", "/users/x"),
    ("POST", "/admin/reset"), ("GET", "/admin/reset"), ("GET", "/admin/settings"),
    ("GET", "/admin/audit", None, {"X-Audit": "a"}), ("GET", "/settings"),
    ("GET", "/items/"), ("GET", "/items"), ("GET", "/items?x=1&y=%20z"), ("POST", "/items"), ("PUT", "/items"),
    ("GET", "/things"), ("GET", "/things/"), ("GET", "/things/?q=1"), ("GET", "/nowhere/"),
    ("GET", "/users", None, SECRET),
    ("GET", "/page"), ("GET", "/text"), ("GET", "/go"), ("GET", "/go-permanent"),
    ("GET", "/cookie"), ("GET", "/cookie?n=2"), ("GET", "/cookie?n=x"), ("GET", "/cookie-page"), ("GET", "/forget"),
    ("GET", "/stream"), ("GET", "/stream?n=0"), ("GET", "/stream?n=x"), ("GET", "/stream-async"),
    ("GET", "/file"), ("GET", "/file-typed"),
    ("HEAD", "/status"), ("TRACE", "/status"), ("GET", "/status"), ("HEAD", "/probe/"), ("TRACE", "/probe/"),
    ("TRACE", "/probe"), ("GET", "/probe/"),
    ("GET", "/raw"), ("GET", "/raw-json"), ("GET", "/to-items"), ("GET", "/file-class"),
    ("GET", "/items", None, FORWARDED), ("GET", "/things/", None, FORWARDED),
]

DEMO_CASES = [
    ("GET", "/"),
    ("GET", "/health"),
    ("POST", "/echo", b'{"a": [1, 2], "b": "x"}', JSON),
    ("POST", "/echo", b"[1]", JSON),
    ("GET", "/echo/test"),
    ("GET", "/users/7?q=x"),
    ("GET", "/users/abc?limit=z"),
    ("POST", "/db/items", b'{"name": "pen"}', JSON),
    ("POST", "/db/items", b'{"name": "ink"}', JSON),
    ("POST", "/db/items", b'{"name": 3}', JSON),
    ("GET", "/db/items"),
    ("GET", "/stress/cpu/1000"),
    ("GET", "/stress/memory/2"),
    ("GET", "/stress/memory/5000"),
]


def fastapi_available():
    try:
        return subprocess.run([FASTAPI_PYTHON, "-c", "import fastapi, uvicorn"], capture_output=True).returncode == 0
    except OSError:
        return False


def normalized(status, headers, raw):
    """What must agree: status, content type, and the body (422 errors as (type, loc) pairs)."""
    if status == 500:  # an unhandled error: the body is the server's own (uvicorn's text, turbo's JSON)
        return status
    ctype = headers.get("content-type", "").replace(" ", "")
    body = raw
    if ctype == "application/json" and raw:
        body = json.loads(raw)
        if status == 422:
            body = [(TYPE_NAMES.get(e["type"], e["type"]), e["loc"]) for e in body["detail"]]
    location = re.sub(r"^(https?)://127\.0\.0\.1:\d+", r"\1:", headers.get("location", ""))  # the ports differ
    cookie = re.sub(r"expires=[^;]*; ", "", headers.get("set-cookie", ""))  # the dates differ
    if headers.get("content-encoding") == "gzip":
        body = gzip.decompress(raw)
    cors = {k: v for k, v in headers.items() if k.startswith("access-control-") or k == "vary"}
    return (status, ctype, body, headers.get("x-reason"), headers.get("x-a"), headers.get("www-authenticate"),
            location, cookie, cors, headers.get("content-encoding"))


def operations(raw):
    """What must agree in two OpenAPI documents, operation by operation (the schemas themselves
    differ: FastAPI 0.92 writes OpenAPI 3.0 from pydantic 1, turbo 3.1)."""
    out = {}
    for path, ops in json.loads(raw)["paths"].items():
        for method, op in ops.items():
            body = op.get("requestBody", {})
            out[(path, method)] = (
                op.get("operationId"), op.get("summary"), op.get("description"), sorted(op.get("tags", [])),
                sorted((p["name"], p["in"], p["required"]) for p in op.get("parameters", [])),
                sorted(body.get("content", {})), body.get("required"), sorted(op["responses"]),
                sorted(sorted(r) for r in op.get("security", [])))
    return out


def uvicorn(target, env=None):
    port = harness.free_port()
    return harness.Server([FASTAPI_PYTHON, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port),
                           "--log-level", "warning"], env=env, cwd=harness.APPS if target.startswith("parity")
                          else harness.ROOT, port=port)


@unittest.skipUnless(fastapi_available(), f"FastAPI is not installed for {FASTAPI_PYTHON}")
class Parity(unittest.TestCase):
    def compare(self, turbo_server, fastapi_server, cases):
        ours, theirs = (operations(server.request("GET", "/openapi.json")[2])
                        for server in (turbo_server, fastapi_server))
        self.assertTrue(theirs)
        self.assertEqual(sorted(ours), sorted(theirs))
        for key in theirs:
            with self.subTest(operation=key):
                self.assertEqual(ours[key], theirs[key])
        for case in cases:
            method, path, body, headers = (case + (None, None))[:4]
            with self.subTest(request=f"{method} {path}"):
                ours = turbo_server.request(method, path, body, headers)
                theirs = fastapi_server.request(method, path, body, headers)
                self.assertEqual(normalized(*ours), normalized(*theirs))

    def test_same_app_same_answers(self):
        self.check_parity_app(harness.PYTHON)

    def test_same_app_same_answers_with_pydantic_1(self):
        """turbo on FastAPI's interpreter: Debian's pydantic is 1.x (response models differ)."""
        self.check_parity_app(FASTAPI_PYTHON)

    def test_dependencies_same_answers(self):
        self.check_parity_app(harness.PYTHON, "parity_depends", DEPENDS_CASES)

    def test_routers_redirects_and_response_classes_same_answers(self):
        self.check_parity_app(harness.PYTHON, "parity_routers", ROUTER_CASES)

    def test_bodies_same_answers(self):
        self.check_parity_app(harness.PYTHON, "parity_bodies", BODY_CASES)

    def test_bodies_same_answers_with_pydantic_1(self):
        self.check_parity_app(FASTAPI_PYTHON, "parity_bodies", BODY_CASES)

    def test_forms_files_and_lists_same_answers(self):
        self.check_parity_app(harness.PYTHON, "parity_forms", FORM_CASES)

    def test_the_ported_example_answers_as_under_fastapi(self):
        """examples/ported_app.py with its two turbo import lines changed back to FastAPI's."""
        source_path = os.path.join(harness.ROOT, "examples", "ported_app.py")
        with open(source_path) as f:
            source = f.read()
        ported = {"from turbo import APIRouter, App, Depends, HTTPException, Query, status":
                  "from fastapi import APIRouter, Depends, FastAPI as App, HTTPException, Query, status",
                  "from turbo.security import": "from fastapi.security import"}
        for ours, theirs in ported.items():
            self.assertEqual(source.count(ours), 1, ours)
            source = source.replace(ours, theirs)
        self.assertNotIn("turbo", source.replace("to turbo", ""))
        work, cleanup = harness.workdir()
        with open(os.path.join(work, "ported_fastapi.py"), "w") as f:
            f.write(source)
        port = harness.free_port()
        theirs = harness.Server([FASTAPI_PYTHON, "-m", "uvicorn", "ported_fastapi:app", "--host", "127.0.0.1",
                                 "--port", str(port), "--log-level", "warning"], cwd=work, port=port)
        ours = harness.Server([harness.PYTHON, source_path], env={"PORT": "0"})
        try:
            self.compare(ours, theirs, PORTED_CASES)
        finally:
            self.assertEqual(ours.stop(), 0, ours.log())
            theirs.stop()
            cleanup()

    def test_jsonable_encoder_as_fastapis(self):
        """turbo.jsonable_encoder and FastAPI's on the same values, in FastAPI's interpreter."""
        script = """
import dataclasses, datetime, decimal, enum, json, uuid
from typing import List, Optional
from pydantic import BaseModel
import fastapi.encoders, turbo

class Color(enum.Enum):
    RED = "red"

class Tag(BaseModel):
    name: str
    note: Optional[str] = None

class Item(BaseModel):
    title: str
    tags: List[Tag] = []
    price: Optional[float] = None

@dataclasses.dataclass
class Point:
    x: int
    at: datetime.date

values = [{"a": [1, 2.5, None, True]}, Item(title="t", tags=[Tag(name="n")]), Color.RED, {Color.RED},
          datetime.datetime(2024, 1, 2, 3, 4, 5), datetime.timedelta(seconds=90), uuid.UUID(int=7),
          decimal.Decimal("1.50"), Point(1, datetime.date(2024, 5, 6)), (1, "b"), {"n": None, "k": Item(title="x")}]
options = [{}, {"exclude_none": True}, {"exclude_unset": True}, {"include": {"title"}}]
out = []
for v in values:
    for o in options:
        if "include" in o and not isinstance(v, BaseModel):
            continue
        out.append([repr(v)[:40], o and sorted(o), fastapi.encoders.jsonable_encoder(v, **o), turbo.jsonable_encoder(v, **o)])
print(json.dumps(out, default=str))
"""
        env = dict(os.environ, PYTHONPATH=harness.ROOT)
        done = subprocess.run([FASTAPI_PYTHON, "-c", script], capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(done.returncode, 0, done.stderr)
        rows = json.loads(done.stdout)
        self.assertEqual(len(rows), 11 * 3 + 1)  # each value with three options, the model with include too
        for what, options, theirs, ours in rows:
            with self.subTest(value=what, options=options):
                self.assertEqual(ours, theirs)

    def test_exception_handlers_same_answers(self):
        self.check_parity_app(harness.PYTHON, "parity_errors", ERROR_CASES)

    def test_exception_handlers_same_answers_with_starlettes_http_exception(self):
        """turbo on FastAPI's interpreter, which has Starlette: the app registers and raises
        Starlette's HTTPException, as code written for FastAPI does."""
        self.check_parity_app(FASTAPI_PYTHON, "parity_errors", ERROR_CASES)

    def test_a_handler_for_exception_leaves_http_and_validation_errors_their_defaults(self):
        self.check_parity_app(harness.PYTHON, "parity_catchall", CATCHALL_CASES)

    def test_the_handler_for_500_or_exception_answers_what_no_other_handler_takes(self):
        self.check_parity_app(harness.PYTHON, "parity_server_errors", SERVER_ERROR_CASES + [("GET", "/items/x")],
                              logged=["turbo: GET /boom: unhandled exception", "RuntimeError: unhandled"])

    def test_the_handler_for_500_answers_outside_http_middleware(self):
        """A 422, a 404 and a 405 go through the middleware too (tagged)."""
        self.check_parity_app(harness.PYTHON, "parity_server_errors",
                              SERVER_ERROR_CASES + [("GET", "/items/x"), ("GET", "/nowhere"), ("POST", "/boom")],
                              {"PARITY_VARIANT": "middleware"}, ["ZeroDivisionError: async unhandled"])

    def test_cors_gzip_and_asgi_middleware_same_answers(self):
        self.check_parity_app(harness.PYTHON, "parity_cors", CORS_CASES)

    def test_http_middleware_same_answers(self):
        self.check_parity_app(harness.PYTHON, "parity_middleware", MIDDLEWARE_CASES)

    def check_parity_app(self, python, app="parity_app", cases=PARITY_CASES, env=None, logged=()):
        """logged: what turbo's log must show after the cases."""
        ours = harness.turbo_app(app + ".py", env, python=python)
        theirs = uvicorn(app + ":app", dict(env or {}, PARITY_FRAMEWORK="fastapi"))
        try:
            self.compare(ours, theirs, cases)
            for text in logged:
                harness.harness.wait_until(lambda: text in ours.log(), "%r is not in the log" % text)
        finally:
            self.assertEqual(ours.stop(), 0, ours.log())
            theirs.stop()

    def test_sync_functions_behind_middleware_run_forty_at_a_time(self):
        """12 requests that each wait for all 12 (a threading.Barrier) on a def route behind an
        http middleware: all met on both (asyncio's default pool, 6 threads here, never met)."""
        ours = harness.turbo_app("parity_middleware.py", None, python=harness.PYTHON)
        theirs = uvicorn("parity_middleware:app", {"PARITY_FRAMEWORK": "fastapi"})
        try:
            for server in (theirs, ours):
                with ThreadPoolExecutor(12) as pool:
                    got = list(pool.map(lambda _: server.request("GET", "/meet", timeout=30), range(12)))
                self.assertEqual([(status, raw) for status, _, raw in got], [(200, b'{"met":true}')] * 12)
        finally:
            self.assertEqual(ours.stop(), 0, ours.log())
            theirs.stop()

    def test_demo_app_and_its_fastapi_twin_agree(self):
        work, cleanup = harness.workdir()
        handlers, _ = harness.build_native(work)
        ours = harness.Server([harness.PYTHON, os.path.join(harness.ROOT, "examples", "app.py")],
                              env={"TURBO_HANDLERS": handlers, "TURBO_PROCESSES": "0", "TURBO_THREADS": "1"})
        theirs = uvicorn("bench.app_fastapi:app")
        try:
            self.compare(ours, theirs, DEMO_CASES)
        finally:
            self.assertEqual(ours.stop(), 0, ours.log())
            theirs.stop()
            cleanup()


if __name__ == "__main__":
    harness.run([Parity])
