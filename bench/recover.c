/* recover.h: the loading child, its kill, the timed recovering open and the count of what
 * survived. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cpuload.h"
#include "iocount.h"
#include "monitor.h"
#include "pagecache.h"
#include "recover.h"

/* How long the child may go without acknowledging a batch before it counts as hung. */
#define CHILD_STALL_SECONDS MONITOR_STALL_SECONDS

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t recover_kill_point(uint64_t num, uint64_t seed)
{
    if (num <= 1)
        return num;
    bench_rng r = {seed * 0xd1342543de82ef95ull + num};
    uint64_t quarter = num / 4 ? num / 4 : 1;
    uint64_t at = num - 1 - rng_below(&r, quarter);
    return at ? at : 1;
}

/* ---- the child ---- */

static int child_fail(const char *what, const char *msg)
{
    fprintf(stderr, "kvlab: bench: recover: loading child: %s: %s\n", what, msg);
    return 3;
}

static bool child_u64(const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || *end)
        return false;
    *out = v;
    return true;
}

/* argv: ENGINE DIR NUM KEY_SIZE VALUE_SIZE SEED CACHE_SIZE PROGRESS_FD [OPTION...], where
 * PROGRESS_FD is an inherited descriptor of at least two u64 shared with the parent and each
 * OPTION an -o value of the benchmark. Loads, then waits to be killed. */
int bench_recover_child(int argc, char **argv)
{
    if (argc < 8)
        return child_fail("arguments", "want ENGINE DIR NUM KEY_SIZE VALUE_SIZE SEED CACHE FD");
    static bench_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    uint64_t num, ks, vs, seed, cache, fd;
    if (!child_u64(argv[2], &num) || !child_u64(argv[3], &ks) || !child_u64(argv[4], &vs) ||
        !child_u64(argv[5], &seed) || !child_u64(argv[6], &cache) || !child_u64(argv[7], &fd) ||
        ks == 0 || fd > INT32_MAX)
        return child_fail("arguments", "a number is malformed");
    cfg.cache_size = cache;
    for (int i = 8; i < argc && cfg.n_opts < BENCH_MAX_OPTS; i++)
        cfg.opts[cfg.n_opts++] = argv[i];
    const char *engine = argv[0], *dir = argv[1];
    _Atomic uint64_t *progress = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, (int)fd, 0);
    if (progress == MAP_FAILED)
        return child_fail("progress map", strerror(errno));
    kv_options o;
    kv_options_init(&o);
    if (bench_make_options(&cfg, engine, (kv_durability){KV_DURABILITY_OS, 0}, &o) != KV_OK)
        return child_fail("options", kv_errmsg());
    kv_db *db = NULL;
    if (kv_open(engine, dir, &o, &db) != KV_OK)
        return child_fail("open", kv_errmsg());
    wl_shared sh;
    memset(&sh, 0, sizeof sh);
    sh.wl = wl_find("recover");
    sh.db = db;
    sh.key_size = ks;
    sh.value_size = vs;
    sh.records = sh.capacity = num;
    sh.threads = 1;
    sh.seed = seed;
    kvb_perm_init(&sh.perm, num, seed);
    sh.versions = calloc(num ? num : 1, sizeof *sh.versions);
    wl_thread t;
    memset(&t, 0, sizeof t);
    if (!sh.versions || !wl_thread_init(&t, &sh, 0, 0, num, true))
        return child_fail("setup", "out of memory");
    t.progress = progress;
    if (wl_load(&t) != 0)
        return child_fail("load", sh.error);
    /* Everything is acknowledged: wait for the kill with the database open, as a crash finds
     * it (the parent kills at its point; it cannot miss us: we wait forever). */
    for (;;)
        pause();
}

/* ---- the parent ---- */

