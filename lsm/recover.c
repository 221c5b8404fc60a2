/* recover.c: what an open reads back (LevelDB's DBImpl::Recover and VersionSet::Recover), and
 * what it refuses. See docs/lsm.md section 7 for the whole argument.
 *
 *  1. CURRENT names the manifest and holds the database id; the manifest (header checked, its
 *     records scanned under common/reclog's damage rule) folds into one edit: every live table
 *     with its level, size and unique id, the log number, the next file number.
 *  2. Every table it names is opened and must be that table: its size and the unique id in its
 *     footer are the manifest's (a missing, swapped or replaced table is KV_CORRUPTION).
 *  3. The WALs at or above the log number form a chain, oldest first: the first is the log
 *     number itself, and each later WAL's header names its predecessor and the length the
 *     predecessor had when it began. A predecessor that comes back shorter than that lost an
 *     unsynced suffix to a power loss, and then the later WALs are dropped (nothing in them was
 *     durable, or the writer would have made the predecessor durable first) — unless one of
 *     them says the predecessor was durable (the header flag, a PREV_DURABLE record, a sync mark
 *     past its header): then the predecessor is damaged, KV_CORRUPTION.
 *  4. The chain's records are replayed into memtables (sequence numbers must grow).
 * A writable open then writes the memtables as level-0 tables, a new manifest and a new WAL, and
 * deletes what is obsolete; a read-only open keeps everything in memory and writes nothing. */
#include <stdlib.h>
#include <string.h>

#include "crc.h"
#include "lsm_int.h"
#include "lock_assert.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- CURRENT and the manifest ---- */

kv_status lsm_read_current(lsm_db *db, uint64_t *number, uint64_t *db_id)
{
    char *path = kv_path_join(db->dir, "CURRENT");
    void *data = NULL;
    size_t n = 0;
    kv_status s =
        path ? kv_fs_read_file(db->fs, path, 4096, &data, &n) : kv_error(KV_NOMEM, "out of memory");
    if (s == KV_NOT_FOUND)
        s = kv_error(KV_CORRUPTION, "%s: missing", path);
    if (s == KV_OK) {
        const uint8_t *d = data;
        uint32_t len = n >= 24 ? kv_get_u32(d + 20) : 0;
        char name[64];
        if (n < 28 || memcmp(d, LSM_CURRENT_MAGIC, 8) || len >= sizeof name ||
            n != 28 + (size_t)len || kv_get_u32(d + 24 + len) != kv_crc32(d, 24 + (size_t)len))
            s = kv_error(KV_CORRUPTION, "%s: offset 0: bad CURRENT file (magic, length or crc)",
                         path);
        else if (kv_get_u32(d + 8) != LSM_CURRENT_VERSION)
            s = kv_error(KV_CORRUPTION, "%s: offset 8: version %u, expected %u", path,
                         kv_get_u32(d + 8), LSM_CURRENT_VERSION);
        else {
            *db_id = kv_get_u64(d + 12);
            memcpy(name, d + 24, len);
            name[len] = '\0';
            if (lsm_parse_name(name, number) != LSM_FILE_MANIFEST)
                s = kv_error(KV_CORRUPTION, "%s: offset 24: '%s' is not a manifest name", path,
                             name);
        }
    }
    free(data);
    free(path);
    return s;
}

typedef struct man_ctx {
    lsm_edit acc;
    const char *path;
    uint64_t records;
} man_ctx;

