/* wal.c: the physical write-ahead log of the btree engine (btree.wal), after SQLite's WAL
 * (page-image frames, a commit frame, a salt so that stale frames are never replayed) and
 * InnoDB's mini-transactions (a group of page changes closed by an end marker). Records are
 * framed by common/reclog (CRC seeded with the generation's salt, sync marks) and read back by
 * its one scanner, so the rule that tells a torn tail from damage is reclog's.
 *
 * Header: two 64-byte slots, at offsets 0 and 512 (separate sectors), records from 1024. A slot:
 *   0 magic "KVLBWAL1"  8 u32 version  12 u32 page size  16 u64 generation (+1 at every reset;
 *   generation g lives in slot g % 2)  24 u64 database id (also in the meta page)
 *   32 u64 checkpoint LSN (the data file's checkpoint this generation follows)  40..60 zero
 *   60 u32 crc of [0, 60).
 * A reset writes the new generation into the other slot, so a header torn by a power loss
 * leaves the previous one valid: the reader takes the valid slot of the highest generation.
 *
 * Records (payloads; reclog adds crc, header crc, length, type):
 *   PAGE   u32 page number, then the page's full image (page 0: its BT_META_LEN bytes of fields)
 *   DELTA  u32 page number, then ranges (u32 offset, u32 length, bytes) that differ from the
 *          page's previous version
 *   COMMIT u64 LSN of the group, u32 number of PAGE and DELTA records in the group
 * A group is every record since the previous COMMIT: the pages one atomic change touched, the
 * meta page, and the COMMIT. LSNs are consecutive from the header's checkpoint LSN + 1.
 *
 * Full-page images and deltas: the first change of a page after a checkpoint logs its full image
 * (PostgreSQL's full_page_writes); later changes before the next checkpoint log only the byte
 * ranges that differ from the page's before-image. So the log always holds a full image of
 * every page changed since the checkpoint (a torn data page is rebuilt from it) while a small
 * put logs a few hundred bytes instead of a page. Whether a page has its image in the current
 * generation is a bit per page (db->imaged), not its dirty flag: a page written back before the
 * checkpoint (steal, flush.c) and changed again logs a delta on the image it already has. The page
 * CRC is computed when a page is written to the data file (checkpoint, recovery), not at commit.
 *
 * Recovery applies only the complete groups of the valid prefix reclog's scanner finds. A record
 * whose checksums pass but whose content is impossible (an LSN out of sequence, a COMMIT that
 * counts another number of records, a delta without an image) is corruption, never a tail. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "btree_int.h"
#include "reclog.h"

uint32_t bt_log_seed(uint64_t db_id, uint64_t gen)
{
    return kv_reclog_seed(db_id ^ (gen * 0x9e3779b97f4a7c15ull));
}

/* ---- header ---- */

static uint64_t slot_off(uint64_t gen)
{
    return (gen & 1) ? BT_LOG_SLOT1 : 0;
}

static void slot_encode(uint8_t *h, const bt_loghdr *x)
{
    memset(h, 0, BT_LOG_SLOT);
    memcpy(h, BT_LOG_MAGIC, 8);
    kv_put_u32(h + 8, BT_VERSION);
    kv_put_u32(h + 12, x->ps);
    kv_put_u64(h + 16, x->gen);
    kv_put_u64(h + 24, x->db_id);
    kv_put_u64(h + 32, x->ckpt_lsn);
    kv_put_u32(h + 60, kv_crc32(h, 60));
}

/* Decodes the slot at offset off; NULL when valid, else why (into why, cap bytes). */
static const char *slot_decode(const uint8_t *h, uint64_t off, bt_loghdr *x, char *why, size_t cap)
{
    if (memcmp(h, BT_LOG_MAGIC, 8))
        return "bad magic (not a btree log header)";
    if (kv_get_u32(h + 60) != kv_crc32(h, 60))
        return "header crc mismatch";
    if (kv_get_u32(h + 8) != BT_VERSION) {
        snprintf(why, cap, "unsupported version %u", kv_get_u32(h + 8));
        return why;
    }
    x->ps = kv_get_u32(h + 12);
    x->gen = kv_get_u64(h + 16);
    x->db_id = kv_get_u64(h + 24);
    x->ckpt_lsn = kv_get_u64(h + 32);
    x->off = off;
    if (x->ps < BT_MIN_PS || x->ps > BT_MAX_PS || (x->ps & (x->ps - 1))) {
        snprintf(why, cap, "bad page size %u", x->ps);
        return why;
    }
    if (x->gen == 0 || slot_off(x->gen) != off) {
        snprintf(why, cap, "generation %" PRIu64 " does not belong in this slot", x->gen);
        return why;
    }
    return NULL;
}

kv_status bt_wal_read_header(kv_file *log, const char *path, bt_loghdr *h)
{
    uint8_t buf[BT_LOG_SLOT1 + BT_LOG_SLOT];
    kv_status s = kv_file_read_exact(log, buf, sizeof buf, 0);
    if (s == KV_CORRUPTION)
        return kv_error(KV_CORRUPTION, "%s: offset 0: log header missing or short", path);
    if (s != KV_OK)
        return s;
    bt_loghdr x[2];
    char wb[2][64];
    const char *why[2];
    for (int i = 0; i < 2; i++)
        why[i] = slot_decode(buf + (i ? BT_LOG_SLOT1 : 0), i ? BT_LOG_SLOT1 : 0, &x[i], wb[i],
                             sizeof wb[i]);
    if (why[0] && why[1])
        return kv_error(KV_CORRUPTION, "%s: offset 0: header slot 0: %s; offset %u: slot 1: %s",
                        path, why[0], BT_LOG_SLOT1, why[1]);
    if (!why[0] && !why[1] && (x[0].db_id != x[1].db_id || x[0].ps != x[1].ps))
        return kv_error(KV_CORRUPTION,
                        "%s: offset 24: the two header slots name different databases or page "
                        "sizes",
                        path);
    int best = why[0] ? 1 : why[1] ? 0 : (x[1].gen > x[0].gen ? 1 : 0);
    *h = x[best];
    return KV_OK;
}

