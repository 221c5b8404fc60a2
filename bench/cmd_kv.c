/* kvlab put | get | del | scan | stats | check | dump: one call of kv.h each, on a database
 * directory named by --engine and --dir. Keys and values are given as text (the bytes of the
 * argument) or, with --hex, as hex; put reads the value from stdin when it is "-" or omitted.
 * get writes the value raw to stdout, with a newline added only when stdout is a terminal (or
 * after hex) and never with --raw, so that `kvlab get ... > file` stores exactly the value's
 * bytes. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cmd_kv.h"
#include "commands.h"
#include "kv.h"

/* Opens the database for a command; prints the error and returns an exit code on failure: a
 * missing database is exit 1 (not found). */
int kvcmd_open(const kv_cmd *c, const cli_args *a, open_mode mode, kv_db **db)
{
    const char *engine = a->value[F_ENGINE], *dir = a->value[F_DIR];
    if (!a->set[F_ENGINE])
        return cli_usage_error(c->name, "%s needs --engine", c->name);
    if (!a->set[F_DIR])
        return cli_usage_error(c->name, "%s needs --dir", c->name);
    if (!kv_engine_exists(engine))
        return cli_usage_error(c->name, "unknown engine '%s' (kvlab engines lists them)", engine);
    kv_options o;
    kv_options_init(&o);
    o.create_if_missing = mode == OPEN_CREATE;
    o.read_only = mode == OPEN_READ && kv_engine_has_read_only(engine);
    char err[256];
    if (a->set[F_DURABILITY] && kv_durability_parse(a->value[F_DURABILITY], &o.durability)) {
        int rc = cli_usage_error(c->name, "--durability: %s", kv_errmsg());
        kv_options_free(&o);
        return rc;
    }
    if (a->set[F_CACHE] &&
        !cli_parse_u64(a->value[F_CACHE], true, 0, UINT64_MAX, &o.cache_size, err, sizeof err)) {
        kv_options_free(&o);
        return cli_usage_error(c->name, "--cache-size: %s", err);
    }
    for (size_t i = 0; i < a->n_multi; i++) {
        if (kv_options_set(&o, a->multi[i]) != KV_OK) {
            int rc = cli_usage_error(c->name, "-o: %s", kv_errmsg());
            kv_options_free(&o);
            return rc;
        }
    }
    kv_status s = kv_open(engine, dir, &o, db);
    kv_options_free(&o);
    if (s == KV_OK)
        return KVLAB_EXIT_OK;
    if (s == KV_INVALID || s == KV_NOTSUP)
        return cli_usage_error(c->name, "%s", kv_errmsg());
    if (s == KV_NOT_FOUND) { /* no database there: nothing was created */
        fprintf(stderr, "kvlab: %s: %s\n", c->name, kv_errmsg());
        return KVLAB_EXIT_NOT_FOUND;
    }
    fprintf(stderr, "kvlab: %s: %s: %s\n", c->name, kv_strerror(s), kv_errmsg());
    return KVLAB_EXIT_DATA;
}

/* Exit code for a failed call on an open handle; prints the handle's message. */
int kvcmd_fail(const kv_cmd *c, kv_db *db, kv_status s)
{
    char msg[1024];
    kv_last_error(db, msg, sizeof msg);
    if (s == KV_INVALID || s == KV_NOTSUP) {
        cli_usage_error(c->name, "%s", msg[0] ? msg : kv_strerror(s));
        return KVLAB_EXIT_USAGE;
    }
    fprintf(stderr, "kvlab: %s: %s: %s\n", c->name, kv_strerror(s), msg[0] ? msg : "");
    return KVLAB_EXIT_DATA;
}

int kvcmd_close(const kv_cmd *c, kv_db *db, int rc)
{
    kv_status s = kv_close(db);
    if (s != KV_OK && (rc == KVLAB_EXIT_OK || rc == KVLAB_EXIT_NOT_FOUND)) {
        fprintf(stderr, "kvlab: %s: close: %s: %s\n", c->name, kv_strerror(s), kv_errmsg());
        return KVLAB_EXIT_DATA;
    }
    return rc;
}

