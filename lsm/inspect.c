/* inspect.c: kv_stats, kv_check and kv_dump of the lsm engine. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "dump.h"
#include "lsm_int.h"

/* Takes a reference to the current version (and memtables) under the mutex. */
static lsm_version *pin(lsm_db *db, lsm_mem **mem, lsm_mem **imm)
{
    pthread_mutex_lock(&db->mu);
    lsm_version *v = db->current;
    lsm_version_ref(v);
    *mem = db->mem;
    *imm = db->imm;
    lsm_mem_ref(*mem);
    if (*imm)
        lsm_mem_ref(*imm);
    pthread_mutex_unlock(&db->mu);
    return v;
}

kv_status lsm_stats(kv_db *kdb, kv_stats *out)
{
    lsm_db *db = (lsm_db *)kdb;
    lsm_mem *mem, *imm;
    lsm_version *v = pin(db, &mem, &imm);
    /* The exact count of live keys is unknown without a full scan: live_keys is UINT64_MAX,
     * and the extra live_keys_estimate is an upper bound (entries of every table and
     * memtable, counting overwritten versions and tombstones too). */
    uint64_t entries = lsm_mem_entries(mem) + (imm ? lsm_mem_entries(imm) : 0);
    uint64_t memory =
        lsm_mem_usage(mem) + (imm ? lsm_mem_usage(imm) : 0) + sst_cache_usage(db->cache);
    uint64_t files[LSM_LEVELS];
    for (int l = 0; l < LSM_LEVELS; l++) {
        files[l] = v->n[l];
        for (size_t i = 0; i < v->n[l]; i++) {
            entries += v->files[l][i]->entries;
            memory += sst_reader_memory(v->files[l][i]->reader);
        }
    }
    lsm_mem_unref(mem);
    lsm_mem_unref(imm);
    lsm_version_unref(v);
    out->live_keys = UINT64_MAX;
    out->memory_bytes = memory;
    sst_counters *c = sst_cache_counters(db->cache);
    kv_stats_add(out, "live_keys_estimate", entries);
    kv_stats_add(out, "flushes", atomic_load(&db->flushes));
    kv_stats_add(out, "compactions", atomic_load(&db->compactions));
    kv_stats_add(out, "trivial_moves", atomic_load(&db->trivial_moves));
    kv_stats_add(out, "compaction_bytes_read", atomic_load(&db->comp_read));
    kv_stats_add(out, "compaction_bytes_written", atomic_load(&db->comp_written));
    kv_stats_add(out, "stall_us", atomic_load(&db->stall_us));
    kv_stats_add(out, "manifest_rollovers", atomic_load(&db->manifest_rolls));
    kv_stats_add(out, "recovery_log_bytes", db->replayed_bytes);
    kv_stats_add(out, "cache_hits", atomic_load(&c->cache_hits));
    kv_stats_add(out, "cache_misses", atomic_load(&c->cache_misses));
    kv_stats_add(out, "cache_bytes", sst_cache_usage(db->cache));
    kv_stats_add(out, "bloom_checks", atomic_load(&c->bloom_checks));
    kv_stats_add(out, "bloom_useful", atomic_load(&c->bloom_useful));
    unsigned long long groups = 0, items = 0;
    kv_group_commit_counts(db->gc, &groups, &items);
    kv_stats_add(out, "commit_groups", groups);
    for (int l = 0; l < LSM_LEVELS; l++) {
        char name[32];
        snprintf(name, sizeof name, "files_L%d", l);
        kv_stats_add(out, name, files[l]);
    }
    return KV_OK;
}

/* ---- check ---- */

static kv_status check_memtable(lsm_mem *m, const char *what)
{
    lsm_it *it = lsm_mem_iter(m);
    if (!it)
        return kv_error(KV_NOMEM, "out of memory");
    kv_buf prev = {0};
    kv_status s = KV_OK;
    uint64_t n = 0;
    for (it->ops->seek_first(it); it->ops->valid(it); it->ops->next(it), n++) {
        size_t kl;
        const uint8_t *k = it->ops->key(it, &kl);
        if (n && lsm_ikey_cmp(prev.data, prev.len, k, kl) >= 0) {
            s = kv_error(KV_CORRUPTION, "%s: entry %llu is out of order", what,
                         (unsigned long long)n);
            break;
        }
        prev.len = 0;
        kv_buf_append(&prev, k, kl);
    }
    kv_buf_free(&prev);
    lsm_it_free(it);
    return s;
}

