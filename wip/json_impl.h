/* ==== JSON writer ==== */

/* The writer streams into a turbo_buf: each call checks that its token may
   come now, writes the comma it needs, makes room with turbo_buf_reserve and
   then writes through a plain pointer. j->state says what may come next;
   j->stack keeps, per open container, the state to return to after one of
   its members (TB__JSON_ARRAY_NEXT or TB__JSON_OBJECT_NEXT). Zero is the
   start state, so a zeroed writer is a fresh one. The first error sticks:
   later calls write nothing and return it. Output is not rolled back on
   error; the caller discards it (turbo answers 500). */
enum {
    TB__JSON_START = 0,    /* top level, nothing written yet */
    TB__JSON_ARRAY_FIRST,  /* after '[': a value or ']' */
    TB__JSON_ARRAY_NEXT,   /* after an element: ',' value or ']' */
    TB__JSON_OBJECT_FIRST, /* after '{': a key or '}' */
    TB__JSON_OBJECT_NEXT,  /* after a member: ',' key or '}' */
    TB__JSON_MEMBER,       /* after a key: its value */
    TB__JSON_DONE          /* the one top-level value is complete */
};

/* Input bytes a string is escaped in at a time: each round reserves room for
   the worst case (6 output bytes per input byte), so this bounds how much
   spare room one call asks for. */
enum { TB__JSON_CHUNK = 4096 };

static const char tb__json_pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

static int tb__json_fail(turbo_json *j, int error) {
    j->error = error;
    return error;
}

/* Checks that a value may come now, writes the comma before it and makes
   room for `room` more bytes. Returns where to write, or NULL (error set). */
static char *tb__json_value_at(turbo_json *j, size_t room) {
    turbo_buf *b = j->out;
    int st = j->state;
    if (j->error) return NULL;
    if (st == TB__JSON_OBJECT_FIRST || st == TB__JSON_OBJECT_NEXT) {
        tb__json_fail(j, TURBO_JSON_EXPECTED_KEY);
        return NULL;
    }
    if (st == TB__JSON_DONE) {
        tb__json_fail(j, TURBO_JSON_AFTER_END);
        return NULL;
    }
    if (turbo_buf_reserve(b, room + 1)) {
        tb__json_fail(j, TURBO_JSON_OOM);
        return NULL;
    }
    if (st == TB__JSON_ARRAY_NEXT) b->data[b->len++] = ',';
    return b->data + b->len;
}

/* Ends a value written up to p: the enclosing container wants its next
   member, or the document is complete. */
static int tb__json_value_done(turbo_json *j, char *p) {
    j->out->len = (size_t)(p - j->out->data);
    j->state = j->depth ? (int)j->stack[j->depth - 1] : (int)TB__JSON_DONE;
    return 0;
}

/* ---- strings ----
   Escapes: '"' and '\\' as \" and \\; the control characters U+0000-U+001F
   as \b \f \n \r \t where those exist, else \u00xx with lower-case hex (as
   Python's json.dumps); U+2028 and U+2029 as \u2028 and \u2029 so the output
   can sit inside JavaScript source. '/' and DEL are left alone.
   Invalid UTF-8 becomes U+FFFD, one per "maximal subpart" (Unicode 15,
   section 3.9, U+FFFD substitution): a byte that cannot start a sequence
   (80-C1, F5-FF) is one maximal subpart; otherwise the subpart is the longest
   prefix of a well-formed sequence that is there (e.g. E2 82 followed by 'A'
   or by the end of the string is one U+FFFD, then 'A'). Overlongs and
   surrogates fail at their second byte (E0 80, ED A0, F0 80), so each of
   their bytes becomes one U+FFFD. Python's bytes.decode("utf-8", "replace")
   applies the same rule. */

/* Nonzero if any of the 8 bytes of w is below 0x20, '"', '\\' or 0x80 and
   above (exact as a yes/no: a borrow only crosses from a byte that is). */
