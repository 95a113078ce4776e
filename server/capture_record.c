/* The capture record: one invocation as the JSON line SageMaker endpoint
 * data capture writes, measured first and then written in one pass, and
 * what the line is made of: the UTC time, JSON string escaping (UTF-8
 * checked, SWAR-fast for plain runs) and base64. No I/O and no state; the
 * queue, the writer and its files are in capture.c. */
#include "smserve/capture_record.h"

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

/* ---- time --------------------------------------------------------------- */

/* 9999-12-31T23:59:59.999Z: times are clamped to years 0000-9999. */
#define MAX_TIME_MS 253402300799999LL

/* By hand rather than gmtime_r, which takes glibc's time zone lock. Days
 * to civil date: H. Hinnant's algorithm. */
void sms_capture_utc(int64_t ms, sms_capture_utc_t *u)
{
    if (ms < 0)
        ms = 0;
    if (ms > MAX_TIME_MS)
        ms = MAX_TIME_MS;
    int64_t secs = ms / 1000;
    u->ms = (int)(ms % 1000);
    int64_t days = secs / 86400, rem = secs % 86400;
    u->hour = (int)(rem / 3600);
    u->min = (int)(rem / 60 % 60);
    u->sec = (int)(rem % 60);
    int64_t z = days + 719468;
    int64_t era = z / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    u->day = (int)(doy - (153 * mp + 2) / 5 + 1);
    u->month = (int)(mp < 10 ? mp + 3 : mp - 9);
    u->year = (int)((int64_t)yoe + era * 400 + (u->month <= 2));
}

int64_t sms_capture_hour(int64_t ms)
{
    if (ms < 0)
        ms = 0;
    if (ms > MAX_TIME_MS)
        ms = MAX_TIME_MS;
    return ms / 3600000;
}

static char *put_digits(char *d, int v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        d[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return d + width;
}

/* "2022-02-14T17:25:49Z": RFC 3339 in UTC with whole seconds, as SageMaker
 * writes inferenceTime. 20 bytes. */
#define TIME_LEN 20
static char *put_time(char *d, int64_t ms)
{
    sms_capture_utc_t u;
    sms_capture_utc(ms, &u);
    d = put_digits(d, u.year, 4);
    *d++ = '-';
    d = put_digits(d, u.month, 2);
    *d++ = '-';
    d = put_digits(d, u.day, 2);
    *d++ = 'T';
    d = put_digits(d, u.hour, 2);
    *d++ = ':';
    d = put_digits(d, u.min, 2);
    *d++ = ':';
    d = put_digits(d, u.sec, 2);
    *d++ = 'Z';
    return d;
}

/* ---- JSON strings and base64 -------------------------------------------- */

static const char HEX[] = "0123456789abcdef";

/* The length of the well-formed UTF-8 sequence at p (p[0] >= 0x80), or 0:
 * no overlong forms, no surrogates, nothing above U+10FFFF (RFC 3629). */
static size_t utf8_seq_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    if (c >= 0xC2 && c <= 0xDF)
        return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] > 0x9F))
            return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] > 0x8F))
            return 0;
        return 4;
    }
    return 0;
}

/* Bytes an ASCII byte takes inside a JSON string: quote, backslash and the
 * five controls with short escapes take 2, other controls \u00XX take 6. */
static const char SHORT_ESCAPE[] = {
    ['"'] = '"',  ['\\'] = '\\', ['\b'] = 'b', ['\f'] = 'f',
    ['\n'] = 'n', ['\r'] = 'r',  ['\t'] = 't',
};

static size_t ascii_escaped_len(unsigned char c)
{
    if (c >= 0x20 && c != '"' && c != '\\')
        return 1;
    return c < sizeof SHORT_ESCAPE && SHORT_ESCAPE[c] ? 2 : 6;
}

/* Whether any of the 8 bytes at p needs more than a plain copy: a control,
 * '"', '\\' or a non-ASCII byte (SWAR: exact as a yes/no answer). */
static bool needs_escape8(const unsigned char *p)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t x;
    memcpy(&x, p, 8);
    uint64_t quote = x ^ (ones * '"'), backslash = x ^ (ones * '\\');
    uint64_t special = ((x - ones * 0x20) & ~x) | ((quote - ones) & ~quote) |
                       ((backslash - ones) & ~backslash) | x;
    return (special & highs) != 0;
}

/* The escaped length of [p, p+n) as a JSON string body. *valid tells
 * whether the bytes are well-formed UTF-8; each ill-formed byte is counted
 * as the 6 bytes of "\ufffd" (see write_escaped). */
static size_t escaped_len(const unsigned char *p, size_t n, bool *valid)
{
    size_t len = 0, i = 0;
    bool ok = true;
    while (i < n) {
        if (i + 8 <= n && !needs_escape8(p + i)) {
            len += 8;
            i += 8;
            continue;
        }
        if (p[i] < 0x80) {
            len += ascii_escaped_len(p[i]);
            i++;
            continue;
        }
        size_t k = utf8_seq_len(p + i, n - i);
        if (k) {
            len += k;
            i += k;
        } else {
            ok = false;
            len += 6;
            i++;
        }
    }
    if (valid)
        *valid = ok;
    return len;
}

