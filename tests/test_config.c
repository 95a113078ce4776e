/* Configuration from the environment: defaults, valid values, and a clear
 * error naming the variable for each invalid one. */
#define _GNU_SOURCE
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smserve/config.h"

static const char *const VARS[] = {
    "SM_MODEL_DIR",
    "SAGEMAKER_BIND_TO_PORT",
    "SAGEMAKER_MODEL_SERVER_WORKERS",
    "SAGEMAKER_MODEL_SERVER_TIMEOUT",
    "MAX_CONTENT_LENGTH",
    "SMSERVE_CONNECTIONS",
    "SMSERVE_ALLOW_NEWER",
    "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT",
    "SMSERVE_ENGINE",
    "SMSERVE_METRICS",
    "SAGEMAKER_BATCH",
    "SAGEMAKER_BATCH_STRATEGY",
    "SAGEMAKER_MAX_PAYLOAD_IN_MB",
    "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS",
    "SAGEMAKER_INFERENCE_OUTPUT",
    "SMSERVE_MAX_MATRIX_VALUES",
    "SAGEMAKER_MULTI_MODEL",
    "SMSERVE_MODEL_MEMORY_BYTES",
    NULL,
};

static int clear_env(void **state)
{
    (void)state;
    for (size_t i = 0; VARS[i]; i++)
        unsetenv(VARS[i]);
    return 0;
}

static void defaults(void **state)
{
    (void)state;
    sms_config_t cfg;
    sms_error_t err = {0};
    assert_int_equal(sms_config_from_env(&cfg, &err), 0);
    assert_string_equal(cfg.model_dir, "/opt/ml/model");
    assert_int_equal(cfg.port, 8080);
    assert_int_equal(cfg.workers, (int)sysconf(_SC_NPROCESSORS_ONLN));
    assert_int_equal(cfg.timeout_s, 60);
    assert_int_equal(cfg.max_content_length, 6291456);
    assert_int_equal(cfg.default_accept, SMS_ENC_CSV);
    assert_false(cfg.allow_newer);
    assert_true(cfg.native_engine);
    assert_true(cfg.metrics);
    assert_int_equal(cfg.max_matrix_values, (size_t)64 << 20);
    assert_false(cfg.multi_model);
    /* half the memory limit, at least 64 MiB */
    assert_true(cfg.model_budget >= (size_t)64 << 20);
    /* connection threads always outnumber prediction workers */
    assert_true(cfg.connections > cfg.workers);
    assert_true(cfg.connections >= 64);
}

/* The configuration with the "NAME=value" entries of env set (NULL-terminated). */
static sms_config_t config_with(const char *const *env)
{
    tu_setenv_all(env);
    sms_config_t cfg;
    sms_error_t err = {0};
    if (sms_config_from_env(&cfg, &err) != 0)
        fail_msg("refused: %s", err.msg);
    return cfg;
}

static void valid_values(void **state)
{
    (void)state;
    static const char *const env[] = {
        "SM_MODEL_DIR=/tmp/m",
        "SAGEMAKER_BIND_TO_PORT=9090",
        "SAGEMAKER_MODEL_SERVER_WORKERS=3",
        "SAGEMAKER_MODEL_SERVER_TIMEOUT=5",
        "MAX_CONTENT_LENGTH=1000",
        "SMSERVE_ALLOW_NEWER=true",
        "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT=application/json",
        "SMSERVE_ENGINE=xgboost",
        NULL,
    };
    sms_config_t cfg = config_with(env);
    assert_string_equal(cfg.model_dir, "/tmp/m");
    assert_int_equal(cfg.port, 9090);
    assert_int_equal(cfg.workers, 3);
    assert_int_equal(cfg.timeout_s, 5);
    assert_int_equal(cfg.max_content_length, 1000);
    assert_true(cfg.allow_newer);
    assert_int_equal(cfg.default_accept, SMS_ENC_JSON);
    assert_false(cfg.native_engine);
}

