/* check.c: kv_check and kv_dump of the btree engine.
 *
 * kv_check walks the tree from the root and the free list and verifies: key order inside pages
 * and against the separators above, fill bounds of non-root pages, page types and levels,
 * overflow chains, every page in [1, hwm) reachable exactly once or on the free list (no leak,
 * no double allocation), the free-list length and key count equal to the meta page's, and the
 * CRC of every page on disk that has no newer image in the log (and that a cached clean page
 * equals its disk copy).
 *
 * kv_dump prints the data file as it is on disk (meta page, each page with its slots, keys and
 * values abbreviated, the free list) and the log's header, groups and records with offsets. */
#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "dump.h"
#include "btree_int.h"

typedef struct chk {
    bt_db *db;
    uint8_t *mark;
    uint64_t keys;
} chk;

static kv_status mark_page(chk *c, uint32_t pgno, const char *what)
{
    if (pgno == 0 || pgno >= c->db->meta.hwm)
        return kv_error(KV_CORRUPTION, "%s: %s page %u outside [1, hwm=%u)", c->db->data_path, what,
                        pgno, c->db->meta.hwm);
    if (c->mark[pgno / 8] & (1u << (pgno % 8)))
        return kv_error(KV_CORRUPTION, "%s: page %u (%s) is reachable twice (double allocation)",
                        c->db->data_path, pgno, what);
    c->mark[pgno / 8] |= (uint8_t)(1u << (pgno % 8));
    return KV_OK;
}

static kv_status check_chain(chk *c, uint32_t pgno, uint64_t vlen, uint32_t leaf)
{
    bt_db *db = c->db;
    uint64_t got = 0;
    while (pgno) {
        kv_status s = mark_page(c, pgno, "overflow");
        bt_frame *f;
        if (s != KV_OK || (s = bt_pool_get(&db->pool, pgno, &f)) != KV_OK)
            return s;
        uint32_t n = kv_get_u32(f->data + 12), next = pg_link(f->data);
        int type = pg_type(f->data);
        pool_unpin(f);
        if (type != BT_OVERFLOW || n == 0)
            return kv_error(KV_CORRUPTION,
                            "%s: page %u in the overflow chain of leaf %u is not "
                            "a non-empty overflow page",
                            db->data_path, pgno, leaf);
        got += n;
        pgno = next;
    }
    if (got != vlen)
        return kv_error(KV_CORRUPTION,
                        "%s: leaf %u: overflow chain holds %" PRIu64 " bytes, cell says %" PRIu64,
                        db->data_path, leaf, got, vlen);
    return KV_OK;
}

static kv_status check_node(chk *c, uint32_t pgno, unsigned level, const uint8_t *lo, size_t lolen,
                            const uint8_t *hi, size_t hilen, bool root)
{
    bt_db *db = c->db;
    kv_status s = mark_page(c, pgno, level ? "internal" : "leaf");
    bt_frame *f;
    if (s != KV_OK || (s = bt_pool_get(&db->pool, pgno, &f)) != KV_OK)
        return s;
    const uint8_t *p = f->data;
    const char *why = bt_pg_sane(p, db->ps, pgno);
    unsigned n = pg_n(p);
    if (!why && (pg_level(p) != level || pg_type(p) != (level ? BT_INTERNAL : BT_LEAF)))
        why = "wrong type or level for its depth";
    if (!why && !root && bt_pg_used(p, db->ps) < db->fill_min)
        why = "below the fill bound (a quarter of the usable bytes)";
    if (!why && level && n == 0)
        why = "internal page without keys";
    if (why) {
        pool_unpin(f);
        return kv_error(KV_CORRUPTION, "%s: page %u: %s", db->data_path, pgno, why);
    }
    for (unsigned i = 0; i < n && s == KV_OK; i++) {
        size_t kl;
        const uint8_t *k = cell_key(p, i, &kl);
        if (i == 0 && lo && kv_key_cmp(k, kl, lo, lolen) < 0)
            s = kv_error(KV_CORRUPTION, "%s: page %u slot 0: key below its separator",
                         db->data_path, pgno);
        if (i > 0) {
            size_t pl;
            const uint8_t *pk = cell_key(p, i - 1, &pl);
            if (kv_key_cmp(pk, pl, k, kl) >= 0)
                s = kv_error(KV_CORRUPTION, "%s: page %u slot %u: keys out of order", db->data_path,
                             pgno, i);
        }
        if (s == KV_OK && hi && kv_key_cmp(k, kl, hi, hilen) >= 0)
            s = kv_error(KV_CORRUPTION, "%s: page %u slot %u: key not below the next separator",
                         db->data_path, pgno, i);
        if (s == KV_OK && level == 0) {
            c->keys++;
            const uint8_t *cell = p + pg_slot(p, i);
            if (cell[2])
                s = check_chain(c, kv_get_u32(cell + 7 + kl), kv_get_u32(cell + 3), pgno);
            else if (7 + kl + kv_get_u32(cell + 3) > db->max_cell)
                s = kv_error(KV_CORRUPTION, "%s: page %u slot %u: inline cell above the limit",
                             db->data_path, pgno, i);
        }
    }
    for (unsigned i = 0; level && s == KV_OK && i <= n; i++) {
        size_t ll = lolen, hl = hilen;
        const uint8_t *l = lo, *h = hi;
        if (i > 0)
            l = cell_key(p, i - 1, &ll);
        if (i < n)
            h = cell_key(p, i, &hl);
        s = check_node(c, child_at(p, i), level - 1, l, ll, h, hl, false);
    }
    pool_unpin(f);
    return s;
}