static int fail(char *err, size_t cap, const run_spec *rs, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t cap, const run_spec *rs, const char *fmt, ...)
{
    int n = snprintf(err, cap, "%s recover n=%" PRIu64 ": ", rs->engine, rs->num);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < cap)
        vsnprintf(err + n, cap - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

/* Starts the loading child with the progress descriptor fd. Returns its pid or -1. */
static pid_t start_child(const bench_cfg *cfg, const run_spec *rs, const char *dir, int fd)
{
    char num[24], ks[24], vs[24], seed[24], cache[24], fds[24];
    snprintf(num, sizeof num, "%" PRIu64, rs->num);
    snprintf(ks, sizeof ks, "%" PRIu64, cfg->key_size);
    snprintf(vs, sizeof vs, "%" PRIu64, cfg->value_size);
    snprintf(seed, sizeof seed, "%" PRIu64, cfg->seed);
    snprintf(cache, sizeof cache, "%" PRIu64, cfg->cache_size);
    snprintf(fds, sizeof fds, "%d", fd);
    const char *argv[16 + BENCH_MAX_OPTS];
    size_t a = 0;
    argv[a++] = cfg->exe;
    argv[a++] = "bench";
    argv[a++] = BENCH_LOAD_CHILD_FLAG;
    argv[a++] = rs->engine;
    argv[a++] = dir;
    argv[a++] = num;
    argv[a++] = ks;
    argv[a++] = vs;
    argv[a++] = seed;
    argv[a++] = cache;
    argv[a++] = fds;
    for (size_t i = 0; i < cfg->n_opts; i++)
        argv[a++] = cfg->opts[i];
    argv[a] = NULL;
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* The child dies with the benchmark, whatever happens to it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    execv(cfg->exe, (char **)argv);
    fprintf(stderr, "kvlab: bench: recover: cannot run %s: %s\n", cfg->exe, strerror(errno));
    _exit(127);
}

/* Loads in the child and kills it at the kill point. Fills acked/submitted/kill point and the
 * load time. Returns 0 or -1 (err). */
static int load_and_kill(const bench_cfg *cfg, const run_spec *rs, const char *dir, bench_row *row,
                         uint64_t *submitted, char *err, size_t cap)
{
    int fd = memfd_create("kvlab-recover-progress", 0);
    if (fd < 0)
        return fail(err, cap, rs, "memfd_create: %s", strerror(errno));
    _Atomic uint64_t *progress = MAP_FAILED;
    if (ftruncate(fd, 4096) == 0)
        progress = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (progress == MAP_FAILED) {
        int e = errno;
        close(fd);
        return fail(err, cap, rs, "progress map: %s", strerror(e));
    }
    uint64_t kill_at = recover_kill_point(rs->num, cfg->seed);
    row->recovery.kill_at = kill_at;
    uint64_t t0 = now_ns();
    pid_t pid = start_child(cfg, rs, dir, fd);
    close(fd);
    if (pid < 0) {
        munmap((void *)progress, 4096);
        return fail(err, cap, rs, "fork: %s", strerror(errno));
    }
    int rc = 0, status = 0;
    bool reaped = false;
    uint64_t last = 0, last_change = t0;
    for (;;) {
        uint64_t acked = atomic_load(&progress[1]);
        if (acked >= kill_at) {
            kill(pid, SIGKILL);
            break;
        }
        uint64_t now = now_ns();
        if (cfg->max_seconds > 0 && (double)(now - t0) / 1e9 > cfg->max_seconds) {
            /* too slow to reach its kill point: a recovery of fewer records would be
             * reported under the wrong size */
            kill(pid, SIGKILL);
            row->na = row->load_timed_out = true;
            snprintf(row->note, sizeof row->note,
                     "the load stopped at the %.0f s limit after %llu of %llu records",
                     cfg->max_seconds, (unsigned long long)acked, (unsigned long long)rs->num);
            break;
        }
        if (acked != last) {
            last = acked;
            last_change = now;
        } else if (now - last_change > CHILD_STALL_SECONDS * 1000000000ull) {
            kill(pid, SIGKILL);
            rc = fail(err, cap, rs, "the loading child acknowledged nothing for %d s",
                      CHILD_STALL_SECONDS);
            break;
        }
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            reaped = true;
            rc = fail(err, cap, rs, "the loading child ended before its kill point (%s %d)",
                      WIFEXITED(status) ? "exit" : "signal",
                      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
            break;
        }
        struct timespec d = {0, 1000000};
        nanosleep(&d, NULL);
    }
    if (!reaped)
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    row->load_seconds = (double)(now_ns() - t0) / 1e9;
    row->recovery.acked = atomic_load(&progress[1]);
    *submitted = atomic_load(&progress[0]);
    munmap((void *)progress, 4096);
    return rc;
}

/* Reads every record back: each key one of the run's, once, with version 1's value; records
 * the ones found in the bitmap. Returns 0 or -1 (err). */
static int read_back(kv_db *db, const bench_cfg *cfg, const run_spec *rs, uint8_t *seen,
                     uint64_t *found, char *err, size_t cap)
{
    kv_iter *it = NULL;
    kv_status s = kv_iter_new(db, &it);
    if (s != KV_OK)
        return fail(err, cap, rs, "iterator: %s", kv_errmsg());
    uint64_t n = 0;
    int rc = 0;
    for (kv_iter_seek_first(it); rc == 0 && kv_iter_valid(it); kv_iter_next(it)) {
        size_t kl, vl;
        const void *k = kv_iter_key(it, &kl), *v = kv_iter_value(it, &vl);
        uint64_t idx;
        uint32_t ver = 0;
        if (!kvb_key_parse(k, kl, cfg->key_size, &idx) || idx >= rs->num)
            rc = fail(err, cap, rs, "the recovered database holds a key (%zu bytes) never written",
                      kl);
        else if (seen[idx / 8] & (1u << (idx % 8)))
            rc = fail(err, cap, rs, "key %" PRIu64 " appears twice", idx);
        else if (!kvb_value_check(v, vl, cfg->value_size, idx, &ver) ||
                 (cfg->value_size >= KVB_STAMP && ver != 1))
            rc = fail(err, cap, rs, "key %" PRIu64 ": the recovered value is not the one written",
                      idx);
        else {
            seen[idx / 8] |= (uint8_t)(1u << (idx % 8));
            n++;
        }
    }
    s = kv_iter_status(it);
    kv_iter_free(it);
    if (rc == 0 && s != KV_OK)
        rc = fail(err, cap, rs, "iterating the recovered database: %s", kv_errmsg());
    *found = n;
    return rc;
}

int recover_check(uint64_t num, uint64_t seed, const uint8_t *seen, uint64_t found, uint64_t acked,
                  uint64_t submitted, char *msg, size_t cap)
{
    kvb_perm perm;
    kvb_perm_init(&perm, num, seed);
    uint64_t missing = 0, inflight = 0, first_missing = 0;
    for (uint64_t j = 0; j < submitted && j < num; j++) {
        uint64_t idx = kvb_perm_at(&perm, j);
        bool have = seen[idx / 8] & (1u << (idx % 8));
        if (j < acked && !have && missing++ == 0)
            first_missing = idx;
        if (j >= acked)
            inflight += have;
    }
    if (missing) {
        snprintf(msg, cap,
                 "after SIGKILL, %" PRIu64 " of the %" PRIu64
                 " acknowledged records are missing (first: key %" PRIu64 ")",
                 missing, acked, first_missing);
        return -1;
    }
    if (inflight && inflight != submitted - acked) {
        snprintf(msg, cap,
                 "after SIGKILL, %" PRIu64 " of the %" PRIu64
                 " records of the batch in flight are there: half a batch",
                 inflight, submitted - acked);
        return -1;
    }
    if (found != acked + inflight) {
        snprintf(msg, cap,
                 "after SIGKILL, %" PRIu64 " records were found but only %" PRIu64 " were written",
                 found, acked + inflight);
        return -1;
    }
    return 0;
}

int recover_run(const bench_cfg *cfg, const run_spec *rs, const char *dir, const kv_options *o,
                bench_row *row, char *err, size_t cap)
{
    if (!cfg->exe[0]) {
        row->na = true;
        snprintf(row->note, sizeof row->note,
                 "recover needs the kvlab executable to start its loading child");
        return 0;
    }
    row->recovery.read_bytes = row->recovery.log_replayed = UINT64_MAX;
    uint64_t submitted = 0;
    if (load_and_kill(cfg, rs, dir, row, &submitted, err, cap) != 0)
        return -1;
    if (row->na)
        return 0;
    uint64_t acked = row->recovery.acked;

    int dfd = open(cfg->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) { /* as before every measured phase: no writeback of the load during it */
        (void)syncfs(dfd);
        close(dfd);
    }
    bool peer = bench_is_peer(rs->engine);
    uint64_t rchar0 = 0, rchar1 = 0;
    bool rchar_ok = io_proc_rchar(&rchar0);
    wl_shared quiet_sh; /* the monitor's stop flag; recovery has no operations to watch */
    memset(&quiet_sh, 0, sizeof quiet_sh);
    monitor mon;
    memset(&mon, 0, sizeof mon);
    mon.sh = &quiet_sh;
    mon.quiet = true;
    snprintf(mon.label, sizeof mon.label, "%s recover: the recovering open", rs->engine);
    uint64_t mem0 = monitor_memory_now();
    /* --cpu-load: the recovering open is the measured phase, so the busy loops spin beside it */
    char lerr[160];
    if (!cpuload_run(rs->cpu_load, lerr, sizeof lerr))
        return fail(err, cap, rs, "%s", lerr);
    bool mon_ok = monitor_start(&mon);
    kv_db *db = NULL;
    uint64_t t0 = now_ns();
    kv_status s = kv_open(rs->engine, dir, o, &db);
    row->open_seconds = (double)(now_ns() - t0) / 1e9;
    if (mon_ok)
        monitor_stop(&mon);
    bool parked = cpuload_run(0, lerr, sizeof lerr);
    if (s != KV_OK)
        return fail(err, cap, rs, "the recovering open: %s", kv_errmsg());
    if (!parked) {
        kv_close(db);
        return fail(err, cap, rs, "%s", lerr);
    }
    rchar_ok = rchar_ok && io_proc_rchar(&rchar1);
    row->peak_mem_bytes = mon_ok && mon.peak > mem0 ? mon.peak - mem0 : 0;
    kv_stats st;
    int rc = 0;
    if (kv_stats_get(db, &st) != KV_OK)
        rc = fail(err, cap, rs, "stats: %s", kv_errmsg());
    if (rc == 0) {
        if (!peer)
            row->recovery.read_bytes = st.file_bytes_read;
        else if (rchar_ok)
            row->recovery.read_bytes = rchar1 - rchar0;
        for (size_t i = 0; i < st.n_extra; i++)
            if (!strcmp(st.extra[i].name, "recovery_log_bytes"))
                row->recovery.log_replayed = st.extra[i].value;
        row->n_extra = st.n_extra;
        memcpy(row->extra, st.extra, sizeof st.extra);
        if (!pc_dir_resident(dir, PC_AUTO, &row->page_cache_bytes, &row->page_cache_method)) {
            row->page_cache_bytes = UINT64_MAX;
            row->page_cache_method = "none";
        }
    }
    /* Off the clock: what survived. */
    uint8_t *seen = calloc(rs->num / 8 + 1, 1);
    uint64_t found = 0;
    if (rc == 0 && !seen)
        rc = fail(err, cap, rs, "out of memory");
    if (rc == 0)
        rc = read_back(db, cfg, rs, seen, &found, err, cap);
    char msg[512];
    if (rc == 0 &&
        recover_check(rs->num, cfg->seed, seen, found, acked, submitted, msg, sizeof msg) != 0)
        rc = fail(err, cap, rs, "%s", msg);
    free(seen);
    if (kv_close(db) != KV_OK && rc == 0)
        rc = fail(err, cap, rs, "close after recovery: %s", kv_errmsg());
    if (rc)
        return rc;
    row->recovery.found = found;
    row->ops = found;
    row->seconds = row->open_seconds;
    row->ops_per_sec = row->mb_per_sec = NAN; /* no operations: the open is the figure */
    row->live_keys = found;
    row->live_bytes = found * (cfg->key_size + cfg->value_size);
    uint64_t files = 0;
    if (io_dir_bytes(dir, &row->disk_bytes, &files) && row->live_bytes)
        row->space_amp = (double)row->disk_bytes / (double)row->live_bytes;
    if (row->page_cache_bytes != UINT64_MAX && found)
        row->mem_per_key_bytes =
            (double)(row->peak_mem_bytes + row->page_cache_bytes) / (double)found;
    return 0;
}
