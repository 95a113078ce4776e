/* application/json request bodies to a float matrix. A hand-written
 * recursive-descent parser makes one pass over [body, body + len), writes
 * feature values straight into the caller's matrix and allocates nothing per
 * value. It validates everything it passes over, including the members it
 * skips (strings with escapes and UTF-8, numbers, nesting up to 64 levels). */
#include "smserve/jsonreq.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "smserve/number.h"

#define MAX_DEPTH 64 /* containers enclosing a value, the top-level one included */
#define KEY_BYTES 16 /* longer keys are never ones we look for */

typedef struct json_parser {
    const char *start; /* body, for byte offsets in messages */
    const char *p;
    const char *end;
    sms_matrix_t *out;
    size_t n;             /* values written to out->values */
    size_t cols;          /* row width, 0 until the first row when not expected */
    const char *key;      /* the member key being handled, for messages */
    const char *row_word; /* what messages call a row: "row", or "line" for JSON lines */
    sms_error_t *err;
} json_parser_t;

static size_t offset(const json_parser_t *j)
{
    return (size_t)(j->p - j->start);
}

/* A syntax error at j->p: "byte N: expected X". */
static int expected(json_parser_t *j, const char *what)
{
    if (j->p >= j->end)
        return sms_error_set(j->err, 400, "byte %zu: unexpected end of input, expected %s",
                             offset(j), what);
    return sms_error_set(j->err, 400, "byte %zu: expected %s", offset(j), what);
}

static int invalid(json_parser_t *j, const char *what)
{
    return sms_error_set(j->err, 400, "byte %zu: %s", offset(j), what);
}

static void skip_ws(json_parser_t *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t'))
        j->p++;
}

