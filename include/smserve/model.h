/* The model backend: XGBoost boosters loaded from checked artifacts, and
 * prediction through the C API's in-place path with one reused proxy
 * DMatrix per thread. Several artifacts form an ensemble (predictions
 * averaged; majority vote for class-label objectives), as AWS's container
 * does. Knows nothing of HTTP or content types. */
#ifndef SMSERVE_MODEL_H
#define SMSERVE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include "smserve/artifact.h"
#include "smserve/buf.h"
#include "smserve/error.h"

typedef struct sms_model sms_model_t;

/* Loads every artifact of an ok set into boosters (nthread 1), then
 * confirms that each booster reports the num_feature, objective and
 * base_score its file declared, and that all members of an ensemble agree.
 * With `native`, each tree booster is compiled into the native evaluator
 * and kept there if it passes the parity gate (within 1 float32 ulp of the
 * C API on a probe batch), and the booster is freed; otherwise, or without
 * `native`, it predicts through the C API. sms_model_engine says which and
 * why. On failure returns -1 with diag filled (check "load") and *out NULL.
 * Free with sms_model_free. A member left on the C API holds state on
 * every thread that loaded or predicted with its booster (XGBoost's
 * per-thread results and buffers), which XGBoost frees with the booster
 * only on the thread that frees it; the others keep theirs until they
 * exit. A native member holds no booster. */
int sms_model_load(const sms_artifact_set_t *set, bool native, sms_model_t **out, sms_diag_t *diag);
void sms_model_free(sms_model_t *m);

size_t sms_model_num_feature(const sms_model_t *m);
size_t sms_model_num_output(const sms_model_t *m); /* values per row */
/* The classes a multi:softmax/softprob model declares (softmax answers one
 * value per row but has num_class labels); 0 for other objectives. */
size_t sms_model_num_class(const sms_model_t *m);
const char *sms_model_objective(const sms_model_t *m);
size_t sms_model_size(const sms_model_t *m); /* boosters in the ensemble */
/* One clause per member: the engine that serves it and why. */
const char *sms_model_engine(const sms_model_t *m);

/* The bytes the loaded model holds, for a memory budget per model: the
 * model and its members array, every block of a native member's evaluator
 * (sms_forest_bytes, sms_linear_bytes) counted exactly, and for a member
 * that keeps its XGBoost booster (the C API serves it) an estimate of the
 * booster's memory, measured by bench/bench_load.c, that errs high.
 * Excludes the per-thread prediction buffers (sms_model_thread_trim's) and
 * XGBoost's per-thread results of a booster on threads other than the
 * loading one. Constant after sms_model_load. */
size_t sms_model_bytes(const sms_model_t *m);

/* Predicts rows x num_feature floats (NaN = missing) into out (reset, then
 * rows x num_output values). Thread-safe. -1 with err (status 500, or 400
 * when XGBoost rejects the input) on failure. */
int sms_model_predict(sms_model_t *m, const float *x, size_t rows, sms_matrix_t *out,
                      sms_error_t *err);

/* Releases the calling thread's proxy DMatrix (call before a worker thread
 * exits). */
void sms_model_thread_cleanup(void);
/* XGBoost's own loops on the calling thread run on it alone: what runs
 * before a booster's nthread=1 applies (its model load reads the trees in
 * a parallel loop) uses one thread, not an OpenMP team of every core. */
void sms_model_thread_serial(void);
/* Frees the calling thread's prediction buffers that are over `keep` bytes. */
void sms_model_thread_trim(size_t keep);

/* XGBoostVersion() as an sms_version_t. */
sms_version_t sms_model_runtime_version(void);

#endif
