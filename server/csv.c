/* text/csv request bodies to a float matrix, in one pass over the bytes with
 * no allocation per value: fields are parsed in place (sms_parse_float) and
 * written straight into the caller's matrix. Any byte may appear in a body;
 * nothing here relies on NUL termination or reads past body + len. */
#include "smserve/csv.h"

#include <math.h>
#include <string.h>

#include "smserve/number.h"

typedef struct csv_state {
    char delim;           /* ',', ';', '\t', ' ' (runs of blanks), or 0 (one column) */
    size_t cols;          /* row width, 0 until the first row when not expected */
    size_t line;          /* 1-based line number of the row being decoded */
    const char *body_end; /* numbers are scanned up to here, not the row's end */
    sms_matrix_t *out;
    size_t n; /* values written to out->values */
    sms_error_t *err;
} csv_state_t;

static int is_blank_char(char c)
{
    return c == ' ' || c == '\t';
}

static int is_blank_line(const char *p, const char *end)
{
    for (; p < end; p++)
        if (!is_blank_char(*p))
            return 0;
    return 1;
}

/* The first non-blank line decides: a comma anywhere makes it comma
 * separated, else a semicolon (as AWS's container's sniffer finds it), else
 * a tab, else a blank between two values, else the body has one column. */
static char sniff_delimiter(const char *p, const char *end)
{
    if (memchr(p, ',', (size_t)(end - p)))
        return ',';
    if (memchr(p, ';', (size_t)(end - p)))
        return ';';
    if (memchr(p, '\t', (size_t)(end - p)))
        return '\t';
    while (p < end && is_blank_char(*p))
        p++;
    while (end > p && is_blank_char(end[-1]))
        end--;
    if (memchr(p, ' ', (size_t)(end - p)))
        return ' ';
    return 0;
}

static int append_value(csv_state_t *s, float v)
{
    if (s->n >= s->out->cap && sms_matrix_reserve(s->out, s->n + 1) < 0)
        return sms_error_set(s->err, 500, "out of memory decoding CSV");
    s->out->values[s->n++] = v;
    return 0;
}

/* One field, already split off: blanks around it (those that are not the
 * delimiter) and one pair of double quotes are dropped; empty is NaN. */
static int decode_field(csv_state_t *s, const char *p, const char *end, size_t col)
{
    while (p < end && is_blank_char(*p) && *p != s->delim)
        p++;
    while (end > p && is_blank_char(end[-1]) && end[-1] != s->delim)
        end--;
    const char *tok = p, *tok_end = end;
    if (end - p >= 2 && *p == '"' && end[-1] == '"') {
        p++;
        end--;
        while (p < end && is_blank_char(*p))
            p++;
        while (end > p && is_blank_char(end[-1]))
            end--;
    }
    float v = NAN;
    int rc = p == end ? 0 : sms_parse_float(p, end, &v);
    if (rc < 0) {
        char quoted[SMS_NUMBER_QUOTE_BYTES];
        return sms_error_set(s->err, 400, "row %zu, column %zu: '%s' %s", s->line, col,
                             sms_number_quote(tok, (size_t)(tok_end - tok), quoted, sizeof quoted),
                             sms_number_reason(rc));
    }
    return append_value(s, v);
}

/* The fields of a comma or tab separated row [p, end), parsed in the same
 * pass that finds their ends: a field that is just a plain number followed
 * by the delimiter (or the end) never needs a second look. Any other field
 * (blanks, quotes, nan, the forms JSON lacks, errors) goes through
 * decode_field.
 * Numbers are scanned with the body's end as the limit, so that the scanner
 * may load whole words across the row's end (the bigger the window, the
 * more often its fast path applies); a number never runs into the '\r' or
 * '\n' that ends a row, and a scan that stops past `end` is refused. */
static int decode_delimited(csv_state_t *s, const char *p, const char *end)
{
    const char delim = s->delim;
    for (size_t col = 1;; col++) {
        const char *field_end;
        float v = NAN;
        if (p == end || *p == delim) {
            field_end = p;
        } else {
            if (!sms_scan_float(p, s->body_end, &v, &field_end) || field_end > end ||
                (field_end != end && *field_end != delim)) {
                field_end = memchr(p, delim, (size_t)(end - p));
                if (!field_end)
                    field_end = end;
                if (decode_field(s, p, field_end, col) < 0)
                    return -1;
                goto next;
            }
        }
        if (s->n < s->out->cap)
            s->out->values[s->n++] = v;
        else if (append_value(s, v) < 0)
            return -1;
    next:
        if (field_end == end)
            return 0;
        p = field_end + 1;
    }
}

/* Decodes the non-blank line [p, end) (no line terminator) as one row. */
static int decode_row(csv_state_t *s, const char *p, const char *end)
{
    size_t first = s->n;
    size_t col = 1;
    if (s->cols && sms_matrix_reserve(s->out, s->n + s->cols) < 0)
        return sms_error_set(s->err, 500, "out of memory decoding CSV");

    if (s->delim == 0) {
        if (decode_field(s, p, end, col) < 0)
            return -1;
    } else if (s->delim == ' ') {
        for (;;) {
            while (p < end && is_blank_char(*p))
                p++;
            if (p == end)
                break;
            const char *field = p;
            while (p < end && !is_blank_char(*p))
                p++;
            if (decode_field(s, field, p, col++) < 0)
                return -1;
        }
    } else if (decode_delimited(s, p, end) < 0) {
        return -1;
    }

    size_t width = s->n - first;
    if (s->cols == 0)
        s->cols = width;
    if (width != s->cols)
        return sms_error_set(s->err, 400, "row %zu has %zu values, expected %zu", s->line, width,
                             s->cols);
    s->out->rows++;
    return 0;
}

int sms_csv_decode(const char *body, size_t len, size_t expect_cols, sms_matrix_t *out,
                   sms_error_t *err)
{
    sms_matrix_reset(out);
    out->cols = expect_cols;
    if (len == 0)
        return 0;

    const char *p = body, *end = body + len;
    csv_state_t s = {.cols = expect_cols, .body_end = end, .out = out, .err = err};
    int sniffed = 0;
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3; /* a UTF-8 byte order mark, as spreadsheet exports write */

    while (p < end) {
        s.line++;
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *next = eol ? eol + 1 : end;
        const char *line_end = eol ? eol : end;
        if (line_end > p && line_end[-1] == '\r')
            line_end--;
        if (!is_blank_line(p, line_end)) {
            if (!sniffed) {
                s.delim = sniff_delimiter(p, line_end);
                sniffed = 1;
            }
            if (decode_row(&s, p, line_end) < 0)
                goto fail;
        }
        p = next;
    }
    out->cols = s.cols;
    return 0;

fail:
    sms_matrix_reset(out);
    return -1;
}
