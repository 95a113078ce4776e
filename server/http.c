/* The HTTP front: CivetWeb, one thread per connection, wrapped so that what
 * reaches a handler is a request smserve has checked, and what leaves is a
 * response smserve wrote.
 *
 * - Every request goes through begin_request: the head is validated (header
 *   count, line endings, names, Host, Content-Length, Transfer-Encoding,
 *   Expect) and the target is matched byte for byte (decode_url is off, so
 *   CivetWeb leaves the path as sent), then routed here; CivetWeb's handler
 *   table is not used.
 * - Errors CivetWeb finds before that (a malformed, over-long or stalled
 *   head, an unknown version) reach http_error, which answers with the same
 *   JSON body and a fixed status line: no request byte is ever copied into
 *   the status line or a header.
 * - Deadlines: the head within SMSERVE_HEADER_TIMEOUT_MS (CivetWeb's
 *   request_timeout_ms, counted from the start of the request; it is also
 *   the longest a single read or write may block), an idle keep-alive
 *   connection SMSERVE_KEEPALIVE_TIMEOUT_MS, a body within
 *   SMSERVE_BODY_TIMEOUT_MS plus its length at SMSERVE_BODY_MIN_RATE. The
 *   listener defers accepting until a connection has sent something
 *   (TCP_DEFER_ACCEPT), so silent sockets do not take a thread.
 * - Bodies in flight share one byte budget; over it a request gets 503 with
 *   Retry-After before its body is read. Buffers over SMALL_BUFFER bytes
 *   are freed after each request, and malloc returns them to the system.
 * - SIGTERM (sms_http_stop): the listening socket closes at once, requests
 *   already received are answered with Connection: close, then CivetWeb
 *   stops. Metrics and capture count only responses written completely.
 * Decoding, prediction and encoding happen in their modules on per-thread
 * buffers. */
#define _GNU_SOURCE
#include "smserve/http.h"

#include <civetweb.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <jansson.h>
#include <malloc.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <netinet/tcp.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "smserve/buf.h"
#include "smserve/capture.h"
#include "smserve/csv.h"
#include "smserve/encode.h"
#include "smserve/jsonlines.h"
#include "smserve/jsonreq.h"
#include "smserve/libsvm.h"
#include "smserve/mediatype.h"
#include "smserve/recordio.h"
#include "smserve/log.h"
#include "smserve/metrics.h"

/* The request head's size limit (request line and headers), and CivetWeb's
 * buffer for it: the slack lets begin_request look two bytes past the last
 * header it was given (see head_is_complete) without leaving the buffer. */
#define HEAD_LIMIT  16384
#define HEAD_BUFFER (HEAD_LIMIT + 4096)
/* Per-thread buffers up to this size stay for the next request. */
#define SMALL_BUFFER  (64 * 1024)
#define MAX_LISTENERS 4

struct sms_http {
    struct mg_context *ctx;
    sms_config_t cfg;
    _Atomic(sms_model_t *) model;
    sms_registry_t *registry; /* multi-model endpoints: the models by name; else NULL */
    sem_t workers;
    sms_metrics_t *metrics;   /* may be NULL */
    sms_capture_t *capture;   /* NULL when capture is off */
    atomic_size_t body_bytes; /* bodies in flight, against cfg.body_budget */
    atomic_int in_flight;     /* requests between begin_request and end_request */
    atomic_bool draining;
    int listeners[MAX_LISTENERS];
    int n_listeners;
    /* Body deadlines: a slot per connection thread, watched by the reaper. */
    struct body_watch *watches;
    int n_watches;
    atomic_int next_watch;
    pthread_t reaper;
    bool reaper_started;
    atomic_bool reaper_stop;
};

/* The reaper thread also trims malloc's arenas every 10 s.
 * CivetWeb's mg_read returns only once it has every byte asked for (or a
 * single wait passes request_timeout_ms), so a body trickled a byte at a
 * time never hands control back. A body being read is registered here with
 * its socket and deadline; past the deadline the reaper shuts the socket's
 * read side, the read returns, and the reader answers 408. The reader is
 * the thread that would close the socket, so while it is registered the
 * descriptor cannot be reused. */
typedef struct body_watch {
    pthread_mutex_t lock;
    int fd; /* -1: nothing watched */
    double deadline;
} body_watch_t;

/* A connection thread's state: buffers kept across requests (trimmed after
 * each), and what the current request did. */
typedef struct thread_state {
    sms_buf_t head; /* the response's status line and headers */
    sms_buf_t body;
    sms_matrix_t rows;
    sms_matrix_t preds;
    sms_buf_t out;
    size_t response_bytes;
    uint64_t model_us;
    size_t reserved;    /* body budget held by this request */
    bool counted;       /* in h->in_flight */
    bool body_done;     /* the body was read to its end */
    bool write_failed;  /* the response did not reach the client whole */
    bool marking_close; /* http_error is being used to set CivetWeb's must_close */
    double idle_since;  /* monotonic s: connection opened or last response */
    unsigned requests;  /* on this connection */
    sms_loaded_t *held; /* the multi-model endpoint's model this request holds, or NULL */
    int watch;          /* this thread's body_watch slot, -1 before its first body */
    int fd;             /* this connection's socket once looked up, else -1 */
    int last_fd;        /* the previous connection's, tried first */
} thread_state_t;

static _Thread_local thread_state_t tbuf = {.watch = -1, .fd = -1, .last_fd = -1};

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static sms_http_t *server_of(const struct mg_connection *c)
{
    return mg_get_user_data(mg_get_context(c));
}

static void on_thread_exit(const struct mg_context *ctx, int thread_type, void *ptr)
{
    (void)ctx;
    (void)thread_type;
    (void)ptr;
    sms_buf_free(&tbuf.head);
    sms_buf_free(&tbuf.body);
    sms_matrix_free(&tbuf.rows);
    sms_matrix_free(&tbuf.preds);
    sms_buf_free(&tbuf.out);
    sms_model_thread_cleanup();
}

static int on_log(const struct mg_connection *conn, const char *message)
{
    (void)conn;
    sms_log("http: %s", message);
    return 1;
}

static int on_connection(const struct mg_connection *c, void **data)
{
    (void)c;
    *data = NULL;
    tbuf.idle_since = mono_s();
    tbuf.requests = 0;
    tbuf.fd = -1;
    return 0;
}

/* Gives back the pages of this thread's stack below the current frame
 * (less a margin for the calls below): they hold nothing live, and the next
 * connection touches again only what it uses. Thousands of connection
 * threads each keeping the deepest stack it ever reached would add up. Not
 * under AddressSanitizer, which keeps its own accounts of stack memory. */
static void release_stack(void)
{
#if !defined(__SANITIZE_ADDRESS__)
    static _Thread_local char *low;
    if (!low) {
        pthread_attr_t attr;
        void *addr;
        size_t size;
        if (pthread_getattr_np(pthread_self(), &attr) != 0)
            return;
        if (pthread_attr_getstack(&attr, &addr, &size) == 0)
            low = addr;
        pthread_attr_destroy(&attr);
        if (!low)
            return;
    }
    long page = sysconf(_SC_PAGESIZE);
    char here;
    uintptr_t top = ((uintptr_t)&here - 4096) & ~(uintptr_t)(page - 1);
    uintptr_t bottom = ((uintptr_t)low + (uintptr_t)page - 1) & ~(uintptr_t)(page - 1);
    if (top > bottom)
        madvise((void *)bottom, top - bottom, MADV_DONTNEED);
#endif
}

/* Between connections a thread keeps no buffers and no stack beyond what
 * it is using. */
static void on_connection_close(const struct mg_connection *c)
{
    (void)c;
    release_stack();
    sms_buf_free(&tbuf.body);
    sms_buf_free(&tbuf.out);
    sms_buf_free(&tbuf.head);
    sms_matrix_free(&tbuf.rows);
    sms_matrix_free(&tbuf.preds);
    sms_model_thread_trim(0);
}

/* Whether the client asked to keep the connection: CivetWeb's own rule (an
 * explicit Connection header decides, else HTTP/1.1 means yes). */
