/* libFuzzer target for the application/json decoder: any bytes must decode
 * into a consistent matrix or be refused with a one-line 400 message, never
 * read outside the body or recurse without bound. Decodes each input
 * free-width and at a fixed width; a body that decodes free-width must decode
 * the same at the width it found. Seed it with JSON bodies such as those in
 * tests/test_jsonreq.c. */
#include "fuzz_decoder.h"
#include "smserve/jsonreq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_decoder(sms_json_decode, data, size);
}
