/* bc_format.c: encoding, decoding and verified walks of bitcask's data files, hint files and
 * manifest (formats in bc_format.h). The data files' framing and their torn-tail rule are
 * common/reclog's; only the payloads are bitcask's. */
#include "bc_format.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "crc.h"

uint64_t bc_new_salt(void)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof s, 0) == (ssize_t)sizeof s && s)
        return s;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    s = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)(uintptr_t)&s;
    s ^= s >> 31; /* splitmix64's finalizer */
    s *= 0xbf58476d1ce4e5b9ull;
    s ^= s >> 27;
    return s ? s : 1;
}

void bc_data_hdr_encode(uint8_t out[BC_DATA_HDR], uint32_t kind, uint64_t id, uint64_t salt)
{
    memset(out, 0, BC_DATA_HDR);
    memcpy(out, BC_DATA_MAGIC, 8);
    kv_put_u32(out + 8, BC_VERSION);
    kv_put_u32(out + 12, kind);
    kv_put_u64(out + 16, id);
    kv_put_u64(out + 24, salt);
    kv_put_u32(out + 36, kv_crc32(out, 36));
}

bool bc_data_hdr_decode(const uint8_t *p, size_t n, uint32_t *kind, uint64_t *id, uint64_t *salt)
{
    if (n < BC_DATA_HDR || memcmp(p, BC_DATA_MAGIC, 8) != 0)
        return false;
    if (kv_get_u32(p + 36) != kv_crc32(p, 36) || kv_get_u32(p + 8) != BC_VERSION ||
        kv_get_u32(p + 32) != 0)
        return false;
    uint32_t k = kv_get_u32(p + 12);
    if (k != BC_KIND_WRITE && k != BC_KIND_MERGE)
        return false;
    *kind = k;
    *id = kv_get_u64(p + 16);
    *salt = kv_get_u64(p + 24);
    return true;
}

void bc_rec_finish(uint8_t *out, uint32_t seed, uint8_t type, uint64_t seq, uint32_t klen,
                   uint32_t vlen)
{
    uint8_t *pl = out + KV_RECLOG_FRAME;
    kv_put_u64(pl, seq);
    kv_put_u32(pl + 8, klen);
    kv_put_u32(pl + 12, vlen);
    kv_reclog_seal(out, seed, type, BC_PAYLOAD_HDR + klen + vlen);
}

size_t bc_rec_encode(uint8_t *out, uint32_t seed, uint8_t type, uint64_t seq, const void *key,
                     size_t klen, const void *value, size_t vlen)
{
    assert(type >= BC_T_PUT && type <= BC_T_BATCH_TOMB);
    assert(klen > 0 && klen <= UINT32_MAX && vlen <= UINT32_MAX);
    assert(vlen == 0 || (type != BC_T_TOMB && type != BC_T_BATCH_TOMB)); /* a tombstone has none */
    memcpy(out + BC_REC_OVERHEAD, key, klen);
    if (vlen)
        memcpy(out + BC_REC_OVERHEAD + klen, value, vlen);
    bc_rec_finish(out, seed, type, seq, (uint32_t)klen, (uint32_t)vlen);
    return BC_REC_OVERHEAD + klen + vlen;
}

/* Decodes the payload (len bytes) of a record of type: false when its fields do not fit the
 * type (sizes that do not add up, a key where none belongs, a value on a tombstone). */
static bool payload_decode(uint8_t type, const uint8_t *pl, uint32_t len, bc_rec_view *v)
{
    if (len < BC_PAYLOAD_HDR)
        return false;
    uint32_t kl = kv_get_u32(pl + 8), vl = kv_get_u32(pl + 12);
    if ((uint64_t)BC_PAYLOAD_HDR + kl + vl != len)
        return false;
    switch (type) {
    case BC_T_PUT:
    case BC_T_BATCH_PUT:
        if (kl == 0 || kl > 65535)
            return false;
        break;
    case BC_T_TOMB:
    case BC_T_BATCH_TOMB:
        if (kl == 0 || kl > 65535 || vl != 0)
            return false;
        break;
    case BC_T_BATCH:
        if (kl != 0 || vl == 0)
            return false;
        break;
    default:
        return false;
    }
    v->type = type;
    v->seq = kv_get_u64(pl);
    v->key = pl + BC_PAYLOAD_HDR;
    v->klen = kl;
    v->value = pl + BC_PAYLOAD_HDR + kl;
    v->vlen = vl;
    return true;
}

