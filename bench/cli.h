/* The flag parser and text helpers shared by every kvlab subcommand.
 *
 * Flags are GNU style: "--name value", "--name=value", a one-letter alias "-o value", boolean
 * flags without a value, "--" ends the flags. Errors are one line, written into the parse
 * result so that the caller prints "kvlab: <message> (see kvlab <cmd> --help)" and exits 2. */
#ifndef KVLAB_BENCH_CLI_H
#define KVLAB_BENCH_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes of the kvlab command (documented in kvlab --help). */
enum {
    KVLAB_EXIT_OK = 0,        /* success */
    KVLAB_EXIT_NOT_FOUND = 1, /* get: the key is absent */
    KVLAB_EXIT_USAGE = 2,     /* bad flag, bad value, unknown engine or mode */
    KVLAB_EXIT_DATA = 3,      /* data or I/O error: corruption, I/O, busy, check failed */
};

typedef enum cli_kind {
    CLI_BOOL,  /* present or not */
    CLI_VALUE, /* takes one value; a later one replaces an earlier one */
    CLI_MULTI, /* takes one value; may repeat, every value kept in order */
} cli_kind;

typedef struct cli_flag {
    const char *name; /* long name without "--" */
    char short_name;  /* one-letter alias ('o' for -o) or 0 */
    cli_kind kind;
    const char *metavar; /* placeholder in help ("DIR") */
    const char *help;    /* one line */
} cli_flag;

#define CLI_MAX_FLAGS 40
#define CLI_MAX_MULTI 64
#define CLI_MAX_POS   8

typedef struct cli_args {
    bool set[CLI_MAX_FLAGS];
    const char *value[CLI_MAX_FLAGS]; /* points into argv */
    const char *multi[CLI_MAX_MULTI]; /* values of CLI_MULTI flags, in order */
    int multi_flag[CLI_MAX_MULTI];    /* which flag each multi value belongs to */
    size_t n_multi;
    const char *pos[CLI_MAX_POS]; /* positional arguments */
    size_t n_pos;
    bool help;     /* --help or -h was given */
    char err[256]; /* the one-line error when cli_parse returns false */
} cli_args;

/* Parses argv[0..argc) (argv[0] is the first argument after the subcommand name) against flags
 * (n_flags <= CLI_MAX_FLAGS). At most max_pos positionals (<= CLI_MAX_POS). Values point into
 * argv (not copied). Returns false with a message in a->err for an unknown flag, a missing
 * value, a value given to a boolean flag, or too many positionals. */
bool cli_parse(const cli_flag *flags, size_t n_flags, int argc, char **argv, size_t max_pos,
               cli_args *a);

/* The index of the flag named name in flags, or -1. */
int cli_index(const cli_flag *flags, size_t n_flags, const char *name);

/* The value of flag name (NULL when absent or boolean). */
const char *cli_get(const cli_flag *flags, size_t n_flags, const cli_args *a, const char *name);

/* Whether flag name was given. */
bool cli_has(const cli_flag *flags, size_t n_flags, const cli_args *a, const char *name);

/* Prints "kvlab: <fmt...> (see kvlab <cmd> --help)" to stderr and returns KVLAB_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints the help of a subcommand: usage line, description paragraph, then each flag. */
void cli_print_help(FILE *out, const char *usage, const char *description, const cli_flag *flags,
                    size_t n_flags);

/* Parses an unsigned decimal integer with an optional suffix: for sizes (binary true) K, M, G
 * (also KiB, MiB, GiB, k, m, g) are powers of 1024; for counts (binary false) k, M, G (K, m, g)
 * are powers of 1000. Accepts [min, max]. Returns false with a message in err (cap bytes). */
bool cli_parse_u64(const char *text, bool binary, uint64_t min, uint64_t max, uint64_t *out,
                   char *err, size_t cap);

/* Splits a comma-separated list into at most max items (copies into items, each at most
 * item_cap bytes with NUL). Empty items are an error. Returns the count, or -1 with err set. */
int cli_split_list(const char *text, char items[][48], size_t max, char *err, size_t cap);

/* Decodes hex text (even length, 0-9 a-f A-F) into a malloc'd buffer (*out, *len). Returns
 * false for bad text (nothing allocated). */
bool cli_hex_decode(const char *text, uint8_t **out, size_t *len);

/* Writes bytes to out as lowercase hex. */
void cli_write_hex(FILE *out, const void *p, size_t n);

/* Writes bytes to out with printable ASCII kept, backslash as "\\" and anything else (tab,
 * newline, bytes >= 0x7f) as "\xNN", so that one record stays on one line. */
void cli_write_escaped(FILE *out, const void *p, size_t n);

/* Formats n bytes as "12.3 MiB" (or "512 B") into buf (cap bytes). Returns buf. */
char *cli_human_bytes(uint64_t n, char *buf, size_t cap);

#endif
