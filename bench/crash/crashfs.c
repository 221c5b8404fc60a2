/* crashfs (crashfs.h): the FUSE operations, each carried out on the backing directory through
 * a faultfs, on libfuse3's high-level (path) API, served by one thread. */
#include "crashfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "status.h"

#ifndef KVLAB_HAVE_FUSE

bool crashfs_available(char *why, size_t cap)
{
    snprintf(why, cap,
             "FUSE is not available: kvlab was built without libfuse3 (make deps installs "
             "libfuse3-dev and fuse3)");
    return false;
}

kv_status crashfs_mount(const char *backing, const char *mountpoint, const char *scratch,
                        crashfs **out)
{
    (void)backing, (void)mountpoint, (void)scratch;
    char why[200];
    crashfs_available(why, sizeof why);
    *out = NULL;
    return kv_error(KV_NOTSUP, "%s", why);
}

/* Without libfuse3 no crashfs can exist: the calls below are never reached with one. */
void crashfs_set_crash_at(crashfs *c, uint64_t n)
{
    (void)c, (void)n;
}
uint64_t crashfs_ops(crashfs *c)
{
    (void)c;
    return 0;
}
bool crashfs_crashed(crashfs *c)
{
    (void)c;
    return false;
}
int crashfs_crash_fd(crashfs *c)
{
    (void)c;
    return -1;
}
uint64_t crashfs_crash_ns(crashfs *c)
{
    (void)c;
    return 0;
}
void crashfs_close_in_child(crashfs *c)
{
    (void)c;
}
kv_status crashfs_power_loss(crashfs *c, kv_crash_policy policy, uint64_t seed)
{
    (void)c, (void)policy, (void)seed;
    return kv_error(KV_NOTSUP, "crashfs: built without libfuse3");
}
void crashfs_unmount(crashfs *c)
{
    (void)c;
}

#else

#define FUSE_USE_VERSION 35
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

/* One file the kernel opened: faultfs's handle, in c->files until released. */
typedef struct cfs_file {
    kv_file *kf;
    char *bpath; /* its backing path at open, for metadata calls that come without a path */
    struct cfs_file *prev, *next;
} cfs_file;

struct crashfs {
    kv_fs *ff;
    char *backing;
    char *mountpoint;
    struct fuse *fuse;
    pthread_t thread;
    bool running;
    int crash_pipe[2];
    atomic_bool crash_said;
    _Atomic uint64_t crash_ns;
    pthread_mutex_t mu; /* files */
    cfs_file *files;
    atomic_int open_handles; /* files and directories the kernel has not released yet */
};

/* libfuse's last log line (its mount errors), for a one-line message of our own. */
static char fuse_last_log[256];

static void fuse_log_sink(enum fuse_log_level level, const char *fmt, va_list ap)
{
    if (level > FUSE_LOG_ERR)
        return;
    vsnprintf(fuse_last_log, sizeof fuse_last_log, fmt, ap);
    size_t n = strlen(fuse_last_log);
    while (n && (fuse_last_log[n - 1] == '\n' || fuse_last_log[n - 1] == ' '))
        fuse_last_log[--n] = '\0';
}

bool crashfs_available(char *why, size_t cap)
{
    const char *dev = getenv("KVLAB_FUSE_DEVICE");
    if (!dev || !*dev)
        dev = "/dev/fuse";
    int fd = open(dev, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, cap, "FUSE is not available: %s: %s", dev, strerror(errno));
        return false;
    }
    close(fd);
    return true;
}