/* Parses flags; returns -1 to continue, or an exit code (help printed, or a usage error). */
int kvcmd_parse(const kv_cmd *c, int argc, char **argv, cli_args *a, size_t min_pos)
{
    if (!cli_parse(c->flags, c->n_flags, argc, argv, c->max_pos, a))
        return cli_usage_error(c->name, "%s", a->err);
    if (a->help) {
        cli_print_help(stdout, c->usage, c->description, c->flags, c->n_flags);
        return KVLAB_EXIT_OK;
    }
    if (a->n_pos < min_pos)
        return cli_usage_error(c->name, "%s needs %s", c->name,
                               min_pos == 1 ? "a KEY" : "more arguments");
    return -1;
}

/* A key or value argument as bytes: the text itself, or hex decoded. *owned is set when the
 * bytes were allocated. */
static int arg_bytes(const kv_cmd *c, const cli_args *a, const char *text, const char *what,
                     const uint8_t **p, size_t *n, uint8_t **owned)
{
    *owned = NULL;
    if (a->set[F_HEX]) {
        if (!cli_hex_decode(text, owned, n))
            return cli_usage_error(c->name, "%s '%s' is not hex (even count of 0-9a-f)", what,
                                   text);
        *p = *owned;
    } else {
        *p = (const uint8_t *)text;
        *n = strlen(text);
    }
    return -1;
}

/* Reads all of stdin (at most max bytes; one more is an error). */
static int read_stdin(const kv_cmd *c, uint64_t max, uint8_t **out, size_t *len)
{
    size_t cap = 4096, n = 0;
    uint8_t *b = malloc(cap);
    while (b) {
        if (n == cap) {
            uint8_t *nb = realloc(b, cap * 2);
            if (!nb)
                break;
            b = nb;
            cap *= 2;
        }
        size_t got = fread(b + n, 1, cap - n, stdin);
        n += got;
        if ((uint64_t)n > max) {
            free(b);
            return cli_usage_error(c->name,
                                   "value on stdin is longer than the engine's "
                                   "%llu-byte limit",
                                   (unsigned long long)max);
        }
        if (got == 0) {
            if (ferror(stdin)) {
                free(b);
                fprintf(stderr, "kvlab: %s: reading stdin failed\n", c->name);
                return KVLAB_EXIT_DATA;
            }
            *out = b;
            *len = n;
            return -1;
        }
    }
    free(b);
    fprintf(stderr, "kvlab: %s: out of memory reading stdin\n", c->name);
    return KVLAB_EXIT_DATA;
}

/* ---- put ---- */

static const cli_flag put_flags[] = {COMMON_FLAGS};
static const kv_cmd put_cmd = {
    "put",
    "kvlab put --engine E --dir DIR [flags] KEY [VALUE | -]",
    "Stores VALUE under KEY (creating the database when missing). Without VALUE, or with -, the\n"
    "value is read from stdin (all bytes up to end of file, newlines included). The write is\n"
    "durable when the command returns (kv_close syncs in every durability mode).",
    put_flags,
    N_COMMON,
    2};

int kvlab_cmd_put(int argc, char **argv)
{
    cli_args a;
    int rc = kvcmd_parse(&put_cmd, argc, argv, &a, 1);
    if (rc >= 0)
        return rc;
    const uint8_t *key = NULL, *val = NULL;
    size_t klen, vlen;
    uint8_t *kown = NULL, *vown = NULL;
    if ((rc = arg_bytes(&put_cmd, &a, a.pos[0], "key", &key, &klen, &kown)) >= 0)
        return rc;
    kv_db *db = NULL;
    if ((rc = kvcmd_open(&put_cmd, &a, OPEN_CREATE, &db)) != KVLAB_EXIT_OK) {
        free(kown);
        return rc;
    }
    if (a.n_pos < 2 || !strcmp(a.pos[1], "-")) {
        if (isatty(STDIN_FILENO))
            fprintf(stderr, "kvlab: put: reading the value from stdin (end it with Ctrl-D)\n");
        kv_limits lim;
        kv_engine_limits(a.value[F_ENGINE], &lim);
        rc = read_stdin(&put_cmd, lim.max_value, &vown, &vlen);
        val = vown;
    } else {
        rc = arg_bytes(&put_cmd, &a, a.pos[1], "value", &val, &vlen, &vown);
    }
    if (rc < 0) {
        kv_status s = kv_put(db, key, klen, val, vlen);
        rc = s == KV_OK ? KVLAB_EXIT_OK : kvcmd_fail(&put_cmd, db, s);
    }
    free(kown);
    free(vown);
    return kvcmd_close(&put_cmd, db, rc);
}

