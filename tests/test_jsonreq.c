/* sms_json_decode: the accepted shapes, JSON validation of what it skips
 * (checked against jansson on random and mutated documents), the error
 * messages a user sees, and hostile bodies placed right before a PROT_NONE
 * page so that any over-read crashes. */
#include "testutil.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smserve/jsonreq.h"

static uint64_t rng_state = 0xD1B54A32D192ED03ull;

static uint32_t rnd(void)
{
    return tu_rand32(&rng_state);
}

/* The shared decoder checks (testutil.h), bound to sms_json_decode. */
static int decode(const char *body, size_t len, size_t expect_cols, sms_matrix_t *m,
                  sms_error_t *err)
{
    return tu_decode_guarded(sms_json_decode, body, len, expect_cols, m, err);
}

static void check_ok(const char *body, size_t expect_cols, size_t rows, size_t cols,
                     const float *want)
{
    tu_check_decode_ok(sms_json_decode, body, expect_cols, rows, cols, want);
}

static void check_err(const char *body, size_t len, size_t expect_cols, const char *msg)
{
    tu_check_decode_err(sms_json_decode, body, len, expect_cols, msg);
}

static void check_err_str(const char *body, const char *msg)
{
    check_err(body, strlen(body), 0, msg);
}

static void check_clean(const char *body, size_t len, size_t expect_cols)
{
    tu_check_decode_clean(sms_json_decode, body, len, expect_cols);
}

static void accepted_shapes_decode(void **state)
{
    (void)state;
    const float want[] = {1, 2, NAN, 3, 4.5f, -5e-3f};
    check_ok("{\"instances\": [[1, 2, null], [3, 4.5, -5e-3]]}", 0, 2, 3, want);
    check_ok("{\"instances\": [{\"features\": [1, 2, null]}, {\"features\": [3, 4.5, -5e-3]}]}", 0,
             2, 3, want);
    check_ok("[[1,2,null],[3,4.5,-0.005]]", 0, 2, 3, want);
    check_ok(" \r\n\t[ [ 1 , 2 , null ] , [ 3 , 4.5 , -5E-3 ] ] \n", 3, 2, 3, want);
    check_ok("[{\"features\": [1, 2, null]}, [3, 4.5, -5e-3]]", 0, 2, 3, want);
    check_ok("{\"features\": [1, 2, null]}", 0, 1, 3, want);
    check_ok("[1, 2, null]", 3, 1, 3, want);
    check_ok("\xEF\xBB\xBF{\"features\": [1, 2, null]}", 0, 1, 3, want);
    /* NaN as Python's json module writes a missing float (the SDK's
     * JSONSerializer of a numpy row): missing, like null */
    check_ok("[[1, 2, NaN], [3, 4.5, -5e-3]]", 0, 2, 3, want);
    check_ok("{\"instances\": [{\"features\": [1,2,NaN]}, [3,4.5,-5e-3]]}", 3, 2, 3, want);
    const float z[] = {0, -0.0f, 1e30f, 0, 3.4028235e38f, 1.4e-45f};
    check_ok("[0, -0, 1E+30, 1e-999, 3.4028235e38, 1.4e-45]", 0, 1, 6, z);
}

static void unknown_members_are_skipped(void **state)
{
    (void)state;
    const float want[] = {1, 2};
    check_ok("{\"a\": \"x\\\"y\\\\z\\/\\b\\f\\n\\r\\t\\u00e9\\uD83D\\uDE00\", "
             "\"b\": {\"c\": [1, -2.5e+3, true, false, null, {}, [], \"\"]}, "
             "\"\xc3\xa9t\xc3\xa9\": \"\xe4\xb8\xad\xf0\x9f\x98\x80\", "
             "\"instances\": [[1, 2]], \"d\": [[[[{\"e\": null}]]]], \"f\": 0}",
             0, 1, 2, want);
    check_ok("{\"instanc\\u0065s\": [{\"id\": 7, \"features\": [1, 2], \"x\": {\"y\": []}}]}", 0, 1,
             2, want);
    check_ok("{\"Instances\": 5, \"features\": [1, 2], \"instances_\": [[9]]}", 0, 1, 2, want);
}

