/* The models of a multi-model endpoint (see smserve/registry.h).
 *
 * A name maps to an entry in a chained hash table. An entry is LOADING
 * while one call loads it (others asking for it wait on the registry's
 * condition variable), READY once loaded and counted in the budget, and
 * leaves the table when it is unloaded or its load fails. Whoever holds an
 * entry holds a reference: the loader, the requests using it, the calls
 * waiting for its load. An unload takes the entry out of the table at once
 * (the name can be loaded again) and waits for the references to go; a
 * failed entry is freed by whoever drops its last reference. */
#define _GNU_SOURCE
#include "smserve/registry.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "smserve/artifact.h"

typedef enum { ST_LOADING, ST_READY, ST_UNLOADING, ST_FAILED } state_t;

/* Loader threads: loads of different names run in parallel up to this. */
#define LOADERS          2
#define LOAD_STACK_BYTES (8u << 20)

typedef struct load_job {
    struct load_job *next;
    const char *url;
    sms_error_t *err;
    sms_model_t *model;
    bool done;
} load_job_t;

/* A loader thread. Each waits on its own condition variable, so that a job
 * goes to the lowest-numbered idle one: loads one after another all run on
 * loader 0, whose heap and thread state the previous load left warm (a
 * shared condition variable would take turns between the threads). */
typedef struct loader {
    sms_registry_t *r;
    pthread_t thread;
    pthread_cond_t wake;
    bool idle; /* waiting for a job and not yet woken for one */
} loader_t;

struct sms_loaded {
    struct sms_loaded *next; /* hash chain */
    char *name, *url;
    size_t name_len;
    state_t state;
    int refs;
    size_t bytes; /* counted in used_bytes while READY or UNLOADING */
    sms_model_t *model;
    sms_model_series_t *series;
    sms_error_t err; /* why the load failed (ST_FAILED) */
};

struct sms_registry {
    sms_registry_config_t cfg;
    sms_metrics_t *metrics;
    pthread_mutex_t mu;
    pthread_cond_t changed; /* an entry left LOADING, or lost a reference */
    sms_loaded_t **buckets;
    size_t n_buckets; /* a power of two */
    size_t entries;   /* in the table: LOADING and READY */
    size_t loaded, loading, used;
    /* the loader threads and their queue */
    pthread_mutex_t jobs_mu;
    pthread_cond_t done_cv;
    load_job_t *jobs;
    bool stopping;
    loader_t loaders[LOADERS];
    int n_loaders;
};

static void *loader_main(void *arg);

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* FNV-1a */
static size_t hash_of(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return (size_t)h;
}

static sms_loaded_t **slot_of(sms_registry_t *r, const char *name, size_t n)
{
    sms_loaded_t **p = &r->buckets[hash_of(name, n) & (r->n_buckets - 1)];
    while (*p && !((*p)->name_len == n && !memcmp((*p)->name, name, n)))
        p = &(*p)->next;
    return p;
}

static sms_loaded_t *find(sms_registry_t *r, const char *name)
{
    return *slot_of(r, name, strlen(name));
}

/* Doubles the table when it holds as many entries as buckets. */
static void maybe_grow(sms_registry_t *r)
{
    if (r->entries < r->n_buckets)
        return;
    size_t n = r->n_buckets * 2;
    sms_loaded_t **b = calloc(n, sizeof *b);
    if (!b)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < r->n_buckets; i++) {
        for (sms_loaded_t *e = r->buckets[i], *next; e; e = next) {
            next = e->next;
            size_t k = hash_of(e->name, e->name_len) & (n - 1);
            e->next = b[k];
            b[k] = e;
        }
    }
    free(r->buckets);
    r->buckets = b;
    r->n_buckets = n;
}

static void unlink_entry(sms_registry_t *r, sms_loaded_t *e)
{
    sms_loaded_t **p = slot_of(r, e->name, e->name_len);
    if (*p == e) {
        *p = e->next;
        r->entries--;
    }
    e->next = NULL;
}

static void entry_free(sms_loaded_t *e)
{
    if (!e)
        return;
    free(e->name);
    free(e->url);
    free(e);
}