bool bc_rec_check(const uint8_t *p, size_t n, uint32_t seed, bc_rec_view *out)
{
    /* One crc, not reclog's two: the record crc covers bytes [4, 16 + len), the header crc and
     * the header included, so for a record read whole at a location the keydir names it is the
     * whole check. The header crc is for the scanner, which searches for records past damage
     * (kv_reclog_scan: start-up, kv_check and merge check both). One crc32 call per get less. */
    if (n < KV_RECLOG_FRAME)
        return false;
    uint32_t len = kv_get_u32(p + 8);
    uint8_t type = p[12];
    if ((uint64_t)KV_RECLOG_FRAME + len != n || type == 0 || type == KV_RECLOG_MARK ||
        (p[13] | p[14] | p[15]) != 0 ||
        kv_get_u32(p) != kv_crc32_extend(seed, p + 4, 12 + (size_t)len))
        return false;
    return payload_decode(type, p + KV_RECLOG_FRAME, len, out);
}

typedef struct walk_ctx {
    const char *name;
    uint32_t seed;
    bc_rec_fn fn;
    void *ctx;
} walk_ctx;

static kv_status op_of(walk_ctx *w, const bc_rec_view *v, uint64_t off, uint64_t size)
{
    if (!w->fn)
        return KV_OK;
    bc_rec r = {.seq = v->seq,
                .offset = off,
                .rec_size = (uint32_t)size,
                .tomb = v->type == BC_T_TOMB || v->type == BC_T_BATCH_TOMB,
                .key = v->key,
                .klen = v->klen,
                .value = v->value,
                .vlen = v->vlen};
    return w->fn(w->ctx, &r);
}

/* The inner records of the batch v, whose value starts at file offset base. */
static kv_status walk_batch(walk_ctx *w, const bc_rec_view *v, uint64_t base)
{
    uint64_t off = 0;
    while (off < v->vlen) {
        kv_reclog_rec r;
        bc_rec_view in;
        const char *why = NULL;
        if (kv_reclog_decode(v->value, v->vlen, off, w->seed, &r, &why) != KV_RECLOG_OK)
            return kv_error(KV_CORRUPTION,
                            "%s: offset %" PRIu64 ": operation of the batch at "
                            "offset %" PRIu64 ": %s",
                            w->name, base + off, base - BC_REC_OVERHEAD, why);
        if ((r.type != BC_T_BATCH_PUT && r.type != BC_T_BATCH_TOMB) ||
            !payload_decode(r.type, r.payload, r.len, &in) || in.seq != v->seq)
            return kv_error(KV_CORRUPTION,
                            "%s: offset %" PRIu64 ": a batch holds a record of type %u whose "
                            "fields or seq do not belong in it",
                            w->name, base + off, r.type);
        uint64_t size = KV_RECLOG_FRAME + (uint64_t)r.len;
        kv_status s = op_of(w, &in, base + off, size);
        if (s != KV_OK)
            return s;
        off += size;
    }
    return KV_OK;
}

static kv_status visit(void *ctx, const kv_reclog_rec *r)
{
    walk_ctx *w = ctx;
    if (r->type == KV_RECLOG_MARK)
        return KV_OK;
    bc_rec_view v;
    if (!payload_decode(r->type, r->payload, r->len, &v) || v.type == BC_T_BATCH_PUT ||
        v.type == BC_T_BATCH_TOMB)
        return kv_error(KV_CORRUPTION,
                        "%s: offset %" PRIu64 ": a record of type %u with %u bytes of payload "
                        "whose fields do not fit its type",
                        w->name, r->off, r->type, r->len);
    if (v.type == BC_T_BATCH)
        return walk_batch(w, &v, r->off + BC_REC_OVERHEAD);
    return op_of(w, &v, r->off, KV_RECLOG_FRAME + (uint64_t)r->len);
}

