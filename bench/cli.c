/* The flag parser and text helpers of cli.h. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_index(const cli_flag *flags, size_t n_flags, const char *name)
{
    for (size_t i = 0; i < n_flags; i++)
        if (!strcmp(flags[i].name, name))
            return (int)i;
    return -1;
}

static int find_long(const cli_flag *flags, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(flags[i].name) == len && !strncmp(flags[i].name, name, len))
            return (int)i;
    return -1;
}

static int find_short(const cli_flag *flags, size_t n, char c)
{
    for (size_t i = 0; i < n; i++)
        if (flags[i].short_name && flags[i].short_name == c)
            return (int)i;
    return -1;
}

static bool fail(cli_args *a, const char *fmt, const char *arg)
{
    snprintf(a->err, sizeof a->err, fmt, arg);
    return false;
}

static bool store(const cli_flag *flags, int fi, const char *val, cli_args *a)
{
    a->set[fi] = true;
    if (flags[fi].kind == CLI_MULTI) {
        if (a->n_multi >= CLI_MAX_MULTI)
            return fail(a, "too many --%s flags", flags[fi].name);
        a->multi[a->n_multi] = val;
        a->multi_flag[a->n_multi++] = fi;
    } else {
        a->value[fi] = val;
    }
    return true;
}

bool cli_parse(const cli_flag *flags, size_t n_flags, int argc, char **argv, size_t max_pos,
               cli_args *a)
{
    memset(a, 0, sizeof *a);
    if (n_flags > CLI_MAX_FLAGS)
        return fail(a, "internal: too many flags%s", "");
    if (max_pos > CLI_MAX_POS)
        max_pos = CLI_MAX_POS;
    bool flags_done = false;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (flags_done || arg[0] != '-' || !strcmp(arg, "-")) {
            if (a->n_pos >= max_pos)
                return fail(a, "unexpected argument '%s'", arg);
            a->pos[a->n_pos++] = arg;
            continue;
        }
        if (!strcmp(arg, "--")) {
            flags_done = true;
            continue;
        }
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            a->help = true;
            continue;
        }
        int fi;
        const char *inline_val = NULL;
        if (arg[1] == '-') {
            const char *name = arg + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            fi = find_long(flags, n_flags, name, len);
            if (fi < 0) {
                char shown[96];
                snprintf(shown, sizeof shown, "--%.*s", (int)(len < 80 ? len : 80), name);
                return fail(a, "unknown flag %s", shown);
            }
            if (eq)
                inline_val = eq + 1;
        } else {
            if (arg[2] != '\0' && (fi = find_short(flags, n_flags, arg[1])) >= 0 &&
                flags[fi].kind != CLI_BOOL) {
                inline_val = arg + 2; /* -okey=value */
            } else {
                fi = arg[2] == '\0' ? find_short(flags, n_flags, arg[1]) : -1;
                if (fi < 0)
                    return fail(a, "unknown flag %s", arg);
            }
        }
        if (flags[fi].kind == CLI_BOOL) {
            if (inline_val)
                return fail(a, "flag --%s takes no value", flags[fi].name);
            a->set[fi] = true;
            continue;
        }
        const char *val = inline_val;
        if (!val) {
            if (i + 1 >= argc)
                return fail(a, "flag --%s needs a value", flags[fi].name);
            val = argv[++i];
        }
        if (!store(flags, fi, val, a))
            return false;
    }
    return true;
}

const char *cli_get(const cli_flag *flags, size_t n_flags, const cli_args *a, const char *name)
{
    int i = cli_index(flags, n_flags, name);
    return i >= 0 && a->set[i] ? a->value[i] : NULL;
}

bool cli_has(const cli_flag *flags, size_t n_flags, const cli_args *a, const char *name)
{
    int i = cli_index(flags, n_flags, name);
    return i >= 0 && a->set[i];
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (cmd)
        fprintf(stderr, "kvlab: %s (see kvlab %s --help)\n", msg, cmd);
    else
        fprintf(stderr, "kvlab: %s (see kvlab --help)\n", msg);
    return KVLAB_EXIT_USAGE;
}