static kv_status check_disk(chk *c, uint8_t *buf)
{
    bt_db *db = c->db;
    uint64_t size;
    kv_status s = kv_file_size(db->data, &size);
    if (s != KV_OK)
        return s;
    for (uint32_t pgno = 0; pgno < db->meta.hwm; pgno++) {
        bt_frame *f = bt_pool_peek(&db->pool, pgno);
        if ((f && f->dirty) || (pgno == 0 && db->meta_dirty))
            continue; /* the newest image is in the log; the disk copy is older */
        if ((uint64_t)(pgno + 1) * db->ps > size)
            return kv_error(KV_CORRUPTION,
                            "%s: page %u is neither on disk (%" PRIu64
                            " bytes) nor dirty in the cache",
                            db->data_path, pgno, size);
        if ((s = bt_read_page_disk(db, pgno, buf)) != KV_OK)
            return s;
        if (!bt_pg_crc_ok(buf, db->ps, pgno))
            return kv_error(KV_CORRUPTION, "%s: page %u at offset %" PRIu64 ": crc mismatch",
                            db->data_path, pgno, (uint64_t)pgno * db->ps);
        if (f && memcmp(f->data + 4, buf + 4, db->ps - 4)) /* bytes 0-3: CRC, set on write */
            return kv_error(KV_CORRUPTION, "%s: page %u: clean cached copy differs from disk",
                            db->data_path, pgno);
    }
    return KV_OK;
}

kv_status bt_check(kv_db *kdb)
{
    bt_db *db = (bt_db *)kdb;
    pthread_mutex_lock(&db->wmu);
    pthread_mutex_lock(&db->flush_mu); /* no background batch is writing the data file */
    pthread_rwlock_rdlock(&db->tree);
    chk c = {db, calloc(db->meta.hwm / 8 + 1, 1), 0};
    uint8_t *buf = malloc(db->ps);
    kv_status s = KV_OK;
    if (!c.mark || !buf)
        s = kv_error(KV_NOMEM, "btree: out of memory for kv_check");
    if (s == KV_OK && atomic_load(&db->poisoned))
        s = kv_error(KV_POISONED, "%s: handle is poisoned", db->log_path);
    if (s == KV_OK)
        s = check_node(&c, db->meta.root, db->meta.height - 1, NULL, 0, NULL, 0, true);
    uint64_t nfree = 0;
    for (uint32_t pgno = db->meta.free_head; s == KV_OK && pgno; nfree++) {
        bt_frame *f;
        if ((s = mark_page(&c, pgno, "free")) != KV_OK ||
            (s = bt_pool_get(&db->pool, pgno, &f)) != KV_OK)
            break;
        uint32_t next = pg_link(f->data);
        int type = pg_type(f->data);
        pool_unpin(f);
        if (type != BT_FREE)
            s = kv_error(KV_CORRUPTION, "%s: page %u on the free list is not a free page",
                         db->data_path, pgno);
        pgno = next;
    }
    if (s == KV_OK && nfree != db->meta.free_count)
        s = kv_error(KV_CORRUPTION, "%s: free list has %" PRIu64 " pages, meta says %" PRIu64,
                     db->data_path, nfree, db->meta.free_count);
    for (uint32_t pgno = 1; s == KV_OK && pgno < db->meta.hwm; pgno++)
        if (!(c.mark[pgno / 8] & (1u << (pgno % 8))))
            s = kv_error(KV_CORRUPTION,
                         "%s: page %u is leaked (neither in the tree nor on the "
                         "free list)",
                         db->data_path, pgno);
    if (s == KV_OK && c.keys != db->meta.key_count)
        s = kv_error(KV_CORRUPTION, "%s: tree holds %" PRIu64 " keys, meta page says %" PRIu64,
                     db->data_path, c.keys, db->meta.key_count);
    if (s == KV_OK)
        s = check_disk(&c, buf);
    if (s == KV_OK)
        s = bt_wal_check_files(db);
    pthread_rwlock_unlock(&db->tree);
    pthread_mutex_unlock(&db->flush_mu);
    pthread_mutex_unlock(&db->wmu);
    free(c.mark);
    free(buf);
    return s;
}

