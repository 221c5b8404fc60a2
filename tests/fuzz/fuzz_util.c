/* fuzz_util.c: see fuzz_util.h. */
#include "fuzz_util.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_templates.h"
#include "kv.h"

static char *root;

static void cleanup(void)
{
    if (root)
        fz_rmtree(root);
    free(root);
    root = NULL;
}

void fz_die(const char *what)
{
    fprintf(stderr, "fuzz: %s: %s\n", what, kv_errmsg());
    abort();
}

char *fz_strf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        fz_die("out of memory");
    return s;
}

const char *fz_root(void)
{
    if (!root) {
        const char *base = getenv("KVLAB_FUZZ_TMP");
        root = fz_strf("%s/kvlab-fuzz-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(root))
            fz_die("mkdtemp");
        atexit(cleanup);
    }
    return root;
}

void fz_write(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0)
        fz_die(path);
}

uint8_t *fz_read(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    uint8_t *b = malloc(cap);
    size_t got;
    while (b && (got = fread(b + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            uint8_t *nb = realloc(b, cap *= 2);
            if (!nb)
                free(b);
            b = nb;
        }
    }
    fclose(f);
    if (!b)
        fz_die("out of memory");
    *n = len;
    return b;
}

void fz_rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        unlink(dir);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char *p = fz_strf("%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            fz_rmtree(p);
        else
            unlink(p);
        free(p);
    }
    closedir(d);
    rmdir(dir);
}

void fz_fresh_dir(const char *dir)
{
    fz_rmtree(dir);
    if (mkdir(dir, 0755) != 0)
        fz_die(dir);
}

void fz_copy_dir(const char *src, const char *dst)
{
    fz_fresh_dir(dst);
    DIR *d = opendir(src);
    if (!d)
        fz_die(src);
    struct dirent *de;
    while ((de = readdir(d))) {
        char *p = fz_strf("%s/%s", src, de->d_name);
        struct stat st;
        if (de->d_name[0] != '.' && strcmp(de->d_name, "KVLAB.LOCK") && stat(p, &st) == 0 &&
            S_ISREG(st.st_mode)) {
            size_t n = 0;
            uint8_t *b = fz_read(p, &n);
            char *q = fz_strf("%s/%s", dst, de->d_name);
            fz_write(q, b, n);
            free(q);
            free(b);
        }
        free(p);
    }
    closedir(d);
}

char *fz_find(const char *dir, const char *prefix, const char *suffix)
{
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    char *out = NULL;
    size_t sl = strlen(suffix), pl = strlen(prefix);
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t nl = strlen(de->d_name);
        if (de->d_name[0] != '.' && nl >= sl + pl && !strncmp(de->d_name, prefix, pl) &&
            !strcmp(de->d_name + nl - sl, suffix) && (!out || strcmp(de->d_name, out) > 0)) {
            free(out);
            out = fz_strf("%s", de->d_name);
        }
    }
    closedir(d);
    return out;
}

void fz_tmpl_init(fz_tmpl *t, const kv_engine *e)
{
    if (t->e)
        return;
    t->e = e;
    t->closed = fz_strf("%s/%s-closed", fz_root(), e->name);
    t->crashed = fz_strf("%s/%s-crashed", fz_root(), e->name);
    t->work = fz_strf("%s/%s-work", fz_root(), e->name);
    fz_make_template(e, t->closed, t->crashed);
}

kv_status fz_tmpl_run(fz_tmpl *t, const char *src, const char *name, const uint8_t *data,
                      size_t size)
{
    fz_copy_dir(src, t->work);
    char *p = fz_strf("%s/%s", t->work, name);
    fz_write(p, data, size);
    free(p);
    return fz_open_and_read(t->e, t->work, false);
}

void fz_tmpl_run_sealed(fz_tmpl *t, const char *src, const char *name, const uint8_t *data,
                        size_t size, fz_seal_fn seal)
{
    (void)fz_tmpl_run(t, src, name, data, size);
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return;
    memcpy(copy, data, size);
    if (seal(copy, size))
        (void)fz_tmpl_run(t, src, name, copy, size);
    free(copy);
}

kv_status fz_open_and_read(const kv_engine *e, const char *dir, bool create)
{
    kv_options o;
    kv_options_init(&o);
    o.create_if_missing = create;
    kv_db *db = NULL;
    kv_status s = kv_open_engine(e, dir, &o, &db);
    if (s != KV_OK) {
        if (s != KV_CORRUPTION && s != KV_IO) {
            fprintf(stderr, "%s: open of a damaged file returned %s: %s\n", e->name, kv_strerror(s),
                    kv_errmsg());
            abort();
        }
        return s;
    }
    (void)kv_check(db);
    kv_iter *it = NULL;
    if (kv_iter_new(db, &it) == KV_OK) {
        size_t n = 0;
        for (kv_iter_seek_first(it); kv_iter_valid(it) && n < 100000; kv_iter_next(it), n++) {
            size_t kl, vl;
            const uint8_t *k = kv_iter_key(it, &kl);
            const uint8_t *v = kv_iter_value(it, &vl);
            volatile uint8_t sink = 0;
            if (kl)
                sink ^= k[0] ^ k[kl - 1];
            if (vl)
                sink ^= v[0] ^ v[vl - 1];
            (void)sink;
            if (n < 64) { /* point reads of what the iterator served */
                uint8_t *kc = malloc(kl ? kl : 1);
                if (kc) {
                    memcpy(kc, k, kl);
                    void *val = NULL;
                    size_t len = 0;
                    if (kv_get(db, kc, kl, &val, &len) == KV_OK)
                        kv_free(val);
                    free(kc);
                }
            }
        }
        kv_iter_free(it);
    }
    void *val = NULL;
    size_t len = 0;
    if (kv_get(db, "k0000001", 8, &val, &len) == KV_OK)
        kv_free(val);
    kv_close(db);
    return KV_OK;
}
