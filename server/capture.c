/* Data capture: samples requests, encodes each as the JSON line SageMaker
 * endpoint data capture writes, and appends the lines to hourly files from
 * one writer thread. A request only encodes its record and links it to a
 * queue under a short mutex; every file system call happens on the writer.
 * Also here: the UUIDv4, base64 and JSON string escaping the records need. */
#define _GNU_SOURCE
#include "smserve/capture.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "smserve/env.h"
#include "smserve/log.h"

/* ---- configuration ---------------------------------------------------- */

/* A byte count in [min, max]; unset or empty keeps *out. */
static int env_bytes(const char *name, unsigned long long min, unsigned long long max, size_t *out,
                     sms_error_t *err)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return 0;
    const char *p = v;
    while (*p == ' ' || *p == '\t')
        p++;
    char *end = (char *)p;
    errno = 0;
    unsigned long long n = (*p >= '0' && *p <= '9') ? strtoull(p, &end, 10) : 0;
    while (*end == ' ' || *end == '\t')
        end++;
    if (errno || end == p || *end || n < min || n > max || n > SIZE_MAX)
        return sms_error_set(err, 500,
                             "invalid %s=\"%.64s\": expected a byte count from %llu to %llu", name,
                             v, min, max);
    *out = (size_t)n;
    return 0;
}

/* A name used as one directory of the capture path. */
static bool safe_path_component(const char *s)
{
    if (!*s || !strcmp(s, ".") || !strcmp(s, ".."))
        return false;
    for (; *s; s++)
        if (*s <= ' ' || *s > '~' || *s == '/')
            return false;
    return true;
}

static int env_name(const char *name, const char *def, char *out, size_t size, sms_error_t *err)
{
    const char *v = getenv(name);
    if (!v || !*v)
        v = def;
    if (strlen(v) >= size || !safe_path_component(v))
        return sms_error_set(err, 500,
                             "invalid %s=\"%.64s\": expected 1 to %zu printable ASCII characters "
                             "without '/' or spaces, not \".\" or \"..\"",
                             name, v, size - 1);
    strcpy(out, v);
    return 0;
}

/* RFC 7230 tchar: what a media type's type and subtype are made of. */
static bool is_tchar(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static bool is_media_type(const char *s, size_t n)
{
    size_t slash = 0, i;
    for (i = 0; i < n; i++) {
        if (s[i] == '/') {
            if (slash || i == 0)
                return false;
            slash = i;
        } else if (!is_tchar(s[i])) {
            return false;
        }
    }
    return slash && slash + 1 < n;
}

/* Steps through a comma-separated list: sets [*a, *b) to the next item,
 * blanks trimmed, and returns false once the list is used up. *p starts at
 * the list and is advanced; an empty list still yields one empty item. */
static bool next_item(const char **p, const char **a, const char **b)
{
    if (!*p)
        return false;
    const char *end = strchr(*p, ',');
    if (!end)
        end = *p + strlen(*p);
    *a = *p;
    *b = end;
    while (*a < *b && (**a == ' ' || **a == '\t'))
        (*a)++;
    while (*b > *a && ((*b)[-1] == ' ' || (*b)[-1] == '\t'))
        (*b)--;
    *p = *end ? end + 1 : NULL;
    return true;
}

static int env_types(const char *name, const char *def, char types[][64], size_t *num,
                     sms_error_t *err)
{
    const char *v = getenv(name);
    if (!v || !*v)
        v = def;
    size_t count = 0;
    const char *p = v, *a, *b;
    while (next_item(&p, &a, &b)) {
        if (count == SMS_CAPTURE_MAX_TYPES || (size_t)(b - a) >= 64 ||
            !is_media_type(a, (size_t)(b - a)))
            return sms_error_set(err, 500,
                                 "invalid %s=\"%.64s\": expected 1 to %d comma-separated media "
                                 "types such as text/csv, each under 64 characters",
                                 name, v, SMS_CAPTURE_MAX_TYPES);
        memcpy(types[count], a, (size_t)(b - a));
        types[count][b - a] = '\0';
        count++;
    }
    *num = count;
    return 0;
}

/* Input, Output, Input,Output (either order) or SageMaker's InputAndOutput. */
static int env_options(bool *input, bool *output, sms_error_t *err)
{
    const char *name = "SMSERVE_CAPTURE_OPTIONS";
    const char *v = getenv(name);
    if (!v || !*v) {
        *input = *output = true;
        return 0;
    }
    bool in = false, out = false;
    const char *p = v, *a, *b;
    while (next_item(&p, &a, &b)) {
        size_t n = (size_t)(b - a);
        if (n == 5 && !strncasecmp(a, "Input", 5))
            in = true;
        else if (n == 6 && !strncasecmp(a, "Output", 6))
            out = true;
        else if (n == 14 && !strncasecmp(a, "InputAndOutput", 14))
            in = out = true;
        else
            return sms_error_set(
                err, 500, "invalid %s=\"%.64s\": expected Input, Output or Input,Output", name, v);
    }
    *input = in;
    *output = out;
    return 0;
}

int sms_capture_config_from_env(sms_capture_config_t *cfg, sms_error_t *err)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->sampling_percent = 100;
    cfg->queue_bytes = 64u << 20;
    cfg->max_file_bytes = 64u << 20;
    cfg->max_disk_used_percent = 75;
    if (sms_env_bool("SMSERVE_CAPTURE_ENABLE", &cfg->enabled, err) < 0 ||
        sms_env_double("SMSERVE_CAPTURE_SAMPLING_PERCENTAGE", 0, 100, &cfg->sampling_percent, err) <
            0 ||
        env_options(&cfg->capture_input, &cfg->capture_output, err) < 0 ||
        env_types("SMSERVE_CAPTURE_CSV_CONTENT_TYPES", "text/csv", cfg->csv_types,
                  &cfg->num_csv_types, err) < 0 ||
        env_types("SMSERVE_CAPTURE_JSON_CONTENT_TYPES", "application/json", cfg->json_types,
                  &cfg->num_json_types, err) < 0 ||
        env_name("SMSERVE_ENDPOINT_NAME", "local", cfg->endpoint, sizeof cfg->endpoint, err) < 0 ||
        env_name("SMSERVE_VARIANT_NAME", "AllTraffic", cfg->variant, sizeof cfg->variant, err) <
            0 ||
        env_bytes("SMSERVE_CAPTURE_QUEUE_BYTES", 1, 1ull << 40, &cfg->queue_bytes, err) < 0 ||
        env_bytes("SMSERVE_CAPTURE_MAX_FILE_BYTES", 1, 1ull << 40, &cfg->max_file_bytes, err) < 0 ||
        sms_env_double("SMSERVE_CAPTURE_MAX_DISK_PERCENT", 0, 100, &cfg->max_disk_used_percent,
                       err) < 0)
        return -1;

    const char *dir = getenv("SMSERVE_CAPTURE_DIR");
    if (!dir || !*dir)
        dir = "/opt/ml/capture";
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        len--;
    if (len >= sizeof cfg->dir)
        return sms_error_set(err, 500, "invalid SMSERVE_CAPTURE_DIR: longer than %zu bytes",
                             sizeof cfg->dir - 1);
    memcpy(cfg->dir, dir, len);
    cfg->dir[len] = '\0';
    return 0;
}