/* ---- dump ---- */

static const char *type_name(int t)
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
        return "unknown";
    }
}

static void dump_page(bt_db *db, FILE *out, uint32_t pgno, const uint8_t *p)
{
    bool ok = bt_pg_crc_ok(p, db->ps, pgno);
    const char *why = ok ? bt_pg_sane(p, db->ps, pgno) : NULL;
    fprintf(out, "page %u at offset %" PRIu64 ": %s%s%s\n", pgno, (uint64_t)pgno * db->ps,
            type_name(pg_type(p)), ok ? "" : " (CRC MISMATCH)", why ? " (MALFORMED)" : "");
    fprintf(out, "  @0  crc %08x  @4 type %u  @5 level %u  @6 nslots %u  @8 pgno %u\n",
            kv_get_u32(p), pg_type(p), pg_level(p), pg_n(p), pg_pgno(p));
    if (!ok || why) {
        if (why)
            fprintf(out, "  malformed: %s\n", why);
        return;
    }
    int t = pg_type(p);
    if (t == BT_OVERFLOW) {
        fprintf(out, "  @12 data bytes %u  @16 next overflow page %u\n  @24 data ", pg_content(p),
                pg_link(p));
        kv_dump_bytes(out, p + BT_HDR, pg_content(p), 24);
        fputc('\n', out);
        return;
    }
    if (t == BT_FREE) {
        fprintf(out, "  @16 next free page %u\n", pg_link(p));
        return;
    }
    fprintf(out, "  @12 cell area starts at %u (free bytes %zu)", pg_content(p), bt_pg_free(p));
    if (t == BT_INTERNAL)
        fprintf(out, "  @16 leftmost child %u", pg_link(p));
    fprintf(out, "\n  @20 prefix length %u", pg_prefix(p));
    if (pg_n(p) && pg_prefix(p)) {
        size_t kl;
        fprintf(out, " (every key starts with ");
        kv_dump_bytes(out, cell_key(p, 0, &kl), pg_prefix(p), 24);
        fputc(')', out);
    }
    fputc('\n', out);
    for (unsigned i = 0; i < pg_n(p); i++) {
        size_t kl;
        const uint8_t *k = cell_key(p, i, &kl);
        const uint8_t *c = p + pg_slot(p, i);
        fprintf(out, "  slot %-4u @%-5u -> cell @%-5u window %08x klen %-4zu ", i,
                BT_HDR + BT_SLOT * i, pg_slot(p, i), pg_win(p, i), kl);
        if (t == BT_INTERNAL) {
            fprintf(out, "child %-6u key ", cell_child(p, i));
            kv_dump_bytes(out, k, kl, 24);
        } else {
            fprintf(out, "vlen %-8u key ", kv_get_u32(c + 3));
            kv_dump_bytes(out, k, kl, 24);
            if (c[2]) {
                fprintf(out, " value in overflow chain from page %u", kv_get_u32(k + kl));
            } else {
                fprintf(out, " value ");
                kv_dump_bytes(out, k + kl, kv_get_u32(c + 3), 24);
            }
        }
        fputc('\n', out);
    }
}

