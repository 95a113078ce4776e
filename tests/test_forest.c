/* The native evaluator must give XGBoosterPredictFromDense's bits. Models
 * are trained here through the C API (every supported objective, gbtree and
 * dart, missing values, multi-class, non-default base scores, a deep/wide
 * model), serialised to JSON, compiled, and compared on probe rows, random
 * rows and several batch shapes; dart models in the one accumulation
 * (two roundings or a fused multiply-add) this libxgboost was found to
 * use. Models the evaluator must not take
 * (gblinear, categorical splits, hostile JSON) must give NULL and a reason. */
#include "testutil.h"

#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xgboost/c_api.h>

#include "smserve/forest.h"

#define XGB_OK(call)                                                                               \
    do {                                                                                           \
        if ((call) != 0) {                                                                         \
            print_error("%s: %s\n", #call, XGBGetLastError());                                     \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

/* sms_forest_predict with a workspace of exactly the size the forest asks
 * for, placed before a PROT_NONE page so that any overrun crashes. */
static void predict(const sms_forest_t *f, const float *x, size_t rows, float *out)
{
    size_t bytes = sms_forest_workspace_floats(f) * sizeof(float);
    void *zero = calloc(1, bytes ? bytes : 1);
    float *work = tu_guarded_copy(zero, bytes);
    assert_non_null(work);
    sms_forest_predict(f, x, rows, out, work);
    tu_guarded_free(work, bytes);
    free(zero);
}

static const char PREDICT_CONFIG[] =
    "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, "
    "\"strict_shape\": false, \"missing\": NaN, \"cache_id\": 0}";

typedef struct train_case {
    const char *objective;
    const char *booster;
    int num_class;
    const char *base_score; /* NULL: XGBoost's default */
    size_t num_feature;
    int rounds;
    int depth;
    size_t rows;
    const char *tree_method;
} train_case_t;

/* ---- training ------------------------------------------------------------- */

static float label_for(const char *objective, int num_class, float s, uint64_t *rng)
{
    float u = (float)(tu_rand32(rng) >> 8) / 16777216.0f;
    if (!strncmp(objective, "binary:", 7))
        return s > 0.0f;
    if (!strcmp(objective, "reg:logistic"))
        return 1.0f / (1.0f + expf(-s));
    if (!strncmp(objective, "multi:", 6)) {
        int k = (int)floorf((s + 2.0f) * (float)num_class / 4.0f);
        return (float)(k < 0 ? 0 : k >= num_class ? num_class - 1 : k);
    }
    if (!strcmp(objective, "count:poisson") || !strcmp(objective, "reg:tweedie"))
        return floorf(expf(s / 2.0f) * u * 2.0f);
    if (!strcmp(objective, "reg:gamma") || !strcmp(objective, "reg:squaredlogerror"))
        return expf(s / 2.0f) + 0.01f;
    if (!strcmp(objective, "survival:cox"))
        return (expf(s) + 0.1f) * (u < 0.2f ? -1.0f : 1.0f);
    return s + u - 0.5f;
}

/* Random features (10% missing) and labels that depend on them. */
static void make_data(const train_case_t *c, uint64_t *rng, float *x, float *y)
{
    for (size_t r = 0; r < c->rows; r++) {
        float s = 0.0f;
        for (size_t j = 0; j < c->num_feature; j++) {
            float v = (float)(tu_rand32(rng) >> 8) / 8388608.0f - 1.0f;
            if (tu_rand32(rng) % 10 == 0)
                x[r * c->num_feature + j] = NAN;
            else {
                x[r * c->num_feature + j] = v * 3.0f;
                s += v * (float)((j % 5) + 1) / (float)(1 + j / 5);
            }
        }
        y[r] = label_for(c->objective, c->num_class, s, rng);
    }
}

static BoosterHandle train(const train_case_t *c)
{
    uint64_t rng = 0x1234567ull + (uint64_t)c->rounds * 7919u + c->num_feature;
    float *x = malloc(c->rows * c->num_feature * sizeof *x);
    float *y = malloc(c->rows * sizeof *y);
    assert_non_null(x);
    assert_non_null(y);
    make_data(c, &rng, x, y);
    DMatrixHandle dm;
    BoosterHandle b;
    XGB_OK(XGDMatrixCreateFromMat(x, c->rows, c->num_feature, NAN, &dm));
    XGB_OK(XGDMatrixSetFloatInfo(dm, "label", y, c->rows));
    XGB_OK(XGBoosterCreate(&dm, 1, &b));
    char buf[32];
    XGB_OK(XGBoosterSetParam(b, "objective", c->objective));
    XGB_OK(XGBoosterSetParam(b, "booster", c->booster));
    XGB_OK(XGBoosterSetParam(b, "nthread", "1"));
    XGB_OK(XGBoosterSetParam(b, "seed", "7"));
    XGB_OK(XGBoosterSetParam(b, "eta", "0.3"));
    XGB_OK(XGBoosterSetParam(b, "tree_method", c->tree_method ? c->tree_method : "hist"));
    snprintf(buf, sizeof buf, "%d", c->depth);
    XGB_OK(XGBoosterSetParam(b, "max_depth", buf));
    if (c->tree_method && !strcmp(c->tree_method, "exact"))
        XGB_OK(XGBoosterSetParam(b, "gamma", "0.5")); /* pruning leaves deleted nodes */
    if (c->num_class) {
        snprintf(buf, sizeof buf, "%d", c->num_class);
        XGB_OK(XGBoosterSetParam(b, "num_class", buf));
    }
    if (c->base_score)
        XGB_OK(XGBoosterSetParam(b, "base_score", c->base_score));
    if (!strcmp(c->booster, "dart")) {
        XGB_OK(XGBoosterSetParam(b, "rate_drop", "0.3"));
        XGB_OK(XGBoosterSetParam(b, "skip_drop", "0"));
    }
    for (int i = 0; i < c->rounds; i++)
        XGB_OK(XGBoosterUpdateOneIter(b, i, dm));
    XGDMatrixFree(dm);
    free(x);
    free(y);
    return b;
}

/* The booster's JSON, malloc'd (the C API's buffer dies with the next call). */
static char *save_json(BoosterHandle b, size_t *len)
{
    bst_ulong n = 0;
    const char *raw = NULL;
    XGB_OK(XGBoosterSaveModelToBuffer(b, "{\"format\": \"json\"}", &n, &raw));
    char *copy = malloc(n + 1);
    assert_non_null(copy);
    memcpy(copy, raw, n);
    copy[n] = '\0';
    *len = n;
    return copy;
}

static BoosterHandle load_json(const char *json, size_t len)
{
    BoosterHandle b;
    XGB_OK(XGBoosterCreate(NULL, 0, &b));
    XGB_OK(XGBoosterLoadModelFromBuffer(b, json, len));
    XGB_OK(XGBoosterSetParam(b, "nthread", "1"));
    return b;
}

static void predict_ref(BoosterHandle b, const float *x, size_t rows, size_t nf, float *out,
                        size_t expect)
{
    char iface[200];
    snprintf(iface, sizeof iface,
             "{\"data\": [%lu, true], \"shape\": [%zu, %zu], \"typestr\": \"<f4\", "
             "\"version\": 3}",
             (unsigned long)(uintptr_t)x, rows, nf);
    const bst_ulong *shape;
    bst_ulong dim;
    const float *res;
    XGB_OK(XGBoosterPredictFromDense(b, iface, PREDICT_CONFIG, NULL, &shape, &dim, &res));
    size_t n = 1;
    for (bst_ulong i = 0; i < dim; i++)
        n *= shape[i];
    assert_int_equal(n, expect);
    memcpy(out, res, n * sizeof *out);
}

/* ---- comparison ----------------------------------------------------------- */

static int64_t ordered(float v)
{
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return i < 0 ? (int64_t)INT32_MIN - i : i;
}

typedef struct parity {
    size_t values, differ;
    int64_t max_ulp;
} parity_t;

static void compare(const float *want, const float *got, size_t n, parity_t *p)
{
    for (size_t i = 0; i < n; i++) {
        p->values++;
        if (isnan(want[i]) && isnan(got[i]))
            continue;
        if (memcmp(&want[i], &got[i], sizeof want[i]) == 0)
            continue;
        int64_t d = ordered(want[i]) - ordered(got[i]);
        d = d < 0 ? -d : d;
        if (p->differ < 5)
            print_message("    value %zu: xgboost %.9g, native %.9g (%lld ulp)\n", i, want[i],
                          got[i], (long long)d);
        p->differ++;
        if (d > p->max_ulp)
            p->max_ulp = d;
    }
}

/* The smallest positive output of the last check_parity. */
static float smallest_positive;

static bool runtime_fuses_dart(void);

/* Compiles b's JSON and checks every output bit against the C API on probe
 * rows and random rows, predicted whole, one row at a time, and in chunks
 * of awkward sizes. */
static void check_parity(BoosterHandle b, const char *label)
{
    size_t len;
    char *json = save_json(b, &len);
    char why[256];
    sms_forest_t *f = sms_forest_compile(json, len, why, sizeof why);
    if (!f) {
        print_error("%s: refused: %s\n", label, why);
        fail();
    }
    /* The library's dart accumulation, found once per process: every dart
     * model must then match in that one mode. */
    bool dart = strstr(json, "\"name\":\"dart\"") != NULL;
    sms_forest_set_fused(f, runtime_fuses_dart());
    assert_true(sms_forest_fused(f) == (dart && runtime_fuses_dart()));
    bst_ulong nf_xgb;
    XGB_OK(XGBoosterGetNumFeature(b, &nf_xgb));
    size_t nf = sms_forest_num_feature(f), no = sms_forest_num_output(f);
    assert_int_equal(nf, nf_xgb);
    const size_t probe_rows = 3000, random_rows = 1000, rows = probe_rows + random_rows;
    float *x = malloc(rows * nf * sizeof *x);
    float *want = malloc(rows * no * sizeof *want);
    float *got = malloc(rows * no * sizeof *got);
    assert_true(x && want && got);
    sms_forest_probe(f, 42, probe_rows, x);
    uint64_t rng = 99;
    for (size_t i = probe_rows * nf; i < rows * nf; i++) {
        uint32_t pick = tu_rand32(&rng) % 40;
        x[i] = pick < 2    ? NAN
               : pick == 2 ? INFINITY
               : pick == 3 ? -INFINITY
               : pick == 4 ? -0.0f
                           : (float)((int32_t)tu_rand32(&rng)) / 4e8f;
    }
    predict_ref(b, x, rows, nf, want, rows * no);

    parity_t p = {0, 0, 0};
    predict(f, x, rows, got);
    compare(want, got, rows * no, &p);
    for (size_t r = 0; r < 40; r++) {
        predict(f, x + r * nf, 1, got);
        compare(want + r * no, got, no, &p);
    }
    const size_t chunks[] = {2, 3, 5, 15, 17, 33};
    size_t r = 0;
    for (size_t k = 0; r < rows; k++) {
        size_t n = chunks[k % 6] < rows - r ? chunks[k % 6] : rows - r;
        predict(f, x + r * nf, n, got);
        compare(want + r * no, got, n * no, &p);
        r += n;
    }
    smallest_positive = INFINITY;
    for (size_t i = 0; i < rows * no; i++)
        if (want[i] > 0.0f && want[i] < smallest_positive)
            smallest_positive = want[i];
    print_message("  %-44s %zu trees %6zu nodes: %zu values, %zu differ (max %lld ulp)\n", label,
                  sms_forest_num_trees(f), sms_forest_num_nodes(f), p.values, p.differ,
                  (long long)p.max_ulp);
    assert_int_equal(p.differ, 0);
    free(x);
    free(want);
    free(got);
    free(json);
    sms_forest_free(f);
}

static int dart_weights_differ(BoosterHandle b)
{
    size_t len;
    char *json = save_json(b, &len);
    json_t *root = json_loadb(json, len, 0, NULL);
    json_t *w = json_object_get(
        json_object_get(json_object_get(root, "learner"), "gradient_booster"), "weight_drop");
    int differ = 0;
    for (size_t i = 0; i < json_array_size(w); i++)
        differ |= json_real_value(json_array_get(w, i)) != 1.0;
    json_decref(root);
    free(json);
    return differ;
}

static void expect_refused(const char *json, size_t len, const char *reason_part);

/* ---- the dart accumulation -------------------------------------------------- */

/* A dart model on which the two accumulations of sms_forest_set_fused
 * differ on many rows: regression (margins are outputs), base score 2.5,
 * leaves and weights with full float mantissas. */
static char *dart_discriminating_model(size_t *len)
{
    train_case_t c = {"reg:squarederror", "dart", 0, "2.5", 4, 8, 3, 200, NULL};
    BoosterHandle b = train(&c);
    size_t n;
    char *json = save_json(b, &n);
    XGBoosterFree(b);
    json_t *root = json_loadb(json, n, 0, NULL);
    free(json);
    assert_non_null(root);
    json_t *gb = json_object_get(json_object_get(root, "learner"), "gradient_booster");
    json_t *trees =
        json_object_get(json_object_get(json_object_get(gb, "gbtree"), "model"), "trees");
    json_t *weights = json_object_get(gb, "weight_drop");
    assert_int_equal(json_array_size(weights), json_array_size(trees));
    for (size_t t = 0; t < json_array_size(trees); t++) {
        json_t *tree = json_array_get(trees, t);
        json_t *left = json_object_get(tree, "left_children");
        json_t *cond = json_object_get(tree, "split_conditions");
        for (size_t i = 0; i < json_array_size(left); i++)
            if (json_integer_value(json_array_get(left, i)) == -1) {
                float v = (i % 2 ? -1.0f : 1.0f) * (0.1f + 0.37f * (float)(i + 3 * t) / 7.0f);
                json_array_set_new(cond, i, json_real(v));
            }
        json_array_set_new(weights, t, json_real((float)(0.3 + 0.11 * (double)t) / 3.0f));
    }
    char *s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(root);
    *len = strlen(s);
    return s;
}

/* Whether this libxgboost fuses a dart tree's weighting into its addition:
 * on a model where the two accumulations differ, it must match exactly one
 * of them on every value. Found on first use, then remembered. */
static bool runtime_fuses_dart(void)
{
    static int fused = -1;
    if (fused >= 0)
        return fused;
    size_t len;
    char *json = dart_discriminating_model(&len);
    BoosterHandle b = load_json(json, len);
    char why[256];
    sms_forest_t *f = sms_forest_compile(json, len, why, sizeof why);
    if (!f) {
        print_error("the dart probe model was refused: %s\n", why);
        fail();
    }
    size_t nf = sms_forest_num_feature(f), rows = 2000;
    float *x = malloc(rows * nf * sizeof *x), *want = malloc(rows * sizeof *want);
    float *plain = malloc(rows * sizeof *plain), *fma = malloc(rows * sizeof *fma);
    assert_true(x && want && plain && fma);
    sms_forest_probe(f, 7, rows, x);
    predict_ref(b, x, rows, nf, want, rows);
    assert_false(sms_forest_fused(f));
    predict(f, x, rows, plain);
    sms_forest_set_fused(f, true);
    assert_true(sms_forest_fused(f));
    predict(f, x, rows, fma);
    size_t modes_differ = 0, plain_same = 0, fma_same = 0;
    for (size_t r = 0; r < rows; r++) {
        modes_differ += memcmp(&plain[r], &fma[r], sizeof *fma) != 0;
        plain_same += memcmp(&plain[r], &want[r], sizeof *want) == 0;
        fma_same += memcmp(&fma[r], &want[r], sizeof *want) == 0;
    }
    print_message("  dart accumulation probe: the two modes differ on %zu of %zu rows; XGBoost "
                  "matches two roundings on %zu, a fused multiply-add on %zu\n",
                  modes_differ, rows, plain_same, fma_same);
    assert_true(modes_differ > rows / 10);
    assert_true(plain_same == rows || fma_same == rows);
    fused = fma_same == rows;
    /* Back and forth: the leaves are rewritten, not accumulated. */
    sms_forest_set_fused(f, false);
    predict(f, x, rows, fma);
    assert_memory_equal(fma, plain, rows * sizeof *fma);
    free(x);
    free(want);
    free(plain);
    free(fma);
    free(json);
    sms_forest_free(f);
    XGBoosterFree(b);
    return fused;
}

static void test_dart_accumulation(void **state)
{
    (void)state;
    print_message("  this libxgboost adds dart trees with %s\n",
                  runtime_fuses_dart() ? "one fused multiply-add (fmaf)"
                                       : "two roundings (product, then sum)");
    /* The gate's choice: a gbtree model ignores the setting. */
    train_case_t c = {"reg:squarederror", "gbtree", 0, "2.5", 4, 8, 3, 200, NULL};
    BoosterHandle b = train(&c);
    size_t len;
    char *json = save_json(b, &len);
    sms_forest_t *f = sms_forest_compile(json, len, NULL, 0);
    assert_non_null(f);
    sms_forest_set_fused(f, true);
    assert_false(sms_forest_fused(f));
    sms_forest_free(f);
    free(json);
    XGBoosterFree(b);
    /* The discriminating model through the whole parity check. */
    json = dart_discriminating_model(&len);
    b = load_json(json, len);
    check_parity(b, "dart with full-mantissa leaves and weights");
    XGBoosterFree(b);
    free(json);
}

/* ---- parity tests ---------------------------------------------------------- */

static const char *const OBJECTIVES[] = {
    "reg:squarederror",    "reg:linear",     "reg:pseudohubererror", "reg:absoluteerror",
    "reg:squaredlogerror", "reg:gamma",      "reg:tweedie",          "count:poisson",
    "survival:cox",        "reg:logistic",   "binary:logistic",      "binary:logitraw",
    "binary:hinge",        "multi:softprob", "multi:softmax",
};

static const char *base_for(const char *objective)
{
    if (!strncmp(objective, "multi:", 6))
        return "0.2";
    if (!strcmp(objective, "binary:hinge"))
        return "0.3";
    if (!strcmp(objective, "reg:logistic") || !strncmp(objective, "binary:logi", 11))
        return "0.3";
    if (!strcmp(objective, "reg:gamma") || !strcmp(objective, "reg:tweedie") ||
        !strcmp(objective, "count:poisson") || !strcmp(objective, "survival:cox"))
        return "1.7";
    return "2.5";
}

static void parity_all(const char *booster)
{
    for (size_t i = 0; i < sizeof OBJECTIVES / sizeof OBJECTIVES[0]; i++) {
        const char *o = OBJECTIVES[i];
        int num_class = !strncmp(o, "multi:", 6) ? (i % 2 ? 4 : 3) : 0;
        train_case_t c = {o, booster, num_class, base_for(o), 12, 24, 5, 400, NULL};
        char label[96];
        BoosterHandle b = train(&c);
        if (!strcmp(booster, "dart"))
            assert_true(dart_weights_differ(b));
        snprintf(label, sizeof label, "%s %s base %s", booster, o, c.base_score);
        check_parity(b, label);
        /* The same model after a JSON round trip through the C API. */
        size_t len;
        char *json = save_json(b, &len);
        XGBoosterFree(b);
        b = load_json(json, len);
        snprintf(label, sizeof label, "%s %s (reloaded)", booster, o);
        check_parity(b, label);
        XGBoosterFree(b);
        free(json);
    }
}

static void test_parity_gbtree(void **state)
{
    (void)state;
    parity_all("gbtree");
}

static void test_parity_dart(void **state)
{
    (void)state;
    parity_all("dart");
}

static void test_parity_variants(void **state)
{
    (void)state;
    const train_case_t cases[] = {
        {"binary:logistic", "gbtree", 0, NULL, 20, 100, 6, 2000, NULL},
        {"binary:logistic", "gbtree", 0, NULL, 50, 200, 8, 3000, NULL},
        {"multi:softprob", "dart", 4, NULL, 30, 40, 6, 1000, NULL},
        {"reg:squarederror", "gbtree", 0, "20", 10, 30, 6, 500, "exact"},
        {"binary:logistic", "dart", 0, "0.8", 10, 30, 6, 500, "exact"},
        {"reg:squarederror", "gbtree", 0, NULL, 3, 1, 1, 50, NULL},
        /* Too wide to widen on the stack: rows are walked as they are. */
        {"multi:softprob", "gbtree", 3, NULL, 1100, 6, 4, 300, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const train_case_t *c = &cases[i];
        char label[96];
        snprintf(label, sizeof label, "%s %s %zuf %dx d%d%s", c->booster, c->objective,
                 c->num_feature, c->rounds, c->depth, c->tree_method ? " exact" : "");
        BoosterHandle b = train(c);
        check_parity(b, label);
        XGBoosterFree(b);
    }
}

/* Sets every leaf of every tree to `value` (alternating sign by node). */
static char *with_leaves(const char *json, size_t len, double value, size_t *out_len)
{
    json_t *root = json_loadb(json, len, 0, NULL);
    assert_non_null(root);
    json_t *gb = json_object_get(json_object_get(root, "learner"), "gradient_booster");
    json_t *model = json_object_get(gb, "model");
    if (!model)
        model = json_object_get(json_object_get(gb, "gbtree"), "model");
    json_t *trees = json_object_get(model, "trees");
    for (size_t t = 0; t < json_array_size(trees); t++) {
        json_t *tree = json_array_get(trees, t);
        json_t *left = json_object_get(tree, "left_children");
        json_t *cond = json_object_get(tree, "split_conditions");
        for (size_t i = 0; i < json_array_size(left); i++)
            if (json_integer_value(json_array_get(left, i)) == -1)
                json_array_set_new(cond, i, json_real((i + t) % 3 ? -value : value * 0.5));
    }
    char *s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(root);
    *out_len = strlen(s);
    return s;
}

/* Margins far out, where the transforms overflow or clamp (sigmoid's clamp
 * at 88.7, expf's overflow, softmax's max subtraction). */
static void test_parity_extreme_margins(void **state)
{
    (void)state;
    const char *objectives[] = {"binary:logistic", "count:poisson", "multi:softprob",
                                "multi:softmax",   "binary:hinge",  "reg:squarederror"};
    const double leaves[] = {1.0, 15.0, 30.0, 44.4, 50.0, 1e4};
    for (size_t i = 0; i < sizeof objectives / sizeof objectives[0]; i++) {
        for (size_t k = 0; k < sizeof leaves / sizeof leaves[0]; k++) {
            int nc = !strncmp(objectives[i], "multi:", 6) ? 3 : 0;
            train_case_t c = {objectives[i], k % 2 ? "dart" : "gbtree", nc, NULL, 6, 4, 3, 200,
                              NULL};
            BoosterHandle b = train(&c);
            size_t len, len2;
            char *json = save_json(b, &len);
            XGBoosterFree(b);
            char *edited = with_leaves(json, len, leaves[k], &len2);
            b = load_json(edited, len2);
            char label[96];
            snprintf(label, sizeof label, "%s %s leaves +-%g", c.booster, c.objective, leaves[k]);
            check_parity(b, label);
            /* Margins below -88.7 reach sigmoid's clamp: 1.7.4 gives about
             * 3e-39 there, not the 0 of 1 / (1 + expf(-x)). */
            if (!strcmp(c.objective, "binary:logistic") && leaves[k] >= 50.0)
                assert_true(smallest_positive < 1e-38f);
            XGBoosterFree(b);
            free(json);
            free(edited);
        }
    }
}

/* ---- refusals -------------------------------------------------------------- */

static void expect_refused(const char *json, size_t len, const char *reason_part)
{
    char why[256] = "unset";
    void *g = tu_guarded_copy(json, len);
    sms_forest_t *f = sms_forest_compile(g, len, why, sizeof why);
    tu_guarded_free(g, len);
    if (f) {
        print_error("compiled, expected a refusal (%s)\n", reason_part ? reason_part : "any");
        sms_forest_free(f);
        fail();
    }
    assert_true(why[0] != '\0' && strchr(why, '\n') == NULL);
    if (reason_part && !strstr(why, reason_part)) {
        print_error("reason '%s' lacks '%s'\n", why, reason_part);
        fail();
    }
}

static void test_refuse_gblinear(void **state)
{
    (void)state;
    train_case_t c = {"binary:logistic", "gblinear", 0, NULL, 5, 5, 0, 100, NULL};
    BoosterHandle b = train(&c);
    size_t len;
    char *json = save_json(b, &len);
    expect_refused(json, len, "gblinear");
    free(json);
    XGBoosterFree(b);
}

static void test_refuse_categorical(void **state)
{
    (void)state;
    const size_t rows = 300, nf = 3;
    float x[300 * 3], y[300];
    uint64_t rng = 5;
    for (size_t r = 0; r < rows; r++) {
        x[r * nf] = (float)(tu_rand32(&rng) % 6);
        x[r * nf + 1] = (float)(tu_rand32(&rng) % 1000) / 1000.0f;
        x[r * nf + 2] = (float)(tu_rand32(&rng) % 1000) / 1000.0f;
        y[r] = (x[r * nf] == 2.0f || x[r * nf] == 4.0f) + x[r * nf + 1] * 0.1f;
    }
    DMatrixHandle dm;
    BoosterHandle b;
    const char *types[] = {"c", "q", "q"};
    XGB_OK(XGDMatrixCreateFromMat(x, rows, nf, NAN, &dm));
    XGB_OK(XGDMatrixSetFloatInfo(dm, "label", y, rows));
    XGB_OK(XGDMatrixSetStrFeatureInfo(dm, "feature_type", types, nf));
    XGB_OK(XGBoosterCreate(&dm, 1, &b));
    XGB_OK(XGBoosterSetParam(b, "tree_method", "hist"));
    XGB_OK(XGBoosterSetParam(b, "nthread", "1"));
    XGB_OK(XGBoosterSetParam(b, "max_cat_to_onehot", "1"));
    for (int i = 0; i < 5; i++)
        XGB_OK(XGBoosterUpdateOneIter(b, i, dm));
    size_t len;
    char *json = save_json(b, &len);
    assert_non_null(strstr(json, "\"split_type\":[1"));
    expect_refused(json, len, "categorical");
    free(json);
    XGDMatrixFree(dm);
    XGBoosterFree(b);
}

/* A small valid model to mutate. */
static json_t *small_model_of(const char *booster)
{
    train_case_t c = {"binary:logistic", booster, 0, NULL, 4, 3, 3, 200, NULL};
    BoosterHandle b = train(&c);
    size_t len;
    char *json = save_json(b, &len);
    XGBoosterFree(b);
    json_t *root = json_loadb(json, len, 0, NULL);
    free(json);
    assert_non_null(root);
    return root;
}

static json_t *small_model(void)
{
    return small_model_of("dart");
}

/* A gbtree model of one tree that is a chain `depth` splits deep: node 2k
 * splits into the leaf 2k + 1 and the next link 2k + 2. */
static char *chain_model(unsigned depth, size_t *len)
{
    json_t *root = small_model_of("gbtree");
    json_t *model = json_object_get(
        json_object_get(json_object_get(root, "learner"), "gradient_booster"), "model");
    json_t *tree = json_deep_copy(json_array_get(json_object_get(model, "trees"), 0));
    size_t n = 2 * (size_t)depth + 1;
    const char *arrays[] = {"left_children",    "right_children", "parents",    "split_indices",
                            "split_conditions", "default_left",   "split_type", "loss_changes",
                            "sum_hessian",      "base_weights"};
    json_t *a[10];
    for (size_t k = 0; k < 10; k++)
        json_object_set_new(tree, arrays[k], a[k] = json_array());
    for (size_t i = 0; i < n; i++) {
        bool internal = i % 2 == 0 && i + 1 < n;
        json_array_append_new(a[0], json_integer(internal ? (json_int_t)i + 1 : -1));
        json_array_append_new(a[1], json_integer(internal ? (json_int_t)i + 2 : -1));
        json_array_append_new(a[2],
                              json_integer(i == 0 ? 2147483647 : (json_int_t)((i - 1) & ~1u)));
        json_array_append_new(a[3], json_integer(internal ? (json_int_t)(i / 2 % 4) : 0));
        json_array_append_new(
            a[4], json_real(internal ? 1.0 - (double)i / (double)n : (double)i / 1000.0));
        json_array_append_new(a[5], json_integer((i / 2) % 3 == 0));
        json_array_append_new(a[6], json_integer(0));
        json_array_append_new(a[7], json_real(internal ? 1.0 : 0.0));
        json_array_append_new(a[8], json_real(10.0));
        json_array_append_new(a[9], json_real(0.0));
    }
    char num[32];
    snprintf(num, sizeof num, "%zu", n);
    json_object_set_new(json_object_get(tree, "tree_param"), "num_nodes", json_string(num));
    json_object_set_new(json_object_get(tree, "tree_param"), "num_deleted", json_string("0"));
    json_t *trees = json_array();
    json_array_append_new(trees, tree);
    json_object_set_new(model, "trees", trees);
    json_t *info = json_array();
    json_array_append_new(info, json_integer(0));
    json_object_set_new(model, "tree_info", info);
    json_object_set_new(json_object_get(model, "gbtree_model_param"), "num_trees",
                        json_string("1"));
    char *s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(root);
    *len = strlen(s);
    return s;
}

/* Depth is bounded: 200 splits deep compiles (and matches), 300 does not. */
static void test_deep_chain(void **state)
{
    (void)state;
    size_t len;
    char *json = chain_model(200, &len);
    BoosterHandle b = load_json(json, len);
    check_parity(b, "gbtree chain of 200 splits");
    XGBoosterFree(b);
    free(json);
    json = chain_model(300, &len);
    expect_refused(json, len, "deeper");
    free(json);
}

/* The trees of a gbtree model's JSON. */
static json_t *gbtree_trees(json_t *root)
{
    json_t *gb = json_object_get(json_object_get(root, "learner"), "gradient_booster");
    return json_object_get(json_object_get(gb, "model"), "trees");
}

static void check_parity_json(json_t *root, const char *label)
{
    char *s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(17));
    BoosterHandle b = load_json(s, strlen(s));
    check_parity(b, label);
    XGBoosterFree(b);
    free(s);
}

/* Thresholds at the edges of float order: both zeros (-0 compares equal to
 * +0), the smallest subnormals, huge values. Probe rows sit
 * on them and one ulp either side; random rows hold -0, infinities, NaN. */
static void test_parity_edge_thresholds(void **state)
{
    (void)state;
    const double edges[] = {0.0, -0.0, 1.401298464324817e-45, -1.401298464324817e-45, 1e38, -1e38,
                            1.0, -2.0};
    json_t *root = small_model_of("gbtree");
    json_t *trees = gbtree_trees(root);
    size_t k = 0;
    for (size_t t = 0; t < json_array_size(trees); t++) {
        json_t *tree = json_array_get(trees, t);
        json_t *left = json_object_get(tree, "left_children");
        json_t *cond = json_object_get(tree, "split_conditions");
        for (size_t i = 0; i < json_array_size(left); i++)
            if (json_integer_value(json_array_get(left, i)) != -1)
                json_array_set_new(cond, i, json_real(edges[k++ % 8]));
    }
    assert_true(k >= 8);
    check_parity_json(root, "gbtree thresholds at float edges");
    json_decref(root);
}

/* A threshold of FLT_MAX, which XGBoost writes as 3.4028235e38, a decimal
 * just above FLT_MAX as a double: doubles up to half an ulp above round to
 * it and are taken; from there on they round to infinity and are refused. */
static void test_flt_max_threshold(void **state)
{
    (void)state;
    json_t *root = small_model_of("gbtree");
    json_t *trees = gbtree_trees(root);
    for (size_t t = 0; t < json_array_size(trees); t++) {
        json_t *tree = json_array_get(trees, t);
        json_t *cond = json_object_get(tree, "split_conditions");
        assert_true(json_integer_value(json_array_get(json_object_get(tree, "left_children"), 0)) >
                    0);
        json_array_set_new(cond, 0, json_real(t % 2 ? -3.4028235e38 : 3.4028235e38));
    }
    /* Nine digits, as XGBoost writes floats. */
    char *s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(9));
    assert_non_null(strstr(s, "3.4028235e38"));
    BoosterHandle b = load_json(s, strlen(s));
    check_parity(b, "gbtree with thresholds of +-FLT_MAX");
    XGBoosterFree(b);
    free(s);

    const double below_half_ulp = 0x1.fffffefffffffp127;
    sms_forest_t *f;
    json_t *cond = json_object_get(json_array_get(trees, 0), "split_conditions");
    json_array_set_new(cond, 0, json_real(below_half_ulp));
    s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(17));
    f = sms_forest_compile(s, strlen(s), NULL, 0);
    assert_non_null(f);
    sms_forest_free(f);
    free(s);
    const double refused[] = {0x1.ffffffp127, -0x1.ffffffp127, 3.4028236e38, 1e39};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        json_array_set_new(cond, 0, json_real(refused[i]));
        s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(17));
        expect_refused(s, strlen(s), "not a number");
        free(s);
    }
    json_decref(root);
}

