/* kvlab bench: flag parsing, the default suite and the run plan (bench.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "bench_null.h"
#include "cli.h"
#include "cpuload.h"

enum {
    F_ENGINES,
    F_WORKLOADS,
    F_NUM,
    F_OPS,
    F_SYNC_OPS,
    F_SCAN_OPS,
    F_KEY_SIZE,
    F_VALUE_SIZE,
    F_THREADS,
    F_DURABILITY,
    F_CACHE,
    F_SEED,
    F_DIR,
    F_OUT,
    F_OPTION,
    F_DEFAULT,
    F_MAX_SECONDS,
    F_PROBES,
    F_CPU_LOAD,
    F_KEEP,
    F_NO_PLOTS,
    F_QUIET,
    F_RATE,
    F_ARRIVAL,
    N_FLAGS
};

static const cli_flag flags[N_FLAGS] = {
    {"engines", 'e', CLI_VALUE, "LIST", "comma list; default: every registered engine + null"},
    {"workloads", 'w', CLI_VALUE, "LIST", "comma list (below); default: fillseq,readrandom"},
    {"num", 'n', CLI_VALUE, "N[,N2..]",
     "records: keys of a fill, records loaded; a list runs each (default 100k)"},
    {"ops", 0, CLI_VALUE, "N", "measured operations of non-fill workloads (default --num)"},
    {"sync-ops", 0, CLI_VALUE, "N", "operations of fillsync (default num/100, >= 100)"},
    {"scan-ops", 0, CLI_VALUE, "N", "operations of ycsb-e (default ops/10, >= 100)"},
    {"key-size", 'k', CLI_VALUE, "B", "key bytes (default 16)"},
    {"value-size", 'v', CLI_VALUE, "B", "value bytes (default 100)"},
    {"threads", 't', CLI_VALUE, "T[,T2..]", "client threads, a list runs each (default 1)"},
    {"durability", 'D', CLI_VALUE, "LIST", "modes: none,os,interval:MS,sync (default os)"},
    {"cache-size", 0, CLI_VALUE, "BYTES",
     "cache budget of every engine (K/M/G = 1024^n; default 64M; 0: each engine's own)"},
    {"seed", 's', CLI_VALUE, "S", "seed of every random choice (default 1)"},
    {"dir", 'd', CLI_VALUE, "DIR", "scratch directory for databases (default: next to kvlab)"},
    {"out", 'O', CLI_VALUE, "DIR", "where results go (default results/latest)"},
    {"option", 'o', CLI_MULTI, "[ENGINE:]K=V", "engine option, for one engine or all that know it"},
    {"default", 0, CLI_BOOL, "", "the default suite (make bench); see below"},
    {"max-seconds", 0, CLI_VALUE, "S",
     "stop a measured phase after S s; a longer load leaves its run out (default: none)"},
    {"probes", 0, CLI_VALUE, "N", "fdatasync probes of the machine description (default 200)"},
    {"cpu-load", 0, CLI_VALUE, "N", "N busy-loop threads in another process beside each run"},
    {"keep", 0, CLI_BOOL, "", "keep the database directories after each run"},
    {"no-plots", 0, CLI_BOOL, "", "do not run gnuplot"},
    {"quiet", 'q', CLI_BOOL, "", "no per-run summary lines on stdout"},
    {"rate", 0, CLI_VALUE, "OPS[,OPS2..]",
     "open loop: OPS operations/s across threads at scheduled times; a list runs each"},
    {"arrival", 0, CLI_VALUE, "KIND",
     "--rate schedule: constant (default) or poisson (seeded exponential gaps)"},
};

#define DEFAULT_NUM 100000
#define SUITE_NUM   200000
/* The default suite's extra fillsync run at 8 threads: group commit beside this many busy-loop
 * threads, one per core of a 2-core machine. */
#define SUITE_CPU_LOAD 2

