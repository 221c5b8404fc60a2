/* faultfs: the durability record of file data. Per inode (dev, ino) with unsynced changes: its
 * durable size and, for every 512-byte sector changed since the last successful sync, the
 * durable bytes it held before (its pre-image) and the id of the last write call that changed
 * it. At a power loss the record is what lets us put back the old bytes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "faultfs_int.h"

static ff_inode *inode_find(ff_fs *fs, dev_t dev, ino_t ino)
{
    for (ff_inode *in = fs->inodes; in; in = in->next)
        if (in->dev == dev && in->ino == ino)
            return in;
    return NULL;
}

/* A new O_RDWR descriptor (its own open file description, so that it never shares a flock with
 * the engine's) of the file open as fd; falls back to dup() without /proc. */
static int reopen_fd(int fd, const struct stat *st)
{
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    int nfd = open(proc, O_RDWR | O_CLOEXEC);
    if (nfd >= 0) {
        struct stat st2;
        if (fstat(nfd, &st2) == 0 && st2.st_dev == st->st_dev && st2.st_ino == st->st_ino)
            return nfd;
        close(nfd);
    }
    return fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

ff_inode *ff_inode_get(ff_fs *fs, int fd, const char *path)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        ff_errno(errno, "fstat", path);
        return NULL;
    }
    ff_inode *in = inode_find(fs, st.st_dev, st.st_ino);
    if (in)
        return in;
    in = calloc(1, sizeof *in);
    if (!in || !(in->path = strdup(path))) {
        free(in);
        kv_error(KV_NOMEM, "faultfs(%s): out of memory", path);
        return NULL;
    }
    in->fd = reopen_fd(fd, &st);
    if (in->fd < 0) {
        ff_errno(errno, "faultfs reopen", path);
        free(in->path);
        free(in);
        return NULL;
    }
    in->dev = st.st_dev;
    in->ino = st.st_ino;
    in->durable_size = (uint64_t)st.st_size;
    if (fs->inodes_tail)
        fs->inodes_tail->next = in;
    else
        fs->inodes = in;
    fs->inodes_tail = in;
    return in;
}

/* The position of sector idx in in->sec, or where it would be inserted. */
static size_t sec_lower(const ff_inode *in, uint64_t idx)
{
    size_t lo = 0, hi = in->nsec;
    if (hi && in->sec[hi - 1].idx < idx)
        return hi; /* the common case: appending */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (in->sec[mid].idx < idx)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The entry of sector idx, created (with its pre-image read from the file) when missing. */
static ff_sector *sec_get(ff_inode *in, uint64_t idx)
{
    size_t i = sec_lower(in, idx);
    if (i < in->nsec && in->sec[i].idx == idx)
        return &in->sec[i];
    ff_sector s = {.idx = idx};
    uint64_t base = idx * FF_SECTOR;
    if (base < in->durable_size) {
        uint64_t left = in->durable_size - base;
        s.pre_len = left < FF_SECTOR ? (uint32_t)left : FF_SECTOR;
        if (!(s.pre = calloc(1, s.pre_len)))
            goto oom;
        size_t got = 0;
        while (got < s.pre_len) {
            ssize_t r = pread(in->fd, s.pre + got, s.pre_len - got, (off_t)(base + got));
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0) {
                ff_errno(errno, "faultfs pread", in->path);
                free(s.pre);
                return NULL;
            }
            if (r == 0)
                break; /* beyond the end: the rest stays zero */
            got += (size_t)r;
        }
    }
    if (in->nsec == in->capsec) {
        size_t cap = in->capsec ? in->capsec * 2 : 16;
        ff_sector *n = realloc(in->sec, cap * sizeof *n);
        if (!n) {
            free(s.pre);
            goto oom;
        }
        in->sec = n;
        in->capsec = cap;
    }
    memmove(&in->sec[i + 1], &in->sec[i], (in->nsec - i) * sizeof *in->sec);
    in->sec[i] = s;
    in->nsec++;
    return &in->sec[i];
oom:
    kv_error(KV_NOMEM, "faultfs(%s): out of memory", in->path);
    return NULL;
}

/* Appends the extent [off, off+len) of write wid (wid 0: bytes a failed sync doomed). */
static kv_status add_extent(ff_inode *in, uint64_t off, uint64_t len, uint64_t wid)
{
    if (in->nextent == in->capext) {
        size_t cap = in->capext ? in->capext * 2 : 16;
        ff_extent *n = realloc(in->ext, cap * sizeof *n);
        if (!n)
            return kv_error(KV_NOMEM, "faultfs(%s): out of memory", in->path);
        in->ext = n;
        in->capext = cap;
    }
    in->ext[in->nextent++] = (ff_extent){.off = off, .len = len, .wid = wid};
    return KV_OK;
}

