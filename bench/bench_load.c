/* Load benchmark for multi-model endpoints: how long a model takes from its
 * directory (or model.tar.gz) to servable, as main.c does it (scan, then
 * sms_model_load), and how many bytes a loaded model holds, measured against
 * what sms_model_bytes says. Models are made at run time by
 * make_load_model.py (beside this file) with /usr/bin/python3's xgboost.
 *
 *   bench_load [-n loads] [-k copies] [-e native|xgboost] [-t | -m] [-y SPEC]
 *              [-s SPEC,...]
 *
 * Timing (-t, or both without -t/-m): n loads (default 200, after 3 warm-up
 * loads) of the 100-tree yardstick (binary:logistic, depth 6, 30 features,
 * JSON; -y: another SPEC), from a directory and from a model.tar.gz, with
 * the native engine and with SMSERVE_ENGINE=xgboost's (-e: only one of
 * them); prints the median scan and load, p50 and p99 of both together,
 * sms_model_bytes and how many such models fit in 1 GiB by it; then, for a
 * JSON yardstick, the scan's JSON-to-UBJSON pass (sms_transcode_json) and
 * XGBoost's load of the JSON against its load of that UBJSON.
 *
 * Memory (-m, or both): for each SPEC (make_load_model.py's
 * NAME:ROUNDS:DEPTH:FEATURES[:FORMAT[:OBJECTIVE]]; default a range of
 * shapes, formats and objectives), a fresh child process loads one copy
 * and frees it (XGBoost's and the server's one-off state), then holds k
 * copies (default 100) and reads the growth of the heap in use (mallinfo2:
 * uordblks + hblkhd, every arena) and of the resident set
 * (/proc/self/statm). Per copy, against sms_model_bytes: for members on the
 * C API the estimate must cover both (UNDER is printed and the exit status
 * is 1 otherwise); for native members it counts the model's own blocks
 * (malloc_usable_size), so the heap's growth is that plus malloc's chunk
 * headers. */
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <malloc.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "smserve/artifact.h"
#include "smserve/model.h"
#include "smserve/transcode.h"

#include <xgboost/c_api.h>

#define YARDSTICK "load:100:6:30"

/* Shapes, formats and objectives whose memory is measured by default: the
 * booster estimate in model.c was fitted on these. */
static const char DEFAULT_SPECS[] =
    "load:100:6:30,ubj:100:6:30:ubj,bin:100:6:30:binary,small:10:3:10,tiny:1:1:5,"
    "deep:300:8:50,wide:100:6:1000,many:1000:4:30,soft:50:6:30:json:softprob,"
    "softubj:50:6:30:ubj:softprob,lin:20:0:200:json:gblinear,linbin:20:0:200:binary:gblinear";

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (nearest rank) of n sorted values. */
static double quantile(const double *sorted, size_t n, double q)
{
    size_t k = (size_t)ceil(q * (double)n);
    return sorted[k ? k - 1 : 0];
}

static const char *spec_name(const char *spec, char *buf, size_t size)
{
    size_t n = strcspn(spec, ":");
    snprintf(buf, size, "%.*s", (int)(n < size ? n : size - 1), spec);
    return buf;
}

/* Runs make_load_model.py for the specs (comma-separated) into dir. */
static void make_models(const char *dir, const char *specs)
{
    char here[4096];
    snprintf(here, sizeof here, "%s", __FILE__);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/make_load_model.py %s", dirname(here), dir);
    char *list = strdup(specs);
    for (char *save = NULL, *s = strtok_r(list, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
        size_t used = strlen(cmd);
        snprintf(cmd + used, sizeof cmd - used, " %s", s);
    }
    free(list);
    fprintf(stderr, "making models: %s\n", cmd);
    if (system(cmd) != 0) {
        fprintf(stderr, "bench_load: the model generator failed\n");
        exit(1);
    }
}

/* Scans and loads path as main.c does; exits on failure. The times of the
 * two steps go to *scan_ms and *load_ms. */
static sms_model_t *scan_load(const char *path, bool native, double *scan_ms, double *load_ms)
{
    sms_version_t rt = sms_model_runtime_version();
    sms_artifact_set_t set;
    double t0 = now_ms();
    int rc = sms_artifacts_scan(path, rt, false, &set);
    double t1 = now_ms();
    if (rc < 0) {
        sms_artifacts_report(&set, rt, stderr);
        exit(1);
    }
    sms_model_t *m = NULL;
    sms_diag_t diag = {0};
    if (sms_model_load(&set, native, &m, &diag) < 0) {
        fprintf(stderr, "bench_load: %s does not load: %s\n", path, diag.reason);
        exit(1);
    }
    double t2 = now_ms();
    sms_artifacts_free(&set);
    if (scan_ms)
        *scan_ms = t1 - t0;
    if (load_ms)
        *load_ms = t2 - t1;
    return m;
}

/* n timed loads of path, after 3 untimed ones. */
static void time_loads(const char *label, const char *path, bool native, int n)
{
    double *scan = calloc((size_t)n, sizeof *scan), *load = calloc((size_t)n, sizeof *load);
    double *total = calloc((size_t)n, sizeof *total);
    for (int i = -3; i < n; i++) {
        double s, l;
        sms_model_t *m = scan_load(path, native, &s, &l);
        sms_model_free(m);
        if (i >= 0) {
            scan[i] = s;
            load[i] = l;
            total[i] = s + l;
        }
    }
    qsort(scan, (size_t)n, sizeof *scan, compare_double);
    qsort(load, (size_t)n, sizeof *load, compare_double);
    qsort(total, (size_t)n, sizeof *total, compare_double);
    sms_model_t *m = scan_load(path, native, NULL, NULL);
    size_t bytes = sms_model_bytes(m);
    printf("%-26s %8.2f %8.2f %8.2f %8.2f %10zu %9.0f\n", label, quantile(scan, (size_t)n, 0.5),
           quantile(load, (size_t)n, 0.5), quantile(total, (size_t)n, 0.5),
           quantile(total, (size_t)n, 0.99), bytes, (double)(1u << 30) / (double)bytes);
    const char *engine = sms_model_engine(m);
    if (native != (strstr(engine, "native evaluator") != NULL)) {
        fprintf(stderr, "bench_load: %s is served by the other engine: %s\n", path, engine);
        exit(1);
    }
    sms_model_free(m);
    free(scan);
    free(load);
    free(total);
}

static double median_of(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, compare_double);
    return quantile(v, (size_t)n, 0.5);
}

