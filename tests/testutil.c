/* Shared test helpers: files, temporary directories, guarded buffers, a
 * seeded RNG, decoder checks, the AWS corpus, RecordIO bodies read back, and
 * a real smserve process on a free port with a minimal HTTP/1.1 client. */
#define _GNU_SOURCE
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "smserve/pbwire.h"
#include "smserve/recordio.h"

char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *data = malloc(cap + 1);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            char *p = realloc(data, cap + 1);
            if (!p) {
                free(data);
                fclose(f);
                return NULL;
            }
            data = p;
        }
        size_t got = fread(data + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    data[n] = '\0';
    if (len)
        *len = n;
    return data;
}

int tu_write_file(const char *path, const void *bytes, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    const char *p = bytes;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return close(fd);
}

int tu_copy_file(const char *from, const char *to)
{
    size_t len;
    char *data = tu_read_file(from, &len);
    if (!data)
        return -1;
    int rc = tu_write_file(to, data, len);
    free(data);
    return rc;
}

char *tu_mkdtemp(void)
{
    const char *tmp = getenv("TMPDIR");
    char *path;
    if (asprintf(&path, "%s/smstest.XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0)
        return NULL;
    if (!mkdtemp(path)) {
        free(path);
        return NULL;
    }
    return path;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tu_rmtree(const char *path)
{
    if (path)
        nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *tu_path(const char *dir, const char *name)
{
    char *p;
    if (asprintf(&p, "%s/%s", dir, name) < 0)
        return NULL;
    return p;
}

void *tu_guarded_copy(const void *bytes, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t data_pages = (len + page - 1) / page;
    size_t total = (data_pages + 1) * page;
    char *base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    char *guard = base + data_pages * page;
    mprotect(guard, page, PROT_NONE);
    char *p = guard - len;
    if (len)
        memcpy(p, bytes, len);
    return p;
}

void tu_guarded_free(void *p, size_t len)
{
    if (!p)
        return;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t data_pages = (len + page - 1) / page;
    char *guard = (char *)p + len;
    char *base = guard - data_pages * page;
    munmap(base, (data_pages + 1) * page);
}

uint32_t tu_rand32(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (uint32_t)((*state * 0x2545F4914F6CDD1Dull) >> 32);
}

int tu_decode_guarded(sms_decode_fn fn, const char *body, size_t len, size_t expect_cols,
                      sms_matrix_t *m, sms_error_t *err)
{
    char *g = tu_guarded_copy(body, len);
    assert_non_null(g);
    err->status = 0;
    err->msg[0] = '\0';
    int rc = fn(g, len, expect_cols, m, err);
    tu_guarded_free(g, len);
    return rc;
}

static bool matrix_equal(const sms_matrix_t *m, size_t rows, size_t cols, const float *want)
{
    if (m->rows != rows || m->cols != cols)
        return false;
    for (size_t i = 0; i < rows * cols; i++)
        if (isnan(want[i]) ? !isnan(m->values[i]) : m->values[i] != want[i])
            return false;
    return true;
}

void tu_assert_matrix_equal(const sms_matrix_t *m, size_t rows, size_t cols, const float *want)
{
    assert_int_equal(m->rows, rows);
    assert_int_equal(m->cols, cols);
    for (size_t i = 0; i < rows * cols; i++) {
        if (isnan(want[i]))
            assert_true(isnan(m->values[i]));
        else
            assert_true(m->values[i] == want[i]);
    }
}

void tu_check_decode_ok(sms_decode_fn fn, const char *body, size_t expect_cols, size_t rows,
                        size_t cols, const float *want)
{
    sms_matrix_t m = {0};
    sms_error_t err;
    int rc = tu_decode_guarded(fn, body, strlen(body), expect_cols, &m, &err);
    if (rc != 0)
        print_error("body '%s': %s\n", body, err.msg);
    else if (!matrix_equal(&m, rows, cols, want))
        print_error("body '%s': not the matrix expected\n", body);
    assert_int_equal(rc, 0);
    tu_assert_matrix_equal(&m, rows, cols, want);
    sms_matrix_free(&m);
}

void tu_check_decode_err(sms_decode_fn fn, const char *body, size_t len, size_t expect_cols,
                         const char *msg)
{
    sms_matrix_t m = {0};
    sms_error_t err;
    int rc = tu_decode_guarded(fn, body, len, expect_cols, &m, &err);
    if (rc == 0)
        print_error("body '%.*s' was accepted\n", (int)len, body);
    assert_int_equal(rc, -1);
    assert_int_equal(err.status, 400);
    if (strcmp(err.msg, msg) != 0)
        print_error("body '%.*s'\n", (int)len, body);
    assert_string_equal(err.msg, msg);
    assert_int_equal(m.rows, 0);
    sms_matrix_free(&m);
}

/* tu_check_decode_clean, where a refusal may also have status also_status
 * (0: none). */
static void check_clean(sms_decode_fn fn, const char *body, size_t len, size_t expect_cols,
                        int also_status)
{
    sms_matrix_t m = {0};
    sms_error_t err;
    int rc = tu_decode_guarded(fn, body, len, expect_cols, &m, &err);
    if (rc == 0) {
        if (m.rows)
            assert_true(m.cols > 0 && m.cap >= m.rows * m.cols);
        if (expect_cols)
            assert_int_equal(m.cols, expect_cols);
    } else {
        assert_int_equal(rc, -1);
        assert_true(err.status == 400 || (also_status && err.status == also_status));
        assert_true(err.msg[0] != '\0');
        for (const char *c = err.msg; *c; c++)
            assert_true(*c >= 0x20 && *c < 0x7f);
        assert_int_equal(m.rows, 0);
    }
    sms_matrix_free(&m);
}

void tu_check_decode_clean(sms_decode_fn fn, const char *body, size_t len, size_t expect_cols)
{
    check_clean(fn, body, len, expect_cols, 0);
}

void tu_check_decode_clean_capped(sms_decode_fn fn, const char *body, size_t len,
                                  size_t expect_cols)
{
    check_clean(fn, body, len, expect_cols, 413);
}

void tu_check_decode_prefixes(tu_clean_fn check, sms_decode_fn fn, const char *body, size_t len,
                              const size_t *widths, size_t nwidths)
{
    for (size_t cut = 0; cut <= len; cut++)
        for (size_t w = 0; w < nwidths; w++)
            check(fn, body, cut, widths[w]);
}

void tu_check_decode_random(tu_clean_fn check, sms_decode_fn fn, const char *alphabet,
                            size_t max_len, int iters, size_t max_cols, uint64_t *rng)
{
    char body[4096];
    size_t letters = strlen(alphabet);
    assert_true(max_len <= sizeof body && letters > 0);
    for (int i = 0; i < iters; i++) {
        size_t n = tu_rand32(rng) % max_len;
        bool binary = i % 4 == 0;
        for (size_t k = 0; k < n; k++)
            body[k] = binary ? (char)tu_rand32(rng) : alphabet[tu_rand32(rng) % letters];
        check(fn, body, n, 0);
        check(fn, body, n, 1 + tu_rand32(rng) % max_cols);
    }
}

void tu_check_decode_cases(sms_decode_fn fn, const tu_decode_case_t *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const tu_decode_case_t *c = &cases[i];
        if (c->msg)
            tu_check_decode_err(fn, c->body, strlen(c->body), c->expect_cols, c->msg);
        else
            tu_check_decode_ok(fn, c->body, c->expect_cols, c->rows, c->cols, c->want);
    }
}

char *tu_aws_corpus(const char *probe)
{
    const char *env = getenv("SMSERVE_AWS_CORPUS");
    char *dir =
        env && *env ? strdup(env) : tu_path(SMS_SOURCE_DIR, "../shared/fixtures/aws-responses");
    assert_non_null(dir);
    char *path = tu_path(dir, probe);
    bool readable = path && access(path, R_OK) == 0;
    free(path);
    if (readable)
        return dir;
    const char *ci = getenv("CI");
    if (ci && strcmp(ci, "true") == 0)
        fail_msg("AWS corpus missing at %s (set SMSERVE_AWS_CORPUS)", dir);
    free(dir);
    skip();
    return NULL;
}

json_t *tu_aws_index(const char *dir)
{
    char *path = tu_path(dir, "requests/index.json");
    json_error_t jerr;
    json_t *index = json_load_file(path, 0, &jerr);
    if (!index)
        print_error("%s: %s\n", path, jerr.text);
    free(path);
    assert_non_null(index);
    return index;
}

float *tu_aws_matrix(json_t *index, const char *name, size_t *rows, size_t *cols)
{
    json_t *m = json_object_get(json_object_get(index, "_matrices"), name);
    assert_non_null(m);
    bool nested = json_is_array(json_array_get(m, 0));
    *rows = nested ? json_array_size(m) : 1;
    *cols = json_array_size(nested ? json_array_get(m, 0) : m);
    float *v = calloc(*rows * *cols + 1, sizeof *v);
    assert_non_null(v);
    for (size_t r = 0; r < *rows; r++) {
        json_t *row = nested ? json_array_get(m, r) : m;
        assert_int_equal(json_array_size(row), *cols);
        for (size_t c = 0; c < *cols; c++) {
            json_t *x = json_array_get(row, c);
            v[r * *cols + c] = json_is_null(x) ? NAN : (float)json_number_value(x);
        }
    }
    return v;
}

static int base64_value(char c)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *at = c ? strchr(alphabet, c) : NULL;
    return at ? (int)(at - alphabet) : -1;
}

uint8_t *tu_base64_decode(const char *s, size_t n, size_t *len)
{
    if (n % 4)
        return NULL;
    uint8_t *out = malloc(n / 4 * 3 + 1);
    if (!out)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int j = 0; j < 4; j++) {
            v[j] = base64_value(s[i + j]);
            bool pad = i + 4 == n && s[i + j] == '=' && j >= 2 && (j == 3 || s[i + 3] == '=');
            if (v[j] < 0 && !pad) {
                free(out);
                return NULL;
            }
        }
        out[k++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
        if (v[2] >= 0)
            out[k++] = (uint8_t)((v[1] & 15) << 4 | v[2] >> 2);
        if (v[3] >= 0)
            out[k++] = (uint8_t)((v[2] & 3) << 6 | v[3]);
    }
    *len = k;
    return out;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

size_t tu_rio_frames(const uint8_t *body, size_t len, const uint8_t **records, size_t *lengths,
                     size_t max)
{
    size_t n = 0, at = 0;
    while (at < len) {
        assert_true(at + 8 <= len);
        uint32_t flen = le32(body + at + 4);
        assert_int_equal(le32(body + at), SMS_RECORDIO_MAGIC);
        assert_int_equal(flen >> 29, 0);
        size_t padded = (flen + 3u) & ~(size_t)3;
        assert_true(at + 8 + padded <= len);
        for (size_t i = flen; i < padded; i++)
            assert_int_equal(body[at + 8 + i], 0);
        assert_true(n < max);
        records[n] = body + at + 8;
        lengths[n++] = flen;
        at += 8 + padded;
    }
    return n;
}

/* A Float32Tensor's values, packed or not: *n of them into out. */
static void read_tensor(const uint8_t *p, const uint8_t *end, float *out, size_t *n)
{
    *n = 0;
    while (p < end) {
        uint32_t num;
        int wt;
        const uint8_t *val;
        size_t len;
        uint64_t scalar;
        assert_int_equal(sms_pb_field(&p, end, &num, &wt, &val, &len, &scalar), 0);
        if (num != 1)
            continue;
        if (wt == SMS_PB_LEN) {
            assert_int_equal(len % 4, 0);
            for (size_t i = 0; i < len; i += 4) {
                uint32_t bits = le32(val + i);
                assert_true(*n < TU_RIO_MAX_VALUES);
                memcpy(&out[(*n)++], &bits, 4);
            }
        } else {
            assert_int_equal(wt, SMS_PB_I32);
            uint32_t bits = (uint32_t)scalar;
            assert_true(*n < TU_RIO_MAX_VALUES);
            memcpy(&out[(*n)++], &bits, 4);
        }
    }
}

void tu_rio_read_labels(const uint8_t *rec, size_t len, tu_rio_labels_t *lab)
{
    const uint8_t *p = rec, *end = rec + len;
    memset(lab, 0, sizeof *lab);
    while (p < end) {
        const uint8_t *start = p, *val;
        uint32_t num;
        int wt;
        size_t vlen;
        uint64_t scalar;
        assert_int_equal(sms_pb_field(&p, end, &num, &wt, &val, &vlen, &scalar), 0);
        assert_int_equal(num, 2); /* only label entries */
        assert_int_equal(wt, SMS_PB_LEN);
        char key[32] = "";
        float v[TU_RIO_MAX_VALUES];
        size_t nv = 0;
        const uint8_t *q = val, *qend = val + vlen;
        while (q < qend) {
            const uint8_t *fv;
            size_t flen;
            assert_int_equal(sms_pb_field(&q, qend, &num, &wt, &fv, &flen, &scalar), 0);
            assert_int_equal(wt, SMS_PB_LEN);
            if (num == 1) {
                assert_true(flen < sizeof key);
                memcpy(key, fv, flen);
                key[flen] = '\0';
            } else if (num == 2) { /* Value: float32_tensor is field 2 */
                const uint8_t *r = fv, *rend = fv + flen;
                while (r < rend) {
                    const uint8_t *tv;
                    size_t tlen;
                    assert_int_equal(sms_pb_field(&r, rend, &num, &wt, &tv, &tlen, &scalar), 0);
                    assert_int_equal(num, 2);
                    read_tensor(tv, tv + tlen, v, &nv);
                }
            }
        }
        assert_true(lab->entries < TU_RIO_MAX_ENTRIES);
        lab->entry[lab->entries] = start;
        lab->entry_len[lab->entries++] = (size_t)(p - start);
        size_t i = 0;
        while (i < lab->n && strcmp(lab->name[i], key) != 0)
            i++;
        if (i == lab->n) {
            assert_true(lab->n < TU_RIO_MAX_KEYS);
            strcpy(lab->name[lab->n++], key);
        }
        lab->count[i] = nv;
        memcpy(lab->values[i], v, nv * sizeof *v);
    }
}

int tu_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

int tu_connect(int port, double timeout_s)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (timeout_s > 0) {
        long us = (long)(timeout_s * 1e6);
        struct timeval tv = {.tv_sec = us / 1000000, .tv_usec = us % 1000000};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv); /* bounds connect(2) too */
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int tu_conn_open(tu_conn_t *c, int port)
{
    memset(c, 0, sizeof *c);
    c->fd = tu_connect(port, 0);
    if (c->fd < 0)
        return -1;
    c->cap = 65536;
    c->buf = malloc(c->cap + 1);
    if (!c->buf) {
        tu_conn_close(c);
        return -1;
    }
    return 0;
}

void tu_conn_close(tu_conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

static int connect_port(int port)
{
    int fd = tu_connect(port, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = 30};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

double tu_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void put_env_list(const char *const *extra_env)
{
    for (size_t i = 0; extra_env && extra_env[i]; i++)
        putenv((char *)extra_env[i]);
}

int tu_server_start(tu_server_t *s, const char *model_dir, const char *const *extra_env,
                    int wait_ready)
{
    memset(s, 0, sizeof *s);
    s->port = tu_free_port();
    if (s->port < 0)
        return -1;
    snprintf(s->log_path, sizeof s->log_path, "/tmp/smserve-test-%d-%d.log", (int)getpid(),
             s->port);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(s->log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        char port[16];
        snprintf(port, sizeof port, "%d", s->port);
        setenv("SAGEMAKER_BIND_TO_PORT", port, 1);
        setenv("SM_MODEL_DIR", model_dir, 1);
        setenv("OMP_NUM_THREADS", "1", 1);
        put_env_list(extra_env);
        execl(SMS_BINARY, "smserve", "serve", (char *)NULL);
        _exit(127);
    }
    s->pid = pid;
    for (int i = 0; i < 1000; i++) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            s->pid = 0;
            return -1;
        }
        if (wait_ready) {
            tu_response_t r;
            if (tu_http(s->port, "GET", "/ping", NULL, NULL, 0, &r) == 0) {
                int st = r.status;
                tu_response_free(&r);
                if (st == 200)
                    return 0;
            }
        } else {
            int fd = connect_port(s->port);
            if (fd >= 0) {
                close(fd);
                return 0;
            }
        }
        sleep_ms(10);
    }
    tu_server_stop(s);
    return -1;
}

int tu_server_stop(tu_server_t *s)
{
    if (s->pid <= 0)
        return -1;
    kill(s->pid, SIGTERM);
    int status = 0;
    for (int i = 0; i < 1000; i++) {
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        }
        sleep_ms(10);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &status, 0);
    s->pid = 0;
    return -1;
}

bool tu_server_alive(const tu_server_t *s)
{
    return s->pid > 0 && waitpid(s->pid, NULL, WNOHANG) == 0;
}

void tu_dump_log(const tu_server_t *s, size_t tail)
{
    size_t len = 0;
    char *log = tu_read_file(s->log_path, &len);
    bool cut = log && tail && len > tail;
    fprintf(stderr, "---- smserve log (%s, %s%zu bytes) ----\n%s\n----\n", s->log_path,
            cut ? "the last " : "", cut ? tail : len,
            cut   ? log + len - tail
            : log ? log
                  : "");
    free(log);
}

int tu_server_begin(tu_server_t *s, const char *model_dir, const char *const *extra_env,
                    size_t log_tail)
{
    if (tu_server_start(s, model_dir, extra_env, 1) == 0)
        return 0;
    char env[512] = "";
    size_t n = 0;
    for (size_t i = 0; extra_env && extra_env[i] && n < sizeof env; i++)
        n += (size_t)snprintf(env + n, sizeof env - n, " %s", extra_env[i]);
    CHECK(0, "smserve did not become ready on %s (env:%s)", model_dir, env[0] ? env : " -");
    tu_dump_log(s, log_tail);
    return -1;
}

bool tu_server_finish(tu_server_t *s, const char *what, size_t log_tail)
{
    bool alive = tu_server_alive(s);
    CHECK(alive, "%s: server died before the end of the test", what);
    if (!alive) {
        tu_dump_log(s, log_tail);
        s->pid = 0;
        return false;
    }
    int rc = tu_server_stop(s);
    CHECK(rc == 0, "%s: SIGTERM: exit status %d, want 0", what, rc);
    if (rc != 0 || tu_failures)
        tu_dump_log(s, log_tail);
    unlink(s->log_path);
    return true;
}

int tu_send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int tu_send_str(int fd, const char *s)
{
    return tu_send_all(fd, s, strlen(s));
}

int tu_http(int port, const char *method, const char *path, const char *headers, const char *body,
            size_t body_len, tu_response_t *out)
{
    memset(out, 0, sizeof *out);
    int fd = connect_port(port);
    if (fd < 0)
        return -1;
    char *req;
    int n;
    if (body)
        n = asprintf(&req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s"
                     "Content-Length: %zu\r\n\r\n",
                     method, path, headers ? headers : "", headers ? "\r\n" : "", body_len);
    else
        n = asprintf(&req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s\r\n",
                     method, path, headers ? headers : "", headers ? "\r\n" : "");
    if (n < 0) {
        close(fd);
        return -1;
    }
    /* A server may answer (413) and close before reading a large body, so a
     * failed body send is not yet a failure: the response decides. */
    int rc = tu_send_all(fd, req, (size_t)n);
    free(req);
    if (rc == 0 && body)
        tu_send_all(fd, body, body_len);

    size_t cap = 65536, len = 0;
    char *raw = malloc(cap + 1);
    for (;;) {
        if (len == cap) {
            cap *= 2;
            raw = realloc(raw, cap + 1);
        }
        ssize_t r = recv(fd, raw + len, cap - len, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    raw[len] = '\0';
    char *hdr_end = strstr(raw, "\r\n\r\n");
    if (len == 0 || !hdr_end || sscanf(raw, "HTTP/1.%*d %d", &out->status) != 1) {
        free(raw);
        return -1;
    }
    *hdr_end = '\0';
    for (char *line = strstr(raw, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "Content-Type:", 13) == 0) {
            const char *v = line + 15;
            while (*v == ' ')
                v++;
            size_t vl = strcspn(v, "\r\n");
            if (vl >= sizeof out->content_type)
                vl = sizeof out->content_type - 1;
            memcpy(out->content_type, v, vl);
            out->content_type[vl] = '\0';
        }
    }
    size_t body_off = (size_t)(hdr_end + 4 - raw);
    out->body_len = len - body_off;
    out->body = malloc(out->body_len + 1);
    memcpy(out->body, raw + body_off, out->body_len);
    out->body[out->body_len] = '\0';
    free(raw);
    return 0;
}

void tu_response_free(tu_response_t *r)
{
    free(r->body);
    r->body = NULL;
}

int tu_run_timed(const char *const *argv, const char *const *extra_env, double timeout_s,
                 char **output, double *elapsed_s)
{
    char path[] = "/tmp/smserve-run-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -3;
    double t0 = tu_now_s();
    pid_t pid = fork();
    if (pid < 0) {
        close(fd);
        unlink(path);
        return -3;
    }
    if (pid == 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        put_env_list(extra_env);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fd);
    int status = 0, rc = -2;
    for (;;) {
        pid_t got = waitpid(pid, &status, timeout_s > 0 ? WNOHANG : 0);
        if (got == pid) {
            rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            break;
        }
        if (timeout_s <= 0) {
            /* no deadline: only an interrupted wait is worth retrying */
            if (errno != EINTR) {
                rc = -1;
                break;
            }
            continue;
        }
        if (tu_now_s() - t0 > timeout_s) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        sleep_ms(2);
    }
    if (elapsed_s)
        *elapsed_s = tu_now_s() - t0;
    if (output) {
        *output = tu_read_file(path, NULL);
        if (!*output)
            *output = strdup("");
    }
    unlink(path);
    return rc;
}

int tu_run(const char *const *argv, const char *const *extra_env, char **output)
{
    int rc = tu_run_timed(argv, extra_env, 0, output, NULL);
    return rc < 0 ? -1 : rc;
}

void tu_setenv_all(const char *const *entries)
{
    for (size_t i = 0; entries[i]; i++) {
        const char *eq = strchr(entries[i], '=');
        assert_non_null(eq);
        char name[128];
        assert_true((size_t)(eq - entries[i]) < sizeof name);
        memcpy(name, entries[i], (size_t)(eq - entries[i]));
        name[eq - entries[i]] = '\0';
        assert_int_equal(setenv(name, eq + 1, 1), 0);
    }
}

int tu_failures;

void tu_checks_begin(void)
{
    tu_failures = 0;
}

void tu_checks_end(void)
{
    if (tu_failures > 40)
        fprintf(stderr, "(%d failed checks in all; the first 40 are shown)\n", tu_failures);
    assert_int_equal(tu_failures, 0);
}

double tu_slow_factor(void)
{
    const char *v = getenv("SMS_SLOW_FACTOR");
    double f = v ? atof(v) : 1.0;
    return f >= 1.0 ? f : 1.0;
}

int tu_emulated(void)
{
    static int cached = -1;
    if (cached >= 0)
        return cached;
    const char *v = getenv("SMS_EMULATED");
    if (v && *v)
        return cached = strcmp(v, "0") != 0;
    /* qemu-user fakes /proc/self/exe, maps and cmdline for the guest, but
     * not status: its Name is the emulator's when the test was started
     * through it (as CMAKE_CROSSCOMPILING_EMULATOR does). */
    cached = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "Name:", 5)) {
                const char *name = line + 5;
                while (*name == ' ' || *name == '\t')
                    name++;
                cached = !strncmp(name, "qemu-", 5);
                break;
            }
        fclose(f);
    }
    return cached;
}