static bool client_keeps_alive(const struct mg_connection *c)
{
    const char *conn = mg_get_header(c, "Connection");
    if (conn)
        return strcasestr(conn, "keep-alive") != NULL;
    const char *version = mg_get_request_info(c)->http_version;
    return version && strcmp(version, "1.1") == 0;
}

/* The Date header's value, formatted at most once a second per thread. */
static const char *http_date(void)
{
    static _Thread_local time_t cached_at;
    static _Thread_local char text[40];
    time_t now = time(NULL);
    if (now != cached_at) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cached_at = now;
    }
    return text;
}

static void release_body(sms_http_t *h);

static void write_all(struct mg_connection *c, const void *bytes, size_t len)
{
    if (len && mg_write(c, bytes, len) != (int)len)
        tbuf.write_failed = true;
}

/* Bodies up to this size go out in the same write as the headers. */
#define ONE_WRITE_BYTES 65536

/* Writes a whole response, in one write when the body is small (CivetWeb's
 * header API sends each header line separately, a syscall and a packet per
 * line). The status line is fixed text, never the request's version. A HEAD
 * request gets the headers only. `close` ends the connection after it (the
 * response says Connection: close); so do a client that asked for that, a
 * chunked request (whether CivetWeb consumed the chunked body's last CRLF
 * cannot be told, so the connection is not reused) and a server that is
 * draining. */
static void send_bytes(struct mg_connection *c, int status, const char *content_type,
                       const char *body, size_t len, const char *extra_name,
                       const char *extra_value, bool close)
{
    sms_http_t *h = server_of(c);
    /* The body is no longer needed for this response: a client that sends
     * its next request on reading it must find the budget free. */
    release_body(h);
    tbuf.response_bytes = len;
    close = close || !client_keeps_alive(c) || atomic_load(&h->draining) ||
            mg_get_header(c, "Transfer-Encoding") != NULL;
    bool head_only = !strcmp(mg_get_request_info(c)->request_method, "HEAD");
    sms_buf_reset(&tbuf.head);
    int rc =
        sms_buf_printf(&tbuf.head, "HTTP/1.1 %d %s\r\n%s%s%sContent-Length: %zu\r\n", status,
                       mg_get_response_code_text(c, status), content_type ? "Content-Type: " : "",
                       content_type ? content_type : "", content_type ? "\r\n" : "", len);
    if (rc == 0 && extra_name)
        rc = sms_buf_printf(&tbuf.head, "%s: %s\r\n", extra_name, extra_value);
    if (rc == 0)
        rc = sms_buf_printf(&tbuf.head, "Date: %s\r\nConnection: %s\r\n\r\n", http_date(),
                            close ? "close" : "keep-alive");
    bool one_write = len <= ONE_WRITE_BYTES && !head_only;
    if (rc == 0 && len && one_write)
        rc = sms_buf_append(&tbuf.head, body, len);
    if (rc < 0)
        tbuf.write_failed = true;
    else
        write_all(c, tbuf.head.data, tbuf.head.len);
    if (rc == 0 && !one_write && !head_only)
        write_all(c, body, len);
    if (close) {
        /* CivetWeb would first read whatever is left of the body, and keep
         * the connection if the client asked. An error it is left to handle
         * itself marks the connection for closing; since data has been
         * written, its own reply writes nothing (http_error declines it). */
        tbuf.marking_close = true;
        mg_send_http_error(c, 204, "%s", "");
        tbuf.marking_close = false;
    }
}

/* The JSON error body, {"error": "...", "code": N}; NULL when out of memory. */
static char *error_json(int status, const char *msg)
{
    json_t *o = json_pack("{s:s, s:i}", "error", msg, "code", status);
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    return text;
}

/* Whether an error status always ends the connection: the request was
 * malformed, too big or too slow, or is to be retried. */
static bool closes(int status)
{
    return status == 400 || status == 408 || status == 411 || status == 413 || status == 417 ||
           status == 431 || status == 503 || status == 505;
}

/* Sends an error and returns its status for the handler's return value. The
 * connection closes when the status says so or the body was not read. */
static int send_error(struct mg_connection *c, int status, const char *msg, const char *extra_name,
                      const char *extra_value)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    bool has_body = ri->content_length > 0 || mg_get_header(c, "Transfer-Encoding") != NULL;
    bool close = closes(status) || (has_body && !tbuf.body_done);
    char *text = error_json(status, msg);
    send_bytes(c, status, text ? "application/json" : NULL, text, text ? strlen(text) : 0,
               extra_name, extra_value, close);
    free(text);
    return status;
}

