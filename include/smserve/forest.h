/* The native tree evaluator. After the XGBoost C API has loaded and checked
 * a model, the model is serialised to JSON through the C API and compiled
 * here into flat, cache-friendly node arrays; rows are then evaluated
 * with XGBoost's own arithmetic (float32 comparisons, default directions
 * for missing values, base margin, tree order, dart weights, the
 * objective's transform), without the library's per-call overhead.
 * Knows nothing of HTTP; the model backend decides whether to use it. */
#ifndef SMSERVE_FOREST_H
#define SMSERVE_FOREST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct sms_forest sms_forest_t;

/* Compiles a model from the JSON that XGBoosterSaveModelToBuffer(booster,
 * "{\"format\": \"json\"}") writes (len bytes, not NUL-terminated). Handles
 * gbtree and dart boosters with numerical splits, any number of output
 * groups, and the objectives reg:squarederror, reg:linear, reg:logistic,
 * reg:pseudohubererror, reg:absoluteerror, reg:squaredlogerror, reg:gamma,
 * reg:tweedie, count:poisson, survival:cox, binary:logistic,
 * binary:logitraw, binary:hinge, multi:softprob, multi:softmax. Anything
 * else (gblinear, categorical splits, vector leaves, an unknown objective or
 * field) returns NULL with a one-line reason in why (why_size bytes), and
 * the caller keeps using the C API. Hostile JSON is refused too: every tree
 * must be a tree (no node reached twice, children in range and adjacent as
 * XGBoost writes them, at most 256 deep; unreachable nodes, which pruning
 * leaves behind, are ignored), and every split on a feature < num_feature.
 * Free with sms_forest_free. */
sms_forest_t *sms_forest_compile(const char *json, size_t len, char *why, size_t why_size);
void sms_forest_free(sms_forest_t *f);

size_t sms_forest_num_feature(const sms_forest_t *f);
size_t sms_forest_num_output(const sms_forest_t *f); /* values per row, as XGBoost returns */
size_t sms_forest_num_trees(const sms_forest_t *f);
size_t sms_forest_num_nodes(const sms_forest_t *f);

/* Floats of workspace that sms_forest_predict needs for this model (a few
 * KB; tens of KB for wide models). */
size_t sms_forest_workspace_floats(const sms_forest_t *f);

/* Predicts rows x num_feature floats (row-major, NaN = missing) into out
 * (rows x num_output floats), exactly as XGBoosterPredictFromDense with
 * type 0 (transformed values) would. work holds
 * sms_forest_workspace_floats(f) floats owned by the caller (one per
 * thread). Read-only on f: any number of threads may predict at once, each
 * with its own work. Allocates nothing and keeps its stack small. */
void sms_forest_predict(const sms_forest_t *f, const float *x, size_t rows, float *out,
                        float *work);

/* How a dart model's trees are added to the margin. XGBoost adds each as
 * margin += (tree prediction - base margin) * weight in float, which is
 * two roundings (the product, then the sum) where the library was built
 * without fused multiply-add, as on x86_64, and one where the compiler
 * contracted it into a fused multiply-add, as in Debian's arm64 build. A
 * compiled forest starts with two roundings; fused = true gives one
 * (fmaf, exact on any platform, slower without hardware FMA). Which one
 * the library does is found by asking it: the caller compares both with
 * the C API (model.c's parity gate). No effect on gbtree models, whose
 * leaves are added as they are. Not while other threads predict with f. */
void sms_forest_set_fused(sms_forest_t *f, bool fused);
bool sms_forest_fused(const sms_forest_t *f);

/* Fills a parity probe batch of `rows` rows (rows x num_feature floats):
 * a deterministic mix (seeded by `seed`) of rows whose values sit exactly at
 * split thresholds, one float ulp either side of them, missing values,
 * infinities, and random values across each feature's threshold range
 * (features without splits get random values in [-1, 1]). */
void sms_forest_probe(const sms_forest_t *f, unsigned seed, size_t rows, float *out);

#endif
