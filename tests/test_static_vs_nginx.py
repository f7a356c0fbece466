#!/usr/bin/env python3
"""turbo_static against nginx: the same folder served by both (the demo server with
STATIC_ROOT, and Debian's nginx with sendfile), the same conditional and range requests sent to
each, and the answers compared: status, body, and the headers a cache or a download manager
reads. Where the two differ on purpose (several ranges: nginx answers multipart/byteranges,
turbo the whole file, as RFC 9110 allows) the test says so.

Run: python3 tests/test_static_vs_nginx.py build/hello-asan [-k WORD]"""
import email.utils
import os
import shutil
import socket
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

COMPARED = ("content-type", "content-length", "content-range", "etag", "last-modified",
            "accept-ranges")
NGINX_HTTP = """    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        location /static/ {{ alias {root}/; sendfile on; }}
    }}"""


def make_root():
    root = tempfile.mkdtemp(prefix="turbo-static-nginx-")
    files = {"page.html": b"<p>hello</p>\n", "notes.txt": b"0123456789abcdefghij",
             "data.json": b'{"a": 1}', "big.bin": bytes(range(256)) * 1024,
             "style.css": b"p{}", "empty.txt": b""}
    for name, data in files.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)
        os.utime(os.path.join(root, name), (1700000000, 1700000000))
    return root


