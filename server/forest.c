/* The native tree evaluator: compiles the JSON (or the UBJSON, its arrays
 * read in place) of a gbtree model into flat node arrays (complete trees of
 * 8-byte nodes when padding them is cheap, else children adjacent and
 * leaves looping on themselves), so every tree is walked a fixed number of
 * steps without a leaf test, and predicts with
 * XGBoost 3.4's arithmetic, many walks at a time so that the memory
 * latencies of independent rows and trees overlap. Categorical splits test
 * category sets in the same walks, branch-free; vector leaves add a value
 * to every output. Also the objectives' base_score and output transforms
 * (linear.c uses them too). */
#include "smserve/forest.h"
#include "smserve/error.h"
#include "smserve/random.h"
#include "smserve/ubjson.h"
#include "smserve/xjson.h"

#include <assert.h>
#include <float.h>
#include <jansson.h>
#include <malloc.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rows are walked BLOCK_ROWS at a time in a widened, transposed copy: slot
 * k of row r sits at float k * BLOCK_ROWS + r. Slots 0..num_feature-1 hold
 * the features with NaN replaced by -inf, slots num_feature..2*num_feature-1
 * the features as they are, NaN included, and slot 2*num_feature holds 0.
 * A node whose missing values go left reads the first copy and one whose
 * missing values go right the second, so `value < threshold` alone decides
 * the side: a missing value compares as -inf (left) or as NaN, never below
 * (right), and real values, infinities included, compare as themselves
 * (thresholds are finite). One row alone uses column 0 of the same
 * layout.
 *
 * A node is 16 bytes, addressed by byte offset: it goes to the node at
 * `left` when the row's slot is below `threshold` and to the next node
 * (left + 16) when not. A leaf reads slot 2*num_feature (0) against +inf
 * and has left = itself: a walk that reached it stays there, so every tree
 * is walked a fixed number of steps (its depth) without a leaf test.
 *
 * A categorical node has CAT_NODE set in `left` (whose low 4 bits are
 * otherwise 0) and reads the same slots: a row goes right when its value is
 * NaN (missing, default right) or a category in the node's set (see
 * category_goes_right), and left otherwise (-inf, missing with default
 * left, is no category). A set whose
 * categories are all below 64 is a 64-bit mask in threshold and leaf
 * (threshold the low half); a larger one has CAT_LARGE set too and its index
 * in cat_sets in vleaf. A vector leaf holds in `vleaf` the index of its
 * values in leaf_values. Rows too wide to widen are walked as they are by
 * generic_step. */
typedef struct node {
    uint32_t slot; /* byte offset of the slot's column-0 float in the block */
    uint32_t left; /* byte offset of the left child in the node array, | flags */
    float threshold;
    union {
        float leaf;     /* a leaf's contribution (see sms_forest_set_fused); 0 inside */
        uint32_t vleaf; /* a vector leaf's values at leaf_values[vleaf * K]; a
                           large category set's index in cat_sets */
    };
} node_t;

#define CAT_NODE   1u
#define CAT_LARGE  2u
#define LEFT_FLAGS 15u

#define BLOCK_ROWS 8
#define SLOT_BYTES (BLOCK_ROWS * sizeof(float))

/* When every tree can be padded to the model's deepest leaf at a modest
 * cost in memory (as with trees grown to a max_depth), the trees are kept
 * in a second, smaller and faster layout instead. Each tree is a complete
 * binary tree of depth D in breadth-first order from index 1, node i with
 * children 2i (left) and 2i + 1 (right), so a node needs no child offset;
 * entry 0 of each tree's 2^D entries is unused. The 2^D leaves follow in a
 * float array of their own. A leaf shallower than D becomes a node that
 * always goes left over a subtree that holds its value.
 *
 * This layout compares integers: floats map to keys that order as the
 * floats do (-0 taken as +0, as it compares equal to it), so a node goes
 * right exactly when its `key`, the threshold's key minus 1, is below the
 * row's key. The widened block holds keys in place of floats (same slots);
 * missing values are 0 in the first copy (always left) and UINT32_MAX in
 * the second (always right). A node that always goes left has key
 * UINT32_MAX. Step: i = 2i + (key < row key), which compiles to a few
 * integer instructions. */
typedef struct cnode {
    uint32_t key;
    uint32_t slot; /* as in node_t */
} cnode_t;

/* Bounds of the complete layout: its depth, and its size against the
 * general layout's. */
#define MAX_COMPLETE_DEPTH  20
#define MAX_COMPLETE_GROWTH 2

/* Bounds that keep compile-time work, offsets and stack buffers small; a
 * model past them goes to the C API. */
#define MAX_DEPTH       256
#define MAX_GROUPS      SMS_OBJECTIVE_MAX_GROUPS
#define MAX_NODES       (1u << 27)
#define MAX_FEATURES    (1u << 25)
#define MAX_LEAF_VALUES (1u << 26)
/* Category sets: XGBoost takes values from 2^24 on as no category, and
 * sizes each set's bitset by its largest category. */
#define MAX_CATEGORY  (1 << 24)
#define MAX_CAT_WORDS (1u << 22)

/* Workspace room for one widened block (64 KB): rows of more than
 * (WIDE_FLOATS / BLOCK_ROWS - 1) / 2 features are walked unwidened. */
#define WIDE_FLOATS 16384

typedef struct cat_set {
    uint32_t offset; /* first word in cat_bits */
    uint32_t words;  /* bit c % 32 of word c / 32 is category c */
} cat_set_t;

struct sms_forest {
    sms_objective_t obj;
    node_t *nodes;
    uint32_t *root;  /* per tree: byte offset of the root */
    uint16_t *depth; /* per tree: steps from the root to its deepest leaf */
    uint32_t *group; /* per tree: output group (scalar leaves) */
    size_t num_trees;
    size_t num_nodes;
    /* The complete layout (NULL when not used): per tree 2^cdepth entries
     * in cnodes and 2^cdepth leaves in cleaves, tree after tree. */
    cnode_t *cnodes;
    float *cleaves;
    unsigned cdepth;
    size_t num_feature;
    size_t num_group;
    size_t num_output;
    /* Vector leaves (leaf_size > 1): leaf_size values per reachable leaf,
     * as added (see dart_weight); leaf_raw and leaf_tree (dart only) keep
     * the values as written and each leaf's tree. */
    size_t leaf_size;
    float *leaf_values;
    float *leaf_raw;
    uint32_t *leaf_tree;
    size_t num_leaf_values;
    /* Categorical splits: their sets (bitsets in cat_bits). */
    cat_set_t *cat_sets;
    uint32_t *cat_bits;
    size_t num_cat_sets, cat_sets_cap, num_cat_words, cat_words_cap;
    size_t num_categorical;
    /* Dart only (NULL otherwise): each tree's weight, and for each node of
     * the general layout the leaf as written (0 inside). Leaves hold
     * leaf * weight rounded to float, or the leaf alone when `fused`: then
     * the weight is applied in one rounding with the addition. */
    float *dart_weight;
    float *dart_delta;
    bool fused;
    bool sum_first; /* the trees summed from zero, the base margin added last */
    /* sms_forest_seal freed what only the parity gate needs: the probe's
     * arrays below, dart_delta, leaf_raw and leaf_tree, dart_weight when not
     * fused, and nodes, root and depth when cnodes predict. */
    bool sealed;
    /* Sorted distinct thresholds per feature, for the parity probe. */
    float *thresholds;
    size_t *threshold_start; /* num_feature + 1 offsets */
    /* Sorted distinct categories of each feature's sets, and the largest
     * bitset capacity (in categories) among them, for the probe. */
    float *categories;
    size_t *category_start; /* num_feature + 1 offsets */
    uint32_t *category_cap;
};

static bool is_widened(const sms_forest_t *f)
{
    return (2 * f->num_feature + 1) * BLOCK_ROWS <= WIDE_FLOATS;
}

/* ---- JSON helpers --------------------------------------------------------- */

/* XGBoost writes model parameters as decimal strings. */
static int string_ulong(json_t *v, unsigned long long max, unsigned long long *out)
{
    const char *s = json_string_value(v);
    if (!s || *s < '0' || *s > '9')
        return -1;
    char *end;
    unsigned long long n = strtoull(s, &end, 10);
    if (*end || n > max)
        return -1;
    *out = n;
    return 0;
}

static int int_value(json_t *v, long long *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    if (json_is_true(v) || json_is_false(v)) {
        *out = json_is_true(v);
        return 0;
    }
    return -1;
}

/* Half a float ulp above FLT_MAX: doubles below it round to FLT_MAX, and
 * it and above (ties go to even) to infinity. */
#define FLT_MAX_ROUNDING 0x1.ffffffp127

/* A finite float32 the model wrote as decimal: XGBoost prints each float
 * with the shortest digits that read back to it, so the nearest double,
 * rounded to float, is that float again. Those of FLT_MAX, 3.4028235e38,
 * read as a double just above it, so finite floats are the doubles that
 * round to a finite float, not those up to FLT_MAX. NaN and infinities
 * (XGBoost's bare tokens) are refused. */
static int float_value(json_t *v, float *out)
{
    double d;
    if (!sms_xjson_number(v, &d) || !(fabs(d) < FLT_MAX_ROUNDING))
        return -1;
    *out = (float)d;
    return 0;
}

/* ---- the model's numeric arrays ------------------------------------------- */

/* Typed UBJSON arrays (see sms_forest_compile_ubj) are not made into JSON
 * values: the reader leaves an empty JSON array in their place and notes
 * where their elements are, big-endian, in the caller's bytes. */
typedef struct typed_array {
    const json_t *placeholder;
    const unsigned char *data;
    size_t n;
    char type; /* the UBJSON element type: i U I l L d D */
} typed_array_t;

typedef struct typed_table {
    typed_array_t *items; /* sorted by placeholder once read */
    size_t count, cap;
} typed_table_t;

/* A numeric array of the model as the compiler reads it: a JSON array, or
 * a typed UBJSON array read in place. Absent: json NULL and type 0. */
typedef struct num_array {
    json_t *json;
    const unsigned char *data;
    size_t n;
    char type; /* 0: json */
} num_array_t;

static int compare_placeholder(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const typed_array_t *)a)->placeholder;
    uintptr_t y = (uintptr_t)((const typed_array_t *)b)->placeholder;
    return (x > y) - (x < y);
}

/* The array that JSON value v stands for (v may be NULL). */
static num_array_t array_of(const typed_table_t *typed, json_t *v)
{
    num_array_t a = {v, NULL, 0, 0};
    if (typed && typed->count && json_is_array(v) && json_array_size(v) == 0) {
        typed_array_t key = {v, NULL, 0, 0};
        const typed_array_t *t =
            bsearch(&key, typed->items, typed->count, sizeof key, compare_placeholder);
        if (t)
            a = (num_array_t){NULL, t->data, t->n, t->type};
    }
    return a;
}

static bool array_present(const num_array_t *a)
{
    return a->type || a->json;
}

static bool array_is_array(const num_array_t *a)
{
    return a->type || json_is_array(a->json);
}

static size_t array_size(const num_array_t *a)
{
    return a->type ? a->n : json_array_size(a->json);
}

static size_t typed_size(char type)
{
    return sms_ubjson_numeric_size((unsigned char)type);
}

/* Element i of a typed array as an integer (false for float types). */
static bool typed_integer(const num_array_t *a, size_t i, long long *out)
{
    const unsigned char *p = a->data + i * typed_size(a->type);
    switch (a->type) {
    case 'i':
        *out = (int8_t)p[0];
        return true;
    case 'U':
        *out = p[0];
        return true;
    case 'I':
        *out = (int16_t)sms_ubjson_big_endian(p, 2);
        return true;
    case 'l':
        *out = (int32_t)sms_ubjson_big_endian(p, 4);
        return true;
    case 'L':
        *out = (long long)sms_ubjson_big_endian(p, 8);
        return true;
    }
    return false;
}

