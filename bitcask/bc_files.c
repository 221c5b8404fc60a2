/* bc_files.c: data file objects (reference counted), the file table, file creation and hint
 * file writing. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bc_int.h"
#include "lock_assert.h"

char *bc_file_name(uint64_t id, const char *ext, char *buf, size_t cap)
{
    snprintf(buf, cap, "%010llu.%s", (unsigned long long)id, ext);
    return buf;
}

char *bc_path(bc_db *db, uint64_t id, const char *ext)
{
    char name[64];
    return kv_path_join(db->dir, bc_file_name(id, ext, name, sizeof name));
}

kv_status bc_poison(bc_db *db, kv_status s)
{
    atomic_store(&db->poisoned, true);
    return s;
}

bc_file *bc_file_new(bc_db *db, uint64_t id, uint32_t kind, uint64_t salt, kv_file *f,
                     uint64_t size)
{
    bc_file *bf = calloc(1, sizeof *bf);
    if (!bf)
        return NULL;
    bf->id = id;
    bf->kind = kind;
    bf->salt = salt;
    bf->seed = kv_reclog_seed(salt);
    bf->f = f;
    bf->db = db;
    atomic_init(&bf->refs, 1);
    atomic_init(&bf->size, size);
    atomic_init(&bf->live_bytes, 0);
    atomic_init(&bf->obsolete, false);
    atomic_init(&bf->has_hint, false);
    atomic_init(&bf->sealed, false);
    atomic_init(&bf->map, NULL);
    atomic_init(&bf->map_len, 0);
    atomic_init(&bf->map_failed, false);
    return bf;
}

void bc_file_ref(bc_file *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

void bc_file_unref(bc_file *f)
{
    if (!f)
        return;
    long left = (long)atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel);
    assert(left > 0); /* the caller held a reference */
    if (left != 1)
        return;
    const uint8_t *m = atomic_load(&f->map);
    if (m)
        kv_file_unmap(f->f, m, atomic_load(&f->map_len));
    kv_file_close(f->f);
    if (atomic_load(&f->obsolete)) {
        /* The merge manifest lists this file as replaced, so recovery deletes it again if this
         * unlink is lost in a crash; no directory fsync is needed here. */
        char *p = bc_path(f->db, f->id, "data");
        char *h = bc_path(f->db, f->id, "hint");
        if (p)
            kv_fs_unlink(f->db->fs, p);
        if (h)
            kv_fs_unlink(f->db->fs, h);
        free(p);
        free(h);
        kv_errclear();
    }
    free(f);
}

const uint8_t *bc_file_mapped(bc_file *f, uint64_t *len)
{
    const uint8_t *m = atomic_load_explicit(&f->map, memory_order_acquire);
    if (m) {
        *len = atomic_load_explicit(&f->map_len, memory_order_relaxed);
        return m;
    }
    if (!f->db->read_mmap || !atomic_load(&f->sealed) || atomic_load(&f->map_failed))
        return NULL;
    uint64_t size = atomic_load(&f->size);
    const void *addr = NULL;
    if (size == 0 || kv_file_map(f->f, size, &addr) != KV_OK) {
        atomic_store(&f->map_failed, true);
        kv_errclear();
        return NULL;
    }
    const uint8_t *expect = NULL;
    atomic_store(&f->map_len, size);
    if (!atomic_compare_exchange_strong(&f->map, &expect, (const uint8_t *)addr)) {
        kv_file_unmap(f->f, addr, size); /* another reader mapped it first */
        m = expect;
    } else {
        m = addr;
    }
    *len = size;
    return m;
}

