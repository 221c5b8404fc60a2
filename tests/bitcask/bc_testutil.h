/* Helpers for the bitcask tests: opening with options, listing data and hint files, flipping
 * bytes in files. */
#ifndef KVLAB_BC_TESTUTIL_H
#define KVLAB_BC_TESTUTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"

/* Opens dir with bitcask, durability d, fs (NULL = posix) and "key=value" options ending in
 * NULL. Returns the status; *db on success. */
static inline kv_status bt_open(const char *dir, kv_durability_kind d, kv_fs *fs, kv_db **db, ...)
{
    kv_options o;
    kv_options_init(&o);
    o.durability.kind = d;
    o.durability.interval_ms = 5;
    o.fs = fs;
    va_list ap;
    va_start(ap, db);
    const char *kv;
    while ((kv = va_arg(ap, const char *)))
        kv_options_set(&o, kv);
    va_end(ap);
    kv_status s = kv_open("bitcask", dir, &o, db);
    kv_options_free(&o);
    return s;
}

/* Opens dir with bitcask read-only (kv_options.read_only), no extra options. */
static inline kv_status bt_open_ro(const char *dir, kv_db **db)
{
    kv_options o;
    kv_options_init(&o);
    o.read_only = true;
    return kv_open("bitcask", dir, &o, db);
}

/* The stat counter name of s, or UINT64_MAX. */
static inline uint64_t bt_stat(kv_db *db, const char *name)
{
    kv_stats st;
    if (kv_stats_get(db, &st) != KV_OK)
        return UINT64_MAX;
    for (size_t i = 0; i < st.n_extra; i++)
        if (!strcmp(st.extra[i].name, name))
            return st.extra[i].value;
    return UINT64_MAX;
}

/* Asserts (cmocka) that kv_get of the kl-byte key k returns exactly the vl bytes at v, or
 * KV_NOT_FOUND when v is NULL. */
void bt_expect_get(kv_db *db, const void *k, size_t kl, const void *v, size_t vl);

/* Asserts (cmocka) that db holds exactly a model: key(i) has value val(i, ver[i]) for i < n
 * (absent when ver[i] < 0), keys live keys and live bytes in all, and kv_check passes. key and
 * val write at most 64 and 256 bytes into their buffer and return the length. */
void bt_expect_model(kv_db *db, int n, const int *ver, size_t (*key)(int, char *),
                     size_t (*val)(int, int, char *), uint64_t keys, uint64_t live);

/* Path of the n-th (0-based, in name order) file of dir whose name ends in suffix, or NULL
 * (malloc'd). count receives how many there are. */
char *bt_nth_file(const char *dir, const char *suffix, size_t n, size_t *count);

/* XORs byte off of path with mask. Returns 0 or -1. */
int bt_flip(const char *path, uint64_t off, uint8_t mask);

/* Size of path in bytes, or -1. */
long long bt_size(const char *path);

/* Writes len bytes of data to path (creating or truncating it). Returns 0 or -1. */
int bt_write_file(const char *path, const void *data, size_t len);

#endif