/* Element i of a typed array as a double (every type). */
static double typed_number(const num_array_t *a, size_t i)
{
    const unsigned char *p = a->data + i * typed_size(a->type);
    long long n;
    if (typed_integer(a, i, &n))
        return (double)n;
    if (a->type == 'd') {
        uint32_t bits = (uint32_t)sms_ubjson_big_endian(p, 4);
        float v;
        memcpy(&v, &bits, sizeof v);
        return v;
    }
    uint64_t bits = sms_ubjson_big_endian(p, 8);
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* Element i as an integer, as int_value reads a JSON one (booleans too);
 * -1 when absent or not one. */
static int array_int(const num_array_t *a, size_t i, long long *out)
{
    if (!a->type)
        return int_value(json_array_get(a->json, i), out);
    return i < a->n && typed_integer(a, i, out) ? 0 : -1;
}

/* Element i as an integer and nothing else (no boolean). */
static int array_integer(const num_array_t *a, size_t i, long long *out)
{
    if (!a->type && !json_is_integer(json_array_get(a->json, i)))
        return -1;
    return array_int(a, i, out);
}

/* Whether element i is a number as sms_xjson_number means it. */
static bool array_number(const num_array_t *a, size_t i, double *out)
{
    if (!a->type)
        return sms_xjson_number(json_array_get(a->json, i), out);
    if (i >= a->n)
        return false;
    double d = typed_number(a, i);
    if (out)
        *out = d;
    return true;
}

/* Element i as a finite float32 (see float_value). */
static int array_float(const num_array_t *a, size_t i, float *out)
{
    if (!a->type)
        return float_value(json_array_get(a->json, i), out);
    double d;
    if (!array_number(a, i, &d) || !(fabs(d) < FLT_MAX_ROUNDING))
        return -1;
    *out = (float)d;
    return 0;
}

long sms_objective_floats(const char *text, float *values, long max)
{
    if (!text)
        return -1;
    const char *p = text;
    bool bracketed = *p == '[';
    if (bracketed)
        p++;
    long n = 0;
    for (;;) {
        char *end;
        float v = strtof(p, &end);
        if (end == p || !isfinite(v))
            return -1;
        if (n < max)
            values[n] = v;
        n++;
        p = end;
        if (*p != ',')
            break;
        p++;
    }
    if (bracketed && *p++ != ']')
        return -1;
    return *p == '\0' ? n : -1;
}

/* ---- objectives ---------------------------------------------------------- */

enum margin_fn { MARGIN_IDENTITY, MARGIN_LOGIT, MARGIN_LOG, MARGIN_EXPECTILE };
enum output_fn {
    OUT_IDENTITY,
    OUT_SIGMOID,
    OUT_EXP,
    OUT_EXP_DOUBLE,
    OUT_HINGE,
    OUT_SOFTPROB,
    OUT_SOFTMAX,
    OUT_QUANTILE,
    OUT_EXPECTILE,
};

typedef struct objective {
    const char *name;
    enum margin_fn margin;
    enum output_fn output;
    /* Where the objective keeps its alphas (quantile, expectile). */
    const char *alpha_param, *alpha_key;
    /* base_score must be in [0, 1] (logistic) or positive (gamma), else
     * XGBoost refuses to configure the model. */
    enum { CHECK_NONE, CHECK_UNIT, CHECK_POSITIVE } check;
} objective_t;

/* ProbToMargin and PredTransform of XGBoost 3.4's objectives
 * (src/objective/): logistic clamps base_score to [1e-6, 1 - 1e-6] before
 * its logit; logitraw, hinge, the ranking and the multi-class objectives
 * take base_score as the margin; survival:aft's exp is the double one (an
 * unqualified exp on a float), the others' expf; reg:quantileerror sorts
 * each row's quantiles (since 3.4); reg:expectileerror keeps its first
 * expectile as a margin and the others as softplus-transformed gaps. */
static const objective_t OBJECTIVES[] = {
    {"reg:squarederror", MARGIN_IDENTITY, OUT_IDENTITY, NULL, NULL, CHECK_NONE},
    {"reg:linear", MARGIN_IDENTITY, OUT_IDENTITY, NULL, NULL, CHECK_NONE},
    {"reg:pseudohubererror", MARGIN_IDENTITY, OUT_IDENTITY, NULL, NULL, CHECK_NONE},
    {"reg:absoluteerror", MARGIN_IDENTITY, OUT_IDENTITY, NULL, NULL, CHECK_NONE},
    {"reg:squaredlogerror", MARGIN_IDENTITY, OUT_IDENTITY, NULL, NULL, CHECK_NONE},
    {"reg:quantileerror", MARGIN_IDENTITY, OUT_QUANTILE, "quantile_loss_param", "quantile_alpha",
     CHECK_NONE},
    {"reg:expectileerror", MARGIN_EXPECTILE, OUT_EXPECTILE, "expectile_loss_param",
     "expectile_alpha", CHECK_NONE},
    {"reg:logistic", MARGIN_LOGIT, OUT_SIGMOID, NULL, NULL, CHECK_UNIT},
    {"binary:logistic", MARGIN_LOGIT, OUT_SIGMOID, NULL, NULL, CHECK_UNIT},
    {"binary:logitraw", MARGIN_IDENTITY, OUT_IDENTITY, NULL, NULL, CHECK_NONE},
    {"binary:hinge", MARGIN_IDENTITY, OUT_HINGE, NULL, NULL, CHECK_NONE},
    {"reg:gamma", MARGIN_LOG, OUT_EXP, NULL, NULL, CHECK_POSITIVE},
    {"reg:tweedie", MARGIN_LOG, OUT_EXP, NULL, NULL, CHECK_NONE},
    {"count:poisson", MARGIN_LOG, OUT_EXP, NULL, NULL, CHECK_NONE},
    {"survival:cox", MARGIN_LOG, OUT_EXP, NULL, NULL, CHECK_NONE},
    {"survival:aft", MARGIN_LOG, OUT_EXP_DOUBLE, NULL, NULL, CHECK_NONE},
    {"multi:softprob", MARGIN_IDENTITY, OUT_SOFTPROB, NULL, NULL, CHECK_NONE},
    {"multi:softmax", MARGIN_IDENTITY, OUT_SOFTMAX, NULL, NULL, CHECK_NONE},
    {"rank:ndcg", MARGIN_IDENTITY, OUT_IDENTITY, NULL, NULL, CHECK_NONE},
    {"rank:pairwise", MARGIN_IDENTITY, OUT_IDENTITY, NULL, NULL, CHECK_NONE},
    {"rank:map", MARGIN_IDENTITY, OUT_IDENTITY, NULL, NULL, CHECK_NONE},
};

/* kRtEps of xgboost/base.h. */
static const float RT_EPS = 1e-6f;

/* common::Sigmoid: the clamp keeps expf finite, so a very negative margin
 * gives a tiny positive value rather than 0; the epsilon is below float
 * resolution at 1 and changes nothing, but is kept as written. */
static float sigmoid(float x)
{
    const float eps = 1e-16f;
    float e = -x < 88.7f ? -x : 88.7f;
    float denom = expf(e) + 1.0f + eps;
    return 1.0f / denom;
}

/* common::Softmax: max by fmaxf, exponentials stored as float, summed in
 * double, each divided by the sum rounded to float. */
static void softmax(float *v, size_t n)
{
    float wmax = v[0];
    for (size_t i = 1; i < n; i++)
        wmax = fmaxf(v[i], wmax);
    double wsum = 0.0;
    for (size_t i = 0; i < n; i++) {
        v[i] = expf(v[i] - wmax);
        wsum += v[i];
    }
    float s = (float)wsum;
    for (size_t i = 0; i < n; i++)
        v[i] /= s;
}

/* common::FindMaxIndex: the first of the largest margins. */
static float argmax(const float *v, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return (float)best;
}

/* common::SoftPlus and SoftPlusInv for float. */
static float softplus(float x)
{
    if (x > 0.0f)
        return x + log1pf(expf(-x));
    return log1pf(expf(x));
}

static float softplus_inv(float x)
{
    x = x > RT_EPS ? x : RT_EPS;
    return x + logf(-expm1f(-x));
}

static const objective_t *find_objective(const char *name)
{
    for (size_t i = 0; i < sizeof OBJECTIVES / sizeof OBJECTIVES[0]; i++)
        if (!strcmp(OBJECTIVES[i].name, name))
            return &OBJECTIVES[i];
    return NULL;
}

const char *sms_objective_name(const sms_objective_t *o)
{
    return ((const objective_t *)o->kind)->name;
}

/* ProbToMargin of the objective over every output's base_score. */
static int base_margins(const objective_t *kind, sms_objective_t *o, const float *base, char *why,
                        size_t why_size)
{
    size_t ng = o->num_group;
    for (size_t g = 0; g < ng; g++) {
        float b = base[g];
        if ((kind->check == CHECK_UNIT && !(b >= 0.0f && b <= 1.0f)) ||
            (kind->check == CHECK_POSITIVE && !(b > 0.0f))) {
            sms_refuse(why, why_size, "base_score %g is out of range for %s", b, kind->name);
            return -1;
        }
        switch (kind->margin) {
        case MARGIN_IDENTITY:
        case MARGIN_EXPECTILE:
            o->base_margin[g] = b;
            break;
        case MARGIN_LOGIT: {
            float c = b < RT_EPS ? RT_EPS : b;
            c = c < 1.0f - RT_EPS ? c : 1.0f - RT_EPS;
            o->base_margin[g] = -logf(1.0f / c - 1.0f);
            break;
        }
        case MARGIN_LOG:
            o->base_margin[g] = logf(b);
            break;
        }
    }
    /* Expectiles past the first become the inverse softplus of their gap to
     * the one before, from the last down, each gap taken from the values as
     * given. */
    if (kind->margin == MARGIN_EXPECTILE)
        for (size_t g = ng - 1; g > 0; g--)
            o->base_margin[g] = softplus_inv(base[g] - base[g - 1] - RT_EPS);
    for (size_t g = 0; g < ng; g++)
        if (!isfinite(o->base_margin[g])) {
            sms_refuse(why, why_size, "base_score %g gives the margin %g for %s", base[g],
                       o->base_margin[g], kind->name);
            return -1;
        }
    return 0;
}

int sms_objective_read(json_t *root, bool fitted, sms_objective_t *o, char *why, size_t why_size)
{
    memset(o, 0, sizeof *o);
    json_t *learner = sms_xjson_member(root, "learner");
    json_t *mparam = sms_xjson_member(learner, "learner_model_param");
    json_t *objective = sms_xjson_member(learner, "objective");
    const char *name = json_string_value(sms_xjson_member(objective, "name"));
    if (!mparam || !name) {
        sms_refuse(why, why_size, "model JSON lacks learner parameters or objective");
        return -1;
    }
    const objective_t *kind = find_objective(name);
    if (!kind) {
        sms_refuse(why, why_size, "objective %s is not supported by the native evaluator", name);
        return -1;
    }
    unsigned long long num_feature, num_class, num_target = 1, from_average = 1;
    const char *base_text = json_string_value(sms_xjson_member(mparam, "base_score"));
    if (string_ulong(sms_xjson_member(mparam, "num_feature"), MAX_FEATURES, &num_feature) < 0 ||
        string_ulong(sms_xjson_member(mparam, "num_class"), MAX_GROUPS, &num_class) < 0 ||
        !base_text ||
        (sms_xjson_member(mparam, "num_target") &&
         string_ulong(sms_xjson_member(mparam, "num_target"), MAX_GROUPS, &num_target) < 0) ||
        (sms_xjson_member(mparam, "boost_from_average") &&
         string_ulong(sms_xjson_member(mparam, "boost_from_average"), 1, &from_average) < 0) ||
        num_target == 0) {
        sms_refuse(why, why_size, "learner_model_param is malformed or out of bounds");
        return -1;
    }
    if (num_class > 1 && num_target > 1) {
        sms_refuse(why, why_size, "num_class %llu with num_target %llu", num_class, num_target);
        return -1;
    }
    bool multi = kind->output == OUT_SOFTPROB || kind->output == OUT_SOFTMAX;
    if (multi != (num_class > 1)) {
        sms_refuse(why, why_size, "objective %s with num_class %llu", name, num_class);
        return -1;
    }
    o->kind = kind;
    o->num_feature = (size_t)num_feature;
    o->multiclass = num_class > 1;
    o->num_group = num_class > 1 ? (size_t)num_class : (size_t)num_target;
    o->num_output = kind->output == OUT_SOFTMAX ? 1 : o->num_group;
    if (kind->alpha_param) {
        float alpha[MAX_GROUPS];
        long n = sms_objective_floats(
            json_string_value(
                sms_xjson_member(sms_xjson_member(objective, kind->alpha_param), kind->alpha_key)),
            alpha, MAX_GROUPS);
        if (n < 1 || (size_t)n > o->num_group || o->num_group % (size_t)n != 0 ||
            (kind->output == OUT_EXPECTILE && (size_t)n != o->num_group)) {
            sms_refuse(why, why_size, "%s with %s that does not fit num_target %zu", name,
                       kind->alpha_key, o->num_group);
            return -1;
        }
        o->num_alpha = (size_t)n;
    }
    /* One value for every output (as before 3.1), or one per output. */
    float base[MAX_GROUPS];
    long count = sms_objective_floats(base_text, base, MAX_GROUPS);
    if (count < 1 || (count != 1 && (size_t)count != o->num_group)) {
        sms_refuse(why, why_size, "base_score \"%.60s\" is not a number or one per output (%zu)",
                   base_text, o->num_group);
        return -1;
    }
    for (size_t g = 1; g < o->num_group; g++)
        base[g] = count == 1 ? base[0] : base[g];
    if (from_average && !fitted) {
        /* Learner::InitModelUserParam: base_score is a placeholder that no
         * link function is applied to. */
        memcpy(o->base_margin, base, o->num_group * sizeof *base);
        return 0;
    }
    return base_margins(kind, o, base, why, why_size);
}

void sms_objective_finish(const sms_objective_t *o, float *margin, float *out)
{
    const objective_t *kind = o->kind;
    size_t ng = o->num_group;
    switch (kind->output) {
    case OUT_IDENTITY:
        memcpy(out, margin, ng * sizeof *out);
        break;
    case OUT_SIGMOID:
        for (size_t g = 0; g < ng; g++)
            out[g] = sigmoid(margin[g]);
        break;
    case OUT_EXP:
        for (size_t g = 0; g < ng; g++)
            out[g] = expf(margin[g]);
        break;
    case OUT_EXP_DOUBLE:
        for (size_t g = 0; g < ng; g++)
            out[g] = (float)exp((double)margin[g]);
        break;
    case OUT_HINGE:
        for (size_t g = 0; g < ng; g++)
            out[g] = margin[g] > 0.0f ? 1.0f : 0.0f;
        break;
    case OUT_SOFTPROB:
        softmax(margin, ng);
        memcpy(out, margin, ng * sizeof *out);
        break;
    case OUT_SOFTMAX:
        out[0] = argmax(margin, ng);
        break;
    case OUT_QUANTILE:
        /* Each row's quantiles sorted ascending, by insertion as XGBoost
         * does, so that they never cross (since 3.4). */
        memcpy(out, margin, ng * sizeof *out);
        for (size_t c = 0; !o->unsorted_quantiles && c < ng; c += o->num_alpha) {
            float *q = out + c;
            for (size_t i = 1; i < o->num_alpha; i++) {
                float v = q[i];
                size_t pos = i;
                while (pos > 0 && q[pos - 1] > v) {
                    q[pos] = q[pos - 1];
                    pos--;
                }
                q[pos] = v;
            }
        }
        break;
    case OUT_EXPECTILE: {
        float pred = margin[0];
        out[0] = pred;
        for (size_t g = 1; g < ng; g++) {
            float gap = RT_EPS + softplus(margin[g]);
            pred += gap;
            out[g] = pred;
        }
        break;
    }
    }
}

/* ---- compilation ---------------------------------------------------------- */

typedef struct tree_arrays {
    num_array_t left, right, feature, cond, default_left, split_type;
    num_array_t cat_nodes, cat_segments, cat_sizes, categories;
    num_array_t leaf_weights; /* vector leaves */
    size_t n;
    size_t leaf_size; /* tree_param.size_leaf_vector, 0 taken as 1 */
    size_t leaves;    /* nodes without children */
    bool categorical; /* split_type has a categorical split */
} tree_arrays_t;

/* Sorts t[0, n) ascending. Written here rather than qsort's: sorting every
 * feature's thresholds, a callback per comparison, was a sixth of compiling
 * a 100-tree model. Insertion sort below 16, else median-of-three
 * quicksort, recursing into the smaller side. The thresholds hold no NaN
 * (the compiler refuses them). */
static void sort_floats(float *t, size_t n)
{
    while (n > 16) {
        float a = t[0], b = t[n / 2], c = t[n - 1];
        float pivot = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
        size_t i = 0, j = n - 1;
        for (;;) {
            while (t[i] < pivot)
                i++;
            while (pivot < t[j])
                j--;
            if (i >= j)
                break;
            float x = t[i];
            t[i++] = t[j];
            t[j--] = x;
        }
        size_t left = j + 1; /* t[0, left) <= pivot <= t[left, n) */
        if (left < n - left) {
            sort_floats(t, left);
            t += left;
            n -= left;
        } else {
            sort_floats(t + left, n - left);
            n = left;
        }
    }
    for (size_t k = 1; k < n; k++) {
        float x = t[k];
        size_t m = k;
        for (; m > 0 && x < t[m - 1]; m--)
            t[m] = t[m - 1];
        t[m] = x;
    }
}

/* Sorts each of nf runs (run j at data + start[j], count[j] long) and keeps
 * its distinct values, compacting the runs and rewriting start. */
static void sort_runs(float *data, size_t *start, const size_t *count, size_t nf)
{
    size_t out = 0;
    for (size_t j = 0; j < nf; j++) {
        float *t = data + start[j];
        size_t n = count[j];
        sort_floats(t, n);
        size_t first = out;
        for (size_t k = 0; k < n; k++)
            if (k == 0 || t[k] != t[k - 1])
                data[out++] = t[k];
        start[j] = first;
    }
    start[nf] = out;
}

static bool is_leaf(const sms_forest_t *f, size_t i)
{
    return f->nodes[i].slot / SLOT_BYTES >= 2 * f->num_feature;
}

static bool is_categorical(const sms_forest_t *f, size_t i)
{
    return f->nodes[i].left & CAT_NODE;
}

/* The categories of categorical node nd, one bit each: words 32-bit words
 * at *bits (the node's own mask, or its set's bitset). */
static const uint32_t *node_categories(const sms_forest_t *f, const node_t *nd, uint32_t *words,
                                       uint32_t mask[2])
{
    if (nd->left & CAT_LARGE) {
        const cat_set_t *s = &f->cat_sets[nd->vleaf];
        *words = s->words;
        return f->cat_bits + s->offset;
    }
    memcpy(mask, &nd->threshold, 2 * sizeof *mask);
    *words = 2;
    return mask;
}

/* Sorts each feature's numerical thresholds and keeps the distinct ones;
 * likewise the categories of its category sets. */
static int build_probe_values(sms_forest_t *f)
{
    size_t nf = f->num_feature;
    size_t *count = calloc(nf + 1, sizeof *count);
    size_t *ccount = calloc(nf + 1, sizeof *ccount);
    f->threshold_start = calloc(nf + 1, sizeof *f->threshold_start);
    f->category_start = calloc(nf + 1, sizeof *f->category_start);
    f->category_cap = calloc(nf + 1, sizeof *f->category_cap);
    if (!count || !ccount || !f->threshold_start || !f->category_start || !f->category_cap)
        goto oom;
    size_t total = 0, ctotal = 0;
    for (size_t i = 0; i < f->num_nodes; i++) {
        if (is_leaf(f, i))
            continue;
        size_t j = f->nodes[i].slot / SLOT_BYTES % nf;
        if (!is_categorical(f, i)) {
            count[j]++;
            total++;
            continue;
        }
        uint32_t words, mask[2];
        const uint32_t *bits = node_categories(f, &f->nodes[i], &words, mask);
        for (uint32_t w = 0; w < words; w++)
            for (uint32_t b = bits[w]; b; b &= b - 1) {
                ccount[j]++;
                ctotal++;
            }
    }
    f->thresholds = malloc((total ? total : 1) * sizeof *f->thresholds);
    f->categories = malloc((ctotal ? ctotal : 1) * sizeof *f->categories);
    if (!f->thresholds || !f->categories)
        goto oom;
    for (size_t j = 0; j < nf; j++) {
        f->threshold_start[j + 1] = f->threshold_start[j] + count[j];
        f->category_start[j + 1] = f->category_start[j] + ccount[j];
    }
    memset(count, 0, (nf + 1) * sizeof *count);
    memset(ccount, 0, (nf + 1) * sizeof *ccount);
    for (size_t i = 0; i < f->num_nodes; i++) {
        if (is_leaf(f, i))
            continue;
        size_t j = f->nodes[i].slot / SLOT_BYTES % nf;
        if (!is_categorical(f, i)) {
            f->thresholds[f->threshold_start[j] + count[j]++] = f->nodes[i].threshold;
            continue;
        }
        uint32_t words, mask[2];
        const uint32_t *bits = node_categories(f, &f->nodes[i], &words, mask);
        if (words * 32 > f->category_cap[j])
            f->category_cap[j] = words * 32;
        for (uint32_t w = 0; w < words; w++)
            for (uint32_t b = bits[w]; b; b &= b - 1)
                f->categories[f->category_start[j] + ccount[j]++] =
                    (float)(w * 32 + (uint32_t)__builtin_ctz(b));
    }
    sort_runs(f->thresholds, f->threshold_start, count, nf);
    sort_runs(f->categories, f->category_start, ccount, nf);
    free(count);
    free(ccount);
    return 0;
oom:
    free(count);
    free(ccount);
    return -1;
}

/* leaf * w rounded to float on its own, as XGBoost's unfused accumulation
 * does: the volatile keeps a compiler from contracting it into a later
 * addition. */
static float dart_product(float d, float w)
{
    volatile float p = d * w;
    return p;
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * size);
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

/* Reads tree t's category sets into f (as XGBoost's
 * RegTree::LoadCategoricalSplit does: categories_nodes in ascending node
 * order, each with a segment of `categories`) and sets cat_of[node] to
 * 1 + its set, 0 for the other nodes. Returns 0, -1 with why, or -2 when
 * out of memory. */
static int tree_categories(sms_forest_t *f, size_t t, const tree_arrays_t *a, uint32_t *cat_of,
                           char *why, size_t why_size)
{
    memset(cat_of, 0, a->n * sizeof *cat_of);
    if (!a->categorical && array_size(&a->cat_nodes) == 0)
        return 0;
    size_t count = array_size(&a->cat_nodes);
    size_t num_categories = array_size(&a->categories);
    if (!array_is_array(&a->cat_nodes) || !array_is_array(&a->cat_segments) ||
        !array_is_array(&a->cat_sizes) || !array_is_array(&a->categories) ||
        array_size(&a->cat_segments) != count || array_size(&a->cat_sizes) != count) {
        sms_refuse(why, why_size, "tree %zu: categories_nodes, _segments and _sizes do not match",
                   t);
        return -1;
    }
    long long previous = -1;
    for (size_t i = 0; i < count; i++) {
        long long node, begin, size, type;
        if (array_int(&a->cat_nodes, i, &node) < 0 || array_int(&a->cat_segments, i, &begin) < 0 ||
            array_int(&a->cat_sizes, i, &size) < 0) {
            sms_refuse(why, why_size, "tree %zu: categories entry %zu is not a number", t, i);
            return -1;
        }
        if (node <= previous || node < 0 || (unsigned long long)node >= a->n ||
            array_int(&a->split_type, (size_t)node, &type) < 0 || type != 1) {
            sms_refuse(
                why, why_size,
                "tree %zu: categories_nodes[%zu] = %lld is not an ascending categorical node", t, i,
                node);
            return -1;
        }
        previous = node;
        if (begin < 0 || size < 1 || (unsigned long long)begin > num_categories ||
            (unsigned long long)size > num_categories - (unsigned long long)begin) {
            sms_refuse(why, why_size,
                       "tree %zu node %lld: category segment [%lld, +%lld) is outside the %zu "
                       "categories",
                       t, node, begin, size, num_categories);
            return -1;
        }
        long long largest = 0;
        for (long long k = begin; k < begin + size; k++) {
            long long c;
            if (array_int(&a->categories, (size_t)k, &c) < 0) {
                sms_refuse(why, why_size, "tree %zu node %lld: a category is not an integer", t,
                           node);
                return -1;
            }
            if (c < 0 || c >= MAX_CATEGORY) {
                sms_refuse(why, why_size, "tree %zu node %lld: category %lld is outside [0, %d)", t,
                           node, c, MAX_CATEGORY);
                return -1;
            }
            largest = c > largest ? c : largest;
        }
        uint32_t words = (uint32_t)(largest / 32 + 1);
        if (words > MAX_CAT_WORDS - f->num_cat_words) {
            sms_refuse(why, why_size, "the category sets need more than %u words", MAX_CAT_WORDS);
            return -1;
        }
        if (grow((void **)&f->cat_sets, &f->cat_sets_cap, f->num_cat_sets + 1,
                 sizeof *f->cat_sets) < 0 ||
            grow((void **)&f->cat_bits, &f->cat_words_cap, f->num_cat_words + words,
                 sizeof *f->cat_bits) < 0)
            return -2;
        uint32_t *bits = f->cat_bits + f->num_cat_words;
        memset(bits, 0, words * sizeof *bits);
        for (long long k = begin; k < begin + size; k++) {
            long long c = 0; /* read and checked above */
            array_int(&a->categories, (size_t)k, &c);
            bits[c / 32] |= 1u << (c % 32);
        }
        f->cat_sets[f->num_cat_sets] = (cat_set_t){(uint32_t)f->num_cat_words, words};
        f->num_cat_words += words;
        cat_of[node] = (uint32_t)++f->num_cat_sets;
    }
    return 0;
}

/* Checks one tree's arrays and appends its reachable nodes to f in
 * breadth-first order, so that a node's children are adjacent. `seen`,
 * `queue`, `level` and `cat_of` (see tree_categories) are scratch of at
 * least n entries. Returns 0, or -1 with why. */
static int compile_tree(sms_forest_t *f, size_t t, const tree_arrays_t *a, float weight, bool dart,
                        const uint32_t *cat_of, uint32_t *queue, uint16_t *level,
                        unsigned char *seen, char *why, size_t why_size)
{
    size_t n = a->n, K = f->leaf_size;
    size_t base = f->num_nodes;
    memset(seen, 0, n);
    size_t count = 1;
    queue[0] = 0;
    level[0] = 0;
    seen[0] = 1;
    unsigned depth = 0;
    for (size_t q = 0; q < count; q++) {
        size_t old = queue[q];
        node_t *nd = &f->nodes[base + q];
        long long left, right, feature, default_left, split_type = 0;
        if (array_int(&a->left, old, &left) < 0 || array_int(&a->right, old, &right) < 0 ||
            array_int(&a->feature, old, &feature) < 0 ||
            array_int(&a->default_left, old, &default_left) < 0 ||
            (array_present(&a->split_type) && array_int(&a->split_type, old, &split_type) < 0) ||
            !array_number(&a->cond, old, NULL)) {
            sms_refuse(why, why_size, "tree %zu node %zu: a field is missing or not a number", t,
                       old);
            return -1;
        }
        if (dart)
            f->dart_delta[base + q] = 0.0f;
        if (left == -1) {
            nd->threshold = INFINITY;
            nd->slot = (uint32_t)(2 * f->num_feature * SLOT_BYTES);
            nd->left = (uint32_t)((base + q) * sizeof(node_t));
            if (K > 1) {
                /* 3.2+: a vector leaf's right child indexes leaf_weights. */
                size_t available = array_size(&a->leaf_weights) / K;
                if (right < 0 || (unsigned long long)right >= available) {
                    sms_refuse(why, why_size, "tree %zu node %zu: leaf %lld of %zu in leaf_weights",
                               t, old, right, available);
                    return -1;
                }
                size_t at = f->num_leaf_values;
                for (size_t k = 0; k < K; k++) {
                    float v;
                    if (array_float(&a->leaf_weights, (size_t)right * K + k, &v) < 0) {
                        sms_refuse(why, why_size, "tree %zu leaf %lld: value %zu is not a number",
                                   t, right, k);
                        return -1;
                    }
                    f->leaf_values[at + k] = dart ? dart_product(v, weight) : v;
                    if (dart) {
                        f->leaf_raw[at + k] = v;
                        f->leaf_tree[at / K] = (uint32_t)t;
                    }
                }
                nd->vleaf = (uint32_t)(at / K);
                f->num_leaf_values += K;
                continue;
            }
            float v;
            if (right != -1) {
                sms_refuse(why, why_size, "tree %zu node %zu: a leaf with a right child", t, old);
                return -1;
            }
            if (array_float(&a->cond, old, &v) < 0) {
                sms_refuse(why, why_size, "tree %zu node %zu: leaf value is not a number", t, old);
                return -1;
            }
            if (dart) {
                f->dart_delta[base + q] = v;
                v = dart_product(v, weight);
            }
            nd->leaf = v;
            continue;
        }
        /* XGBoost allocates a node's children together and walks to
         * left + (0 or 1); anything else is not its output. */
        if (left <= 0 || (size_t)left + 1 >= n || right != left + 1) {
            sms_refuse(why, why_size, "tree %zu node %zu: child indices %lld, %lld are invalid", t,
                       old, left, right);
            return -1;
        }
        if (seen[left] || seen[left + 1]) {
            sms_refuse(why, why_size, "tree %zu node %zu: a node is reached twice (cycle)", t, old);
            return -1;
        }
        if (feature < 0 || (unsigned long long)feature >= f->num_feature) {
            sms_refuse(why, why_size, "tree %zu node %zu: split on feature %lld of %zu", t, old,
                       feature, f->num_feature);
            return -1;
        }
        if (level[q] + 1 > MAX_DEPTH) {
            sms_refuse(why, why_size, "tree %zu is deeper than %d", t, MAX_DEPTH);
            return -1;
        }
        if (default_left != 0 && default_left != 1) {
            sms_refuse(why, why_size, "tree %zu node %zu: default_left is %lld", t, old,
                       default_left);
            return -1;
        }
        float cond = 0.0f;
        uint32_t set = 0, flags = 0;
        if (split_type == 1) {
            /* A categorical split: its split_condition is meaningless (NaN
             * or 1e-45 as XGBoost writes it). */
            if (!cat_of[old]) {
                sms_refuse(why, why_size,
                           "tree %zu node %zu: a categorical split without categories", t, old);
                return -1;
            }
            const cat_set_t *s = &f->cat_sets[cat_of[old] - 1];
            flags = CAT_NODE;
            if (s->words <= 2) {
                uint32_t mask[2] = {f->cat_bits[s->offset], 0};
                if (s->words == 2)
                    mask[1] = f->cat_bits[s->offset + 1];
                memcpy(&cond, &mask[0], sizeof cond);
                set = mask[1];
            } else {
                flags |= CAT_LARGE;
                cond = NAN;
                set = cat_of[old] - 1;
            }
            f->num_categorical++;
        } else if (split_type != 0) {
            sms_refuse(why, why_size, "tree %zu node %zu: split_type %lld", t, old, split_type);
            return -1;
        } else if (array_float(&a->cond, old, &cond) < 0) {
            sms_refuse(why, why_size, "tree %zu node %zu: split condition is not a number", t, old);
            return -1;
        }
        seen[left] = seen[left + 1] = 1;
        nd->threshold = cond;
        size_t slot = (size_t)feature + (default_left ? 0 : f->num_feature);
        nd->slot = (uint32_t)(slot * SLOT_BYTES);
        nd->left = (uint32_t)((base + count) * sizeof(node_t)) | flags;
        nd->vleaf = set; /* leaf 0.0f for numerical nodes */
        level[count] = level[count + 1] = (uint16_t)(level[q] + 1);
        if (level[count] > depth)
            depth = level[count];
        queue[count++] = (uint32_t)left;
        queue[count++] = (uint32_t)left + 1;
    }
    f->root[t] = (uint32_t)(base * sizeof(node_t));
    f->depth[t] = (uint16_t)depth;
    f->num_nodes = base + count;
    return 0;
}

/* The key of a float that is not NaN (see cnode_t). */
static uint32_t float_key(float v)
{
    uint32_t u;
    if (v == 0.0f)
        v = 0.0f; /* -0 compares equal to +0, so it takes +0's key */
    memcpy(&u, &v, sizeof u);
    return u & 0x80000000u ? ~u : u | 0x80000000u;
}

/* Writes the general-layout subtree at byte offset `off` as the complete
 * subtree at position pos, level d, of a tree of depth D (see cnode_t). */
static void fill_complete(const sms_forest_t *f, uint32_t off, cnode_t *cn, float *leaves,
                          size_t pos, unsigned d, unsigned D)
{
    const node_t *nd = (const node_t *)((const char *)f->nodes + off);
    if (d == D) {
        /* The bits as they are: a vector leaf's index (see ADD_VLEAF). */
        memcpy(&leaves[pos - ((size_t)1 << D)], &nd->leaf, sizeof nd->leaf);
        return;
    }
    bool leaf = nd->slot / SLOT_BYTES >= 2 * f->num_feature;
    /* Thresholds are finite, so their keys are above 0. */
    cn[pos].key = leaf ? UINT32_MAX : float_key(nd->threshold) - 1;
    cn[pos].slot = nd->slot;
    fill_complete(f, leaf ? off : nd->left, cn, leaves, 2 * pos, d + 1, D);
    fill_complete(f, leaf ? off : nd->left + (uint32_t)sizeof(node_t), cn, leaves, 2 * pos + 1,
                  d + 1, D);
}

/* Writes every tree of the general layout into the complete one. */
static void fill_complete_trees(sms_forest_t *f)
{
    const unsigned D = f->cdepth;
    const size_t width = (size_t)1 << D;
    for (size_t t = 0; t < f->num_trees; t++) {
        cnode_t *cn = f->cnodes + t * width;
        cn[0].key = UINT32_MAX;
        cn[0].slot = (uint32_t)(2 * f->num_feature * SLOT_BYTES);
        fill_complete(f, f->root[t], cn, f->cleaves + t * width, 1, 0, D);
    }
}

/* Moves f to the complete layout when its bounds allow; otherwise, or when
 * memory is short, f keeps the general layout, which predicts the same. */
static void make_complete(sms_forest_t *f)
{
    unsigned D = 0;
    for (size_t t = 0; t < f->num_trees; t++)
        D = f->depth[t] > D ? f->depth[t] : D;
    /* The layout compares keys, which category sets cannot use. */
    if (!is_widened(f) || D > MAX_COMPLETE_DEPTH || f->num_trees == 0 || f->num_categorical)
        return;
    size_t width = (size_t)1 << D;
    size_t tree_bytes = width * (sizeof(cnode_t) + sizeof(float));
    if (tree_bytes > MAX_COMPLETE_GROWTH * f->num_nodes * sizeof(node_t) / f->num_trees)
        return;
    f->cnodes = malloc(width * f->num_trees * sizeof *f->cnodes);
    f->cleaves = malloc(width * f->num_trees * sizeof *f->cleaves);
    if (!f->cnodes || !f->cleaves) {
        free(f->cnodes);
        free(f->cleaves);
        f->cnodes = NULL;
        f->cleaves = NULL;
        return;
    }
    f->cdepth = D;
    fill_complete_trees(f);
}

/* Finds tree t's arrays; -1 when malformed, -2 for the 2.0-3.1 layout of
 * vector leaves (values in base_weights, which 3.4 no longer reads). */
static int tree_arrays(const typed_table_t *typed, json_t *tree, tree_arrays_t *a)
{
    unsigned long long n, leaf_size = 1;
    json_t *param = sms_xjson_member(tree, "tree_param");
    json_t *leaf_vector = sms_xjson_member(param, "size_leaf_vector");
    if (string_ulong(sms_xjson_member(param, "num_nodes"), MAX_NODES, &n) < 0 || n == 0 ||
        (leaf_vector && string_ulong(leaf_vector, MAX_GROUPS, &leaf_size) < 0))
        return -1;
    a->n = (size_t)n;
    a->leaf_size = leaf_size ? (size_t)leaf_size : 1;
    a->left = array_of(typed, sms_xjson_member(tree, "left_children"));
    a->right = array_of(typed, sms_xjson_member(tree, "right_children"));
    a->feature = array_of(typed, sms_xjson_member(tree, "split_indices"));
    a->cond = array_of(typed, sms_xjson_member(tree, "split_conditions"));
    a->default_left = array_of(typed, sms_xjson_member(tree, "default_left"));
    a->split_type = array_of(typed, sms_xjson_member(tree, "split_type"));
    a->cat_nodes = array_of(typed, sms_xjson_member(tree, "categories_nodes"));
    a->cat_segments = array_of(typed, sms_xjson_member(tree, "categories_segments"));
    a->cat_sizes = array_of(typed, sms_xjson_member(tree, "categories_sizes"));
    a->categories = array_of(typed, sms_xjson_member(tree, "categories"));
    a->leaf_weights = array_of(typed, sms_xjson_member(tree, "leaf_weights"));
    const num_array_t *arrays[] = {&a->left, &a->right, &a->feature, &a->cond, &a->default_left};
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++)
        if (!array_is_array(arrays[i]) || array_size(arrays[i]) != a->n)
            return -1;
    /* split_type arrived in 1.3; older trees are all numerical. */
    if (array_present(&a->split_type) &&
        (!array_is_array(&a->split_type) || array_size(&a->split_type) != a->n))
        return -1;
    if (a->leaf_size > 1 &&
        (!array_is_array(&a->leaf_weights) || array_size(&a->leaf_weights) % a->leaf_size))
        return array_present(&a->leaf_weights) ? -1 : -2;
    a->leaves = 0;
    a->categorical = false;
    for (size_t i = 0; i < a->n; i++) {
        long long v;
        if (array_int(&a->left, i, &v) == 0 && v == -1)
            a->leaves++;
        if (array_present(&a->split_type) && array_int(&a->split_type, i, &v) == 0 && v != 0)
            a->categorical = true;
    }
    return 0;
}