kv_status bc_walk_data(const char *name, const uint8_t *buf, size_t len, bool sealed, uint32_t seed,
                       uint64_t *valid_end, uint64_t *marks, bc_rec_fn fn, void *ctx)
{
    walk_ctx w = {.name = name, .seed = seed, .fn = fn, .ctx = ctx};
    kv_reclog_result res;
    kv_status s = sealed ? kv_reclog_scan_sealed(name, buf, len, BC_DATA_HDR, seed, visit, &w, &res)
                         : kv_reclog_scan(name, buf, len, BC_DATA_HDR, seed, visit, &w, &res);
    *valid_end = res.end;
    if (marks)
        *marks = res.marks;
    return s;
}

/* ---- hint files ---- */

bool bc_hint_add(kv_buf *b, uint64_t seq, uint64_t offset, uint32_t rec_size, bool tomb,
                 const void *key, size_t klen)
{
    if (!kv_buf_reserve(b, BC_HINT_ENT_HDR + klen))
        return false;
    uint8_t *p = b->data + b->len;
    kv_put_u64(p + 4, seq);
    kv_put_u64(p + 12, offset);
    kv_put_u32(p + 20, rec_size);
    kv_put_u32(p + 24, (uint32_t)klen);
    p[28] = tomb ? BC_HINT_TOMBSTONE : 0;
    memcpy(p + BC_HINT_ENT_HDR, key, klen);
    kv_put_u32(p, 0);
    b->len += BC_HINT_ENT_HDR + klen;
    return true;
}

void bc_hint_seal(uint8_t *ents, size_t len)
{
    size_t off = 0;
    while (off + BC_HINT_ENT_HDR <= len) {
        uint8_t *p = ents + off;
        size_t klen = kv_get_u32(p + 24);
        if (klen > len - off - BC_HINT_ENT_HDR)
            break; /* cannot happen for entries made by bc_hint_add */
        kv_put_u32(p, kv_crc32(p + 4, BC_HINT_ENT_HDR - 4 + klen));
        off += BC_HINT_ENT_HDR + klen;
    }
}

void bc_hint_hdr_encode(uint8_t out[BC_HINT_HDR], uint64_t id, uint64_t salt, uint64_t data_size,
                        uint64_t count, const uint8_t *ents, size_t ents_len)
{
    memset(out, 0, BC_HINT_HDR);
    memcpy(out, BC_HINT_MAGIC, 8);
    kv_put_u32(out + 8, BC_VERSION);
    kv_put_u64(out + 16, id);
    kv_put_u64(out + 24, salt);
    kv_put_u64(out + 32, data_size);
    kv_put_u64(out + 40, count);
    kv_put_u32(out + BC_HINT_ENTS_CRC, kv_crc32(ents, ents_len));
    kv_put_u32(out + BC_HINT_HDR_CRC, kv_crc32(out, BC_HINT_HDR_CRC));
}

uint64_t bc_hint_count(const uint8_t *buf, size_t len)
{
    if (len < BC_HINT_HDR || memcmp(buf, BC_HINT_MAGIC, 8) != 0)
        return 0;
    return kv_get_u64(buf + 40);
}

kv_status bc_walk_hint(const char *name, const uint8_t *buf, size_t len, uint64_t expect_id,
                       uint64_t expect_salt, uint64_t expect_size, bool strict, bc_rec_fn fn,
                       void *ctx)
{
    uint32_t crc = len >= BC_HINT_HDR ? kv_crc32(buf + BC_HINT_HDR, len - BC_HINT_HDR) : 0;
    return bc_walk_hint_crc(name, buf, len, expect_id, expect_salt, expect_size, strict, crc, fn,
                            ctx);
}

