/* The crash soak (crash.h: crash_soak_run): many seeded workloads, every crash point of each,
 * until each engine has its target of power-loss crash points: kvlab engines on faultfs across
 * their modes under random and torn (half the workloads with small sizes that bring rotations,
 * checkpoints, merges, flushes and compactions into reach), production peers through crashfs
 * per mode under random and torn. Results go to soak.csv, one row per (engine, model, mode,
 * policy), merged with the rows of other engines already there, and soak.md is rendered from
 * the whole CSV, so that a long soak can run in chunks (--engines). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crash_int.h"
#include "crashfs.h"

#define SOAK_OPS         200
#define SOAK_SMALL_OPS   400 /* the small-size workloads: as kvlab crash --matrix --small */
#define SOAK_SMALL_VALUE 400

/* One row of soak.csv. */
typedef struct soak_row {
    char engine[32], model[16], mode[32], policy[16];
    uint64_t runs, points, recoveries, violations, acked, lost, window_ms, seconds;
    char first[600]; /* first violation and the command that replays it; "" when none */
} soak_row;

static const char csv_head[] = "engine,model,durability,policy,runs,points,recoveries,violations,"
                               "acked_writes,lost_writes,lost_per_1000,max_loss_window_ms,"
                               "seconds,first_violation\n";

/* Copies src into dst (cap bytes), cut when longer. */
static void set(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Reads the rows of an existing soak.csv (none when it is missing). */
static size_t read_rows(const char *path, soak_row **out)
{
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = 0, cap = 0;
    char line[2048];
    bool head = true;
    while (fgets(line, sizeof line, f)) {
        if (head) {
            head = false;
            continue;
        }
        line[strcspn(line, "\n")] = '\0';
        char *fields[14];
        int k = 0;
        char *p = line;
        while (k < 14) {
            fields[k++] = p;
            char *comma = k < 14 ? strchr(p, ',') : NULL;
            if (!comma)
                break;
            *comma = '\0';
            p = comma + 1;
        }
        if (k < 13)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            soak_row *r = realloc(*out, cap * sizeof *r);
            if (!r)
                break;
            *out = r;
        }
        soak_row *r = &(*out)[n++];
        memset(r, 0, sizeof *r);
        set(r->engine, sizeof r->engine, fields[0]);
        set(r->model, sizeof r->model, fields[1]);
        set(r->mode, sizeof r->mode, fields[2]);
        set(r->policy, sizeof r->policy, fields[3]);
        uint64_t *num[] = {&r->runs, &r->points, &r->recoveries, &r->violations, &r->acked,
                           &r->lost, NULL,       &r->window_ms,  &r->seconds};
        for (int j = 0; j < 9; j++)
            if (num[j])
                *num[j] = strtoull(fields[4 + j], NULL, 10);
        if (k == 14)
            set(r->first, sizeof r->first, fields[13]);
    }
    fclose(f);
    return n;
}

static double per_1000(uint64_t lost, uint64_t acked)
{
    return acked ? 1000.0 * (double)lost / (double)acked : 0.0;
}