/* The manifest on disk (through CURRENT) names exactly the tables of version v, per level, with
 * their sizes and unique ids. */
static kv_status check_manifest(lsm_db *db, lsm_version *v, uint64_t want_number)
{
    uint64_t number, db_id;
    lsm_edit acc;
    kv_status s = lsm_load_manifest(db, &number, &db_id, &acc);
    if (s != KV_OK)
        return s;
    if (number != want_number)
        s = kv_error(KV_CORRUPTION, "CURRENT names MANIFEST-%06llu, the handle uses %06llu",
                     (unsigned long long)number, (unsigned long long)want_number);
    else if (db_id != db->db_id)
        s = kv_error(KV_CORRUPTION, "%s/CURRENT: database id %016llx, the handle's is %016llx",
                     db->dir, (unsigned long long)db_id, (unsigned long long)db->db_id);
    size_t total = 0;
    for (int l = 0; l < LSM_LEVELS; l++)
        total += v->n[l];
    if (s == KV_OK && acc.n_adds != total)
        s = kv_error(KV_CORRUPTION, "MANIFEST-%06llu names %zu tables, the version holds %zu",
                     (unsigned long long)number, acc.n_adds, total);
    for (size_t i = 0; s == KV_OK && i < acc.n_adds; i++) {
        const lsm_edit_file *a = &acc.adds[i];
        bool found = false;
        for (size_t j = 0; j < v->n[a->level] && !found; j++) {
            const lsm_file *f = v->files[a->level][j];
            found = f->number == a->number && f->size == a->size && f->unique_id == a->unique_id;
        }
        if (!found)
            s = kv_error(KV_CORRUPTION,
                         "MANIFEST-%06llu names table %06llu (%llu bytes, id %016llx) at "
                         "level %d, which the version lacks",
                         (unsigned long long)number, (unsigned long long)a->number,
                         (unsigned long long)a->size, (unsigned long long)a->unique_id, a->level);
    }
    lsm_edit_free(&acc);
    return s;
}

/* The WALs at and above the log number form a chain recovery accepts (recover.c). */
static kv_status check_wals(lsm_db *db, uint64_t log_number)
{
    kv_namelist names;
    kv_status s = kv_fs_list(db->fs, db->dir, &names);
    if (s != KV_OK)
        return s;
    lsm_wal_chain c;
    s = lsm_wal_chain_read(db, &names, log_number, &c);
    lsm_wal_chain_free(&c);
    kv_namelist_free(&names);
    return s;
}

/* The unique id in the footer of the file now at path (size bytes) is id. */
static kv_status check_footer_id(lsm_db *db, const char *path, uint64_t size, uint64_t id)
{
    if (size < SST_FOOTER_SIZE)
        return kv_error(KV_CORRUPTION, "%s: %llu bytes, too short for a table", path,
                        (unsigned long long)size);
    kv_file *fh;
    kv_status s = kv_fs_open(db->fs, path, KV_FS_READ, &fh);
    uint8_t b[8];
    if (s == KV_OK) {
        s = kv_file_read_exact(fh, b, sizeof b, size - SST_FOOTER_SIZE + 36);
        kv_file_close(fh);
    }
    if (s == KV_OK && kv_get_u64(b) != id)
        s = kv_error(KV_CORRUPTION, "%s: offset %llu: unique id %016llx, the manifest says %016llx",
                     path, (unsigned long long)(size - SST_FOOTER_SIZE + 36),
                     (unsigned long long)kv_get_u64(b), (unsigned long long)id);
    return s;
}

