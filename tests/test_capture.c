/* Data capture: the record shape and its escaping for any payload bytes
 * (and its plan-then-write steps, and the UTC time it and the files use),
 * the file layout, UUIDs, sampling statistics, the writer (every record
 * written once and whole, drops under a tiny budget without blocking, size
 * and hour rotation, the disk guard) and the configuration. Records are
 * parsed back with jansson. */
#define _GNU_SOURCE
#include "testutil.h"

#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "smserve/capture.h"
#include "smserve/capture_record.h"

static const char *const VARS[] = {
    "SMSERVE_CAPTURE_ENABLE",
    "SMSERVE_CAPTURE_SAMPLING_PERCENTAGE",
    "SMSERVE_CAPTURE_OPTIONS",
    "SMSERVE_CAPTURE_CSV_CONTENT_TYPES",
    "SMSERVE_CAPTURE_JSON_CONTENT_TYPES",
    "SMSERVE_CAPTURE_DIR",
    "SMSERVE_ENDPOINT_NAME",
    "SMSERVE_VARIANT_NAME",
    "SMSERVE_CAPTURE_QUEUE_BYTES",
    "SMSERVE_CAPTURE_MAX_FILE_BYTES",
    "SMSERVE_CAPTURE_MAX_DISK_PERCENT",
    NULL,
};

static void clear_env(void)
{
    for (size_t i = 0; VARS[i]; i++)
        unsetenv(VARS[i]);
}

/* The default configuration writing under dir (may be NULL). */
static sms_capture_config_t default_config(const char *dir)
{
    clear_env();
    sms_capture_config_t cfg;
    sms_error_t err = {0};
    assert_int_equal(sms_capture_config_from_env(&cfg, &err), 0);
    cfg.enabled = true;
    cfg.max_disk_used_percent = 100; /* tests must not depend on the host's disk */
    if (dir)
        snprintf(cfg.dir, sizeof cfg.dir, "%s", dir);
    return cfg;
}

/* 2022-02-14T17:25:49.123Z plus offset_ms. */
static int64_t fixed_time_ms(int64_t offset_ms)
{
    struct tm tm = {
        .tm_year = 122, .tm_mon = 1, .tm_mday = 14, .tm_hour = 17, .tm_min = 25, .tm_sec = 49};
    return (int64_t)timegm(&tm) * 1000 + 123 + offset_ms;
}

/* ---- helpers: base64, records, files ------------------------------------ */

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Strict decoder (padding required); malloc'd bytes, or NULL if malformed. */
static unsigned char *b64_decode(const char *s, size_t n, size_t *out_len)
{
    if (n % 4)
        return NULL;
    unsigned char *out = malloc(n / 4 * 3 + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int j = 0; j < 4; j++) {
            v[j] = b64_value(s[i + j]);
            bool pad_ok = i + 4 == n && s[i + j] == '=' && j >= 2 && (j == 3 || s[i + 3] == '=');
            if (v[j] < 0 && !pad_ok) {
                free(out);
                return NULL;
            }
        }
        out[k++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
        if (v[2] >= 0)
            out[k++] = (unsigned char)((v[1] & 15) << 4 | v[2] >> 2);
        if (v[3] >= 0)
            out[k++] = (unsigned char)((v[2] & 3) << 6 | v[3]);
    }
    *out_len = k;
    return out;
}

/* Asserts obj's keys are exactly `keys` (NULL-terminated), in that order. */
static void assert_keys(json_t *obj, const char *const *keys)
{
    assert_true(json_is_object(obj));
    size_t n = 0;
    void *it = json_object_iter(obj);
    for (; it; it = json_object_iter_next(obj, it), n++) {
        assert_non_null(keys[n]);
        assert_string_equal(json_object_iter_key(it), keys[n]);
    }
    assert_null(keys[n]);
}

/* Parses one line (with its newline, and no other) as exactly one JSON
 * object of the SageMaker record shape; returns it (caller decrefs). */
static json_t *parse_record(const char *line, size_t len, bool input, bool output,
                            bool inference_id)
{
    assert_true(len > 0 && line[len - 1] == '\n');
    assert_null(memchr(line, '\n', len - 1));
    json_error_t jerr;
    json_t *rec = json_loadb(line, len - 1, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!rec)
        fail_msg("not JSON (%s): %.*s", jerr.text, (int)len, line);
    static const char *const top[] = {"captureData", "eventMetadata", "eventVersion", NULL};
    assert_keys(rec, top);
    const char *cd[3] = {NULL};
    size_t k = 0;
    if (input)
        cd[k++] = "endpointInput";
    if (output)
        cd[k++] = "endpointOutput";
    assert_keys(json_object_get(rec, "captureData"), cd);
    static const char *const part[] = {"observedContentType", "mode", "data", "encoding", NULL};
    if (input) {
        json_t *p = json_object_get(json_object_get(rec, "captureData"), "endpointInput");
        assert_keys(p, part);
        assert_string_equal(json_string_value(json_object_get(p, "mode")), "INPUT");
    }
    if (output) {
        json_t *p = json_object_get(json_object_get(rec, "captureData"), "endpointOutput");
        assert_keys(p, part);
        assert_string_equal(json_string_value(json_object_get(p, "mode")), "OUTPUT");
    }
    static const char *const meta_id[] = {"eventId", "inferenceId", "inferenceTime", NULL};
    static const char *const meta[] = {"eventId", "inferenceTime", NULL};
    assert_keys(json_object_get(rec, "eventMetadata"), inference_id ? meta_id : meta);
    assert_string_equal(json_string_value(json_object_get(rec, "eventVersion")), "0");
    return rec;
}

/* Asserts that part `name` of rec holds payload [data, data+len) with the
 * given content type and encoding. */
static void assert_part(json_t *rec, const char *name, const char *type, const void *data,
                        size_t len, const char *encoding)
{
    json_t *p = json_object_get(json_object_get(rec, "captureData"), name);
    assert_non_null(p);
    assert_string_equal(json_string_value(json_object_get(p, "observedContentType")), type);
    const char *enc = json_string_value(json_object_get(p, "encoding"));
    assert_non_null(enc);
    if (strcmp(enc, encoding))
        fail_msg("%s encoding %s, expected %s", name, enc, encoding);
    json_t *d = json_object_get(p, "data");
    assert_true(json_is_string(d));
    if (!strcmp(encoding, "BASE64")) {
        size_t n;
        unsigned char *bytes = b64_decode(json_string_value(d), json_string_length(d), &n);
        assert_non_null(bytes);
        assert_int_equal(n, len);
        assert_memory_equal(bytes, data, len);
        free(bytes);
    } else {
        assert_int_equal(json_string_length(d), len);
        assert_memory_equal(json_string_value(d), data, len);
    }
}

