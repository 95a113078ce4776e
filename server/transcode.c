/* One pass from XGBoost's JSON dialect to UBJSON, checking the text as it
 * goes (see smserve/transcode.h). Written here rather than parsing with
 * jansson and writing the tree out: building the tree of a 100-tree model
 * (130,000 values) takes longer than XGBoost's own load, while this pass
 * allocates only its output. tests/test_transcode.c holds it to
 * sms_xjson_parse's verdict on every input, and to XGBoost's reading of the
 * JSON on every model fixture; fuzz/fuzz_transcode.c does the first on
 * random input. */
#define _GNU_SOURCE /* qsort_r */
#include "smserve/transcode.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The element type of an array XGBoost's UBJSON writer stores typed. */
typedef enum { ELEM_NONE, ELEM_F32, ELEM_I32, ELEM_I64, ELEM_U8, ELEM_U8_BOOL } elem_t;

#define KEY(s) s, sizeof s - 1

/* The typed arrays of a tree (RegTree::SaveModel and MultiTargetTree's, at
 * XGBoost 3.4.1), with the type each is written with. default_left also
 * takes JSON booleans: XGBoost reads true as 1 from an untyped array. */
static const struct {
    const char *key;
    size_t len;
    elem_t type;
} typed_keys[] = {
    {KEY("loss_changes"), ELEM_F32},     {KEY("sum_hessian"), ELEM_F32},
    {KEY("base_weights"), ELEM_F32},     {KEY("leaf_weights"), ELEM_F32},
    {KEY("split_conditions"), ELEM_F32}, {KEY("left_children"), ELEM_I32},
    {KEY("right_children"), ELEM_I32},   {KEY("parents"), ELEM_I32},
    {KEY("split_indices"), ELEM_I32},    {KEY("categories"), ELEM_I32},
    {KEY("categories_nodes"), ELEM_I32}, {KEY("categories_segments"), ELEM_I64},
    {KEY("categories_sizes"), ELEM_I64}, {KEY("split_type"), ELEM_U8},
    {KEY("default_left"), ELEM_U8_BOOL},
};

/* A scalar as read: kind 'i' (integer token), 'f' (any other number),
 * 'T', 'F' or 'Z'. */
typedef struct scalar {
    int64_t i;
    float f;
    unsigned char kind;
} scalar_t;

typedef struct key_span {
    size_t out_at, len; /* the key's bytes in the output */
    size_t in_at;       /* its opening quote in the input */
} key_span_t;

typedef struct tx {
    const unsigned char *in;
    size_t len, pos;
    unsigned char *out;
    size_t out_len, out_cap;
    key_span_t *keys; /* the keys of the objects being read, innermost last */
    size_t n_keys, keys_cap;
    scalar_t *stage; /* the elements of the typed array being read */
    size_t n_stage, stage_cap;
    bool exact;
    bool failed;
    char *errmsg;
    size_t errmsg_size;
} tx_t;

static int fail(tx_t *t, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Records the first failure; returns -1 so that callers can return it. */
static int fail(tx_t *t, size_t at, const char *fmt, ...)
{
    if (t->failed)
        return -1;
    t->failed = true;
    if (t->errmsg && t->errmsg_size) {
        int n = snprintf(t->errmsg, t->errmsg_size, "byte %zu: ", at);
        if (n >= 0 && (size_t)n < t->errmsg_size) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(t->errmsg + n, t->errmsg_size - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return -1;
}

static int reserve(tx_t *t, size_t n)
{
    if (t->out_cap - t->out_len >= n)
        return 0;
    size_t cap = t->out_cap ? t->out_cap : 4096;
    while (cap - t->out_len < n) {
        if (cap > SIZE_MAX / 2)
            return fail(t, t->pos, "out of memory");
        cap *= 2;
    }
    unsigned char *p = realloc(t->out, cap);
    if (!p)
        return fail(t, t->pos, "out of memory");
    t->out = p;
    t->out_cap = cap;
    return 0;
}

/* Callers reserve first. */
static void put(tx_t *t, unsigned char c)
{
    t->out[t->out_len++] = c;
}

/* v's low n bytes (1, 4 or 8), most significant first, as UBJSON stores
 * numbers. */
static void put_be(tx_t *t, uint64_t v, size_t n)
{
    unsigned char *p = t->out + t->out_len;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n == 8) {
        uint64_t be = __builtin_bswap64(v);
        memcpy(p, &be, 8);
    } else if (n == 4) {
        uint32_t be = __builtin_bswap32((uint32_t)v);
        memcpy(p, &be, 4);
    } else
#endif
    {
        for (size_t i = 0; i < n; i++)
            p[i] = (unsigned char)(v >> (8 * (n - 1 - i)));
    }
    t->out_len += n;
}

static uint32_t float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Whether a token ending at p ends there: JSON puts only whitespace, a
 * comma or a closing bracket after a number or literal. */
static bool delimited(const tx_t *t, size_t p)
{
    if (p == t->len)
        return true;
    unsigned char c = t->in[p];
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' || c == ']' || c == '}';
}

