/* Tests of the XGBoost JSON dialect reader: NaN, Infinity and -Infinity in
 * every position a value may take, never in strings or as keys; error
 * offsets into the original text, checked against jansson's on a "strict
 * twin" where each token is swapped for a number of the same length; the
 * JSON and UBJSON of one real model reading the same; hostile input, each
 * placed right before a PROT_NONE page; and a multi-MB document in linear
 * time. */
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

static char errmsg[256];

/* Parses from a guarded copy so that any over-read crashes. */
static json_t *parse_n(const char *text, size_t len)
{
    void *g = tu_guarded_copy(text, len);
    assert_true(g != NULL || len == 0);
    errmsg[0] = 'x';
    errmsg[1] = '\0';
    json_t *v = sms_xjson_parse(g, len, errmsg, sizeof errmsg);
    tu_guarded_free(g, len);
    if (v)
        assert_string_equal(errmsg, "");
    return v;
}

static json_t *parse(const char *text)
{
    return parse_n(text, strlen(text));
}

static void assert_parses_to(const char *text, const char *want_json)
{
    json_t *v = parse(text);
    if (!v)
        fail_msg("'%s' refused: %s", text, errmsg);
    json_error_t jerr;
    json_t *want = json_loads(want_json, JSON_DECODE_ANY, &jerr);
    if (!want)
        fail_msg("bad expectation '%s': %s", want_json, jerr.text);
    if (!json_equal(v, want)) {
        char *got = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        fail_msg("'%s' parsed to %s, want %s", text, got, want_json);
    }
    json_decref(v);
    json_decref(want);
}

/* The offset N of "byte N: ..." in errmsg. */
static size_t error_offset(void)
{
    assert_true(strncmp(errmsg, "byte ", 5) == 0);
    char *end;
    unsigned long long n = strtoull(errmsg + 5, &end, 10);
    assert_true(end != errmsg + 5 && strncmp(end, ": ", 2) == 0 && end[2] != '\0');
    return (size_t)n;
}

/* A text with nothing to rewrite is refused exactly as jansson refuses it. */
static void assert_refused_like_jansson(const char *text)
{
    json_error_t jerr;
    json_t *strict = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (strict)
        fail_msg("bad test: '%s' parses", text);
    json_t *v = parse(text);
    if (v) {
        char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        fail_msg("'%s' parsed to %s", text, s);
    }
    if (error_offset() != (size_t)jerr.position || !strstr(errmsg, jerr.text))
        fail_msg("'%s': %s; jansson: byte %d: %s", text, errmsg, jerr.position, jerr.text);
}

/* The text with every NaN / Infinity / -Infinity outside strings swapped
 * for a number of the same length: what strict JSON the dialect means. */
static char *strict_twin(const char *text, size_t len)
{
    char *t = malloc(len + 1);
    assert_non_null(t);
    memcpy(t, text, len);
    t[len] = '\0';
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        if (in_string) {
            if (t[i] == '\\')
                i++;
            else if (t[i] == '"')
                in_string = 0;
        } else if (t[i] == '"') {
            in_string = 1;
        } else if (len - i >= 9 && memcmp(t + i, "-Infinity", 9) == 0) {
            memcpy(t + i, "-1.000000", 9);
            i += 8;
        } else if (len - i >= 8 && memcmp(t + i, "Infinity", 8) == 0) {
            memcpy(t + i, "1.000000", 8);
            i += 7;
        } else if (len - i >= 3 && memcmp(t + i, "NaN", 3) == 0) {
            memcpy(t + i, "1.0", 3);
            i += 2;
        }
    }
    return t;
}

/* A text whose tokens all stand as values is refused exactly where jansson
 * refuses its strict twin, with jansson's words. */
