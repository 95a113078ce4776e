/* Helpers shared by the cmocka tests: files, temporary directories, and the
 * real smserve binary started on a free port with a minimal HTTP client. */
#ifndef SMS_TESTUTIL_H
#define SMS_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <sys/types.h>
#include <cmocka.h>

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

typedef struct tu_response {
    int status;
    char content_type[128];
    char *body;        /* malloc'd, NUL-terminated */
    size_t body_len;
} tu_response_t;

/* One HTTP/1.1 request on a new connection to 127.0.0.1:port. headers: extra
 * "Name: value" lines joined with "\r\n" (may be NULL). Content-Length is
 * sent when body != NULL. 0 or -1 on a connection failure. */
int tu_http(int port, const char *method, const char *path, const char *headers,
            const char *body, size_t body_len, tu_response_t *out);
void tu_response_free(tu_response_t *r);

/* Runs a command (argv, NULL-terminated) with extra env, captures its output
 * (stdout+stderr) into *output (malloc'd); returns the exit status or -1. */
int tu_run(const char *const *argv, const char *const *extra_env, char **output);

#endif
