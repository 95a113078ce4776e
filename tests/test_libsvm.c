/* sms_libsvm_decode: every libsvm body of the recorded AWS corpus decoded to
 * the matrix index.json describes (the per-body index-base guess included),
 * labels, blank and label-only lines, CRLF, the refusals a user sees, the
 * value cap, and hostile bodies placed right before a PROT_NONE page. */
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smserve/libsvm.h"

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;

static uint32_t rnd(void)
{
    return tu_rand32(&rng_state);
}

/* index.json's matrix `name`, `rows` rows of the model's 6 features, into
 * want. */
static void corpus_matrix(json_t *index, const char *name, size_t rows, float *want)
{
    size_t r, c;
    float *m = tu_aws_matrix(index, name, &r, &c);
    assert_int_equal(r, rows);
    assert_int_equal(c, 6);
    memcpy(want, m, r * c * sizeof *m);
    free(m);
}

static void check_corpus_file(const char *dir, const char *name, size_t expect_cols, size_t rows,
                              size_t cols, const float *want, const char *msg)
{
    char *file = tu_path("requests", name), *path = tu_path(dir, file);
    size_t len;
    char *body = tu_read_file(path, &len);
    assert_non_null(body);
    if (msg) {
        tu_check_decode_err(sms_libsvm_decode, body, len, expect_cols, msg);
    } else {
        sms_matrix_t m = {0};
        sms_error_t err;
        int rc = tu_decode_guarded(sms_libsvm_decode, body, len, expect_cols, &m, &err);
        if (rc != 0)
            print_error("%s: %s\n", name, err.msg);
        assert_int_equal(rc, 0);
        tu_assert_matrix_equal(&m, rows, cols, want);
        sms_matrix_free(&m);
    }
    free(body);
    free(path);
    free(file);
}

/* Every libsvm body of the corpus, at the model's width (6) and free. */
static void corpus_bodies_decode(void **state)
{
    (void)state;
    char *dir = tu_aws_corpus("requests/index.json");
    json_t *index = tu_aws_index(dir);

    float row1[6], rows3[18], no_f0[18], sparse[18], shifted[18], free_shift[15], last[18];
    corpus_matrix(index, "ROW1", 1, row1);
    corpus_matrix(index, "ROWS3", 3, rows3);
    corpus_matrix(index, "ROWS3_NO_F0", 3, no_f0);
    corpus_matrix(index, "ROWS3_SPARSE", 3, sparse);
    /* the trap: written 0-based without index 0, read 1-based as AWS does,
     * so every value lands one column left of where its writer meant it */
    for (size_t r = 0; r < 3; r++)
        for (size_t c = 0; c < 6; c++) {
            shifted[r * 6 + c] = c < 5 ? no_f0[r * 6 + c + 1] : NAN;
            if (c < 5)
                free_shift[r * 5 + c] = no_f0[r * 6 + c + 1];
        }
    /* the trailing label-only line is a row of missing values (AWS drops it) */
    memcpy(last, rows3, 12 * sizeof *last);
    for (size_t c = 0; c < 6; c++)
        last[12 + c] = NAN;

    static const size_t widths[] = {6, 0};
    for (size_t w = 0; w < 2; w++) {
        size_t e = widths[w];
        check_corpus_file(dir, "libsvm_1row_0based.libsvm", e, 1, 6, row1, NULL);
        check_corpus_file(dir, "libsvm_1row_1based.libsvm", e, 1, 6, row1, NULL);
        check_corpus_file(dir, "libsvm_3rows_0based.libsvm", e, 3, 6, rows3, NULL);
        check_corpus_file(dir, "libsvm_3rows_1based.libsvm", e, 3, 6, rows3, NULL);
        check_corpus_file(dir, "libsvm_3rows_nolabel_1based.libsvm", e, 3, 6, rows3, NULL);
        check_corpus_file(dir, "libsvm_3rows_no_f0_1based.libsvm", e, 3, 6, no_f0, NULL);
        check_corpus_file(dir, "libsvm_3rows_no_f0_0based.libsvm", e, 3, e ? 6 : 5,
                          e ? shifted : free_shift, NULL);
        check_corpus_file(dir, "libsvm_3rows_sparse_1based.libsvm", e, 3, 6, sparse, NULL);
        check_corpus_file(dir, "libsvm_last_row_label_only.libsvm", e, 3, 6, last, NULL);
        check_corpus_file(dir, "libsvm_qid.libsvm", e, 0, 0, NULL,
                          "line 1: 'qid:3': qid (ranking) is not supported");
        check_corpus_file(
            dir, "libsvm_tabs.libsvm", e, 0, 0, NULL,
            "line 1: '0\\x091:1.5\\x092:7.25\\x093:3.0\\x094:8.125\\x095:6...': a tab; "
            "separate libsvm tokens with single spaces");
    }
    check_corpus_file(dir, "libsvm_index7_1based.libsvm", 6, 0, 0, NULL,
                      "line 1: '7:4.5': index 7 is beyond 6 features (indices read as 1-based: "
                      "no index 0 in the body)");
    float row7[7];
    memcpy(row7, row1, sizeof row1);
    row7[6] = 4.5f;
    check_corpus_file(dir, "libsvm_index7_1based.libsvm", 0, 1, 7, row7, NULL);
    json_decref(index);
    free(dir);
}

