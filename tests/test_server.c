/* Integration tests: the real build/smserve on a free port, against models and
 * reference predictions made by python3-xgboost (tests/gen_fixtures.py) and the
 * bundled sample model. Checks predictions for every booster/objective/format,
 * every refusal (`check` and `serve`), the status codes, hostile bodies, idle
 * connections, invalid environment and SIGTERM. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "testutil.h"
#include "smserve/model.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ utilities */

static char *fixture(const char *rel)
{
    return tu_path(SMS_FIXTURE_DIR, rel);
}

static char *fixture2(const char *dir, const char *name, const char *ext)
{
    char *p;
    if (asprintf(&p, "%s/%s/%s%s", SMS_FIXTURE_DIR, dir, name, ext) < 0)
        return NULL;
    return p;
}

static char *read_text(const char *path, size_t *len)
{
    char *t = tu_read_file(path, len);
    if (!t)
        fail_msg("cannot read %s (did the gen_fixtures test run?)", path);
    return t;
}

static int starts_with(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* POST /invocations with the given Content-Type and Accept (either may be
 * NULL). Returns tu_http's result. */
static int post(int port, const char *content_type, const char *accept, const char *body,
                size_t len, tu_response_t *r)
{
    char headers[512] = "";
    size_t n = 0;
    if (content_type)
        n += (size_t)snprintf(headers + n, sizeof headers - n, "Content-Type: %s", content_type);
    if (accept)
        n += (size_t)snprintf(headers + n, sizeof headers - n, "%sAccept: %s", n ? "\r\n" : "",
                              accept);
    return tu_http(port, "POST", "/invocations", n ? headers : NULL, body, len, r);
}

/* An error response: JSON {"error": "<non-empty>", "code": status}. */
static void check_error_body(const char *what, const tu_response_t *r, int status)
{
    CHECK(r->status == status, "%s: status %d, want %d (body: %.300s)", what, r->status, status,
          r->body ? r->body : "");
    CHECK(starts_with(r->content_type, "application/json"),
          "%s: error Content-Type '%s', want application/json", what, r->content_type);
    json_error_t jerr;
    json_t *doc = json_loadb(r->body ? r->body : "", r->body_len, 0, &jerr);
    CHECK(doc && json_is_object(doc), "%s: error body is not a JSON object: %.300s", what,
          r->body ? r->body : "");
    if (doc && json_is_object(doc)) {
        json_t *e = json_object_get(doc, "error"), *c = json_object_get(doc, "code");
        CHECK(json_is_string(e) && json_string_length(e) > 0,
              "%s: error body has no \"error\" message: %.300s", what, r->body);
        CHECK(json_is_integer(c) && json_integer_value(c) == status,
              "%s: error body \"code\" is not %d: %.300s", what, status, r->body);
    }
    json_decref(doc);
}

/* --------------------------------------------------------- prediction tables */

typedef struct table {
    size_t rows, cols;
    double *v;
} table_t;

static void table_free(table_t *t)
{
    free(t->v);
    memset(t, 0, sizeof *t);
}

/* Parses lines of comma-separated numbers (CRLF and a final newline
 * accepted). 0, or -1 with why filled. */
static int table_from_csv(const char *text, size_t len, table_t *t, char *why, size_t whylen)
{
    memset(t, 0, sizeof *t);
    size_t cap = 64;
    t->v = malloc(cap * sizeof *t->v);
    const char *p = text, *stop = text + len;
    while (p < stop) {
        const char *eol = memchr(p, '\n', (size_t)(stop - p));
        const char *line_end = eol ? eol : stop;
        const char *next = eol ? eol + 1 : stop;
        if (line_end > p && line_end[-1] == '\r')
            line_end--;
        if (line_end == p) {
            if (next == stop)
                break;
            snprintf(why, whylen, "empty line %zu", t->rows + 1);
            return -1;
        }
        size_t cols = 0;
        const char *q = p;
        for (;;) {
            char field[128];
            const char *comma = memchr(q, ',', (size_t)(line_end - q));
            const char *fe = comma ? comma : line_end;
            size_t fl = (size_t)(fe - q);
            if (fl == 0 || fl >= sizeof field) {
                snprintf(why, whylen, "line %zu: bad field '%.*s'", t->rows + 1, (int)fl, q);
                return -1;
            }
            memcpy(field, q, fl);
            field[fl] = '\0';
            char *endp;
            double d = strtod(field, &endp);
            if (*endp) {
                snprintf(why, whylen, "line %zu: not a number '%s'", t->rows + 1, field);
                return -1;
            }
            if (t->rows * (t->cols ? t->cols : 1) + cols >= cap) {
                cap *= 2;
                t->v = realloc(t->v, cap * sizeof *t->v);
            }
            t->v[(t->cols ? t->rows * t->cols : 0) + cols] = d;
            cols++;
            if (!comma)
                break;
            q = comma + 1;
        }
        if (t->rows == 0) {
            t->cols = cols;
        } else if (cols != t->cols) {
            snprintf(why, whylen, "line %zu has %zu values, line 1 has %zu", t->rows + 1, cols,
                     t->cols);
            return -1;
        }
        t->rows++;
        p = next;
    }
    return 0;
}

/* {"predictions": [{"score": p}, ...]}, with a list for multi-output. */
static int table_from_json(const char *text, size_t len, table_t *t, char *why, size_t whylen)
{
    memset(t, 0, sizeof *t);
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, 0, &jerr);
    json_t *preds = doc ? json_object_get(doc, "predictions") : NULL;
    if (!json_is_array(preds)) {
        snprintf(why, whylen, "no \"predictions\" array in %.200s", text);
        json_decref(doc);
        return -1;
    }
    t->rows = json_array_size(preds);
    for (size_t i = 0; i < t->rows; i++) {
        json_t *item = json_array_get(preds, i);
        json_t *score = json_is_object(item) ? json_object_get(item, "score") : NULL;
        size_t cols = json_is_array(score) ? json_array_size(score) : 1;
        if (!score || (!json_is_number(score) && !json_is_array(score)) ||
            (i > 0 && cols != t->cols) || cols == 0) {
            snprintf(why, whylen, "prediction %zu is not {\"score\": number or list}", i);
            goto fail;
        }
        if (i == 0) {
            t->cols = cols;
            t->v = calloc(t->rows * cols, sizeof *t->v);
        }
        for (size_t j = 0; j < cols; j++) {
            json_t *x = json_is_array(score) ? json_array_get(score, j) : score;
            if (!json_is_number(x)) {
                snprintf(why, whylen, "prediction %zu value %zu is not a number", i, j);
                goto fail;
            }
            t->v[i * cols + j] = json_number_value(x);
        }
        if (t->cols == 1 && json_is_array(score)) {
            snprintf(why, whylen, "single-output prediction %zu is a list, want a number", i);
            goto fail;
        }
    }
    json_decref(doc);
    return 0;
fail:
    json_decref(doc);
    table_free(t);
    return -1;
}