/* Drops a reference (under the lock). The last one frees a failed entry,
 * or wakes the unload waiting for it. */
static void drop(sms_registry_t *r, sms_loaded_t *e)
{
    if (--e->refs > 0)
        return;
    if (e->state == ST_FAILED)
        entry_free(e);
    else if (e->state == ST_UNLOADING)
        pthread_cond_broadcast(&r->changed);
}

sms_registry_t *sms_registry_create(const sms_registry_config_t *cfg, sms_metrics_t *metrics)
{
    sms_registry_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->cfg = *cfg;
    r->metrics = metrics;
    r->n_buckets = 64;
    r->buckets = calloc(r->n_buckets, sizeof *r->buckets);
    if (!r->buckets) {
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&r->changed, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&r->jobs_mu, NULL);
    pthread_cond_init(&r->done_cv, NULL);
    pthread_attr_t big;
    pthread_attr_init(&big);
    pthread_attr_setstacksize(&big, LOAD_STACK_BYTES);
    for (int i = 0; i < LOADERS; i++) {
        loader_t *l = &r->loaders[r->n_loaders];
        l->r = r;
        pthread_cond_init(&l->wake, NULL);
        if (pthread_create(&l->thread, &big, loader_main, l) == 0)
            r->n_loaders++;
        else
            pthread_cond_destroy(&l->wake);
    }
    pthread_attr_destroy(&big);
    if (r->n_loaders == 0) {
        sms_registry_free(r);
        return NULL;
    }
    sms_metrics_set_multi_model(metrics, true);
    sms_metrics_set_loaded_models(metrics, 0);
    return r;
}

void sms_registry_free(sms_registry_t *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->jobs_mu);
    r->stopping = true;
    for (int i = 0; i < r->n_loaders; i++)
        pthread_cond_signal(&r->loaders[i].wake);
    pthread_mutex_unlock(&r->jobs_mu);
    for (int i = 0; i < r->n_loaders; i++) {
        pthread_join(r->loaders[i].thread, NULL);
        pthread_cond_destroy(&r->loaders[i].wake);
    }
    pthread_mutex_destroy(&r->jobs_mu);
    pthread_cond_destroy(&r->done_cv);
    for (size_t i = 0; i < r->n_buckets; i++) {
        for (sms_loaded_t *e = r->buckets[i], *next; e; e = next) {
            next = e->next;
            sms_metrics_model_remove(r->metrics, e->series);
            sms_model_free(e->model);
            entry_free(e);
        }
    }
    free(r->buckets);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->changed);
    free(r);
}

int sms_registry_check_name(const char *name, size_t len, sms_error_t *err)
{
    if (len == 0)
        return sms_error_set(err, 400, "the model name is empty");
    if (len > SMS_MODEL_NAME_MAX)
        return sms_error_set(err, 400, "the model name is %zu bytes; at most %d are taken", len,
                             SMS_MODEL_NAME_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-' || ch == '~';
        if (!ok)
            return sms_error_set(err, 400,
                                 "the model name has byte %zu = 0x%02x; a name is letters, digits "
                                 "and . _ - ~",
                                 i + 1, ch);
    }
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return sms_error_set(err, 400, "the model name cannot be \"%.*s\"", (int)len, name);
    return 0;
}

/* Waits (under the lock) until e has left LOADING or the deadline passes
 * (deadline_us 0: no deadline). */
static void wait_loaded(sms_registry_t *r, sms_loaded_t *e, uint64_t deadline_us)
{
    while (e->state == ST_LOADING) {
        if (!deadline_us) {
            pthread_cond_wait(&r->changed, &r->mu);
            continue;
        }
        uint64_t now = now_us();
        if (now >= deadline_us)
            return;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t left = deadline_us - now;
        ts.tv_sec += (time_t)(left / 1000000u);
        ts.tv_nsec += (long)(left % 1000000u) * 1000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&r->changed, &r->mu, &ts);
    }
}

/* Scans and loads url (no lock held): the same checks as single-model
 * serving, then SAGEMAKER_INFERENCE_OUTPUT against the model. */
