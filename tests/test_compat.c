/* Tests of the strict compatibility checks: every committed fixture's
 * verdict on four runtimes (1.7.4, 2.0.3, 3.1.0, 3.4.1; names state the
 * outcome on 3.4.1), what the real models of each release declare, the
 * refusals with their check and an actionable fix, edited models for every
 * rule, and hostile bytes for every reader. libxgboost confirms that what
 * the checks pass loads, whichever runtime the build links (and, before
 * 3.1, that it loads the vector base_score trap without a word). */
#include "testutil.h"

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xgboost/c_api.h>

#include "smserve/compat.h"
#include "smserve/sniff.h"

#ifndef SMS_SOURCE_DIR
#error "SMS_SOURCE_DIR must name the repository root"
#endif
#define COMPAT_DIR   SMS_SOURCE_DIR "/tests/fixtures/compat/"
#define COMPAT(name) COMPAT_DIR name
#define AWS(name)    SMS_SOURCE_DIR "/tests/fixtures/aws/" name

static const sms_version_t v174 = {1, 7, 4}, v203 = {2, 0, 3}, v310 = {3, 1, 0}, v341 = {3, 4, 1};

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

static void assert_diag_complete(const sms_diag_t *d)
{
    assert_true(d->check[0] && d->reason[0] && d->fix[0]);
    assert_null(strchr(d->reason, '\n'));
    assert_null(strchr(d->fix, '\n'));
}

/* Reads and checks against `runtime`; returns the failed check or "" */
static const char *verdict(const char *path, sms_version_t runtime, bool allow_newer,
                           sms_diag_t *diag)
{
    sms_model_info_t info;
    if (read_path(path, &info, diag) < 0) {
        assert_diag_complete(diag);
        return diag->check;
    }
    if (sms_compat_check(&info, runtime, allow_newer, diag) < 0) {
        assert_diag_complete(diag);
        return diag->check;
    }
    return "";
}

/* Every fixture and its verdict on runtimes 1.7.4, 2.0.3, 3.1.0, 3.4.1 ("" =
 * served). The xgb174/xgb20/xgb31 names come from the 1.7.4 days and state
 * the outcome there; the others state it on 3.4.1. */
static const struct expectation {
    const char *name;
    const char *on[4];
} expected[] = {
    {"xgb174-binary-logistic.serve.json", {"", "", "", ""}},
    {"xgb174-binary-logistic.serve.ubj", {"", "", "", ""}},
    {"xgb174-reg.serve.bin", {"", "", "", ""}}, /* header read; 3.1+ loads it via legacy.c */
    {"xgb174-reg.serve.json", {"", "", "", ""}},
    {"xgb174-multi-softprob.serve.json", {"", "", "", ""}},
    {"xgb174-dart.serve.json", {"", "", "", ""}},
    {"xgb174-gblinear.serve.ubj", {"", "", "", ""}},
    {"xgb174-categorical.serve.json", {"", "", "", ""}},
    {"xgb174-multi-target.serve.json", {"", "", "", ""}},
    {"xgb20-newer-version.refuse.json", {"version", "", "", ""}},
    {"xgb20-quantile.refuse.json", {"version", "", "", ""}},
    {"xgb20-quantile.refuse.ubj", {"version", "", "", ""}},
    {"xgb31-vector-base-score.refuse.json", {"version", "version", "", ""}},
    {"truncated.refuse.json", {"parse", "parse", "parse", "parse"}},
    {"random-bytes.refuse.bin", {"format", "format", "format", "format"}},
    {"xgb203-reg.serve.json", {"version", "", "", ""}},
    {"xgb203-categorical.serve.json", {"version", "", "", ""}},
    {"xgb203-quantile3.serve.json", {"version", "", "", ""}},
    {"xgb214-reg.serve.json", {"version", "version", "", ""}},
    {"xgb214-categorical.serve.json", {"version", "version", "", ""}},
    {"xgb214-categorical.serve.ubj", {"version", "version", "", ""}},
    {"xgb214-categorical-truncated.refuse.json", {"parse", "parse", "parse", "parse"}},
    {"xgb214-quantile3.serve.ubj", {"version", "version", "", ""}},
    {"xgb214-vector-leaf.refuse.ubj", {"version", "version", "", "num_target"}},
    {"xgb305-reg.serve.json", {"version", "version", "", ""}},
    {"xgb305-categorical.serve.json", {"version", "version", "", ""}},
    {"xgb305-vector-leaf.refuse.json", {"version", "version", "", "num_target"}},
    {"xgb313-reg.serve.json", {"version", "version", "", ""}}, /* 3.1.3 on 3.1.0: a patch */
    {"xgb313-reg.serve.ubj", {"version", "version", "", ""}},
    {"xgb313-categorical.serve.json", {"version", "version", "", ""}},
    {"xgb313-softprob.serve.json", {"version", "version", "", ""}},
    {"xgb330-reg.serve.json", {"version", "version", "version", ""}},
    {"xgb330-categorical.serve.json", {"version", "version", "version", ""}},
    {"xgb330-expectile.serve.json", {"version", "version", "version", ""}},
    {"xgb341-reg.serve.json", {"version", "version", "version", ""}},
    {"xgb341-reg.serve.ubj", {"version", "version", "version", ""}},
    {"xgb341-categorical.serve.json", {"version", "version", "version", ""}},
    {"xgb341-categorical.serve.ubj", {"version", "version", "version", ""}},
    {"xgb341-softprob.serve.json", {"version", "version", "version", ""}},
    {"xgb341-multi-target.serve.json", {"version", "version", "version", ""}},
    {"xgb341-vector-leaf.serve.ubj", {"version", "version", "version", ""}},
    {"xgb341-quantile3.serve.json", {"version", "version", "version", ""}},
    {"xgb341-expectile.serve.json", {"version", "version", "version", ""}},
    {"xgb341-dart.serve.json", {"version", "version", "version", ""}},
    {"xgb341-gblinear.serve.ubj", {"version", "version", "version", ""}},
    {"xgb341-rank-ndcg.serve.json", {"version", "version", "version", ""}},
    {"xgb341-stored-categories.serve.json", {"version", "version", "version", ""}},
    {"xgb341-base-score-length.refuse.json", {"version", "version", "version", "base_score"}},
    {"xgb341-unknown-objective.refuse.json", {"version", "version", "version", "objective"}},
    {"xgb350-newer-version.refuse.json", {"version", "version", "version", "version"}},
    {"xgb400-newer-version.refuse.json", {"version", "version", "version", "version"}},
};
#define N_EXPECTED (sizeof expected / sizeof expected[0])