/* Notes that sectors [first, last] change in write wid. A doomed sector written again stops
 * being doomed as a whole; its earlier bytes stay lost at byte granularity (a wid-0 extent). */
static kv_status note_range(ff_inode *in, uint64_t first, uint64_t last, uint64_t wid)
{
    for (uint64_t idx = first; idx <= last; idx++) {
        ff_sector *s = sec_get(in, idx);
        if (!s)
            return KV_IO;
        if (s->doomed && add_extent(in, idx * FF_SECTOR, FF_SECTOR, 0) != KV_OK)
            return KV_IO;
        s->wid = wid;
        s->doomed = false;
    }
    return KV_OK;
}

kv_status ff_inode_note_write(ff_inode *in, uint64_t off, uint64_t n, uint64_t wid)
{
    if (n == 0)
        return KV_OK;
    kv_status s = note_range(in, off / FF_SECTOR, (off + n - 1) / FF_SECTOR, wid);
    return s == KV_OK ? add_extent(in, off, n, wid) : s;
}

kv_status ff_inode_note_truncate(ff_inode *in, uint64_t cur, uint64_t size, uint64_t wid)
{
    /* Growing adds zeros past the old end: nothing durable changes (a lost extension is cut
     * or zero-filled at the crash anyway). Shrinking cuts durable bytes in [size, min(cur, D)):
     * sectors in [cur, D) already have entries from the shrink that made cur < D. */
    uint64_t hi = cur < in->durable_size ? cur : in->durable_size;
    if (size >= hi)
        return KV_OK;
    kv_status s = note_range(in, size / FF_SECTOR, (hi - 1) / FF_SECTOR, wid);
    return s == KV_OK ? add_extent(in, size, hi - size, wid) : s;
}

static void inode_free(ff_inode *in)
{
    for (size_t i = 0; i < in->nsec; i++)
        free(in->sec[i].pre);
    free(in->sec);
    free(in->ext);
    if (in->fd >= 0)
        close(in->fd);
    free(in->path);
    free(in);
}

void ff_inode_synced(ff_fs *fs, ff_inode *in, bool ok, uint64_t size)
{
    if (!ok) {
        /* Linux marks the pages clean after a failed writeback: these bytes will never reach
         * the disk unless written again. */
        for (size_t i = 0; i < in->nsec; i++)
            in->sec[i].doomed = true;
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < in->nsec; i++) {
        if (in->sec[i].doomed)
            in->sec[k++] = in->sec[i];
        else
            free(in->sec[i].pre);
    }
    in->nsec = k;
    in->nextent = 0; /* doomed sectors are lost whole, whatever wrote them */
    in->durable_size = size;
    if (!k)
        ff_inode_drop(fs, in);
}

void ff_inode_drop(ff_fs *fs, ff_inode *in)
{
    ff_inode **pp = &fs->inodes, *prev = NULL;
    while (*pp != in) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    *pp = in->next;
    if (fs->inodes_tail == in)
        fs->inodes_tail = prev;
    inode_free(in);
}

ff_inode *ff_inode_lookup(ff_fs *fs, dev_t dev, ino_t ino)
{
    return inode_find(fs, dev, ino);
}

void ff_inodes_free(ff_fs *fs)
{
    ff_inode *in = fs->inodes;
    while (in) {
        ff_inode *next = in->next;
        inode_free(in);
        in = next;
    }
    fs->inodes = fs->inodes_tail = NULL;
}

