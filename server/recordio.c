/* application/x-recordio-protobuf bodies to a float matrix, and prediction
 * rows to RecordIO frames. The reader walks each frame's Record with the
 * pbwire primitives, first checking every field of the record and noting
 * where features["values"]'s tensor lies, then copying its values straight
 * into the row: no allocation per record or value, nothing read outside the
 * body whatever its lengths say. */
#include "smserve/recordio.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "smserve/number.h"
#include "smserve/pbwire.h"

/* Value's oneof members (their field numbers) */
enum { KIND_NONE = 0, KIND_F32 = 2, KIND_F64 = 3, KIND_I32 = 7, KIND_BYTES = 9 };
/* how a repeated field's elements are encoded */
enum { ELEM_F32, ELEM_F64, ELEM_VARINT };
/* a sparse row's cells not yet written: a NaN no input value is stored as */
#define UNSET_BITS 0x7fc5a5a5u

typedef struct rio_state {
    const uint8_t *body;
    size_t record;    /* 1-based number of the frame being read */
    size_t frame_off; /* its byte offset in the body */
    sms_error_t *err;
} rio_state_t;

/* What a Value holds once merged: the last oneof member and, for a tensor,
 * its element counts over every occurrence since that member was set. */
typedef struct tensor_info {
    int kind;
    const uint8_t *start;     /* the first occurrence's tag, inside its Value */
    const uint8_t *value_end; /* the end of that Value */
    const uint8_t *entry_end; /* the end of the map entry holding it */
    size_t n_values, n_keys, n_shape;
    uint64_t shape0, max_key;
} tensor_info_t;

static uint32_t load_u32(const uint8_t *q)
{
    uint32_t x;
    memcpy(&x, q, sizeof x);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    x = __builtin_bswap32(x);
#endif
    return x;
}

static uint64_t load_u64(const uint8_t *q)
{
    uint64_t x;
    memcpy(&x, q, sizeof x);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    x = __builtin_bswap64(x);
#endif
    return x;
}

__attribute__((format(printf, 2, 3))) static int fail(rio_state_t *s, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return sms_error_set(s->err, 400, "record %zu (byte %zu): %s", s->record, s->frame_off, what);
}

static int fail_wire(rio_state_t *s, const uint8_t *at, int rc)
{
    return fail(s, "malformed protobuf at byte %zu: %s", (size_t)(at - s->body), sms_pb_reason(rc));
}

static int fail_wiretype(rio_state_t *s, const char *msg, uint32_t num, int wt)
{
    return fail(s, "%s field %u has wire type %d, which its type does not allow", msg, num, wt);
}

/* One field as sms_pb_field reads it, and where its tag starts. */
typedef struct pb_field {
    uint32_t num;
    int wt;
    const uint8_t *val, *at;
    size_t n;
    uint64_t x;
} pb_field_t;

/* Reads the next field of [*p, end): 1, 0 at the end, or -1 with the record
 * named in the error when the bytes are not protobuf. */
static int next_field(rio_state_t *s, const uint8_t **p, const uint8_t *end, pb_field_t *f)
{
    if (*p >= end)
        return 0;
    f->at = *p;
    int rc = sms_pb_field(p, end, &f->num, &f->wt, &f->val, &f->n, &f->x);
    return rc < 0 ? fail_wire(s, f->at, rc) : 1;
}

/* Checks one run of a repeated field (packed, or a single element) and
 * counts its elements; varints also give their largest and first value. */
static int check_run(rio_state_t *s, const char *msg, uint32_t num, int elem, int wt,
                     const uint8_t *p, size_t n, size_t *count, uint64_t *max, uint64_t *first)
{
    if (elem == ELEM_F32 || elem == ELEM_F64) {
        size_t size = elem == ELEM_F32 ? 4 : 8;
        if (wt == (elem == ELEM_F32 ? SMS_PB_I32 : SMS_PB_I64)) {
            *count += 1;
            return 0;
        }
        if (wt != SMS_PB_LEN)
            return fail_wiretype(s, msg, num, wt);
        if (n % size)
            return fail(s, "%s field %u: packed values of %zu bytes, not a multiple of %zu", msg,
                        num, n, size);
        *count += n / size;
        return 0;
    }
    if (wt != SMS_PB_LEN && wt != SMS_PB_VARINT)
        return fail_wiretype(s, msg, num, wt);
    const uint8_t *end = p + n;
    while (p < end) {
        uint64_t v;
        const uint8_t *at = p;
        int rc = sms_pb_varint(&p, end, &v);
        if (rc < 0)
            return fail_wire(s, at, rc);
        if (*count == 0 || v > *max)
            *max = v;
        if (first && *count == 0)
            *first = v;
        *count += 1;
    }
    return 0;
}