void bench_print_help(void)
{
    cli_print_help(
        stdout, "kvlab bench [--default] [flags]",
        "Runs every engine x workload x durability x threads combination, each on a fresh\n"
        "database under --dir, and writes results.csv, results.json, report.md and gnuplot\n"
        "plots (SVG and PNG) into --out. Reads check every value against the one written.\n"
        "An engine that cannot honour a durability mode (or the key size) gets an n/a row.",
        flags, N_FLAGS);
    printf("\nworkloads (db_bench and YCSB core; N = --num, OPS = --ops):\n");
    for (const wl_def *w = wl_table; w->name; w++)
        printf("  %-13s %s\n", w->name, w->help);
    printf(
        "\nWorkloads after a load get a fresh database with N records put in random order\n"
        "(batches of 256, durability os, unmeasured), closed and reopened in the measured mode.\n"
        "YCSB: zipfian = YCSB's scrambled zipfian (theta 0.99, FNV hash of the rank), latest =\n"
        "skewed to the newest insert; an update writes a whole new value.\n"
        "\nrecover: N records are loaded in durability os by a child process (kvlab itself),\n"
        "killed with SIGKILL at a seeded point in the last quarter of the load; the run times\n"
        "the open that recovers (open_s), then checks that every acknowledged record is back.\n"
        "\n--num 100k,1M,10M runs everything at each size (the report adds scaling plots);\n"
        "--ops, --sync-ops and --scan-ops, when not given, follow each size.\n"
        "--rate 20k,50k issues operations at those rates (constant or Poisson gaps) and\n"
        "measures each latency from the operation's scheduled start, so that a stall counts\n"
        "in every request queued behind it (no coordinated omission), beside service time.\n"
        "\n--default: every registered engine and null x {fillseq, fillrandom, readrandom,\n"
        "ycsb-a, ycsb-b, ycsb-c, ycsb-e} in durability os with 1 thread, plus fillsync in sync\n"
        "with 1 and 8 threads, and at 8 threads again with --cpu-load 2; N = 200k unless\n"
        "--num is given, ycsb-e N/10 scans, fillsync N/20 ops, a 120 s limit per run.\n"
        "--engines, --num, --ops, --sync-ops, --scan-ops, --seed, --dir, --out and\n"
        "--max-seconds may be combined with it.\n"
        "\n--cpu-load N: a helper process runs N busy-loop threads during every measured\n"
        "phase (started before its first operation, stopped after its last), as other work\n"
        "on a server would; the report marks those runs.\n"
        "\nNumbers take suffixes: counts k, M, G (1000^n), sizes K, M, G (1024^n).\n"
        "Exit codes: 0 ok, 2 bad flag or value, 3 an engine error or a wrong value read\n"
        "(the results of the runs before it are still written).\n");
}

bool bench_is_peer(const char *engine)
{
    static const char *peers[] = {"leveldb", "rocksdb", "lmdb", "sqlite"};
    for (size_t i = 0; i < sizeof peers / sizeof *peers; i++)
        if (!strcmp(engine, peers[i]))
            return true;
    return false;
}

static int err2(char *err, size_t cap, const char *fmt, const char *a, const char *b)
{
    snprintf(err, cap, fmt, a, b);
    return 2;
}

static int parse_count(const char *flag, const char *text, uint64_t min, uint64_t max, bool binary,
                       uint64_t *out, char *err, size_t cap)
{
    char e[200];
    if (!cli_parse_u64(text, binary, min, max, out, e, sizeof e))
        return err2(err, cap, "--%s: %s", flag, e);
    return 0;
}

/* A comma list of counts (k/M/G) into out (at most max, each >= 1). */
static int parse_list(const char *flag, const char *text, uint64_t *out, size_t max, size_t *n,
                      char *err, size_t cap)
{
    char items[BENCH_MAX_NUMS > BENCH_MAX_RATES ? BENCH_MAX_NUMS : BENCH_MAX_RATES][48], e[200];
    int k = cli_split_list(text, items, max, e, sizeof e);
    if (k < 0)
        return err2(err, cap, "--%s: %s", flag, e);
    for (int i = 0; i < k; i++)
        if (parse_count(flag, items[i], 1, 1000000000000ull, false, &out[i], err, cap))
            return 2;
    *n = (size_t)k;
    return 0;
}

