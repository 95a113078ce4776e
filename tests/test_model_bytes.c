/* What a loaded model holds: sms_model_bytes against the heap that loading
 * copies of a model really takes (mallinfo2, every arena), for members the
 * native evaluator serves (counted exactly, so the heap grows by that plus
 * malloc's chunk headers) and members on the C API (estimated, never
 * below the heap's growth); and that a native member, whose booster and
 * gate-only arrays are freed after the parity gate, predicts as the C API
 * does. Models: the served fixtures (SMS_FIXTURE_DIR/serve), a 1.0.2 model
 * whose trees are summed first (tests/matrix/fixtures), and a chain deeper
 * than the native evaluator takes, which keeps its booster. */
#include "testutil.h"

#include <jansson.h>
#include <malloc.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smserve/artifact.h"
#include "smserve/model.h"

static sms_model_t *load(const char *dir, bool native)
{
    sms_artifact_set_t set;
    if (sms_artifacts_scan(dir, sms_model_runtime_version(), false, &set) < 0) {
        sms_artifacts_report(&set, sms_model_runtime_version(), stderr);
        fail_msg("%s is refused", dir);
    }
    sms_model_t *m = NULL;
    sms_diag_t diag = {0};
    if (sms_model_load(&set, native, &m, &diag) < 0)
        fail_msg("%s does not load: %s", dir, diag.reason);
    sms_artifacts_free(&set);
    return m;
}

static bool served_natively(const sms_model_t *m)
{
    return strstr(sms_model_engine(m), "native evaluator") != NULL &&
           strstr(sms_model_engine(m), "XGBoost C API") == NULL;
}

/* Rows of values in [-3, 3), 10% missing (no infinities: gblinear's DMatrix
 * refuses them). */
static float *random_rows(size_t rows, size_t cols, uint64_t seed)
{
    float *x = malloc(rows * cols * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < rows * cols; i++) {
        uint32_t r = tu_rand32(&seed);
        x[i] = r % 10 == 0 ? NAN : (float)((int32_t)(r >> 1) % 3000000) / 1e6f;
    }
    return x;
}

/* The native engine's and the C API's predictions of the same rows are
 * within one float32 ulp of each other, as the parity gate demands. */
static void check_same_predictions(sms_model_t *native, sms_model_t *capi, const char *label)
{
    const size_t rows = 300, nf = sms_model_num_feature(native);
    float *x = random_rows(rows, nf, 42);
    sms_matrix_t a = {0}, b = {0};
    sms_error_t err;
    assert_int_equal(sms_model_predict(native, x, rows, &a, &err), 0);
    assert_int_equal(sms_model_predict(capi, x, rows, &b, &err), 0);
    assert_int_equal(a.rows * a.cols, b.rows * b.cols);
    for (size_t k = 0; k < a.rows * a.cols; k++) {
        if (isnan(a.values[k]) && isnan(b.values[k]))
            continue;
        int64_t d = tu_ordered(a.values[k]) - tu_ordered(b.values[k]);
        if (d > 1 || d < -1)
            fail_msg("%s: value %zu is %.9g natively, %.9g from XGBoost", label, k, a.values[k],
                     b.values[k]);
    }
    sms_matrix_free(&a);
    sms_matrix_free(&b);
    free(x);
}

/* AddressSanitizer's allocator is not the one mallinfo2 reports on. */
#if defined(__SANITIZE_ADDRESS__)
#define HEAP_MEASURED false
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HEAP_MEASURED false
#endif
#endif
#ifndef HEAP_MEASURED
#define HEAP_MEASURED true
#endif

static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* Loads one copy and frees it (the one-off state of XGBoost and of this
 * thread), then holds `copies`: the heap's growth per copy. *bytes gets
 * sms_model_bytes of one. */
static double heap_per_copy(const char *dir, bool native, size_t *bytes)
{
    enum { COPIES = 20 };
    sms_model_free(load(dir, native));
    sms_model_t *held[COPIES];
    size_t before = heap_in_use();
    for (int i = 0; i < COPIES; i++)
        held[i] = load(dir, native);
    double per_copy = ((double)heap_in_use() - (double)before) / COPIES;
    *bytes = sms_model_bytes(held[0]);
    for (int i = 0; i < COPIES; i++)
        sms_model_free(held[i]);
    return per_copy;
}

/* A native member's count is what its blocks hold (malloc_usable_size):
 * the heap grows by that and a chunk header per block, a few dozen at
 * most, give or take what the loads' one-off state moved (within 1 KB).
 * A member on the C API is estimated: never below the growth. */
