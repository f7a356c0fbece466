/* libFuzzer target: the JSON writer driven by random call sequences with
   random bytes as strings, against a model of what each call must do.

   Input: byte 0 picks an allocation to fail (0: none) and a few bytes of
   text already in the buffer; then a stream of operations (see run_op).

   Invariants:
   - each call's result is the model's: 0 when the call is legal, else the
     first error (sticky): a value where a key is due, a key out of place, an
     end that does not match, nesting past TURBO_JSON_MAX_DEPTH, a value after
     the document, NaN/infinity, finish on an incomplete document; an injected
     allocation failure turns into TURBO_JSON_OOM and nothing else;
   - when the writer reports no error, its output (after what was already in
     the buffer, which is untouched) is one strict RFC 8259 value in valid
     UTF-8 with U+2028/U+2029 escaped, and reads back as exactly the calls:
     strings and keys as their bytes with each maximal ill-formed UTF-8
     subpart replaced by U+FFFD, integers exactly, doubles to the same bits
     in no more digits than the shortest round trip needs, laid out as
     Python's repr(). */
#define _GNU_SOURCE /* turbo.h's implementation needs it; it is not the first include here */
#include <stdint.h>
#include <stdlib.h>

/* Allocation failure injection: the writer's buffer grows through these. */
static int alloc_countdown; /* the n-th reallocation fails; 0: never */
static int alloc_failed;
static void *fuzz_realloc(void *p, size_t n) {
    if (alloc_countdown && --alloc_countdown == 0) {
        alloc_failed = 1;
        return NULL;
    }
    return realloc(p, n);
}
#define TURBO_MALLOC(n) malloc(n)
#define TURBO_REALLOC(p, n) fuzz_realloc(p, n)
#define TURBO_FREE(p) free(p)

#define TURBO_IMPL
#include "../../turbo.h"

#include <math.h>

#include "fuzz_common.h"

/* ---------------------------------------------------------------- expected events */

enum {
    EV_OBJ,
    EV_END_OBJ,
    EV_ARR,
    EV_END_ARR,
    EV_KEY,
    EV_STR,
    EV_INT,
    EV_UINT,
    EV_DBL,
    EV_TRUE,
    EV_FALSE,
    EV_NULL
};

typedef struct event {
    int type;
    size_t off, len; /* bytes in the arena: key/string bytes, or number text */
    int64_t i;
    uint64_t u;
    double d;
} event;

typedef struct events {
    event ev[20000];
    int n;
    unsigned char *arena;
    size_t used, cap;
} events;

static event *ev_add(events *e, int type, const void *bytes, size_t len) {
    event *v;
    if (e->n == (int)(sizeof e->ev / sizeof *e->ev)) abort();
    v = &e->ev[e->n++];
    memset(v, 0, sizeof *v);
    v->type = type;
    if (e->used + len > e->cap) {
        e->cap = (e->used + len) * 2 + 64;
        e->arena = (unsigned char *)realloc(e->arena, e->cap);
        if (!e->arena) abort();
    }
    v->off = e->used;
    v->len = len;
    if (len) memcpy(e->arena + e->used, bytes, len);
    e->used += len;
    return v;
}

/* Bytes with each maximal ill-formed subpart replaced by U+FFFD (Unicode
   3.9, table 3-7 for the well-formed ranges). out has room for 3n bytes. */
static size_t ref_utf8_replace(const unsigned char *s, size_t n, unsigned char *out) {
    size_t i = 0, o = 0;
    while (i < n) {
        unsigned c = s[i], lo = 0x80, hi = 0xBF;
        size_t need, j, k;
        if (c < 0x80) {
            out[o++] = (unsigned char)c;
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) need = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
            continue;
        }
        j = i + 1;
        k = 0;
        if (j < n && s[j] >= lo && s[j] <= hi) {
            j++;
            k = 1;
            while (k < need && j < n && s[j] >= 0x80 && s[j] <= 0xBF) j++, k++;
        }
        if (k == need) {
            memcpy(out + o, s + i, j - i);
            o += j - i;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
        }
        i = k == 0 ? i + 1 : j;
    }
    return o;
}

/* ---------------------------------------------------------------- strict JSON reader */

typedef struct reader {
    const unsigned char *p, *end;
    events *out; /* what was read, as events */
    int depth;
} reader;

static int rd_value(reader *r);

static void rd_ws(reader *r) {
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) r->p++;
}

static int rd_hex4(reader *r, unsigned *v) {
    int i;
    *v = 0;
    if (r->end - r->p < 4) return 0;
    for (i = 0; i < 4; i++) {
        int h = ref_hex(r->p[i]);
        if (h < 0) return 0;
        *v = *v * 16 + (unsigned)h;
    }
    r->p += 4;
    return 1;
}

