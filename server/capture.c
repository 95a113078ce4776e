/* Data capture: reads its configuration, samples requests, and appends
 * each sampled request's record (capture_record.c encodes it) to hourly
 * files from one writer thread. A request only encodes its record and
 * links it to a queue under a short mutex; every file system call happens
 * on the writer. Also here: the UUIDv4 that names records and files. */
#define _GNU_SOURCE
#include "smserve/capture.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "smserve/capture_record.h"
#include "smserve/env.h"
#include "smserve/log.h"
#include "smserve/random.h"

/* ---- configuration ---------------------------------------------------- */

/* A byte count in [min, max]; unset or empty keeps *out. */
static int env_bytes(const char *name, unsigned long long min, unsigned long long max, size_t *out,
                     sms_error_t *err)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return 0;
    const char *p = v;
    while (*p == ' ' || *p == '\t')
        p++;
    char *end = (char *)p;
    errno = 0;
    unsigned long long n = (*p >= '0' && *p <= '9') ? strtoull(p, &end, 10) : 0;
    while (*end == ' ' || *end == '\t')
        end++;
    if (errno || end == p || *end || n < min || n > max || n > SIZE_MAX)
        return sms_error_set(err, 500,
                             "invalid %s=\"%.64s\": expected a byte count from %llu to %llu", name,
                             v, min, max);
    *out = (size_t)n;
    return 0;
}

/* A name used as one directory of the capture path. */
static bool safe_path_component(const char *s)
{
    if (!*s || !strcmp(s, ".") || !strcmp(s, ".."))
        return false;
    for (; *s; s++)
        if (*s <= ' ' || *s > '~' || *s == '/')
            return false;
    return true;
}

static int env_name(const char *name, const char *def, char *out, size_t size, sms_error_t *err)
{
    const char *v = getenv(name);
    if (!v || !*v)
        v = def;
    if (strlen(v) >= size || !safe_path_component(v))
        return sms_error_set(err, 500,
                             "invalid %s=\"%.64s\": expected 1 to %zu printable ASCII characters "
                             "without '/' or spaces, not \".\" or \"..\"",
                             name, v, size - 1);
    strcpy(out, v);
    return 0;
}

