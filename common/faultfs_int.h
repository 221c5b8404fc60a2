/* Internals shared by the faultfs source files (faultfs.c, faultfs_data.c, faultfs_file.c,
 * faultfs_names.c, faultfs_crash.c). Not a public header: only faultfs*.c include it.
 *
 * Every function declared here expects the fs mutex (ff_fs.mu) to be held by its caller. */
#ifndef KVLAB_FAULTFS_INT_H
#define KVLAB_FAULTFS_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "faultfs.h"
#include "faultfs_policy.h"

#define FF_SECTOR 512u

/* One sector written (or cut by a truncate) since its file's last successful sync. */
typedef struct ff_sector {
    uint64_t idx;     /* sector number: bytes [idx*512, idx*512+512) */
    uint64_t wid;     /* id of the last write call (pwrite or truncate) that changed it */
    uint8_t *pre;     /* durable content of the sector's first pre_len bytes (NULL when 0) */
    uint32_t pre_len; /* bytes of the sector below the durable size when first touched */
    bool doomed;      /* a failed sync covered it: lost at any power loss, whatever the policy */
} ff_sector;

/* One write call (pwrite, or the bytes a shrinking truncate cut) since its file's last
 * successful sync: what the byte-granular policy tears. */
typedef struct ff_extent {
    uint64_t off, len; /* bytes [off, off+len) */
    uint64_t wid;      /* its write id */
} ff_extent;

/* The durability record of one inode with unsynced data. */
typedef struct ff_inode {
    dev_t dev;
    ino_t ino;
    int fd;     /* our own O_RDWR descriptor, so repair works under any name */
    char *path; /* a name it had (for messages only) */
    uint64_t durable_size;
    ff_sector *sec; /* sorted by idx */
    size_t nsec, capsec;
    ff_extent *ext; /* in write order (ascending wid) */
    size_t nextent, capext;
    struct ff_inode *next; /* creation order */
} ff_inode;

typedef enum ff_op_kind { FF_CREATE, FF_RENAME, FF_UNLINK, FF_MKDIR, FF_RMDIR } ff_op_kind;

/* A directory's identity. */
typedef struct ff_dirkey {
    dev_t dev;
    ino_t ino;
} ff_dirkey;

/* One name operation not yet made durable by an fsync_dir. */
typedef struct ff_nameop {
    ff_op_kind kind;
    char *path;        /* created / unlinked / made path; for rename: from */
    char *path2;       /* rename: to */
    char *scratch;     /* hard link of the unlinked or replaced file, or NULL */
    bool victim_dir;   /* rename replaced an (empty) directory */
    ino_t ino;         /* inode the name refers to after the operation (before, for unlink) */
    ff_dirkey dirs[2]; /* directories whose entries changed (ndirs of them) */
    int ndirs;
    bool durable; /* marked by fsync_dir, removed right after */
    bool lost;    /* crash: chosen to be undone */
} ff_nameop;

/* One open file of the engine. */
typedef struct ff_file {
    struct kv_file base;
    int fd; /* -1 after a crash closed it */
    dev_t dev;
    ino_t ino;
    struct ff_file *prev, *next;
} ff_file;

/* An armed error injection, one per kv_fault_kind. */
typedef struct ff_fault {
    bool armed;
    bool sticky;
    uint64_t n, seen;
    int err;
} ff_fault;

typedef struct ff_fs {
    kv_fs base;
    pthread_mutex_t mu;
    char *scratch;
    uint64_t scratch_seq;
    uint64_t ops;      /* counted operations so far */
    uint64_t crash_at; /* 0: disarmed */
    uint64_t crash_op; /* the operation number the process died at */
    bool crashed;
    bool repaired;  /* kv_faultfs_crash ran */
    bool real_sync; /* carry syncs out on the real disk (default true) */
    uint64_t write_seq;
    ff_fault faults[4];
    ff_inode *inodes, *inodes_tail;
    ff_nameop **nameops; /* in order */
    size_t nnameops, capnameops;
    ff_file *files; /* open files */
} ff_fs;

/* faultfs.c */

