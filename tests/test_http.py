#!/usr/bin/env python3
"""Socket-level conformance and integration tests for the turbo demo server
(examples/hello.c). Cases come from RFC 9110/9112 and issue 2, not from the
implementation.

    python3 tests/test_http.py build/hello-asan [name-substring ...]

Each group starts its own server (PORT=0, TURBO_THREADS=2 plus the group's
knobs), and ends by stopping it with SIGTERM: exit status 0 and no sanitizer
report is a test of its own. Prints one line per failure and ends with
`N passed, N failed`; exits 1 if anything failed."""

import datetime
import json
import os
import random
import re
import resource
import selectors
import signal
import socket
import subprocess
import tempfile
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (LISTEN_RE, BadResponse, Conn, Server, Skip, TestFailure, check,  # noqa: E402
                     exit_problem, ipv6_loopback_available, parse_response, process_gone, short,
                     wait_until, written)

H = b"Host: x\r\n"
HELLO = b"Hello, World!"

GROUPS = []                    # (name, env or None, [(test name, fn)])


def group(name, env):
    """Start a new group: env is a dict of knobs (a server is started for the
    group), or None (its tests get the binary path and start their own)."""
    GROUPS.append((name, env, []))


def test(fn):
    GROUPS[-1][2].append((fn.__name__, fn))
    return fn


def add(name, fn):
    GROUPS[-1][2].append((name, fn))


# ---------------------------------------------------------------- checks

IMF_RE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
                    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
                    r"\d{2}:\d{2}:\d{2} GMT$")


def check_date(resp):
    """RFC 9110 §6.6.1: an origin server with a clock MUST send Date; §5.6.7:
    it MUST be IMF-fixdate."""
    date = resp.header("date")
    check(date is not None, "no Date header")
    check(len(resp.all("date")) == 1, "%d Date headers" % len(resp.all("date")))
    check(IMF_RE.match(date), "Date %r is not IMF-fixdate (RFC 9110 §5.6.7)" % date)
    when = datetime.datetime.strptime(date, "%a, %d %b %Y %H:%M:%S GMT")
    check(when.strftime("%a") == date[:3], "Date %r names the wrong weekday" % date)
    skew = when.replace(tzinfo=datetime.timezone.utc).timestamp() - time.time()
    check(abs(skew) <= 3, "Date %r is %.0fs off the clock" % (date, skew))


def check_length_framed(resp):
    check(resp.framing == "length", "response not framed by Content-Length (framing=%s)" % resp.framing)
    check(resp.header("content-length") == str(len(resp.body)),
          "Content-Length %r but body is %d bytes" % (resp.header("content-length"), len(resp.body)))


def check_ok(resp, body=None, ctype=None):
    check(resp.version == "HTTP/1.1", "status line version %s, want HTTP/1.1" % resp.version)
    check(resp.status == 200, "status %d, want 200 (body %s)" % (resp.status, short(resp.body)))
    if body is not None:
        check(resp.body == body, "body %s, want %s" % (short(resp.body), short(body)))
    for name in ("content-length", "content-type", "date"):
        check(len(resp.all(name)) <= 1, "%d %s headers" % (len(resp.all(name)), name))
    if ctype is not None:
        got = (resp.header("content-type") or "").lower()
        check(got.startswith(ctype), "Content-Type %r, want %s" % (got, ctype))


def check_json(resp, expect):
    check_ok(resp, ctype="application/json")
    try:
        got = json.loads(resp.body.decode("utf-8"))
    except ValueError as e:
        raise TestFailure("body is not valid JSON (%s): %s" % (e, short(resp.body)))
    check(got == expect, "JSON %r, want %r" % (got, expect))


def check_error(resp, statuses):
    """An error response: the right status, a complete HTTP/1.1 message with
    Connection: close and a short text/plain body (HELPERS.md)."""
    if isinstance(statuses, int):
        statuses = (statuses,)
    check(resp.status in statuses, "status %d, want %s (body %s)"
          % (resp.status, "/".join(map(str, statuses)), short(resp.body, 60)))
    check(resp.version == "HTTP/1.1", "error status line version %s" % resp.version)
    check("close" in resp.tokens("connection"), "error response lacks Connection: close (headers %r)"
          % resp.headers)
    check_length_framed(resp)
    ctype = (resp.header("content-type") or "").lower()
    check(ctype.startswith("text/plain"), "error Content-Type %r, want text/plain" % ctype)
    check(0 < len(resp.body) <= 512, "error body should be a short reason, got %d bytes" % len(resp.body))
    if resp.status < 500:
        check_date(resp)    # RFC 9110 §6.6.1: MUST in 2xx-4xx


def closed(conn, timeout=10.0):
    problem = conn.wait_closed(timeout)
    check(problem is None, problem)


def exchange(srv, raw, method="GET", timeout=10.0):
    """Send raw on a new connection, return (first response, conn)."""
    conn = Conn(srv.port, timeout=timeout)
    conn.send(raw)
    return conn.read_response(method), conn


