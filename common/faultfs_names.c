/* faultfs: the calls on names (rename, unlink, mkdir, fsync_dir, list, exists) and the record of
 * name operations not yet made durable by an fsync of their directory. A file a rename replaces
 * or an unlink removes is first hard-linked into the scratch directory, so that undoing the
 * operation at a crash can bring it back with its inode (and so its durable data). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "faultfs_int.h"

bool ff_parent_key(const char *path, ff_dirkey *out)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    while (n > 0 && path[n - 1] != '/')
        n--;
    while (n > 1 && path[n - 1] == '/')
        n--;
    char *dir = n == 0 ? strdup(".") : strndup(path, n);
    if (!dir)
        return false;
    struct stat st;
    int rc = stat(dir, &st);
    free(dir);
    if (rc != 0)
        return false;
    out->dev = st.st_dev;
    out->ino = st.st_ino;
    return true;
}

static bool key_eq(ff_dirkey a, ff_dirkey b)
{
    return a.dev == b.dev && a.ino == b.ino;
}

static void nameop_free(ff_nameop *op)
{
    if (op->scratch)
        unlink(op->scratch); /* gone already when a crash moved it back */
    free(op->path);
    free(op->path2);
    free(op->scratch);
    free(op);
}

kv_status ff_nameop_add(ff_fs *fs, ff_nameop *op)
{
    if (fs->nnameops == fs->capnameops) {
        size_t cap = fs->capnameops ? fs->capnameops * 2 : 16;
        ff_nameop **n = realloc(fs->nameops, cap * sizeof *n);
        if (!n) {
            nameop_free(op);
            return kv_error(KV_NOMEM, "faultfs: out of memory");
        }
        fs->nameops = n;
        fs->capnameops = cap;
    }
    fs->nameops[fs->nnameops++] = op;
    return KV_OK;
}

void ff_nameops_free(ff_fs *fs)
{
    for (size_t i = 0; i < fs->nnameops; i++)
        nameop_free(fs->nameops[i]);
    free(fs->nameops);
    fs->nameops = NULL;
    fs->nnameops = fs->capnameops = 0;
}

/* Hard-links path into the scratch directory; *out is the malloc'd link name. */
static kv_status scratch_link(ff_fs *fs, const char *path, char **out)
{
    size_t cap = strlen(fs->scratch) + 32;
    char *name = malloc(cap);
    if (!name)
        return kv_error(KV_NOMEM, "faultfs: out of memory");
    for (;;) {
        snprintf(name, cap, "%s/ff-%llu", fs->scratch, (unsigned long long)++fs->scratch_seq);
        if (link(path, name) == 0)
            break;
        if (errno != EEXIST) {
            kv_status s = kv_error(KV_IO, "faultfs: link(%s, %s): %s", path, name, strerror(errno));
            free(name);
            return s;
        }
    }
    *out = name;
    return KV_OK;
}

/* A new name operation with copies of the paths; NULL when out of memory. */
static ff_nameop *nameop_new(ff_op_kind kind, const char *path, const char *path2)
{
    ff_nameop *op = calloc(1, sizeof *op);
    if (!op)
        return NULL;
    op->kind = kind;
    op->path = strdup(path);
    op->path2 = path2 ? strdup(path2) : NULL;
    if (!op->path || (path2 && !op->path2)) {
        nameop_free(op);
        return NULL;
    }
    return op;
}

/* The body of ff_rename, mutex held. */
static kv_status rename_locked(ff_fs *fs, const char *from, const char *to)
{
    int inj;
    kv_status s = ff_gate(fs, true, -1, &inj);
    if (s != KV_OK)
        return s;
    if (inj)
        return ff_errno(inj, "rename", from);
    struct stat sf, st;
    if (lstat(from, &sf) != 0)
        return ff_errno(errno, "rename", from);
    bool has_to = lstat(to, &st) == 0;
    if (has_to && st.st_dev == sf.st_dev && st.st_ino == sf.st_ino) {
        /* two names of one inode: rename(2) does nothing, nothing to record */
        if (rename(from, to) != 0)
            return ff_errno(errno, "rename", from);
        return KV_OK;
    }
    ff_nameop *op = nameop_new(FF_RENAME, from, to);
    if (!op)
        return kv_error(KV_NOMEM, "faultfs: out of memory");
    op->ino = sf.st_ino;
    if (has_to && S_ISDIR(st.st_mode))
        op->victim_dir = true; /* rename(2) only replaces an empty directory */
    else if (has_to && (s = scratch_link(fs, to, &op->scratch)) != KV_OK) {
        nameop_free(op);
        return s;
    }
    if (rename(from, to) != 0) {
        s = ff_errno(errno, "rename", from);
        nameop_free(op);
        return s;
    }
    if (ff_parent_key(from, &op->dirs[0]))
        op->ndirs = 1;
    ff_dirkey d2;
    if (ff_parent_key(to, &d2) && !(op->ndirs && key_eq(d2, op->dirs[0])))
        op->dirs[op->ndirs++] = d2;
    return ff_nameop_add(fs, op);
}

