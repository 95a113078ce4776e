/* Turns a legacy binary XGBoost model into the JSON model XGBoost 1.7 writes
 * for it, so that a runtime that reads only JSON (XGBoost 3.1+) serves the
 * same trees with the same numbers. The file is untrusted: a first pass
 * checks everything and records where things are, a second pass writes the
 * JSON from those checked places. */
#include "smserve/legacy.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smserve/buf.h"

/* The layout (little-endian: x86 and arm64 write it so, and 1.0+ on all):
 *   ["binf"] LearnerModelParam (136 bytes), objective name, booster name,
 *   the booster's model, [attributes if contain_extra_attrs], [before 1.0:
 *   count:poisson's max_delta_step, eval metric names if
 *   contain_eval_metrics]
 * where a string is a uint64 length then bytes and a vector a uint64 count
 * then its elements. Every count is checked against the bytes left before
 * anything is allocated from it; trees are walked with an explicit stack. */
#define LEARNER_PARAM_BYTES  136
#define GBTREE_PARAM_BYTES   160
#define TREE_PARAM_BYTES     148
#define NODE_BYTES           20
#define NODE_STAT_BYTES      16
#define GBLINEAR_PARAM_BYTES 136
#define DELETED_NODE         0xffffffffu
#define MAX_OBJECTIVE_DEPTH  16

/* The JSON's "version" when the file does not record its writer (before
 * 1.0): the release whose output this module reproduces. */
static const int kJsonVersion[3] = {1, 7, 4};

typedef struct reader {
    const unsigned char *p;
    size_t len;
    size_t pos;
    char *errmsg;
    size_t errmsg_size;
    int failed;
} reader_t;

/* A string inside the input. */
typedef struct span {
    size_t off;
    size_t len;
} span_t;

typedef struct attr {
    span_t key;
    span_t value;
    size_t order; /* position in the file, to keep the first of duplicates */
} attr_t;

enum booster { BOOSTER_GBTREE, BOOSTER_DART, BOOSTER_GBLINEAR };
enum link { LINK_IDENTITY, LINK_SIGMOID, LINK_EXP, LINK_HINGE };
enum objparams {
    PARAMS_NONE,
    PARAMS_REG_LOSS,
    PARAMS_HUBER,
    PARAMS_POISSON,
    PARAMS_TWEEDIE,
    PARAMS_SOFTMAX,
    PARAMS_RANK,
    PARAMS_AFT
};

/* Which base_scores XGBoost accepts: 1.7 refuses a logistic one outside
 * (0, 1), 3.x a gamma one that is not positive. */
enum intercept { INTERCEPT_ANY, INTERCEPT_UNIT, INTERCEPT_POSITIVE };

/* The objectives XGBoost 1.7 knows, plus the gpu: aliases of 0.7x-0.90 that
 * it no longer registers but that compute the same thing. link is the
 * prediction transform (needed to undo the margin base_score of files
 * before 1.0). */
typedef struct objective_def {
    const char *file_name;
    const char *json_name;
    enum objparams params;
    enum link link;
    enum intercept intercept;
} objective_def_t;

static const objective_def_t kObjectives[] = {
    {"reg:squarederror", "reg:squarederror", PARAMS_REG_LOSS, LINK_IDENTITY, INTERCEPT_ANY},
    {"reg:linear", "reg:squarederror", PARAMS_REG_LOSS, LINK_IDENTITY, INTERCEPT_ANY},
    {"gpu:reg:linear", "reg:squarederror", PARAMS_REG_LOSS, LINK_IDENTITY, INTERCEPT_ANY},
    {"reg:squaredlogerror", "reg:squaredlogerror", PARAMS_REG_LOSS, LINK_IDENTITY, INTERCEPT_ANY},
    {"reg:logistic", "reg:logistic", PARAMS_REG_LOSS, LINK_SIGMOID, INTERCEPT_UNIT},
    {"gpu:reg:logistic", "reg:logistic", PARAMS_REG_LOSS, LINK_SIGMOID, INTERCEPT_UNIT},
    {"binary:logistic", "binary:logistic", PARAMS_REG_LOSS, LINK_SIGMOID, INTERCEPT_UNIT},
    {"gpu:binary:logistic", "binary:logistic", PARAMS_REG_LOSS, LINK_SIGMOID, INTERCEPT_UNIT},
    {"binary:logitraw", "binary:logitraw", PARAMS_REG_LOSS, LINK_IDENTITY, INTERCEPT_ANY},
    {"gpu:binary:logitraw", "binary:logitraw", PARAMS_REG_LOSS, LINK_IDENTITY, INTERCEPT_ANY},
    {"reg:pseudohubererror", "reg:pseudohubererror", PARAMS_HUBER, LINK_IDENTITY, INTERCEPT_ANY},
    {"reg:absoluteerror", "reg:absoluteerror", PARAMS_NONE, LINK_IDENTITY, INTERCEPT_ANY},
    {"count:poisson", "count:poisson", PARAMS_POISSON, LINK_EXP, INTERCEPT_ANY},
    {"reg:gamma", "reg:gamma", PARAMS_NONE, LINK_EXP, INTERCEPT_POSITIVE},
    {"reg:tweedie", "reg:tweedie", PARAMS_TWEEDIE, LINK_EXP, INTERCEPT_ANY},
    {"survival:cox", "survival:cox", PARAMS_NONE, LINK_EXP, INTERCEPT_ANY},
    {"survival:aft", "survival:aft", PARAMS_AFT, LINK_EXP, INTERCEPT_ANY},
    {"binary:hinge", "binary:hinge", PARAMS_NONE, LINK_HINGE, INTERCEPT_ANY},
    {"multi:softmax", "multi:softmax", PARAMS_SOFTMAX, LINK_IDENTITY, INTERCEPT_ANY},
    {"multi:softprob", "multi:softprob", PARAMS_SOFTMAX, LINK_IDENTITY, INTERCEPT_ANY},
    {"rank:pairwise", "rank:pairwise", PARAMS_RANK, LINK_IDENTITY, INTERCEPT_ANY},
    {"rank:ndcg", "rank:ndcg", PARAMS_RANK, LINK_IDENTITY, INTERCEPT_ANY},
    {"rank:map", "rank:map", PARAMS_RANK, LINK_IDENTITY, INTERCEPT_ANY},
};

/* Everything the first pass learned; offsets point into the input. */
typedef struct model {
    int binf;
    float base_score; /* as stored */
    uint32_t num_feature;
    int32_t num_class;
    int32_t extra_attrs;
    int32_t eval_metrics;
    uint32_t major;
    uint32_t minor;
    uint32_t num_target;
    int32_t boost_from_average;
    span_t objective;
    span_t booster_name;
    const objective_def_t *obj; /* NULL: not one 1.7 knows */
    enum booster booster;
    uint32_t num_groups;
    /* gbtree and dart */
    int32_t num_trees;
    int32_t num_parallel_tree;
    int32_t gbtree_size_leaf_vector;
    size_t *tree_offs; /* num_trees offsets of each tree's TreeParam */
    size_t tree_info_off;
    size_t weight_drop_off;
    /* gblinear */
    size_t weights_off;
    size_t num_weights;
    /* attributes, sorted by key, first of duplicates kept */
    attr_t *attrs;
    size_t num_attrs;
} model_t;

