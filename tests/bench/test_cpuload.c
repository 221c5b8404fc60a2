/* bench/cpuload.c: the helper process of kvlab bench --cpu-load. It starts only in a process
 * without other threads, spins exactly the threads asked for, parks them again, refuses what it
 * cannot do with a message, and is gone after cpuload_stop. */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cpuload.h"

static char err[256];

/* The pid of this process's child (the helper), 0 when there is none. */
static pid_t helper_pid(void)
{
    DIR *d = opendir("/proc");
    assert_non_null(d);
    pid_t found = 0;
    for (struct dirent *e; (e = readdir(d));) {
        char path[300], comm[64], st;
        int pid, ppid;
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (fscanf(f, "%d %63s %c %d", &pid, comm, &st, &ppid) == 4 && ppid == getpid() &&
            st != 'Z')
            found = pid;
        fclose(f);
    }
    closedir(d);
    return found;
}

/* The helper's threads (main thread included), and in *running those in state R. */
static int helper_threads(pid_t pid, int *running)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    assert_non_null(d);
    int n = 0;
    *running = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char stat[300], comm[64], st = '?';
        int tid;
        snprintf(stat, sizeof stat, "/proc/%d/task/%s/stat", (int)pid, e->d_name);
        FILE *f = fopen(stat, "r");
        if (!f)
            continue;
        if (fscanf(f, "%d %63s %c", &tid, comm, &st) == 3) {
            n++;
            *running += st == 'R';
        }
        fclose(f);
    }
    closedir(d);
    return n;
}

/* Whether exactly want of the helper's threads are running, in three looks 10 ms apart in a
 * row, within 5 s (a parked thread may be runnable for a moment when it is woken). */
static bool settles_at(pid_t pid, int want)
{
    int in_row = 0;
    for (int i = 0; i < 500 && in_row < 3; i++) {
        int r;
        helper_threads(pid, &r);
        in_row = r == want ? in_row + 1 : 0;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    return in_row == 3;
}

static void *blocked_main(void *arg)
{
    pthread_barrier_wait(arg); /* started */
    pthread_barrier_wait(arg); /* released */
    return NULL;
}

/* Forked from a multi-threaded process the helper could not safely start threads: refused. */
static void test_refused_beside_threads(void **state)
{
    (void)state;
    pthread_barrier_t b;
    pthread_barrier_init(&b, NULL, 2);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, blocked_main, &b), 0);
    pthread_barrier_wait(&b);
    assert_false(cpuload_start(2, err, sizeof err));
    assert_non_null(strstr(err, "before any thread starts"));
    pthread_barrier_wait(&b);
    pthread_join(th, NULL);
    pthread_barrier_destroy(&b);
    assert_int_equal(helper_pid(), 0);
}

static void test_bad_requests(void **state)
{
    (void)state;
    assert_true(cpuload_run(0, err, sizeof err)); /* no load asked, none needed */
    assert_false(cpuload_run(1, err, sizeof err));
    assert_non_null(strstr(err, "no helper process"));
    assert_false(cpuload_start(0, err, sizeof err));
    assert_false(cpuload_start(CPULOAD_MAX + 1, err, sizeof err));
    assert_non_null(strstr(err, "1 to"));
    cpuload_stop(); /* nothing to stop */
}

static void test_spins_what_is_asked(void **state)
{
    (void)state;
    /* Wait for the thread of the previous test to be gone from /proc/self/task. */
    for (int i = 0; i < 100 && !cpuload_start(3, err, sizeof err); i++) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    pid_t pid = helper_pid();
    assert_true(pid > 0);
    assert_false(cpuload_start(3, err, sizeof err));
    assert_non_null(strstr(err, "already runs"));
    int r;
    assert_int_equal(helper_threads(pid, &r), 4); /* its main thread and 3 parked */
    assert_true(settles_at(pid, 0));
    assert_true(cpuload_run(2, err, sizeof err));
    assert_true(settles_at(pid, 2));
    assert_true(cpuload_run(3, err, sizeof err));
    assert_true(settles_at(pid, 3));
    assert_false(cpuload_run(4, err, sizeof err));
    assert_non_null(strstr(err, "the helper has 3"));
    assert_true(cpuload_run(1, err, sizeof err));
    assert_true(settles_at(pid, 1));
    assert_true(cpuload_run(0, err, sizeof err));
    assert_true(settles_at(pid, 0));
    cpuload_stop();
    assert_int_equal(helper_pid(), 0);
    assert_false(cpuload_run(1, err, sizeof err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_beside_threads),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_spins_what_is_asked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
