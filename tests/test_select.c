/* Selectable inference output: SAGEMAKER_INFERENCE_OUTPUT read as AWS reads
 * it, the start-time refusal of keys an objective does not allow, and every
 * key's values per row as AWS's container computes them. The corpus tables
 * are literals from the AWS responses corpus (responses.jsonl: the 14 env
 * values on the 4 models, csv_3rows and csv_1row answered as JSON). */
#include "testutil.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "smserve/select.h"

enum { BINARY_M, MULTI_M, SOFTMAX_M, REG_M, NUM_MODELS };

static const struct {
    const char *objective;
    sms_task_t task;
    size_t num_class, cols;
} models[NUM_MODELS] = {
    {"binary:logistic", SMS_TASK_BINARY_LOGISTIC, 0, 1},
    {"multi:softprob", SMS_TASK_MULTI_SOFTPROB, 3, 3},
    {"multi:softmax", SMS_TASK_MULTI_SOFTMAX, 3, 1},
    {"reg:squarederror", SMS_TASK_REGRESSION, 0, 1},
};

struct key_case {
    int model;
    sms_key_t key;
    size_t n;
    bool is_int;
    double want[4][3]; /* for each recorded row */
};

struct check_case {
    const char *value;
    int model;
    const char *msg; /* NULL: accepted */
};

/* The models' recorded predictions: rows 0-2 csv_3rows, row 3 csv_1row. */
static const float binary_rows[4][1] = {
    {0.026043402031064034f},
    {0.933620035648346f},
    {0.9543266892433167f},
    {0.1971859633922577f},
};
static const float multi_rows[4][3] = {
    {0.887249231338501f, 0.08154400438070297f, 0.031206803396344185f},
    {0.06626703590154648f, 0.12678955495357513f, 0.8069433569908142f},
    {0.07995571196079254f, 0.37928277254104614f, 0.5407614707946777f},
    {0.20423348248004913f, 0.5403099656105042f, 0.2554565668106079f},
};
static const float softmax_rows[4][1] = {
    {0.0f},
    {2.0f},
    {2.0f},
    {1.0f},
};
static const float reg_rows[4][1] = {
    {5.350540637969971f},
    {17.858409881591797f},
    {6.592485427856445f},
    {-1.0516655445098877f},
};
/* Every key on every model, from the single-key configurations (the
 * multi-key ones hold the same values); NaN where AWS answers NaN. */
static const struct key_case key_cases[] = {
    {BINARY_M, SMS_KEY_PREDICTED_LABEL, 1, true, {{0.0}, {1.0}, {1.0}, {0.0}}},
    {BINARY_M, SMS_KEY_LABELS, 2, true, {{0.0, 1.0}, {0.0, 1.0}, {0.0, 1.0}, {0.0, 1.0}}},
    {BINARY_M,
     SMS_KEY_PROBABILITY,
     1,
     false,
     {{0.026043402031064034}, {0.933620035648346}, {0.9543266892433167}, {0.1971859633922577}}},
    {BINARY_M,
     SMS_KEY_PROBABILITIES,
     2,
     false,
     {{0.973956597968936, 0.026043402031064034},
      {0.06637996435165405, 0.933620035648346},
      {0.04567331075668335, 0.9543266892433167},
      {0.8028140366077423, 0.1971859633922577}}},
    {BINARY_M,
     SMS_KEY_RAW_SCORE,
     1,
     false,
     {{0.026043402031064034}, {0.933620035648346}, {0.9543266892433167}, {0.1971859633922577}}},
    {BINARY_M,
     SMS_KEY_RAW_SCORES,
     2,
     false,
     {{0.973956597968936, 0.026043402031064034},
      {0.06637996435165405, 0.933620035648346},
      {0.04567331075668335, 0.9543266892433167},
      {0.8028140366077423, 0.1971859633922577}}},
    {BINARY_M, SMS_KEY_PREDICTED_SCORE, 1, false, {{NAN}, {NAN}, {NAN}, {NAN}}},
    {MULTI_M, SMS_KEY_PREDICTED_LABEL, 1, true, {{0.0}, {2.0}, {2.0}, {1.0}}},
    {MULTI_M,
     SMS_KEY_LABELS,
     3,
     true,
     {{0.0, 1.0, 2.0}, {0.0, 1.0, 2.0}, {0.0, 1.0, 2.0}, {0.0, 1.0, 2.0}}},
    {MULTI_M,
     SMS_KEY_PROBABILITY,
     1,
     false,
     {{0.887249231338501}, {0.8069433569908142}, {0.5407614707946777}, {0.5403099656105042}}},
    {MULTI_M,
     SMS_KEY_PROBABILITIES,
     3,
     false,
     {{0.887249231338501, 0.08154400438070297, 0.031206803396344185},
      {0.06626703590154648, 0.12678955495357513, 0.8069433569908142},
      {0.07995571196079254, 0.37928277254104614, 0.5407614707946777},
      {0.20423348248004913, 0.5403099656105042, 0.2554565668106079}}},
    {MULTI_M,
     SMS_KEY_RAW_SCORE,
     1,
     false,
     {{0.887249231338501}, {0.8069433569908142}, {0.5407614707946777}, {0.5403099656105042}}},
    {MULTI_M,
     SMS_KEY_RAW_SCORES,
     3,
     false,
     {{0.887249231338501, 0.08154400438070297, 0.031206803396344185},
      {0.06626703590154648, 0.12678955495357513, 0.8069433569908142},
      {0.07995571196079254, 0.37928277254104614, 0.5407614707946777},
      {0.20423348248004913, 0.5403099656105042, 0.2554565668106079}}},
    {MULTI_M, SMS_KEY_PREDICTED_SCORE, 1, false, {{NAN}, {NAN}, {NAN}, {NAN}}},
    {SOFTMAX_M, SMS_KEY_PREDICTED_LABEL, 1, false, {{0.0}, {2.0}, {2.0}, {1.0}}},
    {SOFTMAX_M,
     SMS_KEY_LABELS,
     3,
     true,
     {{0.0, 1.0, 2.0}, {0.0, 1.0, 2.0}, {0.0, 1.0, 2.0}, {0.0, 1.0, 2.0}}},
    {SOFTMAX_M, SMS_KEY_PROBABILITY, 1, false, {{NAN}, {NAN}, {NAN}, {NAN}}},
    {SOFTMAX_M, SMS_KEY_PROBABILITIES, 1, false, {{NAN}, {NAN}, {NAN}, {NAN}}},
    {SOFTMAX_M, SMS_KEY_RAW_SCORE, 1, false, {{0.0}, {2.0}, {2.0}, {1.0}}},
    {SOFTMAX_M, SMS_KEY_RAW_SCORES, 2, false, {{1.0, 0.0}, {-1.0, 2.0}, {-1.0, 2.0}, {0.0, 1.0}}},
    {SOFTMAX_M, SMS_KEY_PREDICTED_SCORE, 1, false, {{NAN}, {NAN}, {NAN}, {NAN}}},
    {REG_M, SMS_KEY_PREDICTED_LABEL, 1, false, {{NAN}, {NAN}, {NAN}, {NAN}}},
    {REG_M, SMS_KEY_LABELS, 1, false, {{NAN}, {NAN}, {NAN}, {NAN}}},
    {REG_M, SMS_KEY_PROBABILITY, 1, false, {{NAN}, {NAN}, {NAN}, {NAN}}},
    {REG_M, SMS_KEY_PROBABILITIES, 1, false, {{NAN}, {NAN}, {NAN}, {NAN}}},
    {REG_M, SMS_KEY_RAW_SCORE, 1, false, {{NAN}, {NAN}, {NAN}, {NAN}}},
    {REG_M, SMS_KEY_RAW_SCORES, 1, false, {{NAN}, {NAN}, {NAN}, {NAN}}},
    {REG_M,
     SMS_KEY_PREDICTED_SCORE,
     1,
     false,
     {{5.350540637969971}, {17.858409881591797}, {6.592485427856445}, {-1.0516655445098877}}},
};

