/* The native tree evaluator: compiles the JSON of a gbtree or dart model
 * into flat node arrays (complete trees of 8-byte nodes when padding them is
 * cheap, else children adjacent and leaves looping on themselves), so every
 * tree is walked a fixed number of steps without a leaf test, and predicts
 * with XGBoost 1.7's arithmetic, many walks at a time so that the memory
 * latencies of independent rows and trees overlap. */
#include "smserve/forest.h"

#include <float.h>
#include <jansson.h>
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
 * the features with NaN replaced by +inf, and slot 2*num_feature holds 0.
 * A node whose missing values go left reads the first copy and one whose
 * missing values go right the second, so `value < threshold` alone decides
 * the side: a missing value compares as -inf (left) or +inf (right), and
 * real values, infinities included, compare as themselves (thresholds are
 * finite). One row alone uses column 0 of the same layout.
 *
 * A node is 16 bytes, addressed by byte offset: it goes to the node at
 * `left` when the row's slot is below `threshold` and to the next node
 * (left + 16) when not. A leaf reads slot 2*num_feature (0) against +inf
 * and has left = itself: a walk that reached it stays there, so every tree
 * is walked a fixed number of steps (its depth) without a leaf test. */
typedef struct node {
    float threshold;
    uint32_t slot; /* byte offset of the slot's column-0 float in the block */
    uint32_t left; /* byte offset of the left child in the node array */
    float leaf;    /* a leaf's contribution (see sms_forest_set_fused); 0 inside */
} node_t;

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
#define MAX_DEPTH    256
#define MAX_GROUPS   256
#define MAX_NODES    (1u << 27)
#define MAX_FEATURES (1u << 25)

/* Workspace room for one widened block (64 KB): rows of more than
 * (WIDE_FLOATS / BLOCK_ROWS - 1) / 2 features are walked unwidened. */
#define WIDE_FLOATS 16384

enum margin_fn { MARGIN_IDENTITY, MARGIN_LOGIT, MARGIN_LOG };
enum output_fn { OUT_IDENTITY, OUT_SIGMOID, OUT_EXP, OUT_HINGE, OUT_SOFTPROB, OUT_SOFTMAX };

struct sms_forest {
    node_t *nodes;
    uint32_t *root;  /* per tree: byte offset of the root */
    uint16_t *depth; /* per tree: steps from the root to its deepest leaf */
    uint32_t *group; /* per tree: output group */
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
    float base_margin;
    enum output_fn output;
    /* Dart only (NULL otherwise): each tree's weight, and for each node of
     * the general layout d = (base margin + leaf) - base margin, the
     * tree's prediction less the base margin, in float (0 inside). Leaves
     * hold d * weight rounded to float, or d alone when `fused`: then the
     * weight is applied in one rounding with the addition. */
    float *dart_weight;
    float *dart_delta;
    bool fused;
    /* Sorted distinct thresholds per feature, for the parity probe. */
    float *thresholds;
    size_t *threshold_start; /* num_feature + 1 offsets */
};

static bool is_widened(const sms_forest_t *f)
{
    return (2 * f->num_feature + 1) * BLOCK_ROWS <= WIDE_FLOATS;
}

static sms_forest_t *refuse(char *why, size_t why_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static sms_forest_t *refuse(char *why, size_t why_size, const char *fmt, ...)
{
    if (why && why_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_size, fmt, ap);
        va_end(ap);
    }
    return NULL;
}

/* ---- objectives ---------------------------------------------------------- */

typedef struct objective {
    const char *name;
    enum margin_fn margin;
    enum output_fn output;
} objective_t;

/* ProbToMargin and PredTransform of XGBoost 1.7's objectives. logitraw
 * takes base_score as the margin itself, unlike logistic (measured against
 * libxgboost 1.7.4 by the tests). */
