/* libFuzzer target for the XGBoost JSON dialect reader: any bytes must be
 * refused with "byte N: ..." (N within the input) or parsed into a tree,
 * never read out of bounds, leak or recurse without bound. Oracles: a NUL
 * byte is refused at its offset; input without NUL, 'N' and 'I' reads
 * exactly as jansson reads it (same error offset and text); any other input
 * reads as its strict twin does, where each standalone NaN / Infinity /
 * -Infinity outside strings is swapped for a number of the same length (the
 * token's string standing where the twin has the number). Seed it with the
 * .json files of tests/fixtures/compat. */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smserve/xjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FLAGS (JSON_DECODE_ANY | JSON_REJECT_DUPLICATES)

static bool boundary_before(const char *t, size_t i)
{
    if (i == 0)
        return true;
    char c = t[i - 1];
    return c == '[' || c == ',' || c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool boundary_after(const char *t, size_t len, size_t i)
{
    if (i >= len)
        return true;
    char c = t[i];
    return !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
             c == '.' || c == '+' || c == '-' || c == '_');
}

static char *strict_twin(const char *text, size_t len)
{
    char *t = malloc(len ? len : 1);
    if (!t)
        return NULL;
    memcpy(t, text, len);
    static const struct {
        const char *token, *number;
    } swaps[] = {{"-Infinity", "-1.000000"}, {"Infinity", "1.000000"}, {"NaN", "1.0"}};
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        if (in_string) {
            if (t[i] == '\\')
                i++;
            else if (t[i] == '"')
                in_string = false;
            continue;
        }
        if (t[i] == '"') {
            in_string = true;
            continue;
        }
        for (size_t k = 0; k < 3; k++) {
            size_t n = strlen(swaps[k].token);
            if (len - i >= n && memcmp(t + i, swaps[k].token, n) == 0 && boundary_before(t, i) &&
                boundary_after(t, len, i + n)) {
                memcpy(t + i, swaps[k].number, n);
                i += n - 1;
                break;
            }
        }
    }
    return t;
}

/* a (from the dialect) equals b (from the twin), a token's string standing
 * for the twin's number. */
static bool same(const json_t *a, const json_t *b)
{
    double d;
    if (json_is_string(a) && json_is_real(b) && sms_xjson_number(a, &d)) {
        double want = isnan(d) ? 1.0 : d > 0 ? 1.0 : -1.0;
        return json_real_value(b) == want;
    }
    if (json_typeof(a) != json_typeof(b))
        return false;
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t i = 0; i < json_array_size(a); i++) {
            if (!same(json_array_get(a, i), json_array_get(b, i)))
                return false;
        }
        return true;
    }
    if (json_is_object(a)) {
        if (json_object_size(a) != json_object_size(b))
            return false;
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)a, key, v)
        {
            const json_t *w = json_object_get(b, key);
            if (!w || !same(v, w))
                return false;
        }
        return true;
    }
    return json_equal((json_t *)a, (json_t *)b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    char msg[256];
    json_t *v = sms_xjson_parse(text, size, msg, sizeof msg);
    if (!v) {
        char *end;
        if (strncmp(msg, "byte ", 5) != 0 || strtoull(msg + 5, &end, 10) > size ||
            strncmp(end, ": ", 2) != 0)
            __builtin_trap();
    } else {
        char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        if (!s)
            __builtin_trap();
        free(s);
    }

    json_error_t jerr;
    const uint8_t *nul = memchr(data, '\0', size);
    if (nul) {
        char want[64];
        snprintf(want, sizeof want, "byte %zu: ", (size_t)(nul - data));
        if (v || strncmp(msg, want, strlen(want)) != 0)
            __builtin_trap();
        return 0;
    }
    if (!memchr(data, 'N', size) && !memchr(data, 'I', size)) {
        json_t *w = json_loadb(text, size, FLAGS, &jerr);
        if ((v == NULL) != (w == NULL))
            __builtin_trap();
        if (w && !json_equal(v, w))
            __builtin_trap();
        if (!w) {
            char want[256];
            snprintf(want, sizeof want, "byte %d: %s", jerr.position, jerr.text);
            if (strcmp(msg, want) != 0)
                __builtin_trap();
        }
        json_decref(w);
        json_decref(v);
        return 0;
    }

    char *twin = strict_twin(text, size);
    if (twin) {
        json_t *w = json_loadb(twin, size, FLAGS, &jerr);
        if ((v == NULL) != (w == NULL) || (v && !same(v, w)))
            __builtin_trap();
        json_decref(w);
        free(twin);
    }
    json_decref(v);
    return 0;
}
