/* Shared by the libFuzzer targets: a deterministic split generator, exact-size
   heap copies (so ASan sees any read past the bytes "received" so far), and an
   independent chunked-body decoder written from RFC 9112 7.1 to check turbo's
   incremental one against. Included after turbo.h with TURBO_IMPL. */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FUZZ_EXT_NAME_BWS
#define FUZZ_EXT_NAME_BWS 0
#endif

#define FUZZ_ASSERT(cond, ...)                                                               \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "invariant failed at %s:%d: %s\n  ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                                    \
            fprintf(stderr, "\n");                                                           \
            abort();                                                                         \
        }                                                                                    \
    } while (0)

/* xorshift32: the split points are a function of the input alone. */
typedef struct fuzz_rng {
    uint32_t s;
} fuzz_rng;

static inline uint32_t fuzz_next(fuzz_rng *r) {
    uint32_t x = r->s ? r->s : 0x9e3779b9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    r->s = x;
    return x;
}

/* A step of 1..max bytes, biased towards single bytes (the slowloris case). */
static inline size_t fuzz_step(fuzz_rng *r, size_t max) {
    uint32_t v = fuzz_next(r);
    if ((v & 3) == 0) return 1;
    return 1 + (v >> 2) % (max ? max : 1);
}

/* The parser's limits that one input byte picks: each pair of bits chooses
   among four line, head, header-count and body limits, tiny to roomy. */
static inline tb__limits fuzz_limits(uint8_t byte) {
    static const size_t lines[4] = {16, 64, 256, 8192};
    static const size_t heads[4] = {32, 128, 1024, 32768};
    static const int counts[4] = {1, 3, 8, TURBO_MAX_HEADERS};
    static const uint64_t bodies[4] = {1, 16, 1000, 1 << 20};
    tb__limits lim;
    lim.max_line = lines[byte & 3];
    lim.max_head = heads[byte >> 2 & 3];
    lim.max_headers = counts[byte >> 4 & 3];
    lim.max_body = bodies[byte >> 6 & 3];
    return lim;
}

/* n bytes of heap (at least 1 allocated). */
static inline char *fuzz_alloc(size_t n) {
    char *p = (char *)malloc(n ? n : 1);
    if (!p) abort();
    return p;
}

/* A heap copy of exactly n bytes (at least 1 allocated, never read). */
static inline char *fuzz_copy(const void *src, size_t n) {
    char *p = fuzz_alloc(n);
    if (n) memcpy(p, src, n);
    return p;
}

/* ---------------------------------------------------------------- reference chunked decoder */

enum { REF_MORE = 0, REF_DONE = 1 }; /* or -status, as tb__dechunk */

typedef struct ref_chunked {
    size_t raw_len;  /* on REF_DONE: bytes of the whole chunked body */
    size_t body_len; /* decoded bytes (written to out) */
} ref_chunked;

static inline int ref_is_tchar(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* The characters of a request target: RFC 3986's (unreserved, sub-delims,
   ":", "@", "/", "?" and "%"), and those browsers send unescaped. */
static inline int ref_is_target(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("-._~!$&'()*+,;=:@/?%[]{}|\\^`", c) != NULL);
}

/* field-vchar / SP / HTAB (obs-text included) */
static inline int ref_is_value(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

static inline int ref_hex(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ( token / quoted-string ) ] ),
   quoted-string = DQUOTE *( qdtext / "\" ( HTAB / SP / VCHAR / obs-text ) ) DQUOTE */
static inline int ref_valid_ext(const unsigned char *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        size_t save;
        while (i < n && (p[i] == ' ' || p[i] == '\t')) i++;
        if (i == n || p[i++] != ';') return 0;
        while (i < n && (p[i] == ' ' || p[i] == '\t')) i++;
        if (i == n || !ref_is_tchar(p[i])) return 0;
        while (i < n && ref_is_tchar(p[i])) i++;
        save = i;
        while (i < n && (p[i] == ' ' || p[i] == '\t')) i++;
        /* FUZZ_EXT_NAME_BWS: turbo accepts BWS after a name without "="
           (";a \r\n"), outside the grammar; reported. Build with
           -DFUZZ_EXT_NAME_BWS=0 once turbo refuses it. */
        if (i == n && FUZZ_EXT_NAME_BWS) return 1;
        if (i == n || p[i] != '=') {
            i = save;
            continue;
        }
        i++;
        while (i < n && (p[i] == ' ' || p[i] == '\t')) i++;
        if (i == n) return 0;
        if (p[i] == '"') {
            for (i++;; i++) {
                if (i == n) return 0;
                if (p[i] == '"') {
                    i++;
                    break;
                }
                if (p[i] == '\\' && (++i == n || !ref_is_value(p[i]))) return 0;
                if (!ref_is_value(p[i])) return 0;
            }
        } else {
            if (!ref_is_tchar(p[i])) return 0;
            while (i < n && ref_is_tchar(p[i])) i++;
        }
    }
    return 1;
}

