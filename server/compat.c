/* Strict compatibility checks between a model file and the XGBoost runtime.
 * libxgboost loads some models it cannot serve correctly (on a runtime
 * before 3.1 a vector base_score silently becomes 0.5; 3.2+ crashes on the
 * vector-leaf trees 2.0-3.1 wrote) and fails on others with messages nobody
 * can act on; this module reads what the file declares and refuses, with the
 * failed check and the fix, before XGBoost ever sees it. The per-release
 * facts come from XGBoost's sources (tags v1.0.0 to v3.4.1) and from loading
 * models of each release with the 3.4.1 library. */
#include "smserve/compat.h"
#include "smserve/transcode.h"
#include "smserve/ubjson.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEGACY_PARAM_BYTES 136
#define LEGACY_MAX_NAME    255

#define RESAVE_JSON "booster.save_model(\"xgboost-model.json\")"

/* Objectives and the XGBoost release that introduced them: the names
 * registered (XGBOOST_REGISTER_OBJECTIVE) under src/objective at tags v1.0.0
 * to v3.4.1, the same lists the libraries of 1.7.4, 2.0.3, 3.1.x, 3.2.0,
 * 3.3.0 and 3.4.1 print for an unknown objective. 1.0 is the oldest release
 * that writes JSON. None was removed up to 3.4.1: reg:linear is still
 * registered (deprecated, it trains reg:squarederror and saves that name);
 * rank:pairwise/ndcg/map were reimplemented in 2.0 under the same names and
 * 2.0+ loads their 1.x parameters. Plugin-only objectives (*_oneapi,
 * *_sycl) are not in the wheels' libraries and are left out. */
static const struct {
    const char *name;
    int major, minor;
} objectives[] = {
    {"reg:squarederror", 1, 0},   {"reg:squaredlogerror", 1, 0},
    {"reg:logistic", 1, 0},       {"reg:linear", 1, 0},
    {"binary:logistic", 1, 0},    {"binary:logitraw", 1, 0},
    {"binary:hinge", 1, 0},       {"count:poisson", 1, 0},
    {"survival:cox", 1, 0},       {"multi:softmax", 1, 0},
    {"multi:softprob", 1, 0},     {"rank:pairwise", 1, 0},
    {"rank:ndcg", 1, 0},          {"rank:map", 1, 0},
    {"reg:gamma", 1, 0},          {"reg:tweedie", 1, 0},
    {"survival:aft", 1, 1},       {"reg:pseudohubererror", 1, 2},
    {"reg:absoluteerror", 1, 7},  {"reg:quantileerror", 2, 0},
    {"reg:expectileerror", 3, 3},
};

static void copy_text(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

static int refuse(sms_diag_t *d, const char *check, const char *fix, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Fills the diagnosis; returns -1 so that callers can `return refuse(...)`. */
static int refuse(sms_diag_t *d, const char *check, const char *fix, const char *fmt, ...)
{
    if (d) {
        copy_text(d->check, sizeof d->check, check);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->reason, sizeof d->reason, fmt, ap);
        va_end(ap);
        copy_text(d->fix, sizeof d->fix, fix);
    }
    return -1;
}

static int version_cmp(int amaj, int amin, int bmaj, int bmin)
{
    if (amaj != bmaj)
        return amaj < bmaj ? -1 : 1;
    if (amin != bmin)
        return amin < bmin ? -1 : 1;
    return 0;
}

bool sms_compat_objective_known(const char *name, sms_version_t runtime)
{
    if (!name)
        return false;
    for (size_t i = 0; i < sizeof objectives / sizeof objectives[0]; i++) {
        if (strcmp(objectives[i].name, name) == 0)
            return version_cmp(objectives[i].major, objectives[i].minor, runtime.major,
                               runtime.minor) <= 0;
    }
    return false;
}

/* A whole string that is one decimal integer, nothing else. */
static int parse_long_strict(const char *s, long *out)
{
    const char *p = s;
    if (*p == '-')
        p++;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
    }
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

/* One number as XGBoost writes it: -?D+(.D+)?([eE][+-]?D+)?, e.g. "5E-1",
 * "2.0052715E1", "0.500000" (1.0 printed with std::to_string), "20".
 * Returns the bytes it spans, 0 when there is none or when XGBoost would
 * misread it: a value out of float range, or an integer too long for the
 * int64 that XGBoost's JSON reader accumulates integers in. */
static size_t scan_number(const char *p, const char *end, float *out)
{
    const char *q = p;
    if (q < end && *q == '-')
        q++;
    const char *digits = q;
    while (q < end && *q >= '0' && *q <= '9')
        q++;
    size_t int_digits = (size_t)(q - digits);
    if (int_digits == 0)
        return 0;
    bool integer = true;
    if (q < end && *q == '.') {
        const char *frac = ++q;
        while (q < end && *q >= '0' && *q <= '9')
            q++;
        if (q == frac)
            return 0;
        integer = false;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < end && (*q == '+' || *q == '-'))
            q++;
        const char *exp = q;
        while (q < end && *q >= '0' && *q <= '9')
            q++;
        if (q == exp)
            return 0;
        integer = false;
    }
    size_t n = (size_t)(q - p);
    char buf[64];
    if (n >= sizeof buf || (integer && int_digits > 18))
        return 0;
    memcpy(buf, p, n);
    buf[n] = '\0';
    float v = strtof(buf, NULL);
    if (!isfinite(v))
        return 0;
    *out = v;
    return n;
}