kv_status bt_wal_create(kv_fs *fs, const char *dir, uint32_t ps, uint64_t db_id)
{
    uint8_t *h = calloc(1, BT_LOG_HDR);
    if (!h)
        return kv_error(KV_NOMEM, "btree: out of memory");
    bt_loghdr x = {ps, 1, db_id, 0, slot_off(1)};
    slot_encode(h + x.off, &x);
    kv_status s = kv_fs_replace_file(fs, dir, BT_LOG_FILE, h, BT_LOG_HDR);
    free(h);
    return s;
}

/* ---- writing ---- */

kv_status bt_wal_flush_pending(bt_db *db)
{
    if (!db->pending.len)
        return KV_OK;
    kv_status s = kv_file_pwrite(db->log, db->pending.data, db->pending.len, db->pend_off);
    if (s != KV_OK)
        return s;
    db->pend_off += db->pending.len;
    db->pending.len = 0;
    atomic_store_explicit(&db->written, db->pend_off, memory_order_release);
    return KV_OK;
}

void bt_wal_synced(bt_db *db, uint64_t gen, uint64_t len)
{
    pthread_mutex_lock(&db->sync_mu);
    if (gen == db->log_gen && len > atomic_load_explicit(&db->synced, memory_order_relaxed))
        atomic_store_explicit(&db->synced, len, memory_order_release);
    pthread_mutex_unlock(&db->sync_mu);
}

kv_status bt_wal_sync(bt_db *db)
{
    uint64_t len = atomic_load_explicit(&db->written, memory_order_relaxed);
    kv_status s = kv_file_fdatasync(db->log);
    if (s == KV_OK)
        bt_wal_synced(db, db->log_gen, len);
    return s;
}

/* The first index >= i where a and b (ps bytes) differ, or ps: compares 64-byte blocks, then
 * 8-byte words (a page is mostly unchanged by one put), then bytes inside the first differing
 * word. */
static size_t first_diff(const uint8_t *a, const uint8_t *b, size_t i, size_t ps)
{
    while (i < ps && (i & 7)) {
        if (a[i] != b[i])
            return i;
        i++;
    }
    while (i + 64 <= ps && !memcmp(a + i, b + i, 64)) /* libc's vectorised compare */
        i += 64;
    for (; i + 8 <= ps; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y)
            break;
    }
    while (i < ps && a[i] == b[i])
        i++;
    return i;
}

/* Encodes the ranges where page differs from before (gaps under 16 bytes merged) into out
 * (room for ps bytes); returns the length, or 0 when a full image is as small. */
static size_t delta_encode(const uint8_t *before, const uint8_t *page, uint32_t ps, uint8_t *out)
{
    size_t n = 0, i = 0;
    while (i < ps) {
        i = first_diff(before, page, i, ps);
        if (i >= ps)
            break;
        size_t start = i, end = i + 1, same = 0;
        for (i = end; i < ps && same < 16; i++) {
            if (before[i] == page[i]) {
                same++;
            } else {
                same = 0;
                end = i + 1;
            }
        }
        i = end;
        size_t len = end - start;
        if (n + 8 + len >= ps / 2)
            return 0;
        kv_put_u32(out + n, (uint32_t)start);
        kv_put_u32(out + n + 4, (uint32_t)len);
        memcpy(out + n + 8, page + start, len);
        n += 8 + len;
    }
    return n;
}

/* Applies a delta payload to page (NULL: only checks it); false when a range falls outside the
 * page or the payload is cut inside a range. */
static bool delta_apply(uint8_t *page, uint32_t ps, const uint8_t *d, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (len - i < 8)
            return false;
        uint32_t off = kv_get_u32(d + i), n = kv_get_u32(d + i + 4);
        if (off > ps || n > ps - off || n > len - i - 8)
            return false;
        if (page)
            memcpy(page + off, d + i + 8, n);
        i += 8 + (size_t)n;
    }
    return true;
}

/* Room in b for one more record of up to len payload bytes; the record's payload starts at the
 * returned pointer + KV_RECLOG_FRAME. NULL when out of memory. */
static uint8_t *rec_room(kv_buf *b, size_t len)
{
    return kv_buf_reserve(b, KV_RECLOG_FRAME + len) ? b->data + b->len : NULL;
}

/* Seals the record at r (from rec_room) with a payload of len bytes and adds it to b. */
static void rec_add(bt_db *db, kv_buf *b, uint8_t *r, uint8_t type, size_t len)
{
    kv_reclog_seal(r, db->log_seed, type, (uint32_t)len);
    b->len += KV_RECLOG_FRAME + len;
}