void bench_counts(const bench_cfg *cfg, uint64_t num, uint64_t *ops, uint64_t *sync_ops,
                  uint64_t *scan_ops)
{
    *ops = cfg->ops_given ? cfg->ops : num;
    /* The default suite runs fillsync longer (N/20: 10,000 commits at 200k) so that its 8-thread
     * run, the group-commit figure, lasts long enough to be stable: a run of a few hundred
     * milliseconds measures the first groups' warm-up more than the steady state. */
    if (cfg->sync_ops_given) {
        *sync_ops = cfg->sync_ops;
    } else {
        *sync_ops = num / (cfg->is_default ? 20 : 100);
        if (*sync_ops < 100)
            *sync_ops = 100;
    }
    if (cfg->scan_ops_given)
        *scan_ops = cfg->scan_ops;
    else
        *scan_ops = *ops / 10 > 100 ? *ops / 10 : 100;
}

static void add_engine(bench_cfg *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_engines; i++)
        if (!strcmp(cfg->engines[i], name))
            return;
    size_t n = strlen(name); /* a registered engine's name: far shorter than the slot */
    if (cfg->n_engines < BENCH_MAX_ENGINES && n < sizeof cfg->engines[0])
        memcpy(cfg->engines[cfg->n_engines++], name, n + 1);
}

static int parse_engines(bench_cfg *cfg, const char *text, char *err, size_t cap)
{
    char items[BENCH_MAX_ENGINES][48], e[200];
    const char *const *names = kv_engine_names();
    if (!text || !strcmp(text, "all")) {
        for (size_t i = 0; names[i]; i++)
            add_engine(cfg, names[i]);
        add_engine(cfg, BENCH_NULL_NAME);
        return 0;
    }
    int n = cli_split_list(text, items, BENCH_MAX_ENGINES, e, sizeof e);
    if (n < 0)
        return err2(err, cap, "--engines: %s%s", e, "");
    for (int i = 0; i < n; i++) {
        if (!strcmp(items[i], "all")) {
            for (size_t j = 0; names[j]; j++)
                add_engine(cfg, names[j]);
            add_engine(cfg, BENCH_NULL_NAME);
        } else if (!strcmp(items[i], BENCH_NULL_NAME) || kv_engine_exists(items[i])) {
            add_engine(cfg, items[i]);
        } else {
            char known[512] = "";
            for (size_t j = 0; names[j]; j++) {
                strncat(known, names[j], sizeof known - strlen(known) - 1);
                strncat(known, ", ", sizeof known - strlen(known) - 1);
            }
            strncat(known, BENCH_NULL_NAME, sizeof known - strlen(known) - 1);
            return err2(err, cap, "--engines: unknown engine '%s' (known: %s)", items[i], known);
        }
    }
    return 0;
}

static int parse_workloads(bench_cfg *cfg, const char *text, char *err, size_t cap)
{
    char e[200];
    int n = cli_split_list(text, cfg->workloads, BENCH_MAX_WORKLOADS, e, sizeof e);
    if (n < 0)
        return err2(err, cap, "--workloads: %s%s", e, "");
    for (int i = 0; i < n; i++)
        if (!wl_find(cfg->workloads[i]))
            return err2(err, cap,
                        "--workloads: unknown workload '%s'%s (kvlab bench --help "
                        "lists them)",
                        cfg->workloads[i], "");
    cfg->n_workloads = (size_t)n;
    return 0;
}

static int parse_threads(bench_cfg *cfg, const char *text, char *err, size_t cap)
{
    char items[BENCH_MAX_THREADS][48], e[200];
    int n = cli_split_list(text, items, BENCH_MAX_THREADS, e, sizeof e);
    if (n < 0)
        return err2(err, cap, "--threads: %s%s", e, "");
    for (int i = 0; i < n; i++) {
        uint64_t t;
        if (parse_count("threads", items[i], 1, 1024, false, &t, err, cap))
            return 2;
        cfg->threads[i] = (unsigned)t;
    }
    cfg->n_threads = (size_t)n;
    return 0;
}

static int parse_durability(bench_cfg *cfg, const char *text, char *err, size_t cap)
{
    char items[BENCH_MAX_DURABILITY][48], e[200];
    int n = cli_split_list(text, items, BENCH_MAX_DURABILITY, e, sizeof e);
    if (n < 0)
        return err2(err, cap, "--durability: %s%s", e, "");
    for (int i = 0; i < n; i++)
        if (kv_durability_parse(items[i], &cfg->durability[i]) != KV_OK)
            return err2(err, cap, "--durability: %s%s", kv_errmsg(), "");
    cfg->n_durability = (size_t)n;
    return 0;
}

