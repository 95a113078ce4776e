/* Strict compatibility checks: read what an artifact declares (producer
 * version, booster, objective, num_feature, num_class, num_target,
 * base_score, tree layout, feature types) and decide, before XGBoost ever
 * sees it, whether this runtime would serve it exactly. A refusal carries
 * the failed check and the fix. */
#ifndef SMSERVE_COMPAT_H
#define SMSERVE_COMPAT_H

#include <stdbool.h>
#include <stddef.h>
#include "smserve/sniff.h"

typedef struct sms_version {
    int major, minor, patch;
} sms_version_t;

/* base_score values kept in sms_model_info_t; a longer vector (one value
 * per class or target) is counted but only its first values are kept. */
#define SMS_BASE_SCORE_MAX 16

typedef struct sms_model_info {
    bool has_version; /* JSON/UBJ "version", or binary major/minor when non-zero */
    sms_version_t version;
    char booster[32]; /* gbtree | gblinear | dart | whatever the file says */
    char objective[64];
    long num_feature;
    long num_class;           /* 0 for single-output objectives */
    long num_target;          /* 1 unless the file says otherwise */
    char base_score_text[64]; /* as written in the file, cut to 63 bytes
                                 (binary: printed %.9g; "" when absent) */
    /* base_score as XGBoost >= 3.1 reads it: one number ("5E-1", as every
     * release up to 3.0 writes it) or a vector ("[4.6E-1]", "[1E0,2E0,3E0]",
     * as 3.1+ writes it, one value per class or target). count is the
     * number of values, 0 when the text is absent or is not finite numbers;
     * values holds the first SMS_BASE_SCORE_MAX of them. */
    bool base_score_vector;
    long base_score_count;
    float base_score_values[SMS_BASE_SCORE_MAX];
    float base_score;           /* the one value the file means for every output:
                                   NaN when unreadable or when the values differ */
    bool has_categorical;       /* a feature_types entry "c" */
    bool has_category_encoding; /* 3.1+: the categories of a training data
                                   frame stored in the model ("cats") */
    bool vector_leaf;           /* multi_output_tree trees (size_leaf_vector > 1), 2.0+ */
    bool leaf_weights;          /* ... with their leaves in "leaf_weights", as 3.2+
                                   writes them (2.0-3.1 did not) */
    long num_trees;             /* -1 when not known */
    long best_iteration;        /* attributes.best_iteration, -1 when absent */
} sms_model_info_t;

typedef struct sms_diag {
    char check[32];   /* "format", "parse", "version", "booster", "objective",
                         "base_score", "num_feature", "num_target", "feature_types" */
    char reason[384]; /* what is wrong, one line */
    char fix[384];    /* what the user should do, one line */
} sms_diag_t;

/* Reads the declared metadata of a model file of format fmt (SMS_FMT_JSON,
 * SMS_FMT_UBJSON or SMS_FMT_BINARY) from its full bytes. JSON is read as
 * XGBoost writes it, with the bare tokens NaN, Infinity and -Infinity (see
 * smserve/xjson.h; it is checked as sms_xjson_parse would, and read from the
 * UBJSON sms_transcode_json makes of it); UBJSON with non-finite floats. For other formats
 * (pickle, unknown, empty, archives) it fails with the matching diagnosis:
 * a pickle's fix says how to re-save natively
 * (booster.save_model("xgboost-model.json")). Truncated or unparsable files
 * fail with check "parse" and the parser's position; a file that parses but
 * lacks what every XGBoost release writes and reads (learner,
 * learner_model_param with num_class, attributes) fails with "format".
 * 0 or -1 (diag filled). */
int sms_compat_read(sms_format_t fmt, const unsigned char *bytes, size_t len,
                    sms_model_info_t *info, sms_diag_t *diag);

/* As sms_compat_read; for a JSON model that reads, *ubj (malloc'd, the
 * caller frees it; may be NULL when not wanted) also gets the model as the
 * UBJSON XGBoost loads the same (see smserve/transcode.h: about fifteen
 * times faster than its JSON), and NULL when XGBoost would not read that the
 * same as the JSON, or for other formats. */
int sms_compat_read_json(const unsigned char *bytes, size_t len, sms_model_info_t *info,
                         sms_diag_t *diag, unsigned char **ubj, size_t *ubj_len);

/* Compares declared metadata with XGBoost `runtime`. Refuses:
 * - "version": a producer major.minor newer than the runtime, unless
 *   allow_newer, which downgrades only this check (a newer patch release of
 *   the runtime's major.minor is not newer);
 * - "booster": anything but gbtree, gblinear, dart;
 * - "objective": an objective the runtime does not have (the table in
 *   compat.c: e.g. reg:quantileerror needs 2.0, reg:expectileerror 3.3), a
 *   multi:* objective with num_class < 2;
 * - "base_score": an absent or non-finite base_score; on a runtime < 3.1
 *   anything but one plain number (it would read "[2E1]" as 0.5); on 3.1+ a
 *   vector whose length is neither 1, num_class nor num_target;
 * - "num_target": num_target < 1, or > 1 together with num_class > 1;
 *   num_target > 1 on a runtime < 1.6; vector-leaf trees on a runtime < 2.0;
 *   vector-leaf trees without "leaf_weights" (saved by 2.0-3.1) on a runtime
 *   >= 3.2, which crashes loading them; vector-leaf trees with them (3.2+)
 *   on a runtime < 3.2;
 * - "num_feature": num_feature < 1;
 * - "feature_types": categorical features in a model saved by >= 3.1 on a
 *   runtime < 3.1.
 * 0 when servable, -1 with diag filled. */
int sms_compat_check(const sms_model_info_t *info, sms_version_t runtime, bool allow_newer,
                     sms_diag_t *diag);

/* True when `name` is an objective that XGBoost `runtime` provides. */
bool sms_compat_objective_known(const char *name, sms_version_t runtime);

#endif