/* ---- the model's UBJSON ---------------------------------------------------- */

/* Reads XGBoost's UBJSON serialisation into a JSON tree like the one
 * sms_xjson_parse gives for its JSON, except that typed arrays (every
 * per-node array of a tree) stay where they are: each becomes an empty
 * JSON array noted in the typed table (see typed_array_t), so the bulk of
 * the model is never made into JSON values. Counted and end-marked
 * arrays, objects, strings, every numeric marker, true/false/null and
 * no-ops are read; non-finite floats become "NaN", "Infinity",
 * "-Infinity" as in sms_xjson_parse. Never reads outside the bytes;
 * refuses nesting deeper than 128, duplicate keys, keys or strings that
 * are not UTF-8 or hold NUL, and trailing bytes. */
typedef struct ubj_reader {
    const unsigned char *p, *end, *start;
    typed_table_t *typed;
    char *err;
    size_t err_size;
    bool failed;
} ubj_reader_t;

#define UBJ_MAX_DEPTH 128

static json_t *ubj_fail(ubj_reader_t *r, const char *what)
{
    if (!r->failed && r->err && r->err_size)
        snprintf(r->err, r->err_size, "byte %zu: %s", (size_t)(r->p - r->start), what);
    r->failed = true;
    return NULL;
}

/* The next marker, past no-ops; 0 at the end of the bytes. */
static unsigned char ubj_marker(ubj_reader_t *r)
{
    while (r->p < r->end && *r->p == 'N')
        r->p++;
    return r->p < r->end ? *r->p++ : 0;
}

