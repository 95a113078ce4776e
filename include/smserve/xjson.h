/* XGBoost's JSON dialect: standard JSON plus the bare tokens NaN, Infinity
 * and -Infinity wherever a number may stand, which XGBoost writes for
 * non-finite floats (e.g. the split_conditions of categorical splits) and
 * which strict parsers such as jansson refuse. This module reads that dialect
 * into a jansson tree; it owns nothing beyond the trees it returns. */
#ifndef SMSERVE_XJSON_H
#define SMSERVE_XJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

/* Parses exactly one JSON value (any type at the top level) from `len` bytes
 * of `text` (no NUL terminator needed; never reads past len). The bare
 * tokens NaN, Infinity and -Infinity are accepted where a value may stand
 * (never as object keys, never inside strings, whose bytes are left as they
 * are) and become the json strings "NaN", "Infinity" and "-Infinity" in the
 * tree; sms_xjson_number reads them back as numbers. Everything else is
 * strict JSON as jansson reads it, with duplicate object keys, NUL bytes
 * and \u0000 in strings refused. Linear in len; text without those tokens
 * is not copied. Returns a new reference (caller json_decref's it), or NULL
 * with "byte N: what was wrong" written to errmsg (errmsg_size bytes, may be
 * NULL/0), N being an offset into `text` itself. */
json_t *sms_xjson_parse(const char *text, size_t len, char *errmsg, size_t errmsg_size);

/* True when v is a number as XGBoost means it: a json_real, a json_integer,
 * or one of the strings "NaN", "Infinity", "-Infinity" (NAN, INFINITY,
 * -INFINITY); *out (may be NULL) gets the value. False for anything else,
 * NULL included, with *out untouched. */
bool sms_xjson_number(const json_t *v, double *out);

/* obj[key] when obj is an object, else NULL (as json_object_get does for a
 * missing key): a model's optional fields read without checking each level. */
json_t *sms_xjson_member(json_t *obj, const char *key);

#endif
