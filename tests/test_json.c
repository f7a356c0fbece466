/* Tests of turbo.h's JSON writer: golden outputs for every value kind and
   escaping rule, one test per misuse error, and a generator of random
   documents for tests/test_json_roundtrip.py.

     test_json                 runs the tests; last line "N passed, N failed"
     test_json --gen N SEED    prints 3N lines for the property test, each
       three tab-separated fields (the writer never emits a raw tab):
       F  a JSON array of 100 doubles  their bits, 16 hex digits each
       S  a JSON string                its input bytes in hex, "-" if none
       V  a JSON document              the same as tokens (see gen_value)
*/
#define TURBO_IMPL
#define TURBO_MALLOC(n) malloc(n)
#define TURBO_REALLOC(p, n) test_realloc(p, n)
#define TURBO_FREE(p) free(p)
#include <stddef.h> /* the compiler's own: leaves libc's feature macros to turbo.h */
static void *test_realloc(void *p, size_t n);
#include "../turbo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_fail_realloc; /* makes every growth of a buffer fail */
static void *test_realloc(void *p, size_t n) { return g_fail_realloc ? NULL : realloc(p, n); }

static const char *g_test;
static const char *g_filter; /* -k WORD: only the tests whose name has it */
static int g_test_failed, g_passed, g_failed;

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: %s: failed: %s\n", __FILE__, __LINE__, g_test, #cond); \
            g_test_failed = 1;                                                             \
        }                                                                                  \
    } while (0)

