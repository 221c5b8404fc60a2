/* The file-system layer (docs/design.md section 5).
 *
 * Every engine does all of its file I/O through a kv_fs, never through raw open/write/fsync, so
 * that the crash checker's faultfs (common/faultfs.h) can stand between the engine and the disk.
 * Two implementations exist: kv_fs_posix() (the real one) and faultfs.
 *
 * Paths are ordinary NUL-terminated strings; engines build them with kv_path_join().
 * Every call returns KV_OK or an error status with a message (kv_errmsg()) naming the call,
 * the path and errno: for example "fdatasync(/db/000001.log): Input/output error".
 * ENOSPC and EDQUOT map to KV_NOSPACE; every other errno to KV_IO.
 *
 * Threading: a kv_fs may be used from many threads. A kv_file may be read (pread) from many
 * threads at once; writes to one file (pwrite, append, truncate) must be serialized by the
 * caller. Every call updates the kv_fs's I/O counters (bytes, fsync and fdatasync calls), which
 * the engines report in kv_stats (docs/design.md section 7). */
#ifndef KVLAB_FS_H
#define KVLAB_FS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef struct kv_fs kv_fs;
typedef struct kv_file kv_file;

/* Flags for kv_fs_open(). */
enum {
    KV_FS_READ = 0,   /* read only */
    KV_FS_WRITE = 1,  /* read and write */
    KV_FS_CREATE = 2, /* create if missing (implies KV_FS_WRITE) */
    KV_FS_EXCL = 4,   /* with CREATE: fail with KV_INVALID if it exists */
    KV_FS_TRUNC = 8,  /* truncate to 0 bytes at open (implies KV_FS_WRITE) */
};

/* A list of names in a directory ("." and ".." excluded), sorted by strcmp. */
typedef struct kv_namelist {
    char **names;
    size_t count;
} kv_namelist;

/* I/O counters of one kv_fs, updated by every call (relaxed atomics). */
typedef struct kv_fs_counters {
    _Atomic uint64_t bytes_written; /* bytes passed to pwrite/append */
    _Atomic uint64_t bytes_read;    /* bytes returned by pread */
    _Atomic uint64_t fdatasyncs;    /* kv_file_fdatasync calls */
    _Atomic uint64_t fsyncs;        /* kv_file_fsync and kv_fs_fsync_dir calls */
    _Atomic uint64_t files_created; /* opens that created a file */
} kv_fs_counters;

/* The operations an implementation provides. Callers use the kv_fs_* and kv_file_* wrappers. */
typedef struct kv_fs_vtable {
    const char *name; /* "posix", "faultfs" */
    kv_status (*open)(kv_fs *fs, const char *path, int flags, kv_file **out);
    kv_status (*close)(kv_file *f);
    kv_status (*pread)(kv_file *f, void *buf, size_t n, uint64_t off, size_t *got);
    kv_status (*pwrite)(kv_file *f, const void *buf, size_t n, uint64_t off);
    kv_status (*truncate)(kv_file *f, uint64_t size);
    kv_status (*fdatasync)(kv_file *f);
    kv_status (*fsync)(kv_file *f);
    kv_status (*size)(kv_file *f, uint64_t *size);
    kv_status (*map)(kv_file *f, uint64_t len, const void **addr);
    kv_status (*unmap)(kv_file *f, const void *addr, uint64_t len);
    kv_status (*rename)(kv_fs *fs, const char *from, const char *to);
    kv_status (*unlink)(kv_fs *fs, const char *path);
    kv_status (*mkdir)(kv_fs *fs, const char *path);
    kv_status (*fsync_dir)(kv_fs *fs, const char *path);
    kv_status (*list)(kv_fs *fs, const char *dir, kv_namelist *out);
    kv_status (*exists)(kv_fs *fs, const char *path, bool *out);
    kv_status (*lock)(kv_fs *fs, const char *path, bool shared, kv_file **out);
    void (*destroy)(kv_fs *fs);
} kv_fs_vtable;

/* The common head of every kv_fs implementation. */
struct kv_fs {
    const kv_fs_vtable *vt;
    kv_fs_counters counters;
};

/* The common head of every open file. path is owned by the file (freed at close). */
struct kv_file {
    kv_fs *fs;
    char *path;
};

/* A new POSIX file system object (real files, fdatasync/fsync as the kernel offers them).
 * Returns NULL only when out of memory. Free with kv_fs_destroy(). Each handle of kv_open gets
 * its own, so that its counters are per handle. */
kv_fs *kv_fs_posix(void);

/* Frees fs (files must be closed first). NULL is allowed. */
void kv_fs_destroy(kv_fs *fs);

/* Opens or creates path with KV_FS_* flags. *out is owned by the caller; close it with
 * kv_file_close(). Errors: KV_NOT_FOUND when it does not exist and CREATE is not given,
 * KV_INVALID when EXCL and it exists, KV_IO, KV_NOSPACE. A created file is not durable in its
 * directory until kv_fs_fsync_dir() of the directory. */
kv_status kv_fs_open(kv_fs *fs, const char *path, int flags, kv_file **out);