static void assert_refused_like_twin(const char *text)
{
    size_t len = strlen(text);
    char *twin = strict_twin(text, len);
    json_error_t jerr;
    json_t *strict = json_loadb(twin, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (strict)
        fail_msg("bad test: twin of '%s' parses", text);
    json_t *v = parse(text);
    assert_null(v);
    if (error_offset() != (size_t)jerr.position)
        fail_msg("'%s': %s; twin refused at byte %d: %s", text, errmsg, jerr.position, jerr.text);
    free(twin);
}

static void test_strict_json_unchanged(void **state)
{
    (void)state;
    const char *docs[] = {
        "{}",
        "[]",
        "0",
        "-1",
        "1.5e3",
        "\"s\"",
        "true",
        "false",
        "null",
        "{\"a\": [1, 2.5, -3e-2, {\"b\": null}], \"c\": \"d\\\"e\", \"N\": \"I\"}",
        " \n\t[ 1 , 2 ]\r\n ",
        "[-0, -0.0, 1E+2, 1e-2]",
        "\"\\u00e9\\n\"",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++)
        assert_parses_to(docs[i], docs[i]);
}

static void test_token_positions(void **state)
{
    (void)state;
    assert_parses_to("NaN", "\"NaN\"");
    assert_parses_to("Infinity", "\"Infinity\"");
    assert_parses_to("-Infinity", "\"-Infinity\"");
    assert_parses_to(" \n NaN \t", "\"NaN\"");
    assert_parses_to("[NaN]", "[\"NaN\"]");
    assert_parses_to("[NaN,Infinity,-Infinity]", "[\"NaN\",\"Infinity\",\"-Infinity\"]");
    assert_parses_to("[1,NaN,2]", "[1,\"NaN\",2]");
    assert_parses_to("[ -1 , -Infinity , -0.5 ]", "[-1,\"-Infinity\",-0.5]");
    assert_parses_to("[\nNaN\n,\nNaN\n]", "[\"NaN\",\"NaN\"]");
    assert_parses_to("{\"a\":NaN}", "{\"a\":\"NaN\"}");
    assert_parses_to("{\"a\" : Infinity , \"b\":-Infinity}",
                     "{\"a\":\"Infinity\",\"b\":\"-Infinity\"}");
    assert_parses_to("{\"a\":[NaN,{\"b\":[[Infinity]]}],\"c\":{\"d\":NaN}}",
                     "{\"a\":[\"NaN\",{\"b\":[[\"Infinity\"]]}],\"c\":{\"d\":\"NaN\"}}");
    assert_parses_to("[{\"a\":1},NaN,[NaN],{\"b\":NaN}]",
                     "[{\"a\":1},\"NaN\",[\"NaN\"],{\"b\":\"NaN\"}]");
    /* the split_conditions of a categorical split, as XGBoost writes them */
    assert_parses_to("{\"split_conditions\":[NaN,-8.49606E-1,1.1406634E0],\"x\":[]}",
                     "{\"split_conditions\":[\"NaN\",-0.849606,1.1406634],\"x\":[]}");
}

static void test_strings_untouched(void **state)
{
    (void)state;
    assert_parses_to("\"NaN\"", "\"NaN\"");
    assert_parses_to("[\"NaN\",NaN,\"-Infinity\"]", "[\"NaN\",\"NaN\",\"-Infinity\"]");
    assert_parses_to("{\"NaN\":NaN}", "{\"NaN\":\"NaN\"}");
    assert_parses_to("{\"Infinity\":[\"a NaN b\"]}", "{\"Infinity\":[\"a NaN b\"]}");
    /* escaped quotes do not end a string; escaped backslashes do not escape */
    assert_parses_to("[\"a\\\"NaN\",NaN]", "[\"a\\\"NaN\",\"NaN\"]");
    assert_parses_to("[\"\\\\\",NaN,\"\\\\\\\"NaN\"]", "[\"\\\\\",\"NaN\",\"\\\\\\\"NaN\"]");
    assert_parses_to("[\"{[,:\",NaN]", "[\"{[,:\",\"NaN\"]");
    assert_parses_to("{\"k\":\"}\",\"l\":NaN}", "{\"k\":\"}\",\"l\":\"NaN\"}");
}

static void test_refused(void **state)
{
    (void)state;
    /* Keys stay keys: a bare token there is no number position. */
    assert_refused_like_jansson("{NaN:1}");
    assert_refused_like_jansson("{\"a\":1,NaN:1}");
    assert_refused_like_jansson("[{\"a\":1},{Infinity:2}]");
    assert_refused_like_jansson("{\"a\":{\"b\":[1]},-Infinity:2}");
    /* Only the three exact tokens. */
    const char *bad[] = {
        "nan",        "NAN",           "inf",    "-inf",       "Inf",         "+Infinity",
        "-NaN",       "NaNa",          "NaN1",   "Infinityx",  "Infinit",     "-Infinit",
        "[NaN",       "[NaN,]",        "[,NaN]", "[NaN NaN]",  "{\"a\" NaN}", "{\"a\":NaN,}",
        "NaN NaN",    "[-Infinity-1]", "[1NaN]", "[NaN\"x\"]", "\"NaN",       "-",
        "[Infinity}", "{\"a\":[NaN}",  "NaN]",   "",           " ",           "[NaN,NaN",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *v = parse(bad[i]);
        if (v)
            fail_msg("'%s' parsed", bad[i]);
        (void)error_offset();
    }
    /* Duplicate keys and NUL characters are refused as for strict JSON. */
    assert_null(parse("{\"a\":NaN,\"a\":NaN}"));
    assert_null(parse("[\"\\u0000\",NaN]"));
    assert_null(parse_n("[NaN,\0]", 7));
    assert_int_equal(error_offset(), 5);
    assert_null(parse_n("1\0", 2)); /* jansson alone would take it */
    assert_int_equal(error_offset(), 1);
    assert_null(parse_n("Infinity\0", 9));
    assert_int_equal(error_offset(), 8);
}

static void test_error_offsets(void **state)
{
    (void)state;
    /* offsets after rewritten tokens are offsets into the original text */
    assert_refused_like_twin("[NaN, x]");
    assert_refused_like_twin("[NaN,Infinity,-Infinity,NaN,x]");
    assert_refused_like_twin("{\"a\":[NaN,NaN],\"b\":-Infinity,\"c\":tru}");
    assert_refused_like_twin("[NaN,\n NaN,\n  NaN\n  ]]");
    assert_refused_like_twin("[NaN, NaN");
    assert_refused_like_twin("{\"a\": NaN NaN}");
    assert_refused_like_twin("[Infinity Infinity]");
    assert_refused_like_twin("[-Infinity,\"\\x\"]");
    assert_refused_like_twin("[NaN,\"NaN\",Infinity,\"unterminated]");
    assert_refused_like_twin("{\"a\":NaN,\"a\":NaN}");
    assert_refused_like_twin("[NaN,1.5.5]");
    assert_refused_like_twin("[NaN] [NaN]");
    /* A long prefix of tokens: the offset still lands on the original. */
    size_t n = 5000;
    char *doc = malloc(n * 4 + 16);
    assert_non_null(doc);
    size_t len = 0;
    doc[len++] = '[';
    for (size_t i = 0; i < n; i++) {
        memcpy(doc + len, "NaN,", 4);
        len += 4;
    }
    memcpy(doc + len, "?]", 3);
    assert_refused_like_twin(doc);
    assert_true(error_offset() >= len);
    free(doc);
}

static void test_number(void **state)
{
    (void)state;
    double d = 7;
    json_t *v = json_real(2.5);
    assert_true(sms_xjson_number(v, &d));
    assert_true(d == 2.5);
    json_decref(v);
    v = json_integer(-3);
    assert_true(sms_xjson_number(v, &d));
    assert_true(d == -3);
    json_decref(v);
    v = json_string("NaN");
    assert_true(sms_xjson_number(v, &d));
    assert_true(isnan(d));
    assert_true(sms_xjson_number(v, NULL));
    json_decref(v);
    v = json_string("Infinity");
    assert_true(sms_xjson_number(v, &d));
    assert_true(isinf(d) && d > 0);
    json_decref(v);
    v = json_string("-Infinity");
    assert_true(sms_xjson_number(v, &d));
    assert_true(isinf(d) && d < 0);
    json_decref(v);
    const char *not_numbers[] = {"nan", "Inf", "-NaN", "1.5", "", "NaN ", "Infinityx"};
    for (size_t i = 0; i < sizeof not_numbers / sizeof not_numbers[0]; i++) {
        v = json_string(not_numbers[i]);
        d = 7;
        assert_false(sms_xjson_number(v, &d));
        assert_true(d == 7);
        json_decref(v);
    }
    v = json_stringn("NaN\0", 4);
    assert_false(sms_xjson_number(v, &d));
    json_decref(v);
    json_t *others[] = {json_true(), json_false(), json_null(), json_array(), json_object()};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        assert_false(sms_xjson_number(others[i], &d));
        json_decref(others[i]);
    }
    assert_false(sms_xjson_number(NULL, &d));
    assert_true(d == 7);
    /* the tokens of a parsed document read back as numbers */
    v = parse("[NaN,Infinity,-Infinity,1,0.5]");
    assert_non_null(v);
    double want[] = {NAN, INFINITY, -INFINITY, 1, 0.5};
    for (size_t i = 0; i < 5; i++) {
        assert_true(sms_xjson_number(json_array_get(v, i), &d));
        assert_true(isnan(want[i]) ? isnan(d) : d == want[i]);
    }
    json_decref(v);
}

