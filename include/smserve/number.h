/* Decimal text to float32, for the request decoders' hot path. The result is
 * always exactly what strtof gives for the same text (C locale). */
#ifndef SMSERVE_NUMBER_H
#define SMSERVE_NUMBER_H

#include <stddef.h>

/* Parses one number that occupies ALL of [p, end): optional sign, digits,
 * optional fraction, optional exponent; also what strtof accepts besides
 * (inf, infinity, nan, hex floats), case-insensitive. No surrounding
 * whitespace. Never reads outside [p, end); the text need not be
 * NUL-terminated. Returns 0 and sets *out, or -1 if the text is not a number
 * in full (or is longer than 1024 bytes). */
int sms_parse_float(const char *p, const char *end, float *out);

/* The decoders' number scanner: parses the number at the start of [p, end),
 * never reading at or past end. Returns 1 when *out is exactly what strtof
 * gives for [p, *stop) (the caller checks that what follows ends the token),
 * or 0 when the fast path does not apply and sms_parse_float must decide.
 * The grammar is JSON's number, -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?,
 * with at most 19 significant digits and 1024 bytes. */
int sms_scan_float(const char *p, const char *end, float *out, const char **stop);

/* Writes the shortest decimal text that strtof parses back to exactly `v`
 * ("nan", "inf", "-inf" for non-finite values). out must hold 32 bytes.
 * Returns the length written (no NUL counted; out is NUL-terminated).
 * Positional for decimal exponents -4..15 ("100", "0.0254", "-0"), else
 * exponent form as %e writes it ("1e-05", "3.4028235e+38"), like Python. */
size_t sms_format_float(float v, char *out);

#endif