/* RFC 7230 tchar: what a media type's type and subtype are made of. */
static bool is_tchar(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static bool is_media_type(const char *s, size_t n)
{
    size_t slash = 0, i;
    for (i = 0; i < n; i++) {
        if (s[i] == '/') {
            if (slash || i == 0)
                return false;
            slash = i;
        } else if (!is_tchar(s[i])) {
            return false;
        }
    }
    return slash && slash + 1 < n;
}

/* Steps through a comma-separated list: sets [*a, *b) to the next item,
 * blanks trimmed, and returns false once the list is used up. *p starts at
 * the list and is advanced; an empty list still yields one empty item. */
static bool next_item(const char **p, const char **a, const char **b)
{
    if (!*p)
        return false;
    const char *end = strchr(*p, ',');
    if (!end)
        end = *p + strlen(*p);
    *a = *p;
    *b = end;
    while (*a < *b && (**a == ' ' || **a == '\t'))
        (*a)++;
    while (*b > *a && ((*b)[-1] == ' ' || (*b)[-1] == '\t'))
        (*b)--;
    *p = *end ? end + 1 : NULL;
    return true;
}

static int env_types(const char *name, const char *def, char types[][64], size_t *num,
                     sms_error_t *err)
{
    const char *v = getenv(name);
    if (!v || !*v)
        v = def;
    size_t count = 0;
    const char *p = v, *a, *b;
    while (next_item(&p, &a, &b)) {
        if (count == SMS_CAPTURE_MAX_TYPES || (size_t)(b - a) >= 64 ||
            !is_media_type(a, (size_t)(b - a)))
            return sms_error_set(err, 500,
                                 "invalid %s=\"%.64s\": expected 1 to %d comma-separated media "
                                 "types such as text/csv, each under 64 characters",
                                 name, v, SMS_CAPTURE_MAX_TYPES);
        memcpy(types[count], a, (size_t)(b - a));
        types[count][b - a] = '\0';
        count++;
    }
    *num = count;
    return 0;
}

/* Input, Output, Input,Output (either order) or SageMaker's InputAndOutput. */
static int env_options(bool *input, bool *output, sms_error_t *err)
{
    const char *name = "SMSERVE_CAPTURE_OPTIONS";
    const char *v = getenv(name);
    if (!v || !*v) {
        *input = *output = true;
        return 0;
    }
    bool in = false, out = false;
    const char *p = v, *a, *b;
    while (next_item(&p, &a, &b)) {
        size_t n = (size_t)(b - a);
        if (n == 5 && !strncasecmp(a, "Input", 5))
            in = true;
        else if (n == 6 && !strncasecmp(a, "Output", 6))
            out = true;
        else if (n == 14 && !strncasecmp(a, "InputAndOutput", 14))
            in = out = true;
        else
            return sms_error_set(
                err, 500, "invalid %s=\"%.64s\": expected Input, Output or Input,Output", name, v);
    }
    *input = in;
    *output = out;
    return 0;
}

int sms_capture_config_from_env(sms_capture_config_t *cfg, sms_error_t *err)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->sampling_percent = 100;
    cfg->queue_bytes = 64u << 20;
    cfg->max_file_bytes = 64u << 20;
    cfg->max_disk_used_percent = 75;
    if (sms_env_bool("SMSERVE_CAPTURE_ENABLE", &cfg->enabled, err) < 0 ||
        sms_env_double("SMSERVE_CAPTURE_SAMPLING_PERCENTAGE", 0, 100, &cfg->sampling_percent, err) <
            0 ||
        env_options(&cfg->capture_input, &cfg->capture_output, err) < 0 ||
        env_types("SMSERVE_CAPTURE_CSV_CONTENT_TYPES", "text/csv", cfg->csv_types,
                  &cfg->num_csv_types, err) < 0 ||
        env_types("SMSERVE_CAPTURE_JSON_CONTENT_TYPES", "application/json", cfg->json_types,
                  &cfg->num_json_types, err) < 0 ||
        env_name("SMSERVE_ENDPOINT_NAME", "local", cfg->endpoint, sizeof cfg->endpoint, err) < 0 ||
        env_name("SMSERVE_VARIANT_NAME", "AllTraffic", cfg->variant, sizeof cfg->variant, err) <
            0 ||
        env_bytes("SMSERVE_CAPTURE_QUEUE_BYTES", 1, 1ull << 40, &cfg->queue_bytes, err) < 0 ||
        env_bytes("SMSERVE_CAPTURE_MAX_FILE_BYTES", 1, 1ull << 40, &cfg->max_file_bytes, err) < 0 ||
        sms_env_double("SMSERVE_CAPTURE_MAX_DISK_PERCENT", 0, 100, &cfg->max_disk_used_percent,
                       err) < 0)
        return -1;

    const char *dir = getenv("SMSERVE_CAPTURE_DIR");
    if (!dir || !*dir)
        dir = "/opt/ml/capture";
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        len--;
    if (len >= sizeof cfg->dir)
        return sms_error_set(err, 500, "invalid SMSERVE_CAPTURE_DIR: longer than %zu bytes",
                             sizeof cfg->dir - 1);
    memcpy(cfg->dir, dir, len);
    cfg->dir[len] = '\0';
    return 0;
}

/* ---- randomness: UUIDs and sampling ------------------------------------ */

/* Each thread draws UUID bytes from its own pool, refilled by getrandom, so
 * a record costs a getrandom call only once per 32 UUIDs. The sampling PRNG
 * (splitmix64) is per thread too, seeded from getrandom on first use. */
static __thread unsigned char rnd_pool[512];
static __thread size_t rnd_pos = sizeof rnd_pool;
static __thread uint64_t sample_state;
static __thread bool sample_seeded;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static _Atomic uint64_t fallback_counter;

/* A forked child has only the forking thread: forget its pool and seed so
 * parent and child never share UUIDs. */
static void forget_thread_random(void)
{
    rnd_pos = sizeof rnd_pool;
    sample_seeded = false;
}

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, forget_thread_random);
}

static void fill_random(void *out, size_t n)
{
    unsigned char *p = out;
    while (n) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        p += r;
        n -= (size_t)r;
    }
    /* getrandom unavailable (old kernel, seccomp): clock and counter through
     * splitmix64 are unique enough for ids, though not secret. */
    if (n) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t s = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
        s ^= atomic_fetch_add(&fallback_counter, 1) << 40 ^ (uint64_t)(uintptr_t)out;
        while (n) {
            uint64_t x = sms_splitmix64(&s);
            size_t k = n < 8 ? n : 8;
            memcpy(p, &x, k);
            p += k;
            n -= k;
        }
    }
}

