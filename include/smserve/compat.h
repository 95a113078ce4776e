/* Strict compatibility checks: read what an artifact declares (producer
 * version, booster, objective, num_feature, num_class, base_score, feature
 * types) and decide, before XGBoost ever sees it, whether this runtime would
 * serve it exactly. A refusal carries the failed check and the fix. */
#ifndef SMSERVE_COMPAT_H
#define SMSERVE_COMPAT_H

#include <stdbool.h>
#include <stddef.h>
#include "smserve/sniff.h"

typedef struct sms_version {
    int major, minor, patch;
} sms_version_t;

typedef struct sms_model_info {
    bool has_version; /* JSON/UBJ "version", or binary major/minor when non-zero */
    sms_version_t version;
    char booster[32]; /* gbtree | gblinear | dart | whatever the file says */
    char objective[64];
    long num_feature;
    long num_class;           /* 0 for single-output objectives */
    long num_target;          /* 1 unless the file says otherwise */
    char base_score_text[64]; /* as written in the file (binary: printed %.9g) */
    float base_score;         /* what the file means (NaN when unreadable) */
    bool has_categorical;     /* a feature_types entry "c" */
    long num_trees;           /* -1 when not known */
} sms_model_info_t;

typedef struct sms_diag {
    char check[32];   /* "format", "parse", "version", "booster", "objective",
                         "base_score", "num_feature", "num_target", "feature_types" */
    char reason[384]; /* what is wrong, one line */
    char fix[384];    /* what the user should do, one line */
} sms_diag_t;

/* Reads the declared metadata of a model file of format fmt (SMS_FMT_JSON,
 * SMS_FMT_UBJSON or SMS_FMT_BINARY) from its full bytes. For other formats
 * (pickle, unknown, empty, archives) it fails with the matching diagnosis:
 * a pickle's fix says how to re-save natively
 * (booster.save_model("xgboost-model.json")). Truncated or unparsable files
 * fail with check "parse" and the parser's position. 0 or -1 (diag filled). */
int sms_compat_read(sms_format_t fmt, const unsigned char *bytes, size_t len,
                    sms_model_info_t *info, sms_diag_t *diag);

/* Compares declared metadata with the runtime. Refuses: a producer
 * major.minor newer than the runtime (unless allow_newer, which downgrades
 * only that check); a booster other than gbtree/gblinear/dart; an objective
 * the runtime version does not have (e.g. reg:quantileerror needs 2.0); a
 * base_score text the runtime would misread (anything but one plain finite
 * decimal number, e.g. "[4.6E-1]" as 3.1 writes it); num_target > 1;
 * num_feature < 1; a multi:* objective with num_class < 2; categorical
 * features in a model from >= 3.1 (it re-codes categories) on an older
 * runtime. A vector base_score ("[2E1]") passes only when the runtime is
 * >= 3.1 and the vector has num_target elements. A newer patch release of
 * the runtime's major.minor is not "newer". 0 when servable, -1 with diag
 * filled. */
int sms_compat_check(const sms_model_info_t *info, sms_version_t runtime, bool allow_newer,
                     sms_diag_t *diag);

/* True when `name` is an objective that XGBoost `runtime` provides. */
bool sms_compat_objective_known(const char *name, sms_version_t runtime);

#endif
