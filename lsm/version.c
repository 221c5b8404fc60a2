/* version.c: table files, versions (the set of tables per level at one moment, refcounted so
 * that an iterator keeps its tables alive) and version edits, the records of the manifest
 * (LevelDB's db/version_set.cc and db/version_edit.cc). */
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lock_assert.h"
#include "lsm_int.h"

enum {
    TAG_LOG_NUMBER = 1,
    TAG_NEXT_FILE = 2,
    TAG_LAST_SEQ = 3,
    TAG_COMPARATOR = 4,
    TAG_DELETE_FILE = 5,
    TAG_ADD_FILE = 6,
    TAG_LOG_SEALED = 7, /* written by a clean close: the WAL's number and final length */
    TAG_COMPACTION = 8, /* the compaction strategy (varint LSM_COMPACTION_*): written in the
                           first record of every manifest of a tiered database only, so that a
                           leveled database's manifest stays readable by builds without it */
};

void lsm_file_ref(lsm_file *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

void lsm_file_unref(lsm_file *f)
{
    if (!f)
        return;
    long left = (long)atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel);
    assert(left > 0); /* the caller held a reference */
    if (left != 1)
        return;
    sst_reader_close(f->reader);
    free(f->smallest);
    free(f->largest);
    free(f);
}

/* ---- edits ---- */

void lsm_edit_init(lsm_edit *e)
{
    memset(e, 0, sizeof *e);
}

void lsm_edit_free(lsm_edit *e)
{
    for (size_t i = 0; i < e->n_adds; i++) {
        free(e->adds[i].smallest);
        free(e->adds[i].largest);
        lsm_file_unref(e->adds[i].file);
    }
    free(e->adds);
    free(e->dels);
    memset(e, 0, sizeof *e);
}

