/* JSON models to UBJSON: XGBoost reads a model's JSON text about fifteen
 * times slower than the same model as UBJSON with typed arrays, so a JSON
 * artifact is checked and rewritten once, in one pass that builds no tree,
 * and XGBoost and the compatibility checks read the UBJSON. The module owns
 * nothing beyond the buffer it returns. */
#ifndef SMSERVE_TRANSCODE_H
#define SMSERVE_TRANSCODE_H

#include <stdbool.h>
#include <stddef.h>

/* Nesting deeper than this is refused (XGBoost writes 6 levels). */
#define SMS_TRANSCODE_MAX_DEPTH 128

/* Reads `len` bytes of text as XGBoost's JSON dialect, accepting exactly
 * what sms_xjson_parse accepts (strict JSON as jansson reads it, with NUL
 * bytes, \u0000, invalid UTF-8 and duplicate keys refused, plus the bare
 * NaN, Infinity and -Infinity where a number may stand), except nesting
 * deeper than SMS_TRANSCODE_MAX_DEPTH, and writes the same document as
 * UBJSON the way XGBoost's UBJReader reads it: integers as int64 ('L'),
 * other numbers as float32 ('d', the value XGBoost's JSON reader gives),
 * string and key lengths as int64.
 *
 * The arrays XGBoost's own writer stores typed (a tree's split_conditions,
 * left_children, default_left, ...) are written typed, with the element
 * type it uses, when every element is a token XGBoost would read the same
 * way from them ('d' for float tokens, 'l' / 'L' / 'U' for integers in
 * range, and booleans in default_left). *exact_types (may be NULL) is then
 * true; it is false when some such array had to stay an untyped array,
 * which XGBoost reads another way than the JSON (it would refuse one tree
 * with both): load the JSON itself then.
 *
 * Returns 0 with *out (malloc'd, the caller frees it) and *out_len, or -1
 * with "byte N: what was wrong" in errmsg (errmsg_size bytes, may be
 * NULL/0), N an offset into text, and *out NULL. */
int sms_transcode_json(const char *text, size_t len, unsigned char **out, size_t *out_len,
                       bool *exact_types, char *errmsg, size_t errmsg_size);

#endif