static uint64_t tb__json_special8(uint64_t w) {
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    uint64_t quote = w ^ (ones * '"'), bslash = w ^ (ones * '\\');
    uint64_t t = ((w - ones * 0x20) & ~w) | ((quote - ones) & ~quote) | ((bslash - ones) & ~bslash);
    return (t | w) & high;
}

/* The length of the well-formed UTF-8 sequence at s (n >= 1 bytes left,
   s[0] >= 0x80), or minus the length of its maximal ill-formed subpart. */
static int tb__json_utf8(const unsigned char *s, size_t n) {
    unsigned c = s[0], lo = 0x80, hi = 0xBF;
    int len, i;
    if (c < 0xC2 || c > 0xF4) return -1;
    if (c < 0xE0) {
        len = 2;
    } else if (c < 0xF0) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;      /* overlong */
        else if (c == 0xED) hi = 0x9F; /* surrogates */
    } else {
        len = 4;
        if (c == 0xF0) lo = 0x90;      /* overlong */
        else if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
    }
    if (n < 2 || s[1] < lo || s[1] > hi) return -1;
    for (i = 2; i < len; i++)
        if ((size_t)i >= n || (s[i] & 0xC0) != 0x80) return -i;
    return len;
}

static char *tb__json_escape_ascii(char *o, unsigned c) {
    static const char hex[] = "0123456789abcdef";
    char e;
    switch (c) {
    case '"': e = '"'; break;
    case '\\': e = '\\'; break;
    case '\b': e = 'b'; break;
    case '\f': e = 'f'; break;
    case '\n': e = 'n'; break;
    case '\r': e = 'r'; break;
    case '\t': e = 't'; break;
    default:
        memcpy(o, "\\u00", 4);
        o[4] = hex[c >> 4];
        o[5] = hex[c & 15];
        return o + 6;
    }
    o[0] = '\\';
    o[1] = e;
    return o + 2;
}

/* Escapes the bytes from s up to stop into *out (room for 6 bytes per byte,
   plus 18 for a sequence that starts before stop and ends by `end`). Bytes
   that need nothing, valid multi-byte sequences included, are copied in runs
   with one memcpy each. Returns where it stopped: stop, or up to 3 past it. */
static const unsigned char *tb__json_escape(char **out, const unsigned char *s,
                                            const unsigned char *stop,
                                            const unsigned char *end) {
    char *o = *out;
    const unsigned char *run = s;
    while (s < stop) {
        uint64_t w;
        unsigned c;
        int n;
        while (stop - s >= 8) {
            memcpy(&w, s, 8);
            if (tb__json_special8(w)) break;
            s += 8;
        }
        while (s < stop && *s >= 0x20 && *s < 0x80 && *s != '"' && *s != '\\') s++;
        if (s >= stop) break;
        c = *s;
        n = c >= 0x80 ? tb__json_utf8(s, (size_t)(end - s)) : 0;
        /* U+2028 and U+2029 are E2 80 A8 and E2 80 A9 */
        if (n > 0 && !(n == 3 && c == 0xE2 && s[1] == 0x80 && (s[2] & 0xFE) == 0xA8)) {
            s += n;
            continue;
        }
        memcpy(o, run, (size_t)(s - run));
        o += s - run;
        if (n == 0) {
            o = tb__json_escape_ascii(o, c);
            s++;
        } else if (n > 0) {
            memcpy(o, s[2] == 0xA8 ? "\\u2028" : "\\u2029", 6);
            o += 6;
            s += 3;
        } else {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
            s += -n;
        }
        run = s;
    }
    memcpy(o, run, (size_t)(s - run));
    *out = o + (s - run);
    return s;
}