/* Closes f and frees it (also on error). Does not sync. NULL is allowed. */
kv_status kv_file_close(kv_file *f);

/* Reads up to n bytes at byte offset off into buf; *got is the count read (short only at end of
 * file). Errors: KV_IO. */
kv_status kv_file_pread(kv_file *f, void *buf, size_t n, uint64_t off, size_t *got);

/* Reads exactly n bytes at off; a short read is KV_CORRUPTION ("truncated") naming the file. */
kv_status kv_file_read_exact(kv_file *f, void *buf, size_t n, uint64_t off);

/* Writes all n bytes at byte offset off (retrying short writes). Not durable until
 * kv_file_fdatasync(). Errors: KV_IO, KV_NOSPACE (some bytes may have been written). */
kv_status kv_file_pwrite(kv_file *f, const void *buf, size_t n, uint64_t off);

/* Sets the file size in bytes (shrinks or zero-extends). Errors: KV_IO, KV_NOSPACE. */
kv_status kv_file_truncate(kv_file *f, uint64_t size);

/* fdatasync(2): makes the file's bytes and size durable. Errors: KV_IO. A failed fdatasync must
 * never be retried: the caller poisons its handle (PostgreSQL's 2018 fsync lesson). */
kv_status kv_file_fdatasync(kv_file *f);

/* fsync(2): like fdatasync plus all inode metadata. Errors: KV_IO. */
kv_status kv_file_fsync(kv_file *f);

/* The file's current size in bytes. Errors: KV_IO. */
kv_status kv_file_size(kv_file *f, uint64_t *size);

/* Maps the first len bytes of f read-only; *addr stays valid until kv_file_unmap(). For
 * immutable files only (their bytes must not change while mapped). Errors: KV_IO, KV_NOTSUP. */
kv_status kv_file_map(kv_file *f, uint64_t len, const void **addr);
kv_status kv_file_unmap(kv_file *f, const void *addr, uint64_t len);

/* rename(2): atomically replaces `to`. Durable only after kv_fs_fsync_dir() of the directory
 * (both directories if they differ). Errors: KV_NOT_FOUND, KV_IO. */
kv_status kv_fs_rename(kv_fs *fs, const char *from, const char *to);

/* unlink(2). Durable only after kv_fs_fsync_dir(). Errors: KV_NOT_FOUND, KV_IO. */
kv_status kv_fs_unlink(kv_fs *fs, const char *path);

/* mkdir(2) with mode 0755; KV_OK if it already exists as a directory. Errors: KV_IO. */
kv_status kv_fs_mkdir(kv_fs *fs, const char *path);

/* Opens the directory and fsyncs it, making creates, renames and unlinks in it durable.
 * Errors: KV_IO. */
kv_status kv_fs_fsync_dir(kv_fs *fs, const char *path);

/* Lists the entries of dir into *out (sorted; caller frees with kv_namelist_free).
 * Errors: KV_NOT_FOUND, KV_IO. */
kv_status kv_fs_list(kv_fs *fs, const char *dir, kv_namelist *out);
void kv_namelist_free(kv_namelist *l);

/* *out = whether path exists (file or directory). Errors: KV_IO. */
kv_status kv_fs_exists(kv_fs *fs, const char *path, bool *out);

/* Creates path if missing and takes an exclusive flock(2) on it without waiting. *out holds the
 * lock until kv_file_close(). Errors: KV_BUSY when another open file description (this process
 * or another) holds it; KV_IO. */
kv_status kv_fs_lock(kv_fs *fs, const char *path, kv_file **out);

/* Opens the existing path read-only and takes a shared flock(2) on it without waiting: any number
 * of shared holders, none beside an exclusive one. Creates nothing. *out holds the lock until
 * kv_file_close(). Errors: KV_NOT_FOUND when path is missing, KV_BUSY when an exclusive lock is
 * held (this process or another), KV_IO. */
kv_status kv_fs_lock_shared(kv_fs *fs, const char *path, kv_file **out);

/* Lists dir with opendir/readdir directly (no kv_fs: the posix implementation of list, which
 * faultfs reuses). Same contract and errors as kv_fs_list. */
kv_status kv_posix_list_dir(const char *dir, kv_namelist *out);

/* Helpers built on the calls above (common/fs.c). */

/* Returns a malloc'd "dir/name" (caller frees), or NULL when out of memory. */
char *kv_path_join(const char *dir, const char *name);

/* Atomic file replacement (docs/design.md section 6): writes len bytes to "dir/name.tmp",
 * fdatasyncs it, renames it over "dir/name", fsyncs dir. After a crash either the old or the new
 * content is there, whole. Errors: KV_IO, KV_NOSPACE (the .tmp is removed on a write error). */
kv_status kv_fs_replace_file(kv_fs *fs, const char *dir, const char *name, const void *data,
                             size_t len);

/* Reads a whole file into a malloc'd buffer (*data, *len; caller frees). Errors: KV_NOT_FOUND,
 * KV_IO, KV_INVALID if larger than max_len bytes. */
kv_status kv_fs_read_file(kv_fs *fs, const char *path, uint64_t max_len, void **data, size_t *len);

#endif