kv_status bt_wal_commit_group(bt_db *db)
{
    kv_buf *b = &db->rec;
    bt_txn *t = &db->txn;
    uint64_t lsn = db->next_lsn;
    uint32_t ps = db->ps;
    b->len = 0;
    db->meta.last_lsn = lsn;
    kv_status s = bt_imaged_reserve(db, db->meta.hwm);
    if (s != KV_OK)
        return s;
    /* The first write after an fdatasync starts with a mark naming what it made durable. */
    uint64_t durable = atomic_load_explicit(&db->synced, memory_order_acquire);
    bool mark = durable > db->marked;
    if (mark) {
        if (!kv_buf_reserve(b, KV_RECLOG_MARK_SIZE))
            return kv_error(KV_NOMEM, "btree: out of memory for a log group");
        b->len += kv_reclog_mark(b->data, db->log_seed, durable);
    }
    for (size_t i = 0; i < t->n; i++) {
        bt_touch *e = &t->t[i];
        bt_frame *f = e->f;
        uint8_t *r = rec_room(b, 4 + (size_t)ps);
        if (!r)
            return kv_error(KV_NOMEM, "btree: out of memory for a log group");
        uint8_t *pl = r + KV_RECLOG_FRAME;
        kv_put_u32(pl, f->pgno);
        size_t dl = e->imaged && e->before ? delta_encode(e->before, f->data, ps, pl + 4) : 0;
        if (dl) {
            rec_add(db, b, r, BT_REC_DELTA, 4 + dl);
        } else {
            memcpy(pl + 4, f->data, ps);
            rec_add(db, b, r, BT_REC_PAGE, 4 + (size_t)ps);
        }
    }
    uint8_t *r = rec_room(b, 4 + BT_META_LEN + 12 + KV_RECLOG_FRAME);
    if (!r)
        return kv_error(KV_NOMEM, "btree: out of memory for a log group");
    kv_put_u32(r + KV_RECLOG_FRAME, 0);
    bt_meta_encode_head(&db->meta, r + KV_RECLOG_FRAME + 4, &db->zext);
    rec_add(db, b, r, BT_REC_PAGE, 4 + BT_META_LEN);
    r = b->data + b->len;
    kv_put_u64(r + KV_RECLOG_FRAME, lsn);
    kv_put_u32(r + KV_RECLOG_FRAME + 8, (uint32_t)t->n + 1);
    rec_add(db, b, r, BT_REC_COMMIT, 12);
    if (db->dur.kind == KV_DURABILITY_NONE) {
        if (!kv_buf_append(&db->pending, b->data, b->len))
            return kv_error(KV_NOMEM, "btree: out of memory for the log buffer");
        s = db->pending.len >= BT_NONE_BUF ? bt_wal_flush_pending(db) : KV_OK;
    } else {
        s = kv_file_pwrite(db->log, b->data, b->len, db->log_end);
        db->pend_off = db->log_end + b->len;
        if (s == KV_OK)
            atomic_store_explicit(&db->written, db->pend_off, memory_order_release);
    }
    if (s != KV_OK)
        return s;
    if (mark)
        db->marked = durable;
    for (size_t i = 0; i < t->n; i++) {
        t->t[i].f->lsn = lsn; /* the page LSN of the WAL rule (flush.c) */
        bt_imaged_mark(db, t->t[i].f->pgno);
    }
    db->log_end += b->len;
    db->next_lsn++;
    db->meta_dirty = true;
    atomic_fetch_add_explicit(&db->groups, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&db->records, t->n + 2, memory_order_relaxed);
    if (b->cap > 4 * BT_NONE_BUF) { /* do not keep a 64 MiB value's group around */
        kv_buf_free(b);
    }
    return KV_OK;
}

kv_status bt_wal_reset(bt_db *db, uint64_t ckpt_lsn)
{
    kv_status s = bt_wal_flush_pending(db);
    if (s != KV_OK)
        return s;
    bt_loghdr x = {db->ps, db->log_gen + 1, db->meta.db_id, ckpt_lsn, slot_off(db->log_gen + 1)};
    uint8_t h[BT_LOG_SLOT];
    slot_encode(h, &x);
    /* The new header goes into the other slot and is made durable before the old records are
     * cut: once it is, every old record fails its check under the new generation's seed,
     * whatever a crash does to the unsynced truncate. A torn header write leaves the old slot
     * valid, and the old generation's records with it (the data file is durable by then, so
     * replaying them is harmless). Rewriting one header in place could leave none valid. */
    if ((s = kv_file_pwrite(db->log, h, sizeof h, x.off)) != KV_OK ||
        (s = kv_file_fdatasync(db->log)) != KV_OK ||
        (s = kv_file_truncate(db->log, BT_LOG_HDR)) != KV_OK)
        return s;
    pthread_mutex_lock(&db->sync_mu);
    db->log_gen = x.gen;
    atomic_store(&db->written, BT_LOG_HDR);
    atomic_store(&db->synced, BT_LOG_HDR);
    pthread_mutex_unlock(&db->sync_mu);
    db->log_seed = bt_log_seed(x.db_id, x.gen);
    db->marked = BT_LOG_HDR; /* a mark naming only the header would vouch for nothing */
    db->ckpt_lsn = ckpt_lsn;
    db->log_end = db->pend_off = BT_LOG_HDR;
    return KV_OK;
}

/* ---- reading ---- */

/* The log as read at open or by dump: its header, its bytes, and what the scan found. */
typedef struct logview {
    bt_loghdr h;
    const uint8_t *data;
    uint64_t size;
    bool mapped;
    kv_reclog_result res;
    kv_status scan; /* the scan's verdict: KV_OK or KV_CORRUPTION (message in msg) */
    char msg[512];
    uint64_t good_end; /* end of the last complete group */
    uint64_t last_lsn; /* LSN of the last complete group (h.ckpt_lsn when none) */
    uint64_t groups, records;
    uint64_t meta_off; /* offset of the last complete group's meta record */
} logview;

/* A set of page numbers (open addressing), for the scan's "delta after an image" check. */
typedef struct pset {
    uint32_t *k; /* UINT32_MAX = empty */
    size_t cap, n;
} pset;

static size_t pset_slot(const pset *p, uint32_t pgno)
{
    size_t j = (pgno * 2654435761u) & (p->cap - 1);
    while (p->k[j] != UINT32_MAX && p->k[j] != pgno)
        j = (j + 1) & (p->cap - 1);
    return j;
}

static bool pset_has(const pset *p, uint32_t pgno)
{
    return p->cap && p->k[pset_slot(p, pgno)] == pgno;
}