static size_t files_lower(bc_db *db, uint64_t id)
{
    size_t lo = 0, hi = db->nfiles;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (db->files[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bc_file *bc_files_peek(bc_db *db, uint64_t id)
{
    if (db->active && db->active->id == id)
        return db->active;
    size_t i = files_lower(db, id);
    return i < db->nfiles && db->files[i]->id == id ? db->files[i] : NULL;
}

bc_file *bc_files_find(bc_db *db, uint64_t id)
{
    KV_ASSERT_RW_HELD(&db->lock);
    bc_file *a = db->active;
    if (a && a->id == id) {
        bc_file_ref(a);
        return a;
    }
    size_t i = files_lower(db, id);
    if (i < db->nfiles && db->files[i]->id == id) {
        bc_file_ref(db->files[i]);
        return db->files[i];
    }
    return NULL;
}

bool bc_files_add(bc_db *db, bc_file *f)
{
    if (db->nfiles == db->capfiles) {
        size_t cap = db->capfiles ? db->capfiles * 2 : 16;
        bc_file **n = realloc(db->files, cap * sizeof *n);
        if (!n)
            return false;
        db->files = n;
        db->capfiles = cap;
    }
    size_t i = files_lower(db, f->id);
    memmove(&db->files[i + 1], &db->files[i], (db->nfiles - i) * sizeof *db->files);
    db->files[i] = f;
    db->nfiles++;
    return true;
}

void bc_files_remove(bc_db *db, bc_file *f)
{
    size_t i = files_lower(db, f->id);
    if (i >= db->nfiles || db->files[i] != f)
        return;
    memmove(&db->files[i], &db->files[i + 1], (db->nfiles - i - 1) * sizeof *db->files);
    db->nfiles--;
    bc_file_unref(f);
}

kv_status bc_file_create(bc_db *db, uint64_t id, uint32_t kind, const char *ext, bc_file **out)
{
    char *p = bc_path(db, id, ext);
    if (!p)
        return kv_error(KV_NOMEM, "bitcask: out of memory");
    kv_file *f = NULL;
    kv_status s = kv_fs_open(db->fs, p, KV_FS_CREATE | KV_FS_TRUNC | KV_FS_WRITE, &f);
    free(p);
    if (s != KV_OK)
        return s;
    uint64_t salt = bc_new_salt();
    uint8_t hdr[BC_DATA_HDR];
    bc_data_hdr_encode(hdr, kind, id, salt);
    s = kv_file_pwrite(f, hdr, sizeof hdr, 0);
    if (s == KV_OK)
        s = kv_file_fdatasync(f);
    if (s != KV_OK) {
        kv_file_close(f);
        return s;
    }
    bc_file *bf = bc_file_new(db, id, kind, salt, f, BC_DATA_HDR);
    if (!bf) {
        kv_file_close(f);
        return kv_error(KV_NOMEM, "bitcask: out of memory");
    }
    *out = bf;
    return KV_OK;
}

kv_status bc_hint_write(bc_db *db, const bc_file *f, const char *ext, const kv_buf *ents,
                        uint64_t count, uint64_t data_size)
{
    size_t len = BC_HINT_HDR + ents->len;
    uint8_t *buf = malloc(len);
    if (!buf)
        return kv_error(KV_NOMEM, "bitcask: out of memory for a hint file of %zu bytes", len);
    if (ents->len)
        memcpy(buf + BC_HINT_HDR, ents->data, ents->len);
    bc_hint_seal(buf + BC_HINT_HDR, ents->len);
    bc_hint_hdr_encode(buf, f->id, f->salt, data_size, count, buf + BC_HINT_HDR, ents->len);
    char name[64];
    bc_file_name(f->id, ext, name, sizeof name);
    kv_status s;
    if (!strcmp(ext, "hint")) {
        s = kv_fs_replace_file(db->fs, db->dir, name, buf, len);
    } else {
        char *p = kv_path_join(db->dir, name);
        kv_file *hf = NULL;
        s = p ? kv_fs_open(db->fs, p, KV_FS_CREATE | KV_FS_TRUNC | KV_FS_WRITE, &hf)
              : kv_error(KV_NOMEM, "bitcask: out of memory");
        if (s == KV_OK)
            s = kv_file_pwrite(hf, buf, len, 0);
        if (s == KV_OK)
            s = kv_file_fdatasync(hf);
        kv_file_close(hf);
        free(p);
    }
    free(buf);
    return s;
}
