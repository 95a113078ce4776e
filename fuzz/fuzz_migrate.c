/* libFuzzer target for model migration (server/migrate.c): whatever the bytes,
 * sniffed as the loader sniffs them, migration leaves them alone, rewrites them
 * into JSON that the checks can read, or refuses them with a diagnosis; it never
 * reads out of bounds or leaks. Seed it with tests/fixtures/legacy and
 * tests/fixtures/compat. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smserve/compat.h"
#include "smserve/migrate.h"
#include "smserve/sniff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sms_format_t fmt = sms_sniff(data, size);
    unsigned char *out = NULL;
    size_t out_len = 0;
    char note[160];
    sms_diag_t diag = {{0}, {0}, {0}};
    sms_version_t runtime = {3, 4, 1};
    int rc = sms_migrate(fmt, data, size, runtime, &out, &out_len, NULL, note, sizeof note, &diag);
    if (rc == 1) {
        /* rewritten bytes are JSON text; what the checks could read before the
         * rewrite they can still read after it */
        sms_model_info_t info;
        sms_diag_t d2;
        if (!out || out_len == 0 || out[0] != '{' || !note[0])
            __builtin_trap();
        if (fmt != SMS_FMT_BINARY && sms_compat_read(fmt, data, size, &info, &d2) == 0 &&
            sms_compat_read(SMS_FMT_JSON, out, out_len, &info, &d2) < 0)
            __builtin_trap();
        free(out);
    } else if (rc < 0) {
        if (!diag.check[0] || !diag.reason[0] || out)
            __builtin_trap();
    } else if (out) {
        __builtin_trap();
    }
    return 0;
}