/* Float32Tensor, Float64Tensor, Int32Tensor: values 1, keys 2, shape 3. */
static int check_tensor(rio_state_t *s, int kind, const uint8_t *p, const uint8_t *end,
                        tensor_info_t *info)
{
    static const char *names[] = {
        [KIND_F32] = "Float32Tensor", [KIND_F64] = "Float64Tensor", [KIND_I32] = "Int32Tensor"};
    const char *msg = names[kind];
    int elem = kind == KIND_F32 ? ELEM_F32 : kind == KIND_F64 ? ELEM_F64 : ELEM_VARINT;
    pb_field_t f;
    int more;
    while ((more = next_field(s, &p, end, &f)) > 0) {
        int rc = 0;
        uint64_t unused;
        if (f.num == 1)
            rc = check_run(s, msg, f.num, elem, f.wt, f.val, f.n, &info->n_values, &unused, NULL);
        else if (f.num == 2)
            rc = check_run(s, msg, f.num, ELEM_VARINT, f.wt, f.val, f.n, &info->n_keys,
                           &info->max_key, NULL);
        else if (f.num == 3)
            rc = check_run(s, msg, f.num, ELEM_VARINT, f.wt, f.val, f.n, &info->n_shape, &unused,
                           info->n_shape ? NULL : &info->shape0);
        if (rc < 0)
            return -1;
    }
    return more;
}

/* Bytes: repeated bytes value 1, string content_type 2. */
static int check_bytes(rio_state_t *s, const uint8_t *p, const uint8_t *end)
{
    pb_field_t f;
    int more;
    while ((more = next_field(s, &p, end, &f)) > 0)
        if ((f.num == 1 || f.num == 2) && f.wt != SMS_PB_LEN)
            return fail_wiretype(s, "Bytes", f.num, f.wt);
    return more;
}

/* Value: a oneof of tensors (2, 3, 7) and bytes (9). A member set again
 * merges into the one before (its repeated fields concatenate); another
 * member replaces it. */
static int check_value(rio_state_t *s, const uint8_t *p, const uint8_t *end, tensor_info_t *info)
{
    pb_field_t f;
    int more;
    while ((more = next_field(s, &p, end, &f)) > 0) {
        if (f.num != KIND_F32 && f.num != KIND_F64 && f.num != KIND_I32 && f.num != KIND_BYTES)
            continue;
        if (f.wt != SMS_PB_LEN)
            return fail_wiretype(s, "Value", f.num, f.wt);
        if (info->kind != (int)f.num) {
            const uint8_t *entry_end = info->entry_end;
            *info = (tensor_info_t){
                .kind = (int)f.num, .start = f.at, .value_end = end, .entry_end = entry_end};
        }
        int rc = f.num == KIND_BYTES ? check_bytes(s, f.val, f.val + f.n)
                                     : check_tensor(s, (int)f.num, f.val, f.val + f.n, info);
        if (rc < 0)
            return -1;
    }
    return more;
}

/* A map<string, Value> entry: key 1, value 2. *is_values: the key is "values". */
static int check_entry(rio_state_t *s, const uint8_t *p, const uint8_t *end, tensor_info_t *info,
                       int *is_values)
{
    *info = (tensor_info_t){.entry_end = end};
    *is_values = 0;
    pb_field_t f;
    int more;
    while ((more = next_field(s, &p, end, &f)) > 0) {
        if ((f.num == 1 || f.num == 2) && f.wt != SMS_PB_LEN)
            return fail_wiretype(s, "map entry", f.num, f.wt);
        if (f.num == 1)
            *is_values = f.n == 6 && memcmp(f.val, "values", 6) == 0;
        else if (f.num == 2 && check_value(s, f.val, f.val + f.n, info) < 0)
            return -1;
    }
    return more;
}

/* Walks the runs of one repeated tensor field of a merged Value, in wire
 * order, from tensor_info's start to the end of its map entry. */
typedef struct run_cursor {
    const uint8_t *ep, *eend; /* the entry after the current Value */
    const uint8_t *vp, *vend; /* the current Value after the current tensor */
    const uint8_t *tp, *tend; /* the current tensor after the current run */
    const uint8_t *p, *end;   /* the current run's elements not yet read */
    uint32_t kind, field;
} run_cursor_t;

