/* Media types at the HTTP edge: which decoder a request's Content-Type asks
 * for, and which encoding its Accept header (or the configured default)
 * chooses. Pure string work on header values; knows nothing of the decoders
 * or encoders themselves. */
#ifndef SMSERVE_MEDIATYPE_H
#define SMSERVE_MEDIATYPE_H

#include "smserve/error.h"

typedef enum sms_input {
    SMS_IN_CSV = 0,
    SMS_IN_LIBSVM,
    SMS_IN_RECORDIO,
    SMS_IN_JSON,
    SMS_IN_JSONLINES,
} sms_input_t;

typedef enum sms_encoding {
    SMS_ENC_CSV = 0,
    SMS_ENC_JSON,
    SMS_ENC_JSONLINES,
    SMS_ENC_RECORDIO,
} sms_encoding_t;

#define SMS_ENC_COUNT  4
#define SMS_ENC_BIT(e) (1u << (e))
/* Every encoding smserve can negotiate. */
#define SMS_ENC_ALL                                                                                \
    (SMS_ENC_BIT(SMS_ENC_CSV) | SMS_ENC_BIT(SMS_ENC_JSON) | SMS_ENC_BIT(SMS_ENC_JSONLINES) |       \
     SMS_ENC_BIT(SMS_ENC_RECORDIO))

/* The input kind for a Content-Type value, as AWS's XGBoost container reads
 * it: case-insensitive, the media type before ';' with OWS trimmed.
 * text/csv and csv -> CSV (a label_size parameter must be 1);
 * text/libsvm, text/x-libsvm and libsvm -> libsvm; application/x-recordio-
 * protobuf and recordio-protobuf -> RecordIO; application/json -> JSON;
 * application/jsonlines and application/x-jsonlines -> JSON lines (the last
 * two are smserve's, AWS refuses them). content_type NULL (no header) is
 * libsvm, as in AWS. 0, or -1 with a 415 quoting the value as sent for
 * anything else: an empty value, parquet, an unknown type, label_size != 1. */
int sms_media_input(const char *content_type, sms_input_t *in, sms_error_t *err);

/* Picks the encoding for an Accept header value among those in `offered`
 * (SMS_ENC_BIT mask). NULL, empty or only commas: `fallback`. Honours
 * comma-separated lists, parameters, case and q-values (q=0 excludes; a
 * malformed q counts as 1), and wildcards (star/star, text/star,
 * application/star). Each encoding takes the q of the most specific range
 * naming it; the highest q wins, a tie goes to the earlier range, and within
 * one wildcard range to `fallback`, then to enum order. Also understood:
 * application/x-jsonlines. 0 and *out set, or -1 when nothing offered is
 * acceptable (HTTP 406). */
int sms_media_output(const char *accept, sms_encoding_t fallback, unsigned offered,
                     sms_encoding_t *out);

/* sms_media_output offering text/csv, application/json and
 * application/jsonlines: what the server negotiates until RecordIO answers
 * are wired. */
int sms_encoding_from_accept(const char *accept, sms_encoding_t fallback, sms_encoding_t *out);

/* The default encoding from SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT's value
 * (NULL or empty: text/csv), read like an Accept header among `offered`.
 * 0, or -1 with a 500 naming the variable and what it may be (the server
 * refuses to start: AWS takes any value and answers 500 on every request). */
int sms_media_default_accept(const char *value, unsigned offered, sms_encoding_t *out,
                             sms_error_t *err);

#endif
