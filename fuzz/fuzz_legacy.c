/* libFuzzer target for the legacy binary model converter: any bytes must be
 * refused with a one-line "byte N: ..." or "unsupported: ..." message or
 * become JSON text, never read out of bounds, leak, allocate from a count
 * the bytes cannot back, or loop on a broken tree. Seed it with the .bin
 * files of tests/fixtures/legacy. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smserve/legacy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char msg[256];
    size_t len = 0;
    sms_legacy_info_t info;
    char *json = sms_legacy_convert(data, size, &len, &info, msg, sizeof msg);
    if (json) {
        /* NUL-terminated text of the length reported, an object that ends
         * with the version */
        if (strlen(json) != len || len < 2 || json[0] != '{' || json[len - 1] != '}')
            __builtin_trap();
        if (info.num_feature == 0 ||
            (info.num_trees == 0) != (strcmp(info.booster, "gblinear") == 0))
            __builtin_trap();
        free(json);
        return 0;
    }
    if (strncmp(msg, "byte ", 5) != 0 && strncmp(msg, "unsupported: ", 13) != 0)
        __builtin_trap();
    for (const char *c = msg; *c; c++) {
        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
            __builtin_trap();
    }
    return 0;
}
