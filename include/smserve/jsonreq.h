/* application/json request bodies to a float matrix, in one streaming pass
 * with no per-value allocation. Accepted shapes:
 *   {"instances": [[1, 2, null], [3, 4, 5]]}
 *   {"instances": [{"features": [1, 2, null]}, ...]}
 *   {"features": [1, 2, null]}               (one row)
 *   [[1, 2, 3], [4, 5, 6]]  and  [1, 2, 3]   (bare arrays)
 * Other top-level keys are skipped; null is a missing value (NaN). Knows
 * nothing of HTTP or of models. */
#ifndef SMSERVE_JSONREQ_H
#define SMSERVE_JSONREQ_H

#include <stddef.h>
#include "smserve/buf.h"
#include "smserve/decode.h"
#include "smserve/error.h"

/* Same contract as sms_csv_decode: 400 errors naming the byte offset or the
 * 1-based row (instance) and column ("row 3 has 5 values, expected 4",
 * "byte 17: expected a number or null", "row 1, column 3 (byte 17): '0x10'
 * is not a number"). An empty or whitespace-only body yields 0 rows.
 * Nesting deeper than 64 levels is an error.
 * Details: byte offsets are 0-based; the top-level container is nesting
 * level 1. "instances" must be a list (of lists or of objects with a
 * "features" list); a bare list is a list of instances when empty or when
 * its first element is a list or object. Duplicate "instances"/"features"
 * keys, or both at once, are errors, as are empty instances, anything after
 * the document and invalid UTF-8 in strings. A leading UTF-8 BOM is ignored.
 * A feature value is null (missing, NaN) or a number by JSON's grammar,
 * parsed as sms_parse_float does; one beyond float32's range (1e39) is
 * refused, as are NaN, Infinity, strings, booleans, lists and objects, each
 * naming its row and column and quoting the token (sms_number_quote).
 * Members that are not features are validated as JSON but never converted.
 * With 0 rows out->cols is expect_cols; on error out has 0 rows; an
 * allocation failure is 500. */
int sms_json_decode(const char *body, size_t len, size_t expect_cols, sms_matrix_t *out,
                    sms_error_t *err);

/* One row of a JSON lines body (sms_jsonlines_decode): the single document in
 * [p, end), `[...]` or `{"features": [...], ...}`, by sms_json_decode's rules,
 * appended as the next row of out. The width is out->cols once out has rows,
 * else expect_cols, else this row's. `body` is where byte offsets count from;
 * `line` (1-based) is what messages name ("line 3, column 2 (byte 41): ...",
 * "line 3 has 5 values, expected 6"), except syntax errors ("byte 41:
 * expected ...") which the caller places. 0, or -1 with err filled (400, 500
 * out of memory) and out->rows unchanged (values past it may be written). */
int sms_json_decode_row(const char *body, const char *p, const char *end, size_t expect_cols,
                        sms_matrix_t *out, size_t line, sms_error_t *err);

#endif