static void empty_bodies_have_no_rows(void **state)
{
    (void)state;
    check_ok("", 0, 0, 0, NULL);
    check_ok(" \n\t\r ", 0, 0, 0, NULL);
    check_ok("{\"instances\": []}", 0, 0, 0, NULL);
    check_ok("{\"instances\": [ ], \"other\": 1}", 5, 0, 5, NULL);
    check_ok("[]", 0, 0, 0, NULL);
    check_ok(" [ \n ] ", 0, 0, 0, NULL);
}

static void shape_errors(void **state)
{
    (void)state;
    check_err_str("{\"instances\": [[1, 2], [3]]}", "row 2 has 1 values, expected 2");
    check_err_str("[[1, 2], [3, 4, 5]]", "row 2 has 3 values, expected 2");
    check_err("[[1, 2], [3, 4]]", 16, 3, "row 1 has 2 values, expected 3");
    check_err_str("[[1, 2], []]", "row 2 has 0 values, expected 2");
    check_err_str("[[], [1]]", "row 1 has no values");
    check_err_str("{\"features\": []}", "row 1 has no values");
    check_err_str("{\"instances\": [[1, 2], [3, \"4\"]]}",
                  "row 2, column 2 (byte 27): '\"4\"' is not a number");
    check_err_str("{\"instances\": [[1], [2], [3, 4, 5, \"x\\u0027\"]]}",
                  "row 3, column 4 (byte 35): '\"x\\x5cu0027\"' is not a number");
    check_err_str("[[1], [\"a\\qb\"]]", "byte 9: invalid escape sequence in a string");
    check_err_str("[true]", "row 1, column 1 (byte 1): 'true' is not a number");
    check_err_str("[[1, false]]", "row 1, column 2 (byte 5): 'false' is not a number");
    check_err_str("[1, [2]]", "row 1, column 2 (byte 4): a list is not a number");
    check_err_str("{\"features\": [{}]}", "row 1, column 1 (byte 14): an object is not a number");
    check_err_str("{\"data\": [[1, 2]]}",
                  "no \"instances\" or \"features\" key; accepted bodies are "
                  "{\"instances\": [[...], ...]}, {\"instances\": [{\"features\": [...]}, ...]}, "
                  "{\"features\": [...]}, [[...], ...] and [...]");
    check_err_str("{}",
                  "no \"instances\" or \"features\" key; accepted bodies are "
                  "{\"instances\": [[...], ...]}, {\"instances\": [{\"features\": [...]}, ...]}, "
                  "{\"features\": [...]}, [[...], ...] and [...]");
    check_err_str("{\"instances\": [[1]], \"instances\": [[2]]}",
                  "byte 21: \"instances\" given twice");
    check_err_str("{\"features\": [1], \"features\": [2]}", "byte 18: \"features\" given twice");
    check_err_str("{\"instances\": [[1]], \"features\": [2]}",
                  "byte 21: give either \"instances\" or \"features\", not both");
    check_err_str("{\"instances\": [1, 2, 3]}",
                  "byte 15: row 1 is neither a list of values nor an object with \"features\"");
    check_err_str("{\"instances\": [{\"x\": [1]}]}", "row 1 has no \"features\" key");
    check_err_str("{\"instances\": [{\"features\": [1], \"features\": [1]}]}",
                  "byte 33: row 1 has \"features\" twice");
    check_err_str("{\"instances\": {\"features\": [1]}}", "byte 14: expected a list of instances");
    check_err_str("{\"features\": 5}", "byte 13: expected a list of feature values");
    check_err_str("\"instances\"", "byte 0: expected a JSON object or list");
    check_err_str("5", "byte 0: expected a JSON object or list");
}

