/* Tests of the JSON-to-UBJSON transcoder: it takes exactly the texts
 * sms_xjson_parse takes and gives the same document (every input read from
 * right before a PROT_NONE page), edge cases, damaged models and random
 * bytes alike; its float32 values are strtof's for every kind of number
 * text; a tree's arrays are typed as XGBoost writes them, and only when
 * XGBoost reads them the same; and XGBoost loads every JSON model fixture's
 * UBJSON into the model it loads from the JSON. */
#define _GNU_SOURCE
#include "testutil.h"

#include <dirent.h>
#include <ftw.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "smserve/compat.h"
#include "smserve/model.h"
#include "smserve/transcode.h"
#include "smserve/ubjson.h"
#include "smserve/xjson.h"

#ifndef SMS_SOURCE_DIR
#error "SMS_SOURCE_DIR must name the repository root"
#endif
#define FIXTURE(name) SMS_SOURCE_DIR "/tests/fixtures/compat/" name

static char errmsg[256];

/* Transcodes from a guarded copy; checks the error contract. */
static unsigned char *transcode_n(const char *text, size_t len, size_t *out_len, bool *exact)
{
    void *g = tu_guarded_copy(text, len);
    assert_true(g != NULL || len == 0);
    unsigned char *out = (unsigned char *)"unset";
    strcpy(errmsg, "unset");
    int rc = sms_transcode_json(g, len, &out, out_len, exact, errmsg, sizeof errmsg);
    tu_guarded_free(g, len);
    if (rc == 0) {
        assert_non_null(out);
        assert_string_equal(errmsg, "");
        return out;
    }
    assert_int_equal(rc, -1);
    assert_null(out);
    assert_true(strncmp(errmsg, "byte ", 5) == 0);
    char *end;
    unsigned long long at = strtoull(errmsg + 5, &end, 10);
    assert_true(end != errmsg + 5 && strncmp(end, ": ", 2) == 0 && end[2] != '\0');
    assert_true(at <= len);
    return NULL;
}

static int depth_of(const char *text, size_t len)
{
    int depth = 0, max = 0, in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '[' || c == '{') {
            max = ++depth > max ? depth : max;
        } else if ((c == ']' || c == '}') && depth) {
            depth--;
        }
    }
    return max;
}

/* x (sms_xjson_parse's tree) and u (the transcoded UBJSON read back) are
 * the same document: reals as float32, rounded once from the text (x's
 * double rounded again, equal but at exact midpoints, which these inputs
 * do not hold), and the booleans of a typed default_left as 1 and 0. */
static bool same_document(const json_t *x, const json_t *u)
{
    if (json_is_real(x) && json_is_real(u))
        return (float)json_real_value(x) == (float)json_real_value(u);
    if (json_is_real(x) && json_is_string(u)) { /* out of float range */
        double d = json_real_value(x);
        const char *s = json_string_value(u);
        return isinf((float)d) && strcmp(s, d > 0 ? "Infinity" : "-Infinity") == 0;
    }
    if (json_is_real(x) && json_is_integer(u))
        return false;
    if (json_is_boolean(x) && json_is_integer(u))
        return json_integer_value(u) == (json_is_true(x) ? 1 : 0);
    if (json_typeof(x) != json_typeof(u))
        return false;
    if (json_is_array(x)) {
        if (json_array_size(x) != json_array_size(u))
            return false;
        for (size_t i = 0; i < json_array_size(x); i++) {
            if (!same_document(json_array_get(x, i), json_array_get(u, i)))
                return false;
        }
        return true;
    }
    if (json_is_object(x)) {
        if (json_object_size(x) != json_object_size(u))
            return false;
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)x, key, v)
        {
            json_t *w = json_object_get(u, key);
            if (!w || !same_document(v, w))
                return false;
        }
        return true;
    }
    return json_equal((json_t *)x, (json_t *)u);
}

/* The transcoder's verdict on text is sms_xjson_parse's, and what it
 * writes reads back as the same document. Returns whether it was taken. */
