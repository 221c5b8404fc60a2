/* kvlab bench: parse, plan, describe the machine, run every run, write the reports. */
#include <errno.h>
#include <linux/limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "clock.h"
#include "commands.h"
#include "cpuload.h"
#include "iocount.h"
#include "machine.h"
#include "report.h"

/* The default scratch directory: bench-data next to the kvlab executable (inside the build
 * tree, so on the repository's disk, not a tmpfs /tmp). */
static void default_dir(char *out, size_t cap)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        snprintf(out, cap, "kvlab-bench-data");
        return;
    }
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    size_t len = strlen(exe);
    if (len + sizeof "/bench-data" > cap) {
        snprintf(out, cap, "kvlab-bench-data");
        return;
    }
    memcpy(out, exe, len);
    memcpy(out + len, "/bench-data", sizeof "/bench-data");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void summary(const bench_row *r, size_t i, size_t n)
{
    if (r->na) {
        printf("[%zu/%zu] %-8s %-12s %-12s t%-2u n/a (%s)\n", i, n, r->engine, r->workload,
               r->durability, r->threads, r->note);
    } else if (!strcmp(r->workload, "recover")) {
        printf("[%zu/%zu] %-8s %-12s n=%-9llu killed at %llu acked: %llu acked, %llu found, "
               "recovering open %.3f s\n",
               i, n, r->engine, r->workload, (unsigned long long)r->num,
               (unsigned long long)r->recovery.kill_at, (unsigned long long)r->recovery.acked,
               (unsigned long long)r->recovery.found, r->open_seconds);
    } else if (r->rate) {
        printf("[%zu/%zu] %-8s %-12s %-12s t%-2u %8llu/s offered %10.0f ops/s  p99 %9.2f us "
               "(service %8.2f us)%s%s\n",
               i, n, r->engine, r->workload, r->durability, r->threads, (unsigned long long)r->rate,
               r->ops_per_sec, r->p99_us, r->svc_p99_us, r->note[0] ? "  " : "", r->note);
    } else {
        printf("[%zu/%zu] %-8s %-12s %-12s t%-2u %10llu ops %8.3f s %12.0f ops/s  p50 %8.2f "
               "p99 %9.2f us%s%s\n",
               i, n, r->engine, r->workload, r->durability, r->threads, (unsigned long long)r->ops,
               r->seconds, r->ops_per_sec, r->p50_us, r->p99_us, r->note[0] ? "  " : "", r->note);
    }
    fflush(stdout);
}

/* A run that loads before measuring, of an engine whose load of as many records did not finish
 * within --max-seconds in an earlier run: the same load would stop again, so it is skipped. */
typedef struct slow_load {
    const char *engine;
    uint64_t num;
} slow_load;

static bool skip_slow(const run_spec *rs, const slow_load *slow, size_t n_slow, bench_row *row)
{
    if (!rs->wl->needs_load && rs->wl->kind != WL_RECOVER)
        return false;
    for (size_t i = 0; i < n_slow; i++) {
        if (strcmp(slow[i].engine, rs->engine) || slow[i].num != rs->num)
            continue;
        memset(row, 0, sizeof *row);
        snprintf(row->engine, sizeof row->engine, "%s", rs->engine);
        snprintf(row->workload, sizeof row->workload, "%s", rs->wl->name);
        kv_durability_format(rs->durability, row->durability, sizeof row->durability);
        row->threads = rs->threads;
        row->cpu_load = rs->cpu_load;
        row->num = rs->num;
        row->rate = rs->rate;
        row->na = row->load_timed_out = true;
        snprintf(row->note, sizeof row->note,
                 "skipped: the load of %llu records stopped at the time limit in an earlier run",
                 (unsigned long long)rs->num);
        return true;
    }
    return false;
}

static int write_reports(const bench_cfg *cfg, report_ctx *ctx, const bench_row *rows, size_t n)
{
    char path[BENCH_PATH_MAX + 64];
    int rc = 0;
    snprintf(path, sizeof path, "%s/results.csv", cfg->out);
    if (!report_csv_write(path, rows, n)) {
        fprintf(stderr, "kvlab: bench: cannot write %s: %s\n", path, strerror(errno));
        rc = KVLAB_EXIT_DATA;
    }
    snprintf(path, sizeof path, "%s/results.json", cfg->out);
    if (!report_json_write(path, ctx, rows, n)) {
        fprintf(stderr, "kvlab: bench: cannot write %s\n", path);
        rc = KVLAB_EXIT_DATA;
    }
    if (cfg->no_plots) {
        ctx->plots_made = false;
        snprintf(ctx->plots_note, sizeof ctx->plots_note, "No plots (--no-plots)");
    } else if (!report_plots(cfg->out, ctx, rows, n)) {
        fprintf(stderr, "kvlab: bench: %s\n", ctx->plots_note);
    }
    snprintf(path, sizeof path, "%s/report.md", cfg->out);
    if (!report_md_write(path, ctx, rows, n)) {
        fprintf(stderr, "kvlab: bench: cannot write %s\n", path);
        rc = KVLAB_EXIT_DATA;
    }
    if (rc == 0 && !cfg->quiet)
        printf("results: %s/{results.csv,results.json,report.md}%s\n", cfg->out,
               ctx->plots_made ? " and plots" : "");
    return rc;
}

