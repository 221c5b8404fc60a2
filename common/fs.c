/* The kv_fs wrappers (counting every call) and the helpers built on them: path joining, atomic
 * file replacement and whole-file reads (docs/design.md sections 5 and 6). */
#include "fs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNT(fs, field, n)                                                                        \
    atomic_fetch_add_explicit(&(fs)->counters.field, (n), memory_order_relaxed)

void kv_fs_destroy(kv_fs *fs)
{
    if (fs)
        fs->vt->destroy(fs);
}

kv_status kv_fs_open(kv_fs *fs, const char *path, int flags, kv_file **out)
{
    kv_status s = fs->vt->open(fs, path, flags, out);
    if (s == KV_OK && (flags & KV_FS_CREATE))
        COUNT(fs, files_created, 1);
    return s;
}

kv_status kv_file_close(kv_file *f)
{
    return f ? f->fs->vt->close(f) : KV_OK;
}

kv_status kv_file_pread(kv_file *f, void *buf, size_t n, uint64_t off, size_t *got)
{
    size_t g = 0;
    kv_status s = f->fs->vt->pread(f, buf, n, off, &g);
    COUNT(f->fs, bytes_read, g);
    if (got)
        *got = g;
    return s;
}

kv_status kv_file_read_exact(kv_file *f, void *buf, size_t n, uint64_t off)
{
    size_t got = 0;
    kv_status s = kv_file_pread(f, buf, n, off, &got);
    if (s != KV_OK)
        return s;
    if (got != n)
        return kv_error(KV_CORRUPTION,
                        "%s: truncated: wanted %zu bytes at offset %llu, file has %zu", f->path, n,
                        (unsigned long long)off, got);
    return KV_OK;
}

kv_status kv_file_pwrite(kv_file *f, const void *buf, size_t n, uint64_t off)
{
    kv_status s = f->fs->vt->pwrite(f, buf, n, off);
    if (s == KV_OK)
        COUNT(f->fs, bytes_written, n);
    return s;
}

kv_status kv_file_truncate(kv_file *f, uint64_t size)
{
    return f->fs->vt->truncate(f, size);
}

kv_status kv_file_fdatasync(kv_file *f)
{
    COUNT(f->fs, fdatasyncs, 1);
    return f->fs->vt->fdatasync(f);
}

kv_status kv_file_fsync(kv_file *f)
{
    COUNT(f->fs, fsyncs, 1);
    return f->fs->vt->fsync(f);
}

kv_status kv_file_size(kv_file *f, uint64_t *size)
{
    return f->fs->vt->size(f, size);
}

kv_status kv_file_map(kv_file *f, uint64_t len, const void **addr)
{
    return f->fs->vt->map(f, len, addr);
}

kv_status kv_file_unmap(kv_file *f, const void *addr, uint64_t len)
{
    return f->fs->vt->unmap(f, addr, len);
}

kv_status kv_fs_rename(kv_fs *fs, const char *from, const char *to)
{
    return fs->vt->rename(fs, from, to);
}

kv_status kv_fs_unlink(kv_fs *fs, const char *path)
{
    return fs->vt->unlink(fs, path);
}

kv_status kv_fs_mkdir(kv_fs *fs, const char *path)
{
    return fs->vt->mkdir(fs, path);
}

kv_status kv_fs_fsync_dir(kv_fs *fs, const char *path)
{
    COUNT(fs, fsyncs, 1);
    return fs->vt->fsync_dir(fs, path);
}

kv_status kv_fs_list(kv_fs *fs, const char *dir, kv_namelist *out)
{
    return fs->vt->list(fs, dir, out);
}

void kv_namelist_free(kv_namelist *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->count; i++)
        free(l->names[i]);
    free(l->names);
    l->names = NULL;
    l->count = 0;
}

kv_status kv_fs_exists(kv_fs *fs, const char *path, bool *out)
{
    return fs->vt->exists(fs, path, out);
}

kv_status kv_fs_lock(kv_fs *fs, const char *path, kv_file **out)
{
    return fs->vt->lock(fs, path, false, out);
}

kv_status kv_fs_lock_shared(kv_fs *fs, const char *path, kv_file **out)
{
    return fs->vt->lock(fs, path, true, out);
}

char *kv_path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p)
        return NULL;
    memcpy(p, dir, a);
    size_t i = a;
    if (a > 0 && dir[a - 1] != '/')
        p[i++] = '/';
    memcpy(p + i, name, b + 1);
    return p;
}

kv_status kv_fs_replace_file(kv_fs *fs, const char *dir, const char *name, const void *data,
                             size_t len)
{
    char tmpname[512];
    if (snprintf(tmpname, sizeof tmpname, "%s.tmp", name) >= (int)sizeof tmpname)
        return kv_error(KV_INVALID, "replace_file: name too long: %s", name);
    char *tmp = kv_path_join(dir, tmpname);
    char *dst = kv_path_join(dir, name);
    kv_status s = KV_OK;
    kv_file *f = NULL;
    if (!tmp || !dst) {
        s = kv_error(KV_NOMEM, "replace_file(%s): out of memory", name);
        goto out;
    }
    s = kv_fs_open(fs, tmp, KV_FS_CREATE | KV_FS_TRUNC | KV_FS_WRITE, &f);
    if (s != KV_OK)
        goto out;
    s = kv_file_pwrite(f, data, len, 0);
    if (s == KV_OK)
        s = kv_file_fdatasync(f);
    kv_status c = kv_file_close(f);
    if (s == KV_OK)
        s = c;
    if (s != KV_OK) {
        /* Keep the first error's message; the .tmp is garbage either way. */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", kv_errmsg());
        kv_fs_unlink(fs, tmp);
        kv_error(s, "%s", msg);
        goto out;
    }
    s = kv_fs_rename(fs, tmp, dst);
    if (s == KV_OK)
        s = kv_fs_fsync_dir(fs, dir);
out:
    free(tmp);
    free(dst);
    return s;
}

kv_status kv_fs_read_file(kv_fs *fs, const char *path, uint64_t max_len, void **data, size_t *len)
{
    kv_file *f = NULL;
    uint64_t size = 0;
    kv_status s = kv_fs_open(fs, path, KV_FS_READ, &f);
    if (s != KV_OK)
        return s;
    s = kv_file_size(f, &size);
    if (s == KV_OK && size > max_len)
        s = kv_error(KV_INVALID, "%s: %llu bytes, more than the %llu allowed", path,
                     (unsigned long long)size, (unsigned long long)max_len);
    void *buf = NULL;
    if (s == KV_OK) {
        buf = malloc(size ? size : 1);
        if (!buf)
            s = kv_error(KV_NOMEM, "%s: out of memory for %llu bytes", path,
                         (unsigned long long)size);
    }
    if (s == KV_OK)
        s = kv_file_read_exact(f, buf, size, 0);
    kv_file_close(f);
    if (s != KV_OK) {
        free(buf);
        return s;
    }
    *data = buf;
    *len = size;
    return KV_OK;
}
