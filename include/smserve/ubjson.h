/* A UBJSON (Universal Binary JSON, as XGBoost writes it) reader that builds a
 * jansson tree, so the compatibility checks read JSON and UBJSON models the
 * same way. Handles objects, arrays (including the optimised $type/#count
 * forms XGBoost uses for large float and int arrays), strings, all numeric
 * markers, true/false/null, noop. */
#ifndef SMSERVE_UBJSON_H
#define SMSERVE_UBJSON_H

#include <stddef.h>
#include <jansson.h>

/* Parses exactly one value from `len` bytes. Never reads outside the buffer,
 * rejects counts larger than the remaining bytes could hold, nesting deeper
 * than 128, and trailing garbage. Returns a new reference (caller
 * json_decref's it), or NULL with a message "byte N: what was wrong" written
 * to errmsg (errmsg_size bytes). Large typed arrays (e.g. split_conditions)
 * may be materialised; memory is bounded by a small multiple of len. */
json_t *sms_ubjson_parse(const unsigned char *bytes, size_t len, char *errmsg, size_t errmsg_size);

#endif
