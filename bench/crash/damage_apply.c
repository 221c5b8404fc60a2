/* Choosing and applying one round's damage (damage_int.h: dmg_apply).
 *
 * Everything is drawn from the run's seed and the round number, so `--at N` replays round N. A
 * damage kind is drawn by weight; then a file kind uniformly among those the damage applies to
 * (so that CURRENT, a MANIFEST or a hint file is hit as often as the many tables), then one file
 * of that kind (a third of the time the last one by name: the newest log, the newest table).
 *
 * Each damage also sets how much loss it may legally cause (dmg_plan.lo). Only the newest log can
 * lose anything silently, and only as a torn tail. Damage confined to the bytes written after
 * the state's tail snapshot (damage_int.h: bytes the engine cannot tell from unsynced ones), or
 * bytes appended after the end, may cost the commits after that snapshot. Damage that starts
 * before and reaches into the log's last proof of durability (dmg_file.last_rec: a truncation,
 * sectors zeroed across the closing record) leaves the engine nothing to tell it from a torn
 * write: any suffix of the history may be gone. Anything else must lose nothing silently. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "damage_int.h"
#include "identity.h"
#include "reclog.h"

enum {
    W_FLIP1 = 20,
    W_FLIPN = 14,
    W_ZERO = 12,
    W_TRUNC = 12,
    W_APPEND = 8,
    W_DELETE = 7,
    W_SWAP = 7,
    W_REPLACE = 7,
    W_STALE = 8,
    W_ID = 5
};

static const unsigned weight[CRASH_DMG_KINDS] = {W_FLIP1,  W_FLIPN, W_ZERO,    W_TRUNC, W_APPEND,
                                                 W_DELETE, W_SWAP,  W_REPLACE, W_STALE, W_ID};

int dmg_read_file(const char *path, uint8_t **data, uint64_t *size)
{
    *data = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return -1;
    }
    uint8_t *b = malloc(st.st_size ? (size_t)st.st_size : 1);
    if (!b) {
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    uint64_t got = 0;
    while (got < (uint64_t)st.st_size) {
        ssize_t r = pread(fd, b + got, (size_t)((uint64_t)st.st_size - got), (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (uint64_t)r;
    }
    close(fd);
    *data = b;
    *size = got;
    return 0;
}

int dmg_write_file(const char *path, const void *data, uint64_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    const uint8_t *p = data;
    uint64_t done = 0;
    while (done < size) {
        ssize_t w = write(fd, p + done, (size_t)(size - done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            return -1;
        }
        done += (uint64_t)w;
    }
    return close(fd);
}

static bool kind_applies(const dmg_env *e, crash_dmg_kind k, const dmg_file *f)
{
    switch (k) {
    case CRASH_DMG_FLIP1:
    case CRASH_DMG_FLIPN:
    case CRASH_DMG_ZERO:
    case CRASH_DMG_TRUNC:
        return f->size > 0;
    case CRASH_DMG_SWAP:
        for (size_t i = 0; i < e->n; i++)
            if (&e->f[i] != f && !strcmp(e->f[i].kind, f->kind) &&
                (e->f[i].size != f->size || memcmp(e->f[i].data, f->data, f->size)))
                return true;
        return false;
    case CRASH_DMG_REPLACE:
        return f->in_other;
    case CRASH_DMG_STALE:
        return f->stale != 0;
    case CRASH_DMG_ID:
        return false;
    default:
        return true;
    }
}

/* A file for kind k: a file kind drawn uniformly among those with a file k applies to, then the
 * last such file of that kind (a third of the time) or any. -1 when there is none. */
static int pick_file(const dmg_env *e, crash_dmg_kind k, uint64_t *s)
{
    const char *kinds[256];
    size_t nk = 0;
    for (size_t i = 0; i < e->n && nk < 256; i++) {
        if (!kind_applies(e, k, &e->f[i]))
            continue;
        bool seen = false;
        for (size_t j = 0; j < nk && !seen; j++)
            seen = !strcmp(kinds[j], e->f[i].kind);
        if (!seen)
            kinds[nk++] = e->f[i].kind;
    }
    if (!nk)
        return -1;
    const char *kind = kinds[dmg_rnd(s) % nk];
    int idx[4096];
    size_t m = 0;
    for (size_t i = 0; i < e->n && m < 4096; i++)
        if (!strcmp(e->f[i].kind, kind) && kind_applies(e, k, &e->f[i]))
            idx[m++] = (int)i;
    /* e->f is sorted by name, so the last of a kind is the highest-numbered */
    return dmg_rnd(s) % 3 == 0 ? idx[m - 1] : idx[dmg_rnd(s) % m];
}