json_t *tu_json_float32(json_t *v)
{
    size_t i;
    const char *key;
    json_t *child;
    switch (json_typeof(v)) {
    case JSON_REAL:
        return json_real((double)(float)json_real_value(v));
    case JSON_ARRAY: {
        json_t *out = json_array();
        json_array_foreach(v, i, child) json_array_append_new(out, tu_json_float32(child));
        return out;
    }
    case JSON_OBJECT: {
        json_t *out = json_object();
        json_object_foreach(v, key, child) json_object_set_new(out, key, tu_json_float32(child));
        return out;
    }
    default:
        return json_incref(v);
    }
}

size_t tu_damage_json(const char *valid, size_t len, int iters,
                      bool (*try_one)(const void *bytes, size_t len, unsigned iter))
{
    char *buf = malloc(len);
    assert_non_null(buf);
    uint64_t rng = 77;
    const char alphabet[] = "0123456789-.eE,[]{}\":-1 NaInfity";
    size_t compiled = 0;
    for (int iter = 0; iter < iters; iter++) {
        memcpy(buf, valid, len);
        int flips = 1 + (int)(tu_rand32(&rng) % 4);
        for (int k = 0; k < flips; k++)
            buf[tu_rand32(&rng) % len] = alphabet[tu_rand32(&rng) % (sizeof alphabet - 1)];
        void *g = tu_guarded_copy(buf, len);
        compiled += try_one(g, len, (unsigned)iter);
        tu_guarded_free(g, len);
    }
    free(buf);
    return compiled;
}