/* A count or length: an integer of marker type, 0 or more. */
static bool ubj_count(ubj_reader_t *r, unsigned char type, size_t *out)
{
    size_t size = typed_size((char)type);
    if (!size || type == 'd' || type == 'D' || (size_t)(r->end - r->p) < size) {
        ubj_fail(r, "a count or length that is not an integer");
        return false;
    }
    num_array_t one = {NULL, r->p, 1, (char)type};
    long long n = 0;
    typed_integer(&one, 0, &n);
    r->p += size;
    if (n < 0) {
        ubj_fail(r, "a negative count or length");
        return false;
    }
    *out = (size_t)n;
    return true;
}

/* A length-prefixed string (an object key, or an 'S' value). */
static const char *ubj_string(ubj_reader_t *r, size_t *len)
{
    if (!ubj_count(r, ubj_marker(r), len))
        return NULL;
    if (*len > (size_t)(r->end - r->p)) {
        ubj_fail(r, "a string longer than the bytes left");
        return NULL;
    }
    const char *s = (const char *)r->p;
    if (memchr(s, '\0', *len)) {
        ubj_fail(r, "a string holding NUL");
        return NULL;
    }
    r->p += *len;
    return s;
}

static json_t *ubj_real(double d)
{
    if (isnan(d))
        return json_string("NaN");
    if (isinf(d))
        return json_string(d > 0 ? "Infinity" : "-Infinity");
    return json_real(d);
}

