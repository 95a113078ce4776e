/* Converts a model in XGBoost's legacy binary format (the `xgboost-model`
 * that SageMaker's 0.90-1.7 training containers wrote; what releases 0.72
 * to 2.0 save to a name without .json/.ubj, 2.1 to a .deprecated one) into
 * the JSON model that XGBoost 1.7 writes with save_model("x.json") after
 * loading it. XGBoost 3.1 and later no longer read the binary format but do
 * read that JSON, so the model server loads legacy models through this
 * module. */
#ifndef SMSERVE_LEGACY_H
#define SMSERVE_LEGACY_H

#include <stddef.h>
#include <stdint.h>

/* What the converter read from the file, for compatibility checks and logs.
 * The JSON carries the same facts (learner_model_param, objective, booster;
 * "version" is [major, minor, 0] of the writer, or [1, 7, 4] for files
 * before 1.0) except has_binf_header and the name the file gave the
 * objective. */
typedef struct sms_legacy_info {
    /* major_version/minor_version of the writer as the param block has them;
     * both 0 for files written before XGBoost 1.0, which did not record it. */
    unsigned major_version;
    unsigned minor_version;
    int has_binf_header;     /* the file starts with "binf" */
    char objective[48];      /* the objective name in the file, e.g. "reg:linear" */
    char objective_json[48]; /* the name written to JSON, e.g. "reg:squarederror" */
    char booster[16];        /* gbtree, dart or gblinear */
    uint32_t num_feature;
    int32_t num_class;   /* 0 unless multi-class */
    uint32_t num_target; /* 1 unless a 1.7+/2.x multi-target model */
    /* base_score as written to JSON: for files before 1.0 the stored margin
     * is turned back into a probability as XGBoost 1.0-2.x do on load. */
    float base_score;
    int32_t num_trees;         /* 0 for gblinear */
    int32_t num_parallel_tree; /* 1 for gblinear */
} sms_legacy_info_t;

/* Converts `len` bytes of a legacy binary model into JSON text (malloc'd,
 * NUL-terminated, caller frees; *json_len gets its length without the NUL
 * when json_len is not NULL). Keys, numbers and strings are as XGBoost 1.7
 * writes them: floats as the shortest decimal that reads back as the same
 * float32, and a non-finite tree value as the bare token NaN, Infinity or
 * -Infinity (not strict JSON: jansson refuses it). Never reads outside the
 * buffer, allocates at most a small multiple of len, and recurses only to
 * a small fixed depth. Returns NULL with a one-line message in errmsg:
 * "byte N: what was wrong" for a malformed or inconsistent file (truncated,
 * counts the bytes cannot hold, tree links out of range or cyclic, trailing
 * bytes), "unsupported: ..." for a well-formed model that XGBoost 1.7 or
 * 3.x would refuse or could not serve the same way (e.g. an objective 1.7
 * does not know, vector leaves, several roots, no trees, a logistic
 * base_score outside (0, 1), the base64 "bs64" format). */
char *sms_legacy_to_json(const unsigned char *bytes, size_t len, size_t *json_len, char *errmsg,
                         size_t errmsg_size);

/* sms_legacy_to_json that also fills *info (may be NULL) on success. */
char *sms_legacy_convert(const unsigned char *bytes, size_t len, size_t *json_len,
                         sms_legacy_info_t *info, char *errmsg, size_t errmsg_size);

#endif