static bool agrees(const char *text, size_t len)
{
    size_t out_len;
    bool exact;
    unsigned char *out = transcode_n(text, len, &out_len, &exact);
    char xmsg[256];
    json_t *x = sms_xjson_parse(text, len, xmsg, sizeof xmsg);
    if (!out) {
        if (x && strstr(errmsg, "nesting deeper") &&
            depth_of(text, len) > SMS_TRANSCODE_MAX_DEPTH) {
            json_decref(x);
            return false;
        }
        if (x)
            fail_msg("refused what sms_xjson_parse takes: %s\n%.*s", errmsg, (int)len, text);
        return false;
    }
    if (!x)
        fail_msg("took what sms_xjson_parse refuses (%s):\n%.*s", xmsg, (int)len, text);
    char umsg[256];
    json_t *u = sms_ubjson_parse(out, out_len, umsg, sizeof umsg);
    if (!u)
        fail_msg("wrote UBJSON its reader refuses (%s):\n%.*s", umsg, (int)len, text);
    if (!same_document(x, u)) {
        char *xs = json_dumps(x, JSON_ENCODE_ANY | JSON_COMPACT);
        char *us = json_dumps(u, JSON_ENCODE_ANY | JSON_COMPACT);
        fail_msg("%.*s\nread as %s\nwritten as %s", (int)len, text, xs, us);
    }
    json_decref(x);
    json_decref(u);
    free(out);
    return true;
}

static bool agrees_s(const char *text)
{
    return agrees(text, strlen(text));
}

static void test_same_verdict(void **state)
{
    (void)state;
    const char *taken[] = {
        "{}",
        "[]",
        "0",
        "-0",
        "1.5",
        "-1.5e-3",
        "1E+2",
        "1e5",
        "\"\"",
        "true",
        "false",
        "null",
        "NaN",
        "Infinity",
        "-Infinity",
        "[NaN,Infinity,-Infinity]",
        " \t\r\n[ 1 , 2 ]\n",
        "{\"a\":{\"b\":[1,{\"c\":null}]},\"d\":\"e\"}",
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
        "\"\\u00e9\\u20AC\\ud83d\\ude00\"",
        "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
        "9223372036854775807",
        "-9223372036854775808",
        "123456789012345678",
        "1.7976931348623157e308",
        "1e-400",
        "3.5e38",
        "1e39",
        "0.000000000000000000000000001",
        "12345678901234567890.5",
        "1.00000000000000000000000000001",
        "0e999999",
        "{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,\"i\":9,\"j\":10,"
        "\"k\":11,\"l\":12,\"m\":13,\"n\":14,\"o\":15,\"p\":16,\"q\":17,\"r\":18}",
    };
    for (size_t i = 0; i < sizeof taken / sizeof taken[0]; i++) {
        if (!agrees_s(taken[i]))
            fail_msg("refused '%s': %s", taken[i], errmsg);
    }
    const char *refused[] = {
        "",
        " ",
        "[",
        "]",
        "{",
        "[1,]",
        "[,1]",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{1:2}",
        "{NaN:1}",
        "[1 2]",
        "01",
        "-01",
        "1.",
        ".5",
        "+1",
        "1e",
        "1e+",
        "-",
        "--1",
        "1.5.5",
        "0x10",
        "1a",
        "nan",
        "NAN",
        "inf",
        "-inf",
        "Inf",
        "+Infinity",
        "-NaN",
        "NaNa",
        "NaN1",
        "Infinityx",
        "Infinit",
        "-Infinit",
        "truex",
        "tru",
        "nul",
        "True",
        "[true false]",
        "\"abc",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\u12G4\"",
        "\"\\u0000\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "\"\\ud800x\"",
        "\"\x01\"",
        "\"\x80\"",
        "\"\xc0\x80\"",
        "\"\xed\xa0\x80\"",
        "\"\xf4\x90\x80\x80\"",
        "\"\xe2\x82\"",
        "\xef\xbb\xbf{}",
        "{\"a\":1,\"a\":2}",
        "{\"a\":1,\"b\":{\"a\":1,\"a\":2}}",
        "1 2",
        "{}}",
        "[]]",
        "9223372036854775808",
        "-9223372036854775809",
        "1e400",
        "-1e400",
        "[NaN NaN]",
        "{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,\"i\":9,\"j\":10,"
        "\"k\":11,\"l\":12,\"m\":13,\"n\":14,\"o\":15,\"p\":16,\"q\":17,\"m\":18}",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        if (agrees_s(refused[i]))
            fail_msg("took '%s'", refused[i]);
    }
    /* NUL bytes, in and out of strings */
    assert_false(agrees("[1,\0]", 5));
    assert_false(agrees("\"a\0\"", 4));
    assert_false(agrees("1\0", 2));
}

