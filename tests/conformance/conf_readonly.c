/* Read-only opens (kv.h, kv_options.read_only; docs/design.md section 2): inspection changes
 * nothing.
 *
 * On a cleanly closed database, after a process crash (a child killed mid-workload), and after a
 * power loss torn at any byte (faultfs, policy torn-bytes), a read-only handle's gets, scans,
 * check, dump and stats leave every file of the directory byte for byte as it was (names, sizes,
 * contents, modification times); the state it reads is the state a writable open then recovers;
 * two read-only handles share the directory while a writer is refused. Runs on every engine that
 * declares a read-only open. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf.h"
#include "faultfs.h"
#include "testutil.h"

#define RO_KEYS 3000

static void key_of(uint32_t i, char *k, size_t *kl)
{
    *kl = (size_t)snprintf(k, 32, "ro%07u", i);
}

/* Commit c of the workload: puts, overwrites, deletes and batches over RO_KEYS keys. */
static kv_status ro_commit(kv_db *db, uint32_t c, kv_batch *b)
{
    char k[32], v[160];
    size_t kl;
    uint32_t key = (c * 7919u) % RO_KEYS;
    key_of(key, k, &kl);
    int vl = snprintf(v, sizeof v, "value-%u-%u-%0*u", key, c, (int)(c % 90), 0u);
    switch (c % 10) {
    case 7:
        return kv_delete(db, k, kl);
    case 9: {
        kv_batch_clear(b);
        for (uint32_t j = 0; j < 5; j++) {
            key_of((key + j * 13) % RO_KEYS, k, &kl);
            kv_status s =
                j == 4 ? kv_batch_delete(b, k, kl) : kv_batch_put(b, k, kl, v, (size_t)vl);
            if (s != KV_OK)
                return s;
        }
        return kv_write(db, b);
    }
    default:
        return kv_put(db, k, kl, v, (size_t)vl);
    }
}

/* Everything a scan returns, as one string of "key=value\n" lines. */
static char *scan_all(kv_db *db)
{
    kv_iter *it = NULL;
    EXPECT_OK(kv_iter_new(db, &it));
    size_t cap = 1 << 20, len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it)) {
        size_t kl, vl;
        const char *k = kv_iter_key(it, &kl), *v = kv_iter_value(it, &vl);
        while (len + kl + vl + 3 > cap)
            assert_non_null(out = realloc(out, cap *= 2));
        memcpy(out + len, k, kl);
        out[len + kl] = '=';
        memcpy(out + len + kl + 1, v, vl);
        out[len + kl + 1 + vl] = '\n';
        len += kl + vl + 2;
    }
    EXPECT_OK(kv_iter_status(it));
    kv_iter_free(it);
    out[len] = '\0';
    return out;
}

/* Opens dir read-only, reads everything every way the inspection commands do, and returns the
 * scan. The directory must not change. */
static char *inspect(const char *dir)
{
    char *before = tu_dir_state(dir);
    kv_options o;
    kv_options_init(&o);
    o.read_only = true;
    kv_db *r1 = NULL, *r2 = NULL, *w = NULL;
    EXPECT_OK(kv_open(conf_engine, dir, &o, &r1));
    EXPECT_OK(kv_open(conf_engine, dir, &o, &r2)); /* readers share */
    EXPECT_STATUS(kv_open(conf_engine, dir, NULL, &w), KV_BUSY);
    char *seen = scan_all(r1);
    char *seen2 = scan_all(r2);
    assert_string_equal(seen, seen2);
    free(seen2);
    for (uint32_t i = 0; i < RO_KEYS; i += 7) {
        char k[32];
        size_t kl;
        key_of(i, k, &kl);
        void *v = NULL;
        size_t vl;
        kv_status s = kv_get(r1, k, kl, &v, &vl);
        if (s != KV_OK && s != KV_NOT_FOUND)
            fail_msg("read-only get: %s: %s", kv_strerror(s), kv_errmsg());
        kv_free(v);
    }
    EXPECT_OK(kv_check(r1));
    FILE *f = tmpfile();
    assert_non_null(f);
    EXPECT_OK(kv_dump(r1, f, NULL, -1));
    fclose(f);
    kv_stats st;
    EXPECT_OK(kv_stats_get(r1, &st));
    EXPECT_STATUS(kv_put(r1, "x", 1, "y", 1), KV_INVALID);
    EXPECT_OK(kv_close(r2));
    EXPECT_OK(kv_close(r1));
    char *after = tu_dir_state(dir);
    if (strcmp(before, after))
        fail_msg("a read-only open changed %s:\n--- before\n%s--- after\n%s", dir, before, after);
    free(before);
    free(after);
    return seen;
}