static int close_enough(double got, double want)
{
    if (isnan(want))
        return isnan(got);
    return fabs(got - want) <= 1e-6 * fmax(1.0, fabs(want));
}

/* Compares a response table with the expected one: same shape, every value
 * within 1e-6 relative (1e-6 absolute below 1). */
static void compare_tables(const char *what, const table_t *got, const table_t *want)
{
    CHECK(got->rows == want->rows && got->cols == want->cols,
          "%s: got %zu rows x %zu values, want %zu x %zu", what, got->rows, got->cols, want->rows,
          want->cols);
    if (got->rows != want->rows || got->cols != want->cols)
        return;
    int shown = 0;
    for (size_t i = 0; i < want->rows * want->cols; i++) {
        if (!close_enough(got->v[i], want->v[i])) {
            if (shown++ < 5)
                CHECK(0, "%s: row %zu value %zu: got %.9g, want %.9g", what, i / want->cols + 1,
                      i % want->cols + 1, got->v[i], want->v[i]);
            else
                tu_failures++;
        }
    }
}

/* Checks one /invocations response against the expected table. */
static void check_predictions(const char *what, const tu_response_t *r, const table_t *want,
                              int json_accept)
{
    CHECK(r->status == 200, "%s: status %d, want 200 (body: %.300s)", what, r->status,
          r->body ? r->body : "");
    if (r->status != 200)
        return;
    table_t got;
    char why[512];
    int rc;
    if (json_accept) {
        CHECK(starts_with(r->content_type, "application/json"),
              "%s: Content-Type '%s', want application/json", what, r->content_type);
        rc = table_from_json(r->body, r->body_len, &got, why, sizeof why);
    } else {
        CHECK(starts_with(r->content_type, "text/csv"), "%s: Content-Type '%s', want text/csv",
              what, r->content_type);
        rc = table_from_csv(r->body, r->body_len, &got, why, sizeof why);
    }
    CHECK(rc == 0, "%s: unreadable response: %s (body: %.300s)", what, why, r->body);
    if (rc == 0)
        compare_tables(what, &got, want);
    table_free(&got);
}

static void load_expected(const char *path, table_t *t)
{
    size_t len;
    char *text = read_text(path, &len);
    char why[256];
    if (table_from_csv(text, len, t, why, sizeof why) != 0)
        fail_msg("%s: %s", path, why);
    free(text);
}

/* Splits text into malloc'd lines (no empty ones); returns the count. */
static size_t split_lines(const char *text, char ***out)
{
    size_t n = 0, cap = 16;
    char **lines = malloc(cap * sizeof *lines);
    const char *p = text;
    while (*p) {
        size_t l = strcspn(p, "\n");
        size_t trimmed = l;
        while (trimmed && (p[trimmed - 1] == '\r' || p[trimmed - 1] == ' '))
            trimmed--;
        if (trimmed) {
            if (n == cap)
                lines = realloc(lines, (cap *= 2) * sizeof *lines);
            lines[n++] = strndup(p, trimmed);
        }
        p += l + (p[l] == '\n');
    }
    *out = lines;
    return n;
}

static void free_lines(char **lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}

/* -------------------------------------------------------------- serve cases */

/* Starts a server on model_dir with env, and checks every request form
 * against the expected predictions. */
static void serve_requests(const char *what, const char *model_dir, const char *const *env,
                           const char *csv, size_t csv_len, const char *json, size_t json_len,
                           const table_t *want_table)
{
    const table_t *want = want_table;
    tu_server_t s;
    if (tu_server_begin(&s, model_dir, env, 0) == 0) {
        char label[512];
        tu_response_t r;
        struct {
            const char *ct, *accept, *body;
            size_t len;
        } reqs[] = {
            {"text/csv", NULL, csv, csv_len},
            {"application/json", NULL, json, json_len},
            {"text/csv", "application/json", csv, csv_len},
            {"application/json", "application/json", json, json_len},
            {"text/csv", "text/csv", csv, csv_len},
        };
        for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
            snprintf(label, sizeof label, "%s: POST %s, Accept %s", what, reqs[i].ct,
                     reqs[i].accept ? reqs[i].accept : "(none)");
            if (post(s.port, reqs[i].ct, reqs[i].accept, reqs[i].body, reqs[i].len, &r) != 0) {
                CHECK(0, "%s: no response", label);
                continue;
            }
            check_predictions(label, &r, want,
                              reqs[i].accept && strcmp(reqs[i].accept, "application/json") == 0);
            tu_response_free(&r);
        }
        tu_server_finish(&s, what, 0);
    }
}

static void serve_one(const char *what, const char *model_dir, const char *req_base,
                      const char *check_path)
{
    char *csv_path, *json_path, *exp_path;
    if (asprintf(&csv_path, "%s.csv", req_base) < 0 ||
        asprintf(&json_path, "%s.json", req_base) < 0 ||
        asprintf(&exp_path, "%s.expected", req_base) < 0)
        fail();
    size_t csv_len, json_len;
    char *csv = read_text(csv_path, &csv_len);
    char *json = read_text(json_path, &json_len);
    table_t want;
    load_expected(exp_path, &want);

    /* Both engines must predict what python's xgboost predicts: the native
     * evaluator (the default) and the C API it falls back to. */
    static const char *const native_env[] = {NULL};
    static const char *const capi_env[] = {"SMSERVE_ENGINE=xgboost", NULL};
    const char *const *engines[] = {native_env, capi_env};
    for (size_t e = 0; e < 2; e++) {
        char engine_what[256];
        snprintf(engine_what, sizeof engine_what, "%s (%s)", what,
                 e == 0 ? "native engine" : "SMSERVE_ENGINE=xgboost");
        serve_requests(engine_what, model_dir, engines[e], csv, csv_len, json, json_len, &want);
    }

    char *out = NULL;
    const char *argv[] = {SMS_BINARY, "check", check_path, NULL};
    int rc = tu_run_timed(argv, NULL, 30, &out, NULL);
    CHECK(rc == 0, "%s: smserve check %s: exit %d, want 0; output:\n%s", what, check_path, rc, out);
    /* Every model of the acceptance set, trees and gblinear, passes the
     * parity gate. */
    const char *engine = "native evaluator";
    CHECK(out && strstr(out, engine),
          "%s: smserve check does not report engine \"%s\"; output:\n%s", what, engine,
          out ? out : "");
    free(out);

    table_free(&want);
    free(csv);
    free(json);
    free(csv_path);
    free(json_path);
    free(exp_path);
}