static void test_nesting(void **state)
{
    (void)state;
    size_t depths[] = {1, 127, 128, 129, 2000, 100000};
    for (size_t k = 0; k < sizeof depths / sizeof depths[0]; k++) {
        size_t depth = depths[k];
        char *doc = malloc(depth * 2 + 4);
        assert_non_null(doc);
        memset(doc, '[', depth);
        memcpy(doc + depth, "NaN", 3);
        memset(doc + depth + 3, ']', depth);
        size_t out_len;
        unsigned char *out = transcode_n(doc, depth * 2 + 3, &out_len, NULL);
        if (depth <= SMS_TRANSCODE_MAX_DEPTH) {
            if (!out)
                fail_msg("depth %zu: %s", depth, errmsg);
            assert_int_equal(out_len, depth * 2 + 5);
            free(out);
        } else {
            assert_null(out);
            assert_non_null(strstr(errmsg, "nesting deeper than 128"));
        }
        free(doc);
    }
}

/* Random bytes from JSON's alphabet, and damaged copies of real models:
 * the same verdict every time. */
static void test_hostile(void **state)
{
    (void)state;
    const char alphabet[] =
        "NaNInfinity-Infinity[]{}\",:\\ \n0123456789.eE+ -tfnul\x01\xff\xc3\xa9u";
    uint64_t seed = 0x7c0de;
    char buf[400];
    size_t taken = 0;
    for (int iter = 0; iter < 30000; iter++) {
        size_t n = tu_rand32(&seed) % sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = tu_rand32(&seed) % 4 ? alphabet[tu_rand32(&seed) % (sizeof alphabet - 1)]
                                          : (char)tu_rand32(&seed);
        taken += agrees(buf, n);
    }
    const char *models[] = {FIXTURE("xgb214-categorical.serve.json"),
                            FIXTURE("xgb341-multi-target.serve.json"),
                            FIXTURE("xgb341-stored-categories.serve.json")};
    size_t damaged_taken = 0;
    for (size_t k = 0; k < sizeof models / sizeof models[0]; k++) {
        size_t len;
        char *js = tu_read_file(models[k], &len);
        assert_non_null(js);
        assert_true(agrees(js, len));
        char *m = malloc(len);
        assert_non_null(m);
        for (int iter = 0; iter < 1500; iter++) {
            memcpy(m, js, len);
            int flips = 1 + (int)(tu_rand32(&seed) % 4);
            for (int f = 0; f < flips; f++)
                m[tu_rand32(&seed) % len] = alphabet[tu_rand32(&seed) % (sizeof alphabet - 1)];
            damaged_taken += agrees(m, len);
        }
        free(m);
        free(js);
    }
    /* both kinds of outcome were exercised */
    assert_true(damaged_taken > 100 && damaged_taken < 4500);
    unsigned char *out;
    size_t out_len;
    assert_int_equal(sms_transcode_json(NULL, 5, &out, &out_len, NULL, NULL, 0), -1);
    assert_null(out);
}

/* Every float in what the transcoder writes is strtof's for the same text:
 * shortest and longer forms of random floats, few-digit decimals, exact
 * midpoints between neighbouring floats, subnormals and the range's ends. */
