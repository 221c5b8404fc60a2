/* crash.h: kvlab's crash-consistency checker (docs/design.md sections 3 and 5).
 *
 * For an engine and a durability mode it proves the mode's promise by experiment:
 *
 *  - power loss (crash_run): runs a seeded workload on faultfs (common/faultfs.h), stops the
 *    "process" at file-system operation n for every n (or a seeded sample of them), applies the
 *    power-loss model (lose / keep / random / torn), reopens with the real posix layer and
 *    compares the recovered state with an oracle (crash_oracle.h). This is the technique of
 *    ALICE (Pillai et al., "All File Systems Are Not Created Equal", OSDI 2014) and of
 *    LevelDB's fault_injection_test, applied to every operation index. With fs CRASH_FS_FUSE the
 *    same sweep runs the workload in a child process on a crashfs mount (crashfs.h: the same
 *    model behind FUSE), so that engines doing their own I/O, the production peers, lose power
 *    too.
 *  - process kills (crash_kill_run): a forked child runs the workload on the real file system,
 *    reports each acknowledged commit through a pipe, and is killed with SIGKILL at a seeded
 *    moment; works for the production peers too (they do their own I/O).
 *  - I/O errors (crash_faults_run): EIO on fdatasync must poison the handle (PostgreSQL's 2018
 *    "fsyncgate"), ENOSPC in a write must give KV_NOSPACE without corruption, EIO on read must
 *    give KV_IO, never wrong data.
 *  - damaged files (crash_damage_run): bit flips, truncations and zeroed ranges in a directory
 *    an engine wrote; reopening must report KV_CORRUPTION/KV_IO or give a legal state, never
 *    crash, hang or leak (each round runs in a forked child with an alarm).
 *  - the durability matrix (crash_matrix_run): every engine x every mode x both models x three
 *    policies, CSV + Markdown; the soak (crash_soak_run): the same, far longer, in chunks.
 *
 * The legal states (docs/design.md section 3): after any crash the state equals the result of some
 * prefix of the acknowledged commits, possibly followed by the one in-flight commit: never a
 * hole, never a value that was not written, never half a batch. How long the prefix must be
 * depends on the mode: `sync` loses nothing acknowledged; under a process crash (policy keep or
 * a kill) `os`, `interval` and `sync` lose nothing acknowledged; a completed kv_sync or kv_close
 * makes everything before it durable in every mode. */
#ifndef KVLAB_CRASH_H
#define KVLAB_CRASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "faultfs.h"
#include "kv_engine.h"

/* Where a power-loss sweep runs the engine. */
typedef enum crash_fs {
    CRASH_FS_FAULTFS = 0, /* in this process, on faultfs (kvlab engines: their I/O goes through
                             kv_fs) */
    CRASH_FS_FUSE,        /* in a child process whose database lives on a crashfs mount
                             (crashfs.h): any engine, the production peers too */
} crash_fs;

/* Parses "faultfs" or "fuse". Errors: KV_INVALID naming the text. */
kv_status crash_fs_parse(const char *text, crash_fs *out);
const char *crash_fs_name(crash_fs fs);

