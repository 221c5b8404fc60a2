/* faultfs: the object, its control calls (operation counter, crash point, error injection,
 * policies) and the gate every call passes through. The file calls live in faultfs_file.c, the
 * name calls in faultfs_names.c, the durability record of data in faultfs_data.c and the power
 * loss in faultfs_crash.c.
 *
 * The model as implemented, where faultfs.h leaves a choice:
 *  - RANDOM decides per write call (pwrite or shrinking truncate); a sector written by several
 *    calls since the last sync follows the last of them (old content or current content, never
 *    an intermediate one). TORN decides per sector. The size is the durable or the current one.
 *  - TORN_BYTES decides per byte: each byte follows the last write call that covered it since
 *    the last sync (kept: its current content; lost: its durable content, zero past the durable
 *    size), so a byte too shows old or current content, never an intermediate one. A write is
 *    kept whole, lost whole or cut into alternately lost and kept ranges at byte boundaries
 *    (faultfs_policy.h); the size may stop at any byte between the durable and current size.
 *    The decisions themselves live in faultfs_policy.c, shared with crashfs through faultfs.
 *  - A failed fdatasync/fsync (injected or real) dooms the file's pending sectors: lost at any
 *    power loss (not at KEEP, a process crash) even if a later sync succeeds, unless written
 *    again. A failed fsync_dir leaves the directory's operations pending, as they were.
 *  - A rename between two directories is pending in both; an fsync of either makes it durable
 *    together with the earlier pending operations of the other (a journal commits in order),
 *    and at a crash it survives only if it lies in the surviving prefix of both.
 *  - set_crash_at(n) with n already passed kills the process at the next counted operation.
 *  - After the crash point every call fails, except close and unmap, which still free.
 *  - The one mutex is held during each real call, preads included (they are serialized). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "faultfs_int.h"

kv_status ff_errno(int err, const char *call, const char *path)
{
    kv_status s = (err == ENOSPC || err == EDQUOT) ? KV_NOSPACE
                  : err == ENOENT                  ? KV_NOT_FOUND
                                                   : KV_IO;
    return kv_error(s, "%s(%s): %s", call, path, strerror(err));
}

kv_status ff_dead(ff_fs *fs)
{
    return kv_error(KV_IO, "faultfs: crashed at operation %llu", (unsigned long long)fs->crash_op);
}

/* Counts one call against fault slot k; returns the errno to inject or 0. */
static int fault_hit(ff_fault *f)
{
    if (!f->armed)
        return 0;
    f->seen++;
    if (f->seen == f->n || (f->sticky && f->seen > f->n))
        return f->err;
    return 0;
}

kv_status ff_gate(ff_fs *fs, bool counted, int kind, int *inject)
{
    *inject = 0;
    if (fs->crashed)
        return ff_dead(fs);
    if (counted) {
        fs->ops++;
        if (fs->crash_at && fs->ops >= fs->crash_at) {
            fs->crashed = true;
            fs->crash_op = fs->ops;
            return ff_dead(fs);
        }
        int e = fault_hit(&fs->faults[KV_FAULT_ANY_OP]);
        if (e)
            *inject = e;
    }
    if (kind > KV_FAULT_ANY_OP && kind <= KV_FAULT_READ) {
        int e = fault_hit(&fs->faults[kind]);
        if (e)
            *inject = e;
    }
    return KV_OK;
}

static void ff_destroy(kv_fs *kfs)
{
    ff_fs *fs = (ff_fs *)kfs;
    if (!fs)
        return;
    ff_inodes_free(fs);
    ff_nameops_free(fs);
    pthread_mutex_destroy(&fs->mu);
    free(fs->scratch);
    free(fs);
}

static const kv_fs_vtable faultfs_vt = {
    .name = "faultfs",
    .open = ff_open,
    .close = ff_close,
    .pread = ff_pread,
    .pwrite = ff_pwrite,
    .truncate = ff_truncate,
    .fdatasync = ff_fdatasync,
    .fsync = ff_fsync,
    .size = ff_size,
    .map = ff_map,
    .unmap = ff_unmap,
    .rename = ff_rename,
    .unlink = ff_unlink,
    .mkdir = ff_mkdir,
    .fsync_dir = ff_fsync_dir,
    .list = ff_list,
    .exists = ff_exists,
    .lock = ff_lock,
    .destroy = ff_destroy,
};