static crashfs *self(void)
{
    return fuse_get_context()->private_data;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* After every request: the first time the crash point has been reached, say so. */
static int done(crashfs *c, int rc)
{
    if (!atomic_load(&c->crash_said) && kv_faultfs_crashed(c->ff) &&
        !atomic_exchange(&c->crash_said, true)) {
        atomic_store(&c->crash_ns, now_ns());
        ssize_t w;
        do
            w = write(c->crash_pipe[1], "x", 1);
        while (w < 0 && errno == EINTR);
    }
    return rc;
}

/* -errno for a faultfs status: the names' errors were told apart before the call. */
static int err_of(kv_status s)
{
    switch (s) {
    case KV_OK:
        return 0;
    case KV_NOT_FOUND:
        return -ENOENT;
    case KV_NOSPACE:
        return -ENOSPC;
    case KV_INVALID:
        return -EEXIST; /* open with O_EXCL of a name that exists */
    case KV_BUSY:
        return -EWOULDBLOCK;
    default:
        return -EIO;
    }
}

/* The backing path of a mount path ("/a/b") into buf; false when too long. */
static bool bpath(crashfs *c, const char *path, char *buf)
{
    int n = snprintf(buf, PATH_MAX, "%s%s", c->backing, path ? path : "");
    return n > 0 && n < PATH_MAX;
}

#define BPATH(var, path)                                                                           \
    char var[PATH_MAX];                                                                            \
    if (!bpath(c, path, var))                                                                      \
    return done(c, -ENAMETOOLONG)

/* Reads (not counted) fail once the mount is dead, as faultfs's do. */
#define ALIVE()                                                                                    \
    if (kv_faultfs_crashed(c->ff))                                                                 \
    return done(c, -EIO)

static kv_file *fh(struct fuse_file_info *fi)
{
    return ((cfs_file *)(uintptr_t)fi->fh)->kf;
}

static int cfs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    crashfs *c = self();
    ALIVE();
    if (fi && fi->fh)
        return done(c, err_of(kv_faultfs_fstat(fh(fi), st)));
    if (!path)
        return done(c, -ENOENT);
    BPATH(p, path);
    return done(c, lstat(p, st) == 0 ? 0 : -errno);
}

/* A directory's handle is its backing path (readdir and fsyncdir get no path: nullpath_ok). */
static int cfs_opendir(const char *path, struct fuse_file_info *fi)
{
    crashfs *c = self();
    ALIVE();
    BPATH(p, path);
    struct stat st;
    if (lstat(p, &st) != 0)
        return done(c, -errno);
    if (!S_ISDIR(st.st_mode))
        return done(c, -ENOTDIR);
    char *dup = strdup(p);
    if (!dup)
        return done(c, -ENOMEM);
    fi->fh = (uint64_t)(uintptr_t)dup;
    atomic_fetch_add(&c->open_handles, 1);
    return done(c, 0);
}

static int cfs_releasedir(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    free((char *)(uintptr_t)fi->fh);
    atomic_fetch_sub(&self()->open_handles, 1);
    return 0;
}

static int cfs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
                       struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
    crashfs *c = self();
    (void)path, (void)off, (void)flags;
    const char *p = (const char *)(uintptr_t)fi->fh;
    kv_namelist l = {0};
    kv_status s = kv_fs_list(c->ff, p, &l);
    if (s != KV_OK)
        return done(c, err_of(s));
    fill(buf, ".", NULL, 0, 0);
    fill(buf, "..", NULL, 0, 0);
    for (size_t i = 0; i < l.count; i++)
        if (fill(buf, l.names[i], NULL, 0, 0))
            break;
    kv_namelist_free(&l);
    return done(c, 0);
}

static int cfs_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
    crashfs *c = self();
    (void)path, (void)datasync;
    return done(c, err_of(kv_fs_fsync_dir(c->ff, (const char *)(uintptr_t)fi->fh)));
}

static int cfs_mkdir(const char *path, mode_t mode)
{
    crashfs *c = self();
    (void)mode;
    ALIVE();
    BPATH(p, path);
    struct stat st;
    if (lstat(p, &st) == 0)
        return done(c, -EEXIST);
    return done(c, err_of(kv_fs_mkdir(c->ff, p)));
}

static int cfs_rmdir(const char *path)
{
    crashfs *c = self();
    ALIVE();
    BPATH(p, path);
    struct stat st;
    if (lstat(p, &st) != 0)
        return done(c, -errno);
    if (!S_ISDIR(st.st_mode))
        return done(c, -ENOTDIR);
    kv_namelist l = {0};
    if (kv_posix_list_dir(p, &l) == KV_OK && l.count) {
        kv_namelist_free(&l);
        return done(c, -ENOTEMPTY);
    }
    kv_namelist_free(&l);
    return done(c, err_of(kv_faultfs_rmdir(c->ff, p)));
}

static int cfs_unlink(const char *path)
{
    crashfs *c = self();
    ALIVE();
    BPATH(p, path);
    struct stat st;
    if (lstat(p, &st) != 0)
        return done(c, -errno);
    if (S_ISDIR(st.st_mode))
        return done(c, -EISDIR);
    return done(c, err_of(kv_fs_unlink(c->ff, p)));
}

