/* Predictions to response bytes (text/csv, application/json,
 * application/jsonlines, application/x-recordio-protobuf; mediatype.c
 * chooses among them from Accept), plain or as the keys selected by
 * SAGEMAKER_INFERENCE_OUTPUT in AWS's layouts. Floats are printed by
 * sms_format_float, so they parse back to the same float32; text output is
 * reserved once so that appends do not grow it. */
#include "smserve/encode.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smserve/number.h"
#include "smserve/recordio.h"

const char *sms_encoding_content_type(sms_encoding_t enc)
{
    switch (enc) {
    case SMS_ENC_CSV:
        return "text/csv; charset=utf-8";
    case SMS_ENC_JSON:
        return "application/json";
    case SMS_ENC_JSONLINES:
        return "application/jsonlines";
    case SMS_ENC_RECORDIO:
        return "application/x-recordio-protobuf";
    }
    return "application/octet-stream";
}

/* Worst case of one formatted value: "-1.17549435e-38" plus a separator. */
#define VALUE_BYTES 18

static void put(sms_buf_t *out, const char *s, size_t n)
{
    memcpy(out->data + out->len, s, n);
    out->len += n;
}

static void put_value(sms_buf_t *out, float v, int json)
{
    if (json && !isfinite(v)) {
        put(out, "null", 4);
        return;
    }
    out->len += sms_format_float(v, out->data + out->len);
}

static void put_score(sms_buf_t *out, const float *row, size_t cols)
{
    put(out, "{\"score\": ", 10);
    if (cols == 1) {
        put_value(out, row[0], 1);
    } else {
        put(out, "[", 1);
        for (size_t c = 0; c < cols; c++) {
            if (c)
                put(out, ", ", 2);
            put_value(out, row[c], 1);
        }
        put(out, "]", 1);
    }
    put(out, "}", 1);
}

/* One frame per row, label["score"] = the row's values. AWS's container
 * answers 500 here (it has no RecordIO encoder without selectable output). */
static int encode_recordio(const float *preds, size_t rows, size_t cols, sms_buf_t *out)
{
    size_t start = out->len;
    for (size_t r = 0; r < rows; r++) {
        size_t mark;
        if (sms_recordio_frame_begin(out, &mark) < 0 ||
            sms_recordio_label(out, "score", preds + r * cols, cols) < 0 ||
            sms_recordio_frame_end(out, mark) < 0)
            goto fail;
    }
    if (sms_buf_reserve(out, 0) < 0)
        goto fail;
    out->data[out->len] = '\0';
    return 0;
fail:
    out->len = start;
    if (out->data)
        out->data[start] = '\0';
    return -1;
}

int sms_encode(sms_encoding_t enc, const float *preds, size_t rows, size_t cols, sms_buf_t *out)
{
    /* Everything is reserved up front (a bound, not an estimate), so the
     * writers below only copy. `fixed` covers the JSON head and tail plus the
     * 32 bytes sms_format_float may be handed at the last value. */
    const size_t per_row = 32, fixed = 96;
    if (enc == SMS_ENC_RECORDIO)
        return encode_recordio(preds, rows, cols, out);
    if (cols > SIZE_MAX / 2 / VALUE_BYTES ||
        rows > (SIZE_MAX - fixed) / (per_row + cols * VALUE_BYTES))
        return -1;
    if (sms_buf_reserve(out, fixed + rows * (per_row + cols * VALUE_BYTES)) < 0)
        return -1;

    switch (enc) {
    case SMS_ENC_CSV:
        for (size_t r = 0; r < rows; r++) {
            for (size_t c = 0; c < cols; c++) {
                if (c)
                    put(out, ",", 1);
                put_value(out, preds[r * cols + c], 0);
            }
            put(out, "\n", 1);
        }
        break;
    case SMS_ENC_JSON:
        put(out, "{\"predictions\": [", 17);
        for (size_t r = 0; r < rows; r++) {
            if (r)
                put(out, ", ", 2);
            put_score(out, preds + r * cols, cols);
        }
        put(out, "]}", 2);
        break;
    case SMS_ENC_JSONLINES:
        for (size_t r = 0; r < rows; r++) {
            put_score(out, preds + r * cols, cols);
            put(out, "\n", 1);
        }
        break;
    default:
        return -1;
    }
    out->data[out->len] = '\0';
    return 0;
}

