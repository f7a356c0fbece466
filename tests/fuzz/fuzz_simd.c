/* libFuzzer target: the head parser as x86-64 builds it (header names and
   values scanned 16 bytes at a time with SSE2) against the portable one
   (TURBO_NO_SIMD, 8 bytes at a time), built from the same turbo.h in
   fuzz_simd_portable.c. On every prefix of the input, each in a heap block
   of exactly its size, both give the same verdict, and for a complete head
   the very same fields.

   Input: as fuzz_parser's (its corpus is this one's seeds): byte 0 picks
   the limits, bytes 1-4 are not used, the rest is a request head. */
#define TURBO_IMPL
#include "../../turbo.h"

#include "fuzz_common.h"

int portable_parse_head(const char *buf, size_t len, turbo_req *r, tb__framing *f, const tb__limits *lim);

/* The same view of buf, or the same static text ("/" for "http://host"):
   each build has its own copy of that. */
static int same(turbo_str a, turbo_str b, const char *buf, size_t n) {
    int a_in = a.ptr >= buf && a.ptr <= buf + n, b_in = b.ptr >= buf && b.ptr <= buf + n;
    if (a.len != b.len || a_in != b_in) return 0;
    return a_in ? a.ptr == b.ptr : memcmp(a.ptr, b.ptr, a.len) == 0;
}

static void compare(const char *buf, size_t n, const tb__limits *lim) {
    /* a lives on, as a thread's request does, b starts afresh: the Host
       the parser last found valid must not change a verdict either. */
    static turbo_req a;
    turbo_req b = {0};
    tb__framing fa, fb;
    int i, ra = tb__parse_head(buf, n, &a, &fa, lim), rb = portable_parse_head(buf, n, &b, &fb, lim);
    FUZZ_ASSERT(ra == rb, "%zu bytes: %d with SSE2, %d without", n, ra, rb);
    if (ra <= 0) return;
    FUZZ_ASSERT(same(a.method, b.method, buf, n) && same(a.target, b.target, buf, n) &&
                    same(a.path, b.path, buf, n) && same(a.query, b.query, buf, n) && a.version == b.version,
                "%zu bytes: the request lines differ", n);
    FUZZ_ASSERT(a.header_count == b.header_count, "%d headers vs %d", a.header_count, b.header_count);
    for (i = 0; i < a.header_count; i++)
        FUZZ_ASSERT(same(a.header_name[i], b.header_name[i], buf, n) &&
                        same(a.header_value[i], b.header_value[i], buf, n),
                    "header %d differs", i);
    FUZZ_ASSERT(fa.content_length == fb.content_length && fa.chunked == fb.chunked &&
                    fa.keep_alive == fb.keep_alive && fa.expect_continue == fb.expect_continue,
                "the framing differs");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tb__limits lim;
    size_t n, k;
    if (size < 5) return 0;
    lim = fuzz_limits(data[0]);
    n = size - 5;
    for (k = 0; k <= n; k += k < 1024 ? 1 : 1 + k / 64) { /* every prefix, then fewer of a long input */
        char *copy = fuzz_copy(data + 5, k);
        compare(copy, k, &lim);
        free(copy);
    }
    return 0;
}