static void fail(reader_t *r, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void unsupported(reader_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void vrecord(reader_t *r, const char *prefix, const char *fmt, va_list ap)
{
    if (r->failed)
        return;
    r->failed = 1;
    if (!r->errmsg || !r->errmsg_size)
        return;
    int n = snprintf(r->errmsg, r->errmsg_size, "%s", prefix);
    if (n >= 0 && (size_t)n < r->errmsg_size)
        vsnprintf(r->errmsg + n, r->errmsg_size - (size_t)n, fmt, ap);
    /* One printable line, whatever bytes a parser's message quoted. */
    for (char *c = r->errmsg; *c; c++) {
        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
            *c = '?';
    }
}

/* Records the first failure only: it is the one that says what was wrong. */
static void fail(reader_t *r, size_t at, const char *fmt, ...)
{
    char prefix[40];
    snprintf(prefix, sizeof prefix, "byte %zu: ", at);
    va_list ap;
    va_start(ap, fmt);
    vrecord(r, prefix, fmt, ap);
    va_end(ap);
}

static void unsupported(reader_t *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vrecord(r, "unsupported: ", fmt, ap);
    va_end(ap);
}

static size_t left(const reader_t *r)
{
    return r->len - r->pos;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int32_t le32s(const unsigned char *p)
{
    uint32_t u = le32(p);
    /* Two's complement without implementation-defined conversion. */
    return u <= INT32_MAX ? (int32_t)u : -(int32_t)(~u) - 1;
}

static uint64_t le64(const unsigned char *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static float lef(const unsigned char *p)
{
    uint32_t u = le32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Checks that n bytes are left for `what`. */
static int need(reader_t *r, size_t n, const char *what)
{
    if (left(r) >= n)
        return 0;
    fail(r, r->len, "unexpected end of input in %s (needed %zu more bytes)", what, n - left(r));
    return -1;
}

/* A uint64 count of elements that take at least elem_bytes each. */
static int read_count(reader_t *r, size_t elem_bytes, const char *what, size_t *out)
{
    size_t at = r->pos;
    if (need(r, 8, what) < 0)
        return -1;
    uint64_t n = le64(r->p + r->pos);
    r->pos += 8;
    if (n > left(r) / elem_bytes) {
        fail(r, at, "%s count %llu exceeds what the %zu bytes left can hold", what,
             (unsigned long long)n, left(r));
        return -1;
    }
    *out = (size_t)n;
    return 0;
}

static int read_string(reader_t *r, const char *what, span_t *out)
{
    size_t n;
    if (read_count(r, 1, what, &n) < 0)
        return -1;
    out->off = r->pos;
    out->len = n;
    r->pos += n;
    return 0;
}

static int span_is(const reader_t *r, span_t s, const char *text)
{
    size_t n = strlen(text);
    return s.len == n && memcmp(r->p + s.off, text, n) == 0;
}

/* Copies a span into a NUL-terminated buffer, cut and marked with "..." if
 * longer, with anything unprintable shown as '?': for messages. */
static const char *span_show(const reader_t *r, span_t s, char *buf, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < s.len && n + 4 < size; i++) {
        unsigned char c = r->p[s.off + i];
        buf[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    if (n < s.len && size >= 4) {
        n = n + 3 < size ? n : size - 4;
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

/* Strict UTF-8 (no overlongs, no surrogates, nothing past U+10FFFF) without
 * NUL, so that the JSON written is valid for every reader. Returns the
 * offset of the first bad byte, or len. */
static size_t utf8_check(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp;
        if (c == 0)
            return i;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return i;
        }
        if (len - i - 1 < n)
            return i;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return i;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += n + 1;
    }
    return len;
}

/* ---- numbers as XGBoost prints and parses them ---- */

/* Whether printing f with `prec` digits after the point reads back as f. */
static int roundtrips(float f, int prec)
{
    char buf[40];
    snprintf(buf, sizeof buf, "%.*e", prec, (double)f);
    return strtof(buf, NULL) == f;
}

/* Writes f as XGBoost's JSON writer does (shortest round-trip digits,
 * "d[.ddd]E[-]x", NaN, Infinity, -Infinity). Returns the length. */
static size_t format_f32(float f, char out[32])
{
    if (isnan(f))
        return (size_t)snprintf(out, 32, "NaN");
    if (isinf(f))
        return (size_t)snprintf(out, 32, "%sInfinity", f < 0 ? "-" : "");
    if (f == 0.0f)
        return (size_t)snprintf(out, 32, "%s0E0", signbit(f) ? "-" : "");
    /* The shortest digits: more digits never stop reading back once fewer
     * do (the shorter decimal is one of the longer ones), so a binary
     * search over 1..9 significant digits finds the fewest. */
    int lo = 0, hi = 8;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (roundtrips(f, mid))
            hi = mid;
        else
            lo = mid + 1;
    }
    char sci[40];
    snprintf(sci, sizeof sci, "%.*e", lo, (double)f);
    /* sci is [-]d[.ddd]e(+|-)xx */
    char *e = strchr(sci, 'e');
    long exp10 = strtol(e + 1, NULL, 10);
    *e = '\0';
    char *comma = strchr(sci, ',');
    if (comma)
        *comma = '.'; /* a locale's decimal comma */
    return (size_t)snprintf(out, 32, "%sE%ld", sci, exp10);
}

/* The text dmlc parameters print for a float: ostream precision 9. */
static void param_float_text(float f, char out[32])
{
    snprintf(out, 32, "%.9g", (double)f);
    char *comma = strchr(out, ',');
    if (comma)
        *comma = '.';
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads a float parameter the way XGBoost's parameter parser (dmlc's stof)
 * does, digit accumulation and float arithmetic included, so that the value
 * printed back is the one XGBoost prints. 0, or -1 when XGBoost would
 * refuse the text. */
static int parse_param_float(const char *s, float *out)
{
    const char *p = s;
    while (is_space(*p))
        p++;
    int negative = 0;
    if (*p == '-') {
        negative = 1;
        p++;
    } else if (*p == '+') {
        p++;
    }
    static const char kInfinity[] = "infinity";
    size_t i = 0;
    while (i < 8 && (char)(p[i] | 32) == kInfinity[i])
        i++;
    float value;
    if (i == 3 || i == 8) {
        p += i;
        value = INFINITY;
    } else if ((char)(p[0] | 32) == 'n' && (char)(p[1] | 32) == 'a' && (char)(p[2] | 32) == 'n') {
        p += 3;
        if (*p == '(') {
            p++;
            while (is_digit(*p) || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                   *p == '_')
                p++;
            if (*p != ')')
                return -1;
            p++;
        }
        value = NAN;
    } else {
        uint64_t whole = 0;
        for (; is_digit(*p); p++)
            whole = whole * 10u + (uint64_t)(*p - '0');
        value = (float)whole;
        if (*p == '.') {
            uint64_t frac = 0, scale = 1;
            int digits = 0;
            for (p++; is_digit(*p); p++, digits++) {
                if (digits < 19) {
                    frac = frac * 10u + (uint64_t)(*p - '0');
                    scale *= 10u;
                }
            }
            value += (float)((double)frac / (double)scale);
        }
        if (*p == 'e' || *p == 'E') {
            p++;
            int divide = 0;
            if (*p == '-') {
                divide = 1;
                p++;
            } else if (*p == '+') {
                p++;
            }
            unsigned expon = 0;
            for (; is_digit(*p); p++)
                expon = expon * 10u + (unsigned)(*p - '0');
            /* Out of float range: XGBoost reports it as an error. */
            if (expon > 38)
                return -1;
            if (expon == 38 &&
                ((!divide && value > 3.402823466f) || (divide && value < 1.175494351f)))
                return -1;
            float scale = 1.0f;
            while (expon >= 8) {
                scale *= 1e8f;
                expon -= 8;
            }
            while (expon > 0) {
                scale *= 10.0f;
                expon--;
            }
            value = divide ? value / scale : value * scale;
        }
        if (*p == 'f' || *p == 'F')
            p++;
    }
    if (p == s || *p != '\0')
        return -1;
    *out = negative ? -value : value;
    return 0;
}

/* An integer parameter as an istream reads it: spaces, sign, digits,
 * trailing spaces only. */
static int parse_param_int(const char *s, long long min, long long max, long long *out)
{
    const char *p = s;
    while (is_space(*p))
        p++;
    int negative = 0;
    if (*p == '-' || *p == '+')
        negative = *p++ == '-';
    if (!is_digit(*p))
        return -1;
    long long v = 0;
    for (; is_digit(*p); p++) {
        if (v > (LLONG_MAX - 9) / 10)
            return -1;
        v = v * 10 + (*p - '0');
    }
    while (is_space(*p))
        p++;
    if (*p != '\0')
        return -1;
    v = negative ? -v : v;
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* ---- the first pass: read and check ---- */

static const objective_def_t *find_objective(const reader_t *r, span_t name)
{
    for (size_t i = 0; i < sizeof kObjectives / sizeof kObjectives[0]; i++) {
        if (span_is(r, name, kObjectives[i].file_name))
            return &kObjectives[i];
    }
    return NULL;
}

static int read_learner_param(reader_t *r, model_t *m)
{
    if (need(r, LEARNER_PARAM_BYTES, "the learner parameters") < 0)
        return -1;
    const unsigned char *q = r->p + r->pos;
    m->base_score = lef(q);
    m->num_feature = le32(q + 4);
    m->num_class = le32s(q + 8);
    m->extra_attrs = le32s(q + 12);
    m->eval_metrics = le32s(q + 16);
    m->major = le32(q + 20);
    m->minor = le32(q + 24);
    m->num_target = le32(q + 28);
    m->boost_from_average = le32s(q + 32);
    size_t at = r->pos;
    r->pos += LEARNER_PARAM_BYTES;
    /* Files before 1.6 have zeros where num_target went; XGBoost reads 1. */
    if (m->num_target == 0)
        m->num_target = 1;
    if (m->num_feature == 0) {
        fail(r, at + 4, "num_feature is 0 (XGBoost refuses to predict with such a model)");
        return -1;
    }
    if (m->num_class < 0) {
        fail(r, at + 8, "negative num_class %d", (int)m->num_class);
        return -1;
    }
    if (m->num_class > 1 && m->num_target > 1) {
        unsupported(r, "a model with both num_class %d and num_target %u", (int)m->num_class,
                    (unsigned)m->num_target);
        return -1;
    }
    uint32_t classes = m->num_class > 1 ? (uint32_t)m->num_class : 1u;
    m->num_groups = classes > m->num_target ? classes : m->num_target;
    return 0;
}

/* Checks one tree: counts against the bytes, links against each other (a
 * walk from the root that meets every reachable node once), and records
 * where it is. seen/stack are scratch of at least num_nodes entries. */
static int read_tree(reader_t *r, const model_t *m, int32_t t, unsigned char *seen, int32_t *stack)
{
    size_t at = r->pos;
    const unsigned char *q = r->p + r->pos;
    int32_t num_roots = le32s(q);
    int32_t num_nodes = le32s(q + 4);
    int32_t num_deleted = le32s(q + 8);
    int32_t size_leaf_vector = le32s(q + 20);
    r->pos += TREE_PARAM_BYTES;
    if (num_roots != 1) {
        unsupported(r, "tree %d has %d roots (byte %zu); only single-root trees are served", (int)t,
                    (int)num_roots, at);
        return -1;
    }
    if (size_leaf_vector < 0 || size_leaf_vector > 1 || (size_leaf_vector == 1 && m->major < 2)) {
        unsupported(r, "tree %d has leaf vectors of size %d (byte %zu)", (int)t,
                    (int)size_leaf_vector, at + 20);
        return -1;
    }
    if (num_nodes < 1 || (size_t)num_nodes > left(r) / (NODE_BYTES + NODE_STAT_BYTES)) {
        fail(r, at + 4, "tree %d declares %d nodes, which the %zu bytes left cannot hold", (int)t,
             (int)num_nodes, left(r));
        return -1;
    }
    size_t nodes_off = r->pos;
    size_t n = (size_t)num_nodes;
    r->pos += n * (NODE_BYTES + NODE_STAT_BYTES);

    memset(seen, 0, n);
    int32_t deleted = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *node = r->p + nodes_off + i * NODE_BYTES;
        if (i == 0) {
            if ((le32(node) & 0x7fffffffu) != 0x7fffffffu) {
                fail(r, nodes_off, "tree %d: the root has parent %u", (int)t,
                     (unsigned)(le32(node) & 0x7fffffffu));
                return -1;
            }
            continue;
        }
        if (le32(node + 12) == DELETED_NODE)
            deleted++;
        /* XGBoost follows every node's parent link when it loads JSON. */
        uint32_t parent = le32(node) & 0x7fffffffu;
        if (parent >= n) {
            fail(r, nodes_off + i * NODE_BYTES,
                 "tree %d node %zu: parent %u is out of range (%zu nodes)", (int)t, i,
                 (unsigned)parent, n);
            return -1;
        }
    }
    if (deleted != num_deleted) {
        fail(r, at + 8, "tree %d declares %d deleted nodes but has %d", (int)t, (int)num_deleted,
             (int)deleted);
        return -1;
    }

    size_t top = 0;
    stack[top++] = 0;
    seen[0] = 1;
    while (top > 0) {
        int32_t u = stack[--top];
        size_t uoff = nodes_off + (size_t)u * NODE_BYTES;
        const unsigned char *node = r->p + uoff;
        int32_t cleft = le32s(node + 4);
        int32_t cright = le32s(node + 8);
        uint32_t sindex = le32(node + 12);
        if (u != 0 && sindex == DELETED_NODE) {
            fail(r, uoff + 12, "tree %d node %d is deleted but reachable from the root", (int)t,
                 (int)u);
            return -1;
        }
        if (cleft == -1)
            continue; /* a leaf; its right link is not used */
        int32_t kids[2] = {cleft, cright};
        for (int k = 0; k < 2; k++) {
            int32_t c = kids[k];
            size_t coff = uoff + 4 + 4 * (size_t)k;
            if (c < 1 || (size_t)c >= n) {
                fail(r, coff, "tree %d node %d: %s child %d is out of range (%zu nodes)", (int)t,
                     (int)u, k ? "right" : "left", (int)c, n);
                return -1;
            }
            if (seen[c]) {
                fail(r, coff,
                     "tree %d node %d: %s child %d is reached twice (a cycle or a shared node)",
                     (int)t, (int)u, k ? "right" : "left", (int)c);
                return -1;
            }
            uint32_t back = le32(r->p + nodes_off + (size_t)c * NODE_BYTES) & 0x7fffffffu;
            if (back != (uint32_t)u) {
                fail(r, nodes_off + (size_t)c * NODE_BYTES,
                     "tree %d node %d names parent %u, but node %d has it as a child", (int)t,
                     (int)c, (unsigned)back, (int)u);
                return -1;
            }
            seen[c] = 1;
            stack[top++] = c;
        }
        if ((sindex & 0x7fffffffu) >= m->num_feature) {
            fail(r, uoff + 12,
                 "tree %d node %d splits on feature %u, but the model has %u features", (int)t,
                 (int)u, (unsigned)(sindex & 0x7fffffffu), (unsigned)m->num_feature);
            return -1;
        }
    }
    return 0;
}

static int read_gbtree(reader_t *r, model_t *m, unsigned char **seen, int32_t **stack)
{
    size_t at = r->pos;
    if (need(r, GBTREE_PARAM_BYTES, "the gbtree parameters") < 0)
        return -1;
    const unsigned char *q = r->p + r->pos;
    m->num_trees = le32s(q);
    m->num_parallel_tree = le32s(q + 4);
    m->gbtree_size_leaf_vector = le32s(q + 28);
    r->pos += GBTREE_PARAM_BYTES;
    size_t min_tree = TREE_PARAM_BYTES + NODE_BYTES + NODE_STAT_BYTES + 4; /* + tree_info */
    if (m->num_trees < 0 || (size_t)m->num_trees > left(r) / min_tree) {
        fail(r, at, "num_trees %d is more than the %zu bytes left can hold", (int)m->num_trees,
             left(r));
        return -1;
    }
    if (m->num_trees == 0) {
        unsupported(r, "a model without trees (XGBoost 3.x cannot load it)");
        return -1;
    }
    if (m->num_parallel_tree < 1) {
        fail(r, at + 4, "num_parallel_tree is %d", (int)m->num_parallel_tree);
        return -1;
    }
    if (m->gbtree_size_leaf_vector != 0) {
        unsupported(r, "leaf vectors of size %d (byte %zu)", (int)m->gbtree_size_leaf_vector,
                    at + 28);
        return -1;
    }
    m->tree_offs = malloc(sizeof *m->tree_offs * (size_t)m->num_trees);
    if (!m->tree_offs) {
        fail(r, at, "out of memory");
        return -1;
    }
    size_t cap = 0;
    for (int32_t t = 0; t < m->num_trees; t++) {
        if (need(r, TREE_PARAM_BYTES, "a tree's parameters") < 0)
            return -1;
        m->tree_offs[t] = r->pos;
        int32_t num_nodes = le32s(r->p + r->pos + 4);
        /* Scratch grows to the largest tree, which the bytes bound. */
        if (num_nodes > 0 && (size_t)num_nodes > cap &&
            (size_t)num_nodes <= (left(r) - TREE_PARAM_BYTES) / (NODE_BYTES + NODE_STAT_BYTES)) {
            unsigned char *s = realloc(*seen, (size_t)num_nodes);
            if (s)
                *seen = s;
            int32_t *k = s ? realloc(*stack, sizeof **stack * (size_t)num_nodes) : NULL;
            if (!s || !k) {
                fail(r, r->pos, "out of memory");
                return -1;
            }
            *stack = k;
            cap = (size_t)num_nodes;
        }
        if (read_tree(r, m, t, *seen, *stack) < 0)
            return -1;
    }
    m->tree_info_off = r->pos;
    if (need(r, 4 * (size_t)m->num_trees, "tree_info") < 0)
        return -1;
    int32_t max_group = 0;
    for (int32_t t = 0; t < m->num_trees; t++) {
        int32_t g = le32s(r->p + r->pos + 4 * (size_t)t);
        if (g < 0 || (uint32_t)g >= m->num_groups) {
            fail(r, r->pos + 4 * (size_t)t,
                 "tree %d belongs to output group %d, but the model has %u", (int)t, (int)g,
                 (unsigned)m->num_groups);
            return -1;
        }
        if (g > max_group)
            max_group = g;
    }
    /* Every round grows one tree per output group, so a model's trees cover
     * all its groups; more groups than that would only make XGBoost
     * allocate outputs (and 3.x intercepts) no tree feeds. */
    if ((uint32_t)max_group + 1 != m->num_groups) {
        fail(r, r->pos, "the trees cover %d output groups, but the model declares %u",
             (int)(max_group + 1), (unsigned)m->num_groups);
        return -1;
    }
    r->pos += 4 * (size_t)m->num_trees;
    /* XGBoost 3.x splits the trees into rounds of num_parallel_tree times
     * the groups it sees and refuses a model that does not divide. */
    long long layer = (long long)m->num_parallel_tree * (max_group + 1);
    if (m->num_trees % layer != 0) {
        unsupported(r,
                    "%d trees do not make whole rounds of %lld (num_parallel_tree %d x %d groups); "
                    "XGBoost 3.x refuses such a model",
                    (int)m->num_trees, layer, (int)m->num_parallel_tree, (int)(max_group + 1));
        return -1;
    }
    if (m->booster == BOOSTER_DART) {
        size_t count, cat = r->pos;
        if (read_count(r, 4, "weight_drop", &count) < 0)
            return -1;
        if (count != (size_t)m->num_trees) {
            fail(r, cat, "weight_drop has %zu weights for %d trees", count, (int)m->num_trees);
            return -1;
        }
        m->weight_drop_off = r->pos;
        r->pos += 4 * count;
    }
    return 0;
}

static int read_gblinear(reader_t *r, model_t *m)
{
    if (need(r, GBLINEAR_PARAM_BYTES, "the gblinear parameters") < 0)
        return -1;
    r->pos += GBLINEAR_PARAM_BYTES;
    size_t at = r->pos;
    if (read_count(r, 4, "weights", &m->num_weights) < 0)
        return -1;
    uint64_t want = ((uint64_t)m->num_feature + 1) * m->num_groups;
    if (m->num_weights != want) {
        fail(r, at, "gblinear has %zu weights, but %u features and %u groups need %llu",
             m->num_weights, (unsigned)m->num_feature, (unsigned)m->num_groups,
             (unsigned long long)want);
        return -1;
    }
    m->weights_off = r->pos;
    r->pos += 4 * m->num_weights;
    m->num_trees = 0;
    m->num_parallel_tree = 1;
    return 0;
}

static int compare_attrs(const void *a, const void *b, void *base)
{
    const attr_t *x = a, *y = b;
    const unsigned char *p = base;
    size_t n = x->key.len < y->key.len ? x->key.len : y->key.len;
    int c = memcmp(p + x->key.off, p + y->key.off, n);
    if (c)
        return c;
    if (x->key.len != y->key.len)
        return x->key.len < y->key.len ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Insertion sort would be quadratic on a hostile file; this is a plain
 * merge sort with a context pointer (qsort has none in C11). */
static void sort_attrs(attr_t *a, attr_t *tmp, size_t n, const unsigned char *base)
{
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = compare_attrs(&a[j], &a[i], (void *)base) < 0 ? a[j++] : a[i++];
            while (i < mid)
                tmp[k++] = a[i++];
            while (j < hi)
                tmp[k++] = a[j++];
        }
        memcpy(a, tmp, sizeof *a * n);
    }
}

static int read_attributes(reader_t *r, model_t *m)
{
    size_t count;
    if (read_count(r, 16, "attribute", &count) < 0)
        return -1;
    if (count == 0)
        return 0;
    m->attrs = malloc(sizeof *m->attrs * count);
    attr_t *tmp = malloc(sizeof *tmp * count);
    if (!m->attrs || !tmp) {
        free(tmp);
        fail(r, r->pos, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        attr_t *a = &m->attrs[i];
        a->order = i;
        if (read_string(r, "attribute key", &a->key) < 0 ||
            read_string(r, "attribute value", &a->value) < 0) {
            free(tmp);
            return -1;
        }
        span_t parts[2] = {a->key, a->value};
        for (int k = 0; k < 2; k++) {
            size_t bad = utf8_check(r->p + parts[k].off, parts[k].len);
            if (bad < parts[k].len) {
                fail(r, parts[k].off + bad, "attribute %zu's %s is not UTF-8 text without NUL", i,
                     k ? "value" : "key");
                free(tmp);
                return -1;
            }
        }
    }
    sort_attrs(m->attrs, tmp, count, r->p);
    free(tmp);
    /* XGBoost builds a std::map from the pairs: the first of equal keys wins. */
    size_t kept = 0;
    for (size_t i = 0; i < count; i++) {
        if (kept > 0 && m->attrs[kept - 1].key.len == m->attrs[i].key.len &&
            memcmp(r->p + m->attrs[kept - 1].key.off, r->p + m->attrs[i].key.off,
                   m->attrs[i].key.len) == 0)
            continue;
        m->attrs[kept++] = m->attrs[i];
    }
    m->num_attrs = kept;
    return 0;
}

static const attr_t *find_attr(const reader_t *r, const model_t *m, const char *key)
{
    for (size_t i = 0; i < m->num_attrs; i++) {
        if (span_is(r, m->attrs[i].key, key))
            return &m->attrs[i];
    }
    return NULL;
}

/* Files before 1.0 end with the poisson max_delta_step string (for
 * count:poisson, when set) and the eval metric names (when
 * contain_eval_metrics). XGBoost 1.x skips both; they are checked here so
 * that nothing unexplained follows the model. */
static int tail_matches(const unsigned char *p, size_t len, size_t pos, int with_string,
                        int with_metrics)
{
    reader_t t = {.p = p, .len = len, .pos = pos, .failed = 0};
    span_t s;
    if (with_string && read_string(&t, "", &s) < 0)
        return 0;
    if (with_metrics) {
        size_t count;
        if (read_count(&t, 8, "", &count) < 0)
            return 0;
        for (size_t i = 0; i < count; i++) {
            if (read_string(&t, "", &s) < 0)
                return 0;
        }
    }
    return t.pos == t.len;
}

static int read_tail(reader_t *r, const model_t *m)
{
    if (left(r) == 0)
        return 0;
    if (m->major == 0) {
        int poisson = span_is(r, m->objective, "count:poisson");
        int metrics = m->eval_metrics != 0;
        if ((poisson && tail_matches(r->p, r->len, r->pos, 1, metrics)) ||
            tail_matches(r->p, r->len, r->pos, 0, metrics)) {
            r->pos = r->len;
            return 0;
        }
    }
    fail(r, r->pos, "%zu bytes follow the model", left(r));
    return -1;
}

static int read_model(reader_t *r, model_t *m)
{
    unsigned char *seen = NULL;
    int32_t *stack = NULL;
    if (r->len >= 4 && memcmp(r->p, "bs64", 4) == 0) {
        unsupported(r, "the base64 \"bs64\" model format (no XGBoost since 0.7 reads it)");
        goto fail;
    }
    if (r->len >= 1 && r->p[0] == '{') {
        fail(r, 0, "this is a JSON or UBJSON model, not the legacy binary format");
        goto fail;
    }
    if (r->len >= 4 && memcmp(r->p, "binf", 4) == 0) {
        m->binf = 1;
        r->pos = 4;
    }
    if (read_learner_param(r, m) < 0)
        goto fail;
    size_t at = r->pos;
    if (read_string(r, "the objective name", &m->objective) < 0)
        goto fail;
    char shown[64];
    m->obj = find_objective(r, m->objective);
    if (!m->obj && m->major < 2) {
        if (m->objective.len == 0)
            fail(r, at, "empty objective name");
        else
            unsupported(r, "objective \"%s\"", span_show(r, m->objective, shown, sizeof shown));
        goto fail;
    }
    at = r->pos;
    if (read_string(r, "the booster name", &m->booster_name) < 0)
        goto fail;
    if (span_is(r, m->booster_name, "gbtree")) {
        m->booster = BOOSTER_GBTREE;
    } else if (span_is(r, m->booster_name, "dart")) {
        m->booster = BOOSTER_DART;
    } else if (span_is(r, m->booster_name, "gblinear")) {
        m->booster = BOOSTER_GBLINEAR;
    } else {
        unsupported(r, "booster \"%s\" (byte %zu)",
                    span_show(r, m->booster_name, shown, sizeof shown), at);
        goto fail;
    }
    if (m->booster == BOOSTER_GBLINEAR) {
        if (read_gblinear(r, m) < 0)
            goto fail;
    } else if (read_gbtree(r, m, &seen, &stack) < 0) {
        goto fail;
    }
    if (m->extra_attrs != 0 && read_attributes(r, m) < 0)
        goto fail;
    if (read_tail(r, m) < 0)
        goto fail;
    free(seen);
    free(stack);
    return 0;
fail:
    free(seen);
    free(stack);
    return -1;
}

/* ---- the objective, as XGBoost 1.7 configures it after loading ---- */

/* The undoing of the margin base_score files before 1.0 stored: the
 * objective's prediction transform, in float as XGBoost computes it. */
static float pred_transform(enum link link, float x)
{
    switch (link) {
    case LINK_SIGMOID: {
        float neg = -x < 88.7f ? -x : 88.7f;
        float denom = expf(neg) + 1.0f + 1e-16f;
        return 1.0f / denom;
    }
    case LINK_EXP:
        return expf(x);
    case LINK_HINGE:
        return x > 0.0f ? 1.0f : 0.0f;
    case LINK_IDENTITY:
    default:
        return x;
    }
}

/* The saved text of parameter `key` in the saved block (NULL when absent);
 * -1 when it is there but not a string, which XGBoost refuses. */
static int saved_text(reader_t *r, size_t at, json_t *saved, const char *key, const char **text)
{
    json_t *s = saved ? json_object_get(saved, key) : NULL;
    if (s && !json_is_string(s)) {
        fail(r, at, "the saved objective parameter %s is not a string", key);
        return -1;
    }
    if (s)
        *text = json_string_value(s);
    return 0;
}

/* Sets block[key] to a float parameter as XGBoost 1.7 ends up with it: the
 * default, else the saved text (parsed as XGBoost parses it), else the
 * learner's override; range-checked as XGBoost checks it and printed as
 * XGBoost prints parameters. */
static int float_param(reader_t *r, size_t at, json_t *block, json_t *saved, const char *key,
                       float dflt, float min, float max, const char *override)
{
    float v = dflt;
    const char *text = override;
    if (!text && saved_text(r, at, saved, key, &text) < 0)
        return -1;
    if (text && parse_param_float(text, &v) < 0) {
        unsupported(r, "objective parameter %s=\"%.40s\" (XGBoost refuses it)", key, text);
        return -1;
    }
    if (v < min || v > max) {
        unsupported(r, "objective parameter %s=%g outside [%g, %g] (XGBoost refuses it)", key,
                    (double)v, (double)min, (double)max);
        return -1;
    }
    char buf[32];
    param_float_text(v, buf);
    if (json_object_set_new(block, key, json_string(buf)) < 0) {
        fail(r, at, "out of memory");
        return -1;
    }
    return 0;
}

static int int_param(reader_t *r, size_t at, json_t *block, json_t *saved, const char *key,
                     long long dflt, long long min, const char *override)
{
    long long v = dflt;
    const char *text = override;
    if (!text && saved_text(r, at, saved, key, &text) < 0)
        return -1;
    if (text && parse_param_int(text, min, INT32_MAX, &v) < 0) {
        unsupported(r, "objective parameter %s=\"%.40s\" (XGBoost refuses it)", key, text);
        return -1;
    }
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    if (json_object_set_new(block, key, json_string(buf)) < 0) {
        fail(r, at, "out of memory");
        return -1;
    }
    return 0;
}

/* The saved objective configuration (attribute "objective", written since
 * 1.0), parsed into *out; *out NULL when there is none. */
static int saved_objective(reader_t *r, const model_t *m, json_t **out, size_t *at)
{
    *out = NULL;
    *at = 0;
    const attr_t *a = find_attr(r, m, "objective");
    if (!a)
        return 0;
    *at = a->value.off;
    json_error_t jerr;
    json_t *v =
        json_loadb((const char *)r->p + a->value.off, a->value.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!v) {
        fail(r, a->value.off + (jerr.position > 0 ? (size_t)jerr.position : 0),
             "the saved objective configuration is not JSON: %s", jerr.text);
        return -1;
    }
    if (!json_is_object(v) || !json_is_string(json_object_get(v, "name"))) {
        fail(r, a->value.off, "the saved objective configuration is not an object with a name");
        json_decref(v);
        return -1;
    }
    *out = v;
    return 0;
}

static const char *const kParamBlocks[] = {
    [PARAMS_NONE] = NULL,
    [PARAMS_REG_LOSS] = "reg_loss_param",
    [PARAMS_HUBER] = "pseudo_huber_param",
    [PARAMS_POISSON] = "poisson_regression_param",
    [PARAMS_TWEEDIE] = "tweedie_regression_param",
    [PARAMS_SOFTMAX] = "softmax_multiclass_param",
    [PARAMS_RANK] = "lambda_rank_param",
    [PARAMS_AFT] = "aft_loss_param",
};

/* Fills the parameter block of a 1.7 objective. */
static int fill_params(reader_t *r, const model_t *m, size_t at, json_t *block, json_t *sv)
{
    char shown[64];
    switch (m->obj->params) {
    case PARAMS_REG_LOSS:
        return float_param(r, at, block, sv, "scale_pos_weight", 1.0f, 0.0f, INFINITY, NULL);
    case PARAMS_HUBER:
        return float_param(r, at, block, sv, "huber_slope", 1.0f, -INFINITY, INFINITY, NULL);
    case PARAMS_POISSON: {
        /* XGBoost 1.x sets max_delta_step from the learner's configuration
         * over the saved one: the pre-1.0 attribute, else "0.7". */
        const attr_t *a = find_attr(r, m, "count_poisson_max_delta_step");
        char text[64] = "0.7";
        if (a) {
            if (a->value.len >= sizeof text) {
                unsupported(r, "count_poisson_max_delta_step \"%s\"",
                            span_show(r, a->value, shown, sizeof shown));
                return -1;
            }
            memcpy(text, r->p + a->value.off, a->value.len);
            text[a->value.len] = '\0';
        }
        return float_param(r, at, block, NULL, "max_delta_step", 0.7f, 0.0f, INFINITY, text);
    }
    case PARAMS_TWEEDIE:
        return float_param(r, at, block, sv, "tweedie_variance_power", 1.5f, 1.0f, 2.0f, NULL);
    case PARAMS_SOFTMAX: {
        /* Always the learner's num_class, which XGBoost applies on top. */
        char text[16];
        snprintf(text, sizeof text, "%d", (int)m->num_class);
        return int_param(r, at, block, NULL, "num_class", 0, 1, text);
    }
    case PARAMS_RANK:
        if (float_param(r, at, block, sv, "fix_list_weight", 0.0f, 0.0f, INFINITY, NULL) < 0)
            return -1;
        return int_param(r, at, block, sv, "num_pairsample", 1, 1, NULL);
    case PARAMS_AFT: {
        const char *dist = "normal";
        if (saved_text(r, at, sv, "aft_loss_distribution", &dist) < 0)
            return -1;
        if (strcmp(dist, "normal") && strcmp(dist, "logistic") && strcmp(dist, "extreme")) {
            unsupported(r, "aft_loss_distribution \"%.40s\"", dist);
            return -1;
        }
        if (json_object_set_new(block, "aft_loss_distribution", json_string(dist)) < 0) {
            fail(r, at, "out of memory");
            return -1;
        }
        return float_param(r, at, block, sv, "aft_loss_distribution_scale", 1.0f, -INFINITY,
                           INFINITY, NULL);
    }
    case PARAMS_NONE:
    default:
        return 0;
    }
}

/* Builds learner.objective the way XGBoost 1.7 has it after loading the
 * file: defaults, then the saved configuration, then the learner's own
 * num_class and (count:poisson) max_delta_step, which XGBoost applies on
 * top. Where 1.7 cannot read a 2.x file's saved configuration (objectives
 * it does not know, or 2.x's new parameters for the lambdarank ones), the
 * configuration 2.x saved is kept as it is: that is what 3.x reads. */
static json_t *build_objective(reader_t *r, const model_t *m)
{
    json_t *saved = NULL, *out = NULL, *block = NULL;
    size_t at;
    char shown[64];
    if (saved_objective(r, m, &saved, &at) < 0)
        goto fail;
    const char *block_name = m->obj ? kParamBlocks[m->obj->params] : NULL;
    int keep_saved = m->major >= 2 && saved &&
                     (!m->obj || (block_name && m->obj->params != PARAMS_HUBER &&
                                  !json_object_get(saved, block_name)));
    if (keep_saved) {
        const char *name = json_string_value(json_object_get(saved, "name"));
        if (!span_is(r, m->objective, name) && !(m->obj && strcmp(m->obj->json_name, name) == 0)) {
            fail(r, at, "the saved objective \"%.40s\" is not the file's \"%s\"", name,
                 span_show(r, m->objective, shown, sizeof shown));
            goto fail;
        }
        return saved;
    }
    if (!m->obj) {
        unsupported(r, "objective \"%s\"", span_show(r, m->objective, shown, sizeof shown));
        goto fail;
    }
    json_t *sv = saved && block_name ? json_object_get(saved, block_name) : NULL;
    if (sv && !json_is_object(sv)) {
        fail(r, at, "the saved %s is not an object", block_name);
        goto fail;
    }
    out = json_object();
    block = json_object();
    if (!out || !block || json_object_set_new(out, "name", json_string(m->obj->json_name)) < 0) {
        fail(r, at, "out of memory");
        goto fail;
    }
    if (fill_params(r, m, at, block, sv) < 0)
        goto fail;
    if (block_name) {
        int rc = json_object_set(out, block_name, block);
        if (rc < 0) {
            fail(r, at, "out of memory");
            goto fail;
        }
    }
    json_decref(block);
    json_decref(saved);
    return out;
fail:
    json_decref(block);
    json_decref(out);
    json_decref(saved);
    return NULL;
}

/* ---- the second pass: writing ---- */

typedef struct writer {
    sms_buf_t b;
    int oom;
} writer_t;

static void put(writer_t *w, const char *s)
{
    if (!w->oom && sms_buf_append(&w->b, s, strlen(s)) < 0)
        w->oom = 1;
}

static void putn(writer_t *w, const void *s, size_t n)
{
    if (!w->oom && sms_buf_append(&w->b, s, n) < 0)
        w->oom = 1;
}

static void put_i64(writer_t *w, long long v)
{
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%lld", v);
    putn(w, buf, (size_t)n);
}

static void put_f32(writer_t *w, float f)
{
    char buf[32];
    size_t n = format_f32(f, buf);
    putn(w, buf, n);
}

/* A JSON string; the text is valid UTF-8 without NUL (checked on reading). */
static void put_str(writer_t *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    putn(w, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        putn(w, s + run, i - run);
        run = i + 1;
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t len = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            len = 6;
        }
        putn(w, esc, len);
    }
    putn(w, s + run, n - run);
    putn(w, "\"", 1);
}

static void put_key(writer_t *w, const char *key)
{
    put_str(w, key, strlen(key));
    putn(w, ":", 1);
}

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Writes a jansson value with object keys in byte order, as XGBoost's
 * std::map does. Depth is bounded by the caller's check. */
static int put_json(writer_t *w, json_t *v, int depth)
{
    if (depth > MAX_OBJECTIVE_DEPTH)
        return -1;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(v), i = 0;
        const char **keys = malloc(sizeof *keys * (n ? n : 1));
        if (!keys)
            return -1;
        const char *key;
        json_t *child;
        json_object_foreach(v, key, child) keys[i++] = key;
        qsort(keys, n, sizeof *keys, compare_keys);
        putn(w, "{", 1);
        int rc = 0;
        for (i = 0; i < n && rc == 0; i++) {
            if (i)
                putn(w, ",", 1);
            put_key(w, keys[i]);
            rc = put_json(w, json_object_get(v, keys[i]), depth + 1);
        }
        putn(w, "}", 1);
        free(keys);
        return rc;
    }
    case JSON_ARRAY: {
        putn(w, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                putn(w, ",", 1);
            if (put_json(w, json_array_get(v, i), depth + 1) < 0)
                return -1;
        }
        putn(w, "]", 1);
        return 0;
    }
    case JSON_STRING:
        put_str(w, json_string_value(v), json_string_length(v));
        return 0;
    case JSON_INTEGER:
        put_i64(w, (long long)json_integer_value(v));
        return 0;
    case JSON_REAL:
        put_f32(w, (float)json_real_value(v));
        return 0;
    case JSON_TRUE:
        put(w, "true");
        return 0;
    case JSON_FALSE:
        put(w, "false");
        return 0;
    case JSON_NULL:
    default:
        put(w, "null");
        return 0;
    }
}

enum node_field { F_PARENT, F_LEFT, F_RIGHT, F_INDEX, F_DEFAULT_LEFT, F_COND };
enum stat_field { S_LOSS = 0, S_HESS = 4, S_WEIGHT = 8 };

static void put_node_ints(writer_t *w, const unsigned char *nodes, size_t n, enum node_field f)
{
    putn(w, "[", 1);
    for (size_t i = 0; i < n; i++) {
        const unsigned char *node = nodes + i * NODE_BYTES;
        long long v;
        switch (f) {
        case F_PARENT:
            v = le32(node) & 0x7fffffffu;
            break;
        case F_LEFT:
            v = le32s(node + 4);
            break;
        case F_RIGHT:
            v = le32s(node + 8);
            break;
        case F_INDEX:
            v = le32(node + 12) & 0x7fffffffu;
            break;
        case F_DEFAULT_LEFT:
        default:
            v = le32(node + 12) >> 31;
            break;
        }
        if (i)
            putn(w, ",", 1);
        put_i64(w, v);
    }
    putn(w, "]", 1);
}

static void put_floats(writer_t *w, const unsigned char *p, size_t n, size_t stride)
{
    putn(w, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            putn(w, ",", 1);
        put_f32(w, lef(p + i * stride));
    }
    putn(w, "]", 1);
}

static void put_tree(writer_t *w, const unsigned char *tp, int32_t id)
{
    size_t n = (size_t)le32s(tp + 4);
    const unsigned char *nodes = tp + TREE_PARAM_BYTES;
    const unsigned char *stats = nodes + n * NODE_BYTES;
    put(w, "{\"base_weights\":");
    put_floats(w, stats + S_WEIGHT, n, NODE_STAT_BYTES);
    put(w, ",\"categories\":[],\"categories_nodes\":[],\"categories_segments\":[],"
           "\"categories_sizes\":[],\"default_left\":");
    put_node_ints(w, nodes, n, F_DEFAULT_LEFT);
    put(w, ",\"id\":");
    put_i64(w, id);
    put(w, ",\"left_children\":");
    put_node_ints(w, nodes, n, F_LEFT);
    put(w, ",\"loss_changes\":");
    put_floats(w, stats + S_LOSS, n, NODE_STAT_BYTES);
    put(w, ",\"parents\":");
    put_node_ints(w, nodes, n, F_PARENT);
    put(w, ",\"right_children\":");
    put_node_ints(w, nodes, n, F_RIGHT);
    put(w, ",\"split_conditions\":");
    put_floats(w, nodes + 16, n, NODE_BYTES);
    put(w, ",\"split_indices\":");
    put_node_ints(w, nodes, n, F_INDEX);
    put(w, ",\"split_type\":[");
    for (size_t i = 0; i < n; i++)
        put(w, i ? ",0" : "0");
    put(w, "],\"sum_hessian\":");
    put_floats(w, stats + S_HESS, n, NODE_STAT_BYTES);
    char buf[160];
    snprintf(buf, sizeof buf,
             ",\"tree_param\":{\"num_deleted\":\"%d\",\"num_feature\":\"%u\",\"num_nodes\":\"%d\","
             "\"size_leaf_vector\":\"%d\"}}",
             (int)le32s(tp + 8), (unsigned)le32(tp + 16), (int)le32s(tp + 4), (int)le32s(tp + 20));
    put(w, buf);
}

static void put_gbtree(writer_t *w, const reader_t *r, const model_t *m)
{
    char buf[160];
    snprintf(
        buf, sizeof buf,
        "{\"model\":{\"gbtree_model_param\":{\"num_parallel_tree\":\"%d\",\"num_trees\":\"%d\","
        "\"size_leaf_vector\":\"%d\"},\"tree_info\":[",
        (int)m->num_parallel_tree, (int)m->num_trees, (int)m->gbtree_size_leaf_vector);
    put(w, buf);
    for (int32_t t = 0; t < m->num_trees; t++) {
        if (t)
            putn(w, ",", 1);
        put_i64(w, le32s(r->p + m->tree_info_off + 4 * (size_t)t));
    }
    put(w, "],\"trees\":[");
    for (int32_t t = 0; t < m->num_trees && !w->oom; t++) {
        if (t)
            putn(w, ",", 1);
        put_tree(w, r->p + m->tree_offs[t], t);
    }
    put(w, "]},\"name\":\"gbtree\"}");
}

static int write_json(writer_t *w, reader_t *r, const model_t *m, json_t *objective,
                      float base_score)
{
    put(w, "{\"learner\":{\"attributes\":{");
    size_t written = 0;
    for (size_t i = 0; i < m->num_attrs; i++) {
        const attr_t *a = &m->attrs[i];
        /* XGBoost 1.x consumes these three on load. */
        if (span_is(r, a->key, "objective") || span_is(r, a->key, "metrics") ||
            span_is(r, a->key, "count_poisson_max_delta_step"))
            continue;
        if (written++)
            putn(w, ",", 1);
        put_str(w, (const char *)r->p + a->key.off, a->key.len);
        putn(w, ":", 1);
        put_str(w, (const char *)r->p + a->value.off, a->value.len);
    }
    put(w, "},\"feature_names\":[],\"feature_types\":[],\"gradient_booster\":");
    if (m->booster == BOOSTER_GBTREE) {
        put_gbtree(w, r, m);
    } else if (m->booster == BOOSTER_DART) {
        put(w, "{\"gbtree\":");
        put_gbtree(w, r, m);
        put(w, ",\"name\":\"dart\",\"weight_drop\":");
        put_floats(w, r->p + m->weight_drop_off, (size_t)m->num_trees, 4);
        putn(w, "}", 1);
    } else {
        put(w, "{\"model\":{\"boosted_rounds\":0,\"weights\":");
        put_floats(w, r->p + m->weights_off, m->num_weights, 4);
        put(w, "},\"name\":\"gblinear\"}");
    }
    char bs[32], buf[256];
    format_f32(base_score, bs);
    snprintf(buf, sizeof buf,
             ",\"learner_model_param\":{\"base_score\":\"%s\",\"boost_from_average\":\"%d\","
             "\"num_class\":\"%d\",\"num_feature\":\"%u\",\"num_target\":\"%u\"},\"objective\":",
             bs, (int)m->boost_from_average, (int)m->num_class, (unsigned)m->num_feature,
             (unsigned)m->num_target);
    put(w, buf);
    if (put_json(w, objective, 0) < 0) {
        fail(r, 0, "the saved objective configuration nests too deeply or is too large");
        return -1;
    }
    if (m->major != 0)
        snprintf(buf, sizeof buf, "},\"version\":[%u,%u,0]}", (unsigned)m->major,
                 (unsigned)m->minor);
    else
        snprintf(buf, sizeof buf, "},\"version\":[%d,%d,%d]}", kJsonVersion[0], kJsonVersion[1],
                 kJsonVersion[2]);
    put(w, buf);
    if (w->oom) {
        fail(r, 0, "out of memory");
        return -1;
    }
    return 0;
}

static void copy_span(const reader_t *r, span_t s, char *out, size_t size)
{
    size_t n = s.len < size - 1 ? s.len : size - 1;
    memcpy(out, r->p + s.off, n);
    out[n] = '\0';
}

char *sms_legacy_convert(const unsigned char *bytes, size_t len, size_t *json_len,
                         sms_legacy_info_t *info, char *errmsg, size_t errmsg_size)
{
    reader_t r = {.p = bytes, .len = bytes ? len : 0, .errmsg = errmsg, .errmsg_size = errmsg_size};
    model_t m = {0};
    json_t *objective = NULL;
    writer_t w = {0};
    if (errmsg && errmsg_size)
        errmsg[0] = '\0';
    if (r.len == 0) {
        fail(&r, 0, "empty input");
        goto fail;
    }
    if (read_model(&r, &m) < 0)
        goto fail;
    objective = build_objective(&r, &m);
    if (!objective)
        goto fail;
    float base_score = m.base_score;
    /* Before 1.0 the file holds the margin; 1.x turns it back into the
     * user's base_score (multi-class objectives kept it as it was). */
    if (m.major < 1 && !(m.objective.len >= 6 && memcmp(r.p + m.objective.off, "multi:", 6) == 0))
        base_score = pred_transform(m.obj ? m.obj->link : LINK_IDENTITY, base_score);
    if (!isfinite(base_score)) {
        unsupported(&r, "base_score %g (XGBoost 3.x refuses a non-finite intercept)",
                    (double)base_score);
        goto fail;
    }
    if (m.obj && m.obj->intercept == INTERCEPT_UNIT && !(base_score > 0.0f && base_score < 1.0f)) {
        unsupported(&r, "base_score %g outside (0, 1) for %s (XGBoost refuses it)",
                    (double)base_score, m.obj->json_name);
        goto fail;
    }
    if (m.obj && m.obj->intercept == INTERCEPT_POSITIVE && !(base_score > 0.0f)) {
        unsupported(&r, "base_score %g is not positive for %s (XGBoost 3.x refuses it)",
                    (double)base_score, m.obj->json_name);
        goto fail;
    }
    if (write_json(&w, &r, &m, objective, base_score) < 0)
        goto fail;
    if (info) {
        memset(info, 0, sizeof *info);
        info->major_version = m.major;
        info->minor_version = m.minor;
        info->has_binf_header = m.binf;
        copy_span(&r, m.objective, info->objective, sizeof info->objective);
        snprintf(info->objective_json, sizeof info->objective_json, "%s",
                 json_string_value(json_object_get(objective, "name")));
        copy_span(&r, m.booster_name, info->booster, sizeof info->booster);
        info->num_feature = m.num_feature;
        info->num_class = m.num_class;
        info->num_target = m.num_target;
        info->base_score = base_score;
        info->num_trees = m.num_trees;
        info->num_parallel_tree = m.num_parallel_tree;
    }
    json_decref(objective);
    free(m.tree_offs);
    free(m.attrs);
    if (json_len)
        *json_len = w.b.len;
    return w.b.data;
fail:
    json_decref(objective);
    free(m.tree_offs);
    free(m.attrs);
    sms_buf_free(&w.b);
    if (!r.failed)
        fail(&r, 0, "conversion failed");
    return NULL;
}

char *sms_legacy_to_json(const unsigned char *bytes, size_t len, size_t *json_len, char *errmsg,
                         size_t errmsg_size)
{
    return sms_legacy_convert(bytes, len, json_len, NULL, errmsg, errmsg_size);
}
