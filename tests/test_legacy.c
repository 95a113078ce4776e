/* Tests of the legacy binary model converter: every committed model
 * (written by XGBoost 0.90 to 2.1) converts to exactly the JSON XGBoost
 * 1.7.4 writes for it, the generated serve fixtures convert, and hostile
 * input (every truncation, bit flips, absurd counts, broken tree links,
 * unsupported models) is refused with a one-line message, each input placed
 * right before a PROT_NONE page. */
#include "testutil.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "smserve/legacy.h"

#ifndef SMS_SOURCE_DIR
#error "SMS_SOURCE_DIR must name the repository root"
#endif
#define LEGACY_DIR SMS_SOURCE_DIR "/tests/fixtures/legacy"
#define FIXTURE(n) LEGACY_DIR "/" n

static char errmsg[256];

/* A model file in memory that tests may patch. */
typedef struct model_bytes {
    unsigned char *p;
    size_t len;
} model_bytes_t;

static model_bytes_t load(const char *path)
{
    model_bytes_t m;
    m.p = (unsigned char *)tu_read_file(path, &m.len);
    if (!m.p)
        fail_msg("cannot read %s", path);
    return m;
}

/* Converts from a guarded copy so that any over-read crashes. */
static char *convert(const unsigned char *bytes, size_t len, sms_legacy_info_t *info,
                     size_t *json_len)
{
    void *g = tu_guarded_copy(bytes, len);
    assert_true(g != NULL);
    errmsg[0] = '\0';
    char *json = sms_legacy_convert(g, len, json_len, info, errmsg, sizeof errmsg);
    tu_guarded_free(g, len);
    return json;
}

static void assert_clean_message(void)
{
    if (strncmp(errmsg, "byte ", 5) != 0 && strncmp(errmsg, "unsupported: ", 13) != 0)
        fail_msg("message does not say where or what: \"%s\"", errmsg);
    for (const char *c = errmsg; *c; c++) {
        if ((unsigned char)*c < 0x20)
            fail_msg("message is not one printable line: \"%s\"", errmsg);
    }
}

static void assert_refused_with(const unsigned char *bytes, size_t len, const char *want)
{
    char *json = convert(bytes, len, NULL, NULL);
    if (json) {
        fail_msg("converted %zu hostile bytes (wanted \"%s\")", len, want);
    }
    assert_clean_message();
    if (want && !strstr(errmsg, want))
        fail_msg("message \"%s\" does not contain \"%s\"", errmsg, want);
}

/* XGBoost writes NaN/Infinity bare; jansson reads strict JSON only. The
 * tokens become 0 for parsing (inside a string they stay a valid string). */
static json_t *parse_xgboost_json(const char *text, size_t len)
{
    char *copy = malloc(len + 1);
    assert_non_null(copy);
    memcpy(copy, text, len);
    copy[len] = '\0';
    static const char *const tokens[] = {"-Infinity", "Infinity", "NaN"};
    for (size_t t = 0; t < 3; t++) {
        size_t n = strlen(tokens[t]);
        for (char *p = strstr(copy, tokens[t]); p; p = strstr(p, tokens[t])) {
            memset(p, ' ', n);
            p[0] = '0';
        }
    }
    json_error_t jerr;
    json_t *v = json_loadb(copy, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!v)
        fail_msg("output is not JSON: %s at %d", jerr.text, jerr.position);
    free(copy);
    return v;
}

