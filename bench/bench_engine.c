/* Engine benchmark: the same models and rows, in one process and one thread,
 * predicted by the XGBoost C API in place (with a NULL proxy, and with one
 * reused proxy DMatrix as the server does) and by the native evaluators
 * (sms_forest, sms_linear). gblinear has no in-place path: its C API column
 * is a DMatrix made and predicted per call, as the server does, and a
 * second table puts OpenBLAS's sgemm (when the bench was built with it)
 * beside the native sums, with how far sgemm's values land from XGBoost's.
 * Models (binary, softprob, deep, vector-leaf, categorical, multi-quantile,
 * gblinear) are trained here through the C API on synthetic data, so
 * nothing needs fixtures. Checks that the engines agree before timing, then
 * prints ns/row, the ratios, and the targets of issue 5.
 *
 *   bench_engine [-m ms_per_repeat] [-r repeats] [-f family,...]
 *   (defaults 250 ms, 5, every family) */
#define _GNU_SOURCE
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xgboost/c_api.h>

#include "smserve/forest.h"
#include "smserve/linear.h"
#include "smserve/xjson.h"

#ifdef SMS_BENCH_SGEMM
#include <cblas.h>
#endif

#define MAX_ROWS 10000
static const size_t BATCHES[] = {1, 10, 100, 1000, MAX_ROWS};
#define NUM_BATCHES (sizeof BATCHES / sizeof BATCHES[0])

/* Transformed values of every tree; missing values arrive as NaN. */
static const char PREDICT_CONFIG[] =
    "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, "
    "\"strict_shape\": false, \"missing\": NaN}";

