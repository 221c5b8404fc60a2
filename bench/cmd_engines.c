/* kvlab engines [NAME]: every registered engine with its description, declared limits,
 * durability modes and extra options (kv.h registry calls). --names prints the names only. */
#include <string.h>

#include "bench_null.h"
#include "cli.h"
#include "commands.h"
#include "kv.h"

static const cli_flag flags[] = {
    {"names", 0, CLI_BOOL, "", "print only the engine names, one per line"},
};

static void print_modes(unsigned mask)
{
    static const char *names[] = {"none", "os", "interval:MS", "sync"};
    const char *sep = "";
    for (int k = KV_DURABILITY_NONE; k <= KV_DURABILITY_SYNC; k++)
        if (mask & KV_DURABILITY_BIT(k)) {
            printf("%s%s", sep, names[k]);
            sep = ", ";
        }
    printf("\n");
}

static void print_engine(const char *name)
{
    kv_limits lim;
    kv_engine_limits(name, &lim);
    printf("%s\n  %s\n", name, kv_engine_description(name));
    printf("  limits: keys 1 to %zu bytes, values 0 to %llu bytes\n", lim.max_key,
           (unsigned long long)lim.max_value);
    printf("  durability: ");
    print_modes(kv_engine_durability_mask(name));
    const char *const *opts = kv_engine_option_help(name);
    printf("  options (-o KEY=VALUE):%s\n", opts && opts[0] ? "" : " none");
    for (size_t i = 0; opts && opts[i]; i++)
        printf("    %s\n", opts[i]);
}

int kvlab_cmd_engines(int argc, char **argv)
{
    cli_args a;
    if (!cli_parse(flags, 1, argc, argv, 1, &a))
        return cli_usage_error("engines", "%s", a.err);
    if (a.help) {
        cli_print_help(stdout, "kvlab engines [--names] [NAME]",
                       "Lists the registered engines (kvlab's own first, then the production\n"
                       "peers) with their description, key and value limits, durability modes\n"
                       "and engine-specific options. The benchmark also knows '" BENCH_NULL_NAME
                       "',\nits do-nothing engine for measuring harness overhead.",
                       flags, 1);
        return KVLAB_EXIT_OK;
    }
    const char *const *names = kv_engine_names();
    if (a.n_pos == 1) {
        if (!kv_engine_exists(a.pos[0]))
            return cli_usage_error("engines", "unknown engine '%s'", a.pos[0]);
        if (a.set[0])
            printf("%s\n", a.pos[0]);
        else
            print_engine(a.pos[0]);
        return KVLAB_EXIT_OK;
    }
    for (size_t i = 0; names[i]; i++) {
        if (a.set[0]) {
            printf("%s\n", names[i]);
            continue;
        }
        print_engine(names[i]);
        printf("\n");
    }
    if (!a.set[0]) {
        if (!names[0])
            printf("(no engines are built in)\n\n");
        printf("%s (kvlab bench only)\n  %s\n", BENCH_NULL_NAME, BENCH_NULL_DESCRIPTION);
    }
    return KVLAB_EXIT_OK;
}
