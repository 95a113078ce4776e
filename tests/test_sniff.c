/* Tests of format sniffing: every committed fixture is classified as what it
 * is, short prefixes and random bytes never crash or read past the input,
 * and the legacy binary layout check refuses implausible headers. */
#include "testutil.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smserve/sniff.h"

#ifndef SMS_SOURCE_DIR
#error "SMS_SOURCE_DIR must name the repository root"
#endif
#define FIXTURES SMS_SOURCE_DIR "/tests/fixtures/"

static sms_format_t sniff(const void *bytes, size_t len)
{
    void *g = tu_guarded_copy(bytes, len);
    sms_format_t f = sms_sniff(g, len);
    tu_guarded_free(g, len);
    return f;
}

static sms_format_t sniff_file(const char *path)
{
    size_t len;
    char *b = tu_read_file(path, &len);
    if (!b)
        fail_msg("cannot read %s", path);
    sms_format_t f = sniff(b, len);
    free(b);
    return f;
}

static void test_fixtures(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        sms_format_t fmt;
    } cases[] = {
        {"compat/xgb174-binary-logistic.serve.json", SMS_FMT_JSON},
        {"compat/xgb174-binary-logistic.serve.ubj", SMS_FMT_UBJSON},
        {"compat/xgb174-gblinear.serve.ubj", SMS_FMT_UBJSON},
        {"compat/xgb174-reg.serve.bin", SMS_FMT_BINARY},
        {"compat/xgb174-reg.serve.json", SMS_FMT_JSON},
        {"compat/xgb20-quantile.refuse.json", SMS_FMT_JSON},
        {"compat/xgb20-quantile.refuse.ubj", SMS_FMT_UBJSON},
        {"compat/xgb31-vector-base-score.refuse.json", SMS_FMT_JSON},
        {"compat/truncated.refuse.json", SMS_FMT_JSON},
        {"compat/random-bytes.refuse.bin", SMS_FMT_UNKNOWN},
        {"aws/legacy-binary-multiclass.serve.bin", SMS_FMT_BINARY},
        {"aws/pickled-booster.refuse.pkl", SMS_FMT_PICKLE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s%s", FIXTURES, cases[i].path);
        sms_format_t got = sniff_file(path);
        if (got != cases[i].fmt)
            fail_msg("%s: sniffed %s, expected %s", cases[i].path, sms_format_name(got),
                     sms_format_name(cases[i].fmt));
    }
}

