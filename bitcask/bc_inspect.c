/* bc_inspect.c: kv_check (every keydir entry points at a valid record holding its key with a
 * matching crc and sequence number; every data file parses cleanly; every hint file agrees
 * entry by entry with its data file) and kv_dump (every field of every file with offsets). */
#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "dump.h"
#include "bc_int.h"

/* ---- check ---- */

typedef struct snap_ent {
    size_t key_off;
    size_t klen;
    bc_loc loc;
} snap_ent;

typedef struct snap {
    snap_ent *e;
    size_t n, cap;
    kv_buf keys;
    bool oom;
} snap;

static void snap_one(void *ctx, const uint8_t *key, size_t klen, const bc_loc *loc, bool tomb)
{
    snap *s = ctx;
    if (s->oom)
        return;
    if (tomb) {
        s->oom = true; /* flagged below as a violation */
        return;
    }
    if (s->n == s->cap || !kv_buf_reserve(&s->keys, klen)) {
        s->oom = true;
        return;
    }
    s->e[s->n++] = (snap_ent){.key_off = s->keys.len, .klen = klen, .loc = *loc};
    kv_buf_append(&s->keys, key, klen);
}

typedef struct list_ctx {
    kv_buf out; /* seq u64 | offset u64 | size u32 | tomb u8 | klen u32 | key */
    size_t n;
} list_ctx;

static kv_status list_rec(void *ctx, const bc_rec *r)
{
    list_ctx *c = ctx;
    uint8_t h[25];
    kv_put_u64(h, r->seq);
    kv_put_u64(h + 8, r->offset);
    kv_put_u32(h + 16, r->rec_size);
    h[20] = r->tomb;
    kv_put_u32(h + 21, r->klen);
    if (!kv_buf_append(&c->out, h, sizeof h) || !kv_buf_append(&c->out, r->key, r->klen))
        return kv_error(KV_IO, "bitcask check: out of memory");
    c->n++;
    return KV_OK;
}

/* Parses a whole data file and compares it with its hint file when one exists. */
static kv_status check_file(bc_db *db, bc_file *f)
{
    uint64_t size = atomic_load(&f->size);
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return kv_error(KV_IO, "bitcask check: out of memory");
    list_ctx d = {0}, h = {0};
    uint64_t end;
    kv_status s = kv_file_read_exact(f->f, buf, size, 0);
    uint32_t kind;
    uint64_t id;
    if (s == KV_OK && (!bc_data_hdr_decode(buf, size, &kind, &id) || id != f->id))
        s = kv_error(KV_CORRUPTION, "%s: bad data file header at offset 0", f->f->path);
    if (s == KV_OK)
        s = bc_walk_data(f->f->path, buf, size, false, &end, list_rec, &d);
    free(buf);
    char *hp = bc_path(db, f->id, "hint");
    bool exists = false;
    if (s == KV_OK && f != db->active && hp && kv_fs_exists(db->fs, hp, &exists) == KV_OK &&
        exists) {
        void *hb = NULL;
        size_t hl = 0;
        s = kv_fs_read_file(db->fs, hp, UINT32_MAX, &hb, &hl);
        if (s == KV_OK)
            s = bc_walk_hint(hp, hb, hl, f->id, size, true, list_rec, &h);
        free(hb);
        if (s == KV_OK && (h.n != d.n || h.out.len != d.out.len ||
                           memcmp(h.out.data, d.out.data, d.out.len) != 0))
            s = kv_error(KV_CORRUPTION,
                         "%s: hint file disagrees with its data file (%zu vs %zu "
                         "entries)",
                         hp, h.n, d.n);
    }
    free(hp);
    kv_buf_free(&d.out);
    kv_buf_free(&h.out);
    return s;
}

