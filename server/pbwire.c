/* Protobuf wire primitives: varints, tags and length-delimited payloads read
 * with every length checked against the end of the enclosing bytes, so that
 * a decoder built on them cannot read outside its input whatever the bytes
 * say; and the two appends a writer needs. */
#include "smserve/pbwire.h"

int sms_pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    const uint8_t *q = *p;
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (q >= end)
            return SMS_PB_TRUNCATED;
        uint8_t byte = *q++;
        /* the 10th byte may only hold the 64th bit */
        if (shift == 63 && byte > 1)
            return SMS_PB_OVERLONG;
        x |= (uint64_t)(byte & 0x7f) << shift;
        if (byte < 0x80) {
            *p = q;
            *v = x;
            return 0;
        }
    }
    return SMS_PB_OVERLONG;
}

static uint64_t load_le(const uint8_t *q, int n)
{
    uint64_t x = 0;
    for (int i = n - 1; i >= 0; i--)
        x = (x << 8) | q[i];
    return x;
}

int sms_pb_field(const uint8_t **p, const uint8_t *end, uint32_t *num, int *wt, const uint8_t **val,
                 size_t *val_len, uint64_t *scalar)
{
    const uint8_t *q = *p;
    uint64_t tag, x;
    int rc = sms_pb_varint(&q, end, &tag);
    if (rc < 0)
        return rc;
    if (tag >> 3 == 0 || tag > UINT32_MAX)
        return SMS_PB_FIELD_ZERO;
    const uint8_t *start = q;
    size_t n;
    switch ((int)(tag & 7)) {
    case SMS_PB_VARINT:
        if ((rc = sms_pb_varint(&q, end, &x)) < 0)
            return rc;
        n = (size_t)(q - start);
        break;
    case SMS_PB_I64:
    case SMS_PB_I32:
        n = (tag & 7) == SMS_PB_I64 ? 8 : 4;
        if ((size_t)(end - q) < n)
            return SMS_PB_TRUNCATED;
        x = load_le(q, (int)n);
        q += n;
        break;
    case SMS_PB_LEN:
        if ((rc = sms_pb_varint(&q, end, &x)) < 0)
            return rc;
        if (x > (uint64_t)(end - q))
            return SMS_PB_TRUNCATED;
        start = q;
        n = (size_t)x;
        q += n;
        break;
    default:
        return SMS_PB_WIRETYPE;
    }
    *num = (uint32_t)(tag >> 3);
    *wt = (int)(tag & 7);
    *val = start;
    *val_len = n;
    *scalar = x;
    *p = q;
    return 0;
}

const char *sms_pb_reason(int rc)
{
    switch (rc) {
    case SMS_PB_TRUNCATED:
        return "a field runs past the end of its message";
    case SMS_PB_OVERLONG:
        return "a varint longer than 10 bytes or beyond 64 bits";
    case SMS_PB_WIRETYPE:
        return "an unsupported wire type (groups, 6 or 7)";
    case SMS_PB_FIELD_ZERO:
        return "an invalid tag (field number 0 or beyond 32 bits)";
    default:
        return "malformed protobuf";
    }
}

size_t sms_pb_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

int sms_pb_put_varint(sms_buf_t *b, uint64_t v)
{
    uint8_t bytes[10];
    size_t n = 0;
    while (v >= 0x80) {
        bytes[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    bytes[n++] = (uint8_t)v;
    return sms_buf_append(b, bytes, n);
}

int sms_pb_put_tag(sms_buf_t *b, uint32_t num, int wt)
{
    return sms_pb_put_varint(b, ((uint64_t)num << 3) | (uint64_t)wt);
}