static int errorf(struct mg_connection *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int errorf(struct mg_connection *c, int status, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return send_error(c, status, msg, NULL, NULL);
}

/* Errors CivetWeb finds before a request reaches begin_request. Its message
 * says little ("Bad request"); this says what to fix. The reply is written
 * here whole, with a fixed status line, and CivetWeb closes the connection
 * after it. */
static int on_http_error(struct mg_connection *c, int status, const char *errmsg)
{
    if (tbuf.marking_close)
        return 1; /* see send_bytes */
    sms_http_t *h = server_of(c);
    char msg[300];
    const char *m = msg;
    if (status == 413 && !strcmp(errmsg, "Message too large")) {
        status = 431;
        snprintf(msg, sizeof msg, "the request head (request line and headers) is over %d bytes",
                 HEAD_LIMIT);
    } else if (status == 400 && !strcmp(errmsg, "Malformed message")) {
        /* CivetWeb says this of a head cut off by its deadline and of one
         * holding a byte it refuses; the time tells which. */
        int limit = tbuf.requests ? h->cfg.keepalive_timeout_ms : h->cfg.header_timeout_ms;
        if ((mono_s() - tbuf.idle_since) * 1000.0 >= limit * 0.9) {
            status = 408;
            snprintf(msg, sizeof msg, "the request head did not arrive within %d ms (%s)", limit,
                     tbuf.requests ? "SMSERVE_KEEPALIVE_TIMEOUT_MS on a kept-alive connection"
                                   : "SMSERVE_HEADER_TIMEOUT_MS");
        } else {
            /* ... and of one that fills its buffer (HEAD_BUFFER) without
             * ending; shorter over-long heads get 431 from check_head. */
            m = "malformed request head: it holds a control byte other than CR and LF (NUL, "
                "tab, escape, DEL...), or it is far over the 16384-byte limit";
        }
    } else if (status == 400 && !strcmp(errmsg, "Bad request")) {
        const char *te = mg_get_header(c, "Transfer-Encoding");
        if (te)
            m = "Transfer-Encoding is not supported: send the body with Content-Length or "
                "Transfer-Encoding: chunked";
        else
            m = "malformed request: the request line must be METHOD /path HTTP/1.1 (a known "
                "method, a path without spaces) and each header line NAME: value";
    } else if (status == 411) {
        status = 400;
        m = "invalid Content-Length: it must be a decimal number of bytes";
    } else if (status == 505) {
        m = "HTTP version not supported: send HTTP/1.1 (or HTTP/1.0)";
    } else if (status == 400 && !strcmp(errmsg, "Invalid URI")) {
        m = "invalid request target: send a path such as /invocations";
    } else {
        snprintf(msg, sizeof msg, "%s", errmsg);
    }
    char *text = error_json(status, m);
    sms_buf_reset(&tbuf.head);
    int rc = sms_buf_printf(&tbuf.head,
                            "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: "
                            "%zu\r\nDate: %s\r\nConnection: close\r\n\r\n%s",
                            status, mg_get_response_code_text(c, status), text ? strlen(text) : 0,
                            http_date(), text ? text : "");
    free(text);
    if (rc == 0)
        write_all(c, tbuf.head.data, tbuf.head.len);
    return 0;
}

static int method_is(const struct mg_request_info *ri, const char *m)
{
    return strcmp(ri->request_method, m) == 0;
}

/* ------------------------------------------------------------ the request head */

/* RFC 9110 token characters, for header names. */
static bool is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* The end of the last header value CivetWeb parsed (or of the request
 * line), in its buffer. */
static const char *head_end(const struct mg_request_info *ri)
{
    const char *last =
        ri->num_headers > 0 ? ri->http_headers[ri->num_headers - 1].value : ri->http_version;
    return last + strlen(last);
}

/* CivetWeb stops reading header lines at the first one that does not start
 * with a name (an obsolete folded line starting with a space, say) and
 * drops the rest without a word. Its parser replaced each line's CR and LF
 * by NULs in its buffer, so after the last header it returned, the bytes
 * are NUL NUL and then the head's final CR, when nothing was dropped. The
 * two bytes after that NUL pair stay inside the buffer: check_head has made
 * sure the head is at most HEAD_LIMIT bytes, the buffer is HEAD_BUFFER. */
static bool head_is_complete(const struct mg_request_info *ri)
{
    const char *end = head_end(ri);
    if (end[1] != '\0') /* a bare LF ended the line: the next line's first byte */
        return end[1] == '\r';
    return end[2] == '\r' || end[2] == '\0';
}

/* CivetWeb accepts runs of spaces between the request line's words and
 * spaces before a header's colon, and zeroes them: the words must sit one
 * space apart, and only blanks may lie between a name's colon and its
 * value. */
static const char *spacing_error(const struct mg_request_info *ri)
{
    const char *uri_end = ri->query_string ? ri->query_string + strlen(ri->query_string)
                                           : ri->request_uri + strlen(ri->request_uri);
    if (ri->request_uri != ri->request_method + strlen(ri->request_method) + 1 ||
        ri->http_version - 5 != uri_end + 1)
        return "the request line's three parts must be separated by single spaces";
    if (ri->num_headers > 0) {
        const char *line_end = ri->http_version + strlen(ri->http_version);
        ptrdiff_t gap = ri->http_headers[0].name - line_end;
        if (gap < 1 || gap > 2)
            return "the first header line must start with its name, right after the request "
                   "line's CRLF";
    }
    for (int i = 0; i < ri->num_headers; i++) {
        const char *name = ri->http_headers[i].name, *value = ri->http_headers[i].value;
        for (const char *p = name + strlen(name) + 1; p < value; p++)
            if (*p != ' ' && *p != '\t')
                return "no whitespace is allowed between a header name and its colon";
    }
    return NULL;
}

/* Parses a Content-Length value: digits only (after optional blanks around
 * them), no sign, no overflow. -1 when invalid, -2 when too large to hold. */
static long long parse_length(const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    if (*v < '0' || *v > '9')
        return -1;
    unsigned long long n = 0;
    bool overflow = false;
    for (; *v >= '0' && *v <= '9'; v++) {
        if (n > (unsigned long long)(LLONG_MAX - 9) / 10)
            overflow = true;
        else
            n = n * 10 + (unsigned)(*v - '0');
    }
    while (*v == ' ' || *v == '\t')
        v++;
    if (*v)
        return -1;
    return overflow ? -2 : (long long)n;
}

/* Checks what CivetWeb parsed from the head, before routing. Returns 0, or
 * the status of the error response it sent. */
static int check_head(struct mg_connection *c, sms_http_t *h, long long *length)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    *length = 0;
    if (ri->num_headers >= MG_MAX_HEADERS)
        return errorf(c, 431, "too many header fields: at most %d are read", MG_MAX_HEADERS - 1);
    if (head_end(ri) - ri->request_method > HEAD_LIMIT - 4)
        return errorf(c, 431, "the request head (request line and headers) is over %d bytes",
                      HEAD_LIMIT);
    const char *spacing = spacing_error(ri);
    if (spacing)
        return errorf(c, 400, "malformed request head: %s", spacing);
    if (!head_is_complete(ri))
        return errorf(c, 400,
                      "malformed header block after the \"%.60s\" header: a line that does not "
                      "start with a header name (obsolete line folding is not accepted)",
                      ri->http_headers[ri->num_headers - 1].name);
    int hosts = 0, lengths = 0, encodings = 0, types = 0;
    const char *cl = NULL, *te = NULL, *expect = NULL, *coding = NULL;
    for (int i = 0; i < ri->num_headers; i++) {
        const char *name = ri->http_headers[i].name, *value = ri->http_headers[i].value;
        for (const char *p = name; *p; p++)
            if (!is_tchar((unsigned char)*p))
                return errorf(c, 400,
                              "header %d: the name \"%.60s\" holds a character not allowed in "
                              "a header name",
                              i + 1, name);
        if (!strcasecmp(name, "Host"))
            hosts++;
        else if (!strcasecmp(name, "Content-Length"))
            lengths++, cl = value;
        else if (!strcasecmp(name, "Transfer-Encoding"))
            encodings++, te = value;
        else if (!strcasecmp(name, "Expect"))
            expect = value;
        else if (!strcasecmp(name, "Content-Type"))
            types++;
        else if (!strcasecmp(name, "Content-Encoding"))
            coding = value;
    }
    if (types > 1)
        return errorf(c, 400, "%d Content-Type headers: send one", types);
    if (coding && strcasecmp(coding, "identity"))
        return errorf(c, 415,
                      "Content-Encoding \"%.60s\" is not supported: send the body uncompressed",
                      coding);
    if (hosts == 0 && !strcmp(ri->http_version, "1.1"))
        return errorf(c, 400, "no Host header: HTTP/1.1 requires one");
    if (hosts > 1)
        return errorf(c, 400, "%d Host headers: send one", hosts);
    if (lengths > 1)
        return errorf(c, 400, "%d Content-Length headers: send one", lengths);
    if (encodings > 1)
        return errorf(c, 400, "%d Transfer-Encoding headers: send one", encodings);
    if (te && cl)
        return errorf(c, 400,
                      "both Content-Length and Transfer-Encoding: send the body with one of them");
    if (te && strcasecmp(te, "chunked"))
        return errorf(c, 400,
                      "Transfer-Encoding \"%.60s\" is not supported: send chunked or a "
                      "Content-Length",
                      te);
    if (expect && strcasecmp(expect, "100-continue"))
        return errorf(c, 417, "Expect \"%.60s\" is not supported: only 100-continue is", expect);
    if (cl) {
        long long n = parse_length(cl);
        if (n == -1)
            return errorf(c, 400,
                          "invalid Content-Length \"%.60s\": it must be a decimal number "
                          "of bytes",
                          cl);
        if (n == -2 || (unsigned long long)n > h->cfg.max_content_length)
            return errorf(c, 413,
                          "request body of %.40s bytes (Content-Length) is over "
                          "MAX_CONTENT_LENGTH (%zu bytes); send fewer rows per request",
                          cl + strspn(cl, " \t"), h->cfg.max_content_length);
        *length = n;
    } else if (te) {
        *length = -1; /* chunked */
    }
    return 0;
}

/* ------------------------------------------------------------ routes */

/* OPTIONS on a route: 200, no body, the methods it takes (as AWS). */
static int options(struct mg_connection *c, const char *allow)
{
    send_bytes(c, 200, NULL, NULL, 0, "Allow", allow, false);
    return 200;
}

static int handle_ping(struct mg_connection *c, sms_http_t *h)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    if (method_is(ri, "OPTIONS"))
        return options(c, "GET, HEAD, OPTIONS");
    if (!method_is(ri, "GET") && !method_is(ri, "HEAD"))
        return send_error(c, 405, "/ping takes GET", "Allow", "GET, HEAD, OPTIONS");
    int status = atomic_load(&h->model) || h->registry ? 200 : 503;
    send_bytes(c, status, NULL, NULL, 0, NULL, NULL, false);
    return status;
}

static int handle_execution_parameters(struct mg_connection *c, sms_http_t *h)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    if (method_is(ri, "OPTIONS"))
        return options(c, "GET, OPTIONS");
    if (!method_is(ri, "GET"))
        return send_error(c, 405, "/execution-parameters takes GET", "Allow", "GET, OPTIONS");
    char body[200];
    int n = snprintf(
        body, sizeof body,
        "{\"MaxConcurrentTransforms\": %d, \"BatchStrategy\": \"%s\", "
        "\"MaxPayloadInMB\": %zu}",
        h->cfg.max_concurrent_transforms ? h->cfg.max_concurrent_transforms : h->cfg.workers,
        h->cfg.single_record ? "SINGLE_RECORD" : "MULTI_RECORD",
        h->cfg.max_payload_mb ? (size_t)h->cfg.max_payload_mb : h->cfg.max_content_length >> 20);
    send_bytes(c, 200, "application/json", body, (size_t)n, NULL, NULL, false);
    return 200;
}

