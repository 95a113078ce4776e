/* sms_jsonlines_decode: the corpus body, what SageMaker's JSONLinesSerializer
 * writes for lists and for dicts, blank lines and CRLF, the messages naming
 * line and column, agreement with sms_json_decode on the same rows, and
 * hostile bodies placed right before a PROT_NONE page. */
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smserve/jsonlines.h"
#include "smserve/jsonreq.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(void)
{
    return tu_rand32(&rng_state);
}

static void corpus_body(void **state)
{
    (void)state;
    char *dir = tu_aws_corpus("requests/jsonlines.jsonl");
    char *path = tu_path(dir, "requests/jsonlines.jsonl");
    size_t len;
    char *body = tu_read_file(path, &len);
    assert_non_null(body);
    const float want[] = {0.5f, 4.25f, 9.0f,  1.75f, 2.5f,  6.0f,
                          4.0f, 9.5f,  2.25f, 6.75f, 0.25f, 8.5f};
    sms_matrix_t m = {0};
    sms_error_t err = {0};
    assert_int_equal(tu_decode_guarded(sms_jsonlines_decode, body, len, 6, &m, &err), 0);
    tu_assert_matrix_equal(&m, 2, 6, want);
    assert_int_equal(tu_decode_guarded(sms_jsonlines_decode, body, len, 0, &m, &err), 0);
    tu_assert_matrix_equal(&m, 2, 6, want);
    assert_int_equal(tu_decode_guarded(sms_jsonlines_decode, body, len, 5, &m, &err), -1);
    assert_string_equal(err.msg, "line 1 has 6 values, expected 5");
    sms_matrix_free(&m);
    free(body);
    free(path);
    free(dir);
}

static void shapes(void **state)
{
    (void)state;
    const float two_rows[] = {1, 2, 3, 4, 5, 6}, with_nan[] = {NAN, 2, NAN};
    const tu_decode_case_t cases[] = {
        /* sagemaker.serializers.JSONLinesSerializer (v2): "\n".join(json.dumps(e)
         * for e in data), no final newline; a list of lists, then of dicts */
        TU_DECODES("[1, 2, 3]\n[4, 5, 6]", 0, 2, 3, two_rows),
        TU_DECODES("[1.0, 2.0, 3.0]\n[4.0, 5.0, 6.0]", 0, 2, 3, two_rows),
        TU_DECODES("{\"features\": [1, 2, 3]}\n{\"features\": [4, 5, 6]}", 3, 2, 3, two_rows),
        TU_DECODES("[1, 2, 3]\n[4, 5, 6]\n", 0, 2, 3, two_rows),
        /* no final newline, CRLF, blank and whitespace lines, a BOM */
        TU_DECODES("[1,2,3]\n[4,5,6]", 0, 2, 3, two_rows),
        TU_DECODES("[1,2,3]\r\n[4,5,6]\r\n", 0, 2, 3, two_rows),
        TU_DECODES("\n\n  \t\r\n[1,2,3]\n\n\r\n[4,5,6]\n\n", 0, 2, 3, two_rows),
        TU_DECODES("\xEF\xBB\xBF[1,2,3]\n[4,5,6]\n", 0, 2, 3, two_rows),
        TU_DECODES("  [ 1 , 2 , 3 ]  \n\t{ \"features\" : [4,5,6] }\t\n", 0, 2, 3, two_rows),
        /* the two shapes mixed; other members validated and ignored, in any order */
        TU_DECODES(
            "[1,2,3]\n{\"label\": {\"a\": [1, \"x\"]}, \"features\": [4,5,6], \"id\": \"r2\"}\n", 0,
            2, 3, two_rows),
        /* null is missing */
        TU_DECODES("[null, 2, null]\n", 3, 1, 3, with_nan),
        TU_DECODES("{\"features\": [null, 2e0, null]}", 0, 1, 3, with_nan),
        /* NaN too: what json.dumps writes for a NumPy NaN */
        TU_DECODES("[NaN, 2, NaN]\n", 3, 1, 3, with_nan),
        /* nothing: 0 rows, out->cols is expect_cols */
        TU_DECODES("", 7, 0, 7, NULL),
        TU_DECODES("\n\r\n \n", 7, 0, 7, NULL),
        TU_DECODES("\xEF\xBB\xBF", 0, 0, 0, NULL),
    };
    tu_check_decode_cases(sms_jsonlines_decode, cases, TU_COUNT(cases));
}

