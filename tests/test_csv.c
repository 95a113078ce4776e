/* sms_csv_decode: delimiter sniffing, missing values, line endings, the
 * error messages a user sees, and hostile bodies placed right before a
 * PROT_NONE page so that any over-read crashes. */
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smserve/csv.h"

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;

static uint32_t rnd(void)
{
    return tu_rand32(&rng_state);
}

/* The shared decoder checks (testutil.h), bound to sms_csv_decode. */
static int decode(const char *body, size_t len, size_t expect_cols, sms_matrix_t *m,
                  sms_error_t *err)
{
    return tu_decode_guarded(sms_csv_decode, body, len, expect_cols, m, err);
}

static void check_ok(const char *body, size_t expect_cols, size_t rows, size_t cols,
                     const float *want)
{
    tu_check_decode_ok(sms_csv_decode, body, expect_cols, rows, cols, want);
}

static void check_err(const char *body, size_t len, size_t expect_cols, const char *msg)
{
    tu_check_decode_err(sms_csv_decode, body, len, expect_cols, msg);
}

static void check_err_str(const char *body, size_t expect_cols, const char *msg)
{
    check_err(body, strlen(body), expect_cols, msg);
}

static void check_clean(const char *body, size_t len, size_t expect_cols)
{
    tu_check_decode_clean(sms_csv_decode, body, len, expect_cols);
}

static void comma_rows_decode(void **state)
{
    (void)state;
    const float want[] = {1, 2.5f, -3, 4e-3f, 0, 6};
    check_ok("1,2.5,-3\n0.004,0,6\n", 0, 2, 3, want);
    check_ok("1,2.5,-3\n0.004,0,6", 0, 2, 3, want);
    check_ok("1,2.5,-3\r\n0.004,0,6\r\n", 0, 2, 3, want);
    check_ok("1,2.5,-3\n0.004,0,6\n\n\n", 3, 2, 3, want);
    check_ok("\n\r\n1,2.5,-3\n  \n\t\n0.004,0,6", 0, 2, 3, want);
    check_ok(" 1 , 2.5\t,\t-3 \n+4e-3,  0,6  ", 0, 2, 3, want);
    check_ok("\xEF\xBB\xBF"
             "1,2.5,-3\n0.004,0,6",
             0, 2, 3, want);
}

static void other_delimiters_are_sniffed(void **state)
{
    (void)state;
    const float want[] = {1, 2, 3, 4, 5, 6};
    check_ok("1\t2\t3\n4\t5\t6\n", 0, 2, 3, want);
    check_ok("1;2;3\n4; 5;6\n", 0, 2, 3, want); /* as AWS's container's sniffer */
    check_ok("1 \t 2\t3\n 4\t5 \t6\n", 0, 2, 3, want);
    check_ok("1 2 3\n4 5 6\n", 0, 2, 3, want);
    check_ok("  1   2 3  \n4\t5  6\r\n", 0, 2, 3, want);
    check_ok("1\n2\n3\n4\n5\n6", 0, 6, 1, want);
    check_ok("  1 \n 2\r\n3\n\n4\n5\t\n6\n", 1, 6, 1, want);
    const float wide[] = {1, NAN, 3};
    check_ok("1\t\t3", 0, 1, 3, wide);
}

static void empty_fields_are_missing(void **state)
{
    (void)state;
    const float want[] = {NAN, 1, NAN, NAN, NAN, NAN};
    check_ok(",1,\n , ,\t\n", 0, 2, 3, want);
    const float one[] = {NAN};
    check_ok("\"\"", 0, 1, 1, one);
    /* nan in any case and with a sign is missing too, as AWS reads it */
    const float nans[] = {NAN, NAN, NAN, NAN, NAN, 1};
    check_ok("nan,NaN,-nan,+NAN,\"nan\",1", 0, 1, 6, nans);
}

/* What Python's float() takes and AWS predicts on, decimals as the float32
 * of their float64; underflow is 0 or a denormal. */
static void accepted_number_forms(void **state)
{
    (void)state;
    const float want[] = {1, 0.5f, 1, 1, 100, -0.0f, 2.5e-3f, 0, 1.4e-45f, 3.4028235e38f};
    check_ok("+1,.5,1.,01,1E+2,-0,2.5e-3,1e-999,1.4e-45,3.4028235e38", 0, 1, 10, want);
    check_ok("  +1 .5  1. 01 1E+2  -0 2.5e-3 1e-999 1.4e-45 3.4028235e38 ", 0, 1, 10, want);
    check_ok("+1\t.5\t1.\t 01\t1E+2 \t-0\t2.5e-3\t1e-999\t1.4e-45\t3.4028235e38", 0, 1, 10, want);
    /* rounded to float64 first, then to float32, as numpy and XGBoost do
     * (strtof alone would give 1.0000001) */
    const float one[] = {1, 1};
    check_ok("1.0000000596046448,1", 0, 1, 2, one);
}