kv_status ff_rename(kv_fs *kfs, const char *from, const char *to)
{
    ff_fs *fs = (ff_fs *)kfs;
    pthread_mutex_lock(&fs->mu);
    kv_status s = rename_locked(fs, from, to);
    pthread_mutex_unlock(&fs->mu);
    return s;
}

/* The body of ff_unlink, mutex held. */
static kv_status unlink_locked(ff_fs *fs, const char *path)
{
    int inj;
    kv_status s = ff_gate(fs, true, -1, &inj);
    if (s != KV_OK)
        return s;
    if (inj)
        return ff_errno(inj, "unlink", path);
    struct stat st;
    if (lstat(path, &st) != 0)
        return ff_errno(errno, "unlink", path);
    if (S_ISDIR(st.st_mode))
        return ff_errno(EISDIR, "unlink", path);
    ff_nameop *op = nameop_new(FF_UNLINK, path, NULL);
    if (!op)
        return kv_error(KV_NOMEM, "faultfs: out of memory");
    op->ino = st.st_ino;
    if ((s = scratch_link(fs, path, &op->scratch)) != KV_OK) {
        nameop_free(op);
        return s;
    }
    if (unlink(path) != 0) {
        s = ff_errno(errno, "unlink", path);
        nameop_free(op);
        return s;
    }
    op->ndirs = ff_parent_key(path, &op->dirs[0]) ? 1 : 0;
    return ff_nameop_add(fs, op);
}

kv_status ff_unlink(kv_fs *kfs, const char *path)
{
    ff_fs *fs = (ff_fs *)kfs;
    pthread_mutex_lock(&fs->mu);
    kv_status s = unlink_locked(fs, path);
    pthread_mutex_unlock(&fs->mu);
    return s;
}

/* The body of ff_mkdir, mutex held. */
static kv_status mkdir_locked(ff_fs *fs, const char *path)
{
    int inj;
    kv_status s = ff_gate(fs, true, -1, &inj);
    if (s != KV_OK)
        return s;
    if (inj)
        return ff_errno(inj, "mkdir", path);
    struct stat st;
    if (mkdir(path, 0755) != 0) {
        if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            return KV_OK;
        return ff_errno(errno, "mkdir", path);
    }
    if (stat(path, &st) != 0)
        return ff_errno(errno, "stat", path);
    ff_nameop *op = nameop_new(FF_MKDIR, path, NULL);
    if (!op)
        return kv_error(KV_NOMEM, "faultfs: out of memory");
    op->ino = st.st_ino;
    op->ndirs = ff_parent_key(path, &op->dirs[0]) ? 1 : 0;
    return ff_nameop_add(fs, op);
}

kv_status ff_mkdir(kv_fs *kfs, const char *path)
{
    ff_fs *fs = (ff_fs *)kfs;
    pthread_mutex_lock(&fs->mu);
    kv_status s = mkdir_locked(fs, path);
    pthread_mutex_unlock(&fs->mu);
    return s;
}

/* The body of kv_faultfs_rmdir, mutex held. */
static kv_status rmdir_locked(ff_fs *fs, const char *path)
{
    int inj;
    kv_status s = ff_gate(fs, true, -1, &inj);
    if (s != KV_OK)
        return s;
    if (inj)
        return ff_errno(inj, "rmdir", path);
    struct stat st;
    if (lstat(path, &st) != 0)
        return ff_errno(errno, "rmdir", path);
    ff_nameop *op = nameop_new(FF_RMDIR, path, NULL);
    if (!op)
        return kv_error(KV_NOMEM, "faultfs: out of memory");
    op->ino = st.st_ino;
    op->ndirs = ff_parent_key(path, &op->dirs[0]) ? 1 : 0;
    if (rmdir(path) != 0) {
        s = ff_errno(errno, "rmdir", path);
        nameop_free(op);
        return s;
    }
    return ff_nameop_add(fs, op);
}