/* ---- randomness: UUIDs and sampling ------------------------------------ */

/* Each thread draws UUID bytes from its own pool, refilled by getrandom, so
 * a record costs a getrandom call only once per 32 UUIDs. The sampling PRNG
 * (splitmix64) is per thread too, seeded from getrandom on first use. */
static __thread unsigned char rnd_pool[512];
static __thread size_t rnd_pos = sizeof rnd_pool;
static __thread uint64_t sample_state;
static __thread bool sample_seeded;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static _Atomic uint64_t fallback_counter;

/* A forked child has only the forking thread: forget its pool and seed so
 * parent and child never share UUIDs. */
static void forget_thread_random(void)
{
    rnd_pos = sizeof rnd_pool;
    sample_seeded = false;
}

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, forget_thread_random);
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void fill_random(void *out, size_t n)
{
    unsigned char *p = out;
    while (n) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        p += r;
        n -= (size_t)r;
    }
    /* getrandom unavailable (old kernel, seccomp): clock and counter through
     * splitmix64 are unique enough for ids, though not secret. */
    if (n) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t s = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
        s ^= atomic_fetch_add(&fallback_counter, 1) << 40 ^ (uint64_t)(uintptr_t)out;
        while (n) {
            uint64_t x = splitmix64(&s);
            size_t k = n < 8 ? n : 8;
            memcpy(p, &x, k);
            p += k;
            n -= k;
        }
    }
}

static const char HEX[] = "0123456789abcdef";

void sms_uuid4(char out[37])
{
    pthread_once(&atfork_once, register_atfork);
    if (rnd_pos + 16 > sizeof rnd_pool) {
        fill_random(rnd_pool, sizeof rnd_pool);
        rnd_pos = 0;
    }
    unsigned char b[16];
    memcpy(b, rnd_pool + rnd_pos, 16);
    rnd_pos += 16;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant 10xx */
    char *d = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *d++ = '-';
        *d++ = HEX[b[i] >> 4];
        *d++ = HEX[b[i] & 15];
    }
    *d = '\0';
}

void sms_capture_seed_thread(uint64_t seed)
{
    pthread_once(&atfork_once, register_atfork);
    sample_state = seed;
    sample_seeded = true;
}

