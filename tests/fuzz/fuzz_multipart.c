/* libFuzzer target: turbo's multipart/form-data parser (turbo_multipart_begin
   and _next) on any Content-Type and body.

   Input: the Content-Type value up to the first '\n', then the body, each in
   an exact-size heap copy (so ASan sees any read past it). Invariants: begin
   says yes only for multipart/form-data with a 1-70 byte boundary; every part
   is a view inside the body, in order, not overlapping the previous; its data
   never holds the delimiter; a part has a name; next stops (0 or -1) and then
   keeps saying so. */
#define TURBO_IMPL
#include "../../turbo.h"

#include "fuzz_common.h"

static int inside(turbo_str s, const char *lo, const char *hi) {
    return !s.ptr || (s.ptr >= lo && s.ptr + s.len <= hi);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nl = (const uint8_t *)memchr(data, '\n', size);
    size_t ct_len = nl ? (size_t)(nl - data) : size, body_len = nl ? size - ct_len - 1 : 0;
    char *ct = fuzz_copy(data, ct_len), *body = fuzz_copy(nl ? nl + 1 : data, body_len);
    const char *end = body + body_len, *last = body;
    turbo_str type, whole;
    turbo_multipart m;
    turbo_part part;
    int rc, parts = 0;
    type.ptr = ct;
    type.len = ct_len;
    whole.ptr = body;
    whole.len = body_len;
    if (turbo_multipart_begin(&m, type, whole) == 0) {
        FUZZ_ASSERT(ct_len >= 19 && m.delim_len > 4 && m.delim_len <= 74, "delimiter %zu", m.delim_len);
        while ((rc = turbo_multipart_next(&m, &part)) == 1) {
            FUZZ_ASSERT(part.name.ptr && inside(part.name, last, end) && inside(part.filename, last, end) &&
                            inside(part.content_type, last, end) && inside(part.head, last, end) &&
                            inside(part.data, last, end),
                        "part %d is not a view after the previous one", parts);
            FUZZ_ASSERT(!part.data.len || !memmem(part.data.ptr, part.data.len, m.delim, m.delim_len),
                        "part %d holds the delimiter", parts);
            last = part.data.ptr + part.data.len;
            parts++;
        }
        FUZZ_ASSERT(rc == 0 || rc == -1, "next gave %d", rc);
        FUZZ_ASSERT(turbo_multipart_next(&m, &part) == rc, "next changed its mind after %d", rc);
    }
    free(ct);
    free(body);
    return 0;
}
