/* /proc/self/io, the interposer's sync counter, directory sizes and removal (iocount.h). */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iocount.h"

/* Defined by interpose.c, which only the kvlab executable links. */
extern uint64_t kvlab_interposed_syncs(void) __attribute__((weak));

bool io_proc_read(uint64_t *wchar, uint64_t *write_bytes)
{
    FILE *f = fopen("/proc/self/io", "r");
    if (!f)
        return false;
    char line[128];
    int found = 0;
    unsigned long long v;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "wchar: %llu", &v) == 1) {
            *wchar = v;
            found++;
        } else if (sscanf(line, "write_bytes: %llu", &v) == 1) {
            *write_bytes = v;
            found++;
        }
    }
    fclose(f);
    return found == 2;
}

bool io_proc_rchar(uint64_t *rchar)
{
    FILE *f = fopen("/proc/self/io", "r");
    if (!f)
        return false;
    char line[128];
    unsigned long long v;
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        if (sscanf(line, "rchar: %llu", &v) == 1) {
            *rchar = v;
            found = true;
        }
    fclose(f);
    return found;
}

uint64_t io_sync_calls(bool *available)
{
    *available = kvlab_interposed_syncs != NULL;
    return *available ? kvlab_interposed_syncs() : 0;
}

static _Thread_local uint64_t walk_bytes, walk_files;

static int walk_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (type == FTW_F && S_ISREG(st->st_mode)) {
        uint64_t size = (uint64_t)st->st_size, alloc = (uint64_t)st->st_blocks * 512;
        walk_bytes += size < alloc ? size : alloc;
        walk_files++;
    }
    return 0;
}

bool io_dir_bytes(const char *dir, uint64_t *bytes, uint64_t *files)
{
    walk_bytes = walk_files = 0;
    if (nftw(dir, walk_cb, 16, FTW_PHYS) != 0)
        return false;
    *bytes = walk_bytes;
    *files = walk_files;
    return true;
}

static int rm_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return (type == FTW_DP ? rmdir(path) : unlink(path)) == 0 || errno == ENOENT ? 0 : -1;
}

bool io_rmtree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT;
    return nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS) == 0;
}

bool io_mkdirs(const char *dir)
{
    char buf[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof buf) {
        errno = ENAMETOOLONG;
        return false;
    }
    memcpy(buf, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return false;
            buf[i] = c;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0)
        return false;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return false;
    }
    return true;
}