/* Decodes a chunked body from p[0..n) into out (room for n bytes). Limits as
   turbo defines them: the declared sizes must fit max_body (413), and so
   must the raw bytes so far, less the data, fit max_body + max_head (413,
   checked at each size line's LF); at most 4096 size digits and 4096
   extension bytes per line (400); trailer bytes (each field line less its
   first byte) at most max_head (431). */
static inline int ref_dechunk(const unsigned char *p, size_t n, unsigned char *out, uint64_t max_body,
                              size_t max_head, ref_chunked *res) {
    size_t i = 0, dst = 0, trailers = 0;
    res->raw_len = res->body_len = 0;
    for (;;) { /* one chunk per round */
        uint64_t size = 0, room = max_body - dst;
        size_t digits = 0, ext_start;
        while (i < n && ref_hex(p[i]) >= 0) {
            if (size > room / 16) return -413;
            if (++digits > 4096) return -400;
            size = size * 16 + (uint64_t)ref_hex(p[i]);
            i++;
        }
        if (i == n) return REF_MORE;
        if (!digits) return -400;
        if (size > room) return -413;
        ext_start = i;
        while (i < n && p[i] != '\r') {
            if (!ref_is_value(p[i]) || i - ext_start >= 4096) return -400;
            i++;
        }
        if (i == n) return REF_MORE;
        if (!ref_valid_ext(p + ext_start, i - ext_start)) return -400;
        if (++i == n) return REF_MORE;
        if (p[i] != '\n') return -400;
        if (i - dst > max_body + max_head) return -413; /* framing bytes beyond the data */
        i++;
        if (size == 0) break;
        if (n - i < size) {
            memcpy(out + dst, p + i, n - i);
            return REF_MORE;
        }
        memcpy(out + dst, p + i, (size_t)size);
        dst += (size_t)size;
        i += (size_t)size;
        if (i == n) return REF_MORE;
        if (p[i++] != '\r') return -400;
        if (i == n) return REF_MORE;
        if (p[i++] != '\n') return -400;
    }
    for (;;) { /* trailer section: *( field-line CRLF ) CRLF */
        int colon = 0;
        if (i == n) return REF_MORE;
        if (p[i] == '\r') {
            if (++i == n) return REF_MORE;
            if (p[i++] != '\n') return -400;
            res->raw_len = i;
            res->body_len = dst;
            return REF_DONE;
        }
        if (!ref_is_tchar(p[i++])) return -400;
        for (;;) {
            if (i == n) return REF_MORE;
            if (p[i] == '\r') break;
            if (!colon && p[i] == ':') colon = 1;
            else if (colon ? !ref_is_value(p[i]) : !ref_is_tchar(p[i])) return -400;
            if (++trailers > max_head) return -431;
            i++;
        }
        if (!colon) return -400;
        if (++i == n) return REF_MORE;
        if (p[i++] != '\n') return -400;
    }
}

/* Runs turbo's decoder over body[0..n) as the bytes would arrive in random
   steps, each call seeing a fresh exact-size buffer holding what came so far
   (decoded prefix + raw rest, as the server keeps it). Returns the decoder's
   final result; *st is its final state, *decoded a malloc'd copy of the
   buffer (caller frees). Stops at the first non-zero result. */
static inline int fuzz_dechunk_split(const char *body, size_t n, fuzz_rng *rng, size_t max_step,
                                     const tb__limits *lim, tb__chunked *st, char **decoded) {
    char *prev = fuzz_alloc(0);
    size_t have = 0;
    int rc = 0;
    memset(st, 0, sizeof *st);
    while (have < n) {
        size_t step = fuzz_step(rng, max_step), next = have + step > n ? n : have + step;
        char *cur = (char *)malloc(next);
        if (!cur) abort();
        memcpy(cur, prev, have);
        memcpy(cur + have, body + have, next - have);
        free(prev);
        prev = cur;
        have = next;
        rc = tb__dechunk(cur, have, st, lim);
        FUZZ_ASSERT(st->dst <= st->src && st->src <= have, "dst %zu src %zu have %zu", st->dst, st->src,
                    have);
        FUZZ_ASSERT(st->dst <= lim->max_body, "decoded %zu over max_body", st->dst);
        if (rc != 0) break;
    }
    *decoded = prev;
    return rc;
}

#endif
