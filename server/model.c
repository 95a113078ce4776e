/* The XGBoost backend. Boosters are loaded from checked artifacts and
 * predict through the C API: gbtree and dart in place (no DMatrix build)
 * with one proxy DMatrix per thread, which is what makes a one-row call
 * cheap; gblinear has no in-place path in 1.7 and is not thread-safe, so it
 * builds a DMatrix per call under a lock. */
#define _GNU_SOURCE
#include "smserve/model.h"

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
} member_t;

struct sms_model {
    member_t *members;
    size_t count;
    size_t num_feature;
    size_t num_output;
    bool vote; /* class-label objectives: ensemble by majority vote */
    char objective[64];
};

/* 1.7.x requires cache_id; missing values arrive as NaN. */
static const char PREDICT_CONFIG[] =
    "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, "
    "\"strict_shape\": false, \"missing\": NaN, \"cache_id\": 0}";

static _Thread_local DMatrixHandle thread_proxy;

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

/* One booster's prediction for rows x cols; the result points into XGBoost's
 * thread-local storage until the next call on this thread. */
static int predict_member(member_t *m, const float *x, size_t rows, size_t cols,
                          const float **result, size_t *values, sms_error_t *err)
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

static int vote_objective(const char *objective)
{
    return !strcmp(objective, "multi:softmax") || !strcmp(objective, "binary:hinge");
}

int sms_model_load(const sms_artifact_set_t *set, sms_model_t **out, sms_diag_t *diag)
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
        if (predict_member(&m->members[i], probe, 1, m->num_feature, &res, &values, &err) < 0) {
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
    float *labels = NULL;
    if (m->vote && !(labels = malloc(total * m->count * sizeof *labels)))
        return sms_error_set(err, 500, "out of memory for the ensemble vote");
    for (size_t i = 0; i < m->count; i++) {
        const float *res;
        size_t values = 0;
        if (predict_member(&m->members[i], x, rows, m->num_feature, &res, &values, err) < 0)
            goto fail;
        if (values != total) {
            sms_error_set(err, 500, "XGBoost returned %zu values for %zu rows, expected %zu",
                          values, rows, total);
            goto fail;
        }
        if (m->vote)
            memcpy(labels + i * total, res, total * sizeof *res);
        else if (i == 0)
            memcpy(out->values, res, total * sizeof *res);
        else
            for (size_t k = 0; k < total; k++)
                out->values[k] += res[k];
    }
    if (m->vote) {
        float *column = malloc(m->count * sizeof *column);
        if (!column) {
            sms_error_set(err, 500, "out of memory for the ensemble vote");
            goto fail;
        }
        for (size_t k = 0; k < total; k++) {
            for (size_t i = 0; i < m->count; i++)
                column[i] = labels[i * total + k];
            out->values[k] = vote_value(column, m->count);
        }
        free(column);
    } else if (m->count > 1) {
        for (size_t k = 0; k < total; k++)
            out->values[k] /= (float)m->count;
    }
    free(labels);
    return 0;
fail:
    free(labels);
    return -1;
}