/* ---- get ---- */

enum { F_RAW = N_COMMON };
static const cli_flag get_flags[] = {
    COMMON_FLAGS,
    {"raw", 0, CLI_BOOL, "", "never add a newline, even on a terminal or with --hex"}};
static const kv_cmd get_cmd = {
    "get",
    "kvlab get --engine E --dir DIR [flags] KEY",
    "Prints the value of KEY to stdout as raw bytes (hex with --hex). A newline is added only\n"
    "when stdout is a terminal (and after --hex output), so `kvlab get ... > f` stores exactly\n"
    "the value; --raw never adds one. Exit code 1 when the key is absent.",
    get_flags,
    N_COMMON + 1,
    1};

int kvlab_cmd_get(int argc, char **argv)
{
    cli_args a;
    int rc = kvcmd_parse(&get_cmd, argc, argv, &a, 1);
    if (rc >= 0)
        return rc;
    const uint8_t *key = NULL;
    size_t klen;
    uint8_t *kown = NULL;
    if ((rc = arg_bytes(&get_cmd, &a, a.pos[0], "key", &key, &klen, &kown)) >= 0)
        return rc;
    kv_db *db = NULL;
    if ((rc = kvcmd_open(&get_cmd, &a, OPEN_READ, &db)) != KVLAB_EXIT_OK) {
        free(kown);
        return rc;
    }
    void *v = NULL;
    size_t vlen = 0;
    kv_status s = kv_get(db, key, klen, &v, &vlen);
    if (s == KV_OK) {
        if (a.set[F_HEX])
            cli_write_hex(stdout, v, vlen);
        else
            fwrite(v, 1, vlen, stdout);
        if (!a.set[F_RAW] && (a.set[F_HEX] || isatty(STDOUT_FILENO)))
            fputc('\n', stdout);
        kv_free(v);
        rc = fflush(stdout) ? KVLAB_EXIT_DATA : KVLAB_EXIT_OK;
    } else if (s == KV_NOT_FOUND) {
        fprintf(stderr, "kvlab: get: key not found\n");
        rc = KVLAB_EXIT_NOT_FOUND;
    } else {
        rc = kvcmd_fail(&get_cmd, db, s);
    }
    free(kown);
    return kvcmd_close(&get_cmd, db, rc);
}

/* ---- del ---- */

static const cli_flag del_flags[] = {COMMON_FLAGS};
static const kv_cmd del_cmd = {
    "del",
    "kvlab del --engine E --dir DIR [flags] KEY",
    "Deletes KEY (a tombstone). Succeeds whether or not the key existed (exit 0).",
    del_flags,
    N_COMMON,
    1};

int kvlab_cmd_del(int argc, char **argv)
{
    cli_args a;
    int rc = kvcmd_parse(&del_cmd, argc, argv, &a, 1);
    if (rc >= 0)
        return rc;
    const uint8_t *key = NULL;
    size_t klen;
    uint8_t *kown = NULL;
    if ((rc = arg_bytes(&del_cmd, &a, a.pos[0], "key", &key, &klen, &kown)) >= 0)
        return rc;
    kv_db *db = NULL;
    if ((rc = kvcmd_open(&del_cmd, &a, OPEN_WRITE, &db)) != KVLAB_EXIT_OK) {
        free(kown);
        return rc;
    }
    kv_status s = kv_delete(db, key, klen);
    rc = s == KV_OK ? KVLAB_EXIT_OK : kvcmd_fail(&del_cmd, db, s);
    free(kown);
    return kvcmd_close(&del_cmd, db, rc);
}

