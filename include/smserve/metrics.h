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
 * out. Thread-safe, takes no lock. 0, or -1 when out of memory. */
int sms_metrics_prometheus(sms_metrics_t *m, sms_buf_t *out);

/* One CloudWatch EMF JSON line (with newline) for the interval since the
 * previous successful call (or since start), appended to out; timestamp_ms
 * is the line's time (ms since the epoch). Counts are the interval's;
 * ModelLatency and OverheadLatency are arrays of at most 100 values that
 * carry the interval's distribution, left out when it had no invocations.
 * Thread-safe (calls are serialised). 0, or -1 when out of memory (the
 * interval then carries over to the next call). */
int sms_metrics_emf(sms_metrics_t *m, int64_t timestamp_ms, sms_buf_t *out);

/* Starts a thread that writes an EMF line to stdout (one write(2) per
 * line) every emf_interval_s; does nothing when the interval is 0 or the
 * thread already runs. 0, or -1 when the thread cannot start.
 * sms_metrics_stop_emf wakes it at once, has it write a last line, and
 * joins it; harmless when it does not run. */
int sms_metrics_start_emf(sms_metrics_t *m);
void sms_metrics_stop_emf(sms_metrics_t *m);

#endif
