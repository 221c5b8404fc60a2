/* bc_startup.c: the start-up accelerations (bc_startup.h): batched and prefetched keydir
 * inserts, the hint reader thread's pipeline (bc_hintload.h) and the keydir's prefault thread
 * (bc_prefault.h). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "bc_hintload.h"
#include "bc_prefault.h"
#include "bc_startup.h"

/* Entries are staged in batches and inserted in file order, each keydir slot prefetched
 * PREFETCH_AHEAD inserts before its use: every insert lands at a random place in a table of
 * about 100 bytes per key, and with the next entries known in advance their cache misses
 * overlap instead of following one another. Large batches sorted by home slot would walk the
 * table in order, but once the misses overlap the sort and its staging cost more than they
 * save. The batch stays in the CPU cache, and nothing is reordered: the entries of one key
 * arrive in file order, which is all bc_kd_put_if_newer needs. */
#define STAGE_MAX      4096 /* entries per batch (192 KiB of staging) */
#define PREFETCH_AHEAD 16   /* entries between a prefetch and its insert */
/* The same for the reader thread's slots: this thread then only inserts, so more inserts fit
 * between a prefetch and its use (results/default/NOTES.md, "bitcask start-up: how the figures
 * came about") */
#define SLOT_PREFETCH_AHEAD 32

/* A staged entry: the key is copied when short, so the insert reads nothing else at random. */
typedef struct stage_ent {
    uint64_t offset, seq;
    uint32_t rec_size, hash;
    uint16_t klen; /* keys are 1..65535 bytes */
    uint8_t tomb;
    union {
        uint8_t bytes[BC_KD_INLINE];
        const uint8_t *ptr; /* a longer key, inside the file's bytes (valid until the drain) */
    } k;
} stage_ent;

struct bc_startup {
    stage_ent stage[STAGE_MAX];
    size_t n;        /* entries staged */
    bc_prefault pf;  /* faults each new keydir table in on another core */
    bc_hintload hl;  /* the reader thread's pipeline */
    bool piped;      /* the reader runs */
    bc_hl_job *jobs; /* one per hint file, in file order */
    size_t *job_of;  /* file number -> its job + 1 (0: none) */
    size_t next_job; /* the job whose batches come next */
};

/* Inserts n staged entries of c->file, after making room for all of them (no growth while
 * inserting: the prefetched slots stay the right ones). */
static kv_status insert_staged(bc_startup *su, bc_load_ctx *c, const stage_ent *e, size_t n)
{
    bc_keydir *kd = &c->db->kd;
    if (!n)
        return KV_OK;
    if (!bc_kd_reserve(kd, n, &su->pf))
        return kv_error(KV_NOMEM, "bitcask: out of memory loading the keydir");
    for (size_t i = 0; i < n && i < PREFETCH_AHEAD; i++)
        bc_kd_prefetch_home(kd, e[i].hash);
    kv_status s = KV_OK;
    for (size_t i = 0; i < n && s == KV_OK; i++) {
        if (i + PREFETCH_AHEAD < n)
            bc_kd_prefetch_home(kd, e[i + PREFETCH_AHEAD].hash);
        bc_loc loc = {.offset = e[i].offset,
                      .seq = e[i].seq,
                      .file_id = (uint32_t)c->file->id,
                      .rec_size = e[i].rec_size};
        const uint8_t *key = e[i].klen <= BC_KD_INLINE ? e[i].k.bytes : e[i].k.ptr;
        s = bc_load_insert(c, key, e[i].klen, e[i].hash, &loc, e[i].tomb != 0);
    }
    return s;
}

/* Inserts n slots prepared by the reader thread in order, after making room for all of them,
 * each prefetched SLOT_PREFETCH_AHEAD entries before its insert. */
static kv_status insert_slots(bc_startup *su, bc_load_ctx *c, const bc_slot *e, size_t n)
{
    bc_keydir *kd = &c->db->kd;
    if (!n)
        return KV_OK;
    if (!bc_kd_reserve(kd, n, &su->pf))
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
            bc_load_count_live(c, r, &e[i].loc, e[i].tomb != 0, &prev);
    }
    return KV_OK;
}

/* The entry count a hint file's header announces, at most what its size can hold (a damaged
 * header must not make start-up allocate); 0 when it cannot be read. */