/* Records the errno err of call on path as the kv_error message; returns its status. */
kv_status ff_errno(int err, const char *call, const char *path);
/* The gate every call passes first, kind being KV_FAULT_* or -1 for a read that is not a pread.
 * counted: whether the call is a counted operation. Returns KV_OK to proceed, or the crash
 * error; *inject is set to the errno to inject (0 for none). */
kv_status ff_gate(ff_fs *fs, bool counted, int kind, int *inject);
/* The "faultfs: crashed at operation N" error. */
kv_status ff_dead(ff_fs *fs);

/* faultfs_data.c */

/* The record of the inode open as fd (created on first use with the current size as durable
 * size; path is for messages). NULL with a message when out of memory or fstat fails. */
ff_inode *ff_inode_get(ff_fs *fs, int fd, const char *path);
/* The record of inode (dev, ino), or NULL when it has nothing unsynced. */
ff_inode *ff_inode_lookup(ff_fs *fs, dev_t dev, ino_t ino);
/* Before writing [off, off+n) of ino: saves the pre-images of sectors touched for the first time
 * since the last sync and stamps them with write id wid. Errors: KV_NOMEM (out of memory, read). */
kv_status ff_inode_note_write(ff_inode *in, uint64_t off, uint64_t n, uint64_t wid);
/* Before changing the size from cur to size: notes the durable sectors a shrink cuts. */
kv_status ff_inode_note_truncate(ff_inode *in, uint64_t cur, uint64_t size, uint64_t wid);
/* A sync of the inode succeeded (new durable size size) or failed (ok false: doom the pending
 * sectors). Frees the record when nothing is left to remember. */
void ff_inode_synced(ff_fs *fs, ff_inode *in, bool ok, uint64_t size);
/* Forgets one inode record (closing our descriptor): for a file gone for good. */
void ff_inode_drop(ff_fs *fs, ff_inode *in);
/* Frees every inode record (closing our descriptors). */
void ff_inodes_free(ff_fs *fs);
/* Crash: rewrites every tracked inode to a state the policy allows. Returns the first error. */
kv_status ff_inodes_crash(ff_fs *fs, ff_policy *pol);

/* faultfs_names.c */

/* Appends a name operation (takes ownership of op). KV_NOMEM when out of memory (op freed). */
kv_status ff_nameop_add(ff_fs *fs, ff_nameop *op);
/* The directory key of the parent of path. Returns false (errno set) if it cannot be stat'ed. */
bool ff_parent_key(const char *path, ff_dirkey *out);
/* Frees every pending name operation, removing the scratch links (they become permanent). */
void ff_nameops_free(ff_fs *fs);
/* Crash: undoes a suffix of each directory's pending operations. Returns the first error. */
kv_status ff_nameops_crash(ff_fs *fs, ff_policy *pol);
/* The vtable entries for names. */
kv_status ff_rename(kv_fs *kfs, const char *from, const char *to);
kv_status ff_unlink(kv_fs *kfs, const char *path);
kv_status ff_mkdir(kv_fs *kfs, const char *path);
kv_status ff_fsync_dir(kv_fs *kfs, const char *path);
kv_status ff_list(kv_fs *kfs, const char *dir, kv_namelist *out);
kv_status ff_exists(kv_fs *kfs, const char *path, bool *out);

/* faultfs_file.c: the vtable entries for files. */
kv_status ff_open(kv_fs *kfs, const char *path, int flags, kv_file **out);
kv_status ff_close(kv_file *kf);
kv_status ff_pread(kv_file *kf, void *buf, size_t n, uint64_t off, size_t *got);
kv_status ff_pwrite(kv_file *kf, const void *buf, size_t n, uint64_t off);
kv_status ff_truncate(kv_file *kf, uint64_t size);
kv_status ff_fdatasync(kv_file *kf);
kv_status ff_fsync(kv_file *kf);
kv_status ff_size(kv_file *kf, uint64_t *size);
kv_status ff_map(kv_file *kf, uint64_t len, const void **addr);
kv_status ff_unmap(kv_file *kf, const void *addr, uint64_t len);
kv_status ff_lock(kv_fs *kfs, const char *path, bool shared, kv_file **out);
/* Crash: closes the descriptors of every open file (releasing their flocks). */
void ff_files_kill(ff_fs *fs);

#endif