/* Writes soak.csv and soak.md from rows[0, n). */
static kv_status write_rows(const char *dir, const soak_row *rows, size_t n,
                            const crash_soak_opts *o)
{
    char *csvp = crash_strf("%s/soak.csv", dir), *mdp = crash_strf("%s/soak.md", dir);
    FILE *csv = fopen(csvp, "w"), *md = fopen(mdp, "w");
    kv_status ret = KV_OK;
    if (!csv || !md) {
        ret = kv_error(KV_IO, "crash: cannot write %s: %s", !csv ? csvp : mdp, strerror(errno));
        goto out;
    }
    fputs(csv_head, csv);
    for (size_t i = 0; i < n; i++) {
        const soak_row *r = &rows[i];
        fprintf(csv, "%s,%s,%s,%s,%llu,%llu,%llu,%llu,%llu,%llu,%.2f,%llu,%llu,%s\n", r->engine,
                r->model, r->mode, r->policy, (unsigned long long)r->runs,
                (unsigned long long)r->points, (unsigned long long)r->recoveries,
                (unsigned long long)r->violations, (unsigned long long)r->acked,
                (unsigned long long)r->lost, per_1000(r->lost, r->acked),
                (unsigned long long)r->window_ms, (unsigned long long)r->seconds, r->first);
    }
    fprintf(md, "# Crash soak\n\n");
    fprintf(md,
            "Written by `kvlab crash --soak` (`make crash-soak`), engine by engine; the rows of "
            "every engine are in [soak.csv](soak.csv). Each row is one engine, model, durability "
            "mode and power-loss policy: seeded `mixed` workloads of %d commits over 200 keys, "
            "`interval:2` paced 50 µs per commit "
            "(seeds from %llu up; the small-size ones %d commits of values up to %d bytes), each "
            "crashed at every one of its file-system operations, "
            "until the row had its share of the engine's target. kvlab engines run on faultfs "
            "(target %llu crash points per engine, shared equally by its modes and the policies "
            "`random` and `torn`); the production peers run through crashfs (target %llu per "
            "peer and mode, shared by `random` and `torn`). Every second workload runs with small "
            "sizes (`kvlab crash --matrix --small` lists them), so that log switches, "
            "checkpoints, merges, memtable flushes, compactions and manifest roll-overs happen "
            "within it. Lost writes are acknowledged commits missing "
            "after recovery (allowed in `none`, `os` and `interval`: a suffix); the window is "
            "how long before the crash the oldest lost commit had been acknowledged.\n\n",
            SOAK_OPS, (unsigned long long)o->seed, SOAK_SMALL_OPS, SOAK_SMALL_VALUE + 12,
            (unsigned long long)o->target, (unsigned long long)o->peer_target);
    fprintf(md, "| engine | model | durability | policy | workloads | crash points | "
                "violations | lost / 1000 | oldest lost (ms) | seconds |\n");
    fprintf(md, "|---|---|---|---|---:|---:|---:|---:|---:|---:|\n");
    uint64_t tp = 0, tv = 0;
    for (size_t i = 0; i < n; i++) {
        const soak_row *r = &rows[i];
        fprintf(md, "| %s | %s | %s | %s | %llu | %llu | %llu | %.1f | %llu | %llu |\n", r->engine,
                r->model, r->mode, r->policy, (unsigned long long)r->runs,
                (unsigned long long)r->points, (unsigned long long)r->violations,
                per_1000(r->lost, r->acked), (unsigned long long)r->window_ms,
                (unsigned long long)r->seconds);
        tp += r->points;
        tv += r->violations;
    }
    fprintf(md, "\n**Per engine:**");
    for (size_t i = 0; i < n; i++) {
        if (i && !strcmp(rows[i].engine, rows[i - 1].engine))
            continue;
        uint64_t p = 0, v = 0;
        for (size_t j = i; j < n && !strcmp(rows[j].engine, rows[i].engine); j++)
            p += rows[j].points, v += rows[j].violations;
        fprintf(md, "%s %s %llu crash points, %llu violations", i ? ";" : "", rows[i].engine,
                (unsigned long long)p, (unsigned long long)v);
    }
    fprintf(md, ". **In all: %llu crash points, %llu violations.**\n", (unsigned long long)tp,
            (unsigned long long)tv);
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        if (!rows[i].first[0])
            continue;
        if (!any)
            fprintf(md, "\nFirst violation of each row that had one:\n\n");
        any = true;
        fprintf(md, "- %s %s %s %s: %s\n", rows[i].engine, rows[i].model, rows[i].mode,
                rows[i].policy, rows[i].first);
    }
    if (o->n_exclude) {
        fprintf(md, "\nLeft out (known violations):");
        for (size_t i = 0; i < o->n_exclude; i++)
            fprintf(md, "%s `%s`", i ? "," : "", o->exclude[i]);
        fprintf(md, ".\n");
    }
out:
    if (csv && fclose(csv) != 0 && ret == KV_OK)
        ret = kv_error(KV_IO, "crash: writing %s failed", csvp);
    if (md && fclose(md) != 0 && ret == KV_OK)
        ret = kv_error(KV_IO, "crash: writing %s failed", mdp);
    free(csvp);
    free(mdp);
    return ret;
}

