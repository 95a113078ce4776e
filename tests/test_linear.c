/* The native linear evaluator must give the C API's bits for gblinear
 * models (which XGBoost predicts through a DMatrix: no in-place path).
 * Models are trained here through the C API (objectives, both updaters,
 * multi-class, wide and narrow, non-default base scores), serialised to
 * JSON, compiled, and compared on probe rows, random rows and several batch
 * shapes, in the one accumulation (two roundings or fused multiply-adds)
 * this libxgboost was found to use. The cross-release gblinear fixtures
 * (tests/matrix/fixtures, when present) must compile and match the C API.
 * Hostile JSON must give NULL and a reason. */
#include "testutil.h"

#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xgboost/c_api.h>

#include "smserve/linear.h"

static const char PREDICT_CONFIG[] =
    "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, "
    "\"strict_shape\": false}";

/* sms_linear_predict with a workspace of exactly the size it asks for,
 * placed before a PROT_NONE page so that any overrun crashes. */
static void predict(const sms_linear_t *l, const float *x, size_t rows, float *out)
{
    size_t bytes = sms_linear_workspace_floats(l) * sizeof(float);
    void *zero = calloc(1, bytes ? bytes : 1);
    float *work = tu_guarded_copy(zero, bytes);
    assert_non_null(work);
    sms_linear_predict(l, x, rows, out, work);
    tu_guarded_free(work, bytes);
    free(zero);
}

/* The C API's prediction through a DMatrix (missing = NaN), as model.c. */
static void predict_ref(BoosterHandle b, const float *x, size_t rows, size_t nf, float *out,
                        size_t expect)
{
    DMatrixHandle dm;
    XGB_OK(XGDMatrixCreateFromMat(x, rows, nf, NAN, &dm));
    const bst_ulong *shape;
    bst_ulong dim;
    const float *res;
    XGB_OK(XGBoosterPredictFromDMatrix(b, dm, PREDICT_CONFIG, &shape, &dim, &res));
    size_t n = 1;
    for (bst_ulong i = 0; i < dim; i++)
        n *= shape[i];
    assert_int_equal(n, expect);
    memcpy(out, res, n * sizeof *out);
    XGDMatrixFree(dm);
}

typedef struct train_case {
    const char *objective;
    int num_class;
    const char *base_score; /* NULL: XGBoost's estimate */
    size_t num_feature;
    int rounds;
    const char *updater; /* NULL: shotgun */
} train_case_t;

static BoosterHandle train(const train_case_t *c)
{
    const size_t rows = 400, nf = c->num_feature;
    uint64_t rng = 0xABCDull + nf * 31u + (uint64_t)c->rounds;
    float *x = malloc(rows * nf * sizeof *x), *y = malloc(rows * sizeof *y);
    assert_true(x && y);
    for (size_t r = 0; r < rows; r++) {
        float s = 0.0f;
        for (size_t j = 0; j < nf; j++) {
            float v = (float)(tu_rand32(&rng) >> 8) / 8388608.0f - 1.0f;
            if (tu_rand32(&rng) % 10 == 0) {
                x[r * nf + j] = NAN;
            } else {
                x[r * nf + j] = v * 3.0f;
                s += v * (float)((j % 5) + 1) / (float)(1 + j / 5);
            }
        }
        y[r] = tu_label_for(c->objective, c->num_class, s, &rng);
    }
    DMatrixHandle dm;
    BoosterHandle b;
    XGB_OK(XGDMatrixCreateFromMat(x, rows, nf, NAN, &dm));
    XGB_OK(XGDMatrixSetFloatInfo(dm, "label", y, rows));
    XGB_OK(XGBoosterCreate(&dm, 1, &b));
    char buf[32];
    XGB_OK(XGBoosterSetParam(b, "booster", "gblinear"));
    XGB_OK(XGBoosterSetParam(b, "objective", c->objective));
    XGB_OK(XGBoosterSetParam(b, "nthread", "1"));
    XGB_OK(XGBoosterSetParam(b, "eta", "0.5"));
    XGB_OK(XGBoosterSetParam(b, "lambda", "0.01"));
    if (c->updater)
        XGB_OK(XGBoosterSetParam(b, "updater", c->updater));
    if (c->num_class) {
        snprintf(buf, sizeof buf, "%d", c->num_class);
        XGB_OK(XGBoosterSetParam(b, "num_class", buf));
    }
    if (c->base_score)
        XGB_OK(XGBoosterSetParam(b, "base_score", c->base_score));
    for (int i = 0; i < c->rounds; i++)
        XGB_OK(XGBoosterUpdateOneIter(b, i, dm));
    XGDMatrixFree(dm);
    free(x);
    free(y);
    return b;
}

