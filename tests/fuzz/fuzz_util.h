/* fuzz_util.h: helpers shared by the per-decoder libFuzzer targets (tests only).
 *
 * Each target owns one private temporary directory (under $KVLAB_FUZZ_TMP, default /tmp),
 * created on first use and removed at exit. Targets write the fuzzer's bytes into a file there
 * and open it with the engine's own reader, exactly as the engine reads it from disk. */
#ifndef KVLAB_FUZZ_UTIL_H
#define KVLAB_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv_engine.h"

/* The target's private root directory (created on first call; aborts on failure). */
const char *fz_root(void);
/* malloc'd printf; aborts when out of memory. */
char *fz_strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Writes n bytes to path (created or truncated). Aborts on failure. */
void fz_write(const char *path, const void *data, size_t n);
/* Reads the whole file at path into a malloc'd buffer (*n bytes). NULL when missing. */
uint8_t *fz_read(const char *path, size_t *n);
/* Removes dir and everything below (no error when missing). */
void fz_rmtree(const char *dir);
/* Makes an empty directory dir (removing an older one first). Aborts on failure. */
void fz_fresh_dir(const char *dir);
/* Copies every regular file of src into dst (made fresh first), except KVLAB.LOCK. */
void fz_copy_dir(const char *src, const char *dst);
/* The greatest name (strcmp order: the newest of zero-padded numbered files) among the entries
 * of dir that start with prefix and end with suffix (malloc'd), or NULL. */
char *fz_find(const char *dir, const char *prefix, const char *suffix);
/* Aborts with a message and kv_errmsg(). */
void fz_die(const char *what) __attribute__((noreturn));
/* Opens engine e on dir (create_if_missing = false unless create), runs kv_check and reads every
 * key with an iterator and kv_get. Returns the open status. Aborts when the open returns
 * something other than KV_OK, KV_CORRUPTION or KV_IO (a damaged file must give one of those). */
kv_status fz_open_and_read(const kv_engine *e, const char *dir, bool create);

/* A template directory pair of one engine (fuzz_templates.h) and a scratch directory. */
typedef struct fz_tmpl {
    const kv_engine *e;
    char *closed, *crashed, *work;
} fz_tmpl;
/* Makes the template of e under fz_root() on first use (t zeroed before). */
void fz_tmpl_init(fz_tmpl *t, const kv_engine *e);
/* Copies the template src (t->closed or t->crashed) to t->work, replaces the file `name` there
 * with data (size bytes) and runs fz_open_and_read on it. Returns the open status. */
kv_status fz_tmpl_run(fz_tmpl *t, const char *src, const char *name, const uint8_t *data,
                      size_t size);

/* A CRC fix-up of fuzz_seal.h: rewrites buf in place, returns whether it changed it. */
typedef bool (*fz_seal_fn)(uint8_t *buf, size_t n);
/* fz_tmpl_run with the raw input, then (when seal changes a copy of it) with the sealed copy. */
void fz_tmpl_run_sealed(fz_tmpl *t, const char *src, const char *name, const uint8_t *data,
                        size_t size, fz_seal_fn seal);

#endif
