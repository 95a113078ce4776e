/* Tells what kind of artifact a file is from its first bytes, because names
 * lie: SageMaker names every model "xgboost-model" whatever its format, and
 * users upload pickles and tarballs where a model file is expected. */
#include "smserve/sniff.h"

#include <stdint.h>
#include <string.h>

/* Layout of XGBoost's legacy binary header (LearnerModelParamLegacy). */
#define LEGACY_PARAM_BYTES 136
#define LEGACY_MAX_FEATURE 10000000u
#define LEGACY_MAX_CLASS   1000000
#define LEGACY_MAX_NAME    255

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static int is_name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == ':' || c == '_';
}

static int looks_legacy_binary(const unsigned char *b, size_t len)
{
    size_t off = 0;
    if (len >= 4 && memcmp(b, "binf", 4) == 0)
        off = 4;
    if (len - off < LEGACY_PARAM_BYTES + 8)
        return 0;
    const unsigned char *param = b + off;
    uint32_t num_feature = le32(param + 4);
    int32_t num_class = (int32_t)le32(param + 8);
    if (num_feature < 1 || num_feature > LEGACY_MAX_FEATURE)
        return 0;
    if (num_class < 0 || num_class > LEGACY_MAX_CLASS)
        return 0;
    const unsigned char *name = param + LEGACY_PARAM_BYTES;
    uint64_t name_len = le64(name);
    if (name_len < 1 || name_len > LEGACY_MAX_NAME)
        return 0;
    if (len - off - LEGACY_PARAM_BYTES - 8 < name_len)
        return 0;
    for (uint64_t i = 0; i < name_len; i++) {
        if (!is_name_char(name[8 + i]))
            return 0;
    }
    return 1;
}

static int is_json_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* '{' then whitespace then '"' (or '}'); '{' followed only by whitespace up
 * to the end is JSON too, so that a truncated file gets a parse diagnosis. */
static int looks_json(const unsigned char *b, size_t len)
{
    size_t i = 0;
    if (len >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF)
        i = 3;
    if (i >= len || b[i] != '{')
        return 0;
    for (i++; i < len && is_json_space(b[i]); i++)
        ;
    return i == len || b[i] == '"' || b[i] == '}';
}

/* '{' then what can follow it in UBJSON: a key length's integer marker, an
 * optimised container's '$' or '#', a noop, or the end of an empty object. */
static int looks_ubjson(const unsigned char *b, size_t len)
{
    if (len < 2 || b[0] != '{')
        return 0;
    return strchr("iUIlL$#N}", b[1]) != NULL && b[1] != '\0';
}

sms_format_t sms_sniff(const unsigned char *bytes, size_t len)
{
    if (!bytes || len == 0)
        return SMS_FMT_EMPTY;
    if (len >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b)
        return SMS_FMT_GZIP;
    if (len >= 262 && memcmp(bytes + 257, "ustar", 5) == 0)
        return SMS_FMT_TAR;
    /* Before pickle and JSON: a base_score float may start with any byte,
     * and the structural check is strict enough not to catch text. */
    if (looks_legacy_binary(bytes, len))
        return SMS_FMT_BINARY;
    if (len >= 2 && bytes[0] == 0x80 && bytes[1] >= 2 && bytes[1] <= 5)
        return SMS_FMT_PICKLE;
    if (looks_json(bytes, len))
        return SMS_FMT_JSON;
    if (looks_ubjson(bytes, len))
        return SMS_FMT_UBJSON;
    return SMS_FMT_UNKNOWN;
}

const char *sms_format_name(sms_format_t fmt)
{
    switch (fmt) {
    case SMS_FMT_EMPTY:
        return "empty";
    case SMS_FMT_UNKNOWN:
        return "unknown";
    case SMS_FMT_BINARY:
        return "binary";
    case SMS_FMT_JSON:
        return "json";
    case SMS_FMT_UBJSON:
        return "ubjson";
    case SMS_FMT_PICKLE:
        return "pickle";
    case SMS_FMT_GZIP:
        return "gzip";
    case SMS_FMT_TAR:
        return "tar";
    }
    return "unknown";
}