static void cursor_init(run_cursor_t *c, const tensor_info_t *info, uint32_t field)
{
    *c = (run_cursor_t){.ep = info->value_end,
                        .eend = info->entry_end,
                        .vp = info->start,
                        .vend = info->value_end,
                        .kind = (uint32_t)info->kind,
                        .field = field};
}

/* Moves to the next run; 1, or 0 when there is none. The bytes were
 * checked already, so a wire error cannot happen here and ends the walk. */
static int cursor_next_run(run_cursor_t *c)
{
    for (;;) {
        uint32_t num;
        int wt;
        const uint8_t *val;
        size_t n;
        uint64_t x;
        if (c->tp < c->tend) {
            if (sms_pb_field(&c->tp, c->tend, &num, &wt, &val, &n, &x) < 0)
                return 0;
            if (num == c->field) {
                c->p = val;
                c->end = val + n;
                return 1;
            }
        } else if (c->vp < c->vend) {
            if (sms_pb_field(&c->vp, c->vend, &num, &wt, &val, &n, &x) < 0)
                return 0;
            if (num == c->kind) {
                c->tp = val;
                c->tend = val + n;
            }
        } else if (c->ep < c->eend) {
            if (sms_pb_field(&c->ep, c->eend, &num, &wt, &val, &n, &x) < 0)
                return 0;
            if (num == 2) {
                c->vp = val;
                c->vend = val + n;
            }
        } else {
            return 0;
        }
    }
}

static int cursor_varint(run_cursor_t *c, uint64_t *v)
{
    while (c->p >= c->end)
        if (!cursor_next_run(c))
            return -1;
    return sms_pb_varint(&c->p, c->end, v);
}

/* The next value as float32, refusing infinities as the text decoders do;
 * *column (1-based) names it. */
static int cursor_value(rio_state_t *s, run_cursor_t *c, size_t column, float *out)
{
    while (c->p >= c->end)
        if (!cursor_next_run(c))
            return fail(s, "features[\"values\"] ended early");
    float v;
    if (c->kind == KIND_F32) {
        uint32_t bits = load_u32(c->p);
        c->p += 4;
        memcpy(&v, &bits, sizeof v);
        if (isinf(v))
            return fail(s, "value %zu %s", column, sms_number_reason(SMS_NUMBER_INFINITE));
    } else if (c->kind == KIND_F64) {
        uint64_t bits = load_u64(c->p);
        double d;
        c->p += 8;
        memcpy(&d, &bits, sizeof d);
        if (isinf(d))
            return fail(s, "value %zu %s", column, sms_number_reason(SMS_NUMBER_INFINITE));
        v = (float)d;
        if (isinf(v))
            return fail(s, "value %zu %s", column, sms_number_reason(SMS_NUMBER_RANGE));
    } else {
        uint64_t x;
        if (sms_pb_varint(&c->p, c->end, &x) < 0)
            return fail(s, "features[\"values\"] ended early");
        v = (float)(int32_t)(uint32_t)x; /* int32: the low 32 bits, as protobuf reads them */
    }
    *out = v != v ? NAN : v;
    return 0;
}

/* Dense: the values in order, a float32 run a tight loop. */
static int fill_dense(rio_state_t *s, const tensor_info_t *info, float *row, size_t cols)
{
    run_cursor_t c;
    cursor_init(&c, info, 1);
    size_t i = 0;
    while (i < cols) {
        if (c.kind == KIND_F32 && c.p < c.end) {
            size_t n = (size_t)(c.end - c.p) / 4;
            if (n > cols - i)
                n = cols - i;
            for (size_t k = 0; k < n; k++) {
                uint32_t bits = load_u32(c.p + 4 * k);
                if ((bits & 0x7fffffffu) == 0x7f800000u)
                    return fail(s, "value %zu %s", i + k + 1,
                                sms_number_reason(SMS_NUMBER_INFINITE));
                memcpy(&row[i + k], &bits, sizeof bits);
            }
            c.p += 4 * n;
            i += n;
        } else if (cursor_value(s, &c, i + 1, &row[i]) < 0) {
            return -1;
        } else {
            i++;
        }
    }
    return 0;
}