/* Names the first difference of two trees, for the failure message. */
static void describe_difference(json_t *a, json_t *b, char *path, size_t size)
{
    size_t i;
    const char *key;
    json_t *child;
    size_t used = strlen(path);
    if (json_typeof(a) != json_typeof(b) || json_equal(a, b))
        return;
    if (json_is_object(a)) {
        json_object_foreach(a, key, child)
        {
            json_t *other = json_object_get(b, key);
            if (!other || !json_equal(child, other)) {
                snprintf(path + used, size - used, "/%s", key);
                if (other)
                    describe_difference(child, other, path, size);
                return;
            }
        }
        snprintf(path + used, size - used, " (keys)");
    } else if (json_is_array(a)) {
        json_array_foreach(a, i, child)
        {
            if (!json_equal(child, json_array_get(b, i))) {
                snprintf(path + used, size - used, "[%zu]", i);
                describe_difference(child, json_array_get(b, i), path, size);
                return;
            }
        }
        snprintf(path + used, size - used, " (length)");
    }
}

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted names in dir ending with suffix; *count gets how many. */
static char **list_dir(const char *dir, const char *suffix, size_t *count)
{
    DIR *d = opendir(dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    *count = 0;
    if (!d)
        return NULL;
    struct dirent *e;
    size_t sl = strlen(suffix);
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len <= sl || strcmp(e->d_name + len - sl, suffix) != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            names = realloc(names, cap * sizeof *names);
            assert_non_null(names);
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, compare_names);
    *count = n;
    return names;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* ---- conversions equal XGBoost 1.7.4's JSON ---- */

static int check_against_reference(const char *bin_name, int *same_text)
{
    char *bin_path = path_join(LEGACY_DIR, bin_name);
    model_bytes_t m = load(bin_path);
    sms_legacy_info_t info;
    size_t json_len;
    char *json = convert(m.p, m.len, &info, &json_len);
    if (!json)
        fail_msg("%s refused: %s", bin_name, errmsg);
    assert_int_equal(strlen(json), json_len);
    json_t *got = parse_xgboost_json(json, json_len);

    /* "version": the writer's major.minor, or 1.7.4 for files before 1.0 */
    json_t *version = json_object_get(got, "version");
    assert_int_equal(json_array_size(version), 3);
    if (info.major_version) {
        assert_int_equal(json_integer_value(json_array_get(version, 0)), info.major_version);
        assert_int_equal(json_integer_value(json_array_get(version, 1)), info.minor_version);
        assert_int_equal(json_integer_value(json_array_get(version, 2)), 0);
    } else {
        assert_int_equal(json_integer_value(json_array_get(version, 0)), 1);
        assert_int_equal(json_integer_value(json_array_get(version, 1)), 7);
    }
    /* the file name says the writing release: v0.90-, v1.7.4-, ... */
    if (info.major_version) {
        char prefix[16];
        snprintf(prefix, sizeof prefix, "v%u.%u.", info.major_version, info.minor_version);
        assert_true(strncmp(bin_name, prefix, strlen(prefix)) == 0);
    } else {
        assert_true(strncmp(bin_name, "v0.", 3) == 0);
    }

    char json_name[256];
    snprintf(json_name, sizeof json_name, "%.*s.json", (int)(strlen(bin_name) - 4), bin_name);
    char *json_path = path_join(LEGACY_DIR, json_name);
    size_t ref_len;
    char *ref_text = tu_read_file(json_path, &ref_len);
    free(json_path);
    int checked = 0;
    if (ref_text) {
        json_t *want = parse_xgboost_json(ref_text, ref_len);
        json_object_del(want, "version");
        json_object_del(got, "version");
        json_t *a = tu_json_float32(got), *b = tu_json_float32(want);
        if (!json_equal(a, b)) {
            char where[256] = "";
            describe_difference(b, a, where, sizeof where);
            fail_msg("%s differs from XGBoost 1.7.4's JSON at %s", bin_name, where);
        }
        /* The texts agree too up to "version" (shortest float digits,
         * key order): counted, not required. */
        const char *cut_a = strstr(json, "\"version\"");
        const char *cut_b = strstr(ref_text, "\"version\"");
        if (cut_a && cut_b && cut_a - json == cut_b - ref_text &&
            memcmp(json, ref_text, (size_t)(cut_a - json)) == 0)
            (*same_text)++;
        json_decref(a);
        json_decref(b);
        json_decref(want);
        free(ref_text);
        checked = 1;
    } else {
        /* 1.7.4 cannot load a 2.x rank model; its saved 2.x objective is kept. */
        assert_true(info.major_version >= 2);
        json_t *obj = json_object_get(json_object_get(got, "learner"), "objective");
        assert_non_null(json_object_get(obj, "lambdarank_param"));
    }
    json_decref(got);
    free(json);
    free(m.p);
    free(bin_path);
    return checked;
}

static void test_fixtures_equal_xgboost_174(void **state)
{
    (void)state;
    size_t count;
    char **names = list_dir(LEGACY_DIR, ".bin", &count);
    assert_true(count >= 60);
    int compared = 0, same_text = 0;
    for (size_t i = 0; i < count; i++)
        compared += check_against_reference(names[i], &same_text);
    print_message("%zu legacy models converted, %d equal to XGBoost 1.7.4's JSON (%d also "
                  "byte for byte up to \"version\")\n",
                  count, compared, same_text);
    assert_true(compared >= 60);
    free_names(names, count);
}

static void test_info(void **state)
{
    (void)state;
    sms_legacy_info_t info;
    model_bytes_t m = load(FIXTURE("v0.90-gbtree-binary-logistic-base-0.3.bin"));
    char *json = convert(m.p, m.len, &info, NULL);
    assert_non_null(json);
    assert_int_equal(info.major_version, 0);
    assert_int_equal(info.has_binf_header, 0);
    assert_string_equal(info.objective, "binary:logistic");
    assert_string_equal(info.booster, "gbtree");
    /* 0.90 stored the margin logit(0.3); the probability comes back exactly */
    assert_true(info.base_score == 0.3f);
    assert_non_null(strstr(json, "\"base_score\":\"3E-1\""));
    assert_int_equal(info.num_feature, 5);
    assert_int_equal(info.num_trees, 2);
    free(json);
    free(m.p);

    m = load(FIXTURE("v1.7.4-gbtree-multi-softmax.bin"));
    json = convert(m.p, m.len, &info, NULL);
    assert_non_null(json);
    assert_int_equal(info.major_version, 1);
    assert_int_equal(info.minor_version, 7);
    assert_int_equal(info.has_binf_header, 1);
    assert_int_equal(info.num_class, 4);
    assert_int_equal(info.num_target, 1);
    assert_int_equal(info.num_trees, 8);
    free(json);
    free(m.p);

    m = load(FIXTURE("v1.7.4-gblinear-reg-linear.bin"));
    json = convert(m.p, m.len, &info, NULL);
    assert_non_null(json);
    assert_string_equal(info.objective, "reg:linear");
    assert_string_equal(info.objective_json, "reg:squarederror");
    assert_string_equal(info.booster, "gblinear");
    assert_int_equal(info.num_trees, 0);
    free(json);
    free(m.p);

    m = load(FIXTURE("v1.7.4-gbtree-forest.bin"));
    json = convert(m.p, m.len, &info, NULL);
    assert_non_null(json);
    assert_int_equal(info.num_parallel_tree, 3);
    free(json);
    free(m.p);

    /* sms_legacy_to_json is the same conversion */
    m = load(FIXTURE("v1.7.4-gbtree-multi-target.bin"));
    size_t a_len, b_len;
    char *a = sms_legacy_to_json(m.p, m.len, &a_len, errmsg, sizeof errmsg);
    char *b = convert(m.p, m.len, &info, &b_len);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a_len, b_len);
    assert_memory_equal(a, b, a_len);
    assert_int_equal(info.num_target, 2);
    free(a);
    free(b);
    free(m.p);
}