static int cfs_rename(const char *from, const char *to, unsigned int flags)
{
    crashfs *c = self();
    ALIVE();
    BPATH(a, from);
    BPATH(b, to);
    struct stat sa, sb;
    if (flags & ~(unsigned)RENAME_NOREPLACE)
        return done(c, -EINVAL);
    if (lstat(a, &sa) != 0)
        return done(c, -errno);
    bool has_to = lstat(b, &sb) == 0;
    if (has_to && (flags & RENAME_NOREPLACE))
        return done(c, -EEXIST);
    if (has_to && S_ISDIR(sb.st_mode) != S_ISDIR(sa.st_mode))
        return done(c, S_ISDIR(sb.st_mode) ? -EISDIR : -ENOTDIR);
    return done(c, err_of(kv_fs_rename(c->ff, a, b)));
}

/* Wraps an opened faultfs file into the kernel's handle. */
static int adopt(crashfs *c, kv_file *kf, const char *bp, struct fuse_file_info *fi)
{
    cfs_file *f = calloc(1, sizeof *f);
    if (!f || !(f->bpath = strdup(bp))) {
        free(f);
        kv_file_close(kf);
        return -ENOMEM;
    }
    f->kf = kf;
    pthread_mutex_lock(&c->mu);
    f->next = c->files;
    if (c->files)
        c->files->prev = f;
    c->files = f;
    pthread_mutex_unlock(&c->mu);
    fi->fh = (uint64_t)(uintptr_t)f;
    atomic_fetch_add(&c->open_handles, 1);
    fi->direct_io = 0;
    fi->keep_cache = 0;
    return 0;
}

static int open_flags(int oflags)
{
    int fl = (oflags & O_ACCMODE) == O_RDONLY ? KV_FS_READ : KV_FS_WRITE;
    if (oflags & O_TRUNC)
        fl |= KV_FS_TRUNC;
    return fl;
}

static int cfs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    crashfs *c = self();
    (void)mode;
    ALIVE();
    BPATH(p, path);
    int fl = open_flags(fi->flags) | KV_FS_CREATE;
    if (fi->flags & O_EXCL)
        fl |= KV_FS_EXCL;
    kv_file *kf = NULL;
    kv_status s = kv_fs_open(c->ff, p, fl, &kf);
    if (s != KV_OK)
        return done(c, err_of(s));
    return done(c, adopt(c, kf, p, fi));
}

static int cfs_open(const char *path, struct fuse_file_info *fi)
{
    crashfs *c = self();
    ALIVE();
    BPATH(p, path);
    struct stat st;
    if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
        return done(c, -EISDIR);
    kv_file *kf = NULL;
    kv_status s = kv_fs_open(c->ff, p, open_flags(fi->flags), &kf);
    if (s != KV_OK)
        return done(c, err_of(s));
    return done(c, adopt(c, kf, p, fi));
}

static int cfs_read(const char *path, char *buf, size_t n, off_t off, struct fuse_file_info *fi)
{
    crashfs *c = self();
    (void)path;
    size_t got = 0;
    kv_status s = kv_file_pread(fh(fi), buf, n, (uint64_t)off, &got);
    return done(c, s == KV_OK ? (int)got : err_of(s));
}

static int cfs_write(const char *path, const char *buf, size_t n, off_t off,
                     struct fuse_file_info *fi)
{
    crashfs *c = self();
    (void)path;
    kv_status s = kv_file_pwrite(fh(fi), buf, n, (uint64_t)off);
    return done(c, s == KV_OK ? (int)n : err_of(s));
}

static int cfs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    crashfs *c = self();
    ALIVE();
    if (fi && fi->fh)
        return done(c, err_of(kv_file_truncate(fh(fi), (uint64_t)size)));
    if (!path)
        return done(c, -ENOENT);
    BPATH(p, path);
    kv_file *kf = NULL;
    kv_status s = kv_fs_open(c->ff, p, KV_FS_WRITE, &kf);
    if (s == KV_OK) {
        s = kv_file_truncate(kf, (uint64_t)size);
        kv_file_close(kf);
    }
    return done(c, err_of(s));
}

static int cfs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    crashfs *c = self();
    (void)path;
    kv_status s = datasync ? kv_file_fdatasync(fh(fi)) : kv_file_fsync(fh(fi));
    return done(c, err_of(s));
}

static int cfs_fallocate(const char *path, int mode, off_t off, off_t len,
                         struct fuse_file_info *fi)
{
    crashfs *c = self();
    (void)path;
    ALIVE();
    if (mode == FALLOC_FL_KEEP_SIZE)
        return done(c, 0); /* a reservation: no byte and no size changes */
    if (mode != 0 || !fi || !fi->fh)
        return done(c, -EOPNOTSUPP);
    uint64_t size = 0;
    kv_status s = kv_file_size(fh(fi), &size);
    if (s == KV_OK && (uint64_t)(off + len) > size)
        s = kv_file_truncate(fh(fi), (uint64_t)(off + len));
    return done(c, err_of(s));
}