/* Calls each(index_path, line) for every non-empty line of the fixture index
 * `rel` (relative to SMS_FIXTURE_DIR), which must list at least min_lines
 * cases. */
static void for_each_index_line(const char *rel, size_t min_lines,
                                void (*each)(const char *index_path, const char *line))
{
    char *index_path = fixture(rel);
    char *index = read_text(index_path, NULL);
    char **lines;
    size_t n = split_lines(index, &lines);
    assert_true(n >= min_lines);
    for (size_t i = 0; i < n; i++)
        each(index_path, lines[i]);
    free_lines(lines, n);
    free(index);
    free(index_path);
}

/* A serve/index.txt line names a case directory. */
static void serve_case(const char *index_path, const char *name)
{
    (void)index_path;
    char *dir = fixture2("serve", name, "");
    char *base = fixture2("serve", name, "");
    serve_one(name, dir, base, dir);
    free(dir);
    free(base);
}

static void test_serve_cases(void **state)
{
    (void)state;
    tu_checks_begin();
    for_each_index_line("serve/index.txt", 13, serve_case);
    tu_checks_end();
}

/* A model dir holding only an unextracted model.tar.gz. */
static void test_serve_tarball(void **state)
{
    (void)state;
    tu_checks_begin();
    char *dir = fixture("tarball");
    char *file = fixture("tarball/model.tar.gz");
    serve_one("tarball", dir, dir, dir);

    char *out = NULL;
    const char *argv[] = {SMS_BINARY, "check", file, NULL};
    int rc = tu_run_timed(argv, NULL, 30, &out, NULL);
    CHECK(rc == 0, "smserve check %s: exit %d, want 0; output:\n%s", file, rc, out);
    free(out);
    free(dir);
    free(file);
    tu_checks_end();
}

/* ------------------------------------------------------------ refusal cases */

/* The output of a refusal names the check twice: one human line with the
 * check name and "fix", and one JSON line {"event":"model_refused",...}. */
static void check_refusal_output(const char *what, const char *output, const char *check)
{
    char **lines;
    size_t n = split_lines(output, &lines);
    int human = 0, machine = 0;
    for (size_t i = 0; i < n; i++) {
        const char *l = lines[i] + strspn(lines[i], " \t");
        if (*l == '{') {
            json_error_t jerr;
            json_t *doc = json_loads(l, 0, &jerr);
            json_t *ev = doc ? json_object_get(doc, "event") : NULL;
            if (json_is_string(ev) && strcmp(json_string_value(ev), "model_refused") == 0) {
                json_t *c = json_object_get(doc, "check");
                if (json_is_string(c) && strcmp(json_string_value(c), check) == 0) {
                    machine = 1;
                    static const char *keys[] = {
                        "file", "format", "producer_version", "runtime_version", "reason", "fix"};
                    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
                        CHECK(json_object_get(doc, keys[k]) != NULL,
                              "%s: model_refused line lacks \"%s\": %s", what, keys[k], l);
                    json_t *fix = json_object_get(doc, "fix");
                    CHECK(json_is_string(fix) && json_string_length(fix) > 0,
                          "%s: model_refused line has an empty fix: %s", what, l);
                }
            }
            json_decref(doc);
        } else if (strstr(l, check) && strcasestr(l, "fix")) {
            human = 1;
        }
    }
    CHECK(human, "%s: no human line naming check '%s' and a fix; output:\n%s", what, check, output);
    CHECK(machine, "%s: no JSON model_refused line with check \"%s\"; output:\n%s", what, check,
          output);
    free_lines(lines, n);
}

static char *evil_found;

static int find_evil(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    if (strcmp(path + ftw->base, "evil") == 0 && !evil_found)
        evil_found = strdup(path);
    return 0;
}