/* What the scan's JSON-to-UBJSON pass buys, on the yardstick's JSON file in
 * dir (when it is JSON): n times each, the pass itself, and XGBoost loading
 * the JSON and loading the UBJSON the pass wrote (the same model). */
static void time_transcode(const char *dir, int n)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/xgboost-model.json", dir);
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    char *json = malloc((size_t)len);
    if (!json || fread(json, 1, (size_t)len, f) != (size_t)len) {
        fprintf(stderr, "bench_load: cannot read %s\n", path);
        exit(1);
    }
    fclose(f);
    double *pass = calloc((size_t)n, sizeof *pass), *from_json = calloc((size_t)n, sizeof *pass),
           *from_ubj = calloc((size_t)n, sizeof *pass);
    unsigned char *ubj = NULL;
    size_t ubj_len = 0;
    for (int i = 0; i < n; i++) {
        free(ubj);
        bool exact;
        double t0 = now_ms();
        if (sms_transcode_json(json, (size_t)len, &ubj, &ubj_len, &exact, NULL, 0) < 0 || !exact) {
            fprintf(stderr, "bench_load: %s does not transcode exactly\n", path);
            exit(1);
        }
        pass[i] = now_ms() - t0;
        const void *bytes[2] = {json, ubj};
        size_t lens[2] = {(size_t)len, ubj_len};
        double *into[2] = {from_json, from_ubj};
        for (int k = 0; k < 2; k++) {
            BoosterHandle b;
            if (XGBoosterCreate(NULL, 0, &b) != 0) {
                fprintf(stderr, "bench_load: %s\n", XGBGetLastError());
                exit(1);
            }
            t0 = now_ms();
            if (XGBoosterLoadModelFromBuffer(b, bytes[k], lens[k]) != 0) {
                fprintf(stderr, "bench_load: %s\n", XGBGetLastError());
                exit(1);
            }
            into[k][i] = now_ms() - t0;
            XGBoosterFree(b);
        }
    }
    double p = median_of(pass, n), j = median_of(from_json, n), u = median_of(from_ubj, n);
    printf("JSON to UBJSON (%ld bytes to %zu): p50 %.2f ms, %.0f MB/s; XGBoost loads the JSON in "
           "%.2f ms, the UBJSON in %.2f ms: %.1fx faster, %.1fx with the pass\n",
           len, ubj_len, p, (double)len / 1e3 / p, j, u, j / u, j / (u + p));
    free(ubj);
    free(json);
    free(pass);
    free(from_json);
    free(from_ubj);
}

static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static size_t resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (!f || fscanf(f, "%lu %lu", &size, &resident) != 2) {
        fprintf(stderr, "bench_load: /proc/self/statm: %s\n", strerror(errno));
        exit(1);
    }
    fclose(f);
    return resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* In a child: one load and free, then k copies held; prints one line.
 * Returns whether the estimate covered what was measured. */
