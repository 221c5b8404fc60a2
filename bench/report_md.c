/* report.md (report.h): what ran, on what, how it was measured, the figures and the plots. */
#include <math.h>
#include <string.h>

#include "bench_null.h"
#include "cli.h"
#include "clock.h"
#include "report_int.h"

void md_fig(FILE *f, double v, const char *fmt)
{
    if (!isfinite(v))
        fputs(" – |", f);
    else {
        fputc(' ', f);
        fprintf(f, fmt, v);
        fputs(" |", f);
    }
}

char *md_count(uint64_t n, char *buf, size_t cap)
{
    if (n >= 1000000000ull && n % 1000000000ull == 0)
        snprintf(buf, cap, "%lluG", (unsigned long long)(n / 1000000000ull));
    else if (n >= 1000000 && n % 1000000 == 0)
        snprintf(buf, cap, "%lluM", (unsigned long long)(n / 1000000));
    else if (n >= 1000 && n % 1000 == 0)
        snprintf(buf, cap, "%lluk", (unsigned long long)(n / 1000));
    else
        snprintf(buf, cap, "%llu", (unsigned long long)n);
    return buf;
}

char *md_group_label(const report_ctx *c, const bench_row *r, char *buf, size_t cap)
{
    char a[24], b[24];
    int k = snprintf(buf, cap, "%s %s t%u", r->workload, r->durability, r->threads);
    if (c->multi_num && k >= 0 && (size_t)k < cap)
        k += snprintf(buf + k, cap - (size_t)k, " n=%s", md_count(r->num, a, sizeof a));
    if (r->rate && k >= 0 && (size_t)k < cap)
        k += snprintf(buf + k, cap - (size_t)k, " at %s/s", md_count(r->rate, b, sizeof b));
    if (r->cpu_load && k >= 0 && (size_t)k < cap) /* --cpu-load */
        snprintf(buf + k, cap - (size_t)k, "%s", report_load_label(r).s);
    return buf;
}

static void machine_section(FILE *f, const report_ctx *c)
{
    const machine_info *m = c->machine;
    char mem[32];
    fprintf(f, "## Machine\n\n| | |\n|---|---|\n");
    fprintf(f, "| CPU | %s |\n| cores | %u |\n| memory | %s |\n| kernel | %s |\n", m->cpu, m->cores,
            cli_human_bytes(m->mem_bytes, mem, sizeof mem), m->kernel);
    fprintf(f, "| file system of the bench directory | %s (%s) |\n", m->fs_type, m->fs_source);
    if (m->probes)
        fprintf(f,
                "| fdatasync latency (4 KiB pwrite + fdatasync, %u probes) | p50 %.1f µs, "
                "mean %.1f µs, p99 %.1f µs, max %.1f µs: at most ~%.0f synchronous commits/s "
                "per thread without group commit (1 / mean) |\n",
                m->probes, m->fdatasync_p50_us, m->fdatasync_mean_us, m->fdatasync_p99_us,
                m->fdatasync_max_us, m->fdatasync_mean_us > 0 ? 1e6 / m->fdatasync_mean_us : 0.0);
    else
        fprintf(f, "| fdatasync latency | not measured%s%s |\n", m->probe_error[0] ? ": " : "",
                m->probe_error);
    fprintf(f, "| one read of the clock (Method names it) | %.1f ns |\n", m->clock_read_ns);
    fprintf(f, "| compiler | %s |\n| allocator | %s |\n", m->compiler, m->allocator);
    fprintf(f, "| CPU load beside the runs | %s |\n\n", /* --cpu-load (cpuload.h) */
            c->cfg->cpu_load || c->cfg->is_default
                ? "in the runs marked \"loadN\", N busy-loop threads in a separate process "
                  "spin from the first operation to the last"
                : "none");
    if (m->fs_in_memory)
        fprintf(f,
                "**Warning: the bench directory is on an in-memory file system (%s): "
                "fsync costs nothing there, so durability `sync` figures are not those of "
                "a disk.**\n\n",
                m->fs_type);
}