static uint64_t sample_next(void)
{
    if (!sample_seeded) {
        pthread_once(&atfork_once, register_atfork);
        fill_random(&sample_state, sizeof sample_state);
        sample_seeded = true;
    }
    return splitmix64(&sample_state);
}

/* ---- time --------------------------------------------------------------- */

/* 9999-12-31T23:59:59.999Z: times are clamped to years 0000-9999. */
#define MAX_TIME_MS 253402300799999LL

typedef struct utc {
    int year, month, day, hour, min, sec, ms;
} utc_t;

/* By hand rather than gmtime_r, which takes glibc's time zone lock. Days
 * to civil date: H. Hinnant's algorithm. */
static void utc_from_ms(int64_t ms, utc_t *u)
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

static int64_t hour_of(int64_t ms)
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
    utc_t u;
    utc_from_ms(ms, &u);
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

typedef enum { PART_CSV, PART_JSON, PART_BASE64 } part_encoding_t;
static const char *const PART_ENCODING[] = {"CSV", "JSON", "BASE64"};

typedef struct part {
    const unsigned char *type; /* NULL: no Content-Type was sent */
    size_t type_len, type_esc_len;
    const unsigned char *data;
    size_t data_len, data_out_len; /* data_out_len: escaped or base64 length */
    part_encoding_t encoding;
} part_t;

typedef struct plan {
    bool input, output;
    part_t in, out;
    const unsigned char *event_id, *inference_id;
    size_t event_id_len, event_id_esc_len, inference_id_len, inference_id_esc_len;
    int64_t time_ms;
    size_t len; /* of the whole line, newline included */
} plan_t;

static bool type_listed(const char *type, size_t len, const char (*list)[64], size_t num)
{
    for (size_t i = 0; i < num; i++)
        if (strlen(list[i]) == len && !strncasecmp(list[i], type, len))
            return true;
    return false;
}

/* CSV or JSON when the media type (before any ';', trimmed) is in the
 * configured list, else BASE64. */
static part_encoding_t encoding_for(const sms_capture_config_t *cfg, const char *type)
{
    if (!type)
        return PART_BASE64;
    const char *a = type, *b = strchr(type, ';');
    if (!b)
        b = type + strlen(type);
    while (a < b && (*a == ' ' || *a == '\t'))
        a++;
    while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
        b--;
    size_t n = (size_t)(b - a);
    if (type_listed(a, n, cfg->csv_types, cfg->num_csv_types))
        return PART_CSV;
    if (type_listed(a, n, cfg->json_types, cfg->num_json_types))
        return PART_JSON;
    return PART_BASE64;
}

#define B64_MAX_IN ((SIZE_MAX / 4 - 4) * 3)

static int plan_part(const sms_capture_config_t *cfg, const char *type, const char *data,
                     size_t len, part_t *p)
{
    p->type = (const unsigned char *)type;
    p->type_len = type ? strlen(type) : 0;
    p->type_esc_len = escaped_len(p->type, p->type_len, NULL);
    p->data = (const unsigned char *)(data ? data : "");
    p->data_len = data ? len : 0;
    p->encoding = encoding_for(cfg, type);
    if (p->encoding != PART_BASE64) {
        /* A JSON string must hold UTF-8: a CSV or JSON payload that is not
         * well-formed UTF-8 is captured as BASE64 for this record part, so
         * its bytes survive exactly and the line stays valid JSON. */
        bool valid;
        p->data_out_len = escaped_len(p->data, p->data_len, &valid);
        if (!valid)
            p->encoding = PART_BASE64;
    }
    if (p->encoding == PART_BASE64) {
        if (p->data_len > B64_MAX_IN)
            return -1;
        p->data_out_len = (p->data_len + 2) / 3 * 4;
    }
    return 0;
}

#define LIT(s) s, sizeof(s) - 1

static size_t part_len(const part_t *p, bool input)
{
    return sizeof("{\"observedContentType\":\"\",\"mode\":\"\",\"data\":\"\",\"encoding\":\"\"}") -
           1 + (input ? 5 : 6) + p->type_esc_len + p->data_out_len +
           strlen(PART_ENCODING[p->encoding]);
}