/* The .json and .ubj that XGBoost 2.1.4 wrote for one categorical model
 * (NaN split conditions) read into the same tree; 1.7.4 and 2.0.3 write
 * the same token. */
static void test_real_models(void **state)
{
    (void)state;
    size_t jlen, ulen;
    char *js = tu_read_file(FIXTURE("xgb214-categorical.serve.json"), &jlen);
    char *ubj = tu_read_file(FIXTURE("xgb214-categorical.serve.ubj"), &ulen);
    assert_non_null(js);
    assert_non_null(ubj);
    assert_non_null(strstr(js, "NaN"));
    json_t *a = parse_n(js, jlen);
    if (!a)
        fail_msg("%s", errmsg);
    json_t *b = sms_ubjson_parse((const unsigned char *)ubj, ulen, errmsg, sizeof errmsg);
    if (!b)
        fail_msg("%s", errmsg);
    json_t *a32 = tu_json_float32(a), *b32 = tu_json_float32(b);
    assert_true(json_equal(a32, b32));
    json_t *tree0 = json_array_get(
        json_object_get(
            json_object_get(json_object_get(json_object_get(a, "learner"), "gradient_booster"),
                            "model"),
            "trees"),
        0);
    json_t *cond = json_array_get(json_object_get(tree0, "split_conditions"), 0);
    assert_string_equal(json_string_value(cond), "NaN");
    double d;
    assert_true(sms_xjson_number(cond, &d) && isnan(d));
    json_decref(a32);
    json_decref(b32);
    json_decref(a);
    json_decref(b);
    free(ubj);

    const char *more[] = {FIXTURE("xgb174-categorical.serve.json"),
                          FIXTURE("xgb203-categorical.serve.json"),
                          FIXTURE("xgb341-categorical.serve.json")};
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) {
        size_t len;
        char *text = tu_read_file(more[i], &len);
        assert_non_null(text);
        json_t *v = parse_n(text, len);
        if (!v)
            fail_msg("%s: %s", more[i], errmsg);
        json_decref(v);
        free(text);
    }

    /* Every truncation is refused, at an offset within the text. */
    for (size_t n = 0; n < jlen; n++) {
        json_t *v = parse_n(js, n);
        if (v)
            fail_msg("truncation to %zu bytes parsed", n);
        assert_true(error_offset() <= n);
    }
    free(js);
}