static void syntax_errors_give_offsets(void **state)
{
    (void)state;
    check_err_str("[1, 2] x", "byte 7: unexpected data after the JSON document");
    check_err_str("[1, 2]]", "byte 6: unexpected data after the JSON document");
    check_err_str("{\"features\": [1]} {}", "byte 18: unexpected data after the JSON document");
    check_err_str("[1,]", "byte 3: expected a number or null");
    check_err_str("[1,,2]", "byte 3: expected a number or null");
    check_err_str("[1, }", "byte 4: expected a number or null");
    check_err_str("[1, :", "byte 4: expected a number or null");
    check_err_str("[1, ", "byte 4: unexpected end of input, expected a number or null");
    check_err_str("[1 2]", "byte 3: expected ',' or ']'");
    check_err_str("[1, 2", "byte 5: unexpected end of input, expected ',' or ']'");
    check_err_str("{\"features\" [1]}", "byte 12: expected ':'");
    check_err_str("{\"features\": [1],}", "byte 17: expected a string key");
    check_err_str("{features: [1]}", "byte 1: expected a string key");
    check_err_str("{\"a\": tru, \"features\": [1]}",
                  "byte 6: invalid literal (expected true, false or null)");
    check_err_str("{\"a\": [1, 2,], \"features\": [1]}", "byte 12: expected a value");
    check_err_str("{\"a\": {\"b\" 1}, \"features\": [1]}", "byte 11: expected ':'");
    check_err_str("{\"a\": \"x\\qy\", \"features\": [1]}",
                  "byte 8: invalid escape sequence in a string");
    check_err_str("{\"a\": \"\\u12G4\", \"features\": [1]}",
                  "byte 7: \\u must be followed by four hex digits");
    check_err_str("{\"a\": \"\\u12", "byte 7: \\u must be followed by four hex digits");
    check_err_str("{\"a\": \"x\ty\", \"features\": [1]}",
                  "byte 8: control character in a string (escape it)");
    check_err_str("{\"a\": \"abc",
                  "byte 10: unexpected end of input, expected '\"' to close the string");
    check_err_str("{\"a\": \"abc\\",
                  "byte 11: unexpected end of input, expected an escape sequence");
    check_err_str("{\"a\": 01, \"features\": [1]}", "byte 6: invalid number");
    check_err_str("{\"a\": +1, \"features\": [1]}", "byte 6: expected a value");
    check_err_str("{\"a\": 1 \"features\": [1]}", "byte 8: expected ',' or '}'");
}

/* JSON's number grammar, as the float32 of its float64, and null. */
static void accepted_number_forms(void **state)
{
    (void)state;
    const float want[] = {1, -0.0f, 0.25f, 100, 1e-3f, 0, NAN, 1};
    check_ok("[1, -0, 0.25, 1E+2, 1e-3, 0e999999, null, 1.0000000596046448]", 0, 1, 8, want);
    check_ok("{\"instances\": [[1,-0,0.25,1e2,1E-3,0.0,null,1]]}", 0, 1, 8, want);
    /* numbers of members that are not features are never converted */
    const float one[] = {1};
    check_ok("{\"scale\": 1e999, \"features\": [1], \"x\": [-1e400]}", 0, 1, 1, one);
}

/* Each refused feature value: a 400 naming its 1-based row and column, its
 * byte offset, and quoting the token (bounded, escaped). */