/* The models gen_fixtures.py serves: the legacy ones (however many it
 * makes) convert, with the feature count the request bodies have. */
static void test_serve_fixtures(void **state)
{
    (void)state;
    char *serve = path_join(SMS_FIXTURE_DIR, "serve");
    size_t count;
    char **cases = list_dir(serve, ".meta", &count);
    int converted = 0;
    for (size_t i = 0; i < count; i++) {
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(strlen(cases[i]) - 5), cases[i]);
        char *dir = path_join(serve, name);
        char *path = path_join(dir, "xgboost-model");
        size_t len;
        unsigned char *bytes = (unsigned char *)tu_read_file(path, &len);
        if (bytes && len > 0 && bytes[0] != '{') {
            sms_legacy_info_t info;
            char *json = convert(bytes, len, &info, NULL);
            if (!json)
                fail_msg("%s: %s", name, errmsg);
            char *meta_path = path_join(serve, cases[i]);
            size_t meta_len;
            char *meta = tu_read_file(meta_path, &meta_len);
            assert_non_null(meta);
            assert_int_equal(info.num_feature, strtoul(meta, NULL, 10));
            json_decref(parse_xgboost_json(json, strlen(json)));
            converted++;
            free(meta);
            free(meta_path);
            free(json);
        }
        free(bytes);
        free(path);
        free(dir);
    }
    free_names(cases, count);
    free(serve);
    print_message("%d legacy serve fixtures converted\n", converted);
}

/* ---- hostile input ---- */

/* Where things are in a gbtree model, found the simple way (the fixtures
 * are well formed). */
typedef struct layout {
    size_t param;     /* LearnerModelParam */
    size_t objective; /* its uint64 length */
    size_t booster;
    size_t gbm;   /* GBTreeModelParam or gblinear param */
    size_t tree0; /* first TreeParam */
    size_t attrs; /* attribute vector (gbtree without a tail) */
    int num_trees;
} layout_t;

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

static void wr64(unsigned char *p, uint64_t v)
{
    wr32(p, (uint32_t)v);
    wr32(p + 4, (uint32_t)(v >> 32));
}

static layout_t find_layout(const model_bytes_t *m)
{
    layout_t l = {0};
    l.param = memcmp(m->p, "binf", 4) == 0 ? 4 : 0;
    l.objective = l.param + 136;
    l.booster = l.objective + 8 + rd32(m->p + l.objective);
    l.gbm = l.booster + 8 + rd32(m->p + l.booster);
    l.tree0 = l.gbm + 160;
    if (memcmp(m->p + l.booster + 8, "gblinear", 8) == 0)
        return l;
    l.num_trees = (int)rd32(m->p + l.gbm);
    size_t at = l.tree0;
    for (int t = 0; t < l.num_trees; t++)
        at += 148 + 36 * (size_t)rd32(m->p + at + 4);
    l.attrs = at + 4 * (size_t)l.num_trees;
    return l;
}

/* Offset of node i's field (0 parent, 4 left, 8 right, 12 split index,
 * 16 condition) in the first tree. */
static size_t node_field(const layout_t *l, int i, int field)
{
    return l->tree0 + 148 + 20 * (size_t)i + (size_t)field;
}

/* Every prefix of a model is refused, except (before 1.0) a prefix that
 * stops exactly before the optional trailing data, which converts to the
 * same JSON as the whole file. */
