/* Content-Type to input kind and Accept to encoding. Content-Type follows
 * AWS's XGBoost container (lower-cased media type, bare tokens such as
 * `csv`, no header = libsvm, label_size=1); Accept follows RFC 9110 (lists,
 * q-values, wildcards), which AWS does not (it compares the whole value). */
#include "smserve/mediatype.h"

#include <stdio.h>
#include <string.h>

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
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

static void trim(const char **p, const char **end)
{
    while (*p < *end && is_ows(**p))
        (*p)++;
    while (*end > *p && is_ows((*end)[-1]))
        (*end)--;
}

/* The header value as sent, for a message: printable ASCII kept, anything
 * else as \xNN, cut at about 100 bytes. */
static const char *quote_value(const char *v, char *buf, size_t size)
{
    size_t n = 0;
    for (; *v && n + 8 < size; v++) {
        unsigned char c = (unsigned char)*v;
        if (c >= 0x20 && c < 0x7f && c != '\\')
            buf[n++] = (char)c;
        else
            n += (size_t)snprintf(buf + n, size - n, "\\x%02x", c);
    }
    if (*v)
        n += (size_t)snprintf(buf + n, size - n, "...");
    buf[n] = '\0';
    return buf;
}

#define QUOTE_BYTES 112

static int unsupported(const char *content_type, sms_error_t *err)
{
    char quoted[QUOTE_BYTES];
    return sms_error_set(err, 415,
                         "Content-Type \"%s\" is not supported; send text/csv, text/libsvm, "
                         "application/x-recordio-protobuf, application/json or "
                         "application/jsonlines",
                         quote_value(content_type, quoted, sizeof quoted));
}

/* CSV's parameters in [p, end) (each after a ';'): label_size must be 1, as
 * AWS requires; others are ignored. 0 or -1 (415). */
static int check_csv_params(const char *content_type, const char *p, const char *end,
                            sms_error_t *err)
{
    while (p < end) {
        p++; /* past ';' */
        const char *param_end = memchr(p, ';', (size_t)(end - p));
        if (!param_end)
            param_end = end;
        const char *name = p, *eq = memchr(p, '=', (size_t)(param_end - p));
        const char *name_end = eq ? eq : param_end;
        trim(&name, &name_end);
        if (span_is(name, name_end, "label_size")) {
            const char *v = eq ? eq + 1 : param_end, *v_end = param_end;
            trim(&v, &v_end);
            if (v_end - v >= 2 && *v == '"' && v_end[-1] == '"') {
                v++;
                v_end--;
            }
            if (!span_is(v, v_end, "1")) {
                char quoted[QUOTE_BYTES];
                return sms_error_set(err, 415,
                                     "Content-Type \"%s\": label_size must be 1 (one label "
                                     "column, which AWS's container also requires)",
                                     quote_value(content_type, quoted, sizeof quoted));
            }
        }
        p = param_end;
    }
    return 0;
}

int sms_media_input(const char *content_type, sms_input_t *in, sms_error_t *err)
{
    static const struct {
        const char *type;
        sms_input_t in;
    } known[] = {
        {"text/csv", SMS_IN_CSV},
        {"csv", SMS_IN_CSV},
        {"text/libsvm", SMS_IN_LIBSVM},
        {"text/x-libsvm", SMS_IN_LIBSVM},
        {"libsvm", SMS_IN_LIBSVM},
        {"application/x-recordio-protobuf", SMS_IN_RECORDIO},
        {"recordio-protobuf", SMS_IN_RECORDIO},
        {"application/json", SMS_IN_JSON},
        {"application/jsonlines", SMS_IN_JSONLINES},
        {"application/x-jsonlines", SMS_IN_JSONLINES},
    };
    if (!content_type) {
        *in = SMS_IN_LIBSVM;
        return 0;
    }
    const char *type = content_type, *end = content_type + strlen(content_type);
    const char *params = memchr(type, ';', (size_t)(end - type));
    const char *type_end = params ? params : end;
    trim(&type, &type_end);
    if (span_is(type, type_end, "application/x-parquet") || span_is(type, type_end, "parquet")) {
        char quoted[QUOTE_BYTES];
        return sms_error_set(err, 415,
                             "Content-Type \"%s\" is not supported (parquet is not read); send "
                             "text/csv, text/libsvm, application/x-recordio-protobuf, "
                             "application/json or application/jsonlines",
                             quote_value(content_type, quoted, sizeof quoted));
    }
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (!span_is(type, type_end, known[i].type))
            continue;
        if (known[i].in == SMS_IN_CSV && params &&
            check_csv_params(content_type, params, end, err) < 0)
            return -1;
        *in = known[i].in;
        return 0;
    }
    return unsupported(content_type, err);
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

