/* Latency and traffic metrics of the endpoint/variant. Request threads only
 * do relaxed atomic adds (counters, log-linear histograms); readers copy the
 * atomics without stopping them, for the Prometheus exposition on
 * GET /metrics and for the CloudWatch EMF lines that a background thread
 * writes to stdout once per interval and at shutdown. */
#define _GNU_SOURCE
#include "smserve/metrics.h"
#include "smserve/env.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- the histogram ---- */

#define SUB             ((size_t)1 << SMS_HIST_SUB_BITS)
#define OVERFLOW_BUCKET ((size_t)SMS_HIST_BUCKETS - 1)

size_t sms_hist_bucket(uint64_t us)
{
    if (us < SUB)
        return (size_t)us;
    int top = 63 - __builtin_clzll(us);
    if (top >= SMS_HIST_TOP_BITS)
        return OVERFLOW_BUCKET;
    /* group 1 holds [64, 128) with width 1, group g [2^(g+5), 2^(g+6))
     * with width 2^(g-1): the next 6 bits under the top one pick the
     * sub-bucket. */
    size_t group = (size_t)(top - SMS_HIST_SUB_BITS + 1);
    return group * SUB + (size_t)((us >> (top - SMS_HIST_SUB_BITS)) & (SUB - 1));
}

uint64_t sms_hist_lower(size_t bucket)
{
    if (bucket < SUB)
        return bucket;
    if (bucket >= OVERFLOW_BUCKET)
        return (uint64_t)1 << SMS_HIST_TOP_BITS;
    size_t group = bucket / SUB;
    return (uint64_t)(SUB + bucket % SUB) << (group - 1);
}

uint64_t sms_hist_upper(size_t bucket)
{
    return bucket >= OVERFLOW_BUCKET ? UINT64_MAX : sms_hist_lower(bucket + 1);
}

double sms_hist_midpoint(size_t bucket)
{
    uint64_t lower = sms_hist_lower(bucket);
    if (bucket >= OVERFLOW_BUCKET)
        return (double)lower;
    /* Values are integers, so the bucket holds lower .. upper - 1: its
     * midpoint is exact for width 1 and at most (w - 1) / 2 from any value,
     * against a lower edge of at least 64 w: an error under 1/128. */
    return (double)lower + (double)(sms_hist_upper(bucket) - lower - 1) / 2.0;
}

