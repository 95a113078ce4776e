/* The artifact loader: finds the model files under a model directory (or in
 * a model.tar.gz, extracted safely into a private directory), sniffs each by
 * its bytes, reads what it declares and runs the compatibility checks. The
 * result is a diagnosis per file that `smserve check` prints and `serve`
 * acts on; no XGBoost call happens here. */
#ifndef SMSERVE_ARTIFACT_H
#define SMSERVE_ARTIFACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "smserve/compat.h"
#include "smserve/sniff.h"

typedef struct sms_artifact {
    char *path; /* file on disk */
    char *name; /* what the user calls it: "xgboost-model", "model.tar.gz:xgboost-model" */
    sms_format_t format;
    sms_model_info_t info; /* valid when format is a model format and reading succeeded */
    bool ok;               /* servable by this runtime */
    bool warned;           /* ok, but a check was downgraded (allow_newer) */
    sms_diag_t diag;       /* why not ok (or the downgraded warning) */
    unsigned char *bytes;  /* whole file, kept for loading (after migration: the
                              rewritten bytes the runtime loads, see smserve/migrate.h) */
    size_t len;
    unsigned char *ubj; /* a JSON model as the UBJSON XGBoost loads the same and
                           faster (sms_compat_read_json), or NULL: load bytes */
    size_t ubj_len;
    char migrated[160]; /* what migration did, "" when the file loads as it is */
} sms_artifact_t;

typedef struct sms_artifact_set {
    char *root; /* the path scanned */
    sms_artifact_t *items;
    size_t count;
    char *extract_dir; /* private extraction dir to remove, or NULL */
    bool ok;           /* every artifact ok and at least one */
    sms_diag_t diag;   /* set-level refusal (check "empty", "archive", "io", "ensemble") */
} sms_artifact_set_t;

/* Scans `path`: a directory (every regular, non-dot file at its top; an
 * archive among them is extracted and the files inside it, at any depth,
 * replace it) or a single file (a model file or a model.tar.gz). Diagnoses
 * each file against `runtime`. Always fills set (free with
 * sms_artifacts_free); returns 0 when set->ok, else -1. */
int sms_artifacts_scan(const char *path, sms_version_t runtime, bool allow_newer,
                       sms_artifact_set_t *set);
void sms_artifacts_free(sms_artifact_set_t *set);

/* Prints the diagnosis: per artifact one human line to `human`
 * ("OK" / "WARN" / "REFUSED ... fix: ..."), and per refusal one JSON log line
 * (event model_refused: file, format, producer_version, runtime_version,
 * check, reason, fix) through sms_log_json. */
void sms_artifacts_report(const sms_artifact_set_t *set, sms_version_t runtime, FILE *human);

/* "1.7.4", or "unknown" when the file does not say. buf holds >= 32 bytes. */
const char *sms_version_text(const sms_model_info_t *info, char *buf, size_t size);

#endif
