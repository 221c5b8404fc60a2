/* wal_inspect.c: kv_stats, kv_check and kv_dump of the `wal` engine. */
#include <inttypes.h>
#include <string.h>

#include "coding.h"
#include "dump.h"
#include "wal_db.h"

kv_status wal_stats(kv_db *kdb, kv_stats *out)
{
    wal_db *db = (wal_db *)kdb;
    uint64_t count = 0, applied = 0;
    wal_node *root = wal_map_snapshot(&db->map, &count, &applied);
    wal_map_release(&db->map, root);
    wal_log_stats ls;
    wal_log_get_stats(db->log, &ls);
    uint64_t snap_lsn = atomic_load(&db->snap_lsn), snap_bytes = atomic_load(&db->snap_bytes);
    out->live_keys = count;
    out->memory_bytes = atomic_load(&db->map.mem) + sizeof *db;
    kv_stats_add(out, "checkpoints", atomic_load(&db->checkpoints));
    kv_stats_add(out, "checkpoint_lsn", snap_lsn);
    kv_stats_add(out, "snapshot_bytes", snap_bytes);
    kv_stats_add(out, "segments", ls.segments);
    kv_stats_add(out, "log_bytes", ls.bytes);
    kv_stats_add(out, "group_commits", ls.groups);
    kv_stats_add(out, "group_commit_items", ls.items);
    kv_stats_add(out, "first_lsn", ls.first_lsn);
    kv_stats_add(out, "last_lsn", ls.last_lsn);
    kv_stats_add(out, "applied_lsn", applied);
    kv_stats_add(out, "segments_created", ls.segments_created);
    kv_stats_add(out, "log_truncations", ls.truncations);
    kv_stats_add(out, "segment_rewrites", ls.rewrites);
    kv_stats_add(out, "torn_bytes_cut_at_open", ls.torn_bytes_cut);
    kv_stats_add(out, "recovery_log_bytes", ls.replayed_bytes);
    kv_stats_add(out, "poisoned", ls.poisoned);
    return KV_OK;
}

kv_status wal_check(kv_db *kdb)
{
    wal_db *db = (wal_db *)kdb;
    kv_status s = wal_map_check(&db->map);
    if (s != KV_OK)
        return s;
    /* Hold off checkpoints so that SNAPSHOT and the log agree while we look. */
    pthread_mutex_lock(&db->ckpt_mu);
    uint64_t lsn = 0, salt = 0;
    s = wal_snapshot_verify(db, NULL, &lsn, &salt);
    wal_log_stats ls;
    wal_log_get_stats(db->log, &ls);
    if (s == KV_OK && lsn > 0 && salt != ls.salt)
        s = wal_snapshot_salt_error(db->dir, salt, ls.salt);
    if (s == KV_OK && lsn != atomic_load(&db->snap_lsn))
        s = kv_error(KV_CORRUPTION,
                     "%s/SNAPSHOT: offset 16: LSN %" PRIu64
                     " differs from the checkpoint LSN %" PRIu64 " in memory",
                     db->dir, lsn, atomic_load(&db->snap_lsn));
    if (s == KV_OK)
        s = wal_log_verify(db->log);
    if (s == KV_OK) {
        wal_log_get_stats(db->log, &ls);
        if (ls.first_lsn > lsn + 1 || ls.last_lsn < lsn)
            s = kv_error(KV_CORRUPTION,
                         "%s: log holds LSNs %" PRIu64 "..%" PRIu64
                         ", which does not continue SNAPSHOT's %" PRIu64,
                         db->dir, ls.first_lsn, ls.last_lsn, lsn);
        uint64_t applied = 0;
        wal_node *root = wal_map_snapshot(&db->map, NULL, &applied);
        wal_map_release(&db->map, root);
        if (s == KV_OK && applied > ls.last_lsn)
            s = kv_error(KV_CORRUPTION,
                         "%s: memtable applied LSN %" PRIu64 " beyond the log's last %" PRIu64,
                         db->dir, applied, ls.last_lsn);
    }
    pthread_mutex_unlock(&db->ckpt_mu);
    return s;
}

void wal_print_bytes(FILE *out, const char *label, const uint8_t *p, size_t n)
{
    fprintf(out, "%s(%zu)=", label, n);
    size_t m = n < 32 ? n : 32;
    bool text = true;
    for (size_t i = 0; i < m; i++)
        text = text && p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"';
    if (text)
        fprintf(out, "\"%.*s\"", (int)m, (const char *)p);
    else
        for (size_t i = 0; i < m; i++)
            fprintf(out, "%02x", p[i]);
    if (m < n)
        fprintf(out, "...");
}