/* Trees of different depths in one model, a single leaf among them: the
 * shallower ones are padded to the deepest, their leaves kept. */
static void test_parity_mixed_depths(void **state)
{
    (void)state;
    json_t *root = small_model_of("gbtree");
    json_t *trees = gbtree_trees(root);
    json_t *leaf_tree = json_array_get(trees, 1);
    const char *arrays[] = {"left_children",    "right_children", "parents",    "split_indices",
                            "split_conditions", "default_left",   "split_type", "loss_changes",
                            "sum_hessian",      "base_weights"};
    json_t *values[] = {json_integer(-1), json_integer(-1), json_integer(2147483647),
                        json_integer(0),  json_real(0.375), json_integer(0),
                        json_integer(0),  json_real(0.0),   json_real(10.0),
                        json_real(0.375)};
    for (size_t k = 0; k < 10; k++) {
        json_t *a = json_array();
        json_array_append_new(a, values[k]);
        json_object_set_new(leaf_tree, arrays[k], a);
    }
    json_object_set_new(json_object_get(leaf_tree, "tree_param"), "num_nodes", json_string("1"));
    json_object_set_new(json_object_get(leaf_tree, "tree_param"), "num_deleted", json_string("0"));
    check_parity_json(root, "gbtree with a single-leaf tree");
    json_decref(root);

    /* Chains pad to complete trees too, while cheap (a few splits), and
     * keep the general layout when not (many): both agree with the C API. */
    for (unsigned depth = 1; depth <= 6; depth++) {
        size_t len;
        char *json = chain_model(depth, &len);
        BoosterHandle b = load_json(json, len);
        char label[64];
        snprintf(label, sizeof label, "gbtree chain of %u splits", depth);
        check_parity(b, label);
        XGBoosterFree(b);
        free(json);
    }
}