static kv_status manifest_record(void *ctx, const kv_reclog_rec *r)
{
    man_ctx *m = ctx;
    if (r->type == KV_RECLOG_MARK)
        return KV_OK;
    if (r->type != LSM_REC_EDIT)
        return kv_error(KV_CORRUPTION, "%s: offset %llu: record type %u in a manifest", m->path,
                        (unsigned long long)r->off, r->type);
    lsm_edit e;
    kv_status s = lsm_edit_decode(r->payload, r->len, &e, m->path, r->off);
    if (s != KV_OK)
        return s;
    lsm_edit *a = &m->acc;
    if (e.has_comparator) {
        if (strcmp(e.comparator, lsm_ikey_ops.name)) {
            s = kv_error(KV_CORRUPTION, "%s: offset %llu: comparator %s, expected %s", m->path,
                         (unsigned long long)r->off, e.comparator, lsm_ikey_ops.name);
            lsm_edit_free(&e);
            return s;
        }
        a->has_comparator = true;
    } else if (m->records == 0) {
        lsm_edit_free(&e);
        return kv_error(KV_CORRUPTION,
                        "%s: offset %llu: the first record is no snapshot of the version", m->path,
                        (unsigned long long)r->off);
    }
    m->records++;
    if (e.has_log_number)
        a->log_number = e.log_number, a->has_log_number = true;
    if (e.has_next_file)
        a->next_file = e.next_file, a->has_next_file = true;
    if (e.has_last_seq)
        a->last_seq = e.last_seq, a->has_last_seq = true;
    if (e.has_sealed)
        a->sealed_log = e.sealed_log, a->sealed_len = e.sealed_len, a->has_sealed = true;
    if (e.has_compaction)
        a->compaction = e.compaction, a->has_compaction = true;
    for (size_t i = 0; i < e.n_dels; i++) {
        bool found = false;
        for (size_t j = 0; j < a->n_adds && !found; j++)
            if (a->adds[j].level == e.dels[i].level && a->adds[j].number == e.dels[i].number) {
                free(a->adds[j].smallest);
                free(a->adds[j].largest);
                a->adds[j] = a->adds[--a->n_adds];
                found = true;
            }
        if (!found) {
            s = kv_error(KV_CORRUPTION,
                         "%s: offset %llu: the edit deletes table %06llu from level %d, which "
                         "the version does not hold",
                         m->path, (unsigned long long)r->off, (unsigned long long)e.dels[i].number,
                         e.dels[i].level);
            lsm_edit_free(&e);
            return s;
        }
    }
    for (size_t i = 0; i < e.n_adds && s == KV_OK; i++) {
        lsm_edit_file *f = &e.adds[i];
        for (size_t j = 0; j < a->n_adds; j++)
            if (a->adds[j].number == f->number)
                s = kv_error(KV_CORRUPTION, "%s: offset %llu: table %06llu added twice", m->path,
                             (unsigned long long)r->off, (unsigned long long)f->number);
        if (s == KV_OK &&
            !lsm_edit_add(a, f->level, f->number, f->size, f->unique_id, f->smallest,
                          f->smallest_len, f->largest, f->largest_len, f->entries, NULL))
            s = kv_error(KV_NOMEM, "out of memory");
    }
    lsm_edit_free(&e);
    return s;
}

kv_status lsm_load_manifest(lsm_db *db, uint64_t *number, uint64_t *db_id, lsm_edit *acc)
{
    lsm_edit_init(acc);
    kv_status s = lsm_read_current(db, number, db_id);
    if (s != KV_OK)
        return s;
    char mname[64];
    snprintf(mname, sizeof mname, "MANIFEST-%06llu", (unsigned long long)*number);
    char *mpath = kv_path_join(db->dir, mname);
    if (!mpath)
        return kv_error(KV_NOMEM, "out of memory");
    man_ctx mc = {.path = mpath};
    lsm_edit_init(&mc.acc);
    lsm_log_info info;
    s = lsm_log_read(db->fs, mpath, LSM_MAN_MAGIC, *number, *db_id, manifest_record, &mc, &info,
                     NULL);
    if (s == KV_NOT_FOUND)
        s = kv_error(KV_CORRUPTION, "%s: missing (CURRENT names it)", mpath);
    /* CURRENT names a manifest only once its first record (the snapshot) is durable. */
    if (s == KV_OK && (!mc.acc.has_comparator || !mc.acc.has_next_file || !mc.acc.has_log_number))
        s = kv_error(KV_CORRUPTION, "%s: offset %llu: the manifest lacks its first record (%s)",
                     mpath, (unsigned long long)info.r.end, info.r.why ? info.r.why : "no record");
    free(mpath);
    if (s != KV_OK) {
        lsm_edit_free(&mc.acc);
        return s;
    }
    *acc = mc.acc;
    return KV_OK;
}

/* ---- the WAL chain ---- */

void lsm_wal_chain_free(lsm_wal_chain *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->paths[i]);
        free(c->data[i]);
    }
    free(c->numbers);
    free(c->paths);
    free(c->data);
    free(c->infos);
    memset(c, 0, sizeof *c);
}

/* Reads log i of c, keeping its bytes for the replay (a second scan over the valid prefix). */
static kv_status read_one(lsm_db *db, lsm_wal_chain *c, size_t i)
{
    kv_status s = lsm_log_read(db->fs, c->paths[i], LSM_WAL_MAGIC, c->numbers[i], db->db_id, NULL,
                               NULL, &c->infos[i], &c->data[i]);
    if (s == KV_NOT_FOUND)
        return kv_error(KV_CORRUPTION, "%s: missing (deleted while the chain was read?)",
                        c->paths[i]);
    return s;
}