/* Appends the quoted, escaped string, then `suffix` unless it is 0. */
static int tb__json_put_string(turbo_json *j, const char *str, size_t len, char suffix) {
    turbo_buf *b = j->out;
    const unsigned char *s, *end;
    char *o;
    if (!str) str = ""; /* (NULL, 0): no arithmetic on a null pointer */
    s = (const unsigned char *)str;
    end = s + len;
    do {
        size_t take = (size_t)(end - s) < TB__JSON_CHUNK ? (size_t)(end - s) : TB__JSON_CHUNK;
        /* 6 per byte, a sequence may end 3 past the chunk, 3 for quotes and suffix */
        if (turbo_buf_reserve(b, (take + 3) * 6 + 3)) return tb__json_fail(j, TURBO_JSON_OOM);
        o = b->data + b->len;
        if (s == (const unsigned char *)str) *o++ = '"';
        s = tb__json_escape(&o, s, s + take, end);
        b->len = (size_t)(o - b->data);
    } while (s < end);
    *o++ = '"';
    if (suffix) *o++ = suffix;
    b->len = (size_t)(o - b->data);
    return 0;
}

/* ---- integers ---- */

static int tb__json_count_digits(uint64_t v) {
    int n = 1;
    for (;;) {
        if (v < 10) return n;
        if (v < 100) return n + 1;
        if (v < 1000) return n + 2;
        if (v < 10000) return n + 3;
        v /= 10000;
        n += 4;
    }
}

/* Writes v in decimal, two digits per step from the right (the divisions
   are by constants: multiplications). Returns the end. */
static char *tb__json_u64(char *o, uint64_t v) {
    char *p = o + tb__json_count_digits(v), *end = p;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        p -= 2;
        memcpy(p, tb__json_pairs + 2 * r, 2);
    }
    if (v >= 10) memcpy(p - 2, tb__json_pairs + 2 * v, 2);
    else p[-1] = (char)('0' + v);
    return end;
}

/* ---- doubles: shortest round-trip decimal (Schubfach) ----
   After R. Giulietti, "The Schubfach way to render doubles" (2020). For
   v = c * 2^q, its rounding interval R (the reals that read back as v) is
   scaled by 10^-k, k = floor(log10(width of R)), with one 128-bit
   multiplication per end, rounded to odd so that comparisons with even
   integers stay exact. R then holds at most one multiple of 10^(k+1) and at
   least one of 10^k; the shortest decimal is the former if present, else
   the multiple of 10^k nearest v (ties to even digits). These are the digits
   of David Gay's dtoa in shortest mode, which Python's repr() uses.

   The scale factors g(e) = floor(10^e * 2^(127 - floor(log2 10^e))) + 1,
   e in [-292, 324], are rebuilt from every 28th one times 5^r plus a 2-bit
   correction: 23 stored entries instead of 617, for two multiplications per
   call. wip/gen_pow10.py generated the tables and checked every entry and
   every range assumption below. */

typedef struct tb__dtoa_u128 {
    uint64_t hi, lo;
} tb__dtoa_u128;

