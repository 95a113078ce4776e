/* Selectable inference output (SAGEMAKER_INFERENCE_OUTPUT), after AWS's
 * serve_utils (get_selected_output_keys, VALID_OBJECTIVES, _get_*): the
 * variable's syntax, the keys each objective allows, and each key's values
 * per prediction row. Where AWS answers NaN for a key that does not apply,
 * smserve refuses the configuration at start instead (sms_selection_check). */
#include "smserve/select.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const key_names[SMS_KEY_COUNT] = {
    "predicted_label", "labels",     "probability",     "probabilities",
    "raw_score",       "raw_scores", "predicted_score",
};

#define BIT(k) (1u << (k))
#define CLASSIFICATION_KEYS                                                                        \
    (BIT(SMS_KEY_PREDICTED_LABEL) | BIT(SMS_KEY_LABELS) | BIT(SMS_KEY_PROBABILITY) |               \
     BIT(SMS_KEY_PROBABILITIES) | BIT(SMS_KEY_RAW_SCORE) | BIT(SMS_KEY_RAW_SCORES))
#define LABEL_KEYS                                                                                 \
    (BIT(SMS_KEY_PREDICTED_LABEL) | BIT(SMS_KEY_LABELS) | BIT(SMS_KEY_RAW_SCORE) |                 \
     BIT(SMS_KEY_RAW_SCORES))

static const struct {
    const char *name;
    sms_task_t task;
} objectives[] = {
    {"binary:logistic", SMS_TASK_BINARY_LOGISTIC}, {"binary:logitraw", SMS_TASK_BINARY_LOGITRAW},
    {"binary:hinge", SMS_TASK_BINARY_HINGE},       {"multi:softmax", SMS_TASK_MULTI_SOFTMAX},
    {"multi:softprob", SMS_TASK_MULTI_SOFTPROB},   {"reg:squarederror", SMS_TASK_REGRESSION},
    {"reg:logistic", SMS_TASK_REGRESSION},         {"reg:gamma", SMS_TASK_REGRESSION},
    {"reg:absoluteerror", SMS_TASK_REGRESSION},    {"reg:tweedie", SMS_TASK_REGRESSION},
    {"reg:linear", SMS_TASK_REGRESSION}, /* not AWS's: the legacy name of reg:squarederror */
};
#define NUM_AWS_OBJECTIVES 10

const char *sms_key_name(sms_key_t key)
{
    return (unsigned)key < SMS_KEY_COUNT ? key_names[key] : "";
}

bool sms_key_is_list(sms_key_t key)
{
    return key == SMS_KEY_LABELS || key == SMS_KEY_PROBABILITIES || key == SMS_KEY_RAW_SCORES;
}

sms_task_t sms_task_of(const char *objective)
{
    if (objective)
        for (size_t i = 0; i < sizeof objectives / sizeof objectives[0]; i++)
            if (!strcmp(objective, objectives[i].name))
                return objectives[i].task;
    return SMS_TASK_OTHER;
}

unsigned sms_task_keys(sms_task_t task)
{
    switch (task) {
    case SMS_TASK_BINARY_LOGISTIC:
    case SMS_TASK_MULTI_SOFTPROB:
        return CLASSIFICATION_KEYS;
    case SMS_TASK_BINARY_LOGITRAW:
    case SMS_TASK_BINARY_HINGE:
    case SMS_TASK_MULTI_SOFTMAX:
        return LABEL_KEYS;
    case SMS_TASK_REGRESSION:
        return BIT(SMS_KEY_PREDICTED_SCORE);
    case SMS_TASK_OTHER:
        break;
    }
    return 0;
}

/* AWS's `value.replace(" ", "").lower()`. Python lowers all of Unicode, but no
 * non-ASCII character lowers into the ASCII letters of a key name, so ASCII
 * lowering accepts and refuses exactly the same values. */