static void labels_are_read_and_dropped(void **state)
{
    (void)state;
    const float want[] = {NAN, 2, NAN};
    static const char *const labels[] = {"1",   "-1",  "+1", "1,3",  "0.5",
                                         "nan", "1e3", "-0", "2,1,0"};
    char body[64];
    for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++) {
        snprintf(body, sizeof body, "%s 2:2", labels[i]);
        tu_check_decode_ok(sms_libsvm_decode, body, 3, 1, 3, want);
    }
    const tu_decode_case_t cases[] = {
        TU_DECODES("2:2", 3, 1, 3, want),
        TU_REFUSES("abc 1:2", 0, "line 1: 'abc': the label is not a number"),
        TU_REFUSES("1,,2 1:2", 0, "line 1: '1,,2': the label is not a number"),
        TU_REFUSES("1, 1:2", 0, "line 1: '1,': the label is not a number"),
        TU_REFUSES("inf 1:2", 0, "line 1: 'inf': the label is infinite, which XGBoost refuses"),
        TU_REFUSES("1 1:2 3", 0,
                   "line 1: '3': not index:value (only a line's first token may be a label)"),
    };
    tu_check_decode_cases(sms_libsvm_decode, cases, TU_COUNT(cases));
}

static void lines_spaces_and_line_ends(void **state)
{
    (void)state;
    const float want[] = {1, 2, NAN, NAN, NAN, 3};
    const tu_decode_case_t cases[] = {
        TU_DECODES("0 1:1 2:2\n1 3:3\n", 0, 2, 3, want),
        TU_DECODES("0 1:1 2:2\r\n1 3:3\r\n", 0, 2, 3, want),
        TU_DECODES("0 1:1 2:2\r\n1 3:3\r", 0, 2, 3, want),
        TU_DECODES("  0   1:1  2:2   \n\n   \r\n 1    3:3", 0, 2, 3, want),
        TU_DECODES("\n\n0 1:1 2:2\n \n1 3:3\n\n\n", 3, 2, 3, want),
        /* label-only lines are rows of missing values; blank lines are no rows */
        TU_DECODES("1\n0 2:1\n\n1\n", 0, 3, 2, ((const float[]){NAN, NAN, NAN, 1, NAN, NAN})),
        TU_DECODES("0 2:1\n1\n", 3, 2, 3, ((const float[]){NAN, 1, NAN, NAN, NAN, NAN})),
        /* a '\r' not before the line's end is part of a token */
        TU_REFUSES("0 1:1\r2:2\n", 0, "line 1: '1:1\\x0d2:2': the value is not a number"),
        TU_REFUSES("0 1:1\r\r\n", 0, "line 1: '1:1\\x0d': the value is not a number"),
    };
    tu_check_decode_cases(sms_libsvm_decode, cases, TU_COUNT(cases));
}

static void empty_bodies_have_no_rows(void **state)
{
    (void)state;
    static const tu_decode_case_t cases[] = {
        TU_DECODES("", 0, 0, 0, NULL),
        TU_DECODES("\n\r\n   \n", 0, 0, 0, NULL),
        TU_DECODES("", 6, 0, 6, NULL),
        TU_REFUSES("1\n", 0, "no index:value pair in the body's 1 line(s): nothing to predict on"),
        TU_REFUSES("1\n\n0,1\n", 4,
                   "no index:value pair in the body's 2 line(s): nothing to predict on"),
    };
    tu_check_decode_cases(sms_libsvm_decode, cases, TU_COUNT(cases));
}

