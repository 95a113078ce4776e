/* sms_parse_float must follow number.h's grammar and give, for every decimal,
 * what AWS's container computes: Python's float() (float64), then XGBoost's
 * cast to float32. The reference here is a separate implementation of both:
 * POSIX regular expressions for the grammar, strtod and a cast for the value.
 * Its fast path is checked against that reference on random and hostile
 * tokens; sms_format_float must print the shortest text that parses back
 * both ways. */
#include "testutil.h"

#include <math.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smserve/number.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(void)
{
    return tu_rand32(&rng_state);
}

static uint32_t float_bits(float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static regex_t re_decimal, re_nan, re_inf;

/* The reference: number.h's grammar as regular expressions (a token with a
 * NUL byte matches none), then strtod and the float32 cast, whose overflow
 * to infinity is a refusal. */
static int ref_parse(const char *s, size_t n, float *out)
{
    char *tmp = malloc(n + 1);
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    int rc = SMS_NUMBER_INVALID;
    if (strlen(tmp) != n) {
        rc = SMS_NUMBER_INVALID;
    } else if (regexec(&re_nan, tmp, 0, NULL, 0) == 0) {
        *out = NAN;
        rc = 0;
    } else if (regexec(&re_inf, tmp, 0, NULL, 0) == 0) {
        rc = SMS_NUMBER_INFINITE;
    } else if (regexec(&re_decimal, tmp, 0, NULL, 0) == 0) {
        float v = (float)strtod(tmp, NULL);
        rc = n > 1024 ? SMS_NUMBER_LONG : isinf(v) ? SMS_NUMBER_RANGE : 0;
        if (rc == 0)
            *out = v;
    }
    free(tmp);
    return rc;
}

/* One guarded region for all tokens: each is copied to its end, so reading
 * past the token crashes (a fresh mapping per token would be too slow). */
#define GUARD_BYTES 8192
static char *guard_region;

static int setup(void **state)
{
    (void)state;
    static char zeros[GUARD_BYTES];
    if (regcomp(&re_decimal, "^[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][+-]?[0-9]+)?$",
                REG_EXTENDED | REG_NOSUB) != 0 ||
        regcomp(&re_nan, "^[+-]?nan$", REG_EXTENDED | REG_ICASE | REG_NOSUB) != 0 ||
        regcomp(&re_inf, "^[+-]?inf(inity)?$", REG_EXTENDED | REG_ICASE | REG_NOSUB) != 0)
        return -1;
    guard_region = tu_guarded_copy(zeros, GUARD_BYTES);
    return guard_region ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    tu_guarded_free(guard_region, GUARD_BYTES);
    regfree(&re_decimal);
    regfree(&re_nan);
    regfree(&re_inf);
    return 0;
}

/* sms_parse_float on a copy of s placed right before the guard page. */
static int parse_guarded(const char *s, size_t n, float *out)
{
    assert_true(n <= GUARD_BYTES);
    char *g = guard_region + GUARD_BYTES - n;
    memcpy(g, s, n);
    return sms_parse_float(g, g + n, out);
}

static int same_value(float a, float b)
{
    return (isnan(a) && isnan(b)) || float_bits(a) == float_bits(b);
}

static void check_same_as_ref(const char *s, size_t n)
{
    float want = 0, got = 0;
    int want_rc = ref_parse(s, n, &want);
    int got_rc = parse_guarded(s, n, &got);
    if (got_rc != want_rc || (got_rc == 0 && !same_value(got, want))) {
        print_error("token '%.*s': got rc %d bits %08x, reference rc %d bits %08x\n", (int)n, s,
                    got_rc, (unsigned)float_bits(got), want_rc, (unsigned)float_bits(want));
        fail();
    }
}

static void check_str(const char *s)
{
    check_same_as_ref(s, strlen(s));
}

/* Asserts sms_parse_float's outcome for s: rc, and for 0 the value's bits
 * (a NaN in `want` asks for any NaN). */
static void check_parse(const char *s, int rc, float want)
{
    float got = 0;
    int got_rc = parse_guarded(s, strlen(s), &got);
    if (got_rc != rc || (rc == 0 && !same_value(got, want))) {
        print_error("token '%s': got rc %d bits %08x, want rc %d bits %08x\n", s, got_rc,
                    (unsigned)float_bits(got), rc, (unsigned)float_bits(want));
        fail();
    }
    check_str(s); /* and the reference agrees */
}

static void accepted_forms(void **state)
{
    (void)state;
    check_parse("0", 0, 0.0f);
    check_parse("-0", 0, -0.0f);
    check_parse("+0", 0, 0.0f);
    check_parse("1.5", 0, 1.5f);
    check_parse("+1.5", 0, 1.5f);
    check_parse("-1.5", 0, -1.5f);
    check_parse("1.", 0, 1.0f);
    check_parse(".5", 0, 0.5f);
    check_parse("-.5", 0, -0.5f);
    check_parse("007", 0, 7.0f);
    check_parse("00.250", 0, 0.25f);
    check_parse("1e5", 0, 1e5f);
    check_parse("1E+05", 0, 1e5f);
    check_parse("2.5e-3", 0, 2.5e-3f);
    check_parse("1.e2", 0, 100.0f);
    check_parse(".5E1", 0, 5.0f);
    check_parse("0e99999999999", 0, 0.0f);
    check_parse("nan", 0, NAN);
    check_parse("NaN", 0, NAN);
    check_parse("-nan", 0, NAN);
    check_parse("+NAN", 0, NAN);
    /* the float32 range's ends: below half the least denormal is 0 */
    check_parse("3.4028235e38", 0, 3.4028235e38f);
    check_parse("-3.40282356e38", 0, -3.4028235e38f);
    check_parse("1.4e-45", 0, 1.4e-45f);
    check_parse("7.1e-46", 0, 1.4e-45f);
    check_parse("7e-46", 0, 0.0f);
    check_parse("1e-999", 0, 0.0f);
    check_parse("-1e-2147483649", 0, -0.0f);
    float v;
    assert_int_equal(sms_parse_float("-0", NULL, &v), SMS_NUMBER_INVALID); /* end before p */
    const char *nul = "1\0002";
    assert_int_equal(sms_parse_float(nul, nul + 1, &v), 0);
    assert_true(v == 1.0f);
}

/* Python's float() accepts them; XGBoost refuses infinite features (its
 * DMatrix: "Input data contains `inf` or a value too large"), so AWS answers
 * 415 and smserve 400. */
static void infinities_are_refused(void **state)
{
    (void)state;
    static const char *const infinite[] = {"inf",      "-inf",      "+inf",     "INF",
                                           "Infinity", "-INFINITY", "iNfInItY", "+infinity"};
    for (size_t i = 0; i < sizeof infinite / sizeof infinite[0]; i++)
        check_parse(infinite[i], SMS_NUMBER_INFINITE, 0);
    static const char *const beyond[] = {
        "1e39",
        "-1e39",
        "1e999",
        "-1e400",
        "1e99999999999999999999",
        "1e2147483648",
        "3.4028236e38",
        "3.5e38",
        "340282356779733661637539395458142568448",
        "-4e38",
    };
    for (size_t i = 0; i < sizeof beyond / sizeof beyond[0]; i++)
        check_parse(beyond[i], SMS_NUMBER_RANGE, 0);
    /* the float64 that the cast takes to infinity, and the one below it;
     * the integer just below 2^128 - 2^103 is that float64 once in float64
     * (strtof would give FLT_MAX), so AWS finds it infinite too */
    check_parse("3.4028235677973366e38", SMS_NUMBER_RANGE, 0);
    check_parse("340282356779733661637539395458142568447", SMS_NUMBER_RANGE, 0);
    check_parse("3.4028235677973362e38", 0, 3.4028235e38f);
}

static void other_forms_are_refused(void **state)
{
    (void)state;
    /* clang-format off */
    static const char *const bad[] = {
        "", " ", " 1", "1 ", "\t1", "1\n", "1\r", "\v1", "0x10", "0X1P-3", "0x1p-2", "0x",
        "-0x1p-149", "0x1.8p1", "1_0", "1_000.5", "1__0", "_1", "1e1_0", "nan(123)", "nan(",
        "nan()", "infin", "infinit", "infinityy", "in", "i", "n", "na", "nana", "-nan-", "+-nan",
        "-", "+", ".", "-.", "+.", "e5", "E5", ".e5", "1e", "1e+", "1e-", "--1", "+-1", "-+1",
        "1.2.3", "1..2", "1,5", "1e5.5", "1e5e5", "1d5", "1f", "5L", "0b1", "0o7", "1+2",
        "\xd9\xa1", /* ARABIC-INDIC DIGIT ONE, which Python takes as 1 */
        "\xef\xbc\x91", /* FULLWIDTH DIGIT ONE */
        "1\xc2\xa0", "true", "null", "None", "--", "1-", "1+",
    };
    /* clang-format on */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        check_parse(bad[i], SMS_NUMBER_INVALID, 0);
    float v;
    const char *nul = "1\0002";
    assert_int_equal(sms_parse_float(nul, nul + 3, &v), SMS_NUMBER_INVALID);
}

/* Where a decimal lies within half a float64 ulp of a point half-way between
 * two floats, float64-then-float32 (AWS: Python's float(), XGBoost's cast)
 * and strtof's single rounding differ; smserve gives AWS's value. */
static void rounds_twice_as_aws_does(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint32_t aws_bits; /* numpy: np.float32(float(text)) */
    } cases[] = {
        {"1.0000000596046448", 0x3f800000u},     {"8.6066151525e-21", 0x1e22930au},
        {"1.9776007908047197e+37", 0x7d6e0b88u}, {"8.4874122870e-21", 0x1e20529cu},
        {"8.3586140863e+32", 0x7624d838u},       {"6.6448812905e-28", 0x125295aeu},
        {"4.37236101e-35", 0x0668797eu}, /* one of 51 such decimals of 9 digits */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        float want;
        uint32_t bits = cases[i].aws_bits;
        memcpy(&want, &bits, sizeof want);
        check_parse(cases[i].text, 0, want);
        assert_int_not_equal(float_bits(strtof(cases[i].text, NULL)), bits);
    }
}

