/* The native evaluator must give XGBoosterPredictFromDense's bits. Models
 * are trained here through the C API (every supported objective, gbtree and
 * dart, missing values, multi-class, multi-target with one tree per target
 * and with vector leaves, categorical splits, scalar and vector base
 * scores, a deep/wide model), serialised to JSON, compiled, and compared on
 * probe rows, random rows and several batch shapes; dart models in the one
 * accumulation (two roundings or a fused multiply-add) this libxgboost was
 * found to use. The cross-release fixtures (tests/matrix/fixtures, when
 * present) are loaded through the C API and must compile and predict their
 * own expected.csv. Models the evaluator must not take (gblinear, vector
 * leaves in the 2.0-3.1 layout, hostile JSON) must give NULL and a reason. */
#include "testutil.h"

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xgboost/c_api.h>

#include "smserve/forest.h"
#include "smserve/xjson.h"

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
    "\"strict_shape\": false, \"missing\": NaN}";

typedef struct train_case {
    const char *objective;
    const char *booster;
    int num_class;
    const char *base_score; /* NULL: XGBoost's default (estimated) */
    size_t num_feature;
    int rounds;
    int depth;
    size_t rows;
    const char *tree_method;
    size_t num_target;      /* label columns; 0 or 1: one */
    size_t num_categorical; /* leading features that are categorical */
    size_t categories;      /* categories of those (0: 12) */
    const char *params;     /* more parameters, "key=value;key=value" */
} train_case_t;

/* ---- training ------------------------------------------------------------- */

/* Random features (10% missing; categorical ones small integers) and labels
 * that depend on them: y holds rows x label columns. */
static void make_data(const train_case_t *c, uint64_t *rng, float *x, float *y)
{
    size_t targets = c->num_target > 1 ? c->num_target : 1;
    size_t ncat = c->categories ? c->categories : 12;
    for (size_t r = 0; r < c->rows; r++) {
        float s = 0.0f;
        for (size_t j = 0; j < c->num_feature; j++) {
            float v = (float)(tu_rand32(rng) >> 8) / 8388608.0f - 1.0f;
            float *at = &x[r * c->num_feature + j];
            if (tu_rand32(rng) % 10 == 0) {
                *at = NAN;
            } else if (j < c->num_categorical) {
                uint32_t k = tu_rand32(rng) % (uint32_t)ncat;
                *at = (float)k;
                s += (k % 3 == 1 ? 1.0f : k % 5 == 2 ? -0.8f : 0.1f) * (float)(j + 1);
            } else {
                *at = v * 3.0f;
                s += v * (float)((j % 5) + 1) / (float)(1 + j / 5);
            }
        }
        for (size_t k = 0; k < targets; k++)
            y[r * targets + k] =
                tu_label_for(c->objective, c->num_class, s * (float)(k + 1) / (float)targets, rng) +
                (targets > 1 && strncmp(c->objective, "binary:", 7) ? (float)k * 0.5f : 0.0f);
    }
}

/* An array interface for n values of typestr at p, shape [rows] or [rows, cols]. */
static void interface(char *out, size_t size, const void *p, const char *typestr, size_t rows,
                      size_t cols)
{
    if (cols > 1)
        snprintf(out, size,
                 "{\"data\": [%lu, true], \"shape\": [%zu, %zu], \"typestr\": \"%s\", "
                 "\"version\": 3}",
                 (unsigned long)(uintptr_t)p, rows, cols, typestr);
    else
        snprintf(out, size,
                 "{\"data\": [%lu, true], \"shape\": [%zu], \"typestr\": \"%s\", \"version\": 3}",
                 (unsigned long)(uintptr_t)p, rows, typestr);
}

static void set_params(BoosterHandle b, const char *params)
{
    if (!params)
        return;
    char *copy = strdup(params), *save = NULL;
    for (char *kv = strtok_r(copy, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(kv, '=');
        assert_non_null(eq);
        *eq = '\0';
        XGB_OK(XGBoosterSetParam(b, kv, eq + 1));
    }
    free(copy);
}

static BoosterHandle train(const train_case_t *c)
{
    uint64_t rng = 0x1234567ull + (uint64_t)c->rounds * 7919u + c->num_feature;
    size_t targets = c->num_target > 1 ? c->num_target : 1;
    float *x = malloc(c->rows * c->num_feature * sizeof *x);
    float *y = malloc(c->rows * targets * sizeof *y);
    assert_non_null(x);
    assert_non_null(y);
    make_data(c, &rng, x, y);
    DMatrixHandle dm;
    BoosterHandle b;
    char iface[256];
    XGB_OK(XGDMatrixCreateFromMat(x, c->rows, c->num_feature, NAN, &dm));
    interface(iface, sizeof iface, y, "<f4", c->rows, targets);
    XGB_OK(XGDMatrixSetInfoFromInterface(dm, "label", iface));
    if (c->num_categorical) {
        const char **types = malloc(c->num_feature * sizeof *types);
        for (size_t j = 0; j < c->num_feature; j++)
            types[j] = j < c->num_categorical ? "c" : "q";
        XGB_OK(XGDMatrixSetStrFeatureInfo(dm, "feature_type", types, c->num_feature));
        free(types);
    }
    float *lower = NULL, *upper = NULL;
    uint32_t *groups = NULL;
    if (!strcmp(c->objective, "survival:aft")) {
        /* Every fifth row right-censored. */
        lower = malloc(c->rows * sizeof *lower);
        upper = malloc(c->rows * sizeof *upper);
        for (size_t r = 0; r < c->rows; r++) {
            lower[r] = y[r];
            upper[r] = r % 5 == 0 ? INFINITY : y[r];
        }
        interface(iface, sizeof iface, lower, "<f4", c->rows, 1);
        XGB_OK(XGDMatrixSetInfoFromInterface(dm, "label_lower_bound", iface));
        interface(iface, sizeof iface, upper, "<f4", c->rows, 1);
        XGB_OK(XGDMatrixSetInfoFromInterface(dm, "label_upper_bound", iface));
    }
    if (!strncmp(c->objective, "rank:", 5)) {
        /* Query groups of 20 rows. */
        size_t n = (c->rows + 19) / 20;
        groups = malloc(n * sizeof *groups);
        for (size_t k = 0; k < n; k++)
            groups[k] = (uint32_t)(k + 1 < n ? 20 : c->rows - 20 * k);
        interface(iface, sizeof iface, groups, "<u4", n, 1);
        XGB_OK(XGDMatrixSetInfoFromInterface(dm, "group", iface));
    }
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
    if (!strcmp(c->objective, "reg:quantileerror"))
        XGB_OK(XGBoosterSetParam(b, "quantile_alpha", "[0.1,0.5,0.9]"));
    if (!strcmp(c->objective, "reg:expectileerror"))
        XGB_OK(XGBoosterSetParam(b, "expectile_alpha", "[0.2,0.5,0.8]"));
    if (!strcmp(c->objective, "survival:aft"))
        XGB_OK(XGBoosterSetParam(b, "aft_loss_distribution", "logistic"));
    set_params(b, c->params);
    for (int i = 0; i < c->rounds; i++)
        XGB_OK(XGBoosterUpdateOneIter(b, i, dm));
    XGDMatrixFree(dm);
    free(x);
    free(y);
    free(lower);
    free(upper);
    free(groups);
    return b;
}

/* Under an emulator (tu_emulated: qemu-user, where XGBoost trains about 20x
 * slower, and these loops alone took over 300 s) the parity loops train
 * lighter models of the same kinds: a quarter of the rounds (at least 6)
 * and at most 500 rows; models too wide to widen (over 1023 features, where
 * quantile sketching and each tree take seconds under qemu) at most 200
 * rows and 3 rounds, which still gives them categorical splits where they
 * have categorical features. Objectives, boosters, depths, features and
 * options stay as written, and so does every assertion; natively nothing
 * changes. */
static void lighten(train_case_t *c)
{
    static bool said;
    if (!tu_emulated())
        return;
    if (!said) {
        print_message("  emulated: the parity loops train lighter models (rounds / 4, <= 500 "
                      "rows; wide models <= 200 rows, <= 3 rounds)\n");
        said = true;
    }
    if (c->rounds > 6)
        c->rounds = c->rounds / 4 > 6 ? c->rounds / 4 : 6;
    if (c->rows > 500)
        c->rows = 500;
    if (c->num_feature > 1023) {
        c->rounds = c->rounds < 3 ? c->rounds : 3;
        c->rows = c->rows < 200 ? c->rows : 200;
    }
}

static void predict_ref(BoosterHandle b, const float *x, size_t rows, size_t nf, float *out,
                        size_t expect)
{
    char iface[200];
    interface(iface, sizeof iface, x, "<f4", rows, nf > 1 ? nf : 2);
    if (nf == 1) /* shape [rows, 1], which interface() writes as [rows] */
        snprintf(iface, sizeof iface,
                 "{\"data\": [%lu, true], \"shape\": [%zu, 1], \"typestr\": \"<f4\", "
                 "\"version\": 3}",
                 (unsigned long)(uintptr_t)x, rows);
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
        int64_t d = tu_ordered(want[i]) - tu_ordered(got[i]);
        d = d < 0 ? -d : d;
        if (p->differ < 5)
            print_message("    value %zu: xgboost %.9g, native %.9g (%lld ulp)\n", i, want[i],
                          got[i], (long long)d);
        p->differ++;
        if (d > p->max_ulp)
            p->max_ulp = d;
    }
}

/* ---- UBJSON -------------------------------------------------------------- */

/* A growing byte buffer. */
typedef struct bytes {
    unsigned char *p;
    size_t n, cap;
} bytes_t;

