/* Response encoders and the Accept header: exact output for each encoding,
 * round trips through the CSV decoder, jansson and a protobuf walk, content
 * negotiation with parameters, q-values and wildcards, and the selectable
 * output (SAGEMAKER_INFERENCE_OUTPUT) against every selectable exchange of
 * the AWS corpus (responses.jsonl). */
#include "testutil.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smserve/csv.h"
#include "smserve/encode.h"
#include "smserve/number.h"
#include "smserve/pbwire.h"
#include "smserve/recordio.h"
#include "smserve/select.h"

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
    assert_string_equal(sms_encoding_content_type(SMS_ENC_RECORDIO),
                        "application/x-recordio-protobuf");
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

/* ---- RecordIO answers, read back with a protobuf walk ---- */

static void same_float(float got, float want)
{
    if (isnan(want)) {
        assert_true(isnan(got));
        return;
    }
    if (memcmp(&got, &want, sizeof got) != 0)
        fail_msg("float %.9g, want %.9g", (double)got, (double)want);
}

/* Non-selectable RecordIO: one frame per row, label["score"] = the row. */
static void recordio_scores(void **state)
{
    (void)state;
    const float preds[] = {0.5f, NAN, -2.25f, 1e-30f, 0.1f, 0.2f};
    for (size_t cols = 1; cols <= 3; cols++) {
        size_t rows = 6 / cols;
        sms_buf_t out = {0};
        assert_int_equal(sms_buf_printf(&out, "head"), 0);
        assert_int_equal(sms_encode(SMS_ENC_RECORDIO, preds, rows, cols, &out), 0);
        assert_memory_equal(out.data, "head", 4);
        const uint8_t *frames[8];
        size_t lengths[8];
        size_t n = tu_rio_frames((const uint8_t *)out.data + 4, out.len - 4, frames, lengths, 8);
        assert_int_equal(n, rows);
        for (size_t r = 0; r < rows; r++) {
            tu_rio_labels_t lab;
            tu_rio_read_labels(frames[r], lengths[r], &lab);
            assert_int_equal(lab.n, 1);
            assert_int_equal(lab.entries, 1);
            assert_string_equal(lab.name[0], "score");
            assert_int_equal(lab.count[0], cols);
            for (size_t c = 0; c < cols; c++)
                same_float(lab.values[0][c], preds[r * cols + c]);
        }
        sms_buf_free(&out);
    }
    /* The bytes of one frame: AWS's layout with the key "score". */
    const float one = 0.5f;
    sms_buf_t out = {0};
    assert_int_equal(sms_encode(SMS_ENC_RECORDIO, &one, 1, 1, &out), 0);
    static const uint8_t want[] = {
        0x0a, 0x23, 0xd7, 0xce, 0x13, 0,    0,   0,              /* magic, 19-byte record */
        0x12, 0x11, 0x0a, 0x05, 's',  'c',  'o', 'r', 'e',       /* label entry, key */
        0x12, 0x08, 0x12, 0x06, 0x0a, 0x04, 0,   0,   0,   0x3f, /* Value{float32_tensor{[0.5]}} */
        0,                                                       /* padding */
    };
    assert_int_equal(out.len, sizeof want);
    assert_memory_equal(out.data, want, sizeof want);
    sms_buf_free(&out);
    /* Zero rows: an empty body, still NUL-terminated. */
    sms_buf_t empty = {0};
    assert_int_equal(sms_encode(SMS_ENC_RECORDIO, NULL, 0, 1, &empty), 0);
    assert_int_equal(empty.len, 0);
    assert_non_null(empty.data);
    sms_buf_free(&empty);
}

/* ---- selectable output: examples, refusals, bounds ---- */

static const float binary3[] = {0.026043402031064034f, 0.933620035648346f, 0.9543266892433167f};
static const float multi3[] = {0.887249231338501f,   0.08154400438070297f, 0.031206803396344185f,
                               0.06626703590154648f, 0.12678955495357513f, 0.8069433569908142f,
                               0.07995571196079254f, 0.37928277254104614f, 0.5407614707946777f};
static const float softmax3[] = {0.0f, 2.0f, 2.0f};