/* Every env value of the corpus on every model: the 28 that AWS answers
 * with NaN are refused. */
static const struct check_case check_cases[] = {
    {"predicted_label", BINARY_M, NULL},
    {"predicted_label", MULTI_M, NULL},
    {"predicted_label", SOFTMAX_M, NULL},
    {"predicted_label", REG_M,
     "invalid SAGEMAKER_INFERENCE_OUTPUT=\"predicted_label\": objective reg:squarederror does not "
     "allow \"predicted_label\"; it allows predicted_score"},
    {"probability", BINARY_M, NULL},
    {"probability", MULTI_M, NULL},
    {"probability", SOFTMAX_M,
     "invalid SAGEMAKER_INFERENCE_OUTPUT=\"probability\": objective multi:softmax does not allow "
     "\"probability\"; it allows predicted_label, labels, raw_score, raw_scores"},
    {"probability", REG_M,
     "invalid SAGEMAKER_INFERENCE_OUTPUT=\"probability\": objective reg:squarederror does not "
     "allow \"probability\"; it allows predicted_score"},
    {"probabilities", BINARY_M, NULL},
    {"probabilities", MULTI_M, NULL},
    {"probabilities", SOFTMAX_M,
     "invalid SAGEMAKER_INFERENCE_OUTPUT=\"probabilities\": objective multi:softmax does not allow "
     "\"probabilities\"; it allows predicted_label, labels, raw_score, raw_scores"},
    {"probabilities", REG_M,
     "invalid SAGEMAKER_INFERENCE_OUTPUT=\"probabilities\": objective reg:squarederror does not "
     "allow \"probabilities\"; it allows predicted_score"},
    {"labels", BINARY_M, NULL},
    {"labels", MULTI_M, NULL},
    {"labels", SOFTMAX_M, NULL},
    {"labels", REG_M,
     "invalid SAGEMAKER_INFERENCE_OUTPUT=\"labels\": objective reg:squarederror does not allow "
     "\"labels\"; it allows predicted_score"},
    {"raw_score", BINARY_M, NULL},
    {"raw_score", MULTI_M, NULL},
    {"raw_score", SOFTMAX_M, NULL},
    {"raw_score", REG_M,
     "invalid SAGEMAKER_INFERENCE_OUTPUT=\"raw_score\": objective reg:squarederror does not allow "
     "\"raw_score\"; it allows predicted_score"},
    {"raw_scores", BINARY_M, NULL},
    {"raw_scores", MULTI_M, NULL},
    {"raw_scores", SOFTMAX_M, NULL},
    {"raw_scores", REG_M,
     "invalid SAGEMAKER_INFERENCE_OUTPUT=\"raw_scores\": objective reg:squarederror does not allow "
     "\"raw_scores\"; it allows predicted_score"},
    {"predicted_label,probability", BINARY_M, NULL},
    {"predicted_label,probability", MULTI_M, NULL},
    {"predicted_label,probability", SOFTMAX_M,
     "invalid SAGEMAKER_INFERENCE_OUTPUT=\"predicted_label,probability\": objective multi:softmax "
     "does not allow \"probability\"; it allows predicted_label, labels, raw_score, raw_scores"},
    {"predicted_label,probability", REG_M,
     "invalid SAGEMAKER_INFERENCE_OUTPUT=\"predicted_label,probability\": objective "
     "reg:squarederror does not allow \"predicted_label\", \"probability\"; it allows "
     "predicted_score"},
    {"labels,probabilities,predicted_label", BINARY_M, NULL},
    {"labels,probabilities,predicted_label", MULTI_M, NULL},
    {"labels,probabilities,predicted_label", SOFTMAX_M,
     "invalid SAGEMAKER_INFERENCE_OUTPUT=\"labels,probabilities,predicted_label\": objective "
     "multi:softmax does not allow \"probabilities\"; it allows predicted_label, labels, "
     "raw_score, raw_scores"},
    {"labels,probabilities,predicted_label", REG_M,
     "invalid SAGEMAKER_INFERENCE_OUTPUT=\"labels,probabilities,predicted_label\": objective "
     "reg:squarederror does not allow \"labels\", \"probabilities\", \"predicted_label\"; it "
     "allows predicted_score"},
    {"raw_scores,probabilities", BINARY_M, NULL},
    {"raw_scores,probabilities", MULTI_M, NULL},
    {"raw_scores,probabilities", SOFTMAX_M,
     "invalid SAGEMAKER_INFERENCE_OUTPUT=\"raw_scores,probabilities\": objective multi:softmax "
     "does not allow \"probabilities\"; it allows predicted_label, labels, raw_score, raw_scores"},
    {"raw_scores,probabilities", REG_M,
     "invalid SAGEMAKER_INFERENCE_OUTPUT=\"raw_scores,probabilities\": objective reg:squarederror "
     "does not allow \"raw_scores\", \"probabilities\"; it allows predicted_score"},
    {"bogus_key", BINARY_M,
     "invalid SAGEMAKER_INFERENCE_OUTPUT=\"bogus_key\": objective binary:logistic does not allow "
     "\"bogus_key\"; it allows predicted_label, labels, probability, probabilities, raw_score, "
     "raw_scores"},
    {"bogus_key", MULTI_M,
     "invalid SAGEMAKER_INFERENCE_OUTPUT=\"bogus_key\": objective multi:softprob does not allow "
     "\"bogus_key\"; it allows predicted_label, labels, probability, probabilities, raw_score, "
     "raw_scores"},
    {"bogus_key", SOFTMAX_M,
     "invalid SAGEMAKER_INFERENCE_OUTPUT=\"bogus_key\": objective multi:softmax does not allow "
     "\"bogus_key\"; it allows predicted_label, labels, raw_score, raw_scores"},
    {"bogus_key", REG_M,
     "invalid SAGEMAKER_INFERENCE_OUTPUT=\"bogus_key\": objective reg:squarederror does not allow "
     "\"bogus_key\"; it allows predicted_score"},
    {"predicted_score", BINARY_M,
     "invalid SAGEMAKER_INFERENCE_OUTPUT=\"predicted_score\": objective binary:logistic does not "
     "allow \"predicted_score\"; it allows predicted_label, labels, probability, probabilities, "
     "raw_score, raw_scores"},
    {"predicted_score", MULTI_M,
     "invalid SAGEMAKER_INFERENCE_OUTPUT=\"predicted_score\": objective multi:softprob does not "
     "allow \"predicted_score\"; it allows predicted_label, labels, probability, probabilities, "
     "raw_score, raw_scores"},
    {"predicted_score", SOFTMAX_M,
     "invalid SAGEMAKER_INFERENCE_OUTPUT=\"predicted_score\": objective multi:softmax does not "
     "allow \"predicted_score\"; it allows predicted_label, labels, raw_score, raw_scores"},
    {"predicted_score", REG_M, NULL},
    {"Predicted_Label, PROBABILITY", BINARY_M, NULL},
    {"Predicted_Label, PROBABILITY", MULTI_M, NULL},
    {"Predicted_Label, PROBABILITY", SOFTMAX_M,
     "invalid SAGEMAKER_INFERENCE_OUTPUT=\"Predicted_Label, PROBABILITY\": objective multi:softmax "
     "does not allow \"probability\"; it allows predicted_label, labels, raw_score, raw_scores"},
    {"Predicted_Label, PROBABILITY", REG_M,
     "invalid SAGEMAKER_INFERENCE_OUTPUT=\"Predicted_Label, PROBABILITY\": objective "
     "reg:squarederror does not allow \"predicted_label\", \"probability\"; it allows "
     "predicted_score"},
    {"predicted_label,predicted_label", BINARY_M, NULL},
    {"predicted_label,predicted_label", MULTI_M, NULL},
    {"predicted_label,predicted_label", SOFTMAX_M, NULL},
    {"predicted_label,predicted_label", REG_M,
     "invalid SAGEMAKER_INFERENCE_OUTPUT=\"predicted_label,predicted_label\": objective "
     "reg:squarederror does not allow \"predicted_label\"; it allows predicted_score"},
    {"", BINARY_M,
     "invalid SAGEMAKER_INFERENCE_OUTPUT=\"\": objective binary:logistic does not allow \"\"; it "
     "allows predicted_label, labels, probability, probabilities, raw_score, raw_scores"},
    {"", MULTI_M,
     "invalid SAGEMAKER_INFERENCE_OUTPUT=\"\": objective multi:softprob does not allow \"\"; it "
     "allows predicted_label, labels, probability, probabilities, raw_score, raw_scores"},
    {"", SOFTMAX_M,
     "invalid SAGEMAKER_INFERENCE_OUTPUT=\"\": objective multi:softmax does not allow \"\"; it "
     "allows predicted_label, labels, raw_score, raw_scores"},
    {"", REG_M,
     "invalid SAGEMAKER_INFERENCE_OUTPUT=\"\": objective reg:squarederror does not allow \"\"; it "
     "allows predicted_score"},
};