def expect_reject(srv, raw, statuses, timeout=10.0):
    """The request must be refused with the status and the connection closed.
    A follow-up request is pipelined behind the bad one: it must never be
    answered (RFC 9112 §9.6 / framing can no longer be trusted)."""
    conn = Conn(srv.port, timeout=timeout)
    try:
        conn.send(raw + b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    with conn:
        resp = conn.read_response()
        check_error(resp, statuses)
        closed(conn)


def reject(name, raw, statuses, why):
    """Register a test: raw must get `statuses` and a close. `why` cites the rule."""
    def fn(srv):
        try:
            expect_reject(srv, raw, statuses)
        except TestFailure as e:
            raise TestFailure("%s [%s]" % (e, why))
    add(name, fn)


def lenient(name, raw, ok_body, why, method="GET"):
    """Register a test for a MAY-level rule: the server may accept (200 with
    ok_body) or reject (400 + close); anything else fails."""
    def fn(srv):
        resp, conn = exchange(srv, raw, method)
        with conn:
            if resp.status == 200:
                check(resp.body == ok_body, "accepted, but body %s, want %s [%s]"
                      % (short(resp.body), short(ok_body), why))
            else:
                try:
                    check_error(resp, 400)
                    closed(conn)
                except TestFailure as e:
                    raise TestFailure("%s [%s]" % (e, why))
    add(name, fn)


def accept(name, raw, why, body=None, json_expect=None, method="GET"):
    """Register a test: raw is valid and must be answered 200."""
    def fn(srv):
        resp, conn = exchange(srv, raw, method)
        with conn:
            try:
                if json_expect is not None:
                    check_json(resp, json_expect)
                else:
                    check_ok(resp, body)
            except TestFailure as e:
                raise TestFailure("%s [%s]" % (e, why))
    add(name, fn)


def chunked_post(chunks, extra_headers=b"", target=b"/echo"):
    return (b"POST " + target + b" HTTP/1.1\r\n" + H + extra_headers
            + b"Transfer-Encoding: chunked\r\n\r\n" + chunks)


def cl_post(body, extra_headers=b"", target=b"/echo", version=b"HTTP/1.1"):
    return (b"POST " + target + b" " + version + b"\r\n" + H + extra_headers
            + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


# ================================================================ main group
group("main", {})


@test
def test_get_root_body_and_headers(srv):
    resp, conn = exchange(srv, b"GET / HTTP/1.1\r\n" + H + b"\r\n")
    with conn:
        check_ok(resp, HELLO, "text/plain")
        check_length_framed(resp)
        check(resp.header("content-length") == "13", "Content-Length %r" % resp.header("content-length"))
        check_date(resp)
        check("close" not in resp.tokens("connection"), "HTTP/1.1 response says Connection: close")
        check(conn.quiet_for(0.1), "extra bytes after the response: %s" % short(conn.buf))


@test
def test_get_json(srv):
    resp, conn = exchange(srv, b"GET /json HTTP/1.1\r\n" + H + b"\r\n")
    with conn:
        check_json(resp, {"message": "Hello, World!"})
        check_length_framed(resp)
        check_date(resp)


@test
def test_get_user_path_param(srv):
    resp, conn = exchange(srv, b"GET /users/42 HTTP/1.1\r\n" + H + b"\r\n")
    with conn:
        check_json(resp, {"id": "42"})


@test
def test_user_id_is_json_escaped(srv):
    """The id is client data: whatever the server does with %22 and %5C, the
    body must stay valid JSON (RFC 8259 §7)."""
    resp, conn = exchange(srv, b"GET /users/a%22b%5Cc HTTP/1.1\r\n" + H + b"\r\n")
    with conn:
        check_ok(resp, ctype="application/json")
        try:
            got = json.loads(resp.body.decode("utf-8"))
        except ValueError:
            raise TestFailure("invalid JSON for a percent-encoded id: %s" % short(resp.body))
        check(got.get("id") in ("a%22b%5Cc", 'a"b\\c'), "id %r" % got.get("id"))


@test
def test_query_string_kept_out_of_routing(srv):
    resp, conn = exchange(srv, b"GET /users/5?a=b&c=/d HTTP/1.1\r\n" + H + b"\r\n")
    with conn:
        check_json(resp, {"id": "5"})


@test
def test_query_on_static_route(srv):
    resp, conn = exchange(srv, b"GET /?x=/json HTTP/1.1\r\n" + H + b"\r\n")
    with conn:
        check_ok(resp, HELLO)


@test
def test_empty_query_on_static_route(srv):
    resp, conn = exchange(srv, b"GET /json? HTTP/1.1\r\n" + H + b"\r\n")
    with conn:
        check_json(resp, {"message": "Hello, World!"})


@test
def test_post_echo_with_content_type(srv):
    body = bytes(range(256)) * 4
    ctype = b"application/x-thing; charset=utf-8"
    resp, conn = exchange(srv, cl_post(body, b"Content-Type: " + ctype + b"\r\n"))
    with conn:
        check_ok(resp, body)
        check(resp.header("content-type") == ctype.decode(), "Content-Type %r, want %r"
              % (resp.header("content-type"), ctype.decode()))
        check_length_framed(resp)


@test
def test_header_value_ows_is_trimmed(srv):
    """RFC 9112 §5.1: OWS around a field value is not part of it."""
    resp, conn = exchange(srv, cl_post(b"hi", b"Content-Type: \t text/plain \t \r\n"))
    with conn:
        check_ok(resp, b"hi")
        check(resp.header("content-type") == "text/plain", "echoed Content-Type %r, want 'text/plain'"
              % resp.header("content-type"))


@test
def test_header_names_are_case_insensitive(srv):
    raw = (b"POST /echo HTTP/1.1\r\nhOsT: x\r\ncontent-LENGTH: 5\r\nCONTENT-TYPE: text/x\r\n\r\nhello")
    resp, conn = exchange(srv, raw)
    with conn:
        check_ok(resp, b"hello")
        check(resp.header("content-type") == "text/x", "Content-Type %r" % resp.header("content-type"))


@test
def test_post_with_content_length_zero(srv):
    resp, conn = exchange(srv, cl_post(b""))
    with conn:
        check_ok(resp, b"")
        check(resp.header("content-length") == "0", "Content-Length %r" % resp.header("content-length"))


@test
def test_post_without_length_has_empty_body(srv):
    """RFC 9112 §6.3 rule 6: a request with neither CL nor TE has no content."""
    resp, conn = exchange(srv, b"POST /echo HTTP/1.1\r\n" + H + b"\r\n")
    with conn:
        check_ok(resp, b"")


@test
def test_unknown_path_is_404(srv):
    resp, conn = exchange(srv, b"GET /nope HTTP/1.1\r\n" + H + b"\r\n")
    with conn:
        check(resp.status == 404, "status %d, want 404" % resp.status)
        check_length_framed(resp)
        check_date(resp)


@test
def test_404_keeps_connection_open(srv):
    """A routing 404 is not a protocol error; HTTP/1.1 connections persist
    (RFC 9112 §9.3)."""
    with Conn(srv.port) as conn:
        conn.send(b"GET /nope HTTP/1.1\r\n" + H + b"\r\n")
        check(conn.read_response().status == 404, "want 404")
        conn.send(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
        check_ok(conn.read_response(), HELLO)


@test
def test_users_without_id_is_404(srv):
    resp, conn = exchange(srv, b"GET /users/ HTTP/1.1\r\n" + H + b"\r\n")
    with conn:
        check(resp.status == 404, "status %d, want 404 for an empty capture" % resp.status)


@test
def test_users_extra_segment_is_404(srv):
    resp, conn = exchange(srv, b"GET /users/5/extra HTTP/1.1\r\n" + H + b"\r\n")
    with conn:
        check(resp.status == 404, "status %d, want 404" % resp.status)


def allow_of(resp):
    return set(t.upper() for t in resp.tokens("allow"))


@test
def test_wrong_method_is_405_with_allow(srv):
    """RFC 9110 §15.5.6: a 405 MUST carry Allow; HEAD is served by GET."""
    resp, conn = exchange(srv, b"DELETE / HTTP/1.1\r\n" + H + b"\r\n")
    with conn:
        check(resp.status == 405, "status %d, want 405" % resp.status)
        allow = allow_of(resp)
        check({"GET", "HEAD"} <= allow, "Allow %r should list GET and HEAD" % resp.header("allow"))
        check("DELETE" not in allow and "POST" not in allow, "Allow %r lists unsupported methods"
              % resp.header("allow"))


@test
def test_get_on_post_route_is_405_allow_post(srv):
    resp, conn = exchange(srv, b"GET /echo HTTP/1.1\r\n" + H + b"\r\n")
    with conn:
        check(resp.status == 405, "status %d, want 405" % resp.status)
        allow = allow_of(resp)
        check("POST" in allow and "GET" not in allow, "Allow %r, want POST" % resp.header("allow"))


@test
def test_head_has_get_headers_and_no_body(srv):
    """RFC 9110 §9.3.2: HEAD answers with the GET headers, no content; the
    Content-Length is what GET would send (§8.6)."""
    with Conn(srv.port) as conn:
        conn.send(b"HEAD / HTTP/1.1\r\n" + H + b"\r\n")
        resp = conn.read_response("HEAD")
        check(resp.status == 200, "status %d" % resp.status)
        check(resp.header("content-length") == "13", "HEAD Content-Length %r, want 13"
              % resp.header("content-length"))
        check((resp.header("content-type") or "").startswith("text/plain"), "HEAD Content-Type %r"
              % resp.header("content-type"))
        check_date(resp)
        check(conn.quiet_for(0.15), "HEAD response followed by body bytes: %s" % short(conn.buf))
        conn.send(b"GET /json HTTP/1.1\r\n" + H + b"\r\n")
        check_json(conn.read_response(), {"message": "Hello, World!"})


@test
def test_head_on_param_route(srv):
    with Conn(srv.port) as conn:
        conn.send(b"HEAD /users/77 HTTP/1.1\r\n" + H + b"\r\n" + b"GET /users/78 HTTP/1.1\r\n" + H + b"\r\n")
        r1 = conn.read_response("HEAD")
        check(r1.status == 200 and r1.header("content-length") == str(len(b'{"id":"77"}')),
              "HEAD /users/77: %d, Content-Length %r" % (r1.status, r1.header("content-length")))
        check_json(conn.read_response(), {"id": "78"})


@test
def test_options_answered_with_allow(srv):
    """RFC 9110 §9.3.7: a successful OPTIONS answer without content carries
    Content-Length: 0."""
    resp, conn = exchange(srv, b"OPTIONS / HTTP/1.1\r\n" + H + b"\r\n")
    with conn:
        check(resp.status == 200, "status %d, want 200" % resp.status)
        check(resp.header("content-length") == "0", "Content-Length %r, want 0" % resp.header("content-length"))
        check({"GET", "HEAD"} <= allow_of(resp), "Allow %r should list GET, HEAD" % resp.header("allow"))
        check(conn.quiet_for(0.1), "OPTIONS answer followed by bytes %s" % short(conn.buf))


@test
def test_options_on_post_route(srv):
    resp, conn = exchange(srv, b"OPTIONS /echo HTTP/1.1\r\n" + H + b"\r\n")
    with conn:
        check(resp.status == 200, "status %d" % resp.status)
        check("POST" in allow_of(resp), "Allow %r should list POST" % resp.header("allow"))


@test
def test_options_asterisk(srv):
    """RFC 9112 §3.2.4: asterisk-form is for OPTIONS, about the server itself."""
    resp, conn = exchange(srv, b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n")
    with conn:
        check(resp.status == 200 and resp.header("content-length") == "0",
              "status %d, Content-Length %r: want 200 and 0" % (resp.status, resp.header("content-length")))
        check({"GET", "HEAD", "OPTIONS", "POST"} <= allow_of(resp), "Allow %r" % resp.header("allow"))


@test
def test_unknown_method_is_501_or_405(srv):
    """RFC 9110 §9.1: an unrecognized method SHOULD get 501."""
    resp, conn = exchange(srv, b"FOOBAR / HTTP/1.1\r\n" + H + b"\r\n")
    with conn:
        check(resp.status in (501, 405), "status %d, want 501 (or 405)" % resp.status)
        if resp.status == 405:
            check(resp.header("allow") is not None, "405 without Allow")


@test
def test_lowercase_method_is_not_get(srv):
    """RFC 9110 §9.1: methods are case-sensitive, `get` is not GET."""
    resp, conn = exchange(srv, b"get / HTTP/1.1\r\n" + H + b"\r\n")
    with conn:
        check(resp.status in (405, 501), "status %d, want 405 or 501" % resp.status)


@test
def test_absolute_form_target(srv):
    resp, conn = exchange(srv, b"GET http://x/json HTTP/1.1\r\n" + H + b"\r\n")
    with conn:
        check_json(resp, {"message": "Hello, World!"})


@test
def test_absolute_form_with_query_and_param(srv):
    resp, conn = exchange(srv, b"GET http://x:8080/users/7?q=/json HTTP/1.1\r\n" + H + b"\r\n")
    with conn:
        check_json(resp, {"id": "7"})


@test
def test_absolute_form_empty_path_is_root(srv):
    """RFC 9110 §4.2.3: an empty http path is equivalent to "/"."""
    resp, conn = exchange(srv, b"GET http://x HTTP/1.1\r\n" + H + b"\r\n")
    with conn:
        check_ok(resp, HELLO)


@test
def test_absolute_form_empty_path_with_another_method_is_405(srv):
    """The root serves GET only, so its static children are searched: the
    router reads a word past a segment, and "/" is no exception (ASan)."""
    resp, conn = exchange(srv, b"POST http://x HTTP/1.1\r\n" + H + b"Content-Length: 0\r\n\r\n")
    with conn:
        check(resp.status == 405, "status %d, want 405" % resp.status)
        check("GET" in allow_of(resp), "Allow %r" % resp.header("allow"))


@test
def test_absolute_form_overrides_host(srv):
    """RFC 9112 §3.2.2: with absolute-form the server MUST ignore Host."""
    resp, conn = exchange(srv, b"GET http://a.example/json HTTP/1.1\r\nHost: b.example\r\n\r\n")
    with conn:
        check_json(resp, {"message": "Hello, World!"})


@test
def test_http12_is_served_as_http11(srv):
    """RFC 9110 §6.2: a higher minor version is HTTP/1.1-compatible."""
    resp, conn = exchange(srv, b"GET / HTTP/1.2\r\n" + H + b"\r\n")
    with conn:
        check_ok(resp, HELLO)


@test
def test_leading_empty_line_is_ignored(srv):
    """RFC 9112 §2.2: a server SHOULD ignore at least one empty line before
    the request-line."""
    resp, conn = exchange(srv, b"\r\nGET / HTTP/1.1\r\n" + H + b"\r\n")
    with conn:
        check_ok(resp, HELLO)


@test
def test_header_value_with_obs_text_accepted(srv):
    """RFC 9110 §5.5: field-vchar includes obs-text (0x80-0xFF)."""
    resp, conn = exchange(srv, b"GET / HTTP/1.1\r\n" + H + b"X-Name: caf\xc3\xa9 \xff\r\n\r\n")
    with conn:
        check_ok(resp, HELLO)


@test
def test_empty_header_value_accepted(srv):
    resp, conn = exchange(srv, b"GET / HTTP/1.1\r\n" + H + b"X-Empty:\r\nX-Colon: a:b\r\n\r\n")
    with conn:
        check_ok(resp, HELLO)


accept("test_host_ipv6_literal_with_port_accepted",
       b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", "RFC 3986 IP-literal", body=HELLO)
accept("test_host_with_empty_port_accepted",
       b"GET / HTTP/1.1\r\nHost: x:\r\n\r\n", "RFC 3986 port = *DIGIT", body=HELLO)
accept("test_host_with_underscore_accepted",
       b"GET / HTTP/1.1\r\nHost: a_b.example\r\n\r\n", "RFC 3986 reg-name allows unreserved '_'",
       body=HELLO)
accept("test_http10_without_host_accepted",
       b"GET / HTTP/1.0\r\n\r\n", "Host is required only in HTTP/1.1 (RFC 9112 §3.2)", body=HELLO)
accept("test_content_length_trailing_ows_accepted",
       b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 5 \r\n\r\nhello",
       "RFC 9112 §5.1: OWS is not part of the value", body=b"hello")
lenient("test_content_length_leading_zeros",
        b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 005\r\n\r\nhello", b"hello",
        "RFC 9110 §8.6: 1*DIGIT allows 005; it must never mean anything but 5")
lenient("test_bare_lf_line_endings",
        b"GET / HTTP/1.1\n" + H + b"X-A: b\n\n", HELLO,
        "RFC 9112 §2.2: a recipient MAY accept bare LF")
lenient("test_bare_lf_in_chunk_size_line",
        chunked_post(b"5\nhello\r\n0\r\n\r\n"), b"hello", "RFC 9112 §2.2 MAY accept LF")
lenient("test_chunk_ext_bws_before_semicolon",
        chunked_post(b"5 ;a=b\r\nhello\r\n0\r\n\r\n"), b"hello",
        "RFC 9112 §7.1.1 allows BWS before ';' (a strict 400 is tolerated)")


accept("test_absolute_form_scheme_case_insensitive",
       b"GET HTTP://x/json HTTP/1.1\r\n" + H + b"\r\n", "RFC 3986 §3.1: scheme is case-insensitive",
       json_expect={"message": "Hello, World!"})


def head_then_get(srv, target, status):
    with Conn(srv.port) as conn:
        conn.send(b"HEAD " + target + b" HTTP/1.1\r\n" + H + b"\r\n")
        r = conn.read_response("HEAD")
        check(r.status == status, "HEAD %s: status %d, want %d" % (target.decode(), r.status, status))
        if "close" in r.tokens("connection"):
            closed(conn)
            return
        check(conn.quiet_for(0.15), "HEAD %d response followed by body bytes %s (RFC 9110 §9.3.2)"
              % (status, short(conn.buf)))
        conn.send(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
        check_ok(conn.read_response(), HELLO)


@test
def test_head_404_has_no_body(srv):
    head_then_get(srv, b"/nope", 404)


@test
def test_head_405_has_no_body(srv):
    head_then_get(srv, b"/echo", 405)


@test
def test_error_response_to_head_has_no_body(srv):
    """RFC 9110 §9.3.2: no response to HEAD carries content, errors included."""
    with Conn(srv.port) as conn:
        conn.send(b"HEAD / HTTP/1.1\r\n" + H + b"Bad Header: v\r\n\r\n")
        r = conn.read_response("HEAD")
        check(r.status == 400, "status %d, want 400" % r.status)
        problem = conn.wait_closed(2.0)
        check(problem is None, "400 to HEAD: %s" % problem)


@test
def test_expect_100_with_empty_body(srv):
    """Content-Length: 0 with 100-continue: nothing to wait for."""
    with Conn(srv.port) as conn:
        conn.send(b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 0\r\nExpect: 100-continue\r\n\r\n")
        r = conn.read_response()
        if r.status == 100:
            r = conn.read_response()
        check_ok(r, b"")


@test
def test_expect_unknown_is_417_or_ignored(srv):
    """RFC 9110 §10.1.1: an unknown expectation MAY get 417."""
    resp, conn = exchange(srv, b"GET / HTTP/1.1\r\n" + H + b"Expect: fancy\r\n\r\n")
    with conn:
        check(resp.status in (200, 417), "status %d, want 417 (or 200)" % resp.status)


@test
def test_pipelined_large_bodies(srv):
    """Bodies larger than a read buffer, several in one send."""
    bodies = [os.urandom(100000 + i * 777) for i in range(8)]
    raw = b"".join(cl_post(b) if i % 2 else chunked_post(b"%x\r\n" % len(b) + b + b"\r\n0\r\n\r\n")
                   for i, b in enumerate(bodies))
    with Conn(srv.port, timeout=10) as conn:
        t = threading.Thread(target=conn.send, args=(raw,))
        t.start()
        for i, b in enumerate(bodies):
            try:
                check_ok(conn.read_response(), b)
            except TestFailure as e:
                raise TestFailure("body %d: %s" % (i, e))
        t.join(5)


@test
def test_many_tiny_chunks(srv):
    data = bytes(range(256)) * 12
    raw = chunked_post(b"".join(b"1\r\n" + data[i:i + 1] + b"\r\n" for i in range(len(data))) + b"0\r\n\r\n")
    with Conn(srv.port, timeout=5) as conn:
        conn.send(raw)
        check_ok(conn.read_response(), data)


@test
def test_empty_line_between_pipelined_requests_ignored(srv):
    """RFC 9112 §2.2: a stray CRLF after a body (old clients) SHOULD be ignored."""
    with Conn(srv.port) as conn:
        conn.send(cl_post(b"ab") + b"\r\n" + b"GET /users/6 HTTP/1.1\r\n" + H + b"\r\n")
        check_ok(conn.read_response(), b"ab")
        check_json(conn.read_response(), {"id": "6"})


reject("test_connect_method_is_rejected", b"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", (400, 405, 501),
       "RFC 9110 §9.3.6: an origin server has no tunnel")
reject("test_http2_preface_is_rejected", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", (400, 505),
       "RFC 9113 §3.4 preface to an HTTP/1.1-only server")
reject("test_absolute_form_with_userinfo_is_400", b"GET http://u@x/json HTTP/1.1\r\n" + H + b"\r\n", 400,
       "RFC 9110 §4.2.4: userinfo SHOULD be treated as an error")

@test
def test_param_route_405_allow(srv):
    resp, conn = exchange(srv, b"DELETE /users/5 HTTP/1.1\r\n" + H + b"\r\n")
    with conn:
        check(resp.status == 405, "status %d, want 405" % resp.status)
        check({"GET", "HEAD"} <= allow_of(resp), "Allow %r" % resp.header("allow"))


accept("test_absolute_form_query_without_path",
       b"GET http://x?a=b HTTP/1.1\r\n" + H + b"\r\n", "RFC 3986 path-abempty: empty path is '/'", body=HELLO)
reject("test_duplicate_cl_different_case_is_400",
       b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 5\r\ncontent-length: 5\r\n\r\nhello", 400,
       "field names are case-insensitive: still a duplicate CL")
reject("test_te_chunked_on_two_lines_is_400",
       b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n"
       b"0\r\n\r\n0\r\n\r\n", 400, "RFC 9110 §5.3 + RFC 9112 §7: 'chunked, chunked'")
reject("test_invalid_host_http10_is_400", b"GET / HTTP/1.0\r\nHost: a b\r\n\r\n", 400,
       "RFC 9112 §3.2: any request with an invalid Host value")


@test
def test_date_advances(srv):
    """The cached Date is refreshed every second."""
    with Conn(srv.port) as conn:
        conn.send(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
        d1 = conn.read_response().header("date")
        time.sleep(1.1)
        conn.send(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
        r = conn.read_response()
        check_date(r)
        check(r.header("date") != d1, "Date %r did not change after 1.1s" % d1)


@test
def test_responses_sent_after_client_half_close(srv):
    """A client may shut down its sending side after its last request; the
    requests already received are still answered."""
    with Conn(srv.port) as conn:
        conn.send(b"GET /users/1 HTTP/1.1\r\nHost: x\r\n\r\n" + b"GET /users/2 HTTP/1.1\r\nHost: x\r\n\r\n")
        conn.sock.shutdown(socket.SHUT_WR)
        check_json(conn.read_response(), {"id": "1"})
        check_json(conn.read_response(), {"id": "2"})
        closed(conn)


@test
def test_client_resets_do_not_hurt_the_server(srv):
    """Resets mid-body, mid-response and after a pipelined burst: no crash
    (SIGPIPE, use-after-free), and the server keeps serving."""
    linger0 = (1).to_bytes(4, sys.byteorder) + (0).to_bytes(4, sys.byteorder)
    big = b"x" * (1 << 20)
    payloads = [b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc",
                b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(big) + big,
                (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") * 300]
    for round_ in range(10):
        for i, data in enumerate(payloads):
            s = socket.create_connection(("127.0.0.1", srv.port))
            s.sendall(data)
            if i != 2:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger0)
            time.sleep(0.003)
            s.close()
    time.sleep(0.3)
    check(srv.alive(), "server died (status %s)" % srv.proc.returncode)
    with Conn(srv.port) as conn:
        conn.send(b"GET /json HTTP/1.1\r\n" + H + b"\r\n")
        check_json(conn.read_response(), {"message": "Hello, World!"})

@test
def test_mutated_requests_get_well_formed_answers(srv):
    """Seeded byte mutations of valid requests: every reply parses as a
    correct HTTP/1.1 response, errors close, and the server survives."""
    rng = random.Random(9112)
    seeds = [SPLIT_REQ, cl_post(b"hello", b"Content-Type: a/b\r\n"),
             b"GET /users/7?x=1 HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
             b"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"]
    special = b"\x00\r\n \t:;,\"%09afF/?#-+"
    for n in range(300):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(data))
            op = rng.randrange(4)
            if op == 0:
                data[i] = rng.randrange(256)
            elif op == 1:
                data[i:i] = bytes([rng.choice(special)])
            elif op == 2:
                del data[i]
            else:
                j = min(len(data), i + rng.randint(1, 8))
                data[i:i] = data[i:j]
        method = "HEAD" if data.startswith(b"HEAD ") else "GET"
        with Conn(srv.port, timeout=0.5) as conn:
            try:
                conn.send(bytes(data))
                conn.sock.shutdown(socket.SHUT_WR)   # EOF ends the exchange without a timeout
            except OSError:
                continue
            while True:
                try:
                    r = conn.read_response(method, timeout=0.5)
                except TestFailure:
                    break       # no (further) response: waiting for more bytes, or closed
                except BadResponse as e:
                    raise TestFailure("mutation %d %s: malformed reply: %s" % (n, short(bytes(data)), e))
                if r.status in (400, 408, 413, 414, 431, 505):
                    try:
                        check("close" in r.tokens("connection"), "error without Connection: close")
                    except TestFailure as e:
                        raise TestFailure("mutation %d %s: %s" % (n, short(bytes(data)), e))
                    break
    check(srv.alive(), "server died during mutation run (status %s)" % srv.proc.returncode)

accept("test_te_value_ows_is_trimmed",
       b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: \t chunked \t\r\n\r\n2\r\nok\r\n0\r\n\r\n",
       "RFC 9112 §5.1: OWS is not part of the value", body=b"ok")
accept("test_cl_trailing_tab_accepted",
       b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 2\t\r\n\r\nok", "RFC 9112 §5.1", body=b"ok")
accept("test_host_trailing_ows_accepted",
       b"GET / HTTP/1.1\r\nHost: x \t\r\n\r\n", "RFC 9112 §5.1", body=HELLO)
reject("test_host_non_ascii_is_400", b"GET / HTTP/1.1\r\nHost: caf\xc3\xa9.example\r\n\r\n", 400,
       "RFC 3986 reg-name is ASCII; RFC 9112 §3.2 invalid Host")


@test
def test_413_readable_while_body_still_arriving(srv):
    """A client that sends a too-large body without waiting still gets to
    read the 413 (RFC 9112 §9.6 staged close)."""
    body = b"z" * (2 << 20)
    with Conn(srv.port, timeout=5) as conn:
        def push():
            try:
                conn.send(b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: %d\r\n\r\n" % len(body) + body)
            except OSError:
                pass
        t = threading.Thread(target=push)
        t.start()
        check_error(conn.read_response(timeout=5), 413)
        t.join(5)

# ---------------------------------------------------------------- keep-alive

@test
def test_keepalive_several_requests_one_connection(srv):
    with Conn(srv.port) as conn:
        conn.send(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
        check_ok(conn.read_response(), HELLO)
        conn.send(b"GET /json HTTP/1.1\r\n" + H + b"\r\n")
        check_json(conn.read_response(), {"message": "Hello, World!"})
        conn.send(b"GET /users/9 HTTP/1.1\r\n" + H + b"\r\n")
        check_json(conn.read_response(), {"id": "9"})
        conn.send(cl_post(b"abc"))
        check_ok(conn.read_response(), b"abc")
        conn.send(b"HEAD / HTTP/1.1\r\n" + H + b"\r\n")
        check(conn.read_response("HEAD").status == 200, "HEAD failed")
        conn.send(chunked_post(b"3\r\nxyz\r\n0\r\n\r\n"))
        check_ok(conn.read_response(), b"xyz")
        conn.send(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
        check_ok(conn.read_response(), HELLO)


@test
def test_http10_closes_by_default(srv):
    resp, conn = exchange(srv, b"GET / HTTP/1.0\r\n" + H + b"\r\n")
    with conn:
        check_ok(resp, HELLO)
        check("keep-alive" not in resp.tokens("connection"), "HTTP/1.0 default response says keep-alive")
        closed(conn)


@test
def test_http10_keepalive_stays_open(srv):
    """RFC 9112 §9.3 / Appendix C.2.2: a 1.0 keep-alive request persists only
    if the response says keep-alive."""
    with Conn(srv.port) as conn:
        conn.send(b"GET / HTTP/1.0\r\n" + H + b"Connection: Keep-Alive\r\n\r\n")
        resp = conn.read_response()
        check_ok(resp, HELLO)
        check("keep-alive" in resp.tokens("connection"), "response lacks Connection: keep-alive (got %r)"
              % resp.header("connection"))
        conn.send(b"GET /json HTTP/1.0\r\n" + H + b"Connection: keep-alive\r\n\r\n")
        check_json(conn.read_response(), {"message": "Hello, World!"})
        conn.send(b"GET / HTTP/1.0\r\n" + H + b"\r\n")
        check_ok(conn.read_response(), HELLO)
        closed(conn)


@test
def test_http10_post_echo(srv):
    resp, conn = exchange(srv, cl_post(b"ten bytes!", version=b"HTTP/1.0"))
    with conn:
        check_ok(resp, b"ten bytes!")
        closed(conn)


@test
def test_connection_close_http11(srv):
    resp, conn = exchange(srv, b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
    with conn:
        check_ok(resp, HELLO)
        check("close" in resp.tokens("connection"), "response lacks Connection: close")
        closed(conn)


@test
def test_connection_close_token_in_list_case_insensitive(srv):
    """RFC 9110 §7.6.1: connection options are a case-insensitive list."""
    resp, conn = exchange(srv, b"GET / HTTP/1.1\r\n" + H + b"Connection: keep-alive, foo, CLOSE\r\n\r\n")
    with conn:
        check_ok(resp, HELLO)
        closed(conn)


@test
def test_requests_after_close_are_not_processed(srv):
    """RFC 9112 §9.6: after a close option the server MUST NOT process
    further requests on that connection."""
    raw = (b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n"
           + b"GET /json HTTP/1.1\r\n" + H + b"\r\n")
    resp, conn = exchange(srv, raw)
    with conn:
        check_ok(resp, HELLO)
        closed(conn)


# ---------------------------------------------------------------- pipelining

def pipeline_batch(n, base=100):
    reqs, expects = [], []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            reqs.append(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
            expects.append(("GET", lambda r: check_ok(r, HELLO)))
        elif kind == 1:
            reqs.append(b"GET /json HTTP/1.1\r\n" + H + b"\r\n")
            expects.append(("GET", lambda r: check_json(r, {"message": "Hello, World!"})))
        elif kind == 2:
            n_id = str(base + i)
            reqs.append(b"GET /users/" + n_id.encode() + b" HTTP/1.1\r\n" + H + b"\r\n")
            expects.append(("GET", lambda r, n_id=n_id: check_json(r, {"id": n_id})))
        else:
            body = ("body-%d" % i).encode()
            reqs.append(cl_post(body, b"Content-Type: text/x-%d\r\n" % i))
            expects.append(("GET", lambda r, body=body, i=i: (
                check_ok(r, body),
                check(r.header("content-type") == "text/x-%d" % i, "echo %d Content-Type %r"
                      % (i, r.header("content-type"))))))
    return reqs, expects


@test
def test_pipelined_16_answered_in_order(srv):
    reqs, expects = pipeline_batch(16)
    with Conn(srv.port) as conn:
        conn.send(b"".join(reqs))
        for i, (method, fn) in enumerate(expects):
            try:
                fn(conn.read_response(method))
            except TestFailure as e:
                raise TestFailure("pipelined response %d: %s" % (i, e))
        check(conn.quiet_for(0.1), "extra bytes after 16 responses: %s" % short(conn.buf))


def data_segments_in(sock):
    """tcpi_data_segs_in from Linux struct tcp_info, or None if unavailable."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    except OSError:
        return None
    return int.from_bytes(info[152:156], sys.byteorder) if len(info) >= 156 else None


@test
def test_pipelined_16_arrive_in_one_write(srv):
    """Issue 2: all responses to one read are sent in one write. Seen from the
    client: 16 requests sent in one segment are answered in one segment
    (counted with TCP_INFO data_segs_in; loopback MSS is 64 KiB)."""
    reqs, expects = pipeline_batch(16, base=300)
    with Conn(srv.port) as conn:
        conn.send(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
        check_ok(conn.read_response(), HELLO)
        before = data_segments_in(conn.sock)
        if before is None:
            raise Skip("TCP_INFO data_segs_in not available")
        conn.send(b"".join(reqs))
        for method, fn in expects:
            fn(conn.read_response(method))
        segs = data_segments_in(conn.sock) - before
        check(segs <= 2, "16 pipelined responses arrived in %d TCP segments: one write per response?" % segs)


@test
def test_pipelined_mixed_with_chunked_and_head(srv):
    raw = (b"HEAD / HTTP/1.1\r\n" + H + b"\r\n"
           + chunked_post(b"2\r\nab\r\n0\r\n\r\n")
           + b"GET /users/1 HTTP/1.1\r\n" + H + b"\r\n"
           + cl_post(b"")
           + b"GET /nope HTTP/1.1\r\n" + H + b"\r\n"
           + b"GET /users/2 HTTP/1.1\r\n" + H + b"\r\n")
    with Conn(srv.port) as conn:
        conn.send(raw)
        r = conn.read_response("HEAD")
        check(r.status == 200 and r.body == b"", "HEAD: %r" % r)
        check_ok(conn.read_response(), b"ab")
        check_json(conn.read_response(), {"id": "1"})
        check_ok(conn.read_response(), b"")
        check(conn.read_response().status == 404, "want 404")
        check_json(conn.read_response(), {"id": "2"})


@test
def test_pipelined_error_stops_the_pipeline(srv):
    """Responses before the bad request are sent in order, then 400 and close;
    nothing after it is answered."""
    raw = (b"GET /users/1 HTTP/1.1\r\n" + H + b"\r\n"
           + b"GET /users/2 HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n"
           + b"GET /users/3 HTTP/1.1\r\n" + H + b"\r\n")
    with Conn(srv.port) as conn:
        conn.send(raw)
        check_json(conn.read_response(), {"id": "1"})
        check_error(conn.read_response(), 400)
        closed(conn)


@test
def test_pipelined_2000_with_backpressure(srv):
    """Many pipelined requests while the client does not read: the server
    must apply backpressure, lose nothing and keep the order."""
    n = 2000
    raw = b"".join(b"GET /users/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(n))
    with Conn(srv.port, timeout=10) as conn:
        errors = []

        def sender():
            try:
                conn.send(raw)
            except OSError as e:
                errors.append(e)
        t = threading.Thread(target=sender)
        t.start()
        time.sleep(0.3)
        for i in range(n):
            try:
                check_json(conn.read_response(timeout=10), {"id": str(i)})
            except TestFailure as e:
                raise TestFailure("response %d: %s" % (i, e))
        t.join(5)
        check(not errors, "send failed: %s" % errors)


# ---------------------------------------------------------------- bodies

@test
def test_chunked_body_with_extensions_and_trailers(srv):
    chunks = (b"4;name=value\r\nWiki\r\n5;flag\r\npedia\r\n"
              b'E;q="quoted; str"\r\n in\r\n\r\nchunks.\r\n'
              b"0;last=1\r\nX-Trailer: one\r\nX-Other: two\r\n\r\n")
    resp, conn = exchange(srv, chunked_post(chunks, b"Content-Type: text/plain\r\n"))
    with conn:
        check_ok(resp, b"Wikipedia in\r\n\r\nchunks.")
        check(resp.header("content-type") == "text/plain", "Content-Type %r" % resp.header("content-type"))


@test
def test_chunked_hex_case_and_zero_padding(srv):
    body = b"a" * 10 + b"b" * 26
    chunks = b"A\r\n" + b"a" * 10 + b"\r\n001a\r\n" + b"b" * 26 + b"\r\n000\r\n\r\n"
    resp, conn = exchange(srv, chunked_post(chunks))
    with conn:
        check_ok(resp, body)


@test
def test_chunked_empty_body(srv):
    resp, conn = exchange(srv, chunked_post(b"0\r\n\r\n"))
    with conn:
        check_ok(resp, b"")


@test
def test_transfer_coding_name_case_insensitive(srv):
    """RFC 9112 §7: transfer-coding names are case-insensitive."""
    raw = b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: CHUNKED\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    resp, conn = exchange(srv, raw)
    with conn:
        check_ok(resp, b"abc")


@test
def test_chunked_then_pipelined_request(srv):
    raw = chunked_post(b"5\r\nhello\r\n0\r\n\r\n") + b"GET /users/3 HTTP/1.1\r\n" + H + b"\r\n"
    with Conn(srv.port) as conn:
        conn.send(raw)
        check_ok(conn.read_response(), b"hello")
        check_json(conn.read_response(), {"id": "3"})


@test
def test_get_with_body_is_consumed_not_parsed(srv):
    """RFC 9112 §6.3: the CL body of a GET is content, never a request."""
    smuggled = b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n"
    raw = (b"GET / HTTP/1.1\r\n" + H + b"Content-Length: %d\r\n\r\n" % len(smuggled) + smuggled
           + b"GET /users/1 HTTP/1.1\r\n" + H + b"\r\n")
    with Conn(srv.port) as conn:
        conn.send(raw)
        check_ok(conn.read_response(), HELLO)
        check_json(conn.read_response(), {"id": "1"})
        check(conn.quiet_for(0.15), "the body was answered as a request: %s" % short(conn.buf))


def body_not_parsed(srv, first, status):
    smuggled = b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n"
    with Conn(srv.port) as conn:
        conn.send(first(smuggled) + b"GET /users/1 HTTP/1.1\r\n" + H + b"\r\n")
        r = conn.read_response()
        check(r.status == status, "status %d, want %d" % (r.status, status))
        if "close" in r.tokens("connection"):
            closed(conn)
            return
        check_json(conn.read_response(), {"id": "1"})
        check(conn.quiet_for(0.15), "the body was answered as a request: %s" % short(conn.buf))


@test
def test_100_continue_is_not_sent_for_a_body_no_route_wants(srv):
    """RFC 9110 10.1.1: the final answer at once (404, 405), the body never asked for; the
    connection closes after it, dropping the body should it come anyway (as nginx)."""
    for target, status in ((b"/nope", 404), (b"/", 405)):
        with Conn(srv.port) as conn:
            conn.send(b"POST " + target + b" HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            r = conn.read_response()
            check(r.status == status and "close" in r.tokens("connection"),
                  "%r: %d %s" % (target, r.status, short(r.raw)))
            conn.send(b"hello")
            closed(conn)


@test
def test_404_request_body_is_not_parsed_as_request(srv):
    body_not_parsed(srv, lambda b: cl_post(b, target=b"/nope"), 404)


@test
def test_405_request_body_is_not_parsed_as_request(srv):
    body_not_parsed(srv, lambda b: cl_post(b, target=b"/"), 405)


@test
def test_501_request_body_is_not_parsed_as_request(srv):
    body_not_parsed(srv, lambda b: b"FOO /echo HTTP/1.1\r\n" + H + b"Content-Length: %d\r\n\r\n" % len(b) + b, 501)


@test
def test_405_chunked_body_is_not_parsed_as_request(srv):
    body_not_parsed(srv, lambda b: chunked_post(b"%x\r\n" % len(b) + b + b"\r\n0\r\n\r\n", target=b"/"), 405)


@test
def test_expect_100_continue_before_body(srv):
    """RFC 9110 §10.1.1: the server sends 100 before the client sends the body."""
    with Conn(srv.port) as conn:
        conn.send(b"POST /echo HTTP/1.1\r\n" + H + b"Content-Type: text/plain\r\n"
                  b"Content-Length: 11\r\nExpect: 100-continue\r\n\r\n")
        interim = conn.read_response()
        check(interim.status == 100, "first response %d, want 100 Continue before the body" % interim.status)
        check(interim.raw.startswith(b"HTTP/1.1 100"), "interim line %s" % short(interim.raw))
        check(interim.header("content-length") is None and interim.header("transfer-encoding") is None,
              "100 response with framing headers (RFC 9110 §8.6, RFC 9112 §6.1)")
        conn.send(b"hello world")
        check_ok(conn.read_response(), b"hello world")
        conn.send(b"GET /users/4 HTTP/1.1\r\n" + H + b"\r\n")
        check_json(conn.read_response(), {"id": "4"})


@test
def test_expect_100_value_case_insensitive(srv):
    with Conn(srv.port) as conn:
        conn.send(b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 2\r\nExpect: 100-Continue\r\n\r\n")
        r = conn.read_response()
        check(r.status == 100, "status %d, want 100 (Expect is case-insensitive, RFC 9110 §10.1.1)"
              % r.status)
        conn.send(b"ok")
        check_ok(conn.read_response(), b"ok")


@test
def test_expect_100_with_chunked_body(srv):
    with Conn(srv.port) as conn:
        conn.send(b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        check(conn.read_response().status == 100, "want 100 Continue")
        conn.send(b"3\r\nabc\r\n0\r\n\r\n")
        check_ok(conn.read_response(), b"abc")


@test
def test_expect_100_body_sent_without_waiting(srv):
    """A client may send the body without waiting; a 100, if any, must come
    before the final response and the body must be read exactly once."""
    with Conn(srv.port) as conn:
        conn.send(b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nExpect: 100-continue\r\n\r\nxyz"
                  + b"GET /users/8 HTTP/1.1\r\n" + H + b"\r\n")
        r = conn.read_response()
        if r.status == 100:
            r = conn.read_response()
        check_ok(r, b"xyz")
        check_json(conn.read_response(), {"id": "8"})


@test
def test_expect_100_ignored_in_http10(srv):
    """RFC 9110 §10.1.1: a 100-continue expectation in HTTP/1.0 MUST be ignored."""
    resp, conn = exchange(srv, b"POST /echo HTTP/1.0\r\n" + H + b"Content-Length: 5\r\n"
                          b"Expect: 100-continue\r\n\r\nhello")
    with conn:
        check(resp.status != 100, "sent 100 Continue to an HTTP/1.0 client")
        check_ok(resp, b"hello")


@test
def test_expect_100_too_large_is_413_without_body(srv):
    """Default limit 1 MiB: 413 comes back without the client sending a byte."""
    with Conn(srv.port) as conn:
        conn.send(b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 2000000\r\nExpect: 100-continue\r\n\r\n")
        check_error(conn.read_response(), 413)
        closed(conn)


@test
def test_expect_100_on_unrouted_path_does_not_desync(srv):
    """If the server answers 404 without 100, it must either close or read and
    discard the body the client may still send (RFC 9110 §10.1.1)."""
    smuggled = b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n"
    with Conn(srv.port) as conn:
        conn.send(b"POST /nope HTTP/1.1\r\n" + H + b"Content-Length: %d\r\n" % len(smuggled)
                  + b"Expect: 100-continue\r\n\r\n")
        r = conn.read_response()
        if r.status == 100:
            conn.send(smuggled)
            r = conn.read_response()
            check(r.status == 404, "status %d, want 404" % r.status)
        else:
            check(r.status == 404, "status %d, want 404 (or 100 first)" % r.status)
            if "close" in r.tokens("connection"):
                closed(conn)
                return
            conn.send(smuggled)
        conn.send(b"GET /users/1 HTTP/1.1\r\n" + H + b"\r\n")
        check_json(conn.read_response(), {"id": "1"})


@test
def test_default_max_body_1mib_accepted(srv):
    body = os.urandom(1 << 20)
    with Conn(srv.port, timeout=10) as conn:
        conn.send(cl_post(body))
        check_ok(conn.read_response(), body)


@test
def test_default_max_body_exceeded_is_413(srv):
    with Conn(srv.port) as conn:
        conn.send(b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: %d\r\n\r\n" % ((1 << 20) + 1))
        check_error(conn.read_response(), 413)
        closed(conn)


@test
def test_default_request_line_8000_accepted(srv):
    """RFC 9112 §3: recipients SHOULD support request-lines of 8000 octets."""
    target = b"/users/" + b"a" * (8000 - len(b"GET /users/ HTTP/1.1"))
    resp, conn = exchange(srv, b"GET " + target + b" HTTP/1.1\r\n" + H + b"\r\n")
    with conn:
        check_json(resp, {"id": "a" * (8000 - len(b"GET /users/ HTTP/1.1"))})


@test
def test_default_request_line_over_8192_is_414(srv):
    expect_reject(srv, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + H + b"\r\n", 414)


@test
def test_default_100_headers_accepted(srv):
    raw = b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-H%d: v\r\n" % i for i in range(99)) + b"\r\n"
    resp, conn = exchange(srv, raw)
    with conn:
        check_ok(resp, HELLO)


@test
def test_default_101_headers_is_431(srv):
    raw = b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-H%d: v\r\n" % i for i in range(100)) + b"\r\n"
    expect_reject(srv, raw, 431)


@test
def test_default_head_over_32k_is_431(srv):
    raw = b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(34)) + b"\r\n"
    expect_reject(srv, raw, 431)


@test
def test_error_response_survives_unread_input(srv):
    """RFC 9112 §9.6: close in stages so that a reset does not destroy the
    error response. The bad request is followed by 256 KiB of junk."""
    with Conn(srv.port) as conn:
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        try:
            conn.send(b"GET / HTTP/1.1\r\n" + H + b"Content-Length: x\r\n\r\n" + b"J" * (256 << 10))
        except (BrokenPipeError, ConnectionResetError):
            pass
        time.sleep(0.2)
        check_error(conn.read_response(), 400)


# ---------------------------------------------------------------- byte splits

SPLIT_REQ = (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n"
             b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-T: y\r\n\r\n")


@test
def test_request_sent_one_byte_at_a_time(srv):
    with Conn(srv.port, timeout=3) as conn:
        conn.send_trickle(SPLIT_REQ, min(0.01, 1.5 / len(SPLIT_REQ)))
        r = conn.read_response()
        check_ok(r, b"hello, world")
        check(r.header("content-type") == "text/plain", "Content-Type %r" % r.header("content-type"))
        conn.send_trickle(b"GET /users/12 HTTP/1.1\r\nHost: x\r\n\r\n", 0.002)
        check_json(conn.read_response(), {"id": "12"})


@test
def test_a_bad_request_split_across_reads_is_refused_at_once(srv):
    """Each line is judged when it ends, and a short head as its bytes come:
    the 400 or 501 a request gets in one read comes the same when it is
    split, long before the header timeout (10 s here; the reads wait 3 s)."""
    cases = [((b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b", b"\r\n"), [400]),  # its line ends later
             ((b"GET /a", b"\x01b"), [400]),  # its line not ended: a short head is judged as it comes
             ((b"GET / HTTP/1.1\r\nHost: x\r\n\r\nA", b"A" * 30), [200, 501])]  # a method too long
    for pieces, statuses in cases:
        with Conn(srv.port, timeout=3) as conn:
            conn.send(pieces[0])
            conn.send_trickle(pieces[1], 0.005)
            got = [conn.read_response().status for _ in statuses]
            check(got == statuses, "%r: %r, want %r" % (pieces, got, statuses))


@test
def test_request_split_at_every_offset(srv):
    with Conn(srv.port) as conn:
        for i in range(1, len(SPLIT_REQ)):
            conn.send(SPLIT_REQ[:i])
            time.sleep(0.002)
            conn.send(SPLIT_REQ[i:])
            try:
                check_ok(conn.read_response(), b"hello, world")
            except TestFailure as e:
                raise TestFailure("split at byte %d: %s" % (i, e))


@test
def test_cl_request_split_at_every_offset(srv):
    req = cl_post(b"0123456789") + b"GET /users/5 HTTP/1.1\r\n" + H + b"\r\n"
    with Conn(srv.port) as conn:
        for i in range(1, len(req)):
            conn.send(req[:i])
            time.sleep(0.001)
            conn.send(req[i:])
            try:
                check_ok(conn.read_response(), b"0123456789")
                check_json(conn.read_response(), {"id": "5"})
            except TestFailure as e:
                raise TestFailure("split at byte %d: %s" % (i, e))


# ---------------------------------------------------------------- strict rejection: framing

reject("test_cl_with_te_is_400_and_close",
       b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 13\r\nTransfer-Encoding: chunked\r\n\r\n"
       b"3\r\nabc\r\n0\r\n\r\n", 400, "RFC 9112 §6.1/§6.3, issue 2: CL with TE")
reject("test_te_with_cl_after_is_400_and_close",
       b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"
       b"0\r\n\r\n", 400, "RFC 9112 §6.1: CL with TE")
reject("test_cl_with_te_on_get_is_400",
       b"GET / HTTP/1.1\r\n" + H + b"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       400, "RFC 9112 §6.1: CL with TE, whatever the method")
reject("test_two_different_cl_is_400",
       b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 10\r\n\r\nhelloworld",
       400, "RFC 9112 §6.3 rule 5")
reject("test_duplicate_equal_cl_is_400",
       b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
       400, "issue 2: duplicate CL rejected (RFC 9110 §8.6 allows it)")
reject("test_cl_list_value_is_400",
       b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 5, 5\r\n\r\nhello",
       400, "issue 2: duplicate CL rejected (RFC 9110 §8.6)")
reject("test_cl_list_different_values_is_400",
       b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 5, 10\r\n\r\nhelloworld",
       400, "RFC 9110 §8.6")
reject("test_cl_plus_sign_is_400",
       b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: +5\r\n\r\nhello", 400, "RFC 9110 §8.6 1*DIGIT")
reject("test_cl_negative_is_400",
       b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", 400, "RFC 9110 §8.6 1*DIGIT")
reject("test_cl_inner_space_is_400",
       b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 1 0\r\n\r\nhelloworld", 400, "RFC 9110 §8.6")
reject("test_cl_non_digit_is_400",
       b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 5a\r\n\r\nhello", 400, "RFC 9110 §8.6")
reject("test_cl_hex_is_400",
       b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 0x5\r\n\r\nhello", 400, "RFC 9110 §8.6")
reject("test_cl_decimal_point_is_400",
       b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 5.0\r\n\r\nhello", 400, "RFC 9110 §8.6")
reject("test_cl_empty_is_400",
       b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: \r\n\r\n", 400, "RFC 9110 §8.6 1*DIGIT")
reject("test_cl_overflow_is_rejected",
       b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 184467440737095516160\r\n\r\nhello", (400, 413),
       "RFC 9112 §6.3: a length that cannot be represented is invalid")
reject("test_te_gzip_alone_is_400",
       b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\nhello", 400,
       "RFC 9112 §6.3 rule 4: chunked not final -> MUST 400 and close")
reject("test_te_chunked_not_last_is_400",
       b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400,
       "RFC 9112 §6.3: chunked not final")
reject("test_te_identity_is_400",
       b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: identity\r\n\r\n", 400,
       "RFC 9112 §6.3: chunked not final ('identity' no longer exists)")
reject("test_te_xchunked_is_400",
       b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400,
       "RFC 9112 §6.3: 'xchunked' is not chunked")
reject("test_te_empty_is_400",
       b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: \r\n\r\n", 400, "RFC 9112 §6.1: 1#coding")
reject("test_te_chunked_then_identity_lines_is_400",
       b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n"
       b"0\r\n\r\n", 400, "RFC 9110 §5.3: lines combine to 'chunked, identity': chunked not final")
reject("test_te_chunked_twice_is_400",
       b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n0\r\n\r\n",
       400, "RFC 9112 §7: chunked MUST NOT be applied twice")
reject("test_te_unknown_coding_is_501",
       b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: foo, chunked\r\n\r\n0\r\n\r\n", 501,
       "RFC 9112 §6.1: a coding the server does not understand -> 501")
reject("test_te_gzip_then_chunked_is_501",
       b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501,
       "RFC 9112 §6.1: the server does not implement gzip -> 501")
reject("test_te_split_over_lines_with_unknown_coding",
       b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: foo\r\nTransfer-Encoding: chunked\r\n\r\n"
       b"0\r\n\r\n", (400, 501), "RFC 9110 §5.3: the lines are one list 'foo, chunked'")
reject("test_te_in_http10_is_400",
       b"POST /echo HTTP/1.0\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400,
       "RFC 9112 §6.1: TE in HTTP/1.0 means faulty framing")
reject("test_te_with_cl_in_http10_is_400",
       b"POST /echo HTTP/1.0\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello", 400,
       "RFC 9112 §6.1")
reject("test_te_name_with_space_before_colon_is_400",
       b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\nhello", 400,
       "RFC 9112 §5.1")

# ---------------------------------------------------------------- strict rejection: chunks

reject("test_chunk_size_non_hex_is_400", chunked_post(b"zz\r\nhello\r\n0\r\n\r\n"), 400, "RFC 9112 §7.1 1*HEXDIG")
reject("test_chunk_size_negative_is_400", chunked_post(b"-1\r\nhello\r\n0\r\n\r\n"), 400, "RFC 9112 §7.1")
reject("test_chunk_size_empty_is_400", chunked_post(b"\r\nhello\r\n0\r\n\r\n"), 400, "RFC 9112 §7.1")
reject("test_chunk_size_only_extension_is_400", chunked_post(b";a=b\r\nhello\r\n0\r\n\r\n"), 400,
       "RFC 9112 §7.1: size missing")
reject("test_chunk_size_0x_prefix_is_400", chunked_post(b"0x5\r\nhello\r\n0\r\n\r\n"), 400, "RFC 9112 §7.1")
reject("test_chunk_size_plus_is_400", chunked_post(b"+5\r\nhello\r\n0\r\n\r\n"), 400, "RFC 9112 §7.1")
reject("test_chunk_size_leading_space_is_400", chunked_post(b" 5\r\nhello\r\n0\r\n\r\n"), 400, "RFC 9112 §7.1")
reject("test_chunk_size_trailing_space_is_400", chunked_post(b"5 \r\nhello\r\n0\r\n\r\n"), 400,
       "RFC 9112 §7.1.1: BWS only before ';'")
reject("test_chunk_size_underscore_is_400", chunked_post(b"1_0\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n"), 400,
       "RFC 9112 §7.1")
reject("test_chunk_size_overflow_is_rejected",
       chunked_post(b"1" + b"0" * 16 + b"5\r\nhello\r\n0\r\n\r\n"), (400, 413),
       "RFC 9112 §7.1: a size that overflows must not wrap")
reject("test_chunk_size_huge_hex_is_rejected",
       chunked_post(b"FFFFFFFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n"), (400, 413), "RFC 9112 §7.1")
reject("test_chunk_data_missing_crlf_is_400", chunked_post(b"5\r\nhelloXX0\r\n\r\n"), 400,
       "RFC 9112 §7.1: chunk-data CRLF")
reject("test_chunk_data_longer_than_size_is_400", chunked_post(b"5\r\nhello!!\r\n0\r\n\r\n"), 400,
       "RFC 9112 §7.1")
reject("test_chunk_data_bare_cr_terminator_is_400", chunked_post(b"5\r\nhello\r0\r\n\r\n"), 400,
       "RFC 9112 §7.1")
reject("test_chunk_ext_bare_semicolon_is_400", chunked_post(b"5;\r\nhello\r\n0\r\n\r\n"), 400,
       "RFC 9112 §7.1.1: chunk-ext-name is a token")
reject("test_chunk_ext_invalid_char_is_400", chunked_post(b"5;bad[=x\r\nhello\r\n0\r\n\r\n"), 400,
       "RFC 9112 §7.1.1")
reject("test_chunk_ext_nul_is_400", chunked_post(b"5;a=\x00\r\nhello\r\n0\r\n\r\n"), 400, "RFC 9112 §7.1.1")
reject("test_chunk_ext_unterminated_quote_is_400", chunked_post(b'5;a="b\r\nhello\r\n0\r\n\r\n'), 400,
       "RFC 9110 §5.6.4 quoted-string")
reject("test_chunk_size_bare_cr_is_400", chunked_post(b"5\rhello\r\n0\r\n\r\n"), 400, "RFC 9112 §2.2")
reject("test_trailer_without_colon_is_400", chunked_post(b"5\r\nhello\r\n0\r\nbad trailer\r\n\r\n"), 400,
       "RFC 9112 §7.1.2: trailer fields use field-line syntax")
reject("test_trailer_space_before_colon_is_400", chunked_post(b"5\r\nhello\r\n0\r\nX-T : v\r\n\r\n"), 400,
       "RFC 9112 §5.1")
reject("test_trailer_obs_fold_is_400", chunked_post(b"5\r\nhello\r\n0\r\nX-T: v\r\n w\r\n\r\n"), 400,
       "RFC 9112 §5.2")

# ---------------------------------------------------------------- strict rejection: fields

reject("test_space_before_colon_is_400",
       b"GET / HTTP/1.1\r\n" + H + b"X-Test : v\r\n\r\n", 400, "RFC 9112 §5.1: MUST 400")
reject("test_tab_before_colon_is_400",
       b"GET / HTTP/1.1\r\n" + H + b"X-Test\t: v\r\n\r\n", 400, "RFC 9112 §5.1: MUST 400")
reject("test_space_before_colon_in_host_is_400",
       b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, "RFC 9112 §5.1")
reject("test_obs_fold_is_400",
       b"GET / HTTP/1.1\r\n" + H + b"X-Test: a\r\n b\r\n\r\n", 400, "RFC 9112 §5.2, issue 2")
reject("test_obs_fold_with_tab_is_400",
       b"GET / HTTP/1.1\r\n" + H + b"X-Test: a\r\n\tb\r\n\r\n", 400, "RFC 9112 §5.2")
reject("test_whitespace_line_after_request_line_is_400",
       b"GET / HTTP/1.1\r\n Host: x\r\n\r\n", 400,
       "RFC 9112 §2.2: reject, or skip the line and then Host is missing")
reject("test_bare_cr_in_header_value_is_400",
       b"GET / HTTP/1.1\r\n" + H + b"X-Test: a\rb\r\n\r\n", 400, "RFC 9112 §2.2, RFC 9110 §5.5")
reject("test_bare_cr_before_crlf_is_400",
       b"GET / HTTP/1.1\r\n" + H + b"X-Test: a\r\r\n\r\n", 400, "RFC 9112 §2.2")
reject("test_cr_as_line_end_is_400",
       b"GET / HTTP/1.1\rHost: x\r\n\r\n", 400, "RFC 9112 §2.2")
reject("test_nul_in_header_value_is_400",
       b"GET / HTTP/1.1\r\n" + H + b"X-Test: a\x00b\r\n\r\n", 400, "RFC 9110 §5.5: NUL")
reject("test_ctl_in_header_value_is_400",
       b"GET / HTTP/1.1\r\n" + H + b"X-Test: a\x01b\r\n\r\n", 400, "RFC 9110 §5.5, issue 2: forbidden bytes")
reject("test_del_in_header_value_is_400",
       b"GET / HTTP/1.1\r\n" + H + b"X-Test: a\x7fb\r\n\r\n", 400, "RFC 9110 §5.5: DEL is a CTL")
reject("test_header_name_with_space_is_400",
       b"GET / HTTP/1.1\r\n" + H + b"Bad Header: v\r\n\r\n", 400, "RFC 9110 §5.1: field-name = token")
reject("test_header_name_with_at_is_400",
       b"GET / HTTP/1.1\r\n" + H + b"X@Y: v\r\n\r\n", 400, "RFC 9110 §5.6.2 tchar")
reject("test_header_name_with_bracket_is_400",
       b"GET / HTTP/1.1\r\n" + H + b"Bad[Name: v\r\n\r\n", 400, "RFC 9110 §5.6.2 tchar")
reject("test_header_name_non_ascii_is_400",
       b"GET / HTTP/1.1\r\n" + H + b"X\xc3\xa9: v\r\n\r\n", 400, "RFC 9110 §5.6.2 tchar")
reject("test_header_name_nul_is_400",
       b"GET / HTTP/1.1\r\n" + H + b"X\x00Y: v\r\n\r\n", 400, "RFC 9110 §5.6.2 tchar")
reject("test_empty_header_name_is_400",
       b"GET / HTTP/1.1\r\n" + H + b": v\r\n\r\n", 400, "RFC 9110 §5.1: 1*tchar")
reject("test_header_line_without_colon_is_400",
       b"GET / HTTP/1.1\r\n" + H + b"NoColonHere\r\n\r\n", 400, "RFC 9112 §5")
reject("test_missing_host_is_400",
       b"GET / HTTP/1.1\r\n\r\n", 400, "RFC 9112 §3.2: MUST 400")
reject("test_missing_host_absolute_form_is_400",
       b"GET http://x/json HTTP/1.1\r\n\r\n", 400, "RFC 9112 §3.2: any HTTP/1.1 request lacking Host")
reject("test_two_host_headers_is_400",
       b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400, "RFC 9112 §3.2: MUST 400")
reject("test_two_equal_host_headers_is_400",
       b"GET / HTTP/1.1\r\nHost: x\r\nhost: x\r\n\r\n", 400, "RFC 9112 §3.2: more than one Host line")
reject("test_two_host_headers_http10_is_400",
       b"GET / HTTP/1.0\r\nHost: x\r\nHost: y\r\n\r\n", 400, "RFC 9112 §3.2: 'any request message'")
reject("test_host_with_space_is_400",
       b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "RFC 9112 §3.2: invalid Host value")
reject("test_host_unclosed_ipv6_is_400",
       b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400, "RFC 9112 §3.2, RFC 3986 IP-literal")
reject("test_host_with_path_is_400",
       b"GET / HTTP/1.1\r\nHost: x/path\r\n\r\n", 400, "RFC 9110 §7.2: Host = uri-host [ : port ]")
reject("test_host_with_userinfo_is_400",
       b"GET / HTTP/1.1\r\nHost: user@x\r\n\r\n", 400, "RFC 9110 §7.2")
reject("test_host_non_numeric_port_is_400",
       b"GET / HTTP/1.1\r\nHost: x:8o\r\n\r\n", 400, "RFC 3986 port = *DIGIT")
reject("test_host_two_ports_is_400",
       b"GET / HTTP/1.1\r\nHost: x:80:81\r\n\r\n", 400, "RFC 9110 §7.2")
reject("test_host_list_is_400",
       b"GET / HTTP/1.1\r\nHost: x, y\r\n\r\n", 400, "RFC 9110 §7.2: Host is a singleton")

# ---------------------------------------------------------------- strict rejection: request line

reject("test_missing_version_is_400", b"GET /\r\n" + H + b"\r\n", 400, "RFC 9112 §3 (no HTTP/0.9)")
reject("test_missing_target_is_400", b"GET HTTP/1.1\r\n" + H + b"\r\n", 400, "RFC 9112 §3")
reject("test_double_space_in_request_line_is_400", b"GET  / HTTP/1.1\r\n" + H + b"\r\n", 400,
       "RFC 9112 §3: single SP (SHOULD 400)")
reject("test_space_before_version_twice_is_400", b"GET /  HTTP/1.1\r\n" + H + b"\r\n", 400, "RFC 9112 §3")
reject("test_trailing_space_after_version_is_400", b"GET / HTTP/1.1 \r\n" + H + b"\r\n", 400, "RFC 9112 §3")
reject("test_tab_separator_in_request_line_is_400", b"GET\t/ HTTP/1.1\r\n" + H + b"\r\n", 400, "RFC 9112 §3")
reject("test_leading_space_in_request_line_is_400", b" GET / HTTP/1.1\r\n" + H + b"\r\n", 400, "RFC 9112 §3")
reject("test_extra_token_in_request_line_is_400", b"GET / HTTP/1.1 extra\r\n" + H + b"\r\n", 400,
       "RFC 9112 §3")
reject("test_invalid_method_char_is_400", b"G(T / HTTP/1.1\r\n" + H + b"\r\n", 400, "RFC 9110 §9.1 token")
reject("test_version_http_1_x_is_400", b"GET / HTTP/1.x\r\n" + H + b"\r\n", 400, "RFC 9112 §2.3")
reject("test_version_lowercase_is_400", b"GET / http/1.1\r\n" + H + b"\r\n", 400, "RFC 9112 §2.3 case-sensitive")
reject("test_version_without_minor_is_400", b"GET / HTTP/1\r\n" + H + b"\r\n", 400, "RFC 9112 §2.3")
reject("test_version_two_digit_minor_is_400", b"GET / HTTP/1.10\r\n" + H + b"\r\n", 400, "RFC 9112 §2.3 DIGIT")
reject("test_version_leading_zero_is_400", b"GET / HTTP/01.1\r\n" + H + b"\r\n", 400, "RFC 9112 §2.3")
reject("test_version_with_space_is_400", b"GET / HTTP/ 1.1\r\n" + H + b"\r\n", 400, "RFC 9112 §2.3")
reject("test_version_https_is_400", b"GET / HTTPS/1.1\r\n" + H + b"\r\n", 400, "RFC 9112 §2.3")
reject("test_http2_version_is_505", b"GET / HTTP/2.0\r\n" + H + b"\r\n", 505,
       "RFC 9110 §15.6.6: well-formed, unsupported major")
reject("test_http3_version_is_505", b"GET / HTTP/3.0\r\n" + H + b"\r\n", 505, "RFC 9110 §15.6.6")
reject("test_http09_version_is_rejected", b"GET / HTTP/0.9\r\n" + H + b"\r\n", (400, 505),
       "RFC 9110 §15.6.6 (major 0 unsupported)")
reject("test_target_without_slash_is_400", b"GET json HTTP/1.1\r\n" + H + b"\r\n", 400, "RFC 9112 §3.2")
reject("test_asterisk_target_with_get_is_400", b"GET * HTTP/1.1\r\n" + H + b"\r\n", 400,
       "RFC 9112 §3.2.4: asterisk-form only for OPTIONS")
reject("test_authority_form_with_get_is_400", b"GET x:80 HTTP/1.1\r\n" + H + b"\r\n", 400,
       "RFC 9112 §3.2.3: authority-form only for CONNECT")
reject("test_absolute_form_empty_host_is_400", b"GET http:///json HTTP/1.1\r\n" + H + b"\r\n", 400,
       "RFC 9110 §4.2.1: http URI with empty host MUST be rejected")
accept("test_absolute_form_ipv6_host", b"GET http://[::1]:8080/json HTTP/1.1\r\n" + H + b"\r\n",
       "RFC 9112 §3.2.2 and RFC 3986 §3.2.2: an IP-literal host in brackets",
       json_expect={"message": "Hello, World!"})
reject("test_absolute_form_unclosed_ip_literal_is_400", b"GET http://[::1/json HTTP/1.1\r\n" + H + b"\r\n",
       400, "RFC 3986 §3.2.2: IP-literal = \"[\" ... \"]\"")
reject("test_absolute_form_bad_ip_literal_is_400", b"GET http://[zz]/json HTTP/1.1\r\n" + H + b"\r\n", 400,
       "RFC 3986 §3.2.2: IPv6address or IPvFuture")
accept("test_brackets_after_an_absolute_form_host_are_the_paths", b"GET http://x/users/[1] HTTP/1.1\r\n" + H +
       b"\r\n", "as in an origin-form target", json_expect={"id": "[1]"})
reject("test_bracket_inside_a_reg_name_is_400", b"GET http://x[::1]/ HTTP/1.1\r\n" + H + b"\r\n", 400,
       "RFC 3986 §3.2.2: an IP-literal is the whole host")
reject("test_host_with_a_bad_percent_escape_is_400", b"GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", 400,
       "RFC 9112 §3.2 MUST 400 an invalid Host; RFC 3986 §2.1: \"%\" HEXDIG HEXDIG")
reject("test_host_with_a_cut_percent_escape_is_400", b"GET / HTTP/1.1\r\nHost: a%4\r\n\r\n", 400,
       "RFC 3986 §2.1: \"%\" HEXDIG HEXDIG")
accept("test_host_with_a_percent_escape", b"GET / HTTP/1.1\r\nHost: a%41b\r\n\r\n",
       "RFC 3986 §3.2.2: a reg-name may hold pct-encoded bytes", body=HELLO)
reject("test_control_char_in_target_is_400", b"GET /a\x01b HTTP/1.1\r\n" + H + b"\r\n", 400, "RFC 9112 §3.2")
reject("test_del_in_target_is_400", b"GET /a\x7fb HTTP/1.1\r\n" + H + b"\r\n", 400, "RFC 9112 §3.2")
reject("test_nul_in_target_is_400", b"GET /a\x00b HTTP/1.1\r\n" + H + b"\r\n", 400, "RFC 9112 §3.2")
reject("test_non_ascii_in_target_is_400", b"GET /caf\xc3\xa9 HTTP/1.1\r\n" + H + b"\r\n", 400,
       "RFC 9112 §3.2: not a pchar (SHOULD 400)")
reject("test_fragment_in_target_is_400", b"GET /json#frag HTTP/1.1\r\n" + H + b"\r\n", 400,
       "RFC 9112 §3.2.1: no fragment in origin-form (SHOULD 400)")
reject("test_angle_brackets_in_target_are_400", b"GET /users/<x> HTTP/1.1\r\n" + H + b"\r\n", 400,
       "RFC 3986: '<' '>' are not pchar")
accept("test_brackets_braces_pipe_backslash_caret_backtick_in_target_accepted",
       b"GET /users/a[0]{x}|y\\z^`?filter[name]=x&ids[]=1&q=a|b HTTP/1.1\r\n" + H + b"\r\n",
       "browsers (WHATWG URLs) and axios send them unescaped; nginx takes them",
       json_expect={"id": "a[0]{x}|y\\z^`"})
reject("test_bad_percent_encoding_in_target_is_400", b"GET /users/%zz HTTP/1.1\r\n" + H + b"\r\n", 400,
       "RFC 3986 pct-encoded = '%' HEXDIG HEXDIG")
reject("test_whitespace_only_request_line_is_400", b"   \r\n\r\n", 400, "RFC 9112 §3")
reject("test_long_method_is_501_or_400_not_414", b"A" * 100000 + b" / HTTP/1.1\r\n" + H + b"\r\n", (400, 501),
       "RFC 9112 §3: a method longer than any implemented SHOULD get 501; 414 is for the target")
reject("test_100k_target_is_414", b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\n" + H + b"\r\n", 414,
       "RFC 9112 §3: a target longer than the server parses MUST get 414")
reject("test_100k_header_name_is_431", b"GET / HTTP/1.1\r\n" + H + b"A" * 100000 + b": v\r\n\r\n", (400, 431),
       "RFC 6585 §5")
reject("test_10000_headers_is_431",
       b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-H-%d: value\r\n" % i for i in range(10000)) + b"\r\n", 431,
       "RFC 6585 §5")


@test
def test_binary_garbage_is_refused(srv):
    """256 random bytes: a 400 and a close, or a close, or silence; never a
    success and never a malformed reply."""
    rng = random.Random(42)
    for n in range(20):
        data = bytes(rng.randrange(256) for _ in range(256))
        with Conn(srv.port, timeout=0.5) as conn:
            try:
                conn.send(data)
            except OSError:
                continue
            if conn.closed_within(0.5) is None and not conn.buf:
                continue
            if conn.buf:
                r = conn.read_response()
                check_error(r, 400)


reject("test_bare_cr_in_request_line_is_400", b"GET /\r HTTP/1.1\r\n" + H + b"\r\n", 400, "RFC 9112 §2.2")


# ================================================================ limits group
group("limits", {"TURBO_MAX_REQUEST_LINE": "256", "TURBO_MAX_HEADER_BYTES": "1024",
                 "TURBO_MAX_HEADERS": "10", "TURBO_MAX_BODY": "1000"})


@test
def test_request_line_under_limit_ok(srv):
    target = b"/users/" + b"a" * 180
    resp, conn = exchange(srv, b"GET " + target + b" HTTP/1.1\r\n" + H + b"\r\n")
    with conn:
        check_json(resp, {"id": "a" * 180})


@test
def test_request_line_over_limit_is_414(srv):
    expect_reject(srv, b"GET /users/" + b"a" * 300 + b" HTTP/1.1\r\n" + H + b"\r\n", 414)


@test
def test_request_line_over_limit_414_before_line_ends(srv):
    """The server must not wait for the CRLF of a line already too long."""
    with Conn(srv.port) as conn:
        conn.send(b"GET /" + b"a" * 600)
        check_error(conn.read_response(timeout=1.5), 414)
        closed(conn)


@test
def test_head_over_limit_is_431(srv):
    expect_reject(srv, b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"v" * 1500 + b"\r\n\r\n", 431)


@test
def test_head_over_limit_431_before_head_ends(srv):
    with Conn(srv.port) as conn:
        conn.send(b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 250) for i in range(5)))
        check_error(conn.read_response(timeout=1.5), 431)
        closed(conn)


@test
def test_header_count_at_limit_ok(srv):
    raw = b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-%d: v\r\n" % i for i in range(9)) + b"\r\n"
    resp, conn = exchange(srv, raw)
    with conn:
        check_ok(resp, HELLO)


@test
def test_header_count_over_limit_is_431(srv):
    raw = b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-%d: v\r\n" % i for i in range(10)) + b"\r\n"
    expect_reject(srv, raw, 431)


@test
def test_body_at_limit_ok(srv):
    body = b"b" * 1000
    resp, conn = exchange(srv, cl_post(body))
    with conn:
        check_ok(resp, body)


@test
def test_body_over_limit_is_413_before_body_sent(srv):
    """Issue 2: 413 is answered before reading the body."""
    with Conn(srv.port) as conn:
        conn.send(b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 1001\r\n\r\n")
        check_error(conn.read_response(timeout=1.5), 413)
        closed(conn)


@test
def test_chunked_body_growing_over_limit_is_413(srv):
    with Conn(srv.port) as conn:
        conn.send(chunked_post(b"258\r\n" + b"a" * 600 + b"\r\n"))
        time.sleep(0.05)
        try:
            conn.send(b"258\r\n" + b"b" * 600 + b"\r\n0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = conn.read_response()
        check_error(r, 413)
        closed(conn)


@test
def test_chunk_size_over_limit_is_413_before_data(srv):
    with Conn(srv.port) as conn:
        conn.send(chunked_post(b"7d0\r\n"))
        check_error(conn.read_response(timeout=1.5), 413)
        closed(conn)


@test
def test_huge_trailer_section_is_rejected(srv):
    """Trailers are bounded like the head (RFC 9112 §7.1.2 / §5)."""
    trailers = b"".join(b"X-T%d: %s\r\n" % (i, b"v" * 40) for i in range(2000))
    expect_reject(srv, chunked_post(b"0\r\n" + trailers + b"\r\n"), (400, 413, 431))


@test
def test_huge_chunk_extension_is_rejected(srv):
    """RFC 9112 §7.1.1: a server ought to limit chunk extensions and answer 4xx."""
    expect_reject(srv, chunked_post(b"5;a=" + b"b" * 100000 + b"\r\nhello\r\n0\r\n\r\n"), (400, 413, 431))


@test
def test_expect_100_over_limit_is_413(srv):
    with Conn(srv.port) as conn:
        conn.send(b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
        r = conn.read_response()
        check(r.status != 100, "100 Continue for a body over the limit")
        check_error(r, 413)
        closed(conn)


# ================================================================ max-requests group
group("max_requests", {"TURBO_MAX_REQUESTS": "3"})


@test
def test_max_requests_third_response_closes(srv):
    with Conn(srv.port) as conn:
        for i in range(3):
            conn.send(b"GET /users/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
            r = conn.read_response()
            check_json(r, {"id": str(i)})
            has_close = "close" in r.tokens("connection")
            check(has_close == (i == 2), "response %d: Connection %r" % (i + 1, r.header("connection")))
        closed(conn)


@test
def test_max_requests_pipelined_stops_at_limit(srv):
    raw = b"".join(b"GET /users/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(5))
    with Conn(srv.port) as conn:
        conn.send(raw)
        for i in range(3):
            r = conn.read_response()
            check_json(r, {"id": str(i)})
        check("close" in r.tokens("connection"), "third response lacks Connection: close")
        closed(conn)


# ================================================================ timeouts group
group("timeouts", {"TURBO_HEADER_TIMEOUT_MS": "400", "TURBO_BODY_TIMEOUT_MS": "400",
                   "TURBO_KEEPALIVE_TIMEOUT_MS": "400", "TURBO_WRITE_TIMEOUT_MS": "500",
                   "TURBO_MAX_BODY": str(16 << 20)})


def check_closes_between(conn, lo, hi, what, since):
    """Closed lo to hi seconds after since, a time before the request that armed the timer was
    sent: the timer may run for a while before this client, on a loaded machine, is back."""
    t = conn.closed_within(max(0.0, since + hi - time.monotonic()))
    check(t is not None, "%s: still open after %.1fs" % (what, hi))
    t = time.monotonic() - since
    check(t >= lo, "%s: closed after %.2fs, before the %.2fs timeout" % (what, t, lo))
    return t


@test
def test_keepalive_idle_timeout_closes_quietly(srv):
    with Conn(srv.port) as conn:
        sent = time.monotonic()
        conn.send(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
        check_ok(conn.read_response(), HELLO)
        check_closes_between(conn, 0.3, 5, "idle keep-alive connection", sent)
        check(not conn.buf, "bytes sent on keep-alive timeout (want a quiet close): %s" % short(conn.buf))


@test
def test_idle_connection_closes_on_time_beside_a_busy_one(srv):
    """Timers are checked only when the earliest deadline may have come,
    and a busy connection's timer moves without relinking: an idle
    neighbour must still close at its own deadline, whichever of the two
    was armed first."""
    for idle_first in (True, False):
        with Conn(srv.port) as idle, Conn(srv.port) as busy:
            first, second = (idle, busy) if idle_first else (busy, idle)
            sent = {}
            for conn in (first, second):
                sent[conn] = time.monotonic()
                conn.send(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
                check_ok(conn.read_response(), HELLO)
            stop = threading.Event()
            failed = []

            def keep_busy():
                try:
                    while not stop.wait(0.05):
                        busy.send(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
                        check_ok(busy.read_response(), HELLO)
                except (OSError, TestFailure) as err:
                    failed.append(err)

            worker = threading.Thread(target=keep_busy)
            worker.start()
            try:
                check_closes_between(idle, 0.3, 5, "idle connection beside a busy one", sent[idle])
            finally:
                stop.set()
                worker.join(10)
            check(not failed, "the busy connection failed meanwhile: %s" % (failed[:1],))


@test
def test_keepalive_not_closed_early(srv):
    """Each request renews the 400 ms timer: 0.5 s in all, in gaps of 0.1 s (each well inside
    the timeout, for a loaded machine)."""
    with Conn(srv.port) as conn:
        for _ in range(6):
            conn.send(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
            check_ok(conn.read_response(), HELLO)
            time.sleep(0.1)


@test
def test_partial_head_then_silence_is_408(srv):
    t0 = time.monotonic()  # before the connection: its header timer cannot start sooner
    with Conn(srv.port, timeout=5) as conn:
        conn.send(b"GET / HTTP/1.1\r\n" + H)
        check_error(conn.read_response(timeout=5), 408)
        t = time.monotonic() - t0
        check(t >= 0.3, "408 after %.2fs, before the 0.4s header timeout" % t)
        closed(conn)


@test
def test_errors_found_in_a_head_request_s_later_reads_carry_no_body(srv):
    """RFC 9110 9.3.2: no answer to HEAD has content, nor has an error found once the head is
    parsed and its body comes in later reads: the body timeout's 408, a bad chunk's 400 (the
    chunk sent after the 100 Continue, so in a read of its own). Before, both carried their
    text, which the client reads as the start of the next answer."""
    continued = b"HTTP/1.1 100 Continue\r\n\r\n"
    for framing, later, status in ((b"Content-Length: 5", None, 408),
                                   (b"Transfer-Encoding: chunked", b"hellozz\r\n", 400)):
        with Conn(srv.port, timeout=5) as conn:
            conn.send(b"HEAD / HTTP/1.1\r\n" + H + framing + b"\r\nExpect: 100-continue\r\n\r\n5\r\n")
            deadline = time.monotonic() + 3
            while len(conn.buf) < len(continued) and conn._fill(deadline):
                pass
            check(conn.buf.startswith(continued), "no 100 Continue: %s" % short(conn.buf))
            del conn.buf[:len(continued)]
            if later:
                conn.send(later)
            r = conn.read_response("HEAD", timeout=5)
            check(r.status == status, "%s: status %d, want %d" % (framing, r.status, status))
            closed(conn)


@test
def test_an_empty_line_after_a_request_leaves_the_connection_idle(srv):
    """RFC 9112 2.2: old clients send CRLF after a POST body; that begins no request, so the
    connection closes quietly at the keep-alive timeout, with no 408 for a request never sent."""
    for after in (b"", b"\r\n", b"\r"):  # the CRLF in the same read, in a read of its own, split
        with Conn(srv.port, timeout=5) as conn:
            conn.send(b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n\r\nhello" +
                      (b"\r\n" if not after else b""))
            check_ok(conn.read_response(), b"hello")
            if after:
                conn.send(after)
                if after == b"\r":
                    conn.send(b"\n")
            check(conn.closed_within(5) is not None, "still open after 5s")
            check(conn.buf == b"", "after the answer (then %r): %r" % (after, conn.buf[:100]))


@test
def test_empty_lines_do_not_keep_an_idle_connection_open(srv):
    """Empty lines are ignored between requests, and so is their coming: a client sending
    CRLF every 100 ms is closed at the keep-alive timeout (400 ms) after its last request,
    as a silent one is, not kept open for as long as it keeps sending them."""
    with Conn(srv.port, timeout=5) as conn:
        conn.send(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
        check_ok(conn.read_response(), HELLO)
        t0, refused = time.monotonic(), False
        while not conn.eof and not refused and time.monotonic() < t0 + 5:
            try:
                conn.send(b"\r\n")
            except OSError:  # closed: the reset of a write after the close
                refused = True
            conn._fill(time.monotonic() + 0.1)
        check(conn.eof or refused,
              "open %.1fs after its last request, while it sent empty lines" % (time.monotonic() - t0))
        check(conn.buf == b"", "an answer to empty lines: %r" % conn.buf[:100])


@test
def test_partial_second_request_then_silence_is_408(srv):
    with Conn(srv.port, timeout=5) as conn:
        conn.send(b"GET / HTTP/1.1\r\n" + H + b"\r\nGET /json HTTP/1.1\r\n")
        check_ok(conn.read_response(), HELLO)
        check_error(conn.read_response(timeout=5), 408)
        closed(conn)


@test
def test_trickled_head_is_408_at_deadline(srv):
    """Slowloris: a byte every 50 ms never completes the head. The header
    timeout is a deadline for the whole head, not an idle timer."""
    with Conn(srv.port, timeout=5) as conn:
        conn.send(b"GET / HTTP/1.1\r\n" + H + b"X-Slow: ")
        t0 = time.monotonic()
        deadline = t0 + 5
        while time.monotonic() < deadline and not conn.buf and not conn.eof:
            try:
                conn.send(b"a")
            except OSError:
                break
            conn._fill(time.monotonic() + 0.05)
        check(conn.buf or conn.eof, "no 408 after %.1fs of trickled header bytes" % (time.monotonic() - t0))
        check_error(conn.read_response(), 408)


@test
def test_partial_body_then_silence_is_408(srv):
    with Conn(srv.port, timeout=5) as conn:
        t0 = time.monotonic()  # before the head: the body timer cannot start sooner
        conn.send(b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 10\r\n\r\nhello")
        check_error(conn.read_response(timeout=5), 408)
        t = time.monotonic() - t0
        check(t >= 0.3, "408 after %.2fs, before the 0.4s body timeout" % t)
        closed(conn)


@test
def test_partial_chunked_body_then_silence_is_408(srv):
    with Conn(srv.port, timeout=5) as conn:
        conn.send(chunked_post(b"5\r\nhel"))
        check_error(conn.read_response(timeout=5), 408)
        closed(conn)


@test
def test_new_idle_connection_is_closed(srv):
    """A connection that never sends a byte must not be held forever; a 408
    is allowed, anything else is not."""
    with Conn(srv.port, timeout=5) as conn:
        t = conn.closed_within(5)
        check(t is not None, "silent new connection still open after 5s")
        if conn.buf:
            r, _ = parse_response(conn.buf, eof=True)
            check(r.status == 408, "status %d on an idle connection" % r.status)


@test
def test_write_timeout_closes_stalled_reader(srv):
    """A client that stops reading a large response is dropped after the
    write timeout instead of holding the connection forever."""
    body = b"w" * (8 << 20)
    with Conn(srv.port, timeout=10, rcvbuf=4096) as conn:
        sender = threading.Thread(target=lambda: conn.send(cl_post(body)))
        sender.start()
        sender.join(15)
        time.sleep(2.0)
        got = 0
        conn.sock.settimeout(3)
        try:
            while True:
                data = conn.sock.recv(1 << 20)
                if not data:
                    break
                got += len(data)
        except ConnectionResetError:
            pass
        except socket.timeout:
            raise TestFailure("connection still open 2s after the write stalled (read %d bytes)" % got)
        check(got < len(body), "the whole %d-byte response arrived; the server never timed out" % got)


@test
def test_serves_after_timeouts(srv):
    with Conn(srv.port) as conn:
        conn.send(b"GET /json HTTP/1.1\r\n" + H + b"\r\n")
        check_json(conn.read_response(), {"message": "Hello, World!"})


# ================================================================ concurrency group
group("concurrency", {})


@test
def test_1000_concurrent_keepalive_connections(srv):
    n = 1000
    sel = selectors.DefaultSelector()
    conns = []
    failures = []
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", srv.port))
        st = {"sock": s, "i": i, "out": b"GET /users/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i,
              "sent": 0, "buf": bytearray(), "round": 0}
        conns.append(st)
        sel.register(s, selectors.EVENT_WRITE, st)
    waiting, finished = 0, 0
    deadline = time.monotonic() + 30
    try:
        while finished + len(failures) < n and time.monotonic() < deadline:
            for key, ev in sel.select(timeout=1):
                st = key.data
                s = st["sock"]
                try:
                    if ev & selectors.EVENT_WRITE:
                        st["sent"] += s.send(st["out"][st["sent"]:])
                        if st["sent"] == len(st["out"]):
                            sel.modify(s, selectors.EVENT_READ, st)
                        continue
                    data = s.recv(65536)
                except BlockingIOError:
                    continue
                except OSError as e:
                    failures.append("conn %d: %s" % (st["i"], e))
                    sel.unregister(s)
                    continue
                if not data:
                    failures.append("conn %d closed in round %d" % (st["i"], st["round"] + 1))
                    sel.unregister(s)
                    continue
                st["buf"] += data
                try:
                    got = parse_response(st["buf"])
                except BadResponse as e:
                    failures.append("conn %d: %s" % (st["i"], e))
                    sel.unregister(s)
                    continue
                if not got:
                    continue
                r, used = got
                del st["buf"][:used]
                want = {"id": str(st["i"]) if st["round"] == 0 else "r2-%d" % st["i"]}
                try:
                    check_json(r, want)
                except TestFailure as e:
                    failures.append("conn %d round %d: %s" % (st["i"], st["round"] + 1, e))
                    sel.unregister(s)
                    continue
                st["round"] += 1
                if st["round"] == 1:
                    # Round two starts only when all n are open and answered once.
                    sel.unregister(s)
                    waiting += 1
                    if waiting == n - len(failures):
                        for c in conns:
                            if c["round"] == 1:
                                c["out"] = b"GET /users/r2-%d HTTP/1.1\r\nHost: x\r\n\r\n" % c["i"]
                                c["sent"] = 0
                                sel.register(c["sock"], selectors.EVENT_WRITE, c)
                else:
                    sel.unregister(s)
                    finished += 1
    finally:
        for c in conns:
            c["sock"].close()
        sel.close()
    check(not failures, "%d of %d connections failed, e.g. %s" % (len(failures), n, failures[:3]))
    check(finished == n, "only %d of %d connections finished two requests within 30s (%d answered once)"
          % (finished, n, waiting))


# ================================================================ max-connections group
group("max_connections", {"TURBO_THREADS": "1", "TURBO_MAX_CONNECTIONS": "4"})


def served_on(srv, path, held=None):
    """Whether a new connection is served path (its answer a 200, not the 503 of a full
    server); kept in held, if given, else closed."""
    c = Conn(srv.port, timeout=3)
    c.send(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    ok = c.read_response().status == 200
    if ok and held is not None:
        held.append(c)
    else:
        c.close()
    return ok


def hold_the_limit(srv, held):
    """Opens (into held) the group's four connections, each served once, as soon as the server
    has let go of an earlier test's (it may not have read their close yet)."""
    for i in range(4):
        wait_until(lambda: served_on(srv, b"/users/%d" % i, held), "no slot came free")


@test
def test_max_connections_enforced(srv):
    """Past TURBO_MAX_CONNECTIONS a connection is refused (503 or a close)
    or waits for a free slot; it is never served beyond the limit."""
    held = []
    try:
        hold_the_limit(srv, held)
        extra = Conn(srv.port, timeout=3)
        held.append(extra)
        try:
            extra.send(b"GET /users/x HTTP/1.1\r\nHost: x\r\n\r\n")
        except OSError:
            return
        t = extra.closed_within(1.0)
        if extra.buf:
            check_error(extra.read_response(timeout=1.0), 503)
            return
        if t is not None:
            return
        held[0].close()
        # a slot came free: served now, or refused late by a loaded server (after the 1 s)
        r = extra.read_response(timeout=10)
        if r.status == 503:
            check_error(r, 503)
        else:
            check_json(r, {"id": "x"})
    finally:
        for c in held:
            c.close()


@test
def test_a_connection_past_the_limit_reads_its_503(srv):
    """Past the limit the 503 goes out at once and the connection lingers: the request is read
    and dropped, so no reset takes the 503 away from the client (RFC 9112 9.6); once the client
    has sent all (it shuts its side), the server closes. Before, turbo closed at once, with the
    request unread or still to come, which reset the connection: most clients read ECONNRESET."""
    held = []
    try:
        hold_the_limit(srv, held)
        # Fewer than the lingering connections turbo keeps (an eighth of the limit, plus 8; past
        # them a flood is closed at once): under valgrind the server may not have read the
        # client's close of one before the next comes.
        for _ in range(6):
            with Conn(srv.port, timeout=3) as extra:
                extra.send(b"GET /users/x HTTP/1.1\r\nHost: x\r\n\r\n")
                extra.sock.shutdown(socket.SHUT_WR)
                check_error(extra.read_response(timeout=3), 503)
                closed(extra, timeout=3)
                check(not extra.reset, "reset after the 503")
    finally:
        for c in held:
            c.close()


@test
def test_serves_again_after_connections_close(srv):
    wait_until(lambda: served_on(srv, b"/"), "not served again after the connections closed")
    for i in range(6):
        with Conn(srv.port) as c:
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            check_ok(c.read_response(), HELLO)


# ================================================================ processes group
group("processes", None)


def child_pids(pid):
    out = []
    try:
        for task in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


@test
def test_prefork_processes_serve_and_exit_cleanly(binary):
    srv = start(binary, {"TURBO_PROCESSES": "2", "TURBO_THREADS": "1"})
    try:
        wait_until(lambda: len(child_pids(srv.proc.pid)) == 2, "not two worker processes")
        kids = child_pids(srv.proc.pid)
        for i in range(20):
            with Conn(srv.port) as c:
                c.send(b"GET /users/%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % i)
                check_json(c.read_response(), {"id": str(i)})
        srv.signal(signal.SIGTERM)
        rc = srv.wait(10)
        check(rc is not None, "parent still running 10s after SIGTERM")
        # process_gone reads /proc once: no race between a check that it exists and the read
        wait_until(lambda: all(process_gone(k) for k in kids),
                   "worker processes still alive 5s after the parent exited", timeout=5)
        problem = exit_problem(rc, srv.stderr())
        check(problem is None, problem)
    finally:
        srv.kill()


@test
def test_invalid_env_value_is_refused(binary):
    """No silent fallback (DESIGN.md): a malformed knob stops startup with a
    message instead of serving with some default; so does a port out of range,
    PORT too when TURBO_PORT is valid."""
    for bad, knob in [({"PORT": "0", "TURBO_MAX_BODY": "12abc"}, b"TURBO_MAX_BODY"),
                      ({"PORT": "70000", "TURBO_PORT": "0"}, b"PORT"),
                      ({"TURBO_ACCESS_LOG": "xml", "PORT": "0"}, b"TURBO_ACCESS_LOG")]:
        p = subprocess.Popen([binary], env=dict(os.environ, **bad), stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise TestFailure("server started with %s (still running after 10s)" % bad)
        check(p.returncode != 0, "exit status 0 with %s" % bad)
        check(knob in err, "stderr does not name the bad knob of %s: %s" % (bad, short(err, 200)))


# ================================================================ IPv6 group
group("ipv6", {"TURBO_HOST": "::1"})


@test
def test_ipv6_loopback_serves(srv):
    with Conn(srv.port, host="::1") as conn:
        conn.send(b"GET /json HTTP/1.1\r\nHost: [::1]\r\n\r\n")
        check_json(conn.read_response(), {"message": "Hello, World!"})


# ================================================================ json-errors group
group("json_errors", {"TURBO_JSON_ERRORS": "1"})


@test
def test_json_errors_give_detail_bodies(srv):
    """With json_errors, turbo's own answers carry FastAPI's {"detail": reason};
    a handler's own body is untouched."""
    cases = [(b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n", 404, "Not Found"),
             (b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n", 405, "Method Not Allowed"),
             (b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400, "Bad Request")]
    for raw, status, reason in cases:
        with Conn(srv.port) as conn:
            conn.send(raw)
            r = conn.read_response()
            check(r.status == status, "%r: status %d, wanted %d" % (raw[:20], r.status, status))
            check(r.header("content-type") == "application/json", "content type %r" % r.header("content-type"))
            check(json.loads(r.body) == {"detail": reason}, "body %r" % r.body)
    with Conn(srv.port) as conn:
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        check(conn.read_response().body == b"Hello, World!", "a handler's text body changed")


# ================================================================ shutdown group
group("shutdown", None)


def start(binary, env=None):
    return Server(binary, env)


def hold_request(conn, length, part):
    """Starts a POST /echo of length bytes and sends part of its body; returns once the
    server holds the request (its 100 Continue says so: no fixed wait)."""
    conn.send(b"POST /echo HTTP/1.1\r\n" + H + b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % length)
    check(conn.read_response().status == 100, "no 100 Continue")
    conn.send(part)


@test
def test_shutdown_finishes_in_flight_request(binary):
    srv = start(binary)
    try:
        with Conn(srv.port, timeout=5) as conn:
            hold_request(conn, 10, b"hello")
            srv.signal(signal.SIGTERM)
            time.sleep(0.3)  # the window in which a wrong exit would show
            check(srv.alive(), "server exited with a request in flight (status %s)" % srv.proc.returncode)
            conn.send(b"world")
            check_ok(conn.read_response(), b"helloworld")
            closed(conn, 2.0)
        rc = srv.wait(10)
        check(rc is not None, "server still running 10s after the in-flight request finished")
        problem = exit_problem(rc, srv.stderr())
        check(problem is None, problem)
    finally:
        srv.kill()


@test
def test_shutdown_closes_idle_keepalive_connections(binary):
    srv = start(binary)
    try:
        idle = []
        for _ in range(3):
            c = Conn(srv.port, timeout=3)
            c.send(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
            check_ok(c.read_response(), HELLO)
            idle.append(c)
        srv.signal(signal.SIGTERM)
        for c in idle:
            with c:
                check(c.closed_within(10) is not None, "idle keep-alive connection open 10s after SIGTERM")
        rc = srv.wait(10)
        check(rc is not None, "server still running 10s after SIGTERM with only idle connections")
        problem = exit_problem(rc, srv.stderr())
        check(problem is None, problem)
    finally:
        srv.kill()


@test
def test_a_request_and_an_empty_line_in_one_read_renew_the_idle_deadline(binary):
    """The keep-alive timeout runs from the end of the last request, also when an empty line
    came after it in the same read (old clients send one after a body): 3 s after the second
    request here, not 3 s after the first (which would close it 1 s after its answer)."""
    srv = start(binary, {"TURBO_KEEPALIVE_TIMEOUT_MS": "3000"})
    try:
        with Conn(srv.port, timeout=10) as conn:
            conn.send(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
            check_ok(conn.read_response(), HELLO)
            time.sleep(2)  # the client is slow: no condition to wait for
            conn.send(b"GET / HTTP/1.1\r\n" + H + b"\r\n\r\n")
            check_ok(conn.read_response(), HELLO)
            t = conn.closed_within(6)
            check(t is not None and t > 2, "closed %s s after the second request" % t)
    finally:
        srv.kill()


@test
def test_a_head_begun_with_the_end_of_another_has_its_own_deadline(binary):
    """The header timeout runs from the first byte of each head: a request trickled over 1.2 s
    whose last read also holds the start of the next, then the next one's end 1.2 s later,
    with a 2 s timeout: both are answered (the second was taken for 2.4 s old, and got a 408).
    Each wait is 0.8 s from the timeout, for a loaded machine."""
    srv = start(binary, {"TURBO_HEADER_TIMEOUT_MS": "2000"})
    try:
        with Conn(srv.port, timeout=5) as conn:
            conn.send(b"GET / HTTP/1.1\r\n")
            time.sleep(1.2)  # the client is slow: no condition to wait for
            conn.send(H + b"\r\nGET /json HTTP/1.1\r\n")
            check_ok(conn.read_response(), HELLO)
            time.sleep(1.2)
            conn.send(H + b"\r\n")
            r = conn.read_response()
            check(r.status == 200, "the second request got %d" % r.status)
    finally:
        srv.kill()


@test
def test_shutdown_closes_silent_new_connections(binary):
    """A connection that never sent a byte is idle too: closed at shutdown,
    the exit is not held up by the header timeout."""
    srv = start(binary, {"TURBO_HEADER_TIMEOUT_MS": "20000", "TURBO_KEEPALIVE_TIMEOUT_MS": "20000"})
    try:
        with Conn(srv.port, timeout=3) as silent:
            time.sleep(0.2)
            srv.signal(signal.SIGTERM)
            check(silent.closed_within(10) is not None, "silent connection open 10s after SIGTERM")
        rc = srv.wait(10)
        check(rc is not None, "server still running 10s after SIGTERM")
        problem = exit_problem(rc, srv.stderr())
        check(problem is None, problem)
    finally:
        srv.kill()


@test
def test_sigint_is_graceful_too(binary):
    srv = start(binary)
    try:
        with Conn(srv.port, timeout=3) as conn:
            hold_request(conn, 4, b"ab")
            srv.signal(signal.SIGINT)
            time.sleep(0.2)
            conn.send(b"cd")
            check_ok(conn.read_response(), b"abcd")
        rc = srv.wait(10)
        check(rc is not None, "server still running 10s after SIGINT")
        problem = exit_problem(rc, srv.stderr())
        check(problem is None, problem)
    finally:
        srv.kill()


@test
def test_shutdown_refuses_new_connections(binary):
    srv = start(binary, {"TURBO_THREADS": "2"})
    try:
        with Conn(srv.port, timeout=3) as busy:
            hold_request(busy, 4, b"ab")
            srv.signal(signal.SIGTERM)
            # the listeners closed: a fixed wait let a loaded server take the late one first
            wait_until(lambda: refuses(srv.port), "the signal began no shutdown")
            served = None
            try:
                with Conn(srv.port, timeout=1) as late:
                    late.send(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
                    try:
                        served = late.read_response(timeout=1)
                    except TestFailure:
                        pass
            except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError):
                pass
            check(served is None, "a connection made after SIGTERM was served (%d)"
                  % (served.status if served else 0))
            busy.send(b"cd")
            check_ok(busy.read_response(), b"abcd")
        rc = srv.wait(10)
        check(rc == 0, "exit status %s after draining" % rc)
    finally:
        srv.kill()


@test
def test_health_path_says_draining_while_shutdown_waits_for_the_balancer(binary):
    """TURBO_HEALTH_PATH is answered by turbo itself, 200 "ok"; after SIGTERM it says 503
    "draining" for TURBO_DRAIN_DELAY_MS, while everything else (new connections too) is served
    as usual; then the server drains and exits."""
    srv = start(binary, {"TURBO_HEALTH_PATH": "/healthz", "TURBO_DRAIN_DELAY_MS": "4000"})
    try:
        with Conn(srv.port, timeout=3) as c:
            c.send(b"GET /healthz HTTP/1.1\r\n" + H + b"\r\n")
            r = c.read_response()
            check((r.status, r.body) == (200, b"ok\n"), r.raw[:200])
            srv.signal(signal.SIGTERM)
            deadline = time.monotonic() + 3
            while r.status == 200 and time.monotonic() < deadline:
                c.send(b"HEAD /healthz HTTP/1.1\r\n" + H + b"\r\n")
                r = c.read_response("HEAD")
            check(r.status == 503 and r.header("Connection") != "close", r.raw[:200])
            with Conn(srv.port, timeout=3) as late:
                late.send(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
                check_ok(late.read_response(), HELLO)
            c.send(b"GET /healthz HTTP/1.1\r\n" + H + b"\r\n")
            r = c.read_response()
            check((r.status, r.body) == (503, b"draining\n"), r.raw[:200])
        rc = srv.wait(10)
        check(rc == 0, "exit status %s after the drain delay" % rc)
    finally:
        srv.kill()


def as_fd_3(fd):
    """In a child before exec: fd becomes fd 3, inherited."""
    if fd == 3:
        os.set_inheritable(3, True)
    else:
        os.dup2(fd, 3)


@test
def test_socket_activation_serves_the_socket_passed_in(binary):
    """systemd's protocol: a listening socket as fd 3, LISTEN_FDS=1, LISTEN_PID the server's
    own pid (set by the shell it execs from). turbo serves it, on every loop, binding nothing."""
    passed = socket.socket()
    passed.bind(("127.0.0.1", 0))
    passed.listen(64)
    port = passed.getsockname()[1]
    env = dict(os.environ, PORT="0", TURBO_THREADS="3", LISTEN_FDS="1")
    out = tempfile.TemporaryFile()
    proc = subprocess.Popen(["sh", "-c", 'LISTEN_PID=$$ exec "$0"', binary], env=env, stdout=out,
                            stderr=out, close_fds=False, preexec_fn=lambda: as_fd_3(passed.fileno()))
    passed.close()
    try:
        deadline = time.monotonic() + 15
        while not re.search(rb"listening on http://\S+:(\d+)", written(out)):
            check(proc.poll() is None and time.monotonic() < deadline, "not listening")
            time.sleep(0.05)
        check(re.search(rb"listening on http://\S+:(\d+)", written(out)).group(1) == b"%d" % port,
              "the port announced is not the socket's")
        for _ in range(6):
            with Conn(port, timeout=3) as c:
                c.send(b"GET / HTTP/1.1\r\n" + H + b"\r\n")
                check_ok(c.read_response(), HELLO)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(5)
        problem = exit_problem(rc, written(out).decode("utf-8", "replace"))
        check(problem is None, problem)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@test
def test_default_threads_are_the_cpus_the_process_may_run_on(binary):
    """TURBO_THREADS unset: one event loop per CPU of the process's affinity (taskset, a
    container's cpuset), not one per CPU of the machine."""
    mine = sorted(os.sched_getaffinity(0))
    for cpus in ([mine[0]], mine):
        srv = Server(binary, {"TURBO_THREADS": None}, wrap=["taskset", "-c", ",".join(map(str, cpus))])
        said = LISTEN_RE.search(srv.stderr()).group(3)
        problem = srv.stop()
        want = "x %d thread%s" % (len(cpus), "" if len(cpus) == 1 else "s")
        check(said.endswith(want), "on CPUs %s: %r, not %r" % (cpus, said, want))
        check(problem is None, problem)


@test
def test_restart_hands_the_sockets_to_a_new_generation_without_refusing(binary):
    """SIGUSR2, 10 times in a row under a stream of requests on fresh connections: each time a
    new generation starts on the same sockets, says it serves, and the old one drains and
    exits. No connection is refused, no request fails, and every old generation is gone."""
    srv = start(binary)
    failures, served, running = [], [0], [True]

    def load():
        while running[0]:
            try:
                with Conn(srv.port, timeout=5) as c:
                    c.send(b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
                    r = c.read_response()
                    if r.status == 200 and r.body == HELLO:
                        served[0] += 1
                    else:
                        failures.append(r.status)
            except (OSError, TestFailure) as e:
                failures.append(repr(e))

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        pid = srv.proc.pid
        for n in range(1, 11):
            before = served[0]
            os.kill(pid, signal.SIGUSR2)
            deadline = time.monotonic() + 20
            while len(re.findall(r"restart: pid (\d+) serves; pid %d drains" % pid, srv.stderr())) < 1:
                check(time.monotonic() < deadline and not process_gone(pid), "restart %d: no new generation" % n)
                time.sleep(0.02)
            old, pid = pid, int(re.findall(r"restart: pid (\d+) serves; pid %d drains" % pid, srv.stderr())[0])
            while not process_gone(old):
                check(time.monotonic() < deadline, "restart %d: pid %d still running" % (n, old))
                time.sleep(0.02)
            while served[0] < before + 20:
                check(time.monotonic() < deadline, "restart %d: requests stopped being served" % n)
                time.sleep(0.01)
        running[0] = False
        loader.join(10)
        check(not failures, "%d failed of %d: %r" % (len(failures), served[0], failures[:5]))
        print("# 10 restarts under load: %d requests on fresh connections, none refused or failed" % served[0])
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while not process_gone(pid):
            check(time.monotonic() < deadline, "the last generation did not stop")
            time.sleep(0.02)
        problem = exit_problem(0, srv.stderr())
        check(problem is None, problem)
    finally:
        running[0] = False
        for found in re.findall(r"restart: pid (\d+) serves", srv.stderr()):
            if not process_gone(int(found)):
                os.kill(int(found), signal.SIGKILL)
        srv.kill()


@test
def test_shutdown_timeout_bounds_a_stuck_request(binary):
    srv = start(binary, {"TURBO_SHUTDOWN_TIMEOUT_MS": "500", "TURBO_BODY_TIMEOUT_MS": "30000"})
    try:
        with Conn(srv.port, timeout=3) as conn:
            hold_request(conn, 10, b"hel")
            t0 = time.monotonic()
            srv.signal(signal.SIGTERM)
            rc = srv.wait(10)
            check(rc is not None, "server still running 10s after SIGTERM (shutdown timeout 0.5s)")
            check(time.monotonic() - t0 >= 0.3, "exited before the shutdown timeout with a request in flight")
            problem = exit_problem(rc, srv.stderr())
            check(problem is None, problem)
    finally:
        srv.kill()


def refuses(port):
    """Does the server refuse new connections (its listening sockets closed)?"""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except OSError:
        return True


@test
def test_second_signal_exits_at_once(binary):
    srv = start(binary, {"TURBO_SHUTDOWN_TIMEOUT_MS": "10000"})
    try:
        with Conn(srv.port, timeout=3) as conn:
            hold_request(conn, 10, b"hel")
            srv.signal(signal.SIGTERM)
            wait_until(lambda: refuses(srv.port), "the first signal began the shutdown")
            check(srv.alive(), "exited on the first signal with a request in flight")
            srv.signal(signal.SIGINT)
            rc = srv.wait(5)  # the request in flight would hold a drain for 10 s
            check(rc is not None, "still running 5 s after a second signal")
    finally:
        srv.kill()


# ================================================================ runner

def main(argv):
    if len(argv) < 2:
        print("usage: %s SERVER_BINARY [name-substring ...]" % argv[0], file=sys.stderr)
        return 2
    binary = os.path.abspath(argv[1])
    filters = argv[2:]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))   # children inherit it
    passed = failed = 0
    t_start = time.monotonic()

    def run(name, fn, arg):
        nonlocal passed, failed
        try:
            fn(arg)
            passed += 1
        except Skip as e:
            print("SKIP %s: %s" % (name, e))
        except (TestFailure, BadResponse) as e:
            failed += 1
            print("FAIL %s: %s" % (name, e))
        except Exception as e:  # a crash in a test is a failure of that test
            failed += 1
            print("FAIL %s: %s: %s" % (name, type(e).__name__, e))
        sys.stdout.flush()

    for gname, env, tests in GROUPS:
        chosen = [(n, f) for n, f in tests if not filters or any(s in n for s in filters)]
        if not chosen:
            continue
        if gname == "ipv6" and not ipv6_loopback_available():
            print("SKIP %s: no IPv6 loopback on this machine" % ", ".join(n for n, _ in chosen))
            continue
        if env is None:
            for name, fn in chosen:
                run(name, fn, binary)
            continue
        try:
            srv = Server(binary, env)
        except (RuntimeError, OSError) as e:
            for name, _ in chosen:
                failed += 1
                print("FAIL %s: could not start server: %s" % (name, e))
            continue
        try:
            for name, fn in chosen:
                run(name, fn, srv)
        finally:
            problem = srv.stop()
        if problem:
            failed += 1
            print("FAIL test_%s_server_exits_0_on_sigterm: %s" % (gname, problem))
        else:
            passed += 1
    print("# %s: %.1fs" % (os.path.basename(binary), time.monotonic() - t_start))
    if not passed and not failed:
        print("FAIL: no test ran (none has any of: %s)" % " ".join(filters))
        failed = 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