static int plan_record(const sms_capture_config_t *cfg, const sms_capture_event_t *ev,
                       const char *event_id, plan_t *pl)
{
    memset(pl, 0, sizeof *pl);
    pl->input = cfg->capture_input;
    pl->output = cfg->capture_output;
    pl->time_ms = ev->time_ms;
    pl->event_id = (const unsigned char *)(event_id ? event_id : "");
    pl->event_id_len = strlen((const char *)pl->event_id);
    pl->event_id_esc_len = escaped_len(pl->event_id, pl->event_id_len, NULL);
    if (ev->inference_id && *ev->inference_id) {
        pl->inference_id = (const unsigned char *)ev->inference_id;
        pl->inference_id_len = strlen(ev->inference_id);
        pl->inference_id_esc_len = escaped_len(pl->inference_id, pl->inference_id_len, NULL);
    }
    size_t len = sizeof("{\"captureData\":{},\"eventMetadata\":{\"eventId\":\"\",\"inferenceTime\":"
                        "\"\"},\"eventVersion\":\"0\"}\n") -
                 1 + TIME_LEN + pl->event_id_esc_len;
    if (pl->inference_id)
        len += sizeof("\"inferenceId\":\"\",") - 1 + pl->inference_id_esc_len;
    if (pl->input) {
        if (plan_part(cfg, ev->input_type, ev->input, ev->input_len, &pl->in) < 0)
            return -1;
        len += sizeof("\"endpointInput\":") - 1 + part_len(&pl->in, true);
        if (len < pl->in.data_out_len)
            return -1;
    }
    if (pl->output) {
        if (plan_part(cfg, ev->output_type, ev->output, ev->output_len, &pl->out) < 0)
            return -1;
        len += sizeof("\"endpointOutput\":") - 1 + part_len(&pl->out, false) + (pl->input ? 1 : 0);
        if (len < pl->out.data_out_len)
            return -1;
    }
    pl->len = len;
    return 0;
}

static char *put(char *d, const char *s, size_t n)
{
    memcpy(d, s, n);
    return d + n;
}

static char *write_part(char *d, const part_t *p, bool input)
{
    d = put(d, LIT("{\"observedContentType\":\""));
    d = write_escaped(d, p->type, p->type_len);
    d = input ? put(d, LIT("\",\"mode\":\"INPUT\",\"data\":\""))
              : put(d, LIT("\",\"mode\":\"OUTPUT\",\"data\":\""));
    if (p->encoding == PART_BASE64)
        d = write_base64(d, p->data, p->data_len);
    else
        d = write_escaped(d, p->data, p->data_len);
    d = put(d, LIT("\",\"encoding\":\""));
    d = put(d, PART_ENCODING[p->encoding], strlen(PART_ENCODING[p->encoding]));
    return put(d, LIT("\"}"));
}

/* Writes the planned line, exactly pl->len bytes, at d. */
static void write_record(char *d, const plan_t *pl)
{
    char *start = d;
    d = put(d, LIT("{\"captureData\":{"));
    if (pl->input) {
        d = put(d, LIT("\"endpointInput\":"));
        d = write_part(d, &pl->in, true);
    }
    if (pl->output) {
        if (pl->input)
            *d++ = ',';
        d = put(d, LIT("\"endpointOutput\":"));
        d = write_part(d, &pl->out, false);
    }
    d = put(d, LIT("},\"eventMetadata\":{\"eventId\":\""));
    d = write_escaped(d, pl->event_id, pl->event_id_len);
    if (pl->inference_id) {
        d = put(d, LIT("\",\"inferenceId\":\""));
        d = write_escaped(d, pl->inference_id, pl->inference_id_len);
    }
    d = put(d, LIT("\",\"inferenceTime\":\""));
    d = put_time(d, pl->time_ms);
    d = put(d, LIT("\"},\"eventVersion\":\"0\"}\n"));
    assert((size_t)(d - start) == pl->len);
    (void)start;
}

int sms_capture_encode(const sms_capture_config_t *cfg, const sms_capture_event_t *ev,
                       const char *event_id, sms_buf_t *out)
{
    plan_t pl;
    if (plan_record(cfg, ev, event_id, &pl) < 0 || sms_buf_reserve(out, pl.len) < 0)
        return -1;
    write_record(out->data + out->len, &pl);
    out->len += pl.len;
    out->data[out->len] = '\0';
    return 0;
}