/* Keeps the text CSV-safe: no commas, no line breaks. */
static void sanitize(char *s)
{
    for (; *s; s++)
        if (*s == ',' || *s == '\n' || *s == '\r')
            *s = *s == ',' ? ';' : ' ';
}

/* Runs one row: workloads from seed o->seed up, every crash point, until `want` points. */
static kv_status soak_row_run(const crash_config *base, const crash_soak_opts *o,
                              const char *engine, crash_fs fs, kv_durability_kind mode,
                              kv_crash_policy policy, uint64_t want, soak_row *row)
{
    memset(row, 0, sizeof *row);
    crash_config c = *base;
    c.engine = engine;
    c.engine_vt = NULL;
    c.durability.kind = mode;
    c.durability.interval_ms = 2;
    c.pace_us = mode == KV_DURABILITY_INTERVAL ? 50 : 0; /* the syncer runs meanwhile */
    c.policy = policy;
    c.fs = fs;
    c.workload = "mixed";
    c.ops = SOAK_OPS;
    c.points = 0;
    c.at = 0;
    c.at_zero = false;
    char d[32];
    kv_durability_format(c.durability, d, sizeof d);
    snprintf(row->engine, sizeof row->engine, "%s", engine);
    snprintf(row->model, sizeof row->model, "%s", fs == CRASH_FS_FUSE ? "crashfs" : "faultfs");
    snprintf(row->mode, sizeof row->mode, "%s", d);
    snprintf(row->policy, sizeof row->policy, "%s", kv_crash_policy_name(policy));
    size_t nsmall = 0;
    const char *const *small = crash_small_options(engine, &nsmall);
    time_t t0 = time(NULL);
    for (uint64_t i = 0; row->points < want; i++) {
        c.seed = o->seed + i;
        bool use_small = small && (i & 1);
        c.options = use_small ? small : NULL;
        c.n_options = use_small ? nsmall : 0;
        c.ops = use_small ? SOAK_SMALL_OPS : SOAK_OPS;
        c.value_max = use_small ? SOAK_SMALL_VALUE : base->value_max;
        crash_result r;
        kv_status s = crash_run(&c, &r);
        row->runs++;
        row->points += r.points;
        row->recoveries += r.recoveries;
        row->violations += r.violations + (s != KV_OK);
        row->acked += r.acked_writes;
        row->lost += r.lost_writes;
        if (r.max_loss_window_us / 1000 > row->window_ms)
            row->window_ms = r.max_loss_window_us / 1000;
        if (!row->first[0] && (r.violations || s != KV_OK)) {
            char opts[200] = "";
            for (size_t j = 0; j < c.n_options; j++) {
                size_t l = strlen(opts);
                snprintf(opts + l, sizeof opts - l, " -o %s", c.options[j]);
            }
            char buf[900];
            snprintf(buf, sizeof buf,
                     "%s (replay: kvlab crash --engine %s --durability %s --ops %zu "
                     "--value-size %u --seed %llu --policy %s%s%s --at %llu -v)",
                     s != KV_OK ? kv_errmsg() : r.first_violation, engine, d, c.ops, c.value_max,
                     (unsigned long long)c.seed, row->policy,
                     fs == CRASH_FS_FUSE ? " --fs fuse" : "", opts,
                     (unsigned long long)r.first_bad);
            set(row->first, sizeof row->first, buf);
            sanitize(row->first);
        }
        if (s != KV_OK && r.points == 0)
            break; /* the run cannot be carried out: do not loop on it */
    }
    row->seconds = (uint64_t)(time(NULL) - t0);
    crash_logf(base, "soak: %s %s %s %s: %llu workloads, %llu points, %llu violations, %llu s\n",
               engine, row->model, d, row->policy, (unsigned long long)row->runs,
               (unsigned long long)row->points, (unsigned long long)row->violations,
               (unsigned long long)row->seconds);
    return KV_OK;
}

void crash_soak_opts_init(crash_soak_opts *o)
{
    memset(o, 0, sizeof *o);
    o->target = 100000;
    o->peer_target = 2000;
    o->seed = 1;
    o->out_dir = "results/crash";
}

