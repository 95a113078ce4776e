/* A reader for XGBoost's JSON dialect. XGBoost writes non-finite floats as
 * the bare tokens NaN, Infinity and -Infinity; jansson refuses them. One
 * linear pass finds those tokens where a value may stand (outside strings,
 * not as keys) and rewrites each into a quoted string in a copy of the text,
 * then jansson parses the copy and its error offsets are mapped back to the
 * original text. Text without such tokens goes to jansson as it is. */
#include "smserve/xjson.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* jansson refuses deeper nesting; the scanner tracks containers as deep. */
#ifdef JSON_PARSER_MAX_DEPTH
#define XJSON_MAX_DEPTH JSON_PARSER_MAX_DEPTH
#else
#define XJSON_MAX_DEPTH 2048
#endif

#define XJSON_FLAGS (JSON_DECODE_ANY | JSON_REJECT_DUPLICATES)

typedef struct rewriter {
    const char *in;
    size_t len;
    char *out; /* NULL until the first rewrite */
    size_t out_len;
    size_t copied; /* in[0, copied) is in out */
    size_t *marks; /* out offsets of each rewritten token's opening quote */
    size_t n_marks, marks_cap;
} rewriter_t;

static void set_error(char *errmsg, size_t errmsg_size, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void set_error(char *errmsg, size_t errmsg_size, size_t at, const char *fmt, ...)
{
    if (!errmsg || !errmsg_size)
        return;
    int n = snprintf(errmsg, errmsg_size, "byte %zu: ", at);
    if (n < 0 || (size_t)n >= errmsg_size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg + n, errmsg_size - (size_t)n, fmt, ap);
    va_end(ap);
}

/* Copies in[copied, at) and then the token in[at, at+n) wrapped in quotes.
 * The copy is sized once for the worst case: every rewrite consumes at least
 * three input bytes and adds two, so out never exceeds len + 2 * (len / 3). */
static int rewrite(rewriter_t *w, size_t at, size_t n)
{
    if (!w->out) {
        size_t cap = w->len + 2 * (w->len / 3) + 2;
        w->out = malloc(cap);
        if (!w->out)
            return -1;
    }
    if (w->n_marks == w->marks_cap) {
        size_t cap = w->marks_cap ? w->marks_cap * 2 : 64;
        size_t *m = realloc(w->marks, cap * sizeof *m);
        if (!m)
            return -1;
        w->marks = m;
        w->marks_cap = cap;
    }
    size_t gap = at - w->copied;
    memcpy(w->out + w->out_len, w->in + w->copied, gap);
    w->out_len += gap;
    w->marks[w->n_marks++] = w->out_len;
    w->out[w->out_len++] = '"';
    memcpy(w->out + w->out_len, w->in + at, n);
    w->out_len += n;
    w->out[w->out_len++] = '"';
    w->copied = at + n;
    return 0;
}

/* Length of the special token at in[i], or 0 when there is none. */
static size_t special_token(const char *in, size_t len, size_t i)
{
    size_t left = len - i;
    if (in[i] == 'N' && left >= 3 && memcmp(in + i, "NaN", 3) == 0)
        return 3;
    if (in[i] == 'I' && left >= 8 && memcmp(in + i, "Infinity", 8) == 0)
        return 8;
    if (in[i] == '-' && left >= 9 && memcmp(in + i, "-Infinity", 9) == 0)
        return 9;
    return 0;
}

/* Maps an offset into the rewritten copy back to the original text. An
 * offset inside a rewritten token (quotes included) maps into that token. */
static size_t original_offset(const rewriter_t *w, size_t pos)
{
    size_t lo = 0, hi = w->n_marks; /* first mark > pos */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (w->marks[mid] <= pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return pos;
    size_t k = lo - 1; /* the last token starting at or before pos */
    size_t mark = w->marks[k];
    size_t token_at = mark - 2 * k; /* each earlier token added two quotes */
    char first = w->out[mark + 1];
    size_t n = first == 'N' ? 3 : first == 'I' ? 8 : 9;
    if (pos <= mark + n + 1) {
        size_t inside = pos > mark ? pos - mark - 1 : 0;
        return token_at + (inside < n ? inside : n);
    }
    return pos - 2 * (k + 1);
}

/* The bytes the scanner acts on; it skips the others (digits, most of a
 * model file) in a tight loop. */
static const unsigned char acts_on[256] = {
    ['"'] = 1, ['{'] = 1, ['['] = 1, ['}'] = 1, [']'] = 1,
    [','] = 1, [':'] = 1, ['N'] = 1, ['I'] = 1, ['-'] = 1,
};

/* The single pass: tracks strings, containers and whether the next value
 * is an object key, and rewrites the special tokens that stand as values.
 * Malformed structure only has to be survived here: jansson refuses it. */
static int scan(rewriter_t *w)
{
    const char *in = w->in;
    size_t len = w->len;
    unsigned char is_object[XJSON_MAX_DEPTH / 8 + 1] = {0};
    size_t depth = 0;
    int expect_key = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && !acts_on[(unsigned char)in[i]])
            i++;
        if (i == len)
            break;
        char c = in[i];
        switch (c) {
        case '"': {
            /* To the closing quote: the first one no backslash escapes. Each
             * memchr starts past the previous one's find, so the string is
             * read once however many escapes it holds. */
            size_t j = i + 1;
            const char *quote = memchr(in + j, '"', len - j);
            for (;;) {
                size_t end = quote ? (size_t)(quote - in) : len;
                const char *escape = memchr(in + j, '\\', end - j);
                if (!escape) {
                    i = end + 1;
                    break;
                }
                j = (size_t)(escape - in) + 2; /* past the escaped byte */
                if (j > len) {
                    i = len;
                    break;
                }
                if (quote && j > (size_t)(quote - in))
                    quote = memchr(in + j, '"', len - j);
            }
            expect_key = 0;
            continue;
        }
        case '{':
        case '[':
            depth++;
            if (depth <= XJSON_MAX_DEPTH) {
                unsigned char bit = (unsigned char)(1u << (depth % 8));
                if (c == '{')
                    is_object[depth / 8] |= bit;
                else
                    is_object[depth / 8] &= (unsigned char)~bit;
            }
            expect_key = c == '{';
            break;
        case '}':
        case ']':
            if (depth)
                depth--;
            expect_key = 0;
            break;
        case ',':
            expect_key = depth >= 1 && depth <= XJSON_MAX_DEPTH &&
                         (is_object[depth / 8] >> (depth % 8) & 1u);
            break;
        case ':':
            expect_key = 0;
            break;
        case 'N':
        case 'I':
        case '-': {
            size_t n = expect_key || depth > XJSON_MAX_DEPTH ? 0 : special_token(in, len, i);
            if (n) {
                if (rewrite(w, i, n) < 0)
                    return -1;
                i += n;
                continue;
            }
            break;
        }
        default:
            break;
        }
        i++;
    }
    if (w->out) {
        memcpy(w->out + w->out_len, in + w->copied, len - w->copied);
        w->out_len += len - w->copied;
        w->copied = len;
    }
    return 0;
}

