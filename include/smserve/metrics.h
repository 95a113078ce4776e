/* Latency and traffic metrics: counters and log-linear latency histograms
 * (at most 2% relative error from 1 us to 60 s) updated with relaxed atomic
 * adds, so the request path takes no lock. Exposed as Prometheus text on
 * GET /metrics and as CloudWatch Embedded Metric Format lines on stdout,
 * once per interval and at shutdown. Metrics observe; they never change the
 * request flow. */
#ifndef SMSERVE_METRICS_H
#define SMSERVE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "smserve/buf.h"
#include "smserve/error.h"

/* ---- the histogram ---- */

/* Values are integer microseconds. Values under 128 have a bucket each
 * (exact); from 64 on, each power of two [2^e, 2^(e+1)) is cut into 64
 * equal sub-buckets (the top bit's position and the next 6 bits), up to
 * 2^27 us (about 134 s); everything from 2^27 on shares the last, overflow
 * bucket. Bucket b covers [lower(b), upper(b)); the bucket's midpoint over
 * its integers, lower + (width - 1) / 2, is within 1/128 (0.79%) of any
 * value in it, which meets the 2% required from 1 us to 60 s. */
#define SMS_HIST_SUB_BITS 6  /* 64 sub-buckets per power of two */
#define SMS_HIST_TOP_BITS 27 /* 2^27 us and more: the overflow bucket */
#define SMS_HIST_BUCKETS                                                                           \
    ((SMS_HIST_TOP_BITS - SMS_HIST_SUB_BITS + 1) * (1 << SMS_HIST_SUB_BITS) + 1)

/* Recording is three relaxed atomic adds and no lock; readers take a
 * snapshot. Zero-initialise (static or calloc) before use. */
typedef struct sms_hist {
    _Atomic uint64_t counts[SMS_HIST_BUCKETS];
    _Atomic uint64_t sum_us;
    _Atomic uint64_t count;
} sms_hist_t;

size_t sms_hist_bucket(uint64_t us);
uint64_t sms_hist_lower(size_t bucket);
uint64_t sms_hist_upper(size_t bucket); /* UINT64_MAX for the overflow bucket */
/* What a bucket reports for its values: the midpoint over its integers
 * (the value itself below 128); lower(b) for the overflow bucket. */
double sms_hist_midpoint(size_t bucket);
/* Thread-safe, lock-free; callable from any number of request threads. */
void sms_hist_record(sms_hist_t *h, uint64_t us);

/* A plain (non-atomic) copy for reading: snapshots, deltas, quantiles.
 * count is always the sum of counts[], so a Prometheus +Inf bucket equals
 * _count even while writers run; sum_us is read separately and may lag or
 * lead the buckets by the records in flight. */
typedef struct sms_hist_snapshot {
    uint64_t counts[SMS_HIST_BUCKETS];
    uint64_t sum_us, count;
} sms_hist_snapshot_t;

void sms_hist_snapshot(const sms_hist_t *h, sms_hist_snapshot_t *out);
/* out = now - before (the interval's distribution). */
void sms_hist_delta(const sms_hist_snapshot_t *now, const sms_hist_snapshot_t *before,
                    sms_hist_snapshot_t *out);
/* The q-quantile (0 <= q <= 1, clamped) in microseconds: the midpoint of
 * the bucket holding the value of rank ceil(q * count) (at least 1), so
 * within 1/128 of a recorded value; 0 when empty. */
double sms_hist_quantile(const sms_hist_snapshot_t *s, double q);

/* ---- the server's metrics ---- */

typedef struct sms_metrics_config {
    char endpoint[128];   /* SMSERVE_ENDPOINT_NAME (local) */
    char variant[128];    /* SMSERVE_VARIANT_NAME (AllTraffic) */
    char namespace_[128]; /* SMSERVE_METRICS_NAMESPACE (smserve) */
    int emf_interval_s;   /* SMSERVE_METRICS_INTERVAL (60); 0 turns EMF off */
} sms_metrics_config_t;

/* Fills cfg from the environment; unset or empty variables take the
 * defaults above. Names must be 1-127 printable ASCII characters, and the
 * namespace must not start with ':' or "AWS/" (reserved by CloudWatch); the
 * interval is 0 to 3600 s. 0, or -1 with err naming the variable. */
int sms_metrics_config_from_env(sms_metrics_config_t *cfg, sms_error_t *err);

typedef struct sms_metrics sms_metrics_t;

/* One finished invocation (POST /invocations only: /ping and /metrics are
 * not invocations). Every one counts in Invocations; 400-499 also in
 * Invocation4XXErrors, 500-599 in Invocation5XXErrors; both latencies and
 * the byte and row counts are recorded whatever the status. */