/* Reads a base_score text the way XGBoost >= 3.1 does (ParamArray: one
 * number, or a JSON array of numbers; spaces next to the brackets and
 * commas are allowed, as it drops every space, but none inside a number)
 * into info's base_score fields. Anything else leaves count 0. */
static void read_base_score(const char *s, size_t n, sms_model_info_t *info)
{
    const char *p = s, *end = s + n;
    long count = 0;
    bool same = true;
    float v, first = 0.0f;
    info->base_score_count = 0;
    info->base_score_vector = false;
    info->base_score = NAN;
    if (p < end && *p == '[') {
        for (p++;; p++) {
            while (p < end && *p == ' ')
                p++;
            size_t k = scan_number(p, end, &v);
            if (k == 0)
                return;
            p += k;
            if (count < SMS_BASE_SCORE_MAX)
                info->base_score_values[count] = v;
            if (count == 0)
                first = v;
            same = same && v == first;
            count++;
            while (p < end && *p == ' ')
                p++;
            if (p < end && *p == ']')
                break;
            if (p >= end || *p != ',')
                return;
        }
        if (p + 1 != end)
            return;
        info->base_score_vector = true;
    } else {
        if (n == 0 || scan_number(p, end, &v) != n)
            return;
        info->base_score_values[0] = first = v;
        count = 1;
    }
    info->base_score_count = count;
    if (same)
        info->base_score = first;
}

static void info_init(sms_model_info_t *info)
{
    memset(info, 0, sizeof *info);
    info->num_target = 1;
    info->num_trees = -1;
    info->best_iteration = -1;
    info->base_score = NAN;
}

/* ---- JSON and UBJSON: one tree, read the same way ---- */

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "value";
}

/* learner_model_param fields are strings holding integers ("4"). Absent
 * fields keep *out. */
static int read_param_long(const json_t *param, const char *key, const char *check, long *out,
                           sms_diag_t *diag)
{
    const json_t *v = json_object_get(param, key);
    if (!v)
        return 0;
    if (!json_is_string(v))
        return refuse(diag, check, "re-save the model with " RESAVE_JSON,
                      "learner_model_param.%s is a JSON %s; XGBoost writes a string such as \"4\"",
                      key, json_kind(v));
    if (parse_long_strict(json_string_value(v), out) < 0)
        return refuse(diag, check, "re-save the model with " RESAVE_JSON,
                      "learner_model_param.%s \"%.64s\" is not a whole number", key,
                      json_string_value(v));
    return 0;
}

