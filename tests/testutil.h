/* Helpers shared by the cmocka tests: files, temporary directories, a
 * seeded RNG, checks and tables of cases that drive any request decoder from
 * a guarded buffer, the AWS responses corpus, RecordIO bodies read back, and
 * the real smserve binary started on a free port with a minimal HTTP
 * client. */
#ifndef SMS_TESTUTIL_H
#define SMS_TESTUTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <sys/types.h>
#include <cmocka.h>

#include "smserve/decode.h"

#include <jansson.h>
#include <xgboost/c_api.h>

/* Reads a whole file; returns malloc'd bytes (NUL-terminated, caller frees)
 * and sets *len, or NULL. */
char *tu_read_file(const char *path, size_t *len);
/* Writes bytes to path (0600). 0 or -1. */
int tu_write_file(const char *path, const void *bytes, size_t len);
/* Creates a fresh private directory under TMPDIR; returns a malloc'd path. */
char *tu_mkdtemp(void);
/* rm -rf of a test directory. */
void tu_rmtree(const char *path);
/* Joins two path parts into a static-per-call malloc'd string (caller frees). */
char *tu_path(const char *dir, const char *name);
/* Copies a file. 0 or -1. */
int tu_copy_file(const char *from, const char *to);

/* A test-owned buffer placed so that its last byte sits right before a
 * PROT_NONE page: any read past `len` crashes the test. Free with
 * tu_guarded_free. */
void *tu_guarded_copy(const void *bytes, size_t len);
void tu_guarded_free(void *p, size_t len);

/* xorshift64*: advances *state (seed it with any non-zero value) and returns
 * the next 32 bits. Deterministic, so a failure reproduces from its seed. */
uint32_t tu_rand32(uint64_t *state);

/* A copy of v (new reference) with every real rounded to float32, the
 * precision XGBoost stores, so that two texts or encodings of one model
 * compare equal with json_equal. Integers stay integers. */
json_t *tu_json_float32(json_t *v);

/* Damages `iters` copies of a valid model's JSON text (len bytes): 1 to 4
 * bytes each, replaced by characters JSON numbers, arrays and XGBoost's
 * NaN/Infinity tokens are made of (a fixed seed), and hands each as a
 * guarded copy (tu_guarded_copy) to try_one along with the iteration. try_one
 * returns true when the damaged model still compiled. Returns how many did. */
size_t tu_damage_json(const char *valid, size_t len, int iters,
                      bool (*try_one)(const void *bytes, size_t len, unsigned iter));

/* Runs decoder fn on a guarded copy of body (see tu_guarded_copy), with err
 * cleared first. Returns what fn returns; m is the caller's. */
int tu_decode_guarded(sms_decode_fn fn, const char *body, size_t len, size_t expect_cols,
                      sms_matrix_t *m, sms_error_t *err);
/* Asserts that m holds rows x cols values equal to want (row-major; a NAN in
 * want asks for a NaN). */
void tu_assert_matrix_equal(const sms_matrix_t *m, size_t rows, size_t cols, const float *want);
/* Asserts that the NUL-terminated body decodes (guarded) to rows x cols
 * values equal to want, as tu_assert_matrix_equal. */
void tu_check_decode_ok(sms_decode_fn fn, const char *body, size_t expect_cols, size_t rows,
                        size_t cols, const float *want);
/* Asserts that body is refused with -1, status 400, exactly msg, no rows. */
void tu_check_decode_err(sms_decode_fn fn, const char *body, size_t len, size_t expect_cols,
                         const char *msg);
/* For hostile input: asserts a clean outcome, either 0 with a consistent
 * matrix (of expect_cols columns when non-zero) or -1, status 400, a
 * non-empty one-line printable message and no rows. */
void tu_check_decode_clean(sms_decode_fn fn, const char *body, size_t len, size_t expect_cols);
/* tu_check_decode_clean for a decoder under a value cap: a refusal may also
 * be the cap's 413. */
void tu_check_decode_clean_capped(sms_decode_fn fn, const char *body, size_t len,
                                  size_t expect_cols);