static void skip_ws(tx_t *t)
{
    while (t->pos < t->len) {
        unsigned char c = t->in[t->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        t->pos++;
    }
}

static int bad_token(tx_t *t)
{
    size_t n = 0;
    while (n < 24 && t->pos + n < t->len && !delimited(t, t->pos + n) &&
           t->in[t->pos + n] >= 0x21 && t->in[t->pos + n] < 0x7f)
        n++;
    if (n == 0)
        return fail(t, t->pos, "unexpected byte 0x%02x (expected a value)", t->in[t->pos]);
    return fail(t, t->pos, "'%.*s' is not a JSON value", (int)n, (const char *)t->in + t->pos);
}

static int literal(tx_t *t, const char *word, size_t n)
{
    if (t->len - t->pos < n || memcmp(t->in + t->pos, word, n) != 0 || !delimited(t, t->pos + n))
        return bad_token(t);
    t->pos += n;
    return 0;
}

static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* w * 10^e10 rounded to float32 without strtof, where that is exact (the
 * hot path: a model is mostly such numbers). With w < 2^53 and |e10| <= 22
 * both operands are exact doubles, so one multiplication or division gives
 * the value rounded once to double (Clinger); rounding that to float then
 * agrees with rounding the exact value unless it landed exactly on a
 * midpoint between two floats, which is left to strtof, as are results out
 * of float's normal range. */
static inline bool fast_float(uint64_t w, int64_t e10, float *out)
{
    if (w >= (1ull << 53) || e10 < -22 || e10 > 22)
        return false;
    double d = (double)w;
    d = e10 >= 0 ? d * pow10_exact[e10] : d / pow10_exact[-e10];
    if (!(d >= (double)FLT_MIN && d <= (double)FLT_MAX))
        return false;
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    if ((bits & 0x1fffffffull) == 0x10000000ull)
        return false;
    *out = (float)d;
    return true;
}

/* The rare numbers: the C library reads a copy of the token
 * s[start, end). Kept out of number() so that its hot path stays small. */
static __attribute__((noinline)) int number_slow(tx_t *t, size_t start, size_t end, bool real,
                                                 scalar_t *v)
{
    size_t n = end - start;
    char small[64];
    char *text = n < sizeof small ? small : malloc(n + 1);
    if (!text)
        return fail(t, start, "out of memory");
    memcpy(text, t->in + start, n);
    text[n] = '\0';
    int rc = 0;
    errno = 0;
    if (!real) {
        long long ll = strtoll(text, NULL, 10);
        if (errno == ERANGE)
            rc = fail(t, start, "integer %s is too big for 64 bits",
                      text[0] == '-' ? "(negative)" : "");
        v->kind = 'i';
        v->i = ll;
    } else {
        double d = strtod(text, NULL);
        if (errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL))
            rc = fail(t, start, "number beyond double's range");
        v->kind = 'f';
        v->f = strtof(text, NULL);
    }
    if (text != small)
        free(text);
    return rc;
}

/* Reads a number token at t->pos into v: JSON's grammar, integers as
 * jansson reads them (too big for int64 refused), others to float32
 * rounded once from the text (what strtof gives), after jansson's check
 * that the text is within double's range. */