static int cfs_flush(const char *path, struct fuse_file_info *fi)
{
    (void)path, (void)fi;
    return 0;
}

static int cfs_release(const char *path, struct fuse_file_info *fi)
{
    crashfs *c = self();
    (void)path;
    cfs_file *f = (cfs_file *)(uintptr_t)fi->fh;
    pthread_mutex_lock(&c->mu);
    if (f->prev)
        f->prev->next = f->next;
    else
        c->files = f->next;
    if (f->next)
        f->next->prev = f->prev;
    pthread_mutex_unlock(&c->mu);
    kv_file_close(f->kf);
    free(f->bpath);
    free(f);
    atomic_fetch_sub(&c->open_handles, 1);
    return 0;
}

static int cfs_statfs(const char *path, struct statvfs *sv)
{
    crashfs *c = self();
    (void)path;
    ALIVE();
    return done(c, statvfs(c->backing, sv) == 0 ? 0 : -errno);
}

/* The backing path of a metadata call: the path, else the one its open file had. */
static bool meta_path(crashfs *c, const char *path, struct fuse_file_info *fi, char *buf)
{
    if (path)
        return bpath(c, path, buf);
    if (!fi || !fi->fh)
        return false;
    snprintf(buf, PATH_MAX, "%s", ((cfs_file *)(uintptr_t)fi->fh)->bpath);
    return true;
}

/* Metadata outside the model: carried out on the backing file at once. */
static int cfs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    crashfs *c = self();
    char p[PATH_MAX];
    ALIVE();
    if (!meta_path(c, path, fi, p))
        return done(c, -ENOENT);
    return done(c, chmod(p, mode) == 0 ? 0 : -errno);
}

static int cfs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
    crashfs *c = self();
    char p[PATH_MAX];
    ALIVE();
    if (!meta_path(c, path, fi, p))
        return done(c, -ENOENT);
    return done(c, lchown(p, uid, gid) == 0 ? 0 : -errno);
}

static int cfs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
    crashfs *c = self();
    char p[PATH_MAX];
    ALIVE();
    if (!meta_path(c, path, fi, p))
        return done(c, -ENOENT);
    return done(c, utimensat(AT_FDCWD, p, tv, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno);
}

static void *cfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    /* Unlink for real (no .fuse_hidden renames: they would be name operations of their own);
     * requests on an open file without a name come with its handle. */
    cfg->hard_remove = 1;
    cfg->nullpath_ok = 1;
    cfg->direct_io = 0;
    cfg->kernel_cache = 0;
    /* Write-through: write(2) returns after crashfs carried it out. */
    conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
    if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
        conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
    return fuse_get_context()->private_data;
}

static const struct fuse_operations cfs_ops = {
    .getattr = cfs_getattr,
    .mkdir = cfs_mkdir,
    .unlink = cfs_unlink,
    .rmdir = cfs_rmdir,
    .rename = cfs_rename,
    .chmod = cfs_chmod,
    .chown = cfs_chown,
    .truncate = cfs_truncate,
    .open = cfs_open,
    .read = cfs_read,
    .write = cfs_write,
    .statfs = cfs_statfs,
    .flush = cfs_flush,
    .release = cfs_release,
    .fsync = cfs_fsync,
    .opendir = cfs_opendir,
    .readdir = cfs_readdir,
    .releasedir = cfs_releasedir,
    .fsyncdir = cfs_fsyncdir,
    .init = cfs_init,
    .create = cfs_create,
    .utimens = cfs_utimens,
    .fallocate = cfs_fallocate,
};

static void *serve(void *arg)
{
    crashfs *c = arg;
    fuse_loop(c->fuse);
    return NULL;
}

static void cfs_free(crashfs *c)
{
    if (c->crash_pipe[0] >= 0)
        close(c->crash_pipe[0]);
    if (c->crash_pipe[1] >= 0)
        close(c->crash_pipe[1]);
    kv_fs_destroy(c->ff);
    pthread_mutex_destroy(&c->mu);
    free(c->backing);
    free(c->mountpoint);
    free(c);
}

