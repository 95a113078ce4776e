/* Growable byte and float buffers, reused across requests so that the hot
 * path allocates only when a request is bigger than any before it. */
#include "smserve/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t grow_to(size_t cap, size_t need)
{
    size_t n = cap ? cap : 256;
    while (n < need) {
        if (n > SIZE_MAX / 2)
            return need;
        n *= 2;
    }
    return n;
}

int sms_buf_reserve(sms_buf_t *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1)
        return -1;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = grow_to(b->cap, need);
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int sms_buf_append(sms_buf_t *b, const void *bytes, size_t n)
{
    if (sms_buf_reserve(b, n) < 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, bytes, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int sms_buf_appendc(sms_buf_t *b, char c)
{
    return sms_buf_append(b, &c, 1);
}

int sms_buf_printf(sms_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || sms_buf_reserve(b, (size_t)n) < 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void sms_buf_reset(sms_buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void sms_buf_free(sms_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void sms_buf_trim(sms_buf_t *b, size_t keep)
{
    if (b->cap > keep)
        sms_buf_free(b);
}

static size_t max_values_setting = SMS_MATRIX_MAX_VALUES;

void sms_matrix_set_max_values(size_t max_values)
{
    max_values_setting = max_values ? max_values : SMS_MATRIX_MAX_VALUES;
}

size_t sms_matrix_max_values(void)
{
    return max_values_setting;
}

int sms_matrix_reserve(sms_matrix_t *m, size_t n)
{
    if (n <= m->cap)
        return 0;
    size_t cap = grow_to(m->cap, n);
    if (cap > SIZE_MAX / sizeof(float))
        return -1;
    float *p = realloc(m->values, cap * sizeof(float));
    if (!p)
        return -1;
    m->values = p;
    m->cap = cap;
    return 0;
}

void sms_matrix_reset(sms_matrix_t *m)
{
    m->rows = m->cols = 0;
}

void sms_matrix_free(sms_matrix_t *m)
{
    free(m->values);
    m->values = NULL;
    m->rows = m->cols = m->cap = 0;
}

void sms_matrix_trim(sms_matrix_t *m, size_t keep)
{
    if (m->cap > keep / sizeof(float))
        sms_matrix_free(m);
}
