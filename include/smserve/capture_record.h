/* The capture record: one invocation as the JSON line SageMaker endpoint
 * data capture writes, with what the line is made of (JSON string escaping,
 * base64, the UTC time). Pure encoding: no I/O, no state, no allocation but
 * the caller's buffer. It measures before it writes, so a caller can size
 * (or refuse) the buffer first: sms_capture_record_plan, then
 * sms_capture_record_write. The queue, the writer and the files are
 * capture.h's. */
#ifndef SMSERVE_CAPTURE_RECORD_H
#define SMSERVE_CAPTURE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "smserve/buf.h"
#include "smserve/capture.h"

/* How a payload is recorded: as a JSON string (CSV, JSON) or in base64. */
typedef enum { SMS_CAPTURE_CSV, SMS_CAPTURE_JSON, SMS_CAPTURE_BASE64 } sms_capture_encoding_t;

/* The endpointInput or endpointOutput part of a measured record. */
typedef struct sms_capture_part {
    const unsigned char *type; /* NULL: no Content-Type was sent */
    size_t type_len, type_esc_len;
    const unsigned char *data;
    size_t data_len, data_out_len; /* data_out_len: escaped or base64 length */
    sms_capture_encoding_t encoding;
} sms_capture_part_t;

/* A string of eventMetadata, and its length once escaped. */
typedef struct sms_capture_text {
    const unsigned char *s; /* NULL: not recorded */
    size_t len, esc_len;
} sms_capture_text_t;

/* eventMetadata's optional members, in the order they are written */
enum { SMS_META_INFERENCE_ID, SMS_META_CUSTOM_ATTRIBUTES, SMS_META_TARGET_MODEL, SMS_META_COUNT };

/* A measured record. It borrows the event's strings and the event id, which
 * must outlive it. `len` is for the caller; the rest is the encoder's. */
typedef struct sms_capture_record {
    bool input, output;
    sms_capture_part_t in, out;
    sms_capture_text_t event_id, meta[SMS_META_COUNT];
    int64_t time_ms;
    size_t len; /* of the whole line, newline included */
} sms_capture_record_t;

/* Measures the record of ev under cfg (its capture options and content
 * type lists) with event_id, a UUIDv4 string (NULL is recorded as ""). 0,
 * or -1 when the line could not be held in memory (its length overflows). */
int sms_capture_record_plan(const sms_capture_config_t *cfg, const sms_capture_event_t *ev,
                            const char *event_id, sms_capture_record_t *rec);

/* Writes the measured line, exactly rec->len bytes, at d (no NUL). */
void sms_capture_record_write(char *d, const sms_capture_record_t *rec);

/* Appends one record as a single JSON line (with the trailing newline) to
 * out, exactly as SageMaker data capture writes it; event_id is a UUIDv4
 * string. Keys in SageMaker's order, no spaces; endpointInput/endpointOutput
 * per the capture options; inferenceId, customAttributes and targetModel
 * each only when the event's string is non-empty; inferenceTime "yyyy-mm-ddThh:mm:ssZ". Strings are
 * escaped
 * (\" \\ \b \f \n \r \t, other controls \u00XX); a CSV or JSON payload
 * that is not well-formed UTF-8 is written as BASE64 for that part, and
 * ill-formed bytes in a content type or id become U+FFFD. A NULL content
 * type is recorded as "" with BASE64. 0, or -1 when out of memory. */
int sms_capture_record_encode(const sms_capture_config_t *cfg, const sms_capture_event_t *ev,
                              const char *event_id, sms_buf_t *out);

/* A time in UTC. Times are clamped to years 0000-9999: before the epoch
 * counts as the epoch, after 9999-12-31T23:59:59.999Z as that instant. */
typedef struct sms_capture_utc {
    int year, month, day, hour, min, sec, ms;
} sms_capture_utc_t;

/* time_ms (ms since the epoch) broken down in UTC, clamped as above; no
 * time zone lock, unlike gmtime_r. */
void sms_capture_utc(int64_t time_ms, sms_capture_utc_t *out);

/* Whole hours since the epoch of time_ms, clamped as above: two times
 * with the same hour are recorded in the same hour's file. */
int64_t sms_capture_hour(int64_t time_ms);

#endif
