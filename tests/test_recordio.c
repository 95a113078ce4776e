/* sms_recordio_decode and the RecordIO writer: every RecordIO body of the
 * AWS corpus decoded to the matrices of its index.json, hand-built records
 * for the protobuf rules (packing, merging, unknown fields) and each refusal,
 * the writer's bytes against AWS's answers, and hostile bodies placed right
 * before a PROT_NONE page so that any over-read crashes. */
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smserve/pbwire.h"
#include "smserve/recordio.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

/* ---- building records by hand ---- */

static void put_len(sms_buf_t *b, uint32_t num, const void *bytes, size_t n)
{
    assert_int_equal(sms_pb_put_tag(b, num, SMS_PB_LEN), 0);
    assert_int_equal(sms_pb_put_varint(b, n), 0);
    assert_int_equal(sms_buf_append(b, bytes, n), 0);
}

static void put_buf(sms_buf_t *b, uint32_t num, sms_buf_t *inner)
{
    put_len(b, num, inner->data, inner->len);
    sms_buf_free(inner);
}

static void put_floats(sms_buf_t *b, uint32_t num, const float *v, size_t n)
{
    put_len(b, num, v, n * sizeof *v); /* the tests run little-endian */
}

static void put_varints(sms_buf_t *b, uint32_t num, const uint64_t *v, size_t n)
{
    sms_buf_t packed = {0};
    for (size_t i = 0; i < n; i++)
        assert_int_equal(sms_pb_put_varint(&packed, v[i]), 0);
    put_buf(b, num, &packed);
}

/* features entry "values" -> Value{member kind: tensor bytes} */
static void put_features(sms_buf_t *rec, const char *key, uint32_t kind, sms_buf_t *tensor)
{
    sms_buf_t value = {0}, entry = {0};
    put_buf(&value, kind, tensor);
    put_len(&entry, 1, key, strlen(key));
    put_buf(&entry, 2, &value);
    put_buf(rec, 1, &entry);
}

static void add_frame(sms_buf_t *body, const sms_buf_t *rec)
{
    size_t mark;
    assert_int_equal(sms_recordio_frame_begin(body, &mark), 0);
    assert_int_equal(sms_buf_append(body, rec->data, rec->len), 0);
    assert_int_equal(sms_recordio_frame_end(body, mark), 0);
}

/* A body of one frame holding rec (freed). */
static sms_buf_t one_frame(sms_buf_t *rec)
{
    sms_buf_t body = {0};
    add_frame(&body, rec);
    sms_buf_free(rec);
    return body;
}

static sms_buf_t dense_record(const float *v, size_t n)
{
    sms_buf_t rec = {0}, t = {0};
    put_floats(&t, 1, v, n);
    put_features(&rec, "values", 2, &t);
    return rec;
}

static void check_ok(sms_buf_t *body, size_t expect_cols, size_t rows, size_t cols,
                     const float *want)
{
    sms_matrix_t m = {0};
    sms_error_t err = {0};
    int rc = tu_decode_guarded(sms_recordio_decode, body->data, body->len, expect_cols, &m, &err);
    if (rc != 0)
        print_error("refused: %s\n", err.msg);
    assert_int_equal(rc, 0);
    tu_assert_matrix_equal(&m, rows, cols, want);
    sms_matrix_free(&m);
}

static void check_err(const sms_buf_t *body, size_t expect_cols, const char *msg)
{
    tu_check_decode_err(sms_recordio_decode, body->data, body->len, expect_cols, msg);
}

/* check_ok and check_err on a body of one frame holding rec (freed). */
static void check_record_ok(sms_buf_t *rec, size_t expect_cols, size_t rows, size_t cols,
                            const float *want)
{
    sms_buf_t body = one_frame(rec);
    check_ok(&body, expect_cols, rows, cols, want);
    sms_buf_free(&body);
}

static void check_record_err(sms_buf_t *rec, size_t expect_cols, const char *msg)
{
    sms_buf_t body = one_frame(rec);
    check_err(&body, expect_cols, msg);
    sms_buf_free(&body);
}

/* ---- pbwire ---- */