typedef struct sms_invocation {
    int status;
    uint64_t model_us;    /* prediction, including the XGBoost call or the native evaluator */
    uint64_t overhead_us; /* the rest: read, parse, encode, write */
    uint64_t request_bytes, response_bytes, rows;
} sms_invocation_t;

/* The metrics of one endpoint/variant (cfg is copied; names as validated by
 * sms_metrics_config_from_env). NULL when out of memory. Free with
 * sms_metrics_free, which stops the EMF thread first if it runs. */
sms_metrics_t *sms_metrics_create(const sms_metrics_config_t *cfg);
void sms_metrics_free(sms_metrics_t *m);
/* Lock-free and thread-safe; m may be NULL (nothing recorded). */
void sms_metrics_record(sms_metrics_t *m, const sms_invocation_t *inv);
/* The model's load time (ModelSetupTime); EMF reports it once, in the first
 * line after it is set. Thread-safe; m may be NULL. */
void sms_metrics_set_setup_us(sms_metrics_t *m, uint64_t us);
/* Capture counters are read from a callback at exposition time (read must
 * be thread-safe). Set it before serving and before sms_metrics_start_emf;
 * without one, Prometheus shows 0 and EMF leaves the capture metrics out. */
typedef struct sms_capture_counts {
    uint64_t written, dropped;
} sms_capture_counts_t;
void sms_metrics_set_capture_source(sms_metrics_t *m,
                                    void (*read)(void *arg, sms_capture_counts_t *out), void *arg);

/* Prometheus text exposition (format 0.0.4, Content-Type
 * "text/plain; version=0.0.4; charset=utf-8") of everything, appended to
 * out. Thread-safe; takes no lock but the series mutex, on a multi-model
 * endpoint with series. 0, or -1 when out of memory. */
int sms_metrics_prometheus(sms_metrics_t *m, sms_buf_t *out);

/* The CloudWatch EMF JSON lines (each with its newline) for the interval
 * since the previous successful call (or since start), appended to out;
 * timestamp_ms is the lines' time (ms since the epoch). First the
 * endpoint's line (dimensions EndpointName, VariantName); counts are the
 * interval's; ModelLatency and OverheadLatency are arrays of at most 100
 * values that carry the interval's distribution, left out when it had no
 * invocations. On a multi-model endpoint that line also holds
 * ModelLoadingTime, ModelUnloadingTime and ModelLoadingWaitTime (value
 * arrays like ModelLatency, left out when none happened), ModelCacheHit
 * (Count: the interval's invokes of an already-loaded model) and
 * LoadedModelCount (Count: the gauge when the line is made). Then one line
 * per model series with invocations in the interval (removed ones
 * included), with dimensions EndpointName, VariantName, ModelName and
 * Invocations, Invocation4XXErrors, Invocation5XXErrors, ModelLatency and
 * OverheadLatency. Each line is under 16 KB (CloudWatch takes 256 KB) and
 * declares at most 13 metrics (CloudWatch takes 100).
 * Thread-safe (calls are serialised). 0, or -1 when out of memory making
 * the endpoint's line (nothing is appended; the interval carries over to
 * the next call); a model whose line cannot be made carries over alone. */
int sms_metrics_emf(sms_metrics_t *m, int64_t timestamp_ms, sms_buf_t *out);

/* Starts a thread that writes the EMF lines to stdout (one write(2) per
 * line) every emf_interval_s; does nothing when the interval is 0 or the
 * thread already runs. 0, or -1 when the thread cannot start.
 * sms_metrics_stop_emf wakes it at once, has it write a last line, and
 * joins it; harmless when it does not run. */
int sms_metrics_start_emf(sms_metrics_t *m);
void sms_metrics_stop_emf(sms_metrics_t *m);

/* ---- multi-model endpoints ---- */

/* Per-model series (multi-model endpoints): one per loaded model. Each
 * holds its invocation, 4xx and 5xx counters and two latency histograms
 * (ModelLatency, OverheadLatency) of 385 buckets: 16 per power of two, so
 * a bucket's midpoint is within 1/32 (3.1%) of its values, against the
 * endpoint's 1/128 in 1,409 buckets. The endpoint's 11 KB histogram twice
 * over would be 22.6 KB a model, 226 MB for 10,000 models; allocating it
 * on a model's first invocation would save nothing, since SageMaker loads a
 * model when it is first invoked. A series is 6,712 bytes (on 64-bit) plus
 * its name twice (the Prometheus and the CloudWatch forms below): about
 * 6.8 MB for 1,000 models, 68 MB for 10,000. The fine buckets count since
 * the last EMF line (which empties them); cumulative counts per power of
 * two feed Prometheus. */
