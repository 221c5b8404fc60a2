/* bc_merge.c: merge (Bitcask paper, "Merge"), made crash-safe by one commit point.
 *
 *  1. S = every sealed data file (all but the active one), referenced.
 *  2. For each record of S: a put whose keydir entry still points at it is copied to a new
 *     output file NNN.mdata (and its entry to NNN.mhint); anything else is dropped, tombstones
 *     included: every file that could hold an older value of the key is in S, so nothing a
 *     tombstone hides can survive it (the resurrection of basho/bitcask issue 82 needs a
 *     tombstone dropped while an older file stays).
 *  3. fdatasync the outputs, fsync the directory; flush + fdatasync the active file (a dropped
 *     record may have been superseded by a write still unsynced there), then a sync mark naming
 *     that durable length, fdatasynced too (reclog.h: damage before it is then corruption, not a
 *     torn tail that would take the superseding records and leave nothing).
 *  4. COMMIT: MANIFEST without S, with the outputs sealed at their lengths, S listed as
 *     obsolete, and the active file's entry carrying the durable length of step 3
 *     (bc_manifest.c: tmp + fdatasync + rename + dir fsync). The mark alone does not protect
 *     the records the merge relied on: damage that takes the mark with them (a zeroed last
 *     sector, a cut) would pass for a torn tail and lose keys whose older versions are gone;
 *     a shorter valid log than MANIFEST's durable length is KV_CORRUPTION at open.
 *  5. Rename outputs to NNN.data / NNN.hint, fsync the directory; point the keydir at the
 *     copies (only entries no writer changed meanwhile); drop S from the file table. Each file
 *     of S is unlinked when its last reader or iterator lets go.
 * Recovery (bc_recover.c) redoes step 5 after a crash past step 4 and deletes the outputs of a
 * crash before it. Reads and writes continue during all steps; writers wait only for the
 * flush of step 3. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bc_int.h"
#include "clock.h"
#include "lock_assert.h"

#define OUT_BUF      ((size_t)1 << 20)
#define SWITCH_CHUNK 4096

typedef struct mctx {
    bc_db *db;
    bc_file *src;
    bc_file *out; /* current output (not in the file table yet) */
    uint64_t out_size;
    kv_buf obuf; /* bytes of out not yet written, starting at obuf_off */
    uint64_t obuf_off;
    kv_buf ohint;
    uint64_t ohint_count;
    bc_file **outs;
    size_t nouts, capouts;
    kv_buf sw; /* switch list: klen u32 | old id u32 | old off u64 | new id u32 | new off u64 |
                  size u32 | zero u32 | key */
    size_t nsw;
} mctx;

#define SW_HDR 36u

static kv_status out_flush(mctx *m)
{
    if (!m->obuf.len)
        return KV_OK;
    kv_status s = kv_file_pwrite(m->out->f, m->obuf.data, m->obuf.len, m->obuf_off);
    if (s == KV_OK) {
        atomic_fetch_add(&m->db->merge_bytes_written, m->obuf.len);
        m->obuf_off += m->obuf.len;
        m->obuf.len = 0;
    }
    return s;
}

/* Completes the current output: remaining bytes, its hint (.mhint), fdatasync. */
static kv_status out_finish(mctx *m)
{
    if (!m->out)
        return KV_OK;
    kv_status s = out_flush(m);
    if (s == KV_OK)
        s = bc_hint_write(m->db, m->out, "mhint", &m->ohint, m->ohint_count, m->out_size);
    if (s == KV_OK)
        s = kv_file_fdatasync(m->out->f);
    atomic_store(&m->out->size, m->out_size);
    atomic_store(&m->out->has_hint, true);
    atomic_store(&m->out->sealed, true);
    m->out = NULL;
    m->ohint.len = 0;
    m->ohint_count = 0;
    return s;
}