int sms_capture_file_path(const sms_capture_config_t *cfg, int64_t time_ms, const char *uuid,
                          char *out, size_t size)
{
    utc_t u;
    utc_from_ms(time_ms, &u);
    int n = snprintf(out, size, "%s/%s/%04d/%02d/%02d/%02d/%02d-%02d-%03d-%s.jsonl", cfg->endpoint,
                     cfg->variant, u.year, u.month, u.day, u.hour, u.min, u.sec, u.ms, uuid);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* ---- the queue and the writer --------------------------------------------- */

/* A queued record: the line follows the header in the same allocation. */
typedef struct record {
    struct record *next;
    int64_t time_ms;
    size_t len;
    int size_class; /* POOL_CLASSES: not pooled */
    char line[];
} record_t;

/* Written records are recycled rather than freed: a malloc on a request
 * thread paired with a free on the writer thread contends on the
 * allocator's arena lock and faults fresh pages. Records up to 64 KiB come
 * in power-of-two size classes from 512 bytes; the writer hands a written
 * batch back per class under the queue mutex (a few pointer moves), and a
 * request takes one in the critical section where it reserves its budget.
 * The pool never holds more than the records once in flight (a queue_bytes
 * bound), and at most twice POOL_CLASS_BYTES per class. */
#define POOL_CLASSES     8
#define POOL_MIN_SHIFT   9
#define POOL_CLASS_BYTES (4u << 20)

typedef struct record_list {
    record_t *head, *tail;
    size_t count;
} record_list_t;

static int size_class_of(size_t bytes)
{
    for (int k = 0; k < POOL_CLASSES; k++)
        if (bytes <= (size_t)1 << (POOL_MIN_SHIFT + k))
            return k;
    return POOL_CLASSES;
}

static void list_push(record_list_t *l, record_t *r)
{
    r->next = l->head;
    l->head = r;
    if (!l->tail)
        l->tail = r;
    l->count++;
}

static void list_free(record_list_t *l)
{
    for (record_t *r = l->head, *next; r; r = next) {
        next = r->next;
        free(r);
    }
    *l = (record_list_t){0};
}

enum { SAMPLE_NEVER, SAMPLE_SOME, SAMPLE_ALWAYS };

#define PATH_BYTES 2048

struct sms_capture {
    sms_capture_config_t cfg;
    int sample_mode;
    uint64_t sample_threshold; /* SAMPLE_SOME: captured when a 53-bit draw is below it */

    pthread_mutex_t mu;  /* guards head, tail, writer_waiting, stopping, linked, done */
    pthread_cond_t wake; /* the writer waits for records */
    pthread_cond_t idle; /* sms_capture_flush waits for the writer */
    record_t *head, *tail;
    bool writer_waiting, stopping;
    uint64_t linked, done;            /* records queued, and handled by the writer, so far */
    record_list_t pool[POOL_CLASSES]; /* under mu */
    _Atomic size_t queued_bytes;      /* added under mu, subtracted by the writer */
    atomic_bool paused;

    _Atomic uint64_t sampled, written, dropped, paused_drops, bytes_written, files;

    pthread_t thread;
    /* The writer thread's own. */
    int fd;
    int64_t file_hour;
    size_t file_bytes; /* bytes written to the current file */
    char path[PATH_BYTES];
    bool io_error_logged;
    struct timespec disk_checked;
    record_list_t spare[POOL_CLASSES]; /* written records, for the pool */
};

bool sms_capture_sample(sms_capture_t *c)
{
    if (!c || c->sample_mode == SAMPLE_NEVER)
        return false;
    if (c->sample_mode == SAMPLE_SOME && (sample_next() >> 11) >= c->sample_threshold)
        return false;
    atomic_fetch_add_explicit(&c->sampled, 1, memory_order_relaxed);
    return true;
}

static void count_drop(sms_capture_t *c, bool paused)
{
    atomic_fetch_add_explicit(&c->dropped, 1, memory_order_relaxed);
    if (paused)
        atomic_fetch_add_explicit(&c->paused_drops, 1, memory_order_relaxed);
}

int sms_capture_submit(sms_capture_t *c, const sms_capture_event_t *ev)
{
    if (!c)
        return -1;
    if (atomic_load_explicit(&c->paused, memory_order_relaxed)) {
        count_drop(c, true);
        return -1;
    }
    /* Cheap early refusal before encoding anything; the exact budget check
     * is under the mutex below. */
    if (atomic_load_explicit(&c->queued_bytes, memory_order_relaxed) >= c->cfg.queue_bytes)
        goto drop;
    char event_id[37];
    sms_uuid4(event_id);
    plan_t pl;
    if (plan_record(&c->cfg, ev, event_id, &pl) < 0 || pl.len > c->cfg.queue_bytes ||
        pl.len > SIZE_MAX - sizeof(record_t))
        goto drop;
    int size_class = size_class_of(sizeof(record_t) + pl.len);

    /* Reserve the budget and take a pooled record in one short section,
     * encode outside it, link in a second one. */
    pthread_mutex_lock(&c->mu);
    size_t queued = atomic_load_explicit(&c->queued_bytes, memory_order_relaxed);
    if (c->stopping || queued + pl.len > c->cfg.queue_bytes) {
        pthread_mutex_unlock(&c->mu);
        goto drop;
    }
    atomic_fetch_add_explicit(&c->queued_bytes, pl.len, memory_order_relaxed);
    record_t *r = NULL;
    if (size_class < POOL_CLASSES && c->pool[size_class].head) {
        record_list_t *l = &c->pool[size_class];
        r = l->head;
        l->head = r->next;
        if (!l->head)
            l->tail = NULL;
        l->count--;
    }
    pthread_mutex_unlock(&c->mu);
    if (!r) {
        r = malloc(size_class < POOL_CLASSES ? (size_t)1 << (POOL_MIN_SHIFT + size_class)
                                             : sizeof *r + pl.len);
        if (!r) {
            atomic_fetch_sub_explicit(&c->queued_bytes, pl.len, memory_order_relaxed);
            goto drop;
        }
        r->size_class = size_class;
    }
    write_record(r->line, &pl);
    r->next = NULL;
    r->time_ms = ev->time_ms;
    r->len = pl.len;

    pthread_mutex_lock(&c->mu);
    if (c->tail)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    c->linked++;
    bool wake = c->writer_waiting;
    c->writer_waiting = false;
    pthread_mutex_unlock(&c->mu);
    if (wake)
        pthread_cond_signal(&c->wake);
    return 0;
drop:
    count_drop(c, false);
    return -1;
}

/* mkdir -p of the directory part of path (up to the last '/'), 0755. */
static int make_parents(const char *path)
{
    char buf[PATH_BYTES];
    size_t n = strlen(path);
    if (n >= sizeof buf)
        return -1;
    memcpy(buf, path, n + 1);
    char *last = strrchr(buf, '/');
    if (!last || last == buf)
        return 0;
    *last = '\0';
    if (mkdir(buf, 0755) == 0 || errno == EEXIST)
        return 0;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

static void close_file(sms_capture_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static void io_error(sms_capture_t *c, const char *what, int errnum)
{
    if (!c->io_error_logged)
        sms_log("capture: cannot %s %s: %s (records are dropped until it works)", what, c->path,
                strerror(errnum));
    c->io_error_logged = true;
}

/* Closes the current file and opens a new one named after the time of its
 * first record, r. On failure c->fd stays -1. */
static void open_file(sms_capture_t *c, const record_t *r)
{
    close_file(c);
    char uuid[37], rel[1024];
    sms_uuid4(uuid);
    if (sms_capture_file_path(&c->cfg, r->time_ms, uuid, rel, sizeof rel) < 0 ||
        snprintf(c->path, sizeof c->path, "%s/%s", c->cfg.dir, rel) >= (int)sizeof c->path) {
        io_error(c, "name a file under", ENAMETOOLONG);
        return;
    }
    if (make_parents(c->path) < 0) {
        io_error(c, "create the directory of", errno);
        return;
    }
    c->fd = open(c->path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (c->fd < 0) {
        io_error(c, "create", errno);
        return;
    }
    c->file_hour = hour_of(r->time_ms);
    c->file_bytes = 0;
    atomic_fetch_add_explicit(&c->files, 1, memory_order_relaxed);
}

/* Keeps a handled record for the pool (see return_spares). */
static void retire(sms_capture_t *c, record_t *r)
{
    if (r->size_class < POOL_CLASSES)
        list_push(&c->spare[r->size_class], r);
    else
        free(r);
}

/* Frees spare records beyond POOL_CLASS_BYTES per class (before taking
 * the mutex: frees are not for the critical section). */
static void trim_spares(sms_capture_t *c)
{
    for (int k = 0; k < POOL_CLASSES; k++) {
        record_list_t *s = &c->spare[k];
        size_t keep = POOL_CLASS_BYTES >> (POOL_MIN_SHIFT + k);
        if (s->count <= keep)
            continue;
        record_t *r = s->head;
        for (size_t i = 1; i < keep; i++)
            r = r->next;
        record_list_t extra = {r->next, s->tail, s->count - keep};
        r->next = NULL;
        s->tail = r;
        s->count = keep;
        list_free(&extra);
    }
}

/* With c->mu held: moves the writer's spare records to the pool, class by
 * class, while the class holds under POOL_CLASS_BYTES (so at most twice
 * that); the rest stay in c->spare for free_spares after the mutex is
 * released. */
static void return_spares(sms_capture_t *c)
{
    for (int k = 0; k < POOL_CLASSES; k++) {
        record_list_t *s = &c->spare[k], *p = &c->pool[k];
        if (!s->head || p->count << (POOL_MIN_SHIFT + k) >= POOL_CLASS_BYTES)
            continue;
        s->tail->next = p->head;
        p->head = s->head;
        if (!p->tail)
            p->tail = s->tail;
        p->count += s->count;
        *s = (record_list_t){0};
    }
}

static void free_spares(sms_capture_t *c)
{
    for (int k = 0; k < POOL_CLASSES; k++)
        list_free(&c->spare[k]);
}

#define MAX_IOV 256

/* Writes the n pending whole lines to the current file with writev, looping
 * on partial writes. On an error the file is cut back to its last whole
 * line, so a reader never sees a torn line, and closed; the lines not
 * written are counted as dropped. Frees the records either way. */
static void flush_lines(sms_capture_t *c, record_t **pending, size_t *num)
{
    size_t n = *num, total = 0;
    if (!n)
        return;
    struct iovec iov[MAX_IOV];
    for (size_t i = 0; i < n; i++) {
        iov[i].iov_base = pending[i]->line;
        iov[i].iov_len = pending[i]->len;
        total += pending[i]->len;
    }
    size_t done = 0, first = 0;
    int errnum = 0;
    while (first < n) {
        ssize_t w = writev(c->fd, iov + first, (int)(n - first));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            errnum = w < 0 ? errno : EIO;
            break;
        }
        done += (size_t)w;
        size_t left = (size_t)w;
        while (first < n && left >= iov[first].iov_len)
            left -= iov[first++].iov_len;
        if (left) {
            iov[first].iov_base = (char *)iov[first].iov_base + left;
            iov[first].iov_len -= left;
        }
    }
    size_t lines = 0, whole = 0;
    while (lines < n && whole + pending[lines]->len <= done)
        whole += pending[lines++]->len;
    if (errnum) {
        if (done > whole && ftruncate(c->fd, (off_t)(c->file_bytes + whole)) < 0)
            errnum = errno;
        io_error(c, "write", errnum);
        close_file(c);
    } else {
        c->io_error_logged = false;
    }
    c->file_bytes += whole;
    atomic_fetch_add_explicit(&c->written, lines, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->bytes_written, whole, memory_order_relaxed);
    if (n > lines)
        atomic_fetch_add_explicit(&c->dropped, n - lines, memory_order_relaxed);
    for (size_t i = 0; i < n; i++)
        retire(c, pending[i]);
    atomic_fetch_sub_explicit(&c->queued_bytes, total, memory_order_relaxed);
    *num = 0;
}

/* Appends a batch (oldest first) to the files: each record goes to a file
 * of its own hour; a file is closed when the next line would take it past
 * max_file_bytes (a single longer line gets a file to itself). Returns the
 * number of records handled. */
static uint64_t write_batch(sms_capture_t *c, record_t *r)
{
    uint64_t count = 0;
    record_t *pending[MAX_IOV];
    size_t num = 0, planned = c->fd >= 0 ? c->file_bytes : 0; /* plus the pending lines */
    while (r) {
        record_t *next = r->next;
        if (c->fd < 0 || hour_of(r->time_ms) != c->file_hour ||
            (planned > 0 && planned + r->len > c->cfg.max_file_bytes)) {
            flush_lines(c, pending, &num);
            open_file(c, r);
            planned = 0;
        }
        if (c->fd < 0) {
            atomic_fetch_add_explicit(&c->dropped, 1, memory_order_relaxed);
            atomic_fetch_sub_explicit(&c->queued_bytes, r->len, memory_order_relaxed);
            retire(c, r);
        } else {
            pending[num++] = r;
            planned += r->len;
            if (num == MAX_IOV)
                flush_lines(c, pending, &num);
            if (c->fd < 0)
                planned = 0;
        }
        r = next;
        count++;
    }
    flush_lines(c, pending, &num);
    return count;
}

/* The share of the file system in use, as df computes it. */
static int disk_used_percent(const char *dir, double *out)
{
    struct statvfs st;
    if (statvfs(dir, &st) < 0)
        return -1;
    double used = (double)(st.f_blocks - st.f_bfree), avail = (double)st.f_bavail;
    *out = used + avail > 0 ? used * 100 / (used + avail) : 0;
    return 0;
}

/* Pauses capture above the limit and resumes below it; logs each change
 * once. A failed statvfs keeps the current state. */
static void check_disk(sms_capture_t *c)
{
    clock_gettime(CLOCK_MONOTONIC, &c->disk_checked);
    double used;
    if (disk_used_percent(c->cfg.dir, &used) < 0)
        return;
    double limit = c->cfg.max_disk_used_percent;
    bool paused = atomic_load(&c->paused);
    if (!paused && used > limit) {
        atomic_store(&c->paused, true);
        sms_log("capture paused: %s is %.0f%% full (limit %g%%)", c->cfg.dir, ceil(used), limit);
    } else if (paused && used < limit) {
        atomic_store(&c->paused, false);
        sms_log("capture resumed: %s is %.0f%% full (limit %g%%)", c->cfg.dir, ceil(used), limit);
    }
}

static bool disk_check_due(const sms_capture_t *c)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec - c->disk_checked.tv_sec > 1 ||
           (now.tv_sec - c->disk_checked.tv_sec == 1 && now.tv_nsec >= c->disk_checked.tv_nsec);
}

static void *writer_main(void *arg)
{
    sms_capture_t *c = arg;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        if (!c->head && !c->stopping) {
            /* Wake at least once a second for the disk check. */
            struct timespec deadline = c->disk_checked;
            deadline.tv_sec += 1;
            c->writer_waiting = true;
            pthread_cond_timedwait(&c->wake, &c->mu, &deadline);
            c->writer_waiting = false;
            if (c->head && !c->stopping) {
                /* Woken by a first record: let a batch gather for 1 ms, so
                 * that under load requests seldom pay for a wake-up (they
                 * signal only a waiting writer) and one writev takes many
                 * lines. */
                pthread_mutex_unlock(&c->mu);
                nanosleep(&(struct timespec){0, 1000000}, NULL);
                pthread_mutex_lock(&c->mu);
            }
        }
        record_t *batch = c->head;
        c->head = c->tail = NULL;
        bool stopping = c->stopping;
        pthread_mutex_unlock(&c->mu);

        if (disk_check_due(c))
            check_disk(c);
        if (batch) {
            uint64_t n = write_batch(c, batch);
            trim_spares(c);
            pthread_mutex_lock(&c->mu);
            c->done += n;
            return_spares(c);
            pthread_mutex_unlock(&c->mu);
            pthread_cond_broadcast(&c->idle);
            free_spares(c);
        } else if (stopping) {
            break;
        }
    }
    close_file(c);
    return NULL;
}

sms_capture_t *sms_capture_start(const sms_capture_config_t *cfg, sms_error_t *err)
{
    if (!safe_path_component(cfg->endpoint) || !safe_path_component(cfg->variant)) {
        sms_error_set(err, 500, "capture: endpoint and variant names must be safe path parts");
        return NULL;
    }
    sms_capture_t *c = calloc(1, sizeof *c);
    if (!c) {
        sms_error_set(err, 500, "capture: out of memory");
        return NULL;
    }
    c->cfg = *cfg;
    c->fd = -1;
    double p = cfg->sampling_percent;
    c->sample_mode = p >= 100 ? SAMPLE_ALWAYS : p > 0 ? SAMPLE_SOME : SAMPLE_NEVER;
    c->sample_threshold = (uint64_t)ldexp(p / 100, 53);

    /* Created now so that an unusable destination fails at start-up. */
    if (snprintf(c->path, sizeof c->path, "%s/%s/%s/x", cfg->dir, cfg->endpoint, cfg->variant) >=
        (int)sizeof c->path) {
        sms_error_set(err, 500, "capture: SMSERVE_CAPTURE_DIR is too long");
        goto fail;
    }
    if (make_parents(c->path) < 0) {
        sms_error_set(err, 500, "capture: cannot create %s/%s/%s: %s", cfg->dir, cfg->endpoint,
                      cfg->variant, strerror(errno));
        goto fail;
    }
    c->path[strlen(c->path) - 2] = '\0';
    if (access(c->path, W_OK | X_OK) < 0) {
        sms_error_set(err, 500, "capture: cannot write to %s: %s", c->path, strerror(errno));
        goto fail;
    }
    check_disk(c);

    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->wake, &attr);
    pthread_condattr_destroy(&attr);
    pthread_cond_init(&c->idle, NULL);
    pthread_mutex_init(&c->mu, NULL);

    /* The writer blocks every signal so SIGTERM reaches the server's own
     * handling, not this thread. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&c->thread, NULL, writer_main, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        sms_error_set(err, 500, "capture: cannot start the writer thread: %s", strerror(rc));
        pthread_cond_destroy(&c->wake);
        pthread_cond_destroy(&c->idle);
        pthread_mutex_destroy(&c->mu);
        goto fail;
    }
    return c;
fail:
    free(c);
    return NULL;
}

void sms_capture_stop(sms_capture_t *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    pthread_mutex_unlock(&c->mu);
    pthread_cond_signal(&c->wake);
    pthread_join(c->thread, NULL);
    for (int k = 0; k < POOL_CLASSES; k++)
        list_free(&c->pool[k]);
    pthread_cond_destroy(&c->wake);
    pthread_cond_destroy(&c->idle);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void sms_capture_flush(sms_capture_t *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    uint64_t target = c->linked;
    bool wake = c->writer_waiting;
    c->writer_waiting = false;
    if (wake)
        pthread_cond_signal(&c->wake);
    while (c->done < target)
        pthread_cond_wait(&c->idle, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

void sms_capture_stats(sms_capture_t *c, sms_capture_stats_t *out)
{
    memset(out, 0, sizeof *out);
    if (!c)
        return;
    out->sampled = atomic_load_explicit(&c->sampled, memory_order_relaxed);
    out->written = atomic_load_explicit(&c->written, memory_order_relaxed);
    out->dropped = atomic_load_explicit(&c->dropped, memory_order_relaxed);
    out->paused_drops = atomic_load_explicit(&c->paused_drops, memory_order_relaxed);
    out->bytes_written = atomic_load_explicit(&c->bytes_written, memory_order_relaxed);
    out->files = atomic_load_explicit(&c->files, memory_order_relaxed);
    out->paused = atomic_load_explicit(&c->paused, memory_order_relaxed);
}