kv_status bc_check(kv_db *kdb)
{
    bc_db *db = (bc_db *)kdb;
    /* data and hint files (the active one up to its flushed end) */
    pthread_mutex_lock(&db->wmu);
    kv_status s = bc_flush_locked(db);
    pthread_mutex_unlock(&db->wmu);
    pthread_rwlock_rdlock(&db->lock);
    size_t nf = db->nfiles;
    bc_file **files = malloc((nf ? nf : 1) * sizeof *files);
    if (files)
        for (size_t i = 0; i < nf; i++) {
            files[i] = db->files[i];
            bc_file_ref(files[i]);
        }
    pthread_rwlock_unlock(&db->lock);
    if (!files)
        return kv_error(KV_IO, "bitcask check: out of memory");
    for (size_t i = 0; i < nf && s == KV_OK; i++)
        s = check_file(db, files[i]);
    for (size_t i = 0; i < nf; i++)
        bc_file_unref(files[i]);
    free(files);
    if (s != KV_OK)
        return s;
    /* the sorted key index of iterators agrees with the keydir */
    pthread_rwlock_rdlock(&db->lock);
    bool ix_ok = bc_ix_verify(&db->ix, &db->kd);
    pthread_rwlock_unlock(&db->lock);
    if (!ix_ok)
        return kv_error(KV_CORRUPTION, "bitcask check: the sorted key index of iterators "
                                       "disagrees with the keydir (or out of memory)");
    /* the keydir */
    snap sn = {0};
    pthread_rwlock_rdlock(&db->lock);
    sn.cap = db->kd.count;
    sn.e = malloc((sn.cap ? sn.cap : 1) * sizeof *sn.e);
    if (sn.e)
        bc_kd_foreach(&db->kd, snap_one, &sn);
    bool count_ok = sn.n == db->kd.count;
    pthread_rwlock_unlock(&db->lock);
    if (!sn.e || sn.oom || !count_ok)
        s = kv_error(KV_CORRUPTION, "bitcask check: keydir holds a tombstone or miscounts keys "
                                    "(or out of memory)");
    for (size_t i = 0; i < sn.n && s == KV_OK; i++) {
        snap_ent *e = &sn.e[i];
        const uint8_t *key = sn.keys.data + e->key_off;
        /* skip entries a writer changed since the snapshot */
        bc_loc cur;
        pthread_rwlock_rdlock(&db->lock);
        bool same = bc_kd_get(&db->kd, key, e->klen, bc_hash(key, e->klen), &cur, NULL) &&
                    cur.file_id == e->loc.file_id && cur.offset == e->loc.offset;
        bc_file *f = same ? bc_files_find(db, e->loc.file_id) : NULL;
        pthread_rwlock_unlock(&db->lock);
        if (!same)
            continue;
        if (!f) {
            s = kv_error(KV_CORRUPTION, "bitcask check: keydir points at missing file %u",
                         e->loc.file_id);
            break;
        }
        uint8_t *rec;
        const uint8_t *v;
        size_t vl;
        s = bc_read_record(db, f, &e->loc, key, e->klen, &rec, &v, &vl);
        if (s == KV_OK)
            free(rec);
        bc_file_unref(f);
    }
    free(sn.e);
    kv_buf_free(&sn.keys);
    return s;
}

/* ---- dump ---- */