static sms_model_t *load_model(sms_registry_t *r, const char *url, sms_error_t *err)
{
    struct stat st;
    if (stat(url, &st) != 0)
        return sms_error_set(err, errno == ENOENT || errno == ENOTDIR ? 404 : 400,
                             "the model url \"%.300s\" cannot be read: %s", url, strerror(errno)),
               NULL;
    sms_artifact_set_t set;
    sms_version_t rt = sms_model_runtime_version();
    sms_model_t *model = NULL;
    sms_diag_t diag = {0};
    const sms_diag_t *d = NULL; /* why the model is refused */
    if (sms_artifacts_scan(url, rt, r->cfg.allow_newer, &set) < 0) {
        d = &set.diag;
        for (size_t i = 0; i < set.count && set.diag.check[0] == '\0'; i++)
            if (!set.items[i].ok)
                d = &set.items[i].diag;
    } else if (sms_model_load(&set, r->cfg.native, &model, &diag) < 0) {
        d = &diag;
    }
    if (d)
        sms_error_set(err, 400, "the model at \"%.300s\" is refused (%s): %s%s%s", url, d->check,
                      d->reason, d->fix[0] ? "; fix: " : "", d->fix);
    else if (r->cfg.sel && sms_selection_check(r->cfg.sel, sms_task_of(sms_model_objective(model)),
                                               sms_model_objective(model), err) < 0) {
        err->status = 400;
        sms_model_free(model);
        model = NULL;
    }
    sms_artifacts_free(&set);
    return model;
}

/* Loads run on the registry's loader threads: the HTTP threads have small
 * stacks, and scanning, extracting and loading a model want more (the
 * archive reader alone takes 64 KiB of buffer). The threads live as long as
 * the registry, because XGBoost keeps per-thread state that it frees only at
 * exit: a thread per load would leave some behind every time. */
static void *loader_main(void *arg)
{
    loader_t *self = arg;
    sms_registry_t *r = self->r;
    /* XGBoost reads a model's trees in an OpenMP loop before the booster's
     * nthread=1 applies: without this every load wakes a team of workers. */
    sms_model_thread_serial();
    pthread_mutex_lock(&r->jobs_mu);
    for (;;) {
        while (!r->jobs && !r->stopping) {
            self->idle = true;
            pthread_cond_wait(&self->wake, &r->jobs_mu);
        }
        self->idle = false;
        if (!r->jobs)
            break;
        load_job_t *job = r->jobs;
        r->jobs = job->next;
        pthread_mutex_unlock(&r->jobs_mu);
        job->model = load_model(r, job->url, job->err);
        pthread_mutex_lock(&r->jobs_mu);
        job->done = true;
        pthread_cond_broadcast(&r->done_cv);
    }
    pthread_mutex_unlock(&r->jobs_mu);
    sms_model_thread_cleanup();
    return NULL;
}

static sms_model_t *load_on_loader(sms_registry_t *r, const char *url, sms_error_t *err)
{
    load_job_t job = {.url = url, .err = err};
    pthread_mutex_lock(&r->jobs_mu);
    load_job_t **tail = &r->jobs;
    while (*tail)
        tail = &(*tail)->next;
    *tail = &job;
    for (int i = 0; i < r->n_loaders; i++)
        if (r->loaders[i].idle) {
            r->loaders[i].idle = false;
            pthread_cond_signal(&r->loaders[i].wake);
            break;
        }
    while (!job.done)
        pthread_cond_wait(&r->done_cv, &r->jobs_mu);
    pthread_mutex_unlock(&r->jobs_mu);
    return job.model;
}

