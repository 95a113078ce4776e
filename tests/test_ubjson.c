/* Tests of the UBJSON reader: the tree it builds from XGBoost's .ubj equals
 * what sms_xjson_parse builds from the .json of the same model (NaN split
 * conditions included), every marker and container form, non-finite floats
 * as the dialect's strings, and hostile input (truncations, absurd counts,
 * deep nesting, random bytes), each placed right before a PROT_NONE page. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "smserve/ubjson.h"
#include "smserve/xjson.h"

#ifndef SMS_SOURCE_DIR
#error "SMS_SOURCE_DIR must name the repository root"
#endif
#define FIXTURE(name) SMS_SOURCE_DIR "/tests/fixtures/compat/" name

#define B(lit) (const unsigned char *)(lit), sizeof(lit) - 1

static char errmsg[256];

/* Parses from a guarded copy so that any over-read crashes. */
static json_t *parse(const unsigned char *bytes, size_t len)
{
    void *g = tu_guarded_copy(bytes, len);
    assert_true(g != NULL || len == 0);
    json_t *v = sms_ubjson_parse(g, len, errmsg, sizeof errmsg);
    tu_guarded_free(g, len);
    return v;
}

static void assert_refused(const unsigned char *bytes, size_t len)
{
    errmsg[0] = '\0';
    json_t *v = parse(bytes, len);
    if (v) {
        char *s = json_dumps(v, JSON_ENCODE_ANY);
        fail_msg("parsed %zu hostile bytes into %s", len, s ? s : "?");
    }
    assert_true(strncmp(errmsg, "byte ", 5) == 0);
}

static void assert_parses_to(const unsigned char *bytes, size_t len, const char *json)
{
    json_t *v = parse(bytes, len);
    if (!v)
        fail_msg("refused: %s", errmsg);
    json_error_t jerr;
    json_t *want = json_loads(json, JSON_DECODE_ANY, &jerr);
    assert_non_null(want);
    if (!json_equal(v, want)) {
        char *s = json_dumps(v, JSON_ENCODE_ANY);
        fail_msg("got %s, want %s", s, json);
    }
    json_decref(v);
    json_decref(want);
}

static void assert_same_model(const char *ubj_path, const char *json_path)
{
    size_t ulen, jlen;
    char *ubj = tu_read_file(ubj_path, &ulen);
    char *js = tu_read_file(json_path, &jlen);
    assert_non_null(ubj);
    assert_non_null(js);
    json_t *from_ubj = parse((const unsigned char *)ubj, ulen);
    if (!from_ubj)
        fail_msg("%s: %s", ubj_path, errmsg);
    json_t *from_json = sms_xjson_parse(js, jlen, errmsg, sizeof errmsg);
    if (!from_json)
        fail_msg("%s: %s", json_path, errmsg);
    json_t *a = tu_json_float32(from_ubj), *b = tu_json_float32(from_json);
    assert_true(json_equal(a, b));
    /* Integers must not have become reals (or the reverse). */
    json_t *tree0 = json_array_get(
        json_object_get(
            json_object_get(json_object_get(json_object_get(a, "learner"), "gradient_booster"),
                            "model"),
            "trees"),
        0);
    if (tree0) {
        assert_true(json_is_integer(json_array_get(json_object_get(tree0, "left_children"), 0)));
        json_t *cond = json_array_get(json_object_get(tree0, "split_conditions"), 0);
        assert_true(json_is_real(cond) || json_is_string(cond));
        assert_true(sms_xjson_number(cond, NULL));
    }
    json_decref(a);
    json_decref(b);
    json_decref(from_ubj);
    json_decref(from_json);
    free(ubj);
    free(js);
}

