/* The crash checker's workloads and self-verifying values (crash_oracle.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crash_oracle.h"

static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

size_t crash_key(uint32_t k, char *buf)
{
    snprintf(buf, 16, "k%07u", k);
    return 8;
}

bool crash_key_parse(const void *key, size_t klen, uint32_t keys, uint32_t *k)
{
    const char *p = key;
    if (klen != 8 || p[0] != 'k')
        return false;
    uint32_t v = 0;
    for (size_t i = 1; i < 8; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (uint32_t)(p[i] - '0');
    }
    if (v >= keys)
        return false;
    *k = v;
    return true;
}

static uint64_t value_seed(uint32_t key, uint64_t version)
{
    return (version * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)key << 32) ^ 0x5eedull;
}

size_t crash_value_len(uint32_t key, uint64_t version, uint32_t value_max)
{
    uint64_t s = value_seed(key, version);
    return 12 + (size_t)(mix(&s) % ((uint64_t)value_max + 1));
}

void crash_value_fill(uint32_t key, uint64_t version, uint32_t value_max, uint8_t *buf)
{
    uint64_t s = value_seed(key, version);
    size_t len = 12 + (size_t)(mix(&s) % ((uint64_t)value_max + 1));
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)(version >> (8 * i));
    for (int i = 0; i < 4; i++)
        buf[8 + i] = (uint8_t)(key >> (8 * i));
    for (size_t i = 12; i < len; i += 8) {
        uint64_t r = mix(&s);
        for (size_t j = 0; j < 8 && i + j < len; j++)
            buf[i + j] = (uint8_t)(r >> (8 * j));
    }
}

uint64_t crash_value_verify(const crash_workload *w, uint32_t key, const void *v, size_t vlen)
{
    const uint8_t *b = v;
    if (vlen < 12)
        return 0;
    uint64_t version = 0;
    uint32_t k = 0;
    for (int i = 0; i < 8; i++)
        version |= (uint64_t)b[i] << (8 * i);
    for (int i = 0; i < 4; i++)
        k |= (uint32_t)b[8 + i] << (8 * i);
    if (k != key || version == 0 || version > w->nops)
        return 0;
    const cw_op *op = &w->ops[version - 1];
    if (op->type != KV_OP_PUT || op->key != key || op->version != version)
        return 0;
    if (vlen != crash_value_len(key, version, w->value_max))
        return 0;
    uint8_t stack[512];
    uint8_t *want = vlen <= sizeof stack ? stack : malloc(vlen);
    if (!want)
        return 0;
    crash_value_fill(key, version, w->value_max, want);
    bool same = memcmp(want, b, vlen) == 0;
    if (want != stack)
        free(want);
    return same ? version : 0;
}

void crash_workload_free(crash_workload *w)
{
    free(w->commits);
    free(w->ops);
    memset(w, 0, sizeof *w);
}

/* Appends one op; returns false when out of memory. */
static bool add_op(crash_workload *w, size_t *cap, kv_op_type t, uint32_t key)
{
    if (w->nops == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        cw_op *n = realloc(w->ops, nc * sizeof *n);
        if (!n)
            return false;
        w->ops = n;
        *cap = nc;
    }
    cw_op *op = &w->ops[w->nops++];
    op->type = t;
    op->key = key;
    op->version = t == KV_OP_PUT ? w->nops : 0;
    return true;
}

