/* text/libsvm request bodies to a float matrix, as AWS's XGBoost container
 * reads them (its per-body index-base guess included), in one pass when the
 * width is known: rows start all-missing and each index:value lands in its
 * cell; the first index 0 turns the optimistic 1-based reading into 0-based
 * by moving the rows so far one column right. A free width costs a first,
 * lighter pass for the largest index. Nothing here relies on NUL
 * termination or reads past body + len. */
#include "smserve/libsvm.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "smserve/number.h"

/* A cell no pair has written, and one an explicit nan has: both missing to
 * XGBoost, told apart so that "1:nan 1:2" is still a duplicate index. */
#define MISSING_BITS      0x7fc00000u
#define EXPLICIT_NAN_BITS 0x7fc00001u

typedef struct libsvm_state {
    const char *body_end; /* numbers are scanned up to here, not the line's end */
    size_t width;
    size_t fast_cols; /* columns a pair may land in without store_pair's checks */
    size_t max_values;
    int zero_based;       /* 1 once an index 0 was seen (or pass 1 found one) */
    int base_known;       /* pass 1 decided the base: no switching */
    const char *at_width; /* first token whose index == width, read 1-based */
    size_t at_width_len, at_width_line;
    size_t line; /* 1-based line number of the row being decoded */
    size_t pairs;
    sms_matrix_t *out;
    sms_error_t *err;
} libsvm_state_t;