static void test_small_inputs(void **state)
{
    (void)state;
    assert_int_equal(sms_sniff(NULL, 0), SMS_FMT_EMPTY);
    assert_int_equal(sniff("", 0), SMS_FMT_EMPTY);
    assert_int_equal(sniff("{\"version\": [1]}", 16), SMS_FMT_JSON);
    assert_int_equal(sniff("{ \n\t\"a\"", 7), SMS_FMT_JSON);
    assert_int_equal(sniff("\xef\xbb\xbf{\"a\":1}", 10), SMS_FMT_JSON);
    assert_int_equal(sniff("{", 1), SMS_FMT_JSON); /* truncated: parse will say so */
    assert_int_equal(sniff("{}", 2), SMS_FMT_JSON);
    assert_int_equal(sniff("{ x", 3), SMS_FMT_UNKNOWN);
    assert_int_equal(sniff("[1,2]", 5), SMS_FMT_UNKNOWN);
    assert_int_equal(sniff("{L\0\0\0\0\0\0\0\x07learner", 17), SMS_FMT_UBJSON);
    assert_int_equal(sniff("{i\x07learner", 10), SMS_FMT_UBJSON);
    assert_int_equal(sniff("{U\x07", 3), SMS_FMT_UBJSON);
    assert_int_equal(sniff("{$S#i\x01", 6), SMS_FMT_UBJSON);
    assert_int_equal(sniff("{#i\x01", 4), SMS_FMT_UBJSON);
    assert_int_equal(sniff("{Q", 2), SMS_FMT_UNKNOWN);
    assert_int_equal(sniff("\x80\x02", 2), SMS_FMT_PICKLE);
    assert_int_equal(sniff("\x80\x05\x95", 3), SMS_FMT_PICKLE);
    assert_int_equal(sniff("\x80\x06", 2), SMS_FMT_UNKNOWN);
    assert_int_equal(sniff("\x80", 1), SMS_FMT_UNKNOWN);
    assert_int_equal(sniff("\x1f\x8b\x08", 3), SMS_FMT_GZIP);
    assert_int_equal(sniff("\x1f", 1), SMS_FMT_UNKNOWN);
    assert_int_equal(sniff("binf", 4), SMS_FMT_UNKNOWN);
    unsigned char tar[512] = "model/xgboost-model";
    memcpy(tar + 257, "ustar", 5);
    assert_int_equal(sniff(tar, sizeof tar), SMS_FMT_TAR);
    assert_int_equal(sniff(tar, 261), SMS_FMT_UNKNOWN);
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* A legacy header: [binf] param[136] u64 len name. Returns its length. */
static size_t legacy(unsigned char *b, int binf, uint32_t num_feature, int32_t num_class,
                     uint64_t name_len, const char *name)
{
    size_t off = 0;
    if (binf) {
        memcpy(b, "binf", 4);
        off = 4;
    }
    memset(b + off, 0, 136);
    put32(b + off, 0x3f000000u);
    put32(b + off + 4, num_feature);
    put32(b + off + 8, (uint32_t)num_class);
    off += 136;
    put64(b + off, name_len);
    off += 8;
    memcpy(b + off, name, strlen(name));
    return off + strlen(name);
}

static void test_legacy_binary_layout(void **state)
{
    (void)state;
    unsigned char b[512];
    size_t n = legacy(b, 1, 4, 0, 15, "binary:logistic");
    assert_int_equal(sniff(b, n), SMS_FMT_BINARY);
    n = legacy(b, 0, 4, 3, 14, "multi:softprob");
    assert_int_equal(sniff(b, n), SMS_FMT_BINARY);
    /* every prefix is too short to tell */
    for (size_t k = 0; k < n; k++)
        assert_int_not_equal(sniff(b, k), SMS_FMT_BINARY);
    n = legacy(b, 1, 0, 0, 15, "binary:logistic");
    assert_int_equal(sniff(b, n), SMS_FMT_UNKNOWN);
    n = legacy(b, 1, 10000001, 0, 15, "binary:logistic");
    assert_int_equal(sniff(b, n), SMS_FMT_UNKNOWN);
    n = legacy(b, 1, 4, -1, 15, "binary:logistic");
    assert_int_equal(sniff(b, n), SMS_FMT_UNKNOWN);
    n = legacy(b, 1, 4, 1000001, 15, "binary:logistic");
    assert_int_equal(sniff(b, n), SMS_FMT_UNKNOWN);
    n = legacy(b, 1, 4, 0, 0, "");
    assert_int_equal(sniff(b, n), SMS_FMT_UNKNOWN);
    n = legacy(b, 1, 4, 0, 256, "binary:logistic");
    assert_int_equal(sniff(b, n), SMS_FMT_UNKNOWN);
    n = legacy(b, 1, 4, 0, UINT64_MAX, "binary:logistic");
    assert_int_equal(sniff(b, n), SMS_FMT_UNKNOWN);
    n = legacy(b, 1, 4, 0, 15, "binary:logist1c");
    assert_int_equal(sniff(b, n), SMS_FMT_UNKNOWN);
    n = legacy(b, 1, 4, 0, 16, "binary:logistic"); /* name runs past the input */
    assert_int_equal(sniff(b, n), SMS_FMT_UNKNOWN);
}

static void test_prefixes_of_fixtures(void **state)
{
    (void)state;
    const char *files[] = {
        FIXTURES "compat/xgb174-reg.serve.bin",
        FIXTURES "compat/xgb174-binary-logistic.serve.ubj",
        FIXTURES "compat/xgb174-reg.serve.json",
        FIXTURES "aws/legacy-binary-multiclass.serve.bin",
        FIXTURES "aws/pickled-booster.refuse.pkl",
    };
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t len;
        char *b = tu_read_file(files[f], &len);
        assert_non_null(b);
        sms_format_t full = sniff(b, len);
        for (size_t k = 0; k <= len && k <= 600; k++) {
            sms_format_t got = sniff(b, k);
            /* A prefix is recognised as the whole or not at all; a lone
             * '{' counts as (truncated) JSON. */
            int ok = got == full || got == SMS_FMT_UNKNOWN || (k == 0 && got == SMS_FMT_EMPTY) ||
                     (k == 1 && got == SMS_FMT_JSON);
            if (!ok)
                fail_msg("%s: prefix of %zu bytes sniffed as %s", files[f], k,
                         sms_format_name(got));
        }
        /* Past the header, the length no longer matters. */
        assert_int_equal(sniff(b, len < 600 ? len : 600), full);
        free(b);
    }
}

static void test_random_bytes(void **state)
{
    (void)state;
    unsigned char b[1024];
    srand(4242);
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = (size_t)rand() % sizeof b;
        for (size_t i = 0; i < n; i++)
            b[i] = (unsigned char)rand();
        sms_format_t f = sniff(b, n);
        assert_true(f >= SMS_FMT_EMPTY && f <= SMS_FMT_TAR);
        assert_non_null(sms_format_name(f));
    }
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(sms_format_name(SMS_FMT_EMPTY), "empty");
    assert_string_equal(sms_format_name(SMS_FMT_UNKNOWN), "unknown");
    assert_string_equal(sms_format_name(SMS_FMT_BINARY), "binary");
    assert_string_equal(sms_format_name(SMS_FMT_JSON), "json");
    assert_string_equal(sms_format_name(SMS_FMT_UBJSON), "ubjson");
    assert_string_equal(sms_format_name(SMS_FMT_PICKLE), "pickle");
    assert_string_equal(sms_format_name(SMS_FMT_GZIP), "gzip");
    assert_string_equal(sms_format_name(SMS_FMT_TAR), "tar");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_small_inputs),
        cmocka_unit_test(test_legacy_binary_layout),
        cmocka_unit_test(test_prefixes_of_fixtures),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