static void pbwire_varints(void **state)
{
    (void)state;
    const uint64_t values[] = {0, 1, 127, 128, 300, UINT32_MAX, 1ull << 63, UINT64_MAX};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        sms_buf_t b = {0};
        assert_int_equal(sms_pb_put_varint(&b, values[i]), 0);
        assert_int_equal(b.len, sms_pb_varint_size(values[i]));
        for (size_t cut = 0; cut < b.len; cut++) { /* every prefix is truncated */
            const uint8_t *p = (const uint8_t *)b.data;
            uint64_t v;
            assert_int_equal(sms_pb_varint(&p, p + cut, &v), SMS_PB_TRUNCATED);
            assert_ptr_equal(p, b.data);
        }
        const uint8_t *p = (const uint8_t *)b.data;
        uint64_t v = 0;
        assert_int_equal(sms_pb_varint(&p, p + b.len, &v), 0);
        assert_true(v == values[i] && p == (const uint8_t *)b.data + b.len);
        sms_buf_free(&b);
    }
    assert_int_equal(sms_pb_varint_size(UINT64_MAX), 10);
    /* a 10th byte beyond bit 63, an 11th byte, a non-minimal but valid form */
    static const uint8_t over[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    static const uint8_t eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                     0x80, 0x80, 0x80, 0x80, 0x00};
    static const uint8_t padded[] = {0x81, 0x80, 0x00};
    const uint8_t *p = over;
    uint64_t v;
    assert_int_equal(sms_pb_varint(&p, over + sizeof over, &v), SMS_PB_OVERLONG);
    p = eleven;
    assert_int_equal(sms_pb_varint(&p, eleven + sizeof eleven, &v), SMS_PB_OVERLONG);
    p = padded;
    assert_int_equal(sms_pb_varint(&p, padded + sizeof padded, &v), 0);
    assert_true(v == 1 && p == padded + 3);

    /* a field: tag, then each wire type's payload */
    static const uint8_t fields[] = {0x08, 0x96, 0x01, 0x11, 1,   0,    0, 0, 0, 0, 0,
                                     0x80, 0x1a, 0x02, 'h',  'i', 0x25, 4, 3, 2, 1};
    const uint8_t *end = fields + sizeof fields;
    uint32_t num;
    int wt;
    const uint8_t *val;
    size_t n;
    p = fields;
    assert_int_equal(sms_pb_field(&p, end, &num, &wt, &val, &n, &v), 0);
    assert_true(num == 1 && wt == SMS_PB_VARINT && v == 150 && val == fields + 1 && n == 2);
    assert_int_equal(sms_pb_field(&p, end, &num, &wt, &val, &n, &v), 0);
    assert_true(num == 2 && wt == SMS_PB_I64 && v == 0x8000000000000001ull && n == 8);
    assert_int_equal(sms_pb_field(&p, end, &num, &wt, &val, &n, &v), 0);
    assert_true(num == 3 && wt == SMS_PB_LEN && n == 2 && memcmp(val, "hi", 2) == 0);
    assert_int_equal(sms_pb_field(&p, end, &num, &wt, &val, &n, &v), 0);
    assert_true(num == 4 && wt == SMS_PB_I32 && v == 0x01020304 && p == end);
    p = fields + 12; /* the length field, cut after its first payload byte */
    assert_int_equal(sms_pb_field(&p, fields + 15, &num, &wt, &val, &n, &v), SMS_PB_TRUNCATED);
    assert_ptr_equal(p, fields + 12);
}

/* ---- the AWS corpus ---- */

static void corpus_bodies_decode(void **state)
{
    (void)state;
    char *dir = tu_aws_corpus("requests/index.json");
    json_t *index = tu_aws_index(dir);
    static const struct {
        const char *file, *matrix;
    } cases[] = {
        {"recordio_dense_1row.pb", "ROW1"},
        {"recordio_dense_3rows.pb", "ROWS3"},
        {"recordio_dense_3rows_float64.pb", "ROWS3"},
        {"recordio_dense_3rows_labels.pb", "ROWS3"},
        {"recordio_sparse_3rows.pb", "ROWS3"},
        {"recordio_sparse_3rows_sparse.pb", "ROWS3_SPARSE"},
        {"recordio_dense_width5.pb", "ROW1"},
        {"recordio_garbage.pb", NULL},
    };
    size_t seen = 0;
    const char *k;
    json_t *v;
    json_object_foreach(index, k, v)
    {
        if (strstr(k, ".pb"))
            seen++;
    }
    assert_int_equal(seen, sizeof cases / sizeof cases[0]); /* a new corpus body needs a case */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *name = malloc(strlen(cases[i].file) + 16);
        sprintf(name, "requests/%s", cases[i].file);
        char *path = tu_path(dir, name);
        size_t len;
        char *bytes = tu_read_file(path, &len);
        assert_non_null(bytes);
        assert_int_equal(len, json_integer_value(
                                  json_object_get(json_object_get(index, cases[i].file), "bytes")));
        sms_buf_t body = {bytes, len, len + 1};
        if (!cases[i].matrix) {
            check_err(&body, 6,
                      "record 1 (byte 0): not a RecordIO frame: magic 0x73696874, expected "
                      "0xced7230a");
        } else if (strstr(cases[i].file, "width5")) {
            size_t rows, cols;
            float *want = tu_aws_matrix(index, cases[i].matrix, &rows, &cols);
            check_err(&body, 6, "record 1 (byte 0): 5 values, expected 6");
            check_ok(&body, 0, 1, 5, want);
            free(want);
        } else {
            size_t rows, cols;
            float *want = tu_aws_matrix(index, cases[i].matrix, &rows, &cols);
            check_ok(&body, 6, rows, cols, want);
            check_ok(&body, 0, rows, cols, want);
            free(want);
        }
        free(bytes);
        free(path);
        free(name);
    }
    json_decref(index);
    free(dir);
}

