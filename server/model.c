/* The model backend. Boosters are loaded from checked artifacts through the
 * XGBoost C API. By default each booster is then compiled into a native
 * evaluator (forest.c for trees, linear.c for gblinear), which must first
 * reproduce the C API's own predictions on a probe batch (the parity gate)
 * and then serves alone: the booster is freed. A model that fails the gate
 * or that the compiler does not recognise stays on the C API: gbtree and
 * dart in place with one proxy DMatrix per thread, gblinear (no in-place
 * path in 3.4 either, not thread-safe) through a DMatrix under a lock. */
#define _GNU_SOURCE
#include "smserve/model.h"
#include "smserve/xjson.h"
#include "smserve/forest.h"
#include "smserve/linear.h"

#include <inttypes.h>
#include <jansson.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xgboost/c_api.h>

typedef struct member {
    /* The C API's booster; freed (NULL) once a native evaluator passed the
     * parity gate, as nothing reads it then. */
    BoosterHandle booster;
    size_t booster_bytes; /* booster_estimate of it, 0 without one */
    /* The longest serialisation of the booster made on the loading thread,
     * which XGBoost keeps there as long as the booster lives. */
    size_t serialised;
    bool linear; /* gblinear: DMatrix path, serialised */
    pthread_mutex_t lock;
    /* The native evaluator of a tree or a gblinear booster, when it passed
     * the parity gate (NULL otherwise); sealed (sms_forest_seal). */
    sms_forest_t *forest;
    sms_linear_t *linear_native;
    /* The writer's arithmetic where the runtime's differs (see
     * sms_forest_set_writer); the C API path then asks for margins and
     * finishes them with the writer's objective. */
    bool sum_first;
    bool unsorted_quantiles;
    sms_objective_t *writer_objective; /* the compiled writer's, when sum_first */
    /* During the load only: the forest writer_arithmetic compiled, which
     * the parity gate takes as its candidate instead of compiling again. */
    sms_forest_t *compiled;
} member_t;

struct sms_model {
    member_t *members;
    size_t count;
    size_t num_feature;
    size_t num_output;
    size_t num_class; /* num_class as the model declares it (0 when not a classifier) */
    bool vote;        /* class-label objectives: ensemble by majority vote */
    char objective[64];
    char engine[1024]; /* which engine serves each member, and why */
};

/* Rows in the parity gate's probe batch. */
#define GATE_ROWS 512

/* Transformed values of every tree; missing values arrive as NaN. */
static const char PREDICT_CONFIG[] =
    "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, "
    "\"strict_shape\": false, \"missing\": NaN}";

/* Margins: reg:quantileerror before 3.4 (unsorted), and the trees' sums for
 * a release before 1.3 (with a zero base margin on the proxy). */
static const char PREDICT_MARGIN_CONFIG[] =
    "{\"type\": 1, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, "
    "\"strict_shape\": false, \"missing\": NaN}";

static _Thread_local DMatrixHandle thread_proxy;
/* A second proxy carrying a zero base margin, and the values finished from
 * its margins (sum_first members). */
static _Thread_local DMatrixHandle thread_proxy_zero;
static _Thread_local sms_matrix_t thread_zeros;
static _Thread_local sms_matrix_t thread_finished;
/* Per-thread room for one ensemble member's predictions, and for the
 * native evaluator's workspace. */
static _Thread_local sms_matrix_t thread_scratch;
static _Thread_local sms_matrix_t thread_work;

sms_version_t sms_model_runtime_version(void)
{
    sms_version_t v = {0, 0, 0};
    XGBoostVersion(&v.major, &v.minor, &v.patch);
    return v;
}

void sms_model_thread_cleanup(void)
{
    if (thread_proxy) {
        XGDMatrixFree(thread_proxy);
        thread_proxy = NULL;
    }
    if (thread_proxy_zero) {
        XGDMatrixFree(thread_proxy_zero);
        thread_proxy_zero = NULL;
    }
    sms_matrix_free(&thread_zeros);
    sms_matrix_free(&thread_finished);
    sms_matrix_free(&thread_scratch);
    sms_matrix_free(&thread_work);
}

void sms_model_thread_serial(void)
{
    /* XGBoost's global configuration is per thread; nthread bounds the
     * Context of every booster the thread creates until its own nthread. */
    XGBSetGlobalConfig("{\"nthread\": 1}");
}

void sms_model_thread_trim(size_t keep)
{
    sms_matrix_trim(&thread_zeros, keep);
    sms_matrix_trim(&thread_finished, keep);
    sms_matrix_trim(&thread_scratch, keep);
    sms_matrix_trim(&thread_work, keep);
}

static void diag_load(sms_diag_t *d, const char *name, const char *fmt, const char *detail)
{
    snprintf(d->check, sizeof d->check, "load");
    snprintf(d->reason, sizeof d->reason, fmt, name, detail);
    snprintf(d->fix, sizeof d->fix,
             "re-save the model with xgboost %d.%d (booster.save_model(\"xgboost-model.json\")) "
             "and check it with `smserve check`",
             sms_model_runtime_version().major, sms_model_runtime_version().minor);
}