static bool pset_add(pset *p, uint32_t pgno)
{
    if ((p->n + 1) * 2 > p->cap) {
        pset g = {malloc((p->cap ? 2 * p->cap : 1024) * sizeof(uint32_t)), 0, 0};
        if (!g.k)
            return false;
        g.cap = p->cap ? 2 * p->cap : 1024;
        memset(g.k, 0xff, g.cap * sizeof *g.k);
        for (size_t i = 0; i < p->cap; i++)
            if (p->k[i] != UINT32_MAX) {
                g.k[pset_slot(&g, p->k[i])] = p->k[i];
                g.n++;
            }
        free(p->k);
        *p = g;
    }
    size_t j = pset_slot(p, pgno);
    if (p->k[j] == UINT32_MAX) {
        p->k[j] = pgno;
        p->n++;
    }
    return true;
}

/* The scan's state: the group being read and what is known so far. */
typedef struct gscan {
    const char *path;
    uint32_t ps;
    uint64_t expect; /* the LSN the next COMMIT must carry */
    uint32_t nrec;   /* PAGE and DELTA records of the open group */
    bool has_meta;
    uint64_t group_meta_off;
    pset imaged; /* pages with a full image so far in this generation */
    logview *v;
    FILE *out; /* dump: print each record */
} gscan;

static const char *page_kind(uint8_t t)
{
    switch (t) {
    case BT_LEAF:
        return "leaf";
    case BT_INTERNAL:
        return "internal";
    case BT_OVERFLOW:
        return "overflow";
    case BT_FREE:
        return "free";
    default:
        return "unknown type";
    }
}

/* Prints record r (its framing, then its payload's fields when valid). */
static void print_rec(FILE *out, const kv_reclog_rec *r, bool group_start, uint64_t lsn, bool valid)
{
    const uint8_t *fr = r->payload - KV_RECLOG_FRAME;
    const uint8_t *p = r->payload;
    if (group_start && r->type != KV_RECLOG_MARK)
        fprintf(out, "  group LSN %" PRIu64 ":\n", lsn);
    fprintf(out, "    @%-9" PRIu64 " crc %08x hcrc %08x len %-5u type %-3u ", r->off,
            kv_get_u32(fr), kv_get_u32(fr + 4), r->len, r->type);
    if (!valid) {
        fprintf(out, "(impossible record)\n");
        return;
    }
    switch (r->type) {
    case KV_RECLOG_MARK:
        fprintf(out, "mark: the log was durable to offset %" PRIu64 "\n", kv_get_u64(p));
        break;
    case BT_REC_PAGE:
        if (kv_get_u32(p) == 0)
            fprintf(out,
                    "page 0 image: meta fields, key_count %" PRIu64 " root %u height %u "
                    "hwm %u\n",
                    kv_get_u64(p + 4 + 32), kv_get_u32(p + 4 + 16), kv_get_u32(p + 4 + 20),
                    kv_get_u32(p + 4 + 24));
        else
            fprintf(out, "page %u image (%s)\n", kv_get_u32(p), page_kind(p[4 + 4]));
        break;
    case BT_REC_DELTA: {
        unsigned n = 0;
        for (size_t i = 4; i + 8 <= r->len; i += 8 + (size_t)kv_get_u32(p + i + 4))
            n++;
        fprintf(out, "page %u delta: %u ranges (offset, length, bytes)\n", kv_get_u32(p), n);
        break;
    }
    case BT_REC_COMMIT:
        fprintf(out, "commit LSN %" PRIu64 ", %u page records\n", kv_get_u64(p), kv_get_u32(p + 8));
        break;
    default:
        fprintf(out, "?\n");
    }
}

static kv_status visit(void *ctx, const kv_reclog_rec *r)
{
    gscan *g = ctx;
    logview *v = g->v;
    if (r->type == KV_RECLOG_MARK) {
        if (g->out)
            print_rec(g->out, r, false, 0, true);
        return KV_OK;
    }
    const uint8_t *p = r->payload;
    uint32_t pgno = r->len >= 4 ? kv_get_u32(p) : 0;
    char why[160];
    why[0] = '\0';
    switch (r->type) {
    case BT_REC_PAGE:
        if (r->len < 4 || r->len - 4 != (pgno ? g->ps : BT_META_LEN) || pgno == UINT32_MAX)
            snprintf(why, sizeof why, "page record of %u bytes for page %u", r->len, pgno);
        break;
    case BT_REC_DELTA:
        if (r->len < 4 || pgno == 0 || pgno == UINT32_MAX)
            snprintf(why, sizeof why, "delta record of %u bytes for page %u", r->len, pgno);
        else if (!delta_apply(NULL, g->ps, p + 4, r->len - 4))
            snprintf(why, sizeof why, "delta of page %u has a range outside the page", pgno);
        else if (!pset_has(&g->imaged, pgno))
            snprintf(why, sizeof why,
                     "delta of page %u without a full image of it earlier in the generation", pgno);
        break;
    case BT_REC_COMMIT:
        if (r->len != 12)
            snprintf(why, sizeof why, "commit record of %u bytes", r->len);
        else if (kv_get_u64(p) != g->expect)
            snprintf(why, sizeof why, "commit of LSN %" PRIu64 " where LSN %" PRIu64 " is next",
                     kv_get_u64(p), g->expect);
        else if (kv_get_u32(p + 8) != g->nrec || !g->has_meta)
            snprintf(why, sizeof why, "commit counts %u page records, the group has %u%s",
                     kv_get_u32(p + 8), g->nrec, g->has_meta ? "" : " and no meta page");
        break;
    default:
        snprintf(why, sizeof why, "unknown record type %u", r->type);
    }
    if (g->out)
        print_rec(g->out, r, g->nrec == 0, g->expect, !why[0]);
    if (why[0])
        return kv_error(KV_CORRUPTION, "%s: offset %" PRIu64 ": %s", g->path, r->off, why);
    if (r->type == BT_REC_COMMIT) {
        v->groups++;
        v->good_end = r->off + KV_RECLOG_FRAME + r->len;
        v->last_lsn = g->expect++;
        v->meta_off = g->group_meta_off;
        g->nrec = 0;
        g->has_meta = false;
        return KV_OK;
    }
    g->nrec++;
    v->records++;
    if (r->type == BT_REC_PAGE && pgno == 0) {
        g->has_meta = true;
        g->group_meta_off = r->off;
    } else if (r->type == BT_REC_PAGE && !pset_add(&g->imaged, pgno)) {
        return kv_error(KV_NOMEM, "btree: out of memory scanning the log");
    }
    return KV_OK;
}