/* One media range of an Accept header: which encodings it covers and how
 * specific it is (2 exact, 1 type/star, 0 star/star, -1 none). */
static void match_range(const char *p, const char *end, int covers[SMS_ENC_COUNT], int *specificity)
{
    static const struct {
        const char *type;
        sms_encoding_t enc;
    } exact[] = {
        {"text/csv", SMS_ENC_CSV},
        {"application/json", SMS_ENC_JSON},
        {"application/jsonlines", SMS_ENC_JSONLINES},
        {"application/x-jsonlines", SMS_ENC_JSONLINES},
        {"application/x-recordio-protobuf", SMS_ENC_RECORDIO},
    };
    memset(covers, 0, SMS_ENC_COUNT * sizeof covers[0]);
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
        covers[SMS_ENC_JSON] = covers[SMS_ENC_JSONLINES] = covers[SMS_ENC_RECORDIO] = 1;
        *specificity = 1;
    } else if (span_is(p, end, "*/*") || span_is(p, end, "*")) {
        for (int e = 0; e < SMS_ENC_COUNT; e++)
            covers[e] = 1;
        *specificity = 0;
    }
}

/* The q of a range's parameters in [params, end) (each after a ';'). */
static int range_q(const char *params, const char *end)
{
    int q = 1000;
    while (params < end) {
        params++; /* past ';' */
        const char *param_end = memchr(params, ';', (size_t)(end - params));
        if (!param_end)
            param_end = end;
        const char *name = params, *value_end = param_end;
        trim(&name, &value_end);
        if (value_end - name >= 2 && (name[0] == 'q' || name[0] == 'Q')) {
            const char *eq = name + 1;
            while (eq < value_end && is_ows(*eq))
                eq++;
            if (eq < value_end && *eq == '=') {
                eq++;
                while (eq < value_end && is_ows(*eq))
                    eq++;
                q = parse_q(eq, value_end);
            }
        }
        params = param_end;
    }
    return q;
}

int sms_media_output(const char *accept, sms_encoding_t fallback, unsigned offered,
                     sms_encoding_t *out)
{
    int q[SMS_ENC_COUNT], spec[SMS_ENC_COUNT], pos[SMS_ENC_COUNT];
    for (int e = 0; e < SMS_ENC_COUNT; e++) {
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
        const char *type = p;
        const char *params = memchr(type, ';', (size_t)(range_end - type));
        const char *type_end = params ? params : range_end;
        trim(&type, &type_end);
        if (type_end > type)
            any = 1;
        int covers[SMS_ENC_COUNT], specificity;
        match_range(type, type_end, covers, &specificity);
        int rq = specificity >= 0 && params ? range_q(params, range_end) : 1000;
        for (int e = 0; e < SMS_ENC_COUNT; e++) {
            if (covers[e] && specificity > spec[e]) {
                spec[e] = specificity;
                q[e] = rq;
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
    for (int k = 0; k < SMS_ENC_COUNT; k++) {
        /* visit the fallback first so that it wins ties within one range */
        int e = k == 0 ? (int)fallback : (k <= (int)fallback ? k - 1 : k);
        if (q[e] <= 0 || !(offered & SMS_ENC_BIT(e)))
            continue;
        if (best < 0 || q[e] > q[best] || (q[e] == q[best] && pos[e] < pos[best]))
            best = e;
    }
    if (best < 0)
        return -1;
    *out = (sms_encoding_t)best;
    return 0;
}

int sms_encoding_from_accept(const char *accept, sms_encoding_t fallback, sms_encoding_t *out)
{
    return sms_media_output(
        accept, fallback,
        SMS_ENC_BIT(SMS_ENC_CSV) | SMS_ENC_BIT(SMS_ENC_JSON) | SMS_ENC_BIT(SMS_ENC_JSONLINES), out);
}

int sms_media_default_accept(const char *value, unsigned offered, sms_encoding_t *out,
                             sms_error_t *err)
{
    *out = SMS_ENC_CSV;
    if (!value || !*value)
        return 0;
    if (sms_media_output(value, SMS_ENC_CSV, offered, out) == 0)
        return 0;
    char quoted[QUOTE_BYTES];
    return sms_error_set(err, 500,
                         "invalid SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT=\"%s\": expected text/csv, "
                         "application/json%s",
                         quote_value(value, quoted, sizeof quoted),
                         offered & SMS_ENC_BIT(SMS_ENC_RECORDIO)
                             ? ", application/jsonlines or application/x-recordio-protobuf"
                             : " or application/jsonlines");
}
