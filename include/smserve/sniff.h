/* Which kind of artifact a file is, told from its first bytes only, never
 * from its name. */
#ifndef SMSERVE_SNIFF_H
#define SMSERVE_SNIFF_H

#include <stddef.h>

typedef enum sms_format {
    SMS_FMT_EMPTY = 0, /* zero bytes */
    SMS_FMT_UNKNOWN,   /* none of the below */
    SMS_FMT_BINARY,    /* XGBoost legacy binary, with or without "binf" */
    SMS_FMT_JSON,      /* '{' then optional whitespace then '"' */
    SMS_FMT_UBJSON,    /* '{' then a UBJSON type marker */
    SMS_FMT_PICKLE,    /* 0x80 then a protocol number 2..5 */
    SMS_FMT_GZIP,      /* 1f 8b: a model.tar.gz */
    SMS_FMT_TAR,       /* "ustar" at offset 257 */
} sms_format_t;

/* Classifies `len` bytes of a file's start (pass at least the first 512
 * bytes when the file has them). Legacy binary is recognised by its layout:
 * an optional "binf" then a 136-byte parameter block whose num_feature is
 * plausible, followed by a length-prefixed objective name such as
 * "binary:logistic". */
sms_format_t sms_sniff(const unsigned char *bytes, size_t len);

/* "empty", "unknown", "binary", "json", "ubjson", "pickle", "gzip", "tar". */
const char *sms_format_name(sms_format_t fmt);

#endif