#define CHECK_XGB(call)                                                                            \
    do {                                                                                           \
        if ((call) != 0) {                                                                         \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, XGBGetLastError());      \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

typedef struct spec {
    const char *name;
    const char *objective;
    int num_class; /* 0 unless multi-class */
    int rounds;
    int depth;
    size_t num_feature;
    size_t train_rows;
    const char *min_child_weight;
    const char *booster;    /* NULL: gbtree */
    size_t num_target;      /* label columns (vector leaves, quantiles: 3) */
    size_t num_categorical; /* leading features that are categorical */
    const char *params;     /* more, "key=value;key=value" */
} spec_t;

/* Categories of the categorical features. */
#define NUM_CATEGORIES 50

static const spec_t SPECS[] = {
    {"binary 100x6", "binary:logistic", 0, 100, 6, 20, 20000, "0.1", NULL, 0, 0, NULL},
    {"softprob 4x50x6", "multi:softprob", 4, 50, 6, 20, 20000, "0.1", NULL, 0, 0, NULL},
    {"deep 500x8", "reg:squarederror", 0, 500, 8, 200, 4000, "1", NULL, 0, 0, NULL},
    {"vector 3x100x6", "reg:squarederror", 0, 100, 6, 20, 20000, "0.1", NULL, 3, 0,
     "multi_strategy=multi_output_tree"},
    {"categorical 100x6", "binary:logistic", 0, 100, 6, 20, 20000, "0.1", NULL, 0, 4,
     "max_cat_to_onehot=1"},
    {"quantile 3x100x6", "reg:quantileerror", 0, 100, 6, 20, 20000, "0.1", NULL, 3, 0,
     "quantile_alpha=[0.1,0.5,0.9]"},
    {"gblinear 200f", "binary:logistic", 0, 20, 0, 200, 20000, "1", "gblinear", 0, 0, NULL},
};
#define NUM_SPECS (sizeof SPECS / sizeof SPECS[0])

/* xorshift64*: deterministic, fast, good enough for synthetic data. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double uniform(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

/* Rows of features in [-2, 2) (categorical ones: 0 to NUM_CATEGORIES - 1),
 * about 5% of them missing. */
static void fill_rows(float *x, size_t rows, size_t cols, size_t categorical)
{
    for (size_t k = 0; k < rows * cols; k++)
        x[k] = uniform() < 0.05         ? NAN
               : k % cols < categorical ? (float)(int)(uniform() * NUM_CATEGORIES)
                                        : (float)(4.0 * uniform() - 2.0);
}

/* A feature's value for the target: categories map to arbitrary levels. */
static double feat(const spec_t *s, const float *row, size_t j)
{
    if (isnan(row[j]))
        return 0.3;
    if (j < s->num_categorical)
        return sin(7.3 * row[j]) * 1.5;
    return row[j];
}

/* A target with interactions, thresholds and noise so that every tree keeps
 * finding splits down to max_depth. */
static float target(const spec_t *s, const float *row, size_t k)
{
    double f = sin(2.0 * feat(s, row, 0)) + feat(s, row, 1) * feat(s, row, 2) +
               (feat(s, row, 3) > 0.4 ? 1.0 : -0.5) - 0.3 * feat(s, row, 4) * feat(s, row, 4) +
               0.5 * cos(3.0 * feat(s, row, 5) * feat(s, row, 6));
    for (size_t j = 7; j < s->num_feature; j += 7)
        f += 0.2 * sin(feat(s, row, j) * feat(s, row, j - 1));
    double noise = uniform() - 0.5;
    if (k > 0 && s->num_target > 1 && strcmp(s->objective, "reg:quantileerror") != 0)
        f = f * (1.0 + 0.5 * (double)k) + cos(feat(s, row, k + 8));
    if (s->num_class > 1) {
        /* Class from the quantile of f plus a second signal. */
        double g = f + 0.7 * feat(s, row, 7) * feat(s, row, 8) + 0.8 * noise;
        int c = g < -0.8 ? 0 : g < 0.2 ? 1 : g < 1.2 ? 2 : 3;
        return (float)(c % s->num_class);
    }
    if (!strcmp(s->objective, "binary:logistic"))
        return f + 1.2 * noise > 0.3 ? 1.0f : 0.0f;
    return (float)(f + noise);
}

/* Label columns: one per target for vector leaves, one for quantiles
 * (their outputs come from the alphas). */
static size_t label_columns(const spec_t *s)
{
    return s->num_target > 1 && strcmp(s->objective, "reg:quantileerror") != 0 ? s->num_target : 1;
}

static BoosterHandle train(const spec_t *s)
{
    size_t n = s->train_rows, cols = s->num_feature, ny = label_columns(s);
    float *x = malloc(n * cols * sizeof *x);
    float *y = malloc(n * ny * sizeof *y);
    if (!x || !y)
        exit(1);
    fill_rows(x, n, cols, s->num_categorical);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < ny; k++)
            y[i * ny + k] = target(s, x + i * cols, k);
    DMatrixHandle dm;
    BoosterHandle b;
    CHECK_XGB(XGDMatrixCreateFromMat(x, (bst_ulong)n, (bst_ulong)cols, NAN, &dm));
    char iface[200];
    snprintf(iface, sizeof iface,
             "{\"data\": [%" PRIuPTR ", true], \"shape\": [%zu, %zu], \"typestr\": \"<f4\", "
             "\"version\": 3}",
             (uintptr_t)y, n, ny);
    CHECK_XGB(XGDMatrixSetInfoFromInterface(dm, "label", iface));
    if (s->num_categorical) {
        const char **types = malloc(cols * sizeof *types);
        for (size_t j = 0; j < cols; j++)
            types[j] = j < s->num_categorical ? "c" : "q";
        CHECK_XGB(XGDMatrixSetStrFeatureInfo(dm, "feature_type", types, (bst_ulong)cols));
        free(types);
    }
    CHECK_XGB(XGBoosterCreate(&dm, 1, &b));
    char depth[24], num_class[24], threads[24];
    snprintf(depth, sizeof depth, "%d", s->depth);
    snprintf(num_class, sizeof num_class, "%d", s->num_class);
    long procs = sysconf(_SC_NPROCESSORS_ONLN);
    snprintf(threads, sizeof threads, "%ld", procs > 0 ? procs : 1);
    CHECK_XGB(XGBoosterSetParam(b, "objective", s->objective));
    if (s->num_class > 1)
        CHECK_XGB(XGBoosterSetParam(b, "num_class", num_class));
    if (s->booster) {
        CHECK_XGB(XGBoosterSetParam(b, "booster", s->booster));
        CHECK_XGB(XGBoosterSetParam(b, "eta", "0.5"));
    } else {
        CHECK_XGB(XGBoosterSetParam(b, "tree_method", "hist"));
        CHECK_XGB(XGBoosterSetParam(b, "max_depth", depth));
        CHECK_XGB(XGBoosterSetParam(b, "eta", "0.1"));
        CHECK_XGB(XGBoosterSetParam(b, "min_child_weight", s->min_child_weight));
        CHECK_XGB(XGBoosterSetParam(b, "max_bin", "64"));
        CHECK_XGB(XGBoosterSetParam(b, "subsample", "0.8"));
        CHECK_XGB(XGBoosterSetParam(b, "colsample_bytree", "0.5"));
    }
    CHECK_XGB(XGBoosterSetParam(b, "seed", "7"));
    CHECK_XGB(XGBoosterSetParam(b, "nthread", threads)); /* training only */
    if (s->params) {
        char *copy = strdup(s->params), *save = NULL;
        for (char *kv = strtok_r(copy, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
            char *eq = strchr(kv, '=');
            *eq = '\0';
            CHECK_XGB(XGBoosterSetParam(b, kv, eq + 1));
        }
        free(copy);
    }
    for (int i = 0; i < s->rounds; i++)
        CHECK_XGB(XGBoosterUpdateOneIter(b, i, dm));
    /* Predict as the server does: one thread. */
    CHECK_XGB(XGBoosterSetParam(b, "nthread", "1"));
    CHECK_XGB(XGDMatrixFree(dm));
    free(x);
    free(y);
    return b;
}

/* Trees, nodes and the deepest leaf, read from the model JSON: shows that
 * the trees reach the depth the spec asks for. */
static void describe(const char *json, size_t len, size_t *trees, size_t *nodes, int *max_depth)
{
    *trees = *nodes = 0;
    *max_depth = 0;
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    json_t *model = json_object_get(
        json_object_get(json_object_get(root, "learner"), "gradient_booster"), "model");
    json_t *list = json_object_get(model, "trees");
    size_t i;
    json_t *tree;
    json_array_foreach(list, i, tree)
    {
        json_t *left = json_object_get(tree, "left_children");
        json_t *right = json_object_get(tree, "right_children");
        size_t count = json_array_size(left);
        int *depth = calloc(count ? count : 1, sizeof *depth);
        if (!depth)
            exit(1);
        for (size_t k = 0; k < count; k++) { /* parents precede children */
            json_int_t l = json_integer_value(json_array_get(left, k));
            json_int_t r = json_integer_value(json_array_get(right, k));
            if (l > 0 && (size_t)l < count)
                depth[l] = depth[k] + 1;
            if (r > 0 && (size_t)r < count)
                depth[r] = depth[k] + 1;
            if (depth[k] > *max_depth)
                *max_depth = depth[k];
        }
        free(depth);
        *nodes += count;
        (*trees)++;
    }
    json_decref(root);
}

/* ENGINE_NULL_PROXY is, for gblinear, a DMatrix made and predicted per
 * call; ENGINE_PROXY does not apply to it; ENGINE_SGEMM only to it. */
typedef enum { ENGINE_NULL_PROXY, ENGINE_PROXY, ENGINE_NATIVE, ENGINE_SGEMM, NUM_ENGINES } engine_t;
static const char *const ENGINE_NAMES[] = {"C API, NULL proxy", "C API, reused proxy", "native",
                                           "OpenBLAS sgemm"};

/* gblinear through OpenBLAS: one sgemm of the rows (NaN as 0) by the
 * weights onto rows of bias + base margin, then the objective's transform
 * (forest.h's). Not XGBoost's arithmetic: measured, never served. */
typedef struct blas_model {
    sms_objective_t obj;
    float *weight; /* num_feature x num_group */
    float *start;  /* bias + base margin per output */
} blas_model_t;

typedef struct run {
    BoosterHandle booster;
    DMatrixHandle proxy;
    const sms_forest_t *forest;
    const sms_linear_t *linear;
    const blas_model_t *blas;
    const float *x;
    size_t rows, cols;
    float *out;  /* native output */
    float *work; /* native workspace (sgemm's too) */
} run_t;

/* Reads a gblinear model's weights for the sgemm engine; false if it is
 * not one. */
static bool blas_model_read(const char *json, size_t len, blas_model_t *m)
{
    json_t *root = sms_xjson_parse(json, len, NULL, 0);
    json_t *model = json_object_get(
        json_object_get(json_object_get(root, "learner"), "gradient_booster"), "model");
    json_t *weights = json_object_get(model, "weights");
    json_int_t rounds = json_integer_value(json_object_get(model, "boosted_rounds"));
    if (!json_is_array(weights) || sms_objective_read(root, rounds != 0, &m->obj, NULL, 0) < 0) {
        json_decref(root);
        return false;
    }
    size_t nf = m->obj.num_feature, ng = m->obj.num_group;
    m->weight = malloc((nf ? nf : 1) * ng * sizeof *m->weight);
    m->start = malloc(ng * sizeof *m->start);
    if (!m->weight || !m->start || json_array_size(weights) != (nf + 1) * ng)
        exit(1);
    for (size_t i = 0; i < (nf + 1) * ng; i++) {
        double d = 0;
        sms_xjson_number(json_array_get(weights, i), &d);
        if (i < nf * ng)
            m->weight[i] = (float)d;
        else
            m->start[i - nf * ng] = (float)d + m->obj.base_margin[0];
    }
    json_decref(root);
    return true;
}

static void blas_predict(const blas_model_t *m, const float *x, size_t rows, float *out,
                         float *work)
{
    const size_t nf = m->obj.num_feature, ng = m->obj.num_group, no = m->obj.num_output;
    float *x0 = work, *c = work + rows * nf;
    for (size_t i = 0; i < rows * nf; i++)
        x0[i] = x[i] != x[i] ? 0.0f : x[i];
    for (size_t r = 0; r < rows; r++)
        memcpy(c + r * ng, m->start, ng * sizeof *c);
#ifdef SMS_BENCH_SGEMM
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)ng, (int)nf, 1.0f, x0,
                (int)nf, m->weight, (int)ng, 1.0f, c, (int)ng);