/* The read-only view must be what a writable open recovers. */
static void expect_same_as_writable(const char *dir, const char *seen)
{
    kv_db *db = conf_open(dir, "os");
    char *now = scan_all(db);
    EXPECT_OK(kv_check(db));
    EXPECT_OK(kv_close(db));
    if (strcmp(seen, now))
        fail_msg("read-only open saw %zu bytes of records, the writable open %zu", strlen(seen),
                 strlen(now));
    free(now);
}

void test_read_only(void **state)
{
    (void)state;
    if (!kv_engine_has_read_only(conf_engine))
        skip();
    kv_batch *b = kv_batch_new();
    assert_non_null(b);

    /* 1. A cleanly closed database. */
    char *dir = conf_dir("ro-clean");
    kv_db *db = conf_open(dir, "os");
    for (uint32_t c = 0; c < 4 * RO_KEYS; c++)
        EXPECT_OK(ro_commit(db, c, b));
    EXPECT_OK(kv_close(db));
    char *seen = inspect(dir);
    assert_true(strlen(seen) > 0);
    expect_same_as_writable(dir, seen);
    free(seen);
    conf_dir_done(dir);

    /* 2. A process crash: a child killed while it writes (nothing flushed at close). */
    dir = conf_dir("ro-killed");
    db = conf_open(dir, "os");
    for (uint32_t c = 0; c < RO_KEYS; c++)
        EXPECT_OK(ro_commit(db, c, b));
    EXPECT_OK(kv_close(db));
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        kv_db *cdb = NULL;
        kv_options o;
        kv_options_init(&o);
        if (kv_open(conf_engine, dir, &o, &cdb) != KV_OK)
            _exit(1);
        kv_batch *cb = kv_batch_new();
        for (uint32_t c = RO_KEYS;; c++)
            if (ro_commit(cdb, c, cb) != KV_OK)
                _exit(1);
    }
    usleep(200 * 1000);
    kill(pid, SIGKILL);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
    seen = inspect(dir);
    expect_same_as_writable(dir, seen);
    free(seen);
    conf_dir_done(dir);

    /* 3. A power loss that tore the unsynced writes at arbitrary bytes. */
    for (uint64_t seed = 1; seed <= 3; seed++) {
        dir = conf_dir("ro-torn");
        char *scratch = conf_dir("ro-torn-scratch");
        kv_fs *fs = kv_faultfs_new(scratch);
        assert_non_null(fs);
        kv_options o;
        kv_options_init(&o);
        o.fs = fs;
        EXPECT_OK(kv_open(conf_engine, dir, &o, &db));
        for (uint32_t c = 0; c < RO_KEYS / 2; c++)
            EXPECT_OK(ro_commit(db, c, b));
        EXPECT_OK(kv_sync(db));
        for (uint32_t c = RO_KEYS / 2; c < RO_KEYS; c++)
            EXPECT_OK(ro_commit(db, c, b));
        kv_faultfs_set_crash_at(fs, kv_faultfs_ops(fs) + 1);
        kv_close(db); /* fails at once: the power is gone */
        EXPECT_OK(kv_faultfs_crash(fs, KV_CRASH_TORN_BYTES, seed));
        kv_fs_destroy(fs);
        seen = inspect(dir);
        expect_same_as_writable(dir, seen);
        free(seen);
        conf_dir_done(scratch);
        conf_dir_done(dir);
    }
    kv_batch_free(b);
}
