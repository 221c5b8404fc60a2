/* bc_prefault.c: a thread faulting a keydir table in (see bc_prefault.h). */
#include "bc_prefault.h"

#include <sched.h>
#include <sys/mman.h>

#define PAGE ((uintptr_t)4096)

bool bc_prefault_range(void *p, size_t len)
{
#ifdef MADV_POPULATE_WRITE
    uintptr_t a = ((uintptr_t)p + PAGE - 1) & ~(PAGE - 1);
    uintptr_t e = ((uintptr_t)p + len) & ~(PAGE - 1);
    return e <= a || madvise((void *)a, e - a, MADV_POPULATE_WRITE) == 0;
#else
    (void)p;
    (void)len;
    return false;
#endif
}

bool bc_populate_read(const void *p, size_t len)
{
#ifdef MADV_POPULATE_READ
    uintptr_t a = ((uintptr_t)p + PAGE - 1) & ~(PAGE - 1);
    uintptr_t e = ((uintptr_t)p + len) & ~(PAGE - 1);
    return e <= a || madvise((void *)a, e - a, MADV_POPULATE_READ) == 0;
#else
    (void)p;
    (void)len;
    return false;
#endif
}

#ifdef MADV_POPULATE_WRITE
static void *prefault_main(void *arg)
{
    bc_prefault *pf = arg;
    uintptr_t a = ((uintptr_t)pf->base + PAGE - 1) & ~(PAGE - 1);
    uintptr_t e = ((uintptr_t)pf->base + pf->len) & ~(PAGE - 1);
    while (a < e && !atomic_load_explicit(&pf->stop, memory_order_acquire)) {
        /* up to the next 2 MiB boundary: whole huge pages where the table has them */
        uintptr_t b = (a + BC_PREFAULT_CHUNK) & ~(uintptr_t)(BC_PREFAULT_CHUNK - 1);
        if (b > e)
            b = e;
        if (!bc_prefault_range((void *)a, b - a))
            break; /* out of memory, a signal, an old kernel: the inserts fault pages in */
        pf->done += b - a;
        a = b;
    }
    return NULL;
}
#endif

bool bc_prefault_available(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return true; /* unknown: let the helper try */
    return CPU_COUNT(&set) >= 2;
}

bool bc_prefault_start(bc_prefault *pf, void *p, size_t len)
{
    bc_prefault_finish(pf);
#ifdef MADV_POPULATE_WRITE
    if (len < BC_PREFAULT_MIN || !bc_prefault_available())
        return false;
    pf->base = p;
    pf->len = len;
    pf->done = 0;
    atomic_store_explicit(&pf->stop, false, memory_order_relaxed);
    pf->running = pthread_create(&pf->th, NULL, prefault_main, pf) == 0;
    return pf->running;
#else
    (void)p;
    (void)len;
    return false;
#endif
}

static void join(bc_prefault *pf, bool stop)
{
    if (!pf->running)
        return;
    if (stop)
        atomic_store_explicit(&pf->stop, true, memory_order_release);
    pthread_join(pf->th, NULL); /* also makes pf->done visible here */
    pf->running = false;
    pf->tables += pf->done > 0;
    pf->bytes += pf->done;
    pf->base = NULL;
    pf->len = 0;
    pf->done = 0;
}

void bc_prefault_finish(bc_prefault *pf)
{
    join(pf, true);
}

void bc_prefault_wait(bc_prefault *pf)
{
    join(pf, false);
}
