/* bc_recover.c: start-up. Checks the directory against MANIFEST (bc_manifest.c: every data file
 * it names, with its salt and length; a merge's outputs are committed by it) and, in a writable
 * open, finishes what a crash cut short (renames a committed merge's outputs, deletes replaced
 * files and leftovers); then rebuilds the keydir from each data file's hint file when the hint
 * is valid, or by scanning the data file when it is missing or damaged (a bad hint is never
 * trusted; a writable open writes a fresh one). Data files are read by common/reclog's scanner:
 * the active file MANIFEST names may end in a torn tail, cut off (truncate + fdatasync) by a
 * writable open and ignored by a read-only one, but only past the durable length MANIFEST
 * records for it (valid records ending before it are KV_CORRUPTION: a merge may have dropped
 * older versions of what they hold); in a sealed file any damage is KV_CORRUPTION.
 * A read-only open changes nothing on disk.
 *
 * The newest record of a key is the one with the highest sequence number (ties inside one
 * batch: the later one in the file), so files can be loaded in any order; tombstones stay in
 * the keydir until every file is loaded, then are purged.
 *
 * This file is the core, as the Bitcask paper describes it: one file after another, each entry
 * inserted in turn. The accelerations that make it fast on millions of keys (batched and
 * prefetched inserts, a hint reader thread, a prefault thread) sit behind the calls into
 * bc_startup.h, made only when db->startup_fast is set (`-o startup=plain` leaves them out). */
#include <stdlib.h>
#include <string.h>

#include "bc_int.h"
#include "bc_startup.h"

void bc_load_count_live(bc_load_ctx *c, bc_kd_effect r, const bc_loc *loc, bool tomb,
                        const bc_loc *prev)
{
    if (!tomb)
        c->live += loc->rec_size;
    if (r == BC_KD_REPLACED) {
        if (prev->file_id == loc->file_id) {
            c->live -= prev->rec_size;
        } else {
            bc_file *pf = bc_files_peek(c->db, prev->file_id);
            if (pf)
                atomic_fetch_sub_explicit(&pf->live_bytes, prev->rec_size, memory_order_relaxed);
        }
    }
}

kv_status bc_load_insert(bc_load_ctx *c, const uint8_t *key, size_t klen, uint32_t hash,
                         const bc_loc *loc, bool tomb)
{
    bc_loc prev;
    bc_kd_effect r = bc_kd_put_if_newer(&c->db->kd, key, klen, hash, loc, tomb, &prev);
    if (r == BC_KD_NOMEM)
        return kv_error(KV_NOMEM, "bitcask: out of memory loading the keydir");
    if (r != BC_KD_OLDER)
        bc_load_count_live(c, r, loc, tomb, &prev);
    return KV_OK;
}

/* One entry of a hint walk or a scan (bc_rec_fn): into the keydir, and into the hint being
 * rebuilt when scanning. */
static kv_status load_rec(void *vctx, const bc_rec *r)
{
    bc_load_ctx *c = vctx;
    if (r->seq > c->max_seq)
        c->max_seq = r->seq;
    if (c->hint) {
        if (!bc_hint_add(c->hint, r->seq, r->offset, r->rec_size, r->tomb, r->key, r->klen))
            return kv_error(KV_NOMEM, "bitcask: out of memory rebuilding a hint");
        c->hint_count++;
    }
    uint32_t hash = bc_hash(r->key, r->klen);
    if (c->fast)
        return bc_startup_stage(c->fast, c, r, hash);
    bc_loc loc = {.offset = r->offset,
                  .seq = r->seq,
                  .file_id = (uint32_t)c->file->id,
                  .rec_size = r->rec_size};
    return bc_load_insert(c, r->key, r->klen, hash, &loc, r->tomb);
}

/* Ends the walk of a file's bytes: what is staged goes in (KV_OK so far) or is forgotten. */
static kv_status load_end(bc_load_ctx *c, kv_status s)
{
    if (c->fast && s == KV_OK)
        return bc_startup_drain(c->fast, c);
    if (c->fast)
        bc_startup_drop(c->fast);
    return s;
}

/* Loads a data file's entries from its hint file at hpath (size: the data file's bytes, which a
 * valid hint describes exactly). Both crcs are checked before the first entry is applied; should
 * a later structural check fail, the entries applied are true records of this file, which the
 * scan finds again (same seq and offset: no change). KV_OK; KV_CORRUPTION or KV_INVALID for a
 * damaged hint (the caller scans the data file); another error stops the start-up. */
