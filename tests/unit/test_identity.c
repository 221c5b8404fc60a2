/* A database directory names its engine (common/identity.h, kv_open): no engine opens another's
 * directory or a directory that is no database, read-only opens never create or write, and a
 * damaged KVLAB.ID is a clear KV_CORRUPTION. Every refusal leaves the directory as it was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "identity.h"
#include "kv_engine.h"
#include "testutil.h"

static char *root;

static char *path_in(const char *dir, const char *name)
{
    char *p = kv_path_join(dir, name);
    assert_non_null(p);
    return p;
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* A database of engine e in a new directory, with one key, closed. */
static char *make_db(const char *e)
{
    char *dir = tu_mkdtemp(e);
    kv_db *db;
    OK(kv_open(e, dir, NULL, &db));
    OK(kv_put(db, "k", 1, "v", 1));
    OK(kv_close(db));
    return dir;
}

/* Opening with every other engine, for writing and read-only, is KV_INVALID naming both engines;
 * the directory does not change. All pairs of the registry: kvlab's engines and the peers. */
static void test_every_pair_refused(void **state)
{
    (void)state;
    const char *const *names = kv_engine_names();
    for (size_t i = 0; names[i]; i++) {
        char *dir = make_db(names[i]);
        char *before = tu_dir_state(dir);
        for (size_t j = 0; names[j]; j++) {
            if (i == j)
                continue;
            for (int ro = 0; ro < 2; ro++) {
                kv_options o;
                kv_options_init(&o);
                o.read_only = ro && kv_engine_has_read_only(names[j]);
                kv_db *db = NULL;
                kv_status s = kv_open(names[j], dir, &o, &db);
                if (s != KV_INVALID)
                    fail_msg("%s opened %s's directory: %s (%s)", names[j], names[i],
                             kv_strerror(s), kv_errmsg());
                assert_non_null(strstr(kv_errmsg(), names[i]));
                assert_non_null(strstr(kv_errmsg(), names[j]));
                char *after = tu_dir_state(dir);
                assert_string_equal(before, after);
                free(after);
            }
        }
        /* The right engine still opens it, with the key. */
        kv_db *db;
        OK(kv_open(names[i], dir, NULL, &db));
        void *v;
        size_t vl;
        OK(kv_get(db, "k", 1, &v, &vl));
        assert_int_equal(vl, 1);
        kv_free(v);
        OK(kv_close(db));
        free(before);
        tu_rmtree(dir);
        free(dir);
    }
}

/* A non-empty directory without KVLAB.ID is no database: every engine refuses it and writes
 * nothing (not even its lock file). */
static void test_foreign_directory(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("foreign");
    char *p = path_in(dir, "notes.txt");
    write_file(p, "mine\n", 5);
    free(p);
    char *before = tu_dir_state(dir);
    const char *const *names = kv_engine_names();
    for (size_t j = 0; names[j]; j++) {
        kv_db *db = NULL;
        assert_int_equal(kv_open(names[j], dir, NULL, &db), KV_INVALID);
        assert_non_null(strstr(kv_errmsg(), "not a kvlab database"));
    }
    char *after = tu_dir_state(dir);
    assert_string_equal(before, after);
    free(before);
    free(after);
    tu_rmtree(dir);
    free(dir);
}

/* Every bit flip and every truncation of KVLAB.ID is KV_CORRUPTION naming the file, for writers
 * and readers alike, and nothing is written. */
static void test_damaged_identity(void **state)
{
    (void)state;
    const char *e = "wal";
    char *dir = make_db(e);
    char *id = path_in(dir, KV_ID_FILE);
    FILE *f = fopen(id, "rb");
    assert_non_null(f);
    char good[256];
    size_t n = fread(good, 1, sizeof good, f);
    fclose(f);
    assert_true(n > 20);
    char bad[256];
    for (size_t i = 0; i < n * 8 + n; i++) {
        size_t len = n;
        memcpy(bad, good, n);
        if (i < n * 8)
            bad[i / 8] ^= (char)(1u << (i % 8));
        else
            len = i - n * 8; /* truncated to 0 .. n-1 bytes */
        write_file(id, bad, len);
        char *before = tu_dir_state(dir);
        kv_db *db = NULL;
        kv_status s = kv_open(e, dir, NULL, &db);
        if (s == KV_OK)
            fail_msg("opened with KVLAB.ID damaged at %zu (%zu bytes)", i, len);
        if (len == 0 && s == KV_INVALID) {
            /* an empty KVLAB.ID is "no identity" only if nothing else were there; here the
             * engine's files are, so it is damage too */
            fail_msg("empty KVLAB.ID taken for a foreign directory");
        }
        assert_int_equal(s, KV_CORRUPTION);
        assert_non_null(strstr(kv_errmsg(), KV_ID_FILE));
        char *after = tu_dir_state(dir);
        assert_string_equal(before, after);
        free(before);
        free(after);
    }
    write_file(id, good, n);
    kv_db *db;
    OK(kv_open(e, dir, NULL, &db));
    OK(kv_close(db));
    free(id);
    tu_rmtree(dir);
    free(dir);
}