static const float *model_row(int model, int row)
{
    switch (model) {
    case BINARY_M:
        return binary_rows[row];
    case MULTI_M:
        return multi_rows[row];
    case SOFTMAX_M:
        return softmax_rows[row];
    default:
        return reg_rows[row];
    }
}

static void names(void **state)
{
    (void)state;
    const char *want[] = {"predicted_label", "labels",     "probability",    "probabilities",
                          "raw_score",       "raw_scores", "predicted_score"};
    for (int k = 0; k < SMS_KEY_COUNT; k++) {
        assert_string_equal(sms_key_name((sms_key_t)k), want[k]);
        assert_int_equal(sms_key_is_list((sms_key_t)k), k == SMS_KEY_LABELS ||
                                                            k == SMS_KEY_PROBABILITIES ||
                                                            k == SMS_KEY_RAW_SCORES);
    }
    assert_string_equal(sms_key_name(SMS_KEY_COUNT), "");
}

#define K(name) SMS_KEY_##name
#define UNKNOWN SMS_KEY_COUNT
#define END     ((sms_key_t)-1)

static void check_parse(const char *value, const sms_key_t *want)
{
    sms_selection_t sel;
    sms_error_t err = {0};
    if (sms_selection_parse(value, &sel, &err) != 0)
        print_error("'%s': %s\n", value, err.msg);
    assert_int_equal(sms_selection_parse(value, &sel, &err), 0);
    size_t n = 0, unknown = 0;
    unsigned set = 0;
    for (; want[n] != END; n++) {
        if (sel.n <= n || sel.order[n] != want[n])
            print_error("'%s': key %zu is %d, want %d\n", value, n,
                        sel.n > n ? (int)sel.order[n] : -1, (int)want[n]);
        assert_true(sel.n > n);
        assert_int_equal(sel.order[n], want[n]);
        if (want[n] == UNKNOWN)
            unknown++;
        else
            set |= 1u << want[n];
    }
    assert_int_equal(sel.n, n);
    assert_int_equal(sel.unknown, unknown);
    assert_int_equal(sel.set, set);
    assert_string_equal(sel.value, value);
}