def exchange(port, method, path, headers):
    """One request on its own connection, the answer read to its end: (status, headers, body)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        head = "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s\r\n" % (
            method, path, "".join("%s: %s\r\n" % kv for kv in headers.items()))
        sock.sendall(head.encode())
        data = b""
        while True:
            part = sock.recv(65536)
            if not part:
                break
            data += part
    finally:
        sock.close()
    parsed = harness.parse_response(data, method, eof=True)
    harness.check(parsed is not None, "no complete answer to %s %s: %s" % (method, path, harness.short(data)))
    r = parsed[0]
    return r.status, {k: r.header(k) for k in COMPARED}, r.body


def comparable(status, headers, body):
    """What must agree: for an error, the status (and the 416's Content-Range), each server
    writes its own page; Accept-Ranges, which nginx sends only with a 200."""
    if status >= 400:
        return status, headers["content-range"]
    if status != 200:
        headers = dict(headers, **{"accept-ranges": None})
    return status, headers, body


def cases(last_modified):
    old = email.utils.formatdate(1600000000, usegmt=True)
    etag = '"%x-%x"' % (1700000000, 20)
    return [  # (name, method, path, headers)
        ("whole file", "GET", "/static/notes.txt", {}),
        ("HEAD", "HEAD", "/static/notes.txt", {}),
        ("html type", "GET", "/static/page.html", {}),
        ("json type", "GET", "/static/data.json", {}),
        ("css type", "GET", "/static/style.css", {}),
        ("empty file", "GET", "/static/empty.txt", {}),
        ("big file (sendfile)", "GET", "/static/big.bin", {}),
        ("range first bytes", "GET", "/static/notes.txt", {"Range": "bytes=0-9"}),
        ("range open end", "GET", "/static/notes.txt", {"Range": "bytes=10-"}),
        ("range suffix", "GET", "/static/notes.txt", {"Range": "bytes=-5"}),
        ("range past the end clipped", "GET", "/static/notes.txt", {"Range": "bytes=15-100"}),
        ("range of a big file", "GET", "/static/big.bin", {"Range": "bytes=100000-200000"}),
        ("range unsatisfiable", "GET", "/static/notes.txt", {"Range": "bytes=100-"}),
        ("range of another unit: ignored", "GET", "/static/notes.txt", {"Range": "items=0-1"}),
        ("HEAD with a range", "HEAD", "/static/notes.txt", {"Range": "bytes=0-3"}),
        ("if-none-match the etag", "GET", "/static/notes.txt", {"If-None-Match": etag}),
        ("if-none-match in a list", "GET", "/static/notes.txt", {"If-None-Match": '"x", ' + etag}),
        ("if-none-match weak", "GET", "/static/notes.txt", {"If-None-Match": "W/" + etag}),
        ("if-none-match another", "GET", "/static/notes.txt", {"If-None-Match": '"other"'}),
        ("if-none-match any", "GET", "/static/notes.txt", {"If-None-Match": "*"}),
        ("if-modified-since the date", "GET", "/static/notes.txt", {"If-Modified-Since": last_modified}),
        ("if-modified-since before", "GET", "/static/notes.txt", {"If-Modified-Since": old}),
        ("if-modified-since garbage", "GET", "/static/notes.txt", {"If-Modified-Since": "yesterday"}),
        ("if-none-match wins over if-modified-since", "GET", "/static/notes.txt",
         {"If-None-Match": '"other"', "If-Modified-Since": last_modified}),
        ("if-range the etag", "GET", "/static/notes.txt", {"Range": "bytes=0-3", "If-Range": etag}),
        ("if-range another etag", "GET", "/static/notes.txt", {"Range": "bytes=0-3", "If-Range": '"x"'}),
        ("if-range the date", "GET", "/static/notes.txt", {"Range": "bytes=0-3", "If-Range": last_modified}),
        ("if-range an older date", "GET", "/static/notes.txt", {"Range": "bytes=0-3", "If-Range": old}),
        ("a conditional range", "GET", "/static/notes.txt", {"Range": "bytes=0-3", "If-None-Match": etag}),
        ("missing file", "GET", "/static/nothing.txt", {}),
        ("if-match the etag", "GET", "/static/notes.txt", {"If-Match": etag}),
        ("if-match another", "GET", "/static/notes.txt", {"If-Match": '"other"'}),
        ("if-match weak: never", "GET", "/static/notes.txt", {"If-Match": "W/" + etag}),
        ("if-match any", "GET", "/static/notes.txt", {"If-Match": "*"}),
        ("if-unmodified-since the date", "GET", "/static/notes.txt", {"If-Unmodified-Since": last_modified}),
        ("if-unmodified-since before", "GET", "/static/notes.txt", {"If-Unmodified-Since": old}),
        ("if-modified-since rfc 850", "GET", "/static/notes.txt",
         {"If-Modified-Since": "Tuesday, 14-Nov-23 22:13:20 GMT"}),
        ("if-modified-since asctime", "GET", "/static/notes.txt", {"If-Modified-Since": "Tue Nov 14 22:13:20 2023"}),
        ("if-modified-since a time that is none", "GET", "/static/notes.txt",
         {"If-Modified-Since": last_modified.replace("22:13:20", "22:13:99")}),
        ("range suffix of an empty file", "GET", "/static/empty.txt", {"Range": "bytes=-5"}),
        ("range unit in capitals", "GET", "/static/notes.txt", {"Range": "Bytes=0-3"}),
        ("range with spaces", "GET", "/static/notes.txt", {"Range": "bytes= 0-3 "}),
    ]


def main(argv):
    words = argv[argv.index("-k") + 1:] if "-k" in argv else []
    binary = argv[1]
    root = make_root()
    port = harness.free_port()
    nginx = harness.nginx(NGINX_HTTP.format(port=port, root=root), port)
    if not nginx:
        print("nginx is not installed (apt-get install nginx; .ci/run does)")
        print("0 passed, 1 failed")
        return 1
    turbo = harness.Server(binary, {"STATIC_ROOT": root})
    passed = failed = 0
    try:
        last_modified = email.utils.formatdate(1700000000, usegmt=True)
        for name, method, path, headers in cases(last_modified):
            if words and not any(w in name for w in words):
                continue
            ours = comparable(*exchange(turbo.port, method, path, headers))
            theirs = comparable(*exchange(port, method, path, headers))
            if ours == theirs:
                passed += 1
            else:
                failed += 1
                print("FAIL %s: turbo %r\n     nginx %r" % (name, ours[:2], theirs[:2]))
        # Where RFC 9110 (14.2) lets a server choose and the two chose differently: several
        # ranges (nginx: multipart/byteranges; turbo, as its manual says: the whole file) and
        # an invalid range (nginx: 416; turbo ignores the header).
        for name, wanted, status in (("several ranges", "bytes=0-1,5-6", 206),
                                     ("range backwards", "bytes=5-2", 416)):
            if words and not any(w in name for w in words):
                continue
            ours = exchange(turbo.port, "GET", "/static/notes.txt", {"Range": wanted})
            theirs = exchange(port, "GET", "/static/notes.txt", {"Range": wanted})
            if (ours[0], ours[2], theirs[0]) == (200, b"0123456789abcdefghij", status):
                passed += 1
            else:
                failed += 1
                print("FAIL %s: turbo %r, nginx %r" % (name, ours[:2], theirs[:2]))
        # Where nginx departs from RFC 9110 and turbo keeps to it: If-Match present, so
        # If-Unmodified-Since is not looked at (13.2.2; nginx: 412), and a last position past
        # the end of the file stands for its end, however many digits it has (14.1.2; nginx: 416).
        last_modified_old = email.utils.formatdate(1600000000, usegmt=True)
        etag = '"%x-%x"' % (1700000000, 20)
        for name, headers, status, body in (
                ("if-match wins over if-unmodified-since", {"If-Match": etag,
                                                            "If-Unmodified-Since": last_modified_old},
                 200, b"0123456789abcdefghij"),
                ("range to a position past any file", {"Range": "bytes=2-99999999999999999999"},
                 206, b"23456789abcdefghij")):
            if words and not any(w in name for w in words):
                continue
            ours = exchange(turbo.port, "GET", "/static/notes.txt", headers)
            theirs = exchange(port, "GET", "/static/notes.txt", headers)
            if (ours[0], ours[2]) == (status, body) and theirs[0] != status:
                passed += 1
            else:
                failed += 1
                print("FAIL %s: turbo %r, nginx %r" % (name, ours[:2], theirs[:2]))
    finally:
        problem = turbo.stop()
        nginx.kill()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(nginx.prefix, ignore_errors=True)
    if problem:
        failed += 1
        print("FAIL turbo's exit: %s" % problem)
    if not passed and not failed:
        print("FAIL: no case ran (none has any of: %s)" % " ".join(words))
        failed = 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