float tu_label_for(const char *objective, int num_class, float s, uint64_t *rng)
{
    float u = (float)(tu_rand32(rng) >> 8) / 16777216.0f;
    if (!strncmp(objective, "binary:", 7))
        return s > 0.0f;
    if (!strcmp(objective, "reg:logistic"))
        return 1.0f / (1.0f + expf(-s));
    if (!strncmp(objective, "multi:", 6)) {
        int k = (int)floorf((s + 2.0f) * (float)num_class / 4.0f);
        return (float)(k < 0 ? 0 : k >= num_class ? num_class - 1 : k);
    }
    if (!strcmp(objective, "rank:map"))
        return s + u > 0.5f;
    if (!strncmp(objective, "rank:", 5)) {
        int k = (int)floorf(s + 2.0f + u);
        return (float)(k < 0 ? 0 : k > 4 ? 4 : k);
    }
    if (!strcmp(objective, "count:poisson") || !strcmp(objective, "reg:tweedie"))
        return floorf(expf(s / 2.0f) * u * 2.0f);
    if (!strcmp(objective, "reg:gamma") || !strcmp(objective, "reg:squaredlogerror") ||
        !strcmp(objective, "survival:aft"))
        return expf(s / 2.0f) + 0.01f;
    if (!strcmp(objective, "survival:cox"))
        return (expf(s) + 0.1f) * (u < 0.2f ? -1.0f : 1.0f);
    return s + u - 0.5f;
}