static void check_truncations(const char *name)
{
    model_bytes_t m = load(name);
    size_t full_len;
    char *full = convert(m.p, m.len, NULL, &full_len);
    assert_non_null(full);
    for (size_t len = 0; len < m.len; len++) {
        size_t json_len;
        char *json = convert(m.p, len, NULL, &json_len);
        if (json) {
            if (json_len != full_len || memcmp(json, full, full_len) != 0)
                fail_msg("%s cut to %zu bytes converts to another model", name, len);
            free(json);
            continue;
        }
        assert_clean_message();
    }
    free(full);
    free(m.p);
}

static void test_every_truncation(void **state)
{
    (void)state;
    check_truncations(FIXTURE("v1.7.4-gbtree-attributes.bin"));
    check_truncations(FIXTURE("v1.7.4-dart-multi-softprob.bin"));
    check_truncations(FIXTURE("v1.7.4-gblinear-multi-softprob.bin"));
    check_truncations(FIXTURE("v0.90-gbtree-attributes.bin"));
    check_truncations(FIXTURE("v0.90-gbtree-count-poisson.bin"));
    check_truncations(FIXTURE("v2.1.4-gbtree-rank-pairwise.bin"));
}

/* Random damage: any outcome but a crash, a leak or a bad message. A
 * conversion that succeeds must give JSON. */
static void check_mutations(const char *name, uint64_t seed, int rounds)
{
    model_bytes_t m = load(name);
    unsigned char *work = malloc(m.len);
    assert_non_null(work);
    uint64_t rng = seed;
    int converted = 0;
    for (int round = 0; round < rounds; round++) {
        memcpy(work, m.p, m.len);
        int edits = 1 + (int)(tu_rand32(&rng) % 4);
        for (int e = 0; e < edits; e++) {
            size_t at = tu_rand32(&rng) % m.len;
            switch (tu_rand32(&rng) % 4) {
            case 0:
                work[at] ^= (unsigned char)(1u << (tu_rand32(&rng) % 8));
                break;
            case 1:
                work[at] = (unsigned char)tu_rand32(&rng);
                break;
            case 2: /* a large or negative 32-bit count */
                if (at + 4 <= m.len)
                    wr32(work + at, 0x7fffffffu - (tu_rand32(&rng) % 3) * 0x40000000u);
                break;
            default: /* a huge 64-bit length */
                if (at + 8 <= m.len)
                    wr64(work + at, 0xffffffffffffffffull >> (tu_rand32(&rng) % 40));
                break;
            }
        }
        size_t cut = tu_rand32(&rng) % 8 == 0 ? tu_rand32(&rng) % m.len : m.len;
        size_t json_len;
        char *json = convert(work, cut, NULL, &json_len);
        if (json) {
            json_decref(parse_xgboost_json(json, json_len));
            converted++;
            free(json);
        } else {
            assert_clean_message();
        }
    }
    print_message("%s: %d of %d damaged copies still converted\n", strrchr(name, '/') + 1,
                  converted, rounds);
    free(work);
    free(m.p);
}

static void test_random_damage(void **state)
{
    (void)state;
    check_mutations(FIXTURE("v1.7.4-gbtree-multi-softprob.bin"), 0x1234567887654321ull, 3000);
    check_mutations(FIXTURE("v1.7.4-gbtree-pruned.bin"), 0x1111, 2000);
    check_mutations(FIXTURE("v1.7.4-dart-binary-logistic.bin"), 0x2222, 2000);
    check_mutations(FIXTURE("v1.7.4-gblinear-multi-softprob.bin"), 0x3333, 2000);
    check_mutations(FIXTURE("v0.90-gbtree-attributes.bin"), 0x4444, 2000);
    check_mutations(FIXTURE("v1.3.3-gbtree-count-poisson.bin"), 0x5555, 2000);
    check_mutations(FIXTURE("v2.0.3-gbtree-rank-pairwise.bin"), 0x6666, 2000);
}

/* Counts the bytes cannot back are refused before anything is allocated
 * (under ASan a 2^60-byte malloc would abort the test). */