static kv_status dump_data(bt_db *db, FILE *out, int64_t page, uint8_t *buf)
{
    uint64_t size;
    kv_status s = kv_file_size(db->data, &size);
    if (s != KV_OK)
        return s;
    uint32_t pages = (uint32_t)(size / db->ps);
    if (page >= (int64_t)pages)
        return kv_error(KV_INVALID, "%s: no page %" PRId64 " (the file has %u pages)",
                        db->data_path, page, pages);
    if ((s = bt_read_page_disk(db, 0, buf)) != KV_OK)
        return s;
    bt_meta m;
    kv_status ms = bt_meta_decode(buf, db->ps, db->data_path, &m);
    if (page <= 0) {
        fprintf(out,
                "== %s (%" PRIu64 " bytes, %u pages of %u bytes; pages changed since the "
                "last checkpoint are newer in %s)\n",
                BT_DATA_FILE, size, pages, db->ps, BT_LOG_FILE);
        fprintf(out, "page 0 (meta)%s\n", ms == KV_OK ? "" : " (DAMAGED)");
        fprintf(out, "  @0  magic          \"%.8s\"\n", (const char *)buf);
        fprintf(out, "  @8  version        %u\n", kv_get_u32(buf + 8));
        fprintf(out, "  @12 page_size      %u\n", kv_get_u32(buf + 12));
        fprintf(out, "  @16 root           %u\n", kv_get_u32(buf + 16));
        fprintf(out, "  @20 height         %u\n", kv_get_u32(buf + 20));
        fprintf(out, "  @24 hwm            %u (pages ever allocated, incl. page 0)\n",
                kv_get_u32(buf + 24));
        fprintf(out, "  @28 free_head      %u\n", kv_get_u32(buf + 28));
        fprintf(out, "  @32 key_count      %" PRIu64 "\n", kv_get_u64(buf + 32));
        fprintf(out, "  @40 free_count     %" PRIu64 "\n", kv_get_u64(buf + 40));
        fprintf(out, "  @48 last_lsn       %" PRIu64 "\n", kv_get_u64(buf + 48));
        fprintf(out, "  @56 checkpoint_lsn %" PRIu64 "\n", kv_get_u64(buf + 56));
        fprintf(out, "  @64 database_id    %016" PRIx64 " (also in %s's header)\n",
                kv_get_u64(buf + 64), BT_LOG_FILE);
        fprintf(out, "  @72 log_gen        %" PRIu64 " (the log generation after the checkpoint)\n",
                kv_get_u64(buf + 72));
        fprintf(out, "  @80 data_lsn       %" PRIu64 " (changes up to here may be in this file)\n",
                kv_get_u64(buf + 80));
        fprintf(out, "  @88 crc            %08x (%s)\n", kv_get_u32(buf + BT_META_CRC),
                bt_pg_crc_ok(buf, db->ps, 0) ? "ok" : "MISMATCH");
    }
    if (page == 0)
        return ms;
    for (uint32_t pgno = page > 0 ? (uint32_t)page : 1; pgno < pages; pgno++) {
        if ((s = bt_read_page_disk(db, pgno, buf)) != KV_OK)
            return s;
        dump_page(db, out, pgno, buf);
        if (page > 0)
            return KV_OK;
    }
    if (ms != KV_OK)
        return ms;
    fprintf(out, "free list (on disk):");
    uint32_t pgno = m.free_head;
    for (uint32_t n = 0; pgno && pgno < pages && n < pages; n++) {
        fprintf(out, " %u", pgno);
        if ((s = bt_read_page_disk(db, pgno, buf)) != KV_OK)
            return s;
        pgno = pg_link(buf);
    }
    fprintf(out, "%s\n", m.free_head ? "" : " (empty)");
    return KV_OK;
}

kv_status bt_dump(kv_db *kdb, FILE *out, const char *file, int64_t page)
{
    bt_db *db = (bt_db *)kdb;
    if (file && strcmp(file, BT_DATA_FILE) && strcmp(file, BT_LOG_FILE))
        return kv_error(KV_INVALID, "btree: no file '%s' (files: %s, %s)", file, BT_DATA_FILE,
                        BT_LOG_FILE);
    uint8_t *buf = malloc(db->ps);
    if (!buf)
        return kv_error(KV_NOMEM, "btree: out of memory");
    pthread_mutex_lock(&db->wmu);
    pthread_mutex_lock(&db->flush_mu); /* no background batch is writing the data file */
    kv_status s = atomic_load(&db->poisoned) ? KV_OK : bt_poison(db, bt_wal_flush_pending(db));
    if (s == KV_OK && (!file || !strcmp(file, BT_DATA_FILE)))
        s = dump_data(db, out, page, buf);
    if (s == KV_OK && page < 0 && (!file || !strcmp(file, BT_LOG_FILE)))
        s = bt_wal_dump(db, out);
    pthread_mutex_unlock(&db->flush_mu);
    pthread_mutex_unlock(&db->wmu);
    free(buf);
    return s;
}

/* ---- picture ---- */

/* Draws page pgno (the tree's state now: cached pages, log-replayed ones included) under parent
 * and, for an internal page, its children while there is room (the others are counted). */
