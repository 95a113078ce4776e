/* libFuzzer target for the JSON-to-UBJSON transcoder: any bytes are either
 * refused with "byte N: ..." (N within the input) or written as UBJSON that
 * sms_ubjson_parse reads back. Oracle: sms_xjson_parse (jansson with
 * XGBoost's NaN / Infinity tokens) takes exactly the same inputs, but for
 * nesting past SMS_TRANSCODE_MAX_DEPTH, which only the transcoder refuses.
 * Seed it with the .json files of tests/fixtures/compat. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smserve/transcode.h"
#include "smserve/ubjson.h"
#include "smserve/xjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char msg[256];
    unsigned char *out;
    size_t out_len;
    bool exact;
    int rc = sms_transcode_json((const char *)data, size, &out, &out_len, &exact, msg, sizeof msg);
    json_t *x = sms_xjson_parse((const char *)data, size, NULL, 0);
    if (rc < 0) {
        char *end;
        if (out || strncmp(msg, "byte ", 5) != 0 || strtoull(msg + 5, &end, 10) > size ||
            strncmp(end, ": ", 2) != 0)
            __builtin_trap();
        if (x && !strstr(msg, "nesting deeper"))
            __builtin_trap();
    } else {
        if (!x)
            __builtin_trap();
        json_t *u = sms_ubjson_parse(out, out_len, NULL, 0);
        if (!u)
            __builtin_trap();
        json_decref(u);
        free(out);
    }
    json_decref(x);
    return 0;
}