static void check_selected(sms_encoding_t enc, const char *keys, sms_task_t task, size_t num_class,
                           const float *preds, size_t rows, size_t cols, const char *want)
{
    sms_selection_t sel;
    sms_error_t err;
    assert_int_equal(sms_selection_parse(keys, &sel, &err), 0);
    sms_buf_t out = {0};
    assert_int_equal(sms_buf_printf(&out, "head:"), 0);
    assert_int_equal(sms_encode_selected(enc, &sel, task, num_class, preds, rows, cols, &out), 0);
    if (strcmp(out.data + 5, want) != 0)
        print_error("%s (enc %d): got\n%s\nwant\n%s\n", keys, (int)enc, out.data + 5, want);
    assert_string_equal(out.data + 5, want);
    assert_int_equal(out.len, 5 + strlen(want));
    sms_buf_free(&out);
}

static void selected_examples(void **state)
{
    (void)state;
    const sms_task_t B = SMS_TASK_BINARY_LOGISTIC, P = SMS_TASK_MULTI_SOFTPROB,
                     S = SMS_TASK_MULTI_SOFTMAX, R = SMS_TASK_REGRESSION;
    const char *lpp = "labels,probabilities,predicted_label";
    check_selected(SMS_ENC_CSV, lpp, B, 0, binary3, 3, 1,
                   "\"[0, 1]\",\"[0.9739566, 0.026043402]\",0\n"
                   "\"[0, 1]\",\"[0.066379964, 0.93362004]\",1\n"
                   "\"[0, 1]\",\"[0.04567331, 0.9543267]\",1\n");
    check_selected(SMS_ENC_JSON, lpp, B, 0, binary3, 1, 1,
                   "{\"predictions\": [{\"predicted_label\": 0, \"labels\": [0, 1], "
                   "\"probabilities\": [0.9739566, 0.026043402]}]}");
    check_selected(SMS_ENC_JSONLINES, "raw_scores,probabilities", B, 0, binary3, 2, 1,
                   "{\"probabilities\": [0.9739566, 0.026043402], "
                   "\"raw_scores\": [0.9739566, 0.026043402]}\n"
                   "{\"probabilities\": [0.066379964, 0.93362004], "
                   "\"raw_scores\": [0.066379964, 0.93362004]}\n");
    /* duplicates: repeated in CSV, once in JSON */
    check_selected(SMS_ENC_CSV, "predicted_label,predicted_label", B, 0, binary3, 3, 1,
                   "0,0\n1,1\n1,1\n");
    check_selected(SMS_ENC_JSON, "Predicted_Label, PREDICTED_LABEL", B, 0, binary3, 1, 1,
                   "{\"predictions\": [{\"predicted_label\": 0}]}");
    check_selected(SMS_ENC_CSV, "probability,predicted_label", P, 3, multi3, 3, 3,
                   "0.88724923,0\n0.80694336,2\n0.5407615,2\n");
    check_selected(SMS_ENC_CSV, "labels,probabilities", P, 3, multi3, 1, 3,
                   "\"[0, 1, 2]\",\"[0.88724923, 0.081544004, 0.031206803]\"\n");
    check_selected(SMS_ENC_JSON, "raw_scores,labels,predicted_label", S, 3, softmax3, 2, 1,
                   "{\"predictions\": [{\"predicted_label\": 0, \"labels\": [0, 1, 2], "
                   "\"raw_scores\": [1, 0]}, {\"predicted_label\": 2, \"labels\": [0, 1, 2], "
                   "\"raw_scores\": [-1, 2]}]}");
    const float reg[] = {-1.0516655445098877f};
    check_selected(SMS_ENC_CSV, "predicted_score", R, 0, reg, 1, 1, "-1.0516655\n");
    check_selected(SMS_ENC_JSONLINES, "predicted_score", R, 0, reg, 1, 1,
                   "{\"predicted_score\": -1.0516655}\n");
    /* a NaN prediction: "nan" in CSV, null in JSON (never a bare NaN) */
    const float nan1[] = {NAN};
    check_selected(SMS_ENC_CSV, "probabilities,probability", B, 0, nan1, 1, 1,
                   "\"[nan, nan]\",nan\n");
    check_selected(SMS_ENC_JSON, "probabilities,probability", B, 0, nan1, 1, 1,
                   "{\"predictions\": [{\"probability\": null, \"probabilities\": [null, null]}]}");
    /* zero rows */
    check_selected(SMS_ENC_CSV, "predicted_label", B, 0, NULL, 0, 1, "");
    check_selected(SMS_ENC_JSON, "predicted_label", B, 0, NULL, 0, 1, "{\"predictions\": []}");
    check_selected(SMS_ENC_JSONLINES, "predicted_label", B, 0, NULL, 0, 1, "");
    check_selected(SMS_ENC_RECORDIO, "predicted_label", B, 0, NULL, 0, 1, "");
}