/* The 14 values of the corpus, then AWS's syntax (`replace(" ", "")`,
 * `lower()`, `split(",")`) at its corners. */
static void parse_as_aws(void **state)
{
    (void)state;
    check_parse("predicted_label", (sms_key_t[]){K(PREDICTED_LABEL), END});
    check_parse("probability", (sms_key_t[]){K(PROBABILITY), END});
    check_parse("probabilities", (sms_key_t[]){K(PROBABILITIES), END});
    check_parse("labels", (sms_key_t[]){K(LABELS), END});
    check_parse("raw_score", (sms_key_t[]){K(RAW_SCORE), END});
    check_parse("raw_scores", (sms_key_t[]){K(RAW_SCORES), END});
    check_parse("predicted_label,probability",
                (sms_key_t[]){K(PREDICTED_LABEL), K(PROBABILITY), END});
    check_parse("labels,probabilities,predicted_label",
                (sms_key_t[]){K(LABELS), K(PROBABILITIES), K(PREDICTED_LABEL), END});
    check_parse("raw_scores,probabilities", (sms_key_t[]){K(RAW_SCORES), K(PROBABILITIES), END});
    check_parse("bogus_key", (sms_key_t[]){UNKNOWN, END});
    check_parse("predicted_score", (sms_key_t[]){K(PREDICTED_SCORE), END});
    check_parse("Predicted_Label, PROBABILITY",
                (sms_key_t[]){K(PREDICTED_LABEL), K(PROBABILITY), END});
    check_parse("predicted_label,predicted_label",
                (sms_key_t[]){K(PREDICTED_LABEL), K(PREDICTED_LABEL), END});
    check_parse("", (sms_key_t[]){UNKNOWN, END});

    check_parse("  raw_score  ", (sms_key_t[]){K(RAW_SCORE), END});
    check_parse("raw _ sco re", (sms_key_t[]){K(RAW_SCORE), END}); /* every space goes */
    check_parse(" ", (sms_key_t[]){UNKNOWN, END});
    check_parse("RAW_SCORES", (sms_key_t[]){K(RAW_SCORES), END});
    check_parse("predicted_label,", (sms_key_t[]){K(PREDICTED_LABEL), UNKNOWN, END});
    check_parse(",labels", (sms_key_t[]){UNKNOWN, K(LABELS), END});
    check_parse("labels,,labels", (sms_key_t[]){K(LABELS), UNKNOWN, K(LABELS), END});
    check_parse(",", (sms_key_t[]){UNKNOWN, UNKNOWN, END});
    check_parse("\tlabels", (sms_key_t[]){UNKNOWN, END}); /* only spaces go */
    check_parse("labels\n", (sms_key_t[]){UNKNOWN, END});
    check_parse("labels;raw_score", (sms_key_t[]){UNKNOWN, END});
    check_parse("label", (sms_key_t[]){UNKNOWN, END});
    check_parse("labelss", (sms_key_t[]){UNKNOWN, END});
    check_parse("predicted_score,raw_scores,raw_score,probabilities,probability,labels,"
                "predicted_label",
                (sms_key_t[]){K(PREDICTED_SCORE), K(RAW_SCORES), K(RAW_SCORE), K(PROBABILITIES),
                              K(PROBABILITY), K(LABELS), K(PREDICTED_LABEL), END});
}

