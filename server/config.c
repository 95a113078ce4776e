/* Run-time configuration from environment variables, validated at start-up
 * so that a typo is one clear line instead of a misbehaving server. */
#define _GNU_SOURCE
#include "smserve/config.h"
#include "smserve/buf.h"
#include "smserve/env.h"
#include "smserve/mediatype.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* The memory this process may use: the cgroup's limit (v2 memory.max, or v1
 * memory.limit_in_bytes) when there is one, else physical memory; 0 if
 * unknown. */
static unsigned long long memory_limit(void)
{
    static const char *const files[] = {"/sys/fs/cgroup/memory.max",
                                        "/sys/fs/cgroup/memory/memory.limit_in_bytes"};
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    unsigned long long phys =
        pages > 0 && page > 0 ? (unsigned long long)pages * (unsigned long long)page : 0;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        FILE *f = fopen(files[i], "r");
        if (!f)
            continue;
        unsigned long long v = 0;
        int n = fscanf(f, "%llu", &v); /* "max" (no limit) does not scan */
        fclose(f);
        if (n == 1 && v > 0 && (phys == 0 || v < phys))
            return v;
    }
    return phys;
}

/* Request bodies in flight may hold a quarter of the memory limit, at least
 * 64 MiB (MAX_CONTENT_LENGTH is checked against it separately). */
static size_t default_body_budget(void)
{
    unsigned long long limit = memory_limit() / 4;
    if (limit < (64ull << 20))
        limit = 64ull << 20;
    return limit > SIZE_MAX ? SIZE_MAX : (size_t)limit;
}

/* A multi-model endpoint's models may hold half the memory limit, at
 * least 64 MiB; bodies in flight have a quarter (above). */
static size_t default_model_budget(void)
{
    unsigned long long limit = memory_limit() / 2;
    if (limit < (64ull << 20))
        limit = 64ull << 20;
    return limit > SIZE_MAX ? SIZE_MAX : (size_t)limit;
}