/* Writes [p, p+n) as a JSON string body: well-formed UTF-8 as is, an
 * ill-formed byte as U+FFFD (only content types and ids take this path:
 * payloads that are not UTF-8 are written as BASE64 instead). */
static char *write_escaped(char *d, const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (i + 8 <= n && !needs_escape8(p + i)) {
            memcpy(d, p + i, 8);
            d += 8;
            i += 8;
            continue;
        }
        unsigned char c = p[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            *d++ = (char)c;
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t k = utf8_seq_len(p + i, n - i);
            if (k) {
                memcpy(d, p + i, k);
                d += k;
                i += k;
            } else {
                memcpy(d, "\\ufffd", 6);
                d += 6;
                i++;
            }
            continue;
        }
        *d++ = '\\';
        if (c < sizeof SHORT_ESCAPE && SHORT_ESCAPE[c]) {
            *d++ = SHORT_ESCAPE[c];
        } else {
            memcpy(d, "u00", 3);
            d[3] = HEX[c >> 4];
            d[4] = HEX[c & 15];
            d += 5;
        }
        i++;
    }
    return d;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *write_base64(char *d, const unsigned char *p, size_t n)
{
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        d[0] = B64[v >> 18];
        d[1] = B64[(v >> 12) & 63];
        d[2] = B64[(v >> 6) & 63];
        d[3] = B64[v & 63];
        d += 4;
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        d[0] = B64[v >> 18];
        d[1] = B64[(v >> 12) & 63];
        d[2] = i + 1 < n ? B64[(v >> 6) & 63] : '=';
        d[3] = '=';
        d += 4;
    }
    return d;
}

/* ---- records -------------------------------------------------------------- */

static const char *const PART_ENCODING[] = {"CSV", "JSON", "BASE64"};

static bool type_listed(const char *type, size_t len, const char (*list)[64], size_t num)
{
    for (size_t i = 0; i < num; i++)
        if (strlen(list[i]) == len && !strncasecmp(list[i], type, len))
            return true;
    return false;
}

/* CSV or JSON when the media type (before any ';', trimmed) is in the
 * configured list, else BASE64. */
static sms_capture_encoding_t encoding_for(const sms_capture_config_t *cfg, const char *type)
{
    if (!type)
        return SMS_CAPTURE_BASE64;
    const char *a = type, *b = strchr(type, ';');
    if (!b)
        b = type + strlen(type);
    while (a < b && (*a == ' ' || *a == '\t'))
        a++;
    while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
        b--;
    size_t n = (size_t)(b - a);
    if (type_listed(a, n, cfg->csv_types, cfg->num_csv_types))
        return SMS_CAPTURE_CSV;
    if (type_listed(a, n, cfg->json_types, cfg->num_json_types))
        return SMS_CAPTURE_JSON;
    return SMS_CAPTURE_BASE64;
}

#define B64_MAX_IN ((SIZE_MAX / 4 - 4) * 3)

static int plan_part(const sms_capture_config_t *cfg, const char *type, const char *data,
                     size_t len, sms_capture_part_t *p)
{
    p->type = (const unsigned char *)type;
    p->type_len = type ? strlen(type) : 0;
    p->type_esc_len = escaped_len(p->type, p->type_len, NULL);
    p->data = (const unsigned char *)(data ? data : "");
    p->data_len = data ? len : 0;
    p->encoding = encoding_for(cfg, type);
    if (p->encoding != SMS_CAPTURE_BASE64) {
        /* A JSON string must hold UTF-8: a CSV or JSON payload that is not
         * well-formed UTF-8 is captured as BASE64 for this record part, so
         * its bytes survive exactly and the line stays valid JSON. */
        bool valid;
        p->data_out_len = escaped_len(p->data, p->data_len, &valid);
        if (!valid)
            p->encoding = SMS_CAPTURE_BASE64;
    }
    if (p->encoding == SMS_CAPTURE_BASE64) {
        if (p->data_len > B64_MAX_IN)
            return -1;
        p->data_out_len = (p->data_len + 2) / 3 * 4;
    }
    return 0;
}

#define LIT(s) s, sizeof(s) - 1

static size_t part_len(const sms_capture_part_t *p, bool input)
{
    return sizeof("{\"observedContentType\":\"\",\"mode\":\"\",\"data\":\"\",\"encoding\":\"\"}") -
           1 + (input ? 5 : 6) + p->type_esc_len + p->data_out_len +
           strlen(PART_ENCODING[p->encoding]);
}

/* eventMetadata's optional members' names, by SMS_META_* */
static const char *const META_NAME[SMS_META_COUNT] = {
    [SMS_META_INFERENCE_ID] = "inferenceId",
    [SMS_META_CUSTOM_ATTRIBUTES] = "customAttributes",
    [SMS_META_TARGET_MODEL] = "targetModel",
};

