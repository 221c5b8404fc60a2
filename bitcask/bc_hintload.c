/* bc_hintload.c: start-up's hint reader thread and its ring of batches (see bc_hintload.h). */
#include "bc_hintload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "crc.h"

#include "bc_format.h"
#include "bc_prefault.h"

/* The reader's state while it walks one job. */
typedef struct reader {
    bc_hintload *hl;
    bc_hl_job *job;
    size_t jobno;
    size_t fill;      /* ring index of the batch it fills next */
    bc_hl_batch *cur; /* the batch being filled, or NULL (none acquired) */
    bool stopped;     /* bc_hl_stop was seen */
} reader;

/* ---- crc pieces (hl->mu held by the callers of claim and piece_done) ---- */

/* Claims the next crc piece not yet claimed, in job order: true and *job, *piece. */
static bool claim(bc_hintload *hl, size_t *job, size_t *piece)
{
    while (hl->cjob < hl->nprepared && hl->jobs[hl->cjob].next_piece >= hl->jobs[hl->cjob].npieces)
        hl->cjob++;
    if (hl->cjob == hl->nprepared)
        return false;
    *job = hl->cjob;
    *piece = hl->jobs[hl->cjob].next_piece++;
    return true;
}

/* The crc32 of one piece (no lock held: the image is read-only and the piece is the caller's). */
static uint32_t piece_crc(const bc_hl_job *j, size_t piece)
{
    size_t off = BC_HINT_HDR + piece * BC_HL_CRC_PIECE, n = j->img.len - off;
    if (n > BC_HL_CRC_PIECE)
        n = BC_HL_CRC_PIECE;
    (void)bc_populate_read(j->img.data + off, n); /* one call, not a fault per 16 pages */
    return kv_crc32(j->img.data + off, n);
}

static void piece_done(bc_hintload *hl, size_t job, size_t piece, uint32_t crc)
{
    hl->jobs[job].piece_crc[piece] = crc;
    hl->jobs[job].pieces_done++;
    pthread_cond_broadcast(&hl->cv);
}

/* Claims and computes one piece, mutex held on entry and on return (dropped meanwhile).
 * False when no piece is left to claim. */
static bool help_once(bc_hintload *hl)
{
    size_t job, piece;
    if (!claim(hl, &job, &piece))
        return false;
    pthread_mutex_unlock(&hl->mu);
    uint32_t crc = piece_crc(&hl->jobs[job], piece);
    pthread_mutex_lock(&hl->mu);
    piece_done(hl, job, piece, crc);
    return true;
}

/* The crc32 of a job's entry bytes, joined from its pieces (all done). */
static uint32_t joined_crc(const bc_hl_job *j)
{
    if (!j->npieces)
        return 0; /* kv_crc32 of no bytes */
    uint32_t crc = j->piece_crc[0];
    for (size_t i = 1; i < j->npieces; i++) {
        size_t n = j->img.len - BC_HINT_HDR - i * BC_HL_CRC_PIECE;
        crc = kv_crc32_combine(crc, j->piece_crc[i], n < BC_HL_CRC_PIECE ? n : BC_HL_CRC_PIECE);
    }
    return crc;
}

/* ---- the ring, reader side ---- */

static bool prepare_ahead(bc_hintload *hl);

/* Releases the images of the jobs the inserting thread is done with (unmapping a large file
 * takes the kernel a while, better spent here than on the inserting thread). hl->mu held on entry
 * and on return (dropped meanwhile). True when it released any. */
static bool release_consumed(bc_hintload *hl)
{
    size_t from = hl->released, to = hl->consumed;
    if (from == to)
        return false;
    hl->released = to;
    pthread_mutex_unlock(&hl->mu);
    for (size_t k = from; k < to; k++)
        bc_hl_job_release(&hl->jobs[k]);
    pthread_mutex_lock(&hl->mu);
    return true;
}

/* Waits for a free batch (the ring's next one in order), computing crc pieces of later files
 * meanwhile; false when stopped. */