static int number(tx_t *t, scalar_t *v)
{
    const unsigned char *s = t->in;
    size_t len = t->len, start = t->pos, p = start;
    bool neg = s[p] == '-';
    p += neg;
    if (p == len || !is_digit(s[p]))
        return bad_token(t);
    /* w accumulates every digit; it is used only when there are at most
     * 19 (it cannot have wrapped then). */
    uint64_t w = 0;
    size_t digits_at = p;
    if (s[p] == '0') {
        p++;
        if (p < len && is_digit(s[p]))
            return fail(t, start, "number with a leading zero");
    } else {
        for (; p < len && is_digit(s[p]); p++)
            w = w * 10 + (uint64_t)(s[p] - '0');
    }
    size_t digits = p - digits_at;
    int64_t e10 = 0;
    bool real = false;
    if (p < len && s[p] == '.') {
        real = true;
        size_t frac_at = ++p;
        for (; p < len && is_digit(s[p]); p++)
            w = w * 10 + (uint64_t)(s[p] - '0');
        if (p == frac_at)
            return fail(t, start, "number with no digit after its decimal point");
        digits += p - frac_at;
        e10 = -(int64_t)(p - frac_at);
    }
    if (p < len && (s[p] == 'e' || s[p] == 'E')) {
        real = true;
        p++;
        bool eneg = false;
        if (p < len && (s[p] == '+' || s[p] == '-'))
            eneg = s[p++] == '-';
        if (p == len || !is_digit(s[p]))
            return fail(t, start, "number with no digit in its exponent");
        int64_t e = 0;
        for (; p < len && is_digit(s[p]); p++) {
            if (e < 100000)
                e = e * 10 + (s[p] - '0');
        }
        e10 += eneg ? -e : e;
    }
    if (!delimited(t, p)) {
        unsigned char c = s[p];
        if (c >= 0x21 && c < 0x7f)
            return fail(t, p, "'%c' right after the number at byte %zu", c, start);
        return fail(t, p, "byte 0x%02x right after the number at byte %zu", c, start);
    }
    t->pos = p;
    if (!real) {
        if (digits > 18)
            return number_slow(t, start, p, false, v);
        v->kind = 'i';
        v->i = neg ? -(int64_t)w : (int64_t)w;
        return 0;
    }
    if (digits > 19 || (w != 0 && !fast_float(w, e10, &v->f)))
        return number_slow(t, start, p, true, v);
    if (w == 0)
        v->f = 0.0f;
    v->kind = 'f';
    if (neg)
        v->f = -v->f;
    return 0;
}

/* A number or literal at t->pos. */
static int scalar(tx_t *t, scalar_t *v)
{
    unsigned char c = t->in[t->pos];
    switch (c) {
    case 't':
        v->kind = 'T';
        return literal(t, "true", 4);
    case 'f':
        v->kind = 'F';
        return literal(t, "false", 5);
    case 'n':
        v->kind = 'Z';
        return literal(t, "null", 4);
    case 'N':
        v->kind = 'f';
        v->f = __builtin_nanf("");
        return literal(t, "NaN", 3);
    case 'I':
        v->kind = 'f';
        v->f = __builtin_inff();
        return literal(t, "Infinity", 8);
    case '-':
        if (t->pos + 1 < t->len && t->in[t->pos + 1] == 'I') {
            v->kind = 'f';
            v->f = -__builtin_inff();
            return literal(t, "-Infinity", 9);
        }
        return number(t, v);
    default:
        if (is_digit(c))
            return number(t, v);
        return bad_token(t);
    }
}

static int put_scalar(tx_t *t, const scalar_t *v)
{
    if (reserve(t, 9) < 0)
        return -1;
    switch (v->kind) {
    case 'i':
        put(t, 'L');
        put_be(t, (uint64_t)v->i, 8);
        break;
    case 'f':
        put(t, 'd');
        put_be(t, float_bits(v->f), 4);
        break;
    default:
        put(t, v->kind);
        break;
    }
    return 0;
}

/* Bytes the UTF-8 sequence at s takes, or 0 when it is not one jansson
 * takes (overlong forms, surrogates, beyond U+10FFFF). */
static size_t utf8_sequence(const unsigned char *s, size_t left)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t v, min;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2, v = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3, v = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    if (v < min || (v >= 0xd800 && v <= 0xdfff) || v > 0x10ffff)
        return 0;
    return n;
}

