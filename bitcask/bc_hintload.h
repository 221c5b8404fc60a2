/* bc_hintload.h: start-up's hint reader thread, the first stage of a two-stage pipeline.
 *
 * Loading a keydir from hint files is two kinds of work: reading each hint file, checking its
 * crcs and structure, decoding its entries and hashing their keys (sequential reads and
 * arithmetic), and inserting the entries into the keydir (a cache miss at a random place in a
 * 96 MB table per key, which keeps one core's memory system busy on its own). The first kind is
 * a large share of the loading thread's time and needs nothing from the keydir. So when the
 * process may run on two CPUs, a reader thread does the first kind for every hint file,
 * in file order, and hands the decoded entries over as ready-made keydir slots in batches through
 * a ring (BC_HL_SLOTS batches of BC_HL_BATCH entries), while the opening thread inserts them
 * (bc_startup.c): the classic producer/consumer pipeline with a bounded buffer.
 *
 * Nothing is weakened: for each hint file the reader checks the header crc and the crc of all
 * entry bytes (bc_walk_hint_crc) before it hands over the first entry of that file, exactly as
 * the one-thread load does; a file whose check fails hands over nothing (a structural error found
 * later in the walk ends the file's entries there: every entry handed over is a true record of
 * the file, which the scan finds again). Each file ends with an end-of-file batch carrying the
 * result of its walk; the opening thread then scans the data file itself when the hint was bad
 * (while the reader goes on with the next hint file). Entries of one file arrive in file order,
 * files in the order given, so the newest-record rule sees what the one-thread load sees.
 *
 * The entries crc of a file must be known before its first entry goes in, so at first the
 * opening thread has nothing to insert. The crc is therefore computed in pieces of
 * BC_HL_CRC_PIECE bytes that either thread may claim (in order, under the ring's mutex) and joined
 * with kv_crc32_combine (zlib's crc32_combine): the opening thread computes pieces while it has
 * nothing to insert, the reader computes pieces of later files while the ring is full. Each piece's
 * pages are mapped in with one madvise call first (bc_populate_read). The reader also unmaps the
 * files the opening thread is done with.
 *
 * A long key (more than BC_KD_INLINE bytes) is handed over as a pointer into the hint file's
 * image (mapping or buffer), which stays until the opening thread has taken the file's
 * end-of-file batch. The reader maps the files in order, at most BC_HL_AHEAD of them not yet
 * released at a time (each holds a descriptor while mapped); a file system that cannot map has
 * each file read into a buffer when its turn comes. */
#ifndef KVLAB_BC_HINTLOAD_H
#define KVLAB_BC_HINTLOAD_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bc_keydir.h"
#include "fs.h"
#include "status.h"

#define BC_HL_BATCH     2048 /* entries per batch (96 KiB) */
#define BC_HL_SLOTS     32   /* batches in the ring: the reader runs at most this far ahead */
#define BC_HL_CRC_PIECE ((size_t)512 << 10) /* bytes of hint entries per crc piece */
#define BC_HL_AHEAD     4 /* hint files open (mapped) at once at most: bounds the descriptors */

/* A hint file's bytes in memory: its mapping when the file system can map, else a buffer it was
 * read into. */
typedef struct bc_hint_image {
    kv_file *hf;         /* the open hint file, or NULL */
    const void *map;     /* its mapping (map_len bytes), or NULL */
    uint64_t map_len;    /* bytes mapped */
    uint8_t *buf;        /* or the buffer it was read into (bc_hint_image_read) */
    const uint8_t *data; /* the image (map or buf): len bytes; NULL until mapped or read */
    size_t len;          /* the file's size in bytes */
} bc_hint_image;

/* Opens the hint file at path (zeroing *img first) and maps it when the file system can (and
 * the file is not empty); otherwise img->data stays NULL until bc_hint_image_read. Errors:
 * KV_IO (open, size), KV_CORRUPTION (a hint file over 4 GiB, which no writer makes). On error
 * what was opened stays in *img for bc_hint_image_release. */
kv_status bc_hint_image_open(kv_fs *fs, const char *path, bc_hint_image *img);
/* Reads an image that bc_hint_image_open could not map into a malloc'd buffer (owned by img,
 * freed by bc_hint_image_release). Errors: KV_NOMEM (out of memory, short read). */