/* First line of XGBoost's last error, without its stack trace. */
static const char *xgb_error(char *buf, size_t size)
{
    const char *e = XGBGetLastError();
    size_t n = strcspn(e ? e : "", "\n");
    if (n >= size)
        n = size - 1;
    memcpy(buf, e ? e : "", n);
    buf[n] = '\0';
    return buf;
}

/* Reads objective name and base_score from the booster's own configuration:
 * what the library will actually use, as opposed to what the file says.
 * base_score gets up to SMS_BASE_SCORE_MAX values, *base_count how many the
 * library holds (-1 when unreadable). */
static int runtime_params(BoosterHandle b, char *objective, size_t size, float *base_score,
                          long *base_count)
{
    bst_ulong len;
    const char *cfg;
    if (XGBoosterSaveJsonConfig(b, &len, &cfg) != 0)
        return -1;
    json_t *root = sms_xjson_parse(cfg, len, NULL, 0);
    if (!root)
        return -1;
    const char *name = json_string_value(
        json_object_get(json_object_get(json_object_get(root, "learner"), "objective"), "name"));
    const char *bs = json_string_value(json_object_get(
        json_object_get(json_object_get(root, "learner"), "learner_model_param"), "base_score"));
    int rc = name && bs ? 0 : -1;
    if (name)
        snprintf(objective, size, "%s", name);
    *base_count = sms_objective_floats(bs, base_score, SMS_BASE_SCORE_MAX);
    json_decref(root);
    return rc;
}

/* Whether the base_score the library loaded is the one the file declares:
 * the same vector, or the file's one number broadcast to every output. A
 * mismatch is written to detail. */
static bool same_base_score(const sms_model_info_t *info, const float *loaded, long count,
                            char *detail, size_t size)
{
    bool same = count > 0;
    for (long i = 0; same && i < count && i < SMS_BASE_SCORE_MAX; i++) {
        double want;
        if (info->base_score_vector && info->base_score_count > 1) {
            if (info->base_score_count != count)
                same = false;
            want = info->base_score_values[i];
        } else {
            want = info->base_score_vector ? info->base_score_values[0] : info->base_score;
        }
        if (same && !isfinite(want))
            break; /* nothing declared to compare with */
        same = same && fabs(loaded[i] - want) <= 1e-6 * fmax(1.0, fabs(want));
    }
    if (!same)
        snprintf(detail, size,
                 "the file declares base_score %s but XGBoost loaded %ld value(s) starting "
                 "%.9g: every prediction would be shifted",
                 info->base_score_text, count, count > 0 ? (double)loaded[0] : NAN);
    return same;
}

static bool same_objective(const char *declared, const char *loaded)
{
    /* 1.0 renamed reg:linear; the library reports the new name. */
    if (!strcmp(declared, "reg:linear"))
        declared = "reg:squarederror";
    return !strcmp(declared, loaded);
}

static bool older_than(const sms_model_info_t *info, int major, int minor)
{
    return info->version.major < major ||
           (info->version.major == major && info->version.minor < minor);
}

/* Saves m's booster in the format `config` names into the library's buffer
 * (*bytes, *len bytes; valid until the booster's next call) and counts it in
 * m->serialised. 0, or -1 with the reason in why. */
static int serialise(member_t *m, const char *config, const char **bytes, size_t *len, char *why,
                     size_t why_size)
{
    bst_ulong n = 0;
    if (XGBoosterSaveModelToBuffer(m->booster, config, &n, bytes) != 0) {
        char detail[200];
        snprintf(why, why_size, "the model could not be serialised: %s",
                 xgb_error(detail, sizeof detail));
        return -1;
    }
    m->serialised = (size_t)n > m->serialised ? (size_t)n : m->serialised;
    *len = (size_t)n;
    return 0;
}

/* The native tree evaluator of m's booster, compiled from its UBJSON
 * (which XGBoost writes faster than JSON and sms_forest_compile_ubj reads
 * several times faster); NULL with the reason in why. */
static sms_forest_t *compile_trees(member_t *m, char *why, size_t why_size)
{
    size_t len = 0;
    const char *ubj = NULL;
    if (serialise(m, "{\"format\": \"ubj\"}", &ubj, &len, why, why_size) < 0)
        return NULL;
    return sms_forest_compile_ubj((const unsigned char *)ubj, len, why, why_size);
}

/* Where the writing release computed differently from the runtime, the
 * member predicts the writer's way (see sms_forest_set_writer): trees from
 * before 1.3 (or of no recorded release: 0.x legacy files) sum first;
 * reg:quantileerror from before 3.4 is not sorted. The first needs the
 * objective's transform outside the library, from a compiled forest; a
 * model the compiler cannot read is refused rather than served the
 * runtime's way. */