/* The loss a content damage over bytes [a, b) of f may cause (see the top of the file). */
static size_t lo_for(const dmg_env *e, const dmg_file *f, crash_dmg_kind k, uint64_t a, uint64_t b)
{
    size_t all = e->x.w.ncommits, tail_lo = e->tail_lo[e->state];
    if (f->age == DMG_NEW || f->age == DMG_REWRITTEN)
        return tail_lo;
    if (f->age != DMG_APPENDED)
        return all;
    if (k == CRASH_DMG_APPEND)
        return tail_lo;
    if (a < f->last_rec && b > f->last_rec)
        return 0; /* the last proof of durability is gone: any cut is indistinguishable */
    if (a >= f->tail_start)
        return tail_lo;
    return all;
}

static const char *field_name[] = {"crc",  "header crc",     "length",
                                   "type", "reserved bytes", "payload"};

/* An offset of f to flip, weighted towards its structure; *what describes it. */
static uint64_t pick_offset(const dmg_file *f, uint64_t *s, char *what, size_t cap)
{
    unsigned r = (unsigned)(dmg_rnd(s) % 100);
    uint64_t edge = f->size < 64 ? f->size : 64;
    if (f->has_map && r < 50) {
        const crash_reclog_map *m = &f->map;
        size_t i, last_data = m->n - 1;
        while (last_data > 0 && m->type[last_data] == KV_RECLOG_MARK)
            last_data--;
        unsigned rr = (unsigned)(dmg_rnd(s) % 100);
        i = rr < 25 ? m->n - 1 : rr < 40 ? last_data : (size_t)(dmg_rnd(s) % m->n);
        unsigned fields = m->len[i] ? 6 : 5;
        unsigned fld = (unsigned)(dmg_rnd(s) % fields);
        static const uint64_t start[] = {0, 4, 8, 12, 13, 16};
        static const uint64_t width[] = {4, 4, 4, 1, 3, 0};
        uint64_t w = fld == 5 ? m->len[i] : width[fld];
        snprintf(what, cap, "%s of record %zu of %zu%s (type %u)", field_name[fld], i + 1, m->n,
                 i == m->n - 1 ? ", the last" : "", m->type[i]);
        return m->off[i] + start[fld] + dmg_rnd(s) % w;
    }
    unsigned head = f->has_map ? 65 : 20, foot = f->has_map ? 80 : 40;
    if (r < head) {
        snprintf(what, cap, "in the first %llu bytes", (unsigned long long)edge);
        return dmg_rnd(s) % edge;
    }
    if (r < foot) {
        snprintf(what, cap, "in the last %llu bytes", (unsigned long long)edge);
        return f->size - 1 - dmg_rnd(s) % edge;
    }
    snprintf(what, cap, "anywhere");
    return dmg_rnd(s) % f->size;
}

static int flip(const char *dir, const dmg_env *e, const dmg_file *f, int n, uint64_t *s,
                dmg_plan *p)
{
    uint8_t *b = malloc(f->size);
    if (!b)
        return -1;
    memcpy(b, f->data, f->size);
    char what[160];
    uint64_t first = pick_offset(f, s, what, sizeof what), lo = first, hi = first;
    for (int i = 0; i < n; i++) {
        uint64_t off = first;
        if (i > 0) {
            char ignore[160];
            off = i % 2 ? (first & ~511ull) + dmg_rnd(s) % 512 : pick_offset(f, s, ignore, 160);
            if (off >= f->size)
                off = first;
        }
        b[off] ^= (uint8_t)(1u << (dmg_rnd(s) % 8));
        lo = off < lo ? off : lo;
        hi = off > hi ? off : hi;
    }
    if (!memcmp(b, f->data, f->size)) /* two flips of one bit cancelled */
        b[first] ^= 1;
    char *path = crash_strf("%s/%s", dir, f->name);
    int rc = dmg_write_file(path, b, f->size);
    free(path);
    free(b);
    if (n == 1)
        snprintf(p->desc, sizeof p->desc, "%s: bit flip at offset %llu of %llu (%s)", f->name,
                 (unsigned long long)first, (unsigned long long)f->size, what);
    else
        snprintf(p->desc, sizeof p->desc,
                 "%s: %d bit flips in [%llu, %llu] of %llu bytes, the first %s", f->name, n,
                 (unsigned long long)lo, (unsigned long long)hi, (unsigned long long)f->size, what);
    p->lo = lo_for(e, f, p->kind, lo, hi + 1);
    return rc;
}