/* The decoder for each request body type (sms_media_input says which). */
static sms_decode_fn decoder_of(sms_input_t in)
{
    switch (in) {
    case SMS_IN_CSV:
        return sms_csv_decode;
    case SMS_IN_LIBSVM:
        return sms_libsvm_decode;
    case SMS_IN_RECORDIO:
        return sms_recordio_decode;
    case SMS_IN_JSON:
        return sms_json_decode;
    case SMS_IN_JSONLINES:
        return sms_jsonlines_decode;
    }
    return NULL;
}

/* Takes `n` more bytes of the body budget for this request. */
static bool reserve_body(sms_http_t *h, size_t n)
{
    size_t cur = atomic_load(&h->body_bytes);
    do {
        if (n > h->cfg.body_budget || cur > h->cfg.body_budget - n)
            return false;
    } while (!atomic_compare_exchange_weak(&h->body_bytes, &cur, cur + n));
    tbuf.reserved += n;
    return true;
}

static void release_body(sms_http_t *h)
{
    if (tbuf.reserved)
        atomic_fetch_sub(&h->body_bytes, tbuf.reserved);
    tbuf.reserved = 0;
}

static int budget_exhausted(struct mg_connection *c, sms_http_t *h)
{
    char msg[300];
    snprintf(msg, sizeof msg,
             "the server holds %zu bytes of request bodies already, the whole "
             "SMSERVE_BODY_BUDGET_BYTES (%zu) but for %zu; retry in a second",
             atomic_load(&h->body_bytes), h->cfg.body_budget,
             h->cfg.body_budget - atomic_load(&h->body_bytes));
    return send_error(c, 503, msg, "Retry-After", "1");
}

/* Whether fd is this connection's socket: local port the server's, peer the
 * request's client. */
static bool is_connection_fd(int fd, const struct mg_request_info *ri, int port)
{
    struct sockaddr_storage a;
    socklen_t len = sizeof a;
    char text[INET6_ADDRSTRLEN];
    if (getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        return false;
    if (a.ss_family == AF_INET    ? ntohs(((struct sockaddr_in *)&a)->sin_port) != port
        : a.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&a)->sin6_port) != port
                                  : true)
        return false;
    len = sizeof a;
    if (getpeername(fd, (struct sockaddr *)&a, &len) < 0)
        return false;
    const void *addr = a.ss_family == AF_INET ? (void *)&((struct sockaddr_in *)&a)->sin_addr
                                              : (void *)&((struct sockaddr_in6 *)&a)->sin6_addr;
    int peer_port = a.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&a)->sin_port)
                                           : ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
    return peer_port == ri->remote_port && inet_ntop(a.ss_family, addr, text, sizeof text) &&
           !strcmp(text, ri->remote_addr);
}

/* This connection's socket, which CivetWeb does not hand out: looked up
 * once per connection (the previous connection's number first, which the
 * kernel often gives out again), or -1. */
static int connection_fd(struct mg_connection *c, sms_http_t *h)
{
    if (tbuf.fd >= 0)
        return tbuf.fd;
    const struct mg_request_info *ri = mg_get_request_info(c);
    if (tbuf.last_fd >= 0 && is_connection_fd(tbuf.last_fd, ri, h->cfg.port))
        return tbuf.fd = tbuf.last_fd;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (*end || end == e->d_name || fd == dirfd(d))
            continue;
        if (is_connection_fd((int)fd, ri, h->cfg.port)) {
            tbuf.fd = tbuf.last_fd = (int)fd;
            break;
        }
    }
    closedir(d);
    return tbuf.fd;
}

static void watch_body(sms_http_t *h, int fd, double deadline)
{
    if (tbuf.watch < 0) {
        int slot = atomic_fetch_add(&h->next_watch, 1);
        if (slot >= h->n_watches)
            return; /* more reading threads than connection slots: cannot happen */
        tbuf.watch = slot;
    }
    body_watch_t *w = &h->watches[tbuf.watch];
    pthread_mutex_lock(&w->lock);
    w->fd = fd;
    w->deadline = deadline;
    pthread_mutex_unlock(&w->lock);
}

static void unwatch_body(sms_http_t *h)
{
    if (tbuf.watch < 0)
        return;
    body_watch_t *w = &h->watches[tbuf.watch];
    pthread_mutex_lock(&w->lock);
    w->fd = -1;
    pthread_mutex_unlock(&w->lock);
}

static void *reaper_main(void *arg)
{
    sms_http_t *h = arg;
    unsigned ticks = 0;
    while (!atomic_load(&h->reaper_stop)) {
        /* Every 10 s, free pages inside malloc's arenas go back to the
         * system (requests from thousands of threads fragment them). */
        if (++ticks % 200 == 0)
            malloc_trim(0);
        struct timespec tick = {0, 50 * 1000 * 1000};
        nanosleep(&tick, NULL);
        double now = mono_s();
        int n = atomic_load(&h->next_watch);
        for (int i = 0; i < n && i < h->n_watches; i++) {
            body_watch_t *w = &h->watches[i];
            pthread_mutex_lock(&w->lock);
            if (w->fd >= 0 && now > w->deadline) {
                shutdown(w->fd, SHUT_RD);
                w->fd = -1;
            }
            pthread_mutex_unlock(&w->lock);
        }
    }
    return NULL;
}

static int read_body_until(struct mg_connection *c, sms_http_t *h, long long declared, double start,
                           double deadline);

/* Reads the whole body into tbuf.body: `declared` bytes, or a chunked body
 * (declared -1) of at most the maximum. Returns 0, or the status of the
 * error response it sent. A read that fails is never taken for the end of
 * the body. */
static int read_body(struct mg_connection *c, sms_http_t *h, long long declared)
{
    size_t max = h->cfg.max_content_length;
    bool chunked = declared < 0;
    double start = mono_s();
    double deadline = start + h->cfg.body_timeout_ms / 1000.0 +
                      (double)(chunked ? max : (size_t)declared) / (double)h->cfg.body_min_rate;
    sms_buf_reset(&tbuf.body);
    if (!chunked && sms_buf_reserve(&tbuf.body, (size_t)declared) < 0)
        return errorf(c, 500, "out of memory for a %lld-byte body", declared);
    int fd = connection_fd(c, h);
    if (fd >= 0)
        watch_body(h, fd, deadline);
    int status = read_body_until(c, h, declared, start, deadline);
    if (fd >= 0)
        unwatch_body(h);
    return status;
}

/* Once a request has passed every check that needs no body: takes the
 * body's share of the budget, answers Expect: 100-continue, and reads the
 * body to its end. 0, or the status of the error sent. */
