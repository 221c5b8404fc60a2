/* pagecache.h: cachestat(2) or mincore(2) over every file of a directory. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pagecache.h"

#ifndef __NR_cachestat
#define __NR_cachestat 451 /* the same number on every architecture (Linux 6.5) */
#endif

/* include/uapi/linux/mman.h of Linux 6.5, which Debian 12's headers predate. */
struct pc_cachestat_range {
    uint64_t off, len; /* len 0: to the end of the file */
};
struct pc_cachestat {
    uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};

/* The resident pages of fd by cachestat; false with errno (ENOSYS: no such system call). */
static bool by_cachestat(int fd, uint64_t *pages)
{
    struct pc_cachestat_range r = {0, 0};
    struct pc_cachestat cs;
    memset(&cs, 0, sizeof cs);
    if (syscall(__NR_cachestat, fd, &r, &cs, 0) != 0)
        return false;
    *pages = cs.nr_cache;
    return true;
}

/* The resident pages of fd (size bytes) by mincore over a read-only mapping, in chunks of
 * 1 GiB so that the vector stays small. */
static bool by_mincore(int fd, uint64_t size, uint64_t page, uint64_t *pages)
{
    *pages = 0;
    if (size == 0)
        return true;
    const uint64_t chunk = 1ull << 30;
    unsigned char *vec = malloc(chunk / page);
    if (!vec)
        return false;
    bool ok = true;
    for (uint64_t off = 0; off < size && ok; off += chunk) {
        size_t len = (size_t)(size - off < chunk ? size - off : chunk);
        void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, (off_t)off);
        if (m == MAP_FAILED) {
            ok = false;
            break;
        }
        size_t np = (len + page - 1) / page;
        if (mincore(m, len, vec) != 0)
            ok = false;
        for (size_t i = 0; ok && i < np; i++)
            *pages += vec[i] & 1;
        int e = errno;
        munmap(m, len);
        errno = e;
    }
    free(vec);
    return ok;
}

static _Thread_local struct walk {
    pc_method how;
    uint64_t page, bytes;
    const char *used;
    int err;
} w;

static int walk_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)ftw;
    if (type != FTW_F || !S_ISREG(st->st_mode))
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOATIME);
    if (fd < 0 && errno == EPERM)
        fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) /* deleted meanwhile (an obsolete file) */
            return 0;
        w.err = errno;
        return 1;
    }
    uint64_t pages = 0, size = (uint64_t)st->st_size;
    bool ok = false;
    if (w.how != PC_MINCORE) {
        ok = by_cachestat(fd, &pages);
        if (ok)
            w.used = "cachestat";
        else if (errno == ENOSYS && w.how == PC_AUTO)
            w.how = PC_MINCORE; /* this kernel has none: every file by mincore */
    }
    if (!ok && (w.how == PC_MINCORE || (w.how == PC_AUTO && errno == EOPNOTSUPP))) {
        ok = by_mincore(fd, size, w.page, &pages);
        if (ok)
            w.used = "mincore";
    }
    int e = errno;
    close(fd);
    if (!ok) {
        w.err = e ? e : EIO;
        return 1;
    }
    uint64_t cap = (size + w.page - 1) / w.page * w.page, b = pages * w.page;
    w.bytes += b < cap ? b : cap;
    return 0;
}

bool pc_dir_resident(const char *dir, pc_method how, uint64_t *bytes, const char **used)
{
    long page = sysconf(_SC_PAGESIZE);
    w = (struct walk){how, page > 0 ? (uint64_t)page : 4096, 0, "none", 0};
    int rc = nftw(dir, walk_cb, 16, FTW_PHYS);
    *bytes = w.bytes;
    *used = w.used;
    if (rc != 0) {
        errno = w.err ? w.err : errno;
        return false;
    }
    return true;
}
