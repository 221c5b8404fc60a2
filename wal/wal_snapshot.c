/* wal_snapshot.c: the checkpoint file SNAPSHOT, written by streaming atomic replacement
 * (SNAPSHOT.tmp, fdatasync, rename, directory fsync: docs/design.md section 6) so that a snapshot
 * larger than memory budgets never needs one big buffer.
 *
 *   header (48 bytes)
 *     0  8  magic "KVWALSNP"
 *     8  4  format version (2)
 *     12 4  header length (48)
 *     16 8  LSN: the state after every batch with COMMIT LSN <= this
 *     24 8  number of entries
 *     32 8  salt of the log the snapshot was taken from (its segment headers' @16): the
 *           database's identity. Open compares it with the log's once the log is opened: a
 *           SNAPSHOT of another database (copied over this one's) is KV_CORRUPTION naming
 *           SNAPSHOT and offset 32, never a state mixed from two databases
 *     40 4  CRC32 of bytes 0..39
 *     44 4  reserved, zero
 *   entries, in key order, each:
 *     0  4  key length (1..65535)
 *     4  4  value length (0..64 MiB)
 *     8  .. key, then value
 *     .. 4  CRC32 of the entry's bytes before it
 *   trailer (16 bytes)
 *     0  8  number of entries (again: a cut file cannot pass)
 *     8  4  CRC32 of all entry bytes
 *     12 4  CRC32 of trailer bytes 0..11
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "coding.h"
#include "crc.h"
#include "wal_db.h"
#include "wal_log_int.h"

#define FLUSH_AT ((size_t)1 << 20)

static kv_status flush(kv_file *f, kv_buf *b, uint64_t *off)
{
    kv_status s = kv_file_pwrite(f, b->data, b->len, *off);
    *off += b->len;
    b->len = 0;
    if (b->cap > 4 * FLUSH_AT)
        kv_buf_free(b);
    return s;
}

kv_status wal_snapshot_write(wal_db *db, wal_node *root, uint64_t count, uint64_t lsn,
                             uint64_t salt, uint64_t *bytes)
{
    char *tmp = kv_path_join(db->dir, WAL_SNAPSHOT_TMP);
    char *dst = kv_path_join(db->dir, WAL_SNAPSHOT_NAME);
    kv_file *f = NULL;
    kv_buf b = {0};
    uint64_t off = 0;
    kv_status s = (tmp && dst)
                      ? kv_fs_open(db->fs, tmp, KV_FS_CREATE | KV_FS_TRUNC | KV_FS_WRITE, &f)
                      : kv_error(KV_NOMEM, "wal: out of memory");
    if (s != KV_OK)
        goto out;
    uint8_t h[WAL_SNAP_HEADER];
    memcpy(h, WAL_SNAP_MAGIC, 8);
    kv_put_u32(h + 8, WAL_SNAP_VERSION);
    kv_put_u32(h + 12, WAL_SNAP_HEADER);
    kv_put_u64(h + 16, lsn);
    kv_put_u64(h + 24, count);
    kv_put_u64(h + 32, salt);
    kv_put_u32(h + 40, kv_crc32(h, 40));
    kv_put_u32(h + 44, 0);
    bool ok = kv_buf_append(&b, h, sizeof h);
    /* The trailer's CRC of all entry bytes is computed over each buffered chunk just before it is
     * written (one call per MiB rather than one per entry): b's bytes from body_from on are
     * entries not yet in body. */
    uint32_t body = 0;
    size_t body_from = sizeof h;
    uint64_t seen = 0;
    wal_cursor c;
    wal_cursor_first(&c, root);
    for (wal_entry *e; ok && s == KV_OK && (e = wal_cursor_entry(&c)); wal_cursor_next(&c)) {
        size_t at = b.len;
        ok = kv_buf_reserve(&b, WAL_SNAP_ENTRY_OVH + e->klen + (size_t)e->vlen);
        if (!ok)
            break;
        uint8_t *p = b.data + at;
        kv_put_u32(p, e->klen);
        kv_put_u32(p + 4, (uint32_t)e->vlen);
        memcpy(p + 8, e->data, e->klen + (size_t)e->vlen);
        size_t n = 8 + e->klen + (size_t)e->vlen;
        uint32_t crc = kv_crc32(p, n);
        kv_put_u32(p + n, crc);
        b.len += n + 4;
        seen++;
        if (b.len >= FLUSH_AT) {
            body = kv_crc32_extend(body, b.data + body_from, b.len - body_from);
            body_from = 0;
            s = flush(f, &b, &off);
        }
    }
    if (s == KV_OK && !ok)
        s = kv_error(KV_NOMEM, "wal snapshot: out of memory");
    if (s == KV_OK && seen != count)
        s = kv_error(KV_CORRUPTION,
                     "wal snapshot: the memtable holds %" PRIu64 " keys but counts %" PRIu64, seen,
                     count);
    if (s == KV_OK) {
        uint8_t t[WAL_SNAP_TRAILER];
        if (b.len > body_from)
            body = kv_crc32_extend(body, b.data + body_from, b.len - body_from);
        kv_put_u64(t, count);
        kv_put_u32(t + 8, body);
        kv_put_u32(t + 12, kv_crc32(t, 12));
        if (!kv_buf_append(&b, t, sizeof t))
            s = kv_error(KV_NOMEM, "wal snapshot: out of memory");
    }
    if (s == KV_OK)
        s = flush(f, &b, &off);
    if (s == KV_OK) {
        s = kv_file_fdatasync(f);
        if (s != KV_OK)
            wal_log_poison(db->log, kv_errmsg());
    }
    kv_file_close(f);
    f = NULL;
    if (s != KV_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", kv_errmsg());
        kv_fs_unlink(db->fs, tmp);
        kv_error(s, "%s", msg);
        goto out;
    }
    s = kv_fs_rename(db->fs, tmp, dst);
    if (s == KV_OK) {
        s = kv_fs_fsync_dir(db->fs, db->dir);
        if (s != KV_OK)
            wal_log_poison(db->log, kv_errmsg());
    }
    if (s == KV_OK)
        *bytes = off;
