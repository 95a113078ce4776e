/* Hostile HTTP: a table-driven catalogue of raw requests against the real
 * smserve on models/sample (see /work/notes/http-front-spec.md, issue 9).
 *
 * Every row is a name, the raw bytes (in up to six timed pieces, optionally
 * dripped byte by byte, optionally followed by a half-close), the expected
 * status (or CLOSED: the connection closed without a response), up to three
 * other acceptable statuses, one or two substrings the JSON "error" message
 * must contain (case-insensitive; "a|b" means either), and whether the
 * server must close the connection. For every response the invariants are
 * checked too:
 *   - the status line is exactly "HTTP/1.1 <3 digits> <standard reason>", so
 *     no request byte can be in it; header lines are printable and never
 *     carry the word "canary" that hostile rows put in paths and headers;
 *   - error responses have Content-Type application/json, one
 *     Content-Length equal to the body's length, Date and Connection, and a
 *     body {"error": non-empty string, "code": the status}; 405 has Allow;
 *   - Connection: close (and an actual close) on 400/408/413/417/431/503 and
 *     where the row says so; a response that says keep-alive is followed by
 *     a GET /ping on the same connection that must get 200 (a server that
 *     left unread bytes behind fails there).
 * The rows of the main server run in parallel over a few connections; the
 * timing rows run against a second server with short timeouts. Each server
 * must still answer /ping and an exact sample prediction afterwards. Every
 * failing row is printed with all its mismatches, then a per-category
 * summary; HOSTILE_VERBOSE=1 prints every row's outcome. Rows whose name
 * says [RFC] expect what RFC 9110/9112 asks where the spec is silent. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ the table */

typedef struct bytes {
    const char *s;
    size_t n;
} bytes_t;

/* A string literal with its length, embedded NULs included. */
// clang-format off
#define B(x) {x, sizeof(x) - 1}
// clang-format on

/* The connection closed without any response bytes. */
#define CLOSED 1
/* Internal outcomes. */
#define TIMEOUT 2
#define GARBLED 3

enum {
    F_CLOSE = 1 << 0,   /* the server must close the connection after answering */
    F_HALF = 1 << 1,    /* shutdown(SHUT_WR) after the last piece */
    F_WAIT100 = 1 << 2, /* after piece 0, wait for "HTTP/1.1 100 Continue" (or a final answer) */
    F_NO100 = 1 << 3,   /* no interim 100 may be sent */
    F_DRIP = 1 << 4,    /* piece 0 goes one byte at a time, gap_ms apart */
    F_IDLE = 1 << 5,    /* after a keep-alive answer, send nothing: the server must close */
    F_PRED = 1 << 6,    /* a 200 must carry sample row 1's prediction (CSV) */
    F_TIMING = 1 << 7,  /* runs on the short-timeout server; bounds count from connect */
    F_STALL = 1 << 8,   /* after the last piece, keep the connection open and wait */
};

typedef struct hcase {
    const char *cat, *name;
    bytes_t part[6];
    int gap_ms; /* pause before each piece after the first, or between dripped bytes */
    int status; /* expected status, or CLOSED */
    int alt[3]; /* other acceptable outcomes (0 ends the list) */
    const char *must, *must2; /* substrings of the "error" message; "a|b": either */
    unsigned flags;
    int within_ms;             /* the answer (or close) is due within this; 0: the default */
    int min_ms;                /* and not before this (timing rows, from connect) */
    char *(*gen)(size_t *len); /* builds piece 0 at run time */
    bytes_t autobody;          /* piece 0 = autohead (default INV) + Content-Length + this */
    const char *autohead;
    /* the X-Amzn-SageMaker-Custom-Attributes a 200 must carry back, or
     * NULL: none may */
    const char *echo;
    size_t (*echo_len)(void); /* when set: the echo is that many 'a's */
} hcase_t;

/* Sample row 1 (36 bytes) and its prediction, models/sample.expected line 1. */
#define ROW1 "35.0,72.5,0.21,5.0,0.0,8.5,12.0,1.0\n"
_Static_assert(sizeof(ROW1) - 1 == 36, "ROW1 is 36 bytes");
#define HOST         "Host: x\r\n"
#define CSV          "Content-Type: text/csv\r\n"
#define INV          "POST /invocations HTTP/1.1\r\n" HOST CSV
#define GOOD         INV "Content-Length: 36\r\n\r\n" ROW1
#define CHK          INV "Transfer-Encoding: chunked\r\n\r\n"
#define CHUNKED_ROW1 "24\r\n" ROW1 "\r\n0\r\n\r\n"
#define PING         "GET /ping HTTP/1.1\r\n" HOST
#define JSON_HEAD    "POST /invocations HTTP/1.1\r\n" HOST "Content-Type: application/json\r\n"
/* Row 1 with column 3 replaced. */
#define R3(x) "35.0,72.5," x ",5.0,0.0,8.5,12.0,1.0\n"
/* 100 bytes: two rows and most of a third */
#define BODY100 ROW1 ROW1 "35.0,72.5,0.21,5.0,0.0,8.5,1"
_Static_assert(sizeof(BODY100) - 1 == 100, "BODY100 is 100 bytes");
#define J3(x) "[[35.0, 72.5, " x ", 5.0, 0.0, 8.5, 12.0, 1.0]]"

#define ROW(c, n, st, m, ...)                                                                      \
    {                                                                                              \
        .cat = c, .name = n, .status = st, .must = m, __VA_ARGS__                                  \
    }
#define P1(a)          .part = {B(a)}
#define P2(a, b)       .part = {B(a), B(b)}
#define P3(a, b, c)    .part = {B(a), B(b), B(c)}
#define P4(a, b, c, d) .part = {B(a), B(b), B(c), B(d)}
#define NUM(n, body, st, m, m2, ...)                                                               \
    {                                                                                              \
        .cat = "numbers", .name = n, .status = st, .must = m, .must2 = m2, .autobody = B(body),    \
        __VA_ARGS__                                                                                \
    }
#define JNUM(n, body, st, m, m2, ...)                                                              \
    {                                                                                              \
        .cat = "numbers", .name = n, .status = st, .must = m, .must2 = m2, .autobody = B(body),    \
        .autohead = JSON_HEAD, __VA_ARGS__                                                         \
    }
#define CT_ROW(n, ct, st, m, ...)                                                                  \
    {                                                                                              \
        .cat = "content-type", .name = n, .status = st, .must = m, .autobody = B(ROW1),            \
        .autohead = "POST /invocations HTTP/1.1\r\n" HOST ct, __VA_ARGS__                          \
    }

#define ROW_SM(n, h, st, m, ...)                                                                   \
    {                                                                                              \
        .cat = SM, .name = n, .status = st, .must = m, .autobody = B(ROW1), .autohead = INV h,     \
        __VA_ARGS__                                                                                \
    }

#define MAXCL 6291456 /* MAX_CONTENT_LENGTH's default */

/* Timing server settings (milliseconds). */
#define T_HEAD 800
#define T_BODY 800
#define T_KEEP 1000
/* Budget server: MAX_CONTENT_LENGTH = SMSERVE_BODY_BUDGET_BYTES = this. */
#define BUDGET 1000000

/* ---- generators for rows too big to write out ---- */

static char *cat_alloc(size_t *len, size_t cap)
{
    char *p = malloc(cap);
    assert_non_null(p);
    *len = 0;
    return p;
}

static void put(char *p, size_t *len, const char *s, size_t n)
{
    memcpy(p + *len, s, n);
    *len += n;
}

static void puts_(char *p, size_t *len, const char *s)
{
    put(p, len, s, strlen(s));
}

/* GET /ping with Host and n more fields "<name><i>: <value>" (i from 0). */
static char *fields(size_t *len, int n, const char *name, const char *value)
{
    char *p = cat_alloc(len, 64 + (size_t)n * (strlen(name) + strlen(value) + 16));
    puts_(p, len, PING);
    char line[600];
    for (int i = 0; i < n; i++) {
        snprintf(line, sizeof line, "%s%d: %s\r\n", name, i, value);
        puts_(p, len, line);
    }
    puts_(p, len, "\r\n");
    return p;
}
/* A generator `name` (hcase_t.gen) that returns fn(len, ...). */
#define GEN(name, fn, ...)                                                                         \
    static char *name(size_t *len)                                                                 \
    {                                                                                              \
        return fn(len, __VA_ARGS__);                                                               \
    }
GEN(g_fields63, fields, 62, "X-F-", "v")
GEN(g_fields64, fields, 63, "X-F-", "v")
GEN(g_fields200, fields, 199, "X-F-", "v")

static char *g_fields10000(size_t *len)
{
    char *p = cat_alloc(len, 64 + 10000 * 5);
    puts_(p, len, PING);
    for (int i = 0; i < 10000; i++)
        puts_(p, len, "a:b\r\n");
    puts_(p, len, "\r\n");
    return p;
}

/* GET /ping whose whole head (request line to the empty line) is `total`
 * bytes, made up by one X-Pad field. */
static char *head_of(size_t *len, size_t total)
{
    const char *pre = PING "X-Pad: ";
    size_t fixed = strlen(pre) + strlen("\r\n\r\n");
    assert_true(total > fixed);
    char *p = cat_alloc(len, total);
    puts_(p, len, pre);
    memset(p + *len, 'a', total - fixed);
    *len += total - fixed;
    puts_(p, len, "\r\n\r\n");
    assert_int_equal(*len, total);
    return p;
}
GEN(g_head15000, head_of, 15000)
GEN(g_head16384, head_of, 16384)
GEN(g_head16389, head_of, 16389)
GEN(g_head17000, head_of, 17000)
GEN(g_head100k, head_of, 100000)

static char *g_40x500(size_t *len)
{
    char v[501];
    memset(v, 'b', 500);
    v[500] = '\0';
    return fields(len, 40, "X-M-", v);
}

static char *long_path(size_t *len, size_t n)
{
    char *p = cat_alloc(len, n + 64);
    puts_(p, len, "GET /canary");
    memset(p + *len, 'a', n);
    *len += n;
    puts_(p, len, " HTTP/1.1\r\n" HOST "\r\n");
    return p;
}
GEN(g_path8000, long_path, 8000)
GEN(g_path17000, long_path, 17000)

static char *g_method1000(size_t *len)
{
    char *p = cat_alloc(len, 1100);
    memset(p, 'A', 1000);
    *len = 1000;
    puts_(p, len, " /ping HTTP/1.1\r\n" HOST "\r\n");
    return p;
}

/* Custom attributes of n 'a's on a valid sample request. */
static char *attributes_of(size_t *len, size_t n)
{
    char *p = cat_alloc(len, n + 200);
    puts_(p, len, INV "X-Amzn-SageMaker-Custom-Attributes: ");
    memset(p + *len, 'a', n);
    *len += n;
    puts_(p, len, "\r\nContent-Length: 36\r\n\r\n" ROW1);
    return p;
}

static size_t len1024(void)
{
    return 1024;
}

static char *g_attributes1024(size_t *len)
{
    return attributes_of(len, 1024);
}

static char *g_attributes1025(size_t *len)
{
    return attributes_of(len, 1025);
}

static char *g_ct8000(size_t *len)
{
    char *p = cat_alloc(len, 8200);
    puts_(p, len, "POST /invocations HTTP/1.1\r\n" HOST "Content-Type: application/x-");
    memset(p + *len, 'z', 8000);
    *len += 8000;
    puts_(p, len, "\r\nContent-Length: 36\r\n\r\n" ROW1);
    return p;
}

/* `rows` copies of ROW1, the last one padded with zeros to make `total`. */
static void fill_rows(char *p, size_t *len, size_t total)
{
    size_t start = *len;
    while (total - (*len - start) >= 2 * 36) /* leave room for a padded last row */
        put(p, len, ROW1, 36);
    size_t left = total - (*len - start);
    /* "35.0,72.5,0.21,5.0,0.0,8.5,12.0,1.0" + zeros + "\n" */
    put(p, len, ROW1, 35);
    memset(p + *len, '0', left - 36);
    *len += left - 36;
    put(p, len, "\n", 1);
    assert_int_equal(*len - start, total);
}

/* A CSV POST /invocations with a body of `total` bytes (fill_rows). */
static char *body_of(size_t *len, size_t total)
{
    char *p = cat_alloc(len, total + 256);
    char head[128];
    snprintf(head, sizeof head, INV "Content-Length: %zu\r\n\r\n", total);
    puts_(p, len, head);
    fill_rows(p, len, total);
    return p;
}
GEN(g_body_max, body_of, MAXCL)
GEN(g_body_max1, body_of, MAXCL + 1)