/* ---- hand-built records: what proto2 allows ---- */

static void unpacked_and_split_values(void **state)
{
    (void)state;
    const float want[] = {1, 2, 3, 4};
    /* unpacked: four fixed32 fields (tag 0x0d) */
    sms_buf_t rec = {0}, t = {0};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(sms_pb_put_tag(&t, 1, SMS_PB_I32), 0);
        assert_int_equal(sms_buf_append(&t, &want[i], 4), 0);
    }
    put_features(&rec, "values", 2, &t);
    check_record_ok(&rec, 4, 1, 4, want);

    /* packed run, an unpacked value, another packed run */
    put_floats(&t, 1, want, 2);
    assert_int_equal(sms_pb_put_tag(&t, 1, SMS_PB_I32), 0);
    assert_int_equal(sms_buf_append(&t, &want[2], 4), 0);
    put_floats(&t, 1, want + 3, 1);
    put_features(&rec, "values", 2, &t);
    check_record_ok(&rec, 0, 1, 4, want);

    /* the tensor field twice in one Value, and the Value twice in the entry: merged */
    sms_buf_t t1 = {0}, t2 = {0}, value = {0}, value2 = {0}, entry = {0};
    put_floats(&t1, 1, want, 1);
    put_floats(&t2, 1, want + 1, 1);
    put_buf(&value, 2, &t1);
    put_buf(&value, 2, &t2);
    put_len(&entry, 2, value.data, value.len);
    sms_buf_free(&value);
    put_len(&entry, 1, "values", 6); /* key after the value */
    put_floats(&t1, 1, want + 2, 2);
    put_buf(&value2, 2, &t1);
    put_buf(&entry, 2, &value2);
    put_buf(&rec, 1, &entry);
    check_record_ok(&rec, 4, 1, 4, want);
}

static void last_entry_and_last_member_win(void **state)
{
    (void)state;
    const float first[] = {9, 9, 9}, want[] = {1, 2, 3};
    sms_buf_t rec = {0}, t = {0};
    put_floats(&t, 1, first, 3);
    put_features(&rec, "values", 2, &t);
    put_floats(&t, 1, first, 2);
    put_features(&rec, "other", 2, &t);
    put_floats(&t, 1, want, 3);
    put_features(&rec, "values", 2, &t);
    check_record_ok(&rec, 3, 1, 3, want);

    /* oneof: float32_tensor, then float64_tensor in the same Value: float64 wins */
    const double d[] = {1, 2, 3};
    sms_buf_t value = {0}, entry = {0}, t64 = {0};
    put_floats(&t, 1, first, 3);
    put_len(&t64, 1, d, sizeof d);
    put_buf(&value, 2, &t);
    put_buf(&value, 3, &t64);
    put_len(&entry, 1, "values", 6);
    put_buf(&entry, 2, &value);
    put_buf(&rec, 1, &entry);
    check_record_ok(&rec, 3, 1, 3, want);
}

static void unknown_fields_labels_and_uid_are_ignored(void **state)
{
    (void)state;
    const float want[] = {0.5f, NAN};
    sms_buf_t rec = {0}, t = {0}, value = {0}, entry = {0};
    /* unknown fields of every allowed wire type at each level */
    const uint8_t unknowns[] = {0xf8, 0x01, 0x96, 0x01,                 /* 31 varint */
                                0x79, 1,    2,    3,    4,  5, 6, 7, 8, /* 15 fixed64 */
                                0x7d, 1,    2,    3,    4,              /* 15 fixed32 */
                                0x7a, 3,    'a',  'b',  'c'};           /* 15 bytes */
    assert_int_equal(sms_buf_append(&t, unknowns, sizeof unknowns), 0);
    put_floats(&t, 1, want, 2);
    assert_int_equal(sms_buf_append(&value, unknowns, sizeof unknowns), 0);
    put_buf(&value, 2, &t);
    assert_int_equal(sms_buf_append(&entry, unknowns, sizeof unknowns), 0);
    put_len(&entry, 1, "values", 6);
    put_buf(&entry, 2, &value);
    put_len(&rec, 3, "uid-1", 5);
    put_len(&rec, 4, "meta", 4);
    put_len(&rec, 5, "{}", 2);
    assert_int_equal(sms_buf_append(&rec, unknowns, sizeof unknowns), 0);
    put_buf(&rec, 1, &entry);
    const float label[] = {1};
    assert_int_equal(sms_recordio_label(&rec, "values", label, 1), 0);
    check_record_ok(&rec, 2, 1, 2, want);
}