static bool acquire(reader *r)
{
    bc_hintload *hl = r->hl;
    pthread_mutex_lock(&hl->mu);
    while (hl->count == BC_HL_SLOTS && !hl->stop)
        if (!release_consumed(hl) && !prepare_ahead(hl) && !help_once(hl))
            pthread_cond_wait(&hl->cv, &hl->mu);
    bool ok = !hl->stop;
    pthread_mutex_unlock(&hl->mu);
    if (!ok) {
        r->stopped = true;
        return false;
    }
    r->cur = &hl->ring[r->fill];
    r->cur->n = 0;
    r->cur->job = r->jobno;
    r->cur->eof = false;
    return true;
}

/* Hands the batch being filled over; false when stopped. */
static bool publish(reader *r)
{
    bc_hintload *hl = r->hl;
    pthread_mutex_lock(&hl->mu);
    bool ok = !hl->stop;
    if (ok) {
        hl->count++;
        pthread_cond_broadcast(&hl->cv);
    }
    pthread_mutex_unlock(&hl->mu);
    r->cur = NULL;
    r->fill = (r->fill + 1) % BC_HL_SLOTS;
    if (!ok)
        r->stopped = true;
    return ok;
}

/* bc_walk_hint_crc's callback: stages one entry (hash computed here, short keys copied). */
static kv_status on_entry(void *ctx, const bc_rec *rec)
{
    reader *r = ctx;
    if (!r->cur && !acquire(r))
        return KV_BUSY; /* stopped: the walk ends, nothing is reported */
    /* the slot the keydir will hold: every byte set (no padding in bc_slot) */
    bc_slot *e = &r->cur->e[r->cur->n];
    if (rec->klen <= BC_KD_INLINE) {
        memset(e->k.bytes, 0, BC_KD_INLINE);
        memcpy(e->k.bytes, rec->key, rec->klen);
    } else {
        e->k.ptr = (uint8_t *)(uintptr_t)rec->key; /* only read: bc_kd_put_slot_if_newer copies */
    }
    e->hash = bc_hash(rec->key, rec->klen);
    e->klen = (uint16_t)rec->klen;
    e->tomb = rec->tomb;
    e->state = BC_SLOT_FULL;
    e->loc = (bc_loc){.offset = rec->offset,
                      .seq = rec->seq,
                      .file_id = (uint32_t)r->job->id,
                      .rec_size = rec->rec_size};
    if (rec->seq > r->job->max_seq)
        r->job->max_seq = rec->seq;
    r->job->entries++;
    if (++r->cur->n == BC_HL_BATCH && !publish(r))
        return KV_BUSY;
    return KV_OK;
}

/* Maps job's hint file and sizes its crc pieces. A file system that cannot map leaves the
 * file to be read when its turn comes (read_job): reading every hint file here would hold them
 * all in memory at once. */
static kv_status prepare(kv_fs *fs, bc_hl_job *job)
{
    kv_status s = bc_hint_image_open(fs, job->path, &job->img);
    if (s != KV_OK || !job->img.map)
        return s; /* no pieces: read and checked whole by the reader (read_job) */
    size_t len = job->img.len, ents = len > BC_HINT_HDR ? len - BC_HINT_HDR : 0;
    size_t n = (ents + BC_HL_CRC_PIECE - 1) / BC_HL_CRC_PIECE;
    if (n && !(job->piece_crc = malloc(n * sizeof *job->piece_crc)))
        return kv_error(KV_NOMEM, "bitcask: out of memory reading %s", job->path);
    job->npieces = n;
    return KV_OK;
}

/* Reads an unmapped job's hint file (prepare) into a buffer, kept until bc_hl_job_release, and
 * computes its entries crc in *crc. */
static kv_status read_job(bc_hl_job *job, uint32_t *crc)
{
    kv_status s = bc_hint_image_read(&job->img, job->path);
    if (s != KV_OK)
        return s;
    size_t len = job->img.len;
    *crc = len > BC_HINT_HDR ? kv_crc32(job->img.data + BC_HINT_HDR, len - BC_HINT_HDR) : 0;
    return KV_OK;
}

/* Checks and walks job k: waits for (and computes) its crc pieces, then hands its entries
 * over. Returns the walk's status, or KV_BUSY when stopped. */
