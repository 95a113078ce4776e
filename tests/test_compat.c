/* Tests of the strict compatibility checks: what each committed fixture
 * declares, that *.serve.* pass and *.refuse.* are refused with the right
 * check and an actionable fix, edited models for every rule, and hostile
 * bytes for the binary header reader. libxgboost confirms the fixtures mean
 * what their names say (and that it loads the 3.1 trap without a word). */
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xgboost/c_api.h>

#include "smserve/compat.h"
#include "smserve/sniff.h"

#ifndef SMS_SOURCE_DIR
#error "SMS_SOURCE_DIR must name the repository root"
#endif
#define COMPAT(name) SMS_SOURCE_DIR "/tests/fixtures/compat/" name
#define AWS(name)    SMS_SOURCE_DIR "/tests/fixtures/aws/" name

static const sms_version_t v174 = {1, 7, 4};

typedef struct model_file {
    unsigned char *bytes;
    size_t len;
} model_file_t;

static model_file_t load(const char *path)
{
    model_file_t m;
    m.bytes = (unsigned char *)tu_read_file(path, &m.len);
    if (!m.bytes)
        fail_msg("cannot read %s", path);
    return m;
}

/* Sniffs and reads from a guarded copy. */
static int read_bytes(const void *bytes, size_t len, sms_model_info_t *info, sms_diag_t *diag)
{
    void *g = tu_guarded_copy(bytes, len);
    int rc = sms_compat_read(sms_sniff(g, len), g, len, info, diag);
    tu_guarded_free(g, len);
    return rc;
}

static int read_path(const char *path, sms_model_info_t *info, sms_diag_t *diag)
{
    model_file_t m = load(path);
    int rc = read_bytes(m.bytes, m.len, info, diag);
    free(m.bytes);
    return rc;
}

/* Reads and checks against `runtime`; returns the failed check or "" */
static const char *verdict(const char *path, sms_version_t runtime, bool allow_newer,
                           sms_diag_t *diag)
{
    sms_model_info_t info;
    if (read_path(path, &info, diag) < 0)
        return diag->check;
    if (sms_compat_check(&info, runtime, allow_newer, diag) < 0)
        return diag->check;
    return "";
}

static void assert_diag_complete(const sms_diag_t *d)
{
    assert_true(d->check[0] && d->reason[0] && d->fix[0]);
    assert_null(strchr(d->reason, '\n'));
    assert_null(strchr(d->fix, '\n'));
}

static void test_serve_fixtures(void **state)
{
    (void)state;
    const char *paths[] = {
        COMPAT("xgb174-binary-logistic.serve.json"),
        COMPAT("xgb174-binary-logistic.serve.ubj"),
        COMPAT("xgb174-reg.serve.bin"),
        COMPAT("xgb174-reg.serve.json"),
        COMPAT("xgb174-multi-softprob.serve.json"),
        COMPAT("xgb174-dart.serve.json"),
        COMPAT("xgb174-gblinear.serve.ubj"),
        AWS("legacy-binary-multiclass.serve.bin"),
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        sms_diag_t d;
        const char *check = verdict(paths[i], v174, false, &d);
        if (check[0])
            fail_msg("%s refused: %s: %s", paths[i], d.reason, d.fix);
    }
}

