"""WebSockets (RFC 6455) over real sockets, against tests/ws_server.c: the
opening handshake and the upgrades turbo refuses, echo at every boundary of
the length encoding, fragments with pings between them, the closing
handshake from either side, hostile frames each closed with the code the RFC
gives, a producer thread held back by a slow reader (the server's memory
stays bounded), idle pings, shutdown, and two independent clients
(python3-websockets for /usr/bin/python3, Node's ws from tests/browser).
on_close is checked through the server's /counts: once per connection, with
the code it should get.

Usage: python3 tests/test_websocket.py build/ws_server-asan [-k WORD...]
"""
import base64
import contextlib
import hashlib
import itertools
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import namedtuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Conn, Server, TestFailure, check, exit_problem, sanitizer_excerpt, short,  # noqa: E402
                     wait_until)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CONT, TEXT, BIN, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MIB = 1 << 20
# ASan holds freed blocks in a quarantine of 256 MiB, which would count as
# growth in the slow reader's memory bound: 16 MiB is still a wide window.
SERVER_ENV = {"TURBO_THREADS": "2",
              "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=16"}
BINARY = None  # the server under test, from argv
TESTS = []
ids = itertools.count()


def test(fn):
    TESTS.append(fn)
    return fn


def new_id(name):
    """An id for /counts, unique within a server's life."""
    return "%s-%d" % (name, next(ids))


# ---------------------------------------------------------------- frames

Frame = namedtuple("Frame", "fin opcode payload")


def accept_of(key):
    return base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()