static uint8_t *dup(const uint8_t *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

bool lsm_edit_add(lsm_edit *e, int level, uint64_t number, uint64_t size, uint64_t unique_id,
                  const uint8_t *sm, size_t sml, const uint8_t *lg, size_t lgl, uint64_t entries,
                  lsm_file *file)
{
    if (e->n_adds == e->cap_adds) {
        size_t cap = e->cap_adds ? e->cap_adds * 2 : 8;
        lsm_edit_file *n = realloc(e->adds, cap * sizeof *n);
        if (!n)
            return false;
        e->adds = n;
        e->cap_adds = cap;
    }
    lsm_edit_file *a = &e->adds[e->n_adds];
    a->level = level;
    a->number = number;
    a->size = size;
    a->unique_id = unique_id;
    a->entries = entries;
    a->smallest = dup(sm, sml);
    a->largest = dup(lg, lgl);
    a->smallest_len = sml;
    a->largest_len = lgl;
    a->file = file;
    if (!a->smallest || !a->largest) {
        free(a->smallest);
        free(a->largest);
        return false;
    }
    if (file)
        lsm_file_ref(file);
    e->n_adds++;
    return true;
}

bool lsm_edit_add_file(lsm_edit *e, int level, lsm_file *f)
{
    return lsm_edit_add(e, level, f->number, f->size, f->unique_id, f->smallest, f->smallest_len,
                        f->largest, f->largest_len, f->entries, f);
}

bool lsm_edit_del(lsm_edit *e, int level, uint64_t number)
{
    if (e->n_dels == e->cap_dels) {
        size_t cap = e->cap_dels ? e->cap_dels * 2 : 8;
        void *n = realloc(e->dels, cap * sizeof *e->dels);
        if (!n)
            return false;
        e->dels = n;
        e->cap_dels = cap;
    }
    e->dels[e->n_dels].level = level;
    e->dels[e->n_dels].number = number;
    e->n_dels++;
    return true;
}

bool lsm_edit_encode(const lsm_edit *e, kv_buf *out)
{
    bool ok = true;
    if (e->has_comparator) {
        size_t n = strlen(e->comparator);
        ok = ok && kv_buf_put_varint(out, TAG_COMPARATOR) && kv_buf_put_varint(out, n) &&
             kv_buf_append(out, e->comparator, n);
    }
    if (e->has_log_number)
        ok = ok && kv_buf_put_varint(out, TAG_LOG_NUMBER) && kv_buf_put_varint(out, e->log_number);
    if (e->has_next_file)
        ok = ok && kv_buf_put_varint(out, TAG_NEXT_FILE) && kv_buf_put_varint(out, e->next_file);
    if (e->has_last_seq)
        ok = ok && kv_buf_put_varint(out, TAG_LAST_SEQ) && kv_buf_put_varint(out, e->last_seq);
    if (e->has_compaction)
        ok = ok && kv_buf_put_varint(out, TAG_COMPACTION) &&
             kv_buf_put_varint(out, (uint64_t)e->compaction);
    if (e->has_sealed)
        ok = ok && kv_buf_put_varint(out, TAG_LOG_SEALED) &&
             kv_buf_put_varint(out, e->sealed_log) && kv_buf_put_varint(out, e->sealed_len);
    for (size_t i = 0; i < e->n_dels; i++)
        ok = ok && kv_buf_put_varint(out, TAG_DELETE_FILE) &&
             kv_buf_put_varint(out, (uint64_t)e->dels[i].level) &&
             kv_buf_put_varint(out, e->dels[i].number);
    for (size_t i = 0; i < e->n_adds; i++) {
        const lsm_edit_file *a = &e->adds[i];
        ok = ok && kv_buf_put_varint(out, TAG_ADD_FILE) &&
             kv_buf_put_varint(out, (uint64_t)a->level) && kv_buf_put_varint(out, a->number) &&
             kv_buf_put_varint(out, a->size) && kv_buf_put_u64(out, a->unique_id) &&
             kv_buf_put_varint(out, a->entries) && kv_buf_put_varint(out, a->smallest_len) &&
             kv_buf_append(out, a->smallest, a->smallest_len) &&
             kv_buf_put_varint(out, a->largest_len) &&
             kv_buf_append(out, a->largest, a->largest_len);
    }
    return ok;
}

static bool get_bytes(const uint8_t **p, const uint8_t *end, const uint8_t **b, size_t *n)
{
    uint64_t len;
    if (!kv_get_varint64(p, end, &len) || len > (uint64_t)(end - *p))
        return false;
    *b = *p;
    *n = (size_t)len;
    *p += len;
    return true;
}

kv_status lsm_edit_decode(const uint8_t *p, size_t n, lsm_edit *e, const char *path, uint64_t off)
{
    const uint8_t *start = p, *end = p + n;
    lsm_edit_init(e);
    while (p < end) {
        uint64_t tag, a, b, c, d, id;
        const uint8_t *k1, *k2;
        size_t l1, l2;
        const uint8_t *at = p;
        bool ok = kv_get_varint64(&p, end, &tag);
        switch (ok ? tag : 0) {
        case TAG_LOG_NUMBER:
            ok = kv_get_varint64(&p, end, &e->log_number);
            e->has_log_number = true;
            break;
        case TAG_NEXT_FILE:
            ok = kv_get_varint64(&p, end, &e->next_file);
            e->has_next_file = true;
            break;
        case TAG_LAST_SEQ:
            ok = kv_get_varint64(&p, end, &e->last_seq);
            e->has_last_seq = true;
            break;
        case TAG_LOG_SEALED:
            ok = kv_get_varint64(&p, end, &e->sealed_log) &&
                 kv_get_varint64(&p, end, &e->sealed_len) && e->sealed_log != 0;
            e->has_sealed = true;
            break;
        case TAG_COMPACTION: /* a strategy this build does not know is damage or a newer format */
            ok = kv_get_varint64(&p, end, &a) && a <= LSM_COMPACTION_TIERED;
            e->compaction = (int)a;
            e->has_compaction = true;
            break;
        case TAG_COMPARATOR:
            ok = get_bytes(&p, end, &k1, &l1) && l1 < sizeof e->comparator;
            if (ok) {
                memcpy(e->comparator, k1, l1);
                e->comparator[l1] = '\0';
                e->has_comparator = true;
            }
            break;
        case TAG_DELETE_FILE:
            ok = kv_get_varint64(&p, end, &a) && a < LSM_LEVELS && kv_get_varint64(&p, end, &b) &&
                 lsm_edit_del(e, (int)a, b);
            break;
        case TAG_ADD_FILE:
            ok = kv_get_varint64(&p, end, &a) && a < LSM_LEVELS && kv_get_varint64(&p, end, &b) &&
                 kv_get_varint64(&p, end, &c) && kv_get_fixed64(&p, end, &id) &&
                 kv_get_varint64(&p, end, &d) && get_bytes(&p, end, &k1, &l1) && l1 >= 8 &&
                 get_bytes(&p, end, &k2, &l2) && l2 >= 8 &&
                 lsm_edit_add(e, (int)a, b, c, id, k1, l1, k2, l2, d, NULL);
            break;
        default:
            ok = false;
        }
        if (!ok) {
            lsm_edit_free(e);
            return kv_error(KV_CORRUPTION,
                            "%s: manifest record at offset %llu: bad field at "
                            "record byte %zu",
                            path, (unsigned long long)off, (size_t)(at - start));
        }
    }
    return KV_OK;
}

void lsm_edit_print(FILE *out, const lsm_edit *e)
{
    if (e->has_comparator)
        fprintf(out, "    comparator = %s\n", e->comparator);
    if (e->has_log_number)
        fprintf(out, "    log_number = %" PRIu64 "\n", e->log_number);
    if (e->has_next_file)
        fprintf(out, "    next_file = %" PRIu64 "\n", e->next_file);
    if (e->has_last_seq)
        fprintf(out, "    last_sequence = %" PRIu64 "\n", e->last_seq);
    if (e->has_compaction)
        fprintf(out, "    compaction = %s\n", lsm_compaction_name(e->compaction));
    if (e->has_sealed)
        fprintf(out, "    log_sealed = %06" PRIu64 ".log at length %" PRIu64 " (a clean close)\n",
                e->sealed_log, e->sealed_len);
    for (size_t i = 0; i < e->n_dels; i++)
        fprintf(out, "    delete_file level=%d number=%" PRIu64 "\n", e->dels[i].level,
                e->dels[i].number);
    for (size_t i = 0; i < e->n_adds; i++) {
        const lsm_edit_file *a = &e->adds[i];
        fprintf(out,
                "    add_file level=%d number=%" PRIu64 " size=%" PRIu64 " unique_id=%016" PRIx64
                " entries=%" PRIu64 " smallest=",
                a->level, a->number, a->size, a->unique_id, a->entries);
        lsm_ikey_print(out, a->smallest, a->smallest_len);
        fputs(" largest=", out);
        lsm_ikey_print(out, a->largest, a->largest_len);
        fputc('\n', out);
    }
}

/* ---- versions ---- */

void lsm_version_ref(lsm_version *v)
{
    atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
}

static void version_free(lsm_version *v)
{
    for (int l = 0; l < LSM_LEVELS; l++) {
        for (size_t i = 0; i < v->n[l]; i++)
            lsm_file_unref(v->files[l][i]);
        free(v->files[l]);
    }
    free(v);
}

void lsm_version_unref(lsm_version *v)
{
    if (!v)
        return;
    long left = (long)atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel);
    assert(left > 0); /* the caller held a reference */
    if (left != 1)
        return;
    lsm_db *db = v->db;
    if (v->prev) {
        pthread_mutex_lock(&db->mu);
        v->prev->next = v->next;
        v->next->prev = v->prev;
        db->obsolete_pending = true;
        pthread_cond_signal(&db->bg_cv);
        pthread_mutex_unlock(&db->mu);
    }
    version_free(v);
}