static const uint64_t tb__dtoa_pow10_base[23][2] = {
    {0xff77b1fcbebcdc4f, 0x25e8e89c13bb0f7a}, {0x80fa687f881c7f8e, 0x7ce66634bc9d0b99},
    {0x823c12795db6ce57, 0x76c53d08d6b70858}, {0x8380dea93da4bc60, 0x4247cb9e59f71e6d},
    {0x84c8d4dfd2c63f3b, 0x29ecd9f40041e073}, {0x8613fd0145877585, 0xbd06742ce95f5f36},
    {0x87625f056c7c4a8b, 0x11471cd764ad4972}, {0x88b402f7fd75539b, 0x11dbcb0218ebb414},
    {0x8a08f0f8bf0f156b, 0x1b8e9ecb641b58ff}, {0x8b61313bbabce2c6, 0x2323ac4b3b3da015},
    {0x8cbccc096f5088cb, 0xf93f87b7442e45d3}, {0x8e1bc9bf04000000, 0x0000000000000000},
    {0x8f7e32ce7bea5c6f, 0xe4820023a2000000}, {0x90e40fbeea1d3a4a, 0xbc8955e946fe31cd},
    {0x924d692ca61be758, 0x593c2626705f9c56}, {0x93ba47c980e98cdf, 0xc66f336c36b10137},
    {0x952ab45cfa97a0b2, 0xdd945a747bf26183}, {0x969eb7c47859e743, 0x9f644ae5a4b1b325},
    {0x98165af37b2153de, 0xc3727a337a8b704a}, {0x9991a6f3d6bf1765, 0xacca6da1e0a8ef29},
    {0x9b10a4e5e9913128, 0xca7cf2b4191c8326}, {0x9c935e00d4b9d8d2, 0x6ed1bf9a569f33d3},
    {0x9e19db92b4e31ba9, 0x6c07a2c26a8346d1},
};
static const uint64_t tb__dtoa_pow5[28] = {
    1u, 5u, 25u, 125u,
    625u, 3125u, 15625u, 78125u,
    390625u, 1953125u, 9765625u, 48828125u,
    244140625u, 1220703125u, 6103515625u, 30517578125u,
    152587890625u, 762939453125u, 3814697265625u, 19073486328125u,
    95367431640625u, 476837158203125u, 2384185791015625u, 11920928955078125u,
    59604644775390625u, 298023223876953125u, 1490116119384765625u, 7450580596923828125u,
};
static const uint64_t tb__dtoa_pow10_fix[20] = {
    0x9404410050001400, 0x0040555569565565, 0x4410100400000000, 0x5451541455055151,
    0x1541551554014514, 0x9554555555545545, 0x0544554554000056, 0x1051555595555514,
    0x5524001500101100, 0x000000a6aaaaa955, 0x0000000000000000, 0x5555925514000000,
    0x505440505554525a, 0x0000000000000055, 0x1045145450511554, 0x4400414555415141,
    0x0000004000404040, 0x5514151400000000, 0x0410000414014415, 0x0000000000005550,
};

/* 64x64 -> 128-bit product from 32-bit halves (portable C; compilers turn
   it into one or two multiply instructions where they can). */
static tb__dtoa_u128 tb__dtoa_mul(uint64_t a, uint64_t b) {
    uint64_t a0 = a & 0xffffffffu, a1 = a >> 32, b0 = b & 0xffffffffu, b1 = b >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);
    tb__dtoa_u128 r;
    r.hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
    r.lo = (mid << 32) | (p00 & 0xffffffffu);
    return r;
}

/* floor(q log10 2), floor(q log10 2 + log10 3/4) and floor(e log2 10) by
   fixed-point multiplication, exact over the ranges used; the bias keeps the
   shifted value non-negative (right shifts of negatives are not portable). */
static int tb__dtoa_log10_pow2(int q) {
    return ((q * 315653 + (1024 << 20)) >> 20) - 1024;
}
static int tb__dtoa_log10_three_quarters_pow2(int q) {
    return ((q * 315653 - 131237 + (1024 << 20)) >> 20) - 1024;
}
static int tb__dtoa_log2_pow10(int e) {
    return ((e * 1741647 + (1024 << 19)) >> 19) - 1024;
}

/* g(e), e in [-292, 324]: base * 5^r / 2^sh, plus the stored correction and 1. */
static tb__dtoa_u128 tb__dtoa_pow10(int e) {
    int i = (e + 292) / 28, r = (e + 292) % 28;
    unsigned fix = (unsigned)(tb__dtoa_pow10_fix[(e + 292) / 32] >> (2 * ((e + 292) % 32))) & 3;
    tb__dtoa_u128 g;
    g.hi = tb__dtoa_pow10_base[i][0];
    g.lo = tb__dtoa_pow10_base[i][1];
    if (r) {
        int sh = tb__dtoa_log2_pow10(e) - tb__dtoa_log2_pow10(e - r) - r; /* 1..63 */
        tb__dtoa_u128 lo = tb__dtoa_mul(g.lo, tb__dtoa_pow5[r]);
        tb__dtoa_u128 hi = tb__dtoa_mul(g.hi, tb__dtoa_pow5[r]);
        uint64_t mid = hi.lo + lo.hi, top = hi.hi + (mid < lo.hi);
        g.hi = (top << (64 - sh)) | (mid >> sh);
        g.lo = (mid << (64 - sh)) | (lo.lo >> sh);
    }
    g.lo += fix + 1;
    g.hi += g.lo < fix + 1;
    return g;
}