static void encode(const sms_capture_config_t *cfg, const sms_capture_event_t *ev, sms_buf_t *out)
{
    sms_buf_reset(out);
    assert_int_equal(
        sms_capture_record_encode(cfg, ev, "0f8fad5b-d9cb-469f-a165-70867728950e", out), 0);
    assert_int_equal(strlen(out->data), out->len);
}

#define MAX_FILES 4096
static char *found_files[MAX_FILES];
static size_t num_found;

static int collect_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    size_t n = strlen(path);
    if (flag == FTW_F && n > 6 && !strcmp(path + n - 6, ".jsonl") && num_found < MAX_FILES)
        found_files[num_found++] = strdup(path);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the .jsonl files under dir, sorted, into found_files. */
static size_t collect_files(const char *dir)
{
    for (size_t i = 0; i < num_found; i++)
        free(found_files[i]);
    num_found = 0;
    nftw(dir, collect_one, 16, FTW_PHYS);
    qsort(found_files, num_found, sizeof *found_files, cmp_str);
    return num_found;
}

/* Calls fn on every line of every capture file under dir; returns the
 * number of lines. Asserts that every file ends with a whole line. */
static size_t for_each_line(const char *dir,
                            void (*fn)(const char *path, const char *line, size_t len, void *arg),
                            void *arg)
{
    size_t lines = 0;
    collect_files(dir);
    for (size_t f = 0; f < num_found; f++) {
        size_t len;
        char *data = tu_read_file(found_files[f], &len);
        assert_non_null(data);
        assert_true(len > 0 && data[len - 1] == '\n');
        for (char *p = data; p < data + len;) {
            char *nl = memchr(p, '\n', (size_t)(data + len - p));
            fn(found_files[f], p, (size_t)(nl - p + 1), arg);
            lines++;
            p = nl + 1;
        }
        free(data);
    }
    return lines;
}

/* ---- encoding ---------------------------------------------------------- */

static void encode_exact_line(void **state)
{
    (void)state;
    sms_capture_config_t cfg = default_config(NULL);
    sms_capture_event_t ev = {
        .input_type = "text/csv",
        .input = "1,2,3\n4,5,6",
        .input_len = 11,
        .output_type = "text/csv; charset=utf-8",
        .output = "0.0254",
        .output_len = 6,
        .inference_id = "abc-1",
        .time_ms = fixed_time_ms(0),
    };
    sms_buf_t out = {0};
    encode(&cfg, &ev, &out);
    assert_string_equal(
        out.data,
        "{\"captureData\":{\"endpointInput\":{\"observedContentType\":\"text/csv\",\"mode\":"
        "\"INPUT\",\"data\":\"1,2,3\\n4,5,6\",\"encoding\":\"CSV\"},\"endpointOutput\":{"
        "\"observedContentType\":\"text/csv; charset=utf-8\",\"mode\":\"OUTPUT\",\"data\":"
        "\"0.0254\",\"encoding\":\"CSV\"}},\"eventMetadata\":{\"eventId\":\"0f8fad5b-d9cb-469f-"
        "a165-70867728950e\",\"inferenceId\":\"abc-1\",\"inferenceTime\":\"2022-02-14T17:25:49Z\"}"
        ",\"eventVersion\":\"0\"}\n");

    /* Appends: a second record follows the first. */
    size_t first = out.len;
    assert_int_equal(sms_capture_record_encode(&cfg, &ev, "x", &out), 0);
    assert_int_equal(strlen(out.data), out.len);
    json_decref(parse_record(out.data + first, out.len - first, true, true, true));
    sms_buf_free(&out);
}

typedef struct payload_case {
    const char *type;
    const char *bytes;
    size_t len;
    const char *encoding;
} payload_case_t;

#define CASE(type, lit, enc)                                                                       \
    {                                                                                              \
        type, lit, sizeof(lit) - 1, enc                                                            \
    }

static void check_payload(const sms_capture_config_t *cfg, const char *type, const void *bytes,
                          size_t len, const char *encoding)
{
    sms_capture_event_t ev = {
        .input_type = type,
        .input = bytes,
        .input_len = len,
        .output_type = type,
        .output = bytes,
        .output_len = len,
        .time_ms = fixed_time_ms(0),
    };
    sms_buf_t out = {0};
    encode(cfg, &ev, &out);
    json_t *rec = parse_record(out.data, out.len, true, true, false);
    assert_part(rec, "endpointInput", type ? type : "", bytes, len, encoding);
    assert_part(rec, "endpointOutput", type ? type : "", bytes, len, encoding);
    json_decref(rec);
    sms_buf_free(&out);
}

