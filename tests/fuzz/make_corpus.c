/* make-corpus: writes seed corpora for the fuzz_* targets from real files that the engines
 * themselves write (fuzz_templates.h) into OUT/<target>/ (OUT is the build's fuzz-corpus
 * directory; run-smoke.sh runs this first). Seeds are named "seed-*" and overwritten on every
 * run; files the fuzzer added to a corpus are left alone.
 * Usage: make-corpus OUT_DIR */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bc_format.h"
#include "crc.h"
#include "fuzz_templates.h"
#include "fuzz_util.h"
#include "lsm_int.h"
#include "reclog.h"
#include "sst_int.h"

extern const kv_engine kv_engine_wal, kv_engine_lsm, kv_engine_btree, kv_engine_bitcask;

static const char *out;
static int seeds;

static void seed(const char *target, const char *name, const void *data, size_t n)
{
    char *dir = fz_strf("%s/%s", out, target);
    mkdir(out, 0755);
    mkdir(dir, 0755);
    char *p = fz_strf("%s/seed-%s", dir, name);
    fz_write(p, data, n);
    seeds++;
    free(p);
    free(dir);
}

/* Seeds target with every file of dir matching prefix/suffix (at most max, largest names
 * first is not needed: directory order). */
static void seed_files(const char *target, const char *dir, const char *prefix, const char *suffix,
                       int max)
{
    DIR *d = opendir(dir);
    if (!d)
        fz_die(dir);
    struct dirent *de;
    size_t pl = strlen(prefix), sl = strlen(suffix);
    while ((de = readdir(d)) && max > 0) {
        size_t nl = strlen(de->d_name);
        if (de->d_name[0] == '.' || nl < pl + sl || strncmp(de->d_name, prefix, pl) ||
            strcmp(de->d_name + nl - sl, suffix))
            continue;
        char *p = fz_strf("%s/%s", dir, de->d_name);
        size_t n;
        uint8_t *b = fz_read(p, &n);
        if (b) {
            seed(target, de->d_name, b, n);
            max--;
        }
        free(b);
        free(p);
    }
    closedir(d);
}

static void seed_block(const char *name, int mode, const uint8_t *file, size_t fsize, uint64_t off,
                       uint64_t size)
{
    if (off + size + SST_TRAILER_SIZE > fsize)
        return;
    uint8_t *b = malloc(size + SST_TRAILER_SIZE + 1);
    if (!b)
        fz_die("out of memory");
    b[0] = (uint8_t)mode;
    memcpy(b + 1, file + off, size);
    seed("fuzz_sstable_block", name, b, size + 1); /* the target appends the trailer */
    b[0] = (uint8_t)(mode | 0x80);
    memcpy(b + 1, file + off, size + SST_TRAILER_SIZE);
    char *n2 = fz_strf("%s-trailer", name);
    seed("fuzz_sstable_block", n2, b, size + SST_TRAILER_SIZE + 1);
    free(n2);
    free(b);
}

static void sstable_seeds(kv_fs *fs, const char *root)
{
    char *dir = fz_strf("%s/sst", root);
    fz_fresh_dir(dir);
    sst_writer_opts o;
    sst_writer_opts_init(&o);
    o.block_size = 256;
    o.restart_interval = 4;
    sst_writer *w = NULL;
    if (sst_writer_new(fs, dir, "000001.sst", &sst_bytewise, &o, &w) != KV_OK)
        fz_die("sst_writer_new");
    for (unsigned i = 0; i < 60; i++) {
        char k[16], v[64];
        int kl = snprintf(k, sizeof k, "k%07u", i * 3);
        int vl = snprintf(v, sizeof v, "value-%u-%.*s", i, (int)(i % 30),
                          "abcdefghijklmnopqrstuvwxyz0123");
        if (sst_writer_add(w, k, (size_t)kl, v, (size_t)vl) != KV_OK)
            fz_die("sst_writer_add");
    }
    if (sst_writer_finish(w, NULL) != KV_OK)
        fz_die("sst_writer_finish");
    char *p = fz_strf("%s/000001.sst", dir);
    size_t n;
    uint8_t *f = fz_read(p, &n);
    if (!f || n < SST_FOOTER_SIZE)
        fz_die("read table");
    seed("fuzz_sstable", "bytewise.sst", f, n);
    const uint8_t *foot = f + n - SST_FOOTER_SIZE;
    sst_handle fh, ph, ih;
    uint64_t id;
    if (sst_footer_decode(p, n - SST_FOOTER_SIZE, foot, &fh, &ph, &ih, &id) != KV_OK)
        fz_die("footer");
    seed_block("index", 1, f, n, ih.off, ih.size);
    seed_block("props", 2, f, n, ph.off, ph.size);
    if (fh.size)
        seed_block("filter", 3, f, n, fh.off, fh.size);
    /* The first data block: the first index entry's handle. */
    uint8_t *raw = malloc(ih.size + SST_TRAILER_SIZE);
    memcpy(raw, f + ih.off, ih.size + SST_TRAILER_SIZE);
    sst_block *ib = NULL;
    if (sst_block_make(p, ih.off, raw, ih.size, &ib) != KV_OK)
        fz_die("index block");
    sst_block_iter it;
    sst_bi_init(&it, ib, &sst_bytewise, p, ih.off);
    int nb = 0;
    for (sst_bi_seek_first(&it); sst_bi_valid(&it) && nb < 2; sst_bi_next(&it), nb++) {
        sst_handle h;
        if (sst_handle_decode(it.val, it.vlen, &h)) {
            char *name = fz_strf("data%d", nb);
            seed_block(name, 0, f, n, h.off, h.size);
            free(name);
        }
    }
    sst_bi_free(&it);
    sst_block_unref(ib);
    /* Footer + header probe: mode 3 over the whole table. */
    uint8_t *all = malloc(n + 1);
    all[0] = 3;
    memcpy(all + 1, f, n);
    seed("fuzz_sstable_block", "table-footer", all, n + 1);
    free(all);
    free(f);
    free(p);
    free(dir);
}