/* One of the two above, for the hostile loops below. */
typedef void (*tu_clean_fn)(sms_decode_fn fn, const char *body, size_t len, size_t expect_cols);
/* check on every prefix of body, 0 to len bytes, at each of the nwidths
 * expected widths (0: free). */
void tu_check_decode_prefixes(tu_clean_fn check, sms_decode_fn fn, const char *body, size_t len,
                              const size_t *widths, size_t nwidths);
/* check on `iters` random bodies of fewer than max_len (at most 4096)
 * bytes: every fourth of any bytes, the others of characters from alphabet
 * (NUL-terminated). Each at a free width and at 1 + a random width below
 * max_cols; the randomness is tu_rand32 on *rng. */
void tu_check_decode_random(tu_clean_fn check, sms_decode_fn fn, const char *alphabet,
                            size_t max_len, int iters, size_t max_cols, uint64_t *rng);

/* A decoder's case, for tables of them: the NUL-terminated body at
 * expect_cols decodes to rows x cols values equal to want, as
 * tu_check_decode_ok (msg NULL), or is refused as tu_check_decode_err with
 * msg. Write them with TU_DECODES and TU_REFUSES. */
typedef struct tu_decode_case {
    const char *body;
    size_t expect_cols;
    size_t rows, cols;
    const float *want;
    const char *msg;
} tu_decode_case_t;
#define TU_DECODES(body, expect_cols, rows, cols, want)                                            \
    {                                                                                              \
        (body), (expect_cols), (rows), (cols), (want), NULL                                        \
    }
#define TU_REFUSES(body, expect_cols, msg)                                                         \
    {                                                                                              \
        (body), (expect_cols), 0, 0, NULL, (msg)                                                   \
    }
/* Checks the n cases of a table with decoder fn. */
void tu_check_decode_cases(sms_decode_fn fn, const tu_decode_case_t *cases, size_t n);
/* The number of elements of an array. */
#define TU_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the AWS responses corpus (tests/conformance) ------------------------ */

/* Its directory: SMSERVE_AWS_CORPUS, else ../shared/fixtures/aws-responses
 * beside the source tree. Returns it (malloc'd, caller frees) when its file
 * `probe` is readable; otherwise skips the test, or fails it under CI=true. */
char *tu_aws_corpus(const char *probe);
/* requests/index.json of the corpus at dir (a new reference). */
json_t *tu_aws_index(const char *dir);
/* index.json's matrix `name` (a row, or a list of rows of one width; null is
 * NaN) as rows x cols floats, malloc'd (caller frees). */
float *tu_aws_matrix(json_t *index, const char *name, size_t *rows, size_t *cols);
/* Strict base64 (length a multiple of 4, '=' padding only at the end) of the
 * n characters at s: malloc'd bytes and *len, or NULL when malformed. */
uint8_t *tu_base64_decode(const char *s, size_t n, size_t *len);

/* ---- RecordIO-protobuf bodies, read back with a protobuf walk ------------ */

/* Splits a RecordIO body into its records, asserting every frame's magic,
 * its length and zero padding, and that the frames fill the body exactly:
 * records[i], lengths[i] point into body. Returns how many (at most max). */
size_t tu_rio_frames(const uint8_t *body, size_t len, const uint8_t **records, size_t *lengths,
                     size_t max);

#define TU_RIO_MAX_KEYS    8
#define TU_RIO_MAX_VALUES  16
#define TU_RIO_MAX_ENTRIES 32

/* One Record's label map: its keys in order of first appearance with their
 * merged values (a repeated key: the last entry wins, as protobuf parsers
 * do), and each entry's bytes as on the wire, tag included. */
typedef struct tu_rio_labels {
    size_t n;
    char name[TU_RIO_MAX_KEYS][32];
    size_t count[TU_RIO_MAX_KEYS];
    float values[TU_RIO_MAX_KEYS][TU_RIO_MAX_VALUES];
    size_t entries; /* on the wire, repeats included */
    const uint8_t *entry[TU_RIO_MAX_ENTRIES];
    size_t entry_len[TU_RIO_MAX_ENTRIES];
} tu_rio_labels_t;
/* Reads the Record at rec (len bytes) into *lab, asserting that it holds
 * only label entries whose Values are float32 tensors. */