static long count_trees(const json_t *model)
{
    const json_t *param = json_object_get(model, "gbtree_model_param");
    const json_t *n = json_object_get(param, "num_trees");
    long v;
    if (json_is_string(n) && parse_long_strict(json_string_value(n), &v) == 0 && v >= 0)
        return v;
    const json_t *trees = json_object_get(model, "trees");
    if (json_is_array(trees))
        return (long)json_array_size(trees);
    return -1;
}

/* What the trees of a gbtree model are: vector leaves (tree_param
 * size_leaf_vector > 1, multi_output_tree, 2.0+) and whether each of those
 * keeps its leaves in "leaf_weights" (3.2+), and whether the model stores
 * the categories of its training data frame ("cats" with a non-empty
 * "enc", 3.1+). */
static void read_trees(const json_t *model, sms_model_info_t *info)
{
    bool every_vector_leaf_has_weights = true;
    size_t i;
    const json_t *t;
    json_array_foreach(json_object_get(model, "trees"), i, t)
    {
        const json_t *size = json_object_get(json_object_get(t, "tree_param"), "size_leaf_vector");
        long n;
        if (json_is_string(size) && parse_long_strict(json_string_value(size), &n) == 0 && n > 1) {
            info->vector_leaf = true;
            if (!json_object_get(t, "leaf_weights"))
                every_vector_leaf_has_weights = false;
        }
    }
    info->leaf_weights = info->vector_leaf && every_vector_leaf_has_weights;
    const json_t *enc = json_object_get(json_object_get(model, "cats"), "enc");
    info->has_category_encoding = json_is_array(enc) && json_array_size(enc) > 0;
}

static int read_tree(const json_t *root, sms_model_info_t *info, sms_diag_t *diag)
{
    const char *not_model_fix =
        "point smserve at the file written by " RESAVE_JSON " (not a config or other JSON)";
    if (!json_is_object(root))
        return refuse(diag, "format", not_model_fix,
                      "the top level is a JSON %s, not an XGBoost model object", json_kind(root));

    const json_t *version = json_object_get(root, "version");
    if (version) {
        json_int_t parts[3] = {0, 0, 0};
        size_t n = json_is_array(version) ? json_array_size(version) : 0;
        int ok = n == 3;
        for (size_t i = 0; ok && i < n; i++) {
            const json_t *p = json_array_get(version, i);
            ok = json_is_integer(p) && json_integer_value(p) >= 0 &&
                 json_integer_value(p) <= 1000000;
            if (ok)
                parts[i] = json_integer_value(p);
        }
        if (!ok)
            return refuse(diag, "version", "re-save the model with " RESAVE_JSON,
                          "\"version\" is not [major, minor, patch] as XGBoost writes it");
        info->has_version = true;
        info->version.major = (int)parts[0];
        info->version.minor = (int)parts[1];
        info->version.patch = (int)parts[2];
    }

    const json_t *learner = json_object_get(root, "learner");
    if (!json_is_object(learner))
        return refuse(
            diag, "format", not_model_fix,
            "valid JSON but not an XGBoost model: no \"learner\" object at the top level");

    const json_t *gb = json_object_get(learner, "gradient_booster");
    const json_t *gb_name = json_object_get(gb, "name");
    if (json_is_string(gb_name))
        copy_text(info->booster, sizeof info->booster, json_string_value(gb_name));
    const json_t *model = NULL;
    if (strcmp(info->booster, "gbtree") == 0)
        model = json_object_get(gb, "model");
    else if (strcmp(info->booster, "dart") == 0)
        model = json_object_get(json_object_get(gb, "gbtree"), "model");
    if (model) {
        info->num_trees = count_trees(model);
        read_trees(model, info);
    }

    const json_t *obj_name = json_object_get(json_object_get(learner, "objective"), "name");
    if (json_is_string(obj_name))
        copy_text(info->objective, sizeof info->objective, json_string_value(obj_name));

    const json_t *param = json_object_get(learner, "learner_model_param");
    if (!json_is_object(param))
        return refuse(diag, "format", not_model_fix,
                      "no \"learner_model_param\" object in \"learner\"");
    /* Every release reads these with .at() and fails without them. */
    if (!json_object_get(param, "num_class"))
        return refuse(diag, "format", "re-save the model with " RESAVE_JSON,
                      "learner_model_param has no num_class; every XGBoost release writes it "
                      "and fails to load a model without it");
    if (!json_is_object(json_object_get(learner, "attributes")))
        return refuse(diag, "format", "re-save the model with " RESAVE_JSON,
                      "no \"attributes\" object in \"learner\"; every XGBoost release writes one "
                      "and fails to load a model without it");
    info->num_feature = -1;
    if (read_param_long(param, "num_feature", "num_feature", &info->num_feature, diag) < 0 ||
        read_param_long(param, "num_class", "parse", &info->num_class, diag) < 0 ||
        read_param_long(param, "num_target", "num_target", &info->num_target, diag) < 0)
        return -1;

    const json_t *bs = json_object_get(param, "base_score");
    if (bs && !json_is_string(bs))
        return refuse(diag, "base_score", "re-save the model with " RESAVE_JSON,
                      "learner_model_param.base_score is a JSON %s; XGBoost writes a string such "
                      "as \"5E-1\" or \"[5E-1]\"",
                      json_kind(bs));
    if (bs) {
        copy_text(info->base_score_text, sizeof info->base_score_text, json_string_value(bs));
        read_base_score(json_string_value(bs), json_string_length(bs), info);
    }

    const json_t *best = json_object_get(json_object_get(learner, "attributes"), "best_iteration");
    long best_iteration;
    if (json_is_string(best) && parse_long_strict(json_string_value(best), &best_iteration) == 0 &&
        best_iteration >= 0)
        info->best_iteration = best_iteration;

    const json_t *types = json_object_get(learner, "feature_types");
    size_t i;
    const json_t *t;
    json_array_foreach(types, i, t)
    {
        if (json_is_string(t) && strcmp(json_string_value(t), "c") == 0)
            info->has_categorical = true;
    }
    return 0;
}