static void parse_limits(void **state)
{
    (void)state;
    char value[2048];
    sms_key_t want[SMS_SELECTION_MAX_KEYS + 1];
    value[0] = '\0';
    for (int i = 0; i < SMS_SELECTION_MAX_KEYS; i++) {
        strcat(value, i ? ",labels" : "labels");
        want[i] = K(LABELS);
    }
    want[SMS_SELECTION_MAX_KEYS] = END;
    check_parse(value, want);

    sms_selection_t sel;
    sms_error_t err = {0};
    strcat(value, ",labels");
    assert_int_equal(sms_selection_parse(value, &sel, &err), -1);
    assert_int_equal(err.status, 500);
    assert_string_equal(err.msg, "invalid SAGEMAKER_INFERENCE_OUTPUT=\"labels,labels,labels,"
                                 "labels,labels,labels,labels...\": more than 32 keys");
    assert_int_equal(sel.n, 0);

    /* Spaces count toward the length, as they are in the variable. */
    memset(value, ' ', SMS_SELECTION_MAX_VALUE);
    memcpy(value, "labels", 6);
    value[SMS_SELECTION_MAX_VALUE] = '\0';
    check_parse(value, (sms_key_t[]){K(LABELS), END});
    strcat(value, " ");
    assert_int_equal(sms_selection_parse(value, &sel, &err), -1);
    assert_string_equal(err.msg, "invalid SAGEMAKER_INFERENCE_OUTPUT=\"labels                 "
                                 "                         ...\": longer than 1023 bytes");
}