kv_status kv_faultfs_rmdir(kv_fs *kfs, const char *path)
{
    ff_fs *fs = (ff_fs *)kfs;
    pthread_mutex_lock(&fs->mu);
    kv_status s = rmdir_locked(fs, path);
    pthread_mutex_unlock(&fs->mu);
    return s;
}

static bool op_touches(const ff_nameop *op, ff_dirkey d)
{
    for (int t = 0; t < op->ndirs; t++)
        if (key_eq(op->dirs[t], d))
            return true;
    return false;
}

/* Marks durable every operation of directory d up to index last. A rename between two
 * directories made durable commits the other directory's earlier operations too, so that what
 * survives stays a prefix in both (a journal commits in order). */
static void mark_durable(ff_fs *fs, ff_dirkey d, size_t last)
{
    for (size_t j = 0; j <= last && j < fs->nnameops; j++) {
        ff_nameop *op = fs->nameops[j];
        if (op->durable || !op_touches(op, d))
            continue;
        op->durable = true;
        for (int t = 0; t < op->ndirs; t++)
            if (!key_eq(op->dirs[t], d))
                mark_durable(fs, op->dirs[t], j);
    }
}

/* A durable unlink or rename-over whose victim has no name left but our scratch link: no crash
 * can bring it back, so its data record (and our descriptor) can go. */
static void forget_if_gone(ff_fs *fs, const ff_nameop *op)
{
    struct stat st;
    if (!op->scratch || stat(op->scratch, &st) != 0 || st.st_nlink != 1)
        return;
    ff_inode *in = ff_inode_lookup(fs, st.st_dev, st.st_ino);
    if (in)
        ff_inode_drop(fs, in);
}

/* The body of ff_fsync_dir, mutex held. */
static kv_status fsync_dir_locked(ff_fs *fs, const char *path)
{
    int inj;
    kv_status s = ff_gate(fs, true, KV_FAULT_SYNC, &inj);
    if (s != KV_OK)
        return s;
    if (inj)
        return ff_errno(inj, "fsync", path);
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return ff_errno(errno, "open", path);
    struct stat st;
    if (fstat(fd, &st) != 0 || (fs->real_sync && fsync(fd) != 0)) {
        s = ff_errno(errno, "fsync", path);
        close(fd);
        return s;
    }
    close(fd);
    if (fs->nnameops == 0)
        return KV_OK;
    mark_durable(fs, (ff_dirkey){st.st_dev, st.st_ino}, fs->nnameops - 1);
    size_t k = 0;
    for (size_t j = 0; j < fs->nnameops; j++) {
        if (fs->nameops[j]->durable) {
            forget_if_gone(fs, fs->nameops[j]);
            nameop_free(fs->nameops[j]);
        } else
            fs->nameops[k++] = fs->nameops[j];
    }
    fs->nnameops = k;
    return KV_OK;
}

kv_status ff_fsync_dir(kv_fs *kfs, const char *path)
{
    ff_fs *fs = (ff_fs *)kfs;
    pthread_mutex_lock(&fs->mu);
    kv_status s = fsync_dir_locked(fs, path);
    pthread_mutex_unlock(&fs->mu);
    return s;
}

kv_status ff_list(kv_fs *kfs, const char *dir, kv_namelist *out)
{
    ff_fs *fs = (ff_fs *)kfs;
    int inj;
    pthread_mutex_lock(&fs->mu);
    kv_status s = ff_gate(fs, false, -1, &inj);
    if (s == KV_OK)
        s = kv_posix_list_dir(dir, out);
    pthread_mutex_unlock(&fs->mu);
    return s;
}

