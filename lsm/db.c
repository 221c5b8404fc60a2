/* db.c: opening (recovery), closing and the engine table of the lsm engine.
 *
 * Recovery (LevelDB's DBImpl::Recover): read CURRENT -> replay the manifest into a version ->
 * replay every WAL at or above the manifest's log number into memtables, writing them as L0
 * tables -> write a new manifest (a snapshot naming those tables and a new log number), make it
 * durable, point CURRENT at it -> create the new WAL -> delete what is now obsolete (old logs,
 * old manifests, tables no version names, .tmp files: the orphans of a crash). */
#include <stdlib.h>
#include <string.h>

#include "crc.h"
#include "lsm_int.h"

int lsm_parse_name(const char *name, uint64_t *number)
{
    size_t n = strlen(name);
    if (n > 4 && !strcmp(name + n - 4, ".tmp"))
        return 5;
    if (!strcmp(name, "CURRENT"))
        return 4;
    char *end;
    if (!strncmp(name, "MANIFEST-", 9) && name[9] >= '0' && name[9] <= '9') {
        *number = strtoull(name + 9, &end, 10);
        return *end ? 0 : 3;
    }
    if (name[0] < '0' || name[0] > '9')
        return 0;
    *number = strtoull(name, &end, 10);
    if (!strcmp(end, ".log"))
        return 1;
    if (!strcmp(end, ".sst"))
        return 2;
    return 0;
}

kv_status lsm_make_table_name(uint64_t number, char *buf, size_t cap)
{
    snprintf(buf, cap, "%06llu.sst", (unsigned long long)number);
    return KV_OK;
}

kv_status lsm_open_file(lsm_db *db, uint64_t number, lsm_file **out)
{
    char name[32];
    lsm_make_table_name(number, name, sizeof name);
    char *path = kv_path_join(db->dir, name);
    if (!path)
        return kv_error(KV_IO, "out of memory");
    lsm_file *f = calloc(1, sizeof *f);
    kv_status s =
        f ? sst_reader_open_ex(db->fs, path, &lsm_ikey_ops, db->cache, db->o.mmap_reads, &f->reader)
          : kv_error(KV_IO, "out of memory");
    free(path);
    if (s != KV_OK) {
        free(f);
        return s;
    }
    const sst_props *p = sst_reader_props(f->reader);
    atomic_init(&f->refs, 1);
    f->number = number;
    f->size = p->file_size;
    f->entries = p->entries;
    f->smallest = malloc(p->smallest_len);
    f->largest = malloc(p->largest_len);
    if (!f->smallest || !f->largest || p->smallest_len < 8 || p->largest_len < 8) {
        lsm_file_unref(f);
        return kv_error(KV_CORRUPTION, "%s: bad smallest/largest keys", name);
    }
    memcpy(f->smallest, p->smallest, p->smallest_len);
    memcpy(f->largest, p->largest, p->largest_len);
    f->smallest_len = p->smallest_len;
    f->largest_len = p->largest_len;
    *out = f;
    return KV_OK;
}

void lsm_poison_locked(lsm_db *db, kv_status s)
{
    if (!atomic_load(&db->poisoned)) {
        db->bg_error = s;
        snprintf(db->bg_msg, sizeof db->bg_msg, "%s", kv_errmsg());
        atomic_store(&db->poisoned, true);
    }
    pthread_cond_broadcast(&db->done_cv);
}

void lsm_poison(lsm_db *db, kv_status s)
{
    pthread_mutex_lock(&db->mu);
    lsm_poison_locked(db, s);
    pthread_mutex_unlock(&db->mu);
}

kv_status lsm_poisoned_status_locked(lsm_db *db)
{
    return kv_error(KV_POISONED, "lsm %s: handle poisoned by an earlier failure: %s", db->dir,
                    db->bg_msg);
}

kv_status lsm_poisoned_status(lsm_db *db)
{
    pthread_mutex_lock(&db->mu);
    kv_status s = lsm_poisoned_status_locked(db);
    pthread_mutex_unlock(&db->mu);
    return s;
}

uint64_t lsm_smallest_snapshot(lsm_db *db)
{
    uint64_t m = atomic_load(&db->last_seq);
    for (size_t i = 0; i < db->n_snaps; i++)
        if (db->snaps[i] < m)
            m = db->snaps[i];
    return m;
}