static void logview_free(bt_db *db, logview *v)
{
    if (v->mapped)
        kv_file_unmap(db->log, v->data, v->size);
    else
        free((void *)v->data);
    memset(v, 0, sizeof *v);
}

/* Reads the header, maps (or reads) the log and scans it. A scan that finds damage a mark
 * vouches for, or an impossible record, leaves its verdict in v->scan (the dump still prints
 * what comes before); other errors are returned. */
static kv_status logview_open(bt_db *db, logview *v, FILE *out)
{
    memset(v, 0, sizeof *v);
    kv_status s = bt_wal_read_header(db->log, db->log_path, &v->h);
    if (s == KV_OK)
        s = kv_file_size(db->log, &v->size);
    if (s != KV_OK)
        return s;
    const void *addr = NULL;
    if (kv_file_map(db->log, v->size, &addr) == KV_OK) {
        v->data = addr;
        v->mapped = true;
    } else {
        uint8_t *buf = malloc(v->size);
        if (!buf)
            return kv_error(KV_NOMEM, "btree: out of memory reading %s", db->log_path);
        if ((s = kv_file_read_exact(db->log, buf, v->size, 0)) != KV_OK) {
            free(buf);
            return s;
        }
        v->data = buf;
    }
    gscan g = {db->log_path, v->h.ps, v->h.ckpt_lsn + 1, 0, false, 0, {NULL, 0, 0}, v, out};
    v->good_end = BT_LOG_HDR;
    v->last_lsn = v->h.ckpt_lsn;
    s = kv_reclog_scan(db->log_path, v->data, v->size, BT_LOG_HDR,
                       bt_log_seed(v->h.db_id, v->h.gen), visit, &g, &v->res);
    free(g.imaged.k);
    if (s == KV_CORRUPTION) {
        v->scan = s;
        snprintf(v->msg, sizeof v->msg, "%s", kv_errmsg());
        return KV_OK;
    }
    if (s != KV_OK)
        logview_free(db, v);
    return s;
}

/* Whether btree.db's meta page m (NULL: unreadable, m_err says why) and a log with header h,
 * complete through LSN last with `groups` complete groups, belong to one history. stop is the
 * offset where the log's valid records end (with why, or NULL at the end of the file). */
static kv_status check_pair(bt_db *db, const bt_loghdr *h, uint64_t last, uint64_t groups,
                            uint64_t stop, const char *why, const bt_meta *m, const char *m_err)
{
    const char *dp = db->data_path, *lp = db->log_path;
    if (!m) {
        if (groups)
            return KV_OK; /* a torn meta page: the log's groups rebuild it */
        return kv_error(KV_CORRUPTION, "%s (and %s holds no group to rebuild it from)", m_err,
                        BT_LOG_FILE);
    }
    if (m->db_id != h->db_id)
        return kv_error(KV_CORRUPTION,
                        "%s: offset %" PRIu64 ": database id %016" PRIx64 ", but %s (offset 64) "
                        "is database %016" PRIx64 ": the two files belong to different databases",
                        lp, h->off + 24, h->db_id, dp, m->db_id);
    if (h->gen > m->log_gen)
        return kv_error(KV_CORRUPTION,
                        "%s: offset 72: its checkpoint at LSN %" PRIu64 " started log generation "
                        "%" PRIu64 ", but %s is generation %" PRIu64 ": %s is an older copy",
                        dp, m->checkpoint_lsn, m->log_gen, BT_LOG_FILE, h->gen, BT_DATA_FILE);
    if (h->gen + 1 < m->log_gen)
        return kv_error(KV_CORRUPTION,
                        "%s: offset %" PRIu64 ": generation %" PRIu64 ", but the checkpoint of "
                        "%s at LSN %" PRIu64 " started generation %" PRIu64 ": %s is an older "
                        "copy",
                        lp, h->off + 16, h->gen, BT_DATA_FILE, m->checkpoint_lsn, m->log_gen,
                        BT_LOG_FILE);
    uint64_t need;
    if (h->gen == m->log_gen) {
        if (h->ckpt_lsn != m->checkpoint_lsn)
            return kv_error(KV_CORRUPTION,
                            "%s: offset %" PRIu64 ": generation %" PRIu64 " follows the "
                            "checkpoint at LSN %" PRIu64 ", but %s's is at LSN %" PRIu64,
                            lp, h->off + 32, h->gen, h->ckpt_lsn, BT_DATA_FILE, m->checkpoint_lsn);
        need = m->data_lsn;
    } else {
        /* A checkpoint that wrote the data file but had not yet reset the log: the log was made
         * durable first and ends exactly at the checkpoint. */
        if (last > m->checkpoint_lsn)
            return kv_error(KV_CORRUPTION,
                            "%s: offset 56: checkpoint at LSN %" PRIu64 ", but %s of the "
                            "generation before holds LSN %" PRIu64 ": the two files are of "
                            "different histories (%s is an older copy, or %s is from a copy)",
                            dp, m->checkpoint_lsn, BT_LOG_FILE, last, BT_DATA_FILE, BT_LOG_FILE);
        need = m->checkpoint_lsn;
    }
    if (last < need)
        return kv_error(KV_CORRUPTION,
                        "%s: offset %" PRIu64 ": the log ends at LSN %" PRIu64 " (%s), but %s "
                        "holds changes up to LSN %" PRIu64 ", which were durable in the log "
                        "before they were written: %s is an older copy or lost durable bytes",
                        lp, stop, last, why ? why : "end of file", BT_DATA_FILE, need, BT_LOG_FILE);
    return KV_OK;
}