static void tasks(void **state)
{
    (void)state;
    static const struct {
        const char *objective;
        sms_task_t task;
    } cases[] = {
        {"binary:logistic", SMS_TASK_BINARY_LOGISTIC},
        {"binary:logitraw", SMS_TASK_BINARY_LOGITRAW},
        {"binary:hinge", SMS_TASK_BINARY_HINGE},
        {"multi:softmax", SMS_TASK_MULTI_SOFTMAX},
        {"multi:softprob", SMS_TASK_MULTI_SOFTPROB},
        {"reg:squarederror", SMS_TASK_REGRESSION},
        {"reg:logistic", SMS_TASK_REGRESSION},
        {"reg:gamma", SMS_TASK_REGRESSION},
        {"reg:absoluteerror", SMS_TASK_REGRESSION},
        {"reg:tweedie", SMS_TASK_REGRESSION},
        {"reg:linear", SMS_TASK_REGRESSION},
        {"reg:pseudohubererror", SMS_TASK_OTHER},
        {"reg:squaredlogerror", SMS_TASK_OTHER},
        {"reg:quantileerror", SMS_TASK_OTHER},
        {"count:poisson", SMS_TASK_OTHER},
        {"survival:cox", SMS_TASK_OTHER},
        {"rank:pairwise", SMS_TASK_OTHER},
        {"binary:logistic ", SMS_TASK_OTHER},
        {"Binary:Logistic", SMS_TASK_OTHER},
        {"binary:", SMS_TASK_OTHER},
        {"", SMS_TASK_OTHER},
        {NULL, SMS_TASK_OTHER},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(sms_task_of(cases[i].objective), cases[i].task);

    const unsigned all6 = 0x3f, label4 = 1u << K(PREDICTED_LABEL) | 1u << K(LABELS) |
                                         1u << K(RAW_SCORE) | 1u << K(RAW_SCORES);
    assert_int_equal(sms_task_keys(SMS_TASK_BINARY_LOGISTIC), all6);
    assert_int_equal(sms_task_keys(SMS_TASK_MULTI_SOFTPROB), all6);
    assert_int_equal(sms_task_keys(SMS_TASK_BINARY_LOGITRAW), label4);
    assert_int_equal(sms_task_keys(SMS_TASK_BINARY_HINGE), label4);
    assert_int_equal(sms_task_keys(SMS_TASK_MULTI_SOFTMAX), label4);
    assert_int_equal(sms_task_keys(SMS_TASK_REGRESSION), 1u << K(PREDICTED_SCORE));
    assert_int_equal(sms_task_keys(SMS_TASK_OTHER), 0);
}

static void check_one(const char *value, sms_task_t task, const char *objective, const char *msg)
{
    sms_selection_t sel;
    sms_error_t err = {0};
    assert_int_equal(sms_selection_parse(value, &sel, &err), 0);
    int rc = sms_selection_check(&sel, task, objective, &err);
    if (!msg) {
        if (rc != 0)
            print_error("'%s' on %s refused: %s\n", value, objective, err.msg);
        assert_int_equal(rc, 0);
        return;
    }
    if (rc != -1 || strcmp(err.msg, msg))
        print_error("'%s' on %s: rc %d\n got  %s\n want %s\n", value, objective, rc,
                    rc ? err.msg : "", msg);
    assert_int_equal(rc, -1);
    assert_int_equal(err.status, 500);
    assert_string_equal(err.msg, msg);
}

static void corpus_configurations(void **state)
{
    (void)state;
    size_t refused = 0;
    for (size_t i = 0; i < sizeof check_cases / sizeof check_cases[0]; i++) {
        const struct check_case *c = &check_cases[i];
        check_one(c->value, models[c->model].task, models[c->model].objective, c->msg);
        refused += c->msg != NULL;
    }
    assert_int_equal(sizeof check_cases / sizeof check_cases[0], 14 * NUM_MODELS);
    assert_int_equal(refused, 28);
}

/* Outside the corpus: AWS's VALID_OBJECTIVES for logitraw and hinge, other
 * objectives, and messages that stay one readable line. */
static void check_beyond_corpus(void **state)
{
    (void)state;
    const char *label4 = "predicted_label, labels, raw_score, raw_scores";
    char want[512];
    check_one("predicted_label,labels,raw_score,raw_scores", SMS_TASK_BINARY_LOGITRAW,
              "binary:logitraw", NULL);
    check_one("raw_scores", SMS_TASK_BINARY_HINGE, "binary:hinge", NULL);
    snprintf(want, sizeof want,
             "invalid SAGEMAKER_INFERENCE_OUTPUT=\"probability\": objective binary:logitraw "
             "does not allow \"probability\"; it allows %s",
             label4);
    check_one("probability", SMS_TASK_BINARY_LOGITRAW, "binary:logitraw", want);
    snprintf(want, sizeof want,
             "invalid SAGEMAKER_INFERENCE_OUTPUT=\"probabilities,bogus\": objective binary:hinge "
             "does not allow \"probabilities\", \"bogus\"; it allows %s",
             label4);
    check_one("probabilities,bogus", SMS_TASK_BINARY_HINGE, "binary:hinge", want);
    check_one("predicted_score", SMS_TASK_REGRESSION, "reg:linear", NULL);
    check_one("predicted_score", SMS_TASK_REGRESSION, "reg:tweedie", NULL);

    /* each offending key named once, as normalised, in env order */
    check_one("Bogus,bogus, BOGUS,predicted_score,,", SMS_TASK_BINARY_LOGISTIC, "binary:logistic",
              "invalid SAGEMAKER_INFERENCE_OUTPUT=\"Bogus,bogus, BOGUS,predicted_score,,\": "
              "objective binary:logistic does not allow \"bogus\", \"predicted_score\", \"\"; "
              "it allows predicted_label, labels, probability, probabilities, raw_score, "
              "raw_scores");
    check_one("labels\t,\"x\\\xc3\xa9\n", SMS_TASK_REGRESSION, "reg:squarederror",
              "invalid SAGEMAKER_INFERENCE_OUTPUT=\"labels\\x09,\\\"x\\\\\\xc3\\xa9\\x0a\": "
              "objective reg:squarederror does not allow \"labels\\x09\", "
              "\"\\\"x\\\\\\xc3\\xa9\\x0a\"; it allows predicted_score");

    const char *others =
        "only binary:logistic, binary:logitraw, binary:hinge, multi:softmax, multi:softprob, "
        "reg:squarederror, reg:logistic, reg:gamma, reg:absoluteerror, reg:tweedie have (or "
        "unset the variable)";
    snprintf(want, sizeof want,
             "invalid SAGEMAKER_INFERENCE_OUTPUT=\"predicted_label\": objective rank:pairwise has "
             "no selectable output; %s",
             others);
    check_one("predicted_label", SMS_TASK_OTHER, "rank:pairwise", want);
    snprintf(want, sizeof want,
             "invalid SAGEMAKER_INFERENCE_OUTPUT=\"predicted_score\": objective (none) has no "
             "selectable output; %s",
             others);
    check_one("predicted_score", SMS_TASK_OTHER, NULL, want);

    snprintf(want, sizeof want,
             "invalid SAGEMAKER_INFERENCE_OUTPUT=\"labels\": objective rank:\\x0a\\\"x has no "
             "selectable output; %s",
             others);
    check_one("labels", SMS_TASK_OTHER, "rank:\n\"x", want);

    /* A long value is cut in the message, which stays within err.msg. */
    char value[SMS_SELECTION_MAX_VALUE + 1];
    memset(value, 'x', SMS_SELECTION_MAX_VALUE);
    value[SMS_SELECTION_MAX_VALUE] = '\0';
    sms_selection_t sel;
    sms_error_t err = {0};
    assert_int_equal(sms_selection_parse(value, &sel, &err), 0);
    assert_int_equal(sms_selection_check(&sel, SMS_TASK_REGRESSION, "reg:squarederror", &err), -1);
    assert_true(strlen(err.msg) < sizeof err.msg - 1);
    assert_null(strchr(err.msg, '\n'));
    assert_non_null(strstr(err.msg, "xxx...\": objective reg:squarederror does not allow \"xxx"));
    assert_non_null(strstr(err.msg, "...\"; it allows predicted_score"));
}

static void check_values(sms_key_t key, sms_task_t task, size_t num_class, const float *row,
                         size_t cols, size_t n, bool is_int, const double *want)
{
    double v[8];
    bool got_int = !is_int;
    assert_true(sms_select_max_values(task, num_class, cols) <= 8);
    size_t got = sms_select_values(key, task, num_class, row, cols, v, &got_int);
    if (got != n)
        print_error("key %s task %d: %zu values, want %zu\n", sms_key_name(key), (int)task, got, n);
    assert_int_equal(got, n);
    assert_int_equal(got_int, is_int);
    assert_true(n <= sms_select_max_values(task, num_class, cols));
    for (size_t i = 0; i < n; i++) {
        bool same = isnan(want[i]) ? isnan(v[i]) : v[i] == want[i];
        if (!same)
            print_error("key %s task %d value %zu: %.17g, want %.17g\n", sms_key_name(key),
                        (int)task, i, v[i], want[i]);
        assert_true(same);
    }
}

/* Exact equality: AWS's numbers are float64 (the float32 prediction
 * widened, or 1.0 minus it), and so are these. */
static void corpus_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < TU_COUNT(key_cases); i++) {
        const struct key_case *c = &key_cases[i];
        for (int row = 0; row < 4; row++)
            check_values(c->key, models[c->model].task, models[c->model].num_class,
                         model_row(c->model, row), models[c->model].cols, c->n, c->is_int,
                         c->want[row]);
    }
    assert_int_equal(TU_COUNT(key_cases), 7 * NUM_MODELS); /* every key, rows 0-3 each */
}