/* What sms_selection_check refuses, other objectives and rows that do not
 * fit the task are -2, and the buffer keeps what it held. */
static void selected_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *keys;
        sms_task_t task;
        size_t cols;
    } bad[] = {
        {"bogus_key", SMS_TASK_BINARY_LOGISTIC, 1},
        {"", SMS_TASK_BINARY_LOGISTIC, 1},
        {"predicted_label,", SMS_TASK_BINARY_LOGISTIC, 1},
        {"predicted_score", SMS_TASK_BINARY_LOGISTIC, 1},
        {"predicted_label", SMS_TASK_REGRESSION, 1},
        {"probability", SMS_TASK_MULTI_SOFTMAX, 1},
        {"predicted_label", SMS_TASK_OTHER, 1},
        {"predicted_label", SMS_TASK_BINARY_LOGISTIC, 2}, /* AWS: .item() fails, 500 */
        {"probability", SMS_TASK_MULTI_SOFTPROB, 0},
    };
    const float preds[] = {0.5f, 0.25f, 0.25f, 0.5f};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sms_selection_t sel;
        sms_error_t err;
        assert_int_equal(sms_selection_parse(bad[i].keys, &sel, &err), 0);
        for (int enc = 0; enc < SMS_ENC_COUNT; enc++) {
            sms_buf_t out = {0};
            assert_int_equal(sms_buf_printf(&out, "kept"), 0);
            int rc = sms_encode_selected((sms_encoding_t)enc, &sel, bad[i].task, 3, preds, 2,
                                         bad[i].cols, &out);
            if (rc != -2)
                print_error("'%s' task %d cols %zu enc %d: rc %d\n", bad[i].keys, (int)bad[i].task,
                            bad[i].cols, enc, rc);
            assert_int_equal(rc, -2);
            assert_int_equal(out.len, 4);
            assert_string_equal(out.data, "kept");
            sms_buf_free(&out);
        }
    }
}

/* The text writers copy into one reservation: with the widest values, the
 * most keys and a wide class vector, under ASan an overrun crashes here. */
static void selected_reservation_is_a_bound(void **state)
{
    (void)state;
    const size_t classes = 100, rows = 5;
    float *preds = malloc(classes * rows * sizeof *preds);
    assert_non_null(preds);
    for (size_t i = 0; i < classes * rows; i++)
        preds[i] = -1.17549435e-38f;
    char keys[SMS_SELECTION_MAX_VALUE + 1] = "";
    for (int i = 0; i < SMS_SELECTION_MAX_KEYS; i++)
        strcat(keys, i % 2 ? "probabilities," : "raw_scores,");
    keys[strlen(keys) - 1] = '\0';
    sms_selection_t sel;
    sms_error_t err;
    assert_int_equal(sms_selection_parse(keys, &sel, &err), 0);
    for (int enc = 0; enc < SMS_ENC_COUNT; enc++) {
        sms_buf_t out = {0};
        assert_int_equal(sms_encode_selected((sms_encoding_t)enc, &sel, SMS_TASK_MULTI_SOFTPROB,
                                             classes, preds, rows, classes, &out),
                         0);
        assert_true(out.len < out.cap);
        if (enc != SMS_ENC_RECORDIO)
            assert_int_equal(strlen(out.data), out.len);
        sms_buf_free(&out);
    }
    /* labels of a huge class count: 20-digit-ish integers fit as well */
    assert_int_equal(sms_selection_parse("labels,labels,labels", &sel, &err), 0);
    const float c[] = {7.0f};
    sms_buf_t out = {0};
    assert_int_equal(
        sms_encode_selected(SMS_ENC_CSV, &sel, SMS_TASK_MULTI_SOFTMAX, 100000, c, 1, 1, &out), 0);
    assert_true(out.len < out.cap);
    assert_memory_equal(out.data + out.len - 15, "99998, 99999]\"\n", 15);
    sms_buf_free(&out);
    free(preds);
}