static const sms_version_t *const runtimes[4] = {&v174, &v203, &v310, &v341};

static bool version_cmp_lt(sms_version_t v, int major, int minor)
{
    return v.major < major || (v.major == major && v.minor < minor);
}

static void test_fixture_verdicts(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_EXPECTED; i++) {
        char path[512];
        snprintf(path, sizeof path, COMPAT_DIR "%s", expected[i].name);
        for (size_t r = 0; r < 4; r++) {
            sms_diag_t d;
            const char *got = verdict(path, *runtimes[r], false, &d);
            if (strcmp(got, expected[i].on[r]) != 0)
                fail_msg("%s on %d.%d.%d: '%s' (%s / %s), want '%s'", expected[i].name,
                         runtimes[r]->major, runtimes[r]->minor, runtimes[r]->patch, got, d.reason,
                         d.fix, expected[i].on[r]);
        }
        /* the name states the outcome on 3.4.1 (bar the 1.7.4-era names) */
        bool named_serve = strstr(expected[i].name, ".serve.") != NULL;
        bool old_name = strncmp(expected[i].name, "xgb20-", 6) == 0 ||
                        strncmp(expected[i].name, "xgb31-", 6) == 0;
        if (!old_name && named_serve != (expected[i].on[3][0] == '\0'))
            fail_msg("%s: the name disagrees with its verdict on 3.4.1", expected[i].name);
    }
    /* AWS's legacy binary and pickle */
    for (size_t r = 0; r < 4; r++) {
        sms_diag_t d;
        assert_string_equal(
            verdict(AWS("legacy-binary-multiclass.serve.bin"), *runtimes[r], false, &d), "");
        assert_string_equal(verdict(AWS("pickled-booster.refuse.pkl"), *runtimes[r], false, &d),
                            "format");
    }
    /* every model fixture in the directory has its row */
    DIR *dir = opendir(COMPAT_DIR);
    assert_non_null(dir);
    char missing[256] = "";
    struct dirent *e;
    while ((e = readdir(dir))) {
        char path[512];
        snprintf(path, sizeof path, COMPAT_DIR "%s", e->d_name);
        struct stat st;
        if (e->d_name[0] == '.' || strstr(e->d_name, ".py") || stat(path, &st) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        size_t i = 0;
        while (i < N_EXPECTED && strcmp(expected[i].name, e->d_name) != 0)
            i++;
        if (i == N_EXPECTED)
            snprintf(missing, sizeof missing, "%s", e->d_name);
    }
    closedir(dir);
    if (missing[0])
        fail_msg("fixture %s has no expected verdicts", missing);
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
    assert_false(j.base_score_vector);
    assert_int_equal(j.base_score_count, 1);
    assert_true(j.base_score_values[0] == 0.5f);
    assert_true(j.base_score == 0.5f);
    assert_false(j.has_categorical);
    assert_false(j.has_category_encoding);
    assert_false(j.vector_leaf);
    assert_int_equal(j.num_trees, 3);
    assert_int_equal(j.best_iteration, 2);
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
    assert_int_equal(b.base_score_count, 1);
    assert_true(b.base_score_values[0] == 20.0f);
    assert_string_equal(b.base_score_text, "20");
    assert_int_equal(b.num_trees, 3);
    assert_int_equal(b.best_iteration, -1);

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
    assert_int_equal(read_path(COMPAT("xgb174-categorical.serve.json"), &j, &d), 0);
    assert_true(j.has_categorical);
    assert_false(j.has_category_encoding);
    assert_int_equal(read_path(COMPAT("xgb174-multi-target.serve.json"), &j, &d), 0);
    assert_int_equal(j.num_target, 2);
    assert_false(j.vector_leaf);
    assert_int_equal(j.base_score_count, 1); /* one scalar for both targets */
}

