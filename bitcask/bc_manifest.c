/* bc_manifest.c: MANIFEST, the set of data files this database depends on (docs/design.md section
 * 6: "every file an engine depends on is named in its own metadata"), and the check of a directory
 * against it.
 *
 * MANIFEST names every data file with its salt, kind and, once sealed, its exact length, plus the
 * one active file (the one being appended to) with its durable length: the bytes of it that an
 * fdatasync had covered before that MANIFEST was written (its header when it is named; a merge's
 * commit raises it, bc_merge.c). It is replaced atomically (tmp, fdatasync, rename, directory
 * fsync) whenever that set changes: at open (the new active file), at a rotation (the old one
 * sealed, a new one active), at a merge's commit point (the replaced files out, the outputs in)
 * and at close (the active file sealed, or dropped when it holds nothing).
 * The orders that make this sound under every crash policy are in docs/bitcask.md section 4.4;
 * in short, a file is made durable (contents, then its name) before MANIFEST names it, and is
 * deleted only after a MANIFEST that no longer names it is durable.
 *
 * At open the directory is checked against MANIFEST before anything in it is changed (so that a
 * damaged or stale MANIFEST can never make the open delete a file): a missing, swapped, foreign,
 * shortened, extended or stale data file is KV_CORRUPTION naming it, never an empty or
 * rolled-back database; so is an active file shorter than its durable length (recovery also
 * refuses one whose valid records end before it, bc_recover.c). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "bc_int.h"
#include "lock_assert.h"

/* MANIFEST replaced as kv_fs_replace_file does (MANIFEST.tmp written, fdatasynced, renamed)
 * but without its directory fsync: the rename of bug=no_dir_fsync (docs/lab.md). */
static kv_status replace_without_dir_fsync(bc_db *db, const void *data, size_t len)
{
    char *tmp = kv_path_join(db->dir, BC_MANIFEST_NAME ".tmp");
    char *dst = kv_path_join(db->dir, BC_MANIFEST_NAME);
    kv_file *f = NULL;
    kv_status s = tmp && dst ? kv_fs_open(db->fs, tmp, KV_FS_CREATE | KV_FS_TRUNC | KV_FS_WRITE, &f)
                             : kv_error(KV_NOMEM, "bitcask: out of memory");
    if (s == KV_OK)
        s = kv_file_pwrite(f, data, len, 0);
    if (s == KV_OK)
        s = kv_file_fdatasync(f);
    if (f)
        kv_file_close(f);
    if (s == KV_OK)
        s = kv_fs_rename(db->fs, tmp, dst);
    free(tmp);
    free(dst);
    return s;
}

kv_status bc_man_write_locked(bc_db *db, uint64_t max_seq)
{
    KV_ASSERT_HELD(&db->man_mu);
    bc_manifest *m = &db->man;
    if (max_seq > m->max_seq)
        m->max_seq = max_seq;
    uint64_t next = atomic_load(&db->next_id);
    if (next > m->next_id)
        m->next_id = next;
    m->number++;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (!bc_manifest_encode(m, &buf, &len))
        return bc_poison(db, kv_error(KV_NOMEM, "bitcask: out of memory encoding MANIFEST"));
    kv_status s;
    if (db->bug == BC_BUG_NO_DIR_FSYNC) {
        /* BUG (docs/lab.md): MANIFEST is renamed into place without a directory fsync. The
         * correct code (kv_fs_replace_file) fsyncs the directory after the rename: only then is
         * the new MANIFEST durable, and the engine goes on as if it were (records go into the
         * data file it names), so a power loss can bring back the old MANIFEST, which does not
         * name the file holding acknowledged, synced records. */
        s = replace_without_dir_fsync(db, buf, len);
    } else {
        s = kv_fs_replace_file(db->fs, db->dir, BC_MANIFEST_NAME, buf, len);
    }
    free(buf);
    if (s != KV_OK)
        bc_poison(db, s); /* the rename may or may not have happened: never retried */
    return s;
}

/* ---- the directory against MANIFEST ---- */

