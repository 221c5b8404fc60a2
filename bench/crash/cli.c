/* `kvlab crash ...`: the command-line face of the crash checker (crash.h). */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crash_int.h"
#include "crashfs.h"
#include "damage.h"

static const char usage[] =
    "usage: kvlab crash --engine E [--durability none|os|interval:MS|sync] [--workload "
    "puts|mixed|batches]\n"
    "                   [--ops N] [--seed S] [--points all|K] [--at N] [--policy "
    "lose|keep|random|torn|torn-bytes]\n"
    "                   [-o key=value]... [--keys N] [--value-size N] [--sync-permille N]\n"
    "                   [--pace-us N] [--workdir DIR] [--keep-dirs] [--fs faultfs|fuse] [-v]\n"
    "                   [--small] [--allow-bugs -o bug=NAME]\n"
    "       kvlab crash --kill   ...   SIGKILL a child running the workload (--points = kills)\n"
    "       kvlab crash --faults ...   EIO on fdatasync, ENOSPC in a write, EIO on read\n"
    "       kvlab crash --damage ...   flips, zeroed sectors, cuts, appends, deleted, swapped,\n"
    "                                  replaced and stale files (--points = rounds; --out DIR)\n"
    "       kvlab crash --matrix [--out results/crash] [--points K] [--kills K]\n"
    "                   [--exclude ENGINE:POLICY]... [--small] ...   every engine x mode x\n"
    "                   model; --small: small-size options, 400 commits of values up to 412\n"
    "                   bytes, into matrix-small.{csv,md}\n"
    "       kvlab crash --soak [--out results/crash] [--engines E1,E2] [--target N]\n"
    "                   [--peer-target N] [--seed S] [--exclude ENGINE:POLICY]...\n"
    "                   many workloads, every crash point, until each engine has its target\n"
    "--at N replays one crash point (0: the uncrashed run: clean close, then the power loss);\n"
    "-v prints each point, and for a violation the keys that differ from the closest prefix.\n"
    "--small runs the engine with its small-size options (flushes, merges, checkpoints, segment\n"
    "switches and truncations within the run; printed) unless -o gives engine options.\n"
    "--allow-bugs lets -o bug=NAME switch on one of the engine's deliberate crash bugs (the\n"
    "lab, docs/lab.md; kvlab engines E lists them); it implies --small.\n"
    "Power loss (default): crash at every file-system operation (or K seeded ones) on faultfs,\n"
    "apply the policy, recover with posix and check the state against the durability mode's\n"
    "promise (docs/design.md section 3). --fs fuse runs the workload in a child process on a "
    "crashfs\n"
    "mount (the same model behind FUSE): the default for the production peers, which do their\n"
    "own I/O. Exit 0: every promise held; 1: a violation (the line to replay it is printed);\n"
    "2: bad usage; 3: the run could not be carried out (an I/O error, FUSE not available).\n"
    "Scratch directories: --workdir, else $TMPDIR, else /dev/shm, else /tmp.\n";

#ifndef KVLAB_SANITIZE /* the sanitizers' own handlers report more */
/* A fatal signal in the engine (say a segfault during recovery) ends the run: first say which
 * point it was, so it can be replayed (write(2) only: async-signal-safe). */
static void on_fatal(int sig)
{
    static const char pre[] = "\nkvlab crash: fatal signal during ";
    static const char post[] = "\n(replay it with the same flags and --at)\n";
    if (write(2, pre, sizeof pre - 1) < 0 ||
        write(2, crash_now_doing, strnlen(crash_now_doing, sizeof crash_now_doing)) < 0 ||
        write(2, post, sizeof post - 1) < 0) {
        /* nothing more to do */
    }
    raise(sig); /* SA_RESETHAND: the default action now */
}
#endif

static void install_fatal_handlers(void)
{
#ifndef KVLAB_SANITIZE /* the sanitizers' own handlers report more */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal;
    sa.sa_flags = (int)SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        sigaction(sigs[i], &sa, NULL);
#endif
}

static bool parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-')
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