static void messages(void **state)
{
    (void)state;
    static const tu_decode_case_t cases[] = {
        TU_REFUSES("[1,2,3]\n[4,5]\n", 0, "line 2 has 2 values, expected 3"),
        TU_REFUSES("[1,2,3]\n\n[4,5]\n", 3, "line 3 has 2 values, expected 3"),
        TU_REFUSES("[1,2]\n", 3, "line 1 has 2 values, expected 3"),
        TU_REFUSES("[]\n", 0, "line 1 has no values"),
        TU_REFUSES("[1,2,3]\n[1,\"abc\",3]\n", 0,
                   "line 2, column 2 (byte 11): '\"abc\"' is not a number"),
        TU_REFUSES(
            "[1,2,3]\n[1,2,nan]\n", 0,
            "line 2, column 3 (byte 13): 'nan' is not a number (null or NaN is a missing value)"),
        TU_REFUSES("[1,2,3]\n[1,2,1e39]\n", 0,
                   "line 2, column 3 (byte 13): '1e39' is beyond float32's range (+-3.4028235e38), "
                   "which XGBoost refuses"),
        TU_REFUSES("[1,[2],3]\n", 0, "line 1, column 2 (byte 3): a list is not a number"),
        TU_REFUSES("[[1,2,3],[4,5,6]]\n", 0, "line 1, column 1 (byte 1): a list is not a number"),
        TU_REFUSES(
            "[1,2,3] [4,5,6]\n", 0,
            "line 1, byte 8: unexpected data after the JSON document (one document per line)"),
        TU_REFUSES(
            "[1,2,3]\n{\"features\": [1,2,3]}{\"features\": [4,5,6]}\n", 0,
            "line 2, byte 29: unexpected data after the JSON document (one document per line)"),
        TU_REFUSES("[1,2,3\n4,5,6]\n", 0,
                   "line 1, byte 6: unexpected end of input, expected ',' or ']'"),
        TU_REFUSES("[1,2,3]\n{\"label\": 1}\n", 0, "line 2 has no \"features\" key"),
        TU_REFUSES("{\"features\": [1], \"features\": [2]}", 0,
                   "byte 18: line 1 has \"features\" twice"),
        TU_REFUSES(
            "[1,2,3]\n\"abc\"\n", 0,
            "line 2, byte 8: expected a list of feature values or an object with \"features\""),
        TU_REFUSES("{\"instances\": [[1,2,3]]}\n", 0, "line 1 has no \"features\" key"),
        TU_REFUSES(
            "{\"features\": [1], \"x\": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
            "[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
            0, "line 1, byte 86: nesting deeper than 64 levels"),
        TU_REFUSES("{\"features\": [1], \"x\": \"\xff\"}", 0,
                   "line 1, byte 24: invalid UTF-8 in a string"),
    };
    tu_check_decode_cases(sms_jsonlines_decode, cases, TU_COUNT(cases));
}

/* Appends a random value of the grammar to b (numbers, null). */
static size_t put_value(char *b, size_t n, float *v)
{
    switch (rnd() % 4) {
    case 0:
        *v = NAN;
        return n + (size_t)sprintf(b + n, "null");
    case 1:
        *v = (float)(int)(rnd() % 2000) - 1000;
        return n + (size_t)sprintf(b + n, "%d", (int)*v);
    default: {
        char text[40];
        snprintf(text, sizeof text, "%.9g", (double)((float)rnd() / 1e6f - 2000.0f));
        *v = strtof(text, NULL);
        return n + (size_t)sprintf(b + n, "%s", text);
    }
    }
}

