/* Request decoding speed: a ~6 MB body of feature rows as text/csv, as both
 * JSON shapes and as text/libsvm, decoded many times into a reused matrix (as the server's
 * per-thread buffers are), with strtof over the same tokens as the yardstick
 * measured in the same run. Asserts the decoded matrix and prints a table.
 * Usage: bench_decode [repetitions] [rows] */
#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "smserve/buf.h"
#include "smserve/csv.h"
#include "smserve/decode.h"
#include "smserve/error.h"
#include "smserve/jsonlines.h"
#include "smserve/jsonreq.h"
#include "smserve/libsvm.h"
#include "smserve/recordio.h"

#define COLS                25
#define DEFAULT_ROWS        28000
#define DEFAULT_REPS        15
#define TOKEN_BYTES         32
#define CSV_TARGET_MBS      400.0
#define JSON_TARGET_MBS     250.0
#define LIBSVM_TARGET_MBS   400.0
#define RECORDIO_TARGET_MBS 400.0 /* and no more ns/value than csv */

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

/* Uniform in [0, 1) with all 53 bits random, as a client's float64 data. */
static double rnd_unit(void)
{
    uint64_t hi = rnd(), lo = rnd();
    return (double)(((hi << 32) | lo) >> 11) / 9007199254740992.0;
}

/* One feature value as a SageMaker client writes it ("" when missing). The
 * mix, in percent: 5 missing, 30 six-decimal fractions (0.123456), 15 short
 * decimals (12.5), 15 integers (-3), 10 exponent form (1e-05), 17 float32
 * reprs (0.73164546), 8 float64 reprs as pandas writes them. */
static void make_token(char *t)
{
    uint32_t r = rnd() % 100;
    double x = rnd_unit();
    const char *sign = (rnd() % 4 == 0) ? "-" : "";
    if (r < 5)
        t[0] = '\0';
    else if (r < 35)
        snprintf(t, TOKEN_BYTES, "%s%.6f", sign, x);
    else if (r < 50)
        snprintf(t, TOKEN_BYTES, "%s%.*f", sign, 1 + (int)(rnd() % 2), x * 500);
    else if (r < 65)
        snprintf(t, TOKEN_BYTES, "%s%u", sign, rnd() % ((rnd() & 1) ? 10 : 5000));
    else if (r < 75)
        snprintf(t, TOKEN_BYTES, "%s%.*g", sign, 1 + (int)(rnd() % 3),
                 (1 + 9 * x) * pow(10, (int)(rnd() % 13) - 8));
    else if (r < 92)
        snprintf(t, TOKEN_BYTES, "%s%.9g", sign,
                 (double)(float)(x * pow(10, (int)(rnd() % 6) - 1)));
    else
        snprintf(t, TOKEN_BYTES, "%s%.17g", sign, x * pow(10, (int)(rnd() % 4) - 1));
}

static uint64_t checksum_add(uint64_t h, float v)
{
    uint32_t bits;
    if (v != v)
        v = NAN; /* one NaN pattern for every missing value */
    memcpy(&bits, &v, sizeof bits);
    return (h ^ bits) * 0x100000001B3ull;
}

static uint64_t checksum(const float *v, size_t n)
{
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < n; i++)
        h = checksum_add(h, v[i]);
    return h;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

typedef enum {
    BODY_CSV,
    BODY_JSON_LISTS,
    BODY_JSON_OBJECTS,
    BODY_LIBSVM,
    BODY_RECORDIO,
    BODY_JSONLINES
} body_kind_t;

static void append(sms_buf_t *b, const char *s)
{
    if (sms_buf_append(b, s, strlen(s)) < 0) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
}

/* libsvm as clients write it: a label, then 1-based index:value pairs with
 * the missing values left out. */
static void build_libsvm(sms_buf_t *b, char (*tok)[TOKEN_BYTES], size_t rows)
{
    char pair[TOKEN_BYTES + 8];
    for (size_t r = 0; r < rows; r++) {
        append(b, r % 2 ? "1" : "0");
        for (size_t c = 0; c < COLS; c++) {
            const char *t = tok[r * COLS + c];
            if (t[0] == '\0')
                continue;
            snprintf(pair, sizeof pair, " %zu:%s", c + 1, t);
            append(b, pair);
        }
        append(b, "\n");
    }
}