/* What each release writes for base_score and the rest, as read. */
static void test_releases_declare(void **state)
{
    (void)state;
    sms_model_info_t j, u;
    sms_diag_t d;
    /* up to 3.0: one number, estimated from the labels since 2.0 */
    const char *scalars[] = {COMPAT("xgb203-reg.serve.json"), COMPAT("xgb214-reg.serve.json"),
                             COMPAT("xgb305-reg.serve.json")};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(read_path(scalars[i], &j, &d), 0);
        assert_false(j.base_score_vector);
        assert_int_equal(j.base_score_count, 1);
        assert_true(j.base_score > 19.0f && j.base_score < 21.0f);
        assert_true(j.base_score_text[0] != '[');
    }
    /* 3.1+: a vector of one value per output */
    assert_int_equal(read_path(COMPAT("xgb341-reg.serve.json"), &j, &d), 0);
    assert_int_equal(read_path(COMPAT("xgb341-reg.serve.ubj"), &u, &d), 0);
    assert_memory_equal(&j, &u, sizeof j);
    assert_int_equal(j.version.major, 3);
    assert_int_equal(j.version.minor, 4);
    assert_int_equal(j.version.patch, 1);
    assert_true(j.base_score_vector);
    assert_int_equal(j.base_score_count, 1);
    assert_string_equal(j.base_score_text, "[1.9853645E1]");
    assert_true(j.base_score == 19.853645f);
    assert_true(j.base_score_values[0] == 19.853645f);
    assert_int_equal(j.num_trees, 2);
    assert_int_equal(j.best_iteration, -1);
    assert_false(j.vector_leaf);

    assert_int_equal(read_path(COMPAT("xgb341-softprob.serve.json"), &j, &d), 0);
    assert_int_equal(j.num_class, 3);
    assert_int_equal(j.num_target, 1);
    assert_true(j.base_score_vector);
    assert_int_equal(j.base_score_count, 3);
    assert_true(isnan(j.base_score)); /* the values differ */
    assert_true(j.base_score_values[0] < 0 && j.base_score_values[1] > 0);
    assert_int_equal(read_path(COMPAT("xgb313-softprob.serve.json"), &j, &d), 0);
    assert_int_equal(j.base_score_count, 3);
    assert_true(j.base_score_values[1] == 0.40625f); /* 3.1 kept class shares */

    assert_int_equal(read_path(COMPAT("xgb341-multi-target.serve.json"), &j, &d), 0);
    assert_int_equal(j.num_target, 2);
    assert_int_equal(j.base_score_count, 2);
    assert_false(j.vector_leaf);
    assert_int_equal(read_path(COMPAT("xgb341-quantile3.serve.json"), &j, &d), 0);
    assert_string_equal(j.objective, "reg:quantileerror");
    assert_int_equal(j.num_target, 3);
    assert_int_equal(j.base_score_count, 3);
    assert_int_equal(read_path(COMPAT("xgb203-quantile3.serve.json"), &j, &d), 0);
    assert_int_equal(j.num_target, 3);
    assert_int_equal(j.base_score_count, 1);

    assert_int_equal(read_path(COMPAT("xgb341-vector-leaf.serve.ubj"), &j, &d), 0);
    assert_true(j.vector_leaf);
    assert_true(j.leaf_weights);
    assert_int_equal(j.num_target, 2);
    assert_int_equal(read_path(COMPAT("xgb214-vector-leaf.refuse.ubj"), &j, &d), 0);
    assert_true(j.vector_leaf);
    assert_false(j.leaf_weights);
    assert_int_equal(read_path(COMPAT("xgb305-vector-leaf.refuse.json"), &j, &d), 0);
    assert_true(j.vector_leaf);
    assert_false(j.leaf_weights);

    /* NaN split conditions (up to 3.0.0) read like any other model */
    assert_int_equal(read_path(COMPAT("xgb214-categorical.serve.json"), &j, &d), 0);
    assert_int_equal(read_path(COMPAT("xgb214-categorical.serve.ubj"), &u, &d), 0);
    assert_memory_equal(&j, &u, sizeof j);
    assert_true(j.has_categorical);
    assert_false(j.has_category_encoding);
    assert_int_equal(read_path(COMPAT("xgb341-categorical.serve.ubj"), &j, &d), 0);
    assert_true(j.has_categorical);
    assert_false(j.has_category_encoding); /* trained from numpy: codes only */
    assert_int_equal(read_path(COMPAT("xgb341-stored-categories.serve.json"), &j, &d), 0);
    assert_true(j.has_categorical);
    assert_true(j.has_category_encoding);

    /* 3.4 deprecates dart: booster="dart" trains and saves a gbtree with
     * dropout (its weight_drop) */
    assert_int_equal(read_path(COMPAT("xgb341-dart.serve.json"), &j, &d), 0);
    assert_string_equal(j.booster, "gbtree");
    assert_int_equal(j.num_trees, 2);
    assert_int_equal(read_path(COMPAT("xgb341-rank-ndcg.serve.json"), &j, &d), 0);
    assert_string_equal(j.objective, "rank:ndcg");
    assert_int_equal(read_path(COMPAT("xgb330-expectile.serve.json"), &j, &d), 0);
    assert_string_equal(j.objective, "reg:expectileerror");
}

