/* kvlab load: many records into one database in one open, so that a student sees an engine at
 * a size where its structures show (memtables flushed to SSTables, Bitcask files merged, the
 * B+tree growing levels), which one `kvlab put` process per record never reaches.
 *
 * Records come from standard input as lines KEY<TAB>VALUE (the first TAB splits; the value is
 * the rest of the line without its newline; --hex: both hex), or, with --num N, are generated
 * as `kvlab bench` makes them (bench/keyval.h: 16-byte zero-padded decimal keys 0..N-1, values
 * of --value-size bytes). They are written with kv_write in batches of LOAD_BATCH_RECORDS
 * records or LOAD_BATCH_BYTES bytes, whichever fills first; kv_close syncs at the end.
 *
 * The contract on bad input: a malformed line (no TAB, an empty key, bad hex, a key or value
 * over the engine's limits) stops the load with exit 3 and a message naming its line number.
 * Every record before that line is committed and durable (the pending batch is written and the
 * database closed, which syncs); nothing from that line on is written. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cmd_kv.h"
#include "commands.h"
#include "keyval.h"
#include "kv.h"

/* A batch is written when it holds this many records or this many key and value bytes. */
#define LOAD_BATCH_RECORDS 1000
#define LOAD_BATCH_BYTES   (4u << 20)
/* Key bytes of --num's generated records (as `kvlab bench` by default). */
#define LOAD_KEY_SIZE 16

enum { F_NUM = N_COMMON, F_VALUE_SIZE, N_LOAD_FLAGS };
static const cli_flag load_flags[] = {
    COMMON_FLAGS,
    {"num", 'n', CLI_VALUE, "N", "generate N records as kvlab bench does instead of reading stdin"},
    {"value-size", 0, CLI_VALUE, "B", "value bytes of the generated records (default 100)"},
};
static const kv_cmd load_cmd = {
    "load",
    "kvlab load --engine E --dir DIR [flags] < records.tsv\n"
    "       kvlab load --engine E --dir DIR --num N [--value-size B] [flags]",
    "Writes many records in one open of the database (creating it when missing). Without --num,\n"
    "reads lines KEY<TAB>VALUE from stdin: the first TAB splits, the value is the rest of the\n"
    "line; empty lines are skipped; with --hex, keys and values are hex. With --num N, writes N\n"
    "records made as kvlab bench makes them: 16-byte keys 0000000000000000.. in order, values of\n"
    "--value-size bytes. Records go in batches of 1000 (kv_write); the database is synced and\n"
    "closed at the end. A malformed line stops the load with exit 3 naming its line number:\n"
    "every record before it is committed and durable, none from it on. On a terminal, a\n"
    "progress line is written to stderr.",
    load_flags,
    N_LOAD_FLAGS,
    0};

/* The load in progress: the open database, the pending batch and the counters. */
typedef struct loader {
    kv_db *db;
    kv_batch *batch;
    uint64_t records; /* records committed */
    uint64_t bytes;   /* key and value bytes committed */
    bool progress;    /* stderr is a terminal */
    double last_shown;
} loader;

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void show_progress(loader *l, bool last)
{
    if (!l->progress)
        return;
    double t = now_seconds();
    if (!last && t - l->last_shown < 0.2)
        return;
    l->last_shown = t;
    char human[32];
    fprintf(stderr, "\rkvlab: load: %llu records, %s", (unsigned long long)l->records,
            cli_human_bytes(l->bytes, human, sizeof human));
    if (last)
        fputc('\n', stderr);
    fflush(stderr);
}

/* Writes the pending batch. KV_OK, or the status of kv_write. */
static kv_status flush_batch(loader *l)
{
    size_t n = kv_batch_count(l->batch);
    if (n == 0)
        return KV_OK;
    uint64_t b = kv_batch_bytes(l->batch);
    kv_status s = kv_write(l->db, l->batch);
    if (s != KV_OK)
        return s;
    l->records += n;
    l->bytes += b;
    kv_batch_clear(l->batch);
    show_progress(l, false);
    return KV_OK;
}

/* Adds one record; writes the batch when it is full. */
static kv_status add(loader *l, const void *k, size_t kl, const void *v, size_t vl)
{
    kv_status s = kv_batch_put(l->batch, k, kl, v, vl);
    if (s == KV_OK && (kv_batch_count(l->batch) >= LOAD_BATCH_RECORDS ||
                       kv_batch_bytes(l->batch) >= LOAD_BATCH_BYTES))
        s = flush_batch(l);
    return s;
}

/* Splits and decodes one input line (len bytes, without its newline) into key and value.
 * Returns NULL, or what is wrong with the line; *kown and *vown are set when decoded bytes
 * were allocated (hex). */
static const char *parse_line(char *line, size_t len, bool hex, const kv_limits *lim,
                              const uint8_t **k, size_t *kl, const uint8_t **v, size_t *vl,
                              uint8_t **kown, uint8_t **vown)
{
    *kown = *vown = NULL;
    char *tab = memchr(line, '\t', len);
    if (!tab)
        return "no TAB between key and value";
    *tab = '\0';
    line[len] = '\0';
    const char *val = tab + 1;
    if (hex) {
        if (!cli_hex_decode(line, kown, kl))
            return "the key is not hex (even count of 0-9a-f)";
        if (!cli_hex_decode(val, vown, vl))
            return "the value is not hex (even count of 0-9a-f)";
        *k = *kown;
        *v = *vown;
    } else {
        *k = (const uint8_t *)line;
        *kl = (size_t)(tab - line);
        *v = (const uint8_t *)val;
        *vl = len - *kl - 1;
    }
    if (*kl == 0)
        return "the key is empty";
    if (*kl > lim->max_key)
        return "the key is longer than the engine's key limit";
    if (*vl > lim->max_value)
        return "the value is longer than the engine's value limit";
    return NULL;
}