static void expect_invalid(const char *name, const char *value)
{
    clear_env(NULL);
    setenv(name, value, 1);
    sms_config_t cfg;
    sms_error_t err = {0};
    assert_int_equal(sms_config_from_env(&cfg, &err), -1);
    if (!strstr(err.msg, name))
        fail_msg("error for %s=%s does not name the variable: %s", name, value, err.msg);
}

static void invalid_values(void **state)
{
    (void)state;
    expect_invalid("SAGEMAKER_BIND_TO_PORT", "abc");
    expect_invalid("SAGEMAKER_BIND_TO_PORT", "0");
    expect_invalid("SAGEMAKER_BIND_TO_PORT", "70000");
    expect_invalid("SAGEMAKER_BIND_TO_PORT", "80x");
    expect_invalid("SAGEMAKER_MODEL_SERVER_WORKERS", "0");
    expect_invalid("SAGEMAKER_MODEL_SERVER_WORKERS", "-2");
    expect_invalid("SAGEMAKER_MODEL_SERVER_TIMEOUT", "x");
    expect_invalid("MAX_CONTENT_LENGTH", "-5");
    expect_invalid("MAX_CONTENT_LENGTH", "99999999999999999999999");
    expect_invalid("SMSERVE_ALLOW_NEWER", "maybe");
    expect_invalid("SMSERVE_ENGINE", "gpu");
    expect_invalid("SMSERVE_METRICS", "sometimes");
    expect_invalid("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "text/html");
    expect_invalid("SAGEMAKER_BATCH", "sometimes");
    expect_invalid("SAGEMAKER_BATCH_STRATEGY", "EVERY_RECORD");
    expect_invalid("SAGEMAKER_MAX_PAYLOAD_IN_MB", "101");
    expect_invalid("SAGEMAKER_MAX_CONCURRENT_TRANSFORMS", "0");
    expect_invalid("SMSERVE_MAX_MATRIX_VALUES", "1000");
    expect_invalid("SMSERVE_MAX_MATRIX_VALUES", "64M");
    expect_invalid("SAGEMAKER_MULTI_MODEL", "yes please");
    expect_invalid("SMSERVE_MODEL_MEMORY_BYTES", "0");
    expect_invalid("SMSERVE_MODEL_MEMORY_BYTES", "1GiB");
    expect_invalid("SAGEMAKER_INFERENCE_OUTPUT",
                   "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t,u,v,w,x,y,z,aa,bb,cc,dd,ee,ff,gg");
}

/* Batch transform's variables: /execution-parameters answers them, and a
 * payload limit over the default body limit raises it. */
static void batch_values(void **state)
{
    (void)state;
    static const char *const env[] = {
        "SAGEMAKER_MAX_PAYLOAD_IN_MB=20",
        "SAGEMAKER_BATCH_STRATEGY=single_record",
        "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS=4",
        "SAGEMAKER_BATCH=true",
        "SAGEMAKER_INFERENCE_OUTPUT=predicted_label, probability",
        NULL,
    };
    sms_config_t cfg = config_with(env);
    assert_int_equal(cfg.max_payload_mb, 20);
    assert_int_equal(cfg.max_content_length, 20u << 20);
    assert_true(cfg.single_record);
    assert_int_equal(cfg.max_concurrent_transforms, 4);
    assert_true(cfg.batch);
    assert_true(cfg.has_selection);
    assert_int_equal(cfg.selection.n, 2);
    cfg = config_with((const char *const[]){"MAX_CONTENT_LENGTH=1000", NULL});
    assert_int_equal(cfg.max_content_length, 1000);
    cfg = config_with((const char *const[]){"SMSERVE_MAX_MATRIX_VALUES=4096", NULL});
    assert_int_equal(cfg.max_matrix_values, 4096);
    cfg = config_with((const char *const[]){"SAGEMAKER_MULTI_MODEL=true",
                                            "SMSERVE_MODEL_MEMORY_BYTES=5000", NULL});
    assert_true(cfg.multi_model);
    assert_int_equal(cfg.model_budget, 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(defaults, clear_env),
        cmocka_unit_test_setup(valid_values, clear_env),
        cmocka_unit_test_setup(invalid_values, clear_env),
        cmocka_unit_test_setup(batch_values, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