/* Values of got that are not want's bits (NaN equals NaN); the largest
 * distance in float steps goes to *max_ulp. */
static size_t count_differ(const float *want, const float *got, size_t n, int64_t *max_ulp)
{
    size_t differ = 0;
    for (size_t i = 0; i < n; i++) {
        if ((isnan(want[i]) && isnan(got[i])) || memcmp(&want[i], &got[i], sizeof *got) == 0)
            continue;
        int64_t d = tu_ordered(want[i]) - tu_ordered(got[i]);
        d = d < 0 ? -d : d;
        if (differ < 3)
            print_message("    value %zu: xgboost %.9g, native %.9g (%lld ulp)\n", i, want[i],
                          got[i], (long long)d);
        differ++;
        if (d > *max_ulp)
            *max_ulp = d;
    }
    return differ;
}

/* Whether this libxgboost fuses gblinear's value * weight into its sum:
 * on a wide model where the two accumulations differ, exactly one must
 * match every value. Found on first use, then remembered. */
static bool runtime_fuses(void)
{
    static int fused = -1;
    if (fused >= 0)
        return fused;
    train_case_t c = {"reg:squarederror", 0, "0.25", 60, 20, NULL};
    BoosterHandle b = train(&c);
    size_t len;
    char *json = tu_booster_json(b, &len);
    char why[256];
    sms_linear_t *l = sms_linear_compile(json, len, why, sizeof why);
    if (!l) {
        print_error("refused: %s\n", why);
        fail();
    }
    const size_t rows = 2000, nf = sms_linear_num_feature(l);
    float *x = malloc(rows * nf * sizeof *x), *want = malloc(rows * sizeof *want);
    float *plain = malloc(rows * sizeof *plain), *fma = malloc(rows * sizeof *fma);
    sms_linear_probe(l, 7, rows, x);
    predict_ref(b, x, rows, nf, want, rows);
    assert_false(sms_linear_fused(l));
    predict(l, x, rows, plain);
    sms_linear_set_fused(l, true);
    assert_true(sms_linear_fused(l));
    predict(l, x, rows, fma);
    size_t modes_differ = 0, plain_same = 0, fma_same = 0;
    for (size_t r = 0; r < rows; r++) {
        modes_differ += memcmp(&plain[r], &fma[r], sizeof *fma) != 0;
        plain_same += memcmp(&plain[r], &want[r], sizeof *want) == 0;
        fma_same += memcmp(&fma[r], &want[r], sizeof *want) == 0;
    }
    print_message("  gblinear accumulation probe: the two modes differ on %zu of %zu rows; XGBoost "
                  "matches two roundings on %zu, a fused multiply-add on %zu\n",
                  modes_differ, rows, plain_same, fma_same);
    assert_true(modes_differ > rows / 10);
    assert_true(plain_same == rows || fma_same == rows);
    fused = fma_same == rows;
    free(x);
    free(want);
    free(plain);
    free(fma);
    free(json);
    sms_linear_free(l);
    XGBoosterFree(b);
    return fused;
}

/* Compiles b's JSON and checks every output bit against the C API on probe
 * rows and random rows, predicted whole, one row at a time and in chunks. */