typedef enum { MODE_POWER, MODE_KILL, MODE_FAULTS, MODE_DAMAGE, MODE_MATRIX, MODE_SOAK } run_mode;

static const char *mode_flag(run_mode m)
{
    switch (m) {
    case MODE_KILL:
        return " --kill";
    case MODE_FAULTS:
        return " --faults";
    case MODE_DAMAGE:
        return " --damage";
    default:
        return "";
    }
}

static void print_replay(const crash_config *c, run_mode m, uint64_t point)
{
    char d[32];
    printf("replay: kvlab crash%s --engine %s --durability %s --workload %s --ops %zu --seed "
           "%llu --policy %s --keys %u --value-size %u --sync-permille %u --pace-us %u",
           mode_flag(m), c->engine, kv_durability_format(c->durability, d, sizeof d), c->workload,
           c->ops, (unsigned long long)c->seed, kv_crash_policy_name(c->policy), c->keys,
           c->value_max, c->sync_permille, c->pace_us);
    if (c->allow_bugs)
        printf(" --allow-bugs");
    for (size_t i = 0; i < c->n_options; i++)
        printf(" -o %s", c->options[i]);
    if (m != MODE_FAULTS)
        printf(" --at %llu", (unsigned long long)point);
    if (m == MODE_POWER && c->fs == CRASH_FS_FUSE)
        printf(" --fs fuse");
    printf(" -v\n");
}

static void print_result(const crash_config *c, run_mode m, const crash_result *r)
{
    char d[32];
    static const char *const what[] = {"power loss",    "process kills", "I/O errors",
                                       "damaged files", "matrix",        "soak"};
    printf("crash (%s): engine %s, durability %s, workload %s, %zu commits, seed %llu", what[m],
           c->engine, kv_durability_format(c->durability, d, sizeof d), c->workload, c->ops,
           (unsigned long long)c->seed);
    if (m == MODE_POWER)
        printf(", policy %s%s", kv_crash_policy_name(c->policy),
               c->fs == CRASH_FS_FUSE ? ", through crashfs (FUSE)" : "");
    printf("\n");
    if (m == MODE_POWER)
        printf("  file-system operations in the run:  %llu\n", (unsigned long long)r->fs_ops);
    printf("  %-34s %llu\n",
           m == MODE_POWER    ? "crash points tried:"
           : m == MODE_KILL   ? "kills:"
           : m == MODE_FAULTS ? "scenarios:"
                              : "damage rounds:",
           (unsigned long long)r->points);
    printf("  recoveries:                         %llu\n", (unsigned long long)r->recoveries);
    if (m == MODE_DAMAGE) {
        printf("  errors reported:                    %llu\n", (unsigned long long)r->refused);
        printf("  allowed suffix losses (torn tail):  %llu (-v names the damages)\n",
               (unsigned long long)r->silent_losses);
    }
    if (m == MODE_POWER || m == MODE_KILL)
        printf("  acknowledged writes lost:           %llu of %llu (%.2f per 1,000; allowed: %s)\n",
               (unsigned long long)r->lost_writes, (unsigned long long)r->acked_writes,
               r->acked_writes ? 1000.0 * (double)r->lost_writes / (double)r->acked_writes : 0.0,
               c->durability.kind == KV_DURABILITY_SYNC                     ? "none"
               : m == MODE_KILL && c->durability.kind != KV_DURABILITY_NONE ? "none"
               : c->policy == KV_CRASH_KEEP && c->durability.kind != KV_DURABILITY_NONE
                   ? "none"
                   : "a suffix after the last kv_sync");
    if (m == MODE_POWER && r->lost_writes)
        printf("  oldest lost commit acknowledged:    %.1f ms before the crash\n",
               (double)r->max_loss_window_us / 1000.0);
    printf("  losses beyond the promise:          %llu\n", (unsigned long long)r->lost_violations);
    printf("  holes:                              %llu\n", (unsigned long long)r->holes);
    printf("  torn batches:                       %llu\n", (unsigned long long)r->torn_batches);
    printf("  phantom values:                     %llu\n", (unsigned long long)r->phantoms);
    printf("  recovery failures:                  %llu\n",
           (unsigned long long)r->recovery_failures);
    printf("  check failures:                     %llu\n", (unsigned long long)r->check_failures);
    printf("  other failures:                     %llu\n", (unsigned long long)r->other_failures);
    printf("  violations:                         %llu\n", (unsigned long long)r->violations);
    if (r->first_violation[0]) {
        printf("first violation (%s %llu): %s\n", m == MODE_POWER ? "point" : "round",
               (unsigned long long)r->first_bad, r->first_violation);
        print_replay(c, m, r->first_bad);
    }
}

