/* application/jsonlines request bodies: splits the body into lines and hands
 * each non-blank one to jsonreq's one-row parser, so both JSON decoders share
 * one grammar, one set of messages and the no-allocation-per-value path. */
#include "smserve/jsonlines.h"

#include <string.h>

#include "smserve/jsonreq.h"

static int is_blank(const char *p, const char *end)
{
    for (; p < end; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r')
            return 0;
    return 1;
}

int sms_jsonlines_decode(const char *body, size_t len, size_t expect_cols, sms_matrix_t *out,
                         sms_error_t *err)
{
    sms_matrix_reset(out);
    out->cols = expect_cols;
    const char *p = body, *end = body + len;
    if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    size_t line = 1;
    for (; p < end; line++) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if (!is_blank(p, eol) && sms_json_decode_row(body, p, eol, expect_cols, out, line, err) < 0)
            goto fail;
        p = eol < end ? eol + 1 : end;
    }
    if (out->rows == 0)
        out->cols = expect_cols;
    return 0;

fail:
    /* syntax errors from the row parser name only the byte ("byte 41:
     * expected ..."); those naming the line already are left alone */
    if (err && strncmp(err->msg, "byte ", 5) == 0 && !strstr(err->msg, ": line ")) {
        char msg[sizeof err->msg];
        memcpy(msg, err->msg, sizeof msg);
        sms_error_set(err, err->status, "line %zu, %s", line, msg);
    }
    sms_matrix_reset(out);
    return -1;
}