static kv_status dump_records(FILE *out, const char *name, const uint8_t *buf, size_t len,
                              size_t off, size_t end, int depth)
{
    while (off < end) {
        uint8_t fl;
        uint64_t seq;
        const uint8_t *k, *v;
        uint32_t kl, vl;
        size_t sz;
        bc_parse ps = bc_rec_parse(buf + off, end - off, &fl, &seq, &k, &kl, &v, &vl, &sz);
        if (ps != BC_PARSE_OK) {
            fprintf(out, "%*s@%zu: %s record (%zu bytes left): the log ends or is damaged here\n",
                    depth * 2, "", off, ps == BC_PARSE_SHORT ? "incomplete" : "bad", end - off);
            return kv_error(KV_CORRUPTION, "%s: bad record at offset %zu", name, off);
        }
        fprintf(out,
                "%*s@%zu: record crc=0x%08x seq=%" PRIu64 " key_size=%u value_size=%u flags=%u%s"
                " size=%zu\n",
                depth * 2, "", off, kv_get_u32(buf + off), seq, kl, vl, fl,
                (fl & BC_FLAG_BATCH)       ? " (batch)"
                : (fl & BC_FLAG_TOMBSTONE) ? " (tombstone)"
                : (fl & BC_FLAG_INNER)     ? " (batch operation)"
                                           : "",
                sz);
        if (fl & BC_FLAG_BATCH) {
            kv_status s = dump_records(out, name, buf, len, off + BC_REC_HDR, off + sz, depth + 1);
            if (s != KV_OK)
                return s;
        } else {
            fprintf(out, "%*s  key @%zu ", depth * 2, "", off + BC_REC_HDR);
            kv_dump_bytes(out, k, kl, 48);
            fprintf(out, "\n%*s  value @%zu ", depth * 2, "", off + BC_REC_HDR + kl);
            kv_dump_bytes(out, v, vl, 48);
            fputc('\n', out);
        }
        off += sz;
    }
    return KV_OK;
}

static kv_status dump_data(FILE *out, const char *name, const uint8_t *buf, size_t len)
{
    fprintf(out, "== %s: bitcask data file, %zu bytes\n", name, len);
    if (len < BC_DATA_HDR) {
        fprintf(out, "@0: header incomplete (%zu bytes)\n", len);
        return kv_error(KV_CORRUPTION, "%s: short header at offset 0", name);
    }
    uint32_t kind;
    uint64_t id;
    bool ok = bc_data_hdr_decode(buf, len, &kind, &id);
    fprintf(out, "@0: magic ");
    kv_dump_bytes(out, buf, 8, 48);
    fprintf(out, "\n@8: version %u\n@12: kind %u (%s)\n@16: file id %" PRIu64 "\n",
            kv_get_u32(buf + 8), kv_get_u32(buf + 12),
            kv_get_u32(buf + 12) == BC_KIND_MERGE ? "merge output" : "write", kv_get_u64(buf + 16));
    fprintf(out, "@24: header crc 0x%08x (%s)\n", kv_get_u32(buf + 24), ok ? "ok" : "BAD");
    if (!ok)
        return kv_error(KV_CORRUPTION, "%s: bad header at offset 0", name);
    return dump_records(out, name, buf, len, BC_DATA_HDR, len, 0);
}

static kv_status dump_hint(FILE *out, const char *name, const uint8_t *buf, size_t len)
{
    fprintf(out, "== %s: bitcask hint file, %zu bytes\n", name, len);
    if (len < BC_HINT_HDR) {
        fprintf(out, "@0: header incomplete\n");
        return kv_error(KV_CORRUPTION, "%s: short hint header at offset 0", name);
    }
    fprintf(out, "@0: magic ");
    kv_dump_bytes(out, buf, 8, 48);
    fprintf(out,
            "\n@8: version %u\n@16: file id %" PRIu64 "\n@24: data size %" PRIu64
            "\n@32: entries %" PRIu64 "\n@40: entries crc 0x%08x\n@44: header crc 0x%08x\n",
            kv_get_u32(buf + 8), kv_get_u64(buf + 16), kv_get_u64(buf + 24), kv_get_u64(buf + 32),
            kv_get_u32(buf + 40), kv_get_u32(buf + 44));
    size_t off = BC_HINT_HDR;
    while (off < len) {
        const uint8_t *p = buf + off;
        uint32_t kl = len - off >= BC_HINT_ENT_HDR ? kv_get_u32(p + 24) : 0;
        if (len - off < BC_HINT_ENT_HDR || kl > len - off - BC_HINT_ENT_HDR) {
            fprintf(out, "@%zu: truncated entry\n", off);
            return kv_error(KV_CORRUPTION, "%s: truncated hint entry at offset %zu", name, off);
        }
        fprintf(out,
                "@%zu: entry crc=0x%08x seq=%" PRIu64 " offset=%" PRIu64
                " record_size=%u key_size=%u flags=%u%s key ",
                off, kv_get_u32(p), kv_get_u64(p + 4), kv_get_u64(p + 12), kv_get_u32(p + 20), kl,
                p[28], p[28] ? " (tombstone)" : "");
        kv_dump_bytes(out, p + BC_HINT_ENT_HDR, kl, 48);
        fputc('\n', out);
        off += BC_HINT_ENT_HDR + kl;
    }
    return KV_OK;
}