static int cmp_l0(const void *a, const void *b)
{
    const lsm_file *x = *(lsm_file *const *)a, *y = *(lsm_file *const *)b;
    return x->number > y->number ? -1 : x->number < y->number; /* newest first */
}

static int cmp_smallest(const void *a, const void *b)
{
    const lsm_file *x = *(lsm_file *const *)a, *y = *(lsm_file *const *)b;
    return lsm_ikey_cmp(x->smallest, x->smallest_len, y->smallest, y->smallest_len);
}

lsm_version *lsm_version_apply(lsm_db *db, const lsm_version *base, const lsm_edit *e)
{
    lsm_version *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    v->db = db;
    for (int l = 0; l < LSM_LEVELS; l++) {
        size_t cap = (base ? base->n[l] : 0);
        for (size_t i = 0; i < e->n_adds; i++)
            cap += e->adds[i].level == l;
        v->files[l] = malloc((cap ? cap : 1) * sizeof(lsm_file *));
        if (!v->files[l]) {
            version_free(v);
            return NULL;
        }
        for (size_t i = 0; base && i < base->n[l]; i++) {
            lsm_file *f = base->files[l][i];
            bool deleted = false;
            for (size_t j = 0; j < e->n_dels && !deleted; j++)
                deleted = e->dels[j].level == l && e->dels[j].number == f->number;
            if (deleted)
                continue;
            lsm_file_ref(f);
            v->files[l][v->n[l]++] = f;
        }
        for (size_t i = 0; i < e->n_adds; i++) {
            if (e->adds[i].level != l || !e->adds[i].file)
                continue;
            lsm_file_ref(e->adds[i].file);
            v->files[l][v->n[l]++] = e->adds[i].file;
        }
        qsort(v->files[l], v->n[l], sizeof(lsm_file *), l == 0 ? cmp_l0 : cmp_smallest);
    }
    return v;
}

