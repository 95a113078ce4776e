/* The error struct that carries an HTTP status and a user-facing message
 * across module boundaries. */
#include "smserve/error.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

int sms_error_set(sms_error_t *err, int status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->status = status;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void *sms_refuse(char *why, size_t why_size, const char *fmt, ...)
{
    if (why && why_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_size, fmt, ap);
        va_end(ap);
    }
    return NULL;
}
