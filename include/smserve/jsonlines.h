/* application/jsonlines request bodies to a float matrix: one row per
 * non-blank line, each line a bare list `[0.5, 4.25, null]` (what SageMaker's
 * JSONLinesSerializer writes for a list of lists) or an object with a
 * "features" list (`{"features": [0.5, 4.25], "label": 1}`). AWS's container
 * refuses this type (415); smserve accepts it. Knows nothing of HTTP. */
#ifndef SMSERVE_JSONLINES_H
#define SMSERVE_JSONLINES_H

#include <stddef.h>
#include "smserve/buf.h"
#include "smserve/decode.h"
#include "smserve/error.h"

/* An sms_decode_fn. Lines end at "\n" (a "\r" before it is whitespace);
 * lines of JSON whitespace only are skipped, so an empty body is 0 rows.
 * Values follow sms_json_decode's rules (null is missing; numbers by JSON's
 * grammar within float32's range); other members of an object are validated
 * and ignored; one document per line. Errors are 400 naming the 1-based line:
 * "line 3, column 2 (byte 41): 'abc' is not a number", "line 2 has 5 values,
 * expected 6", "line 4, byte 57: expected ',' or ']'". A leading UTF-8 BOM is
 * ignored. With 0 rows out->cols is expect_cols; on error out has 0 rows. */
int sms_jsonlines_decode(const char *body, size_t len, size_t expect_cols, sms_matrix_t *out,
                         sms_error_t *err);

#endif