static void test_declared_metadata(void **state)
{
    (void)state;
    sms_model_info_t j, u, b, a;
    sms_diag_t d;
    assert_int_equal(read_path(COMPAT("xgb174-binary-logistic.serve.json"), &j, &d), 0);
    assert_int_equal(read_path(COMPAT("xgb174-binary-logistic.serve.ubj"), &u, &d), 0);
    assert_true(j.has_version);
    assert_int_equal(j.version.major, 1);
    assert_int_equal(j.version.minor, 7);
    assert_int_equal(j.version.patch, 4);
    assert_string_equal(j.booster, "gbtree");
    assert_string_equal(j.objective, "binary:logistic");
    assert_int_equal(j.num_feature, 4);
    assert_int_equal(j.num_class, 0);
    assert_int_equal(j.num_target, 1);
    assert_string_equal(j.base_score_text, "5E-1");
    assert_true(j.base_score == 0.5f);
    assert_false(j.has_categorical);
    assert_int_equal(j.num_trees, 3);
    /* JSON and UBJSON of one model declare the same */
    assert_memory_equal(&j, &u, sizeof j);

    assert_int_equal(read_path(COMPAT("xgb174-reg.serve.bin"), &b, &d), 0);
    assert_true(b.has_version);
    assert_int_equal(b.version.major, 1);
    assert_int_equal(b.version.minor, 7);
    assert_string_equal(b.booster, "gbtree");
    assert_string_equal(b.objective, "reg:squarederror");
    assert_int_equal(b.num_feature, 4);
    assert_int_equal(b.num_class, 0);
    assert_int_equal(b.num_target, 1);
    assert_true(b.base_score == 20.0f);
    assert_string_equal(b.base_score_text, "20");
    assert_int_equal(b.num_trees, 3);

    assert_int_equal(read_path(AWS("legacy-binary-multiclass.serve.bin"), &a, &d), 0);
    assert_string_equal(a.objective, "multi:softprob");
    assert_string_equal(a.booster, "gbtree");
    assert_int_equal(a.num_feature, 4);
    assert_int_equal(a.num_class, 3);
    assert_int_equal(a.num_target, 1); /* 0 in files older than the field */
    assert_true(a.base_score == 0.5f);
    assert_int_equal(a.num_trees, 60);

    assert_int_equal(read_path(COMPAT("xgb174-multi-softprob.serve.json"), &j, &d), 0);
    assert_int_equal(j.num_class, 3);
    assert_int_equal(j.num_trees, 6);
    assert_int_equal(read_path(COMPAT("xgb174-dart.serve.json"), &j, &d), 0);
    assert_string_equal(j.booster, "dart");
    assert_int_equal(j.num_trees, 2);
    assert_int_equal(read_path(COMPAT("xgb174-gblinear.serve.ubj"), &j, &d), 0);
    assert_string_equal(j.booster, "gblinear");
    assert_int_equal(j.num_trees, -1);
}

static void test_refuse_fixtures(void **state)
{
    (void)state;
    sms_diag_t d;
    assert_string_equal(verdict(COMPAT("xgb20-newer-version.refuse.json"), v174, false, &d),
                        "version");
    assert_string_equal(d.reason, "saved by XGBoost 2.0.3, newer than this runtime (1.7.4); "
                                  "XGBoost reads older models, never newer ones");
    assert_non_null(strstr(d.fix, "runtime >= 2.0"));
    assert_non_null(strstr(d.fix, "save_model(\"xgboost-model.json\")"));
    assert_diag_complete(&d);
    /* allow_newer downgrades only the version check */
    assert_string_equal(verdict(COMPAT("xgb20-newer-version.refuse.json"), v174, true, &d), "");

    assert_string_equal(verdict(COMPAT("xgb20-quantile.refuse.json"), v174, false, &d), "version");
    assert_string_equal(verdict(COMPAT("xgb20-quantile.refuse.json"), v174, true, &d), "objective");
    assert_non_null(strstr(d.reason, "reg:quantileerror"));
    assert_non_null(strstr(d.reason, "2.0"));
    assert_non_null(strstr(d.fix, ">= 2.0"));
    assert_diag_complete(&d);
    assert_string_equal(verdict(COMPAT("xgb20-quantile.refuse.ubj"), v174, true, &d), "objective");
    sms_version_t v203 = {2, 0, 3};
    assert_string_equal(verdict(COMPAT("xgb20-quantile.refuse.json"), v203, false, &d), "");
    assert_string_equal(verdict(COMPAT("xgb20-quantile.refuse.ubj"), v203, false, &d), "");

    assert_string_equal(verdict(COMPAT("xgb31-vector-base-score.refuse.json"), v174, false, &d),
                        "version");
    assert_non_null(strstr(d.reason, "3.1.0"));
    assert_string_equal(verdict(COMPAT("xgb31-vector-base-score.refuse.json"), v174, true, &d),
                        "base_score");
    assert_string_equal(d.reason,
                        "base_score \"[2E1]\" is a vector intercept as XGBoost >= 3.1 writes it; "
                        "runtime 1.7.4 would silently read it as 0.5 and shift every prediction");
    assert_diag_complete(&d);
    sms_version_t v310 = {3, 1, 0};
    assert_string_equal(verdict(COMPAT("xgb31-vector-base-score.refuse.json"), v310, false, &d),
                        "");
    sms_model_info_t info;
    assert_int_equal(read_path(COMPAT("xgb31-vector-base-score.refuse.json"), &info, &d), 0);
    assert_true(info.base_score == 20.0f); /* what the file means */

    assert_string_equal(verdict(COMPAT("truncated.refuse.json"), v174, false, &d), "parse");
    assert_non_null(strstr(d.reason, "line 1, column"));
    assert_non_null(strstr(d.reason, "byte"));
    assert_diag_complete(&d);

    assert_string_equal(verdict(COMPAT("random-bytes.refuse.bin"), v174, false, &d), "format");
    assert_non_null(strstr(d.fix, "JSON"));
    assert_non_null(strstr(d.fix, "UBJSON"));
    assert_non_null(strstr(d.fix, "binary"));

    assert_string_equal(verdict(AWS("pickled-booster.refuse.pkl"), v174, false, &d), "format");
    assert_non_null(strstr(d.reason, "pickle"));
    assert_non_null(strstr(d.fix, "booster.save_model(\"xgboost-model.json\")"));
    assert_non_null(strstr(d.fix, "get_booster().save_model("));
    assert_diag_complete(&d);
}