static int writer_arithmetic(member_t *m, const sms_artifact_t *a, sms_diag_t *diag)
{
    const sms_model_info_t *info = &a->info;
    m->unsorted_quantiles = !strcmp(info->objective, "reg:quantileerror") && info->has_version &&
                            older_than(info, 3, 4);
    bool trees = !strcmp(info->booster, "gbtree");
    if (!trees || (info->has_version && !older_than(info, 1, 3)))
        return 0;
    char why[256] = "";
    sms_forest_t *writer = compile_trees(m, why, sizeof why);
    if (!writer) {
        char detail[300];
        snprintf(detail, sizeof detail,
                 "a release before 1.3 wrote it, which added its trees up in another order "
                 "than this runtime; reproducing that needs the model compiled: %.150s",
                 why);
        diag_load(diag, a->name, "%s: %s", detail);
        return -1;
    }
    sms_forest_set_writer(writer, true, m->unsorted_quantiles);
    m->sum_first = sms_forest_sums_first(writer);
    if (m->sum_first) {
        m->writer_objective = malloc(sizeof *m->writer_objective);
        if (!m->writer_objective) {
            sms_forest_free(writer);
            diag_load(diag, a->name, "%s: %s", "out of memory for the writer's arithmetic");
            return -1;
        }
        *m->writer_objective = *sms_forest_objective(writer);
    }
    m->compiled = writer;
    return 0;
}

/* Appends to out what the member does the writing release's way. */
static void writer_note(const member_t *m, char *out, size_t size)
{
    size_t n = strlen(out);
    if (m->sum_first && n < size)
        n += snprintf(out + n, size - n, ", trees summed before the base margin as before 1.3");
    if (m->unsorted_quantiles && n < size)
        snprintf(out + n, size - n, ", quantiles unsorted as before 3.4");
}

/* sum_first members on the C API: the trees' sums (a margin prediction from
 * a zero base margin, which adds the trees in the writer's order), then the
 * base margin, then the objective's transform. Result in thread_finished. */
static int capi_predict_sum_first(member_t *m, const char *iface, size_t rows, const float **result,
                                  size_t *values, sms_error_t *err)
{
    const sms_objective_t *obj = m->writer_objective;
    size_t ng = obj->num_group, no = obj->num_output;
    if (!thread_proxy_zero && XGProxyDMatrixCreate(&thread_proxy_zero) != 0)
        return sms_error_set(err, 500, "XGBoost could not create a proxy DMatrix");
    if (sms_matrix_reserve(&thread_zeros, rows * ng) < 0 ||
        sms_matrix_reserve(&thread_finished, rows * (ng > no ? ng : no)) < 0)
        return sms_error_set(err, 500, "out of memory for the writer's arithmetic");
    memset(thread_zeros.values, 0, rows * ng * sizeof *thread_zeros.values);
    char zeros[192];
    if (ng == 1)
        snprintf(zeros, sizeof zeros,
                 "{\"data\": [%" PRIuPTR ", true], \"shape\": [%zu], \"typestr\": \"<f4\", "
                 "\"version\": 3}",
                 (uintptr_t)thread_zeros.values, rows);
    else
        snprintf(zeros, sizeof zeros,
                 "{\"data\": [%" PRIuPTR ", true], \"shape\": [%zu, %zu], \"typestr\": "
                 "\"<f4\", \"version\": 3}",
                 (uintptr_t)thread_zeros.values, rows, ng);
    const bst_ulong *shape = NULL;
    bst_ulong dim = 0;
    const float *sums = NULL;
    char detail[300];
    if (XGProxyDMatrixSetDataDense(thread_proxy_zero, iface) != 0 ||
        XGDMatrixSetInfoFromInterface(thread_proxy_zero, "base_margin", zeros) != 0 ||
        XGBoosterPredictFromDense(m->booster, iface, PREDICT_MARGIN_CONFIG, thread_proxy_zero,
                                  &shape, &dim, &sums) != 0)
        return sms_error_set(err, 500, "prediction failed: %s", xgb_error(detail, sizeof detail));
    size_t n = 1;
    for (bst_ulong i = 0; i < dim; i++)
        n *= (size_t)shape[i];
    if (n != rows * ng)
        return sms_error_set(err, 500, "XGBoost returned %zu margins for %zu rows, expected %zu", n,
                             rows, rows * ng);
    float margin[SMS_OBJECTIVE_MAX_GROUPS];
    for (size_t r = 0; r < rows; r++) {
        for (size_t g = 0; g < ng; g++)
            margin[g] = obj->base_margin[g] + sums[r * ng + g];
        sms_objective_finish(obj, margin, thread_finished.values + r * no);
    }
    *result = thread_finished.values;
    *values = rows * no;
    return 0;
}