/* Seeds fuzz_lsm_edit with the payloads of the manifest's edit records (lsm_int.h, reclog.h). */
static void edit_seeds(const char *path)
{
    size_t n;
    uint8_t *b = fz_read(path, &n);
    if (!b || n < LSM_LOG_HEADER)
        fz_die("read manifest");
    uint32_t crc_seed = kv_reclog_seed(lsm_log_salt(kv_get_u64(b + 24), kv_get_u64(b + 16)));
    uint64_t off = LSM_LOG_HEADER;
    kv_reclog_rec r;
    int k = 0;
    while (k < 8 && kv_reclog_decode(b, n, off, crc_seed, &r, NULL) == KV_RECLOG_OK) {
        if (r.type == LSM_REC_EDIT) {
            char name[32];
            snprintf(name, sizeof name, "edit%d", k++);
            seed("fuzz_lsm_edit", name, r.payload, r.len);
        }
        off += KV_RECLOG_FRAME + r.len;
    }
    if (k == 0)
        fz_die("no edit in the manifest");
    free(b);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make-corpus OUT_DIR\n");
        return 2;
    }
    out = argv[1];
    const char *root = fz_root();
    kv_fs *fs = kv_fs_posix();
    if (!fs)
        fz_die("kv_fs_posix");

    /* wal */
    char *c = fz_strf("%s/wal-closed", root), *x = fz_strf("%s/wal-crashed", root);
    fz_make_template(&kv_engine_wal, c, x);
    seed_files("fuzz_wal_segment", x, "", ".wal", 6);
    seed_files("fuzz_wal_record", x, "", ".wal", 3);
    seed_files("fuzz_wal_snapshot", c, "SNAPSHOT", "", 1);
    seed_files("fuzz_wal_snapshot", x, "SNAPSHOT", "", 1);
    free(c), free(x);

    /* sstable */
    sstable_seeds(fs, root);

    /* lsm */
    c = fz_strf("%s/lsm-closed", root), x = fz_strf("%s/lsm-crashed", root);
    fz_make_template(&kv_engine_lsm, c, x);
    seed_files("fuzz_lsm_manifest", c, "MANIFEST-", "", 2);
    seed_files("fuzz_lsm_wal", x, "", ".log", 4);
    seed_files("fuzz_sstable", c, "", ".sst", 3);
    char *m = fz_find(c, "MANIFEST-", "");
    if (m) {
        char *mp = fz_strf("%s/%s", c, m);
        edit_seeds(mp);
        free(mp);
        free(m);
    }
    free(c), free(x);

    /* btree */
    c = fz_strf("%s/btree-closed", root), x = fz_strf("%s/btree-crashed", root);
    fz_make_template(&kv_engine_btree, c, x);
    seed_files("fuzz_btree_file", c, "btree.db", "", 1);
    seed_files("fuzz_btree_log", x, "btree.wal", "", 1);
    char *dbp = fz_strf("%s/btree.db", c);
    size_t n;
    uint8_t *db = fz_read(dbp, &n);
    int have[8] = {0};
    for (size_t off = 0; db && off + 4096 <= n; off += 4096) {
        uint8_t type = off ? db[off + 4] : 0;
        if (type < 8 && have[type] < 3) { /* a few pages of every type */
            have[type]++;
            char name[32];
            snprintf(name, sizeof name, "page%zu", off / 4096);
            seed("fuzz_btree_page", name, db + off, 4096);
        }
    }
    free(db);
    free(dbp);
    free(c), free(x);

    /* bitcask */
    c = fz_strf("%s/bitcask-closed", root), x = fz_strf("%s/bitcask-crashed", root);
    fz_make_template(&kv_engine_bitcask, c, x);
    seed_files("fuzz_bitcask_record", x, "", ".data", 4);
    seed_files("fuzz_bitcask_hint", c, "", ".hint", 4);
    seed_files("fuzz_bitcask_hint", c, BC_MANIFEST_NAME, "", 1);
    free(c), free(x);

    kv_fs_destroy(fs);
    printf("make-corpus: %d seed files in %s\n", seeds, out);
    return 0;
}