/* What a run checks. Initialise with crash_config_init() and change what you need. */
typedef struct crash_config {
    const char *engine;         /* registry name ("wal", "btree", ...); ignored if engine_vt */
    const kv_engine *engine_vt; /* an engine outside the registry (tests' toy), or NULL */
    kv_durability durability;   /* default os */
    const char *workload;       /* "puts", "mixed" (default) or "batches" */
    size_t ops;                 /* commits in the workload (puts, deletes, batches, syncs);
                                   default 200 */
    uint64_t seed;              /* workload and crash choices; default 1 */
    size_t points; /* power loss: crash points to try, 0 = every operation index (default);
                      kill: number of kills (0 = 20); damage: rounds (0 = 50) */
    uint64_t at;   /* replay only crash point (or kill round, damage round) `at`; 0 = off */
    bool at_zero;  /* power loss: replay only point 0, the uncrashed run (clean kv_close, then
                      the power loss): `--at 0` */
    kv_crash_policy policy;     /* power-loss policy; default random */
    crash_fs fs;                /* power loss: faultfs (default) or crashfs */
    const char *const *options; /* engine options "key=value", n_options of them (not owned) */
    size_t n_options;
    uint32_t keys;          /* distinct keys, 1 to 100,000; default 200 */
    uint32_t value_max;     /* values are 12 to 12+value_max bytes (value_max at most 1 MiB);
                               default 100 */
    uint32_t sync_permille; /* chance per commit of a kv_sync call, in 1/1000; default 10 */
    const char *workdir;    /* scratch directories go below; NULL = $TMPDIR, else /dev/shm
                               when writable (faultfs models durability itself, so a memory
                               file system only saves fsync time), else /tmp */
    FILE *log;              /* violations and progress; NULL = silent */
    int verbose;            /* >= 1: one line per crash point, and for a violation the keys
                               that differ from the closest prefix; 0: violations only */
    bool keep_dirs;         /* keep the directory of a failing point (for kvlab dump) */
    uint32_t pace_us;       /* sleep after each commit, in microseconds (lets an interval:MS
                               syncer run during the workload); default 0 */
    bool allow_bugs;        /* pass kv_options.allow_bugs: the option bug=NAME may switch on
                               one of the engine's deliberate crash bugs (docs/lab.md); default
                               false */
} crash_config;

/* Defaults as documented in crash_config. */
void crash_config_init(crash_config *c);

/* Counters of one run. All counts are summed over crash points (or kills, or damage rounds). */
typedef struct crash_result {
    uint64_t fs_ops;             /* counted faultfs operations of the full run (power loss) */
    uint64_t points;             /* crash points tried (kills, damage rounds) */
    uint64_t recoveries;         /* reopens that succeeded */
    uint64_t recovery_failures;  /* reopens that failed (a violation) */
    uint64_t check_failures;     /* kv_check failures after recovery (a violation) */
    uint64_t acked_writes;       /* acknowledged state-changing commits, summed over points */
    uint64_t lost_writes;        /* of those, missing after recovery (allowed or not) */
    uint64_t lost_violations;    /* points that lost more than the mode allows */
    uint64_t holes;              /* points whose state is no prefix at all */
    uint64_t torn_batches;       /* points showing half a batch */
    uint64_t phantoms;           /* points with a value or key never written */
    uint64_t other_failures;     /* engine errors without a crash, harness-visible misbehaviour
                                    (crash or hang in damage rounds, wrong status codes) */
    uint64_t max_loss_window_us; /* power loss: the longest time between the acknowledgement
                                    of a lost commit and the crash, in microseconds; for
                                    interval:MS it must stay near MS (a violation above
                                    2 x MS + 1 s, a bound loose enough for loaded machines) */
    uint64_t refused;            /* damage rounds where the open said KV_CORRUPTION or KV_IO
                                    (allowed) */
    uint64_t silent_losses;      /* damage rounds that opened a legal state that lost data with
                                    no call (open, kv_check, iterator, kv_get) reporting any
                                    error: allowed (a cut log tail looks like this), but a bit
                                    flip inside a file should be detected; a figure, not a
                                    violation */
    uint64_t violations;         /* points with any violation */
    uint64_t first_bad;          /* first violating point (0: the uncrashed counting run) */
    char first_violation[512];   /* its description; "" when there was no violation */
} crash_result;

/* Power-loss sweep on faultfs or (c->fs CRASH_FS_FUSE) through crashfs, as described at the
 * top. Fills *res (zeroed first). Returns KV_OK when the run could be carried out (violations
 * are counted in *res, not returned), KV_INVALID (bad config, unknown engine, mode the engine
 * lacks: message set), KV_IO (scratch directories could not be made; through crashfs also
 * when FUSE is not available here, the message "crash: FUSE is not available: ..." saying why
 * in one line), or the error of the uncrashed counting run. */
kv_status crash_run(const crash_config *c, crash_result *res);

/* Process-kill sweep on the real file system: c->points kills (default 20), each a fresh
 * directory and child process. Any registered engine, peers included. Returns as crash_run. */
kv_status crash_kill_run(const crash_config *c, crash_result *res);