/* ---- Selectable output (SAGEMAKER_INFERENCE_OUTPUT) ---- */

/* Worst case of one selected value with its separator: an integer of 20
 * digits or "-1.17549435e-38", plus ", ". */
#define SELECTED_VALUE_BYTES 24
/* Room a key costs beyond its values: JSON `"name": [` ... `], `, CSV `"[`
 * ... `]",`. */
#define SELECTED_KEY_BYTES 10
#define LONGEST_KEY_NAME   15 /* "predicted_label", "predicted_score" */

/* Labels and class indices: non-negative integers, printed as Python's int. */
static void put_int(sms_buf_t *out, double v)
{
    unsigned long long u = v > 0 ? (unsigned long long)v : 0;
    char digits[24];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    while (n)
        out->data[out->len++] = digits[--n];
}

static void put_selected_value(sms_buf_t *out, double v, bool is_int, int json)
{
    if (is_int)
        put_int(out, v);
    else
        put_value(out, (float)v, json);
}

/* A key's values as Python prints a scalar or a list: `0.5` or `[0, 1]`. */
static void put_selected(sms_buf_t *out, sms_key_t key, const double *v, size_t n, bool is_int,
                         int json)
{
    if (!sms_key_is_list(key)) {
        put_selected_value(out, v[0], is_int, json);
        return;
    }
    put(out, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            put(out, ", ", 2);
        put_selected_value(out, v[i], is_int, json);
    }
    put(out, "]", 1);
}

/* A row's values for the selected keys, in the fixed key order, each once. */
typedef struct key_walk {
    const sms_selection_t *sel;
    sms_task_t task;
    size_t num_class, cols, n;
    const float *row;
    double *v; /* the current key's n values */
    int k;     /* the current key, -1 before the first */
    bool is_int;
} key_walk_t;

static key_walk_t key_walk(const sms_selection_t *sel, sms_task_t task, size_t num_class,
                           const float *row, size_t cols, double *v)
{
    return (key_walk_t){.sel = sel,
                        .task = task,
                        .num_class = num_class,
                        .cols = cols,
                        .row = row,
                        .v = v,
                        .k = -1};
}

/* Moves to the next selected key: 1, 0 after the last, -1 when the key has
 * no value for the row. */
static int next_key(key_walk_t *w)
{
    while (++w->k < SMS_KEY_COUNT) {
        if (!(w->sel->set & (1u << w->k)))
            continue;
        w->n = sms_select_values((sms_key_t)w->k, w->task, w->num_class, w->row, w->cols, w->v,
                                 &w->is_int);
        return w->n ? 1 : -1;
    }
    return 0;
}

/* One JSON object of a row's selected keys, in the fixed key order, each
 * once. 0, or -1 when a key has no value for the row. */
static int put_selected_object(sms_buf_t *out, const sms_selection_t *sel, sms_task_t task,
                               size_t num_class, const float *row, size_t cols, double *v)
{
    key_walk_t w = key_walk(sel, task, num_class, row, cols, v);
    int more, first = 1;
    put(out, "{", 1);
    while ((more = next_key(&w)) > 0) {
        const char *name = sms_key_name((sms_key_t)w.k);
        if (!first)
            put(out, ", ", 2);
        first = 0;
        put(out, "\"", 1);
        put(out, name, strlen(name));
        put(out, "\": ", 3);
        put_selected(out, (sms_key_t)w.k, v, w.n, w.is_int, 1);
    }
    put(out, "}", 1);
    return more;
}

/* One CSV line: the keys in env order, duplicates repeated, each list a
 * double-quoted Python list. 0, or -1 when a key has no value for the row. */
static int put_selected_line(sms_buf_t *out, const sms_selection_t *sel, sms_task_t task,
                             size_t num_class, const float *row, size_t cols, double *v)
{
    for (size_t i = 0; i < sel->n; i++) {
        sms_key_t key = sel->order[i];
        bool is_int;
        size_t n = sms_select_values(key, task, num_class, row, cols, v, &is_int);
        if (n == 0)
            return -1;
        if (i)
            put(out, ",", 1);
        if (sms_key_is_list(key))
            put(out, "\"", 1);
        put_selected(out, key, v, n, is_int, 0);
        if (sms_key_is_list(key))
            put(out, "\"", 1);
    }
    put(out, "\n", 1);
    return 0;
}

