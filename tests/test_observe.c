/* Integration tests for data capture and metrics: the real build/smserve on
 * a free port, serving the bundled sample model. Checks that capture at
 * 100% writes exactly one SageMaker-shaped JSON line per 200 response whose
 * data round-trips byte for byte (and none for errors), the capture options
 * and encodings, 0% and 50% sampling, a tiny queue under load (drops are
 * counted, no request fails or waits), that SIGTERM flushes the queue, the
 * /metrics counts (and a real Prometheus parser on them), the CloudWatch
 * EMF lines, SMSERVE_METRICS=false, and invalid environment. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ utilities */

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        fail_msg("out of memory");
    return s;
}

/* The sample payloads, read once. */
static char *g_model_dir, *g_csv, *g_json;
static size_t g_csv_len, g_json_len;

static int group_setup(void **state)
{
    (void)state;
    g_model_dir = tu_path(SMS_SOURCE_DIR, "models/sample");
    g_csv = tu_read_file(SMS_SOURCE_DIR "/models/sample.csv", &g_csv_len);
    g_json = tu_read_file(SMS_SOURCE_DIR "/models/sample.json", &g_json_len);
    if (!g_csv || !g_json || g_csv_len == 0 || g_json_len == 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    free(g_model_dir);
    free(g_csv);
    free(g_json);
    return 0;
}

static void dump_log(const tu_server_t *s)
{
    char *log = tu_read_file(s->log_path, NULL);
    fprintf(stderr, "---- smserve log (%s) ----\n%.20000s\n----\n", s->log_path, log ? log : "");
    free(log);
}

/* Starts smserve on the sample model with env; 0, or -1 (failed check). */
static int start_server(tu_server_t *s, const char *const *env, const char *what)
{
    if (tu_server_start(s, g_model_dir, env, 1) != 0) {
        CHECK(0, "%s: smserve did not become ready", what);
        dump_log(s);
        unlink(s->log_path);
        return -1;
    }
    return 0;
}

/* SIGTERM; checks exit status 0; returns the whole log (stdout + stderr)
 * in *log when log is not NULL (caller frees), and removes the log file. */
static void stop_server(tu_server_t *s, const char *what, char **log)
{
    int alive = s->pid > 0 && waitpid(s->pid, NULL, WNOHANG) == 0;
    CHECK(alive, "%s: server died before the end of the test", what);
    int rc = -1;
    if (alive) {
        rc = tu_server_stop(s);
        CHECK(rc == 0, "%s: SIGTERM: exit status %d, want 0", what, rc);
    } else {
        s->pid = 0;
    }
    if (rc != 0)
        dump_log(s);
    if (log) {
        *log = tu_read_file(s->log_path, NULL);
        if (!*log)
            *log = strdup("");
    }
    unlink(s->log_path);
}

/* POST /invocations with optional Content-Type, Accept, inference id and
 * other header lines (more, "Name: value" joined with CRLF). */
static int post_with(int port, const char *content_type, const char *accept,
                     const char *inference_id, const char *more, const char *body, size_t len,
                     tu_response_t *r)
{
    char headers[1024] = "";
    size_t n = 0;
    if (content_type)
        n += (size_t)snprintf(headers + n, sizeof headers - n, "Content-Type: %s", content_type);
    if (accept)
        n += (size_t)snprintf(headers + n, sizeof headers - n, "%sAccept: %s", n ? "\r\n" : "",
                              accept);
    if (inference_id)
        n += (size_t)snprintf(headers + n, sizeof headers - n,
                              "%sX-Amzn-SageMaker-Inference-Id: %s", n ? "\r\n" : "", inference_id);
    if (more)
        n += (size_t)snprintf(headers + n, sizeof headers - n, "%s%s", n ? "\r\n" : "", more);
    return tu_http(port, "POST", "/invocations", n ? headers : NULL, body, len, r);
}

static int post(int port, const char *content_type, const char *accept, const char *inference_id,
                const char *body, size_t len, tu_response_t *r)
{
    return post_with(port, content_type, accept, inference_id, NULL, body, len, r);
}

/* A request that must get `status`; returns the response body length (for
 * byte counts), or 0. */
static size_t expect_status(int port, const char *method, const char *path, const char *headers,
                            const char *body, int status, const char *what)
{
    tu_response_t r;
    if (tu_http(port, method, path, headers, body, body ? strlen(body) : 0, &r) != 0) {
        CHECK(0, "%s: no response", what);
        return 0;
    }
    CHECK(r.status == status, "%s: status %d, want %d (body: %.300s)", what, r.status, status,
          r.body);
    size_t n = r.body_len;
    tu_response_free(&r);
    return n;
}

/* An error response: JSON {"error": "<non-empty>", "code": status}. */
static void check_error_body(const char *what, const tu_response_t *r, int status)
{
    CHECK(r->status == status, "%s: status %d, want %d (body: %.300s)", what, r->status, status,
          r->body ? r->body : "");
    CHECK(strncasecmp(r->content_type, "application/json", 16) == 0,
          "%s: error Content-Type '%s', want application/json", what, r->content_type);
    json_error_t jerr;
    json_t *doc = json_loadb(r->body ? r->body : "", r->body_len, 0, &jerr);
    CHECK(doc && json_is_object(doc), "%s: error body is not a JSON object: %.300s", what,
          r->body ? r->body : "");
    if (doc && json_is_object(doc)) {
        json_t *e = json_object_get(doc, "error"), *c = json_object_get(doc, "code");
        CHECK(json_is_string(e) && json_string_length(e) > 0,
              "%s: error body has no \"error\" message: %.300s", what, r->body);
        CHECK(json_is_integer(c) && json_integer_value(c) == status,
              "%s: error body \"code\" is not %d: %.300s", what, status, r->body);
    }
    json_decref(doc);
}

/* GET /metrics; the body (malloc'd) or NULL. */
static char *scrape(int port, const char *what)
{
    tu_response_t r;
    if (tu_http(port, "GET", "/metrics", NULL, NULL, 0, &r) != 0) {
        CHECK(0, "%s: GET /metrics: no response", what);
        return NULL;
    }
    CHECK(r.status == 200, "%s: GET /metrics: status %d: %.300s", what, r.status, r.body);
    CHECK(strcmp(r.content_type, "text/plain; version=0.0.4; charset=utf-8") == 0,
          "%s: GET /metrics: Content-Type '%s'", what, r.content_type);
    if (r.status != 200) {
        tu_response_free(&r);
        return NULL;
    }
    return r.body;
}

/* The value of the sample whose name and labels are exactly `series`
 * ("name{a=\"b\",...}"), or -1 when absent. */
static double prom_value(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    }
    return -1;
}

#define LABELS(ep, var) "{endpoint=\"" ep "\",variant=\"" var "\""
#define LOCAL           LABELS("local", "AllTraffic")

/* A line of the log "data capture flushed: W records written, D dropped". */
static int flushed_counts(const char *log, unsigned long long *written, unsigned long long *dropped)
{
    const char *p = log ? strstr(log, "data capture flushed: ") : NULL;
    if (!p)
        return -1;
    return sscanf(p, "data capture flushed: %llu records written, %llu dropped", written,
                  dropped) == 2
               ? 0
               : -1;
}

/* ------------------------------------------------------- keep-alive client */

typedef tu_conn_t ka_t;