static json_t *ubj_value(ubj_reader_t *r, unsigned char marker, unsigned depth);

static json_t *ubj_array(ubj_reader_t *r, unsigned depth)
{
    size_t count = 0;
    bool counted = false;
    if (r->p < r->end && *r->p == '$') {
        r->p++;
        unsigned char type = r->p < r->end ? *r->p++ : 0;
        size_t size = typed_size((char)type);
        if (!size)
            return ubj_fail(r, "a typed array of other than numbers");
        if (r->p >= r->end || *r->p++ != '#' || !ubj_count(r, ubj_marker(r), &count))
            return r->failed ? NULL : ubj_fail(r, "a typed array without its count");
        if (count > (size_t)(r->end - r->p) / size)
            return ubj_fail(r, "a typed array longer than the bytes left");
        json_t *placeholder = json_array();
        if (!placeholder || grow((void **)&r->typed->items, &r->typed->cap, r->typed->count + 1,
                                 sizeof *r->typed->items) < 0) {
            json_decref(placeholder);
            return ubj_fail(r, "out of memory");
        }
        r->typed->items[r->typed->count++] = (typed_array_t){placeholder, r->p, count, (char)type};
        r->p += count * size;
        return placeholder;
    }
    if (r->p < r->end && *r->p == '#') {
        r->p++;
        if (!ubj_count(r, ubj_marker(r), &count))
            return NULL;
        if (count > (size_t)(r->end - r->p))
            return ubj_fail(r, "an array longer than the bytes left");
        counted = true;
    }
    json_t *array = json_array();
    if (!array)
        return ubj_fail(r, "out of memory");
    for (size_t i = 0; !counted || i < count; i++) {
        unsigned char m = ubj_marker(r);
        if (!counted && m == ']')
            break;
        json_t *v = m ? ubj_value(r, m, depth + 1) : ubj_fail(r, "an array cut short");
        if (!v || json_array_append_new(array, v) < 0) {
            json_decref(array);
            return r->failed ? NULL : ubj_fail(r, "out of memory");
        }
    }
    return array;
}

static json_t *ubj_object(ubj_reader_t *r, unsigned depth)
{
    if (r->p < r->end && (*r->p == '$' || *r->p == '#'))
        return ubj_fail(r, "an optimised object");
    json_t *object = json_object();
    if (!object)
        return ubj_fail(r, "out of memory");
    for (;;) {
        while (r->p < r->end && *r->p == 'N')
            r->p++;
        if (r->p < r->end && *r->p == '}') {
            r->p++;
            return object;
        }
        size_t len = 0;
        const char *key = ubj_string(r, &len);
        unsigned char m = key ? ubj_marker(r) : 0;
        json_t *v = !key ? NULL
                    : m  ? ubj_value(r, m, depth + 1)
                         : ubj_fail(r, "an object cut short");
        if (v && json_object_getn(object, key, len)) {
            json_decref(v);
            ubj_fail(r, "a duplicate key");
        } else if (v && json_object_setn_new(object, key, len, v) < 0) {
            ubj_fail(r, "a key that is not UTF-8"); /* v went with the failed call */
        }
        if (r->failed) {
            json_decref(object);
            return NULL;
        }
    }
}

static json_t *ubj_value(ubj_reader_t *r, unsigned char marker, unsigned depth)
{
    if (depth > UBJ_MAX_DEPTH)
        return ubj_fail(r, "nested deeper than 128");
    switch (marker) {
    case '{':
        return ubj_object(r, depth);
    case '[':
        return ubj_array(r, depth);
    case 'Z':
        return json_null();
    case 'T':
        return json_true();
    case 'F':
        return json_false();
    case 'S': {
        size_t len = 0;
        const char *s = ubj_string(r, &len);
        json_t *v = s ? json_stringn(s, len) : NULL;
        return v ? v : r->failed ? NULL : ubj_fail(r, "a string that is not UTF-8");
    }
    case 'C': {
        if (r->p >= r->end || *r->p == 0 || *r->p > 0x7f)
            return ubj_fail(r, "a char that is not ASCII");
        return json_stringn((const char *)r->p++, 1);
    }
    case 'i':
    case 'U':
    case 'I':
    case 'l':
    case 'L':
    case 'd':
    case 'D': {
        size_t size = typed_size((char)marker);
        if ((size_t)(r->end - r->p) < size)
            return ubj_fail(r, "a number cut short");
        num_array_t one = {NULL, r->p, 1, (char)marker};
        r->p += size;
        long long n;
        if (typed_integer(&one, 0, &n))
            return json_integer(n);
        return ubj_real(typed_number(&one, 0));
    }
    }
    r->p--;
    return ubj_fail(r, "an unknown marker");
}

/* The JSON tree of a whole UBJSON model, its typed arrays noted in typed
 * (which the caller frees, also on failure); NULL with "byte N: what" in
 * err. */
static json_t *ubj_skeleton(const unsigned char *bytes, size_t len, typed_table_t *typed, char *err,
                            size_t err_size)
{
    ubj_reader_t r = {bytes, bytes + len, bytes, typed, err, err_size, false};
    unsigned char m = ubj_marker(&r);
    json_t *root = m ? ubj_value(&r, m, 1) : ubj_fail(&r, "no value");
    while (root && r.p < r.end && *r.p == 'N')
        r.p++;
    if (root && r.p != r.end) {
        json_decref(root);
        return ubj_fail(&r, "bytes after the value");
    }
    return root;
}

/* Compiles the parsed model root, whose typed arrays (UBJSON) are in typed
 * (NULL for JSON). */
static sms_forest_t *compile_model(json_t *root, const typed_table_t *typed, char *why,
                                   size_t why_size)
{
    sms_forest_t *f = NULL;
    uint32_t *queue = NULL, *cat_of = NULL;
    uint16_t *level = NULL;
    unsigned char *seen = NULL;
    tree_arrays_t *arrays = NULL;

    json_t *booster = sms_xjson_member(sms_xjson_member(root, "learner"), "gradient_booster");
    const char *booster_name = json_string_value(sms_xjson_member(booster, "name"));
    if (!booster_name) {
        sms_refuse(why, why_size, "model JSON lacks the booster");
        goto fail;
    }
    /* 3.4 saves dart as gbtree with "weight_drop" beside the trees; older
     * releases as "dart", the trees under "gbtree", the weights beside it.
     * A booster-level weight_drop wins, as in GBTree::LoadModel. */
    json_t *model;
    if (!strcmp(booster_name, "dart"))
        model = sms_xjson_member(sms_xjson_member(booster, "gbtree"), "model");
    else if (!strcmp(booster_name, "gbtree"))
        model = sms_xjson_member(booster, "model");
    else {
        sms_refuse(why, why_size, "booster %s is not supported by the native tree evaluator",
                   booster_name);
        goto fail;
    }
    json_t *trees = sms_xjson_member(model, "trees");
    num_array_t tree_info = array_of(typed, sms_xjson_member(model, "tree_info"));
    json_t *weights_json = sms_xjson_member(booster, "weight_drop");
    if (!weights_json)
        weights_json = sms_xjson_member(model, "weight_drop");
    num_array_t weights = array_of(typed, weights_json);
    bool dart = weights_json != NULL;
    json_t *gparam = sms_xjson_member(model, "gbtree_model_param");
    unsigned long long declared_trees;
    if (!json_is_array(trees) || !array_is_array(&tree_info) ||
        array_size(&tree_info) != json_array_size(trees) ||
        (dart && (!array_is_array(&weights) || array_size(&weights) != json_array_size(trees))) ||
        string_ulong(sms_xjson_member(gparam, "num_trees"), SIZE_MAX, &declared_trees) < 0 ||
        declared_trees != json_array_size(trees)) {
        sms_refuse(why, why_size, "the booster's trees, tree_info%s do not match",
                   dart ? ", weight_drop" : "");
        goto fail;
    }
    size_t num_trees = json_array_size(trees);

    f = calloc(1, sizeof *f);
    if (!f)
        goto oom;
    if (sms_objective_read(root, num_trees > 0, &f->obj, why, why_size) < 0)
        goto fail;
    f->num_trees = num_trees;
    f->num_feature = f->obj.num_feature;
    f->num_group = f->obj.num_group;
    f->num_output = f->obj.num_output;

    arrays = calloc(num_trees ? num_trees : 1, sizeof *arrays);
    f->root = calloc(num_trees ? num_trees : 1, sizeof *f->root);
    f->depth = calloc(num_trees ? num_trees : 1, sizeof *f->depth);
    f->group = calloc(num_trees ? num_trees : 1, sizeof *f->group);
    if (!arrays || !f->root || !f->depth || !f->group)
        goto oom;
    size_t total = 0, widest = 1, leaf_values = 0;
    f->leaf_size = 1;
    for (size_t t = 0; t < num_trees; t++) {
        tree_arrays_t *a = &arrays[t];
        int rc = tree_arrays(typed, json_array_get(trees, t), a);
        if (rc == -2) {
            sms_refuse(why, why_size,
                       "tree %zu has vector leaves without leaf_weights (as XGBoost 2.0-3.1 saved "
                       "them)",
                       t);
            goto fail;
        }
        long long g;
        if (rc < 0 || array_integer(&tree_info, t, &g) < 0 || g < 0 ||
            (unsigned long long)g >= f->num_group) {
            sms_refuse(why, why_size, "tree %zu is malformed (arrays, sizes or output group)", t);
            goto fail;
        }
        if (t == 0)
            f->leaf_size = a->leaf_size;
        if (a->leaf_size != f->leaf_size ||
            (a->leaf_size > 1 && (a->leaf_size != f->num_group || f->obj.multiclass))) {
            sms_refuse(why, why_size,
                       "tree %zu has %zu values per leaf, the model %zu outputs%s (tree 0: %zu)", t,
                       a->leaf_size, f->num_group, f->obj.multiclass ? " (classes)" : "",
                       f->leaf_size);
            goto fail;
        }
        f->group[t] = (uint32_t)g;
        if (a->n > MAX_NODES - total) {
            sms_refuse(why, why_size, "the model has more than %u nodes", MAX_NODES);
            goto fail;
        }
        total += a->n;
        if (a->n > widest)
            widest = a->n;
        if (a->leaf_size > 1) {
            if (a->leaves > (MAX_LEAF_VALUES - leaf_values) / a->leaf_size) {
                sms_refuse(why, why_size, "the model has more than %u leaf values",
                           MAX_LEAF_VALUES);
                goto fail;
            }
            leaf_values += a->leaves * a->leaf_size;
        }
    }
    f->nodes = malloc((total ? total : 1) * sizeof *f->nodes);
    queue = malloc(widest * sizeof *queue);
    level = malloc(widest * sizeof *level);
    seen = malloc(widest);
    cat_of = malloc(widest * sizeof *cat_of);
    if (!f->nodes || !queue || !level || !seen || !cat_of)
        goto oom;
    if (f->leaf_size > 1) {
        f->leaf_values = malloc((leaf_values ? leaf_values : 1) * sizeof *f->leaf_values);
        if (!f->leaf_values)
            goto oom;
        if (dart) {
            f->leaf_raw = malloc((leaf_values ? leaf_values : 1) * sizeof *f->leaf_raw);
            f->leaf_tree = malloc((leaf_values ? leaf_values : 1) * sizeof *f->leaf_tree);
            if (!f->leaf_raw || !f->leaf_tree)
                goto oom;
        }
    }
    if (dart) {
        f->dart_delta = malloc((total ? total : 1) * sizeof *f->dart_delta);
        f->dart_weight = malloc((num_trees ? num_trees : 1) * sizeof *f->dart_weight);
        if (!f->dart_delta || !f->dart_weight)
            goto oom;
    }
    for (size_t t = 0; t < num_trees; t++) {
        float w = 1.0f;
        if (dart && array_float(&weights, t, &w) < 0) {
            sms_refuse(why, why_size, "weight_drop[%zu] is not a float", t);
            goto fail;
        }
        if (dart)
            f->dart_weight[t] = w;
        int rc = tree_categories(f, t, &arrays[t], cat_of, why, why_size);
        if (rc == -2)
            goto oom;
        if (rc < 0 ||
            compile_tree(f, t, &arrays[t], w, dart, cat_of, queue, level, seen, why, why_size) < 0)
            goto fail;
    }
    if (build_probe_values(f) < 0)
        goto oom;
    make_complete(f);
    free(arrays);
    free(queue);
    free(level);
    free(seen);
    free(cat_of);
    return f;
oom:
    sms_refuse(why, why_size, "out of memory compiling the model");
fail:
    free(arrays);
    free(queue);
    free(level);
    free(seen);
    free(cat_of);
    sms_forest_free(f);
    return NULL;
}