/* Random softprob rows in every key: JSON and JSON lines parse with jansson
 * to the values sms_select_values gives; RecordIO frames decode to them. */
static void selected_round_trip(void **state)
{
    (void)state;
    const size_t rows = 200, classes = 4;
    float preds[200 * 4];
    for (size_t i = 0; i < rows * classes; i++)
        preds[i] = (float)(rnd() % 1000000) / 1e6f;
    sms_selection_t sel;
    sms_error_t err;
    assert_int_equal(sms_selection_parse("raw_score,labels,predicted_label,probabilities,"
                                         "probability,raw_scores",
                                         &sel, &err),
                     0);
    sms_buf_t out = {0};
    assert_int_equal(sms_encode_selected(SMS_ENC_JSON, &sel, SMS_TASK_MULTI_SOFTPROB, classes,
                                         preds, rows, classes, &out),
                     0);
    json_error_t jerr;
    json_t *root = json_loadb(out.data, out.len, 0, &jerr);
    assert_non_null(root);
    json_t *list = json_object_get(root, "predictions");
    assert_int_equal(json_array_size(list), rows);
    for (size_t r = 0; r < rows; r++) {
        json_t *obj = json_array_get(list, r);
        assert_int_equal(json_object_size(obj), 6);
        for (int k = 0; k < SMS_KEY_PREDICTED_SCORE; k++) {
            double v[8];
            bool is_int;
            size_t n = sms_select_values((sms_key_t)k, SMS_TASK_MULTI_SOFTPROB, classes,
                                         preds + r * classes, classes, v, &is_int);
            json_t *got = json_object_get(obj, sms_key_name((sms_key_t)k));
            assert_non_null(got);
            for (size_t i = 0; i < n; i++) {
                json_t *x = sms_key_is_list((sms_key_t)k) ? json_array_get(got, i) : got;
                if (is_int) {
                    assert_true(json_is_integer(x));
                    assert_int_equal(json_integer_value(x), (json_int_t)v[i]);
                } else {
                    same_float((float)json_number_value(x), (float)v[i]);
                }
            }
        }
    }
    json_decref(root);

    sms_buf_reset(&out);
    assert_int_equal(sms_encode_selected(SMS_ENC_RECORDIO, &sel, SMS_TASK_MULTI_SOFTPROB, classes,
                                         preds, rows, classes, &out),
                     0);
    const uint8_t *frames[256];
    size_t lengths[256];
    assert_int_equal(tu_rio_frames((const uint8_t *)out.data, out.len, frames, lengths, 256), rows);
    for (size_t r = 0; r < rows; r++) {
        tu_rio_labels_t lab;
        tu_rio_read_labels(frames[r], lengths[r], &lab);
        assert_int_equal(lab.entries, 6);
        for (size_t e = 0; e < lab.n; e++) {
            sms_key_t k = (sms_key_t)e; /* the fixed order */
            assert_string_equal(lab.name[e], sms_key_name(k));
            double v[8];
            bool is_int;
            size_t n = sms_select_values(k, SMS_TASK_MULTI_SOFTPROB, classes, preds + r * classes,
                                         classes, v, &is_int);
            assert_int_equal(lab.count[e], n);
            for (size_t i = 0; i < n; i++)
                same_float(lab.values[e][i], (float)v[i]);
        }
    }
    sms_buf_free(&out);
}

/* ---- the AWS corpus ---- */

/* responses.jsonl as one JSON array. */
static json_t *load_exchanges(const char *dir)
{
    char *path = tu_path(dir, "responses.jsonl");
    size_t len;
    char *text = tu_read_file(path, &len);
    assert_non_null(text);
    json_t *all = json_array();
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        if (n) {
            json_error_t jerr;
            json_t *x = json_loadb(line, n, 0, &jerr);
            if (!x)
                fail_msg("%s: %s", path, jerr.text);
            json_array_append_new(all, x);
        }
        line += n + (nl != NULL);
    }
    free(text);
    free(path);
    return all;
}

static const char *str_of(json_t *x, const char *key)
{
    return json_string_value(json_object_get(x, key));
}