static void test_huge_counts(void **state)
{
    (void)state;
    model_bytes_t m = load(FIXTURE("v1.7.4-gbtree-attributes.bin"));
    layout_t l = find_layout(&m);
    unsigned char *w = malloc(m.len);
    assert_non_null(w);

    memcpy(w, m.p, m.len);
    wr64(w + l.objective, 1ull << 60);
    assert_refused_with(w, m.len, "objective name count");

    memcpy(w, m.p, m.len);
    wr64(w + l.booster, 0xffffffffffffffffull);
    assert_refused_with(w, m.len, "booster name count");

    memcpy(w, m.p, m.len);
    wr32(w + l.gbm, 0x7fffffff);
    assert_refused_with(w, m.len, "num_trees 2147483647");

    memcpy(w, m.p, m.len);
    wr32(w + l.gbm, 0x80000000u);
    assert_refused_with(w, m.len, "num_trees -2147483648");

    memcpy(w, m.p, m.len);
    wr32(w + l.tree0 + 4, 0x7fffffff);
    assert_refused_with(w, m.len, "declares 2147483647 nodes");

    memcpy(w, m.p, m.len);
    wr32(w + l.tree0 + 4, 0);
    assert_refused_with(w, m.len, "declares 0 nodes");

    memcpy(w, m.p, m.len);
    wr64(w + l.attrs, 1ull << 62);
    assert_refused_with(w, m.len, "attribute count");

    memcpy(w, m.p, m.len);
    wr64(w + l.attrs + 8, 1ull << 40); /* first key's length */
    assert_refused_with(w, m.len, "attribute key count");
    free(w);
    free(m.p);

    /* dart's weight_drop and gblinear's weights */
    m = load(FIXTURE("v1.7.4-dart-binary-logistic.bin"));
    l = find_layout(&m);
    w = malloc(m.len);
    assert_non_null(w);
    memcpy(w, m.p, m.len);
    wr64(w + l.attrs, 1ull << 61);
    assert_refused_with(w, m.len, "weight_drop count");
    memcpy(w, m.p, m.len);
    wr64(w + l.attrs, 1);
    assert_refused_with(w, m.len, "weight_drop has 1 weights for 2 trees");
    free(w);
    free(m.p);

    m = load(FIXTURE("v1.7.4-gblinear-multi-softprob.bin"));
    l = find_layout(&m);
    w = malloc(m.len);
    assert_non_null(w);
    memcpy(w, m.p, m.len);
    wr64(w + l.gbm + 136, 1ull << 62);
    assert_refused_with(w, m.len, "weights count");
    memcpy(w, m.p, m.len);
    wr64(w + l.gbm + 136, 17); /* (5 + 1) x 3 = 18 */
    assert_refused_with(w, m.len, "gblinear has 17 weights");
    memcpy(w, m.p, m.len);
    wr32(w + l.param + 4, 0xffffffffu); /* num_feature: (2^32) x 3 weights */
    assert_refused_with(w, m.len, "weights");
    free(w);
    free(m.p);
}

/* Tree links: out of range, cycles, shared children, parents that do not
 * match, deleted nodes in the tree, splits on features the model lacks. */
static void test_inconsistent_trees(void **state)
{
    (void)state;
    /* depth-2 trees: node 0 -> 1, 2; 1 -> 3, 4; 2 -> 5, 6 */
    model_bytes_t m = load(FIXTURE("v1.7.4-gbtree-binary-logistic.bin"));
    layout_t l = find_layout(&m);
    assert_int_equal(rd32(m.p + l.tree0 + 4), 7);
    assert_int_equal(rd32(m.p + node_field(&l, 1, 4)), 3);
    unsigned char *w = malloc(m.len);
    assert_non_null(w);
    struct {
        int node, field;
        uint32_t value;
        const char *want;
    } cases[] = {
        {0, 4, 7, "left child 7 is out of range"},
        {0, 8, 0xffffffffu, "right child -1 is out of range"},
        {1, 4, 0, "left child 0 is out of range"},
        {1, 8, 2, "reached twice"},  /* shares node 2 */
        {3, 4, 1, "reached twice"},  /* a leaf made to point back up: a cycle */
        {4, 0, 2, "names parent 2"}, /* parent link disagrees */
        {4, 0, 9, "parent 9 is out of range"},
        {0, 0, 3, "the root has parent 3"},
        {2, 12, 5, "splits on feature 5"}, /* the model has 5 features */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(w, m.p, m.len);
        wr32(w + node_field(&l, cases[i].node, cases[i].field), cases[i].value);
        assert_refused_with(w, m.len, cases[i].want);
    }
    /* a deleted node must not be in the tree */
    memcpy(w, m.p, m.len);
    wr32(w + node_field(&l, 2, 12), 0xffffffffu);
    wr32(w + l.tree0 + 8, 1);
    assert_refused_with(w, m.len, "tree 0 node 2 is deleted but reachable");
    /* num_deleted must count the deleted nodes */
    memcpy(w, m.p, m.len);
    wr32(w + l.tree0 + 8, 1);
    assert_refused_with(w, m.len, "declares 1 deleted nodes but has 0");
    /* trees must belong to an output group the model has */
    memcpy(w, m.p, m.len);
    wr32(w + l.attrs - 4, 1);
    assert_refused_with(w, m.len, "belongs to output group 1");
    /* several roots, vector leaves */
    memcpy(w, m.p, m.len);
    wr32(w + l.tree0, 2);
    assert_refused_with(w, m.len, "unsupported: tree 0 has 2 roots");
    memcpy(w, m.p, m.len);
    wr32(w + l.tree0 + 20, 3);
    assert_refused_with(w, m.len, "unsupported: tree 0 has leaf vectors of size 3");
    memcpy(w, m.p, m.len);
    wr32(w + l.tree0 + 20, 1); /* size 1 is what 2.x writes; a 1.7 file never does */
    assert_refused_with(w, m.len, "unsupported: tree 0 has leaf vectors of size 1");
    memcpy(w, m.p, m.len);
    wr32(w + l.gbm + 4, 0);
    assert_refused_with(w, m.len, "num_parallel_tree is 0");
    memcpy(w, m.p, m.len);
    wr32(w + l.gbm + 4, 3); /* 2 trees do not make rounds of 3 */
    assert_refused_with(w, m.len, "unsupported: 2 trees do not make whole rounds of 3");
    free(w);
    free(m.p);

    /* a deleted node that nothing reaches is fine, as pruning leaves them */
    m = load(FIXTURE("v1.7.4-gbtree-pruned.bin"));
    char *json = convert(m.p, m.len, NULL, NULL);
    assert_non_null(json);
    free(json);
    free(m.p);
}