/* Whether an option bug=... was given without --allow-bugs. */
static bool bug_without_allow(const crash_config *c)
{
    for (size_t i = 0; i < c->n_options && !c->allow_bugs; i++)
        if (!strncmp(c->options[i], "bug=", 4))
            return true;
    return false;
}

/* --small: when -o named no engine option (bug= aside), adds the engine's small-size options
 * (crash_small_options) to options (room for argc + its count was allocated) and prints them. */
static void add_small_options(crash_config *c, const char **options)
{
    for (size_t i = 0; i < c->n_options; i++)
        if (strncmp(options[i], "bug=", 4))
            return;
    size_t n = 0;
    const char *const *small = crash_small_options(c->engine, &n);
    if (!n)
        return;
    printf("small options for %s (flushes, merges, checkpoints and log switches within the run):",
           c->engine);
    for (size_t i = 0; i < n; i++) {
        options[c->n_options++] = small[i];
        printf(" -o %s", small[i]);
    }
    printf("\n");
    fflush(stdout); /* before the run's VIOLATION lines (stderr), also when stdout is a file */
}

int kvlab_cmd_crash(int argc, char **argv)
{
    crash_config c;
    crash_config_init(&c);
    c.log = stdout;
    run_mode m = MODE_POWER;
    const char *out = "results/crash";
    const char **options = calloc((size_t)argc + 8, sizeof *options); /* + small options */
    const char **exclude = calloc((size_t)argc + 1, sizeof *exclude);
    size_t n_exclude = 0;
    size_t kills = 20;
    crash_soak_opts so;
    crash_soak_opts_init(&so);
    bool points_given = false, fs_given = false, small = false, ops_given = false,
         size_given = false, out_given = false;
    crash_damage_table *dt = NULL;
    int rc = 2;
    if (!options || !exclude) {
        free(options);
        free(exclude);
        return 2;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n = 0;
        bool used = true; /* whether v was consumed */
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            rc = 0;
            goto done;
        } else if (!strcmp(a, "--kill")) {
            m = MODE_KILL, used = false;
        } else if (!strcmp(a, "--faults")) {
            m = MODE_FAULTS, used = false;
        } else if (!strcmp(a, "--damage")) {
            m = MODE_DAMAGE, used = false;
        } else if (!strcmp(a, "--matrix")) {
            m = MODE_MATRIX, used = false;
        } else if (!strcmp(a, "--soak")) {
            m = MODE_SOAK, used = false;
        } else if (!strcmp(a, "--small")) {
            small = true, used = false;
        } else if (!strcmp(a, "--allow-bugs")) {
            c.allow_bugs = true, used = false;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            c.verbose++, used = false;
        } else if (!strcmp(a, "--keep-dirs")) {
            c.keep_dirs = true, used = false;
        } else if (!v) {
            fprintf(stderr, "kvlab crash: %s needs a value\n%s", a, usage);
            goto done;
        } else if (!strcmp(a, "--engine")) {
            c.engine = v;
        } else if (!strcmp(a, "--durability")) {
            if (kv_durability_parse(v, &c.durability) != KV_OK) {
                fprintf(stderr, "kvlab crash: %s\n", kv_errmsg());
                goto done;
            }
        } else if (!strcmp(a, "--workload")) {
            c.workload = v;
        } else if (!strcmp(a, "--policy")) {
            if (kv_crash_policy_parse(v, &c.policy) != KV_OK) {
                fprintf(stderr, "kvlab crash: %s\n", kv_errmsg());
                goto done;
            }
        } else if (!strcmp(a, "--fs")) {
            if (crash_fs_parse(v, &c.fs) != KV_OK) {
                fprintf(stderr, "kvlab crash: %s\n", kv_errmsg());
                goto done;
            }
            fs_given = true;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--option")) {
            if (!strchr(v, '=')) {
                fprintf(stderr, "kvlab crash: -o wants key=value, got '%s'\n", v);
                goto done;
            }
            options[c.n_options++] = v;
        } else if (!strcmp(a, "--exclude")) {
            const char *colon = strchr(v, ':');
            kv_crash_policy p;
            if (!colon || colon == v || kv_crash_policy_parse(colon + 1, &p) != KV_OK) {
                fprintf(stderr, "kvlab crash: --exclude wants ENGINE:POLICY, got '%s'\n", v);
                goto done;
            }
            exclude[n_exclude++] = v;
        } else if (!strcmp(a, "--engines")) {
            so.engines = v;
        } else if (!strcmp(a, "--out")) {
            out = v, out_given = true;
        } else if (!strcmp(a, "--workdir")) {
            c.workdir = v;
        } else if (!strcmp(a, "--points") || !strcmp(a, "--rounds")) {
            points_given = true;
            if (!strcmp(v, "all"))
                c.points = 0;
            else if (parse_u64(v, &n) && n > 0)
                c.points = (size_t)n;
            else {
                fprintf(stderr, "kvlab crash: bad %s '%s' (all or a count)\n", a, v);
                goto done;
            }
        } else if (parse_u64(v, &n)) {
            if (!strcmp(a, "--ops") && n > 0)
                c.ops = (size_t)n, ops_given = true;
            else if (!strcmp(a, "--seed"))
                c.seed = n;
            else if (!strcmp(a, "--at") && (n > 0 || m == MODE_POWER)) {
                c.at = n;
                c.at_zero = n == 0;
            } else if (!strcmp(a, "--keys") && n > 0 && n <= 100000)
                c.keys = (uint32_t)n;
            else if (!strcmp(a, "--value-size") && n <= (1u << 20))
                c.value_max = (uint32_t)n, size_given = true;
            else if (!strcmp(a, "--sync-permille") && n <= 1000)
                c.sync_permille = (uint32_t)n;
            else if (!strcmp(a, "--pace-us") && n <= 1000000)
                c.pace_us = (uint32_t)n;
            else if (!strcmp(a, "--kills") && n > 0)
                kills = (size_t)n;
            else if (!strcmp(a, "--target") && n > 0)
                so.target = n;
            else if (!strcmp(a, "--peer-target") && n > 0)
                so.peer_target = n;
            else {
                fprintf(stderr, "kvlab crash: unknown option or bad value: %s %s\n%s", a, v, usage);
                goto done;
            }
        } else {
            fprintf(stderr, "kvlab crash: unknown option or bad value: %s %s\n%s", a, v, usage);
            goto done;
        }
        if (used)
            i++;
    }
    c.options = options;
    install_fatal_handlers();
    if (m == MODE_SOAK) {
        uint64_t viol = 0;
        so.seed = c.seed;
        so.out_dir = out;
        so.exclude = exclude;
        so.n_exclude = n_exclude;
        if (c.verbose == 0)
            c.log = stderr;
        kv_status s = crash_soak_run(&c, &so, &viol);
        if (s != KV_OK) {
            fprintf(stderr, "kvlab crash --soak: %s\n", kv_errmsg());
            rc = 3;
            goto done;
        }
        printf("soak written to %s/soak.csv and %s/soak.md: %llu violations\n", out, out,
               (unsigned long long)viol);
        rc = viol ? 1 : 0;
        goto done;
    }
    if (m == MODE_MATRIX) {
        uint64_t viol = 0;
        size_t pts = points_given ? c.points : 200;
        if (c.verbose == 0)
            c.log = stderr;
        crash_matrix_opts mo;
        crash_matrix_opts_init(&mo);
        mo.points = pts ? pts : 200;
        mo.kills = kills;
        mo.out_dir = out;
        mo.exclude = exclude;
        mo.n_exclude = n_exclude;
        mo.small = small;
        if (small && !ops_given)
            c.ops = 400;
        if (small && !size_given)
            c.value_max = 400;
        kv_status s = crash_matrix_run(&c, &mo, &viol);
        if (s != KV_OK) {
            fprintf(stderr, "kvlab crash --matrix: %s\n", kv_errmsg());
            rc = 3;
            goto done;
        }
        const char *stem = small ? "matrix-small" : "matrix";
        printf("matrix written to %s/%s.csv and %s/%s.md: %llu violations\n", out, stem, out, stem,
               (unsigned long long)viol);
        rc = viol ? 1 : 0;
        goto done;
    }
    if (!c.engine) {
        fprintf(stderr, "kvlab crash: --engine is required\n%s", usage);
        goto done;
    }
    if (!crash_find_engine(c.engine)) {
        fprintf(stderr, "kvlab crash: unknown engine '%s'; registered:", c.engine);
        for (const char *const *n = kv_engine_names(); *n; n++)
            fprintf(stderr, " %s", *n);
        fprintf(stderr, "\n");
        goto done;
    }
    if (bug_without_allow(&c)) {
        fprintf(stderr,
                "kvlab crash: -o bug=... switches on a deliberate crash bug; add --allow-bugs to "
                "run it (docs/lab.md)\n");
        goto done;
    }
    if (c.allow_bugs) {
        fprintf(stderr, "kvlab crash: warning: --allow-bugs: the engine may run with a "
                        "deliberate crash bug (docs/lab.md); never on data you keep\n");
        small = true;
    }
    if (small && m != MODE_MATRIX && !crash_is_peer(c.engine))
        add_small_options(&c, options);
    if ((c.at || c.at_zero) && !c.verbose)
        c.verbose = 1;
    if (!c.verbose && m != MODE_FAULTS)
        c.log = stderr; /* violations only */
    crash_result r;
    kv_status s;
    switch (m) {
    case MODE_KILL:
        s = crash_kill_run(&c, &r);
        break;
    case MODE_FAULTS:
        s = crash_faults_run(&c, &r);
        break;
    case MODE_DAMAGE:
        dt = calloc(1, sizeof *dt);
        s = dt ? crash_damage_campaign(&c, &r, dt) : kv_error(KV_NOMEM, "crash: out of memory");
        break;
    default:
        if (crash_is_peer(c.engine) && fs_given && c.fs == CRASH_FS_FAULTFS) {
            fprintf(stderr,
                    "kvlab crash: %s is a peer: it does its own I/O and cannot run on "
                    "faultfs; use --fs fuse (its default) or --kill\n",
                    c.engine);
            goto done;
        }
        if (crash_is_peer(c.engine))
            c.fs = CRASH_FS_FUSE;
        if (c.fs == CRASH_FS_FUSE) {
            char why[200];
            if (!crashfs_available(why, sizeof why)) {
                fprintf(stderr, "kvlab crash: %s\n", why);
                rc = 3;
                goto done;
            }
        }
        s = crash_run(&c, &r);
        break;
    }
    if (s != KV_OK) {
        fprintf(stderr, "kvlab %s\n", kv_errmsg()); /* messages start with "crash: " */
        rc = (s == KV_INVALID || s == KV_NOTSUP) ? 2 : 3;
        goto done;
    }
    print_result(&c, m, &r);
    rc = r.violations ? 1 : 0;
    if (dt)
        crash_damage_print(stdout, &c, dt);
    if (dt && out_given && crash_damage_write(out, &c, dt) != KV_OK) {
        fprintf(stderr, "kvlab %s\n", kv_errmsg());
        rc = 3;
    }
done:
    if (dt)
        crash_damage_table_free(dt);
    free(dt);
    free(options);
    free(exclude);
    return rc;
}
