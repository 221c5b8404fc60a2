/* crash_oracle.h: the crash checker's workloads, self-verifying values and the prefix oracle.
 *
 * A workload is a seeded sequence of commits (a put, a delete, an atomic batch of 1 to 10 puts
 * and deletes, or a kv_sync). Every put has a unique version number (its index in the op array
 * plus one), and its value is derived from (key, version), so a recovered value tells which
 * write it came from, and a torn or invented value fails to verify (a "phantom").
 *
 * The oracle answers: is a recovered state S equal to the result of the first p commits for
 * some p in [lo, hi]? It replays the model once, keeping the number of keys on which model(p)
 * and S differ, so the whole check is O(ops + keys) (DDIA ch. 7's "prefix of the log" view of
 * durability; the Bitcask, LevelDB and SQLite logs all recover a prefix). */
#ifndef KVLAB_CRASH_ORACLE_H
#define KVLAB_CRASH_ORACLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kv.h"

typedef enum cw_kind { CW_PUT = 1, CW_DELETE, CW_BATCH, CW_SYNC } cw_kind;

/* One put or delete. version: unique id of a put (op index + 1), 0 for a delete. */
typedef struct cw_op {
    kv_op_type type;
    uint32_t key;
    uint64_t version;
} cw_op;

/* One commit: ops[first, first + n) of the workload (n = 0 for a sync). */
typedef struct cw_commit {
    cw_kind kind;
    uint32_t first;
    uint32_t n;
} cw_commit;

typedef struct crash_workload {
    cw_commit *commits;
    size_t ncommits;
    cw_op *ops;
    size_t nops;
    uint32_t keys;      /* distinct keys: key i is "k%07u" */
    uint32_t value_max; /* values are 12 + (0..value_max) bytes */
} crash_workload;

/* Builds workload `kind` ("puts", "mixed", "batches") of ncommits commits over `keys` keys with
 * a kv_sync chance of sync_permille/1000 per commit, from seed. Errors: KV_INVALID (unknown
 * kind, keys 0 or above 100,000, ncommits 0 or above 10,000,000), KV_NOMEM (out of memory).
 * Free with crash_workload_free. */
kv_status crash_workload_make(const char *kind, size_t ncommits, uint32_t keys, uint32_t value_max,
                              uint32_t sync_permille, uint64_t seed, crash_workload *w);
void crash_workload_free(crash_workload *w);

/* The key text of key index k into buf (at least 16 bytes); returns its length (8 bytes). */
size_t crash_key(uint32_t k, char *buf);
/* Parses a key written by crash_key; false when it is not one of the workload's w->keys. */
bool crash_key_parse(const void *key, size_t klen, uint32_t keys, uint32_t *k);

/* Length in bytes of the value of (key, version) (12 to 12 + value_max). */
size_t crash_value_len(uint32_t key, uint64_t version, uint32_t value_max);
/* Writes the value of (key, version) into buf (crash_value_len bytes). */
void crash_value_fill(uint32_t key, uint64_t version, uint32_t value_max, uint8_t *buf);
/* The version a value encodes when it is exactly the value of (key, that version) and that
 * version is a put of key in w; 0 otherwise (a phantom or torn value). */
uint64_t crash_value_verify(const crash_workload *w, uint32_t key, const void *v, size_t vlen);

/* A state read back from an engine: ver[k] = version present for key k, 0 when absent. */
typedef struct crash_state {
    uint64_t *ver; /* w->keys entries */
    uint32_t keys;
    uint64_t phantoms;     /* values that failed verification, keys outside the workload */
    uint64_t get_mismatch; /* keys where kv_get and the iterator disagree */
    char problem[256];     /* the first phantom or disagreement */
} crash_state;

/* Allocates an empty state for w. Errors: KV_NOMEM (out of memory). */
kv_status crash_state_init(crash_state *s, const crash_workload *w);
void crash_state_free(crash_state *s);
/* Reads the whole state of db (iterator, plus kv_get of every workload key). Phantoms and
 * get/iterator disagreements are counted in *s. Errors: the iterator's or kv_get's status
 * (other than KV_NOT_FOUND) with its message. */
kv_status crash_state_read(kv_db *db, const crash_workload *w, crash_state *s);

typedef enum crash_verdict_kind {
    CV_OK = 0,     /* the state is a legal prefix */
    CV_LOST,       /* a prefix, but shorter than the mode allows: acknowledged writes lost */
    CV_HOLE,       /* no prefix at all: a later write survived an earlier lost one */
    CV_TORN_BATCH, /* a prefix except for part of one batch */
    CV_PHANTOM,    /* a value (or key) that was never written */
} crash_verdict_kind;

typedef struct crash_verdict {
    crash_verdict_kind kind;
    size_t prefix;         /* the longest legal prefix (commits) found; for CV_LOST the longest
                              prefix equal to the state; otherwise the closest one */
    uint64_t acked_writes; /* state-changing commits among the first `acked` */
    uint64_t lost_writes;  /* state-changing acknowledged commits after `prefix` */
    size_t batch;          /* CV_TORN_BATCH: index of the torn batch commit */
    char msg[320];
} crash_verdict;

/* Judges state s: acked commits were acknowledged (commits [0, acked)), commit `acked` was in
 * flight when inflight is true; the mode demands at least lo commits (lo <= acked). Legal:
 * s equals model(p) for some p in [lo, acked + inflight]. */
void crash_oracle_judge(const crash_workload *w, const crash_state *s, size_t acked, bool inflight,
                        size_t lo, crash_verdict *v);

/* Prints (at most max of) the keys where state s differs from the first p commits, naming the
 * commit each version came from: the detail a student needs to see the hole or the loss. */
void crash_oracle_diff(const crash_workload *w, const crash_state *s, size_t p, FILE *out,
                       size_t max);

/* Name of a verdict kind ("ok", "lost", "hole", "torn batch", "phantom"). */
const char *crash_verdict_name(crash_verdict_kind k);

/* Runs commit i of w on db (a kv_sync for CW_SYNC). Returns the engine's status. */
kv_status crash_workload_apply(kv_db *db, const crash_workload *w, size_t i, kv_batch *scratch);

#endif
