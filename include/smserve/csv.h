/* text/csv request bodies to a float matrix. No header, no label column. The
 * delimiter (comma, tab or space) is sniffed from the first line; empty fields
 * are missing values (NaN); CRLF and a trailing newline are accepted. Knows
 * nothing of HTTP or of models. */
#ifndef SMSERVE_CSV_H
#define SMSERVE_CSV_H

#include <stddef.h>
#include "smserve/buf.h"
#include "smserve/decode.h"
#include "smserve/error.h"

/* Decodes `len` bytes (need not be NUL-terminated, may hold any byte) into
 * `out` (reset first, grown as needed, owned by the caller).
 * expect_cols: the width every row must have, or 0 to take the first row's.
 * Errors (err->status 400) name the 1-based row and column and what was
 * wrong: "row 3 has 5 values, expected 4", "row 2, column 7: 'abc' is not a
 * number" (the token quoted as sms_number_quote writes it, then
 * sms_number_reason's phrase). An empty body or a body of only blank lines
 * yields 0 rows and returns 0. Blank lines between rows are skipped.
 * Details: "row R" counts lines of the body, blank ones included, so that it
 * matches what an editor shows. A blank line is one of only spaces/tabs.
 * Spaces and tabs around a field are dropped unless they are the delimiter;
 * with the space delimiter a run of blanks is one separator. One pair of
 * double quotes around a field is dropped ("1.5"). A leading UTF-8 BOM is
 * ignored. Values parse as sms_parse_float does: decimals and nan (a
 * missing value, like an empty field) are accepted; inf, infinity, decimals
 * beyond float32's range and everything else are refused. With 0 rows
 * out->cols is expect_cols; on error out has 0 rows; an allocation failure
 * is status 500. */
int sms_csv_decode(const char *body, size_t len, size_t expect_cols, sms_matrix_t *out,
                   sms_error_t *err);

#endif