static void test_floats_are_strtof(void **state)
{
    (void)state;
    size_t cap = 1 << 23, len = 0, count = 0;
    char *doc = malloc(cap);
    assert_non_null(doc);
    doc[len++] = '[';
    uint64_t seed = 0xf10a7;
    char tok[64];
    for (int i = 0; i < 120000; i++) {
        uint32_t r = tu_rand32(&seed), bits = tu_rand32(&seed);
        float f;
        memcpy(&f, &bits, sizeof f);
        if (!isfinite(f))
            continue;
        switch (r % 6) {
        case 0:
            snprintf(tok, sizeof tok, "%.9g", (double)f);
            break;
        case 1:
            snprintf(tok, sizeof tok, "%.*E", (int)(r / 8 % 9), (double)f);
            break;
        case 2: { /* the midpoint with the next float, exactly and cut */
            float g = nextafterf(f, INFINITY);
            double mid = (double)f / 2 + (double)g / 2;
            snprintf(tok, sizeof tok, "%.*g", r / 8 % 2 ? 40 : 9 + (int)(r / 16 % 9), mid);
            break;
        }
        case 3:
            snprintf(tok, sizeof tok, "%u.%uE%d", r % 1000, bits % 100000,
                     (int)(r / 1000 % 90) - 45);
            break;
        case 4:
            snprintf(tok, sizeof tok, "%.*f", (int)(r / 8 % 12), (double)(bits % 100000) / 7.0);
            break;
        default:
            snprintf(tok, sizeof tok, "%.17g", (double)f * (r % 2 ? 1e-30 : 1.0));
            break;
        }
        if (!strpbrk(tok, ".eE"))
            strcat(tok, ".0");
        size_t n = strlen(tok);
        if (len + n + 2 >= cap)
            break;
        memcpy(doc + len, tok, n);
        len += n;
        doc[len++] = ',';
        count++;
    }
    const char *edges[] = {"1.17549435E-38",
                           "1.1754942E-38",
                           "1.4E-45",
                           "7.0E-46",
                           "7.1E-46",
                           "3.4028235E38",
                           "3.4028236E38",
                           "3.40282357E38",
                           "1E39",
                           "-0.0",
                           "0.0",
                           "1.00000017881393432617187499",
                           "1.000000178813934326171875",
                           "1.00000017881393432617187501"};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        size_t n = strlen(edges[i]);
        memcpy(doc + len, edges[i], n);
        len += n;
        doc[len++] = ',';
        count++;
    }
    doc[len - 1] = ']';
    size_t out_len;
    unsigned char *out = transcode_n(doc, len, &out_len, NULL);
    assert_non_null(out);
    assert_int_equal(out_len, 2 + 5 * count);
    /* Walk the tokens again and the 'd' values beside them. */
    size_t at = 1, o = 1;
    for (size_t k = 0; k < count; k++) {
        size_t n = strcspn(doc + at, ",]");
        memcpy(tok, doc + at, n);
        tok[n] = '\0';
        at += n + 1;
        assert_int_equal(out[o], 'd');
        uint32_t got = (uint32_t)sms_ubjson_big_endian(out + o + 1, 4), want;
        float w = strtof(tok, NULL);
        memcpy(&want, &w, sizeof want);
        if (got != want)
            fail_msg("%s: 0x%08x, strtof 0x%08x", tok, got, want);
        o += 5;
    }
    free(out);
    free(doc);
}

/* The bytes a tree's arrays are written as. */
static void assert_typed(const char *json, const char *want, size_t want_len, bool want_exact)
{
    size_t out_len;
    bool exact;
    unsigned char *out = transcode_n(json, strlen(json), &out_len, &exact);
    assert_non_null(out);
    if (out_len != want_len || memcmp(out, want, want_len) != 0 || exact != want_exact) {
        char hex[512] = "";
        for (size_t i = 0; i < out_len && i < 120; i++)
            snprintf(hex + strlen(hex), sizeof hex - strlen(hex), "%02x ", out[i]);
        fail_msg("%s -> %s (exact %d)", json, hex, exact);
    }
    free(out);
}

#define L8(n)     "\0\0\0\0\0\0\0" n
#define KEY(k, n) "{L" L8(n) k

static void test_typed_arrays(void **state)
{
    (void)state;
    /* as XGBoost writes them */
    static const char f32[] = KEY("split_conditions", "\x10") "[$d#L" L8(
        "\x03") "\x3f\xc0\x00\x00\x7f\xc0\x00\x00\xff\x80\x00\x00}";
    assert_typed("{\"split_conditions\":[1.5,NaN,-Infinity]}", f32, sizeof f32 - 1, true);
    static const char i32[] =
        KEY("left_children", "\x0d") "[$l#L" L8("\x02") "\x00\x00\x00\x01\xff\xff\xff\xff}";
    assert_typed("{\"left_children\":[1,-1]}", i32, sizeof i32 - 1, true);
    static const char i64[] =
        KEY("categories_sizes", "\x10") "[$L#L" L8("\x01") "\x00\x00\x00\x01\x00\x00\x00\x00}";
    assert_typed("{\"categories_sizes\":[4294967296]}", i64, sizeof i64 - 1, true);
    static const char u8[] = KEY("default_left", "\x0c") "[$U#L" L8("\x03") "\x01\x00\xff}";
    assert_typed("{\"default_left\":[true,0,255]}", u8, sizeof u8 - 1, true);
    static const char empty[] = KEY("split_type", "\x0a") "[$U#L" L8("\x00") "}";
    assert_typed("{\"split_type\":[]}", empty, sizeof empty - 1, true);
    /* elements XGBoost reads otherwise from an untyped array stay untyped,
     * and say so */
    static const char ints[] = KEY("split_conditions", "\x10") "[L" L8("\x01") "]}";
    assert_typed("{\"split_conditions\":[1]}", ints, sizeof ints - 1, false);
    static const char big[] = KEY("parents", "\x07") "[L\0\0\0\0\x80\0\0\0]}";
    assert_typed("{\"parents\":[2147483648]}", big, sizeof big - 1, false);
    static const char bools[] = KEY("split_type", "\x0a") "[T]}";
    assert_typed("{\"split_type\":[true]}", bools, sizeof bools - 1, false);
    static const char mixed[] = KEY("base_weights", "\x0c") "[d\x3f\x80\x00\x00SL" L8("\x01") "x]}";
    assert_typed("{\"base_weights\":[1.0,\"x\"]}", mixed, sizeof mixed - 1, false);
    static const char nested[] = KEY("sum_hessian", "\x0b") "[[]]}";
    assert_typed("{\"sum_hessian\":[[]]}", nested, sizeof nested - 1, false);
    /* other keys' arrays are untyped; a designated key on a non-array is
     * written as it is */
    static const char other[] = KEY("weights", "\x07") "[d\x3f\x80\x00\x00]}";
    assert_typed("{\"weights\":[1.0]}", other, sizeof other - 1, true);
    static const char scalar[] = KEY("parents", "\x07") "L" L8("\x05") "}";
    assert_typed("{\"parents\":5}", scalar, sizeof scalar - 1, true);
}