static void float64_and_int32_tensors(void **state)
{
    (void)state;
    sms_buf_t rec = {0}, t = {0};
    const double d[] = {0.1, -2.5, NAN};
    put_len(&t, 1, d, sizeof d);
    put_features(&rec, "values", 3, &t);
    const float want64[] = {0.1f, -2.5f, NAN};
    check_record_ok(&rec, 3, 1, 3, want64);

    /* int32, packed, with a negative value as its 10-byte varint; and one unpacked */
    const uint64_t ints[] = {7, (uint64_t)(int64_t)-3};
    put_varints(&t, 1, ints, 2);
    assert_int_equal(sms_pb_put_tag(&t, 1, SMS_PB_VARINT), 0);
    assert_int_equal(sms_pb_put_varint(&t, (uint64_t)(int64_t)-2147483648LL), 0);
    put_features(&rec, "values", 7, &t);
    sms_buf_t body = one_frame(&rec);
    assert_int_equal(body.len, 48); /* the two negatives take 10 bytes each */
    const float want32[] = {7, -3, -2147483648.0f};
    check_ok(&body, 3, 1, 3, want32);
    sms_buf_free(&body);
}

static sms_buf_t sparse_record(const float *v, size_t n, const uint64_t *keys, size_t nk,
                               const uint64_t *shape, size_t ns)
{
    sms_buf_t rec = {0}, t = {0};
    if (n)
        put_floats(&t, 1, v, n);
    if (nk)
        put_varints(&t, 2, keys, nk);
    if (ns)
        put_varints(&t, 3, shape, ns);
    put_features(&rec, "values", 2, &t);
    return rec;
}

static void sparse_rows(void **state)
{
    (void)state;
    const float v[] = {1.5f, 2.5f};
    const uint64_t keys[] = {3, 0}, shape[] = {5};
    sms_buf_t body = {0};
    sms_buf_t rec = sparse_record(v, 2, keys, 2, shape, 1);
    add_frame(&body, &rec);
    sms_buf_free(&rec);
    /* what SageMaker's writer emits for an all-zero CSR row: shape only */
    rec = sparse_record(NULL, 0, NULL, 0, shape, 1);
    add_frame(&body, &rec);
    sms_buf_free(&rec);
    const float want[] = {2.5f, NAN, NAN, 1.5f, NAN, NAN, NAN, NAN, NAN, NAN};
    check_ok(&body, 5, 2, 5, want);
    check_ok(&body, 0, 2, 5, want);
    /* a narrower shape is fine at a wider width */
    const float wide[] = {2.5f, NAN, NAN, 1.5f, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN};
    check_ok(&body, 7, 2, 7, wide);
    check_err(&body, 4, "record 1 (byte 0): shape [5] is wider than the 4 columns expected");
    sms_buf_free(&body);

    /* no shape: the keys' span, or the width expected */
    rec = sparse_record(v, 2, keys, 2, NULL, 0);
    body = one_frame(&rec);
    const float span[] = {2.5f, NAN, NAN, 1.5f};
    check_ok(&body, 0, 1, 4, span);
    check_err(&body, 3, "record 1 (byte 0): key 3 is beyond the 3 columns expected");
    sms_buf_free(&body);
}

/* A sparse record is a few bytes whatever its width: the body's rows x
 * columns are capped (SMSERVE_MAX_MATRIX_VALUES), 413 over it. */