static void refusals_have_reasons(void **state)
{
    (void)state;
    assert_string_equal(sms_number_reason(SMS_NUMBER_INVALID), "is not a number");
    assert_string_equal(sms_number_reason(SMS_NUMBER_INFINITE),
                        "is infinite, which XGBoost refuses");
    assert_string_equal(sms_number_reason(SMS_NUMBER_RANGE),
                        "is beyond float32's range (+-3.4028235e38), which XGBoost refuses");
    assert_string_equal(sms_number_reason(SMS_NUMBER_LONG), "is longer than 1024 bytes");

    char buf[SMS_NUMBER_QUOTE_BYTES];
    assert_string_equal(sms_number_quote("0x10", 4, buf, sizeof buf), "0x10");
    assert_string_equal(sms_number_quote("a'b\\c\n\xff", 7, buf, sizeof buf),
                        "a\\x27b\\x5cc\\x0a\\xff");
    assert_string_equal(sms_number_quote("", 0, buf, sizeof buf), "");
    static char all_bad[100];
    memset(all_bad, 0x01, sizeof all_bad);
    sms_number_quote(all_bad, sizeof all_bad, buf, sizeof buf);
    assert_int_equal(strlen(buf), 32 * 4 + 3);
    assert_string_equal(buf + 32 * 4, "...");
    memset(all_bad, '7', sizeof all_bad);
    assert_string_equal(sms_number_quote(all_bad, 33, buf, sizeof buf),
                        "77777777777777777777777777777777...");
    assert_string_equal(sms_number_quote(all_bad, 10, buf, 9), "77..."); /* a small buffer */
}

