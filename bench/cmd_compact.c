/* kvlab compact: runs an engine's space-reclaiming step now, so that a student can dump the
 * directory before and after it (DDIA ch. 3: "compaction" of log segments, "merging" of
 * segments and SSTables, the checkpoint that lets a log be truncated):
 *   bitcask  merge (the Bitcask paper's "Merge")
 *   wal      checkpoint + log truncation
 *   lsm      full manual compaction (LevelDB's CompactRange over every key)
 *   btree    checkpoint (dirty pages written in place, log reset)
 * each through kv_compact (kv.h), the engine table's optional compact slot. Peers (leveldb,
 * rocksdb, lmdb, sqlite) compact on their own terms: kv_compact says KV_NOTSUP, exit 2.
 * Output: what the step did, the directory's files before -> after with their sizes in bytes,
 * the bytes the step wrote and read (kv_stats deltas), and for the lsm the tables per level
 * before -> after. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "commands.h"
#include "fs.h"
#include "kv.h"

enum { F_ENGINE, F_DIR, F_DURABILITY, F_OPTION, N_FLAGS };

static const cli_flag compact_flags[] = {
    {"engine", 'e', CLI_VALUE, "E", "engine name: bitcask, wal, lsm or btree; required"},
    {"dir", 'd', CLI_VALUE, "DIR", "database directory (must exist); required"},
    {"durability", 0, CLI_VALUE, "MODE", "none, os (default), interval:MS or sync"},
    {"option", 'o', CLI_MULTI, "KEY=VALUE", "engine-specific option (repeatable)"},
};

static const char compact_usage[] = "kvlab compact --engine E --dir DIR [flags]";
static const char compact_help[] =
    "Runs the engine's space-reclaiming step now and prints the directory's files before ->\n"
    "after (bytes), the bytes the step wrote and read, and what it did:\n"
    "  bitcask  merge: live records of the immutable data files -> new data + hint files,\n"
    "           MANIFEST naming them installed atomically, replaced files deleted\n"
    "  wal      checkpoint: SNAPSHOT at the last LSN, then log segments up to it deleted\n"
    "  lsm      full compaction: memtable flushed, every level merged down into the deepest\n"
    "           one; shadowed versions and tombstones dropped\n"
    "  btree    checkpoint (what its close always does: dirty pages in place, log reset)\n"
    "The production peers compact on their own: for them this is a usage error (exit 2).";

/* One file of the directory. */
typedef struct dfile {
    char name[256];
    unsigned long long size;
} dfile;

typedef struct listing {
    dfile *f;
    size_t n;
    unsigned long long bytes;
} listing;

/* Lists the regular files of dir, sorted by name (kv_posix_list_dir sorts). False when dir
 * cannot be read. */
static bool list_dir(const char *dir, listing *l)
{
    memset(l, 0, sizeof *l);
    kv_namelist names;
    if (kv_posix_list_dir(dir, &names) != KV_OK)
        return false;
    bool ok = names.count == 0 || (l->f = malloc(names.count * sizeof *l->f)) != NULL;
    for (size_t i = 0; ok && i < names.count; i++) {
        char path[4096];
        struct stat st;
        if (snprintf(path, sizeof path, "%s/%s", dir, names.names[i]) >= (int)sizeof path ||
            stat(path, &st) != 0 || !S_ISREG(st.st_mode) || strlen(names.names[i]) >= 256)
            continue;
        snprintf(l->f[l->n].name, sizeof l->f[l->n].name, "%s", names.names[i]);
        l->f[l->n].size = (unsigned long long)st.st_size;
        l->bytes += l->f[l->n].size;
        l->n++;
    }
    kv_namelist_free(&names);
    return ok;
}

/* Prints the union of two sorted listings: "-" a file that went, "+" one that came, "~" one
 * whose size changed, " " one left as it was. */
