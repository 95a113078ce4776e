/* Flood, deadline, memory and graceful-stop tests for the HTTP front
 * (issue 9, notes/http-front-spec.md), against the real smserve on loopback:
 *
 *  - the health check always answers: /ping p99 and exact predictions while
 *    1,000 connections are held by each of four attacks (connect and send
 *    nothing, slowloris heads, slow bodies, idle keep-alive clients), the
 *    attack re-opening every connection the server closes;
 *  - deadlines: header, keep-alive and body timeouts, and a 413 that closes
 *    the connection at once;
 *  - bounded memory: RSS after a burst of 128 concurrent 6 MB bodies returns
 *    to the idle level; a small body budget answers 503 + Retry-After and
 *    the server serves normally afterwards;
 *  - a graceful stop loses nothing: client-side 200s == the server's count
 *    of 200 invocations (its EMF records) == data capture records on disk,
 *    every response after the drain began says Connection: close, none is
 *    cut short, exit status 0.
 *
 * Everything is bounded in count and time. The attacks run in one thread
 * with non-blocking sockets and poll(2). Time limits scale with
 * tu_slow_factor() (SMS_SLOW_FACTOR) for sanitized and emulated runs. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

/* CHECK from several threads: tu_failures is a plain counter. */
static pthread_mutex_t check_mu = PTHREAD_MUTEX_INITIALIZER;
#define TCHECK(cond, ...)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            pthread_mutex_lock(&check_mu);                                                         \
            CHECK(0, __VA_ARGS__);                                                                 \
            pthread_mutex_unlock(&check_mu);                                                       \
        }                                                                                          \
    } while (0)

/* ------------------------------------------------------------------ basics */

static double slow(void)
{
    return tu_slow_factor();
}

static void sleep_s(double s)
{
    if (s <= 0)
        return;
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* The sample model's requests and answers: models/sample.csv (3 rows) and
 * models/sample.expected, as float32 (the server prints the shortest text
 * that parses back to the same float32, so the comparison is exact). */
typedef struct sample {
    char *csv;
    size_t csv_len;
    char row1[128]; /* the first row with its newline */
    size_t row1_len;
    float want[16];
    size_t nwant;
} sample_t;

static sample_t S;

static char *sample_dir(void)
{
    return tu_path(SMS_SOURCE_DIR, "models/sample");
}

static int load_sample(void **state)
{
    (void)state;
    char *csv_path = tu_path(SMS_SOURCE_DIR, "models/sample.csv");
    char *exp_path = tu_path(SMS_SOURCE_DIR, "models/sample.expected");
    S.csv = tu_read_file(csv_path, &S.csv_len);
    size_t exp_len;
    char *exp = tu_read_file(exp_path, &exp_len);
    int rc = -1;
    if (S.csv && exp) {
        size_t l = strcspn(S.csv, "\n");
        if (l + 1 < sizeof S.row1 && S.csv[l] == '\n') {
            memcpy(S.row1, S.csv, l + 1);
            S.row1_len = l + 1;
        }
        for (char *p = exp; *p && S.nwant < 16;) {
            size_t n = strcspn(p, "\n");
            if (n) {
                char *end;
                S.want[S.nwant++] = strtof(p, &end);
            }
            p += n + (p[n] == '\n');
        }
        rc = S.nwant == 3 && S.row1_len ? 0 : -1;
    }
    if (rc < 0)
        fprintf(stderr, "cannot read %s and %s (3 rows each)\n", csv_path, exp_path);
    free(exp);
    free(csv_path);
    free(exp_path);
    return rc;
}

static int free_sample(void **state)
{
    (void)state;
    free(S.csv);
    return 0;
}

/* Soft limit of open files raised to the hard one (the server inherits it).
 * Returns the new soft limit. */
static rlim_t raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 0;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur;
}

/* ----------------------------------------------------------------- server */

/* How much of a server's log a failure prints. */
#define LOG_TAIL 6000

static int start_server(tu_server_t *s, const char *const *env)
{
    /* The production number of connection slots (the test suite's default
     * is smaller); the test's own settings come after and win. */
    const char *all[32] = {"SMSERVE_CONNECTIONS=2048"};
    size_t n = 1;
    for (size_t i = 0; env && env[i] && n < 31; i++)
        all[n++] = env[i];
    all[n] = NULL;
    char *dir = sample_dir();
    int rc = tu_server_begin(s, dir, all, LOG_TAIL);
    free(dir);
    return rc;
}

static void stop_server(tu_server_t *s, const char *what)
{
    tu_server_finish(s, what, LOG_TAIL);
}

/* VmRSS / VmHWM of a process, in kB (-1 unreadable). */
static long proc_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long v = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, fl) && line[fl] == ':') {
            v = atol(line + fl + 1);
            break;
        }
    fclose(f);
    return v;
}

/* ---------------------------------------------------------------- sockets */

/* Closes with an RST: no TIME_WAIT left on the test's side. */
static void close_rst(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

/* --------------------------------------------------------------- responses */

typedef struct resp {
    int status;
    long long content_length; /* -1: none */
    bool conn_close, conn_keep_alive, has_retry_after;
    char retry_after[32];
    char head[8192];
    size_t head_len;
    bool head_done;
    bool keep_body;
    char *body; /* when keep_body; NUL-terminated */
    size_t body_len, body_cap;
    size_t body_seen;
    size_t received; /* bytes in all */
} resp_t;

enum { R_COMPLETE = 1, R_NONE = 0, R_PARTIAL = -1, R_TIMEOUT = -2, R_GARBLED = -3 };

static const char *outcome_name(int rc)
{
    switch (rc) {
    case R_COMPLETE:
        return "complete";
    case R_NONE:
        return "closed without a response";
    case R_PARTIAL:
        return "partial response";
    case R_TIMEOUT:
        return "timed out";
    default:
        return "garbled response";
    }
}

static void resp_init(resp_t *r, bool keep_body)
{
    memset(r, 0, sizeof *r);
    r->content_length = -1;
    r->status = -1;
    r->keep_body = keep_body;
}

static void resp_free(resp_t *r)
{
    free(r->body);
    r->body = NULL;
}

/* The value of header `name` in a NUL-terminated head, or NULL; copies it. */
static const char *header_value(const char *head, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        const char *h = line + 2;
        if (!strncasecmp(h, name, nl) && h[nl] == ':') {
            const char *v = h + nl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            size_t vl = strcspn(v, "\r\n");
            while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                vl--;
            if (vl >= cap)
                vl = cap - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return out;
        }
    }
    return NULL;
}

static int parse_head(resp_t *r)
{
    int st;
    if (sscanf(r->head, "HTTP/1.%*[01] %3d", &st) != 1)
        return -1;
    r->status = st;
    char v[64];
    if (header_value(r->head, "Content-Length", v, sizeof v)) {
        char *end;
        r->content_length = strtoll(v, &end, 10);
        if (*end || r->content_length < 0)
            return -1;
    }
    if (header_value(r->head, "Connection", v, sizeof v)) {
        r->conn_close = strcasestr(v, "close") != NULL;
        r->conn_keep_alive = strcasestr(v, "keep-alive") != NULL;
    }
    if (header_value(r->head, "Retry-After", r->retry_after, sizeof r->retry_after))
        r->has_retry_after = true;
    return 0;
}

