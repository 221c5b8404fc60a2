/* crashfs (bench/crash/crashfs.h): the power-loss model behind FUSE. Its rules on small files
 * (a child process uses the mount, the test reads the backing directory after the power loss);
 * the broken toy engine caught through it as through faultfs; the faultfs and crashfs verdicts
 * agreeing on the kvlab engines; the production peers keeping `sync` under power loss; and the
 * `kvlab crash --fs` command's exit codes. Without FUSE the whole program says so in one line
 * and is skipped (exit 77). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "crash.h"
#include "crash_tmp.h"
#include "crashfs.h"
#include "testutil.h"
#include "toy_engine.h"

static char *workdir;
static uint64_t seed;

/* A mount for one test: backing, mount point and scratch under a fresh directory. */
typedef struct mnt {
    char *root, *backing, *point, *scratch;
    crashfs *c;
} mnt;

static char *cat(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

static void mnt_up(mnt *m)
{
    static int seq;
    char name[32];
    snprintf(name, sizeof name, "m%d", ++seq);
    m->root = cat(workdir, name);
    m->backing = cat(m->root, "b");
    m->point = cat(m->root, "m");
    m->scratch = cat(m->root, "s");
    assert_int_equal(mkdir(m->root, 0755), 0);
    assert_int_equal(mkdir(m->backing, 0755), 0);
    assert_int_equal(mkdir(m->point, 0755), 0);
    assert_int_equal(crashfs_mount(m->backing, m->point, m->scratch, &m->c), KV_OK);
}

static void mnt_down(mnt *m)
{
    crashfs_unmount(m->c);
    tu_rmtree(m->root);
    free(m->root);
    free(m->backing);
    free(m->point);
    free(m->scratch);
}

/* Runs fn(dir) in a child process that uses the mount; returns its exit code (0 = all good). */
static int in_child(mnt *m, int (*fn)(const char *dir))
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        crashfs_close_in_child(m->c);
        _exit(fn(m->point));
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

static int put_file(const char *dir, const char *name, const char *data, int sync)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0 || write(fd, data, strlen(data)) != (ssize_t)strlen(data))
        return 1;
    if (sync == 1 && fdatasync(fd) != 0)
        return 2;
    if (sync == 2 && fsync(fd) != 0)
        return 2;
    return close(fd) == 0 ? 0 : 3;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return 1;
    int rc = fsync(fd);
    close(fd);
    return rc == 0 ? 0 : 1;
}

static bool has(const mnt *m, const char *name, const char *want)
{
    char p[4096], buf[256];
    snprintf(p, sizeof p, "%s/%s", m->backing, name);
    int fd = open(p, O_RDONLY);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0)
        return false;
    buf[n] = '\0';
    return want ? strcmp(buf, want) == 0 : true;
}

/* Names: durable only after an fsync of their directory; data after fdatasync or fsync; reads
 * see what is not yet durable. */
static int names_and_data(const char *d)
{
    char p[4096], q[4096], buf[64];
    if (put_file(d, "synced", "data", 1) || fsync_dir(d))
        return 10;
    if (put_file(d, "fsynced", "more", 2) || fsync_dir(d))
        return 11;
    if (put_file(d, "unnamed", "lost name", 1)) /* data synced, name not */
        return 12;
    snprintf(p, sizeof p, "%s/synced", d);
    int fd = open(p, O_WRONLY | O_APPEND);
    if (fd < 0 || write(fd, "+tail", 5) != 5) /* appended, never synced */
        return 13;
    close(fd);
    fd = open(p, O_RDONLY);
    if (fd < 0 || read(fd, buf, sizeof buf) != 9 || memcmp(buf, "data+tail", 9))
        return 14; /* the page cache view */
    close(fd);
    snprintf(p, sizeof p, "%s/fsynced", d);
    snprintf(q, sizeof q, "%s/renamed", d);
    if (rename(p, q) != 0) /* never made durable */
        return 15;
    snprintf(p, sizeof p, "%s/sub", d);
    if (mkdir(p, 0755) != 0 || put_file(p, "x", "x", 1) || fsync_dir(p))
        return 16; /* the new directory's own entry is not durable: it goes with it */
    return 0;
}

