/* kvlab: the command-line entry. A table maps subcommand names to their functions, so that a
 * new subcommand (the crash checker's `crash`, compiled in when bench/crash/ exists) is one
 * more row. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#ifdef KVLAB_HAVE_CRASH
#include "crash/crash.h"
#endif

typedef struct subcommand {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} subcommand;

static const subcommand commands[] = {
    {"put", kvlab_cmd_put, "store a value under a key"},
    {"get", kvlab_cmd_get, "print the value of a key"},
    {"del", kvlab_cmd_del, "delete a key"},
    {"scan", kvlab_cmd_scan, "list keys and values in order, in a range"},
    {"load", kvlab_cmd_load, "write many records (TAB-separated lines or generated) in one open"},
    {"stats", kvlab_cmd_stats, "print the engine's statistics (kv_stats)"},
    {"check", kvlab_cmd_check, "verify every invariant of a database"},
    {"dump", kvlab_cmd_dump, "print the on-disk structures field by field"},
    {"compact", kvlab_cmd_compact, "merge, compact or checkpoint now; files before -> after"},
    {"engines", kvlab_cmd_engines, "list the engines with limits, durability modes, options"},
    {"bench", kvlab_cmd_bench, "run benchmarks and write CSV, JSON, Markdown and plots"},
#ifdef KVLAB_HAVE_CRASH
    {"crash", kvlab_cmd_crash, "crash-consistency checker"},
#endif
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void print_help(FILE *out)
{
    fprintf(out, "usage: kvlab COMMAND [flags] [args]\n\n"
                 "kvlab: storage engines for the study of DDIA ch. 3, their production peers,\n"
                 "a benchmark and a crash checker.\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun 'kvlab COMMAND --help' for the flags of a command.\n"
                 "'kvlab --help-engine NAME' is 'kvlab engines NAME'.\n\n"
                 "exit codes:\n"
                 "  0  success\n"
                 "  1  not found (get of an absent key)\n"
                 "  2  usage: unknown flag or command, bad value, unknown engine, a durability\n"
                 "     mode, key size or command (compact) the engine does not support\n"
                 "  3  data or I/O error: corruption, I/O failure, database busy or missing,\n"
                 "     check found a violation, a benchmark read a wrong value\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_help(stderr);
        return KVLAB_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        if (!strcmp(cmd, "help") && argc > 2) {
            for (size_t i = 0; i < N_COMMANDS; i++)
                if (!strcmp(commands[i].name, argv[2])) {
                    char *help_argv[] = {"--help", NULL};
                    return commands[i].run(1, help_argv);
                }
            return cli_usage_error(NULL, "unknown command '%s'", argv[2]);
        }
        print_help(stdout);
        return KVLAB_EXIT_OK;
    }
    if (!strcmp(cmd, "--help-engine"))
        return kvlab_cmd_engines(argc - 2, argv + 2);
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(commands[i].name, cmd))
            return commands[i].run(argc - 2, argv + 2);
    if (cmd[0] == '-')
        return cli_usage_error(NULL, "unknown flag %s before the command", cmd);
    return cli_usage_error(NULL, "unknown command '%s'", cmd);
}
