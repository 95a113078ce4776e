/* Predictions to response bytes (text/csv, application/json,
 * application/jsonlines), and the choice among them from an Accept header.
 * Floats are printed by sms_format_float, so they parse back to the same
 * float32; the output buffer is reserved once so that appends do not grow it. */
#include "smserve/encode.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "smserve/number.h"

#define NUM_ENCODINGS 3

const char *sms_encoding_content_type(sms_encoding_t enc)
{
    switch (enc) {
    case SMS_ENC_CSV:
        return "text/csv; charset=utf-8";
    case SMS_ENC_JSON:
        return "application/json";
    case SMS_ENC_JSONLINES:
        return "application/jsonlines";
    }
    return "application/octet-stream";
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* The q parameter's value (RFC 9110: 0 to 1, at most three decimals), in
 * thousandths; a malformed one counts as 1 rather than refusing the range. */
static int parse_q(const char *p, const char *end)
{
    int q = 0;
    if (p < end && (*p == '0' || *p == '1')) {
        q = (*p - '0') * 1000;
        p++;
        if (p < end && *p == '.') {
            p++;
            for (int scale = 100; p < end && *p >= '0' && *p <= '9' && scale > 0; scale /= 10)
                q += (*p++ - '0') * scale;
        }
    } else {
        return 1000;
    }
    if (p != end || q > 1000)
        return 1000;
    return q;
}

static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Whether [p, end) is `word` (lower case), ignoring ASCII case. */
static int span_is(const char *p, const char *end, const char *word)
{
    for (; p < end && *word; p++, word++)
        if (ascii_lower(*p) != *word)
            return 0;
    return p == end && *word == '\0';
}

/* One media range of an Accept header: which encodings it covers and how
 * specific it is (2 exact, 1 type/star, 0 star/star). */
static void match_range(const char *p, const char *end, int covers[NUM_ENCODINGS], int *specificity)
{
    static const struct {
        const char *type;
        sms_encoding_t enc;
    } exact[] = {
        {"text/csv", SMS_ENC_CSV},
        {"application/json", SMS_ENC_JSON},
        {"application/jsonlines", SMS_ENC_JSONLINES},
        {"application/x-jsonlines", SMS_ENC_JSONLINES},
    };
    memset(covers, 0, NUM_ENCODINGS * sizeof covers[0]);
    *specificity = -1;
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) {
        if (span_is(p, end, exact[i].type)) {
            covers[exact[i].enc] = 1;
            *specificity = 2;
            return;
        }
    }
    if (span_is(p, end, "text/*")) {
        covers[SMS_ENC_CSV] = 1;
        *specificity = 1;
    } else if (span_is(p, end, "application/*")) {
        covers[SMS_ENC_JSON] = covers[SMS_ENC_JSONLINES] = 1;
        *specificity = 1;
    } else if (span_is(p, end, "*/*") || span_is(p, end, "*")) {
        covers[SMS_ENC_CSV] = covers[SMS_ENC_JSON] = covers[SMS_ENC_JSONLINES] = 1;
        *specificity = 0;
    }
}

/* Each encoding takes the q of the most specific range that covers it (so
 * "text/csv;q=0, star/star" excludes CSV). The highest q wins; on a tie the
 * encoding named by the earlier range wins, and among those a range covers
 * at once (wildcards) the fallback comes first. */
