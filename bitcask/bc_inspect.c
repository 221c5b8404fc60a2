/* bc_inspect.c: kv_check (the directory agrees with MANIFEST and MANIFEST with the handle; every
 * data file parses cleanly under reclog's rule; every hint file agrees entry by entry with its
 * data file; every keydir entry points at a valid record holding its key with a matching crc and
 * sequence number) and kv_dump (every field of every file with offsets, reclog's framing and
 * sync marks included). */
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
        return kv_error(KV_NOMEM, "bitcask check: out of memory");
    c->n++;
    return KV_OK;
}

/* Parses a whole data file (its first f->size bytes: a torn tail that a read-only open left in
 * place is not part of it) and compares it with its hint file when one exists. */
static kv_status check_file(bc_db *db, bc_file *f)
{
    uint64_t size = atomic_load(&f->size);
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return kv_error(KV_NOMEM, "bitcask check: out of memory");
    list_ctx d = {0}, h = {0};
    uint64_t end;
    kv_status s = kv_file_read_exact(f->f, buf, size, 0);
    uint32_t kind;
    uint64_t id, salt;
    if (s == KV_OK && (!bc_data_hdr_decode(buf, size, &kind, &id, &salt) || id != f->id ||
                       salt != f->salt || kind != f->kind))
        s = kv_error(KV_CORRUPTION, "%s: offset 0: bad data file header, or not this file's",
                     f->f->path);
    if (s == KV_OK)
        s = bc_walk_data(f->f->path, buf, size, true, f->seed, &end, NULL, list_rec, &d);
    free(buf);
    char *hp = NULL;
    bool exists = false;
    if (s == KV_OK && f != db->active) {
        hp = bc_path(db, f->id, "hint");
        if (hp && kv_fs_exists(db->fs, hp, &exists) == KV_OK && !exists) {
            free(hp); /* a committed merge output that a read-only open found unrenamed */
            hp = bc_path(db, f->id, "mhint");
            if (hp && kv_fs_exists(db->fs, hp, &exists) != KV_OK)
                exists = false;
        }
    }
    if (s == KV_OK && hp && exists) {
        void *hb = NULL;
        size_t hl = 0;
        s = kv_fs_read_file(db->fs, hp, UINT32_MAX, &hb, &hl);
        if (s == KV_OK)
            s = bc_walk_hint(hp, hb, hl, f->id, f->salt, size, true, list_rec, &h);
        free(hb);
        if (s == KV_OK && (h.n != d.n || h.out.len != d.out.len ||
                           memcmp(h.out.data, d.out.data, d.out.len) != 0))
            s = kv_error(KV_CORRUPTION,
                         "%s: offset %u: hint file disagrees with its data file (%zu vs %zu "
                         "entries)",
                         hp, BC_HINT_HDR, h.n, d.n);
    }
    free(hp);
    kv_buf_free(&d.out);
    kv_buf_free(&h.out);
    return s;
}

/* The directory against MANIFEST (bc_plan_make: every named file there, with its header's id,
 * salt and kind and, sealed, its length; no unnamed data file with records), MANIFEST on disk
 * against the handle's, and the file table against both. merge_mu and man_mu are held, so no
 * merge or rotation changes the set meanwhile. */
static kv_status check_manifest(bc_db *db)
{
    bc_plan plan;
    kv_status s = bc_plan_make(db->fs, db->dir, false, &plan);
    if (s != KV_OK)
        return s;
    const bc_manifest *a = &plan.man, *b = &db->man;
    bool same = plan.have_man == (b->number > 0 || b->nfiles > 0) && a->nfiles == b->nfiles &&
                a->nobsolete == b->nobsolete && a->next_id == b->next_id;
    for (uint32_t i = 0; same && i < a->nfiles; i++)
        same = !memcmp(&a->files[i], &b->files[i], sizeof a->files[i]);
    if (!same)
        s = kv_error(KV_CORRUPTION, "%s/%s: offset 0: differs from the manifest this handle keeps",
                     db->dir, BC_MANIFEST_NAME);
    pthread_rwlock_rdlock(&db->lock);
    bool table = s == KV_OK && db->nfiles == b->nfiles;
    for (size_t i = 0; table && i < db->nfiles; i++) {
        const bc_file *f = db->files[i];
        const bc_man_file *m = &b->files[i];
        table = m->id == f->id && m->salt == f->salt && m->kind == f->kind &&
                (m->state == BC_MAN_ACTIVE || m->length == atomic_load(&f->size));
    }
    pthread_rwlock_unlock(&db->lock);
    if (s == KV_OK && !table)
        s = kv_error(KV_CORRUPTION, "%s/%s: the data files it names are not the handle's", db->dir,
                     BC_MANIFEST_NAME);
    bc_plan_free(&plan);
    return s;
}