static void edge_cases_match_reference(void **state)
{
    (void)state;
    /* clang-format off */
    static const char *const cases[] = {
        "0", "-0", "+0", "0.0", "-0.0", "00", "000.000", "0e0", "0e99999", "-0e-99999",
        "1e10", "1e-10", "1e11", "1e-11", "9999999e10", "9999999e-10", "1234567e-10",
        "16777216", "16777217", "16777218", "33554433", "8388609", "9999999", "10000000",
        "12345678", "0.1", "0.2", "0.3", ".5", "5.", "-.5", "+.5", "+5", "+", "-", ".", "-.",
        "3.4028235e38", "3.4028236e38", "3.40282357e38", "1e38", "1e39", "-1e39", "1e-38",
        "1.17549435e-38", "1.1754942e-38", "1e-45", "1.4e-45", "1e-46", "7e-46", "-1e-46",
        "2e-45", "1e-40", "1.401298464324817e-45", "1e", "e5", "E5", "1e+", "1e-", "1e+5",
        "1E5", "1e05", "--1", "+-1", "-+1", "1.2.3", "1..2", "", " ", " 1", "1 ", "\t1",
        "1\n", "0x1p3", "0X1P-3", "0x", "0x1.8p1", "-0x1p-149", "nan", "NaN", "-nan",
        "nan(123)", "nan(", "inf", "-inf", "+inf", "INF", "infinity", "-Infinity",
        "INFINITY", "infin", "in", "0.000001", "0.0000001", "1000000000", "100000000000",
        "0.30000001192092896", "4.35", "1.5e-7", "123.456e-3", "1,5", "1_000", "\xd9\xa1",
        "00000000000000000001", "1.00000000000000000000", "0.00000000000000000001e20",
        "1e2147483648", "1e-2147483649", "1e4294967296", "123456.7", "1234567.0",
        "0.1234567", "0.12345678", "9.999999e-10", "1.000001e10",
        "8.6066151525e-21", "8.3586140863e+32", "6.6448812905e-28",
    };
    /* clang-format on */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_str(cases[i]);
}