static void refused_number_forms(void **state)
{
    (void)state;
    static const struct {
        const char *body, *msg;
    } cases[] = {
        {"[1e999]", "row 1, column 1 (byte 1): '1e999' is beyond float32's range "
                    "(+-3.4028235e38), which XGBoost refuses"},
        {"{\"instances\": [[1, 2], [3, -1e39]]}",
         "row 2, column 2 (byte 27): '-1e39' is beyond float32's range (+-3.4028235e38), "
         "which XGBoost refuses"},
        {"[Infinity]", "row 1, column 1 (byte 1): 'Infinity' is infinite, which XGBoost refuses"},
        {"[[1], [-Infinity]]",
         "row 2, column 1 (byte 7): '-Infinity' is infinite, which XGBoost refuses"},
        {"[1, inf]", "row 1, column 2 (byte 4): 'inf' is infinite, which XGBoost refuses"},
        {"[-NaN]", "row 1, column 1 (byte 1): '-NaN' is not a number (null or NaN is a missing "
                   "value)"},
        {"[NaNa]", "row 1, column 1 (byte 1): 'NaNa' is not a number"},
        {"{\"features\": [1, nan]}",
         "row 1, column 2 (byte 17): 'nan' is not a number (null or NaN is a missing value)"},
        {"[0x10]", "row 1, column 1 (byte 1): '0x10' is not a number"},
        {"[1, 0x1p-2]", "row 1, column 2 (byte 4): '0x1p-2' is not a number"},
        {"[1_0]", "row 1, column 1 (byte 1): '1_0' is not a number"},
        {"[+1]", "row 1, column 1 (byte 1): '+1' is not a JSON number"},
        {"[01]", "row 1, column 1 (byte 1): '01' is not a JSON number"},
        {"[1.]", "row 1, column 1 (byte 1): '1.' is not a JSON number"},
        {"[.5]", "row 1, column 1 (byte 1): '.5' is not a JSON number"},
        {"[1e]", "row 1, column 1 (byte 1): '1e' is not a number"},
        {"[1e+]", "row 1, column 1 (byte 1): '1e+' is not a number"},
        {"[-]", "row 1, column 1 (byte 1): '-' is not a number"},
        {"[1.5.2]", "row 1, column 1 (byte 1): '1.5.2' is not a number"},
        {"[1x, 2]", "row 1, column 1 (byte 1): '1x' is not a number"},
        {"[nul]", "row 1, column 1 (byte 1): 'nul' is not a number"},
        {"[nullx]", "row 1, column 1 (byte 1): 'nullx' is not a number"},
        {"[infinityy]", "row 1, column 1 (byte 1): 'infinityy' is not a number"},
        {"[it's]", "row 1, column 1 (byte 1): 'it\\x27s' is not a number"},
        {"[1, \xd9\xa1]", "row 1, column 2 (byte 4): '\\xd9\\xa1' is not a number"},
        {"[0x1234567890abcdef1234567890abcdef]",
         "row 1, column 1 (byte 1): '0x1234567890abcdef1234567890abcd...' is not a number"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_err_str(cases[i].body, cases[i].msg);
    /* members that are not features keep JSON's syntax errors */
    check_err_str("{\"a\": 0x10, \"features\": [1]}", "byte 6: invalid number");
    check_err_str("{\"a\": NaN, \"features\": [1]}", "byte 6: expected a value");
}

static void invalid_utf8_is_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\xc0\x80",
        "\xc1\xbf",
        "\x80",
        "\xbf",
        "\xe0\x80\x80",
        "\xed\xa0\x80",
        "\xf0\x80\x80\x80",
        "\xf4\x90\x80\x80",
        "\xf5\x80\x80\x80",
        "\xff",
        "\xc3",
        "\xe4\xb8",
        "\xc3\x28",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char body[64];
        int n = snprintf(body, sizeof body, "{\"a\": \"x%s\", \"features\": [1]}", bad[i]);
        check_err(body, (size_t)n, 0, "byte 8: invalid UTF-8 in a string");
    }
    const float one[] = {1};
    check_ok("{\"a\": \"\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xf0\x90\x80\x80"
             "\xf4\x8f\xbf\xbf\", \"features\": [1]}",
             0, 1, 1, one);
}

static void nesting_is_limited_to_64(void **state)
{
    (void)state;
    sms_buf_t b = {0};
    for (int depth = 63; depth <= 64; depth++) {
        sms_buf_reset(&b);
        /* the top-level object is level 1, so `depth` lists reach depth + 1 */
        sms_buf_printf(&b, "{\"a\": ");
        for (int i = 0; i < depth; i++)
            sms_buf_appendc(&b, '[');
        for (int i = 0; i < depth; i++)
            sms_buf_appendc(&b, ']');
        sms_buf_printf(&b, ", \"features\": [1]}");
        sms_matrix_t m = {0};
        sms_error_t err;
        int rc = decode(b.data, b.len, 0, &m, &err);
        if (depth == 63) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, -1);
            assert_string_equal(err.msg, "byte 69: nesting deeper than 64 levels");
        }
        sms_matrix_free(&m);
    }
    sms_buf_free(&b);
    check_err_str("{\"instances\": [{\"x\": {\"y\": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
                  "[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
                  "]]]]]]]]]]]]]]]]]}, \"features\": [1]}]}",
                  "byte 87: nesting deeper than 64 levels");
}

/* Random JSON values: every kind, escapes and multi-byte UTF-8 in strings. */
static void gen_string(sms_buf_t *b)
{
    static const char *const pieces[] = {
        "a",
        "Z",
        " ",
        "0",
        "\\\"",
        "\\\\",
        "\\/",
        "\\b",
        "\\f",
        "\\n",
        "\\r",
        "\\t",
        "\\u00e9",
        "\\u4E2D",
        "\\u0000",
        "\\uD83D\\uDE00",
        "\xc3\xa9",
        "\xe4\xb8\xad",
        "\xf0\x9f\x98\x80",
        "instances",
        "{",
        "]",
        ",",
        ":",
    };
    sms_buf_appendc(b, '"');
    for (uint32_t n = rnd() % 6; n > 0; n--)
        sms_buf_printf(b, "%s", pieces[rnd() % (sizeof pieces / sizeof pieces[0])]);
    sms_buf_appendc(b, '"');
}