static void index_base_per_body(void **state)
{
    (void)state;
    const tu_decode_case_t cases[] = {
        /* 1-based until an index 0 appears anywhere, in any row */
        TU_DECODES("1 1:5 3:7", 3, 1, 3, ((const float[]){5, NAN, 7})),
        TU_DECODES("1 1:5 2:7\n0 0:1", 3, 2, 3, ((const float[]){NAN, 5, 7, 1, NAN, NAN})),
        TU_DECODES("1 1:5 2:7\n0 0:1", 0, 2, 3, ((const float[]){NAN, 5, 7, 1, NAN, NAN})),
        TU_DECODES("1 2:5 00:1 1:2", 3, 1, 3, ((const float[]){1, 2, 5})),
        TU_DECODES("1\n1 2:5\n0:1", 3, 3, 3,
                   ((const float[]){NAN, NAN, NAN, NAN, NAN, 5, 1, NAN, NAN})),
        /* an index equal to the width fits 1-based, not once index 0 shows up */
        TU_REFUSES("1 3:5\n0 0:1", 3,
                   "line 1: '3:5': index 3 is beyond 3 features (indices read as 0-based: the "
                   "body uses index 0)"),
        TU_REFUSES("1 4:5\n0 0:1", 3,
                   "line 1: '4:5': index 4 is beyond 3 features (indices read as 0-based: the "
                   "body uses index 0)"),
        TU_REFUSES("1 4:5\n0 1:1", 3,
                   "line 1: '4:5': index 4 is beyond 3 features (indices read as 1-based: no "
                   "index 0 in the body)"),
        TU_REFUSES("1 0:1 3:5", 3,
                   "line 1: '3:5': index 3 is beyond 3 features (indices read as 0-based: the "
                   "body uses index 0)"),
    };
    tu_check_decode_cases(sms_libsvm_decode, cases, TU_COUNT(cases));
}

static void values(void **state)
{
    (void)state;
    const tu_decode_case_t cases[] = {
        /* an explicit 0 is the value 0; nan is missing; no value is refused */
        TU_DECODES("1 1:0 2:nan 3:-0 4:+1.5e1", 4, 1, 4, ((const float[]){0, NAN, -0.0f, 15})),
        TU_REFUSES("1 1:", 0, "line 1: '1:': the value is not a number"),
        TU_REFUSES("1 1:abc", 0, "line 1: '1:abc': the value is not a number"),
        TU_REFUSES("1 1:inf", 0, "line 1: '1:inf': the value is infinite, which XGBoost refuses"),
        TU_REFUSES("1 1:1e39", 0,
                   "line 1: '1:1e39': the value is beyond float32's range (+-3.4028235e38), which "
                   "XGBoost refuses"),
        TU_REFUSES("1 1:2:3", 0, "line 1: '1:2:3': the value is not a number"),
        TU_REFUSES("1 1:0x10", 0, "line 1: '1:0x10': the value is not a number"),
    };
    tu_check_decode_cases(sms_libsvm_decode, cases, TU_COUNT(cases));
}

static void refused_tokens(void **state)
{
    (void)state;
    static const tu_decode_case_t cases[] = {
        TU_REFUSES("1 qid:3 1:0.5 2:4.25", 0, "line 1: 'qid:3': qid (ranking) is not supported"),
        TU_REFUSES("1 1:1\n1 QID:3 1:0.5", 0, "line 2: 'QID:3': qid (ranking) is not supported"),
        TU_REFUSES("0\t1:1.5", 0,
                   "line 1: '0\\x091:1.5': a tab; separate libsvm tokens with single spaces"),
        TU_REFUSES("0 1:1.5\t2:3", 0,
                   "line 1: '1:1.5\\x092:3': a tab; separate libsvm tokens with single spaces"),
        TU_REFUSES("\t", 0, "line 1: '\\x09': a tab; separate libsvm tokens with single spaces"),
        TU_REFUSES("1 -1:2", 0, "line 1: '-1:2': the index is not a non-negative integer"),
        TU_REFUSES("1 +1:2", 0, "line 1: '+1:2': the index is not a non-negative integer"),
        TU_REFUSES("1 1_0:2", 0, "line 1: '1_0:2': the index is not a non-negative integer"),
        TU_REFUSES("1 :2", 0, "line 1: ':2': the index is not a non-negative integer"),
        TU_REFUSES("1 x:2", 0, "line 1: 'x:2': the index is not a non-negative integer"),
        TU_REFUSES("1 \xd9\xa1:2", 0,
                   "line 1: '\\xd9\\xa1:2': the index is not a non-negative integer"),
        TU_REFUSES("1 1:2 1:3", 0, "line 1: '1:3': index 1 appears twice in the line"),
        TU_REFUSES("1 1:nan 1:3", 4, "line 1: '1:3': index 1 appears twice in the line"),
        TU_REFUSES("1 2:1 1:2 2:3", 4, "line 1: '2:3': index 2 appears twice in the line"),
        /* 20 digits overflow; 19 fit and are beyond any width */
        TU_REFUSES("1 12345678901234567890:1", 0,
                   "line 1: '12345678901234567890:1': the index is too large"),
        TU_REFUSES("1 1234567890123456789:1", 6,
                   "line 1: '1234567890123456789:1': index 1234567890123456789 is beyond 6 "
                   "features (indices read as 1-based: no index 0 in the body)"),
        TU_REFUSES("1 1:1 1 2:2", 0,
                   "line 1: '1': not index:value (only a line's first token may be a label)"),
        TU_REFUSES("1 1:1\n\n1 2:2 1:1 1:2", 0, "line 3: '1:2': index 1 appears twice in the line"),
    };
    tu_check_decode_cases(sms_libsvm_decode, cases, TU_COUNT(cases));
}