kv_status lsm_check(kv_db *kdb)
{
    lsm_db *db = (lsm_db *)kdb;
    /* no edit is written while we compare the manifest file with the current version, and the
     * log number stays: no WAL at or above it is deleted meanwhile */
    pthread_mutex_lock(&db->manifest_mu);
    pthread_mutex_lock(&db->mu);
    uint64_t mnum = db->manifest_number, log_number = db->log_number;
    pthread_mutex_unlock(&db->mu);
    lsm_mem *mem, *imm;
    lsm_version *v = pin(db, &mem, &imm);
    kv_status s = db->db_id == 0 && db->read_only ? KV_OK /* empty, never created */
                                                  : check_manifest(db, v, mnum);
    if (s == KV_OK && !(db->db_id == 0 && db->read_only))
        s = check_wals(db, log_number);
    pthread_mutex_unlock(&db->manifest_mu);
    if (s == KV_OK)
        s = check_memtable(mem, "memtable");
    if (s == KV_OK && imm)
        s = check_memtable(imm, "immutable memtable");
    for (int l = 0; s == KV_OK && l < LSM_LEVELS; l++) {
        for (size_t i = 0; s == KV_OK && i < v->n[l]; i++) {
            lsm_file *f = v->files[l][i];
            const char *path = sst_reader_path(f->reader);
            /* the manifest agrees with the file on disk */
            kv_file *fh;
            uint64_t size = 0;
            s = kv_fs_open(db->fs, path, KV_FS_READ, &fh);
            if (s != KV_OK) {
                s = kv_error(KV_CORRUPTION,
                             "level %d: table %s named by the manifest is "
                             "missing",
                             l, path);
                break;
            }
            s = kv_file_size(fh, &size);
            kv_file_close(fh);
            if (s == KV_OK && size != f->size)
                s = kv_error(KV_CORRUPTION, "%s: %llu bytes on disk, the manifest says %llu", path,
                             (unsigned long long)size, (unsigned long long)f->size);
            if (s == KV_OK) /* the file under the name is still the one opened */
                s = check_footer_id(db, path, size, f->unique_id);
            if (s == KV_OK)
                s = sst_reader_verify(f->reader);
            const sst_props *p = sst_reader_props(f->reader);
            if (s == KV_OK && (p->smallest_len != f->smallest_len ||
                               memcmp(p->smallest, f->smallest, f->smallest_len) ||
                               p->largest_len != f->largest_len ||
                               memcmp(p->largest, f->largest, f->largest_len)))
                s = kv_error(KV_CORRUPTION,
                             "%s: smallest/largest keys differ from the "
                             "manifest",
                             path);
            if (s == KV_OK &&
                lsm_ikey_cmp(f->smallest, f->smallest_len, f->largest, f->largest_len) > 0)
                s = kv_error(KV_CORRUPTION, "%s: smallest key > largest key", path);
            if (s == KV_OK && l >= 1 && i > 0) {
                lsm_file *pf = v->files[l][i - 1];
                if (lsm_ukey_cmp(pf->largest, pf->largest_len - 8, f->smallest,
                                 f->smallest_len - 8) >= 0)
                    s = kv_error(KV_CORRUPTION,
                                 "level %d: tables %06llu and %06llu overlap "
                                 "or are out of order",
                                 l, (unsigned long long)pf->number, (unsigned long long)f->number);
            }
        }
    }
    lsm_mem_unref(mem);
    lsm_mem_unref(imm);
    lsm_version_unref(v);
    return s;
}

/* ---- dump ---- */

typedef struct dump_ctx {
    FILE *out;
    const char *path;
    bool wal;
} dump_ctx;

/* Prints one record: its reclog framing field by field, then the payload (a batch, an edit, a
 * PREV_DURABLE record or a sync mark). */