/* g * cp / 2^128 rounded to odd: the floor, its low bit set if inexact. */
static uint64_t tb__dtoa_round_odd(tb__dtoa_u128 g, uint64_t cp) {
    tb__dtoa_u128 x = tb__dtoa_mul(g.lo, cp), y = tb__dtoa_mul(g.hi, cp);
    uint64_t z = y.lo + x.hi;
    return (y.hi + (z < y.lo)) | (z != 0);
}

/* The shortest decimal in the rounding interval of v = c * 2^q: returns its
   digits, *k its power of ten. `irregular`: c is a power of two above the
   subnormals, so the gap below v is half the gap above. */
static uint64_t tb__dtoa_schubfach(uint64_t c, int q, int irregular, int *k) {
    uint64_t cb = c << 2, cbl = cb - 2 + (uint64_t)irregular, cbr = cb + 2;
    uint64_t vb, lower, upper, s, sp, mid;
    int kk = irregular ? tb__dtoa_log10_three_quarters_pow2(q) : tb__dtoa_log10_pow2(q);
    int h = q + tb__dtoa_log2_pow10(-kk) + 1; /* 1..4: cbr << h fits */
    tb__dtoa_u128 g = tb__dtoa_pow10(-kk);
    uint64_t odd = c & 1; /* ends of R belong to it only for an even c */
    vb = tb__dtoa_round_odd(g, cb << h);
    lower = tb__dtoa_round_odd(g, cbl << h) + odd;
    upper = tb__dtoa_round_odd(g, cbr << h) - odd;
    /* all values below are in units of 10^kk / 4 */
    s = vb >> 2;
    sp = s / 10;
    if ((lower <= 40 * sp) != (40 * sp + 40 <= upper)) {
        *k = kk + 1;
        return sp + (40 * sp + 40 <= upper);
    }
    *k = kk;
    if ((lower <= 4 * s) != (4 * s + 4 <= upper)) return s + (4 * s + 4 <= upper);
    mid = 4 * s + 2;
    return s + (vb > mid || (vb == mid && (s & 1)));
}

/* Digits (no trailing zeros) and power of ten of the shortest decimal of
   the positive finite double with biased exponent be and fraction f. */
static uint64_t tb__dtoa_decimal(int be, uint64_t f, int *k) {
    uint64_t c = be ? f | ((uint64_t)1 << 52) : f, d;
    int q = be ? be - 1075 : -1074;
    if (q <= 0 && q >= -52 && !(c & (((uint64_t)1 << -q) - 1))) {
        /* an integer below 2^53: its own digits are the shortest */
        d = c >> -q;
        *k = 0;
    } else {
        d = tb__dtoa_schubfach(c, q, f == 0 && be > 1, k);
    }
    while (d % 10000 == 0) {
        d /= 10000;
        *k += 4;
    }
    while (d % 10 == 0) {
        d /= 10;
        *k += 1;
    }
    return d;
}

/* Lays out the digits as Python's repr() does: positional when
   1e-4 <= |v| < 1e16, with ".0" added to integers; otherwise d.ddde+XX with
   at least two exponent digits. */
