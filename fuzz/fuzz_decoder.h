/* The harness the request-decoder fuzz targets share: any bytes must decode
 * into a consistent matrix or be refused with a one-line 400 message, never
 * read outside the body. Each input is decoded free-width and at a fixed
 * width; a body that decodes free-width must decode the same at the width it
 * found. A target includes this and calls fuzz_decoder with its decoder. */
#ifndef SMS_FUZZ_DECODER_H
#define SMS_FUZZ_DECODER_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "smserve/decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_refusal(const sms_error_t *err, const sms_matrix_t *m)
{
    if (err->status != 400 || err->msg[0] == '\0' || m->rows != 0)
        __builtin_trap();
    for (const char *c = err->msg; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
            __builtin_trap();
}

static void check_matrix(const sms_matrix_t *m, size_t expect_cols)
{
    if (m->rows && (m->cols == 0 || m->rows * m->cols > m->cap))
        __builtin_trap();
    if (expect_cols && m->cols != expect_cols)
        __builtin_trap();
}

/* Runs every check on one input; traps on a failed one, else returns 0. */
static int fuzz_decoder(sms_decode_fn decode, const uint8_t *data, size_t size)
{
    static sms_matrix_t free_width, fixed_width;
    const char *body = (const char *)data;
    sms_error_t err;

    int rc = decode(body, size, 0, &free_width, &err);
    if (rc == 0)
        check_matrix(&free_width, 0);
    else
        check_refusal(&err, &free_width);

    if (decode(body, size, 4, &fixed_width, &err) == 0)
        check_matrix(&fixed_width, 4);
    else
        check_refusal(&err, &fixed_width);

    if (rc == 0 && free_width.rows) {
        if (decode(body, size, free_width.cols, &fixed_width, &err) != 0)
            __builtin_trap();
        if (fixed_width.rows != free_width.rows ||
            memcmp(fixed_width.values, free_width.values,
                   free_width.rows * free_width.cols * sizeof(float)) != 0)
            __builtin_trap();
    }
    return 0;
}

#endif
