/* Data capture: a sample of requests and responses written as the JSON
 * lines SageMaker endpoint data capture writes, under
 * <dir>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-mmm>-<uuid>.jsonl.
 * Requests hand records to one writer thread through a bounded queue (a byte
 * budget) and never wait: a full queue drops the record and counts it.
 * Capture pauses while the destination file system is fuller than
 * max_disk_used_percent (75%). It observes the request flow and never
 * changes it. The record itself (the JSON line) is capture_record.h's. */
#ifndef SMSERVE_CAPTURE_H
#define SMSERVE_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "smserve/error.h"

#define SMS_CAPTURE_MAX_TYPES 10

/* Environment variables (default in parentheses):
 *   SMSERVE_CAPTURE_ENABLE               true/false, 1/0, yes/no (false)
 *   SMSERVE_CAPTURE_SAMPLING_PERCENTAGE  a number from 0 to 100 (100)
 *   SMSERVE_CAPTURE_OPTIONS              Input, Output, Input,Output or InputAndOutput,
 *                                        case-insensitive (both)
 *   SMSERVE_CAPTURE_CSV_CONTENT_TYPES    1-10 comma-separated media types (text/csv)
 *   SMSERVE_CAPTURE_JSON_CONTENT_TYPES   1-10 comma-separated media types (application/json)
 *   SMSERVE_CAPTURE_DIR                  destination directory (/opt/ml/capture)
 *   SMSERVE_ENDPOINT_NAME                endpoint name in the path (local)
 *   SMSERVE_VARIANT_NAME                 variant name in the path (AllTraffic)
 *   SMSERVE_CAPTURE_QUEUE_BYTES          queued-record byte budget (67108864, 64 MiB)
 *   SMSERVE_CAPTURE_MAX_FILE_BYTES       a file is closed before it would pass this
 *                                        (67108864, 64 MiB)
 *   SMSERVE_CAPTURE_MAX_DISK_PERCENT     pause above this share of the file system in
 *                                        use, 0-100 (75); 0 pauses always (for tests),
 *                                        100 never pauses
 * Endpoint and variant names must be one safe path component: printable
 * ASCII without spaces or '/', not "." or "..". A payload whose media type
 * (before any ';', trimmed, case-insensitive) is in the CSV or JSON list is
 * recorded with encoding CSV or JSON, any other as BASE64. */
typedef struct sms_capture_config {
    bool enabled;            /* SMSERVE_CAPTURE_ENABLE (false) */
    double sampling_percent; /* SMSERVE_CAPTURE_SAMPLING_PERCENTAGE, 0-100 (100) */
    bool capture_input;      /* SMSERVE_CAPTURE_OPTIONS: Input, Output or Input,Output */
    bool capture_output;
    char csv_types[SMS_CAPTURE_MAX_TYPES][64]; /* SMSERVE_CAPTURE_CSV_CONTENT_TYPES (text/csv) */
    size_t num_csv_types;
    char json_types[SMS_CAPTURE_MAX_TYPES][64]; /* SMSERVE_CAPTURE_JSON_CONTENT_TYPES */
    size_t num_json_types;
    char dir[1024];               /* SMSERVE_CAPTURE_DIR (/opt/ml/capture) */
    char endpoint[128];           /* SMSERVE_ENDPOINT_NAME (local); also the metrics dimension */
    char variant[128];            /* SMSERVE_VARIANT_NAME (AllTraffic) */
    size_t queue_bytes;           /* SMSERVE_CAPTURE_QUEUE_BYTES (64 MiB): the byte budget */
    size_t max_file_bytes;        /* SMSERVE_CAPTURE_MAX_FILE_BYTES (64 MiB): file cap */
    double max_disk_used_percent; /* SMSERVE_CAPTURE_MAX_DISK_PERCENT (75) */
} sms_capture_config_t;

/* Reads the SMSERVE_CAPTURE_* variables (and endpoint/variant names) with
 * their defaults. 0, or -1 with err (status 500) naming the variable. */
