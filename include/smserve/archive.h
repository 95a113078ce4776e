/* Safe extraction of model.tar.gz / model.tar into a private directory with
 * libarchive. Refuses (naming the member) absolute paths, ".." components,
 * symlinks and hard links (a link could point outside), device files, FIFOs,
 * sockets, and archives over the byte or entry cap. */
#ifndef SMSERVE_ARCHIVE_H
#define SMSERVE_ARCHIVE_H

#include <stddef.h>
#include "smserve/error.h"

typedef struct sms_archive_limits {
    size_t max_total_bytes; /* sum of regular file sizes, as written */
    size_t max_entries;
} sms_archive_limits_t;

/* Defaults: 4 GiB total, 10000 entries. */
sms_archive_limits_t sms_archive_default_limits(void);

/* Extracts `archive_path` into `dest_dir` (must exist and be empty; created
 * by the caller, e.g. with mkdtemp). Only regular files and directories are
 * written; directories are created as needed (mode 0700, files 0600). On
 * refusal returns -1 with err->msg like
 * "model.tar.gz: member '../etc/passwd': path escapes the extraction directory"
 * and err->status 422 (what was extracted so far stays in dest_dir; the
 * caller removes it, see sms_remove_tree). */
int sms_archive_extract(const char *archive_path, const char *dest_dir, sms_archive_limits_t limits,
                        sms_error_t *err);

/* Removes a directory tree that smserve created (does not follow symlinks).
 * 0 or -1. */
int sms_remove_tree(const char *path);

#endif
