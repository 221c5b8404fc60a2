/* results.json (report.h), built with jansson. NaN figures become null. */
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "clock.h"
#include "report.h"

static json_t *real_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *bytes_or_null(uint64_t v)
{
    return v == UINT64_MAX ? json_null() : json_integer((json_int_t)v);
}

/* The timeline of a run: {"interval_s", "last_interval_s", "ops_per_sec": [...], "p99_us":
 * [...]} (a p99 is null for an interval without operations), or null. */
static json_t *timeline_json(const bench_timeline *t)
{
    if (!t->n)
        return json_null();
    json_t *j = json_object(), *ops = json_array(), *p99 = json_array();
    for (size_t i = 0; i < t->n; i++) {
        json_array_append_new(ops, json_real(t->ops_per_sec[i]));
        json_array_append_new(p99, real_or_null(t->p99_us[i]));
    }
    json_object_set_new(j, "interval_s", json_real(t->interval_s));
    json_object_set_new(j, "last_interval_s", json_real(t->last_s));
    json_object_set_new(j, "ops_per_sec", ops);
    json_object_set_new(j, "p99_us", p99);
    return j;
}

static json_t *machine_json(const machine_info *m)
{
    json_t *j = json_object();
    json_object_set_new(j, "cpu", json_string(m->cpu));
    json_object_set_new(j, "cores", json_integer(m->cores));
    json_object_set_new(j, "memory_bytes", json_integer((json_int_t)m->mem_bytes));
    json_object_set_new(j, "kernel", json_string(m->kernel));
    json_object_set_new(j, "fs_type", json_string(m->fs_type));
    json_object_set_new(j, "fs_mount", json_string(m->fs_source));
    json_object_set_new(j, "fs_in_memory", json_boolean(m->fs_in_memory));
    json_object_set_new(j, "compiler", json_string(m->compiler));
    json_object_set_new(j, "allocator", json_string(m->allocator));
    json_t *p = json_object();
    json_object_set_new(p, "what", json_string("pwrite 4 KiB + fdatasync, in the bench dir"));
    json_object_set_new(p, "probes", json_integer(m->probes));
    json_object_set_new(p, "p50_us", m->probes ? json_real(m->fdatasync_p50_us) : json_null());
    json_object_set_new(p, "mean_us", m->probes ? json_real(m->fdatasync_mean_us) : json_null());
    json_object_set_new(p, "p99_us", m->probes ? json_real(m->fdatasync_p99_us) : json_null());
    json_object_set_new(p, "max_us", m->probes ? json_real(m->fdatasync_max_us) : json_null());
    if (m->probe_error[0])
        json_object_set_new(p, "error", json_string(m->probe_error));
    json_object_set_new(j, "fdatasync_latency", p);
    json_object_set_new(j, "clock_read_ns", json_real(m->clock_read_ns));
    return j;
}

static json_t *options_json(const bench_cfg *c)
{
    json_t *j = json_object(), *a;
    char buf[32];
    json_object_set_new(j, "command", json_string(c->cmdline));
    json_object_set_new(j, "default_suite", json_boolean(c->is_default));
    a = json_array();
    for (size_t i = 0; i < c->n_engines; i++)
        json_array_append_new(a, json_string(c->engines[i]));
    json_object_set_new(j, "engines", a);
    a = json_array();
    for (size_t i = 0; i < c->n_workloads; i++)
        json_array_append_new(a, json_string(c->workloads[i]));
    json_object_set_new(j, "workloads", a);
    a = json_array();
    for (size_t i = 0; i < c->n_durability; i++)
        json_array_append_new(a, json_string(kv_durability_format(c->durability[i], buf, 32)));
    json_object_set_new(j, "durability", a);
    a = json_array();
    for (size_t i = 0; i < c->n_threads; i++)
        json_array_append_new(a, json_integer(c->threads[i]));
    json_object_set_new(j, "threads", a);
    json_object_set_new(j, "num", json_integer((json_int_t)c->num));
    a = json_array();
    for (size_t i = 0; i < c->n_nums; i++)
        json_array_append_new(a, json_integer((json_int_t)c->nums[i]));
    json_object_set_new(j, "nums", a);
    a = json_array();
    for (size_t i = 0; i < c->n_rates; i++)
        json_array_append_new(a, json_integer((json_int_t)c->rates[i]));
    json_object_set_new(j, "rates", a);
    json_object_set_new(j, "arrival",
                        json_string(c->arrival == ARRIVAL_POISSON ? "poisson" : "constant"));
    json_object_set_new(j, "ops", json_integer((json_int_t)c->ops));
    json_object_set_new(j, "sync_ops", json_integer((json_int_t)c->sync_ops));
    json_object_set_new(j, "scan_ops", json_integer((json_int_t)c->scan_ops));
    json_object_set_new(j, "key_size", json_integer((json_int_t)c->key_size));
    json_object_set_new(j, "value_size", json_integer((json_int_t)c->value_size));
    json_object_set_new(j, "cache_size", json_integer((json_int_t)c->cache_size));
    json_object_set_new(j, "seed", json_integer((json_int_t)c->seed));
    json_object_set_new(j, "max_seconds", json_real(c->max_seconds));
    json_object_set_new(j, "cpu_load", json_integer(c->cpu_load));
    json_object_set_new(j, "dir", json_string(c->dir));
    a = json_array();
    for (size_t i = 0; i < c->n_opts; i++)
        json_array_append_new(a, json_string(c->opts[i]));
    json_object_set_new(j, "engine_options", a);
    return j;
}

