/* The CPU-load helper process (cpuload.h).
 *
 * Parent and helper talk over a socketpair: the parent sends one byte, the number of threads
 * that should spin; the helper answers one byte once exactly that many spin. The helper's main
 * thread only reads commands; its busy-loop threads park on a condition variable between
 * measured phases, so an idle helper costs nothing. */
#include "cpuload.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the helper process ---- */

static pthread_mutex_t h_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t h_go = PTHREAD_COND_INITIALIZER;   /* target changed */
static pthread_cond_t h_done = PTHREAD_COND_INITIALIZER; /* running changed */
static _Atomic unsigned h_target;                        /* threads 0..target-1 spin */
static unsigned h_running;                               /* threads spinning (h_mu) */
static volatile uint64_t h_sink;                         /* keeps the loop's work alive */

static void *spin_main(void *arg)
{
    unsigned i = (unsigned)(uintptr_t)arg;
    for (;;) {
        pthread_mutex_lock(&h_mu);
        while (atomic_load(&h_target) <= i)
            pthread_cond_wait(&h_go, &h_mu);
        h_running++;
        pthread_cond_broadcast(&h_done);
        pthread_mutex_unlock(&h_mu);
        uint64_t x = i;
        while (atomic_load_explicit(&h_target, memory_order_relaxed) > i)
            x = x * 6364136223846793005u + 1442695040888963407u; /* a plain busy loop */
        h_sink = x;
        pthread_mutex_lock(&h_mu);
        h_running--;
        pthread_cond_broadcast(&h_done);
        pthread_mutex_unlock(&h_mu);
    }
    return NULL;
}

/* The helper's main: starts max threads (parked), says 'R' (or 'E' and exits), then serves
 * commands until the connection ends. Never returns. */
static void helper_main(int fd, unsigned max)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    for (unsigned i = 0; i < max; i++) {
        pthread_t th;
        if (pthread_create(&th, &attr, spin_main, (void *)(uintptr_t)i) != 0) {
            (void)send(fd, "E", 1, MSG_NOSIGNAL);
            _exit(1);
        }
    }
    if (send(fd, "R", 1, MSG_NOSIGNAL) != 1)
        _exit(1);
    for (;;) {
        unsigned char n;
        ssize_t r = recv(fd, &n, 1, 0);
        if (r == 0 || (r < 0 && errno != EINTR))
            _exit(0); /* the parent closed the connection or died */
        if (r < 0)
            continue;
        pthread_mutex_lock(&h_mu);
        atomic_store(&h_target, n);
        pthread_cond_broadcast(&h_go);
        while (h_running != n)
            pthread_cond_wait(&h_done, &h_mu);
        pthread_mutex_unlock(&h_mu);
        if (send(fd, "A", 1, MSG_NOSIGNAL) != 1)
            _exit(0);
    }
}

/* ---- the parent's side ---- */

static int p_fd = -1;      /* the parent's end of the socketpair, -1: no helper */
static pid_t p_pid;        /* the helper */
static unsigned p_max;     /* its threads */
static unsigned p_running; /* threads spinning now */

/* The threads of this process (entries of /proc/self/task), 0 when unknown. */
static unsigned own_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return 0;
    unsigned n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

bool cpuload_start(unsigned max_threads, char *err, size_t cap)
{
    if (p_fd >= 0) {
        snprintf(err, cap, "cpu load: the helper process already runs");
        return false;
    }
    if (max_threads < 1 || max_threads > CPULOAD_MAX) {
        snprintf(err, cap, "cpu load: %u threads (1 to %d)", max_threads, CPULOAD_MAX);
        return false;
    }
    unsigned threads = own_threads();
    if (threads > 1) {
        snprintf(err, cap, "cpu load: the helper must be forked before any thread starts (%u run)",
                 threads);
        return false;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        snprintf(err, cap, "cpu load: socketpair: %s", strerror(errno));
        return false;
    }
    pid_t parent = getpid();
    fflush(NULL); /* nothing buffered is written twice */
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, cap, "cpu load: fork: %s", strerror(errno));
        close(sv[0]);
        close(sv[1]);
        return false;
    }
    if (pid == 0) {
        close(sv[0]);
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(0); /* the parent is already gone */
        helper_main(sv[1], max_threads);
    }
    close(sv[1]);
    char c = 0;
    ssize_t r;
    while ((r = recv(sv[0], &c, 1, 0)) < 0 && errno == EINTR)
        ;
    if (r != 1 || c != 'R') {
        snprintf(err, cap, "cpu load: the helper process could not start its %u threads",
                 max_threads);
        close(sv[0]);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return false;
    }
    p_fd = sv[0];
    p_pid = pid;
    p_max = max_threads;
    p_running = 0;
    return true;
}

bool cpuload_run(unsigned n, char *err, size_t cap)
{
    if (p_fd < 0) {
        if (n == 0)
            return true;
        snprintf(err, cap, "cpu load: no helper process started");
        return false;
    }
    if (n > p_max) {
        snprintf(err, cap, "cpu load: %u threads asked, the helper has %u", n, p_max);
        return false;
    }
    if (n == p_running)
        return true;
    unsigned char b = (unsigned char)n;
    char c = 0;
    ssize_t r;
    while ((r = send(p_fd, &b, 1, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    if (r == 1)
        while ((r = recv(p_fd, &c, 1, 0)) < 0 && errno == EINTR)
            ;
    if (r != 1 || c != 'A') {
        snprintf(err, cap, "cpu load: the helper process is gone");
        return false;
    }
    p_running = n;
    return true;
}

void cpuload_stop(void)
{
    if (p_fd < 0)
        return;
    close(p_fd); /* the helper exits at the end of its connection */
    kill(p_pid, SIGKILL);
    while (waitpid(p_pid, NULL, 0) < 0 && errno == EINTR)
        ;
    p_fd = -1;
    p_running = 0;
}
