/* Finding a record log in a file without knowing its engine (damage.h: crash_reclog_find).
 *
 * A record of common/reclog.h starts with crc, hcrc, len, type and three zero bytes, and both
 * checksums are CRC32s started from a seed that only the engine knows (it keeps the salt in its
 * own header). But a CRC32 can be run backwards: from hcrc and the eight bytes it covers, the
 * register the CRC started from (the seed) follows exactly. So at every candidate offset the seed
 * is recovered from the header check alone, and the record's own full CRC (32 more bits over the
 * header and payload) confirms it. The forward table is zlib's (get_crc_table); the backward
 * step uses the fact that the 256 entries of the CRC32 table differ in their top byte (see Ross
 * Williams, "A Painless Guide to CRC Error Detection Algorithms", and the "CRC reversing" note
 * by Anarchriz, 1999). */
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "coding.h"
#include "damage.h"
#include "reclog.h"

#define SEARCH_WINDOW (64u << 10) /* bytes at the start of a file searched for a first record */
#define CRC_BUDGET    (64u << 20) /* payload bytes checksummed while searching, at most */

/* The seed from which CRC32 over the 8 bytes at p ends at `crc` (zlib's pre- and
 * post-conditioning included): the inverse of kv_crc32_extend(seed, p, 8). */
static uint32_t seed_of(uint32_t crc, const uint8_t *p)
{
    static uint8_t by_top[256];
    static const z_crc_t *table;
    if (!table) {
        const z_crc_t *t = get_crc_table();
        for (unsigned i = 0; i < 256; i++)
            by_top[(t[i] >> 24) & 0xff] = (uint8_t)i;
        table = t;
    }
    uint32_t c = crc ^ 0xffffffffu;
    for (int i = 7; i >= 0; i--) {
        /* forward: c' = T[(c ^ b) & 0xff] ^ (c >> 8); the top byte of c' is T[idx]'s */
        uint8_t idx = by_top[c >> 24];
        c = ((c ^ (uint32_t)table[idx]) << 8) | (uint32_t)(idx ^ p[i]);
    }
    return c ^ 0xffffffffu;
}

void crash_reclog_map_free(crash_reclog_map *m)
{
    free(m->off);
    free(m->len);
    free(m->type);
    memset(m, 0, sizeof *m);
}

static bool push(crash_reclog_map *m, size_t *cap, const kv_reclog_rec *r)
{
    if (m->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        uint64_t *o = realloc(m->off, nc * sizeof *o);
        if (o)
            m->off = o;
        uint32_t *l = o ? realloc(m->len, nc * sizeof *l) : NULL;
        if (l)
            m->len = l;
        uint8_t *t = l ? realloc(m->type, nc * sizeof *t) : NULL;
        if (!t)
            return false;
        m->type = t;
        *cap = nc;
    }
    m->off[m->n] = r->off;
    m->len[m->n] = r->len;
    m->type[m->n] = r->type;
    m->n++;
    return true;
}

bool crash_reclog_find(const uint8_t *data, uint64_t size, crash_reclog_map *m)
{
    memset(m, 0, sizeof *m);
    uint64_t window = size < SEARCH_WINDOW ? size : SEARCH_WINDOW;
    uint64_t budget = CRC_BUDGET;
    for (uint64_t o = 0; o + KV_RECLOG_FRAME <= window; o++) {
        const uint8_t *r = data + o;
        uint32_t len = kv_get_u32(r + 8);
        /* the cheap tests first: type, the zero bytes, a length that fits */
        if (r[12] == 0 || r[13] || r[14] || r[15] || len > size - o - KV_RECLOG_FRAME ||
            (r[12] == KV_RECLOG_MARK && len != 8) || len > budget)
            continue;
        budget -= len;
        uint32_t seed = seed_of(kv_get_u32(r + 4), r + 8);
        kv_reclog_rec rec;
        if (kv_reclog_decode(data, size, o, seed, &rec, NULL) != KV_RECLOG_OK)
            continue;
        size_t cap = 0;
        m->seed = seed;
        m->first = o;
        uint64_t at = o;
        while (at < size && kv_reclog_decode(data, size, at, seed, &rec, NULL) == KV_RECLOG_OK) {
            if (!push(m, &cap, &rec)) {
                crash_reclog_map_free(m);
                return false;
            }
            at += KV_RECLOG_FRAME + (uint64_t)rec.len;
        }
        m->end = at;
        if (m->end == size || m->n >= 2)
            return true;
        crash_reclog_map_free(m); /* one lone record by chance: keep looking */
        if (budget == 0)
            break;
    }
    return false;
}
