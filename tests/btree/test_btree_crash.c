/* Crash tests of the btree engine on faultfs (common/faultfs.h): a crash at every operation of
 * inserts that split up to height 3, of deletes that merge back to height 1, and of the
 * checkpoints inside them, in every durability mode; each recovery is followed by kv_check and
 * compared with docs/design.md section 3 (a prefix of the commits; nothing acknowledged lost in
 * sync). Plus the named regressions and a crash during recovery.
 *
 * The policy of the power loss rotates with the crash point (lose, random, torn, keep,
 * torn-bytes) and the seed is the crash point, so a failure names what to replay. KVLAB_LONG=1
 * runs every crash point under every policy. */
#include <errno.h>

#include "bt_crashlib.h"

#include "btree_int.h"
#include "reclog.h"

static bool longrun;

/* Inserts: all NK keys in a shuffled order, with overwrites, batches and one kv_sync. */
static void gen_inserts(workload *w, uint64_t seed)
{
    memset(w, 0, sizeof *w);
    tu_rng r = {seed};
    unsigned order[NK], ver[NK] = {0};
    for (unsigned i = 0; i < NK; i++)
        order[i] = i;
    for (unsigned i = NK - 1; i > 0; i--) {
        unsigned j = (unsigned)tu_below(&r, i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    unsigned next = 0;
    while (next < NK) {
        wop *op = &w->ops[w->n++];
        if (w->n == 12) {
            op->n = 0; /* kv_sync */
            continue;
        }
        op->n = w->n % 7 == 0 ? 3 : 1;
        for (int j = 0; j < op->n; j++) {
            unsigned k = next < NK && (j == 0 || tu_below(&r, 2)) ? order[next++]
                                                                  : order[tu_below(&r, next)];
            op->key[j] = k;
            op->ver[j] = ++ver[k];
        }
    }
}

/* Deletes from the base state (all keys at version 1) down to 2 keys, with batches that also
 * overwrite a survivor. */
static void gen_deletes(workload *w, uint64_t seed)
{
    unsigned base[NK];
    memcpy(base, w->base, sizeof base);
    memset(w, 0, sizeof *w);
    memcpy(w->base, base, sizeof base);
    tu_rng r = {seed};
    unsigned order[NK];
    for (unsigned i = 0; i < NK; i++)
        order[i] = i;
    for (unsigned i = NK - 1; i > 0; i--) {
        unsigned j = (unsigned)tu_below(&r, i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    unsigned next = 0, survivor_ver = 1;
    while (next < NK - 2) {
        wop *op = &w->ops[w->n++];
        if (w->n == 10) {
            op->n = 0;
            continue;
        }
        if (w->n % 6 == 0 && next + 2 < NK - 2) {
            op->n = 3;
            op->key[0] = order[next++], op->ver[0] = 0;
            op->key[1] = order[next++], op->ver[1] = 0;
            op->key[2] = order[NK - 1], op->ver[2] = ++survivor_ver;
        } else {
            op->n = 1;
            op->key[0] = order[next++], op->ver[0] = 0;
        }
    }
}

#define NPOL 5
static kv_crash_policy policy_for(uint64_t n)
{
    static const kv_crash_policy p[NPOL] = {KV_CRASH_LOSE, KV_CRASH_RANDOM, KV_CRASH_TORN,
                                            KV_CRASH_KEEP, KV_CRASH_TORN_BYTES};
    return p[n % NPOL];
}

/* Crashes at every operation of the workload (from base_dir or empty) in one mode. */
static void sweep(const char *mode, const workload *wl, const char *base_dir, uint64_t *points)
{
    int npol = longrun ? NPOL : 1;
    for (uint64_t at = 1;; at++) {
        bool reached = false;
        for (int pi = 0; pi < npol; pi++) {
            kv_crash_policy pol = longrun ? policy_for((uint64_t)pi) : policy_for(at);
            ck_world w;
            ck_world_new(&w, base_dir);
            ck_run r = ck_crash_run(&w, mode, wl, at, pol, at);
            char what[160];
            snprintf(what, sizeof what, "mode %s, crash at operation %llu, policy %s", mode,
                     (unsigned long long)at, kv_crash_policy_name(pol));
            if (r.reached)
                ck_verify(&w, wl, &r, what);
            reached |= r.reached;
            ck_world_free(&w);
            if (r.reached)
                (*points)++;
        }
        if (!reached)
            return;
    }
}

static const char *const modes[] = {"none", "os", "interval:1000", "sync"};

static void test_crash_every_op_inserts_to_height_3(void **state)
{
    (void)state;
    workload *wl = calloc(1, sizeof *wl);
    gen_inserts(wl, tu_seed(3));
    /* Without a crash the workload reaches height 3. */
    ck_world w;
    ck_world_new(&w, NULL);
    ck_run r = ck_crash_run(&w, "os", wl, 0, KV_CRASH_KEEP, 0);
    assert_false(r.reached);
    kv_db *db;
    assert_int_equal(bt_open_opts(w.db, "os", NULL, 0, &db, CK_OPTS, NULL), KV_OK);
    assert_true(bt_stat(db, "height") >= 3);
    assert_int_equal(kv_close(db), KV_OK);
    ck_world_free(&w);
    for (size_t m = 0; m < 4; m++) {
        uint64_t points = 0;
        sweep(modes[m], wl, NULL, &points);
        fprintf(stderr, "inserts, mode %s: %llu crash points recovered and checked\n", modes[m],
                (unsigned long long)points);
        assert_true(points > 10 || !strcmp(modes[m], "none"));
    }
    free(wl);
}

static void test_crash_every_op_deletes_to_height_1(void **state)
{
    (void)state;
    workload *wl = calloc(1, sizeof *wl);
    char *base = ck_make_base(wl);
    gen_deletes(wl, tu_seed(5));
    ck_world w;
    ck_world_new(&w, base);
    ck_run r = ck_crash_run(&w, "os", wl, 0, KV_CRASH_KEEP, 0);
    assert_false(r.reached);
    kv_db *db;
    assert_int_equal(bt_open_opts(w.db, "os", NULL, 0, &db, CK_OPTS, NULL), KV_OK);
    assert_int_equal(bt_stat(db, "height"), 1);
    assert_true(bt_stat(db, "free_pages") > 0);
    bt_assert_check(db);
    assert_int_equal(kv_close(db), KV_OK);
    ck_world_free(&w);
    for (size_t m = 0; m < 4; m++) {
        uint64_t points = 0;
        sweep(modes[m], wl, base, &points);
        fprintf(stderr, "deletes, mode %s: %llu crash points recovered and checked\n", modes[m],
                (unsigned long long)points);
        assert_true(points > 10 || !strcmp(modes[m], "none"));
    }
    tu_rmtree(base);
    free(base);
    free(wl);
}

/* A put that splits, taking pages from the free list and from the end of the file, then the
 * checkpoint of kv_close: a crash at every operation in between, under every policy and several
 * seeds, must never leak a page (allocated in the meta page but in no tree) nor hand one out
 * twice (in the tree and on the free list): allocation (meta page) and page images are one log
 * group, and the checkpoint writes data pages only after the log is durable. */
static void test_crash_between_page_allocation_and_page_write(void **state)
{
    (void)state;
    workload *wl = calloc(1, sizeof *wl);
    char *base = ck_make_base(wl);
    /* Free some pages first (in the base), so that the splits below reuse them. */
    {
        kv_db *db;
        assert_int_equal(bt_open_opts(base, "os", NULL, 0, &db, CK_OPTS, NULL), KV_OK);
        for (unsigned i = 0; i < NK; i += 3) {
            wop op = {1, {i}, {0}};
            assert_int_equal(ck_run_op(db, &op), KV_OK);
            wl->base[i] = 0;
        }
        assert_true(bt_stat(db, "free_pages") > 0);
        assert_int_equal(kv_close(db), KV_OK);
    }
    /* Re-insert them with big (overflow) values: splits and overflow chains allocate. */
    for (unsigned i = 0; i < NK; i += 3) {
        wop *op = &wl->ops[wl->n++];
        op->n = 1, op->key[0] = i, op->ver[0] = 3;
    }
    uint64_t points = 0;
    for (uint64_t at = 1;; at++) {
        bool reached = false;
        for (int pi = 0; pi < NPOL; pi++) {
            ck_world w;
            ck_world_new(&w, base);
            kv_crash_policy pol = policy_for((uint64_t)pi);
            ck_run r = ck_crash_run(&w, "os", wl, at, pol, at * 4 + (uint64_t)pi);
            char what[160];
            snprintf(what, sizeof what, "allocation: crash at %llu, policy %s",
                     (unsigned long long)at, kv_crash_policy_name(pol));
            if (r.reached) {
                ck_verify(&w, wl, &r, what);
                points++;
            }
            reached |= r.reached;
            ck_world_free(&w);
        }
        if (!reached)
            break;
    }
    fprintf(stderr, "allocation: %llu crash points checked (no leak, no double allocation)\n",
            (unsigned long long)points);
    assert_true(points > 20);
    tu_rmtree(base);
    free(base);
    free(wl);
}

/* The log's current header (the valid slot of the highest generation) with POSIX; false when
 * there is none. */
static bool log_header(const char *dir, uint8_t *slot)
{
    char p[600];
    snprintf(p, sizeof p, "%s/btree.wal", dir);
    FILE *f = fopen(p, "rb");
    uint8_t h[BT_LOG_HDR] = {0};
    if (!f)
        return false;
    size_t n = fread(h, 1, sizeof h, f);
    fclose(f);
    bool found = false;
    for (size_t off = 0; off <= BT_LOG_SLOT1 && n >= off + BT_LOG_SLOT; off += BT_LOG_SLOT1) {
        const uint8_t *s = h + off;
        if (!memcmp(s, BT_LOG_MAGIC, 8) && kv_get_u32(s + 60) == kv_crc32(s, 60) &&
            (!found || kv_get_u64(s + 16) > kv_get_u64(slot + 16))) {
            memcpy(slot, s, BT_LOG_SLOT);
            found = true;
        }
    }
    return found;
}

/* The log's current generation (0 when it has no valid header). */
static uint64_t log_generation(const char *dir)
{
    uint8_t slot[BT_LOG_SLOT];
    return log_header(dir, slot) ? kv_get_u64(slot + 16) : 0;
}

static kv_status last_commit_visit(void *ctx, const kv_reclog_rec *r)
{
    if (r->type == BT_REC_COMMIT && r->len == 12)
        *(uint64_t *)ctx = kv_get_u64(r->payload);
    return KV_OK;
}

/* Scans the log with POSIX as recovery does: the LSN of the last commit record of the valid
 * prefix of the current generation, or 0. */
static uint64_t log_last_commit(const char *dir)
{
    uint8_t slot[BT_LOG_SLOT];
    char p[600];
    snprintf(p, sizeof p, "%s/btree.wal", dir);
    FILE *f = fopen(p, "rb");
    if (!f || !log_header(dir, slot)) {
        if (f)
            fclose(f);
        return 0;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *d = malloc((size_t)size + 1);
    assert_non_null(d);
    assert_int_equal(fread(d, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    uint64_t last = 0;
    kv_reclog_result res;
    kv_reclog_scan("btree.wal", d, (uint64_t)size, BT_LOG_HDR,
                   bt_log_seed(kv_get_u64(slot + 24), kv_get_u64(slot + 16)), last_commit_visit,
                   &last, &res);
    free(d);
    return last;
}

/* Reads page pgno of the data file with POSIX; false when short. */
static bool read_page(const char *dir, uint32_t pgno, uint8_t *buf)
{
    char p[600];
    snprintf(p, sizeof p, "%s/btree.db", dir);
    FILE *f = fopen(p, "rb");
    if (!f)
        return false;
    bool ok = fseek(f, (long)pgno * 4096, SEEK_SET) == 0 && fread(buf, 1, 4096, f) == 4096;
    fclose(f);
    return ok;
}

/* The workload of the two checkpoint regressions: overwrites and inserts on the base. */
static void gen_checkpoint_work(workload *w)
{
    for (unsigned i = 0; i < 12; i++) {
        wop *op = &w->ops[w->n++];
        op->n = 1, op->key[0] = (i * 5) % NK, op->ver[0] = 2 + (i % 2);
    }
}

/* The operations of the final checkpoint (kv_close) are, from the end: truncate(log),
 * fdatasync(log), pwrite(log header), fdatasync(data), pwrite(data pages...). */
static uint64_t close_ops(const char *base, const workload *wl)
{
    ck_world w;
    ck_world_new(&w, base);
    ck_run r = ck_crash_run(&w, "os", wl, 0, KV_CRASH_KEEP, 0);
    assert_false(r.reached);
    ck_world_free(&w);
    return r.ops;
}

/* Crash after the data file's fdatasync but before (or in the middle of) the log reset: the log
 * still holds every group, the data file already holds them too; replaying is idempotent and a
 * half-done reset (new header, old records behind it) replays nothing stale. */
static void test_crash_between_data_fsync_and_log_reset(void **state)
{
    (void)state;
    workload *wl = calloc(1, sizeof *wl);
    char *base = ck_make_base(wl);
    gen_checkpoint_work(wl);
    uint64_t total = close_ops(base, wl);
    uint64_t gen0 = log_generation(base);
    uint8_t *page = malloc(4096);
    for (uint64_t at = total - 2; at <= total; at++) {
        for (int pi = 0; pi < NPOL; pi++) {
            /* Torn truncates bring back any mix of old and zeroed log sectors, torn header
             * writes any mix of old and new bytes: many seeds. */
            kv_crash_policy p = policy_for((uint64_t)pi);
            uint64_t seeds = p == KV_CRASH_TORN || p == KV_CRASH_TORN_BYTES ? 40 : 3;
            for (uint64_t seed = 1; seed <= seeds; seed++) {
                ck_world w;
                ck_world_new(&w, base);
                kv_crash_policy pol = policy_for((uint64_t)pi);
                /* The crash point lies in kv_close: every commit was acknowledged. */
                kv_fs *fs = kv_faultfs_new(w.scratch);
                kv_faultfs_set_crash_at(fs, at);
                kv_db *db;
                assert_int_equal(bt_open_opts(w.db, "os", fs, 0, &db, CK_OPTS, NULL), KV_OK);
                for (size_t i = 0; i < wl->n; i++)
                    assert_int_equal(ck_run_op(db, &wl->ops[i]), KV_OK);
                uint64_t gen_run = log_generation(w.db);
                assert_int_not_equal(kv_close(db), KV_OK);
                assert_true(kv_faultfs_crashed(fs));
                assert_int_equal(kv_faultfs_crash(fs, pol, seed), KV_OK);
                kv_fs_destroy(fs);
                /* The data file is durable with every group before recovery runs. */
                assert_true(read_page(w.db, 0, page));
                bt_meta m;
                assert_int_equal(bt_meta_decode(page, 4096, "btree.db", &m), KV_OK);
                unsigned want = 0;
                unsigned model[NK];
                memcpy(model, wl->base, sizeof model);
                for (size_t i = 0; i < wl->n; i++)
                    ck_model_apply(model, &wl->ops[i]);
                for (unsigned i = 0; i < NK; i++)
                    want += model[i] != 0;
                assert_int_equal(m.key_count, want);
                /* The reset's order: while the header still has the old generation, the log
                 * holds every group up to the data file's last LSN (a replay is idempotent,
                 * never a prefix that would roll newer pages back). */
                if (log_generation(w.db) == gen_run)
                    assert_int_equal(log_last_commit(w.db), m.last_lsn);
                ck_run r = {true, wl->n, wl->n, 0};
                char what[160];
                snprintf(what, sizeof what, "log reset: crash at %llu/%llu, policy %s, seed %llu",
                         (unsigned long long)at, (unsigned long long)total,
                         kv_crash_policy_name(pol), (unsigned long long)seed);
                ck_verify(&w, wl, &r, what);
                /* Recovery moved the log to a newer generation than any before. */
                assert_true(log_generation(w.db) > gen0);
                ck_world_free(&w);
            }
        }
    }
    free(page);
    tu_rmtree(base);
    free(base);
    free(wl);
}

/* Crash at the checkpoint's fdatasync of the data file with the torn policy: the page writes of
 * the checkpoint are torn at 512-byte sectors. Recovery repairs every torn page from the log's
 * full page images (the log was durable before the first data page was written and is not
 * reset until the data file is). */
static void test_torn_page_write_repaired_from_log(void **state)
{
    (void)state;
    workload *wl = calloc(1, sizeof *wl);
    char *base = ck_make_base(wl);
    gen_checkpoint_work(wl);
    uint64_t total = close_ops(base, wl);
    uint8_t *page = malloc(4096);
    unsigned torn = 0;
    for (uint64_t seed = 1; seed <= 12; seed++) {
        ck_world w;
        ck_world_new(&w, base);
        kv_fs *fs = kv_faultfs_new(w.scratch);
        kv_faultfs_set_crash_at(fs, total - 3);
        kv_db *db;
        assert_int_equal(bt_open_opts(w.db, "os", fs, 0, &db, CK_OPTS, NULL), KV_OK);
        for (size_t i = 0; i < wl->n; i++)
            assert_int_equal(ck_run_op(db, &wl->ops[i]), KV_OK);
        assert_int_not_equal(kv_close(db), KV_OK);
        assert_int_equal(kv_faultfs_crash(fs, KV_CRASH_TORN, seed), KV_OK);
        kv_fs_destroy(fs);
        for (uint32_t pgno = 0; read_page(w.db, pgno, page); pgno++)
            torn += !bt_pg_crc_ok(page, 4096, pgno);
        ck_run r = {true, wl->n, wl->n, 0};
        char what[120];
        snprintf(what, sizeof what, "torn pages, seed %llu", (unsigned long long)seed);
        ck_verify(&w, wl, &r, what);
        ck_world_free(&w);
    }
    fprintf(stderr, "torn: %u data pages had a bad CRC before recovery; all repaired\n", torn);
    assert_true(torn > 0); /* the scenario really happened */
    free(page);
    tu_rmtree(base);
    free(base);
    free(wl);
}

/* A crash in the middle of recovery is recovered again (recovery is idempotent): a state with
 * a full log is recovered under a crash at every operation of recovery. */
static void test_crash_during_recovery(void **state)
{
    (void)state;
    workload *wl = calloc(1, sizeof *wl);
    char *base = ck_make_base(wl);
    gen_checkpoint_work(wl);
    /* A process crash after the workload: the log holds every group, the data file none. */
    ck_world crashed;
    ck_world_new(&crashed, base);
    {
        kv_fs *fs = kv_faultfs_new(crashed.scratch);
        kv_db *db;
        assert_int_equal(bt_open_opts(crashed.db, "os", fs, 0, &db, "page_size=4096",
                                      "checkpoint_bytes=1G", "bgwriter=0", NULL),
                         KV_OK);
        for (size_t i = 0; i < wl->n; i++)
            assert_int_equal(ck_run_op(db, &wl->ops[i]), KV_OK);
        kv_faultfs_set_crash_at(fs, kv_faultfs_ops(fs) + 1);
        assert_int_equal(kv_faultfs_crash(fs, KV_CRASH_KEEP, 1), KV_OK);
        kv_close(db);
        kv_fs_destroy(fs);
    }
    uint64_t points = 0;
    for (uint64_t at = 1;; at++) {
        ck_world w;
        ck_world_new(&w, crashed.db);
        kv_fs *fs = kv_faultfs_new(w.scratch);
        kv_faultfs_set_crash_at(fs, at);
        kv_db *db = NULL;
        kv_status s = bt_open_opts(w.db, "os", fs, 0, &db, CK_OPTS, NULL);
        bool reached = kv_faultfs_crashed(fs);
        if (reached) {
            assert_int_not_equal(s, KV_OK);
            assert_int_equal(kv_faultfs_crash(fs, policy_for(at), at), KV_OK);
            points++;
        } else {
            assert_int_equal(s, KV_OK);
            kv_close(db);
        }
        kv_fs_destroy(fs);
        ck_run r = {true, wl->n, wl->n, 0};
        char what[120];
        snprintf(what, sizeof what, "recovery crashed at %llu", (unsigned long long)at);
        ck_verify(&w, wl, &r, what);
        ck_world_free(&w);
        if (!reached)
            break;
    }
    fprintf(stderr, "recovery: %llu crash points inside recovery, each recovered again\n",
            (unsigned long long)points);
    assert_true(points >= 5);
    ck_world_free(&crashed);
    tu_rmtree(base);
    free(base);
    free(wl);
}

/* ---- steal: dirty pages written back before the checkpoint ---- */

#define EV_KEYS 400 /* keys of the eviction tests: 9 bytes, values of 300 (about 12 per leaf) */
#define EV_VLEN 300

/* Key i's value of version ver: the version, then a pattern. */
static void ev_val(uint8_t *v, unsigned i, unsigned ver)
{
    kv_put_u32(v, ver);
    bt_val(v + 4, EV_VLEN - 4, i, ver);
}

/* Reads every key of db into got[] (versions; 0 = absent), failing on any value never written. */
static void ev_read(kv_db *db, unsigned *got)
{
    uint8_t want[EV_VLEN];
    for (unsigned i = 0; i < EV_KEYS; i++) {
        char k[32];
        void *v;
        size_t n;
        kv_status s = kv_get(db, k, bt_key(k, i), &v, &n);
        got[i] = 0;
        if (s == KV_NOT_FOUND)
            continue;
        assert_int_equal(s, KV_OK);
        assert_int_equal(n, EV_VLEN);
        got[i] = kv_get_u32(v);
        ev_val(want, i, got[i]);
        if (memcmp(v, want, EV_VLEN))
            fail_msg("key %u: value of version %u is garbled (never written)", i, got[i]);
        kv_free(v);
    }
}

/* The puts of the eviction tests: every key in a scrambled order at version 1, then (when
 * again) every key once more at version 2, so that pages written back are changed again. */
static size_t ev_ops(unsigned *key, unsigned *ver, bool again)
{
    size_t n = 0;
    for (int pass = 1; pass <= (again ? 2 : 1); pass++)
        for (unsigned j = 0; j < EV_KEYS; j++) {
            key[n] = (j * 7919u + (unsigned)pass * 13u) % EV_KEYS;
            ver[n++] = (unsigned)pass;
        }
    return n;
}

/* A dirty page is evicted without a checkpoint, and a power loss right after that eviction is
 * recovered: in every durability mode and crash policy, with a 16-frame pool and no checkpoint
 * before the crash, the puts run until the writer has written dirty pages back (the log made
 * durable first: the WAL rule), then the machine loses power. Every put before the write-back
 * must survive (the write-back's log fdatasync covered it, even in `none`), the state must be
 * a prefix of the puts, and kv_check must pass. With `again`, every key is put a second time
 * after the first write-back, so pages that were written back are changed again (logged as
 * deltas on their image in the log) and written back again before the crash. The torn policy
 * must really have torn written-back pages, which recovery rebuilds from the log. */
static void evict_then_crash(bool again)
{
    static const kv_crash_policy pols[] = {KV_CRASH_LOSE, KV_CRASH_RANDOM, KV_CRASH_TORN,
                                           KV_CRASH_KEEP, KV_CRASH_TORN_BYTES};
    unsigned key[2 * EV_KEYS], ver[2 * EV_KEYS], model[EV_KEYS], got[EV_KEYS];
    size_t nops = ev_ops(key, ver, again);
    uint8_t *page = malloc(4096);
    unsigned torn = 0;
    for (size_t m = 0; m < 4; m++) {
        for (size_t pi = 0; pi < NPOL; pi++) {
            ck_world w;
            ck_world_new(&w, NULL);
            kv_fs *fs = kv_faultfs_new(w.scratch);
            kv_db *db;
            const char *mode = m == 2 ? "interval:60000" : modes[m];
            assert_int_equal(bt_open_opts(w.db, mode, fs, 64 << 10, &db, "page_size=4096",
                                          "checkpoint_bytes=1G", "bgwriter=0", NULL),
                             KV_OK);
            /* durable: the puts covered by the last fdatasync of the log */
            size_t done = 0, durable = 0;
            uint64_t batches = 0, syncs = 0;
            bool enough = false;
            while (done < nops && !enough) {
                uint8_t v[EV_VLEN];
                char k[32];
                ev_val(v, key[done], ver[done]);
                assert_int_equal(kv_put(db, k, bt_key(k, key[done]), v, EV_VLEN), KV_OK);
                done++;
                /* No checkpoint runs, so every fdatasync is the log's: a write-back's (the WAL
                 * rule; none when the log already was durable up to its pages) or a `sync`
                 * commit's. */
                kv_stats st;
                assert_int_equal(kv_stats_get(db, &st), KV_OK);
                if (st.fdatasyncs > syncs)
                    durable = done;
                syncs = st.fdatasyncs;
                uint64_t b = bt_stat(db, "writeback_batches");
                if (b > batches) {
                    batches = b;
                    enough = !again || done > EV_KEYS; /* again: in the second pass */
                }
            }
            assert_true(enough);
            assert_true(bt_stat(db, "pages_written_back") > 0);
            assert_int_equal(bt_stat(db, "checkpoints"), 0);
            /* the power loss, right after the write-back */
            kv_faultfs_set_crash_at(fs, kv_faultfs_ops(fs) + 1);
            assert_int_equal(kv_faultfs_crash(fs, pols[pi], 17 * m + pi + 1), KV_OK);
            kv_close(db); /* fails: the fs is dead; frees the handle */
            kv_fs_destroy(fs);
            for (uint32_t pgno = 1;
                 (pols[pi] == KV_CRASH_TORN || pols[pi] == KV_CRASH_TORN_BYTES) &&
                 read_page(w.db, pgno, page);
                 pgno++)
                torn += !bt_pg_crc_ok(page, 4096, pgno);
            assert_int_equal(bt_open_opts(w.db, "os", NULL, 64 << 10, &db, NULL), KV_OK);
            bt_assert_check(db);
            ev_read(db, got);
            memset(model, 0, sizeof model);
            size_t p = 0;
            for (; p < durable; p++)
                model[key[p]] = ver[p];
            for (; memcmp(model, got, sizeof model) && p < done; p++)
                model[key[p]] = ver[p];
            if (memcmp(model, got, sizeof model))
                fail_msg("mode %s, policy %s: recovered state is no prefix of the %zu puts with "
                         "at least the %zu before the write-back",
                         mode, kv_crash_policy_name(pols[pi]), done, durable);
            assert_int_equal(kv_close(db), KV_OK);
            ck_world_free(&w);
        }
    }
    fprintf(stderr, "evictions%s: %u written-back pages were torn by the crash; all rebuilt\n",
            again ? " of pages changed again" : "", torn);
    assert_true(torn > 0); /* torn write-backs really happened */
    free(page);
}

static void test_dirty_page_evicted_then_crash(void **state)
{
    (void)state;
    evict_then_crash(false);
}

static void test_page_written_back_changed_again_then_crash(void **state)
{
    (void)state;
    evict_then_crash(true);
}

/* The sweep of test_crash_every_op_inserts_to_height_3 with a 16-frame pool: dirty pages are
 * written back between checkpoints (64 KiB of log), so the crash points fall before, inside and
 * after write-backs and checkpoints, in every mode. */
static void test_crash_every_op_with_steal(void **state)
{
    (void)state;
    workload *wl = calloc(1, sizeof *wl);
    gen_inserts(wl, tu_seed(11));
    ck_cache = 64 << 10;
    ck_checkpoint = "checkpoint_bytes=96K";
    ck_world w;
    ck_world_new(&w, NULL);
    kv_db *db;
    assert_int_equal(bt_open_opts(w.db, "os", NULL, ck_cache, &db, "page_size=4096", ck_checkpoint,
                                  "bgwriter=0", NULL),
                     KV_OK);
    for (size_t i = 0; i < wl->n; i++)
        assert_int_equal(ck_run_op(db, &wl->ops[i]), KV_OK);
    uint64_t wb = bt_stat(db, "pages_written_back"), ck = bt_stat(db, "checkpoints");
    assert_true(wb > 0);
    assert_true(bt_stat(db, "cache_evictions") > 0);
    assert_int_equal(kv_close(db), KV_OK);
    ck_world_free(&w);
    fprintf(stderr, "steal sweep: %llu pages written back, %llu checkpoints without a crash\n",
            (unsigned long long)wb, (unsigned long long)ck);
    for (size_t m = 0; m < 4; m++) {
        uint64_t points = 0;
        sweep(modes[m], wl, NULL, &points);
        fprintf(stderr, "steal, mode %s: %llu crash points recovered and checked\n", modes[m],
                (unsigned long long)points);
        assert_true(points > 10 || !strcmp(modes[m], "none"));
    }
    ck_cache = 0;
    ck_checkpoint = "checkpoint_bytes=64K";
    free(wl);
}

/* ---- the background writer (bgw.c): pages written back ahead of the checkpoint ---- */

/* The sweep of test_crash_every_op_inserts_to_height_3 with the background writer's work inline
 * (bgwriter=2: the same I/O at the same points of every run, so crash points replay) and
 * writing pages back from a quarter of the log's growth towards each 96 KiB checkpoint: the
 * crash points fall before, inside and after background batches (their log fdatasync, their
 * page writes, their meta page), between them and the checkpoints, and inside the checkpoints,
 * in every mode and (rotating) every power-loss policy, torn ones included; kv_check runs after
 * every recovery. Once with the default pool (no steal: only the background writer writes pages
 * before a checkpoint), once with a 16-frame pool (steal write-backs beside it). */
static void test_crash_every_op_with_bgwriter(void **state)
{
    (void)state;
    workload *wl = calloc(1, sizeof *wl);
    gen_inserts(wl, tu_seed(13));
    ck_checkpoint = "checkpoint_bytes=96K";
    ck_bgwriter = "bgwriter=2";
    ck_bgwriter_start = "bgwriter_start=25";
    static const uint64_t caches[] = {0, 64 << 10};
    for (size_t c = 0; c < 2; c++) {
        ck_cache = caches[c];
        ck_world w;
        ck_world_new(&w, NULL);
        kv_db *db;
        assert_int_equal(bt_open_opts(w.db, "os", NULL, ck_cache, &db, "page_size=4096",
                                      ck_checkpoint, ck_bgwriter, ck_bgwriter_start, NULL),
                         KV_OK);
        for (size_t i = 0; i < wl->n; i++)
            assert_int_equal(ck_run_op(db, &wl->ops[i]), KV_OK);
        uint64_t bp = bt_stat(db, "bgwriter_pages"), ck = bt_stat(db, "checkpoints");
        assert_true(bp > 0);
        assert_true(ck > 0);
        if (c == 0)
            assert_int_equal(bt_stat(db, "pages_written_back"), 0);
        assert_int_equal(kv_close(db), KV_OK);
        ck_world_free(&w);
        fprintf(stderr,
                "bgwriter sweep, pool %llu: %llu pages written back in the background, "
                "%llu checkpoints without a crash\n",
                (unsigned long long)ck_cache, (unsigned long long)bp, (unsigned long long)ck);
        for (size_t m = 0; m < 4; m++) {
            if (c == 1 && m != 1 && !longrun)
                continue; /* the small pool: `os` only, unless KVLAB_LONG */
            uint64_t points = 0;
            sweep(modes[m], wl, NULL, &points);
            fprintf(stderr,
                    "bgwriter, pool %llu, mode %s: %llu crash points recovered and checked\n",
                    (unsigned long long)ck_cache, modes[m], (unsigned long long)points);
            assert_true(points > 10 || !strcmp(modes[m], "none"));
        }
    }
    ck_cache = 0;
    ck_checkpoint = "checkpoint_bytes=64K";
    ck_bgwriter = "bgwriter=0";
    ck_bgwriter_start = "bgwriter_start=90";
    free(wl);
}

/* Power loss between background write-backs and the checkpoint that follows them, and inside
 * that checkpoint: the workload runs with no checkpoint (1 MiB of log) while the background
 * writer (inline) writes pages back from the start of the log, some of them changed again
 * afterwards; then kv_close checkpoints. A crash at every operation of kv_close, under every
 * policy with several seeds, must recover every acknowledged put and pass kv_check. */
static void test_crash_between_bgwriter_and_checkpoint(void **state)
{
    (void)state;
    workload *wl = calloc(1, sizeof *wl);
    char *base = ck_make_base(wl);
    gen_inserts(wl, tu_seed(17)); /* overwrites of the base's keys: pages changed again */
    memset(wl->base, 0, sizeof wl->base);
    ck_world w0;
    ck_world_new(&w0, NULL);
    kv_fs *fs = kv_faultfs_new(w0.scratch);
    kv_db *db;
#define BW_OPTS "page_size=4096", "checkpoint_bytes=1M", "bgwriter=2", "bgwriter_start=0"
    assert_int_equal(bt_open_opts(w0.db, "os", fs, 0, &db, BW_OPTS, NULL), KV_OK);
    for (size_t i = 0; i < wl->n; i++)
        assert_int_equal(ck_run_op(db, &wl->ops[i]), KV_OK);
    uint64_t before = kv_faultfs_ops(fs);
    assert_true(bt_stat(db, "bgwriter_pages") > 0);
    assert_int_equal(bt_stat(db, "checkpoints"), 0);
    assert_true(bt_stat(db, "dirty_pages") > 0); /* the checkpoint still has pages to write */
    assert_int_equal(kv_close(db), KV_OK);
    uint64_t total = kv_faultfs_ops(fs);
    kv_fs_destroy(fs);
    ck_world_free(&w0);
    size_t synced = 0;
    for (size_t i = 0; i < wl->n; i++)
        if (wl->ops[i].n == 0)
            synced = i + 1;
    uint64_t points = 0;
    for (uint64_t at = before + 1; at <= total; at++) {
        for (int pi = 0; pi < NPOL; pi++) {
            kv_crash_policy pol = policy_for((uint64_t)pi);
            uint64_t seeds = pol == KV_CRASH_TORN || pol == KV_CRASH_TORN_BYTES ? 6 : 2;
            for (uint64_t seed = 1; seed <= seeds; seed++) {
                ck_world w;
                ck_world_new(&w, NULL);
                fs = kv_faultfs_new(w.scratch);
                kv_faultfs_set_crash_at(fs, at);
                assert_int_equal(bt_open_opts(w.db, "os", fs, 0, &db, BW_OPTS, NULL), KV_OK);
                for (size_t i = 0; i < wl->n; i++)
                    assert_int_equal(ck_run_op(db, &wl->ops[i]), KV_OK);
                assert_int_not_equal(kv_close(db), KV_OK);
                assert_true(kv_faultfs_crashed(fs));
                assert_int_equal(kv_faultfs_crash(fs, pol, seed), KV_OK);
                kv_fs_destroy(fs);
                /* The checkpoint's first operation is its log fdatasync: a crash there keeps
                 * a prefix at least up to the last kv_sync (durability `os`); from the next
                 * operation on, every put is durable. */
                ck_run r = {true, wl->n, at == before + 1 ? synced : wl->n, 0};
                char what[160];
                snprintf(what, sizeof what,
                         "close after background write-back: crash at %llu/%llu, policy %s, "
                         "seed %llu",
                         (unsigned long long)at, (unsigned long long)total,
                         kv_crash_policy_name(pol), (unsigned long long)seed);
                ck_verify(&w, wl, &r, what);
                ck_world_free(&w);
                points++;
            }
        }
    }
#undef BW_OPTS
    fprintf(stderr, "bgwriter then checkpoint: %llu crash runs inside kv_close, all recovered\n",
            (unsigned long long)points);
    assert_true(points > 0);
    tu_rmtree(base);
    free(base);
    free(wl);
}

/* The pattern of evict_then_crash for the background writer: a pool big enough that the writer
 * never writes back (no steal) and no checkpoint, the background writer's work inline from the
 * start of the log; the puts run until a background batch wrote pages (with `again`: in the
 * second pass over the keys, so pages it wrote back were changed again and logged as deltas on
 * their image), then the power fails. The torn policies must really have torn pages the
 * background writer wrote; recovery rebuilds them from the log's full images and deltas. */
static void bgwriter_then_crash(bool again)
{
    unsigned key[2 * EV_KEYS], ver[2 * EV_KEYS], model[EV_KEYS], got[EV_KEYS];
    size_t nops = ev_ops(key, ver, again);
    uint8_t *page = malloc(4096);
    unsigned torn = 0;
    for (size_t m = 0; m < 4; m++) {
        for (size_t pi = 0; pi < NPOL; pi++) {
            kv_crash_policy pol = policy_for(pi);
            ck_world w;
            ck_world_new(&w, NULL);
            kv_fs *fs = kv_faultfs_new(w.scratch);
            kv_db *db;
            const char *mode = m == 2 ? "interval:60000" : modes[m];
            assert_int_equal(bt_open_opts(w.db, mode, fs, 0, &db, "page_size=4096",
                                          "checkpoint_bytes=2M", "bgwriter=2", "bgwriter_start=0",
                                          NULL),
                             KV_OK);
            size_t done = 0, durable = 0;
            uint64_t batches = 0, syncs = 0;
            bool enough = false;
            while (done < nops && !enough) {
                uint8_t v[EV_VLEN];
                char k[32];
                ev_val(v, key[done], ver[done]);
                assert_int_equal(kv_put(db, k, bt_key(k, key[done]), v, EV_VLEN), KV_OK);
                done++;
                kv_stats st;
                assert_int_equal(kv_stats_get(db, &st), KV_OK);
                if (st.fdatasyncs > syncs)
                    durable = done; /* no checkpoint: every fdatasync is the log's */
                syncs = st.fdatasyncs;
                uint64_t b = bt_stat(db, "bgwriter_batches");
                if (b > batches) {
                    batches = b;
                    enough = !again || done > EV_KEYS + EV_KEYS / 2;
                }
            }
            assert_true(enough);
            assert_true(bt_stat(db, "bgwriter_pages") > 0);
            assert_int_equal(bt_stat(db, "pages_written_back"), 0);
            assert_int_equal(bt_stat(db, "checkpoints"), 0);
            kv_faultfs_set_crash_at(fs, kv_faultfs_ops(fs) + 1);
            assert_int_equal(kv_faultfs_crash(fs, pol, 23 * m + pi + 1), KV_OK);
            kv_close(db); /* fails: the fs is dead; frees the handle */
            kv_fs_destroy(fs);
            for (uint32_t pgno = 1; (pol == KV_CRASH_TORN || pol == KV_CRASH_TORN_BYTES) &&
                                    read_page(w.db, pgno, page);
                 pgno++)
                torn += !bt_pg_crc_ok(page, 4096, pgno);
            assert_int_equal(bt_open_opts(w.db, "os", NULL, 0, &db, "bgwriter=0", NULL), KV_OK);
            bt_assert_check(db);
            ev_read(db, got);
            memset(model, 0, sizeof model);
            size_t p = 0;
            for (; p < durable; p++)
                model[key[p]] = ver[p];
            for (; memcmp(model, got, sizeof model) && p < done; p++)
                model[key[p]] = ver[p];
            if (memcmp(model, got, sizeof model))
                fail_msg("mode %s, policy %s: recovered state is no prefix of the %zu puts with "
                         "at least the %zu before the background write-back",
                         mode, kv_crash_policy_name(pol), done, durable);
            assert_int_equal(kv_close(db), KV_OK);
            ck_world_free(&w);
        }
    }
    fprintf(stderr, "bgwriter%s: %u pages written in the background were torn; all rebuilt\n",
            again ? ", pages changed again" : "", torn);
    assert_true(torn > 0);
    free(page);
}

static void test_bgwriter_write_back_then_crash(void **state)
{
    (void)state;
    bgwriter_then_crash(false);
}

static void test_bgwriter_page_changed_again_then_crash(void **state)
{
    (void)state;
    bgwriter_then_crash(true);
}

/* A failed fdatasync poisons the handle (never retried); reopening recovers a legal state. */
static void test_failed_fsync_poisons(void **state)
{
    (void)state;
    workload *wl = calloc(1, sizeof *wl);
    gen_inserts(wl, 9);
    ck_world w;
    ck_world_new(&w, NULL);
    kv_fs *fs = kv_faultfs_new(w.scratch);
    kv_db *db;
    assert_int_equal(bt_open_opts(w.db, "sync", fs, 0, &db, CK_OPTS, NULL), KV_OK);
    size_t acked = 0;
    for (; acked < 5; acked++)
        assert_int_equal(ck_run_op(db, &wl->ops[acked]), KV_OK);
    kv_faultfs_fail(fs, KV_FAULT_SYNC, 1, EIO, false);
    assert_int_equal(ck_run_op(db, &wl->ops[acked]), KV_IO);
    assert_int_equal(ck_run_op(db, &wl->ops[acked + 1]), KV_POISONED);
    assert_int_equal(kv_sync(db), KV_POISONED);
    void *v;
    size_t n;
    uint8_t k[1024];
    size_t kl = ck_key(k, wl->ops[0].key[0]);
    assert_int_equal(kv_get(db, k, kl, &v, &n), KV_OK); /* reads still work */
    kv_free(v);
    assert_int_equal(kv_close(db), KV_POISONED);
    assert_int_equal(kv_faultfs_crash(fs, KV_CRASH_LOSE, 1), KV_OK);
    kv_fs_destroy(fs);
    ck_run r = {true, acked, acked, 0};
    ck_verify(&w, wl, &r, "after a failed fdatasync");
    ck_world_free(&w);
    free(wl);
}

int main(void)
{
    /* faultfs, not the disk, decides what survives a crash here; thousands of real fsyncs on a
     * shared disk would only make the sweep slow. So the scratch directories go to tmpfs when
     * there is one (KVLAB_BTREE_DISK=1 keeps the build directory). */
    const char *disk = getenv("KVLAB_BTREE_DISK");
    if ((!disk || !*disk) && access("/dev/shm", W_OK) == 0) {
        mkdir("/dev/shm/kvlab-btree-tests", 0755);
        setenv("KVLAB_TEST_TMP", "/dev/shm/kvlab-btree-tests", 1);
    }
    const char *l = getenv("KVLAB_LONG");
    longrun = l && *l && strcmp(l, "0");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_every_op_inserts_to_height_3),
        cmocka_unit_test(test_crash_every_op_deletes_to_height_1),
        cmocka_unit_test(test_crash_between_page_allocation_and_page_write),
        cmocka_unit_test(test_crash_between_data_fsync_and_log_reset),
        cmocka_unit_test(test_torn_page_write_repaired_from_log),
        cmocka_unit_test(test_crash_during_recovery),
        cmocka_unit_test(test_failed_fsync_poisons),
        cmocka_unit_test(test_dirty_page_evicted_then_crash),
        cmocka_unit_test(test_page_written_back_changed_again_then_crash),
        cmocka_unit_test(test_crash_every_op_with_steal),
        cmocka_unit_test(test_crash_every_op_with_bgwriter),
        cmocka_unit_test(test_crash_between_bgwriter_and_checkpoint),
        cmocka_unit_test(test_bgwriter_write_back_then_crash),
        cmocka_unit_test(test_bgwriter_page_changed_again_then_crash),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir("/dev/shm/kvlab-btree-tests"); /* only when empty (another run may be using it) */
    return rc;
}