static int load_member(member_t *m, const sms_artifact_t *a, sms_diag_t *diag)
{
    char detail[300];
    if (XGBoosterCreate(NULL, 0, &m->booster) != 0) {
        diag_load(diag, a->name, "%s: XGBoost could not create a booster: %s",
                  xgb_error(detail, sizeof detail));
        return -1;
    }
    pthread_mutex_init(&m->lock, NULL);
    m->linear = !strcmp(a->info.booster, "gblinear");
    /* A JSON model's UBJSON when the scan made one: the same model to
     * XGBoost, loaded in a fifteenth of the time. */
    const unsigned char *bytes = a->ubj ? a->ubj : a->bytes;
    if (XGBoosterLoadModelFromBuffer(m->booster, bytes, a->ubj ? a->ubj_len : a->len) != 0) {
        diag_load(diag, a->name, "%s: XGBoost failed to load it: %s",
                  xgb_error(detail, sizeof detail));
        return -1;
    }
    if (XGBoosterSetParam(m->booster, "nthread", "1") != 0) {
        diag_load(diag, a->name, "%s: XGBoost rejected nthread=1: %s",
                  xgb_error(detail, sizeof detail));
        return -1;
    }
    bst_ulong nf = 0;
    char objective[64] = "";
    float base_score[SMS_BASE_SCORE_MAX];
    long base_count = -1;
    if (XGBoosterGetNumFeature(m->booster, &nf) != 0 ||
        runtime_params(m->booster, objective, sizeof objective, base_score, &base_count) != 0) {
        diag_load(diag, a->name, "%s: XGBoost cannot report the loaded model's parameters: %s",
                  xgb_error(detail, sizeof detail));
        return -1;
    }
    if ((long)nf != a->info.num_feature) {
        snprintf(detail, sizeof detail, "the file declares %ld features but XGBoost loaded %lu",
                 a->info.num_feature, (unsigned long)nf);
        diag_load(diag, a->name, "%s: %s", detail);
        return -1;
    }
    if (!same_objective(a->info.objective, objective)) {
        snprintf(detail, sizeof detail, "the file declares objective %s but XGBoost loaded %s",
                 a->info.objective, objective);
        diag_load(diag, a->name, "%s: %s", detail);
        return -1;
    }
    if (!same_base_score(&a->info, base_score, base_count, detail, sizeof detail)) {
        diag_load(diag, a->name, "%s: %s", detail);
        return -1;
    }
    return writer_arithmetic(m, a, diag);
}

/* XGBoost makes a DMatrix (the gblinear path) of no row that holds an
 * infinity ("Input data contains `inf` ..."): refuse such rows the same way
 * on both engines, as the client's error. */
static int linear_refuses(const float *x, size_t rows, size_t cols, sms_error_t *err)
{
    for (size_t k = 0; k < rows * cols; k++)
        if (isinf(x[k]))
            return sms_error_set(err, 400,
                                 "row %zu has an infinite value in column %zu: a gblinear model "
                                 "takes none (a missing value is an empty field or null)",
                                 k / cols + 1, k % cols + 1);
    return 0;
}

/* One booster's prediction through the C API for rows x cols; the result
 * points into XGBoost's thread-local storage until the next call on this
 * thread. */
static int capi_predict(member_t *m, const float *x, size_t rows, size_t cols, const float **result,
                        size_t *values, sms_error_t *err)
{
    const bst_ulong *shape = NULL;
    bst_ulong dim = 0;
    int rc;
    if (m->linear) {
        if (linear_refuses(x, rows, cols, err) < 0)
            return -1;
        DMatrixHandle dm;
        pthread_mutex_lock(&m->lock);
        rc = XGDMatrixCreateFromMat(x, (bst_ulong)rows, (bst_ulong)cols, NAN, &dm);
        if (rc == 0) {
            rc = XGBoosterPredictFromDMatrix(m->booster, dm, PREDICT_CONFIG, &shape, &dim, result);
            XGDMatrixFree(dm);
        }
        pthread_mutex_unlock(&m->lock);
    } else {
        if (!thread_proxy && XGProxyDMatrixCreate(&thread_proxy) != 0)
            return sms_error_set(err, 500, "XGBoost could not create a proxy DMatrix");
        char iface[160];
        snprintf(iface, sizeof iface,
                 "{\"data\": [%" PRIuPTR ", true], \"shape\": [%zu, %zu], \"typestr\": \"<f4\", "
                 "\"version\": 3}",
                 (uintptr_t)x, rows, cols);
        if (m->sum_first)
            return capi_predict_sum_first(m, iface, rows, result, values, err);
        rc = XGBoosterPredictFromDense(
            m->booster, iface, m->unsorted_quantiles ? PREDICT_MARGIN_CONFIG : PREDICT_CONFIG,
            thread_proxy, &shape, &dim, result);
    }
    if (rc != 0) {
        char detail[300];
        return sms_error_set(err, 500, "prediction failed: %s", xgb_error(detail, sizeof detail));
    }
    size_t n = 1;
    for (bst_ulong i = 0; i < dim; i++)
        n *= (size_t)shape[i];
    *values = n;
    return 0;
}

