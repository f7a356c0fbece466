/* The portable head parser for fuzz_simd.c: turbo.h built without SSE2,
   every function static, so that both builds live in one program. */
#define TURBO_NO_SIMD
#define TURBO_STATIC
#define TURBO_IMPL
#include "../../turbo.h"

int portable_parse_head(const char *buf, size_t len, turbo_req *r, tb__framing *f, const tb__limits *lim);

int portable_parse_head(const char *buf, size_t len, turbo_req *r, tb__framing *f, const tb__limits *lim) {
    return tb__parse_head(buf, len, r, f, lim);
}
