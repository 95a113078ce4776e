/* Feature values as text to float32, for the request decoders' hot path, and
 * float32 back to text for the encoders. A value is what AWS's XGBoost
 * container makes of the same text: Python's float() (float64), then the
 * float32 cast XGBoost applies when it builds its matrix. */
#ifndef SMSERVE_NUMBER_H
#define SMSERVE_NUMBER_H

#include <stddef.h>

#define SMS_NUMBER_MAX_BYTES 1024 /* the longest number accepted */

/* Why a token was refused; every one is a 400 for the client. */
typedef enum sms_number_refusal {
    SMS_NUMBER_INVALID = -1,  /* not a number in the grammar below */
    SMS_NUMBER_INFINITE = -2, /* inf, infinity: XGBoost refuses infinite features */
    SMS_NUMBER_RANGE = -3,    /* a decimal beyond float32's range, infinite once cast */
    SMS_NUMBER_LONG = -4,     /* a decimal longer than SMS_NUMBER_MAX_BYTES */
} sms_number_refusal_t;

/* Parses one number that occupies ALL of [p, end), by this grammar (ASCII,
 * no surrounding whitespace; the decoders trim):
 *   [+-]? (digits ('.' digits?)? | '.' digits) ([eE] [+-]? digits)?
 *   [+-]? nan                                        (any case: missing)
 * A decimal's value is the float32 nearest to the float64 nearest to it;
 * one that underflows is 0 or a denormal. nan sets *out to NAN. Returns 0,
 * or a negative sms_number_refusal_t: SMS_NUMBER_INFINITE for [+-]inf and
 * [+-]infinity (any case), SMS_NUMBER_RANGE for a decimal whose float32 is
 * infinite (1e39, 1e999), SMS_NUMBER_LONG for a decimal longer than
 * SMS_NUMBER_MAX_BYTES, SMS_NUMBER_INVALID for anything else (hex floats,
 * underscores, nan(...), partial words, other whitespace, an empty token).
 * Never reads outside [p, end); the text need not be NUL-terminated. */
int sms_parse_float(const char *p, const char *end, float *out);

/* The decoders' number scanner: parses the number at the start of [p, end),
 * never reading at or past end. Returns 1 when *out is exactly what
 * sms_parse_float gives for [p, *stop) (the caller checks that what follows
 * ends the token), or 0 when the fast path does not apply and
 * sms_parse_float must decide. Only a subset of JSON's number grammar,
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, with at most 19
 * significant digits and SMS_NUMBER_MAX_BYTES, takes this path, and it never
 * gives an infinite value. */
int sms_scan_float(const char *p, const char *end, float *out, const char **stop);

/* What follows the quoted token in a message for refusal `rc` (< 0):
 * "is not a number", "is infinite, which XGBoost refuses", ... */
const char *sms_number_reason(int rc);

/* Writes token [p, p + n) into buf[cap] (cap >= 8) as one printable line for
 * an error message: at most the first 32 bytes, each byte that is not
 * printable ASCII, a backslash or a quote as \xNN, then "..." when cut.
 * buf[SMS_NUMBER_QUOTE_BYTES] always suffices. Returns buf. */
#define SMS_NUMBER_QUOTE_BYTES (32 * 4 + 8)
char *sms_number_quote(const char *p, size_t n, char *buf, size_t cap);

/* Writes the shortest decimal text that strtof and sms_parse_float both
 * parse back to exactly `v` ("nan", "inf", "-inf" for non-finite values). out must hold 32 bytes.
 * Returns the length written (no NUL counted; out is NUL-terminated).
 * Positional for decimal exponents -4..15 ("100", "0.0254", "-0"), else
 * exponent form as %e writes it ("1e-05", "3.4028235e+38"), like Python. */
size_t sms_format_float(float v, char *out);

#endif