json_t *sms_xjson_parse(const char *text, size_t len, char *errmsg, size_t errmsg_size)
{
    if (errmsg && errmsg_size)
        errmsg[0] = '\0';
    if (!text)
        len = 0;
    /* jansson reports error offsets as int; the worst-case copy must fit. */
    if (len > (size_t)INT32_MAX / 2) {
        set_error(errmsg, errmsg_size, 0, "document of %zu bytes is too large", len);
        return NULL;
    }
    rewriter_t w = {.in = text ? text : "", .len = len};
    json_t *root = NULL;
    /* jansson stops at a NUL after a top-level number ("1\0" parses) but
     * not after a string; JSON has no NUL byte anywhere, so refuse it. */
    const char *nul = memchr(w.in, '\0', len);
    if (nul) {
        set_error(errmsg, errmsg_size, (size_t)(nul - w.in), "NUL byte (JSON text has none)");
        return NULL;
    }
    if (scan(&w) < 0) {
        set_error(errmsg, errmsg_size, 0, "out of memory");
        goto done;
    }
    json_error_t jerr;
    root = w.out ? json_loadb(w.out, w.out_len, XJSON_FLAGS, &jerr)
                 : json_loadb(w.in, len, XJSON_FLAGS, &jerr);
    if (!root) {
        size_t pos = jerr.position > 0 ? (size_t)jerr.position : 0;
        if (w.out)
            pos = original_offset(&w, pos);
        if (pos > len)
            pos = len;
        set_error(errmsg, errmsg_size, pos, "%s", jerr.text);
    }
done:
    free(w.out);
    free(w.marks);
    return root;
}

bool sms_xjson_number(const json_t *v, double *out)
{
    double d;
    if (json_is_real(v)) {
        d = json_real_value(v);
    } else if (json_is_integer(v)) {
        d = (double)json_integer_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (n == 3 && memcmp(s, "NaN", 3) == 0)
            d = NAN;
        else if (n == 8 && memcmp(s, "Infinity", 8) == 0)
            d = INFINITY;
        else if (n == 9 && memcmp(s, "-Infinity", 9) == 0)
            d = -INFINITY;
        else
            return false;
    } else {
        return false;
    }
    if (out)
        *out = d;
    return true;
}

json_t *sms_xjson_member(json_t *obj, const char *key)
{
    return json_is_object(obj) ? json_object_get(obj, key) : NULL;
}