/* The text with every number replaced by the shortest text of its float32
 * (AWS prints float64 reprs of float32 values, `1 - p` in float64, and
 * `1.0` for integral floats; smserve the shortest float32 text). */
static char *normalise_numbers(const char *s)
{
    sms_buf_t b = {0};
    assert_int_equal(sms_buf_reserve(&b, 0), 0);
    for (const char *p = s; *p;) {
        if ((*p >= '0' && *p <= '9') || (*p == '-' && p[1] >= '0' && p[1] <= '9')) {
            char *end;
            double d = strtod(p, &end);
            char text[32];
            size_t n = sms_format_float((float)d, text);
            assert_int_equal(sms_buf_append(&b, text, n), 0);
            p = end;
        } else {
            assert_int_equal(sms_buf_appendc(&b, *p++), 0);
        }
    }
    return b.data;
}

/* A model's recorded raw predictions for one body: AWS's answer to it as
 * text/csv without selectable output. */
typedef struct raw_preds {
    char model[16];
    char body[64];
    size_t rows, cols;
    float v[16];
} raw_preds_t;

static size_t collect_raw(json_t *all, raw_preds_t *raw, size_t max)
{
    size_t n = 0, i;
    json_t *x;
    json_array_foreach(all, i, x)
    {
        const char *id = str_of(x, "id"), *model = str_of(x, "model");
        char want[128];
        snprintf(want, sizeof want, "base/%s/ct=text/csv body=", model);
        if (strcmp(str_of(x, "config"), "base") != 0 || strncmp(id, want, strlen(want)) != 0 ||
            json_integer_value(json_object_get(x, "status")) != 200)
            continue;
        const char *body = id + strlen(want);
        if (strcmp(body, "csv_3rows.csv") != 0 && strcmp(body, "csv_1row.csv") != 0)
            continue;
        assert_true(n < max);
        raw_preds_t *r = &raw[n++];
        memset(r, 0, sizeof *r);
        snprintf(r->model, sizeof r->model, "%s", model);
        snprintf(r->body, sizeof r->body, "%s", body);
        const char *text = str_of(x, "response_body_text");
        size_t k = 0;
        for (const char *p = text; *p;) {
            char *end;
            r->v[k++] = (float)strtod(p, &end);
            if (*end == '\n')
                r->rows++;
            p = *end ? end + 1 : end;
        }
        r->cols = k / r->rows;
    }
    return n;
}

static const raw_preds_t *find_raw(const raw_preds_t *raw, size_t n, const char *model,
                                   const char *body)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(raw[i].model, model) && !strcmp(raw[i].body, body))
            return &raw[i];
    fail_msg("no raw predictions for %s %s", model, body);
    return NULL;
}

/* The corpus's exchanges and the raw predictions they record, or a skip.
 * Free with json_decref(c->all). */
typedef struct corpus {
    json_t *all;
    raw_preds_t raw[16];
    size_t nraw;
} corpus_t;

static void corpus_load(corpus_t *c)
{
    char *dir = tu_aws_corpus("responses.jsonl");
    c->all = load_exchanges(dir);
    free(dir);
    c->nraw = collect_raw(c->all, c->raw, TU_COUNT(c->raw));
    assert_int_equal(c->nraw, 8); /* 4 models x (csv_3rows, csv_1row) */
}

static sms_task_t model_task(const char *model, size_t *num_class)
{
    /* The corpus's four models (its README): binary:logistic,
     * multi:softprob and multi:softmax with 3 classes, reg:squarederror. */
    *num_class = 0;
    if (!strcmp(model, "binary"))
        return SMS_TASK_BINARY_LOGISTIC;
    *num_class = 3;
    if (!strcmp(model, "multi"))
        return SMS_TASK_MULTI_SOFTPROB;
    if (!strcmp(model, "softmax"))
        return SMS_TASK_MULTI_SOFTMAX;
    *num_class = 0;
    assert_string_equal(model, "reg");
    return SMS_TASK_REGRESSION;
}

static int encoding_of(const char *content_type, sms_encoding_t *enc)
{
    for (int e = 0; e < SMS_ENC_COUNT; e++)
        if (!strcmp(content_type, sms_encoding_content_type((sms_encoding_t)e))) {
            *enc = (sms_encoding_t)e;
            return 0;
        }
    return -1;
}