static void method_section(FILE *f, const report_ctx *c)
{
    const bench_cfg *g = c->cfg;
    /* With several record counts the counts that follow them are "N" (each run's own). */
    char nums[160] = "", ops[32], scan_ops[32];
    for (size_t i = 0; i < g->n_nums; i++) {
        char a[24];
        size_t len = strlen(nums);
        snprintf(nums + len, sizeof nums - len, "%s%s", i ? ", " : "",
                 md_count(g->nums[i], a, sizeof a));
    }
    if (g->n_nums > 1 && !g->ops_given)
        snprintf(ops, sizeof ops, "N");
    else
        snprintf(ops, sizeof ops, "%llu", (unsigned long long)g->ops);
    if (g->n_nums > 1 && !g->scan_ops_given)
        snprintf(scan_ops, sizeof scan_ops, "N/10");
    else
        snprintf(scan_ops, sizeof scan_ops, "%llu", (unsigned long long)g->scan_ops);
    fprintf(f,
            "## Method\n\n"
            "- Keys are %llu bytes (the record number in zero-padded decimal, so key order is "
            "number order), values %llu bytes determined by (key, version): the version and a key "
            "tag in "
            "the first 8 bytes, then a slice of a 64 KiB pool of random bytes (incompressible, "
            "as db_bench's values come from a random buffer). Every read checks "
            "that the value is one written for that key (and the latest one when 1 thread "
            "runs); a wrong value aborts the benchmark.\n"
            "- Each run uses a fresh database directory. fillseq, fillrandom and fillsync start "
            "empty. Every other workload first loads %s records (random order, batches of "
            "256, durability os; unmeasured), closes the database and reopens it in the "
            "measured mode, so every run starts from the same state whatever ran before; the "
            "file system is synced (syncfs) before each measured phase, so no run pays for the "
            "writeback of the runs before it.\n"
            "- fillrandom and fillsync put every key exactly once in a seeded random order; "
            "fillsync (%llu ops) always runs in durability `sync`. YCSB: the request "
            "distribution is YCSB's scrambled zipfian (Gray et al.'s generator, theta 0.99, "
            "over 10^10 ranks with the FNV-64 hash of the rank taken modulo the key count), "
            "`latest` for D; an update writes a whole new value; E scans 1 to 100 records "
            "(uniform) from a zipfian key; %s measured ops (ycsb-e: %s).\n"
            "- Throughput is operations / wall time of the measured phase; MB/s counts key + "
            "value bytes moved (MB = 2^20 bytes). Latency is of the engine calls only, per "
            "thread in log-bucketed histograms (< 1%% error), merged.\n"
            "- Write amplification = file bytes written / user bytes written (key + value of "
            "puts, keys of deletes) during the measured phase. kvlab engines: the counters of "
            "kvlab's fs layer (kv_stats). Peers do their own I/O: /proc/self/io `wchar` "
            "around the phase (write-like system calls; mmap stores are not in it). Space "
            "amplification = bytes of the files in the directory after kv_close (per file "
            "min(size, blocks x 512)) / live logical bytes (live records x (key + value)).\n"
            "- fsyncs/op: fsync + fdatasync calls (kv_stats) for kvlab engines; for peers the "
            "fsync, fdatasync, sync_file_range and msync calls counted by wrappers that the "
            "kvlab executable interposes (dlsym(RTLD_NEXT)).\n"
            "- Peak memory: the highest jemalloc `stats.allocated` (resident set size in a "
            "sanitizer build) sampled every 10 ms during open + measured phase, minus the "
            "value before the open. LMDB's memory map is page cache, not heap.\n"
            "- The `null` engine does nothing; its time per op is the harness's own cost (best "
            "of 5 repetitions: its runs last milliseconds, so one preemption would double "
            "them).\n"
            "- Clock: %s.\n",
            (unsigned long long)g->key_size, (unsigned long long)g->value_size, nums,
            (unsigned long long)g->sync_ops, ops, scan_ops, bench_clock_name());
}