static void long_tokens_are_quoted_bounded(void **state)
{
    (void)state;
    static char body[3000];
    memset(body, '7', sizeof body - 1);
    memcpy(body, "1 1:", 4);
    body[sizeof body - 2] = 'x';
    tu_check_decode_err(sms_libsvm_decode, body, strlen(body), 0,
                        "line 1: '1:777777777777777777777777777777...': the value is not a number");
}

/* A sparse body expands to rows x width floats: capped, 413. */
static void value_cap(void **state)
{
    (void)state;
    sms_matrix_t m = {0};
    sms_error_t err = {0};
    const char *body = "1 1:1\n1 2:1\n\n1 3:1\n";
    assert_int_equal(sms_libsvm_decode_capped(body, strlen(body), 4, 12, &m, &err), 0);
    assert_int_equal(m.rows, 3);
    assert_int_equal(sms_libsvm_decode_capped(body, strlen(body), 4, 11, &m, &err), -1);
    assert_int_equal(err.status, 413);
    assert_string_equal(err.msg, "the body expands to 3 rows x 4 columns, over the limit of 11 "
                                 "values; send fewer rows per request");
    assert_int_equal(m.rows, 0);
    assert_int_equal(sms_libsvm_decode_capped(body, strlen(body), 0, 8, &m, &err), -1);
    assert_int_equal(err.status, 413);
    assert_string_equal(err.msg, "the body expands to 3 rows x 3 columns, over the limit of 8 "
                                 "values; send fewer rows per request");
    /* a huge index with a free width: refused before any allocation */
    body = "1 1000000000000000000:1";
    assert_int_equal(sms_libsvm_decode(body, strlen(body), 0, &m, &err), -1);
    assert_int_equal(err.status, 413);
    body = "1 67108864:1";
    assert_int_equal(sms_libsvm_decode(body, strlen(body), 0, &m, &err), 0);
    assert_int_equal(m.cols, 67108864);
    body = "1 67108865:1";
    assert_int_equal(sms_libsvm_decode(body, strlen(body), 0, &m, &err), -1);
    assert_int_equal(err.status, 413);
    sms_matrix_set_max_values(100);
    body = "1 101:1";
    assert_int_equal(sms_libsvm_decode(body, strlen(body), 0, &m, &err), -1);
    assert_int_equal(err.status, 413);
    sms_matrix_set_max_values(0);
    assert_int_equal(sms_libsvm_decode(body, strlen(body), 0, &m, &err), 0);
    sms_matrix_free(&m);
}

/* Random sparse rows, 0- or 1-based, with random spacing, labels and line
 * ends: each decodes to the cells written, free-width and fixed. */
