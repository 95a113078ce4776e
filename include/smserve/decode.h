/* The contract every request decoder (text/csv, application/json) shares:
 * bytes in, a float matrix out, a 400 naming the row or byte on bad input.
 * The HTTP front picks one by content type; tests and fuzz targets drive
 * any of them the same way. */
#ifndef SMSERVE_DECODE_H
#define SMSERVE_DECODE_H

#include <stddef.h>
#include "smserve/buf.h"
#include "smserve/error.h"

/* Decodes `len` bytes (not NUL-terminated, any byte values) into `out`
 * (reset first, grown as needed, owned by the caller). expect_cols: the
 * width every row must have, or 0 to take the first row's. 0, or -1 with
 * err filled (status 400, or 500 when out of memory) and out->rows == 0. */
typedef int (*sms_decode_fn)(const char *body, size_t len, size_t expect_cols, sms_matrix_t *out,
                             sms_error_t *err);

#endif