/* Sparse: missing everywhere but at the keys; limit is the shape's width. */
static int fill_sparse(rio_state_t *s, const tensor_info_t *info, float *row, size_t cols,
                       uint64_t limit, int has_shape)
{
    const uint32_t unset = UNSET_BITS;
    for (size_t i = 0; i < cols; i++)
        memcpy(&row[i], &unset, sizeof unset);
    run_cursor_t keys, values;
    cursor_init(&keys, info, 2);
    cursor_init(&values, info, 1);
    for (size_t i = 0; i < info->n_keys; i++) {
        uint64_t key;
        if (cursor_varint(&keys, &key) < 0)
            return fail(s, "features[\"values\"] keys ended early");
        if (key >= limit)
            return has_shape ? fail(s, "key %llu is outside shape [%llu]", (unsigned long long)key,
                                    (unsigned long long)limit)
                             : fail(s, "key %llu is beyond the %zu columns expected",
                                    (unsigned long long)key, cols);
        uint32_t bits;
        memcpy(&bits, &row[key], sizeof bits);
        if (bits != unset)
            return fail(s, "key %llu appears twice", (unsigned long long)key);
        if (cursor_value(s, &values, (size_t)key + 1, &row[key]) < 0)
            return -1;
    }
    for (size_t i = 0; i < cols; i++) {
        uint32_t bits;
        memcpy(&bits, &row[i], sizeof bits);
        if (bits == unset)
            row[i] = NAN;
    }
    return 0;
}

/* Checks one Record and appends its row to out. */
static int decode_record(rio_state_t *s, const uint8_t *p, const uint8_t *end, sms_matrix_t *out)
{
    tensor_info_t sel = {0}, info;
    int found = 0, is_values, more;
    pb_field_t f;
    while ((more = next_field(s, &p, end, &f)) > 0) {
        if (f.num >= 1 && f.num <= 5 && f.wt != SMS_PB_LEN)
            return fail_wiretype(s, "Record", f.num, f.wt);
        if (f.num == 1 || f.num == 2) {
            if (check_entry(s, f.val, f.val + f.n, &info, &is_values) < 0)
                return -1;
            if (f.num == 1 && is_values) {
                sel = info;
                found = 1;
            }
        }
    }
    if (more < 0)
        return -1;
    if (!found)
        return fail(s, "no features[\"values\"] entry");
    if (sel.kind == KIND_NONE)
        return fail(s, "features[\"values\"] holds no tensor");
    if (sel.kind == KIND_BYTES)
        return fail(s, "features[\"values\"] holds bytes, not a tensor");
    if (sel.n_shape > 1)
        return fail(s, "shape has %zu dimensions; only 1 is supported", sel.n_shape);

    int sparse = sel.n_keys > 0 || (sel.n_values == 0 && sel.n_shape == 1);
    uint64_t limit = 0;
    if (!sparse) {
        if (sel.n_values == 0)
            return fail(s, "features[\"values\"] is empty");
        if (sel.n_shape == 1 && sel.shape0 != sel.n_values)
            return fail(s, "shape [%llu] does not match its %zu values",
                        (unsigned long long)sel.shape0, sel.n_values);
        if (out->cols == 0)
            out->cols = sel.n_values;
        if (sel.n_values != out->cols)
            return fail(s, "%zu values, expected %zu", sel.n_values, out->cols);
    } else {
        if (sel.n_keys != sel.n_values)
            return fail(s, "%zu keys but %zu values", sel.n_keys, sel.n_values);
        if (sel.n_shape == 1 && sel.shape0 == 0)
            return fail(s, "shape [0] has no columns");
        limit = sel.n_shape                 ? sel.shape0
                : sel.max_key == UINT64_MAX ? UINT64_MAX /* refused as too wide below */
                                            : sel.max_key + 1;
        if (out->cols == 0) {
            if (limit > SMS_RECORDIO_FREE_COLS_MAX)
                return fail(s, "%s %llu columns, more than %d",
                            sel.n_shape ? "shape of" : "keys span", (unsigned long long)limit,
                            SMS_RECORDIO_FREE_COLS_MAX);
            out->cols = (size_t)limit;
        }
        if (limit > out->cols) {
            if (sel.n_shape)
                return fail(s, "shape [%llu] is wider than the %zu columns expected",
                            (unsigned long long)limit, out->cols);
            return fail(s, "key %llu is beyond the %zu columns expected",
                        (unsigned long long)sel.max_key, out->cols);
        }
    }

    size_t cols = out->cols, most = sms_matrix_max_values();
    if (out->rows + 1 > most / cols)
        return sms_error_set(s->err, 413,
                             "record %zu: the body expands to more than %zu rows x %zu columns, "
                             "over the limit of %zu values; send fewer records per request",
                             s->record, out->rows, cols, most);
    if (sms_matrix_reserve(out, (out->rows + 1) * cols) < 0)
        return sms_error_set(s->err, 500, "out of memory decoding RecordIO");
    float *row = out->values + out->rows * cols;
    int rc = sparse ? fill_sparse(s, &sel, row, cols, limit, sel.n_shape > 0)
                    : fill_dense(s, &sel, row, cols);
    if (rc < 0)
        return -1;
    out->rows++;
    return 0;
}