static void test_fixture_equals_json(void **state)
{
    (void)state;
    assert_same_model(FIXTURE("xgb174-binary-logistic.serve.ubj"),
                      FIXTURE("xgb174-binary-logistic.serve.json"));
    assert_same_model(FIXTURE("xgb20-quantile.refuse.ubj"), FIXTURE("xgb20-quantile.refuse.json"));
    /* real 2.1.4 / 3.4.1 models; 2.1.4's categorical splits hold NaN */
    assert_same_model(FIXTURE("xgb214-categorical.serve.ubj"),
                      FIXTURE("xgb214-categorical.serve.json"));
    assert_same_model(FIXTURE("xgb341-categorical.serve.ubj"),
                      FIXTURE("xgb341-categorical.serve.json"));
    assert_same_model(FIXTURE("xgb341-reg.serve.ubj"), FIXTURE("xgb341-reg.serve.json"));
    assert_same_model(FIXTURE("xgb313-reg.serve.ubj"), FIXTURE("xgb313-reg.serve.json"));
}

/* Non-finite floats become the strings sms_xjson_parse gives for XGBoost's
 * bare tokens, and sms_xjson_number reads them back. */
static void test_non_finite(void **state)
{
    (void)state;
    assert_parses_to(B("d\x7f\xc0\x00\x00"), "\"NaN\"");
    assert_parses_to(B("d\xff\xc0\x00\x01"), "\"NaN\""); /* sign and payload dropped */
    assert_parses_to(B("d\x7f\x80\x00\x00"), "\"Infinity\"");
    assert_parses_to(B("d\xff\x80\x00\x00"), "\"-Infinity\"");
    assert_parses_to(B("D\x7f\xf8\x00\x00\x00\x00\x00\x00"), "\"NaN\"");
    assert_parses_to(B("D\x7f\xf0\x00\x00\x00\x00\x00\x00"), "\"Infinity\"");
    assert_parses_to(B("D\xff\xf0\x00\x00\x00\x00\x00\x00"), "\"-Infinity\"");
    /* typed float arrays, as XGBoost writes split_conditions */
    assert_parses_to(B("[$d#i\x04\x7f\xc0\x00\x00\x3f\x00\x00\x00\xff\x80\x00\x00"
                       "\x00\x00\x00\x01"),
                     "[\"NaN\", 0.5, \"-Infinity\", 1.401298464324817e-45]");
    assert_parses_to(B("{i\x01"
                       "ad\x7f\x80\x00\x00}"),
                     "{\"a\": \"Infinity\"}");
    json_t *v = parse(B("[d\x7f\xc0\x00\x00"
                        "d\xff\x80\x00\x00"
                        "D\x40\x34\x00\x00\x00\x00\x00\x00]"));
    assert_non_null(v);
    double d;
    assert_true(sms_xjson_number(json_array_get(v, 0), &d) && isnan(d));
    assert_true(sms_xjson_number(json_array_get(v, 1), &d) && isinf(d) && d < 0);
    assert_true(sms_xjson_number(json_array_get(v, 2), &d) && d == 20.0);
    json_decref(v);
    /* 'H' stays finite-only: XGBoost never writes it */
    assert_refused(B("HU\x06"
                     "1e9999"));
}

static void test_gblinear_fixture(void **state)
{
    (void)state;
    size_t len;
    char *ubj = tu_read_file(FIXTURE("xgb174-gblinear.serve.ubj"), &len);
    assert_non_null(ubj);
    json_t *v = parse((const unsigned char *)ubj, len);
    assert_non_null(v);
    json_t *gb = json_object_get(json_object_get(v, "learner"), "gradient_booster");
    assert_string_equal(json_string_value(json_object_get(gb, "name")), "gblinear");
    /* (4 features + bias) weights, one output */
    assert_int_equal(json_array_size(json_object_get(json_object_get(gb, "model"), "weights")), 5);
    json_decref(v);
    free(ubj);
}