static kv_status walk_job(reader *r, bc_hl_job *job)
{
    bc_hintload *hl = r->hl;
    pthread_mutex_lock(&hl->mu);
    while (job->pieces_done < job->npieces && !hl->stop)
        if (!help_once(hl)) /* the inserting thread holds the last pieces */
            pthread_cond_wait(&hl->cv, &hl->mu);
    bool stop = hl->stop;
    pthread_mutex_unlock(&hl->mu);
    if (stop) {
        r->stopped = true;
        return KV_BUSY;
    }
    uint32_t crc = 0;
    if (job->img.map) {
        crc = joined_crc(job);
    } else {
        kv_status s = read_job(job, &crc);
        if (s != KV_OK)
            return s;
    }
    return bc_walk_hint_crc(job->path, job->img.data, job->img.len, job->id, job->salt,
                            job->data_size, false, crc, on_entry, r);
}

static void set_result(bc_hl_job *job, kv_status s)
{
    job->st = s;
    if (s != KV_OK) {
        snprintf(job->msg, sizeof job->msg, "%s", kv_errmsg());
        kv_errclear();
    }
}

/* Maps the next jobs in order, as long as fewer than BC_HL_AHEAD are mapped and not yet
 * released (hl->mu held on entry and on return, dropped meanwhile). True when it mapped any. */
static bool prepare_ahead(bc_hintload *hl)
{
    bool any = false;
    while (!hl->stop && hl->nprepared < hl->njobs && hl->nprepared < hl->released + BC_HL_AHEAD) {
        size_t k = hl->nprepared;
        bc_hl_job *job = &hl->jobs[k];
        pthread_mutex_unlock(&hl->mu);
        kv_status s = prepare(hl->fs, job);
        if (s != KV_OK) {
            set_result(job, s);
            job->failed = true;
            job->npieces = 0;
        }
        pthread_mutex_lock(&hl->mu);
        hl->nprepared = k + 1; /* its pieces may be claimed from now on */
        pthread_cond_broadcast(&hl->cv);
        any = true;
    }
    return any;
}

/* Waits until job k is mapped (mapping it, releasing what the inserting thread is done with,
 * computing crc pieces meanwhile); false when stopped. */
static bool wait_prepared(bc_hintload *hl, size_t k)
{
    pthread_mutex_lock(&hl->mu);
    while (!hl->stop && hl->nprepared <= k)
        if (!release_consumed(hl) && !prepare_ahead(hl) && !help_once(hl))
            pthread_cond_wait(&hl->cv, &hl->mu);
    bool ok = !hl->stop;
    pthread_mutex_unlock(&hl->mu);
    return ok;
}

static void *reader_main(void *arg)
{
    bc_hintload *hl = arg;
    reader r = {.hl = hl};
    for (size_t k = 0; k < hl->njobs && !r.stopped; k++) {
        bc_hl_job *job = &hl->jobs[k];
        r.job = job;
        r.jobno = k;
        if (!wait_prepared(hl, k))
            break;
        if (!job->failed) {
            kv_status s = walk_job(&r, job);
            if (r.stopped)
                break;
            set_result(job, s);
        }
        if (!r.cur && !acquire(&r))
            break;
        if (job->st != KV_OK)
            r.cur->n = 0; /* a structural error: the file's last entries are left to the scan */
        r.cur->eof = true;
        if (!publish(&r))
            break;
        hl->files_read++;
    }
    /* the images of the last files, as the inserting thread finishes with them */
    pthread_mutex_lock(&hl->mu);
    while (!hl->stop && hl->released < hl->njobs)
        if (!release_consumed(hl))
            pthread_cond_wait(&hl->cv, &hl->mu);
    pthread_mutex_unlock(&hl->mu);
    return NULL;
}

/* ---- a hint file's image ---- */