/* ---- scan ---- */

enum { F_FROM = N_COMMON, F_TO, F_LIMIT, F_KEYS_ONLY };
static const cli_flag scan_flags[] = {
    COMMON_FLAGS,
    {"from", 0, CLI_VALUE, "KEY", "first key (inclusive); default: the first key"},
    {"to", 0, CLI_VALUE, "KEY", "end key (exclusive); default: no end"},
    {"limit", 'n', CLI_VALUE, "N", "print at most N records"},
    {"keys-only", 'k', CLI_BOOL, "", "print keys only"},
};
static const kv_cmd scan_cmd = {
    "scan",
    "kvlab scan --engine E --dir DIR [--from KEY] [--to KEY] [--limit N] [flags]",
    "Prints the records with from <= key < to in key order (memcmp, then length), one per line:\n"
    "KEY<TAB>VALUE. Bytes outside printable ASCII are written as \\xNN and a backslash as \\\\\n"
    "(with --hex, both are hex). The scan reads one consistent snapshot.",
    scan_flags,
    sizeof scan_flags / sizeof scan_flags[0],
    0};

static int key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen < blen ? -1 : alen > blen);
}

int kvlab_cmd_scan(int argc, char **argv)
{
    cli_args a;
    int rc = kvcmd_parse(&scan_cmd, argc, argv, &a, 0);
    if (rc >= 0)
        return rc;
    uint64_t limit = UINT64_MAX;
    char err[256];
    if (a.set[F_LIMIT] &&
        !cli_parse_u64(a.value[F_LIMIT], false, 0, UINT64_MAX, &limit, err, sizeof err))
        return cli_usage_error("scan", "--limit: %s", err);
    const uint8_t *from = NULL, *to = NULL;
    size_t flen = 0, tlen = 0;
    uint8_t *fown = NULL, *town = NULL;
    if (a.set[F_FROM] &&
        (rc = arg_bytes(&scan_cmd, &a, a.value[F_FROM], "--from", &from, &flen, &fown)) >= 0)
        return rc;
    if (a.set[F_TO] &&
        (rc = arg_bytes(&scan_cmd, &a, a.value[F_TO], "--to", &to, &tlen, &town)) >= 0) {
        free(fown);
        return rc;
    }
    if (a.set[F_FROM] && flen == 0) {
        free(fown);
        free(town);
        return cli_usage_error("scan", "--from: a key has 1 or more bytes");
    }
    kv_db *db = NULL;
    if ((rc = kvcmd_open(&scan_cmd, &a, OPEN_READ, &db)) != KVLAB_EXIT_OK) {
        free(fown);
        free(town);
        return rc;
    }
    kv_iter *it = NULL;
    kv_status s = kv_iter_new(db, &it);
    if (s == KV_OK) {
        if (from)
            kv_iter_seek(it, from, flen);
        else
            kv_iter_seek_first(it);
        for (uint64_t n = 0; n < limit && kv_iter_valid(it); n++, kv_iter_next(it)) {
            size_t kl, vl;
            const void *k = kv_iter_key(it, &kl);
            if (to && key_cmp(k, kl, to, tlen) >= 0)
                break;
            if (a.set[F_HEX])
                cli_write_hex(stdout, k, kl);
            else
                cli_write_escaped(stdout, k, kl);
            if (!a.set[F_KEYS_ONLY]) {
                const void *v = kv_iter_value(it, &vl);
                fputc('\t', stdout);
                if (a.set[F_HEX])
                    cli_write_hex(stdout, v, vl);
                else
                    cli_write_escaped(stdout, v, vl);
            }
            fputc('\n', stdout);
        }
        s = kv_iter_status(it);
        kv_iter_free(it);
    }
    rc = s == KV_OK ? KVLAB_EXIT_OK : kvcmd_fail(&scan_cmd, db, s);
    if (fflush(stdout))
        rc = KVLAB_EXIT_DATA;
    free(fown);
    free(town);
    return kvcmd_close(&scan_cmd, db, rc);
}