static void check_bytes(const char *dir, const char *label)
{
    size_t native_bytes, capi_bytes;
    double native_heap = heap_per_copy(dir, true, &native_bytes);
    double capi_heap = heap_per_copy(dir, false, &capi_bytes);
    sms_model_t *m = load(dir, true);
    bool native = served_natively(m);
    sms_model_free(m);
    print_message("  %-34s native engine %8zu bytes (heap %8.0f)%s, C API %8zu (heap %8.0f)\n",
                  label, native_bytes, native_heap, native ? "" : " [on the C API]", capi_bytes,
                  capi_heap);
    if (native)
        assert_true(native_bytes < capi_bytes);
    if (!HEAP_MEASURED)
        return;
    if (native) {
        assert_true(fabs(native_heap - (double)native_bytes) <= 1024);
    } else {
        assert_true((double)native_bytes >= native_heap);
    }
    assert_true((double)capi_bytes >= capi_heap);
}

/* Every served fixture: the native engine predicts as the C API does, and
 * holds less. */
static void test_fixtures(void **state)
{
    (void)state;
    char *index = tu_path(SMS_FIXTURE_DIR, "serve/index.txt");
    FILE *f = fopen(index, "r");
    assert_non_null(f);
    char name[256];
    size_t native = 0, cases = 0;
    while (fscanf(f, "%255s", name) == 1) {
        char sub[300];
        snprintf(sub, sizeof sub, "serve/%s", name);
        char *dir = tu_path(SMS_FIXTURE_DIR, sub);
        sms_model_t *a = load(dir, true), *b = load(dir, false);
        check_same_predictions(a, b, name);
        native += served_natively(a);
        cases++;
        if (served_natively(a))
            assert_true(sms_model_bytes(a) < sms_model_bytes(b));
        sms_model_free(a);
        sms_model_free(b);
        free(dir);
    }
    fclose(f);
    free(index);
    print_message("  %zu fixtures, %zu served natively\n", cases, native);
    assert_true(cases > 10 && native > cases / 2);
}

static void test_heap(void **state)
{
    (void)state;
    static const char *const cases[] = {"gbtree-binary-logistic", "dart-multi-softprob",
                                        "gblinear-binary-logistic", "gbtree-multi-softmax"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char sub[300];
        snprintf(sub, sizeof sub, "serve/%s", cases[i]);
        char *dir = tu_path(SMS_FIXTURE_DIR, sub);
        check_bytes(dir, cases[i]);
        free(dir);
    }
}

/* A 1.0.2 model: its trees are summed before the base margin, which the
 * C API path finishes with the writer's objective and the native engine
 * does itself (from the forest compiled for that, not compiled twice). */
static void test_summed_first(void **state)
{
    (void)state;
    char *dir = tu_path(SMS_SOURCE_DIR, "tests/matrix/fixtures/1.0.2/binary-logistic/json");
    sms_model_t *a = load(dir, true), *b = load(dir, false);
    assert_true(served_natively(a));
    assert_non_null(strstr(sms_model_engine(a), "trees summed before the base margin"));
    assert_non_null(strstr(sms_model_engine(b), "trees summed before the base margin"));
    check_same_predictions(a, b, "1.0.2 binary-logistic");
    sms_model_free(a);
    sms_model_free(b);
    check_bytes(dir, "1.0.2 binary-logistic");
    free(dir);
}

/* fixture's model with its trees replaced by one chain `depth` splits deep
 * (node 2k splits into the leaf 2k + 1 and the next link 2k + 2), written
 * into a new directory (caller removes it). */
static char *chain_model_dir(const char *fixture, unsigned depth)
{
    size_t len;
    char *text = tu_read_file(fixture, &len);
    assert_non_null(text);
    json_t *root = json_loadb(text, len, 0, NULL);
    free(text);
    assert_non_null(root);
    json_t *learner = json_object_get(root, "learner");
    json_object_del(json_object_get(learner, "attributes"), "best_iteration");
    json_object_del(json_object_get(learner, "attributes"), "best_ntree_limit");
    size_t json_len;
    char *s = tu_chain_model(root, depth, &json_len);
    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, "xgboost-model.json");
    assert_int_equal(tu_write_file(path, s, json_len), 0);
    free(path);
    free(s);
    return dir;
}

/* A member the native compiler declines keeps its booster, and XGBoost
 * keeps the serialisation made for the compiler: both counted. */
static void test_declined_keeps_booster(void **state)
{
    (void)state;
    char *fixture = tu_path(SMS_FIXTURE_DIR, "serve/gbtree-reg-squarederror/xgboost-model.json");
    char *dir = chain_model_dir(fixture, 300);
    sms_model_t *a = load(dir, true), *b = load(dir, false);
    assert_false(served_natively(a));
    assert_non_null(strstr(sms_model_engine(a), "deeper"));
    check_same_predictions(a, b, "chain of 300");
    assert_true(sms_model_bytes(a) > sms_model_bytes(b));
    sms_model_free(a);
    sms_model_free(b);
    check_bytes(dir, "chain of 300 (declined)");
    tu_rmtree(dir);
    free(dir);
    free(fixture);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_heap),
        cmocka_unit_test(test_summed_first),
        cmocka_unit_test(test_declined_keeps_booster),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
