/* fuzz_wal_snapshot: the `wal` engine's checkpoint file SNAPSHOT (wal_snapshot.c), loaded by
 * the engine's own loader into an empty map (wal_snapshot_load) and verified
 * (wal_snapshot_verify, with the field-by-field dump to /dev/null). Both must agree and fail only
 * with KV_CORRUPTION or KV_IO. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "wal_db.h"

static kv_fs *fs;
static FILE *devnull;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fs && !(fs = kv_fs_posix()))
        fz_die("kv_fs_posix");
    if (!devnull && !(devnull = fopen("/dev/null", "w")))
        fz_die("/dev/null");
    char *dir = fz_strf("%s/snap", fz_root());
    char *path = fz_strf("%s/%s", dir, WAL_SNAPSHOT_NAME);
    fz_fresh_dir(dir);
    fz_write(path, data, size);
    wal_db db;
    memset(&db, 0, sizeof db);
    db.fs = fs;
    db.dir = dir;
    wal_map_init(&db.map);
    uint64_t lsn = 0, bytes = 0, vlsn = 0, salt = 0, vsalt = 0;
    kv_status s = wal_snapshot_load(&db, &lsn, &bytes, &salt);
    if (s == KV_OK && wal_map_check(&db.map) != KV_OK) {
        fprintf(stderr, "SNAPSHOT loaded into an invalid map: %s\n", kv_errmsg());
        abort();
    }
    kv_status v = wal_snapshot_verify(&db, devnull, &vlsn, &vsalt);
    if (s != KV_OK && s != KV_CORRUPTION && s != KV_IO) {
        fprintf(stderr, "wal_snapshot_load returned %s\n", kv_strerror(s));
        abort();
    }
    if ((s == KV_OK) != (v == KV_OK) || (s == KV_OK && (lsn != vlsn || salt != vsalt))) {
        fprintf(stderr, "wal_snapshot_load (%s) and wal_snapshot_verify (%s) disagree\n",
                kv_strerror(s), kv_strerror(v));
        abort();
    }
    wal_map_destroy(&db.map);
    free(path);
    free(dir);
    return 0;
}