static const objective_t OBJECTIVES[] = {
    {"reg:squarederror", MARGIN_IDENTITY, OUT_IDENTITY},
    {"reg:linear", MARGIN_IDENTITY, OUT_IDENTITY},
    {"reg:pseudohubererror", MARGIN_IDENTITY, OUT_IDENTITY},
    {"reg:absoluteerror", MARGIN_IDENTITY, OUT_IDENTITY},
    {"reg:squaredlogerror", MARGIN_IDENTITY, OUT_IDENTITY},
    {"reg:logistic", MARGIN_LOGIT, OUT_SIGMOID},
    {"binary:logistic", MARGIN_LOGIT, OUT_SIGMOID},
    {"binary:logitraw", MARGIN_IDENTITY, OUT_IDENTITY},
    {"reg:gamma", MARGIN_LOG, OUT_EXP},
    {"reg:tweedie", MARGIN_LOG, OUT_EXP},
    {"count:poisson", MARGIN_LOG, OUT_EXP},
    {"survival:cox", MARGIN_LOG, OUT_EXP},
    {"binary:hinge", MARGIN_IDENTITY, OUT_HINGE},
    {"multi:softprob", MARGIN_IDENTITY, OUT_SOFTPROB},
    {"multi:softmax", MARGIN_IDENTITY, OUT_SOFTMAX},
};

/* common::Sigmoid of 1.7: the clamp keeps expf finite, so a very negative
 * margin gives a tiny positive value rather than 0; the epsilon is below
 * float resolution at 1 and changes nothing, but is kept as written. */
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

/* ---- JSON helpers --------------------------------------------------------- */

static json_t *member(json_t *obj, const char *key)
{
    return json_is_object(obj) ? json_object_get(obj, key) : NULL;
}

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

/* A float32 the model wrote as decimal: XGBoost prints each float with the
 * shortest digits that read back to it, so the nearest double, rounded to
 * float, is that float again. Those of FLT_MAX, 3.4028235e38, read as a
 * double just above it, so finite floats are the doubles that round to a
 * finite float, not those up to FLT_MAX. */
static int float_value(json_t *v, float *out)
{
    if (!json_is_number(v))
        return -1;
    double d = json_number_value(v);
    if (!(fabs(d) < FLT_MAX_ROUNDING))
        return -1;
    *out = (float)d;
    return 0;
}

/* Whether unparsable model JSON is so because of categorical splits: 1.7
 * writes NaN as their split condition, which is not JSON. */
static bool mentions_categorical(const char *json, size_t len)
{
    static const char key[] = "\"split_type\":[";
    const size_t klen = sizeof key - 1;
    for (size_t i = 0; i + klen <= len; i++) {
        if (memcmp(json + i, key, klen) != 0)
            continue;
        for (size_t k = i + klen; k < len && json[k] != ']'; k++)
            if (json[k] >= '1' && json[k] <= '9')
                return true;
    }
    return false;
}

/* ---- compilation ---------------------------------------------------------- */

typedef struct tree_arrays {
    json_t *left, *right, *feature, *cond, *default_left, *split_type;
    size_t n;
} tree_arrays_t;

static int compare_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Sorts each feature's thresholds and keeps the distinct ones. */
static int build_thresholds(sms_forest_t *f)
{
    size_t nf = f->num_feature;
    size_t *count = calloc(nf + 1, sizeof *count);
    f->threshold_start = calloc(nf + 1, sizeof *f->threshold_start);
    if (!count || !f->threshold_start) {
        free(count);
        return -1;
    }
    size_t total = 0;
    for (size_t i = 0; i < f->num_nodes; i++)
        if (f->nodes[i].slot / SLOT_BYTES < 2 * nf) {
            count[f->nodes[i].slot / SLOT_BYTES % nf]++;
            total++;
        }
    f->thresholds = malloc((total ? total : 1) * sizeof *f->thresholds);
    if (!f->thresholds) {
        free(count);
        return -1;
    }
    for (size_t j = 0; j < nf; j++)
        f->threshold_start[j + 1] = f->threshold_start[j] + count[j];
    memset(count, 0, (nf + 1) * sizeof *count);
    for (size_t i = 0; i < f->num_nodes; i++)
        if (f->nodes[i].slot / SLOT_BYTES < 2 * nf) {
            size_t j = f->nodes[i].slot / SLOT_BYTES % nf;
            f->thresholds[f->threshold_start[j] + count[j]++] = f->nodes[i].threshold;
        }
    size_t out = 0;
    for (size_t j = 0; j < nf; j++) {
        float *t = f->thresholds + f->threshold_start[j];
        size_t n = count[j];
        qsort(t, n, sizeof *t, compare_float);
        size_t start = out;
        for (size_t k = 0; k < n; k++)
            if (k == 0 || t[k] != t[k - 1])
                f->thresholds[out++] = t[k];
        f->threshold_start[j] = start;
    }
    f->threshold_start[nf] = out;
    free(count);
    return 0;
}