int sms_encoding_from_accept(const char *accept, sms_encoding_t fallback, sms_encoding_t *out)
{
    int q[NUM_ENCODINGS], spec[NUM_ENCODINGS], pos[NUM_ENCODINGS];
    for (int e = 0; e < NUM_ENCODINGS; e++) {
        q[e] = 0;
        spec[e] = -1;
        pos[e] = 0;
    }
    const char *p = accept;
    int any = 0;
    for (int index = 0; p && *p; index++) {
        const char *range_end = strchr(p, ',');
        if (!range_end)
            range_end = p + strlen(p);
        const char *type = p, *type_end = p;
        while (type < range_end && is_ows(*type))
            type++;
        type_end = memchr(type, ';', (size_t)(range_end - type));
        if (!type_end)
            type_end = range_end;
        const char *params = type_end;
        while (type_end > type && is_ows(type_end[-1]))
            type_end--;
        if (type_end > type)
            any = 1;

        int range_q = 1000;
        while (params < range_end) {
            params++; /* past ';' */
            const char *param_end = memchr(params, ';', (size_t)(range_end - params));
            if (!param_end)
                param_end = range_end;
            const char *name = params, *value_end = param_end;
            while (name < param_end && is_ows(*name))
                name++;
            while (value_end > name && is_ows(value_end[-1]))
                value_end--;
            if (value_end - name >= 2 && (name[0] == 'q' || name[0] == 'Q')) {
                const char *eq = name + 1;
                while (eq < value_end && is_ows(*eq))
                    eq++;
                if (eq < value_end && *eq == '=') {
                    eq++;
                    while (eq < value_end && is_ows(*eq))
                        eq++;
                    range_q = parse_q(eq, value_end);
                }
            }
            params = param_end;
        }

        int covers[NUM_ENCODINGS], specificity;
        match_range(type, type_end, covers, &specificity);
        for (int e = 0; e < NUM_ENCODINGS; e++) {
            if (covers[e] && specificity > spec[e]) {
                spec[e] = specificity;
                q[e] = range_q;
                pos[e] = index;
            }
        }
        p = *range_end ? range_end + 1 : range_end;
    }
    if (!any) {
        *out = fallback;
        return 0;
    }

    int best = -1;
    for (int k = 0; k < NUM_ENCODINGS; k++) {
        /* visit the fallback first so that it wins ties within one range */
        int e = k == 0 ? (int)fallback : (k <= (int)fallback ? k - 1 : k);
        if (q[e] <= 0)
            continue;
        if (best < 0 || q[e] > q[best] || (q[e] == q[best] && pos[e] < pos[best]))
            best = e;
    }
    if (best < 0)
        return -1;
    *out = (sms_encoding_t)best;
    return 0;
}

/* Worst case of one formatted value: "-1.17549435e-38" plus a separator. */
#define VALUE_BYTES 18

static void put(sms_buf_t *out, const char *s, size_t n)
{
    memcpy(out->data + out->len, s, n);
    out->len += n;
}

static void put_value(sms_buf_t *out, float v, int json)
{
    if (json && !isfinite(v)) {
        put(out, "null", 4);
        return;
    }
    out->len += sms_format_float(v, out->data + out->len);
}

static void put_score(sms_buf_t *out, const float *row, size_t cols)
{
    put(out, "{\"score\": ", 10);
    if (cols == 1) {
        put_value(out, row[0], 1);
    } else {
        put(out, "[", 1);
        for (size_t c = 0; c < cols; c++) {
            if (c)
                put(out, ", ", 2);
            put_value(out, row[c], 1);
        }
        put(out, "]", 1);
    }
    put(out, "}", 1);
}

int sms_encode(sms_encoding_t enc, const float *preds, size_t rows, size_t cols, sms_buf_t *out)
{
    /* Everything is reserved up front (a bound, not an estimate), so the
     * writers below only copy. `fixed` covers the JSON head and tail plus the
     * 32 bytes sms_format_float may be handed at the last value. */
    const size_t per_row = 32, fixed = 96;
    if (cols > SIZE_MAX / 2 / VALUE_BYTES ||
        rows > (SIZE_MAX - fixed) / (per_row + cols * VALUE_BYTES))
        return -1;
    if (sms_buf_reserve(out, fixed + rows * (per_row + cols * VALUE_BYTES)) < 0)
        return -1;

    switch (enc) {
    case SMS_ENC_CSV:
        for (size_t r = 0; r < rows; r++) {
            for (size_t c = 0; c < cols; c++) {
                if (c)
                    put(out, ",", 1);
                put_value(out, preds[r * cols + c], 0);
            }
            put(out, "\n", 1);
        }
        break;
    case SMS_ENC_JSON:
        put(out, "{\"predictions\": [", 17);
        for (size_t r = 0; r < rows; r++) {
            if (r)
                put(out, ", ", 2);
            put_score(out, preds + r * cols, cols);
        }
        put(out, "]}", 2);
        break;
    case SMS_ENC_JSONLINES:
        for (size_t r = 0; r < rows; r++) {
            put_score(out, preds + r * cols, cols);
            put(out, "\n", 1);
        }
        break;
    default:
        return -1;
    }
    out->data[out->len] = '\0';
    return 0;
}
