/* faultfs: the fault-injecting twin of the posix fs layer (docs/design.md section 5).
 *
 * It works on the same real files as posix (every call is carried out on disk at once) and
 * keeps, beside them, a record of what is durable, so that kv_faultfs_crash() can turn the disk
 * into a state that a power loss could have left:
 *
 *  - data: every byte written (pwrite, truncate) to a file since that file's last
 *    fdatasync/fsync may be lost, kept, or torn at 512-byte sector granularity or (policy
 *    torn-bytes) at any byte; a lost byte goes back to its durable content, zero past the
 *    durable size; a lost extension of the file either shrinks it back or leaves zeros;
 *  - names: a create, rename, unlink, mkdir or rmdir in a directory since the last
 *    kv_fs_fsync_dir() of that directory may be undone (a rename undone brings the old target
 *    back; an unlink undone brings the file back, with its durable content). Per directory,
 *    what survives is a prefix of the pending name operations in their order (a journalled file
 *    system commits them in order).
 *
 * It also injects errors (fail the Nth operation with EIO or ENOSPC) and counts operations, so a
 * crash test can crash at operation N for every N.
 *
 * Operation index: every call that changes or syncs the file system counts as one operation,
 * numbered from 1: open with KV_FS_CREATE or KV_FS_TRUNC, pwrite, truncate, fdatasync, fsync,
 * rename, unlink, mkdir, rmdir (kv_faultfs_rmdir), fsync_dir. Reads (pread, size, list, exists,
 * map), close and lock do not count (a crash before a read is the same as a crash after the
 * previous change).
 *
 * After the crash point every call fails except kv_file_close and kv_file_unmap, which still free
 * memory; kv_faultfs_set_crash_at(n) with n already passed kills at the next counted operation.
 * A file fsync does not make the file's directory entry durable; only kv_fs_fsync_dir does. A
 * rename between two directories is pending in both: it survives a crash only if both
 * directories' surviving prefixes keep it. Bytes whose fdatasync failed are lost at any power
 * loss even after a later successful sync (unless written again); KV_CRASH_KEEP keeps them (a
 * process crash still has the page cache).
 *
 * Thread-safe (one mutex); engines' background threads may use it. */
#ifndef KVLAB_FAULTFS_H
#define KVLAB_FAULTFS_H

#include <stdint.h>

#include "fs.h"

typedef enum kv_crash_policy {
    KV_CRASH_LOSE = 0,   /* every unsynced byte and every un-fsynced name change is lost */
    KV_CRASH_KEEP,       /* everything written is kept (a process crash, not a power loss) */
    KV_CRASH_RANDOM,     /* per write since the last sync: kept or lost (seeded); names: a random
                            prefix of each directory's pending operations survives */
    KV_CRASH_TORN,       /* like RANDOM, but per 512-byte sector: old or new content, so a single
                            write can be torn */
    KV_CRASH_TORN_BYTES, /* torn at any byte (LazyFS's torn writes): per write call since the
                            last sync, kept whole, lost whole or cut at 1 to 3 byte boundaries
                            into alternately lost and kept ranges; the size is the durable one,
                            the current one or any byte count between; names as RANDOM */
} kv_crash_policy;

/* Parses "lose", "keep", "random", "torn" or "torn-bytes". Errors: KV_INVALID naming the
 * text. */
kv_status kv_crash_policy_parse(const char *text, kv_crash_policy *out);
const char *kv_crash_policy_name(kv_crash_policy p);

/* A new faultfs. scratch_dir is a directory on the same file system as the data (created if
 * missing) where faultfs keeps hard links of renamed-over and unlinked files until their
 * directory is fsynced; nothing else writes there. Returns NULL when out of memory or when
 * scratch_dir cannot be made (message in kv_errmsg()). Free with kv_fs_destroy(). Files that
 * exist before faultfs first touches them count as durable. */
kv_fs *kv_faultfs_new(const char *scratch_dir);

/* Whether fdatasync/fsync/fsync_dir are also carried out on the real disk (default true). A
 * crash sweep may turn them off: the durable record, not the disk, decides what survives
 * kv_faultfs_crash(), so skipping the real call changes no outcome and saves a disk flush per
 * sync. The operation is still counted and can still fail by injection. */
void kv_faultfs_set_real_sync(kv_fs *fs, bool on);

/* Operations counted so far (see the operation index above). */
uint64_t kv_faultfs_ops(kv_fs *fs);

/* From operation n on (n >= 1), the process is "dead": operation n is not carried out and it and
 * every later call (reads too) fail with KV_IO and message "faultfs: crashed at operation N".
 * n = 0 disarms. Then call kv_faultfs_crash() to apply the power-loss model. */
void kv_faultfs_set_crash_at(kv_fs *fs, uint64_t n);

/* True once the crash point was reached (or kv_faultfs_crash ran). */
bool kv_faultfs_crashed(kv_fs *fs);

/* Which calls an injected error hits. */
typedef enum kv_fault_kind {
    KV_FAULT_ANY_OP = 0, /* the n-th counted operation (operation index) */
    KV_FAULT_WRITE,      /* the n-th pwrite */
    KV_FAULT_SYNC,       /* the n-th fdatasync or fsync (file or directory) */
    KV_FAULT_READ,       /* the n-th pread */
} kv_fault_kind;

/* Makes the n-th call of that kind (counted from now, 1-based) fail with err, an errno: EIO (the
 * call returns KV_IO) or ENOSPC (KV_NOSPACE). A failed pwrite with ENOSPC writes a prefix of its
 * bytes (about half), as a full disk does; a failed fdatasync with EIO drops the unsynced bytes of
 * that file from the durable record for good (they were never made durable: the Linux behaviour).
 * sticky: every later call of that kind fails too, until kv_faultfs_clear_faults(). */
void kv_faultfs_fail(kv_fs *fs, kv_fault_kind kind, uint64_t n, int err, bool sticky);
void kv_faultfs_clear_faults(kv_fs *fs);

/* Simulates a power loss now: chooses, with a generator seeded by seed, what of the unsynced
 * state survives under policy, and rewrites the real files and names to exactly that state.
 * Afterwards the fs stays dead (every call fails) and the files can be reopened with posix.
 * Open kv_files of the engine may still be closed (kv_file_close frees them).
 * Errors: KV_IO when the real disk refuses a repair. */
kv_status kv_faultfs_crash(kv_fs *fs, kv_crash_policy policy, uint64_t seed);

/* rmdir(2) of an empty directory, as a name operation of its parent: undone at a crash (the
 * directory comes back, empty, before its entries' undone unlinks bring them back) unless the
 * parent was fsynced since. A counted operation. kv_fs has no rmdir (no engine removes a
 * directory); crashfs needs it for the programs it runs. Errors: KV_IO (ENOTEMPTY and others,
 * named in the message), KV_NOT_FOUND. */
kv_status kv_faultfs_rmdir(kv_fs *fs, const char *path);

/* fstat(2) of an open faultfs file (crashfs answers getattr of a file that is open but no
 * longer has a name). A read: not counted; fails once crashed. Errors: KV_IO. */
struct stat;
kv_status kv_faultfs_fstat(kv_file *f, struct stat *st);

/* Forgets all pending state as if everything had been synced (for a test's setup phase). */
void kv_faultfs_mark_all_durable(kv_fs *fs);

#endif
