/* application/x-recordio-protobuf: SageMaker's RecordIO frames of protobuf
 * `Record` messages (aialgs.data), read into a float matrix one frame per
 * row, and written one frame per prediction row. Frame: u32 LE magic
 * 0xCED7230A, u32 LE length, the Record, zero padding to 4 bytes. Knows
 * nothing of HTTP or of models. */
#ifndef SMSERVE_RECORDIO_H
#define SMSERVE_RECORDIO_H

#include <stddef.h>

#include "smserve/buf.h"
#include "smserve/decode.h"
#include "smserve/error.h"

#define SMS_RECORDIO_MAGIC 0xCED7230Au
/* The widest row a sparse record may ask for when no width is expected. */
#define SMS_RECORDIO_FREE_COLS_MAX 65536

/* sms_decode_fn for application/x-recordio-protobuf. Each frame is one row,
 * read from the Record's features["values"] tensor (float32, float64 or
 * int32; label, uid and unknown fields ignored; proto2 merge rules: fields in
 * any order, repeated values packed or not and concatenated, the last
 * "values" entry and the last oneof member win). Dense (no keys): the values
 * are the row; NaN is missing. Sparse (keys, 0-based, and shape [width]): a
 * row of missing values with each key's value set; a record with shape and
 * no keys is an all-missing row. expect_cols: the width; a dense row must
 * have exactly that many values, a sparse shape may be narrower. 0 takes
 * the first record's (dense: its values; sparse: shape[0], else its largest
 * key + 1; at most SMS_RECORDIO_FREE_COLS_MAX). float64 becomes float32 by a
 * C cast. Errors (400) name the 1-based record and its frame's byte offset,
 * then what is wrong: "record 2 (byte 48): 5 values, expected 6". Refused:
 * a bad magic, multi-part frames (cflag bits), truncated frames or padding,
 * trailing bytes, malformed protobuf, wire types that do not fit the
 * schema, no features["values"] tensor, bytes, an empty dense tensor,
 * infinities (and float64 beyond float32's range), keys and values of
 * different counts, a duplicate key, a key outside the shape or the width,
 * a shape of 0 or of more than one dimension, a shape wider than
 * expect_cols. An empty body is 0 rows; out of memory is 500. */
int sms_recordio_decode(const char *body, size_t len, size_t expect_cols, sms_matrix_t *out,
                        sms_error_t *err);

/* The writer: an answer is a sequence of frames, each begun, given its
 * label entries, and ended. AWS's container writes frame i with the records
 * of rows 1..i concatenated (a protobuf parser merges them and reads row i);
 * smserve writes each row's record once, which decodes to the same values.
 * All three return 0, or -1 when out of memory (or, frame_end, when the
 * record exceeds the 2^29 - 1 bytes a frame length holds). */

/* Appends the frame header at the end of out; *mark remembers the frame. */
int sms_recordio_frame_begin(sms_buf_t *out, size_t *mark);
/* Appends to the open frame's Record the entry label[key] =
 * Value{float32_tensor{values: v[0..n), packed}}, as AWS's encoder lays it out. */
int sms_recordio_label(sms_buf_t *out, const char *key, const float *v, size_t n);
/* Closes the frame begun at mark: writes its length and pads to 4 bytes. */
int sms_recordio_frame_end(sms_buf_t *out, size_t mark);

#endif