static void encode_payloads(void **state)
{
    (void)state;
    sms_capture_config_t cfg = default_config(NULL);
    static const payload_case_t cases[] = {
        CASE("text/csv", "1,2,3\n4,5,6\n", "CSV"),
        CASE("text/csv", "", "CSV"),
        CASE("text/csv", "\"quoted\",back\\slash,\"a\"\"b\"", "CSV"),
        CASE("text/csv", "tab\there\r\nnul\0in\x01the\x1fmiddle\x7f", "CSV"),
        CASE("text/csv", "\b\f/</script>", "CSV"),
        CASE("text/csv", "caf\xc3\xa9,\xe2\x82\xac,\xf0\x9f\x98\x80,\xef\xbf\xbf", "CSV"),
        CASE("text/csv", "\xff\xfe", "BASE64"),         /* not UTF-8 */
        CASE("text/csv", "1,\xc0\xaf", "BASE64"),       /* overlong '/' */
        CASE("text/csv", "\xed\xa0\x80", "BASE64"),     /* a surrogate */
        CASE("text/csv", "1,2\xe2\x82", "BASE64"),      /* truncated */
        CASE("text/csv", "\xf4\x90\x80\x80", "BASE64"), /* above U+10FFFF */
        CASE("text/csv", "\x80", "BASE64"),             /* lone continuation */
        CASE("application/json", "{\"instances\":[[1,2],[3,4]]}", "JSON"),
        CASE("application/json", "{\"s\":\"a\\\"b\\n\"}\n", "JSON"),
        CASE("application/json", "{\"s\":\"\xfe\"}", "BASE64"),
        CASE("application/jsonlines", "{\"a\":1}\n{\"a\":2}\n", "BASE64"),
        CASE("application/x-recordio-protobuf", "\n\x03\x00\x01\x02", "BASE64"),
        CASE("application/octet-stream", "", "BASE64"),
        CASE(NULL, "1,2", "BASE64"),
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        check_payload(&cfg, cases[i].type, cases[i].bytes, cases[i].len, cases[i].encoding);

    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    check_payload(&cfg, "application/octet-stream", all, sizeof all, "BASE64");
    check_payload(&cfg, "text/csv", all, sizeof all, "BASE64");
    check_payload(&cfg, "text/csv", all, 128, "CSV"); /* every ASCII byte, NUL included */
}

/* RFC 4648 test vectors, and every tail length. */
static void encode_base64_vectors(void **state)
{
    (void)state;
    sms_capture_config_t cfg = default_config(NULL);
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const coded[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                        "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        sms_capture_event_t ev = {.input_type = "image/png",
                                  .input = plain[i],
                                  .input_len = strlen(plain[i]),
                                  .time_ms = fixed_time_ms(0)};
        sms_buf_t out = {0};
        encode(&cfg, &ev, &out);
        json_t *rec = parse_record(out.data, out.len, true, true, false);
        json_t *p = json_object_get(json_object_get(rec, "captureData"), "endpointInput");
        assert_string_equal(json_string_value(json_object_get(p, "data")), coded[i]);
        json_decref(rec);
        sms_buf_free(&out);
    }
}

/* Random bytes, mostly high ones: CSV exactly when jansson itself takes the
 * bytes as UTF-8, and the data round-trips either way. */
static void encode_random_bytes(void **state)
{
    (void)state;
    sms_capture_config_t cfg = default_config(NULL);
    uint64_t seed = 0x5eed;
    unsigned char buf[24];
    size_t csv = 0, b64 = 0;
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = tu_rand32(&seed) % sizeof buf;
        for (size_t i = 0; i < len; i++) {
            uint32_t r = tu_rand32(&seed);
            /* lead and continuation bytes often enough to form sequences */
            buf[i] = (unsigned char)(r % 4 == 0   ? r >> 8
                                     : r % 4 == 1 ? 0x80 | ((r >> 8) & 0x3f)
                                     : r % 4 == 2 ? 0xc2 + ((r >> 8) % 51)
                                                  : (r >> 8) & 0x7f);
        }
        json_t *s = json_stringn((const char *)buf, len);
        bool utf8 = s != NULL;
        json_decref(s);
        check_payload(&cfg, "text/csv", buf, len, utf8 ? "CSV" : "BASE64");
        if (utf8)
            csv++;
        else
            b64++;
    }
    assert_true(csv > 1000 && b64 > 1000);
}

static void encode_content_types(void **state)
{
    (void)state;
    sms_capture_config_t cfg = default_config(NULL);
    check_payload(&cfg, "text/csv; charset=utf-8", "1,2", 3, "CSV");
    check_payload(&cfg, "TEXT/CSV", "1,2", 3, "CSV");
    check_payload(&cfg, "  text/csv  ;header=present", "1,2", 3, "CSV");
    check_payload(&cfg, "application/json ; charset=utf-8", "[1]", 3, "JSON");
    check_payload(&cfg, "text/csvx", "1,2", 3, "BASE64");
    check_payload(&cfg, "text/cs", "1,2", 3, "BASE64");
    check_payload(&cfg, "", "1,2", 3, "BASE64");
    check_payload(&cfg, "\"odd\\type\"\t", "1,2", 3, "BASE64");

    setenv("SMSERVE_CAPTURE_CSV_CONTENT_TYPES", "text/plain, application/x-csv", 1);
    setenv("SMSERVE_CAPTURE_JSON_CONTENT_TYPES", "application/jsonlines,application/json", 1);
    sms_error_t err = {0};
    assert_int_equal(sms_capture_config_from_env(&cfg, &err), 0);
    check_payload(&cfg, "text/csv", "1,2", 3, "BASE64");
    check_payload(&cfg, "Application/X-CSV", "1,2", 3, "CSV");
    check_payload(&cfg, "text/plain", "1,2", 3, "CSV");
    check_payload(&cfg, "application/jsonlines", "{}\n{}", 5, "JSON");
    clear_env();

    /* A content type that is not UTF-8 still makes valid JSON (U+FFFD). */
    cfg = default_config(NULL);
    sms_capture_event_t ev = {.input_type = "text/\xff\x01",
                              .input = "1",
                              .input_len = 1,
                              .output_type = "text/csv",
                              .output = "2",
                              .output_len = 1,
                              .inference_id = "id\xc3\x28\"",
                              .time_ms = fixed_time_ms(0)};
    sms_buf_t out = {0};
    encode(&cfg, &ev, &out);
    json_t *rec = parse_record(out.data, out.len, true, true, true);
    assert_part(rec, "endpointInput", "text/\xef\xbf\xbd\x01", "1", 1, "BASE64");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(rec, "eventMetadata"), "inferenceId")),
        "id\xef\xbf\xbd(\"");
    json_decref(rec);
    sms_buf_free(&out);
}