static size_t put_utf8(unsigned char *o, unsigned cp) {
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 63));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | (cp >> 6 & 63));
        o[2] = (unsigned char)(0x80 | (cp & 63));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | (cp >> 12 & 63));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 63));
    o[3] = (unsigned char)(0x80 | (cp & 63));
    return 4;
}

/* A string token; its decoded bytes become one event of the given type. */
static int rd_string(reader *r, int type) {
    const unsigned char *start;
    unsigned char *buf, *fixed;
    size_t n = 0, fixed_len;
    int ok = 0;
    if (r->p == r->end || *r->p != '"') return 0;
    start = ++r->p;
    buf = (unsigned char *)malloc((size_t)(r->end - start) + 4);
    fixed = (unsigned char *)malloc(3 * (size_t)(r->end - start) + 4);
    if (!buf || !fixed) abort();
    while (r->p < r->end) {
        unsigned c = *r->p++;
        if (c == '"') {
            ok = 1;
            break;
        }
        if (c < 0x20) break;
        if (c != '\\') {
            buf[n++] = (unsigned char)c;
            continue;
        }
        if (r->p == r->end) break;
        c = *r->p++;
        if (c == 'u') {
            unsigned cp, lo;
            if (!rd_hex4(r, &cp)) break;
            if (cp >= 0xDC00 && cp <= 0xDFFF) break; /* lone low surrogate */
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (r->end - r->p < 2 || r->p[0] != '\\' || r->p[1] != 'u') break;
                r->p += 2;
                if (!rd_hex4(r, &lo) || lo < 0xDC00 || lo > 0xDFFF) break;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            n += put_utf8(buf + n, cp);
        } else {
            const char *esc = strchr("\"\\/bfnrt", (int)c), *dec = "\"\\/\b\f\n\r\t";
            if (!c || !esc) break;
            buf[n++] = (unsigned char)dec[esc - "\"\\/bfnrt"];
        }
    }
    /* The raw token must be valid UTF-8 (checked on the decoded bytes: the
       escapes produce only well-formed sequences). */
    fixed_len = ok ? ref_utf8_replace(buf, n, fixed) : 0;
    if (ok && (fixed_len != n || memcmp(fixed, buf, n) != 0)) ok = 0;
    if (ok) ev_add(r->out, type, buf, n);
    free(buf);
    free(fixed);
    return ok;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int rd_number(reader *r) {
    const unsigned char *s = r->p;
    if (r->p < r->end && *r->p == '-') r->p++;
    if (r->p == r->end) return 0;
    if (*r->p == '0') r->p++;
    else if (*r->p >= '1' && *r->p <= '9')
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9') r->p++;
    else return 0;
    if (r->p < r->end && *r->p == '.') {
        const unsigned char *d = ++r->p;
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9') r->p++;
        if (r->p == d) return 0;
    }
    if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
        const unsigned char *d;
        r->p++;
        if (r->p < r->end && (*r->p == '+' || *r->p == '-')) r->p++;
        d = r->p;
        while (r->p < r->end && *r->p >= '0' && *r->p <= '9') r->p++;
        if (r->p == d) return 0;
    }
    ev_add(r->out, EV_DBL, s, (size_t)(r->p - s)); /* a number: compared as text later */
    return 1;
}

static int rd_word(reader *r, const char *w, int type) {
    size_t n = strlen(w);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n) != 0) return 0;
    r->p += n;
    ev_add(r->out, type, NULL, 0);
    return 1;
}

static int rd_value(reader *r) {
    rd_ws(r);
    if (r->p == r->end) return 0;
    switch (*r->p) {
    case '{':
    case '[': {
        int obj = *r->p == '{', first = 1;
        if (++r->depth > 200) return 0;
        r->p++;
        ev_add(r->out, obj ? EV_OBJ : EV_ARR, NULL, 0);
        for (;;) {
            rd_ws(r);
            if (r->p < r->end && *r->p == (obj ? '}' : ']')) {
                r->p++;
                break;
            }
            if (!first) {
                if (r->p == r->end || *r->p != ',') return 0;
                r->p++;
                rd_ws(r);
            }
            first = 0;
            if (obj) {
                if (!rd_string(r, EV_KEY)) return 0;
                rd_ws(r);
                if (r->p == r->end || *r->p != ':') return 0;
                r->p++;
            }
            if (!rd_value(r)) return 0;
        }
        r->depth--;
        ev_add(r->out, obj ? EV_END_OBJ : EV_END_ARR, NULL, 0);
        return 1;
    }
    case '"': return rd_string(r, EV_STR);
    case 't': return rd_word(r, "true", EV_TRUE);
    case 'f': return rd_word(r, "false", EV_FALSE);
    case 'n': return rd_word(r, "null", EV_NULL);
    default: return rd_number(r);
    }
}