static void test_model_names_and_data(void **state)
{
    (void)state;
    mnt m;
    mnt_up(&m);
    assert_int_equal(in_child(&m, names_and_data), 0);
    assert_true(crashfs_ops(m.c) >= 14);
    assert_int_equal(crashfs_power_loss(m.c, KV_CRASH_LOSE, seed), KV_OK);
    assert_true(has(&m, "synced", "data"));
    assert_true(has(&m, "fsynced", "more")); /* the rename was undone */
    assert_false(has(&m, "renamed", NULL));
    assert_false(has(&m, "unnamed", NULL));
    assert_false(has(&m, "sub/x", NULL));
    mnt_down(&m);
}

/* mmap: a shared writable mapping written and msync'd is durable; unmapped pages that were never
 * synced are lost. */
static int mapped(const char *d)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/map", d);
    int fd = open(p, O_CREAT | O_RDWR, 0644);
    if (fd < 0 || ftruncate(fd, 8192) != 0 || fsync(fd) != 0 || fsync_dir(d))
        return 20;
    char *a = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (a == MAP_FAILED)
        return 21;
    memcpy(a, "first page", 10);
    if (msync(a, 4096, MS_SYNC) != 0 || fdatasync(fd) != 0)
        return 22;
    memcpy(a + 4096, "second page", 11); /* written back at munmap, never synced */
    if (munmap(a, 8192) != 0)
        return 23;
    char buf[16];
    if (pread(fd, buf, 11, 4096) != 11 || memcmp(buf, "second page", 11))
        return 24;
    close(fd);
    return 0;
}

static void test_model_mmap(void **state)
{
    (void)state;
    mnt m;
    mnt_up(&m);
    assert_int_equal(in_child(&m, mapped), 0);
    assert_int_equal(crashfs_power_loss(m.c, KV_CRASH_LOSE, seed), KV_OK);
    char p[4096], buf[8192];
    snprintf(p, sizeof p, "%s/map", m.backing);
    int fd = open(p, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, buf, sizeof buf), 8192);
    close(fd);
    assert_memory_equal(buf, "first page", 10);
    for (int i = 4096; i < 8192; i++)
        assert_int_equal(buf[i], 0);
    mnt_down(&m);
}

/* The crash point: operation n is not carried out, it and every later request fail with EIO. */
static int four_writes(const char *d)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/f", d);
    int fd = open(p, O_CREAT | O_WRONLY, 0644); /* operation 1 */
    if (fd < 0)
        return 30;
    int ok = 0;
    for (int i = 0; i < 4; i++) /* operations 2..5 */
        ok += write(fd, "abcd", 4) == 4;
    int e = errno;
    struct stat st;
    bool stat_fails = stat(p, &st) != 0;
    return ok == 2 && e == EIO && stat_fails ? 0 : 31;
}

static void test_crash_at(void **state)
{
    (void)state;
    mnt m;
    mnt_up(&m);
    crashfs_set_crash_at(m.c, 4);
    assert_int_equal(in_child(&m, four_writes), 0);
    assert_true(crashfs_crashed(m.c));
    assert_true(crashfs_crash_ns(m.c) > 0);
    assert_int_equal(crashfs_power_loss(m.c, KV_CRASH_KEEP, seed), KV_OK);
    assert_true(has(&m, "f", "abcdabcd")); /* keep: a process crash keeps what was carried out */
    mnt_down(&m);
}

static crash_config toy_cfg(kv_durability_kind mode, kv_crash_policy policy, size_t ops,
                            const char *const *options, size_t n_options)
{
    crash_config c;
    crash_config_init(&c);
    c.engine_vt = &toy_engine;
    c.durability.kind = mode;
    c.policy = policy;
    c.workload = "mixed";
    c.ops = ops;
    c.seed = seed;
    c.keys = 50;
    c.options = options;
    c.n_options = n_options;
    c.workdir = workdir;
    c.log = stderr;
    c.fs = CRASH_FS_FUSE;
    return c;
}

