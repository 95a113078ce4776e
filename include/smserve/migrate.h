/* Model migration: rewrites what an older XGBoost release wrote into bytes that
 * the runtime reads the way the writing release meant them, before the runtime
 * sees them. Legacy binary models become the JSON model XGBoost 1.7 writes
 * (smserve/legacy.h), and a gblinear model whose JSON/UBJSON records no boosted
 * rounds (every 1.0-1.3 JSON, and models re-saved from legacy binary) gets one:
 * without it the runtime (3.1+) takes the model for untrained and replaces its
 * base_score by 0.5 as a raw margin. A binary:logitraw model from 1.0-1.2 gets
 * the base_score its writer meant (1.3.1 changed how that objective reads it). */
#ifndef SMSERVE_MIGRATE_H
#define SMSERVE_MIGRATE_H

#include <stddef.h>
#include "smserve/compat.h"
#include "smserve/legacy.h"
#include "smserve/sniff.h"

/* Migrates `len` bytes of a model file of format fmt for XGBoost `runtime`
 * (named in refusals). Returns 0 when the bytes
 * can be loaded as they are; 1 when they were rewritten: *out (malloc'd JSON
 * text, caller frees) and *out_len get the new bytes, note (note_size bytes)
 * says what was done, and for a legacy binary file *legacy (may be NULL) gets
 * what the converter read; -1 when the file cannot be migrated, with diag
 * filled (check "parse" for a damaged legacy file, "format" for a legacy model
 * the runtime could not serve the same way, "base_score" for a 1.3
 * binary:logitraw model, whose margin depends on which 1.3 release wrote it). */
int sms_migrate(sms_format_t fmt, const unsigned char *bytes, size_t len, sms_version_t runtime,
                unsigned char **out, size_t *out_len, sms_legacy_info_t *legacy, char *note,
                size_t note_size, sms_diag_t *diag);

#endif
