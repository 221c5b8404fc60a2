/* The durability matrix (crash.h: crash_matrix_run): every registered engine x every durability
 * mode it declares; power-loss sweeps under the policies random, torn and torn-bytes on faultfs
 * (kvlab engines) and through crashfs (every engine, the production peers too), and a
 * process-kill sweep. For a kvlab engine the two models must agree: the same workload, seed and
 * policy give a violation on both or on neither. Writes matrix.csv and matrix.md. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crash_int.h"
#include "crashfs.h"

#define NPOL 3
static const kv_crash_policy matrix_policies[NPOL] = {KV_CRASH_RANDOM, KV_CRASH_TORN,
                                                      KV_CRASH_TORN_BYTES};

/* One sweep of a row: run or not, excluded or not, its counters and any harness error. */
typedef struct mx_cell {
    bool run, excluded;
    crash_result r;
    char err[240];
} mx_cell;

static double per_1000(uint64_t lost, uint64_t acked)
{
    return acked ? 1000.0 * (double)lost / (double)acked : 0.0;
}

static uint64_t cell_viol(const mx_cell *c)
{
    return c->r.violations + (c->err[0] != 0);
}

static bool excluded(const crash_matrix_opts *o, const char *engine, kv_crash_policy p)
{
    for (size_t i = 0; i < o->n_exclude; i++) {
        const char *x = o->exclude[i];
        const char *colon = strchr(x, ':');
        if (!colon)
            continue;
        size_t el = (size_t)(colon - x);
        if (strlen(engine) == el && !strncmp(x, engine, el) &&
            !strcmp(colon + 1, kv_crash_policy_name(p)))
            return true;
    }
    return false;
}

/* The CSV columns of one cell: points, violations, acked writes, lost writes ("-" when not run,
 * "excluded" when excluded). */
static void csv_cell(FILE *f, const mx_cell *c)
{
    if (c->excluded)
        fprintf(f, ",excluded,excluded,excluded,excluded");
    else if (!c->run)
        fprintf(f, ",-,-,-,-");
    else
        fprintf(f, ",%llu,%llu,%llu,%llu", (unsigned long long)c->r.points,
                (unsigned long long)cell_viol(c), (unsigned long long)c->r.acked_writes,
                (unsigned long long)c->r.lost_writes);
}

/* "0", "excl." or "-" for a Markdown violations cell. */
static void md_viol(FILE *f, const mx_cell *c)
{
    if (c->excluded)
        fprintf(f, "excl.");
    else if (!c->run)
        fprintf(f, "-");
    else
        fprintf(f, "%llu", (unsigned long long)cell_viol(c));
}

static void md_note(FILE *md, const char *engine, const char *mode, const char *what,
                    const mx_cell *c)
{
    if (c->r.first_violation[0])
        fprintf(md, "\n> %s %s, %s: %llu violations, the first at point %llu: %s\n", engine, mode,
                what, (unsigned long long)c->r.violations, (unsigned long long)c->r.first_bad,
                c->r.first_violation);
    if (c->err[0])
        fprintf(md, "\n> %s %s, %s: the run failed: %s\n", engine, mode, what, c->err);
}

void crash_matrix_opts_init(crash_matrix_opts *o)
{
    memset(o, 0, sizeof *o);
    o->points = 200;
    o->kills = 20;
    o->out_dir = "results/crash";
}