/* Line and column (both from 1) of byte `at` of text. */
static void line_column(const unsigned char *text, size_t at, long *line, long *column)
{
    long l = 1;
    size_t line_start = 0;
    for (size_t i = 0; i < at; i++) {
        if (text[i] == '\n') {
            l++;
            line_start = i + 1;
        }
    }
    *line = l;
    *column = (long)(at - line_start) + 1;
}

/* Reads the UBJSON outline (see sms_ubjson_outline): what the checks need
 * of a .ubj file, or of a .json file transcoded. */
static int read_outline(const unsigned char *ubj, size_t len, sms_model_info_t *info,
                        sms_diag_t *diag)
{
    char msg[256];
    json_t *root = sms_ubjson_outline(ubj, len, msg, sizeof msg);
    if (!root) {
        char fix[384];
        snprintf(fix, sizeof fix,
                 "the file (%zu bytes) is damaged or was cut short: copy it again, or re-save "
                 "the model with booster.save_model(\"xgboost-model.ubj\")",
                 len);
        return refuse(diag, "parse", fix, "not valid UBJSON: %s", msg);
    }
    int rc = read_tree(root, info, diag);
    json_decref(root);
    return rc;
}

/* Clears what a read fills: info (or, when NULL, scratch, which it
 * returns) and diag. */
static sms_model_info_t *begin_read(sms_model_info_t *info, sms_model_info_t *scratch,
                                    sms_diag_t *diag)
{
    if (!info)
        info = scratch;
    info_init(info);
    if (diag)
        memset(diag, 0, sizeof *diag);
    return info;
}