/* Replaces the objective name (and keeps everything else). */
static model_bytes_t with_objective(const model_bytes_t *m, const char *name)
{
    layout_t l = find_layout(m);
    size_t old = rd32(m->p + l.objective), n = strlen(name);
    model_bytes_t out;
    out.len = m->len - old + n;
    out.p = malloc(out.len);
    assert_non_null(out.p);
    memcpy(out.p, m->p, l.objective);
    wr64(out.p + l.objective, n);
    memcpy(out.p + l.objective + 8, name, n);
    memcpy(out.p + l.objective + 8 + n, m->p + l.objective + 8 + old,
           m->len - l.objective - 8 - old);
    return out;
}

/* Replaces the attribute vector of a gbtree model with `count` pairs. */
static model_bytes_t with_attributes(const model_bytes_t *m, const char *const *pairs, size_t count)
{
    layout_t l = find_layout(m);
    size_t len = l.attrs + 8;
    for (size_t i = 0; i < 2 * count; i++)
        len += 8 + strlen(pairs[i]);
    model_bytes_t out = {malloc(len), len};
    assert_non_null(out.p);
    memcpy(out.p, m->p, l.attrs);
    size_t at = l.attrs;
    wr64(out.p + at, count);
    at += 8;
    for (size_t i = 0; i < 2 * count; i++) {
        size_t n = strlen(pairs[i]);
        wr64(out.p + at, n);
        memcpy(out.p + at + 8, pairs[i], n);
        at += 8 + n;
    }
    return out;
}

static char *convert_ok(const model_bytes_t *m)
{
    char *json = convert(m->p, m->len, NULL, NULL);
    if (!json)
        fail_msg("refused: %s", errmsg);
    return json;
}