json_t *sms_objective_parse_model(const char *json, size_t len, char *why, size_t why_size)
{
    if (why && why_size)
        why[0] = '\0';
    char perr[160];
    json_t *root = sms_xjson_parse(json, len, perr, sizeof perr);
    if (!root)
        return sms_refuse(why, why_size, "model JSON does not parse: %s", perr);
    return root;
}

sms_forest_t *sms_forest_compile(const char *json, size_t len, char *why, size_t why_size)
{
    json_t *root = sms_objective_parse_model(json, len, why, why_size);
    if (!root)
        return NULL;
    sms_forest_t *f = compile_model(root, NULL, why, why_size);
    json_decref(root);
    return f;
}

sms_forest_t *sms_forest_compile_ubj(const unsigned char *ubj, size_t len, char *why,
                                     size_t why_size)
{
    if (why && why_size)
        why[0] = '\0';
    char perr[160];
    typed_table_t typed = {NULL, 0, 0};
    json_t *root = ubj_skeleton(ubj, len, &typed, perr, sizeof perr);
    if (!root) {
        free(typed.items);
        return sms_refuse(why, why_size, "model UBJSON does not parse: %s", perr);
    }
    if (typed.count)
        qsort(typed.items, typed.count, sizeof *typed.items, compare_placeholder);
    sms_forest_t *f = compile_model(root, &typed, why, why_size);
    json_decref(root);
    free(typed.items);
    return f;
}

void sms_forest_free(sms_forest_t *f)
{
    if (!f)
        return;
    free(f->nodes);
    free(f->cnodes);
    free(f->cleaves);
    free(f->root);
    free(f->depth);
    free(f->group);
    free(f->leaf_values);
    free(f->leaf_raw);
    free(f->leaf_tree);
    free(f->cat_sets);
    free(f->cat_bits);
    free(f->thresholds);
    free(f->threshold_start);
    free(f->categories);
    free(f->category_start);
    free(f->category_cap);
    free(f->dart_weight);
    free(f->dart_delta);
    free(f);
}

void sms_forest_set_fused(sms_forest_t *f, bool fused)
{
    assert(!f->sealed);
    if (!f->dart_weight || f->fused == fused)
        return;
    for (size_t t = 0; t < f->num_trees; t++) {
        size_t end = t + 1 < f->num_trees ? f->root[t + 1] / sizeof(node_t) : f->num_nodes;
        for (size_t i = f->root[t] / sizeof(node_t); i < end; i++)
            if (is_leaf(f, i) && f->leaf_size == 1)
                f->nodes[i].leaf =
                    fused ? f->dart_delta[i] : dart_product(f->dart_delta[i], f->dart_weight[t]);
    }
    for (size_t i = 0; f->leaf_raw && i < f->num_leaf_values; i++) {
        float w = f->dart_weight[f->leaf_tree[i / f->leaf_size]];
        f->leaf_values[i] = fused ? f->leaf_raw[i] : dart_product(f->leaf_raw[i], w);
    }
    f->fused = fused;
    if (f->cnodes)
        fill_complete_trees(f);
}

/* Frees what p points to and forgets it. */
#define FREE_AND_FORGET(p) (free(p), (p) = NULL)

void sms_forest_seal(sms_forest_t *f)
{
    FREE_AND_FORGET(f->thresholds);
    FREE_AND_FORGET(f->threshold_start);
    FREE_AND_FORGET(f->categories);
    FREE_AND_FORGET(f->category_start);
    FREE_AND_FORGET(f->category_cap);
    FREE_AND_FORGET(f->dart_delta);
    FREE_AND_FORGET(f->leaf_raw);
    FREE_AND_FORGET(f->leaf_tree);
    /* An unfused walk adds leaves that already hold leaf * weight. */
    if (!f->fused)
        FREE_AND_FORGET(f->dart_weight);
    /* The complete layout's walks read cnodes, cleaves and group only. */
    if (f->cnodes) {
        FREE_AND_FORGET(f->nodes);
        FREE_AND_FORGET(f->root);
        FREE_AND_FORGET(f->depth);
    }
    f->sealed = true;
}

bool sms_forest_fused(const sms_forest_t *f)
{
    return f->fused;
}

void sms_forest_set_writer(sms_forest_t *f, bool sum_trees_first, bool unsorted_quantiles)
{
    assert(!f->sealed);
    f->sum_first = sum_trees_first && !f->dart_weight && f->leaf_size == 1;
    f->obj.unsorted_quantiles = unsorted_quantiles;
}

bool sms_forest_sums_first(const sms_forest_t *f)
{
    return f->sum_first;
}

const sms_objective_t *sms_forest_objective(const sms_forest_t *f)
{
    return &f->obj;
}

/* A row's accumulator before its trees: the base margins, or zeros when the
 * writer summed the trees first. */
static inline void start_row(const sms_forest_t *f, float *acc)
{
    if (f->sum_first)
        memset(acc, 0, f->num_group * sizeof *acc);
    else
        memcpy(acc, f->obj.base_margin, f->num_group * sizeof *acc);
}

/* A row's values from its accumulator (overwritten as scratch). */
static inline void finish_row(const sms_forest_t *f, float *acc, float *out)
{
    if (f->sum_first)
        for (size_t g = 0; g < f->num_group; g++)
            acc[g] = f->obj.base_margin[g] + acc[g];
    sms_objective_finish(&f->obj, acc, out);
}

size_t sms_forest_num_feature(const sms_forest_t *f)
{
    return f->num_feature;
}
size_t sms_forest_num_output(const sms_forest_t *f)
{
    return f->num_output;
}
size_t sms_forest_num_trees(const sms_forest_t *f)
{
    return f->num_trees;
}
size_t sms_forest_num_nodes(const sms_forest_t *f)
{
    return f->num_nodes;
}
size_t sms_forest_num_categorical(const sms_forest_t *f)
{
    return f->num_categorical;
}
size_t sms_forest_leaf_size(const sms_forest_t *f)
{
    return f->leaf_size;
}

size_t sms_forest_bytes(const sms_forest_t *f)
{
    if (!f)
        return 0;
    const void *owned[] = {f,
                           f->nodes,
                           f->cnodes,
                           f->cleaves,
                           f->root,
                           f->depth,
                           f->group,
                           f->leaf_values,
                           f->leaf_raw,
                           f->leaf_tree,
                           f->cat_sets,
                           f->cat_bits,
                           f->thresholds,
                           f->threshold_start,
                           f->categories,
                           f->category_start,
                           f->category_cap,
                           f->dart_weight,
                           f->dart_delta};
    size_t bytes = 0;
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
        bytes += malloc_usable_size((void *)owned[i]);
    return bytes;
}
/* ---- prediction ----------------------------------------------------------- */

/* Writes n <= BLOCK_ROWS rows into the widened block (see node_t): a
 * missing value is -inf in the first copy and stays NaN in the second,
 * where `NaN < threshold` is false as +inf's would be. */
static void widen(const float *x, size_t n, size_t nf, float *wide)
{
    for (size_t r = 0; r < n; r++) {
        const float *row = x + r * nf;
        for (size_t j = 0; j < nf; j++) {
            float v = row[j];
            wide[j * BLOCK_ROWS + r] = v == v ? v : -INFINITY;
            wide[(nf + j) * BLOCK_ROWS + r] = v;
        }
        wide[2 * nf * BLOCK_ROWS + r] = 0.0f;
    }
}

/* Whether category value v (not NaN) goes right at a categorical node:
 * common::Decision sends a value right when it is a valid category
 * (0 <= v < 2^24, truncated to an integer) whose bit is set in the node's
 * set; negative values, 2^24 and above, and categories past the set's
 * bitset go left. */
static inline bool category_goes_right(const sms_forest_t *f, uint32_t set, float v)
{
    if (!(v >= 0.0f && v < (float)MAX_CATEGORY))
        return false;
    uint32_t c = (uint32_t)v;
    const cat_set_t *s = &f->cat_sets[set];
    return c / 32 < s->words && (f->cat_bits[s->offset + c / 32] >> (c % 32) & 1u);
}

#define NODE(off) ((const node_t *)(nodes + (off)))

/* The walks below are written once and instantiated four times by
 * predict_rows: `fused` and `cat` (the model has categorical splits) are
 * constants in each copy, so the common case keeps its plain additions and
 * branch-free steps. */
#define WALK static inline __attribute__((always_inline)) void

/* Adds a leaf a walk reached in tree t to a margin (see struct sms_forest):
 * fused, d * weight + margin in one rounding, as fmaf does on every
 * platform; else leaf + margin, the leaf holding the rounded product. */
#define SUM(margin, leaf, t)                                                                       \
    ((margin) = fused ? fmaf((leaf), weight[t], (margin)) : (margin) + (leaf))

/* Adds the leaf node nd that a walk reached in tree t to one row's margins
 * (row_acc): a scalar leaf to its tree's group, a vector leaf's K values to
 * all K margins. Needs f, K (the leaf size), weight and fused in scope. */
#define ADD_LEAF(row_acc, nd, t)                                                                   \
    do {                                                                                           \
        if (K == 1) {                                                                              \
            SUM((row_acc)[f->group[t]], (nd)->leaf, t);                                            \
        } else {                                                                                   \
            const float *v_ = f->leaf_values + (size_t)(nd)->vleaf * K;                            \
            for (size_t k_ = 0; k_ < K; k_++)                                                      \
                SUM((row_acc)[k_], v_[k_], t);                                                     \
        }                                                                                          \
    } while (0)

/* Whether categorical node nd sends value v (NaN: a missing value whose
 * default is right) right. */
