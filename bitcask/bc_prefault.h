/* bc_prefault.h: faulting a new keydir table in on another core while start-up goes on.
 *
 * A table of 2M slots (1M keys) is 96 MB of fresh memory, and the kernel zeroes each page of it
 * where it is first written (the kernel's clear_page): a large share of a start-up from hint
 * files, which otherwise runs on the loading thread. Start-up knows the table's size before it
 * inserts (bc_kd_reserve), so a prefault thread asks the kernel to fault the table in (madvise
 * MADV_POPULATE_WRITE, Linux 5.14), 2 MiB at a time from the start, while the loading thread reads
 * and checks the hint or data files and inserts. The helper never reads or writes the table itself:
 * MADV_POPULATE_WRITE maps each missing page as a write fault would, without changing what the
 * memory holds, and leaves pages already present alone. So the loading thread may write anywhere in
 * the table at any time (a page it touches first is simply faulted in by itself, as without a
 * helper); the only rule is that the table is not freed while the helper may still name it, which
 * bc_prefault_finish (stop and join) guarantees. (The same move as the keydir's spare table,
 * bc_kd_table_new, and as an allocator's background thread, e.g. jemalloc's.)
 *
 * Where the kernel lacks MADV_POPULATE_WRITE, the process may run on one CPU only, or the thread
 * cannot be created, nothing happens and the loading thread faults the pages in itself, as
 * before. */
#ifndef KVLAB_BC_PREFAULT_H
#define KVLAB_BC_PREFAULT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BC_PREFAULT_MIN   ((size_t)4 << 20) /* bytes: smaller tables are not worth a thread */
#define BC_PREFAULT_CHUNK ((size_t)2 << 20) /* bytes per madvise: how soon a stop is seen */

/* One helper at a time. Zero-initialize ({0}); only the thread that owns the table calls these. */
typedef struct bc_prefault {
    pthread_t th;
    bool running;     /* th was created and not yet joined */
    atomic_bool stop; /* set by bc_prefault_finish: the helper stops after its current chunk */
    uint8_t *base;    /* the region being faulted in (not owned) */
    size_t len;       /* its bytes */
    size_t done;      /* bytes the running helper faulted in (its own; read after the join) */
    uint64_t tables;  /* helpers that faulted in at least one chunk (after their join) */
    uint64_t bytes;   /* bytes faulted in by all joined helpers */
} bc_prefault;

/* Faults in, for writing, every whole 4 KiB page inside [p, p + len) (madvise
 * MADV_POPULATE_WRITE) without changing what the memory holds. Returns true when that is done
 * (also when the range holds no whole page), false when the kernel lacks MADV_POPULATE_WRITE
 * or refuses (out of memory, a signal): the caller's first writes then fault the pages in. Used
 * by the helper below, chunk by chunk, and by bc_kd_table_new for the spare table. */
bool bc_prefault_range(void *p, size_t len);

/* Maps in, for reading, every whole 4 KiB page inside [p, p + len) of a file mapping (madvise
 * MADV_POPULATE_READ, Linux 5.14) in one call, instead of a page fault per 16 pages as the
 * first reads would take (the kernel's fault-around): a checksum over a fresh mapping is then
 * several times slower than over one already mapped, and one call maps the pages in for less.
 * Only advice: returns false (nothing to undo; the reads fault the pages in) when the kernel
 * lacks it or refuses. Start-up's hint reader calls it on each piece before its crc
 * (bc_hintload.h). */
bool bc_populate_read(const void *p, size_t len);

/* Whether a helper may start: the calling thread may run on at least two CPUs (its affinity
 * mask). On one CPU the helper could only take turns with the loading thread, adding a thread
 * and nothing else, so bc_prefault_start starts none. */
bool bc_prefault_available(void);

/* Finishes any running helper (bc_prefault_finish), then, when len >= BC_PREFAULT_MIN bytes, the
 * kernel has MADV_POPULATE_WRITE and bc_prefault_available(), starts one faulting in [p, p + len).
 * p must stay allocated until bc_prefault_finish returns. Returns whether a helper was started
 * (false: the thread could not be created, or not worth it: one CPU, a small region; nothing to
 * undo). */
bool bc_prefault_start(bc_prefault *pf, void *p, size_t len);

/* Stops the running helper, if any (it ends after its current chunk of at most
 * BC_PREFAULT_CHUNK bytes) and joins it, adding what it did to pf->tables and pf->bytes. After
 * it returns the region may be freed. Idempotent. */
void bc_prefault_finish(bc_prefault *pf);

/* Like bc_prefault_finish, but lets the helper run to the end of its region first (it stops
 * early only when madvise fails). */
void bc_prefault_wait(bc_prefault *pf);

#endif