int sms_capture_config_from_env(sms_capture_config_t *cfg, sms_error_t *err);

/* One invocation as capture sees it. Pointers are borrowed for the call. */
typedef struct sms_capture_event {
    const char *input_type; /* the request's Content-Type as sent */
    const char *input;
    size_t input_len;
    const char *output_type; /* the response's Content-Type */
    const char *output;
    size_t output_len;
    const char *inference_id;      /* X-Amzn-SageMaker-Inference-Id, or NULL */
    const char *custom_attributes; /* X-Amzn-SageMaker-Custom-Attributes, or NULL */
    const char *target_model;      /* X-Amzn-SageMaker-Target-Model, or NULL */
    int64_t time_ms;               /* invocation time, ms since the epoch (UTC) */
} sms_capture_event_t;

typedef struct sms_capture sms_capture_t;

/* Starts the writer thread, creating <dir>/<endpoint>/<variant> (0755) and
 * checking the disk once. cfg is copied; `enabled` is not looked at (start
 * capture only when it is set). Returns NULL with err when the destination
 * cannot be used. Stop with sms_capture_stop.
 * Files: each record goes to a file of its own invocation hour, named after
 * the time of the file's first record; a new file when the hour changes or
 * the next line would take the file past max_file_bytes. Lines are appended
 * whole (O_APPEND, writev looping on partial writes; on a write error the
 * file is cut back to its last whole line), so a reader never sees a torn
 * line. Files are closed on rotation and on stop; no fsync. */
sms_capture_t *sms_capture_start(const sms_capture_config_t *cfg, sms_error_t *err);

/* Decides by sampling whether this request is captured (cheap; call before
 * building anything): true with probability sampling_percent / 100, from a
 * per-thread PRNG seeded from getrandom. false when c is NULL. Thread-safe. */
bool sms_capture_sample(sms_capture_t *c);

/* Encodes the record and queues it for the writer; never blocks on I/O or
 * on the writer (one short mutex-held link). Returns 0 when queued, -1 when
 * dropped (queue over budget, capture paused, or out of memory), counted
 * either way. Thread-safe; not to be called once sms_capture_stop began. */
int sms_capture_submit(sms_capture_t *c, const sms_capture_event_t *ev);

/* Writes every queued record, closes the current file, stops the thread
 * and frees c (NULL is a no-op). Called on SIGTERM before exit, after the
 * HTTP server stopped submitting. */
void sms_capture_stop(sms_capture_t *c);

/* Waits until every record queued before the call is written (or dropped
 * on a write error); the file stays open. For tests, and for final
 * counters before sms_capture_stop. */
void sms_capture_flush(sms_capture_t *c);

/* sampled: sms_capture_sample answers true. written: lines in files.
 * dropped: every record not written (queue over budget, paused, out of
 * memory, write error), so after stop written + dropped == submissions.
 * paused_drops: the part of dropped refused while paused. bytes_written:
 * bytes of written lines. files: files opened. paused: the disk guard now.
 * Counters are atomic; any thread may read them. Zeros for a NULL c. */
typedef struct sms_capture_stats {
    uint64_t sampled, written, dropped, paused_drops, bytes_written, files;
    bool paused;
} sms_capture_stats_t;
void sms_capture_stats(sms_capture_t *c, sms_capture_stats_t *out);

/* The relative path of a capture file opened at time_ms with `uuid`:
 * "<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-mmm>-<uuid>.jsonl". */
int sms_capture_file_path(const sms_capture_config_t *cfg, int64_t time_ms, const char *uuid,
                          char *out, size_t size);

/* A random RFC 4122 version 4 UUID from getrandom, lowercase 8-4-4-4-12
 * hex, 36 characters plus NUL. Thread-safe. */
void sms_uuid4(char out[37]);

/* Tests only: fixes the calling thread's sampling sequence. */
void sms_capture_seed_thread(uint64_t seed);

#endif