static int zero(const char *dir, const dmg_env *e, const dmg_file *f, uint64_t *s, dmg_plan *p)
{
    uint64_t sectors = (f->size + 511) / 512, n = 1 + dmg_rnd(s) % 8;
    unsigned r = (unsigned)(dmg_rnd(s) % 100);
    uint64_t first = r < 20 ? sectors - 1 : r < 30 ? 0 : dmg_rnd(s) % sectors;
    uint64_t a = first * 512, b = (first + n) * 512 > f->size ? f->size : (first + n) * 512;
    uint8_t *buf = malloc(f->size);
    if (!buf)
        return -1;
    memcpy(buf, f->data, f->size);
    memset(buf + a, 0, (size_t)(b - a));
    char *path = crash_strf("%s/%s", dir, f->name);
    int rc = dmg_write_file(path, buf, f->size);
    free(path);
    free(buf);
    snprintf(p->desc, sizeof p->desc, "%s: bytes [%llu, %llu) of %llu zeroed (%llu sectors)",
             f->name, (unsigned long long)a, (unsigned long long)b, (unsigned long long)f->size,
             (unsigned long long)((b - a + 511) / 512));
    p->lo = lo_for(e, f, p->kind, a, b);
    return rc;
}

static int trunc_file(const char *dir, const dmg_env *e, const dmg_file *f, uint64_t *s,
                      dmg_plan *p)
{
    unsigned r = (unsigned)(dmg_rnd(s) % 100);
    uint64_t edge = f->size < 64 ? f->size : 64, len;
    const char *how;
    if (r < 30) {
        len = dmg_rnd(s) % f->size, how = "anywhere";
    } else if (r < 50 && f->has_map) {
        const crash_reclog_map *m = &f->map;
        size_t i = dmg_rnd(s) % 10 < 3 ? m->n - 1 : (size_t)(dmg_rnd(s) % m->n);
        len = m->off[i] + dmg_rnd(s) % (KV_RECLOG_FRAME + (uint64_t)m->len[i]);
        how = i == m->n - 1 ? "inside the last record" : "inside a record";
    } else if (r < 70) {
        len = f->size - 1 - dmg_rnd(s) % edge, how = "near the end";
    } else if (r < 80) {
        len = 0, how = "to nothing";
    } else {
        len = dmg_rnd(s) % edge, how = "inside the header";
    }
    if (len >= f->size)
        len = f->size - 1;
    char *path = crash_strf("%s/%s", dir, f->name);
    int rc = truncate(path, (off_t)len);
    free(path);
    snprintf(p->desc, sizeof p->desc, "%s: cut from %llu to %llu bytes (%s)", f->name,
             (unsigned long long)f->size, (unsigned long long)len, how);
    p->lo = lo_for(e, f, p->kind, len, f->size);
    return rc;
}

static int append(const char *dir, const dmg_env *e, const dmg_file *f, uint64_t *s, dmg_plan *p)
{
    uint64_t n = dmg_rnd(s) % 10 < 3 ? 1 + dmg_rnd(s) % 16 : 1 + dmg_rnd(s) % 4096;
    unsigned r = (unsigned)(dmg_rnd(s) % 100);
    uint8_t *buf = calloc(1, f->size + n);
    if (!buf)
        return -1;
    memcpy(buf, f->data, f->size);
    const char *what;
    if (r < 40 || f->size == 0) {
        what = "zeros";
    } else if (r < 70) {
        for (uint64_t i = 0; i < n; i++)
            buf[f->size + i] = (uint8_t)dmg_rnd(s);
        what = "random bytes";
    } else if (r < 85 && f->has_map) {
        size_t i = f->map.n - 1; /* its last record once more */
        n = KV_RECLOG_FRAME + (uint64_t)f->map.len[i];
        uint8_t *nb = realloc(buf, f->size + n);
        if (!nb) {
            free(buf);
            return -1;
        }
        buf = nb;
        memcpy(buf + f->size, f->data + f->map.off[i], n);
        what = "a copy of its last record";
    } else {
        n = n > f->size ? f->size : n;
        memcpy(buf + f->size, f->data + f->size - n, n);
        what = "a copy of its last bytes";
    }
    char *path = crash_strf("%s/%s", dir, f->name);
    int rc = dmg_write_file(path, buf, f->size + n);
    free(path);
    free(buf);
    snprintf(p->desc, sizeof p->desc, "%s: %llu bytes appended to its %llu (%s)", f->name,
             (unsigned long long)n, (unsigned long long)f->size, what);
    p->lo = lo_for(e, f, p->kind, f->size, f->size + n);
    return rc;
}