/* ---- stats ---- */

static const cli_flag stats_flags[] = {COMMON_FLAGS};
static const kv_cmd stats_cmd = {
    "stats",
    "kvlab stats --engine E --dir DIR [flags]",
    "Opens the database and prints kv_stats as a table. Counters marked 'since open' count\n"
    "only this process's work (open and recovery); 'now' fields describe the directory.",
    stats_flags,
    N_COMMON,
    0};

static void stat_line(const char *name, uint64_t v, bool bytes, const char *note)
{
    char human[32] = "";
    if (v == UINT64_MAX) {
        printf("  %-24s %20s  %s\n", name, "unknown", note);
        return;
    }
    if (bytes)
        snprintf(human, sizeof human, "(%s)", cli_human_bytes(v, (char[24]){0}, 24));
    printf("  %-24s %20llu  %-12s %s\n", name, (unsigned long long)v, human, note);
}

int kvlab_cmd_stats(int argc, char **argv)
{
    cli_args a;
    int rc = kvcmd_parse(&stats_cmd, argc, argv, &a, 0);
    if (rc >= 0)
        return rc;
    kv_db *db = NULL;
    if ((rc = kvcmd_open(&stats_cmd, &a, OPEN_READ, &db)) != KVLAB_EXIT_OK)
        return rc;
    kv_stats st;
    kv_status s = kv_stats_get(db, &st);
    if (s == KV_OK) {
        printf("engine %s, directory %s\n", kv_db_engine(db), a.value[F_DIR]);
        stat_line("user_bytes_written", st.user_bytes_written, true, "since open");
        stat_line("file_bytes_written", st.file_bytes_written, true, "since open");
        stat_line("file_bytes_read", st.file_bytes_read, true, "since open");
        stat_line("fsyncs", st.fsyncs, false, "since open");
        stat_line("fdatasyncs", st.fdatasyncs, false, "since open");
        stat_line("commits", st.commits, false, "since open");
        stat_line("files", st.files, false, "now");
        stat_line("disk_bytes", st.disk_bytes, true, "now");
        stat_line("live_keys", st.live_keys, false, "now");
        stat_line("memory_bytes", st.memory_bytes, true, "now (heap held by the engine)");
        if (st.n_extra)
            printf("engine counters:\n");
        for (size_t i = 0; i < st.n_extra; i++)
            stat_line(st.extra[i].name, st.extra[i].value, false, "");
    }
    rc = s == KV_OK ? KVLAB_EXIT_OK : kvcmd_fail(&stats_cmd, db, s);
    return kvcmd_close(&stats_cmd, db, rc);
}

/* ---- check ---- */

static const cli_flag check_flags[] = {COMMON_FLAGS};
static const kv_cmd check_cmd = {
    "check",
    "kvlab check --engine E --dir DIR [flags]",
    "Opens the database (running recovery) and verifies every invariant the engine has\n"
    "(kv_check). Prints \"ok\" and exits 0, or prints the first violation and exits 3.",
    check_flags,
    N_COMMON,
    0};

int kvlab_cmd_check(int argc, char **argv)
{
    cli_args a;
    int rc = kvcmd_parse(&check_cmd, argc, argv, &a, 0);
    if (rc >= 0)
        return rc;
    kv_db *db = NULL;
    if ((rc = kvcmd_open(&check_cmd, &a, OPEN_READ, &db)) != KVLAB_EXIT_OK)
        return rc;
    kv_status s = kv_check(db);
    if (s == KV_OK) {
        printf("ok\n");
        rc = KVLAB_EXIT_OK;
    } else {
        char msg[1024];
        kv_last_error(db, msg, sizeof msg);
        printf("%s: %s\n", kv_strerror(s), msg);
        rc = KVLAB_EXIT_DATA;
    }
    return kvcmd_close(&check_cmd, db, rc);
}