static void refuse_one(const char *name, const char *check)
{
    int is_tar = strncmp(name, "tar-", 4) == 0;
    char *dir = fixture2("refuse", name, "");
    char *work = NULL, *tmp_env = NULL, *tar_file = NULL;
    int tmp_evil_before = access("/tmp/evil", F_OK) == 0;
    if (is_tar) {
        /* Work on a copy in a private tree, with TMPDIR inside it, so any
         * escaped member lands where we can see it. */
        work = tu_mkdtemp();
        char *m = tu_path(work, "m"), *t = tu_path(work, "tmp");
        mkdir(m, 0700);
        mkdir(t, 0700);
        char *src = tu_path(dir, "model.tar.gz");
        tar_file = tu_path(m, "model.tar.gz");
        if (tu_copy_file(src, tar_file) != 0)
            fail_msg("cannot copy %s", src);
        if (asprintf(&tmp_env, "TMPDIR=%s", t) < 0)
            fail();
        free(src);
        free(t);
        free(dir);
        dir = m;
    }
    const char *allow =
        strcmp(name, "xgb35-base-score-allow") == 0 ? "SMSERVE_ALLOW_NEWER=1" : NULL;
    char label[256], *out = NULL;

    const char *env1[3] = {0};
    size_t e = 0;
    if (tmp_env)
        env1[e++] = tmp_env;
    if (allow)
        env1[e++] = allow;
    const char *argv_check[] = {SMS_BINARY, "check", dir, NULL};
    int rc = tu_run_timed(argv_check, env1, 30, &out, NULL);
    snprintf(label, sizeof label, "refuse %s: smserve check", name);
    CHECK(rc > 0, "%s: exit %d, want a non-zero exit (not a crash or hang); output:\n%s", label, rc,
          out);
    check_refusal_output(label, out, check);
    free(out);

    if (tar_file) {
        const char *argv_file[] = {SMS_BINARY, "check", tar_file, NULL};
        rc = tu_run_timed(argv_file, env1, 30, &out, NULL);
        snprintf(label, sizeof label, "refuse %s: smserve check model.tar.gz", name);
        CHECK(rc > 0, "%s: exit %d, want non-zero; output:\n%s", label, rc, out);
        check_refusal_output(label, out, check);
        free(out);
    }

    char model_env[1200], port_env[64];
    snprintf(model_env, sizeof model_env, "SM_MODEL_DIR=%s", dir);
    snprintf(port_env, sizeof port_env, "SAGEMAKER_BIND_TO_PORT=%d", tu_free_port());
    const char *env2[5] = {model_env, port_env, 0};
    e = 2;
    if (tmp_env)
        env2[e++] = tmp_env;
    if (allow)
        env2[e++] = allow;
    const char *argv_serve[] = {SMS_BINARY, "serve", NULL};
    double elapsed = 0, limit = 1.0 * tu_slow_factor();
    rc = tu_run_timed(argv_serve, env2, 10 * tu_slow_factor(), &out, &elapsed);
    snprintf(label, sizeof label, "refuse %s: smserve serve", name);
    CHECK(rc > 0, "%s: exit %d after %.2f s, want a non-zero exit; output:\n%s", label, rc, elapsed,
          out);
    CHECK(elapsed <= limit, "%s: took %.2f s to exit, want <= %.1f s", label, elapsed, limit);
    check_refusal_output(label, out, check);
    free(out);

    if (is_tar) {
        evil_found = NULL;
        nftw(work, find_evil, 16, FTW_PHYS);
        CHECK(!evil_found, "refuse %s: an archive member escaped: %s exists", name,
              evil_found ? evil_found : "");
        free(evil_found);
        evil_found = NULL;
        CHECK(tmp_evil_before || access("/tmp/evil", F_OK) != 0, "refuse %s: /tmp/evil appeared",
              name);
        tu_rmtree(work);
    }
    free(work);
    free(tmp_env);
    free(tar_file);
    free(dir);
}

/* A refuse/index.txt line is "<case directory> <check it must fail>". */
static void refuse_case(const char *index_path, const char *line)
{
    char name[128], check[64];
    if (sscanf(line, "%127s %63s", name, check) != 2)
        fail_msg("bad line in %s: %s", index_path, line);
    refuse_one(name, check);
}

static void test_refuse_cases(void **state)
{
    (void)state;
    tu_checks_begin();
    for_each_index_line("refuse/index.txt", 10, refuse_case);
    tu_checks_end();
}

/* ---------------------------------------------------------------- CLI, env */

static void test_version(void **state)
{
    (void)state;
    tu_checks_begin();
    char *out = NULL;
    const char *argv[] = {SMS_BINARY, "--version", NULL};
    int rc = tu_run_timed(argv, NULL, 10, &out, NULL);
    CHECK(rc == 0, "--version: exit %d; output:\n%s", rc, out);
    CHECK(strstr(out, "smserve"), "--version does not say smserve: %s", out);
    sms_version_t v = sms_model_runtime_version();
    char runtime[64];
    snprintf(runtime, sizeof runtime, "XGBoost %d.%d.%d", v.major, v.minor, v.patch);
    CHECK(strstr(out, runtime), "--version does not name %s: %s", runtime, out);
    CHECK(strstr(out, "CivetWeb"), "--version does not name CivetWeb: %s", out);
    free(out);
    tu_checks_end();
}

