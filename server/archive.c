/* Extracts a model.tar.gz (or .tar) into a private directory. The archive is
 * untrusted: libarchive only decodes it; every member's path is validated
 * here and every file is created by this code with O_EXCL|O_NOFOLLOW under
 * directories opened without following links, so that no member can write
 * outside the destination, and caps bound what a bomb can fill. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include "smserve/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define ARCHIVE_MAX_DEPTH      64   /* path components of one member */
#define ARCHIVE_MAX_PATH       1024 /* bytes of a member path after cleaning */
#define ARCHIVE_STATUS_REFUSED 422
#define ARCHIVE_STATUS_LOCAL   500

sms_archive_limits_t sms_archive_default_limits(void)
{
    uint64_t four_gib = UINT64_C(4) << 30;
    sms_archive_limits_t l = {
        .max_total_bytes = four_gib > SIZE_MAX ? SIZE_MAX : (size_t)four_gib,
        .max_entries = 10000,
    };
    return l;
}

/* Copies a member name for a one-line message: printable ASCII as is,
 * anything else as \xNN, cut with "..." when long. */
static void printable(const char *in, char *out, size_t size)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; p && *p; p++) {
        if (o + 8 >= size) {
            snprintf(out + o, size - o, "...");
            return;
        }
        if (*p >= 0x20 && *p < 0x7f && *p != '\\')
            out[o++] = (char)*p;
        else
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", *p);
    }
    out[o] = '\0';
}

typedef struct extract {
    const char *archive_path;
    sms_error_t *err;
} extract_t;