char *tu_booster_json(BoosterHandle b, size_t *len)
{
    bst_ulong n = 0;
    const char *raw = NULL;
    XGB_OK(XGBoosterSaveModelToBuffer(b, "{\"format\": \"json\"}", &n, &raw));
    char *copy = malloc(n + 1);
    assert_non_null(copy);
    memcpy(copy, raw, n);
    copy[n] = '\0';
    *len = n;
    return copy;
}

void tu_tree_arrays(json_t *tree, json_t *a[10])
{
    const char *arrays[] = {"left_children",    "right_children", "parents",    "split_indices",
                            "split_conditions", "default_left",   "split_type", "loss_changes",
                            "sum_hessian",      "base_weights"};
    for (size_t k = 0; k < 10; k++)
        json_object_set_new(tree, arrays[k], a[k] = json_array());
}

void tu_tree_num_nodes(json_t *tree, size_t nodes)
{
    char num[32];
    snprintf(num, sizeof num, "%zu", nodes);
    json_object_set_new(json_object_get(tree, "tree_param"), "num_nodes", json_string(num));
    json_object_set_new(json_object_get(tree, "tree_param"), "num_deleted", json_string("0"));
}

char *tu_chain_model(json_t *root, unsigned depth, size_t *len)
{
    json_t *model = json_object_get(
        json_object_get(json_object_get(root, "learner"), "gradient_booster"), "model");
    json_t *tree = json_deep_copy(json_array_get(json_object_get(model, "trees"), 0));
    size_t n = 2 * (size_t)depth + 1;
    json_t *a[10];
    tu_tree_arrays(tree, a);
    for (size_t i = 0; i < n; i++) {
        bool internal = i % 2 == 0 && i + 1 < n;
        json_array_append_new(a[0], json_integer(internal ? (json_int_t)i + 1 : -1));
        json_array_append_new(a[1], json_integer(internal ? (json_int_t)i + 2 : -1));
        json_array_append_new(a[2],
                              json_integer(i == 0 ? 2147483647 : (json_int_t)((i - 1) & ~1u)));
        json_array_append_new(a[3], json_integer(internal ? (json_int_t)(i / 2 % 4) : 0));
        json_array_append_new(
            a[4], json_real(internal ? 1.0 - (double)i / (double)n : (double)i / 1000.0));
        json_array_append_new(a[5], json_integer((i / 2) % 3 == 0));
        json_array_append_new(a[6], json_integer(0));
        json_array_append_new(a[7], json_real(internal ? 1.0 : 0.0));
        json_array_append_new(a[8], json_real(10.0));
        json_array_append_new(a[9], json_real(0.0));
    }
    tu_tree_num_nodes(tree, n);
    json_t *trees = json_array();
    json_array_append_new(trees, tree);
    json_object_set_new(model, "trees", trees);
    json_object_set_new(model, "tree_info", json_pack("[i]", 0));
    if (json_object_get(model, "iteration_indptr"))
        json_object_set_new(model, "iteration_indptr", json_pack("[i,i]", 0, 1));
    json_object_set_new(json_object_get(model, "gbtree_model_param"), "num_trees",
                        json_string("1"));
    char *s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(9));
    json_decref(root);
    assert_non_null(s);
    *len = strlen(s);
    return s;
}

bool tu_refused(const void *compiled, const char *why)
{
    if (compiled)
        return false;
    assert_true(why[0] != '\0');
    return true;
}

char *tu_take_booster_json(BoosterHandle b, size_t *len)
{
    char *json = tu_booster_json(b, len);
    XGBoosterFree(b);
    return json;
}

BoosterHandle tu_booster_load(const char *bytes, size_t len)
{
    BoosterHandle b;
    XGB_OK(XGBoosterCreate(NULL, 0, &b));
    XGB_OK(XGBoosterLoadModelFromBuffer(b, bytes, len));
    XGB_OK(XGBoosterSetParam(b, "nthread", "1"));
    return b;
}

int64_t tu_ordered(float v)
{
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return i < 0 ? (int64_t)INT32_MIN - i : i;
}