/* Each refused value: a 400 naming its 1-based row and column and quoting
 * the token (as the body has it, quotes included, bounded and escaped). */
static void refused_number_forms(void **state)
{
    (void)state;
    check_err_str("1,inf\n", 0, "row 1, column 2: 'inf' is infinite, which XGBoost refuses");
    check_err_str("1,2\n3,-Infinity", 0,
                  "row 2, column 2: '-Infinity' is infinite, which XGBoost refuses");
    check_err_str("+INF", 0, "row 1, column 1: '+INF' is infinite, which XGBoost refuses");
    check_err_str("1,\" infinity \"", 0,
                  "row 1, column 2: '\" infinity \"' is infinite, which XGBoost refuses");
    check_err_str("1e999", 0,
                  "row 1, column 1: '1e999' is beyond float32's range (+-3.4028235e38), which "
                  "XGBoost refuses");
    check_err_str("1,2,3\n\n4,5,-1e39\n", 0,
                  "row 3, column 3: '-1e39' is beyond float32's range (+-3.4028235e38), which "
                  "XGBoost refuses");
    check_err_str("3.4028236e38", 0,
                  "row 1, column 1: '3.4028236e38' is beyond float32's range (+-3.4028235e38), "
                  "which XGBoost refuses");
    check_err_str("0x10,1", 0, "row 1, column 1: '0x10' is not a number");
    check_err_str("1,0x1p-2", 0, "row 1, column 2: '0x1p-2' is not a number");
    check_err_str("1\t0X1P3", 0, "row 1, column 2: '0X1P3' is not a number");
    check_err_str("1 2 -0x1", 0, "row 1, column 3: '-0x1' is not a number");
    check_err_str("1,2\n3,1_000", 0, "row 2, column 2: '1_000' is not a number");
    check_err_str("1_0", 0, "row 1, column 1: '1_0' is not a number");
    check_err_str("infin,1", 0, "row 1, column 1: 'infin' is not a number");
    check_err_str("1,infinityy", 0, "row 1, column 2: 'infinityy' is not a number");
    check_err_str("1,nan(1)", 0, "row 1, column 2: 'nan(1)' is not a number");
    check_err_str("1,nana", 0, "row 1, column 2: 'nana' is not a number");
    check_err_str("1,1e", 0, "row 1, column 2: '1e' is not a number");
    check_err_str("1,.", 0, "row 1, column 2: '.' is not a number");
    check_err_str("1,-", 0, "row 1, column 2: '-' is not a number");
    check_err_str("1,it's", 0, "row 1, column 2: 'it\\x27s' is not a number");
    check_err_str("1,\xd9\xa1", 0, "row 1, column 2: '\\xd9\\xa1' is not a number");
    check_err_str("1,1\v", 0, "row 1, column 2: '1\\x0b' is not a number");
    check_err_str("1,0x1234567890abcdef1234567890abcdef", 0,
                  "row 1, column 2: '0x1234567890abcdef1234567890abcd...' is not a number");

    /* a decimal of more than 1024 bytes */
    static char body[1100];
    memset(body, '0', sizeof body);
    body[0] = '1';
    body[1] = ',';
    body[sizeof body - 1] = '5';
    check_err(body, sizeof body, 0,
              "row 1, column 2: '00000000000000000000000000000000...' is longer than 1024 bytes");
}

static void quoted_fields_are_accepted(void **state)
{
    (void)state;
    const float want[] = {1.5f, 2, NAN};
    check_ok("\"1.5\", \" 2 \",\"\"\n", 0, 1, 3, want);
}

static void empty_bodies_have_no_rows(void **state)
{
    (void)state;
    check_ok("", 0, 0, 0, NULL);
    check_ok("\n\n\r\n", 0, 0, 0, NULL);
    check_ok("   \n\t\n", 0, 0, 0, NULL);
    check_ok("", 4, 0, 4, NULL);
    check_ok("\xEF\xBB\xBF", 0, 0, 0, NULL);
}