static void group_table(FILE *f, const report_ctx *c, const bench_row *rows, size_t n,
                        const bench_row *gr)
{
    char a[24], b[24];
    fprintf(f, "### %s, durability %s, %u thread%s", gr->workload, gr->durability, gr->threads,
            gr->threads > 1 ? "s" : "");
    if (c->multi_num)
        fprintf(f, ", %s records", md_count(gr->num, a, sizeof a));
    if (gr->rate)
        fprintf(f, ", %s ops/s offered", md_count(gr->rate, b, sizeof b));
    if (gr->cpu_load) /* --cpu-load */
        fprintf(f, ", beside %u busy-loop thread%s (`--cpu-load %u`)", gr->cpu_load,
                gr->cpu_load > 1 ? "s" : "", gr->cpu_load);
    fprintf(f, "\n\n");
    if (!strcmp(gr->workload, "recover")) {
        md_recover_table(f, c, rows, n, gr);
        return;
    }
    if (gr->rate)
        fprintf(f, "Open loop: latency runs from each operation's scheduled start (service times "
                   "in \"Open-loop latency\" below).\n\n");
    fprintf(f, "| engine | ops | ops/s | MB/s | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | "
               "write amp | space amp | fsyncs/op | peak mem | page cache | mem/key | open s | "
               "min 1 s |\n");
    fprintf(f, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for (size_t i = 0; i < n; i++) {
        const bench_row *r = &rows[i];
        if (!report_same_group(r, gr))
            continue;
        if (r->na) {
            fprintf(f, "| %s | n/a: %s |||||||||||||||| \n", r->engine, r->note);
            continue;
        }
        char mem[32], pc[32];
        fprintf(f, "| %s%s | %llu |", r->engine, r->note[0] ? " *" : "",
                (unsigned long long)r->ops);
        md_fig(f, r->ops_per_sec, "%.0f");
        md_fig(f, r->mb_per_sec, "%.2f");
        md_fig(f, r->p50_us, "%.2f");
        md_fig(f, r->p90_us, "%.2f");
        md_fig(f, r->p99_us, "%.2f");
        md_fig(f, r->p999_us, "%.2f");
        md_fig(f, r->max_us, "%.1f");
        md_fig(f, r->write_amp, "%.2f");
        md_fig(f, r->space_amp, "%.2f");
        md_fig(f, r->fsyncs_per_op, "%.3f");
        fprintf(f, " %s |", cli_human_bytes(r->peak_mem_bytes, mem, sizeof mem));
        if (r->page_cache_bytes == UINT64_MAX)
            fprintf(f, " – |");
        else
            fprintf(f, " %s |", cli_human_bytes(r->page_cache_bytes, pc, sizeof pc));
        md_fig(f, r->mem_per_key_bytes, "%.0f B");
        md_fig(f, r->open_seconds, "%.3f");
        md_fig(f, r->min_1s_fraction, "%.2f");
        fprintf(f, "\n");
    }
    for (size_t i = 0; i < n; i++)
        if (report_same_group(&rows[i], gr) && !rows[i].na && rows[i].note[0])
            fprintf(f, "\n\\* %s: %s (the figures cover the operations done).\n", rows[i].engine,
                    rows[i].note);
    fprintf(f, "\n");
}

const bench_row *md_find(const bench_row *rows, size_t n, const bench_row *gr, const char *engine)
{
    for (size_t i = 0; i < n; i++)
        if (report_same_group(&rows[i], gr) && !strcmp(rows[i].engine, engine) && !rows[i].na &&
            rows[i].ops_per_sec > 0)
            return &rows[i];
    return NULL;
}

static void ratio_section(FILE *f, const report_ctx *c, const bench_row *rows, size_t n,
                          const size_t *groups, size_t ng)
{
    const bench_cfg *g = c->cfg;
    const char *own[BENCH_MAX_ENGINES], *peers[BENCH_MAX_ENGINES];
    size_t no = 0, np = 0;
    for (size_t e = 0; e < g->n_engines; e++) {
        if (!strcmp(g->engines[e], BENCH_NULL_NAME))
            continue;
        if (bench_is_peer(g->engines[e]))
            peers[np++] = g->engines[e];
        else
            own[no++] = g->engines[e];
    }
    fprintf(f, "## kvlab engines against the peers\n\n");
    if (!no || !np) {
        fprintf(f, "No ratio: this run had %s.\n\n",
                !no && !np ? "neither kvlab engines nor peers"
                           : (!no ? "no kvlab engine" : "no peer"));
        return;
    }
    fprintf(f, "Throughput of each kvlab engine divided by each peer's in the same workload, "
               "mode and thread count (above 1: the kvlab engine is faster).\n\n");
    fprintf(f, "| workload | kvlab engine |");
    for (size_t p = 0; p < np; p++)
        fprintf(f, " / %s |", peers[p]);
    fprintf(f, "\n|---|---|");
    for (size_t p = 0; p < np; p++)
        fprintf(f, "--:|");
    fprintf(f, "\n");
    for (size_t k = 0; k < ng; k++) {
        const bench_row *gr = &rows[groups[k]];
        if (!strcmp(gr->workload, "recover"))
            continue; /* compared in "Open and recovery" */
        char label[160];
        md_group_label(c, gr, label, sizeof label);
        for (size_t o = 0; o < no; o++) {
            const bench_row *a = md_find(rows, n, gr, own[o]);
            fprintf(f, "| %s | %s |", label, own[o]);
            for (size_t p = 0; p < np; p++) {
                const bench_row *b = md_find(rows, n, gr, peers[p]);
                if (a && b)
                    fprintf(f, " %.2f |", a->ops_per_sec / b->ops_per_sec);
                else
                    fprintf(f, " n/a |");
            }
            fprintf(f, "\n");
        }
    }
    fprintf(f, "\n");
}

static void overhead_section(FILE *f, const report_ctx *c, const bench_row *rows, size_t n)
{
    overhead_row ov[256];
    size_t k = report_overhead(rows, n, ov, 256);
    fprintf(f, "## Harness overhead\n\n");
    if (!k) {
        fprintf(f, "Not measured: the run needs the `null` engine and at least one other "
                   "engine in the same closed-loop workload.\n\n");
        return;
    }
    size_t points = 0, over = 0;
    for (size_t i = 0; i < k; i++)
        if (!ov[i].scan) {
            points++;
            over += ov[i].percent > 5.0;
        }
    fprintf(f, "Time per operation of the `null` engine (the harness alone: keys, values, "
               "checks, clocks, histograms) against the fastest engine's in the same "
               "workload. The target: at most 5%% on every point-operation workload. Scans "
               "have no target: the harness checks every record a scan returns, so its cost "
               "grows with them; the scan table below puts it per returned record beside each "
               "engine's.\n\n");
    if (points) {
        fprintf(f, "| workload | null µs/op | fastest engine | its µs/op | overhead |\n"
                   "|---|--:|---|--:|--:|\n");
        for (size_t i = 0; i < k; i++) {
            if (ov[i].scan)
                continue;
            bench_row g;
            memset(&g, 0, sizeof g);
            memcpy(g.workload, ov[i].workload, sizeof g.workload);
            memcpy(g.durability, ov[i].durability, sizeof g.durability);
            g.threads = ov[i].threads;
            g.num = ov[i].num;
            char label[160];
            fprintf(f, "| %s | %.3f | %s | %.3f | %.1f%%%s |\n",
                    md_group_label(c, &g, label, sizeof label), ov[i].null_us, ov[i].fastest,
                    ov[i].fastest_us, ov[i].percent, ov[i].percent > 5.0 ? " (above 5%)" : "");
        }
        if (over)
            fprintf(f, "\n**%zu of %zu point-operation workloads are above the 5%% target.**\n",
                    over, points);
        else
            fprintf(f, "\nEvery point-operation workload is within the 5%% target.\n");
        double floor_ns = c->machine->clock_read_ns;
        if (floor_ns > 0)
            fprintf(f,
                    "\nOne read of the clock costs %.1f ns here, and every operation takes one "
                    "(its latency runs from the previous operation's end to its own), so the "
                    "harness's cost per operation cannot fall below it: against an engine whose "
                    "operation takes less than %.3f µs (20 reads), the 5%% target cannot be "
                    "met. kvlab still times every operation, as db_bench's and YCSB's "
                    "histograms do: the percentiles, the timeline and the `--rate` runs' "
                    "corrected latency are built from those times, and with only a sample "
                    "timed they would describe the sample.\n",
                    floor_ns, 20 * floor_ns / 1000.0);
        fprintf(f, "\n");
    }
    md_scan_overhead(f, c, rows, n);
}

/* Every run in durability sync beside the disk it ran on: the fdatasync latency probed just
 * before it, the one-thread bound 1 / mean, the run's share of it and the commits per
 * fdatasync (the group commit at work). */
static void sync_section(FILE *f, const bench_row *rows, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += !rows[i].na && rows[i].ops && isfinite(rows[i].sync_probe_mean_us);
    if (!k)
        return;
    fprintf(f, "## Durability sync against the disk\n\n"
               "Just before each run in `sync` (after the syncfs), the bench probed the "
               "directory's fdatasync latency again (a 4 KiB pwrite + fdatasync, 100 times): "
               "on shared storage it drifts by tens of percent within minutes, so the bound at "
               "the top of this report is stale by the time a late run starts. One thread "
               "cannot commit faster than 1 / that mean without sharing fdatasyncs; "
               "\"of bound\" is ops/s divided by it (group commit takes several threads "
               "above 1).\n\n");
    fprintf(f, "| workload | engine | threads | ops/s | fdatasync mean just before | bound "
               "(1 / mean) | of bound | commits per fsync |\n"
               "|---|---|--:|--:|--:|--:|--:|--:|\n");
    for (size_t i = 0; i < n; i++) {
        const bench_row *r = &rows[i];
        if (r->na || !r->ops || !isfinite(r->sync_probe_mean_us))
            continue;
        double bound = 1e6 / r->sync_probe_mean_us;
        fprintf(f, "| %s%s | %s | %u | %.0f | %.1f µs | %.0f/s | %.2f |", r->workload,
                report_load_label(r).s, r->engine, r->threads, r->ops_per_sec,
                r->sync_probe_mean_us, bound, r->ops_per_sec / bound);
        if (isfinite(r->fsyncs_per_op) && r->fsyncs_per_op > 0)
            fprintf(f, " %.1f |\n", 1.0 / r->fsyncs_per_op);
        else
            fprintf(f, " |\n");
    }
    fprintf(f, "\n");
}

static void plots_section(FILE *f, const report_ctx *c, const bench_row *rows, const size_t *groups,
                          size_t ng, size_t n)
{
    fprintf(f, "## Plots\n\n");
    if (!c->plots_made) {
        fprintf(f, "%s.\n\n", c->plots_note[0] ? c->plots_note : "No plots");
        return;
    }
    fprintf(f, "Each plot is also in PNG next to the SVG. `plots.gp` re-renders them.\n\n");
    fprintf(f, "![Throughput per workload](throughput.svg)\n\n");
    fprintf(f, "![Throughput against durability mode](durability.svg)\n\n");
    fprintf(f, "![Write and space amplification](amplification.svg)\n\n");
    for (size_t k = 0; k < ng; k++) {
        char slug[160];
        const bench_row *gr = &rows[groups[k]];
        if (!strcmp(gr->workload, "recover"))
            continue;
        bool any = false;
        for (size_t i = 0; i < n && !any; i++)
            any = report_same_group(&rows[i], gr) && !rows[i].na && rows[i].ops &&
                  strcmp(rows[i].engine, BENCH_NULL_NAME);
        if (!any)
            continue;
        report_slug(gr, slug, sizeof slug, c->multi_num, true);
        fprintf(f, "![Latency %s](latency-%s.svg)\n\n", slug, slug);
    }
}

bool report_md_write(const char *path, const report_ctx *c, const bench_row *rows, size_t n)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    fprintf(f, "# kvlab benchmark report\n\n");
    fprintf(f, "- started: %s, %.0f s in all\n- git commit: `%s`\n- command: `%s`\n\n",
            c->started_utc, c->total_seconds, c->commit, c->cfg->cmdline);
    if (c->error)
        fprintf(f,
                "**The benchmark stopped early: %s.** The tables hold the runs before "
                "it.\n\n",
                c->error);
    machine_section(f, c);
    method_section(f, c);
    md_memory_method(f, c, rows, n);
    md_config_section(f, c);
    size_t groups[256];
    size_t ng = report_groups(rows, n, groups, 256);
    fprintf(f, "## Results\n\nFiles: `results.csv` (one row per run), `results.json` (the same "
               "with raw counters, engine counters, the timelines, machine and options), "
               "`hgrm/` (each run's latency distribution).\n\n");
    for (size_t k = 0; k < ng; k++)
        group_table(f, c, rows, n, &rows[groups[k]]);
    ratio_section(f, c, rows, n, groups, ng);
    md_scaling_section(f, c, rows, n);
    md_open_section(f, c, rows, n);
    md_rate_section(f, c, rows, n);
    md_timeline_section(f, c, rows, n);
    sync_section(f, rows, n);
    overhead_section(f, c, rows, n);
    md_hgrm_section(f, c, rows, n);
    plots_section(f, c, rows, groups, ng, n);
    int bad = ferror(f);
    return fclose(f) == 0 && !bad;
}