/* Reads stdin to the end or to the first malformed line. Returns an exit code. */
static int load_stdin(loader *l, bool hex, const kv_limits *lim)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    uint64_t lineno = 0;
    int rc = KVLAB_EXIT_OK;
    while ((got = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        size_t len = (size_t)got;
        if (len && line[len - 1] == '\n')
            len--;
        if (len == 0)
            continue;
        const uint8_t *k, *v;
        size_t kl = 0, vl = 0;
        uint8_t *kown, *vown;
        const char *bad = parse_line(line, len, hex, lim, &k, &kl, &v, &vl, &kown, &vown);
        kv_status s = bad ? KV_OK : add(l, k, kl, v, vl);
        free(kown);
        free(vown);
        if (bad) {
            fprintf(stderr,
                    "kvlab: load: stdin line %llu: %s; the %llu records before it are "
                    "committed, nothing from this line on\n",
                    (unsigned long long)lineno, bad,
                    (unsigned long long)(l->records + kv_batch_count(l->batch)));
            rc = KVLAB_EXIT_DATA;
            break;
        }
        if (s != KV_OK) { /* the failed batch is not written again */
            kv_batch_clear(l->batch);
            rc = kvcmd_fail(&load_cmd, l->db, s);
            break;
        }
    }
    if (rc == KVLAB_EXIT_OK && ferror(stdin)) {
        fprintf(stderr, "kvlab: load: reading stdin failed after line %llu\n",
                (unsigned long long)lineno);
        rc = KVLAB_EXIT_DATA;
    }
    free(line);
    return rc;
}

/* Writes records 0..n-1 as kvlab bench makes them (value version 0). Returns an exit code. */
static int load_generated(loader *l, uint64_t n, size_t value_size)
{
    uint8_t key[LOAD_KEY_SIZE];
    uint8_t *val = malloc(value_size ? value_size : 1);
    if (!val) {
        fprintf(stderr, "kvlab: load: out of memory\n");
        return KVLAB_EXIT_DATA;
    }
    kvb_init();
    for (uint64_t i = 0; i < n; i++) {
        kvb_key(key, sizeof key, i);
        kvb_value(val, value_size, i, 0);
        kv_status s = add(l, key, sizeof key, val, value_size);
        if (s != KV_OK) { /* the failed batch is not written again */
            free(val);
            kv_batch_clear(l->batch);
            return kvcmd_fail(&load_cmd, l->db, s);
        }
    }
    free(val);
    return KVLAB_EXIT_OK;
}

int kvlab_cmd_load(int argc, char **argv)
{
    cli_args a;
    int rc = kvcmd_parse(&load_cmd, argc, argv, &a, 0);
    if (rc >= 0)
        return rc;
    uint64_t num = 0, value_size = 100;
    char err[256];
    if (a.set[F_NUM] && !cli_parse_u64(a.value[F_NUM], false, 0, 1ull << 40, &num, err, sizeof err))
        return cli_usage_error("load", "--num: %s", err);
    if (a.set[F_VALUE_SIZE] && !a.set[F_NUM])
        return cli_usage_error("load", "--value-size applies to generated records (--num)");
    if (a.set[F_NUM] && a.set[F_HEX])
        return cli_usage_error("load", "--hex applies to records read from stdin, not --num");
    kv_limits lim = {0, 0};
    if (a.set[F_ENGINE] && kv_engine_limits(a.value[F_ENGINE], &lim) != KV_OK)
        lim = (kv_limits){0, 0}; /* kvcmd_open reports the unknown engine */
    if (a.set[F_VALUE_SIZE] &&
        !cli_parse_u64(a.value[F_VALUE_SIZE], true, 0, lim.max_value ? lim.max_value : KV_MAX_VALUE,
                       &value_size, err, sizeof err))
        return cli_usage_error("load", "--value-size: %s", err);
    loader l = {0};
    l.progress = isatty(STDERR_FILENO);
    if (!(l.batch = kv_batch_new())) {
        fprintf(stderr, "kvlab: load: out of memory\n");
        return KVLAB_EXIT_DATA;
    }
    if ((rc = kvcmd_open(&load_cmd, &a, OPEN_CREATE, &l.db)) != KVLAB_EXIT_OK) {
        kv_batch_free(l.batch);
        return rc;
    }
    if (a.set[F_NUM])
        rc = load_generated(&l, num, (size_t)value_size);
    else
        rc = load_stdin(&l, a.set[F_HEX], &lim);
    /* Records before a malformed line are committed: the pending batch is written either way. */
    if (rc == KVLAB_EXIT_OK || kv_batch_count(l.batch) > 0) {
        kv_status s = flush_batch(&l);
        if (s != KV_OK)
            rc = kvcmd_fail(&load_cmd, l.db, s);
    }
    show_progress(&l, true);
    kv_batch_free(l.batch);
    return kvcmd_close(&load_cmd, l.db, rc);
}