static kv_status out_start(mctx *m)
{
    if (m->nouts == m->capouts) {
        size_t cap = m->capouts ? m->capouts * 2 : 8;
        bc_file **n = realloc(m->outs, cap * sizeof *n);
        if (!n)
            return kv_error(KV_NOMEM, "bitcask merge: out of memory");
        m->outs = n;
        m->capouts = cap;
    }
    uint64_t id = atomic_fetch_add(&m->db->next_id, 1);
    kv_status s = bc_file_create(m->db, id, BC_KIND_MERGE, "mdata", &m->out);
    if (s != KV_OK)
        return s;
    m->outs[m->nouts++] = m->out;
    m->out_size = BC_DATA_HDR;
    m->obuf_off = BC_DATA_HDR;
    return KV_OK;
}

static kv_status merge_rec(void *ctx, const bc_rec *r)
{
    mctx *m = ctx;
    bc_db *db = m->db;
    if (atomic_load_explicit(&db->closing, memory_order_relaxed))
        return kv_error(KV_BUSY, "bitcask merge: abandoned because the handle is closing");
    if (r->tomb)
        return KV_OK; /* dropped: every older file is in this merge */
    uint32_t h = bc_hash(r->key, r->klen);
    bc_loc cur;
    pthread_rwlock_rdlock(&db->lock);
    bool live = bc_kd_get(&db->kd, r->key, r->klen, h, &cur, NULL) && cur.file_id == m->src->id &&
                cur.offset == r->offset;
    pthread_rwlock_unlock(&db->lock);
    if (!live)
        return KV_OK;
    uint64_t size = bc_rec_size(r->klen, r->vlen);
    kv_status s;
    if (m->out && m->out_size > BC_DATA_HDR && m->out_size + size > db->file_size &&
        (s = out_finish(m)) != KV_OK)
        return s;
    if (!m->out && (s = out_start(m)) != KV_OK)
        return s;
    if (!kv_buf_reserve(&m->obuf, (size_t)size) || !kv_buf_reserve(&m->sw, SW_HDR + r->klen))
        return kv_error(KV_NOMEM, "bitcask merge: out of memory");
    /* framed anew: the output's salt seeds its crcs */
    bc_rec_encode(m->obuf.data + m->obuf.len, m->out->seed, BC_T_PUT, r->seq, r->key, r->klen,
                  r->value, r->vlen);
    m->obuf.len += (size_t)size;
    if (!bc_hint_add(&m->ohint, r->seq, m->out_size, (uint32_t)size, false, r->key, r->klen))
        return kv_error(KV_NOMEM, "bitcask merge: out of memory");
    m->ohint_count++;
    uint8_t *p = m->sw.data + m->sw.len;
    kv_put_u32(p, r->klen);
    kv_put_u32(p + 4, (uint32_t)m->src->id);
    kv_put_u64(p + 8, r->offset);
    kv_put_u32(p + 16, (uint32_t)m->out->id);
    kv_put_u64(p + 20, m->out_size);
    kv_put_u32(p + 28, (uint32_t)size);
    kv_put_u32(p + 32, 0);
    memcpy(p + SW_HDR, r->key, r->klen);
    m->sw.len += SW_HDR + r->klen;
    m->nsw++;
    m->out_size += size;
    if (m->obuf.len >= OUT_BUF)
        return out_flush(m);
    return KV_OK;
}

/* Copies the live records of src. */
static kv_status merge_file(mctx *m, bc_file *src)
{
    uint64_t size = atomic_load(&src->size);
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return kv_error(KV_NOMEM, "bitcask merge: out of memory for %llu bytes",
                        (unsigned long long)size);
    kv_status s = kv_file_read_exact(src->f, buf, size, 0);
    uint64_t end;
    m->src = src;
    if (s == KV_OK) /* sealed: any damage is KV_CORRUPTION, and the merge stops */
        s = bc_walk_data(src->f->path, buf, size, true, src->seed, &end, NULL, merge_rec, m);
    free(buf);
    return s;
}

