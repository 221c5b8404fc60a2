/* fuzz_lsm_edit: the LSM manifest's version-edit record decoder as a pure function
 * (lsm_edit_decode in lsm/version.c: log number, next file, last sequence number, comparator,
 * the sealed WAL and its length, added files with their size, unique id and key range, deleted
 * files), the payload of one manifest record behind its reclog framing. An accepted edit is
 * printed (lsm_edit_print, to /dev/null), encoded again and must decode again to the same
 * fields. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsm_int.h"

static FILE *devnull;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!devnull && !(devnull = fopen("/dev/null", "w")))
        abort();
    uint8_t *buf = malloc(size ? size : 1); /* exact size: ASan sees any over-read */
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    lsm_edit e;
    if (lsm_edit_decode(buf, size, &e, "fuzz", 0) == KV_OK) {
        for (size_t i = 0; i < e.n_adds; i++) {
            const lsm_edit_file *f = &e.adds[i];
            if (f->level < 0 || f->level >= LSM_LEVELS || f->smallest_len < 8 ||
                f->largest_len < 8) {
                fprintf(stderr, "lsm_edit_decode accepted a bad file entry\n");
                abort();
            }
        }
        lsm_edit_print(devnull, &e);
        kv_buf b = {0};
        if (lsm_edit_encode(&e, &b)) {
            lsm_edit e2;
            if (lsm_edit_decode(b.data, b.len, &e2, "fuzz-reencoded", 0) != KV_OK ||
                e2.n_adds != e.n_adds || e2.n_dels != e.n_dels || e2.has_sealed != e.has_sealed ||
                (e.has_sealed &&
                 (e2.sealed_log != e.sealed_log || e2.sealed_len != e.sealed_len))) {
                fprintf(stderr, "a decoded edit does not survive encode + decode\n");
                abort();
            }
            for (size_t i = 0; i < e.n_adds; i++)
                if (e2.adds[i].unique_id != e.adds[i].unique_id ||
                    e2.adds[i].size != e.adds[i].size) {
                    fprintf(stderr, "a table's size or unique id changed in encode + decode\n");
                    abort();
                }
            lsm_edit_free(&e2);
        }
        kv_buf_free(&b);
        lsm_edit_free(&e);
    }
    free(buf);
    return 0;
}