int sms_compat_read_json(const unsigned char *bytes, size_t len, sms_model_info_t *info,
                         sms_diag_t *diag, unsigned char **ubj, size_t *ubj_len)
{
    sms_model_info_t scratch;
    info = begin_read(info, &scratch, diag);
    if (ubj) {
        *ubj = NULL;
        *ubj_len = 0;
    }
    char msg[256];
    unsigned char *out;
    size_t out_len;
    bool exact;
    if (sms_transcode_json((const char *)bytes, bytes ? len : 0, &out, &out_len, &exact, msg,
                           sizeof msg) < 0) {
        char fix[384];
        snprintf(fix, sizeof fix,
                 "the file (%zu bytes) is damaged or was cut short: copy it again, or re-save "
                 "the model with " RESAVE_JSON,
                 len);
        /* msg is "byte N: what"; say where as a person reads the file too. */
        char *what = NULL;
        unsigned long long at = strncmp(msg, "byte ", 5) == 0 ? strtoull(msg + 5, &what, 10) : 0;
        if (!what || strncmp(what, ": ", 2) != 0 || at > len)
            return refuse(diag, "parse", fix, "not valid JSON: %s", msg);
        long line, column;
        line_column(bytes, (size_t)at, &line, &column);
        return refuse(diag, "parse", fix, "not valid JSON at line %ld, column %ld (byte %llu): %s",
                      line, column, at, what + 2);
    }
    int rc = read_outline(out, out_len, info, diag);
    if (rc == 0 && ubj && exact) {
        *ubj = out;
        *ubj_len = out_len;
    } else {
        free(out);
    }
    return rc;
}

/* ---- Legacy binary ---- */

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* Reads a uint64 length and that many name bytes at *off into dst. */
static int read_name(const unsigned char *b, size_t len, size_t *off, const char *what, char *dst,
                     size_t dst_size, sms_diag_t *diag)
{
    const char *fix = "the file is damaged or not an XGBoost model: copy it again, or load it "
                      "in Python and re-save it with " RESAVE_JSON;
    if (len - *off < 8)
        return refuse(diag, "parse", fix,
                      "legacy binary model cut short at byte %zu (expected the %s name's length)",
                      len, what);
    uint64_t n = le64(b + *off);
    if (n < 1 || n > LEGACY_MAX_NAME)
        return refuse(diag, "parse", fix,
                      "legacy binary model: %s name length %llu at byte %zu is not plausible", what,
                      (unsigned long long)n, *off);
    *off += 8;
    if (len - *off < n)
        return refuse(diag, "parse", fix,
                      "legacy binary model cut short at byte %zu (the %s name needs %llu bytes)",
                      len, what, (unsigned long long)n);
    for (uint64_t i = 0; i < n; i++) {
        unsigned char c = b[*off + i];
        if (c < 0x21 || c > 0x7e)
            return refuse(diag, "parse", fix,
                          "legacy binary model: the %s name at byte %zu holds byte 0x%02x", what,
                          *off, c);
    }
    if (n >= dst_size)
        return refuse(diag, strcmp(what, "booster") == 0 ? "booster" : "objective",
                      "train the model with a built-in booster and objective",
                      "legacy binary model: %s name \"%.40s...\" (%llu bytes) is no name XGBoost "
                      "has",
                      what, (const char *)b + *off, (unsigned long long)n);
    memcpy(dst, b + *off, (size_t)n);
    dst[n] = '\0';
    *off += (size_t)n;
    return 0;
}

static int read_binary(const unsigned char *b, size_t len, sms_model_info_t *info, sms_diag_t *diag)
{
    const char *fix = "the file is damaged or not an XGBoost model: copy it again, or load it "
                      "in Python and re-save it with " RESAVE_JSON;
    size_t off = len >= 4 && memcmp(b, "binf", 4) == 0 ? 4 : 0;
    if (len - off < LEGACY_PARAM_BYTES)
        return refuse(diag, "parse", fix,
                      "legacy binary model cut short: %zu bytes, the header alone needs %zu", len,
                      off + LEGACY_PARAM_BYTES);
    const unsigned char *p = b + off;
    uint32_t bits = le32(p);
    float base_score;
    memcpy(&base_score, &bits, sizeof base_score);
    uint32_t num_feature = le32(p + 4);
    int32_t num_class = (int32_t)le32(p + 8);
    uint32_t major = le32(p + 20), minor = le32(p + 24), num_target = le32(p + 28);
    if (num_class < 0)
        return refuse(diag, "parse", fix, "legacy binary model declares num_class %d",
                      (int)num_class);
    if (major > 1000 || minor > 1000)
        return refuse(diag, "parse", fix,
                      "legacy binary model declares an implausible producer version %u.%u",
                      (unsigned)major, (unsigned)minor);
    info->base_score = base_score;
    snprintf(info->base_score_text, sizeof info->base_score_text, "%.9g", (double)base_score);
    info->base_score_values[0] = base_score;
    info->base_score_count = isfinite(base_score) ? 1 : 0;
    info->num_feature = (long)num_feature;
    info->num_class = num_class;
    info->num_target = num_target == 0 ? 1 : (long)num_target;
    if (major || minor) {
        info->has_version = true;
        info->version.major = (int)major;
        info->version.minor = (int)minor;
    }
    off += LEGACY_PARAM_BYTES;
    if (read_name(b, len, &off, "objective", info->objective, sizeof info->objective, diag) < 0 ||
        read_name(b, len, &off, "booster", info->booster, sizeof info->booster, diag) < 0)
        return -1;
    /* gbtree and dart bodies start with GBTreeModelParam, num_trees first. */
    if ((strcmp(info->booster, "gbtree") == 0 || strcmp(info->booster, "dart") == 0) &&
        len - off >= 4) {
        int32_t n = (int32_t)le32(b + off);
        if (n >= 0)
            info->num_trees = n;
    }
    return 0;
}