int sms_recordio_decode(const char *body, size_t len, size_t expect_cols, sms_matrix_t *out,
                        sms_error_t *err)
{
    const uint8_t *b = (const uint8_t *)body;
    rio_state_t s = {.body = b, .err = err};
    sms_matrix_reset(out);
    out->cols = expect_cols;
    size_t off = 0;
    while (off < len) {
        s.record++;
        s.frame_off = off;
        size_t left = len - off;
        if (left < 8) {
            fail(&s, "%zu trailing bytes, too few for a frame header (8)", left);
            goto fail;
        }
        uint32_t magic = load_u32(b + off), word = load_u32(b + off + 4);
        if (magic != SMS_RECORDIO_MAGIC) {
            fail(&s, "not a RecordIO frame: magic 0x%08x, expected 0x%08x", magic,
                 SMS_RECORDIO_MAGIC);
            goto fail;
        }
        if (word >> 29) {
            fail(&s, "multi-part frames (cflag %u) are not supported", word >> 29);
            goto fail;
        }
        size_t rec_len = word & 0x1fffffffu, padded = (rec_len + 3) & ~(size_t)3;
        if (padded > left - 8) {
            fail(&s, "truncated: a record of %zu bytes (%zu with padding), %zu bytes follow",
                 rec_len, padded, left - 8);
            goto fail;
        }
        if (decode_record(&s, b + off + 8, b + off + 8 + rec_len, out) < 0)
            goto fail;
        off += 8 + padded;
    }
    if (out->rows == 0)
        out->cols = expect_cols;
    return 0;
fail:
    out->rows = 0;
    return -1;
}

int sms_recordio_frame_begin(sms_buf_t *out, size_t *mark)
{
    static const uint8_t header[8] = {0x0a, 0x23, 0xd7, 0xce, 0, 0, 0, 0};
    *mark = out->len;
    return sms_buf_append(out, header, sizeof header);
}

int sms_recordio_label(sms_buf_t *out, const char *key, const float *v, size_t n)
{
    size_t key_len = strlen(key);
    if (n > SIZE_MAX / 8 || key_len > SIZE_MAX / 4)
        return -1;
    size_t values_len = n * 4;
    size_t tensor_len = n ? 1 + sms_pb_varint_size(values_len) + values_len : 0;
    size_t value_len = 1 + sms_pb_varint_size(tensor_len) + tensor_len;
    size_t entry_len =
        1 + sms_pb_varint_size(key_len) + key_len + 1 + sms_pb_varint_size(value_len) + value_len;
    if (sms_buf_reserve(out, entry_len + 11) < 0)
        return -1;
    if (sms_pb_put_tag(out, 2, SMS_PB_LEN) < 0 || sms_pb_put_varint(out, entry_len) < 0 ||
        sms_pb_put_tag(out, 1, SMS_PB_LEN) < 0 || sms_pb_put_varint(out, key_len) < 0 ||
        sms_buf_append(out, key, key_len) < 0 || sms_pb_put_tag(out, 2, SMS_PB_LEN) < 0 ||
        sms_pb_put_varint(out, value_len) < 0 || sms_pb_put_tag(out, KIND_F32, SMS_PB_LEN) < 0 ||
        sms_pb_put_varint(out, tensor_len) < 0)
        return -1;
    if (n == 0)
        return 0;
    if (sms_pb_put_tag(out, 1, SMS_PB_LEN) < 0 || sms_pb_put_varint(out, values_len) < 0)
        return -1;
    char *dst = out->data + out->len;
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], sizeof bits);
        for (int k = 0; k < 4; k++)
            dst[4 * i + (size_t)k] = (char)(bits >> (8 * k));
    }
    out->len += values_len;
    out->data[out->len] = '\0';
    return 0;
}

int sms_recordio_frame_end(sms_buf_t *out, size_t mark)
{
    size_t rec_len = out->len - mark - 8;
    if (rec_len > 0x1fffffffu)
        return -1;
    static const char zeros[3] = {0};
    for (int k = 0; k < 4; k++)
        out->data[mark + 4 + (size_t)k] = (char)(rec_len >> (8 * k));
    return sms_buf_append(out, zeros, (4 - rec_len % 4) % 4);
}
