/* The HTTP front: CivetWeb serving /ping and /invocations under the
 * SageMaker hosting contract. It binds the port before the model loads, so
 * /ping answers 503 until sms_http_set_model and 200 after. Reads the body,
 * hands bytes to a decoder, the matrix to the model and the predictions to
 * an encoder; maps every failure to a status and a JSON error body. */
#ifndef SMSERVE_HTTP_H
#define SMSERVE_HTTP_H

#include "smserve/capture.h"
#include "smserve/config.h"
#include "smserve/error.h"
#include "smserve/metrics.h"
#include "smserve/model.h"
#include "smserve/registry.h"

typedef struct sms_http sms_http_t;

/* Binds cfg->port and starts the connection threads. Every /invocations
 * request is recorded in metrics (when not NULL) and, when 200 and sampled,
 * handed to capture (when not NULL); /ping and /metrics are not counted.
 * Both must outlive the server. 0 or -1 with err. */
int sms_http_start(const sms_config_t *cfg, sms_metrics_t *metrics, sms_capture_t *capture,
                   sms_http_t **out, sms_error_t *err);
/* Publishes a loaded model; requests use it from then on. */
void sms_http_set_model(sms_http_t *h, sms_model_t *model);
/* Makes the server a multi-model endpoint serving registry's models under
 * /models (set before any request; /ping then answers 200 with no model). */
void sms_http_set_registry(sms_http_t *h, sms_registry_t *registry);
/* Stops accepting, lets in-flight requests finish, frees the server (not
 * the model). */
void sms_http_stop(sms_http_t *h);

#endif
