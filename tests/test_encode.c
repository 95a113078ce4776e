/* Response encoders and the Accept header: exact output for each encoding,
 * round trips through the CSV decoder and jansson, and content negotiation
 * with parameters, q-values and wildcards. */
#include "testutil.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smserve/csv.h"
#include "smserve/encode.h"

static uint64_t rng_state = 0x94D049BB133111EBull;

static uint32_t rnd(void)
{
    return tu_rand32(&rng_state);
}

static void content_types(void **state)
{
    (void)state;
    assert_string_equal(sms_encoding_content_type(SMS_ENC_CSV), "text/csv; charset=utf-8");
    assert_string_equal(sms_encoding_content_type(SMS_ENC_JSON), "application/json");
    assert_string_equal(sms_encoding_content_type(SMS_ENC_JSONLINES), "application/jsonlines");
}

static void check_accept(const char *accept, sms_encoding_t fallback, int want)
{
    sms_encoding_t got = (sms_encoding_t)99;
    int rc = sms_encoding_from_accept(accept, fallback, &got);
    if (want < 0) {
        if (rc != -1)
            print_error("accept '%s' (fallback %d): got %d, want 406\n", accept ? accept : "NULL",
                        (int)fallback, (int)got);
        assert_int_equal(rc, -1);
        return;
    }
    if (rc != 0 || (int)got != want)
        print_error("accept '%s' (fallback %d): rc %d got %d, want %d\n", accept ? accept : "NULL",
                    (int)fallback, rc, (int)got, want);
    assert_int_equal(rc, 0);
    assert_int_equal((int)got, want);
}

static void accept_picks_encoding(void **state)
{
    (void)state;
    const int CSV = SMS_ENC_CSV, JSON = SMS_ENC_JSON, JSONL = SMS_ENC_JSONLINES;
    for (int f = CSV; f <= JSONL; f++) {
        sms_encoding_t fb = (sms_encoding_t)f;
        check_accept(NULL, fb, f);
        check_accept("", fb, f);
        check_accept("  ", fb, f);
        check_accept(" , ,", fb, f);
        check_accept("*/*", fb, f);
        check_accept("*/*; q=0.8", fb, f);
        check_accept("text/csv", fb, CSV);
        check_accept("text/csv; charset=utf-8", fb, CSV);
        check_accept("Text/CSV;Charset=UTF-8", fb, CSV);
        check_accept("application/json", fb, JSON);
        check_accept("APPLICATION/JSON", fb, JSON);
        check_accept("application/json; charset=utf-8", fb, JSON);
        check_accept("application/jsonlines", fb, JSONL);
        check_accept("text/*", fb, CSV);
        check_accept("application/*", fb, f == JSONL ? JSONL : JSON);
        check_accept("application/json;q=0.5, text/csv;q=0.9", fb, CSV);
        check_accept("application/json;q=0.9, text/csv;q=0.5", fb, JSON);
        check_accept("application/json, text/csv", fb, JSON);
        check_accept("text/csv, application/json", fb, CSV);
        check_accept("text/csv;q=0.5, application/json;q=0.5", fb, CSV);
        check_accept("text/csv;q=0.5,application/jsonlines; q=0.500", fb, CSV);
        check_accept("application/x-recordio-protobuf", fb, -1);
        check_accept("image/png, text/html", fb, -1);
        check_accept("application/x-recordio-protobuf, */*;q=0.1", fb, f);
        check_accept("application/x-recordio-protobuf, application/jsonlines;q=0.2", fb, JSONL);
        check_accept("text/csv;q=0", fb, -1);
        check_accept("text/csv;q=0.000", fb, -1);
        check_accept("*/*;q=0", fb, -1);
        check_accept("text/csv;q=0, */*", fb, f == CSV ? JSON : f);
        check_accept("*/*;q=0.1, application/json", fb, JSON);
        check_accept("*/*, application/json;q=0", fb, f == JSON ? CSV : f);
        check_accept("text/csv ; q = 0.7 , application/json ; q=0.71", fb, JSON);
        check_accept("text/csv;q=abc", fb, CSV); /* malformed q counts as 1 */
        check_accept("text/csv;level=1;q=0.3, application/json;q=0.2", fb, CSV);
        check_accept("text/csvx, application/jsonx, text/cs", fb, -1);
    }
}

static void check_encode(sms_encoding_t enc, const float *preds, size_t rows, size_t cols,
                         const char *want)
{
    sms_buf_t out = {0};
    assert_int_equal(sms_encode(enc, preds, rows, cols, &out), 0);
    assert_non_null(out.data);
    assert_string_equal(out.data, want);
    assert_int_equal(out.len, strlen(want));
    /* appends to what the buffer holds */
    sms_buf_reset(&out);
    assert_int_equal(sms_buf_printf(&out, "head:"), 0);
    assert_int_equal(sms_encode(enc, preds, rows, cols, &out), 0);
    assert_memory_equal(out.data, "head:", 5);
    assert_string_equal(out.data + 5, want);
    sms_buf_free(&out);
}