static void put(bytes_t *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void put_byte(bytes_t *b, unsigned char c)
{
    put(b, &c, 1);
}

static void put_big_endian(bytes_t *b, uint64_t v, size_t size)
{
    for (size_t k = size; k-- > 0;)
        put_byte(b, (unsigned char)(v >> (8 * k)));
}

/* A length or count as XGBoost writes them: 'L' and 8 bytes. */
static void put_count(bytes_t *b, size_t n)
{
    put_byte(b, 'L');
    put_big_endian(b, n, 8);
}

static void put_double(bytes_t *b, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    put_big_endian(b, bits, 8);
}

/* v as UBJSON the way XGBoost lays a model out: objects without counts,
 * arrays with counts, an array of integers (or of numbers) as a typed
 * array of int32 or int64 (float64), anything else as a counted array of
 * values. Keeps every value exact, so a hostile JSON model reads the same
 * from these bytes. */
static void put_ubj(bytes_t *b, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        const json_t *value;
        put_byte(b, '{');
        json_object_foreach((json_t *)v, key, value)
        {
            put_count(b, strlen(key));
            put(b, key, strlen(key));
            put_ubj(b, value);
        }
        put_byte(b, '}');
        break;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        bool ints = n > 0, numbers = n > 0, small = true;
        for (size_t i = 0; i < n; i++) {
            const json_t *e = json_array_get(v, i);
            ints = ints && json_is_integer(e);
            numbers = numbers && json_is_number(e);
            small = small && (!json_is_integer(e) || (json_integer_value(e) >= INT32_MIN &&
                                                      json_integer_value(e) <= INT32_MAX));
        }
        put_byte(b, '[');
        if (ints || numbers) {
            char type = !ints ? 'D' : small ? 'l' : 'L';
            put_byte(b, '$');
            put_byte(b, (unsigned char)type);
            put_byte(b, '#');
            put_count(b, n);
            for (size_t i = 0; i < n; i++) {
                const json_t *e = json_array_get(v, i);
                if (type == 'D')
                    put_double(b, json_number_value(e));
                else
                    put_big_endian(b, (uint64_t)json_integer_value(e), type == 'l' ? 4 : 8);
            }
        } else {
            put_byte(b, '#');
            put_count(b, n);
            for (size_t i = 0; i < n; i++)
                put_ubj(b, json_array_get(v, i));
        }
        break;
    }
    case JSON_STRING:
        put_byte(b, 'S');
        put_count(b, json_string_length(v));
        put(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        put_byte(b, 'L');
        put_big_endian(b, (uint64_t)json_integer_value(v), 8);
        break;
    case JSON_REAL:
        put_byte(b, 'D');
        put_double(b, json_real_value(v));
        break;
    case JSON_TRUE:
        put_byte(b, 'T');
        break;
    case JSON_FALSE:
        put_byte(b, 'F');
        break;
    case JSON_NULL:
        put_byte(b, 'Z');
        break;
    }
}

/* sms_forest_compile_ubj on a guarded copy. */
static sms_forest_t *compile_ubj(const void *ubj, size_t len, char *why, size_t why_size)
{
    void *g = tu_guarded_copy(ubj, len);
    sms_forest_t *f = sms_forest_compile_ubj(g, len, why, why_size);
    tu_guarded_free(g, len);
    return f;
}

/* b's model as XGBoost writes its UBJSON (malloc'd copy). */
static unsigned char *booster_ubj(BoosterHandle b, size_t *len)
{
    bst_ulong n = 0;
    const char *raw = NULL;
    XGB_OK(XGBoosterSaveModelToBuffer(b, "{\"format\": \"ubj\"}", &n, &raw));
    unsigned char *copy = malloc(n);
    assert_non_null(copy);
    memcpy(copy, raw, n);
    *len = n;
    return copy;
}

/* b's model compiled from its UBJSON must be the forest f compiled from its
 * JSON: the same shape and the same bits as want (XGBoost's values for
 * rows x), whole, row by row and in a short batch; and so must it be once
 * sealed, which must free something. */
static void check_ubj_and_seal(BoosterHandle b, const sms_forest_t *f, const float *x, size_t rows,
                               const float *want, const char *label)
{
    size_t len;
    unsigned char *ubj = booster_ubj(b, &len);
    char why[256];
    sms_forest_t *u = compile_ubj(ubj, len, why, sizeof why);
    free(ubj);
    if (!u) {
        print_error("%s: its UBJSON is refused: %s\n", label, why);
        fail();
    }
    assert_int_equal(sms_forest_num_trees(u), sms_forest_num_trees(f));
    assert_int_equal(sms_forest_num_nodes(u), sms_forest_num_nodes(f));
    assert_int_equal(sms_forest_num_categorical(u), sms_forest_num_categorical(f));
    assert_int_equal(sms_forest_leaf_size(u), sms_forest_leaf_size(f));
    sms_forest_set_fused(u, sms_forest_fused(f));
    size_t nf = sms_forest_num_feature(u), no = sms_forest_num_output(u);
    float *got = malloc(rows * no * sizeof *got);
    assert_non_null(got);
    for (int sealed = 0; sealed < 2; sealed++) {
        parity_t p = {0, 0, 0};
        predict(u, x, rows, got);
        compare(want, got, rows * no, &p);
        for (size_t r = 0; r < 8 && r < rows; r++) {
            predict(u, x + r * nf, 1, got);
            compare(want + r * no, got, no, &p);
        }
        predict(u, x, rows < 3 ? rows : 3, got);
        compare(want, got, (rows < 3 ? rows : 3) * no, &p);
        if (p.differ) {
            print_error("%s: from UBJSON%s, %zu values differ\n", label, sealed ? ", sealed" : "",
                        p.differ);
            fail();
        }
        size_t before = sms_forest_bytes(u);
        if (!sealed) {
            sms_forest_seal(u);
            assert_true(sms_forest_bytes(u) < before);
        }
    }
    free(got);
    sms_forest_free(u);
}

/* A string literal's bytes, without its NUL. */
#define PUT(b, literal) put((b), (literal), sizeof(literal) - 1)

/* An object key as XGBoost writes it: its length ('L', 8 bytes), its bytes. */
static void put_key(bytes_t *b, const char *key, size_t len)
{
    put_count(b, len);
    put(b, key, len);
}

static void expect_ubj_refused(bytes_t *b, const char *reason)
{
    char why[256] = "unset";
    sms_forest_t *f = compile_ubj(b->n ? b->p : (const unsigned char *)"", b->n, why, sizeof why);
    if (f || !strstr(why, reason)) {
        print_error("%s, want a refusal with '%s'\n", f ? "compiled" : why, reason);
        fail();
    }
    sms_forest_free(f);
    b->n = 0;
}

/* {key: rest}, both string literals (which may hold NULs), refused with
 * reason. */
#define EXPECT_MEMBER_REFUSED(b, key, rest, reason)                                                \
    expect_member_refused((b), (key), sizeof(key) - 1, (rest), sizeof(rest) - 1, (reason))

static void expect_member_refused(bytes_t *b, const char *key, size_t key_len, const char *rest,
                                  size_t rest_len, const char *reason)
{
    PUT(b, "{");
    put_key(b, key, key_len);
    put(b, rest, rest_len);
    expect_ubj_refused(b, reason);
}

/* Bytes that are not UBJSON as XGBoost writes it, each refused with its
 * reason: typed arrays of other than numbers, counts past the end or
 * negative, nesting past 128, duplicate, NUL or non-UTF-8 keys and
 * strings, unknown markers, optimised objects, bytes after the value,
 * nothing at all; and UBJSON that is no model. */
static void test_ubj_refused(void **state)
{
    (void)state;
    bytes_t b = {NULL, 0, 0};
    EXPECT_MEMBER_REFUSED(&b, "a", "[$S#i\1i\1a}", "typed array of other than numbers");
    PUT(&b, "{");
    put_key(&b, "a", 1);
    PUT(&b, "i\1");
    put_key(&b, "a", 1);
    PUT(&b, "i\2}");
    expect_ubj_refused(&b, "duplicate key");
    PUT(&b, "{");
    put_key(&b, "a", 1);
    PUT(&b, "[$l#");
    put_count(&b, 1000);
    PUT(&b, "\0\0\0\1}");
    expect_ubj_refused(&b, "longer than the bytes left");
    PUT(&b, "{");
    put_key(&b, "a", 1);
    PUT(&b, "[#");
    put_count(&b, 1000);
    PUT(&b, "Z}");
    expect_ubj_refused(&b, "longer than the bytes left");
    PUT(&b, "{");
    put_count(&b, (size_t)-1);
    expect_ubj_refused(&b, "negative");
    EXPECT_MEMBER_REFUSED(&b, "a", "H}", "unknown marker");
    EXPECT_MEMBER_REFUSED(&b, "\0", "Z}", "NUL");
    EXPECT_MEMBER_REFUSED(&b, "\xff", "Z}", "UTF-8");
    EXPECT_MEMBER_REFUSED(&b, "a", "Si\1\xff}", "UTF-8");
    PUT(&b, "{#i\1");
    expect_ubj_refused(&b, "optimised object");
    PUT(&b, "{}x");
    expect_ubj_refused(&b, "bytes after the value");
    EXPECT_MEMBER_REFUSED(&b, "a", "", "cut short");
    expect_ubj_refused(&b, "no value");
    PUT(&b, "NNN");
    expect_ubj_refused(&b, "no value");
    EXPECT_MEMBER_REFUSED(&b, "a", "[$d#d", "count");
    PUT(&b, "{}");
    expect_ubj_refused(&b, "lacks the booster");
    /* 129 nested arrays are refused; 128 are only no model. */
    for (int k = 0; k < 129; k++)
        put_byte(&b, '[');
    for (int k = 0; k < 129; k++)
        put_byte(&b, ']');
    char why[256];
    assert_null(compile_ubj(b.p, b.n, why, sizeof why));
    assert_non_null(strstr(why, "nested deeper than 128"));
    assert_null(compile_ubj(b.p + 1, b.n - 2, why, sizeof why));
    assert_null(strstr(why, "nested"));
    free(b.p);
}