static float bits_float(uint32_t bits)
{
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static uint32_t float_bits(float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* [p, end): the line without its '\n' and a '\r' before it (or before the
 * body's end). Returns where the next line starts. */
static const char *next_line(const char *p, const char *end, const char **line_end)
{
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *le = eol ? eol : end;
    if (le > p && le[-1] == '\r')
        le--;
    *line_end = le;
    return eol ? eol + 1 : end;
}

static const char *skip_spaces(const char *p, const char *end)
{
    while (p < end && *p == ' ')
        p++;
    return p;
}

static const char *token_end(const char *p, const char *end)
{
    const char *sp = memchr(p, ' ', (size_t)(end - p));
    return sp ? sp : end;
}

/* The index [p, colon): ASCII digits only. 0 and *idx, -1 when it is not
 * digits, -2 when it is 10^19 or more. */
static int parse_index(const char *p, const char *colon, uint64_t *idx)
{
    uint64_t v = 0;
    if (p == colon)
        return -1;
    for (; p < colon; p++) {
        if (!is_digit(*p))
            return -1;
        if (v > 999999999999999999u) /* 20 digits: beyond any width anyway */
            return -2;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *idx = v;
    return 0;
}

/* Whether some token in [p, end) is index 0 ("0:", "00:"): decides the base
 * a refusal names when it comes before the rest of the body was read. */
static int rest_has_index0(const char *start, const char *p, const char *end)
{
    for (; p < end; p++) {
        if (*p != '0' || (p > start && p[-1] != ' ' && p[-1] != '\n'))
            continue;
        const char *q = p;
        while (q < end && *q == '0')
            q++;
        if (q < end && *q == ':')
            return 1;
    }
    return 0;
}

static size_t count_rows(const char *p, const char *end)
{
    size_t rows = 0;
    while (p < end) {
        const char *le;
        const char *next = next_line(p, end, &le);
        if (skip_spaces(p, le) < le)
            rows++;
        p = next;
    }
    return rows;
}

static int refuse_size(sms_error_t *err, size_t rows, uint64_t width, size_t max_values)
{
    return sms_error_set(err, 413,
                         "the body expands to %zu rows x %llu columns, over the limit of %zu "
                         "values; send fewer rows per request",
                         rows, (unsigned long long)width, max_values);
}

static int refuse_token(libsvm_state_t *s, size_t line, const char *tok, size_t n, const char *what)
{
    char quoted[SMS_NUMBER_QUOTE_BYTES];
    return sms_error_set(s->err, 400, "line %zu: '%s': %s", line,
                         sms_number_quote(tok, n, quoted, sizeof quoted), what);
}

static int refuse_beyond(libsvm_state_t *s, size_t line, const char *tok, size_t n, uint64_t idx,
                         int zero_based)
{
    char what[160];
    snprintf(what, sizeof what, "index %llu is beyond %zu features (indices read as %s)",
             (unsigned long long)idx, s->width,
             zero_based ? "0-based: the body uses index 0" : "1-based: no index 0 in the body");
    return refuse_token(s, line, tok, n, what);
}

/* The first index 0: the rows so far (the current one included) were
 * filled 1-based; move them one column right. */
static int switch_to_zero_based(libsvm_state_t *s)
{
    if (s->at_width)
        return refuse_beyond(s, s->at_width_line, s->at_width, s->at_width_len, s->width, 1);
    float *v = s->out->values;
    for (size_t r = 0; r <= s->out->rows; r++) {
        float *row = v + r * s->width;
        memmove(row + 1, row, (s->width - 1) * sizeof *row);
        row[0] = bits_float(MISSING_BITS);
    }
    s->zero_based = 1;
    s->fast_cols = s->width;
    return 0;
}

/* Stores one pair of the current row; tok names it in refusals. */
static int store_pair(libsvm_state_t *s, float *row, uint64_t idx, float v, const char *tok,
                      size_t n)
{
    if (idx == 0 && !s->zero_based && switch_to_zero_based(s) < 0)
        return -1;
    uint64_t col = s->zero_based ? idx : idx - 1;
    if (col >= s->width) {
        int zero = s->zero_based || rest_has_index0(tok, tok + n, s->body_end);
        return refuse_beyond(s, s->line, tok, n, idx, zero);
    }
    if (!s->zero_based && !s->at_width && idx == s->width && !s->base_known) {
        s->at_width = tok;
        s->at_width_len = n;
        s->at_width_line = s->line;
    }
    if (float_bits(row[col]) != MISSING_BITS) {
        char what[64];
        snprintf(what, sizeof what, "index %llu appears twice in the line",
                 (unsigned long long)idx);
        return refuse_token(s, s->line, tok, n, what);
    }
    row[col] = v != v ? bits_float(EXPLICIT_NAN_BITS) : v;
    s->pairs++;
    return 0;
}

/* A label: one number or comma-separated numbers, read and dropped. */
static int check_label(libsvm_state_t *s, const char *p, const char *end)
{
    if (memchr(p, '\t', (size_t)(end - p)))
        return refuse_token(s, s->line, p, (size_t)(end - p),
                            "a tab; separate libsvm tokens with single spaces");
    for (const char *q = p;;) {
        const char *comma = memchr(q, ',', (size_t)(end - q));
        const char *part_end = comma ? comma : end;
        float v;
        int rc = sms_parse_float(q, part_end, &v);
        if (rc < 0) {
            char what[160];
            snprintf(what, sizeof what, "the label %s", sms_number_reason(rc));
            return refuse_token(s, s->line, p, (size_t)(end - p), what);
        }
        if (!comma)
            return 0;
        q = comma + 1;
    }
}

/* A token [p, end) the fast path did not take: an index:value pair, or a
 * refusal saying why not. */
static int decode_pair_slow(libsvm_state_t *s, float *row, const char *p, const char *end)
{
    size_t n = (size_t)(end - p);
    if (memchr(p, '\t', n))
        return refuse_token(s, s->line, p, n, "a tab; separate libsvm tokens with single spaces");
    const char *colon = memchr(p, ':', n);
    if (!colon)
        return refuse_token(s, s->line, p, n,
                            "not index:value (only a line's first token may "
                            "be a label)");
    if (colon - p == 3 && (p[0] | 0x20) == 'q' && (p[1] | 0x20) == 'i' && (p[2] | 0x20) == 'd')
        return refuse_token(s, s->line, p, n, "qid (ranking) is not supported");
    uint64_t idx;
    int rc = parse_index(p, colon, &idx);
    if (rc == -1)
        return refuse_token(s, s->line, p, n, "the index is not a non-negative integer");
    if (rc == -2)
        return refuse_token(s, s->line, p, n, "the index is too large");
    float v;
    rc = sms_parse_float(colon + 1, end, &v);
    if (rc < 0) {
        char what[160];
        snprintf(what, sizeof what, "the value %s", sms_number_reason(rc));
        return refuse_token(s, s->line, p, n, what);
    }
    return store_pair(s, row, idx, v, p, n);
}

/* Decodes the non-blank line [p, end) (spaces skipped at p) as one row. */
static int decode_row(libsvm_state_t *s, const char *p, const char *end, const char *body)
{
    sms_matrix_t *out = s->out;
    if (s->width && out->rows + 1 > s->max_values / s->width)
        return refuse_size(s->err, count_rows(body, s->body_end), s->width, s->max_values);
    if (sms_matrix_reserve(out, (out->rows + 1) * s->width) < 0)
        return sms_error_set(s->err, 500, "out of memory decoding libsvm");
    float *row = s->width ? out->values + out->rows * s->width : NULL; /* no pair fits */
    const float missing = bits_float(MISSING_BITS);
    for (size_t c = 0; c < s->width; c++)
        row[c] = missing;

    const char *te = token_end(p, end);
    if (!memchr(p, ':', (size_t)(te - p))) {
        if (check_label(s, p, te) < 0)
            return -1;
        p = te;
    }
    for (;;) {
        p = skip_spaces(p, end);
        if (p == end)
            break;
        /* the fast path: digits, ':', a number the scanner takes, then a
         * space or the line's end */
        const char *q = p;
        uint64_t idx = 0;
        while (q < end && is_digit(*q) && q - p < 18)
            idx = idx * 10 + (uint64_t)(*q++ - '0');
        const char *stop;
        float v;
        if (q > p && q < end && *q == ':' && sms_scan_float(q + 1, s->body_end, &v, &stop) &&
            stop <= end && (stop == end || *stop == ' ')) {
            /* idx 0 read 1-based wraps to a column beyond any width */
            uint64_t col = s->zero_based ? idx : idx - 1;
            if (col < s->fast_cols && float_bits(row[col]) == MISSING_BITS && v == v) {
                row[col] = v;
                s->pairs++;
            } else if (store_pair(s, row, idx, v, p, (size_t)(stop - p)) < 0) {
                return -1;
            }
            p = stop;
            continue;
        }
        te = token_end(p, end);
        if (decode_pair_slow(s, row, p, te) < 0)
            return -1;
        p = te;
    }
    out->rows++;
    return 0;
}

/* Pass 1 for a free width: the rows, the largest well-formed index and
 * whether index 0 appears. Malformed tokens are left to pass 2, which
 * refuses them in body order. */
static void scan_indices(const char *p, const char *end, size_t *rows, uint64_t *max_index,
                         int *has_zero)
{
    *rows = 0;
    *max_index = 0;
    *has_zero = 0;
    while (p < end) {
        const char *le;
        const char *next = next_line(p, end, &le);
        p = skip_spaces(p, le);
        if (p < le)
            (*rows)++;
        while (p < le) {
            /* the index as the fast path reads it, else as parse_index does */
            const char *q = p;
            uint64_t idx = 0;
            while (q < le && is_digit(*q) && q - p < 18)
                idx = idx * 10 + (uint64_t)(*q++ - '0');
            int ok = q > p && q < le && *q == ':';
            if (!ok && q - p == 18) {
                const char *colon = memchr(p, ':', (size_t)(token_end(p, le) - p));
                ok = colon && parse_index(p, colon, &idx) == 0;
            }
            if (ok) {
                if (idx > *max_index)
                    *max_index = idx;
                if (idx == 0)
                    *has_zero = 1;
            }
            while (q < le && *q != ' ')
                q++;
            p = skip_spaces(q, le);
        }
        p = next;
    }
}

int sms_libsvm_decode_capped(const char *body, size_t len, size_t expect_cols, size_t max_values,
                             sms_matrix_t *out, sms_error_t *err)
{
    sms_matrix_reset(out);
    out->cols = expect_cols;
    if (len == 0)
        return 0;
    const char *p = body, *end = body + len;
    libsvm_state_t s = {.body_end = end,
                        .width = expect_cols,
                        .max_values = max_values ? max_values : SMS_MATRIX_MAX_VALUES,
                        .out = out,
                        .err = err};

    if (expect_cols == 0) {
        size_t rows;
        uint64_t max_index;
        int has_zero;
        scan_indices(p, end, &rows, &max_index, &has_zero);
        uint64_t width = has_zero ? max_index + 1 : max_index;
        if (rows && width > s.max_values / rows) {
            refuse_size(err, rows, width, s.max_values);
            goto fail;
        }
        s.width = (size_t)width;
        s.zero_based = has_zero;
        s.base_known = 1;
    }

    /* read 1-based and not yet sure, an index == width must be noted */
    s.fast_cols = s.zero_based || s.base_known || s.width == 0 ? s.width : s.width - 1;
    while (p < end) {
        s.line++;
        const char *le;
        const char *next = next_line(p, end, &le);
        p = skip_spaces(p, le);
        if (p < le && decode_row(&s, p, le, body) < 0)
            goto fail;
        p = next;
    }
    if (out->rows && s.pairs == 0) {
        sms_error_set(err, 400,
                      "no index:value pair in the body's %zu line(s): nothing to predict on",
                      out->rows);
        goto fail;
    }
    out->cols = s.width;
    return 0;

fail:
    sms_matrix_reset(out);
    return -1;
}

int sms_libsvm_decode(const char *body, size_t len, size_t expect_cols, sms_matrix_t *out,
                      sms_error_t *err)
{
    return sms_libsvm_decode_capped(body, len, expect_cols, sms_matrix_max_values(), out, err);
}
