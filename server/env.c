/* Environment-variable readers shared by every module that takes settings
 * (config, capture, metrics), so each value is checked and reported the
 * same way. */
#include "smserve/env.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <strings.h>

/* Skips trailing blanks; true when nothing else follows. */
static bool only_blanks(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return *p == '\0';
}

int sms_env_bool(const char *name, bool *out, sms_error_t *err)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return 0;
    if (!strcasecmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes")) {
        *out = true;
        return 0;
    }
    if (!strcasecmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no")) {
        *out = false;
        return 0;
    }
    return sms_error_set(err, 500, "invalid %s=\"%.64s\": expected true or false", name, v);
}

int sms_env_long(const char *name, long min, long max, long *out, sms_error_t *err)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return 0;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || !only_blanks(end) || n < min || n > max)
        return sms_error_set(err, 500, "invalid %s=\"%.64s\": expected an integer from %ld to %ld",
                             name, v, min, max);
    *out = n;
    return 0;
}

int sms_env_double(const char *name, double min, double max, double *out, sms_error_t *err)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return 0;
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || !only_blanks(end) || !isfinite(d) || d < min || d > max)
        return sms_error_set(err, 500, "invalid %s=\"%.64s\": expected a number from %g to %g",
                             name, v, min, max);
    *out = d;
    return 0;
}