def masked(data, key):
    if not data:
        return b""
    pad = (key * (len(data) // 4 + 1))[:len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(pad, "big")).to_bytes(len(data), "big")


def frame(opcode, payload=b"", fin=True, mask=True, rsv=0, length=None):
    """A client frame; length, if given, is announced instead of the payload's."""
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + masked(payload, key)


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


def parse_frame(buf):
    """(Frame, bytes used) from the start of buf, or None when more are
    needed; a frame a server must not send is a failure."""
    if len(buf) < 2:
        return None
    b0, b1 = buf[0], buf[1]
    check(not b1 & 0x80, "the server masked a frame: " + short(buf[:16]))
    check(not b0 & 0x70, "the server set RSV bits: " + short(buf[:16]))
    opcode, n, pos = b0 & 0xF, b1 & 0x7F, 2
    check(opcode in (CONT, TEXT, BIN, CLOSE, PING, PONG), "the server sent opcode %d" % opcode)
    if n == 126:
        if len(buf) < 4:
            return None
        n, pos = struct.unpack_from("!H", buf, 2)[0], 4
        check(n >= 126, "a length of %d in 16 bits (the shortest form is a must)" % n)
    elif n == 127:
        if len(buf) < 10:
            return None
        n, pos = struct.unpack_from("!Q", buf, 2)[0], 10
        check(1 << 16 <= n < 1 << 63, "a length of %d in 64 bits" % n)
    if opcode >= CLOSE:
        check(b0 & 0x80 and n <= 125, "a control frame fragmented or of %d bytes" % n)
    if len(buf) < pos + n:
        return None
    return Frame(bool(b0 & 0x80), opcode, bytes(buf[pos:pos + n])), pos + n


def upgrade_request(path, key, extra=b"", version=b"1.1"):
    return (b"GET " + path.encode() + b" HTTP/" + version + b"\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n" +
            extra + b"\r\n")


class WS:
    """A raw client: the handshake, then frames both ways."""

    def __init__(self, port, path="/echo", extra=b"", rcvbuf=None, timeout=5.0, then=b""):
        self.conn = Conn(port, timeout=timeout, rcvbuf=rcvbuf)
        self.key = base64.b64encode(os.urandom(16))
        self.conn.send(upgrade_request(path, self.key, extra) + then)  # then: in the same segment
        r = self.response = self.conn.read_response()
        check(r.status == 101, "%s: %d %r instead of 101" % (path, r.status, r.body[:100]))
        check(r.header("Sec-WebSocket-Accept") == accept_of(self.key),
              "%s: Sec-WebSocket-Accept %r, want %r" % (path, r.header("Sec-WebSocket-Accept"),
                                                         accept_of(self.key)))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.conn.close()

    def send(self, data):
        self.conn.send(data)

    def send_frame(self, opcode, payload=b"", **kw):
        self.conn.send(frame(opcode, payload, **kw))

    def recv_frame(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.conn.timeout)
        while True:
            got = parse_frame(self.conn.buf)
            if got:
                f, used = got
                del self.conn.buf[:used]
                return f
            if self.conn.eof:
                raise TestFailure("connection %s before a whole frame%s" % (
                    "reset" if self.conn.reset else "closed",
                    " (got %s)" % short(self.conn.buf) if self.conn.buf else ""))
            if not self.conn._fill(deadline):
                raise TestFailure("no frame within %.1fs%s" % (
                    timeout or self.conn.timeout,
                    " (partial: %s)" % short(self.conn.buf) if self.conn.buf else ""))

    def recv_message(self, timeout=None):
        """(opcode, payload) of the next message, whose fragments it joins;
        no control frame may come first or in between."""
        f = self.recv_frame(timeout)
        check(f.opcode in (TEXT, BIN), "frame %d %s instead of a message" % (f.opcode, short(f.payload)))
        opcode, parts = f.opcode, [f.payload]
        while not f.fin:
            f = self.recv_frame(timeout)
            check(f.opcode == CONT, "frame %d inside a fragmented message" % f.opcode)
            parts.append(f.payload)
        return opcode, b"".join(parts)

    def expect_echo(self, opcode, payload, timeout=None):
        got_op, got = self.recv_message(timeout)
        check(got_op == opcode and got == payload, "sent %d %s, got back %d %s" % (
            opcode, short(payload, 40), got_op, short(got, 40)))

    def echo(self, opcode, payload):
        self.send_frame(opcode, payload)
        self.expect_echo(opcode, payload)

    def expect_close(self, code, timeout=None):
        """The next frame is a close with code (None: without a code), then
        TCP closes. Returns the reason."""
        f = self.recv_frame(timeout)
        check(f.opcode == CLOSE, "frame %d %s instead of a close %s" % (f.opcode, short(f.payload, 40), code))
        got, reason = close_code(f.payload)
        check(got == code, "closed with %s %r, want %s" % (got, reason, code))
        self.expect_tcp_close()
        return reason

    def expect_tcp_close(self, timeout=3.0):
        check(self.conn.closed_within(timeout) is not None, "TCP still open %.0fs after the close" % timeout)
        check(not self.conn.buf, "bytes after the close: " + short(self.conn.buf))


def close_code(payload):
    """(code or None, reason) of a close frame the server sent."""
    check(len(payload) != 1, "a close frame of one byte")
    if not payload:
        return None, ""
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise TestFailure("close reason is not UTF-8: " + short(payload))
    return struct.unpack("!H", payload[:2])[0], reason


# ---------------------------------------------------------------- the server's side

def http_get(port, path):
    with Conn(port, timeout=5) as c:
        c.send(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        return c.read_response()


def counts(port, ident=None):
    r = http_get(port, "/counts" + ("?id=" + ident if ident else ""))
    check(r.status == 200, "/counts: %d" % r.status)
    return json.loads(r.body)


def expect_on_close(port, ident, code, timeout=5.0):
    """The WebSocket of ident was opened once and on_close told code, once."""
    wait_until(lambda: counts(port, ident)["closes"] > 0, "%s: no on_close within %.0fs" % (ident, timeout),
               timeout)
    c = counts(port, ident)
    check(c["opens"] == 1 and c["codes"] == [code], "%s: %d on_open, on_close codes %s, want one %d" % (
        ident, c["opens"], c["codes"], code))


def echo_still_works(port):
    with WS(port) as ws:
        ws.echo(TEXT, b"still here")


@contextlib.contextmanager
def server(env=None):
    """A server of the test's own; its exit after SIGTERM is checked too."""
    srv = Server(BINARY, dict(SERVER_ENV, **(env or {})))
    ok = False
    try:
        yield srv
        ok = True
    finally:
        problem = srv.stop()
        if problem and ok:
            raise TestFailure("server exit: " + problem)
        if problem:
            print("  (and the server's exit: %s)" % problem)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int([line for line in f if line.startswith("VmRSS")][0].split()[1])


# ---------------------------------------------------------------- handshake

@test
def test_the_rfc_example_key_gets_the_rfc_accept_value(srv):
    with Conn(srv.port) as c:
        c.send(upgrade_request("/echo", b"dGhlIHNhbXBsZSBub25jZQ=="))
        r = c.read_response()
        check(r.status == 101, "status %d" % r.status)
        check(r.header("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
              "Sec-WebSocket-Accept %r" % r.header("Sec-WebSocket-Accept"))


@test
def test_an_upgrade_is_101_with_the_accept_key_and_no_body(srv):
    # a client may offer permessage-deflate: turbo has none, so says nothing of it
    offer = b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    with WS(srv.port, extra=offer) as ws:
        r = ws.response
        check(r.tokens("Upgrade") == ["websocket"], "Upgrade: %r" % r.header("Upgrade"))
        check("upgrade" in r.tokens("Connection"), "Connection: %r" % r.header("Connection"))
        for name in ("Content-Length", "Transfer-Encoding", "Sec-WebSocket-Protocol",
                     "Sec-WebSocket-Extensions"):
            check(r.header(name) is None, "101 with %s: %s" % (name, r.header(name)))
        check(not ws.conn.buf, "bytes after the 101: " + short(ws.conn.buf))
        ws.echo(TEXT, b"hello")


@test
def test_upgrade_headers_are_case_insensitive_and_connection_may_list_more(srv):
    key = base64.b64encode(os.urandom(16))
    with Conn(srv.port) as c:  # as Firefox sends them
        c.send(b"GET /echo HTTP/1.1\r\nhost: x\r\nupgrade: WebSocket\r\nconnection: keep-alive, Upgrade\r\n"
               b"sec-websocket-key: " + key + b"\r\nsec-websocket-version: 13\r\n\r\n")
        r = c.read_response()
        check(r.status == 101 and r.header("Sec-WebSocket-Accept") == accept_of(key),
              "%d %r" % (r.status, r.headers))


@test
def test_the_subprotocol_chat_is_chosen_only_when_offered(srv):
    with WS(srv.port, extra=b"Sec-WebSocket-Protocol: superchat, chat\r\n") as ws:
        check(ws.response.header("Sec-WebSocket-Protocol") == "chat",
              "chose %r" % ws.response.header("Sec-WebSocket-Protocol"))
        ws.echo(TEXT, b"chat")
    with WS(srv.port, extra=b"Sec-WebSocket-Protocol: superchat\r\n") as ws:
        check(ws.response.header("Sec-WebSocket-Protocol") is None,
              "chose %r, none offered was known" % ws.response.header("Sec-WebSocket-Protocol"))


def key_of(n):
    return base64.b64encode(b"k" * n)


GOOD = {"method": b"GET", "version": b"HTTP/1.1", "Upgrade": b"websocket", "Connection": b"Upgrade",
        "Sec-WebSocket-Key": key_of(16), "Sec-WebSocket-Version": b"13"}
BAD_UPGRADES = [  # (what, changes to GOOD: None drops the header, statuses allowed)
    ("no key", {"Sec-WebSocket-Key": None}, (400,)),
    ("a key of 15 bytes", {"Sec-WebSocket-Key": key_of(15)}, (400,)),
    ("a key of 17 bytes", {"Sec-WebSocket-Key": key_of(17)}, (400,)),
    ("a key of 24 characters that is not base64", {"Sec-WebSocket-Key": b"!" * 22 + b"=="}, (400,)),
    ("version 8", {"Sec-WebSocket-Version": b"8"}, (426,)),
    ("version 14", {"Sec-WebSocket-Version": b"14"}, (426,)),
    ("no version", {"Sec-WebSocket-Version": None}, (400, 426)),
    ("POST", {"method": b"POST"}, (400,)),
    ("no Upgrade", {"Upgrade": None}, (400,)),
    ("Upgrade: h2c", {"Upgrade": b"h2c"}, (400,)),
    ("no Connection", {"Connection": None}, (400,)),
    ("Connection: keep-alive", {"Connection": b"keep-alive"}, (400,)),
]


def upgrade_with(changes):
    fields = dict(GOOD, **changes)
    head = fields.pop("method") + b" /echo " + fields.pop("version") + b"\r\nHost: x\r\n"
    for name, value in fields.items():
        if value is not None:
            head += name.encode() + b": " + value + b"\r\n"
    if changes.get("method") == b"POST":
        head += b"Content-Length: 0\r\n"
    return head + b"\r\n"


@test
def test_bad_upgrades_are_400_or_426_and_the_connection_goes_on(srv):
    failures = []
    for what, changes, statuses in BAD_UPGRADES:
        with Conn(srv.port) as c:
            try:
                c.send(upgrade_with(changes))
                r = c.read_response()
                if r.status not in statuses:
                    failures.append("%s: %d, want %s" % (what, r.status, statuses))
                elif r.status == 426 and r.header("Sec-WebSocket-Version") != "13":
                    failures.append("%s: 426 with Sec-WebSocket-Version %r" % (
                        what, r.header("Sec-WebSocket-Version")))
                elif r.header("Sec-WebSocket-Accept") or r.header("Upgrade"):
                    failures.append("%s: a refusal with %r" % (what, r.headers))
                else:
                    c.send(b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
                    after = c.read_response()
                    if after.body != b"plain":
                        failures.append("%s: then /plain answered %d %r" % (what, after.status, after.body))
            except TestFailure as e:
                failures.append("%s: %s" % (what, e))
    check(not failures, "; ".join(failures))


def ws_over(conn):
    """A WS over a connection whose 101 the test read itself."""
    ws = WS.__new__(WS)
    ws.conn = conn
    return ws


@test
def test_an_upgrade_after_a_request_on_the_same_connection(srv):
    key = base64.b64encode(os.urandom(16))
    with Conn(srv.port) as c:
        c.send(b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n" + upgrade_request("/echo", key))
        first, second = c.read_response(), c.read_response()
        check(first.body == b"plain", "/plain: %d %r" % (first.status, first.body))
        check(second.status == 101 and second.header("Sec-WebSocket-Accept") == accept_of(key),
              "then the upgrade: %d %r" % (second.status, second.headers))
        ws_over(c).echo(TEXT, b"upgraded second")


@test
def test_a_route_that_does_not_upgrade_stays_http(srv):
    with Conn(srv.port) as c:
        c.send(upgrade_request("/plain", base64.b64encode(os.urandom(16))))
        r = c.read_response()
        check(r.status == 200 and r.body == b"plain", "/plain asked to upgrade: %d %r" % (r.status, r.body))
        c.send(b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
        check(c.read_response().body == b"plain", "the connection went on as something else")


@test
def test_the_body_of_an_upgrade_request_is_never_read_as_frames(srv):
    key = base64.b64encode(os.urandom(16))
    with Conn(srv.port) as c:
        body = frame(CLOSE, close_payload(4321))  # a close if read as a frame
        c.send(upgrade_request("/echo", key, b"Content-Length: %d\r\n" % len(body)) + body +
               frame(TEXT, b"after"))
        r = c.read_response()
        check(r.status in (101, 400), "status %d" % r.status)
        if r.status == 101:
            ws_over(c).expect_echo(TEXT, b"after")


@test
def test_an_http_1_0_upgrade_is_400_and_closed(srv):
    with Conn(srv.port) as c:
        c.send(upgrade_request("/echo", key_of(16), version=b"1.0"))
        r = c.read_response()
        check(r.status == 400, "status %d" % r.status)
        problem = c.wait_closed()
        check(problem is None, problem)


@test
def test_bytes_after_the_upgrade_request_are_frames_never_a_second_request(srv):
    ident = new_id("pipelined")
    # 'G' read as a frame's first byte is FIN 0, RSV1 and opcode 7: a protocol error
    with WS(srv.port, "/echo?id=" + ident, then=b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n") as ws:
        check(b"HTTP/1.1" not in ws.conn.buf, "an HTTP answer after the 101: " + short(ws.conn.buf))
        ws.expect_close(1002)
    expect_on_close(srv.port, ident, 1002)


# ---------------------------------------------------------------- messages

@test
def test_text_and_binary_are_echoed_with_their_type(srv):
    with WS(srv.port) as ws:
        ws.echo(TEXT, "h\u00e9llo \u2713 \U0001F600".encode())
        ws.echo(BIN, bytes(range(256)))
        ws.echo(BIN, b"\xff\xfe not UTF-8, and binary need not be")


@test
def test_empty_messages_are_echoed(srv):
    with WS(srv.port) as ws:
        ws.echo(TEXT, b"")
        ws.echo(BIN, b"")


@test
def test_lengths_at_the_boundaries_of_the_length_encoding(srv):
    with WS(srv.port) as ws:
        for n in (125, 126, 127, 65535, 65536, 65537):
            ws.echo(BIN, bytes(i * 7 & 255 for i in range(n)))
            ws.echo(TEXT, b"t" * n)


@test
def test_a_message_of_ws_max_message_is_echoed(srv):
    with WS(srv.port, timeout=10) as ws:
        ws.echo(BIN, os.urandom(MIB))
        ws.echo(TEXT, "\u00e9".encode() * (MIB // 2))


@test
def test_a_message_one_byte_over_the_limit_is_closed_1009_from_its_header(srv):
    ident = new_id("over")
    with WS(srv.port, "/echo?id=" + ident) as ws:
        ws.send(frame(BIN, length=MIB + 1))  # the header alone: the payload never comes
        ws.expect_close(1009)
    expect_on_close(srv.port, ident, 1009)


@test
def test_many_messages_in_one_segment_come_back_in_order(srv):
    with WS(srv.port) as ws:
        ws.send(b"".join(frame(TEXT, b"message %d" % i) for i in range(100)))
        for i in range(100):
            ws.expect_echo(TEXT, b"message %d" % i)


@test
def test_fragments_are_joined_and_pings_between_them_answered_at_once(srv):
    with WS(srv.port) as ws:
        pieces = [b"frag", b"", b"mented ", b"te", b"xt"] + [b"%d," % i for i in range(20)]
        for i, piece in enumerate(pieces):
            ws.send_frame(TEXT if i == 0 else CONT, piece, fin=False)
            ws.send_frame(PING, b"between %d" % i)
            f = ws.recv_frame()
            check(f.opcode == PONG and f.payload == b"between %d" % i,
                  "after fragment %d: frame %d %s, want its pong" % (i, f.opcode, short(f.payload)))
        ws.send_frame(CONT, b"end")
        ws.expect_echo(TEXT, b"".join(pieces) + b"end")


@test
def test_binary_fragments_and_empty_continuations_are_joined(srv):
    with WS(srv.port) as ws:
        ws.send(frame(BIN, b"\x00", fin=False) + frame(CONT, b"", fin=False) +
                frame(CONT, b"\x01" * 70000, fin=False) + frame(CONT, b""))
        ws.expect_echo(BIN, b"\x00" + b"\x01" * 70000)


@test
def test_a_code_point_split_across_fragments_is_valid(srv):
    smile = "\U0001F600".encode()  # F0 9F 98 80
    with WS(srv.port) as ws:
        ws.send(frame(TEXT, b"a" + smile[:1], fin=False) + frame(CONT, smile[1:2], fin=False) +
                frame(CONT, smile[2:] + b"b"))
        ws.expect_echo(TEXT, b"a" + smile + b"b")
        ws.send(b"".join(frame(TEXT if i == 0 else CONT, smile[i:i + 1], fin=i == 3) for i in range(4)))
        ws.expect_echo(TEXT, smile)


@test
def test_a_ping_is_answered_with_a_pong_of_its_payload(srv):
    with WS(srv.port) as ws:
        for payload in (b"", b"abc", bytes(range(125))):
            ws.send_frame(PING, payload)
            f = ws.recv_frame()
            check(f.opcode == PONG and f.payload == payload, "ping %s: frame %d %s" % (
                short(payload, 20), f.opcode, short(f.payload, 20)))


@test
def test_an_unsolicited_pong_is_ignored(srv):
    with WS(srv.port) as ws:
        ws.send_frame(PONG, b"nobody asked")
        ws.echo(TEXT, b"next")  # its echo is the next frame: nothing answered the pong


# ---------------------------------------------------------------- closing

@test
def test_a_client_close_is_echoed_then_tcp_closes(srv):
    ident = new_id("client-close")
    with WS(srv.port, "/echo?id=" + ident) as ws:
        ws.echo(TEXT, b"before")
        ws.send_frame(CLOSE, close_payload(1000, b"done"))
        ws.expect_close(1000)
    expect_on_close(srv.port, ident, 1000)


@test
def test_a_close_without_a_code_is_answered_and_reported_1005(srv):
    ident = new_id("close-empty")
    with WS(srv.port, "/echo?id=" + ident) as ws:
        ws.send_frame(CLOSE)
        f = ws.recv_frame()
        code, _ = close_code(f.payload) if f.opcode == CLOSE else (-1, "")
        check(f.opcode == CLOSE and code in (None, 1000), "frame %d %s, want a close (empty or 1000)" % (
            f.opcode, short(f.payload)))
        ws.expect_tcp_close()
    expect_on_close(srv.port, ident, 1005)


@test
def test_valid_close_codes_are_echoed_and_reported(srv):
    for code, reason in ((1001, b""), (1003, b"why"), (1007, "r\u00e9ason".encode()), (1011, b"r" * 123),
                         (3000, b""), (4999, b"")):
        ident = new_id("close-%d" % code)
        with WS(srv.port, "/echo?id=" + ident) as ws:
            ws.send_frame(CLOSE, close_payload(code, reason))
            ws.expect_close(code)
        expect_on_close(srv.port, ident, code)


@test
def test_a_message_then_a_close_in_one_segment_are_answered_in_order(srv):
    with WS(srv.port) as ws:
        ws.send(frame(TEXT, b"last words") + frame(CLOSE, close_payload(1000)))
        ws.expect_echo(TEXT, b"last words")
        ws.expect_close(1000)


@test
def test_frames_after_the_close_are_ignored(srv):
    with WS(srv.port) as ws:
        ws.send(frame(CLOSE, close_payload(1000)) + frame(TEXT, b"too late") + frame(PING, b"too late"))
        ws.expect_close(1000)


@test
def test_a_close_inside_a_fragmented_message_is_answered(srv):
    ident = new_id("close-mid-message")
    with WS(srv.port, "/echo?id=" + ident) as ws:
        ws.send(frame(TEXT, b"never ", fin=False) + frame(CLOSE, close_payload(1000)))
        ws.expect_close(1000)
    expect_on_close(srv.port, ident, 1000)


@test
def test_a_dropped_connection_is_reported_1006(srv):
    fin, rst = new_id("dropped-fin"), new_id("dropped-rst")
    with WS(srv.port, "/echo?id=" + fin) as ws:
        ws.echo(TEXT, b"then gone")
    ws = WS(srv.port, "/echo?id=" + rst)
    ws.echo(TEXT, b"then reset")
    ws.conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ws.conn.close()
    expect_on_close(srv.port, fin, 1006)
    expect_on_close(srv.port, rst, 1006)


@test
def test_a_dropped_connection_in_the_middle_of_a_frame_is_reported_1006(srv):
    ident = new_id("dropped-mid-frame")
    with WS(srv.port, "/echo?id=" + ident) as ws:
        ws.send(frame(TEXT, b"x" * 1000)[:500])
    expect_on_close(srv.port, ident, 1006)


def unread_by_server(server_port, client_port):
    """Bytes the kernel holds for the server's end of one connection, not yet read
    (/proc/net/tcp: the socket of local port server_port, remote port client_port)."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, remote = (int(a.split(":")[1], 16) for a in fields[1:3])
            if (local, remote) == (server_port, client_port):
                return int(fields[4].split(":")[1], 16)
    return 0


@test
def test_a_paused_websocket_reads_nothing_until_resumed(srv):
    """turbo_ws_pause(ws, 1) from on_open: the client's frames stay in the kernel (its receive
    queue shows them) and no message is delivered; resumed from an HTTP handler (another
    thread's call), every message is, in order."""
    ident = new_id("paused")
    with WS(srv.port, "/paused?id=" + ident) as ws:
        wait_until(lambda: counts(srv.port, ident)["opens"] == 1, "no on_open")
        for i in range(3):
            ws.send_frame(TEXT, b"message %d" % i)
        client_port = ws.conn.sock.getsockname()[1]
        wait_until(lambda: unread_by_server(srv.port, client_port) > 0, "the paused WebSocket was read")
        check(counts(srv.port, ident)["received"] == 0, "a message was delivered while paused")
        check(http_get(srv.port, "/resume?id=" + ident).status == 200, "/resume failed")
        for i in range(3):
            ws.expect_echo(TEXT, b"message %d" % i)
        check(counts(srv.port, ident)["received"] == 3, "not every message was delivered once")


@test
def test_the_server_closes_with_its_code_and_the_client_answers(srv):
    for code in (1000, 4000):
        ident = new_id("server-close")
        with WS(srv.port, "/close/%d?id=%s" % (code, ident)) as ws:
            ws.send_frame(TEXT, b"close, please")
            f = ws.recv_frame()
            check(f.opcode == CLOSE and close_code(f.payload) == (code, "bye"),
                  "frame %d %s, want close %d bye" % (f.opcode, short(f.payload), code))
            ws.send_frame(CLOSE, close_payload(code))
            ws.expect_tcp_close()
        expect_on_close(srv.port, ident, code)


@test
def test_a_close_code_that_may_not_be_sent_goes_out_as_1000(srv):
    for code in (999, 1005, 1006, 5000):
        with WS(srv.port, "/close/%d" % code) as ws:
            ws.send_frame(TEXT, b"close, please")
            f = ws.recv_frame()
            check(f.opcode == CLOSE and close_code(f.payload) == (1000, "bye"),
                  "turbo_ws_close(%d): frame %d %s" % (code, f.opcode, short(f.payload)))


# ---------------------------------------------------------------- hostile frames

def fragments(opcode, *pieces):
    last = len(pieces) - 1
    return b"".join(frame(opcode if i == 0 else CONT, p, fin=i == last) for i, p in enumerate(pieces))


HOSTILE = [  # (what, bytes after the handshake, the close code due)
    ("an unmasked frame", frame(TEXT, b"hi", mask=False), 1002),
    ("opcode 3", frame(3, b"x"), 1002),
    ("opcode 11", frame(11, b"x"), 1002),
    ("RSV1 (no extension was agreed)", frame(TEXT, b"x", rsv=4), 1002),
    ("RSV2", frame(TEXT, b"x", rsv=2), 1002),
    ("RSV3", frame(BIN, b"x", rsv=1), 1002),
    ("RSV1 on a ping", frame(PING, b"x", rsv=4), 1002),
    ("a ping of 126 bytes", frame(PING, b"p" * 126), 1002),
    ("a close of 126 bytes", frame(CLOSE, close_payload(1000, b"r" * 124)), 1002),
    ("a fragmented ping", frame(PING, b"x", fin=False) + frame(CONT, b"y"), 1002),
    ("a continuation with no message begun", frame(CONT, b"x"), 1002),
    ("a text frame inside a fragmented message", frame(TEXT, b"a", fin=False) + frame(TEXT, b"b"), 1002),
    ("a binary frame inside a fragmented text", frame(TEXT, b"a", fin=False) + frame(BIN, b"b"), 1002),
    ("a 64-bit length with its high bit set", frame(BIN, length=1 << 63), 1002),
    ("a close of one byte", frame(CLOSE, b"\x03"), 1002),
    ("close code 0", frame(CLOSE, close_payload(0)), 1002),
    ("close code 999", frame(CLOSE, close_payload(999)), 1002),
    ("close code 1004", frame(CLOSE, close_payload(1004)), 1002),
    ("close code 1005", frame(CLOSE, close_payload(1005)), 1002),
    ("close code 1006", frame(CLOSE, close_payload(1006)), 1002),
    ("close code 1015", frame(CLOSE, close_payload(1015)), 1002),
    ("close code 1016", frame(CLOSE, close_payload(1016)), 1002),
    ("close code 2999", frame(CLOSE, close_payload(2999)), 1002),
    ("close code 5000", frame(CLOSE, close_payload(5000)), 1002),
    ("a close reason that is not UTF-8", frame(CLOSE, close_payload(1000, b"\xff")), 1007),
    ("text with a byte 0xFF", frame(TEXT, b"ab\xff"), 1007),
    ("text with an overlong '/'", frame(TEXT, b"\xc0\xaf"), 1007),
    ("text with a surrogate", frame(TEXT, b"\xed\xa0\x80"), 1007),
    ("text past U+10FFFF", frame(TEXT, b"\xf4\x90\x80\x80"), 1007),
    ("text ending inside a code point", frame(TEXT, b"abc\xe2\x82"), 1007),
    ("a code point broken across fragments", fragments(TEXT, b"ab\xe2", b"\x28\xa1"), 1007),
    ("an invalid first fragment, the rest valid", fragments(TEXT, b"\xff", b"ok"), 1007),
    ("a message ending inside a code point", fragments(TEXT, b"ok", b"\xe2\x82"), 1007),
    ("a header announcing 2 GiB", frame(BIN, length=2 << 30), 1009),
    ("fragments that add up past 1 MiB", fragments(BIN, b"f" * (MIB - 10), b"g" * 20), 1009),
]


@test
def test_hostile_frames_are_closed_with_the_rfc_code_and_the_server_goes_on(srv):
    failures = []
    for what, data, code in HOSTILE:
        ident = new_id("hostile")
        try:
            with WS(srv.port, "/echo?id=" + ident) as ws:
                ws.send(data)
                ws.expect_close(code)
            expect_on_close(srv.port, ident, code)
        except (TestFailure, OSError) as e:
            failures.append("%s: %s" % (what, e))
        try:
            echo_still_works(srv.port)
        except (TestFailure, OSError) as e:
            failures.append("after %s, a new WebSocket: %s" % (what, e))
            break
    check(not failures, "%d of %d cases: %s" % (len(failures), len(HOSTILE), "; ".join(failures)))


@test
def test_frames_fed_one_byte_at_a_time(srv):
    ident = new_id("trickle")
    with WS(srv.port, "/echo?id=" + ident) as ws:
        data = (frame(TEXT, b"hello") + frame(BIN, bytes(range(200)) * 2) +
                frame(TEXT, b"frag", fin=False) + frame(PING, b"in between") + frame(CONT, b"mented") +
                frame(CLOSE, close_payload(1000, b"bye")))
        ws.conn.send_trickle(data, 0)
        frames = []
        while not frames or frames[-1].opcode != CLOSE:
            frames.append(ws.recv_frame())
        # the pong may overtake the echo of an earlier message: a control frame may go anywhere
        pongs = [f.payload for f in frames if f.opcode == PONG]
        messages = [(f.fin, f.opcode, f.payload) for f in frames[:-1] if f.opcode != PONG]
        check(pongs == [b"in between"], "pongs %r" % pongs)
        want = [(True, TEXT, b"hello"), (True, BIN, bytes(range(200)) * 2), (True, TEXT, b"fragmented")]
        check(messages == want, "messages %r" % [(fin, op, short(p, 20)) for fin, op, p in messages])
        check(close_code(frames[-1].payload)[0] == 1000, "closed with %r" % frames[-1].payload)
        ws.expect_tcp_close()
    expect_on_close(srv.port, ident, 1000)


@test
def test_a_frame_split_at_every_byte_is_whole(srv):
    with WS(srv.port) as ws:
        for opcode, payload in ((TEXT, "\u00e9t\u00e9 ".encode() * 40), (BIN, b"\x00\x01" * 10)):
            data = frame(opcode, payload)
            for cut in range(1, len(data)):
                ws.send(data[:cut])
                ws.send(data[cut:])
                ws.expect_echo(opcode, payload)


# ---------------------------------------------------------------- a producer thread

def read_pushed(ws, n, size, rss=None):
    """The n messages of /push in order, each checked; rss(), if given, is
    sampled as they come. Returns the largest sample."""
    most = 0
    for i in range(n):
        opcode, got = ws.recv_message()
        want = i.to_bytes(4, "big") + bytes([i & 255]) * (size - 4)
        if opcode != BIN or got != want:
            raise TestFailure("message %d of %d: %d %d bytes %s" % (i, n, opcode, len(got), short(got, 20)))
        if rss and i % 16 == 0:
            most = max(most, rss())
    return most


@test
def test_push_sends_every_message_then_closes_1000(srv):
    ident = new_id("push")
    with WS(srv.port, "/push?n=50&size=1000&id=" + ident) as ws:
        read_pushed(ws, 50, 1000)
        f = ws.recv_frame()
        check(f.opcode == CLOSE and close_code(f.payload)[0] == 1000, "frame %d %s, want close 1000" % (
            f.opcode, short(f.payload)))
        ws.send_frame(CLOSE, close_payload(1000))
        ws.expect_tcp_close()
    expect_on_close(srv.port, ident, 1000)
    c = counts(srv.port, ident)
    check(c["sent"] == 50 and c["producer"] == "stopped", "producer: %r" % c)


# 64 MiB through a reader of 4 KiB windows. Under TSan too: every copy is
# instrumented there, but 64 MiB stays within a few seconds.
PUSH_N, PUSH_SIZE = 1024, 64 << 10


@test
def test_a_slow_reader_holds_the_producer_back_and_gets_every_byte(srv):
    ident = new_id("slow-reader")
    pid = srv.proc.pid
    before = rss_kib(pid)
    with WS(srv.port, "/push?n=%d&size=%d&id=%s" % (PUSH_N, PUSH_SIZE, ident), rcvbuf=4096, timeout=20) as ws:
        # Not reading yet: the producer must come to wait for on_drain.
        wait_until(lambda: counts(srv.port, ident)["waiting"] == 1,
                   "the producer never waited for on_drain: %r" % counts(srv.port, ident))
        held = counts(srv.port, ident)["sent"]
        check(held < PUSH_N // 4, "%d messages taken with no one reading" % held)
        most = max(rss_kib(pid), read_pushed(ws, PUSH_N, PUSH_SIZE, lambda: rss_kib(pid)))
        f = ws.recv_frame()
        check(f.opcode == CLOSE and close_code(f.payload)[0] == 1000, "frame %d, want close 1000" % f.opcode)
        ws.send_frame(CLOSE, close_payload(1000))
        ws.expect_tcp_close()
    grown = most - before
    check(grown < 48 * 1024, "server RSS grew by %d KiB while it pushed %d MiB" % (
        grown, PUSH_N * PUSH_SIZE >> 20))
    expect_on_close(srv.port, ident, 1000)
    c = counts(srv.port, ident)
    check(c["sent"] == PUSH_N and c["waits"] > 0 and c["producer"] == "stopped", "producer: %r" % c)


@test
def test_a_client_leaving_mid_push_stops_the_producer(srv):
    ident = new_id("left-mid-push")
    ws = WS(srv.port, "/push?n=100000&size=65536&id=" + ident, rcvbuf=4096)
    read_pushed(ws, 5, 65536)
    ws.conn.close()  # unread bytes: the kernel resets the connection
    expect_on_close(srv.port, ident, 1006)
    wait_until(lambda: counts(srv.port, ident)["producer"] == "stopped", "the producer did not stop")
    check(counts(srv.port, ident)["sent"] < 100000, "the producer sent everything")
    echo_still_works(srv.port)


def flood(srv, ws, data, most=64 * MIB):
    """Sends data again and again, never reading, until the server stops
    reading (a send blocks for 1 s), closes, or most bytes went. Returns
    how much the server's RSS grew meanwhile, in KiB."""
    pid = srv.proc.pid
    before = rss_kib(pid)
    ws.conn.sock.settimeout(1.0)
    sent = 0
    try:
        while sent < most:
            ws.conn.sock.sendall(data)
            sent += len(data)
    except (socket.timeout, ConnectionResetError, BrokenPipeError):
        pass
    return rss_kib(pid) - before


@test
def test_pings_from_a_client_that_never_reads_the_pongs_are_not_buffered_without_end(srv):
    ident = new_id("ping-flood")
    with WS(srv.port, "/echo?id=" + ident, rcvbuf=4096) as ws:
        grown = flood(srv, ws, frame(PING, b"p" * 125) * 512)
    check(grown < 48 * 1024, "server RSS grew by %d KiB for pongs no one read" % grown)
    wait_until(lambda: counts(srv.port, ident)["closes"] == 1, "no on_close: %r" % counts(srv.port, ident))
    echo_still_works(srv.port)


@test
def test_messages_from_a_client_that_never_reads_the_echoes_are_not_buffered_without_end(srv):
    ident = new_id("echo-flood")
    with WS(srv.port, "/echo?id=" + ident, rcvbuf=4096) as ws:
        grown = flood(srv, ws, frame(BIN, b"e" * 65536))
    check(grown < 48 * 1024, "server RSS grew by %d KiB for echoes no one read" % grown)
    wait_until(lambda: counts(srv.port, ident)["closes"] == 1, "no on_close: %r" % counts(srv.port, ident))
    echo_still_works(srv.port)


# ---------------------------------------------------------------- the rest on the same server

@test
def test_an_upgrade_answered_from_another_thread(srv):
    ident = new_id("deferred")
    with WS(srv.port, "/deferred?id=" + ident) as ws:
        wait_until(lambda: counts(srv.port, ident)["opens"] == 1,
                   "no on_open before the client said anything")
        ws.echo(TEXT, b"from a resumed answer")
        ws.send_frame(CLOSE, close_payload(1000))
        ws.expect_close(1000)
    expect_on_close(srv.port, ident, 1000)
    with Conn(srv.port) as c:
        c.send(b"GET /deferred HTTP/1.1\r\nHost: x\r\n\r\n")
        check(c.read_response().status == 400, "a deferred route's plain GET was not refused")


@test
def test_a_client_gone_before_its_deferred_upgrade_is_answered(srv):
    ident = new_id("deferred-gone")
    with Conn(srv.port) as c:
        c.send(upgrade_request("/deferred?ms=200&id=" + ident, base64.b64encode(os.urandom(16))))
    wait_until(lambda: counts(srv.port, ident)["gone"] == 1,
               "the resume function never heard the client left")
    c = counts(srv.port, ident)
    check(c["opens"] == 0 and c["closes"] == 0, "callbacks for a WebSocket never opened: %r" % c)


@test
def test_plain_http_is_answered_while_websockets_are_open(srv):
    sockets = [WS(srv.port) for _ in range(20)]
    try:
        with Conn(srv.port) as c:
            for _ in range(3):
                c.send(b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
                r = c.read_response()
                check(r.status == 200 and r.body == b"plain", "/plain: %d %r" % (r.status, r.body))
        for i, ws in enumerate(sockets):
            ws.echo(TEXT, b"socket %d" % i)
    finally:
        for ws in sockets:
            ws.conn.close()


def run_client(srv, argv, prefix, what):
    proc = subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    out = proc.stdout.decode("utf-8", "replace")
    check(proc.returncode == 0 and "FAIL" not in out, "%s exit %d: %s" % (what, proc.returncode, out[-3000:]))
    for name, code in (("client-close", 4001), ("server-close", 4002), ("push", 1000)):
        expect_on_close(srv.port, "%s-%s" % (prefix, name), code)


@test
def test_python_websockets_client(srv):
    probe = subprocess.run(["/usr/bin/python3", "-c", "import websockets"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL) if os.path.exists("/usr/bin/python3") else None
    check(probe is not None and probe.returncode == 0,
          "python3-websockets is not installed for /usr/bin/python3 (apt-get install python3-websockets)")
    prefix = new_id("py")
    run_client(srv, ["/usr/bin/python3", "tests/ws_client.py", str(srv.port), prefix], prefix,
               "python3-websockets")


@test
def test_node_ws_client(srv):
    check(shutil.which("node"), "node is not installed")
    check(os.path.exists(os.path.join(ROOT, "tests/browser/node_modules/ws/package.json")),
          "Node's ws is not installed (npm ci --prefix tests/browser)")
    prefix = new_id("node")
    run_client(srv, ["node", "tests/ws_client.js", str(srv.port), prefix], prefix, "node ws")


@test
def test_every_websocket_opened_was_closed_once(srv):
    # the last test on this server: every WebSocket before it is gone
    wait_until(lambda: counts(srv.port)["opens"] == counts(srv.port)["closes"],
               "on_open and on_close counts differ: %r" % counts(srv.port))
    check(counts(srv.port)["producers_running"] == 0, "producers still running: %r" % counts(srv.port))


# ---------------------------------------------------------------- servers of their own

def alone(fn):
    """A test that starts servers of its own."""
    TESTS.append(fn)
    fn.own_server = True
    return fn


@alone
def test_an_idle_client_is_pinged_and_kept_while_it_answers():
    # 1 s: a pong must come within the second after its ping, even on a loaded machine
    with server({"TURBO_WS_IDLE_TIMEOUT_MS": "1000"}) as srv:
        opened = time.monotonic()  # before the upgrade: the server's idle timer starts later
        with WS(srv.port) as ws:
            for i in range(3):
                f = ws.recv_frame(timeout=5)
                check(f.opcode == PING, "frame %d %s, want a ping" % (f.opcode, short(f.payload)))
                after = time.monotonic() - opened
                check(i > 0 or after > 0.5, "pinged %.3fs after the open" % after)
                ws.send_frame(PONG, f.payload)
            ws.echo(TEXT, b"still open after three pings")


@alone
def test_an_idle_client_that_never_answers_is_closed():
    with server({"TURBO_WS_IDLE_TIMEOUT_MS": "300"}) as srv:
        ident = new_id("silent")
        ws = WS(srv.port, "/echo?id=" + ident)
        f = ws.recv_frame(timeout=3)
        check(f.opcode == PING, "frame %d, want a ping" % f.opcode)
        check(ws.conn.closed_within(3) is not None, "a client that never answered pings still open after 3 s")
        ws.conn.close()
        wait_until(lambda: counts(srv.port, ident)["closes"] > 0, "no on_close")
        check(len(counts(srv.port, ident)["codes"]) == 1, "on_close: %r" % counts(srv.port, ident))


@alone
def test_ws_max_message_is_read_from_the_environment():
    with server({"TURBO_WS_MAX_MESSAGE": "4096"}) as srv:
        ident = new_id("max")
        with WS(srv.port, "/echo?id=" + ident) as ws:
            ws.echo(BIN, b"m" * 4096)
            ws.send(fragments(TEXT, b"a" * 4000, b"b" * 96))
            ws.expect_echo(TEXT, b"a" * 4000 + b"b" * 96)
            ws.send(frame(TEXT, b"c" * 4097))
            ws.expect_close(1009)
        expect_on_close(srv.port, ident, 1009)


@alone
def test_a_server_close_the_client_never_answers_ends_after_the_write_timeout():
    with server({"TURBO_WRITE_TIMEOUT_MS": "500"}) as srv:
        ident = new_id("unanswered-close")
        ws = WS(srv.port, "/close/4000?id=" + ident)
        ws.send_frame(TEXT, b"close, please")
        f = ws.recv_frame()
        check(f.opcode == CLOSE and close_code(f.payload)[0] == 4000, "frame %d, want close 4000" % f.opcode)
        check(ws.conn.closed_within(5) is not None, "still open 5 s after an unanswered close")
        ws.conn.close()
        wait_until(lambda: counts(srv.port, ident)["closes"] > 0, "no on_close")
        check(len(counts(srv.port, ident)["codes"]) == 1, "on_close: %r" % counts(srv.port, ident))


@alone
def test_http_timeouts_and_request_limits_do_not_close_a_websocket():
    with server({"TURBO_KEEPALIVE_TIMEOUT_MS": "200", "TURBO_HEADER_TIMEOUT_MS": "200",
                 "TURBO_BODY_TIMEOUT_MS": "200", "TURBO_MAX_REQUESTS": "2"}) as srv:
        key = base64.b64encode(os.urandom(16))
        with Conn(srv.port) as c:  # the upgrade is the last request the connection may have
            c.send(b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
            check(c.read_response().body == b"plain", "/plain")
            c.send(upgrade_request("/echo", key))
            r = c.read_response()
            check(r.status == 101 and "close" not in r.tokens("Connection"),
                  "upgrade: %d %r" % (r.status, r.headers))
            half = frame(TEXT, b"half a frame, then silence")
            c.send(half[:4])
            check(c.quiet_for(1.0), "within 1 s of silence: %s, closed: %s" % (short(c.buf), c.eof))
            c.send(half[4:])
            ws_over(c).expect_echo(TEXT, b"half a frame, then silence")


@alone
def test_ws_max_message_is_its_own_limit_not_max_body():
    with server({"TURBO_WS_MAX_MESSAGE": str(4 * MIB), "TURBO_MAX_BODY": "1000"}) as srv:
        ident = new_id("max-4mib")
        with WS(srv.port, "/echo?id=" + ident, timeout=10) as ws:
            ws.echo(BIN, os.urandom(4 * MIB))
            ws.send(frame(BIN, length=4 * MIB + 1))
            ws.expect_close(1009)
        expect_on_close(srv.port, ident, 1009)


@alone
def test_a_callback_that_blocks_holds_up_only_its_own_websocket():
    with server({"TURBO_THREADS": "1"}) as srv:  # one loop: both WebSockets on it
        with WS(srv.port, "/slow?ms=1000") as slow, WS(srv.port) as quick:
            slow.send(frame(TEXT, b"first") + frame(TEXT, b"second"))
            started = time.monotonic()
            for i in range(5):
                quick.echo(TEXT, b"quick %d" % i)
            took = time.monotonic() - started
            check(took < 0.8, "5 echoes took %.2fs behind a callback that blocks for 1 s" % took)
            slow.expect_echo(TEXT, b"first", timeout=5)
            slow.expect_echo(TEXT, b"second", timeout=5)
            check(time.monotonic() - started >= 1.9, "two blocking callbacks at once for one WebSocket")


@contextlib.contextmanager
def stopped_by_the_test(env):
    """A server the test sends SIGTERM itself (a second would end it at
    once); a failure tells what the sanitizers said meanwhile too."""
    srv = Server(BINARY, dict(SERVER_ENV, **env))
    try:
        yield srv
    except TestFailure as e:
        srv.kill()
        raise TestFailure(str(e) + ("" if "sanitizer report" in str(e) else sanitizer_excerpt(srv.stderr())))
    finally:
        srv.kill()


def exits_cleanly(srv, opened, timeout=10):
    rc = srv.wait(timeout)
    check(rc is not None, "still running %ds after SIGTERM" % timeout)
    problem = exit_problem(rc, srv.stderr())
    check(problem is None, problem)
    summary = "ws_server: %d opened, %d closed, 0 producers running" % (opened, opened)
    check(summary in srv.stderr(), "at exit: %r, want %r" % (srv.stderr()[-300:], summary))


def expect_shutdown_close(ws):
    f = ws.recv_frame()
    check(f.opcode == CLOSE and close_code(f.payload)[0] == 1001, "at shutdown: frame %d %s" % (
        f.opcode, short(f.payload)))


@alone
def test_shutdown_closes_websockets_with_1001_and_exits_0():
    with stopped_by_the_test({"TURBO_SHUTDOWN_TIMEOUT_MS": "1000"}) as srv:
        a, b, mute = WS(srv.port), WS(srv.port, "/deferred"), WS(srv.port)
        for ws in (a, b, mute):
            ws.echo(TEXT, b"open")
        srv.signal(signal.SIGTERM)
        for ws in (a, b, mute):
            expect_shutdown_close(ws)
        for ws in (a, b):  # mute never answers: the shutdown timeout ends it
            ws.send_frame(CLOSE, close_payload(1001))
            ws.expect_tcp_close()
        exits_cleanly(srv, 3)


@alone
def test_shutdown_with_a_producer_held_back_exits_0():
    with stopped_by_the_test({"TURBO_SHUTDOWN_TIMEOUT_MS": "1000", "TURBO_WRITE_TIMEOUT_MS": "1000"}) as srv:
        ident = new_id("held")
        ws = WS(srv.port, "/push?n=100000&size=65536&id=" + ident, rcvbuf=4096)  # never read
        wait_until(lambda: counts(srv.port, ident)["waiting"] == 1, "the producer never waited for on_drain")
        srv.signal(signal.SIGTERM)
        exits_cleanly(srv, 1)
        ws.conn.close()


@alone
def test_upgrades_from_handlers_that_block_at_once_then_shutdown():
    # Each handler blocks before it upgrades, so its loop goes on with another
    # thread: the six upgrades of one loop are made by six threads at once.
    with stopped_by_the_test({"TURBO_THREADS": "1"}) as srv:
        sockets = [None] * 6

        def connect(i):
            sockets[i] = WS(srv.port, "/slow?before=200")

        threads = [threading.Thread(target=connect, args=(i,)) for i in range(len(sockets))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check(all(sockets), "%d of %d upgrades failed" % (sockets.count(None), len(sockets)))
        for i, ws in enumerate(sockets):
            ws.echo(TEXT, b"socket %d" % i)
        srv.signal(signal.SIGTERM)
        for ws in sockets:
            expect_shutdown_close(ws)
            ws.send_frame(CLOSE, close_payload(1001))
        exits_cleanly(srv, len(sockets))


def main(argv):
    """argv: BINARY [-k WORD...]: with -k, only the tests whose name has one of the words."""
    global BINARY
    words = argv[argv.index("-k") + 1:] if "-k" in argv else []
    argv = argv[:argv.index("-k")] if "-k" in argv else argv
    BINARY = argv[1]
    chosen = [fn for fn in TESTS if not words or any(w in fn.__name__ for w in words)]
    passed = failed = 0
    srv = Server(BINARY, SERVER_ENV)
    try:
        for fn in chosen:
            try:
                fn() if getattr(fn, "own_server", False) else fn(srv)
                passed += 1
            except Exception as e:  # one failing test must not hide the rest
                failed += 1
                print("FAIL %s: %s: %s" % (fn.__name__, type(e).__name__, e))
    finally:
        problem = srv.stop()
    if problem:
        failed += 1
        print("FAIL server exit: %s" % problem)
    else:
        passed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