typedef struct sms_model_series sms_model_series_t;

/* Registers a series for model `name` (copied; 1-1024 bytes, any bytes).
 * Prometheus labels it model="name", with \, " and newline escaped and
 * bytes that are not UTF-8 and other control characters as U+FFFD; series
 * whose labels come out equal are summed into one. CloudWatch takes only
 * printable ASCII in a dimension value, so EMF's ModelName is the name
 * with '%', space and every byte outside 0x21-0x7e percent-encoded (%XX,
 * upper case); when that is over 1,024 characters, its first 1,007 or
 * fewer (whole escapes), then '~' and 16 hex digits of the name's 64-bit
 * FNV-1a hash. Names should be unique among live series (a registry's
 * are). NULL when out of memory, m is NULL or name is empty or longer than
 * 1,024 bytes; NULL is a valid series for sms_metrics_record_model (totals
 * only) and sms_metrics_model_remove (nothing). Free with
 * sms_metrics_model_remove; series still registered are freed by
 * sms_metrics_free. */
sms_model_series_t *sms_metrics_model_add(sms_metrics_t *m, const char *name);
/* Unregisters and frees s (NULL: nothing); it leaves the Prometheus
 * exposition at once. The caller guarantees no sms_metrics_record_model
 * with s is running or will run. Its interval's counts that no EMF line
 * has written yet go in the next sms_metrics_emf call's lines (s is kept
 * until then), never counted twice; they are folded away (dropped from the
 * per-model lines; the endpoint's line has them anyway) when EMF is off
 * (emf_interval_s 0) or when 1,024 removed series already wait for the
 * next line (so a stalled stdout cannot make them pile up). */
void sms_metrics_model_remove(sms_metrics_t *m, sms_model_series_t *s);
/* Records inv in the endpoint's totals (as sms_metrics_record does) and in
 * s's series (s may be NULL: totals only). Lock-free on the request path:
 * relaxed atomic adds only (7 to 8 on the series). */
void sms_metrics_record_model(sms_metrics_t *m, sms_model_series_t *s, const sms_invocation_t *inv);
/* Multi-model events, as SageMaker's MME metrics name them (all
 * microseconds), recorded in endpoint-wide histograms like ModelLatency's: */
void sms_metrics_model_loaded(sms_metrics_t *m, uint64_t us);   /* ModelLoadingTime */
void sms_metrics_model_unloaded(sms_metrics_t *m, uint64_t us); /* ModelUnloadingTime */
void sms_metrics_model_waited(sms_metrics_t *m, uint64_t us);   /* ModelLoadingWaitTime */
/* ModelCacheHit: one per invoke, hit when the model was already loaded. */
void sms_metrics_model_cache(sms_metrics_t *m, bool hit);
void sms_metrics_set_loaded_models(sms_metrics_t *m, size_t n); /* LoadedModelCount gauge */
/* Whether the endpoint is multi-model: the MME metrics above appear (in
 * Prometheus and EMF) only then; what is recorded while it is off is kept.
 * Model series appear whenever some are registered. */
void sms_metrics_set_multi_model(sms_metrics_t *m, bool on);
/* All of the above are thread-safe, and m may be NULL (nothing happens).
 * Adding and removing series take a mutex (rare); recording takes none;
 * the Prometheus exposition and sms_metrics_emf take it to walk the
 * series (the EMF call holds it while it makes the per-model lines, about
 * 50 us a model with invocations in the interval; a scrape about 30 us a
 * model).
 *
 * Prometheus: the endpoint's series keep their names and labels and
 * count every model; on a multi-model endpoint there are also
 *   smserve_model_loading_seconds, smserve_model_unloading_seconds,
 *   smserve_model_loading_wait_seconds      histograms, with the latency
 *       ones' buckets, and their _quantile_seconds gauges (p50 to p99.9)
 *   smserve_model_cache_hits_total, smserve_model_cache_misses_total
 *   smserve_loaded_models                   gauge
 * and, for the model series, with the extra label model="..." and under
 * names of their own so that a sum over a metric never counts an
 * invocation twice:
 *   smserve_invocations_by_model_total
 *   smserve_invocation_errors_by_model_total   (class="4xx" or "5xx")
 *   smserve_model_latency_by_model_seconds     histograms with a bucket per
 *   smserve_overhead_latency_by_model_seconds  power of two, 1 us to 67 s
 * e.g. histogram_quantile(0.99, sum by (model, le)
 *          (rate(smserve_model_latency_by_model_seconds_bucket[5m]))).
 * About 7.5 KB of exposition a model: 7.5 MB a scrape for 1,000. */

#endif
