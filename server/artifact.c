/* The artifact loader: what is in the model directory, what each file is,
 * and whether this runtime would serve it exactly. Archives are unpacked
 * into a private directory first. The diagnosis is printed the same way by
 * `smserve check` and `smserve serve`. */
#define _GNU_SOURCE
#include "smserve/artifact.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "smserve/archive.h"
#include "smserve/log.h"
#include "smserve/migrate.h"

/* A model file larger than this is refused rather than read into memory. */
#define SMS_MAX_MODEL_BYTES ((size_t)4 << 30)

/* Copies text, cut to fit. */
static void copy_text(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void diag_set(sms_diag_t *d, const char *check, const char *reason, const char *fix)
{
    copy_text(d->check, sizeof d->check, check);
    copy_text(d->reason, sizeof d->reason, reason);
    copy_text(d->fix, sizeof d->fix, fix);
}

static int read_all(const char *path, unsigned char **out, size_t *len, sms_diag_t *diag)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        char reason[300];
        snprintf(reason, sizeof reason, "cannot read the file: %s", strerror(errno));
        diag_set(diag, "io", reason, "check the file's permissions");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if ((size_t)st.st_size > SMS_MAX_MODEL_BYTES) {
        diag_set(diag, "io", "the file is larger than 4 GiB",
                 "an XGBoost model this large is not servable here; check the artifact");
        close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    unsigned char *bytes = malloc(size + 1);
    size_t got = 0;
    while (bytes && got < size) {
        ssize_t r = read(fd, bytes + got, size - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (!bytes || got != size) {
        free(bytes);
        diag_set(diag, "io", "the file could not be read in full", "check the file system");
        return -1;
    }
    bytes[size] = 0;
    *out = bytes;
    *len = size;
    return 0;
}

static sms_artifact_t *add_item(sms_artifact_set_t *set, const char *path, const char *name)
{
    sms_artifact_t *items = realloc(set->items, (set->count + 1) * sizeof *items);
    if (!items)
        return NULL;
    set->items = items;
    sms_artifact_t *a = &items[set->count++];
    memset(a, 0, sizeof *a);
    a->path = strdup(path);
    a->name = strdup(name);
    a->format = SMS_FMT_UNKNOWN;
    return a;
}

static void diagnose(sms_artifact_t *a, sms_version_t runtime, bool allow_newer)
{
    if (read_all(a->path, &a->bytes, &a->len, &a->diag) < 0)
        return;
    a->format = sms_sniff(a->bytes, a->len);
    unsigned char *migrated = NULL;
    size_t migrated_len = 0;
    sms_legacy_info_t legacy;
    int m = sms_migrate(a->format, a->bytes, a->len, runtime, &migrated, &migrated_len, &legacy,
                        a->migrated, sizeof a->migrated, &a->diag);
    if (m < 0) {
        /* What the file declares still goes into the report, where it can be read. */
        sms_diag_t unused;
        sms_compat_read(a->format, a->bytes, a->len, &a->info, &unused);
        return;
    }
    if (m == 1) {
        /* The checks read what the runtime will load; a legacy file's writer is
         * what its parameter block says (nothing before 1.0). */
        int rc =
            sms_compat_read_json(migrated, migrated_len, &a->info, &a->diag, &a->ubj, &a->ubj_len);
        if (a->format == SMS_FMT_BINARY) {
            a->info.has_version = legacy.major_version != 0;
            a->info.version =
                (sms_version_t){(int)legacy.major_version, (int)legacy.minor_version, 0};
        }
        free(a->bytes);
        a->bytes = migrated;
        a->len = migrated_len;
        if (rc < 0)
            return;
    } else if (a->format == SMS_FMT_JSON) {
        if (sms_compat_read_json(a->bytes, a->len, &a->info, &a->diag, &a->ubj, &a->ubj_len) < 0)
            return;
    } else if (sms_compat_read(a->format, a->bytes, a->len, &a->info, &a->diag) < 0) {
        return;
    }
    if (sms_compat_check(&a->info, runtime, false, &a->diag) == 0) {
        a->ok = true;
        return;
    }
    /* allow_newer downgrades only the version check: run again with it, and
     * keep the warning when nothing else fails. */
    if (allow_newer && strcmp(a->diag.check, "version") == 0) {
        sms_diag_t warning = a->diag;
        if (sms_compat_check(&a->info, runtime, true, &a->diag) == 0) {
            a->ok = true;
            a->warned = true;
            a->diag = warning;
        }
    }
}

static int is_archive_file(const char *path)
{
    unsigned char head[512];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, head, sizeof head);
    close(fd);
    if (n <= 0)
        return 0;
    sms_format_t f = sms_sniff(head, (size_t)n);
    return f == SMS_FMT_GZIP || f == SMS_FMT_TAR;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists regular, non-dot files under dir (recursing when `recurse`), sorted,
 * as malloc'd paths relative to dir. */
static int list_files(const char *dir, const char *prefix, bool recurse, char ***names,
                      size_t *count)
{
    char *full;
    if (asprintf(&full, "%s%s%s", dir, *prefix ? "/" : "", prefix) < 0)
        return -1;
    DIR *d = opendir(full);
    if (!d) {
        free(full);
        return -1;
    }
    size_t first = *count;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *rel, *path;
        if (asprintf(&rel, "%s%s%s", prefix, *prefix ? "/" : "", e->d_name) < 0)
            break;
        if (asprintf(&path, "%s/%s", dir, rel) < 0) {
            free(rel);
            break;
        }
        struct stat st;
        int is_file = lstat(path, &st) == 0 && S_ISREG(st.st_mode);
        int is_dir = lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
        free(path);
        if (is_file) {
            char **grown = realloc(*names, (*count + 1) * sizeof *grown);
            if (!grown) {
                free(rel);
                break;
            }
            *names = grown;
            (*names)[(*count)++] = rel;
        } else if (is_dir && recurse) {
            list_files(dir, rel, recurse, names, count);
            free(rel);
        } else {
            free(rel);
        }
    }
    closedir(d);
    free(full);
    if (*count > first)
        qsort(*names + first, *count - first, sizeof **names, cmp_names);
    return 0;
}

static void free_names(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Extracts an archive into the set's private directory and adds its files. */
static int add_archive(sms_artifact_set_t *set, const char *path, const char *name,
                       sms_version_t runtime, bool allow_newer)
{
    if (set->extract_dir) {
        diag_set(&set->diag, "archive", "more than one model archive in the model directory",
                 "keep one model.tar.gz, or extract it");
        return -1;
    }
    const char *tmp = getenv("TMPDIR");
    char *dir;
    if (asprintf(&dir, "%s/smserve-model.XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0)
        return -1;
    if (!mkdtemp(dir)) {
        char reason[300];
        snprintf(reason, sizeof reason, "cannot create a directory to extract %s into: %s", name,
                 strerror(errno));
        diag_set(&set->diag, "io", reason, "make TMPDIR (or /tmp) writable");
        free(dir);
        return -1;
    }
    set->extract_dir = dir;
    sms_error_t err = {0};
    if (sms_archive_extract(path, dir, sms_archive_default_limits(), &err) < 0) {
        diag_set(&set->diag, "archive", err.msg,
                 "rebuild the archive with plain files only (tar -czf model.tar.gz xgboost-model)");
        return -1;
    }
    char **names = NULL;
    size_t count = 0;
    list_files(dir, "", true, &names, &count);
    if (count == 0) {
        char reason[300];
        snprintf(reason, sizeof reason, "%s holds no model file", name);
        diag_set(&set->diag, "empty", reason,
                 "put the saved model in the archive (tar -czf model.tar.gz xgboost-model)");
    }
    for (size_t i = 0; i < count; i++) {
        char *member_path, *member_name;
        if (asprintf(&member_path, "%s/%s", dir, names[i]) < 0)
            break;
        if (asprintf(&member_name, "%s:%s", name, names[i]) < 0) {
            free(member_path);
            break;
        }
        sms_artifact_t *a = add_item(set, member_path, member_name);
        if (a)
            diagnose(a, runtime, allow_newer);
        free(member_path);
        free(member_name);
    }
    free_names(names, count);
    return count ? 0 : -1;
}

int sms_artifacts_scan(const char *path, sms_version_t runtime, bool allow_newer,
                       sms_artifact_set_t *set)
{
    memset(set, 0, sizeof *set);
    set->root = strdup(path);
    struct stat st;
    if (stat(path, &st) < 0) {
        char reason[300];
        snprintf(reason, sizeof reason, "the model path %s does not exist (%s)", path,
                 strerror(errno));
        diag_set(&set->diag, "empty", reason,
                 "mount the model directory at /opt/ml/model or set SM_MODEL_DIR");
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (is_archive_file(path)) {
            add_archive(set, path, base_name(path), runtime, allow_newer);
        } else {
            sms_artifact_t *a = add_item(set, path, base_name(path));
            if (a)
                diagnose(a, runtime, allow_newer);
        }
    } else {
        char **names = NULL;
        size_t count = 0;
        if (list_files(path, "", false, &names, &count) < 0) {
            char reason[300];
            snprintf(reason, sizeof reason, "cannot list %s: %s", path, strerror(errno));
            diag_set(&set->diag, "io", reason, "check the directory's permissions");
            return -1;
        }
        for (size_t i = 0; i < count; i++) {
            char *file;
            if (asprintf(&file, "%s/%s", path, names[i]) < 0)
                break;
            if (is_archive_file(file)) {
                add_archive(set, file, names[i], runtime, allow_newer);
            } else {
                sms_artifact_t *a = add_item(set, file, names[i]);
                if (a)
                    diagnose(a, runtime, allow_newer);
            }
            free(file);
        }
        free_names(names, count);
    }
    if (set->diag.check[0])
        return -1;
    if (set->count == 0) {
        char reason[300];
        snprintf(reason, sizeof reason, "no model file in %s", path);
        diag_set(&set->diag, "empty", reason,
                 "put the file written by booster.save_model(\"xgboost-model.json\") there, "
                 "or the model.tar.gz that holds it");
        return -1;
    }
    set->ok = true;
    for (size_t i = 0; i < set->count; i++)
        set->ok = set->ok && set->items[i].ok;
    return set->ok ? 0 : -1;
}

void sms_artifacts_free(sms_artifact_set_t *set)
{
    for (size_t i = 0; i < set->count; i++) {
        free(set->items[i].path);
        free(set->items[i].name);
        free(set->items[i].bytes);
        free(set->items[i].ubj);
    }
    free(set->items);
    if (set->extract_dir) {
        sms_remove_tree(set->extract_dir);
        free(set->extract_dir);
    }
    free(set->root);
    memset(set, 0, sizeof *set);
}

const char *sms_version_text(const sms_model_info_t *info, char *buf, size_t size)
{
    if (!info->has_version)
        return "unknown";
    snprintf(buf, size, "%d.%d.%d", info->version.major, info->version.minor, info->version.patch);
    return buf;
}

static bool has_info(const sms_artifact_t *a)
{
    return a->info.objective[0] != '\0';
}

static void log_refusal(const char *file, const char *format, const sms_model_info_t *info,
                        sms_version_t runtime, const sms_diag_t *d, const char *event,
                        const char *level)
{
    char produced[32], rt[32];
    snprintf(rt, sizeof rt, "%d.%d.%d", runtime.major, runtime.minor, runtime.patch);
    json_t *o = json_object();
    json_object_set_new(o, "event", json_string(event));
    json_object_set_new(o, "file", json_string(file));
    json_object_set_new(o, "format", json_string(format));
    json_object_set_new(
        o, "producer_version",
        json_string(info ? sms_version_text(info, produced, sizeof produced) : "unknown"));
    json_object_set_new(o, "runtime_version", json_string(rt));
    json_object_set_new(o, "check", json_string(d->check));
    json_object_set_new(o, "reason", json_string(d->reason));
    json_object_set_new(o, "fix", json_string(d->fix));
    sms_log_json(level, o);
}

void sms_artifacts_report(const sms_artifact_set_t *set, sms_version_t runtime, FILE *human)
{
    char vbuf[32];
    for (size_t i = 0; i < set->count; i++) {
        const sms_artifact_t *a = &set->items[i];
        const char *fmt = sms_format_name(a->format);
        if (a->ok) {
            fprintf(human, "%s %s: %s, XGBoost %s, %s, %s, %ld features", a->warned ? "WARN" : "OK",
                    a->name, fmt, sms_version_text(&a->info, vbuf, sizeof vbuf), a->info.booster,
                    a->info.objective, a->info.num_feature);
            if (a->info.num_class > 0)
                fprintf(human, ", %ld classes", a->info.num_class);
            if (a->migrated[0])
                fprintf(human, " (%s)", a->migrated);
            if (a->warned)
                fprintf(human, " (check %s: %s; fix: %s)", a->diag.check, a->diag.reason,
                        a->diag.fix);
            fputc('\n', human);
            if (a->warned)
                log_refusal(a->name, fmt, &a->info, runtime, &a->diag, "model_check_downgraded",
                            "warning");
        } else {
            fprintf(human, "REFUSED %s (%s, XGBoost %s): check %s: %s; fix: %s\n", a->name, fmt,
                    has_info(a) ? sms_version_text(&a->info, vbuf, sizeof vbuf) : "unknown",
                    a->diag.check, a->diag.reason, a->diag.fix);
            log_refusal(a->name, fmt, has_info(a) ? &a->info : NULL, runtime, &a->diag,
                        "model_refused", "error");
        }
    }
    if (set->diag.check[0]) {
        fprintf(human, "REFUSED %s: check %s: %s; fix: %s\n", set->root, set->diag.check,
                set->diag.reason, set->diag.fix);
        log_refusal(set->root, "directory", NULL, runtime, &set->diag, "model_refused", "error");
    }
    fflush(human);
}