static void check_parity(BoosterHandle b, const char *label)
{
    size_t len;
    char *json = tu_booster_json(b, &len);
    char why[256];
    sms_linear_t *l = sms_linear_compile(json, len, why, sizeof why);
    if (!l) {
        print_error("%s: refused: %s\n", label, why);
        fail();
    }
    sms_linear_set_fused(l, runtime_fuses());
    size_t nf = sms_linear_num_feature(l), no = sms_linear_num_output(l);
    const size_t probe_rows = 3000, random_rows = 1000, rows = probe_rows + random_rows;
    float *x = malloc(rows * nf * sizeof *x);
    float *want = malloc(rows * no * sizeof *want), *got = malloc(rows * no * sizeof *got);
    sms_linear_probe(l, 42, probe_rows, x);
    uint64_t rng = 99;
    for (size_t i = probe_rows * nf; i < rows * nf; i++) {
        uint32_t pick = tu_rand32(&rng) % 40;
        x[i] = pick < 3 ? NAN : pick == 3 ? -0.0f : (float)((int32_t)tu_rand32(&rng)) / 4e8f;
    }
    predict_ref(b, x, rows, nf, want, rows * no);
    int64_t max_ulp = 0;
    predict(l, x, rows, got);
    size_t differ = count_differ(want, got, rows * no, &max_ulp);
    for (size_t r = 0; r < 20; r++) {
        predict(l, x + r * nf, 1, got);
        differ += count_differ(want + r * no, got, no, &max_ulp);
    }
    const size_t chunks[] = {2, 3, 7, 9, 17};
    for (size_t r = 0, k = 0; r < rows; k++) {
        size_t n = chunks[k % 5] < rows - r ? chunks[k % 5] : rows - r;
        predict(l, x + r * nf, n, got);
        differ += count_differ(want + r * no, got, n * no, &max_ulp);
        r += n;
    }
    print_message("  %-46s %4zu features x %zu: %zu values, %zu differ (max %lld ulp)\n", label, nf,
                  no, rows * no, differ, (long long)max_ulp);
    assert_int_equal(differ, 0);
    free(x);
    free(want);
    free(got);
    free(json);
    sms_linear_free(l);
}