static kv_status dump_record(void *ctx, const kv_reclog_rec *r)
{
    dump_ctx *d = ctx;
    const uint8_t *f = r->payload - KV_RECLOG_FRAME;
    uint64_t o = r->off;
    const char *kind = r->type == KV_RECLOG_MARK         ? "sync mark"
                       : !d->wal                         ? "edit"
                       : r->type == LSM_REC_BATCH        ? "batch"
                       : r->type == LSM_REC_PREV_DURABLE ? "prev_durable"
                       : r->type == LSM_REC_NEXT_LOG     ? "next_log"
                                                         : "unknown";
    fprintf(d->out,
            "  @%" PRIu64 " record: crc32=%08x @%" PRIu64 " header_crc32=%08x @%" PRIu64
            " length=%u @%" PRIu64 " type=%u (%s), payload @%" PRIu64 "\n",
            o, kv_get_u32(f), o + 4, kv_get_u32(f + 4), o + 8, r->len, o + 12, r->type, kind,
            o + KV_RECLOG_FRAME);
    const uint8_t *p = r->payload, *end = p + r->len;
    if (r->type == KV_RECLOG_MARK) {
        fprintf(d->out, "    durable_length=%" PRIu64 " (every byte before it was fdatasynced)\n",
                kv_get_u64(p));
        return KV_OK;
    }
    if (!d->wal) {
        lsm_edit e;
        kv_status s = lsm_edit_decode(p, r->len, &e, d->path, o);
        if (s != KV_OK)
            return s;
        lsm_edit_print(d->out, &e);
        lsm_edit_free(&e);
        return KV_OK;
    }
    if (r->type == LSM_REC_PREV_DURABLE) {
        if (r->len == 16)
            fprintf(d->out, "    previous_log=%" PRIu64 " durable to length=%" PRIu64 "\n",
                    kv_get_u64(p), kv_get_u64(p + 8));
        return KV_OK;
    }
    if (r->type == LSM_REC_NEXT_LOG) {
        if (r->len == 8)
            fprintf(d->out, "    next_log=%" PRIu64 "\n", kv_get_u64(p));
        return KV_OK;
    }
    uint64_t seq;
    uint32_t count;
    if (r->type != LSM_REC_BATCH || !kv_get_fixed64(&p, end, &seq) ||
        !kv_get_fixed32(&p, end, &count))
        return kv_error(KV_CORRUPTION, "%s: offset %" PRIu64 ": malformed record", d->path, o);
    fprintf(d->out, "    batch: first_sequence=%" PRIu64 " count=%u\n", seq, count);
    for (uint32_t i = 0; i < count && p < end; i++) {
        int type = *p++;
        uint32_t kl = 0, vl = 0;
        if (!kv_get_varint32(&p, end, &kl) || kl > (uint32_t)(end - p))
            break;
        fprintf(d->out, "    op %u: %s seq=%" PRIu64 " key=", i,
                type == LSM_TYPE_VALUE ? "put" : "delete", seq + i);
        kv_dump_bytes(d->out, p, kl, 64);
        p += kl;
        if (type == LSM_TYPE_VALUE) {
            if (!kv_get_varint32(&p, end, &vl) || vl > (uint32_t)(end - p))
                break;
            fputs(" value=", d->out);
            kv_dump_bytes(d->out, p, vl, 32);
            p += vl;
        }
        fputc('\n', d->out);
    }
    return KV_OK;
}

static kv_status dump_log(lsm_db *db, FILE *out, const char *name, uint64_t num, bool wal)
{
    char *path = kv_path_join(db->dir, name);
    if (!path)
        return kv_error(KV_NOMEM, "out of memory");
    void *data = NULL;
    size_t n = 0;
    kv_status s = kv_fs_read_file(db->fs, path, 1ull << 40, &data, &n);
    if (s == KV_OK) {
        const uint8_t *h = data;
        fprintf(out, "%s (%zu bytes)\n", name, n);
        if (n >= LSM_LOG_HEADER) {
            fputs("@0 header: magic=", out);
            kv_dump_bytes(out, h, 8, 8);
            fprintf(out,
                    " @8 version=%u @12 flags=%u%s @16 file_number=%" PRIu64
                    " @24 database_id=%016" PRIx64 "\n  @32 previous_log=%" PRIu64
                    " @40 previous_log_length=%" PRIu64 " @52 crc32=%08x\n",
                    kv_get_u32(h + 8), kv_get_u32(h + 12),
                    kv_get_u32(h + 12) & LSM_LOG_PREV_DURABLE ? " (previous log durable)" : "",
                    kv_get_u64(h + 16), kv_get_u64(h + 24), kv_get_u64(h + 32), kv_get_u64(h + 40),
                    kv_get_u32(h + 52));
        }
    }
    free(data);
    if (s == KV_OK) {
        dump_ctx d = {out, path, wal};
        lsm_log_info info;
        s = lsm_log_read(db->fs, path, wal ? LSM_WAL_MAGIC : LSM_MAN_MAGIC, num, db->db_id,
                         dump_record, &d, &info, NULL);
        if (s == KV_OK && !info.header_ok)
            fprintf(out, "  the header never became durable (no sync mark follows it): an empty "
                         "log\n");
        else if (s == KV_OK)
            fprintf(out,
                    "  @%" PRIu64 " end of records (%" PRIu64 " records, %" PRIu64
                    " sync marks%s%s)\n",
                    info.r.end, info.r.records, info.r.marks,
                    info.r.torn ? "; a torn tail follows: " : "", info.r.torn ? info.r.why : "");
    }
    free(path);
    return s;
}