static void random_rows_round_trip(void **state)
{
    (void)state;
    sms_buf_t b = {0};
    float want[8 * 12];
    for (int i = 0; i < 5000; i++) {
        size_t rows = 1 + rnd() % 8, cols = 1 + rnd() % 12;
        int zero_based = rnd() % 2;
        const char *eol = rnd() % 3 == 0 ? "\r\n" : "\n";
        sms_buf_reset(&b);
        for (size_t k = 0; k < rows * cols; k++)
            want[k] = NAN;
        int saw_zero = 0;
        size_t max_col = 0;
        for (size_t r = 0; r < rows; r++) {
            size_t line_start = b.len;
            if (rnd() % 2)
                assert_int_equal(sms_buf_printf(&b, "%u ", rnd() % 3), 0);
            for (size_t c = 0; c < cols; c++) {
                if (rnd() % 3 == 0)
                    continue;
                float v = (float)((int)(rnd() % 2001) - 1000) / 8;
                want[r * cols + c] = v;
                saw_zero |= c == 0 && zero_based;
                if (c > max_col)
                    max_col = c;
                assert_int_equal(sms_buf_printf(&b, "%*s%zu:%g", 1 + (int)(rnd() % 3), "",
                                                c + (zero_based ? 0 : 1), (double)v),
                                 0);
            }
            if (b.len == line_start) /* a label-only row, not a blank line */
                assert_int_equal(sms_buf_printf(&b, "1"), 0);
            assert_int_equal(sms_buf_printf(&b, "%s%s", rnd() % 4 ? "" : "  ", eol), 0);
        }
        sms_matrix_t m = {0};
        sms_error_t err;
        int rc = tu_decode_guarded(sms_libsvm_decode, b.data, b.len, cols, &m, &err);
        int any = 0;
        for (size_t k = 0; k < rows * cols; k++)
            any |= !isnan(want[k]);
        if (!any) {
            assert_int_equal(rc, -1);
            sms_matrix_free(&m);
            continue;
        }
        if (zero_based && !saw_zero) {
            /* read 1-based, as AWS would: everything one column left,
             * the first column dropped */
            for (size_t r = 0; r < rows; r++) {
                memmove(want + r * cols, want + r * cols + 1, (cols - 1) * sizeof *want);
                want[r * cols + cols - 1] = NAN;
            }
        }
        if (rc != 0)
            print_error("body '%s': %s\n", b.data, err.msg);
        assert_int_equal(rc, 0);
        tu_assert_matrix_equal(&m, rows, cols, want);
        /* free width: the same cells, as far as the largest index reaches */
        assert_int_equal(tu_decode_guarded(sms_libsvm_decode, b.data, b.len, 0, &m, &err), 0);
        size_t width = zero_based && !saw_zero ? max_col : max_col + 1;
        assert_int_equal(m.cols, width);
        for (size_t r = 0; r < rows; r++)
            for (size_t c = 0; c < width; c++) {
                float w = want[r * cols + c], got = m.values[r * width + c];
                assert_true(isnan(w) ? isnan(got) : got == w);
            }
        sms_matrix_free(&m);
    }
    sms_buf_free(&b);
}

/* Hostile bodies, under a lowered value cap so that none allocates much: a
 * refusal may also be the cap's 413. */
static void hostile_random_bytes(void **state)
{
    (void)state;
    sms_matrix_set_max_values(1 << 16);
    tu_check_decode_random(tu_check_decode_clean_capped, sms_libsvm_decode,
                           "0123456789:::   \n\r\t.-+eEnaqid,", 300, 20000, 8, &rng_state);
    sms_matrix_set_max_values(0);
}

static void hostile_truncations(void **state)
{
    (void)state;
    const char *doc = "1,2 0:1.5 3:-2e-3\r\n\r\n  7:nan 1:0x1p3\n+1 2:inf 6:1e39 5:-0\n"
                      "qid:1 4:7\n0 12345678901234567890:1 2:3";
    static const size_t widths[] = {0, 5, 8};
    sms_matrix_set_max_values(1 << 16);
    tu_check_decode_prefixes(tu_check_decode_clean_capped, sms_libsvm_decode, doc, strlen(doc),
                             widths, TU_COUNT(widths));
    sms_matrix_set_max_values(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(corpus_bodies_decode),
        cmocka_unit_test(labels_are_read_and_dropped),
        cmocka_unit_test(lines_spaces_and_line_ends),
        cmocka_unit_test(empty_bodies_have_no_rows),
        cmocka_unit_test(index_base_per_body),
        cmocka_unit_test(values),
        cmocka_unit_test(refused_tokens),
        cmocka_unit_test(long_tokens_are_quoted_bounded),
        cmocka_unit_test(value_cap),
        cmocka_unit_test(random_rows_round_trip),
        cmocka_unit_test(hostile_random_bytes),
        cmocka_unit_test(hostile_truncations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