static const char HEX[] = "0123456789abcdef";

void sms_uuid4(char out[37])
{
    pthread_once(&atfork_once, register_atfork);
    if (rnd_pos + 16 > sizeof rnd_pool) {
        fill_random(rnd_pool, sizeof rnd_pool);
        rnd_pos = 0;
    }
    unsigned char b[16];
    memcpy(b, rnd_pool + rnd_pos, 16);
    rnd_pos += 16;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant 10xx */
    char *d = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *d++ = '-';
        *d++ = HEX[b[i] >> 4];
        *d++ = HEX[b[i] & 15];
    }
    *d = '\0';
}

void sms_capture_seed_thread(uint64_t seed)
{
    pthread_once(&atfork_once, register_atfork);
    sample_state = seed;
    sample_seeded = true;
}

static uint64_t sample_next(void)
{
    if (!sample_seeded) {
        pthread_once(&atfork_once, register_atfork);
        fill_random(&sample_state, sizeof sample_state);
        sample_seeded = true;
    }
    return sms_splitmix64(&sample_state);
}

/* ---- the queue and the writer --------------------------------------------- */

/* A queued record: the line follows the header in the same allocation. */
typedef struct record {
    struct record *next;
    int64_t time_ms;
    size_t len;
    int size_class; /* POOL_CLASSES: not pooled */
    char line[];
} record_t;

/* Written records are recycled rather than freed: a malloc on a request
 * thread paired with a free on the writer thread contends on the
 * allocator's arena lock and faults fresh pages. Records up to 64 KiB come
 * in power-of-two size classes from 512 bytes; the writer hands a written
 * batch back per class under the queue mutex (a few pointer moves), and a
 * request takes one in the critical section where it reserves its budget.
 * The pool never holds more than the records once in flight (a queue_bytes
 * bound), and at most twice POOL_CLASS_BYTES per class. */
#define POOL_CLASSES     8
#define POOL_MIN_SHIFT   9
#define POOL_CLASS_BYTES (4u << 20)

typedef struct record_list {
    record_t *head, *tail;
    size_t count;
} record_list_t;

static int size_class_of(size_t bytes)
{
    for (int k = 0; k < POOL_CLASSES; k++)
        if (bytes <= (size_t)1 << (POOL_MIN_SHIFT + k))
            return k;
    return POOL_CLASSES;
}

static void list_push(record_list_t *l, record_t *r)
{
    r->next = l->head;
    l->head = r;
    if (!l->tail)
        l->tail = r;
    l->count++;
}

static void list_free(record_list_t *l)
{
    for (record_t *r = l->head, *next; r; r = next) {
        next = r->next;
        free(r);
    }
    *l = (record_list_t){0};
}

enum { SAMPLE_NEVER, SAMPLE_SOME, SAMPLE_ALWAYS };

#define PATH_BYTES 2048

struct sms_capture {
    sms_capture_config_t cfg;
    int sample_mode;
    uint64_t sample_threshold; /* SAMPLE_SOME: captured when a 53-bit draw is below it */

    pthread_mutex_t mu;  /* guards head, tail, writer_waiting, stopping, linked, done */
    pthread_cond_t wake; /* the writer waits for records */
    pthread_cond_t idle; /* sms_capture_flush waits for the writer */
    record_t *head, *tail;
    bool writer_waiting, stopping;
    uint64_t linked, done;            /* records queued, and handled by the writer, so far */
    record_list_t pool[POOL_CLASSES]; /* under mu */
    _Atomic size_t queued_bytes;      /* added under mu, subtracted by the writer */
    atomic_bool paused;

    _Atomic uint64_t sampled, written, dropped, paused_drops, bytes_written, files;

    pthread_t thread;
    /* The writer thread's own. */
    int fd;
    int64_t file_hour;
    size_t file_bytes; /* bytes written to the current file */
    char path[PATH_BYTES];
    bool io_error_logged;
    struct timespec disk_checked;
    record_list_t spare[POOL_CLASSES]; /* written records, for the pool */
};