void sms_hist_record(sms_hist_t *h, uint64_t us)
{
    atomic_fetch_add_explicit(&h->counts[sms_hist_bucket(us)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

void sms_hist_snapshot(const sms_hist_t *h, sms_hist_snapshot_t *out)
{
    uint64_t total = 0;
    for (size_t b = 0; b < SMS_HIST_BUCKETS; b++) {
        /* the atomics are only read; the cast drops const for C11's
         * atomic_load, which takes a non-const pointer */
        out->counts[b] =
            atomic_load_explicit((_Atomic uint64_t *)&h->counts[b], memory_order_relaxed);
        total += out->counts[b];
    }
    out->count = total;
    out->sum_us = atomic_load_explicit((_Atomic uint64_t *)&h->sum_us, memory_order_relaxed);
}

static uint64_t sub_sat(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

void sms_hist_delta(const sms_hist_snapshot_t *now, const sms_hist_snapshot_t *before,
                    sms_hist_snapshot_t *out)
{
    uint64_t total = 0;
    for (size_t b = 0; b < SMS_HIST_BUCKETS; b++) {
        out->counts[b] = sub_sat(now->counts[b], before->counts[b]);
        total += out->counts[b];
    }
    out->count = total;
    out->sum_us = sub_sat(now->sum_us, before->sum_us);
}

static uint64_t hist_total(const sms_hist_snapshot_t *s)
{
    uint64_t total = 0;
    for (size_t b = 0; b < SMS_HIST_BUCKETS; b++)
        total += s->counts[b];
    return total;
}

/* The rank (1 .. n) of the q-quantile among n values. */
static uint64_t quantile_rank(double q, uint64_t n)
{
    if (!(q > 0)) /* also NaN */
        return 1;
    if (q > 1)
        q = 1;
    double r = ceil(q * (double)n);
    if (r < 1)
        return 1;
    return r >= (double)n ? n : (uint64_t)r;
}

double sms_hist_quantile(const sms_hist_snapshot_t *s, double q)
{
    uint64_t n = hist_total(s);
    if (!n)
        return 0;
    uint64_t rank = quantile_rank(q, n), seen = 0;
    for (size_t b = 0; b < SMS_HIST_BUCKETS; b++) {
        seen += s->counts[b];
        if (seen >= rank)
            return sms_hist_midpoint(b);
    }
    return sms_hist_midpoint(OVERFLOW_BUCKET);
}

/* CloudWatch computes a metric's statistics from the values of an EMF
 * array, and takes at most 100 of them. So an interval with up to 100
 * invocations gives one value per invocation (its bucket's midpoint), and a
 * busier one the histogram's quantiles at i / 99, i = 0 .. 99 (min to max):
 * equally weighted values whose percentile p, read by interpolating at
 * position p * 99, is the histogram's p-quantile, and read by nearest rank
 * lands within 0.01 of p (exactly on it for p90 and p99), so p50 and p99
 * stay within the histogram's 1/128 plus that sampling step. Quantiles at
 * (i + 0.5) / 100 would put a nearest-rank p99 at 0.985, 10% low on a
 * typical latency tail. Fills vals (room for 100) and returns how many;
 * 0 when empty. */
#define EMF_MAX_VALUES 100

static size_t hist_values(const sms_hist_snapshot_t *s, double *vals)
{
    uint64_t n = hist_total(s);
    size_t k = 0;
    if (n <= EMF_MAX_VALUES) {
        for (size_t b = 0; b < SMS_HIST_BUCKETS && k < n; b++)
            for (uint64_t i = 0; i < s->counts[b]; i++)
                vals[k++] = sms_hist_midpoint(b);
        return k;
    }
    size_t b = 0;
    uint64_t seen = s->counts[0];
    for (; k < EMF_MAX_VALUES; k++) {
        uint64_t rank = quantile_rank((double)k / (EMF_MAX_VALUES - 1), n);
        while (seen < rank && b < OVERFLOW_BUCKET)
            seen += s->counts[++b];
        vals[k] = sms_hist_midpoint(b);
    }
    return k;
}

/* ---- configuration ---- */

static int env_name(const char *var, const char *fallback, bool is_namespace, char *out, size_t cap,
                    sms_error_t *err)
{
    const char *v = getenv(var);
    if (!v || !*v)
        v = fallback;
    size_t len = strlen(v);
    if (len >= cap)
        return sms_error_set(err, 500, "invalid %s: longer than %zu characters", var, cap - 1);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e)
            return sms_error_set(err, 500, "invalid %s: expected printable ASCII characters only",
                                 var);
    if (is_namespace && (v[0] == ':' || !strncmp(v, "AWS/", 4)))
        return sms_error_set(err, 500,
                             "invalid %s=\"%.64s\": a CloudWatch namespace may not start with "
                             "':' or \"AWS/\"",
                             var, v);
    memcpy(out, v, len + 1);
    return 0;
}

int sms_metrics_config_from_env(sms_metrics_config_t *cfg, sms_error_t *err)
{
    memset(cfg, 0, sizeof *cfg);
    if (env_name("SMSERVE_ENDPOINT_NAME", "local", false, cfg->endpoint, sizeof cfg->endpoint,
                 err) < 0 ||
        env_name("SMSERVE_VARIANT_NAME", "AllTraffic", false, cfg->variant, sizeof cfg->variant,
                 err) < 0 ||
        env_name("SMSERVE_METRICS_NAMESPACE", "smserve", true, cfg->namespace_,
                 sizeof cfg->namespace_, err) < 0)
        return -1;
    long interval = 60;
    if (sms_env_long("SMSERVE_METRICS_INTERVAL", 0, 3600, &interval, err) < 0)
        return -1;
    cfg->emf_interval_s = (int)interval;
    return 0;
}

/* ---- the registry ---- */

/* Rows per request in power-of-two buckets: rows_le[k] counts requests of
 * at most 2^k rows (and more than 2^(k-1)), the last one those over 2^20. */
#define ROWS_LE_LOG2_MAX 20
#define ROWS_BUCKETS     (ROWS_LE_LOG2_MAX + 2)

/* Everything recorded under one label set. There is one today (endpoint,
 * variant); a model label would make this an array with a lookup by model
 * in sms_metrics_record and a loop in the exposition. */
typedef struct series {
    char labels[640]; /* Prometheus label pairs, escaped: endpoint="..",variant=".." */
    _Atomic uint64_t invocations, errors_4xx, errors_5xx;
    _Atomic uint64_t request_bytes, response_bytes, rows;
    _Atomic uint64_t rows_le[ROWS_BUCKETS];
    sms_hist_t model, overhead;
} series_t;

/* What the previous EMF line reported, to give the next one deltas. */
typedef struct emf_baseline {
    uint64_t invocations, errors_4xx, errors_5xx, written, dropped;
    sms_hist_snapshot_t model, overhead;
} emf_baseline_t;

struct sms_metrics {
    sms_metrics_config_t cfg;
    series_t series;
    _Atomic uint64_t setup_us;
    _Atomic bool setup_set;
    void (*capture_read)(void *arg, sms_capture_counts_t *out);
    void *capture_arg;

    pthread_mutex_t emf_mu; /* serialises sms_metrics_emf: guards prev, now, delta */
    emf_baseline_t prev, now;
    sms_hist_snapshot_t delta;
    bool setup_reported;

    pthread_mutex_t thread_mu; /* guards running, stopping; cv wakes the thread */
    pthread_cond_t cv;
    pthread_t thread;
    bool running, stopping;
};

/* Appends s as a Prometheus label value: \, " and newline escaped. */
static void escape_label(char *out, size_t cap, size_t *len, const char *s)
{
    for (; *s && *len + 3 < cap; s++) {
        if (*s == '\\' || *s == '"' || *s == '\n') {
            out[(*len)++] = '\\';
            out[(*len)++] = *s == '\n' ? 'n' : *s;
        } else {
            out[(*len)++] = *s;
        }
    }
    out[*len] = '\0';
}

static void build_labels(series_t *s, const char *endpoint, const char *variant)
{
    size_t len = 0, cap = sizeof s->labels;
    const char *parts[] = {"endpoint=\"", endpoint, "\",variant=\"", variant, "\""};
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        if (i % 2) {
            escape_label(s->labels, cap, &len, parts[i]);
        } else {
            size_t n = strlen(parts[i]);
            memcpy(s->labels + len, parts[i], n + 1);
            len += n;
        }
    }
}

sms_metrics_t *sms_metrics_create(const sms_metrics_config_t *cfg)
{
    sms_metrics_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->cfg = *cfg;
    m->cfg.endpoint[sizeof m->cfg.endpoint - 1] = '\0';
    m->cfg.variant[sizeof m->cfg.variant - 1] = '\0';
    m->cfg.namespace_[sizeof m->cfg.namespace_ - 1] = '\0';
    build_labels(&m->series, m->cfg.endpoint, m->cfg.variant);

    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr))
        goto fail;
    /* a monotonic clock, so a wall-clock step neither stalls nor floods EMF */
    int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (!rc)
        rc = pthread_cond_init(&m->cv, &attr);
    pthread_condattr_destroy(&attr);
    if (rc)
        goto fail;
    pthread_mutex_init(&m->emf_mu, NULL);
    pthread_mutex_init(&m->thread_mu, NULL);
    return m;
fail:
    free(m);
    return NULL;
}

