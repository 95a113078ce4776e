/* Logging to stderr (CloudWatch on SageMaker): a human line for people, and
 * JSON lines for machines. Safe to call from any thread; each line is
 * written with one write(2) so lines never interleave. */
#ifndef SMSERVE_LOG_H
#define SMSERVE_LOG_H

#include <jansson.h>

/* "2026-11-23T03:40:00.123Z smserve: <message>" */
void sms_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Writes obj as one compact JSON line, adding "time" and "level" members
 * first. Steals the reference to obj. */
void sms_log_json(const char *level, json_t *obj);

#endif