void cli_print_help(FILE *out, const char *usage, const char *description, const cli_flag *flags,
                    size_t n_flags)
{
    fprintf(out, "usage: %s\n\n%s\n", usage, description);
    if (!n_flags)
        return;
    fprintf(out, "\nflags:\n");
    for (size_t i = 0; i < n_flags; i++) {
        char left[64];
        const cli_flag *f = &flags[i];
        if (f->short_name)
            snprintf(left, sizeof left, "-%c, --%s%s%s", f->short_name, f->name,
                     f->kind == CLI_BOOL ? "" : " ", f->kind == CLI_BOOL ? "" : f->metavar);
        else
            snprintf(left, sizeof left, "    --%s%s%s", f->name, f->kind == CLI_BOOL ? "" : " ",
                     f->kind == CLI_BOOL ? "" : f->metavar);
        fprintf(out, "  %-28s %s\n", left, f->help);
    }
    fprintf(out, "  %-28s %s\n", "-h, --help", "this help");
}

bool cli_parse_u64(const char *text, bool binary, uint64_t min, uint64_t max, uint64_t *out,
                   char *err, size_t cap)
{
    if (!text || !isdigit((unsigned char)text[0])) {
        snprintf(err, cap, "'%s' is not a number", text ? text : "");
        return false;
    }
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno) {
        snprintf(err, cap, "'%s' is too large", text);
        return false;
    }
    uint64_t mult = 1, base = binary ? 1024 : 1000;
    if (*end) {
        char c = (char)tolower((unsigned char)*end);
        const char *rest = end + 1;
        if (c == 'k')
            mult = base;
        else if (c == 'm')
            mult = base * base;
        else if (c == 'g')
            mult = base * base * base;
        else
            mult = 0;
        if (mult && binary && !strcmp(rest, "iB"))
            rest += 2;
        if (!mult || *rest) {
            snprintf(err, cap, "'%s' is not a number (suffixes: %s)", text,
                     binary ? "K, M, G = 1024^n" : "k, M, G = 1000^n");
            return false;
        }
    }
    if (v > UINT64_MAX / mult) {
        snprintf(err, cap, "'%s' is too large", text);
        return false;
    }
    v *= mult;
    if (v < min || v > max) {
        snprintf(err, cap, "%s is outside [%llu, %llu]", text, (unsigned long long)min,
                 (unsigned long long)max);
        return false;
    }
    *out = v;
    return true;
}

int cli_split_list(const char *text, char items[][48], size_t max, char *err, size_t cap)
{
    size_t n = 0;
    const char *p = text ? text : "";
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0) {
            snprintf(err, cap, "empty item in list '%s'", text ? text : "");
            return -1;
        }
        if (len >= 48) {
            snprintf(err, cap, "item '%.*s' too long", (int)(len > 60 ? 60 : len), p);
            return -1;
        }
        if (n >= max) {
            snprintf(err, cap, "too many items in list '%s' (at most %zu)", text, max);
            return -1;
        }
        memcpy(items[n], p, len);
        items[n][len] = '\0';
        n++;
        if (!comma)
            break;
        p = comma + 1;
    }
    return (int)n;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool cli_hex_decode(const char *text, uint8_t **out, size_t *len)
{
    size_t n = strlen(text);
    if (n % 2)
        return false;
    uint8_t *b = malloc(n / 2 + 1);
    if (!b)
        return false;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(text[2 * i]), lo = hexval(text[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(b);
            return false;
        }
        b[i] = (uint8_t)(hi << 4 | lo);
    }
    *out = b;
    *len = n / 2;
    return true;
}

void cli_write_hex(FILE *out, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%02x", b[i]);
}

void cli_write_escaped(FILE *out, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        if (b[i] == '\\')
            fputs("\\\\", out);
        else if (b[i] >= 0x20 && b[i] < 0x7f)
            fputc(b[i], out);
        else
            fprintf(out, "\\x%02x", b[i]);
    }
}

char *cli_human_bytes(uint64_t n, char *buf, size_t cap)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, cap, "%llu B", (unsigned long long)n);
    else
        snprintf(buf, cap, "%.1f %s", v, units[u]);
    return buf;
}
