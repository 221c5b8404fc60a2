/* warm.c: loads the data file into the buffer pool in the background after open, when it fits
 * in the pool's budget (InnoDB's buffer-pool load at start-up, innodb_buffer_pool_load_at_
 * startup; docs/btree.md section 3).
 *
 * By default the load runs at open, on every core (up to 4 threads), and kv_open returns once
 * the pool holds the file: on a 2-core machine a background load shared the cores with the
 * first lookups and slowed them more than it saved (docs/btree.md section 3.2 has the figures).
 * Option warm=1 keeps the background load, warm=0 turns it off.
 *
 * Without it a reopened database starts with an empty pool, and the first reads pay one pread
 * and one CRC per page they touch, one 4 KiB page at a time and under the pool's write lock.
 * The warmer reads the file sequentially in 1 MiB chunks, copies each page into a frame it
 * reserved (bt_pool_reserve) and checks it exactly as a miss does (CRC, then structure), all
 * with no lock held, then hands the good pages to the pool (bt_pool_adopt), which keeps only
 * those nobody cached meanwhile and drops the batch if a write-back or checkpoint wrote to the
 * data file since the chunk was read. A page that fails its check is left out: its first
 * real read reports the KV_CORRUPTION (or KV_IO) as before. A failed read stops the warmer. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "btree_int.h"

#define WARM_CHUNK ((size_t)1 << 20) /* bytes read per pread */
#define WARM_BATCH 64                /* pages put in the pool per write lock */

/* One warming thread's share: pages [first, end) (btree_int.h). */
typedef struct warm_range warm_range;

static void *warm_main(void *arg)
{
    warm_range *r = arg;
    bt_db *db = r->db;
    bt_pool *p = &db->pool;
    size_t per = WARM_CHUNK / db->ps;
    uint8_t *buf = malloc(per * db->ps);
    bool *ok = malloc(per);
    bt_frame **fr = malloc(per * sizeof *fr);
    uint32_t pg = r->first;
    bool full = false;
    while (buf && ok && fr && !full && pg < r->end && !atomic_load(&db->warm_stop)) {
        uint64_t seq = atomic_load(&p->disk_seq);
        if (seq & 1) { /* a write-back or checkpoint is writing pages: wait for it */
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
            continue;
        }
        size_t n = r->end - pg < per ? r->end - pg : per;
        if (kv_file_read_exact(db->data, buf, n * db->ps, (uint64_t)pg * db->ps) != KV_OK)
            break; /* the pages are read (and the error reported) when they are used */
        size_t got = bt_pool_reserve(p, fr, n);
        full = got < n;
        /* Copied and checked with no lock held; handed over WARM_BATCH pages per write lock,
         * which then only links frames into the hash (readers wait a few microseconds). */
        for (size_t i = 0; i < got; i++) {
            uint32_t no = pg + (uint32_t)i;
            memcpy(fr[i]->data, buf + i * db->ps, db->ps);
            ok[i] = bt_pg_crc_ok(fr[i]->data, db->ps, no) && !bt_pg_sane(fr[i]->data, db->ps, no);
        }
        size_t j = 0;
        while (j < got) {
            size_t k = got - j < WARM_BATCH ? got - j : WARM_BATCH;
            if (bt_pool_adopt(p, pg + (uint32_t)j, fr + j, ok + j, k, seq) == SIZE_MAX) {
                /* A write reached the data file meanwhile: free the other frames (a page that
                 * failed its check is never adopted) and read the rest again. */
                memset(ok + j + k, 0, got - j - k);
                bt_pool_adopt(p, pg + (uint32_t)(j + k), fr + j + k, ok + j + k, got - j - k, seq);
                full = false;
                break;
            }
            j += k;
        }
        pg += (uint32_t)j;
    }
    free(buf);
    free(ok);
    free(fr);
    return NULL;
}

/* Threads of the warm-up at open: one per core, at most this many. */
#define WARM_THREADS 4

void bt_warm_start(bt_db *db, bool at_open)
{
    uint64_t pages = db->meta.hwm;
    if (pages <= 1 || pages - 1 > db->pool.budget)
        return; /* empty, or does not fit: a sequential load would only evict itself */
    db->warm_end = db->meta.hwm;
    atomic_store(&db->warm_stop, false);
    if (!at_open) {
        db->warm_all = (warm_range){db, 1, db->warm_end};
        db->warm_running = pthread_create(&db->warmer, NULL, warm_main, &db->warm_all) == 0;
        return;
    }
    /* At open: the file split in contiguous shares, one per core; the calling thread takes
     * the first. A share a thread could not be started for is left to the first reads. */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t nt = cpus < 1 ? 1 : cpus > WARM_THREADS ? WARM_THREADS : (size_t)cpus;
    warm_range rg[WARM_THREADS];
    pthread_t th[WARM_THREADS];
    bool started[WARM_THREADS] = {false};
    uint32_t share = (uint32_t)((db->warm_end - 1 + nt - 1) / nt);
    for (size_t i = 0; i < nt; i++) {
        uint32_t first = 1 + (uint32_t)i * share;
        rg[i] = (warm_range){db, first < db->warm_end ? first : db->warm_end,
                             first + share < db->warm_end ? first + share : db->warm_end};
        if (i > 0)
            started[i] = pthread_create(&th[i], NULL, warm_main, &rg[i]) == 0;
    }
    warm_main(&rg[0]);
    for (size_t i = 1; i < nt; i++)
        if (started[i])
            pthread_join(th[i], NULL);
}

void bt_warm_stop(bt_db *db)
{
    if (!db->warm_running)
        return;
    atomic_store(&db->warm_stop, true);
    pthread_join(db->warmer, NULL);
    db->warm_running = false;
}

void bt_warm_wait(bt_db *db)
{
    if (!db->warm_running)
        return;
    pthread_join(db->warmer, NULL);
    db->warm_running = false;
}