static kv_status dump_current(lsm_db *db, FILE *out)
{
    char *path = kv_path_join(db->dir, "CURRENT");
    void *data = NULL;
    size_t n = 0;
    kv_status s =
        path ? kv_fs_read_file(db->fs, path, 4096, &data, &n) : kv_error(KV_NOMEM, "out of memory");
    if (s == KV_OK && n >= 28) {
        const uint8_t *d = data;
        uint32_t len = kv_get_u32(d + 20);
        fprintf(out, "CURRENT (%zu bytes)\n@0 magic=", n);
        kv_dump_bytes(out, d, 8, 8);
        fprintf(out, " @8 version=%u @12 database_id=%016" PRIx64 " @20 name_length=%u @24 name=",
                kv_get_u32(d + 8), kv_get_u64(d + 12), len);
        kv_dump_bytes(out, d + 24, len <= n - 28 ? len : n - 28, 64);
        if (len <= n - 28)
            fprintf(out, " @%u crc32=%08x", 24 + len, kv_get_u32(d + 24 + len));
        fputc('\n', out);
    }
    free(data);
    free(path);
    return s;
}

kv_status lsm_dump(kv_db *kdb, FILE *out, const char *file, int64_t page)
{
    lsm_db *db = (lsm_db *)kdb;
    if (page >= 0 && !file)
        return kv_error(KV_INVALID, "lsm dump: a block number (--page) needs a table (--file)");
    kv_namelist names;
    kv_status s = kv_fs_list(db->fs, db->dir, &names);
    if (s != KV_OK)
        return s;
    bool found = false;
    if (!file)
        lsm_version_print(db, out);
    for (size_t i = 0; s == KV_OK && i < names.count; i++) {
        const char *name = names.names[i];
        if (file && strcmp(file, name))
            continue;
        uint64_t num = 0;
        lsm_file_type t = lsm_parse_name(name, &num);
        if (t == LSM_FILE_OTHER || t == LSM_FILE_TEMP) {
            if (file) {
                s = kv_error(KV_INVALID, "%s: not an lsm file", name);
                found = true;
            }
            continue;
        }
        found = true;
        if (page >= 0 && t != LSM_FILE_TABLE) {
            s = kv_error(KV_INVALID, "%s: --page applies to tables (.sst) only", name);
            break;
        }
        if (t == LSM_FILE_LOG || t == LSM_FILE_MANIFEST)
            s = dump_log(db, out, name, num, t == LSM_FILE_LOG);
        else if (t == LSM_FILE_CURRENT)
            s = dump_current(db, out);
        else {
            char *p = kv_path_join(db->dir, name);
            s = p ? sst_dump(db->fs, p, &lsm_ikey_ops, out, page)
                  : kv_error(KV_NOMEM, "out of memory");
            free(p);
        }
        if (s == KV_NOT_FOUND && !file) { /* deleted by compaction while we listed */
            fprintf(out, "%s: deleted while dumping\n", name);
            s = KV_OK;
        }
        fputc('\n', out);
    }
    kv_namelist_free(&names);
    if (s == KV_OK && file && !found)
        s = kv_error(KV_INVALID, "%s: no such file in %s", file, db->dir);
    return s;
}

/* ---- picture ---- */

/* A memtable: entries, bytes and its first and last user keys (one pass of its skiplist), and
 * links to the WALs that hold the same writes. */
static kv_status pic_mem(kv_pic *pic, lsm_mem *m, const char *what, const int *logs, size_t nlogs)
{
    int node = kv_pic_node(pic, KV_PIC_ROOT, KV_PIC_MEM, "%s (in memory)", what);
    uint64_t n = lsm_mem_entries(m);
    kv_pic_line(pic, node, "%" PRIu64 " %s, %s", n, n == 1 ? "entry" : "entries",
                kv_pic_bytes(pic, lsm_mem_usage(m)));
    lsm_it *it = lsm_mem_iter(m);
    if (!it)
        return kv_error(KV_NOMEM, "out of memory");
    kv_buf first = {0}, last = {0};
    bool ok = true;
    for (it->ops->seek_first(it); ok && it->ops->valid(it); it->ops->next(it)) {
        size_t kl;
        const uint8_t *k = it->ops->key(it, &kl);
        last.len = 0;
        ok = kv_buf_append(first.len ? &last : &first, k, kl - 8);
    }
    if (first.len)
        kv_pic_line(pic, node, "%s .. %s", kv_pic_key(pic, first.data, first.len),
                    last.len ? kv_pic_key(pic, last.data, last.len)
                             : kv_pic_key(pic, first.data, first.len));
    kv_buf_free(&first);
    kv_buf_free(&last);
    lsm_it_free(it);
    for (size_t i = 0; i < nlogs; i++)
        kv_pic_link(pic, node, logs[i], "logged in");
    return ok ? KV_OK : kv_error(KV_NOMEM, "out of memory");
}

