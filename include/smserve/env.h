/* Reading settings from environment variables, checked at the edge: each
 * reader leaves *out alone when the variable is unset or empty, and
 * otherwise accepts only a whole, in-range value, failing with an error that
 * names the variable, its value and what is accepted. */
#ifndef SMSERVE_ENV_H
#define SMSERVE_ENV_H

#include <stdbool.h>
#include "smserve/error.h"

/* true/false, 1/0, yes/no (any case). 0, or -1 with err (status 500). */
int sms_env_bool(const char *name, bool *out, sms_error_t *err);
/* A decimal integer in [min, max]. 0, or -1 with err. */
int sms_env_long(const char *name, long min, long max, long *out, sms_error_t *err);
/* A finite decimal number in [min, max]. 0, or -1 with err. */
int sms_env_double(const char *name, double min, double max, double *out, sms_error_t *err);

#endif
