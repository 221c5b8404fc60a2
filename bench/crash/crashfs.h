/* crashfs: faultfs's power-loss model behind FUSE, so that any program, and not only an engine
 * that does its I/O through kv_fs, can lose power (docs/design.md section 5).
 *
 * A crashfs mount passes every operation through to a backing directory on the real file
 * system, through a faultfs (common/faultfs.h) that works on the backing files. So it keeps,
 * exactly as faultfs does, what is not yet durable: per file the bytes written since its last
 * fsync/fdatasync and its size, per directory the creates, renames, unlinks, mkdirs and rmdirs
 * since its last fsync. It counts the same operations (write, truncate, create or open with
 * O_TRUNC, fsync, fdatasync, rename, unlink, mkdir, rmdir, fsync of a directory), can die at
 * operation N, and at a power loss applies the same policies with the same code
 * (faultfs_policy.c) to the backing directory. Reads see the current, not yet durable data, as
 * the page cache would; mmap works (the kernel's FUSE page cache writes dirty mapped pages back
 * through crashfs as writes, at msync, fsync or munmap).
 *
 * How the kernel's requests map onto the model (docs/durability.md, section 2):
 *  - fsync(2) and fdatasync(2) of a file arrive as one FSYNC request, with a flag that tells
 *    them apart; fsync makes the file's data and size durable, and so does fdatasync (Linux's
 *    fdatasync also writes the size when it grew: it is needed to read the data back). Neither
 *    makes the file's name durable: only an fsync of its directory does (FSYNCDIR).
 *  - The mount runs without the FUSE writeback cache: a write(2) returns only after crashfs has
 *    carried it out, so what a program was told it wrote is what crashfs recorded. A write
 *    larger than the kernel's maximum request (128 KiB) arrives as several writes, each one
 *    write call of the model.
 *  - O_CREAT of a name that exists arrives as a plain open (not counted); O_TRUNC is counted.
 *  - Locks (flock, fcntl) are kept by the kernel for the mount, which only one machine uses.
 *  - Hard and symbolic links, mknod and RENAME_EXCHANGE are not supported (ENOSYS, EINVAL):
 *    no engine here uses them. chmod, chown and utimens pass through without being part of the
 *    model (they change no data and no name). fallocate reserving space (KEEP_SIZE) is accepted
 *    and changes nothing; fallocate extending the size is a truncate; other modes EOPNOTSUPP.
 *
 * A crashfs is served by a thread of the calling process; the mounting process must not use the
 * mount itself (a child process does). Linux only; needs /dev/fuse and the right to mount (root,
 * or fusermount3). */
#ifndef KVLAB_CRASHFS_H
#define KVLAB_CRASHFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "faultfs.h"

typedef struct crashfs crashfs;

/* Whether a FUSE file system can be mounted here: kvlab was built with libfuse3 and /dev/fuse
 * (or the device $KVLAB_FUSE_DEVICE names: the tests name a missing one to see the refusal) can
 * be opened. When not, writes a one-line reason into why (cap bytes) and returns false.
 * (A mount can still fail, for example without the right to mount: crashfs_mount says so.) */
bool crashfs_available(char *why, size_t cap);

/* Mounts a crashfs at mountpoint (an existing, empty directory) over backing (an existing
 * directory). scratch is faultfs's scratch directory (faultfs.h: on the same file system as
 * backing, made if missing). Files that exist in backing before the mount count as durable.
 * *out is owned by the caller: free it with crashfs_unmount. Errors: KV_NOTSUP when FUSE is not
 * available or the mount is refused (the message says why, in one line), KV_IO. */
kv_status crashfs_mount(const char *backing, const char *mountpoint, const char *scratch,
                        crashfs **out);

/* From operation n on (n >= 1), the mount is dead: operation n is not carried out and every
 * later request (reads too) fails with EIO. 0 disarms. Then call crashfs_power_loss. */
void crashfs_set_crash_at(crashfs *c, uint64_t n);

/* Operations counted so far (the operation index above). */
uint64_t crashfs_ops(crashfs *c);

/* True once the crash point was reached or crashfs_power_loss ran. */
bool crashfs_crashed(crashfs *c);

/* A descriptor that becomes readable (poll POLLIN) when the crash point is reached; owned by c.
 * crashfs_crash_ns gives the CLOCK_MONOTONIC time of that moment, in nanoseconds (0 before). */
int crashfs_crash_fd(crashfs *c);
uint64_t crashfs_crash_ns(crashfs *c);

/* The descriptor of /dev/fuse that serves the mount: a child process forked to use the mount
 * closes it (crashfs_close_in_child) so that it never holds the connection open. */
void crashfs_close_in_child(crashfs *c);

/* Loses power now (on command, or after the crash point): every later request fails with EIO,
 * and the backing directory is rewritten to what the policy lets survive, chosen with seed
 * (kv_faultfs_crash). Stop the programs using the mount first: their later requests fail.
 * Errors: KV_IO when the backing directory refuses a repair. */
kv_status crashfs_power_loss(crashfs *c, kv_crash_policy policy, uint64_t seed);

/* Unmounts (lazily: the mount point is free at once), stops the serving thread and frees c,
 * closing files the kernel had not released. Without a power loss before it, everything
 * written stays in the backing directory, as after a clean unmount. NULL is allowed. */
void crashfs_unmount(crashfs *c);

#endif