/* Whether log i shows that records in it were durable: a sync mark naming a length past its
 * header (such a mark is written only after an fdatasync covered records). */
static bool was_durable(const lsm_log_info *in)
{
    return in->header_ok && in->r.durable > LSM_LOG_HEADER;
}

kv_status lsm_wal_chain_read(lsm_db *db, const kv_namelist *names, uint64_t log_number,
                             lsm_wal_chain *c)
{
    memset(c, 0, sizeof *c);
    size_t cap = names->count ? names->count : 1;
    c->numbers = malloc(cap * sizeof *c->numbers);
    if (!c->numbers)
        return kv_error(KV_NOMEM, "out of memory");
    uint64_t num;
    for (size_t i = 0; i < names->count; i++)
        if (lsm_parse_name(names->names[i], &num) == LSM_FILE_LOG && num >= log_number)
            c->numbers[c->n++] = num;
    qsort(c->numbers, c->n, sizeof *c->numbers, cmp_u64);
    size_t n = c->n;
    c->n = 0; /* counts what lsm_wal_chain_free must free */
    c->paths = calloc(n ? n : 1, sizeof *c->paths);
    c->data = calloc(n ? n : 1, sizeof *c->data);
    c->infos = calloc(n ? n : 1, sizeof *c->infos);
    if (!c->paths || !c->data || !c->infos)
        return kv_error(KV_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "%06llu.log", (unsigned long long)c->numbers[i]);
        c->n = i + 1;
        if (!(c->paths[i] = kv_path_join(db->dir, name)))
            return kv_error(KV_NOMEM, "out of memory");
        kv_status s = read_one(db, c, i);
        if (s != KV_OK)
            return s;
    }
    c->replay = n;
    /* The WAL of the log number exists whenever a manifest names it: it is created (header
     * fdatasynced, directory fsynced) before the edit or snapshot that names it. (0: a new
     * database's first manifest, written before its first WAL.) */
    if (log_number && (n == 0 || c->numbers[0] != log_number))
        return kv_error(KV_CORRUPTION,
                        "%s/%06llu.log: missing: the manifest's log number names it (a deleted "
                        "log, or a stale manifest)",
                        db->dir, (unsigned long long)log_number);
    for (size_t i = 0; i < n; i++) {
        const lsm_log_info *in = &c->infos[i];
        /* A NEXT_LOG record is written once the next WAL exists whole: that WAL must be the
         * next one here. */
        if (in->next_log && (i + 1 == n || c->numbers[i + 1] != in->next_log))
            return kv_error(KV_CORRUPTION,
                            "%s/%06llu.log: missing: %s names it as the next log at offset %llu",
                            db->dir, (unsigned long long)in->next_log, c->paths[i],
                            (unsigned long long)in->next_off);
        if (i == 0 && !in->header_ok && log_number)
            return kv_error(KV_CORRUPTION, "%s: offset 0: %s, but the manifest names the log",
                            c->paths[i], in->r.why);
        if (i == 0 || c->replay < n)
            continue;
        const lsm_log_info *prev = &c->infos[i - 1];
        if (!in->header_ok) {
            if (prev->next_log) /* the header was durable before the NEXT_LOG record */
                return kv_error(
                    KV_CORRUPTION, "%s: offset 0: %s, but %s names this log at offset %llu",
                    c->paths[i], in->r.why, c->paths[i - 1], (unsigned long long)prev->next_off);
            c->replay = i; /* never durable: it holds nothing, nor may anything after it */
            continue;
        }
        if (in->h.prev_number != c->numbers[i - 1])
            return kv_error(KV_CORRUPTION,
                            "%s: offset 32: the log follows log %06llu, but the log before it is "
                            "%s (a log between them is missing)",
                            c->paths[i], (unsigned long long)in->h.prev_number, c->paths[i - 1]);
        uint64_t want = in->h.prev_len;
        if (prev->data_end > want)
            return kv_error(KV_CORRUPTION,
                            "%s: offset %llu: records past the length %llu the next log %s "
                            "recorded (no record is written there)",
                            c->paths[i - 1], (unsigned long long)want, (unsigned long long)want,
                            c->paths[i]);
        if (prev->r.end < want) {
            if ((in->h.flags & LSM_LOG_PREV_DURABLE) || in->prev_durable_rec || was_durable(in))
                return kv_error(KV_CORRUPTION,
                                "%s: offset %llu: %s, but the log was durable to offset %llu (%s "
                                "says so)",
                                c->paths[i - 1], (unsigned long long)prev->r.end,
                                prev->r.why ? prev->r.why : "the log ends here",
                                (unsigned long long)want, c->paths[i]);
            c->replay = i; /* a power loss cut the predecessor: the rest was never durable */
        }
    }
    /* A clean close sealed its WAL and recorded the length in the manifest: that log is whole
     * or damaged, never a torn tail (a copy cut short, say). */
    if (db->sealed_log && db->sealed_log >= log_number) {
        size_t k = 0;
        while (k < n && c->numbers[k] != db->sealed_log)
            k++;
        if (k == n)
            return kv_error(
                KV_CORRUPTION,
                "%s/%06llu.log: missing: a clean close sealed it (the manifest says so)", db->dir,
                (unsigned long long)db->sealed_log);
        if (k >= c->replay || c->infos[k].r.end < db->sealed_len)
            return kv_error(KV_CORRUPTION,
                            "%s: offset %llu: the log ends here (%s), but a clean close sealed it "
                            "at length %llu (the manifest says so)",
                            c->paths[k], (unsigned long long)c->infos[k].r.end,
                            c->infos[k].r.why ? c->infos[k].r.why : "cut short",
                            (unsigned long long)db->sealed_len);
    }
    for (size_t j = c->replay; j < n; j++)
        if (was_durable(&c->infos[j]))
            return kv_error(KV_CORRUPTION,
                            "%s: the sync mark at or before offset %llu shows records were "
                            "durable, but an older log lost its end (%s)",
                            c->paths[j], (unsigned long long)c->infos[j].r.durable,
                            c->paths[c->replay ? c->replay - 1 : 0]);
    return KV_OK;
}