/* One member's rows x num_output predictions into dst, by whichever engine
 * serves it. */
static int predict_member(member_t *m, const float *x, size_t rows, size_t cols, size_t expect,
                          float *dst, sms_error_t *err)
{
    if (m->forest) {
        if (sms_matrix_reserve(&thread_work, sms_forest_workspace_floats(m->forest)) < 0)
            return sms_error_set(err, 500, "out of memory for the native evaluator's workspace");
        sms_forest_predict(m->forest, x, rows, dst, thread_work.values);
        return 0;
    }
    if (m->linear_native) {
        if (linear_refuses(x, rows, cols, err) < 0)
            return -1;
        if (sms_matrix_reserve(&thread_work, sms_linear_workspace_floats(m->linear_native)) < 0)
            return sms_error_set(err, 500, "out of memory for the native evaluator's workspace");
        sms_linear_predict(m->linear_native, x, rows, dst, thread_work.values);
        return 0;
    }
    const float *res;
    size_t values = 0;
    if (capi_predict(m, x, rows, cols, &res, &values, err) < 0)
        return -1;
    if (values != expect)
        return sms_error_set(err, 500, "XGBoost returned %zu values for %zu rows, expected %zu",
                             values, rows, expect);
    memcpy(dst, res, expect * sizeof *dst);
    return 0;
}

/* Distance in float32 steps between two values; NaN equals only NaN. */
static uint32_t ulp_distance(float a, float b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b) ? 0 : UINT32_MAX;
    int32_t ia, ib;
    memcpy(&ia, &a, sizeof ia);
    memcpy(&ib, &b, sizeof ib);
    /* Map sign-magnitude onto a monotonic integer line (-0 and +0 meet). */
    int64_t la = ia < 0 ? (int64_t)INT32_MIN - ia : ia;
    int64_t lb = ib < 0 ? (int64_t)INT32_MIN - ib : ib;
    int64_t d = la > lb ? la - lb : lb - la;
    return d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

/* How many of n values are the same float32 (or both NaN). */
static size_t count_identical(const float *a, const float *b, size_t n)
{
    size_t same = 0;
    for (size_t k = 0; k < n; k++)
        same += ulp_distance(a[k], b[k]) == 0;
    return same;
}

/* A compiled model on its way through the parity gate: a forest or a
 * linear model, behind one set of calls. */
typedef struct candidate {
    sms_forest_t *forest;
    sms_linear_t *linear;
} candidate_t;

static size_t candidate_workspace(const candidate_t *c)
{
    return c->forest ? sms_forest_workspace_floats(c->forest)
                     : sms_linear_workspace_floats(c->linear);
}

static void candidate_predict(const candidate_t *c, const float *x, size_t rows, float *out,
                              float *work)
{
    if (c->forest)
        sms_forest_predict(c->forest, x, rows, out, work);
    else
        sms_linear_predict(c->linear, x, rows, out, work);
}

static void candidate_set_fused(candidate_t *c, bool fused)
{
    if (c->forest)
        sms_forest_set_fused(c->forest, fused);
    else
        sms_linear_set_fused(c->linear, fused);
}

/* What the log line says about a compiled model. */
static void candidate_describe(const candidate_t *c, char *out, size_t size)
{
    if (c->linear) {
        size_t no = sms_linear_num_output(c->linear);
        snprintf(out, size, "gblinear, %zu features, %zu output%s%s",
                 sms_linear_num_feature(c->linear), no, no == 1 ? "" : "s",
                 sms_linear_fused(c->linear) ? ", fused multiply-adds" : "");
        return;
    }
    const sms_forest_t *f = c->forest;
    int n = snprintf(out, size, "%zu trees, %zu nodes", sms_forest_num_trees(f),
                     sms_forest_num_nodes(f));
    if (n >= 0 && (size_t)n < size && sms_forest_num_categorical(f))
        n += snprintf(out + n, size - (size_t)n, ", %zu categorical splits",
                      sms_forest_num_categorical(f));
    if (n >= 0 && (size_t)n < size && sms_forest_leaf_size(f) > 1)
        n += snprintf(out + n, size - (size_t)n, ", vector leaves of %zu", sms_forest_leaf_size(f));
    if (n >= 0 && (size_t)n < size && sms_forest_fused(f))
        snprintf(out + n, size - (size_t)n, ", dart weights by fused multiply-add");
}

static void candidate_free(candidate_t *c)
{
    sms_forest_free(c->forest);
    sms_linear_free(c->linear);
    c->forest = NULL;
    c->linear = NULL;
}

/* The native evaluator of m's gblinear booster, compiled from its JSON;
 * NULL with the reason in why. */