static uint64_t hint_entries(kv_fs *fs, const char *path)
{
    kv_file *hf = NULL;
    uint8_t hdr[BC_HINT_HDR];
    size_t got = 0;
    uint64_t hsize = 0, n = 0;
    if (kv_fs_open(fs, path, KV_FS_READ, &hf) == KV_OK && kv_file_size(hf, &hsize) == KV_OK &&
        kv_file_pread(hf, hdr, sizeof hdr, 0, &got) == KV_OK && got == sizeof hdr) {
        uint64_t fit = (hsize - got) / (BC_HINT_ENT_HDR + 1);
        n = bc_hint_count(hdr, got);
        n = n < fit ? n : fit;
    }
    kv_file_close(hf);
    kv_errclear();
    return n;
}

bc_startup *bc_startup_begin(bc_db *db, char *const *hpaths)
{
    bc_startup *su = calloc(1, sizeof *su);
    if (su && db->nfiles) {
        su->jobs = calloc(db->nfiles, sizeof *su->jobs);
        su->job_of = calloc(db->nfiles, sizeof *su->job_of);
    }
    if (!su || (db->nfiles && (!su->jobs || !su->job_of))) {
        bc_startup_end(su, db);
        kv_errclear();
        return NULL;
    }
    /* the hint files to read, in file order, and the keys they announce */
    size_t njobs = 0;
    uint64_t expect = 0;
    for (size_t i = 0; i < db->nfiles; i++) {
        if (!hpaths[i])
            continue;
        bc_file *f = db->files[i];
        su->jobs[njobs] = (bc_hl_job){
            .path = hpaths[i], .id = f->id, .salt = f->salt, .data_size = atomic_load(&f->size)};
        su->job_of[i] = ++njobs;
        expect += hint_entries(db->fs, hpaths[i]);
    }
    /* The reader starts first: it checks the first hint file's crc while this thread allocates
     * the keydir. */
    su->piped = njobs > 0 && bc_hl_start(&su->hl, db->fs, su->jobs, njobs);
    /* One table for every key the hints announce, faulted in while the load goes on (else the
     * table grows as it loads, each new table faulted in the same way). */
    if (expect > 0 && expect < ((uint64_t)1 << 32))
        (void)bc_kd_reserve(&db->kd, (size_t)expect, &su->pf);
    return su;
}

bool bc_startup_load_hint(bc_startup *su, bc_load_ctx *c, size_t i, kv_status *s)
{
    if (!su->piped || !su->job_of[i])
        return false;
    bc_hl_job *job = &su->jobs[su->job_of[i] - 1];
    assert(job == &su->jobs[su->next_job]); /* batches come in the order of the jobs */
    su->next_job++;
    for (;;) {
        const bc_hl_batch *b = bc_hl_next(&su->hl);
        kv_status st = insert_slots(su, c, b->e, b->n);
        bool eof = b->eof;
        bc_hl_put_back(&su->hl);
        if (st != KV_OK) {
            *s = st;
            return true;
        }
        if (eof)
            break;
    }
    if (job->max_seq > c->max_seq)
        c->max_seq = job->max_seq;
    *s = job->st == KV_OK ? KV_OK : kv_error(job->st, "%s", job->msg);
    return true;
}

kv_status bc_startup_stage(bc_startup *su, bc_load_ctx *c, const bc_rec *r, uint32_t hash)
{
    stage_ent *e = &su->stage[su->n];
    e->offset = r->offset;
    e->seq = r->seq;
    e->rec_size = r->rec_size;
    e->hash = hash;
    e->klen = (uint16_t)r->klen;
    e->tomb = r->tomb;
    if (r->klen <= BC_KD_INLINE)
        memcpy(e->k.bytes, r->key, r->klen);
    else
        e->k.ptr = r->key;
    if (++su->n == STAGE_MAX)
        return bc_startup_drain(su, c);
    return KV_OK;
}

kv_status bc_startup_drain(bc_startup *su, bc_load_ctx *c)
{
    size_t n = su->n;
    su->n = 0;
    return insert_staged(su, c, su->stage, n);
}

void bc_startup_drop(bc_startup *su)
{
    su->n = 0;
}

void bc_startup_end(bc_startup *su, bc_db *db)
{
    if (!su)
        return;
    bc_hl_stop(&su->hl); /* joins the reader, on every path */
    db->startup_hint_reader_files = su->hl.files_read;
    bc_prefault_finish(&su->pf); /* before anything may free the table, on every path */
    db->startup_prefault_tables = su->pf.tables;
    db->startup_prefault_bytes = su->pf.bytes;
    free(su->jobs);
    free(su->job_of);
    free(su);
}
