/* fuzz_open_damaged: libFuzzer target for "open a damaged directory" (the crash checker's
 * --damage mode, driven by coverage instead of a seed).
 *
 * At start-up every registered kvlab engine (peers excluded) and the crash tests' toy engine
 * write a clean directory with a seeded workload (bench/crash/crash_oracle.h). Each input then
 * picks an engine, a file and a damage (bytes XORed in, the file cut and new bytes appended, or
 * bytes overwritten), applies it to a fresh copy, and reopens it with the posix layer. The reopen
 * must fail with KV_CORRUPTION or KV_IO, or give a state in which every key is a workload key and
 * every value one that was written for that key; anything else aborts (a finding). Crashes, leaks
 * and hangs are libFuzzer's and AddressSanitizer's to report (run with -timeout=10).
 *
 * Input layout: [engine][file][kind][offset: 3 bytes LE][payload...]. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crash_int.h"
#include "toy_engine.h"

#define MAX_ENGINES 16
#define MAX_FILES   64

typedef struct tmpl {
    const kv_engine *e;
    char *dir;
    char *files[MAX_FILES];
    uint64_t sizes[MAX_FILES];
    size_t nfiles;
} tmpl;

static tmpl tmpls[MAX_ENGINES];
static size_t ntmpl;
static char *root, *work;
static crash_workload wl;

static void die(const char *what)
{
    fprintf(stderr, "fuzz_open_damaged: %s: %s\n", what, kv_errmsg());
    abort();
}

static void make_template(const kv_engine *e)
{
    tmpl *t = &tmpls[ntmpl];
    t->e = e;
    t->dir = crash_strf("%s/tmpl-%s", root, e->name);
    if (crash_mkdir_p(t->dir) != 0)
        die("mkdir");
    kv_options o;
    kv_options_init(&o);
    kv_db *db = NULL;
    if (kv_open_engine(e, t->dir, &o, &db) != KV_OK)
        die(e->name);
    kv_batch *b = kv_batch_new();
    for (size_t i = 0; i < wl.ncommits; i++)
        if (crash_workload_apply(db, &wl, i, b) != KV_OK)
            die(e->name);
    kv_batch_free(b);
    if (kv_close(db) != KV_OK)
        die(e->name);
    DIR *d = opendir(t->dir);
    struct dirent *de;
    while (d && (de = readdir(d)) && t->nfiles < MAX_FILES) {
        if (de->d_name[0] == '.' || !strcmp(de->d_name, "KVLAB.LOCK"))
            continue;
        char *p = crash_strf("%s/%s", t->dir, de->d_name);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
            t->files[t->nfiles] = strdup(de->d_name);
            t->sizes[t->nfiles++] = (uint64_t)st.st_size;
        }
        free(p);
    }
    if (d)
        closedir(d);
    if (t->nfiles)
        ntmpl++;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *base = getenv("KVLAB_FUZZ_TMP");
    root = crash_strf("%s/kvlab-fuzz-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(root))
        die("mkdtemp");
    work = crash_strf("%s/work", root);
    if (crash_workload_make("mixed", 300, 50, 60, 0, 1, &wl) != KV_OK)
        die("workload");
    for (size_t i = 0; kv_registry[i] && ntmpl < MAX_ENGINES - 1; i++)
        if (!crash_is_peer(kv_registry[i]->name))
            make_template(kv_registry[i]);
    make_template(&toy_engine);
    return 0;
}

/* Aborts when db serves a key or value that the workload never wrote. */
static void check_state(kv_db *db)
{
    kv_iter *it = NULL;
    if (kv_iter_new(db, &it) == KV_OK) {
        for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it)) {
            size_t kl, vl;
            const void *k = kv_iter_key(it, &kl);
            const void *v = kv_iter_value(it, &vl);
            uint32_t key;
            if (!crash_key_parse(k, kl, wl.keys, &key) || !crash_value_verify(&wl, key, v, vl)) {
                fprintf(stderr, "iterator served a key or value never written\n");
                abort();
            }
        }
        kv_iter_free(it);
    }
    for (uint32_t k = 0; k < wl.keys; k++) {
        char key[16];
        size_t kl = crash_key(k, key);
        void *v = NULL;
        size_t vl = 0;
        kv_status s = kv_get(db, key, kl, &v, &vl);
        if (s == KV_OK) {
            if (!crash_value_verify(&wl, k, v, vl)) {
                fprintf(stderr, "kv_get(k%07u) served a value never written for it\n", k);
                abort();
            }
            kv_free(v);
        } else if (s != KV_NOT_FOUND && s != KV_CORRUPTION && s != KV_IO) {
            fprintf(stderr, "kv_get(k%07u) returned %s\n", k, kv_strerror(s));
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 6 || ntmpl == 0)
        return 0;
    tmpl *t = &tmpls[data[0] % ntmpl];
    size_t fi = data[1] % t->nfiles;
    int kind = data[2] % 3;
    uint64_t off = (uint64_t)data[3] | ((uint64_t)data[4] << 8) | ((uint64_t)data[5] << 16);
    const uint8_t *pay = data + 6;
    size_t plen = size - 6;
    crash_rmtree(work);
    if (crash_mkdir_p(work) != 0 || crash_copy_dir(t->dir, work) != 0)
        die("copy");
    char *path = crash_strf("%s/%s", work, t->files[fi]);
    int fd = open(path, O_RDWR);
    free(path);
    if (fd < 0)
        die("open damaged file");
    uint64_t fsize = t->sizes[fi];
    off = fsize ? off % (fsize + 1) : 0;
    if (kind == 0) { /* XOR the payload in */
        uint8_t buf[4096];
        size_t n = plen < sizeof buf ? plen : sizeof buf;
        ssize_t got = pread(fd, buf, n, (off_t)off);
        for (ssize_t i = 0; i < got; i++)
            buf[i] ^= pay[i];
        if (got > 0 && pwrite(fd, buf, (size_t)got, (off_t)off) != got)
            die("pwrite");
    } else if (kind == 1) { /* cut at off, append the payload */
        if (ftruncate(fd, (off_t)off) != 0 || pwrite(fd, pay, plen, (off_t)off) != (ssize_t)plen)
            die("truncate");
    } else if (pwrite(fd, pay, plen, (off_t)off) != (ssize_t)plen) {
        die("pwrite");
    }
    close(fd);
    kv_options o;
    kv_options_init(&o);
    o.create_if_missing = false;
    kv_db *db = NULL;
    kv_status s = kv_open_engine(t->e, work, &o, &db);
    if (s == KV_OK) {
        (void)kv_check(db);
        check_state(db);
        kv_close(db);
    } else if (s != KV_CORRUPTION && s != KV_IO) {
        fprintf(stderr, "%s: open of a damaged directory returned %s: %s\n", t->e->name,
                kv_strerror(s), kv_errmsg());
        abort();
    }
    return 0;
}