/* mkdir -p of path (a writable copy is made). Returns 0 or -1 with errno. */
static int mkdir_p(const char *path)
{
    char *p = strdup(path);
    if (!p) {
        errno = ENOMEM;
        return -1;
    }
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            rc = -1;
            break;
        }
        *s = c;
        if (c == '\0')
            break;
    }
    int e = errno;
    free(p);
    struct stat st;
    if (rc == 0 && (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))) {
        e = ENOTDIR;
        rc = -1;
    }
    errno = e;
    return rc;
}

kv_fs *kv_faultfs_new(const char *scratch_dir)
{
    if (!scratch_dir || !*scratch_dir) {
        kv_error(KV_INVALID, "faultfs: no scratch directory");
        return NULL;
    }
    if (mkdir_p(scratch_dir) != 0) {
        ff_errno(errno, "mkdir", scratch_dir);
        return NULL;
    }
    ff_fs *fs = calloc(1, sizeof *fs);
    if (!fs || !(fs->scratch = strdup(scratch_dir))) {
        free(fs);
        kv_error(KV_NOMEM, "faultfs: out of memory");
        return NULL;
    }
    fs->base.vt = &faultfs_vt;
    fs->real_sync = true;
    pthread_mutex_init(&fs->mu, NULL);
    return &fs->base;
}

void kv_faultfs_set_real_sync(kv_fs *kfs, bool on)
{
    ff_fs *fs = (ff_fs *)kfs;
    pthread_mutex_lock(&fs->mu);
    fs->real_sync = on;
    pthread_mutex_unlock(&fs->mu);
}

uint64_t kv_faultfs_ops(kv_fs *kfs)
{
    ff_fs *fs = (ff_fs *)kfs;
    pthread_mutex_lock(&fs->mu);
    uint64_t n = fs->ops;
    pthread_mutex_unlock(&fs->mu);
    return n;
}

void kv_faultfs_set_crash_at(kv_fs *kfs, uint64_t n)
{
    ff_fs *fs = (ff_fs *)kfs;
    pthread_mutex_lock(&fs->mu);
    fs->crash_at = n;
    pthread_mutex_unlock(&fs->mu);
}

bool kv_faultfs_crashed(kv_fs *kfs)
{
    ff_fs *fs = (ff_fs *)kfs;
    pthread_mutex_lock(&fs->mu);
    bool c = fs->crashed;
    pthread_mutex_unlock(&fs->mu);
    return c;
}

void kv_faultfs_fail(kv_fs *kfs, kv_fault_kind kind, uint64_t n, int err, bool sticky)
{
    ff_fs *fs = (ff_fs *)kfs;
    if ((unsigned)kind > KV_FAULT_READ)
        return;
    pthread_mutex_lock(&fs->mu);
    fs->faults[kind] =
        (ff_fault){.armed = n > 0, .sticky = sticky, .n = n, .seen = 0, .err = err ? err : EIO};
    pthread_mutex_unlock(&fs->mu);
}

void kv_faultfs_clear_faults(kv_fs *kfs)
{
    ff_fs *fs = (ff_fs *)kfs;
    pthread_mutex_lock(&fs->mu);
    memset(fs->faults, 0, sizeof fs->faults);
    pthread_mutex_unlock(&fs->mu);
}

void kv_faultfs_mark_all_durable(kv_fs *kfs)
{
    ff_fs *fs = (ff_fs *)kfs;
    pthread_mutex_lock(&fs->mu);
    ff_inodes_free(fs);
    ff_nameops_free(fs);
    pthread_mutex_unlock(&fs->mu);
}

static const char *const policy_names[] = {"lose", "keep", "random", "torn", "torn-bytes"};
#define N_POLICIES (sizeof policy_names / sizeof *policy_names)

kv_status kv_crash_policy_parse(const char *text, kv_crash_policy *out)
{
    for (size_t i = 0; text && i < N_POLICIES; i++) {
        if (!strcmp(text, policy_names[i])) {
            *out = (kv_crash_policy)i;
            return KV_OK;
        }
    }
    return kv_error(KV_INVALID, "bad crash policy '%s' (lose, keep, random, torn or torn-bytes)",
                    text ? text : "(null)");
}

const char *kv_crash_policy_name(kv_crash_policy p)
{
    return (unsigned)p < N_POLICIES ? policy_names[p] : "unknown";
}