static void gen_number(sms_buf_t *b)
{
    if (rnd() & 1)
        sms_buf_appendc(b, '-');
    if (rnd() % 4 == 0)
        sms_buf_appendc(b, '0');
    else
        sms_buf_printf(b, "%u", 1 + rnd() % 100000);
    if (rnd() & 1)
        sms_buf_printf(b, ".%u", rnd() % 1000);
    if (rnd() % 3 == 0)
        sms_buf_printf(b, "%c%s%u", (rnd() & 1) ? 'e' : 'E', (rnd() & 1) ? "-" : "+", rnd() % 30);
}

static void gen_value(sms_buf_t *b, int depth)
{
    static const char *const ws[] = {"", " ", "\n", "\t", "\r\n  "};
    uint32_t kind = rnd() % (depth < 6 ? 8 : 6);
    switch (kind) {
    case 0:
    case 1:
        gen_number(b);
        break;
    case 2:
    case 3:
        gen_string(b);
        break;
    case 4:
        sms_buf_printf(b, "%s", (rnd() & 1) ? "true" : "false");
        break;
    case 5:
        sms_buf_printf(b, "null");
        break;
    default: {
        int object = kind == 7;
        sms_buf_appendc(b, object ? '{' : '[');
        for (uint32_t n = rnd() % 4, i = 0; i < n; i++) {
            if (i)
                sms_buf_appendc(b, ',');
            sms_buf_printf(b, "%s", ws[rnd() % 5]);
            if (object) {
                gen_string(b);
                sms_buf_printf(b, "%s:%s", ws[rnd() % 5], ws[rnd() % 5]);
            }
            gen_value(b, depth + 1);
            sms_buf_printf(b, "%s", ws[rnd() % 5]);
        }
        sms_buf_appendc(b, object ? '}' : ']');
    }
    }
}

/* Whether jansson, a full JSON parser, takes the document with the instances
 * intact. -1: it refused it for a reason of its own (numbers it cannot hold,
 * lone surrogate escapes), so the two parsers are not comparable. */
static int jansson_accepts(const char *doc, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(doc, len, JSON_ALLOW_NUL, &jerr);
    if (!root) {
        if (strstr(jerr.text, "overflow") || strstr(jerr.text, "too big") ||
            strstr(jerr.text, "surrogate") || strstr(jerr.text, "Unicode") ||
            strstr(jerr.text, "nvalid escape") || strstr(jerr.text, "NUL"))
            return -1;
        return 0;
    }
    json_t *inst = json_object_get(root, "instances");
    int ok = inst && json_is_array(inst) && json_array_size(inst) == 1 &&
             json_is_array(json_array_get(inst, 0)) &&
             json_array_size(json_array_get(inst, 0)) == 2;
    json_decref(root);
    return ok ? 1 : -1;
}

static void skipped_values_match_jansson(void **state)
{
    (void)state;
    sms_buf_t b = {0};
    int compared = 0;
    for (int i = 0; i < 30000; i++) {
        sms_buf_reset(&b);
        sms_buf_printf(&b, "{\"k\": ");
        size_t from = b.len;
        gen_value(&b, 2);
        size_t to = b.len;
        sms_buf_printf(&b, ", \"instances\": [[1, 2]]}");
        /* every other document gets one to three bytes of its value changed */
        if (i & 1) {
            static const char junk[] = "\"\\{}[],:0123456789.eE+-tfnul \x01\x80\xc3\xed";
            for (uint32_t n = 1 + rnd() % 3; n > 0 && to > from; n--) {
                size_t at = from + rnd() % (to - from);
                b.data[at] = (rnd() % 8 == 0) ? (char)rnd() : junk[rnd() % (sizeof junk - 1)];
            }
        }
        int want = jansson_accepts(b.data, b.len);
        if (want < 0)
            continue;
        sms_matrix_t m = {0};
        sms_error_t err;
        int rc = decode(b.data, b.len, 0, &m, &err);
        if ((rc == 0) != (want == 1)) {
            json_error_t jerr;
            json_t *root = json_loadb(b.data, b.len, JSON_ALLOW_NUL, &jerr);
            print_error("doc '%s': ours %d (%s), jansson %d (%s)\n", b.data, rc, rc ? err.msg : "",
                        want, root ? "" : jerr.text);
            json_decref(root);
            fail();
        }
        if (rc == 0)
            assert_true(m.rows == 1 && m.cols == 2 && m.values[1] == 2.0f);
        else
            assert_int_equal(err.status, 400);
        sms_matrix_free(&m);
        compared++;
    }
    assert_true(compared > 20000);
    sms_buf_free(&b);
}