static void test_objectives(void **state)
{
    (void)state;
    model_bytes_t m = load(FIXTURE("v0.90-gbtree-binary-logitraw.bin"));
    /* 0.7x-0.90's gpu: objectives compute what the CPU ones do */
    model_bytes_t g = with_objective(&m, "gpu:binary:logitraw");
    char *a = convert_ok(&m), *b = convert_ok(&g);
    assert_string_equal(a, b);
    free(a);
    free(b);
    free(g.p);
    g = with_objective(&m, "gpu:reg:linear");
    b = convert_ok(&g);
    assert_non_null(strstr(b, "\"objective\":{\"name\":\"reg:squarederror\","));
    free(b);
    free(g.p);
    /* before 1.0 the stored base_score is a margin: exp for count:poisson */
    g = with_objective(&m, "count:poisson");
    wr32(g.p + 0, 0x3f800000u); /* 1.0 */
    b = convert_ok(&g);
    char want[64];
    snprintf(want, sizeof want, "\"base_score\":\"%s\"", "2.7182817E0");
    assert_non_null(strstr(b, want));
    assert_non_null(strstr(b, "\"max_delta_step\":\"0.699999988\""));
    free(b);
    free(g.p);
    g = with_objective(&m, "reg:gamma"); /* 3.x wants a positive base_score */
    wr32(g.p + 0, 0xff800000u);          /* exp(-inf) = 0 */
    assert_refused_with(g.p, g.len, "unsupported: base_score 0 is not positive for reg:gamma");
    free(g.p);
    g = with_objective(&m, "binary:hinge");
    wr32(g.p + 0, 0xbf800000u); /* -1 -> 0 */
    b = convert_ok(&g);
    assert_non_null(strstr(b, "\"base_score\":\"0E0\""));
    free(b);
    free(g.p);
    /* objectives XGBoost 1.7 does not know */
    g = with_objective(&m, "reg:quantileerror");
    assert_refused_with(g.p, g.len, "unsupported: objective \"reg:quantileerror\"");
    free(g.p);
    g = with_objective(&m, "");
    assert_refused_with(g.p, g.len, "empty objective name");
    free(g.p);
    g = with_objective(&m, "multi:\xff");
    assert_refused_with(g.p, g.len, "unsupported: objective \"multi:?\"");
    free(g.p);
    free(m.p);

    /* the saved objective configuration of 1.x files */
    m = load(FIXTURE("v1.7.4-gbtree-binary-logistic-base-0.3.bin"));
    static const char kSaved[] = "{\"name\":\"binary:logistic\",\"reg_loss_param\":"
                                 "{\"scale_pos_weight\":\"0.1\"}}";
    const char *saved[] = {"objective", kSaved, "best_iteration", "1"};
    g = with_attributes(&m, saved, 2);
    b = convert_ok(&g);
    assert_non_null(strstr(b, "\"scale_pos_weight\":\"0.100000001\""));
    assert_non_null(strstr(b, "\"attributes\":{\"best_iteration\":\"1\"}"));
    free(b);
    free(g.p);
    saved[1] = "{\"name\":\"binary:logistic\",\"reg_loss_param\":{\"scale_pos_weight\":\"-1\"}}";
    g = with_attributes(&m, saved, 2);
    assert_refused_with(g.p, g.len, "unsupported: objective parameter scale_pos_weight=-1");
    free(g.p);
    saved[1] = "{\"name\":\"binary:logistic\",\"reg_loss_param\":{\"scale_pos_weight\":\"1x\"}}";
    g = with_attributes(&m, saved, 2);
    assert_refused_with(g.p, g.len, "scale_pos_weight=\"1x\"");
    free(g.p);
    saved[1] = "{\"name\":\"binary:logistic\",\"reg_loss_param\":{\"scale_pos_weight\":1}}";
    g = with_attributes(&m, saved, 2);
    assert_refused_with(g.p, g.len, "is not a string");
    free(g.p);
    saved[1] = "{\"name\":\"binary:logistic\",\"reg_loss_param\":[]}";
    g = with_attributes(&m, saved, 2);
    assert_refused_with(g.p, g.len, "the saved reg_loss_param is not an object");
    free(g.p);
    saved[1] = "{\"name\":";
    g = with_attributes(&m, saved, 2);
    assert_refused_with(g.p, g.len, "is not JSON");
    free(g.p);
    saved[1] = "[1]";
    g = with_attributes(&m, saved, 2);
    assert_refused_with(g.p, g.len, "not an object with a name");
    free(g.p);
    /* logistic objectives need a base_score in (0, 1) */
    model_bytes_t bad = {malloc(m.len), m.len};
    assert_non_null(bad.p);
    memcpy(bad.p, m.p, m.len);
    wr32(bad.p + 4, 0x3fc00000u); /* 1.5 */
    assert_refused_with(bad.p, bad.len, "unsupported: base_score 1.5 outside (0, 1)");
    wr32(bad.p + 4, 0x7fc00000u); /* NaN */
    assert_refused_with(bad.p, bad.len, "unsupported: base_score nan");
    free(bad.p);
    free(m.p);
}

static void test_attributes(void **state)
{
    (void)state;
    model_bytes_t m = load(FIXTURE("v1.7.4-gbtree-binary-logistic.bin"));
    /* sorted by key bytes; the first of duplicate keys wins; the three that
     * XGBoost consumes on load are dropped; text is escaped */
    const char *pairs[] = {
        "zeta",    "last",     "alpha",
        "first",   "alpha",    "second",
        "metrics", "auc;",     "count_poisson_max_delta_step",
        "0.7",     "ctl",      "a\"b\\c\n\t\x01",
        "utf8",    "\xc3\xa9",
    };
    model_bytes_t g = with_attributes(&m, pairs, 7);
    char *b = convert_ok(&g);
    assert_non_null(
        strstr(b, "\"attributes\":{\"alpha\":\"first\",\"ctl\":\"a\\\"b\\\\c\\n\\t\\u0001\","
                  "\"utf8\":\"\xc3\xa9\",\"zeta\":\"last\"}"));
    free(b);
    free(g.p);
    /* keys and values must be UTF-8 text */
    const char *bad1[] = {"k\xff", "v"};
    g = with_attributes(&m, bad1, 1);
    assert_refused_with(g.p, g.len, "attribute 0's key is not UTF-8");
    free(g.p);
    const char *bad2[] = {"k", "\xed\xa0\x80"}; /* a UTF-16 surrogate */
    g = with_attributes(&m, bad2, 1);
    assert_refused_with(g.p, g.len, "attribute 0's value is not UTF-8");
    free(g.p);
    /* a NUL inside a string */
    g = with_attributes(&m, pairs, 1);
    g.p[g.len - 1] = '\0';
    assert_refused_with(g.p, g.len, "is not UTF-8 text without NUL");
    free(g.p);
    free(m.p);
}

