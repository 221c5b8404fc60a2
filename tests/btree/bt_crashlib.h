/* Crash-test helpers of the btree engine: workloads over a fixed key universe, a model, a run
 * that crashes faultfs at operation N, and the docs/design.md section 3 oracle (the recovered state
 * equals the model after some prefix of the commits in [lo, acknowledged + in-flight]).
 *
 * Keys share an 890-byte prefix so that separators stay long: with 4 KiB pages a leaf holds 2
 * to 4 cells and an internal page 2 to 4 separators, so 60 keys reach height 3. */
#ifndef KVLAB_BT_CRASHLIB_H
#define KVLAB_BT_CRASHLIB_H

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bt_testlib.h"
#include "coding.h"
#include "faultfs.h"

#define NK      60
#define KPREFIX 890
#define MAXOPS  256

typedef struct wop {
    int n; /* 0: kv_sync; 1: put or delete; >1: batch */
    unsigned key[3];
    unsigned ver[3]; /* 0 = delete */
} wop;

typedef struct workload {
    wop ops[MAXOPS];
    size_t n;
    unsigned base[NK]; /* versions present before the workload (0 = absent) */
} workload;

static inline size_t ck_key(uint8_t *buf, unsigned i)
{
    memset(buf, 'p', KPREFIX);
    return KPREFIX + (size_t)snprintf((char *)buf + KPREFIX, 16, "k%08u", i);
}

/* Values: 4-byte version, then a pattern; every third version is 3000 bytes (overflow pages). */
static inline size_t ck_vlen(unsigned i, unsigned ver)
{
    return ver % 3 == 0 ? 3000 : 8 + (i + ver) % 90;
}

static inline void ck_val(uint8_t *buf, unsigned i, unsigned ver)
{
    size_t n = ck_vlen(i, ver);
    kv_put_u32(buf, ver);
    for (size_t j = 4; j < n; j++)
        buf[j] = (uint8_t)(i * 13 + ver * 5 + j);
}

/* Applies op to a model. */
static inline void ck_model_apply(unsigned *m, const wop *op)
{
    for (int j = 0; j < op->n; j++)
        m[op->key[j]] = op->ver[j];
}

/* Runs op on db. */
static inline kv_status ck_run_op(kv_db *db, const wop *op)
{
    uint8_t k[1024], v[4096];
    if (op->n == 0)
        return kv_sync(db);
    if (op->n == 1) {
        size_t kl = ck_key(k, op->key[0]);
        if (!op->ver[0])
            return kv_delete(db, k, kl);
        ck_val(v, op->key[0], op->ver[0]);
        return kv_put(db, k, kl, v, ck_vlen(op->key[0], op->ver[0]));
    }
    kv_batch *b = kv_batch_new();
    for (int j = 0; j < op->n; j++) {
        size_t kl = ck_key(k, op->key[j]);
        if (op->ver[j]) {
            ck_val(v, op->key[j], op->ver[j]);
            assert_int_equal(kv_batch_put(b, k, kl, v, ck_vlen(op->key[j], op->ver[j])), KV_OK);
        } else {
            assert_int_equal(kv_batch_delete(b, k, kl), KV_OK);
        }
    }
    kv_status s = kv_write(db, b);
    kv_batch_free(b);
    return s;
}

/* Reads db into got[] (versions), failing on any key or value that was never written. */
static inline void ck_read_state(kv_db *db, unsigned *got)
{
    memset(got, 0, NK * sizeof *got);
    kv_iter *it;
    assert_int_equal(kv_iter_new(db, &it), KV_OK);
    uint8_t k[1024], v[4096];
    for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *gk = kv_iter_key(it, &kl);
        assert_true(kl == KPREFIX + 9);
        unsigned i = 0;
        for (int d = 0; d < 8; d++)
            i = i * 10 + (unsigned)(gk[KPREFIX + 1 + d] - '0');
        assert_true(i < NK);
        assert_int_equal(ck_key(k, i), kl);
        assert_memory_equal(gk, k, kl);
        const uint8_t *gv = kv_iter_value(it, &vl);
        assert_true(vl >= 4);
        unsigned ver = kv_get_u32(gv);
        assert_int_equal(vl, ck_vlen(i, ver));
        ck_val(v, i, ver);
        if (memcmp(gv, v, vl))
            fail_msg("key %u: value of version %u is garbled (never written)", i, ver);
        got[i] = ver;
    }
    assert_int_equal(kv_iter_status(it), KV_OK);
    kv_iter_free(it);
}

/* Asserts that got equals the model after k commits for some k in [lo, hi]. */
static inline void ck_assert_prefix(const workload *w, const unsigned *got, size_t lo, size_t hi,
                                    const char *what)
{
    unsigned m[NK];
    memcpy(m, w->base, sizeof m);
    for (size_t k = 0; k <= hi && k <= w->n; k++) {
        if (k >= lo && !memcmp(m, got, sizeof m))
            return;
        if (k < w->n)
            ck_model_apply(m, &w->ops[k]);
    }
    fail_msg("%s: recovered state is no prefix of the commits in [%zu, %zu]", what, lo, hi);
}

static inline void ck_copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb");
    if (!a)
        return;
    FILE *b = fopen(to, "wb");
    assert_non_null(b);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0)
        assert_int_equal(fwrite(buf, 1, n, b), n);
    fclose(a);
    assert_int_equal(fsync(fileno(b)), 0);
    fclose(b);
}

/* A scratch world: root/db (the database) and root/scratch (faultfs). */
typedef struct ck_world {
    char *root;
    char db[512], scratch[512];
} ck_world;