static kv_status pic_page(bt_db *db, kv_pic *pic, int parent, uint32_t pgno, unsigned depth)
{
    bt_frame *f;
    kv_status s = bt_pool_get(&db->pool, pgno, &f);
    if (s != KV_OK)
        return s;
    const uint8_t *p = f->data;
    const char *why = bt_pg_sane(p, db->ps, pgno);
    if (why || (pg_type(p) != BT_INTERNAL && pg_type(p) != BT_LEAF)) {
        int bad = kv_pic_node(pic, parent, KV_PIC_BOX, "page %u: %s", pgno, type_name(pg_type(p)));
        kv_pic_line(pic, bad, "malformed: %s", why ? why : "not a tree page");
        pool_unpin(f);
        return KV_OK; /* drawn as it is; kv_check names the damage */
    }
    unsigned n = pg_n(p);
    bool internal = pg_type(p) == BT_INTERNAL;
    int node = internal ? kv_pic_node(pic, parent, KV_PIC_BOX, "page %u: internal, level %u", pgno,
                                      pg_level(p))
                        : kv_pic_node(pic, parent, KV_PIC_BOX, "page %u: leaf", pgno);
    if (n) {
        size_t fl, ll;
        const uint8_t *first = cell_key(p, 0, &fl), *last = cell_key(p, n - 1, &ll);
        kv_pic_line(pic, node, "%u %s%s", n, internal ? "separator" : "key", n == 1 ? "" : "s");
        kv_pic_line(pic, node, "%s .. %s", kv_pic_key(pic, first, fl), kv_pic_key(pic, last, ll));
    } else {
        kv_pic_line(pic, node, "no keys");
    }
    kv_pic_line(pic, node, "fill %zu%%", bt_pg_used(p, db->ps) * 100 / db->usable);
    if (!internal) {
        unsigned chains = 0;
        for (unsigned i = 0; i < n; i++)
            chains += p[pg_slot(p, i) + 2] != 0; /* the cell's overflow flag */
        if (chains)
            kv_pic_line(pic, node, "%u values in overflow chains", chains);
    }
    for (unsigned i = 0; internal && node >= 0 && s == KV_OK && i <= n; i++) {
        if (!kv_pic_room(pic, node) || depth >= KV_PIC_MAX_DEPTH) {
            kv_pic_more(pic, node, n + 1 - i);
            break;
        }
        uint32_t child = child_at(p, i);
        if (child == 0 || child >= db->meta.hwm) {
            kv_pic_line(pic, node, "child %u: page %u outside the file", i, child);
            continue;
        }
        s = pic_page(db, pic, node, child, depth + 1);
    }
    pool_unpin(f);
    return s;
}

kv_status bt_picture(kv_db *kdb, kv_pic *pic)
{
    bt_db *db = (bt_db *)kdb;
    pthread_mutex_lock(&db->wmu);
    pthread_rwlock_rdlock(&db->tree);
    const bt_meta *m = &db->meta;
    kv_status s = atomic_load(&db->poisoned)
                      ? kv_error(KV_POISONED, "%s: handle is poisoned", db->log_path)
                      : KV_OK;
    int data = kv_pic_node(pic, KV_PIC_ROOT, KV_PIC_FILE, "%s", BT_DATA_FILE);
    kv_pic_line(pic, data, "%u pages of %u bytes (page 0: meta)", m->hwm, db->ps);
    kv_pic_line(pic, data, "%" PRIu64 " keys, height %u", m->key_count, m->height);
    int tree = kv_pic_node(pic, data, KV_PIC_GROUP, "tree: root page %u", m->root);
    if (s == KV_OK)
        s = pic_page(db, pic, tree, m->root, 0);
    int fl = kv_pic_node(pic, data, KV_PIC_GROUP, "free list: %" PRIu64 " pages", m->free_count);
    int prev = -1;
    for (uint32_t pgno = m->free_head, n = 0;
         s == KV_OK && pgno && pgno < m->hwm && n < m->free_count; n++) {
        if (!kv_pic_room(pic, fl)) {
            kv_pic_more(pic, fl, m->free_count - n);
            break;
        }
        bt_frame *f;
        if ((s = bt_pool_get(&db->pool, pgno, &f)) != KV_OK)
            break;
        int node = kv_pic_node(pic, fl, KV_PIC_BOX, "page %u: free", pgno);
        kv_pic_link(pic, prev, node, "next");
        prev = node;
        pgno = pg_link(f->data);
        pool_unpin(f);
    }
    int log = kv_pic_node(pic, KV_PIC_ROOT, KV_PIC_FILE, "%s", BT_LOG_FILE);
    kv_pic_line(pic, log, "generation %" PRIu64 ", after the checkpoint at LSN %" PRIu64,
                db->log_gen, db->ckpt_lsn);
    kv_pic_line(pic, log, "last LSN %" PRIu64, m->last_lsn);
    pthread_rwlock_unlock(&db->tree);
    pthread_mutex_unlock(&db->wmu);
    return s;
}