/* The smallest positive output of the last check_parity. */
static float smallest_positive;

static bool runtime_fuses_dart(void);

/* Whether the model JSON has dart weights (3.4 saves dart as gbtree). */
static bool has_weights(const char *json)
{
    return strstr(json, "\"weight_drop\"") != NULL;
}

/* Compiles b's JSON and checks every output bit against the C API on probe
 * rows and random rows, predicted whole, one row at a time, and in chunks
 * of awkward sizes. Returns the compiled forest's leaf size. */
static size_t check_parity(BoosterHandle b, const char *label)
{
    size_t len;
    char *json = tu_booster_json(b, &len);
    char why[256];
    sms_forest_t *f = sms_forest_compile(json, len, why, sizeof why);
    if (!f) {
        print_error("%s: refused: %s\n", label, why);
        fail();
    }
    /* The library's dart accumulation, found once per process: every dart
     * model must then match in that one mode. */
    bool dart = has_weights(json);
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
    print_message("  %-50s %3zu trees %6zu nodes %3zu cat: %zu values, %zu differ (max %lld ulp)\n",
                  label, sms_forest_num_trees(f), sms_forest_num_nodes(f),
                  sms_forest_num_categorical(f), p.values, p.differ, (long long)p.max_ulp);
    assert_int_equal(p.differ, 0);
    check_ubj_and_seal(b, f, x, rows, want, label);
    size_t leaf_size = sms_forest_leaf_size(f);
    free(x);
    free(want);
    free(got);
    free(json);
    sms_forest_free(f);
    return leaf_size;
}

/* The model JSON's booster object holding trees (and weight_drop). */
static json_t *booster_model(json_t *root)
{
    json_t *gb = json_object_get(json_object_get(root, "learner"), "gradient_booster");
    json_t *model = json_object_get(gb, "model");
    return model ? model : json_object_get(json_object_get(gb, "gbtree"), "model");
}

static int dart_weights_differ(BoosterHandle b)
{
    size_t len;
    char *json = tu_booster_json(b, &len);
    json_t *root = json_loadb(json, len, 0, NULL);
    json_t *w = json_object_get(booster_model(root), "weight_drop");
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
    train_case_t c = {"reg:squarederror", "dart", 0, "2.5", 4, 8, 3, 200, NULL, 0, 0, 0, NULL};
    BoosterHandle b = train(&c);
    size_t n;
    char *json = tu_take_booster_json(b, &n);
    json_t *root = json_loadb(json, n, 0, NULL);
    free(json);
    assert_non_null(root);
    json_t *model = booster_model(root);
    json_t *trees = json_object_get(model, "trees");
    json_t *weights = json_object_get(model, "weight_drop");
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
    BoosterHandle b = tu_booster_load(json, len);
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
    /* The gate's choice: a model without tree weights ignores the setting. */
    train_case_t c = {"reg:squarederror", "gbtree", 0, "2.5", 4, 8, 3, 200, NULL, 0, 0, 0, NULL};
    BoosterHandle b = train(&c);
    size_t len;
    char *json = tu_booster_json(b, &len);
    assert_false(has_weights(json));
    sms_forest_t *f = sms_forest_compile(json, len, NULL, 0);
    assert_non_null(f);
    sms_forest_set_fused(f, true);
    assert_false(sms_forest_fused(f));
    sms_forest_free(f);
    free(json);
    XGBoosterFree(b);
    /* The discriminating model through the whole parity check. */
    json = dart_discriminating_model(&len);
    b = tu_booster_load(json, len);
    check_parity(b, "dart with full-mantissa leaves and weights");
    XGBoosterFree(b);
    free(json);
    /* Dart with vector leaves: every target's value weighted. */
    train_case_t v = {"reg:squarederror",
                      "dart",
                      0,
                      NULL,
                      6,
                      12,
                      4,
                      400,
                      NULL,
                      .num_target = 3,
                      .params = "multi_strategy=multi_output_tree"};
    b = train(&v);
    assert_true(dart_weights_differ(b));
    assert_int_equal(check_parity(b, "dart vector leaves x3"), 3);
    XGBoosterFree(b);
}

/* ---- parity tests ---------------------------------------------------------- */

static const char *const OBJECTIVES[] = {
    "reg:squarederror",  "reg:linear",          "reg:pseudohubererror",
    "reg:absoluteerror", "reg:squaredlogerror", "reg:gamma",
    "reg:tweedie",       "count:poisson",       "survival:cox",
    "survival:aft",      "reg:logistic",        "binary:logistic",
    "binary:logitraw",   "binary:hinge",        "multi:softprob",
    "multi:softmax",     "reg:quantileerror",   "reg:expectileerror",
    "rank:ndcg",         "rank:pairwise",       "rank:map",
};

/* A base_score that XGBoost accepts for the objective, or NULL for its own
 * estimate (the multi-output objectives, where it is one value per output). */
static const char *base_for(const char *objective)
{
    if (!strcmp(objective, "reg:quantileerror") || !strcmp(objective, "reg:expectileerror"))
        return NULL;
    if (!strncmp(objective, "multi:", 6))
        return "0.2";
    if (!strcmp(objective, "binary:hinge"))
        return "0.3";
    if (!strcmp(objective, "reg:logistic") || !strncmp(objective, "binary:logi", 11))
        return "0.3";
    if (!strcmp(objective, "reg:gamma") || !strcmp(objective, "reg:tweedie") ||
        !strcmp(objective, "count:poisson") || !strcmp(objective, "survival:cox") ||
        !strcmp(objective, "survival:aft"))
        return "1.7";
    return "2.5";
}