static kv_status dump_manifest(FILE *out, const char *name, const uint8_t *buf, size_t len)
{
    fprintf(out, "== %s: bitcask merge manifest (the commit point of the last merge), %zu bytes\n",
            name, len);
    bc_manifest m;
    kv_status s = bc_manifest_decode(name, buf, len, &m);
    if (s != KV_OK) {
        fprintf(out, "damaged: %s\n", kv_errmsg());
        return s;
    }
    fprintf(out,
            "@0: magic \"KVBCMRG1\"\n@8: version %u\n@12: replaced count %u\n@16: produced count "
            "%u\n@24: merge number %" PRIu64 "\n@32: next file id %" PRIu64
            "\n@40: max seq %" PRIu64 "\n",
            BC_VERSION, m.n_replaced, m.n_produced, m.merge_no, m.next_id, m.max_seq);
    size_t off = BC_MANIFEST_FIXED;
    for (uint32_t i = 0; i < m.n_replaced; i++, off += 8)
        fprintf(out, "@%zu: replaced file %" PRIu64 "\n", off, m.replaced[i]);
    for (uint32_t i = 0; i < m.n_produced; i++, off += 8)
        fprintf(out, "@%zu: produced file %" PRIu64 "\n", off, m.produced[i]);
    fprintf(out, "@%zu: crc 0x%08x (ok)\n", off, kv_get_u32(buf + off));
    bc_manifest_free(&m);
    return KV_OK;
}

static bool ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

kv_status bc_dump(kv_db *kdb, FILE *out, const char *file, int64_t page)
{
    bc_db *db = (bc_db *)kdb;
    if (page >= 0)
        return kv_error(KV_INVALID, "bitcask has no pages (page %" PRId64 ")", page);
    pthread_mutex_lock(&db->wmu);
    kv_status s = bc_flush_locked(db);
    pthread_mutex_unlock(&db->wmu);
    if (s != KV_OK)
        return s;
    kv_namelist l;
    if ((s = kv_fs_list(db->fs, db->dir, &l)) != KV_OK)
        return s;
    bool found = false;
    kv_status first = KV_OK;
    for (size_t i = 0; i < l.count; i++) {
        const char *n = l.names[i];
        if (file && strcmp(file, n))
            continue;
        bool data = ends_with(n, ".data") || ends_with(n, ".mdata");
        bool hint = ends_with(n, ".hint") || ends_with(n, ".mhint");
        bool man = !strcmp(n, BC_MANIFEST_NAME);
        if (!data && !hint && !man)
            continue;
        found = true;
        char *p = kv_path_join(db->dir, n);
        void *buf = NULL;
        size_t len = 0;
        s = p ? kv_fs_read_file(db->fs, p, (uint64_t)2 << 30, &buf, &len) : KV_IO;
        if (s == KV_OK)
            s = data   ? dump_data(out, n, buf, len)
                : hint ? dump_hint(out, n, buf, len)
                       : dump_manifest(out, n, buf, len);
        free(buf);
        free(p);
        if (s != KV_OK && first == KV_OK)
            first = s;
    }
    kv_namelist_free(&l);
    if (file && !found)
        return kv_error(KV_INVALID, "bitcask dump: no file %s in %s", file, db->dir);
    return first;
}