static sms_linear_t *compile_linear(member_t *m, char *why, size_t why_size)
{
    size_t len = 0;
    const char *json = NULL;
    if (serialise(m, "{\"format\": \"json\"}", &json, &len, why, why_size) < 0)
        return NULL;
    return sms_linear_compile(json, len, why, why_size);
}

/* A member the native evaluator serves from now on: the booster and the
 * writer's objective (the C API path's) go, and so does what only the gate
 * read. */
static void keep_native(member_t *m, candidate_t *c)
{
    XGBoosterFree(m->booster);
    m->booster = NULL;
    m->booster_bytes = 0;
    free(m->writer_objective);
    m->writer_objective = NULL;
    if (c->forest)
        sms_forest_seal(c->forest);
    m->forest = c->forest;
    m->linear_native = c->linear;
}

/* Compiles a booster into the native evaluator of its kind (or takes the
 * forest writer_arithmetic compiled) and keeps it only if it reproduces
 * the C API on the probe batch within one float32 ulp; the booster is then
 * freed. Writes what happened to note; never fails the load. */
static void try_native(member_t *m, const char *name, size_t num_feature, size_t num_output,
                       char *note, size_t note_size)
{
    char why[256] = "";
    candidate_t c = {m->compiled, NULL};
    m->compiled = NULL;
    if (m->linear)
        c.linear = compile_linear(m, why, sizeof why);
    else if (!c.forest)
        c.forest = compile_trees(m, why, sizeof why);
    if (!c.forest && !c.linear) {
        snprintf(note, note_size, "%s: XGBoost C API (the native compiler declined: %s)", name,
                 why);
        return;
    }
    if (c.forest)
        sms_forest_set_writer(c.forest, m->sum_first, m->unsorted_quantiles);
    float *probe = malloc(GATE_ROWS * num_feature * sizeof *probe);
    float *native = malloc(GATE_ROWS * num_output * sizeof *native);
    const float *reference = NULL;
    size_t values = 0;
    sms_error_t err = {0, "XGBoost returned another number of values"};
    size_t shape_output =
        c.forest ? sms_forest_num_output(c.forest) : sms_linear_num_output(c.linear);
    size_t shape_feature =
        c.forest ? sms_forest_num_feature(c.forest) : sms_linear_num_feature(c.linear);
    if (!probe || !native || shape_output != num_output || shape_feature != num_feature) {
        snprintf(note, note_size, "%s: XGBoost C API (the native model's shape differs)", name);
        goto reject;
    }
    if (c.forest)
        sms_forest_probe(c.forest, 1, GATE_ROWS, probe);
    else
        sms_linear_probe(c.linear, 1, GATE_ROWS, probe);
    if (capi_predict(m, probe, GATE_ROWS, num_feature, &reference, &values, &err) < 0 ||
        values != GATE_ROWS * num_output) {
        snprintf(note, note_size, "%s: XGBoost C API (the parity gate could not run: %.200s)", name,
                 err.msg);
        goto reject;
    }
    if (sms_matrix_reserve(&thread_work, candidate_workspace(&c)) < 0) {
        snprintf(note, note_size, "%s: XGBoost C API (no memory for the parity gate)", name);
        goto reject;
    }
    candidate_predict(&c, probe, GATE_ROWS, native, thread_work.values);
    size_t identical = count_identical(native, reference, values);
    if (identical < values) {
        /* Whether this build of the library fuses a dart tree's weighting,
         * or gblinear's value * weight, into its addition (see
         * sms_forest_set_fused): keep whichever accumulation reproduces
         * more of its values. Models without such products predict the
         * same both ways and stay unfused. */
        candidate_set_fused(&c, true);
        candidate_predict(&c, probe, GATE_ROWS, native, thread_work.values);
        if (count_identical(native, reference, values) <= identical) {
            candidate_set_fused(&c, false);
            candidate_predict(&c, probe, GATE_ROWS, native, thread_work.values);
        }
    }
    size_t exact = 0;
    for (size_t k = 0; k < values; k++) {
        uint32_t d = ulp_distance(native[k], reference[k]);
        if (d > 1) {
            snprintf(note, note_size,
                     "%s: XGBoost C API (parity gate: row %zu output %zu is %.9g natively, %.9g "
                     "from XGBoost)",
                     name, k / num_output, k % num_output, native[k], reference[k]);
            goto reject;
        }
        exact += d == 0;
    }
    char what[224];
    candidate_describe(&c, what, sizeof what);
    writer_note(m, what, sizeof what);
    snprintf(note, note_size,
             "%s: native evaluator (%s; parity gate: %zu probe rows, %zu of %zu values identical, "
             "the rest within 1 ulp)",
             name, what, (size_t)GATE_ROWS, exact, values);
    keep_native(m, &c);
    free(probe);
    free(native);
    return;
reject:
    candidate_free(&c);
    free(probe);
    free(native);
}