static void sparse_expansion_is_capped(void **state)
{
    (void)state;
    const uint64_t shape[] = {100};
    sms_buf_t body = {0};
    for (int i = 0; i < 20; i++) {
        sms_buf_t rec = sparse_record(NULL, 0, NULL, 0, shape, 1);
        add_frame(&body, &rec);
        if (i == 9) {
            sms_buf_t ten = {0};
            assert_int_equal(sms_buf_append(&ten, body.data, body.len), 0);
            sms_matrix_set_max_values(1000);
            sms_matrix_t m = {0};
            sms_error_t err = {0};
            assert_int_equal(sms_recordio_decode(ten.data, ten.len, 100, &m, &err), 0);
            assert_int_equal(m.rows, 10);
            sms_matrix_free(&m);
            sms_buf_free(&ten);
        }
        sms_buf_free(&rec);
    }
    sms_matrix_set_max_values(1000);
    sms_matrix_t m = {0};
    sms_error_t err = {0};
    assert_int_equal(sms_recordio_decode(body.data, body.len, 100, &m, &err), -1);
    assert_int_equal(err.status, 413);
    assert_string_equal(err.msg, "record 11: the body expands to more than 10 rows x 100 columns, "
                                 "over the limit of 1000 values; send fewer records per request");
    assert_int_equal(m.rows, 0);
    /* the default cap takes them */
    sms_matrix_set_max_values(0);
    assert_int_equal(sms_matrix_max_values(), SMS_MATRIX_MAX_VALUES);
    assert_int_equal(sms_recordio_decode(body.data, body.len, 100, &m, &err), 0);
    assert_int_equal(m.rows, 20);
    sms_matrix_free(&m);
    sms_buf_free(&body);
}

/* ---- refusals: each names the record, its byte and what is wrong ---- */

static void refused_records(void **state)
{
    (void)state;
    const float v[] = {1, 2, 3};
    sms_buf_t rec, body, t = {0};

    /* sparse records, sparse_record(v, n, keys, nk, shape, ns), at expect_cols */
    static const uint64_t out_of_shape[] = {0, 3}, dup[] = {1, 1}, shape3[] = {3}, shape0[] = {0},
                          shape2d[] = {3, 2}, one_key[] = {1}, huge_key[] = {UINT64_MAX},
                          wide_shape[] = {1u << 20};
    static const struct {
        size_t n;
        const uint64_t *keys;
        size_t nk;
        const uint64_t *shape;
        size_t ns, expect_cols;
        const char *msg;
    } sparse[] = {
        {2, out_of_shape, 2, shape3, 1, 3, "record 1 (byte 0): key 3 is outside shape [3]"},
        {2, dup, 2, shape3, 1, 3, "record 1 (byte 0): key 1 appears twice"},
        {2, one_key, 1, shape3, 1, 3, "record 1 (byte 0): 1 keys but 2 values"},
        {0, NULL, 0, shape0, 1, 3, "record 1 (byte 0): shape [0] has no columns"},
        {1, one_key, 1, shape2d, 2, 3,
         "record 1 (byte 0): shape has 2 dimensions; only 1 is supported"},
        {3, NULL, 0, shape0, 1, 3, "record 1 (byte 0): shape [0] does not match its 3 values"},
        {0, NULL, 0, NULL, 0, 3, "record 1 (byte 0): features[\"values\"] is empty"},
        /* free width: no wider than SMS_RECORDIO_FREE_COLS_MAX */
        {1, huge_key, 1, NULL, 0, 0,
         "record 1 (byte 0): keys span 18446744073709551615 columns, more than 65536"},
        {1, huge_key, 1, NULL, 0, 6,
         "record 1 (byte 0): key 18446744073709551615 is beyond the 6 columns expected"},
        {1, one_key, 1, wide_shape, 1, 0,
         "record 1 (byte 0): shape of 1048576 columns, more than 65536"},
    };
    for (size_t i = 0; i < TU_COUNT(sparse); i++) {
        rec = sparse_record(v, sparse[i].n, sparse[i].keys, sparse[i].nk, sparse[i].shape,
                            sparse[i].ns);
        check_record_err(&rec, sparse[i].expect_cols, sparse[i].msg);
    }

    /* the second record is the one named, with its frame's offset */
    body = (sms_buf_t){0};
    rec = dense_record(v, 3);
    add_frame(&body, &rec);
    sms_buf_free(&rec);
    const float inf[] = {1, INFINITY, 3};
    rec = dense_record(inf, 3);
    add_frame(&body, &rec);
    sms_buf_free(&rec);
    check_err(&body, 3, "record 2 (byte 36): value 2 is infinite, which XGBoost refuses");
    sms_buf_free(&body);

    const double big[] = {1e39};
    put_len(&t, 1, big, sizeof big);
    rec = (sms_buf_t){0};
    put_features(&rec, "values", 3, &t);
    check_record_err(&rec, 1,
                     "record 1 (byte 0): value 1 is beyond float32's range (+-3.4028235e38), "
                     "which XGBoost refuses");

    /* no "values" entry; bytes; a Value with no member */
    put_floats(&t, 1, v, 3);
    rec = (sms_buf_t){0};
    put_features(&rec, "value", 2, &t);
    check_record_err(&rec, 3, "record 1 (byte 0): no features[\"values\"] entry");
    put_len(&t, 1, "abc", 3);
    put_features(&rec, "values", 9, &t);
    check_record_err(&rec, 3, "record 1 (byte 0): features[\"values\"] holds bytes, not a tensor");
    sms_buf_t entry = {0};
    put_len(&entry, 1, "values", 6);
    put_len(&rec, 1, entry.data, entry.len);
    sms_buf_free(&entry);
    check_record_err(&rec, 3, "record 1 (byte 0): features[\"values\"] holds no tensor");

    /* a wire type the field's type does not allow; a packed run of 5 bytes */
    assert_int_equal(sms_pb_put_tag(&t, 1, SMS_PB_I64), 0);
    assert_int_equal(sms_buf_append(&t, "12345678", 8), 0);
    put_features(&rec, "values", 2, &t);
    check_record_err(&rec, 1,
                     "record 1 (byte 0): Float32Tensor field 1 has wire type 1, which its type "
                     "does not allow");
    put_len(&t, 1, "12345", 5);
    put_features(&rec, "values", 2, &t);
    check_record_err(&rec, 1,
                     "record 1 (byte 0): Float32Tensor field 1: packed values of 5 bytes, not a "
                     "multiple of 4");
}

