/* Helpers shared by the wal tests: deterministic payloads, a replay collector, file surgery. */
#ifndef KVLAB_WAL_TEST_UTIL_H
#define KVLAB_WAL_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wal_log.h"

/* The deterministic payload of record j of batch b: length len, bytes from (b, j). */
void wt_payload(uint8_t *out, size_t len, uint64_t b, uint64_t j);
/* Length of that payload for a test (small, sometimes bigger). */
size_t wt_len(uint64_t b, uint64_t j);

/* What replay gave back: batches in order. */
typedef struct wt_batch {
    uint64_t commit_lsn;
    size_t n;
    uint8_t *types;
    uint64_t *lsns;
    uint8_t **payloads;
    uint32_t *lens;
} wt_batch;

typedef struct wt_replay {
    wt_batch *b;
    size_t n, cap;
} wt_replay;

kv_status wt_collect(void *ctx, const wal_replay_rec *recs, size_t n, uint64_t commit_lsn);
void wt_replay_free(wt_replay *r);

/* Appends batch number b (nrec records of type PUT with wt_payload) and returns its commit LSN
 * in *lsn. */
kv_status wt_append(wal_log *l, uint64_t b, size_t nrec, uint64_t *lsn);
/* Checks that replay batch i equals batch number b with nrec records (cmocka asserts). */
void wt_expect_batch(const wt_batch *got, uint64_t b, size_t nrec);

/* File helpers on real paths. */
uint64_t wt_file_size(const char *path);
void wt_flip_byte(const char *path, uint64_t off, uint8_t xor_mask);
void wt_truncate(const char *path, uint64_t size);
/* Names of the segments in dir (sorted), count in *n; free with wt_names_free. */
char **wt_segments(const char *dir, size_t *n);
void wt_names_free(char **names, size_t n);
char *wt_join(const char *dir, const char *name);
void wt_copy_file(const char *from, const char *to);

#endif