static void encode_metadata_and_options(void **state)
{
    (void)state;
    sms_capture_config_t cfg = default_config(NULL);
    sms_capture_event_t ev = {.input_type = "text/csv",
                              .input = "1,2",
                              .input_len = 3,
                              .output_type = "text/csv",
                              .output = "0.5",
                              .output_len = 3,
                              .time_ms = fixed_time_ms(0)};
    sms_buf_t out = {0};

    encode(&cfg, &ev, &out); /* no inferenceId */
    json_t *rec = parse_record(out.data, out.len, true, true, false);
    json_t *meta = json_object_get(rec, "eventMetadata");
    assert_string_equal(json_string_value(json_object_get(meta, "eventId")),
                        "0f8fad5b-d9cb-469f-a165-70867728950e");
    assert_string_equal(json_string_value(json_object_get(meta, "inferenceTime")),
                        "2022-02-14T17:25:49Z");
    json_decref(rec);

    ev.inference_id = ""; /* empty counts as not sent */
    encode(&cfg, &ev, &out);
    json_decref(parse_record(out.data, out.len, true, true, false));

    ev.inference_id = "req-42";
    encode(&cfg, &ev, &out);
    rec = parse_record(out.data, out.len, true, true, true);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(rec, "eventMetadata"), "inferenceId")),
        "req-42");
    json_decref(rec);

    cfg.capture_output = false;
    encode(&cfg, &ev, &out);
    rec = parse_record(out.data, out.len, true, false, true);
    assert_part(rec, "endpointInput", "text/csv", "1,2", 3, "CSV");
    json_decref(rec);

    cfg.capture_output = true;
    cfg.capture_input = false;
    encode(&cfg, &ev, &out);
    rec = parse_record(out.data, out.len, false, true, true);
    assert_part(rec, "endpointOutput", "text/csv", "0.5", 3, "CSV");
    json_decref(rec);

    /* Times: epoch, a leap day, the end of a year. */
    cfg.capture_input = true;
    static const struct {
        int64_t ms;
        const char *text;
    } times[] = {
        {0, "1970-01-01T00:00:00Z"},
        {951782399999, "2000-02-28T23:59:59Z"},
        {951782400000, "2000-02-29T00:00:00Z"},
        {1704067199999, "2023-12-31T23:59:59Z"},
        {4102444800000, "2100-01-01T00:00:00Z"},
    };
    for (size_t i = 0; i < sizeof times / sizeof *times; i++) {
        ev.time_ms = times[i].ms;
        encode(&cfg, &ev, &out);
        rec = parse_record(out.data, out.len, true, true, true);
        assert_string_equal(json_string_value(json_object_get(json_object_get(rec, "eventMetadata"),
                                                              "inferenceTime")),
                            times[i].text);
        json_decref(rec);
    }
    sms_buf_free(&out);
}

/* Plan and write, the two steps sms_capture_submit takes: the plan's length
 * is what the write fills, to the byte, and the line is the one
 * sms_capture_record_encode appends, for every shape of record. */
static void record_plan_then_write(void **state)
{
    (void)state;
    static const char input[] = "{\"a\":\"\xff\"}"; /* JSON but not UTF-8: BASE64 */
    sms_capture_event_t ev = {
        .input_type = "application/json",
        .input = input,
        .input_len = sizeof input - 1,
        .output = "\t\x01", /* no Content-Type: BASE64 */
        .output_len = 2,
        .time_ms = -1, /* the epoch */
    };
    sms_capture_config_t cfg = default_config(NULL);
    sms_buf_t out = {0};
    for (int shape = 0; shape < 6; shape++) {
        cfg.capture_input = shape % 3 != 2;
        cfg.capture_output = shape % 3 != 1;
        ev.inference_id = shape < 3 ? "id\"\xc3" : NULL;
        sms_capture_record_t rec;
        assert_int_equal(sms_capture_record_plan(&cfg, &ev, "e-1", &rec), 0);
        char *line = malloc(rec.len + 1);
        assert_non_null(line);
        line[rec.len] = '#';
        sms_capture_record_write(line, &rec);
        assert_int_equal(line[rec.len], '#');
        assert_int_equal(line[rec.len - 1], '\n');
        sms_buf_reset(&out);
        assert_int_equal(sms_capture_record_encode(&cfg, &ev, "e-1", &out), 0);
        assert_int_equal(out.len, rec.len);
        assert_memory_equal(out.data, line, rec.len);
        json_decref(parse_record(line, rec.len, cfg.capture_input, cfg.capture_output,
                                 ev.inference_id != NULL));
        free(line);
    }
    sms_buf_free(&out);
}

/* Broken-down UTC and the file hour agree, and both clamp to the years
 * 0000-9999 (before the epoch: the epoch). */
static void utc_and_hour_clamp(void **state)
{
    (void)state;
    static const struct {
        int64_t ms;
        sms_capture_utc_t utc;
        int64_t hour;
    } cases[] = {
        {INT64_MIN, {1970, 1, 1, 0, 0, 0, 0}, 0},
        {-1, {1970, 1, 1, 0, 0, 0, 0}, 0},
        {3599999, {1970, 1, 1, 0, 59, 59, 999}, 0},
        {3600000, {1970, 1, 1, 1, 0, 0, 0}, 1},
        {951825600123, {2000, 2, 29, 12, 0, 0, 123}, 264396},
        {253402300799999, {9999, 12, 31, 23, 59, 59, 999}, 70389527},
        {INT64_MAX, {9999, 12, 31, 23, 59, 59, 999}, 70389527},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        sms_capture_utc_t u;
        sms_capture_utc(cases[i].ms, &u);
        assert_memory_equal(&u, &cases[i].utc, sizeof u);
        assert_int_equal(sms_capture_hour(cases[i].ms), cases[i].hour);
    }
}

/* ---- path layout and UUIDs ---------------------------------------------- */

static void file_path_layout(void **state)
{
    (void)state;
    sms_capture_config_t cfg = default_config(NULL);
    char path[512];
    const char *uuid = "0f8fad5b-d9cb-469f-a165-70867728950e";
    assert_int_equal(sms_capture_file_path(&cfg, fixed_time_ms(0), uuid, path, sizeof path), 0);
    assert_string_equal(path, "local/AllTraffic/2022/02/14/17/25-49-123-"
                              "0f8fad5b-d9cb-469f-a165-70867728950e.jsonl");
    assert_int_equal(sms_capture_file_path(&cfg, 1000, uuid, path, sizeof path), 0);
    assert_string_equal(path, "local/AllTraffic/1970/01/01/00/00-01-000-"
                              "0f8fad5b-d9cb-469f-a165-70867728950e.jsonl");
    snprintf(cfg.endpoint, sizeof cfg.endpoint, "my-endpoint");
    snprintf(cfg.variant, sizeof cfg.variant, "v2");
    assert_int_equal(
        sms_capture_file_path(&cfg, fixed_time_ms(-123 - 49000 - 25 * 60000 - 17 * 3600000LL), "u",
                              path, sizeof path),
        0);
    assert_string_equal(path, "my-endpoint/v2/2022/02/14/00/00-00-000-u.jsonl");
    assert_int_equal(sms_capture_file_path(&cfg, fixed_time_ms(0), uuid, path, 20), -1);
}

static int cmp_uuid(const void *a, const void *b)
{
    return memcmp(a, b, 37);
}

