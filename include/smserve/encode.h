/* Predictions to response bytes: text/csv, application/json,
 * application/jsonlines and application/x-recordio-protobuf, either the raw
 * predictions or the keys SAGEMAKER_INFERENCE_OUTPUT selects, laid out as
 * AWS's XGBoost container lays them out. Floats are printed so that they
 * parse back to the same float32. Knows nothing of HTTP or of models. */
#ifndef SMSERVE_ENCODE_H
#define SMSERVE_ENCODE_H

#include <stddef.h>
#include "smserve/buf.h"
#include "smserve/mediatype.h" /* sms_encoding_t, sms_encoding_from_accept */
#include "smserve/select.h"

/* The content type written on the response for an encoding. */
const char *sms_encoding_content_type(sms_encoding_t enc);

/* Appends `rows` x `cols` predictions (row-major) to out.
 * CSV: one line per row, a row's values comma-joined, each line ending "\n".
 * JSON: {"predictions": [{"score": p}, ...]}; with cols > 1 "score" is a list.
 * JSON lines: one {"score": ...} object per line.
 * RecordIO: one frame per row holding a Record whose label["score"] is a
 * float32 tensor of the row's `cols` values (AWS's container answers 500
 * to RecordIO without selectable output; this is smserve's answer).
 * NaN/inf are "nan"/"inf" in CSV and null in JSON. 0, or -1 on OOM (out
 * keeps what it held before the call).
 * Numbers are sms_format_float's text: positional for exponents -4..15
 * ("100", "0.0254"), else exponent form ("1e-05"), always valid JSON. */
int sms_encode(sms_encoding_t enc, const float *preds, size_t rows, size_t cols, sms_buf_t *out);

/* Appends the keys `sel` selects (SAGEMAKER_INFERENCE_OUTPUT) for `rows`
 * prediction rows of `cols` values (row-major; num_class: the model's, for
 * multi:softmax's labels), with values from sms_select_values.
 * CSV: one line per row, the keys in sel's (env) order, duplicates repeated,
 *   a list as a double-quoted Python list, ints as ints:
 *   `"[0, 1]","[0.9739566, 0.026043402]",0\n`. Every line ends "\n" (AWS's
 *   online answer has no final newline; its batch answer has).
 * JSON: {"predictions": [{...}, ...]}, each object's keys in the fixed order
 *   predicted_label, labels, probability, probabilities, raw_score,
 *   raw_scores, predicted_score, each once.
 * JSON lines: the same objects, one per line, each line ending "\n".
 * RecordIO: one frame per row, a Record with label[key] = float32 tensor of
 *   the key's values (ints and 1 - p as float32), keys in the fixed order.
 *   AWS's frame i holds the records of rows 1..i; this one row's record,
 *   which a protobuf parser reads as the same values.
 * Floats are sms_format_float's text, NaN/inf "nan"/"inf" in CSV and null
 * in JSON (only a NaN prediction can give one: inapplicable keys are
 * refused). 0; -1 out of memory; -2 when the selection cannot be answered:
 * an empty or unknown key or one the task does not allow (what
 * sms_selection_check refuses at start; AWS answers NaN), SMS_TASK_OTHER, or
 * rows whose width does not fit the task (AWS answers 500). On error out
 * keeps what it held before the call. */
int sms_encode_selected(sms_encoding_t enc, const sms_selection_t *sel, sms_task_t task,
                        size_t num_class, const float *preds, size_t rows, size_t cols,
                        sms_buf_t *out);

#endif