/* Special floats come out as XGBoost writes them and read back exactly. */
static void test_float_text(void **state)
{
    (void)state;
    model_bytes_t m = load(FIXTURE("v1.7.4-gbtree-binary-logistic.bin"));
    layout_t l = find_layout(&m);
    static const struct {
        uint32_t bits;
        const char *text;
    } cases[] = {
        {0x7fc00000u, "NaN"},           {0x7f800000u, "Infinity"},
        {0xff800000u, "-Infinity"},     {0x00000000u, "0E0"},
        {0x80000000u, "-0E0"},          {0x00000001u, "1E-45"},
        {0x7f7fffffu, "3.4028235E38"},  {0x3f800000u, "1E0"},
        {0x41a00000u, "2E1"},           {0x3dcccccdu, "1E-1"},
        {0xbeaaaaabu, "-3.3333334E-1"}, {0x00800000u, "1.1754944E-38"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        model_bytes_t g = {malloc(m.len), m.len};
        assert_non_null(g.p);
        memcpy(g.p, m.p, m.len);
        wr32(g.p + node_field(&l, 3, 16), cases[i].bits); /* a leaf value */
        char *json = convert_ok(&g);
        char want[64];
        snprintf(want, sizeof want, "\"split_conditions\":[");
        const char *conds = strstr(json, want);
        assert_non_null(conds);
        /* the fourth value of the first tree */
        const char *v = conds + strlen(want);
        for (int k = 0; k < 3; k++)
            v = strchr(v, ',') + 1;
        size_t n = strcspn(v, ",]");
        if (n != strlen(cases[i].text) || strncmp(v, cases[i].text, n) != 0)
            fail_msg("0x%08x written as %.*s, want %s", cases[i].bits, (int)n, v, cases[i].text);
        if (isfinite(strtof(cases[i].text, NULL))) {
            float f = strtof(v, NULL);
            uint32_t bits;
            memcpy(&bits, &f, 4);
            assert_int_equal(bits, cases[i].bits);
        }
        free(json);
        free(g.p);
    }
    free(m.p);
}

static void test_not_legacy(void **state)
{
    (void)state;
    assert_refused_with((const unsigned char *)"", 0, "byte 0: empty input");
    assert_null(sms_legacy_to_json(NULL, 10, NULL, errmsg, sizeof errmsg));
    assert_clean_message();
    assert_refused_with((const unsigned char *)"{\"learner\":{}}", 14, "JSON or UBJSON model");
    assert_refused_with((const unsigned char *)"bs64AAAA", 8, "unsupported: the base64");
    assert_refused_with((const unsigned char *)"binf", 4, "learner parameters");
    assert_refused_with((const unsigned char *)"\x80\x04\x95", 3, "learner parameters");
    /* a message never overflows a small buffer */
    char tiny[8];
    assert_null(sms_legacy_to_json((const unsigned char *)"x", 1, NULL, tiny, sizeof tiny));
    assert_true(strlen(tiny) < sizeof tiny);

    model_bytes_t m = load(FIXTURE("v1.7.4-gbtree-binary-logistic.bin"));
    layout_t l = find_layout(&m);
    unsigned char *w = malloc(m.len + 3);
    assert_non_null(w);
    memcpy(w, m.p, m.len);
    memcpy(w + m.len, "abc", 3);
    assert_refused_with(w, m.len + 3, "3 bytes follow the model");
    memcpy(w, m.p, m.len);
    wr32(w + l.param + 4, 0);
    assert_refused_with(w, m.len, "num_feature is 0");
    memcpy(w, m.p, m.len);
    wr32(w + l.param + 8, 0xffffffffu);
    assert_refused_with(w, m.len, "negative num_class -1");
    memcpy(w, m.p, m.len);
    wr32(w + l.param + 8, 5); /* 5 classes, but every tree is for class 0 */
    assert_refused_with(w, m.len, "the trees cover 1 output groups, but the model declares 5");
    memcpy(w, m.p, m.len);
    wr32(w + l.param + 28, 0x7fffffff); /* as many targets */
    assert_refused_with(w, m.len, "the model declares 2147483647");
    memcpy(w, m.p, m.len);
    wr32(w + l.param + 8, 3);
    wr32(w + l.param + 28, 2);
    assert_refused_with(w, m.len, "unsupported: a model with both num_class 3 and num_target 2");
    memcpy(w, m.p, m.len);
    memcpy(w + l.booster + 8, "gbtrex", 6);
    assert_refused_with(w, m.len, "unsupported: booster \"gbtrex\"");
    memcpy(w, m.p, m.len);
    wr32(w + l.gbm, 0);
    assert_refused_with(w, m.len, "unsupported: a model without trees");
    free(w);
    free(m.p);

    /* multi:softmax needs num_class >= 1 */
    m = load(FIXTURE("v1.7.4-gbtree-multi-softmax.bin"));
    l = find_layout(&m);
    w = malloc(m.len);
    assert_non_null(w);
    memcpy(w, m.p, m.len);
    wr32(w + l.param + 8, 0);
    assert_refused_with(w, m.len, "belongs to output group 1");
    free(w);
    free(m.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures_equal_xgboost_174),
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_serve_fixtures),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_random_damage),
        cmocka_unit_test(test_huge_counts),
        cmocka_unit_test(test_inconsistent_trees),
        cmocka_unit_test(test_objectives),
        cmocka_unit_test(test_attributes),
        cmocka_unit_test(test_float_text),
        cmocka_unit_test(test_not_legacy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