bool bc_merge_wanted(bc_db *db)
{
    uint64_t n = 0, total = 0, live = 0;
    pthread_rwlock_rdlock(&db->lock);
    for (size_t i = 0; i < db->nfiles; i++) {
        bc_file *f = db->files[i];
        if (f == db->active)
            continue;
        n++;
        total += atomic_load(&f->size) - BC_DATA_HDR;
        live += atomic_load(&f->live_bytes);
    }
    pthread_rwlock_unlock(&db->lock);
    uint64_t dead = total > live ? total - live : 0;
    return n >= db->merge_min_files && dead > 0 &&
           (dead * 100 >= total * db->merge_frag_pct || dead >= db->merge_dead_bytes);
}

/* Points the keydir at the copies, in chunks so writers and readers interleave. */
static void switch_keydir(bc_db *db, mctx *m)
{
    size_t off = 0, done = 0;
    while (done < m->nsw) {
        pthread_rwlock_wrlock(&db->lock);
        for (size_t k = 0; k < SWITCH_CHUNK && done < m->nsw; k++, done++) {
            const uint8_t *p = m->sw.data + off;
            uint32_t klen = kv_get_u32(p);
            const uint8_t *key = p + SW_HDR;
            bc_loc old = {.file_id = kv_get_u32(p + 4), .offset = kv_get_u64(p + 8)};
            bc_loc cur;
            uint32_t h = bc_hash(key, klen);
            if (bc_kd_get(&db->kd, key, klen, h, &cur, NULL) && cur.file_id == old.file_id &&
                cur.offset == old.offset) {
                bc_loc nw = {.file_id = kv_get_u32(p + 16),
                             .offset = kv_get_u64(p + 20),
                             .rec_size = kv_get_u32(p + 28),
                             .seq = cur.seq};
                if (bc_kd_replace_if(&db->kd, key, klen, h, &cur, &nw))
                    bc_ix_note(&db->ix, key, klen, &nw, false, db->kd.count);
                bc_file *nf = bc_files_peek(db, nw.file_id);
                bc_file *of = bc_files_peek(db, old.file_id);
                if (nf)
                    atomic_fetch_add(&nf->live_bytes, nw.rec_size);
                if (of)
                    atomic_fetch_sub(&of->live_bytes, cur.rec_size);
            }
            off += SW_HDR + klen;
        }
        pthread_rwlock_unlock(&db->lock);
    }
}

static void discard_outputs(mctx *m)
{
    for (size_t i = 0; i < m->nouts; i++) {
        char *p = bc_path(m->db, m->outs[i]->id, "mdata");
        char *h = bc_path(m->db, m->outs[i]->id, "mhint");
        if (p)
            kv_fs_unlink(m->db->fs, p);
        if (h)
            kv_fs_unlink(m->db->fs, h);
        free(p);
        free(h);
        bc_file_unref(m->outs[i]);
    }
    m->nouts = 0;
}

/* The commit point (step 4): MANIFEST without S, with the outputs sealed at their lengths, S
 * (plus the earlier obsolete files still on disk, pend) listed as obsolete, and the entry of
 * active file act_id, if it is still the active one, raised to durable bytes (what step 3 made
 * durable, before this write). */
