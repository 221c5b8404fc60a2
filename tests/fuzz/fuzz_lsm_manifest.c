/* fuzz_lsm_manifest: the LSM manifest file MANIFEST-NNNNNN (lsm_log header with magic, file
 * number, database id and CRC; records in common/reclog's framing with sync marks; version-edit
 * payloads) of a closed lsm directory. First the engine's manifest loader (lsm_load_manifest:
 * CURRENT, lsm_log_read, the static manifest_record that folds edits) runs alone; then the
 * whole engine opens the directory (versions are built from the edits, the SSTables they name
 * are opened and checked against their sizes and unique ids) and reads it back.
 * Every step must succeed or fail with KV_CORRUPTION / KV_IO. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_seal.h"
#include "fuzz_util.h"
#include "lsm_int.h"

extern const kv_engine kv_engine_lsm;
static fz_tmpl t;
static char *manifest;
static kv_fs *fs;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_tmpl_init(&t, &kv_engine_lsm);
    if (!manifest && !(manifest = fz_find(t.closed, "MANIFEST-", "")))
        fz_die("no manifest in the lsm template");
    if (!fs && !(fs = kv_fs_posix()))
        fz_die("kv_fs_posix");
    fz_copy_dir(t.closed, t.work);
    char *p = fz_strf("%s/%s", t.work, manifest);
    fz_write(p, data, size);
    free(p);
    lsm_db *db = calloc(1, sizeof *db);
    if (!db)
        return 0;
    db->fs = fs;
    db->dir = t.work;
    uint64_t number = 0, db_id = 0;
    lsm_edit acc;
    kv_status s = lsm_load_manifest(db, &number, &db_id, &acc);
    free(db);
    if (s == KV_OK)
        lsm_edit_free(&acc);
    else if (s != KV_CORRUPTION && s != KV_IO) {
        fprintf(stderr, "lsm_load_manifest returned %s: %s\n", kv_strerror(s), kv_errmsg());
        abort();
    }
    fz_tmpl_run_sealed(&t, t.closed, manifest, data, size, fz_seal_lsm_log);
    return 0;
}