/* ---- replay ---- */

typedef struct replay_ctx {
    lsm_db *db;
    lsm_mem **mems; /* memtables filled so far, oldest first; the last one is being filled */
    size_t n_mems;
    const char *path;
    uint64_t prev_number, prev_len; /* the header's, for PREV_DURABLE records */
    uint64_t last_seq; /* highest sequence number replayed so far: batches must go above it */
} replay_ctx;

static kv_status new_memtable(replay_ctx *r)
{
    lsm_mem **n = realloc(r->mems, (r->n_mems + 1) * sizeof *n);
    if (!n)
        return kv_error(KV_NOMEM, "out of memory");
    r->mems = n;
    if (!(r->mems[r->n_mems] = lsm_mem_new()))
        return kv_error(KV_NOMEM, "out of memory");
    r->n_mems++;
    return KV_OK;
}

/* WAL record payload (one batch): first sequence number u64, count u32, then per operation:
 * type u8 (1 value, 0 tombstone), varint32 key length, key, and for values varint32 value
 * length, value. */
static kv_status replay_batch(replay_ctx *r, const uint8_t *p, size_t n, uint64_t off)
{
    lsm_db *db = r->db;
    const uint8_t *end = p + n;
    uint64_t seq;
    uint32_t count;
    lsm_mem *mem = r->mems[r->n_mems - 1];
    if (!kv_get_fixed64(&p, end, &seq) || !kv_get_fixed32(&p, end, &count))
        goto bad;
    /* Sequence numbers only grow, across records and logs: a batch at or below one already
     * replayed (or one that wraps) is damage, and would put duplicate internal keys in the
     * memtable. */
    if (count && (seq <= r->last_seq || seq + count - 1 < seq || seq + count - 1 > LSM_MAX_SEQ))
        goto bad;
    for (uint32_t i = 0; i < count; i++) {
        if (p >= end)
            goto bad;
        int type = *p++;
        uint32_t kl, vl = 0;
        const uint8_t *k, *v = NULL;
        if ((type != LSM_TYPE_VALUE && type != LSM_TYPE_DEL) || !kv_get_varint32(&p, end, &kl) ||
            kl == 0 || kl > (uint32_t)(end - p))
            goto bad;
        k = p;
        p += kl;
        if (type == LSM_TYPE_VALUE) {
            if (!kv_get_varint32(&p, end, &vl) || vl > (uint32_t)(end - p))
                goto bad;
            v = p;
            p += vl;
        }
        if (!lsm_mem_add(mem, seq + i, type, k, kl, v, vl))
            return kv_error(KV_NOMEM, "%s: out of memory replaying the log", r->path);
    }
    if (p != end)
        goto bad;
    if (count)
        r->last_seq = seq + count - 1;
    if (count && seq + count - 1 > atomic_load(&db->last_seq))
        atomic_store(&db->last_seq, seq + count - 1);
    /* a writable open flushes each full memtable to a level-0 table; a read-only one keeps one */
    if (!db->read_only && lsm_mem_usage(mem) >= db->o.write_buffer_size)
        return new_memtable(r);
    return KV_OK;
bad:
    return kv_error(KV_CORRUPTION, "%s: offset %llu: malformed batch in a record with a good crc",
                    r->path, (unsigned long long)off);
}