static void test_parity(void **state)
{
    (void)state;
    const train_case_t cases[] = {
        {"reg:squarederror", 0, NULL, 8, 10, NULL},
        {"reg:squarederror", 0, "20", 8, 10, "coord_descent"},
        {"reg:pseudohubererror", 0, NULL, 8, 10, NULL},
        {"reg:absoluteerror", 0, NULL, 8, 10, NULL},
        {"binary:logistic", 0, NULL, 12, 15, NULL},
        {"binary:logistic", 0, "0.3", 12, 15, "coord_descent"},
        {"reg:logistic", 0, NULL, 6, 10, NULL},
        {"binary:logitraw", 0, NULL, 6, 10, NULL},
        {"binary:hinge", 0, NULL, 6, 10, NULL},
        {"multi:softprob", 4, NULL, 10, 10, NULL},
        {"multi:softmax", 3, NULL, 10, 10, "coord_descent"},
        {"count:poisson", 0, NULL, 8, 10, NULL},
        {"reg:gamma", 0, NULL, 8, 10, NULL},
        {"reg:tweedie", 0, NULL, 8, 10, NULL},
        {"reg:squarederror", 0, NULL, 1, 5, NULL},
        {"reg:squarederror", 0, NULL, 300, 10, NULL},
        {"binary:logistic", 0, NULL, 2000, 4, NULL},
        /* Too wide to transpose: summed as the rows are. */
        {"reg:squarederror", 0, NULL, 9000, 2, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const train_case_t *c = &cases[i];
        char label[96];
        snprintf(label, sizeof label, "gblinear %s%s%s%s", c->objective,
                 c->base_score ? " base " : "", c->base_score ? c->base_score : "",
                 c->updater ? " coord_descent" : "");
        BoosterHandle b = train(c);
        check_parity(b, label);
        XGBoosterFree(b);
    }
}

static void test_accumulation(void **state)
{
    (void)state;
    print_message("  this libxgboost adds gblinear's products with %s\n",
                  runtime_fuses() ? "one fused multiply-add (fmaf)"
                                  : "two roundings (product, then sum)");
}

/* XGBoost makes no DMatrix of rows with an infinity (which is why model.c
 * refuses them before either engine): this pins that down. */
static void test_infinity_refused_by_xgboost(void **state)
{
    (void)state;
    float x[4] = {1.0f, INFINITY, 2.0f, 3.0f};
    DMatrixHandle dm;
    assert_int_not_equal(XGDMatrixCreateFromMat(x, 2, 2, NAN, &dm), 0);
    assert_non_null(strstr(XGBGetLastError(), "inf"));
}

/* A model that XGBoost 3.4 takes as unfitted (boosted_rounds 0, as in
 * every model saved before 1.5): base_score is then the margin itself,
 * untransformed, on both engines. */
static void test_unfitted(void **state)
{
    (void)state;
    train_case_t c = {"binary:logistic", 0, "0.3", 5, 5, NULL};
    BoosterHandle b = train(&c);
    size_t len;
    char *json = tu_take_booster_json(b, &len);
    json_t *root = json_loadb(json, len, 0, NULL);
    free(json);
    json_t *model = json_object_get(
        json_object_get(json_object_get(root, "learner"), "gradient_booster"), "model");
    json_object_set_new(model, "boosted_rounds", json_integer(0));
    /* A base_score given at training turns boost_from_average off; models
     * from before 1.6 have no such field, which reads as on. */
    json_object_del(json_object_get(json_object_get(root, "learner"), "learner_model_param"),
                    "boost_from_average");
    char *s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(9));
    b = tu_booster_load(s, strlen(s));
    check_parity(b, "gblinear binary:logistic, boosted_rounds 0");
    /* Predicting a row of missing values gives sigmoid(bias + 0.3), not
     * sigmoid(bias + logit(0.3)). */
    float x[5] = {NAN, NAN, NAN, NAN, NAN}, want;
    predict_ref(b, x, 1, 5, &want, 1);
    double bias = json_number_value(json_array_get(json_object_get(model, "weights"), 5));
    assert_float_equal(want, 1.0 / (1.0 + exp(-(bias + 0.3))), 1e-6);
    XGBoosterFree(b);
    json_object_del(model, "boosted_rounds");
    free(s);
    s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(9));
    b = tu_booster_load(s, strlen(s));
    check_parity(b, "gblinear binary:logistic, no boosted_rounds");
    XGBoosterFree(b);
    free(s);
    json_decref(root);
}

/* ---- the cross-release fixtures -------------------------------------------- */

static float *read_csv(const char *path, size_t *rows, size_t *cols)
{
    size_t len;
    char *text = tu_read_file(path, &len);
    if (!text)
        return NULL;
    size_t cap = 64, n = 0, in_row = 0;
    float *v = malloc(cap * sizeof *v);
    *rows = *cols = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        char *after = (char *)p;
        float value = NAN;
        if (*p != ',' && *p != '\n')
            value = strtof(p, &after);
        if (n == cap)
            v = realloc(v, (cap *= 2) * sizeof *v);
        v[n++] = value;
        in_row++;
        p = after;
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (p < end && *p == '\n')
            p++;
        if (*cols == 0)
            *cols = in_row;
        assert_int_equal(in_row, *cols);
        in_row = 0;
        (*rows)++;
    }
    free(text);
    return v;
}

/* How far (float32 ulps) a libxgboost that fuses gblinear's multiply-adds
 * may land from the fixtures' x86_64 predictions: 2 seen on aarch64, with a
 * margin; tests/matrix/expect-aarch64.tsv allows the served predictions the
 * same. */
#define FUSED_ULP 4

/* Every gblinear model of the matrix (JSON, UBJSON): native predictions of
 * its request rows equal the C API's bits, and the release's own (within
 * FUSED_ULP where the library fuses, see below), but for binary:logistic
 * saved before 1.5, which XGBoost 3.4 itself mispredicts (no
 * boosted_rounds: see test_unfitted). */
