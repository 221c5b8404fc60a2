/* The machine a benchmark ran on (docs/design.md section 7): CPU model, cores, memory, kernel, the
 * file system of the database directory, and that device's fdatasync latency, which bounds
 * what durability sync can reach (one commit per fdatasync without group commit). */
#ifndef KVLAB_BENCH_MACHINE_H
#define KVLAB_BENCH_MACHINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct machine_info {
    char cpu[160];       /* /proc/cpuinfo "model name" */
    unsigned cores;      /* online processors */
    uint64_t mem_bytes;  /* physical memory */
    char kernel[160];    /* uname: sysname release machine */
    char fs_type[32];    /* file system of the bench directory (statfs f_type) */
    char fs_source[256]; /* its mount source and mount point (/proc/self/mounts) */
    bool fs_in_memory;   /* tmpfs or ramfs: sync costs nothing there */
    char compiler[96];   /* __VERSION__ */
    char allocator[32];  /* "jemalloc" or "system (sanitizer build)" */
    unsigned probes;     /* fdatasync probes made */
    double fdatasync_p50_us, fdatasync_p99_us, fdatasync_max_us; /* of pwrite 4 KiB + fdatasync */
    double fdatasync_mean_us; /* the mean: 1 / mean is the sync-commit rate one thread can reach */
    char probe_error[256];    /* why the probe failed, "" when it worked */
    double clock_read_ns;     /* one read of the benchmark's clock (bench_clock_read_ns) */
} machine_info;

/* Describes the machine and probes the fdatasync latency of dir (n probes of a 4 KiB pwrite
 * and an fdatasync on a scratch file in dir, removed afterwards; n = 0 skips the probe). */
void machine_describe(machine_info *m, const char *dir, unsigned n);

/* The mean latency in microseconds of n rounds of a 4 KiB pwrite and an fdatasync in dir (as
 * machine_describe's probe), or NAN when n is 0 or a call failed. The benchmark calls it just
 * before each measured phase in durability sync, so that a run's one-thread bound (1 / mean)
 * comes from the disk as it is then: on shared storage the latency drifts by tens of percent
 * within minutes. Takes n x the latency (about 20 ms for n = 100 on an SSD). */
double machine_probe_mean_us(const char *dir, unsigned n);

/* The git commit of the source tree (`git rev-parse HEAD` in KVLAB_SOURCE_DIR) into buf, with
 * "-dirty" appended when `git status --porcelain` lists changes; "unknown" without git. */
void machine_git_commit(char *buf, size_t cap);

#endif
