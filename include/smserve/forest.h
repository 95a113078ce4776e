/* The native tree evaluator. After the XGBoost C API has loaded and checked
 * a model, the model is serialised (UBJSON, or JSON) through the C API
 * and compiled here into flat, cache-friendly node arrays; rows are then
 * evaluated with XGBoost 3.4's own arithmetic (float32 comparisons, default
 * directions for missing values, category sets, base margins, tree order,
 * dart weights, the objective's transform), without the library's per-call
 * overhead.
 * Also owns the objective half of that arithmetic (base_score to margins,
 * margins to outputs), which the linear evaluator (linear.h) shares.
 * Knows nothing of HTTP; the model backend decides whether to use it. */
#ifndef SMSERVE_FOREST_H
#define SMSERVE_FOREST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct sms_forest sms_forest_t;

/* Compiles a model from the JSON that XGBoosterSaveModelToBuffer(booster,
 * "{\"format\": \"json\"}") writes (len bytes, not NUL-terminated; XGBoost's
 * bare NaN / Infinity tokens are accepted). Handles gbtree boosters (and
 * dart, which 3.4 saves as gbtree with "weight_drop") with numerical and
 * categorical splits, scalar leaves (one tree per output group) or vector
 * leaves ("leaf_weights", one value per target), a scalar or vector
 * base_score, and the objectives reg:squarederror, reg:linear,
 * reg:pseudohubererror, reg:absoluteerror, reg:squaredlogerror,
 * reg:quantileerror, reg:expectileerror, reg:logistic, reg:gamma,
 * reg:tweedie, count:poisson, survival:cox, survival:aft, binary:logistic,
 * binary:logitraw, binary:hinge, multi:softprob, multi:softmax, rank:ndcg,
 * rank:pairwise, rank:map. Anything else (gblinear, vector leaves in the
 * 2.0-3.1 layout, an unknown objective or field) returns NULL with a
 * one-line reason in why (why_size bytes), and the caller keeps using the
 * C API. Hostile JSON is refused too: every tree must be a tree (no node
 * reached twice, children in range and adjacent as XGBoost writes them, at
 * most 256 deep; unreachable nodes, which pruning leaves behind, are
 * ignored), every split on a feature < num_feature, categories in
 * [0, 2^24) with their segments inside the categories array, vector leaves
 * inside leaf_weights, every array as long as the model says.
 * Free with sms_forest_free. */
sms_forest_t *sms_forest_compile(const char *json, size_t len, char *why, size_t why_size);
/* The same from the UBJSON that XGBoosterSaveModelToBuffer(booster,
 * "{\"format\": \"ubj\"}") writes (len bytes), with the same checks and
 * the same forest: the trees' typed arrays are read where they are, not
 * made into JSON values, so a model compiles several times faster than
 * from its JSON. Bytes that are not UBJSON as XGBoost writes it (counted
 * or end-marked arrays, typed arrays of numbers, objects without counts)
 * are refused with a reason, as is anything sms_forest_compile refuses.
 * Free with sms_forest_free. */
sms_forest_t *sms_forest_compile_ubj(const unsigned char *ubj, size_t len, char *why,
                                     size_t why_size);
void sms_forest_free(sms_forest_t *f);

/* Frees what only the parity gate needs (sms_forest_probe's thresholds and
 * categories, sms_forest_set_fused's dart leaves as written, the nodes of
 * the general layout when the complete one predicts, dart weights that an
 * unfused forest does not read), once the forest is final. f then only
 * predicts and answers the sms_forest_num_* / leaf_size / fused /
 * sums_first / objective / bytes questions: sms_forest_probe,
 * sms_forest_set_fused and sms_forest_set_writer must not be called on it
 * any more. Its predictions are unchanged. */
void sms_forest_seal(sms_forest_t *f);

size_t sms_forest_num_feature(const sms_forest_t *f);
size_t sms_forest_num_output(const sms_forest_t *f); /* values per row, as XGBoost returns */
size_t sms_forest_num_trees(const sms_forest_t *f);
size_t sms_forest_num_nodes(const sms_forest_t *f);
size_t sms_forest_num_categorical(const sms_forest_t *f); /* categorical split nodes */
size_t sms_forest_leaf_size(const sms_forest_t *f);       /* values per leaf: 1, or targets */

/* The bytes f holds: malloc_usable_size of the struct and of every array
 * it owns. */
size_t sms_forest_bytes(const sms_forest_t *f);

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

