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
 * With two CPUs, hint files are read, checked and decoded by a reader thread (bc_hintload.h)
 * while this thread inserts what it hands over (load_hint_piped); on one CPU this thread reads
 * them itself (load_hint_inline). Scans always run on this thread. */
#include <stdlib.h>
#include <string.h>

#include "bc_int.h"
#include "bc_hintload.h"
#include "bc_prefault.h"

/* Loading stages entries in small batches (the key copied when short) and inserts each batch in
 * file order, prefetching the keydir slot of the entry PREFETCH_AHEAD places further on: every
 * insert lands at a random place in a table of about 100 bytes per key, and with the next
 * entries known in advance their cache misses overlap instead of following one another. Large
 * batches sorted by home slot would walk the table in order, but once the misses overlap the sort
 * and its staging cost more than they save. The batch stays in the CPU cache, and nothing is
 * reordered: the entries of one key arrive in file order, which is all bc_kd_put_if_newer
 * needs. */
#define STAGE_MAX      4096 /* entries per batch (192 KiB of staging) */
#define PREFETCH_AHEAD 16   /* entries between a prefetch and its insert */
/* The same for the slots of the reader thread (insert_slots): this thread then only inserts, so
 * more inserts fit between a prefetch and its use; longer distances did not help
 * (results/default/NOTES.md, "bitcask start-up: how the figures came about") */
#define SLOT_PREFETCH_AHEAD 32

/* A staged entry: the key is copied when short, so the insert reads nothing else at random. */
typedef struct stage_ent {
    uint64_t offset, seq;
    uint32_t rec_size, hash;
    uint16_t klen; /* keys are 1..65535 bytes */
    uint8_t tomb;
    union {
        uint8_t bytes[BC_KD_INLINE];
        const uint8_t *ptr; /* a longer key, inside the file image (valid until load_drain) */
    } k;
} stage_ent;

/* The staging buffer, allocated once per start-up and shared by every file. */
typedef struct stage_buf {
    stage_ent *stage; /* cap entries, or NULL: entries go in one by one */
    size_t cap;
    bc_prefault *pf; /* faults each new keydir table in on another core (bc_prefault.h) */
} stage_buf;

typedef struct load_ctx {
    bc_db *db;
    bc_file *file;
    uint64_t max_seq;
    kv_buf *hint; /* when scanning: the hint entries being rebuilt */
    uint64_t hint_count;
    stage_buf *sb;
    size_t n;      /* entries staged */
    uint64_t live; /* bytes of this file's records the keydir points at */
} load_ctx;

/* Keeps the live bytes as the keydir changes (no pass over the whole keydir at the end):
 * effect r of inserting loc (tomb or not), which replaced prev. */
