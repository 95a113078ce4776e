/* libFuzzer target for the UBJSON reader: any bytes must be refused with a
 * message or parsed into a tree, never read out of bounds, leak or recurse
 * without bound; a tree's JSON text reads back equal through
 * sms_xjson_parse. Seed it with the .ubj files of tests/fixtures/compat. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smserve/ubjson.h"
#include "smserve/xjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char msg[256];
    json_t *v = sms_ubjson_parse(data, size, msg, sizeof msg);
    if (v) {
        /* The tree must be a valid jansson tree that serialises, and its
         * JSON (where it holds no NUL, which JSON models never do) must read
         * back the same through the dialect reader for .json models. */
        char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        if (!s)
            __builtin_trap();
        if (!strstr(s, "\\u0000")) {
            json_t *back = sms_xjson_parse(s, strlen(s), msg, sizeof msg);
            if (!back || !json_equal(back, v))
                __builtin_trap();
            json_decref(back);
        }
        free(s);
        json_decref(v);
    } else if (strncmp(msg, "byte ", 5) != 0) {
        __builtin_trap();
    }
    return 0;
}