/* ---- options ---- */

static const char *const option_help[] = {
    "write_buffer_size: bytes of memtable before it is flushed to an L0 SSTable (default 4M)",
    "target_file_size: bytes of an SSTable written by compaction (default 2M)",
    "l0_compaction_trigger: L0 files that start a compaction (default 4)",
    "l0_slowdown_trigger: L0 files at which each write is delayed 1 ms (default 8)",
    "l0_stop_trigger: L0 files at which writes wait for compaction (default 12)",
    "level_base_bytes: bytes of level 1; each deeper level holds 10x more (default 10M)",
    "block_size: bytes of an SSTable data block (default 4K)",
    "block_restart_interval: keys between restart points in a block (default 16)",
    "bloom_bits_per_key: Bloom filter bits per key, 0 = none (default 10)",
    "manifest_max_size: bytes of manifest before it rolls over to a new one (default 4M)",
    "mmap_reads: 1 = read tables through mmap, each block's CRC checked on first touch; 0 = "
    "pread through the block cache (default 1)",
    NULL,
};

static kv_status parse_opts(const kv_options *o, lsm_opts *out)
{
    memset(out, 0, sizeof *out);
    out->write_buffer_size = 4 << 20;
    out->target_file_size = 2 << 20;
    out->l0_trigger = 4;
    out->l0_slowdown = 8;
    out->l0_stop = 12;
    out->level_base_bytes = 10 << 20;
    out->manifest_max_size = 4 << 20;
    out->cache_size = o->cache_size ? o->cache_size : 8 << 20;
    sst_writer_opts_init(&out->sst);
    uint64_t bs = out->sst.block_size, ri = out->sst.restart_interval,
             bb = out->sst.bloom_bits_per_key, mm = 1;
    kv_status s;
    if ((s = kv_options_get_u64(o, "write_buffer_size", 1024, 1ull << 32,
                                &out->write_buffer_size)) != KV_OK ||
        (s = kv_options_get_u64(o, "target_file_size", 1024, 1ull << 32, &out->target_file_size)) !=
            KV_OK ||
        (s = kv_options_get_u64(o, "l0_compaction_trigger", 1, 1000, &out->l0_trigger)) != KV_OK ||
        (s = kv_options_get_u64(o, "l0_slowdown_trigger", 1, 1000, &out->l0_slowdown)) != KV_OK ||
        (s = kv_options_get_u64(o, "l0_stop_trigger", 1, 1000, &out->l0_stop)) != KV_OK ||
        (s = kv_options_get_u64(o, "level_base_bytes", 1024, 1ull << 40, &out->level_base_bytes)) !=
            KV_OK ||
        (s = kv_options_get_u64(o, "block_size", 256, 1 << 20, &bs)) != KV_OK ||
        (s = kv_options_get_u64(o, "block_restart_interval", 1, 1024, &ri)) != KV_OK ||
        (s = kv_options_get_u64(o, "bloom_bits_per_key", 0, 100, &bb)) != KV_OK ||
        (s = kv_options_get_u64(o, "manifest_max_size", 256, 1ull << 32,
                                &out->manifest_max_size)) != KV_OK ||
        (s = kv_options_get_u64(o, "mmap_reads", 0, 1, &mm)) != KV_OK)
        return s;
    if (out->l0_slowdown < out->l0_trigger || out->l0_stop < out->l0_slowdown)
        return kv_error(KV_INVALID, "lsm: want l0_compaction_trigger <= l0_slowdown_trigger <= "
                                    "l0_stop_trigger");
    out->sst.block_size = bs;
    out->sst.restart_interval = (unsigned)ri;
    out->sst.bloom_bits_per_key = (unsigned)bb;
    out->mmap_reads = mm != 0;
    return KV_OK;
}

/* ---- recovery ---- */

typedef struct replay_ctx {
    lsm_db *db;
    lsm_mem *mem;
    lsm_edit *edit;
    const char *path;
    kv_status s;
    uint64_t last_seq; /* highest sequence number replayed so far: batches must go above it */
} replay_ctx;

/* WAL record payload (one batch): first sequence number u64, count u32, then per operation:
 * type u8 (1 value, 0 tombstone), varint32 key length, key, and for values varint32 value
 * length, value. */
