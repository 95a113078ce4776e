/* The HTTP front: CivetWeb with one thread per connection and a semaphore
 * that bounds how many predictions run at once (workers). It owns the
 * request's life: status codes, body reading, content negotiation and JSON
 * error bodies. Decoding, prediction and encoding happen in their modules
 * on per-thread buffers that are reused from request to request. */
#define _GNU_SOURCE
#include "smserve/http.h"

#include <civetweb.h>
#include <errno.h>
#include <jansson.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "smserve/buf.h"
#include "smserve/capture.h"
#include "smserve/csv.h"
#include "smserve/encode.h"
#include "smserve/jsonreq.h"
#include "smserve/log.h"
#include "smserve/metrics.h"

struct sms_http {
    struct mg_context *ctx;
    sms_config_t cfg;
    _Atomic(sms_model_t *) model;
    sem_t workers;
    sms_metrics_t *metrics; /* may be NULL */
    sms_capture_t *capture; /* NULL when capture is off */
};

/* A connection thread's buffers, kept for its whole life. */
typedef struct thread_buffers {
    sms_buf_t head; /* the response's status line and headers */
    sms_buf_t body;
    sms_matrix_t rows;
    sms_matrix_t preds;
    sms_buf_t out;
    /* What the current invocation did, for metrics. */
    size_t response_bytes;
    uint64_t model_us;
} thread_buffers_t;

static _Thread_local thread_buffers_t tbuf;

