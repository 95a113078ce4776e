/* The native linear evaluator: compiles a gblinear model's JSON into its
 * weights and per-output starting sums, and predicts with XGBoost 3.4's
 * GBLinear::Pred arithmetic: psum = bias + base margin in float, then, for
 * each present feature in order, psum += value * weight, then the
 * objective's transform (forest.c's). A BLAS sgemm is not this arithmetic:
 * it adds the bias last, fuses multiply-adds where the CPU has them and
 * reorders long sums (bench_engine measures how far it lands), so the sums
 * are written out here, rows side by side. */
#include "smserve/linear.h"
#include "smserve/error.h"
#include "smserve/forest.h"
#include "smserve/random.h"
#include "smserve/xjson.h"

#include <jansson.h>
#include <malloc.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The unfused accumulation must stay two roundings whatever the target:
 * GCC contracts a * b + c into a fused multiply-add across statements
 * wherever the CPU has one (arm64), clang within an expression. fmaf is
 * called by name where one rounding is wanted. */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#define BLOCK_ROWS 16
/* Rows of more features than this are summed as they are (sum_rows), not
 * transposed into a block of workspace (sum_rows_unfused); so are batches
 * (and last blocks) of fewer than BLOCK_ROWS / 2 rows. */
#define MAX_BLOCK_FEATURES 4096
/* Bounds that keep the weight matrix and the workspace small. */
#define MAX_FEATURES (1u << 25)
#define MAX_WEIGHTS  (1u << 27)

struct sms_linear {
    sms_objective_t obj;
    size_t num_feature, num_group;
    float *weight; /* num_feature x num_group, as XGBoost keeps them (bias row dropped) */
    float *start;  /* per output: bias + base margin, where every sum starts */
    bool fused;
};

sms_linear_t *sms_linear_compile(const char *json, size_t len, char *why, size_t why_size)
{
    json_t *root = sms_objective_parse_model(json, len, why, why_size);
    if (!root)
        return NULL;
    sms_linear_t *l = NULL;
    json_t *booster = sms_xjson_member(sms_xjson_member(root, "learner"), "gradient_booster");
    const char *name = json_string_value(sms_xjson_member(booster, "name"));
    if (!name || strcmp(name, "gblinear") != 0) {
        sms_refuse(why, why_size, "booster %s is not gblinear", name ? name : "(none)");
        goto fail;
    }
    json_t *model = sms_xjson_member(booster, "model");
    json_t *weights = sms_xjson_member(model, "weights");
    json_t *rounds = sms_xjson_member(model, "boosted_rounds");
    if (!json_is_array(weights) || (rounds && !json_is_integer(rounds))) {
        sms_refuse(why, why_size, "the gblinear model lacks its weights");
        goto fail;
    }
    l = calloc(1, sizeof *l);
    if (!l)
        goto oom;
    /* GBLinear::ModelFitted: boosted_rounds != 0. Models saved before 1.5
     * have no boosted_rounds, so XGBoost 3.4 takes them as unfitted. */
    bool fitted = rounds && json_integer_value(rounds) != 0;
    if (sms_objective_read(root, fitted, &l->obj, why, why_size) < 0)
        goto fail;
    size_t nf = l->obj.num_feature, ng = l->obj.num_group;
    l->num_feature = nf;
    l->num_group = ng;
    if (nf > MAX_FEATURES || (nf + 1) * ng > MAX_WEIGHTS ||
        json_array_size(weights) != (nf + 1) * ng) {
        sms_refuse(why, why_size, "%zu weights for %zu features and %zu outputs (want %zu)",
                   json_array_size(weights), nf, ng, (nf + 1) * ng);
        goto fail;
    }
    l->weight = malloc((nf ? nf : 1) * ng * sizeof *l->weight);
    l->start = malloc(ng * sizeof *l->start);
    if (!l->weight || !l->start)
        goto oom;
    for (size_t i = 0; i < (nf + 1) * ng; i++) {
        double d;
        if (!sms_xjson_number(json_array_get(weights, i), &d) || !isfinite(d) ||
            !isfinite((float)d)) {
            sms_refuse(why, why_size, "weight %zu is not a finite float", i);
            goto fail;
        }
        if (i < nf * ng)
            l->weight[i] = (float)d;
        else /* the bias row; every output starts from base_score(0) */
            l->start[i - nf * ng] = (float)d + l->obj.base_margin[0];
    }
    json_decref(root);
    return l;
oom:
    sms_refuse(why, why_size, "out of memory compiling the model");
fail:
    sms_linear_free(l);
    json_decref(root);
    return NULL;
}

void sms_linear_free(sms_linear_t *l)
{
    if (!l)
        return;
    free(l->weight);
    free(l->start);
    free(l);
}

size_t sms_linear_num_feature(const sms_linear_t *l)
{
    return l->num_feature;
}

size_t sms_linear_num_output(const sms_linear_t *l)
{
    return l->obj.num_output;
}

size_t sms_linear_bytes(const sms_linear_t *l)
{
    if (!l)
        return 0;
    return malloc_usable_size((void *)l) + malloc_usable_size(l->weight) +
           malloc_usable_size(l->start);
}

size_t sms_linear_workspace_floats(const sms_linear_t *l)
{
    size_t block = l->num_feature <= MAX_BLOCK_FEATURES ? l->num_feature : 0;
    return BLOCK_ROWS * (l->num_group + block);
}

void sms_linear_set_fused(sms_linear_t *l, bool fused)
{
    l->fused = fused;
}

