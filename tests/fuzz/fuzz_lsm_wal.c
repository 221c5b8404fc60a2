/* fuzz_lsm_wal: the LSM engine's memtable write-ahead log NNNNNN.log (lsm_log header with magic,
 * flags, file number, database id, predecessor's number and length, CRC; records in
 * common/reclog's framing with sync marks; batch, PREV_DURABLE and NEXT_LOG payloads) of a
 * directory copied while the handle was open, checked as a chain and replayed by the engine's
 * recovery at open (lsm_wal_chain_read and the static replay_record of lsm/recover.c) and read
 * back whole. The newest log is the one replaced. */
#include "fuzz_seal.h"
#include "fuzz_util.h"

extern const kv_engine kv_engine_lsm;
static fz_tmpl t;
static char *log_name;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_tmpl_init(&t, &kv_engine_lsm);
    if (!log_name && !(log_name = fz_find(t.crashed, "", ".log")))
        fz_die("no .log in the lsm template");
    fz_tmpl_run_sealed(&t, t.crashed, log_name, data, size, fz_seal_lsm_log);
    return 0;
}