TURBO_API int turbo_dtoa(double v, char *dst) {
    char digits[20], *o = dst;
    uint64_t bits, d;
    int be, k, n, point, e;
    memcpy(&bits, &v, sizeof bits);
    be = (int)(bits >> 52) & 0x7ff;
    if (be == 0x7ff && (bits << 12)) {
        memcpy(dst, "nan", 3);
        return 3;
    }
    if (bits >> 63) *o++ = '-';
    if (be == 0x7ff) {
        memcpy(o, "inf", 3);
        return (int)(o + 3 - dst);
    }
    if (!(bits << 1)) {
        memcpy(o, "0.0", 3);
        return (int)(o + 3 - dst);
    }
    d = tb__dtoa_decimal(be, bits & (((uint64_t)1 << 52) - 1), &k);
    n = (int)(tb__json_u64(digits, d) - digits);
    point = n + k; /* v = 0.DIGITS * 10^point */
    if (point > 16 || point <= -4) {
        *o++ = digits[0];
        if (n > 1) {
            *o++ = '.';
            memcpy(o, digits + 1, (size_t)(n - 1));
            o += n - 1;
        }
        e = point - 1;
        *o++ = 'e';
        *o++ = e < 0 ? '-' : '+';
        if (e < 0) e = -e;
        if (e >= 100) {
            *o++ = (char)('0' + e / 100);
            e %= 100;
        }
        memcpy(o, tb__json_pairs + 2 * e, 2);
        o += 2;
    } else if (point <= 0) {
        memcpy(o, "0.000", (size_t)(2 - point));
        o += 2 - point;
        memcpy(o, digits, (size_t)n);
        o += n;
    } else if (point >= n) {
        memcpy(o, digits, (size_t)n);
        o += n;
        memset(o, '0', (size_t)(point - n));
        o += point - n;
        memcpy(o, ".0", 2);
        o += 2;
    } else {
        memcpy(o, digits, (size_t)point);
        o[point] = '.';
        memcpy(o + point + 1, digits + point, (size_t)(n - point));
        o += n + 1;
    }
    return (int)(o - dst);
}

/* ---- the API ---- */

TURBO_API void turbo_json_init(turbo_json *j, turbo_buf *out) {
    j->out = out;
    j->error = TURBO_JSON_OK;
    j->depth = 0;
    j->state = TB__JSON_START;
}

static int tb__json_open(turbo_json *j, char bracket, int inside, int after) {
    char *p = tb__json_value_at(j, 1);
    if (!p) return j->error;
    if (j->depth >= TURBO_JSON_MAX_DEPTH) return tb__json_fail(j, TURBO_JSON_TOO_DEEP);
    *p = bracket;
    j->out->len++;
    j->stack[j->depth++] = (unsigned char)after;
    j->state = inside;
    return 0;
}

/* A container may end after its opening or after a complete member; a key
   still waiting for its value makes the end a bad one. */
static int tb__json_close(turbo_json *j, char bracket, int first, int next) {
    turbo_buf *b = j->out;
    if (j->error) return j->error;
    if (j->state != first && j->state != next) return tb__json_fail(j, TURBO_JSON_BAD_END);
    if (turbo_buf_reserve(b, 1)) return tb__json_fail(j, TURBO_JSON_OOM);
    b->data[b->len++] = bracket;
    j->depth--;
    return tb__json_value_done(j, b->data + b->len);
}

TURBO_API int turbo_json_object_begin(turbo_json *j) {
    return tb__json_open(j, '{', TB__JSON_OBJECT_FIRST, TB__JSON_OBJECT_NEXT);
}
TURBO_API int turbo_json_object_end(turbo_json *j) {
    return tb__json_close(j, '}', TB__JSON_OBJECT_FIRST, TB__JSON_OBJECT_NEXT);
}
TURBO_API int turbo_json_array_begin(turbo_json *j) {
    return tb__json_open(j, '[', TB__JSON_ARRAY_FIRST, TB__JSON_ARRAY_NEXT);
}
TURBO_API int turbo_json_array_end(turbo_json *j) {
    return tb__json_close(j, ']', TB__JSON_ARRAY_FIRST, TB__JSON_ARRAY_NEXT);
}