/* Checks every -o against the chosen engines' declared options. */
static int check_opts(const bench_cfg *cfg, char *err, size_t cap)
{
    for (size_t i = 0; i < cfg->n_opts; i++) {
        const char *o = cfg->opts[i], *eq = strchr(o, '='), *colon = strchr(o, ':');
        if (!eq || eq == o || (colon && colon < eq && colon == o))
            return err2(err, cap, "-o '%s': want KEY=VALUE or ENGINE:KEY=VALUE%s", o, "");
        const char *key = colon && colon < eq ? colon + 1 : o;
        size_t klen = (size_t)(eq - key);
        bool used = false;
        for (size_t e = 0; e < cfg->n_engines; e++) {
            const char *name = cfg->engines[e];
            if (colon && colon < eq &&
                (strlen(name) != (size_t)(colon - o) || strncmp(name, o, (size_t)(colon - o))))
                continue;
            const char *const *help = kv_engine_option_help(name);
            for (size_t h = 0; help && help[h]; h++)
                if (!strncmp(help[h], key, klen) && (help[h][klen] == ':' || !help[h][klen]))
                    used = true;
        }
        if (!used)
            return err2(err, cap,
                        "-o '%s': no chosen engine has that option%s (kvlab engines "
                        "lists them)",
                        o, "");
    }
    return 0;
}

