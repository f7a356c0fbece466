"""The C API over real sockets, against tests/c_api_server.c (built with
ASan+UBSan): misbehaving handlers get a 500 and a log line, deferred
answers keep pipelined order, query values are decoded, response headers
cannot be injected. Also runs build/native_server, the examples/handlers.c
routes compiled into a plain C server.

Usage: python3 tests/test_c_api.py build/c_api_server-asan build/native_server
"""
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Conn, Server, TestFailure, check, wait_until  # noqa: E402

H = b"Host: x\r\n"
TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def logged(srv, text, timeout=10.0):
    """A log line may come a moment after the answer: wait for it."""
    deadline = time.monotonic() + timeout
    while text not in srv.stderr():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def get(srv, path):
    with Conn(srv.port, timeout=3) as c:
        c.send(b"GET " + path + b" HTTP/1.1\r\n" + H + b"\r\n")
        return c.read_response()


@test
def test_handler_that_answers_nothing_is_500_and_logged(srv):
    r = get(srv, b"/nothing")
    check(r.status == 500, "status %d" % r.status)
    check(logged(srv, "answered nothing"), "no log line")


@test
def test_json_left_open_is_500(srv):
    r = get(srv, b"/json/open")
    check(r.status == 500, "status %d" % r.status)
    check(b"{" not in r.body, "partial JSON reached the client: %r" % r.body)
    check(logged(srv, "invalid JSON"), "no log line")


@test
def test_json_value_where_key_due_is_500(srv):
    check(get(srv, b"/json/misuse").status == 500, "misuse not caught")


@test
def test_status_out_of_range_is_500(srv):
    check(get(srv, b"/status/bad").status == 500, "status 99 was sent")


@test
def test_only_statuses_200_to_599_are_sent(srv):
    for code in (b"101", b"199", b"600", b"999"):
        r = get(srv, b"/status/" + code)
        check(r.status == 500, "status %s was sent as %d" % (code, r.status))
    check(get(srv, b"/status/599").status == 599, "599 refused")


@test
def test_a_stream_whose_head_cannot_be_written_sends_nothing(srv):
    """Out of memory at the first flush: the connection closes with no byte
    sent, not the room kept for the head (an earlier answer's bytes) and
    the handler's headers."""
    get(srv, b"/status/200")  # leaves its bytes in the thread's buffer
    with Conn(srv.port, timeout=3) as c:
        c.send(b"GET /stream-oom HTTP/1.1\r\n" + H + b"\r\n")
        check(c.closed_within(2.5) is not None, "still open after a failed flush")
        check(c.buf == b"", "sent after a failed flush: %r" % c.buf[:200])
    check(get(srv, b"/status/200").status == 200, "the next answer failed too")


@test
def test_a_stream_with_its_length_stated_goes_out_unchunked(srv):
    """turbo_res_head_length before turbo_res_flush: Content-Length, the parts
    as they are, and the connection kept (HTTP/1.0's too); a stream that ends
    shorter or longer than it said is cut off and the connection closes."""
    part = b"0123456789abcdef"
    with Conn(srv.port, timeout=3) as c:
        for version in (b"1.1", b"1.0", b"1.1"):
            c.send(b"GET /stream-length/3/48 HTTP/%s\r\nConnection: keep-alive\r\n" % version + H + b"\r\n")
            r = c.read_response()
            check((r.status, r.framing, r.header("Content-Length"), r.body) == (200, "length", "48", part * 3),
                  r.raw[:300])
    for n, declared in ((2, 48), (4, 40)):
        with Conn(srv.port, timeout=3) as c:
            c.send(b"GET /stream-length/%d/%d HTTP/1.1\r\n" % (n, declared) + H + b"\r\n")
            check(c.closed_within(2.5) is not None, "%d parts under %d: still open" % (n, declared))
            head, _, body = c.buf.partition(b"\r\n\r\n")
            check(b"Content-Length: %d\r\n" % declared in head + b"\r\n" and len(body) < declared and
                  body == (part * n)[:len(body)], "%d parts under %d: %r" % (n, declared, c.buf[:300]))


@test
def test_a_file_after_a_flush_is_refused_and_the_stream_ends_whole(srv):
    with Conn(srv.port, timeout=3) as c:
        c.send(b"GET /stream-file HTTP/1.1\r\n" + H + b"\r\n")
        r = c.read_response()
        check(r.status == 200 and r.body == b"a", "%d %r" % (r.status, r.body[:100]))


@test
def test_every_status_head_whole_on_a_kept_http10_connection(srv):
    """The longest heads turbo writes (the longest reason, and HTTP/1.0's
    Connection: keep-alive) fit the room kept in front of a response: each
    arrives whole and the connection goes on, one after another."""
    with Conn(srv.port, timeout=3) as c:
        for code in (200, 201, 204, 304, 400, 404, 413, 422, 431, 500, 505, 599):
            c.send(b"GET /status/%d HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" % code)
            r = c.read_response()
            check(r.status == code, "status %d arrived as %d" % (code, r.status))
            check((r.header("Connection") or "").lower() == "keep-alive", "%d: Connection %r" % (code, r.header("Connection")))
            want = b"" if code in (204, 304) else b"body"
            check(r.body == want, "%d: body %r" % (code, r.body))