void tu_rio_read_labels(const uint8_t *rec, size_t len, tu_rio_labels_t *lab);

/* A running smserve. */
typedef struct tu_server {
    pid_t pid;
    int port;
    char log_path[256]; /* its stderr+stdout */
} tu_server_t;

/* Starts SMS_BINARY with argv {"smserve", "serve"} on a free port, the given
 * model dir, and extra "NAME=value" env entries (NULL-terminated list, may
 * be NULL). Waits up to 10 s until GET /ping answers 200 (wait_ready) or the
 * port accepts (not wait_ready). Returns 0 or -1 (process exited; its log is
 * kept in log_path). */
int tu_server_start(tu_server_t *s, const char *model_dir, const char *const *extra_env,
                    int wait_ready);
/* SIGTERM, then waits up to 10 s; returns the exit status (or -1 if it had
 * to be killed or died on a signal). */
int tu_server_stop(tu_server_t *s);
/* Whether s's process is still running. */
bool tu_server_alive(const tu_server_t *s);
/* Prints s's log to stderr: its last `tail` bytes, or all of it (tail 0). */
void tu_dump_log(const tu_server_t *s, size_t tail);
/* tu_server_start waiting for /ping, as a soft CHECK: 0, or -1 after a
 * failed CHECK with the log printed (tu_dump_log, log_tail). */
int tu_server_begin(tu_server_t *s, const char *model_dir, const char *const *extra_env,
                    size_t log_tail);
/* Ends a test's server with soft CHECKs, `what` heading their messages: it
 * is still running, and SIGTERM makes it exit with status 0. Prints its log
 * (log_tail) when either fails or the test has failed checks already;
 * removes the log file unless the server had died. Returns whether it was
 * still running. */
bool tu_server_finish(tu_server_t *s, const char *what, size_t log_tail);

typedef struct tu_response {
    int status;
    char content_type[128];
    char *body; /* malloc'd, NUL-terminated */
    size_t body_len;
} tu_response_t;

/* One HTTP/1.1 request on a new connection to 127.0.0.1:port. headers: extra
 * "Name: value" lines joined with "\r\n" (may be NULL). Content-Length is
 * sent when body != NULL. 0 or -1 on a connection failure. */
int tu_http(int port, const char *method, const char *path, const char *headers, const char *body,
            size_t body_len, tu_response_t *out);
void tu_response_free(tu_response_t *r);

/* Runs a command (argv, NULL-terminated) with extra "NAME=value" env entries
 * (NULL-terminated, may be NULL) and captures its stdout+stderr into *output
 * (malloc'd, "" if unreadable; output may be NULL). timeout_s > 0 is a
 * deadline after which the command is killed; <= 0 waits for it however
 * long it takes. elapsed_s (may be NULL) gets the wall time. Returns the exit
 * status, -1 if it died on a signal, -2 if it hit the deadline, -3 if it
 * could not be started. */
int tu_run_timed(const char *const *argv, const char *const *extra_env, double timeout_s,
                 char **output, double *elapsed_s);
/* tu_run_timed without a deadline; every failure is -1. */
int tu_run(const char *const *argv, const char *const *extra_env, char **output);
/* setenv(NAME, value, 1) in this process for each "NAME=value" of a
 * NULL-terminated list (the format of extra_env above). */
void tu_setenv_all(const char *const *entries);

/* A new TCP connection to 127.0.0.1:port (close-on-exec): the fd, or -1
 * with errno set. timeout_s > 0 bounds connect(2) and every later send and
 * recv (SO_SNDTIMEO, SO_RCVTIMEO); otherwise they block. */
int tu_connect(int port, double timeout_s);
/* Sends all n bytes (no SIGPIPE): 0, or -1 when a send fails. */
int tu_send_all(int fd, const void *p, size_t n);
/* tu_send_all of a NUL-terminated string. */
int tu_send_str(int fd, const char *s);

