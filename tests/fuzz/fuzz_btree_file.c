/* fuzz_btree_file: the B-tree data file btree.db (meta page, leaf, internal, overflow and free
 * pages) of a closed btree directory, opened by the engine (meta decode, page reads through the
 * buffer pool with CRC and bt_pg_sane checks, overflow chains, the free list) and read back whole
 * with an iterator, point reads and kv_check. The open must succeed or fail with KV_CORRUPTION /
 * KV_IO; reads must not crash. */
#include "fuzz_seal.h"
#include "fuzz_util.h"

extern const kv_engine kv_engine_btree;
static fz_tmpl t;

static bool seal4k(uint8_t *buf, size_t n)
{
    return fz_seal_btree_file(buf, n, 4096);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_tmpl_init(&t, &kv_engine_btree);
    fz_tmpl_run_sealed(&t, t.closed, "btree.db", data, size, seal4k);
    return 0;
}