void sms_metrics_free(sms_metrics_t *m)
{
    if (!m)
        return;
    sms_metrics_stop_emf(m);
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->emf_mu);
    pthread_mutex_destroy(&m->thread_mu);
    free(m);
}

static void add(_Atomic uint64_t *counter, uint64_t n)
{
    atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

static uint64_t load(_Atomic uint64_t *counter)
{
    return atomic_load_explicit(counter, memory_order_relaxed);
}

void sms_metrics_record(sms_metrics_t *m, const sms_invocation_t *inv)
{
    if (!m)
        return;
    series_t *s = &m->series;
    add(&s->invocations, 1);
    if (inv->status >= 400 && inv->status < 500)
        add(&s->errors_4xx, 1);
    else if (inv->status >= 500 && inv->status < 600)
        add(&s->errors_5xx, 1);
    add(&s->request_bytes, inv->request_bytes);
    add(&s->response_bytes, inv->response_bytes);
    add(&s->rows, inv->rows);
    size_t k = inv->rows <= 1 ? 0 : (size_t)(64 - __builtin_clzll(inv->rows - 1));
    add(&s->rows_le[k < ROWS_BUCKETS ? k : ROWS_BUCKETS - 1], 1);
    sms_hist_record(&s->model, inv->model_us);
    sms_hist_record(&s->overhead, inv->overhead_us);
}

void sms_metrics_set_setup_us(sms_metrics_t *m, uint64_t us)
{
    if (!m)
        return;
    atomic_store_explicit(&m->setup_us, us, memory_order_relaxed);
    atomic_store_explicit(&m->setup_set, true, memory_order_release);
}

void sms_metrics_set_capture_source(sms_metrics_t *m,
                                    void (*read)(void *arg, sms_capture_counts_t *out), void *arg)
{
    m->capture_read = read;
    m->capture_arg = arg;
}

static void read_capture(sms_metrics_t *m, sms_capture_counts_t *out)
{
    memset(out, 0, sizeof *out);
    if (m->capture_read)
        m->capture_read(m->capture_arg, out);
}

/* ---- Prometheus text exposition ---- */

/* Appends us as seconds in exact decimal ("0.00125", "67.108864", "3"):
 * no rounding, so bucket edges and sums print exactly. */
static int put_seconds(sms_buf_t *out, uint64_t us)
{
    uint64_t frac = us % 1000000;
    if (!frac)
        return sms_buf_printf(out, "%" PRIu64, us / 1000000);
    char digits[8];
    snprintf(digits, sizeof digits, "%06" PRIu64, frac);
    size_t n = 6;
    while (digits[n - 1] == '0')
        n--;
    digits[n] = '\0';
    return sms_buf_printf(out, "%" PRIu64 ".%s", us / 1000000, digits);
}

static int put_family(sms_buf_t *out, const char *name, const char *type, const char *help)
{
    return sms_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int put_counter(sms_buf_t *out, const series_t *s, const char *name, const char *help,
                       uint64_t value)
{
    return put_family(out, name, "counter", help) |
           sms_buf_printf(out, "%s{%s} %" PRIu64 "\n", name, s->labels, value);
}

/* The edges of the exposed latency buckets, in us: 4 per power of two
 * (2^e times 1, 1.25, 1.5, 1.75, where an integer) from 1 us to 2^26 us
 * (67 s). Each is a lower edge of a fine bucket, so the cumulative counts
 * are exact. A value v counts under edge E when v < E: recorded latencies
 * are truncated to whole microseconds, so v < E is "latency < E us", which
 * for a continuous latency is Prometheus's "<= le". */
#define LATENCY_EDGES_MAX 112

static size_t latency_edges(uint64_t *edges)
{
    size_t n = 0;
    for (int e = 0; e <= 26; e++)
        for (uint64_t quarter = 4; quarter < 8 && !(e == 26 && quarter > 4); quarter++)
            if (((quarter << e) & 3) == 0)
                edges[n++] = (quarter << e) >> 2;
    return n;
}

static const double QUANTILES[] = {0.5, 0.9, 0.99, 0.999};
static const char *const QUANTILE_LABELS[] = {"0.5", "0.9", "0.99", "0.999"};

static int put_latency(sms_buf_t *out, const series_t *s, const sms_hist_t *h,
                       sms_hist_snapshot_t *snap, const char *name, const char *what)
{
    sms_hist_snapshot(h, snap);
    uint64_t edges[LATENCY_EDGES_MAX];
    size_t num_edges = latency_edges(edges);
    int rc = sms_buf_printf(out, "# HELP %s_seconds %s, in seconds.\n# TYPE %s_seconds histogram\n",
                            name, what, name);
    size_t b = 0;
    uint64_t below = 0;
    for (size_t i = 0; i < num_edges; i++) {
        while (b < OVERFLOW_BUCKET && sms_hist_upper(b) <= edges[i])
            below += snap->counts[b++];
        rc |= sms_buf_printf(out, "%s_seconds_bucket{%s,le=\"", name, s->labels);
        rc |= put_seconds(out, edges[i]);
        rc |= sms_buf_printf(out, "\"} %" PRIu64 "\n", below);
    }
    rc |= sms_buf_printf(out, "%s_seconds_bucket{%s,le=\"+Inf\"} %" PRIu64 "\n", name, s->labels,
                         snap->count);
    rc |= sms_buf_printf(out, "%s_seconds_sum{%s} ", name, s->labels);
    rc |= put_seconds(out, snap->sum_us);
    rc |= sms_buf_printf(out, "\n%s_seconds_count{%s} %" PRIu64 "\n", name, s->labels, snap->count);

    rc |= sms_buf_printf(out,
                         "# HELP %s_quantile_seconds %s since start, p50 to p99.9 from the "
                         "histogram (within 0.8%%), in seconds.\n"
                         "# TYPE %s_quantile_seconds gauge\n",
                         name, what, name);
    for (size_t i = 0; i < sizeof QUANTILES / sizeof *QUANTILES; i++) {
        rc |= sms_buf_printf(out, "%s_quantile_seconds{%s,quantile=\"%s\"} ", name, s->labels,
                             QUANTILE_LABELS[i]);
        rc |= snap->count
                  ? sms_buf_printf(out, "%.9g\n", sms_hist_quantile(snap, QUANTILES[i]) / 1e6)
                  : sms_buf_printf(out, "NaN\n");
    }
    return rc ? -1 : 0;
}

static int put_rows(sms_buf_t *out, series_t *s)
{
    int rc = put_family(out, "smserve_request_rows", "histogram",
                        "Rows (records) per invocation request.");
    uint64_t below = 0;
    for (size_t k = 0; k < ROWS_BUCKETS; k++) {
        below += load(&s->rows_le[k]);
        if (k <= ROWS_LE_LOG2_MAX)
            rc |= sms_buf_printf(out,
                                 "smserve_request_rows_bucket{%s,le=\"%" PRIu64 "\"} %" PRIu64 "\n",
                                 s->labels, (uint64_t)1 << k, below);
        else
            rc |= sms_buf_printf(out, "smserve_request_rows_bucket{%s,le=\"+Inf\"} %" PRIu64 "\n",
                                 s->labels, below);
    }
    rc |= sms_buf_printf(out, "smserve_request_rows_sum{%s} %" PRIu64 "\n", s->labels,
                         load(&s->rows));
    rc |= sms_buf_printf(out, "smserve_request_rows_count{%s} %" PRIu64 "\n", s->labels, below);
    return rc ? -1 : 0;
}

int sms_metrics_prometheus(sms_metrics_t *m, sms_buf_t *out)
{
    series_t *s = &m->series;
    /* one snapshot (11 KB) reused for both histograms, off the stack of
     * whichever server thread serves the scrape */
    sms_hist_snapshot_t *snap = malloc(sizeof *snap);
    if (!snap)
        return -1;
    sms_capture_counts_t cap;
    read_capture(m, &cap);

    int rc = put_counter(out, s, "smserve_invocations_total", "Invocation requests answered.",
                         load(&s->invocations));
    rc |= put_family(out, "smserve_invocation_errors_total", "counter",
                     "Invocation requests answered with a 4xx or 5xx status.");
    rc |= sms_buf_printf(out, "smserve_invocation_errors_total{%s,class=\"4xx\"} %" PRIu64 "\n",
                         s->labels, load(&s->errors_4xx));
    rc |= sms_buf_printf(out, "smserve_invocation_errors_total{%s,class=\"5xx\"} %" PRIu64 "\n",
                         s->labels, load(&s->errors_5xx));
    rc |= put_counter(out, s, "smserve_request_bytes_total", "Invocation request body bytes.",
                      load(&s->request_bytes));
    rc |= put_counter(out, s, "smserve_response_bytes_total", "Invocation response body bytes.",
                      load(&s->response_bytes));
    rc |= put_counter(out, s, "smserve_rows_total", "Rows (records) in invocation requests.",
                      load(&s->rows));
    rc |= put_rows(out, s);
    rc |= put_latency(out, s, &s->model, snap, "smserve_model_latency",
                      "Time spent in the model per invocation (ModelLatency)");
    rc |= put_latency(out, s, &s->overhead, snap, "smserve_overhead_latency",
                      "Time per invocation outside the model: read, parse, encode, write "
                      "(OverheadLatency)");
    if (atomic_load_explicit(&m->setup_set, memory_order_acquire)) {
        rc |= put_family(out, "smserve_model_setup_seconds", "gauge",
                         "Time taken to load the model (ModelSetupTime), in seconds.");
        rc |= sms_buf_printf(out, "smserve_model_setup_seconds{%s} ", s->labels);
        rc |= put_seconds(out, load(&m->setup_us));
        rc |= sms_buf_printf(out, "\n");
    }
    rc |= put_counter(out, s, "smserve_capture_records_written_total",
                      "Data capture records written.", cap.written);
    rc |=
        put_counter(out, s, "smserve_capture_records_dropped_total",
                    "Data capture records dropped (queue full, disk full or paused).", cap.dropped);
    free(snap);
    return rc ? -1 : 0;
}

/* ---- CloudWatch Embedded Metric Format ---- */

/* Builds with jansson so that the line is valid JSON whatever the names
 * hold; ok turns false at the first allocation failure. */
static void set_new(json_t *obj, const char *key, json_t *value, bool *ok)
{
    if (json_object_set_new(obj, key, value) < 0)
        *ok = false;
}

static void append_new(json_t *arr, json_t *value, bool *ok)
{
    if (json_array_append_new(arr, value) < 0)
        *ok = false;
}

static json_t *number(double v)
{
    /* midpoints are whole or half microseconds: integers print without
     * ".0" */
    return v == floor(v) && v < 9e15 ? json_integer((json_int_t)v) : json_real(v);
}

static void declare(json_t *metrics, const char *name, const char *unit, bool *ok)
{
    json_t *d = json_object();
    set_new(d, "Name", json_string(name), ok);
    set_new(d, "Unit", json_string(unit), ok);
    append_new(metrics, d, ok);
}

static void put_count(json_t *root, json_t *metrics, const char *name, uint64_t value, bool *ok)
{
    declare(metrics, name, "Count", ok);
    set_new(root, name, json_integer((json_int_t)value), ok);
}

/* name as an array of values carrying the interval's distribution, and
 * undeclared namePXX members for Logs Insights; nothing when empty. */
static void put_distribution(json_t *root, json_t *metrics, const char *name,
                             const sms_hist_snapshot_t *delta, bool *ok)
{
    double vals[EMF_MAX_VALUES];
    size_t n = hist_values(delta, vals);
    if (!n)
        return;
    declare(metrics, name, "Microseconds", ok);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        append_new(arr, number(vals[i]), ok);
    set_new(root, name, arr, ok);
    static const char *const suffix[] = {"P50", "P90", "P99", "P999"};
    for (size_t i = 0; i < sizeof QUANTILES / sizeof *QUANTILES; i++) {
        char key[64];
        snprintf(key, sizeof key, "%s%s", name, suffix[i]);
        set_new(root, key, number(sms_hist_quantile(delta, QUANTILES[i])), ok);
    }
}

int sms_metrics_emf(sms_metrics_t *m, int64_t timestamp_ms, sms_buf_t *out)
{
    series_t *s = &m->series;
    pthread_mutex_lock(&m->emf_mu);
    emf_baseline_t *prev = &m->prev, *now = &m->now;
    now->invocations = load(&s->invocations);
    now->errors_4xx = load(&s->errors_4xx);
    now->errors_5xx = load(&s->errors_5xx);
    sms_capture_counts_t cap;
    read_capture(m, &cap);
    now->written = cap.written;
    now->dropped = cap.dropped;
    sms_hist_snapshot(&s->model, &now->model);
    sms_hist_snapshot(&s->overhead, &now->overhead);
    bool report_setup =
        !m->setup_reported && atomic_load_explicit(&m->setup_set, memory_order_acquire);

    bool ok = true;
    json_t *root = json_object(), *aws = json_object(), *directives = json_array();
    json_t *directive = json_object(), *dims = json_array(), *dim_set = json_array();
    json_t *metrics = json_array();
    set_new(root, "_aws", aws, &ok);
    set_new(aws, "Timestamp", json_integer((json_int_t)timestamp_ms), &ok);
    set_new(aws, "CloudWatchMetrics", directives, &ok);
    append_new(directives, directive, &ok);
    set_new(directive, "Namespace", json_string(m->cfg.namespace_), &ok);
    append_new(dim_set, json_string("EndpointName"), &ok);
    append_new(dim_set, json_string("VariantName"), &ok);
    append_new(dims, dim_set, &ok);
    set_new(directive, "Dimensions", dims, &ok);
    set_new(directive, "Metrics", metrics, &ok);
    set_new(root, "EndpointName", json_string(m->cfg.endpoint), &ok);
    set_new(root, "VariantName", json_string(m->cfg.variant), &ok);

    put_count(root, metrics, "Invocations", sub_sat(now->invocations, prev->invocations), &ok);
    put_count(root, metrics, "Invocation4XXErrors", sub_sat(now->errors_4xx, prev->errors_4xx),
              &ok);
    put_count(root, metrics, "Invocation5XXErrors", sub_sat(now->errors_5xx, prev->errors_5xx),
              &ok);
    sms_hist_delta(&now->model, &prev->model, &m->delta);
    put_distribution(root, metrics, "ModelLatency", &m->delta, &ok);
    sms_hist_delta(&now->overhead, &prev->overhead, &m->delta);
    put_distribution(root, metrics, "OverheadLatency", &m->delta, &ok);
    if (report_setup) {
        declare(metrics, "ModelSetupTime", "Microseconds", &ok);
        set_new(root, "ModelSetupTime", json_integer((json_int_t)load(&m->setup_us)), &ok);
    }
    if (m->capture_read) {
        put_count(root, metrics, "CaptureRecordsWritten", sub_sat(now->written, prev->written),
                  &ok);
        put_count(root, metrics, "CaptureRecordsDropped", sub_sat(now->dropped, prev->dropped),
                  &ok);
    }

    char *text = ok ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    int rc = -1;
    if (text && sms_buf_printf(out, "%s\n", text) == 0) {
        rc = 0;
        *prev = *now;
        if (report_setup)
            m->setup_reported = true;
    }
    free(text);
    pthread_mutex_unlock(&m->emf_mu);
    return rc;
}

/* ---- the EMF thread ---- */

static void write_line(sms_metrics_t *m, sms_buf_t *line)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    sms_buf_reset(line);
    if (sms_metrics_emf(m, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, line) < 0)
        return;
    /* one write(2) per line, so lines never interleave with other writers;
     * the loop only finishes a write cut short by a signal */
    for (size_t done = 0; done < line->len;) {
        ssize_t n = write(STDOUT_FILENO, line->data + done, line->len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        done += (size_t)n;
    }
}

static void *emf_main(void *arg)
{
    sms_metrics_t *m = arg;
    sms_buf_t line = {0};
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    pthread_mutex_lock(&m->thread_mu);
    for (;;) {
        /* fixed-rate deadlines: the lines do not drift by the time taken
         * to write them */
        deadline.tv_sec += m->cfg.emf_interval_s;
        int rc = 0;
        while (!m->stopping && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&m->cv, &m->thread_mu, &deadline);
        bool last = m->stopping;
        pthread_mutex_unlock(&m->thread_mu);
        write_line(m, &line);
        if (last)
            break;
        pthread_mutex_lock(&m->thread_mu);
    }
    sms_buf_free(&line);
    return NULL;
}

int sms_metrics_start_emf(sms_metrics_t *m)
{
    if (m->cfg.emf_interval_s <= 0)
        return 0;
    pthread_mutex_lock(&m->thread_mu);
    int rc = 0;
    if (!m->running) {
        m->stopping = false;
        rc = pthread_create(&m->thread, NULL, emf_main, m) ? -1 : 0;
        m->running = rc == 0;
    }
    pthread_mutex_unlock(&m->thread_mu);
    return rc;
}

void sms_metrics_stop_emf(sms_metrics_t *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->thread_mu);
    bool running = m->running;
    if (running) {
        m->stopping = true;
        pthread_cond_signal(&m->cv);
    }
    pthread_mutex_unlock(&m->thread_mu);
    if (!running)
        return;
    pthread_join(m->thread, NULL);
    pthread_mutex_lock(&m->thread_mu);
    m->running = false;
    m->stopping = false;
    pthread_mutex_unlock(&m->thread_mu);
}
