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
    /* connection threads always outnumber prediction workers */
    assert_true(cfg.connections > cfg.workers);
    assert_true(cfg.connections >= 64);
}

static void valid_values(void **state)
{
    (void)state;
    setenv("SM_MODEL_DIR", "/tmp/m", 1);
    setenv("SAGEMAKER_BIND_TO_PORT", "9090", 1);
    setenv("SAGEMAKER_MODEL_SERVER_WORKERS", "3", 1);
    setenv("SAGEMAKER_MODEL_SERVER_TIMEOUT", "5", 1);
    setenv("MAX_CONTENT_LENGTH", "1000", 1);
    setenv("SMSERVE_ALLOW_NEWER", "true", 1);
    setenv("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "application/json", 1);
    setenv("SMSERVE_ENGINE", "xgboost", 1);
    sms_config_t cfg;
    sms_error_t err = {0};
    assert_int_equal(sms_config_from_env(&cfg, &err), 0);
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
    expect_invalid("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "application/x-recordio-protobuf");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(defaults, clear_env),
        cmocka_unit_test_setup(valid_values, clear_env),
        cmocka_unit_test_setup(invalid_values, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