static json_t *tree0(json_t *root, const char *field)
{
    json_t *gb = json_object_get(json_object_get(root, "learner"), "gradient_booster");
    json_t *model = json_object_get(json_object_get(gb, "gbtree"), "model");
    json_t *t = json_array_get(json_object_get(model, "trees"), 0);
    return field ? json_object_get(t, field) : t;
}

static void expect_refused_json(json_t *root, const char *reason_part)
{
    char *s = json_dumps(root, JSON_COMPACT);
    expect_refused(s, strlen(s), reason_part);
    free(s);
}

/* The first internal node whose left child is internal too (depth >= 2). */
static size_t internal_with_internal_child(json_t *root)
{
    json_t *left = tree0(root, "left_children");
    for (size_t i = 0; i < json_array_size(left); i++) {
        json_int_t l = json_integer_value(json_array_get(left, i));
        if (l > 0 && json_integer_value(json_array_get(left, (size_t)l)) > 0)
            return i;
    }
    fail_msg("no node of depth 2 in the small model");
    return 0;
}

static void test_refuse_hostile(void **state)
{
    (void)state;
    json_t *root = small_model();
    char *valid = json_dumps(root, JSON_COMPACT);
    size_t valid_len = strlen(valid);
    char why[256];
    sms_forest_t *f = sms_forest_compile(valid, valid_len, why, sizeof why);
    assert_non_null(f);
    size_t nf = sms_forest_num_feature(f);
    sms_forest_free(f);

    for (size_t n = 0; n < valid_len; n += 1 + n / 64)
        expect_refused(valid, n, NULL);

    struct {
        const char *field;
        size_t index;
        json_t *value;
        const char *reason;
    } edits[] = {
        {"split_conditions", 0, json_string("x"), "not a number"},
        {"left_children", 0, json_integer(100000), "invalid"},
        {"left_children", 0, json_integer(-7), "invalid"},
        {"left_children", 0, json_real(1.0), "not a number"},
        {"right_children", 0, json_integer(5), NULL},
        {"split_indices", 0, json_integer((json_int_t)nf), "feature"},
        {"split_indices", 0, json_integer(-1), "feature"},
        {"split_type", 0, json_integer(1), "categorical"},
        {"default_left", 0, json_integer(7), "default_left"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        json_t *copy = json_deep_copy(root);
        assert_int_equal(
            json_array_set_new(tree0(copy, edits[i].field), edits[i].index, edits[i].value), 0);
        expect_refused_json(copy, edits[i].reason);
        json_decref(copy);
    }

    /* A cycle: a grandchild points back to its grandparent's children. */
    json_t *copy = json_deep_copy(root);
    size_t p = internal_with_internal_child(copy);
    json_int_t l = json_integer_value(json_array_get(tree0(copy, "left_children"), p));
    json_int_t ll = json_integer_value(json_array_get(tree0(copy, "left_children"), (size_t)l));
    json_array_set_new(tree0(copy, "left_children"), (size_t)ll, json_integer(l));
    json_array_set_new(tree0(copy, "right_children"), (size_t)ll, json_integer(l + 1));
    expect_refused_json(copy, "twice");
    json_decref(copy);

    /* Whole-field damage. */
    const char *drop[] = {"left_children", "split_conditions", "default_left", "tree_param"};
    for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++) {
        copy = json_deep_copy(root);
        json_object_del(tree0(copy, NULL), drop[i]);
        expect_refused_json(copy, NULL);
        json_decref(copy);
    }
    copy = json_deep_copy(root);
    json_object_set_new(json_object_get(tree0(copy, NULL), "tree_param"), "num_nodes",
                        json_string("2"));
    expect_refused_json(copy, NULL);
    json_decref(copy);
    copy = json_deep_copy(root);
    json_object_set_new(json_object_get(tree0(copy, NULL), "tree_param"), "num_nodes",
                        json_integer(3));
    expect_refused_json(copy, NULL);
    json_decref(copy);
    copy = json_deep_copy(root);
    json_object_set_new(json_object_get(tree0(copy, NULL), "tree_param"), "size_leaf_vector",
                        json_string("1"));
    expect_refused_json(copy, "vector");
    json_decref(copy);

    json_t *learner = json_object_get(root, "learner");
    json_t *mparam = json_object_get(learner, "learner_model_param");
    json_t *gb = json_object_get(learner, "gradient_booster");
    json_t *gmodel = json_object_get(json_object_get(gb, "gbtree"), "model");
    struct {
        json_t *obj;
        const char *key;
        json_t *value;
        const char *reason;
    } params[] = {
        {mparam, "num_target", json_string("2"), "multi-target"},
        {mparam, "num_feature", json_integer(4), NULL},
        {mparam, "num_class", json_string("-3"), NULL},
        {mparam, "base_score", json_string("[5E-1]"), "base_score"},
        {mparam, "base_score", json_string("1.5"), "base_score"},
        {json_object_get(learner, "objective"), "name", json_string("reg:quantileerror"),
         "objective"},
        {gb, "name", json_string("gbforest"), "booster"},
        {gb, "weight_drop", json_array(), NULL},
        {gmodel, "tree_info", json_array(), NULL},
        {gmodel, "trees", json_object(), NULL},
    };
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
        json_t *saved = json_deep_copy(json_object_get(params[i].obj, params[i].key));
        json_object_set_new(params[i].obj, params[i].key, params[i].value);
        expect_refused_json(root, params[i].reason);
        json_object_set_new(params[i].obj, params[i].key, saved);
    }
    json_t *info = json_object_get(gmodel, "tree_info");
    json_array_set_new(info, 1, json_integer(1));
    expect_refused_json(root, NULL);
    json_array_set_new(info, 1, json_string("0"));
    expect_refused_json(root, NULL);
    free(valid);
    json_decref(root);
}

