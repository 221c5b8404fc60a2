/* bitcask_timing: a hand-run timing program for the bitcask engine (NOT a test: ctest does not
 * run it, and nothing here asserts a speed). It measures what docs/bitcask.md section 9 quotes:
 *
 *   bitcask_timing startup DIR [N [ROUNDS]]
 *       fills DIR with N distinct random 16-byte keys and 100-byte values (durability os; default
 *       N = 1,000,000), closes it (hint files are written), then ROUNDS times (default 5) times
 *       kv_open with hint files and kv_open with hints=ignore (which scans every data file),
 *       alternately, and prints each wall-clock and CPU time (seconds) and the ratios hints /
 *       scan of the medians. Every open uses merge=manual (no background merge to time).
 *       KVLAB_TIMING_EVICT=1 drops each data and hint file from the page cache before every open
 *       (posix_fadvise DONTNEED: a cold start).
 *   bitcask_timing reopen DIR [ROUNDS [MODE]]
 *       the timed opens of "startup" alone, on a DIR that an earlier "keep" left filled: DIR is
 *       neither filled nor removed, so two builds of the engine can be timed alternately on the
 *       same files (A B A B ...). MODE: both (default), hints or scan.
 *   bitcask_timing keep DIR [N]
 *       fills DIR as "startup" does and keeps it (for "reopen").
 *   bitcask_timing fill DIR [N]
 *       times N puts of distinct random keys into an empty DIR (durability os): puts per second,
 *       the user and system CPU seconds of the process, and the CPU seconds of the putting
 *       thread alone (background threads, e.g. the one preparing the keydir's next table, not
 *       counted).
 *
 * DIR is removed first and at the end (except by reopen and keep). */
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "kv.h"
#include "testutil.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of the calling thread alone (background threads excluded). */
static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(int who_sys)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    struct timeval t = who_sys ? ru.ru_stime : ru.ru_utime;
    return (double)t.tv_sec + (double)t.tv_usec / 1e6;
}

/* Key i: 16 bytes of a 64-bit mix of i and of i's complement (distinct for distinct i). */
static void key_of(uint64_t i, uint8_t k[16])
{
    uint64_t a = i * 0x9e3779b97f4a7c15ull, b = ~i;
    a ^= a >> 31;
    a *= 0xbf58476d1ce4e5b9ull;
    a ^= a >> 29;
    for (int j = 0; j < 8; j++) {
        k[j] = (uint8_t)(a >> (56 - 8 * j));
        k[8 + j] = (uint8_t)(b >> (56 - 8 * j));
    }
}

static kv_status open_db(const char *dir, const char *hints, kv_db **db)
{
    kv_options o;
    kv_options_init(&o);
    o.durability.kind = KV_DURABILITY_OS;
    kv_options_set(&o, "merge=manual");
    if (hints)
        kv_options_set(&o, hints);
    kv_status s = kv_open("bitcask", dir, &o, db);
    kv_options_free(&o);
    return s;
}

static double fill_thread_cpu; /* CPU seconds of the thread doing the puts in the last fill */

static int fill(const char *dir, uint64_t n, double *secs)
{
    kv_db *db;
    if (open_db(dir, NULL, &db) != KV_OK) {
        fprintf(stderr, "open %s: %s\n", dir, kv_errmsg());
        return -1;
    }
    uint8_t k[16], v[100];
    memset(v, 'v', sizeof v);
    double t0 = now_s(), c0 = thread_cpu_s();
    for (uint64_t i = 0; i < n; i++) {
        key_of(i, k);
        memcpy(v, &i, sizeof i);
        if (kv_put(db, k, sizeof k, v, sizeof v) != KV_OK) {
            fprintf(stderr, "put: %s\n", kv_errmsg());
            kv_close(db);
            return -1;
        }
    }
    *secs = now_s() - t0;
    fill_thread_cpu = thread_cpu_s() - c0;
    return kv_close(db) == KV_OK ? 0 : -1;
}

static void evict(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        int fd = open(p, O_RDONLY);
        if (fd < 0)
            continue;
        fdatasync(fd);
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
    closedir(d);
}