static int accept_body(struct mg_connection *c, sms_http_t *h, long long declared)
{
    if (declared > 0 && !reserve_body(h, (size_t)declared))
        return budget_exhausted(c, h);
    if (mg_get_header(c, "Expect") && !strcmp(mg_get_request_info(c)->http_version, "1.1"))
        write_all(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    int status = declared ? read_body(c, h, declared) : 0;
    if (status == 0)
        tbuf.body_done = true;
    return status;
}

/* The 408 for a body past its deadline. */
static int body_late(struct mg_connection *c, sms_http_t *h, long long declared, double start)
{
    bool chunked = declared < 0;
    return errorf(c, 408,
                  "the body did not arrive in time: %zu of %s%lld bytes in %.1f s "
                  "(SMSERVE_BODY_TIMEOUT_MS plus the length at SMSERVE_BODY_MIN_RATE)",
                  tbuf.body.len, chunked ? "at most " : "",
                  chunked ? (long long)h->cfg.max_content_length : declared, mono_s() - start);
}

/* read_body's loop; the socket is watched meanwhile. */
static int read_body_until(struct mg_connection *c, sms_http_t *h, long long declared, double start,
                           double deadline)
{
    size_t max = h->cfg.max_content_length;
    bool chunked = declared < 0;
    for (;;) {
        if (!chunked && tbuf.body.len == (size_t)declared)
            break;
        if (mono_s() > deadline)
            return body_late(c, h, declared, start);
        size_t want = chunked ? 65536 : (size_t)declared - tbuf.body.len;
        if (chunked) {
            if (sms_buf_reserve(&tbuf.body, want) < 0)
                return errorf(c, 500, "out of memory reading the body");
            if (tbuf.reserved < tbuf.body.len + want && !reserve_body(h, want))
                return budget_exhausted(c, h);
        }
        double before = mono_s();
        int r = mg_read(c, tbuf.body.data + tbuf.body.len, want);
        if (r > 0) {
            tbuf.body.len += (size_t)r;
            if (chunked && tbuf.body.len > max)
                return errorf(c, 413,
                              "chunked request body is over MAX_CONTENT_LENGTH (%zu bytes); "
                              "send fewer rows per request",
                              max);
            continue;
        }
        if (r == 0 && chunked && mono_s() <= deadline)
            break; /* CivetWeb read the last chunk */
        if (mono_s() > deadline)
            return body_late(c, h, declared, start);
        bool stalled = (mono_s() - before) * 1000.0 >= h->cfg.header_timeout_ms * 0.9;
        if (stalled)
            return errorf(c, 408,
                          "the body stopped arriving: nothing for %d ms after %zu bytes "
                          "(SMSERVE_HEADER_TIMEOUT_MS bounds each wait for body bytes)",
                          h->cfg.header_timeout_ms, tbuf.body.len);
        if (chunked)
            return errorf(c, 400,
                          "chunked body framing is broken after %zu bytes of data: each chunk "
                          "is a hex size line (no extensions), CRLF, the data, CRLF, and a 0 "
                          "chunk ends the body",
                          tbuf.body.len);
        return errorf(c, 400, "the body ended after %zu of the %lld bytes declared", tbuf.body.len,
                      declared);
    }
    tbuf.body.data[tbuf.body.len] = '\0';
    tbuf.body_done = true;
    return 0;
}

static int acquire_worker(sms_http_t *h)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += h->cfg.timeout_s;
    int rc;
    while ((rc = sem_timedwait(&h->workers, &deadline)) < 0 && errno == EINTR)
        ;
    return rc;
}

/* Serves one invocation and returns its status; the response is written. */
#define CUSTOM_ATTRIBUTES "X-Amzn-SageMaker-Custom-Attributes"
/* As SageMaker's InvokeEndpoint takes it */
#define CUSTOM_ATTRIBUTES_MAX 1024

/* X-Amzn-SageMaker-Custom-Attributes goes back to the client in the
 * response's head, so only what SageMaker itself passes is taken: at most
 * 1,024 visible ASCII characters and spaces. 0, or -1 with msg. */
static int check_custom_attributes(const char *v, char *msg, size_t cap)
{
    size_t n = strlen(v);
    if (n > CUSTOM_ATTRIBUTES_MAX) {
        snprintf(msg, cap, CUSTOM_ATTRIBUTES " is %zu characters; SageMaker passes at most %d", n,
                 CUSTOM_ATTRIBUTES_MAX);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)v[i];
        if (b < 0x20 || b > 0x7e) {
            snprintf(msg, cap,
                     CUSTOM_ATTRIBUTES " byte %zu (0x%02x) is not visible ASCII; SageMaker "
                                       "passes visible ASCII characters and spaces only",
                     i + 1, b);
            return -1;
        }
    }
    return 0;
}

/* The invocation's model: the one model, or in a multi-model endpoint the
 * one named, held in tbuf.held until the request is done. NULL once the
 * error has been sent (*status). */
static sms_model_t *invocation_model(struct mg_connection *c, sms_http_t *h, const char *name,
                                     int *status)
{
    if (!h->registry) {
        sms_model_t *model = atomic_load(&h->model);
        if (!model)
            *status = send_error(c, 503, "the model is still loading; retry when /ping answers 200",
                                 "Retry-After", "1");
        return model;
    }
    sms_error_t err = {0};
    uint64_t waited;
    tbuf.held = sms_registry_acquire(h->registry, name, &waited, &err);
    /* ModelCacheHit: the model was loaded when the request came */
    sms_metrics_model_cache(h->metrics, tbuf.held && waited == 0);
    if (waited)
        sms_metrics_model_waited(h->metrics, waited);
    if (!tbuf.held) {
        *status = send_error(c, err.status, err.msg, err.status == 503 ? "Retry-After" : NULL, "1");
        return NULL;
    }
    return sms_loaded_model(tbuf.held);
}

static int invoke(struct mg_connection *c, sms_http_t *h, long long declared, const char *name,
                  sms_encoding_t *enc_out)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    char msg[600];
    if (method_is(ri, "OPTIONS"))
        return options(c, "POST, OPTIONS");
    if (!method_is(ri, "POST"))
        return send_error(c, 405,
                          name ? "/models/{name}/invoke takes POST" : "/invocations takes POST",
                          "Allow", "POST, OPTIONS");
    int status = 0;
    sms_model_t *model = invocation_model(c, h, name, &status);
    if (!model)
        return status;
    /* An empty body has nothing to decode, whatever its type (as AWS). */
    if (declared == 0) {
        tbuf.body_done = true;
        send_bytes(c, 204, NULL, NULL, 0, NULL, NULL, false);
        return 204;
    }
    /* No Content-Type at all is libsvm, as AWS's container reads it. */
    const char *ct = mg_get_header(c, "Content-Type");
    sms_input_t input;
    sms_error_t type_err = {0};
    if (sms_media_input(ct, &input, &type_err) < 0)
        return send_error(c, type_err.status ? type_err.status : 415, type_err.msg, NULL, NULL);
    sms_decode_fn decode = decoder_of(input);
    sms_encoding_t enc;
    const char *accept = mg_get_header(c, "Accept");
    if (sms_media_output(accept, h->cfg.default_accept, SMS_ENC_ALL, &enc) < 0) {
        snprintf(msg, sizeof msg,
                 "Accept \"%.100s\" is not supported; accept text/csv, application/json, "
                 "application/jsonlines or application/x-recordio-protobuf",
                 accept);
        return send_error(c, 406, msg, NULL, NULL);
    }
    const char *attributes = mg_get_header(c, CUSTOM_ATTRIBUTES);
    if (attributes && check_custom_attributes(attributes, msg, sizeof msg) < 0)
        return send_error(c, 400, msg, NULL, NULL);
    /* Everything that could refuse the request before its body has been
     * checked: now the client may send it. */
    if ((status = accept_body(c, h, declared)) != 0)
        return status;
    if (tbuf.body.len == 0) {
        send_bytes(c, 204, NULL, NULL, 0, NULL, NULL, false);
        return 204;
    }

    sms_error_t err = {0};
    size_t num_feature = sms_model_num_feature(model);
    int rc = decode(tbuf.body.data, tbuf.body.len, num_feature, &tbuf.rows, &err);
    if (rc < 0 && !ct && err.status == 400) {
        /* Most likely a client that forgot its Content-Type (AWS: 415). */
        snprintf(msg, sizeof msg,
                 "no Content-Type: the body was read as text/libsvm, as SageMaker's XGBoost "
                 "container reads it, and is not libsvm (%.300s); send a Content-Type such as "
                 "text/csv",
                 err.msg);
        return send_error(c, 415, msg, NULL, NULL);
    }
    if (rc < 0)
        return send_error(c, err.status ? err.status : 400, err.msg, NULL, NULL);
    if (tbuf.rows.rows == 0) {
        send_bytes(c, 204, NULL, NULL, 0, NULL, NULL, false);
        return 204;
    }

    if (acquire_worker(h) < 0) {
        snprintf(msg, sizeof msg,
                 "all %d workers stayed busy for %d s (SAGEMAKER_MODEL_SERVER_TIMEOUT); retry "
                 "or raise SAGEMAKER_MODEL_SERVER_WORKERS",
                 h->cfg.workers, h->cfg.timeout_s);
        return send_error(c, 503, msg, "Retry-After", "1");
    }
    uint64_t model_start = now_us();
    rc = sms_model_predict(model, tbuf.rows.values, tbuf.rows.rows, &tbuf.preds, &err);
    tbuf.model_us = now_us() - model_start;
    sem_post(&h->workers);
    if (rc < 0) {
        sms_log("prediction failed: %s", err.msg);
        return send_error(c, err.status ? err.status : 500, err.msg, NULL, NULL);
    }

    sms_buf_reset(&tbuf.out);
    if (h->cfg.has_selection) {
        /* SAGEMAKER_INFERENCE_OUTPUT was checked against the model at start. */
        rc = sms_encode_selected(enc, &h->cfg.selection, sms_task_of(sms_model_objective(model)),
                                 sms_model_num_class(model), tbuf.preds.values, tbuf.preds.rows,
                                 tbuf.preds.cols, &tbuf.out);
        if (rc == -2)
            return send_error(
                c, 500, "the predictions do not fit SAGEMAKER_INFERENCE_OUTPUT's keys", NULL, NULL);
        if (rc < 0)
            return send_error(c, 500, "out of memory encoding the response", NULL, NULL);
    } else if (sms_encode(enc, tbuf.preds.values, tbuf.preds.rows, tbuf.preds.cols, &tbuf.out) <
               0) {
        return send_error(c, 500, "out of memory encoding the response", NULL, NULL);
    }
    /* Checked above; SageMaker hands it to the caller only when the
     * container answers with it. */
    send_bytes(c, 200, sms_encoding_content_type(enc), tbuf.out.data, tbuf.out.len,
               attributes && *attributes ? CUSTOM_ATTRIBUTES : NULL, attributes, false);
    *enc_out = enc;
    return 200;
}