static void parity_all(const char *booster)
{
    for (size_t i = 0; i < sizeof OBJECTIVES / sizeof OBJECTIVES[0]; i++) {
        const char *o = OBJECTIVES[i];
        int num_class = !strncmp(o, "multi:", 6) ? (i % 2 ? 4 : 3) : 0;
        train_case_t c = {o, booster, num_class, base_for(o), 12, 24, 5, 400, NULL, 0, 0, 0, NULL};
        lighten(&c);
        char label[96];
        BoosterHandle b = train(&c);
        if (!strcmp(booster, "dart"))
            assert_true(dart_weights_differ(b));
        snprintf(label, sizeof label, "%s %s base %s", booster, o,
                 c.base_score ? c.base_score : "estimated");
        check_parity(b, label);
        /* The same model after a JSON round trip through the C API. */
        size_t len;
        char *json = tu_take_booster_json(b, &len);
        b = tu_booster_load(json, len);
        snprintf(label, sizeof label, "%s %s (reloaded)", booster, o);
        check_parity(b, label);
        XGBoosterFree(b);
        free(json);
        /* And with XGBoost's estimated intercept. */
        if (c.base_score && strcmp(o, "reg:linear") != 0) {
            c.base_score = NULL;
            b = train(&c);
            snprintf(label, sizeof label, "%s %s base estimated", booster, o);
            check_parity(b, label);
            XGBoosterFree(b);
        }
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
        {"binary:logistic", "gbtree", 0, NULL, 20, 100, 6, 2000, NULL, 0, 0, 0, NULL},
        {"binary:logistic", "gbtree", 0, NULL, 50, 200, 8, 3000, NULL, 0, 0, 0, NULL},
        {"multi:softprob", "dart", 4, NULL, 30, 40, 6, 1000, NULL, 0, 0, 0, NULL},
        {"reg:squarederror", "gbtree", 0, "20", 10, 30, 6, 500, "exact", 0, 0, 0, NULL},
        {"binary:logistic", "dart", 0, "0.8", 10, 30, 6, 500, "exact", 0, 0, 0, NULL},
        {"reg:squarederror", "gbtree", 0, NULL, 3, 1, 1, 50, NULL, 0, 0, 0, NULL},
        /* Too wide to widen on the stack: rows are walked as they are. */
        {"multi:softprob", "gbtree", 3, NULL, 1100, 6, 4, 300, NULL, 0, 0, 0, NULL},
        /* Random forests: several trees per round. */
        {"reg:squarederror", "gbtree", 0, NULL, 8, 5, 5, 400, NULL,
         .params = "num_parallel_tree=4;subsample=0.7;colsample_bynode=0.6"},
        /* base_score at the ends of logistic's range (clamped to 1e-6). */
        {"binary:logistic", "gbtree", 0, "0", 6, 5, 3, 300, NULL, 0, 0, 0, NULL},
        {"binary:logistic", "gbtree", 0, "1", 6, 5, 3, 300, NULL, 0, 0, 0, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        train_case_t light = cases[i];
        lighten(&light);
        const train_case_t *c = &light;
        char label[96];
        snprintf(label, sizeof label, "%s %s %zuf %dx d%d%s%s", c->booster, c->objective,
                 c->num_feature, c->rounds, c->depth, c->tree_method ? " exact" : "",
                 c->params ? " forest" : "");
        BoosterHandle b = train(c);
        check_parity(b, label);
        XGBoosterFree(b);
    }
}

/* Several outputs per row: one tree per target, vector leaves, quantiles
 * and expectiles, vector base scores. */
static void test_parity_multi_output(void **state)
{
    (void)state;
    const char *vector = "multi_strategy=multi_output_tree";
    const train_case_t cases[] = {
        {"reg:squarederror", "gbtree", 0, NULL, 8, 20, 5, 600, NULL, .num_target = 3},
        {"reg:squarederror", "gbtree", 0, NULL, 8, 20, 5, 600, NULL, .num_target = 3,
         .params = vector},
        {"reg:squarederror", "gbtree", 0, "[1.5,-2,30]", 8, 10, 4, 600, NULL, .num_target = 3,
         .params = vector},
        {"reg:squarederror", "gbtree", 0, "[1.5,-2]", 8, 10, 4, 600, NULL, .num_target = 2},
        {"binary:logistic", "gbtree", 0, NULL, 8, 15, 4, 600, NULL, .num_target = 4,
         .params = vector},
        {"binary:logistic", "gbtree", 0, NULL, 8, 15, 4, 600, NULL, .num_target = 2},
        {"reg:pseudohubererror", "gbtree", 0, NULL, 6, 10, 4, 400, NULL, .num_target = 2,
         .params = vector},
        {"reg:quantileerror", "gbtree", 0, NULL, 8, 20, 5, 600, NULL, 0, 0, 0, NULL},
        {"reg:quantileerror", "gbtree", 0, NULL, 8, 20, 5, 600, NULL, .params = vector},
        {"reg:quantileerror", "dart", 0, NULL, 8, 20, 5, 600, NULL, 0, 0, 0, NULL},
        {"reg:expectileerror", "gbtree", 0, NULL, 8, 20, 5, 600, NULL, 0, 0, 0, NULL},
        {"reg:expectileerror", "gbtree", 0, NULL, 8, 20, 5, 600, NULL, .params = vector},
        {"reg:squarederror", "gbtree", 0, NULL, 1100, 4, 4, 300, NULL, .num_target = 2,
         .params = vector},
        {"reg:squarederror", "gbtree", 0, NULL, 6, 4, 3, 300, NULL, .num_target = 2,
         .params = "multi_strategy=multi_output_tree;num_parallel_tree=3;subsample=0.7"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        train_case_t light = cases[i];
        lighten(&light);
        const train_case_t *c = &light;
        char label[96];
        snprintf(label, sizeof label, "%s %s x%zu%s%s%s", c->booster, c->objective,
                 c->num_target > 1 ? c->num_target : 3, c->params ? " vector leaves" : "",
                 c->base_score ? " base " : "", c->base_score ? c->base_score : "");
        BoosterHandle b = train(c);
        size_t leaf_size = check_parity(b, label);
        assert_true(c->params && strstr(c->params, "multi_output") ? leaf_size > 1
                                                                   : leaf_size == 1);
        XGBoosterFree(b);
    }
}

/* Categorical splits: one-hot (few categories) and partitions, missing
 * values, many categories (sets of several words), vector leaves, dart. */
static void test_parity_categorical(void **state)
{
    (void)state;
    const train_case_t cases[] = {
        {"reg:squarederror", "gbtree", 0, NULL, 6, 20, 5, 800, NULL, .num_categorical = 2,
         .categories = 3},
        {"reg:squarederror", "gbtree", 0, NULL, 6, 20, 5, 800, NULL, .num_categorical = 2,
         .params = "max_cat_to_onehot=1"},
        {"binary:logistic", "gbtree", 0, NULL, 6, 20, 5, 800, NULL, .num_categorical = 3,
         .categories = 100},
        {"multi:softprob", "gbtree", 3, NULL, 6, 10, 4, 800, NULL, .num_categorical = 2,
         .categories = 40},
        {"reg:squarederror", "dart", 0, NULL, 6, 15, 5, 800, NULL, .num_categorical = 2},
        {"reg:squarederror", "gbtree", 0, NULL, 6, 12, 4, 800, NULL, .num_target = 2,
         .num_categorical = 2, .params = "multi_strategy=multi_output_tree"},
        {"reg:squarederror", "gbtree", 0, NULL, 5, 10, 6, 1500, NULL, .num_categorical = 5,
         .categories = 1000, .params = "max_cat_to_onehot=1;max_cat_threshold=300"},
        /* Too wide to widen: rows walked as they are. */
        {"reg:squarederror", "gbtree", 0, NULL, 1100, 6, 4, 300, NULL, .num_categorical = 3},
        {"binary:logistic", "gbtree", 0, NULL, 1100, 6, 4, 300, NULL, .num_target = 2,
         .num_categorical = 3, .params = "multi_strategy=multi_output_tree"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        train_case_t light = cases[i];
        lighten(&light);
        const train_case_t *c = &light;
        char label[96];
        snprintf(label, sizeof label, "%s %s, %zu categorical of %zu%s", c->booster, c->objective,
                 c->num_categorical, c->categories ? c->categories : 12,
                 c->num_target > 1 ? ", vector leaves" : "");
        BoosterHandle b = train(c);
        size_t len;
        char *json = tu_booster_json(b, &len);
        sms_forest_t *f = sms_forest_compile(json, len, NULL, 0);
        assert_non_null(f);
        assert_true(sms_forest_num_categorical(f) > 0);
        sms_forest_free(f);
        free(json);
        check_parity(b, label);
        XGBoosterFree(b);
    }
}

/* Sets every leaf of every tree to `value` (alternating sign by node). */
static char *with_leaves(const char *json, size_t len, double value, size_t *out_len)
{
    json_t *root = json_loadb(json, len, 0, NULL);
    assert_non_null(root);
    json_t *trees = json_object_get(booster_model(root), "trees");
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
 * at 88.7, expf's overflow, softmax's max subtraction, softplus's branches,
 * the quantiles' sort). */
static void test_parity_extreme_margins(void **state)
{
    (void)state;
    const char *objectives[] = {"binary:logistic", "count:poisson",     "multi:softprob",
                                "multi:softmax",   "binary:hinge",      "reg:squarederror",
                                "survival:aft",    "reg:quantileerror", "reg:expectileerror",
                                "reg:gamma"};
    const double leaves[] = {1.0, 15.0, 30.0, 44.4, 50.0, 1e4};
    for (size_t i = 0; i < sizeof objectives / sizeof objectives[0]; i++) {
        for (size_t k = 0; k < sizeof leaves / sizeof leaves[0]; k++) {
            int nc = !strncmp(objectives[i], "multi:", 6) ? 3 : 0;
            train_case_t c = {
                objectives[i], k % 2 ? "dart" : "gbtree", nc, NULL, 6, 4, 3, 200, NULL, 0, 0, 0,
                NULL};
            BoosterHandle b = train(&c);
            size_t len, len2;
            char *json = tu_take_booster_json(b, &len);
            char *edited = with_leaves(json, len, leaves[k], &len2);
            b = tu_booster_load(edited, len2);
            char label[96];
            snprintf(label, sizeof label, "%s %s leaves +-%g", c.booster, c.objective, leaves[k]);
            check_parity(b, label);
            /* Margins below -88.7 reach sigmoid's clamp: XGBoost gives about
             * 3e-39 there, not the 0 of 1 / (1 + expf(-x)). */
            if (!strcmp(c.objective, "binary:logistic") && leaves[k] >= 50.0)
                assert_true(smallest_positive < 1e-38f);
            XGBoosterFree(b);
            free(json);
            free(edited);
        }
    }
}

/* The exp of survival:aft (which XGBoost 3.4 calls unqualified on a float),
 * count:poisson, survival:cox, reg:gamma and reg:tweedie: expf and a double
 * exp rounded to float disagree on about one float in 13,000, so a tree
 * whose 256 leaves are such floats (base score 1, margin 0: each margin is
 * a leaf) tells which one XGBoost calls. */
static void test_parity_exp_margins(void **state)
{
    (void)state;
    const unsigned depth = 8;
    const size_t leaves = (size_t)1 << depth, nodes = 2 * leaves - 1;
    float margin[256];
    uint64_t rng = 11;
    for (size_t found = 0; found < leaves;) {
        float m = -87.0f + 175.0f * (float)(tu_rand32(&rng) >> 8) / 16777216.0f;
        if (expf(m) != (float)exp((double)m))
            margin[found++] = m;
    }
    const char *objectives[] = {"survival:aft", "count:poisson", "survival:cox", "reg:gamma",
                                "reg:tweedie"};
    for (size_t i = 0; i < sizeof objectives / sizeof objectives[0]; i++) {
        train_case_t c = {objectives[i], "gbtree", 0, "1", 2, 1, 1, 100, NULL, 0, 0, 0, NULL};
        BoosterHandle b = train(&c);
        size_t len;
        char *json = tu_take_booster_json(b, &len);
        json_t *root = json_loadb(json, len, 0, NULL);
        free(json);
        json_t *model = booster_model(root);
        json_t *tree = json_array_get(json_object_get(model, "trees"), 0);
        json_t *a[10];
        tu_tree_arrays(tree, a);
        /* A complete tree on feature 0: node k at level d, position p in
         * it, splits at p * span + span / 2, so leaf p takes [p, p + 1). */
        for (size_t k = 0; k < nodes; k++) {
            bool internal = k < leaves - 1;
            size_t level = 0;
            while (((size_t)2 << level) - 1 <= k)
                level++;
            size_t pos = k - (((size_t)1 << level) - 1), span = leaves >> level;
            json_array_append_new(a[0], json_integer(internal ? (json_int_t)(2 * k + 1) : -1));
            json_array_append_new(a[1], json_integer(internal ? (json_int_t)(2 * k + 2) : -1));
            json_array_append_new(a[2],
                                  json_integer(k == 0 ? 2147483647 : (json_int_t)(k - 1) / 2));
            json_array_append_new(a[3], json_integer(0));
            json_array_append_new(
                a[4], json_real(internal ? (double)(pos * span + span / 2) : margin[pos]));
            json_array_append_new(a[5], json_integer(1));
            json_array_append_new(a[6], json_integer(0));
            json_array_append_new(a[7], json_real(0.0));
            json_array_append_new(a[8], json_real(1.0));
            json_array_append_new(a[9], json_real(0.0));
        }
        tu_tree_num_nodes(tree, nodes);
        json_t *keep = json_array();
        json_array_append(keep, tree);
        json_object_set_new(model, "trees", keep);
        json_object_set_new(model, "tree_info", json_pack("[i]", 0));
        json_object_set_new(model, "iteration_indptr", json_pack("[i,i]", 0, 1));
        json_object_set_new(json_object_get(model, "gbtree_model_param"), "num_trees",
                            json_string("1"));
        char *s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(9));
        json_decref(root);
        b = tu_booster_load(s, strlen(s));
        /* Each leaf's middle, and the probe's rows. */
        float x[2 * 256], want[256], got[256];
        for (size_t p = 0; p < leaves; p++) {
            x[2 * p] = (float)p + 0.5f;
            x[2 * p + 1] = 0.0f;
        }
        predict_ref(b, x, leaves, 2, want, leaves);
        sms_forest_t *f = sms_forest_compile(s, strlen(s), NULL, 0);
        assert_non_null(f);
        predict(f, x, leaves, got);
        size_t as_expf = 0, as_exp = 0, same = 0;
        for (size_t p = 0; p < leaves; p++) {
            as_expf += want[p] == expf(margin[p]);
            as_exp += want[p] == (float)exp((double)margin[p]);
            same += memcmp(&want[p], &got[p], sizeof *got) == 0;
        }
        print_message("  %-14s on 256 margins where expf and exp differ: XGBoost matches expf on "
                      "%zu, exp on %zu; native identical on %zu\n",
                      objectives[i], as_expf, as_exp, same);
        assert_int_equal(same, leaves);
        sms_forest_free(f);
        char label[96];
        snprintf(label, sizeof label, "%s, margins where expf and exp differ", objectives[i]);
        check_parity(b, label);
        XGBoosterFree(b);
        free(s);
    }
}

/* XGBoost's margins (prediction type 1) for rows x nf values. */
static void predict_margin(BoosterHandle b, const float *x, size_t rows, size_t nf, float *out,
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
    XGB_OK(XGBoosterPredictFromDense(b, iface,
                                     "{\"type\": 1, \"training\": false, \"iteration_begin\": 0, "
                                     "\"iteration_end\": 0, \"strict_shape\": false, "
                                     "\"missing\": NaN}",
                                     NULL, &shape, &dim, &res));
    size_t n = 1;
    for (bst_ulong i = 0; i < dim; i++)
        n *= shape[i];
    assert_int_equal(n, expect);
    memcpy(out, res, n * sizeof *out);
}

/* base_score through each objective's ProbToMargin: on values where the
 * float and the double functions (logf and log, expm1f and expm1) round
 * differently, sms_objective_read must give XGBoost's margins bit for bit
 * (read with every leaf 0, so the margin is the base margin alone). */
static void test_base_margins(void **state)
{
    (void)state;
    const struct {
        const char *objective;
        float lo, hi;
    } cases[] = {
        {"count:poisson", 0.01f, 100.0f}, {"reg:gamma", 0.01f, 100.0f},
        {"reg:tweedie", 0.01f, 100.0f},   {"survival:cox", 0.01f, 100.0f},
        {"survival:aft", 0.01f, 100.0f},  {"binary:logistic", 0.0f, 1.0f},
        {"reg:logistic", 0.0f, 1.0f},     {"reg:expectileerror", -50.0f, 50.0f},
        {"binary:logitraw", -5.0f, 5.0f}, {"multi:softprob", -5.0f, 5.0f},
    };
    uint64_t rng = 5;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool expectile = !strcmp(cases[i].objective, "reg:expectileerror");
        bool multi = !strncmp(cases[i].objective, "multi:", 6);
        size_t matched = 0, tried = 0;
        for (int k = 0; k < 6; k++) {
            /* A base score where the float and double versions differ. */
            float v[3];
            for (size_t g = 0; g < 3; g++) {
                for (;;) {
                    float u = (float)(tu_rand32(&rng) >> 8) / 16777216.0f;
                    float b = cases[i].lo + (cases[i].hi - cases[i].lo) * u;
                    if (b <= 0.0f && cases[i].lo >= 0.0f)
                        continue;
                    double d = b;
                    bool differ =
                        cases[i].lo < 0.0f ||
                        (cases[i].hi > 1.0f ? logf(b) != (float)log(d)
                                            : logf(1.0f / b - 1.0f) != (float)log(1.0 / d - 1.0));
                    if (differ) {
                        v[g] = b;
                        break;
                    }
                }
            }
            if (expectile) { /* ascending, gaps where expm1f and expm1 differ */
                v[1] = v[0] + 0.5f + fabsf(v[1]) / 10.0f;
                v[2] = v[1] + 0.25f + fabsf(v[2]) / 10.0f;
            }
            char base[96];
            if (expectile || multi)
                snprintf(base, sizeof base, "[%.9g,%.9g,%.9g]", v[0], v[1], v[2]);
            else
                snprintf(base, sizeof base, "%.9g", v[0]);
            train_case_t c = {cases[i].objective,
                              "gbtree",
                              multi ? 3 : 0,
                              base,
                              3,
                              2,
                              2,
                              100,
                              NULL,
                              0,
                              0,
                              0,
                              NULL};
            BoosterHandle b = train(&c);
            size_t len, len2;
            char *json = tu_take_booster_json(b, &len);
            char *edited = with_leaves(json, len, 0.0, &len2);
            b = tu_booster_load(edited, len2);
            json_t *root = sms_xjson_parse(edited, len2, NULL, 0);
            sms_objective_t o;
            char why[256];
            if (sms_objective_read(root, true, &o, why, sizeof why) < 0) {
                print_error("%s base %s: %s\n", cases[i].objective, base, why);
                fail();
            }
            float x[3] = {0.5f, NAN, -1.0f}, margin[3];
            predict_margin(b, x, 1, 3, margin, o.num_group);
            for (size_t g = 0; g < o.num_group; g++) {
                tried++;
                matched += memcmp(&margin[g], &o.base_margin[g], sizeof *margin) == 0;
                if (memcmp(&margin[g], &o.base_margin[g], sizeof *margin) != 0)
                    print_message("    %s base %s output %zu: XGBoost margin %.9g, native %.9g\n",
                                  cases[i].objective, base, g, margin[g], o.base_margin[g]);
            }
            json_decref(root);
            XGBoosterFree(b);
            free(json);
            free(edited);
        }
        print_message("  %-20s %zu of %zu base margins identical to XGBoost's\n",
                      cases[i].objective, matched, tried);
        assert_int_equal(matched, tried);
    }
}

/* ---- categorical splits: XGBoost's rule -------------------------------------- */

/* A one-tree model (reg:squarederror, base score 0) whose root splits
 * feature 0 on the category set `cats` (n of them), missing values going
 * left or right, into leaves 0.25 (left) and 0.75 (right). */
static char *category_model(const int *cats, size_t n, bool default_left, size_t *len)
{
    train_case_t c = {"reg:squarederror",  "gbtree", 0, "0", 2, 1, 1, 200, NULL,
                      .num_categorical = 1};
    BoosterHandle b = train(&c);
    char *json = tu_take_booster_json(b, len);
    json_t *root = json_loadb(json, *len, 0, NULL);
    free(json);
    assert_non_null(root);
    json_t *tree = json_array_get(json_object_get(booster_model(root), "trees"), 0);
    struct {
        const char *field;
        json_t *value;
    } fields[] = {
        {"left_children", json_pack("[i,i,i]", 1, -1, -1)},
        {"right_children", json_pack("[i,i,i]", 2, -1, -1)},
        {"parents", json_pack("[i,i,i]", 2147483647, 0, 0)},
        {"split_indices", json_pack("[i,i,i]", 0, 0, 0)},
        {"split_conditions", json_pack("[f,f,f]", 1e-45, 0.25, 0.75)},
        {"default_left", json_pack("[i,i,i]", default_left, 0, 0)},
        {"split_type", json_pack("[i,i,i]", 1, 0, 0)},
        {"loss_changes", json_pack("[f,f,f]", 1.0, 0.0, 0.0)},
        {"sum_hessian", json_pack("[f,f,f]", 2.0, 1.0, 1.0)},
        {"base_weights", json_pack("[f,f,f]", 0.0, 0.25, 0.75)},
        {"categories_nodes", json_pack("[i]", 0)},
        {"categories_segments", json_pack("[i]", 0)},
        {"categories_sizes", json_pack("[i]", (int)n)},
        {"categories", json_array()},
    };
    for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++)
        json_object_set_new(tree, fields[k].field, fields[k].value);
    for (size_t k = 0; k < n; k++)
        json_array_append_new(json_object_get(tree, "categories"), json_integer(cats[k]));
    json_object_set_new(json_object_get(tree, "tree_param"), "num_nodes", json_string("3"));
    json_object_set_new(json_object_get(tree, "tree_param"), "num_deleted", json_string("0"));
    json_t *model = booster_model(root);
    json_t *trees = json_array();
    json_array_append(trees, tree);
    json_object_set_new(model, "trees", trees);
    json_object_set_new(model, "tree_info", json_pack("[i]", 0));
    json_object_set_new(model, "iteration_indptr", json_pack("[i,i]", 0, 1));
    json_object_set_new(json_object_get(model, "gbtree_model_param"), "num_trees",
                        json_string("1"));
    char *s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(root);
    *len = strlen(s);
    return s;
}

/* Which values go right at a categorical split, as the C API decides and
 * the native evaluator must: a valid category in the set (values truncated
 * to integers, 0 <= v < 2^24) goes right; anything else left, including
 * negative values, -0.5, categories past the set's bitset, 2^24 and above
 * and infinities; a missing value takes the default direction. */
/* XGBoost's rule, written out: right for a valid category in the set. */
static bool category_rule(float v, const int *cats, size_t n)
{
    if (!(v >= 0.0f && v < 16777216.0f))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((int)v == cats[i])
            return true;
    return false;
}

static void test_category_rule(void **state)
{
    (void)state;
    /* A set of categories below 64 (kept as a mask in the node), and one
     * with a larger category (kept as a bitset of its own). */
    const int small[] = {1, 3, 40}, large[] = {1, 3, 40, 100};
    const int *sets[] = {small, large};
    const size_t sizes[] = {3, 4};
    const float values[] = {-1.0f,       -0.5f,  -0.0f,    0.0f,      0.5f,   1.0f,  1.5f,
                            1.99f,       2.0f,   3.0f,     3.7f,      39.0f,  40.0f, 40.9f,
                            41.0f,       63.0f,  63.9f,    64.0f,     95.0f,  96.0f, 99.9f,
                            100.0f,      100.5f, 101.0f,   127.0f,    128.0f, 1e6f,  16777215.0f,
                            16777216.0f, 1e30f,  INFINITY, -INFINITY, NAN};
    const size_t n = sizeof values / sizeof values[0];
    for (size_t k = 0; k < 2; k++) {
        for (int dl = 0; dl < 2; dl++) {
            size_t len;
            char *json = category_model(sets[k], sizes[k], dl, &len);
            BoosterHandle b = tu_booster_load(json, len);
            char why[256];
            sms_forest_t *f = sms_forest_compile(json, len, why, sizeof why);
            if (!f) {
                print_error("refused: %s\n", why);
                fail();
            }
            float x[2 * 64], want[64], got[64];
            for (size_t i = 0; i < n; i++) {
                x[2 * i] = values[i];
                x[2 * i + 1] = 0.0f;
            }
            predict_ref(b, x, n, 2, want, n);
            predict(f, x, n, got);
            for (size_t i = 0; i < n; i++) {
                bool goes_right =
                    values[i] != values[i] ? !dl : category_rule(values[i], sets[k], sizes[k]);
                if (want[i] != (goes_right ? 0.75f : 0.25f) || got[i] != want[i]) {
                    print_error("set %zu, value %g (default %s): XGBoost %g, native %g, "
                                "expected %g\n",
                                k, values[i], dl ? "left" : "right", want[i], got[i],
                                goes_right ? 0.75 : 0.25);
                    fail();
                }
            }
            /* One row at a time too (another walk). */
            for (size_t i = 0; i < n; i++) {
                predict(f, x + 2 * i, 1, got);
                assert_true(got[0] == want[i]);
            }
            sms_forest_free(f);
            XGBoosterFree(b);
            free(json);
        }
    }
    const int *cats = small;
    /* The probe reaches every kind of value of that rule. */
    size_t len;
    char *json = category_model(cats, 3, true, &len);
    sms_forest_t *f = sms_forest_compile(json, len, NULL, 0);
    assert_non_null(f);
    float probe[2 * 4000];
    sms_forest_probe(f, 1, 4000, probe);
    size_t in_set = 0, fraction = 0, negative = 0, past = 0, huge = 0, missing = 0, other = 0;
    for (size_t r = 0; r < 4000; r++) {
        float v = probe[2 * r];
        if (v != v)
            missing++;
        else if (v < 0.0f || (v == 0.0f && signbit(v)))
            negative++;
        else if (v >= 16777215.0f)
            huge++;
        else if (v != floorf(v))
            fraction++;
        else if (v == 1.0f || v == 3.0f || v == 40.0f)
            in_set++;
        else if (v >= 64.0f)
            past++;
        else
            other++;
    }
    print_message("  probe of a categorical feature: %zu in the set, %zu fractional, %zu "
                  "negative, %zu past the bitset, %zu >= 2^24 - 1, %zu missing, %zu other\n",
                  in_set, fraction, negative, past, huge, missing, other);
    assert_true(in_set && fraction && negative && past && huge && missing && other);
    sms_forest_free(f);
    free(json);
}

/* ---- the cross-release fixtures -------------------------------------------- */

/* A CSV of float rows (empty field = NaN) as gen_matrix.py writes them:
 * returns malloc'd values, *rows and *cols. */
static float *read_csv(const char *path, size_t *rows, size_t *cols)
{
    size_t len;
    char *text = tu_read_file(path, &len);
    if (!text)
        return NULL;
    size_t cap = 64, n = 0;
    float *v = malloc(cap * sizeof *v);
    *rows = *cols = 0;
    size_t in_row = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        char *after;
        float value = NAN;
        if (*p != ',' && *p != '\n')
            value = strtof(p, &after);
        else
            after = (char *)p;
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

typedef struct matrix_totals {
    size_t models, values, expected_differ, old_expected_differ;
} matrix_totals_t;

/* One fixture model: loaded through the C API, serialised, compiled; its
 * request rows predicted natively must equal the C API's bits, and the
 * release's own expected.csv but for the known differences, which are only
 * counted. */
static void check_fixture(const char *dir, const char *release, const char *name, const char *path,
                          matrix_totals_t *tot)
{
    char file[1024], req[1024], exp_path[1024];
    snprintf(file, sizeof file, "%s/%s", dir, path);
    snprintf(req, sizeof req, "%s/%s/%s/request.csv", dir, release, name);
    snprintf(exp_path, sizeof exp_path, "%s/%s/%s/expected.csv", dir, release, name);
    size_t len, rows, nf, erows, no;
    char *bytes = tu_read_file(file, &len);
    float *x = read_csv(req, &rows, &nf);
    float *expected = read_csv(exp_path, &erows, &no);
    assert_true(bytes && x && expected && erows == rows);
    BoosterHandle b = tu_booster_load(bytes, len);
    size_t jlen;
    char *json = tu_booster_json(b, &jlen);
    char why[256];
    sms_forest_t *f = sms_forest_compile(json, jlen, why, sizeof why);
    if (!f) {
        print_error("%s: refused: %s\n", file, why);
        fail();
    }
    sms_forest_set_fused(f, runtime_fuses_dart());
    assert_int_equal(sms_forest_num_feature(f), nf);
    assert_int_equal(sms_forest_num_output(f), no);
    float *want = malloc(rows * no * sizeof *want), *got = malloc(rows * no * sizeof *got);
    predict_ref(b, x, rows, nf, want, rows * no);
    predict(f, x, rows, got);
    parity_t p = {0, 0, 0};
    compare(want, got, rows * no, &p);
    if (p.differ) {
        print_error("%s: %zu values differ from the C API\n", file, p.differ);
        fail();
    }
    check_ubj_and_seal(b, f, x, rows, want, file);
    size_t differ = 0;
    for (size_t k = 0; k < rows * no; k++)
        differ += memcmp(&got[k], &expected[k], sizeof *got) != 0 &&
                  !(isnan(got[k]) && isnan(expected[k]));
    /* Known differences of 3.4 from older releases: 1.0 and 1.2 summed
     * some margins differently; 3.4 sorts each row's quantiles, which
     * earlier releases let cross. */
    int major = 0, minor = 0;
    sscanf(release, "%d.%d", &major, &minor);
    bool old = (major == 1 && minor < 3) || major == 0 ||
               (strstr(name, "quantile") && (major < 3 || (major == 3 && minor < 4)));
    if (differ && !old) {
        print_error("%s: %zu of %zu values differ from %s's own predictions\n", file, differ,
                    rows * no, release);
        fail();
    }
    if (old)
        tot->old_expected_differ += differ;
    else
        tot->expected_differ += differ;
    tot->models++;
    tot->values += rows * no;
    sms_forest_free(f);
    XGBoosterFree(b);
    free(json);
    free(bytes);
    free(x);
    free(expected);
    free(want);
    free(got);
}

/* Every tree model of the matrix, JSON and UBJSON, from every release. */
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
    matrix_totals_t tot = {0, 0, 0, 0};
    size_t skipped_old_vector = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *fields[10], *fsave = NULL;
        size_t n = 0;
        for (char *f = strtok_r(line, "\t", &fsave); f && n < 10; f = strtok_r(NULL, "\t", &fsave))
            fields[n++] = f;
        if (n < 6 || !strcmp(fields[0], "release") || !strcmp(fields[3], "-") ||
            !strcmp(fields[5], "gblinear") ||
            (strcmp(fields[2], "json") != 0 && strcmp(fields[2], "ubj") != 0))
            continue;
        /* XGBoost 3.4 crashes loading vector leaves saved by 2.0-3.1 (no
         * leaf_weights); the compatibility checks refuse them first. */
        int major = 0, minor = 0;
        sscanf(fields[0], "%d.%d", &major, &minor);
        if (!strcmp(fields[1], "multi-target-vector-leaf") &&
            (major < 3 || (major == 3 && minor < 2))) {
            skipped_old_vector++;
            continue;
        }
        check_fixture(dir, fields[0], fields[1], fields[3], &tot);
    }
    print_message("  %zu fixture models (json, ubj) from 1.0 to 3.4 native: %zu values identical "
                  "to the C API; differing from their release's own predictions: %zu, and %zu "
                  "known (1.0-1.2 sums, quantiles before 3.4); %zu vector-leaf models of 2.0-3.1 "
                  "not loaded\n",
                  tot.models, tot.values, tot.expected_differ, tot.old_expected_differ,
                  skipped_old_vector);
    assert_true(tot.models > 300);
    free(text);
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
    /* The same model as UBJSON (typed arrays where JSON has arrays of
     * numbers) is refused for the same reason. */
    json_t *root = sms_xjson_parse(json, len, NULL, 0);
    if (!root)
        return;
    bytes_t b = {NULL, 0, 0};
    put_ubj(&b, root);
    json_decref(root);
    f = compile_ubj(b.p, b.n, why, sizeof why);
    free(b.p);
    if (f) {
        print_error("its UBJSON compiled, expected a refusal (%s)\n",
                    reason_part ? reason_part : "any");
        sms_forest_free(f);
        fail();
    }
    if (reason_part && !strstr(why, reason_part)) {
        print_error("UBJSON reason '%s' lacks '%s'\n", why, reason_part);
        fail();
    }
}

