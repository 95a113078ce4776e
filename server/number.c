/* Feature values as text to float32 and back, for the request decoders and
 * response encoders. Parsing is on the hot path (every feature value of every
 * request goes through it), so plain decimals of up to 19 significant digits
 * take a fast path that gives the same bits as the slow one (or steps aside
 * when it cannot prove it does); the slow path checks the grammar (number.h)
 * itself and hands the digits to strtod. A value is float64 first and then
 * float32, as in AWS's container (Python's float(), then XGBoost's cast), not
 * strtof's single rounding: the two differ for a decimal that lies within
 * half a float64 ulp of a point halfway between two floats. */
#include "smserve/number.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUOTE_SHOWN_BYTES 32 /* of a refused token, in a message */
#define FAST_MAX_DIGITS   19 /* significant digits that always fit a uint64_t */
#define FAST_MAX_EXP10    22 /* 10^22 = 2^22 * 5^22 and 5^22 < 2^53: exact in double */
#define TWO_POW_53        (UINT64_C(1) << 53)
/* The least float64 that the cast to float32 takes to infinity: half-way
 * between FLT_MAX and 2^128, which rounds to even, 2^128. */
#define FLOAT32_OVERFLOW 0x1.ffffffp127

/* The fast path relies on each double operation being rounded to double, not
 * carried out in a wider format (x87) and rounded twice. */
#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#define SMS_NO_FAST_FLOAT 1
#endif

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Whether [p, end) spells `word` (lower case) in any case. */
static int is_word(const char *p, const char *end, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(end - p) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((p[i] | 0x20) != word[i])
            return 0;
    return 1;
}

/* Whether [p, end) is a decimal by number.h's grammar, sign excluded. */
static int is_decimal(const char *p, const char *end)
{
    size_t digits = 0;
    for (; p < end && is_digit(*p); p++)
        digits++;
    if (p < end && *p == '.')
        for (p++; p < end && is_digit(*p); p++)
            digits++;
    if (digits == 0)
        return 0;
    if (p < end && (*p | 0x20) == 'e') {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p == end || !is_digit(*p))
            return 0;
        while (p < end && is_digit(*p))
            p++;
    }
    return p == end;
}

/* Everything the fast path leaves: the grammar, then strtod on a
 * NUL-terminated copy of a text it reads in full, then the cast. */
static int parse_slow(const char *p, const char *end, float *out)
{
    const char *body = p < end && (*p == '+' || *p == '-') ? p + 1 : p;
    if (is_word(body, end, "nan")) {
        *out = NAN;
        return 0;
    }
    if (is_word(body, end, "inf") || is_word(body, end, "infinity"))
        return SMS_NUMBER_INFINITE;
    if (!is_decimal(body, end))
        return SMS_NUMBER_INVALID;
    size_t n = (size_t)(end - p);
    if (n > SMS_NUMBER_MAX_BYTES)
        return SMS_NUMBER_LONG;
    char tmp[SMS_NUMBER_MAX_BYTES + 1];
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    double d = strtod(tmp, NULL);
    if (!(fabs(d) < FLOAT32_OVERFLOW))
        return SMS_NUMBER_RANGE;
    *out = (float)d;
    return 0;
}

#ifndef SMS_NO_FAST_FLOAT
#if defined(__GNUC__) || defined(__clang__)
#define LIKELY(x)   __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define INLINE      inline __attribute__((always_inline))
#else
#define INLINE      inline
#define LIKELY(x)   (x)
#define UNLIKELY(x) (x)
#endif

/* Eight digits at a time (SWAR) needs the first byte in memory to be the
 * low byte of a loaded word, and a count-trailing-zeros; elsewhere the
 * scalar loop does all the work. */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__BYTE_ORDER__) &&                        \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && !defined(SMS_NO_SWAR)
#define SMS_SWAR 1
#endif

static const double pow10_exact[FAST_MAX_EXP10 + 1] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

#ifdef SMS_SWAR
static const uint64_t pow10_u64[9] = {
    1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000,
};

#define BYTES(b) (UINT64_C(0x0101010101010101) * (b))

/* How many of the 8 bytes in `chunk` (first byte lowest) are digits before
 * the first one that is not. A byte b is a digit when its high nibble and
 * that of b + 6 are both 3; a carry out of b + 6 only happens for b >= 0xFA,
 * a non-digit, so it can only disturb bytes after the first non-digit. */
static INLINE unsigned digit_run(uint64_t chunk)
{
    uint64_t t = (chunk & BYTES(0xF0)) | (((chunk + BYTES(0x06)) & BYTES(0xF0)) >> 4);
    t ^= BYTES(0x33);
    return t ? (unsigned)__builtin_ctzll(t) >> 3 : 8;
}