static json_t *row_json(const bench_row *r)
{
    json_t *j = json_object();
    json_object_set_new(j, "engine", json_string(r->engine));
    json_object_set_new(j, "workload", json_string(r->workload));
    json_object_set_new(j, "durability", json_string(r->durability));
    json_object_set_new(j, "threads", json_integer(r->threads));
    json_object_set_new(j, "cpu_load", json_integer(r->cpu_load)); /* busy-loop threads beside */
    json_object_set_new(j, "records", json_integer((json_int_t)r->num));
    json_object_set_new(j, "rate", r->rate ? json_integer((json_int_t)r->rate) : json_null());
    if (r->na) {
        json_object_set_new(j, "na", json_true());
        json_object_set_new(j, "note", json_string(r->note));
        return j;
    }
    json_object_set_new(j, "ops", json_integer((json_int_t)r->ops));
    json_object_set_new(j, "seconds", real_or_null(r->seconds));
    json_object_set_new(j, "ops_per_sec", real_or_null(r->ops_per_sec));
    json_object_set_new(j, "mb_per_sec", real_or_null(r->mb_per_sec));
    json_object_set_new(j, "p50_us", real_or_null(r->p50_us));
    json_object_set_new(j, "p90_us", real_or_null(r->p90_us));
    json_object_set_new(j, "p99_us", real_or_null(r->p99_us));
    json_object_set_new(j, "p999_us", real_or_null(r->p999_us));
    json_object_set_new(j, "max_us", real_or_null(r->max_us));
    json_object_set_new(j, "mean_us", real_or_null(r->mean_us));
    json_object_set_new(j, "latency_from",
                        json_string(r->rate ? "scheduled start (corrected for coordinated "
                                              "omission)"
                                            : "previous operation's end (closed loop)"));
    if (r->rate) {
        json_t *svc = json_object();
        json_object_set_new(svc, "p50_us", real_or_null(r->svc_p50_us));
        json_object_set_new(svc, "p90_us", real_or_null(r->svc_p90_us));
        json_object_set_new(svc, "p99_us", real_or_null(r->svc_p99_us));
        json_object_set_new(svc, "p999_us", real_or_null(r->svc_p999_us));
        json_object_set_new(svc, "max_us", real_or_null(r->svc_max_us));
        json_object_set_new(svc, "mean_us", real_or_null(r->svc_mean_us));
        json_object_set_new(j, "service_time", svc);
    }
    json_object_set_new(j, "write_amp", real_or_null(r->write_amp));
    json_object_set_new(j, "space_amp", real_or_null(r->space_amp));
    json_object_set_new(j, "fsyncs_per_op", real_or_null(r->fsyncs_per_op));
    json_object_set_new(j, "sync_probe_mean_us", real_or_null(r->sync_probe_mean_us));
    json_object_set_new(j, "peak_mem_bytes", json_integer((json_int_t)r->peak_mem_bytes));
    json_object_set_new(j, "page_cache_bytes", bytes_or_null(r->page_cache_bytes));
    json_object_set_new(j, "page_cache_method",
                        json_string(r->page_cache_method ? r->page_cache_method : "none"));
    json_object_set_new(j, "live_keys", json_integer((json_int_t)r->live_keys));
    json_object_set_new(j, "mem_per_key_bytes", real_or_null(r->mem_per_key_bytes));
    json_object_set_new(j, "open_s", real_or_null(r->open_seconds));
    json_object_set_new(j, "min_1s_fraction", real_or_null(r->min_1s_fraction));
    json_object_set_new(j, "records_per_op", real_or_null(report_records_per_op(r)));
    json_object_set_new(j, "hgrm", r->hgrm[0] ? json_string(r->hgrm) : json_null());
    if (!strcmp(r->workload, "recover")) {
        json_t *rec = json_object();
        json_object_set_new(rec, "kill_at_acked_records",
                            json_integer((json_int_t)r->recovery.kill_at));
        json_object_set_new(rec, "acked_records", json_integer((json_int_t)r->recovery.acked));
        json_object_set_new(rec, "found_records", json_integer((json_int_t)r->recovery.found));
        json_object_set_new(rec, "recovery_s", real_or_null(r->open_seconds));
        json_object_set_new(rec, "open_read_bytes", bytes_or_null(r->recovery.read_bytes));
        json_object_set_new(rec, "log_replayed_bytes", bytes_or_null(r->recovery.log_replayed));
        json_object_set_new(j, "recovery", rec);
    }
    json_object_set_new(j, "planned_ops", json_integer((json_int_t)r->planned_ops));
    json_object_set_new(j, "records_loaded", json_integer((json_int_t)r->records));
    json_object_set_new(j, "load_seconds", real_or_null(r->load_seconds));
    json_object_set_new(j, "key_size", json_integer((json_int_t)r->key_size));
    json_object_set_new(j, "value_size", json_integer((json_int_t)r->value_size));
    json_object_set_new(j, "io_source", json_string(r->io_source ? r->io_source : "none"));
    json_object_set_new(j, "user_bytes", json_integer((json_int_t)r->user_bytes));
    json_object_set_new(j, "file_bytes_written", json_integer((json_int_t)r->file_bytes_written));
    json_object_set_new(j, "disk_bytes", json_integer((json_int_t)r->disk_bytes));
    json_object_set_new(j, "live_bytes", json_integer((json_int_t)r->live_bytes));
    json_object_set_new(j, "sync_calls", json_integer((json_int_t)r->syncs));
    json_object_set_new(j, "proc_wchar", json_integer((json_int_t)r->wchar));
    json_object_set_new(j, "proc_write_bytes", json_integer((json_int_t)r->write_bytes));
    if (r->note[0])
        json_object_set_new(j, "note", json_string(r->note));
    json_t *x = json_object();
    for (size_t i = 0; i < r->n_extra; i++)
        json_object_set_new(x, r->extra[i].name, json_integer((json_int_t)r->extra[i].value));
    json_object_set_new(j, "engine_counters", x);
    json_object_set_new(j, "timeline", timeline_json(&r->timeline));
    return j;
}