static bool has_name(const kv_namelist *l, const char *name)
{
    size_t lo = 0, hi = l->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(l->names[mid], name);
        if (!c)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* NNNNNNNNNN.ext: true and *id. */
static bool parse_name(const char *name, const char *ext, uint64_t *id)
{
    size_t n = strlen(name), e = strlen(ext);
    if (n != 11 + e || name[10] != '.' || strcmp(name + 11, ext) != 0)
        return false;
    uint64_t v = 0;
    for (int i = 0; i < 10; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    *id = v;
    return true;
}

static bool in_ids(const uint64_t *ids, uint32_t n, uint64_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

static kv_status add_del(bc_plan *p, const char *name)
{
    char **n = realloc(p->del, (p->ndel + 1) * sizeof *n);
    if (!n)
        return kv_error(KV_NOMEM, "bitcask: out of memory");
    p->del = n;
    if (!(p->del[p->ndel] = strdup(name)))
        return kv_error(KV_NOMEM, "bitcask: out of memory");
    p->ndel++;
    return KV_OK;
}

/* Opens a data file MANIFEST names and checks its header and length against the entry. */
static kv_status check_named(kv_fs *fs, const char *dir, bool writable, bc_plan_file *pf)
{
    char *path = kv_path_join(dir, pf->name);
    if (!path)
        return kv_error(KV_NOMEM, "bitcask: out of memory");
    uint8_t hdr[BC_DATA_HDR];
    size_t got = 0;
    kv_status s = kv_fs_open(fs, path, writable ? KV_FS_WRITE : KV_FS_READ, &pf->f);
    if (s == KV_OK)
        s = kv_file_size(pf->f, &pf->size);
    if (s == KV_OK)
        s = kv_file_pread(pf->f, hdr, sizeof hdr, 0, &got);
    uint32_t kind = 0;
    uint64_t id = 0, salt = 0;
    const bc_man_file *m = &pf->m;
    if (s != KV_OK) {
        /* the fs's message names the call and the file */
    } else if (!bc_data_hdr_decode(hdr, got, &kind, &id, &salt)) {
        s = kv_error(KV_CORRUPTION,
                     "%s: offset 0: bad data file header (%" PRIu64 " bytes), but %s names "
                     "this file",
                     path, pf->size, BC_MANIFEST_NAME);
    } else if (id != m->id || salt != m->salt || kind != m->kind) {
        s = kv_error(KV_CORRUPTION,
                     "%s: offset 16: the header is that of file %" PRIu64 " (kind %u, salt "
                     "%016" PRIx64 "), but %s names file %" PRIu64 " (kind %u, salt %016" PRIx64
                     "): a swapped or foreign file",
                     path, id, kind, salt, BC_MANIFEST_NAME, m->id, m->kind, m->salt);
    } else if (m->state == BC_MAN_SEALED && pf->size != m->length) {
        s = kv_error(KV_CORRUPTION,
                     "%s: offset %" PRIu64 ": the file holds %" PRIu64 " bytes, but %s sealed "
                     "it at %" PRIu64 " bytes: a %s copy",
                     path, pf->size < m->length ? pf->size : m->length, pf->size, BC_MANIFEST_NAME,
                     m->length,
                     pf->size < m->length ? "shortened or older" : "extended or foreign");
    } else if (m->state == BC_MAN_ACTIVE && pf->size < m->length) {
        s = kv_error(KV_CORRUPTION,
                     "%s: offset %" PRIu64 ": the active file holds %" PRIu64 " bytes, but %s "
                     "says %" PRIu64 " bytes of it were durable: a shortened or older copy, not "
                     "a torn tail",
                     path, pf->size, pf->size, BC_MANIFEST_NAME, m->length);
    }
    free(path);
    return s;
}

/* An unnamed data file: obsolete (a merge replaced it), or a leftover that holds no record (a
 * rotation, open or close cut short by a crash); anything else means MANIFEST is stale. */
static kv_status check_unnamed(kv_fs *fs, const char *dir, bc_plan *p, const char *name,
                               uint64_t id)
{
    if (in_ids(p->man.obsolete, p->man.nobsolete, id))
        return add_del(p, name);
    char *path = kv_path_join(dir, name);
    if (!path)
        return kv_error(KV_NOMEM, "bitcask: out of memory");
    kv_file *f = NULL;
    uint64_t size = 0;
    kv_status s = kv_fs_open(fs, path, KV_FS_READ, &f);
    if (s == KV_OK)
        s = kv_file_size(f, &size);
    kv_file_close(f);
    if (s == KV_OK && size <= BC_DATA_HDR)
        s = add_del(p, name);
    else if (s == KV_OK)
        s = kv_error(KV_CORRUPTION,
                     "%s: offset %u: the file holds %" PRIu64 " bytes of records, but %s%s does "
                     "not name it (a stale or lost %s?)",
                     path, BC_DATA_HDR, size - BC_DATA_HDR, BC_MANIFEST_NAME,
                     p->have_man ? "" : " is missing and", BC_MANIFEST_NAME);
    free(path);
    return s;
}

kv_status bc_plan_make(kv_fs *fs, const char *dir, bool writable, bc_plan *p)
{
    memset(p, 0, sizeof *p);
    kv_namelist l = {0};
    kv_status s = kv_fs_list(fs, dir, &l);
    if (s != KV_OK)
        return s;
    if (has_name(&l, BC_MANIFEST_NAME)) {
        char *path = kv_path_join(dir, BC_MANIFEST_NAME);
        void *data = NULL;
        size_t len = 0;
        s = path ? kv_fs_read_file(fs, path, (uint64_t)1 << 30, &data, &len)
                 : kv_error(KV_NOMEM, "bitcask: out of memory");
        if (s == KV_OK)
            s = bc_manifest_decode(path, data, len, &p->man);
        free(data);
        free(path);
        p->have_man = s == KV_OK;
    }
    if (s == KV_OK && p->man.nfiles && !(p->files = calloc(p->man.nfiles, sizeof *p->files)))
        s = kv_error(KV_NOMEM, "bitcask: out of memory");
    /* every file MANIFEST names */
    char a[64], b[64];
    for (uint32_t i = 0; i < p->man.nfiles && s == KV_OK; i++) {
        bc_plan_file *pf = &p->files[p->nfiles++];
        pf->m = p->man.files[i];
        uint64_t id = pf->m.id;
        const char *dname = bc_file_name(id, "data", a, sizeof a);
        if (!has_name(&l, dname) && pf->m.kind == BC_KIND_MERGE &&
            has_name(&l, bc_file_name(id, "mdata", b, sizeof b)))
            dname = b; /* committed, not yet renamed */
        if (!has_name(&l, dname)) {
            s = kv_error(KV_CORRUPTION,
                         "%s/%s: %s names this %s data file (%" PRIu64 " bytes), but it is "
                         "missing",
                         dir, a, BC_MANIFEST_NAME,
                         pf->m.state == BC_MAN_ACTIVE ? "active" : "sealed", pf->m.length);
            break;
        }
        if (!(pf->name = strdup(dname)))
            s = kv_error(KV_NOMEM, "bitcask: out of memory");
        const char *hname = bc_file_name(id, "hint", a, sizeof a);
        if (!has_name(&l, hname))
            hname = has_name(&l, bc_file_name(id, "mhint", b, sizeof b)) ? b : NULL;
        if (s == KV_OK && hname && !(pf->hint = strdup(hname)))
            s = kv_error(KV_NOMEM, "bitcask: out of memory");
        if (s == KV_OK)
            s = check_named(fs, dir, writable, pf);
    }
    /* everything else */
    for (size_t i = 0; i < l.count && s == KV_OK; i++) {
        const char *n = l.names[i];
        size_t len = strlen(n);
        uint64_t id = 0;
        bool data = parse_name(n, "data", &id), mdata = !data && parse_name(n, "mdata", &id);
        bool hint = !data && !mdata && parse_name(n, "hint", &id);
        bool mhint = !data && !mdata && !hint && parse_name(n, "mhint", &id);
        if (id > p->max_id)
            p->max_id = id;
        const bc_man_file *m =
            data || mdata || hint || mhint ? bc_manifest_find(&p->man, id) : NULL;
        const bc_plan_file *pf = m ? &p->files[m - p->man.files] : NULL;
        if (len > 4 && !strcmp(n + len - 4, ".tmp"))
            s = add_del(p, n); /* an atomic replacement cut short */
        else if (data && !m)
            s = check_unnamed(fs, dir, p, n, id);
        else if ((mdata || hint || mhint) && (!pf || strcmp(n, pf->name) != 0) &&
                 (!pf || !pf->hint || strcmp(n, pf->hint) != 0))
            s = add_del(p, n); /* an uncommitted merge's output, a hint of nothing named */
    }
    kv_namelist_free(&l);
    if (s != KV_OK)
        bc_plan_free(p);
    return s;
}

/* Renames dir/from to dir/to. */
static kv_status rename_in(kv_fs *fs, const char *dir, const char *from, const char *to)
{
    char *a = kv_path_join(dir, from), *b = kv_path_join(dir, to);
    kv_status s = a && b ? kv_fs_rename(fs, a, b) : kv_error(KV_NOMEM, "bitcask: out of memory");
    free(a);
    free(b);
    return s;
}

/* The name of id with ext, replacing *name (malloc'd) when *name has another extension. */
static kv_status rename_to(kv_fs *fs, const char *dir, char **name, uint64_t id, const char *ext,
                           bool *changed)
{
    char want[64];
    bc_file_name(id, ext, want, sizeof want);
    if (!*name || !strcmp(*name, want))
        return KV_OK;
    char *copy = strdup(want);
    if (!copy)
        return kv_error(KV_NOMEM, "bitcask: out of memory");
    kv_status s = rename_in(fs, dir, *name, want);
    if (s != KV_OK) {
        free(copy);
        return s;
    }
    free(*name);
    *name = copy;
    *changed = true;
    return KV_OK;
}

kv_status bc_plan_apply(kv_fs *fs, const char *dir, bc_plan *p)
{
    kv_status s = KV_OK;
    bool changed = false;
    for (size_t i = 0; i < p->nfiles && s == KV_OK; i++) {
        bc_plan_file *pf = &p->files[i];
        char want[64];
        if (strcmp(pf->name, bc_file_name(pf->m.id, "data", want, sizeof want)) != 0) {
            /* a committed merge output: redo its rename, and reopen it under its name (the
             * handle's path is what messages name) */
            kv_file_close(pf->f);
            pf->f = NULL;
            s = rename_to(fs, dir, &pf->name, pf->m.id, "data", &changed);
            char *path = s == KV_OK ? kv_path_join(dir, pf->name) : NULL;
            if (s == KV_OK)
                s = path ? kv_fs_open(fs, path, KV_FS_WRITE, &pf->f)
                         : kv_error(KV_NOMEM, "bitcask: out of memory");
            free(path);
        }
        if (s == KV_OK)
            s = rename_to(fs, dir, &pf->hint, pf->m.id, "hint", &changed);
    }
    for (size_t i = 0; i < p->ndel && s == KV_OK; i++) {
        char *path = kv_path_join(dir, p->del[i]);
        s = path ? kv_fs_unlink(fs, path) : kv_error(KV_NOMEM, "bitcask: out of memory");
        if (s == KV_NOT_FOUND)
            s = KV_OK;
        free(path);
        changed = true;
    }
    /* Also when MANIFEST lists obsolete files that are gone already: their unlinks may not be
     * durable yet, and the next MANIFEST forgets them. */
    if (s == KV_OK && (changed || p->man.nobsolete))
        s = kv_fs_fsync_dir(fs, dir);
    return s;
}

void bc_plan_free(bc_plan *p)
{
    for (size_t i = 0; i < p->nfiles; i++) {
        if (p->files[i].f)
            kv_file_close(p->files[i].f);
        free(p->files[i].name);
        free(p->files[i].hint);
    }
    free(p->files);
    for (size_t i = 0; i < p->ndel; i++)
        free(p->del[i]);
    free(p->del);
    bc_manifest_free(&p->man);
    memset(p, 0, sizeof *p);
}
