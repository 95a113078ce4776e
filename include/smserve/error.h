/* Errors that cross module boundaries: an HTTP-style status and a message a
 * user can act on. Functions that can fail return 0 on success or a negative
 * value, and fill a caller-provided sms_error_t. */
#ifndef SMSERVE_ERROR_H
#define SMSERVE_ERROR_H

typedef struct sms_error {
    int status;    /* HTTP status the failure maps to (400, 413, 415, 500, ...) */
    char msg[512]; /* one line, no trailing newline */
} sms_error_t;

/* Sets status and a printf-formatted message; returns -1 so callers can
 * `return sms_error_set(...)`. err may be NULL. */
int sms_error_set(sms_error_t *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