/* Another format version of the same engine is refused with both versions named. */
static void test_other_format(void **state)
{
    (void)state;
    char *dir = make_db("wal");
    char *id = path_in(dir, KV_ID_FILE);
    kv_fs *fs = kv_fs_posix();
    OK(kv_identity_write(fs, dir, "wal", 99));
    kv_db *db = NULL;
    assert_int_equal(kv_open("wal", dir, NULL, &db), KV_INVALID);
    assert_non_null(strstr(kv_errmsg(), "format 99"));
    kv_id_state st;
    char name[KV_ID_MAX + 1];
    uint32_t format;
    OK(kv_identity_read(fs, dir, &st, name, sizeof name, &format));
    assert_int_equal(st, KV_ID_PRESENT);
    assert_string_equal(name, "wal");
    assert_int_equal(format, 99);
    kv_fs_destroy(fs);
    free(id);
    tu_rmtree(dir);
    free(dir);
}

/* A crash while the identity was being written leaves KVLAB.ID.tmp (and the lock file): that
 * directory is still a new one, and the next open creates the database. */
static void test_leftover_tmp_is_new(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("tmp-left");
    char *tmp = path_in(dir, KV_ID_FILE ".tmp"), *lock = path_in(dir, KV_LOCK_FILE);
    write_file(tmp, "kvlab da", 8);
    write_file(lock, "", 0);
    kv_db *db;
    OK(kv_open("wal", dir, NULL, &db));
    OK(kv_put(db, "a", 1, "b", 1));
    OK(kv_close(db));
    kv_fs *fs = kv_fs_posix();
    kv_id_state st;
    char name[KV_ID_MAX + 1];
    uint32_t format;
    OK(kv_identity_read(fs, dir, &st, name, sizeof name, &format));
    assert_int_equal(st, KV_ID_PRESENT);
    assert_string_equal(name, "wal");
    kv_fs_destroy(fs);
    free(tmp);
    free(lock);
    tu_rmtree(dir);
    free(dir);
}

/* ---- read-only handles, on an engine made for this test: what kv.c itself guarantees ---- */

typedef struct ro_db {
    kv_db base;
    bool read_only;
} ro_db;

static int ro_writes; /* engine write calls that reached the engine */

static kv_status ro_open(const char *dir, kv_fs *fs, const kv_options *o, kv_db **out)
{
    (void)dir;
    (void)fs;
    ro_db *d = calloc(1, sizeof *d);
    assert_non_null(d);
    d->read_only = o->read_only;
    *out = &d->base;
    return KV_OK;
}
static kv_status ro_close(kv_db *db)
{
    free(db);
    return KV_OK;
}
static kv_status ro_put(kv_db *db, const void *k, size_t kl, const void *v, size_t vl)
{
    (void)db, (void)k, (void)kl, (void)v, (void)vl;
    ro_writes++;
    return KV_OK;
}
static kv_status ro_get(kv_db *db, const void *k, size_t kl, void **v, size_t *vl)
{
    (void)db, (void)k, (void)kl, (void)v, (void)vl;
    return KV_NOT_FOUND;
}
static kv_status ro_del(kv_db *db, const void *k, size_t kl)
{
    (void)db, (void)k, (void)kl;
    ro_writes++;
    return KV_OK;
}
static kv_status ro_write(kv_db *db, const kv_batch *b)
{
    (void)db, (void)b;
    ro_writes++;
    return KV_OK;
}
static kv_status ro_sync(kv_db *db)
{
    (void)db;
    ro_writes++;
    return KV_OK;
}