static void test_refusals(void **state)
{
    (void)state;
    sms_diag_t d;
    /* newer than the runtime */
    assert_string_equal(verdict(COMPAT("xgb350-newer-version.refuse.json"), v341, false, &d),
                        "version");
    assert_string_equal(d.reason, "saved by XGBoost 3.5.0, newer than this runtime's 3.4.1; "
                                  "XGBoost reads older models, never newer ones");
    assert_non_null(strstr(d.fix, "xgboost 3.4.x"));
    assert_non_null(strstr(d.fix, "save_model(\"xgboost-model.json\")"));
    assert_non_null(strstr(d.fix, "runtime is >= 3.5"));
    assert_string_equal(verdict(COMPAT("xgb400-newer-version.refuse.json"), v341, false, &d),
                        "version");
    assert_non_null(strstr(d.reason, "saved by XGBoost 4.0.0"));
    assert_non_null(strstr(d.fix, ">= 4.0"));
    /* allow_newer downgrades only the version check */
    assert_string_equal(verdict(COMPAT("xgb350-newer-version.refuse.json"), v341, true, &d), "");
    assert_string_equal(verdict(COMPAT("xgb400-newer-version.refuse.json"), v341, true, &d), "");
    assert_string_equal(verdict(COMPAT("xgb20-newer-version.refuse.json"), v174, false, &d),
                        "version");
    assert_string_equal(d.reason, "saved by XGBoost 2.0.3, newer than this runtime's 1.7.4; "
                                  "XGBoost reads older models, never newer ones");
    assert_non_null(strstr(d.fix, ">= 2.0"));
    assert_string_equal(verdict(COMPAT("xgb20-newer-version.refuse.json"), v174, true, &d), "");
    /* a newer patch of the runtime's minor is no newer release */
    assert_string_equal(verdict(COMPAT("xgb313-reg.serve.json"), v310, false, &d), "");

    /* the objective the runtime lacks */
    assert_string_equal(verdict(COMPAT("xgb341-unknown-objective.refuse.json"), v341, false, &d),
                        "objective");
    assert_string_equal(d.reason,
                        "objective \"reg:cubicerror\" is unknown to XGBoost (runtime 3.4.1)");
    assert_non_null(strstr(d.fix, "built-in objective"));
    assert_string_equal(verdict(COMPAT("xgb20-quantile.refuse.json"), v174, true, &d), "objective");
    assert_string_equal(d.reason, "objective \"reg:quantileerror\" appeared in XGBoost 2.0; "
                                  "runtime 1.7.4 does not have it");
    assert_non_null(strstr(d.fix, ">= 2.0"));
    assert_string_equal(verdict(COMPAT("xgb20-quantile.refuse.ubj"), v174, true, &d), "objective");
    assert_string_equal(verdict(COMPAT("xgb330-expectile.serve.json"), v310, true, &d),
                        "objective");
    assert_non_null(strstr(d.reason, "3.3"));

    /* the vector base_score trap, before 3.1 */
    assert_string_equal(verdict(COMPAT("xgb31-vector-base-score.refuse.json"), v174, true, &d),
                        "base_score");
    assert_string_equal(d.reason,
                        "base_score \"[2E1]\" is a vector intercept as XGBoost >= 3.1 writes it; "
                        "runtime 1.7.4 would silently read it as 0.5 and shift every prediction");
    assert_string_equal(verdict(COMPAT("xgb341-reg.serve.json"), v203, true, &d), "base_score");
    sms_model_info_t info;
    assert_int_equal(read_path(COMPAT("xgb31-vector-base-score.refuse.json"), &info, &d), 0);
    assert_true(info.base_score == 20.0f); /* what the file means */
    /* a vector of the wrong length, on 3.1+ */
    assert_string_equal(verdict(COMPAT("xgb341-base-score-length.refuse.json"), v341, false, &d),
                        "base_score");
    assert_non_null(strstr(d.reason, "has 2 values"));
    assert_non_null(strstr(d.reason, "num_class 0 and num_target 1"));

    /* vector leaves: 2.0-3.1's crash 3.2+, 3.2+'s are misread before 3.2 */
    assert_string_equal(verdict(COMPAT("xgb305-vector-leaf.refuse.json"), v341, false, &d),
                        "num_target");
    assert_non_null(strstr(d.reason, "crashes"));
    assert_non_null(strstr(d.fix, ">= 3.2"));
    assert_non_null(strstr(d.fix, "one_output_per_tree"));
    assert_string_equal(
        verdict(COMPAT("xgb305-vector-leaf.refuse.json"), (sms_version_t){3, 2, 0}, false, &d),
        "num_target");
    assert_string_equal(
        verdict(COMPAT("xgb305-vector-leaf.refuse.json"), (sms_version_t){3, 1, 3}, false, &d), "");
    assert_string_equal(verdict(COMPAT("xgb305-vector-leaf.refuse.json"), v174, true, &d),
                        "num_target");
    assert_non_null(strstr(d.reason, "appeared in XGBoost 2.0"));
    assert_string_equal(verdict(COMPAT("xgb214-vector-leaf.refuse.ubj"), v341, false, &d),
                        "num_target");
    assert_string_equal(verdict(COMPAT("xgb341-vector-leaf.serve.ubj"), v310, true, &d),
                        "num_target");
    assert_non_null(strstr(d.reason, "leaf_weights"));
    assert_string_equal(
        verdict(COMPAT("xgb341-vector-leaf.serve.ubj"), (sms_version_t){3, 2, 0}, true, &d), "");

    /* damaged files */
    assert_string_equal(verdict(COMPAT("truncated.refuse.json"), v341, false, &d), "parse");
    assert_non_null(strstr(d.reason, "line 1, column"));
    assert_non_null(strstr(d.reason, "byte"));
    assert_string_equal(
        verdict(COMPAT("xgb214-categorical-truncated.refuse.json"), v341, false, &d), "parse");
    assert_non_null(strstr(d.reason, "line 1, column 601 (byte 600)"));
    assert_non_null(strstr(d.fix, "600 bytes"));

    assert_string_equal(verdict(COMPAT("random-bytes.refuse.bin"), v341, false, &d), "format");
    assert_non_null(strstr(d.fix, "JSON"));
    assert_non_null(strstr(d.fix, "UBJSON"));
    assert_non_null(strstr(d.fix, "binary"));

    assert_string_equal(verdict(AWS("pickled-booster.refuse.pkl"), v341, false, &d), "format");
    assert_non_null(strstr(d.reason, "pickle"));
    assert_non_null(strstr(d.fix, "booster.save_model(\"xgboost-model.json\")"));
    assert_non_null(strstr(d.fix, "get_booster().save_model("));
}