/* The same rows as JSON lines and as one {"instances": [...]} document
 * decode to the same matrix. */
static void agrees_with_json(void **state)
{
    (void)state;
    enum { BODY = 1 << 16 };
    char *lines = malloc(BODY), *doc = malloc(BODY);
    assert_non_null(lines);
    assert_non_null(doc);
    sms_matrix_t a = {0}, b = {0};
    sms_error_t err = {0};
    for (int iter = 0; iter < 300; iter++) {
        size_t rows = 1 + rnd() % 20, cols = 1 + rnd() % 12, nl = 0, nd = 0;
        nd += (size_t)sprintf(doc, "{\"instances\": [");
        for (size_t r = 0; r < rows; r++) {
            int dict = rnd() % 2;
            const char *open = dict ? "{\"features\": [" : "[";
            nl += (size_t)sprintf(lines + nl, "%s", open);
            nd += (size_t)sprintf(doc + nd, "%s%s", r ? ", " : "", open);
            for (size_t c = 0; c < cols; c++) {
                float v;
                size_t before = nl;
                nl = put_value(lines, nl, &v);
                memcpy(doc + nd, lines + before, nl - before);
                nd += nl - before;
                if (c + 1 < cols) {
                    lines[nl++] = ',';
                    doc[nd++] = ',';
                }
            }
            nl += (size_t)sprintf(lines + nl, dict ? "]}%s" : "]%s", rnd() % 3 ? "\n" : "\r\n");
            nd += (size_t)sprintf(doc + nd, dict ? "]}" : "]");
        }
        nd += (size_t)sprintf(doc + nd, "]}");
        assert_int_equal(tu_decode_guarded(sms_jsonlines_decode, lines, nl, 0, &a, &err), 0);
        assert_int_equal(tu_decode_guarded(sms_json_decode, doc, nd, 0, &b, &err), 0);
        assert_int_equal(a.rows, rows);
        assert_int_equal(a.cols, cols);
        assert_int_equal(b.rows, rows);
        assert_int_equal(b.cols, cols);
        assert_memory_equal(a.values, b.values, rows * cols * sizeof(float));
    }
    sms_matrix_free(&a);
    sms_matrix_free(&b);
    free(lines);
    free(doc);
}

/* Every prefix of valid bodies and random damage: a clean outcome each time,
 * no read past the body. */
static void hostile(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "[1, 2, 3]\n[4, 5, 6]\n",
        "{\"features\": [1.5, null, -2e-3], \"label\": \"x\\u00e9\"}\r\n{\"features\": [1,2,3]}\n",
        "\xEF\xBB\xBF\n[0.25,1,2]\n\n[3,4,5]",
    };
    static const size_t widths[] = {0, 3};
    for (size_t i = 0; i < TU_COUNT(bodies); i++) {
        size_t len = strlen(bodies[i]);
        tu_check_decode_prefixes(tu_check_decode_clean, sms_jsonlines_decode, bodies[i], len,
                                 widths, TU_COUNT(widths));
        char buf[256];
        for (int iter = 0; iter < 3000; iter++) {
            memcpy(buf, bodies[i], len);
            for (int k = 0, n = 1 + (int)(rnd() % 4); k < n; k++)
                buf[rnd() % len] = rnd() % 4 ? "[]{},:\"\n\r 0-.e\\n"[rnd() % 17] : (char)rnd();
            tu_check_decode_clean(sms_jsonlines_decode, buf, len, 0);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(corpus_body),      cmocka_unit_test(shapes),  cmocka_unit_test(messages),
        cmocka_unit_test(agrees_with_json), cmocka_unit_test(hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