static void test_refuse_gblinear(void **state)
{
    (void)state;
    train_case_t c = {"binary:logistic", "gblinear", 0, NULL, 5, 5, 0, 100, NULL, 0, 0, 0, NULL};
    BoosterHandle b = train(&c);
    size_t len;
    char *json = tu_booster_json(b, &len);
    expect_refused(json, len, "gblinear");
    free(json);
    XGBoosterFree(b);
}
static json_t *small_model_of(const char *booster)
{
    train_case_t c = {"binary:logistic", booster, 0, NULL, 4, 3, 3, 200, NULL, 0, 0, 0, NULL};
    BoosterHandle b = train(&c);
    size_t len;
    char *json = tu_take_booster_json(b, &len);
    json_t *root = json_loadb(json, len, 0, NULL);
    free(json);
    assert_non_null(root);
    return root;
}

static json_t *small_model(void)
{
    return small_model_of("dart");
}

/* A gbtree model of one tree that is a chain `depth` splits deep (see
 * tu_chain_model). */
static char *chain_model(unsigned depth, size_t *len)
{
    return tu_chain_model(small_model_of("gbtree"), depth, len);
}

/* Depth is bounded: 200 splits deep compiles (and matches), 300 does not. */
static void test_deep_chain(void **state)
{
    (void)state;
    size_t len;
    char *json = chain_model(200, &len);
    BoosterHandle b = tu_booster_load(json, len);
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
    BoosterHandle b = tu_booster_load(s, strlen(s));
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
    BoosterHandle b = tu_booster_load(s, strlen(s));
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
        BoosterHandle b = tu_booster_load(json, len);
        char label[64];
        snprintf(label, sizeof label, "gbtree chain of %u splits", depth);
        check_parity(b, label);
        XGBoosterFree(b);
        free(json);
    }
}

