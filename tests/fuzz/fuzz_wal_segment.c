/* fuzz_wal_segment: a wal/ log segment file opened by the log's own recovery (wal_log_open:
 * segment header check, record scan under reclog's torn-tail rule, the cut, replay of committed
 * batches). The input is written as the only segment of a fresh log directory, named by the
 * first LSN its header claims (so inputs built from a real segment get past the name/header
 * check). A read-only open comes first: it must leave the file byte for byte as it was, and
 * replay what the writable open then replays. The open must succeed (then wal_log_verify runs
 * and must agree) or fail with KV_CORRUPTION / KV_IO / KV_NOMEM. When the strict open reports
 * corruption, the point-in-time recovery mode is tried too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coding.h"
#include "fuzz_seal.h"
#include "fuzz_util.h"
#include "wal_log.h"

static kv_fs *fs;

/* What a replay gave back: batches, records, payload bytes and a hash of the LSNs. */
typedef struct seen {
    size_t batches, records, bytes;
    uint64_t lsns;
} seen;

static kv_status replay(void *ctx, const wal_replay_rec *recs, size_t n, uint64_t commit_lsn)
{
    seen *t = ctx;
    t->batches++;
    t->lsns = t->lsns * 31 + commit_lsn;
    for (size_t i = 0; i < n; i++) {
        volatile uint8_t sink = recs[i].len ? recs[i].payload[recs[i].len - 1] : 0;
        (void)sink;
        t->records++;
        t->bytes += recs[i].len;
    }
    return KV_OK;
}

static bool expected_failure(kv_status s)
{
    return s == KV_CORRUPTION || s == KV_IO || s == KV_NOMEM;
}

static kv_status try_open(const char *dir, const char *path, const uint8_t *data, size_t size,
                          wal_recovery_mode mode)
{
    fz_fresh_dir(dir);
    fz_write(path, data, size);
    wal_log_options o;
    wal_log_options_init(&o);
    o.recovery = mode;
    o.segment_size = 4096;
    /* Read-only first: nothing may change, and it must see what the writable open replays. */
    o.read_only = true;
    wal_log *l = NULL;
    seen ro = {0}, rw = {0};
    kv_status r = wal_log_open(fs, dir, &o, replay, &ro, &l);
    if (r == KV_OK) {
        if (wal_log_verify(l) != KV_OK && mode == WAL_RECOVER_STRICT) {
            fprintf(stderr, "read-only open accepted a log its own verify rejects: %s\n",
                    kv_errmsg());
            abort();
        }
        if (wal_log_close(l) != KV_OK)
            fz_die("read-only close");
    } else if (!expected_failure(r)) {
        fprintf(stderr, "read-only open of a damaged segment returned %s: %s\n", kv_strerror(r),
                kv_errmsg());
        abort();
    }
    size_t now_n = 0;
    uint8_t *now = fz_read(path, &now_n);
    if (!now || now_n != size || (size && memcmp(now, data, size))) {
        fprintf(stderr, "a read-only open changed the segment\n");
        abort();
    }
    free(now);
    o.read_only = false;
    l = NULL;
    kv_status s = wal_log_open(fs, dir, &o, replay, &rw, &l);
    if ((s == KV_OK) != (r == KV_OK) ||
        (s == KV_OK && (ro.batches != rw.batches || ro.records != rw.records ||
                        ro.bytes != rw.bytes || ro.lsns != rw.lsns))) {
        fprintf(stderr, "read-only open (%s, %zu batches) and writable open (%s, %zu) disagree\n",
                kv_strerror(r), ro.batches, kv_strerror(s), rw.batches);
        abort();
    }
    if (s == KV_OK) {
        kv_status v = wal_log_verify(l);
        if (v != KV_OK) {
            fprintf(stderr, "wal_log_open accepted a log that wal_log_verify rejects: %s\n",
                    kv_errmsg());
            abort();
        }
        wal_slice sl = {"k", 1};
        wal_record rec = {WAL_REC_PUT, &sl, 1};
        (void)wal_log_append_batch(l, &rec, 1, NULL, NULL, NULL);
        s = wal_log_close(l);
    } else if (!expected_failure(s)) {
        fprintf(stderr, "wal_log_open of a damaged segment returned %s: %s\n", kv_strerror(s),
                kv_errmsg());
        abort();
    }
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fs && !(fs = kv_fs_posix()))
        fz_die("kv_fs_posix");
    uint64_t first = size >= 32 ? kv_get_u64(data + 24) : 1;
    if (first == 0 || first > 99999999999999999ull)
        first = 1;
    char name[WAL_SEG_NAME_LEN + 1];
    wal_seg_name(name, first);
    char *dir = fz_strf("%s/log", fz_root());
    char *path = fz_strf("%s/%s", dir, name);
    if (try_open(dir, path, data, size, WAL_RECOVER_STRICT) == KV_CORRUPTION)
        (void)try_open(dir, path, data, size, WAL_RECOVER_POINT_IN_TIME);
    /* Again with every CRC fixed (fuzz_seal.h), to reach the checks behind them. */
    uint8_t *copy = malloc(size ? size : 1);
    if (copy) {
        memcpy(copy, data, size);
        if (fz_seal_wal_segment(copy, size) &&
            try_open(dir, path, copy, size, WAL_RECOVER_STRICT) == KV_CORRUPTION)
            (void)try_open(dir, path, copy, size, WAL_RECOVER_POINT_IN_TIME);
        free(copy);
    }
    free(path);
    free(dir);
    return 0;
}