static kv_status replay_record(void *ctx, const uint8_t *p, size_t n, uint64_t off)
{
    replay_ctx *r = ctx;
    lsm_db *db = r->db;
    const uint8_t *end = p + n;
    uint64_t seq;
    uint32_t count;
    if (!kv_get_fixed64(&p, end, &seq) || !kv_get_fixed32(&p, end, &count))
        goto bad;
    /* Sequence numbers only grow, across records and logs: a batch at or below one already
     * replayed (or one that wraps) is damage, and would put duplicate internal keys in the
     * memtable. */
    if (count && (seq <= r->last_seq || seq + count - 1 < seq))
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
        if (!lsm_mem_add(r->mem, seq + i, type, k, kl, v, vl))
            return kv_error(KV_IO, "%s: out of memory replaying the log", r->path);
    }
    if (p != end)
        goto bad;
    if (count)
        r->last_seq = seq + count - 1;
    if (count && seq + count - 1 > atomic_load(&db->last_seq))
        atomic_store(&db->last_seq, seq + count - 1);
    if (lsm_mem_usage(r->mem) >= db->o.write_buffer_size) {
        kv_status s = lsm_write_level0(db, r->mem, r->edit, db->next_file++);
        if (s != KV_OK)
            return s;
        lsm_mem_unref(r->mem);
        r->mem = lsm_mem_new();
        if (!r->mem)
            return kv_error(KV_IO, "out of memory");
    }
    return KV_OK;
bad:
    return kv_error(KV_CORRUPTION,
                    "%s: offset %llu: malformed batch in a record with a good "
                    "crc",
                    r->path, (unsigned long long)off);
}

typedef struct man_ctx {
    lsm_edit acc;
    const char *path;
} man_ctx;

static kv_status manifest_record(void *ctx, const uint8_t *p, size_t n, uint64_t off)
{
    man_ctx *m = ctx;
    lsm_edit e;
    kv_status s = lsm_edit_decode(p, n, &e, m->path, off);
    if (s != KV_OK)
        return s;
    lsm_edit *a = &m->acc;
    if (e.has_comparator) {
        if (strcmp(e.comparator, lsm_ikey_ops.name)) {
            lsm_edit_free(&e);
            return kv_error(KV_CORRUPTION, "%s: offset %llu: comparator %s, expected %s", m->path,
                            (unsigned long long)off, e.comparator, lsm_ikey_ops.name);
        }
        a->has_comparator = true;
    }
    if (e.has_log_number)
        a->log_number = e.log_number, a->has_log_number = true;
    if (e.has_next_file)
        a->next_file = e.next_file, a->has_next_file = true;
    if (e.has_last_seq)
        a->last_seq = e.last_seq, a->has_last_seq = true;
    for (size_t i = 0; i < e.n_dels; i++)
        for (size_t j = 0; j < a->n_adds; j++)
            if (a->adds[j].level == e.dels[i].level && a->adds[j].number == e.dels[i].number) {
                free(a->adds[j].smallest);
                free(a->adds[j].largest);
                a->adds[j] = a->adds[--a->n_adds];
                break;
            }
    bool ok = true;
    for (size_t i = 0; i < e.n_adds && ok; i++) {
        lsm_edit_file *f = &e.adds[i];
        ok = lsm_edit_add(a, f->level, f->number, f->size, f->smallest, f->smallest_len, f->largest,
                          f->largest_len, f->entries, NULL);
    }
    lsm_edit_free(&e);
    return ok ? KV_OK : kv_error(KV_IO, "out of memory");
}

static kv_status read_current(lsm_db *db, uint64_t *number)
{
    char *path = kv_path_join(db->dir, "CURRENT");
    void *data = NULL;
    size_t n = 0;
    kv_status s =
        path ? kv_fs_read_file(db->fs, path, 4096, &data, &n) : kv_error(KV_IO, "out of memory");
    if (s == KV_OK) {
        const uint8_t *d = data;
        uint32_t len = n >= 16 ? kv_get_u32(d + 12) : 0;
        char name[64];
        if (n < 20 || memcmp(d, "KVLSMCUR", 8) || kv_get_u32(d + 8) != 1 || len >= sizeof name ||
            n != 20 + (size_t)len || kv_get_u32(d + 16 + len) != kv_crc32(d, 16 + (size_t)len))
            s = kv_error(KV_CORRUPTION, "%s: offset 0: bad CURRENT file", path);
        else {
            memcpy(name, d + 16, len);
            name[len] = '\0';
            if (lsm_parse_name(name, number) != 3)
                s = kv_error(KV_CORRUPTION, "%s: offset 16: '%s' is not a manifest name", path,
                             name);
        }
    }
    free(data);
    free(path);
    return s;
}

