/* Log lines on stderr: a timestamped human line, or one compact JSON object
 * per line for log queries. One write(2) per line keeps lines whole when
 * several threads log at once. */
#define _GNU_SOURCE
#include "smserve/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void timestamp(char *out, size_t size)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

static void write_line(const char *line, size_t len)
{
    while (len) {
        ssize_t w = write(STDERR_FILENO, line, len);
        if (w <= 0)
            return;
        line += w;
        len -= (size_t)w;
    }
}

void sms_log(const char *fmt, ...)
{
    char line[2048], ts[40];
    timestamp(ts, sizeof ts);
    int n = snprintf(line, sizeof line, "%s smserve: ", ts);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    write_line(line, len);
}

void sms_log_json(const char *level, json_t *obj)
{
    char ts[40];
    timestamp(ts, sizeof ts);
    json_t *line = json_object();
    json_object_set_new(line, "time", json_string(ts));
    json_object_set_new(line, "level", json_string(level));
    json_object_update(line, obj);
    json_decref(obj);
    char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(line);
    if (!text)
        return;
    size_t len = strlen(text);
    text[len] = '\n';
    write_line(text, len + 1);
    free(text);
}