/* Denormals, the float range's ends and halfway points between neighbours. */
static void float_neighbours_match_reference(void **state)
{
    (void)state;
    char s[64];
    for (int i = 0; i < 20000; i++) {
        uint32_t u = rnd();
        if (i % 4 == 0)
            u &= 0x807FFFFFu; /* denormal */
        float f;
        memcpy(&f, &u, sizeof f);
        if (!isfinite(f))
            continue;
        float next = nextafterf(f, INFINITY);
        double mid = ((double)f + (double)next) / 2;
        for (int prec = 1; prec <= 12; prec++) {
            snprintf(s, sizeof s, "%.*g", prec, (double)f);
            check_str(s);
            snprintf(s, sizeof s, "%.*e", prec + 6, mid);
            check_str(s);
        }
    }
}

/* Random plain decimals: 1 to 12 digits, a decimal point anywhere (or none),
 * an exponent (or none) mostly inside the fast range, optional signs. */
static void random_decimals_match_reference(void **state)
{
    (void)state;
    char s[96];
    for (int i = 0; i < 1000000; i++) {
        size_t n = 0;
        uint32_t r = rnd();
        if (r & 1)
            s[n++] = (r & 2) ? '-' : '+';
        int ndig = 1 + (int)(rnd() % 12);
        int point = (int)(rnd() % (uint32_t)(ndig + 2)) - 1; /* -1: no point */
        int lead_zeros = (rnd() % 4 == 0) ? (int)(rnd() % 5) : 0;
        for (int z = 0; z < lead_zeros; z++)
            s[n++] = '0';
        for (int d = 0; d < ndig; d++) {
            if (d == point)
                s[n++] = '.';
            s[n++] = (char)('0' + rnd() % 10);
        }
        if (point == ndig)
            s[n++] = '.';
        r = rnd();
        if (r % 3 != 0) {
            s[n++] = (r & 8) ? 'e' : 'E';
            int e = (r & 16) ? (int)(rnd() % 25) - 12 : (int)(rnd() % 101) - 50;
            if (e >= 0 && (r & 32))
                s[n++] = '+';
            n += (size_t)snprintf(s + n, sizeof s - n, "%d", e);
        }
        check_same_as_ref(s, n);
    }
}

