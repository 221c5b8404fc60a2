/* warm.c: loads the data file into the buffer pool in the background after open, when it fits
 * in the pool's budget (InnoDB's buffer-pool load at start-up, innodb_buffer_pool_load_at_
 * startup; docs/btree.md section 3).
 *
 * Without it a reopened database starts with an empty pool, and the first reads pay one pread
 * and one CRC per page they touch, one 4 KiB page at a time and under the pool's write lock.
 * The warmer reads the file sequentially in 1 MiB chunks, checks every page exactly as a miss
 * does (CRC, then structure), and hands the good pages to the pool (bt_pool_adopt), which
 * keeps only those nobody cached meanwhile and drops the whole chunk if a checkpoint wrote to
 * the data file since the chunk was read. A page that fails its check is left out: its first
 * real read reports the KV_CORRUPTION (or KV_IO) as before. A failed read stops the warmer. */
#include <stdlib.h>
#include <time.h>

#include "btree_int.h"

#define WARM_CHUNK ((size_t)1 << 20) /* bytes read per pread */
#define WARM_BATCH 16                /* pages put in the pool per write lock */

static void *warm_main(void *arg)
{
    bt_db *db = arg;
    bt_pool *p = &db->pool;
    size_t per = WARM_CHUNK / db->ps;
    uint8_t *buf = malloc(per * db->ps);
    bool *ok = malloc(per);
    uint32_t pg = 1;
    while (buf && ok && pg < db->warm_end && !atomic_load(&db->warm_stop)) {
        uint64_t seq = atomic_load(&p->disk_seq);
        if (seq & 1) { /* a checkpoint is writing pages: wait for it */
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
            continue;
        }
        size_t n = db->warm_end - pg < per ? db->warm_end - pg : per;
        if (kv_file_read_exact(db->data, buf, n * db->ps, (uint64_t)pg * db->ps) != KV_OK)
            break; /* the pages are read (and the error reported) when they are used */
        for (size_t i = 0; i < n; i++) {
            const uint8_t *page = buf + i * db->ps;
            uint32_t no = pg + (uint32_t)i;
            ok[i] = bt_pg_crc_ok(page, db->ps, no) && !bt_pg_sane(page, db->ps, no);
        }
        /* Handed over WARM_BATCH pages per write lock: readers wait for one batch's memcpy at
         * most (a 1 MiB chunk under one lock stalled them ~100 us). */
        bool full = false;
        size_t j = 0;
        while (j < n && !full) {
            size_t k = n - j < WARM_BATCH ? n - j : WARM_BATCH;
            if (bt_pool_adopt(p, pg + (uint32_t)j, buf + j * db->ps, ok + j, k, seq, &full) ==
                SIZE_MAX)
                break; /* a checkpoint wrote meanwhile: read the rest again */
            j += k;
        }
        pg += (uint32_t)j;
        if (full)
            break;
    }
    free(buf);
    free(ok);
    return NULL;
}

void bt_warm_start(bt_db *db)
{
    uint64_t pages = db->meta.hwm;
    if (pages <= 1 || pages - 1 > db->pool.budget)
        return; /* empty, or does not fit: a sequential load would only evict itself */
    db->warm_end = db->meta.hwm;
    atomic_store(&db->warm_stop, false);
    db->warm_running = pthread_create(&db->warmer, NULL, warm_main, db) == 0;
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