int sms_compat_read(sms_format_t fmt, const unsigned char *bytes, size_t len,
                    sms_model_info_t *info, sms_diag_t *diag)
{
    sms_model_info_t scratch;
    info = begin_read(info, &scratch, diag);
    if (!bytes)
        len = 0;
    const char *formats = "XGBoost JSON (save_model(\"xgboost-model.json\")), UBJSON "
                          "(save_model(\"xgboost-model.ubj\")) or the legacy binary format";
    char fix[384];
    switch (fmt) {
    case SMS_FMT_JSON:
        return sms_compat_read_json(bytes, len, info, diag, NULL, NULL);
    case SMS_FMT_UBJSON:
        return read_outline(bytes, len, info, diag);
    case SMS_FMT_BINARY:
        return read_binary(bytes, len, info, diag);
    case SMS_FMT_PICKLE:
        return refuse(diag, "format",
                      "load it in Python and call " RESAVE_JSON
                      " (for an sklearn wrapper such as XGBRegressor: "
                      "model.get_booster().save_model(\"xgboost-model.json\")), then serve that "
                      "file",
                      "a Python pickle (protocol %d): only the Python that wrote it, with the same "
                      "xgboost and sklearn versions, can load it",
                      len >= 2 ? bytes[1] : 0);
    case SMS_FMT_EMPTY:
        snprintf(fix, sizeof fix, "upload the model again; accepted: %s", formats);
        return refuse(diag, "format", fix, "the model file is empty (0 bytes)");
    case SMS_FMT_GZIP:
    case SMS_FMT_TAR:
        return refuse(diag, "format",
                      "extract it (tar -xzf model.tar.gz) and serve the model file inside, or let "
                      "smserve extract the archive as the model directory",
                      "a %s archive, not a model file", fmt == SMS_FMT_GZIP ? "gzip" : "tar");
    case SMS_FMT_UNKNOWN:
    default:
        snprintf(fix, sizeof fix, "save the model with %s", formats);
        if (len >= 4)
            return refuse(diag, "format", fix,
                          "not an XGBoost model format smserve knows (first bytes %02x %02x %02x "
                          "%02x)",
                          bytes[0], bytes[1], bytes[2], bytes[3]);
        return refuse(diag, "format", fix, "not an XGBoost model format smserve knows (%zu bytes)",
                      len);
    }
}

static bool runtime_at_least(sms_version_t runtime, int major, int minor)
{
    return version_cmp(runtime.major, runtime.minor, major, minor) >= 0;
}