kv_status crashfs_mount(const char *backing, const char *mountpoint, const char *scratch,
                        crashfs **out)
{
    *out = NULL;
    char why[200];
    if (!crashfs_available(why, sizeof why))
        return kv_error(KV_NOTSUP, "%s", why);
    crashfs *c = calloc(1, sizeof *c);
    if (!c)
        return kv_error(KV_NOMEM, "crashfs: out of memory");
    c->crash_pipe[0] = c->crash_pipe[1] = -1;
    pthread_mutex_init(&c->mu, NULL);
    c->backing = realpath(backing, NULL);
    c->mountpoint = realpath(mountpoint, NULL);
    if (!c->backing || !c->mountpoint) {
        kv_status s =
            kv_error(KV_IO, "crashfs: %s: %s", !c->backing ? backing : mountpoint, strerror(errno));
        cfs_free(c);
        return s;
    }
    if (pipe2(c->crash_pipe, O_CLOEXEC) != 0) {
        kv_status s = kv_error(KV_IO, "crashfs: pipe: %s", strerror(errno));
        cfs_free(c);
        return s;
    }
    c->ff = kv_faultfs_new(scratch);
    if (!c->ff) {
        kv_status s = kv_error_wrap(KV_IO, "crashfs: faultfs");
        cfs_free(c);
        return s;
    }
    kv_faultfs_set_real_sync(c->ff, false); /* the durable record decides what survives */
    char *argv[] = {"kvlab-crashfs", "-o", "fsname=crashfs,subtype=crashfs", NULL};
    struct fuse_args args = FUSE_ARGS_INIT(3, argv);
    fuse_last_log[0] = '\0';
    fuse_set_log_func(fuse_log_sink);
    c->fuse = fuse_new(&args, &cfs_ops, sizeof cfs_ops, c);
    fuse_opt_free_args(&args);
    if (!c->fuse) {
        kv_status s = kv_error(KV_NOTSUP, "FUSE is not available: fuse_new failed: %s",
                               fuse_last_log[0] ? fuse_last_log : "(no reason given)");
        cfs_free(c);
        return s;
    }
    if (fuse_mount(c->fuse, c->mountpoint) != 0) {
        kv_status s =
            kv_error(KV_NOTSUP, "FUSE is not available: mounting at %s failed: %s", c->mountpoint,
                     fuse_last_log[0] ? fuse_last_log : "(no reason given)");
        fuse_destroy(c->fuse);
        cfs_free(c);
        return s;
    }
    if (pthread_create(&c->thread, NULL, serve, c) != 0) {
        kv_status s = kv_error(KV_IO, "crashfs: cannot start the serving thread");
        fuse_unmount(c->fuse);
        fuse_destroy(c->fuse);
        cfs_free(c);
        return s;
    }
    c->running = true;
    *out = c;
    return KV_OK;
}

void crashfs_set_crash_at(crashfs *c, uint64_t n)
{
    kv_faultfs_set_crash_at(c->ff, n);
}

uint64_t crashfs_ops(crashfs *c)
{
    return kv_faultfs_ops(c->ff);
}

bool crashfs_crashed(crashfs *c)
{
    return kv_faultfs_crashed(c->ff);
}

int crashfs_crash_fd(crashfs *c)
{
    return c->crash_pipe[0];
}

uint64_t crashfs_crash_ns(crashfs *c)
{
    return atomic_load(&c->crash_ns);
}

void crashfs_close_in_child(crashfs *c)
{
    int fd = fuse_session_fd(fuse_get_session(c->fuse));
    if (fd >= 0)
        close(fd);
}

kv_status crashfs_power_loss(crashfs *c, kv_crash_policy policy, uint64_t seed)
{
    if (!kv_faultfs_crashed(c->ff) && !atomic_exchange(&c->crash_said, true))
        atomic_store(&c->crash_ns, now_ns());
    return kv_faultfs_crash(c->ff, policy, seed);
}

void crashfs_unmount(crashfs *c)
{
    if (!c)
        return;
    if (c->running) {
        /* The kernel releases the files of a process that died a moment after it: let those
         * requests arrive (up to a second), so that nothing is left half open. */
        for (int i = 0; i < 1000 && atomic_load(&c->open_handles) > 0; i++)
            usleep(1000);
        /* A lazy unmount: with no process using the mount the kernel drops the connection at
         * once, the serving thread's read fails with ENODEV and fuse_loop returns. */
        bool done_already = false;
        if (umount2(c->mountpoint, MNT_DETACH) != 0) { /* not root: fusermount3 */
            fuse_exit(c->fuse);
            fuse_unmount(c->fuse);
            done_already = true;
        }
        pthread_join(c->thread, NULL);
        if (!done_already)
            fuse_unmount(c->fuse);
        fuse_destroy(c->fuse);
    }
    while (c->files) {
        cfs_file *f = c->files;
        c->files = f->next;
        kv_file_close(f->kf);
        free(f->bpath);
        free(f);
    }
    cfs_free(c);
}

#endif