/* smserve's text answer against AWS's, numbers normalised; smserve's CSV
 * ends every line with "\n", AWS's online CSV has no final newline. */
static void compare_text(const char *id, sms_encoding_t enc, const char *got, const char *aws)
{
    char *g = normalise_numbers(got), *a = normalise_numbers(aws);
    size_t alen = strlen(a);
    int extra_newline = enc == SMS_ENC_CSV && alen && a[alen - 1] != '\n';
    if (strncmp(g, a, alen) != 0 || strcmp(g + alen, extra_newline ? "\n" : "") != 0)
        fail_msg("%s:\nsmserve %s\naws     %s", id, g, a);
    free(g);
    free(a);
}

/* smserve's frames against AWS's: frame i of AWS's holds the records of
 * rows 1..i, which a protobuf parser merges into row i's values. */
static void compare_recordio(const char *id, const sms_selection_t *sel, const sms_buf_t *got,
                             const char *aws_b64, size_t rows)
{
    size_t aws_len;
    uint8_t *aws = tu_base64_decode(aws_b64, strlen(aws_b64), &aws_len);
    assert_non_null(aws);
    const uint8_t *gf[8], *af[8];
    size_t gl[8], al[8];
    assert_int_equal(tu_rio_frames((const uint8_t *)got->data, got->len, gf, gl, 8), rows);
    assert_int_equal(tu_rio_frames(aws, aws_len, af, al, 8), rows);
    for (size_t r = 0; r < rows; r++) {
        tu_rio_labels_t g, a;
        tu_rio_read_labels(gf[r], gl[r], &g);
        tu_rio_read_labels(af[r], al[r], &a);
        /* one record per frame, each key once, in the fixed order */
        assert_int_equal(g.entries, g.n);
        for (size_t e = 1; e < g.n; e++) {
            int before = -1, after = -1;
            for (int k = 0; k < SMS_KEY_COUNT; k++) {
                if (!strcmp(g.name[e - 1], sms_key_name((sms_key_t)k)))
                    before = k;
                if (!strcmp(g.name[e], sms_key_name((sms_key_t)k)))
                    after = k;
            }
            assert_true(before >= 0 && before < after);
        }
        /* AWS's cumulative frame: (r + 1) copies of a record as long as ours */
        if (al[r] != gl[r] * (r + 1))
            fail_msg("%s: frame %zu is %zu bytes, AWS's %zu holds %zu rows", id, r + 1, gl[r],
                     al[r], r + 1);
        /* one key: no map order to differ in, so the bytes of row r's record
         * are AWS's */
        if (a.n == 1)
            assert_memory_equal(gf[r], af[r] + al[r] - gl[r], gl[r]);
        assert_int_equal(g.n, a.n);
        for (size_t e = 0; e < a.n; e++) {
            size_t k = 0;
            while (k < g.n && strcmp(g.name[k], a.name[e]) != 0)
                k++;
            if (k == g.n)
                fail_msg("%s: frame %zu lacks %s", id, r + 1, a.name[e]);
            assert_int_equal(g.count[k], a.count[e]);
            for (size_t i = 0; i < a.count[e]; i++)
                same_float(g.values[k][i], a.values[e][i]);
        }
    }
    (void)sel;
    free(aws);
}

/* Every selectable 200 of the corpus: configurations smserve accepts give
 * AWS's layout (numbers normalised); those it refuses at start are -2. */