/* The whole text is one value; its events are appended to out. */
static int rd_document(const char *text, size_t n, events *out) {
    reader r;
    r.p = (const unsigned char *)text;
    r.end = r.p + n;
    r.out = out;
    r.depth = 0;
    if (!rd_value(&r)) return 0;
    rd_ws(&r);
    return r.p == r.end;
}

/* ---------------------------------------------------------------- model */

enum { M_START, M_ARRAY, M_KEY, M_VALUE, M_DONE }; /* M_KEY: a key or '}' may come */

typedef struct model {
    int state, depth, error;
    unsigned char stack[TURBO_JSON_MAX_DEPTH + 1]; /* 1 = object */
} model;

static int m_fail(model *m, int e) {
    if (!m->error) m->error = e;
    return m->error;
}

static void m_value_done(model *m) {
    m->state = m->depth == 0 ? M_DONE : m->stack[m->depth - 1] ? M_KEY : M_ARRAY;
}

static int m_value(model *m) {
    if (m->error) return m->error;
    if (m->state == M_KEY) return m_fail(m, TURBO_JSON_EXPECTED_KEY);
    if (m->state == M_DONE) return m_fail(m, TURBO_JSON_AFTER_END);
    return 0;
}

static int m_open(model *m, int obj) {
    if (m_value(m)) return m->error;
    if (m->depth >= TURBO_JSON_MAX_DEPTH) return m_fail(m, TURBO_JSON_TOO_DEEP);
    m->stack[m->depth++] = (unsigned char)obj;
    m->state = obj ? M_KEY : M_ARRAY;
    return 0;
}

static int m_close(model *m, int obj) {
    if (m->error) return m->error;
    if (m->depth == 0 || m->stack[m->depth - 1] != obj || m->state == M_VALUE)
        return m_fail(m, TURBO_JSON_BAD_END);
    m->depth--;
    m_value_done(m);
    return 0;
}

static int m_key(model *m) {
    if (m->error) return m->error;
    if (m->state != M_KEY) return m_fail(m, TURBO_JSON_UNEXPECTED_KEY);
    m->state = M_VALUE;
    return 0;
}

/* ---------------------------------------------------------------- doubles */

/* The number text must read back to v's bits, use no more significant
   digits than the shortest correctly rounded form that does, and follow
   repr(): positional with ".0" or a fraction when 1e-4 <= |v| < 1e16, else
   d[.ddd]e[+-]XX. */
static void check_double_text(const char *t, size_t n, double v) {
    char text[64], shortest[40];
    double back;
    uint64_t a, b;
    size_t i, digits = 0, lead = 1, zeros = 0;
    int p, has_e = memchr(t, 'e', n) != NULL;
    FUZZ_ASSERT(n < sizeof text, "double text of %zu bytes", n);
    memcpy(text, t, n);
    text[n] = 0;
    back = strtod(text, NULL);
    memcpy(&a, &v, 8);
    memcpy(&b, &back, 8);
    FUZZ_ASSERT(a == b, "%s reads back as %.17g, not %.17g", text, back, v);
    for (i = 0; i < n && text[i] != 'e'; i++) { /* significant digits */
        if (text[i] < '0' || text[i] > '9') continue;
        if (lead && text[i] == '0') continue;
        lead = 0;
        digits++;
        zeros = text[i] == '0' ? zeros + 1 : 0;
    }
    digits -= zeros;
    if (v == 0) {
        FUZZ_ASSERT(!strcmp(text, signbit(v) ? "-0.0" : "0.0"), "zero written as %s", text);
        return;
    }
    for (p = 1; p <= 17; p++) {
        snprintf(shortest, sizeof shortest, "%.*e", p - 1, v);
        if (strtod(shortest, NULL) == v) break;
    }
    FUZZ_ASSERT(digits <= (size_t)p, "%s has %zu digits, %s has %d", text, digits, shortest, p);
    FUZZ_ASSERT(has_e == !(fabs(v) >= 1e-4 && fabs(v) < 1e16), "%s: layout is not repr()'s", text);
    if (has_e) {
        const char *e = strchr(text, 'e');
        FUZZ_ASSERT((e[1] == '+' || e[1] == '-') && strlen(e + 2) >= 2 && (e[2] != '0' || strlen(e + 2) == 2),
                    "%s: exponent is not repr()'s", text);
    } else {
        FUZZ_ASSERT(strchr(text, '.') != NULL, "%s: no fraction", text);
    }
}