/* The value of the first n (0..8) bytes of `chunk`, all digits. Subtracting
 * '0' borrows only upward, from bytes past the digits, and the shift drops
 * those bytes and puts n digits behind 8 - n leading zeros; then pairs,
 * quads and the two halves are combined by three multiplications. */
static INLINE uint64_t digit_value(uint64_t chunk, unsigned n)
{
    uint64_t v = (chunk - BYTES('0')) << ((8 * (8 - n)) & 63);
    v &= -(uint64_t)(n != 0);
    v = v * 10 + (v >> 8);
    return (((v & UINT64_C(0x000000FF000000FF)) * (100 + (UINT64_C(1000000) << 32))) +
            (((v >> 16) & UINT64_C(0x000000FF000000FF)) * (1 + (UINT64_C(10000) << 32)))) >>
           32;
}
#endif

/* The digits at p: appends them to *w (w = w * 10 + digit, wrapping past 19
 * digits, which the caller refuses) and returns how many there were. */
static INLINE size_t scan_digits(const char *p, const char *end, uint64_t *w)
{
    const char *start = p;
    uint64_t v = *w;
    unsigned d;
#ifdef SMS_SWAR
    while (end - p >= 8) {
        uint64_t chunk;
        memcpy(&chunk, p, sizeof chunk);
        unsigned n = digit_run(chunk);
        v = v * pow10_u64[n] + digit_value(chunk, n);
        p += n;
        if (n < 8) {
            *w = v;
            return (size_t)(p - start);
        }
    }
#endif
    for (; p < end && (d = (unsigned)(unsigned char)*p - '0') < 10; p++)
        v = v * 10 + d;
    *w = v;
    return (size_t)(p - start);
}

/* The float32 cast of the float64 nearest to w * 10^e (w > 0), or 0 when
 * that is not provably exact here. With w < 2^53 and |e| <= 22 both w and
 * 10^|e| are exact doubles and w * 10^e (or w / 10^-e) is one correctly
 * rounded double operation (Clinger), in [1e-22, 2^53 * 1e22], well inside
 * the normal float range. A w of 2^53 or more loses its last digits to fit:
 * then the exact value lies between w' * 10^e' and (w' + 1) * 10^e', and as
 * both roundings (to double, then to float) are monotonic, when both bounds
 * give the same float so does everything between them. */
static int decimal_to_float(uint64_t w, int e, float *out)
{
    int inexact = 0;
    while (UNLIKELY(w >= TWO_POW_53)) {
        inexact |= w % 10 != 0;
        w /= 10;
        e++;
    }
    if (UNLIKELY(e < -FAST_MAX_EXP10 || e > FAST_MAX_EXP10))
        return 0;
    double scale = pow10_exact[e < 0 ? -e : e];
    float lo = (float)(e < 0 ? (double)w / scale : (double)w * scale);
    if (UNLIKELY(inexact)) {
        float up = (float)(e < 0 ? (double)(w + 1) / scale : (double)(w + 1) * scale);
        if (up != lo)
            return 0;
    }
    *out = lo;
    return 1;
}

/* The exponent at p (just past the 'e'): [+-]digits. Adds it to *exp10 and
 * returns its end, or NULL when there are no digits. */
static const char *scan_exponent(const char *p, const char *end, int *exp10)
{
    int negative = 0, e = 0;
    if (p < end && (*p == '+' || *p == '-'))
        negative = *p++ == '-';
    if (p >= end || !is_digit(*p))
        return NULL;
    for (; p < end && is_digit(*p); p++)
        if (e < 100000) /* far outside the fast range already */
            e = e * 10 + (*p - '0');
    *exp10 += negative ? -e : e;
    return p;
}

/* The significant digits in [p, end), digits with a '.' at dot (or no dot,
 * NULL): all but the leading zeros. Only asked when there are more than
 * FAST_MAX_DIGITS digits in all, which real data rarely has. */
static size_t significant_digits(const char *p, const char *end, const char *dot)
{
    while (p < end && (*p == '0' || p == dot))
        p++;
    return (size_t)(end - p) - (dot && dot >= p);
}
#endif

/* Contract in number.h. *stop is set before the conversion, so a caller's
 * next value never waits on its division. */