static void corpus_selected(void **state)
{
    (void)state;
    corpus_t c;
    corpus_load(&c);
    size_t matched[SMS_ENC_COUNT] = {0}, refused = 0, i;
    json_t *x;
    json_array_foreach(c.all, i, x)
    {
        const char *config = str_of(x, "config"), *id = str_of(x, "id");
        if (strncmp(config, "selectable", 10) != 0 ||
            json_integer_value(json_object_get(x, "status")) != 200)
            continue;
        const char *value = str_of(json_object_get(x, "env"), "SAGEMAKER_INFERENCE_OUTPUT");
        const char *file = strrchr(str_of(x, "request_body_file"), '/') + 1;
        size_t num_class;
        sms_task_t task = model_task(str_of(x, "model"), &num_class);
        const raw_preds_t *rp = find_raw(c.raw, c.nraw, str_of(x, "model"), file);

        sms_selection_t sel;
        sms_error_t err;
        assert_int_equal(sms_selection_parse(value, &sel, &err), 0);
        sms_buf_t out = {0};
        if (sms_selection_check(&sel, task, NULL, &err) != 0) {
            for (int e = 0; e < SMS_ENC_COUNT; e++)
                assert_int_equal(sms_encode_selected((sms_encoding_t)e, &sel, task, num_class,
                                                     rp->v, rp->rows, rp->cols, &out),
                                 -2);
            sms_buf_free(&out);
            refused++;
            continue;
        }
        sms_encoding_t enc = SMS_ENC_CSV;
        assert_int_equal(encoding_of(str_of(x, "response_content_type"), &enc), 0);
        assert_int_equal(
            sms_encode_selected(enc, &sel, task, num_class, rp->v, rp->rows, rp->cols, &out), 0);
        if (enc == SMS_ENC_RECORDIO)
            compare_recordio(id, &sel, &out, str_of(x, "response_body_base64"), rp->rows);
        else
            compare_text(id, enc, out.data, str_of(x, "response_body_text"));
        matched[enc]++;
        sms_buf_free(&out);
    }
    print_message("corpus: selectable 200s matched csv %zu, json %zu, jsonlines %zu, "
                  "recordio %zu; %zu refused (-2) as smserve refuses their configuration\n",
                  matched[0], matched[1], matched[2], matched[3], refused);
    /* 345 selectable 200s: 177 of configurations smserve serves, 168 of
     * those it refuses at start (keys that do not apply: AWS answers NaN) */
    assert_int_equal(matched[SMS_ENC_CSV], 59);
    assert_int_equal(matched[SMS_ENC_JSON], 58);
    assert_int_equal(matched[SMS_ENC_JSONLINES], 31);
    assert_int_equal(matched[SMS_ENC_RECORDIO], 29);
    assert_int_equal(refused, 168);
    json_decref(c.all);
}

/* Without selectable output: sms_encode's CSV and JSON against AWS's
 * answers to the same bodies (batch answers are not AWS's encodings). */
static void corpus_plain(void **state)
{
    (void)state;
    corpus_t c;
    corpus_load(&c);
    size_t compared = 0, i;
    json_t *x;
    json_array_foreach(c.all, i, x)
    {
        const char *config = str_of(x, "config"), *file = str_of(x, "request_body_file");
        const char *ct = str_of(x, "response_content_type");
        sms_encoding_t enc = SMS_ENC_CSV;
        if ((strcmp(config, "base") != 0 && strcmp(config, "default_accept") != 0) || !file ||
            json_integer_value(json_object_get(x, "status")) != 200 || !ct ||
            encoding_of(ct, &enc) < 0 || enc == SMS_ENC_RECORDIO || enc == SMS_ENC_JSONLINES)
            continue;
        file = strrchr(file, '/') + 1;
        if (strcmp(file, "csv_3rows.csv") != 0 && strcmp(file, "csv_1row.csv") != 0)
            continue;
        const raw_preds_t *rp = find_raw(c.raw, c.nraw, str_of(x, "model"), file);
        sms_buf_t out = {0};
        assert_int_equal(sms_encode(enc, rp->v, rp->rows, rp->cols, &out), 0);
        compare_text(str_of(x, "id"), enc, out.data, str_of(x, "response_body_text"));
        sms_buf_free(&out);
        compared++;
    }
    print_message("corpus: %zu answers without selectable output matched\n", compared);
    assert_true(compared >= 40);
    json_decref(c.all);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(content_types),
        cmocka_unit_test(accept_picks_encoding),
        cmocka_unit_test(encodings_match_examples),
        cmocka_unit_test(outputs_round_trip),
        cmocka_unit_test(reservation_is_a_bound),
        cmocka_unit_test(recordio_scores),
        cmocka_unit_test(selected_examples),
        cmocka_unit_test(selected_refusals),
        cmocka_unit_test(selected_reservation_is_a_bound),
        cmocka_unit_test(selected_round_trip),
        cmocka_unit_test(corpus_selected),
        cmocka_unit_test(corpus_plain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