out:
    kv_buf_free(&b);
    kv_file_close(f);
    free(tmp);
    free(dst);
    return s;
}

/* Reads SNAPSHOT: builds the map (build), or prints it (out), or only checks it. */
static kv_status parse(wal_db *db, bool build, FILE *out, uint64_t *lsn, uint64_t *bytes,
                       uint64_t *salt)
{
    *lsn = 0;
    *salt = 0;
    char *path = kv_path_join(db->dir, WAL_SNAPSHOT_NAME);
    if (!path)
        return kv_error(KV_NOMEM, "wal: out of memory");
    kv_file *f = NULL;
    wal_reader r = {0};
    wal_entry **v = NULL;
    uint64_t made = 0;
    uint8_t *prev = NULL;
    size_t prevlen = 0;
    kv_status s = kv_fs_open(db->fs, path, KV_FS_READ, &f);
    if (s == KV_NOT_FOUND) {
        s = KV_OK;
        kv_errclear();
        goto out;
    }
    if (s == KV_OK)
        s = wal_reader_init(&r, f);
    if (s != KV_OK)
        goto out;
    const uint8_t *p;
    size_t avail;
    if ((s = wal_reader_peek(&r, 0, WAL_SNAP_HEADER, &p, &avail)) != KV_OK)
        goto out;
    if (avail < WAL_SNAP_HEADER || memcmp(p, WAL_SNAP_MAGIC, 8) != 0 ||
        kv_get_u32(p + 40) != kv_crc32(p, 40) || kv_get_u32(p + 8) != WAL_SNAP_VERSION ||
        kv_get_u32(p + 12) != WAL_SNAP_HEADER || kv_get_u32(p + 44) != 0) {
        s = kv_error(KV_CORRUPTION,
                     "%s: offset 0: bad header (magic, crc, version, length or reserved)", path);
        goto out;
    }
    uint64_t slsn = kv_get_u64(p + 16), count = kv_get_u64(p + 24), ssalt = kv_get_u64(p + 32);
    if (out)
        fprintf(out,
                "snapshot %s (%" PRIu64 " bytes)\n  @0  magic=\"%.8s\"\n  @8  version=%u\n"
                "  @12 header_length=%u\n  @16 lsn=%" PRIu64 "\n  @24 count=%" PRIu64
                "\n  @32 salt=%016" PRIx64 " (the log's it was taken from)\n  @40 crc=%08x\n",
                WAL_SNAPSHOT_NAME, r.size, (const char *)p, kv_get_u32(p + 8), kv_get_u32(p + 12),
                slsn, count, ssalt, kv_get_u32(p + 40));
    if (count > (r.size - WAL_SNAP_HEADER) / WAL_SNAP_ENTRY_OVH) {
        s = kv_error(KV_CORRUPTION, "%s: offset 24: %" PRIu64 " entries cannot fit", path, count);
        goto out;
    }
    if (build && count && !(v = malloc(count * sizeof *v))) {
        s = kv_error(KV_NOMEM, "wal: out of memory");
        goto out;
    }
    uint64_t off = WAL_SNAP_HEADER;
    uint32_t body = 0;
    for (uint64_t i = 0; i < count; i++) {
        if ((s = wal_reader_peek(&r, off, 8, &p, &avail)) != KV_OK)
            goto out;
        uint32_t klen = avail == 8 ? kv_get_u32(p) : 0, vlen = avail == 8 ? kv_get_u32(p + 4) : 0;
        if (avail < 8 || klen == 0 || klen > KV_MAX_KEY || vlen > KV_MAX_VALUE) {
            s = kv_error(KV_CORRUPTION,
                         "%s: offset %" PRIu64 ": entry %" PRIu64 " has impossible lengths", path,
                         off, i);
            goto out;
        }
        size_t n = 8 + (size_t)klen + vlen;
        if ((s = wal_reader_peek(&r, off, n + 4, &p, &avail)) != KV_OK)
            goto out;
        if (avail < n + 4 || kv_get_u32(p + n) != kv_crc32(p, n)) {
            s = kv_error(KV_CORRUPTION, "%s: offset %" PRIu64 ": entry %" PRIu64 " %s", path, off,
                         i, avail < n + 4 ? "is cut short" : "fails its crc");
            goto out;
        }
        const uint8_t *key = p + 8;
        if (prev && kv_key_cmp(prev, prevlen, key, klen) >= 0) {
            s = kv_error(KV_CORRUPTION,
                         "%s: offset %" PRIu64 ": entry %" PRIu64 " is not above the previous key",
                         path, off, i);
            goto out;
        }
        uint8_t *keep = realloc(prev, klen);
        if (!keep) {
            s = kv_error(KV_NOMEM, "wal: out of memory");
            goto out;
        }
        prev = keep;
        memcpy(prev, key, klen);
        prevlen = klen;
        body = kv_crc32_extend(body, p, n + 4);
        if (out) {
            fprintf(out, "  @%-10" PRIu64 " entry %" PRIu64 ": klen=%u (@+0) vlen=%u (@+4) ", off,
                    i, klen, vlen);
            wal_print_bytes(out, "key@+8", key, klen);
            fprintf(out, " ");
            wal_print_bytes(out, "value", key + klen, vlen);
            fprintf(out, " crc=%08x (@+%zu)\n", kv_get_u32(p + n), n);
        }
        if (build) {
            v[made] = wal_entry_new(&db->map, key, klen, key + klen, vlen);
            if (!v[made]) {
                s = kv_error(KV_NOMEM, "wal: out of memory");
                goto out;
            }
            made++;
        }
        off += n + 4;
    }
    if ((s = wal_reader_peek(&r, off, WAL_SNAP_TRAILER, &p, &avail)) != KV_OK)
        goto out;
    if (avail < WAL_SNAP_TRAILER || kv_get_u32(p + 12) != kv_crc32(p, 12) ||
        kv_get_u64(p) != count || kv_get_u32(p + 8) != body || off + WAL_SNAP_TRAILER != r.size) {
        s = kv_error(KV_CORRUPTION,
                     "%s: offset %" PRIu64 ": bad trailer (cut, count, body crc or extra bytes)",
                     path, off);
        goto out;
    }
    if (out)
        fprintf(out, "  @%-10" PRIu64 " trailer: count=%" PRIu64 " body_crc=%08x crc=%08x\n", off,
                kv_get_u64(p), kv_get_u32(p + 8), kv_get_u32(p + 12));
    if (build) {
        if (!wal_map_build(&db->map, v, count, slsn)) {
            s = kv_error(KV_NOMEM, "wal: out of memory");
            goto out;
        }
        made = 0;
    }
    *lsn = slsn;
    *salt = ssalt;
    if (bytes)
        *bytes = r.size;
out:
    for (uint64_t i = 0; i < made; i++)
        wal_entry_unref(&db->map, v[i]);
    free(v);
    free(prev);
    wal_reader_free(&r);
    kv_file_close(f);
    free(path);
    return s;
}

kv_status wal_snapshot_load(wal_db *db, uint64_t *lsn, uint64_t *bytes, uint64_t *salt)
{
    *bytes = 0;
    return parse(db, true, NULL, lsn, bytes, salt);
}

kv_status wal_snapshot_verify(wal_db *db, FILE *out, uint64_t *lsn, uint64_t *salt)
{
    return parse(db, false, out, lsn, NULL, salt);
}

kv_status wal_snapshot_salt_error(const char *dir, uint64_t snap_salt, uint64_t log_salt)
{
    return kv_error(KV_CORRUPTION,
                    "%s/%s: offset 32: salt %016" PRIx64 " differs from the log's salt %016" PRIx64
                    ": SNAPSHOT belongs to another database",
                    dir, WAL_SNAPSHOT_NAME, snap_salt, log_salt);
}