#define VALUES(key, task, nc, row_init, n, is_int, ...)                                            \
    do {                                                                                           \
        const float row_[] = row_init;                                                             \
        check_values(SMS_KEY_##key, SMS_TASK_##task, nc, row_, sizeof row_ / sizeof row_[0], n,    \
                     is_int, (const double[]){__VA_ARGS__});                                       \
    } while (0)
#define ROW(...)                                                                                   \
    {                                                                                              \
        __VA_ARGS__                                                                                \
    }

/* AWS's source where the corpus has no model: logitraw and hinge. */
static void source_values(void **state)
{
    (void)state;
    VALUES(PREDICTED_LABEL, BINARY_LOGITRAW, 0, ROW(-0.25f), 1, true, 0);
    VALUES(PREDICTED_LABEL, BINARY_LOGITRAW, 0, ROW(0.0f), 1, true, 0);
    VALUES(PREDICTED_LABEL, BINARY_LOGITRAW, 0, ROW(-0.0f), 1, true, 0);
    VALUES(PREDICTED_LABEL, BINARY_LOGITRAW, 0, ROW(1e-30f), 1, true, 1);
    VALUES(PREDICTED_LABEL, BINARY_LOGITRAW, 0, ROW(NAN), 1, true, 0);
    VALUES(LABELS, BINARY_LOGITRAW, 0, ROW(2.5f), 2, true, 0, 1);
    VALUES(RAW_SCORE, BINARY_LOGITRAW, 0, ROW(-1.3f), 1, false, (double)-1.3f);
    VALUES(RAW_SCORES, BINARY_LOGITRAW, 0, ROW(-1.3f), 2, false, 1.0 - (double)-1.3f,
           (double)-1.3f);
    VALUES(RAW_SCORES, BINARY_LOGITRAW, 0, ROW(0.1f), 2, false, 0.89999999850988388,
           0.10000000149011612);
    VALUES(PROBABILITY, BINARY_LOGITRAW, 0, ROW(0.1f), 1, false, NAN);
    VALUES(PROBABILITIES, BINARY_LOGITRAW, 0, ROW(0.1f), 1, false, NAN);

    VALUES(PREDICTED_LABEL, BINARY_HINGE, 0, ROW(1.0f), 1, false, 1.0);
    VALUES(PREDICTED_LABEL, BINARY_HINGE, 0, ROW(0.0f), 1, false, 0.0);
    VALUES(LABELS, BINARY_HINGE, 0, ROW(1.0f), 2, true, 0, 1);
    VALUES(RAW_SCORE, BINARY_HINGE, 0, ROW(1.0f), 1, false, 1.0);
    VALUES(RAW_SCORES, BINARY_HINGE, 0, ROW(1.0f), 2, false, 0.0, 1.0);
    VALUES(RAW_SCORES, BINARY_HINGE, 0, ROW(0.0f), 2, false, 1.0, 0.0);
    VALUES(PROBABILITY, BINARY_HINGE, 0, ROW(1.0f), 1, false, NAN);
    VALUES(PREDICTED_SCORE, BINARY_HINGE, 0, ROW(1.0f), 1, false, NAN);

    VALUES(LABELS, MULTI_SOFTMAX, 5, ROW(4.0f), 5, true, 0, 1, 2, 3, 4);
    VALUES(RAW_SCORES, MULTI_SOFTMAX, 5, ROW(4.0f), 2, false, -3.0, 4.0);
    VALUES(PREDICTED_SCORE, REGRESSION, 0, ROW(-0.0f), 1, false, -0.0);
    VALUES(PREDICTED_SCORE, REGRESSION, 0, ROW(NAN), 1, false, NAN);
    VALUES(PREDICTED_SCORE, REGRESSION, 0, ROW(INFINITY), 1, false, INFINITY);
}