static void count_live(load_ctx *c, bc_kd_effect r, const bc_loc *loc, bool tomb,
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

static kv_status load_one(load_ctx *c, const stage_ent *e)
{
    bc_loc nw = {.offset = e->offset,
                 .seq = e->seq,
                 .file_id = (uint32_t)c->file->id,
                 .rec_size = e->rec_size};
    const uint8_t *key = e->klen <= BC_KD_INLINE ? e->k.bytes : e->k.ptr;
    bc_loc prev;
    bc_kd_effect r =
        bc_kd_put_if_newer(&c->db->kd, key, e->klen, e->hash, &nw, e->tomb != 0, &prev);
    if (r == BC_KD_NOMEM)
        return kv_error(KV_NOMEM, "bitcask: out of memory loading the keydir");
    if (r != BC_KD_OLDER)
        count_live(c, r, &nw, e->tomb != 0, &prev);
    return KV_OK;
}

/* Inserts n slots prepared by the reader thread (bc_hintload.h) in order, after making room
 * for all of them, each prefetched SLOT_PREFETCH_AHEAD entries before its insert (as
 * load_in_order). */
static kv_status insert_slots(load_ctx *c, const bc_slot *e, size_t n)
{
    if (!n)
        return KV_OK;
    bc_keydir *kd = &c->db->kd;
    if (!bc_kd_reserve(kd, n, c->sb->pf))
        return kv_error(KV_NOMEM, "bitcask: out of memory loading the keydir");
    for (size_t i = 0; i < n && i < SLOT_PREFETCH_AHEAD; i++)
        bc_kd_prefetch_home(kd, e[i].hash);
    for (size_t i = 0; i < n; i++) {
        if (i + SLOT_PREFETCH_AHEAD < n)
            bc_kd_prefetch_home(kd, e[i + SLOT_PREFETCH_AHEAD].hash);
        bc_loc prev;
        bc_kd_effect r = bc_kd_put_slot_if_newer(kd, &e[i], &prev);
        if (r == BC_KD_NOMEM)
            return kv_error(KV_NOMEM, "bitcask: out of memory loading the keydir");
        if (r != BC_KD_OLDER)
            count_live(c, r, &e[i].loc, e[i].tomb != 0, &prev);
    }
    return KV_OK;
}

/* Inserts n entries in order, each slot prefetched PREFETCH_AHEAD entries before its insert. */
static kv_status load_in_order(load_ctx *c, const stage_ent *e, size_t n)
{
    kv_status s = KV_OK;
    const bc_keydir *kd = &c->db->kd;
    for (size_t i = 0; i < n && s == KV_OK; i++) {
        if (i + PREFETCH_AHEAD < n)
            bc_kd_prefetch_home(kd, e[i + PREFETCH_AHEAD].hash);
        s = load_one(c, &e[i]);
    }
    return s;
}

/* Inserts n staged entries, after making room for all of them (no growth while inserting:
 * the prefetched slots stay the right ones). */
static kv_status insert_batch(load_ctx *c, const stage_ent *e, size_t n)
{
    if (!n)
        return KV_OK;
    if (!bc_kd_reserve(&c->db->kd, n, c->sb->pf))
        return kv_error(KV_NOMEM, "bitcask: out of memory loading the keydir");
    for (size_t i = 0; i < n && i < PREFETCH_AHEAD; i++)
        bc_kd_prefetch_home(&c->db->kd, e[i].hash);
    return load_in_order(c, e, n);
}

/* Inserts the entries staged by load_rec. */
static kv_status load_drain(load_ctx *c)
{
    size_t n = c->n;
    c->n = 0;
    return insert_batch(c, c->sb->stage, n);
}

static kv_status load_rec(void *vctx, const bc_rec *r)
{
    load_ctx *c = vctx;
    if (r->seq > c->max_seq)
        c->max_seq = r->seq;
    if (c->hint) {
        if (!bc_hint_add(c->hint, r->seq, r->offset, r->rec_size, r->tomb, r->key, r->klen))
            return kv_error(KV_NOMEM, "bitcask: out of memory rebuilding a hint");
        c->hint_count++;
    }
    stage_ent one, *e = c->sb->stage ? &c->sb->stage[c->n] : &one;
    e->offset = r->offset;
    e->seq = r->seq;
    e->rec_size = r->rec_size;
    e->hash = bc_hash(r->key, r->klen);
    e->klen = (uint16_t)r->klen;
    e->tomb = r->tomb;
    if (r->klen <= BC_KD_INLINE)
        memcpy(e->k.bytes, r->key, r->klen);
    else
        e->k.ptr = r->key;
    if (!c->sb->stage)
        return load_one(c, e);
    if (++c->n == c->sb->cap)
        return load_drain(c);
    return KV_OK;
}

/* Loads a data file's entries from its hint file on this thread (no reader thread: one CPU, or
 * it could not start). KV_OK; KV_CORRUPTION or KV_INVALID for a damaged hint (the caller scans
 * the data file); another error stops the start-up. */
static kv_status load_hint_inline(load_ctx *c, const char *hpath, uint64_t size)
{
    bc_hint_image img;
    kv_status s = bc_hint_image_open(c->db->fs, hpath, &img);
    if (s == KV_OK && img.map)
        (void)bc_populate_read(img.map, img.len); /* one call, not a fault per 16 pages */
    else if (s == KV_OK)
        s = bc_hint_image_read(&img, hpath); /* the fs cannot map */
    /* Both crcs are checked before the first entry is applied. Should a later structural
     * check fail, the entries applied are true records of this file, which the scan
     * finds again (same seq and offset: no change). */
    if (s == KV_OK)
        s = bc_walk_hint(hpath, img.data, img.len, c->file->id, c->file->salt, size, false,
                         load_rec, c);
    if (s == KV_OK)
        s = load_drain(c);
    c->n = 0; /* on an error the rest is found again by the scan */
    bc_hint_image_release(&img);
    return s;
}

/* Loads a data file's entries as the reader thread hands them over (bc_hintload.h): inserts
 * every batch of job, up to and including its end-of-file batch, then returns the reader's
 * result for the file (as load_hint_inline), or the insert's error. */
static kv_status load_hint_piped(load_ctx *c, bc_hintload *hl, bc_hl_job *job)
{
    for (;;) {
        const bc_hl_batch *b = bc_hl_next(hl);
        kv_status s = insert_slots(c, b->e, b->n);
        bool eof = b->eof;
        bc_hl_put_back(hl);
        if (s != KV_OK)
            return s;
        if (eof)
            break;
    }
    if (job->st != KV_OK)
        return kv_error(job->st, "%s", job->msg);
    if (job->max_seq > c->max_seq)
        c->max_seq = job->max_seq;
    return KV_OK;
}

/* Loads a data file by scanning it under reclog's damage rule: a sealed file must be whole; the
 * active one may end in a torn tail past durable (bytes MANIFEST says were durable), which a
 * writable open cuts off durably (truncate, fdatasync) and a read-only one leaves in place and
 * ignores; valid records that end before durable are KV_CORRUPTION naming the file and where
 * they end, and nothing is cut. A writable open then writes a fresh hint file for it. */
static kv_status scan_file(load_ctx *c, const char *dpath, bool sealed, uint64_t size,
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
    if (s == KV_OK)
        s = load_drain(c);
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

/* Loads one data file: from its hint file (hpath, or NULL when it has none) when that is valid
 * (through the reader thread when job is not NULL), else by scanning (durable: the bytes of an
 * active file MANIFEST says were durable; a valid hint describes the whole file, which
 * bc_plan_make found at least that long). */
static kv_status load_file(bc_db *db, stage_buf *sb, bc_file *f, bool sealed, uint64_t durable,
                           const char *hpath, bc_hintload *hl, bc_hl_job *job, uint64_t *mseq)
{
    kv_status s = KV_OK;
    uint64_t size = atomic_load(&f->size);
    load_ctx c = {.db = db, .file = f, .sb = sb};
    if (db->use_hints && hpath) {
        s = job ? load_hint_piped(&c, hl, job) : load_hint_inline(&c, hpath, size);
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
    /* size the keydir once from the hint headers' entry counts, so loading does not grow it,
     * and list the hint files to load, for the reader thread (bc_hintload.h) */
    uint64_t expect = 0;
    char **hpaths = plan.nfiles ? calloc(plan.nfiles, sizeof *hpaths) : NULL;
    bc_hl_job *jobs = db->use_hints && plan.nfiles ? calloc(plan.nfiles, sizeof *jobs) : NULL;
    size_t njobs = 0;
    bool jobs_ok = jobs != NULL;
    if (s == KV_OK && plan.nfiles && !hpaths)
        s = kv_error(KV_NOMEM, "bitcask: out of memory");
    for (size_t i = 0; i < plan.nfiles && s == KV_OK && db->use_hints; i++) {
        bc_file *f = db->files[i]; /* the same order: both by id */
        if (!plan.files[i].hint)
            continue;
        char *p = hpaths[i] = kv_path_join(db->dir, plan.files[i].hint);
        if (!p) {
            s = kv_error(KV_NOMEM, "bitcask: out of memory");
            break;
        }
        if (jobs)
            jobs[njobs++] = (bc_hl_job){
                .path = p, .id = f->id, .salt = f->salt, .data_size = atomic_load(&f->size)};
        kv_file *hf = NULL;
        uint8_t hdr[BC_HINT_HDR];
        size_t got = 0;
        uint64_t hsize = 0;
        if (kv_fs_open(db->fs, p, KV_FS_READ, &hf) == KV_OK && kv_file_size(hf, &hsize) == KV_OK &&
            kv_file_pread(hf, hdr, sizeof hdr, 0, &got) == KV_OK && got == sizeof hdr) {
            /* a damaged header must not make us allocate: a count is at most what fits */
            uint64_t n = bc_hint_count(hdr, got), fit = (hsize - got) / (BC_HINT_ENT_HDR + 1);
            expect += n < fit ? n : fit;
        }
        kv_file_close(hf);
        kv_errclear();
    }
    /* The reader starts first: it checks the first hint file's crc while this thread allocates
     * the keydir. Without it (one CPU, no thread) this thread reads the hints itself. */
    bc_hintload hl = {0};
    bool piped = s == KV_OK && jobs_ok && njobs > 0 && bc_hl_start(&hl, db->fs, jobs, njobs);
    /* Every table the load allocates (this one, or each growth when the size is not known) is
     * faulted in by the prefault thread while this one reads, checks and inserts (bc_prefault.h);
     * the helper is joined before that table is replaced and when the load ends. */
    bc_prefault pf = {0};
    if (s == KV_OK && expect > 0 && expect < ((uint64_t)1 << 32))
        (void)bc_kd_reserve(&db->kd, (size_t)expect, &pf); /* else the table grows as it loads */
    /* staging for the batched inserts, shared by every file; without it entries go in one by
     * one (slower, same result) */
    stage_buf sb = {.cap = STAGE_MAX, .pf = &pf};
    sb.stage = malloc(sb.cap * sizeof *sb.stage);
    size_t next_job = 0;
    for (size_t i = 0; i < db->nfiles && s == KV_OK; i++) {
        bc_file *f = db->files[i];
        const char *hp = db->use_hints ? hpaths[i] : NULL;
        bc_hl_job *job = NULL;
        if (piped && hp) /* the jobs were listed in this order */
            job = &jobs[next_job++];
        s = load_file(db, &sb, f, f != active, f == active ? durable : 0, hp, &hl, job, &max_seq);
    }
    bc_hl_stop(&hl); /* joins the reader, on every path */
    db->startup_hint_reader_files = hl.files_read;
    for (size_t i = 0; hpaths && i < plan.nfiles; i++)
        free(hpaths[i]);
    free(hpaths);
    free(jobs);
    free(sb.stage);
    bc_prefault_finish(&pf); /* before anything may free the table, on every path */
    db->startup_prefault_tables = pf.tables;
    db->startup_prefault_bytes = pf.bytes;
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