static kv_status commit_manifest(bc_db *db, bc_file **S, size_t ns, const mctx *m,
                                 const uint64_t *pend, size_t npend, uint64_t max_seq,
                                 uint64_t act_id, uint64_t durable)
{
    pthread_mutex_lock(&db->man_mu);
    bc_manifest *man = &db->man;
    bc_manifest old;
    kv_status s = KV_OK;
    if (!bc_manifest_copy(&old, man)) {
        pthread_mutex_unlock(&db->man_mu);
        return kv_error(KV_NOMEM, "bitcask merge: out of memory");
    }
    man->nobsolete = 0;
    bool ok = true;
    for (size_t i = 0; i < ns && ok; i++) {
        bc_manifest_remove(man, S[i]->id);
        ok = bc_manifest_add_obsolete(man, S[i]->id);
    }
    for (size_t i = 0; i < npend && ok; i++)
        ok = bc_manifest_add_obsolete(man, pend[i]);
    for (size_t i = 0; i < m->nouts && ok; i++)
        ok = bc_manifest_set(man, &(bc_man_file){.id = m->outs[i]->id,
                                                 .salt = m->outs[i]->salt,
                                                 .length = atomic_load(&m->outs[i]->size),
                                                 .kind = BC_KIND_MERGE,
                                                 .state = BC_MAN_SEALED});
    bc_man_file *act = bc_manifest_find(man, act_id);
    if (ok && act && act->state == BC_MAN_ACTIVE && durable > act->length)
        act->length = durable; /* a rotation since step 3 sealed it instead: nothing to say */
    if (ok) {
        man->merge_no++;
        s = bc_man_write_locked(db, max_seq); /* poisons on error */
    } else {
        s = kv_error(KV_NOMEM, "bitcask merge: out of memory");
    }
    if (s != KV_OK) { /* MANIFEST in memory goes back to what disk held before */
        bc_manifest_free(man);
        *man = old;
    } else {
        bc_manifest_free(&old);
    }
    pthread_mutex_unlock(&db->man_mu);
    return s;
}

static kv_status merge_locked(bc_db *db)
{
    KV_ASSERT_HELD(&db->merge_mu);
    if (atomic_load(&db->poisoned))
        return kv_error(KV_POISONED, "bitcask: an earlier write or fsync failed; reopen");
    /* 1. S */
    pthread_rwlock_rdlock(&db->lock);
    size_t ns = 0;
    bc_file **S = malloc((db->nfiles ? db->nfiles : 1) * sizeof *S);
    if (S)
        for (size_t i = 0; i < db->nfiles; i++)
            if (db->files[i] != db->active) {
                bc_file_ref(db->files[i]);
                S[ns++] = db->files[i];
            }
    pthread_rwlock_unlock(&db->lock);
    if (!S)
        return kv_error(KV_NOMEM, "bitcask merge: out of memory");
    if (ns == 0) {
        free(S);
        return KV_OK;
    }
    mctx m = {.db = db};
    uint64_t *pend = NULL;
    size_t npend = 0;
    /* 2. copy live records */
    kv_status s = KV_OK;
    for (size_t i = 0; i < ns && s == KV_OK; i++)
        s = merge_file(&m, S[i]);
    if (s == KV_OK)
        s = out_finish(&m);
    /* obsolete files of earlier merges still on disk (an iterator holds them) stay listed;
     * checked before the directory fsync below makes the unlinks of the others durable */
    if (s == KV_OK) {
        pthread_mutex_lock(&db->man_mu);
        pend = malloc((db->man.nobsolete + 1) * sizeof *pend);
        if (pend && db->man.nobsolete) {
            memcpy(pend, db->man.obsolete, db->man.nobsolete * sizeof *pend);
            npend = db->man.nobsolete;
        }
        pthread_mutex_unlock(&db->man_mu);
        if (!pend)
            s = kv_error(KV_NOMEM, "bitcask merge: out of memory");
    }
    size_t kept = 0;
    for (size_t i = 0; i < npend && s == KV_OK; i++) {
        char *p = bc_path(db, pend[i], "data");
        bool ex = true;
        if (p)
            kv_fs_exists(db->fs, p, &ex);
        free(p);
        if (ex)
            pend[kept++] = pend[i];
    }
    npend = kept;
    /* 3. outputs and the active file durable, and a durable mark vouching for the latter */
    if (s == KV_OK)
        s = kv_fs_fsync_dir(db->fs, db->dir);
    if (s == KV_OK)
        s = bc_sync_active(db, true);
    uint64_t max_seq = 0, act_id = 0, durable = 0;
    if (s == KV_OK) {
        /* (active, durable) agree under wmu: durable grows only after an fdatasync of that
         * file returned, and a rotation resets it with the new file */
        pthread_mutex_lock(&db->wmu);
        max_seq = db->next_seq - 1;
        act_id = db->active->id;
        durable = db->durable;
        pthread_mutex_unlock(&db->wmu);
    }
    if (s != KV_OK) {
        if (s == KV_IO || s == KV_NOSPACE)
            bc_poison(db, s); /* a failed write or fsync is never retried */
        discard_outputs(&m);
        goto out;
    }
    /* 4. the commit point */
    s = commit_manifest(db, S, ns, &m, pend, npend, max_seq, act_id, durable);
    if (s != KV_OK) {
        /* poisoned if the rename may have happened: recovery decides; the outputs stay */
        if (atomic_load(&db->poisoned)) {
            for (size_t i = 0; i < m.nouts; i++)
                bc_file_unref(m.outs[i]);
            m.nouts = 0;
        } else {
            discard_outputs(&m);
        }
        goto out;
    }
    /* 5. outputs into place (recovery redoes this if it is interrupted) */
    char a[64], b[64];
    for (size_t i = 0; i < m.nouts && s == KV_OK; i++) {
        static const char *const pairs[2][2] = {{"mdata", "data"}, {"mhint", "hint"}};
        for (int k = 0; k < 2 && s == KV_OK; k++) {
            char *pa = kv_path_join(db->dir, bc_file_name(m.outs[i]->id, pairs[k][0], a, 64));
            char *pb = kv_path_join(db->dir, bc_file_name(m.outs[i]->id, pairs[k][1], b, 64));
            s = pa && pb ? kv_fs_rename(db->fs, pa, pb) : kv_error(KV_NOMEM, "out of memory");
            free(pa);
            free(pb);
        }
    }
    if (s == KV_OK)
        s = kv_fs_fsync_dir(db->fs, db->dir);
    if (s != KV_OK)
        bc_poison(db, s);
    pthread_rwlock_wrlock(&db->lock);
    for (size_t i = 0; i < m.nouts; i++)
        if (!bc_files_add(db, m.outs[i]))
            bc_file_unref(m.outs[i]); /* out of memory: readers keep using S (not removed) */
    pthread_rwlock_unlock(&db->lock);
    m.nouts = 0;
    switch_keydir(db, &m);
    pthread_rwlock_wrlock(&db->lock);
    for (size_t i = 0; i < ns; i++) {
        atomic_store(&S[i]->obsolete, true);
        bc_files_remove(db, S[i]);
    }
    pthread_rwlock_unlock(&db->lock);
    atomic_fetch_add(&db->merges, 1);
out:
    for (size_t i = 0; i < ns; i++)
        bc_file_unref(S[i]); /* the last reference unlinks a replaced file */
    free(S);
    free(pend);
    free(m.outs);
    kv_buf_free(&m.obuf);
    kv_buf_free(&m.ohint);
    kv_buf_free(&m.sw);
    return s;
}