static int swap(const char *dir, const dmg_env *e, int a, uint64_t *s, dmg_plan *p)
{
    const dmg_file *f = &e->f[a];
    int cand[4096];
    size_t m = 0;
    for (size_t i = 0; i < e->n && m < 4096; i++)
        if ((int)i != a && !strcmp(e->f[i].kind, f->kind) &&
            (e->f[i].size != f->size || memcmp(e->f[i].data, f->data, f->size)))
            cand[m++] = (int)i;
    int b = cand[dmg_rnd(s) % m];
    const dmg_file *g = &e->f[b];
    char *pa = crash_strf("%s/%s", dir, f->name), *pb = crash_strf("%s/%s", dir, g->name);
    int rc = dmg_write_file(pa, g->data, g->size);
    if (rc == 0)
        rc = dmg_write_file(pb, f->data, f->size);
    free(pa);
    free(pb);
    p->file2 = b;
    snprintf(p->names[1], sizeof p->names[1], "%s", g->name);
    p->nnames = 2;
    p->whole_file = true;
    snprintf(p->desc, sizeof p->desc, "%s (%llu bytes) and %s (%llu bytes) swapped", f->name,
             (unsigned long long)f->size, g->name, (unsigned long long)g->size);
    return rc;
}

static int replace_from(const char *dir, const char *from_dir, const dmg_file *f, const char *what,
                        dmg_plan *p, const dmg_env *e)
{
    char *src = crash_strf("%s/%s", from_dir, f->name), *dst = crash_strf("%s/%s", dir, f->name);
    uint8_t *data = NULL;
    uint64_t size = 0;
    int rc = dmg_read_file(src, &data, &size);
    p->whole_file = true;
    if (rc == 0)
        rc = dmg_write_file(dst, data, size);
    snprintf(p->desc, sizeof p->desc, "%s (%llu bytes) replaced by %s (%llu bytes)", f->name,
             (unsigned long long)f->size, what, (unsigned long long)size);
    /* an older copy of the newest log that is a prefix of it is exactly a truncation */
    if (p->kind == CRASH_DMG_STALE && size < f->size && !memcmp(data, f->data, size))
        p->lo = lo_for(e, f, CRASH_DMG_TRUNC, size, f->size);
    free(data);
    free(src);
    free(dst);
    return rc;
}

/* KVLAB.ID: one of six damages of the identity file. */
static int damage_id(const char *dir, const dmg_env *e, uint64_t *s, dmg_plan *p)
{
    char *path = crash_strf("%s/%s", dir, KV_ID_FILE);
    uint8_t *data = NULL;
    uint64_t size = 0;
    int rc = dmg_read_file(path, &data, &size);
    unsigned r = (unsigned)(dmg_rnd(s) % 6);
    if (rc == 0 && size == 0)
        r = 2;
    if (rc != 0) {
        /* nothing */
    } else if (r == 0) {
        uint64_t off = dmg_rnd(s) % size;
        unsigned bit = (unsigned)(dmg_rnd(s) % 8);
        data[off] ^= (uint8_t)(1u << bit);
        rc = dmg_write_file(path, data, size);
        snprintf(p->desc, sizeof p->desc, "KVLAB.ID: bit %u flipped at offset %llu of %llu", bit,
                 (unsigned long long)off, (unsigned long long)size);
    } else if (r == 1) {
        uint64_t len = dmg_rnd(s) % size;
        rc = truncate(path, (off_t)len);
        snprintf(p->desc, sizeof p->desc, "KVLAB.ID: cut from %llu to %llu bytes",
                 (unsigned long long)size, (unsigned long long)len);
    } else if (r == 2) {
        rc = unlink(path);
        p->whole_file = true;
        snprintf(p->desc, sizeof p->desc, "KVLAB.ID deleted");
    } else if (r == 3) {
        memset(data, 0, size);
        rc = dmg_write_file(path, data, size);
        snprintf(p->desc, sizeof p->desc, "KVLAB.ID: all %llu bytes zeroed",
                 (unsigned long long)size);
    } else if (r == 4) {
        /* a well-formed identity naming another engine */
        const char *other = NULL;
        for (size_t i = 0; kv_registry[i] && !other; i++)
            if (strcmp(kv_registry[i]->name, e->x.e->name) && !crash_is_peer(kv_registry[i]->name))
                other = kv_registry[i]->name;
        if (!other)
            other = strcmp(e->x.e->name, "btree") ? "btree" : "wal";
        kv_fs *fs = kv_fs_posix();
        rc = fs && kv_identity_write(fs, dir, other, 1) == KV_OK ? 0 : -1;
        kv_fs_destroy(fs);
        p->whole_file = true;
        snprintf(p->desc, sizeof p->desc, "KVLAB.ID rewritten to name engine %s", other);
    } else {
        static const char line[] = "engine x\n";
        uint8_t *nb = realloc(data, size + sizeof line - 1);
        if (nb) {
            data = nb;
            memcpy(data + size, line, sizeof line - 1);
            rc = dmg_write_file(path, data, size + sizeof line - 1);
        } else {
            rc = -1;
        }
        snprintf(p->desc, sizeof p->desc, "KVLAB.ID: a line appended");
    }
    free(data);
    free(path);
    return rc;
}