kv_status lsm_load_manifest(lsm_db *db, uint64_t *number, lsm_edit *acc)
{
    lsm_edit_init(acc);
    kv_status s = read_current(db, number);
    if (s != KV_OK)
        return s;
    char mname[64];
    snprintf(mname, sizeof mname, "MANIFEST-%06llu", (unsigned long long)*number);
    char *mpath = kv_path_join(db->dir, mname);
    if (!mpath)
        return kv_error(KV_IO, "out of memory");
    man_ctx mc;
    lsm_edit_init(&mc.acc);
    mc.path = mpath;
    bool torn;
    uint64_t end;
    s = lsm_log_replay(db->fs, mpath, LSM_MAN_MAGIC, *number, manifest_record, &mc, &torn, &end);
    free(mpath);
    if (s != KV_OK) {
        lsm_edit_free(&mc.acc);
        return s;
    }
    *acc = mc.acc;
    return KV_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static kv_status recover(lsm_db *db)
{
    kv_namelist names;
    kv_status s = kv_fs_list(db->fs, db->dir, &names);
    if (s != KV_OK)
        return s;
    bool have_current = false, have_data = false;
    uint64_t maxnum = 0, num;
    for (size_t i = 0; i < names.count; i++) {
        int t = lsm_parse_name(names.names[i], &num);
        if (t == 4)
            have_current = true;
        if (t == 1 || t == 2)
            have_data = true;
        if ((t >= 1 && t <= 3) && num > maxnum)
            maxnum = num;
    }
    man_ctx mc;
    lsm_edit_init(&mc.acc);
    lsm_edit edit;
    lsm_edit_init(&edit);
    uint64_t *logs = NULL;
    size_t n_logs = 0;
    char *mpath = NULL;
    replay_ctx rc = {db, NULL, &edit, NULL, KV_OK, 0};
    if (!have_current) {
        if (have_data) {
            s = kv_error(KV_CORRUPTION, "%s: CURRENT is missing but logs or tables exist", db->dir);
            goto out;
        }
        /* A new database (or a crash during its creation: nothing was acknowledged). kv_open
         * (common/kv.c) fsynced the parent when it made the directory. */
        db->next_file = maxnum + 1;
        lsm_version *v = lsm_version_apply(db, NULL, &edit);
        if (!v) {
            s = kv_error(KV_IO, "out of memory");
            goto out;
        }
        lsm_install_version(db, v);
        if ((s = lsm_write_snapshot_manifest(db, db->current, NULL)) != KV_OK)
            goto out;
    }
    uint64_t mnum;
    if ((s = read_current(db, &mnum)) != KV_OK)
        goto out;
    char mname[64];
    snprintf(mname, sizeof mname, "MANIFEST-%06llu", (unsigned long long)mnum);
    mpath = kv_path_join(db->dir, mname);
    mc.path = mpath;
    bool torn;
    uint64_t end;
    if ((s = lsm_log_replay(db->fs, mpath, LSM_MAN_MAGIC, mnum, manifest_record, &mc, &torn,
                            &end)) != KV_OK)
        goto out;
    if (!mc.acc.has_comparator || !mc.acc.has_next_file || !mc.acc.has_log_number) {
        s = kv_error(KV_CORRUPTION, "%s: offset %llu: the manifest lacks its first record", mpath,
                     (unsigned long long)end);
        goto out;
    }
    for (size_t i = 0; i < mc.acc.n_adds; i++) {
        lsm_edit_file *a = &mc.acc.adds[i];
        if ((s = lsm_open_file(db, a->number, &a->file)) != KV_OK) {
            a->file = NULL;
            s = kv_error_wrap(s == KV_NOT_FOUND ? KV_CORRUPTION : s,
                              "%s names table %06llu (level %d)", mpath,
                              (unsigned long long)a->number, a->level);
            goto out;
        }
    }
    lsm_version *v = lsm_version_apply(db, NULL, &mc.acc);
    if (!v) {
        s = kv_error(KV_IO, "out of memory");
        goto out;
    }
    lsm_version *old = db->current;
    db->current = NULL;
    lsm_install_version(db, v);
    if (old)
        lsm_version_unref_locked(old);
    db->log_number = mc.acc.log_number;
    db->next_file = mc.acc.next_file > maxnum + 1 ? mc.acc.next_file : maxnum + 1;
    atomic_store(&db->last_seq, mc.acc.last_seq);
    /* Replay the logs at or above log_number, oldest first. */
    logs = malloc((names.count + 1) * sizeof *logs);
    if (!logs) {
        s = kv_error(KV_IO, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < names.count; i++)
        if (lsm_parse_name(names.names[i], &num) == 1 && num >= db->log_number)
            logs[n_logs++] = num;
    qsort(logs, n_logs, sizeof *logs, cmp_u64);
    rc.mem = lsm_mem_new();
    if (!rc.mem) {
        s = kv_error(KV_IO, "out of memory");
        goto out;
    }
    uint64_t prev_end = 0;
    for (size_t i = 0; i < n_logs; i++) {
        char lname[32];
        snprintf(lname, sizeof lname, "%06llu.log", (unsigned long long)logs[i]);
        char *lpath = kv_path_join(db->dir, lname);
        rc.path = lpath;
        uint64_t pnum, plen;
        if (!lpath)
            s = kv_error(KV_IO, "out of memory");
        else
            s = lsm_log_prev(db->fs, lpath, LSM_WAL_MAGIC, logs[i], &pnum, &plen);
        if (s != KV_OK) {
            free(lpath);
            goto out;
        }
        if (i > 0 && pnum == logs[i - 1] && prev_end < plen) {
            /* the previous WAL lost a suffix: this one's records would leave a hole */
            free(lpath);
            break;
        }
        s = lsm_log_replay(db->fs, lpath, LSM_WAL_MAGIC, logs[i], replay_record, &rc, &torn, &end);
        free(lpath);
        if (s != KV_OK)
            goto out;
        prev_end = end;
        if (torn) /* later logs can only hold later, unacknowledged-durable records */
            break;
    }
    if (lsm_mem_entries(rc.mem) > 0 &&
        (s = lsm_write_level0(db, rc.mem, &edit, db->next_file++)) != KV_OK)
        goto out;
    /* New manifest naming the recovered tables and the new log. */
    uint64_t log_num = db->next_file++;
    lsm_version *nv = lsm_version_apply(db, db->current, &edit);
    if (!nv) {
        s = kv_error(KV_IO, "out of memory");
        goto out;
    }
    db->log_number = log_num;
    lsm_install_version(db, nv);
    if ((s = lsm_write_snapshot_manifest(db, db->current, NULL)) != KV_OK)
        goto out;
    char lname[32];
    snprintf(lname, sizeof lname, "%06llu.log", (unsigned long long)log_num);
    if ((s = lsm_log_create(db->fs, db->dir, lname, LSM_WAL_MAGIC, log_num, 0, 0, &db->log)) !=
        KV_OK)
        goto out;
    db->mem = lsm_mem_new();
    if (!db->mem) {
        s = kv_error(KV_IO, "out of memory");
        goto out;
    }
    atomic_store(&db->manifest_rolls, 0);
    lsm_delete_obsolete(db);
out:
    lsm_mem_unref(rc.mem);
    lsm_edit_free(&edit);
    lsm_edit_free(&mc.acc);
    free(logs);
    free(mpath);
    kv_namelist_free(&names);
    return s;
}

/* ---- open / close ---- */

static void db_free(lsm_db *db)
{
    kv_group_commit_free(db->gc);
    lsm_mem_unref(db->mem);
    lsm_mem_unref(db->imm);
    lsm_log_unref(db->imm_log);
    lsm_log_unref(db->log);
    lsm_log_unref(db->manifest);
    if (db->current) {
        lsm_version *v = db->current;
        db->current = NULL;
        pthread_mutex_lock(&db->mu);
        lsm_version_unref_locked(v);
        pthread_mutex_unlock(&db->mu);
    }
    sst_cache_free(db->cache);
    for (int l = 0; l < LSM_LEVELS; l++)
        kv_buf_free(&db->compact_ptr[l]);
    free(db->snaps);
    free(db->dir);
    pthread_mutex_destroy(&db->mu);
    pthread_mutex_destroy(&db->manifest_mu);
    pthread_cond_destroy(&db->bg_cv);
    pthread_cond_destroy(&db->done_cv);
    free(db);
}

static kv_status lsm_open(const char *dir, kv_fs *fs, const kv_options *opts, kv_db **out)
{
    lsm_db *db = calloc(1, sizeof *db);
    if (!db)
        return kv_error(KV_IO, "lsm: out of memory");
    pthread_mutex_init(&db->mu, NULL);
    pthread_mutex_init(&db->manifest_mu, NULL);
    pthread_cond_init(&db->bg_cv, NULL);
    pthread_cond_init(&db->done_cv, NULL);
    db->versions.next = db->versions.prev = &db->versions;
    db->fs = fs;
    db->dur = opts->durability;
    kv_status s = parse_opts(opts, &db->o);
    if (s != KV_OK) {
        db_free(db);
        return s;
    }
    db->dir = strdup(dir);
    db->cache = sst_cache_new(db->o.cache_size);
    db->gc = kv_group_commit_new(lsm_group_write, db, 1024, 1 << 20);
    if (db->gc) /* sync groups of every active committer, not alternating halves */
        kv_group_commit_set_delay(db->gc, true);
    if (!db->dir || !db->cache || !db->gc) {
        db_free(db);
        return kv_error(KV_IO, "lsm: out of memory");
    }
    pthread_mutex_lock(&db->mu);
    s = recover(db);
    pthread_mutex_unlock(&db->mu);
    if (s == KV_OK && pthread_create(&db->bg, NULL, lsm_bg_main, db) != 0)
        s = kv_error(KV_IO, "lsm: cannot start the background thread");
    else if (s == KV_OK)
        db->bg_started = true;
    if (s == KV_OK && db->dur.kind == KV_DURABILITY_INTERVAL) {
        db->syncer = kv_syncer_start(db->dur.interval_ms, lsm_interval_sync, db);
        if (!db->syncer)
            s = KV_IO;
    }
    if (s != KV_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", kv_errmsg());
        if (db->bg_started) {
            pthread_mutex_lock(&db->mu);
            db->stop = true;
            pthread_cond_broadcast(&db->bg_cv);
            pthread_mutex_unlock(&db->mu);
            pthread_join(db->bg, NULL);
        }
        db_free(db);
        return kv_error(s, "%s", msg);
    }
    pthread_mutex_lock(&db->mu);
    pthread_cond_signal(&db->bg_cv); /* a compaction may be due */
    pthread_mutex_unlock(&db->mu);
    *out = &db->base;
    return KV_OK;
}

static kv_status lsm_close(kv_db *kdb)
{
    lsm_db *db = (lsm_db *)kdb;
    pthread_mutex_lock(&db->mu);
    db->stop = true;
    pthread_cond_broadcast(&db->bg_cv);
    pthread_mutex_unlock(&db->mu);
    pthread_join(db->bg, NULL);
    kv_status s = KV_OK;
    if (db->syncer) {
        kv_status ss = kv_syncer_stop(db->syncer);
        db->syncer = NULL;
        if (ss != KV_OK)
            lsm_poison(db, ss);
    }
    if (atomic_load(&db->poisoned))
        s = lsm_poisoned_status(db);
    else /* every WAL recovery would replay: the immutable memtable's too, if unflushed */
        s = lsm_sync_wals(db, db->log);
    db_free(db);
    return s;
}

const kv_engine kv_engine_lsm = {
    .name = "lsm",
    .description = "log-structured merge tree (LevelDB-style): WAL + skiplist memtable, "
                   "SSTables in leveled compaction",
    .option_help = option_help,
    .limits = {KV_MAX_KEY, KV_MAX_VALUE},
    .durability_mask = KV_DURABILITY_BIT(KV_DURABILITY_NONE) | KV_DURABILITY_BIT(KV_DURABILITY_OS) |
                       KV_DURABILITY_BIT(KV_DURABILITY_INTERVAL) |
                       KV_DURABILITY_BIT(KV_DURABILITY_SYNC),
    .format = 1,
    .open = lsm_open,
    .close = lsm_close,
    .put = lsm_put,
    .get = lsm_get,
    .del = lsm_del,
    .write = lsm_write,
    .iter_new = lsm_iter_new,
    .sync = lsm_sync,
    .stats = lsm_stats,
    .check = lsm_check,
    .dump = lsm_dump,
};
