/* kv_batch: an ordered list of puts and deletes applied atomically by kv_write (docs/design.md
 * section 2), like LevelDB's WriteBatch. Keys and values are copied into one arena; operations
 * refer to them by offset so the arena may grow. */
#include <stdlib.h>
#include <string.h>

#include "coding.h"
#include "kv.h"

typedef struct batch_rec {
    kv_op_type type;
    size_t koff, klen, voff, vlen;
} batch_rec;

struct kv_batch {
    kv_buf arena;
    batch_rec *ops;
    size_t n, cap;
    uint64_t bytes;
};

kv_batch *kv_batch_new(void)
{
    return calloc(1, sizeof(kv_batch));
}

void kv_batch_free(kv_batch *b)
{
    if (!b)
        return;
    kv_buf_free(&b->arena);
    free(b->ops);
    free(b);
}

void kv_batch_clear(kv_batch *b)
{
    b->arena.len = 0;
    b->n = 0;
    b->bytes = 0;
}

static kv_status add(kv_batch *b, kv_op_type t, const void *key, size_t klen, const void *value,
                     size_t vlen)
{
    if (klen == 0 || klen > KV_MAX_KEY || !key)
        return kv_error(KV_INVALID, "batch: key of %zu bytes (1 to %zu)", klen, KV_MAX_KEY);
    if (vlen > KV_MAX_VALUE || (vlen && !value))
        return kv_error(KV_INVALID, "batch: value of %zu bytes (0 to %llu)", vlen,
                        (unsigned long long)KV_MAX_VALUE);
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 8;
        batch_rec *o = realloc(b->ops, nc * sizeof *o);
        if (!o)
            return kv_error(KV_INVALID, "batch: out of memory");
        b->ops = o;
        b->cap = nc;
    }
    size_t old = b->arena.len;
    if (!kv_buf_append(&b->arena, key, klen) || (vlen && !kv_buf_append(&b->arena, value, vlen))) {
        b->arena.len = old;
        return kv_error(KV_INVALID, "batch: out of memory");
    }
    b->ops[b->n++] = (batch_rec){t, old, klen, old + klen, vlen};
    b->bytes += klen + vlen;
    return KV_OK;
}

kv_status kv_batch_put(kv_batch *b, const void *key, size_t klen, const void *value, size_t vlen)
{
    return add(b, KV_OP_PUT, key, klen, value, vlen);
}

kv_status kv_batch_delete(kv_batch *b, const void *key, size_t klen)
{
    return add(b, KV_OP_DELETE, key, klen, NULL, 0);
}

size_t kv_batch_count(const kv_batch *b)
{
    return b->n;
}

kv_batch_op kv_batch_get(const kv_batch *b, size_t i)
{
    const batch_rec *r = &b->ops[i];
    kv_batch_op op = {r->type, b->arena.data + r->koff, r->klen, NULL, 0};
    if (r->type == KV_OP_PUT) {
        /* An empty value still gets a valid (non-NULL) pointer. */
        op.value = b->arena.data + r->voff;
        op.vlen = r->vlen;
    }
    return op;
}

uint64_t kv_batch_bytes(const kv_batch *b)
{
    return b->bytes;
}