static void bad_values_name_row_and_column(void **state)
{
    (void)state;
    check_err_str("1,2\n3,abc\n", 0, "row 2, column 2: 'abc' is not a number");
    check_err_str("f1,f2,f3\n1,2,3\n", 0, "row 1, column 1: 'f1' is not a number");
    check_err_str("1,2\n\n3,4 5\n", 0, "row 3, column 2: '4 5' is not a number");
    check_err_str("1;2;x", 0, "row 1, column 3: 'x' is not a number");
    check_err_str("1,\"2\n", 0, "row 1, column 2: '\"2' is not a number");
    check_err_str("1,0x\n", 0, "row 1, column 2: '0x' is not a number");
    check_err_str("1,2\\3", 0, "row 1, column 2: '2\\x5c3' is not a number");
    check_err("1,2\0003", 5, 0, "row 1, column 2: '2\\x003' is not a number");
    check_err("7,\xff\xfe\x01", 5, 0, "row 1, column 2: '\\xff\\xfe\\x01' is not a number");
    check_err_str("1\r\r\n", 0, "row 1, column 1: '1\\x0d' is not a number");
    check_err_str("1,123456789012345678901234567890123456789x", 0,
                  "row 1, column 2: '12345678901234567890123456789012...' is not a number");
}

static void width_mismatch_is_reported(void **state)
{
    (void)state;
    check_err_str("1,2,3\n4,5\n", 0, "row 2 has 2 values, expected 3");
    check_err_str("1,2,3\n4,5,6,7\n", 0, "row 2 has 4 values, expected 3");
    check_err_str("1,2,3\r\n\r\n4,5,6,\r\n", 0, "row 3 has 4 values, expected 3");
    check_err_str("1,2,3\n", 4, "row 1 has 3 values, expected 4");
    check_err_str("1 2 3\n4 5\n", 0, "row 2 has 2 values, expected 3");
    check_err_str("1\t2\n3\t4\t\n", 2, "row 2 has 3 values, expected 2");
}

/* A big body decodes correctly into a reused matrix and a second decode
 * reuses the capacity. */
static void big_body_reuses_matrix(void **state)
{
    (void)state;
    sms_buf_t b = {0};
    const size_t rows = 20000, cols = 13;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++)
            assert_int_equal(sms_buf_printf(&b, "%zu.%zu%c", r, c, c + 1 == cols ? '\n' : ','), 0);
    sms_matrix_t m = {0};
    sms_error_t err;
    for (int pass = 0; pass < 2; pass++) {
        size_t cap = m.cap;
        assert_int_equal(sms_csv_decode(b.data, b.len, cols, &m, &err), 0);
        assert_int_equal(m.rows, rows);
        assert_int_equal(m.cols, cols);
        if (pass == 1)
            assert_int_equal(m.cap, cap);
        char want[64];
        snprintf(want, sizeof want, "%zu.%zu", rows - 1, cols - 1);
        assert_true(m.values[rows * cols - 1] == strtof(want, NULL));
        assert_true(m.values[cols + 2] == 1.2f);
    }
    /* a failing decode leaves no rows behind */
    assert_int_equal(sms_csv_decode("1,x", 3, 0, &m, &err), -1);
    assert_int_equal(m.rows, 0);
    sms_matrix_free(&m);
    sms_buf_free(&b);
}

/* Numbers as clients write them (the shapes of bench_decode's mix and
 * longer ones), in bodies of a few rows with CRLF or LF, missing fields and
 * with or without a final newline, so that numbers sit at every distance
 * from the row's and the body's end (the body right before a guard page):
 * every value has exactly the bits of its float64 cast to float32. */
static void realistic_rows_match_float64_cast(void **state)
{
    (void)state;
    sms_buf_t b = {0};
    float want[64];
    char tok[48];
    for (int i = 0; i < 10000; i++) {
        size_t rows = 1 + rnd() % 4, cols = 1 + rnd() % 8, n = 0;
        const char *eol = rnd() % 4 == 0 ? "\r\n" : "\n";
        sms_buf_reset(&b);
        for (size_t r = 0; r < rows; r++) {
            for (size_t c = 0; c < cols; c++) {
                double x = (double)rnd() / 4294967296.0 + (double)rnd() / 1.8446744073709552e19;
                const char *sign = rnd() % 4 == 0 ? "-" : "";
                uint32_t kind = rnd() % 8, scale = rnd() % 8;
                if (kind == 0 && cols > 1)
                    tok[0] = '\0';
                else if (kind <= 1)
                    snprintf(tok, sizeof tok, "%s%.6f", sign, x);
                else if (kind == 2)
                    snprintf(tok, sizeof tok, "%s%.*f", sign, (int)(rnd() % 4), x * 500);
                else if (kind == 3)
                    snprintf(tok, sizeof tok, "%s%u", sign, rnd() % (1u << (rnd() % 32)));
                else if (kind == 4)
                    snprintf(tok, sizeof tok, "%s%.*g", sign, 1 + (int)(rnd() % 3),
                             x * pow(10, (int)scale * 3 - 12));
                else if (kind == 5)
                    snprintf(tok, sizeof tok, "%s%.9g", sign,
                             (double)(float)(x * pow(10, (int)scale - 2)));
                else
                    snprintf(tok, sizeof tok, "%s%.*g", sign, 15 + (int)(rnd() % 5),
                             x * pow(10, (int)scale - 3));
                want[n++] = tok[0] ? (float)strtod(tok, NULL) : NAN;
                assert_int_equal(sms_buf_printf(&b, "%s%s", c ? "," : "", tok), 0);
            }
            if (r + 1 < rows || rnd() % 2)
                assert_int_equal(sms_buf_printf(&b, "%s", eol), 0);
        }
        sms_matrix_t m = {0};
        sms_error_t err;
        int rc = decode(b.data, b.len, 0, &m, &err);
        if (rc != 0)
            print_error("body '%s': %s\n", b.data, err.msg);
        assert_int_equal(rc, 0);
        assert_int_equal(m.rows, rows);
        assert_int_equal(m.cols, cols);
        for (size_t k = 0; k < n; k++) {
            if (isnan(want[k])) {
                assert_true(isnan(m.values[k]));
            } else if (memcmp(&m.values[k], &want[k], sizeof want[k]) != 0) {
                print_error("body '%s': value %zu is %.9g, want %.9g\n", b.data, k,
                            (double)m.values[k], (double)want[k]);
                fail();
            }
        }
        sms_matrix_free(&m);
    }
    sms_buf_free(&b);
}