static void *on_thread_start(const struct mg_context *ctx, int thread_type)
{
    (void)ctx;
    (void)thread_type;
    return NULL;
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

/* Whether CivetWeb keeps this connection open after the response: its own
 * rule (an explicit Connection header decides, else HTTP/1.1 means yes). */
static bool keeps_alive(const struct mg_connection *c)
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

/* Bodies up to this size go out in the same write as the headers. */
#define ONE_WRITE_BYTES 65536

static void send_bytes(struct mg_connection *c, int status, const char *content_type,
                       const char *body, size_t len, const char *extra_name,
                       const char *extra_value)
{
    tbuf.response_bytes = len;
    if (extra_name && !strcasecmp(extra_name, "Connection")) {
        /* Only CivetWeb's header API makes it close the connection after
         * the handler; these replies are rare. */
        char length[32];
        snprintf(length, sizeof length, "%zu", len);
        mg_response_header_start(c, status);
        if (content_type)
            mg_response_header_add(c, "Content-Type", content_type, -1);
        mg_response_header_add(c, "Content-Length", length, -1);
        mg_response_header_add(c, extra_name, extra_value, -1);
        mg_response_header_send(c);
        if (len)
            mg_write(c, body, len);
        return;
    }
    /* Everything else is one write: CivetWeb's header API sends each header
     * line separately, which costs a syscall and a packet per line. */
    sms_buf_reset(&tbuf.head);
    int rc =
        sms_buf_printf(&tbuf.head, "HTTP/1.1 %d %s\r\n%s%s%sContent-Length: %zu\r\n", status,
                       mg_get_response_code_text(c, status), content_type ? "Content-Type: " : "",
                       content_type ? content_type : "", content_type ? "\r\n" : "", len);
    if (rc == 0 && extra_name)
        rc = sms_buf_printf(&tbuf.head, "%s: %s\r\n", extra_name, extra_value);
    if (rc == 0)
        rc = sms_buf_printf(&tbuf.head, "Date: %s\r\nConnection: %s\r\n\r\n", http_date(),
                            keeps_alive(c) ? "keep-alive" : "close");
    if (rc == 0 && len && len <= ONE_WRITE_BYTES)
        rc = sms_buf_append(&tbuf.head, body, len);
    if (rc < 0) {
        mg_send_http_error(c, 500, "out of memory");
        return;
    }
    mg_write(c, tbuf.head.data, tbuf.head.len);
    if (len > ONE_WRITE_BYTES)
        mg_write(c, body, len);
}

/* Error bodies are {"error": "...", "code": N}; returns the status for the
 * request handler's return value. */
static int send_error(struct mg_connection *c, int status, const char *msg, const char *extra_name,
                      const char *extra_value)
{
    json_t *o = json_pack("{s:s, s:i}", "error", msg, "code", status);
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (text) {
        send_bytes(c, status, "application/json", text, strlen(text), extra_name, extra_value);
        free(text);
    } else {
        send_bytes(c, status, NULL, NULL, 0, extra_name, extra_value);
    }
    return status;
}

static int method_is(const struct mg_request_info *ri, const char *m)
{
    return strcmp(ri->request_method, m) == 0;
}

static int handle_ping(struct mg_connection *c, void *data)
{
    sms_http_t *h = data;
    const struct mg_request_info *ri = mg_get_request_info(c);
    if (!method_is(ri, "GET") && !method_is(ri, "HEAD"))
        return send_error(c, 405, "/ping takes GET", "Allow", "GET, HEAD");
    int status = atomic_load(&h->model) ? 200 : 503;
    send_bytes(c, status, NULL, NULL, 0, NULL, NULL);
    return status;
}

static int handle_execution_parameters(struct mg_connection *c, void *data)
{
    sms_http_t *h = data;
    const struct mg_request_info *ri = mg_get_request_info(c);
    if (!method_is(ri, "GET"))
        return send_error(c, 405, "/execution-parameters takes GET", "Allow", "GET");
    char body[160];
    int n = snprintf(body, sizeof body,
                     "{\"MaxConcurrentTransforms\": %d, \"BatchStrategy\": \"MULTI_RECORD\", "
                     "\"MaxPayloadInMB\": %zu}",
                     h->cfg.workers, (h->cfg.max_content_length + (1 << 20) - 1) >> 20);
    send_bytes(c, 200, "application/json", body, (size_t)n, NULL, NULL);
    return 200;
}

static int handle_not_found(struct mg_connection *c, void *data)
{
    (void)data;
    const struct mg_request_info *ri = mg_get_request_info(c);
    char msg[300];
    snprintf(msg, sizeof msg,
             "no such path %.200s: smserve serves GET /ping, POST /invocations and GET /metrics",
             ri->local_uri ? ri->local_uri : "");
    return send_error(c, 404, msg, NULL, NULL);
}

/* The decoder for a Content-Type value (parameters such as charset are
 * ignored), or NULL when the media type is not one smserve reads. */
static sms_decode_fn decoder_for(const char *ct)
{
    if (!ct)
        return NULL;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, ";");
    while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    if ((n == 8 && !strncasecmp(ct, "text/csv", 8)) || (n == 3 && !strncasecmp(ct, "csv", 3)))
        return sms_csv_decode;
    if (n == 16 && !strncasecmp(ct, "application/json", 16))
        return sms_json_decode;
    return NULL;
}

/* Reads the whole body into tbuf.body, at most `max` bytes. Returns 0, or an
 * HTTP status (413 over the limit, 400 cut short) with msg filled. */