kv_status ff_exists(kv_fs *kfs, const char *path, bool *out)
{
    ff_fs *fs = (ff_fs *)kfs;
    int inj;
    struct stat st;
    pthread_mutex_lock(&fs->mu);
    kv_status s = ff_gate(fs, false, -1, &inj);
    if (s == KV_OK) {
        if (stat(path, &st) == 0)
            *out = true;
        else if (errno == ENOENT || errno == ENOTDIR)
            *out = false;
        else
            s = ff_errno(errno, "stat", path);
    }
    pthread_mutex_unlock(&fs->mu);
    return s;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Whether path names inode ino now. */
static bool names_inode(const char *path, ino_t ino, struct stat *st)
{
    return lstat(path, st) == 0 && st->st_ino == ino;
}

/* Undoes one lost operation. Called in reverse order, so the names are as the operation left
 * them; a name that no longer refers to the operation's inode is left alone. */
static kv_status undo(const ff_nameop *op)
{
    struct stat st;
    switch (op->kind) {
    case FF_CREATE:
        if (names_inode(op->path, op->ino, &st) && unlink(op->path) != 0)
            return ff_errno(errno, "faultfs crash: unlink", op->path);
        break;
    case FF_MKDIR:
        /* the directory never reached its parent: everything in it goes with it */
        if (names_inode(op->path, op->ino, &st) && S_ISDIR(st.st_mode) &&
            nftw(op->path, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
            return ff_errno(errno, "faultfs crash: remove", op->path);
        break;
    case FF_RENAME:
        if (!names_inode(op->path2, op->ino, &st))
            break;
        if (rename(op->path2, op->path) != 0)
            return ff_errno(errno, "faultfs crash: rename", op->path2);
        if (op->scratch && rename(op->scratch, op->path2) != 0)
            return ff_errno(errno, "faultfs crash: rename", op->scratch);
        if (op->victim_dir && mkdir(op->path2, 0755) != 0)
            return ff_errno(errno, "faultfs crash: mkdir", op->path2);
        break;
    case FF_RMDIR:
        /* the directory comes back empty; undoing its earlier unlinks (later in this reverse
         * walk) brings its entries back */
        if (lstat(op->path, &st) != 0 && mkdir(op->path, 0755) != 0)
            return ff_errno(errno, "faultfs crash: mkdir", op->path);
        break;
    case FF_UNLINK: {
        ff_dirkey parent;
        if (!ff_parent_key(op->path, &parent))
            break; /* its directory was removed for good (a durable rmdir): nothing to restore */
        if (rename(op->scratch, op->path) != 0)
            return ff_errno(errno, "faultfs crash: rename", op->scratch);
        break;
    }
    }
    return KV_OK;
}

typedef struct crash_dir {
    ff_dirkey key;
    size_t count; /* pending operations touching it */
    size_t keep;  /* how many of them (a prefix) survive */
} crash_dir;

/* Index of key in dirs[0..n), appending it when missing (dirs has room for 2 per op). */
static size_t dir_slot(crash_dir *dirs, size_t *n, ff_dirkey key)
{
    for (size_t i = 0; i < *n; i++)
        if (key_eq(dirs[i].key, key))
            return i;
    dirs[*n] = (crash_dir){.key = key};
    return (*n)++;
}

kv_status ff_nameops_crash(ff_fs *fs, ff_policy *pol)
{
    size_t n = fs->nnameops;
    kv_status first = KV_OK;
    if (pol->policy == KV_CRASH_KEEP || n == 0) {
        ff_nameops_free(fs);
        return KV_OK;
    }
    crash_dir *dirs = calloc(2 * n, sizeof *dirs);
    size_t(*slot)[2] = calloc(n, sizeof *slot); /* per op and dir: directory index */
    size_t(*pos)[2] = calloc(n, sizeof *pos);   /* per op and dir: position in that directory */
    if (!dirs || !slot || !pos) {
        free(dirs);
        free(slot);
        free(pos);
        ff_nameops_free(fs);
        return kv_error(KV_NOMEM, "faultfs crash: out of memory");
    }
    size_t ndirs = 0;
    for (size_t j = 0; j < n; j++) {
        ff_nameop *op = fs->nameops[j];
        for (int t = 0; t < op->ndirs; t++) {
            slot[j][t] = dir_slot(dirs, &ndirs, op->dirs[t]);
            pos[j][t] = dirs[slot[j][t]].count++;
        }
    }
    for (size_t i = 0; i < ndirs; i++)
        dirs[i].keep = (size_t)ff_policy_names_kept(pol, dirs[i].count);
    /* An operation in two directories survives only if both keep it; shrinking one prefix may
     * cut another, so iterate until stable. */
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t j = 0; j < n; j++) {
            ff_nameop *op = fs->nameops[j];
            bool lost = false;
            for (int t = 0; t < op->ndirs; t++)
                lost |= pos[j][t] >= dirs[slot[j][t]].keep;
            op->lost = lost;
            for (int t = 0; lost && t < op->ndirs; t++) {
                if (dirs[slot[j][t]].keep > pos[j][t]) {
                    dirs[slot[j][t]].keep = pos[j][t];
                    changed = true;
                }
            }
        }
    }
    for (size_t j = n; j-- > 0;) {
        if (!fs->nameops[j]->lost)
            continue;
        kv_status s = undo(fs->nameops[j]);
        if (first == KV_OK)
            first = s;
    }
    free(dirs);
    free(slot);
    free(pos);
    ff_nameops_free(fs);
    return first;
}
