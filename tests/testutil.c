#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc.h"

/* Every directory tu_mkdtemp made, removed at exit (a failed test leaves its own behind
 * otherwise) unless KVLAB_KEEP_TEST_DIRS is set, and only by the process that made it: a forked
 * child that calls exit() must not remove its parent's directories. */
static char **made;
static size_t nmade, capmade;
static pid_t made_by;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw);

static void remove_made(void)
{
    bool keep = getenv("KVLAB_KEEP_TEST_DIRS") != NULL;
    for (size_t i = 0; i < nmade; i++) {
        struct stat st;
        if (getpid() == made_by && stat(made[i], &st) == 0) {
            if (keep)
                fprintf(stderr, "kept %s (KVLAB_KEEP_TEST_DIRS)\n", made[i]);
            else
                nftw(made[i], rm_one, 16, FTW_DEPTH | FTW_PHYS);
        }
        free(made[i]);
    }
    free(made);
    made = NULL;
    nmade = capmade = 0;
}

static void remember(const char *p)
{
    if (!made_by) {
        made_by = getpid();
        atexit(remove_made);
    }
    if (getpid() != made_by)
        return;
    if (nmade == capmade) {
        size_t cap = capmade ? capmade * 2 : 16;
        char **n = realloc(made, cap * sizeof *n);
        if (!n)
            return; /* only the clean-up is lost */
        made = n;
        capmade = cap;
    }
    if ((made[nmade] = strdup(p)) != NULL)
        nmade++;
}

char *tu_mkdtemp(const char *tag)
{
    const char *base = getenv("KVLAB_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    mkdir(base, 0755);
    size_t n = strlen(base) + strlen(tag) + 16;
    char *p = malloc(n);
    if (!p)
        abort();
    snprintf(p, n, "%s/%s-XXXXXX", base, tag);
    if (!mkdtemp(p)) {
        fprintf(stderr, "mkdtemp(%s): %s\n", p, strerror(errno));
        abort();
    }
    remember(p);
    return p;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tu_rmtree(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

uint64_t tu_seed(uint64_t dflt)
{
    const char *s = getenv("KVLAB_SEED");
    uint64_t seed = s && *s ? strtoull(s, NULL, 0) : dflt;
    fprintf(stderr, "seed=%llu (set KVLAB_SEED to replay)\n", (unsigned long long)seed);
    return seed;
}

/* One line per entry of dir (recursively, in name order): "path size crc32 mtime-ns". */
static void state_of(const char *dir, const char *rel, char **out, size_t *len, size_t *cap)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        const char *nm = names[i]->d_name;
        if (strcmp(nm, ".") && strcmp(nm, "..")) {
            char path[4096], sub[4096], line[4400];
            snprintf(path, sizeof path, "%s/%s", dir, nm);
            snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", nm);
            struct stat st;
            if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
                snprintf(line, sizeof line, "%s/\n", sub);
            } else {
                uint32_t crc = 0;
                FILE *f = fopen(path, "rb");
                uint8_t buf[65536];
                size_t got;
                while (f && (got = fread(buf, 1, sizeof buf, f)) > 0)
                    crc = kv_crc32_extend(crc, buf, got);
                if (f)
                    fclose(f);
                snprintf(line, sizeof line, "%s %lld %08x %lld.%09ld\n", sub, (long long)st.st_size,
                         (unsigned)crc, (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);
            }
            size_t ll = strlen(line);
            while (*len + ll + 1 > *cap) {
                *cap = *cap ? *cap * 2 : 4096;
                if (!(*out = realloc(*out, *cap)))
                    abort();
            }
            memcpy(*out + *len, line, ll + 1);
            *len += ll;
            if (S_ISDIR(st.st_mode))
                state_of(path, sub, out, len, cap);
        }
        free(names[i]);
    }
    free(names);
}

char *tu_dir_state(const char *dir)
{
    char *out = NULL;
    size_t len = 0, cap = 0;
    state_of(dir, "", &out, &len, &cap);
    if (!out && !(out = calloc(1, 1)))
        abort();
    return out;
}
