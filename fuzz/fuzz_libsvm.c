/* libFuzzer target for the text/libsvm decoder: any bytes must decode into a
 * consistent matrix or be refused with a one-line 400 message (or the value
 * cap's 413), never read outside the body; a body that decodes free-width
 * must decode the same at the width it found. Seed it with the libsvm bodies
 * of the AWS corpus (its requests/ directory) and those in tests/test_libsvm.c. */
#include "fuzz_decoder.h"
#include "smserve/libsvm.h"

/* The cap, lowered so that no input allocates much; a 413 under it is a
 * clean refusal, reported to the harness as 0 rows at the asked width. */
#define FUZZ_MAX_VALUES (1u << 20)

static int decode_capped(const char *body, size_t len, size_t expect_cols, sms_matrix_t *out,
                         sms_error_t *err)
{
    int rc = sms_libsvm_decode_capped(body, len, expect_cols, FUZZ_MAX_VALUES, out, err);
    if (rc == 0 || err->status != 413)
        return rc;
    if (out->rows != 0 || strncmp(err->msg, "the body expands to ", 20) != 0)
        __builtin_trap();
    out->cols = expect_cols;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_decoder(decode_capped, data, size);
}