static json_t *tree0(json_t *root, const char *field)
{
    json_t *t = json_array_get(json_object_get(booster_model(root), "trees"), 0);
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
        {"split_conditions", 0, json_string("NaN"), "not a number"},
        {"split_conditions", 0, json_string("Infinity"), "not a number"},
        {"left_children", 0, json_integer(100000), "invalid"},
        {"left_children", 0, json_integer(-7), "invalid"},
        {"left_children", 0, json_real(1.0), "not a number"},
        {"right_children", 0, json_integer(5), NULL},
        {"split_indices", 0, json_integer((json_int_t)nf), "feature"},
        {"split_indices", 0, json_integer(-1), "feature"},
        {"split_type", 0, json_integer(1), "categor"},
        {"split_type", 0, json_integer(2), "split_type"},
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
    const struct {
        const char *key;
        json_t *value;
        const char *reason;
    } tree_params[] = {
        {"num_nodes", json_string("2"), NULL},
        {"num_nodes", json_integer(3), NULL},
        /* Vector leaves without leaf_weights: XGBoost 2.0-3.1's layout. */
        {"size_leaf_vector", json_string("3"), "leaf_weights"},
        {"size_leaf_vector", json_string("x"), NULL},
    };
    for (size_t i = 0; i < sizeof tree_params / sizeof tree_params[0]; i++) {
        copy = json_deep_copy(root);
        json_object_set_new(json_object_get(tree0(copy, NULL), "tree_param"), tree_params[i].key,
                            tree_params[i].value);
        expect_refused_json(copy, tree_params[i].reason);
        json_decref(copy);
    }

    json_t *learner = json_object_get(root, "learner");
    json_t *mparam = json_object_get(learner, "learner_model_param");
    json_t *gb = json_object_get(learner, "gradient_booster");
    json_t *gmodel = booster_model(root);
    struct {
        json_t *obj;
        const char *key;
        json_t *value;
        const char *reason;
    } params[] = {
        {mparam, "num_target", json_string("0"), NULL},
        {mparam, "num_target", json_string("1000"), NULL},
        {mparam, "num_feature", json_integer(4), NULL},
        {mparam, "num_class", json_string("-3"), NULL},
        {mparam, "num_class", json_string("3"), "num_class"},
        {mparam, "base_score", json_string("[5E-1,5E-1]"), "base_score"},
        {mparam, "base_score", json_string("[5E-1"), "base_score"},
        {mparam, "base_score", json_string("[]"), "base_score"},
        {mparam, "base_score", json_string("[NaN]"), "base_score"},
        {mparam, "base_score", json_string("1.5"), "base_score"},
        {mparam, "base_score", json_string("-0.5"), "base_score"},
        {mparam, "boost_from_average", json_string("2"), NULL},
        {json_object_get(learner, "objective"), "name", json_string("reg:quantileerror"),
         "quantile_alpha"},
        {json_object_get(learner, "objective"), "name", json_string("reg:expectileerror"),
         "expectile_alpha"},
        {json_object_get(learner, "objective"), "name", json_string("binary:unknown"), "objective"},
        {gb, "name", json_string("gbforest"), "booster"},
        {gb, "weight_drop", json_array(), NULL},
        {gmodel, "weight_drop", json_array(), NULL},
        {gmodel, "tree_info", json_array(), NULL},
        {gmodel, "trees", json_object(), NULL},
    };
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
        json_t *saved = json_deep_copy(json_object_get(params[i].obj, params[i].key));
        json_object_set_new(params[i].obj, params[i].key, params[i].value);
        expect_refused_json(root, params[i].reason);
        if (saved)
            json_object_set_new(params[i].obj, params[i].key, saved);
        else
            json_object_del(params[i].obj, params[i].key);
    }
    json_t *info = json_object_get(gmodel, "tree_info");
    json_array_set_new(info, 1, json_integer(1));
    expect_refused_json(root, NULL);
    json_array_set_new(info, 1, json_string("0"));
    expect_refused_json(root, NULL);
    free(valid);
    json_decref(root);
}

