/* Protobuf wire primitives, hand-written for the RecordIO decoder and writer:
 * bounds-checked reads that never go past `end` and allocate nothing, and
 * appends to a growable buffer. Knows no message; callers walk their own
 * schema with sms_pb_field. */
#ifndef SMSERVE_PBWIRE_H
#define SMSERVE_PBWIRE_H

#include <stddef.h>
#include <stdint.h>

#include "smserve/buf.h"

/* Wire types (the low 3 bits of a tag). Groups (3, 4) are refused. */
enum { SMS_PB_VARINT = 0, SMS_PB_I64 = 1, SMS_PB_LEN = 2, SMS_PB_I32 = 5 };

/* Why a read failed; every one is malformed input (a 400 for the client). */
typedef enum sms_pb_refusal {
    SMS_PB_TRUNCATED = -1,  /* a varint, length or fixed value runs past end */
    SMS_PB_OVERLONG = -2,   /* a varint of more than 10 bytes, or beyond 64 bits */
    SMS_PB_WIRETYPE = -3,   /* wire type 3, 4 (groups), 6 or 7 */
    SMS_PB_FIELD_ZERO = -4, /* field number 0, or a tag beyond 32 bits */
} sms_pb_refusal_t;

/* Reads one varint at *p (not past end) into *v and advances *p.
 * 0, or a negative sms_pb_refusal_t (*p unchanged). */
int sms_pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v);

/* Reads one field (tag and payload) at *p and advances *p past it. *num and
 * *wt get its number and wire type; [*val, *val + *val_len) its payload as
 * bytes of the input: the varint's bytes (SMS_PB_VARINT), 8 or 4 bytes
 * (SMS_PB_I64, SMS_PB_I32), or the content after the length (SMS_PB_LEN,
 * bounded by end). *scalar gets the varint's value, the fixed value as a
 * little-endian integer, or the length. 0, or a negative sms_pb_refusal_t
 * (*p unchanged). */
int sms_pb_field(const uint8_t **p, const uint8_t *end, uint32_t *num, int *wt, const uint8_t **val,
                 size_t *val_len, uint64_t *scalar);

/* The phrase for refusal rc (< 0): "truncated", "a varint longer than 10 bytes", ... */
const char *sms_pb_reason(int rc);

/* Bytes the varint encoding of v takes (1 to 10). */
size_t sms_pb_varint_size(uint64_t v);

/* Append a varint, or a tag (field number and wire type). 0 or -1 (out of memory). */
int sms_pb_put_varint(sms_buf_t *b, uint64_t v);
int sms_pb_put_tag(sms_buf_t *b, uint32_t num, int wt);

#endif