static void uuid_format_and_uniqueness(void **state)
{
    (void)state;
    enum { N = 10000 };
    char(*ids)[37] = malloc(sizeof(*ids) * N);
    for (int i = 0; i < N; i++) {
        sms_uuid4(ids[i]);
        const char *u = ids[i];
        assert_int_equal(strlen(u), 36);
        for (int j = 0; j < 36; j++) {
            if (j == 8 || j == 13 || j == 18 || j == 23)
                assert_int_equal(u[j], '-');
            else
                assert_non_null(strchr("0123456789abcdef", u[j]));
        }
        assert_int_equal(u[14], '4');           /* version 4 */
        assert_non_null(strchr("89ab", u[19])); /* variant 10xx */
    }
    qsort(ids, N, sizeof *ids, cmp_uuid);
    for (int i = 1; i < N; i++)
        assert_int_not_equal(memcmp(ids[i - 1], ids[i], 37), 0);
    free(ids);
}

/* ---- sampling ----------------------------------------------------------- */

static sms_capture_t *start_in(const sms_capture_config_t *cfg)
{
    sms_error_t err = {0};
    sms_capture_t *c = sms_capture_start(cfg, &err);
    if (!c)
        fail_msg("sms_capture_start: %s", err.msg);
    return c;
}

static size_t count_sampled(sms_capture_t *c, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += sms_capture_sample(c);
    return k;
}

static void sampling_rate(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    sms_capture_config_t cfg = default_config(dir);

    cfg.sampling_percent = 10;
    sms_capture_t *c = start_in(&cfg);
    /* Fixed seeds keep it deterministic; then the thread's own seed. */
    uint64_t total = 0;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        sms_capture_seed_thread(seed * 0x9e3779b97f4a7c15ull);
        size_t k = count_sampled(c, 10000);
        if (k < 900 || k > 1100)
            fail_msg("seed %llu: %zu of 10000 sampled at 10%%", (unsigned long long)seed, k);
        total += k;
    }
    sms_capture_stats_t st;
    sms_capture_stats(c, &st);
    assert_int_equal(st.sampled, total);
    sms_capture_stop(c);

    cfg.sampling_percent = 0;
    c = start_in(&cfg);
    assert_int_equal(count_sampled(c, 10000), 0);
    sms_capture_stop(c);

    cfg.sampling_percent = 100;
    c = start_in(&cfg);
    assert_int_equal(count_sampled(c, 10000), 10000);
    sms_capture_stop(c);

    cfg.sampling_percent = 0.5;
    c = start_in(&cfg);
    sms_capture_seed_thread(7);
    size_t k = count_sampled(c, 100000); /* mean 500, sd 22 */
    assert_true(k > 400 && k < 600);
    sms_capture_stop(c);

    assert_false(sms_capture_sample(NULL));
    tu_rmtree(dir);
    free(dir);
}

/* ---- the writer --------------------------------------------------------- */

typedef struct seen {
    size_t n;
    unsigned char *hit; /* by record number, from the inferenceId */
    size_t max;
} seen_t;

static void record_event(size_t i, char *payload, size_t size, char *id, size_t id_size,
                         sms_capture_event_t *ev, int64_t time_ms)
{
    /* Mixed payloads: CSV with odd bytes and a binary one. */
    int n = snprintf(payload, size, "%zu,\"q\\\"\t%zu\n%s", i, i * 7, i % 3 ? "x" : "\xff\x00");
    snprintf(id, id_size, "id-%zu", i);
    *ev = (sms_capture_event_t){
        .input_type = i % 2 ? "text/csv" : "application/octet-stream",
        .input = payload,
        .input_len = (size_t)n + (i % 3 ? 0 : 1),
        .output_type = "text/csv; charset=utf-8",
        .output = "0.25",
        .output_len = 4,
        .inference_id = id,
        .time_ms = time_ms,
    };
}

static void check_written_line(const char *path, const char *line, size_t len, void *arg)
{
    (void)path;
    seen_t *s = arg;
    json_t *rec = parse_record(line, len, true, true, true);
    const char *id =
        json_string_value(json_object_get(json_object_get(rec, "eventMetadata"), "inferenceId"));
    size_t i = strtoul(id + 3, NULL, 10);
    assert_true(i < s->max);
    assert_false(s->hit[i]);
    s->hit[i] = 1;
    char payload[128], idbuf[32];
    sms_capture_event_t ev;
    record_event(i, payload, sizeof payload, idbuf, sizeof idbuf, &ev, 0);
    bool csv = i % 2 && i % 3;
    assert_part(rec, "endpointInput", ev.input_type, ev.input, ev.input_len,
                csv ? "CSV" : "BASE64");
    assert_part(rec, "endpointOutput", "text/csv; charset=utf-8", "0.25", 4, "CSV");
    json_decref(rec);
    s->n++;
}

static void writer_round_trip(void **state)
{
    (void)state;
    enum { N = 500 };
    char *dir = tu_mkdtemp();
    sms_capture_config_t cfg = default_config(dir);
    sms_capture_t *c = start_in(&cfg);
    int64_t now = (int64_t)time(NULL) * 1000;
    for (size_t i = 0; i < N; i++) {
        char payload[128], id[32];
        sms_capture_event_t ev;
        record_event(i, payload, sizeof payload, id, sizeof id, &ev, now);
        assert_int_equal(sms_capture_submit(c, &ev), 0);
    }
    sms_capture_flush(c);
    sms_capture_stats_t st;
    sms_capture_stats(c, &st);
    sms_capture_stop(c);
    assert_int_equal(st.written, N);
    assert_int_equal(st.dropped, 0);
    assert_int_equal(st.files, 1);
    assert_false(st.paused);

    unsigned char hit[N] = {0};
    seen_t s = {.hit = hit, .max = N};
    assert_int_equal(for_each_line(dir, check_written_line, &s), N);
    assert_int_equal(s.n, N);
    assert_int_equal(num_found, 1);

    /* <dir>/local/AllTraffic/yyyy/mm/dd/hh/mm-ss-mmm-<uuid>.jsonl */
    char want[256];
    time_t secs = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = (size_t)snprintf(want, sizeof want, "%s/local/AllTraffic/", dir);
    strftime(want + n, sizeof want - n, "%Y/%m/%d/%H/%M-%S-000-", &tm);
    assert_memory_equal(found_files[0], want, strlen(want));
    assert_int_equal(strlen(found_files[0]), strlen(want) + 36 + 6);
    struct stat sb;
    assert_int_equal(stat(found_files[0], &sb), 0);
    assert_int_equal((uint64_t)sb.st_size, st.bytes_written);
    tu_rmtree(dir);
    free(dir);
}