static void test_other_formats(void **state)
{
    (void)state;
    sms_model_info_t info;
    sms_diag_t d;
    assert_int_equal(sms_compat_read(SMS_FMT_EMPTY, NULL, 0, &info, &d), -1);
    assert_string_equal(d.check, "format");
    assert_non_null(strstr(d.reason, "empty"));
    assert_int_equal(sms_compat_read(SMS_FMT_GZIP, (const unsigned char *)"\x1f\x8b", 2, &info, &d),
                     -1);
    assert_string_equal(d.check, "format");
    assert_non_null(strstr(d.fix, "tar"));
    assert_int_equal(sms_compat_read(SMS_FMT_UNKNOWN, (const unsigned char *)"ab", 2, &info, &d),
                     -1);
    assert_string_equal(d.check, "format");
    /* diag is optional */
    assert_int_equal(sms_compat_read(SMS_FMT_UNKNOWN, (const unsigned char *)"ab", 2, &info, NULL),
                     -1);
}

/* The binary-logistic JSON fixture with `from` replaced by `to` (once). */
static char *edited(const char *from, const char *to)
{
    size_t len;
    char *s = tu_read_file(COMPAT("xgb174-binary-logistic.serve.json"), &len);
    assert_non_null(s);
    char *at = strstr(s, from);
    if (!at)
        fail_msg("'%s' not in the fixture", from);
    size_t out_len = len - strlen(from) + strlen(to);
    char *out = malloc(out_len + 1);
    assert_non_null(out);
    size_t head = (size_t)(at - s);
    memcpy(out, s, head);
    memcpy(out + head, to, strlen(to));
    strcpy(out + head + strlen(to), at + strlen(from));
    free(s);
    return out;
}

/* Check name of the refusal (or "") for an edited fixture. */
static const char *verdict_edit(const char *from, const char *to, sms_version_t runtime,
                                bool allow_newer, sms_diag_t *d, sms_model_info_t *info)
{
    char *text = edited(from, to);
    sms_model_info_t scratch;
    if (!info)
        info = &scratch;
    const char *r = "";
    if (read_bytes(text, strlen(text), info, d) < 0)
        r = d->check;
    else if (sms_compat_check(info, runtime, allow_newer, d) < 0)
        r = d->check;
    free(text);
    if (r[0])
        assert_diag_complete(d);
    return r;
}

#define OBJ "\"objective\":{\"name\":\"binary:logistic\""
/* learner_model_param's own num_feature (each tree_param has one too) */
#define NF    "\"num_class\":\"0\","
#define PARAM "\"learner_model_param\":{\"base_score\":\"5E-1\""