static void test_fixture_matrix(void **state)
{
    (void)state;
    const char *dir = SMS_SOURCE_DIR "/tests/matrix/fixtures";
    char index[512];
    snprintf(index, sizeof index, "%s/index.tsv", dir);
    size_t len;
    char *text = tu_read_file(index, &len);
    if (!text) {
        print_message("  no %s: skipped\n", index);
        skip();
    }
    size_t models = 0, values = 0, known = 0, fused_near = 0;
    int64_t fused_max_ulp = 0;
    const bool fused = runtime_fuses();
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[10], *fsave = NULL;
        size_t n = 0;
        for (char *t = strtok_r(line, "\t", &fsave); t && n < 10; t = strtok_r(NULL, "\t", &fsave))
            f[n++] = t;
        if (n < 6 || strcmp(f[5], "gblinear") != 0 || !strcmp(f[3], "-") ||
            (strcmp(f[2], "json") != 0 && strcmp(f[2], "ubj") != 0))
            continue;
        char path[1024], req[1024], exp_path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, f[3]);
        snprintf(req, sizeof req, "%s/%s/%s/request.csv", dir, f[0], f[1]);
        snprintf(exp_path, sizeof exp_path, "%s/%s/%s/expected.csv", dir, f[0], f[1]);
        size_t blen, rows, nf, erows, no;
        char *bytes = tu_read_file(path, &blen);
        float *x = read_csv(req, &rows, &nf), *expected = read_csv(exp_path, &erows, &no);
        assert_true(bytes && x && expected && rows == erows);
        BoosterHandle b = tu_booster_load(bytes, blen);
        size_t jlen;
        char *json = tu_booster_json(b, &jlen);
        char why[256];
        sms_linear_t *l = sms_linear_compile(json, jlen, why, sizeof why);
        if (!l) {
            print_error("%s: refused: %s\n", path, why);
            fail();
        }
        sms_linear_set_fused(l, fused);
        assert_int_equal(sms_linear_num_output(l), no);
        float *want = malloc(rows * no * sizeof *want), *got = malloc(rows * no * sizeof *got);
        predict_ref(b, x, rows, nf, want, rows * no);
        predict(l, x, rows, got);
        int64_t max_ulp = 0;
        assert_int_equal(count_differ(want, got, rows * no, &max_ulp), 0);
        int major = 0, minor = 0;
        sscanf(f[0], "%d.%d", &major, &minor);
        /* expected.csv was written by XGBoost on x86_64, whose libxgboost
         * rounds gblinear's value * weight and then the sum (two roundings).
         * Where this libxgboost fuses them into one multiply-add (the
         * aarch64 wheel's does), the C API itself lands a few ulps from
         * those numbers, and the native evaluator with it (it follows the
         * library: equal to the C API bit for bit, asserted above). There
         * the release's predictions are required within FUSED_ULP; where
         * it runs unfused, as the writers did, bit for bit. */
        size_t differ = 0;
        for (size_t k = 0; k < rows * no; k++) {
            if (memcmp(&got[k], &expected[k], sizeof *got) == 0)
                continue;
            int64_t d = tu_ordered(got[k]) - tu_ordered(expected[k]);
            d = d < 0 ? -d : d;
            if (fused && d <= FUSED_ULP) {
                fused_near++;
                fused_max_ulp = d > fused_max_ulp ? d : fused_max_ulp;
            } else {
                differ++;
            }
        }
        bool before_rounds = major == 0 || (major == 1 && minor < 5);
        if (differ && !(before_rounds && !strcmp(f[4], "binary:logistic"))) {
            print_error("%s: %zu values differ from %s's own predictions (by more than %d ulp)\n",
                        path, differ, f[0], fused ? FUSED_ULP : 0);
            fail();
        }
        known += differ;
        models++;
        values += rows * no;
        sms_linear_free(l);
        XGBoosterFree(b);
        free(json);
        free(bytes);
        free(x);
        free(expected);
        free(want);
        free(got);
    }
    print_message("  %zu gblinear fixture models native: %zu values identical to the C API; %zu "
                  "differ from their release's own (binary:logistic before 1.5, as the C API)\n",
                  models, values, known);
    if (fused)
        print_message("  this libxgboost fuses gblinear's multiply-adds, the x86_64 writers did "
                      "not: %zu values within %d ulp of their release's own (at most %lld)\n",
                      fused_near, FUSED_ULP, (long long)fused_max_ulp);
    assert_true(models >= 20);
    free(text);
}

