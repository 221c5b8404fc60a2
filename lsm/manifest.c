/* manifest.c: making version edits durable (LevelDB's VersionSet::LogAndApply). An edit is
 * appended to MANIFEST-NNNNNN and sealed (fdatasynced, then a sync mark naming it, fdatasynced:
 * lsm_log_seal) before the new version is installed, so files it drops are deleted only once the
 * manifest no longer needs them, and damage to that last edit is then told from a torn tail
 * (common/reclog.h). When the manifest grows past manifest_max_size it rolls over: a new
 * manifest gets a snapshot of the whole version, is fdatasynced, its directory fsynced, and only
 * then CURRENT is replaced (atomically) to name it; the old manifest is deleted afterwards. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc.h"
#include "lsm_int.h"
#include "lock_assert.h"

void lsm_install_version(lsm_db *db, lsm_version *v)
{
    lsm_version_ref(v);
    v->next = &db->versions;
    v->prev = db->versions.prev;
    v->prev->next = v;
    db->versions.prev = v;
    lsm_version *old = db->current;
    db->current = v;
    if (old)
        lsm_version_unref_locked(old);
}

/* Writes the CURRENT file (lsm_int.h): magic, version, database id, name length, name, crc32. */
static kv_status write_current(lsm_db *db, uint64_t number)
{
    char name[64];
    int n = snprintf(name, sizeof name, "MANIFEST-%06llu", (unsigned long long)number);
    uint8_t buf[128];
    memcpy(buf, LSM_CURRENT_MAGIC, 8);
    kv_put_u32(buf + 8, LSM_CURRENT_VERSION);
    kv_put_u64(buf + 12, db->db_id);
    kv_put_u32(buf + 20, (uint32_t)n);
    memcpy(buf + 24, name, (size_t)n);
    kv_put_u32(buf + 24 + n, kv_crc32(buf, 24 + (size_t)n));
    return kv_fs_replace_file(db->fs, db->dir, "CURRENT", buf, 28 + (size_t)n);
}

/* Appends one edit record to the manifest log (buffer, write). */
static kv_status append_edit(lsm_log *m, const lsm_edit *e)
{
    if (!lsm_log_begin(m) || !lsm_edit_encode(e, &m->buf))
        return kv_error(KV_NOMEM, "%s: out of memory", m->path);
    lsm_log_end(m, LSM_REC_EDIT);
    return lsm_log_flush(m);
}

/* A new manifest: one record with the whole version v (every file as an add) and the counters,
 * then extra (when non-NULL). Made durable, then named by CURRENT. mu not held. */
static kv_status new_manifest(lsm_db *db, uint64_t number, lsm_version *v, const lsm_edit *extra,
                              uint64_t next_file, uint64_t last_seq, uint64_t log_number,
                              lsm_log **out)
{
    char name[64];
    snprintf(name, sizeof name, "MANIFEST-%06llu", (unsigned long long)number);
    lsm_log *m;
    lsm_log_header h = {LSM_LOG_VERSION, 0, number, db->db_id, 0, 0};
    kv_status s = lsm_log_create(db->fs, db->dir, name, LSM_MAN_MAGIC, &h, false, &m);
    if (s != KV_OK)
        return s;
    lsm_edit snap;
    lsm_edit_init(&snap);
    snap.has_comparator = true;
    snprintf(snap.comparator, sizeof snap.comparator, "%s", lsm_ikey_ops.name);
    snap.has_log_number = snap.has_next_file = snap.has_last_seq = true;
    snap.log_number = log_number;
    snap.has_compaction = db->o.compaction != LSM_COMPACTION_LEVELED;
    snap.compaction = db->o.compaction;
    snap.next_file = next_file;
    snap.last_seq = last_seq;
    for (int l = 0; v && l < LSM_LEVELS; l++)
        for (size_t i = 0; i < v->n[l]; i++) {
            lsm_file *f = v->files[l][i];
            if (!lsm_edit_add(&snap, l, f->number, f->size, f->unique_id, f->smallest,
                              f->smallest_len, f->largest, f->largest_len, f->entries, NULL))
                s = kv_error(KV_NOMEM, "%s: out of memory", name);
        }
    if (s == KV_OK)
        s = append_edit(m, &snap);
    lsm_edit_free(&snap);
    if (s == KV_OK && extra)
        s = append_edit(m, extra);
    if (s == KV_OK)
        s = lsm_log_seal(m);
    if (s == KV_OK)
        s = write_current(db, number);
    if (s != KV_OK) {
        lsm_log_unref(m);
        return s;
    }
    *out = m;
    return KV_OK;
}

