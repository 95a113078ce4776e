/* Model migration: the rewrites that let the runtime serve older releases'
 * models exactly (see smserve/migrate.h). Each rewrite is keyed on what the
 * file holds, never on its name, and produces JSON that the runtime loads. */
#define _GNU_SOURCE
#include "smserve/migrate.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smserve/ubjson.h"
#include "smserve/xjson.h"

static void diag_set(sms_diag_t *d, const char *check, const char *reason, const char *fix)
{
    snprintf(d->check, sizeof d->check, "%s", check);
    snprintf(d->reason, sizeof d->reason, "%s", reason);
    snprintf(d->fix, sizeof d->fix, "%s", fix);
}

/* The gblinear model object of a parsed model, or NULL when it is not one. */
static json_t *gblinear_model(json_t *root)
{
    json_t *gb = json_object_get(json_object_get(root, "learner"), "gradient_booster");
    const char *name = json_string_value(json_object_get(gb, "name"));
    if (!name || strcmp(name, "gblinear") != 0)
        return NULL;
    json_t *model = json_object_get(gb, "model");
    return json_is_object(model) ? model : NULL;
}

/* True when every number in v is finite: jansson writes the non-finite
 * markers of smserve/xjson.h back as strings, which XGBoost would not read as
 * numbers. */
static bool all_finite(const json_t *v)
{
    const char *key;
    json_t *item;
    size_t i;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        json_object_foreach((json_t *)v, key, item)
        {
            if (!all_finite(item))
                return false;
        }
        return true;
    case JSON_ARRAY:
        json_array_foreach(v, i, item)
        {
            if (!all_finite(item))
                return false;
        }
        return true;
    case JSON_STRING: {
        const char *s = json_string_value(v);
        return strcmp(s, "NaN") && strcmp(s, "Infinity") && strcmp(s, "-Infinity");
    }
    default:
        return true;
    }
}

/* The tree as compact JSON that reads back the same (17 significant digits
 * print every double, and so every float, exactly), or NULL when it would not
 * read back, e.g. a string with a NUL that UBJSON allows and JSON refuses. */
static char *dump_exact(const json_t *root, size_t *len)
{
    char *text = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(17));
    if (!text)
        return NULL;
    *len = strlen(text);
    json_t *back = sms_xjson_parse(text, *len, NULL, 0);
    if (!back) {
        free(text);
        return NULL;
    }
    json_decref(back);
    return text;
}

/* gblinear without boosted rounds: returns 1 and the rewritten JSON when the
 * model needs it, 0 when not (or when it cannot be rewritten exactly, in which
 * case the runtime loads the original bytes and the load checks judge it). */
static int fix_gblinear_rounds(json_t *root, unsigned char **out, size_t *out_len)
{
    json_t *model = gblinear_model(root);
    if (!model)
        return 0;
    json_t *rounds = json_object_get(model, "boosted_rounds");
    if (rounds && (!json_is_integer(rounds) || json_integer_value(rounds) != 0))
        return 0;
    json_t *weights = json_object_get(model, "weights");
    if (!json_is_array(weights) || json_array_size(weights) == 0 || !all_finite(root))
        return 0;
    /* Any count above zero tells the runtime the model is trained; gblinear's
     * prediction does not read it otherwise. */
    if (json_object_set_new(model, "boosted_rounds", json_integer(1)) != 0)
        return -1;
    char *text = dump_exact(root, out_len);
    if (!text)
        return 0;
    *out = (unsigned char *)text;
    return 1;
}

/* The writer's version from a parsed model's "version", {0,0,0} when absent. */
static sms_version_t model_version(const json_t *root)
{
    const json_t *v = json_object_get(root, "version");
    sms_version_t out = {0, 0, 0};
    if (json_is_array(v) && json_array_size(v) >= 2) {
        out.major = (int)json_integer_value(json_array_get(v, 0));
        out.minor = (int)json_integer_value(json_array_get(v, 1));
        out.patch = (int)json_integer_value(json_array_get(v, 2));
    }
    return out;
}

/* binary:logitraw before 1.3.1 turned base_score into the margin with the
 * logistic link, -logf(1/p - 1); 1.3.1 and later (the runtime too) take it as
 * the margin itself. For a 1.0-1.2 model the base_score is rewritten to the
 * margin the writer used, computed the writer's way in float. A 1.3 model
 * cannot be told apart (1.3.0 did the former, 1.3.1+ the latter): refused.
 * Returns 1 rewritten, 0 nothing to do, -1 refused (diag filled). */