/* application/x-recordio-protobuf as SageMaker's SDK writes a dense matrix:
 * a frame per row, features["values"] a packed float32 tensor, NaN missing. */
static void build_recordio(sms_buf_t *b, char (*tok)[TOKEN_BYTES], size_t rows)
{
    for (size_t r = 0; r < rows; r++) {
        float v[COLS];
        for (size_t c = 0; c < COLS; c++)
            v[c] = tok[r * COLS + c][0] ? strtof(tok[r * COLS + c], NULL) : NAN;
        /* 0a <entry> 0a 06 "values" 12 <value> 12 <tensor> 0a <4*COLS> floats */
        const unsigned char head[] = {0x0a, 4 * COLS + 14, 0x0a, 6,       'v',  'a',
                                      'l',  'u',           'e',  's',     0x12, 4 * COLS + 4,
                                      0x12, 4 * COLS + 2,  0x0a, 4 * COLS};
        size_t mark;
        if (sms_recordio_frame_begin(b, &mark) < 0 || sms_buf_append(b, head, sizeof head) < 0 ||
            sms_buf_append(b, v, sizeof v) < 0 || sms_recordio_frame_end(b, mark) < 0) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
    }
}

/* application/jsonlines as SageMaker's JSONLinesSerializer writes a list of
 * lists: one [...] per line, null for missing. */
static void build_jsonlines(sms_buf_t *b, char (*tok)[TOKEN_BYTES], size_t rows)
{
    for (size_t r = 0; r < rows; r++) {
        append(b, "[");
        for (size_t c = 0; c < COLS; c++) {
            const char *t = tok[r * COLS + c];
            if (c)
                append(b, ", ");
            append(b, t[0] == '\0' ? "null" : t);
        }
        append(b, "]\n");
    }
}

/* libsvm at the model's width, as the server always decodes it (num_feature);
 * a free width costs a first pass for the largest index (tests, fuzz). */
static int libsvm_decode_at_width(const char *body, size_t len, size_t expect_cols,
                                  sms_matrix_t *out, sms_error_t *err)
{
    (void)expect_cols;
    return sms_libsvm_decode(body, len, COLS, out, err);
}

static void build_body(sms_buf_t *b, body_kind_t kind, char (*tok)[TOKEN_BYTES], size_t rows)
{
    sms_buf_reset(b);
    if (kind == BODY_JSONLINES) {
        build_jsonlines(b, tok, rows);
        return;
    }
    if (kind == BODY_RECORDIO) {
        build_recordio(b, tok, rows);
        return;
    }
    if (kind == BODY_LIBSVM) {
        build_libsvm(b, tok, rows);
        return;
    }
    if (kind != BODY_CSV)
        append(b, "{\"instances\": [");
    for (size_t r = 0; r < rows; r++) {
        if (kind == BODY_JSON_LISTS)
            append(b, r ? ", [" : "[");
        else if (kind == BODY_JSON_OBJECTS)
            append(b, r ? ", {\"features\": [" : "{\"features\": [");
        for (size_t c = 0; c < COLS; c++) {
            const char *t = tok[r * COLS + c];
            if (c)
                append(b, kind == BODY_CSV ? "," : ", ");
            append(b, kind != BODY_CSV && t[0] == '\0' ? "null" : t);
        }
        append(b, kind == BODY_CSV ? "\n" : kind == BODY_JSON_LISTS ? "]" : "]}");
    }
    if (kind != BODY_CSV)
        append(b, "]}");
}

typedef struct result {
    double mbs, mfloats, ns_value;
} result_t;

