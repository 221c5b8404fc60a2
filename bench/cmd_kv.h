/* What the database commands of kvlab share (put, get, del, scan, stats, check, dump in
 * cmd_kv.c; load in cmd_load.c): the common flags, opening a database from them, and turning a
 * kv_status into an exit code (cli.h). */
#ifndef KVLAB_BENCH_CMD_KV_H
#define KVLAB_BENCH_CMD_KV_H

#include <stddef.h>

#include "cli.h"
#include "kv.h"

/* The indexes of COMMON_FLAGS; a command's own flags start at N_COMMON. */
enum { F_ENGINE, F_DIR, F_DURABILITY, F_OPTION, F_CACHE, F_HEX, N_COMMON };

#define COMMON_FLAGS                                                                               \
    {"engine", 'e', CLI_VALUE, "E", "engine name (see kvlab engines); required"},                  \
        {"dir", 'd', CLI_VALUE, "DIR", "database directory; required"},                            \
        {"durability", 0, CLI_VALUE, "MODE", "none, os (default), interval:MS or sync"},           \
        {"option", 'o', CLI_MULTI, "KEY=VALUE", "engine-specific option (repeatable)"},            \
        {"cache-size", 0, CLI_VALUE, "BYTES", "block/page cache size (K/M/G = 1024^n)"},           \
    {                                                                                              \
        "hex", 'x', CLI_BOOL, "", "keys and values in arguments and output are hex"                \
    }

typedef struct kv_cmd {
    const char *name;
    const char *usage;
    const char *description;
    const cli_flag *flags;
    size_t n_flags;
    size_t max_pos;
} kv_cmd;

/* How a command opens its database. */
typedef enum open_mode {
    OPEN_CREATE, /* put: creates the database when missing */
    OPEN_WRITE,  /* del: an existing database, for writing */
    OPEN_READ,   /* get, scan, stats, check, dump: read-only, never creating, never writing (an
                    engine without a read-only open, a production peer such as LevelDB, is
                    opened for writing and recovers as it always does) */
} open_mode;

/* Opens the database named by --engine and --dir with --durability, -o and --cache-size. On
 * failure prints one line and returns the exit code (2 usage, 1 no database there, 3 data or
 * I/O error); KVLAB_EXIT_OK with *db set otherwise. */
int kvcmd_open(const kv_cmd *c, const cli_args *a, open_mode mode, kv_db **db);

/* Prints the handle's last error for a failed call s and returns its exit code (2 for
 * KV_INVALID and KV_NOTSUP, 3 otherwise). */
int kvcmd_fail(const kv_cmd *c, kv_db *db, kv_status s);

/* Closes db (kv_close syncs); returns rc, or 3 when the close failed and rc was 0 or 1. */
int kvcmd_close(const kv_cmd *c, kv_db *db, int rc);

/* Parses a command's flags: -1 to go on, or an exit code (help printed: 0; usage error: 2).
 * Fewer than min_pos positionals is a usage error. */
int kvcmd_parse(const kv_cmd *c, int argc, char **argv, cli_args *a, size_t min_pos);

#endif
