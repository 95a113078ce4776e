/* The smserve command: `serve` (the default, as SageMaker runs it), `check
 * PATH` (diagnose an artifact and exit), `--version`. Serving binds the port
 * first so /ping answers 503 while the model loads, and exits non-zero at
 * once, with the reason, when the model cannot be served exactly. */
#define _GNU_SOURCE
#include <civetweb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "smserve/artifact.h"
#include "smserve/buf.h"
#include "smserve/capture.h"
#include "smserve/registry.h"
#include "smserve/config.h"
#include "smserve/http.h"
#include "smserve/log.h"
#include "smserve/metrics.h"
#include "smserve/model.h"

#include <xgboost/c_api.h>

#define EXIT_REFUSED 1
#define EXIT_USAGE   2
#define EXIT_CONFIG  3

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: smserve [serve]        serve the model in SM_MODEL_DIR (default /opt/ml/model)\n"
        "       smserve check [PATH]   diagnose a model dir or model.tar.gz; exit 0 if servable\n"
        "       smserve --version\n"
        "env: SM_MODEL_DIR, SAGEMAKER_BIND_TO_PORT (8080), SAGEMAKER_MODEL_SERVER_WORKERS (CPUs),\n"
        "     SAGEMAKER_MODEL_SERVER_TIMEOUT (60 s), MAX_CONTENT_LENGTH (6291456 bytes),\n"
        "     SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT (text/csv), SMSERVE_CONNECTIONS (128),\n"
        "     SMSERVE_ALLOW_NEWER (false), SMSERVE_ENGINE (native | xgboost)\n");
}

static int print_version(void)
{
    sms_version_t rt = sms_model_runtime_version();
    printf("smserve %s (XGBoost %d.%d.%d, CivetWeb %s)\n", SMS_VERSION, rt.major, rt.minor,
           rt.patch, mg_version());
    return 0;
}

static void report_load_failure(const sms_artifact_set_t *set, const sms_diag_t *d,
                                sms_version_t rt)
{
    fprintf(stdout, "REFUSED %s: check %s: %s; fix: %s\n", set->root, d->check, d->reason, d->fix);
    fflush(stdout);
    char v[32];
    snprintf(v, sizeof v, "%d.%d.%d", rt.major, rt.minor, rt.patch);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "event", "model_refused", "file",
                          set->root, "runtime_version", v, "check", d->check, "reason", d->reason,
                          "fix", d->fix, "format", "model");
    sms_log_json("error", o);
}

static int cmd_check(const char *path, const sms_config_t *cfg)
{
    sms_version_t rt = sms_model_runtime_version();
    sms_artifact_set_t set;
    int rc = sms_artifacts_scan(path, rt, cfg->allow_newer, &set);
    sms_artifacts_report(&set, rt, stdout);
    if (rc == 0) {
        /* The declared metadata passed; loading confirms what the library
         * itself reads. */
        sms_model_t *model = NULL;
        sms_diag_t diag = {0};
        if (sms_model_load(&set, cfg->native_engine, &model, &diag) < 0) {
            report_load_failure(&set, &diag, rt);
            rc = -1;
        } else {
            printf("engine: %s\n", sms_model_engine(model));
            sms_error_t err = {0};
            if (cfg->has_selection &&
                sms_selection_check(&cfg->selection, sms_task_of(sms_model_objective(model)),
                                    sms_model_objective(model), &err) < 0) {
                printf("REFUSED %s\n", err.msg);
                rc = -1;
            } else {
                printf("servable: %zu model%s, %zu features, %zu output%s per row\n",
                       sms_model_size(model), sms_model_size(model) > 1 ? "s (ensemble)" : "",
                       sms_model_num_feature(model), sms_model_num_output(model),
                       sms_model_num_output(model) > 1 ? "s" : "");
            }
            sms_model_free(model);
        }
    }
    sms_artifacts_free(&set);
    return rc == 0 ? 0 : EXIT_REFUSED;
}

static void read_capture_counts(void *arg, sms_capture_counts_t *out)
{
    sms_capture_stats_t stats;
    sms_capture_stats(arg, &stats);
    out->written = stats.written;
    out->dropped = stats.dropped; /* paused drops are part of it */
}

/* Serves until SIGTERM or SIGINT, then stops in order: in-flight requests
 * finish (and submit their capture records), capture writes out its queue,
 * metrics report a last time. Frees http and capture; metrics are freed by
 * the caller, after the models whose series they hold. */