static void test_invalid_env(void **state)
{
    (void)state;
    tu_checks_begin();
    static const char *bad[][2] = {
        {"SAGEMAKER_BIND_TO_PORT", "abc"},
        {"SAGEMAKER_MODEL_SERVER_WORKERS", "0"},
        {"MAX_CONTENT_LENGTH", "-5"},
        {"SAGEMAKER_MODEL_SERVER_TIMEOUT", "x"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char model_env[1200], port_env[64], bad_env[128];
        snprintf(model_env, sizeof model_env, "SM_MODEL_DIR=%s/models/sample", SMS_SOURCE_DIR);
        snprintf(port_env, sizeof port_env, "SAGEMAKER_BIND_TO_PORT=%d", tu_free_port());
        snprintf(bad_env, sizeof bad_env, "%s=%s", bad[i][0], bad[i][1]);
        /* bad_env comes last so it overrides the port. */
        const char *env[] = {model_env, port_env, bad_env, NULL};
        const char *argv[] = {SMS_BINARY, "serve", NULL};
        char *out = NULL;
        double elapsed;
        int rc = tu_run_timed(argv, env, 5 * tu_slow_factor(), &out, &elapsed);
        CHECK(rc > 0, "%s: serve exit %d after %.2f s, want a non-zero exit; output:\n%s", bad_env,
              rc, elapsed, out);
        CHECK(strstr(out, bad[i][0]), "%s: the output does not name %s:\n%s", bad_env, bad[i][0],
              out);
        free(out);
    }
    tu_checks_end();
}

/* ------------------------------------------------------ sample model, codes */

static char *sample_dir(void)
{
    return tu_path(SMS_SOURCE_DIR, "models/sample");
}

static char *sample_file(const char *name)
{
    return tu_path(SMS_SOURCE_DIR "/models", name);
}

/* One CSV line ("1,,3") as a JSON array text ("[1, null, 3]"). */
static char *csv_line_to_json(const char *line)
{
    size_t cap = strlen(line) * 2 + 64;
    char *out = malloc(cap);
    size_t n = 0;
    out[n++] = '[';
    const char *p = line;
    for (int first = 1;; first = 0) {
        size_t l = strcspn(p, ",");
        if (!first)
            n += (size_t)snprintf(out + n, cap - n, ", ");
        if (l == 0)
            n += (size_t)snprintf(out + n, cap - n, "null");
        else
            n += (size_t)snprintf(out + n, cap - n, "%.*s", (int)l, p);
        if (p[l] != ',')
            break;
        p += l + 1;
    }
    snprintf(out + n, cap - n, "]");
    return out;
}

/* Keeps rows `pick` (0-based) of a table. */
static void table_pick(const table_t *all, const size_t *pick, size_t n, table_t *out)
{
    out->rows = n;
    out->cols = all->cols;
    out->v = malloc(n * all->cols * sizeof *out->v);
    for (size_t i = 0; i < n; i++)
        memcpy(out->v + i * all->cols, all->v + pick[i] * all->cols, all->cols * sizeof *out->v);
}

static void expect_status(int port, const char *method, const char *path, const char *headers,
                          const char *body, int status, const char *what)
{
    tu_response_t r;
    if (tu_http(port, method, path, headers, body, body ? strlen(body) : 0, &r) != 0) {
        CHECK(0, "%s: no response", what);
        return;
    }
    if (status >= 400)
        check_error_body(what, &r, status);
    else
        CHECK(r.status == status, "%s: status %d, want %d (body: %.300s)", what, r.status, status,
              r.body);
    tu_response_free(&r);
}

static void test_sample_requests(void **state)
{
    (void)state;
    tu_checks_begin();
    char *dir = sample_dir(), *csv_path = sample_file("sample.csv"),
         *json_path = sample_file("sample.json"), *exp_path = sample_file("sample.expected");
    size_t csv_len, json_len;
    char *csv = read_text(csv_path, &csv_len), *json = read_text(json_path, &json_len);
    table_t want;
    load_expected(exp_path, &want);
    char **rows;
    size_t nrows = split_lines(csv, &rows);
    assert_int_equal(nrows, 3);
    assert_int_equal(want.rows, 3);

    tu_server_t s;
    if (tu_server_begin(&s, dir, NULL, 0) != 0)
        goto done;
    tu_response_t r;
    char label[256];

    /* /ping: 200, empty body. */
    if (tu_http(s.port, "GET", "/ping", NULL, NULL, 0, &r) == 0) {
        CHECK(r.status == 200, "GET /ping: status %d", r.status);
        CHECK(r.body_len == 0, "GET /ping: body '%.200s', want empty", r.body);
        tu_response_free(&r);
    } else {
        CHECK(0, "GET /ping: no response");
    }

    /* Every accepted Content-Type, and the default Accept. */
    static const char *csv_types[] = {"text/csv", "text/csv; charset=utf-8", "csv"};
    static const char *json_types[] = {"application/json", "application/json; charset=utf-8"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(label, sizeof label, "sample: Content-Type '%s'", csv_types[i]);
        if (post(s.port, csv_types[i], NULL, csv, csv_len, &r) == 0) {
            check_predictions(label, &r, &want, 0);
            tu_response_free(&r);
        } else {
            CHECK(0, "%s: no response", label);
        }
    }
    for (size_t i = 0; i < 2; i++) {
        snprintf(label, sizeof label, "sample: Content-Type '%s'", json_types[i]);
        if (post(s.port, json_types[i], NULL, json, json_len, &r) == 0) {
            check_predictions(label, &r, &want, 0);
            tu_response_free(&r);
        } else {
            CHECK(0, "%s: no response", label);
        }
    }
    if (post(s.port, "text/csv", "application/json", csv, csv_len, &r) == 0) {
        check_predictions("sample: Accept application/json", &r, &want, 1);
        tu_response_free(&r);
    }

    /* JSON forms: instances of {"features": [...]}, and one {"features": [...]}. */
    {
        char *body = strdup("{\"instances\": [");
        for (size_t i = 0; i < nrows; i++) {
            char *arr = csv_line_to_json(rows[i]), *next;
            if (asprintf(&next, "%s%s{\"features\": %s}", body, i ? ", " : "", arr) < 0)
                fail();
            free(body);
            free(arr);
            body = next;
        }
        char *full;
        if (asprintf(&full, "%s]}", body) < 0)
            fail();
        if (post(s.port, "application/json", NULL, full, strlen(full), &r) == 0) {
            check_predictions("sample: {\"instances\": [{\"features\": ...}]}", &r, &want, 0);
            tu_response_free(&r);
        } else {
            CHECK(0, "instances/features: no response");
        }
        free(full);
        free(body);

        char *arr = csv_line_to_json(rows[1]);
        if (asprintf(&full, "{\"features\": %s}", arr) < 0)
            fail();
        table_t one;
        size_t pick[] = {1};
        table_pick(&want, pick, 1, &one);
        if (post(s.port, "application/json", NULL, full, strlen(full), &r) == 0) {
            check_predictions("sample: {\"features\": [...]}", &r, &one, 0);
            tu_response_free(&r);
        } else {
            CHECK(0, "features: no response");
        }
        table_free(&one);
        free(full);
        free(arr);
    }

    /* CSV variants: CRLF, no final newline, tab and space delimiters (rows
     * 1 and 3 have no missing value). */
    {
        size_t pick[] = {0, 2};
        table_t two;
        table_pick(&want, pick, 2, &two);
        char body[1024];
        snprintf(body, sizeof body, "%s\r\n%s\r\n%s\r\n", rows[0], rows[1], rows[2]);
        if (post(s.port, "text/csv", NULL, body, strlen(body), &r) == 0) {
            check_predictions("sample: CSV with CRLF", &r, &want, 0);
            tu_response_free(&r);
        }
        snprintf(body, sizeof body, "%s\n%s\n%s", rows[0], rows[1], rows[2]);
        if (post(s.port, "text/csv", NULL, body, strlen(body), &r) == 0) {
            check_predictions("sample: CSV without final newline", &r, &want, 0);
            tu_response_free(&r);
        }
        static const char delims[] = {'\t', ' '};
        for (size_t d = 0; d < 2; d++) {
            snprintf(body, sizeof body, "%s\n%s\n", rows[0], rows[2]);
            for (char *c = body; *c; c++)
                if (*c == ',')
                    *c = delims[d];
            snprintf(label, sizeof label, "sample: CSV delimited by %s", d ? "space" : "tab");
            if (post(s.port, "text/csv", NULL, body, strlen(body), &r) == 0) {
                check_predictions(label, &r, &two, 0);
                tu_response_free(&r);
            }
        }
        table_free(&two);
    }

    /* Status codes. */
    expect_status(s.port, "POST", "/invocations", "Content-Type: text/csv", "", 204,
                  "empty CSV body");
    expect_status(s.port, "POST", "/invocations", "Content-Type: application/json", "", 204,
                  "empty JSON body");

    if (tu_http(s.port, "POST", "/invocations", "Content-Type: text/csv",
                "1,2,3,4,5,6,7,8\n1,2,3,4,5\n", strlen("1,2,3,4,5,6,7,8\n1,2,3,4,5\n"), &r) == 0) {
        check_error_body("short second row", &r, 400);
        CHECK(r.body && strstr(r.body, "row 2"), "short second row: body does not say 'row 2': %s",
              r.body);
        CHECK(r.body && strstr(r.body, "5") && strstr(r.body, "8"),
              "short second row: body does not say it had 5 values and the model expects 8: %s",
              r.body);
        tu_response_free(&r);
    } else {
        CHECK(0, "short second row: no response");
    }
    expect_status(s.port, "POST", "/invocations", "Content-Type: text/csv", "1,2,3,4,5,6,7,8,9\n",
                  400, "CSV row too wide");
    expect_status(s.port, "POST", "/invocations", "Content-Type: text/csv", "1,2,abc,4,5,6,7,8\n",
                  400, "CSV with 'abc'");
    expect_status(s.port, "POST", "/invocations", "Content-Type: text/csv", "abc\n", 400,
                  "CSV 'abc'");
    expect_status(s.port, "POST", "/invocations", "Content-Type: application/json",
                  "{\"instances\": [[1, 2,", 400, "malformed JSON");
    expect_status(s.port, "POST", "/invocations", "Content-Type: application/json",
                  "{\"instances\": [[1, 2, 3]]}", 400, "JSON row too short");
    expect_status(s.port, "POST", "/invocations", "Content-Type: text/csv\r\nAccept: text/html",
                  "1,2,3,4,5,6,7,8\n", 406, "Accept text/html");
    expect_status(s.port, "POST", "/invocations", "Content-Type: application/x-foo",
                  "1,2,3,4,5,6,7,8\n", 415, "Content-Type application/x-foo");
    expect_status(s.port, "GET", "/nope", NULL, NULL, 404, "GET /nope");
    expect_status(s.port, "GET", "/invocations", NULL, NULL, 405, "GET /invocations");
    expect_status(s.port, "POST", "/ping", "Content-Type: text/csv", "1\n", 405, "POST /ping");

    /* Still healthy after all that. */
    expect_status(s.port, "GET", "/ping", NULL, NULL, 200, "GET /ping at the end");
    tu_server_finish(&s, "sample", 0);
done:
    free_lines(rows, nrows);
    table_free(&want);
    free(csv);
    free(json);
    free(dir);
    free(csv_path);
    free(json_path);
    free(exp_path);
    tu_checks_end();
}

/* ------------------------------------------------------------- raw sockets */

/* Reads until the end of a response's headers; returns the status or -1. */
static int read_status(int fd)
{
    char buf[4096];
    size_t n = 0;
    while (n < sizeof buf - 1) {
        ssize_t r = recv(fd, buf + n, sizeof buf - 1 - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
        buf[n] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            break;
    }
    buf[n] = '\0';
    int status;
    if (!strstr(buf, "\r\n\r\n") || sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    return status;
}

static void test_max_content_length(void **state)
{
    (void)state;
    tu_checks_begin();
    char *dir = sample_dir();
    const char *env[] = {"MAX_CONTENT_LENGTH=1000", NULL};
    tu_server_t s;
    if (tu_server_begin(&s, dir, env, 0) != 0)
        goto done;

    /* 2000 bytes of valid rows. */
    char body[2001];
    const char *row = "35,72.5,0.21,5,0,8.5,12,1\n"; /* 26 bytes */
    size_t n = 0;
    while (n + strlen(row) <= 2000) {
        memcpy(body + n, row, strlen(row));
        n += strlen(row);
    }
    while (n < 2000)
        body[n++] = '\n';
    body[n] = '\0';
    tu_response_t r;
    if (post(s.port, "text/csv", NULL, body, 2000, &r) == 0) {
        check_error_body("2000-byte body over MAX_CONTENT_LENGTH=1000", &r, 413);
        tu_response_free(&r);
    } else {
        CHECK(0, "2000-byte body over MAX_CONTENT_LENGTH=1000: no response (connection reset?)");
    }

    /* The limit is checked before reading: headers alone get the 413. */
    int fd = tu_connect(s.port, 3.0 * tu_slow_factor());
    CHECK(fd >= 0, "connect failed");
    if (fd >= 0) {
        tu_send_str(fd, "POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                        "Content-Length: 2000\r\n\r\n");
        int st = read_status(fd);
        CHECK(st == 413,
              "Content-Length 2000 over MAX_CONTENT_LENGTH=1000, body not sent: status %d, "
              "want 413 before the body is read",
              st);
        close(fd);
    }

    /* Under the limit is served. */
    n = 26 * 30; /* 780 bytes, 30 rows */
    if (post(s.port, "text/csv", NULL, body, n, &r) == 0) {
        CHECK(r.status == 200, "780-byte body under MAX_CONTENT_LENGTH=1000: status %d (%s)",
              r.status, r.body);
        tu_response_free(&r);
    }
    tu_server_finish(&s, "max content length", 0);
done:
    free(dir);
    tu_checks_end();
}

/* SMSERVE_MAX_MATRIX_VALUES reaches the decoders whose rows are not
 * bounded by their bytes: 200 libsvm lines of 4 bytes are 200 x 8 values. */
static void test_max_matrix_values(void **state)
{
    (void)state;
    tu_checks_begin();
    char *dir = sample_dir();
    const char *env[] = {"SMSERVE_MAX_MATRIX_VALUES=1024", NULL};
    tu_server_t s;
    if (tu_server_begin(&s, dir, env, 0) != 0)
        goto done;
    char body[801];
    for (int i = 0; i < 200; i++)
        memcpy(body + 4 * i, "1:1\n", 4);
    body[800] = '\0';
    tu_response_t r;
    if (post(s.port, "text/libsvm", NULL, body, 800, &r) == 0) {
        check_error_body("200 libsvm rows x 8 over SMSERVE_MAX_MATRIX_VALUES=1024", &r, 413);
        CHECK(strstr(r.body, "limit of 1024 values"), "413 does not name the limit: %s", r.body);
        tu_response_free(&r);
    }
    /* 128 x 8 is the limit exactly */
    if (post(s.port, "text/libsvm", NULL, body, 512, &r) == 0) {
        CHECK(r.status == 200, "128 libsvm rows x 8 at the limit: status %d (%s)", r.status,
              r.body);
        tu_response_free(&r);
    }
    tu_server_finish(&s, "max matrix values", 0);
done:
    free(dir);
    tu_checks_end();
}

/* --------------------------------------------------------- hostile bodies */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static size_t make_hostile(size_t i, char *buf, size_t cap, const char *valid, size_t valid_len)
{
    static const char csv_alpha[] = "0123456789.,,,-+eE\n\r\t naNifIN\"";
    static const char json_alpha[] = "{}[]\":,0123456789.-eE nul truefas instances features\\";
    size_t len = (size_t)(rnd() % ((size_t)1 << (rnd() % 17))); /* log-uniform up to 64 KB */
    if (len > cap)
        len = cap;
    switch (i % 5) {
    case 0:
        for (size_t k = 0; k < len; k++)
            buf[k] = (char)(rnd() & 0xff);
        return len;
    case 1:
        for (size_t k = 0; k < len; k++)
            buf[k] = csv_alpha[rnd() % (sizeof csv_alpha - 1)];
        return len;
    case 2:
        for (size_t k = 0; k < len; k++)
            buf[k] = json_alpha[rnd() % (sizeof json_alpha - 1)];
        return len;
    case 3: { /* a valid body with a few bytes flipped, maybe truncated */
        len = valid_len < cap ? valid_len : cap;
        memcpy(buf, valid, len);
        for (int k = 0; k < 4; k++)
            buf[rnd() % len] = (char)(rnd() & 0xff);
        return rnd() % 2 ? len : rnd() % len;
    }
    default: { /* fixed nasty shapes */
        static const char *shapes[] = {
            "1e999,1e999,1e999,1e999,1e999,1e999,1e999,1e999\n",
            "nan,inf,-inf,NaN,Infinity,-0,0x10,1e-999\n",
            "0.00000000000000000000000000000000000000000000000000001,1,2,3,4,5,6,7\n",
            ",,,,,,,\n,,,,,,,\n",
            "{\"instances\": [[1e999, null, null, null, null, null, null, null]]}",
            "{\"instances\": [{}]}",
            "{\"instances\": {}}",
            "{\"features\": null}",
            "{\"instances\": [[\"1\", 2, 3, 4, 5, 6, 7, 8]]}",
            "{\"instances\": [[true, 2, 3, 4, 5, 6, 7, 8]]}",
            "{\"instances\": []}",
            "[]",
            "null",
            "\"\\ud800\"",
        };
        size_t which = (i / 5) % (sizeof shapes / sizeof shapes[0] + 4);
        if (which < sizeof shapes / sizeof shapes[0]) {
            len = strlen(shapes[which]);
            memcpy(buf, shapes[which], len);
            return len;
        }
        /* deep nesting, one huge row, a long number, many tiny rows */
        const char *unit = which % 4 == 0   ? "["
                           : which % 4 == 1 ? "1,"
                           : which % 4 == 2 ? "9"
                                            : "1\n";
        size_t ul = strlen(unit);
        size_t k = 0;
        while (k + ul <= cap && k < 60000) {
            memcpy(buf + k, unit, ul);
            k += ul;
        }
        return k;
    }
    }
}

static void test_hostile_bodies(void **state)
{
    (void)state;
    tu_checks_begin();
    char *dir = sample_dir(), *json_path = sample_file("sample.json"),
         *csv_path = sample_file("sample.csv"), *exp_path = sample_file("sample.expected");
    size_t json_len, csv_len;
    char *json = read_text(json_path, &json_len), *csv = read_text(csv_path, &csv_len);
    table_t want;
    load_expected(exp_path, &want);
    tu_server_t s;
    if (tu_server_begin(&s, dir, NULL, 0) != 0)
        goto done;
    size_t cap = 65536;
    char *buf = malloc(cap);
    for (size_t i = 0; i < 200; i++) {
        int use_json = (int)(rnd() % 2);
        const char *valid = use_json ? json : csv;
        size_t valid_len = use_json ? json_len : csv_len;
        size_t len = make_hostile(i, buf, cap, valid, valid_len);
        const char *ct = use_json ? "application/json" : "text/csv";
        tu_response_t r;
        int rc = post(s.port, ct, NULL, buf, len, &r);
        int status = rc == 0 ? r.status : -1;
        if (rc == 0)
            tu_response_free(&r);
        int alive = tu_server_alive(&s);
        int ping = -1;
        if (alive && tu_http(s.port, "GET", "/ping", NULL, NULL, 0, &r) == 0) {
            ping = r.status;
            tu_response_free(&r);
        }
        int ok = alive && ping == 200 && status >= 200 && status < 500;
        if (!ok) {
            char saved[128];
            snprintf(saved, sizeof saved, "/tmp/smserve-hostile-%zu.bin", i);
            tu_write_file(saved, buf, len);
            CHECK(0,
                  "hostile body %zu (%zu bytes, %s, saved to %s): status %d, server %s, "
                  "/ping %d",
                  i, len, ct, saved, status, alive ? "alive" : "DEAD", ping);
        }
        if (!alive) {
            tu_dump_log(&s, 0);
            s.pid = 0;
            break;
        }
    }
    free(buf);
    if (s.pid > 0) {
        tu_response_t r;
        if (post(s.port, "text/csv", NULL, csv, csv_len, &r) == 0) {
            check_predictions("valid request after hostile bodies", &r, &want, 0);
            tu_response_free(&r);
        } else {
            CHECK(0, "valid request after hostile bodies: no response");
        }
        tu_server_finish(&s, "hostile bodies", 0);
    }
done:
    table_free(&want);
    free(json);
    free(csv);
    free(dir);
    free(json_path);
    free(csv_path);
    free(exp_path);
    tu_checks_end();
}

/* ------------------------------------------------------------ concurrency */

typedef struct conc_job {
    int port;
    const char *csv, *json;
    size_t csv_len, json_len;
    const table_t *want;
    int requests;
    int bad;         /* requests whose answer was wrong */
    char first[512]; /* the first wrong answer */
} conc_job_t;

static void *conc_worker(void *arg)
{
    conc_job_t *job = arg;
    for (int i = 0; i < job->requests; i++) {
        int use_json = i % 2;
        tu_response_t r;
        int rc = post(job->port, use_json ? "application/json" : "text/csv", NULL,
                      use_json ? job->json : job->csv, use_json ? job->json_len : job->csv_len, &r);
        int ok = rc == 0 && r.status == 200;
        table_t got = {0};
        char why[256] = "";
        if (ok)
            ok = table_from_csv(r.body, r.body_len, &got, why, sizeof why) == 0 &&
                 got.rows == job->want->rows && got.cols == job->want->cols;
        for (size_t k = 0; ok && k < got.rows * got.cols; k++)
            ok = close_enough(got.v[k], job->want->v[k]);
        if (!ok && job->bad++ == 0)
            snprintf(job->first, sizeof job->first, "request %d (%s): rc %d status %d %s %.200s", i,
                     use_json ? "json" : "csv", rc, rc == 0 ? r.status : -1, why,
                     rc == 0 && r.body ? r.body : "");
        table_free(&got);
        if (rc == 0)
            tu_response_free(&r);
    }
    return NULL;
}

/* Several clients at once get exactly their own predictions (the proxy
 * DMatrix per thread, gblinear's serialised path). */
static void test_concurrent_predictions(void **state)
{
    (void)state;
    tu_checks_begin();
    static const char *cases[] = {"gbtree-multi-softprob", "gblinear-multi-softprob",
                                  "dart-reg-squarederror"};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char *dir = fixture2("serve", cases[c], ""),
             *csv_path = fixture2("serve", cases[c], ".csv"),
             *json_path = fixture2("serve", cases[c], ".json"),
             *exp_path = fixture2("serve", cases[c], ".expected");
        size_t csv_len, json_len;
        char *csv = read_text(csv_path, &csv_len), *json = read_text(json_path, &json_len);
        table_t want;
        load_expected(exp_path, &want);
        const char *env[] = {"SAGEMAKER_MODEL_SERVER_WORKERS=3", NULL};
        tu_server_t s;
        if (tu_server_begin(&s, dir, env, 0) == 0) {
            enum { THREADS = 6 };
            pthread_t th[THREADS];
            conc_job_t jobs[THREADS];
            for (int t = 0; t < THREADS; t++) {
                jobs[t] = (conc_job_t){.port = s.port,
                                       .csv = csv,
                                       .json = json,
                                       .csv_len = csv_len,
                                       .json_len = json_len,
                                       .want = &want,
                                       .requests = 30};
                pthread_create(&th[t], NULL, conc_worker, &jobs[t]);
            }
            for (int t = 0; t < THREADS; t++) {
                pthread_join(th[t], NULL);
                CHECK(jobs[t].bad == 0, "%s: client %d: %d of %d answers wrong; first: %s",
                      cases[c], t, jobs[t].bad, jobs[t].requests, jobs[t].first);
            }
            tu_server_finish(&s, cases[c], 0);
        }
        table_free(&want);
        free(csv);
        free(json);
        free(dir);
        free(csv_path);
        free(json_path);
        free(exp_path);
    }
    tu_checks_end();
}

/* ------------------------------------------------------------ connections */

static void test_idle_connections(void **state)
{
    (void)state;
    tu_checks_begin();
    char *dir = sample_dir();
    const char *env[] = {"SAGEMAKER_MODEL_SERVER_WORKERS=2", NULL};
    tu_server_t s;
    if (tu_server_begin(&s, dir, env, 0) != 0)
        goto done;
    enum { IDLE = 70 };
    int fds[IDLE];
    int opened = 0;
    for (int i = 0; i < IDLE; i++) {
        fds[i] = tu_connect(s.port, 3.0);
        if (fds[i] < 0)
            continue;
        opened++;
        if (i % 2 == 0) {
            /* One keep-alive /ping, answered, then the connection is left open. */
            tu_send_str(fds[i], "GET /ping HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n");
            int st = read_status(fds[i]);
            CHECK(st == 200, "idle connection %d: keep-alive /ping status %d", i, st);
        }
    }
    CHECK(opened == IDLE, "only %d of %d connections opened", opened, IDLE);

    double limit = 2.0 * tu_slow_factor();
    double t0 = tu_now_s();
    int fd = tu_connect(s.port, limit);
    int st = -1;
    if (fd >= 0) {
        tu_send_str(fd, "GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        st = read_status(fd);
        close(fd);
    }
    double took = tu_now_s() - t0;
    CHECK(st == 200 && took <= limit,
          "with %d idle keep-alive connections open, a new /ping got status %d after %.2f s "
          "(want 200 within %.1f s)",
          IDLE, st, took, limit);

    /* A prediction too. */
    tu_response_t r;
    t0 = tu_now_s();
    if (post(s.port, "text/csv", NULL, "35,72.5,0.21,5,0,8.5,12,1\n", 26, &r) == 0) {
        CHECK(r.status == 200 && tu_now_s() - t0 <= limit,
              "with idle connections open, /invocations got %d after %.2f s", r.status,
              tu_now_s() - t0);
        tu_response_free(&r);
    } else {
        CHECK(0, "with idle connections open, /invocations: no response");
    }
    for (int i = 0; i < IDLE; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    tu_server_finish(&s, "idle connections", 0);
done:
    free(dir);
    tu_checks_end();
}

/* SIGTERM after serving: exit status 0. */
static void test_sigterm(void **state)
{
    (void)state;
    tu_checks_begin();
    char *dir = sample_dir();
    tu_server_t s;
    if (tu_server_begin(&s, dir, NULL, 0) == 0) {
        tu_response_t r;
        if (post(s.port, "text/csv", NULL, "35,72.5,0.21,5,0,8.5,12,1\n", 26, &r) == 0) {
            CHECK(r.status == 200, "status %d", r.status);
            tu_response_free(&r);
        }
        double t0 = tu_now_s();
        if (tu_server_finish(&s, "sigterm", 0))
            CHECK(tu_now_s() - t0 < 5.0, "SIGTERM: took %.2f s to exit", tu_now_s() - t0);
    }
    free(dir);
    tu_checks_end();
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_sample_requests),
        cmocka_unit_test(test_serve_cases),
        cmocka_unit_test(test_serve_tarball),
        cmocka_unit_test(test_refuse_cases),
        cmocka_unit_test(test_max_content_length),
        cmocka_unit_test(test_max_matrix_values),
        cmocka_unit_test(test_hostile_bodies),
        cmocka_unit_test(test_concurrent_predictions),
        cmocka_unit_test(test_idle_connections),
        cmocka_unit_test(test_invalid_env),
        cmocka_unit_test(test_sigterm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