/* Recovery's pages: pgno -> the page rebuilt from the log so far (open addressing). */
typedef struct pmap {
    uint32_t *keys;  /* UINT32_MAX = empty */
    uint8_t **pages; /* NULL for a page written to the data file by spill() */
    size_t cap, n;
    uint32_t ps;
    size_t resident, limit; /* pages held in memory; spill() past limit */
} pmap;

static void pmap_free(pmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->pages[i]);
    free(m->keys);
    free(m->pages);
    memset(m, 0, sizeof *m);
}

static bool pmap_grow(pmap *m)
{
    pmap g = {NULL, NULL, m->cap ? 2 * m->cap : 256, 0, m->ps, m->resident, m->limit};
    g.keys = malloc(g.cap * sizeof *g.keys);
    g.pages = calloc(g.cap, sizeof *g.pages);
    if (!g.keys || !g.pages) {
        free(g.keys);
        free(g.pages);
        return false;
    }
    memset(g.keys, 0xff, g.cap * sizeof *g.keys);
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i] == UINT32_MAX)
            continue;
        size_t j = (m->keys[i] * 2654435761u) & (g.cap - 1);
        while (g.keys[j] != UINT32_MAX)
            j = (j + 1) & (g.cap - 1);
        g.keys[j] = m->keys[i];
        g.pages[j] = m->pages[i];
        g.n++;
    }
    free(m->keys);
    free(m->pages);
    *m = g;
    return true;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The slot index of pgno, created (with no page yet) when create; SIZE_MAX when absent or out
 * of memory. */
static size_t pmap_find(pmap *m, uint32_t pgno, bool create)
{
    if (create && (m->n + 1) * 2 > m->cap && !pmap_grow(m))
        return SIZE_MAX;
    if (!m->cap)
        return SIZE_MAX;
    size_t j = (pgno * 2654435761u) & (m->cap - 1);
    while (m->keys[j] != UINT32_MAX && m->keys[j] != pgno)
        j = (j + 1) & (m->cap - 1);
    if (m->keys[j] == pgno)
        return j;
    if (!create)
        return SIZE_MAX;
    m->keys[j] = pgno;
    m->n++;
    return j;
}

/* Writes every page but page 0 that pm holds in memory to the data file in page order, each
 * sealed with its CRC, and frees them. Recovery calls it when the pages rebuilt so far reach the
 * pool's budget (so that its memory stays within the budget however long the log), and at the
 * end. A page written here comes from the log's full image and the deltas after it, so a later
 * delta of it may start from the data file's copy; a crash before the log reset replays the log
 * from its header again, full images first. Page 0 stays in memory: recovery writes it last,
 * with the new checkpoint's fields. */
static kv_status spill(bt_db *db, pmap *pm)
{
    if (!pm->resident)
        return KV_OK;
    uint32_t *order = malloc(pm->resident * sizeof *order);
    if (!order)
        return kv_error(KV_NOMEM, "btree: out of memory in recovery");
    size_t n = 0;
    for (size_t i = 0; i < pm->cap; i++)
        if (pm->keys[i] != UINT32_MAX && pm->keys[i] != 0 && pm->pages[i])
            order[n++] = pm->keys[i];
    qsort(order, n, sizeof *order, cmp_u32);
    kv_status s = KV_OK;
    for (size_t i = 0; i < n && s == KV_OK; i++) {
        size_t j = pmap_find(pm, order[i], false);
        bt_pg_seal(pm->pages[j], db->ps, order[i]);
        s = kv_file_pwrite(db->data, pm->pages[j], db->ps, (uint64_t)order[i] * db->ps);
        free(pm->pages[j]);
        pm->pages[j] = NULL;
        pm->resident--;
    }
    free(order);
    return s;
}

/* The in-memory page of a log record for pgno: a PAGE record (image) creates it, a DELTA
 * (image false) continues the one in memory or spilled to the data file. NULL with *s set on
 * error. */
static uint8_t *pmap_page(bt_db *db, pmap *pm, uint32_t pgno, bool image, uint64_t off,
                          kv_status *s)
{
    size_t j = pmap_find(pm, pgno, image);
    if (j == SIZE_MAX) {
        *s = image ? kv_error(KV_NOMEM, "btree: out of memory in recovery")
                   : kv_error(KV_CORRUPTION,
                              "%s: offset %" PRIu64 ": delta of page %u "
                              "without a full image before it",
                              db->log_path, off, pgno);
        return NULL;
    }
    if (pm->pages[j])
        return pm->pages[j];
    if (pm->resident >= pm->limit && (*s = spill(db, pm)) != KV_OK)
        return NULL;
    uint8_t *page = malloc(db->ps);
    if (!page) {
        *s = kv_error(KV_NOMEM, "btree: out of memory in recovery");
        return NULL;
    }
    if (!image && (*s = bt_read_page_disk(db, pgno, page)) != KV_OK) {
        free(page);
        return NULL;
    }
    pm->pages[j] = page;
    pm->resident++;
    return page;
}

/* Applies every record of the complete groups (offsets [BT_LOG_HDR, v->good_end), all checked
 * by the scan) to pm. */
static kv_status replay(bt_db *db, const logview *v, pmap *pm)
{
    kv_status s = KV_OK;
    for (uint64_t off = BT_LOG_HDR; off < v->good_end;) {
        const uint8_t *r = v->data + off;
        uint32_t len = kv_get_u32(r + 8);
        uint8_t type = r[12];
        const uint8_t *p = r + KV_RECLOG_FRAME;
        if (type == BT_REC_PAGE || type == BT_REC_DELTA) {
            uint8_t *page = pmap_page(db, pm, kv_get_u32(p), type == BT_REC_PAGE, off, &s);
            if (!page)
                return s;
            if (type == BT_REC_PAGE) {
                memcpy(page, p + 4, len - 4);
                memset(page + len - 4, 0, db->ps - (len - 4));
            } else {
                delta_apply(page, db->ps, p + 4, len - 4);
            }
        }
        off += KV_RECLOG_FRAME + (uint64_t)len;
    }
    return KV_OK;
}