static int read_body(struct mg_connection *c, long long declared, size_t max, char *msg,
                     size_t msg_size)
{
    sms_buf_reset(&tbuf.body);
    size_t want = declared >= 0 ? (size_t)declared : max + 1;
    if (declared >= 0 && sms_buf_reserve(&tbuf.body, want) < 0) {
        snprintf(msg, msg_size, "out of memory for a %zu-byte body", want);
        return 500;
    }
    while (tbuf.body.len < want) {
        if (sms_buf_reserve(&tbuf.body, 65536) < 0) {
            snprintf(msg, msg_size, "out of memory reading the body");
            return 500;
        }
        size_t room = tbuf.body.cap - tbuf.body.len - 1;
        if (room > want - tbuf.body.len)
            room = want - tbuf.body.len;
        int r = mg_read(c, tbuf.body.data + tbuf.body.len, room);
        if (r <= 0)
            break;
        tbuf.body.len += (size_t)r;
    }
    tbuf.body.data[tbuf.body.len] = '\0';
    if (tbuf.body.len > max) {
        snprintf(msg, msg_size, "request body is over MAX_CONTENT_LENGTH (%zu bytes)", max);
        return 413;
    }
    if (declared >= 0 && tbuf.body.len < (size_t)declared) {
        snprintf(msg, msg_size, "request body ended after %zu of the %lld bytes declared",
                 tbuf.body.len, declared);
        return 400;
    }
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

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Serves one invocation and returns its status; the response is written. */
static int invoke(struct mg_connection *c, sms_http_t *h, sms_encoding_t *enc_out)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    char msg[600];
    if (!method_is(ri, "POST"))
        return send_error(c, 405, "/invocations takes POST", "Allow", "POST");
    sms_model_t *model = atomic_load(&h->model);
    if (!model)
        return send_error(c, 503, "the model is still loading; retry when /ping answers 200", NULL,
                          NULL);
    if (ri->content_length > (long long)h->cfg.max_content_length) {
        snprintf(msg, sizeof msg,
                 "request body of %lld bytes is over MAX_CONTENT_LENGTH (%zu bytes); send "
                 "fewer rows per request",
                 ri->content_length, h->cfg.max_content_length);
        return send_error(c, 413, msg, "Connection", "close");
    }
    const char *ct = mg_get_header(c, "Content-Type");
    sms_decode_fn decode = decoder_for(ct);
    if (!decode) {
        snprintf(msg, sizeof msg,
                 "Content-Type %s%.100s%s is not supported; send text/csv or application/json",
                 ct ? "\"" : "", ct ? ct : "(none)", ct ? "\"" : "");
        return send_error(c, 415, msg, NULL, NULL);
    }
    sms_encoding_t enc;
    const char *accept = mg_get_header(c, "Accept");
    if (sms_encoding_from_accept(accept, h->cfg.default_accept, &enc) < 0) {
        snprintf(msg, sizeof msg,
                 "Accept \"%.100s\" is not supported; accept text/csv, application/json or "
                 "application/jsonlines",
                 accept);
        return send_error(c, 406, msg, NULL, NULL);
    }
    int status = read_body(c, ri->content_length, h->cfg.max_content_length, msg, sizeof msg);
    if (status)
        return send_error(c, status, msg, status == 413 ? "Connection" : NULL, "close");
    if (tbuf.body.len == 0) {
        send_bytes(c, 204, NULL, NULL, 0, NULL, NULL);
        return 204;
    }

    sms_error_t err = {0};
    size_t num_feature = sms_model_num_feature(model);
    int rc = decode(tbuf.body.data, tbuf.body.len, num_feature, &tbuf.rows, &err);
    if (rc < 0)
        return send_error(c, err.status ? err.status : 400, err.msg, NULL, NULL);
    if (tbuf.rows.rows == 0) {
        send_bytes(c, 204, NULL, NULL, 0, NULL, NULL);
        return 204;
    }

    if (acquire_worker(h) < 0) {
        snprintf(msg, sizeof msg,
                 "all %d workers stayed busy for %d s (SAGEMAKER_MODEL_SERVER_TIMEOUT); retry "
                 "or raise SAGEMAKER_MODEL_SERVER_WORKERS",
                 h->cfg.workers, h->cfg.timeout_s);
        return send_error(c, 503, msg, NULL, NULL);
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
    if (sms_encode(enc, tbuf.preds.values, tbuf.preds.rows, tbuf.preds.cols, &tbuf.out) < 0)
        return send_error(c, 500, "out of memory encoding the response", NULL, NULL);
    send_bytes(c, 200, sms_encoding_content_type(enc), tbuf.out.data, tbuf.out.len, NULL, NULL);
    *enc_out = enc;
    return 200;
}

/* Hands a served invocation to capture, after the response has gone out. */
static void capture_invocation(sms_http_t *h, struct mg_connection *c, sms_encoding_t enc,
                               int64_t time_ms)
{
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

static int handle_invocations(struct mg_connection *c, void *data)
{
    sms_http_t *h = data;
    uint64_t start = now_us();
    int64_t time_ms = h->capture ? wall_ms() : 0;
    tbuf.model_us = 0;
    tbuf.response_bytes = 0;
    sms_matrix_reset(&tbuf.rows);
    sms_buf_reset(&tbuf.body);
    sms_encoding_t enc = SMS_ENC_CSV;
    int status = invoke(c, h, &enc);
    if (h->metrics) {
        uint64_t total = now_us() - start;
        sms_invocation_t inv = {
            .status = status,
            .model_us = tbuf.model_us,
            .overhead_us = total > tbuf.model_us ? total - tbuf.model_us : 0,
            .request_bytes = tbuf.body.len,
            .response_bytes = tbuf.response_bytes,
            .rows = status == 200 ? tbuf.rows.rows : 0,
        };
        sms_metrics_record(h->metrics, &inv);
    }
    if (h->capture && status == 200)
        capture_invocation(h, c, enc, time_ms);
    return status;
}

static int handle_metrics(struct mg_connection *c, void *data)
{
    sms_http_t *h = data;
    const struct mg_request_info *ri = mg_get_request_info(c);
    if (!method_is(ri, "GET"))
        return send_error(c, 405, "/metrics takes GET", "Allow", "GET");
    if (!h->metrics)
        return send_error(c, 404, "metrics are off (SMSERVE_METRICS=false)", NULL, NULL);
    sms_buf_reset(&tbuf.out);
    if (sms_metrics_prometheus(h->metrics, &tbuf.out) < 0)
        return send_error(c, 500, "out of memory writing the metrics", NULL, NULL);
    send_bytes(c, 200, "text/plain; version=0.0.4; charset=utf-8", tbuf.out.data, tbuf.out.len,
               NULL, NULL);
    return 200;
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
    sem_init(&h->workers, 0, (unsigned)cfg->workers);

    char port[16], threads[16], timeout_ms[32];
    snprintf(port, sizeof port, "%d", cfg->port);
    snprintf(threads, sizeof threads, "%d", cfg->connections);
    snprintf(timeout_ms, sizeof timeout_ms, "%lld", (long long)cfg->timeout_s * 1000);
    const char *options[] = {
        "listening_ports",
        port,
        "num_threads",
        threads,
        "enable_keep_alive",
        "yes",
        "keep_alive_timeout_ms",
        "60000",
        "tcp_nodelay",
        "1",
        "request_timeout_ms",
        timeout_ms,
        "enable_directory_listing",
        "no",
        NULL,
    };
    struct mg_callbacks callbacks = {0};
    callbacks.init_thread = on_thread_start;
    callbacks.exit_thread = on_thread_exit;
    callbacks.log_message = on_log;
    struct mg_init_data init = {
        .callbacks = &callbacks, .user_data = h, .configuration_options = options};
    char text[256] = "";
    unsigned code = 0;
    struct mg_error_data error = {.code = &code, .text = text, .text_buffer_size = sizeof text};
    mg_init_library(0);
    h->ctx = mg_start2(&init, &error);
    if (!h->ctx) {
        sem_destroy(&h->workers);
        free(h);
        return sms_error_set(err, 500, "cannot listen on port %d: %s", cfg->port,
                             text[0] ? text : "unknown error");
    }
    mg_set_request_handler(h->ctx, "/ping$", handle_ping, h);
    mg_set_request_handler(h->ctx, "/invocations$", handle_invocations, h);
    mg_set_request_handler(h->ctx, "/execution-parameters$", handle_execution_parameters, h);
    mg_set_request_handler(h->ctx, "/metrics$", handle_metrics, h);
    mg_set_request_handler(h->ctx, "/", handle_not_found, h);
    *out = h;
    return 0;
}

void sms_http_set_model(sms_http_t *h, sms_model_t *model)
{
    atomic_store(&h->model, model);
}

void sms_http_stop(sms_http_t *h)
{
    if (!h)
        return;
    mg_stop(h->ctx);
    sem_destroy(&h->workers);
    free(h);
}