/* ---- refusals -------------------------------------------------------------- */

static void expect_refused(const char *json, size_t len, const char *reason_part)
{
    char why[256] = "unset";
    void *g = tu_guarded_copy(json, len);
    sms_linear_t *l = sms_linear_compile(g, len, why, sizeof why);
    tu_guarded_free(g, len);
    if (l) {
        print_error("compiled, expected a refusal (%s)\n", reason_part ? reason_part : "any");
        sms_linear_free(l);
        fail();
    }
    assert_true(why[0] != '\0' && strchr(why, '\n') == NULL);
    if (reason_part && !strstr(why, reason_part)) {
        print_error("reason '%s' lacks '%s'\n", why, reason_part);
        fail();
    }
}

static void expect_refused_json(json_t *root, const char *reason_part)
{
    char *s = json_dumps(root, JSON_COMPACT);
    expect_refused(s, strlen(s), reason_part);
    free(s);
}

static void test_refuse_hostile(void **state)
{
    (void)state;
    train_case_t c = {"multi:softprob", 3, NULL, 5, 5, NULL};
    BoosterHandle b = train(&c);
    size_t len;
    char *valid = tu_take_booster_json(b, &len);
    sms_linear_t *l = sms_linear_compile(valid, len, NULL, 0);
    assert_non_null(l);
    assert_int_equal(sms_linear_num_output(l), 3);
    sms_linear_free(l);
    for (size_t n = 0; n < len; n += 1 + n / 32)
        expect_refused(valid, n, NULL);
    json_t *root = json_loadb(valid, len, 0, NULL);
    json_t *learner = json_object_get(root, "learner");
    json_t *gb = json_object_get(learner, "gradient_booster");
    json_t *model = json_object_get(gb, "model");
    json_t *mparam = json_object_get(learner, "learner_model_param");
    struct {
        json_t *obj;
        const char *key;
        json_t *value;
        const char *reason;
    } edits[] = {
        {gb, "name", json_string("gbtree"), "gblinear"},
        {model, "weights", json_object(), "weights"},
        {model, "boosted_rounds", json_string("4"), "weights"},
        {mparam, "num_feature", json_string("6"), "weights"},
        {mparam, "num_feature", json_string("99999999999"), NULL},
        {mparam, "num_class", json_string("4"), NULL},
        {mparam, "base_score", json_string("[1E0,2E0]"), "base_score"},
        {json_object_get(learner, "objective"), "name", json_string("multi:unknown"), "objective"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        json_t *saved = json_deep_copy(json_object_get(edits[i].obj, edits[i].key));
        json_object_set_new(edits[i].obj, edits[i].key, edits[i].value);
        expect_refused_json(root, edits[i].reason);
        json_object_set_new(edits[i].obj, edits[i].key, saved);
    }
    /* (the edits above replaced the weights array with a copy) */
    json_t *weights = json_object_get(model, "weights");
    json_t *bad[] = {json_string("x"), json_string("NaN"), json_string("Infinity"), json_real(1e39),
                     json_null()};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *saved = json_deep_copy(json_array_get(weights, 2));
        json_array_set_new(weights, 2, bad[i]);
        expect_refused_json(root, "weight 2");
        json_array_set_new(weights, 2, saved);
    }
    json_array_append_new(weights, json_real(0.5));
    expect_refused_json(root, "weights");
    json_array_remove(weights, json_array_size(weights) - 1);
    json_array_remove(weights, json_array_size(weights) - 1);
    expect_refused_json(root, "weights");
    json_decref(root);
    free(valid);
}