int kvlab_cmd_bench(int argc, char **argv)
{
    if (argc > 0 && !strcmp(argv[0], BENCH_LOAD_CHILD_FLAG))
        return bench_recover_child(argc - 1, argv + 1);
    static bench_cfg cfg;
    char err[512];
    int prc = bench_parse_args(argc, argv, &cfg, err, sizeof err);
    if (prc == 1) {
        bench_print_help();
        return KVLAB_EXIT_OK;
    }
    if (prc != 0)
        return cli_usage_error("bench", "%s", err);
    run_spec *plan = NULL;
    size_t n = 0;
    if (!bench_plan(&cfg, &plan, &n, err, sizeof err))
        return cli_usage_error("bench", "%s", err);
    if (!cfg.dir_given)
        default_dir(cfg.dir, sizeof cfg.dir);
    ssize_t exe_len = readlink("/proc/self/exe", cfg.exe, sizeof cfg.exe - 1);
    cfg.exe[exe_len > 0 ? exe_len : 0] = '\0';
    cfg.write_hgrm = true;
    if (!io_mkdirs(cfg.dir)) {
        fprintf(stderr, "kvlab: bench: cannot create --dir %s: %s\n", cfg.dir, strerror(errno));
        free(plan);
        return KVLAB_EXIT_DATA;
    }
    if (!io_mkdirs(cfg.out)) {
        fprintf(stderr, "kvlab: bench: cannot create --out %s: %s\n", cfg.out, strerror(errno));
        free(plan);
        return KVLAB_EXIT_DATA;
    }
    unsigned load = 0; /* the helper of --cpu-load is forked now, before any thread starts */
    for (size_t i = 0; i < n; i++)
        load = plan[i].cpu_load > load ? plan[i].cpu_load : load;
    if (load && !cpuload_start(load, err, sizeof err)) {
        fprintf(stderr, "kvlab: bench: %s\n", err);
        free(plan);
        return KVLAB_EXIT_DATA;
    }
    bench_clock_init();
    machine_info m;
    machine_describe(&m, cfg.dir, cfg.probes);
    if (m.fs_in_memory)
        fprintf(stderr,
                "kvlab: bench: warning: %s is on %s (in memory): sync figures will not "
                "be those of a disk; use --dir on a disk\n",
                cfg.dir, m.fs_type);
    char commit[128], started[64];
    machine_git_commit(commit, sizeof commit);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(started, sizeof started, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!cfg.quiet) {
        printf("kvlab bench: %zu runs, dir %s (%s), fdatasync p50 %.0f us\n", n, cfg.dir, m.fs_type,
               m.fdatasync_p50_us);
        fflush(stdout);
    }

    bench_row *rows = calloc(n ? n : 1, sizeof *rows);
    if (!rows) {
        cpuload_stop();
        free(plan);
        fprintf(stderr, "kvlab: bench: out of memory\n");
        return KVLAB_EXIT_DATA;
    }
    double t0 = now_s();
    size_t done = 0;
    char fatal[1024] = "", path[BENCH_PATH_MAX + 64];
    /* results.csv grows row by row, so that a run that never ends leaves the others. */
    snprintf(path, sizeof path, "%s/results.csv", cfg.out);
    FILE *csv = fopen(path, "w");
    if (csv) {
        fprintf(csv, "%s\n", report_csv_header);
        fflush(csv);
    }
    slow_load *slow = calloc(n ? n : 1, sizeof *slow);
    size_t n_slow = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(slow && skip_slow(&plan[i], slow, n_slow, &rows[done])) &&
            bench_run(&cfg, &plan[i], &rows[done], fatal, sizeof fatal) != 0) {
            fprintf(stderr, "kvlab: bench: %s\n", fatal);
            break;
        }
        if (slow && rows[done].load_timed_out)
            slow[n_slow++] = (slow_load){plan[i].engine, plan[i].num};
        if (!cfg.quiet)
            summary(&rows[done], i + 1, n);
        if (csv) {
            report_csv_row(csv, &rows[done]);
            fflush(csv);
        }
        done++;
    }
    if (csv)
        fclose(csv);
    cpuload_stop();
    free(slow);
    report_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.cfg = &cfg;
    ctx.machine = &m;
    ctx.commit = commit;
    ctx.started_utc = started;
    ctx.total_seconds = now_s() - t0;
    ctx.error = fatal[0] ? fatal : NULL;
    ctx.bench_dir = cfg.dir;
    ctx.multi_num = cfg.n_nums > 1;
    int rc = write_reports(&cfg, &ctx, rows, done);
    for (size_t i = 0; i < done; i++)
        bench_row_free(&rows[i]);
    free(rows);
    free(plan);
    if (fatal[0])
        return KVLAB_EXIT_DATA;
    return rc;
}
