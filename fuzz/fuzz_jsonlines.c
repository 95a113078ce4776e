/* libFuzzer target for the application/jsonlines decoder: any bytes must
 * decode into a consistent matrix or be refused with a one-line 400 message,
 * never read outside the body. Decodes each input free-width and at a fixed
 * width; a body that decodes free-width must decode the same at the width it
 * found. Seed it with JSON lines bodies such as the corpus's jsonlines.jsonl
 * and those in tests/test_jsonlines.c. */
#include "fuzz_decoder.h"
#include "smserve/jsonlines.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_decoder(sms_jsonlines_decode, data, size);
}