kv_status bc_hint_image_read(bc_hint_image *img, const char *path);
/* Unmaps or frees the image and closes the file. Idempotent. */
void bc_hint_image_release(bc_hint_image *img);

/* One hint file to read. The opening thread fills the inputs before bc_hl_start; the reader
 * fills the outputs, which the opening thread may read once it has taken the file's
 * end-of-file batch (the ring's mutex orders them). */
typedef struct bc_hl_job {
    /* inputs */
    char *path;         /* the hint file (owned by the caller) */
    uint64_t id;        /* the data file it must describe */
    uint64_t salt;      /* that file's salt (its header's) */
    uint64_t data_size; /* and its bytes */
    /* outputs */
    kv_status st;      /* the walk's result (KV_CORRUPTION: scan the data file) */
    char msg[512];     /* the reader's error message when st is not KV_OK */
    uint64_t max_seq;  /* highest seq among the entries handed over */
    uint64_t entries;  /* entries handed over */
    bc_hint_image img; /* the file's bytes, kept until bc_hl_job_release */
    bool failed;       /* the file could not be opened (st says why): no crc, no walk */
    /* the crc32 of the entry bytes, in pieces of BC_HL_CRC_PIECE bytes that either thread may
     * compute (claimed in order under the ring's mutex), joined when all are done */
    size_t npieces, next_piece, pieces_done;
    uint32_t *piece_crc; /* npieces crcs (malloc'd) */
} bc_hl_job;

/* A batch handed over: n entries of job number job, then (eof) the end of that job. */
typedef struct bc_hl_batch {
    bc_slot *e; /* BC_HL_BATCH entries of room, each a full keydir slot (bc_kd_put_slot_if_newer) */
    size_t n;
    size_t job;
    bool eof;
} bc_hl_batch;

/* The pipeline. Only the opening thread calls the functions below. */
typedef struct bc_hintload {
    kv_fs *fs;
    bc_hl_job *jobs;
    size_t njobs;
    bc_hl_batch ring[BC_HL_SLOTS];
    bc_slot *mem;       /* the ring's entries: BC_HL_SLOTS * BC_HL_BATCH */
    size_t head, count; /* the next batch to take; batches handed over and not yet returned */
    bool stop;          /* bc_hl_stop: the reader ends at its next hand-over */
    size_t nprepared; /* jobs [0, nprepared) are mapped (or failed): their pieces may be claimed */
    size_t consumed;  /* jobs whose end-of-file batch the inserting thread returned */
    size_t released;  /* jobs whose image the reader released (all before it) */
    size_t cjob;      /* the first job that may have an unclaimed crc piece */
    pthread_mutex_t mu; /* guards the fields above and the jobs' crc pieces */
    pthread_cond_t cv;  /* any change of them (two threads: a broadcast wakes the other) */
    pthread_t th;
    bool running;           /* th was created and not yet joined */
    uint64_t files_read;    /* jobs the reader finished (read after the join) */
    uint64_t pieces_helped; /* crc pieces the inserting thread computed while it waited */
} bc_hintload;

/* Starts the reader on jobs[0..njobs) (njobs >= 1; jobs stays the caller's and must outlive
 * bc_hl_stop). Starts nothing and returns false (the caller then loads on its own thread) when
 * the process may run on one CPU only (bc_prefault_available: the reader could only take turns
 * with the inserting thread), or the ring's 3 MiB or the thread cannot be had. */
bool bc_hl_start(bc_hintload *hl, kv_fs *fs, bc_hl_job *jobs, size_t njobs);

/* The next batch, in order (blocks until the reader hands it over). The caller inserts its
 * entries, then returns it with bc_hl_put_back before asking for the next. Never NULL while
 * jobs remain: the reader hands over an end-of-file batch for every job unless stopped. */
const bc_hl_batch *bc_hl_next(bc_hintload *hl);
/* Returns the batch bc_hl_next gave, so the reader may fill it again. */
void bc_hl_put_back(bc_hintload *hl);

/* Stops the reader (it ends at its next hand-over, or after the walk of the current file's
 * next batch) and joins it, then releases every job's image (bc_hl_job_release) and the ring.
 * On every path, errors included, before the jobs go away. Idempotent. */
void bc_hl_stop(bc_hintload *hl);

/* Unmaps or frees a job's image and closes its file. Idempotent. */
void bc_hl_job_release(bc_hl_job *job);

#endif