/* Chunks of 64 KiB up to MAXCL + 64 KiB in all, then the last chunk. */
static char *g_chunked_over(size_t *len)
{
    size_t unit = 65536, n = MAXCL / unit + 1;
    char *p = cat_alloc(len, n * (unit + 16) + 256);
    puts_(p, len, CHK);
    for (size_t i = 0; i < n; i++) {
        puts_(p, len, "10000\r\n");
        fill_rows(p, len, unit);
        puts_(p, len, "\r\n");
    }
    puts_(p, len, "0\r\n\r\n");
    return p;
}

/* One chunk that declares (and carries) MAXCL + 1 bytes. */
static char *g_chunk_big(size_t *len)
{
    char *p = cat_alloc(len, MAXCL + 256);
    puts_(p, len, CHK "600001\r\n");
    fill_rows(p, len, MAXCL + 1);
    puts_(p, len, "\r\n0\r\n\r\n");
    return p;
}

/* ROW1 as 36 one-byte chunks. */
static char *g_chunks1(size_t *len)
{
    char *p = cat_alloc(len, 512);
    puts_(p, len, CHK);
    for (size_t i = 0; i < 36; i++) {
        puts_(p, len, "1\r\n");
        put(p, len, ROW1 + i, 1);
        puts_(p, len, "\r\n");
    }
    puts_(p, len, "0\r\n\r\n");
    return p;
}

/* ---- the catalogue ---- */

#define FR "framing"
#define HD "headers"
#define RL "request-line"
#define SM "sagemaker-headers"
#define SZ "sizes"
#define TM "timing"

