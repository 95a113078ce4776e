/* Growable byte and float buffers. A buffer owns its memory; sms_buf_free and
 * sms_fbuf_free release it. Reset keeps the capacity so per-thread buffers are
 * reused across requests without allocating again. */
#ifndef SMSERVE_BUF_H
#define SMSERVE_BUF_H

#include <stddef.h>

typedef struct sms_buf {
    char *data;
    size_t len;
    size_t cap;
} sms_buf_t;

/* Ensures room for `extra` more bytes (plus a NUL terminator). 0 or -1 on OOM. */
int sms_buf_reserve(sms_buf_t *b, size_t extra);
int sms_buf_append(sms_buf_t *b, const void *bytes, size_t n);
int sms_buf_appendc(sms_buf_t *b, char c);
int sms_buf_printf(sms_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Keeps data NUL-terminated after every successful append. */
void sms_buf_reset(sms_buf_t *b);
void sms_buf_free(sms_buf_t *b);
/* Frees the buffer when its capacity is over `keep` bytes (a burst's large
 * buffers go back; small ones stay for the next request). */
void sms_buf_trim(sms_buf_t *b, size_t keep);

/* A row-major float matrix being filled by a decoder. */
typedef struct sms_matrix {
    float *values; /* rows * cols values, row-major */
    size_t rows;
    size_t cols;
    size_t cap; /* capacity of values, in floats */
} sms_matrix_t;

/* Ensures capacity for `n` floats in total. 0 or -1 on OOM. */
int sms_matrix_reserve(sms_matrix_t *m, size_t n);
void sms_matrix_reset(sms_matrix_t *m); /* rows = cols = 0, keeps capacity */
void sms_matrix_free(sms_matrix_t *m);
/* Frees the matrix when its capacity is over `keep` bytes. */
void sms_matrix_trim(sms_matrix_t *m, size_t keep);

/* The default cap on rows x columns of one decoded body: 64 M floats, 256 MB. */
#define SMS_MATRIX_MAX_VALUES ((size_t)64 << 20)

/* The cap the decoders whose width does not come from their bytes (libsvm,
 * sparse RecordIO: a few bytes can name column 10^9) refuse a body over
 * with 413. Set once at start (SMSERVE_MAX_MATRIX_VALUES), before any
 * decode; 0 restores the default. */
void sms_matrix_set_max_values(size_t max_values);
size_t sms_matrix_max_values(void);

#endif