static void body_add(resp_t *r, const char *p, size_t n)
{
    r->body_seen += n;
    if (!r->keep_body)
        return;
    if (r->body_len + n + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 4096;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        r->body = realloc(r->body, cap);
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, p, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
}

/* Feeds received bytes: 1 once the response is complete, 0 while more is
 * needed, -1 garbled. */
static int resp_feed(resp_t *r, const char *p, size_t n)
{
    r->received += n;
    if (!r->head_done) {
        size_t room = sizeof r->head - 1 - r->head_len;
        size_t take = n < room ? n : room;
        memcpy(r->head + r->head_len, p, take);
        size_t old = r->head_len;
        r->head_len += take;
        r->head[r->head_len] = '\0';
        char *end = strstr(r->head + (old > 3 ? old - 3 : 0), "\r\n\r\n");
        if (!end)
            return take < n ? -1 : 0;
        r->head_done = true;
        size_t head_bytes = (size_t)(end + 4 - r->head);
        size_t extra = r->head_len - head_bytes; /* body bytes that came with the head */
        end[2] = '\0';                           /* keep the last header's CRLF */
        r->head_len = head_bytes;
        if (parse_head(r) < 0)
            return -1;
        body_add(r, p + (take - extra), extra);
        body_add(r, p + take, n - take);
    } else {
        body_add(r, p, n);
    }
    if (r->content_length >= 0 && r->body_seen >= (size_t)r->content_length)
        return r->body_seen == (size_t)r->content_length ? 1 : -1;
    return 0;
}

/* The connection ended (EOF or reset) before resp_feed said complete. */
static int resp_at_eof(const resp_t *r, bool reset)
{
    if (r->head_done && r->content_length < 0 && !reset)
        return R_COMPLETE; /* a body delimited by the close */
    return r->received ? R_PARTIAL : R_NONE;
}

/* Takes what one recv(2) returned (n bytes in buf, 0 the end of the
 * stream, < 0 an error): true once the response has ended, *outcome then
 * R_COMPLETE, R_GARBLED or resp_at_eof's. */
static bool resp_take(resp_t *r, const char *buf, ssize_t n, int *outcome)
{
    if (n <= 0) {
        *outcome = resp_at_eof(r, n < 0);
        return true;
    }
    int f = resp_feed(r, buf, (size_t)n);
    if (f != 0)
        *outcome = f > 0 ? R_COMPLETE : R_GARBLED;
    return f != 0;
}

enum { RECV_TIMEOUT = -2 };

/* One recv(2) on fd as soon as input arrives before deadline: the bytes
 * read (> 0), 0 at the end of the stream, -1 on an error (a reset), or
 * RECV_TIMEOUT. */
static ssize_t recv_by(int fd, double deadline, char *buf, size_t cap)
{
    for (;;) {
        int ms = (int)((deadline - tu_now_s()) * 1000);
        if (ms <= 0)
            return RECV_TIMEOUT;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int pr = poll(&p, 1, ms);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0)
            return RECV_TIMEOUT;
        ssize_t n = recv(fd, buf, cap, MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        return n < 0 ? -1 : n;
    }
}

/* Reads one response from a blocking socket within timeout_s. */
static int read_response(int fd, double timeout_s, bool keep_body, resp_t *r)
{
    resp_init(r, keep_body);
    double deadline = tu_now_s() + timeout_s;
    char buf[65536];
    int outcome;
    for (;;) {
        ssize_t n = recv_by(fd, deadline, buf, sizeof buf);
        if (n == RECV_TIMEOUT)
            return R_TIMEOUT;
        if (resp_take(r, buf, n, &outcome))
            return outcome;
    }
}

/* Feeds r what arrives on fd within ms: 0 nothing came, 1 bytes came and
 * the response goes on, 2 it ended (*outcome as resp_take's). */
static int feed_within(int fd, int ms, resp_t *r, int *outcome)
{
    char buf[4096];
    ssize_t n = recv_by(fd, tu_now_s() + ms / 1000.0, buf, sizeof buf);
    if (n == RECV_TIMEOUT)
        return 0;
    return resp_take(r, buf, n, outcome) ? 2 : 1;
}

/* Waits for the peer to close: seconds it took, -1 on timeout, -2 when bytes
 * arrived instead. */
static double wait_closed(int fd, double timeout_s)
{
    double t0 = tu_now_s();
    char buf[4096];
    ssize_t n = recv_by(fd, t0 + timeout_s, buf, sizeof buf);
    if (n == RECV_TIMEOUT)
        return -1;
    return n > 0 ? -2 : tu_now_s() - t0;
}

/* Whether body holds exactly `rows` CSV lines, line i equal as float32 to
 * want[i % nwant]. */
static bool preds_exact(const char *body, size_t len, size_t rows, const float *want, size_t nwant,
                        char *why, size_t wl)
{
    const char *p = body, *end = body + len;
    size_t i = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) {
            snprintf(why, wl, "line %zu has no newline", i + 1);
            return false;
        }
        char field[64];
        size_t fl = (size_t)(nl - p);
        if (fl && p[fl - 1] == '\r')
            fl--;
        if (fl == 0 || fl >= sizeof field) {
            snprintf(why, wl, "line %zu: '%.*s'", i + 1, (int)(fl < 40 ? fl : 40), p);
            return false;
        }
        memcpy(field, p, fl);
        field[fl] = '\0';
        char *e;
        float got = strtof(field, &e);
        if (*e || i >= rows || got != want[i % nwant]) {
            snprintf(why, wl, "line %zu: '%s', want %.9g", i + 1, field,
                     (double)want[i % nwant]);
            return false;
        }
        i++;
        p = nl + 1;
    }
    if (i != rows) {
        snprintf(why, wl, "%zu lines, want %zu", i, rows);
        return false;
    }
    return true;
}

/* "POST /invocations" with a CSV body; malloc'd request text. */
static char *prediction_request(const char *body, size_t body_len, bool close_conn, size_t *len)
{
    char *req;
    int n = asprintf(&req,
                     "POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/csv\r\n"
                     "Content-Length: %zu\r\n%s\r\n",
                     body_len, close_conn ? "Connection: close\r\n" : "");
    assert_true(n > 0);
    req = realloc(req, (size_t)n + body_len + 1);
    memcpy(req + n, body, body_len);
    req[(size_t)n + body_len] = '\0';
    *len = (size_t)n + body_len;
    return req;
}

/* GET /ping on a new connection: the latency in seconds; *status is the
 * answer's status or -1. */
static double ping_once(int port, double timeout_s, int *status)
{
    double t0 = tu_now_s();
    *status = -1;
    int fd = tu_connect(port, timeout_s);
    if (fd < 0)
        return tu_now_s() - t0;
    static const char ping[] = "GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (tu_send_str(fd, ping) == 0) {
        resp_t r;
        if (read_response(fd, timeout_s - (tu_now_s() - t0), false, &r) == R_COMPLETE)
            *status = r.status;
        resp_free(&r);
    }
    double took = tu_now_s() - t0;
    close(fd);
    return took;
}

/* The sample rows on a new connection: the status (-1 no response); *exact
 * whether a 200 carried exactly the expected predictions. */
static int predict_once(int port, double timeout_s, bool *exact, char *why, size_t wl)
{
    *exact = false;
    snprintf(why, wl, "no response");
    int fd = tu_connect(port, timeout_s);
    if (fd < 0) {
        snprintf(why, wl, "connect: %s", strerror(errno));
        return -1;
    }
    size_t len;
    char *req = prediction_request(S.csv, S.csv_len, true, &len);
    int status = -1;
    if (tu_send_all(fd, req, len) == 0) {
        resp_t r;
        int rc = read_response(fd, timeout_s, true, &r);
        if (rc == R_COMPLETE) {
            status = r.status;
            if (status == 200)
                *exact = preds_exact(r.body ? r.body : "", r.body_len, S.nwant, S.want, S.nwant,
                                     why, wl);
            else
                snprintf(why, wl, "%.200s", r.body ? r.body : "");
        } else {
            snprintf(why, wl, "%s", outcome_name(rc));
        }
        resp_free(&r);
    }
    free(req);
    close(fd);
    return status;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile (nearest rank) of n sorted values. */
static double quantile(const double *sorted, size_t n, double q)
{
    size_t rank = (size_t)ceil(q * (double)n);
    if (rank < 1)
        rank = 1;
    return sorted[rank - 1];
}

/* ================================================================ attacks */

typedef enum { ATK_SILENT, ATK_SLOWLORIS, ATK_SLOWBODY, ATK_KEEPALIVE } attack_kind_t;

static const char *const attack_names[] = {
    "1,000 connections that send nothing",
    "1,000 slowloris heads (a byte a second)",
    "1,000 slow bodies (Content-Length 100000, a byte a second)",
    "1,000 idle keep-alive clients",
};

enum { C_FREE, C_CONNECTING, C_WAIT_RESP, C_HELD };

typedef struct aconn {
    int fd;
    int state;
    double next_at; /* C_FREE: when to open; C_HELD trickle: the next byte */
    int crlf;       /* C_WAIT_RESP: how much of "\r\n\r\n" was seen */
} aconn_t;

typedef struct attack {
    int port;
    attack_kind_t kind;
    int target;
    double byte_interval; /* trickle: a byte per this many seconds */
    pthread_t thread;
    atomic_bool stop, measuring;
    atomic_int held;
    /* read after join */
    long opened, closed_by_server, connect_errors, send_errors;
    double held_time, measure_time;
    int held_min;
} attack_t;

#define SLOW_BODY_HEAD                                                                             \
    "POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/csv\r\n"                  \
    "Content-Length: 100000\r\n\r\n"
#define SLOWLORIS_HEAD "GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
#define KEEPALIVE_PING "GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

static void attack_drop(attack_t *a, aconn_t *c, double now, bool by_server)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = C_FREE;
    c->next_at = now; /* re-open at once: keep `target` held */
    if (by_server)
        a->closed_by_server++;
}