kv_status bc_walk_hint_crc(const char *name, const uint8_t *buf, size_t len, uint64_t expect_id,
                           uint64_t expect_salt, uint64_t expect_size, bool strict,
                           uint32_t entries_crc, bc_rec_fn fn, void *ctx)
{
    if (len < BC_HINT_HDR || memcmp(buf, BC_HINT_MAGIC, 8) != 0)
        return kv_error(KV_CORRUPTION, "%s: offset 0: no hint file header", name);
    if (kv_get_u32(buf + BC_HINT_HDR_CRC) != kv_crc32(buf, BC_HINT_HDR_CRC) ||
        kv_get_u32(buf + 8) != BC_VERSION || kv_get_u32(buf + 12) != 0)
        return kv_error(KV_CORRUPTION,
                        "%s: offset 0: hint header checksum, version or zero field "
                        "bad",
                        name);
    if (kv_get_u64(buf + 16) != expect_id || kv_get_u64(buf + 24) != expect_salt ||
        kv_get_u64(buf + 32) != expect_size)
        return kv_error(KV_CORRUPTION,
                        "%s: offset 16: hint describes file %" PRIu64 " (salt %016" PRIx64
                        ") of %" PRIu64 " bytes, the data file is %" PRIu64 " (salt %016" PRIx64
                        ") of %" PRIu64,
                        name, kv_get_u64(buf + 16), kv_get_u64(buf + 24), kv_get_u64(buf + 32),
                        expect_id, expect_salt, expect_size);
    if (kv_get_u32(buf + BC_HINT_ENTS_CRC) != entries_crc)
        return kv_error(KV_CORRUPTION, "%s: offset %u: hint entries checksum bad", name,
                        BC_HINT_HDR);
    uint64_t count = kv_get_u64(buf + 40), seen = 0, next = BC_DATA_HDR;
    size_t off = BC_HINT_HDR;
    while (off < len) {
        if (len - off < BC_HINT_ENT_HDR)
            return kv_error(KV_CORRUPTION, "%s: offset %zu: truncated hint entry", name, off);
        const uint8_t *p = buf + off;
        uint32_t kl = kv_get_u32(p + 24);
        uint8_t fl = p[28];
        if (kl == 0 || kl > 65535 || kl > len - off - BC_HINT_ENT_HDR || fl > BC_HINT_TOMBSTONE)
            return kv_error(KV_CORRUPTION, "%s: offset %zu: bad hint entry", name, off);
        if (strict && kv_get_u32(p) != kv_crc32(p + 4, BC_HINT_ENT_HDR - 4 + kl))
            return kv_error(KV_CORRUPTION, "%s: offset %zu: hint entry checksum bad", name, off);
        bc_rec r = {.seq = kv_get_u64(p + 4),
                    .offset = kv_get_u64(p + 12),
                    .rec_size = kv_get_u32(p + 20),
                    .tomb = fl != 0,
                    .key = p + BC_HINT_ENT_HDR,
                    .klen = kl};
        /* in file order, each past the previous one, each a whole record that fits its key (a
         * tombstone exactly) and ends inside the data file */
        uint64_t least = bc_rec_size(kl, 0);
        if (r.offset < next || r.rec_size < least || (r.tomb && r.rec_size != least) ||
            r.offset + r.rec_size > expect_size)
            return kv_error(KV_CORRUPTION,
                            "%s: offset %zu: hint entry points at %u bytes at offset %" PRIu64
                            " of the data file: out of order, too small or past its end",
                            name, off, r.rec_size, r.offset);
        next = r.offset + r.rec_size;
        if (fn) {
            kv_status st = fn(ctx, &r);
            if (st != KV_OK)
                return st;
        }
        seen++;
        off += BC_HINT_ENT_HDR + kl;
    }
    if (seen != count)
        return kv_error(KV_CORRUPTION,
                        "%s: offset 40: hint has %" PRIu64 " entries, header says "
                        "%" PRIu64,
                        name, seen, count);
    return KV_OK;
}