static void encodings_match_examples(void **state)
{
    (void)state;
    const float two[] = {0.5f, 0.25f};
    check_encode(SMS_ENC_CSV, two, 2, 1, "0.5\n0.25\n");
    check_encode(SMS_ENC_JSON, two, 2, 1,
                 "{\"predictions\": [{\"score\": 0.5}, {\"score\": 0.25}]}");
    check_encode(SMS_ENC_JSONLINES, two, 2, 1, "{\"score\": 0.5}\n{\"score\": 0.25}\n");

    const float multi[] = {0.1f, 0.2f, 0.7f};
    check_encode(SMS_ENC_CSV, multi, 1, 3, "0.1,0.2,0.7\n");
    check_encode(SMS_ENC_JSON, multi, 1, 3, "{\"predictions\": [{\"score\": [0.1, 0.2, 0.7]}]}");
    check_encode(SMS_ENC_JSONLINES, multi, 1, 3, "{\"score\": [0.1, 0.2, 0.7]}\n");
    check_encode(SMS_ENC_CSV, two, 1, 2, "0.5,0.25\n");

    const float odd[] = {NAN, INFINITY, -INFINITY, -0.0f, 0.0254f, 1e-5f};
    check_encode(SMS_ENC_CSV, odd, 2, 3, "nan,inf,-inf\n-0,0.0254,1e-05\n");
    check_encode(SMS_ENC_JSON, odd, 2, 3,
                 "{\"predictions\": [{\"score\": [null, null, null]}, "
                 "{\"score\": [-0, 0.0254, 1e-05]}]}");
    check_encode(SMS_ENC_JSONLINES, odd, 6, 1,
                 "{\"score\": null}\n{\"score\": null}\n{\"score\": null}\n"
                 "{\"score\": -0}\n{\"score\": 0.0254}\n{\"score\": 1e-05}\n");

    check_encode(SMS_ENC_CSV, NULL, 0, 1, "");
    check_encode(SMS_ENC_JSON, NULL, 0, 1, "{\"predictions\": []}");
    check_encode(SMS_ENC_JSONLINES, NULL, 0, 3, "");
}

static float random_float(void)
{
    for (;;) {
        uint32_t u = rnd();
        if (rnd() % 3 == 0)
            u &= 0x807FFFFFu; /* denormal */
        float v;
        memcpy(&v, &u, sizeof v);
        if (isfinite(v))
            return v;
    }
}

/* Every float comes back bit for bit through the CSV decoder, and the JSON
 * is valid JSON (jansson) holding the same values. */
static void outputs_round_trip(void **state)
{
    (void)state;
    const size_t rows = 3000, cols = 4;
    float *preds = malloc(rows * cols * sizeof *preds);
    assert_non_null(preds);
    for (size_t i = 0; i < rows * cols; i++)
        preds[i] = random_float();

    sms_buf_t out = {0};
    assert_int_equal(sms_encode(SMS_ENC_CSV, preds, rows, cols, &out), 0);
    sms_matrix_t m = {0};
    sms_error_t err;
    assert_int_equal(sms_csv_decode(out.data, out.len, cols, &m, &err), 0);
    assert_int_equal(m.rows, rows);
    assert_memory_equal(m.values, preds, rows * cols * sizeof *preds);
    sms_matrix_free(&m);

    for (size_t c = 1; c <= cols; c += cols - 1) {
        sms_buf_reset(&out);
        assert_int_equal(sms_encode(SMS_ENC_JSON, preds, rows * cols / c, c, &out), 0);
        json_error_t jerr;
        json_t *root = json_loadb(out.data, out.len, 0, &jerr);
        assert_non_null(root);
        json_t *list = json_object_get(root, "predictions");
        assert_int_equal(json_array_size(list), rows * cols / c);
        for (size_t r = 0; r < rows * cols / c; r++) {
            json_t *score = json_object_get(json_array_get(list, r), "score");
            for (size_t k = 0; k < c; k++) {
                json_t *num = c == 1 ? score : json_array_get(score, k);
                assert_true(json_is_number(num));
                float back = (float)json_number_value(num);
                assert_memory_equal(&back, &preds[r * c + k], sizeof back);
            }
        }
        json_decref(root);
    }

    sms_buf_reset(&out);
    assert_int_equal(sms_encode(SMS_ENC_JSONLINES, preds, rows, cols, &out), 0);
    const char *line = out.data;
    for (size_t r = 0; r < rows; r++) {
        const char *nl = strchr(line, '\n');
        assert_non_null(nl);
        json_error_t jerr;
        json_t *obj = json_loadb(line, (size_t)(nl - line), 0, &jerr);
        assert_non_null(obj);
        assert_int_equal(json_array_size(json_object_get(obj, "score")), cols);
        json_decref(obj);
        line = nl + 1;
    }
    assert_int_equal(*line, '\0');
    sms_buf_free(&out);
    free(preds);
}

/* The encoders write into one up-front reservation without bounds checks,
 * so it must be a true bound: with the widest values, under ASan an overrun
 * here crashes. */
static void reservation_is_a_bound(void **state)
{
    (void)state;
    const float widest[] = {-1.17549435e-38f, -3.4028235e38f, -1.1754944e-38f,
                            -1.4e-45f,        -0.33333334f,   NAN};
    for (int enc = SMS_ENC_CSV; enc <= SMS_ENC_JSONLINES; enc++) {
        for (size_t cols = 1; cols <= 6; cols++) {
            sms_buf_t out = {0};
            assert_int_equal(sms_encode((sms_encoding_t)enc, widest, 6 / cols, cols, &out), 0);
            assert_true(out.len < out.cap);
            assert_int_equal(strlen(out.data), out.len);
            sms_buf_free(&out);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(content_types),
        cmocka_unit_test(accept_picks_encoding),
        cmocka_unit_test(encodings_match_examples),
        cmocka_unit_test(outputs_round_trip),
        cmocka_unit_test(reservation_is_a_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
