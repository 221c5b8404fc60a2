/* The power-loss policies' decisions (faultfs_policy.h). */
#include "faultfs_policy.h"

void ff_policy_init(ff_policy *p, kv_crash_policy policy, uint64_t seed)
{
    p->policy = policy;
    p->seed = seed;
    p->data_rng = seed;
    p->name_rng = seed ^ 0x6a09e667f3bcc909ull;
}

uint64_t ff_policy_size(ff_policy *p, uint64_t durable, uint64_t current)
{
    if (p->policy == KV_CRASH_KEEP)
        return current;
    if (p->policy == KV_CRASH_LOSE || durable == current)
        return durable;
    if (p->policy != KV_CRASH_TORN_BYTES)
        return (ff_mix(&p->data_rng) & 1) ? current : durable;
    uint64_t r = ff_mix(&p->data_rng);
    uint64_t lo = durable < current ? durable : current;
    uint64_t hi = durable < current ? current : durable;
    switch (r % 3) {
    case 0:
        return durable;
    case 1:
        return current;
    default: /* strictly between the two when there is room, else one of them */
        return hi - lo < 2 ? ((r >> 8) & 1 ? current : durable) : lo + 1 + (r >> 8) % (hi - lo - 1);
    }
}

/* The hash of (seed, write id) that decides a write call's fate. */
static uint64_t write_hash(uint64_t seed, uint64_t wid)
{
    uint64_t h = seed ^ (wid * 0xd6e8feb86659fd93ull);
    return ff_mix(&h);
}

bool ff_policy_sector_lost(ff_policy *p, uint64_t wid, bool doomed)
{
    if (doomed)
        return true;
    switch (p->policy) {
    case KV_CRASH_LOSE:
        return true;
    case KV_CRASH_RANDOM:
        return write_hash(p->seed, wid) & 1; /* one fate per write call */
    case KV_CRASH_TORN:
        return ff_mix(&p->data_rng) & 1; /* per sector */
    default:
        return false; /* keep; torn-bytes decides per byte */
    }
}

void ff_policy_write_tear(const ff_policy *p, uint64_t wid, uint64_t off, uint64_t len, ff_tear *t)
{
    /* a second stream, so that a write's tear does not follow from its random-policy fate */
    uint64_t h = write_hash(p->seed ^ 0xbb67ae8584caa73bull, wid);
    uint64_t r = ff_mix(&h);
    uint64_t end = off + len;
    t->first_lost = (r >> 2) & 1;
    int kind = (int)(r % 3); /* 0 kept whole, 1 lost whole, 2 torn */
    if (kind < 2 || len < 2) {
        t->n = 1;
        t->end[0] = end;
        t->first_lost = kind == 1 || (kind == 2 && t->first_lost);
        return;
    }
    /* 1 to 3 distinct cut points strictly inside the range, ascending */
    int cuts = 1 + (int)((r >> 3) % 3);
    if ((uint64_t)cuts > len - 1)
        cuts = (int)(len - 1);
    uint64_t c[FF_TEAR_MAX_PIECES - 1];
    int have = 0;
    while (have < cuts) {
        uint64_t x = off + 1 + ff_mix(&h) % (len - 1);
        int i = have;
        bool dup = false;
        for (int j = 0; j < have; j++)
            dup |= c[j] == x;
        if (dup)
            continue;
        while (i > 0 && c[i - 1] > x) {
            c[i] = c[i - 1];
            i--;
        }
        c[i] = x;
        have++;
    }
    for (int i = 0; i < cuts; i++)
        t->end[i] = c[i];
    t->end[cuts] = end;
    t->n = cuts + 1;
}

uint64_t ff_policy_names_kept(ff_policy *p, uint64_t count)
{
    if (p->policy == KV_CRASH_KEEP)
        return count;
    if (p->policy == KV_CRASH_LOSE)
        return 0;
    return ff_mix(&p->name_rng) % (count + 1);
}
