/* The subcommands of the kvlab command. Each takes the arguments after its name (argv[0] is the
 * first of them) and returns the process exit code (cli.h: 0 ok, 1 not found, 2 usage, 3 data
 * or I/O error). */
#ifndef KVLAB_BENCH_COMMANDS_H
#define KVLAB_BENCH_COMMANDS_H

int kvlab_cmd_put(int argc, char **argv);
int kvlab_cmd_get(int argc, char **argv);
int kvlab_cmd_del(int argc, char **argv);
int kvlab_cmd_scan(int argc, char **argv);
int kvlab_cmd_stats(int argc, char **argv);
int kvlab_cmd_check(int argc, char **argv);
int kvlab_cmd_dump(int argc, char **argv);
int kvlab_cmd_compact(int argc, char **argv);
int kvlab_cmd_load(int argc, char **argv);
int kvlab_cmd_engines(int argc, char **argv);
int kvlab_cmd_bench(int argc, char **argv);

#endif