int sms_config_from_env(sms_config_t *cfg, sms_error_t *err)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->metrics = true;
    const char *dir = getenv("SM_MODEL_DIR");
    if (!dir || !*dir)
        dir = "/opt/ml/model";
    if (strlen(dir) >= sizeof cfg->model_dir)
        return sms_error_set(err, 500, "invalid SM_MODEL_DIR: longer than %zu bytes",
                             sizeof cfg->model_dir - 1);
    strcpy(cfg->model_dir, dir);

    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    long port = 8080, workers = cpus > 0 ? cpus : 1, timeout = 60, conns = 2048;
    long max_len = 6291456;
    long header_ms = 5000, keepalive_ms = 3000, body_ms = 10000, rate = 1L << 20;
    long drain_ms = 10000, budget = 0, transforms = 0, payload_mb = 0;
    long matrix_values = (long)SMS_MATRIX_MAX_VALUES, model_budget = 0;
    if (sms_env_long("SAGEMAKER_BIND_TO_PORT", 1, 65535, &port, err) < 0 ||
        sms_env_long("SAGEMAKER_MODEL_SERVER_WORKERS", 1, 1024, &workers, err) < 0 ||
        sms_env_long("SAGEMAKER_MODEL_SERVER_TIMEOUT", 1, 86400, &timeout, err) < 0 ||
        sms_env_long("MAX_CONTENT_LENGTH", 1, 1L << 34, &max_len, err) < 0 ||
        sms_env_long("SMSERVE_CONNECTIONS", 4, 16384, &conns, err) < 0 ||
        sms_env_long("SMSERVE_HEADER_TIMEOUT_MS", 100, 600000, &header_ms, err) < 0 ||
        sms_env_long("SMSERVE_KEEPALIVE_TIMEOUT_MS", 100, 600000, &keepalive_ms, err) < 0 ||
        sms_env_long("SMSERVE_BODY_TIMEOUT_MS", 100, 3600000, &body_ms, err) < 0 ||
        sms_env_long("SMSERVE_BODY_MIN_RATE", 1024, 1L << 34, &rate, err) < 0 ||
        sms_env_long("SMSERVE_BODY_BUDGET_BYTES", 65536, 1L << 40, &budget, err) < 0 ||
        sms_env_long("SMSERVE_DRAIN_TIMEOUT_MS", 0, 600000, &drain_ms, err) < 0 ||
        sms_env_long("SMSERVE_MAX_MATRIX_VALUES", 1024, 1L << 34, &matrix_values, err) < 0 ||
        sms_env_bool("SMSERVE_ALLOW_NEWER", &cfg->allow_newer, err) < 0 ||
        sms_env_bool("SMSERVE_METRICS", &cfg->metrics, err) < 0 ||
        sms_env_bool("SAGEMAKER_BATCH", &cfg->batch, err) < 0 ||
        sms_env_bool("SAGEMAKER_MULTI_MODEL", &cfg->multi_model, err) < 0 ||
        sms_env_long("SMSERVE_MODEL_MEMORY_BYTES", 1, 1L << 50, &model_budget, err) < 0 ||
        sms_env_long("SAGEMAKER_MAX_CONCURRENT_TRANSFORMS", 1, 1024, &transforms, err) < 0 ||
        sms_env_long("SAGEMAKER_MAX_PAYLOAD_IN_MB", 1, 100, &payload_mb, err) < 0)
        return -1;
    cfg->max_concurrent_transforms = (int)transforms;
    cfg->max_matrix_values = (size_t)matrix_values;
    cfg->model_budget = model_budget ? (size_t)model_budget : default_model_budget();
    cfg->max_payload_mb = (int)payload_mb;
    /* A batch job configured for payloads over the default body limit sends
     * them: take them, unless MAX_CONTENT_LENGTH says otherwise. */
    const char *mcl = getenv("MAX_CONTENT_LENGTH");
    if (payload_mb && !(mcl && *mcl))
        max_len = payload_mb << 20;
    const char *output = getenv("SAGEMAKER_INFERENCE_OUTPUT");
    if (output) {
        if (sms_selection_parse(output, &cfg->selection, err) < 0)
            return -1;
        cfg->has_selection = true;
    }
    const char *strategy = getenv("SAGEMAKER_BATCH_STRATEGY");
    if (strategy && *strategy) {
        if (!strcasecmp(strategy, "SINGLE_RECORD"))
            cfg->single_record = true;
        else if (strcasecmp(strategy, "MULTI_RECORD"))
            return sms_error_set(err, 500,
                                 "invalid SAGEMAKER_BATCH_STRATEGY=\"%.64s\": expected "
                                 "SINGLE_RECORD or MULTI_RECORD",
                                 strategy);
    }
    cfg->port = (int)port;
    cfg->workers = (int)workers;
    cfg->timeout_s = (int)timeout;
    cfg->max_content_length = (size_t)max_len;
    /* Connections are not workers: idle keep-alive clients hold a thread
     * each, so there are always more connection threads than workers. */
    cfg->connections = (int)(conns > workers + 8 ? conns : workers + 8);
    cfg->header_timeout_ms = (int)header_ms;
    cfg->keepalive_timeout_ms = (int)keepalive_ms;
    cfg->body_timeout_ms = (int)body_ms;
    cfg->body_min_rate = rate;
    cfg->drain_timeout_ms = (int)drain_ms;
    cfg->body_budget = budget > 0 ? (size_t)budget : default_body_budget();
    if (cfg->body_budget < 2 * cfg->max_content_length && budget == 0)
        cfg->body_budget = 2 * cfg->max_content_length;
    if (cfg->body_budget < cfg->max_content_length)
        return sms_error_set(err, 500,
                             "invalid SMSERVE_BODY_BUDGET_BYTES=%zu: below MAX_CONTENT_LENGTH "
                             "(%zu), so the largest request could never be read",
                             cfg->body_budget, cfg->max_content_length);

    cfg->native_engine = true;
    const char *engine = getenv("SMSERVE_ENGINE");
    if (engine && *engine) {
        if (!strcasecmp(engine, "xgboost"))
            cfg->native_engine = false;
        else if (strcasecmp(engine, "native"))
            return sms_error_set(
                err, 500, "invalid SMSERVE_ENGINE=\"%.64s\": expected native or xgboost", engine);
    }

    if (sms_media_default_accept(getenv("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"), SMS_ENC_ALL,
                                 &cfg->default_accept, err) < 0)
        return -1;
    return 0;
}