static int check_base_score(const sms_model_info_t *info, sms_version_t r, sms_diag_t *diag)
{
    char fix[384];
    const char *text = info->base_score_text;
    if (info->base_score_count < 1) {
        if (text[0] == '\0')
            return refuse(diag, "base_score", "re-save the model with " RESAVE_JSON,
                          "the model has no base_score; every XGBoost release writes one and "
                          "fails to load a model without it");
        return refuse(
            diag, "base_score",
            "retrain, or re-save the model with " RESAVE_JSON " from the xgboost that trained it",
            "base_score \"%s\" is not %s; runtime %d.%d.%d would misread it and shift "
            "every prediction",
            text,
            runtime_at_least(r, 3, 1) ? "one finite number or a list of them" : "one finite number",
            r.major, r.minor, r.patch);
    }
    if (info->base_score_vector && !runtime_at_least(r, 3, 1)) {
        snprintf(fix, sizeof fix,
                 "serve it with a runtime >= 3.1, or train and save it with xgboost %d.%d.x so "
                 "that base_score is one number",
                 r.major, r.minor);
        return refuse(diag, "base_score", fix,
                      "base_score \"%s\" is a vector intercept as XGBoost >= 3.1 writes it; "
                      "runtime %d.%d.%d would silently read it as 0.5 and shift every prediction",
                      text, r.major, r.minor, r.patch);
    }
    /* 3.1+ spreads one value over every output, else needs one per class
     * or per target, and refuses the model at its first prediction. */
    long n = info->base_score_count;
    if (n != 1 && n != info->num_class && n != info->num_target)
        return refuse(diag, "base_score",
                      "retrain, or re-save the model with " RESAVE_JSON
                      " from the xgboost that trained it",
                      "base_score \"%s\" has %ld values; a model with num_class %ld and "
                      "num_target %ld needs 1 or one per output, and runtime %d.%d.%d fails at "
                      "the first prediction",
                      text, n, info->num_class, info->num_target, r.major, r.minor, r.patch);
    return 0;
}

static int check_targets(const sms_model_info_t *info, sms_version_t r, sms_diag_t *diag)
{
    char fix[384];
    if (info->num_target < 1)
        return refuse(diag, "num_target", "re-save the model with " RESAVE_JSON,
                      "the model declares num_target %ld; XGBoost needs at least 1",
                      info->num_target);
    if (info->num_target > 1 && info->num_class > 1)
        return refuse(diag, "num_target", "retrain as either a multi-class or a multi-target model",
                      "the model declares num_target %ld and num_class %ld; XGBoost refuses a "
                      "model that is both",
                      info->num_target, info->num_class);
    if (info->num_target > 1 && !runtime_at_least(r, 1, 6)) {
        snprintf(fix, sizeof fix,
                 "serve it with a runtime >= 1.6, or train one single-target model per target "
                 "column with xgboost %d.%d.x",
                 r.major, r.minor);
        return refuse(diag, "num_target", fix,
                      "the model has num_target %ld; multi-target models appeared in XGBoost "
                      "1.6, runtime %d.%d.%d serves one target per model",
                      info->num_target, r.major, r.minor, r.patch);
    }
    if (!info->vector_leaf)
        return 0;
    if (!runtime_at_least(r, 2, 0))
        return refuse(diag, "num_target",
                      "serve it with a runtime >= 2.0, or retrain with "
                      "multi_strategy=\"one_output_per_tree\"",
                      "vector-leaf trees (multi_strategy=\"multi_output_tree\") appeared in "
                      "XGBoost 2.0; runtime %d.%d.%d does not have them",
                      r.major, r.minor, r.patch);
    if (!info->leaf_weights && runtime_at_least(r, 3, 2))
        return refuse(diag, "num_target",
                      "retrain with xgboost >= 3.2 and save again, or retrain with "
                      "multi_strategy=\"one_output_per_tree\" (any release >= 1.6)",
                      "vector-leaf trees (multi_strategy=\"multi_output_tree\") as XGBoost "
                      "2.0-3.1 saved them, without \"leaf_weights\": runtime %d.%d.%d crashes "
                      "loading them",
                      r.major, r.minor, r.patch);
    if (info->leaf_weights && !runtime_at_least(r, 3, 2))
        return refuse(diag, "num_target",
                      "serve it with a runtime >= 3.2, or retrain with "
                      "multi_strategy=\"one_output_per_tree\"",
                      "vector-leaf trees with \"leaf_weights\" as XGBoost >= 3.2 writes them; "
                      "runtime %d.%d.%d reads their leaves elsewhere and would predict wrong",
                      r.major, r.minor, r.patch);
    return 0;
}

