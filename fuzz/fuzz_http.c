/* libFuzzer target for the HTTP front: CivetWeb and smserve's checks
 * around it (server/http.c), in this process, serving models/sample on a
 * loopback port. Each input is sent as the bytes of one connection, which
 * is then half-closed; everything the server answers is read to the end
 * and must be well formed: status lines "HTTP/1.x NNN Reason" with a
 * reason from the status table, header names from the fixed set smserve
 * writes, values without control bytes, bodies as long as their
 * Content-Length (none after a HEAD request's answer). (A request byte copied into a status line or
 * a header breaks one of these.) Every input goes to two servers: one
 * serving the sample model, and a multi-model endpoint with the sample
 * loaded as "sample" (its /models API under the same checks). Run from the
 * repository root. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "smserve/artifact.h"
#include "smserve/http.h"
#include "smserve/model.h"
#include "smserve/registry.h"

static int ports[2]; /* the single-model server's, the multi-model endpoint's */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        abort();
    close(fd);
    return ntohs(a.sin_port);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
    /* Short deadlines: an input that stops mid-request is answered fast. */
    setenv("SMSERVE_HEADER_TIMEOUT_MS", "300", 1);
    setenv("SMSERVE_KEEPALIVE_TIMEOUT_MS", "300", 1);
    setenv("SMSERVE_BODY_TIMEOUT_MS", "300", 1);
    setenv("SMSERVE_CONNECTIONS", "64", 1);
    setenv("MAX_CONTENT_LENGTH", "65536", 1);
    setenv("SMSERVE_METRICS", "true", 1);
    setenv("SMSERVE_MODEL_MEMORY_BYTES", "67108864", 1);
    sms_config_t cfg;
    sms_error_t err = {0};
    if (sms_config_from_env(&cfg, &err) < 0) {
        fprintf(stderr, "fuzz_http: %s\n", err.msg);
        abort();
    }
    ports[0] = cfg.port = free_port();
    sms_artifact_set_t set;
    sms_model_t *model = NULL;
    sms_diag_t diag = {0};
    if (sms_artifacts_scan("models/sample", sms_model_runtime_version(), false, &set) < 0 ||
        sms_model_load(&set, true, &model, &diag) < 0) {
        fprintf(stderr, "fuzz_http: cannot load models/sample (run from the repository root)\n");
        abort();
    }
    sms_artifacts_free(&set);
    sms_http_t *http;
    if (sms_http_start(&cfg, NULL, NULL, &http, &err) < 0) {
        fprintf(stderr, "fuzz_http: %s\n", err.msg);
        abort();
    }
    sms_http_set_model(http, model); /* both live until the process exits */

    sms_registry_config_t rcfg = {
        .budget_bytes = cfg.model_budget, .native = true, .wait_ms = 1000};
    sms_registry_t *registry = sms_registry_create(&rcfg, NULL);
    uint64_t load_us;
    size_t bytes;
    ports[1] = cfg.port = free_port();
    if (!registry ||
        sms_registry_load(registry, "sample", "models/sample", &load_us, &bytes, &err) < 0 ||
        sms_http_start(&cfg, NULL, NULL, &http, &err) < 0) {
        fprintf(stderr, "fuzz_http: the multi-model endpoint: %s\n", err.msg);
        abort();
    }
    sms_http_set_registry(http, registry);
    return 0;
}

static const char *const header_names[] = {
    "Content-Type", "Content-Length", "Date",   "Connection", "Allow",
    "Retry-After",  "Cache-Control",  "Pragma", "Expires",    "X-Amzn-SageMaker-Custom-Attributes"};

/* Checks one response at r (n bytes left); returns its length, 0 at the end
 * of a partial response, or aborts on a malformed one. */
static size_t check_response(const char *r, size_t n)
{
    const char *end = memmem(r, n, "\r\n\r\n", 4);
    if (!end)
        return 0; /* cut by the connection's end: nothing more to check */
    size_t head = (size_t)(end - r) + 4;
    /* "HTTP/1.1 200 OK\r\n" */
    if (n < 13 || memcmp(r, "HTTP/1.", 7) || (r[7] != '0' && r[7] != '1') || r[8] != ' ' ||
        !isdigit((unsigned char)r[9]) || !isdigit((unsigned char)r[10]) ||
        !isdigit((unsigned char)r[11]) || r[12] != ' ')
        abort();
    const char *p = r + 13;
    while (p < end && (isalpha((unsigned char)*p) || *p == ' ' || *p == '-'))
        p++;
    if (p[0] != '\r' || p[1] != '\n')
        abort();
    int status = atoi(r + 9);
    long length = -1;
    for (p += 2; p < end + 2;) {
        const char *eol = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon || colon[1] != ' ')
            abort();
        size_t name_len = (size_t)(colon - p);
        int known = 0;
        for (size_t i = 0; i < sizeof header_names / sizeof header_names[0]; i++)
            known |=
                strlen(header_names[i]) == name_len && !strncasecmp(p, header_names[i], name_len);
        if (!known)
            abort();
        for (const char *v = colon + 2; v < eol; v++)
            if ((unsigned char)*v < 0x20 || *v == 0x7f)
                abort();
        if (name_len == 14 && !strncasecmp(p, "Content-Length", 14))
            length = strtol(colon + 2, NULL, 10);
        p = eol + 2;
    }
    /* No body: an interim response, or the answer to a HEAD request (the
     * next response follows the head at once). */
    if (status == 100 || (n - head >= 9 && !memcmp(r + head, "HTTP/1.1 ", 9)))
        return head;
    if (length < 0)
        abort(); /* every final response has a Content-Length */
    if (head + (size_t)length > n)
        return 0;
    return head + (size_t)length;
}

/* Sends one input as a connection to port and checks everything answered. */
static void exchange(int port, const uint8_t *data, size_t size)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        abort();
    size_t sent = 0;
    while (sent < size) {
        ssize_t w = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
        if (w <= 0)
            break; /* the server closed after an error: fine */
        sent += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    static char buf[1 << 20];
    size_t got = 0;
    for (;;) {
        ssize_t r = recv(fd, buf + got, sizeof buf - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
        if (got == sizeof buf)
            break;
    }
    close(fd);
    for (size_t off = 0, n; off < got; off += n)
        if ((n = check_response(buf + off, got - off)) == 0)
            break;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    exchange(ports[0], data, size);
    exchange(ports[1], data, size);
    return 0;
}