/* d * w rounded to float on its own, as XGBoost's unfused accumulation
 * does: the volatile keeps a compiler from contracting it into a later
 * addition. */
static float dart_product(float d, float w)
{
    volatile float p = d * w;
    return p;
}

/* Checks one tree's arrays and appends its reachable nodes to f in
 * breadth-first order, so that a node's children are adjacent. `seen` and
 * `queue` are scratch of at least n entries. Returns 0, or -1 with why. */
static int compile_tree(sms_forest_t *f, size_t t, const tree_arrays_t *a, float leaf_scale,
                        bool dart, uint32_t *queue, uint16_t *level, unsigned char *seen, char *why,
                        size_t why_size)
{
    size_t n = a->n;
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
        long long left, right, feature, default_left, split_type;
        float cond;
        if (int_value(json_array_get(a->left, old), &left) < 0 ||
            int_value(json_array_get(a->right, old), &right) < 0 ||
            int_value(json_array_get(a->feature, old), &feature) < 0 ||
            int_value(json_array_get(a->default_left, old), &default_left) < 0 ||
            int_value(json_array_get(a->split_type, old), &split_type) < 0 ||
            float_value(json_array_get(a->cond, old), &cond) < 0) {
            refuse(why, why_size, "tree %zu node %zu: a field is missing or not a number", t, old);
            return -1;
        }
        if (left == -1) {
            if (right != -1) {
                refuse(why, why_size, "tree %zu node %zu: a leaf with a right child", t, old);
                return -1;
            }
            nd->threshold = INFINITY;
            nd->slot = (uint32_t)(2 * f->num_feature * SLOT_BYTES);
            nd->left = (uint32_t)((base + q) * sizeof(node_t));
            float v = cond;
            if (dart) {
                /* Dart adds (tree prediction - base margin) * weight, where
                 * the tree prediction is base margin + leaf, in float. */
                volatile float p = f->base_margin + cond;
                volatile float d = p - f->base_margin;
                f->dart_delta[base + q] = d;
                v = dart_product(d, leaf_scale);
            }
            nd->leaf = v;
            continue;
        }
        if (split_type != 0) {
            refuse(why, why_size, "tree %zu has a categorical split", t);
            return -1;
        }
        /* XGBoost allocates a node's children together and, in 1.7, takes
         * left + 1 as the right child; anything else is not its output. */
        if (left <= 0 || (size_t)left + 1 >= n || right != left + 1) {
            refuse(why, why_size, "tree %zu node %zu: child indices %lld, %lld are invalid", t, old,
                   left, right);
            return -1;
        }
        if (seen[left] || seen[left + 1]) {
            refuse(why, why_size, "tree %zu node %zu: a node is reached twice (cycle)", t, old);
            return -1;
        }
        if (feature < 0 || (unsigned long long)feature >= f->num_feature) {
            refuse(why, why_size, "tree %zu node %zu: split on feature %lld of %zu", t, old,
                   feature, f->num_feature);
            return -1;
        }
        if (level[q] + 1 > MAX_DEPTH) {
            refuse(why, why_size, "tree %zu is deeper than %d", t, MAX_DEPTH);
            return -1;
        }
        if (default_left != 0 && default_left != 1) {
            refuse(why, why_size, "tree %zu node %zu: default_left is %lld", t, old, default_left);
            return -1;
        }
        seen[left] = seen[left + 1] = 1;
        nd->threshold = cond;
        size_t slot = (size_t)feature + (default_left ? 0 : f->num_feature);
        nd->slot = (uint32_t)(slot * SLOT_BYTES);
        nd->left = (uint32_t)((base + count) * sizeof(node_t));
        nd->leaf = 0.0f;
        if (dart)
            f->dart_delta[base + q] = 0.0f;
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
        leaves[pos - ((size_t)1 << D)] = nd->leaf;
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
    if (!is_widened(f) || D > MAX_COMPLETE_DEPTH || f->num_trees == 0)
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

static const objective_t *find_objective(const char *name)
{
    for (size_t i = 0; i < sizeof OBJECTIVES / sizeof OBJECTIVES[0]; i++)
        if (!strcmp(OBJECTIVES[i].name, name))
            return &OBJECTIVES[i];
    return NULL;
}

static int tree_arrays(json_t *tree, tree_arrays_t *a)
{
    unsigned long long n;
    json_t *param = member(tree, "tree_param");
    json_t *leaf_vector = member(param, "size_leaf_vector");
    if (string_ulong(member(param, "num_nodes"), MAX_NODES, &n) < 0 || n == 0)
        return -1;
    if (leaf_vector) {
        unsigned long long s;
        if (string_ulong(leaf_vector, 1, &s) < 0 || s != 0)
            return -2;
    }
    a->n = (size_t)n;
    a->left = member(tree, "left_children");
    a->right = member(tree, "right_children");
    a->feature = member(tree, "split_indices");
    a->cond = member(tree, "split_conditions");
    a->default_left = member(tree, "default_left");
    a->split_type = member(tree, "split_type");
    json_t *arrays[] = {a->left, a->right, a->feature, a->cond, a->default_left, a->split_type};
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++)
        if (!json_is_array(arrays[i]) || json_array_size(arrays[i]) != a->n)
            return -1;
    json_t *cat_nodes = member(tree, "categories_nodes");
    if (cat_nodes && (!json_is_array(cat_nodes) || json_array_size(cat_nodes) != 0))
        return -3;
    return 0;
}