/* Hands a served invocation to capture, after the response has gone out. */
static void capture_invocation(sms_http_t *h, struct mg_connection *c, sms_encoding_t enc,
                               const char *name, int64_t time_ms)
{
    const char *target = mg_get_header(c, "X-Amzn-SageMaker-Target-Model");
    if (!sms_capture_sample(h->capture))
        return;
    sms_capture_event_t ev = {
        .input_type = mg_get_header(c, "Content-Type"),
        .input = tbuf.body.data,
        .input_len = tbuf.body.len,
        .output_type = sms_encoding_content_type(enc),
        .output = tbuf.out.data,
        .output_len = tbuf.out.len,
        .inference_id = mg_get_header(c, "X-Amzn-SageMaker-Inference-Id"),
        .custom_attributes = mg_get_header(c, CUSTOM_ATTRIBUTES),
        .target_model = target && *target ? target : name,
        .time_ms = time_ms,
    };
    sms_capture_submit(h->capture, &ev);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* An invocation of the one model (name NULL) or of a multi-model
 * endpoint's model `name`. */
static int handle_invocations(struct mg_connection *c, sms_http_t *h, long long declared,
                              const char *name)
{
    uint64_t start = now_us();
    int64_t time_ms = h->capture ? wall_ms() : 0;
    tbuf.model_us = 0;
    tbuf.response_bytes = 0;
    sms_matrix_reset(&tbuf.rows);
    sms_buf_reset(&tbuf.body);
    sms_encoding_t enc = SMS_ENC_CSV;
    tbuf.held = NULL;
    int status = invoke(c, h, declared, name, &enc);
    /* Only a response that reached the client counts, and is captured. */
    if (h->metrics && !tbuf.write_failed) {
        uint64_t total = now_us() - start;
        sms_invocation_t inv = {
            .status = status,
            .model_us = tbuf.model_us,
            .overhead_us = total > tbuf.model_us ? total - tbuf.model_us : 0,
            .request_bytes = tbuf.body.len,
            .response_bytes = tbuf.response_bytes,
            .rows = status == 200 ? tbuf.rows.rows : 0,
        };
        sms_metrics_record_model(h->metrics, tbuf.held ? sms_loaded_series(tbuf.held) : NULL, &inv);
    }
    sms_registry_release(h->registry, tbuf.held);
    tbuf.held = NULL;
    if (h->capture && status == 200 && !tbuf.write_failed)
        capture_invocation(h, c, enc, name, time_ms);
    release_body(h);
    return status;
}

/* ---------------------------------------------- multi-model endpoints */

/* The largest POST /models body taken. */
#define LOAD_BODY_MAX 65536
/* GET /models pages: the default and the most models per page. */
#define PAGE_DEFAULT 100
#define PAGE_MAX     1000

/* Sends a JSON document (freed) with status. */
static int send_json(struct mg_connection *c, int status, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    if (!text)
        return send_error(c, 500, "out of memory writing the answer", NULL, NULL);
    send_bytes(c, status, "application/json", text, strlen(text), NULL, NULL, false);
    free(text);
    return status;
}

/* POST /models {"model_name": ..., "url": ...}: loads the model. */
static int load_request(struct mg_connection *c, sms_http_t *h, long long declared)
{
    if (declared > LOAD_BODY_MAX)
        return errorf(c, 413, "a POST /models body is at most %d bytes; this one declares %lld",
                      LOAD_BODY_MAX, declared);
    int status = accept_body(c, h, declared);
    if (status)
        return status;
    if (tbuf.body.len > LOAD_BODY_MAX)
        return errorf(c, 413, "a POST /models body is at most %d bytes", LOAD_BODY_MAX);
    json_error_t jerr;
    json_t *doc = json_loadb(tbuf.body.data ? tbuf.body.data : "", tbuf.body.len, 0, &jerr);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return errorf(c, 400,
                      "POST /models takes a JSON object {\"model_name\": ..., \"url\": ...}: %s",
                      doc ? "the body is not an object" : jerr.text);
    }
    json_t *jn = json_object_get(doc, "model_name"), *ju = json_object_get(doc, "url");
    if (!json_is_string(jn) || !json_is_string(ju)) {
        json_decref(doc);
        return errorf(c, 400, "POST /models needs the strings \"model_name\" and \"url\"");
    }
    char name[SMS_MODEL_NAME_MAX + 1], url[PATH_MAX];
    sms_error_t err = {0};
    size_t name_len = json_string_length(jn), url_len = json_string_length(ju);
    if (sms_registry_check_name(json_string_value(jn), name_len, &err) < 0 ||
        (url_len == 0 || url_len >= sizeof url || strlen(json_string_value(ju)) != url_len
             ? sms_error_set(&err, 400, "\"url\" must be a path of 1 to %zu bytes without NUL",
                             sizeof url - 1)
             : 0) < 0) {
        json_decref(doc);
        return send_error(c, 400, err.msg, NULL, NULL);
    }
    memcpy(name, json_string_value(jn), name_len + 1);
    memcpy(url, json_string_value(ju), url_len + 1);
    json_decref(doc);
    release_body(h);
    uint64_t load_us;
    size_t bytes;
    if (sms_registry_load(h->registry, name, url, &load_us, &bytes, &err) < 0) {
        sms_log("model \"%s\" not loaded from %s: %s", name, url, err.msg);
        return send_error(c, err.status, err.msg, NULL, NULL);
    }
    sms_log("model \"%s\" loaded from %s in %.1f ms (%zu bytes)", name, url, load_us / 1000.0,
            bytes);
    return send_json(c, 200,
                     json_pack("{s:s, s:s, s:I, s:f}", "modelName", name, "modelUrl", url, "bytes",
                               (json_int_t)bytes, "loadTimeMs", load_us / 1000.0));
}

typedef struct page {
    json_t *models;
    char last[SMS_MODEL_NAME_MAX + 1]; /* the page's last name: the next page's token */
    bool failed;
} page_t;

static void page_add(void *arg, const char *name, const char *url)
{
    page_t *p = arg;
    if (json_array_append_new(p->models,
                              json_pack("{s:s, s:s}", "modelName", name, "modelUrl", url)) < 0)
        p->failed = true;
    snprintf(p->last, sizeof p->last, "%s", name);
}

/* The value of query parameter `key` in q ("a=1&b=2") into out; false when absent. */
static bool query_value(const char *q, const char *key, char *out, size_t cap)
{
    size_t klen = strlen(key);
    for (const char *p = q; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL) {
        if (strncmp(p, key, klen) || p[klen] != '=')
            continue;
        const char *v = p + klen + 1;
        size_t n = strcspn(v, "&");
        if (n >= cap)
            n = cap - 1;
        memcpy(out, v, n);
        out[n] = '\0';
        return true;
    }
    return false;
}