static const hcase_t CASES[] = {
    /* ================================================================ framing */
    /* Content-Length forms */
    ROW(FR, "CL '12abc'", 400, "Content-Length", P1(INV "Content-Length: 12abc\r\n\r\n" ROW1)),
    ROW(FR, "CL '-1'", 400, "Content-Length", P1(INV "Content-Length: -1\r\n\r\n" ROW1)),
    ROW(FR, "CL '+36'", 400, "Content-Length", P1(INV "Content-Length: +36\r\n\r\n" ROW1)),
    ROW(FR, "CL ' 3 6'", 400, "Content-Length", P1(INV "Content-Length:  3 6\r\n\r\n" ROW1)),
    ROW(FR, "CL empty", 400, "Content-Length", P1(INV "Content-Length:\r\n\r\n" ROW1)),
    ROW(FR, "CL blanks only", 400, "Content-Length", P1(INV "Content-Length:    \r\n\r\n" ROW1)),
    ROW(FR, "CL hex '0x24'", 400, "Content-Length", P1(INV "Content-Length: 0x24\r\n\r\n" ROW1)),
    ROW(FR, "CL hex digits '24h'", 400, "Content-Length",
        P1(INV "Content-Length: 24h\r\n\r\n" ROW1)),
    ROW(FR, "CL '36.0'", 400, "Content-Length", P1(INV "Content-Length: 36.0\r\n\r\n" ROW1)),
    ROW(FR, "CL '3.6e1'", 400, "Content-Length", P1(INV "Content-Length: 3.6e1\r\n\r\n" ROW1)),
    ROW(FR, "CL list '36, 36'", 400, "Content-Length",
        P1(INV "Content-Length: 36, 36\r\n\r\n" ROW1)),
    ROW(FR, "CL list '36,36'", 400, "Content-Length", P1(INV "Content-Length: 36,36\r\n\r\n" ROW1)),
    ROW(FR, "CL '36 x'", 400, "Content-Length", P1(INV "Content-Length: 36 x\r\n\r\n" ROW1)),
    ROW(FR, "CL NUL after digits", 400, "Content-Length|control|header",
        P1(INV "Content-Length: 36\0\r\n\r\n" ROW1)),
    ROW(FR, "CL unicode digits", 400, "Content-Length",
        P1(INV "Content-Length: \xd9\xa3\xd9\xa6\r\n\r\n" ROW1)),
    ROW(FR, "two CL equal", 400, "Content-Length",
        P1(INV "Content-Length: 36\r\nContent-Length: 36\r\n\r\n" ROW1)),
    ROW(FR, "two CL different", 400, "Content-Length",
        P1(INV "Content-Length: 36\r\nContent-Length: 10\r\n\r\n" ROW1)),
    ROW(FR, "two CL, other case", 400, "Content-Length",
        P1(INV "Content-Length: 36\r\ncontent-length: 36\r\n\r\n" ROW1)),
    ROW(FR, "two CL, first empty", 400, "Content-Length",
        P1(INV "Content-Length:\r\nContent-Length: 36\r\n\r\n" ROW1)),
    ROW(FR, "CL '0036' (valid)", 200, NULL, P1(INV "Content-Length: 0036\r\n\r\n" ROW1),
        .flags = F_PRED),
    /* The spec refuses control bytes anywhere in the head; RFC 9110 allows HTAB as OWS. */
    ROW(FR, "CL after a tab (spec: control byte; RFC: OWS)", 400, "control|Content-Length",
        .alt = {200}, P1(INV "Content-Length:\t36\r\n\r\n" ROW1)),
    ROW(FR, "CL with trailing OWS (valid)", 200, NULL, P1(INV "Content-Length: 36 \r\n\r\n" ROW1),
        .flags = F_PRED),
    ROW(FR, "CL 0 (valid, no rows)", 204, NULL, P1(INV "Content-Length: 0\r\n\r\n")),
    ROW(FR, "CL smaller than the body (10 of 36)", 400, "row",
        P1(INV "Content-Length: 10\r\n\r\n" ROW1)),
    ROW(FR, "body shorter than CL, half-close (7 of 36)", 400, "7 of", .must2 = "36",
        P1(INV "Content-Length: 36\r\n\r\n35.0,72"), .flags = F_HALF),
    ROW(FR, "no body at all, half-close (0 of 36)", 400, "0 of", .must2 = "36",
        P1(INV "Content-Length: 36\r\n\r\n"), .flags = F_HALF),
    ROW(FR, "body cut in timed pieces then half-close", 400, "20 of", .must2 = "36",
        P3(INV "Content-Length: 36\r\n\r\n", "35.0,72.5,", "0.21,5.0,0"), .gap_ms = 60,
        .flags = F_HALF),
    ROW(FR, "POST without CL or TE [RFC]", 204, NULL, .alt = {411},
        P1("POST /invocations HTTP/1.1\r\n" HOST CSV "\r\n")),
    ROW(FR, "GET /ping with a body", 200, NULL, P1(PING "Content-Length: 5\r\n\r\nhello")),
    ROW(FR, "POST /ping with a body", 405, "/ping",
        P1("POST /ping HTTP/1.1\r\n" HOST CSV "Content-Length: 36\r\n\r\n" ROW1)),
    /* Content-Length with Transfer-Encoding, and Transfer-Encoding values */
    ROW(FR, "CL + TE chunked", 400, "Content-Length|Transfer-Encoding",
        P1(INV "Content-Length: 36\r\nTransfer-Encoding: chunked\r\n\r\n" CHUNKED_ROW1)),
    ROW(FR, "TE chunked + CL", 400, "Content-Length|Transfer-Encoding",
        P1(INV "Transfer-Encoding: chunked\r\nContent-Length: 36\r\n\r\n" CHUNKED_ROW1)),
    ROW(FR, "CL.TE smuggling", 400, "Content-Length|Transfer-Encoding",
        P1(INV "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
               "GET /canary HTTP/1.1\r\n" HOST "\r\n")),
    ROW(FR, "CL 0 + TE chunked", 400, "Content-Length|Transfer-Encoding",
        P1(INV "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n" CHUNKED_ROW1)),
    ROW(FR, "TE gzip", 400, "Transfer-Encoding", .alt = {501},
        P1(INV "Transfer-Encoding: gzip\r\n\r\n" ROW1)),
    ROW(FR, "TE identity", 400, "Transfer-Encoding", .alt = {501},
        P1(INV "Transfer-Encoding: identity\r\n\r\n" ROW1)),
    ROW(FR, "TE 'chunked, gzip'", 400, "Transfer-Encoding", .alt = {501},
        P1(INV "Transfer-Encoding: chunked, gzip\r\n\r\n" CHUNKED_ROW1)),
    ROW(FR, "TE 'gzip, chunked'", 400, "Transfer-Encoding", .alt = {501},
        P1(INV "Transfer-Encoding: gzip, chunked\r\n\r\n" CHUNKED_ROW1)),
    ROW(FR, "TE 'chunked, chunked'", 400, "Transfer-Encoding", .alt = {501},
        P1(INV "Transfer-Encoding: chunked, chunked\r\n\r\n" CHUNKED_ROW1)),
    ROW(FR, "two TE headers, both chunked", 400, "Transfer-Encoding", .alt = {501},
        P1(INV "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" CHUNKED_ROW1)),
    ROW(FR, "two TE headers, chunked then gzip", 400, "Transfer-Encoding", .alt = {501},
        P1(INV "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n" CHUNKED_ROW1)),
    ROW(FR, "TE empty", 400, "Transfer-Encoding", .alt = {501},
        P1(INV "Transfer-Encoding:\r\n\r\n" ROW1)),
    ROW(FR, "TE 'xchunked'", 400, "Transfer-Encoding", .alt = {501},
        P1(INV "Transfer-Encoding: xchunked\r\n\r\n" CHUNKED_ROW1)),
    ROW(FR, "TE 'chunked;q=1'", 400, "Transfer-Encoding", .alt = {501},
        P1(INV "Transfer-Encoding: chunked;q=1\r\n\r\n" CHUNKED_ROW1)),
    ROW(FR, "TE chunked + vertical tab", 400, "Transfer-Encoding|control|header", .alt = {501},
        P1(INV "Transfer-Encoding: chunked\x0b\r\n\r\n" CHUNKED_ROW1)),
    ROW(FR, "TE 'Chunked' [RFC: case-insensitive]", 400, "Transfer-Encoding", .alt = {501, 200},
        P1(INV "Transfer-Encoding: Chunked\r\n\r\n" CHUNKED_ROW1)),
    /* chunked bodies */
    ROW(FR, "chunked, one chunk (valid)", 200, NULL, P1(CHK CHUNKED_ROW1), .flags = F_PRED),
    ROW(FR, "chunked, two chunks a+1a (valid)", 200, NULL,
        P1(CHK "a\r\n35.0,72.5,\r\n1a\r\n0.21,5.0,0.0,8.5,12.0,1.0\n\r\n0\r\n\r\n"),
        .flags = F_PRED),
    ROW(FR, "chunked, uppercase hex sizes (valid)", 200, NULL,
        P1(CHK "A\r\n35.0,72.5,\r\n1A\r\n0.21,5.0,0.0,8.5,12.0,1.0\n\r\n0\r\n\r\n"),
        .flags = F_PRED),
    ROW(FR, "chunked, zero-padded sizes (valid)", 200, NULL,
        P1(CHK "0024\r\n" ROW1 "\r\n000\r\n\r\n"), .flags = F_PRED),
    ROW(FR, "chunked, 36 one-byte chunks (valid)", 200, NULL, .gen = g_chunks1, .flags = F_PRED),
    ROW(FR, "chunked, split inside size/data/CRLF in timed pieces (valid)", 200, NULL,
        P4(CHK "2", "4\r\n35.0,", "72.5,0.21,5.0,0.0,8.5,12.0,1.0\n\r", "\n0\r\n\r\n"),
        .gap_ms = 50, .flags = F_PRED),
    ROW(FR, "chunked, zero-length body (valid, no rows)", 204, NULL, P1(CHK "0\r\n\r\n")),
    ROW(FR, "chunked, with a trailer field [RFC]", 200, NULL, .alt = {400},
        P1(CHK "24\r\n" ROW1 "\r\n0\r\nX-Trailer: 1\r\n\r\n")),
    ROW(FR, "chunk size 'zz'", 400, "chunk", P1(CHK "zz\r\n" ROW1 "\r\n0\r\n\r\n")),
    ROW(FR, "chunk size '-24'", 400, "chunk", P1(CHK "-24\r\n" ROW1 "\r\n0\r\n\r\n")),
    ROW(FR, "chunk size '+24'", 400, "chunk", P1(CHK "+24\r\n" ROW1 "\r\n0\r\n\r\n")),
    ROW(FR, "chunk size '0x24'", 400, "chunk", P1(CHK "0x24\r\n" ROW1 "\r\n0\r\n\r\n")),
    ROW(FR, "chunk size ' 24'", 400, "chunk", P1(CHK " 24\r\n" ROW1 "\r\n0\r\n\r\n")),
    ROW(FR, "chunk size line empty", 400, "chunk", P1(CHK "\r\n" ROW1 "\r\n0\r\n\r\n")),
    ROW(FR, "chunk size NUL", 400, "chunk",
        P1(CHK "2\0"
               "4\r\n" ROW1 "\r\n0\r\n\r\n")),
    ROW(FR, "chunk size 2^76 overflow", 400, "chunk|MAX_CONTENT_LENGTH", .alt = {413},
        P1(CHK "10000000000000000024\r\n" ROW1 "\r\n0\r\n\r\n")),
    ROW(FR, "chunk size 2^64-1", 413, "chunk|MAX_CONTENT_LENGTH", .alt = {400},
        P1(CHK "ffffffffffffffff\r\n" ROW1 "\r\n0\r\n\r\n")),
    ROW(FR, "chunk extension '24;ext=1'", 400, "chunk",
        P1(CHK "24;ext=1\r\n" ROW1 "\r\n0\r\n\r\n")),
    ROW(FR, "chunk extension '24;'", 400, "chunk", P1(CHK "24;\r\n" ROW1 "\r\n0\r\n\r\n")),
    ROW(FR, "chunk extension on the last chunk", 400, "chunk",
        P1(CHK "24\r\n" ROW1 "\r\n0;ext\r\n\r\n")),
    ROW(FR, "chunk size ends in bare LF", 400, "chunk", P1(CHK "24\n" ROW1 "\r\n0\r\n\r\n")),
    ROW(FR, "chunk data ends in bare LF", 400, "chunk", P1(CHK "24\r\n" ROW1 "\n0\r\n\r\n")),
    ROW(FR, "chunk data without its CRLF", 400, "chunk", P1(CHK "24\r\n" ROW1 "0\r\n\r\n")),
    ROW(FR, "chunk data followed by junk", 400, "chunk", P1(CHK "24\r\n" ROW1 "XX\r\n0\r\n\r\n")),
    ROW(FR, "chunk data longer than its size", 400, "chunk", P1(CHK "10\r\n" ROW1 "\r\n0\r\n\r\n")),
    ROW(FR, "chunk data shorter than its size, half-close", 400, "chunk", P1(CHK "30\r\n" ROW1),
        .flags = F_HALF),
    ROW(FR, "stream ends before the last chunk, half-close", 400, "chunk",
        P1(CHK "24\r\n" ROW1 "\r\n"), .flags = F_HALF),
    ROW(FR, "stream ends inside a size line, half-close", 400, "chunk", P1(CHK "2"),
        .flags = F_HALF),
    /* CivetWeb 1.15 reports a chunked body complete at its last chunk; whether
     * the final CRLF followed cannot be told (README, "The HTTP front"): the
     * data is complete either way, and the connection is closed after it. */
    ROW(FR, "stream ends after '0\\r\\n', half-close", 400, "chunk", .alt = {200},
        P1(CHK "24\r\n" ROW1 "\r\n0\r\n"), .flags = F_HALF),
    ROW(FR, "chunked head only, half-close", 400, "chunk", P1(CHK), .flags = F_HALF),

    /* ================================================================== sizes */
    ROW(SZ, "CL MAX+1, body not sent", 413, "6291457", P1(INV "Content-Length: 6291457\r\n\r\n"),
        .flags = F_CLOSE),
    ROW(SZ, "CL 99999999999", 413, "99999999999", P1(INV "Content-Length: 99999999999\r\n\r\n"),
        .flags = F_CLOSE),
    ROW(SZ, "CL 2^63", 413, "9223372036854775808",
        P1(INV "Content-Length: 9223372036854775808\r\n\r\n"), .flags = F_CLOSE),
    ROW(SZ, "CL 2^64", 413, "18446744073709551616",
        P1(INV "Content-Length: 18446744073709551616\r\n\r\n"), .flags = F_CLOSE),
    ROW(SZ, "CL 2^64+1", 413, "18446744073709551617",
        P1(INV "Content-Length: 18446744073709551617\r\n\r\n"), .flags = F_CLOSE),
    ROW(SZ, "CL 2^64+36 (wraps to 36)", 413, "18446744073709551652",
        P1(INV "Content-Length: 18446744073709551652\r\n\r\n" ROW1), .flags = F_CLOSE),
    ROW(SZ, "CL 30 digits", 413, "123456789012345678901234567890",
        P1(INV "Content-Length: 123456789012345678901234567890\r\n\r\n"), .flags = F_CLOSE),
    ROW(SZ, "CL 0000000000000000000000000036 (valid)", 200, NULL,
        P1(INV "Content-Length: 0000000000000000000000000036\r\n\r\n" ROW1), .flags = F_PRED),
    ROW(SZ, "CL MAX+1 with the body", 413, "6291457", .gen = g_body_max1, .flags = F_CLOSE),
    ROW(SZ, "body of exactly MAX_CONTENT_LENGTH (valid)", 200, NULL, .gen = g_body_max),
    ROW(SZ, "chunked, MAX + 64 KiB in 64 KiB chunks", 413, "MAX_CONTENT_LENGTH|6291456",
        .gen = g_chunked_over, .flags = F_CLOSE),
    ROW(SZ, "one chunk of MAX+1", 413, "MAX_CONTENT_LENGTH|6291456", .gen = g_chunk_big,
        .flags = F_CLOSE),
    ROW(SZ, "CL MAX, half-close after 100 bytes", 400, "100 of", .must2 = "6291456",
        P1(INV "Content-Length: 6291456\r\n\r\n" BODY100), .flags = F_HALF),

    /* ================================================================ headers */
    ROW(HD, "63 header fields (valid)", 200, NULL, .gen = g_fields63),
    ROW(HD, "64 header fields", 431, "header", .gen = g_fields64),
    ROW(HD, "200 header fields", 431, "header", .gen = g_fields200),
    /* Heads that overflow CivetWeb's buffer reach smserve only as "malformed". */
    ROW(HD, "10000 header fields 'a:b'", 431, "head", .alt = {400}, .gen = g_fields10000),
    ROW(HD, "head of 15000 bytes (valid)", 200, NULL, .gen = g_head15000),
    ROW(HD, "head of exactly 16384 bytes (valid)", 200, NULL, .gen = g_head16384),
    ROW(HD, "head of 16389 bytes (over 16384 without its final CRLFCRLF too)", 431, "header",
        .gen = g_head16389),
    ROW(HD, "one 17000-byte head", 431, "header", .gen = g_head17000),
    ROW(HD, "one 100000-byte head", 431, "head", .alt = {400}, .gen = g_head100k),
    ROW(HD, "40 fields of 500 bytes", 431, "header", .gen = g_40x500),
    ROW(HD, "name with a space", 400, "header", P1(PING "Bad Canary: x\r\n\r\n")),
    ROW(HD, "name with '('", 400, "header", P1(PING "X(canary): x\r\n\r\n")),
    ROW(HD, "name with '@'", 400, "header", P1(PING "X@canary: x\r\n\r\n")),
    ROW(HD, "name with '/'", 400, "header", P1(PING "X/canary: x\r\n\r\n")),
    ROW(HD, "name with '\"'", 400, "header", P1(PING "X\"canary: x\r\n\r\n")),
    ROW(HD, "name empty", 400, "header", P1(PING ": canary\r\n\r\n")),
    ROW(HD, "name with UTF-8", 400, "header",
        P1(PING "X-\xc3\x89"
                "canary: x\r\n\r\n")),
    ROW(HD, "name with NUL", 400, "header|control", P1(PING "X-\0canary: x\r\n\r\n")),
    ROW(HD, "line without a colon", 400, "header", P1(PING "NoColonCanary\r\n\r\n")),
    ROW(HD, "space before colon: Host", 400, "header|Host",
        P1("GET /ping HTTP/1.1\r\nHost : x\r\n\r\n")),
    ROW(HD, "space before colon: Content-Length", 400, "header|Content-Length",
        P1(INV "Content-Length : 36\r\n\r\n" ROW1)),
    ROW(HD, "tab before colon: Content-Length", 400, "header|Content-Length|control",
        P1(INV "Content-Length\t: 36\r\n\r\n" ROW1)),
    ROW(HD, "space before colon: Transfer-Encoding", 400, "header|Transfer-Encoding",
        P1(INV "Transfer-Encoding : chunked\r\n\r\n" CHUNKED_ROW1)),
    ROW(HD, "obs-fold (space)", 400, "fold|header", P1(PING "X-A: 1\r\n  canary\r\n\r\n")),
    ROW(HD, "obs-fold (tab)", 400, "fold|header|control", P1(PING "X-A: 1\r\n\tcanary\r\n\r\n")),
    ROW(HD, "obs-fold inside Content-Length", 400, "fold|header|Content-Length",
        P1(INV "Content-Length: 3\r\n 6\r\n\r\n" ROW1)),
    ROW(HD, "obs-fold hiding Transfer-Encoding", 400, "fold|header|Transfer-Encoding",
        P1(INV "Transfer-Encoding:\r\n chunked\r\n\r\n" CHUNKED_ROW1)),
    ROW(HD, "first field line starts with a space", 400, "fold|header|Host",
        P1("GET /ping HTTP/1.1\r\n Host: x\r\n\r\n")),
    ROW(HD, "value with \\x01", 400, "control|header",
        P1(PING "X-A: can\x01"
                "ary\r\n\r\n")),
    ROW(HD, "value with NUL", 400, "control|header", P1(PING "X-A: can\0ary\r\n\r\n")),
    ROW(HD, "value with DEL", 400, "control|header",
        P1(PING "X-A: can\x7f"
                "ary\r\n\r\n")),
    ROW(HD, "value with ESC sequence", 400, "control|header",
        P1(PING "X-A: \x1b[31mcanary\r\n\r\n")),
    ROW(HD, "value with bare CR", 400, "control|header|CR", P1(PING "X-A: can\rary\r\n\r\n")),
    ROW(HD, "line ends CR CR LF", 400, "control|header|CR", P1(PING "X-A: canary\r\r\n\r\n")),
    ROW(HD, "bare CR line ends, half-close", 400, "control|header|CR|request", .alt = {CLOSED},
        P1("GET /ping HTTP/1.1\rHost: x\r\r"), .flags = F_HALF),
    ROW(HD, "bare LF line ends throughout [RFC]", 200, NULL, .alt = {400},
        P1("GET /ping HTTP/1.1\nHost: x\n\n")),
    ROW(HD, "value with obs-text UTF-8 (valid)", 200, NULL, P1(PING "X-A: caf\xc3\xa9\r\n\r\n")),
    ROW(HD, "name with '_' (valid)", 200, NULL, P1(PING "X_Under: 1\r\n\r\n")),
    ROW(HD, "missing Host (HTTP/1.1)", 400, "Host", P1("GET /ping HTTP/1.1\r\n\r\n")),
    ROW(HD, "missing Host on POST /invocations", 400, "Host",
        P1("POST /invocations HTTP/1.1\r\n" CSV "Content-Length: 36\r\n\r\n" ROW1)),
    ROW(HD, "two Host headers", 400, "Host", P1(PING "Host: canary\r\n\r\n")),
    ROW(HD, "two Host headers, same value", 400, "Host", P1(PING "Host: x\r\n\r\n")),
    ROW(HD, "two Host headers, other case", 400, "Host", P1(PING "host: x\r\n\r\n")),
    ROW(HD, "HTTP/1.0 without Host (valid)", 200, NULL, P1("GET /ping HTTP/1.0\r\n\r\n")),
    ROW(HD, "truncated head, half-close", CLOSED, NULL, .alt = {400},
        P1("GET /ping HTTP/1.1\r\nHo"), .flags = F_HALF),
    ROW(HD, "request line only, half-close", CLOSED, NULL, .alt = {400},
        P1("GET /ping HTTP/1.1\r\n"), .flags = F_HALF),
    /* Expect */
    ROW(HD, "Expect: 100-continue (valid)", 200, NULL,
        P2(INV "Expect: 100-continue\r\nContent-Length: 36\r\n\r\n", ROW1),
        .flags = F_WAIT100 | F_PRED),
    ROW(HD, "Expect: 100-continue, chunked (valid)", 200, NULL,
        P2(INV "Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n", CHUNKED_ROW1),
        .flags = F_WAIT100 | F_PRED),
    ROW(HD, "Expect: 100-continue + CL over MAX", 413, "6291457",
        P2(INV "Expect: 100-continue\r\nContent-Length: 6291457\r\n\r\n", ROW1),
        .flags = F_WAIT100 | F_NO100 | F_CLOSE),
    ROW(HD, "Expect: 100-continue + unsupported Content-Type", 415, "Content-Type",
        P2("POST /invocations HTTP/1.1\r\n" HOST "Content-Type: application/x-canary\r\n"
           "Expect: 100-continue\r\nContent-Length: 36\r\n\r\n",
           ROW1),
        .flags = F_WAIT100 | F_NO100 | F_CLOSE),
    ROW(HD, "Expect: 100-continue + unsupported Accept", 406, "Accept",
        P2(INV "Accept: image/png\r\nExpect: 100-continue\r\nContent-Length: 36\r\n\r\n", ROW1),
        .flags = F_WAIT100 | F_NO100 | F_CLOSE),
    ROW(HD, "Expect: 100-continue on POST /ping", 405, "/ping",
        P2("POST /ping HTTP/1.1\r\n" HOST CSV "Expect: 100-continue\r\nContent-Length: 36\r\n\r\n",
           ROW1),
        .flags = F_WAIT100 | F_NO100 | F_CLOSE),
    ROW(HD, "Expect: 100-continue on POST /nope", 404, "/nope",
        P2("POST /nope HTTP/1.1\r\n" HOST CSV "Expect: 100-continue\r\nContent-Length: 36\r\n\r\n",
           ROW1),
        .flags = F_WAIT100 | F_NO100 | F_CLOSE),
    ROW(HD, "Expect: 100-continue + TE gzip", 400, "Transfer-Encoding", .alt = {501},
        P2(INV "Expect: 100-continue\r\nTransfer-Encoding: gzip\r\n\r\n", ROW1),
        .flags = F_WAIT100 | F_NO100 | F_CLOSE),
    ROW(HD, "Expect: canary", 417, "Expect",
        P2(INV "Expect: canary\r\nContent-Length: 36\r\n\r\n", ROW1),
        .flags = F_WAIT100 | F_NO100 | F_CLOSE),
    ROW(HD, "Expect: '100-continue, canary'", 417, "Expect",
        P2(INV "Expect: 100-continue, canary\r\nContent-Length: 36\r\n\r\n", ROW1),
        .flags = F_WAIT100 | F_NO100 | F_CLOSE),
    ROW(HD, "Expect: 200-ok", 417, "Expect",
        P2(INV "Expect: 200-ok\r\nContent-Length: 36\r\n\r\n", ROW1),
        .flags = F_WAIT100 | F_NO100 | F_CLOSE),
    ROW(HD, "Expect: canary on GET /ping", 417, "Expect", P1(PING "Expect: canary\r\n\r\n"),
        .flags = F_NO100 | F_CLOSE),
    ROW(HD, "Expect: 100-Continue [RFC: case-insensitive]", 200, NULL, .alt = {417},
        P2(INV "Expect: 100-Continue\r\nContent-Length: 36\r\n\r\n", ROW1), .flags = F_WAIT100),
    ROW(HD, "Expect: 100-continue on HTTP/1.0, no 100 [RFC]", 200, NULL,
        P1("POST /invocations HTTP/1.0\r\n" CSV "Expect: 100-continue\r\nContent-Length: 36\r\n"
           "\r\n" ROW1),
        .flags = F_NO100 | F_PRED),

    /* =========================================================== request line */
    ROW(RL, "GET /ping (valid)", 200, NULL, P1(PING "\r\n")),
    ROW(RL, "HEAD /ping (valid)", 200, NULL, P1("HEAD /ping HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "GET /metrics (valid)", 200, NULL, P1("GET /metrics HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "GET /execution-parameters (valid)", 200, NULL,
        P1("GET /execution-parameters HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "HTTP/1.0 GET /ping (valid)", 200, NULL, P1("GET /ping HTTP/1.0\r\n" HOST "\r\n")),
    ROW(RL, "HTTP/1.0 keep-alive (valid)", 200, NULL,
        P1("GET /ping HTTP/1.0\r\n" HOST "Connection: keep-alive\r\n\r\n")),
    ROW(RL, "method 'get'", 400, "method", P1("get /ping HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "method 'Get'", 400, "method", P1("Get /ping HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "method 'FOO'", 400, "method", P1("FOO /ping HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "method 'CANARY' on /invocations", 400, "method",
        P1("CANARY /invocations HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "method of 1000 bytes", 400, "method", .gen = g_method1000),
    ROW(RL, "method with NUL", 400, "method|request|control",
        P1("G\0ET /ping HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "method with '('", 400, "method|request", P1("GE(T /ping HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "PUT /invocations", 405, "/invocations",
        P1("PUT /invocations HTTP/1.1\r\n" HOST "Content-Length: 0\r\n\r\n")),
    ROW(RL, "PATCH /invocations", 405, "/invocations",
        P1("PATCH /invocations HTTP/1.1\r\n" HOST "Content-Length: 0\r\n\r\n")),
    ROW(RL, "DELETE /invocations", 405, "/invocations",
        P1("DELETE /invocations HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "GET /invocations", 405, "/invocations",
        P1("GET /invocations HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "HEAD /invocations", 405, NULL, P1("HEAD /invocations HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "DELETE /ping", 405, "/ping", P1("DELETE /ping HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "OPTIONS /ping", 200, NULL, P1("OPTIONS /ping HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "TRACE /ping [RFC: a known method]", 405, "/ping|method", .alt = {400},
        P1("TRACE /ping HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "POST /ping, empty body", 405, "/ping",
        P1("POST /ping HTTP/1.1\r\n" HOST "Content-Length: 0\r\n\r\n")),
    ROW(RL, "POST /metrics", 405, "/metrics",
        P1("POST /metrics HTTP/1.1\r\n" HOST "Content-Length: 0\r\n\r\n")),
    ROW(RL, "POST /execution-parameters", 405, "/execution-parameters",
        P1("POST /execution-parameters HTTP/1.1\r\n" HOST "Content-Length: 0\r\n\r\n")),
    ROW(RL, "CONNECT authority-form [RFC]", 400, NULL, .alt = {405, CLOSED},
        P1("CONNECT canary:443 HTTP/1.1\r\nHost: canary:443\r\n\r\n")),
    ROW(RL, "version HTTP/2.0", 505, "version", P1("GET /ping HTTP/2.0\r\n" HOST "\r\n")),
    ROW(RL, "version HTTP/1.2", 505, "version", P1("GET /ping HTTP/1.2\r\n" HOST "\r\n")),
    ROW(RL, "version HTTP/0.9", 505, "version", P1("GET /ping HTTP/0.9\r\n" HOST "\r\n")),
    ROW(RL, "version HTTP/3.0", 505, "version", P1("GET /ping HTTP/3.0\r\n" HOST "\r\n")),
    ROW(RL, "version HTTP/9.9", 505, "version", P1("GET /ping HTTP/9.9\r\n" HOST "\r\n")),
    ROW(RL, "version HTTP/1.10", 400, "version|request", .alt = {505},
        P1("GET /ping HTTP/1.10\r\n" HOST "\r\n")),
    ROW(RL, "version HTTP/11.1", 400, "version|request", .alt = {505},
        P1("GET /ping HTTP/11.1\r\n" HOST "\r\n")),
    ROW(RL, "version lowercase http/1.1", 400, "version|request",
        P1("GET /ping http/1.1\r\n" HOST "\r\n")),
    ROW(RL, "version 'HTTP/1'", 400, "version|request", .alt = {505},
        P1("GET /ping HTTP/1\r\n" HOST "\r\n")),
    ROW(RL, "version 'HTTP/1.1x'", 400, "version|request", .alt = {505},
        P1("GET /ping HTTP/1.1x\r\n" HOST "\r\n")),
    ROW(RL, "version 'CANARY/1.1'", 400, "version|request",
        P1("GET /ping CANARY/1.1\r\n" HOST "\r\n")),
    ROW(RL, "no version (HTTP/0.9 form)", 400, "version|request", P1("GET /ping\r\n" HOST "\r\n")),
    ROW(RL, "three words and more", 400, "request",
        P1("GET /ping HTTP/1.1 canary\r\n" HOST "\r\n")),
    ROW(RL, "two spaces after the method", 400, "request",
        P1("GET  /ping HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "two spaces before the version", 400, "request",
        P1("GET /ping  HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "tab separator", 400, "request", P1("GET\t/ping HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "space in the path", 400, "request|path", P1("GET /pi ng HTTP/1.1\r\n" HOST "\r\n")),
    /* CivetWeb skips whitespace before the request line, out of smserve's sight. */
    ROW(RL, "leading space", 400, "request|method", .alt = {200},
        P1(" GET /ping HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "trailing space", 400, "request|version", P1("GET /ping HTTP/1.1 \r\n" HOST "\r\n")),
    ROW(RL, "empty line before the request line [RFC]", 200, NULL, .alt = {400},
        P1("\r\nGET /ping HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "TLS ClientHello", 400, NULL, .alt = {CLOSED},
        P1("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"
           "canary\r\n\r\n")),
    ROW(RL, "empty head", 400, "request", .alt = {CLOSED}, P1("\r\n\r\n\r\n\r\n")),
    ROW(RL, "request line 'GET'", 400, "request", P1("GET\r\n" HOST "\r\n")),
    ROW(RL, "NUL in the request line", 400, "request|control",
        P1("GET /ping\0canary HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "\\x01 in the path", 400, "request|control|path",
        P1("GET /pi\x01ng HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "DEL in the path", 400, "request|control|path",
        P1("GET /pi\x7fng HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "bare CR in the request line", 400, "request|control|CR",
        P1("GET /ping\rcanary HTTP/1.1\r\n" HOST "\r\n")),
    /* paths: matched byte for byte before '?' */
    ROW(RL, "/INVOCATIONS", 404, "/INVOCATIONS",
        P1("POST /INVOCATIONS HTTP/1.1\r\n" HOST "Content-Length: 0\r\n\r\n")),
    ROW(RL, "/Ping", 404, "/Ping", P1("GET /Ping HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "//invocations", 404, "//invocations",
        P1("POST //invocations HTTP/1.1\r\n" HOST "Content-Length: 0\r\n\r\n")),
    ROW(RL, "/invocations/", 404, "/invocations/",
        P1("POST /invocations/ HTTP/1.1\r\n" HOST "Content-Length: 0\r\n\r\n")),
    ROW(RL, "/invocations%00", 404, "/invocations%00",
        P1("POST /invocations%00 HTTP/1.1\r\n" HOST "Content-Length: 0\r\n\r\n")),
    ROW(RL, "/invocation%73", 404, "/invocation%73",
        P1("POST /invocation%73 HTTP/1.1\r\n" HOST "Content-Length: 0\r\n\r\n")),
    ROW(RL, "/ping%00.txt", 404, "/ping%00.txt", P1("GET /ping%00.txt HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "/./ping", 404, "/./ping", P1("GET /./ping HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "/../ping", 404, "/../ping", P1("GET /../ping HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "/canary/../ping", 404, "/canary/../ping",
        P1("GET /canary/../ping HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "/ping/.", 404, "/ping/.", P1("GET /ping/. HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "/ping/", 404, "/ping/", P1("GET /ping/ HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "/ping;canary", 404, "/ping;canary", P1("GET /ping;canary HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "/ping%20", 404, "/ping%20", P1("GET /ping%20 HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "/%2e/ping", 404, "/%2e/ping", P1("GET /%2e/ping HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "/%70ing", 404, "/%70ing", P1("GET /%70ing HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "/%2fping", 404, "/%2fping", P1("GET /%2fping HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "/ping%", 404, "/ping%", .alt = {400}, P1("GET /ping% HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "/ping%zz", 404, "/ping%zz", .alt = {400}, P1("GET /ping%zz HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "/ping\\", 404, "/ping\\", .alt = {400}, P1("GET /ping\\ HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "/ping#canary", 404, "/ping", .alt = {400},
        P1("GET /ping#canary HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "/canary\"quote", 404, "/canary\"quote", .alt = {400},
        P1("GET /canary\"quote HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "/canary with UTF-8", 404, "/canary", .alt = {400},
        P1("GET /canary\xc3\xa9 HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "/canary with byte 0xff", 404, "/canary", .alt = {400},
        P1("GET /canary\xff HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "/canary<script>", 404, "/canary", .alt = {400},
        P1("GET /canary<script>alert(1)</script> HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "/nope", 404, "/nope", P1("GET /nope HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "/", 404, "/", P1("GET / HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "/pingx", 404, "/pingx", P1("GET /pingx HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "path without a slash 'ping'", 400, "request|path", .alt = {404, CLOSED},
        P1("GET ping HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "path of 8000 bytes", 404, "/canaryaaaa", .gen = g_path8000),
    ROW(RL, "path of 17000 bytes", 431, NULL, .alt = {414}, .gen = g_path17000),
    ROW(RL, "/ping?x=1 (valid)", 200, NULL, P1("GET /ping?x=1 HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "/ping? (valid)", 200, NULL, P1("GET /ping? HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "/ping?%00 (valid)", 200, NULL, P1("GET /ping?%00 HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "/ping?/../../etc/passwd (valid)", 200, NULL,
        P1("GET /ping?/../../etc/passwd HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "/invocations?model=canary (valid)", 200, NULL,
        P1("POST /invocations?model=canary HTTP/1.1\r\n" HOST CSV
           "Content-Length: 36\r\n\r\n" ROW1),
        .flags = F_PRED),
    ROW(RL, "/nope?ping", 404, "/nope", P1("GET /nope?ping HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "GET *", CLOSED, NULL, P1("GET * HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "OPTIONS *", CLOSED, NULL, P1("OPTIONS * HTTP/1.1\r\n" HOST "\r\n")),
    ROW(RL, "absolute-form GET http://canary/ping", CLOSED, NULL,
        P1("GET http://canary/ping HTTP/1.1\r\nHost: canary\r\n\r\n")),
    ROW(RL, "absolute-form POST http://x/invocations", CLOSED, NULL,
        P1("POST http://x/invocations HTTP/1.1\r\n" HOST CSV "Content-Length: 36\r\n\r\n" ROW1)),
    ROW(RL, "absolute-form GET https://canary/ping", CLOSED, NULL,
        P1("GET https://canary/ping HTTP/1.1\r\nHost: canary\r\n\r\n")),

    /* =========================================================== content type */
    CT_ROW("text/csv (valid)", CSV, 200, NULL, .flags = F_PRED),
    CT_ROW("TEXT/CSV (valid)", "Content-Type: TEXT/CSV\r\n", 200, NULL, .flags = F_PRED),
    CT_ROW("text/csv; charset=utf-8 (valid)", "Content-Type: text/csv; charset=utf-8\r\n", 200,
           NULL, .flags = F_PRED),
    CT_ROW("text/csv; (valid)", "Content-Type: text/csv;\r\n", 200, NULL, .flags = F_PRED),
    CT_ROW("'  text/csv  ' (valid)", "Content-Type:   text/csv  \r\n", 200, NULL, .flags = F_PRED),
    CT_ROW("csv (valid, SageMaker)", "Content-Type: csv\r\n", 200, NULL, .flags = F_PRED),
    CT_ROW("no Content-Type", "", 415, "Content-Type"),
    CT_ROW("empty Content-Type", "Content-Type:\r\n", 415, "Content-Type"),
    CT_ROW("application/x-canary", "Content-Type: application/x-canary\r\n", 415,
           "application/x-canary"),
    CT_ROW("text/plain", "Content-Type: text/plain\r\n", 415, "text/plain"),
    CT_ROW("text/csvx", "Content-Type: text/csvx\r\n", 415, "text/csvx"),
    CT_ROW("text/csv-ish 'text/csv2'", "Content-Type: text/csv2\r\n", 415, "text/csv2"),
    CT_ROW("list 'text/csv, application/json'", "Content-Type: text/csv, application/json\r\n", 415,
           "Content-Type"),
    /* Types smserve reads, given a CSV body: the decoder says what is wrong. */
    CT_ROW("CSV sent as application/jsonlines", "Content-Type: application/jsonlines\r\n", 400,
           "line 1"),
    CT_ROW("CSV sent as application/x-recordio-protobuf",
           "Content-Type: application/x-recordio-protobuf\r\n", 400, "RecordIO"),
    CT_ROW("CSV sent as text/libsvm", "Content-Type: text/libsvm\r\n", 400, "index:value"),
    CT_ROW("multipart/form-data", "Content-Type: multipart/form-data; boundary=canary\r\n", 415,
           "multipart"),
    CT_ROW("Content-Type with a control byte", "Content-Type: text/csv\x01\r\n", 400,
           "control|header|Content-Type"),
    CT_ROW("two Content-Types [RFC]", CSV "Content-Type: application/json\r\n", 400, "Content-Type",
           .alt = {415}),
    ROW("content-type", "Content-Type of 8000 bytes", 415, "Content-Type", .gen = g_ct8000),
    CT_ROW("application/json with a CSV body", "Content-Type: application/json\r\n", 400,
           "JSON|byte|expected"),
    CT_ROW("Content-Encoding: gzip [RFC]", CSV "Content-Encoding: gzip\r\n", 415,
           "Content-Encoding", .alt = {400}),
    CT_ROW("Accept application/x-canary", CSV "Accept: application/x-canary\r\n", 406, "Accept"),
    CT_ROW("Accept image/png", CSV "Accept: image/png\r\n", 406, "image/png"),
    CT_ROW("Accept text/csv;q=0", CSV "Accept: text/csv;q=0\r\n", 406, "Accept"),
    CT_ROW("Accept with a control byte",
           CSV "Accept: text/\x02"
               "csv\r\n",
           400, "control|header|Accept"),
    CT_ROW("Accept */* (valid)", CSV "Accept: */*\r\n", 200, NULL, .flags = F_PRED),
    CT_ROW("Accept text/* (valid)", CSV "Accept: text/*\r\n", 200, NULL, .flags = F_PRED),
    CT_ROW("Accept application/json (valid)", CSV "Accept: application/json\r\n", 200, NULL),
    CT_ROW("Accept application/jsonlines (valid)", CSV "Accept: application/jsonlines\r\n", 200,
           NULL),
    CT_ROW("Accept 'text/csv;q=0, application/json' (valid)",
           CSV "Accept: text/csv;q=0, application/json\r\n", 200, NULL),
    {.cat = "content-type",
     .name = "application/json; charset=utf-8 (valid)",
     .status = 200,
     .autobody = B("{\"instances\": [[35.0, 72.5, 0.21, 5.0, 0.0, 8.5, 12.0, 1.0]]}"),
     .autohead =
         "POST /invocations HTTP/1.1\r\n" HOST "Content-Type: application/json; charset=utf-8\r\n",
     .flags = F_PRED},

    /* ================================================ SageMaker's headers */
    /* Custom attributes come back in the response head (SageMaker passes
     * them on only then), so only what SageMaker itself sends is taken:
     * at most 1,024 visible ASCII characters and spaces. The other
     * headers are recorded (data capture), never echoed. */
    ROW_SM("custom attributes (valid, echoed)",
           "X-Amzn-SageMaker-Custom-Attributes: trace=7f3a, user=42; a/b\r\n", 200, NULL,
           .flags = F_PRED, .echo = "trace=7f3a, user=42; a/b"),
    ROW(SM, "custom attributes of 1,024 characters (valid, echoed)", 200, NULL,
        .gen = g_attributes1024, .flags = F_PRED, .echo_len = len1024),
    ROW(SM, "custom attributes of 1,025 characters", 400, "Custom-Attributes", .must2 = "1025",
        .gen = g_attributes1025),
    ROW_SM("custom attributes with a byte over 0x7e",
           "X-Amzn-SageMaker-Custom-Attributes: canary=caf\xc3\xa9\r\n", 400, "Custom-Attributes",
           .must2 = "visible ASCII"),
    ROW_SM("custom attributes with DEL", "X-Amzn-SageMaker-Custom-Attributes: canary\x7f\r\n", 400,
           "control"),
    ROW_SM("custom attributes with a tab", "X-Amzn-SageMaker-Custom-Attributes: a\tcanary\r\n", 400,
           "control"),
    ROW_SM("custom attributes with a control byte",
           "X-Amzn-SageMaker-Custom-Attributes: canary\x01\r\n", 400,
           "control|header|Custom-Attributes"),
    ROW_SM("custom attributes empty (valid, not echoed)", "X-Amzn-SageMaker-Custom-Attributes:\r\n",
           200, NULL, .flags = F_PRED),
    ROW_SM("inference id (valid, not echoed)",
           "X-Amzn-SageMaker-Inference-Id: canary-\xc3\xa9-1\r\n", 200, NULL, .flags = F_PRED),
    ROW_SM("target model (valid, not echoed)", "X-Amzn-SageMaker-Target-Model: canary.tar.gz\r\n",
           200, NULL, .flags = F_PRED),

    /* ================================================================ numbers */
    /* Policy pending: decimal, nan, inf/infinity as Python's float(); the
     * rest a 400 naming row and column. 1e999 and friends are undecided. */
    NUM("hex 0x10", R3("0x10"), 400, "row 1", "column 3"),
    NUM("hex float 0x1p-2", R3("0x1p-2"), 400, "row 1", "column 3"),
    NUM("binary 0b101", R3("0b101"), 400, "row 1", "column 3"),
    NUM("'0x'", R3("0x"), 400, "row 1", "column 3"),
    NUM("'abc'", R3("abc"), 400, "row 1", "column 3"),
    NUM("'1.2.3'", R3("1.2.3"), 400, "row 1", "column 3"),
    NUM("'--1'", R3("--1"), 400, "row 1", "column 3"),
    NUM("'1e'", R3("1e"), 400, "row 1", "column 3"),
    NUM("'1e+'", R3("1e+"), 400, "row 1", "column 3"),
    NUM("'infinit'", R3("infinit"), 400, "row 1", "column 3"),
    NUM("'Infinityx'", R3("Infinityx"), 400, "row 1", "column 3"),
    NUM("'nanx'", R3("nanx"), 400, "row 1", "column 3"),
    NUM("'nan(123)'", R3("nan(123)"), 400, "row 1", "column 3"),
    NUM("NUL inside a number",
        R3("1\0"
           "2"),
        400, "row 1", "column 3"),
    NUM("garbage bytes", R3("\x80\xff"), 400, "row 1", "column 3"),
    NUM("garbage in row 2, column 8", ROW1 "35.0,72.5,0.21,5.0,0.0,8.5,12.0,canary\n", 400, "row 2",
        "column 8"),
    NUM("'1e999' (undecided)", R3("1e999"), 200, "row 1", "column 3", .alt = {400}),
    NUM("'-1e999' (undecided)", R3("-1e999"), 200, "row 1", "column 3", .alt = {400}),
    NUM("'1e5000000000000000000' (undecided)", R3("1e5000000000000000000"), 200, "row 1",
        "column 3", .alt = {400}),
    NUM("'1e-999' (underflows to 0)", R3("1e-999"), 200, "row 1", "column 3", .alt = {400}),
    NUM("'1_000' (Python accepts; undecided)", R3("1_000"), 200, "row 1", "column 3", .alt = {400}),
    NUM("'nan' (valid)", R3("nan"), 200, NULL, NULL),
    NUM("'NaN' (valid)", R3("NaN"), 200, NULL, NULL),
    NUM("'inf' (spec: valid; policy pending)", R3("inf"), 200, "row 1", "column 3", .alt = {400}),
    NUM("'+inf' (spec: valid; policy pending)", R3("+inf"), 200, "row 1", "column 3", .alt = {400}),
    NUM("'-Infinity' (spec: valid; policy pending)", R3("-Infinity"), 200, "row 1", "column 3",
        .alt = {400}),
    NUM("'infinity' (spec: valid; policy pending)", R3("infinity"), 200, "row 1", "column 3",
        .alt = {400}),
    NUM("'.5' and '5.' (valid)", "35.0,72.5,.5,5.,0.0,8.5,12.0,1.0\n", 200, NULL, NULL),
    NUM("' 0.21 ' padded (valid)", R3(" 0.21 "), 200, NULL, NULL, .flags = F_PRED),
    NUM("0.000...(400 zeros)1 (valid)",
        R3("0."
           "0000000000000000000000000000000000000000000000000000000000000000000000000000000000"
           "0000000000000000000000000000000000000000000000000000000000000000000000000000000000"
           "0000000000000000000000000000000000000000000000000000000000000000000000000000000000"
           "0000000000000000000000000000000000000000000000000000000000000000000000000000000000"
           "00000000000000000000000000000000000000000000000000000000000000000000000001"),
        200, NULL, NULL),
    NUM("9 columns", "35.0,72.5,0.21,5.0,0.0,8.5,12.0,1.0,9\n", 400, "row 1", "9"),
    NUM("7 columns", "35.0,72.5,0.21,5.0,0.0,8.5,12.0\n", 400, "row 1", "7"),
    NUM("1 column", "35.0\n", 400, "row 1", "8"),
    NUM("ragged: row 2 has 5", ROW1 "1,2,3,4,5\n", 400, "row 2", "5"),
    NUM("ragged: row 3 has 9", ROW1 ROW1 "1,2,3,4,5,6,7,8,9\n", 400, "row 3", "9"),
    NUM("ragged: row 2 has 8 but row 1 7", "1,2,3,4,5,6,7\n" ROW1, 400, "row 1", "7"),
    JNUM("JSON: 1e999 (undecided)", J3("1e999"), 200, "instance|row", NULL, .alt = {400}),
    JNUM("JSON: hex 0x10", J3("0x10"), 400, "byte|instance|row", NULL),
    JNUM("JSON: string \"1\"", J3("\"1\""), 400, "number", NULL),
    JNUM("JSON: true", J3("true"), 400, "number", NULL),
    JNUM("JSON: NaN token", J3("NaN"), 400, "byte|instance|row", NULL, .alt = {200}),
    JNUM("JSON: 7 values", "[[35.0, 72.5, 0.21, 5.0, 0.0, 8.5, 12.0]]", 400, "7", NULL),
    JNUM("JSON: ragged instances",
         "{\"instances\": [[35.0, 72.5, 0.21, 5.0, 0.0, 8.5, 12.0, 1.0], [1, 2]]}", 400, "2", NULL),

    /* ================================================================= timing */
    ROW(TM, "request line cut, stall", 408, NULL, .alt = {CLOSED}, P1("GET /pi"),
        .flags = F_TIMING | F_STALL, .within_ms = T_HEAD, .min_ms = T_HEAD * 3 / 4),
    ROW(TM, "head without its empty line, stall", 408, NULL, .alt = {CLOSED}, P1(PING "X-A: 1\r\n"),
        .flags = F_TIMING | F_STALL, .within_ms = T_HEAD, .min_ms = T_HEAD * 3 / 4),
    ROW(TM, "slowloris: head dripped one byte per 100 ms", 408, NULL, .alt = {CLOSED},
        P1(PING "X-Slow-1: aaaaaaaaaaaaaaaaaaaa\r\nX-Slow-2: aaaaaaaaaaaaaaaaaaaa\r\n\r\n"),
        .gap_ms = 100, .flags = F_TIMING | F_DRIP, .within_ms = T_HEAD, .min_ms = T_HEAD * 3 / 4),
    ROW(TM, "slowloris: a header line every 400 ms", 408, NULL, .alt = {CLOSED},
        .part = {B(PING), B("X-A: 1\r\n"), B("X-B: 2\r\n"), B("X-C: 3\r\n"), B("X-D: 4\r\n"),
                 B("\r\n")},
        .gap_ms = 400, .flags = F_TIMING, .within_ms = T_HEAD, .min_ms = T_HEAD * 3 / 4),
    ROW(TM, "connection that sends nothing", CLOSED, NULL, .part = {{NULL, 0}},
        .flags = F_TIMING | F_STALL, .within_ms = T_HEAD + 4000, .min_ms = T_HEAD * 3 / 4),
    ROW(TM, "body stalls after 7 of 36 bytes", 408, "7", .must2 = "byte",
        P1(INV "Content-Length: 36\r\n\r\n35.0,72"), .flags = F_TIMING | F_STALL | F_CLOSE,
        .within_ms = T_BODY, .min_ms = T_BODY * 3 / 4),
    ROW(TM, "body never sent (0 of 36)", 408, "0", .must2 = "byte",
        P1(INV "Content-Length: 36\r\n\r\n"), .flags = F_TIMING | F_STALL | F_CLOSE,
        .within_ms = T_BODY, .min_ms = T_BODY * 3 / 4),
    ROW(TM, "body dripped one byte per 150 ms", 408, NULL, .alt = {CLOSED},
        P1(INV "Content-Length: 36\r\n\r\n" ROW1), .gap_ms = 150, .flags = F_TIMING | F_DRIP,
        .within_ms = T_BODY, .min_ms = T_BODY * 3 / 4),
    ROW(TM, "1000000-byte body stalls after 100 bytes", 408, "100", .must2 = "byte",
        P1(INV "Content-Length: 1000000\r\n\r\n" BODY100), .flags = F_TIMING | F_STALL | F_CLOSE,
        .within_ms = T_BODY + 954, .min_ms = (T_BODY + 954) * 3 / 4),
    ROW(TM, "chunked body stalls inside a chunk", 408, NULL, P1(CHK "24\r\n35.0,72.5,"),
        .flags = F_TIMING | F_STALL | F_CLOSE, .within_ms = T_BODY, .min_ms = T_BODY * 3 / 4),
    ROW(TM, "chunked body stalls inside a size line", 408, NULL, P1(CHK "2"),
        .flags = F_TIMING | F_STALL | F_CLOSE, .within_ms = T_BODY, .min_ms = T_BODY * 3 / 4),
    ROW(TM, "chunked body stalls before the final CRLF", 408, NULL, .alt = {200},
        P1(CHK "24\r\n" ROW1 "\r\n0\r\n"), .flags = F_TIMING | F_STALL | F_CLOSE,
        .within_ms = T_BODY, .min_ms = T_BODY * 3 / 4),
    ROW(TM, "Expect: 100-continue, then no body", 408, NULL,
        P1(INV "Expect: 100-continue\r\nContent-Length: 36\r\n\r\n"),
        .flags = F_TIMING | F_STALL | F_CLOSE, .within_ms = T_BODY, .min_ms = T_BODY * 3 / 4),
    ROW(TM, "body 300 ms after the head (valid)", 200, NULL,
        P2(INV "Content-Length: 36\r\n\r\n", ROW1), .gap_ms = 300, .flags = F_TIMING | F_PRED),
    ROW(TM, "head in two pieces 300 ms apart (valid)", 200, NULL,
        P2("POST /invocations HTTP/1.1\r\n" HOST, CSV "Content-Length: 36\r\n\r\n" ROW1),
        .gap_ms = 300, .flags = F_TIMING | F_PRED),
    ROW(TM, "idle keep-alive connection is closed", 200, NULL, P1(PING "\r\n"),
        .flags = F_TIMING | F_IDLE, .within_ms = T_KEEP, .min_ms = T_KEEP * 3 / 4),
};

#define NCASES (sizeof CASES / sizeof CASES[0])

/* Sent while another connection holds the whole body budget (test_budget). */
static const hcase_t BUDGET_CASES[] = {
    ROW(SZ, "budget exhausted: a 36-byte body", 503, "SMSERVE_BODY_BUDGET_BYTES|budget", P1(GOOD),
        .flags = F_CLOSE),
    ROW(SZ, "budget exhausted: Expect: 100-continue", 503, "SMSERVE_BODY_BUDGET_BYTES|budget",
        P2(INV "Expect: 100-continue\r\nContent-Length: 36\r\n\r\n", ROW1),
        .flags = F_CLOSE | F_WAIT100 | F_NO100),
    ROW(SZ, "budget exhausted: chunked", 503, "SMSERVE_BODY_BUDGET_BYTES|budget",
        P1(CHK CHUNKED_ROW1), .flags = F_CLOSE),
    ROW(SZ, "budget exhausted: GET /ping still served", 200, NULL, P1(PING "\r\n")),
};
#define NBUDGET (sizeof BUDGET_CASES / sizeof BUDGET_CASES[0])

/* ------------------------------------------------------------- connections */

typedef tu_conn_t conn_t;

/* Waits for input until deadline: 1 got bytes, 0 end of stream, -1 timeout. */
static int conn_fill(conn_t *c, double deadline)
{
    if (c->eof)
        return 0;
    for (;;) {
        double left = deadline - tu_now_s();
        if (left <= 0)
            return -1;
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int pr = poll(&p, 1, (int)(left * 1000) + 1);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0)
            continue;
        if (c->len == c->cap) {
            c->cap *= 2;
            c->buf = realloc(c->buf, c->cap + 1);
        }
        ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
        if (r > 0) {
            c->len += (size_t)r;
            c->buf[c->len] = '\0';
            return 1;
        }
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r < 0)
            c->reset = 1;
        c->eof = 1;
        return 0;
    }
}

/* Whether input (or the end of the stream) is waiting. */
static int conn_readable(conn_t *c, int timeout_ms)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    return poll(&p, 1, timeout_ms) > 0;
}

/* Sends n bytes; stops early (returns 1) when the server starts answering or
 * closes, -1 when the send fails, else 0. */
static int conn_send(conn_t *c, const char *p, size_t n, double deadline)
{
    while (n) {
        struct pollfd pf = {.fd = c->fd, .events = POLLIN | POLLOUT};
        double left = deadline - tu_now_s();
        if (left <= 0)
            return -1;
        int pr = poll(&pf, 1, (int)(left * 1000) + 1);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;
        if (pf.revents & (POLLIN | POLLHUP | POLLERR))
            return 1;
        ssize_t w = send(c->fd, p, n > 262144 ? 262144 : n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Sleeps ms, or less when input arrives (returns 1 then). */
static int conn_pause(conn_t *c, int ms)
{
    return conn_readable(c, ms);
}

/* ------------------------------------------------------------- responses */

typedef struct resp {
    int status; /* or CLOSED / TIMEOUT / GARBLED */
    char line[300];
    char *head; /* header lines (after the status line), NUL-terminated */
    char *body;
    size_t body_len;
    long long content_length; /* -1: absent */
    int cl_count, conn_count, ct_count;
    int conn_close, conn_keep;
    int has_date, has_allow, has_retry_after;
    char retry_after[32];
    char ctype[128];
    char why[300]; /* for GARBLED */
} resp_t;

static void resp_free(resp_t *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}

static const char *find_crlf2(const char *p, size_t n)
{
    return memmem(p, n, "\r\n\r\n", 4);
}

/* Reads one response from c (consuming it). is_head: no body follows. */
static void read_response(conn_t *c, int is_head, double deadline, resp_t *r)
{
    memset(r, 0, sizeof *r);
    r->content_length = -1;
    const char *end;
    while (!(end = find_crlf2(c->buf + c->off, c->len - c->off))) {
        if (c->len - c->off > 65536) {
            r->status = GARBLED;
            snprintf(r->why, sizeof r->why, "a response head of over 64 KiB");
            return;
        }
        int f = conn_fill(c, deadline);
        if (f == 1)
            continue;
        if (c->len == c->off) {
            r->status = f == 0 ? CLOSED : TIMEOUT;
            return;
        }
        r->status = GARBLED;
        snprintf(r->why, sizeof r->why, "%s after %zu bytes of a response head: '%.80s'",
                 f == 0 ? "closed" : "timed out", c->len - c->off, c->buf + c->off);
        return;
    }
    const char *h = c->buf + c->off;
    size_t head_len = (size_t)(end - h);
    const char *eol = memmem(h, head_len + 2, "\r\n", 2);
    size_t ll = (size_t)(eol - h);
    snprintf(r->line, sizeof r->line, "%.*s", (int)(ll < 290 ? ll : 290), h);
    r->head = strndup(eol + 2, (size_t)(end + 2 - (eol + 2)));
    c->off += head_len + 4;

    /* "HTTP/1.1 ddd reason" */
    if (ll < 14 || memcmp(h, "HTTP/1.1 ", 9) != 0 || h[9] < '1' || h[9] > '5' || h[10] < '0' ||
        h[10] > '9' || h[11] < '0' || h[11] > '9' || h[12] != ' ') {
        r->status = GARBLED;
        snprintf(r->why, sizeof r->why, "bad status line '%.200s'", r->line);
        return;
    }
    r->status = (h[9] - '0') * 100 + (h[10] - '0') * 10 + (h[11] - '0');

    for (char *line = r->head; *line;) {
        char *next = strstr(line, "\r\n");
        if (!next)
            break;
        *next = '\0';
        const char *colon = strchr(line, ':');
        if (colon) {
            size_t nl = (size_t)(colon - line);
            const char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            if (nl == 14 && !strncasecmp(line, "Content-Length", 14)) {
                r->cl_count++;
                char *e;
                r->content_length = strtoll(v, &e, 10);
                if (e == v || *e)
                    r->content_length = -2;
            } else if (nl == 10 && !strncasecmp(line, "Connection", 10)) {
                r->conn_count++;
                if (strcasestr(v, "close"))
                    r->conn_close = 1;
                if (strcasestr(v, "keep-alive"))
                    r->conn_keep = 1;
            } else if (nl == 12 && !strncasecmp(line, "Content-Type", 12)) {
                r->ct_count++;
                snprintf(r->ctype, sizeof r->ctype, "%s", v);
            } else if (nl == 4 && !strncasecmp(line, "Date", 4)) {
                r->has_date = 1;
            } else if (nl == 5 && !strncasecmp(line, "Allow", 5)) {
                r->has_allow = 1;
            } else if (nl == 11 && !strncasecmp(line, "Retry-After", 11)) {
                r->has_retry_after = 1;
                snprintf(r->retry_after, sizeof r->retry_after, "%s", v);
            }
        }
        *next = '\r';
        line = next + 2;
    }

    if (r->status < 200 || is_head || r->status == 204 || r->status == 304)
        return;
    size_t want;
    if (r->content_length >= 0) {
        want = (size_t)r->content_length;
        while (c->len - c->off < want) {
            if (conn_fill(c, deadline) != 1)
                break;
        }
    } else {
        /* no usable Content-Length: up to the end of the stream */
        while (conn_fill(c, deadline) == 1)
            ;
        want = c->len - c->off;
    }
    size_t have = c->len - c->off;
    r->body_len = have < want ? have : want;
    r->body = malloc(r->body_len + 1);
    memcpy(r->body, c->buf + c->off, r->body_len);
    r->body[r->body_len] = '\0';
    c->off += r->body_len;
}

/* ---------------------------------------------------------------- checks */

static const struct {
    int code;
    const char *reason[3];
} REASONS[] = {
    {100, {"Continue"}},
    {200, {"OK"}},
    {204, {"No Content"}},
    {400, {"Bad Request"}},
    {404, {"Not Found"}},
    {405, {"Method Not Allowed"}},
    {406, {"Not Acceptable"}},
    {408, {"Request Timeout", "Request Time-out"}},
    {411, {"Length Required"}},
    {413, {"Payload Too Large", "Content Too Large", "Request Entity Too Large"}},
    {414, {"URI Too Long", "Request-URI Too Long", "Request-URI Too Large"}},
    {415, {"Unsupported Media Type"}},
    {417, {"Expectation Failed"}},
    {431, {"Request Header Fields Too Large"}},
    {500, {"Internal Server Error"}},
    {501, {"Not Implemented"}},
    {503, {"Service Unavailable", "Service Temporarily Unavailable"}},
    {505, {"HTTP Version Not Supported"}},
};

static int reason_ok(int code, const char *reason)
{
    for (size_t i = 0; i < sizeof REASONS / sizeof REASONS[0]; i++)
        if (REASONS[i].code == code)
            for (int k = 0; k < 3 && REASONS[i].reason[k]; k++)
                if (!strcasecmp(reason, REASONS[i].reason[k]))
                    return 1;
    return 0;
}

/* A growing "; "-joined list of a row's mismatches. */
typedef struct why {
    char text[2048];
    size_t len;
} why_t;

static void __attribute__((format(printf, 2, 3))) whyf(why_t *w, const char *fmt, ...)
{
    if (w->len >= sizeof w->text - 1)
        return;
    if (w->len) {
        int n = snprintf(w->text + w->len, sizeof w->text - w->len, "; ");
        w->len += (size_t)n;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(w->text + w->len, sizeof w->text - w->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        w->len += (size_t)n;
    if (w->len >= sizeof w->text)
        w->len = sizeof w->text - 1;
}

static const char *outcome_name(int st, char *buf, size_t n)
{
    if (st == CLOSED)
        return "closed without a response";
    if (st == TIMEOUT)
        return "no response (timed out)";
    if (st == GARBLED)
        return "a garbled response";
    if (st == 0)
        return "nothing";
    snprintf(buf, n, "%d", st);
    return buf;
}

/* Whether msg contains one of the '|'-separated alternatives of want. */
static int msg_has(const char *msg, const char *want)
{
    char alt[256];
    for (const char *p = want;;) {
        size_t l = strcspn(p, "|");
        snprintf(alt, sizeof alt, "%.*s", (int)l, p);
        if (strcasestr(msg, alt))
            return 1;
        if (!p[l])
            return 0;
        p += l + 1;
    }
}

/* The printable rendering of up to 60 bytes, for messages. */
static void printable(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f)
            out[o++] = (char)ch;
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", ch);
    }
    out[o] = '\0';
}

static float sample_pred1; /* models/sample.expected line 1, as float32 */

/* Checks a final response's invariants and the row's expectations. */
static void check_response(const hcase_t *hc, const resp_t *r, int is_head, why_t *w)
{
    char b1[32], b2[32];
    int st = r->status;
    int ok = st == hc->status;
    for (int k = 0; k < 3 && hc->alt[k]; k++)
        ok |= st == hc->alt[k];
    if (!ok) {
        char alts[64] = "";
        size_t n = 0;
        for (int k = 0; k < 3 && hc->alt[k]; k++)
            n += (size_t)snprintf(alts + n, sizeof alts - n, " or %s",
                                  outcome_name(hc->alt[k], b2, sizeof b2));
        whyf(w, "got %s, want %s%s", outcome_name(st, b1, sizeof b1),
             outcome_name(hc->status, b2, sizeof b2), alts);
        if (st >= 100 && r->body && r->body_len)
            whyf(w, "body %.200s", r->body);
    }
    if (st == GARBLED)
        whyf(w, "%s", r->why);
    if (st < 100 || st > 599)
        return;

    /* status line and headers */
    const char *reason = r->line + 13;
    if (!reason_ok(st, reason))
        whyf(w, "status line '%s': reason is not the standard one", r->line);
    for (const char *p = r->head; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if ((ch < 0x20 && ch != '\r' && ch != '\n' && ch != '\t') || ch >= 0x7f) {
            whyf(w, "response header byte 0x%02x", ch);
            break;
        }
    }
    if (strcasestr(r->line, "canary") || strcasestr(r->head, "canary"))
        whyf(w, "request bytes ('canary') copied into the response head");
    if (r->cl_count > 1 || r->conn_count > 1 || r->ct_count > 1)
        whyf(w, "duplicate response headers (Content-Length %d, Connection %d, Content-Type %d)",
             r->cl_count, r->conn_count, r->ct_count);

    if (st >= 400) {
        if (strncasecmp(r->ctype, "application/json", 16) != 0)
            whyf(w, "error Content-Type '%s'", r->ctype);
        if (!r->has_date)
            whyf(w, "no Date header");
        if (!r->conn_count)
            whyf(w, "no Connection header");
        if (st == 405 && !r->has_allow)
            whyf(w, "405 without Allow");
        if (st == 503 && strcmp(r->retry_after, "1") != 0)
            whyf(w, "503 with Retry-After '%s', want 1", r->retry_after);
    }
    if (!is_head && st >= 200 && st != 204 && st != 304) {
        if (r->content_length < 0)
            whyf(w, "no valid Content-Length");
        else if ((size_t)r->content_length != r->body_len)
            whyf(w, "Content-Length %lld but %zu body bytes before the end", r->content_length,
                 r->body_len);
    }
    if (st >= 400 && !is_head) {
        json_error_t jerr;
        json_t *doc = json_loadb(r->body ? r->body : "", r->body_len, 0, &jerr);
        json_t *e = json_is_object(doc) ? json_object_get(doc, "error") : NULL;
        json_t *code = json_is_object(doc) ? json_object_get(doc, "code") : NULL;
        if (!json_is_object(doc)) {
            char shown[200];
            printable(r->body ? r->body : "", r->body_len < 60 ? r->body_len : 60, shown,
                      sizeof shown);
            whyf(w, "error body is not a JSON object: '%s'", shown);
        } else {
            if (!json_is_string(e) || json_string_length(e) == 0)
                whyf(w, "no \"error\" string");
            if (!json_is_integer(code) || json_integer_value(code) != st)
                whyf(w, "\"code\" is not %d", st);
            if (json_is_string(e) && (st == hc->status || hc->status < 400)) {
                const char *msg = json_string_value(e);
                if (hc->must && !msg_has(msg, hc->must))
                    whyf(w, "message lacks '%s': \"%.200s\"", hc->must, msg);
                if (hc->must2 && !msg_has(msg, hc->must2))
                    whyf(w, "message lacks '%s': \"%.200s\"", hc->must2, msg);
            }
        }
        json_decref(doc);
    }
    const char *echo = strcasestr(r->head, "\nX-Amzn-SageMaker-Custom-Attributes:");
    if (st == 200 && (hc->echo || hc->echo_len)) {
        size_t want_len = hc->echo_len ? hc->echo_len() : strlen(hc->echo);
        const char *v = echo ? echo + 36 : NULL;
        while (v && *v == ' ')
            v++;
        size_t n = v ? strcspn(v, "\r") : 0;
        int same = v && n == want_len;
        for (size_t i = 0; same && i < n; i++)
            same = v[i] == (hc->echo_len ? 'a' : hc->echo[i]);
        if (!same)
            whyf(w, "custom attributes not echoed as sent: '%.80s'", v ? v : "(no header)");
    } else if (echo) {
        whyf(w, "X-Amzn-SageMaker-Custom-Attributes in the response, none expected");
    }
    if (st == 200 && (hc->flags & F_PRED) && !is_head) {
        char *end = NULL;
        float got = r->body ? strtof(r->body, &end) : NAN;
        if (!r->body || end == r->body || strcmp(end, "\n") != 0 || got != sample_pred1)
            whyf(w, "prediction '%.100s', want row 1's %.9g", r->body ? r->body : "",
                 (double)sample_pred1);
    }
}

/* Whether the server is expected to close after this status. */
static int closing_status(int st)
{
    return st == 400 || st == 408 || st == 413 || st == 417 || st == 431 || st == 503;
}

/* ------------------------------------------------------------- one row */

typedef struct result {
    int done, pass;
    char outcome[64];
    char why[2048];
    double secs;
} result_t;

static double slow(void)
{
    return tu_slow_factor();
}

static void run_case(const hcase_t *hc, int port, result_t *res)
{
    why_t w = {0};
    char *gen = NULL;
    size_t gen_len = 0;
    bytes_t parts[6];
    memcpy(parts, hc->part, sizeof parts);
    if (hc->gen) {
        gen = hc->gen(&gen_len);
        parts[0].s = gen;
        parts[0].n = gen_len;
    } else if (hc->autobody.s) {
        const char *ah = hc->autohead ? hc->autohead : INV;
        size_t hl = strlen(ah);
        gen = malloc(hl + 64 + hc->autobody.n);
        gen_len = (size_t)sprintf(gen, "%sContent-Length: %zu\r\n\r\n", ah, hc->autobody.n);
        memcpy(gen + gen_len, hc->autobody.s, hc->autobody.n);
        gen_len += hc->autobody.n;
        parts[0].s = gen;
        parts[0].n = gen_len;
    }
    int is_head = parts[0].s && parts[0].n > 5 && !memcmp(parts[0].s, "HEAD ", 5);
    int timing = (hc->flags & F_TIMING) != 0;
    double slack = 1.5 * slow();
    double send_deadline_s = 60 * slow();

    conn_t c;
    double t0 = tu_now_s();
    if (tu_conn_open(&c, port) < 0) {
        whyf(&w, "cannot connect (server dead?)");
        goto out;
    }
    int early = 0, saw100 = 0;
    resp_t r = {0};
    int have_final = 0;
    for (int i = 0; i < 6 && parts[i].s && !early; i++) {
        if (i == 1 && (hc->flags & F_WAIT100)) {
            /* the interim answer (or a final one) before the body */
            read_response(&c, is_head, tu_now_s() + 5 * slow(), &r);
            if (r.status == 100) {
                saw100 = 1;
                if (strcmp(r.line, "HTTP/1.1 100 Continue") != 0 || r.head[0] != '\0')
                    whyf(&w, "interim response is not exactly 'HTTP/1.1 100 Continue\\r\\n\\r\\n'");
                resp_free(&r);
            } else if (r.status == TIMEOUT) {
                /* no 100 within 5 s: send the body anyway, as clients do */
                resp_free(&r);
            } else {
                have_final = 1;
                break;
            }
        } else if (i > 0 && hc->gap_ms && conn_pause(&c, hc->gap_ms)) {
            early = 1;
            break;
        }
        if ((hc->flags & F_DRIP) && i == 0) {
            for (size_t k = 0; k < parts[i].n && !early; k++) {
                if (k && conn_pause(&c, hc->gap_ms)) {
                    early = 1;
                    break;
                }
                if (conn_send(&c, parts[i].s + k, 1, tu_now_s() + send_deadline_s) != 0)
                    early = 1;
            }
        } else if (parts[i].n &&
                   conn_send(&c, parts[i].s, parts[i].n, tu_now_s() + send_deadline_s) != 0) {
            early = 1;
        }
    }
    if (!have_final && (hc->flags & F_HALF))
        shutdown(c.fd, SHUT_WR);
    double t_sent = tu_now_s();

    /* the final response, after any interim ones */
    double due;
    if (timing)
        due = t0 + ((hc->flags & F_IDLE) ? 5.0 : hc->within_ms / 1000.0) + slack;
    else if (hc->status == CLOSED)
        due = t_sent + 1.0 * slow();
    else
        due = t_sent + (hc->within_ms ? hc->within_ms / 1000.0 : 5.0) * slow();
    if (timing && due < t_sent + slack)
        due = t_sent + slack; /* slow pieces still get their slack after the last one */
    while (!have_final) {
        read_response(&c, is_head, due, &r);
        if (r.status >= 100 && r.status < 200) {
            if (r.status == 100)
                saw100 = 1;
            else
                whyf(&w, "unexpected interim %d", r.status);
            resp_free(&r);
            continue;
        }
        have_final = 1;
    }
    double t_answer = tu_now_s();
    {
        char b[32];
        snprintf(res->outcome, sizeof res->outcome, "%s%s%s", outcome_name(r.status, b, sizeof b),
                 r.status >= 100 && r.status <= 599 ? (r.conn_close ? ", close" : ", keep-alive")
                                                    : "",
                 saw100 ? ", after 100" : "");
    }
    if (saw100 && (hc->flags & F_NO100))
        whyf(&w, "sent an interim 100 Continue");
    if ((hc->flags & F_WAIT100) && !(hc->flags & F_NO100) && r.status == 200 && !saw100)
        whyf(&w, "no interim 100 Continue before the 200");
    if (r.status == TIMEOUT)
        whyf(&w, "nothing within %.1f s of the last byte sent", due - t_sent);
    check_response(hc, &r, is_head, &w);
    int idle = (hc->flags & F_IDLE) != 0;
    if (timing && !idle && r.status != TIMEOUT && t_answer - t0 > hc->within_ms / 1000.0 + slack)
        whyf(&w, "answered after %.0f ms, the timeout is %d ms", (t_answer - t0) * 1000,
             hc->within_ms);
    if (timing && !idle && hc->min_ms && r.status != TIMEOUT && t_answer - t0 < hc->min_ms / 1000.0)
        whyf(&w, "answered after %.0f ms, before the %d ms timeout could expire",
             (t_answer - t0) * 1000, hc->min_ms);

    /* connection handling after the answer */
    if (r.status >= 100 && r.status <= 599) {
        int must_close = (hc->flags & F_CLOSE) || closing_status(r.status);
        if (must_close && !r.conn_close)
            whyf(&w, "%d without Connection: close", r.status);
        if (r.conn_close || must_close) {
            /* nothing more may come, and the server must close */
            int f;
            double until = tu_now_s() + 2.0 * slow();
            while ((f = conn_fill(&c, until)) == 1)
                ;
            if (c.len > c.off) {
                char shown[200];
                printable(c.buf + c.off, c.len - c.off < 60 ? c.len - c.off : 60, shown,
                          sizeof shown);
                whyf(&w, "%zu bytes after the response: '%s'", c.len - c.off, shown);
            }
            if (f == -1)
                whyf(&w, "connection still open %.1f s after a closing response", 2.0 * slow());
        } else if (hc->flags & F_IDLE) {
            double t_idle = tu_now_s();
            int f;
            while ((f = conn_fill(&c, t_idle + hc->within_ms / 1000.0 + slack)) == 1)
                ;
            double idle_s = tu_now_s() - t_idle;
            if (f == -1)
                whyf(&w, "idle keep-alive connection still open after %.1f s", idle_s);
            else if (idle_s < hc->min_ms / 1000.0)
                whyf(&w, "idle keep-alive connection closed after %.0f ms, before %d ms",
                     idle_s * 1000, hc->min_ms);
            else if (c.len > c.off)
                whyf(&w, "bytes on an idle connection");
        } else if (!(hc->flags & F_HALF)) {
            /* keep-alive: the connection must serve a /ping next */
            const char *ping = "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n";
            resp_t r2;
            if (conn_send(&c, ping, strlen(ping), tu_now_s() + 5 * slow()) < 0) {
                whyf(&w, "keep-alive answer, but a follow-up /ping could not be sent");
            } else {
                read_response(&c, 0, tu_now_s() + 5 * slow(), &r2);
                if (r2.status != 200) {
                    char b[32];
                    whyf(&w, "keep-alive answer, but a follow-up /ping on it got %s%s%.100s",
                         outcome_name(r2.status, b, sizeof b), r2.line[0] ? ": " : "",
                         r2.line[0] ? r2.line : (r2.status == GARBLED ? r2.why : ""));
                }
                resp_free(&r2);
            }
        }
    }
    resp_free(&r);
    tu_conn_close(&c);
out:
    free(gen);
    res->secs = tu_now_s() - t0;
    res->pass = w.len == 0;
    snprintf(res->why, sizeof res->why, "%s", w.text);
    res->done = 1;
}

/* ------------------------------------------------------------ the runner */

typedef struct pool {
    const size_t *idx;
    size_t n;
    atomic_size_t next;
    int port;
    result_t *res;
} pool_t;

static void *pool_worker(void *arg)
{
    pool_t *p = arg;
    for (;;) {
        size_t k = atomic_fetch_add(&p->next, 1);
        if (k >= p->n)
            return NULL;
        run_case(&CASES[p->idx[k]], p->port, &p->res[p->idx[k]]);
    }
}

static void run_pool(const size_t *idx, size_t n, int port, int threads, result_t *res)
{
    pool_t p = {.idx = idx, .n = n, .port = port, .res = res};
    atomic_init(&p.next, 0);
    pthread_t th[32];
    if (threads > 32)
        threads = 32;
    for (int t = 0; t < threads; t++)
        pthread_create(&th[t], NULL, pool_worker, &p);
    for (int t = 0; t < threads; t++)
        pthread_join(th[t], NULL);
}

/* How much of a server's log a failure prints. */
#define LOG_TAIL 3000

static void load_sample(void)
{
    char *csv_path = tu_path(SMS_SOURCE_DIR "/models", "sample.csv");
    char *exp_path = tu_path(SMS_SOURCE_DIR "/models", "sample.expected");
    char *csv = tu_read_file(csv_path, NULL), *exp = tu_read_file(exp_path, NULL);
    assert_non_null(csv);
    assert_non_null(exp);
    /* the table's ROW1 is the first sample row */
    assert_true(strncmp(csv, ROW1, 36) == 0);
    sample_pred1 = strtof(exp, NULL);
    free(csv);
    free(exp);
    free(csv_path);
    free(exp_path);
}

/* Starts smserve on models/sample with extra env; 0, or -1 (a failed CHECK). */
static int start_sample_server(tu_server_t *s, const char *const *env)
{
    load_sample();
    char *dir = tu_path(SMS_SOURCE_DIR, "models/sample");
    int rc = tu_server_begin(s, dir, env, LOG_TAIL);
    free(dir);
    return rc;
}

/* /ping 200, and sample row 1's exact (float32) prediction. */
static void check_still_serving(const tu_server_t *s, const char *what)
{
    tu_response_t r;
    if (tu_http(s->port, "GET", "/ping", NULL, NULL, 0, &r) == 0) {
        CHECK(r.status == 200, "%s: GET /ping after the catalogue: %d", what, r.status);
        tu_response_free(&r);
    } else {
        CHECK(0, "%s: GET /ping after the catalogue: no response", what);
    }
    if (tu_http(s->port, "POST", "/invocations", "Content-Type: text/csv", ROW1, 36, &r) == 0) {
        char *end = NULL;
        float got = strtof(r.body, &end);
        CHECK(r.status == 200 && end != r.body && strcmp(end, "\n") == 0 && got == sample_pred1,
              "%s: sample row 1 after the catalogue: status %d body '%.200s', want %.9g", what,
              r.status, r.body, (double)sample_pred1);
        tu_response_free(&r);
    } else {
        CHECK(0, "%s: sample row 1 after the catalogue: no response", what);
    }
}

/* After a server's cases: it still serves, and stops cleanly. */
static void finish_server(tu_server_t *s, const char *what)
{
    if (tu_server_alive(s))
        check_still_serving(s, what);
    tu_server_finish(s, what, LOG_TAIL);
}

static result_t results[NCASES];

static void report(int timing)
{
    const char *cats[16];
    size_t ncat = 0;
    for (size_t i = 0; i < NCASES; i++) {
        if (!!(CASES[i].flags & F_TIMING) != timing)
            continue;
        size_t k = 0;
        while (k < ncat && strcmp(cats[k], CASES[i].cat))
            k++;
        if (k == ncat && ncat < 16)
            cats[ncat++] = CASES[i].cat;
    }
    size_t total = 0, failed = 0;
    const char *v = getenv("HOSTILE_VERBOSE");
    int verbose = v && *v && strcmp(v, "0");
    for (size_t k = 0; k < ncat; k++) {
        size_t n = 0, bad = 0;
        for (size_t i = 0; i < NCASES; i++) {
            if (strcmp(CASES[i].cat, cats[k]) || !!(CASES[i].flags & F_TIMING) != timing)
                continue;
            n++;
            if (verbose)
                fprintf(stderr, "%s [%s] %s: %s (%.0f ms)\n", results[i].pass ? "ok  " : "FAIL",
                        cats[k], CASES[i].name, results[i].outcome, results[i].secs * 1000);
            if (!results[i].pass) {
                bad++;
                fprintf(stderr, "FAIL [%s] %s: %s\n", cats[k], CASES[i].name,
                        results[i].done ? results[i].why : "not run");
            }
        }
        total += n;
        failed += bad;
        fprintf(stderr, "summary [%s]: %zu cases, %zu pass, %zu fail\n", cats[k], n, n - bad, bad);
    }
    fprintf(stderr, "summary (%s): %zu cases, %zu pass, %zu fail\n",
            timing ? "timing server" : "main server", total, total - failed, failed);
    CHECK(failed == 0, "%zu of %zu hostile requests did not get the answer the spec asks for",
          failed, total);
}

/* Runs the catalogue's main rows (timing 0, over 6 connections) or its
 * timing rows (timing 1, all at once) on a server started with env. */
static void run_catalogue(const char *const *env, int timing)
{
    tu_checks_begin();
    tu_server_t s;
    if (start_sample_server(&s, env) == 0) {
        size_t idx[NCASES], n = 0;
        for (size_t i = 0; i < NCASES; i++)
            if (!!(CASES[i].flags & F_TIMING) == timing)
                idx[n++] = i;
        double t0 = tu_now_s();
        run_pool(idx, n, s.port, timing ? (int)n : 6, results);
        fprintf(stderr, "%s catalogue: %zu cases in %.1f s\n", timing ? "timing" : "main", n,
                tu_now_s() - t0);
        report(timing);
        finish_server(&s, timing ? "timing server" : "main server");
    }
    tu_checks_end();
}

static void test_catalogue(void **state)
{
    (void)state;
    run_catalogue(NULL, 0);
}

#define STR_(x) #x
#define STR(x)  STR_(x)

static void test_timing(void **state)
{
    (void)state;
    const char *env[] = {"SMSERVE_HEADER_TIMEOUT_MS=" STR(T_HEAD),
                         "SMSERVE_BODY_TIMEOUT_MS=" STR(T_BODY),
                         "SMSERVE_KEEPALIVE_TIMEOUT_MS=" STR(T_KEEP), NULL};
    run_catalogue(env, 1);
}

/* One connection holds the whole body budget (all but the last byte of a
 * body of BUDGET bytes sent); meanwhile bodies are refused with 503 and
 * Retry-After: 1, /ping still answers; the held request then completes and
 * the budget comes back. */
static void test_budget(void **state)
{
    (void)state;
    tu_checks_begin();
    const char *env[] = {"MAX_CONTENT_LENGTH=" STR(BUDGET),
                         "SMSERVE_BODY_BUDGET_BYTES=" STR(BUDGET), NULL};
    tu_server_t s;
    if (start_sample_server(&s, env) != 0) {
        tu_checks_end();
        return;
    }
    size_t len = 0;
    char *req = body_of(&len, BUDGET);
    conn_t a;
    int held =
        tu_conn_open(&a, s.port) == 0 && conn_send(&a, req, len - 1, tu_now_s() + 30 * slow()) == 0;
    CHECK(held, "could not send the budget-holding body");
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 300 * 1000000L};
    nanosleep(&ts, NULL); /* the server has read it */
    size_t failed = 0;
    for (size_t i = 0; held && i < NBUDGET; i++) {
        result_t res = {0};
        run_case(&BUDGET_CASES[i], s.port, &res);
        if (!res.pass) {
            failed++;
            fprintf(stderr, "FAIL [%s] %s: %s\n", BUDGET_CASES[i].cat, BUDGET_CASES[i].name,
                    res.why);
        }
    }
    if (held) {
        resp_t r;
        conn_send(&a, req + len - 1, 1, tu_now_s() + 5 * slow());
        read_response(&a, 0, tu_now_s() + 30 * slow(), &r);
        char b[32];
        CHECK(r.status == 200, "the budget-holding request of %d bytes got %s, want 200", BUDGET,
              outcome_name(r.status, b, sizeof b));
        resp_free(&r);
    }
    tu_conn_close(&a);
    free(req);
    fprintf(stderr, "summary (budget server): %zu cases, %zu pass, %zu fail\n", NBUDGET,
            NBUDGET - failed, failed);
    CHECK(failed == 0, "%zu of %zu requests over the body budget were not answered per the spec",
          failed, NBUDGET);
    finish_server(&s, "budget server");
    tu_checks_end();
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    /* the catalogue's size per category, for the record */
    const char *cats[16];
    size_t counts[16], ncat = 0;
    for (size_t i = 0; i < NCASES; i++) {
        size_t k = 0;
        while (k < ncat && strcmp(cats[k], CASES[i].cat))
            k++;
        if (k == ncat) {
            cats[ncat] = CASES[i].cat;
            counts[ncat++] = 0;
        }
        counts[k]++;
    }
    fprintf(stderr, "hostile catalogue: %zu cases (+%zu on the budget server):", NCASES, NBUDGET);
    for (size_t k = 0; k < ncat; k++)
        fprintf(stderr, " %s %zu%s", cats[k], counts[k], k + 1 < ncat ? "," : "\n");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalogue),
        cmocka_unit_test(test_timing),
        cmocka_unit_test(test_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