sms_forest_t *sms_forest_compile(const char *json, size_t len, char *why, size_t why_size)
{
    if (why && why_size)
        why[0] = '\0';
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (mentions_categorical(json, len))
            return refuse(why, why_size, "the model has categorical splits");
        return refuse(why, why_size, "model JSON does not parse: %s at byte %d", jerr.text,
                      jerr.position);
    }
    sms_forest_t *f = NULL;
    uint32_t *queue = NULL;
    uint16_t *level = NULL;
    unsigned char *seen = NULL;
    tree_arrays_t *arrays = NULL;

    json_t *learner = member(root, "learner");
    json_t *mparam = member(learner, "learner_model_param");
    json_t *booster = member(learner, "gradient_booster");
    const char *booster_name = json_string_value(member(booster, "name"));
    const char *objective_name = json_string_value(member(member(learner, "objective"), "name"));
    if (!mparam || !booster_name || !objective_name) {
        refuse(why, why_size, "model JSON lacks learner parameters, booster or objective");
        goto fail;
    }
    const objective_t *obj = find_objective(objective_name);
    if (!obj) {
        refuse(why, why_size, "objective %s is not supported by the native evaluator",
               objective_name);
        goto fail;
    }
    bool dart = !strcmp(booster_name, "dart");
    json_t *model;
    if (dart)
        model = member(member(booster, "gbtree"), "model");
    else if (!strcmp(booster_name, "gbtree"))
        model = member(booster, "model");
    else {
        refuse(why, why_size, "booster %s is not supported by the native evaluator", booster_name);
        goto fail;
    }

    unsigned long long num_feature, num_class, num_target = 1;
    const char *base_text = json_string_value(member(mparam, "base_score"));
    if (string_ulong(member(mparam, "num_feature"), MAX_FEATURES, &num_feature) < 0 ||
        string_ulong(member(mparam, "num_class"), MAX_GROUPS, &num_class) < 0 || !base_text ||
        (member(mparam, "num_target") &&
         string_ulong(member(mparam, "num_target"), 1u << 20, &num_target) < 0)) {
        refuse(why, why_size, "learner_model_param is malformed or out of bounds");
        goto fail;
    }
    if (num_target > 1) {
        refuse(why, why_size, "multi-target models (num_target %llu) are not supported",
               num_target);
        goto fail;
    }
    char *end;
    float base_score = strtof(base_text, &end);
    if (*end || end == base_text || !isfinite(base_score)) {
        refuse(why, why_size, "base_score \"%s\" is not a number", base_text);
        goto fail;
    }
    bool multi = obj->output == OUT_SOFTPROB || obj->output == OUT_SOFTMAX;
    size_t groups = num_class > 1 ? (size_t)num_class : 1;
    if (multi != (groups > 1)) {
        refuse(why, why_size, "objective %s with num_class %llu", objective_name, num_class);
        goto fail;
    }

    json_t *trees = member(model, "trees");
    json_t *tree_info = member(model, "tree_info");
    json_t *weights = dart ? member(booster, "weight_drop") : NULL;
    json_t *gparam = member(model, "gbtree_model_param");
    unsigned long long declared_trees, leaf_vector = 0;
    if (!json_is_array(trees) || !json_is_array(tree_info) ||
        json_array_size(tree_info) != json_array_size(trees) ||
        (dart && (!json_is_array(weights) || json_array_size(weights) != json_array_size(trees))) ||
        string_ulong(member(gparam, "num_trees"), SIZE_MAX, &declared_trees) < 0 ||
        declared_trees != json_array_size(trees) ||
        (member(gparam, "size_leaf_vector") &&
         string_ulong(member(gparam, "size_leaf_vector"), 1u << 20, &leaf_vector) < 0)) {
        refuse(why, why_size, "the booster's trees, tree_info%s do not match",
               dart ? ", weight_drop" : "");
        goto fail;
    }
    if (leaf_vector != 0) {
        refuse(why, why_size, "vector-leaf trees are not supported");
        goto fail;
    }
    size_t num_trees = json_array_size(trees);
    if (dart && num_trees == 0) {
        refuse(why, why_size, "a dart booster without trees");
        goto fail;
    }

    f = calloc(1, sizeof *f);
    if (!f)
        goto oom;
    f->num_trees = num_trees;
    f->num_feature = (size_t)num_feature;
    f->num_group = groups;
    f->num_output = obj->output == OUT_SOFTMAX ? 1 : groups;
    f->output = obj->output;
    switch (obj->margin) {
    case MARGIN_IDENTITY:
        f->base_margin = base_score;
        break;
    case MARGIN_LOGIT:
        if (!(base_score > 0.0f && base_score < 1.0f)) {
            refuse(why, why_size, "base_score %g is outside (0, 1) for %s", base_score,
                   objective_name);
            goto fail;
        }
        f->base_margin = -logf(1.0f / base_score - 1.0f);
        break;
    case MARGIN_LOG:
        if (!(base_score > 0.0f)) {
            refuse(why, why_size, "base_score %g is not positive for %s", base_score,
                   objective_name);
            goto fail;
        }
        f->base_margin = logf(base_score);
        break;
    }

    arrays = calloc(num_trees ? num_trees : 1, sizeof *arrays);
    f->root = calloc(num_trees ? num_trees : 1, sizeof *f->root);
    f->depth = calloc(num_trees ? num_trees : 1, sizeof *f->depth);
    f->group = calloc(num_trees ? num_trees : 1, sizeof *f->group);
    if (!arrays || !f->root || !f->depth || !f->group)
        goto oom;
    size_t total = 0, widest = 1;
    for (size_t t = 0; t < num_trees; t++) {
        int rc = tree_arrays(json_array_get(trees, t), &arrays[t]);
        if (rc == -2) {
            refuse(why, why_size, "tree %zu has vector leaves", t);
            goto fail;
        }
        if (rc == -3) {
            refuse(why, why_size, "tree %zu has a categorical split", t);
            goto fail;
        }
        long long g;
        if (rc < 0 || int_value(json_array_get(tree_info, t), &g) < 0 || g < 0 ||
            (unsigned long long)g >= groups || !json_is_integer(json_array_get(tree_info, t))) {
            refuse(why, why_size, "tree %zu is malformed (arrays, sizes or output group)", t);
            goto fail;
        }
        f->group[t] = (uint32_t)g;
        if (arrays[t].n > MAX_NODES - total) {
            refuse(why, why_size, "the model has more than %u nodes", MAX_NODES);
            goto fail;
        }
        total += arrays[t].n;
        if (arrays[t].n > widest)
            widest = arrays[t].n;
    }
    f->nodes = malloc((total ? total : 1) * sizeof *f->nodes);
    queue = malloc(widest * sizeof *queue);
    level = malloc(widest * sizeof *level);
    seen = malloc(widest);
    if (!f->nodes || !queue || !level || !seen)
        goto oom;
    if (dart) {
        f->dart_delta = malloc((total ? total : 1) * sizeof *f->dart_delta);
        f->dart_weight = malloc(num_trees * sizeof *f->dart_weight);
        if (!f->dart_delta || !f->dart_weight)
            goto oom;
    }
    for (size_t t = 0; t < num_trees; t++) {
        float w = 1.0f;
        if (dart && float_value(json_array_get(weights, t), &w) < 0) {
            refuse(why, why_size, "weight_drop[%zu] is not a float", t);
            goto fail;
        }
        if (dart)
            f->dart_weight[t] = w;
        if (compile_tree(f, t, &arrays[t], w, dart, queue, level, seen, why, why_size) < 0)
            goto fail;
    }
    if (build_thresholds(f) < 0)
        goto oom;
    make_complete(f);
    free(arrays);
    free(queue);
    free(level);
    free(seen);
    json_decref(root);
    return f;
