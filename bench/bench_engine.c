/* Engine benchmark: the same models and rows, in one process and one thread,
 * predicted by the XGBoost C API in place (with a NULL proxy, and with one
 * reused proxy DMatrix as the server does) and by the native evaluator
 * (sms_forest). Models are trained here through the C API on synthetic data,
 * so nothing needs fixtures. Checks that all three agree before timing, then
 * prints ns/row, the ratios, and the targets of issue 5.
 *
 *   bench_engine [-m ms_per_repeat] [-r repeats]     (defaults 250 ms, 5) */
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

#define MAX_ROWS 10000
static const size_t BATCHES[] = {1, 10, 100, 1000, MAX_ROWS};
#define NUM_BATCHES (sizeof BATCHES / sizeof BATCHES[0])

/* 1.7.x requires cache_id; missing values arrive as NaN. */
static const char PREDICT_CONFIG[] =
    "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, "
    "\"strict_shape\": false, \"missing\": NaN, \"cache_id\": 0}";

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
} spec_t;

static const spec_t SPECS[] = {
    {"binary 100x6", "binary:logistic", 0, 100, 6, 20, 20000, "0.1"},
    {"softprob 4x50x6", "multi:softprob", 4, 50, 6, 20, 20000, "0.1"},
    {"deep 500x8", "reg:squarederror", 0, 500, 8, 200, 4000, "1"},
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

/* Rows of features in [-2, 2), about 5% of them missing. */
static void fill_rows(float *x, size_t rows, size_t cols)
{
    for (size_t k = 0; k < rows * cols; k++)
        x[k] = uniform() < 0.05 ? NAN : (float)(4.0 * uniform() - 2.0);
}

static double feat(const float *row, size_t j)
{
    return isnan(row[j]) ? 0.3 : row[j];
}

/* A target with interactions, thresholds and noise so that every tree keeps
 * finding splits down to max_depth. */
static float target(const spec_t *s, const float *row)
{
    double f = sin(2.0 * feat(row, 0)) + feat(row, 1) * feat(row, 2) +
               (feat(row, 3) > 0.4 ? 1.0 : -0.5) - 0.3 * feat(row, 4) * feat(row, 4) +
               0.5 * cos(3.0 * feat(row, 5) * feat(row, 6));
    for (size_t j = 7; j < s->num_feature; j += 7)
        f += 0.2 * sin(feat(row, j) * feat(row, j - 1));
    double noise = uniform() - 0.5;
    if (s->num_class > 1) {
        /* Class from the quantile of f plus a second signal. */
        double g = f + 0.7 * feat(row, 7) * feat(row, 8) + 0.8 * noise;
        int c = g < -0.8 ? 0 : g < 0.2 ? 1 : g < 1.2 ? 2 : 3;
        return (float)(c % s->num_class);
    }
    if (!strcmp(s->objective, "binary:logistic"))
        return f + 1.2 * noise > 0.3 ? 1.0f : 0.0f;
    return (float)(f + noise);
}

static BoosterHandle train(const spec_t *s)
{
    size_t n = s->train_rows, cols = s->num_feature;
    float *x = malloc(n * cols * sizeof *x);
    float *y = malloc(n * sizeof *y);
    if (!x || !y)
        exit(1);
    fill_rows(x, n, cols);
    for (size_t i = 0; i < n; i++)
        y[i] = target(s, x + i * cols);
    DMatrixHandle dm;
    BoosterHandle b;
    CHECK_XGB(XGDMatrixCreateFromMat(x, (bst_ulong)n, (bst_ulong)cols, NAN, &dm));
    CHECK_XGB(XGDMatrixSetFloatInfo(dm, "label", y, (bst_ulong)n));
    CHECK_XGB(XGBoosterCreate(&dm, 1, &b));
    char depth[24], num_class[24], threads[24];
    snprintf(depth, sizeof depth, "%d", s->depth);
    snprintf(num_class, sizeof num_class, "%d", s->num_class);
    long procs = sysconf(_SC_NPROCESSORS_ONLN);
    snprintf(threads, sizeof threads, "%ld", procs > 0 ? procs : 1);
    CHECK_XGB(XGBoosterSetParam(b, "objective", s->objective));
    if (s->num_class > 1)
        CHECK_XGB(XGBoosterSetParam(b, "num_class", num_class));
    CHECK_XGB(XGBoosterSetParam(b, "tree_method", "hist"));
    CHECK_XGB(XGBoosterSetParam(b, "max_depth", depth));
    CHECK_XGB(XGBoosterSetParam(b, "eta", "0.1"));
    CHECK_XGB(XGBoosterSetParam(b, "min_child_weight", s->min_child_weight));
    CHECK_XGB(XGBoosterSetParam(b, "max_bin", "64"));
    CHECK_XGB(XGBoosterSetParam(b, "subsample", "0.8"));
    CHECK_XGB(XGBoosterSetParam(b, "colsample_bytree", "0.5"));
    CHECK_XGB(XGBoosterSetParam(b, "seed", "7"));
    CHECK_XGB(XGBoosterSetParam(b, "nthread", threads)); /* training only */
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

typedef enum { ENGINE_NULL_PROXY, ENGINE_PROXY, ENGINE_NATIVE, NUM_ENGINES } engine_t;
static const char *const ENGINE_NAMES[] = {"C API, NULL proxy", "C API, reused proxy", "native"};

typedef struct run {
    BoosterHandle booster;
    DMatrixHandle proxy;
    const sms_forest_t *forest;
    const float *x;
    size_t rows, cols;
    float *out;  /* native output */
    float *work; /* native workspace */
} run_t;

/* One prediction; returns the output values (XGBoost's thread-local buffer
 * or run->out) and their count. */
static const float *predict(const run_t *r, engine_t e, size_t *values)
{
    if (e == ENGINE_NATIVE) {
        sms_forest_predict(r->forest, r->x, r->rows, r->out, r->work);
        *values = r->rows * sms_forest_num_output(r->forest);
        return r->out;
    }
    /* The interface string is built per call, as the server must. */
    char iface[160];
    snprintf(iface, sizeof iface,
             "{\"data\": [%" PRIuPTR ", true], \"shape\": [%zu, %zu], \"typestr\": \"<f4\", "
             "\"version\": 3}",
             (uintptr_t)r->x, r->rows, r->cols);
    const bst_ulong *shape = NULL;
    bst_ulong dim = 0;
    const float *result = NULL;
    CHECK_XGB(XGBoosterPredictFromDense(r->booster, iface, PREDICT_CONFIG,
                                        e == ENGINE_PROXY ? r->proxy : NULL, &shape, &dim,
                                        &result));
    size_t n = 1;
    for (bst_ulong i = 0; i < dim; i++)
        n *= (size_t)shape[i];
    *values = n;
    return result;
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

/* Compares every engine's output with the NULL-proxy C API on the largest
 * batch (and the 1-row batch). Exits on a difference beyond 1 ulp. */
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
            if (e == ENGINE_NATIVE && !r->forest)
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
            for (size_t k = 0; k < n; k++) {
                uint32_t d = ulp_distance(got[k], ref[k]);
                differ += d != 0;
                if (d > worst) {
                    worst = d;
                    at = k;
                }
                double a = fabs((double)got[k] - (double)ref[k]);
                if (a > max_abs)
                    max_abs = a;
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
    double ns[NUM_ENGINES]; /* NAN where the engine did not run */
} result_t;

static void target_line(const char *what, double ratio, double want)
{
    printf("  %-52s %6.2fx (>= %2gx)  %s\n", what, ratio, want,
           isnan(ratio)    ? "MISS (no native)"
           : ratio >= want ? "PASS"
                           : "MISS");
}

int main(int argc, char **argv)
{
    /* libgomp reads OMP_NUM_THREADS when it is loaded, before main runs. */
    const char *omp = getenv("OMP_NUM_THREADS");
    if (!omp || strcmp(omp, "1") != 0) {
        setenv("OMP_NUM_THREADS", "1", 1);
        execv("/proc/self/exe", argv);
        perror("re-exec with OMP_NUM_THREADS=1");
        return 1;
    }
    double repeat_s = 0.25;
    int repeats = 5;
    int opt;
    while ((opt = getopt(argc, argv, "m:r:")) != -1) {
        if (opt == 'm')
            repeat_s = atof(optarg) / 1000.0;
        else if (opt == 'r')
            repeats = atoi(optarg);
        else {
            fprintf(stderr, "usage: %s [-m ms_per_repeat] [-r repeats]\n", argv[0]);
            return 2;
        }
    }
    if (!(repeat_s > 0) || repeats < 1 || repeats > 15) {
        fprintf(stderr, "%s: -m must be positive, -r 1..15\n", argv[0]);
        return 2;
    }
    int major, minor, patch;
    XGBoostVersion(&major, &minor, &patch);
    printf("engine: libxgboost %d.%d.%d, one thread; median of %d x %.0f ms; rows ~5%% NaN\n",
           major, minor, patch, repeats, repeat_s * 1000);

    DMatrixHandle proxy;
    CHECK_XGB(XGProxyDMatrixCreate(&proxy));
    result_t results[NUM_SPECS * NUM_BATCHES];
    size_t nresults = 0;
    for (size_t m = 0; m < NUM_SPECS; m++) {
        const spec_t *s = &SPECS[m];
        double t0 = now_s();
        BoosterHandle b = train(s);
        bst_ulong len;
        const char *json;
        CHECK_XGB(XGBoosterSaveModelToBuffer(b, "{\"format\": \"json\"}", &len, &json));
        size_t trees, nodes;
        int max_depth;
        describe(json, (size_t)len, &trees, &nodes, &max_depth);
        char why[256] = "";
        sms_forest_t *forest = sms_forest_compile(json, (size_t)len, why, sizeof why);
        printf("%-16s %s, %zu features: %zu trees, %zu nodes (%.0f per tree), max depth %d; "
               "trained in %.1f s\n",
               s->name, s->objective, s->num_feature, trees, nodes,
               (double)nodes / (double)(trees ? trees : 1), max_depth, now_s() - t0);
        if (!forest)
            printf("  native evaluator declined: %s\n", why);

        float *x = malloc(MAX_ROWS * s->num_feature * sizeof *x);
        size_t num_output = forest ? sms_forest_num_output(forest) : 0;
        float *out = malloc(MAX_ROWS * (num_output ? num_output : 1) * sizeof *out);
        float *work = malloc((forest ? sms_forest_workspace_floats(forest) : 1) * sizeof *work);
        if (!x || !out || !work)
            return 1;
        fill_rows(x, MAX_ROWS, s->num_feature);
        run_t r = {b, proxy, forest, x, 0, s->num_feature, out, work};
        check_parity(s, &r);

        for (size_t k = 0; k < NUM_BATCHES; k++) {
            result_t *res = &results[nresults++];
            res->model = s->name;
            res->rows = r.rows = BATCHES[k];
            for (engine_t e = 0; e < NUM_ENGINES; e++)
                res->ns[e] =
                    e == ENGINE_NATIVE && !forest ? NAN : time_engine(&r, e, repeat_s, repeats);
        }
        sms_forest_free(forest);
        free(x);
        free(out);
        free(work);
        CHECK_XGB(XGBoosterFree(b));
    }
    CHECK_XGB(XGDMatrixFree(proxy));

    printf("\n%-16s %6s %12s %12s %12s %9s %9s\n", "model", "rows", "null ns/row", "proxy ns/row",
           "native ns/row", "null/nat", "proxy/nat");
    for (size_t i = 0; i < nresults; i++) {
        const result_t *res = &results[i];
        printf("%-16s %6zu %12.0f %12.0f %12.1f %8.1fx %8.1fx\n", res->model, res->rows,
               res->ns[ENGINE_NULL_PROXY], res->ns[ENGINE_PROXY], res->ns[ENGINE_NATIVE],
               res->ns[ENGINE_NULL_PROXY] / res->ns[ENGINE_NATIVE],
               res->ns[ENGINE_PROXY] / res->ns[ENGINE_NATIVE]);
    }

    /* Targets of issue 5, on the 100-tree model (results 0..NUM_BATCHES-1). */
    const result_t *one = &results[0], *thousand = &results[3];
    double best_capi = fmin(thousand->ns[ENGINE_NULL_PROXY], thousand->ns[ENGINE_PROXY]);
    printf("\ntargets (%s):\n", one->model);
    target_line("1 row: native vs C API with a NULL proxy",
                one->ns[ENGINE_NULL_PROXY] / one->ns[ENGINE_NATIVE], 20);
    target_line("1 row: native vs C API with a reused proxy",
                one->ns[ENGINE_PROXY] / one->ns[ENGINE_NATIVE], 8);
    target_line("1000 rows, per row: native vs the faster C API path",
                best_capi / thousand->ns[ENGINE_NATIVE], 4);
    return 0;
}
