/* Run-time configuration from environment variables, validated at start-up
 * so that a typo is one clear line instead of a misbehaving server. */
#define _GNU_SOURCE
#include "smserve/config.h"
#include "smserve/env.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

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
    long port = 8080, workers = cpus > 0 ? cpus : 1, timeout = 60, conns = 128;
    long max_len = 6291456;
    if (sms_env_long("SAGEMAKER_BIND_TO_PORT", 1, 65535, &port, err) < 0 ||
        sms_env_long("SAGEMAKER_MODEL_SERVER_WORKERS", 1, 1024, &workers, err) < 0 ||
        sms_env_long("SAGEMAKER_MODEL_SERVER_TIMEOUT", 1, 86400, &timeout, err) < 0 ||
        sms_env_long("MAX_CONTENT_LENGTH", 1, 1L << 34, &max_len, err) < 0 ||
        sms_env_long("SMSERVE_CONNECTIONS", 4, 4096, &conns, err) < 0 ||
        sms_env_bool("SMSERVE_ALLOW_NEWER", &cfg->allow_newer, err) < 0 ||
        sms_env_bool("SMSERVE_METRICS", &cfg->metrics, err) < 0)
        return -1;
    cfg->port = (int)port;
    cfg->workers = (int)workers;
    cfg->timeout_s = (int)timeout;
    cfg->max_content_length = (size_t)max_len;
    /* Connections are not workers: idle keep-alive clients hold a thread
     * each, so there are always more connection threads than workers. */
    cfg->connections = (int)(conns > workers + 8 ? conns : workers + 8);

    cfg->native_engine = true;
    const char *engine = getenv("SMSERVE_ENGINE");
    if (engine && *engine) {
        if (!strcasecmp(engine, "xgboost"))
            cfg->native_engine = false;
        else if (strcasecmp(engine, "native"))
            return sms_error_set(
                err, 500, "invalid SMSERVE_ENGINE=\"%.64s\": expected native or xgboost", engine);
    }

    cfg->default_accept = SMS_ENC_CSV;
    const char *accept = getenv("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT");
    if (accept && *accept &&
        sms_encoding_from_accept(accept, SMS_ENC_CSV, &cfg->default_accept) < 0)
        return sms_error_set(err, 500,
                             "invalid SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT=\"%.64s\": expected "
                             "text/csv, application/json or application/jsonlines",
                             accept);
    return 0;
}