/* What a loaded booster holds, for sms_model_bytes: XGBoost's memory
 * cannot be walked from outside, so it is estimated from the artifact the
 * booster was loaded from. Measured with XGBoost 3.4.1 by
 * `bench_load -m -k 100` (bench/bench_load.c: 100 copies of each of 12
 * models held in one process under SMSERVE_ENGINE=xgboost, the growth of
 * the heap in use, mallinfo2's uordblks + hblkhd, and of the resident set,
 * per copy): a booster after sms_model_load holds 19.2 KB + 357 bytes per
 * tree + 53 bytes per node (within 1% from 1 tree of 3 nodes to 300 trees
 * of 102276 nodes, whatever the file's format or the number of features),
 * and a gblinear one 18.7 KB with 200 features. The file bounds the nodes:
 * a node takes at least 34 bytes of UBJSON (its typed arrays), 36 of
 * legacy binary (its node and stats records) and about 40 of JSON (floats
 * such as "0E0"; 64 in the models measured). Counted here: 24 KB, 512 bytes
 * per tree, and 56 bytes per node over those bounds (1.4 bytes per byte of
 * JSON, 1.65 of UBJSON, 1.56 of binary, which 3.1+ no longer loads: the
 * scan migrates it to JSON), which came to 1.25x (UBJSON) to 1.81x (JSON)
 * of the heap and of the resident set measured, never less. Plus what
 * XGBoost keeps on the loading thread: the model serialised for the native
 * compiler (its buffer's capacity, at most twice its length), and the
 * parity gate's predictions. Not bounded by the file: the category bitsets
 * of categorical splits, sized by each split's largest category. */
#define BOOSTER_BASE_BYTES (24 * 1024)
#define BOOSTER_TREE_BYTES 512

static size_t booster_estimate(const member_t *m, const sms_artifact_t *a, size_t num_output)
{
    size_t per_byte_x100;
    switch (sms_sniff(a->bytes, a->len)) {
    case SMS_FMT_UBJSON:
        per_byte_x100 = 165;
        break;
    case SMS_FMT_BINARY:
        per_byte_x100 = 156;
        break;
    default:
        per_byte_x100 = 140;
        break;
    }
    size_t trees = a->info.num_trees > 0 ? (size_t)a->info.num_trees : 0;
    size_t bytes = BOOSTER_BASE_BYTES + trees * BOOSTER_TREE_BYTES + a->len / 100 * per_byte_x100 +
                   per_byte_x100;
    if (m->serialised)
        bytes += 2 * m->serialised + 2 * GATE_ROWS * num_output * sizeof(float);
    return bytes;
}

static int vote_objective(const char *objective)
{
    return !strcmp(objective, "multi:softmax") || !strcmp(objective, "binary:hinge");
}

int sms_model_load(const sms_artifact_set_t *set, bool native, sms_model_t **out, sms_diag_t *diag)
{
    *out = NULL;
    sms_model_t *m = calloc(1, sizeof *m);
    if (!m || !set->ok || set->count == 0) {
        free(m);
        diag_load(diag, set->root, "%s: %s", "nothing servable to load");
        return -1;
    }
    m->members = calloc(set->count, sizeof *m->members);
    if (!m->members)
        goto fail;
    const sms_artifact_t *first = &set->items[0];
    snprintf(m->objective, sizeof m->objective, "%s", first->info.objective);
    m->num_feature = (size_t)first->info.num_feature;
    m->num_class = first->info.num_class > 0 ? (size_t)first->info.num_class : 0;
    m->vote = vote_objective(m->objective) && set->count > 1;
    for (size_t i = 0; i < set->count; i++) {
        const sms_artifact_t *a = &set->items[i];
        m->count = i + 1;
        if (load_member(&m->members[i], a, diag) < 0)
            goto fail;
        if (!same_objective(a->info.objective, m->objective) ||
            (size_t)a->info.num_feature != m->num_feature ||
            a->info.num_class != first->info.num_class) {
            char detail[300];
            snprintf(detail, sizeof detail,
                     "ensemble members disagree: %s is %s with %ld features, %s is %s with %ld "
                     "features",
                     first->name, first->info.objective, first->info.num_feature, a->name,
                     a->info.objective, a->info.num_feature);
            diag_load(diag, a->name, "%s: %s", detail);
            snprintf(diag->check, sizeof diag->check, "ensemble");
            snprintf(diag->fix, sizeof diag->fix,
                     "keep only models trained for the same task in the model directory");
            goto fail;
        }
    }
    /* A warm-up prediction on a row of missing values gives the output
     * width and proves the booster predicts at all. */
    float *probe = malloc(m->num_feature * sizeof *probe);
    if (!probe)
        goto fail;
    for (size_t j = 0; j < m->num_feature; j++)
        probe[j] = NAN;
    for (size_t i = 0; i < m->count; i++) {
        const float *res;
        size_t values = 0;
        sms_error_t err;
        if (capi_predict(&m->members[i], probe, 1, m->num_feature, &res, &values, &err) < 0) {
            diag_load(diag, set->items[i].name, "%s: warm-up %.300s", err.msg);
            free(probe);
            goto fail;
        }
        if (i == 0)
            m->num_output = values;
        if (values != m->num_output) {
            diag_load(diag, set->items[i].name, "%s: %s",
                      "ensemble members predict different numbers of outputs");
            free(probe);
            goto fail;
        }
    }
    free(probe);
    for (size_t i = 0; i < m->count; i++) {
        member_t *mb = &m->members[i];
        char note[384];
        if (native)
            try_native(mb, set->items[i].name, m->num_feature, m->num_output, note, sizeof note);
        else {
            char what[128] = "SMSERVE_ENGINE=xgboost";
            writer_note(mb, what, sizeof what);
            snprintf(note, sizeof note, "%s: XGBoost C API (%s)", set->items[i].name, what);
        }
        sms_forest_free(mb->compiled);
        mb->compiled = NULL;
        if (mb->booster)
            mb->booster_bytes = booster_estimate(mb, &set->items[i], m->num_output);
        size_t used = strlen(m->engine);
        snprintf(m->engine + used, sizeof m->engine - used, "%s%s", used ? "; " : "", note);
    }
    *out = m;
    return 0;
fail:
    sms_model_free(m);
    return -1;
}