/* A connection that could not be opened (fd, when >= 0, is closed): counted,
 * and tried again in 0.1 s. */
static void attack_connect_failed(attack_t *a, aconn_t *c, int fd, double now)
{
    if (fd >= 0)
        close(fd);
    a->connect_errors++;
    c->fd = -1;
    c->state = C_FREE;
    c->next_at = now + 0.1;
}

static void attack_open(attack_t *a, aconn_t *c, double now)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)a->port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 ||
        (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS)) {
        attack_connect_failed(a, c, fd, now);
        return;
    }
    a->opened++;
    c->fd = fd;
    c->state = C_CONNECTING;
    c->crlf = 0;
}

static void attack_connected(attack_t *a, aconn_t *c, double now)
{
    const char *first = NULL;
    switch (a->kind) {
    case ATK_SILENT:
        break;
    case ATK_SLOWLORIS:
        first = SLOWLORIS_HEAD;
        break;
    case ATK_SLOWBODY:
        first = SLOW_BODY_HEAD;
        break;
    case ATK_KEEPALIVE:
        first = KEEPALIVE_PING;
        break;
    }
    if (first && send(c->fd, first, strlen(first), MSG_NOSIGNAL) != (ssize_t)strlen(first)) {
        a->send_errors++;
        attack_drop(a, c, now, true);
        return;
    }
    c->state = a->kind == ATK_KEEPALIVE ? C_WAIT_RESP : C_HELD;
    c->next_at = now + a->byte_interval;
}

static void attack_readable(attack_t *a, aconn_t *c, double now)
{
    char buf[4096];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            attack_drop(a, c, now, true);
            return;
        }
        if (c->state == C_WAIT_RESP) {
            static const char end[] = "\r\n\r\n";
            for (ssize_t i = 0; i < n && c->state == C_WAIT_RESP; i++) {
                c->crlf = buf[i] == end[c->crlf] ? c->crlf + 1 : (buf[i] == '\r');
                if (c->crlf == 4)
                    c->state = C_HELD; /* answered (an empty /ping body); now quiet */
            }
        }
        /* anything else (a 408 before the close) is read and ignored */
    }
}

static void *attack_main(void *arg)
{
    attack_t *a = arg;
    aconn_t *c = calloc((size_t)a->target, sizeof *c);
    struct pollfd *p = calloc((size_t)a->target, sizeof *p);
    assert_non_null(c);
    assert_non_null(p);
    double t0 = tu_now_s();
    /* the first round is spread over a second, so the server's deadlines do
     * not all fall at the same moment */
    for (int i = 0; i < a->target; i++) {
        c[i].fd = -1;
        c[i].state = C_FREE;
        c[i].next_at = t0 + (double)i / a->target;
    }
    a->held_min = a->target;
    const bool trickle = a->kind == ATK_SLOWLORIS || a->kind == ATK_SLOWBODY;
    double last = t0;
    while (!atomic_load(&a->stop)) {
        double now = tu_now_s();
        double next = now + 0.05;
        for (int i = 0; i < a->target; i++) {
            aconn_t *ci = &c[i];
            if (ci->state == C_FREE && now >= ci->next_at)
                attack_open(a, ci, now);
            if (trickle && ci->state == C_HELD && now >= ci->next_at) {
                const char *byte = a->kind == ATK_SLOWLORIS ? "a" : "1";
                ssize_t w = send(ci->fd, byte, 1, MSG_NOSIGNAL);
                if (w != 1 && !(w < 0 && errno == EAGAIN)) {
                    a->send_errors++;
                    attack_drop(a, ci, now, true);
                } else {
                    ci->next_at = now + a->byte_interval;
                }
            }
            if ((ci->state == C_FREE || (trickle && ci->state == C_HELD)) && ci->next_at < next)
                next = ci->next_at;
            p[i].fd = ci->fd;
            p[i].events = ci->state == C_CONNECTING ? POLLOUT : POLLIN;
            p[i].revents = 0;
        }
        int ms = (int)((next - tu_now_s()) * 1000);
        if (ms < 0)
            ms = 0;
        int pr = poll(p, (nfds_t)a->target, ms);
        now = tu_now_s();
        for (int i = 0; pr > 0 && i < a->target; i++) {
            aconn_t *ci = &c[i];
            if (!p[i].revents || ci->fd < 0)
                continue;
            if (ci->state == C_CONNECTING) {
                int err = 0;
                socklen_t el = sizeof err;
                getsockopt(ci->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err) {
                    attack_connect_failed(a, ci, ci->fd, now);
                } else {
                    attack_connected(a, ci, now);
                }
            } else {
                attack_readable(a, ci, now);
            }
        }
        int held = 0;
        for (int i = 0; i < a->target; i++)
            held += c[i].state == C_HELD;
        atomic_store(&a->held, held);
        if (atomic_load(&a->measuring)) {
            a->held_time += held * (now - last);
            a->measure_time += now - last;
            if (held < a->held_min)
                a->held_min = held;
        }
        last = now;
    }
    for (int i = 0; i < a->target; i++)
        if (c[i].fd >= 0)
            close_rst(c[i].fd);
    free(c);
    free(p);
    return NULL;
}

/* Predictions flowing while the attack is held: the sample rows on a new
 * connection every ~10 ms. */
typedef struct predictor {
    int port;
    pthread_t thread;
    atomic_bool stop;
    long sent, ok, bad;
    double t0, t1;
    char first_bad[300];
} predictor_t;

static void *predictor_main(void *arg)
{
    predictor_t *pr = arg;
    pr->t0 = tu_now_s();
    while (!atomic_load(&pr->stop)) {
        bool exact;
        char why[256];
        int st = predict_once(pr->port, 5.0 * slow(), &exact, why, sizeof why);
        pr->sent++;
        if (st == 200 && exact) {
            pr->ok++;
        } else if (pr->bad++ == 0) {
            snprintf(pr->first_bad, sizeof pr->first_bad, "status %d: %s", st, why);
        }
        sleep_s(0.01);
    }
    pr->t1 = tu_now_s();
    return NULL;
}

enum { ATTACK_CONNS = 1000, ATTACK_PINGS = 200 };