kv_status crash_matrix_run(const crash_config *c, const crash_matrix_opts *o, uint64_t *violations)
{
    *violations = 0;
    const char *out_dir = o->out_dir;
    if (!out_dir || crash_mkdir_p(out_dir) != 0)
        return kv_error(KV_IO, "crash: cannot make %s: %s", out_dir ? out_dir : "(null)",
                        strerror(errno));
    char why[200] = "";
    bool fuse = crashfs_available(why, sizeof why);
    const char *stem = o->small ? "matrix-small" : "matrix";
    char *csvp = crash_strf("%s/%s.csv", out_dir, stem),
         *mdp = crash_strf("%s/%s.md", out_dir, stem);
    FILE *csv = fopen(csvp, "w"), *md = fopen(mdp, "w");
    char *notes_buf = NULL;
    size_t notes_len = 0;
    FILE *notes = open_memstream(&notes_buf, &notes_len); /* first violations, after the table */
    kv_status ret = KV_OK;
    if (!csv || !md || !notes) {
        ret = kv_error(KV_IO, "crash: cannot write %s: %s", !csv ? csvp : mdp, strerror(errno));
        goto out;
    }
    time_t now = time(NULL);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    fprintf(csv, "engine,durability");
    static const char *const fsn[2] = {"faultfs", "crashfs"};
    for (int f = 0; f < 2; f++)
        for (int p = 0; p < NPOL; p++) {
            const char *pn = kv_crash_policy_name(matrix_policies[p]);
            fprintf(csv, ",%s_%s_points,%s_%s_violations,%s_%s_acked_writes,%s_%s_lost_writes",
                    fsn[f], pn, fsn[f], pn, fsn[f], pn, fsn[f], pn);
        }
    fprintf(csv, ",faultfs_random_lost_per_1000,crashfs_random_lost_per_1000,verdicts_agree,"
                 "kills,kill_violations,kill_acked_writes,kill_lost_writes,kill_lost_per_1000\n");
    fprintf(md, "# Durability matrix%s\n\n", o->small ? ", small sizes" : "");
    if (o->small) {
        fprintf(md,
                "Every engine with options that bring its rare paths into a run of %zu "
                "commits (values up to %u bytes): ",
                c->ops, c->value_max + 12);
        bool first = true;
        for (const char *const *nm = kv_engine_names(); *nm; nm++) {
            size_t n = 0;
            const char *const *op = crash_small_options(*nm, &n);
            if (!n)
                continue;
            fprintf(md, "%s%s", first ? "" : "; ", *nm);
            first = false;
            for (size_t j = 0; j < n; j++)
                fprintf(md, " `-o %s`", op[j]);
        }
        fprintf(md, ". No kills (they do not depend on sizes: see [matrix.md](matrix.md)).\n\n");
    }
    fprintf(md,
            "Generated by `kvlab crash --matrix` on %s: workload `%s`, %zu commits over %u keys, "
            "seed %llu. Power loss at up to %zu crash points per row and policy, on faultfs "
            "(kvlab engines: their I/O goes through kv_fs) and through crashfs (every engine: the "
            "database lives on a FUSE mount that applies the same model), under three policies: "
            "`random` (each unsynced write kept or lost whole), `torn` (each unsynced 512-byte "
            "sector kept or lost) and `torn-bytes` (each unsynced write kept, lost, or torn at "
            "byte boundaries); in every policy each directory's unsynced name changes are cut at "
            "a random point. %zu SIGKILLs per row on the real file system. Lost writes count "
            "acknowledged commits missing after recovery, per 1,000 acknowledged (power loss: "
            "policy `random`); they are allowed in `none`, `os` and `interval` under power loss "
            "(a suffix), never in `sync`, and never under a kill except in `none`. Any violation "
            "(a loss beyond the promise, a hole, half a batch, a phantom value, a failed recovery "
            "or kv_check) is counted. For a kvlab engine, \"agree\" says whether faultfs and "
            "crashfs gave the same verdict (violations or none) for every policy run on both.\n\n",
            when, c->workload ? c->workload : "mixed", c->ops, c->keys, (unsigned long long)c->seed,
            o->points, o->kills);
    if (!fuse)
        fprintf(md, "crashfs columns not run: %s.\n\n", why);
    for (size_t i = 0; i < o->n_exclude; i++)
        fprintf(md, "%s`%s`%s", i ? ", " : "Excluded (known violations, not run): ", o->exclude[i],
                i + 1 == o->n_exclude ? ".\n\n" : "");
    fprintf(md, "| engine | durability | faultfs points | faultfs violations (random / torn / "
                "torn-bytes) | lost / 1000 (faultfs) | crashfs points | crashfs violations "
                "(random / torn / torn-bytes) | lost / 1000 (crashfs) | agree | kills | kill "
                "violations | lost / 1000 (kill) |\n");
    fprintf(md, "|---|---|---:|---|---:|---:|---|---:|---|---:|---:|---:|\n");
    const char *const *names = kv_engine_names();
    for (size_t i = 0; names[i]; i++) {
        bool peer = crash_is_peer(names[i]);
        unsigned mask = kv_engine_durability_mask(names[i]);
        for (int k = KV_DURABILITY_NONE; k <= KV_DURABILITY_SYNC; k++) {
            if (!(mask & KV_DURABILITY_BIT(k)))
                continue;
            crash_config cc = *c;
            cc.engine = names[i];
            cc.engine_vt = NULL;
            cc.durability.kind = (kv_durability_kind)k;
            cc.durability.interval_ms =
                c->durability.kind == KV_DURABILITY_INTERVAL ? c->durability.interval_ms : 2;
            /* let the interval syncer run during the (otherwise millisecond-long) workload */
            if (k == KV_DURABILITY_INTERVAL && !cc.pace_us)
                cc.pace_us = 100;
            cc.at = 0;
            cc.at_zero = false;
            if (o->small) {
                size_t n = 0;
                cc.options = crash_small_options(names[i], &n);
                cc.n_options = n;
            }
            char mode[32];
            kv_durability_format(cc.durability, mode, sizeof mode);
            mx_cell ff[NPOL], fu[NPOL], kill;
            memset(ff, 0, sizeof ff);
            memset(fu, 0, sizeof fu);
            memset(&kill, 0, sizeof kill);
            for (int f = 0; f < 2; f++) {
                for (int p = 0; p < NPOL && o->points; p++) {
                    mx_cell *cell = f ? &fu[p] : &ff[p];
                    if (f == 0 && peer)
                        continue; /* a peer does its own I/O: no faultfs */
                    if (f == 1 && !fuse)
                        continue;
                    if (excluded(o, names[i], matrix_policies[p])) {
                        cell->excluded = true;
                        continue;
                    }
                    cc.policy = matrix_policies[p];
                    cc.fs = f ? CRASH_FS_FUSE : CRASH_FS_FAULTFS;
                    cc.points = o->points;
                    crash_logf(c, "matrix: %s %s: power loss on %s, policy %s, %zu points\n",
                               names[i], mode, fsn[f], kv_crash_policy_name(cc.policy), o->points);
                    cell->run = true;
                    if (crash_run(&cc, &cell->r) != KV_OK)
                        snprintf(cell->err, sizeof cell->err, "%s", kv_errmsg());
                }
            }
            cc.fs = CRASH_FS_FAULTFS;
            cc.policy = KV_CRASH_RANDOM;
            if (o->kills && !o->small) {
                cc.points = o->kills;
                crash_logf(c, "matrix: %s %s: %zu kills\n", names[i], mode, o->kills);
                kill.run = true;
                if (crash_kill_run(&cc, &kill.r) != KV_OK)
                    snprintf(kill.err, sizeof kill.err, "%s", kv_errmsg());
            }
            /* the verdicts of the two models, policy by policy */
            bool agree = true, compared = false;
            for (int p = 0; p < NPOL; p++) {
                if (!ff[p].run || !fu[p].run)
                    continue;
                compared = true;
                agree &= (cell_viol(&ff[p]) > 0) == (cell_viol(&fu[p]) > 0);
            }
            const char *agree_s = compared ? (agree ? "yes" : "NO") : "-";
            for (int p = 0; p < NPOL; p++)
                *violations += cell_viol(&ff[p]) + cell_viol(&fu[p]);
            *violations += cell_viol(&kill) + (compared && !agree);
            fprintf(csv, "%s,%s", names[i], mode);
            for (int p = 0; p < NPOL; p++)
                csv_cell(csv, &ff[p]);
            for (int p = 0; p < NPOL; p++)
                csv_cell(csv, &fu[p]);
            char l1[32] = "-", l2[32] = "-";
            if (ff[0].run)
                snprintf(l1, sizeof l1, "%.2f",
                         per_1000(ff[0].r.lost_writes, ff[0].r.acked_writes));
            if (fu[0].run)
                snprintf(l2, sizeof l2, "%.2f",
                         per_1000(fu[0].r.lost_writes, fu[0].r.acked_writes));
            fprintf(csv, ",%s,%s,%s", l1, l2, agree_s);
            if (kill.run)
                fprintf(csv, ",%llu,%llu,%llu,%llu,%.2f\n", (unsigned long long)kill.r.points,
                        (unsigned long long)cell_viol(&kill),
                        (unsigned long long)kill.r.acked_writes,
                        (unsigned long long)kill.r.lost_writes,
                        per_1000(kill.r.lost_writes, kill.r.acked_writes));
            else
                fprintf(csv, ",-,-,-,-,-\n");
            uint64_t ffp = 0, fup = 0;
            for (int p = 0; p < NPOL; p++) {
                ffp += ff[p].r.points;
                fup += fu[p].r.points;
            }
            fprintf(md, "| %s | %s | ", names[i], mode);
            if (peer)
                fprintf(md, "- | - | - |");
            else {
                fprintf(md, "%llu | ", (unsigned long long)ffp);
                for (int p = 0; p < NPOL; p++) {
                    md_viol(md, &ff[p]);
                    fprintf(md, p + 1 < NPOL ? " / " : " | ");
                }
                fprintf(md, "%.1f |", per_1000(ff[0].r.lost_writes, ff[0].r.acked_writes));
            }
            if (!fuse)
                fprintf(md, " - | - | - |");
            else {
                fprintf(md, " %llu | ", (unsigned long long)fup);
                for (int p = 0; p < NPOL; p++) {
                    md_viol(md, &fu[p]);
                    fprintf(md, p + 1 < NPOL ? " / " : " | ");
                }
                fprintf(md, "%.1f |", per_1000(fu[0].r.lost_writes, fu[0].r.acked_writes));
            }
            fprintf(md, " %s |", agree_s);
            if (kill.run)
                fprintf(md, " %llu | %llu | %.1f |\n", (unsigned long long)kill.r.points,
                        (unsigned long long)cell_viol(&kill),
                        per_1000(kill.r.lost_writes, kill.r.acked_writes));
            else
                fprintf(md, " - | - | - |\n");
            for (int f = 0; f < 2; f++)
                for (int p = 0; p < NPOL; p++) {
                    char what[80];
                    snprintf(what, sizeof what, "power loss on %s, policy %s", fsn[f],
                             kv_crash_policy_name(matrix_policies[p]));
                    md_note(notes, names[i], mode, what, f ? &fu[p] : &ff[p]);
                }
            md_note(notes, names[i], mode, "kill", &kill);
            fflush(csv);
            fflush(md);
        }
    }
    fflush(notes);
    if (notes_len)
        fprintf(md, "\nFirst violations:\n%s", notes_buf);
    fprintf(md,
            "\nReplay a row: `kvlab crash --engine E --durability M --workload %s --ops %zu "
            "--seed %llu --value-size %u --points %zu --policy P%s` (add `--fs fuse` for "
            "crashfs, the default for a peer; `--kill` for the kill columns; `--at N` for one "
            "point).\n",
            c->workload ? c->workload : "mixed", c->ops, (unsigned long long)c->seed, c->value_max,
            o->points, o->small ? " -o ...` with the options above (`" : "");
out:
    if (notes)
        fclose(notes);
    free(notes_buf);
    if (csv && fclose(csv) != 0 && ret == KV_OK)
        ret = kv_error(KV_IO, "crash: writing %s failed", csvp);
    if (md && fclose(md) != 0 && ret == KV_OK)
        ret = kv_error(KV_IO, "crash: writing %s failed", mdp);
    free(csvp);
    free(mdp);
    return ret;
}