static const kv_engine ro_engine = {
    .name = "rotest",
    .description = "a test engine",
    .limits = {KV_MAX_KEY, KV_MAX_VALUE},
    .durability_mask = KV_DURABILITY_BIT(KV_DURABILITY_OS),
    .format = 1,
    .read_only = true,
    .open = ro_open,
    .close = ro_close,
    .put = ro_put,
    .get = ro_get,
    .del = ro_del,
    .write = ro_write,
    .sync = ro_sync,
};

/* Read-only opens never create: a missing directory stays missing, an empty one empty. Every
 * registered engine with a read-only open, and this test's own. */
static void test_read_only_never_creates(void **state)
{
    (void)state;
    const kv_engine *engines[64];
    size_t n = 0;
    for (size_t j = 0; kv_registry[j]; j++)
        if (kv_registry[j]->read_only)
            engines[n++] = kv_registry[j];
    engines[n++] = &ro_engine;
    for (size_t j = 0; j < n; j++) {
        kv_options o;
        kv_options_init(&o);
        o.read_only = true;
        char *dir = path_in(root, "missing");
        kv_db *db = NULL;
        assert_int_equal(kv_open_engine(engines[j], dir, &o, &db), KV_NOT_FOUND);
        assert_int_equal(access(dir, F_OK), -1);
        assert_int_equal(mkdir(dir, 0755), 0);
        assert_int_equal(kv_open_engine(engines[j], dir, &o, &db), KV_NOT_FOUND);
        char *st = tu_dir_state(dir);
        assert_string_equal(st, "");
        free(st);
        tu_rmtree(dir);
        free(dir);
    }
}

static void test_read_only_handle(void **state)
{
    (void)state;
    char *dir = tu_mkdtemp("rotest");
    kv_db *w;
    OK(kv_open_engine(&ro_engine, dir, NULL, &w));
    assert_false(kv_db_read_only(w));
    kv_options o;
    kv_options_init(&o);
    o.read_only = true;
    kv_db *r1 = NULL, *r2 = NULL;
    /* A writer and a reader exclude each other, both ways; readers share. */
    assert_int_equal(kv_open_engine(&ro_engine, dir, &o, &r1), KV_BUSY);
    OK(kv_close(w));
    char *before = tu_dir_state(dir);
    OK(kv_open_engine(&ro_engine, dir, &o, &r1));
    OK(kv_open_engine(&ro_engine, dir, &o, &r2));
    assert_true(((ro_db *)r1)->read_only);
    assert_true(kv_db_read_only(r1));
    assert_int_equal(kv_open_engine(&ro_engine, dir, NULL, &w), KV_BUSY);
    /* Writes never reach the engine. */
    ro_writes = 0;
    assert_int_equal(kv_put(r1, "a", 1, "b", 1), KV_INVALID);
    assert_non_null(strstr(kv_errmsg(), "read-only"));
    assert_int_equal(kv_delete(r1, "a", 1), KV_INVALID);
    kv_batch *b = kv_batch_new();
    OK(kv_batch_put(b, "a", 1, "b", 1));
    assert_int_equal(kv_write(r1, b), KV_INVALID);
    kv_batch_free(b);
    OK(kv_sync(r1));
    assert_int_equal(ro_writes, 0);
    OK(kv_close(r1));
    OK(kv_close(r2));
    char *after = tu_dir_state(dir);
    assert_string_equal(before, after);
    free(before);
    free(after);
    /* An engine without a read-only open refuses the option. */
    kv_engine plain = ro_engine;
    plain.read_only = false;
    assert_int_equal(kv_open_engine(&plain, dir, &o, &r1), KV_NOTSUP);
    tu_rmtree(dir);
    free(dir);
}

static int setup(void **state)
{
    (void)state;
    root = tu_mkdtemp("identity");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_rmtree(root);
    free(root);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_pair_refused),
        cmocka_unit_test(test_foreign_directory),
        cmocka_unit_test(test_read_only_never_creates),
        cmocka_unit_test(test_damaged_identity),
        cmocka_unit_test(test_other_format),
        cmocka_unit_test(test_leftover_tmp_is_new),
        cmocka_unit_test(test_read_only_handle),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