static void test_scalars(void **state)
{
    (void)state;
    assert_parses_to(B("Z"), "null");
    assert_parses_to(B("T"), "true");
    assert_parses_to(B("F"), "false");
    assert_parses_to(B("i\xff"), "-1");
    assert_parses_to(B("U\xff"), "255");
    assert_parses_to(B("I\x80\x00"), "-32768");
    assert_parses_to(B("l\x7f\xff\xff\xff"), "2147483647");
    assert_parses_to(B("L\x80\x00\x00\x00\x00\x00\x00\x00"), "-9223372036854775808");
    assert_parses_to(B("L\x00\x00\x00\x00\x00\x00\x01\x00"), "256");
    assert_parses_to(B("d\x3f\x00\x00\x00"), "0.5");
    assert_parses_to(B("D\x40\x34\x00\x00\x00\x00\x00\x00"), "20.0");
    assert_parses_to(B("C"
                       "a"),
                     "\"a\"");
    assert_parses_to(B("SU\x03"
                       "abc"),
                     "\"abc\"");
    assert_parses_to(B("Si\x00"), "\"\"");
    assert_parses_to(B("SU\x02\xc3\xa9"), "\"\xc3\xa9\"");
    assert_parses_to(B("HU\x02"
                       "42"),
                     "42");
    assert_parses_to(B("HU\x04"
                       "1.25"),
                     "1.25");
    assert_parses_to(B("NNZN"), "null");
}

static void test_containers(void **state)
{
    (void)state;
    assert_parses_to(B("[]"), "[]");
    assert_parses_to(B("{}"), "{}");
    assert_parses_to(B("[i\x01NU\x02]"), "[1, 2]");
    assert_parses_to(B("[#U\x02i\x01T"), "[1, true]");
    assert_parses_to(B("[$l#U\x02\x00\x00\x00\x01\xff\xff\xff\xff"), "[1, -1]");
    assert_parses_to(B("[$d#i\x02\x3f\x80\x00\x00\x40\x00\x00\x00"), "[1.0, 2.0]");
    assert_parses_to(B("[$U#L\x00\x00\x00\x00\x00\x00\x00\x00"), "[]");
    assert_parses_to(B("[[$Z#i\x01]"), "[[null]]");
    assert_parses_to(B("[$[#i\x02]]"), "[[], []]");
    assert_parses_to(B("{L\x00\x00\x00\x00\x00\x00\x00\x01"
                       "aSL\x00\x00\x00\x00\x00\x00\x00\x01"
                       "b}"),
                     "{\"a\": \"b\"}");
    assert_parses_to(B("{i\x01"
                       "a[]U\x01"
                       "b{}}"),
                     "{\"a\": [], \"b\": {}}");
    assert_parses_to(B("{#i\x01i\x01"
                       "ai\x05"),
                     "{\"a\": 5}");
    assert_parses_to(B("{$i#i\x02i\x01"
                       "a\x01i\x01"
                       "b\x02"),
                     "{\"a\": 1, \"b\": 2}");
    assert_parses_to(B("{Ni\x01"
                       "aNTN}"),
                     "{\"a\": true}");
}

static void test_malformed(void **state)
{
    (void)state;
    assert_refused((const unsigned char *)"", 0);
    assert_refused(B("N"));
    assert_refused(B("Q"));
    assert_refused(B("ZZ")); /* trailing bytes */
    assert_refused(B("["));
    assert_refused(B("{"));
    assert_refused(B("]"));
    assert_refused(B("{i\x01"
                     "a}")); /* key without a value */
    assert_refused(B("{Si\x01"
                     "aZ}"));          /* 'S' before a key is not how keys are written */
    assert_refused(B("{i\x01\x00Z}")); /* key with a NUL byte */
    assert_refused(B("{i\x01\xffZ}")); /* key not UTF-8 */
    assert_refused(B("{i\x01"
                     "aZi\x01"
                     "aT}"));        /* duplicate key */
    assert_refused(B("SU\x01\xff")); /* string not UTF-8 */
    assert_refused(B("Si\xff"
                     "a"));                  /* negative length */
    assert_refused(B("Sd\x3f\x00\x00\x00")); /* length not an integer */
    assert_refused(B("C\x80"));
    assert_refused(B("HU\x03"
                     "1x2"));
    assert_refused(B("HU\x00"));
    assert_refused(B("[$i]"));      /* '$' without '#' */
    assert_refused(B("[$N#i\x01")); /* noop is no element type */
    assert_refused(B("[$q#i\x01"
                     "a"));
    assert_refused(B("[#i\x02i\x01"));  /* fewer elements than counted */
    assert_refused(B("[#i\x01i\x01]")); /* a counted array has no ']' */
}