/* A trained model with categorical splits, as JSON to mutate. */
static json_t *categorical_model(size_t num_target)
{
    train_case_t c = {"reg:squarederror",
                      "gbtree",
                      0,
                      NULL,
                      4,
                      4,
                      4,
                      400,
                      NULL,
                      .num_target = num_target,
                      .num_categorical = 2,
                      .categories = 40,
                      .params = num_target > 1 ? "multi_strategy=multi_output_tree" : NULL};
    BoosterHandle b = train(&c);
    size_t len;
    char *json = tu_take_booster_json(b, &len);
    json_t *root = sms_xjson_parse(json, len, NULL, 0);
    free(json);
    assert_non_null(root);
    return root;
}

/* The first tree with a categorical split, and that split's index in the
 * tree's categories_nodes. */
static json_t *categorical_tree(json_t *root)
{
    json_t *trees = json_object_get(booster_model(root), "trees");
    for (size_t t = 0; t < json_array_size(trees); t++) {
        json_t *tree = json_array_get(trees, t);
        if (json_array_size(json_object_get(tree, "categories_nodes")) > 0)
            return tree;
    }
    fail_msg("no categorical split in the model");
    return NULL;
}

/* Hostile category sets: out of range, not integers, segments outside the
 * categories, sizes that do not add up, nodes out of order, a categorical
 * split without a set, sets too large. */