static void test_rules_on_edited_models(void **state)
{
    (void)state;
    sms_diag_t d;
    sms_model_info_t info;
    sms_version_t v160 = {1, 6, 2}, v330 = {3, 3, 0};

    assert_string_equal(
        verdict_edit("\"name\":\"gbtree\"", "\"name\":\"gbtreex\"", v174, false, &d, NULL),
        "booster");
    assert_non_null(strstr(d.reason, "gbtreex"));
    assert_string_equal(
        verdict_edit(OBJ, "\"objective\":{\"name\":\"reg:nonsense\"", v174, false, &d, NULL),
        "objective");
    assert_non_null(strstr(d.reason, "unknown"));
    assert_string_equal(
        verdict_edit(OBJ, "\"objective\":{\"name\":\"reg:expectileerror\"", v174, false, &d, NULL),
        "objective");
    assert_non_null(strstr(d.reason, "3.3"));
    assert_string_equal(
        verdict_edit(OBJ, "\"objective\":{\"name\":\"reg:expectileerror\"", v330, false, &d, NULL),
        "");
    assert_string_equal(
        verdict_edit(OBJ, "\"objective\":{\"name\":\"reg:absoluteerror\"", v174, false, &d, NULL),
        "");
    assert_string_equal(
        verdict_edit(OBJ, "\"objective\":{\"name\":\"reg:absoluteerror\"", v160, false, &d, NULL),
        "version"); /* 1.7 model on 1.6 */
    assert_string_equal(
        verdict_edit(OBJ, "\"objective\":{\"name\":\"reg:absoluteerror\"", v160, true, &d, NULL),
        "objective");
    assert_string_equal(verdict_edit(OBJ, "\"objective\":{\"nam\":\"x\"", v174, false, &d, NULL),
                        "objective");
    assert_string_equal(
        verdict_edit("\"num_target\":\"1\"", "\"num_target\":\"2\"", v174, false, &d, NULL),
        "num_target");
    assert_string_equal(
        verdict_edit("\"num_target\":\"1\"", "\"num_target\":\"0\"", v174, false, &d, NULL),
        "num_target");
    assert_string_equal(
        verdict_edit(NF "\"num_feature\":\"4\"", NF "\"num_feature\":\"0\"", v174, false, &d, NULL),
        "num_feature");
    assert_string_equal(verdict_edit(NF "\"num_feature\":\"4\"", NF "\"num_feature\":\"4x\"", v174,
                                     false, &d, NULL),
                        "num_feature");
    assert_string_equal(verdict_edit(NF "\"num_feature\":\"4\"", NF "\"num_feature\":\" 4\"", v174,
                                     false, &d, NULL),
                        "num_feature");
    assert_string_equal(
        verdict_edit(NF "\"num_feature\":\"4\"", NF "\"num_feature\":4", v174, false, &d, NULL),
        "num_feature");
    assert_string_equal(verdict_edit(NF "\"num_feature\":\"4\",", NF, v174, false, &d, NULL),
                        "num_feature");
    assert_string_equal(verdict_edit("\"num_class\":\"0\"",
                                     "\"num_class\":\"99999999999999999999\"", v174, false, &d,
                                     NULL),
                        "parse");
    assert_string_equal(
        verdict_edit(OBJ, "\"objective\":{\"name\":\"multi:softprob\"", v174, false, &d, NULL),
        "objective");
    assert_non_null(strstr(d.reason, "num_class"));
    assert_string_equal(
        verdict_edit("\"num_class\":\"0\"", "\"num_class\":\"3\"", v174, false, &d, &info), "");
    assert_int_equal(info.num_class, 3);

    static const char *bad_scores[] = {"\"0.5 \"",   "\"+0.5\"",  "\".5\"",   "\"5.\"",
                                       "\"nan\"",    "\"inf\"",   "\"1E40\"", "\"\"",
                                       "\"0x1p-1\"", "\"[5E-1\"", "\"[]\"",   "\"5E-1,\""};
    for (size_t i = 0; i < sizeof bad_scores / sizeof bad_scores[0]; i++) {
        char to[128];
        snprintf(to, sizeof to, "\"learner_model_param\":{\"base_score\":%s", bad_scores[i]);
        const char *r = verdict_edit(PARAM, to, v174, false, &d, NULL);
        if (strcmp(r, "base_score") != 0)
            fail_msg("base_score %s: verdict '%s'", bad_scores[i], r);
    }
    static const char *good_scores[] = {"\"0.5\"", "\"-2.5e+01\"", "\"1E0\"", "\"0\""};
    for (size_t i = 0; i < sizeof good_scores / sizeof good_scores[0]; i++) {
        char to[128];
        snprintf(to, sizeof to, "\"learner_model_param\":{\"base_score\":%s", good_scores[i]);
        assert_string_equal(verdict_edit(PARAM, to, v174, false, &d, NULL), "");
    }
    assert_string_equal(
        verdict_edit(PARAM, "\"learner_model_param\":{\"base_score\":0.5", v174, false, &d, NULL),
        "base_score");
    /* A vector intercept is fine for a runtime that reads it, when sized right. */
    sms_version_t v310 = {3, 1, 0};
    assert_string_equal(verdict_edit(PARAM, "\"learner_model_param\":{\"base_score\":\"[5E-1]\"",
                                     v310, false, &d, NULL),
                        "");
    assert_string_equal(verdict_edit(PARAM,
                                     "\"learner_model_param\":{\"base_score\":\"[5E-1,1E0]\"", v310,
                                     false, &d, NULL),
                        "base_score");

    assert_string_equal(
        verdict_edit("\"version\":[1,7,4]", "\"version\":[1,7]", v174, false, &d, NULL), "version");
    assert_string_equal(
        verdict_edit("\"version\":[1,7,4]", "\"version\":\"1.7.4\"", v174, false, &d, NULL),
        "version");
    assert_string_equal(
        verdict_edit("\"version\":[1,7,4]", "\"version\":[1,7,-4]", v174, false, &d, NULL),
        "version");
    assert_string_equal(
        verdict_edit("\"version\":[1,7,4]", "\"version\":[1,7,9]", v174, false, &d, NULL),
        ""); /* a newer patch release reads the same */
    assert_string_equal(
        verdict_edit("{\"learner\":", "{\"learner\":{},\"x\":", v174, false, &d, NULL), "format");
    assert_string_equal(
        verdict_edit("{\"learner\":", "{\"learner\":1,\"learner\":", v174, false, &d, NULL),
        "parse"); /* duplicate key */
    assert_string_equal(
        verdict_edit("\"version\":[1,7,4]}", "\"version\":[1,7,4]}x", v174, false, &d, NULL),
        "parse");

    assert_string_equal(verdict_edit("\"feature_types\":[]", "\"feature_types\":[\"q\",\"c\"]",
                                     v174, false, &d, &info),
                        "");
    assert_true(info.has_categorical);
    char *cat31 = edited("\"feature_types\":[]", "\"feature_types\":[\"c\"]");
    char *p = strstr(cat31, "\"version\":[1,7,4]");
    memcpy(p, "\"version\":[3,1,0]", 17);
    assert_int_equal(read_bytes(cat31, strlen(cat31), &info, &d), 0);
    assert_int_equal(sms_compat_check(&info, v174, true, &d), -1);
    assert_string_equal(d.check, "feature_types");
    free(cat31);
}

