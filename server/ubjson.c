/* A UBJSON reader that turns the bytes of an XGBoost .ubj model into the same
 * jansson tree json_loadb gives for the .json of that model, so that the
 * compatibility checks have one code path. The input is untrusted: every read
 * is bounds-checked, counts are checked against the bytes left before any
 * allocation, and nesting is capped. */
#include "smserve/ubjson.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UBJ_MAX_DEPTH 128

typedef struct reader {
    const unsigned char *p;
    size_t len;
    size_t pos;
    char *errmsg;
    size_t errmsg_size;
    int failed;
    int outline; /* long typed numeric arrays stand as empty arrays */
} reader_t;

static json_t *fail(reader_t *r, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the first failure only: the innermost one says what was wrong. */
static json_t *fail(reader_t *r, size_t at, const char *fmt, ...)
{
    if (r->failed)
        return NULL;
    r->failed = 1;
    if (r->errmsg && r->errmsg_size) {
        int n = snprintf(r->errmsg, r->errmsg_size, "byte %zu: ", at);
        if (n >= 0 && (size_t)n < r->errmsg_size) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(r->errmsg + n, r->errmsg_size - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return NULL;
}

static size_t left(const reader_t *r)
{
    return r->len - r->pos;
}

/* Reads n big-endian bytes (n <= 8) into an unsigned 64-bit value. */
static int read_be(reader_t *r, size_t n, uint64_t *out)
{
    if (left(r) < n) {
        fail(r, r->len, "unexpected end of input (needed %zu more bytes)", n - left(r));
        return -1;
    }
    *out = sms_ubjson_big_endian(r->p + r->pos, n);
    r->pos += n;
    return 0;
}

static int is_int_marker(unsigned char m)
{
    return m == 'i' || m == 'U' || m == 'I' || m == 'l' || m == 'L';
}

/* Reads the payload of an integer of type `marker` (already consumed). */
static int read_int_payload(reader_t *r, unsigned char marker, int64_t *out)
{
    uint64_t u;
    switch (marker) {
    case 'i':
        if (read_be(r, 1, &u) < 0)
            return -1;
        *out = (int8_t)(uint8_t)u;
        return 0;
    case 'U':
        if (read_be(r, 1, &u) < 0)
            return -1;
        *out = (int64_t)u;
        return 0;
    case 'I':
        if (read_be(r, 2, &u) < 0)
            return -1;
        *out = (int16_t)(uint16_t)u;
        return 0;
    case 'l':
        if (read_be(r, 4, &u) < 0)
            return -1;
        *out = (int32_t)(uint32_t)u;
        return 0;
    case 'L':
        if (read_be(r, 8, &u) < 0)
            return -1;
        /* Two's complement without implementation-defined conversion. */
        *out = u <= INT64_MAX ? (int64_t)u : -(int64_t)(~u) - 1;
        return 0;
    default:
        fail(r, r->pos ? r->pos - 1 : 0, "expected an integer marker, got 0x%02x", marker);
        return -1;
    }
}

/* A length or count: an integer marker then a non-negative value. */
static int read_length(reader_t *r, const char *what, size_t *out)
{
    size_t at = r->pos;
    if (left(r) < 1) {
        fail(r, r->len, "unexpected end of input (expected the %s)", what);
        return -1;
    }
    unsigned char m = r->p[r->pos++];
    if (!is_int_marker(m)) {
        fail(r, at, "expected an integer marker for the %s, got 0x%02x", what, m);
        return -1;
    }
    int64_t v;
    if (read_int_payload(r, m, &v) < 0)
        return -1;
    if (v < 0) {
        fail(r, at, "negative %s %lld", what, (long long)v);
        return -1;
    }
    if ((uint64_t)v > SIZE_MAX) {
        fail(r, at, "%s %lld is too large", what, (long long)v);
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

/* Bytes each element of a typed container of `type` takes at least; the
 * count check below uses it to refuse counts the input cannot hold. */
static size_t min_size_of(unsigned char type)
{
    if (type == 'Z' || type == 'T' || type == 'F')
        return 0;
    size_t size = sms_ubjson_numeric_size(type);
    /* C: one byte; S, H: a length marker and value; [ {: at least a marker */
    return size ? size : 1;
}

static json_t *parse_value(reader_t *r, unsigned char marker, size_t at, int depth);

static json_t *parse_string_payload(reader_t *r, size_t at, const char *what)
{
    size_t n;
    if (read_length(r, "string length", &n) < 0)
        return NULL;
    if (n > left(r))
        return fail(r, at, "%s length %zu exceeds the %zu bytes left", what, n, left(r));
    json_t *s = json_stringn((const char *)r->p + r->pos, n);
    if (!s)
        return fail(r, r->pos, "%s is not valid UTF-8", what);
    r->pos += n;
    return s;
}

/* 'H': a number written as text. Kept an integer when it is one. */
static json_t *parse_high_precision(reader_t *r, size_t at)
{
    size_t n;
    if (read_length(r, "high-precision number length", &n) < 0)
        return NULL;
    if (n > left(r))
        return fail(r, at, "high-precision number length %zu exceeds the %zu bytes left", n,
                    left(r));
    if (n == 0 || n > 64)
        return fail(r, at, "high-precision number of %zu characters is not supported", n);
    char text[65];
    memcpy(text, r->p + r->pos, n);
    text[n] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (!strchr("0123456789+-.eE", text[i]) || text[i] == '\0')
            return fail(r, at, "high-precision number \"%.*s\" is not a number", (int)n, text);
    }
    r->pos += n;
    char *end;
    errno = 0;
    long long ll = strtoll(text, &end, 10);
    if (errno == 0 && *end == '\0')
        return json_integer(ll);
    errno = 0;
    double d = strtod(text, &end);
    if (*end != '\0' || !isfinite(d))
        return fail(r, at, "high-precision number \"%s\" is not a finite number", text);
    return json_real(d);
}

/* A float. JSON cannot hold a non-finite one, so it becomes the string
 * sms_xjson_parse gives for XGBoost's bare NaN / Infinity / -Infinity. */
static json_t *parse_real(reader_t *r, size_t at, double d)
{
    json_t *v;
    if (isnan(d))
        v = json_string("NaN");
    else if (isinf(d))
        v = json_string(d > 0 ? "Infinity" : "-Infinity");
    else
        v = json_real(d);
    return v ? v : fail(r, at, "out of memory");
}

/* Reads the optional "$type" and "#count" that follow '[' or '{'. type 0
 * means untyped, has_count 0 means terminated by ']' or '}'. */
static int parse_container_header(reader_t *r, unsigned char *type, int *has_count, size_t *count)
{
    *type = 0;
    *has_count = 0;
    *count = 0;
    if (left(r) >= 1 && r->p[r->pos] == '$') {
        size_t at = r->pos++;
        if (left(r) < 1) {
            fail(r, r->len, "unexpected end of input (expected the element type)");
            return -1;
        }
        *type = r->p[r->pos++];
        if (!strchr("ZTFiUIlLdDHCS[{", *type) || *type == '\0') {
            fail(r, at + 1, "invalid element type 0x%02x in an optimised container", *type);
            return -1;
        }
        if (left(r) < 1 || r->p[r->pos] != '#') {
            fail(r, r->pos, "an optimised container with '$' must have a '#' count");
            return -1;
        }
    }
    if (left(r) >= 1 && r->p[r->pos] == '#') {
        size_t at = r->pos++;
        if (read_length(r, "element count", count) < 0)
            return -1;
        *has_count = 1;
        /* Every element takes at least min_size bytes (one for zero-sized
         * types, so that a few bytes cannot declare 2^62 nulls). */
        size_t min = *type ? min_size_of(*type) : 1;
        if (min == 0)
            min = 1;
        if (*count > left(r) / min) {
            fail(r, at, "element count %zu exceeds what the %zu bytes left can hold", *count,
                 left(r));
            return -1;
        }
    }
    return 0;
}

/* Skips noop markers; returns the next marker's offset, or -1 at the end. */
static int peek_marker(reader_t *r, unsigned char *m)
{
    while (left(r) >= 1 && r->p[r->pos] == 'N')
        r->pos++;
    if (left(r) < 1)
        return -1;
    *m = r->p[r->pos];
    return 0;
}

static json_t *parse_array(reader_t *r, size_t at, int depth)
{
    unsigned char type;
    int has_count;
    size_t count;
    if (parse_container_header(r, &type, &has_count, &count) < 0)
        return NULL;
    json_t *arr = json_array();
    if (!arr)
        return fail(r, at, "out of memory");
    size_t size = type ? sms_ubjson_numeric_size(type) : 0;
    if (r->outline && size && count > SMS_UBJSON_OUTLINE_KEEP) {
        /* The header's check made sure the bytes are there. */
        r->pos += count * size;
        return arr;
    }
    for (size_t i = 0; !has_count || i < count; i++) {
        unsigned char m;
        size_t vat;
        if (type) {
            m = type;
            vat = r->pos;
        } else {
            if (peek_marker(r, &m) < 0) {
                fail(r, r->len, "unexpected end of input inside the array opened at byte %zu", at);
                goto fail;
            }
            vat = r->pos;
            if (!has_count && m == ']') {
                r->pos++;
                break;
            }
            r->pos++;
        }
        json_t *v = parse_value(r, m, vat, depth + 1);
        if (!v || json_array_append_new(arr, v) < 0) {
            if (v)
                fail(r, vat, "out of memory");
            goto fail;
        }
    }
    return arr;
fail:
    json_decref(arr);
    return NULL;
}

static json_t *parse_object(reader_t *r, size_t at, int depth)
{
    unsigned char type;
    int has_count;
    size_t count;
    if (parse_container_header(r, &type, &has_count, &count) < 0)
        return NULL;
    json_t *obj = json_object();
    if (!obj)
        return fail(r, at, "out of memory");
    for (size_t i = 0; !has_count || i < count; i++) {
        unsigned char m;
        if (peek_marker(r, &m) < 0) {
            fail(r, r->len, "unexpected end of input inside the object opened at byte %zu", at);
            goto fail;
        }
        if (!has_count && m == '}') {
            r->pos++;
            break;
        }
        size_t kat = r->pos;
        size_t klen;
        if (read_length(r, "key length", &klen) < 0)
            goto fail;
        if (klen > left(r)) {
            fail(r, kat, "key length %zu exceeds the %zu bytes left", klen, left(r));
            goto fail;
        }
        const char *key = (const char *)r->p + r->pos;
        if (memchr(key, '\0', klen)) {
            fail(r, r->pos, "object key contains a NUL byte");
            goto fail;
        }
        r->pos += klen;
        size_t vat = r->pos;
        if (type) {
            m = type;
        } else {
            if (peek_marker(r, &m) < 0) {
                fail(r, r->len, "unexpected end of input (expected the value of a key)");
                goto fail;
            }
            vat = r->pos;
            r->pos++;
        }
        /* Duplicates are refused, as json_loadb is told to for .json files,
         * so that both formats give one reading. */
        if (json_object_getn(obj, key, klen)) {
            fail(r, kat, "duplicate object key");
            goto fail;
        }
        json_t *v = parse_value(r, m, vat, depth + 1);
        if (!v)
            goto fail;
        if (json_object_setn_new(obj, key, klen, v) < 0) {
            fail(r, kat, "object key is not valid UTF-8");
            goto fail;
        }
    }
    return obj;
fail:
    json_decref(obj);
    return NULL;
}

/* Parses the payload of a value whose marker (at offset `at`) is consumed. */
static json_t *parse_value(reader_t *r, unsigned char marker, size_t at, int depth)
{
    uint64_t u;
    int64_t i;
    switch (marker) {
    case 'Z':
        return json_null();
    case 'T':
        return json_true();
    case 'F':
        return json_false();
    case 'i':
    case 'U':
    case 'I':
    case 'l':
    case 'L':
        if (read_int_payload(r, marker, &i) < 0)
            return NULL;
        return json_integer((json_int_t)i);
    case 'd': {
        if (read_be(r, 4, &u) < 0)
            return NULL;
        uint32_t bits = (uint32_t)u;
        float f;
        memcpy(&f, &bits, sizeof f);
        return parse_real(r, at, (double)f);
    }
    case 'D': {
        if (read_be(r, 8, &u) < 0)
            return NULL;
        double d;
        memcpy(&d, &u, sizeof d);
        return parse_real(r, at, d);
    }
    case 'H':
        return parse_high_precision(r, at);
    case 'C': {
        if (read_be(r, 1, &u) < 0)
            return NULL;
        if (u > 127)
            return fail(r, at, "char value 0x%02x is not ASCII", (unsigned)u);
        char c = (char)u;
        return json_stringn(&c, 1);
    }
    case 'S':
        return parse_string_payload(r, at, "string");
    case '[':
    case '{':
        if (depth >= UBJ_MAX_DEPTH)
            return fail(r, at, "nesting deeper than %d", UBJ_MAX_DEPTH);
        return marker == '[' ? parse_array(r, at, depth) : parse_object(r, at, depth);
    default:
        if (marker >= 0x21 && marker < 0x7f)
            return fail(r, at, "unknown marker '%c'", marker);
        return fail(r, at, "unknown marker 0x%02x", marker);
    }
}

static json_t *parse_document(const unsigned char *bytes, size_t len, int outline, char *errmsg,
                              size_t errmsg_size)
{
    reader_t r = {.p = bytes,
                  .len = bytes ? len : 0,
                  .errmsg = errmsg,
                  .errmsg_size = errmsg_size,
                  .outline = outline};
    if (errmsg && errmsg_size)
        errmsg[0] = '\0';
    unsigned char m;
    if (peek_marker(&r, &m) < 0)
        return fail(&r, r.pos, "no value (empty input)");
    size_t at = r.pos++;
    json_t *root = parse_value(&r, m, at, 0);
    if (!root)
        return fail(&r, at, "invalid value");
    while (left(&r) >= 1 && r.p[r.pos] == 'N')
        r.pos++;
    if (left(&r) > 0) {
        json_decref(root);
        return fail(&r, r.pos, "trailing bytes after the value (%zu)", left(&r));
    }
    return root;
}

json_t *sms_ubjson_parse(const unsigned char *bytes, size_t len, char *errmsg, size_t errmsg_size)
{
    return parse_document(bytes, len, 0, errmsg, errmsg_size);
}

json_t *sms_ubjson_outline(const unsigned char *bytes, size_t len, char *errmsg, size_t errmsg_size)
{
    return parse_document(bytes, len, 1, errmsg, errmsg_size);
}