static void run_attack(attack_kind_t kind)
{
    tu_checks_begin();
    rlim_t nofile = raise_nofile();
    if (nofile < ATTACK_CONNS + 200) {
        fprintf(stderr, "RLIMIT_NOFILE hard limit %llu is below %d: cannot hold the attack\n",
                (unsigned long long)nofile, ATTACK_CONNS + 200);
        skip();
    }
    const char *name = attack_names[kind];
    /* The slow bodies reserve 1,000 x 100000 bytes of the body budget: a
     * fixed 256 MiB keeps them all admitted whatever the machine's memory
     * (the default is a quarter of it), so the attack is the one described. */
    const char *slow_body_env[] = {"SMSERVE_BODY_BUDGET_BYTES=268435456", NULL};
    tu_server_t s;
    if (start_server(&s, kind == ATK_SLOWBODY ? slow_body_env : NULL) != 0)
        goto done;

    attack_t a = {.port = s.port, .kind = kind, .target = ATTACK_CONNS, .byte_interval = 1.0};
    atomic_init(&a.stop, false);
    atomic_init(&a.measuring, false);
    atomic_init(&a.held, 0);
    assert_int_equal(pthread_create(&a.thread, NULL, attack_main, &a), 0);

    /* All held (the first round is spread over 1 s). */
    double t0 = tu_now_s(), ramp_limit = 15.0 * slow();
    while (atomic_load(&a.held) < ATTACK_CONNS && tu_now_s() - t0 < ramp_limit)
        sleep_s(0.05);
    int reached = atomic_load(&a.held);
    CHECK(reached >= ATTACK_CONNS, "%s: only %d of %d connections held after %.1f s", name,
          reached, ATTACK_CONNS, tu_now_s() - t0);
    /* Settle; the slow-body attack waits longer, so that the server's body
     * deadline (10 s + 0.1 s by default) falls inside the measurement (from
     * ~7 s to ~12.5 s) and the attack re-opens what it cuts while /ping is
     * being measured. Slowloris heads meet the 5 s header deadline, idle
     * keep-alive clients the 3 s keep-alive one, inside it too. */
    sleep_s(kind == ATK_SLOWBODY ? 6.0 : 1.0);

    atomic_store(&a.measuring, true);
    predictor_t pr = {.port = s.port};
    atomic_init(&pr.stop, false);
    assert_int_equal(pthread_create(&pr.thread, NULL, predictor_main, &pr), 0);
    double lat[ATTACK_PINGS];
    int ping_ok = 0, first_bad_status = 0;
    double first_bad_lat = 0;
    for (int i = 0; i < ATTACK_PINGS; i++) {
        int st;
        lat[i] = ping_once(s.port, 5.0 * slow(), &st);
        if (st == 200) {
            ping_ok++;
        } else {
            if (!first_bad_status) {
                first_bad_status = st;
                first_bad_lat = lat[i];
            }
            lat[i] = INFINITY; /* an unanswered health check counts as never */
        }
        sleep_s(0.025);
    }
    atomic_store(&pr.stop, true);
    pthread_join(pr.thread, NULL);
    atomic_store(&a.measuring, false);
    atomic_store(&a.stop, true);
    pthread_join(a.thread, NULL);

    qsort(lat, ATTACK_PINGS, sizeof *lat, cmp_double);
    double p50 = quantile(lat, ATTACK_PINGS, 0.50), p99 = quantile(lat, ATTACK_PINGS, 0.99);
    double held_avg = a.measure_time > 0 ? a.held_time / a.measure_time : 0;
    double rate = pr.t1 > pr.t0 ? (double)pr.ok / (pr.t1 - pr.t0) : 0;
    fprintf(stderr,
            "flood: %s: held %.0f on average (min %d) while measuring, %ld opened, %ld closed by "
            "the server, %ld connect errors; /ping p50 %.2f ms, p99 %.2f ms, max %.2f ms "
            "(%d/%d answered 200); predictions %ld/%ld exact (%.0f/s)\n",
            name, held_avg, a.held_min, a.opened, a.closed_by_server, a.connect_errors,
            p50 * 1e3, p99 * 1e3, lat[ATTACK_PINGS - 1] * 1e3, ping_ok, ATTACK_PINGS, pr.ok,
            pr.sent, rate);

    CHECK(held_avg >= 0.9 * ATTACK_CONNS,
          "%s: the attack held only %.0f connections on average (min %d) while /ping was measured",
          name, held_avg, a.held_min);
    static const char *const deadline_of[] = {NULL, "SMSERVE_HEADER_TIMEOUT_MS, 5 s",
                                              "the body deadline, 10.1 s",
                                              "SMSERVE_KEEPALIVE_TIMEOUT_MS, 3 s"};
    if (deadline_of[kind])
        CHECK(a.closed_by_server > 0,
              "%s: the server cut none of the attack's connections (its deadline: %s)", name,
              deadline_of[kind]);
    CHECK(ping_ok == ATTACK_PINGS,
          "%s: %d of %d fresh GET /ping not answered 200 (first: status %d after %.3f s)", name,
          ATTACK_PINGS - ping_ok, ATTACK_PINGS, first_bad_status, first_bad_lat);
    double limit = 0.100 * slow();
    CHECK(p99 < limit, "%s: /ping p99 %.1f ms, want < %.0f ms (p50 %.1f ms)", name, p99 * 1e3,
          limit * 1e3, p50 * 1e3);
    CHECK(pr.sent > 0 && pr.bad == 0,
          "%s: %ld of %ld predictions failed or were inexact (first: %s)", name, pr.bad, pr.sent,
          pr.first_bad);
    stop_server(&s, name);
done:
    tu_checks_end();
}

/* A cmocka test `name` that runs the attack `kind`. */
#define ATTACK_TEST(name, kind)                                                                    \
    static void name(void **state)                                                                 \
    {                                                                                              \
        (void)state;                                                                               \
        run_attack(kind);                                                                          \
    }
ATTACK_TEST(test_flood_silent, ATK_SILENT)
ATTACK_TEST(test_flood_slowloris, ATK_SLOWLORIS)
ATTACK_TEST(test_flood_slow_body, ATK_SLOWBODY)
ATTACK_TEST(test_flood_idle_keepalive, ATK_KEEPALIVE)

/* ============================================================== deadlines */

/* Checks an error response: the status, a JSON {"error", "code"} body, and
 * Connection: close. */
static void check_error(const char *what, const resp_t *r, int status)
{
    CHECK(r->status == status, "%s: status %d, want %d (%.200s)", what, r->status, status,
          r->body ? r->body : "");
    CHECK(r->conn_close, "%s: no Connection: close on a %d", what, r->status);
    json_error_t jerr;
    json_t *doc = json_loadb(r->body ? r->body : "", r->body_len, 0, &jerr);
    json_t *e = json_object_get(doc, "error"), *c = json_object_get(doc, "code");
    CHECK(json_is_string(e) && json_string_length(e) > 0 && json_is_integer(c) &&
              json_integer_value(c) == r->status,
          "%s: body is not {\"error\": \"...\", \"code\": %d}: %.200s", what, r->status,
          r->body ? r->body : "");
    json_decref(doc);
}

/* A connection for a deadline test: the fd, or -1 after a failed CHECK. */
static int connect_checked(int port)
{
    int fd = tu_connect(port, 3.0 * slow());
    CHECK(fd >= 0, "connect: %s", strerror(errno));
    return fd;
}

/* A complete error response of `status` (check_error), then a close. */
static void check_error_closed(const char *what, const resp_t *r, int status, int fd)
{
    check_error(what, r, status);
    double closed = wait_closed(fd, 1.0 * slow());
    CHECK(closed >= 0, "%s: the %d was not followed by a close", what, status);
}

/* The server still answers /ping after `after`, then stops cleanly. */
static void finish_server(tu_server_t *s, const char *after, const char *what)
{
    int st;
    ping_once(s->port, 3.0 * slow(), &st);
    CHECK(st == 200, "after %s: /ping %d", after, st);
    stop_server(s, what);
}

/* One deadline test: a server with env, and one connection to it that
 * run(fd) drives; then the server must still answer /ping after `after`
 * (unless NULL) and stop cleanly. */
static void deadline_test(const char *const *env, const char *what, const char *after,
                          void (*run)(int fd))
{
    tu_checks_begin();
    tu_server_t s;
    if (start_server(&s, env) == 0) {
        int fd = connect_checked(s.port);
        if (fd >= 0) {
            run(fd);
            close(fd);
        }
        if (after)
            finish_server(&s, after, what);
        else
            stop_server(&s, what);
    }
    tu_checks_end();
}

/* A head trickled a byte every 100 ms (so no single read waits long) is
 * cut off when SMSERVE_HEADER_TIMEOUT_MS (1 s) runs out: a 408 or a close. */
static void trickle_head(int fd)
{
    const double timeout = 1.0, slack = 0.5 * slow();
    double t0 = tu_now_s();
    tu_send_str(fd, SLOWLORIS_HEAD);
    double cut = -1;
    resp_t r;
    resp_init(&r, true);
    int outcome = R_TIMEOUT;
    while (tu_now_s() - t0 < timeout + slack + 2.0) {
        int got = feed_within(fd, 100, &r, &outcome);
        if (got && cut < 0 && (got == 2 || r.received))
            cut = tu_now_s() - t0;
        if (got == 2)
            break;
        if (got)
            continue;
        if (send(fd, "a", 1, MSG_NOSIGNAL) != 1) {
            if (cut < 0)
                cut = tu_now_s() - t0;
            outcome = R_NONE;
            break;
        }
    }
    CHECK(cut >= 0, "a head trickled for %.1f s was never cut off (header timeout 1000 ms)",
          tu_now_s() - t0);
    if (cut >= 0) {
        CHECK(cut <= timeout + slack,
              "the trickled head was cut off after %.2f s, want within %.1f s + %.1f s", cut,
              timeout, slack);
        CHECK(cut >= 0.9 * timeout,
              "the trickled head was cut off after %.2f s, before the 1 s header timeout", cut);
    }
    CHECK(outcome == R_COMPLETE || outcome == R_NONE, "trickled head: %s (%zu bytes: %.100s)",
          outcome_name(outcome), r.received, r.head);
    if (outcome == R_COMPLETE)
        check_error_closed("trickled head", &r, 408, fd);
    resp_free(&r);
}