/* The WALs in the directory (those numbered from the manifest's log number on hold writes the
 * memtables have and no table has yet) with their sizes; live[0..*nlive): the nodes of those
 * (at most 4). */
static kv_status pic_logs(lsm_db *db, kv_pic *pic, uint64_t log_number, int *live, size_t *nlive)
{
    kv_namelist names;
    kv_status s = kv_fs_list(db->fs, db->dir, &names);
    for (size_t i = 0; s == KV_OK && i < names.count; i++) {
        uint64_t num;
        if (lsm_parse_name(names.names[i], &num) != LSM_FILE_LOG)
            continue;
        char *path = kv_path_join(db->dir, names.names[i]);
        kv_file *f = NULL;
        uint64_t size = 0;
        s = path ? kv_fs_open(db->fs, path, KV_FS_READ, &f) : kv_error(KV_NOMEM, "out of memory");
        if (s == KV_OK)
            s = kv_file_size(f, &size);
        kv_file_close(f);
        free(path);
        if (s == KV_NOT_FOUND) { /* deleted by a flush while we listed */
            s = KV_OK;
            continue;
        }
        int node = kv_pic_node(pic, KV_PIC_ROOT, KV_PIC_FILE, "%s", names.names[i]);
        kv_pic_line(pic, node, "WAL, %s", kv_pic_bytes(pic, size));
        kv_pic_line(pic, node,
                    num >= log_number ? "writes not yet in a table"
                                      : "obsolete (every write is in a table)");
        if (num >= log_number && *nlive < 4)
            live[(*nlive)++] = node;
    }
    kv_namelist_free(&names);
    return s;
}

/* The user-key part of an internal key of n bytes (tables' bounds were checked at open). */
static size_t ukey_len(size_t n)
{
    return n >= 8 ? n - 8 : n;
}

static const char *plural(uint64_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

kv_status lsm_picture(kv_db *kdb, kv_pic *pic)
{
    lsm_db *db = (lsm_db *)kdb;
    pthread_mutex_lock(&db->mu);
    uint64_t manifest = db->manifest_number, last_seq = atomic_load(&db->last_seq);
    uint64_t log_number = db->log_number;
    pthread_mutex_unlock(&db->mu);
    int logs[4];
    size_t nlogs = 0;
    kv_status ls = pic_logs(db, pic, log_number, logs, &nlogs);
    if (ls != KV_OK)
        return ls;
    lsm_mem *mem, *imm;
    lsm_version *v = pin(db, &mem, &imm);
    kv_status s = pic_mem(pic, mem, "memtable", logs, nlogs);
    if (s == KV_OK && imm)
        s = pic_mem(pic, imm, "immutable memtable (being flushed)", NULL, 0);
    int man = kv_pic_node(pic, KV_PIC_ROOT, KV_PIC_FILE, "MANIFEST-%06" PRIu64, manifest);
    kv_pic_line(pic, man, "the tables of each level (CURRENT names it)");
    kv_pic_line(pic, man, "last sequence number %" PRIu64, last_seq);
    int deepest = -1;
    for (int l = 0; l < LSM_LEVELS; l++)
        if (v->n[l])
            deepest = l;
    for (int l = 0; l <= deepest || l == 0; l++) {
        uint64_t bytes = 0;
        for (size_t i = 0; i < v->n[l]; i++)
            bytes += v->files[l][i]->size;
        int level = kv_pic_node(pic, man, KV_PIC_GROUP, "level %d", l);
        if (v->n[l])
            kv_pic_line(pic, level, "%zu %s, %s%s", v->n[l], plural(v->n[l], "table", "tables"),
                        kv_pic_bytes(pic, bytes), l == 0 ? ", may overlap" : ", sorted, disjoint");
        else
            kv_pic_line(pic, level, "empty");
        for (size_t i = 0; i < v->n[l]; i++) {
            const lsm_file *f = v->files[l][i];
            int t = kv_pic_node(pic, level, KV_PIC_FILE, "%06" PRIu64 ".sst", f->number);
            kv_pic_line(pic, t, "%" PRIu64 " %s, %s", f->entries,
                        plural(f->entries, "entry", "entries"), kv_pic_bytes(pic, f->size));
            kv_pic_line(pic, t, "%s .. %s", kv_pic_key(pic, f->smallest, ukey_len(f->smallest_len)),
                        kv_pic_key(pic, f->largest, ukey_len(f->largest_len)));
        }
    }
    lsm_mem_unref(mem);
    lsm_mem_unref(imm);
    lsm_version_unref(v);
    return s;
}