int sms_registry_load(sms_registry_t *r, const char *name, const char *url, uint64_t *load_us,
                      size_t *bytes_out, sms_error_t *err)
{
    uint64_t start = now_us();
    *load_us = 0;
    *bytes_out = 0;
    pthread_mutex_lock(&r->mu);
    sms_loaded_t *e = find(r, name);
    if (e && e->state == ST_LOADING) {
        /* Loaded once: this call answers as if it came after. */
        e->refs++;
        wait_loaded(r, e, 0);
        int rc = 0;
        if (e->state == ST_READY)
            rc = sms_error_set(err, 409, "model \"%s\" was loaded by a concurrent request", name);
        else
            rc = sms_error_set(err, e->err.status, "%s", e->err.msg);
        drop(r, e);
        pthread_mutex_unlock(&r->mu);
        return rc;
    }
    if (e) {
        pthread_mutex_unlock(&r->mu);
        return sms_error_set(err, 409, "model \"%s\" is loaded already; DELETE /models/%s first",
                             name, name);
    }
    if (r->used >= r->cfg.budget_bytes) {
        size_t used = r->used, loaded = r->loaded;
        pthread_mutex_unlock(&r->mu);
        return sms_error_set(err, 507,
                             "the model memory budget is full: %zu models hold %zu of %zu bytes; "
                             "unload one (DELETE /models/{name}) and retry",
                             loaded, used, r->cfg.budget_bytes);
    }
    e = calloc(1, sizeof *e);
    if (e) {
        e->name_len = strlen(name);
        e->name = strdup(name);
        e->url = strdup(url);
    }
    if (!e || !e->name || !e->url) {
        entry_free(e);
        pthread_mutex_unlock(&r->mu);
        return sms_error_set(err, 500, "out of memory loading model \"%s\"", name);
    }
    e->state = ST_LOADING;
    e->refs = 1;
    maybe_grow(r);
    sms_loaded_t **slot = slot_of(r, name, e->name_len);
    *slot = e;
    r->entries++;
    r->loading++;
    pthread_mutex_unlock(&r->mu);

    sms_model_t *model = load_on_loader(r, url, &e->err);
    size_t bytes = model ? sms_model_bytes(model) + sizeof *e + e->name_len + strlen(url) + 2 : 0;
    sms_model_series_t *series = model ? sms_metrics_model_add(r->metrics, name) : NULL;

    pthread_mutex_lock(&r->mu);
    r->loading--;
    size_t left = r->used < r->cfg.budget_bytes ? r->cfg.budget_bytes - r->used : 0;
    if (model && bytes > left)
        sms_error_set(&e->err, 507,
                      "model \"%s\" needs %zu bytes and the budget has %zu of %zu left (%zu "
                      "models loaded); unload one (DELETE /models/{name}) and retry",
                      name, bytes, left, r->cfg.budget_bytes, r->loaded);
    else if (model && r->metrics && !series)
        sms_error_set(&e->err, 500, "out of memory loading model \"%s\"", name);
    bool ok = model && e->err.status == 0;
    if (ok) {
        e->model = model;
        e->series = series;
        e->bytes = bytes;
        e->state = ST_READY;
        r->used += bytes;
        r->loaded++;
        sms_metrics_set_loaded_models(r->metrics, r->loaded);
    } else {
        unlink_entry(r, e);
        e->state = ST_FAILED;
    }
    pthread_cond_broadcast(&r->changed);
    int rc = ok ? 0 : sms_error_set(err, e->err.status, "%s", e->err.msg);
    drop(r, e);
    pthread_mutex_unlock(&r->mu);

    if (!ok) {
        sms_metrics_model_remove(r->metrics, series);
        sms_model_free(model);
        return rc;
    }
    *load_us = now_us() - start;
    *bytes_out = bytes;
    sms_metrics_model_loaded(r->metrics, *load_us);
    return 0;
}

int sms_registry_unload(sms_registry_t *r, const char *name, sms_error_t *err)
{
    uint64_t start = now_us();
    pthread_mutex_lock(&r->mu);
    sms_loaded_t *e = find(r, name);
    if (!e) {
        pthread_mutex_unlock(&r->mu);
        return sms_error_set(err, 404, "model \"%s\" is not loaded", name);
    }
    if (e->state == ST_LOADING) {
        pthread_mutex_unlock(&r->mu);
        return sms_error_set(err, 409, "model \"%s\" is still loading; retry when it is loaded",
                             name);
    }
    unlink_entry(r, e);
    e->state = ST_UNLOADING;
    r->loaded--;
    sms_metrics_set_loaded_models(r->metrics, r->loaded);
    while (e->refs > 0)
        pthread_cond_wait(&r->changed, &r->mu);
    pthread_mutex_unlock(&r->mu);

    sms_metrics_model_remove(r->metrics, e->series);
    sms_model_free(e->model);
    pthread_mutex_lock(&r->mu);
    r->used -= e->bytes;
    pthread_mutex_unlock(&r->mu);
    entry_free(e);
    sms_metrics_model_unloaded(r->metrics, now_us() - start);
    return 0;
}