static kv_status load_hint(bc_load_ctx *c, const char *hpath, uint64_t size)
{
    kv_file *hf = NULL;
    uint8_t *buf = NULL;
    uint64_t len = 0;
    kv_status s = kv_fs_open(c->db->fs, hpath, KV_FS_READ, &hf);
    if (s == KV_OK)
        s = kv_file_size(hf, &len);
    if (s == KV_OK && len > UINT32_MAX)
        s = kv_error(KV_CORRUPTION, "%s: a hint file of %llu bytes", hpath,
                     (unsigned long long)len);
    if (s == KV_OK && !(buf = malloc(len ? len : 1)))
        s = kv_error(KV_NOMEM, "bitcask: out of memory reading %s", hpath);
    if (s == KV_OK)
        s = kv_file_read_exact(hf, buf, len, 0);
    if (s == KV_OK)
        s = bc_walk_hint(hpath, buf, len, c->file->id, c->file->salt, size, false, load_rec, c);
    s = load_end(c, s);
    free(buf);
    kv_file_close(hf);
    return s;
}

/* Loads a data file by scanning it under reclog's damage rule: a sealed file must be whole; the
 * active one may end in a torn tail past durable (bytes MANIFEST says were durable), which a
 * writable open cuts off durably (truncate, fdatasync) and a read-only one leaves in place and
 * ignores; valid records that end before durable are KV_CORRUPTION naming the file and where
 * they end, and nothing is cut. A writable open then writes a fresh hint file for it. */
static kv_status scan_file(bc_load_ctx *c, const char *dpath, bool sealed, uint64_t size,
                           uint64_t durable)
{
    bc_db *db = c->db;
    bc_file *f = c->file;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return kv_error(KV_NOMEM, "bitcask: out of memory reading %s", dpath);
    kv_buf hint = {0};
    kv_status s = kv_file_read_exact(f->f, buf, size, 0);
    uint64_t end = size;
    c->hint = db->read_only ? NULL : &hint;
    if (s == KV_OK)
        s = bc_walk_data(dpath, buf, size, sealed, f->seed, &end, NULL, load_rec, c);
    s = load_end(c, s);
    c->hint = NULL;
    free(buf);
    atomic_fetch_add(&db->data_scans, 1);
    if (s == KV_OK)
        atomic_fetch_add(&db->data_scan_bytes, end);
    if (s == KV_OK && !sealed && end < durable)
        /* no power loss tears bytes an fdatasync covered: the tail holds records that a merge
         * relied on (it dropped their older versions), and cutting it would lose keys */
        s = kv_error(KV_CORRUPTION,
                     "%s: offset %llu: the valid records end here, but %s says the active file "
                     "was durable to %llu bytes: damage, not a torn tail",
                     dpath, (unsigned long long)end, BC_MANIFEST_NAME, (unsigned long long)durable);
    if (s == KV_OK && end < size) {
        /* the active file's torn tail: what a power loss left of writes never made durable */
        if (!db->read_only) {
            s = kv_file_truncate(f->f, end);
            if (s == KV_OK)
                s = kv_file_fdatasync(f->f);
        }
        atomic_store(&f->size, end);
    }
    if (s == KV_OK && !db->read_only && db->use_hints && end > BC_DATA_HDR) {
        s = bc_hint_write(db, f, "hint", &hint, c->hint_count, end);
        if (s == KV_OK)
            atomic_store(&f->has_hint, true);
    }
    kv_buf_free(&hint);
    return s;
}

/* Loads data file number i (f) from its hint file (hpath, or NULL when it has none) when that is
 * valid, else by scanning it (durable: the bytes of an active file MANIFEST says were durable; a
 * valid hint describes the whole file, which bc_plan_make found at least that long). */