typedef struct burst {
    sms_capture_t *c;
    size_t n, queued;
} burst_t;

static void *burst_thread(void *arg)
{
    burst_t *b = arg;
    int64_t now = (int64_t)time(NULL) * 1000;
    for (size_t i = 0; i < b->n; i++) {
        char payload[128], id[32];
        sms_capture_event_t ev;
        record_event(i, payload, sizeof payload, id, sizeof id, &ev, now);
        if (sms_capture_submit(b->c, &ev) == 0)
            b->queued++;
    }
    return NULL;
}

static void count_line(const char *path, const char *line, size_t len, void *arg)
{
    (void)path;
    json_decref(parse_record(line, len, true, true, true));
    ++*(size_t *)arg;
}

/* A 4 KB budget under a burst from two threads: submit never waits, and
 * every record is either written or counted as dropped. */
static void writer_tiny_budget_drops(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    sms_capture_config_t cfg = default_config(dir);
    cfg.queue_bytes = 4096;
    sms_capture_t *c = start_in(&cfg);
    burst_t b[2] = {{c, 5000, 0}, {c, 5000, 0}};
    pthread_t t[2];
    double t0 = tu_now_s();
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, burst_thread, &b[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    double elapsed = tu_now_s() - t0;
    sms_capture_flush(c);
    sms_capture_stats_t st;
    sms_capture_stats(c, &st);
    sms_capture_stop(c);

    /* Generous: a sanitizer build does this in well under 100 ms. */
    if (elapsed > 2.0)
        fail_msg("10,000 submissions took %.3f s", elapsed);
    assert_int_equal(st.written + st.dropped, 10000);
    assert_int_equal(st.written, b[0].queued + b[1].queued);
    assert_true(st.dropped > 0);
    assert_int_equal(st.paused_drops, 0);
    size_t lines = 0;
    assert_int_equal(for_each_line(dir, count_line, &lines), st.written);
    tu_rmtree(dir);
    free(dir);
}

static void check_file_size(const char *path, const char *line, size_t len, void *arg)
{
    (void)line;
    (void)len;
    (void)arg;
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_true(sb.st_size <= 2000 || (size_t)sb.st_size == len);
}

static void writer_rotates_by_size(void **state)
{
    (void)state;
    enum { N = 100 };
    char *dir = tu_mkdtemp();
    sms_capture_config_t cfg = default_config(dir);
    cfg.max_file_bytes = 2000;
    sms_capture_t *c = start_in(&cfg);
    int64_t now = (int64_t)time(NULL) * 1000;
    for (size_t i = 0; i < N; i++) {
        char payload[128], id[32];
        sms_capture_event_t ev;
        record_event(i, payload, sizeof payload, id, sizeof id, &ev, now);
        assert_int_equal(sms_capture_submit(c, &ev), 0);
        if (i % 10 == 0)
            sms_capture_flush(c); /* rotation across batches too */
    }
    /* A line longer than the cap gets a file of its own. */
    static char big[3000];
    memset(big, 'a', sizeof big);
    sms_capture_event_t ev = {.input_type = "text/csv",
                              .input = big,
                              .input_len = sizeof big,
                              .output_type = "text/csv; charset=utf-8",
                              .output = "0.25",
                              .output_len = 4,
                              .inference_id = "big",
                              .time_ms = now};
    assert_int_equal(sms_capture_submit(c, &ev), 0);
    sms_capture_flush(c);
    sms_capture_stats_t st;
    sms_capture_stats(c, &st);
    sms_capture_stop(c);

    size_t lines = 0;
    assert_int_equal(for_each_line(dir, count_line, &lines), N + 1);
    assert_int_equal(for_each_line(dir, check_file_size, NULL), N + 1);
    assert_true(num_found >= 10);
    assert_int_equal(st.files, num_found);
    assert_int_equal(st.written, N + 1);
    tu_rmtree(dir);
    free(dir);
}

static void check_hour(const char *path, const char *line, size_t len, void *arg)
{
    (void)arg;
    json_t *rec = parse_record(line, len, true, true, true);
    const char *t =
        json_string_value(json_object_get(json_object_get(rec, "eventMetadata"), "inferenceTime"));
    /* "2022-02-14T17:59:59Z" lives in .../2022/02/14/17/ */
    char want[32];
    snprintf(want, sizeof want, "/%.4s/%.2s/%.2s/%.2s/", t, t + 5, t + 8, t + 11);
    if (!strstr(path, want))
        fail_msg("record of %s in %s", t, path);
    json_decref(rec);
}

/* Each record lands in the directory of its own hour; a file is named after
 * the time of its first record. */
static void writer_rotates_by_hour(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    sms_capture_config_t cfg = default_config(dir);
    sms_capture_t *c = start_in(&cfg);
    int64_t base = fixed_time_ms(0); /* 17:25:49.123 */
    const int64_t offsets[] = {
        0, 10, 34 * 60000 + 10000, 34 * 60000 + 11000, 34 * 60000 + 12000, 2 * 3600000, 10};
    for (size_t i = 0; i < sizeof offsets / sizeof *offsets; i++) {
        char payload[128], id[32];
        sms_capture_event_t ev;
        record_event(i, payload, sizeof payload, id, sizeof id, &ev, base + offsets[i]);
        assert_int_equal(sms_capture_submit(c, &ev), 0);
    }
    sms_capture_stop(c);
    assert_int_equal(for_each_line(dir, check_hour, NULL), 7);
    /* 17h (three records), 18h (two, the first at 18:00:00.123), 19h, 17h again. */
    assert_int_equal(num_found, 4);
    size_t in18 = 0;
    for (size_t f = 0; f < num_found; f++)
        if (strstr(found_files[f], "/2022/02/14/18/00-00-123-"))
            in18++;
    assert_int_equal(in18, 1);
    tu_rmtree(dir);
    free(dir);
}

/* Runs fn with stderr sent to a file; returns what was logged (malloc'd). */
static char *with_stderr_captured(const char *dir, void (*fn)(void *), void *arg)
{
    char *path = tu_path(dir, "stderr.log");
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, STDERR_FILENO);
    close(fd);
    fn(arg);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    char *log = tu_read_file(path, NULL);
    unlink(path);
    free(path);
    return log;
}