static void test_absurd_counts(void **state)
{
    (void)state;
    /* 2^62 elements declared in a few bytes */
    assert_refused(B("[$d#L\x40\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"));
    assert_refused(B("[$Z#L\x40\x00\x00\x00\x00\x00\x00\x00"));
    assert_refused(B("[$T#l\x7f\xff\xff\xff"));
    assert_refused(B("[#L\x40\x00\x00\x00\x00\x00\x00\x00Z"));
    assert_refused(B("{#L\x40\x00\x00\x00\x00\x00\x00\x00"));
    assert_refused(B("[$d#L\xff\xff\xff\xff\xff\xff\xff\xff"));                 /* -1 */
    assert_refused(B("[$L#l\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x01")); /* 16 of 8 */
    assert_refused(B("SL\x7f\xff\xff\xff\xff\xff\xff\xff"
                     "abc"));
    assert_refused(B("{L\x40\x00\x00\x00\x00\x00\x00\x00"
                     "aZ}"));
    assert_refused(B("HL\x40\x00\x00\x00\x00\x00\x00\x00"
                     "1"));
    /* Zero-byte element types may not declare more elements than bytes left. */
    assert_refused(B("[$Z#i\x05"));
}

static void test_nesting(void **state)
{
    (void)state;
    unsigned char deep[600];
    for (size_t depth = 127; depth <= 130; depth++) {
        memset(deep, '[', depth);
        memset(deep + depth, ']', depth);
        json_t *v = parse(deep, depth * 2);
        if (depth <= 128) {
            if (!v)
                fail_msg("depth %zu refused: %s", depth, errmsg);
            json_decref(v);
        } else {
            assert_null(v);
            assert_non_null(strstr(errmsg, "nesting"));
        }
    }
    /* Typed containers of containers count as nesting too. */
    memset(deep, 0, sizeof deep);
    size_t n = 0;
    for (int i = 0; i < 140; i++) {
        memcpy(deep + n, "[#i\x01", 4);
        n += 4;
    }
    deep[n++] = 'Z';
    assert_refused(deep, n);
}

static void test_every_truncation(void **state)
{
    (void)state;
    size_t len;
    char *ubj = tu_read_file(FIXTURE("xgb174-binary-logistic.serve.ubj"), &len);
    assert_non_null(ubj);
    for (size_t n = 0; n < len; n++)
        assert_refused((const unsigned char *)ubj, n);
    json_t *v = parse((const unsigned char *)ubj, len);
    assert_non_null(v);
    json_decref(v);
    free(ubj);
}

/* Flipped bytes and random input must be refused or parsed, never crash or
 * leak; the sanitizers and the guard page do the checking. */
static void test_random_and_mutated(void **state)
{
    (void)state;
    size_t len;
    char *ubj = tu_read_file(FIXTURE("xgb174-binary-logistic.serve.ubj"), &len);
    assert_non_null(ubj);
    unsigned char *m = malloc(len);
    assert_non_null(m);
    srand(12345);
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(m, ubj, len);
        int flips = 1 + rand() % 4;
        for (int f = 0; f < flips; f++)
            m[(size_t)rand() % len] = (unsigned char)rand();
        json_decref(parse(m, len));
    }
    unsigned char r[512];
    const char *markers = "{}[]$#iUIlLdDSHCZTFN";
    for (int iter = 0; iter < 5000; iter++) {
        size_t n = (size_t)rand() % sizeof r;
        for (size_t i = 0; i < n; i++)
            r[i] = rand() % 2 ? (unsigned char)markers[rand() % 20] : (unsigned char)rand();
        json_decref(parse(r, n));
    }
    free(m);
    free(ubj);
}

static void test_errmsg_optional(void **state)
{
    (void)state;
    assert_null(sms_ubjson_parse((const unsigned char *)"[", 1, NULL, 0));
    char small[8];
    assert_null(sms_ubjson_parse((const unsigned char *)"[", 1, small, sizeof small));
    assert_true(strlen(small) < sizeof small);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_equals_json),
        cmocka_unit_test(test_gblinear_fixture),
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_non_finite),
        cmocka_unit_test(test_containers),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_absurd_counts),
        cmocka_unit_test(test_nesting),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_random_and_mutated),
        cmocka_unit_test(test_errmsg_optional),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