oom:
    refuse(why, why_size, "out of memory compiling the model");
fail:
    free(arrays);
    free(queue);
    free(level);
    free(seen);
    sms_forest_free(f);
    json_decref(root);
    return NULL;
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
    free(f->thresholds);
    free(f->threshold_start);
    free(f->dart_weight);
    free(f->dart_delta);
    free(f);
}

void sms_forest_set_fused(sms_forest_t *f, bool fused)
{
    if (!f->dart_weight || f->fused == fused)
        return;
    const uint32_t leaf_slot = (uint32_t)(2 * f->num_feature * SLOT_BYTES);
    for (size_t t = 0; t < f->num_trees; t++) {
        size_t end = t + 1 < f->num_trees ? f->root[t + 1] / sizeof(node_t) : f->num_nodes;
        for (size_t i = f->root[t] / sizeof(node_t); i < end; i++)
            if (f->nodes[i].slot == leaf_slot)
                f->nodes[i].leaf =
                    fused ? f->dart_delta[i] : dart_product(f->dart_delta[i], f->dart_weight[t]);
    }
    f->fused = fused;
    if (f->cnodes)
        fill_complete_trees(f);
}

bool sms_forest_fused(const sms_forest_t *f)
{
    return f->fused;
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

/* ---- prediction ----------------------------------------------------------- */

/* Writes n <= BLOCK_ROWS rows into the widened block (see node_t). */
static void widen(const float *x, size_t n, size_t nf, float *wide)
{
    for (size_t r = 0; r < n; r++) {
        const float *row = x + r * nf;
        for (size_t j = 0; j < nf; j++) {
            float v = row[j];
            wide[j * BLOCK_ROWS + r] = v == v ? v : -INFINITY;
            wide[(nf + j) * BLOCK_ROWS + r] = v == v ? v : INFINITY;
        }
        wide[2 * nf * BLOCK_ROWS + r] = 0.0f;
    }
}

#define NODE(off) ((const node_t *)(nodes + (off)))

/* The walks below are written once and instantiated twice by
 * predict_rows: `fused` is a constant in each copy, so the common case
 * keeps its plain additions. */
#define WALK static inline __attribute__((always_inline)) void

/* Adds a leaf a walk reached in tree t to a margin (see struct sms_forest):
 * fused, d * weight + margin in one rounding, as fmaf does on every
 * platform; else leaf + margin, the leaf holding the rounded product. */
#define SUM(margin, leaf, t)                                                                       \
    ((margin) = fused ? fmaf((leaf), weight[t], (margin)) : (margin) + (leaf))

/* One step down for column r of the widened block. */
static inline uint32_t step(const char *nodes, uint32_t off, const char *wide, size_t r)
{
    const node_t *nd = NODE(off);
    float v = *(const float *)(wide + nd->slot + r * sizeof(float));
    return nd->left + (v < nd->threshold ? 0u : (uint32_t)sizeof(node_t));
}

/* Adds every tree's leaf, in tree order, to acc (BLOCK_ROWS rows x
 * num_group margins): the rows' eight walks through a tree are independent,
 * so their memory latencies overlap. */
WALK walk_block(const sms_forest_t *f, const float *wide_block, float *acc, const bool fused)
{
    const char *nodes = (const char *)f->nodes, *wide = (const char *)wide_block;
    const float *weight = f->dart_weight;
    const size_t ng = f->num_group;
    for (size_t t = 0; t < f->num_trees; t++) {
        uint32_t o0, o1, o2, o3, o4, o5, o6, o7;
        o0 = o1 = o2 = o3 = o4 = o5 = o6 = o7 = f->root[t];
        for (unsigned d = f->depth[t]; d; d--) {
            o0 = step(nodes, o0, wide, 0);
            o1 = step(nodes, o1, wide, 1);
            o2 = step(nodes, o2, wide, 2);
            o3 = step(nodes, o3, wide, 3);
            o4 = step(nodes, o4, wide, 4);
            o5 = step(nodes, o5, wide, 5);
            o6 = step(nodes, o6, wide, 6);
            o7 = step(nodes, o7, wide, 7);
        }
        float *a = acc + f->group[t];
        SUM(a[0 * ng], NODE(o0)->leaf, t);
        SUM(a[1 * ng], NODE(o1)->leaf, t);
        SUM(a[2 * ng], NODE(o2)->leaf, t);
        SUM(a[3 * ng], NODE(o3)->leaf, t);
        SUM(a[4 * ng], NODE(o4)->leaf, t);
        SUM(a[5 * ng], NODE(o5)->leaf, t);
        SUM(a[6 * ng], NODE(o6)->leaf, t);
        SUM(a[7 * ng], NODE(o7)->leaf, t);
    }
}

/* One row (column 0 of a widened block), eight trees at a time: the walks
 * of different trees overlap while each tree's leaf is still added in tree
 * order. */
WALK walk_row(const sms_forest_t *f, const float *wide_block, float *acc, const bool fused)
{
    const char *nodes = (const char *)f->nodes, *wide = (const char *)wide_block;
    const uint32_t *root = f->root, *group = f->group;
    const float *weight = f->dart_weight;
    size_t t = 0;
    for (; t + 8 <= f->num_trees; t += 8) {
        uint32_t o0 = root[t], o1 = root[t + 1], o2 = root[t + 2], o3 = root[t + 3];
        uint32_t o4 = root[t + 4], o5 = root[t + 5], o6 = root[t + 6], o7 = root[t + 7];
        unsigned depth = 0;
        for (size_t k = t; k < t + 8; k++)
            depth = f->depth[k] > depth ? f->depth[k] : depth;
        for (unsigned d = depth; d; d--) {
            o0 = step(nodes, o0, wide, 0);
            o1 = step(nodes, o1, wide, 0);
            o2 = step(nodes, o2, wide, 0);
            o3 = step(nodes, o3, wide, 0);
            o4 = step(nodes, o4, wide, 0);
            o5 = step(nodes, o5, wide, 0);
            o6 = step(nodes, o6, wide, 0);
            o7 = step(nodes, o7, wide, 0);
        }
        SUM(acc[group[t]], NODE(o0)->leaf, t);
        SUM(acc[group[t + 1]], NODE(o1)->leaf, t + 1);
        SUM(acc[group[t + 2]], NODE(o2)->leaf, t + 2);
        SUM(acc[group[t + 3]], NODE(o3)->leaf, t + 3);
        SUM(acc[group[t + 4]], NODE(o4)->leaf, t + 4);
        SUM(acc[group[t + 5]], NODE(o5)->leaf, t + 5);
        SUM(acc[group[t + 6]], NODE(o6)->leaf, t + 6);
        SUM(acc[group[t + 7]], NODE(o7)->leaf, t + 7);
    }
    for (; t < f->num_trees; t++) {
        uint32_t o = root[t];
        for (unsigned d = f->depth[t]; d; d--)
            o = step(nodes, o, wide, 0);
        SUM(acc[group[t]], NODE(o)->leaf, t);
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

/* Adds the leaves the eight rows reached in tree t, leaf + i##r, to their
 * margins: s0 to s7 with one output group, acc (stride ng) at group g with
 * more. */
#define ADD_LEAVES8(leaf, i, t, g)                                                                 \
    do {                                                                                           \
        if (ng == 1) {                                                                             \
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
    const size_t width = (size_t)1 << D, ng = f->num_group;
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
    const size_t width = (size_t)1 << D;
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

/* The objective's transform of one row's margins into out. */
static void finish_row(const sms_forest_t *f, float *margin, float *out)
{
    size_t ng = f->num_group;
    switch (f->output) {
    case OUT_IDENTITY:
        out[0] = margin[0];
        break;
    case OUT_SIGMOID:
        out[0] = sigmoid(margin[0]);
        break;
    case OUT_EXP:
        out[0] = expf(margin[0]);
        break;
    case OUT_HINGE:
        out[0] = margin[0] > 0.0f ? 1.0f : 0.0f;
        break;
    case OUT_SOFTPROB:
        softmax(margin, ng);
        memcpy(out, margin, ng * sizeof *out);
        break;
    case OUT_SOFTMAX:
        out[0] = argmax(margin, ng);
        break;
    }
}

size_t sms_forest_workspace_floats(const sms_forest_t *f)
{
    size_t acc = BLOCK_ROWS * f->num_group;
    return acc + (is_widened(f) ? (2 * f->num_feature + 1) * BLOCK_ROWS : 0);
}

/* sms_forest_predict with the accumulation as a constant. */
WALK predict_rows(const sms_forest_t *f, const float *x, size_t rows, float *out, float *work,
                  const bool fused)
{
    const size_t nf = f->num_feature, ng = f->num_group, no = f->num_output;
    /* The caller's workspace, not the stack: server threads have small
     * stacks, and a wide model's block needs tens of KB. */
    float *acc = work;
    float *wide = work + BLOCK_ROWS * ng;
    bool widened = is_widened(f);
    size_t r = 0;
    if (!widened || rows < 4) {
        for (; r < rows; r++) {
            for (size_t g = 0; g < ng; g++)
                acc[g] = f->base_margin;
            if (f->cnodes) {
                widen_keys(x + r * nf, 1, nf, wide);
                walk_row_complete(f, wide, acc, fused);
            } else if (widened) {
                widen(x + r * nf, 1, nf, wide);
                walk_row(f, wide, acc, fused);
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
        for (size_t k = 0; k < BLOCK_ROWS * ng; k++)
            acc[k] = f->base_margin;
        if (f->cnodes) {
            widen_keys(x + r * nf, n, nf, wide);
            walk_block_complete(f, wide, acc, fused);
        } else {
            widen(x + r * nf, n, nf, wide);
            walk_block(f, wide, acc, fused);
        }
        for (size_t k = 0; k < n; k++)
            finish_row(f, acc + k * ng, out + (r + k) * no);
        r += n;
    }
}

void sms_forest_predict(const sms_forest_t *f, const float *x, size_t rows, float *out, float *work)
{
    if (f->fused)
        predict_rows(f, x, rows, out, work, true);
    else
        predict_rows(f, x, rows, out, work, false);
}

/* ---- parity probe --------------------------------------------------------- */

/* splitmix64: small, seedable, and the same on every platform. */
static uint64_t next_random(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static float uniform(uint64_t *s, float lo, float hi)
{
    double u = (double)(next_random(s) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(lo + (hi - lo) * u);
}

void sms_forest_probe(const sms_forest_t *f, unsigned seed, size_t rows, float *out)
{
    uint64_t s = 0x5EEDF0E57ull ^ ((uint64_t)seed << 17);
    for (size_t r = 0; r < rows; r++) {
        for (size_t j = 0; j < f->num_feature; j++) {
            const float *t = f->thresholds + f->threshold_start[j];
            size_t n = f->threshold_start[j + 1] - f->threshold_start[j];
            float *v = &out[r * f->num_feature + j];
            unsigned pick = (unsigned)(next_random(&s) % 100);
            if (pick < 12) {
                *v = NAN;
            } else if (pick < 14) {
                *v = pick == 12 ? INFINITY : -INFINITY;
            } else if (n == 0) {
                *v = uniform(&s, -1.0f, 1.0f);
            } else {
                float at = t[next_random(&s) % n];
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