static sms_buf_t raw_body(const void *bytes, size_t n)
{
    sms_buf_t b = {0};
    assert_int_equal(sms_buf_append(&b, bytes, n), 0);
    return b;
}

static void refused_framing_and_wire(void **state)
{
    (void)state;
    const float v[] = {1, 2, 3};
    sms_buf_t rec = dense_record(v, 3);
    sms_buf_t good = one_frame(&rec); /* 8 + 28, no pad */
    assert_int_equal(good.len, 36);
    sms_buf_t b;

    /* the frame cut short */
    static const struct {
        size_t len;
        const char *msg;
    } cuts[] = {
        {30, "record 1 (byte 0): truncated: a record of 28 bytes (28 with padding), 22 bytes "
             "follow"},
        {20, "record 1 (byte 0): truncated: a record of 28 bytes (28 with padding), 12 bytes "
             "follow"},
        {5, "record 1 (byte 0): 5 trailing bytes, too few for a frame header (8)"},
    };
    for (size_t i = 0; i < TU_COUNT(cuts); i++) {
        b = raw_body(good.data, cuts[i].len);
        check_err(&b, 3, cuts[i].msg);
        sms_buf_free(&b);
    }
    b = raw_body(good.data, 36);
    assert_int_equal(sms_buf_append(&b, "\0\0\0", 3), 0);
    check_err(&b, 3, "record 2 (byte 36): 3 trailing bytes, too few for a frame header (8)");
    sms_buf_free(&b);
    b = raw_body(good.data, 36);
    b.data[7] = 0x20; /* cflag 1 */
    check_err(&b, 3, "record 1 (byte 0): multi-part frames (cflag 1) are not supported");
    sms_buf_free(&b);

    /* a missing final pad: this sparse record is 31 bytes, padded to 32 */
    const uint64_t keys[] = {0, 1}, shape[] = {3};
    rec = sparse_record(v, 2, keys, 2, shape, 1);
    b = one_frame(&rec);
    assert_int_equal(b.len, 8 + 32);
    b.len -= 2;
    check_err(&b, 3,
              "record 1 (byte 0): truncated: a record of 31 bytes (32 with padding), 30 "
              "bytes follow");
    b.len += 2;
    const float sparse_want[] = {1, 2, NAN};
    check_ok(&b, 3, 1, 3, sparse_want);
    sms_buf_free(&b);

    /* inside the record: a length past its end, a truncated varint, a group, field 0 */
    static const struct {
        const char *rec;
        size_t n;
        const char *msg;
    } wire[] = {
        {"\x0a\x05\x0a\x06", 4,
         "record 1 (byte 0): malformed protobuf at byte 8: a field runs past the end of its "
         "message"},
        {"\x0a\x02\x0a\x86", 4,
         "record 1 (byte 0): malformed protobuf at byte 10: a field runs past the end of its "
         "message"},
        {"\x0a\x01\x0b", 3,
         "record 1 (byte 0): malformed protobuf at byte 10: an unsupported wire type (groups, 6 "
         "or 7)"},
        {"\x02\x00", 2,
         "record 1 (byte 0): malformed protobuf at byte 8: an invalid tag (field number 0 or "
         "beyond 32 bits)"},
        {"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 11,
         "record 1 (byte 0): malformed protobuf at byte 8: a varint longer than 10 bytes or "
         "beyond 64 bits"},
        {"\x08\x01", 2,
         "record 1 (byte 0): Record field 1 has wire type 0, which its type does not allow"},
    };
    for (size_t i = 0; i < sizeof wire / sizeof wire[0]; i++) {
        sms_buf_t r = raw_body(wire[i].rec, wire[i].n);
        b = one_frame(&r);
        check_err(&b, 3, wire[i].msg);
        sms_buf_free(&b);
    }
    sms_buf_free(&good);

    /* an empty body is no rows */
    sms_matrix_t m = {0};
    sms_error_t err;
    assert_int_equal(tu_decode_guarded(sms_recordio_decode, "", 0, 6, &m, &err), 0);
    assert_int_equal(m.rows, 0);
    assert_int_equal(m.cols, 6);
    sms_matrix_free(&m);
}