bool sms_capture_sample(sms_capture_t *c)
{
    if (!c || c->sample_mode == SAMPLE_NEVER)
        return false;
    if (c->sample_mode == SAMPLE_SOME && (sample_next() >> 11) >= c->sample_threshold)
        return false;
    atomic_fetch_add_explicit(&c->sampled, 1, memory_order_relaxed);
    return true;
}

static void count_drop(sms_capture_t *c, bool paused)
{
    atomic_fetch_add_explicit(&c->dropped, 1, memory_order_relaxed);
    if (paused)
        atomic_fetch_add_explicit(&c->paused_drops, 1, memory_order_relaxed);
}

int sms_capture_submit(sms_capture_t *c, const sms_capture_event_t *ev)
{
    if (!c)
        return -1;
    if (atomic_load_explicit(&c->paused, memory_order_relaxed)) {
        count_drop(c, true);
        return -1;
    }
    /* Cheap early refusal before encoding anything; the exact budget check
     * is under the mutex below. */
    if (atomic_load_explicit(&c->queued_bytes, memory_order_relaxed) >= c->cfg.queue_bytes)
        goto drop;
    char event_id[37];
    sms_uuid4(event_id);
    sms_capture_record_t rec;
    if (sms_capture_record_plan(&c->cfg, ev, event_id, &rec) < 0 || rec.len > c->cfg.queue_bytes ||
        rec.len > SIZE_MAX - sizeof(record_t))
        goto drop;
    int size_class = size_class_of(sizeof(record_t) + rec.len);

    /* Reserve the budget and take a pooled record in one short section,
     * encode outside it, link in a second one. */
    pthread_mutex_lock(&c->mu);
    size_t queued = atomic_load_explicit(&c->queued_bytes, memory_order_relaxed);
    if (c->stopping || queued + rec.len > c->cfg.queue_bytes) {
        pthread_mutex_unlock(&c->mu);
        goto drop;
    }
    atomic_fetch_add_explicit(&c->queued_bytes, rec.len, memory_order_relaxed);
    record_t *r = NULL;
    if (size_class < POOL_CLASSES && c->pool[size_class].head) {
        record_list_t *l = &c->pool[size_class];
        r = l->head;
        l->head = r->next;
        if (!l->head)
            l->tail = NULL;
        l->count--;
    }
    pthread_mutex_unlock(&c->mu);
    if (!r) {
        r = malloc(size_class < POOL_CLASSES ? (size_t)1 << (POOL_MIN_SHIFT + size_class)
                                             : sizeof *r + rec.len);
        if (!r) {
            atomic_fetch_sub_explicit(&c->queued_bytes, rec.len, memory_order_relaxed);
            goto drop;
        }
        r->size_class = size_class;
    }
    sms_capture_record_write(r->line, &rec);
    r->next = NULL;
    r->time_ms = ev->time_ms;
    r->len = rec.len;

    pthread_mutex_lock(&c->mu);
    if (c->tail)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    c->linked++;
    bool wake = c->writer_waiting;
    c->writer_waiting = false;
    pthread_mutex_unlock(&c->mu);
    if (wake)
        pthread_cond_signal(&c->wake);
    return 0;
drop:
    count_drop(c, false);
    return -1;
}

