/* Unit tests of the HTTP/1.1 parser, the chunked decoder and the router:
   tables of byte strings and the outcome each must have, every one also
   fed split at every byte. */
#define TURBO_IMPL
#include "../turbo.h"

#include <stdio.h>

static int passed, failed;

#define CHECK(cond, ...)                                \
    do {                                                \
        if (cond) passed++;                             \
        else {                                          \
            failed++;                                   \
            printf("FAIL %s:%d: ", __FILE__, __LINE__); \
            printf(__VA_ARGS__);                        \
            printf("\n");                               \
        }                                               \
    } while (0)

static const tb__limits limits = {64, 256, 8, 1000}; /* line, head, headers, body */

typedef struct head_case {
    const char *name;
    const char *bytes;
    int expect; /* > 0: complete with this status-free outcome (1 = ok); < 0: -status */
} head_case;

#define OK 1
static const head_case head_cases[] = {
    {"simple GET", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", OK},
    {"HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", OK},
    {"leading empty line is ignored", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", OK},
    {"absolute form", "GET http://a.b/x?y HTTP/1.1\r\nHost: a.b\r\n\r\n", OK},
    {"asterisk form for OPTIONS", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", OK},
    {"asterisk form for GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", -400},
    {"higher minor version is 1.1", "GET / HTTP/1.7\r\nHost: a\r\n\r\n", OK},
    {"HTTP/2.0 is 505", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", -505},
    {"HTTP/0.9 is 505", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", -505},
    {"version without digits", "GET / HTTP/1.x\r\nHost: a\r\n\r\n", -400},
    {"lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", -400},
    {"missing version", "GET /\r\nHost: a\r\n\r\n", -400},
    {"two spaces", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", -400},
    {"trailing space", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", -400},
    {"tab as separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", -400},
    {"empty method", " / HTTP/1.1\r\nHost: a\r\n\r\n", -400},
    {"method with a bad char", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", -400},
    {"target not a path", "GET x HTTP/1.1\r\nHost: a\r\n\r\n", -400},
    {"control char in target", "GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", -400},
    {"non-ASCII in target", "GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", -400},
    {"absolute form with userinfo", "GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n", -400},
    {"absolute form with empty authority", "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", -400},
    {"absolute form with other scheme", "GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", -400},
    {"CONNECT is not implemented", "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", -501},
    {"bare LF ends the request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", -400},
    {"bare LF ends a header", "GET / HTTP/1.1\r\nHost: a\n\r\n", -400},
    {"bare CR in a header", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", -400},
    {"NUL in a header value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", -400},
    {"DEL in a header value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", -400},
    {"obs-text in a value is allowed", "GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n", OK},
    {"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", -400},
    {"tab before colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", -400},
    {"line without colon", "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", -400},
    {"empty header name", "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", -400},
    {"bad char in name", "GET / HTTP/1.1\r\nHost: a\r\nX@Y: z\r\n\r\n", -400},
    {"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", -400},
    {"missing Host in 1.1", "GET / HTTP/1.1\r\nX: a\r\n\r\n", -400},
    {"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", -400},
    {"two Hosts in 1.0", "GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", -400},
    {"Host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", -400},
    {"Host with bad port", "GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", -400},
    {"Host IPv6 literal", "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", OK},
    {"Host unclosed literal", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", -400},
    {"Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", -400},
    {"Host literal then junk", "GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", -400},
    {"Host empty literal", "GET / HTTP/1.1\r\nHost: []\r\n\r\n", -400},
    {"Host literal of a dot", "GET / HTTP/1.1\r\nHost: [.0]\r\n\r\n", -400},
    {"Host literal of a colon", "GET / HTTP/1.1\r\nHost: [:]\r\n\r\n", -400},
    {"Host literal of a name", "GET / HTTP/1.1\r\nHost: [a.b]\r\n\r\n", -400},
    {"Host literal, IPv4 alone", "GET / HTTP/1.1\r\nHost: [1.2.3.4]\r\n\r\n", -400},
    {"Host literal, two gaps", "GET / HTTP/1.1\r\nHost: [1::2::3]\r\n\r\n", -400},
    {"Host literal, 5 hex digits", "GET / HTTP/1.1\r\nHost: [12345::1]\r\n\r\n", -400},
    {"Host literal, 9 groups", "GET / HTTP/1.1\r\nHost: [1:2:3:4:5:6:7:8:9]\r\n\r\n", -400},
    {"Host literal, 7 groups no gap", "GET / HTTP/1.1\r\nHost: [1:2:3:4:5:6:7]\r\n\r\n", -400},
    {"Host literal, trailing colon", "GET / HTTP/1.1\r\nHost: [1::2:]\r\n\r\n", -400},
    {"Host literal, IPv4 octet 256", "GET / HTTP/1.1\r\nHost: [::ffff:1.2.3.256]\r\n\r\n", -400},
    {"Host literal, IPv4 leading zero", "GET / HTTP/1.1\r\nHost: [::ffff:1.2.3.04]\r\n\r\n", -400},
    {"Host literal, zone id", "GET / HTTP/1.1\r\nHost: [fe80::1%25eth0]\r\n\r\n", -400},
    {"Host literal, IPvFuture without dot", "GET / HTTP/1.1\r\nHost: [v1x]\r\n\r\n", -400},
    {"Host literal, full IPv6", "GET / HTTP/1.1\r\nHost: [2001:db8:0:0:1:0:0:1]:8080\r\n\r\n", OK},
    {"Host literal, all zeros", "GET / HTTP/1.1\r\nHost: [::]\r\n\r\n", OK},
    {"Host literal, gap at the end", "GET / HTTP/1.1\r\nHost: [1:2::]\r\n\r\n", OK},
    {"Host literal, IPv4 tail", "GET / HTTP/1.1\r\nHost: [::ffff:192.0.2.1]\r\n\r\n", OK},
    {"Host literal, IPvFuture", "GET / HTTP/1.1\r\nHost: [v1.fe80::a+en1]\r\n\r\n", OK},
    {"Host bracket in a name", "GET / HTTP/1.1\r\nHost: a[b\r\n\r\n", -400},
    {"Host with two ports", "GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n", -400},
    {"Host with an empty port", "GET / HTTP/1.1\r\nHost: a:\r\n\r\n", OK},
    {"empty Host is allowed", "GET / HTTP/1.1\r\nHost:\r\n\r\n", OK},
    {"Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", OK},
    {"two Content-Lengths", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
     -400},
    {"Content-Length list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", -400},
    {"signed Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", -400},
    {"negative Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", -400},
    {"hex Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", -400},
    {"empty Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", -400},
    {"Content-Length over the limit", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n", -413},
    {"Content-Length beyond 64 bits",
     "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n", -400},
    {"method longer than any route's",
     "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA / HTTP/1.1\r\nHost: a\r\n\r\n", -501},
    {"chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", OK},
    {"chunked any case", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ChUnKeD\r\n\r\n", OK},
    {"CL with TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
     -400},
    {"TE with CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
     -400},
    {"TE not ending in chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", -400},
    {"TE chunked then gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", -400},
    {"TE chunked twice",
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", -400},
    {"TE unknown coding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo, chunked\r\n\r\n", -501},
    {"TE gzip is not implemented", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
     -501},
    {"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", -400},
    {"TE empty is not chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", -400},
    {"TE with an empty element after", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n",
     -400},
    {"TE with an empty element before", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked\r\n\r\n",
     -400},
    {"TE with an empty element between",
     "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip,,chunked\r\n\r\n", -400},
    {"unknown expectation", "POST / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n", -417},
    {"request line at the limit",
     "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: a\r\n\r\n", OK},
    {"request line over the limit",
     "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: a\r\n\r\n", -414},
    {"too many headers",
     "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\nF: 1\r\nG: 1\r\nH: 1\r\n\r\n",
     -431},
    {"head over the limit",
     "GET / HTTP/1.1\r\nHost: a\r\nA: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nB: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nC: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n",
     -431},
    {"fragment in target", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", -400},
    {"angle bracket in target", "GET /<x> HTTP/1.1\r\nHost: a\r\n\r\n", -400},
    {"bad percent escape in target", "GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n", -400},
    {"truncated percent escape", "GET /a% HTTP/1.1\r\nHost: a\r\n\r\n", -400},
    {"sub-delims and pct-escapes in target", "GET /a;b=c,d/%41?x=1&y=@:/? HTTP/1.1\r\nHost: a\r\n\r\n", OK},
    {"binary garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", -400},
    {"Host named in any case, with OWS", "GET / HTTP/1.1\r\nhOsT: \ta:80 \t\r\n\r\n", OK},
    {"version cut short by a bare LF", "GET / HTTP/1.\n\r\n", -400},
    {"bad escape where the line has no room left",
     "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa%zz HTTP/1.1\r\nHost: a\r\n\r\n", -414},
};

static size_t case_len(const head_case *c) {
    /* The NUL case carries an embedded NUL: measure up to the final CRLFCRLF. */
    const char *s = c->bytes;
    size_t n = strlen(s);
    if (strstr(c->name, "NUL")) n = n + 1 + strlen(s + n + 1);
    return n;
}

static void test_head_table(void) {
    size_t i;
    for (i = 0; i < sizeof head_cases / sizeof *head_cases; i++) {
        const head_case *c = &head_cases[i];
        size_t n = case_len(c), k;
        turbo_req r = {0};
        tb__framing f;
        int rc = tb__parse_head(c->bytes, n, &r, &f, &limits), split_ok = 1;
        int got = rc > 0 ? OK : rc;
        CHECK(got == c->expect, "%s: expected %d, got %d", c->name, c->expect, rc);
        if (rc > 0) CHECK((size_t)rc == n, "%s: consumed %d of %zu", c->name, rc, n);
        for (k = 0; k < n; k++) { /* every prefix: need more, or the same error */
            int p = tb__parse_head(c->bytes, k, &r, &f, &limits);
            if (p > 0 || (p < 0 && p != c->expect)) {
                split_ok = 0;
                printf("  %s: prefix of %zu bytes gave %d\n", c->name, k, p);
                break;
            }
        }
        CHECK(split_ok, "%s: split at every byte", c->name);
    }
}

/* Values are checked many bytes at a time (16 with SSE2, the last ones by
   reading back from the head's end; 8 in the portable build): every byte,
   at every offset of values of every length up to 40, last in the head or
   not, is judged as RFC 9110 5.5 says, and the value is kept trimmed. */
static void test_value_bytes_at_every_offset(void) {
    static const char *const heads[] = {"GET / HTTP/1.1\r\nHost: a\r\nX: ", "GET / HTTP/1.1\r\nX: "};
    static const char *const tails[] = {"\r\n\r\n", "\r\nHost: a\r\nY: 0123456789abcdef\r\n\r\n"};
    char buf[160];
    size_t len, pos, b, t, head, tail, n, judged = 0, wrong = 0;
    for (t = 0; t < 2; t++)
        for (len = 1; len <= 40; len++)
            for (pos = 0; pos < len; pos++)
                for (b = 0; b < 256; b++) {
                    turbo_req r = {0};
                    tb__framing f;
                    turbo_str v;
                    size_t from = 0, to = len;
                    int rc, bad = (b < 0x20 && b != '\t') || b == 0x7f;
                    head = strlen(heads[t]);
                    tail = strlen(tails[t]);
                    memcpy(buf, heads[t], head);
                    memset(buf + head, 'v', len);
                    buf[head + pos] = (char)b;
                    memcpy(buf + head + len, tails[t], tail);
                    n = head + len + tail;
                    rc = tb__parse_head(buf, n, &r, &f, &limits);
                    v = turbo_req_header(&r, "x");
                    while (from < to && (buf[head + from] == ' ' || buf[head + from] == '\t')) from++;
                    while (to > from && (buf[head + to - 1] == ' ' || buf[head + to - 1] == '\t')) to--;
                    judged++;
                    if (bad ? rc != -400 : rc != (int)n || v.ptr != buf + head + from || v.len != to - from) {
                        if (wrong++ < 5)
                            printf("  byte 0x%02zx at offset %zu of a value of %zu (%s): %d\n", b, pos, len,
                                   t ? "more lines after" : "last", rc);
                    }
                }
    CHECK(judged == 2 * 820 * 256 && !wrong, "%zu of %zu values judged wrongly", wrong, judged);
}

/* turbo_header_check judges a handler's header values the same way, short
   ones (by bytes or words) and long ones: every byte at every offset. */
static void test_header_check_at_every_offset(void) {
    char value[40];
    size_t len, pos, b, judged = 0, wrong = 0;
    for (len = 1; len <= sizeof value; len++)
        for (pos = 0; pos < len; pos++)
            for (b = 0; b < 256; b++) {
                int bad = (b < 0x20 && b != '\t') || b == 0x7f;
                memset(value, 'v', len);
                value[pos] = (char)b;
                judged++;
                if (turbo_header_check("X", 1, value, len) != (bad ? TURBO_HEADER_BAD_VALUE : 0) &&
                    wrong++ < 5)
                    printf("  byte 0x%02zx at offset %zu of a value of %zu\n", b, pos, len);
            }
    CHECK(judged == 820 * 256 && !wrong, "%zu of %zu values judged wrongly", wrong, judged);
}

/* A head cut by max_head inside a value: the scans stop at the limit (the
   last ones read back from it), and the answer is 431 however the bytes
   before it look, or 400 for a bad byte before it. */
static void test_value_cut_by_max_head(void) {
    static const tb__limits tight = {64, 40, 8, 1000};
    char buf[80];
    size_t cut, head = strlen("GET / HTTP/1.1\r\nHost: a\r\nX: ");
    for (cut = 0; cut < 30; cut++) {
        turbo_req r = {0};
        tb__framing f;
        int rc;
        memcpy(buf, "GET / HTTP/1.1\r\nHost: a\r\nX: ", head);
        memset(buf + head, 'v', sizeof buf - head);
        buf[head + cut] = 0x01;
        rc = tb__parse_head(buf, sizeof buf, &r, &f, &tight);
        CHECK(rc == (head + cut < tight.max_head + 2 ? -400 : -431), "control byte at %zu of a cut value: %d",
              head + cut, rc);
    }
}

/* Names are read many bytes at a time too (letters, digits and "-"; the
   other bytes one at a time): a byte that is no tchar, at any offset of a
   name of any length up to 40, is a 400; ":" ends the name; any tchar
   belongs to it. */
static void test_name_bytes_at_every_offset(void) {
    static const char tchars[] = "!#$%&'*+-.^_`|~";
    char buf[160];
    size_t len, pos, b, head = strlen("GET / HTTP/1.1\r\nHost: a\r\n"), n, judged = 0, wrong = 0;
    for (len = 1; len <= 40; len++)
        for (pos = 0; pos < len; pos++)
            for (b = 0; b < 256; b++) {
                turbo_req r = {0};
                tb__framing f;
                int tchar = (b >= '0' && b <= '9') || ((b | 0x20) >= 'a' && (b | 0x20) <= 'z') ||
                            (b && strchr(tchars, (int)b));
                int rc, expect = tchar || (b == ':' && pos > 0) ? 0 : -400;
                size_t name_len = b == ':' ? pos : len;
                memcpy(buf, "GET / HTTP/1.1\r\nHost: a\r\n", head);
                memset(buf + head, 'n', len);
                buf[head + pos] = (char)b;
                memcpy(buf + head + len, ": v\r\n\r\n", 7);
                n = head + len + 7;
                rc = tb__parse_head(buf, n, &r, &f, &limits);
                judged++;
                if (expect ? rc != expect
                           : rc != (int)n || r.header_count != 2 || r.header_name[1].ptr != buf + head ||
                                 r.header_name[1].len != name_len) {
                    if (wrong++ < 5)
                        printf("  byte 0x%02zx at offset %zu of a name of %zu: %d\n", b, pos, len, rc);
                }
            }
    CHECK(judged == 820 * 256 && !wrong, "%zu of %zu names judged wrongly", wrong, judged);
}

/* Targets are read 16 bytes at a time too (letters, digits, "-", "." and
   "/"; the other bytes one at a time): any byte at any offset of a path of
   any length up to 40 is judged as RFC 9112 3.2 says (a pchar, "/" or "?";
   "%" without two hex digits after it, as here, is no escape), or is one
   of the bytes browsers send unescaped ("[ ] { } | \\ ^ `"), and the path
   ends at the first "?". */
static void test_target_bytes_at_every_offset(void) {
    static const char others[] = "-._~!$&'()*+,;=:@/?[]{}|\\^`", tail[] = " HTTP/1.1\r\nHost: a\r\n\r\n";
    char buf[160];
    size_t len, pos, b, n, judged = 0, wrong = 0;
    for (len = 1; len <= 40; len++)
        for (pos = 0; pos < len; pos++)
            for (b = 0; b < 256; b++) {
                turbo_req r = {0};
                tb__framing f;
                int valid = (b >= '0' && b <= '9') || ((b | 0x20) >= 'a' && (b | 0x20) <= 'z') ||
                            (b && strchr(others, (int)b));
                size_t path_len = 1 + (b == '?' ? pos : len);
                int rc;
                memcpy(buf, "GET /", 5);
                memset(buf + 5, 'p', len);
                buf[5 + pos] = (char)b;
                memcpy(buf + 5 + len, tail, sizeof tail - 1);
                n = 5 + len + sizeof tail - 1;
                rc = tb__parse_head(buf, n, &r, &f, &limits);
                judged++;
                if (valid ? rc != (int)n || r.path.ptr != buf + 4 || r.path.len != path_len ||
                                r.target.len != len + 1
                          : rc != -400) {
                    if (wrong++ < 5)
                        printf("  byte 0x%02zx at offset %zu of a path of %zu: %d\n", b, pos, len, rc);
                }
            }
    CHECK(judged == 820 * 256 && !wrong, "%zu of %zu targets judged wrongly", wrong, judged);
}

static void test_head_fields(void) {
    const char *s = "POST http://h:1/a/b?x=1&y HTTP/1.1\r\nHost: h:1\r\nX-Pad:  v  \r\n"
                    "Connection: close\r\nContent-Length: 12\r\nExpect: 100-continue\r\n\r\n";
    turbo_req r = {0};
    tb__framing f;
    int rc = tb__parse_head(s, strlen(s), &r, &f, &limits);
    turbo_str pad;
    CHECK(rc == (int)strlen(s), "fields: parsed %d", rc);
    CHECK(r.method.len == 4 && !memcmp(r.method.ptr, "POST", 4), "method");
    CHECK(r.path.len == 4 && !memcmp(r.path.ptr, "/a/b", 4), "absolute-form path");
    CHECK(r.query.len == 5 && !memcmp(r.query.ptr, "x=1&y", 5), "query kept apart");
    CHECK(r.version == 11, "version");
    pad = turbo_req_header(&r, "x-pad");
    CHECK(pad.len == 1 && pad.ptr[0] == 'v', "value trimmed, name case-insensitive");
    CHECK(f.content_length == 12 && !f.chunked, "content length");
    CHECK(!f.keep_alive, "Connection: close");
    CHECK(f.expect_continue, "100-continue");
}

static void test_keep_alive_rules(void) {
    turbo_req r = {0};
    tb__framing f;
    const char *a = "GET / HTTP/1.0\r\n\r\n", *b = "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n";
    const char *c = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    tb__parse_head(a, strlen(a), &r, &f, &limits);
    CHECK(!f.keep_alive, "HTTP/1.0 closes by default");
    tb__parse_head(b, strlen(b), &r, &f, &limits);
    CHECK(f.keep_alive, "HTTP/1.0 with keep-alive stays open");
    tb__parse_head(c, strlen(c), &r, &f, &limits);
    CHECK(f.keep_alive, "HTTP/1.1 stays open by default");
}

/* The parser notes the lines that may frame the message (by a name's
   length and first letter) for tb__apply_headers; past TB__FRAMING_NOTED
   of them every line is looked at, so none is missed. */
static void test_framing_headers_past_the_noted_lines(void) {
    static const tb__limits roomy = {64, 4096, 100, 1000};
    char head[2048];
    size_t before;
    for (before = TB__FRAMING_NOTED - 1; before <= TB__FRAMING_NOTED + 1; before++) {
        static const char *const last[] = {"Connection: close\r\n",
                                           "Content-Length: 5\r\nContent-Length: 5\r\n",
                                           "Transfer-Encoding: chunked\r\n"};
        size_t k, i;
        for (k = 0; k < 3; k++) {
            turbo_req r = {0};
            tb__framing f;
            int rc;
            strcpy(head, "POST / HTTP/1.1\r\nHost: a\r\n");
            for (i = 0; i < before; i++) strcat(head, "Cache-Ctrl: x\r\n"); /* noted: 10 bytes, a "c" */
            strcat(head, last[k]);
            strcat(head, "\r\n");
            rc = tb__parse_head(head, strlen(head), &r, &f, &roomy);
            if (k == 0)
                CHECK(rc > 0 && !f.keep_alive, "Connection: close after %zu noted lines: %d", before, rc);
            if (k == 1) CHECK(rc == -400, "two Content-Lengths after %zu noted lines: %d", before, rc);
            if (k == 2) CHECK(rc > 0 && f.chunked, "chunked after %zu noted lines: %d", before, rc);
        }
    }
}

/* Names, tokens and media types are compared ignoring ASCII case, from 8
   bytes on a word at a time: every pair of bytes, at every offset of
   strings of the lengths around a word's, as a byte-wise reference says. */
static void test_case_blind_comparison(void) {
    static const size_t lengths[] = {1, 7, 8, 9, 15, 16, 17};
    char a[17], b[17];
    size_t k, pos, wrong = 0, judged = 0;
    unsigned x, y;
    for (k = 0; k < sizeof lengths / sizeof *lengths; k++)
        for (pos = 0; pos < lengths[k]; pos++)
            for (x = 0; x < 256; x++)
                for (y = 0; y < 256; y++) {
                    int letters = (x | 32) >= 'a' && (x | 32) <= 'z',
                        expect = x == y || (letters && (x ^ y) == 32);
                    memset(a, 'k', sizeof a);
                    memset(b, 'K', sizeof b);
                    a[pos] = (char)x;
                    b[pos] = (char)y;
                    judged++;
                    if (tb__ieq_n(a, b, lengths[k]) != expect && wrong++ < 5)
                        printf("  0x%02x vs 0x%02x at %zu of %zu\n", x, y, pos, lengths[k]);
                }
    CHECK(!wrong && judged == 73 * 65536, "%zu of %zu comparisons wrong", wrong, judged);
    CHECK(tb__ieq("Content-Length", 14, "content-length") &&
              !tb__ieq("Content-Length", 13, "content-length") &&
              !tb__ieq("Content-Lengths", 15, "content-length"),
          "the lengths must match too");
}

/* tb__equal reads words, the last overlapping the one before: a differing
   byte at every offset of every length up to 40 is seen, and equal bytes
   are equal. */
static void test_equal_at_every_offset(void) {
    char a[40], b[40];
    size_t n, pos, wrong = 0, judged = 0;
    for (n = 0; n <= sizeof a; n++) {
        memset(a, 'e', sizeof a);
        memset(b, 'e', sizeof b);
        judged++;
        if (!tb__equal(a, b, n)) wrong++;
        for (pos = 0; pos < n; pos++) {
            b[pos] = 'f';
            judged++;
            if (tb__equal(a, b, n) && wrong++ < 5) printf("  0x66 at %zu of %zu not seen\n", pos, n);
            b[pos] = 'e';
        }
    }
    CHECK(!wrong && judged == 41 + 820, "%zu of %zu comparisons wrong", wrong, judged);
}

/* The parser's verdict on a request whose Host is value, parsed with r. */
static int parse_with_host(turbo_req *r, const char *value) {
    char head[160];
    tb__framing f;
    int n = snprintf(head, sizeof head, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", value);
    return tb__parse_head(head, (size_t)n, r, &f, &limits);
}

/* The parser keeps the last valid Host value of its request, so that the
   same bytes again need only a comparison. A value of the same length
   that differs anywhere is still checked, a second Host is still refused,
   and around the kept size, and over a random mix of values, the verdicts
   are those of a request with nothing kept. */
static void test_host_kept_from_the_last_request(void) {
    static const char good[] = "api.example.com:8080", alphabet[] = "ab.-:9@/[] %_~!";
    char head[160], host[48];
    turbo_req r = {0};
    tb__framing f;
    size_t pos, len, i, wrong = 0;
    uint32_t seed = 7;
    int expect, rc;
    CHECK(parse_with_host(&r, good) > 0, "a valid Host");
    CHECK(parse_with_host(&r, good) > 0, "the same Host again");
    for (pos = 0; pos < strlen(good); pos++) {
        strcpy(host, good);
        host[pos] = '/';
        if ((rc = parse_with_host(&r, host)) != -400 && wrong++ < 5)
            printf("  \"%s\" after \"%s\": %d\n", host, good, rc);
    }
    CHECK(!wrong, "a bad byte at every offset of a kept Host's length is a 400");
    snprintf(head, sizeof head, "GET / HTTP/1.1\r\nHost: %s\r\nHost: %s\r\n\r\n", good, good);
    CHECK(tb__parse_head(head, strlen(head), &r, &f, &limits) == -400, "two Hosts, both the kept one");
    for (len = 28; len <= 34; len++) { /* around TB__HOST_SEEN */
        memset(host, 'h', len);
        host[len] = 0;
        CHECK(parse_with_host(&r, host) > 0, "a Host of %zu", len);
        CHECK(parse_with_host(&r, host) > 0, "it again, %zu", len);
        host[len - 1] = '@';
        CHECK(parse_with_host(&r, host) == -400, "a bad last byte, %zu", len);
    }
    for (i = 0; i < 20000; i++) {
        turbo_req fresh = {0};
        len = (seed = seed * 1103515245u + 12345u) >> 16 & 7;
        for (pos = 0; pos < len; pos++)
            host[pos] = alphabet[((seed = seed * 1103515245u + 12345u) >> 16) % 15];
        host[len] = 0;
        expect = parse_with_host(&fresh, host);
        if ((rc = parse_with_host(&r, host)) != expect && wrong++ < 5)
            printf("  \"%s\": %d, %d with nothing kept\n", host, rc, expect);
    }
    CHECK(!wrong, "random Hosts judged as with nothing kept");
}

/* The views and framing of two parses, as offsets from their buffers. */
static int same_parse(const turbo_req *a, const tb__framing *fa, const char *abuf, const turbo_req *b,
                      const tb__framing *fb, const char *bbuf) {
    int i;
    if (a->header_count != b->header_count || memcmp(fa, fb, sizeof *fa) != 0) return 0;
    for (i = 0; i < a->header_count; i++)
        if (a->header_name[i].ptr - abuf != b->header_name[i].ptr - bbuf ||
            a->header_name[i].len != b->header_name[i].len ||
            a->header_value[i].ptr - abuf != b->header_value[i].ptr - bbuf ||
            a->header_value[i].len != b->header_value[i].len)
            return 0;
    return 1;
}

/* The parser keeps the header lines of the last head it took, and takes
   the same bytes again as found then: in another buffer, after another
   request line, as long as the version and max_headers are the same and
   the head still fits in max_head. Views rewritten since (an absolute-form
   target's Host, a head refused halfway) are found again, and over random
   changes to a kept head the verdicts are those of a request with nothing
   kept. */
static void test_lines_kept_from_the_last_request(void) {
    static const char lines[] = "Host: a.b\r\nContent-Length: 3\r\nX-Y: z\r\n\r\n";
    static const tb__limits tight = {64, 256, 2, 1000}, short_head = {64, 80, 8, 1000},
                            line_past_head = {64, 20, 8, 1000};
    char one[256], two[300], mutated[256];
    turbo_req r = {0};
    tb__framing f, fresh_f;
    int n, rc, i, wrong = 0;
    uint32_t seed = 11;
    n = snprintf(one, sizeof one, "POST /a HTTP/1.1\r\n%s", lines);
    CHECK(tb__parse_head(one, (size_t)n, &r, &f, &limits) == n && f.content_length == 3, "a head");
    n = snprintf(two, sizeof two, "PUT /bb/c?d=1 HTTP/1.1\r\n%s", lines);
    rc = tb__parse_head(two, (size_t)n, &r, &f, &limits);
    CHECK(rc == n && f.content_length == 3 && f.keep_alive && r.header_count == 3, "its lines again: %d", rc);
    CHECK(r.header_value[1].ptr == two + 24 + 27 && r.header_value[1].len == 1 &&
              r.header_name[2].ptr == two + 24 + 30 && r.header_name[2].len == 3,
          "views into the new head");
    n = snprintf(two, sizeof two, "PUT / HTTP/1.0\r\n%s", lines);
    CHECK(tb__parse_head(two, (size_t)n, &r, &f, &limits) == n && !f.keep_alive, "HTTP/1.0: not kept alive");
    n = snprintf(two, sizeof two, "GET / HTTP/1.0\r\nX: 1\r\n\r\n");
    CHECK(tb__parse_head(two, (size_t)n, &r, &f, &limits) == n, "no Host in HTTP/1.0");
    n = snprintf(two, sizeof two, "GET / HTTP/1.1\r\nX: 1\r\n\r\n");
    CHECK(tb__parse_head(two, (size_t)n, &r, &f, &limits) == -400, "the same lines in HTTP/1.1 need a Host");
    n = snprintf(two, sizeof two, "GET / HTTP/1.1\r\n%s", lines);
    CHECK(tb__parse_head(two, (size_t)n, &r, &f, &limits) == n, "kept again");
    CHECK(tb__parse_head(two, (size_t)n, &r, &f, &tight) == -431, "three lines over a limit of two");
    n = snprintf(two, sizeof two, "GET /%0200d HTTP/1.1\r\n%s", 0, lines);
    CHECK(tb__parse_head(two, (size_t)n, &r, &f, &limits) == -414, "a long line first");
    n = snprintf(two, sizeof two, "GET /%050d HTTP/1.1\r\n%s", 0, lines);
    CHECK(tb__parse_head(two, (size_t)n, &r, &f, &limits) == n, "kept with a longer line");
    n = snprintf(two, sizeof two, "GET / HTTP/1.1\r\n%s", lines);
    CHECK(tb__parse_head(two, (size_t)n, &r, &f, &short_head) == n, "kept, under a max_head of 80");
    n = snprintf(two, sizeof two, "GET /%040d HTTP/1.1\r\n%s", 0, lines);
    CHECK(tb__parse_head(two, (size_t)n, &r, &f, &short_head) == -431, "past it after a longer line");
    for (i = 1; i < n; i++)
        if ((rc = tb__parse_head(two, (size_t)i, &r, &f, &short_head)) != 0 && rc != -431) break;
    CHECK(i == n, "every prefix of it: need more or 431 (%d at %d)", rc, i);
    n = snprintf(two, sizeof two, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK(tb__parse_head(two, (size_t)n, &r, &f, &limits) == n, "kept: a Host line");
    n = snprintf(two, sizeof two, "GET /%040d HTTP/1.1\r\nHost: a\r\n\r\n", 0);
    CHECK(tb__parse_head(two, (size_t)n, &r, &f, &line_past_head) == -431, "a request line past max_head");
    /* In the same place: the absolute form's Host is the target's, then the line's again. */
    n = snprintf(one, sizeof one, "GET /0123456789 HTTP/1.1\r\n%s", lines);
    CHECK(tb__parse_head(one, (size_t)n, &r, &f, &limits) == n, "origin form");
    n = snprintf(one, sizeof one, "GET http://c.d/ HTTP/1.1\r\n%s", lines);
    CHECK(tb__parse_head(one, (size_t)n, &r, &f, &limits) == n && r.header_value[0].len == 3 &&
              !memcmp(r.header_value[0].ptr, "c.d", 3),
          "absolute form: the target's authority");
    n = snprintf(one, sizeof one, "GET /0123456789 HTTP/1.1\r\n%s", lines);
    CHECK(tb__parse_head(one, (size_t)n, &r, &f, &limits) == n && r.header_value[0].ptr == one + 32 &&
              r.header_value[0].len == 3,
          "origin form again: the line's");
    n = snprintf(one, sizeof one, "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC : 3\r\n\r\n");
    CHECK(tb__parse_head(one, (size_t)n, &r, &f, &limits) == -400, "a head refused at its third line");
    n = snprintf(one, sizeof one, "GET / HTTP/1.1\r\n%s", lines);
    CHECK(tb__parse_head(one, (size_t)n, &r, &f, &limits) == n && r.header_name[0].ptr == one + 16 &&
              r.header_name[1].ptr == one + 27 && r.header_value[2].ptr == one + 51,
          "the kept lines in the same place again");
    for (i = 0; i < 20000; i++) {
        turbo_req fresh = {0};
        int at = 16 + (int)(((seed = seed * 1103515245u + 12345u) >> 16) % (unsigned)(sizeof lines - 1)),
            expect;
        n = snprintf(mutated, sizeof mutated, "GET / HTTP/1.1\r\n%s", lines);
        if (i % 3) mutated[at] = "a:\r\n \t\x01-H0"[((seed = seed * 1103515245u + 12345u) >> 16) % 10];
        expect = tb__parse_head(mutated, (size_t)n, &fresh, &fresh_f, &limits);
        rc = tb__parse_head(mutated, (size_t)n, &r, &f, &limits);
        if ((rc != expect || (rc > 0 && !same_parse(&r, &f, mutated, &fresh, &fresh_f, mutated))) &&
            wrong++ < 5)
            printf("  byte %d of \"%s\": %d, %d with nothing kept\n", at, mutated, rc, expect);
    }
    CHECK(!wrong, "changed heads judged as with nothing kept");
    memset(&r, 0, sizeof r);
    for (i = 0; i < 10; i++) { /* an ID in every head: kept only now and then */
        n = snprintf(one, sizeof one, "GET / HTTP/1.1\r\nHost: a\r\nX-Id: %d\r\n\r\n", i);
        tb__parse_head(one, (size_t)n, &r, &f, &limits);
    }
    CHECK(r.seen.version == 0 && r.seen.misses == 10, "10 heads that differ: none kept (%d misses)",
          r.seen.misses);
    for (i = 0; i < 64 && r.seen.misses; i++) /* the same head again and again: kept again, then taken */
        CHECK(tb__parse_head(one, (size_t)n, &r, &f, &limits) == n, "the last head again");
    CHECK(i < 64 && r.seen.version == 11, "taken again after %d", i);
}

typedef struct chunk_case {
    const char *name;
    const char *raw;
    int expect;          /* 1 complete, or -status */
    const char *decoded; /* when complete */
} chunk_case;

static const chunk_case chunk_cases[] = {
    {"one chunk", "5\r\nhello\r\n0\r\n\r\n", 1, "hello"},
    {"two chunks", "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", 1, "abcde"},
    {"upper-case hex", "A\r\n0123456789\r\n0\r\n\r\n", 1, "0123456789"},
    {"leading zeros", "0005\r\nhello\r\n0\r\n\r\n", 1, "hello"},
    {"extension", "5;name=value\r\nhello\r\n0;x\r\n\r\n", 1, "hello"},
    {"quoted extension", "5;n=\"a b\"\r\nhello\r\n0\r\n\r\n", 1, "hello"},
    {"trailers", "5\r\nhello\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\n", 1, "hello"},
    {"empty body", "0\r\n\r\n", 1, ""},
    {"bad hex", "zz\r\nhello\r\n0\r\n\r\n", -400, NULL},
    {"negative size", "-1\r\nx\r\n0\r\n\r\n", -400, NULL},
    {"empty size", "\r\nhello\r\n0\r\n\r\n", -400, NULL},
    {"size then junk", "5x\r\nhello\r\n0\r\n\r\n", -400, NULL},
    {"data longer than size", "3\r\nhello\r\n0\r\n\r\n", -400, NULL},
    {"missing CRLF after data", "5\r\nhello0\r\n\r\n", -400, NULL},
    {"bare LF after size", "5\nhello\r\n0\r\n\r\n", -400, NULL},
    {"control char in extension", "5;\x01\r\nhello\r\n0\r\n\r\n", -400, NULL},
    {"over the body limit", "3e9\r\n", -413, NULL},
    {"overflowing size", "ffffffffffffffffffff\r\n", -413, NULL},
    {"bad trailer", "0\r\n\x01\r\n\r\n", -400, NULL},
    {"trailer without colon", "0\r\nNoColon\r\n\r\n", -400, NULL},
    {"trailer with space before colon", "0\r\nX-T : 1\r\n\r\n", -400, NULL},
    {"BWS before extension", "5 ;a=b\r\nhello\r\n0\r\n\r\n", 1, "hello"},
    {"space after size", "5 \r\nhello\r\n0\r\n\r\n", -400, NULL},
    {"bare semicolon", "5;\r\nhello\r\n0\r\n\r\n", -400, NULL},
    {"extension with bad char", "5;a@b\r\nhello\r\n0\r\n\r\n", -400, NULL},
    {"unterminated quote", "5;a=\"b\r\nhello\r\n0\r\n\r\n", -400, NULL},
    {"escaped quote in extension", "5;a=\"b\\\"c\"\r\nhello\r\n0\r\n\r\n", 1, "hello"},
};

static void test_chunk_table(void) {
    size_t i;
    for (i = 0; i < sizeof chunk_cases / sizeof *chunk_cases; i++) {
        const chunk_case *c = &chunk_cases[i];
        size_t n = strlen(c->raw), k;
        char buf[256];
        tb__chunked st;
        int rc = 0, early = 0;
        memcpy(buf, c->raw, n);
        memset(&st, 0, sizeof st);
        for (k = 1; k <= n && rc == 0; k++) { /* bytes arrive one at a time */
            rc = tb__dechunk(buf, k, &st, &limits);
            if (rc == 1 && k < n) early = 1;
        }
        CHECK(rc == c->expect, "%s: expected %d, got %d", c->name, c->expect, rc);
        CHECK(!early, "%s: complete before its end", c->name);
        if (c->expect == 1 && rc == 1) {
            CHECK(st.src == n, "%s: consumed %zu of %zu", c->name, st.src, n);
            CHECK(st.dst == strlen(c->decoded) && !memcmp(buf, c->decoded, st.dst), "%s: decoded \"%.*s\"",
                  c->name, (int)st.dst, buf);
        }
    }
}

static void test_endless_empty_lines_are_431(void) {
    char buf[600];
    turbo_req r = {0};
    tb__framing f;
    memset(buf, 0, sizeof buf);
    for (size_t i = 0; i + 1 < sizeof buf; i += 2) buf[i] = '\r', buf[i + 1] = '\n';
    CHECK(tb__parse_head(buf, sizeof buf, &r, &f, &limits) == -431, "CRLF flood must hit the head limit");
}

static void test_chunk_framing_overhead_is_bounded(void) {
    /* One-byte chunks with long extensions: raw bytes pile up far beyond
       the decoded body unless the decoder bounds them. */
    static char buf[40000];
    tb__chunked st;
    size_t n = 0;
    int rc = 0;
    while (n + 300 < sizeof buf) {
        n += (size_t)sprintf(buf + n, "1;");
        memset(buf + n, 'a', 250);
        n += 250;
        n += (size_t)sprintf(buf + n, "\r\nX\r\n");
    }
    memset(&st, 0, sizeof st);
    rc = tb__dechunk(buf, n, &st, &limits);
    CHECK(rc == -413, "framing overhead beyond body + head limits is 413, got %d", rc);
}

static void test_chunk_stops_at_message_end(void) {
    char buf[64] = "2\r\nab\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
    tb__chunked st;
    memset(&st, 0, sizeof st);
    CHECK(tb__dechunk(buf, strlen(buf), &st, &limits) == 1, "complete");
    CHECK(st.src == 12 && !memcmp(buf + st.src, "GET", 3), "next request left intact");
}

/* ---- router ---- */

static void h_a(turbo_req *r, turbo_res *s, void *u) { (void)r, (void)s, (void)u; }

/* The path sits in a head as the parser leaves it, followed by the rest of
   the request line, which tb__find may read a word of. */
static int route(turbo_server *s, const char *method, const char *path, turbo_req *r,
                 const tb__node **allow) {
    static char head[256];
    const tb__handler *h;
    size_t n = strlen(path);
    if (n + 11 > sizeof head) return -1;
    memcpy(head, path, n);
    memcpy(head + n, " HTTP/1.1\r\n", 11);
    r->method.ptr = method;
    r->method.len = strlen(method);
    r->std_method = tb__std_method(r->method);
    r->path.ptr = head;
    r->path.len = n;
    h = tb__route(s->root, r, allow);
    return h ? (int)(intptr_t)h->user : 0;
}

static int param_is(const turbo_req *r, const char *name, const char *value) {
    turbo_str v = turbo_req_param(r, name);
    return v.ptr && v.len == strlen(value) && !memcmp(v.ptr, value, v.len);
}

/* "/long/" then len - 1 "k"s and last. */
static void long_name(char *name, int len, int last) {
    memcpy(name, "/long/", 6);
    memset(name + 6, 'k', (size_t)len - 1);
    name[5 + len] = (char)last;
    name[6 + len] = 0;
}

static void test_router(void) {
    turbo_server *s = turbo_new(NULL);
    turbo_req r = {0};
    const tb__node *allow;
    turbo_buf b = {NULL, 0, 0, 0};
    char name[32];
    int i, ok = 1;
    CHECK(turbo_get(s, "/", h_a, (void *)1) == 0, "root");
    CHECK(turbo_get(s, "/users", h_a, (void *)2) == 0, "static");
    CHECK(turbo_get(s, "/users/{id}", h_a, (void *)3) == 0, "capture");
    CHECK(turbo_get(s, "/users/me", h_a, (void *)4) == 0, "static beside a capture");
    CHECK(turbo_post(s, "/users/{id}", h_a, (void *)5) == 0, "second method");
    CHECK(turbo_get(s, "/users/{id}/posts/{post}", h_a, (void *)6) == 0, "two captures");
    CHECK(turbo_get(s, "/files/{path...}", h_a, (void *)7) == 0, "tail");
    CHECK(turbo_get(s, "/a/b/c", h_a, (void *)8) == 0, "deep static");
    CHECK(turbo_get(s, "/a/{x}/d", h_a, (void *)9) == 0, "capture needing backtracking");
    CHECK(turbo_get(s, "/slash/", h_a, (void *)10) == 0, "trailing slash");
    CHECK(turbo_route(s, "PURGE", "/cache", h_a, (void *)11) == 0, "custom method");

    CHECK(route(s, "GET", "/", &r, &allow) == 1, "GET /");
    CHECK(route(s, "GET", "/users", &r, &allow) == 2, "GET /users");
    CHECK(route(s, "GET", "/users/42", &r, &allow) == 3 && param_is(&r, "id", "42"), "capture value");
    CHECK(route(s, "GET", "/users/me", &r, &allow) == 4, "static wins");
    CHECK(route(s, "POST", "/users/7", &r, &allow) == 5, "method picks handler");
    CHECK(route(s, "HEAD", "/users/7", &r, &allow) == 3, "HEAD served by GET");
    CHECK(route(s, "GET", "/users/1/posts/2", &r, &allow) == 6 && param_is(&r, "id", "1") &&
              param_is(&r, "post", "2") && r.param_count == 2,
          "two captures");
    CHECK(route(s, "GET", "/files/a/b/c.txt", &r, &allow) == 7 && param_is(&r, "path", "a/b/c.txt"),
          "tail takes the rest");
    CHECK(route(s, "GET", "/files/", &r, &allow) == 7 && param_is(&r, "path", ""), "empty tail");
    CHECK(route(s, "GET", "/a/b/c", &r, &allow) == 8, "deep static");
    CHECK(route(s, "GET", "/a/b/d", &r, &allow) == 9 && param_is(&r, "x", "b"), "backtracks");
    CHECK(route(s, "GET", "/slash/", &r, &allow) == 10, "trailing slash matches");
    CHECK(route(s, "GET", "/slash", &r, &allow) == 0 && !allow, "no slash is another path");
    CHECK(route(s, "GET", "/users/", &r, &allow) == 0 && !allow, "empty capture is 404");
    CHECK(route(s, "GET", "/nope", &r, &allow) == 0 && !allow, "404");
    CHECK(route(s, "DELETE", "/users/1", &r, &allow) == 0 && allow, "405");
    tb__allow_value(allow, &b);
    CHECK(b.len == strlen("GET, POST, HEAD, OPTIONS") && !memcmp(b.data, "GET, POST, HEAD, OPTIONS", b.len),
          "Allow: %.*s", (int)b.len, b.data);
    turbo_buf_free(&b);
    CHECK(route(s, "PURGE", "/cache", &r, &allow) == 11, "custom method");
    {
        turbo_server *t = turbo_new(NULL);
        turbo_get(t, "/{rest...}", h_a, (void *)12);
        CHECK(route(t, "GET", "/", &r, &allow) == 12 && param_is(&r, "rest", ""),
              "a root tail takes \"/\" with an empty capture");
        CHECK(route(t, "GET", "/a/b", &r, &allow) == 12 && param_is(&r, "rest", "a/b"), "root tail");
        turbo_free(t);
    }
    CHECK(tb__known_method(s->methods, s->nmethods, r.method), "custom method is known");

    /* Many routes: lookups still find each one. */
    for (i = 0; i < 2000; i++) {
        snprintf(name, sizeof name, "/many/r%d", i);
        if (turbo_get(s, name, h_a, (void *)(intptr_t)(100 + i)) != 0) ok = 0;
    }
    for (i = 0; i < 2000; i++) {
        snprintf(name, sizeof name, "/many/r%d", i);
        if (route(s, "GET", name, &r, &allow) != 100 + i) ok = 0;
    }
    CHECK(ok, "2000 static siblings all route");
    /* Segments of 1 to 20 bytes, around the 8-byte words the hash takes in,
       26 siblings of each length that differ only in their last byte. */
    for (i = 0; i < 20 * 26; i++) {
        long_name(name, 1 + i / 26, 'a' + i % 26);
        if (turbo_get(s, name, h_a, (void *)(intptr_t)(3000 + i)) != 0) ok = 0;
    }
    for (i = 0; i < 20 * 26; i++) {
        long_name(name, 1 + i / 26, 'a' + i % 26);
        if (route(s, "GET", name, &r, &allow) != 3000 + i) ok = 0;
        strcat(name, "/");
        if (route(s, "GET", name, &r, &allow) != 0) ok = 0;
    }
    long_name(name, 21, 'a');
    CHECK(ok && route(s, "GET", name, &r, &allow) == 0, "segments of 1 to 20 bytes route, and only those");
    turbo_free(s);
}

static void test_router_methods(void) {
    turbo_server *s = turbo_new(NULL);
    turbo_req r = {0};
    const tb__node *allow;
    CHECK(turbo_route(s, "*", "/any", h_a, (void *)1) == 0 && turbo_get(s, "/any", h_a, (void *)2) == 0 &&
              turbo_get(s, "/both", h_a, (void *)3) == 0 &&
              turbo_route(s, "HEAD", "/both", h_a, (void *)4) == 0 &&
              turbo_route(s, "HEAD", "/head", h_a, (void *)5) == 0 &&
              turbo_get(s, "/head", h_a, (void *)6) == 0 && turbo_post(s, "/post", h_a, (void *)7) == 0 &&
              turbo_route(s, "*", "/star", h_a, (void *)8) == 0,
          "routes");
    CHECK(route(s, "GET", "/any", &r, &allow) == 2, "GET added after \"*\" is GET's");
    CHECK(route(s, "HEAD", "/any", &r, &allow) == 2, "HEAD falls back to GET before \"*\"");
    CHECK(route(s, "POST", "/any", &r, &allow) == 1, "a standard method without its own takes \"*\"");
    CHECK(route(s, "PURGE", "/any", &r, &allow) == 1, "another method takes \"*\"");
    CHECK(route(s, "HEAD", "/both", &r, &allow) == 4, "HEAD added after GET is HEAD's");
    CHECK(route(s, "HEAD", "/head", &r, &allow) == 5, "HEAD added before GET is HEAD's");
    CHECK(route(s, "GET", "/head", &r, &allow) == 6, "GET beside HEAD");
    CHECK(route(s, "HEAD", "/star", &r, &allow) == 8 && route(s, "OPTIONS", "/star", &r, &allow) == 8,
          "\"*\" alone takes HEAD and OPTIONS");
    CHECK(route(s, "GET", "/post", &r, &allow) == 0 && allow, "GET of a POST route: 405");
    CHECK(route(s, "HEAD", "/post", &r, &allow) == 0 && allow, "HEAD with no GET: 405");
    CHECK(route(s, "GE", "/head", &r, &allow) == 0 && allow, "a prefix of GET is another method");
    CHECK(route(s, "GETS", "/head", &r, &allow) == 0 && allow, "GET and more is another method");
    CHECK(route(s, "get", "/head", &r, &allow) == 0 && allow, "methods are case-sensitive");
    CHECK(tb__known_method(NULL, 0, tb__str("PATCH", 5)) && !tb__known_method(NULL, 0, tb__str("PATC", 4)) &&
              !tb__known_method(NULL, 0, tb__str("PATCHY", 6)),
          "standard methods known by their whole name");
    turbo_free(s);
}

static void refused(const char *method, const char *pattern, const char *message) {
    turbo_server *s = turbo_new(NULL);
    turbo_get(s, "/users/{id}", h_a, NULL);
    turbo_get(s, "/t/{rest...}", h_a, NULL);
    CHECK(turbo_route(s, method, pattern, h_a, NULL) == -1 && strstr(turbo_error(s), message),
          "%s %s refused with \"%s\", got \"%s\"", method, pattern, message, turbo_error(s));
    turbo_free(s);
}

static void test_refused_patterns(void) {
    refused("GET", "users", "must start with \"/\"");
    refused("GET", "/a/{id", "is missing \"}\"");
    refused("GET", "/a/id}", "without \"{\"");
    refused("GET", "/a/x{id}", "whole segment");
    refused("GET", "/a/{1d}", "not an identifier");
    refused("GET", "/a/{}", "not an identifier");
    refused("GET", "/a//b", "empty segment");
    refused("GET", "/a/{p...}/b", "must be the last segment");
    refused("GET", "/a/{x}/{x}", "twice");
    refused("GET", "/users/{id}", "already registered");
    refused("GET", "/users/{name}/x", "conflicts with {id}");
    refused("GET", "/t/{other...}", "conflicts with {rest}");
    refused("GET", "/a b", "not allowed");
    refused("G T", "/x", "not a valid HTTP method");
}

static void test_a_locked_route_needs_the_lock_hooks(void) {
    turbo_server *s = turbo_new(NULL);
    CHECK(turbo_route_ex(s, "GET", "/py", h_a, NULL, TURBO_LOCKED) == -1 &&
              strstr(turbo_error(s), "TURBO_LOCKED needs acquire and release"),
          "TURBO_LOCKED without hooks refused, got \"%s\"", turbo_error(s));
    turbo_free(s);
}

static void test_refused_pattern_leaves_no_trace(void) {
    turbo_server *s = turbo_new(NULL);
    CHECK(turbo_get(s, "/a/{x}/{bad", h_a, NULL) == -1, "malformed pattern refused");
    CHECK(turbo_get(s, "/a/{y}", h_a, NULL) == 0, "a later route is not blamed on it: %s", turbo_error(s));
    turbo_free(s);
}

static void test_url_decode(void) {
    char out[32];
    CHECK(turbo_url_decode(out, "a%20b+c", 7, 1) == 5 && !memcmp(out, "a b c", 5), "decode");
    CHECK(turbo_url_decode(out, "a+b", 3, 0) == 3 && !memcmp(out, "a+b", 3), "plus kept in paths");
    CHECK(turbo_url_decode(out, "%zz", 3, 1) == -1, "bad escape");
    CHECK(turbo_url_decode(out, "ab%2", 4, 1) == -1, "truncated escape");
}

static void test_query_lookup(void) {
    turbo_buf scratch = {NULL, 0, 0, 0};
    turbo_req r = {0};
    turbo_str a, b, c;
    memset(&r, 0, sizeof r);
    r.scratch = &scratch;
    r.query.ptr = "a=1&name=J%C3%B6rg+K&empty=&flag&bad=%zz&a=2";
    r.query.len = strlen(r.query.ptr);
    CHECK(turbo_req_query_get(&r, "a", &a) == 1 && a.len == 1 && a.ptr[0] == '2', "last of repeated");
    CHECK(turbo_req_query_get(&r, "name", &b) == 1 && b.len == 7 && !memcmp(b.ptr, "J\xc3\xb6rg K", 7),
          "percent and plus decoded");
    CHECK(a.len == 1 && a.ptr[0] == '2', "earlier values stay valid");
    CHECK(turbo_req_query_get(&r, "empty", &c) == 1 && c.len == 0, "empty value");
    CHECK(turbo_req_query_get(&r, "flag", &c) == 1 && c.len == 0, "key without =");
    CHECK(turbo_req_query_get(&r, "bad", &c) == -1, "malformed escape");
    CHECK(turbo_req_query_get(&r, "missing", &c) == 0, "absent");
    turbo_buf_free(&scratch);
}

/* Runs a test unless -k WORD names others. */
#define RUN(test)                                     \
    do {                                              \
        if (!filter || strstr(#test, filter)) test(); \
    } while (0)

int main(int argc, char **argv) {
    const char *filter = argc == 3 && strcmp(argv[1], "-k") == 0 ? argv[2] : NULL;
    RUN(test_query_lookup);
    RUN(test_head_table);
    RUN(test_value_bytes_at_every_offset);
    RUN(test_name_bytes_at_every_offset);
    RUN(test_target_bytes_at_every_offset);
    RUN(test_header_check_at_every_offset);
    RUN(test_value_cut_by_max_head);
    RUN(test_head_fields);
    RUN(test_keep_alive_rules);
    RUN(test_framing_headers_past_the_noted_lines);
    RUN(test_case_blind_comparison);
    RUN(test_equal_at_every_offset);
    RUN(test_host_kept_from_the_last_request);
    RUN(test_lines_kept_from_the_last_request);
    RUN(test_chunk_table);
    RUN(test_chunk_stops_at_message_end);
    RUN(test_endless_empty_lines_are_431);
    RUN(test_chunk_framing_overhead_is_bounded);
    RUN(test_router);
    RUN(test_router_methods);
    RUN(test_refused_patterns);
    RUN(test_refused_pattern_leaves_no_trace);
    RUN(test_a_locked_route_needs_the_lock_hooks);
    RUN(test_url_decode);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
