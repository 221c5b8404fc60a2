/* fuzz_btree_log: the B-tree's physical log btree.wal (two header slots, then page-image, delta
 * and commit records and sync marks framed by common/reclog) of a directory copied while the
 * handle was open (so the log holds groups not yet checkpointed), checked against the data
 * file's meta page and replayed by the engine's recovery (bt_wal_recover) at open, then read
 * back whole. The open must succeed or fail with KV_CORRUPTION / KV_IO; reads must not crash. */
#include "fuzz_seal.h"
#include "fuzz_util.h"

extern const kv_engine kv_engine_btree;
static fz_tmpl t;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_tmpl_init(&t, &kv_engine_btree);
    fz_tmpl_run_sealed(&t, t.crashed, "btree.wal", data, size, fz_seal_btree_log);
    return 0;
}