static void plan_text(const char *s, sms_capture_text_t *t)
{
    t->s = (const unsigned char *)s;
    t->len = strlen(s);
    t->esc_len = escaped_len(t->s, t->len, NULL);
}

int sms_capture_record_plan(const sms_capture_config_t *cfg, const sms_capture_event_t *ev,
                            const char *event_id, sms_capture_record_t *rec)
{
    memset(rec, 0, sizeof *rec);
    rec->input = cfg->capture_input;
    rec->output = cfg->capture_output;
    rec->time_ms = ev->time_ms;
    plan_text(event_id ? event_id : "", &rec->event_id);
    size_t len = sizeof("{\"captureData\":{},\"eventMetadata\":{\"eventId\":\"\",\"inferenceTime\":"
                        "\"\"},\"eventVersion\":\"0\"}\n") -
                 1 + TIME_LEN + rec->event_id.esc_len;
    const char *meta[SMS_META_COUNT] = {
        [SMS_META_INFERENCE_ID] = ev->inference_id,
        [SMS_META_CUSTOM_ATTRIBUTES] = ev->custom_attributes,
        [SMS_META_TARGET_MODEL] = ev->target_model,
    };
    for (int i = 0; i < SMS_META_COUNT; i++) {
        if (!meta[i] || !*meta[i])
            continue;
        plan_text(meta[i], &rec->meta[i]);
        /* ,"name":"" */
        len += 6 + strlen(META_NAME[i]) + rec->meta[i].esc_len;
    }
    if (rec->input) {
        if (plan_part(cfg, ev->input_type, ev->input, ev->input_len, &rec->in) < 0)
            return -1;
        len += sizeof("\"endpointInput\":") - 1 + part_len(&rec->in, true);
        if (len < rec->in.data_out_len)
            return -1;
    }
    if (rec->output) {
        if (plan_part(cfg, ev->output_type, ev->output, ev->output_len, &rec->out) < 0)
            return -1;
        len +=
            sizeof("\"endpointOutput\":") - 1 + part_len(&rec->out, false) + (rec->input ? 1 : 0);
        if (len < rec->out.data_out_len)
            return -1;
    }
    rec->len = len;
    return 0;
}

static char *put(char *d, const char *s, size_t n)
{
    memcpy(d, s, n);
    return d + n;
}

static char *write_part(char *d, const sms_capture_part_t *p, bool input)
{
    d = put(d, LIT("{\"observedContentType\":\""));
    d = write_escaped(d, p->type, p->type_len);
    d = input ? put(d, LIT("\",\"mode\":\"INPUT\",\"data\":\""))
              : put(d, LIT("\",\"mode\":\"OUTPUT\",\"data\":\""));
    if (p->encoding == SMS_CAPTURE_BASE64)
        d = write_base64(d, p->data, p->data_len);
    else
        d = write_escaped(d, p->data, p->data_len);
    d = put(d, LIT("\",\"encoding\":\""));
    d = put(d, PART_ENCODING[p->encoding], strlen(PART_ENCODING[p->encoding]));
    return put(d, LIT("\"}"));
}

void sms_capture_record_write(char *d, const sms_capture_record_t *rec)
{
    char *start = d;
    d = put(d, LIT("{\"captureData\":{"));
    if (rec->input) {
        d = put(d, LIT("\"endpointInput\":"));
        d = write_part(d, &rec->in, true);
    }
    if (rec->output) {
        if (rec->input)
            *d++ = ',';
        d = put(d, LIT("\"endpointOutput\":"));
        d = write_part(d, &rec->out, false);
    }
    d = put(d, LIT("},\"eventMetadata\":{\"eventId\":\""));
    d = write_escaped(d, rec->event_id.s, rec->event_id.len);
    for (int i = 0; i < SMS_META_COUNT; i++) {
        if (!rec->meta[i].s)
            continue;
        d = put(d, LIT("\",\""));
        d = put(d, META_NAME[i], strlen(META_NAME[i]));
        d = put(d, LIT("\":\""));
        d = write_escaped(d, rec->meta[i].s, rec->meta[i].len);
    }
    d = put(d, LIT("\",\"inferenceTime\":\""));
    d = put_time(d, rec->time_ms);
    d = put(d, LIT("\"},\"eventVersion\":\"0\"}\n"));
    assert((size_t)(d - start) == rec->len);
    (void)start;
}

int sms_capture_record_encode(const sms_capture_config_t *cfg, const sms_capture_event_t *ev,
                              const char *event_id, sms_buf_t *out)
{
    sms_capture_record_t rec;
    if (sms_capture_record_plan(cfg, ev, event_id, &rec) < 0 || sms_buf_reserve(out, rec.len) < 0)
        return -1;
    sms_capture_record_write(out->data + out->len, &rec);
    out->len += rec.len;
    out->data[out->len] = '\0';
    return 0;
}