static kv_status replay_record(void *ctx, const kv_reclog_rec *rec)
{
    replay_ctx *r = ctx;
    switch (rec->type) {
    case KV_RECLOG_MARK:
    case LSM_REC_NEXT_LOG: /* checked with the chain */
        return KV_OK;
    case LSM_REC_BATCH:
        return replay_batch(r, rec->payload, rec->len, rec->off);
    case LSM_REC_PREV_DURABLE:
        if (rec->len == 16 && kv_get_u64(rec->payload) == r->prev_number &&
            kv_get_u64(rec->payload + 8) == r->prev_len)
            return KV_OK;
        return kv_error(KV_CORRUPTION,
                        "%s: offset %llu: PREV_DURABLE record disagrees with the log header",
                        r->path, (unsigned long long)rec->off);
    default:
        return kv_error(KV_CORRUPTION, "%s: offset %llu: record type %u in a WAL", r->path,
                        (unsigned long long)rec->off, rec->type);
    }
}

static kv_status replay_chain(lsm_db *db, lsm_wal_chain *c, replay_ctx *rc)
{
    for (size_t i = 0; i < c->replay; i++) {
        const lsm_log_info *in = &c->infos[i];
        if (!in->header_ok)
            continue;
        rc->path = c->paths[i];
        rc->prev_number = in->h.prev_number;
        rc->prev_len = in->h.prev_len;
        kv_reclog_result res;
        uint32_t seed = kv_reclog_seed(lsm_log_salt(db->db_id, c->numbers[i]));
        /* the valid prefix only: the first pass found where it ends */
        kv_status s = kv_reclog_scan(c->paths[i], c->data[i], in->r.end, LSM_LOG_HEADER, seed,
                                     replay_record, rc, &res);
        if (s != KV_OK)
            return s;
        db->replayed_bytes += in->r.end;
    }
    return KV_OK;
}

/* ---- recovery ---- */

/* Installs the version of acc (its tables opened) as the current one. */
static kv_status install(lsm_db *db, lsm_edit *acc)
{
    lsm_version *v = lsm_version_apply(db, NULL, acc);
    if (!v)
        return kv_error(KV_NOMEM, "out of memory");
    lsm_version *old = db->current;
    db->current = NULL;
    lsm_install_version(db, v);
    if (old)
        lsm_version_unref_locked(old);
    return KV_OK;
}