/* Random byte damage to a valid model: any outcome but a crash, a hang or
 * a forest that misbehaves is fine. */
static void test_hostile_bytes(void **state)
{
    (void)state;
    json_t *root = small_model();
    char *valid = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    size_t len = strlen(valid);
    char *buf = malloc(len);
    uint64_t rng = 77;
    const char alphabet[] = "0123456789-.eE,[]{}\":-1 ";
    size_t compiled = 0;
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(buf, valid, len);
        int flips = 1 + (int)(tu_rand32(&rng) % 4);
        for (int k = 0; k < flips; k++)
            buf[tu_rand32(&rng) % len] = alphabet[tu_rand32(&rng) % (sizeof alphabet - 1)];
        char why[128];
        void *g = tu_guarded_copy(buf, len);
        sms_forest_t *f = sms_forest_compile(g, len, why, sizeof why);
        tu_guarded_free(g, len);
        if (f) {
            compiled++;
            size_t nf = sms_forest_num_feature(f), no = sms_forest_num_output(f);
            float *x = malloc((nf ? nf : 1) * 20 * sizeof *x);
            float *out = malloc(no * 20 * sizeof *out);
            sms_forest_probe(f, (unsigned)iter, 20, x);
            predict(f, x, 20, out);
            predict(f, x, 1, out);
            free(x);
            free(out);
            sms_forest_free(f);
        } else {
            assert_true(why[0] != '\0');
        }
    }
    print_message("  %zu of 3000 damaged models still compiled (and predicted)\n", compiled);
    free(buf);
    free(valid);
}