/* One damaged model: compiled and predicted, or refused with a reason. */
static bool damaged_linear(const void *bytes, size_t len, unsigned iter)
{
    char why[128];
    sms_linear_t *l = sms_linear_compile(bytes, len, why, sizeof why);
    if (tu_refused(l, why))
        return false;
    size_t nf = sms_linear_num_feature(l), no = sms_linear_num_output(l);
    float *x = malloc((nf ? nf : 1) * 20 * sizeof *x);
    float *out = malloc(no * 20 * sizeof *out);
    sms_linear_probe(l, iter, 20, x);
    predict(l, x, 20, out);
    predict(l, x, 1, out);
    free(x);
    free(out);
    sms_linear_free(l);
    return true;
}

/* Random byte damage: any outcome but a crash, a hang or a model that
 * misbehaves is fine. */
static void test_hostile_bytes(void **state)
{
    (void)state;
    train_case_t c = {"binary:logistic", 0, NULL, 6, 5, NULL};
    BoosterHandle b = train(&c);
    size_t len;
    char *valid = tu_take_booster_json(b, &len);
    size_t compiled = tu_damage_json(valid, len, 3000, damaged_linear);
    print_message("  %zu of 3000 damaged gblinear models still compiled (and predicted)\n",
                  compiled);
    free(valid);
}

static void test_probe(void **state)
{
    (void)state;
    train_case_t c = {"reg:squarederror", 0, NULL, 9, 5, NULL};
    BoosterHandle b = train(&c);
    size_t len;
    char *json = tu_take_booster_json(b, &len);
    sms_linear_t *l = sms_linear_compile(json, len, NULL, 0);
    assert_non_null(l);
    const size_t rows = 500, nf = 9;
    float *a = malloc(rows * nf * sizeof *a), *a2 = malloc(rows * nf * sizeof *a2);
    sms_linear_probe(l, 3, rows, a);
    sms_linear_probe(l, 3, rows, a2);
    assert_memory_equal(a, a2, rows * nf * sizeof *a);
    sms_linear_probe(l, 4, rows, a2);
    assert_memory_not_equal(a, a2, rows * nf * sizeof *a);
    size_t nan = 0, inf = 0;
    for (size_t i = 0; i < rows * nf; i++) {
        nan += isnan(a[i]);
        inf += isinf(a[i]);
    }
    assert_true(nan > 0 && nan < rows * nf / 4);
    assert_int_equal(inf, 0);
    free(a);
    free(a2);
    free(json);
    sms_linear_free(l);
}

/* sms_linear_bytes counts the struct (over 1 KB: the objective's base
 * margins) and both arrays, weights and starts ((features + 1) x outputs
 * floats), with no more than malloc's rounding on top. */
static void test_bytes(void **state)
{
    (void)state;
    const size_t features[] = {1, 9, 300};
    for (size_t i = 0; i < sizeof features / sizeof features[0]; i++) {
        train_case_t c = {"multi:softprob", 3, NULL, features[i], 2, NULL};
        BoosterHandle b = train(&c);
        size_t len;
        char *json = tu_take_booster_json(b, &len);
        sms_linear_t *l = sms_linear_compile(json, len, NULL, 0);
        assert_non_null(l);
        size_t floats = (features[i] + 1) * 3, bytes = sms_linear_bytes(l);
        print_message("  %zu features x 3 outputs: %zu bytes\n", features[i], bytes);
        assert_true(bytes >= floats * sizeof(float) + 1024);
        assert_true(bytes <= floats * sizeof(float) + 2048);
        assert_int_equal(sms_linear_bytes(NULL), 0);
        free(json);
        sms_linear_free(l);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accumulation),
        cmocka_unit_test(test_parity),
        cmocka_unit_test(test_infinity_refused_by_xgboost),
        cmocka_unit_test(test_unfitted),
        cmocka_unit_test(test_fixture_matrix),
        cmocka_unit_test(test_refuse_hostile),
        cmocka_unit_test(test_hostile_bytes),
        cmocka_unit_test(test_probe),
        cmocka_unit_test(test_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