static int refuse_member(extract_t *x, int status, const char *member, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* err->msg = "<archive>: member '<name>': <what>"; returns -1. */
static int refuse_member(extract_t *x, int status, const char *member, const char *fmt, ...)
{
    char name[160], what[320];
    printable(member ? member : "", name, sizeof name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return sms_error_set(x->err, status, "%s: member '%s': %s", x->archive_path, name, what);
}

/* Cleans a member path into `out`: strips leading "./", drops empty and "."
 * components; refuses absolute paths and "..". An empty result means the
 * archive's root. Returns NULL when fine, else why not. */
static const char *clean_path(const char *name, char *out, size_t size, size_t *depth)
{
    if (!name)
        return "has no name";
    if (name[0] == '\0')
        return "has an empty name";
    if (name[0] == '/')
        return "absolute path; members must be relative to the extraction directory";
    size_t o = 0;
    *depth = 0;
    const char *p = name;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return "path escapes the extraction directory";
        if (n > 0 && !(n == 1 && p[0] == '.')) {
            if (n > NAME_MAX)
                return "a path component is longer than NAME_MAX";
            if (o + n + 2 > size)
                return "path is too long";
            if (o)
                out[o++] = '/';
            memcpy(out + o, p, n);
            o += n;
            if (++*depth > ARCHIVE_MAX_DEPTH)
                return "path is nested too deeply";
        }
        p += n;
        if (*p == '/')
            p++;
    }
    out[o] = '\0';
    return NULL;
}

/* Opens (creating with 0700 when missing) directory `comp` under dirfd,
 * never following a link. Returns the new fd or -1 with errno. */
static int open_subdir(int dirfd, const char *comp)
{
    if (mkdirat(dirfd, comp, 0700) < 0 && errno != EEXIST)
        return -1;
    return openat(dirfd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* Walks the first `ncomp` components of `path` (modified in place and
 * restored) from root_fd, creating directories. Returns an fd the caller
 * closes (root_fd itself when ncomp is 0: not to be closed), or -1. */
static int open_dirs(extract_t *x, const char *member, int root_fd, char *path, size_t ncomp)
{
    int fd = root_fd;
    char *p = path;
    for (size_t i = 0; i < ncomp; i++) {
        char *slash = strchr(p, '/');
        if (slash)
            *slash = '\0';
        int next = open_subdir(fd, p);
        int saved = errno;
        if (slash)
            *slash = '/';
        if (fd != root_fd)
            close(fd);
        if (next < 0) {
            if (saved == ENOTDIR || saved == ELOOP || saved == EEXIST)
                return refuse_member(x, ARCHIVE_STATUS_REFUSED, member,
                                     "a file of the archive is in the way of its directory");
            return refuse_member(x, ARCHIVE_STATUS_LOCAL, member, "cannot create a directory: %s",
                                 strerror(saved));
        }
        fd = next;
        if (slash)
            p = slash + 1;
    }
    return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int extract_file(extract_t *x, struct archive *a, const char *member, int root_fd,
                        char *path, size_t depth, size_t declared, size_t *total,
                        sms_archive_limits_t limits)
{
    int dirfd = open_dirs(x, member, root_fd, path, depth - 1);
    if (dirfd < 0)
        return -1;
    const char *leaf = strrchr(path, '/');
    leaf = leaf ? leaf + 1 : path;
    int fd = openat(dirfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    int saved = errno;
    if (dirfd != root_fd)
        close(dirfd);
    if (fd < 0) {
        if (saved == EEXIST)
            return refuse_member(x, ARCHIVE_STATUS_REFUSED, member,
                                 "appears twice in the archive (or names a directory)");
        return refuse_member(x, ARCHIVE_STATUS_LOCAL, member, "cannot create the file: %s",
                             strerror(saved));
    }
    size_t written = 0;
    char buf[65536];
    for (;;) {
        la_ssize_t n = archive_read_data(a, buf, sizeof buf);
        if (n == 0)
            break;
        if (n < 0) {
            refuse_member(x, ARCHIVE_STATUS_REFUSED, member, "cannot read its data: %s",
                          archive_error_string(a) ? archive_error_string(a) : "unknown error");
            goto fail;
        }
        written += (size_t)n;
        if (written > declared) {
            refuse_member(x, ARCHIVE_STATUS_REFUSED, member,
                          "holds more than the %zu bytes its header declares", declared);
            goto fail;
        }
        if ((size_t)n > limits.max_total_bytes - *total) {
            refuse_member(x, ARCHIVE_STATUS_REFUSED, member,
                          "the archive holds more than the cap of %zu bytes",
                          limits.max_total_bytes);
            goto fail;
        }
        *total += (size_t)n;
        if (write_all(fd, buf, (size_t)n) < 0) {
            refuse_member(x, ARCHIVE_STATUS_LOCAL, member, "cannot write the file: %s",
                          strerror(errno));
            goto fail;
        }
    }
    if (close(fd) < 0)
        return refuse_member(x, ARCHIVE_STATUS_LOCAL, member, "cannot write the file: %s",
                             strerror(errno));
    return 0;
fail:
    close(fd);
    return -1;
}

static const char *type_refusal(struct archive_entry *e, char *why, size_t size)
{
    char target[160];
    const char *hard = archive_entry_hardlink(e);
    if (hard) {
        printable(hard, target, sizeof target);
        snprintf(why, size, "is a hard link (to '%s'); links could point outside", target);
        return why;
    }
    switch (archive_entry_filetype(e)) {
    case AE_IFREG:
    case AE_IFDIR:
        return NULL;
    case AE_IFLNK:
        printable(archive_entry_symlink(e), target, sizeof target);
        snprintf(why, size, "is a symbolic link (to '%s'); links could point outside", target);
        return why;
    case AE_IFCHR:
        return "is a character device; only regular files and directories are extracted";
    case AE_IFBLK:
        return "is a block device; only regular files and directories are extracted";
    case AE_IFIFO:
        return "is a FIFO; only regular files and directories are extracted";
    case AE_IFSOCK:
        return "is a socket; only regular files and directories are extracted";
    default:
        return "has an unknown type; only regular files and directories are extracted";
    }
}

static int dir_is_empty(int fd)
{
    int dup_fd = dup(fd);
    if (dup_fd < 0)
        return -1;
    DIR *d = fdopendir(dup_fd);
    if (!d) {
        close(dup_fd);
        return -1;
    }
    int empty = 1;
    struct dirent *ent;
    while ((ent = readdir(d))) {
        if (strcmp(ent->d_name, ".") != 0 && strcmp(ent->d_name, "..") != 0) {
            empty = 0;
            break;
        }
    }
    closedir(d);
    return empty;
}

int sms_archive_extract(const char *archive_path, const char *dest_dir, sms_archive_limits_t limits,
                        sms_error_t *err)
{
    extract_t x = {.archive_path = archive_path, .err = err};
    struct archive *a = NULL;
    int root_fd = -1, in_fd = -1, rc = -1;

    root_fd = open(dest_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (root_fd < 0)
        return sms_error_set(err, ARCHIVE_STATUS_LOCAL, "%s: cannot open the directory %s: %s",
                             archive_path, dest_dir, strerror(errno));
    if (dir_is_empty(root_fd) != 1) {
        sms_error_set(err, ARCHIVE_STATUS_LOCAL, "%s: the extraction directory %s is not empty",
                      archive_path, dest_dir);
        goto done;
    }
    in_fd = open(archive_path, O_RDONLY | O_CLOEXEC);
    if (in_fd < 0) {
        sms_error_set(err, ARCHIVE_STATUS_LOCAL, "%s: cannot open: %s", archive_path,
                      strerror(errno));
        goto done;
    }
    a = archive_read_new();
    if (!a) {
        sms_error_set(err, ARCHIVE_STATUS_LOCAL, "%s: out of memory", archive_path);
        goto done;
    }
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    if (archive_read_open_fd(a, in_fd, 10240) != ARCHIVE_OK) {
        sms_error_set(err, ARCHIVE_STATUS_REFUSED, "%s: not a readable tar or tar.gz archive: %s",
                      archive_path,
                      archive_error_string(a) ? archive_error_string(a) : "unknown error");
        goto done;
    }

    size_t entries = 0, total = 0;
    for (;;) {
        struct archive_entry *e;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            sms_error_set(err, ARCHIVE_STATUS_REFUSED, "%s: damaged archive after %zu members: %s",
                          archive_path, entries,
                          archive_error_string(a) ? archive_error_string(a) : "unknown error");
            goto done;
        }
        /* Without a UTF-8 locale libarchive may not convert a pax name to
         * the native one; the UTF-8 bytes are what the user wrote. */
        const char *member = archive_entry_pathname(e);
        if (!member)
            member = archive_entry_pathname_utf8(e);
        if (++entries > limits.max_entries) {
            refuse_member(&x, ARCHIVE_STATUS_REFUSED, member,
                          "the archive has more than the cap of %zu entries", limits.max_entries);
            goto done;
        }
        char path[ARCHIVE_MAX_PATH];
        size_t depth = 0;
        const char *why = clean_path(member, path, sizeof path, &depth);
        char type_why[384];
        if (!why)
            why = type_refusal(e, type_why, sizeof type_why);
        if (why) {
            refuse_member(&x, ARCHIVE_STATUS_REFUSED, member, "%s", why);
            goto done;
        }
        if (archive_entry_filetype(e) == AE_IFDIR) {
            if (depth == 0)
                continue; /* "./": the extraction directory itself */
            int fd = open_dirs(&x, member, root_fd, path, depth);
            if (fd < 0)
                goto done;
            if (fd != root_fd)
                close(fd);
            continue;
        }
        if (depth == 0) {
            refuse_member(&x, ARCHIVE_STATUS_REFUSED, member, "a file without a name");
            goto done;
        }
        la_int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
        if (size < 0 || (uint64_t)size > limits.max_total_bytes - total) {
            refuse_member(&x, ARCHIVE_STATUS_REFUSED, member,
                          "declares %lld bytes; the archive would exceed the cap of %zu bytes",
                          (long long)size, limits.max_total_bytes);
            goto done;
        }
        if (extract_file(&x, a, member, root_fd, path, depth, (size_t)size, &total, limits) < 0)
            goto done;
    }
    rc = 0;
done:
    if (a)
        archive_read_free(a);
    if (in_fd >= 0)
        close(in_fd);
    close(root_fd);
    return rc;
}

/* Removes `name` under parent_fd: unlinks a file or link, empties and
 * removes a directory. Never follows a link. */
static int remove_at(int parent_fd, const char *name, int depth)
{
    if (unlinkat(parent_fd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if ((errno != EISDIR && errno != EPERM) || depth > 256)
        return -1;
    int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -1;
    }
    /* A second pass catches entries readdir skipped while others went. */
    for (int pass = 0; pass < 2; pass++) {
        struct dirent *ent;
        while ((ent = readdir(d))) {
            if (strcmp(ent->d_name, ".") != 0 && strcmp(ent->d_name, "..") != 0)
                remove_at(dirfd(d), ent->d_name, depth + 1);
        }
        rewinddir(d);
    }
    closedir(d);
    return unlinkat(parent_fd, name, AT_REMOVEDIR);
}

int sms_remove_tree(const char *path)
{
    if (!path || !*path)
        return -1;
    return remove_at(AT_FDCWD, path, 0);
}
