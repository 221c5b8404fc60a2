/* machine.h: /proc, uname, statfs and an fdatasync probe. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "machine.h"

#ifndef KVLAB_SOURCE_DIR
#define KVLAB_SOURCE_DIR "."
#endif

static void cpu_model(char *buf, size_t cap)
{
    snprintf(buf, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (c) {
                c++;
                while (*c == ' ' || *c == '\t')
                    c++;
                c[strcspn(c, "\n")] = '\0';
                snprintf(buf, cap, "%s", c);
                break;
            }
        }
    }
    fclose(f);
}

static const char *fs_name(unsigned long type)
{
    switch (type) {
    case EXT4_SUPER_MAGIC:
        return "ext2/3/4";
    case XFS_SUPER_MAGIC:
        return "xfs";
    case BTRFS_SUPER_MAGIC:
        return "btrfs";
    case TMPFS_MAGIC:
        return "tmpfs";
    case RAMFS_MAGIC:
        return "ramfs";
    case OVERLAYFS_SUPER_MAGIC:
        return "overlayfs";
    case NFS_SUPER_MAGIC:
        return "nfs";
    case F2FS_SUPER_MAGIC:
        return "f2fs";
    case FUSE_SUPER_MAGIC:
        return "fuse";
    case V9FS_MAGIC:
        return "9p";
    case 0x2FC12FC1:
        return "zfs";
    default:
        return NULL;
    }
}

/* The mount containing dir: the longest mount point that prefixes its real path. */
static void mount_of(const char *dir, char *out, size_t cap, char *type, size_t tcap)
{
    char real[4096];
    snprintf(out, cap, "unknown");
    if (!realpath(dir, real))
        return;
    FILE *f = fopen("/proc/self/mounts", "r");
    if (!f)
        return;
    char src[1024], mnt[1024], fst[64];
    size_t best = 0;
    while (fscanf(f, "%1023s %1023s %63s %*[^\n]", src, mnt, fst) == 3) {
        size_t n = strlen(mnt);
        bool prefix = !strncmp(real, mnt, n) && (real[n] == '/' || real[n] == '\0' || n == 1);
        if (prefix && n >= best) {
            best = n;
            snprintf(out, cap, "%.120s on %.120s", src, mnt);
            snprintf(type, tcap, "%s", fst);
        }
    }
    fclose(f);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Times n rounds of a 4 KiB pwrite at the next 4 KiB offset (the file grows, as a log does)
 * and an fdatasync, on a scratch file in dir removed afterwards. Returns how many rounds
 * completed, their latencies in lat (ns), and on failure the reason in err (cap bytes). */
static unsigned probe_rounds(const char *dir, unsigned n, uint64_t *lat, char *err, size_t cap)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/fdatasync-probe.tmp", dir);
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, cap, "open(%.180s): %.40s", path, strerror(errno));
        return 0;
    }
    char block[4096];
    memset(block, 0xa5, sizeof block);
    unsigned done = 0;
    for (unsigned i = 0; i < n; i++) {
        uint64_t t0 = now_ns();
        if (pwrite(fd, block, sizeof block, (off_t)i * 4096) != (ssize_t)sizeof block ||
            fdatasync(fd) != 0) {
            snprintf(err, cap, "pwrite/fdatasync(%.180s): %.40s", path, strerror(errno));
            break;
        }
        lat[done++] = now_ns() - t0;
    }
    close(fd);
    unlink(path);
    return done;
}

static double mean_us(const uint64_t *lat, unsigned n)
{
    double sum = 0;
    for (unsigned i = 0; i < n; i++)
        sum += (double)lat[i];
    return sum / n / 1000.0;
}

static void probe(machine_info *m, const char *dir, unsigned n)
{
    uint64_t *lat = calloc(n, sizeof *lat);
    if (!lat) {
        snprintf(m->probe_error, sizeof m->probe_error, "out of memory");
        return;
    }
    unsigned done = probe_rounds(dir, n, lat, m->probe_error, sizeof m->probe_error);
    if (done) {
        qsort(lat, done, sizeof *lat, cmp_u64);
        m->probes = done;
        m->fdatasync_p50_us = (double)lat[(done - 1) / 2] / 1000.0;
        m->fdatasync_p99_us = (double)lat[(size_t)((done - 1) * 0.99)] / 1000.0;
        m->fdatasync_max_us = (double)lat[done - 1] / 1000.0;
        m->fdatasync_mean_us = mean_us(lat, done);
    }
    free(lat);
}

double machine_probe_mean_us(const char *dir, unsigned n)
{
    uint64_t *lat = n ? calloc(n, sizeof *lat) : NULL;
    char err[256];
    unsigned done = lat ? probe_rounds(dir, n, lat, err, sizeof err) : 0;
    double mean = done == n && n ? mean_us(lat, done) : NAN;
    free(lat);
    return mean;
}

void machine_describe(machine_info *m, const char *dir, unsigned n)
{
    memset(m, 0, sizeof *m);
    cpu_model(m->cpu, sizeof m->cpu);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    m->cores = cores > 0 ? (unsigned)cores : 0;
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    m->mem_bytes = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : 0;
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(m->kernel, sizeof m->kernel, "%.30s %.80s %.30s", u.sysname, u.release, u.machine);
    char mtype[64] = "";
    mount_of(dir, m->fs_source, sizeof m->fs_source, mtype, sizeof mtype);
    struct statfs sf;
    if (statfs(dir, &sf) == 0) {
        const char *name = fs_name((unsigned long)sf.f_type);
        if (name && !strcmp(name, "ext2/3/4") && mtype[0])
            name = mtype;
        if (name)
            snprintf(m->fs_type, sizeof m->fs_type, "%.31s", name);
        else
            snprintf(m->fs_type, sizeof m->fs_type, "0x%lx", (unsigned long)sf.f_type);
        m->fs_in_memory = sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC;
    } else {
        snprintf(m->fs_type, sizeof m->fs_type, "unknown");
    }
    snprintf(m->compiler, sizeof m->compiler, "%s", __VERSION__);
#ifdef KVLAB_SANITIZE
    snprintf(m->allocator, sizeof m->allocator, "system (sanitizer build)");
#else
    snprintf(m->allocator, sizeof m->allocator, "jemalloc");
#endif
    m->clock_read_ns = bench_clock_read_ns();
    if (n)
        probe(m, dir, n);
}

void machine_git_commit(char *buf, size_t cap)
{
    snprintf(buf, cap, "unknown");
    FILE *p = popen("git -C '" KVLAB_SOURCE_DIR "' rev-parse HEAD 2>/dev/null", "r");
    if (!p)
        return;
    char line[128] = "";
    bool ok = fgets(line, sizeof line, p) != NULL;
    if (pclose(p) != 0 || !ok)
        return;
    line[strcspn(line, "\n")] = '\0';
    p = popen("git -C '" KVLAB_SOURCE_DIR "' status --porcelain --untracked-files=no "
              "2>/dev/null",
              "r");
    bool dirty = false;
    if (p) {
        char l2[64];
        dirty = fgets(l2, sizeof l2, p) != NULL;
        pclose(p);
    }
    snprintf(buf, cap, "%s%s", line, dirty ? "-dirty" : "");
}