int sms_capture_file_path(const sms_capture_config_t *cfg, int64_t time_ms, const char *uuid,
                          char *out, size_t size)
{
    sms_capture_utc_t u;
    sms_capture_utc(time_ms, &u);
    int n = snprintf(out, size, "%s/%s/%04d/%02d/%02d/%02d/%02d-%02d-%03d-%s.jsonl", cfg->endpoint,
                     cfg->variant, u.year, u.month, u.day, u.hour, u.min, u.sec, u.ms, uuid);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* mkdir -p of the directory part of path (up to the last '/'), 0755. */
static int make_parents(const char *path)
{
    char buf[PATH_BYTES];
    size_t n = strlen(path);
    if (n >= sizeof buf)
        return -1;
    memcpy(buf, path, n + 1);
    char *last = strrchr(buf, '/');
    if (!last || last == buf)
        return 0;
    *last = '\0';
    if (mkdir(buf, 0755) == 0 || errno == EEXIST)
        return 0;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

static void close_file(sms_capture_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static void io_error(sms_capture_t *c, const char *what, int errnum)
{
    if (!c->io_error_logged)
        sms_log("capture: cannot %s %s: %s (records are dropped until it works)", what, c->path,
                strerror(errnum));
    c->io_error_logged = true;
}

/* Closes the current file and opens a new one named after the time of its
 * first record, r. On failure c->fd stays -1. */
static void open_file(sms_capture_t *c, const record_t *r)
{
    close_file(c);
    char uuid[37], rel[1024];
    sms_uuid4(uuid);
    if (sms_capture_file_path(&c->cfg, r->time_ms, uuid, rel, sizeof rel) < 0 ||
        snprintf(c->path, sizeof c->path, "%s/%s", c->cfg.dir, rel) >= (int)sizeof c->path) {
        io_error(c, "name a file under", ENAMETOOLONG);
        return;
    }
    if (make_parents(c->path) < 0) {
        io_error(c, "create the directory of", errno);
        return;
    }
    c->fd = open(c->path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (c->fd < 0) {
        io_error(c, "create", errno);
        return;
    }
    c->file_hour = sms_capture_hour(r->time_ms);
    c->file_bytes = 0;
    atomic_fetch_add_explicit(&c->files, 1, memory_order_relaxed);
}

/* Keeps a handled record for the pool (see return_spares). */
static void retire(sms_capture_t *c, record_t *r)
{
    if (r->size_class < POOL_CLASSES)
        list_push(&c->spare[r->size_class], r);
    else
        free(r);
}

/* Frees spare records beyond POOL_CLASS_BYTES per class (before taking
 * the mutex: frees are not for the critical section). */
static void trim_spares(sms_capture_t *c)
{
    for (int k = 0; k < POOL_CLASSES; k++) {
        record_list_t *s = &c->spare[k];
        size_t keep = POOL_CLASS_BYTES >> (POOL_MIN_SHIFT + k);
        if (s->count <= keep)
            continue;
        record_t *r = s->head;
        for (size_t i = 1; i < keep; i++)
            r = r->next;
        record_list_t extra = {r->next, s->tail, s->count - keep};
        r->next = NULL;
        s->tail = r;
        s->count = keep;
        list_free(&extra);
    }
}

/* With c->mu held: moves the writer's spare records to the pool, class by
 * class, while the class holds under POOL_CLASS_BYTES (so at most twice
 * that); the rest stay in c->spare for free_spares after the mutex is
 * released. */
static void return_spares(sms_capture_t *c)
{
    for (int k = 0; k < POOL_CLASSES; k++) {
        record_list_t *s = &c->spare[k], *p = &c->pool[k];
        if (!s->head || p->count << (POOL_MIN_SHIFT + k) >= POOL_CLASS_BYTES)
            continue;
        s->tail->next = p->head;
        p->head = s->head;
        if (!p->tail)
            p->tail = s->tail;
        p->count += s->count;
        *s = (record_list_t){0};
    }
}

static void free_spares(sms_capture_t *c)
{
    for (int k = 0; k < POOL_CLASSES; k++)
        list_free(&c->spare[k]);
}

#define MAX_IOV 256

/* Writes the n pending whole lines to the current file with writev, looping
 * on partial writes. On an error the file is cut back to its last whole
 * line, so a reader never sees a torn line, and closed; the lines not
 * written are counted as dropped. Frees the records either way. */
static void flush_lines(sms_capture_t *c, record_t **pending, size_t *num)
{
    size_t n = *num, total = 0;
    if (!n)
        return;
    struct iovec iov[MAX_IOV];
    for (size_t i = 0; i < n; i++) {
        iov[i].iov_base = pending[i]->line;
        iov[i].iov_len = pending[i]->len;
        total += pending[i]->len;
    }
    size_t done = 0, first = 0;
    int errnum = 0;
    while (first < n) {
        ssize_t w = writev(c->fd, iov + first, (int)(n - first));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            errnum = w < 0 ? errno : EIO;
            break;
        }
        done += (size_t)w;
        size_t left = (size_t)w;
        while (first < n && left >= iov[first].iov_len)
            left -= iov[first++].iov_len;
        if (left) {
            iov[first].iov_base = (char *)iov[first].iov_base + left;
            iov[first].iov_len -= left;
        }
    }
    size_t lines = 0, whole = 0;
    while (lines < n && whole + pending[lines]->len <= done)
        whole += pending[lines++]->len;
    if (errnum) {
        if (done > whole && ftruncate(c->fd, (off_t)(c->file_bytes + whole)) < 0)
            errnum = errno;
        io_error(c, "write", errnum);
        close_file(c);
    } else {
        c->io_error_logged = false;
    }
    c->file_bytes += whole;
    atomic_fetch_add_explicit(&c->written, lines, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->bytes_written, whole, memory_order_relaxed);
    if (n > lines)
        atomic_fetch_add_explicit(&c->dropped, n - lines, memory_order_relaxed);
    for (size_t i = 0; i < n; i++)
        retire(c, pending[i]);
    atomic_fetch_sub_explicit(&c->queued_bytes, total, memory_order_relaxed);
    *num = 0;
}

/* Appends a batch (oldest first) to the files: each record goes to a file
 * of its own hour; a file is closed when the next line would take it past
 * max_file_bytes (a single longer line gets a file to itself). Returns the
 * number of records handled. */
static uint64_t write_batch(sms_capture_t *c, record_t *r)
{
    uint64_t count = 0;
    record_t *pending[MAX_IOV];
    size_t num = 0, planned = c->fd >= 0 ? c->file_bytes : 0; /* plus the pending lines */
    while (r) {
        record_t *next = r->next;
        if (c->fd < 0 || sms_capture_hour(r->time_ms) != c->file_hour ||
            (planned > 0 && planned + r->len > c->cfg.max_file_bytes)) {
            flush_lines(c, pending, &num);
            open_file(c, r);
            planned = 0;
        }
        if (c->fd < 0) {
            atomic_fetch_add_explicit(&c->dropped, 1, memory_order_relaxed);
            atomic_fetch_sub_explicit(&c->queued_bytes, r->len, memory_order_relaxed);
            retire(c, r);
        } else {
            pending[num++] = r;
            planned += r->len;
            if (num == MAX_IOV)
                flush_lines(c, pending, &num);
            if (c->fd < 0)
                planned = 0;
        }
        r = next;
        count++;
    }
    flush_lines(c, pending, &num);
    return count;
}

/* The share of the file system in use, as df computes it. */
static int disk_used_percent(const char *dir, double *out)
{
    struct statvfs st;
    if (statvfs(dir, &st) < 0)
        return -1;
    double used = (double)(st.f_blocks - st.f_bfree), avail = (double)st.f_bavail;
    *out = used + avail > 0 ? used * 100 / (used + avail) : 0;
    return 0;
}

/* Pauses capture above the limit and resumes below it; logs each change
 * once. A failed statvfs keeps the current state. */
static void check_disk(sms_capture_t *c)
{
    clock_gettime(CLOCK_MONOTONIC, &c->disk_checked);
    double used;
    if (disk_used_percent(c->cfg.dir, &used) < 0)
        return;
    double limit = c->cfg.max_disk_used_percent;
    bool paused = atomic_load(&c->paused);
    if (!paused && used > limit) {
        atomic_store(&c->paused, true);
        sms_log("capture paused: %s is %.0f%% full (limit %g%%)", c->cfg.dir, ceil(used), limit);
    } else if (paused && used < limit) {
        atomic_store(&c->paused, false);
        sms_log("capture resumed: %s is %.0f%% full (limit %g%%)", c->cfg.dir, ceil(used), limit);
    }
}

static bool disk_check_due(const sms_capture_t *c)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec - c->disk_checked.tv_sec > 1 ||
           (now.tv_sec - c->disk_checked.tv_sec == 1 && now.tv_nsec >= c->disk_checked.tv_nsec);
}

static void *writer_main(void *arg)
{
    sms_capture_t *c = arg;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        if (!c->head && !c->stopping) {
            /* Wake at least once a second for the disk check. */
            struct timespec deadline = c->disk_checked;
            deadline.tv_sec += 1;
            c->writer_waiting = true;
            pthread_cond_timedwait(&c->wake, &c->mu, &deadline);
            c->writer_waiting = false;
            if (c->head && !c->stopping) {
                /* Woken by a first record: let a batch gather for 1 ms, so
                 * that under load requests seldom pay for a wake-up (they
                 * signal only a waiting writer) and one writev takes many
                 * lines. */
                pthread_mutex_unlock(&c->mu);
                nanosleep(&(struct timespec){0, 1000000}, NULL);
                pthread_mutex_lock(&c->mu);
            }
        }
        record_t *batch = c->head;
        c->head = c->tail = NULL;
        bool stopping = c->stopping;
        pthread_mutex_unlock(&c->mu);

        if (disk_check_due(c))
            check_disk(c);
        if (batch) {
            uint64_t n = write_batch(c, batch);
            trim_spares(c);
            pthread_mutex_lock(&c->mu);
            c->done += n;
            return_spares(c);
            pthread_mutex_unlock(&c->mu);
            pthread_cond_broadcast(&c->idle);
            free_spares(c);
        } else if (stopping) {
            break;
        }
    }
    close_file(c);
    return NULL;
}

sms_capture_t *sms_capture_start(const sms_capture_config_t *cfg, sms_error_t *err)
{
    if (!safe_path_component(cfg->endpoint) || !safe_path_component(cfg->variant)) {
        sms_error_set(err, 500, "capture: endpoint and variant names must be safe path parts");
        return NULL;
    }
    sms_capture_t *c = calloc(1, sizeof *c);
    if (!c) {
        sms_error_set(err, 500, "capture: out of memory");
        return NULL;
    }
    c->cfg = *cfg;
    c->fd = -1;
    double p = cfg->sampling_percent;
    c->sample_mode = p >= 100 ? SAMPLE_ALWAYS : p > 0 ? SAMPLE_SOME : SAMPLE_NEVER;
    c->sample_threshold = (uint64_t)ldexp(p / 100, 53);

    /* Created now so that an unusable destination fails at start-up. */
    if (snprintf(c->path, sizeof c->path, "%s/%s/%s/x", cfg->dir, cfg->endpoint, cfg->variant) >=
        (int)sizeof c->path) {
        sms_error_set(err, 500, "capture: SMSERVE_CAPTURE_DIR is too long");
        goto fail;
    }
    if (make_parents(c->path) < 0) {
        sms_error_set(err, 500, "capture: cannot create %s/%s/%s: %s", cfg->dir, cfg->endpoint,
                      cfg->variant, strerror(errno));
        goto fail;
    }
    c->path[strlen(c->path) - 2] = '\0';
    if (access(c->path, W_OK | X_OK) < 0) {
        sms_error_set(err, 500, "capture: cannot write to %s: %s", c->path, strerror(errno));
        goto fail;
    }
    check_disk(c);

    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->wake, &attr);
    pthread_condattr_destroy(&attr);
    pthread_cond_init(&c->idle, NULL);
    pthread_mutex_init(&c->mu, NULL);

    /* The writer blocks every signal so SIGTERM reaches the server's own
     * handling, not this thread. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&c->thread, NULL, writer_main, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        sms_error_set(err, 500, "capture: cannot start the writer thread: %s", strerror(rc));
        pthread_cond_destroy(&c->wake);
        pthread_cond_destroy(&c->idle);
        pthread_mutex_destroy(&c->mu);
        goto fail;
    }
    return c;
fail:
    free(c);
    return NULL;
}

void sms_capture_stop(sms_capture_t *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    pthread_mutex_unlock(&c->mu);
    pthread_cond_signal(&c->wake);
    pthread_join(c->thread, NULL);
    for (int k = 0; k < POOL_CLASSES; k++)
        list_free(&c->pool[k]);
    pthread_cond_destroy(&c->wake);
    pthread_cond_destroy(&c->idle);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void sms_capture_flush(sms_capture_t *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    uint64_t target = c->linked;
    bool wake = c->writer_waiting;
    c->writer_waiting = false;
    if (wake)
        pthread_cond_signal(&c->wake);
    while (c->done < target)
        pthread_cond_wait(&c->idle, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

void sms_capture_stats(sms_capture_t *c, sms_capture_stats_t *out)
{
    memset(out, 0, sizeof *out);
    if (!c)
        return;
    out->sampled = atomic_load_explicit(&c->sampled, memory_order_relaxed);
    out->written = atomic_load_explicit(&c->written, memory_order_relaxed);
    out->dropped = atomic_load_explicit(&c->dropped, memory_order_relaxed);
    out->paused_drops = atomic_load_explicit(&c->paused_drops, memory_order_relaxed);
    out->bytes_written = atomic_load_explicit(&c->bytes_written, memory_order_relaxed);
    out->files = atomic_load_explicit(&c->files, memory_order_relaxed);
    out->paused = atomic_load_explicit(&c->paused, memory_order_relaxed);
}