static size_t normalize(const char *value, char *out)
{
    size_t n = 0;
    for (const char *p = value; *p; p++) {
        char c = *p;
        if (c == ' ')
            continue;
        out[n++] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    out[n] = '\0';
    return n;
}

static sms_key_t key_of(const char *p, size_t len)
{
    for (int k = 0; k < SMS_KEY_COUNT; k++)
        if (strlen(key_names[k]) == len && !memcmp(key_names[k], p, len))
            return (sms_key_t)k;
    return SMS_KEY_COUNT;
}

/* Appends str to dst (room cap, NUL kept) when it fits whole. */
static void append(char *dst, size_t cap, const char *str)
{
    size_t n = strlen(dst), l = strlen(str);
    if (n + l < cap)
        memcpy(dst + n, str, l + 1);
}

/* Appends s[0, len) to dst (room cap), double-quoted when `quote`, escaping
 * quotes, backslashes and bytes outside printable ASCII, and cut with "..."
 * once the escaped text would pass `width` bytes, so that a message naming
 * what came from outside stays one readable line of bounded length. */
static void put_escaped(char *dst, size_t cap, const char *s, size_t len, size_t width, bool quote)
{
    char one[8];
    size_t i = 0, used = 0;
    if (quote)
        append(dst, cap, "\"");
    for (; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            snprintf(one, sizeof one, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            snprintf(one, sizeof one, "\\x%02x", c);
        else
            snprintf(one, sizeof one, "%c", c);
        used += strlen(one);
        if (used > width)
            break;
        append(dst, cap, one);
    }
    if (i < len)
        append(dst, cap, "...");
    if (quote)
        append(dst, cap, "\"");
}

int sms_selection_parse(const char *value, sms_selection_t *sel, sms_error_t *err)
{
    memset(sel, 0, sizeof *sel);
    size_t len = strlen(value);
    if (len > SMS_SELECTION_MAX_VALUE) {
        char shown[128] = "";
        put_escaped(shown, sizeof shown, value, len, 48, true);
        return sms_error_set(err, 500,
                             "invalid SAGEMAKER_INFERENCE_OUTPUT=%s: longer than %d bytes", shown,
                             SMS_SELECTION_MAX_VALUE);
    }
    memcpy(sel->value, value, len + 1);

    char norm[SMS_SELECTION_MAX_VALUE + 1];
    normalize(value, norm);
    for (const char *p = norm;;) {
        const char *comma = strchr(p, ',');
        size_t klen = comma ? (size_t)(comma - p) : strlen(p);
        if (sel->n == SMS_SELECTION_MAX_KEYS) {
            char shown[128] = "";
            put_escaped(shown, sizeof shown, value, len, 48, true);
            memset(sel, 0, sizeof *sel);
            return sms_error_set(err, 500,
                                 "invalid SAGEMAKER_INFERENCE_OUTPUT=%s: more than %d keys", shown,
                                 SMS_SELECTION_MAX_KEYS);
        }
        sms_key_t key = key_of(p, klen);
        sel->order[sel->n++] = key;
        if (key == SMS_KEY_COUNT)
            sel->unknown++;
        else
            sel->set |= BIT(key);
        if (!comma)
            break;
        p = comma + 1;
    }
    return 0;
}

static void put_key_list(char *dst, size_t cap, unsigned keys)
{
    for (int k = 0; k < SMS_KEY_COUNT; k++) {
        if (keys & BIT(k)) {
            if (*dst)
                append(dst, cap, ", ");
            append(dst, cap, key_names[k]);
        }
    }
}

int sms_selection_check(const sms_selection_t *sel, sms_task_t task, const char *objective,
                        sms_error_t *err)
{
    unsigned allowed = sms_task_keys(task);
    char value[160] = "";
    put_escaped(value, sizeof value, sel->value, strlen(sel->value), 96, true);
    char name[80] = "";
    if (objective)
        put_escaped(name, sizeof name, objective, strlen(objective), 64, false);
    else
        append(name, sizeof name, "(none)");

    if (task == SMS_TASK_OTHER) {
        char list[256] = "";
        for (size_t i = 0; i < NUM_AWS_OBJECTIVES; i++) {
            size_t n = strlen(list);
            snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", objectives[i].name);
        }
        return sms_error_set(err, 500,
                             "invalid SAGEMAKER_INFERENCE_OUTPUT=%s: objective %s has no "
                             "selectable output; only %s have (or unset the variable)",
                             value, name, list);
    }
    if (sel->unknown == 0 && (sel->set & ~allowed) == 0)
        return 0;

    /* The offending keys as written after normalising, each named once. */
    char norm[SMS_SELECTION_MAX_VALUE + 1], bad[192] = "";
    normalize(sel->value, norm);
    for (char *p = norm;;) {
        char *comma = strchr(p, ',');
        size_t klen = comma ? (size_t)(comma - p) : strlen(p);
        sms_key_t key = key_of(p, klen);
        if (key == SMS_KEY_COUNT || !(allowed & BIT(key))) {
            int seen = 0;
            for (char *q = norm; q < p && !seen;) {
                char *qc = strchr(q, ',');
                seen = (size_t)(qc - q) == klen && !memcmp(q, p, klen);
                q = qc + 1;
            }
            if (!seen) {
                char one[48] = "";
                put_escaped(one, sizeof one, p, klen, 32, true);
                if (strlen(bad) + 2 + strlen(one) < sizeof bad) {
                    if (*bad)
                        append(bad, sizeof bad, ", ");
                    append(bad, sizeof bad, one);
                }
            }
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    char keys[128] = "";
    put_key_list(keys, sizeof keys, allowed);
    return sms_error_set(err, 500,
                         "invalid SAGEMAKER_INFERENCE_OUTPUT=%s: objective %s does not allow "
                         "%s; it allows %s",
                         value, name, bad, keys);
}

size_t sms_select_max_values(sms_task_t task, size_t num_class, size_t cols)
{
    size_t most = 2;
    if (cols > most)
        most = cols;
    if ((task == SMS_TASK_MULTI_SOFTMAX || task == SMS_TASK_MULTI_SOFTPROB) && num_class > most)
        most = num_class;
    return most;
}

/* numpy's argmax: the first NaN if any, else the first of the largest. */
static size_t argmax(const float *row, size_t cols)
{
    size_t best = 0;
    for (size_t i = 0; i < cols; i++) {
        if (isnan(row[i]))
            return i;
        if (row[i] > row[best])
            best = i;
    }
    return best;
}

/* Python's max() over the row: a later value replaces only when greater, so
 * a leading NaN stays and later NaNs are passed over. */
static float python_max(const float *row, size_t cols)
{
    float m = row[0];
    for (size_t i = 1; i < cols; i++)
        if (row[i] > m)
            m = row[i];
    return m;
}

size_t sms_select_values(sms_key_t key, sms_task_t task, size_t num_class, const float *row,
                         size_t cols, double *v, bool *is_int)
{
    *is_int = false;
    if (task == SMS_TASK_OTHER)
        return 0;
    if ((unsigned)key >= SMS_KEY_COUNT || !(sms_task_keys(task) & BIT(key))) {
        v[0] = NAN;
        return 1;
    }
    const bool softprob = task == SMS_TASK_MULTI_SOFTPROB;
    /* What AWS reads with numpy's .item() must be one value; softprob's
     * max/argmax need at least one. */
    if (softprob ? cols == 0 : cols != 1 && key != SMS_KEY_LABELS)
        return 0;

    switch (key) {
    case SMS_KEY_PREDICTED_LABEL:
        switch (task) {
        case SMS_TASK_BINARY_LOGISTIC:
            *is_int = true;
            v[0] = row[0] > 0.5f ? 1 : 0;
            return 1;
        case SMS_TASK_BINARY_LOGITRAW:
            *is_int = true;
            v[0] = row[0] > 0.0f ? 1 : 0;
            return 1;
        case SMS_TASK_MULTI_SOFTPROB:
            *is_int = true;
            v[0] = (double)argmax(row, cols);
            return 1;
        default: /* hinge, softmax: the class as XGBoost's float */
            v[0] = row[0];
            return 1;
        }
    case SMS_KEY_LABELS: {
        *is_int = true;
        size_t n = task == SMS_TASK_MULTI_SOFTMAX || softprob ? num_class : 2;
        for (size_t i = 0; i < n; i++)
            v[i] = (double)i;
        return n;
    }
    case SMS_KEY_PROBABILITY:
    case SMS_KEY_RAW_SCORE:
        v[0] = softprob ? python_max(row, cols) : row[0];
        return 1;
    case SMS_KEY_PROBABILITIES:
    case SMS_KEY_RAW_SCORES:
        if (softprob) {
            for (size_t i = 0; i < cols; i++)
                v[i] = row[i];
            return cols;
        }
        v[0] = 1.0 - (double)row[0];
        v[1] = row[0];
        return 2;
    case SMS_KEY_PREDICTED_SCORE:
        v[0] = row[0];
        return 1;
    case SMS_KEY_COUNT:
        break;
    }
    return 0;
}