@test
def test_a_star_route_takes_every_method_the_path_has_no_handler_for(srv):
    for method in (b"GET", b"POST", b"BREW", b"OPTIONS"):
        with Conn(srv.port, timeout=3) as c:
            c.send(method + b" /any/x/y HTTP/1.1\r\n" + H + b"Content-Length: 0\r\n\r\n")
            r = c.read_response()
            check(r.status == 200 and r.body == method, "%s /any/x/y: %d %r" % (method, r.status, r.body))
    r = get(srv, b"/any/get")  # its own GET handler wins
    check(r.status == 200 and r.body.startswith(b"127.0.0.1 "), "GET /any/get: %r" % r.body)
    with Conn(srv.port, timeout=3) as c:
        c.send(b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n")
        allow = c.read_response().header("Allow")
        check("*" not in allow and "BREW" not in allow, "OPTIONS * Allow: %r" % allow)


@test
def test_server_sent_events_come_one_chunk_each(srv):
    """turbo_res_event: text/event-stream, one chunk per event, every line of data its own
    "data:" line (LF, CRLF and CR end one), a comment for data NULL, an event name with LF
    refused."""
    with Conn(srv.port, timeout=10) as c:
        c.send(b"GET /events HTTP/1.1\r\n" + H + b"\r\n")
        r = c.read_response()
    check(r.status == 200 and r.framing == "chunked", "events: %d %s" % (r.status, r.framing))
    check(r.header("Content-Type") == "text/event-stream", "Content-Type %r" % r.header("Content-Type"))
    events = [b"event: greet\ndata: hello\n\n", b"data: two\ndata: lines\ndata: three\ndata: four\n\n",
              b": ping\n\n", b"data: \n\n"]
    check(r.body == b"".join(events), "events body %r" % r.body)
    chunks, rest = [], r.raw.split(b"\r\n\r\n", 1)[1]
    while rest:
        size, rest = rest.split(b"\r\n", 1)
        chunks.append(rest[:int(size, 16)])
        rest = rest[int(size, 16) + 2:]
    check(chunks == events + [b""], "not one chunk per event: %r" % chunks)
    check(not logged(srv, "an event name with LF was sent", timeout=0.1), "an event name with LF was sent")


@test
def test_a_flushed_body_comes_chunked_piece_by_piece(srv):
    with Conn(srv.port, timeout=10) as c:
        c.send(b"GET /stream/3 HTTP/1.1\r\n" + H + b"\r\nGET /query?a=9 HTTP/1.1\r\n" + H + b"\r\n")
        r = c.read_response()
        check(r.status == 200 and r.framing == "chunked" and r.body == b"s" * (3 << 16),
              "stream: %d %s %d bytes" % (r.status, r.framing, len(r.body)))
        check(r.header("Content-Type") == "application/octet-stream", "headers: %r" % r.headers)
        after = c.read_response()  # keep-alive goes on after the last chunk
        check(after.body == b'{"a":"9","b":null,"c":null}', "pipelined after a stream: %r" % after.body)
    with Conn(srv.port, timeout=10) as c:  # HTTP/1.0: until close
        c.send(b"GET /stream/2 HTTP/1.0\r\n\r\n")
        r = c.read_response()
        check(r.framing == "close" and len(r.body) == 2 << 16, "1.0 stream: %s %d" % (r.framing, len(r.body)))
    with Conn(srv.port, timeout=10) as c:
        c.send(b"HEAD /stream/2 HTTP/1.1\r\n" + H + b"\r\n")
        r = c.read_response(method="HEAD")
        check(r.status == 200 and r.body == b"", "HEAD stream: %d %r" % (r.status, r.body))


@test
def test_a_slow_reader_of_a_stream_holds_no_one_else_up(srv):
    def started(sock):
        try:
            return bool(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
        except BlockingIOError:
            return False
    with Conn(srv.port, timeout=20, rcvbuf=4096) as slow:
        slow.send(b"GET /stream/64 HTTP/1.1\r\n" + H + b"\r\n")  # 4 MiB, read late
        wait_until(lambda: started(slow.sock), "the stream did not start")
        r = get(srv, b"/query?a=1")  # its producer waits for the slow reader meanwhile
        check(r.status == 200, "a quick request behind a stream: %d" % r.status)
        r = slow.read_response()
        check(len(r.body) == 64 << 16, "slow reader got %d bytes" % len(r.body))


@test
def test_a_gibibyte_streamed_to_a_small_window_keeps_memory_bounded(srv):
    """16,384 pieces of 64 KiB, each flushed, to a client with a 64 KiB receive buffer: the
    producer waits for the client (turbo_res_flush), so the server's memory stays flat."""
    def rss_kib():
        with open("/proc/%d/status" % srv.proc.pid) as f:
            return int([l for l in f if l.startswith("VmRSS")][0].split()[1])
    before, peak, total = rss_kib(), 0, 0
    with Conn(srv.port, timeout=30, rcvbuf=65536) as c:
        c.send(b"GET /stream/16384 HTTP/1.1\r\n" + H + b"\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += c.sock.recv(4096)
        body = head.split(b"\r\n\r\n", 1)[1]
        total, tail = len(body), body[-5:]
        while not tail.endswith(b"0\r\n\r\n"):
            part = c.sock.recv(1 << 20)
            check(part, "the stream ended after %d bytes" % total)
            total += len(part)
            tail = (tail + part)[-5:]
            if total % (64 << 20) < len(part):
                peak = max(peak, rss_kib() - before)
    # each piece framed as "10000\r\n" + 64 KiB + "\r\n", then the last chunk "0\r\n\r\n"
    check(total == 16384 * (7 + 65536 + 2) + 5, "got %d bytes of chunked body" % total)
    check(peak < 32 * 1024, "RSS grew by %d KiB while streaming 1 GiB" % peak)


@test
def test_a_client_that_leaves_mid_stream_stops_its_producer(srv):
    c = Conn(srv.port, timeout=5, rcvbuf=4096)
    c.send(b"GET /stream/2000 HTTP/1.1\r\n" + H + b"\r\n")
    c.sock.recv(1000)
    c.close()
    check(logged(srv, "/stream: the client left after", timeout=15), "the producer was not told")


@test
def test_the_peer_address_is_the_clients(srv):
    with Conn(srv.port, timeout=3) as c:
        c.send(b"GET /peer HTTP/1.1\r\n" + H + b"\r\n")
        r = c.read_response()
        host, port = c.sock.getsockname()[:2]
        want = "%s %d -1 %d" % (host, port, port)  # no room for the NUL: -1
        check(r.body.decode() == want, "peer %r, want %r" % (r.body, want))


@test
def test_an_absolute_form_targets_host_is_the_requests(srv):
    # RFC 9112 3.2.2: the server MUST ignore Host and use the target's host.
    for target, want in ((b"http://real.example:81/host", b"real.example:81"), (b"HTTPS://[::1]/host", b"[::1]"),
                         (b"/host", b"evil.example")):
        with Conn(srv.port, timeout=3) as c:
            c.send(b"GET " + target + b" HTTP/1.1\r\nHost: evil.example\r\n\r\n")
            r = c.read_response()
        check((r.status, r.body) == (200, want), "%r: %d %r" % (target, r.status, r.body))


def post_parts(srv, body, content_type=b"multipart/form-data; boundary=XyZ"):
    with Conn(srv.port, timeout=3) as c:
        c.send(b"POST /parts HTTP/1.1\r\n" + H + b"Content-Type: " + content_type +
               b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        return c.read_response()


@test
def test_multipart_parts_are_split_with_names_filenames_and_types(srv):
    body = (b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\none\r\n"
            b"--XyZ\r\ncontent-disposition: form-data; name=\"f\"; filename=\"x.txt\"\r\n"
            b"Content-Type: text/plain\r\n\r\nline 1\r\nline 2 --XyZ not a delimiter\r\n"
            b"--XyZ\r\nContent-Disposition: form-data; name=empty\r\n\r\n\r\n--XyZ--\r\nepilogue")
    r = post_parts(srv, body)
    check(r.status == 200, "status %d %r" % (r.status, r.body))
    check(json.loads(r.body) == [["a", None, None, "one"],
                                 ["f", "x.txt", "text/plain", "line 1\r\nline 2 --XyZ not a delimiter"],
                                 ["empty", None, None, ""]], r.body)
    r = post_parts(srv, b"preamble\r\n--b\r\nContent-Disposition: form-data; name=\"z\"\r\n\r\n1\r\n--b--",
                   b'multipart/form-data; charset=utf-8; boundary="b"')
    check((r.status, json.loads(r.body)) == (200, [["z", None, None, "1"]]), r.raw)


@test
def test_multipart_names_inside_quotes_name_nothing(srv):
    # A ";" in a quoted filename separates no parameter: the field is "user",
    # as RFC 7578's parsers (and Python's email package) read it.
    body = (b'--XyZ\r\nContent-Disposition: form-data; filename="x; name=admin; .txt"; name="user"\r\n'
            b'\r\nDATA\r\n--XyZ\r\nContent-Disposition: form-data; name="a\\";b"; filename="q\\"; name=c"\r\n'
            b'\r\n2\r\n--XyZ--')
    r = post_parts(srv, body)
    check((r.status, json.loads(r.body)) == (200, [["user", "x; name=admin; .txt", None, "DATA"],
                                                   ["a\\\";b", "q\\\"; name=c", None, "2"]]), r.raw)


@test
def test_malformed_multipart_bodies_are_refused(srv):
    bad = [b"", b"--XyZ", b"--XyZ\r\n\r\nno name\r\n--XyZ--",
           b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nno closing delimiter",
           b"--XyZ\r\nContent-Disposition: form-data; name=a\r\nno blank line",
           b"--XyZ junk\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--XyZ--"]
    for body in bad:
        r = post_parts(srv, body)
        check(r.status == 400, "%r: %d %r" % (body, r.status, r.body))
    for ct in (b"text/plain", b"multipart/form-data", b"multipart/form-data; boundary=" + b"b" * 71):
        check(post_parts(srv, b"--b\r\n", ct).status == 415, ct)


SMALL = b"abcdefghij" * 10
BIG = bytes(range(256)) * 4096 + b"tail"  # past 64 KiB: sent with sendfile


def make_static_root():
    """A folder for turbo_static: files, a subfolder with an index, a dotfile, and symlinks
    inside and out; a secret beside it that no request may read."""
    top = tempfile.mkdtemp(prefix="turbo-static-")
    root = os.path.join(top, "root")
    os.makedirs(os.path.join(root, "sub"))
    with open(os.path.join(top, "secret.txt"), "w") as f:
        f.write("SECRET")
    for name, data in (("small.txt", SMALL), ("big.bin", BIG), (".hidden", b"dot"),
                       ("sub/index.html", b"<p>index</p>"), ("page.html", b"<p>page</p>")):
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)
    os.symlink(os.path.join(top, "secret.txt"), os.path.join(root, "escape.txt"))
    os.symlink(os.path.join(root, "small.txt"), os.path.join(root, "inside.txt"))
    os.symlink(top, os.path.join(root, "up"))
    os.symlink("small.txt", os.path.join(root, "relative.txt"))
    os.symlink("../secret.txt", os.path.join(root, "relative-escape.txt"))
    os.symlink("../root/small.txt", os.path.join(root, "out-and-back.txt"))
    os.symlink("../page.html", os.path.join(root, "sub", "page.html"))
    os.mkfifo(os.path.join(root, "pipe.txt"))  # opening it to read would wait for a writer
    return root


def fetch(srv, path, headers=b"", method=b"GET"):
    with Conn(srv.port, timeout=5) as c:
        c.send(method + b" " + path + b" HTTP/1.1\r\n" + H + headers + b"\r\n")
        return c.read_response(method.decode())


@test
def test_a_static_file_comes_with_its_type_validators_and_cache_control(srv):
    r = fetch(srv, b"/static/small.txt")
    check((r.status, r.body, r.header("Content-Type"), r.header("Accept-Ranges"), r.header("Cache-Control")) ==
          (200, SMALL, "text/plain", "bytes", "public, max-age=60"), r.raw[:300])
    etag, modified = r.header("ETag"), r.header("Last-Modified")
    check(etag and etag.startswith('"') and modified and modified.endswith(" GMT"), r.raw[:300])
    for headers in (b"If-None-Match: " + etag.encode() + b"\r\n", b"If-None-Match: \"x\", W/" + etag.encode() + b"\r\n",
                    b"If-Modified-Since: " + modified.encode() + b"\r\n", b"If-None-Match: *\r\n"):
        r = fetch(srv, b"/static/small.txt", headers)
        check(r.status == 304 and r.body == b"" and r.header("ETag") == etag, "%r: %r" % (headers, r.raw[:200]))
    for headers in (b"If-None-Match: \"other\"\r\n", b"If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n",
                    b"If-Modified-Since: yesterday\r\n"):
        check(fetch(srv, b"/static/small.txt", headers).status == 200, headers)
    r = fetch(srv, b"/file", b"If-None-Match: " + etag.encode() + b"\r\n")  # turbo_res_file from a handler
    check(r.status == 304, r.raw[:200])
    for name, status in ((b"If-None-Match", 304), (b"If-Match", 200)):  # two lines are one list (RFC 9110 5.3)
        r = fetch(srv, b"/static/small.txt", name + b': "other"\r\n' + name + b": " + etag.encode() + b"\r\n")
        check(r.status == status, "%r on a second line: %r" % (name, r.raw[:200]))
    check(fetch(srv, b"/static/page.html").header("Content-Type") == "text/html", "html type")


@test
def test_a_file_answering_another_method_than_get_takes_no_range_and_no_304(srv):
    """RFC 9110: Range is for GET (14.2), If-Modified-Since for GET and HEAD (13.1.3), and a
    matching If-None-Match stops another method with a 412 (13.1.2)."""
    for method in (b"POST", b"DELETE"):
        r = fetch(srv, b"/file", b"Range: bytes=0-1\r\nContent-Length: 0\r\n", method)
        check((r.status, r.body, r.header("Content-Range")) == (200, SMALL, None), "%r: %r" % (method, r.raw[:200]))
        r = fetch(srv, b"/file", b"If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\nContent-Length: 0\r\n", method)
        check((r.status, r.body) == (200, SMALL), "%r: %r" % (method, r.raw[:200]))
        r = fetch(srv, b"/file", b"If-None-Match: *\r\nContent-Length: 0\r\n", method)
        check(r.status == 412, "%r: %r" % (method, r.raw[:200]))
    check(fetch(srv, b"/file", b"Range: bytes=0-1\r\n", b"HEAD").status == 206, "HEAD is GET's")


@test
def test_static_ranges_are_answered_206_or_416(srv):
    n = len(SMALL)
    cases = [(b"bytes=0-3", 206, SMALL[:4], "bytes 0-3/%d" % n), (b"bytes=-3", 206, SMALL[-3:], "bytes %d-%d/%d" % (n - 3, n - 1, n)),
             (b"bytes=95-", 206, SMALL[95:], "bytes 95-99/%d" % n), (b"bytes=90-500", 206, SMALL[90:], "bytes 90-99/%d" % n),
             (b"bytes=100-", 416, None, "bytes */%d" % n), (b"bytes=0-1,3-4", 200, SMALL, None),
             (b"bytes=x-", 200, SMALL, None), (b"items=0-1", 200, SMALL, None)]
    for spec, status, body, content_range in cases:
        r = fetch(srv, b"/static/small.txt", b"Range: " + spec + b"\r\n")
        check(r.status == status and (body is None or r.body == body) and r.header("Content-Range") == content_range,
              "%r: %r" % (spec, r.raw[:200]))
    r = fetch(srv, b"/static/small.txt", b"Range: bytes=100-\r\n")
    check((r.reason, r.body) == ("Range Not Satisfiable", b"Range Not Satisfiable\n"), r.raw[:200])
    r = fetch(srv, b"/static/small.txt", b"Range: bytes=0-3\r\nIf-Range: \"stale\"\r\n")
    check(r.status == 200 and r.body == SMALL, "If-Range: %r" % r.raw[:200])


@test
def test_a_file_keeps_the_handlers_type_and_reads_the_request_itself(srv):
    """turbo_res_file(res, NULL, path) after the handler set a Content-Type: that type is kept,
    and Range / If-None-Match come from the request being answered."""
    r = fetch(srv, b"/typed-file")
    check((r.status, r.body, r.header("Content-Type")) == (200, SMALL, "application/x-typed"), r.raw[:300])
    check(r.raw.lower().count(b"content-type:") == 1, "one Content-Type: %r" % r.raw[:300])
    part = fetch(srv, b"/typed-file", b"Range: bytes=0-3\r\n")
    check((part.status, part.body, part.header("Content-Range")) == (206, SMALL[:4], "bytes 0-3/%d" % len(SMALL)),
          part.raw[:300])
    same = fetch(srv, b"/typed-file", b"If-None-Match: " + r.header("ETag").encode() + b"\r\n")
    check(same.status == 304 and same.body == b"", same.raw[:200])
    past = fetch(srv, b"/typed-file", b"Range: bytes=%d-\r\n" % len(SMALL))  # the type is the file's: no body
    check((past.status, past.body, past.header("Content-Range"), past.raw.lower().count(b"content-type:")) ==
          (416, b"", "bytes */%d" % len(SMALL), 1), past.raw[:300])


@test
def test_a_body_from_a_file_under_the_handlers_own_head(srv):
    r = fetch(srv, b"/body-file/small")
    check((r.status, r.body, r.header("Content-Type"), r.header("X-Own"), r.header("ETag")) ==
          (201, SMALL, "application/x-own", "1", None), r.raw[:300])
    head = fetch(srv, b"/body-file/small", method=b"HEAD")
    check((head.status, head.body, head.header("Content-Length")) == (201, b"", str(len(SMALL))), head.raw[:300])
    missing = fetch(srv, b"/body-file/gone")
    check(missing.status == 500 and missing.header("X-Own") is None, missing.raw[:300])


@test
def test_a_file_ends_the_answer_and_bytes_before_it_count_in_its_length(srv):
    """Body bytes, then a file, then more body, a second file (missing) and a defer: the answer is
    the bytes and the file, under their length, whatever the file's size; nothing after changes it."""
    for name, data in ((b"small.txt", SMALL), (b"big.bin", BIG)):  # read into the body, or sent by the loop
        for query, status, body in ((b"", 200, b"PREFIX" + data), (b"?status=203", 203, b"PREFIX" + data),
                                    (b"?status=204", 204, b"")):  # turbo's status, the handler's, no body
            with Conn(srv.port, timeout=5) as c:  # then a second answer: the framing held
                c.send(b"GET /prefixed-file/" + name + query + b" HTTP/1.1\r\n" + H +
                       b"\r\nGET /status/205 HTTP/1.1\r\n" + H + b"\r\n")
                r, after = c.read_response(), c.read_response()
            check((r.status, r.body, after.status) == (status, body, 205), "%s%s: %r" % (name, query, r.raw[:200]))
        head = fetch(srv, b"/prefixed-file/" + name, method=b"HEAD")
        check((head.body, head.header("Content-Length")) == (b"", str(6 + len(data))), head.raw[:300])


@test
def test_a_big_static_file_goes_out_whole_and_the_connection_goes_on(srv):
    with Conn(srv.port, timeout=10) as c:
        c.send(b"GET /static/big.bin HTTP/1.1\r\n" + H + b"\r\nGET /static/big.bin HTTP/1.1\r\n" + H +
               b"Range: bytes=65536-65546\r\n\r\nGET /static/small.txt HTTP/1.1\r\n" + H + b"\r\n")
        whole, part, small = c.read_responses(3)
    check(whole.status == 200 and whole.body == BIG, "big: %d, %d bytes" % (whole.status, len(whole.body)))
    check(part.status == 206 and part.body == BIG[65536:65547], "range of big: %r" % part.raw[:200])
    check(small.status == 200 and small.body == SMALL, "after big: %r" % small.raw[:200])
    r = fetch(srv, b"/static/big.bin", method=b"HEAD")
    check(r.status == 200 and r.header("Content-Length") == str(len(BIG)), "HEAD: %r" % r.raw[:200])


@test
def test_static_refuses_every_path_out_of_its_folder(srv):
    for path in (b"/static/../c_api_server.c", b"/static/%2e%2e/secret.txt", b"/static/%2E%2E%2Fsecret.txt",
                 b"/static/sub/%2e%2e/%2e%2e/secret.txt", b"/static/a%00b", b"/static/.hidden", b"/static/%2ehidden",
                 b"/static/escape.txt", b"/static/up/secret.txt", b"/static/nothing", b"/static/%zz",
                 b"/static/./small.txt", b"/static//etc/passwd", b"/static/pipe.txt"):
        r = fetch(srv, path)
        check(r.status in (400, 404) and b"SECRET" not in r.body and b"root:" not in r.body,
              "%r: %r" % (path, r.raw[:200]))
    check(fetch(srv, b"/static/inside.txt").body == SMALL, "a symlink inside the folder")
    check(fetch(srv, b"/static/sub/").body == b"<p>index</p>", "folder index")
    for method in (b"GET", b"HEAD"):  # to the folder, so that its index's relative links work
        for path, to in ((b"/static/sub", "/static/sub/"), (b"/static/sub?v=1&w", "/static/sub/?v=1&w"),
                         (b"http://127.0.0.1/static/sub?v", "/static/sub/?v"), (b"/static", "/static/"),
                         (b"/static?v=2", "/static/?v=2")):
            r = fetch(srv, path, method=method)
            check((r.status, r.header("Location"), r.body) == (301, to, b""), "%r: %r" % (path, r.raw[:300]))


@test
def test_static_follows_relative_symlinks_that_stay_in_its_folder(srv):
    for path in (b"/static/relative.txt", b"/static/out-and-back.txt"):
        r = fetch(srv, path)
        check(r.status == 200 and r.body == SMALL, "%r: %r" % (path, r.raw[:200]))
    r = fetch(srv, b"/static/sub/page.html")
    check(r.status == 200 and r.body == b"<p>page</p>", "into the parent folder: %r" % r.raw[:200])
    r = fetch(srv, b"/static/relative-escape.txt")
    check(r.status == 404 and b"SECRET" not in r.body, "out of the folder: %r" % r.raw[:200])


@test
def test_205_drops_the_body_and_says_so_with_a_zero_length(srv):
    r = get(srv, b"/status/205")
    check(r.status == 205 and r.body == b"" and r.header("Content-Length") == "0",
          "205: %r" % r.raw)
    r = get(srv, b"/status/204")
    check(r.status == 204 and r.header("Content-Length") is None, "204: %r" % r.raw)


@test
def test_connection_survives_a_500(srv):
    with Conn(srv.port, timeout=3) as c:
        c.send(b"GET /nothing HTTP/1.1\r\n" + H + b"\r\nGET /query?a=1 HTTP/1.1\r\n" + H + b"\r\n")
        a, b = c.read_responses(2)
        check(a.status == 500 and b.status == 200, "got %d, %d" % (a.status, b.status))


@test
def test_query_values_are_percent_decoded(srv):
    r = get(srv, b"/query?a=J%C3%B6rg+K&b=&c=%2B%26")
    check(r.status == 200, "status %d" % r.status)
    check(json.loads(r.body) == {"a": "J\u00f6rg K", "b": "", "c": "+&"}, r.body)


@test
def test_malformed_escape_in_query_is_400_before_the_handler(srv):
    check(get(srv, b"/query?c=%zz").status == 400, "malformed escape reached the handler")


@test
def test_absent_query_value_is_null(srv):
    check(json.loads(get(srv, b"/query").body) == {"a": None, "b": None, "c": None}, "not null")


@test
def test_response_header_injection_is_refused(srv):
    r = get(srv, b"/headers")
    check(r.body == b"-1 -1 -1 0", "header calls returned %r" % r.body)
    check(r.header("x-evil") is None and r.header("set-cookie") is None, "injected header sent")
    check(r.header("x-fine") == "yes", "valid header missing")
    check(r.header("content-length") == "10", "Content-Length %r" % r.header("content-length"))


@test
def test_custom_method_is_routed(srv):
    with Conn(srv.port, timeout=3) as c:
        c.send(b"PURGE /cache HTTP/1.1\r\n" + H + b"\r\n")
        r = c.read_response()
    check(r.status == 200 and r.body == b"purged", "status %d" % r.status)


@test
def test_large_body_written_in_pieces(srv):
    with Conn(srv.port, timeout=5) as c:
        c.send(b"GET /big HTTP/1.1\r\n" + H + b"\r\n")
        r = c.read_response(timeout=5)
    check(r.status == 200 and len(r.body) == 4 << 20 and r.body == b"x" * (4 << 20), "body wrong")


@test
def test_deferred_answer_arrives_from_another_thread(srv):
    r = get(srv, b"/later/7")
    check(json.loads(r.body) == {"deferred": "7"}, r.body)


@test
def test_a_copied_request_is_read_after_the_buffers_it_was_in_were_reused(srv):
    """turbo_req_copy: /copied answers from its copy only once other requests (other paths,
    headers, queries and peers' bytes) have gone through the workers' buffers."""
    body = b'{"k": 1}'
    with Conn(srv.port, timeout=5) as c:
        c.send(b"POST /copied/ab%20c?q=x%2By+z HTTP/1.1\r\n" + H +
               b"X-Copied: kept\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

        def released():
            with Conn(srv.port, timeout=3) as other:
                other.send(b"GET /copied-release?q=other HTTP/1.1\r\n" + H + b"X-Copied: other\r\n\r\n")
                return other.read_response().body == b"released"
        wait_until(released, "the copied request was never held", timeout=5)
        r = c.read_response()
    check(r.status == 200, "status %d" % r.status)
    check(json.loads(r.body) == {"method": "POST", "path": "/copied/ab%20c", "name": "ab%20c", "header": "kept",
                                 "body": '{"k": 1}', "q": "x+y z", "peer": True}, r.body)


@test
def test_a_file_after_a_defer_is_refused_and_the_resumed_answer_goes_out(srv):
    r = get(srv, b"/defer-then-file")
    check((r.status, json.loads(r.body)) == (200, {"deferred": "file"}), r.raw[:200])


@test
def test_an_answer_deferred_again_by_its_resume_function_arrives_before_the_close(srv):
    """The resume function defers once more: a connection that closes after this answer
    (Connection: close, HTTP/1.0) waits for it rather than closing under it."""
    for head in (b"GET /twice/8 HTTP/1.1\r\nConnection: close\r\n" + H, b"GET /twice/9 HTTP/1.0\r\n",
                 b"GET /twice/10 HTTP/1.1\r\n" + H):
        with Conn(srv.port, timeout=3) as c:
            c.send(head + b"\r\n")
            r = c.read_response()
            check(r.status == 200 and json.loads(r.body)["deferred"] == head.split(b"/")[2].split()[0].decode(),
                  "%r: %r" % (head, r.raw[:200]))


@test
def test_pipelined_requests_wait_behind_a_deferred_one(srv):
    with Conn(srv.port, timeout=3) as c:
        c.send(b"GET /later/1 HTTP/1.1\r\n" + H + b"\r\nGET /query?a=2 HTTP/1.1\r\n" + H + b"\r\n"
               b"GET /later/3 HTTP/1.1\r\n" + H + b"\r\n")
        a, b, d = c.read_responses(3)
    check(json.loads(a.body) == {"deferred": "1"}, "first %r" % a.body)
    check(json.loads(b.body)["a"] == "2", "second %r" % b.body)
    check(json.loads(d.body) == {"deferred": "3"}, "third %r" % d.body)


@test
def test_deferred_requests_overlap(srv):
    conns = [Conn(srv.port, timeout=3) for _ in range(20)]
    started = time.monotonic()
    for i, c in enumerate(conns):
        c.send(b"GET /later/%d HTTP/1.1\r\n" % i + H + b"\r\n")
    for i, c in enumerate(conns):
        check(json.loads(c.read_response().body) == {"deferred": str(i)}, "answer %d" % i)
        c.close()
    elapsed = time.monotonic() - started
    # one after another they take 2 s at least: all the rest is room for a loaded machine
    check(elapsed < 1.9, "20 deferred answers of 100 ms took %.2f s: not overlapping" % elapsed)


@test
def test_answers_resumed_together_each_reach_their_client(srv):
    """turbo_defer_resume_all: four answers, on whichever workers took them, resumed in one
    call; the client of one has gone by then (its answer is dropped, the others arrive)."""
    conns = [Conn(srv.port, timeout=3) for _ in range(4)]
    for i, c in enumerate(conns[:3]):
        c.send(b"GET /gathered/%d HTTP/1.1\r\n" % i + H + b"\r\n")
    conns[0].close()
    conns[3].send(b"GET /gathered/3 HTTP/1.1\r\n" + H + b"\r\n")
    for i, c in enumerate(conns[1:], 1):
        check(json.loads(c.read_response().body) == {"deferred": str(i)}, "answer %d" % i)
        c.close()


@test
def test_client_gone_before_deferred_answer(srv):
    with Conn(srv.port, timeout=3) as c:
        c.send(b"GET /later/9 HTTP/1.1\r\n" + H + b"\r\n")
    time.sleep(0.3)
    check(get(srv, b"/query?a=1").status == 200, "server stopped answering")


@test
def test_a_watched_deferred_answer_hears_how_it_ended(srv):
    def stats():
        return json.loads(get(srv, b"/watch-stats").body)
    before = stats()
    check(get(srv, b"/watched/a/20").status == 200, "the watched answer did not come")
    wait_until(lambda: stats()["answered"] == before["answered"] + 1, "no ended(arg, 0) after the answer")
    with Conn(srv.port, timeout=3) as c:  # leaves long before the 3 s answer
        c.send(b"GET /watched/b/3000 HTTP/1.1\r\n" + H + b"\r\n")
    wait_until(lambda: stats()["gone"] == before["gone"] + 1, "no ended(arg, 1) when the client left")


@test
def test_deferred_answer_waits_behind_queued_output(srv):
    """A deferred answer resumed while a large earlier answer is still
    queued must come after all of it, byte for byte."""
    with Conn(srv.port, timeout=5, rcvbuf=65536) as c:
        c.send(b"GET /big HTTP/1.1\r\n" + H + b"\r\nGET /later/5 HTTP/1.1\r\n" + H + b"\r\n")
        time.sleep(0.4)  # the deferred answer resumes while /big is backed up
        big, later = c.read_responses(2, timeout=5)
    check(big.status == 200 and big.body == b"x" * (4 << 20), "big body damaged (%d bytes)" % len(big.body))
    check(json.loads(later.body) == {"deferred": "5"}, "deferred answer %r" % later.body[:80])


@test
def test_pipelined_requests_for_large_answers_do_not_balloon_memory(srv):
    """100 pipelined requests of 4 MiB each, never read: the server stops
    serving them once output backs up instead of buffering 400 MiB."""
    def rss_kib():
        with open("/proc/%d/status" % srv.proc.pid) as f:
            return int([l for l in f if l.startswith("VmRSS")][0].split()[1])
    before = rss_kib()
    c = Conn(srv.port, timeout=3, rcvbuf=4096)
    c.send((b"GET /big HTTP/1.1\r\n" + H + b"\r\n") * 100)
    time.sleep(1.0)
    grown = rss_kib() - before
    c.close()
    check(grown < 64 * 1024, "RSS grew by %d KiB" % grown)


@test
def test_error_on_a_chunked_body_after_another_clients_head_has_a_body(srv):
    a = Conn(srv.port, timeout=3)
    a.send(b"POST /query HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhel")
    time.sleep(0.2)
    for _ in range(8):  # some of these land on a's worker
        with Conn(srv.port, timeout=3) as b:
            b.send(b"HEAD /query HTTP/1.1\r\n" + H + b"\r\n")
            b.read_response(method="HEAD")
    a.send(b"lo\r\nZZ\r\n")
    r = a.read_response()
    a.close()
    check(r.status == 400 and r.body.startswith(b"Bad Request"), "got %d %r" % (r.status, r.body))


def native_checks(binary):
    """examples/handlers.c compiled into a C server answers like the demo."""
    srv = Server(binary, {"TURBO_THREADS": "1"})
    failures = []
    try:
        for path, want in [(b"/", b"Hello, World!"), (b"/json", b'{"message":"Hello, World!"}')]:
            r = get(srv, path)
            if r.status != 200 or r.body != want:
                failures.append("native_server %s: %d %r" % (path, r.status, r.body))
        if get(srv, b"/health").status != 200:
            failures.append("native_server /health")
    finally:
        problem = srv.stop()
    if problem:
        failures.append("native_server: " + problem)
    return failures


@contextlib.contextmanager
def stopping(binary, env, path):
    """A server whose handler for GET path has logged that it took it, then SIGTERM."""
    srv = Server(binary, env)
    c = None
    try:
        c = Conn(srv.port, timeout=3)
        c.send(b"GET " + path + b" HTTP/1.1\r\n" + H + b"\r\n")
        wait_until(lambda: path.decode() + " " in srv.stderr(), "the handler of %s" % path)
        srv.signal()
        yield srv, c
    finally:
        if c:
            c.close()
        srv.kill()


def deferred_shutdown_checks(binary):
    """Shutdown with a deferred answer outstanding past the grace period: the
    worker stops without it (the client's connection is closed), the late
    turbo_defer_resume calls its function with no response from the
    resuming thread, nothing leaks, and the process exits 0. An answer never
    resumed does not hold shutdown; a handler that never returns makes the
    process end itself (status 1) after the grace period."""
    failures = []
    env = {"TURBO_THREADS": "1", "TURBO_SHUTDOWN_TIMEOUT_MS": "20"}
    with stopping(binary, env, b"/later/after-stop") as (srv, c):
        if c.closed_within(10) is None:
            failures.append("deferred shutdown: the waiting client's connection was not closed")
        rc = srv.wait(5)
        if rc != 0:
            failures.append("deferred shutdown: exit status %s" % rc)
        for line in ("not waiting for 1 deferred", "no one to answer /later/after-stop"):
            if line not in srv.stderr():
                failures.append("deferred shutdown: no %r in the log: %s" % (line, srv.stderr()[-400:]))
        if "Sanitizer" in srv.stderr():
            failures.append("deferred shutdown: " + srv.stderr()[-400:])
    with stopping(binary, {"TURBO_THREADS": "1", "TURBO_SHUTDOWN_TIMEOUT_MS": "200"}, b"/never") as (srv, c):
        rc = srv.wait(5)
        if rc != 0 or "/never resumed after shutdown, no response" not in srv.stderr():
            failures.append("never-resumed shutdown: exit status %s (None: still running after 5 s): %s"
                            % (rc, srv.stderr()[-400:]))
    with stopping(binary, {"TURBO_THREADS": "2", "TURBO_SHUTDOWN_TIMEOUT_MS": "200"}, b"/hang") as (srv, c):
        rc = srv.wait(8)
        if rc != 1 or "a handler is still running" not in srv.stderr():
            failures.append("stuck-handler shutdown: exit status %s (None: still running after 8 s): %s"
                            % (rc, srv.stderr()[-400:]))
    return failures


def timed_get(port, path):
    """(response, seconds) for one GET on a fresh connection."""
    started = time.monotonic()
    with Conn(port, timeout=10) as c:
        c.send(b"GET " + path + b" HTTP/1.1\r\n" + H + b"\r\n")
        r = c.read_response()
    return r, time.monotonic() - started


def slow_started(port, path):
    """A connection with `path` sent: its handler is about to block."""
    c = Conn(port, timeout=10)
    c.send(b"GET " + path + b" HTTP/1.1\r\n" + H + b"\r\n")
    return c


def quick_while(srv, slow_path, label, failures, quick=b"/query?a=1"):
    """While slow_path runs (threads=1: on the one worker), a quick request on
    another connection is answered within 1 s (behind a stalled loop it would wait 1.4 s at
    least: the rest is room for a loaded machine); then the slow one too."""
    slow = slow_started(srv.port, slow_path)
    try:
        time.sleep(0.05)  # lets the slow handler start; the check holds either way
        r, took = timed_get(srv.port, quick)
        if r.status != 200 or took > 1.0:
            failures.append("%s: quick request took %.3f s (status %d)" % (label, took, r.status))
        r = slow.read_response()
        if r.status != 200:
            failures.append("%s: the slow request got %d %r" % (label, r.status, r.body))
    finally:
        slow.close()


def execution_model_checks(binary):
    """No handler stalls a loop: with one worker thread, a C handler that
    sleeps, spins, or resumes slowly does not delay other connections; a
    route flagged TURBO_BLOCKING runs off the loop from its first call; at
    the bound of spare threads requests queue and are all served;
    pipelined answers keep their order; shutdown waits for a lent handler."""
    failures = []
    srv = Server(binary, {"TURBO_THREADS": "1", "TURBO_BLOCKING_THREADS": "4"})
    try:
        quick_while(srv, b"/sleep/2000", "sleeping handler", failures)
        quick_while(srv, b"/spin/1500", "spinning handler", failures)
        quick_while(srv, b"/blocking/1500", "TURBO_BLOCKING route", failures)
        quick_while(srv, b"/slow-resume", "blocking resume function", failures)
        with Conn(srv.port, timeout=10) as c:  # the resume arrives while its handler still runs
            c.send(b"GET /defer-sleep HTTP/1.1\r\n" + H + b"\r\n")
            r = c.read_response()
            if r.status != 200 or r.body != b'{"deferred":"early"}':
                failures.append("defer then sleep: %d %r" % (r.status, r.body))
        with Conn(srv.port, timeout=10) as c:
            c.send(b"GET /sleep/300 HTTP/1.1\r\n" + H + b"\r\nGET /query?a=2 HTTP/1.1\r\n" + H + b"\r\n")
            first, second = c.read_response(), c.read_response()
            if first.body != b"slept 300" or second.body != b'{"a":"2","b":null,"c":null}':
                failures.append("pipelined behind a blocking handler: %r then %r" % (first.body, second.body))
        conns = [slow_started(srv.port, b"/sleep/300") for _ in range(12)]  # 4 spare threads: they queue
        try:
            bodies = [c.read_response().body for c in conns]
        finally:
            for c in conns:
                c.close()
        if bodies != [b"slept 300"] * 12:
            failures.append("12 sleeping requests over 4 spare threads: %r" % bodies)
        slow = slow_started(srv.port, b"/sleep/1000")
        try:
            # its handler runs: a request still unread when the signal comes is not in flight
            wait_until(lambda: "/sleep/1000 began" in srv.stderr(), "the handler of /sleep/1000")
            srv.signal()
            r = slow.read_response()
            if r.status != 200 or r.body != b"slept 1000":
                failures.append("shutdown during a lent handler: %d %r" % (r.status, r.body))
        finally:
            slow.close()
        rc = srv.wait(10)
        if rc != 0:
            failures.append("shutdown during a lent handler: exit status %s: %s" % (rc, srv.stderr()[-400:]))
    finally:
        srv.kill()
    if "Sanitizer" in srv.stderr() or "runtime error" in srv.stderr():
        failures.append("execution model: " + srv.stderr()[-600:])
    return failures


def prometheus(text):
    """Parses Prometheus' text format (version 0.0.4) as its specification has it: a
    '# TYPE name type' before a family's samples, samples 'name{label="value",...} number',
    label values with \\ \" \n escapes. Returns {(name, frozenset(labels)): value} and
    {family: type}; raises ValueError on a line that breaks the format."""
    samples, types = {}, {}
    sample = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
    label = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            if kind not in ("counter", "gauge", "histogram", "summary", "untyped") or name in types:
                raise ValueError("bad TYPE line %r" % line)
            types[name] = kind
            continue
        if line.startswith("#") or not line:
            continue
        m = sample.match(line)
        if not m:
            raise ValueError("not a sample: %r" % line)
        name, labels, pos = m.group(1), {}, 0
        while m.group(2) and pos < len(m.group(2)):
            lm = label.match(m.group(2), pos)
            if not lm:
                raise ValueError("bad labels in %r" % line)
            labels[lm.group(1)] = lm.group(2)
            pos = lm.end()
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        if family not in types:
            raise ValueError("a sample before its TYPE: %r" % line)
        samples[(name, frozenset(labels.items()))] = float(m.group(3))
    return samples, types


def scrape(srv):
    r = get(srv, b"/metrics")
    check(r.status == 200 and r.header("Content-Type").startswith("text/plain; version=0.0.4"),
          "GET /metrics: %d %r" % (r.status, r.raw[:200]))
    return prometheus(r.body.decode())


READ_WITH_PROMETHEUS_CLIENT = """import sys
from prometheus_client.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        print(family.type, sample.name, sorted(sample.labels.items()), sample.value)
"""


def prometheus_client_reads(text):
    """What Debian's python3-prometheus-client (Prometheus' own Python client, a reader that
    is not ours) reads in the text: a sorted list of lines, or a failure."""
    r = subprocess.run(["/usr/bin/python3", "-c", READ_WITH_PROMETHEUS_CLIENT],
                       input=text.encode(), capture_output=True)
    check(r.returncode == 0, "python3-prometheus-client (apt-get install python3-prometheus-client) "
          "could not read the metrics: %s" % r.stderr.decode()[-600:])
    return sorted(r.stdout.decode().splitlines())


def requests_of(samples, method, code):
    return samples.get(("turbo_requests_total",
                        frozenset({"method": method, "code": code}.items())), 0)


def log_lines(path, n, but="/metrics", timeout=10.0):
    """The lines of the access log once n of them are not about `but` (a line is written
    after its answer, when its thread next waits: a thread that served a blocking handler
    may write after others)."""
    lines = []

    def enough():
        nonlocal lines
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        return sum(but not in line for line in lines) >= n
    wait_until(enough, "%d access log lines in %s" % (n, path), timeout)
    return lines


def observing_checks(binary):
    """TURBO_METRICS_PATH and TURBO_ACCESS_LOG: the counts equal the requests sent, of
    every kind of answer (inline, 404, deferred, handed off, streamed, a file, an engine
    error), the endpoint parses as Prometheus text, and each answer has one log line with
    its exact size; SIGUSR1 opens the log again under its name (logrotate)."""
    failures = []
    folder = tempfile.mkdtemp(prefix="turbo-log-")
    log = os.path.join(folder, "access.log")
    static = make_static_root()
    env = {"TURBO_THREADS": "1", "TURBO_BLOCKING_THREADS": "2", "TURBO_METRICS_PATH": "/metrics",
           "TURBO_ACCESS_LOG": "json", "TURBO_ACCESS_LOG_PATH": log,
           "STATIC_FILE": os.path.join(static, "small.txt")}
    srv = Server(binary, env)
    try:
        sizes, requests = [], []  # what each answer sent; what the client sent
        with Conn(srv.port, timeout=5) as c:
            for path in [b"/query?a=1", b"/later/4", b"/blocking/30", b"/stream/3", b"/file",
                         b"/nowhere", b"/query?a=2"]:
                requests.append(b"GET " + path + b" HTTP/1.1\r\nUser-Agent: a\"b\r\n" + H + b"\r\n")
                c.send(requests[-1])
                r = c.read_response()
                sizes.append((path.decode(), r.status, len(r.raw)))
            idle = Conn(srv.port, timeout=5)  # a keep-alive connection between requests
            requests.append(b"GET /query HTTP/1.1\r\n" + H + b"\r\n")
            idle.send(requests[-1])
            sizes.append(("/query", 200, len(idle.read_response().raw)))
        with Conn(srv.port, timeout=5) as bad:
            requests.append(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
            bad.send(requests[-1])
            sizes.append((None, 400, len(bad.read_response().raw)))
        first = get(srv, b"/metrics")
        requests.append(b"GET /metrics HTTP/1.1\r\n" + H + b"\r\n")
        theirs = prometheus_client_reads(first.body.decode())
        if not any(line.startswith("histogram turbo_request_duration_seconds_count [] ")
                   for line in theirs) or len(theirs) < 20:
            failures.append("python3-prometheus-client read: %s" % theirs)
        samples, types = scrape(srv)
        got = (requests_of(samples, "GET", "2xx"), requests_of(samples, "GET", "4xx"),
               requests_of(samples, "other", "4xx"))
        if got != (8, 1, 1):  # and the first scrape
            failures.append("requests_total (GET 2xx, GET 4xx, other 4xx) = %s, not (8, 1, 1)"
                            % (got,))
        count = samples.get(("turbo_request_duration_seconds_count", frozenset()))
        buckets = sorted((float(dict(k[1])["le"]), v) for k, v in samples.items()
                         if k[0] == "turbo_request_duration_seconds_bucket")
        if types.get("turbo_request_duration_seconds") != "histogram" or count != 10 or \
                buckets[-1][1] != 10 or [v for _, v in buckets] != sorted(v for _, v in buckets):
            failures.append("latency histogram: count %s, buckets %s" % (count, buckets))
        if [v for le, v in buckets if le == 0.025][0] > 9:  # /blocking/30 took 30 ms or more
            failures.append("the 30 ms answer is in a bucket under 30 ms: %s" % buckets)
        one = lambda name: samples.get((name, frozenset()))  # noqa: E731
        answered = sum(n for _, _, n in sizes) + len(first.raw)
        checks = {"turbo_deferred_total": one("turbo_deferred_total") == 1,
                  "turbo_deferred_waiting": one("turbo_deferred_waiting") == 0,
                  "turbo_handoffs_total": one("turbo_handoffs_total") >= 1,
                  "turbo_sent_bytes_total": one("turbo_sent_bytes_total") == answered,
                  "turbo_received_bytes_total": one("turbo_received_bytes_total") == sum(
                      len(x) for x in requests + [b"GET /metrics HTTP/1.1\r\n" + H + b"\r\n"])}
        for name, ok in checks.items():
            if not ok:
                failures.append("%s = %s (answers: %s)" % (name, one(name), sizes))
        # the closed connections go as the server sees their end: the idle one and the scrape's
        wait_until(lambda: [scrape(srv)[0].get((name, frozenset())) for name in
                            ("turbo_connections", "turbo_idle_connections")] == [2, 1],
                   "2 connections, 1 of them idle")
        idle.close()
        lines = [json.loads(line) for line in log_lines(log, 9)]
        seen = [(e["target"], e["status"], e["bytes"]) for e in lines if e["target"] != "/metrics"]
        if sorted(seen, key=str) != sorted(sizes, key=str):
            failures.append("log lines %s, answers %s" % (seen, sizes))
        one_line = [e for e in lines if e["target"] == "/query?a=1"][0]
        if one_line["user_agent"] != 'a"b' or one_line["remote"] != "127.0.0.1" or \
                not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", one_line["time"]):
            failures.append("log line %r" % one_line)
        os.rename(log, log + ".1")
        srv.signal(signal.SIGUSR1)
        wait_until(lambda: os.path.exists(log), "a new log file after SIGUSR1")
        get(srv, b"/query?after=rotation")
        if "/query?after=rotation" not in log_lines(log, 1)[0]:
            failures.append("after SIGUSR1: %r" % log_lines(log, 1))
    except Exception as e:  # noqa: BLE001 - reported as a failure of this group
        failures.append("observing: %s: %s" % (type(e).__name__, e))
    finally:
        problem = srv.stop()
    if problem:
        failures.append("observing: " + problem)
    failures += common_log_checks(binary) + prefork_metrics_checks(binary)
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(os.path.dirname(static), ignore_errors=True)
    return failures


def prefork_metrics_checks(binary):
    """TURBO_PROCESSES=2: the counters are in memory the processes share, so a scrape,
    whichever process takes it, counts the requests of both (fresh connections are spread
    over them by the kernel); each scrape counts itself once it is answered."""
    srv = Server(binary, {"TURBO_PROCESSES": "2", "TURBO_THREADS": "1",
                          "TURBO_METRICS_PATH": "/metrics"})
    failures = []
    try:
        for i in range(40):
            get(srv, b"/query?a=%d" % i)
        for k in range(6):
            got = requests_of(scrape(srv)[0], "GET", "2xx")
            if got != 40 + k:
                failures.append("prefork scrape %d: %s GET 2xx, not %d" % (k, got, 40 + k))
    except Exception as e:  # noqa: BLE001
        failures.append("prefork metrics: %s: %s" % (type(e).__name__, e))
    finally:
        problem = srv.stop()
    return failures + (["prefork metrics: " + problem] if problem else [])

def common_log_checks(binary):
    """TURBO_ACCESS_LOG=common: the Common Log Format on stderr, the request line quoted
    with its quotes escaped, as a JSON string is (a backslash of the target written twice)."""
    srv = Server(binary, {"TURBO_THREADS": "1", "TURBO_ACCESS_LOG": "common"})
    line = re.compile(r'127\.0\.0\.1 - - \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000\] '
                      r'"GET /query\?q=%22&b=\\\\x41 HTTP/1\.1" 200 (\d+)$', re.M)
    try:
        r = get(srv, b"/query?q=%22&b=\\x41")
        wait_until(lambda: line.search(srv.stderr()), "a Common Log Format line: " + srv.stderr()[-300:])
        size = int(line.search(srv.stderr()).group(1))
        failures = [] if size == len(r.raw) else ["common log: %d bytes, sent %d" % (size, len(r.raw))]
    except Exception as e:  # noqa: BLE001
        failures = ["common log: %s: %s" % (type(e).__name__, e)]
    finally:
        problem = srv.stop()
    return failures + (["common log: " + problem] if problem else [])


def kept_lock_checks(binary):
    """turbo_config.keep_ms (1 s in c_api_server) lets a loop keep the lock of TURBO_LOCKED
    routes through its waits, never into a resume function; a client's requests one after another take it once, not once
    each (c_api_server counts its takes); and a thread that wants it gets it once keep_ms
    has passed, with no request to wake the loop (no timer either: idle connections last
    10 minutes here, and so may a head), and with requests that keep coming."""
    srv = Server(binary, {"TURBO_THREADS": "1", "TURBO_KEEPALIVE_TIMEOUT_MS": "600000",
                          "TURBO_HEADER_TIMEOUT_MS": "600000"})
    failures = []
    try:
        # Four answers resumed together, each followed by a locked request on its connection:
        # the lock that request keeps is let go before the next resume function, which takes
        # it (the error-checking lock would abort the server, taken twice by one thread).
        conns = [Conn(srv.port, timeout=10) for _ in range(4)]
        for i, c in enumerate(conns):
            c.send(b"GET /locked/gathered/%d HTTP/1.1\r\n" % i + H + b"\r\n" +
                   b"GET /locked HTTP/1.1\r\n" + H + b"\r\n")
        for i, c in enumerate(conns):
            if json.loads(c.read_response().body) != {"deferred": str(i)} or c.read_response().status != 200:
                failures.append("kept lock: answer %d, resumed with the lock, or the request after it" % i)
            c.close()
        with Conn(srv.port, timeout=5) as c:
            takes = []
            for _ in range(20):
                c.send(b"GET /locked HTTP/1.1\r\n" + H + b"\r\n")
                takes.append(int(c.read_response().body))
            if takes[-1] - takes[0] >= 10:
                failures.append(f"kept lock: taken for each request: {takes}")
            c.send(b"GET /locked/contend HTTP/1.1\r\n" + H + b"\r\n")
            if c.read_response().body != b"started":
                failures.append("kept lock: the thread that wants it did not start")
            elif not logged(srv, "another thread took the lock", timeout=10):
                failures.append("kept lock: not let go when no request came")
            # Again, with a request every 20 ms: each wait brings one, yet the lock is let go
            # keep_ms after it was taken (a log line that never comes fails at the deadline).
            c.send(b"GET /locked/contend HTTP/1.1\r\n" + H + b"\r\n")
            started, deadline = c.read_response().body == b"started", time.monotonic() + 30
            while started and srv.stderr().count("another thread took the lock") < 2 \
                    and time.monotonic() < deadline:
                c.send(b"GET /locked HTTP/1.1\r\n" + H + b"\r\n")
                c.read_response()
                time.sleep(0.02)
            if srv.stderr().count("another thread took the lock") < 2:
                failures.append("kept lock: kept from a thread that wants it while requests kept coming")
    except Exception as e:  # noqa: BLE001
        failures.append("kept lock: %s: %s" % (type(e).__name__, e))
    finally:
        problem = srv.stop()
    return failures + (["kept lock: " + problem] if problem else [])


def slow_file_readers_checks(binary):
    """Clients that ask for a big file and read none of it hold no thread: the loop sends files
    as the client takes them. With one worker and two spare threads, six such clients and then
    a request on another connection: it is answered at once (when each file went out inside its
    handler, the third stalled the loop until the 60 s write timeout)."""
    failures = []
    top = tempfile.mkdtemp(prefix="turbo-slow-")
    with open(os.path.join(top, "huge.bin"), "wb") as f:
        f.truncate(64 << 20)  # sparse: 64 MiB of zeros, far more than the socket buffers hold
    srv = Server(binary, {"TURBO_THREADS": "1", "TURBO_BLOCKING_THREADS": "2", "STATIC_ROOT": top,
                          "TURBO_WRITE_TIMEOUT_MS": "60000"})
    slow = []
    try:
        for _ in range(6):
            c = Conn(srv.port, timeout=30, rcvbuf=4096)
            c.send(b"GET /static/huge.bin HTTP/1.1\r\n" + H + b"\r\n")
            slow.append(c)
            if b"200 OK" not in c.sock.recv(64):  # its answer has begun: the server has it
                failures.append("slow readers: no answer begun")
        with Conn(srv.port, timeout=30) as c:
            c.send(b"GET /status/204 HTTP/1.1\r\n" + H + b"\r\n")
            r = c.read_response()
            if r.status != 204:
                failures.append("slow readers: a quick request got %d" % r.status)
    except OSError as e:
        failures.append("slow readers: a quick request behind six of them: %s" % e)
    finally:
        for c in slow:
            c.close()
        problem = srv.stop()
        shutil.rmtree(top, ignore_errors=True)
    return failures + (["slow readers: " + problem] if problem else [])


def metric(srv, name):
    """A metric without labels, as srv's metrics_path (/metrics) gives it now; -1 if absent."""
    with Conn(srv.port, timeout=30) as c:
        c.send(b"GET /metrics HTTP/1.1\r\n" + H + b"\r\n")
        return prometheus(c.read_response().body.decode())[0].get((name, frozenset()), -1)


def waiting_for_threads_checks(binary):
    """More requests for a blocking route than spare threads: those over the bound wait for a
    thread without stalling the loop. With one worker and two spare threads, six gated
    requests (the last from a client that then shuts its sending side): two run, four wait (the
    gauge says so); then a seventh with a chunked body and a request pipelined behind it waits
    too; a request for a quick route and one for the health path are answered meanwhile, and the
    five still wait; once the gate opens, all seven are answered, the chunked one with its body,
    and the request behind it. Before, the third ran on the loop's thread and stalled it, and
    later the chunked one still did."""
    failures = []
    gate = os.path.join(tempfile.mkdtemp(prefix="turbo-gate-"), "open")
    srv = Server(binary, {"TURBO_THREADS": "1", "TURBO_BLOCKING_THREADS": "2", "TURBO_WAIT_TIMEOUT_MS": "600000",
                          "TURBO_METRICS_PATH": "/metrics", "TURBO_HEALTH_PATH": "/healthz"})

    def waiting():
        return metric(srv, "turbo_waiting_requests")

    gated = []
    try:
        for _ in range(6):
            gated.append(slow_started(srv.port, b"/gated?" + gate.encode()))
        gated[-1].sock.shutdown(socket.SHUT_WR)
        wait_until(lambda: waiting() == 4, "four requests never waited for a thread", timeout=30)
        chunked = Conn(srv.port, timeout=30)
        gated.append(chunked)
        chunked.send(b"POST /gated?" + gate.encode() + b" HTTP/1.1\r\n" + H +
                     b"Transfer-Encoding: chunked\r\n\r\n5\r\n body\r\n4;x=y\r\n")
        chunked.send(b" cut\r\n0\r\n\r\nGET /query?a=1 HTTP/1.1\r\n" + H + b"\r\n")
        wait_until(lambda: waiting() == 5, "the chunked request never waited for a thread", timeout=30)
        for path, status in ((b"/query?a=1", 200), (b"/healthz", 200), (b"/no/such/route", 404)):
            with Conn(srv.port, timeout=30) as c:
                c.send(b"GET " + path + b" HTTP/1.1\r\n" + H + b"\r\n")
                r = c.read_response()
                if r.status != status:
                    failures.append("waiting for threads: %r got %d" % (path, r.status))
        if waiting() != 5:
            failures.append("waiting for threads: the gated requests did not wait")
        open(gate, "w").close()
        bodies = [c.read_response().body for c in gated] + [chunked.read_response().status]
        if bodies != [b"opened"] * 6 + [b"opened body cut", 200]:
            failures.append("waiting for threads: %r" % bodies)
        if waiting() != 0:
            failures.append("waiting for threads: the gauge stays at %d" % waiting())
    except (OSError, TestFailure) as e:
        failures.append("waiting for threads: %s" % e)
    finally:
        for c in gated:
            c.close()
        problem = srv.stop()
        shutil.rmtree(os.path.dirname(gate), ignore_errors=True)
    return failures + (["waiting for threads: " + problem] if problem else [])


def wait_timeout_checks(binary):
    """A request that finds no spare thread within wait_timeout_ms gets a 503 and its
    connection is closed (the bytes behind it unread); the one that has a thread is answered
    once its handler returns. One worker, one spare thread, a 300 ms deadline: a gated GET
    runs, a second GET and a HEAD wait and get their 503s (the HEAD's without a body) while the
    gate is still shut; the access log names them. Before, they waited for ever."""
    failures = []
    top = tempfile.mkdtemp(prefix="turbo-gate-")
    gate, log = os.path.join(top, "open"), os.path.join(top, "access.log")
    srv = Server(binary, {"TURBO_THREADS": "1", "TURBO_BLOCKING_THREADS": "1", "TURBO_WAIT_TIMEOUT_MS": "300",
                          "TURBO_ACCESS_LOG": "common", "TURBO_ACCESS_LOG_PATH": log,
                          "TURBO_METRICS_PATH": "/metrics"})

    conns = []
    try:
        conns.append(slow_started(srv.port, b"/gated?" + gate.encode()))
        wait_until(lambda: metric(srv, "turbo_handoffs_total") == 1, "the first gated request never had a thread",
                   timeout=30)
        for method in (b"GET", b"HEAD"):
            c = Conn(srv.port, timeout=30)
            c.send(method + b" /gated?" + gate.encode() + b" HTTP/1.1\r\n" + H + b"\r\nGET /query HTTP/1.1\r\n" +
                   H + b"\r\n")
            conns.append(c)
        for c, method in zip(conns[1:], ("GET", "HEAD")):
            r = c.read_response(method)
            if r.status != 503 or r.header("connection") != "close" or (method == "HEAD" and r.body):
                failures.append("wait timeout: %s got %d %r %r" % (method, r.status, r.headers, r.body))
            problem = c.wait_closed(timeout=30)
            if problem:
                failures.append("wait timeout: %s: %s" % (method, problem))
        open(gate, "w").close()
        r = conns[0].read_response()
        if (r.status, r.body) != (200, b"opened"):
            failures.append("wait timeout: the running request got %d %r" % (r.status, r.body))
    except (OSError, TestFailure) as e:
        failures.append("wait timeout: %s" % e)
    finally:
        for c in conns:
            c.close()
        problem = srv.stop()
    with open(log) as f:
        lines = [line for line in f if " 503 " in line]
    if sorted(line.split('"')[1].split()[0] for line in lines) != ["GET", "HEAD"]:
        failures.append("wait timeout: the access log's 503s: %r" % lines)
    shutil.rmtree(top, ignore_errors=True)
    return failures + (["wait timeout: " + problem] if problem else [])


def odd_mtimes_checks(binary):
    """Files whose mtime has no 4-digit year (tmpfs keeps any): served without a Last-Modified,
    which could be no HTTP date. Before, the year before 1 wrote past a stack buffer, and one
    past 9999 gave a malformed date."""
    failures = []
    root = tempfile.mkdtemp(prefix="turbo-mtimes-", dir="/dev/shm")
    times = {"bc.txt": -62200000000, "far.txt": 253402300800 + 86400 * 400, "farther.txt": 1 << 62}
    for name, mtime in times.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(SMALL)
        os.utime(os.path.join(root, name), (0, mtime))
    srv = Server(binary, {"STATIC_ROOT": root})
    try:
        for name in times:
            r = fetch(srv, b"/static/" + name.encode())
            if (r.status, r.body, r.header("Last-Modified"), bool(r.header("ETag"))) != (200, SMALL, None, True):
                failures.append("odd mtimes: %s: %r" % (name, r.raw[:300]))
    except (OSError, TestFailure) as e:
        failures.append("odd mtimes: %s" % e)
    finally:
        problem = srv.stop()
        shutil.rmtree(root, ignore_errors=True)
    return failures + (["odd mtimes: " + problem] if problem else [])


def static_at_the_root_checks(binary):
    """turbo_static mounted at "/": a folder asked for as //sub (or ///sub?v) is sent to /sub/
    with one leading slash. Before, Location was //sub/, which a browser takes for the host
    "sub" (an open redirect)."""
    failures = []
    static = make_static_root()
    srv = Server(binary, {"STATIC_ROOT": static, "STATIC_PREFIX": "/"})
    try:
        for path, to in ((b"/sub", "/sub/"), (b"//sub", "/sub/"), (b"///sub?v=1", "/sub/?v=1")):
            r = fetch(srv, path)
            if (r.status, r.header("Location")) != (301, to):
                failures.append("static at the root: %r: %r" % (path, r.raw[:300]))
        if fetch(srv, b"/sub/").body != b"<p>index</p>":
            failures.append("static at the root: no index")
    except (OSError, TestFailure) as e:
        failures.append("static at the root: %s" % e)
    finally:
        problem = srv.stop()
        shutil.rmtree(os.path.dirname(static), ignore_errors=True)
    return failures + (["static at the root: " + problem] if problem else [])


def main(argv):
    """argv: BINARY [NATIVE_SERVER] [-k WORD...]: with -k, only the tests and check
    groups whose name has one of the words."""
    words = argv[argv.index("-k") + 1:] if "-k" in argv else []
    argv = argv[:argv.index("-k")] if "-k" in argv else argv
    chosen = lambda name: not words or any(w in name for w in words)  # noqa: E731
    passed = failed = 0
    static = make_static_root()
    srv = Server(argv[1], {"TURBO_THREADS": "2", "STATIC_ROOT": static,
                           "STATIC_FILE": os.path.join(static, "small.txt")})
    try:
        for fn in [f for f in TESTS if chosen(f.__name__)]:
            try:
                fn(srv)
                passed += 1
            except Exception as e:  # one failing test must not hide the rest
                failed += 1
                print("FAIL %s: %s" % (fn.__name__, e))
    finally:
        problem = srv.stop()
    if problem:
        failed += 1
        print("FAIL server exit: %s" % problem)
    else:
        passed += 1
    for group in [g for g in (deferred_shutdown_checks, execution_model_checks,
                              observing_checks, kept_lock_checks, slow_file_readers_checks,
                              waiting_for_threads_checks, wait_timeout_checks, static_at_the_root_checks,
                              odd_mtimes_checks)
                  if chosen(g.__name__)]:
        extra = group(argv[1])
        failed += len(extra)
        passed += 0 if extra else 1
        for f in extra:
            print("FAIL " + f)
    native = len(argv) > 2 and chosen("native_checks")
    for f in native_checks(argv[2]) if native else []:
        failed += 1
        print("FAIL " + f)
    if native:
        passed += 1
    shutil.rmtree(os.path.dirname(static), ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