#endif
    for (size_t r = 0; r < rows; r++)
        sms_objective_finish(&m->obj, c + r * ng, out + r * no);
}

/* One prediction; returns the output values (XGBoost's thread-local buffer
 * or run->out) and their count. */
static const float *predict(const run_t *r, engine_t e, size_t *values)
{
    if (e == ENGINE_NATIVE && r->forest) {
        sms_forest_predict(r->forest, r->x, r->rows, r->out, r->work);
        *values = r->rows * sms_forest_num_output(r->forest);
        return r->out;
    }
    if (e == ENGINE_NATIVE) {
        sms_linear_predict(r->linear, r->x, r->rows, r->out, r->work);
        *values = r->rows * sms_linear_num_output(r->linear);
        return r->out;
    }
    if (e == ENGINE_SGEMM) {
        blas_predict(r->blas, r->x, r->rows, r->out, r->work);
        *values = r->rows * r->blas->obj.num_output;
        return r->out;
    }
    const bst_ulong *shape = NULL;
    bst_ulong dim = 0;
    const float *result = NULL;
    if (r->linear || r->blas) {
        /* gblinear: no in-place path; a DMatrix per call, as the server. */
        DMatrixHandle dm;
        CHECK_XGB(XGDMatrixCreateFromMat(r->x, (bst_ulong)r->rows, (bst_ulong)r->cols, NAN, &dm));
        CHECK_XGB(
            XGBoosterPredictFromDMatrix(r->booster, dm, PREDICT_CONFIG, &shape, &dim, &result));
        CHECK_XGB(XGDMatrixFree(dm));
    } else {
        /* The interface string is built per call, as the server must. */
        char iface[160];
        snprintf(iface, sizeof iface,
                 "{\"data\": [%" PRIuPTR ", true], \"shape\": [%zu, %zu], \"typestr\": \"<f4\", "
                 "\"version\": 3}",
                 (uintptr_t)r->x, r->rows, r->cols);
        CHECK_XGB(XGBoosterPredictFromDense(r->booster, iface, PREDICT_CONFIG,
                                            e == ENGINE_PROXY ? r->proxy : NULL, &shape, &dim,
                                            &result));
    }
    size_t n = 1;
    for (bst_ulong i = 0; i < dim; i++)
        n *= (size_t)shape[i];
    *values = n;
    return result;
}