kv_status lsm_recover(lsm_db *db)
{
    KV_ASSERT_HELD(&db->mu);
    kv_namelist names;
    kv_status s = kv_fs_list(db->fs, db->dir, &names);
    if (s != KV_OK)
        return s;
    bool have_current = false, have_data = false;
    uint64_t maxnum = 0, num;
    for (size_t i = 0; i < names.count; i++) {
        lsm_file_type t = lsm_parse_name(names.names[i], &num);
        if (t == LSM_FILE_CURRENT)
            have_current = true;
        if (t == LSM_FILE_LOG || t == LSM_FILE_TABLE) /* not a manifest: a crash while creating
                                                         the database leaves one before CURRENT */
            have_data = true;
        if ((t == LSM_FILE_LOG || t == LSM_FILE_TABLE || t == LSM_FILE_MANIFEST) && num > maxnum)
            maxnum = num;
    }
    lsm_edit acc, edit;
    lsm_edit_init(&acc);
    lsm_edit_init(&edit);
    lsm_wal_chain chain = {0};
    replay_ctx rc = {.db = db};
    if (!have_current) {
        if (have_data) {
            s = kv_error(KV_CORRUPTION, "%s/CURRENT: missing, but logs or tables exist", db->dir);
            goto out;
        }
        /* A new database (or a crash during its creation: nothing was acknowledged). kv_open
         * (common/kv.c) fsynced the parent when it made the directory. */
        if ((s = install(db, &acc)) != KV_OK)
            goto out;
        if (db->read_only) { /* an empty database, in memory */
            if (!(db->mem = lsm_mem_new()))
                s = kv_error(KV_NOMEM, "out of memory");
            goto out;
        }
        db->db_id = lsm_new_unique_id();
        db->next_file = maxnum + 1;
        if ((s = lsm_write_snapshot_manifest(db, db->current, NULL)) != KV_OK)
            goto out;
    }
    uint64_t mnum;
    if ((s = lsm_load_manifest(db, &mnum, &db->db_id, &acc)) != KV_OK)
        goto out;
    char mname[64];
    snprintf(mname, sizeof mname, "MANIFEST-%06llu", (unsigned long long)mnum);
    if ((s = lsm_check_compaction(db, &acc, mname)) != KV_OK)
        goto out;
    for (size_t i = 0; i < acc.n_adds; i++) {
        lsm_edit_file *a = &acc.adds[i];
        if ((s = lsm_open_file(db, a->number, a->size, a->unique_id, &a->file)) != KV_OK) {
            a->file = NULL;
            s = kv_error_wrap(s, "%s names table %06llu (level %d)", mname,
                              (unsigned long long)a->number, a->level);
            goto out;
        }
    }
    if ((s = install(db, &acc)) != KV_OK)
        goto out;
    db->manifest_number = mnum;
    db->log_number = acc.log_number;
    if (acc.has_sealed) {
        db->sealed_log = acc.sealed_log;
        db->sealed_len = acc.sealed_len;
    }
    db->next_file = acc.next_file > maxnum + 1 ? acc.next_file : maxnum + 1;
    atomic_store(&db->last_seq, acc.last_seq);
    /* The WALs: the chain is checked whole before anything is replayed, so that a damaged
     * log is refused before any table is written. */
    if ((s = lsm_wal_chain_read(db, &names, db->log_number, &chain)) != KV_OK ||
        (s = new_memtable(&rc)) != KV_OK || (s = replay_chain(db, &chain, &rc)) != KV_OK)
        goto out;
    if (db->read_only) {
        db->mem = rc.mems[0]; /* one memtable: replay_batch never starts another */
        rc.mems[0] = NULL;
        goto out;
    }
    for (size_t i = 0; i < rc.n_mems; i++) /* oldest first: newer tables get larger numbers */
        if (lsm_mem_entries(rc.mems[i]) > 0 &&
            (s = lsm_write_level0(db, rc.mems[i], &edit, db->next_file++)) != KV_OK)
            goto out;
    /* The new WAL first, so that the manifest never names a WAL that does not exist; it
     * continues the chain read here, so that until that manifest is durable (the old WALs then
     * become obsolete) the next recovery reads the same chain with this empty log at its end. */
    uint64_t log_num = db->next_file++;
    char lname[32];
    snprintf(lname, sizeof lname, "%06llu.log", (unsigned long long)log_num);
    lsm_log_header h = {LSM_LOG_VERSION, 0, log_num, db->db_id, 0, 0};
    if (chain.n) {
        h.prev_number = chain.numbers[chain.n - 1];
        h.prev_len = chain.infos[chain.n - 1].r.end;
    }
    if ((s = lsm_log_create(db->fs, db->dir, lname, LSM_WAL_MAGIC, &h, true, &db->log)) != KV_OK)
        goto out;
    /* New manifest naming the recovered tables and the new log. */
    lsm_version *nv = lsm_version_apply(db, db->current, &edit);
    if (!nv) {
        s = kv_error(KV_NOMEM, "out of memory");
        goto out;
    }
    db->log_number = log_num;
    db->sealed_log = db->sealed_len = 0; /* the new manifest says nothing of older logs */
    lsm_install_version(db, nv);
    if ((s = lsm_write_snapshot_manifest(db, db->current, NULL)) != KV_OK)
        goto out;
    if (!(db->mem = lsm_mem_new())) {
        s = kv_error(KV_NOMEM, "out of memory");
        goto out;
    }
    atomic_store(&db->manifest_rolls, 0);
    lsm_delete_obsolete(db);
out:
    for (size_t i = 0; i < rc.n_mems; i++)
        lsm_mem_unref(rc.mems[i]);
    free(rc.mems);
    lsm_wal_chain_free(&chain);
    lsm_edit_free(&edit);
    lsm_edit_free(&acc);
    kv_namelist_free(&names);
    return s;
}