uint64_t lsm_version_level_bytes(const lsm_version *v, int level)
{
    uint64_t b = 0;
    for (size_t i = 0; i < v->n[level]; i++)
        b += v->files[level][i]->size;
    return b;
}

size_t lsm_version_find_file(const lsm_version *v, int level, const uint8_t *ikey, size_t klen)
{
    size_t lo = 0, hi = v->n[level];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        lsm_file *f = v->files[level][mid];
        if (lsm_ikey_cmp(f->largest, f->largest_len, ikey, klen) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool lsm_version_key_in_deeper(const lsm_version *v, int level, const uint8_t *ukey, size_t ulen)
{
    for (int l = level + 1; l < LSM_LEVELS; l++) {
        size_t lo = 0, hi = v->n[l];
        while (lo < hi) { /* first file whose largest user key >= ukey */
            size_t mid = (lo + hi) / 2;
            lsm_file *f = v->files[l][mid];
            if (lsm_ukey_cmp(f->largest, f->largest_len - 8, ukey, ulen) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < v->n[l]) {
            lsm_file *f = v->files[l][lo];
            if (lsm_ukey_cmp(f->smallest, f->smallest_len - 8, ukey, ulen) <= 0)
                return true;
        }
    }
    return false;
}

void lsm_version_unref_locked(lsm_version *v)
{
    if (!v)
        return;
    KV_ASSERT_HELD(&v->db->mu);
    long left = (long)atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel);
    assert(left > 0); /* the caller held a reference */
    if (left != 1)
        return;
    if (v->prev) {
        v->prev->next = v->next;
        v->next->prev = v->prev;
        v->db->obsolete_pending = true;
        pthread_cond_signal(&v->db->bg_cv);
    }
    version_free(v);
}

void lsm_version_print(lsm_db *db, FILE *out)
{
    pthread_mutex_lock(&db->mu);
    lsm_version *v = db->current;
    lsm_version_ref(v);
    pthread_mutex_unlock(&db->mu);
    bool tiered = db->o.compaction == LSM_COMPACTION_TIERED;
    fprintf(out, "version (compaction=%s)\n", lsm_compaction_name(db->o.compaction));
    if (tiered) {
        fprintf(out, "  %zu sorted runs, newest first (reads check them in this order)\n", v->n[0]);
        for (size_t i = 0; i < v->n[0]; i++) {
            const lsm_file *f = v->files[0][i];
            fprintf(out, "  run %zu: %06" PRIu64 ".sst size=%" PRIu64 " entries=%" PRIu64 "\n",
                    i + 1, f->number, f->size, f->entries);
        }
    } else
        for (int l = 0; l < LSM_LEVELS; l++) {
            if (!v->n[l])
                continue;
            fprintf(out, "  level %d: %zu tables, %" PRIu64 " bytes%s:", l, v->n[l],
                    lsm_version_level_bytes(v, l), l == 0 ? " (newest first)" : "");
            for (size_t i = 0; i < v->n[l]; i++)
                fprintf(out, " %06" PRIu64 ".sst", v->files[l][i]->number);
            fputc('\n', out);
        }
    fputc('\n', out);
    lsm_version_unref(v);
}