static bool listed(const char *list, const char *name)
{
    if (!list || !*list)
        return true;
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && !strncmp(p, name, n))
            return true;
        if (!e)
            break;
        p = e + 1;
    }
    return false;
}

kv_status crash_soak_run(const crash_config *c, const crash_soak_opts *o, uint64_t *violations)
{
    *violations = 0;
    if (!o->out_dir || crash_mkdir_p(o->out_dir) != 0)
        return kv_error(KV_IO, "crash: cannot make %s: %s", o->out_dir ? o->out_dir : "(null)",
                        strerror(errno));
    char *csvp = crash_strf("%s/soak.csv", o->out_dir);
    soak_row *old = NULL;
    size_t nold = read_rows(csvp, &old);
    free(csvp);
    soak_row *rows = NULL;
    size_t n = 0, cap = 0;
    kv_status ret = KV_OK;
    const char *const *names = kv_engine_names();
    for (size_t i = 0; names[i] && ret == KV_OK; i++) {
        bool run = listed(o->engines, names[i]);
        if (!run) { /* keep the rows this engine has from an earlier chunk */
            for (size_t j = 0; j < nold; j++) {
                if (strcmp(old[j].engine, names[i]))
                    continue;
                if (n == cap) {
                    cap = cap ? cap * 2 : 64;
                    soak_row *r = realloc(rows, cap * sizeof *r);
                    if (!r) {
                        ret = kv_error(KV_NOMEM, "crash: out of memory");
                        break;
                    }
                    rows = r;
                }
                rows[n++] = old[j];
            }
            continue;
        }
        bool peer = crash_is_peer(names[i]);
        unsigned mask = kv_engine_durability_mask(names[i]);
        int nmodes = 0;
        for (int k = KV_DURABILITY_NONE; k <= KV_DURABILITY_SYNC; k++)
            nmodes += (mask & KV_DURABILITY_BIT(k)) != 0;
        const kv_crash_policy pols[] = {KV_CRASH_RANDOM, KV_CRASH_TORN};
        uint64_t per_row = peer ? (o->peer_target + 1) / 2
                                : (o->target + (uint64_t)nmodes * 2 - 1) / ((uint64_t)nmodes * 2);
        for (int k = KV_DURABILITY_NONE; k <= KV_DURABILITY_SYNC && ret == KV_OK; k++) {
            if (!(mask & KV_DURABILITY_BIT(k)))
                continue;
            for (int p = 0; p < 2 && ret == KV_OK; p++) {
                bool skip = false;
                for (size_t x = 0; x < o->n_exclude; x++) {
                    char key[64];
                    snprintf(key, sizeof key, "%s:%s", names[i], kv_crash_policy_name(pols[p]));
                    skip |= !strcmp(key, o->exclude[x]);
                }
                if (skip)
                    continue;
                if (n == cap) {
                    cap = cap ? cap * 2 : 64;
                    soak_row *r = realloc(rows, cap * sizeof *r);
                    if (!r) {
                        ret = kv_error(KV_NOMEM, "crash: out of memory");
                        break;
                    }
                    rows = r;
                }
                ret = soak_row_run(c, o, names[i], peer ? CRASH_FS_FUSE : CRASH_FS_FAULTFS,
                                   (kv_durability_kind)k, pols[p], per_row, &rows[n]);
                *violations += rows[n].violations;
                n++;
                /* after every row, so that an interrupted chunk keeps what it did */
                soak_row *merged = malloc((n + nold) * sizeof *merged);
                if (merged) {
                    size_t m = 0;
                    for (size_t j = 0; j < n; j++)
                        merged[m++] = rows[j];
                    for (size_t j = 0; j < nold; j++) {
                        bool seen = false;
                        for (size_t q = 0; q < n && !seen; q++)
                            seen = !strcmp(old[j].engine, rows[q].engine);
                        if (!seen)
                            merged[m++] = old[j];
                    }
                    kv_status w = write_rows(o->out_dir, merged, m, o);
                    if (ret == KV_OK)
                        ret = w;
                    free(merged);
                }
            }
        }
    }
    if (ret == KV_OK)
        ret = write_rows(o->out_dir, rows, n, o);
    free(rows);
    free(old);
    return ret;
}
