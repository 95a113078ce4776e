/* Selectable inference output (SAGEMAKER_INFERENCE_OUTPUT): the keys a user
 * asks for, which keys apply to a model's objective, and each key's values
 * for one prediction row, computed as AWS's XGBoost container computes them.
 * Owns no memory; knows nothing of HTTP or of encodings. */
#ifndef SMSERVE_SELECT_H
#define SMSERVE_SELECT_H

#include <stdbool.h>
#include <stddef.h>
#include "smserve/error.h"

/* In AWS's fixed JSON order. */
typedef enum sms_key {
    SMS_KEY_PREDICTED_LABEL = 0,
    SMS_KEY_LABELS,
    SMS_KEY_PROBABILITY,
    SMS_KEY_PROBABILITIES,
    SMS_KEY_RAW_SCORE,
    SMS_KEY_RAW_SCORES,
    SMS_KEY_PREDICTED_SCORE,
    SMS_KEY_COUNT, /* in sms_selection_t.order: a key that names none (empty or unknown) */
} sms_key_t;

#define SMS_SELECTION_MAX_KEYS  32
#define SMS_SELECTION_MAX_VALUE 1023

typedef struct sms_selection {
    sms_key_t order[SMS_SELECTION_MAX_KEYS]; /* env order, duplicates kept */
    size_t n;                                /* entries in order */
    unsigned set;                            /* bit (1u << key) per known key present */
    size_t unknown;                          /* entries that are SMS_KEY_COUNT */
    char value[SMS_SELECTION_MAX_VALUE + 1]; /* the variable as set, for messages */
} sms_selection_t;

typedef enum sms_task {
    SMS_TASK_BINARY_LOGISTIC = 0,
    SMS_TASK_BINARY_LOGITRAW,
    SMS_TASK_BINARY_HINGE,
    SMS_TASK_MULTI_SOFTMAX,
    SMS_TASK_MULTI_SOFTPROB,
    SMS_TASK_REGRESSION,
    SMS_TASK_OTHER,
} sms_task_t;

/* The key's name as it appears in answers ("predicted_label"); "" for
 * SMS_KEY_COUNT. */
const char *sms_key_name(sms_key_t key);
/* Whether the key's value is a list (labels, probabilities, raw_scores). */
bool sms_key_is_list(sms_key_t key);

/* Reads the variable's value as AWS does: every space removed, ASCII lower
 * case, split at ','; so "Predicted_Label, PROBABILITY" is two keys, "" is
 * one empty key, "a,,b" holds an empty key, duplicates stay. Empty and
 * unknown keys are kept as SMS_KEY_COUNT (sms_selection_check refuses them
 * naming the model's allowed keys). value must not be NULL (unset variable:
 * selection off, do not call). 0, or -1 (status 500, message naming the
 * variable) for more than SMS_SELECTION_MAX_KEYS keys or a value longer than
 * SMS_SELECTION_MAX_VALUE bytes. */
int sms_selection_parse(const char *value, sms_selection_t *sel, sms_error_t *err);

/* The task of an XGBoost objective name: AWS's VALID_OBJECTIVES (binary:*,
 * multi:softmax/softprob, reg:squarederror, reg:logistic, reg:gamma,
 * reg:absoluteerror, reg:tweedie) plus the legacy reg:linear as regression;
 * anything else (or NULL) is SMS_TASK_OTHER. */
sms_task_t sms_task_of(const char *objective);

/* The keys a task allows, as sms_selection_t.set bits (0 for OTHER). */
unsigned sms_task_keys(sms_task_t task);

/* At start, after the model loaded: 0 when every selected key applies to the
 * task; else -1 (status 500) with one line naming SAGEMAKER_INFERENCE_OUTPUT,
 * its value, the offending keys, the objective and the keys it allows (or,
 * for SMS_TASK_OTHER, the objectives that have selectable output). AWS's
 * container instead answers NaN for such keys (and 500 on every request for
 * other objectives). objective may be NULL. */
int sms_selection_check(const sms_selection_t *sel, sms_task_t task, const char *objective,
                        sms_error_t *err);

/* The most values sms_select_values writes for any key of this task. */
size_t sms_select_max_values(sms_task_t task, size_t num_class, size_t cols);

/* A key's value(s) for one prediction row (`cols` floats: 1 per row, or
 * num_class for multi:softprob), as AWS's serve_utils computes them: values
 * in double (AWS's `1.0 - p` is float64 arithmetic on the float32 p),
 * *is_int when they print as integers (predicted_label of logistic, logitraw
 * and softprob; labels). A key that does not apply to the task gives one NaN
 * (AWS's answer; sms_selection_check refuses it first). Returns how many
 * values were written to v (room: sms_select_max_values), or 0 when AWS
 * cannot compute the key for this row's shape (numpy's .item() on a
 * multi-output row, the max of an empty row, an OTHER task): AWS answers 500. */
size_t sms_select_values(sms_key_t key, sms_task_t task, size_t num_class, const float *row,
                         size_t cols, double *v, bool *is_int);

#endif
