/* Latency and traffic metrics of the endpoint/variant, and of each model of
 * a multi-model endpoint. Request threads only do relaxed atomic adds
 * (counters, log-linear histograms); readers copy the atomics without
 * stopping them, for the Prometheus exposition on GET /metrics and for the
 * CloudWatch EMF lines that a background thread writes to stdout once per
 * interval and at shutdown. */
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

#define OVERFLOW_BUCKET ((size_t)SMS_HIST_BUCKETS - 1)

/* The log-linear layout for sub_bits s (6 for sms_hist_t, 4 for a model
 * series): values under 2^s have a bucket each; from there each power of
 * two [2^e, 2^(e+1)) is cut into 2^s equal sub-buckets, up to 2^27 us;
 * the overflow bucket holds the rest. */
static size_t ll_overflow(unsigned sub_bits)
{
    return (size_t)(SMS_HIST_TOP_BITS - (int)sub_bits + 1) << sub_bits;
}

static size_t ll_bucket(uint64_t us, unsigned sub_bits)
{
    uint64_t sub = (uint64_t)1 << sub_bits;
    if (us < sub)
        return (size_t)us;
    int top = 63 - __builtin_clzll(us);
    if (top >= SMS_HIST_TOP_BITS)
        return ll_overflow(sub_bits);
    /* group 1 holds [2^s, 2^(s+1)) with width 1, group g
     * [2^(g+s-1), 2^(g+s)) with width 2^(g-1): the s bits under the top
     * one pick the sub-bucket. */
    size_t group = (size_t)(top - (int)sub_bits + 1);
    return (group << sub_bits) + (size_t)((us >> (top - (int)sub_bits)) & (sub - 1));
}

static uint64_t ll_lower(size_t bucket, unsigned sub_bits)
{
    size_t sub = (size_t)1 << sub_bits;
    if (bucket < sub)
        return bucket;
    if (bucket >= ll_overflow(sub_bits))
        return (uint64_t)1 << SMS_HIST_TOP_BITS;
    size_t group = bucket >> sub_bits;
    return (uint64_t)(sub + (bucket & (sub - 1))) << (group - 1);
}

static double ll_midpoint(size_t bucket, unsigned sub_bits)
{
    uint64_t lower = ll_lower(bucket, sub_bits);
    if (bucket >= ll_overflow(sub_bits))
        return (double)lower;
    /* Values are integers, so the bucket holds lower .. upper - 1: its
     * midpoint is exact for width 1 and at most (w - 1) / 2 from any value,
     * against a lower edge of at least 2^s w: an error under 1/2^(s+1). */
    return (double)lower + (double)(ll_lower(bucket + 1, sub_bits) - lower - 1) / 2.0;
}

size_t sms_hist_bucket(uint64_t us)
{
    return ll_bucket(us, SMS_HIST_SUB_BITS);
}

uint64_t sms_hist_lower(size_t bucket)
{
    return ll_lower(bucket, SMS_HIST_SUB_BITS);
}

uint64_t sms_hist_upper(size_t bucket)
{
    return bucket >= OVERFLOW_BUCKET ? UINT64_MAX : sms_hist_lower(bucket + 1);
}