kv_status lsm_check_compaction(lsm_db *db, const lsm_edit *acc, const char *manifest)
{
    int stored = acc->has_compaction ? acc->compaction : LSM_COMPACTION_LEVELED;
    if (stored != db->o.compaction) {
        if (db->o.compaction_given)
            return kv_error(KV_INVALID,
                            "lsm %s: %s: the database was created with compaction=%s; it cannot "
                            "be opened with compaction=%s (give compaction=%s or leave the option "
                            "out)",
                            db->dir, manifest, lsm_compaction_name(stored),
                            lsm_compaction_name(db->o.compaction), lsm_compaction_name(stored));
        db->o.compaction = stored;
    }
    for (size_t i = 0; stored == LSM_COMPACTION_TIERED && i < acc->n_adds; i++)
        if (acc->adds[i].level != 0)
            return kv_error(KV_CORRUPTION,
                            "lsm %s: %s: table %06llu at level %d in a tiered database (its runs "
                            "are all at level 0)",
                            db->dir, manifest, (unsigned long long)acc->adds[i].number,
                            acc->adds[i].level);
    return KV_OK;
}

kv_status lsm_write_snapshot_manifest(lsm_db *db, lsm_version *v, const lsm_edit *extra)
{
    uint64_t number = db->next_file++;
    lsm_log *m = NULL;
    kv_status s = new_manifest(db, number, v, extra, db->next_file, atomic_load(&db->last_seq),
                               db->log_number, &m);
    if (s != KV_OK)
        return s;
    lsm_log_unref(db->manifest);
    db->manifest = m;
    db->manifest_number = number;
    db->manifest_size = atomic_load(&m->written);
    atomic_fetch_add(&db->manifest_rolls, 1);
    return KV_OK;
}

kv_status lsm_log_and_apply(lsm_db *db, lsm_edit *e)
{
    KV_ASSERT_HELD(&db->mu);
    lsm_version *v = lsm_version_apply(db, db->current, e);
    if (!v)
        return kv_error(KV_NOMEM, "manifest: out of memory");
    e->has_next_file = e->has_last_seq = true;
    e->next_file = db->next_file;
    e->last_seq = atomic_load(&db->last_seq);
    bool roll = db->manifest_size >= db->o.manifest_max_size;
    uint64_t number = roll ? db->next_file++ : 0;
    uint64_t log_number = e->has_log_number ? e->log_number : db->log_number;
    uint64_t nf = db->next_file;
    lsm_log *m = db->manifest;
    lsm_log *nm = NULL;
    kv_status s;
    pthread_mutex_unlock(&db->mu);
    pthread_mutex_lock(&db->manifest_mu); /* kv_check compares the file with the version */
    if (roll) {
        /* the snapshot is of the new version, so no extra edit is needed */
        s = new_manifest(db, number, v, NULL, nf, e->last_seq, log_number, &nm);
    } else {
        /* durable and vouched for by a mark before anything acts on it (files it replaces are
         * deleted once the version is installed) */
        s = append_edit(m, e);
        if (s == KV_OK)
            s = lsm_log_seal(m);
    }
    pthread_mutex_lock(&db->mu);
    if (s != KV_OK) {
        pthread_mutex_unlock(&db->manifest_mu);
        lsm_version_ref(v);
        lsm_version_unref_locked(v);
        return s;
    }
    if (roll) {
        lsm_log_unref(db->manifest);
        db->manifest = nm;
        db->manifest_number = number;
        db->manifest_size = atomic_load(&nm->written);
        atomic_fetch_add(&db->manifest_rolls, 1);
    } else
        db->manifest_size = atomic_load(&m->written);
    db->log_number = log_number;
    lsm_install_version(db, v);
    pthread_mutex_unlock(&db->manifest_mu);
    return KV_OK;
}

kv_status lsm_seal_in_manifest(lsm_db *db)
{
    lsm_edit e;
    lsm_edit_init(&e);
    e.has_sealed = true;
    e.sealed_log = db->log->number;
    e.sealed_len = atomic_load(&db->log->written);
    pthread_mutex_lock(&db->manifest_mu);
    kv_status s = append_edit(db->manifest, &e);
    if (s == KV_OK)
        s = lsm_log_seal(db->manifest);
    pthread_mutex_unlock(&db->manifest_mu);
    lsm_edit_free(&e);
    return s;
}