int bench_parse_args(int argc, char **argv, bench_cfg *cfg, char *err, size_t cap)
{
    cli_args a;
    memset(cfg, 0, sizeof *cfg);
    if (!cli_parse(flags, N_FLAGS, argc, argv, 0, &a))
        return err2(err, cap, "%s%s", a.err, "");
    if (a.help)
        return 1;
    size_t used = 0;
    for (int i = -1; i < argc && used + 2 < sizeof cfg->cmdline; i++) {
        const char *s = i < 0 ? "kvlab bench" : argv[i];
        int w =
            snprintf(cfg->cmdline + used, sizeof cfg->cmdline - used, "%s%s", i < 0 ? "" : " ", s);
        used += w > 0 ? (size_t)w : 0;
    }
    cfg->is_default = a.set[F_DEFAULT];
    cfg->keep = a.set[F_KEEP];
    cfg->no_plots = a.set[F_NO_PLOTS];
    cfg->quiet = a.set[F_QUIET];
    if (cfg->is_default) {
        static const int fixed[] = {F_WORKLOADS, F_THREADS, F_DURABILITY, F_CPU_LOAD};
        for (size_t i = 0; i < 4; i++)
            if (a.set[fixed[i]])
                return err2(err, cap,
                            "--%s cannot be combined with --default (the suite sets "
                            "it)%s",
                            flags[fixed[i]].name, "");
    }
    if (parse_engines(cfg, a.value[F_ENGINES], err, cap))
        return 2;
    if (parse_workloads(cfg,
                        cfg->is_default
                            ? "fillseq,fillrandom,readrandom,ycsb-a,ycsb-b,ycsb-c,"
                              "ycsb-e,fillsync"
                            : (a.set[F_WORKLOADS] ? a.value[F_WORKLOADS] : "fillseq,readrandom"),
                        err, cap))
        return 2;
    if (parse_threads(cfg, a.set[F_THREADS] ? a.value[F_THREADS] : "1", err, cap))
        return 2;
    if (parse_durability(cfg, a.set[F_DURABILITY] ? a.value[F_DURABILITY] : "os", err, cap))
        return 2;
    cfg->nums[0] = cfg->is_default ? SUITE_NUM : DEFAULT_NUM;
    cfg->n_nums = 1;
    if (a.set[F_NUM] &&
        parse_list("num", a.value[F_NUM], cfg->nums, BENCH_MAX_NUMS, &cfg->n_nums, err, cap))
        return 2;
    cfg->num = cfg->nums[0];
    cfg->ops_given = a.set[F_OPS];
    if (a.set[F_OPS] &&
        parse_count("ops", a.value[F_OPS], 1, 1000000000000ull, false, &cfg->ops, err, cap))
        return 2;
    cfg->sync_ops_given = a.set[F_SYNC_OPS];
    if (a.set[F_SYNC_OPS] && parse_count("sync-ops", a.value[F_SYNC_OPS], 1, 1000000000000ull,
                                         false, &cfg->sync_ops, err, cap))
        return 2;
    cfg->scan_ops_given = a.set[F_SCAN_OPS];
    if (a.set[F_SCAN_OPS] && parse_count("scan-ops", a.value[F_SCAN_OPS], 1, 1000000000000ull,
                                         false, &cfg->scan_ops, err, cap))
        return 2;
    bench_counts(cfg, cfg->num, &cfg->ops, &cfg->sync_ops, &cfg->scan_ops);
    cfg->n_rates = 0;
    if (a.set[F_RATE] &&
        parse_list("rate", a.value[F_RATE], cfg->rates, BENCH_MAX_RATES, &cfg->n_rates, err, cap))
        return 2;
    cfg->arrival = ARRIVAL_CONSTANT;
    if (a.set[F_ARRIVAL]) {
        if (!strcmp(a.value[F_ARRIVAL], "poisson"))
            cfg->arrival = ARRIVAL_POISSON;
        else if (strcmp(a.value[F_ARRIVAL], "constant"))
            return err2(err, cap, "--arrival: '%s' is neither constant nor poisson%s",
                        a.value[F_ARRIVAL], "");
    }
    cfg->key_size = 16;
    if (a.set[F_KEY_SIZE] && parse_count("key-size", a.value[F_KEY_SIZE], 1, KV_MAX_KEY - 1, true,
                                         &cfg->key_size, err, cap))
        return 2;
    cfg->value_size = 100;
    if (a.set[F_VALUE_SIZE] && parse_count("value-size", a.value[F_VALUE_SIZE], 0, KV_MAX_VALUE,
                                           true, &cfg->value_size, err, cap))
        return 2;
    cfg->cache_size = BENCH_DEFAULT_CACHE;
    if (a.set[F_CACHE] && parse_count("cache-size", a.value[F_CACHE], 0, UINT64_MAX, true,
                                      &cfg->cache_size, err, cap))
        return 2;
    cfg->seed = 1;
    if (a.set[F_SEED] &&
        parse_count("seed", a.value[F_SEED], 0, UINT64_MAX, false, &cfg->seed, err, cap))
        return 2;
    cfg->max_seconds = cfg->is_default ? 120 : 0;
    if (a.set[F_MAX_SECONDS]) {
        uint64_t s;
        if (parse_count("max-seconds", a.value[F_MAX_SECONDS], 0, 86400 * 7, false, &s, err, cap))
            return 2;
        cfg->max_seconds = (double)s;
    }
    uint64_t probes = 200;
    if (a.set[F_PROBES] &&
        parse_count("probes", a.value[F_PROBES], 0, 100000, false, &probes, err, cap))
        return 2;
    cfg->probes = (unsigned)probes;
    uint64_t load = 0;
    if (a.set[F_CPU_LOAD] &&
        parse_count("cpu-load", a.value[F_CPU_LOAD], 0, CPULOAD_MAX, false, &load, err, cap))
        return 2;
    cfg->cpu_load = (unsigned)load;
    cfg->dir_given = a.set[F_DIR];
    if (a.set[F_DIR] && (!a.value[F_DIR][0] || strlen(a.value[F_DIR]) >= 900))
        return err2(err, cap, "--dir: '%s' is empty or too long%s", a.value[F_DIR], "");
    snprintf(cfg->dir, sizeof cfg->dir, "%s", a.set[F_DIR] ? a.value[F_DIR] : "");
    if (a.set[F_OUT] && (!a.value[F_OUT][0] || strlen(a.value[F_OUT]) >= 900))
        return err2(err, cap, "--out: '%s' is empty or too long%s", a.value[F_OUT], "");
    snprintf(cfg->out, sizeof cfg->out, "%s", a.set[F_OUT] ? a.value[F_OUT] : "results/latest");
    for (size_t i = 0; i < a.n_multi && cfg->n_opts < BENCH_MAX_OPTS; i++)
        cfg->opts[cfg->n_opts++] = a.multi[i];
    return check_opts(cfg, err, cap) ? 2 : 0;
}

