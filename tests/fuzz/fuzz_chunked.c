/* libFuzzer target: turbo's incremental, in-place chunked decoder against an
   independent reference decoder (fuzz_common.h), over the whole input and
   over the same bytes arriving in random splits.

   Input: byte 0 picks the limits, bytes 1-4 seed the splits, the rest is
   the chunked body. Invariants: the same verdict (complete / need more /
   the same error status) as the reference; when complete, the same raw
   length and decoded bytes; the split run agrees with the one-shot run. */
#define TURBO_IMPL
#include "../../turbo.h"

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const uint64_t bodies[4] = {1, 16, 1000, 1 << 20};
    static const size_t heads[4] = {8, 64, 1024, 32768};
    tb__limits lim;
    tb__chunked one, split;
    ref_chunked ref;
    fuzz_rng rng;
    char *whole, *pieces;
    unsigned char *ref_out;
    size_t n;
    int rc, rc_split, rc_ref;
    if (size < 5) return 0;
    lim.max_line = 8192;
    lim.max_head = heads[data[0] >> 2 & 3];
    lim.max_headers = 100;
    lim.max_body = bodies[data[0] & 3];
    memcpy(&rng.s, data + 1, 4);
    data += 5;
    n = size - 5;

    whole = fuzz_copy(data, n);
    memset(&one, 0, sizeof one);
    rc = tb__dechunk(whole, n, &one, &lim);
    FUZZ_ASSERT(rc == 1 || rc == 0 || rc == -400 || rc == -413 || rc == -431, "rc %d", rc);
    FUZZ_ASSERT(one.dst <= one.src && one.src <= n, "dst %zu src %zu n %zu", one.dst, one.src, n);

    ref_out = (unsigned char *)fuzz_alloc(n);
    rc_ref = ref_dechunk(data, n, ref_out, lim.max_body, lim.max_head, &ref);
    FUZZ_ASSERT(rc == rc_ref, "turbo %d, reference %d", rc, rc_ref);
    if (rc == 1) {
        FUZZ_ASSERT(one.src == ref.raw_len, "raw length %zu, reference %zu", one.src, ref.raw_len);
        FUZZ_ASSERT(one.dst == ref.body_len && memcmp(whole, ref_out, one.dst) == 0,
                    "decoded %zu bytes, reference %zu (or the bytes differ)", one.dst, ref.body_len);
    }

    rc_split = fuzz_dechunk_split((const char *)data, n, &rng, 64, &lim, &split, &pieces);
    FUZZ_ASSERT(rc_split == rc, "split run %d, one-shot %d", rc_split, rc);
    if (rc == 1)
        FUZZ_ASSERT(split.src == one.src && split.dst == one.dst && memcmp(pieces, whole, one.dst) == 0,
                    "split run decoded %zu of %zu raw, one-shot %zu of %zu", split.dst, split.src, one.dst,
                    one.src);
    free(pieces);
    free(ref_out);
    free(whole);
    return 0;
}