void sms_model_free(sms_model_t *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->count; i++) {
        member_t *mb = &m->members[i];
        if (mb->booster)
            XGBoosterFree(mb->booster);
        sms_forest_free(mb->forest);
        sms_forest_free(mb->compiled);
        sms_linear_free(mb->linear_native);
        free(mb->writer_objective);
        pthread_mutex_destroy(&mb->lock);
    }
    free(m->members);
    free(m);
}

size_t sms_model_num_feature(const sms_model_t *m)
{
    return m->num_feature;
}
size_t sms_model_num_output(const sms_model_t *m)
{
    return m->num_output;
}
size_t sms_model_num_class(const sms_model_t *m)
{
    return m->num_class;
}

const char *sms_model_objective(const sms_model_t *m)
{
    return m->objective;
}
size_t sms_model_size(const sms_model_t *m)
{
    return m->count;
}

/* Majority vote over class labels for one value slot; ties go to the
 * smallest label, as scipy's mode does. */
static float vote_value(const float *labels, size_t n)
{
    float best = labels[0];
    size_t best_count = 0;
    for (size_t i = 0; i < n; i++) {
        size_t c = 0;
        for (size_t j = 0; j < n; j++)
            c += labels[j] == labels[i];
        if (c > best_count || (c == best_count && labels[i] < best)) {
            best = labels[i];
            best_count = c;
        }
    }
    return best;
}

int sms_model_predict(sms_model_t *m, const float *x, size_t rows, sms_matrix_t *out,
                      sms_error_t *err)
{
    size_t total = rows * m->num_output;
    sms_matrix_reset(out);
    if (sms_matrix_reserve(out, total ? total : 1) < 0)
        return sms_error_set(err, 500, "out of memory for %zu predictions", total);
    out->rows = rows;
    out->cols = m->num_output;
    if (rows == 0)
        return 0;
    if (m->count == 1)
        return predict_member(&m->members[0], x, rows, m->num_feature, total, out->values, err);

    /* Ensembles: a vote keeps every member's labels; a mean adds each
     * member into the output in turn. */
    size_t scratch = m->vote ? total * m->count + m->count : total;
    if (sms_matrix_reserve(&thread_scratch, scratch) < 0)
        return sms_error_set(err, 500, "out of memory for the ensemble's predictions");
    float *work = thread_scratch.values;
    for (size_t i = 0; i < m->count; i++) {
        float *dst = m->vote ? work + i * total : i == 0 ? out->values : work;
        if (predict_member(&m->members[i], x, rows, m->num_feature, total, dst, err) < 0)
            return -1;
        if (!m->vote && i > 0)
            for (size_t k = 0; k < total; k++)
                out->values[k] += work[k];
    }
    if (m->vote) {
        float *column = work + total * m->count;
        for (size_t k = 0; k < total; k++) {
            for (size_t i = 0; i < m->count; i++)
                column[i] = work[i * total + k];
            out->values[k] = vote_value(column, m->count);
        }
    } else {
        for (size_t k = 0; k < total; k++)
            out->values[k] /= (float)m->count;
    }
    return 0;
}

const char *sms_model_engine(const sms_model_t *m)
{
    return m->engine;
}

size_t sms_model_bytes(const sms_model_t *m)
{
    size_t bytes = malloc_usable_size((void *)m) + malloc_usable_size(m->members);
    for (size_t i = 0; i < m->count; i++) {
        const member_t *mb = &m->members[i];
        bytes += sms_forest_bytes(mb->forest) + sms_linear_bytes(mb->linear_native) +
                 malloc_usable_size(mb->writer_objective) + mb->booster_bytes;
    }
    return bytes;
}
