/* The native linear evaluator: a gblinear model, serialised to JSON through
 * the C API after it has loaded, compiled into its weight matrix, bias and
 * base margin, and evaluated with XGBoost 3.4's own gblinear arithmetic
 * (GBLinear::Pred: a float sum that starts from bias + base margin and adds
 * each present feature's value * weight in feature order, then the
 * objective's transform). Knows nothing of HTTP; the model backend decides
 * whether to use it (behind the same parity gate as forest.h). */
#ifndef SMSERVE_LINEAR_H
#define SMSERVE_LINEAR_H

#include <stdbool.h>
#include <stddef.h>

typedef struct sms_linear sms_linear_t;

/* Compiles a gblinear model from the JSON that XGBoosterSaveModelToBuffer
 * writes (len bytes, not NUL-terminated), for any objective that
 * forest.h's sms_objective_read knows. Anything else (a tree booster, a
 * weight vector that is not (num_feature + 1) x outputs finite floats, an
 * unknown objective) returns NULL with a one-line reason in why (why_size
 * bytes). Free with sms_linear_free. */
sms_linear_t *sms_linear_compile(const char *json, size_t len, char *why, size_t why_size);
void sms_linear_free(sms_linear_t *l);

size_t sms_linear_num_feature(const sms_linear_t *l);
size_t sms_linear_num_output(const sms_linear_t *l); /* values per row, as XGBoost returns */

/* The bytes l holds: malloc_usable_size of the struct and of its arrays. */
size_t sms_linear_bytes(const sms_linear_t *l);

/* Floats of workspace that sms_linear_predict needs (at most
 * 16 x (4096 + outputs)). */
size_t sms_linear_workspace_floats(const sms_linear_t *l);

/* Predicts rows x num_feature floats (row-major, NaN = missing, which adds
 * nothing) into out (rows x num_output floats), exactly as
 * XGBoosterPredictFromDMatrix with type 0 does on a DMatrix made from them
 * with missing = NaN. The rows must hold no infinity: XGBoost refuses to
 * make a DMatrix of them, so the caller refuses them first. work holds
 * sms_linear_workspace_floats(l) floats owned by the caller. Read-only on
 * l: any number of threads may predict at once, each with its own work.
 * Allocates nothing. */
void sms_linear_predict(const sms_linear_t *l, const float *x, size_t rows, float *out,
                        float *work);

/* How each value * weight is added to the sum: two roundings (the product,
 * then the sum) as XGBoost's x86_64 build does, or one, where the compiler
 * that built the library contracted them into a fused multiply-add (fmaf
 * here). A compiled model starts with two roundings; the caller finds the
 * library's by comparing both with the C API (model.c's parity gate). Not
 * while other threads predict with l. */
void sms_linear_set_fused(sms_linear_t *l, bool fused);
bool sms_linear_fused(const sms_linear_t *l);

/* Fills a parity probe batch of `rows` rows (rows x num_feature floats): a
 * deterministic mix (seeded by `seed`) of missing values, zeros of both
 * signs, values from 2^-8 to 2^9 in magnitude, +-1e30 (whose products may
 * overflow), and rows built so that large terms cancel (where the order and
 * rounding of the sum show). No infinities (see sms_linear_predict). */
void sms_linear_probe(const sms_linear_t *l, unsigned seed, size_t rows, float *out);

#endif