sms_loaded_t *sms_registry_acquire(sms_registry_t *r, const char *name, uint64_t *waited_us,
                                   sms_error_t *err)
{
    *waited_us = 0;
    pthread_mutex_lock(&r->mu);
    sms_loaded_t *e = find(r, name);
    if (e && e->state == ST_READY) {
        e->refs++;
        pthread_mutex_unlock(&r->mu);
        return e;
    }
    if (!e) {
        pthread_mutex_unlock(&r->mu);
        sms_error_set(err, 404, "model \"%s\" is not loaded; load it with POST /models", name);
        return NULL;
    }
    /* Being loaded: wait for it. */
    uint64_t start = now_us();
    e->refs++;
    wait_loaded(r, e, start + (uint64_t)r->cfg.wait_ms * 1000u);
    *waited_us = now_us() - start;
    state_t st = e->state;
    if (st == ST_READY) {
        pthread_mutex_unlock(&r->mu);
        return e;
    }
    if (st == ST_LOADING)
        sms_error_set(err, 503, "model \"%s\" is still loading after %d ms; retry", name,
                      r->cfg.wait_ms);
    else
        sms_error_set(err, 404, "model \"%s\" is not loaded: its load failed: %s", name,
                      e->err.msg);
    drop(r, e);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

void sms_registry_release(sms_registry_t *r, sms_loaded_t *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&r->mu);
    drop(r, l);
    pthread_mutex_unlock(&r->mu);
}

sms_model_t *sms_loaded_model(const sms_loaded_t *l)
{
    return l->model;
}

const char *sms_loaded_name(const sms_loaded_t *l)
{
    return l->name;
}

const char *sms_loaded_url(const sms_loaded_t *l)
{
    return l->url;
}

size_t sms_loaded_bytes(const sms_loaded_t *l)
{
    return l->bytes;
}

sms_model_series_t *sms_loaded_series(const sms_loaded_t *l)
{
    return l->series;
}

static int by_name(const void *a, const void *b)
{
    const sms_loaded_t *x = *(sms_loaded_t *const *)a, *y = *(sms_loaded_t *const *)b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    return c ? c : (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

size_t sms_registry_list(sms_registry_t *r, const char *after, size_t limit,
                         void (*each)(void *arg, const char *name, const char *url), void *arg,
                         bool *more)
{
    *more = false;
    pthread_mutex_lock(&r->mu);
    sms_loaded_t **all = malloc((r->loaded ? r->loaded : 1) * sizeof *all);
    size_t n = 0, listed = 0;
    if (!all) {
        pthread_mutex_unlock(&r->mu);
        return 0;
    }
    for (size_t i = 0; i < r->n_buckets; i++)
        for (sms_loaded_t *e = r->buckets[i]; e; e = e->next)
            if (e->state == ST_READY && n < r->loaded)
                all[n++] = e;
    qsort(all, n, sizeof *all, by_name);
    size_t from = 0;
    if (after && *after) {
        /* the first name after `after` */
        sms_loaded_t key = {.name = (char *)after, .name_len = strlen(after)};
        sms_loaded_t *k = &key;
        size_t lo = 0, hi = n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (by_name(&all[mid], &k) <= 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        from = lo;
    }
    for (size_t i = from; i < n && listed < limit; i++, listed++)
        each(arg, all[i]->name, all[i]->url);
    *more = from + listed < n;
    pthread_mutex_unlock(&r->mu);
    free(all);
    return listed;
}

void sms_registry_stats(sms_registry_t *r, sms_registry_stats_t *out)
{
    pthread_mutex_lock(&r->mu);
    out->loaded = r->loaded;
    out->loading = r->loading;
    out->used_bytes = r->used;
    out->budget_bytes = r->cfg.budget_bytes;
    pthread_mutex_unlock(&r->mu);
}