/* The I/O-error scenarios on faultfs (fdatasync EIO -> KV_POISONED; write ENOSPC ->
 * KV_NOSPACE and a clean reopen; read EIO -> KV_IO or correct data). res->points counts the
 * scenarios run, res->violations the failed ones (each described in c->log). Returns as
 * crash_run. */
kv_status crash_faults_run(const crash_config *c, crash_result *res);

/* The damaged-directory harness: one clean directory written by the workload, then c->points
 * rounds (default 50), each a copy damaged by a seeded bit flip, truncation or zeroed range,
 * reopened with posix in a forked child (alarm 30 s). Returns as crash_run. */
kv_status crash_damage_run(const crash_config *c, crash_result *res);

/* What the durability matrix runs besides the base config. */
typedef struct crash_matrix_opts {
    size_t points;              /* power loss: crash points per row, model and policy; 0 = none
                                   (default 200) */
    size_t kills;               /* SIGKILLs per row; 0 = none (default 20) */
    const char *out_dir;        /* matrix.csv and matrix.md go here (made); default results/crash */
    const char *const *exclude; /* "ENGINE:POLICY" sweeps left out (known violations), n_exclude */
    size_t n_exclude;
    bool small; /* each engine with its small-size options (log switches, flushes, checkpoints
                   within the run), into matrix-small.csv and matrix-small.md, without kills */
} crash_matrix_opts;

/* Defaults as documented in crash_matrix_opts. */
void crash_matrix_opts_init(crash_matrix_opts *o);

/* The durability matrix: for every engine of the registry and every durability mode it
 * declares, power-loss sweeps of o->points crash points under the policies random, torn and
 * torn-bytes, on faultfs (kvlab engines only: the peers do their own I/O) and through crashfs
 * (every engine; left out with a note when FUSE is not available), and o->kills process kills;
 * base config c (engine, durability, policy and fs ignored). For a kvlab engine the two models'
 * verdicts are compared per policy; a difference counts as a violation. Writes
 * out_dir/matrix.csv and out_dir/matrix.md. *violations = total. Errors: KV_IO (cannot write),
 * others as crash_run. */
kv_status crash_matrix_run(const crash_config *c, const crash_matrix_opts *o, uint64_t *violations);

/* What the crash soak runs (soak.c). */
typedef struct crash_soak_opts {
    uint64_t target;            /* kvlab engines: power-loss crash points per engine, on faultfs,
                                   shared by its modes and the policies random and torn
                                   (default 100,000) */
    uint64_t peer_target;       /* peers: points per peer and mode through crashfs, shared by
                                   random and torn (default 2,000) */
    uint64_t seed;              /* the first workload's seed (default 1) */
    const char *engines;        /* comma-separated engines to run now (NULL: all registered) */
    const char *out_dir;        /* soak.csv and soak.md (default results/crash) */
    const char *const *exclude; /* "ENGINE:POLICY" rows left out (known violations) */
    size_t n_exclude;
} crash_soak_opts;

void crash_soak_opts_init(crash_soak_opts *o);

/* The crash soak: for each engine named in o->engines (all when NULL), seeded workloads of 200
 * commits, each crashed at every file-system operation, until the targets are met; the rows of
 * engines not run now are kept from out_dir/soak.csv, so a long soak runs in chunks. Writes
 * soak.csv and soak.md after every row. *violations = violations in the rows run now.
 * Errors: KV_IO (cannot write). */
kv_status crash_soak_run(const crash_config *c, const crash_soak_opts *o, uint64_t *violations);

/* The `kvlab crash ...` command: argv[0..argc) are the flags after the word "crash" (as the
 * kvlab command's table passes them; see `kvlab crash --help`). Prints to stdout/stderr.
 * Returns the exit code: 0 all promises held, 1 a violation (the seed and point to replay it
 * are printed), 2 bad usage (unknown flag, engine or mode), 3 the run could not be carried out
 * (an I/O error in the scratch directory, an engine failing without any crash). */
int kvlab_cmd_crash(int argc, char **argv);

/* One-line summary of a result ("points=… recoveries=… lost=… violations=…") into buf
 * (cap bytes). Returns buf. */
char *crash_result_format(const crash_result *r, char *buf, size_t cap);

#endif