static void test_objective_table(void **state)
{
    (void)state;
    const char *classics[] = {
        "reg:squarederror", "reg:squaredlogerror", "reg:logistic",    "reg:pseudohubererror",
        "reg:linear",       "binary:logistic",     "binary:logitraw", "binary:hinge",
        "count:poisson",    "survival:cox",        "survival:aft",    "multi:softmax",
        "multi:softprob",   "rank:pairwise",       "rank:ndcg",       "rank:map",
        "reg:gamma",        "reg:tweedie"};
    for (size_t i = 0; i < sizeof classics / sizeof classics[0]; i++)
        assert_true(sms_compat_objective_known(classics[i], v174));
    assert_true(sms_compat_objective_known("reg:absoluteerror", v174));
    assert_false(sms_compat_objective_known("reg:absoluteerror", (sms_version_t){1, 6, 2}));
    assert_false(sms_compat_objective_known("reg:quantileerror", v174));
    assert_true(sms_compat_objective_known("reg:quantileerror", (sms_version_t){2, 0, 0}));
    assert_false(sms_compat_objective_known("reg:expectileerror", (sms_version_t){3, 2, 9}));
    assert_true(sms_compat_objective_known("reg:expectileerror", (sms_version_t){3, 3, 0}));
    assert_false(sms_compat_objective_known("reg:squarederror ", v174));
    assert_false(sms_compat_objective_known("", v174));
    assert_false(sms_compat_objective_known(NULL, v174));
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void test_binary_header_fields(void **state)
{
    (void)state;
    model_file_t m = load(COMPAT("xgb174-reg.serve.bin"));
    sms_model_info_t info;
    sms_diag_t d;
    unsigned char *c = malloc(m.len);
    assert_non_null(c);

    memcpy(c, m.bytes, m.len);
    put32(c + 4, 0x7fc00000u); /* NaN base_score */
    assert_int_equal(sms_compat_read(SMS_FMT_BINARY, c, m.len, &info, &d), 0);
    assert_true(isnan(info.base_score));
    assert_int_equal(sms_compat_check(&info, v174, false, &d), -1);
    assert_string_equal(d.check, "base_score");

    memcpy(c, m.bytes, m.len);
    put32(c + 4 + 20, 3); /* major_version 3 */
    put32(c + 4 + 24, 1);
    assert_int_equal(read_bytes(c, m.len, &info, &d), 0);
    assert_int_equal(sms_compat_check(&info, v174, false, &d), -1);
    assert_string_equal(d.check, "version");
    assert_non_null(strstr(d.reason, "3.1"));

    memcpy(c, m.bytes, m.len);
    put32(c + 4 + 20, 0); /* unknown producer: no version to compare */
    put32(c + 4 + 24, 0);
    assert_int_equal(read_bytes(c, m.len, &info, &d), 0);
    assert_false(info.has_version);
    assert_int_equal(sms_compat_check(&info, v174, false, &d), 0);

    memcpy(c, m.bytes, m.len);
    put32(c + 4 + 8, 0xffffffffu); /* num_class -1 */
    assert_int_equal(sms_compat_read(SMS_FMT_BINARY, c, m.len, &info, &d), -1);
    assert_string_equal(d.check, "parse");

    memcpy(c, m.bytes, m.len);
    put32(c + 4 + 136, 300); /* objective name length */
    assert_int_equal(sms_compat_read(SMS_FMT_BINARY, c, m.len, &info, &d), -1);
    assert_string_equal(d.check, "parse");
    put32(c + 4 + 136 + 4, 1); /* 2^32 + 300 */
    assert_int_equal(sms_compat_read(SMS_FMT_BINARY, c, m.len, &info, &d), -1);

    memcpy(c, m.bytes, m.len);
    c[4 + 136 + 8 + 3] = '\n'; /* "reg\nsquarederror" */
    assert_int_equal(sms_compat_read(SMS_FMT_BINARY, c, m.len, &info, &d), -1);
    assert_string_equal(d.check, "parse");
    free(c);
    free(m.bytes);
}

/* Every truncation and many mutations of each format: refused or read,
 * never a crash or an over-read (guard page, sanitizers). */
static void test_hostile_bytes(void **state)
{
    (void)state;
    const char *paths[] = {
        COMPAT("xgb174-reg.serve.bin"), AWS("legacy-binary-multiclass.serve.bin"),
        COMPAT("xgb174-binary-logistic.serve.json"), COMPAT("xgb174-binary-logistic.serve.ubj")};
    const sms_format_t fmts[] = {SMS_FMT_BINARY, SMS_FMT_BINARY, SMS_FMT_JSON, SMS_FMT_UBJSON};
    srand(777);
    for (size_t f = 0; f < sizeof paths / sizeof paths[0]; f++) {
        model_file_t m = load(paths[f]);
        size_t header_end = 4 + 136 + 8 + 16 + 8 + 6; /* binf, param, objective, booster */
        for (size_t n = 0; n < m.len; n++) {
            sms_model_info_t info;
            sms_diag_t d;
            void *g = tu_guarded_copy(m.bytes, n);
            int rc = sms_compat_read(fmts[f], g, n, &info, &d);
            tu_guarded_free(g, n);
            /* Text formats need the whole file; binary only its header. */
            if (fmts[f] != SMS_FMT_BINARY || n < header_end - 4) {
                if (rc == 0 && fmts[f] != SMS_FMT_BINARY)
                    fail_msg("%s: truncation to %zu bytes was read", paths[f], n);
                if (rc == 0 && n < 136)
                    fail_msg("%s: %zu bytes were read as a binary header", paths[f], n);
            }
            if (rc < 0)
                assert_diag_complete(&d);
            if (n > 4096)
                n += (size_t)rand() % 37; /* sample long files */
        }
        unsigned char *c = malloc(m.len);
        assert_non_null(c);
        for (int iter = 0; iter < 1500; iter++) {
            memcpy(c, m.bytes, m.len);
            size_t span = m.len < 300 ? m.len : 300; /* the header is where reading happens */
            for (int k = 0; k < 1 + rand() % 4; k++)
                c[(size_t)rand() % (rand() % 2 ? span : m.len)] = (unsigned char)rand();
            sms_model_info_t info;
            sms_diag_t d;
            if (read_bytes(c, m.len, &info, &d) == 0)
                sms_compat_check(&info, v174, rand() % 2, &d);
        }
        free(c);
        free(m.bytes);
    }
    unsigned char r[700];
    for (int iter = 0; iter < 3000; iter++) {
        size_t n = (size_t)rand() % sizeof r;
        for (size_t i = 0; i < n; i++)
            r[i] = (unsigned char)rand();
        sms_model_info_t info;
        sms_diag_t d;
        for (int fmt = SMS_FMT_EMPTY; fmt <= SMS_FMT_TAR; fmt++) {
            void *g = tu_guarded_copy(r, n);
            if (sms_compat_read((sms_format_t)fmt, g, n, &info, &d) < 0)
                assert_diag_complete(&d);
            tu_guarded_free(g, n);
        }
    }
}

/* The fixtures mean what their names say to libxgboost itself: each
 * *.serve.* loads, and the 3.1 model loads too, which is the trap. */
static void test_libxgboost_agrees(void **state)
{
    (void)state;
    int maj, min, pat;
    XGBoostVersion(&maj, &min, &pat);
    sms_version_t runtime = {maj, min, pat};
    const char *loads[] = {
        COMPAT("xgb174-binary-logistic.serve.json"),
        COMPAT("xgb174-binary-logistic.serve.ubj"),
        COMPAT("xgb174-reg.serve.bin"),
        COMPAT("xgb174-multi-softprob.serve.json"),
        COMPAT("xgb174-dart.serve.json"),
        COMPAT("xgb174-gblinear.serve.ubj"),
        AWS("legacy-binary-multiclass.serve.bin"),
        COMPAT("xgb31-vector-base-score.refuse.json"),
    };
    for (size_t i = 0; i < sizeof loads / sizeof loads[0]; i++) {
        model_file_t m = load(loads[i]);
        BoosterHandle b;
        assert_int_equal(XGBoosterCreate(NULL, 0, &b), 0);
        if (XGBoosterLoadModelFromBuffer(b, m.bytes, m.len) != 0)
            fail_msg("%s: %s", loads[i], XGBGetLastError());
        XGBoosterFree(b);
        free(m.bytes);
    }
    sms_diag_t d;
    assert_string_equal(verdict(COMPAT("xgb31-vector-base-score.refuse.json"), runtime, false, &d),
                        "version");
    model_file_t q = load(COMPAT("xgb20-quantile.refuse.json"));
    BoosterHandle b;
    assert_int_equal(XGBoosterCreate(NULL, 0, &b), 0);
    assert_int_not_equal(XGBoosterLoadModelFromBuffer(b, q.bytes, q.len), 0);
    XGBoosterFree(b);
    free(q.bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serve_fixtures),         cmocka_unit_test(test_declared_metadata),
        cmocka_unit_test(test_refuse_fixtures),        cmocka_unit_test(test_other_formats),
        cmocka_unit_test(test_rules_on_edited_models), cmocka_unit_test(test_objective_table),
        cmocka_unit_test(test_binary_header_fields),   cmocka_unit_test(test_hostile_bytes),
        cmocka_unit_test(test_libxgboost_agrees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