static inline uint32_t category_right(const sms_forest_t *f, const node_t *nd, float v)
{
    if (nd->left & CAT_LARGE)
        return v != v || category_goes_right(f, nd->vleaf, v);
    uint64_t mask;
    memcpy(&mask, &nd->threshold, sizeof mask);
    /* On the bits, without float selects (which compile to branches):
     * 0 <= v < 64 is 0 <= bits < bits of 64, once -0 is taken as +0. */
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    uint32_t magnitude = u & 0x7fffffffu;
    uint32_t valid = (uint32_t)(magnitude < 0x42800000u) & ((u >> 31 ^ 1u) | (magnitude == 0));
    uint32_t in_range = magnitude & (0u - valid);
    float category;
    memcpy(&category, &in_range, sizeof category);
    uint32_t in_set = valid & (uint32_t)(mask >> (uint32_t)category);
    return (uint32_t)(v != v) | (in_set & 1u);
}

/* One step down for column r of the widened block. With `cat`, a node may
 * be categorical (see node_t): the step computes both decisions and keeps
 * one without a branch, as categorical nodes are many and mixed with
 * numerical ones, so that a branch on the kind of node would be
 * mispredicted every few steps (only large sets, rarer, take one). */
static inline uint32_t step(const sms_forest_t *f, const char *nodes, uint32_t off,
                            const char *wide, size_t r, const bool cat)
{
    const node_t *nd = NODE(off);
    float v = *(const float *)(wide + nd->slot + r * sizeof(float));
    uint32_t right = !(v < nd->threshold);
    if (!cat)
        return nd->left + right * (uint32_t)sizeof(node_t);
    uint32_t left = nd->left, is_cat = 0u - (left & CAT_NODE);
    right = (right & ~is_cat) | (category_right(f, nd, v) & is_cat);
    return (left & ~LEFT_FLAGS) + right * (uint32_t)sizeof(node_t);
}

/* Adds every tree's leaf, in tree order, to acc (BLOCK_ROWS rows x
 * num_group margins): the rows' eight walks through a tree are independent,
 * so their memory latencies overlap. */
WALK walk_block(const sms_forest_t *f, const float *wide_block, float *acc, const bool fused,
                const bool cat)
{
    const char *nodes = (const char *)f->nodes, *wide = (const char *)wide_block;
    const float *weight = f->dart_weight;
    const size_t ng = f->num_group, K = f->leaf_size;
    for (size_t t = 0; t < f->num_trees; t++) {
        uint32_t o0, o1, o2, o3, o4, o5, o6, o7;
        o0 = o1 = o2 = o3 = o4 = o5 = o6 = o7 = f->root[t];
        for (unsigned d = f->depth[t]; d; d--) {
            o0 = step(f, nodes, o0, wide, 0, cat);
            o1 = step(f, nodes, o1, wide, 1, cat);
            o2 = step(f, nodes, o2, wide, 2, cat);
            o3 = step(f, nodes, o3, wide, 3, cat);
            o4 = step(f, nodes, o4, wide, 4, cat);
            o5 = step(f, nodes, o5, wide, 5, cat);
            o6 = step(f, nodes, o6, wide, 6, cat);
            o7 = step(f, nodes, o7, wide, 7, cat);
        }
        ADD_LEAF(acc + 0 * ng, NODE(o0), t);
        ADD_LEAF(acc + 1 * ng, NODE(o1), t);
        ADD_LEAF(acc + 2 * ng, NODE(o2), t);
        ADD_LEAF(acc + 3 * ng, NODE(o3), t);
        ADD_LEAF(acc + 4 * ng, NODE(o4), t);
        ADD_LEAF(acc + 5 * ng, NODE(o5), t);
        ADD_LEAF(acc + 6 * ng, NODE(o6), t);
        ADD_LEAF(acc + 7 * ng, NODE(o7), t);
    }
}

/* One row (column 0 of a widened block), eight trees at a time: the walks
 * of different trees overlap while each tree's leaf is still added in tree
 * order. */
WALK walk_row(const sms_forest_t *f, const float *wide_block, float *acc, const bool fused,
              const bool cat)
{
    const char *nodes = (const char *)f->nodes, *wide = (const char *)wide_block;
    const uint32_t *root = f->root;
    const float *weight = f->dart_weight;
    const size_t K = f->leaf_size;
    size_t t = 0;
    for (; t + 8 <= f->num_trees; t += 8) {
        uint32_t o0 = root[t], o1 = root[t + 1], o2 = root[t + 2], o3 = root[t + 3];
        uint32_t o4 = root[t + 4], o5 = root[t + 5], o6 = root[t + 6], o7 = root[t + 7];
        unsigned depth = 0;
        for (size_t k = t; k < t + 8; k++)
            depth = f->depth[k] > depth ? f->depth[k] : depth;
        for (unsigned d = depth; d; d--) {
            o0 = step(f, nodes, o0, wide, 0, cat);
            o1 = step(f, nodes, o1, wide, 0, cat);
            o2 = step(f, nodes, o2, wide, 0, cat);
            o3 = step(f, nodes, o3, wide, 0, cat);
            o4 = step(f, nodes, o4, wide, 0, cat);
            o5 = step(f, nodes, o5, wide, 0, cat);
            o6 = step(f, nodes, o6, wide, 0, cat);
            o7 = step(f, nodes, o7, wide, 0, cat);
        }
        ADD_LEAF(acc, NODE(o0), t);
        ADD_LEAF(acc, NODE(o1), t + 1);
        ADD_LEAF(acc, NODE(o2), t + 2);
        ADD_LEAF(acc, NODE(o3), t + 3);
        ADD_LEAF(acc, NODE(o4), t + 4);
        ADD_LEAF(acc, NODE(o5), t + 5);
        ADD_LEAF(acc, NODE(o6), t + 6);
        ADD_LEAF(acc, NODE(o7), t + 7);
    }
    for (; t < f->num_trees; t++) {
        uint32_t o = root[t];
        for (unsigned d = f->depth[t]; d; d--)
            o = step(f, nodes, o, wide, 0, cat);
        ADD_LEAF(acc, NODE(o), t);
    }
}

/* widen for the complete layout: keys in place of floats (see cnode_t). */
static void widen_keys(const float *x, size_t n, size_t nf, float *wide_block)
{
    char *wide = (char *)wide_block;
    for (size_t r = 0; r < n; r++) {
        const float *row = x + r * nf;
        for (size_t j = 0; j < nf; j++) {
            float v = row[j];
            uint32_t left = v == v ? float_key(v) : 0, right = v == v ? left : UINT32_MAX;
            memcpy(wide + j * SLOT_BYTES + r * sizeof left, &left, sizeof left);
            memcpy(wide + (nf + j) * SLOT_BYTES + r * sizeof right, &right, sizeof right);
        }
        memset(wide + 2 * nf * SLOT_BYTES + r * sizeof(uint32_t), 0, sizeof(uint32_t));
    }
}

static inline uint32_t row_key(const char *p)
{
    uint32_t k;
    memcpy(&k, p, sizeof k);
    return k;
}

/* One step down the complete tree cn for column r of the widened keys. */
#define CSTEP(cn, i, r)                                                                            \
    i = 2 * i + ((cn)[i].key < row_key(wide + (cn)[i].slot + (r) * sizeof(uint32_t)))