/* ---- the plan ---- */

/* Adds the runs of every engine for workload w in mode d with threads at num records, once per
 * --rate (or once, closed loop, without rates; recover is always closed loop). */
static size_t add_runs(const bench_cfg *cfg, run_spec *r, size_t n, const wl_def *w,
                       kv_durability d, unsigned threads, uint64_t num)
{
    uint64_t ops, sync_ops, scan_ops;
    bench_counts(cfg, num, &ops, &sync_ops, &scan_ops);
    size_t n_rates = cfg->n_rates && w->kind != WL_RECOVER ? cfg->n_rates : 1;
    for (size_t k = 0; k < n_rates; k++)
        for (size_t e = 0; e < cfg->n_engines; e++) {
            run_spec *s = &r[n++];
            s->engine = cfg->engines[e];
            s->wl = w;
            s->durability = d;
            s->threads = threads;
            s->cpu_load = cfg->cpu_load;
            s->num = num;
            s->rate = cfg->n_rates && w->kind != WL_RECOVER ? cfg->rates[k] : 0;
            s->records = w->needs_load || w->kind == WL_RECOVER ? num : 0;
            switch (w->kind) {
            case WL_FILLSEQ:
            case WL_FILLRANDOM:
            case WL_RECOVER:
                s->ops = num;
                break;
            case WL_FILLSYNC:
                s->ops = sync_ops;
                break;
            case WL_DELETERANDOM: /* each key at most once */
                s->ops = ops < num ? ops : num;
                break;
            default:
                s->ops = w->scan > 0 ? scan_ops : ops;
                break;
            }
        }
    return n;
}

bool bench_plan(const bench_cfg *cfg, run_spec **out, size_t *n_out, char *err, size_t cap)
{
    /* Keys must number every record, inserts included (at most ops of them). */
    for (size_t k = 0; k < cfg->n_nums; k++) {
        uint64_t ops, sync_ops, scan_ops, num = cfg->nums[k];
        bench_counts(cfg, num, &ops, &sync_ops, &scan_ops);
        uint64_t most = num + (ops > scan_ops ? ops : scan_ops) + sync_ops;
        if (kvb_digits(most) > cfg->key_size) {
            snprintf(err, cap, "--key-size %llu cannot number %llu records (needs %zu bytes)",
                     (unsigned long long)cfg->key_size, (unsigned long long)most, kvb_digits(most));
            return false;
        }
    }
    size_t per_num = cfg->n_engines * cfg->n_workloads * cfg->n_durability * cfg->n_threads +
                     cfg->n_engines * 3 + 1;
    size_t max = per_num * cfg->n_nums * (cfg->n_rates ? cfg->n_rates : 1);
    run_spec *r = calloc(max, sizeof *r);
    if (!r) {
        snprintf(err, cap, "out of memory");
        return false;
    }
    kv_durability sync = {KV_DURABILITY_SYNC, 0};
    size_t n = 0;
    for (size_t k = 0; k < cfg->n_nums; k++) {
        uint64_t num = cfg->nums[k];
        for (size_t w = 0; w < cfg->n_workloads; w++) {
            const wl_def *wl = wl_find(cfg->workloads[w]);
            if (wl->kind == WL_FILLSYNC) {
                /* Always durability sync (once, whatever --durability lists). */
                if (cfg->is_default) {
                    n = add_runs(cfg, r, n, wl, sync, 1, num);
                    n = add_runs(cfg, r, n, wl, sync, 8, num);
                    size_t loaded = n;
                    n = add_runs(cfg, r, n, wl, sync, 8, num);
                    while (loaded < n)
                        r[loaded++].cpu_load = SUITE_CPU_LOAD;
                } else {
                    for (size_t t = 0; t < cfg->n_threads; t++)
                        n = add_runs(cfg, r, n, wl, sync, cfg->threads[t], num);
                }
                continue;
            }
            for (size_t d = 0; d < cfg->n_durability; d++)
                for (size_t t = 0; t < cfg->n_threads; t++)
                    n = add_runs(cfg, r, n, wl, cfg->durability[d], cfg->threads[t], num);
        }
    }
    *out = r;
    *n_out = n;
    return true;
}