int sms_compat_check(const sms_model_info_t *info, sms_version_t runtime, bool allow_newer,
                     sms_diag_t *diag)
{
    char fix[384];
    if (diag)
        memset(diag, 0, sizeof *diag);
    const sms_version_t *v = &info->version;
    const sms_version_t r = runtime;

    if (info->has_version && version_cmp(v->major, v->minor, r.major, r.minor) > 0 &&
        !allow_newer) {
        /* XGBoost cannot write an older format, so the model must come from
         * the runtime's release (or an older one), or the runtime must move. */
        snprintf(fix, sizeof fix,
                 "re-save it with xgboost %d.%d.x (train there, or load the model there and call "
                 "%s), or use an smserve image whose runtime is >= %d.%d",
                 r.major, r.minor, RESAVE_JSON, v->major, v->minor);
        return refuse(diag, "version", fix,
                      "saved by XGBoost %d.%d.%d, newer than this runtime's %d.%d.%d; XGBoost "
                      "reads older models, never newer ones",
                      v->major, v->minor, v->patch, r.major, r.minor, r.patch);
    }

    if (strcmp(info->booster, "gbtree") != 0 && strcmp(info->booster, "gblinear") != 0 &&
        strcmp(info->booster, "dart") != 0)
        return refuse(diag, "booster", "train the model with booster gbtree, dart or gblinear",
                      "booster \"%s\" is not one XGBoost provides (gbtree, gblinear, dart)",
                      info->booster);

    if (!sms_compat_objective_known(info->objective, r)) {
        for (size_t i = 0; i < sizeof objectives / sizeof objectives[0]; i++) {
            if (strcmp(objectives[i].name, info->objective) != 0)
                continue;
            snprintf(fix, sizeof fix,
                     "serve it with a runtime >= %d.%d, or retrain with an objective XGBoost "
                     "%d.%d.%d has",
                     objectives[i].major, objectives[i].minor, r.major, r.minor, r.patch);
            return refuse(diag, "objective", fix,
                          "objective \"%s\" appeared in XGBoost %d.%d; runtime %d.%d.%d does not "
                          "have it",
                          info->objective, objectives[i].major, objectives[i].minor, r.major,
                          r.minor, r.patch);
        }
        if (info->objective[0] == '\0')
            return refuse(diag, "objective", "re-save the model with " RESAVE_JSON,
                          "the model names no objective");
        return refuse(diag, "objective",
                      "retrain with a built-in objective (e.g. reg:squarederror, "
                      "binary:logistic, multi:softprob)",
                      "objective \"%s\" is unknown to XGBoost (runtime %d.%d.%d)", info->objective,
                      r.major, r.minor, r.patch);
    }

    if (check_base_score(info, r, diag) < 0 || check_targets(info, r, diag) < 0)
        return -1;

    if (info->num_feature < 1)
        return refuse(diag, "num_feature", "retrain on data with at least one feature column",
                      "the model declares num_feature %ld; it cannot predict anything",
                      info->num_feature);

    if (strncmp(info->objective, "multi:", 6) == 0 && info->num_class < 2)
        return refuse(diag, "objective",
                      "retrain with num_class set to the number of classes (>= 2)",
                      "objective %s with num_class %ld; a multi-class model needs num_class >= 2",
                      info->objective, info->num_class);

    /* 3.1 stores the categories in the model and re-codes inputs with them;
     * an older runtime would use the raw codes. */
    if (info->has_categorical && info->has_version && version_cmp(v->major, v->minor, 3, 1) >= 0 &&
        !runtime_at_least(r, 3, 1))
        return refuse(diag, "feature_types",
                      "serve it with a runtime >= 3.1, or retrain with numeric features",
                      "categorical features in a model saved by XGBoost %d.%d: it re-codes "
                      "categories, which runtime %d.%d.%d cannot do",
                      v->major, v->minor, r.major, r.minor, r.patch);
    return 0;
}