/* ---------------------------------------------------------------- driver */

static const char *const raws[5] = {"0", "{}", "[1,\"a\\u00e9\",{\"k\":null}]", "\"x\"", "-1.5e3"};

typedef struct input {
    const uint8_t *p, *end;
} input;

static unsigned take8(input *in) { return in->p < in->end ? *in->p++ : 0; }

static size_t take_bytes(input *in, size_t want, const uint8_t **bytes) {
    size_t n = (size_t)(in->end - in->p) < want ? (size_t)(in->end - in->p) : want;
    *bytes = in->p;
    in->p += n;
    return n;
}

static uint64_t take64(input *in) {
    uint64_t v = 0;
    const uint8_t *b;
    size_t n = take_bytes(in, 8, &b);
    memcpy(&v, b, n);
    return v;
}

/* Writes a string or key from the input; records what must read back. */
static int op_string(turbo_json *j, model *m, events *want, input *in, int key, int form) {
    const uint8_t *b;
    size_t len = take8(in), n, reps = 1, i, fixed_len;
    unsigned char *text, *fixed;
    int rc, expect;
    if (form == 2) { /* long: a piece repeated, to cross the writer's 4 KiB rounds */
        reps = 1 + take8(in) * 8;
        len = 1 + len % 16;
    }
    n = take_bytes(in, len, &b);
    text = (unsigned char *)fuzz_alloc(n * reps + 1);
    for (i = 0; i < reps; i++) memcpy(text + i * n, b, n);
    n *= reps;
    text[n] = 0;
    if (form == 1) n = strlen((char *)text); /* the NUL-terminated call stops at a NUL */
    expect = key ? m_key(m) : m_value(m);
    if (key) rc = form == 1 ? turbo_json_key(j, (char *)text) : turbo_json_keyn(j, (char *)text, n);
    else if (form == 1 && len == 0) rc = turbo_json_string(j, NULL);
    else rc = form == 1 ? turbo_json_string(j, (char *)text) : turbo_json_stringn(j, (char *)text, n);
    if (!expect) {
        if (!key && form == 1 && len == 0) {
            ev_add(want, EV_NULL, NULL, 0);
        } else {
            fixed = (unsigned char *)fuzz_alloc(3 * n + 1);
            fixed_len = ref_utf8_replace(text, n, fixed);
            ev_add(want, key ? EV_KEY : EV_STR, fixed, fixed_len);
            free(fixed);
        }
        if (!key) m_value_done(m);
    }
    free(text);
    (void)rc;
    return expect;
}

/* One operation: its call, the model's verdict, what must read back. */
static int run_op(turbo_json *j, model *m, events *want, input *in) {
    unsigned op = take8(in) % 14;
    int expect = 0;
    switch (op) {
    case 0:
        expect = m_open(m, 1);
        turbo_json_object_begin(j);
        if (!expect) ev_add(want, EV_OBJ, NULL, 0);
        break;
    case 1:
        expect = m_close(m, 1);
        turbo_json_object_end(j);
        if (!expect) ev_add(want, EV_END_OBJ, NULL, 0);
        break;
    case 2:
        expect = m_open(m, 0);
        turbo_json_array_begin(j);
        if (!expect) ev_add(want, EV_ARR, NULL, 0);
        break;
    case 3:
        expect = m_close(m, 0);
        turbo_json_array_end(j);
        if (!expect) ev_add(want, EV_END_ARR, NULL, 0);
        break;
    case 4: expect = op_string(j, m, want, in, 1, take8(in) % 3); break;
    case 5: expect = op_string(j, m, want, in, 0, take8(in) % 3); break;
    case 6: {
        int64_t v = (int64_t)take64(in);
        char t[32];
        expect = m_value(m);
        turbo_json_int(j, v);
        if (!expect) {
            snprintf(t, sizeof t, "%lld", (long long)v);
            ev_add(want, EV_DBL, t, strlen(t));
            m_value_done(m);
        }
        break;
    }
    case 7: {
        uint64_t v = take64(in);
        char t[32];
        expect = m_value(m);
        turbo_json_uint(j, v);
        if (!expect) {
            snprintf(t, sizeof t, "%llu", (unsigned long long)v);
            ev_add(want, EV_DBL, t, strlen(t));
            m_value_done(m);
        }
        break;
    }
    case 8:
    case 9: { /* a double from raw bits, or a decimal-looking one */
        uint64_t bits = take64(in);
        double v;
        if (op == 8) memcpy(&v, &bits, 8);
        else v = (double)(int32_t)bits / pow(10.0, (double)((bits >> 32) % 40) - 10.0);
        expect = m_value(m);
        if (!expect && !isfinite(v)) expect = m_fail(m, TURBO_JSON_NOT_FINITE);
        turbo_json_double(j, v);
        if (!expect) {
            event *e = ev_add(want, EV_DBL, NULL, 0);
            e->d = v;
            e->type = -EV_DBL;
            m_value_done(m);
        }
        break;
    }
    case 10: {
        int v = (int)(take8(in) & 1);
        expect = m_value(m);
        turbo_json_bool(j, v);
        if (!expect) {
            ev_add(want, v ? EV_TRUE : EV_FALSE, NULL, 0);
            m_value_done(m);
        }
        break;
    }
    case 11:
        expect = m_value(m);
        turbo_json_null(j);
        if (!expect) {
            ev_add(want, EV_NULL, NULL, 0);
            m_value_done(m);
        }
        break;
    case 12: {
        const char *raw = raws[take8(in) % 5];
        expect = m_value(m);
        turbo_json_raw(j, raw, strlen(raw));
        if (!expect) {
            FUZZ_ASSERT(rd_document(raw, strlen(raw), want), "raw snippet");
            m_value_done(m);
        }
        break;
    }
    default:
        expect = m->error ? m->error : m->state == M_DONE ? 0 : m_fail(m, TURBO_JSON_INCOMPLETE);
        turbo_json_finish(j);
        break;
    }
    return expect;
}

