/* Errors that cross module boundaries: an HTTP-style status and a message a
 * user can act on. Functions that can fail return 0 on success or a negative
 * value, and fill a caller-provided sms_error_t. */
#ifndef SMSERVE_ERROR_H
#define SMSERVE_ERROR_H

#include <stddef.h>

typedef struct sms_error {
    int status;    /* HTTP status the failure maps to (400, 413, 415, 500, ...) */
    char msg[512]; /* one line, no trailing newline */
} sms_error_t;

/* Sets status and a printf-formatted message; returns -1 so callers can
 * `return sms_error_set(...)`. err may be NULL. */
int sms_error_set(sms_error_t *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes a printf-formatted reason into why (when why is given and
 * why_size > 0) and returns NULL, for functions that return what they built
 * or NULL with the reason: `return sms_refuse(why, why_size, ...)`. */
void *sms_refuse(char *why, size_t why_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