/* Read-only recovery: the rebuilt pages become dirty frames of the pool (never written back:
 * nothing writes on a read-only handle), so reads see them instead of the data file's copies. */
static kv_status install(bt_db *db, pmap *pm, uint64_t lsn)
{
    for (size_t i = 0; i < pm->cap; i++) {
        if (pm->keys[i] == UINT32_MAX || pm->keys[i] == 0 || !pm->pages[i])
            continue;
        bt_frame *f;
        kv_status s = bt_pool_new(&db->pool, pm->keys[i], &f);
        if (s != KV_OK)
            return s;
        memcpy(f->data, pm->pages[i], db->ps);
        bt_pool_set_dirty(&db->pool, f, true);
        f->lsn = lsn;
        pool_unpin(f);
    }
    return KV_OK;
}

/* Sets the handle's log state to generation h with groups up to LSN last, end bytes. */
static void set_log_state(bt_db *db, const bt_loghdr *h, uint64_t last, uint64_t end)
{
    pthread_mutex_lock(&db->sync_mu);
    db->log_gen = h->gen;
    atomic_store(&db->written, end);
    atomic_store(&db->synced, end);
    pthread_mutex_unlock(&db->sync_mu);
    db->log_seed = bt_log_seed(h->db_id, h->gen);
    db->marked = end;
    db->ckpt_lsn = h->ckpt_lsn;
    db->next_lsn = last + 1;
    db->log_end = db->pend_off = end;
}

kv_status bt_wal_recover(bt_db *db, const bt_meta *disk, const char *disk_err)
{
    logview v;
    kv_status s = logview_open(db, &v, NULL);
    if (s != KV_OK)
        return s;
    if (v.scan != KV_OK)
        s = kv_error(v.scan, "%s", v.msg);
    else if (v.h.ps != db->ps)
        s = kv_error(KV_CORRUPTION, "%s: offset %" PRIu64 ": page size %u, data file has %u",
                     db->log_path, v.h.off + 12, v.h.ps, db->ps);
    else
        s = check_pair(db, &v.h, v.last_lsn, v.groups, v.res.torn ? v.res.end : v.size,
                       v.res.torn ? v.res.why : NULL, disk, disk_err);
    uint64_t dsize;
    if (s == KV_OK && disk && disk->log_gen == v.h.gen &&
        (s = kv_file_size(db->data, &dsize)) == KV_OK && dsize < (uint64_t)disk->hwm * db->ps)
        /* The checkpoint's pages were durable before this generation began. */
        s = kv_error(KV_CORRUPTION,
                     "%s: offset %" PRIu64 ": the file ends there, but its checkpoint at LSN "
                     "%" PRIu64 " counts %u pages: truncated",
                     db->data_path, dsize, disk->checkpoint_lsn, disk->hwm);
    size_t limit = db->read_only ? SIZE_MAX : (size_t)(db->cache_bytes / db->ps);
    pmap pm = {NULL, NULL, 0, 0, db->ps, 0, limit > 16 ? limit : 16};
    bt_meta meta = disk ? *disk : (bt_meta){0};
    if (s == KV_OK && v.groups) {
        s = replay(db, &v, &pm);
        size_t j = s == KV_OK ? pmap_find(&pm, 0, false) : SIZE_MAX;
        if (s == KV_OK && (j == SIZE_MAX || !pm.pages[j]))
            s = kv_error(KV_CORRUPTION, "%s: no meta page image in the log", db->log_path);
        if (s == KV_OK) {
            bt_pg_seal(pm.pages[j], db->ps, 0);
            if (bt_meta_decode(pm.pages[j], db->ps, db->log_path, &meta) != KV_OK ||
                meta.db_id != v.h.db_id || meta.log_gen != v.h.gen)
                s = kv_error(KV_CORRUPTION,
                             "%s: offset %" PRIu64 ": the meta page image of the last group "
                             "does not belong to this log generation",
                             db->log_path, v.meta_off);
        }
    }
    /* What is needed of the log from here on; the mapping ends before anything is written. */
    bt_loghdr h = v.h;
    uint64_t last = v.last_lsn, groups = v.groups, size = v.size;
    db->replayed_bytes = groups && size > BT_LOG_HDR ? size - BT_LOG_HDR : 0;
    logview_free(db, &v);
    if (s == KV_OK && db->read_only) {
        /* Every rebuilt page stays in memory: the budget grows by their number, so that the
         * pool never hunts for a clean victim among them. */
        db->pool.budget += pm.resident;
        s = install(db, &pm, last);
        set_log_state(db, &h, last, size);
        db->meta = meta;
        db->meta_dirty = groups > 0;
    } else if (s == KV_OK && groups) {
        /* Writable: finish as a checkpoint does. The rebuilt pages, then the meta page naming the
         * next generation, then fdatasync: only then is the log reset. */
        set_log_state(db, &h, last, size);
        meta.log_gen = h.gen + 1;
        meta.checkpoint_lsn = meta.data_lsn = meta.last_lsn = last;
        db->meta = meta;
        s = spill(db, &pm);
        if (s == KV_OK)
            s = bt_write_meta(db, &meta);
        if (s == KV_OK)
            s = kv_file_fdatasync(db->data);
        if (s == KV_OK)
            s = bt_wal_reset(db, last);
    } else if (s == KV_OK) {
        set_log_state(db, &h, last, BT_LOG_HDR);
        db->meta = meta;
        db->disk_meta = meta;
        if (meta.log_gen == h.gen + 1) {
            /* The checkpoint before the crash had made btree.db name the next generation, but
             * the log's new header was not durable: finish it. */
            s = kv_file_fdatasync(db->data);
            if (s == KV_OK)
                s = bt_wal_reset(db, h.ckpt_lsn);
        } else if (size > BT_LOG_HDR) {
            /* Only a torn tail (no complete group): cut it, durably, before anything is appended
             * where it lies. */
            s = kv_file_truncate(db->log, BT_LOG_HDR);
            if (s == KV_OK)
                s = kv_file_fdatasync(db->log);
        }
    }
    pmap_free(&pm);
    return s;
}