/* Consumes `c` after optional whitespace; 1 if it was there, else 0. */
static int eat(json_parser_t *j, char c)
{
    skip_ws(j);
    if (j->p < j->end && *j->p == c) {
        j->p++;
        return 1;
    }
    return 0;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Length of the well-formed UTF-8 sequence at p (first byte >= 0x80), or 0:
 * no overlong forms, no surrogates, nothing above U+10FFFF (RFC 3629). */
static size_t utf8_sequence(const unsigned char *p, const unsigned char *end)
{
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (p[0] >= 0xC2 && p[0] <= 0xDF) {
        n = 2;
    } else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
        n = 3;
        if (p[0] == 0xE0)
            lo = 0xA0;
        else if (p[0] == 0xED)
            hi = 0x9F;
    } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
        n = 4;
        if (p[0] == 0xF0)
            lo = 0x90;
        else if (p[0] == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return n;
}

/* Scans the string at j->p (on its opening quote). When key is given, also
 * decodes it into key[KEY_BYTES] and sets *key_len, or SIZE_MAX when it is
 * longer or not ASCII (then it is no key we look for). */
static int scan_string(json_parser_t *j, char *key, size_t *key_len)
{
    size_t kl = 0;
    int key_ok = key != NULL;
    j->p++;
    for (;;) {
        if (j->p >= j->end)
            return expected(j, "'\"' to close the string");
        unsigned char c = (unsigned char)*j->p;
        unsigned ch = c;
        if (c == '"') {
            j->p++;
            break;
        }
        if (c < 0x20)
            return invalid(j, "control character in a string (escape it)");
        if (c == '\\') {
            if (j->end - j->p < 2) {
                j->p = j->end;
                return expected(j, "an escape sequence");
            }
            j->p++;
            switch (*j->p) {
            case '"':
            case '\\':
            case '/':
                ch = (unsigned char)*j->p;
                break;
            case 'b':
                ch = '\b';
                break;
            case 'f':
                ch = '\f';
                break;
            case 'n':
                ch = '\n';
                break;
            case 'r':
                ch = '\r';
                break;
            case 't':
                ch = '\t';
                break;
            case 'u':
                ch = 0;
                for (int i = 1; i <= 4; i++) {
                    int h = j->p + i < j->end ? hex_value(j->p[i]) : -1;
                    if (h < 0) {
                        j->p--;
                        return invalid(j, "\\u must be followed by four hex digits");
                    }
                    ch = ch * 16 + (unsigned)h;
                }
                j->p += 4;
                break;
            default:
                j->p--;
                return invalid(j, "invalid escape sequence in a string");
            }
            j->p++;
        } else if (c >= 0x80) {
            size_t n = utf8_sequence((const unsigned char *)j->p, (const unsigned char *)j->end);
            if (n == 0)
                return invalid(j, "invalid UTF-8 in a string");
            j->p += n;
            key_ok = 0;
            continue;
        } else {
            j->p++;
        }
        if (key_ok) {
            if (ch < 0x80 && kl < KEY_BYTES)
                key[kl++] = (char)ch;
            else
                key_ok = 0;
        }
    }
    if (key)
        *key_len = key_ok ? kl : SIZE_MAX;
    return 0;
}

static int key_is(const char *key, size_t key_len, const char *name)
{
    size_t n = strlen(name);
    return key_len == n && memcmp(key, name, n) == 0;
}

/* The end of the number by JSON's grammar at the start of [p, e) (no '+',
 * no leading zeros, digits on both sides of '.', no NaN/Infinity), or NULL
 * when there is none. */
static const char *json_number_end(const char *p, const char *e)
{
    if (p < e && *p == '-')
        p++;
    if (p < e && *p == '0') {
        p++;
    } else if (p < e && is_digit(*p)) {
        while (p < e && is_digit(*p))
            p++;
    } else {
        return NULL;
    }
    if (p < e && *p == '.') {
        p++;
        if (p >= e || !is_digit(*p))
            return NULL;
        while (p < e && is_digit(*p))
            p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        if (p >= e || !is_digit(*p))
            return NULL;
        while (p < e && is_digit(*p))
            p++;
    }
    return p;
}

/* Whether c ends a bare token (a number or a literal). */
static int ends_token(char c)
{
    return c == ',' || c == ']' || c == '}' || c == '[' || c == '{' || c == ':' || c == '"' ||
           c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* Skips a number (of a member that is not a feature) at j->p: validated by
 * the grammar, never converted, so any magnitude is fine there. */
static int skip_number(json_parser_t *j)
{
    const char *q = json_number_end(j->p, j->end);
    /* "01", "1.", "1.5.2", "1x": the token runs on past the grammar */
    if (!q || (q < j->end && (is_digit(*q) || *q == '.' || *q == '+' || *q == '-' ||
                              (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z'))))
        return invalid(j, "invalid number");
    j->p = q;
    return 0;
}

static int scan_literal(json_parser_t *j, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
        return invalid(j, "invalid literal (expected true, false or null)");
    j->p += n;
    return 0;
}

static int skip_value(json_parser_t *j, int depth);

/* Skips a container at j->p ('[' or '{') whose depth is `depth`. */
static int skip_container(json_parser_t *j, int depth)
{
    if (depth > MAX_DEPTH)
        return invalid(j, "nesting deeper than 64 levels");
    int is_object = *j->p == '{';
    char close = is_object ? '}' : ']';
    j->p++;
    if (eat(j, close))
        return 0;
    for (;;) {
        if (is_object) {
            skip_ws(j);
            if (j->p >= j->end || *j->p != '"')
                return expected(j, "a string key");
            if (scan_string(j, NULL, NULL) < 0)
                return -1;
            if (!eat(j, ':'))
                return expected(j, "':'");
        }
        if (skip_value(j, depth + 1) < 0)
            return -1;
        if (eat(j, close))
            return 0;
        if (!eat(j, ','))
            return expected(j, is_object ? "',' or '}'" : "',' or ']'");
    }
}

/* Skips (validating) any value; a container there would be at `depth`. */
static int skip_value(json_parser_t *j, int depth)
{
    skip_ws(j);
    if (j->p >= j->end)
        return expected(j, "a value");
    switch (*j->p) {
    case '{':
    case '[':
        return skip_container(j, depth);
    case '"':
        return scan_string(j, NULL, NULL);
    case 't':
        return scan_literal(j, "true");
    case 'f':
        return scan_literal(j, "false");
    case 'n':
        return scan_literal(j, "null");
    default:
        if (*j->p == '-' || is_digit(*j->p))
            return skip_number(j);
        return expected(j, "a value");
    }
}

/* Whether c may follow a number in a list of values. */
static int ends_number(char c)
{
    return c == ',' || c == ']' || c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* A refused value at j->p, whose text is [j->p, t): "row R, column C (byte
 * B): '<token>' <reason>". */
static int refuse_value(json_parser_t *j, size_t row, size_t col, const char *t, const char *reason)
{
    char quoted[SMS_NUMBER_QUOTE_BYTES];
    return sms_error_set(j->err, 400, "%s %zu, column %zu (byte %zu): '%s' %s", j->row_word, row,
                         col, offset(j),
                         sms_number_quote(j->p, (size_t)(t - j->p), quoted, sizeof quoted), reason);
}

/* The feature value at j->p that the fast path left: a bare token (null or a
 * number by JSON's grammar, within float32's range), or a string, list or
 * object, which are refused. row and col are 1-based, for messages. */
static int parse_value(json_parser_t *j, size_t row, size_t col, float *v)
{
    const char *start = j->p, *t;
    switch (*j->p) {
    case '"':
        if (scan_string(j, NULL, NULL) < 0)
            return -1;
        t = j->p;
        j->p = start;
        return refuse_value(j, row, col, t, "is not a number");
    case '[':
    case '{':
        return sms_error_set(j->err, 400, "%s %zu, column %zu (byte %zu): %s is not a number",
                             j->row_word, row, col, offset(j),
                             *j->p == '[' ? "a list" : "an object");
    case ',':
    case ']':
    case '}':
    case ':':
        return expected(j, "a number or null");
    }
    t = j->p;
    while (t < j->end && !ends_token(*t))
        t++;
    /* null, and NaN as Python's json module (so the SageMaker SDK's
     * JSONSerializer) writes a missing float: both are missing values. */
    if ((t - j->p == 4 && memcmp(j->p, "null", 4) == 0) ||
        (t - j->p == 3 && memcmp(j->p, "NaN", 3) == 0)) {
        *v = NAN;
        j->p = t;
        return 0;
    }
    int rc = json_number_end(j->p, t) == t ? sms_parse_float(j->p, t, v) : SMS_NUMBER_INVALID;
    if (rc == 0) {
        j->p = t;
        return 0;
    }
    const char *reason = sms_number_reason(rc);
    if (rc == SMS_NUMBER_INVALID) {
        /* say why when the text would pass outside JSON (in CSV, say) */
        float x = 0;
        int text_rc = sms_parse_float(j->p, t, &x);
        if (text_rc == SMS_NUMBER_INFINITE)
            reason = sms_number_reason(text_rc);
        else if (text_rc == 0 && x != x)
            reason = "is not a number (null or NaN is a missing value)";
        else if (text_rc != SMS_NUMBER_INVALID)
            reason = "is not a JSON number";
    }
    return refuse_value(j, row, col, t, reason);
}

static int append_value(json_parser_t *j, float v)
{
    if (j->n >= j->out->cap && sms_matrix_reserve(j->out, j->n + 1) < 0)
        return sms_error_set(j->err, 500, "out of memory decoding JSON");
    j->out->values[j->n++] = v;
    return 0;
}

/* One instance's feature list at j->p, expected to be '['. */
static int parse_row(json_parser_t *j, size_t instance)
{
    skip_ws(j);
    if (j->p >= j->end || *j->p != '[')
        return expected(j, "a list of feature values");
    j->p++;
    size_t first = j->n;
    if (j->cols && sms_matrix_reserve(j->out, j->n + j->cols) < 0)
        return sms_error_set(j->err, 500, "out of memory decoding JSON");
    if (!eat(j, ']')) {
        for (size_t k = 0;; k++) {
            skip_ws(j);
            float v;
            const char *q;
            if (j->p >= j->end)
                return expected(j, "a number or null");
            /* The common case in one pass; whatever does not end there
             * cleanly is looked at again by parse_value, which also gives
             * the error messages. */
            if (sms_scan_float(j->p, j->end, &v, &q) && (q == j->end || ends_number(*q)))
                j->p = q;
            else if (parse_value(j, instance + 1, k + 1, &v) < 0)
                return -1;
            if (append_value(j, v) < 0)
                return -1;
            if (eat(j, ']'))
                break;
            if (!eat(j, ','))
                return expected(j, "',' or ']'");
        }
    }
    size_t width = j->n - first;
    if (j->cols == 0) {
        if (width == 0)
            return sms_error_set(j->err, 400, "%s %zu has no values", j->row_word, instance + 1);
        j->cols = width;
    }
    if (width != j->cols)
        return sms_error_set(j->err, 400, "%s %zu has %zu values, expected %zu", j->row_word,
                             instance + 1, width, j->cols);
    j->out->rows++;
    return 0;
}

/* Members of the object at j->p ('{', at `depth`): calls on_key for keys
 * named in `keys` (a NULL-terminated list), skips the others. on_key gets the
 * key's index and must consume the value. */
typedef int (*member_fn)(json_parser_t *j, int which, void *ctx);

static int parse_object(json_parser_t *j, int depth, const char *const *keys, member_fn on_key,
                        void *ctx)
{
    if (depth > MAX_DEPTH)
        return invalid(j, "nesting deeper than 64 levels");
    j->p++;
    if (eat(j, '}'))
        return 0;
    for (;;) {
        char key[KEY_BYTES];
        size_t key_len;
        skip_ws(j);
        if (j->p >= j->end || *j->p != '"')
            return expected(j, "a string key");
        j->key = j->p;
        if (scan_string(j, key, &key_len) < 0)
            return -1;
        if (!eat(j, ':'))
            return expected(j, "':'");
        int which = -1;
        for (int i = 0; keys[i]; i++)
            if (key_is(key, key_len, keys[i]))
                which = i;
        if (which >= 0) {
            if (on_key(j, which, ctx) < 0)
                return -1;
        } else if (skip_value(j, depth + 1) < 0) {
            return -1;
        }
        if (eat(j, '}'))
            return 0;
        if (!eat(j, ','))
            return expected(j, "',' or '}'");
    }
}

typedef struct instance_ctx {
    size_t instance;
    int seen; /* its "features" member */
} instance_ctx_t;

static int on_instance_member(json_parser_t *j, int which, void *ctx)
{
    instance_ctx_t *c = ctx;
    (void)which;
    if (c->seen)
        return sms_error_set(j->err, 400, "byte %zu: %s %zu has \"features\" twice",
                             (size_t)(j->key - j->start), j->row_word, c->instance + 1);
    c->seen = 1;
    return parse_row(j, c->instance);
}

/* One element of the instances list: [values...] or {"features": [...]}. */
static int parse_instance(json_parser_t *j, int depth, size_t instance)
{
    static const char *const keys[] = {"features", NULL};
    skip_ws(j);
    if (j->p < j->end && *j->p == '[')
        return parse_row(j, instance);
    if (j->p < j->end && *j->p == '{') {
        instance_ctx_t c = {.instance = instance};
        if (parse_object(j, depth, keys, on_instance_member, &c) < 0)
            return -1;
        if (!c.seen)
            return sms_error_set(j->err, 400, "%s %zu has no \"features\" key", j->row_word,
                                 instance + 1);
        return 0;
    }
    if (j->p >= j->end)
        return expected(j, "an instance");
    return sms_error_set(j->err, 400,
                         "byte %zu: %s %zu is neither a list of values nor an object "
                         "with \"features\"",
                         offset(j), j->row_word, instance + 1);
}

/* The list of instances at j->p, itself at `depth`. */
static int parse_instances(json_parser_t *j, int depth)
{
    skip_ws(j);
    if (j->p >= j->end || *j->p != '[')
        return expected(j, "a list of instances");
    j->p++;
    if (eat(j, ']'))
        return 0;
    for (size_t i = 0;; i++) {
        if (parse_instance(j, depth + 1, i) < 0)
            return -1;
        if (eat(j, ']'))
            return 0;
        if (!eat(j, ','))
            return expected(j, "',' or ']'");
    }
}

typedef struct top_ctx {
    int seen[2]; /* "instances", "features" */
} top_ctx_t;

static int on_top_member(json_parser_t *j, int which, void *ctx)
{
    top_ctx_t *c = ctx;
    static const char *const names[] = {"instances", "features"};
    if (c->seen[which])
        return sms_error_set(j->err, 400, "byte %zu: \"%s\" given twice",
                             (size_t)(j->key - j->start), names[which]);
    if (c->seen[!which])
        return sms_error_set(j->err, 400,
                             "byte %zu: give either \"instances\" or \"features\", not both",
                             (size_t)(j->key - j->start));
    c->seen[which] = 1;
    return which == 0 ? parse_instances(j, 2) : parse_row(j, 0);
}

static int parse_document(json_parser_t *j)
{
    static const char *const keys[] = {"instances", "features", NULL};
    skip_ws(j);
    if (j->p >= j->end)
        return 0;
    if (*j->p == '{') {
        top_ctx_t c = {{0, 0}};
        if (parse_object(j, 1, keys, on_top_member, &c) < 0)
            return -1;
        if (!c.seen[0] && !c.seen[1])
            return sms_error_set(j->err, 400,
                                 "no \"instances\" or \"features\" key; accepted bodies are "
                                 "{\"instances\": [[...], ...]}, "
                                 "{\"instances\": [{\"features\": [...]}, ...]}, "
                                 "{\"features\": [...]}, [[...], ...] and [...]");
    } else if (*j->p == '[') {
        /* A bare list: of instances when it is empty or its first element
         * is a list or an object, else a single row of values. */
        const char *open = j->p;
        j->p++;
        skip_ws(j);
        int nested = j->p < j->end && (*j->p == '[' || *j->p == '{' || *j->p == ']');
        j->p = open;
        if (nested ? parse_instances(j, 1) < 0 : parse_row(j, 0) < 0)
            return -1;
    } else {
        return expected(j, "a JSON object or list");
    }
    skip_ws(j);
    if (j->p < j->end)
        return invalid(j, "unexpected data after the JSON document");
    return 0;
}

int sms_json_decode(const char *body, size_t len, size_t expect_cols, sms_matrix_t *out,
                    sms_error_t *err)
{
    sms_matrix_reset(out);
    out->cols = expect_cols;
    if (len == 0)
        return 0;
    json_parser_t j = {
        .start = body,
        .p = body,
        .end = body + len,
        .out = out,
        .cols = expect_cols,
        .row_word = "row",
        .err = err,
    };
    if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0)
        j.p += 3; /* a UTF-8 byte order mark, which RFC 8259 lets parsers ignore */
    if (parse_document(&j) < 0) {
        sms_matrix_reset(out);
        return -1;
    }
    out->cols = j.cols;
    return 0;
}

int sms_json_decode_row(const char *body, const char *p, const char *end, size_t expect_cols,
                        sms_matrix_t *out, size_t line, sms_error_t *err)
{
    json_parser_t j = {
        .start = body,
        .p = p,
        .end = end,
        .out = out,
        .n = out->rows * out->cols,
        .cols = out->rows ? out->cols : expect_cols,
        .row_word = "line",
        .err = err,
    };
    skip_ws(&j);
    if (j.p < j.end && *j.p == '[') {
        if (parse_row(&j, line - 1) < 0)
            return -1;
    } else if (j.p < j.end && *j.p == '{') {
        if (parse_instance(&j, 1, line - 1) < 0)
            return -1;
    } else {
        return sms_error_set(err, 400,
                             "line %zu, byte %zu: expected a list of feature values or an object "
                             "with \"features\"",
                             line, offset(&j));
    }
    skip_ws(&j);
    if (j.p < j.end)
        return sms_error_set(err, 400,
                             "line %zu, byte %zu: unexpected data after the JSON "
                             "document (one document per line)",
                             line, offset(&j));
    out->cols = j.cols;
    return 0;
}
