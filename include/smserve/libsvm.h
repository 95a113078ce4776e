/* text/libsvm request bodies (also the body type when Content-Type is absent)
 * to a float matrix, by the rules of AWS's XGBoost container: an optional
 * label, index:value pairs, the index base guessed per body, absent indices
 * missing (NaN). Refuses what AWS would misread, and bodies that would
 * expand past a value cap. Knows nothing of HTTP or of models. */
#ifndef SMSERVE_LIBSVM_H
#define SMSERVE_LIBSVM_H

#include <stddef.h>
#include "smserve/buf.h"
#include "smserve/decode.h"
#include "smserve/error.h"

/* sms_decode_fn for libsvm, with the cap set by sms_matrix_set_max_values.
 * Lines split at '\n' (a '\r' before it, or at the body's end, is dropped);
 * tokens at runs of spaces; a line of only spaces is skipped; every other
 * line is one row, a line holding only a label too (all missing). A line's
 * first token, when it has no ':', is a label: one number or comma-separated
 * numbers, checked and ignored. Every other token is index:value, the index
 * ASCII digits, the value as sms_parse_float reads it (nan = missing).
 * Index base, per body as AWS guesses it: 0-based when some index is 0,
 * else 1-based. Width: expect_cols, or when 0 the largest shifted index + 1.
 * Errors are 400 and name the 1-based line and the token (quoted as
 * sms_number_quote writes it): a tab, a token that is not index:value, qid,
 * a bad label or value, an index used twice in a row, an index beyond the
 * width (naming the base used), lines but no pair at all. A body whose
 * rows x width exceeds the cap is 413. An empty or all-blank body yields 0
 * rows (out->cols = expect_cols) and returns 0. On error out has 0 rows;
 * an allocation failure is 500. */
int sms_libsvm_decode(const char *body, size_t len, size_t expect_cols, sms_matrix_t *out,
                      sms_error_t *err);

/* sms_libsvm_decode with an explicit cap on rows x width (0: the default). */
int sms_libsvm_decode_capped(const char *body, size_t len, size_t expect_cols, size_t max_values,
                             sms_matrix_t *out, sms_error_t *err);

#endif