static void test_probe_deterministic(void **state)
{
    (void)state;
    train_case_t c = {"reg:squarederror", "gbtree", 0, NULL, 8, 10, 4, 300, NULL};
    BoosterHandle b = train(&c);
    size_t len;
    char *json = save_json(b, &len);
    char why[256];
    sms_forest_t *f = sms_forest_compile(json, len, why, sizeof why);
    assert_non_null(f);
    size_t nf = sms_forest_num_feature(f);
    float *a = malloc(500 * nf * sizeof *a), *b2 = malloc(500 * nf * sizeof *b2);
    sms_forest_probe(f, 3, 500, a);
    sms_forest_probe(f, 3, 500, b2);
    assert_memory_equal(a, b2, 500 * nf * sizeof *a);
    sms_forest_probe(f, 4, 500, b2);
    assert_memory_not_equal(a, b2, 500 * nf * sizeof *a);
    size_t nan = 0;
    for (size_t i = 0; i < 500 * nf; i++)
        nan += isnan(a[i]);
    assert_true(nan > 0 && nan < 500 * nf / 4);
    free(a);
    free(b2);
    free(json);
    sms_forest_free(f);
    XGBoosterFree(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parity_gbtree),
        cmocka_unit_test(test_parity_dart),
        cmocka_unit_test(test_parity_variants),
        cmocka_unit_test(test_parity_extreme_margins),
        cmocka_unit_test(test_deep_chain),
        cmocka_unit_test(test_refuse_gblinear),
        cmocka_unit_test(test_refuse_categorical),
        cmocka_unit_test(test_refuse_hostile),
        cmocka_unit_test(test_hostile_bytes),
        cmocka_unit_test(test_probe_deterministic),
        cmocka_unit_test(test_parity_edge_thresholds),
        cmocka_unit_test(test_parity_mixed_depths),
        cmocka_unit_test(test_dart_accumulation),
        cmocka_unit_test(test_flt_max_threshold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