kv_status crash_workload_make(const char *kind, size_t ncommits, uint32_t keys, uint32_t value_max,
                              uint32_t sync_permille, uint64_t seed, crash_workload *w)
{
    memset(w, 0, sizeof *w);
    int k;
    if (kind && !strcmp(kind, "puts"))
        k = 0;
    else if (!kind || !strcmp(kind, "mixed"))
        k = 1;
    else if (!strcmp(kind, "batches"))
        k = 2;
    else
        return kv_error(KV_INVALID, "crash: unknown workload '%s' (puts, mixed, batches)", kind);
    if (keys == 0 || keys > 100000)
        return kv_error(KV_INVALID, "crash: %u keys (allowed 1 to 100000)", keys);
    if (ncommits == 0 || ncommits > 10000000)
        return kv_error(KV_INVALID, "crash: %zu commits (allowed 1 to 10000000)", ncommits);
    if (value_max > (1u << 20))
        return kv_error(KV_INVALID, "crash: value size %u above 1 MiB", value_max);
    w->keys = keys;
    w->value_max = value_max;
    w->commits = calloc(ncommits, sizeof *w->commits);
    if (!w->commits)
        return kv_error(KV_NOMEM, "crash: out of memory");
    size_t cap = 0;
    uint64_t s = seed ^ 0xc0ffee1234567ull;
    for (size_t i = 0; i < ncommits; i++) {
        cw_commit *c = &w->commits[i];
        c->first = (uint32_t)w->nops;
        uint64_t r = mix(&s) % 1000;
        if (r < sync_permille) {
            c->kind = CW_SYNC;
            continue;
        }
        r = mix(&s) % 100;
        int what; /* 0 put, 1 delete, 2 batch */
        if (k == 0)
            what = 0;
        else if (k == 2)
            what = 2;
        else
            what = r < 55 ? 0 : r < 72 ? 1 : 2;
        bool ok = true;
        if (what == 0) {
            c->kind = CW_PUT;
            ok = add_op(w, &cap, KV_OP_PUT, (uint32_t)(mix(&s) % keys));
        } else if (what == 1) {
            c->kind = CW_DELETE;
            ok = add_op(w, &cap, KV_OP_DELETE, (uint32_t)(mix(&s) % keys));
        } else {
            c->kind = CW_BATCH;
            uint32_t n = 1 + (uint32_t)(mix(&s) % 10);
            for (uint32_t j = 0; j < n && ok; j++) {
                kv_op_type t = mix(&s) % 4 == 0 ? KV_OP_DELETE : KV_OP_PUT;
                ok = add_op(w, &cap, t, (uint32_t)(mix(&s) % keys));
            }
        }
        if (!ok) {
            crash_workload_free(w);
            return kv_error(KV_NOMEM, "crash: out of memory");
        }
        c->n = (uint32_t)(w->nops - c->first);
    }
    w->ncommits = ncommits;
    return KV_OK;
}

kv_status crash_workload_apply(kv_db *db, const crash_workload *w, size_t i, kv_batch *scratch)
{
    const cw_commit *c = &w->commits[i];
    char key[16];
    uint8_t stack[512];
    if (c->kind == CW_SYNC)
        return kv_sync(db);
    if (c->kind == CW_DELETE) {
        const cw_op *op = &w->ops[c->first];
        size_t kl = crash_key(op->key, key);
        return kv_delete(db, key, kl);
    }
    size_t vmax = 12 + (size_t)w->value_max;
    uint8_t *val = vmax <= sizeof stack ? stack : malloc(vmax);
    if (!val)
        return kv_error(KV_NOMEM, "crash: out of memory");
    kv_status s = KV_OK;
    if (c->kind == CW_PUT) {
        const cw_op *op = &w->ops[c->first];
        size_t kl = crash_key(op->key, key);
        size_t vl = crash_value_len(op->key, op->version, w->value_max);
        crash_value_fill(op->key, op->version, w->value_max, val);
        s = kv_put(db, key, kl, val, vl);
    } else {
        kv_batch_clear(scratch);
        for (uint32_t j = 0; j < c->n && s == KV_OK; j++) {
            const cw_op *op = &w->ops[c->first + j];
            size_t kl = crash_key(op->key, key);
            if (op->type == KV_OP_DELETE) {
                s = kv_batch_delete(scratch, key, kl);
            } else {
                size_t vl = crash_value_len(op->key, op->version, w->value_max);
                crash_value_fill(op->key, op->version, w->value_max, val);
                s = kv_batch_put(scratch, key, kl, val, vl);
            }
        }
        if (s == KV_OK)
            s = kv_write(db, scratch);
    }
    if (val != stack)
        free(val);
    return s;
}