int sms_scan_float(const char *p, const char *end, float *out, const char **stop)
{
#ifdef SMS_NO_FAST_FLOAT
    (void)p;
    (void)end;
    (void)out;
    (void)stop;
    return 0;
#else
    const char *start = p, *digits, *dot = NULL;
    uint64_t w = 0;
    size_t nd, nf = 0;
    int exp10 = 0;

    int negative = p < end && *p == '-';
    p += negative;
    digits = p;
#ifdef SMS_SWAR
    /* The common shape, 1 to 7 integer digits and a fraction of up to 8 (or
     * none), in two loads and no branch on the text; 16 bytes cover both. */
    if (LIKELY(end - p >= 16)) {
        uint64_t chunk;
        memcpy(&chunk, p, sizeof chunk);
        nd = digit_run(chunk);
        if (LIKELY(nd - 1 < 7)) {
            /* a leading zero: one test, as the text decides it at random */
            if (UNLIKELY((((unsigned)chunk & 0xFF) ^ '0') + (nd <= 1) == 0))
                return 0;
            w = digit_value(chunk, (unsigned)nd);
            p += nd;
            unsigned has_dot = *p == '.';
            memcpy(&chunk, p + 1, sizeof chunk);
            nf = digit_run(chunk) & (0u - has_dot);
            if (UNLIKELY((nf | (has_dot ^ 1)) == 0))
                return 0; /* a '.' with no digits after it */
            w = w * pow10_u64[nf] + digit_value(chunk, (unsigned)nf);
            dot = has_dot ? p : NULL;
            p += has_dot + nf;
            if (UNLIKELY(nf == 8)) {
                size_t more = scan_digits(p, end, &w);
                p += more;
                nf += more;
            }
            nd += nf;
            exp10 = -(int)nf;
            goto digits_done;
        }
    }
#endif
    nd = scan_digits(p, end, &w);
    if (UNLIKELY(nd == 0 || (*p == '0' && nd > 1)))
        return 0; /* no digits, or a leading zero */
    p += nd;
    if (p < end && *p == '.') {
        dot = p;
        nf = scan_digits(p + 1, end, &w);
        if (UNLIKELY(nf == 0))
            return 0;
        p += nf + 1;
        nd += nf;
        exp10 = -(int)nf;
    }
#ifdef SMS_SWAR
digits_done:
#endif
    if (UNLIKELY(p - start > SMS_NUMBER_MAX_BYTES))
        return 0; /* before the exponent adds to exp10, which counts nf */
    if (UNLIKELY(nd > FAST_MAX_DIGITS) && significant_digits(digits, p, dot) > FAST_MAX_DIGITS)
        return 0;
    if (UNLIKELY(p < end && (*p | 0x20) == 'e')) {
        p = scan_exponent(p + 1, end, &exp10);
        if (!p)
            return 0;
    }
    if (UNLIKELY(p - start > SMS_NUMBER_MAX_BYTES))
        return 0;
    *stop = p;
    float v;
    if (LIKELY(w < TWO_POW_53 && exp10 <= 0 && exp10 >= -FAST_MAX_EXP10)) {
        /* decimal_to_float's common case, with its branches decided here */
        v = (float)((double)w / pow10_exact[-exp10]);
    } else if (w == 0) {
        v = 0.0f;
    } else if (!decimal_to_float(w, exp10, &v)) {
        return 0;
    }
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    bits |= (uint32_t)negative << 31;
    memcpy(out, &bits, sizeof bits);
    return 1;
#endif
}

int sms_parse_float(const char *p, const char *end, float *out)
{
    const char *stop;
    if (!p || end < p)
        return SMS_NUMBER_INVALID;
    if (sms_scan_float(p, end, out, &stop) && stop == end)
        return 0;
    return parse_slow(p, end, out);
}

const char *sms_number_reason(int rc)
{
    static const char *const reasons[] = {
        [-SMS_NUMBER_INVALID] = "is not a number",
        [-SMS_NUMBER_INFINITE] = "is infinite, which XGBoost refuses",
        [-SMS_NUMBER_RANGE] = "is beyond float32's range (+-3.4028235e38), which XGBoost refuses",
        [-SMS_NUMBER_LONG] = "is longer than 1024 bytes",
    };
    if (rc >= 0 || rc <= -(int)(sizeof reasons / sizeof reasons[0]))
        rc = SMS_NUMBER_INVALID;
    return reasons[-rc];
}

char *sms_number_quote(const char *p, size_t n, char *buf, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t w = 0, i = 0;
    size_t shown = n < QUOTE_SHOWN_BYTES ? n : QUOTE_SHOWN_BYTES;
    /* room for one more escape, the "..." and the NUL */
    for (; i < shown && w + 8 <= cap; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
            buf[w++] = (char)c;
        } else {
            buf[w++] = '\\';
            buf[w++] = 'x';
            buf[w++] = hex[c >> 4];
            buf[w++] = hex[c & 15];
        }
    }
    if (i < n) {
        memcpy(buf + w, "...", 3);
        w += 3;
    }
    buf[w] = '\0';
    return buf;
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
    /* The text must also give v as sms_parse_float reads it (float64, then
     * float32). Of all floats only 0x15ae43fd and its negative need one
     * digit more for that ("7.038531e-26" gives 0x15ae43fe that way), and
     * the nearest decimal of 9 digits never lies close enough to a midpoint
     * between floats to round twice. */
    int n;
    for (;;) {
        n = snprintf(sci, sizeof sci, "%.*e", lo - 1, (double)v);
        if (lo >= 9 || same_bits((float)strtod(sci, NULL), v))
            break;
        lo++;
    }

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