bool sms_linear_fused(const sms_linear_t *l)
{
    return l->fused;
}

/* The sums of n rows into acc (n x num_group), one sum at a time, in a
 * register: each in feature order, a missing value skipped (it leaves the
 * sum as it was, -0 included). For the fused accumulation, few rows, and
 * rows too wide to transpose. */
static inline __attribute__((always_inline)) void sum_rows(const sms_linear_t *l, const float *x,
                                                           size_t n, float *acc, const bool fused)
{
    const size_t nf = l->num_feature, ng = l->num_group;
    for (size_t r = 0; r < n; r++) {
        const float *row = x + r * nf;
        for (size_t g = 0; g < ng; g++) {
            const float *w = l->weight + g;
            float a = l->start[g];
            for (size_t j = 0; j < nf; j++) {
                float v = row[j];
                if (v == v)
                    a = fused ? fmaf(v, w[j * ng], a) : a + v * w[j * ng];
            }
            acc[r * ng + g] = a;
        }
    }
}

typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

static inline v4f load4(const float *p)
{
    v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* The same with two roundings (the product, then the sum), BLOCK_ROWS rows
 * in vectors of four, whose chains of dependent additions overlap: the
 * block (BLOCK_ROWS x num_feature floats of workspace) holds the rows
 * transposed. A missing value's product is NaN (values are finite, weights
 * too, so no other product is), and is replaced by -0, which added to any
 * sum leaves it as it was: the sum XGBoost skips it in. */
static void sum_rows_unfused(const sms_linear_t *l, const float *x, size_t n, float *acc,
                             float *block)
{
    const size_t nf = l->num_feature, ng = l->num_group;
    for (size_t r = 0; r < BLOCK_ROWS; r++)
        for (size_t j = 0; j < nf; j++)
            block[j * BLOCK_ROWS + r] = r < n ? x[r * nf + j] : 0.0f;
    const v4i negative_zero = {INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN};
    for (size_t g = 0; g < ng; g++) {
        v4f a[BLOCK_ROWS / 4];
        for (size_t k = 0; k < BLOCK_ROWS / 4; k++)
            a[k] = (v4f){l->start[g], l->start[g], l->start[g], l->start[g]};
        for (size_t j = 0; j < nf; j++) {
            float wj = l->weight[j * ng + g];
            v4f w = {wj, wj, wj, wj};
            for (size_t k = 0; k < BLOCK_ROWS / 4; k++) {
                v4f p = load4(block + j * BLOCK_ROWS + 4 * k) * w;
                v4i present = p == p;
                p = (v4f)(((v4i)p & present) | (negative_zero & ~present));
                a[k] = a[k] + p;
            }
        }
        float sums[BLOCK_ROWS];
        memcpy(sums, a, sizeof sums);
        for (size_t r = 0; r < n; r++)
            acc[r * ng + g] = sums[r];
    }
}

static void predict_rows(const sms_linear_t *l, const float *x, size_t rows, float *out,
                         float *work)
{
    const size_t nf = l->num_feature, ng = l->num_group, no = l->obj.num_output;
    float *acc = work, *block = work + BLOCK_ROWS * ng;
    for (size_t r = 0; r < rows; r += BLOCK_ROWS) {
        size_t n = rows - r < BLOCK_ROWS ? rows - r : BLOCK_ROWS;
        if (l->fused)
            sum_rows(l, x + r * nf, n, acc, true);
        else if (nf > MAX_BLOCK_FEATURES || n < BLOCK_ROWS / 2) /* a block of few rows: wasted */
            sum_rows(l, x + r * nf, n, acc, false);
        else
            sum_rows_unfused(l, x + r * nf, n, acc, block);
        for (size_t k = 0; k < n; k++)
            sms_objective_finish(&l->obj, acc + k * ng, out + (r + k) * no);
    }
}

void sms_linear_predict(const sms_linear_t *l, const float *x, size_t rows, float *out, float *work)
{
    predict_rows(l, x, rows, out, work);
}

void sms_linear_probe(const sms_linear_t *l, unsigned seed, size_t rows, float *out)
{
    uint64_t s = 0x11AEA7ull ^ ((uint64_t)seed << 17);
    const size_t nf = l->num_feature, ng = l->num_group;
    for (size_t r = 0; r < rows; r++) {
        /* Every fourth row makes each term about +-1000 / (the feature's
         * largest weight), so that the terms cancel. */
        bool cancel = r % 4 == 3;
        for (size_t j = 0; j < nf; j++) {
            float *v = &out[r * nf + j];
            unsigned pick = (unsigned)(sms_splitmix64(&s) % 100);
            if (pick < 10) {
                *v = NAN;
            } else if (pick < 12) {
                *v = pick == 10 ? 0.0f : -0.0f;
            } else if (pick == 12) {
                *v = sms_splitmix64(&s) % 2 ? 1e30f : -1e30f; /* products may overflow */
            } else if (cancel) {
                float w = 0.0f;
                for (size_t g = 0; g < ng; g++)
                    w = fmaxf(w, fabsf(l->weight[j * ng + g]));
                double m = w > 0.0f ? 1000.0 / w : 1.0;
                *v = (float)((sms_splitmix64(&s) % 2 ? m : -m) * (0.5 + sms_splitmix64_unit(&s)));
            } else {
                double e = ldexp(1.0, (int)(sms_splitmix64(&s) % 17) - 8);
                *v = (float)((sms_splitmix64(&s) % 2 ? e : -e) * (1.0 + sms_splitmix64_unit(&s)));
            }
        }
    }
}