/* Writes the durable content of bytes [from, to) of sector s back (pre-image, zeros past it). */
static kv_status restore(ff_inode *in, const ff_sector *s, uint32_t from, uint32_t to)
{
    uint8_t buf[FF_SECTOR] = {0};
    if (s->pre_len)
        memcpy(buf, s->pre, s->pre_len);
    uint64_t base = s->idx * FF_SECTOR;
    size_t done = from;
    while (done < to) {
        ssize_t r = pwrite(in->fd, buf + done, to - done, (off_t)(base + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return ff_errno(errno, "faultfs crash: pwrite", in->path);
        done += (size_t)r;
    }
    return KV_OK;
}

/* Sets to lost (val true) or kept bits [from, to) of a sector's 512-bit map. */
static void bits_set(uint8_t *bits, uint32_t from, uint32_t to, bool val)
{
    for (uint32_t b = from; b < to; b++) {
        if (val)
            bits[b >> 3] |= (uint8_t)(1u << (b & 7));
        else
            bits[b >> 3] &= (uint8_t) ~(1u << (b & 7));
    }
}

/* Marks bytes [a, b) lost or kept in the maps of the pending sectors they lie in (doomed
 * sectors stay lost whole). */
static void paint(const ff_inode *in, uint8_t (*bits)[FF_SECTOR / 8], uint64_t a, uint64_t b,
                  bool lost)
{
    for (size_t i = sec_lower(in, a / FF_SECTOR); i < in->nsec && a < b; i++) {
        uint64_t base = in->sec[i].idx * FF_SECTOR;
        if (base >= b)
            break;
        uint64_t from = a > base ? a - base : 0;
        uint64_t to = b - base < FF_SECTOR ? b - base : FF_SECTOR;
        if (!in->sec[i].doomed)
            bits_set(bits[i], (uint32_t)from, (uint32_t)to, lost);
    }
}

/* torn-bytes: every byte follows the last write that covered it (faultfs.c); each lost run of
 * bytes below the new size goes back to its durable content. */
static kv_status inode_crash_bytes(ff_inode *in, ff_policy *pol, uint64_t size)
{
    if (in->nsec == 0)
        return KV_OK;
    uint8_t(*bits)[FF_SECTOR / 8] = calloc(in->nsec, sizeof *bits);
    if (!bits)
        return kv_error(KV_NOMEM, "faultfs crash(%s): out of memory", in->path);
    for (size_t i = 0; i < in->nsec; i++)
        if (in->sec[i].doomed)
            memset(bits[i], 0xff, sizeof bits[i]);
    for (size_t e = 0; e < in->nextent; e++) {
        const ff_extent *x = &in->ext[e];
        if (x->wid == 0) {
            paint(in, bits, x->off, x->off + x->len, true);
            continue;
        }
        ff_tear t;
        ff_policy_write_tear(pol, x->wid, x->off, x->len, &t);
        uint64_t a = x->off;
        for (int p = 0; p < t.n; p++) {
            paint(in, bits, a, t.end[p], ff_tear_piece_lost(&t, p));
            a = t.end[p];
        }
    }
    kv_status st = KV_OK;
    for (size_t i = 0; i < in->nsec && st == KV_OK; i++) {
        uint64_t base = in->sec[i].idx * FF_SECTOR;
        if (base >= size)
            break;
        uint32_t lim = size - base < FF_SECTOR ? (uint32_t)(size - base) : FF_SECTOR;
        for (uint32_t b = 0; b < lim && st == KV_OK;) {
            if (!(bits[i][b >> 3] & (1u << (b & 7)))) {
                b++;
                continue;
            }
            uint32_t e = b;
            while (e < lim && (bits[i][e >> 3] & (1u << (e & 7))))
                e++;
            st = restore(in, &in->sec[i], b, e);
            b = e;
        }
    }
    free(bits);
    return st;
}

/* Rewrites one inode to a post-crash state: the size the policy chooses, each lost sector (or,
 * for torn-bytes, each lost byte) back to its durable content, zeros past the durable size. */
static kv_status inode_crash(ff_inode *in, ff_policy *pol)
{
    struct stat st;
    if (fstat(in->fd, &st) != 0)
        return ff_errno(errno, "faultfs crash: fstat", in->path);
    uint64_t cur = (uint64_t)st.st_size;
    uint64_t size = ff_policy_size(pol, in->durable_size, cur);
    if (size != cur && ftruncate(in->fd, (off_t)size) != 0)
        return ff_errno(errno, "faultfs crash: ftruncate", in->path);
    if (pol->policy == KV_CRASH_TORN_BYTES)
        return inode_crash_bytes(in, pol, size);
    for (size_t i = 0; i < in->nsec; i++) {
        const ff_sector *s = &in->sec[i];
        uint64_t base = s->idx * FF_SECTOR;
        if (!ff_policy_sector_lost(pol, s->wid, s->doomed) || base >= size)
            continue;
        uint32_t len = size - base < FF_SECTOR ? (uint32_t)(size - base) : FF_SECTOR;
        kv_status r = restore(in, s, 0, len);
        if (r != KV_OK)
            return r;
    }
    return KV_OK;
}

kv_status ff_inodes_crash(ff_fs *fs, ff_policy *pol)
{
    kv_status first = KV_OK;
    if (pol->policy != KV_CRASH_KEEP) {
        for (ff_inode *in = fs->inodes; in; in = in->next) {
            kv_status s = inode_crash(in, pol);
            if (first == KV_OK)
                first = s;
        }
    }
    ff_inodes_free(fs);
    return first;
}