TURBO_API int turbo_json_keyn(turbo_json *j, const char *key, size_t len) {
    turbo_buf *b = j->out;
    if (j->error) return j->error;
    if (j->state != TB__JSON_OBJECT_FIRST && j->state != TB__JSON_OBJECT_NEXT)
        return tb__json_fail(j, TURBO_JSON_UNEXPECTED_KEY);
    if (j->state == TB__JSON_OBJECT_NEXT) {
        if (turbo_buf_reserve(b, 1)) return tb__json_fail(j, TURBO_JSON_OOM);
        b->data[b->len++] = ',';
    }
    if (tb__json_put_string(j, key, len, ':')) return j->error;
    j->state = TB__JSON_MEMBER;
    return 0;
}
TURBO_API int turbo_json_key(turbo_json *j, const char *key) {
    return turbo_json_keyn(j, key, strlen(key));
}

TURBO_API int turbo_json_stringn(turbo_json *j, const char *s, size_t len) {
    if (!tb__json_value_at(j, 0) || tb__json_put_string(j, s, len, 0)) return j->error;
    return tb__json_value_done(j, j->out->data + j->out->len);
}
/* A NULL string is written as null, so optional fields need no branch. */
TURBO_API int turbo_json_string(turbo_json *j, const char *s) {
    return s ? turbo_json_stringn(j, s, strlen(s)) : turbo_json_null(j);
}

TURBO_API int turbo_json_int(turbo_json *j, int64_t v) {
    char *p = tb__json_value_at(j, 20);
    if (!p) return j->error;
    if (v < 0) *p++ = '-';
    return tb__json_value_done(j, tb__json_u64(p, v < 0 ? 0 - (uint64_t)v : (uint64_t)v));
}
TURBO_API int turbo_json_uint(turbo_json *j, uint64_t v) {
    char *p = tb__json_value_at(j, 20);
    if (!p) return j->error;
    return tb__json_value_done(j, tb__json_u64(p, v));
}

TURBO_API int turbo_json_double(turbo_json *j, double v) {
    char *p = tb__json_value_at(j, 32);
    uint64_t bits;
    if (!p) return j->error;
    memcpy(&bits, &v, sizeof bits);
    if ((bits >> 52 & 0x7ff) == 0x7ff) return tb__json_fail(j, TURBO_JSON_NOT_FINITE);
    return tb__json_value_done(j, p + turbo_dtoa(v, p));
}

TURBO_API int turbo_json_bool(turbo_json *j, int v) {
    char *p = tb__json_value_at(j, 5);
    if (!p) return j->error;
    memcpy(p, v ? "true" : "false", v ? 4 : 5);
    return tb__json_value_done(j, p + (v ? 4 : 5));
}
TURBO_API int turbo_json_null(turbo_json *j) {
    char *p = tb__json_value_at(j, 4);
    if (!p) return j->error;
    memcpy(p, "null", 4);
    return tb__json_value_done(j, p + 4);
}
TURBO_API int turbo_json_raw(turbo_json *j, const char *json, size_t len) {
    char *p = tb__json_value_at(j, len);
    if (!p) return j->error;
    if (len) memcpy(p, json, len);
    return tb__json_value_done(j, p + len);
}

TURBO_API int turbo_json_finish(turbo_json *j) {
    if (j->error) return j->error;
    if (j->state != TB__JSON_DONE) return tb__json_fail(j, TURBO_JSON_INCOMPLETE);
    return 0;
}

TURBO_API const char *turbo_json_strerror(int error) {
    switch (error) {
    case TURBO_JSON_OK: return "no error";
    case TURBO_JSON_EXPECTED_KEY: return "a value was written where an object needed a key";
    case TURBO_JSON_UNEXPECTED_KEY: return "a key was written outside an object or after a key";
    case TURBO_JSON_BAD_END: return "an end does not match the open container";
    case TURBO_JSON_TOO_DEEP: return "nesting is deeper than TURBO_JSON_MAX_DEPTH";
    case TURBO_JSON_NOT_FINITE: return "NaN or infinity is not JSON";
    case TURBO_JSON_AFTER_END: return "a value was written after the complete document";
    case TURBO_JSON_INCOMPLETE: return "the document is empty or has containers still open";
    case TURBO_JSON_OOM: return "out of memory for the JSON output";
    default: return "unknown JSON writer error";
    }
}