static void hostile_random_bytes(void **state)
{
    (void)state;
    static const char alphabet[] = "0123456789,,,\t \n\r\".-+eEnaif";
    char body[300];
    for (int i = 0; i < 20000; i++) {
        size_t n = rnd() % sizeof body;
        int binary = i % 4 == 0;
        for (size_t k = 0; k < n; k++)
            body[k] = binary ? (char)rnd() : alphabet[rnd() % (sizeof alphabet - 1)];
        check_clean(body, n, 0);
        check_clean(body, n, 1 + rnd() % 4);
    }
}

static void hostile_truncations(void **state)
{
    (void)state;
    const char *doc = "\xEF\xBB\xBF"
                      "1.5,-2e-3, \"3\" ,,nan\r\n\r\n"
                      "0x1p3,inf,1e39,-0,7\n 8 , 9,10,11,12\n";
    size_t n = strlen(doc);
    for (size_t k = 0; k <= n; k++) {
        check_clean(doc, k, 0);
        check_clean(doc, k, 5);
    }
}

static void hostile_numbers(void **state)
{
    (void)state;
    const float tiny[] = {0, 0, -0.0f};
    check_ok("1e-99999999999999999999,0e999999999,-1e-400", 0, 1, 3, tiny);
    check_err_str("1e-5,1e99999999999999999999", 0,
                  "row 1, column 2: '1e99999999999999999999' is beyond float32's range "
                  "(+-3.4028235e38), which XGBoost refuses");

    /* overlong tokens: 1024 bytes is the most a number may take */
    static char body[5000];
    memset(body, '1', sizeof body);
    sms_matrix_t m = {0};
    sms_error_t err;
    assert_int_equal(decode(body, 1024, 0, &m, &err), -1); /* 1.1e1023 */
    assert_string_equal(err.msg, "row 1, column 1: '11111111111111111111111111111111...' is "
                                 "beyond float32's range (+-3.4028235e38), which XGBoost refuses");
    assert_int_equal(decode(body, 1025, 0, &m, &err), -1);
    assert_string_equal(
        err.msg,
        "row 1, column 1: '11111111111111111111111111111111...' is longer than 1024 bytes");
    assert_int_equal(decode(body, sizeof body, 0, &m, &err), -1);
    memset(body, ',', sizeof body);
    assert_int_equal(decode(body, sizeof body, 0, &m, &err), 0);
    assert_int_equal(m.rows, 1);
    assert_int_equal(m.cols, sizeof body + 1);
    memset(body, '\0', sizeof body);
    assert_int_equal(decode(body, sizeof body, 0, &m, &err), -1);
    assert_int_equal(err.status, 400);
    sms_matrix_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(comma_rows_decode),
        cmocka_unit_test(other_delimiters_are_sniffed),
        cmocka_unit_test(empty_fields_are_missing),
        cmocka_unit_test(quoted_fields_are_accepted),
        cmocka_unit_test(accepted_number_forms),
        cmocka_unit_test(refused_number_forms),
        cmocka_unit_test(empty_bodies_have_no_rows),
        cmocka_unit_test(bad_values_name_row_and_column),
        cmocka_unit_test(width_mismatch_is_reported),
        cmocka_unit_test(big_body_reuses_matrix),
        cmocka_unit_test(realistic_rows_match_float64_cast),
        cmocka_unit_test(hostile_random_bytes),
        cmocka_unit_test(hostile_truncations),
        cmocka_unit_test(hostile_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