static void compare(const events *got, const events *want) {
    int i;
    FUZZ_ASSERT(got->n == want->n, "read back %d tokens, wrote %d", got->n, want->n);
    for (i = 0; i < got->n; i++) {
        const event *g = &got->ev[i], *w = &want->ev[i];
        if (w->type == -EV_DBL) {
            FUZZ_ASSERT(g->type == EV_DBL, "token %d: type %d, want a double", i, g->type);
            check_double_text((const char *)got->arena + g->off, g->len, w->d);
            continue;
        }
        FUZZ_ASSERT(g->type == w->type, "token %d: type %d, want %d", i, g->type, w->type);
        FUZZ_ASSERT(g->len == w->len &&
                        (!g->len || !memcmp(got->arena + g->off, want->arena + w->off, g->len)),
                    "token %d reads back as \"%.*s\", want \"%.*s\"", i, (int)g->len,
                    (const char *)got->arena + g->off, (int)w->len, (const char *)want->arena + w->off);
    }
}

static events want_ev, got_ev;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    turbo_buf out = {NULL, 0, 0, 0};
    turbo_json j;
    model m;
    input in;
    size_t prefix;
    int ops = 0;
    if (size < 1) return 0;
    alloc_countdown = data[0] & 7;
    alloc_failed = 0;
    prefix = data[0] >> 3 & 3;
    turbo_buf_append(&out, "abc", prefix);
    in.p = data + 1;
    in.end = data + size;
    memset(&m, 0, sizeof m);
    want_ev.n = 0;
    want_ev.used = 0;
    turbo_json_init(&j, &out);
    while (in.p < in.end && ops++ < 2000) {
        int expect = run_op(&j, &m, &want_ev, &in);
        if (alloc_failed && j.error == TURBO_JSON_OOM) break; /* from here, OOM is all it says */
        FUZZ_ASSERT(j.error == expect, "after %d operations: error %d, model %d", ops, j.error, expect);
    }
    if (!j.error) {
        int rc = turbo_json_finish(&j);
        FUZZ_ASSERT(rc == (m.state == M_DONE ? 0 : TURBO_JSON_INCOMPLETE), "finish %d in state %d", rc,
                    m.state);
    }
    if (!j.error) {
        const char *text = out.data + prefix;
        size_t n = out.len - prefix, i;
        FUZZ_ASSERT(!out.oom && memcmp(out.data, "abc", prefix) == 0, "bytes before the document changed");
        for (i = 0; i + 2 < n; i++)
            FUZZ_ASSERT(!(text[i] == '\xE2' && text[i + 1] == '\x80' && (text[i + 2] & 0xFE) == '\xA8'),
                        "raw U+2028/U+2029 at %zu", i);
        got_ev.n = 0;
        got_ev.used = 0;
        FUZZ_ASSERT(rd_document(text, n, &got_ev), "not one strict JSON value: %.*s",
                    (int)(n < 400 ? n : 400), text);
        compare(&got_ev, &want_ev);
    }
    turbo_buf_free(&out);
    return 0;
}
