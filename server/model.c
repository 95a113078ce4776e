/* The model backend. Boosters are loaded from checked artifacts through the
 * XGBoost C API. By default each tree booster is then compiled into the
 * native evaluator (forest.c), which must first reproduce the C API's own
 * predictions on a probe batch (the parity gate); a model that fails the
 * gate or that the compiler does not recognise stays on the C API: gbtree
 * and dart in place with one proxy DMatrix per thread, gblinear (no
 * in-place path in 1.7, not thread-safe) through a DMatrix under a lock. */
#define _GNU_SOURCE
#include "smserve/model.h"
#include "smserve/forest.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xgboost/c_api.h>

typedef struct member {
    BoosterHandle booster;
    bool linear; /* gblinear: DMatrix path, serialised */
    pthread_mutex_t lock;
    sms_forest_t *forest; /* the native evaluator, when it passed the gate */
} member_t;

struct sms_model {
    member_t *members;
    size_t count;
    size_t num_feature;
    size_t num_output;
    bool vote; /* class-label objectives: ensemble by majority vote */
    char objective[64];
    char engine[1024]; /* which engine serves each member, and why */
};

/* Rows in the parity gate's probe batch. */
#define GATE_ROWS 512

/* 1.7.x requires cache_id; missing values arrive as NaN. */
static const char PREDICT_CONFIG[] =
    "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, "
    "\"strict_shape\": false, \"missing\": NaN, \"cache_id\": 0}";

static _Thread_local DMatrixHandle thread_proxy;
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
    sms_matrix_free(&thread_scratch);
    sms_matrix_free(&thread_work);
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
 * what the library will actually use, as opposed to what the file says. */
static int runtime_params(BoosterHandle b, char *objective, size_t size, double *base_score)
{
    bst_ulong len;
    const char *cfg;
    if (XGBoosterSaveJsonConfig(b, &len, &cfg) != 0)
        return -1;
    json_error_t jerr;
    json_t *root = json_loadb(cfg, len, 0, &jerr);
    if (!root)
        return -1;
    const char *name = json_string_value(
        json_object_get(json_object_get(json_object_get(root, "learner"), "objective"), "name"));
    const char *bs = json_string_value(json_object_get(
        json_object_get(json_object_get(root, "learner"), "learner_model_param"), "base_score"));
    int rc = name && bs ? 0 : -1;
    if (name)
        snprintf(objective, size, "%s", name);
    if (bs)
        *base_score = strtod(bs, NULL);
    json_decref(root);
    return rc;
}

static bool same_objective(const char *declared, const char *loaded)
{
    /* 1.0 renamed reg:linear; the library reports the new name. */
    if (!strcmp(declared, "reg:linear"))
        declared = "reg:squarederror";
    return !strcmp(declared, loaded);
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
    if (XGBoosterLoadModelFromBuffer(m->booster, a->bytes, a->len) != 0) {
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
    double base_score = NAN;
    if (XGBoosterGetNumFeature(m->booster, &nf) != 0 ||
        runtime_params(m->booster, objective, sizeof objective, &base_score) != 0) {
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
    float declared = a->info.base_score;
    if (isfinite(declared) && !(fabs(base_score - declared) <= 1e-6 * fmax(1.0, fabs(declared)))) {
        snprintf(detail, sizeof detail,
                 "the file declares base_score %s but XGBoost loaded %.9g: every prediction "
                 "would be shifted",
                 a->info.base_score_text, base_score);
        diag_load(diag, a->name, "%s: %s", detail);
        return -1;
    }
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
        rc = XGBoosterPredictFromDense(m->booster, iface, PREDICT_CONFIG, thread_proxy, &shape,
                                       &dim, result);
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

/* Compiles a tree booster into the native evaluator and keeps it only if it
 * reproduces the C API on the probe batch within one float32 ulp. Writes
 * what happened to note; never fails the load. */
static void try_native(member_t *m, const char *name, size_t num_feature, size_t num_output,
                       char *note, size_t note_size)
{
    if (m->linear) {
        snprintf(note, note_size, "%s: XGBoost C API (gblinear is not compiled natively)", name);
        return;
    }
    bst_ulong len = 0;
    const char *json = NULL;
    char why[256] = "";
    if (XGBoosterSaveModelToBuffer(m->booster, "{\"format\": \"json\"}", &len, &json) != 0) {
        snprintf(note, note_size, "%s: XGBoost C API (the model could not be serialised: %s)", name,
                 xgb_error(why, sizeof why));
        return;
    }
    sms_forest_t *forest = sms_forest_compile(json, (size_t)len, why, sizeof why);
    if (!forest) {
        snprintf(note, note_size, "%s: XGBoost C API (the native compiler declined: %s)", name,
                 why);
        return;
    }
    float *probe = malloc(GATE_ROWS * num_feature * sizeof *probe);
    float *native = malloc(GATE_ROWS * num_output * sizeof *native);
    const float *reference = NULL;
    size_t values = 0;
    sms_error_t err;
    if (!probe || !native || sms_forest_num_output(forest) != num_output ||
        sms_forest_num_feature(forest) != num_feature) {
        snprintf(note, note_size, "%s: XGBoost C API (the native model's shape differs)", name);
        goto reject;
    }
    sms_forest_probe(forest, 1, GATE_ROWS, probe);
    if (capi_predict(m, probe, GATE_ROWS, num_feature, &reference, &values, &err) < 0 ||
        values != GATE_ROWS * num_output) {
        snprintf(note, note_size, "%s: XGBoost C API (the parity gate could not run: %.200s)", name,
                 err.msg);
        goto reject;
    }
    if (sms_matrix_reserve(&thread_work, sms_forest_workspace_floats(forest)) < 0) {
        snprintf(note, note_size, "%s: XGBoost C API (no memory for the parity gate)", name);
        goto reject;
    }
    sms_forest_predict(forest, probe, GATE_ROWS, native, thread_work.values);
    size_t identical = count_identical(native, reference, values);
    if (identical < values) {
        /* Whether this build of the library fuses a dart tree's weighting
         * into its addition (see sms_forest_set_fused): keep whichever
         * accumulation reproduces more of its values. gbtree models predict
         * the same both ways and stay unfused. */
        sms_forest_set_fused(forest, true);
        sms_forest_predict(forest, probe, GATE_ROWS, native, thread_work.values);
        if (count_identical(native, reference, values) <= identical) {
            sms_forest_set_fused(forest, false);
            sms_forest_predict(forest, probe, GATE_ROWS, native, thread_work.values);
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
    snprintf(note, note_size,
             "%s: native evaluator (%zu trees, %zu nodes%s; parity gate: %zu probe rows, %zu of "
             "%zu values identical, the rest within 1 ulp)",
             name, sms_forest_num_trees(forest), sms_forest_num_nodes(forest),
             sms_forest_fused(forest) ? ", dart weights by fused multiply-add" : "",
             (size_t)GATE_ROWS, exact, values);
    m->forest = forest;
    free(probe);
    free(native);
    return;
reject:
    sms_forest_free(forest);
    free(probe);
    free(native);
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
            diag_load(diag, set->items[i].name, "%s: warm-up %s", err.msg);
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
        char note[384];
        if (native)
            try_native(&m->members[i], set->items[i].name, m->num_feature, m->num_output, note,
                       sizeof note);
        else
            snprintf(note, sizeof note, "%s: XGBoost C API (SMSERVE_ENGINE=xgboost)",
                     set->items[i].name);
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
        if (m->members[i].booster)
            XGBoosterFree(m->members[i].booster);
        sms_forest_free(m->members[i].forest);
        pthread_mutex_destroy(&m->members[i].lock);
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