static void print_files(const listing *a, const listing *b)
{
    printf("files (bytes, before -> after):\n");
    size_t i = 0, j = 0;
    while (i < a->n || j < b->n) {
        int c = i == a->n ? 1 : j == b->n ? -1 : strcmp(a->f[i].name, b->f[j].name);
        if (c < 0) {
            printf("  - %-24s %10llu -> deleted\n", a->f[i].name, a->f[i].size);
            i++;
        } else if (c > 0) {
            printf("  + %-24s %10s -> %llu\n", b->f[j].name, "new", b->f[j].size);
            j++;
        } else {
            printf("  %c %-24s %10llu -> %llu\n", a->f[i].size == b->f[j].size ? ' ' : '~',
                   a->f[i].name, a->f[i].size, b->f[j].size);
            i++;
            j++;
        }
    }
    printf("total: %zu files, %llu bytes -> %zu files, %llu bytes\n", a->n, a->bytes, b->n,
           b->bytes);
}

static uint64_t extra(const kv_stats *s, const char *name)
{
    for (size_t i = 0; i < s->n_extra; i++)
        if (!strcmp(s->extra[i].name, name))
            return s->extra[i].value;
    return UINT64_MAX;
}

/* "L0=3 L1=1" from the lsm's files_L<n> counters (levels without tables left out). */
static void print_levels(const kv_stats *s)
{
    bool any = false;
    for (int l = 0; l < 16; l++) {
        char name[16];
        snprintf(name, sizeof name, "files_L%d", l);
        uint64_t v = extra(s, name);
        if (v == UINT64_MAX)
            break;
        if (v) {
            printf(" L%d=%llu", l, (unsigned long long)v);
            any = true;
        }
    }
    if (!any)
        printf(" (none)");
}

/* What each engine's step does, in one paragraph (an engine not listed here but with a compact
 * slot gets a generic line). */
typedef struct step {
    const char *engine;
    const char *what;
} step;

static const step steps[] = {
    {"bitcask",
     "bitcask merge (kv_bitcask_merge): the live records of every immutable data file were\n"
     "rewritten into new data files with a hint file each; the MANIFEST naming them instead of\n"
     "the old ones was installed atomically, then the replaced files were deleted. The active\n"
     "data file (the one this open started for new writes) takes no part; close deletes it when\n"
     "it stayed empty."},
    {"wal", "wal checkpoint (wal_engine_checkpoint): the whole table went to SNAPSHOT by atomic\n"
            "replacement, a CHECKPOINT record naming its LSN was appended, then the log segments\n"
            "holding only records up to that LSN were deleted, oldest first."},
    {"lsm", "lsm full compaction (lsm_compact_all): the memtable, unless empty, was flushed to a\n"
            "level-0 SSTable, then every level was merged into the next, down to the deepest one\n"
            "holding data (level 1 at least). Overwritten versions and tombstones were dropped;\n"
            "the replaced tables and WALs were deleted."},
    {"btree",
     "btree checkpoint: a B+tree updates its pages in place and has nothing else to reclaim;\n"
     "the log was made durable, the dirty pages were written to their place in btree.db, the\n"
     "meta page last, the data file was fdatasynced and the log was reset."},
};

static const char *describe(const char *engine)
{
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if (!strcmp(steps[i].engine, engine))
            return steps[i].what;
    return "the engine's space-reclaiming step (kv_compact) ran.";
}

/* Opens dir (never creating it). Prints the error and returns an exit code on failure. */
static int open_db(const cli_args *a, kv_db **db)
{
    kv_options o;
    kv_options_init(&o);
    o.create_if_missing = false;
    if (a->set[F_DURABILITY] && kv_durability_parse(a->value[F_DURABILITY], &o.durability)) {
        int rc = cli_usage_error("compact", "--durability: %s", kv_errmsg());
        kv_options_free(&o);
        return rc;
    }
    for (size_t i = 0; i < a->n_multi; i++)
        if (kv_options_set(&o, a->multi[i]) != KV_OK) {
            int rc = cli_usage_error("compact", "-o: %s", kv_errmsg());
            kv_options_free(&o);
            return rc;
        }
    kv_status s = kv_open(a->value[F_ENGINE], a->value[F_DIR], &o, db);
    kv_options_free(&o);
    if (s == KV_OK)
        return KVLAB_EXIT_OK;
    if (s == KV_INVALID || s == KV_NOTSUP)
        return cli_usage_error("compact", "%s", kv_errmsg());
    if (s == KV_NOT_FOUND)
        fprintf(stderr, "kvlab: compact: %s\n", kv_errmsg());
    else
        fprintf(stderr, "kvlab: compact: %s: %s\n", kv_strerror(s), kv_errmsg());
    return KVLAB_EXIT_DATA;
}