static void numbers_match_float64_cast(void **state)
{
    (void)state;
    sms_buf_t b = {0};
    sms_buf_t tok = {0};
    for (int i = 0; i < 2000; i++) {
        sms_buf_reset(&b);
        sms_buf_appendc(&b, '[');
        for (int k = 0; k < 50; k++) {
            sms_buf_reset(&tok);
            gen_number(&tok);
            sms_buf_printf(&b, "%s%s", k ? ", " : "", tok.data);
        }
        sms_buf_appendc(&b, ']');
        sms_matrix_t m = {0};
        sms_error_t err;
        assert_int_equal(sms_json_decode(b.data, b.len, 0, &m, &err), 0);
        assert_int_equal(m.cols, 50);
        char *p = b.data + 1;
        for (int k = 0; k < 50; k++) {
            char *stop;
            float want = (float)strtod(p, &stop);
            assert_memory_equal(&want, &m.values[k], sizeof want);
            p = stop + 2;
        }
        sms_matrix_free(&m);
    }
    sms_buf_free(&b);
    sms_buf_free(&tok);
}

static void big_body_reuses_matrix(void **state)
{
    (void)state;
    sms_buf_t b = {0};
    const size_t rows = 20000, cols = 11;
    sms_buf_printf(&b, "{\"instances\": [");
    for (size_t r = 0; r < rows; r++) {
        sms_buf_printf(&b, "%s[", r ? ", " : "");
        for (size_t c = 0; c < cols; c++)
            sms_buf_printf(&b, "%s%zu.%zu", c ? ", " : "", r, c);
        sms_buf_appendc(&b, ']');
    }
    sms_buf_printf(&b, "]}");
    sms_matrix_t m = {0};
    sms_error_t err;
    for (int pass = 0; pass < 2; pass++) {
        size_t cap = m.cap;
        assert_int_equal(sms_json_decode(b.data, b.len, cols, &m, &err), 0);
        assert_int_equal(m.rows, rows);
        if (pass == 1)
            assert_int_equal(m.cap, cap);
        assert_true(m.values[cols + 2] == 1.2f);
        assert_true(m.values[rows * cols - 1] == strtof("19999.10", NULL));
    }
    sms_matrix_free(&m);
    sms_buf_free(&b);
}

static void hostile_random_bytes(void **state)
{
    (void)state;
    static const char alphabet[] = "{}[]\",:0123456789.eE+- \n\\utrfnlsa";
    char body[300];
    for (int i = 0; i < 30000; i++) {
        size_t n = rnd() % sizeof body;
        int binary = i % 4 == 0;
        for (size_t k = 0; k < n; k++)
            body[k] = binary ? (char)rnd() : alphabet[rnd() % (sizeof alphabet - 1)];
        if (n && !binary && (rnd() & 1))
            body[0] = (rnd() & 1) ? '{' : '[';
        check_clean(body, n, 0);
        check_clean(body, n, 1 + rnd() % 3);
    }
}

static void hostile_truncations(void **state)
{
    (void)state;
    const char *docs[] = {
        ("\xEF\xBB\xBF{\"meta\": {\"s\": \"a\\u00e9\\n\xe4\xb8\xad\", \"t\": [true, false, null, "
         "-1.5e-3]}, \"instances\": [[1, null, 2e5], {\"id\": 1, \"features\": [0, -0, 3]}]}"),
        "[[1.25, 2], [3, 4]]",
        "{\"features\": [1e39, -1e-46, 0.5]}",
    };
    for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++) {
        size_t n = strlen(docs[d]);
        check_clean(docs[d], n, 0);
        for (size_t k = 0; k < n; k++) {
            check_clean(docs[d], k, 0);
            check_clean(docs[d], k, 3);
            /* only the empty prefix (and the BOM alone) is a valid document */
            sms_matrix_t m = {0};
            sms_error_t err;
            int rc = decode(docs[d], k, 0, &m, &err);
            assert_int_equal(rc, (k == 0 || (d == 0 && k == 3)) ? 0 : -1);
            sms_matrix_free(&m);
        }
    }
}

