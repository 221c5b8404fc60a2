/* Counting wrappers of fsync, fdatasync, sync_file_range and msync, linked into the kvlab
 * executable only (iocount.h). The executable exports them (-rdynamic), so the production
 * peers' shared libraries (LevelDB, RocksDB, LMDB, SQLite) and libkvlab call these first; each
 * wrapper counts the call and forwards it to the next definition (libc) found with
 * dlsym(RTLD_NEXT). The counter is process-wide: kvlab bench reads it before and after a run. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

uint64_t kvlab_interposed_syncs(void);

static _Atomic uint64_t syncs;

uint64_t kvlab_interposed_syncs(void)
{
    return atomic_load_explicit(&syncs, memory_order_relaxed);
}

/* Looks the next definition of name up once; the race of two first calls is benign (both
 * store the same pointer). */
#define NEXT(type, name)                                                                           \
    static _Atomic(type) real;                                                                     \
    type fn = atomic_load_explicit(&real, memory_order_acquire);                                   \
    if (!fn) {                                                                                     \
        void *sym = dlsym(RTLD_NEXT, name);                                                        \
        fn = (type)(uintptr_t)sym;                                                                 \
        atomic_store_explicit(&real, fn, memory_order_release);                                    \
    }                                                                                              \
    atomic_fetch_add_explicit(&syncs, 1, memory_order_relaxed);                                    \
    if (!fn) {                                                                                     \
        errno = ENOSYS;                                                                            \
        return -1;                                                                                 \
    }

typedef int (*fd_fn)(int);
typedef int (*sfr_fn)(int, off_t, off_t, unsigned int);
typedef int (*msync_fn)(void *, size_t, int);

int fsync(int fd)
{
    NEXT(fd_fn, "fsync");
    return fn(fd);
}

int fdatasync(int fd)
{
    NEXT(fd_fn, "fdatasync");
    return fn(fd);
}

int sync_file_range(int fd, off_t offset, off_t nbytes, unsigned int flags)
{
    NEXT(sfr_fn, "sync_file_range");
    return fn(fd, offset, nbytes, flags);
}

int msync(void *addr, size_t length, int flags)
{
    NEXT(msync_fn, "msync");
    return fn(addr, length, flags);
}