kv_status bt_wal_check_files(bt_db *db)
{
    bt_loghdr h;
    kv_status s = bt_wal_read_header(db->log, db->log_path, &h);
    if (s != KV_OK)
        return s;
    if (h.gen != db->log_gen || h.db_id != db->meta.db_id || h.ps != db->ps)
        return kv_error(KV_CORRUPTION,
                        "%s: offset %" PRIu64 ": header of generation %" PRIu64 ", database "
                        "%016" PRIx64 "; the handle is at generation %" PRIu64 " of %016" PRIx64,
                        db->log_path, h.off, h.gen, h.db_id, db->log_gen, db->meta.db_id);
    uint8_t *page = malloc(db->ps);
    if (!page)
        return kv_error(KV_NOMEM, "btree: out of memory for kv_check");
    bt_meta m;
    char err[512] = "";
    s = bt_read_page_disk(db, 0, page);
    kv_status ms = s == KV_OK ? bt_meta_decode(page, db->ps, db->data_path, &m) : s;
    free(page);
    if (ms != KV_OK && ms != KV_CORRUPTION)
        return ms;
    if (ms != KV_OK)
        snprintf(err, sizeof err, "%s", kv_errmsg());
    /* What the handle holds is the log complete through next_lsn - 1. */
    return check_pair(db, &h, db->next_lsn - 1, db->meta_dirty ? 1 : 0, db->log_end, NULL,
                      ms == KV_OK ? &m : NULL, err);
}

kv_status bt_wal_dump(bt_db *db, FILE *out)
{
    uint8_t slots[BT_LOG_SLOT1 + BT_LOG_SLOT];
    uint64_t size;
    kv_status s = kv_file_size(db->log, &size);
    if (s != KV_OK)
        return s;
    fprintf(out, "== %s (%" PRIu64 " bytes)\n", BT_LOG_FILE, size);
    if (size >= sizeof slots && kv_file_read_exact(db->log, slots, sizeof slots, 0) == KV_OK) {
        for (int i = 0; i < 2; i++) {
            uint64_t off = i ? BT_LOG_SLOT1 : 0;
            const uint8_t *h = slots + off;
            bt_loghdr x;
            char wb[64];
            const char *why = slot_decode(h, off, &x, wb, sizeof wb);
            fprintf(out, "header slot %d at offset %" PRIu64 ": %s\n", i, off, why ? why : "valid");
            if (why && memcmp(h, BT_LOG_MAGIC, 8))
                continue;
            fprintf(out, "  @%-4" PRIu64 " magic          \"%.8s\"\n", off, (const char *)h);
            fprintf(out, "  @%-4" PRIu64 " version        %u\n", off + 8, kv_get_u32(h + 8));
            fprintf(out, "  @%-4" PRIu64 " page_size      %u\n", off + 12, kv_get_u32(h + 12));
            fprintf(out, "  @%-4" PRIu64 " generation     %" PRIu64 " (lives in slot %d)\n",
                    off + 16, kv_get_u64(h + 16), (int)(kv_get_u64(h + 16) & 1));
            fprintf(out, "  @%-4" PRIu64 " database_id    %016" PRIx64 "\n", off + 24,
                    kv_get_u64(h + 24));
            fprintf(out,
                    "  @%-4" PRIu64 " checkpoint_lsn %" PRIu64 " (first group: LSN %" PRIu64 ")\n",
                    off + 32, kv_get_u64(h + 32), kv_get_u64(h + 32) + 1);
            fprintf(out, "  @%-4" PRIu64 " crc            %08x\n", off + 60, kv_get_u32(h + 60));
        }
    }
    bt_loghdr h;
    if ((s = bt_wal_read_header(db->log, db->log_path, &h)) != KV_OK)
        return s;
    fprintf(out,
            "current: generation %" PRIu64 " (slot at offset %" PRIu64 "); records from offset %u, "
            "framed by common/reclog (crc, hcrc, len, type), seeded with the generation's salt\n",
            h.gen, h.off, BT_LOG_HDR);
    logview v;
    if ((s = logview_open(db, &v, out)) != KV_OK)
        return s;
    fprintf(out,
            "  %" PRIu64 " complete groups (LSN %" PRIu64 " to %" PRIu64 "), %" PRIu64
            " page records, %" PRIu64 " marks; complete up to offset %" PRIu64 "\n",
            v.groups, v.h.ckpt_lsn + 1, v.last_lsn, v.records, v.res.marks, v.good_end);
    if (v.scan != KV_OK)
        fprintf(out, "  damage: %s\n", v.msg);
    else if (v.res.torn)
        fprintf(out,
                "  torn tail at offset %" PRIu64 " (%" PRIu64 " bytes: %s): no mark vouches for "
                "it, so a power loss may have left it; not replayed\n",
                v.res.end, v.size - v.res.end, v.res.why);
    if (v.scan == KV_OK && v.good_end < v.res.end)
        fprintf(out,
                "  records at [%" PRIu64 ", %" PRIu64 ") belong to a group without its "
                "commit: not replayed\n",
                v.good_end, v.res.end);
    s = v.scan == KV_OK ? KV_OK : kv_error(v.scan, "%s", v.msg);
    logview_free(db, &v);
    return s;
}