static void test_deadline_header(void **state)
{
    (void)state;
    const char *env[] = {"SMSERVE_HEADER_TIMEOUT_MS=1000", NULL};
    deadline_test(env, "header deadline", "the cut head", trickle_head);
}

/* An idle keep-alive connection is closed after SMSERVE_KEEPALIVE_TIMEOUT_MS
 * (1 s here, the header timeout 2 s so the two cannot be confused). */
static void idle_keepalive(int fd)
{
    const double timeout = 1.0, slack = 0.5 * slow();
    tu_send_str(fd, KEEPALIVE_PING);
    resp_t r;
    int rc = read_response(fd, 3.0 * slow(), false, &r);
    CHECK(rc == R_COMPLETE && r.status == 200 && !r.conn_close,
          "keep-alive /ping: %s, status %d, Connection: close %d", outcome_name(rc), r.status,
          r.conn_close);
    resp_free(&r);
    if (rc != R_COMPLETE || r.conn_close)
        return;
    double closed = wait_closed(fd, timeout + slack + 3.0);
    CHECK(closed >= 0, "idle keep-alive connection still open %.1f s after its response",
          timeout + slack + 3.0);
    if (closed >= 0) {
        CHECK(closed <= timeout + slack,
              "idle keep-alive connection closed after %.2f s, want within %.1f s + %.1f s", closed,
              timeout, slack);
        CHECK(closed >= 0.9 * timeout,
              "idle keep-alive connection closed after %.2f s, before the 1 s keep-alive timeout",
              closed);
    }
}

static void test_deadline_keepalive(void **state)
{
    (void)state;
    const char *env[] = {"SMSERVE_KEEPALIVE_TIMEOUT_MS=1000", "SMSERVE_HEADER_TIMEOUT_MS=2000",
                         NULL};
    deadline_test(env, "keep-alive deadline", NULL, idle_keepalive);
}

/* A body trickled a byte a second is answered 408 by the body deadline:
 * SMSERVE_BODY_TIMEOUT_MS (1 s) + length / SMSERVE_BODY_MIN_RATE. */
static void trickle_body(int fd)
{
    const double deadline = 1.0 + 100000.0 / 1048576.0, slack = 0.5 * slow();
    tu_send_str(fd, SLOW_BODY_HEAD);
    double t0 = tu_now_s(), next = t0;
    resp_t r;
    resp_init(&r, true);
    int outcome = R_TIMEOUT;
    double answered = -1;
    while (tu_now_s() - t0 < deadline + slack + 3.0) {
        if (tu_now_s() >= next && r.received == 0) {
            if (send(fd, "1", 1, MSG_NOSIGNAL) != 1)
                next = INFINITY;
            else
                next += 1.0;
        }
        int got = feed_within(fd, 50, &r, &outcome);
        if (got && answered < 0 && (got == 2 || r.received))
            answered = tu_now_s() - t0;
        if (got == 2)
            break;
    }
    CHECK(outcome == R_COMPLETE,
          "a body trickled a byte a second: %s %.2f s after the head, want a 408 by the %.2f s "
          "body deadline (%zu bytes: %.100s)",
          outcome_name(outcome), answered < 0 ? tu_now_s() - t0 : answered, deadline, r.received,
          r.head);
    if (outcome == R_COMPLETE) {
        CHECK(answered <= deadline + slack && answered >= 0.9 * deadline,
              "trickled body answered after %.2f s, want at the %.2f s body deadline (+ %.1f s)",
              answered, deadline, slack);
        check_error_closed("trickled body", &r, 408, fd);
    }
    resp_free(&r);
}

static void test_deadline_body(void **state)
{
    (void)state;
    const char *env[] = {"SMSERVE_BODY_TIMEOUT_MS=1000", NULL};
    deadline_test(env, "body deadline", "the 408", trickle_body);
}

/* A 413 is sent before the body is read and the connection closes at once,
 * even though the client asked for keep-alive and has not sent the body. */
static void test_413_closes(void **state)
{
    (void)state;
    tu_checks_begin();
    const char *env[] = {"MAX_CONTENT_LENGTH=1000", NULL};
    tu_server_t s;
    if (start_server(&s, env) != 0)
        goto done;
    static const char *const declared[] = {"5000", "18446744073709551617"};
    for (size_t i = 0; i < 2; i++) {
        char what[96], head[256];
        snprintf(what, sizeof what, "Content-Length %s over MAX_CONTENT_LENGTH=1000", declared[i]);
        int fd = connect_checked(s.port);
        if (fd < 0)
            continue;
        snprintf(head, sizeof head,
                 "POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/csv\r\n"
                 "Connection: keep-alive\r\nContent-Length: %s\r\n\r\n35,",
                 declared[i]);
        tu_send_str(fd, head);
        double t0 = tu_now_s();
        resp_t r;
        int rc = read_response(fd, 2.0 * slow(), true, &r);
        double took = tu_now_s() - t0;
        CHECK(rc == R_COMPLETE, "%s: %s after %.2f s, want a 413 before the body", what,
              outcome_name(rc), took);
        if (rc == R_COMPLETE) {
            check_error(what, &r, 413);
            CHECK(r.body && strstr(r.body, declared[i]),
                  "%s: the message does not quote the declared length: %.200s", what,
                  r.body ? r.body : "");
            double closed = wait_closed(fd, 1.0 * slow());
            CHECK(closed >= 0 && closed <= 0.25 * slow(),
                  "%s: connection not closed at once after the 413 (%s %.2f s)", what,
                  closed == -2  ? "bytes arrived,"
                  : closed < 0 ? "still open after"
                               : "closed after",
                  closed < 0 ? 1.0 * slow() : closed);
        }
        resp_free(&r);
        close(fd);
    }
    finish_server(&s, "the 413s", "413 closes");
done:
    tu_checks_end();
}

/* ============================================================ bounded memory */

/* What every request of a multi run sends: a CSV POST /invocations with
 * Connection: close. */
typedef struct payload {
    char *head, *body; /* malloc'd */
    size_t head_len, body_len;
    size_t rows; /* CSV rows in the body */
} payload_t;

/* n concurrent requests (one shared payload) over non-blocking sockets:
 * each sends hold_fraction of its body, all wait hold_s once every one got
 * there, then send the rest; responses are read as they come. */
typedef struct multi {
    int port, n;
    const payload_t *load;
    double hold_fraction, hold_s, timeout_s;
    bool keep_body;
    resp_t *r;    /* n */
    int *outcome; /* n, R_* */
    double elapsed;
} multi_t;