static void test_nesting(void **state)
{
    (void)state;
    /* jansson's limit (2048 values deep, the innermost one included)
     * holds with tokens at the bottom, and the scanner survives far deeper
     * input. */
    size_t depths[] = {2046, 2047, 2048, 100000};
    for (size_t k = 0; k < sizeof depths / sizeof depths[0]; k++) {
        size_t depth = depths[k];
        char *doc = malloc(depth * 2 + 4);
        assert_non_null(doc);
        memset(doc, '[', depth);
        memcpy(doc + depth, "NaN", 3);
        memset(doc + depth + 3, ']', depth);
        json_t *v = parse_n(doc, depth * 2 + 3);
        if (depth < 2048) {
            if (!v)
                fail_msg("depth %zu: %s", depth, errmsg);
            json_t *inner = v;
            while (json_is_array(inner))
                inner = json_array_get(inner, 0);
            assert_string_equal(json_string_value(inner), "NaN");
            json_decref(v);
        } else {
            assert_null(v);
            (void)error_offset();
        }
        free(doc);
    }
    /* objects and arrays interleaved: keys recognised at every level */
    char doc[4096];
    size_t len = 0;
    for (int i = 0; i < 300; i++)
        len += (size_t)snprintf(doc + len, sizeof doc - len, i % 2 ? "[" : "{\"k\":");
    memcpy(doc + len, "NaN", 3);
    len += 3;
    for (int i = 299; i >= 0; i--)
        doc[len++] = i % 2 ? ']' : '}';
    doc[len] = '\0';
    json_t *v = parse(doc);
    if (!v)
        fail_msg("%s", errmsg);
    json_decref(v);
}

/* Hostile bytes: refused with an offset inside the input, or parsed into a
 * tree that serialises; never a crash, an over-read or a leak. */