/* Eight rows' steps down one tree, i##0 to i##7 for columns 0 to 7. */
#define CSTEP8(cn, i)                                                                              \
    do {                                                                                           \
        CSTEP(cn, i##0, 0);                                                                        \
        CSTEP(cn, i##1, 1);                                                                        \
        CSTEP(cn, i##2, 2);                                                                        \
        CSTEP(cn, i##3, 3);                                                                        \
        CSTEP(cn, i##4, 4);                                                                        \
        CSTEP(cn, i##5, 5);                                                                        \
        CSTEP(cn, i##6, 6);                                                                        \
        CSTEP(cn, i##7, 7);                                                                        \
    } while (0)

/* Adds the vector leaf whose index cleaves entry `entry` holds (see
 * fill_complete) to one row's K margins. */
#define ADD_VLEAF(row_acc, entry, t)                                                               \
    do {                                                                                           \
        uint32_t b_;                                                                               \
        memcpy(&b_, &(entry), sizeof b_);                                                          \
        const float *v_ = f->leaf_values + (size_t)b_ * K;                                         \
        for (size_t k_ = 0; k_ < K; k_++)                                                          \
            SUM((row_acc)[k_], v_[k_], t);                                                         \
    } while (0)

/* Adds the leaves the eight rows reached in tree t, leaf + i##r, to their
 * margins: s0 to s7 with one output group, acc (stride ng) at group g with
 * more, all K margins of a row with vector leaves. */
#define ADD_LEAVES8(leaf, i, t, g)                                                                 \
    do {                                                                                           \
        if (K > 1) {                                                                               \
            ADD_VLEAF(acc + 0 * ng, (leaf)[i##0], t);                                              \
            ADD_VLEAF(acc + 1 * ng, (leaf)[i##1], t);                                              \
            ADD_VLEAF(acc + 2 * ng, (leaf)[i##2], t);                                              \
            ADD_VLEAF(acc + 3 * ng, (leaf)[i##3], t);                                              \
            ADD_VLEAF(acc + 4 * ng, (leaf)[i##4], t);                                              \
            ADD_VLEAF(acc + 5 * ng, (leaf)[i##5], t);                                              \
            ADD_VLEAF(acc + 6 * ng, (leaf)[i##6], t);                                              \
            ADD_VLEAF(acc + 7 * ng, (leaf)[i##7], t);                                              \
        } else if (ng == 1) {                                                                      \
            SUM(s0, (leaf)[i##0], t);                                                              \
            SUM(s1, (leaf)[i##1], t);                                                              \
            SUM(s2, (leaf)[i##2], t);                                                              \
            SUM(s3, (leaf)[i##3], t);                                                              \
            SUM(s4, (leaf)[i##4], t);                                                              \
            SUM(s5, (leaf)[i##5], t);                                                              \
            SUM(s6, (leaf)[i##6], t);                                                              \
            SUM(s7, (leaf)[i##7], t);                                                              \
        } else {                                                                                   \
            float *a = acc + (g);                                                                  \
            SUM(a[0 * ng], (leaf)[i##0], t);                                                       \
            SUM(a[1 * ng], (leaf)[i##1], t);                                                       \
            SUM(a[2 * ng], (leaf)[i##2], t);                                                       \
            SUM(a[3 * ng], (leaf)[i##3], t);                                                       \
            SUM(a[4 * ng], (leaf)[i##4], t);                                                       \
            SUM(a[5 * ng], (leaf)[i##5], t);                                                       \
            SUM(a[6 * ng], (leaf)[i##6], t);                                                       \
            SUM(a[7 * ng], (leaf)[i##7], t);                                                       \
        }                                                                                          \
    } while (0)

/* walk_block on the complete layout, two trees at a time: sixteen
 * independent walks hide more of each step's load latency than eight, and
 * the first tree's leaves are still added before the second's. With one
 * output group the margins stay in registers. */
WALK walk_block_complete(const sms_forest_t *f, const float *wide_block, float *acc,
                         const bool fused)
{
    const char *wide = (const char *)wide_block;
    const float *weight = f->dart_weight;
    const unsigned D = f->cdepth;
    const size_t width = (size_t)1 << D, ng = f->num_group, K = f->leaf_size;
    const cnode_t *cn = f->cnodes;
    /* A walk ends at i in [width, 2 width): leaf i - width of its tree.
     * Tree t's leaves start at cleaves + t width and tree t + 1's one width
     * further, so the second tree's j index cleaves + t width as they are. */
    const float *cleaves = f->cleaves;
    float s0 = acc[0 * ng], s1 = acc[1 * ng], s2 = acc[2 * ng], s3 = acc[3 * ng];
    float s4 = acc[4 * ng], s5 = acc[5 * ng], s6 = acc[6 * ng], s7 = acc[7 * ng];
    size_t t = 0;
    for (; t + 2 <= f->num_trees; t += 2, cn += 2 * width) {
        const cnode_t *cb = cn + width;
        size_t i0 = 1, i1 = 1, i2 = 1, i3 = 1, i4 = 1, i5 = 1, i6 = 1, i7 = 1;
        size_t j0 = 1, j1 = 1, j2 = 1, j3 = 1, j4 = 1, j5 = 1, j6 = 1, j7 = 1;
        for (unsigned d = D; d; d--) {
            CSTEP8(cn, i);
            CSTEP8(cb, j);
        }
        i0 -= width, i1 -= width, i2 -= width, i3 -= width;
        i4 -= width, i5 -= width, i6 -= width, i7 -= width;
        ADD_LEAVES8(cleaves + t * width, i, t, f->group[t]);
        ADD_LEAVES8(cleaves + t * width, j, t + 1, f->group[t + 1]);
    }
    if (t < f->num_trees) {
        size_t i0 = 1, i1 = 1, i2 = 1, i3 = 1, i4 = 1, i5 = 1, i6 = 1, i7 = 1;
        for (unsigned d = D; d; d--)
            CSTEP8(cn, i);
        i0 -= width, i1 -= width, i2 -= width, i3 -= width;
        i4 -= width, i5 -= width, i6 -= width, i7 -= width;
        ADD_LEAVES8(cleaves + t * width, i, t, f->group[t]);
    }
    if (ng == 1) {
        acc[0] = s0;
        acc[1] = s1;
        acc[2] = s2;
        acc[3] = s3;
        acc[4] = s4;
        acc[5] = s5;
        acc[6] = s6;
        acc[7] = s7;
    }
}

/* walk_row on the complete layout. */
WALK walk_row_complete(const sms_forest_t *f, const float *wide_block, float *acc, const bool fused)
{
    const char *wide = (const char *)wide_block;
    const float *weight = f->dart_weight;
    const unsigned D = f->cdepth;
    const size_t width = (size_t)1 << D, K = f->leaf_size;
    const uint32_t *group = f->group;
    size_t t = 0;
    for (; t + 8 <= f->num_trees; t += 8) {
        const cnode_t *c0 = f->cnodes + t * width;
        size_t i0 = 1, i1 = 1, i2 = 1, i3 = 1, i4 = 1, i5 = 1, i6 = 1, i7 = 1;
        for (unsigned d = D; d; d--) {
            const cnode_t *cn = c0;
            CSTEP(cn, i0, 0);
            cn += width;
            CSTEP(cn, i1, 0);
            cn += width;
            CSTEP(cn, i2, 0);
            cn += width;
            CSTEP(cn, i3, 0);
            cn += width;
            CSTEP(cn, i4, 0);
            cn += width;
            CSTEP(cn, i5, 0);
            cn += width;
            CSTEP(cn, i6, 0);
            cn += width;
            CSTEP(cn, i7, 0);
        }
        /* Leaf i of tree t + k is at (t + k) * width + i - width. */
        const float *leaf = f->cleaves + t * width;
        if (K > 1) {
            ADD_VLEAF(acc, leaf[i0 - width], t);
            ADD_VLEAF(acc, leaf[i1], t + 1);
            ADD_VLEAF(acc, leaf[width + i2], t + 2);
            ADD_VLEAF(acc, leaf[2 * width + i3], t + 3);
            ADD_VLEAF(acc, leaf[3 * width + i4], t + 4);
            ADD_VLEAF(acc, leaf[4 * width + i5], t + 5);
            ADD_VLEAF(acc, leaf[5 * width + i6], t + 6);
            ADD_VLEAF(acc, leaf[6 * width + i7], t + 7);
            continue;
        }
        SUM(acc[group[t]], leaf[i0 - width], t);
        SUM(acc[group[t + 1]], leaf[i1], t + 1);
        SUM(acc[group[t + 2]], leaf[width + i2], t + 2);
        SUM(acc[group[t + 3]], leaf[2 * width + i3], t + 3);
        SUM(acc[group[t + 4]], leaf[3 * width + i4], t + 4);
        SUM(acc[group[t + 5]], leaf[4 * width + i5], t + 5);
        SUM(acc[group[t + 6]], leaf[5 * width + i6], t + 6);
        SUM(acc[group[t + 7]], leaf[6 * width + i7], t + 7);
    }
    for (; t < f->num_trees; t++) {
        const cnode_t *cn = f->cnodes + t * width;
        size_t i = 1;
        for (unsigned d = D; d; d--)
            CSTEP(cn, i, 0);
        if (K > 1)
            ADD_VLEAF(acc, f->cleaves[t * width + i - width], t);
        else
            SUM(acc[group[t]], f->cleaves[t * width + i - width], t);
    }
}

/* walk_row on the row itself, for rows too wide to widen on the stack. */
WALK walk_row_unwidened(const sms_forest_t *f, const float *row, float *acc, const bool fused)
{
    const char *nodes = (const char *)f->nodes;
    const float *weight = f->dart_weight;
    const size_t nf = f->num_feature;
    for (size_t t = 0; t < f->num_trees; t++) {
        uint32_t o = f->root[t];
        for (unsigned d = f->depth[t]; d; d--) {
            const node_t *nd = NODE(o);
            size_t slot = nd->slot / SLOT_BYTES;
            if (slot >= 2 * nf)
                break;
            bool right_default = slot >= nf;
            float v = row[right_default ? slot - nf : slot];
            bool right = v != v ? right_default : !(v < nd->threshold);
            o = nd->left + (right ? (uint32_t)sizeof(node_t) : 0u);
        }
        SUM(acc[f->group[t]], NODE(o)->leaf, t);
    }
}

/* ---- rows too wide to widen, with categorical splits or vector leaves ---- */

/* One step down for a row as it is: a missing value takes the node's
 * default direction, a categorical node tests its set, a numerical one
 * `value < threshold`; a leaf stays where it is. */
static inline uint32_t generic_step(const sms_forest_t *f, uint32_t off, const float *row)
{
    const node_t *nd = (const node_t *)((const char *)f->nodes + off);
    const size_t nf = f->num_feature, slot = nd->slot / SLOT_BYTES;
    if (slot >= 2 * nf)
        return off;
    bool right_default = slot >= nf;
    float v = row[right_default ? slot - nf : slot];
    bool right;
    if (v != v)
        right = right_default;
    else if (nd->left & CAT_NODE)
        right = category_right(f, nd, v);
    else
        right = !(v < nd->threshold);
    return (nd->left & ~LEFT_FLAGS) + (right ? (uint32_t)sizeof(node_t) : 0u);
}

/* Adds every tree's leaf, in tree order, to acc (n <= BLOCK_ROWS rows of x
 * as they are, x num_group margins), the rows' walks through a tree side by
 * side. A vector leaf adds one value to each margin. */
WALK walk_generic(const sms_forest_t *f, const float *x, size_t n, float *acc, const bool fused)
{
    const char *nodes = (const char *)f->nodes;
    const float *weight = f->dart_weight;
    const size_t nf = f->num_feature, ng = f->num_group, K = f->leaf_size;
    uint32_t o[BLOCK_ROWS];
    for (size_t t = 0; t < f->num_trees; t++) {
        for (size_t r = 0; r < n; r++)
            o[r] = f->root[t];
        for (unsigned d = f->depth[t]; d; d--)
            for (size_t r = 0; r < n; r++)
                o[r] = generic_step(f, o[r], x + r * nf);
        for (size_t r = 0; r < n; r++)
            ADD_LEAF(acc + r * ng, NODE(o[r]), t);
    }
}

size_t sms_forest_workspace_floats(const sms_forest_t *f)
{
    size_t acc = BLOCK_ROWS * f->num_group;
    return acc + (is_widened(f) ? (2 * f->num_feature + 1) * BLOCK_ROWS : 0);
}

/* sms_forest_predict with the accumulation and the categorical steps as
 * constants. */
WALK predict_rows(const sms_forest_t *f, const float *x, size_t rows, float *out, float *work,
                  const bool fused, const bool cat)
{
    const size_t nf = f->num_feature, ng = f->num_group, no = f->num_output;
    /* The caller's workspace, not the stack: server threads have small
     * stacks, and a wide model's block needs tens of KB. */
    float *acc = work;
    float *wide = work + BLOCK_ROWS * ng;
    bool widened = is_widened(f);
    size_t r = 0;
    if (!widened && (cat || f->leaf_size > 1)) {
        for (; r < rows; r += BLOCK_ROWS) {
            size_t n = rows - r < BLOCK_ROWS ? rows - r : BLOCK_ROWS;
            for (size_t k = 0; k < n; k++)
                start_row(f, acc + k * ng);
            walk_generic(f, x + r * nf, n, acc, fused);
            for (size_t k = 0; k < n; k++)
                finish_row(f, acc + k * ng, out + (r + k) * no);
        }
        return;
    }
    if (!widened || rows < 4) {
        for (; r < rows; r++) {
            start_row(f, acc);
            if (f->cnodes) {
                widen_keys(x + r * nf, 1, nf, wide);
                walk_row_complete(f, wide, acc, fused);
            } else if (widened) {
                widen(x + r * nf, 1, nf, wide);
                walk_row(f, wide, acc, fused, cat);
            } else {
                walk_row_unwidened(f, x + r * nf, acc, fused);
            }
            finish_row(f, acc, out + r * no);
        }
        return;
    }
    /* A last, partial block leaves its unused columns as they were: their
     * walks are wasted but harmless, as the slots hold values (or keys)
     * from earlier rows, or zeros from here. */
    if (rows % BLOCK_ROWS)
        memset(wide, 0, (2 * nf + 1) * BLOCK_ROWS * sizeof *wide);
    while (r < rows) {
        size_t n = rows - r < BLOCK_ROWS ? rows - r : BLOCK_ROWS;
        for (size_t k = 0; k < BLOCK_ROWS; k++)
            start_row(f, acc + k * ng);
        if (f->cnodes) {
            widen_keys(x + r * nf, n, nf, wide);
            walk_block_complete(f, wide, acc, fused);
        } else {
            widen(x + r * nf, n, nf, wide);
            walk_block(f, wide, acc, fused, cat);
        }
        for (size_t k = 0; k < n; k++)
            finish_row(f, acc + k * ng, out + (r + k) * no);
        r += n;
    }
}

void sms_forest_predict(const sms_forest_t *f, const float *x, size_t rows, float *out, float *work)
{
    bool cat = f->num_categorical > 0;
    if (f->fused)
        cat ? predict_rows(f, x, rows, out, work, true, true)
            : predict_rows(f, x, rows, out, work, true, false);
    else
        cat ? predict_rows(f, x, rows, out, work, false, true)
            : predict_rows(f, x, rows, out, work, false, false);
}

/* ---- parity probe --------------------------------------------------------- */

/* Uniform in [lo, hi]. */
static float uniform(uint64_t *s, float lo, float hi)
{
    double u = sms_splitmix64_unit(s);
    return (float)(lo + (hi - lo) * u);
}

/* A value for a feature of categorical splits: one of its categories (c,
 * m of them), fractions and neighbours of one, an integer anywhere up to
 * past the bitsets' capacity, at the capacity's edge, negative, or huge. */
static float category_value(uint64_t *s, const float *c, size_t m, uint32_t cap)
{
    float at = c[sms_splitmix64(s) % m];
    switch (sms_splitmix64(s) % 10) {
    case 0:
    case 1:
    case 2:
        return at;
    case 3:
        return at + (sms_splitmix64(s) % 2 ? 0.5f : 0.99f);
    case 4:
        return at - 0.25f; /* the category below, or -0.25 for 0 */
    case 5:
        return at + 1.0f;
    case 6:
        return (float)(sms_splitmix64(s) % (cap + 3));
    case 7:
        return (float)cap - 1.0f + (float)(sms_splitmix64(s) % 3);
    case 8: {
        static const float negative[] = {-1.0f, -0.0f, -0.5f, -2.0f};
        return negative[sms_splitmix64(s) % 4];
    }
    default: {
        static const float huge[] = {16777215.0f, 16777216.0f, 16777218.0f, 1e30f};
        return huge[sms_splitmix64(s) % 4];
    }
    }
}

void sms_forest_probe(const sms_forest_t *f, unsigned seed, size_t rows, float *out)
{
    assert(!f->sealed);
    uint64_t s = 0x5EEDF0E57ull ^ ((uint64_t)seed << 17);
    for (size_t r = 0; r < rows; r++) {
        for (size_t j = 0; j < f->num_feature; j++) {
            const float *t = f->thresholds + f->threshold_start[j];
            size_t n = f->threshold_start[j + 1] - f->threshold_start[j];
            const float *c = f->categories + f->category_start[j];
            size_t m = f->category_start[j + 1] - f->category_start[j];
            float *v = &out[r * f->num_feature + j];
            unsigned pick = (unsigned)(sms_splitmix64(&s) % 100);
            if (pick < 12) {
                *v = NAN;
            } else if (pick < 14) {
                *v = pick == 12 ? INFINITY : -INFINITY;
            } else if (m > 0 && (n == 0 || pick % 2 == 0)) {
                *v = category_value(&s, c, m, f->category_cap[j]);
            } else if (n == 0) {
                *v = uniform(&s, -1.0f, 1.0f);
            } else {
                float at = t[sms_splitmix64(&s) % n];
                if (pick < 40)
                    *v = at;
                else if (pick < 55)
                    *v = nextafterf(at, INFINITY);
                else if (pick < 70)
                    *v = nextafterf(at, -INFINITY);
                else
                    *v = uniform(&s, t[0] - 1.0f, t[n - 1] + 1.0f);
            }
        }
    }
}
