/* The posix implementation of the fs layer (docs/design.md section 5): real files, fdatasync for
 * data, fsync of a directory opened O_RDONLY|O_DIRECTORY for names. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"

typedef struct posix_file {
    kv_file base;
    int fd;
} posix_file;

static kv_status errno_status(int e, const char *call, const char *path)
{
    kv_status s = (e == ENOSPC || e == EDQUOT) ? KV_NOSPACE : e == ENOENT ? KV_NOT_FOUND : KV_IO;
    return kv_error(s, "%s(%s): %s", call, path, strerror(e));
}

static kv_status p_open(kv_fs *fs, const char *path, int flags, kv_file **out)
{
    int oflags = O_CLOEXEC;
    if (flags & (KV_FS_WRITE | KV_FS_CREATE | KV_FS_TRUNC))
        oflags |= O_RDWR;
    else
        oflags |= O_RDONLY;
    if (flags & KV_FS_CREATE)
        oflags |= O_CREAT;
    if ((flags & KV_FS_EXCL) && (flags & KV_FS_CREATE))
        oflags |= O_EXCL;
    if (flags & KV_FS_TRUNC)
        oflags |= O_TRUNC;
    int fd;
    do
        fd = open(path, oflags, 0644);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        if (errno == EEXIST)
            return kv_error(KV_INVALID, "open(%s): exists", path);
        return errno_status(errno, "open", path);
    }
    posix_file *f = calloc(1, sizeof *f);
    char *p = strdup(path);
    if (!f || !p) {
        free(f);
        free(p);
        close(fd);
        return kv_error(KV_NOMEM, "open(%s): out of memory", path);
    }
    f->base.fs = fs;
    f->base.path = p;
    f->fd = fd;
    *out = &f->base;
    return KV_OK;
}

static kv_status p_close(kv_file *kf)
{
    posix_file *f = (posix_file *)kf;
    kv_status s = KV_OK;
    if (close(f->fd) != 0 && errno != EINTR)
        s = errno_status(errno, "close", kf->path);
    free(kf->path);
    free(f);
    return s;
}

static kv_status p_pread(kv_file *kf, void *buf, size_t n, uint64_t off, size_t *got)
{
    posix_file *f = (posix_file *)kf;
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(f->fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            *got = done;
            return errno_status(errno, "pread", kf->path);
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    *got = done;
    return KV_OK;
}

static kv_status p_pwrite(kv_file *kf, const void *buf, size_t n, uint64_t off)
{
    posix_file *f = (posix_file *)kf;
    size_t done = 0;
    while (done < n) {
        ssize_t r = pwrite(f->fd, (const char *)buf + done, n - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return errno_status(errno, "pwrite", kf->path);
        }
        done += (size_t)r;
    }
    return KV_OK;
}

static kv_status p_truncate(kv_file *kf, uint64_t size)
{
    posix_file *f = (posix_file *)kf;
    if (ftruncate(f->fd, (off_t)size) != 0)
        return errno_status(errno, "ftruncate", kf->path);
    return KV_OK;
}

static kv_status p_fdatasync(kv_file *kf)
{
    posix_file *f = (posix_file *)kf;
    if (fdatasync(f->fd) != 0)
        return errno_status(errno, "fdatasync", kf->path);
    return KV_OK;
}

static kv_status p_fsync(kv_file *kf)
{
    posix_file *f = (posix_file *)kf;
    if (fsync(f->fd) != 0)
        return errno_status(errno, "fsync", kf->path);
    return KV_OK;
}

static kv_status p_size(kv_file *kf, uint64_t *size)
{
    posix_file *f = (posix_file *)kf;
    struct stat st;
    if (fstat(f->fd, &st) != 0)
        return errno_status(errno, "fstat", kf->path);
    *size = (uint64_t)st.st_size;
    return KV_OK;
}

static kv_status p_map(kv_file *kf, uint64_t len, const void **addr)
{
    posix_file *f = (posix_file *)kf;
    if (len == 0)
        return kv_error(KV_INVALID, "mmap(%s): zero length", kf->path);
    void *p = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, f->fd, 0);
    if (p == MAP_FAILED)
        return errno_status(errno, "mmap", kf->path);
    *addr = p;
    return KV_OK;
}

static kv_status p_unmap(kv_file *kf, const void *addr, uint64_t len)
{
    if (munmap((void *)addr, (size_t)len) != 0)
        return errno_status(errno, "munmap", kf->path);
    return KV_OK;
}

static kv_status p_rename(kv_fs *fs, const char *from, const char *to)
{
    (void)fs;
    if (rename(from, to) != 0)
        return errno_status(errno, "rename", from);
    return KV_OK;
}

static kv_status p_unlink(kv_fs *fs, const char *path)
{
    (void)fs;
    if (unlink(path) != 0)
        return errno_status(errno, "unlink", path);
    return KV_OK;
}

static kv_status p_mkdir(kv_fs *fs, const char *path)
{
    (void)fs;
    if (mkdir(path, 0755) != 0) {
        struct stat st;
        if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            return KV_OK;
        return errno_status(errno, "mkdir", path);
    }
    return KV_OK;
}

static kv_status p_fsync_dir(kv_fs *fs, const char *path)
{
    (void)fs;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno_status(errno, "open", path);
    kv_status s = KV_OK;
    if (fsync(fd) != 0)
        s = errno_status(errno, "fsync", path);
    close(fd);
    return s;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

kv_status kv_posix_list_dir(const char *dir, kv_namelist *out)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno_status(errno, "opendir", dir);
    kv_namelist l = {0};
    size_t cap = 0;
    struct dirent *e;
    kv_status s = KV_OK;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (l.count == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char **nn = realloc(l.names, nc * sizeof *nn);
            if (!nn) {
                s = kv_error(KV_NOMEM, "readdir(%s): out of memory", dir);
                break;
            }
            l.names = nn;
            cap = nc;
        }
        if (!(l.names[l.count] = strdup(e->d_name))) {
            s = kv_error(KV_NOMEM, "readdir(%s): out of memory", dir);
            break;
        }
        l.count++;
    }
    closedir(d);
    if (s != KV_OK) {
        kv_namelist_free(&l);
        return s;
    }
    if (l.count)
        qsort(l.names, l.count, sizeof *l.names, cmp_names);
    *out = l;
    return KV_OK;
}

static kv_status p_list(kv_fs *fs, const char *dir, kv_namelist *out)
{
    (void)fs;
    return kv_posix_list_dir(dir, out);
}

static kv_status p_exists(kv_fs *fs, const char *path, bool *out)
{
    (void)fs;
    struct stat st;
    if (stat(path, &st) == 0) {
        *out = true;
        return KV_OK;
    }
    if (errno == ENOENT || errno == ENOTDIR) {
        *out = false;
        return KV_OK;
    }
    return errno_status(errno, "stat", path);
}

static kv_status p_lock(kv_fs *fs, const char *path, bool shared, kv_file **out)
{
    kv_file *kf;
    kv_status s = p_open(fs, path, shared ? KV_FS_READ : KV_FS_CREATE | KV_FS_WRITE, &kf);
    if (s != KV_OK)
        return s;
    posix_file *f = (posix_file *)kf;
    if (flock(f->fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
        int e = errno;
        p_close(kf);
        if (e == EWOULDBLOCK)
            return kv_error(KV_BUSY, "flock(%s): held by another handle", path);
        return errno_status(e, "flock", path);
    }
    *out = kf;
    return KV_OK;
}

static void p_destroy(kv_fs *fs)
{
    free(fs);
}

static const kv_fs_vtable posix_vt = {
    .name = "posix",
    .open = p_open,
    .close = p_close,
    .pread = p_pread,
    .pwrite = p_pwrite,
    .truncate = p_truncate,
    .fdatasync = p_fdatasync,
    .fsync = p_fsync,
    .size = p_size,
    .map = p_map,
    .unmap = p_unmap,
    .rename = p_rename,
    .unlink = p_unlink,
    .mkdir = p_mkdir,
    .fsync_dir = p_fsync_dir,
    .list = p_list,
    .exists = p_exists,
    .lock = p_lock,
    .destroy = p_destroy,
};

kv_fs *kv_fs_posix(void)
{
    kv_fs *fs = calloc(1, sizeof *fs);
    if (fs)
        fs->vt = &posix_vt;
    return fs;
}