double sms_hist_midpoint(size_t bucket)
{
    return ll_midpoint(bucket, SMS_HIST_SUB_BITS);
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

/* Bucket counts of either layout, for quantiles and EMF values. */
typedef struct hist_view {
    const uint64_t *counts;
    size_t buckets; /* the last is the overflow bucket */
    unsigned sub_bits;
} hist_view_t;

static hist_view_t snapshot_view(const sms_hist_snapshot_t *s)
{
    return (hist_view_t){s->counts, SMS_HIST_BUCKETS, SMS_HIST_SUB_BITS};
}

static uint64_t view_total(const hist_view_t *v)
{
    uint64_t total = 0;
    for (size_t b = 0; b < v->buckets; b++)
        total += v->counts[b];
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

static double view_quantile(const hist_view_t *v, double q)
{
    uint64_t n = view_total(v);
    if (!n)
        return 0;
    uint64_t rank = quantile_rank(q, n), seen = 0;
    for (size_t b = 0; b < v->buckets; b++) {
        seen += v->counts[b];
        if (seen >= rank)
            return ll_midpoint(b, v->sub_bits);
    }
    return ll_midpoint(v->buckets - 1, v->sub_bits);
}

double sms_hist_quantile(const sms_hist_snapshot_t *s, double q)
{
    hist_view_t v = snapshot_view(s);
    return view_quantile(&v, q);
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

static size_t view_values(const hist_view_t *v, double *vals)
{
    uint64_t n = view_total(v);
    size_t k = 0;
    if (n <= EMF_MAX_VALUES) {
        for (size_t b = 0; b < v->buckets && k < n; b++)
            for (uint64_t i = 0; i < v->counts[b]; i++)
                vals[k++] = ll_midpoint(b, v->sub_bits);
        return k;
    }
    size_t b = 0;
    uint64_t seen = v->counts[0];
    for (; k < EMF_MAX_VALUES; k++) {
        uint64_t rank = quantile_rank((double)k / (EMF_MAX_VALUES - 1), n);
        while (seen < rank && b < v->buckets - 1)
            seen += v->counts[++b];
        vals[k] = ll_midpoint(b, v->sub_bits);
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

/* Everything recorded for the endpoint/variant, whatever the model. */
typedef struct series {
    char labels[640]; /* Prometheus label pairs, escaped: endpoint="..",variant=".." */
    _Atomic uint64_t invocations, errors_4xx, errors_5xx;
    _Atomic uint64_t request_bytes, response_bytes, rows;
    _Atomic uint64_t rows_le[ROWS_BUCKETS];
    sms_hist_t model, overhead;
} series_t;

/* A model series' histogram. The fine buckets (the log-linear layout with
 * 16 sub-buckets per power of two: within 1/32) count since the last EMF
 * line, which empties them; pow2[k] counts, since the series was added,
 * the values of bit length k (0 for 0 us, k for [2^(k-1), 2^k)), the last
 * one 2^27 us and more: the Prometheus buckets, one per power of two. So
 * the exposition reads 30 counters, not 385, and EMF needs no 3 KB
 * baseline per histogram. */
#define MODEL_SUB_BITS 4
#define MODEL_BUCKETS  (((SMS_HIST_TOP_BITS - MODEL_SUB_BITS + 1) << MODEL_SUB_BITS) + 1)
#define POW2_BUCKETS   (SMS_HIST_TOP_BITS + 2)

typedef struct model_hist {
    _Atomic uint64_t fine[MODEL_BUCKETS];
    _Atomic uint64_t pow2[POW2_BUCKETS];
    _Atomic uint64_t sum_us;
} model_hist_t;

#define MODEL_NAME_MAX 1024                 /* bytes of a model's name */
#define CW_NAME_MAX    1024                 /* characters of a CloudWatch dimension value */
#define PROM_NAME_MAX  (3 * MODEL_NAME_MAX) /* every byte as U+FFFD */
/* Removed series waiting for the next EMF line; beyond, they are folded
 * away (about 7 MB of them). */
#define RETIRED_MAX 1024

struct sms_model_series {
    sms_model_series_t *prev, *next; /* in the live or the removed list, under models_mu */
    _Atomic uint64_t invocations, errors_4xx, errors_5xx; /* since added */
    uint64_t emf_invocations, emf_4xx, emf_5xx;           /* what EMF lines have written */
    model_hist_t model, overhead;
    const char *cw_name; /* the CloudWatch form, in names */
    char names[];        /* the Prometheus label value, escaped, NUL, the CloudWatch form, NUL */
};

/* What the header states; a change to the series must update it there. */
_Static_assert(sizeof(void *) != 8 || sizeof(struct sms_model_series) == 6712,
               "update the bytes per model series in metrics.h");

/* What the previous EMF line reported, to give the next one deltas. */
typedef struct emf_baseline {
    uint64_t invocations, errors_4xx, errors_5xx, written, dropped, cache_hits;
    sms_hist_snapshot_t model, overhead, loading, unloading, waiting;
} emf_baseline_t;

struct sms_metrics {
    sms_metrics_config_t cfg;
    series_t series;
    _Atomic uint64_t setup_us;
    _Atomic bool setup_set;
    void (*capture_read)(void *arg, sms_capture_counts_t *out);
    void *capture_arg;

    /* multi-model endpoints */
    _Atomic bool multi_model;
    _Atomic uint64_t loaded_models, cache_hits, cache_misses;
    sms_hist_t loading, unloading, waiting;
    pthread_mutex_t models_mu; /* guards the two lists, their counts, the series' emf_ fields */
    sms_model_series_t *models, *retired; /* live; removed with counts EMF has not written */
    size_t num_models, num_retired;

    pthread_mutex_t emf_mu; /* serialises sms_metrics_emf: guards prev, now, delta, drained */
    emf_baseline_t prev, now;
    sms_hist_snapshot_t delta;
    uint64_t drained_model[MODEL_BUCKETS], drained_overhead[MODEL_BUCKETS];
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
    pthread_mutex_init(&m->models_mu, NULL);
    return m;
fail:
    free(m);
    return NULL;
}

static void free_series(sms_model_series_t *s)
{
    for (sms_model_series_t *next; s; s = next) {
        next = s->next;
        free(s);
    }
}

void sms_metrics_free(sms_metrics_t *m)
{
    if (!m)
        return;
    sms_metrics_stop_emf(m);
    free_series(m->models);
    free_series(m->retired);
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->emf_mu);
    pthread_mutex_destroy(&m->thread_mu);
    pthread_mutex_destroy(&m->models_mu);
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

static void model_hist_record(model_hist_t *h, uint64_t us)
{
    add(&h->fine[ll_bucket(us, MODEL_SUB_BITS)], 1);
    size_t k = us ? (size_t)(64 - __builtin_clzll(us)) : 0;
    add(&h->pow2[k < POW2_BUCKETS ? k : POW2_BUCKETS - 1], 1);
    add(&h->sum_us, us);
}

void sms_metrics_record_model(sms_metrics_t *m, sms_model_series_t *s, const sms_invocation_t *inv)
{
    if (!m)
        return;
    sms_metrics_record(m, inv);
    if (!s)
        return;
    add(&s->invocations, 1);
    if (inv->status >= 400 && inv->status < 500)
        add(&s->errors_4xx, 1);
    else if (inv->status >= 500 && inv->status < 600)
        add(&s->errors_5xx, 1);
    model_hist_record(&s->model, inv->model_us);
    model_hist_record(&s->overhead, inv->overhead_us);
}

void sms_metrics_model_loaded(sms_metrics_t *m, uint64_t us)
{
    if (m)
        sms_hist_record(&m->loading, us);
}

void sms_metrics_model_unloaded(sms_metrics_t *m, uint64_t us)
{
    if (m)
        sms_hist_record(&m->unloading, us);
}

void sms_metrics_model_waited(sms_metrics_t *m, uint64_t us)
{
    if (m)
        sms_hist_record(&m->waiting, us);
}

void sms_metrics_model_cache(sms_metrics_t *m, bool hit)
{
    if (m)
        add(hit ? &m->cache_hits : &m->cache_misses, 1);
}

void sms_metrics_set_loaded_models(sms_metrics_t *m, size_t n)
{
    if (m)
        atomic_store_explicit(&m->loaded_models, (uint64_t)n, memory_order_relaxed);
}

void sms_metrics_set_multi_model(sms_metrics_t *m, bool on)
{
    if (m)
        atomic_store_explicit(&m->multi_model, on, memory_order_relaxed);
}

static bool multi_model(sms_metrics_t *m)
{
    return atomic_load_explicit(&m->multi_model, memory_order_relaxed);
}

/* ---- model series ---- */

/* The length of the well-formed UTF-8 sequence at p (n > 0 bytes left),
 * 0 when there is none: no overlong forms, surrogates or code points over
 * U+10FFFF, as jansson and Prometheus require. */
static size_t utf8_sequence(const unsigned char *p, size_t n)
{
    unsigned char lead = p[0], lo = 0x80, hi = 0xbf;
    size_t len;
    if (lead < 0x80)
        return 1;
    if (lead >= 0xc2 && lead <= 0xdf) {
        len = 2;
    } else if (lead >= 0xe0 && lead <= 0xef) {
        len = 3;
        lo = lead == 0xe0 ? 0xa0 : 0x80;
        hi = lead == 0xed ? 0x9f : 0xbf;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
        len = 4;
        lo = lead == 0xf0 ? 0x90 : 0x80;
        hi = lead == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return len;
}

/* The Prometheus label value of a name, in out (room for
 * PROM_NAME_MAX + 1): \, " and newline are escaped; a byte that starts no
 * UTF-8 character, and a control character but newline, becomes U+FFFD (a
 * raw carriage return would split the line for readers that take it as a
 * line end). Returns its length. */
static size_t prom_name(char *out, const char *name)
{
    const unsigned char *p = (const unsigned char *)name;
    size_t n = strlen(name), len = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_sequence(p + i, n - i);
        if (!k || (p[i] < 0x20 && p[i] != '\n') || p[i] == 0x7f) {
            memcpy(out + len, "\xef\xbf\xbd", 3);
            len += 3;
            i++;
            continue;
        }
        if (p[i] == '\\' || p[i] == '"' || p[i] == '\n') {
            out[len++] = '\\';
            out[len++] = p[i] == '\n' ? 'n' : (char)p[i];
        } else {
            memcpy(out + len, p + i, k);
            len += k;
        }
        i += k;
    }
    out[len] = '\0';
    return len;
}

/* Percent-encodes name into out while it fits in max characters; returns
 * the length written and sets *done when all of name was. */
static size_t percent_encode(char *out, size_t max, const char *name, bool *done)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = 0;
    const unsigned char *p = (const unsigned char *)name;
    for (; *p; p++) {
        bool plain = *p > 0x20 && *p < 0x7f && *p != '%';
        if (len + (plain ? 1 : 3) > max)
            break;
        if (plain) {
            out[len++] = (char)*p;
        } else {
            out[len++] = '%';
            out[len++] = hex[*p >> 4];
            out[len++] = hex[*p & 15];
        }
    }
    *done = !*p;
    return len;
}

/* The CloudWatch dimension value of a name, in out (room for
 * CW_NAME_MAX + 1): printable ASCII without spaces (CloudWatch refuses
 * other characters and values of only white space), one-to-one with the
 * name up to 1,024 characters; past that a cut that keeps distinct names
 * apart by a hash of the whole name. Returns its length. */
static size_t cw_name(char *out, const char *name)
{
    bool done;
    size_t len = percent_encode(out, CW_NAME_MAX, name, &done);
    if (!done) {
        uint64_t hash = 0xcbf29ce484222325u; /* FNV-1a */
        for (const unsigned char *p = (const unsigned char *)name; *p; p++)
            hash = (hash ^ *p) * 0x100000001b3u;
        len = percent_encode(out, CW_NAME_MAX - 17, name, &done);
        len += (size_t)snprintf(out + len, 18, "~%016" PRIx64, hash);
    }
    out[len] = '\0';
    return len;
}

static void list_push(sms_model_series_t **head, sms_model_series_t *s)
{
    s->prev = NULL;
    s->next = *head;
    if (*head)
        (*head)->prev = s;
    *head = s;
}

static void list_unlink(sms_model_series_t **head, sms_model_series_t *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        *head = s->next;
    if (s->next)
        s->next->prev = s->prev;
}

sms_model_series_t *sms_metrics_model_add(sms_metrics_t *m, const char *name)
{
    if (!m || !name)
        return NULL;
    size_t n = strlen(name);
    if (!n || n > MODEL_NAME_MAX)
        return NULL;
    char prom[PROM_NAME_MAX + 1], cw[CW_NAME_MAX + 1];
    size_t prom_len = prom_name(prom, name), cw_len = cw_name(cw, name);
    sms_model_series_t *s = calloc(1, sizeof *s + prom_len + 1 + cw_len + 1);
    if (!s)
        return NULL;
    memcpy(s->names, prom, prom_len + 1);
    memcpy(s->names + prom_len + 1, cw, cw_len + 1);
    s->cw_name = s->names + prom_len + 1;
    pthread_mutex_lock(&m->models_mu);
    list_push(&m->models, s);
    m->num_models++;
    pthread_mutex_unlock(&m->models_mu);
    return s;
}

/* Whether s holds counts no EMF line has written. Under models_mu. */
static bool has_unwritten(sms_model_series_t *s)
{
    if (load(&s->invocations) != s->emf_invocations)
        return true;
    for (size_t b = 0; b < MODEL_BUCKETS; b++)
        if (load(&s->model.fine[b]) || load(&s->overhead.fine[b]))
            return true;
    return false;
}

void sms_metrics_model_remove(sms_metrics_t *m, sms_model_series_t *s)
{
    if (!m || !s)
        return;
    pthread_mutex_lock(&m->models_mu);
    list_unlink(&m->models, s);
    m->num_models--;
    bool keep = m->cfg.emf_interval_s > 0 && m->num_retired < RETIRED_MAX && has_unwritten(s);
    if (keep) {
        list_push(&m->retired, s);
        m->num_retired++;
    }
    pthread_mutex_unlock(&m->models_mu);
    if (!keep)
        free(s);
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

/* A histogram with a bucket per power of two, 1 us to 2^26 us (67 s): a
 * value v counts under 2^e when v < 2^e, i.e. when its bit length is at
 * most e, so the cumulative counts are exact. */
static int put_pow2_hist(sms_buf_t *out, const char *name, const char *labels, const uint64_t *pow2,
                         uint64_t sum_us)
{
    int rc = 0;
    uint64_t below = 0;
    for (int e = 0; e < SMS_HIST_TOP_BITS; e++) {
        below += pow2[e];
        rc |= sms_buf_printf(out, "%s_bucket{%s,le=\"", name, labels);
        rc |= put_seconds(out, (uint64_t)1 << e);
        rc |= sms_buf_printf(out, "\"} %" PRIu64 "\n", below);
    }
    for (size_t k = SMS_HIST_TOP_BITS; k < POW2_BUCKETS; k++)
        below += pow2[k];
    rc |= sms_buf_printf(out, "%s_bucket{%s,le=\"+Inf\"} %" PRIu64 "\n", name, labels, below);
    rc |= sms_buf_printf(out, "%s_sum{%s} ", name, labels);
    rc |= put_seconds(out, sum_us);
    rc |= sms_buf_printf(out, "\n%s_count{%s} %" PRIu64 "\n", name, labels, below);
    return rc ? -1 : 0;
}

/* One model's label set, or the sum of series whose labels are equal. */
typedef struct model_sample {
    uint64_t invocations, errors_4xx, errors_5xx;
    uint64_t model_pow2[POW2_BUCKETS], overhead_pow2[POW2_BUCKETS];
    uint64_t model_sum_us, overhead_sum_us;
} model_sample_t;

static void sample_add(model_sample_t *t, sms_model_series_t *s)
{
    t->invocations += load(&s->invocations);
    t->errors_4xx += load(&s->errors_4xx);
    t->errors_5xx += load(&s->errors_5xx);
    for (size_t k = 0; k < POW2_BUCKETS; k++) {
        t->model_pow2[k] += load(&s->model.pow2[k]);
        t->overhead_pow2[k] += load(&s->overhead.pow2[k]);
    }
    t->model_sum_us += load(&s->model.sum_us);
    t->overhead_sum_us += load(&s->overhead.sum_us);
}

static int by_label(const void *a, const void *b)
{
    return strcmp((*(sms_model_series_t *const *)a)->names,
                  (*(sms_model_series_t *const *)b)->names);
}

enum { FAM_INVOCATIONS, FAM_ERRORS, FAM_MODEL_LATENCY, FAM_OVERHEAD_LATENCY, FAM_COUNT };

static int put_model_family(sms_buf_t *out, int family, const char *labels, const model_sample_t *t)
{
    switch (family) {
    case FAM_INVOCATIONS:
        return sms_buf_printf(out, "smserve_invocations_by_model_total{%s} %" PRIu64 "\n", labels,
                              t->invocations);
    case FAM_ERRORS:
        return sms_buf_printf(
            out,
            "smserve_invocation_errors_by_model_total{%s,class=\"4xx\"} %" PRIu64 "\n"
            "smserve_invocation_errors_by_model_total{%s,class=\"5xx\"} %" PRIu64 "\n",
            labels, t->errors_4xx, labels, t->errors_5xx);
    case FAM_MODEL_LATENCY:
        return put_pow2_hist(out, "smserve_model_latency_by_model_seconds", labels, t->model_pow2,
                             t->model_sum_us);
    default:
        return put_pow2_hist(out, "smserve_overhead_latency_by_model_seconds", labels,
                             t->overhead_pow2, t->overhead_sum_us);
    }
}

/* The per-model families, series sorted by label; series whose labels are
 * equal (a name re-added while its old series is being removed, or names
 * equal once their bytes that are not UTF-8 are replaced) are summed, so
 * no label set appears twice. */
static int put_models(sms_metrics_t *m, sms_buf_t *out)
{
    static const char *const heads[FAM_COUNT][3] = {
        {"smserve_invocations_by_model_total", "counter",
         "Invocation requests answered, by model."},
        {"smserve_invocation_errors_by_model_total", "counter",
         "Invocation requests answered with a 4xx or 5xx status, by model."},
        {"smserve_model_latency_by_model_seconds", "histogram",
         "Time spent in the model per invocation (ModelLatency), by model, in seconds."},
        {"smserve_overhead_latency_by_model_seconds", "histogram",
         "Time per invocation outside the model (OverheadLatency), by model, in seconds."},
    };
    pthread_mutex_lock(&m->models_mu);
    size_t n = m->num_models;
    sms_model_series_t **v = n ? malloc(n * sizeof *v) : NULL;
    model_sample_t *t = n ? malloc(sizeof *t) : NULL;
    sms_buf_t labels = {0};
    int rc = n && (!v || !t) ? -1 : 0;
    if (n && !rc) {
        size_t i = 0;
        for (sms_model_series_t *s = m->models; s; s = s->next)
            v[i++] = s;
        qsort(v, n, sizeof *v, by_label);
        for (int f = 0; f < FAM_COUNT && !rc; f++) {
            rc |= put_family(out, heads[f][0], heads[f][1], heads[f][2]);
            for (size_t first = 0, end; first < n && !rc; first = end) {
                memset(t, 0, sizeof *t);
                for (end = first; end < n && !strcmp(v[end]->names, v[first]->names); end++)
                    sample_add(t, v[end]);
                sms_buf_reset(&labels);
                rc |= sms_buf_printf(&labels, "%s,model=\"%s\"", m->series.labels, v[first]->names);
                rc |= put_model_family(out, f, labels.data, t);
            }
        }
    }
    pthread_mutex_unlock(&m->models_mu);
    sms_buf_free(&labels);
    free(t);
    free(v);
    return rc ? -1 : 0;
}

/* The multi-model endpoint's own metrics. */
static int put_multi_model(sms_metrics_t *m, sms_buf_t *out, sms_hist_snapshot_t *snap)
{
    series_t *s = &m->series;
    int rc = put_latency(out, s, &m->loading, snap, "smserve_model_loading",
                         "Time taken to load a model (ModelLoadingTime)");
    rc |= put_latency(out, s, &m->unloading, snap, "smserve_model_unloading",
                      "Time taken to unload a model (ModelUnloadingTime)");
    rc |= put_latency(out, s, &m->waiting, snap, "smserve_model_loading_wait",
                      "Time an invocation waited for its model to load (ModelLoadingWaitTime)");
    rc |= put_counter(out, s, "smserve_model_cache_hits_total",
                      "Invocations of a model that was already loaded (ModelCacheHit).",
                      load(&m->cache_hits));
    rc |= put_counter(out, s, "smserve_model_cache_misses_total",
                      "Invocations of a model that was not loaded yet, or not at all.",
                      load(&m->cache_misses));
    rc |= put_family(out, "smserve_loaded_models", "gauge", "Models loaded (LoadedModelCount).");
    rc |= sms_buf_printf(out, "smserve_loaded_models{%s} %" PRIu64 "\n", s->labels,
                         load(&m->loaded_models));
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
    if (multi_model(m))
        rc |= put_multi_model(m, out, snap);
    free(snap);
    rc |= put_models(m, out);
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
                             const hist_view_t *delta, bool *ok)
{
    double vals[EMF_MAX_VALUES];
    size_t n = view_values(delta, vals);
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
        set_new(root, key, number(view_quantile(delta, QUANTILES[i])), ok);
    }
}

/* A line's root with its directive: the namespace, one dimension set
 * (EndpointName, VariantName, and ModelName when model_name is not NULL)
 * and their values. Sets *metrics to the directive's Metrics array. */
static json_t *emf_root(sms_metrics_t *m, int64_t timestamp_ms, const char *model_name,
                        json_t **metrics, bool *ok)
{
    json_t *root = json_object(), *aws = json_object(), *directives = json_array();
    json_t *directive = json_object(), *dims = json_array(), *dim_set = json_array();
    *metrics = json_array();
    set_new(root, "_aws", aws, ok);
    set_new(aws, "Timestamp", json_integer((json_int_t)timestamp_ms), ok);
    set_new(aws, "CloudWatchMetrics", directives, ok);
    append_new(directives, directive, ok);
    set_new(directive, "Namespace", json_string(m->cfg.namespace_), ok);
    append_new(dim_set, json_string("EndpointName"), ok);
    append_new(dim_set, json_string("VariantName"), ok);
    if (model_name)
        append_new(dim_set, json_string("ModelName"), ok);
    append_new(dims, dim_set, ok);
    set_new(directive, "Dimensions", dims, ok);
    set_new(directive, "Metrics", *metrics, ok);
    set_new(root, "EndpointName", json_string(m->cfg.endpoint), ok);
    set_new(root, "VariantName", json_string(m->cfg.variant), ok);
    if (model_name)
        set_new(root, "ModelName", json_string(model_name), ok);
    return root;
}

/* Appends root as one compact line and frees it; 0, or -1 (nothing
 * appended) when out of memory. */
static int put_line(json_t *root, bool ok, sms_buf_t *out)
{
    char *text = ok ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    size_t len = out->len;
    int rc = text && sms_buf_printf(out, "%s\n", text) == 0 ? 0 : -1;
    if (rc && out->data) {
        out->len = len;
        out->data[len] = '\0';
    }
    free(text);
    return rc;
}

static void put_interval_distribution(json_t *root, json_t *metrics, const char *name,
                                      const sms_hist_snapshot_t *now,
                                      const sms_hist_snapshot_t *before, sms_hist_snapshot_t *delta,
                                      bool *ok)
{
    sms_hist_delta(now, before, delta);
    hist_view_t v = snapshot_view(delta);
    put_distribution(root, metrics, name, &v, ok);
}

/* The endpoint's line. Under emf_mu. */
static int emf_endpoint_line(sms_metrics_t *m, int64_t timestamp_ms, sms_buf_t *out)
{
    series_t *s = &m->series;
    emf_baseline_t *prev = &m->prev, *now = &m->now;
    now->invocations = load(&s->invocations);
    now->errors_4xx = load(&s->errors_4xx);
    now->errors_5xx = load(&s->errors_5xx);
    sms_capture_counts_t cap;
    read_capture(m, &cap);
    now->written = cap.written;
    now->dropped = cap.dropped;
    now->cache_hits = load(&m->cache_hits);
    sms_hist_snapshot(&s->model, &now->model);
    sms_hist_snapshot(&s->overhead, &now->overhead);
    sms_hist_snapshot(&m->loading, &now->loading);
    sms_hist_snapshot(&m->unloading, &now->unloading);
    sms_hist_snapshot(&m->waiting, &now->waiting);
    bool report_setup =
        !m->setup_reported && atomic_load_explicit(&m->setup_set, memory_order_acquire);

    bool ok = true;
    json_t *metrics;
    json_t *root = emf_root(m, timestamp_ms, NULL, &metrics, &ok);
    put_count(root, metrics, "Invocations", sub_sat(now->invocations, prev->invocations), &ok);
    put_count(root, metrics, "Invocation4XXErrors", sub_sat(now->errors_4xx, prev->errors_4xx),
              &ok);
    put_count(root, metrics, "Invocation5XXErrors", sub_sat(now->errors_5xx, prev->errors_5xx),
              &ok);
    put_interval_distribution(root, metrics, "ModelLatency", &now->model, &prev->model, &m->delta,
                              &ok);
    put_interval_distribution(root, metrics, "OverheadLatency", &now->overhead, &prev->overhead,
                              &m->delta, &ok);
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
    if (multi_model(m)) {
        put_interval_distribution(root, metrics, "ModelLoadingTime", &now->loading, &prev->loading,
                                  &m->delta, &ok);
        put_interval_distribution(root, metrics, "ModelUnloadingTime", &now->unloading,
                                  &prev->unloading, &m->delta, &ok);
        put_interval_distribution(root, metrics, "ModelLoadingWaitTime", &now->waiting,
                                  &prev->waiting, &m->delta, &ok);
        put_count(root, metrics, "ModelCacheHit", sub_sat(now->cache_hits, prev->cache_hits), &ok);
        put_count(root, metrics, "LoadedModelCount", load(&m->loaded_models), &ok);
    }
    if (put_line(root, ok, out) < 0)
        return -1;
    *prev = *now;
    if (report_setup)
        m->setup_reported = true;
    return 0;
}

/* Moves h's fine counts into drained (emptying them) and returns whether
 * there were any. A bucket is only exchanged when it reads non-zero: most
 * of a model's 385 are. */
static bool drain(model_hist_t *h, uint64_t *drained)
{
    bool any = false;
    for (size_t b = 0; b < MODEL_BUCKETS; b++) {
        uint64_t c = load(&h->fine[b]);
        if (c)
            c = atomic_exchange_explicit(&h->fine[b], 0, memory_order_relaxed);
        drained[b] = c;
        any |= c != 0;
    }
    return any;
}

static void undrain(model_hist_t *h, const uint64_t *drained)
{
    for (size_t b = 0; b < MODEL_BUCKETS; b++)
        if (drained[b])
            add(&h->fine[b], drained[b]);
}

/* The line of model series s, when it has counts no line has written.
 * Under emf_mu and models_mu. 0 when written or nothing to write; -1 when
 * out of memory, and the counts stay for the next call. */
static int emf_model_line(sms_metrics_t *m, sms_model_series_t *s, int64_t timestamp_ms,
                          sms_buf_t *out)
{
    uint64_t invocations = load(&s->invocations), errors_4xx = load(&s->errors_4xx),
             errors_5xx = load(&s->errors_5xx);
    bool any = drain(&s->model, m->drained_model);
    any |= drain(&s->overhead, m->drained_overhead);
    if (!any && invocations == s->emf_invocations)
        return 0;
    bool ok = true;
    json_t *metrics;
    json_t *root = emf_root(m, timestamp_ms, s->cw_name, &metrics, &ok);
    put_count(root, metrics, "Invocations", sub_sat(invocations, s->emf_invocations), &ok);
    put_count(root, metrics, "Invocation4XXErrors", sub_sat(errors_4xx, s->emf_4xx), &ok);
    put_count(root, metrics, "Invocation5XXErrors", sub_sat(errors_5xx, s->emf_5xx), &ok);
    hist_view_t v = {m->drained_model, MODEL_BUCKETS, MODEL_SUB_BITS};
    put_distribution(root, metrics, "ModelLatency", &v, &ok);
    v.counts = m->drained_overhead;
    put_distribution(root, metrics, "OverheadLatency", &v, &ok);
    if (put_line(root, ok, out) < 0) {
        undrain(&s->model, m->drained_model);
        undrain(&s->overhead, m->drained_overhead);
        return -1;
    }
    s->emf_invocations = invocations;
    s->emf_4xx = errors_4xx;
    s->emf_5xx = errors_5xx;
    return 0;
}

int sms_metrics_emf(sms_metrics_t *m, int64_t timestamp_ms, sms_buf_t *out)
{
    pthread_mutex_lock(&m->emf_mu);
    int rc = emf_endpoint_line(m, timestamp_ms, out);
    if (rc == 0) {
        pthread_mutex_lock(&m->models_mu);
        for (sms_model_series_t *s = m->models; s; s = s->next)
            emf_model_line(m, s, timestamp_ms, out);
        for (sms_model_series_t *s = m->retired, *next; s; s = next) {
            next = s->next;
            if (emf_model_line(m, s, timestamp_ms, out) == 0) {
                list_unlink(&m->retired, s);
                m->num_retired--;
                free(s);
            }
        }
        pthread_mutex_unlock(&m->models_mu);
    }
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
     * the inner loop only finishes a write cut short by a signal */
    for (const char *p = line->data, *end = line->data + line->len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        for (size_t done = 0; done < len;) {
            ssize_t n = write(STDOUT_FILENO, p + done, len - done);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return;
            done += (size_t)n;
        }
        p += len;
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