/* 13 to 21 significant digits, exponents around the fast path's +-22 edge:
 * the path that drops digits past 2^53 and checks both bounds, and the slow
 * path beyond it. Also exact integers at and beside float midpoints above
 * 2^24. */
static void long_decimals_match_reference(void **state)
{
    (void)state;
    char s[96];
    for (int i = 0; i < 300000; i++) {
        size_t n = 0;
        if (rnd() & 1)
            s[n++] = '-';
        int ndig = 13 + (int)(rnd() % 9);
        int point = (int)(rnd() % (uint32_t)(ndig + 1)) - 1;
        s[n++] = (char)('1' + rnd() % 9);
        for (int d = 1; d < ndig; d++) {
            if (d == point)
                s[n++] = '.';
            s[n++] = (char)('0' + rnd() % 10);
        }
        if (rnd() % 2)
            n += (size_t)snprintf(s + n, sizeof s - n, "e%d", (int)(rnd() % 61) - 30);
        check_same_as_ref(s, n);
    }
    for (int shift = 1; shift <= 29; shift++) {
        for (int i = 0; i < 2000; i++) {
            uint64_t m = (UINT64_C(1) << 23) | (rnd() & 0x7FFFFF);
            uint64_t mid = (m << shift) + (UINT64_C(1) << (shift - 1));
            for (int delta = -1; delta <= 1; delta++) {
                int k = snprintf(s, sizeof s, "%llu", (unsigned long long)(mid + (uint64_t)delta));
                check_same_as_ref(s, (size_t)k);
            }
        }
    }
}

/* The decoders' scanner stops where the number stops: whatever it returns,
 * [p, stop) must be a number the reference reads to the same bits, with any
 * bytes after it (and none read past end). */
static void scanner_prefix_matches_reference(void **state)
{
    (void)state;
    static const char alphabet[] = "0123456789012345678901234567890123456789.-+eE, ]\r\n\"x";
    char s[64];
    for (int i = 0; i < 300000; i++) {
        size_t n = 1 + rnd() % (sizeof s - 1);
        for (size_t k = 0; k < n; k++)
            s[k] = alphabet[rnd() % (sizeof alphabet - 1)];
        char *g = guard_region + GUARD_BYTES - n;
        memcpy(g, s, n);
        float got = 0, want = 0;
        const char *stop = NULL;
        if (!sms_scan_float(g, g + n, &got, &stop))
            continue;
        assert_true(stop > g && stop <= g + n);
        size_t len = (size_t)(stop - g);
        if (ref_parse(s, len, &want) != 0 || float_bits(got) != float_bits(want)) {
            print_error("prefix '%.*s' of '%.*s': bits %08x, reference %08x\n", (int)len, s, (int)n,
                        s, (unsigned)float_bits(got), (unsigned)float_bits(want));
            fail();
        }
    }
}

/* Plain decimals as data writes them (1 to 12 integer digits or a lone 0,
 * 0 to 20 fraction digits with zeros among them, an optional exponent), then
 * 0 to 24 bytes of what ends a number in a body, all right before the guard
 * page: the scanner reads whole words where it can, and must stop exactly at
 * the number's end with the reference's bits, and never read past end. */