/* Whether engine e applies to this run. */
static bool runs(const run_t *r, engine_t e)
{
    switch (e) {
    case ENGINE_PROXY:
        return !r->linear && !r->blas;
    case ENGINE_NATIVE:
        return r->forest || r->linear;
    case ENGINE_SGEMM:
#ifdef SMS_BENCH_SGEMM
        return r->blas != NULL;
#else
        return false;
#endif
    default:
        return true;
    }
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static volatile float sink;

/* Median over `repeats` of ns per row, each repeat about repeat_s long. */
static double time_engine(const run_t *r, engine_t e, double repeat_s, int repeats)
{
    size_t values;
    double t0 = now_s();
    long calls = 0;
    do { /* warm up and calibrate on at least 20 ms */
        sink = predict(r, e, &values)[0];
        calls++;
    } while (now_s() - t0 < 0.02);
    double per_call = (now_s() - t0) / (double)calls;
    long iters = (long)(repeat_s / per_call);
    if (iters < 1)
        iters = 1;
    double ns[16];
    for (int k = 0; k < repeats; k++) {
        double start = now_s();
        for (long i = 0; i < iters; i++)
            sink = predict(r, e, &values)[0];
        ns[k] = (now_s() - start) * 1e9 / ((double)iters * (double)r->rows);
    }
    qsort(ns, (size_t)repeats, sizeof *ns, cmp_double);
    return ns[repeats / 2];
}

/* Distance in representable float32 values (same-sign floats). */
static uint32_t ulp_distance(float a, float b)
{
    if (a == b)
        return 0;
    if (isnan(a) || isnan(b) || signbit(a) != signbit(b))
        return UINT32_MAX;
    uint32_t ia, ib;
    memcpy(&ia, &a, sizeof ia);
    memcpy(&ib, &b, sizeof ib);
    return ia > ib ? ia - ib : ib - ia;
}

/* sgemm's distances from the C API over the largest batch, for the
 * gblinear table. */
typedef struct sgemm_report {
    size_t values, identical, one_ulp, few_ulp, many_ulp;
    uint32_t worst;
} sgemm_report_t;

static sgemm_report_t sgemm_report;

/* Compares every engine's output with the NULL-proxy C API on the largest
 * batch (and the 1-row batch). Exits on a difference beyond 1 ulp, but for
 * sgemm, whose distances are only counted. */
static void check_parity(const spec_t *s, run_t *r)
{
    size_t batches[] = {1, MAX_ROWS};
    for (size_t b = 0; b < 2; b++) {
        r->rows = batches[b];
        size_t n_ref, n;
        const float *res = predict(r, ENGINE_NULL_PROXY, &n_ref);
        float *ref = malloc(n_ref * sizeof *ref);
        if (!ref)
            exit(1);
        memcpy(ref, res, n_ref * sizeof *ref);
        for (engine_t e = ENGINE_PROXY; e < NUM_ENGINES; e++) {
            if (!runs(r, e))
                continue;
            const float *got = predict(r, e, &n);
            if (n != n_ref) {
                fprintf(stderr, "%s: %s returns %zu values for %zu rows, C API %zu\n", s->name,
                        ENGINE_NAMES[e], n, r->rows, n_ref);
                exit(1);
            }
            uint32_t worst = 0;
            size_t differ = 0, at = 0;
            double max_abs = 0;
            sgemm_report_t rep = {n, 0, 0, 0, 0, 0};
            for (size_t k = 0; k < n; k++) {
                uint32_t d = ulp_distance(got[k], ref[k]);
                differ += d != 0;
                rep.identical += d == 0;
                rep.one_ulp += d == 1;
                rep.few_ulp += d > 1 && d <= 16;
                rep.many_ulp += d > 16;
                if (d > worst) {
                    worst = d;
                    at = k;
                }
                double a = fabs((double)got[k] - (double)ref[k]);
                if (a > max_abs)
                    max_abs = a;
            }
            rep.worst = worst;
            if (e == ENGINE_SGEMM) {
                if (r->rows == MAX_ROWS)
                    sgemm_report = rep;
                continue;
            }
            if (worst > 1) {
                fprintf(stderr,
                        "%s, %zu rows: %s differs from the C API: value %zu is %.9g, expected "
                        "%.9g (%" PRIu32 " ulp; %zu values differ, max abs diff %.3g)\n",
                        s->name, r->rows, ENGINE_NAMES[e], at, got[at], ref[at], worst, differ,
                        max_abs);
                exit(1);
            }
            if (differ)
                printf("  note: %s, %zu rows: %zu of %zu values 1 ulp from the C API\n",
                       ENGINE_NAMES[e], r->rows, differ, n);
        }
        free(ref);
    }
}

typedef struct result {
    const char *model;
    size_t rows;
    bool linear;
    double ns[NUM_ENGINES]; /* NAN where the engine did not run */
} result_t;

static void target_line(const char *what, double ratio, double want)
{
    printf("  %-52s %6.2fx (>= %2gx)  %s\n", what, ratio, want,
           isnan(ratio)    ? "MISS (no native)"
           : ratio >= want ? "PASS"
                           : "MISS");
}

/* Whether spec s is among the comma-separated name prefixes of `only`
 * (NULL: every spec). */
static bool selected(const spec_t *s, const char *only)
{
    if (!only)
        return true;
    for (const char *p = only; *p;) {
        size_t n = strcspn(p, ",");
        if (n && !strncmp(s->name, p, n))
            return true;
        p += n + (p[n] == ',');
    }
    return false;
}

int main(int argc, char **argv)
{
    /* libgomp reads OMP_NUM_THREADS when it is loaded, before main runs. */
    const char *omp = getenv("OMP_NUM_THREADS");
    if (!omp || strcmp(omp, "1") != 0) {
        setenv("OMP_NUM_THREADS", "1", 1);
        setenv("OPENBLAS_NUM_THREADS", "1", 1);
        execv("/proc/self/exe", argv);
        perror("re-exec with OMP_NUM_THREADS=1");
        return 1;
    }
    double repeat_s = 0.25;
    int repeats = 5;
    const char *only = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "m:r:f:")) != -1) {
        if (opt == 'm')
            repeat_s = atof(optarg) / 1000.0;
        else if (opt == 'r')
            repeats = atoi(optarg);
        else if (opt == 'f')
            only = optarg;
        else {
            fprintf(stderr, "usage: %s [-m ms_per_repeat] [-r repeats] [-f family,...]\n", argv[0]);
            return 2;
        }
    }
    if (!(repeat_s > 0) || repeats < 1 || repeats > 15) {
        fprintf(stderr, "%s: -m must be positive, -r 1..15\n", argv[0]);
        return 2;
    }
