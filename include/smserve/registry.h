/* The models of a multi-model endpoint: loaded by name from a directory or
 * a model.tar.gz with the same checks as single-model serving, held in
 * memory against a byte budget, shared by reference counts with the
 * requests using them and unloaded once the last one is done. Thread-safe
 * throughout; one mutex guards the table, and no lock is held while a
 * model loads, predicts or is freed. Knows nothing of HTTP. */
#ifndef SMSERVE_REGISTRY_H
#define SMSERVE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "smserve/error.h"
#include "smserve/metrics.h"
#include "smserve/model.h"
#include "smserve/select.h"

/* The longest model name taken, in bytes. */
#define SMS_MODEL_NAME_MAX 256

typedef struct sms_registry_config {
    size_t budget_bytes;        /* what loaded models may hold, summed */
    bool native;                /* the native evaluator where it passes its gate */
    bool allow_newer;           /* SMSERVE_ALLOW_NEWER */
    const sms_selection_t *sel; /* SAGEMAKER_INFERENCE_OUTPUT, checked per model; or NULL */
    int wait_ms;                /* longest a request waits for a model being loaded */
} sms_registry_config_t;

typedef struct sms_registry sms_registry_t;
/* A loaded model as a request holds it (between acquire and release). */
typedef struct sms_loaded sms_loaded_t;

/* cfg is copied (sel must outlive the registry); metrics may be NULL.
 * NULL when out of memory. */
sms_registry_t *sms_registry_create(const sms_registry_config_t *cfg, sms_metrics_t *metrics);
/* Frees every model. No request may hold one. */
void sms_registry_free(sms_registry_t *r);

/* Whether name is one the registry takes: 1 to SMS_MODEL_NAME_MAX bytes of
 * letters, digits and . _ - ~ (not "." or ".."). 0, or -1 with err (400). */
int sms_registry_check_name(const char *name, size_t len, sms_error_t *err);

/* Loads the model at url (a directory or a model.tar.gz) as name. A name
 * being loaded by another call is loaded once: this call waits for it and
 * answers as for a loaded name. 0 when loaded (*load_us: how long it took,
 * *bytes: what the model holds, as counted in the budget);
 * else -1 with err: 409 when name is loaded, 507 when the model would take
 * the loaded models past the budget (nothing stays loaded), 400 when the
 * artifact is refused (the check's reason), 404 when url does not exist,
 * 500 when out of memory. */
int sms_registry_load(sms_registry_t *r, const char *name, const char *url, uint64_t *load_us,
                      size_t *bytes, sms_error_t *err);

/* Unloads name once the requests holding it are done; the model's memory
 * is back in the budget when this returns. 0, or -1 with err: 404 when
 * name is not loaded, 409 while it is still loading. */
int sms_registry_unload(sms_registry_t *r, const char *name, sms_error_t *err);

/* The model loaded as name, held until sms_registry_release; a model being
 * loaded is waited for (up to wait_ms; *waited_us says how long, 0 when it
 * was loaded already). NULL with err: 404 when not loaded (or its load
 * failed), 503 when its load took longer than wait_ms. */
sms_loaded_t *sms_registry_acquire(sms_registry_t *r, const char *name, uint64_t *waited_us,
                                   sms_error_t *err);
void sms_registry_release(sms_registry_t *r, sms_loaded_t *l);

sms_model_t *sms_loaded_model(const sms_loaded_t *l);
const char *sms_loaded_name(const sms_loaded_t *l);
const char *sms_loaded_url(const sms_loaded_t *l);
size_t sms_loaded_bytes(const sms_loaded_t *l);
sms_model_series_t *sms_loaded_series(const sms_loaded_t *l); /* NULL without metrics */

/* Loaded models in byte order of their names: the first `limit` after
 * `after` (NULL or "": from the start). Calls each(arg, name, url) for
 * each, under the registry's lock (each must not call the registry).
 * Returns how many were listed; *more says whether any follow. */
size_t sms_registry_list(sms_registry_t *r, const char *after, size_t limit,
                         void (*each)(void *arg, const char *name, const char *url), void *arg,
                         bool *more);

typedef struct sms_registry_stats {
    size_t loaded;       /* models loaded */
    size_t loading;      /* loads under way */
    size_t used_bytes;   /* what the loaded models hold */
    size_t budget_bytes; /* the budget */
} sms_registry_stats_t;
void sms_registry_stats(sms_registry_t *r, sms_registry_stats_t *out);

#endif