#define RUN(test)                                        \
    do {                                                 \
        if (g_filter && !strstr(#test, g_filter)) break; \
        g_test = #test;                                  \
        g_test_failed = 0;                               \
        test();                                          \
        if (g_test_failed) g_failed++;                   \
        else g_passed++;                                 \
    } while (0)

/* A writer over a fresh buffer; doc_is() checks the document and frees it. */
typedef struct doc {
    turbo_buf buf;
    turbo_json j;
} doc;

static void doc_start(doc *d) {
    memset(&d->buf, 0, sizeof d->buf);
    turbo_json_init(&d->j, &d->buf);
}

static void doc_is(doc *d, const char *want, size_t want_len, int line) {
    int err = turbo_json_finish(&d->j);
    if (err) {
        fprintf(stderr, "%s:%d: %s: writer error %d (%s)\n", __FILE__, line, g_test, err,
                turbo_json_strerror(err));
        g_test_failed = 1;
    } else if (d->buf.len != want_len || memcmp(d->buf.data, want, want_len) != 0) {
        fprintf(stderr, "%s:%d: %s:\n  got  [%.*s]\n  want [%.*s]\n", __FILE__, line, g_test, (int)d->buf.len,
                d->buf.data, (int)want_len, want);
        g_test_failed = 1;
    }
    turbo_buf_free(&d->buf);
}
#define DOC_IS(d, want) doc_is(d, want, strlen(want), __LINE__)

/* The document made of the one string s[0..len). */
static void string_is(const char *s, size_t len, const char *want, int line) {
    doc d;
    doc_start(&d);
    turbo_json_stringn(&d.j, s, len);
    doc_is(&d, want, strlen(want), line);
}
#define STRING_IS(s, want) string_is(s, sizeof(s) - 1, want, __LINE__)

static double from_bits(uint64_t bits) {
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static void double_is(double v, const char *want, int line) {
    char dst[32];
    int n = turbo_dtoa(v, dst);
    doc d;
    if (n != (int)strlen(want) || memcmp(dst, want, (size_t)n) != 0) {
        fprintf(stderr, "%s:%d: %s: turbo_dtoa gave [%.*s], want [%s]\n", __FILE__, line, g_test, n, dst,
                want);
        g_test_failed = 1;
    }
    doc_start(&d);
    turbo_json_double(&d.j, v);
    doc_is(&d, want, strlen(want), line);
}
#define DOUBLE_IS(v, want) double_is(v, want, __LINE__)

/* ---------------------------------------------------------------- values */

static void test_empty_containers(void) {
    doc d;
    doc_start(&d);
    turbo_json_object_begin(&d.j);
    turbo_json_object_end(&d.j);
    DOC_IS(&d, "{}");
    doc_start(&d);
    turbo_json_array_begin(&d.j);
    turbo_json_array_end(&d.j);
    DOC_IS(&d, "[]");
}

static void test_commas_and_colons_are_written_by_the_writer(void) {
    doc d;
    doc_start(&d);
    turbo_json_object_begin(&d.j);
    turbo_json_key(&d.j, "a");
    turbo_json_int(&d.j, 1);
    turbo_json_key(&d.j, "b");
    turbo_json_array_begin(&d.j);
    turbo_json_bool(&d.j, 1);
    turbo_json_bool(&d.j, 0);
    turbo_json_null(&d.j);
    turbo_json_array_begin(&d.j);
    turbo_json_array_end(&d.j);
    turbo_json_object_begin(&d.j);
    turbo_json_object_end(&d.j);
    turbo_json_array_end(&d.j);
    turbo_json_key(&d.j, "c");
    turbo_json_object_begin(&d.j);
    turbo_json_key(&d.j, "d");
    turbo_json_string(&d.j, "e");
    turbo_json_key(&d.j, "f");
    turbo_json_double(&d.j, 2.5);
    turbo_json_object_end(&d.j);
    turbo_json_key(&d.j, "g");
    turbo_json_uint(&d.j, 7);
    turbo_json_object_end(&d.j);
    DOC_IS(&d, "{\"a\":1,\"b\":[true,false,null,[],{}],\"c\":{\"d\":\"e\",\"f\":2.5},\"g\":7}");
}

static void test_a_scalar_alone_is_a_document(void) {
    doc d;
    doc_start(&d);
    turbo_json_string(&d.j, "x");
    DOC_IS(&d, "\"x\"");
    doc_start(&d);
    turbo_json_int(&d.j, -3);
    DOC_IS(&d, "-3");
    doc_start(&d);
    turbo_json_null(&d.j);
    DOC_IS(&d, "null");
}

static void test_bool_writes_any_nonzero_as_true(void) {
    doc d;
    doc_start(&d);
    turbo_json_array_begin(&d.j);
    turbo_json_bool(&d.j, 2);
    turbo_json_bool(&d.j, -1);
    turbo_json_bool(&d.j, 0);
    turbo_json_array_end(&d.j);
    DOC_IS(&d, "[true,true,false]");
}

static void test_null_string_pointer_is_written_as_null(void) {
    doc d;
    doc_start(&d);
    turbo_json_object_begin(&d.j);
    turbo_json_key(&d.j, "bio");
    turbo_json_string(&d.j, NULL);
    turbo_json_object_end(&d.j);
    DOC_IS(&d, "{\"bio\":null}");
}

static void test_raw_json_is_copied_as_is_between_commas(void) {
    doc d;
    doc_start(&d);
    turbo_json_array_begin(&d.j);
    turbo_json_int(&d.j, 1);
    turbo_json_raw(&d.j, "{\"x\": [2]}", 10);
    turbo_json_int(&d.j, 3);
    turbo_json_array_end(&d.j);
    DOC_IS(&d, "[1,{\"x\": [2]},3]");
    doc_start(&d);
    turbo_json_object_begin(&d.j);
    turbo_json_key(&d.j, "k");
    turbo_json_raw(&d.j, "true", 4);
    turbo_json_object_end(&d.j);
    DOC_IS(&d, "{\"k\":true}");
}

static void test_keyn_and_stringn_use_the_given_length(void) {
    doc d;
    doc_start(&d);
    turbo_json_object_begin(&d.j);
    turbo_json_keyn(&d.j, "a\0b", 3);
    turbo_json_stringn(&d.j, "xyz", 2);
    turbo_json_keyn(&d.j, NULL, 0);
    turbo_json_stringn(&d.j, NULL, 0);
    turbo_json_object_end(&d.j);
    DOC_IS(&d, "{\"a\\u0000b\":\"xy\",\"\":\"\"}");
}

static void test_keys_are_escaped_like_strings(void) {
    doc d;
    doc_start(&d);
    turbo_json_object_begin(&d.j);
    turbo_json_key(&d.j, "q\"\n\xE2\x80\xA8\xFF");
    turbo_json_int(&d.j, 0);
    turbo_json_object_end(&d.j);
    DOC_IS(&d, "{\"q\\\"\\n\\u2028\xEF\xBF\xBD\":0}");
}

static void test_writer_appends_to_what_the_buffer_holds(void) {
    doc d;
    doc_start(&d);
    turbo_buf_append(&d.buf, "HEAD", 4);
    turbo_json_init(&d.j, &d.buf);
    turbo_json_int(&d.j, 5);
    DOC_IS(&d, "HEAD5");
}

/* ---------------------------------------------------------------- strings */

static void test_string_escapes_quote_and_backslash_and_leaves_slash(void) {
    STRING_IS("a\"b\\c/d", "\"a\\\"b\\\\c/d\"");
    STRING_IS("", "\"\"");
}

static void test_string_escapes_every_control_char(void) {
    static const char *const want[32] = {
        "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007",
        "\\b",     "\\t",     "\\n",     "\\u000b", "\\f",     "\\r",     "\\u000e", "\\u000f",
        "\\u0010", "\\u0011", "\\u0012", "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017",
        "\\u0018", "\\u0019", "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
    };
    char in[3], expect[16];
    int c;
    for (c = 0; c < 32; c++) {
        in[0] = 'x';
        in[1] = (char)c;
        in[2] = 'y';
        snprintf(expect, sizeof expect, "\"x%sy\"", want[c]);
        string_is(in, 3, expect, __LINE__);
    }
}

static void test_string_leaves_del_and_printable_ascii_alone(void) {
    char in[96], expect[200];
    size_t n = 0, m = 0;
    int c;
    expect[m++] = '"';
    for (c = 0x20; c <= 0x7F; c++) {
        in[n++] = (char)c;
        if (c == '"' || c == '\\') expect[m++] = '\\';
        expect[m++] = (char)c;
    }
    expect[m++] = '"';
    expect[m] = 0;
    string_is(in, n, expect, __LINE__);
}

static void test_string_copies_valid_multibyte_utf8(void) {
    /* e-acute, euro, grinning face, and the edges of each length and range */
    STRING_IS("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", "\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"");
    STRING_IS("\xC2\x80\xDF\xBF", "\"\xC2\x80\xDF\xBF\"");                 /* U+0080 U+07FF */
    STRING_IS("\xE0\xA0\x80\xEF\xBF\xBF", "\"\xE0\xA0\x80\xEF\xBF\xBF\""); /* U+0800 U+FFFF */
    STRING_IS("\xED\x9F\xBF\xEE\x80\x80", "\"\xED\x9F\xBF\xEE\x80\x80\""); /* U+D7FF U+E000 */
    STRING_IS("\xF0\x90\x80\x80\xF4\x8F\xBF\xBF",
              "\"\xF0\x90\x80\x80\xF4\x8F\xBF\xBF\""); /* U+10000 U+10FFFF */
    STRING_IS("\xEF\xBF\xBD", "\"\xEF\xBF\xBD\"");     /* U+FFFD itself */
}

/* clang-format off */
static void test_string_escapes_u2028_and_u2029(void) {
    STRING_IS("a\xE2\x80\xA8" "b\xE2\x80\xA9" "c", "\"a\\u2028b\\u2029c\"");
    STRING_IS("\xE2\x80\xA7\xE2\x80\xAA", "\"\xE2\x80\xA7\xE2\x80\xAA\""); /* neighbours */
}

#define REPL "\xEF\xBF\xBD" /* U+FFFD */

static void test_invalid_utf8_overlong_forms_are_replaced(void) {
    STRING_IS("\xC0\x80", "\"" REPL REPL "\"");
    STRING_IS("\xC1\xBF", "\"" REPL REPL "\"");
    STRING_IS("\xE0\x80\x80", "\"" REPL REPL REPL "\"");
    STRING_IS("\xE0\x9F\xBF", "\"" REPL REPL REPL "\"");
    STRING_IS("\xF0\x80\x80\x80", "\"" REPL REPL REPL REPL "\"");
    STRING_IS("\xF0\x8F\xBF\xBF", "\"" REPL REPL REPL REPL "\"");
}

static void test_invalid_utf8_surrogates_are_replaced(void) {
    STRING_IS("\xED\xA0\x80", "\"" REPL REPL REPL "\"");  /* U+D800 */
    STRING_IS("\xED\xBF\xBF", "\"" REPL REPL REPL "\"");  /* U+DFFF */
    /* a surrogate pair in CESU-8 form: six bytes, six replacements */
    STRING_IS("\xED\xA0\xBD\xED\xB8\x80", "\"" REPL REPL REPL REPL REPL REPL "\"");
}

static void test_invalid_utf8_above_u10ffff_is_replaced(void) {
    STRING_IS("\xF4\x90\x80\x80", "\"" REPL REPL REPL REPL "\"");
    STRING_IS("\xF5\x80\x80\x80", "\"" REPL REPL REPL REPL "\"");
    STRING_IS("\xF8\x88\x80\x80\x80", "\"" REPL REPL REPL REPL REPL "\"");
    STRING_IS("\xFE\xFF", "\"" REPL REPL "\"");
}

static void test_invalid_utf8_truncated_sequence_is_one_replacement(void) {
    STRING_IS("\xE2\x82" "A", "\"" REPL "A\"");
    STRING_IS("\xF0\x9F\x98" "A", "\"" REPL "A\"");
    STRING_IS("\xF0\x9F\x98", "\"" REPL "\"");       /* at the end of the string */
    STRING_IS("\xC3", "\"" REPL "\"");
    STRING_IS("x\xE2", "\"x" REPL "\"");
    STRING_IS("\xF0\x9F\xE2\x82\xAC", "\"" REPL "\xE2\x82\xAC\""); /* cut by a new lead */
    STRING_IS("\xC3\"", "\"" REPL "\\\"\"");         /* cut by an escaped byte */
}

static void test_invalid_utf8_stray_continuation_bytes_are_replaced_each(void) {
    STRING_IS("\x80", "\"" REPL "\"");
    STRING_IS("a\x80\xBF" "b", "\"a" REPL REPL "b\"");
    STRING_IS("\xC3\xA9\xA9", "\"\xC3\xA9" REPL "\"");
}
/* clang-format on */

/* Every position of a special byte within and around the fast path's 16-byte blocks and 8-byte words. */
static void test_string_fast_path_finds_special_bytes_anywhere(void) {
    static const char *const special[] = {"\"", "\\", "\n", "\x1f", "\xC3\xA9", "\xFF", "\x7f", " "};
    static const char *const escaped[] = {"\\\"", "\\\\", "\\n", "\\u001f", "\xC3\xA9", REPL, "\x7f", " "};
    char in[48], expect[96];
    size_t s, pos, len;
    for (s = 0; s < sizeof special / sizeof special[0]; s++) {
        for (pos = 0; pos < 38; pos++) { /* in 16-byte blocks, 8-byte words and the bytes after */
            len = strlen(special[s]);
            memset(in, 'a', sizeof in);
            memcpy(in + pos, special[s], len);
            snprintf(expect, sizeof expect, "\"%.*s%s%.*s\"", (int)pos, in, escaped[s], (int)(40 - pos - len),
                     in + pos + len);
            string_is(in, 40, expect, __LINE__);
        }
    }
}

/* Strings up to 17 bytes are checked as one or two words without a loop:
   each length, with a byte that needs escaping (or one just beside a
   boundary that does not) at each position, as a value and as a key. */
static void test_short_strings_find_special_bytes_at_every_position(void) {
    static const char *const special[] = {"\"",   "\\",   "\n",           "\x1f", "\x01", "\xC3\xA9",
                                          "\xFF", "\xC3", "\xE2\x80\xA8", " ",    "!",    "#",
                                          "[",    "]",    "\x7f",         "\x80"};
    static const char *const escaped[] = {"\\\"", "\\\\", "\\n",     "\\u001f", "\\u0001", "\xC3\xA9",
                                          REPL,   REPL,   "\\u2028", " ",       "!",       "#",
                                          "[",    "]",    "\x7f",    REPL};
    char in[24], want[64], key_want[80];
    size_t s, pos, len, n;
    for (s = 0; s < sizeof special / sizeof special[0]; s++) {
        n = strlen(special[s]);
        for (len = n; len <= 17; len++) {
            for (pos = 0; pos + n <= len; pos++) {
                doc d;
                memset(in, 'a', sizeof in);
                memcpy(in + pos, special[s], n);
                snprintf(want, sizeof want, "\"%.*s%s%.*s\"", (int)pos, in, escaped[s], (int)(len - pos - n),
                         in + pos + n);
                string_is(in, len, want, __LINE__);
                snprintf(key_want, sizeof key_want, "{\"k\":0,%s:1}", want);
                doc_start(&d);
                turbo_json_object_begin(&d.j);
                turbo_json_key(&d.j, "k");
                turbo_json_int(&d.j, 0);
                turbo_json_keyn(&d.j, in, len);
                turbo_json_int(&d.j, 1);
                turbo_json_object_end(&d.j);
                doc_is(&d, key_want, strlen(key_want), __LINE__);
            }
        }
    }
    for (len = 0; len <= 17; len++) {
        memset(in, 'a', sizeof in);
        snprintf(want, sizeof want, "\"%.*s\"", (int)len, in);
        string_is(in, len, want, __LINE__);
    }
}

/* Long strings are escaped in chunks; sequences and escapes straddle them. */
static void test_long_string_is_escaped_across_chunks(void) {
    static const char unit[] = "ab\xE2\x82\xAC\n\xF0\x9F\x98\x80z\xE2\x80\xA8\x01"; /* 15 bytes */
    static const char unit_out[] = "ab\xE2\x82\xAC\\n\xF0\x9F\x98\x80z\\u2028\\u0001";
    size_t reps = 3001, i, in_len = (sizeof unit - 1) * reps + 3;
    size_t out_len = (sizeof unit_out - 1) * reps + 3 + 2;
    char *in = (char *)malloc(in_len), *out = (char *)malloc(out_len + 1);
    doc d;
    for (i = 0; i < reps; i++) {
        memcpy(in + i * (sizeof unit - 1), unit, sizeof unit - 1);
        memcpy(out + 1 + i * (sizeof unit_out - 1), unit_out, sizeof unit_out - 1);
    }
    memcpy(in + in_len - 3, "\xF0\x9F\x98", 3); /* ends in a truncated sequence */
    out[0] = '"';
    memcpy(out + out_len - 4, REPL "\"", 4);
    out[out_len] = 0;
    doc_start(&d);
    turbo_json_stringn(&d.j, in, in_len);
    doc_is(&d, out, out_len, __LINE__);
    free(in);
    free(out);
}

/* ---------------------------------------------------------------- integers */

static void test_int64_extremes_are_exact(void) {
    doc d;
    doc_start(&d);
    turbo_json_array_begin(&d.j);
    turbo_json_int(&d.j, INT64_MIN);
    turbo_json_int(&d.j, INT64_MAX);
    turbo_json_int(&d.j, 0);
    turbo_json_int(&d.j, -1);
    turbo_json_uint(&d.j, UINT64_MAX);
    turbo_json_uint(&d.j, 0);
    turbo_json_array_end(&d.j);
    DOC_IS(&d, "[-9223372036854775808,9223372036854775807,0,-1,18446744073709551615,0]");
}

static void test_integers_of_every_digit_count_are_exact(void) {
    uint64_t p = 1, v;
    char want[32];
    int k, i;
    doc d;
    for (k = 1; k <= 19; k++) {
        p *= 10;
        for (i = 0; i < 2; i++) {
            v = p - (uint64_t)(1 - i); /* k digits, then k+1 */
            snprintf(want, sizeof want, "%llu", (unsigned long long)v);
            doc_start(&d);
            turbo_json_uint(&d.j, v);
            DOC_IS(&d, want);
            if (v > (uint64_t)INT64_MAX) continue;
            snprintf(want, sizeof want, "-%llu", (unsigned long long)v);
            doc_start(&d);
            turbo_json_int(&d.j, -(int64_t)v);
            DOC_IS(&d, want);
        }
    }
}

/* ---------------------------------------------------------------- doubles */

static void test_double_is_shortest_round_trip_as_python_repr(void) {
    DOUBLE_IS(0.1, "0.1");
    DOUBLE_IS(0.3, "0.3");
    DOUBLE_IS(2.0 / 3.0, "0.6666666666666666");
    DOUBLE_IS(123.456, "123.456");
    DOUBLE_IS(-1.5, "-1.5");
    DOUBLE_IS(1e23, "1e+23");
    DOUBLE_IS(from_bits(0x3FF0000000000001u), "1.0000000000000002");
    DOUBLE_IS(from_bits(0x3FEFFFFFFFFFFFFFu), "0.9999999999999999");
}

/* v exactly halfway between the two nearest 17-digit decimals, no shorter
   one in reach: the even last digit wins, as in repr(). */
static void test_double_tie_goes_to_even_digit(void) {
    DOUBLE_IS(1473071987530.09375, "1473071987530.0938");
    DOUBLE_IS(670447610793718.25, "670447610793718.2");
    DOUBLE_IS(719874462186831.75, "719874462186831.8");
    DOUBLE_IS(135966612757450.625, "135966612757450.62");
}

/* Below a power of two the doubles are twice as dense: the interval that
   reads back as v is narrower on that side. */
static void test_double_power_of_two_has_narrower_interval_below(void) {
    DOUBLE_IS(from_bits(0x0040000000000000u), "1.7800590868057611e-307");
    DOUBLE_IS(from_bits(0x0060000000000000u), "7.120236347223045e-307");
    DOUBLE_IS(from_bits(0x00A0000000000000u), "1.1392378155556871e-305");
}

static void test_double_extremes(void) {
    DOUBLE_IS(from_bits(1), "5e-324"); /* smallest subnormal */
    DOUBLE_IS(from_bits(2), "1e-323");
    DOUBLE_IS(from_bits(3), "1.5e-323");
    DOUBLE_IS(from_bits(0x000FFFFFFFFFFFFFu), "2.225073858507201e-308");  /* largest subnormal */
    DOUBLE_IS(from_bits(0x0010000000000000u), "2.2250738585072014e-308"); /* smallest normal */
    DOUBLE_IS(from_bits(0x7FEFFFFFFFFFFFFFu), "1.7976931348623157e+308"); /* largest */
    DOUBLE_IS(-from_bits(0x7FEFFFFFFFFFFFFFu), "-1.7976931348623157e+308");
    DOUBLE_IS(from_bits(0x7FE0000000000000u), "8.98846567431158e+307"); /* 2^1023 */
}

static void test_double_zero_keeps_its_sign(void) {
    DOUBLE_IS(0.0, "0.0");
    DOUBLE_IS(from_bits(0x8000000000000000u), "-0.0");
}

static void test_integral_double_keeps_point_zero_below_1e16(void) {
    DOUBLE_IS(1.0, "1.0");
    DOUBLE_IS(-100.0, "-100.0");
    DOUBLE_IS(9007199254740992.0, "9007199254740992.0"); /* 2^53 */
    DOUBLE_IS(9007199254740993.0, "9007199254740992.0"); /* rounds to 2^53 */
    DOUBLE_IS(1e15, "1000000000000000.0");
    DOUBLE_IS(1234567890123456.0, "1234567890123456.0");
}

static void test_double_exponent_form_as_python_repr(void) {
    DOUBLE_IS(1e16, "1e+16");
    DOUBLE_IS(1e21, "1e+21");
    DOUBLE_IS(1e22, "1e+22");
    DOUBLE_IS(1e100, "1e+100");
    DOUBLE_IS(12345678901234567890.0, "1.2345678901234567e+19");
    DOUBLE_IS(123456789012345680.0, "1.2345678901234568e+17");
    DOUBLE_IS(0.0001, "0.0001");
    DOUBLE_IS(0.00012, "0.00012");
    DOUBLE_IS(0.00001, "1e-05");
    DOUBLE_IS(1.5e-7, "1.5e-07");
    DOUBLE_IS(-2.5e-100, "-2.5e-100");
}

static void test_dtoa_spells_nonfinite_as_python_repr(void) {
    char dst[32];
    int n = turbo_dtoa(from_bits(0x7FF8000000000000u), dst);
    CHECK(n == 3 && memcmp(dst, "nan", 3) == 0);
    n = turbo_dtoa(from_bits(0xFFF8000000000001u), dst);
    CHECK(n == 3 && memcmp(dst, "nan", 3) == 0);
    n = turbo_dtoa(from_bits(0x7FF0000000000000u), dst);
    CHECK(n == 3 && memcmp(dst, "inf", 3) == 0);
    n = turbo_dtoa(from_bits(0xFFF0000000000000u), dst);
    CHECK(n == 4 && memcmp(dst, "-inf", 4) == 0);
}

/* ---------------------------------------------------------------- misuse */

static void test_value_where_key_is_due_is_expected_key(void) {
    doc d;
    doc_start(&d);
    turbo_json_object_begin(&d.j);
    CHECK(turbo_json_int(&d.j, 1) == TURBO_JSON_EXPECTED_KEY);
    CHECK(turbo_json_finish(&d.j) == TURBO_JSON_EXPECTED_KEY);
    turbo_buf_free(&d.buf);
    doc_start(&d);
    turbo_json_object_begin(&d.j);
    turbo_json_key(&d.j, "a");
    turbo_json_int(&d.j, 1);
    CHECK(turbo_json_array_begin(&d.j) == TURBO_JSON_EXPECTED_KEY);
    turbo_buf_free(&d.buf);
}

static void test_key_outside_an_object_is_unexpected_key(void) {
    doc d;
    doc_start(&d);
    CHECK(turbo_json_key(&d.j, "a") == TURBO_JSON_UNEXPECTED_KEY);
    turbo_buf_free(&d.buf);
    doc_start(&d);
    turbo_json_array_begin(&d.j);
    CHECK(turbo_json_key(&d.j, "a") == TURBO_JSON_UNEXPECTED_KEY);
    turbo_buf_free(&d.buf);
}

static void test_two_keys_in_a_row_is_unexpected_key(void) {
    doc d;
    doc_start(&d);
    turbo_json_object_begin(&d.j);
    turbo_json_key(&d.j, "a");
    CHECK(turbo_json_key(&d.j, "b") == TURBO_JSON_UNEXPECTED_KEY);
    turbo_buf_free(&d.buf);
}

static void test_end_that_does_not_match_is_bad_end(void) {
    doc d;
    doc_start(&d);
    turbo_json_object_begin(&d.j);
    CHECK(turbo_json_array_end(&d.j) == TURBO_JSON_BAD_END);
    turbo_buf_free(&d.buf);
    doc_start(&d);
    turbo_json_array_begin(&d.j);
    CHECK(turbo_json_object_end(&d.j) == TURBO_JSON_BAD_END);
    turbo_buf_free(&d.buf);
    doc_start(&d);
    CHECK(turbo_json_array_end(&d.j) == TURBO_JSON_BAD_END); /* nothing open */
    turbo_buf_free(&d.buf);
    doc_start(&d);
    turbo_json_object_begin(&d.j);
    turbo_json_key(&d.j, "a");
    CHECK(turbo_json_object_end(&d.j) == TURBO_JSON_BAD_END); /* key without value */
    turbo_buf_free(&d.buf);
}

static void test_nesting_beyond_max_depth_is_too_deep(void) {
    doc d;
    int i;
    doc_start(&d);
    for (i = 0; i < TURBO_JSON_MAX_DEPTH; i++) CHECK(turbo_json_array_begin(&d.j) == 0);
    CHECK(turbo_json_object_begin(&d.j) == TURBO_JSON_TOO_DEEP);
    turbo_buf_free(&d.buf);
    doc_start(&d); /* exactly the maximum is fine */
    for (i = 0; i < TURBO_JSON_MAX_DEPTH; i++) turbo_json_array_begin(&d.j);
    for (i = 0; i < TURBO_JSON_MAX_DEPTH; i++) turbo_json_array_end(&d.j);
    CHECK(turbo_json_finish(&d.j) == 0);
    CHECK(d.buf.len == 2 * TURBO_JSON_MAX_DEPTH);
    turbo_buf_free(&d.buf);
}

/* Objects and arrays mixed at every level, as deep as allowed: each end
   must match its own container (the stack keeps a bit per level), and a
   wrong end is refused at every depth. */
static void test_deep_mixed_nesting_ends_each_container_in_turn(void) {
    doc d;
    int i;
    turbo_buf want = {NULL, 0, 0, 0};
    doc_start(&d);
    for (i = 0; i < TURBO_JSON_MAX_DEPTH; i++) {
        if (i % 3 == 1) {
            turbo_json_array_begin(&d.j);
            turbo_buf_append(&want, "[", 1);
        } else {
            turbo_json_object_begin(&d.j);
            turbo_json_key(&d.j, "k");
            turbo_buf_append(&want, "{\"k\":", 5);
        }
    }
    turbo_json_null(&d.j);
    turbo_buf_append(&want, "null", 4);
    for (i = TURBO_JSON_MAX_DEPTH - 1; i >= 0; i--) {
        turbo_json probe = d.j; /* the wrong end, tried on a copy */
        CHECK((i % 3 == 1 ? turbo_json_object_end(&probe) : turbo_json_array_end(&probe)) ==
              TURBO_JSON_BAD_END);
        CHECK((i % 3 == 1 ? turbo_json_array_end(&d.j) : turbo_json_object_end(&d.j)) == 0);
        turbo_buf_append(&want, i % 3 == 1 ? "]" : "}", 1);
    }
    CHECK(turbo_json_finish(&d.j) == 0);
    CHECK(d.buf.len == want.len && memcmp(d.buf.data, want.data, want.len) == 0);
    turbo_buf_free(&d.buf);
    turbo_buf_free(&want);
}

static void test_nan_and_infinities_are_not_finite(void) {
    static const uint64_t bad[] = {0x7FF8000000000000u, 0x7FF0000000000000u, 0xFFF0000000000000u,
                                   0x7FF0000000000001u};
    size_t i;
    doc d;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        doc_start(&d);
        turbo_json_array_begin(&d.j);
        CHECK(turbo_json_double(&d.j, from_bits(bad[i])) == TURBO_JSON_NOT_FINITE);
        turbo_buf_free(&d.buf);
    }
}

static void test_second_top_level_value_is_after_end(void) {
    doc d;
    doc_start(&d);
    turbo_json_object_begin(&d.j);
    turbo_json_object_end(&d.j);
    CHECK(turbo_json_int(&d.j, 1) == TURBO_JSON_AFTER_END);
    turbo_buf_free(&d.buf);
    doc_start(&d);
    turbo_json_null(&d.j);
    CHECK(turbo_json_array_begin(&d.j) == TURBO_JSON_AFTER_END);
    turbo_buf_free(&d.buf);
}

static void test_finish_with_open_container_or_nothing_is_incomplete(void) {
    doc d;
    doc_start(&d);
    CHECK(turbo_json_finish(&d.j) == TURBO_JSON_INCOMPLETE);
    turbo_buf_free(&d.buf);
    doc_start(&d);
    turbo_json_array_begin(&d.j);
    turbo_json_object_begin(&d.j);
    turbo_json_object_end(&d.j);
    CHECK(turbo_json_finish(&d.j) == TURBO_JSON_INCOMPLETE);
    turbo_buf_free(&d.buf);
    doc_start(&d);
    turbo_json_object_begin(&d.j);
    turbo_json_key(&d.j, "a");
    CHECK(turbo_json_finish(&d.j) == TURBO_JSON_INCOMPLETE);
    turbo_buf_free(&d.buf);
}

static void test_buffer_that_cannot_grow_is_oom(void) {
    doc d;
    doc_start(&d);
    turbo_json_array_begin(&d.j); /* the buffer now has its first block */
    g_fail_realloc = 1;
    CHECK(turbo_json_stringn(&d.j, "0123456789", 10) == 0); /* fits, no growth */
    {
        static char big[100000];
        memset(big, 'x', sizeof big);
        CHECK(turbo_json_stringn(&d.j, big, sizeof big) == TURBO_JSON_OOM);
    }
    g_fail_realloc = 0;
    CHECK(turbo_json_finish(&d.j) == TURBO_JSON_OOM);
    turbo_buf_free(&d.buf);
    doc_start(&d);
    d.buf.oom = 1; /* an earlier append already failed */
    CHECK(turbo_json_int(&d.j, 1) == TURBO_JSON_OOM);
    turbo_buf_free(&d.buf);
}

static void test_errors_are_sticky_and_write_nothing(void) {
    doc d;
    size_t len;
    doc_start(&d);
    turbo_json_object_begin(&d.j);
    CHECK(turbo_json_string(&d.j, "v") == TURBO_JSON_EXPECTED_KEY);
    len = d.buf.len;
    CHECK(turbo_json_key(&d.j, "k") == TURBO_JSON_EXPECTED_KEY);
    CHECK(turbo_json_int(&d.j, 1) == TURBO_JSON_EXPECTED_KEY);
    CHECK(turbo_json_double(&d.j, 1.0) == TURBO_JSON_EXPECTED_KEY);
    CHECK(turbo_json_object_end(&d.j) == TURBO_JSON_EXPECTED_KEY);
    CHECK(turbo_json_raw(&d.j, "1", 1) == TURBO_JSON_EXPECTED_KEY);
    CHECK(turbo_json_finish(&d.j) == TURBO_JSON_EXPECTED_KEY);
    CHECK(d.j.error == TURBO_JSON_EXPECTED_KEY);
    CHECK(d.buf.len == len);
    turbo_buf_free(&d.buf);
}

static void test_strerror_describes_every_error(void) {
    int e, f;
    for (e = TURBO_JSON_OK; e <= TURBO_JSON_OOM; e++) {
        CHECK(turbo_json_strerror(e) != NULL && strlen(turbo_json_strerror(e)) > 5);
        for (f = TURBO_JSON_OK; f < e; f++)
            CHECK(strcmp(turbo_json_strerror(e), turbo_json_strerror(f)) != 0);
    }
    CHECK(strstr(turbo_json_strerror(99), "unknown") != NULL);
}

/* ---------------------------------------------------------------- generator */

static uint64_t g_rng;

static uint64_t rnd(void) { /* splitmix64 */
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}
static unsigned rnd_below(unsigned n) { return (unsigned)(rnd() % n); }

static double gen_double(void) {
    uint64_t bits = 0, sign = rnd() & 0x8000000000000000u;
    unsigned kind = rnd_below(20);
    if (kind < 7) { /* any bit pattern */
        bits = rnd();
    } else if (kind < 10) { /* subnormal, often with few significant bits */
        bits = (rnd() & 0x000FFFFFFFFFFFFFu) >> rnd_below(53);
    } else if (kind < 14) { /* a short decimal: 1-17 digits, any exponent */
        char text[48];
        uint64_t m = 1;
        double v;
        int n = 1 + (int)rnd_below(17);
        while (n--) m *= 10;
        do {
            snprintf(text, sizeof text, "%llue%d", (unsigned long long)(rnd() % m),
                     (int)rnd_below(650) - 340);
            v = strtod(text, NULL);
        } while (v > 1.7976931348623157e308);
        return sign ? -v : v;
    } else if (kind < 16) { /* an integer */
        return (double)(rnd() >> rnd_below(64)) * (sign ? -1 : 1);
    } else if (kind < 18) { /* 2^52 <= c * 2^q < 2^53 with q in [-64, 0]: where */
        bits = (uint64_t)(1075 - rnd_below(65)) << 52 | (rnd() >> 12); /* ties occur */
    } else { /* a power of two, or one step beside it (irregular spacing) */
        bits = (uint64_t)(1 + rnd_below(2046)) << 52;
        bits += rnd_below(3);
        bits -= 1;
    }
    bits = (bits & 0x7FFFFFFFFFFFFFFFu) | sign;
    if ((bits >> 52 & 0x7FF) == 0x7FF) bits &= ~((uint64_t)1 << 62);
    return from_bits(bits);
}

static void put_hex(const unsigned char *p, size_t n) {
    static const char hex[] = "0123456789abcdef";
    size_t i;
    if (!n) putchar('-');
    for (i = 0; i < n; i++) {
        putchar(hex[p[i] >> 4]);
        putchar(hex[p[i] & 15]);
    }
}

static void put_bits(double v) {
    uint64_t bits;
    unsigned char be[8];
    int i;
    memcpy(&bits, &v, sizeof bits);
    for (i = 0; i < 8; i++) be[i] = (unsigned char)(bits >> (56 - 8 * i));
    put_hex(be, 8);
}

/* Random bytes leaning to what the escaper must get right. */
static size_t gen_bytes(unsigned char *s, size_t max) {
    static const char *const seqs[] = {"\xC3\xA9",
                                       "\xE2\x82\xAC",
                                       "\xF0\x9F\x98\x80",
                                       "\xE2\x80\xA8",
                                       "\xE2\x80\xA9",
                                       "\xC2\x80",
                                       "\xDF\xBF",
                                       "\xE0\xA0\x80",
                                       "\xEF\xBF\xBF",
                                       "\xED\x9F\xBF",
                                       "\xEE\x80\x80",
                                       "\xF4\x8F\xBF\xBF",
                                       "\xF0\x90\x80\x80",
                                       "\xED\xA0\x80",
                                       "\xC0\xAF",
                                       "\xE0\x80\xAF",
                                       "\xF4\x90\x80\x80",
                                       "\xF0\x9F\x98",
                                       "\xE2\x82",
                                       "\"",
                                       "\\",
                                       "/",
                                       "\x7F",
                                       "\xEF\xBF\xBD"};
    size_t len = rnd_below(8) == 0 ? rnd_below((unsigned)max) : rnd_below(40), n = 0;
    if (len > max - 4) len = max - 4;
    while (n < len) {
        unsigned kind = rnd_below(10);
        if (kind < 4) {
            s[n++] = (unsigned char)(0x20 + rnd_below(0x5F));
        } else if (kind < 5) {
            s[n++] = (unsigned char)rnd_below(0x20);
        } else if (kind < 6) {
            s[n++] = (unsigned char)(0x80 + rnd_below(0x80));
        } else {
            const char *q = seqs[rnd_below(sizeof seqs / sizeof seqs[0])];
            size_t k = strlen(q);
            memcpy(s + n, q, k);
            n += k;
        }
    }
    return n;
}

/* Writes a random value with the writer and, into `expect`, the same value
   as space-separated tokens: { } [ ] for containers,
   k<hex> a key, s<hex> a string (input bytes), i<dec> int64, u<dec> uint64,
   d<hex> a double's bits, t f n. */
static void gen_value(turbo_json *j, turbo_buf *expect, int depth) {
    unsigned kind = rnd_below(depth < 6 ? 10 : 7);
    char tok[64];
    int n = 0, i, count;
    if (kind == 0) {
        int64_t v = (int64_t)(rnd() >> rnd_below(64));
        if (rnd() & 1) v = -v - (int64_t)(rnd() & 1);
        turbo_json_int(j, v);
        n = snprintf(tok, sizeof tok, "i%lld ", (long long)v);
    } else if (kind == 1) {
        uint64_t v = rnd() >> rnd_below(64);
        turbo_json_uint(j, v);
        n = snprintf(tok, sizeof tok, "u%llu ", (unsigned long long)v);
    } else if (kind == 2) {
        double v = gen_double();
        uint64_t bits;
        memcpy(&bits, &v, sizeof bits);
        turbo_json_double(j, v);
        n = snprintf(tok, sizeof tok, "d%016llx ", (unsigned long long)bits);
    } else if (kind == 3 || kind == 4) {
        unsigned char s[128];
        size_t len = gen_bytes(s, sizeof s);
        turbo_json_stringn(j, (const char *)s, len);
        turbo_buf_append(expect, "s", 1);
        for (i = 0; i < (int)len; i++) {
            n = snprintf(tok, sizeof tok, "%02x", s[i]);
            turbo_buf_append(expect, tok, (size_t)n);
        }
        n = snprintf(tok, sizeof tok, " ");
    } else if (kind == 5) {
        int v = (int)rnd_below(3);
        if (v == 2) turbo_json_null(j);
        else turbo_json_bool(j, v);
        n = snprintf(tok, sizeof tok, "%s ", v == 2 ? "n" : v ? "t" : "f");
    } else if (kind == 6) {
        turbo_json_stringn(j, "", 0);
        n = snprintf(tok, sizeof tok, "s ");
    } else if (kind < 9) {
        count = (int)rnd_below(6);
        turbo_json_array_begin(j);
        turbo_buf_append(expect, "[ ", 2);
        for (i = 0; i < count; i++) gen_value(j, expect, depth + 1);
        turbo_json_array_end(j);
        n = snprintf(tok, sizeof tok, "] ");
    } else {
        count = (int)rnd_below(6);
        turbo_json_object_begin(j);
        turbo_buf_append(expect, "{ ", 2);
        for (i = 0; i < count; i++) {
            unsigned char k[128];
            size_t len = gen_bytes(k, 24), m;
            turbo_json_keyn(j, (const char *)k, len);
            turbo_buf_append(expect, "k", 1);
            for (m = 0; m < len; m++) {
                n = snprintf(tok, sizeof tok, "%02x", k[m]);
                turbo_buf_append(expect, tok, (size_t)n);
            }
            turbo_buf_append(expect, " ", 1);
            gen_value(j, expect, depth + 1);
        }
        turbo_json_object_end(j);
        n = snprintf(tok, sizeof tok, "} ");
    }
    turbo_buf_append(expect, tok, (size_t)n);
}

static int gen_fail(turbo_json *j) {
    int err = turbo_json_finish(j);
    if (err) fprintf(stderr, "test_json --gen: writer error: %s\n", turbo_json_strerror(err));
    return err;
}

static int generate(long count, uint64_t seed) {
    turbo_buf out, expect;
    turbo_json j;
    double vals[100];
    long line;
    int i;
    memset(&out, 0, sizeof out);
    memset(&expect, 0, sizeof expect);
    g_rng = seed;
    for (line = 0; line < count; line++) {
        unsigned char s[8192];
        size_t len;
        out.len = 0;
        turbo_json_init(&j, &out);
        turbo_json_array_begin(&j);
        for (i = 0; i < 100; i++) turbo_json_double(&j, vals[i] = gen_double());
        turbo_json_array_end(&j);
        if (gen_fail(&j)) return 1;
        printf("F\t%.*s\t", (int)out.len, out.data);
        for (i = 0; i < 100; i++) put_bits(vals[i]);
        putchar('\n');

        out.len = 0;
        turbo_json_init(&j, &out);
        len = gen_bytes(s, rnd_below(50) == 0 ? sizeof s : 200);
        turbo_json_stringn(&j, (const char *)s, len);
        if (gen_fail(&j)) return 1;
        printf("S\t%.*s\t", (int)out.len, out.data);
        put_hex(s, len);
        putchar('\n');

        out.len = 0;
        expect.len = 0;
        turbo_json_init(&j, &out);
        gen_value(&j, &expect, 0);
        if (gen_fail(&j)) return 1;
        printf("V\t%.*s\t%.*s\n", (int)out.len, out.data, (int)expect.len, expect.data);
    }
    turbo_buf_free(&out);
    turbo_buf_free(&expect);
    return fflush(stdout) != 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "--gen") == 0)
        return generate(atol(argv[2]), strtoull(argv[3], NULL, 10));
    if (argc == 3 && strcmp(argv[1], "-k") == 0) g_filter = argv[2]; /* only tests named so */
    else if (argc != 1) {
        fprintf(stderr, "usage: test_json [--gen N SEED | -k WORD]\n");
        return 2;
    }
    RUN(test_empty_containers);
    RUN(test_commas_and_colons_are_written_by_the_writer);
    RUN(test_a_scalar_alone_is_a_document);
    RUN(test_bool_writes_any_nonzero_as_true);
    RUN(test_null_string_pointer_is_written_as_null);
    RUN(test_raw_json_is_copied_as_is_between_commas);
    RUN(test_keyn_and_stringn_use_the_given_length);
    RUN(test_keys_are_escaped_like_strings);
    RUN(test_writer_appends_to_what_the_buffer_holds);
    RUN(test_string_escapes_quote_and_backslash_and_leaves_slash);
    RUN(test_string_escapes_every_control_char);
    RUN(test_string_leaves_del_and_printable_ascii_alone);
    RUN(test_string_copies_valid_multibyte_utf8);
    RUN(test_string_escapes_u2028_and_u2029);
    RUN(test_invalid_utf8_overlong_forms_are_replaced);
    RUN(test_invalid_utf8_surrogates_are_replaced);
    RUN(test_invalid_utf8_above_u10ffff_is_replaced);
    RUN(test_invalid_utf8_truncated_sequence_is_one_replacement);
    RUN(test_invalid_utf8_stray_continuation_bytes_are_replaced_each);
    RUN(test_string_fast_path_finds_special_bytes_anywhere);
    RUN(test_short_strings_find_special_bytes_at_every_position);
    RUN(test_long_string_is_escaped_across_chunks);
    RUN(test_int64_extremes_are_exact);
    RUN(test_integers_of_every_digit_count_are_exact);
    RUN(test_double_is_shortest_round_trip_as_python_repr);
    RUN(test_double_tie_goes_to_even_digit);
    RUN(test_double_power_of_two_has_narrower_interval_below);
    RUN(test_double_extremes);
    RUN(test_double_zero_keeps_its_sign);
    RUN(test_integral_double_keeps_point_zero_below_1e16);
    RUN(test_double_exponent_form_as_python_repr);
    RUN(test_dtoa_spells_nonfinite_as_python_repr);
    RUN(test_value_where_key_is_due_is_expected_key);
    RUN(test_key_outside_an_object_is_unexpected_key);
    RUN(test_two_keys_in_a_row_is_unexpected_key);
    RUN(test_end_that_does_not_match_is_bad_end);
    RUN(test_nesting_beyond_max_depth_is_too_deep);
    RUN(test_deep_mixed_nesting_ends_each_container_in_turn);
    RUN(test_nan_and_infinities_are_not_finite);
    RUN(test_second_top_level_value_is_after_end);
    RUN(test_finish_with_open_container_or_nothing_is_incomplete);
    RUN(test_buffer_that_cannot_grow_is_oom);
    RUN(test_errors_are_sticky_and_write_nothing);
    RUN(test_strerror_describes_every_error);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed != 0;
}
