/* kvlab-crashfs: mounts a crashfs (crashfs.h) for any program, in the foreground.
 *
 *   kvlab-crashfs [--policy P] [--seed S] [--at N] [--scratch DIR] BACKING MOUNTPOINT
 *
 * Programs use MOUNTPOINT as an ordinary directory; their files live in BACKING. The power goes
 * out at operation N (--at), or on command: SIGUSR1. Then every later request on the mount fails
 * with EIO, BACKING is rewritten to what policy P (default random; seed S, default 1) lets
 * survive, the mount goes away and the program prints the operations counted and exits 0.
 * SIGINT or SIGTERM unmount without a power loss (everything written stays, as after a clean
 * shutdown). Exit 2: bad usage; 3: FUSE not available or an I/O error. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "crashfs.h"

static const char usage[] =
    "usage: kvlab-crashfs [--policy lose|keep|random|torn|torn-bytes] [--seed S] [--at N]\n"
    "                     [--scratch DIR] BACKING MOUNTPOINT\n"
    "Power loss at operation N or on SIGUSR1; SIGINT/SIGTERM unmount without one.\n";

int main(int argc, char **argv)
{
    kv_crash_policy policy = KV_CRASH_RANDOM;
    unsigned long long seed = 1, at = 0;
    const char *scratch = NULL, *pos[2] = {NULL, NULL};
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--policy") && v) {
            if (kv_crash_policy_parse(v, &policy) != KV_OK) {
                fprintf(stderr, "kvlab-crashfs: %s\n", kv_errmsg());
                return 2;
            }
            i++;
        } else if ((!strcmp(a, "--seed") || !strcmp(a, "--at")) && v) {
            errno = 0;
            unsigned long long n = strtoull(v, &end, 0);
            if (errno || *end || *v == '-') {
                fprintf(stderr, "kvlab-crashfs: bad %s '%s'\n%s", a, v, usage);
                return 2;
            }
            *(!strcmp(a, "--seed") ? &seed : &at) = n;
            i++;
        } else if (!strcmp(a, "--scratch") && v) {
            scratch = v;
            i++;
        } else if (a[0] != '-' && npos < 2) {
            pos[npos++] = a;
        } else {
            fprintf(stderr, "kvlab-crashfs: unknown option or missing value: %s\n%s", a, usage);
            return 2;
        }
    }
    if (npos != 2) {
        fputs(usage, stderr);
        return 2;
    }
    char *scr = scratch ? strdup(scratch) : NULL;
    if (!scr && asprintf(&scr, "%s.crashfs-scratch", pos[0]) < 0)
        return 3;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL); /* before the serving thread starts: it inherits it */
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    crashfs *c = NULL;
    if (sfd < 0 || crashfs_mount(pos[0], pos[1], scr, &c) != KV_OK) {
        fprintf(stderr, "kvlab-crashfs: %s\n", sfd < 0 ? strerror(errno) : kv_errmsg());
        free(scr);
        return 3;
    }
    crashfs_set_crash_at(c, at);
    printf("crashfs: %s mounted at %s; power loss %s%llu or on SIGUSR1 (policy %s, seed %llu)\n",
           pos[0], pos[1], at ? "at operation " : "", at, kv_crash_policy_name(policy), seed);
    fflush(stdout);
    bool power_loss = false;
    for (;;) {
        struct pollfd p[2] = {{.fd = sfd, .events = POLLIN},
                              {.fd = crashfs_crash_fd(c), .events = POLLIN}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents & POLLIN) {
            power_loss = true;
            break;
        }
        if (p[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) != sizeof si)
                continue;
            power_loss = si.ssi_signo == SIGUSR1;
            break;
        }
    }
    int rc = 0;
    uint64_t ops = crashfs_ops(c);
    if (power_loss && crashfs_power_loss(c, policy, seed) != KV_OK) {
        fprintf(stderr, "kvlab-crashfs: %s\n", kv_errmsg());
        rc = 3;
    }
    crashfs_unmount(c);
    printf("crashfs: %s after %llu operations\n", power_loss ? "power lost" : "unmounted cleanly",
           (unsigned long long)ops);
    close(sfd);
    free(scr);
    return rc;
}