/* Prints a PUT as key and value, a DELETE as key, a CHECKPOINT as its LSN. */
static void payload_printer(FILE *out, uint8_t type, const uint8_t *p, uint32_t len)
{
    if (type == WAL_REC_PUT) {
        const uint8_t *q = p, *end = p + len;
        uint32_t klen;
        if (!kv_get_varint32(&q, end, &klen) || klen > (size_t)(end - q)) {
            fprintf(out, "bad PUT payload");
            return;
        }
        fprintf(out, "klen varint (%zu bytes) ", (size_t)(q - p));
        wal_print_bytes(out, "key", q, klen);
        fprintf(out, " ");
        wal_print_bytes(out, "value", q + klen, (size_t)(end - q - klen));
    } else if (type == WAL_REC_DELETE) {
        wal_print_bytes(out, "key", p, len);
    } else if (type == WAL_REC_CHECKPOINT && len == 8) {
        fprintf(out, "snapshot covers LSN %" PRIu64, kv_get_u64(p));
    } else {
        wal_print_bytes(out, "payload", p, len);
    }
}

kv_status wal_dump(kv_db *kdb, FILE *out, const char *file, int64_t page)
{
    wal_db *db = (wal_db *)kdb;
    if (page != -1)
        return kv_error(KV_INVALID, "wal: no pages or blocks (page must be -1)");
    kv_status s = KV_OK;
    bool found = false;
    pthread_mutex_lock(&db->ckpt_mu);
    if (!file || !strcmp(file, WAL_SNAPSHOT_NAME)) {
        uint64_t lsn, salt;
        found = file != NULL;
        s = wal_snapshot_verify(db, out, &lsn, &salt);
        if (s == KV_OK && lsn == 0)
            fprintf(out, "snapshot: none yet (no checkpoint)\n");
    }
    bool seg_found = false;
    if (s == KV_OK && (!file || strcmp(file, WAL_SNAPSHOT_NAME)))
        s = wal_log_dump(db->log, out, file, payload_printer, &seg_found);
    pthread_mutex_unlock(&db->ckpt_mu);
    if (s == KV_OK && file && !found && !seg_found)
        s = kv_error(KV_INVALID, "wal: no file %s (SNAPSHOT or NNNNNNNNNNNNNNNNNNNN.wal)", file);
    return s;
}

kv_status wal_picture(kv_db *kdb, kv_pic *pic)
{
    wal_db *db = (wal_db *)kdb;
    uint64_t count = 0, applied = 0;
    wal_node *root = wal_map_snapshot(&db->map, &count, &applied);
    int map = kv_pic_node(pic, KV_PIC_ROOT, KV_PIC_MEM, "map (in memory, a B-tree)");
    kv_pic_line(pic, map, "%" PRIu64 " %s, applied up to LSN %" PRIu64, count,
                count == 1 ? "key" : "keys", applied);
    wal_cursor c;
    wal_cursor_first(&c, root); /* the key range: one pass over the snapshot's keys */
    const wal_entry *first = wal_cursor_entry(&c), *last = first;
    for (; wal_cursor_entry(&c); wal_cursor_next(&c))
        last = wal_cursor_entry(&c);
    if (first)
        kv_pic_line(pic, map, "%s .. %s", kv_pic_key(pic, first->data, first->klen),
                    kv_pic_key(pic, last->data, last->klen));
    wal_map_release(&db->map, root);
    pthread_mutex_lock(&db->ckpt_mu); /* no checkpoint moves the snapshot and log meanwhile */
    uint64_t snap_lsn = atomic_load(&db->snap_lsn), snap_bytes = atomic_load(&db->snap_bytes);
    int snap = kv_pic_node(pic, KV_PIC_ROOT, KV_PIC_FILE, "%s", WAL_SNAPSHOT_NAME);
    if (snap_lsn) {
        kv_pic_line(pic, snap, "checkpoint: every key as of LSN %" PRIu64, snap_lsn);
        kv_pic_line(pic, snap, "%s", kv_pic_bytes(pic, snap_bytes));
    } else {
        kv_pic_line(pic, snap, "none yet (no checkpoint)");
    }
    int log = kv_pic_node(pic, KV_PIC_ROOT, KV_PIC_GROUP, "log: segments, oldest first");
    kv_status s = wal_log_picture(db->log, pic, log, snap_lsn);
    pthread_mutex_unlock(&db->ckpt_mu);
    if (snap_lsn)
        kv_pic_link(pic, map, snap, "loaded at open");
    kv_pic_link(pic, map, log, snap_lsn ? "then LSNs after it replayed" : "replayed at open");
    return s;
}