static void serve_until_stopped(sigset_t *stop_signals, sms_http_t *http, sms_capture_t *capture,
                                sms_metrics_t *metrics)
{
    int sig = 0;
    sigwait(stop_signals, &sig);
    sms_log("%s received: finishing in-flight requests", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    sms_http_stop(http);
    if (capture) {
        sms_capture_flush(capture);
        sms_capture_stats_t stats;
        sms_capture_stats(capture, &stats);
        sms_log("data capture flushed: %llu records written, %llu dropped",
                (unsigned long long)stats.written, (unsigned long long)stats.dropped);
    }
    /* The last EMF line reads the capture counters, so capture stops after. */
    if (metrics)
        sms_metrics_stop_emf(metrics);
    sms_capture_stop(capture);
}

/* A multi-model endpoint: no model at start; /models loads them. */
static int serve_multi_model(const sms_config_t *cfg, sigset_t *stop_signals,
                             sms_capture_t *capture, sms_metrics_t *metrics, double start)
{
    sms_error_t err = {0};
    sms_registry_config_t rcfg = {
        .budget_bytes = cfg->model_budget,
        .native = cfg->native_engine,
        .allow_newer = cfg->allow_newer,
        .sel = cfg->has_selection ? &cfg->selection : NULL,
        .wait_ms = cfg->timeout_s * 1000,
    };
    sms_registry_t *registry = sms_registry_create(&rcfg, metrics);
    if (!registry) {
        sms_log("out of memory creating the model registry");
        return EXIT_CONFIG;
    }
    sms_http_t *http = NULL;
    if (sms_http_start(cfg, metrics, capture, &http, &err) < 0) {
        sms_log("%s", err.msg);
        sms_registry_free(registry);
        return EXIT_CONFIG;
    }
    sms_http_set_registry(http, registry);
    sms_log("multi-model endpoint listening on port %d (%d workers, %d connections): no model "
            "loaded; POST /models loads one; models may hold %zu bytes "
            "(SMSERVE_MODEL_MEMORY_BYTES); ready in %.1f ms",
            cfg->port, cfg->workers, cfg->connections, cfg->model_budget, now_ms() - start);
    if (metrics && sms_metrics_start_emf(metrics) < 0)
        sms_log("could not start the CloudWatch EMF thread; /metrics still works");
    serve_until_stopped(stop_signals, http, capture, metrics);
    sms_registry_free(registry);
    sms_metrics_free(metrics);
    sms_log("stopped");
    return 0;
}

static int cmd_serve(void)
{
    double start = now_ms();
    sms_config_t cfg;
    sms_error_t err = {0};
    if (sms_config_from_env(&cfg, &err) < 0) {
        sms_log("%s", err.msg);
        return EXIT_CONFIG;
    }
    sms_matrix_set_max_values(cfg.max_matrix_values);
    sms_capture_config_t capture_cfg;
    sms_metrics_config_t metrics_cfg;
    if (sms_capture_config_from_env(&capture_cfg, &err) < 0 ||
        sms_metrics_config_from_env(&metrics_cfg, &err) < 0) {
        sms_log("%s", err.msg);
        return EXIT_CONFIG;
    }
    /* Signals are taken by sigwait in this thread only. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    sms_capture_t *capture = NULL;
    if (capture_cfg.enabled && !(capture = sms_capture_start(&capture_cfg, &err))) {
        sms_log("%s", err.msg);
        return EXIT_CONFIG;
    }
    sms_metrics_t *metrics = cfg.metrics ? sms_metrics_create(&metrics_cfg) : NULL;
    if (cfg.metrics && !metrics) {
        sms_log("out of memory creating the metrics");
        return EXIT_CONFIG;
    }
    if (metrics && capture)
        sms_metrics_set_capture_source(metrics, read_capture_counts, capture);
    if (cfg.multi_model)
        return serve_multi_model(&cfg, &stop_signals, capture, metrics, start);

    /* The checks read the files' headers and take milliseconds: a refused
     * artifact is reported before the connection threads start. Loading
     * (and compiling the native evaluator) can take longer, so the port is
     * bound first and /ping answers 503 meanwhile. */
    sms_version_t rt = sms_model_runtime_version();
    sms_artifact_set_t set;
    int rc = sms_artifacts_scan(cfg.model_dir, rt, cfg.allow_newer, &set);
    sms_artifacts_report(&set, rt, stdout);
    sms_http_t *http = NULL;
    if (rc == 0) {
        if (sms_http_start(&cfg, metrics, capture, &http, &err) < 0) {
            sms_log("%s", err.msg);
            return EXIT_CONFIG;
        }
        sms_log("listening on port %d (%d workers, %d connections); loading %s", cfg.port,
                cfg.workers, cfg.connections, cfg.model_dir);
    }
    sms_model_t *model = NULL;
    if (rc == 0) {
        sms_diag_t diag = {0};
        if (sms_model_load(&set, cfg.native_engine, &model, &diag) < 0) {
            report_load_failure(&set, &diag, rt);
            rc = -1;
        }
    }
    if (rc < 0) {
        sms_artifacts_free(&set);
        sms_log("refusing to serve %s (see above); exiting", cfg.model_dir);
        /* No request can be in flight without a model, and a graceful
         * CivetWeb stop waits out its 2 s poll quantum: exit at once so the
         * reason reaches the logs within a second of start. */
        fflush(stdout);
        exit(EXIT_REFUSED);
    }
    sms_artifacts_free(&set);
    /* Selectable output that does not fit this model's objective is refused
     * now, not answered with NaN per request. */
    if (cfg.has_selection &&
        sms_selection_check(&cfg.selection, sms_task_of(sms_model_objective(model)),
                            sms_model_objective(model), &err) < 0) {
        sms_log("%s", err.msg);
        fflush(stdout);
        exit(EXIT_CONFIG);
    }
    sms_http_set_model(http, model);
    double setup_ms = now_ms() - start;
    sms_log("ready: %s, %zu features, %zu output%s per row, %zu model%s, set up in %.1f ms",
            sms_model_objective(model), sms_model_num_feature(model), sms_model_num_output(model),
            sms_model_num_output(model) > 1 ? "s" : "", sms_model_size(model),
            sms_model_size(model) > 1 ? "s" : "", setup_ms);
    sms_log("engine: %s", sms_model_engine(model));
    if (metrics)
        sms_metrics_set_setup_us(metrics, (uint64_t)(setup_ms * 1000.0));
    if (metrics && metrics_cfg.emf_interval_s > 0 && sms_metrics_start_emf(metrics) < 0)
        sms_log("could not start the CloudWatch EMF thread; /metrics still works");
    if (capture)
        sms_log("data capture on: %g%% of requests into %s/%s/%s", capture_cfg.sampling_percent,
                capture_cfg.dir, capture_cfg.endpoint, capture_cfg.variant);

    serve_until_stopped(&stop_signals, http, capture, metrics);
    sms_model_free(model);
    sms_metrics_free(metrics);
    sms_log("stopped");
    return 0;
}

/* XGBoost's own messages (deprecation warnings, load notes) go through the
 * server's log instead of the library's "[hh:mm:ss] WARNING: /path/x.cc:NN:"
 * lines on stderr. */
static void xgboost_log(const char *msg)
{
    const char *p = msg;
    if (*p == '[') { /* the library's time stamp */
        const char *close = strchr(p, ']');
        if (close)
            p = close + 1;
    }
    while (*p == ' ')
        p++;
    const char *level = "";
    if (!strncmp(p, "WARNING: ", 9)) {
        level = "warning: ";
        p += 9;
    }
    /* the source location, "/any/path/file.cc:123: " */
    const char *colon = strstr(p, ": ");
    if (*p == '/' && colon && colon > p && colon[-1] >= '0' && colon[-1] <= '9')
        p = colon + 2;
    size_t n = strcspn(p, "\n");
    sms_log("xgboost %s%.*s", level, (int)n, p);
}

int main(int argc, char **argv)
{
    XGBRegisterLogCallback(xgboost_log);
    if (argc < 2 || !strcmp(argv[1], "serve")) {
        if (argc > 2) {
            usage(stderr);
            return EXIT_USAGE;
        }
        return cmd_serve();
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version"))
        return print_version();
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "check")) {
        sms_config_t cfg;
        sms_error_t err = {0};
        if (sms_config_from_env(&cfg, &err) < 0) {
            fprintf(stderr, "smserve: %s\n", err.msg);
            return EXIT_CONFIG;
        }
        return cmd_check(argc > 2 ? argv[2] : cfg.model_dir, &cfg);
    }
    fprintf(stderr, "smserve: unknown command \"%s\"\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