/* ---- the writer ---- */

static int hexval(char c)
{
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

static void writer_matches_aws_frame(void **state)
{
    (void)state;
    /* frame 1 of AWS's answer for predicted_label (binary), from the corpus */
    const char *hex = "0a23d7ce1d000000121b0a0f7072656469637465645f6c6162656c120812060a0400000000"
                      "000000";
    sms_buf_t out = {0};
    size_t mark;
    const float zero[] = {0};
    assert_int_equal(sms_recordio_frame_begin(&out, &mark), 0);
    assert_int_equal(sms_recordio_label(&out, "predicted_label", zero, 1), 0);
    assert_int_equal(sms_recordio_frame_end(&out, mark), 0);
    assert_int_equal(out.len, strlen(hex) / 2);
    for (size_t i = 0; i < out.len; i++)
        assert_int_equal((uint8_t)out.data[i], hexval(hex[2 * i]) * 16 + hexval(hex[2 * i + 1]));
    sms_buf_free(&out);
    /* no values: an empty float32_tensor, its packed field left out */
    assert_int_equal(sms_recordio_label(&out, "k", NULL, 0), 0);
    assert_int_equal(out.len, 9);
    assert_memory_equal(out.data, "\x12\x07\x0a\x01k\x12\x02\x12\x00", 9);
    sms_buf_free(&out);
}

static void writer_round_trip(void **state)
{
    (void)state;
    sms_buf_t out = {0};
    for (int row = 0; row < 50; row++) {
        size_t mark;
        float p = (float)tu_rand32(&rng_state) / 4294967296.0f, pl = p > 0.5f;
        const float probs[] = {1 - p, p}, nan1[] = {NAN};
        assert_int_equal(sms_recordio_frame_begin(&out, &mark), 0);
        assert_int_equal(sms_recordio_label(&out, "predicted_label", &pl, 1), 0);
        assert_int_equal(sms_recordio_label(&out, "probabilities", probs, 2), 0);
        assert_int_equal(sms_recordio_label(&out, "", nan1, 1), 0);
        assert_int_equal(sms_recordio_frame_end(&out, mark), 0);
        assert_int_equal(out.len % 4, 0);
        /* the frame just written fills the rest of out */
        const uint8_t *rec;
        size_t len;
        assert_int_equal(
            tu_rio_frames((const uint8_t *)out.data + mark, out.len - mark, &rec, &len, 1), 1);
        tu_rio_labels_t lab;
        tu_rio_read_labels(rec, len, &lab);
        assert_int_equal(lab.entries, 3);
        assert_int_equal(lab.n, 3);
        assert_string_equal(lab.name[0], "predicted_label");
        assert_true(lab.count[0] == 1 && lab.values[0][0] == pl);
        assert_string_equal(lab.name[1], "probabilities");
        assert_true(lab.count[1] == 2 && lab.values[1][0] == 1 - p && lab.values[1][1] == p);
        assert_string_equal(lab.name[2], "");
        assert_true(lab.count[2] == 1 && isnan(lab.values[2][0]));
    }
    sms_buf_free(&out);
}

/* Every RecordIO 200 of the corpus: frame i of AWS's answer holds rows
 * 1..i; its last entries (row i) are byte for byte the entries smserve's
 * writer makes from the decoded values. */
static void writer_matches_every_corpus_answer(void **state)
{
    (void)state;
    char *dir = tu_aws_corpus("responses.jsonl");
    char *path = tu_path(dir, "responses.jsonl");
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0, answers = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *e = json_loads(line, 0, NULL);
        assert_non_null(e);
        json_t *frames = json_object_get(e, "response_decoded");
        if (json_integer_value(json_object_get(e, "status")) != 200 || !json_is_array(frames)) {
            json_decref(e);
            continue;
        }
        const char *b64 = json_string_value(json_object_get(e, "response_body_base64"));
        size_t blen;
        uint8_t *body = tu_base64_decode(b64, strlen(b64), &blen);
        assert_non_null(body);
        const uint8_t *recs[8];
        size_t lens[8];
        assert_int_equal(tu_rio_frames(body, blen, recs, lens, 8), json_array_size(frames));
        size_t idx;
        json_t *frame;
        json_array_foreach(frames, idx, frame)
        {
            assert_int_equal(lens[idx], json_integer_value(json_object_get(frame, "frame_length")));
            tu_rio_labels_t lab;
            tu_rio_read_labels(recs[idx], lens[idx], &lab);
            json_t *label = json_object_get(frame, "label");
            size_t keys = json_object_size(label);
            /* the last `keys` entries of the frame are row idx's */
            assert_true(lab.entries >= keys);
            const char *k;
            json_t *lv;
            json_object_foreach(label, k, lv)
            {
                json_t *values = json_object_get(lv, "values"), *x;
                float v[8];
                size_t nv = 0, vi;
                json_array_foreach(values, vi, x) v[nv++] =
                    json_is_string(x) ? NAN : (float)json_number_value(x);
                sms_buf_t mine = {0};
                assert_int_equal(sms_recordio_label(&mine, k, v, nv), 0);
                int matched = 0;
                for (size_t j = lab.entries - keys; j < lab.entries; j++)
                    if (lab.entry_len[j] == mine.len &&
                        memcmp(lab.entry[j], mine.data, mine.len) == 0)
                        matched = 1;
                if (!matched)
                    fail_msg("%s frame %zu key %s: entry differs",
                             json_string_value(json_object_get(e, "id")), idx + 1, k);
                sms_buf_free(&mine);
            }
        }
        answers++;
        free(body);
        json_decref(e);
    }
    assert_true(answers >= 50);
    free(line);
    fclose(f);
    free(path);
    free(dir);
}

