/* libFuzzer target for the response encoders: predictions taken from the
 * input's bytes are encoded in every encoding, plain and under a selection
 * of keys and a task also taken from the input, and read back: CSV through
 * the CSV decoder (equal as float32), JSON and JSON lines through jansson
 * (valid JSON, never a bare NaN), RecordIO by its frame layout. Any
 * mismatch, or an output past its buffer, traps. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "smserve/csv.h"
#include "smserve/encode.h"
#include "smserve/recordio.h"
#include "smserve/select.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_VALUES 512

static void check(int ok)
{
    if (!ok)
        __builtin_trap();
}

/* Valid frames (magic, length, zero padding) that cover the body, `rows` of them. */
static void check_frames(const sms_buf_t *out, size_t rows)
{
    const uint8_t *b = (const uint8_t *)out->data;
    size_t at = 0, n = 0;
    while (at < out->len) {
        check(at + 8 <= out->len);
        uint32_t magic = (uint32_t)b[at] | (uint32_t)b[at + 1] << 8 | (uint32_t)b[at + 2] << 16 |
                         (uint32_t)b[at + 3] << 24;
        uint32_t len = (uint32_t)b[at + 4] | (uint32_t)b[at + 5] << 8 | (uint32_t)b[at + 6] << 16 |
                       (uint32_t)b[at + 7] << 24;
        check(magic == SMS_RECORDIO_MAGIC);
        size_t padded = ((size_t)len + 3) & ~(size_t)3;
        check(at + 8 + padded <= out->len);
        for (size_t i = len; i < padded; i++)
            check(b[at + 8 + i] == 0);
        at += 8 + padded;
        n++;
    }
    check(n == rows);
}

static void check_json(const sms_buf_t *out, int lines)
{
    json_error_t jerr;
    if (!lines) {
        json_t *root = json_loadb(out->data, out->len, 0, &jerr);
        check(root != NULL);
        json_decref(root);
        return;
    }
    for (const char *p = out->data; *p;) {
        const char *nl = strchr(p, '\n');
        check(nl != NULL);
        json_t *obj = json_loadb(p, (size_t)(nl - p), 0, &jerr);
        check(obj != NULL);
        json_decref(obj);
        p = nl + 1;
    }
}

/* The plain encodings: CSV decodes back to the same floats. */
static void plain(const float *preds, size_t rows, size_t cols)
{
    for (int enc = 0; enc < SMS_ENC_COUNT; enc++) {
        sms_buf_t out = {0};
        check(sms_encode((sms_encoding_t)enc, preds, rows, cols, &out) == 0);
        check(out.len < out.cap && strlen(out.data) <= out.len);
        if (enc == SMS_ENC_CSV && rows) {
            sms_matrix_t m = {0};
            sms_error_t err;
            check(sms_csv_decode(out.data, out.len, cols, &m, &err) == 0);
            check(m.rows == rows && m.cols == cols);
            for (size_t i = 0; i < rows * cols; i++)
                check(isnan(preds[i]) ? isnan(m.values[i])
                                      : memcmp(&m.values[i], &preds[i], sizeof preds[i]) == 0);
            sms_matrix_free(&m);
        } else if (enc == SMS_ENC_JSON || enc == SMS_ENC_JSONLINES) {
            check(strlen(out.data) == out.len);
            if (enc == SMS_ENC_JSON || rows)
                check_json(&out, enc == SMS_ENC_JSONLINES);
        } else if (enc == SMS_ENC_RECORDIO) {
            check_frames(&out, rows);
        }
        sms_buf_free(&out);
    }
}

/* A selection of keys from the input: 0 (error), or -2 (not answerable)
 * for every encoding alike, else valid output of each. */
static void selected(const char *keys, sms_task_t task, size_t num_class, const float *preds,
                     size_t rows, size_t cols)
{
    sms_selection_t sel;
    sms_error_t err;
    if (sms_selection_parse(keys, &sel, &err) != 0)
        return;
    int first = 1;
    for (int enc = 0; enc < SMS_ENC_COUNT; enc++) {
        sms_buf_t out = {0};
        int rc = sms_encode_selected((sms_encoding_t)enc, &sel, task, num_class, preds, rows, cols,
                                     &out);
        if (enc == 0)
            first = rc;
        check(rc == first);
        check(rc == 0 || rc == -2);
        if (rc == 0) {
            check(out.len < out.cap);
            if (enc == SMS_ENC_JSON || (enc == SMS_ENC_JSONLINES && rows))
                check_json(&out, enc == SMS_ENC_JSONLINES);
            else if (enc == SMS_ENC_RECORDIO)
                check_frames(&out, rows);
            else
                check(strlen(out.data) == out.len);
        } else {
            check(out.len == 0);
        }
        sms_buf_free(&out);
    }
}

/* Input: byte 0 the task, byte 1 the width (1..8), byte 2 num_class
 * (0..15), byte 3 a mask of keys (repeated by byte 4's low bits), then
 * float32 values (infinities become NaN: models do not give them and CSV
 * refuses them). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"predicted_label", "labels",    "probability",
                                        "probabilities",   "raw_score", "raw_scores",
                                        "predicted_score", "bogus"};
    if (size < 5)
        return 0;
    sms_task_t task = (sms_task_t)(data[0] % (SMS_TASK_OTHER + 1));
    size_t cols = 1 + data[1] % 8, num_class = data[2] % 16;
    unsigned mask = data[3], repeat = 1 + data[4] % 3;
    data += 5;
    size = size - 5;

    float preds[MAX_VALUES];
    size_t n = size / 4 > MAX_VALUES ? MAX_VALUES : size / 4;
    for (size_t i = 0; i < n; i++) {
        memcpy(&preds[i], data + 4 * i, 4);
        if (isinf(preds[i]))
            preds[i] = NAN;
    }
    size_t rows = n / cols;
    plain(preds, rows, cols);

    char keys[SMS_SELECTION_MAX_VALUE + 1] = "";
    for (unsigned r = 0; r < repeat; r++)
        for (int k = 0; k < 8; k++)
            if (mask & (1u << k)) {
                if (*keys)
                    strcat(keys, ",");
                strcat(keys, names[k]);
            }
    selected(keys, task, num_class, preds, rows, cols);
    return 0;
}