#ifdef SMS_BENCH_SGEMM
    openblas_set_num_threads(1);
#endif
    int major, minor, patch;
    XGBoostVersion(&major, &minor, &patch);
    printf("engine: libxgboost %d.%d.%d, one thread; median of %d x %.0f ms; rows ~5%% NaN\n",
           major, minor, patch, repeats, repeat_s * 1000);

    DMatrixHandle proxy;
    CHECK_XGB(XGProxyDMatrixCreate(&proxy));
    result_t results[NUM_SPECS * NUM_BATCHES];
    size_t nresults = 0;
    sgemm_report_t linear_report = {0, 0, 0, 0, 0, 0};
    for (size_t m = 0; m < NUM_SPECS; m++) {
        const spec_t *s = &SPECS[m];
        if (!selected(s, only))
            continue;
        double t0 = now_s();
        BoosterHandle b = train(s);
        bst_ulong len;
        const char *json;
        CHECK_XGB(XGBoosterSaveModelToBuffer(b, "{\"format\": \"json\"}", &len, &json));
        size_t trees, nodes;
        int max_depth;
        describe(json, (size_t)len, &trees, &nodes, &max_depth);
        char why[256] = "";
        sms_forest_t *forest = NULL;
        sms_linear_t *linear = NULL;
        blas_model_t blas;
        bool is_linear = s->booster && !strcmp(s->booster, "gblinear");
        if (is_linear) {
            linear = sms_linear_compile(json, (size_t)len, why, sizeof why);
            if (!blas_model_read(json, (size_t)len, &blas))
                exit(1);
            printf("%-17s gblinear %s, %zu features; trained in %.1f s\n", s->name, s->objective,
                   s->num_feature, now_s() - t0);
        } else {
            forest = sms_forest_compile(json, (size_t)len, why, sizeof why);
            printf("%-17s %s, %zu features: %zu trees, %zu nodes (%.0f per tree), max depth %d%s"
                   "; trained in %.1f s\n",
                   s->name, s->objective, s->num_feature, trees, nodes,
                   (double)nodes / (double)(trees ? trees : 1), max_depth,
                   forest && sms_forest_num_categorical(forest) ? ", categorical splits" : "",
                   now_s() - t0);
        }
        if (!forest && !linear)
            printf("  native evaluator declined: %s\n", why);

        float *x = malloc(MAX_ROWS * s->num_feature * sizeof *x);
        size_t num_output = forest   ? sms_forest_num_output(forest)
                            : linear ? sms_linear_num_output(linear)
                                     : 0;
        float *out = malloc(MAX_ROWS * (num_output ? num_output : 1) * sizeof *out);
        size_t work_floats = forest   ? sms_forest_workspace_floats(forest)
                             : linear ? sms_linear_workspace_floats(linear)
                                      : 1;
        if (is_linear && MAX_ROWS * (s->num_feature + 16) > work_floats)
            work_floats = MAX_ROWS * (s->num_feature + blas.obj.num_group);
        float *work = malloc(work_floats * sizeof *work);
        if (!x || !out || !work)
            return 1;
        fill_rows(x, MAX_ROWS, s->num_feature, s->num_categorical);
        run_t r = {b, proxy, forest,         linear, is_linear ? &blas : NULL,
                   x, 0,     s->num_feature, out,    work};
        sgemm_report = (sgemm_report_t){0, 0, 0, 0, 0, 0};
        check_parity(s, &r);
        if (is_linear)
            linear_report = sgemm_report;

        for (size_t k = 0; k < NUM_BATCHES; k++) {
            result_t *res = &results[nresults++];
            res->model = s->name;
            res->linear = is_linear;
            res->rows = r.rows = BATCHES[k];
            for (engine_t e = 0; e < NUM_ENGINES; e++)
                res->ns[e] = runs(&r, e) ? time_engine(&r, e, repeat_s, repeats) : NAN;
        }
        sms_forest_free(forest);
        sms_linear_free(linear);
        if (is_linear) {
            free(blas.weight);
            free(blas.start);
        }
        free(x);
        free(out);
        free(work);
        CHECK_XGB(XGBoosterFree(b));
    }
    CHECK_XGB(XGDMatrixFree(proxy));

    printf("\n%-17s %6s %12s %12s %12s %9s %9s\n", "model", "rows", "null ns/row", "proxy ns/row",
           "native ns/row", "null/nat", "proxy/nat");
    for (size_t i = 0; i < nresults; i++) {
        const result_t *res = &results[i];
        printf("%-17s %6zu %12.0f %12.0f %12.1f %8.1fx %8.1fx\n", res->model, res->rows,
               res->ns[ENGINE_NULL_PROXY], res->ns[ENGINE_PROXY], res->ns[ENGINE_NATIVE],
               res->ns[ENGINE_NULL_PROXY] / res->ns[ENGINE_NATIVE],
               res->ns[ENGINE_PROXY] / res->ns[ENGINE_NATIVE]);
    }
    bool any_linear = false;
    for (size_t i = 0; i < nresults; i++)
        any_linear |= results[i].linear;
    if (any_linear) {
        printf("\ngblinear: its C API column (null) is a DMatrix per call (no in-place path); "
               "sgemm is OpenBLAS's, not XGBoost's arithmetic\n");
        printf("%-17s %6s %14s %12s %12s %9s %9s\n", "model", "rows", "dmatrix ns/row",
               "native ns/row", "sgemm ns/row", "dm/nat", "sgemm/nat");
        for (size_t i = 0; i < nresults; i++) {
            const result_t *res = &results[i];
            if (!res->linear)
                continue;
            printf("%-17s %6zu %14.0f %12.1f %12.1f %8.1fx %8.2fx\n", res->model, res->rows,
                   res->ns[ENGINE_NULL_PROXY], res->ns[ENGINE_NATIVE], res->ns[ENGINE_SGEMM],
                   res->ns[ENGINE_NULL_PROXY] / res->ns[ENGINE_NATIVE],
                   res->ns[ENGINE_SGEMM] / res->ns[ENGINE_NATIVE]);
        }
        const sgemm_report_t *g = &linear_report;
        if (g->values)
            printf("  sgemm vs the C API over %zu values: %zu identical, %zu 1 ulp, %zu 2-16 ulp, "
                   "%zu beyond (worst %" PRIu32 " ulp); the native sums: all identical\n",
                   g->values, g->identical, g->one_ulp, g->few_ulp, g->many_ulp, g->worst);
        else
            printf("  sgemm: not built (no OpenBLAS found when configuring)\n");
    }

    /* Targets of issue 5, on the 100-tree model. */
    if (nresults >= 4 && !strcmp(results[0].model, SPECS[0].name)) {
        const result_t *one = &results[0], *thousand = &results[3];
        double best_capi = fmin(thousand->ns[ENGINE_NULL_PROXY], thousand->ns[ENGINE_PROXY]);
        printf("\ntargets (%s):\n", one->model);
        target_line("1 row: native vs C API with a NULL proxy",
                    one->ns[ENGINE_NULL_PROXY] / one->ns[ENGINE_NATIVE], 20);
        target_line("1 row: native vs C API with a reused proxy",
                    one->ns[ENGINE_PROXY] / one->ns[ENGINE_NATIVE], 8);
        target_line("1000 rows, per row: native vs the faster C API path",
                    best_capi / thousand->ns[ENGINE_NATIVE], 4);
    }
    return 0;
}