static int hex4(tx_t *t, size_t at, uint32_t *out)
{
    if (t->len - at < 4)
        return fail(t, at, "\\u escape cut short");
    uint32_t v = 0;
    for (size_t i = 0; i < 4; i++) {
        unsigned char c = t->in[at + i];
        uint32_t d;
        if (is_digit(c))
            d = (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (uint32_t)(c - 'A' + 10);
        else
            return fail(t, at, "\\u escape with a byte that is not a hex digit");
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

/* One escape at t->pos (the backslash), decoded into the output. */
static int escape(tx_t *t)
{
    size_t at = t->pos;
    if (t->len - at < 2)
        return fail(t, at, "string cut short in an escape");
    unsigned char c = t->in[at + 1];
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *hit = c ? strchr(from, c) : NULL;
    if (hit) {
        put(t, (unsigned char)to[hit - from]);
        t->pos += 2;
        return 0;
    }
    if (c != 'u')
        return fail(t, at, "invalid escape '\\%c'", c >= 0x21 && c < 0x7f ? c : '?');
    uint32_t v;
    if (hex4(t, at + 2, &v) < 0)
        return -1;
    size_t end = at + 6;
    if (v == 0)
        return fail(t, at, "\\u0000 in a string (a model holds no NUL)");
    if (v >= 0xdc00 && v <= 0xdfff)
        return fail(t, at, "\\u%04X is half of a surrogate pair with no first half", v);
    if (v >= 0xd800 && v <= 0xdbff) {
        uint32_t lo;
        if (t->len - end < 2 || t->in[end] != '\\' || t->in[end + 1] != 'u')
            return fail(t, at, "\\u%04X is half of a surrogate pair with no second half", v);
        if (hex4(t, end + 2, &lo) < 0)
            return -1;
        if (lo < 0xdc00 || lo > 0xdfff)
            return fail(t, at, "\\u%04X is half of a surrogate pair with no second half", v);
        v = 0x10000 + ((v - 0xd800) << 10) + (lo - 0xdc00);
        end += 6;
    }
    if (v < 0x80) {
        put(t, (unsigned char)v);
    } else if (v < 0x800) {
        put(t, (unsigned char)(0xc0 | v >> 6));
        put(t, (unsigned char)(0x80 | (v & 0x3f)));
    } else if (v < 0x10000) {
        put(t, (unsigned char)(0xe0 | v >> 12));
        put(t, (unsigned char)(0x80 | (v >> 6 & 0x3f)));
        put(t, (unsigned char)(0x80 | (v & 0x3f)));
    } else {
        put(t, (unsigned char)(0xf0 | v >> 18));
        put(t, (unsigned char)(0x80 | (v >> 12 & 0x3f)));
        put(t, (unsigned char)(0x80 | (v >> 6 & 0x3f)));
        put(t, (unsigned char)(0x80 | (v & 0x3f)));
    }
    t->pos = end;
    return 0;
}

/* Bytes that stand for themselves inside a string. */
static bool plain(unsigned char c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* The string at t->pos (its opening quote), as UBJSON: a string value
 * ('S', then the length) when marker is 'S', a key (the length only) when
 * it is 0. *at / *n (may be NULL) get where its bytes are in the output. */
static int string(tx_t *t, unsigned char marker, size_t *at, size_t *n)
{
    size_t open = t->pos++;
    if (reserve(t, 10) < 0)
        return -1;
    if (marker)
        put(t, marker);
    put(t, 'L');
    size_t length_at = t->out_len;
    t->out_len += 8;
    size_t start = t->out_len;
    for (;;) {
        size_t run = t->pos;
        while (t->pos < t->len && plain(t->in[t->pos]))
            t->pos++;
        /* The run, and room for the longest escape or sequence after it. */
        if (reserve(t, t->pos - run + 4) < 0)
            return -1;
        memcpy(t->out + t->out_len, t->in + run, t->pos - run);
        t->out_len += t->pos - run;
        if (t->pos == t->len)
            return fail(t, t->len, "string opened at byte %zu is not closed", open);
        unsigned char c = t->in[t->pos];
        if (c == '"') {
            t->pos++;
            break;
        }
        if (c == '\\') {
            if (escape(t) < 0)
                return -1;
        } else if (c < 0x20) {
            return fail(t, t->pos, "control byte 0x%02x in a string (escape it)", c);
        } else {
            size_t k = utf8_sequence(t->in + t->pos, t->len - t->pos);
            if (!k)
                return fail(t, t->pos, "invalid UTF-8 in a string");
            memcpy(t->out + t->out_len, t->in + t->pos, k);
            t->out_len += k;
            t->pos += k;
        }
    }
    size_t saved = t->out_len;
    t->out_len = length_at;
    put_be(t, saved - start, 8);
    t->out_len = saved;
    if (at)
        *at = start;
    if (n)
        *n = saved - start;
    return 0;
}

/* Room for one more item after n in the array *items of *cap. */
static int room(tx_t *t, void **items, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t want = *cap ? *cap * 2 : 256;
    void *p = want < SIZE_MAX / size ? realloc(*items, want * size) : NULL;
    if (!p)
        return fail(t, t->pos, "out of memory");
    *items = p;
    *cap = want;
    return 0;
}

static elem_t typed_key(const tx_t *t, size_t at, size_t n)
{
    for (size_t i = 0; i < sizeof typed_keys / sizeof typed_keys[0]; i++) {
        if (typed_keys[i].len == n && memcmp(typed_keys[i].key, t->out + at, n) == 0)
            return typed_keys[i].type;
    }
    return ELEM_NONE;
}

static int value(tx_t *t, int depth, elem_t typed);

/* Where a value must follow: at the end, or after a comma. */
static int expect_value(tx_t *t)
{
    skip_ws(t);
    if (t->pos == t->len)
        return fail(t, t->len, "the text ends where a value should be");
    return 0;
}

/* After an element: 1 when another follows (a comma), 0 at the closing
 * `close`, -1 on anything else. */
static int next_element(tx_t *t, unsigned char close, size_t open)
{
    skip_ws(t);
    if (t->pos == t->len)
        return fail(t, t->len, "the text ends inside the %s opened at byte %zu",
                    close == ']' ? "array" : "object", open);
    unsigned char c = t->in[t->pos];
    if (c == ',') {
        t->pos++;
        return 1;
    }
    if (c == close) {
        t->pos++;
        return 0;
    }
    return fail(t, t->pos, "expected ',' or '%c' in the %s opened at byte %zu", close,
                close == ']' ? "array" : "object", open);
}

static int cmp_keys(const void *a, const void *b, void *out)
{
    const key_span_t *x = a, *y = b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    const unsigned char *o = out;
    int c = memcmp(o + x->out_at, o + y->out_at, x->len);
    if (c)
        return c;
    return x->in_at < y->in_at ? -1 : x->in_at > y->in_at;
}

static bool same_key(const tx_t *t, const key_span_t *a, const key_span_t *b)
{
    return a->len == b->len && memcmp(t->out + a->out_at, t->out + b->out_at, a->len) == 0;
}

/* Refuses the second of two equal keys, named when it is short and
 * printable. */
static int duplicate(tx_t *t, const key_span_t *k)
{
    const unsigned char *name = t->out + k->out_at;
    bool printable = k->len <= 64;
    for (size_t i = 0; printable && i < k->len; i++)
        printable = name[i] >= 0x20 && name[i] < 0x7f;
    if (printable)
        return fail(t, k->in_at, "the key \"%.*s\" appears twice in one object", (int)k->len,
                    (const char *)name);
    return fail(t, k->in_at, "a key appears twice in one object");
}

/* Refuses an object whose keys [base, n_keys) repeat one, as jansson is
 * told to: small objects pairwise, large ones sorted. */
static int check_duplicates(tx_t *t, size_t base)
{
    key_span_t *k = t->keys + base;
    size_t n = t->n_keys - base;
    if (n <= 16) {
        for (size_t i = 1; i < n; i++) {
            for (size_t j = 0; j < i; j++) {
                if (same_key(t, &k[i], &k[j]))
                    return duplicate(t, &k[i]);
            }
        }
        return 0;
    }
    qsort_r(k, n, sizeof *k, cmp_keys, t->out);
    const key_span_t *dup = NULL;
    for (size_t i = 1; i < n; i++) {
        if (same_key(t, &k[i], &k[i - 1]) && (!dup || k[i].in_at < dup->in_at))
            dup = &k[i];
    }
    return dup ? duplicate(t, dup) : 0;
}

/* Writes the bracket at t->pos and reads past it: 1 when the container
 * closes at once (past its closing bracket too), 0 when not, -1. */
static int open_container(tx_t *t, unsigned char close)
{
    if (reserve(t, 1) < 0)
        return -1;
    put(t, t->in[t->pos++]);
    skip_ws(t);
    if (t->pos < t->len && t->in[t->pos] == close) {
        t->pos++;
        return 1;
    }
    return 0;
}

static int close_container(tx_t *t, unsigned char close)
{
    if (reserve(t, 1) < 0)
        return -1;
    put(t, close);
    return 0;
}

static int object(tx_t *t, int depth)
{
    size_t open = t->pos;
    size_t base = t->n_keys;
    int empty = open_container(t, '}');
    if (empty < 0)
        return -1;
    if (!empty) {
        for (;;) {
            skip_ws(t);
            if (t->pos == t->len)
                return fail(t, t->len, "the text ends inside the object opened at byte %zu", open);
            if (t->in[t->pos] != '"')
                return fail(t, t->pos, "expected a key (a string) in the object opened at byte %zu",
                            open);
            if (room(t, (void **)&t->keys, &t->keys_cap, t->n_keys, sizeof *t->keys) < 0)
                return -1;
            key_span_t *key = &t->keys[t->n_keys];
            key->in_at = t->pos;
            if (string(t, 0, &key->out_at, &key->len) < 0)
                return -1;
            t->n_keys++;
            elem_t typed = typed_key(t, key->out_at, key->len);
            skip_ws(t);
            if (t->pos == t->len || t->in[t->pos] != ':')
                return fail(t, t->pos, "expected ':' after the key at byte %zu", key->in_at);
            t->pos++;
            if (value(t, depth, typed) < 0)
                return -1;
            int more = next_element(t, '}', open);
            if (more < 0)
                return -1;
            if (!more)
                break;
        }
    }
    if (check_duplicates(t, base) < 0)
        return -1;
    t->n_keys = base;
    return close_container(t, '}');
}

static int array(tx_t *t, int depth)
{
    size_t open = t->pos;
    int empty = open_container(t, ']');
    if (empty < 0)
        return -1;
    if (!empty) {
        for (;;) {
            if (value(t, depth, ELEM_NONE) < 0)
                return -1;
            int more = next_element(t, ']', open);
            if (more < 0)
                return -1;
            if (!more)
                break;
        }
    }
    return close_container(t, ']');
}

static bool fits(const scalar_t *v, elem_t type)
{
    switch (type) {
    case ELEM_F32:
        return v->kind == 'f';
    case ELEM_I32:
        return v->kind == 'i' && v->i >= INT32_MIN && v->i <= INT32_MAX;
    case ELEM_I64:
        return v->kind == 'i';
    case ELEM_U8_BOOL:
        if (v->kind == 'T' || v->kind == 'F')
            return true;
        /* fall through */
    case ELEM_U8:
        return v->kind == 'i' && v->i >= 0 && v->i <= 255;
    case ELEM_NONE:
        break;
    }
    return false;
}

/* The staged elements as an untyped array's, after its '['. */
static int put_staged(tx_t *t)
{
    for (size_t i = 0; i < t->n_stage; i++) {
        if (put_scalar(t, &t->stage[i]) < 0)
            return -1;
    }
    t->n_stage = 0;
    return 0;
}

static int put_typed(tx_t *t, elem_t type)
{
    static const struct {
        unsigned char marker;
        size_t size;
    } spec[] = {[ELEM_F32] = {'d', 4},
                [ELEM_I32] = {'l', 4},
                [ELEM_I64] = {'L', 8},
                [ELEM_U8] = {'U', 1},
                [ELEM_U8_BOOL] = {'U', 1}};
    size_t n = t->n_stage, size = spec[type].size;
    if (n > (SIZE_MAX - 16) / size || reserve(t, 13 + n * size) < 0)
        return fail(t, t->pos, "out of memory");
    put(t, '[');
    put(t, '$');
    put(t, spec[type].marker);
    put(t, '#');
    put(t, 'L');
    put_be(t, n, 8);
    for (size_t i = 0; i < n; i++) {
        const scalar_t *v = &t->stage[i];
        uint64_t u = v->kind == 'f'   ? float_bits(v->f)
                     : v->kind == 'T' ? 1
                     : v->kind == 'F' ? 0
                                      : (uint64_t)v->i;
        put_be(t, u, size);
    }
    t->n_stage = 0;
    return 0;
}

/* An array XGBoost stores typed: its scalars are staged, then written typed
 * when each fits the type, untyped otherwise (and from the first element
 * that is no scalar on). */
static int typed_array(tx_t *t, int depth, elem_t type)
{
    size_t open = t->pos++;
    bool staging = true;
    bool typeable = true;
    t->n_stage = 0;
    skip_ws(t);
    if (t->pos < t->len && t->in[t->pos] == ']') {
        t->pos++;
        return put_typed(t, type);
    }
    for (;;) {
        if (expect_value(t) < 0)
            return -1;
        unsigned char c = t->in[t->pos];
        if (staging && (c == '{' || c == '[' || c == '"')) {
            if (reserve(t, 1) < 0)
                return -1;
            put(t, '[');
            if (put_staged(t) < 0)
                return -1;
            staging = false;
        }
        if (staging) {
            if (room(t, (void **)&t->stage, &t->stage_cap, t->n_stage, sizeof *t->stage) < 0)
                return -1;
            scalar_t *v = &t->stage[t->n_stage];
            if (scalar(t, v) < 0)
                return -1;
            typeable = typeable && fits(v, type);
            t->n_stage++;
        } else if (value(t, depth, ELEM_NONE) < 0) {
            return -1;
        }
        int more = next_element(t, ']', open);
        if (more < 0)
            return -1;
        if (!more)
            break;
    }
    if (staging && typeable)
        return put_typed(t, type);
    t->exact = false;
    if (staging) {
        if (reserve(t, 1) < 0)
            return -1;
        put(t, '[');
        if (put_staged(t) < 0)
            return -1;
    }
    if (reserve(t, 1) < 0)
        return -1;
    put(t, ']');
    return 0;
}

static int value(tx_t *t, int depth, elem_t typed)
{
    if (expect_value(t) < 0)
        return -1;
    unsigned char c = t->in[t->pos];
    if (c == '{' || c == '[') {
        if (depth >= SMS_TRANSCODE_MAX_DEPTH)
            return fail(t, t->pos, "nesting deeper than %d levels", SMS_TRANSCODE_MAX_DEPTH);
        if (c == '{')
            return object(t, depth + 1);
        return typed ? typed_array(t, depth + 1, typed) : array(t, depth + 1);
    }
    if (c == '"')
        return string(t, 'S', NULL, NULL);
    scalar_t v;
    if (scalar(t, &v) < 0)
        return -1;
    return put_scalar(t, &v);
}

int sms_transcode_json(const char *text, size_t len, unsigned char **out, size_t *out_len,
                       bool *exact_types, char *errmsg, size_t errmsg_size)
{
    tx_t t = {.in = (const unsigned char *)(text ? text : ""),
              .len = text ? len : 0,
              .exact = true,
              .errmsg = errmsg,
              .errmsg_size = errmsg_size};
    if (errmsg && errmsg_size)
        errmsg[0] = '\0';
    *out = NULL;
    *out_len = 0;
    /* An XGBoost model's UBJSON is about 0.6 of its JSON. */
    if (reserve(&t, t.len / 4 * 3 + 64) < 0)
        goto fail;
    if (value(&t, 0, ELEM_NONE) < 0)
        goto fail;
    skip_ws(&t);
    if (t.pos != t.len) {
        fail(&t, t.pos, "more after the end of the document");
        goto fail;
    }
    free(t.keys);
    free(t.stage);
    *out = t.out;
    *out_len = t.out_len;
    if (exact_types)
        *exact_types = t.exact;
    return 0;
fail:
    free(t.out);
    free(t.keys);
    free(t.stage);
    return -1;
}