static void hostile_shapes(void **state)
{
    (void)state;
    /* deep nesting must stop at the limit, not exhaust the stack */
    static char deep[200000];
    memset(deep, '[', sizeof deep);
    check_clean(deep, sizeof deep, 0);
    memcpy(deep, "{\"a\":", 5);
    check_clean(deep, sizeof deep, 0);
    for (size_t i = 5; i + 5 < sizeof deep; i += 5)
        memcpy(deep + i, "{\"a\":", 5);
    check_clean(deep, sizeof deep, 0);

    /* huge exponents: zeros, or beyond float32's range */
    const float tiny[] = {0, -0.0f, 0};
    check_ok("[1e-99999999999999999999, -1e-400, 0e99999999]", 0, 1, 3, tiny);
    check_err_str("[1, 1e99999999999999999999]",
                  "row 1, column 2 (byte 4): '1e99999999999999999999' is beyond float32's range "
                  "(+-3.4028235e38), which XGBoost refuses");

    /* overlong numbers */
    static char num[3000];
    num[0] = '[';
    memset(num + 1, '7', sizeof num - 2);
    num[sizeof num - 1] = ']';
    check_err(num, sizeof num, 0,
              "row 1, column 1 (byte 1): '77777777777777777777777777777777...' is longer than "
              "1024 bytes");
    check_err(num, 1026, 0,
              "row 1, column 1 (byte 1): '77777777777777777777777777777777...' is longer than "
              "1024 bytes");
    memset(num + 1, '7', 1024);
    num[1025] = ']';
    check_err(num, 1026, 0,
              "row 1, column 1 (byte 1): '77777777777777777777777777777777...' is beyond "
              "float32's range (+-3.4028235e38), which XGBoost refuses");
    memcpy(num, "[0.", 3);
    memset(num + 3, '7', 1022);
    num[1026] = '\0';
    const float seven[] = {0.7777777777f};
    check_ok(num, 0, 1, 1, seven);

    /* NUL bytes */
    check_err("[1, \0002]", 7, 0, "row 1, column 2 (byte 4): '\\x002' is not a number");
    check_err("{\"a\": \"x\0y\", \"features\": [1]}", 30, 0,
              "byte 8: control character in a string (escape it)");
    check_err("[1]\0", 4, 0, "byte 3: unexpected data after the JSON document");
    static char zeros[4096];
    check_err(zeros, sizeof zeros, 0, "byte 0: expected a JSON object or list");

    /* very long strings and keys in skipped members */
    sms_buf_t b = {0};
    sms_buf_printf(&b, "{\"");
    for (int i = 0; i < 100000; i++)
        sms_buf_printf(&b, "%s", (i & 1) ? "\\u0041" : "\xe4\xb8\xad");
    sms_buf_printf(&b, "\": 1, \"features\": [5]}");
    const float five[] = {5};
    check_ok(b.data, 0, 1, 1, five);
    sms_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepted_shapes_decode),
        cmocka_unit_test(unknown_members_are_skipped),
        cmocka_unit_test(empty_bodies_have_no_rows),
        cmocka_unit_test(shape_errors),
        cmocka_unit_test(syntax_errors_give_offsets),
        cmocka_unit_test(accepted_number_forms),
        cmocka_unit_test(refused_number_forms),
        cmocka_unit_test(invalid_utf8_is_refused),
        cmocka_unit_test(nesting_is_limited_to_64),
        cmocka_unit_test(skipped_values_match_jansson),
        cmocka_unit_test(numbers_match_float64_cast),
        cmocka_unit_test(big_body_reuses_matrix),
        cmocka_unit_test(hostile_random_bytes),
        cmocka_unit_test(hostile_truncations),
        cmocka_unit_test(hostile_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