static int fix_logitraw_base(json_t *root, sms_version_t runtime, unsigned char **out,
                             size_t *out_len, sms_diag_t *diag)
{
    json_t *learner = json_object_get(root, "learner");
    const char *obj =
        json_string_value(json_object_get(json_object_get(learner, "objective"), "name"));
    if (!obj || strcmp(obj, "binary:logitraw") != 0)
        return 0;
    sms_version_t v = model_version(root);
    if (v.major != 1 || v.minor > 3)
        return 0;
    json_t *param = json_object_get(learner, "learner_model_param");
    const char *text = json_string_value(json_object_get(param, "base_score"));
    char *end = NULL;
    float p = text ? strtof(text, &end) : NAN;
    if (!text || end == text || *end != '\0' || !(p > 0.0f && p < 1.0f)) {
        return 0; /* anything else is for the checks to judge */
    }
    if (v.minor == 3) {
        char reason[384];
        snprintf(reason, sizeof reason,
                 "a binary:logitraw model saved by XGBoost 1.3: 1.3.0 started every margin at "
                 "logit(base_score), 1.3.1 and later (runtime %d.%d.%d too) at base_score "
                 "itself, and the file does not say which 1.3 release wrote it",
                 runtime.major, runtime.minor, runtime.patch);
        diag_set(diag, "base_score", reason,
                 "load it in the release that trained it, set base_score to the margin that "
                 "release used, and save it with XGBoost >= 1.4");
        return -1;
    }
    float margin = -logf(1.0f / p - 1.0f);
    char value[32];
    snprintf(value, sizeof value, "%.9g", (double)margin);
    if (json_object_set_new(param, "base_score", json_string(value)) != 0 || !all_finite(root))
        return 0;
    char *dumped = dump_exact(root, out_len);
    if (!dumped)
        return 0;
    *out = (unsigned char *)dumped;
    return 1;
}

int sms_migrate(sms_format_t fmt, const unsigned char *bytes, size_t len, sms_version_t runtime,
                unsigned char **out, size_t *out_len, sms_legacy_info_t *legacy, char *note,
                size_t note_size, sms_diag_t *diag)
{
    *out = NULL;
    *out_len = 0;
    if (note_size)
        note[0] = '\0';
    unsigned char *converted = NULL;
    size_t converted_len = 0;
    if (fmt == SMS_FMT_BINARY) {
        char err[300];
        sms_legacy_info_t info;
        char *json = sms_legacy_convert(bytes, len, &converted_len, &info, err, sizeof err);
        if (!json) {
            char reason[384];
            bool unsupported = strncmp(err, "unsupported", 11) == 0;
            snprintf(reason, sizeof reason, "legacy binary model: %s", err);
            diag_set(diag, unsupported ? "format" : "parse", reason,
                     unsupported ? "load it with the XGBoost release that trained it and save it "
                                   "as JSON (booster.save_model(\"xgboost-model.json\"))"
                                 : "the file is damaged or cut short: copy it again from where "
                                   "training wrote it");
            return -1;
        }
        if (legacy)
            *legacy = info;
        converted = (unsigned char *)json;
        snprintf(note, note_size, "legacy binary converted to JSON");
        bytes = converted;
        len = converted_len;
        fmt = SMS_FMT_JSON;
    }
    int rc = 0;
    const char *what = NULL;
    /* Only gblinear and 1.x logitraw models need more; the cheap tests skip
     * parsing everything else. */
    bool linear = memmem(bytes, len, "gblinear", 8) != NULL;
    bool logitraw = memmem(bytes, len, "binary:logitraw", 15) != NULL;
    if ((fmt == SMS_FMT_JSON || fmt == SMS_FMT_UBJSON) && (linear || logitraw)) {
        json_t *root = fmt == SMS_FMT_JSON ? sms_xjson_parse((const char *)bytes, len, NULL, 0)
                                           : sms_ubjson_parse(bytes, len, NULL, 0);
        if (root && linear) {
            rc = fix_gblinear_rounds(root, out, out_len);
            what = "gblinear model given boosted_rounds 1";
        }
        if (root && rc == 0 && logitraw) {
            rc = fix_logitraw_base(root, runtime, out, out_len, diag);
            what = "binary:logitraw base_score turned into the margin its 1.x writer used";
            if (rc < 0 && diag->check[0]) {
                json_decref(root);
                free(converted);
                return -1;
            }
        }
        json_decref(root);
        if (rc == 1) {
            size_t n = strlen(note);
            snprintf(note + n, note_size - n, "%s%s", n ? "; " : "", what);
            free(converted);
            return 1;
        }
        if (rc < 0) {
            free(converted);
            diag_set(diag, "io", "out of memory rewriting the model", "give the server memory");
            return -1;
        }
    }
    if (converted) {
        *out = converted;
        *out_len = converted_len;
        return 1;
    }
    return 0;
}