static void scanner_stops_at_number_end(void **state)
{
    (void)state;
    static const char after[] = ",,,\n\r ]}\"x.-+eE0";
    char s[96];
    for (int i = 0; i < 400000; i++) {
        size_t n = 0;
        if (rnd() % 4 == 0)
            s[n++] = '-';
        if (rnd() % 3 == 0) {
            s[n++] = '0';
        } else {
            int int_digits = 1 + (int)(rnd() % 12);
            for (int d = 0; d < int_digits; d++)
                s[n++] = (char)(rnd() % 4 == 0 ? '0' : '0' + rnd() % 10);
        }
        int frac_digits = (int)(rnd() % 21);
        if (frac_digits || rnd() % 8 == 0) {
            s[n++] = '.';
            for (int d = 0; d < frac_digits; d++)
                s[n++] = (char)(rnd() % 4 == 0 ? '0' : '0' + rnd() % 10);
        }
        if (rnd() % 5 == 0)
            n += (size_t)snprintf(s + n, sizeof s - n, "e%d", (int)(rnd() % 41) - 20);
        size_t len = n, tail = rnd() % 25;
        for (size_t k = 0; k < tail; k++)
            s[n++] = after[rnd() % (sizeof after - 1)];
        char *g = guard_region + GUARD_BYTES - n;
        memcpy(g, s, n);
        float got = 0, want = 0;
        const char *stop = NULL;
        int want_rc = ref_parse(s, len, &want);
        if (!sms_scan_float(g, g + n, &got, &stop))
            continue; /* stepping aside is always allowed */
        assert_true(stop > g && stop <= g + n);
        size_t got_len = (size_t)(stop - g);
        if (ref_parse(s, got_len, &want) != 0 || float_bits(got) != float_bits(want)) {
            print_error("prefix '%.*s' of '%.*s': bits %08x, reference %08x\n", (int)got_len, s,
                        (int)n, s, (unsigned)float_bits(got), (unsigned)float_bits(want));
            fail();
        }
        /* a tail that cannot continue a number leaves the stop at its end */
        if (want_rc == 0 && s[len - 1] != '.' && (n == len || strchr(",\n\r ]}\"x", s[len])))
            assert_int_equal(got_len, len);
    }
}

static void overlong_tokens_are_refused(void **state)
{
    (void)state;
    static char s[4096];
    memset(s, '1', sizeof s);
    float v;
    assert_int_equal(sms_parse_float(s, s + 1024, &v), SMS_NUMBER_RANGE); /* 1.1e1023 */
    assert_int_equal(sms_parse_float(s, s + 1025, &v), SMS_NUMBER_LONG);
    memset(s, '0', sizeof s);
    s[1023] = '5';
    assert_int_equal(sms_parse_float(s, s + 1024, &v), 0);
    assert_true(v == 5.0f);
    s[1023] = '0';
    s[1024] = '5';
    assert_int_equal(sms_parse_float(s, s + 1025, &v), SMS_NUMBER_LONG);
    memset(s, 'x', sizeof s); /* not a number at all, however long */
    assert_int_equal(sms_parse_float(s, s + sizeof s, &v), SMS_NUMBER_INVALID);
    memset(s, '0', sizeof s);
    s[1023] = '5';
    check_same_as_ref(s, 1024);
    check_same_as_ref(s, 1025);
    check_same_as_ref(s, sizeof s);
}

/* Any bytes at all: never a crash or an over-read, and the reference's
 * decision. */
static void hostile_bytes_match_reference(void **state)
{
    (void)state;
    static const char alphabet[] = "0123456789+-.eEpPxXaAfFnNiItTyY_() \t\n\0\x80\xff";
    char s[40];
    for (int i = 0; i < 200000; i++) {
        size_t n = rnd() % sizeof s;
        for (size_t k = 0; k < n; k++)
            s[k] = (rnd() % 8 == 0) ? (char)rnd() : alphabet[rnd() % (sizeof alphabet - 1)];
        check_same_as_ref(s, n);
    }
}