kv_status bc_check(kv_db *kdb)
{
    bc_db *db = (bc_db *)kdb;
    /* data and hint files (the active one up to its flushed end) */
    /* merge_mu and wmu too: no merge or rotation between MANIFEST and the file table */
    pthread_mutex_lock(&db->merge_mu);
    pthread_mutex_lock(&db->wmu);
    kv_status s = bc_flush_locked(db);
    if (s == KV_OK) {
        pthread_mutex_lock(&db->man_mu);
        s = check_manifest(db);
        pthread_mutex_unlock(&db->man_mu);
    }
    pthread_mutex_unlock(&db->wmu);
    pthread_mutex_unlock(&db->merge_mu);
    if (s != KV_OK)
        return s;
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
        return kv_error(KV_NOMEM, "bitcask check: out of memory");
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
            s = kv_error(KV_CORRUPTION,
                         "%s/%010u.data: the keydir points at this file, but it "
                         "is gone",
                         db->dir, e->loc.file_id);
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

static const char *type_name(uint8_t t)
{
    switch (t) {
    case BC_T_PUT:
        return "put";
    case BC_T_TOMB:
        return "tombstone";
    case BC_T_BATCH:
        return "batch";
    case BC_T_BATCH_PUT:
        return "put in a batch";
    case BC_T_BATCH_TOMB:
        return "tombstone in a batch";
    case KV_RECLOG_MARK:
        return "sync mark";
    default:
        return "unknown";
    }
}

/* Prints the records of [off, end) of buf (file offset base + off), framing and payload field
 * by field; batches' inner records indented. Returns the offset of the first record that is not
 * valid (end when all are). */
static uint64_t dump_records(FILE *out, const uint8_t *buf, uint64_t base, uint64_t off,
                             uint64_t end, uint32_t seed, int depth, const char **why)
{
    int ind = depth * 2;
    while (off < end) {
        kv_reclog_rec r;
        bc_rec_view v;
        if (kv_reclog_decode(buf, end, off, seed, &r, why) != KV_RECLOG_OK)
            return off;
        uint64_t at = base + off;
        fprintf(out,
                "%*s@%" PRIu64 ": record crc 0x%08x, header crc 0x%08x, length %u, type %u "
                "(%s)\n",
                ind, "", at, kv_get_u32(buf + off), kv_get_u32(buf + off + 4), r.len, r.type,
                type_name(r.type));
        if (r.type == KV_RECLOG_MARK) {
            fprintf(out, "%*s  @%" PRIu64 ": durable to offset %" PRIu64 "\n", ind, "", at + 16,
                    kv_get_u64(r.payload));
        } else if (!(r.len >= BC_PAYLOAD_HDR &&
                     bc_rec_check(buf + off, KV_RECLOG_FRAME + r.len, seed, &v))) {
            *why = "payload fields do not fit the record's type";
            return off;
        } else {
            fprintf(out, "%*s  @%" PRIu64 ": seq %" PRIu64 ", key size %u, value size %u\n", ind,
                    "", at + 16, v.seq, v.klen, v.vlen);
            if (v.type == BC_T_BATCH) {
                uint64_t vo = off + BC_REC_OVERHEAD;
                uint64_t stop = dump_records(out, buf, base, vo, vo + v.vlen, seed, depth + 1, why);
                if (stop != vo + v.vlen)
                    return off;
            } else {
                fprintf(out, "%*s  @%" PRIu64 ": key ", ind, "", at + BC_REC_OVERHEAD);
                kv_dump_bytes(out, v.key, v.klen, 48);
                fprintf(out, "\n%*s  @%" PRIu64 ": value ", ind, "", at + BC_REC_OVERHEAD + v.klen);
                kv_dump_bytes(out, v.value, v.vlen, 48);
                fputc('\n', out);
            }
        }
        off += KV_RECLOG_FRAME + (uint64_t)r.len;
    }
    return off;
}

/* What MANIFEST says of data file id: BC_MAN_SEALED, BC_MAN_ACTIVE, or 0 (not named). */
static uint32_t man_state(bc_db *db, uint64_t id)
{
    pthread_mutex_lock(&db->man_mu);
    const bc_man_file *m = bc_manifest_find(&db->man, id);
    uint32_t st = m ? m->state : 0;
    pthread_mutex_unlock(&db->man_mu);
    return st;
}

static kv_status dump_data(bc_db *db, FILE *out, const char *path, const char *name,
                           const uint8_t *buf, size_t len, uint64_t id)
{
    fprintf(out, "== %s: bitcask data file, %zu bytes\n", name, len);
    if (len < BC_DATA_HDR) {
        fprintf(out, "@0: header incomplete (%zu bytes)\n", len);
        return kv_error(KV_CORRUPTION, "%s: offset 0: short header", path);
    }
    uint32_t kind;
    uint64_t hid, salt;
    bool ok = bc_data_hdr_decode(buf, len, &kind, &hid, &salt);
    fprintf(out, "@0: magic ");
    kv_dump_bytes(out, buf, 8, 48);
    fprintf(out,
            "\n@8: version %u\n@12: kind %u (%s)\n@16: file id %" PRIu64 "\n@24: salt %016" PRIx64
            "\n@32: zero %u\n@36: header crc 0x%08x (%s)\n",
            kv_get_u32(buf + 8), kv_get_u32(buf + 12),
            kv_get_u32(buf + 12) == BC_KIND_MERGE ? "merge output" : "write", kv_get_u64(buf + 16),
            kv_get_u64(buf + 24), kv_get_u32(buf + 32), kv_get_u32(buf + 36), ok ? "ok" : "BAD");
    if (!ok)
        return kv_error(KV_CORRUPTION, "%s: offset 0: bad header", path);
    uint32_t seed = kv_reclog_seed(salt);
    const char *why = NULL;
    uint64_t stop = dump_records(out, buf, 0, BC_DATA_HDR, len, seed, 0, &why);
    if (stop == len)
        return KV_OK;
    /* the verdict is the scanner's: a torn tail only in the active file, and only when no
     * durable mark past it vouches for the bytes */
    uint32_t st = man_state(db, id);
    uint64_t end;
    kv_status s = bc_walk_data(path, buf, len, st == BC_MAN_SEALED, seed, &end, NULL, NULL, NULL);
    if (s == KV_OK) {
        fprintf(out,
                "@%" PRIu64 ": torn tail of %" PRIu64 " bytes (%s): recovery ends the log "
                "here\n",
                stop, (uint64_t)len - stop, why ? why : "damaged record");
        return KV_OK;
    }
    fprintf(out, "@%" PRIu64 ": DAMAGED (%s)\n", stop, kv_errmsg());
    return s;
}

static kv_status dump_hint(FILE *out, const char *path, const char *name, const uint8_t *buf,
                           size_t len)
{
    fprintf(out, "== %s: bitcask hint file, %zu bytes\n", name, len);
    if (len < BC_HINT_HDR) {
        fprintf(out, "@0: header incomplete\n");
        return kv_error(KV_CORRUPTION, "%s: offset 0: short hint header", path);
    }
    fprintf(out, "@0: magic ");
    kv_dump_bytes(out, buf, 8, 48);
    fprintf(out,
            "\n@8: version %u\n@16: file id %" PRIu64 "\n@24: data salt %016" PRIx64
            "\n@32: data size %" PRIu64 "\n@40: entries %" PRIu64
            "\n@48: entries crc 0x%08x\n@52: header crc 0x%08x\n",
            kv_get_u32(buf + 8), kv_get_u64(buf + 16), kv_get_u64(buf + 24), kv_get_u64(buf + 32),
            kv_get_u64(buf + 40), kv_get_u32(buf + BC_HINT_ENTS_CRC),
            kv_get_u32(buf + BC_HINT_HDR_CRC));
    size_t off = BC_HINT_HDR;
    while (off < len) {
        const uint8_t *p = buf + off;
        uint32_t kl = len - off >= BC_HINT_ENT_HDR ? kv_get_u32(p + 24) : 0;
        if (len - off < BC_HINT_ENT_HDR || kl > len - off - BC_HINT_ENT_HDR) {
            fprintf(out, "@%zu: truncated entry\n", off);
            return kv_error(KV_CORRUPTION, "%s: offset %zu: truncated hint entry", path, off);
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

static kv_status dump_manifest(FILE *out, const char *path, const char *name, const uint8_t *buf,
                               size_t len)
{
    fprintf(out, "== %s: bitcask manifest (the data files this database depends on), %zu bytes\n",
            name, len);
    bc_manifest m;
    kv_status s = bc_manifest_decode(path, buf, len, &m);
    if (s != KV_OK) {
        fprintf(out, "damaged: %s\n", kv_errmsg());
        return s;
    }
    fprintf(out,
            "@0: magic \"KVBCMAN1\"\n@8: version %u\n@12: files %u\n@16: obsolete %u\n@24: "
            "manifest number %" PRIu64 "\n@32: merge number %" PRIu64 "\n@40: next file id %" PRIu64
            "\n@48: max seq %" PRIu64 "\n",
            BC_VERSION, m.nfiles, m.nobsolete, m.number, m.merge_no, m.next_id, m.max_seq);
    size_t off = BC_MANIFEST_FIXED;
    for (uint32_t i = 0; i < m.nfiles; i++, off += BC_MANIFEST_ENT) {
        const bc_man_file *f = &m.files[i];
        bool act = f->state == BC_MAN_ACTIVE;
        fprintf(out,
                "@%zu: file %" PRIu64 " salt %016" PRIx64 " %s %" PRIu64 " kind %u (%s) "
                "state %u (%s)\n",
                off, f->id, f->salt, act ? "durable length" : "length", f->length, f->kind,
                f->kind == BC_KIND_MERGE ? "merge output" : "write", f->state,
                act ? "active: may end in a torn tail past its durable length" : "sealed");
    }
    for (uint32_t i = 0; i < m.nobsolete; i++, off += 8)
        fprintf(out, "@%zu: obsolete file %" PRIu64 "\n", off, m.obsolete[i]);
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
        s = p ? kv_fs_read_file(db->fs, p, (uint64_t)2 << 30, &buf, &len)
              : kv_error(KV_NOMEM, "bitcask: out of memory");
        if (s == KV_OK)
            s = data   ? dump_data(db, out, p, n, buf, len, strtoull(n, NULL, 10))
                : hint ? dump_hint(out, p, n, buf, len)
                       : dump_manifest(out, p, n, buf, len);
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

/* ---- picture ---- */

enum { PIC_SAMPLES = 3 }; /* keys shown per data file: the smallest ones (any order is stable) */

typedef struct pic_file {
    uint64_t id, keys;
    kv_buf sample[PIC_SAMPLES]; /* sorted, the smallest keys pointing into the file */
    uint64_t off[PIC_SAMPLES];
    size_t nsample;
} pic_file;

typedef struct pic_ctx {
    pic_file *f;
    size_t n;
    bool oom;
} pic_ctx;

static void pic_one(void *ctx, const uint8_t *key, size_t klen, const bc_loc *loc, bool tomb)
{
    pic_ctx *c = ctx;
    if (tomb)
        return;
    size_t lo = 0, hi = c->n; /* c->f is sorted by id, as db->files */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c->f[mid].id < loc->file_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == c->n || c->f[lo].id != loc->file_id)
        return;
    pic_file *f = &c->f[lo];
    f->keys++;
    size_t at = f->nsample;
    while (at > 0 && kv_key_cmp(key, klen, f->sample[at - 1].data, f->sample[at - 1].len) < 0)
        at--;
    if (at == PIC_SAMPLES)
        return;
    if (f->nsample < PIC_SAMPLES)
        f->nsample++;
    kv_buf spare = f->sample[f->nsample - 1]; /* the largest drops out (or an empty slot) */
    memmove(&f->sample[at + 1], &f->sample[at], (f->nsample - 1 - at) * sizeof *f->sample);
    memmove(&f->off[at + 1], &f->off[at], (f->nsample - 1 - at) * sizeof *f->off);
    spare.len = 0;
    if (!kv_buf_append(&spare, key, klen))
        c->oom = true;
    f->sample[at] = spare;
    f->off[at] = loc->offset;
}

kv_status bc_picture(kv_db *kdb, kv_pic *pic)
{
    bc_db *db = (bc_db *)kdb;
    pthread_mutex_lock(&db->wmu);
    kv_status s = bc_flush_locked(db);
    pthread_mutex_unlock(&db->wmu);
    if (s != KV_OK)
        return s;
    pthread_rwlock_rdlock(&db->lock);
    pic_ctx c = {calloc(db->nfiles ? db->nfiles : 1, sizeof *c.f), db->nfiles, false};
    int *nodes = malloc((db->nfiles ? db->nfiles : 1) * sizeof *nodes);
    if (!c.f || !nodes) {
        pthread_rwlock_unlock(&db->lock);
        free(c.f);
        free(nodes);
        return kv_error(KV_NOMEM, "bitcask: out of memory");
    }
    uint64_t keys = db->kd.count;
    for (size_t i = 0; i < db->nfiles; i++) {
        const bc_file *f = db->files[i];
        char name[32], hint[32];
        uint64_t size = atomic_load(&f->size), live = atomic_load(&f->live_bytes);
        uint64_t recs = size > BC_DATA_HDR ? size - BC_DATA_HDR : 0;
        c.f[i].id = f->id;
        nodes[i] = kv_pic_node(pic, KV_PIC_ROOT, KV_PIC_FILE, "%s",
                               bc_file_name(f->id, "data", name, sizeof name));
        kv_pic_line(pic, nodes[i], "%s%s", f == db->active ? "active (appended to)" : "sealed",
                    f->kind == BC_KIND_MERGE ? ", written by a merge" : "");
        kv_pic_line(pic, nodes[i], "%s of records", kv_pic_bytes(pic, recs));
        kv_pic_line(pic, nodes[i], "live %s, dead %s", kv_pic_bytes(pic, live),
                    kv_pic_bytes(pic, recs > live ? recs - live : 0));
        if (atomic_load(&f->has_hint)) {
            int h = kv_pic_node(pic, nodes[i], KV_PIC_FILE, "%s",
                                bc_file_name(f->id, "hint", hint, sizeof hint));
            kv_pic_line(pic, h, "the keys and offsets of %s", name);
        }
    }
    bc_kd_foreach(&db->kd, pic_one, &c);
    pthread_rwlock_unlock(&db->lock);
    int kd = kv_pic_node(pic, KV_PIC_ROOT, KV_PIC_MEM, "keydir (in memory, a hash table)");
    kv_pic_line(pic, kd, "%" PRIu64 " %s, each -> file, offset, size", keys,
                keys == 1 ? "key" : "keys");
    for (size_t i = 0; i < c.n; i++) {
        pic_file *f = &c.f[i];
        if (!f->keys)
            continue;
        int e = kv_pic_node(pic, kd, KV_PIC_MEM, "%" PRIu64 " %s in file %" PRIu64, f->keys,
                            f->keys == 1 ? "key" : "keys", f->id);
        for (size_t j = 0; j < f->nsample; j++)
            kv_pic_line(pic, e, "%s @%" PRIu64,
                        kv_pic_key(pic, f->sample[j].data, f->sample[j].len), f->off[j]);
        if (f->keys > f->nsample)
            kv_pic_line(pic, e, "...");
        kv_pic_link(pic, e, nodes[i], NULL);
    }
    for (size_t i = 0; i < c.n; i++)
        for (size_t j = 0; j < PIC_SAMPLES; j++)
            kv_buf_free(&c.f[i].sample[j]);
    free(c.f);
    free(nodes);
    return c.oom ? kv_error(KV_NOMEM, "bitcask: out of memory") : KV_OK;
}
