/* libFuzzer target for the header-value parsers in mediatype.c: any bytes, as
 * a Content-Type, an Accept or a default-accept value, must give the same
 * answer twice, a printable one-line 415/500 message when refused, an
 * encoding among those offered, and the kind or encoding they name must map
 * back to itself from its own canonical spelling. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smserve/encode.h"
#include "smserve/mediatype.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_message(const sms_error_t *err, int status)
{
    if (err->status != status || err->msg[0] == '\0')
        __builtin_trap();
    for (const char *c = err->msg; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
            __builtin_trap();
}

static void check_input(const char *value)
{
    static const char *const canonical[] = {"text/csv", "text/libsvm",
                                            "application/x-recordio-protobuf", "application/json",
                                            "application/jsonlines"};
    sms_input_t a = (sms_input_t)-1, b = (sms_input_t)-1, c;
    sms_error_t ea = {0}, eb = {0};
    int ra = sms_media_input(value, &a, &ea), rb = sms_media_input(value, &b, &eb);
    if (ra != rb || (ra == 0 && a != b) || (ra < 0 && strcmp(ea.msg, eb.msg) != 0))
        __builtin_trap();
    if (ra < 0) {
        check_message(&ea, 415);
        return;
    }
    if ((unsigned)a > SMS_IN_JSONLINES)
        __builtin_trap();
    if (sms_media_input(canonical[a], &c, &eb) != 0 || c != a)
        __builtin_trap();
}

static void check_output(const char *value)
{
    static const unsigned offers[] = {SMS_ENC_ALL, SMS_ENC_ALL & ~SMS_ENC_BIT(SMS_ENC_RECORDIO),
                                      SMS_ENC_BIT(SMS_ENC_CSV)};
    for (size_t o = 0; o < sizeof offers / sizeof offers[0]; o++) {
        for (int fb = 0; fb < SMS_ENC_COUNT; fb++) {
            if (!(offers[o] & SMS_ENC_BIT(fb)))
                continue;
            sms_encoding_t a = (sms_encoding_t)-1, b = (sms_encoding_t)-1, c;
            int ra = sms_media_output(value, (sms_encoding_t)fb, offers[o], &a);
            int rb = sms_media_output(value, (sms_encoding_t)fb, offers[o], &b);
            if (ra != rb || (ra == 0 && a != b))
                __builtin_trap();
            if (ra < 0)
                continue;
            if (!(offers[o] & SMS_ENC_BIT(a)))
                __builtin_trap();
            /* the response's own Content-Type, sent back as Accept, picks it */
            if (sms_media_output(sms_encoding_content_type(a), (sms_encoding_t)fb, SMS_ENC_ALL,
                                 &c) != 0 ||
                c != a)
                __builtin_trap();
        }
    }
    sms_encoding_t d;
    sms_error_t err = {0};
    if (sms_media_default_accept(value, SMS_ENC_ALL, &d, &err) < 0)
        check_message(&err, 500);
    else if ((unsigned)d >= SMS_ENC_COUNT)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *value = malloc(size + 1);
    if (!value)
        return 0;
    memcpy(value, data, size);
    value[size] = '\0';
    check_input(value);
    check_output(value);
    free(value);
    return 0;
}