static int ka_open(ka_t *k, int port)
{
    if (tu_conn_open(k, port) != 0)
        return -1;
    struct timeval tv = {.tv_sec = 20};
    setsockopt(k->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return 0;
}

/* One POST /invocations on the open connection. Returns 0 with the status
 * (and the body, malloc'd, when body_out is not NULL), or -1 on a
 * connection failure. */
static int ka_post(ka_t *k, const char *content_type, const char *body, size_t len, int *status,
                   char **body_out, size_t *body_len)
{
    char head[512];
    int hn = snprintf(head, sizeof head,
                      "POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n"
                      "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n",
                      content_type, len);
    if (tu_send_all(k->fd, head, (size_t)hn) < 0 || tu_send_all(k->fd, body, len) < 0)
        return -1;
    char *hdr_end = NULL;
    size_t need = 0;
    for (;;) {
        k->buf[k->len] = '\0';
        if (!hdr_end && (hdr_end = strstr(k->buf, "\r\n\r\n")) != NULL) {
            *hdr_end = '\0';
            const char *cl = strcasestr(k->buf, "\r\nContent-Length:");
            size_t clen = cl ? strtoul(cl + 17, NULL, 10) : 0;
            if (sscanf(k->buf, "HTTP/1.%*d %d", status) != 1)
                return -1;
            need = (size_t)(hdr_end - k->buf) + 4 + clen;
            while (need > k->cap) {
                k->cap *= 2;
                char *nb = realloc(k->buf, k->cap + 1);
                if (!nb)
                    return -1;
                hdr_end = nb + (hdr_end - k->buf);
                k->buf = nb;
            }
        }
        if (hdr_end && k->len >= need)
            break;
        if (k->len == k->cap)
            return -1; /* headers over 64 KiB */
        ssize_t r = recv(k->fd, k->buf + k->len, k->cap - k->len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        k->len += (size_t)r;
    }
    size_t body_off = (size_t)(hdr_end - k->buf) + 4;
    if (body_out) {
        *body_len = need - body_off;
        *body_out = malloc(*body_len + 1);
        memcpy(*body_out, k->buf + body_off, *body_len);
        (*body_out)[*body_len] = '\0';
    }
    memmove(k->buf, k->buf + need, k->len - need);
    k->len -= need;
    return 0;
}

/* A client thread sending `requests` POSTs over one keep-alive connection
 * (reconnecting if the server closes it). */
typedef struct load_job {
    int port;
    const char *body;
    size_t len;
    int requests;
    int ok, failed;
    double max_s;
    char first[256];
} load_job_t;

static void *load_worker(void *arg)
{
    load_job_t *job = arg;
    ka_t k;
    bool open = ka_open(&k, job->port) == 0;
    for (int i = 0; i < job->requests; i++) {
        if (!open)
            open = ka_open(&k, job->port) == 0;
        double t0 = tu_now_s();
        int status = 0;
        int rc = open ? ka_post(&k, "text/csv", job->body, job->len, &status, NULL, NULL) : -1;
        double took = tu_now_s() - t0;
        if (took > job->max_s)
            job->max_s = took;
        if (rc == 0 && status == 200) {
            job->ok++;
        } else {
            if (job->failed++ == 0)
                snprintf(job->first, sizeof job->first, "request %d: rc %d, status %d", i, rc,
                         status);
            tu_conn_close(&k);
            open = false;
        }
    }
    if (open)
        tu_conn_close(&k);
    return NULL;
}

/* Runs `threads` load_worker threads of `per_thread` requests each; returns
 * the number of 200s; reports failures and the slowest request. */
static int run_load(int port, const char *body, size_t len, int threads, int per_thread,
                    double *max_s, const char *what)
{
    load_job_t jobs[16];
    pthread_t th[16];
    assert_true(threads <= 16);
    for (int t = 0; t < threads; t++) {
        jobs[t] = (load_job_t){.port = port, .body = body, .len = len, .requests = per_thread};
        pthread_create(&th[t], NULL, load_worker, &jobs[t]);
    }
    int ok = 0;
    *max_s = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(th[t], NULL);
        ok += jobs[t].ok;
        if (jobs[t].max_s > *max_s)
            *max_s = jobs[t].max_s;
        CHECK(jobs[t].failed == 0, "%s: client %d: %d of %d requests failed; first: %s", what, t,
              jobs[t].failed, per_thread, jobs[t].first);
    }
    return ok;
}

/* ------------------------------------------------------------ capture files */

typedef struct rec {
    json_t *doc;
    char rel[600]; /* the file, relative to the capture dir */
    size_t line;   /* 0-based line in the file */
} rec_t;

typedef struct scan {
    const char *base;
    const char *endpoint, *variant;
    rec_t *recs;
    size_t n, cap;
    size_t files;
} scan_t;

static scan_t *g_scan;

static bool is_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static int num_at(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

/* A lowercase RFC 4122 version 4 UUID, 8-4-4-4-12. */
static bool is_uuid4(const char *s, size_t n)
{
    if (n != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

/* "yyyy/mm/dd/hh/mm-ss-mmm-<uuid>.jsonl" (66 characters). */
static bool file_part_ok(const char *p)
{
    if (strlen(p) != 66)
        return false;
    if (!is_digits(p, 4) || p[4] != '/' || !is_digits(p + 5, 2) || p[7] != '/' ||
        !is_digits(p + 8, 2) || p[10] != '/' || !is_digits(p + 11, 2) || p[13] != '/' ||
        !is_digits(p + 14, 2) || p[16] != '-' || !is_digits(p + 17, 2) || p[19] != '-' ||
        !is_digits(p + 20, 3) || p[23] != '-' || !is_uuid4(p + 24, 36) ||
        strcmp(p + 60, ".jsonl") != 0)
        return false;
    int month = num_at(p + 5, 2), day = num_at(p + 8, 2), hour = num_at(p + 11, 2);
    int min = num_at(p + 14, 2), sec = num_at(p + 17, 2);
    return month >= 1 && month <= 12 && day >= 1 && day <= 31 && hour < 24 && min < 60 && sec < 60;
}

static int scan_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    scan_t *sc = g_scan;
    if (flag != FTW_F)
        return 0;
    const char *rel = path + strlen(sc->base);
    while (*rel == '/')
        rel++;
    size_t el = strlen(sc->endpoint), vl = strlen(sc->variant);
    bool prefix_ok = strncmp(rel, sc->endpoint, el) == 0 && rel[el] == '/' &&
                     strncmp(rel + el + 1, sc->variant, vl) == 0 && rel[el + 1 + vl] == '/';
    CHECK(prefix_ok && file_part_ok(rel + el + vl + 2),
          "capture file %s is not %s/%s/yyyy/mm/dd/hh/mm-ss-mmm-<uuid4>.jsonl", rel, sc->endpoint,
          sc->variant);
    sc->files++;
    size_t len;
    char *text = tu_read_file(path, &len);
    if (!text) {
        CHECK(0, "cannot read %s", path);
        return 0;
    }
    CHECK(len > 0, "capture file %s is empty", rel);
    CHECK(len == 0 || text[len - 1] == '\n', "capture file %s does not end with a newline", rel);
    size_t line = 0;
    for (size_t off = 0; off < len; line++) {
        const char *nl = memchr(text + off, '\n', len - off);
        size_t ll = nl ? (size_t)(nl - (text + off)) : len - off;
        json_error_t jerr;
        json_t *doc = json_loadb(text + off, ll, JSON_REJECT_DUPLICATES, &jerr);
        CHECK(doc && json_is_object(doc), "%s line %zu is not one JSON object (%s): %.300s", rel,
              line + 1, jerr.text, text + off);
        CHECK(ll > 15 && strncmp(text + off, "{\"captureData\":{", 16) == 0,
              "%s line %zu does not start with {\"captureData\":{ (SageMaker's key order): "
              "%.100s",
              rel, line + 1, text + off);
        if (doc && json_is_object(doc)) {
            if (sc->n == sc->cap) {
                sc->cap = sc->cap ? sc->cap * 2 : 256;
                sc->recs = realloc(sc->recs, sc->cap * sizeof *sc->recs);
            }
            rec_t *r = &sc->recs[sc->n++];
            r->doc = doc;
            snprintf(r->rel, sizeof r->rel, "%s", rel);
            r->line = line;
        } else {
            json_decref(doc);
        }
        off += ll + 1;
    }
    free(text);
    return 0;
}

/* Reads every record under dir (every file must be a capture file). */
static void scan_capture(scan_t *sc, const char *dir, const char *endpoint, const char *variant)
{
    memset(sc, 0, sizeof *sc);
    sc->base = dir;
    sc->endpoint = endpoint;
    sc->variant = variant;
    g_scan = sc;
    nftw(dir, scan_one, 16, FTW_PHYS);
    g_scan = NULL;
}

static void scan_free(scan_t *sc)
{
    for (size_t i = 0; i < sc->n; i++)
        json_decref(sc->recs[i].doc);
    free(sc->recs);
    memset(sc, 0, sizeof *sc);
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Strict padded base64; malloc'd bytes, or NULL when malformed. */
static char *b64_decode(const char *s, size_t n, size_t *out_len)
{
    if (n % 4)
        return NULL;
    char *out = malloc(n / 4 * 3 + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            if (s[i + k] == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
            } else if (pad || (v[k] = b64_value(s[i + k])) < 0) {
                free(out);
                return NULL;
            }
        }
        unsigned triple =
            (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | (unsigned)v[3];
        out[o++] = (char)(triple >> 16);
        if (pad < 2)
            out[o++] = (char)(triple >> 8 & 0xff);
        if (pad < 1)
            out[o++] = (char)(triple & 0xff);
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

/* One decoded record part. */
typedef struct part {
    bool present;
    const char *content_type;
    const char *encoding;
    char *data; /* malloc'd, decoded from BASE64 when so encoded */
    size_t len;
} part_t;

typedef struct record {
    part_t in, out;
    const char *event_id;
    const char *inference_id;                     /* NULL when absent */
    const char *custom_attributes, *target_model; /* NULL when absent */
    time_t time;
} record_t;

static void record_free(record_t *r)
{
    free(r->in.data);
    free(r->out.data);
}

static size_t object_size(json_t *o)
{
    return json_is_object(o) ? json_object_size(o) : 0;
}

static void check_part(const rec_t *rc, json_t *p, const char *mode, part_t *out)
{
    memset(out, 0, sizeof *out);
    if (!p)
        return;
    out->present = true;
    CHECK(json_is_object(p) && object_size(p) == 4, "%s:%zu: %s part is not an object of 4 members",
          rc->rel, rc->line + 1, mode);
    json_t *ct = json_object_get(p, "observedContentType"), *m = json_object_get(p, "mode"),
           *d = json_object_get(p, "data"), *e = json_object_get(p, "encoding");
    CHECK(json_is_string(ct), "%s:%zu: %s observedContentType is not a string", rc->rel,
          rc->line + 1, mode);
    CHECK(json_is_string(m) && strcmp(json_string_value(m), mode) == 0,
          "%s:%zu: mode is not \"%s\"", rc->rel, rc->line + 1, mode);
    CHECK(json_is_string(d), "%s:%zu: %s data is not a string", rc->rel, rc->line + 1, mode);
    const char *enc = json_is_string(e) ? json_string_value(e) : "";
    CHECK(!strcmp(enc, "CSV") || !strcmp(enc, "JSON") || !strcmp(enc, "BASE64"),
          "%s:%zu: %s encoding \"%s\" is not CSV, JSON or BASE64", rc->rel, rc->line + 1, mode,
          enc);
    out->content_type = json_is_string(ct) ? json_string_value(ct) : "";
    out->encoding = enc;
    if (!json_is_string(d))
        return;
    if (!strcmp(enc, "BASE64")) {
        out->data = b64_decode(json_string_value(d), json_string_length(d), &out->len);
        CHECK(out->data, "%s:%zu: %s data is not valid base64", rc->rel, rc->line + 1, mode);
    } else {
        out->len = json_string_length(d);
        out->data = malloc(out->len + 1);
        memcpy(out->data, json_string_value(d), out->len + 1);
    }
}

/* Checks one record's SageMaker shape and reads it into out: captureData
 * with exactly the parts the options ask for, eventMetadata with a UUIDv4
 * eventId, an optional inferenceId and an RFC 3339 UTC inferenceTime in
 * [t0, t1] whose hour is the file's directory (and whose minute and second
 * name the file when it is the file's first line), eventVersion "0". */
static void check_record(const rec_t *rc, bool want_input, bool want_output, time_t t0, time_t t1,
                         record_t *out)
{
    memset(out, 0, sizeof *out);
    json_t *doc = rc->doc;
    CHECK(object_size(doc) == 3, "%s:%zu: the record has %zu members, want 3", rc->rel,
          rc->line + 1, object_size(doc));
    json_t *cd = json_object_get(doc, "captureData"), *md = json_object_get(doc, "eventMetadata"),
           *ver = json_object_get(doc, "eventVersion");
    CHECK(json_is_string(ver) && strcmp(json_string_value(ver), "0") == 0,
          "%s:%zu: eventVersion is not \"0\"", rc->rel, rc->line + 1);
    CHECK(json_is_object(cd), "%s:%zu: no captureData object", rc->rel, rc->line + 1);
    json_t *in = json_object_get(cd, "endpointInput"),
           *outp = json_object_get(cd, "endpointOutput");
    CHECK(!in == !want_input, "%s:%zu: endpointInput %s, want it %s", rc->rel, rc->line + 1,
          in ? "present" : "absent", want_input ? "present" : "absent");
    CHECK(!outp == !want_output, "%s:%zu: endpointOutput %s, want it %s", rc->rel, rc->line + 1,
          outp ? "present" : "absent", want_output ? "present" : "absent");
    CHECK(object_size(cd) == (size_t)want_input + (size_t)want_output,
          "%s:%zu: captureData has %zu members", rc->rel, rc->line + 1, object_size(cd));
    check_part(rc, in, "INPUT", &out->in);
    check_part(rc, outp, "OUTPUT", &out->out);

    CHECK(json_is_object(md), "%s:%zu: no eventMetadata object", rc->rel, rc->line + 1);
    json_t *id = json_object_get(md, "eventId"), *inf = json_object_get(md, "inferenceId"),
           *tm = json_object_get(md, "inferenceTime"),
           *ca = json_object_get(md, "customAttributes"),
           *target = json_object_get(md, "targetModel");
    CHECK(object_size(md) == 2u + (inf != NULL) + (ca != NULL) + (target != NULL),
          "%s:%zu: eventMetadata has %zu members", rc->rel, rc->line + 1, object_size(md));
    CHECK(!ca || json_is_string(ca), "%s:%zu: customAttributes is not a string", rc->rel,
          rc->line + 1);
    CHECK(!target || json_is_string(target), "%s:%zu: targetModel is not a string", rc->rel,
          rc->line + 1);
    out->custom_attributes = json_is_string(ca) ? json_string_value(ca) : NULL;
    out->target_model = json_is_string(target) ? json_string_value(target) : NULL;
    out->event_id = json_is_string(id) ? json_string_value(id) : "";
    CHECK(is_uuid4(out->event_id, strlen(out->event_id)), "%s:%zu: eventId \"%s\" is not a UUIDv4",
          rc->rel, rc->line + 1, out->event_id);
    if (inf) {
        CHECK(json_is_string(inf), "%s:%zu: inferenceId is not a string", rc->rel, rc->line + 1);
        out->inference_id = json_is_string(inf) ? json_string_value(inf) : "";
    }
    const char *t = json_is_string(tm) ? json_string_value(tm) : "";
    bool fmt_ok = strlen(t) == 20 && is_digits(t, 4) && t[4] == '-' && is_digits(t + 5, 2) &&
                  t[7] == '-' && is_digits(t + 8, 2) && t[10] == 'T' && is_digits(t + 11, 2) &&
                  t[13] == ':' && is_digits(t + 14, 2) && t[16] == ':' && is_digits(t + 17, 2) &&
                  t[19] == 'Z';
    CHECK(fmt_ok, "%s:%zu: inferenceTime \"%s\" is not yyyy-mm-ddThh:mm:ssZ", rc->rel, rc->line + 1,
          t);
    if (!fmt_ok)
        return;
    struct tm when = {.tm_year = num_at(t, 4) - 1900,
                      .tm_mon = num_at(t + 5, 2) - 1,
                      .tm_mday = num_at(t + 8, 2),
                      .tm_hour = num_at(t + 11, 2),
                      .tm_min = num_at(t + 14, 2),
                      .tm_sec = num_at(t + 17, 2)};
    out->time = timegm(&when);
    CHECK(out->time >= t0 && out->time <= t1,
          "%s:%zu: inferenceTime %s is outside the test's run (%lld to %lld)", rc->rel,
          rc->line + 1, t, (long long)t0, (long long)t1);
    /* The hour directory: rel is "<ep>/<var>/yyyy/mm/dd/hh/<file>". */
    const char *file = strrchr(rc->rel, '/');
    if (file && file - rc->rel >= 13) {
        const char *hour_dir = file - 13;
        char want[14];
        snprintf(want, sizeof want, "%.4s/%.2s/%.2s/%.2s", t, t + 5, t + 8, t + 11);
        CHECK(strncmp(hour_dir, want, 13) == 0,
              "%s:%zu: inferenceTime %s is not in the file's hour directory", rc->rel, rc->line + 1,
              t);
        if (rc->line == 0)
            CHECK(strncmp(file + 1, t + 14, 2) == 0 && strncmp(file + 4, t + 17, 2) == 0,
                  "%s: named mm-ss %.5s, but its first record's inferenceTime is %s", rc->rel,
                  file + 1, t);
    }
}

static char *capture_root(const char *dir, const char *endpoint, const char *variant)
{
    return xasprintf("%s/%s/%s", dir, endpoint, variant);
}

/* ------------------------------------------------------ 1. capture at 100% */

typedef struct sent {
    char *body;
    size_t len;
    const char *content_type, *accept;
    char *inference_id;              /* as sent, or NULL */
    bool id_empty;                   /* the header was sent empty */
    const char *attributes, *target; /* X-Amzn-SageMaker-Custom-Attributes, -Target-Model */
    int status;
    char *response;
    size_t response_len;
    char response_type[128];
    int matched;
} sent_t;

static void test_capture_all(void **state)
{
    (void)state;
    tu_checks_begin();
    char *dir = tu_mkdtemp();
    assert_non_null(dir);
    char *dir_env = xasprintf("SMSERVE_CAPTURE_DIR=%s", dir);
    const char *env[] = {"SMSERVE_CAPTURE_ENABLE=true", dir_env, NULL};
    tu_server_t s;
    enum { N = 200 };
    sent_t sent[N];
    memset(sent, 0, sizeof sent);
    time_t t0 = time(NULL) - 1;
    if (start_server(&s, env, "capture 100%") != 0)
        goto done;

    int served = 0;
    for (int i = 0; i < N; i++) {
        sent_t *q = &sent[i];
        /* Unique bodies (the first feature is i), CSV and JSON, with CRLF,
         * tabs, missing final newlines and parameters on the type: all of
         * it must come back byte for byte. */
        switch (i % 5) {
        case 0:
            q->body = xasprintf("%d.5,72.5,0.21,5.0,0.0,8.5,12.0,1.0\n", i);
            q->content_type = "text/csv";
            break;
        case 1:
            q->body = xasprintf("%d.5,72.5,0.21,5.0,0.0,8.5,12.0,1.0\r\n"
                                "52.0,41.0,0.58,3.0,,2.0,30.0,0.0\r\n",
                                i);
            q->content_type = "text/csv; charset=utf-8";
            q->accept = "application/json";
            break;
        case 2:
            q->body =
                xasprintf("{\"instances\": [[%d.5, 72.5, 0.21, 5.0, null, 8.5, 12.0, 1.0]]}", i);
            q->content_type = "application/json";
            break;
        case 3:
            q->body = xasprintf("{\n\t\"instances\": [\n\t\t[%d.5, 72.5, 0.21, 5.0, 0.0, 8.5, "
                                "12.0, 1.0],\n\t\t[27.0, 38.2, 0.45, 2.0, 3.0, 1.5, 18.5, 0.0]\n"
                                "\t]\n}\n",
                                i);
            q->content_type = "application/json";
            q->accept = "application/json";
            break;
        default:
            q->body = xasprintf("%d.5,72.5,0.21,5.0,0.0,8.5,12.0,1.0", i);
            q->content_type = "text/csv";
            q->accept = "text/csv";
            break;
        }
        q->len = strlen(q->body);
        if (i % 3 == 0) {
            if (i % 27 == 0)
                q->inference_id = xasprintf("quote\"and\\backslash-%d", i);
            else if (i % 21 == 0)
                q->inference_id = xasprintf("caf\xc3\xa9-%d", i);
            else
                q->inference_id = xasprintf("inference-%d-ABC_def.ghi", i);
        } else if (i % 50 == 7) {
            q->inference_id = strdup("");
            q->id_empty = true;
        }
        /* Custom attributes and a target model on some: recorded as sent. */
        if (i % 4 == 1)
            q->attributes = i % 8 == 1 ? "trace=7f3a, user=42; \"quoted\" \\ a/b" : "c=1";
        if (i % 7 == 2)
            q->target = i % 14 == 2 ? "customer-7/model.tar.gz" : "m\xc3\xa9";
        char more[300];
        snprintf(more, sizeof more, "%s%s%s%s%s",
                 q->attributes ? "X-Amzn-SageMaker-Custom-Attributes: " : "",
                 q->attributes ? q->attributes : "", q->attributes && q->target ? "\r\n" : "",
                 q->target ? "X-Amzn-SageMaker-Target-Model: " : "", q->target ? q->target : "");
        tu_response_t r;
        if (post_with(s.port, q->content_type, q->accept, q->inference_id, *more ? more : NULL,
                      q->body, q->len, &r) != 0) {
            CHECK(0, "capture request %d: no response", i);
            continue;
        }
        q->status = r.status;
        q->response = r.body;
        q->response_len = r.body_len;
        snprintf(q->response_type, sizeof q->response_type, "%s", r.content_type);
        CHECK(r.status == 200, "capture request %d: status %d: %.300s", i, r.status, r.body);
        served += r.status == 200;

        /* Errors in between: never captured. */
        if (i % 20 == 10) {
            tu_response_t e;
            const char *bad_csv = "1,2,three\n";
            if (post(s.port, "text/csv", NULL, "bad-id", bad_csv, strlen(bad_csv), &e) == 0) {
                check_error_body("malformed CSV", &e, 400);
                tu_response_free(&e);
            }
            if (post(s.port, "text/plain", NULL, NULL, g_csv, g_csv_len, &e) == 0) {
                check_error_body("text/plain", &e, 415);
                tu_response_free(&e);
            }
            if (post(s.port, "text/csv", "image/png", NULL, g_csv, g_csv_len, &e) == 0) {
                check_error_body("Accept image/png", &e, 406);
                tu_response_free(&e);
            }
            expect_status(s.port, "GET", "/invocations", NULL, NULL, 405, "GET /invocations");
            expect_status(s.port, "POST", "/invocations", "Content-Type: text/csv", "", 204,
                          "empty body");
        }
    }
    CHECK(served == N, "%d of %d requests served", served, N);
    char *log = NULL;
    stop_server(&s, "capture 100%", &log);
    time_t t1 = time(NULL) + 1;
    unsigned long long w = 0, d = 0;
    CHECK(flushed_counts(log, &w, &d) == 0 && w == N && d == 0,
          "the shutdown log does not say \"data capture flushed: %d records written, 0 "
          "dropped\":\n%s",
          N, log);
    free(log);

    scan_t sc;
    scan_capture(&sc, dir, "local", "AllTraffic");
    CHECK(sc.n == N, "%zu records in %zu files, want %d", sc.n, sc.files, N);
    for (size_t k = 0; k < sc.n; k++) {
        record_t rec;
        check_record(&sc.recs[k], true, true, t0, t1, &rec);
        /* Event ids are unique. */
        for (size_t j = 0; j < k; j++) {
            json_t *other =
                json_object_get(json_object_get(sc.recs[j].doc, "eventMetadata"), "eventId");
            if (json_is_string(other) && strcmp(json_string_value(other), rec.event_id) == 0)
                CHECK(0, "records %zu and %zu share eventId %s", j, k, rec.event_id);
        }
        sent_t *q = NULL;
        for (int i = 0; i < N && rec.in.data; i++)
            if (sent[i].len == rec.in.len && memcmp(sent[i].body, rec.in.data, rec.in.len) == 0)
                q = &sent[i];
        CHECK(q, "%s:%zu: the input data matches no request sent: %.200s", sc.recs[k].rel,
              sc.recs[k].line + 1, rec.in.data ? rec.in.data : "(none)");
        if (q) {
            int i = (int)(q - sent);
            CHECK(q->matched++ == 0, "request %d is captured twice", i);
            CHECK(strcmp(rec.in.content_type, q->content_type) == 0,
                  "request %d: input observedContentType \"%s\", sent \"%s\"", i,
                  rec.in.content_type, q->content_type);
            const char *want_enc = strncmp(q->content_type, "text/csv", 8) == 0 ? "CSV" : "JSON";
            CHECK(strcmp(rec.in.encoding, want_enc) == 0, "request %d: input encoding %s, want %s",
                  i, rec.in.encoding, want_enc);
            CHECK(rec.out.data && rec.out.len == q->response_len &&
                      memcmp(rec.out.data, q->response, q->response_len) == 0,
                  "request %d: output data \"%.200s\" is not the response \"%.200s\"", i,
                  rec.out.data ? rec.out.data : "(none)", q->response ? q->response : "");
            CHECK(rec.out.content_type && strcmp(rec.out.content_type, q->response_type) == 0,
                  "request %d: output observedContentType \"%s\", response Content-Type \"%s\"", i,
                  rec.out.content_type ? rec.out.content_type : "", q->response_type);
            const char *want_out = strncmp(q->response_type, "text/csv", 8) == 0 ? "CSV" : "JSON";
            CHECK(rec.out.encoding && strcmp(rec.out.encoding, want_out) == 0,
                  "request %d: output encoding %s, want %s", i,
                  rec.out.encoding ? rec.out.encoding : "", want_out);
            if (q->inference_id && !q->id_empty)
                CHECK(rec.inference_id && strcmp(rec.inference_id, q->inference_id) == 0,
                      "request %d: inferenceId \"%s\", sent \"%s\"", i,
                      rec.inference_id ? rec.inference_id : "(absent)", q->inference_id);
            else
                CHECK(!rec.inference_id, "request %d: inferenceId \"%s\", but %s", i,
                      rec.inference_id, q->id_empty ? "it was sent empty" : "none was sent");
            CHECK(!q->attributes == !rec.custom_attributes &&
                      (!q->attributes || !strcmp(q->attributes, rec.custom_attributes)),
                  "request %d: customAttributes \"%s\", sent \"%s\"", i,
                  rec.custom_attributes ? rec.custom_attributes : "(absent)",
                  q->attributes ? q->attributes : "(none)");
            CHECK(!q->target == !rec.target_model &&
                      (!q->target || !strcmp(q->target, rec.target_model)),
                  "request %d: targetModel \"%s\", sent \"%s\"", i,
                  rec.target_model ? rec.target_model : "(absent)",
                  q->target ? q->target : "(none)");
        }
        record_free(&rec);
    }
    for (int i = 0; i < N; i++)
        CHECK(sent[i].status != 200 || sent[i].matched == 1, "request %d: captured %d times", i,
              sent[i].matched);
    scan_free(&sc);
done:
    for (int i = 0; i < N; i++) {
        free(sent[i].body);
        free(sent[i].inference_id);
        free(sent[i].response);
    }
    tu_rmtree(dir);
    free(dir);
    free(dir_env);
    tu_checks_end();
}

/* ------------------------------------------- 2. capture options, encodings */

static void test_capture_options(void **state)
{
    (void)state;
    tu_checks_begin();
    char *dir = tu_mkdtemp();
    assert_non_null(dir);
    char *dir_env = xasprintf("SMSERVE_CAPTURE_DIR=%s", dir);
    time_t t0 = time(NULL) - 1;

    /* Input only; text/csv is not in the CSV list, so it is BASE64. */
    {
        const char *env[] = {"SMSERVE_CAPTURE_ENABLE=1", dir_env, "SMSERVE_CAPTURE_OPTIONS=Input",
                             "SMSERVE_CAPTURE_CSV_CONTENT_TYPES=text/x-other", NULL};
        tu_server_t s;
        if (start_server(&s, env, "options Input") == 0) {
            tu_response_t r;
            if (post(s.port, "text/csv", NULL, NULL, g_csv, g_csv_len, &r) == 0) {
                CHECK(r.status == 200, "Input: CSV status %d", r.status);
                tu_response_free(&r);
            }
            if (post(s.port, "application/json", NULL, NULL, g_json, g_json_len, &r) == 0) {
                CHECK(r.status == 200, "Input: JSON status %d", r.status);
                tu_response_free(&r);
            }
            stop_server(&s, "options Input", NULL);
        }
        scan_t sc;
        scan_capture(&sc, dir, "local", "AllTraffic");
        CHECK(sc.n == 2, "Input: %zu records, want 2", sc.n);
        int csv = 0, json = 0;
        for (size_t k = 0; k < sc.n; k++) {
            record_t rec;
            check_record(&sc.recs[k], true, false, t0, time(NULL) + 1, &rec);
            if (rec.in.content_type && !strcmp(rec.in.content_type, "text/csv")) {
                csv++;
                CHECK(!strcmp(rec.in.encoding, "BASE64"),
                      "Input: text/csv (not in the CSV list) encoded %s, want BASE64",
                      rec.in.encoding);
                CHECK(rec.in.data && rec.in.len == g_csv_len &&
                          !memcmp(rec.in.data, g_csv, g_csv_len),
                      "Input: the BASE64 data does not decode to the CSV body sent");
                /* The raw data really is base64 text, not the CSV. */
                json_t *raw =
                    json_object_get(json_object_get(json_object_get(sc.recs[k].doc, "captureData"),
                                                    "endpointInput"),
                                    "data");
                CHECK(json_is_string(raw) && !strchr(json_string_value(raw), ','),
                      "Input: BASE64 data holds a comma");
            } else if (rec.in.content_type && !strcmp(rec.in.content_type, "application/json")) {
                json++;
                CHECK(!strcmp(rec.in.encoding, "JSON"), "Input: application/json encoded %s",
                      rec.in.encoding);
                CHECK(rec.in.data && rec.in.len == g_json_len &&
                          !memcmp(rec.in.data, g_json, g_json_len),
                      "Input: JSON data is not the body sent");
            }
            record_free(&rec);
        }
        CHECK(csv == 1 && json == 1, "Input: %d CSV and %d JSON records, want 1 and 1", csv, json);
        scan_free(&sc);
        tu_rmtree(dir);
        mkdir(dir, 0700);
    }

    /* Output only (case-insensitive); JSON responses of a type listed as
     * CSV are recorded as CSV: the lists, not the bytes, decide. */
    {
        const char *env[] = {"SMSERVE_CAPTURE_ENABLE=yes",
                             dir_env,
                             "SMSERVE_CAPTURE_OPTIONS=output",
                             "SMSERVE_CAPTURE_CSV_CONTENT_TYPES=text/csv, application/json",
                             "SMSERVE_CAPTURE_JSON_CONTENT_TYPES=application/x-nothing",
                             NULL};
        tu_server_t s;
        char *resp = NULL;
        size_t resp_len = 0;
        if (start_server(&s, env, "options Output") == 0) {
            tu_response_t r;
            if (post(s.port, "text/csv", "application/json", "out-1", g_csv, g_csv_len, &r) == 0) {
                CHECK(r.status == 200, "Output: status %d", r.status);
                resp = r.body;
                resp_len = r.body_len;
            }
            stop_server(&s, "options Output", NULL);
        }
        scan_t sc;
        scan_capture(&sc, dir, "local", "AllTraffic");
        CHECK(sc.n == 1, "Output: %zu records, want 1", sc.n);
        for (size_t k = 0; k < sc.n; k++) {
            record_t rec;
            check_record(&sc.recs[k], false, true, t0, time(NULL) + 1, &rec);
            CHECK(rec.out.content_type && !strcmp(rec.out.content_type, "application/json"),
                  "Output: observedContentType %s", rec.out.content_type);
            CHECK(rec.out.encoding && !strcmp(rec.out.encoding, "CSV"),
                  "Output: application/json listed as CSV is encoded %s", rec.out.encoding);
            CHECK(resp && rec.out.data && rec.out.len == resp_len &&
                      !memcmp(rec.out.data, resp, resp_len),
                  "Output: data \"%s\" is not the response \"%s\"", rec.out.data, resp);
            CHECK(rec.inference_id && !strcmp(rec.inference_id, "out-1"), "Output: inferenceId %s",
                  rec.inference_id);
            record_free(&rec);
        }
        scan_free(&sc);
        free(resp);
    }
    tu_rmtree(dir);
    free(dir);
    free(dir_env);
    tu_checks_end();
}

/* ------------------------------------------------------------ 3. sampling */

static void test_sampling(void **state)
{
    (void)state;
    tu_checks_begin();
    char *dir = tu_mkdtemp();
    assert_non_null(dir);
    char *dir_env = xasprintf("SMSERVE_CAPTURE_DIR=%s", dir);
    static const struct {
        const char *pct;
        int requests, lo, hi;
    } cases[] = {
        {"SMSERVE_CAPTURE_SAMPLING_PERCENTAGE=0", 100, 0, 0},
        /* binomial(400, 0.5): sd 10; 140-260 is 6 sd */
        {"SMSERVE_CAPTURE_SAMPLING_PERCENTAGE=50", 400, 140, 260},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const char *env[] = {"SMSERVE_CAPTURE_ENABLE=true", dir_env, cases[c].pct, NULL};
        tu_server_t s;
        if (start_server(&s, env, cases[c].pct) != 0)
            continue;
        double max_s;
        int ok = run_load(s.port, g_csv, g_csv_len, 2, cases[c].requests / 2, &max_s, cases[c].pct);
        CHECK(ok == cases[c].requests, "%s: %d of %d requests served", cases[c].pct, ok,
              cases[c].requests);
        sleep_ms(100);
        char *text = scrape(s.port, cases[c].pct);
        double written =
            text ? prom_value(text, "smserve_capture_records_written_total" LOCAL "}") : -1;
        double dropped =
            text ? prom_value(text, "smserve_capture_records_dropped_total" LOCAL "}") : -1;
        free(text);
        char *log = NULL;
        stop_server(&s, cases[c].pct, &log);
        unsigned long long w = 0, d = 0;
        CHECK(flushed_counts(log, &w, &d) == 0, "%s: no \"data capture flushed\" line:\n%s",
              cases[c].pct, log);
        free(log);
        scan_t sc;
        scan_capture(&sc, dir, "local", "AllTraffic");
        CHECK(sc.n >= (size_t)cases[c].lo && sc.n <= (size_t)cases[c].hi,
              "%s: %zu records after %d requests, want %d to %d", cases[c].pct, sc.n,
              cases[c].requests, cases[c].lo, cases[c].hi);
        CHECK(w == sc.n && d == 0, "%s: the log says %llu written, %llu dropped; files hold %zu",
              cases[c].pct, w, d, sc.n);
        CHECK(dropped == 0, "%s: /metrics dropped %g", cases[c].pct, dropped);
        CHECK(written >= 0 && written <= (double)sc.n, "%s: /metrics written %g, files %zu",
              cases[c].pct, written, sc.n);
        if (cases[c].hi == 0)
            CHECK(sc.files == 0, "%s: %zu capture files were created", cases[c].pct, sc.files);
        scan_free(&sc);
        tu_rmtree(dir);
        mkdir(dir, 0700);
    }
    tu_rmtree(dir);
    free(dir);
    free(dir_env);
    tu_checks_end();
}

/* ------------------------------------------------- 4. small queue, load */

/* Every record in sc is well formed, from the last two minutes, and carries
 * exactly `body` as its input. */
static void check_all_inputs(const char *what, const scan_t *sc, const char *body, size_t len)
{
    time_t now = time(NULL);
    for (size_t k = 0; k < sc->n; k++) {
        record_t rec;
        check_record(&sc->recs[k], true, true, now - 120, now + 1, &rec);
        CHECK(rec.in.data && rec.in.len == len && !memcmp(rec.in.data, body, len),
              "%s: %s:%zu: input data is not the body sent", what, sc->recs[k].rel,
              sc->recs[k].line + 1);
        record_free(&rec);
    }
}

static void test_small_queue_under_load(void **state)
{
    (void)state;
    tu_checks_begin();
    char *dir = tu_mkdtemp();
    assert_non_null(dir);
    char *dir_env = xasprintf("SMSERVE_CAPTURE_DIR=%s", dir);
    /* 30 rows: a record of about 1.7 KB, so 4 KB holds two of them. */
    size_t body_len = g_csv_len * 10;
    char *body = malloc(body_len + 1);
    for (int i = 0; i < 10; i++)
        memcpy(body + (size_t)i * g_csv_len, g_csv, g_csv_len);
    body[body_len] = '\0';
    const char *env[] = {"SMSERVE_CAPTURE_ENABLE=true", dir_env, "SMSERVE_CAPTURE_QUEUE_BYTES=4096",
                         NULL};
    tu_server_t s;
    enum { THREADS = 4, PER_THREAD = 500, TOTAL = THREADS * PER_THREAD };
    if (start_server(&s, env, "small queue") != 0)
        goto done;
    double max_s;
    double t0 = tu_now_s();
    int ok = run_load(s.port, body, body_len, THREADS, PER_THREAD, &max_s, "small queue");
    double took = tu_now_s() - t0;
    fprintf(stderr, "small queue: %d requests in %.2f s (%.0f/s), slowest %.1f ms\n", TOTAL, took,
            TOTAL / took, max_s * 1e3);
    CHECK(ok == TOTAL, "small queue: %d of %d requests answered 200", ok, TOTAL);
    CHECK(max_s <= 1.0 * tu_slow_factor(),
          "small queue: the slowest request took %.3f s (limit %.1f s)", max_s,
          1.0 * tu_slow_factor());
    sleep_ms(200);
    char *text = scrape(s.port, "small queue");
    double m_written =
        text ? prom_value(text, "smserve_capture_records_written_total" LOCAL "}") : -1;
    double m_dropped =
        text ? prom_value(text, "smserve_capture_records_dropped_total" LOCAL "}") : -1;
    double m_inv = text ? prom_value(text, "smserve_invocations_total" LOCAL "}") : -1;
    free(text);
    char *log = NULL;
    stop_server(&s, "small queue", &log);
    unsigned long long w = 0, d = 0;
    CHECK(flushed_counts(log, &w, &d) == 0, "small queue: no \"data capture flushed\" line:\n%s",
          log);
    free(log);
    scan_t sc;
    scan_capture(&sc, dir, "local", "AllTraffic");
    fprintf(stderr, "small queue: %llu written (%zu lines in %zu files), %llu dropped\n", w, sc.n,
            sc.files, d);
    CHECK(w == sc.n, "small queue: the log says %llu written, the files hold %zu lines", w, sc.n);
    CHECK(w + d == TOTAL, "small queue: written %llu + dropped %llu != %d requests", w, d, TOTAL);
    CHECK(d > 0, "small queue: nothing dropped with a 4 KB queue under load");
    CHECK(w > 0, "small queue: nothing written");
    CHECK(m_inv == TOTAL, "small queue: /metrics invocations %g, want %d", m_inv, TOTAL);
    CHECK(m_dropped == (double)d, "small queue: /metrics dropped %g, the final count is %llu",
          m_dropped, d);
    CHECK(m_written >= 0 && m_written <= (double)w,
          "small queue: /metrics written %g, more than the final %llu", m_written, w);
    check_all_inputs("small queue", &sc, body, body_len);
    scan_free(&sc);
done:
    tu_rmtree(dir);
    free(dir);
    free(dir_env);
    free(body);
    tu_checks_end();
}

/* ------------------------------------------------------ 5. SIGTERM flushes */

static json_t **emf_lines(const char *log, size_t *count);
static void emf_free(json_t **lines, size_t n);

static void test_sigterm_flushes(void **state)
{
    (void)state;
    tu_checks_begin();
    char *dir = tu_mkdtemp();
    assert_non_null(dir);
    char *dir_env = xasprintf("SMSERVE_CAPTURE_DIR=%s", dir);
    const char *env[] = {"SMSERVE_CAPTURE_ENABLE=true", dir_env, NULL};
    tu_server_t s;
    enum { TOTAL = 300 };
    if (start_server(&s, env, "SIGTERM flush") != 0)
        goto done;
    double max_s;
    int ok = run_load(s.port, g_csv, g_csv_len, 4, TOTAL / 4, &max_s, "SIGTERM flush");
    CHECK(ok == TOTAL, "SIGTERM flush: %d of %d served", ok, TOTAL);
    char *log = NULL;
    stop_server(&s, "SIGTERM flush", &log); /* at once: no wait for the writer */
    unsigned long long w = 0, d = 0;
    CHECK(flushed_counts(log, &w, &d) == 0 && w == TOTAL && d == 0,
          "SIGTERM flush: the log does not say %d written, 0 dropped:\n%s", TOTAL, log);
    /* The last EMF line (at shutdown) comes after the flush: it counts
     * every record written. */
    size_t n_emf;
    json_t **emf = emf_lines(log, &n_emf);
    long long emf_written = 0, emf_inv = 0;
    for (size_t i = 0; i < n_emf; i++) {
        emf_written += json_integer_value(json_object_get(emf[i], "CaptureRecordsWritten"));
        emf_inv += json_integer_value(json_object_get(emf[i], "Invocations"));
    }
    CHECK(n_emf >= 1, "SIGTERM flush: no EMF line at shutdown");
    CHECK(emf_written == TOTAL && emf_inv == TOTAL,
          "SIGTERM flush: EMF CaptureRecordsWritten %lld, Invocations %lld, want %d", emf_written,
          emf_inv, TOTAL);
    emf_free(emf, n_emf);
    free(log);
    scan_t sc;
    scan_capture(&sc, dir, "local", "AllTraffic");
    CHECK(sc.n == TOTAL, "SIGTERM flush: %zu records in the files, want %d", sc.n, TOTAL);
    check_all_inputs("SIGTERM flush", &sc, g_csv, g_csv_len);
    scan_free(&sc);
done:
    tu_rmtree(dir);
    free(dir);
    free(dir_env);
    tu_checks_end();
}

/* ---------------------------------------------------------- 6. /metrics */

static void test_metrics_counts(void **state)
{
    (void)state;
    tu_checks_begin();
    tu_server_t s;
    if (start_server(&s, NULL, "metrics") != 0) {
        tu_checks_end();
        return;
    }
    size_t req_bytes = 0, resp_bytes = 0;
    tu_response_t r;
    for (int i = 0; i < 7; i++) {
        if (post(s.port, "text/csv", NULL, NULL, g_csv, g_csv_len, &r) == 0) {
            CHECK(r.status == 200, "metrics: good CSV %d: status %d", i, r.status);
            req_bytes += g_csv_len;
            resp_bytes += r.body_len;
            tu_response_free(&r);
        } else {
            CHECK(0, "metrics: good CSV %d: no response", i);
        }
    }
    static const char *const malformed[] = {"1,2,x\n", "1,2,3\n", "\"unterminated,1\n"};
    for (int i = 0; i < 3; i++) {
        if (post(s.port, "text/csv", NULL, NULL, malformed[i], strlen(malformed[i]), &r) == 0) {
            check_error_body("metrics: malformed CSV", &r, 400);
            req_bytes += strlen(malformed[i]); /* read before it is refused */
            resp_bytes += r.body_len;
            tu_response_free(&r);
        } else {
            CHECK(0, "metrics: malformed %d: no response", i);
        }
    }
    static const char *const unsupported[] = {"text/plain", "application/x-protobuf"};
    for (int i = 0; i < 2; i++) {
        if (post(s.port, unsupported[i], NULL, NULL, g_csv, g_csv_len, &r) == 0) {
            check_error_body("metrics: unsupported type", &r, 415);
            /* refused on its Content-Type: the body is never read */
            resp_bytes += r.body_len;
            tu_response_free(&r);
        } else {
            CHECK(0, "metrics: 415 %d: no response", i);
        }
    }
    resp_bytes +=
        expect_status(s.port, "GET", "/invocations", NULL, NULL, 405, "metrics: GET /invocations");
    for (int i = 0; i < 5; i++)
        expect_status(s.port, "GET", "/ping", NULL, NULL, 200, "metrics: /ping");
    char *first = scrape(s.port, "metrics (first scrape)");
    free(first);
    char *text = scrape(s.port, "metrics");
    if (!text)
        goto stop;

    struct {
        const char *series;
        double want;
    } expect[] = {
        {"smserve_invocations_total" LOCAL "}", 13},
        {"smserve_invocation_errors_total" LOCAL ",class=\"4xx\"}", 6},
        {"smserve_invocation_errors_total" LOCAL ",class=\"5xx\"}", 0},
        {"smserve_model_latency_seconds_count" LOCAL "}", 13},
        {"smserve_model_latency_seconds_bucket" LOCAL ",le=\"+Inf\"}", 13},
        {"smserve_overhead_latency_seconds_count" LOCAL "}", 13},
        {"smserve_overhead_latency_seconds_bucket" LOCAL ",le=\"+Inf\"}", 13},
        {"smserve_rows_total" LOCAL "}", 7 * 3},
        {"smserve_request_rows_count" LOCAL "}", 13},
        {"smserve_request_rows_sum" LOCAL "}", 7 * 3},
        /* 6 errors with 0 rows and no 1-row request: le="1" holds 6 */
        {"smserve_request_rows_bucket" LOCAL ",le=\"1\"}", 6},
        {"smserve_request_rows_bucket" LOCAL ",le=\"4\"}", 13},
        {"smserve_request_bytes_total" LOCAL "}", (double)req_bytes},
        {"smserve_response_bytes_total" LOCAL "}", (double)resp_bytes},
        {"smserve_capture_records_written_total" LOCAL "}", 0},
        {"smserve_capture_records_dropped_total" LOCAL "}", 0},
    };
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        double got = prom_value(text, expect[i].series);
        CHECK(got == expect[i].want, "metrics: %s = %g, want %g", expect[i].series, got,
              expect[i].want);
    }
    double sum = prom_value(text, "smserve_model_latency_seconds_sum" LOCAL "}");
    double osum = prom_value(text, "smserve_overhead_latency_seconds_sum" LOCAL "}");
    double p50 =
        prom_value(text, "smserve_model_latency_quantile_seconds" LOCAL ",quantile=\"0.5\"}");
    double p99 =
        prom_value(text, "smserve_model_latency_quantile_seconds" LOCAL ",quantile=\"0.99\"}");
    double setup = prom_value(text, "smserve_model_setup_seconds" LOCAL "}");
    CHECK(sum > 0 && sum < 13.0, "metrics: model latency sum %g s", sum);
    CHECK(osum > 0 && osum < 13.0, "metrics: overhead latency sum %g s", osum);
    CHECK(p50 >= 0 && p99 >= p50 && p99 < 1.0, "metrics: model p50 %g, p99 %g", p50, p99);
    CHECK(setup > 0 && setup < 10.0 * tu_slow_factor(), "metrics: model setup %g s", setup);

    /* A real Prometheus parser. */
    char *tmp = tu_mkdtemp();
    char *path = tu_path(tmp, "metrics.txt");
    tu_write_file(path, text, strlen(text));
    char *py_out = NULL;
    const char *argv[] = {"/usr/bin/python3",
                          SMS_SOURCE_DIR "/tests/check_prometheus.py",
                          path,
                          "smserve_invocations_total{endpoint=local,variant=AllTraffic}=13",
                          "smserve_invocation_errors_total{class=4xx}=6",
                          "smserve_invocation_errors_total{class=5xx}=0",
                          "smserve_model_latency_seconds_count=13",
                          "smserve_overhead_latency_seconds_count=13",
                          "smserve_rows_total=21",
                          "smserve_capture_records_dropped_total=0",
                          NULL};
    int rc = tu_run(argv, NULL, &py_out);
    CHECK(rc == 0, "check_prometheus.py exit %d:\n%s\n---- the exposition ----\n%.4000s", rc,
          py_out, text);
    free(py_out);
    tu_rmtree(tmp);
    free(tmp);
    free(path);
    free(text);
stop:
    stop_server(&s, "metrics", NULL);
    tu_checks_end();
}

/* ----------------------------------------------------------------- 7. EMF */

/* The EMF lines of a log: JSON objects with "_aws". */
static json_t **emf_lines(const char *log, size_t *count)
{
    size_t n = 0, cap = 8;
    json_t **out = malloc(cap * sizeof *out);
    for (const char *p = log; p && *p;) {
        size_t l = strcspn(p, "\n");
        if (l && p[0] == '{' && memmem(p, l, "\"_aws\"", 6)) {
            json_error_t jerr;
            json_t *doc = json_loadb(p, l, JSON_REJECT_DUPLICATES, &jerr);
            CHECK(json_is_object(doc) && json_is_object(json_object_get(doc, "_aws")),
                  "an EMF line is not a JSON object with \"_aws\" (%s): %.300s", jerr.text, p);
            if (json_is_object(doc)) {
                if (n == cap)
                    out = realloc(out, (cap *= 2) * sizeof *out);
                out[n++] = doc;
            } else {
                json_decref(doc);
            }
        }
        p += l + (p[l] == '\n');
    }
    *count = n;
    return out;
}

static void emf_free(json_t **lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(lines[i]);
    free(lines);
}

/* The unit a line declares for metric `name`, or NULL. */
static const char *emf_unit(json_t *line, const char *name)
{
    json_t *cwm = json_object_get(json_object_get(line, "_aws"), "CloudWatchMetrics");
    json_t *d = json_array_get(cwm, 0);
    json_t *metrics = json_object_get(d, "Metrics");
    for (size_t i = 0; i < json_array_size(metrics); i++) {
        json_t *m = json_array_get(metrics, i);
        json_t *nm = json_object_get(m, "Name");
        if (json_is_string(nm) && !strcmp(json_string_value(nm), name)) {
            json_t *u = json_object_get(m, "Unit");
            return json_is_string(u) ? json_string_value(u) : "";
        }
    }
    return NULL;
}

static const char *str_or(const char *s)
{
    return s ? s : "";
}

/* Checks one EMF line's shape. */
static void check_emf_line(json_t *line, size_t idx, const char *ns, const char *endpoint,
                           const char *variant, long long t0_ms, long long t1_ms, bool capture)
{
    json_t *aws = json_object_get(line, "_aws");
    json_t *ts = json_object_get(aws, "Timestamp");
    CHECK(json_is_integer(ts) && json_integer_value(ts) >= t0_ms && json_integer_value(ts) <= t1_ms,
          "EMF line %zu: Timestamp %lld is not in [%lld, %lld]", idx,
          json_is_integer(ts) ? (long long)json_integer_value(ts) : -1LL, t0_ms, t1_ms);
    json_t *cwm = json_object_get(aws, "CloudWatchMetrics");
    CHECK(json_is_array(cwm) && json_array_size(cwm) == 1,
          "EMF line %zu: CloudWatchMetrics is not an array of one directive", idx);
    json_t *d = json_array_get(cwm, 0);
    json_t *nsv = json_object_get(d, "Namespace");
    CHECK(json_is_string(nsv) && !strcmp(json_string_value(nsv), ns),
          "EMF line %zu: Namespace %s, want %s", idx,
          json_is_string(nsv) ? json_string_value(nsv) : "?", ns);
    json_t *dims = json_object_get(d, "Dimensions");
    json_t *set = json_array_get(dims, 0);
    CHECK(json_array_size(dims) == 1 && json_array_size(set) == 2 &&
              !strcmp(str_or(json_string_value(json_array_get(set, 0))), "EndpointName") &&
              !strcmp(str_or(json_string_value(json_array_get(set, 1))), "VariantName"),
          "EMF line %zu: Dimensions are not [[\"EndpointName\",\"VariantName\"]]", idx);
    json_t *ep = json_object_get(line, "EndpointName"), *va = json_object_get(line, "VariantName");
    CHECK(json_is_string(ep) && !strcmp(json_string_value(ep), endpoint),
          "EMF line %zu: EndpointName %s, want %s", idx,
          json_is_string(ep) ? json_string_value(ep) : "?", endpoint);
    CHECK(json_is_string(va) && !strcmp(json_string_value(va), variant),
          "EMF line %zu: VariantName %s, want %s", idx,
          json_is_string(va) ? json_string_value(va) : "?", variant);
    /* Every declared metric has a member of that name. */
    json_t *metrics = json_object_get(d, "Metrics");
    CHECK(json_is_array(metrics) && json_array_size(metrics) > 0, "EMF line %zu: no Metrics", idx);
    for (size_t i = 0; i < json_array_size(metrics); i++) {
        const char *nm = json_string_value(json_object_get(json_array_get(metrics, i), "Name"));
        CHECK(nm && json_object_get(line, nm), "EMF line %zu: declared metric %s has no value", idx,
              nm ? nm : "(no name)");
    }
    static const char *const counts[] = {"Invocations", "Invocation4XXErrors",
                                         "Invocation5XXErrors"};
    for (size_t i = 0; i < 3; i++) {
        const char *u = emf_unit(line, counts[i]);
        CHECK(u && !strcmp(u, "Count"), "EMF line %zu: %s unit %s, want Count", idx, counts[i],
              u ? u : "(undeclared)");
        json_t *v = json_object_get(line, counts[i]);
        CHECK(json_is_integer(v) && json_integer_value(v) >= 0, "EMF line %zu: %s is not a count",
              idx, counts[i]);
    }
    long long inv = json_integer_value(json_object_get(line, "Invocations"));
    static const char *const lat[] = {"ModelLatency", "OverheadLatency"};
    for (size_t i = 0; i < 2; i++) {
        json_t *a = json_object_get(line, lat[i]);
        if (!a) {
            CHECK(inv == 0, "EMF line %zu: no %s with %lld invocations", idx, lat[i], inv);
            continue;
        }
        const char *u = emf_unit(line, lat[i]);
        CHECK(u && !strcmp(u, "Microseconds"), "EMF line %zu: %s unit %s, want Microseconds", idx,
              lat[i], u ? u : "(undeclared)");
        CHECK(json_is_array(a) && json_array_size(a) >= 1 && json_array_size(a) <= 100,
              "EMF line %zu: %s is not an array of 1 to 100 values", idx, lat[i]);
        /* Up to 100 invocations, one value each (CloudWatch counts each
         * array value as a sample). */
        if (inv <= 100)
            CHECK((long long)json_array_size(a) == inv,
                  "EMF line %zu: %s holds %zu values for %lld invocations", idx, lat[i],
                  json_array_size(a), inv);
        for (size_t k = 0; k < json_array_size(a); k++) {
            json_t *v = json_array_get(a, k);
            CHECK(json_is_number(v) && json_number_value(v) >= 0 && json_number_value(v) < 60e6,
                  "EMF line %zu: %s[%zu] is not a latency in microseconds", idx, lat[i], k);
        }
    }
    if (json_object_get(line, "ModelSetupTime")) {
        const char *u = emf_unit(line, "ModelSetupTime");
        CHECK(u && !strcmp(u, "Microseconds"), "EMF line %zu: ModelSetupTime unit %s", idx,
              u ? u : "(undeclared)");
    }
    bool has_cap = json_object_get(line, "CaptureRecordsWritten") != NULL;
    CHECK(has_cap == capture, "EMF line %zu: capture metrics %s, capture is %s", idx,
          has_cap ? "present" : "absent", capture ? "on" : "off");
}

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_emf(void **state)
{
    (void)state;
    tu_checks_begin();
    /* Defaults, a 1 s interval. */
    {
        const char *env[] = {"SMSERVE_METRICS_INTERVAL=1", NULL};
        tu_server_t s;
        long long t0 = wall_ms() - 1000;
        if (start_server(&s, env, "EMF") == 0) {
            int good = 0, bad = 0;
            tu_response_t r;
            for (int i = 0; i < 5; i++)
                if (post(s.port, "text/csv", NULL, NULL, g_csv, g_csv_len, &r) == 0) {
                    good += r.status == 200;
                    tu_response_free(&r);
                }
            for (int i = 0; i < 2; i++)
                if (post(s.port, "text/csv", NULL, NULL, "x\n", 2, &r) == 0) {
                    bad += r.status == 400;
                    tu_response_free(&r);
                }
            sleep_ms(1500);
            for (int i = 0; i < 3; i++)
                if (post(s.port, "application/json", NULL, NULL, g_json, g_json_len, &r) == 0) {
                    good += r.status == 200;
                    tu_response_free(&r);
                }
            CHECK(good == 8 && bad == 2, "EMF: %d good, %d bad answers, want 8 and 2", good, bad);
            char *log = NULL;
            stop_server(&s, "EMF", &log);
            long long t1 = wall_ms() + 1000;
            size_t n;
            json_t **lines = emf_lines(log, &n);
            CHECK(n >= 2, "EMF: %zu EMF lines after 1.5 s at a 1 s interval and a shutdown", n);
            long long inv = 0, e4 = 0, e5 = 0;
            int setup = 0;
            for (size_t i = 0; i < n; i++) {
                check_emf_line(lines[i], i, "smserve", "local", "AllTraffic", t0, t1, false);
                inv += json_integer_value(json_object_get(lines[i], "Invocations"));
                e4 += json_integer_value(json_object_get(lines[i], "Invocation4XXErrors"));
                e5 += json_integer_value(json_object_get(lines[i], "Invocation5XXErrors"));
                setup += json_object_get(lines[i], "ModelSetupTime") != NULL;
            }
            CHECK(inv == 10 && e4 == 2 && e5 == 0,
                  "EMF: the lines sum to %lld invocations, %lld 4xx, %lld 5xx; want 10, 2, 0", inv,
                  e4, e5);
            CHECK(setup == 1, "EMF: ModelSetupTime in %d lines, want 1", setup);
            if (tu_failures)
                fprintf(stderr, "---- log ----\n%.8000s\n", log);
            emf_free(lines, n);
            free(log);
        }
    }
    /* Names and namespace from the environment, in EMF, /metrics and the
     * capture path; the interval's only line comes at shutdown. */
    {
        char *dir = tu_mkdtemp();
        assert_non_null(dir);
        char *dir_env = xasprintf("SMSERVE_CAPTURE_DIR=%s", dir);
        const char *env[] = {"SMSERVE_ENDPOINT_NAME=my-endpoint-1",
                             "SMSERVE_VARIANT_NAME=Variant_B",
                             "SMSERVE_METRICS_NAMESPACE=Custom/Models",
                             "SMSERVE_METRICS_INTERVAL=60",
                             "SMSERVE_CAPTURE_ENABLE=true",
                             dir_env,
                             NULL};
        tu_server_t s;
        long long t0 = wall_ms() - 1000;
        if (start_server(&s, env, "EMF names") == 0) {
            tu_response_t r;
            for (int i = 0; i < 3; i++)
                if (post(s.port, "text/csv", NULL, NULL, g_csv, g_csv_len, &r) == 0) {
                    CHECK(r.status == 200, "EMF names: status %d", r.status);
                    tu_response_free(&r);
                }
            sleep_ms(50);
            char *text = scrape(s.port, "EMF names");
            double v = text ? prom_value(text, "smserve_invocations_total" LABELS("my-endpoint-1",
                                                                                  "Variant_B") "}")
                            : -1;
            CHECK(v == 3, "EMF names: /metrics with the configured labels: %g invocations", v);
            free(text);
            char *log = NULL;
            stop_server(&s, "EMF names", &log);
            size_t n;
            json_t **lines = emf_lines(log, &n);
            CHECK(n == 1, "EMF names: %zu EMF lines at a 60 s interval, want 1 (at shutdown)", n);
            for (size_t i = 0; i < n; i++) {
                check_emf_line(lines[i], i, "Custom/Models", "my-endpoint-1", "Variant_B", t0,
                               wall_ms() + 1000, true);
                CHECK(json_integer_value(json_object_get(lines[i], "Invocations")) == 3,
                      "EMF names: Invocations %lld, want 3",
                      (long long)json_integer_value(json_object_get(lines[i], "Invocations")));
                CHECK(json_integer_value(json_object_get(lines[i], "CaptureRecordsWritten")) == 3,
                      "EMF names: CaptureRecordsWritten %lld, want 3",
                      (long long)json_integer_value(
                          json_object_get(lines[i], "CaptureRecordsWritten")));
            }
            emf_free(lines, n);
            free(log);
        }
        scan_t sc;
        scan_capture(&sc, dir, "my-endpoint-1", "Variant_B");
        CHECK(sc.n == 3, "EMF names: %zu records under %s/my-endpoint-1/Variant_B, want 3", sc.n,
              dir);
        scan_free(&sc);
        char *root = capture_root(dir, "local", "AllTraffic");
        struct stat st;
        CHECK(stat(root, &st) != 0, "EMF names: %s exists though the names were set", root);
        free(root);
        tu_rmtree(dir);
        free(dir);
        free(dir_env);
    }
    tu_checks_end();
}

/* ------------------------------------------------------- 8. metrics off */

static void test_metrics_off(void **state)
{
    (void)state;
    tu_checks_begin();
    const char *env[] = {"SMSERVE_METRICS=false", "SMSERVE_METRICS_INTERVAL=1", NULL};
    tu_server_t s;
    if (start_server(&s, env, "metrics off") == 0) {
        tu_response_t r;
        if (tu_http(s.port, "GET", "/metrics", NULL, NULL, 0, &r) == 0) {
            check_error_body("metrics off: GET /metrics", &r, 404);
            tu_response_free(&r);
        } else {
            CHECK(0, "metrics off: GET /metrics: no response");
        }
        for (int i = 0; i < 3; i++) {
            if (post(s.port, "text/csv", NULL, NULL, g_csv, g_csv_len, &r) == 0) {
                CHECK(r.status == 200, "metrics off: invocation status %d", r.status);
                CHECK(r.body_len > 0, "metrics off: empty prediction");
                tu_response_free(&r);
            } else {
                CHECK(0, "metrics off: invocation: no response");
            }
        }
        expect_status(s.port, "GET", "/ping", NULL, NULL, 200, "metrics off: /ping");
        char *log = NULL;
        stop_server(&s, "metrics off", &log);
        size_t n;
        json_t **lines = emf_lines(log, &n);
        CHECK(n == 0, "metrics off: %zu EMF lines", n);
        emf_free(lines, n);
        free(log);
    }
    tu_checks_end();
}

/* ------------------------------------------------------- 9. invalid env */

static void test_invalid_env(void **state)
{
    (void)state;
    tu_checks_begin();
    char *dir = tu_mkdtemp();
    assert_non_null(dir);
    char *file = tu_path(dir, "a-file");
    tu_write_file(file, "x", 1);
    char *dir_env = xasprintf("SMSERVE_CAPTURE_DIR=%s", dir);
    char *bad_dir_env = xasprintf("SMSERVE_CAPTURE_DIR=%s/sub", file);
    const struct {
        const char *var, *setting;
        const char *names; /* what the output must name */
    } bad[] = {
        {"SMSERVE_CAPTURE_SAMPLING_PERCENTAGE", "SMSERVE_CAPTURE_SAMPLING_PERCENTAGE=150", NULL},
        {"SMSERVE_CAPTURE_SAMPLING_PERCENTAGE", "SMSERVE_CAPTURE_SAMPLING_PERCENTAGE=-1", NULL},
        {"SMSERVE_CAPTURE_SAMPLING_PERCENTAGE", "SMSERVE_CAPTURE_SAMPLING_PERCENTAGE=nan", NULL},
        {"SMSERVE_METRICS_INTERVAL", "SMSERVE_METRICS_INTERVAL=-1", NULL},
        {"SMSERVE_METRICS_INTERVAL", "SMSERVE_METRICS_INTERVAL=1.5", NULL},
        {"SMSERVE_METRICS_INTERVAL", "SMSERVE_METRICS_INTERVAL=3601", NULL},
        {"SMSERVE_CAPTURE_OPTIONS", "SMSERVE_CAPTURE_OPTIONS=Sideways", NULL},
        {"SMSERVE_CAPTURE_OPTIONS", "SMSERVE_CAPTURE_OPTIONS=Input,", NULL},
        {"SMSERVE_CAPTURE_ENABLE", "SMSERVE_CAPTURE_ENABLE=maybe", NULL},
        {"SMSERVE_CAPTURE_CSV_CONTENT_TYPES", "SMSERVE_CAPTURE_CSV_CONTENT_TYPES=csv", NULL},
        {"SMSERVE_CAPTURE_QUEUE_BYTES", "SMSERVE_CAPTURE_QUEUE_BYTES=0", NULL},
        {"SMSERVE_CAPTURE_MAX_DISK_PERCENT", "SMSERVE_CAPTURE_MAX_DISK_PERCENT=101", NULL},
        {"SMSERVE_ENDPOINT_NAME", "SMSERVE_ENDPOINT_NAME=../up", NULL},
        {"SMSERVE_VARIANT_NAME", "SMSERVE_VARIANT_NAME=a b", NULL},
        {"SMSERVE_METRICS", "SMSERVE_METRICS=maybe", NULL},
        {"SMSERVE_METRICS_NAMESPACE", "SMSERVE_METRICS_NAMESPACE=AWS/SageMaker", NULL},
        /* an unusable directory: the output names the path */
        {"SMSERVE_CAPTURE_DIR", bad_dir_env, file},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char model_env[1200], port_env[64];
        snprintf(model_env, sizeof model_env, "SM_MODEL_DIR=%s", g_model_dir);
        snprintf(port_env, sizeof port_env, "SAGEMAKER_BIND_TO_PORT=%d", tu_free_port());
        /* the bad setting comes last so it overrides the capture dir */
        const char *env[] = {model_env, port_env,       "SMSERVE_CAPTURE_ENABLE=true",
                             dir_env,   bad[i].setting, NULL};
        const char *argv[] = {SMS_BINARY, "serve", NULL};
        char *out = NULL;
        double elapsed;
        int rc = tu_run_timed(argv, env, 5 * tu_slow_factor(), &out, &elapsed);
        CHECK(rc > 0, "%s: serve exit %d after %.2f s, want a non-zero exit; output:\n%s",
              bad[i].setting, rc, elapsed, out);
        const char *name = bad[i].names ? bad[i].names : bad[i].var;
        CHECK(strstr(out, name), "%s: the output does not name %s:\n%s", bad[i].setting, name, out);
        free(out);
    }
    tu_rmtree(dir);
    free(dir);
    free(file);
    free(dir_env);
    free(bad_dir_env);
    tu_checks_end();
}

/* ------------------------------------------------- 10. capture paused */

/* SMSERVE_CAPTURE_MAX_DISK_PERCENT=0 pauses capture at once: requests are
 * served, nothing is written, every record counts once as dropped, and the
 * pause is logged once. */
static void test_capture_paused(void **state)
{
    (void)state;
    tu_checks_begin();
    char *dir = tu_mkdtemp();
    assert_non_null(dir);
    char *dir_env = xasprintf("SMSERVE_CAPTURE_DIR=%s", dir);
    const char *env[] = {"SMSERVE_CAPTURE_ENABLE=true", dir_env,
                         "SMSERVE_CAPTURE_MAX_DISK_PERCENT=0", NULL};
    tu_server_t s;
    enum { N = 5 };
    if (start_server(&s, env, "paused") == 0) {
        tu_response_t r;
        for (int i = 0; i < N; i++)
            if (post(s.port, "text/csv", NULL, NULL, g_csv, g_csv_len, &r) == 0) {
                CHECK(r.status == 200, "paused: status %d", r.status);
                tu_response_free(&r);
            }
        char *text = scrape(s.port, "paused");
        double dropped =
            text ? prom_value(text, "smserve_capture_records_dropped_total" LOCAL "}") : -1;
        double written =
            text ? prom_value(text, "smserve_capture_records_written_total" LOCAL "}") : -1;
        free(text);
        CHECK(dropped == N && written == 0,
              "paused: /metrics says %g dropped, %g written after %d requests while paused; want "
              "%d and 0",
              dropped, written, N, N);
        char *log = NULL;
        stop_server(&s, "paused", &log);
        unsigned long long w = 0, d = 0;
        CHECK(flushed_counts(log, &w, &d) == 0 && w == 0 && d == N,
              "paused: the log does not say 0 written, %d dropped:\n%s", N, log);
        const char *p1 = log ? strstr(log, "capture paused") : NULL;
        CHECK(p1 && !strstr(p1 + 1, "capture paused"), "paused: \"capture paused\" logged %s:\n%s",
              p1 ? "more than once" : "never", log);
        size_t n;
        json_t **lines = emf_lines(log, &n);
        long long emf_dropped = 0;
        for (size_t i = 0; i < n; i++)
            emf_dropped += json_integer_value(json_object_get(lines[i], "CaptureRecordsDropped"));
        CHECK(n == 0 || emf_dropped == N, "paused: EMF CaptureRecordsDropped %lld, want %d",
              emf_dropped, N);
        emf_free(lines, n);
        free(log);
        scan_t sc;
        scan_capture(&sc, dir, "local", "AllTraffic");
        CHECK(sc.n == 0 && sc.files == 0, "paused: %zu records in %zu files", sc.n, sc.files);
        scan_free(&sc);
    }
    tu_rmtree(dir);
    free(dir);
    free(dir_env);
    tu_checks_end();
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_capture_all),
        cmocka_unit_test(test_capture_options),
        cmocka_unit_test(test_sampling),
        cmocka_unit_test(test_small_queue_under_load),
        cmocka_unit_test(test_sigterm_flushes),
        cmocka_unit_test(test_metrics_counts),
        cmocka_unit_test(test_emf),
        cmocka_unit_test(test_metrics_off),
        cmocka_unit_test(test_invalid_env),
        cmocka_unit_test(test_capture_paused),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