/* allow_newer on an old runtime: the next check that fails is the first
 * thing the old runtime would get wrong. */
static void test_allow_newer_next_check(void **state)
{
    (void)state;
    sms_diag_t d;
    static const struct {
        const char *name;
        const char *on_174, *on_203, *on_310;
    } cases[] = {
        {"xgb341-reg.serve.json", "base_score", "base_score", ""},
        {"xgb341-expectile.serve.json", "objective", "objective", "objective"},
        {"xgb341-quantile3.serve.json", "objective", "base_score", ""},
        {"xgb341-vector-leaf.serve.ubj", "base_score", "base_score", "num_target"},
        {"xgb341-categorical.serve.json", "base_score", "base_score", ""},
        {"xgb214-quantile3.serve.ubj", "objective", "", ""},
        {"xgb203-categorical.serve.json", "", "", ""},
        {"xgb350-newer-version.refuse.json", "base_score", "base_score", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, COMPAT_DIR "%s", cases[i].name);
        const char *want[3] = {cases[i].on_174, cases[i].on_203, cases[i].on_310};
        for (size_t r = 0; r < 3; r++) {
            const char *got = verdict(path, *runtimes[r], true, &d);
            if (strcmp(got, want[r]) != 0)
                fail_msg("%s on %d.%d (allow newer): '%s' (%s), want '%s'", cases[i].name,
                         runtimes[r]->major, runtimes[r]->minor, got, d.reason, want[r]);
        }
    }
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

/* A fixture with `from` replaced by `to` (once). */
static char *edited_from(const char *path, const char *from, const char *to)
{
    size_t len;
    char *s = tu_read_file(path, &len);
    assert_non_null(s);
    char *at = strstr(s, from);
    if (!at)
        fail_msg("'%s' not in %s", from, path);
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

static char *edited(const char *from, const char *to)
{
    return edited_from(COMPAT("xgb174-binary-logistic.serve.json"), from, to);
}

static const char *verdict_text(char *text, sms_version_t runtime, bool allow_newer, sms_diag_t *d,
                                sms_model_info_t *info)
{
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

/* Check name of the refusal (or "") for an edited 1.7.4 fixture. */
static const char *verdict_edit(const char *from, const char *to, sms_version_t runtime,
                                bool allow_newer, sms_diag_t *d, sms_model_info_t *info)
{
    return verdict_text(edited(from, to), runtime, allow_newer, d, info);
}

/* ... and for an edited 3.4.1 regression (base_score "[1.9853645E1]"). */
static const char *verdict_edit341(const char *from, const char *to, sms_diag_t *d,
                                   sms_model_info_t *info)
{
    return verdict_text(edited_from(COMPAT("xgb341-reg.serve.json"), from, to), v341, false, d,
                        info);
}

#define OBJ "\"objective\":{\"name\":\"binary:logistic\""
/* learner_model_param's own num_feature (each tree_param has one too) */
#define NF    "\"num_class\":\"0\","
#define PARAM "\"learner_model_param\":{\"base_score\":\"5E-1\""
#define BS341 "\"base_score\":\"[1.9853645E1]\""
#define NT341 "\"num_target\":\"1\""
#define NC341 "\"num_class\":\"0\""

static void test_rules_on_edited_models(void **state)
{
    (void)state;
    sms_diag_t d;
    sms_model_info_t info;
    sms_version_t v160 = {1, 6, 2}, v152 = {1, 5, 2}, v330 = {3, 3, 0};

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

    /* num_target: multi-target since 1.6, never with num_class > 1 */
    assert_string_equal(
        verdict_edit("\"num_target\":\"1\"", "\"num_target\":\"2\"", v174, false, &d, NULL), "");
    assert_string_equal(
        verdict_edit("\"num_target\":\"1\"", "\"num_target\":\"2\"", v152, true, &d, NULL),
        "num_target");
    assert_non_null(strstr(d.reason, "1.6"));
    assert_string_equal(
        verdict_edit("\"num_target\":\"1\"", "\"num_target\":\"0\"", v174, false, &d, NULL),
        "num_target");
    assert_string_equal(verdict_edit341(NT341, "\"num_target\":\"2\"", &d, &info), "");
    assert_int_equal(info.num_target, 2);
    char *both = edited_from(COMPAT("xgb341-softprob.serve.json"), NT341, "\"num_target\":\"3\"");
    assert_string_equal(verdict_text(both, v341, false, &d, NULL), "num_target");
    assert_non_null(strstr(d.reason, "both"));

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
    assert_string_equal(verdict_edit("\"num_class\":\"0\",", "", v174, false, &d, NULL), "format");
    assert_non_null(strstr(d.reason, "num_class"));
    assert_string_equal(
        verdict_edit(OBJ, "\"objective\":{\"name\":\"multi:softprob\"", v174, false, &d, NULL),
        "objective");
    assert_non_null(strstr(d.reason, "num_class"));
    assert_string_equal(
        verdict_edit("\"num_class\":\"0\"", "\"num_class\":\"3\"", v174, false, &d, &info), "");
    assert_int_equal(info.num_class, 3);

    /* attributes: required by every release; best_iteration read */
    assert_string_equal(verdict_edit("\"attributes\":{\"best_iteration\":\"2\","
                                     "\"best_ntree_limit\":\"3\"},",
                                     "", v174, false, &d, NULL),
                        "format");
    assert_non_null(strstr(d.reason, "attributes"));
    assert_string_equal(verdict_edit341("\"attributes\":{}",
                                        "\"attributes\":{\"best_iteration\":"
                                        "\"1\",\"best_score\":\"0.5\"}",
                                        &d, &info),
                        "");
    assert_int_equal(info.best_iteration, 1);

    /* base_score on a runtime before 3.1: one plain number */
    static const char *bad_scores[] = {
        "\"0.5 \"", "\"+0.5\"",   "\".5\"",    "\"5.\"", "\"nan\"",   "\"inf\"", "\"1E40\"",
        "\"\"",     "\"0x1p-1\"", "\"[5E-1\"", "\"[]\"", "\"5E-1,\"", "\"NaN\"", "\"[5E-1]\""};
    for (size_t i = 0; i < sizeof bad_scores / sizeof bad_scores[0]; i++) {
        char to[128];
        snprintf(to, sizeof to, "\"learner_model_param\":{\"base_score\":%s", bad_scores[i]);
        const char *r = verdict_edit(PARAM, to, v174, false, &d, NULL);
        if (strcmp(r, "base_score") != 0)
            fail_msg("base_score %s: verdict '%s'", bad_scores[i], r);
    }
    static const char *good_scores[] = {"\"0.5\"", "\"-2.5e+01\"", "\"1E0\"", "\"0\"",
                                        "\"0.500000\""};
    for (size_t i = 0; i < sizeof good_scores / sizeof good_scores[0]; i++) {
        char to[128];
        snprintf(to, sizeof to, "\"learner_model_param\":{\"base_score\":%s", good_scores[i]);
        assert_string_equal(verdict_edit(PARAM, to, v174, false, &d, NULL), "");
        assert_string_equal(verdict_edit(PARAM, to, v341, false, &d, NULL), "");
    }
    assert_string_equal(
        verdict_edit(PARAM, "\"learner_model_param\":{\"base_score\":0.5", v174, false, &d, NULL),
        "base_score");
    /* absent: every release fails to load it */
    assert_string_equal(verdict_edit(PARAM ",", "\"learner_model_param\":{", v341, false, &d, NULL),
                        "base_score");
    assert_non_null(strstr(d.reason, "no base_score"));

    /* base_score on 3.1+: a number or a list as long as the outputs */
    static const struct {
        const char *text, *num_target, *want;
    } vectors[] = {
        {"[5E-1]", "1", ""},
        {"[20]", "1", ""},
        {"[ 5E-1 ]", "1", ""},
        {"2E1", "1", ""},
        {"2E1", "3", ""},
        {"[2E1]", "3", ""},
        {"[5E-1,1E0]", "2", ""},
        {"[5E-1, 1E0, -2.5E0]", "3", ""},
        {"[5E-1,1E0]", "1", "base_score"},
        {"[5E-1,1E0]", "3", "base_score"},
        {"[5E-1 1E0]", "2", "base_score"},
        {"[5E-1,]", "1", "base_score"},
        {"[,5E-1]", "1", "base_score"},
        {"[5E-1]x", "1", "base_score"},
        {"[5E-1]]", "1", "base_score"},
        {"(5E-1)", "1", "base_score"},
        {"[NaN]", "1", "base_score"},
        {"[1E0,Infinity]", "2", "base_score"},
        {"[1E40]", "1", "base_score"},
        {"[\\\"5E-1\\\"]", "1", "base_score"},
        {"99999999999999999999", "1", "base_score"},
        {"[]", "1", "base_score"},
        {"[[5E-1]]", "1", "base_score"},
    };
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        char text[1024];
        snprintf(text, sizeof text, "\"base_score\":\"%s\"", vectors[i].text);
        char nt[64];
        snprintf(nt, sizeof nt, "\"num_target\":\"%s\"", vectors[i].num_target);
        char *once = edited_from(COMPAT("xgb341-reg.serve.json"), BS341, text);
        char *at = strstr(once, NT341);
        assert_non_null(at);
        memcpy(at, nt, strlen(nt)); /* same length */
        const char *r = verdict_text(once, v341, false, &d, &info);
        if (strcmp(r, vectors[i].want) != 0)
            fail_msg("base_score %s, num_target %s: '%s' (%s), want '%s'", vectors[i].text,
                     vectors[i].num_target, r, d.reason, vectors[i].want);
    }
    /* a multi-class intercept: one value per class */
    char *mc = edited_from(COMPAT("xgb341-softprob.serve.json"), "\"base_score\":\"[",
                           "\"base_score\":\"[1E0,");
    assert_string_equal(verdict_text(mc, v341, false, &d, NULL), "base_score");
    /* a long vector is counted, its first values kept */
    char big[2048] = "\"base_score\":\"[";
    for (int i = 0; i < 40; i++)
        snprintf(big + strlen(big), sizeof big - strlen(big), "%s%dE-1", i ? "," : "", i % 7);
    strcat(big, "]\"");
    char *bigm = edited_from(COMPAT("xgb341-reg.serve.json"), BS341, big);
    char *at = strstr(bigm, NT341);
    memcpy(at, "\"num_target\":\"9\"", strlen(NT341));
    assert_string_equal(verdict_text(bigm, v341, false, &d, &info), "base_score");
    assert_int_equal(info.base_score_count, 40);
    assert_true(info.base_score_values[SMS_BASE_SCORE_MAX - 1] ==
                (float)((SMS_BASE_SCORE_MAX - 1) % 7) / 10.0f);
    assert_int_equal(strlen(info.base_score_text), sizeof info.base_score_text - 1);

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
    assert_string_equal(verdict_edit341("\"version\":[3,4,1]", "\"version\":[3,4,9]", &d, NULL),
                        "");
    assert_string_equal(verdict_edit341("\"version\":[3,4,1]", "\"version\":[3,5,0]", &d, NULL),
                        "version");
    assert_string_equal(verdict_edit341("\"version\":[3,4,1]", "\"version\":[4,0,0]", &d, NULL),
                        "version");
    assert_string_equal(verdict_edit341("\"version\":[3,4,1]", "\"version\":[1,0,0]", &d, NULL),
                        ""); /* 3.4.1 still reads JSON from before 1.6, with a warning */
    assert_string_equal(
        verdict_edit("{\"learner\":", "{\"learner\":{},\"x\":", v174, false, &d, NULL), "format");
    assert_string_equal(
        verdict_edit("{\"learner\":", "{\"learner\":1,\"learner\":", v174, false, &d, NULL),
        "parse"); /* duplicate key */
    assert_string_equal(
        verdict_edit("\"version\":[1,7,4]}", "\"version\":[1,7,4]}x", v174, false, &d, NULL),
        "parse");

    /* NaN / Infinity stand where numbers do; elsewhere the file is damaged */
    assert_string_equal(verdict_edit341("\"tree_info\":[0,0]",
                                        "\"tree_info\":[0,0],\"x\":[NaN,-Infinity,Infinity]", &d,
                                        NULL),
                        "");
    assert_string_equal(
        verdict_edit341("\"tree_info\":[0,0]", "\"tree_info\":[0,0],NaN:1", &d, NULL), "parse");
    assert_string_equal(
        verdict_edit341("\"tree_info\":[0,0]", "\"tree_info\":[0,0],\"x\":nan", &d, NULL), "parse");

    /* feature_names / feature_types present or absent */
    assert_string_equal(verdict_edit341("\"feature_names\":[],\"feature_types\":[],", "", &d, NULL),
                        "");
    assert_string_equal(verdict_edit341("\"feature_names\":[]",
                                        "\"feature_names\":[\"a\",\"b\",\"c\",\"d\"]", &d, NULL),
                        "");
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
    assert_int_equal(sms_compat_check(&info, v341, false, &d), 0);
    free(cat31);
}

static void test_objective_table(void **state)
{
    (void)state;
    const char *classics[] = {"reg:squarederror", "reg:squaredlogerror",
                              "reg:logistic",     "reg:linear",
                              "binary:logistic",  "binary:logitraw",
                              "binary:hinge",     "count:poisson",
                              "survival:cox",     "multi:softmax",
                              "multi:softprob",   "rank:pairwise",
                              "rank:ndcg",        "rank:map",
                              "reg:gamma",        "reg:tweedie"};
    sms_version_t v100 = {1, 0, 0}, v110 = {1, 1, 0}, v120 = {1, 2, 0};
    for (size_t i = 0; i < sizeof classics / sizeof classics[0]; i++) {
        assert_true(sms_compat_objective_known(classics[i], v100));
        assert_true(sms_compat_objective_known(classics[i], v174));
        assert_true(sms_compat_objective_known(classics[i], v341));
    }
    assert_false(sms_compat_objective_known("survival:aft", v100));
    assert_true(sms_compat_objective_known("survival:aft", v110));
    assert_false(sms_compat_objective_known("reg:pseudohubererror", v110));
    assert_true(sms_compat_objective_known("reg:pseudohubererror", v120));
    assert_true(sms_compat_objective_known("reg:absoluteerror", v174));
    assert_false(sms_compat_objective_known("reg:absoluteerror", (sms_version_t){1, 6, 2}));
    assert_false(sms_compat_objective_known("reg:quantileerror", v174));
    assert_true(sms_compat_objective_known("reg:quantileerror", (sms_version_t){2, 0, 0}));
    assert_false(sms_compat_objective_known("reg:expectileerror", (sms_version_t){3, 2, 9}));
    assert_true(sms_compat_objective_known("reg:expectileerror", (sms_version_t){3, 3, 0}));
    assert_true(sms_compat_objective_known("reg:expectileerror", v341));
    assert_true(sms_compat_objective_known("reg:expectileerror", (sms_version_t){4, 0, 0}));
    /* plugin-only and made-up names */
    assert_false(sms_compat_objective_known("multi:softprob_sycl", v341));
    assert_false(sms_compat_objective_known("reg:squarederror_oneapi", v341));
    assert_false(sms_compat_objective_known("reg:cubicerror", v341));
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
    assert_int_equal(info.base_score_count, 0);
    assert_int_equal(sms_compat_check(&info, v174, false, &d), -1);
    assert_string_equal(d.check, "base_score");
    assert_int_equal(sms_compat_check(&info, v341, false, &d), -1);
    assert_string_equal(d.check, "base_score");

    memcpy(c, m.bytes, m.len);
    put32(c + 4 + 20, 3); /* major_version 3 */
    put32(c + 4 + 24, 1);
    assert_int_equal(read_bytes(c, m.len, &info, &d), 0);
    assert_int_equal(sms_compat_check(&info, v174, false, &d), -1);
    assert_string_equal(d.check, "version");
    assert_non_null(strstr(d.reason, "3.1"));
    assert_int_equal(sms_compat_check(&info, v341, false, &d), 0);

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
    const char *paths[] = {COMPAT("xgb174-reg.serve.bin"),
                           AWS("legacy-binary-multiclass.serve.bin"),
                           COMPAT("xgb174-binary-logistic.serve.json"),
                           COMPAT("xgb174-binary-logistic.serve.ubj"),
                           COMPAT("xgb214-categorical.serve.json"),
                           COMPAT("xgb214-categorical.serve.ubj"),
                           COMPAT("xgb341-vector-leaf.serve.ubj"),
                           COMPAT("xgb341-softprob.serve.json")};
    const sms_format_t fmts[] = {SMS_FMT_BINARY, SMS_FMT_BINARY, SMS_FMT_JSON,   SMS_FMT_UBJSON,
                                 SMS_FMT_JSON,   SMS_FMT_UBJSON, SMS_FMT_UBJSON, SMS_FMT_JSON};
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
            if (read_bytes(c, m.len, &info, &d) == 0) {
                for (size_t r = 0; r < 4; r++) {
                    if (sms_compat_check(&info, *runtimes[r], rand() % 2, &d) < 0)
                        assert_diag_complete(&d);
                }
            } else {
                assert_diag_complete(&d);
            }
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

/* What the checks pass, the linked libxgboost loads; what they refuse as
 * damaged or unknown to it, it refuses too. Models the checks refuse
 * because the runtime would crash on them are never handed to it. Before
 * 3.1 it also loads the vector base_score model without a word: the trap
 * the checks exist for. Legacy binary is loaded only where the runtime
 * still reads it (< 3.1). */
static void test_libxgboost_agrees(void **state)
{
    (void)state;
    int maj, min, pat;
    XGBoostVersion(&maj, &min, &pat);
    sms_version_t runtime = {maj, min, pat};
    bool reads_binary = version_cmp_lt(runtime, 3, 1);
    for (size_t i = 0; i < N_EXPECTED; i++) {
        char path[512];
        snprintf(path, sizeof path, COMPAT_DIR "%s", expected[i].name);
        sms_diag_t d;
        const char *check = verdict(path, runtime, false, &d);
        bool binary = strstr(expected[i].name, ".bin") != NULL;
        if (binary && !reads_binary)
            continue;
        if (strcmp(check, "") != 0 && strcmp(check, "objective") != 0 &&
            strcmp(check, "parse") != 0)
            continue;
        model_file_t m = load(path);
        BoosterHandle b;
        assert_int_equal(XGBoosterCreate(NULL, 0, &b), 0);
        int rc = XGBoosterLoadModelFromBuffer(b, m.bytes, m.len);
        if (check[0] == '\0' && rc != 0)
            fail_msg("%s passes the checks on %d.%d.%d but does not load: %s", expected[i].name,
                     maj, min, pat, XGBGetLastError());
        if (check[0] != '\0' && rc == 0)
            fail_msg("%s is refused (%s) but loads on %d.%d.%d", expected[i].name, check, maj, min,
                     pat);
        XGBoosterFree(b);
        free(m.bytes);
    }
    if (reads_binary) {
        model_file_t m = load(AWS("legacy-binary-multiclass.serve.bin"));
        BoosterHandle b;
        assert_int_equal(XGBoosterCreate(NULL, 0, &b), 0);
        assert_int_equal(XGBoosterLoadModelFromBuffer(b, m.bytes, m.len), 0);
        XGBoosterFree(b);
        free(m.bytes);
    }
    if (version_cmp_lt(runtime, 3, 1)) {
        model_file_t m = load(COMPAT("xgb31-vector-base-score.refuse.json"));
        BoosterHandle b;
        assert_int_equal(XGBoosterCreate(NULL, 0, &b), 0);
        assert_int_equal(XGBoosterLoadModelFromBuffer(b, m.bytes, m.len), 0);
        XGBoosterFree(b);
        free(m.bytes);
        sms_diag_t d;
        assert_string_equal(
            verdict(COMPAT("xgb31-vector-base-score.refuse.json"), runtime, true, &d),
            "base_score");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_verdicts),       cmocka_unit_test(test_declared_metadata),
        cmocka_unit_test(test_releases_declare),       cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_allow_newer_next_check), cmocka_unit_test(test_other_formats),
        cmocka_unit_test(test_rules_on_edited_models), cmocka_unit_test(test_objective_table),
        cmocka_unit_test(test_binary_header_fields),   cmocka_unit_test(test_hostile_bytes),
        cmocka_unit_test(test_libxgboost_agrees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