typedef struct guard_run {
    sms_capture_config_t cfg;
    sms_capture_stats_t st;
    int rc[10];
} guard_run_t;

static void guard_body(void *arg)
{
    guard_run_t *g = arg;
    sms_capture_t *c = start_in(&g->cfg);
    for (int i = 0; i < 10; i++) {
        sms_capture_event_t ev = {.input_type = "text/csv",
                                  .input = "1",
                                  .input_len = 1,
                                  .output_type = "text/csv",
                                  .output = "2",
                                  .output_len = 1,
                                  .time_ms = fixed_time_ms(0)};
        g->rc[i] = sms_capture_submit(c, &ev);
    }
    sms_capture_flush(c);
    sms_capture_stats(c, &g->st);
    sms_capture_stop(c);
}

/* max_disk_used_percent = 0 makes any real file system "too full". */
static void disk_guard_pauses(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    char *logdir = tu_mkdtemp();
    guard_run_t g = {.cfg = default_config(dir)};
    g.cfg.max_disk_used_percent = 0;
    char *log = with_stderr_captured(logdir, guard_body, &g);
    assert_non_null(log);
    for (int i = 0; i < 10; i++)
        assert_int_equal(g.rc[i], -1);
    assert_true(g.st.paused);
    assert_int_equal(g.st.paused_drops, 10);
    assert_int_equal(g.st.dropped, 10);
    assert_int_equal(g.st.written, 0);
    assert_int_equal(collect_files(dir), 0);
    char want[1200];
    snprintf(want, sizeof want, "capture paused: %s is ", dir);
    if (!strstr(log, want) || !strstr(log, "% full (limit 0%)"))
        fail_msg("log: %s", log);
    assert_null(strstr(strstr(log, want) + 1, "capture paused")); /* once */
    free(log);

    /* The default limit does not pause on this test host's disk unless it
     * is really that full; 100 never pauses. */
    g.cfg.max_disk_used_percent = 100;
    log = with_stderr_captured(logdir, guard_body, &g);
    assert_false(g.st.paused);
    assert_int_equal(g.st.written, 10);
    assert_null(strstr(log, "capture paused"));
    free(log);
    tu_rmtree(dir);
    tu_rmtree(logdir);
    free(dir);
    free(logdir);
}

static void start_refuses_bad_destination(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp();
    char *file = tu_path(dir, "file");
    assert_int_equal(tu_write_file(file, "x", 1), 0);
    sms_capture_config_t cfg = default_config(file);
    sms_error_t err = {0};
    assert_null(sms_capture_start(&cfg, &err));
    assert_non_null(strstr(err.msg, file));

    cfg = default_config(dir);
    snprintf(cfg.endpoint, sizeof cfg.endpoint, "..");
    assert_null(sms_capture_start(&cfg, &err));
    cfg = default_config(dir);
    snprintf(cfg.variant, sizeof cfg.variant, "a/b");
    assert_null(sms_capture_start(&cfg, &err));

    sms_capture_stats_t st;
    sms_capture_stats(NULL, &st);
    assert_int_equal(st.written, 0);
    assert_int_equal(sms_capture_submit(NULL, NULL), -1);
    sms_capture_stop(NULL);
    tu_rmtree(dir);
    free(file);
    free(dir);
}

/* ---- configuration ------------------------------------------------------ */

static void config_defaults(void **state)
{
    (void)state;
    clear_env();
    sms_capture_config_t cfg;
    sms_error_t err = {0};
    assert_int_equal(sms_capture_config_from_env(&cfg, &err), 0);
    assert_false(cfg.enabled);
    assert_true(cfg.sampling_percent == 100);
    assert_true(cfg.capture_input && cfg.capture_output);
    assert_int_equal(cfg.num_csv_types, 1);
    assert_string_equal(cfg.csv_types[0], "text/csv");
    assert_int_equal(cfg.num_json_types, 1);
    assert_string_equal(cfg.json_types[0], "application/json");
    assert_string_equal(cfg.dir, "/opt/ml/capture");
    assert_string_equal(cfg.endpoint, "local");
    assert_string_equal(cfg.variant, "AllTraffic");
    assert_int_equal(cfg.queue_bytes, 64 << 20);
    assert_int_equal(cfg.max_file_bytes, 64 << 20);
    assert_true(cfg.max_disk_used_percent == 75);
}

static void config_valid_values(void **state)
{
    (void)state;
    clear_env();
    setenv("SMSERVE_CAPTURE_ENABLE", "true", 1);
    setenv("SMSERVE_CAPTURE_SAMPLING_PERCENTAGE", "12.5", 1);
    setenv("SMSERVE_CAPTURE_OPTIONS", "input", 1);
    setenv("SMSERVE_CAPTURE_CSV_CONTENT_TYPES",
           "text/csv, text/plain,a/b,c/d,e/f,g/h,i/j,k/l,m/n,o/p", 1);
    setenv("SMSERVE_CAPTURE_JSON_CONTENT_TYPES", "application/jsonlines", 1);
    setenv("SMSERVE_CAPTURE_DIR", "/tmp/cap//", 1);
    setenv("SMSERVE_ENDPOINT_NAME", "my-endpoint", 1);
    setenv("SMSERVE_VARIANT_NAME", "variant-1", 1);
    setenv("SMSERVE_CAPTURE_QUEUE_BYTES", "4096", 1);
    setenv("SMSERVE_CAPTURE_MAX_FILE_BYTES", "1000000", 1);
    setenv("SMSERVE_CAPTURE_MAX_DISK_PERCENT", "90", 1);
    sms_capture_config_t cfg;
    sms_error_t err = {0};
    assert_int_equal(sms_capture_config_from_env(&cfg, &err), 0);
    assert_true(cfg.enabled);
    assert_true(cfg.sampling_percent == 12.5);
    assert_true(cfg.capture_input);
    assert_false(cfg.capture_output);
    assert_int_equal(cfg.num_csv_types, 10);
    assert_string_equal(cfg.csv_types[1], "text/plain");
    assert_string_equal(cfg.csv_types[9], "o/p");
    assert_int_equal(cfg.num_json_types, 1);
    assert_string_equal(cfg.json_types[0], "application/jsonlines");
    assert_string_equal(cfg.dir, "/tmp/cap");
    assert_string_equal(cfg.endpoint, "my-endpoint");
    assert_string_equal(cfg.variant, "variant-1");
    assert_int_equal(cfg.queue_bytes, 4096);
    assert_int_equal(cfg.max_file_bytes, 1000000);
    assert_true(cfg.max_disk_used_percent == 90);

    static const struct {
        const char *value;
        bool in, out;
    } options[] = {{"Output", false, true},
                   {"Input,Output", true, true},
                   {"output, INPUT", true, true},
                   {"InputAndOutput", true, true},
                   {"INPUT", true, false}};
    for (size_t i = 0; i < sizeof options / sizeof *options; i++) {
        setenv("SMSERVE_CAPTURE_OPTIONS", options[i].value, 1);
        assert_int_equal(sms_capture_config_from_env(&cfg, &err), 0);
        assert_int_equal(cfg.capture_input, options[i].in);
        assert_int_equal(cfg.capture_output, options[i].out);
    }
    setenv("SMSERVE_CAPTURE_SAMPLING_PERCENTAGE", "0", 1);
    setenv("SMSERVE_CAPTURE_ENABLE", "no", 1);
    assert_int_equal(sms_capture_config_from_env(&cfg, &err), 0);
    assert_true(cfg.sampling_percent == 0);
    assert_false(cfg.enabled);
    clear_env();
}