bool report_json_write(const char *path, const report_ctx *ctx, const bench_row *rows, size_t n)
{
    json_t *root = json_object();
    json_object_set_new(root, "kvlab_bench_format", json_integer(1));
    json_object_set_new(root, "git_commit", json_string(ctx->commit));
    json_object_set_new(root, "started_utc", json_string(ctx->started_utc));
    json_object_set_new(root, "total_seconds", json_real(ctx->total_seconds));
    json_object_set_new(root, "machine", machine_json(ctx->machine));
    json_object_set_new(root, "clock", json_string(bench_clock_name()));
    json_object_set_new(root, "options", options_json(ctx->cfg));
    json_t *runs = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(runs, row_json(&rows[i]));
    json_object_set_new(root, "runs", runs);
    overhead_row ov[256];
    size_t no = report_overhead(rows, n, ov, 256);
    json_t *oa = json_array();
    for (size_t i = 0; i < no; i++)
        json_array_append_new(
            oa,
            json_pack("{s:s, s:s, s:i, s:I, s:b, s:f, s:f, s:s, s:f, s:f, s:o}", "workload",
                      ov[i].workload, "durability", ov[i].durability, "threads", (int)ov[i].threads,
                      "records", (json_int_t)ov[i].num, "scan", (int)ov[i].scan, "null_us_per_op",
                      ov[i].null_us, "records_per_op", ov[i].records_per_op, "fastest_engine",
                      ov[i].fastest, "fastest_us_per_op", ov[i].fastest_us, "overhead_percent",
                      ov[i].percent, "target_percent", ov[i].scan ? json_null() : json_real(5.0)));
    json_object_set_new(root, "harness_overhead", oa);
    json_object_set_new(root, "error", ctx->error ? json_string(ctx->error) : json_null());
    int rc = json_dump_file(root, path, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    json_decref(root);
    return rc == 0;
}