static void test_refuse_hostile_categorical(void **state)
{
    (void)state;
    json_t *root = categorical_model(1);
    char *s = json_dumps(root, JSON_COMPACT);
    sms_forest_t *f = sms_forest_compile(s, strlen(s), NULL, 0);
    assert_non_null(f);
    assert_true(sms_forest_num_categorical(f) > 0);
    sms_forest_free(f);
    free(s);
    struct {
        const char *field;
        json_t *value; /* replaces element 0 */
        const char *reason;
    } edits[] = {
        {"categories", json_integer(-1), "category -1"},
        {"categories", json_integer(1 << 24), "category 16777216"},
        {"categories", json_integer(2147483647), "category"},
        {"categories", json_real(1.5), "not an integer"},
        {"categories", json_string("NaN"), "not an integer"},
        {"categories_sizes", json_integer(1000000000), "outside"},
        {"categories_sizes", json_integer(0), "outside"},
        {"categories_sizes", json_integer(-1), "outside"},
        {"categories_segments", json_integer(-1), "outside"},
        {"categories_segments", json_integer(1000000), "outside"},
        {"categories_nodes", json_integer(100000), "categorical node"},
        {"categories_nodes", json_integer(-1), "categorical node"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        json_t *copy = json_deep_copy(root);
        json_t *tree = categorical_tree(copy);
        assert_int_equal(
            json_array_set_new(json_object_get(tree, edits[i].field), 0, edits[i].value), 0);
        expect_refused_json(copy, edits[i].reason);
        json_decref(copy);
    }
    /* The arrays' lengths disagree. */
    const char *arrays[] = {"categories_nodes", "categories_segments", "categories_sizes"};
    for (size_t i = 0; i < 3; i++) {
        json_t *copy = json_deep_copy(root);
        json_array_append_new(json_object_get(categorical_tree(copy), arrays[i]), json_integer(0));
        expect_refused_json(copy, "do not match");
        json_decref(copy);
    }
    /* A categorical split that categories_nodes does not list, and a
     * listed node that is numerical. */
    json_t *copy = json_deep_copy(root);
    json_t *tree = categorical_tree(copy);
    json_int_t node =
        json_integer_value(json_array_get(json_object_get(tree, "categories_nodes"), 0));
    json_array_set_new(json_object_get(tree, "split_type"), (size_t)node, json_integer(0));
    expect_refused_json(copy, "categorical node");
    json_decref(copy);
    copy = json_deep_copy(root);
    tree = categorical_tree(copy);
    json_object_set_new(tree, "categories_nodes", json_array());
    json_object_set_new(tree, "categories_segments", json_array());
    json_object_set_new(tree, "categories_sizes", json_array());
    expect_refused_json(copy, "without categories");
    json_decref(copy);
    /* Nodes out of order: two sets listed backwards. */
    copy = json_deep_copy(root);
    tree = categorical_tree(copy);
    json_t *nodes = json_object_get(tree, "categories_nodes");
    if (json_array_size(nodes) >= 2) {
        json_t *first = json_deep_copy(json_array_get(nodes, 0));
        json_array_set(nodes, 0, json_array_get(nodes, 1));
        json_array_set_new(nodes, 1, first);
        expect_refused_json(copy, "ascending");
    }
    json_decref(copy);
    /* Every set as large as XGBoost allows (2^24 - 1: 2^19 words each):
     * more than the native evaluator keeps. */
    copy = json_deep_copy(root);
    json_t *trees = json_object_get(booster_model(copy), "trees");
    size_t sets = 0;
    for (size_t t = 0; t < json_array_size(trees); t++) {
        json_t *tree_t = json_array_get(trees, t);
        json_t *cats = json_object_get(tree_t, "categories");
        sets += json_array_size(json_object_get(tree_t, "categories_nodes"));
        for (size_t k = 0; k < json_array_size(cats); k++)
            json_array_set_new(cats, k, json_integer((1 << 24) - 1));
    }
    print_message("  %zu category sets of 2^19 words each\n", sets);
    assert_true(sets > 8);
    expect_refused_json(copy, "words");
    json_decref(copy);
    /* Categories merely large are fine, and still match the C API. */
    copy = json_deep_copy(root);
    json_t *cats = json_object_get(categorical_tree(copy), "categories");
    json_array_set_new(cats, 0, json_integer(1000));
    check_parity_json(copy, "categorical with a category of 1000");
    json_decref(copy);
    json_decref(root);
}

/* Vector leaves that do not fit the model: leaf indices past leaf_weights,
 * leaf_weights not a whole number of leaves, a leaf size other than the
 * targets, non-finite leaf values. */
static void test_refuse_hostile_vector(void **state)
{
    (void)state;
    json_t *root = categorical_model(3);
    char *s = json_dumps(root, JSON_COMPACT);
    sms_forest_t *f = sms_forest_compile(s, strlen(s), NULL, 0);
    assert_non_null(f);
    assert_int_equal(sms_forest_leaf_size(f), 3);
    sms_forest_free(f);
    free(s);
    json_t *copy = json_deep_copy(root);
    json_t *weights = json_object_get(tree0(copy, NULL), "leaf_weights");
    json_array_remove(weights, json_array_size(weights) - 1);
    expect_refused_json(copy, NULL);
    json_array_remove(weights, json_array_size(weights) - 1);
    json_array_remove(weights, json_array_size(weights) - 1);
    expect_refused_json(copy, "leaf_weights");
    json_decref(copy);
    copy = json_deep_copy(root);
    json_array_set_new(json_object_get(tree0(copy, NULL), "leaf_weights"), 0,
                       json_string("Infinity"));
    expect_refused_json(copy, "not a number");
    json_decref(copy);
    copy = json_deep_copy(root);
    json_object_set_new(json_object_get(tree0(copy, NULL), "tree_param"), "size_leaf_vector",
                        json_string("2"));
    expect_refused_json(copy, "values per leaf");
    json_decref(copy);
    copy = json_deep_copy(root);
    json_object_del(tree0(copy, NULL), "leaf_weights");
    expect_refused_json(copy, "2.0-3.1");
    json_decref(copy);
    copy = json_deep_copy(root);
    json_t *mparam = json_object_get(json_object_get(copy, "learner"), "learner_model_param");
    json_object_set_new(mparam, "base_score", json_string("[1E0,2E0]"));
    expect_refused_json(copy, "base_score");
    json_object_set_new(mparam, "num_target", json_string("2"));
    expect_refused_json(copy, "values per leaf");
    json_decref(copy);
    /* A leaf's right child names its values: any in range is XGBoost's
     * choice too. */
    copy = json_deep_copy(root);
    json_t *right = json_object_get(tree0(copy, NULL), "right_children");
    json_t *left = json_object_get(tree0(copy, NULL), "left_children");
    for (size_t i = 0; i < json_array_size(left); i++)
        if (json_integer_value(json_array_get(left, i)) == -1)
            json_array_set_new(right, i, json_integer(0));
    check_parity_json(copy, "vector leaves all naming leaf 0");
    json_array_set_new(right, json_array_size(right) - 1, json_integer(-1));
    expect_refused_json(copy, "leaf_weights");
    json_decref(copy);
    json_decref(root);
}
/* A forest compiled from damaged bytes: probed and predicted (sealed in
 * between when `seal`) and freed; or refused (NULL) with a reason in why. */
static bool damaged_outcome(sms_forest_t *f, const char *why, unsigned iter, bool seal)
{
    if (tu_refused(f, why))
        return false;
    size_t nf = sms_forest_num_feature(f), no = sms_forest_num_output(f);
    float *x = malloc((nf ? nf : 1) * 20 * sizeof *x);
    float *out = malloc(no * 20 * sizeof *out);
    sms_forest_probe(f, iter, 20, x);
    predict(f, x, 20, out);
    if (seal)
        sms_forest_seal(f);
    predict(f, x, 1, out);
    if (seal)
        predict(f, x, 20, out);
    free(x);
    free(out);
    sms_forest_free(f);
    return true;
}

/* One damaged model: compiled and predicted, or refused with a reason. */
static bool damaged_forest(const void *bytes, size_t len, unsigned iter)
{
    char why[128];
    return damaged_outcome(sms_forest_compile(bytes, len, why, sizeof why), why, iter, false);
}

/* Random byte damage to a valid model: any outcome but a crash, a hang or
 * a forest that misbehaves is fine. */
static void damage(json_t *root, const char *label)
{
    char *valid = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    /* A third of the damage under an emulator (24 s of 3 x 3000 there). */
    const int iters = tu_emulated() ? 1000 : 3000;
    size_t compiled = tu_damage_json(valid, strlen(valid), iters, damaged_forest);
    print_message("  %zu of %d damaged %s models still compiled (and predicted)\n", compiled, iters,
                  label);
    free(valid);
}

/* One damaged UBJSON model: compiled and predicted (sealed too), or refused
 * with a reason. */
static bool damaged_ubj(const void *bytes, size_t len, unsigned iter)
{
    char why[128];
    return damaged_outcome(sms_forest_compile_ubj(bytes, len, why, sizeof why), why, iter, true);
}

/* XGBoost's UBJSON of a model, cut at every length (always refused) and
 * with 1 to 4 random bytes replaced, some by markers (a fixed seed): any
 * outcome but a crash, a hang or a forest that misbehaves is fine. */
static void damage_ubj(json_t *root, const char *label)
{
    char *s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(root);
    BoosterHandle b = tu_booster_load(s, strlen(s));
    free(s);
    size_t len;
    unsigned char *valid = booster_ubj(b, &len);
    XGBoosterFree(b);
    const size_t step = tu_emulated() ? 7 : 1;
    for (size_t n = 1; n < len; n += step) {
        void *g = tu_guarded_copy(valid, n);
        assert_false(damaged_ubj(g, n, 0));
        tu_guarded_free(g, n);
    }
    const int iters = tu_emulated() ? 1000 : 3000;
    static const char markers[] = "{}[]$#iUIlLdDSZTFNHC";
    unsigned char *buf = malloc(len);
    assert_non_null(buf);
    uint64_t rng = 1234;
    size_t compiled = 0;
    for (int iter = 0; iter < iters; iter++) {
        memcpy(buf, valid, len);
        int flips = 1 + (int)(tu_rand32(&rng) % 4);
        for (int k = 0; k < flips; k++) {
            uint32_t r = tu_rand32(&rng);
            buf[tu_rand32(&rng) % len] =
                r % 2 ? (unsigned char)(r >> 8) : (unsigned char)markers[(r >> 8) % 20];
        }
        void *g = tu_guarded_copy(buf, len);
        compiled += damaged_ubj(g, len, (unsigned)iter);
        tu_guarded_free(g, len);
    }
    print_message("  %zu of %d damaged %s UBJSON models still compiled (and predicted)\n", compiled,
                  iters, label);
    free(buf);
    free(valid);
}

static void test_ubj_hostile_bytes(void **state)
{
    (void)state;
    damage_ubj(small_model(), "dart");
    damage_ubj(categorical_model(1), "categorical");
    damage_ubj(categorical_model(3), "categorical vector-leaf");
}

static void test_hostile_bytes(void **state)
{
    (void)state;
    damage(small_model(), "dart");
    damage(categorical_model(1), "categorical");
    damage(categorical_model(3), "categorical vector-leaf");
}

static void test_probe_deterministic(void **state)
{
    (void)state;
    train_case_t c = {"reg:squarederror", "gbtree", 0, NULL, 8, 10, 4, 300, NULL, 0, 0, 0, NULL};
    BoosterHandle b = train(&c);
    size_t len;
    char *json = tu_booster_json(b, &len);
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
        cmocka_unit_test(test_parity_multi_output),
        cmocka_unit_test(test_parity_categorical),
        cmocka_unit_test(test_category_rule),
        cmocka_unit_test(test_parity_extreme_margins),
        cmocka_unit_test(test_parity_exp_margins),
        cmocka_unit_test(test_base_margins),
        cmocka_unit_test(test_fixture_matrix),
        cmocka_unit_test(test_deep_chain),
        cmocka_unit_test(test_refuse_gblinear),
        cmocka_unit_test(test_refuse_hostile),
        cmocka_unit_test(test_refuse_hostile_categorical),
        cmocka_unit_test(test_refuse_hostile_vector),
        cmocka_unit_test(test_hostile_bytes),
        cmocka_unit_test(test_ubj_refused),
        cmocka_unit_test(test_ubj_hostile_bytes),
        cmocka_unit_test(test_probe_deterministic),
        cmocka_unit_test(test_parity_edge_thresholds),
        cmocka_unit_test(test_parity_mixed_depths),
        cmocka_unit_test(test_dart_accumulation),
        cmocka_unit_test(test_flt_max_threshold),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