static void expect_invalid(const char *name, const char *value)
{
    clear_env();
    setenv(name, value, 1);
    sms_capture_config_t cfg;
    sms_error_t err = {0};
    assert_int_equal(sms_capture_config_from_env(&cfg, &err), -1);
    assert_int_equal(err.status, 500);
    if (!strstr(err.msg, name))
        fail_msg("error for %s=%s does not name the variable: %s", name, value, err.msg);
    clear_env();
}

static void config_invalid_values(void **state)
{
    (void)state;
    expect_invalid("SMSERVE_CAPTURE_ENABLE", "maybe");
    expect_invalid("SMSERVE_CAPTURE_SAMPLING_PERCENTAGE", "101");
    expect_invalid("SMSERVE_CAPTURE_SAMPLING_PERCENTAGE", "-1");
    expect_invalid("SMSERVE_CAPTURE_SAMPLING_PERCENTAGE", "ten");
    expect_invalid("SMSERVE_CAPTURE_SAMPLING_PERCENTAGE", "10%");
    expect_invalid("SMSERVE_CAPTURE_SAMPLING_PERCENTAGE", "nan");
    expect_invalid("SMSERVE_CAPTURE_OPTIONS", "Both");
    expect_invalid("SMSERVE_CAPTURE_OPTIONS", "Input,");
    expect_invalid("SMSERVE_CAPTURE_OPTIONS", ",");
    expect_invalid("SMSERVE_CAPTURE_CSV_CONTENT_TYPES", "csv");
    expect_invalid("SMSERVE_CAPTURE_CSV_CONTENT_TYPES", "text/csv,");
    expect_invalid("SMSERVE_CAPTURE_CSV_CONTENT_TYPES", "text/csv; charset=utf-8");
    expect_invalid("SMSERVE_CAPTURE_CSV_CONTENT_TYPES",
                   "a/b,c/d,e/f,g/h,i/j,k/l,m/n,o/p,q/r,s/t,u/v");
    expect_invalid("SMSERVE_CAPTURE_JSON_CONTENT_TYPES", "application/");
    expect_invalid("SMSERVE_CAPTURE_JSON_CONTENT_TYPES", "/json");
    expect_invalid("SMSERVE_CAPTURE_JSON_CONTENT_TYPES",
                   "application/"
                   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    expect_invalid("SMSERVE_ENDPOINT_NAME", "..");
    expect_invalid("SMSERVE_ENDPOINT_NAME", ".");
    expect_invalid("SMSERVE_ENDPOINT_NAME", "a/b");
    expect_invalid("SMSERVE_ENDPOINT_NAME", "has space");
    expect_invalid("SMSERVE_VARIANT_NAME", "caf\xc3\xa9");
    expect_invalid("SMSERVE_VARIANT_NAME", "tab\t");
    expect_invalid("SMSERVE_CAPTURE_QUEUE_BYTES", "0");
    expect_invalid("SMSERVE_CAPTURE_QUEUE_BYTES", "-5");
    expect_invalid("SMSERVE_CAPTURE_QUEUE_BYTES", "64M");
    expect_invalid("SMSERVE_CAPTURE_MAX_FILE_BYTES", "x");
    expect_invalid("SMSERVE_CAPTURE_MAX_FILE_BYTES", "99999999999999999999999");
    expect_invalid("SMSERVE_CAPTURE_MAX_DISK_PERCENT", "150");
    expect_invalid("SMSERVE_CAPTURE_MAX_DISK_PERCENT", "-0.5");
    char long_dir[1100];
    memset(long_dir, 'd', sizeof long_dir - 1);
    long_dir[sizeof long_dir - 1] = '\0';
    expect_invalid("SMSERVE_CAPTURE_DIR", long_dir);
}

static int teardown_files(void **state)
{
    (void)state;
    collect_files("/nonexistent");
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(encode_exact_line),
        cmocka_unit_test(encode_payloads),
        cmocka_unit_test(encode_base64_vectors),
        cmocka_unit_test(encode_random_bytes),
        cmocka_unit_test(encode_content_types),
        cmocka_unit_test(encode_metadata_and_options),
        cmocka_unit_test(record_plan_then_write),
        cmocka_unit_test(utc_and_hour_clamp),
        cmocka_unit_test(file_path_layout),
        cmocka_unit_test(uuid_format_and_uniqueness),
        cmocka_unit_test(sampling_rate),
        cmocka_unit_test_teardown(writer_round_trip, teardown_files),
        cmocka_unit_test_teardown(writer_tiny_budget_drops, teardown_files),
        cmocka_unit_test_teardown(writer_rotates_by_size, teardown_files),
        cmocka_unit_test_teardown(writer_rotates_by_hour, teardown_files),
        cmocka_unit_test_teardown(disk_guard_pauses, teardown_files),
        cmocka_unit_test(start_refuses_bad_destination),
        cmocka_unit_test(config_defaults),
        cmocka_unit_test(config_valid_values),
        cmocka_unit_test(config_invalid_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