int dmg_apply(dmg_env *e, uint64_t round, const char *dir, dmg_plan *p)
{
    uint64_t s = e->x.c->seed * 1000003ull + round;
    memset(p, 0, sizeof *p);
    p->lo = e->x.w.ncommits;
    p->file = p->file2 = -1;
    crash_dmg_kind k = CRASH_DMG_FLIP1;
    int fi = -1;
    unsigned total = 0;
    for (int i = 0; i < CRASH_DMG_KINDS; i++)
        total += weight[i];
    for (int tries = 0; tries < 50; tries++) {
        unsigned r = (unsigned)(dmg_rnd(&s) % total);
        int i = 0;
        while (r >= weight[i])
            r -= weight[i++];
        k = (crash_dmg_kind)i;
        if (k == CRASH_DMG_ID)
            break;
        if ((fi = pick_file(e, k, &s)) >= 0)
            break;
    }
    if (k != CRASH_DMG_ID && fi < 0) {
        k = CRASH_DMG_ID; /* a directory with no file of the engine's */
    }
    p->kind = k;
    if (k == CRASH_DMG_ID) {
        snprintf(p->names[0], sizeof p->names[0], "%s", KV_ID_FILE);
        p->nnames = 1;
        return damage_id(dir, e, &s, p);
    }
    const dmg_file *f = &e->f[fi];
    p->file = fi;
    snprintf(p->names[0], sizeof p->names[0], "%s", f->name);
    p->nnames = 1;
    char *path = NULL;
    int rc;
    switch (k) {
    case CRASH_DMG_FLIP1:
        return flip(dir, e, f, 1, &s, p);
    case CRASH_DMG_FLIPN:
        return flip(dir, e, f, 2 + (int)(dmg_rnd(&s) % 7), &s, p);
    case CRASH_DMG_ZERO:
        return zero(dir, e, f, &s, p);
    case CRASH_DMG_TRUNC:
        return trunc_file(dir, e, f, &s, p);
    case CRASH_DMG_APPEND:
        return append(dir, e, f, &s, p);
    case CRASH_DMG_DELETE:
        path = crash_strf("%s/%s", dir, f->name);
        rc = unlink(path);
        free(path);
        p->whole_file = true;
        snprintf(p->desc, sizeof p->desc, "%s (%llu bytes) deleted", f->name,
                 (unsigned long long)f->size);
        return rc;
    case CRASH_DMG_SWAP:
        return swap(dir, e, fi, &s, p);
    case CRASH_DMG_REPLACE:
        return replace_from(dir, e->other, f, "the file of that name from another database", p, e);
    case CRASH_DMG_STALE: {
        int cand[DMG_SNAPS], m = 0;
        for (int i = 0; i < DMG_SNAPS; i++)
            if (f->stale & (1u << i))
                cand[m++] = i;
        int i = cand[dmg_rnd(&s) % (uint64_t)m];
        char what[64];
        snprintf(what, sizeof what, "its copy from after commit %zu",
                 e->x.w.ncommits * (size_t)(i + 1) / (DMG_SNAPS + 1));
        return replace_from(dir, e->snap[i], f, what, p, e);
    }
    default:
        return -1;
    }
}