static void multi_run(multi_t *m)
{
    int n = m->n;
    int *fd = calloc((size_t)n, sizeof *fd);
    size_t *sent = calloc((size_t)n, sizeof *sent);
    bool *done = calloc((size_t)n, sizeof *done), *send_done = calloc((size_t)n, sizeof *send_done);
    struct pollfd *p = calloc((size_t)n, sizeof *p);
    m->r = calloc((size_t)n, sizeof *m->r);
    m->outcome = calloc((size_t)n, sizeof *m->outcome);
    const char *head = m->load->head, *body = m->load->body;
    const size_t head_len = m->load->head_len, body_len = m->load->body_len;
    const size_t total = head_len + body_len;
    size_t hold_at = head_len + (size_t)((double)body_len * m->hold_fraction);
    if (hold_at > total)
        hold_at = total;
    double t0 = tu_now_s(), deadline = t0 + m->timeout_s, release_at = -1;
    int left = n;
    for (int i = 0; i < n; i++) {
        resp_init(&m->r[i], m->keep_body);
        m->outcome[i] = R_TIMEOUT;
        fd[i] = tu_connect(m->port, 5.0 * slow());
        if (fd[i] < 0) {
            m->outcome[i] = R_NONE;
            done[i] = true;
            left--;
            continue;
        }
        fcntl(fd[i], F_SETFL, fcntl(fd[i], F_GETFL) | O_NONBLOCK);
    }
    static char buf[1 << 16];
    while (left > 0 && tu_now_s() < deadline) {
        double now = tu_now_s();
        size_t limit = release_at >= 0 && now >= release_at ? total : hold_at;
        if (release_at < 0) {
            bool all_there = true;
            for (int i = 0; i < n; i++)
                if (!done[i] && !send_done[i] && sent[i] < hold_at && m->r[i].received == 0)
                    all_there = false;
            if (all_there)
                release_at = now + (hold_at < total ? m->hold_s : 0);
        }
        for (int i = 0; i < n; i++) {
            p[i].fd = done[i] ? -1 : fd[i];
            p[i].events = POLLIN;
            /* stop sending once an answer has begun: the server refused early */
            if (!send_done[i] && sent[i] < limit && m->r[i].received == 0)
                p[i].events |= POLLOUT;
            p[i].revents = 0;
        }
        int pr = poll(p, (nfds_t)n, 20);
        if (pr <= 0)
            continue;
        for (int i = 0; i < n; i++) {
            if (done[i] || !p[i].revents)
                continue;
            if ((p[i].revents & POLLOUT) && !send_done[i]) {
                size_t off = sent[i], want = limit - off;
                const char *src = off < head_len ? head + off : body + (off - head_len);
                if (off < head_len && want > head_len - off)
                    want = head_len - off;
                if (want > (1 << 18))
                    want = 1 << 18;
                ssize_t w = send(fd[i], src, want, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w > 0)
                    sent[i] += (size_t)w;
                else if (w < 0 && errno != EAGAIN && errno != EINTR)
                    send_done[i] = true; /* refused and closed: read what came back */
                if (sent[i] == total)
                    send_done[i] = true;
            }
            if (p[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                for (;;) {
                    ssize_t got = recv(fd[i], buf, sizeof buf, MSG_DONTWAIT);
                    if (got < 0 && (errno == EAGAIN || errno == EINTR))
                        break;
                    if (resp_take(&m->r[i], buf, got, &m->outcome[i])) {
                        done[i] = true;
                        left--;
                        close(fd[i]);
                        fd[i] = -1;
                        break;
                    }
                }
            }
        }
    }
    for (int i = 0; i < n; i++)
        if (fd[i] >= 0)
            close_rst(fd[i]);
    m->elapsed = tu_now_s() - t0;
    free(fd);
    free(sent);
    free(done);
    free(send_done);
    free(p);
}

/* multi_run of n copies of load on port, paced as multi_t says; the
 * caller frees *m with multi_free. */
static void multi_post(multi_t *m, int port, int n, const payload_t *load, double hold_fraction,
                       double hold_s, double timeout_s, bool keep_body)
{
    *m = (multi_t){.port = port,
                   .n = n,
                   .load = load,
                   .hold_fraction = hold_fraction,
                   .hold_s = hold_s,
                   .timeout_s = timeout_s,
                   .keep_body = keep_body};
    multi_run(m);
}

static void multi_free(multi_t *m)
{
    for (int i = 0; m->r && i < m->n; i++)
        resp_free(&m->r[i]);
    free(m->r);
    free(m->outcome);
    m->r = NULL;
    m->outcome = NULL;
}

/* The payload of body (malloc'd, taken over), which holds `rows` rows. */
static payload_t payload_of(char *body, size_t body_len, size_t rows)
{
    payload_t p = {.body = body, .body_len = body_len, .rows = rows};
    int n = asprintf(&p.head,
                     "POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/csv\r\n"
                     "Connection: close\r\nContent-Length: %zu\r\n\r\n",
                     body_len);
    assert_true(n > 0);
    p.head_len = (size_t)n;
    return p;
}

static void payload_free(payload_t *p)
{
    free(p->head);
    free(p->body);
}

/* The first sample row repeated up to max_bytes: dense rows of 8 features. */
static payload_t repeated_rows(size_t max_bytes)
{
    size_t rows = max_bytes / S.row1_len, len = rows * S.row1_len;
    char *b = malloc(len + 1);
    assert_non_null(b);
    for (size_t i = 0; i < rows; i++)
        memcpy(b + i * S.row1_len, S.row1, S.row1_len);
    b[len] = '\0';
    return payload_of(b, len, rows);
}

/* Checks every outcome of a multi run: complete, 200 (and exact when the
 * body was kept) or 503 with Retry-After and Connection: close. Counts. */
static void check_200_or_503(const char *what, const multi_t *m, int *n200, int *n503)
{
    *n200 = *n503 = 0;
    int shown = 0;
    for (int i = 0; i < m->n; i++) {
        const resp_t *r = &m->r[i];
        char why[256] = "";
        bool ok = m->outcome[i] == R_COMPLETE;
        if (ok && r->status == 200) {
            (*n200)++;
            if (m->keep_body)
                ok = preds_exact(r->body ? r->body : "", r->body_len, m->load->rows, S.want, 1,
                                 why, sizeof why);
        } else if (ok && r->status == 503) {
            (*n503)++;
            ok = r->has_retry_after && atol(r->retry_after) >= 1 && r->conn_close;
            snprintf(why, sizeof why, "Retry-After '%s', Connection: close %d",
                     r->has_retry_after ? r->retry_after : "(none)", r->conn_close);
        } else {
            ok = false;
            snprintf(why, sizeof why, "%s", r->body ? r->body : "");
        }
        if (!ok && shown++ < 5)
            CHECK(0, "%s: request %d: %s, status %d: %.200s", what, i, outcome_name(m->outcome[i]),
                  r->status, why);
        else if (!ok)
            tu_failures++;
    }
}

/* Small concurrent predictions (exact), n at a time. */
static void warm_up(int port, int n, const char *what)
{
    char *csv = malloc(S.csv_len + 1);
    assert_non_null(csv);
    memcpy(csv, S.csv, S.csv_len + 1);
    payload_t load = payload_of(csv, S.csv_len, S.nwant);
    multi_t m;
    multi_post(&m, port, n, &load, 1.0, 0, 30.0 * slow(), true);
    int bad = 0;
    for (int i = 0; i < n; i++) {
        char why[256] = "";
        bool ok = m.outcome[i] == R_COMPLETE && m.r[i].status == 200 &&
                  preds_exact(m.r[i].body ? m.r[i].body : "", m.r[i].body_len, S.nwant, S.want,
                              S.nwant, why, sizeof why);
        if (!ok && bad++ == 0)
            CHECK(0, "%s: request %d: %s, status %d %s", what, i, outcome_name(m.outcome[i]),
                  m.r[i].status, why);
    }
    CHECK(bad == 0, "%s: %d of %d small predictions failed", what, bad, n);
    multi_free(&m);
    payload_free(&load);
}

/* RSS after a burst of concurrent ~6 MB bodies returns to the idle level.
 *
 * Allowed: idle + 10 % + 16 MiB. The 16 MiB: the warm-up runs the same
 * concurrency (128) with small requests, so connection threads, their stacks
 * and malloc arenas exist before the idle figure is taken; what a burst may
 * still leave resident without holding any body is bounded by glibc's
 * per-arena top padding (M_TOP_PAD, 128 KiB, kept after every trim) times
 * one arena per concurrently active connection thread: 128 x 128 KiB =
 * 16 MiB. A server that kept even 1 of the 128 bodies (6 MiB) plus its
 * parsed rows (5.6 MiB) per thread would exceed it by far.
 *
 * Not asserted under AddressSanitizer, whose allocator quarantines freed
 * memory (the figure would be ASan's, not smserve's); the burst and its
 * statuses still are. */
static void test_memory_burst(void **state)
{
    (void)state;
    tu_checks_begin();
    const int n = SANITIZED || tu_emulated() ? 32 : 128;
    tu_server_t s;
    if (start_server(&s, NULL) != 0)
        goto done;
    warm_up(s.port, n, "warm-up round 1");
    warm_up(s.port, n, "warm-up round 2");
    sleep_s(1.0);
    long idle = proc_kb(s.pid, "VmRSS");

    payload_t load = repeated_rows(6291456 - 1);
    multi_t m;
    multi_post(&m, s.port, n, &load, 1.0, 0, 120.0 * slow(), false);
    int n200, n503;
    check_200_or_503("6 MB burst", &m, &n200, &n503);
    long peak = proc_kb(s.pid, "VmHWM");
    sleep_s(1.0);
    long after = proc_kb(s.pid, "VmRSS");
    const long slack_kb = 16 * 1024;
    fprintf(stderr,
            "memory: %d concurrent %zu-byte bodies (%zu rows) in %.1f s: %d x 200, %d x 503; RSS "
            "idle %ld kB, peak %ld kB, 1 s after %ld kB (allowed %ld kB)%s\n",
            n, load.body_len, load.rows, m.elapsed, n200, n503, idle, peak, after,
            idle + idle / 10 + slack_kb, SANITIZED ? " [not asserted under ASan]" : "");
    CHECK(idle > 0 && after > 0, "cannot read the server's VmRSS");
    if (!SANITIZED)
        CHECK(after <= idle + idle / 10 + slack_kb,
              "RSS 1 s after the burst is %ld kB, idle was %ld kB: over 10 %% + %ld kB", after,
              idle, slack_kb);
    bool exact;
    char why[256];
    int st = predict_once(s.port, 5.0 * slow(), &exact, why, sizeof why);
    CHECK(st == 200 && exact, "after the burst: status %d: %s", st, why);
    multi_free(&m);
    payload_free(&load);
    stop_server(&s, "memory burst");
done:
    tu_checks_end();
}

/* A small SMSERVE_BODY_BUDGET_BYTES (1 MB; MAX_CONTENT_LENGTH 250 KB) under 24 concurrent ~200 KB
 * bodies, each held half sent until all are: some get 503 + Retry-After
 * (and Connection: close), the rest exact 200s; then it serves normally. */
static void test_body_budget(void **state)
{
    (void)state;
    tu_checks_begin();
    /* the budget may not be below MAX_CONTENT_LENGTH (config refuses it) */
    const char *env[] = {"SMSERVE_BODY_BUDGET_BYTES=1000000", "MAX_CONTENT_LENGTH=250000", NULL};
    tu_server_t s;
    if (start_server(&s, env) != 0)
        goto done;
    payload_t load = repeated_rows(200000);
    multi_t m;
    multi_post(&m, s.port, 24, &load, 0.5, 0.5, 30.0 * slow(), true);
    int n200, n503;
    check_200_or_503("budget 1 MB, 24 x 200 KB", &m, &n200, &n503);
    fprintf(stderr, "budget: 24 concurrent %zu-byte bodies, budget 1000000: %d x 200, %d x 503\n",
            load.body_len, n200, n503);
    CHECK(n503 >= 1, "24 concurrent 200 KB bodies over a 1 MB budget: no 503 (%d x 200)", n200);
    CHECK(n200 >= 1, "24 concurrent 200 KB bodies, 1 MB budget: no request was served (%d x 503)",
          n503);
    multi_free(&m);

    /* Serves normally afterwards: sequential exact predictions, then 4
     * concurrent bodies that fit the budget together, all 200. */
    sleep_s(0.2);
    for (int i = 0; i < 10; i++) {
        bool exact;
        char why[256];
        int st = predict_once(s.port, 5.0 * slow(), &exact, why, sizeof why);
        CHECK(st == 200 && exact, "after the budget was exhausted: prediction %d: status %d: %s",
              i, st, why);
    }
    multi_post(&m, s.port, 4, &load, 1.0, 0, 30.0 * slow(), true);
    check_200_or_503("afterwards, 4 x 200 KB within the budget", &m, &n200, &n503);
    CHECK(n200 == 4, "afterwards, 4 concurrent 200 KB bodies (800 KB, within the 1 MB budget): "
                     "%d x 200, %d x 503",
          n200, n503);
    multi_free(&m);
    payload_free(&load);
    stop_server(&s, "body budget");
done:
    tu_checks_end();
}

/* ========================================================== graceful stop */

enum { STOP_CLIENTS = 8 };

typedef struct stop_shared {
    int port;
    _Atomic long long term_us;    /* when SIGTERM was sent (monotonic us), 0 before */
    _Atomic long long refused_us; /* when a new connection was first refused, 0 before */
    double grace;                 /* a request sent this long after SIGTERM must close */
} stop_shared_t;

typedef struct stop_client {
    int id;
    stop_shared_t *sh;
    pthread_t thread;
    long ok200, after_term, after_term_close, no_response, reconnects;
} stop_client_t;

static long long now_us(void)
{
    return (long long)(tu_now_s() * 1e6);
}

static void *stop_client_main(void *arg)
{
    stop_client_t *c = arg;
    stop_shared_t *sh = c->sh;
    size_t len;
    char *req = prediction_request(S.csv, S.csv_len, false, &len);
    int fd = -1;
    double end = tu_now_s() + 60.0 * slow();
    while (tu_now_s() < end) {
        if (fd < 0) {
            if (atomic_load(&sh->refused_us))
                break; /* the listener is gone: done */
            fd = tu_connect(sh->port, 2.0 * slow());
            if (fd < 0) {
                if (atomic_load(&sh->term_us))
                    break;
                TCHECK(0, "client %d: connect before SIGTERM: %s", c->id, strerror(errno));
                sleep_s(0.05);
                continue;
            }
            c->reconnects++;
        }
        long long sent_us = now_us();
        long long term = atomic_load(&sh->term_us), refused = atomic_load(&sh->refused_us);
        /* the drain has certainly begun: a new connection was refused, or
         * SIGTERM is older than the grace */
        bool draining = (refused && sent_us > refused) ||
                        (term && sent_us > term + (long long)(sh->grace * 1e6));
        if (tu_send_all(fd, req, len) < 0) {
            close(fd);
            fd = -1;
            continue;
        }
        resp_t r;
        int rc = read_response(fd, 15.0 * slow(), true, &r);
        long long recv_us = now_us();
        term = atomic_load(&sh->term_us);
        if (rc == R_COMPLETE) {
            char why[256] = "";
            bool exact = r.status == 200 && preds_exact(r.body ? r.body : "", r.body_len, S.nwant,
                                                        S.want, S.nwant, why, sizeof why);
            if (exact)
                c->ok200++;
            TCHECK(exact, "client %d: status %d: %s %.200s", c->id, r.status, why,
                   r.status == 200 ? "" : (r.body ? r.body : ""));
            if (term && recv_us > term) {
                c->after_term++;
                c->after_term_close += r.conn_close;
            }
            TCHECK(!draining || r.conn_close,
                   "client %d: a response to a request sent %.0f ms after SIGTERM has no "
                   "Connection: close",
                   c->id, (double)(sent_us - term) / 1e3);
            if (r.conn_close) {
                double closed = wait_closed(fd, 5.0 * slow());
                TCHECK(closed >= 0, "client %d: Connection: close, but the connection stayed "
                                    "open (or bytes followed)",
                       c->id);
                close(fd);
                fd = -1;
            }
        } else if (rc == R_NONE) {
            /* closed before any byte of an answer: allowed once the drain
             * began (the request was not taken); never before SIGTERM */
            c->no_response++;
            TCHECK(term && sent_us >= term - 1000,
                   "client %d: connection closed without a response before SIGTERM", c->id);
            close(fd);
            fd = -1;
        } else {
            TCHECK(0, "client %d: %s (%zu bytes: %.120s), request sent %.0f ms %s SIGTERM", c->id,
                   outcome_name(rc), r.received, r.head,
                   term ? fabs((double)(sent_us - term)) / 1e3 : 0.0,
                   term && sent_us >= term ? "after" : "before");
            close(fd);
            fd = -1;
        }
        resp_free(&r);
    }
    if (fd >= 0)
        close(fd);
    free(req);
    return NULL;
}

static long capture_lines, capture_bad;

static int count_lines_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag != FTW_F)
        return 0;
    size_t len;
    char *text = tu_read_file(path, &len);
    if (!text)
        return 0;
    for (char *p = text; p < text + len;) {
        char *nl = memchr(p, '\n', (size_t)(text + len - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(text + len - p);
        if (l) {
            json_error_t jerr;
            json_t *rec = json_loadb(p, l, 0, &jerr);
            if (nl && json_is_object(json_object_get(rec, "captureData")))
                capture_lines++;
            else
                capture_bad++;
            json_decref(rec);
        }
        p += l + 1;
    }
    free(text);
    return 0;
}

/* Sums the EMF records in the server's output. Returns how many there were. */
static int emf_sums(const char *log, long long *inv, long long *e4, long long *e5,
                    long long *cap_written, long long *cap_dropped)
{
    int lines = 0;
    *inv = *e4 = *e5 = *cap_written = *cap_dropped = 0;
    for (const char *p = log; (p = strstr(p, "{\"_aws\"")) != NULL;) {
        size_t l = strcspn(p, "\n");
        json_error_t jerr;
        json_t *o = json_loadb(p, l, 0, &jerr);
        if (o) {
            lines++;
            *inv += json_integer_value(json_object_get(o, "Invocations"));
            *e4 += json_integer_value(json_object_get(o, "Invocation4XXErrors"));
            *e5 += json_integer_value(json_object_get(o, "Invocation5XXErrors"));
            *cap_written += json_integer_value(json_object_get(o, "CaptureRecordsWritten"));
            *cap_dropped += json_integer_value(json_object_get(o, "CaptureRecordsDropped"));
            json_decref(o);
        }
        p += l;
    }
    return lines;
}

/* SIGTERM under keep-alive load with data capture at 100 %: nothing lost. */
static void test_graceful_stop(void **state)
{
    (void)state;
    tu_checks_begin();
    char *cap_dir = tu_mkdtemp();
    assert_non_null(cap_dir);
    char *cap_env;
    assert_true(asprintf(&cap_env, "SMSERVE_CAPTURE_DIR=%s", cap_dir) > 0);
    const char *env[] = {"SMSERVE_CAPTURE_ENABLE=true", "SMSERVE_CAPTURE_SAMPLING_PERCENTAGE=100",
                         cap_env, NULL};
    tu_server_t s;
    if (start_server(&s, env) != 0)
        goto done;
    stop_shared_t sh = {.port = s.port, .grace = 0.05 * slow()};
    atomic_init(&sh.term_us, 0);
    atomic_init(&sh.refused_us, 0);
    stop_client_t cl[STOP_CLIENTS];
    for (int i = 0; i < STOP_CLIENTS; i++) {
        cl[i] = (stop_client_t){.id = i, .sh = &sh};
        assert_int_equal(pthread_create(&cl[i].thread, NULL, stop_client_main, &cl[i]), 0);
    }
    sleep_s(1.5);
    long before = 0;
    for (int i = 0; i < STOP_CLIENTS; i++)
        before += cl[i].ok200; /* racy read, for the report only */
    atomic_store(&sh.term_us, now_us());
    kill(s.pid, SIGTERM);
    double t_kill = tu_now_s();
    /* The listener closes at once: new connections refused. A connect that
     * neither completes nor is refused within 50 ms (a SYN left unanswered)
     * is not a refusal either. */
    double refused_after = -1, last_accepted = -1, last_hung = -1;
    int hung = 0;
    while (tu_now_s() - t_kill < 5.0 * slow()) {
        double a0 = tu_now_s();
        int fd = tu_connect(s.port, 0.05);
        int e = errno;
        if (fd < 0 && e == ECONNREFUSED) {
            refused_after = tu_now_s() - t_kill;
            atomic_store(&sh.refused_us, now_us());
            break;
        }
        if (fd >= 0) {
            last_accepted = a0 - t_kill;
            close_rst(fd);
        } else {
            hung++;
            last_hung = a0 - t_kill;
        }
        sleep_s(0.002);
    }
    CHECK(refused_after >= 0 && refused_after <= 0.1 * slow(),
          "after SIGTERM, new connections were not refused for %.2f s (want refused within %.1f "
          "s; last connection accepted %.3f s after SIGTERM; %d connects unanswered for 50 ms, "
          "the last %.3f s after)",
          refused_after < 0 ? 5.0 * slow() : refused_after, 0.1 * slow(), last_accepted, hung,
          last_hung);
    if (refused_after < 0)
        atomic_store(&sh.refused_us, now_us()); /* let the clients finish */
    for (int i = 0; i < STOP_CLIENTS; i++)
        pthread_join(cl[i].thread, NULL);

    /* The exit status, within the drain timeout (10 s) + slack. */
    int status = 0, rc = -1;
    double wait_limit = 20.0 * slow();
    while (tu_now_s() - t_kill < wait_limit) {
        if (waitpid(s.pid, &status, WNOHANG) == s.pid) {
            rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            s.pid = 0;
            break;
        }
        sleep_s(0.01);
    }
    double exited_after = tu_now_s() - t_kill;
    if (s.pid > 0) {
        kill(s.pid, SIGKILL);
        waitpid(s.pid, &status, 0);
        s.pid = 0;
        CHECK(0, "SIGTERM: still running %.0f s later", wait_limit);
    } else {
        CHECK(rc == 0, "SIGTERM: exit status %d (signal %d), want 0", rc,
              WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    }

    long ok200 = 0, after_term = 0, after_close = 0, no_resp = 0;
    for (int i = 0; i < STOP_CLIENTS; i++) {
        ok200 += cl[i].ok200;
        after_term += cl[i].after_term;
        after_close += cl[i].after_term_close;
        no_resp += cl[i].no_response;
    }
    char *log = tu_read_file(s.log_path, NULL);
    long long inv, e4, e5, cw, cd;
    int emf_lines = emf_sums(log ? log : "", &inv, &e4, &e5, &cw, &cd);
    long long server200 = inv - e4 - e5;
    capture_lines = capture_bad = 0;
    nftw(cap_dir, count_lines_cb, 16, FTW_PHYS);
    long long flushed_written = -1, flushed_dropped = -1;
    const char *fl = log ? strstr(log, "data capture flushed: ") : NULL;
    if (fl)
        sscanf(fl, "data capture flushed: %lld records written, %lld dropped", &flushed_written,
               &flushed_dropped);
    fprintf(stderr,
            "graceful stop: %d keep-alive clients, ~%ld answers before SIGTERM; listener refused "
            "after %.3f s, exit after %.2f s (status %d); client 200s %ld (%ld received after "
            "SIGTERM, %ld of them Connection: close; %ld requests closed unanswered); server: %d "
            "EMF records, %lld invocations - %lld 4xx - %lld 5xx = %lld x 200, capture written "
            "%lld dropped %lld (log: %lld / %lld); capture files: %ld records, %ld bad lines\n",
            STOP_CLIENTS, before, refused_after, exited_after, rc, ok200, after_term, after_close,
            no_resp, emf_lines, inv, e4, e5, server200, cw, cd, flushed_written, flushed_dropped,
            capture_lines, capture_bad);
    CHECK(ok200 > 0, "no prediction was answered");
    CHECK(emf_lines > 0, "no EMF record in the server's output");
    CHECK(server200 == ok200,
          "the server counted %lld 200 invocations (EMF: %lld - %lld - %lld), the clients "
          "received %ld complete 200s",
          server200, inv, e4, e5, ok200);
    CHECK(capture_lines == ok200, "%ld capture records on disk, the clients received %ld 200s",
          capture_lines, ok200);
    CHECK(capture_bad == 0, "%ld capture lines are not whole records", capture_bad);
    CHECK(cd == 0 && cw == capture_lines,
          "EMF capture counts: %lld written, %lld dropped; %ld records on disk", cw, cd,
          capture_lines);
    if (tu_failures)
        tu_dump_log(&s, LOG_TAIL);
    free(log);
    unlink(s.log_path);
done:
    tu_rmtree(cap_dir);
    free(cap_dir);
    free(cap_env);
    tu_checks_end();
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    /* FLOOD_ONLY=test_graceful_stop (a cmocka pattern, * and ?) runs a subset */
    if (getenv("FLOOD_ONLY") && *getenv("FLOOD_ONLY"))
        cmocka_set_test_filter(getenv("FLOOD_ONLY"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deadline_header),
        cmocka_unit_test(test_deadline_keepalive),
        cmocka_unit_test(test_deadline_body),
        cmocka_unit_test(test_413_closes),
        cmocka_unit_test(test_flood_silent),
        cmocka_unit_test(test_flood_slowloris),
        cmocka_unit_test(test_flood_slow_body),
        cmocka_unit_test(test_flood_idle_keepalive),
        cmocka_unit_test(test_memory_burst),
        cmocka_unit_test(test_body_budget),
        cmocka_unit_test(test_graceful_stop),
    };
    return cmocka_run_group_tests(tests, load_sample, free_sample);
}