static inline void ck_world_new(ck_world *w, const char *base_dir)
{
    w->root = tu_mkdtemp("btree-crash");
    snprintf(w->db, sizeof w->db, "%s/db", w->root);
    snprintf(w->scratch, sizeof w->scratch, "%s/scratch", w->root);
    assert_int_equal(mkdir(w->db, 0755), 0);
    if (base_dir) {
        char a[600], b[600];
        const char *files[] = {"KVLAB.ID", "btree.db", "btree.wal"};
        for (int i = 0; i < 3; i++) {
            snprintf(a, sizeof a, "%s/%s", base_dir, files[i]);
            snprintf(b, sizeof b, "%s/%s", w->db, files[i]);
            ck_copy_file(a, b);
        }
    }
}

static inline void ck_world_free(ck_world *w)
{
    tu_rmtree(w->root);
    free(w->root);
}

/* The background writer is off unless a test asks for it: a thread's I/O would make the
 * numbering of faultfs operations, hence crash points, differ from run to run. */
#define CK_OPTS "page_size=4096", "checkpoint_bytes=64K", "bgwriter=0"

/* The buffer pool's size for ck_crash_run and ck_verify (0: the engine's default). A small pool
 * (64 KiB: 16 frames) makes the writer write dirty pages back between checkpoints (steal). */
static uint64_t ck_cache = 0;
/* The log size that triggers a checkpoint in ck_crash_run. */
static const char *ck_checkpoint = "checkpoint_bytes=64K";
/* The background writer in ck_crash_run: off, or "bgwriter=2" (its work inline on the writer's
 * thread, at the same points of every run). */
static const char *ck_bgwriter = "bgwriter=0";
/* The percent of checkpoint_bytes from which it writes pages back in ck_crash_run. */
static const char *ck_bgwriter_start = "bgwriter_start=90";

/* Outcome of one crash run. */
typedef struct ck_run {
    bool reached; /* the crash point was reached */
    size_t acked; /* commits acknowledged before the crash */
    size_t lo;    /* the smallest prefix the mode promises */
    uint64_t ops; /* faultfs operations counted (when not reached) */
} ck_run;

/* Opens w->db on a fresh faultfs armed to crash at operation `at` (0: never), runs the
 * workload, and (when the crash point was reached) applies the power-loss model. */
static inline ck_run ck_crash_run(ck_world *w, const char *mode, const workload *wl, uint64_t at,
                                  kv_crash_policy policy, uint64_t seed)
{
    ck_run r = {false, 0, 0, 0};
    kv_fs *fs = kv_faultfs_new(w->scratch);
    assert_non_null(fs);
    kv_faultfs_set_crash_at(fs, at);
    kv_db *db = NULL;
    kv_status s = bt_open_opts(w->db, mode, fs, ck_cache, &db, "page_size=4096", ck_checkpoint,
                               ck_bgwriter, ck_bgwriter_start, NULL);
    bool sync = !strcmp(mode, "sync");
    bool keep_ok = policy == KV_CRASH_KEEP && strcmp(mode, "none");
    for (size_t i = 0; s == KV_OK && i < wl->n; i++) {
        s = ck_run_op(db, &wl->ops[i]);
        if (s == KV_OK) {
            r.acked++;
            if (wl->ops[i].n == 0 || sync || keep_ok)
                r.lo = r.acked;
        }
    }
    bool closed = false;
    if (!kv_faultfs_crashed(fs)) {
        /* Every commit ran; the crash point may still lie in kv_close (its checkpoint). */
        if (s != KV_OK)
            fail_msg("workload failed without a crash: %s", kv_errmsg());
        s = kv_close(db);
        closed = true;
        if (s != KV_OK && !kv_faultfs_crashed(fs))
            fail_msg("close failed without a crash: %s", kv_errmsg());
        if (s == KV_OK && !kv_faultfs_crashed(fs))
            r.lo = r.acked;
    }
    r.reached = kv_faultfs_crashed(fs);
    if (r.reached) {
        assert_int_equal(kv_faultfs_crash(fs, policy, seed), KV_OK);
        if (!closed)
            kv_close(db); /* fails: the fs is dead; frees the handle */
    } else {
        r.ops = kv_faultfs_ops(fs);
    }
    kv_fs_destroy(fs);
    return r;
}

/* Reopens w->db with posix after a crash run and checks recovery, kv_check and the state. */
static inline void ck_verify(ck_world *w, const workload *wl, const ck_run *r, const char *what)
{
    kv_db *db;
    kv_status s = bt_open_opts(w->db, "os", NULL, ck_cache, &db, CK_OPTS, NULL);
    if (s != KV_OK)
        fail_msg("%s: recovery failed: %s", what, kv_errmsg());
    bt_assert_check(db);
    unsigned got[NK];
    ck_read_state(db, got);
    size_t hi = r->acked + (r->reached ? 1 : 0);
    ck_assert_prefix(wl, got, r->lo, hi, what);
    assert_int_equal(kv_close(db), KV_OK);
}

/* Builds the base directory holding all NK keys at version 1 (height >= 3). */
static inline char *ck_make_base(workload *wl)
{
    char *dir = tu_mkdtemp("btree-base");
    kv_db *db;
    assert_int_equal(bt_open_opts(dir, "os", NULL, 0, &db, CK_OPTS, NULL), KV_OK);
    for (unsigned i = 0; i < NK; i++) {
        wop op = {1, {i}, {1}};
        assert_int_equal(ck_run_op(db, &op), KV_OK);
        wl->base[i] = 1;
    }
    assert_true(bt_stat(db, "height") >= 3);
    assert_int_equal(kv_close(db), KV_OK);
    return dir;
}

#endif
