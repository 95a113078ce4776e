/* libFuzzer target for the compatibility reader: sniff any bytes, read the
 * declared metadata in the sniffed format (and, from the first input byte,
 * in a forced one, so the binary and text readers see everything), check it
 * against runtimes 1.7.4, 2.0.3, 3.1.0 and 3.4.1, with and without
 * allow_newer. Seed it with tests/fixtures/compat and tests/fixtures/aws. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "smserve/compat.h"
#include "smserve/sniff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one(sms_format_t fmt, const uint8_t *data, size_t size)
{
    sms_model_info_t info;
    sms_diag_t diag;
    if (sms_compat_read(fmt, data, size, &info, &diag) < 0) {
        if (!diag.check[0] || !diag.reason[0] || !diag.fix[0])
            __builtin_trap();
        return;
    }
    if (info.booster[sizeof info.booster - 1] || info.objective[sizeof info.objective - 1])
        __builtin_trap();
    if (info.base_score_count < 0 || (info.base_score_count == 0 && !isnan(info.base_score)))
        __builtin_trap();
    static const sms_version_t runtimes[] = {{1, 7, 4}, {2, 0, 3}, {3, 1, 0}, {3, 4, 1}};
    for (size_t i = 0; i < sizeof runtimes / sizeof runtimes[0]; i++) {
        for (int allow_newer = 0; allow_newer < 2; allow_newer++) {
            if (sms_compat_check(&info, runtimes[i], allow_newer, &diag) < 0 &&
                (!diag.check[0] || !diag.reason[0] || !diag.fix[0]))
                __builtin_trap();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(sms_sniff(data, size), data, size);
    if (size > 1) {
        static const sms_format_t forced[] = {SMS_FMT_BINARY, SMS_FMT_JSON, SMS_FMT_UBJSON};
        one(forced[data[0] % 3], data + 1, size - 1);
    }
    return 0;
}