/* GET /models[?next_page_token=T][&limit=N] (also nextPageToken, max_results). */
static int list_request(struct mg_connection *c, sms_http_t *h)
{
    const char *q = mg_get_request_info(c)->query_string;
    char token[SMS_MODEL_NAME_MAX + 2] = "", limit_text[32];
    if (q && !query_value(q, "next_page_token", token, sizeof token))
        query_value(q, "nextPageToken", token, sizeof token);
    sms_error_t err = {0};
    if (*token && sms_registry_check_name(token, strlen(token), &err) < 0)
        return errorf(c, 400,
                      "invalid next_page_token: give the nextPageToken of the previous page");
    long limit = PAGE_DEFAULT;
    if (q && (query_value(q, "limit", limit_text, sizeof limit_text) ||
              query_value(q, "max_results", limit_text, sizeof limit_text))) {
        char *end;
        errno = 0;
        limit = strtol(limit_text, &end, 10);
        if (errno || end == limit_text || *end || limit < 1 || limit > PAGE_MAX)
            return errorf(c, 400, "invalid limit \"%.40s\": a number of models from 1 to %d",
                          limit_text, PAGE_MAX);
    }
    page_t page = {.models = json_array()};
    json_t *doc = json_object();
    if (!page.models || !doc) {
        json_decref(page.models);
        json_decref(doc);
        return send_error(c, 500, "out of memory listing the models", NULL, NULL);
    }
    bool more;
    sms_registry_list(h->registry, token, (size_t)limit, page_add, &page, &more);
    json_object_set_new(doc, "models", page.models);
    if (more)
        json_object_set_new(doc, "nextPageToken", json_string(page.last));
    if (page.failed) {
        json_decref(doc);
        return send_error(c, 500, "out of memory listing the models", NULL, NULL);
    }
    return send_json(c, 200, doc);
}

/* GET /models/{name}: what is loaded under name. */
static int describe_request(struct mg_connection *c, sms_http_t *h, const char *name)
{
    sms_error_t err = {0};
    uint64_t waited;
    sms_loaded_t *l = sms_registry_acquire(h->registry, name, &waited, &err);
    if (!l)
        return send_error(c, err.status, err.msg, NULL, NULL);
    sms_model_t *m = sms_loaded_model(l);
    json_t *doc = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s}", "modelName", name, "modelUrl",
                            sms_loaded_url(l), "objective", sms_model_objective(m), "features",
                            (json_int_t)sms_model_num_feature(m), "outputs",
                            (json_int_t)sms_model_num_output(m), "bytes",
                            (json_int_t)sms_loaded_bytes(l), "engine", sms_model_engine(m));
    sms_registry_release(h->registry, l);
    return send_json(c, 200, doc);
}

/* /models and /models/{name}[/invoke] (rest: what follows "/models"). */
static int handle_models(struct mg_connection *c, sms_http_t *h, const char *rest,
                         long long declared)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    if (!h->registry)
        return errorf(c, 404,
                      "/models is the multi-model API: start smserve with "
                      "SAGEMAKER_MULTI_MODEL=true");
    if (*rest == '\0') {
        if (method_is(ri, "OPTIONS"))
            return options(c, "GET, POST, OPTIONS");
        if (method_is(ri, "POST"))
            return load_request(c, h, declared);
        if (method_is(ri, "GET"))
            return list_request(c, h);
        return send_error(c, 405, "/models takes GET (list) and POST (load)", "Allow",
                          "GET, POST, OPTIONS");
    }
    /* "/{name}" or "/{name}/invoke" */
    const char *name_at = rest + 1, *slash = strchr(name_at, '/');
    size_t n = slash ? (size_t)(slash - name_at) : strlen(name_at);
    sms_error_t err = {0};
    char name[SMS_MODEL_NAME_MAX + 1];
    if (slash && strcmp(slash, "/invoke"))
        return errorf(c, 404, "no such path: under /models/{name} there is only /invoke");
    if (sms_registry_check_name(name_at, n, &err) < 0)
        return send_error(c, 400, err.msg, NULL, NULL);
    memcpy(name, name_at, n);
    name[n] = '\0';
    if (slash)
        return handle_invocations(c, h, declared, name);
    if (method_is(ri, "OPTIONS"))
        return options(c, "GET, DELETE, OPTIONS");
    if (method_is(ri, "GET"))
        return describe_request(c, h, name);
    if (method_is(ri, "DELETE")) {
        if (sms_registry_unload(h->registry, name, &err) < 0)
            return send_error(c, err.status, err.msg, NULL, NULL);
        sms_log("model \"%s\" unloaded", name);
        return send_json(c, 200, json_pack("{s:s, s:s}", "modelName", name, "status", "unloaded"));
    }
    return send_error(c, 405, "/models/{name} takes GET (describe) and DELETE (unload)", "Allow",
                      "GET, DELETE, OPTIONS");
}

/* /invocations on a multi-model endpoint: the model is the one the
 * X-Amzn-SageMaker-Target-Model header names. */
static int handle_targeted(struct mg_connection *c, sms_http_t *h, long long declared)
{
    const char *target = mg_get_header(c, "X-Amzn-SageMaker-Target-Model");
    if (!target || !*target)
        return errorf(c, 400,
                      "this is a multi-model endpoint: POST /models/{name}/invoke, or name "
                      "the model in X-Amzn-SageMaker-Target-Model");
    sms_error_t err = {0};
    if (sms_registry_check_name(target, strlen(target), &err) < 0)
        return errorf(c, 400, "X-Amzn-SageMaker-Target-Model: %s", err.msg);
    return handle_invocations(c, h, declared, target);
}

static int handle_metrics(struct mg_connection *c, sms_http_t *h)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    if (!method_is(ri, "GET"))
        return send_error(c, 405, "/metrics takes GET", "Allow", "GET");
    if (!h->metrics)
        return send_error(c, 404, "metrics are off (SMSERVE_METRICS=false)", NULL, NULL);
    sms_buf_reset(&tbuf.out);
    if (sms_metrics_prometheus(h->metrics, &tbuf.out) < 0)
        return send_error(c, 500, "out of memory writing the metrics", NULL, NULL);
    send_bytes(c, 200, "text/plain; version=0.0.4; charset=utf-8", tbuf.out.data, tbuf.out.len,
               NULL, NULL, false);
    return 200;
}

/* Every request: checks, then the route for its exact path (the query
 * string, split off by CivetWeb, is ignored). Returns the status written. */
static int on_request(struct mg_connection *c)
{
    sms_http_t *h = server_of(c);
    atomic_fetch_add(&h->in_flight, 1);
    tbuf.counted = true;
    tbuf.body_done = false;
    tbuf.write_failed = false;
    tbuf.reserved = 0;
    tbuf.requests++;
    long long declared;
    int status = check_head(c, h, &declared);
    if (status)
        return status;
    const char *path = mg_get_request_info(c)->local_uri_raw;
    if (!path)
        return errorf(c, 400, "invalid request target: send a path such as /invocations");
    if (!strcmp(path, "/invocations"))
        return h->registry ? handle_targeted(c, h, declared)
                           : handle_invocations(c, h, declared, NULL);
    if (!strncmp(path, "/models", 7) && (path[7] == '\0' || path[7] == '/'))
        return handle_models(c, h, path + 7, declared);
    if (!strcmp(path, "/ping"))
        return handle_ping(c, h);
    if (!strcmp(path, "/execution-parameters"))
        return handle_execution_parameters(c, h);
    if (!strcmp(path, "/metrics"))
        return handle_metrics(c, h);
    return errorf(c, 404,
                  "no such path \"%.200s\": smserve serves GET /ping, POST /invocations, GET "
                  "/execution-parameters, GET /metrics and, on a multi-model endpoint, /models "
                  "(paths are matched exactly)",
                  path);
}

