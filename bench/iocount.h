/* Process-level I/O accounting for the production peers, which do their own I/O and so bypass
 * kvlab's counting fs layer (docs/design.md section 7):
 *  - bytes written: the wchar (bytes passed to write-like system calls) and write_bytes (bytes
 *    the process caused to be sent to storage, page cache dirtying included) of /proc/self/io;
 *  - sync calls: fsync, fdatasync, sync_file_range and msync, counted by interposing those
 *    functions in the kvlab executable only (interpose.c, with dlsym(RTLD_NEXT)): libraries
 *    loaded by kvlab call the counting wrappers first;
 *  - disk bytes: a walk of the database directory. */
#ifndef KVLAB_BENCH_IOCOUNT_H
#define KVLAB_BENCH_IOCOUNT_H

#include <stdbool.h>
#include <stdint.h>

/* Reads wchar and write_bytes of /proc/self/io (bytes). False when it cannot be read. */
bool io_proc_read(uint64_t *wchar, uint64_t *write_bytes);

/* Reads rchar of /proc/self/io: bytes passed to read-like system calls (reads through a
 * memory map are not in it). False when it cannot be read. */
bool io_proc_rchar(uint64_t *rchar);

/* Total fsync + fdatasync + sync_file_range + msync calls of this process so far, counted by
 * the interposer; *available is false (and 0 returned) when the interposer is not linked in
 * (unit tests). */
uint64_t io_sync_calls(bool *available);

/* Bytes of the regular files under dir, recursively (per file the smaller of its size and
 * its allocated blocks x 512, so that a sparse, preallocated map such as LMDB's counts what it
 * occupies); *files receives their count. Returns false when dir cannot be walked. */
bool io_dir_bytes(const char *dir, uint64_t *bytes, uint64_t *files);

/* Removes path and everything under it. Returns false (errno set) on failure; a missing path
 * is success. */
bool io_rmtree(const char *path);

/* Creates dir and its missing parents (mode 0755). Returns false (errno set) on failure. */
bool io_mkdirs(const char *dir);

#endif
