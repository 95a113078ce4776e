/* A UBJSON (Universal Binary JSON, as XGBoost writes it) reader that builds a
 * jansson tree, so the compatibility checks read JSON and UBJSON models the
 * same way (the tree sms_xjson_parse gives for the model's .json, see
 * smserve/xjson.h). Handles objects, arrays (including the optimised
 * $type/#count forms XGBoost uses for large float and int arrays), strings,
 * all numeric markers, true/false/null, noop. */
#ifndef SMSERVE_UBJSON_H
#define SMSERVE_UBJSON_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

/* Parses exactly one value from `len` bytes. Never reads outside the buffer,
 * rejects counts larger than the remaining bytes could hold, nesting deeper
 * than 128, and trailing garbage. Returns a new reference (caller
 * json_decref's it), or NULL with a message "byte N: what was wrong" written
 * to errmsg (errmsg_size bytes). Large typed arrays (e.g. split_conditions)
 * may be materialised; memory is bounded by a small multiple of len.
 * Stricter than the UBJSON spec where the spec allows bombs or where JSON
 * cannot follow: a "#count" may not exceed the bytes left (even for the
 * zero-byte element types Z/T/F), duplicate object keys, keys with NUL and
 * invalid UTF-8 are refused. Integers (i U I l L) become json_integer, finite
 * floats (d D) json_real, non-finite ones (XGBoost writes them, e.g. in the
 * split_conditions of categorical splits) the strings "NaN", "Infinity" and
 * "-Infinity" as sms_xjson_parse gives them (sms_xjson_number reads all of
 * these), 'H' an integer when it is one, else a finite json_real, 'C' a
 * one-character string. */
json_t *sms_ubjson_parse(const unsigned char *bytes, size_t len, char *errmsg, size_t errmsg_size);

/* As sms_ubjson_parse, but a typed array of numbers longer than
 * SMS_UBJSON_OUTLINE_KEEP stands as an empty array, its bytes checked to be
 * there and skipped: the compatibility checks read a model's shape, never
 * its split values, and building them into a tree took longer than
 * XGBoost's whole load. Short ones (the version triple) are kept. */
#define SMS_UBJSON_OUTLINE_KEEP 8
json_t *sms_ubjson_outline(const unsigned char *bytes, size_t len, char *errmsg,
                           size_t errmsg_size);

/* Bytes a value of numeric marker i U I l L d D takes (1, 2, 4 or 8); 0 for
 * any other marker. */
static inline size_t sms_ubjson_numeric_size(unsigned char marker)
{
    switch (marker) {
    case 'i':
    case 'U':
        return 1;
    case 'I':
        return 2;
    case 'l':
    case 'd':
        return 4;
    case 'L':
    case 'D':
        return 8;
    }
    return 0;
}

/* The n (at most 8) bytes at p read as a big-endian unsigned integer, as
 * UBJSON stores numbers; the caller checked that n bytes are there. Inline:
 * the compiler reads every element of a model's typed arrays with it. */
static inline uint64_t sms_ubjson_big_endian(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

#endif