kv_status bc_merge_run(bc_db *db)
{
    pthread_mutex_lock(&db->merge_mu);
    kv_status s = merge_locked(db);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", kv_errmsg());
    bc_run_hint_jobs(db);
    pthread_mutex_unlock(&db->merge_mu);
    if (s != KV_OK)
        kv_error(s, "%s", msg);
    return s;
}

void *bc_bg_main(void *arg)
{
    bc_db *db = arg;
    pthread_mutex_lock(&db->bg_mu);
    while (!db->bg_stop) {
        pthread_mutex_unlock(&db->bg_mu);
        pthread_mutex_lock(&db->merge_mu);
        bc_run_hint_jobs(db);
        pthread_mutex_unlock(&db->merge_mu);
        if (!atomic_load(&db->poisoned) && !db->merge_failed && bc_merge_wanted(db) &&
            bc_merge_run(db) != KV_OK)
            db->merge_failed = true; /* reported by kv_stats (merge_failed); no retry loop */
        pthread_mutex_lock(&db->bg_mu);
        if (db->bg_stop || db->jobs)
            continue;
        struct timespec ts = kv_deadline_us(CLOCK_REALTIME, 200000); /* bg_cv: default clock */
        pthread_cond_timedwait(&db->bg_cv, &db->bg_mu, &ts);
    }
    pthread_mutex_unlock(&db->bg_mu);
    return NULL;
}
