/* Run-time configuration from the environment (SageMaker passes the model's
 * Environment map as env vars). Every value is checked here, at the edge; an
 * invalid one is a start-up error naming the variable. */
#ifndef SMSERVE_CONFIG_H
#define SMSERVE_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include "smserve/encode.h"
#include "smserve/error.h"
#include "smserve/select.h"

typedef struct sms_config {
    char model_dir[PATH_MAX]; /* SM_MODEL_DIR, default /opt/ml/model */
    int port;                 /* SAGEMAKER_BIND_TO_PORT, default 8080 */
    int workers;   /* SAGEMAKER_MODEL_SERVER_WORKERS: predictions at once, default CPUs */
    int timeout_s; /* SAGEMAKER_MODEL_SERVER_TIMEOUT, default 60 */
    size_t max_content_length;     /* MAX_CONTENT_LENGTH bytes, default 6291456 */
    sms_encoding_t default_accept; /* SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT, default text/csv */
    int connections;          /* SMSERVE_CONNECTIONS: connection slots (threads), default 2048 */
    int header_timeout_ms;    /* SMSERVE_HEADER_TIMEOUT_MS: request head deadline, 5000 */
    int keepalive_timeout_ms; /* SMSERVE_KEEPALIVE_TIMEOUT_MS: idle keep-alive, 3000 */
    int body_timeout_ms;      /* SMSERVE_BODY_TIMEOUT_MS: body deadline base, 10000 */
    long body_min_rate;       /* SMSERVE_BODY_MIN_RATE: bytes/s added to it, 1 MiB/s */
    size_t body_budget;       /* SMSERVE_BODY_BUDGET_BYTES: bodies in flight, summed */
    int drain_timeout_ms;     /* SMSERVE_DRAIN_TIMEOUT_MS: longest SIGTERM drain, 10000 */
    bool allow_newer;         /* SMSERVE_ALLOW_NEWER: newer producer version only warns */
    bool native_engine;       /* SMSERVE_ENGINE: native (default) or xgboost (C API) */
    bool metrics;             /* SMSERVE_METRICS: record invocation metrics (true) */
    /* Batch transform (SageMaker sets these only when the user did; 0/false: unset). */
    int max_concurrent_transforms; /* SAGEMAKER_MAX_CONCURRENT_TRANSFORMS */
    int max_payload_mb;            /* SAGEMAKER_MAX_PAYLOAD_IN_MB, 1..100 */
    size_t max_matrix_values;      /* SMSERVE_MAX_MATRIX_VALUES, rows x columns per body */
    bool single_record;            /* SAGEMAKER_BATCH_STRATEGY=SINGLE_RECORD */
    bool batch;                    /* SAGEMAKER_BATCH */
    bool multi_model;              /* SAGEMAKER_MULTI_MODEL: the /models API, no model at start */
    size_t model_budget;           /* SMSERVE_MODEL_MEMORY_BYTES: loaded models' bytes, summed */
    bool has_selection;            /* SAGEMAKER_INFERENCE_OUTPUT is set */
    sms_selection_t selection;     /* its keys (checked against the model at start) */
} sms_config_t;

/* Fills cfg from the environment. 0, or -1 with err->msg naming the
 * variable, its value and what is accepted. */
int sms_config_from_env(sms_config_t *cfg, sms_error_t *err);

#endif