/* The deliberately broken toy engines are caught through crashfs as through faultfs, and the
 * correct toy passes the same runs. */
static void test_broken_toy_caught(void **state)
{
    (void)state;
    static const char *const nosync[] = {"broken=nosync"};
    static const char *const nodirsync[] = {"broken=nodirsync"};
    const struct {
        const char *const *opt;
        const char *name;
    } bugs[] = {{nosync, "nosync"}, {nodirsync, "nodirsync"}};
    for (size_t i = 0; i < 2; i++) {
        for (int f = 0; f < 2; f++) {
            crash_config c = toy_cfg(KV_DURABILITY_SYNC, KV_CRASH_LOSE, 40, bugs[i].opt, 1);
            c.fs = f ? CRASH_FS_FUSE : CRASH_FS_FAULTFS;
            c.log = NULL; /* the expected violations: the line below sums them up */
            crash_result r;
            assert_int_equal(crash_run(&c, &r), KV_OK);
            fprintf(stderr, "  %s on %s: %llu violations of %llu points, first: %s\n", bugs[i].name,
                    f ? "crashfs" : "faultfs", (unsigned long long)r.violations,
                    (unsigned long long)r.points, r.first_violation);
            assert_true(r.violations > 0);
            assert_true(r.lost_violations > 0);
        }
    }
    crash_config c = toy_cfg(KV_DURABILITY_SYNC, KV_CRASH_LOSE, 40, NULL, 0);
    crash_result r;
    assert_int_equal(crash_run(&c, &r), KV_OK);
    assert_int_equal(r.violations, 0);
    assert_true(r.points > 10);
    assert_int_equal(r.lost_writes, 0);
    /* the same bug is invisible to a process crash through crashfs too */
    c = toy_cfg(KV_DURABILITY_SYNC, KV_CRASH_KEEP, 40, nosync, 1);
    assert_int_equal(crash_run(&c, &r), KV_OK);
    assert_int_equal(r.violations, 0);
}

/* On the kvlab engines the two models give the same verdict for the same workload, seed and
 * policy, and both see `os` lose acknowledged writes under power loss while `sync` loses none. */
static void test_models_agree(void **state)
{
    (void)state;
    const char *engines[] = {"wal", "bitcask", "lsm", "btree"};
    const kv_crash_policy pols[] = {KV_CRASH_RANDOM, KV_CRASH_TORN};
    for (size_t e = 0; e < 4; e++) {
        if (!kv_engine_exists(engines[e]))
            continue;
        for (int mode = KV_DURABILITY_OS; mode <= KV_DURABILITY_SYNC; mode += 2) {
            for (size_t p = 0; p < 2; p++) {
                crash_result r[2];
                for (int f = 0; f < 2; f++) {
                    crash_config c;
                    crash_config_init(&c);
                    c.engine = engines[e];
                    c.durability.kind = (kv_durability_kind)mode;
                    c.policy = pols[p];
                    c.ops = 80;
                    c.points = 25;
                    c.seed = seed;
                    c.workdir = workdir;
                    c.log = stderr;
                    c.fs = f ? CRASH_FS_FUSE : CRASH_FS_FAULTFS;
                    assert_int_equal(crash_run(&c, &r[f]), KV_OK);
                }
                fprintf(stderr,
                        "  %s %s %s: faultfs %llu/%llu lost, %llu violations; crashfs "
                        "%llu/%llu lost, %llu violations\n",
                        engines[e], mode == KV_DURABILITY_OS ? "os" : "sync",
                        kv_crash_policy_name(pols[p]), (unsigned long long)r[0].lost_writes,
                        (unsigned long long)r[0].acked_writes, (unsigned long long)r[0].violations,
                        (unsigned long long)r[1].lost_writes, (unsigned long long)r[1].acked_writes,
                        (unsigned long long)r[1].violations);
                assert_int_equal(r[0].violations, 0);
                assert_int_equal(r[1].violations, 0);
                if (mode == KV_DURABILITY_SYNC) {
                    assert_int_equal(r[0].lost_writes, 0);
                    assert_int_equal(r[1].lost_writes, 0);
                } else {
                    assert_true(r[0].lost_writes > 0);
                    assert_true(r[1].lost_writes > 0);
                }
            }
        }
    }
}