static bool measure_copies(const char *label, const char *path, bool native, int k)
{
    fflush(stdout);
    int pipefd[2];
    if (pipe(pipefd) < 0) {
        perror("pipe");
        exit(1);
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        close(pipefd[0]);
        sms_model_free(scan_load(path, native, NULL, NULL));
        sms_model_t **held = calloc((size_t)k, sizeof *held);
        size_t heap0 = heap_in_use(), rss0 = resident_bytes();
        for (int i = 0; i < k; i++)
            held[i] = scan_load(path, native, NULL, NULL);
        double heap = (double)(heap_in_use() - heap0) / k;
        double rss = (double)(resident_bytes() - rss0) / k;
        size_t bytes = sms_model_bytes(held[0]);
        bool native_member = strstr(sms_model_engine(held[0]), "native evaluator") != NULL;
        bool covered = native_member || ((double)bytes >= heap && (double)bytes >= rss);
        printf("%-12s %-8s %-7s %10zu %10.0f %10.0f %6.2f %6.2f%s\n", label,
               native ? "native" : "xgboost", native_member ? "native" : "C API", bytes, heap, rss,
               (double)bytes / heap, (double)bytes / rss, covered ? "" : "  UNDER");
        fflush(stdout);
        if (write(pipefd[1], &covered, sizeof covered) != (ssize_t)sizeof covered)
            _exit(1);
        for (int i = 0; i < k; i++)
            sms_model_free(held[i]);
        free(held);
        _exit(0);
    }
    close(pipefd[1]);
    bool covered = false;
    if (read(pipefd[0], &covered, sizeof covered) != (ssize_t)sizeof covered)
        covered = false;
    close(pipefd[0]);
    int status;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench_load: the measurement of %s failed\n", label);
        exit(1);
    }
    return covered;
}

int main(int argc, char **argv)
{
    /* libgomp reads OMP_NUM_THREADS when it is loaded, before main runs. */
    const char *omp = getenv("OMP_NUM_THREADS");
    if (!omp || strcmp(omp, "1") != 0) {
        setenv("OMP_NUM_THREADS", "1", 1);
        execv("/proc/self/exe", argv);
        perror("re-exec with OMP_NUM_THREADS=1");
        return 1;
    }
    int loads = 200, copies = 100, opt;
    bool timing = true, memory = true, native = true, xgboost = true;
    const char *specs = DEFAULT_SPECS, *yardstick = YARDSTICK;
    while ((opt = getopt(argc, argv, "n:k:e:tmy:s:")) != -1) {
        if (opt == 'n')
            loads = atoi(optarg);
        else if (opt == 'e' && (!strcmp(optarg, "native") || !strcmp(optarg, "xgboost")))
            native = !(xgboost = !strcmp(optarg, "xgboost"));
        else if (opt == 'k')
            copies = atoi(optarg);
        else if (opt == 't')
            memory = false;
        else if (opt == 'm')
            timing = false;
        else if (opt == 's')
            specs = optarg;
        else if (opt == 'y')
            yardstick = optarg;
        else {
            fprintf(stderr,
                    "usage: %s [-n loads] [-k copies] [-e native|xgboost] [-t | -m] [-y SPEC] "
                    "[-s SPEC,...]\n",
                    argv[0]);
            return 2;
        }
    }
    if (loads < 1 || copies < 1) {
        fprintf(stderr, "%s: -n and -k must be positive\n", argv[0]);
        return 2;
    }
    char dir[] = "/tmp/bench_load.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char all[4096];
    snprintf(all, sizeof all, "%s%s%s", timing ? yardstick : "", timing && memory ? "," : "",
             memory ? specs : "");
    make_models(dir, all);
    sms_version_t rt = sms_model_runtime_version();
    int failures = 0;

    if (timing) {
        char name[64];
        printf("scan + sms_model_load of %s (NAME:ROUNDS:DEPTH:FEATURES[:FORMAT[:OBJECTIVE]], "
               "saved by xgboost 1.7.4) on libxgboost %d.%d.%d, %d loads, ms:\n",
               yardstick, rt.major, rt.minor, rt.patch, loads);
        printf("%-26s %8s %8s %8s %8s %10s %9s\n", "", "scan p50", "load p50", "p50", "p99",
               "bytes", "per GiB");
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, spec_name(yardstick, name, sizeof name));
        if (native)
            time_loads("directory, native", path, true, loads);
        if (xgboost)
            time_loads("directory, xgboost", path, false, loads);
        snprintf(path, sizeof path, "%s/%s-tar/model.tar.gz", dir, name);
        if (native)
            time_loads("model.tar.gz, native", path, true, loads);
        if (xgboost)
            time_loads("model.tar.gz, xgboost", path, false, loads);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        time_transcode(path, loads);
        printf("\n");
    }
    if (memory) {
        printf("memory per model, %d copies held in one process (bytes; ratio = "
               "sms_model_bytes / measured):\n",
               copies);
        printf("%-12s %-8s %-7s %10s %10s %10s %6s %6s\n", "model", "engine", "serves", "estimate",
               "heap", "rss", "/heap", "/rss");
        char *list = strdup(specs);
        for (char *save = NULL, *s = strtok_r(list, ",", &save); s;
             s = strtok_r(NULL, ",", &save)) {
            char name[64], path[4200];
            snprintf(path, sizeof path, "%s/%s", dir, spec_name(s, name, sizeof name));
            if (native)
                measure_copies(name, path, true, copies);
            if (xgboost)
                failures += !measure_copies(name, path, false, copies);
        }
        free(list);
    }
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_load: could not remove %s\n", dir);
    if (failures)
        fprintf(stderr, "bench_load: the booster estimate undercounts %d model(s)\n", failures);
    return failures ? 1 : 0;
}