/* A client connection and what it received: len bytes in buf, which has
 * room for cap bytes and a NUL; the first off of them consumed. */
typedef struct tu_conn {
    int fd;
    char *buf;
    size_t len, cap, off;
    int eof, reset; /* the stream ended; by an error (a reset) */
} tu_conn_t;
/* Opens c to 127.0.0.1:port (tu_connect, blocking) with a 64 KiB buffer:
 * 0, or -1 with c->fd -1. */
int tu_conn_open(tu_conn_t *c, int port);
/* Closes and frees c; c->fd is -1 afterwards. */
void tu_conn_close(tu_conn_t *c);

/* A TCP port on 127.0.0.1 that was free a moment ago, or -1. */
int tu_free_port(void);
/* Monotonic time in seconds. */
double tu_now_s(void);
/* SMS_SLOW_FACTOR (at least 1): how much to stretch time limits, e.g. for
 * sanitized builds. */
double tu_slow_factor(void);
/* Whether the test runs under an instruction-set emulator (qemu-user, as
 * scripts/arm64.sh and cross-built ctest runs do), where everything, the
 * XGBoost library included, is some 20x slower: SMS_EMULATED set to anything
 * but "" or "0", or a process that the kernel knows as qemu-*. Tests use it
 * to lighten workloads that would not fit their timeouts, never to weaken
 * what they assert natively. */
int tu_emulated(void);

/* Soft checks for integration tests: a test keeps going after a failed
 * CHECK (so it still stops its servers), prints the first 40 failures with
 * their lines, and fails in tu_checks_end. */
extern int tu_failures;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            if (++tu_failures <= 40) {                                                             \
                fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                               \
                fprintf(stderr, __VA_ARGS__);                                                      \
                fputc('\n', stderr);                                                               \
            }                                                                                      \
        }                                                                                          \
    } while (0)
void tu_checks_begin(void);
void tu_checks_end(void);

/* ---- XGBoost boosters, for the native evaluators' parity tests ----------- */

/* Fails the test with XGBoost's last error when a C API call fails. */
#define XGB_OK(call)                                                                               \
    do {                                                                                           \
        if ((call) != 0) {                                                                         \
            print_error("%s: %s\n", #call, XGBGetLastError());                                     \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

/* A training label for objective from the row's score s (num_class for
 * multi:*), with noise drawn from rng. */
float tu_label_for(const char *objective, int num_class, float s, uint64_t *rng);
/* The booster's JSON, malloc'd (the C API's buffer dies with the next call). */
char *tu_booster_json(BoosterHandle b, size_t *len);
/* tu_booster_json, then frees the booster. */
char *tu_take_booster_json(BoosterHandle b, size_t *len);
/* Replaces the ten node arrays of a tree in a model's JSON by empty ones,
 * handed back in a for the caller to fill: left_children, right_children,
 * parents, split_indices, split_conditions, default_left, split_type,
 * loss_changes, sum_hessian, base_weights. */
void tu_tree_arrays(json_t *tree, json_t *a[10]);
/* Sets the tree's tree_param to `nodes` nodes, none deleted. */
void tu_tree_num_nodes(json_t *tree, size_t nodes);
/* Replaces the trees of root, a gbtree model's JSON (taken: decref'd), by
 * one tree that is a chain `depth` splits deep, made from its first tree:
 * node 2k splits into the leaf 2k + 1 and the next link 2k + 2. Returns the
 * model as compact JSON text, malloc'd (caller frees), its length in *len. */
char *tu_chain_model(json_t *root, unsigned depth, size_t *len);
/* A booster loaded from a saved model, predicting on one thread. */
BoosterHandle tu_booster_load(const char *bytes, size_t len);
/* Whether a native compiler refused (compiled is NULL); asserts that it
 * then wrote a reason into why. */
bool tu_refused(const void *compiled, const char *why);
/* Floats as integers in the order of their values, so that the difference
 * of two is their distance in ulps. */
int64_t tu_ordered(float v);

#endif