/* ---- hostile bodies ---- */

static void hostile_damaged_bodies(void **state)
{
    (void)state;
    sms_buf_t body = {0}, rec;
    const float v[] = {1, 2, NAN, 4};
    const uint64_t keys[] = {0, 3}, shape[] = {4};
    rec = dense_record(v, 4);
    add_frame(&body, &rec);
    sms_buf_free(&rec);
    rec = sparse_record(v, 2, keys, 2, shape, 1);
    add_frame(&body, &rec);
    sms_buf_free(&rec);
    static const size_t widths[] = {0, 4};
    tu_check_decode_prefixes(tu_check_decode_clean, sms_recordio_decode, body.data, body.len,
                             widths, TU_COUNT(widths));
    char *copy = malloc(body.len);
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(copy, body.data, body.len);
        for (int k = 0; k < 1 + iter % 3; k++)
            copy[tu_rand32(&rng_state) % body.len] = (char)tu_rand32(&rng_state);
        tu_check_decode_clean(sms_recordio_decode, copy, body.len, iter % 2 ? 4 : 0);
    }
    for (int iter = 0; iter < 2000; iter++) {
        char random[64];
        memcpy(random, "\x0a\x23\xd7\xce", 4);
        for (size_t i = 4; i < sizeof random; i++)
            random[i] = (char)tu_rand32(&rng_state);
        random[5] = random[6] = random[7] = 0;
        tu_check_decode_clean(sms_recordio_decode, random, 8 + (size_t)((uint8_t)random[4] % 57),
                              0);
    }
    free(copy);
    sms_buf_free(&body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pbwire_varints),
        cmocka_unit_test(corpus_bodies_decode),
        cmocka_unit_test(unpacked_and_split_values),
        cmocka_unit_test(last_entry_and_last_member_win),
        cmocka_unit_test(unknown_fields_labels_and_uid_are_ignored),
        cmocka_unit_test(float64_and_int32_tensors),
        cmocka_unit_test(sparse_rows),
        cmocka_unit_test(refused_records),
        cmocka_unit_test(sparse_expansion_is_capped),
        cmocka_unit_test(refused_framing_and_wire),
        cmocka_unit_test(writer_matches_aws_frame),
        cmocka_unit_test(writer_round_trip),
        cmocka_unit_test(writer_matches_every_corpus_answer),
        cmocka_unit_test(hostile_damaged_bodies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
