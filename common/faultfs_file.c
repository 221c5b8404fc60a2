/* faultfs: the calls on files. Each takes the fs mutex, passes the gate (crash point, operation
 * counter, injected errors), notes in the durability record what a change makes non-durable,
 * then does the real POSIX call. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "faultfs_int.h"

#define FS_OF(kf) ((ff_fs *)(kf)->fs)

/* Opens path as open(2) would for KV_FS_* flags, telling whether this call created the file
 * (needed to record the create as a pending name operation). Returns fd or -1 with errno. */
static int open_tracked(const char *path, int flags, bool *created)
{
    *created = false;
    bool rw = flags & (KV_FS_WRITE | KV_FS_CREATE | KV_FS_TRUNC);
    int base = (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC;
    if (!(flags & KV_FS_CREATE))
        return open(path, base);
    for (int tries = 0; tries < 100; tries++) {
        int fd = open(path, base | O_CREAT | O_EXCL, 0644);
        if (fd >= 0) {
            *created = true;
            return fd;
        }
        if (errno != EEXIST || (flags & KV_FS_EXCL))
            return -1;
        fd = open(path, base);
        if (fd >= 0 || errno != ENOENT)
            return fd;
        /* removed in between: try creating again */
    }
    return -1;
}

/* Records the create of path (inode ino) as a pending name operation. */
static kv_status note_create(ff_fs *fs, const char *path, ino_t ino)
{
    ff_nameop *op = calloc(1, sizeof *op);
    if (!op || !(op->path = strdup(path))) {
        free(op);
        return kv_error(KV_NOMEM, "faultfs(%s): out of memory", path);
    }
    op->kind = FF_CREATE;
    op->ino = ino;
    op->ndirs = ff_parent_key(path, &op->dirs[0]) ? 1 : 0;
    return ff_nameop_add(fs, op);
}

/* Wraps an open descriptor into an ff_file linked into fs->files. */
static kv_status make_file(ff_fs *fs, const char *path, int fd, const struct stat *st,
                           kv_file **out)
{
    ff_file *f = calloc(1, sizeof *f);
    char *p = strdup(path);
    if (!f || !p) {
        free(f);
        free(p);
        close(fd);
        return kv_error(KV_NOMEM, "open(%s): out of memory", path);
    }
    f->base.fs = &fs->base;
    f->base.path = p;
    f->fd = fd;
    f->dev = st->st_dev;
    f->ino = st->st_ino;
    f->next = fs->files;
    if (fs->files)
        fs->files->prev = f;
    fs->files = f;
    *out = &f->base;
    return KV_OK;
}

/* Opens (and for lock, flocks: LOCK_EX, or LOCK_SH when shared) path; the body of ff_open and
 * ff_lock, mutex held. */
static kv_status open_locked(ff_fs *fs, const char *path, int flags, bool lock, bool shared,
                             kv_file **out)
{
    bool counted = !lock && (flags & (KV_FS_CREATE | KV_FS_TRUNC));
    int inj;
    kv_status s = ff_gate(fs, counted, -1, &inj);
    if (s != KV_OK)
        return s;
    if (inj)
        return ff_errno(inj, "open", path);
    bool created;
    int fd = open_tracked(path, flags, &created);
    if (fd < 0) {
        if (errno == EEXIST)
            return kv_error(KV_INVALID, "open(%s): exists", path);
        return ff_errno(errno, "open", path);
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        s = ff_errno(errno, "fstat", path);
        close(fd);
        return s;
    }
    if (created && (s = note_create(fs, path, st.st_ino)) != KV_OK) {
        close(fd);
        return s;
    }
    if (lock && flock(fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            return kv_error(KV_BUSY, "flock(%s): held by another handle", path);
        return ff_errno(e, "flock", path);
    }
    if ((flags & KV_FS_TRUNC) && st.st_size > 0) {
        ff_inode *in = ff_inode_get(fs, fd, path);
        s = in ? ff_inode_note_truncate(in, (uint64_t)st.st_size, 0, ++fs->write_seq) : KV_IO;
        if (s == KV_OK && ftruncate(fd, 0) != 0)
            s = ff_errno(errno, "ftruncate", path);
        if (s != KV_OK) {
            close(fd);
            return s;
        }
    }
    return make_file(fs, path, fd, &st, out);
}

kv_status ff_open(kv_fs *kfs, const char *path, int flags, kv_file **out)
{
    ff_fs *fs = (ff_fs *)kfs;
    pthread_mutex_lock(&fs->mu);
    kv_status s = open_locked(fs, path, flags, false, false, out);
    pthread_mutex_unlock(&fs->mu);
    return s;
}

kv_status ff_lock(kv_fs *kfs, const char *path, bool shared, kv_file **out)
{
    ff_fs *fs = (ff_fs *)kfs;
    pthread_mutex_lock(&fs->mu);
    kv_status s =
        open_locked(fs, path, shared ? KV_FS_READ : KV_FS_CREATE | KV_FS_WRITE, true, shared, out);
    pthread_mutex_unlock(&fs->mu);
    return s;
}

kv_status ff_close(kv_file *kf)
{
    ff_fs *fs = FS_OF(kf);
    ff_file *f = (ff_file *)kf;
    kv_status s = KV_OK;
    pthread_mutex_lock(&fs->mu);
    if (f->prev)
        f->prev->next = f->next;
    else
        fs->files = f->next;
    if (f->next)
        f->next->prev = f->prev;
    if (f->fd >= 0 && close(f->fd) != 0 && errno != EINTR)
        s = ff_errno(errno, "close", kf->path);
    pthread_mutex_unlock(&fs->mu);
    free(kf->path);
    free(f);
    return s;
}

void ff_files_kill(ff_fs *fs)
{
    for (ff_file *f = fs->files; f; f = f->next) {
        if (f->fd >= 0)
            close(f->fd);
        f->fd = -1;
    }
}

kv_status ff_pread(kv_file *kf, void *buf, size_t n, uint64_t off, size_t *got)
{
    ff_fs *fs = FS_OF(kf);
    ff_file *f = (ff_file *)kf;
    size_t done = 0;
    int inj;
    pthread_mutex_lock(&fs->mu);
    kv_status s = ff_gate(fs, false, KV_FAULT_READ, &inj);
    if (s == KV_OK && inj)
        s = ff_errno(inj, "pread", kf->path);
    while (s == KV_OK && done < n) {
        ssize_t r = pread(f->fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            s = ff_errno(errno, "pread", kf->path);
        else if (r == 0)
            break;
        else
            done += (size_t)r;
    }
    pthread_mutex_unlock(&fs->mu);
    *got = done;
    return s;
}

/* The body of ff_pwrite, mutex held. An injected ENOSPC writes about half of the bytes. */
static kv_status pwrite_locked(ff_fs *fs, ff_file *f, const void *buf, size_t n, uint64_t off)
{
    const char *path = f->base.path;
    int inj;
    kv_status s = ff_gate(fs, true, KV_FAULT_WRITE, &inj);
    if (s != KV_OK)
        return s;
    bool full = inj == ENOSPC || inj == EDQUOT;
    if (inj && !full)
        return ff_errno(inj, "pwrite", path);
    size_t todo = full ? n / 2 : n;
    if (todo > 0) {
        ff_inode *in = ff_inode_get(fs, f->fd, path);
        if (!in)
            return KV_IO;
        if ((s = ff_inode_note_write(in, off, todo, ++fs->write_seq)) != KV_OK)
            return s;
    }
    size_t done = 0;
    while (done < todo) {
        ssize_t r = pwrite(f->fd, (const char *)buf + done, todo - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return ff_errno(errno, "pwrite", path);
        done += (size_t)r;
    }
    return inj ? ff_errno(inj, "pwrite", path) : KV_OK;
}

kv_status ff_pwrite(kv_file *kf, const void *buf, size_t n, uint64_t off)
{
    ff_fs *fs = FS_OF(kf);
    pthread_mutex_lock(&fs->mu);
    kv_status s = pwrite_locked(fs, (ff_file *)kf, buf, n, off);
    pthread_mutex_unlock(&fs->mu);
    return s;
}

/* The body of ff_truncate, mutex held. */
static kv_status truncate_locked(ff_fs *fs, ff_file *f, uint64_t size)
{
    const char *path = f->base.path;
    int inj;
    kv_status s = ff_gate(fs, true, -1, &inj);
    if (s != KV_OK)
        return s;
    if (inj)
        return ff_errno(inj, "ftruncate", path);
    struct stat st;
    if (fstat(f->fd, &st) != 0)
        return ff_errno(errno, "fstat", path);
    if (size < (uint64_t)st.st_size) {
        ff_inode *in = ff_inode_get(fs, f->fd, path);
        if (!in)
            return KV_IO;
        s = ff_inode_note_truncate(in, (uint64_t)st.st_size, size, ++fs->write_seq);
        if (s != KV_OK)
            return s;
    }
    if (ftruncate(f->fd, (off_t)size) != 0)
        return ff_errno(errno, "ftruncate", path);
    return KV_OK;
}

kv_status ff_truncate(kv_file *kf, uint64_t size)
{
    ff_fs *fs = FS_OF(kf);
    pthread_mutex_lock(&fs->mu);
    kv_status s = truncate_locked(fs, (ff_file *)kf, size);
    pthread_mutex_unlock(&fs->mu);
    return s;
}

/* fdatasync or fsync: on success the file's pending sectors become durable; on failure (real or
 * injected) they are doomed, never retried into durability. */
static kv_status sync_file(kv_file *kf, bool full)
{
    ff_fs *fs = FS_OF(kf);
    ff_file *f = (ff_file *)kf;
    const char *call = full ? "fsync" : "fdatasync";
    int inj;
    pthread_mutex_lock(&fs->mu);
    kv_status s = ff_gate(fs, true, KV_FAULT_SYNC, &inj);
    if (s != KV_OK)
        goto out;
    ff_inode *in = ff_inode_lookup(fs, f->dev, f->ino);
    int e = inj;
    if (!e && fs->real_sync && (full ? fsync(f->fd) : fdatasync(f->fd)) != 0)
        e = errno;
    struct stat st;
    if (!e && fstat(f->fd, &st) != 0)
        e = errno;
    if (e) {
        if (in)
            ff_inode_synced(fs, in, false, 0);
        s = ff_errno(e, call, kf->path);
    } else if (in) {
        ff_inode_synced(fs, in, true, (uint64_t)st.st_size);
    }
out:
    pthread_mutex_unlock(&fs->mu);
    return s;
}

kv_status ff_fdatasync(kv_file *kf)
{
    return sync_file(kf, false);
}

kv_status ff_fsync(kv_file *kf)
{
    return sync_file(kf, true);
}

kv_status ff_size(kv_file *kf, uint64_t *size)
{
    ff_fs *fs = FS_OF(kf);
    int inj;
    struct stat st;
    pthread_mutex_lock(&fs->mu);
    kv_status s = ff_gate(fs, false, -1, &inj);
    if (s == KV_OK) {
        if (fstat(((ff_file *)kf)->fd, &st) != 0)
            s = ff_errno(errno, "fstat", kf->path);
        else
            *size = (uint64_t)st.st_size;
    }
    pthread_mutex_unlock(&fs->mu);
    return s;
}

kv_status kv_faultfs_fstat(kv_file *kf, struct stat *st)
{
    ff_fs *fs = FS_OF(kf);
    int inj;
    pthread_mutex_lock(&fs->mu);
    kv_status s = ff_gate(fs, false, -1, &inj);
    if (s == KV_OK && fstat(((ff_file *)kf)->fd, st) != 0)
        s = ff_errno(errno, "fstat", kf->path);
    pthread_mutex_unlock(&fs->mu);
    return s;
}

kv_status ff_map(kv_file *kf, uint64_t len, const void **addr)
{
    ff_fs *fs = FS_OF(kf);
    int inj;
    pthread_mutex_lock(&fs->mu);
    kv_status s = ff_gate(fs, false, -1, &inj);
    if (s == KV_OK && len == 0)
        s = kv_error(KV_INVALID, "mmap(%s): zero length", kf->path);
    if (s == KV_OK) {
        void *p = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, ((ff_file *)kf)->fd, 0);
        if (p == MAP_FAILED)
            s = ff_errno(errno, "mmap", kf->path);
        else
            *addr = p;
    }
    pthread_mutex_unlock(&fs->mu);
    return s;
}

/* Unmapping frees memory, so it works even after a crash (like close). */
kv_status ff_unmap(kv_file *kf, const void *addr, uint64_t len)
{
    if (munmap((void *)addr, (size_t)len) != 0)
        return ff_errno(errno, "munmap", kf->path);
    return KV_OK;
}