static result_t run_decoder(const char *name, sms_decode_fn decode, const sms_buf_t *body,
                            size_t rows, uint64_t want, int reps)
{
    sms_matrix_t m = {0};
    sms_error_t err = {0};
    double *t = malloc(sizeof *t * (size_t)reps);
    for (int i = -1; i < reps; i++) { /* -1: warm-up, grows the matrix */
        double t0 = now_s();
        int rc = decode(body->data, body->len, 0, &m, &err);
        double dt = now_s() - t0;
        if (rc != 0) {
            fprintf(stderr, "%s: decode failed: %s\n", name, err.msg);
            exit(1);
        }
        if (m.rows != rows || m.cols != COLS || checksum(m.values, rows * COLS) != want) {
            fprintf(stderr, "%s: wrong matrix (%zu x %zu)\n", name, m.rows, m.cols);
            exit(1);
        }
        if (i >= 0)
            t[i] = dt;
    }
    double med = median(t, reps);
    free(t);
    sms_matrix_free(&m);
    double values = (double)(rows * COLS);
    return (result_t){body->len / med / 1e6, values / med / 1e6, med * 1e9 / values};
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : DEFAULT_REPS;
    size_t rows = argc > 2 ? (size_t)atol(argv[2]) : DEFAULT_ROWS;
    if (reps < 1 || rows < 1) {
        fprintf(stderr, "usage: %s [repetitions] [rows]\n", argv[0]);
        return 2;
    }
    size_t n = rows * COLS;
    char(*tok)[TOKEN_BYTES] = malloc(n * sizeof *tok);
    float *ref = malloc(n * sizeof *ref);
    if (!tok || !ref)
        return 1;
    for (size_t i = 0; i < n; i++)
        make_token(tok[i]);

    /* The yardstick: strtof alone over the same (already split) tokens. */
    double *t = malloc(sizeof *t * (size_t)reps);
    for (int i = -1; i < reps; i++) {
        double t0 = now_s();
        for (size_t k = 0; k < n; k++)
            ref[k] = tok[k][0] ? strtof(tok[k], NULL) : NAN;
        if (i >= 0)
            t[i] = now_s() - t0;
    }
    double strtof_ns = median(t, reps) * 1e9 / (double)n;
    free(t);
    uint64_t want = checksum(ref, n);

    static const struct {
        const char *name;
        body_kind_t kind;
        sms_decode_fn decode;
        double target_mbs;
    } formats[] = {
        {"csv", BODY_CSV, sms_csv_decode, CSV_TARGET_MBS},
        {"json [[...]]", BODY_JSON_LISTS, sms_json_decode, JSON_TARGET_MBS},
        {"json [{features}]", BODY_JSON_OBJECTS, sms_json_decode, JSON_TARGET_MBS},
        {"jsonlines [...]", BODY_JSONLINES, sms_jsonlines_decode, JSON_TARGET_MBS},
        {"libsvm", BODY_LIBSVM, libsvm_decode_at_width, LIBSVM_TARGET_MBS},
        {"recordio dense", BODY_RECORDIO, sms_recordio_decode, RECORDIO_TARGET_MBS},
    };
    printf("decode: %zu rows x %d values, medians of %d runs (mix: 5%% missing, 30%% 0.123456, "
           "15%% 12.5, 15%% -3, 10%% 1e-05,\n        17%% float32 reprs, 8%% float64 reprs)\n",
           rows, COLS, reps);
    printf("%-18s %8s %8s %9s %9s %9s %16s\n", "format", "MB", "MB/s", "Mfloat/s", "ns/value",
           "x strtof", "target");
    printf("%-18s %8s %8s %9.1f %9.2f %9.2f %16s\n", "strtof (tokens)", "-", "-", 1e3 / strtof_ns,
           strtof_ns, 1.0, "-");
    sms_buf_t body = {0};
    double csv_ns_value = 0;
    for (size_t f = 0; f < sizeof formats / sizeof formats[0]; f++) {
        build_body(&body, formats[f].kind, tok, rows);
        result_t r = run_decoder(formats[f].name, formats[f].decode, &body, rows, want, reps);
        printf("%-18s %8.2f %8.1f %9.1f %9.2f %9.2f %8.0f MB/s %s\n", formats[f].name,
               body.len / 1e6, r.mbs, r.mfloats, r.ns_value, strtof_ns / r.ns_value,
               formats[f].target_mbs, r.mbs >= formats[f].target_mbs ? "PASS" : "MISS");
        if (formats[f].kind == BODY_CSV)
            csv_ns_value = r.ns_value;
        else if (formats[f].kind == BODY_RECORDIO)
            printf("%-18s %.2f ns/value vs csv %.2f: %s\n", "recordio vs csv", r.ns_value,
                   csv_ns_value, r.ns_value <= csv_ns_value ? "PASS" : "MISS");
    }
    sms_buf_free(&body);
    free(tok);
    free(ref);
    return 0;
}