/* How a dart model's trees are added to the margin. XGBoost 3.4 adds each
 * as margin += leaf * weight in float, which is two roundings (the
 * product, then the sum) where the library was built without fused
 * multiply-add, as on x86_64, and one where the compiler contracted it into
 * a fused multiply-add. A compiled forest starts with two roundings;
 * fused = true gives one (fmaf, exact on any platform, slower without
 * hardware FMA). Which one the library does is found by asking it: the
 * caller compares both with the C API (model.c's parity gate). No effect on
 * models without tree weights, whose leaves are added as they are. Not
 * while other threads predict with f. */
void sms_forest_set_fused(sms_forest_t *f, bool fused);
bool sms_forest_fused(const sms_forest_t *f);

/* The arithmetic of the release that wrote the model, where it differs from
 * the runtime's (a model loaded into 3.4 predicts the 3.4 way otherwise):
 * - sum_trees_first: releases before 1.3 summed a row's trees from zero in
 *   float and added the base margin last; 1.3 and later start from the base
 *   margin. Applies to trees without dart weights; sms_forest_sums_first
 *   says whether it took effect.
 * - unsorted_quantiles: reg:quantileerror before 3.4 returned each row's
 *   quantiles as the trees gave them; 3.4 sorts them.
 * Not while other threads predict with f. */
void sms_forest_set_writer(sms_forest_t *f, bool sum_trees_first, bool unsorted_quantiles);
bool sms_forest_sums_first(const sms_forest_t *f);

/* Fills a parity probe batch of `rows` rows (rows x num_feature floats):
 * a deterministic mix (seeded by `seed`) of rows whose values sit exactly at
 * split thresholds, one float ulp either side of them, missing values,
 * infinities, and random values across each feature's threshold range
 * (features without splits get random values in [-1, 1]). Features of
 * categorical splits also get the categories of their sets, categories
 * outside them (just past the largest, at and past the end of the set's
 * bitset), negative, fractional and huge values (2^24 and above, which
 * XGBoost takes as no category). */
void sms_forest_probe(const sms_forest_t *f, unsigned seed, size_t rows, float *out);

/* ---- the objective, shared with linear.c ----------------------------------
 * What XGBoost 3.4 does around a booster's raw sums: base_score (one value
 * or one per output, in the objective's own scale) through the objective's
 * ProbToMargin into the starting margins, and the margins through its
 * PredTransform into the values it returns. */

#define SMS_OBJECTIVE_MAX_GROUPS 256

typedef struct sms_objective {
    const void *kind;   /* the objective's row in forest.c's table */
    size_t num_feature; /* learner_model_param.num_feature */
    size_t num_group;   /* margins per row: max(num_class, num_target, 1) */
    size_t num_output;  /* values per row after the transform */
    size_t num_alpha;   /* reg:quantileerror / reg:expectileerror: alphas */
    bool multiclass;    /* num_class > 1 */
    /* reg:quantileerror as written before 3.4: the quantiles as the trees
     * give them, not sorted (see sms_forest_set_writer). */
    bool unsorted_quantiles;
    float base_margin[SMS_OBJECTIVE_MAX_GROUPS];
} sms_objective_t;

/* Parses a model's JSON as XGBoosterSaveModelToBuffer writes it (len bytes,
 * not NUL-terminated; bare NaN / Infinity accepted), for the compilers of
 * forest.c and linear.c. Clears why first. Returns a new reference (caller
 * json_decref's it), or NULL with a one-line reason in why. */
json_t *sms_objective_parse_model(const char *json, size_t len, char *why, size_t why_size);

/* Reads the learner of a parsed model (the JSON's top-level object): the
 * objective, num_feature, num_class, num_target, base_score. `fitted` says
 * whether the booster counts as trained in XGBoost's eyes (a gbtree with
 * trees, a gblinear with boosted_rounds > 0): an unfitted model with
 * boost_from_average takes base_score as the margin, untransformed, as
 * XGBoost does. 0, or -1 with a one-line reason in why. */
int sms_objective_read(json_t *root, bool fitted, sms_objective_t *o, char *why, size_t why_size);

/* Transforms one row's num_group margins (overwritten as scratch) into its
 * num_output values, as the objective's PredTransform. */
void sms_objective_finish(const sms_objective_t *o, float *margin, float *out);

/* A list of finite floats as XGBoost writes parameters such as base_score:
 * one number ("0.5", "5E-1") or, from 3.1, a bracketed list ("[5E-1]",
 * "[1E0,2E0,3E0]"). Reads up to max values into values; returns how many
 * the text holds, or -1 when it is not such a list (text may be NULL). */
long sms_objective_floats(const char *text, float *values, long max);

/* The objective's name, as the model JSON gives it. */
const char *sms_objective_name(const sms_objective_t *o);

/* The model's objective (its base margins and transform), for a caller that
 * finishes margins the C API computed (model.c, for sum_trees_first). */
const sms_objective_t *sms_forest_objective(const sms_forest_t *f);

#endif