/* XGBoost loaded from bytes, saved as JSON; NULL when it refuses to load
 * or to save it. */
static char *xgb_reads(const void *bytes, size_t len, size_t *out_len)
{
    BoosterHandle h;
    assert_int_equal(XGBoosterCreate(NULL, 0, &h), 0);
    char *copy = NULL;
    bst_ulong n;
    const char *saved;
    if (XGBoosterLoadModelFromBuffer(h, bytes, len) == 0 &&
        XGBoosterSaveModelToBuffer(h, "{\"format\": \"json\"}", &n, &saved) == 0) {
        copy = malloc(n);
        assert_non_null(copy);
        memcpy(copy, saved, n);
        *out_len = n;
    }
    XGBoosterFree(h);
    return copy;
}

static size_t models_seen, models_typed; /* every JSON model; those served */

static int check_model(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    size_t n = strlen(path);
    if (type != FTW_F || n < 5 || strcmp(path + n - 5, ".json") != 0)
        return 0;
    size_t len;
    char *js = tu_read_file(path, &len);
    assert_non_null(js);
    if (!strstr(js, "\"learner\"")) {
        free(js);
        return 0;
    }
    size_t out_len, a_len = 0, b_len = 0;
    bool exact;
    unsigned char *ubj = transcode_n(js, len, &out_len, &exact);
    models_seen++;
    if ((!ubj || !exact) && !strstr(path, "truncated"))
        fail_msg("%s: %s", path, ubj ? "not every tree array typed" : errmsg);
    /* Only what the checks pass reaches XGBoost (3.2+ crashes on some). */
    sms_model_info_t info;
    sms_diag_t diag;
    bool served = sms_compat_read(SMS_FMT_JSON, (unsigned char *)js, len, &info, &diag) == 0 &&
                  sms_compat_check(&info, sms_model_runtime_version(), false, &diag) == 0;
    if (ubj && exact && served) {
        models_typed++;
        char *a = xgb_reads(js, len, &a_len);
        char *b = xgb_reads(ubj, out_len, &b_len);
        if ((a == NULL) != (b == NULL))
            fail_msg("%s: XGBoost %s the JSON but %s its UBJSON", path, a ? "loads" : "refuses",
                     b ? "loads" : "refuses");
        if (a && (a_len != b_len || memcmp(a, b, a_len) != 0))
            fail_msg("%s: XGBoost reads the UBJSON into another model", path);
        free(a);
        free(b);
    }
    free(ubj);
    free(js);
    return 0;
}

static void test_xgboost_reads_the_same(void **state)
{
    (void)state;
    /* The committed models (every release, objective and booster): the
     * arm64 pass, which makes no python3-xgboost fixtures, runs this too. */
    const char *dirs[] = {SMS_SOURCE_DIR "/tests/fixtures",
                          SMS_SOURCE_DIR "/tests/matrix/fixtures"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        assert_int_equal(nftw(dirs[i], check_model, 16, FTW_PHYS), 0);
    print_message("%zu JSON models, %zu served: each loaded the same from its UBJSON\n",
                  models_seen, models_typed);
    assert_true(models_seen >= 250 && models_typed >= 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_verdict), cmocka_unit_test(test_nesting),
        cmocka_unit_test(test_hostile),      cmocka_unit_test(test_floats_are_strtof),
        cmocka_unit_test(test_typed_arrays), cmocka_unit_test(test_xgboost_reads_the_same),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