/* int(p > 0.5), numpy's argmax and Python's max at their corners. */
static void edges(void **state)
{
    (void)state;
    VALUES(PREDICTED_LABEL, BINARY_LOGISTIC, 0, ROW(0.5f), 1, true, 0);
    VALUES(PREDICTED_LABEL, BINARY_LOGISTIC, 0, ROW(0.50000006f), 1, true, 1);
    VALUES(PREDICTED_LABEL, BINARY_LOGISTIC, 0, ROW(0.49999997f), 1, true, 0);
    VALUES(PREDICTED_LABEL, BINARY_LOGISTIC, 0, ROW(NAN), 1, true, 0);
    VALUES(PREDICTED_LABEL, BINARY_LOGISTIC, 0, ROW(1.0f), 1, true, 1);
    VALUES(PREDICTED_LABEL, BINARY_LOGISTIC, 0, ROW(0.0f), 1, true, 0);
    VALUES(PROBABILITIES, BINARY_LOGISTIC, 0, ROW(0.5f), 2, false, 0.5, 0.5);
    VALUES(PROBABILITIES, BINARY_LOGISTIC, 0, ROW(NAN), 2, false, NAN, NAN);
    VALUES(PROBABILITIES, BINARY_LOGISTIC, 0, ROW(0.1f), 2, false, 0.89999999850988388,
           0.10000000149011612);

    /* ties: the first class wins */
    VALUES(PREDICTED_LABEL, MULTI_SOFTPROB, 3, ROW(0.25f, 0.375f, 0.375f), 1, true, 1);
    VALUES(PREDICTED_LABEL, MULTI_SOFTPROB, 3, ROW(0.5f, 0.5f, 0.0f), 1, true, 0);
    VALUES(PREDICTED_LABEL, MULTI_SOFTPROB, 3, ROW(0.2f, 0.2f, 0.2f), 1, true, 0);
    VALUES(PROBABILITY, MULTI_SOFTPROB, 3, ROW(0.25f, 0.375f, 0.375f), 1, false, 0.375);
    VALUES(RAW_SCORE, MULTI_SOFTPROB, 3, ROW(0.5f, 0.5f, 0.0f), 1, false, 0.5);
    /* NaN: argmax takes the first NaN, max() keeps a leading NaN and skips
     * later ones */
    VALUES(PREDICTED_LABEL, MULTI_SOFTPROB, 3, ROW(0.2f, NAN, 0.9f), 1, true, 1);
    VALUES(PROBABILITY, MULTI_SOFTPROB, 3, ROW(0.2f, NAN, 0.5f), 1, false, 0.5);
    VALUES(PREDICTED_LABEL, MULTI_SOFTPROB, 3, ROW(NAN, 0.2f, 0.5f), 1, true, 0);
    VALUES(PROBABILITY, MULTI_SOFTPROB, 3, ROW(NAN, 0.2f, 0.5f), 1, false, NAN);
    VALUES(PROBABILITIES, MULTI_SOFTPROB, 3, ROW(NAN, 0.25f, 0.5f), 3, false, NAN, 0.25, 0.5);
    VALUES(LABELS, MULTI_SOFTPROB, 2, ROW(0.25f, 0.75f), 2, true, 0, 1);
    VALUES(PREDICTED_LABEL, MULTI_SOFTPROB, 1, ROW(0.75f), 1, true, 0);
}

/* Rows AWS cannot read (numpy's .item() of several values, max() of none)
 * and objectives it refuses: no values (AWS answers 500). */
static void shapes_aws_refuses(void **state)
{
    (void)state;
    const float two[] = {0.25f, 0.75f};
    double v[8];
    bool is_int;
    assert_int_equal(
        sms_select_values(K(PREDICTED_LABEL), SMS_TASK_BINARY_LOGISTIC, 0, two, 2, v, &is_int), 0);
    assert_int_equal(
        sms_select_values(K(PROBABILITIES), SMS_TASK_BINARY_LOGISTIC, 0, two, 2, v, &is_int), 0);
    assert_int_equal(
        sms_select_values(K(PREDICTED_SCORE), SMS_TASK_REGRESSION, 0, two, 2, v, &is_int), 0);
    assert_int_equal(sms_select_values(K(RAW_SCORE), SMS_TASK_MULTI_SOFTMAX, 3, two, 2, v, &is_int),
                     0);
    assert_int_equal(
        sms_select_values(K(PREDICTED_LABEL), SMS_TASK_MULTI_SOFTPROB, 3, two, 0, v, &is_int), 0);
    assert_int_equal(
        sms_select_values(K(PROBABILITY), SMS_TASK_MULTI_SOFTPROB, 3, two, 0, v, &is_int), 0);
    for (int k = 0; k <= SMS_KEY_COUNT; k++)
        assert_int_equal(sms_select_values((sms_key_t)k, SMS_TASK_OTHER, 0, two, 1, v, &is_int), 0);
    /* labels and keys the task does not allow read no prediction */
    check_values(K(LABELS), SMS_TASK_BINARY_LOGISTIC, 0, two, 2, 2, true, (double[]){0, 1});
    check_values(K(PREDICTED_SCORE), SMS_TASK_BINARY_LOGISTIC, 0, two, 2, 1, false,
                 (double[]){NAN});
    check_values(SMS_KEY_COUNT, SMS_TASK_REGRESSION, 0, two, 1, 1, false, (double[]){NAN});

    assert_int_equal(sms_select_max_values(SMS_TASK_BINARY_LOGISTIC, 0, 1), 2);
    assert_int_equal(sms_select_max_values(SMS_TASK_MULTI_SOFTPROB, 3, 3), 3);
    assert_int_equal(sms_select_max_values(SMS_TASK_MULTI_SOFTMAX, 7, 1), 7);
    assert_int_equal(sms_select_max_values(SMS_TASK_REGRESSION, 9, 4), 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names),
        cmocka_unit_test(parse_as_aws),
        cmocka_unit_test(parse_limits),
        cmocka_unit_test(tasks),
        cmocka_unit_test(corpus_configurations),
        cmocka_unit_test(check_beyond_corpus),
        cmocka_unit_test(corpus_values),
        cmocka_unit_test(source_values),
        cmocka_unit_test(edges),
        cmocka_unit_test(shapes_aws_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