/* One frame per row: label[key] = float32 tensor of the key's values, keys
 * in the fixed order, each once. 0, -1 (out of memory) or -2. */
static int put_selected_frames(sms_buf_t *out, const sms_selection_t *sel, sms_task_t task,
                               size_t num_class, const float *preds, size_t rows, size_t cols,
                               double *v, float *f)
{
    for (size_t r = 0; r < rows; r++) {
        const float *row = preds + r * cols;
        size_t mark;
        if (sms_recordio_frame_begin(out, &mark) < 0)
            return -1;
        key_walk_t w = key_walk(sel, task, num_class, row, cols, v);
        int more;
        while ((more = next_key(&w)) > 0) {
            for (size_t i = 0; i < w.n; i++)
                f[i] = (float)v[i];
            if (sms_recordio_label(out, sms_key_name((sms_key_t)w.k), f, w.n) < 0)
                return -1;
        }
        if (more < 0)
            return -2;
        if (sms_recordio_frame_end(out, mark) < 0)
            return -1;
    }
    return sms_buf_reserve(out, 0);
}

int sms_encode_selected(sms_encoding_t enc, const sms_selection_t *sel, sms_task_t task,
                        size_t num_class, const float *preds, size_t rows, size_t cols,
                        sms_buf_t *out)
{
    /* What sms_selection_check refuses at start cannot be answered here
     * either: AWS would print NaN for it, bare (invalid) in JSON. */
    if (sel->n == 0 || sel->unknown || task == SMS_TASK_OTHER ||
        (sel->set & ~sms_task_keys(task)) != 0 || enc >= SMS_ENC_COUNT)
        return -2;
    size_t most = sms_select_max_values(task, num_class, cols);
    if (most > SIZE_MAX / SELECTED_VALUE_BYTES / SMS_SELECTION_MAX_KEYS / 2)
        return -1;

    const size_t start = out->len;
    double stack_v[64], *v = stack_v;
    float stack_f[64], *f = stack_f;
    int rc = -1;
    if (most > sizeof stack_v / sizeof stack_v[0]) {
        v = malloc(most * sizeof *v);
        f = malloc(most * sizeof *f);
        if (!v || !f)
            goto fail;
    }

    if (enc == SMS_ENC_RECORDIO) {
        rc = put_selected_frames(out, sel, task, num_class, preds, rows, cols, v, f);
        if (rc < 0)
            goto fail;
        out->data[out->len] = '\0';
        goto done;
    }

    /* A true bound for a row, so that the writers only copy: every key
     * (duplicates too) with the longest name and the most values any key
     * has here; `fixed` covers the JSON head and tail and the 32 bytes
     * sms_format_float may be handed at the last value. */
    const size_t per_row =
        8 + sel->n * (SELECTED_KEY_BYTES + LONGEST_KEY_NAME + most * SELECTED_VALUE_BYTES);
    const size_t fixed = 96;
    if (rows > (SIZE_MAX - fixed) / per_row || sms_buf_reserve(out, fixed + rows * per_row) < 0)
        goto fail;

    rc = -2;
    const int json = enc != SMS_ENC_CSV;
    if (enc == SMS_ENC_JSON)
        put(out, "{\"predictions\": [", 17);
    for (size_t r = 0; r < rows; r++) {
        const float *row = preds + r * cols;
        if (enc == SMS_ENC_JSON && r)
            put(out, ", ", 2);
        if ((json ? put_selected_object(out, sel, task, num_class, row, cols, v)
                  : put_selected_line(out, sel, task, num_class, row, cols, v)) < 0)
            goto fail;
        if (enc == SMS_ENC_JSONLINES)
            put(out, "\n", 1);
    }
    if (enc == SMS_ENC_JSON)
        put(out, "]}", 2);
    out->data[out->len] = '\0';
done:
    rc = 0;
fail:
    if (v != stack_v) {
        free(v);
        free(f);
    }
    if (rc < 0) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
    }
    return rc;
}
