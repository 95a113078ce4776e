/* Decimal text to float32 and back, for the request decoders and response
 * encoders. Parsing is on the hot path (every feature value of every request
 * goes through it), so plain short decimals take a fast path that gives the
 * same bits as strtof; everything else goes to strtof itself. */
#include "smserve/number.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOKEN_BYTES 1024
#define FAST_MAX_DIGITS 7  /* 10^7 - 1 < 2^24: the significand is exact in float */
#define FAST_MAX_EXP10  10 /* 10^10 = 2^10 * 5^10 and 5^10 < 2^24: exact in float */

/* The fast path relies on each float operation being rounded to float, not
 * carried out in a wider format (x87) and rounded twice. */
#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#define SMS_NO_FAST_FLOAT 1
#endif

static const float pow10f_exact[FAST_MAX_EXP10 + 1] = {
    1e0f, 1e1f, 1e2f, 1e3f, 1e4f, 1e5f, 1e6f, 1e7f, 1e8f, 1e9f, 1e10f,
};

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* strtof on a NUL-terminated copy; the whole token must be consumed. strtof
 * skips leading whitespace, which a token must not have. */
static int parse_slow(const char *p, size_t n, float *out)
{
    char tmp[MAX_TOKEN_BYTES + 1];
    if (n == 0 || n > MAX_TOKEN_BYTES)
        return -1;
    if (p[0] == ' ' || (p[0] >= '\t' && p[0] <= '\r'))
        return -1;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    char *stop = NULL;
    float v = strtof(tmp, &stop);
    if (stop != tmp + n)
        return -1; /* also catches an embedded NUL byte */
    *out = v;
    return 0;
}

/* Fast path: [+-]digits[.digits][(e|E)[+-]digits] whose significand (leading
 * zeros dropped, trailing zeros folded into the exponent) has at most 7 digits
 * and whose decimal exponent is within +-10. Then m and 10^|e| are both exact
 * floats and m * 10^e (or m / 10^-e) is a single correctly rounded float
 * operation, which is exactly the correctly rounded value strtof returns.
 * (Parsing to double with strtod and then narrowing to float rounds twice and
 * is wrong for some inputs, which is why this is not (float)strtod.)
 * tests/test_number.c checks this path bit for bit against strtof over
 * a million random decimals and the edge cases. Returns 1 when it produced *out,
 * 0 when the text must go to strtof (which also decides what is invalid). */
static int parse_fast(const char *p, const char *end, float *out)
{
#ifdef SMS_NO_FAST_FLOAT
    (void)p;
    (void)end;
    (void)out;
    return 0;
#else
    int negative = 0;
    uint32_t m = 0;
    int digits = 0; /* significant digits held in m */
    int zeros = 0;  /* zeros seen after m's last digit, not yet in m */
    int frac_digits = 0;
    int any_digit = 0;

    if (p < end && (*p == '+' || *p == '-'))
        negative = *p++ == '-';

    for (int in_frac = 0;; p++) {
        if (p < end && *p == '.' && !in_frac) {
            in_frac = 1;
            continue;
        }
        if (p >= end || !is_digit(*p))
            break;
        any_digit = 1;
        frac_digits += in_frac;
        int d = *p - '0';
        if (d == 0) {
            if (m != 0)
                zeros++;
            continue;
        }
        digits += zeros + 1;
        if (digits > FAST_MAX_DIGITS)
            return 0;
        for (; zeros > 0; zeros--)
            m *= 10;
        m = m * 10 + (uint32_t)d;
    }
    if (!any_digit)
        return 0;

    int exp10 = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int exp_negative = 0;
        if (p < end && (*p == '+' || *p == '-'))
            exp_negative = *p++ == '-';
        if (p >= end || !is_digit(*p))
            return 0;
        for (; p < end && is_digit(*p); p++) {
            if (exp10 > 1000)
                return 0; /* far outside the fast range; let strtof decide */
            exp10 = exp10 * 10 + (*p - '0');
        }
        if (exp_negative)
            exp10 = -exp10;
    }
    if (p != end)
        return 0;

    float v;
    if (m == 0) {
        v = 0.0f;
    } else {
        exp10 += zeros - frac_digits;
        if (exp10 > FAST_MAX_EXP10 || exp10 < -FAST_MAX_EXP10)
            return 0;
        v = (float)m;
        if (exp10 >= 0)
            v *= pow10f_exact[exp10];
        else
            v /= pow10f_exact[-exp10];
    }
    *out = negative ? -v : v;
    return 1;
#endif
}

int sms_parse_float(const char *p, const char *end, float *out)
{
    if (!p || end < p || (size_t)(end - p) > MAX_TOKEN_BYTES)
        return -1;
    if (parse_fast(p, end, out))
        return 0;
    return parse_slow(p, (size_t)(end - p), out);
}

static int same_bits(float a, float b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

size_t sms_format_float(float v, char *out)
{
    if (v != v)
        return (size_t)snprintf(out, 32, "nan");
    if (v > FLT_MAX)
        return (size_t)snprintf(out, 32, "inf");
    if (v < -FLT_MAX)
        return (size_t)snprintf(out, 32, "-inf");
    if (v == 0.0f)
        return (size_t)snprintf(out, 32, "%s", signbit(v) ? "-0" : "0");

    /* Rounding to more digits never moves the text further from v, so
     * "parses back to v" is monotonic in the digit count: binary search the
     * smallest one. 9 significant digits always round-trip a float. */
    char sci[32];
    int lo = 1, hi = 9;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        snprintf(sci, sizeof sci, "%.*e", mid - 1, (double)v);
        if (same_bits(strtof(sci, NULL), v))
            hi = mid;
        else
            lo = mid + 1;
    }
    int n = snprintf(sci, sizeof sci, "%.*e", lo - 1, (double)v);

    /* sci is "[-]d[.ddd]e(+|-)XX". Like Python's repr, print positional
     * notation for exponents -4..15 ("100", "0.0254") and keep the
     * exponent form otherwise ("1e-05", "3.4028235e+38"). */
    const char *e = strchr(sci, 'e');
    int exp10 = atoi(e + 1);
    if (exp10 < -4 || exp10 > 15) {
        memcpy(out, sci, (size_t)n + 1);
        return (size_t)n;
    }
    char digits[16];
    int nd = 0;
    for (const char *c = sci; c < e; c++)
        if (is_digit(*c))
            digits[nd++] = *c;
    char *w = out;
    if (sci[0] == '-')
        *w++ = '-';
    if (exp10 < 0) {
        *w++ = '0';
        *w++ = '.';
        for (int i = 0; i < -exp10 - 1; i++)
            *w++ = '0';
        memcpy(w, digits, (size_t)nd);
        w += nd;
    } else {
        for (int i = 0; i <= exp10; i++)
            *w++ = i < nd ? digits[i] : '0';
        if (nd > exp10 + 1) {
            *w++ = '.';
            memcpy(w, digits + exp10 + 1, (size_t)(nd - exp10 - 1));
            w += nd - exp10 - 1;
        }
    }
    *w = '\0';
    return (size_t)(w - out);
}