/* ---- dump ---- */

enum { F_FILE = N_COMMON, F_PAGE, F_FORMAT, F_TREE };
static const cli_flag dump_flags[] = {
    COMMON_FLAGS,
    {"file", 'f', CLI_VALUE, "NAME", "only this file of the directory"},
    {"page", 'p', CLI_VALUE, "N", "only page or block N (engines with pages)"},
    {"format", 0, CLI_VALUE, "FMT",
     "text (default: every field), dot (a Graphviz picture) or tree (a text tree)"},
    {"tree", 0, CLI_BOOL, "", "the same as --format tree"},
};
static const kv_cmd dump_cmd = {
    "dump",
    "kvlab dump --engine E --dir DIR [--file NAME] [--page N] [--format text|dot|tree] [flags]",
    "Prints the on-disk structures of the database field by field with their offsets\n"
    "(kv_dump), for a student to read next to the format description in docs/.\n"
    "--format dot prints a picture of the structure (pages, levels, files, segments) in\n"
    "Graphviz's language: `kvlab dump ... --format dot | dot -Tsvg > db.svg`. --tree prints\n"
    "the same picture as an indented text tree. Large structures show a few nodes per level\n"
    "and \"... N more\".",
    dump_flags,
    sizeof dump_flags / sizeof dump_flags[0],
    0};

/* The --format and --tree flags as a kv_dump_format, or an exit code (usage error). */
static int dump_format(const cli_args *a, kv_dump_format *f)
{
    *f = a->set[F_TREE] ? KV_DUMP_TREE : KV_DUMP_TEXT;
    if (!a->set[F_FORMAT])
        return -1;
    const char *v = a->value[F_FORMAT];
    kv_dump_format g;
    if (!strcmp(v, "text"))
        g = KV_DUMP_TEXT;
    else if (!strcmp(v, "dot"))
        g = KV_DUMP_DOT;
    else if (!strcmp(v, "tree"))
        g = KV_DUMP_TREE;
    else
        return cli_usage_error("dump", "--format: unknown format '%s' (text, dot or tree)", v);
    if (a->set[F_TREE] && g != KV_DUMP_TREE)
        return cli_usage_error("dump", "--tree and --format %s contradict each other", v);
    *f = g;
    return -1;
}

int kvlab_cmd_dump(int argc, char **argv)
{
    cli_args a;
    int rc = kvcmd_parse(&dump_cmd, argc, argv, &a, 0);
    if (rc >= 0)
        return rc;
    uint64_t page = 0;
    char err[256];
    if (a.set[F_PAGE] &&
        !cli_parse_u64(a.value[F_PAGE], false, 0, INT64_MAX, &page, err, sizeof err))
        return cli_usage_error("dump", "--page: %s", err);
    kv_dump_format fmt;
    if ((rc = dump_format(&a, &fmt)) >= 0)
        return rc;
    if (fmt != KV_DUMP_TEXT && (a.set[F_FILE] || a.set[F_PAGE]))
        return cli_usage_error("dump", "--file and --page select text output; a picture shows "
                                       "the whole database");
    kv_db *db = NULL;
    if ((rc = kvcmd_open(&dump_cmd, &a, OPEN_READ, &db)) != KVLAB_EXIT_OK)
        return rc;
    kv_status s = fmt == KV_DUMP_TEXT ? kv_dump(db, stdout, a.set[F_FILE] ? a.value[F_FILE] : NULL,
                                                a.set[F_PAGE] ? (int64_t)page : -1)
                                      : kv_dump_picture(db, stdout, fmt);
    if (fflush(stdout) && s == KV_OK)
        s = KV_IO;
    rc = s == KV_OK ? KVLAB_EXIT_OK : kvcmd_fail(&dump_cmd, db, s);
    return kvcmd_close(&dump_cmd, db, rc);
}