static void check_format(float v, const char *want)
{
    char out[32];
    size_t n = sms_format_float(v, out);
    assert_int_equal(n, strlen(out));
    assert_string_equal(out, want);
}

static void format_examples(void **state)
{
    (void)state;
    check_format(0.1f, "0.1");
    check_format(0.0254f, "0.0254");
    check_format(-0.0f, "-0");
    check_format(0.0f, "0");
    check_format(1.0f, "1");
    check_format(0.5f, "0.5");
    check_format(16777216.0f, "16777216");
    check_format(1e10f, "10000000000");
    check_format(100.0f, "100");
    check_format(-2.5f, "-2.5");
    check_format(0.0001f, "0.0001");
    check_format(1e-5f, "1e-05");
    check_format(1e15f, "1000000000000000");
    check_format(1e16f, "1e+16");
    check_format(123456.79f, "123456.79");
    check_format(3.4028235e38f, "3.4028235e+38");
    check_format(1.4e-45f, "1e-45");
    check_format(NAN, "nan");
    check_format(INFINITY, "inf");
    check_format(-INFINITY, "-inf");
    check_format(1.0f / 3.0f, "0.33333334");
    /* "7.038531e-26" is strtof's shortest text for it, but float64 first
     * (sms_parse_float, Python) reads that as the next float up */
    float v;
    uint32_t bits = 0x15ae43fdu;
    memcpy(&v, &bits, sizeof v);
    check_format(v, "7.0385307e-26");
}

static void format_round_trips(void **state)
{
    (void)state;
    for (int i = 0; i < 300000; i++) {
        uint32_t u = i == 0 ? 0x15ae43fdu : rnd(); /* see format_examples */
        if (i % 3 == 1)
            u &= 0x807FFFFFu; /* denormal */
        float v;
        memcpy(&v, &u, sizeof v);
        if (!isfinite(v))
            continue;
        char out[32];
        size_t n = sms_format_float(v, out);
        assert_true(n > 0 && n < 32);
        float back;
        assert_int_equal(sms_parse_float(out, out + n, &back), 0);
        assert_int_equal(float_bits(back), float_bits(v));
        assert_int_equal(float_bits(strtof(out, NULL)), float_bits(v));
        /* shortest: one significant digit fewer must not round-trip both ways */
        const char *c = out, *stop = strchr(out, 'e');
        if (!stop)
            stop = out + n;
        const char *first = NULL, *last = NULL;
        for (; c < stop; c++) {
            if (*c >= '1' && *c <= '9') {
                if (!first)
                    first = c;
                last = c;
            }
        }
        assert_non_null(first);
        int digits = 0;
        for (c = first; c <= last; c++)
            digits += *c != '.';
        if (digits > 1) {
            char shorter[32];
            snprintf(shorter, sizeof shorter, "%.*e", digits - 2, (double)v);
            assert_false(float_bits(strtof(shorter, NULL)) == float_bits(v) &&
                         float_bits((float)strtod(shorter, NULL)) == float_bits(v));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepted_forms),
        cmocka_unit_test(infinities_are_refused),
        cmocka_unit_test(other_forms_are_refused),
        cmocka_unit_test(rounds_twice_as_aws_does),
        cmocka_unit_test(refusals_have_reasons),
        cmocka_unit_test(edge_cases_match_reference),
        cmocka_unit_test(float_neighbours_match_reference),
        cmocka_unit_test(random_decimals_match_reference),
        cmocka_unit_test(long_decimals_match_reference),
        cmocka_unit_test(scanner_prefix_matches_reference),
        cmocka_unit_test(scanner_stops_at_number_end),
        cmocka_unit_test(overlong_tokens_are_refused),
        cmocka_unit_test(hostile_bytes_match_reference),
        cmocka_unit_test(format_examples),
        cmocka_unit_test(format_round_trips),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