static void test_hostile(void **state)
{
    (void)state;
    const char alphabet[] = "NaNInfinity-Infinity[]{}\",:\\ \n0123456789.eE+ -tfnul\x01\xff";
    uint64_t seed = 0x5eed;
    char buf[600];
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = tu_rand32(&seed) % sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = tu_rand32(&seed) % 4 ? alphabet[tu_rand32(&seed) % (sizeof alphabet - 1)]
                                          : (char)tu_rand32(&seed);
        json_t *v = parse_n(buf, n);
        if (v) {
            char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            assert_non_null(s);
            free(s);
            json_decref(v);
        } else {
            assert_true(error_offset() <= n);
        }
    }
    /* Mutations of a real model with NaN tokens. */
    size_t len;
    char *js = tu_read_file(FIXTURE("xgb214-categorical.serve.json"), &len);
    assert_non_null(js);
    char *m = malloc(len);
    assert_non_null(m);
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(m, js, len);
        int flips = 1 + (int)(tu_rand32(&seed) % 4);
        for (int f = 0; f < flips; f++)
            m[tu_rand32(&seed) % len] = alphabet[tu_rand32(&seed) % (sizeof alphabet - 1)];
        json_t *v = parse_n(m, len);
        if (v)
            json_decref(v);
        else
            assert_true(error_offset() <= len);
    }
    free(m);
    free(js);
    /* NULL text is an empty document */
    assert_null(sms_xjson_parse(NULL, 5, errmsg, sizeof errmsg));
    assert_int_equal(error_offset(), 0);
}

/* A multi-MB document full of tokens parses in time linear in its size. */
static void test_large_document(void **state)
{
    (void)state;
    size_t tokens = 400000;
    char *doc = malloc(tokens * 12 + 16);
    assert_non_null(doc);
    size_t len = 0;
    doc[len++] = '[';
    for (size_t i = 0; i < tokens; i++) {
        const char *t = i % 3 == 0 ? "NaN," : i % 3 == 1 ? "-Infinity," : "1.25E-1,";
        size_t n = strlen(t);
        memcpy(doc + len, t, n);
        len += n;
    }
    doc[len - 1] = ']';
    double t0 = tu_now_s();
    json_t *v = sms_xjson_parse(doc, len, errmsg, sizeof errmsg);
    double elapsed = tu_now_s() - t0;
    if (!v)
        fail_msg("%s", errmsg);
    assert_int_equal(json_array_size(v), tokens);
    assert_string_equal(json_string_value(json_array_get(v, tokens - 3)), "-Infinity");
    json_decref(v);
    /* jansson's own time for the tree dominates; a quadratic pass would not
     * finish in this bound. */
    if (elapsed > 10.0 * tu_slow_factor())
        fail_msg("%zu bytes took %.2f s", len, elapsed);
    free(doc);

    /* Strings full of escapes, unterminated or not: read once. */
    size_t n = 4 << 20;
    char *hostile = malloc(n + 16);
    assert_non_null(hostile);
    for (int terminated = 0; terminated < 2; terminated++) {
        memcpy(hostile, "[NaN,\"", 6);
        len = 6;
        while (len < n) {
            memcpy(hostile + len, "\\\"", 2);
            len += 2;
        }
        if (terminated) {
            memcpy(hostile + len, "\"]", 2);
            len += 2;
        }
        t0 = tu_now_s();
        v = sms_xjson_parse(hostile, len, errmsg, sizeof errmsg);
        elapsed = tu_now_s() - t0;
        if (terminated) {
            if (!v)
                fail_msg("%s", errmsg);
            json_decref(v);
        } else {
            assert_null(v);
        }
        if (elapsed > 5.0 * tu_slow_factor())
            fail_msg("%zu bytes of escapes took %.2f s", len, elapsed);
    }
    free(hostile);
}

static void test_errmsg_optional(void **state)
{
    (void)state;
    assert_null(sms_xjson_parse("[NaN", 4, NULL, 0));
    char small[8];
    assert_null(sms_xjson_parse("[NaN", 4, small, sizeof small));
    assert_true(strlen(small) < sizeof small);
    assert_true(strncmp(small, "byte 4", 6) == 0);
    json_t *v = sms_xjson_parse("[NaN]", 5, NULL, 0);
    assert_non_null(v);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strict_json_unchanged),
        cmocka_unit_test(test_token_positions),
        cmocka_unit_test(test_strings_untouched),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_error_offsets),
        cmocka_unit_test(test_number),
        cmocka_unit_test(test_real_models),
        cmocka_unit_test(test_nesting),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_large_document),
        cmocka_unit_test(test_errmsg_optional),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
