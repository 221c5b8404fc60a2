/* Helpers shared by the production-peer adapters; see peer_util.h. */
#include "peer_util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

kv_status peer_status_text(const char *what, const char *msg)
{
    if (!msg)
        msg = "(no message)";
    kv_status s = KV_IO;
    if (!strncmp(msg, "Corruption", 10))
        s = KV_CORRUPTION;
    else if (strstr(msg, "No space left") || strstr(msg, "NoSpace") ||
             strstr(msg, "Disk quota exceeded"))
        s = KV_NOSPACE;
    else if (strstr(msg, "lock") &&
             (strstr(msg, "temporarily unavailable") || strstr(msg, "already held")))
        s = KV_BUSY;
    else if (strstr(msg, "does not exist"))
        s = KV_NOT_FOUND;
    else if (!strncmp(msg, "Invalid argument", 16))
        s = KV_INVALID;
    else if (!strncmp(msg, "Not implemented", 15) || !strncmp(msg, "Not supported", 13) ||
             !strncmp(msg, "Operation not supported", 23))
        s = KV_NOTSUP;
    return kv_error(s, "%s: %s", what, msg);
}

kv_status peer_fdatasync_path(kv_fs *fs, const char *path, bool missing_ok)
{
    kv_file *f = NULL;
    kv_status s = kv_fs_open(fs, path, KV_FS_READ, &f);
    if (s == KV_NOT_FOUND && missing_ok)
        return KV_OK;
    if (s != KV_OK)
        return s;
    s = kv_file_fdatasync(f);
    kv_file_close(f);
    return s;
}

typedef struct numbered {
    uint64_t n;
    const char *name;
} numbered;

static int cmp_numbered(const void *a, const void *b)
{
    const numbered *x = a, *y = b;
    if (x->n != y->n)
        return x->n < y->n ? -1 : 1;
    return strcmp(x->name, y->name);
}

kv_status peer_sync_numbered(kv_fs *fs, const char *dir, const char *suffix, uint64_t *dir_synced)
{
    kv_namelist l;
    kv_status s = kv_fs_list(fs, dir, &l);
    if (s != KV_OK)
        return s;
    size_t sl = strlen(suffix), n = 0;
    numbered *v = calloc(l.count ? l.count : 1, sizeof *v);
    if (!v) {
        kv_namelist_free(&l);
        return kv_error(KV_NOMEM, "%s: out of memory listing files", dir);
    }
    for (size_t i = 0; i < l.count; i++) {
        size_t len = strlen(l.names[i]);
        if (len > sl && !strcmp(l.names[i] + len - sl, suffix))
            v[n++] = (numbered){strtoull(l.names[i], NULL, 10), l.names[i]};
    }
    qsort(v, n, sizeof *v, cmp_numbered);
    for (size_t i = 0; i < n && s == KV_OK; i++) {
        char *p = kv_path_join(dir, v[i].name);
        s = p ? peer_fdatasync_path(fs, p, true) : kv_error(KV_NOMEM, "out of memory");
        free(p);
    }
    uint64_t top = n ? v[n - 1].n : 0;
    if (s == KV_OK && top > *dir_synced) {
        s = kv_fs_fsync_dir(fs, dir);
        if (s == KV_OK)
            *dir_synced = top;
    }
    free(v);
    kv_namelist_free(&l);
    return s;
}

peer_io peer_io_now(void)
{
    peer_io io = {0, 0};
    FILE *f = fopen("/proc/self/io", "r");
    if (!f)
        return io;
    char line[128];
    while (fgets(line, sizeof line, f)) {
        unsigned long long v;
        if (sscanf(line, "rchar: %llu", &v) == 1)
            io.rchar = v;
        else if (sscanf(line, "wchar: %llu", &v) == 1)
            io.wchar = v;
    }
    fclose(f);
    return io;
}

void peer_fill_io(kv_stats *s, peer_io base)
{
    peer_io now = peer_io_now();
    uint64_t ours = s->fdatasyncs;
    s->file_bytes_written = now.wchar >= base.wchar ? now.wchar - base.wchar : UINT64_MAX;
    s->file_bytes_read = now.rchar >= base.rchar ? now.rchar - base.rchar : UINT64_MAX;
    s->fsyncs = UINT64_MAX;
    s->fdatasyncs = UINT64_MAX;
    kv_stats_add(s, "kvlab_fdatasyncs", ours);
}

kv_status peer_poison_on(peer_poison *p, kv_status s)
{
    if (s == KV_IO)
        atomic_store(&p->set, true);
    return s;
}

kv_status peer_poison_check(peer_poison *p, const char *engine)
{
    if (atomic_load(&p->set))
        return kv_error(KV_POISONED, "%s: an earlier write or sync failed; reopen the database",
                        engine);
    return KV_OK;
}

void *peer_dup(const void *p, size_t n)
{
    void *r = malloc(n ? n : 1);
    if (r && n)
        memcpy(r, p, n);
    return r;
}

int peer_key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t m = alen < blen ? alen : blen;
    int c = m ? memcmp(a, b, m) : 0;
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}