int kvlab_cmd_compact(int argc, char **argv)
{
    cli_args a;
    if (!cli_parse(compact_flags, N_FLAGS, argc, argv, 0, &a))
        return cli_usage_error("compact", "%s", a.err);
    if (a.help) {
        cli_print_help(stdout, compact_usage, compact_help, compact_flags, N_FLAGS);
        return KVLAB_EXIT_OK;
    }
    if (!a.set[F_ENGINE])
        return cli_usage_error("compact", "compact needs --engine");
    if (!a.set[F_DIR])
        return cli_usage_error("compact", "compact needs --dir");
    const char *engine = a.value[F_ENGINE], *dir = a.value[F_DIR];
    if (!kv_engine_exists(engine))
        return cli_usage_error("compact", "unknown engine '%s' (kvlab engines lists them)", engine);
    if (!kv_engine_has_compact(engine))
        return cli_usage_error("compact",
                               "%s: engine '%s' has no compaction command here (a production "
                               "peer compacts on its own schedule)",
                               kv_strerror(KV_NOTSUP), engine);
    kv_db *db = NULL;
    int rc = open_db(&a, &db);
    if (rc != KVLAB_EXIT_OK)
        return rc;
    listing before, after;
    kv_stats s0, s1;
    kv_status s = kv_stats_get(db, &s0);
    if (s == KV_OK && !list_dir(dir, &before)) {
        s = KV_IO;
        fprintf(stderr, "kvlab: compact: cannot list %s\n", dir);
    }
    if (s != KV_OK) {
        kv_close(db);
        return KVLAB_EXIT_DATA;
    }
    char msg[1024] = "";
    s = kv_compact(db);
    if (s != KV_OK)
        kv_last_error(db, msg, sizeof msg);
    if (s != KV_OK && !msg[0])
        snprintf(msg, sizeof msg, "%s", kv_errmsg());
    kv_status ss = s == KV_OK ? kv_stats_get(db, &s1) : KV_OK;
    kv_status cs = kv_close(db);
    if (s == KV_OK && cs != KV_OK) {
        s = cs;
        snprintf(msg, sizeof msg, "close: %s", kv_errmsg());
    }
    if (s != KV_OK) {
        free(before.f);
        fprintf(stderr, "kvlab: compact: %s: %s\n", kv_strerror(s), msg);
        return s == KV_INVALID || s == KV_NOTSUP ? KVLAB_EXIT_USAGE : KVLAB_EXIT_DATA;
    }
    if (!list_dir(dir, &after)) {
        free(before.f);
        fprintf(stderr, "kvlab: compact: cannot list %s\n", dir);
        return KVLAB_EXIT_DATA;
    }
    printf("%s\n\n", describe(engine));
    print_files(&before, &after);
    if (ss == KV_OK) {
        printf("written by the step: %llu bytes in files, %llu fsyncs + fdatasyncs; read: %llu "
               "bytes\n",
               (unsigned long long)(s1.file_bytes_written - s0.file_bytes_written),
               (unsigned long long)(s1.fsyncs + s1.fdatasyncs - s0.fsyncs - s0.fdatasyncs),
               (unsigned long long)(s1.file_bytes_read - s0.file_bytes_read));
        if (!strcmp(engine, "lsm")) {
            printf("tables per level:");
            print_levels(&s0);
            printf(" ->");
            print_levels(&s1);
            printf("\n");
        }
    }
    free(before.f);
    free(after.f);
    return fflush(stdout) ? KVLAB_EXIT_DATA : KVLAB_EXIT_OK;
}