/* ---- the manifest ---- */

bool bc_manifest_encode(const bc_manifest *m, uint8_t **out, size_t *len)
{
    size_t n =
        BC_MANIFEST_FIXED + (size_t)BC_MANIFEST_ENT * m->nfiles + 8 * (size_t)m->nobsolete + 4;
    uint8_t *p = calloc(1, n);
    if (!p)
        return false;
    memcpy(p, BC_MANIFEST_MAGIC, 8);
    kv_put_u32(p + 8, BC_VERSION);
    kv_put_u32(p + 12, m->nfiles);
    kv_put_u32(p + 16, m->nobsolete);
    kv_put_u64(p + 24, m->number);
    kv_put_u64(p + 32, m->merge_no);
    kv_put_u64(p + 40, m->next_id);
    kv_put_u64(p + 48, m->max_seq);
    size_t off = BC_MANIFEST_FIXED;
    for (uint32_t i = 0; i < m->nfiles; i++, off += BC_MANIFEST_ENT) {
        const bc_man_file *f = &m->files[i];
        kv_put_u64(p + off, f->id);
        kv_put_u64(p + off + 8, f->salt);
        kv_put_u64(p + off + 16, f->length);
        p[off + 24] = (uint8_t)f->kind;
        p[off + 25] = (uint8_t)f->state;
    }
    for (uint32_t i = 0; i < m->nobsolete; i++, off += 8)
        kv_put_u64(p + off, m->obsolete[i]);
    kv_put_u32(p + off, kv_crc32(p, off));
    *out = p;
    *len = n;
    return true;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

kv_status bc_manifest_decode(const char *name, const uint8_t *p, size_t len, bc_manifest *m)
{
    memset(m, 0, sizeof *m);
    if (len < BC_MANIFEST_FIXED + 4 || memcmp(p, BC_MANIFEST_MAGIC, 8) != 0 ||
        kv_get_u32(p + 8) != BC_VERSION || kv_get_u32(p + 20) != 0)
        return kv_error(KV_CORRUPTION,
                        "%s: offset 0: bad manifest header (magic, version or zero "
                        "field)",
                        name);
    uint32_t nf = kv_get_u32(p + 12), no = kv_get_u32(p + 16);
    if ((uint64_t)BC_MANIFEST_FIXED + (uint64_t)BC_MANIFEST_ENT * nf + 8 * (uint64_t)no + 4 != len)
        return kv_error(KV_CORRUPTION,
                        "%s: offset 12: the manifest's counts (%u files, %u obsolete) do not "
                        "match its length of %zu bytes",
                        name, nf, no, len);
    if (kv_get_u32(p + len - 4) != kv_crc32(p, len - 4))
        return kv_error(KV_CORRUPTION, "%s: offset %zu: manifest checksum bad", name, len - 4);
    m->number = kv_get_u64(p + 24);
    m->merge_no = kv_get_u64(p + 32);
    m->next_id = kv_get_u64(p + 40);
    m->max_seq = kv_get_u64(p + 48);
    m->files = calloc(nf + 1, sizeof *m->files);
    m->obsolete = calloc(no + 1, sizeof *m->obsolete);
    if (!m->files || !m->obsolete) {
        bc_manifest_free(m);
        return kv_error(KV_NOMEM, "%s: out of memory", name);
    }
    m->capfiles = nf + 1;
    m->capobsolete = no + 1;
    size_t off = BC_MANIFEST_FIXED;
    uint32_t active = 0;
    for (uint32_t i = 0; i < nf; i++, off += BC_MANIFEST_ENT) {
        bc_man_file *f = &m->files[i];
        f->id = kv_get_u64(p + off);
        f->salt = kv_get_u64(p + off + 8);
        f->length = kv_get_u64(p + off + 16);
        f->kind = p[off + 24];
        f->state = p[off + 25];
        active += f->state == BC_MAN_ACTIVE;
        if ((f->kind != BC_KIND_WRITE && f->kind != BC_KIND_MERGE) ||
            (f->state != BC_MAN_SEALED && f->state != BC_MAN_ACTIVE) ||
            !all_zero(p + off + 26, 6) || f->length < BC_DATA_HDR || f->id >= m->next_id ||
            (i > 0 && f->id <= m->files[i - 1].id) || active > 1 ||
            (f->state == BC_MAN_ACTIVE && f->kind != BC_KIND_WRITE)) {
            bc_manifest_free(m);
            return kv_error(KV_CORRUPTION, "%s: offset %zu: impossible file entry", name, off);
        }
    }
    m->nfiles = nf;
    for (uint32_t i = 0; i < no; i++, off += 8) {
        uint64_t id = kv_get_u64(p + off);
        if (id >= m->next_id || bc_manifest_find(m, id)) {
            bc_manifest_free(m);
            return kv_error(KV_CORRUPTION, "%s: offset %zu: impossible obsolete file id", name,
                            off);
        }
        m->obsolete[i] = id;
    }
    m->nobsolete = no;
    return KV_OK;
}

void bc_manifest_free(bc_manifest *m)
{
    free(m->files);
    free(m->obsolete);
    memset(m, 0, sizeof *m);
}

static size_t man_lower(const bc_manifest *m, uint64_t id)
{
    size_t lo = 0, hi = m->nfiles;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->files[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bc_man_file *bc_manifest_find(const bc_manifest *m, uint64_t id)
{
    size_t i = man_lower(m, id);
    return i < m->nfiles && m->files[i].id == id ? &m->files[i] : NULL;
}

bool bc_manifest_set(bc_manifest *m, const bc_man_file *f)
{
    size_t i = man_lower(m, f->id);
    if (i < m->nfiles && m->files[i].id == f->id) {
        m->files[i] = *f;
        return true;
    }
    if (m->nfiles == m->capfiles) {
        uint32_t cap = m->capfiles ? m->capfiles * 2 : 8;
        bc_man_file *n = realloc(m->files, cap * sizeof *n);
        if (!n)
            return false;
        m->files = n;
        m->capfiles = cap;
    }
    memmove(&m->files[i + 1], &m->files[i], (m->nfiles - i) * sizeof *m->files);
    m->files[i] = *f;
    m->nfiles++;
    return true;
}

void bc_manifest_remove(bc_manifest *m, uint64_t id)
{
    size_t i = man_lower(m, id);
    if (i >= m->nfiles || m->files[i].id != id)
        return;
    memmove(&m->files[i], &m->files[i + 1], (m->nfiles - i - 1) * sizeof *m->files);
    m->nfiles--;
}

bool bc_manifest_add_obsolete(bc_manifest *m, uint64_t id)
{
    if (m->nobsolete == m->capobsolete) {
        uint32_t cap = m->capobsolete ? m->capobsolete * 2 : 8;
        uint64_t *n = realloc(m->obsolete, cap * sizeof *n);
        if (!n)
            return false;
        m->obsolete = n;
        m->capobsolete = cap;
    }
    m->obsolete[m->nobsolete++] = id;
    return true;
}

bool bc_manifest_copy(bc_manifest *dst, const bc_manifest *src)
{
    *dst = *src;
    dst->files = malloc((src->nfiles + 1) * sizeof *dst->files);
    dst->obsolete = malloc((src->nobsolete + 1) * sizeof *dst->obsolete);
    if (!dst->files || !dst->obsolete) {
        free(dst->files);
        free(dst->obsolete);
        memset(dst, 0, sizeof *dst);
        return false;
    }
    if (src->nfiles)
        memcpy(dst->files, src->files, src->nfiles * sizeof *dst->files);
    if (src->nobsolete)
        memcpy(dst->obsolete, src->obsolete, src->nobsolete * sizeof *dst->obsolete);
    dst->capfiles = src->nfiles + 1;
    dst->capobsolete = src->nobsolete + 1;
    return true;
}