static double time_open(const char *dir, const char *hints, uint64_t *keys, double *cpu)
{
    if (getenv("KVLAB_TIMING_EVICT"))
        evict(dir);
    kv_db *db;
    double c0 = cpu_s(0) + cpu_s(1), t0 = now_s();
    if (open_db(dir, hints, &db) != KV_OK) {
        fprintf(stderr, "open %s: %s\n", dir, kv_errmsg());
        return -1;
    }
    double t = now_s() - t0;
    *cpu = cpu_s(0) + cpu_s(1) - c0;
    kv_stats st;
    *keys = kv_stats_get(db, &st) == KV_OK ? st.live_keys : 0;
    if (kv_close(db) != KV_OK)
        return -1;
    return t;
}

static int dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Prints one line of wall-clock and CPU seconds of the opens that ran (label, round r unless
 * negative), and their ratios when both ran (a mode that times one kind alone prints no ratio). */
static void print_times(const char *label, int r, double th, double ch, double ts, double cs,
                        bool do_hints, bool do_scan)
{
    printf("%s", label);
    if (r >= 0)
        printf(" %d", r);
    printf(":");
    if (do_hints)
        printf(" hints %.3f s (cpu %.3f)", th, ch);
    if (do_scan)
        printf(" scan %.3f s (cpu %.3f)", ts, cs);
    if (do_hints && do_scan)
        printf(" ratio %.3f (cpu %.3f)", th / ts, ch / cs);
    printf("\n");
}

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[1], "startup") && strcmp(argv[1], "fill") &&
                     strcmp(argv[1], "reopen") && strcmp(argv[1], "keep"))) {
        fprintf(stderr,
                "usage: %s startup DIR [N [ROUNDS]] | reopen DIR [ROUNDS [both|hints|scan]] | "
                "keep DIR [N] | fill DIR [N]\n",
                argv[0]);
        return 2;
    }
    const char *dir = argv[2];
    bool reopen = !strcmp(argv[1], "reopen");
    uint64_t n = argc > 3 && !reopen ? strtoull(argv[3], NULL, 10) : 1000000;
    int rounds = argc > (reopen ? 3 : 4) ? atoi(argv[reopen ? 3 : 4]) : 5;
    if (rounds < 1 || rounds > 100)
        rounds = 5;
    const char *mode = reopen && argc > 4 ? argv[4] : "both";
    bool do_hints = strcmp(mode, "scan") != 0, do_scan = strcmp(mode, "hints") != 0;
    double secs;
    if (!reopen)
        tu_rmtree(dir);
    if (!strcmp(argv[1], "fill")) {
        double u0 = cpu_s(0), s0 = cpu_s(1);
        if (fill(dir, n, &secs))
            return 1;
        printf("fill: %llu puts in %.3f s = %.0f puts/s; cpu user %.2f s, sys %.2f s; "
               "putting thread %.3f s\n",
               (unsigned long long)n, secs, (double)n / secs, cpu_s(0) - u0, cpu_s(1) - s0,
               fill_thread_cpu);
        tu_rmtree(dir);
        return 0;
    }
    if (!reopen && fill(dir, n, &secs))
        return 1;
    if (!strcmp(argv[1], "keep"))
        return 0;
    double th[100], ts[100], ch[100], cs[100];
    uint64_t expect = 0;
    for (int r = 0; r < rounds; r++) {
        uint64_t kh = 0, ks = 0;
        th[r] = ch[r] = ts[r] = cs[r] = 1;
        if (do_hints)
            th[r] = time_open(dir, NULL, &kh, &ch[r]);
        if (do_scan)
            ts[r] = time_open(dir, "hints=ignore", &ks, &cs[r]);
        if (reopen && r == 0)
            expect = do_hints ? kh : ks;
        else if (!reopen)
            expect = n;
        if (th[r] < 0 || ts[r] < 0 || (do_hints && kh != expect) || (do_scan && ks != expect) ||
            !expect) {
            fprintf(stderr, "round %d failed (keys %llu / %llu)\n", r, (unsigned long long)kh,
                    (unsigned long long)ks);
            return 1;
        }
        print_times("round", r, th[r], ch[r], ts[r], cs[r], do_hints, do_scan);
        fflush(stdout);
    }
    qsort(th, (size_t)rounds, sizeof *th, dcmp);
    qsort(ts, (size_t)rounds, sizeof *ts, dcmp);
    qsort(ch, (size_t)rounds, sizeof *ch, dcmp);
    qsort(cs, (size_t)rounds, sizeof *cs, dcmp);
    int m = rounds / 2;
    print_times("median", -1, th[m], ch[m], ts[m], cs[m], do_hints, do_scan);
    printf("(%llu keys)\n", (unsigned long long)expect);
    if (!reopen)
        tu_rmtree(dir);
    return 0;
}
