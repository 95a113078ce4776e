/* Predictions to response bytes: text/csv, application/json and
 * application/jsonlines. Floats are printed so that they parse back to the
 * same float32. Knows nothing of HTTP or of models. */
#ifndef SMSERVE_ENCODE_H
#define SMSERVE_ENCODE_H

#include <stddef.h>
#include "smserve/buf.h"

typedef enum sms_encoding {
    SMS_ENC_CSV = 0,
    SMS_ENC_JSON,
    SMS_ENC_JSONLINES,
} sms_encoding_t;

/* The content type written on the response for an encoding. */
const char *sms_encoding_content_type(sms_encoding_t enc);

/* Picks the encoding for an Accept header value (NULL or empty: `fallback`).
 * Honours comma-separated lists, parameters and q-values (q=0 excludes), and
 * wildcards (star/star, text/star, application/star). Returns 0 and sets *out,
 * or -1 when nothing acceptable is offered (HTTP 406).
 * Each encoding takes the q of the most specific range naming it; the
 * highest q wins, a tie goes to the earlier range, and within one wildcard
 * range to `fallback`. A malformed q counts as 1. Also understood:
 * application/x-jsonlines. */
int sms_encoding_from_accept(const char *accept, sms_encoding_t fallback, sms_encoding_t *out);

/* Appends `rows` x `cols` predictions (row-major) to out.
 * CSV: one line per row, a row's values comma-joined, each line ending "\n".
 * JSON: {"predictions": [{"score": p}, ...]}; with cols > 1 "score" is a list.
 * JSON lines: one {"score": ...} object per line.
 * NaN/inf are "nan"/"inf" in CSV and null in JSON. 0, or -1 on OOM.
 * Numbers are sms_format_float's text: positional for exponents -4..15
 * ("100", "0.0254"), else exponent form ("1e-05"), always valid JSON. */
int sms_encode(sms_encoding_t enc, const float *preds, size_t rows, size_t cols, sms_buf_t *out);

#endif