static void on_request_end(const struct mg_connection *c, int status)
{
    (void)status;
    if (tbuf.counted) {
        atomic_fetch_sub(&server_of(c)->in_flight, 1);
        tbuf.counted = false;
    }
    tbuf.idle_since = mono_s();
    /* A burst's large buffers go back to the system. */
    sms_buf_trim(&tbuf.body, SMALL_BUFFER);
    sms_buf_trim(&tbuf.out, SMALL_BUFFER);
    sms_buf_trim(&tbuf.head, SMALL_BUFFER);
    sms_matrix_trim(&tbuf.rows, SMALL_BUFFER);
    sms_matrix_trim(&tbuf.preds, SMALL_BUFFER);
    sms_model_thread_trim(SMALL_BUFFER);
}

/* ------------------------------------------------------------ start and stop */

/* CivetWeb does not hand out its listening sockets; they are the sockets of
 * this process that listen on the port. */
static void find_listeners(sms_http_t *h)
{
    long max_fd = sysconf(_SC_OPEN_MAX);
    if (max_fd < 0 || max_fd > 65536)
        max_fd = 65536;
    for (int fd = 0; fd < max_fd && h->n_listeners < MAX_LISTENERS; fd++) {
        int listening = 0;
        socklen_t len = sizeof listening;
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 || !listening)
            continue;
        struct sockaddr_storage addr;
        len = sizeof addr;
        if (getsockname(fd, (struct sockaddr *)&addr, &len) < 0)
            continue;
        int port = addr.ss_family == AF_INET    ? ntohs(((struct sockaddr_in *)&addr)->sin_port)
                   : addr.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&addr)->sin6_port)
                                                : -1;
        if (port == h->cfg.port)
            h->listeners[h->n_listeners++] = fd;
    }
}

int sms_http_start(const sms_config_t *cfg, sms_metrics_t *metrics, sms_capture_t *capture,
                   sms_http_t **out, sms_error_t *err)
{
    *out = NULL;
    sms_http_t *h = calloc(1, sizeof *h);
    if (!h)
        return sms_error_set(err, 500, "out of memory");
    h->cfg = *cfg;
    h->metrics = metrics;
    h->capture = capture;
    atomic_init(&h->model, NULL);
    atomic_init(&h->body_bytes, 0);
    atomic_init(&h->in_flight, 0);
    atomic_init(&h->draining, false);
    atomic_init(&h->next_watch, 0);
    atomic_init(&h->reaper_stop, false);
    h->n_watches = cfg->connections + 8;
    h->watches = calloc((size_t)h->n_watches, sizeof *h->watches);
    if (!h->watches) {
        free(h);
        return sms_error_set(err, 500, "out of memory");
    }
    for (int i = 0; i < h->n_watches; i++) {
        pthread_mutex_init(&h->watches[i].lock, NULL);
        h->watches[i].fd = -1;
    }
    sem_init(&h->workers, 0, (unsigned)cfg->workers);

    /* Large buffers come from mmap and go back on free: a fixed threshold
     * (malloc would otherwise raise it to the largest block freed, keeping
     * every later body on the heap), and a heap top trimmed above 1 MiB.
     * 2 MiB, not less: a model load allocates and frees some 3.5 MB in
     * blocks of 0.2 to 1 MB (the file, its UBJSON, XGBoost's buffers), and
     * mapping, faulting in and unmapping each cost a 100-tree JSON model's
     * load 1 ms of its 9 (bench/mme.py); smaller free blocks go back to the
     * system with the reaper's malloc_trim every 10 s. */
    mallopt(M_MMAP_THRESHOLD, 2 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
    /* Each connection holds a socket: allow as many as the hard limit. */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit(RLIMIT_NOFILE, &nofile);
    }

    char port[16], threads[16], head_ms[32], keepalive_ms[32], head_buffer[16];
    snprintf(port, sizeof port, "%d", cfg->port);
    snprintf(threads, sizeof threads, "%d", cfg->connections);
    snprintf(head_ms, sizeof head_ms, "%d", cfg->header_timeout_ms);
    snprintf(keepalive_ms, sizeof keepalive_ms, "%d", cfg->keepalive_timeout_ms);
    snprintf(head_buffer, sizeof head_buffer, "%d", HEAD_BUFFER);
    const char *options[] = {
        "listening_ports",
        port,
        "num_threads",
        threads,
        "listen_backlog",
        "4096",
        "enable_keep_alive",
        "yes",
        "keep_alive_timeout_ms",
        keepalive_ms,
        "request_timeout_ms",
        head_ms,
        "linger_timeout_ms",
        "500",
        "max_request_size",
        head_buffer,
        "decode_url",
        "no",
        "tcp_nodelay",
        "1",
        "enable_directory_listing",
        "no",
        NULL,
    };
    struct mg_callbacks callbacks = {0};
    callbacks.exit_thread = on_thread_exit;
    callbacks.log_message = on_log;
    callbacks.init_connection = on_connection;
    callbacks.connection_close = on_connection_close;
    callbacks.begin_request = on_request;
    callbacks.end_request = on_request_end;
    callbacks.http_error = on_http_error;
    struct mg_init_data init = {
        .callbacks = &callbacks, .user_data = h, .configuration_options = options};
    char text[256] = "";
    unsigned code = 0;
    struct mg_error_data error = {.code = &code, .text = text, .text_buffer_size = sizeof text};
    mg_init_library(0);
    h->ctx = mg_start2(&init, &error);
    if (!h->ctx) {
        sem_destroy(&h->workers);
        free(h->watches);
        free(h);
        return sms_error_set(err, 500, "cannot listen on port %d: %s", cfg->port,
                             text[0] ? text : "unknown error");
    }
    find_listeners(h);
    /* A connection reaches accept() only once it has sent a byte. */
    int defer_s = (cfg->header_timeout_ms + 999) / 1000;
    for (int i = 0; i < h->n_listeners; i++)
        setsockopt(h->listeners[i], IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_s, sizeof defer_s);
    h->reaper_started = pthread_create(&h->reaper, NULL, reaper_main, h) == 0;
    if (!h->reaper_started)
        sms_log("could not start the body-deadline thread; slow bodies are bounded by "
                "SMSERVE_HEADER_TIMEOUT_MS per read only");
    *out = h;
    return 0;
}

void sms_http_set_model(sms_http_t *h, sms_model_t *model)
{
    atomic_store(&h->model, model);
}

void sms_http_set_registry(sms_http_t *h, sms_registry_t *registry)
{
    h->registry = registry;
}

void sms_http_stop(sms_http_t *h)
{
    if (!h)
        return;
    /* From now on every response says Connection: close. */
    atomic_store(&h->draining, true);
    /* Stop accepting at once: shutdown makes the kernel refuse new
     * connections now (even while CivetWeb's accept loop still polls the
     * socket), and the descriptor is then pointed at a pipe that never
     * becomes readable, so that loop waits on something valid until
     * mg_stop. */
    int never[2] = {-1, -1};
    if (h->n_listeners && pipe2(never, O_CLOEXEC) == 0)
        for (int i = 0; i < h->n_listeners; i++) {
            shutdown(h->listeners[i], SHUT_RDWR);
            dup2(never[0], h->listeners[i]);
        }
    /* Requests already received finish: wait until none has been in flight
     * for 100 ms, at most SMSERVE_DRAIN_TIMEOUT_MS. */
    double start = mono_s(), quiet_since = start;
    while ((mono_s() - start) * 1000.0 < h->cfg.drain_timeout_ms) {
        if (atomic_load(&h->in_flight) > 0)
            quiet_since = mono_s();
        else if (mono_s() - quiet_since >= 0.1)
            break;
        struct timespec tick = {0, 5 * 1000 * 1000};
        nanosleep(&tick, NULL);
    }
    mg_stop(h->ctx);
    if (h->reaper_started) {
        atomic_store(&h->reaper_stop, true);
        pthread_join(h->reaper, NULL);
    }
    for (int i = 0; i < h->n_watches; i++)
        pthread_mutex_destroy(&h->watches[i].lock);
    free(h->watches);
    if (never[0] >= 0) {
        close(never[0]);
        close(never[1]);
    }
    sem_destroy(&h->workers);
    free(h);
}