kv_status bc_hint_image_open(kv_fs *fs, const char *path, bc_hint_image *img)
{
    memset(img, 0, sizeof *img);
    uint64_t len = 0;
    kv_status s = kv_fs_open(fs, path, KV_FS_READ, &img->hf);
    if (s == KV_OK)
        s = kv_file_size(img->hf, &len);
    if (s == KV_OK && len > UINT32_MAX)
        s = kv_error(KV_CORRUPTION, "%s: a hint file of %llu bytes", path, (unsigned long long)len);
    if (s != KV_OK)
        return s;
    img->len = (size_t)len;
    if (len > 0 && kv_file_map(img->hf, len, &img->map) == KV_OK) {
        img->map_len = len;
        img->data = img->map;
    } else {
        kv_errclear();
        img->map = NULL;
    }
    return KV_OK;
}

kv_status bc_hint_image_read(bc_hint_image *img, const char *path)
{
    if (!(img->buf = malloc(img->len ? img->len : 1)))
        return kv_error(KV_NOMEM, "bitcask: out of memory reading %s", path);
    kv_status s = kv_file_read_exact(img->hf, img->buf, img->len, 0);
    if (s == KV_OK)
        img->data = img->buf;
    return s;
}

void bc_hint_image_release(bc_hint_image *img)
{
    if (img->map)
        kv_file_unmap(img->hf, img->map, img->map_len);
    free(img->buf);
    if (img->hf)
        kv_file_close(img->hf);
    memset(img, 0, sizeof *img);
}

/* ---- the opening thread's side ---- */

bool bc_hl_start(bc_hintload *hl, kv_fs *fs, bc_hl_job *jobs, size_t njobs)
{
    memset(hl, 0, sizeof *hl);
    if (!njobs || !bc_prefault_available())
        return false;
    hl->mem = malloc((size_t)BC_HL_SLOTS * BC_HL_BATCH * sizeof *hl->mem);
    if (!hl->mem)
        return false;
    for (size_t i = 0; i < BC_HL_SLOTS; i++)
        hl->ring[i].e = hl->mem + i * BC_HL_BATCH;
    hl->fs = fs;
    hl->jobs = jobs;
    hl->njobs = njobs;
    pthread_mutex_init(&hl->mu, NULL);
    pthread_cond_init(&hl->cv, NULL);
    if (pthread_create(&hl->th, NULL, reader_main, hl) != 0) {
        pthread_cond_destroy(&hl->cv);
        pthread_mutex_destroy(&hl->mu);
        free(hl->mem);
        memset(hl, 0, sizeof *hl);
        return false;
    }
    hl->running = true;
    return true;
}

const bc_hl_batch *bc_hl_next(bc_hintload *hl)
{
    pthread_mutex_lock(&hl->mu);
    while (hl->count == 0) {
        /* nothing to insert yet (typically: the reader checks the first file's crc): compute
         * a crc piece instead of sleeping */
        if (help_once(hl))
            hl->pieces_helped++;
        else
            pthread_cond_wait(&hl->cv, &hl->mu);
    }
    pthread_mutex_unlock(&hl->mu);
    return &hl->ring[hl->head];
}

void bc_hl_put_back(bc_hintload *hl)
{
    pthread_mutex_lock(&hl->mu);
    if (hl->ring[hl->head].eof)
        hl->consumed++;
    hl->head = (hl->head + 1) % BC_HL_SLOTS;
    hl->count--;
    pthread_cond_broadcast(&hl->cv);
    pthread_mutex_unlock(&hl->mu);
}

void bc_hl_job_release(bc_hl_job *job)
{
    bc_hint_image_release(&job->img);
    free(job->piece_crc);
    job->piece_crc = NULL;
}

void bc_hl_stop(bc_hintload *hl)
{
    if (!hl->running)
        return;
    pthread_mutex_lock(&hl->mu);
    hl->stop = true;
    pthread_cond_broadcast(&hl->cv);
    pthread_mutex_unlock(&hl->mu);
    pthread_join(hl->th, NULL);
    hl->running = false;
    for (size_t k = 0; k < hl->njobs; k++)
        bc_hl_job_release(&hl->jobs[k]);
    pthread_cond_destroy(&hl->cv);
    pthread_mutex_destroy(&hl->mu);
    free(hl->mem);
    hl->mem = NULL;
}