/* Each production peer keeps `sync` through a power loss on crashfs, and `os` loses
 * acknowledged writes there (which a kill never shows). */
static void test_peers_power_loss(void **state)
{
    (void)state;
    const char *peers[] = {"leveldb", "rocksdb", "lmdb", "sqlite"};
    for (size_t i = 0; i < 4; i++) {
        if (!kv_engine_exists(peers[i])) {
            fprintf(stderr, "  %s not built: skipped\n", peers[i]);
            continue;
        }
        crash_config c;
        crash_config_init(&c);
        c.engine = peers[i];
        c.durability.kind = KV_DURABILITY_SYNC;
        c.ops = 80;
        c.points = 20;
        c.seed = seed;
        c.workdir = workdir;
        c.log = stderr;
        c.fs = CRASH_FS_FUSE;
        crash_result r;
        assert_int_equal(crash_run(&c, &r), KV_OK);
        fprintf(stderr, "  %s sync: %llu points, %llu violations, %llu lost\n", peers[i],
                (unsigned long long)r.points, (unsigned long long)r.violations,
                (unsigned long long)r.lost_writes);
        if (r.violations || r.lost_writes || r.points != 20)
            fail_msg("%s sync through crashfs: %llu of 20 points, %llu violations, first: %s",
                     peers[i], (unsigned long long)r.points, (unsigned long long)r.violations,
                     r.first_violation);
        c.durability.kind = KV_DURABILITY_OS;
        c.policy = KV_CRASH_LOSE;
        assert_int_equal(crash_run(&c, &r), KV_OK);
        fprintf(stderr, "  %s os, lose: %llu of %llu acknowledged writes lost\n", peers[i],
                (unsigned long long)r.lost_writes, (unsigned long long)r.acked_writes);
        assert_true(r.lost_writes > 0);
    }
}

static int run(const char *first, ...)
{
    char *argv[40];
    int argc = 0;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < 38; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    return kvlab_cmd_crash(argc, argv);
}

static void test_cli(void **state)
{
    (void)state;
    assert_int_equal(run("--engine", "x", "--fs", "nfs", NULL), 2);
    if (kv_engine_exists("wal"))
        assert_int_equal(run("--engine", "wal", "--durability", "sync", "--fs", "fuse", "--ops",
                             "40", "--points", "8", "--workdir", workdir, NULL),
                         0);
    if (kv_engine_exists("sqlite")) {
        /* a peer runs through crashfs by default, and never on faultfs */
        assert_int_equal(run("--engine", "sqlite", "--durability", "sync", "--ops", "40",
                             "--points", "8", "--workdir", workdir, NULL),
                         0);
        assert_int_equal(run("--engine", "sqlite", "--fs", "faultfs", NULL), 2);
        /* without FUSE: one line, exit 3 */
        setenv("KVLAB_FUSE_DEVICE", "/nonexistent/fuse", 1);
        assert_int_equal(run("--engine", "sqlite", "--ops", "40", "--workdir", workdir, NULL), 3);
        unsetenv("KVLAB_FUSE_DEVICE");
    }
}

static int setup(void **state)
{
    (void)state;
    workdir = crash_test_tmp("crashfs");
    seed = tu_seed(5);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tu_rmtree(workdir);
    free(workdir);
    return 0;
}

int main(void)
{
    char why[200];
    if (!crashfs_available(why, sizeof why)) {
        printf("crash.crashfs skipped: %s\n", why);
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_names_and_data),
        cmocka_unit_test(test_model_mmap),
        cmocka_unit_test(test_crash_at),
        cmocka_unit_test(test_broken_toy_caught),
        cmocka_unit_test(test_models_agree),
        cmocka_unit_test(test_peers_power_loss),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