static kv_status load_file(bc_db *db, bc_startup *fast, size_t i, bool sealed, uint64_t durable,
                           const char *hpath, uint64_t *mseq)
{
    kv_status s = KV_OK;
    bc_file *f = db->files[i];
    uint64_t size = atomic_load(&f->size);
    bc_load_ctx c = {.db = db, .file = f, .fast = fast};
    if (hpath) {
        if (!(fast && bc_startup_load_hint(fast, &c, i, &s)))
            s = load_hint(&c, hpath, size);
        if (s == KV_OK) {
            atomic_fetch_add(&db->hint_loads, 1);
            atomic_store(&f->has_hint, true);
            goto out;
        }
        if (s != KV_CORRUPTION && s != KV_INVALID)
            goto out;
        atomic_fetch_add(&db->hint_rejects, 1); /* damaged: scan the data file instead */
        kv_errclear();
    }
    s = scan_file(&c, f->f->path, sealed, size, durable);
out:
    atomic_fetch_add_explicit(&f->live_bytes, c.live, memory_order_relaxed);
    if (c.max_seq > *mseq)
        *mseq = c.max_seq;
    return s;
}

/* The file table from the plan: every data file MANIFEST names, in id order. *active gets the
 * one MANIFEST calls active (the only one that may end in a torn tail), or NULL, and *durable
 * its durable length in bytes (0 when none). */
static kv_status take_files(bc_db *db, bc_plan *p, bc_file **active, uint64_t *durable)
{
    *active = NULL;
    *durable = 0;
    for (size_t i = 0; i < p->nfiles; i++) {
        bc_plan_file *pf = &p->files[i];
        bc_file *f = bc_file_new(db, pf->m.id, pf->m.kind, pf->m.salt, pf->f, pf->size);
        if (!f || !bc_files_add(db, f)) {
            free(f);
            return kv_error(KV_NOMEM, "bitcask: out of memory");
        }
        pf->f = NULL; /* the table's now */
        if (pf->m.state == BC_MAN_ACTIVE) {
            *active = f;
            *durable = pf->m.length;
        }
    }
    return KV_OK;
}

kv_status bc_recover(bc_db *db, bc_file **prev_active)
{
    *prev_active = NULL;
    bc_plan plan;
    kv_status s = bc_plan_make(db->fs, db->dir, !db->read_only, &plan);
    if (s != KV_OK)
        return s;
    /* ids are never handed out twice: past every id MANIFEST ever handed out and every name on
     * disk, counted before anything is deleted */
    uint64_t next = plan.man.next_id > plan.max_id + 1 ? plan.man.next_id : plan.max_id + 1;
    atomic_store(&db->next_id, next > 1 ? next : 1);
    if (!db->read_only)
        s = bc_plan_apply(db->fs, db->dir, &plan);
    bc_file *active = NULL;
    uint64_t durable = 0;
    if (s == KV_OK)
        s = take_files(db, &plan, &active, &durable);
    uint64_t max_seq = plan.man.max_seq;
    /* each file's hint, when hints are used and it has one (the same order: both by id) */
    char **hpaths = plan.nfiles ? calloc(plan.nfiles, sizeof *hpaths) : NULL;
    if (s == KV_OK && plan.nfiles && !hpaths)
        s = kv_error(KV_NOMEM, "bitcask: out of memory");
    for (size_t i = 0; i < plan.nfiles && s == KV_OK && db->use_hints; i++)
        if (plan.files[i].hint && !(hpaths[i] = kv_path_join(db->dir, plan.files[i].hint)))
            s = kv_error(KV_NOMEM, "bitcask: out of memory");
    bc_startup *fast = s == KV_OK && db->startup_fast ? bc_startup_begin(db, hpaths) : NULL;
    for (size_t i = 0; i < db->nfiles && s == KV_OK; i++) {
        bc_file *f = db->files[i];
        s = load_file(db, fast, i, f != active, f == active ? durable : 0, hpaths[i], &max_seq);
    }
    bc_startup_end(fast, db); /* its threads joined, on every path */
    for (size_t i = 0; hpaths && i < plan.nfiles; i++)
        free(hpaths[i]);
    free(hpaths);
    /* MANIFEST's state is the handle's from now on */
    db->man = plan.man;
    memset(&plan.man, 0, sizeof plan.man);
    bc_plan_free(&plan);
    if (s != KV_OK)
        return s;
    if (!bc_kd_purge_tombs(&db->kd))
        return kv_error(KV_NOMEM, "bitcask: out of memory");
    for (size_t i = 0; i < db->nfiles; i++)
        atomic_store(&db->files[i]->sealed, true); /* a new active file follows */
    db->next_seq = max_seq + 1;
    *prev_active = active;
    return KV_OK;
}
