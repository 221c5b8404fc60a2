/* fuzz_lsm_edit: the LSM manifest's version-edit record decoder as a pure function
 * (lsm_edit_decode in lsm/version.c: log number, next file, last sequence number, comparator,
 * added files with their key range, deleted files), the payload of one manifest record behind
 * its CRC. An accepted edit is printed (lsm_edit_print, to /dev/null), encoded again and must
 * decode again to the same field counts. */
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
                e2.n_adds != e.n_adds || e2.n_dels != e.n_dels) {
                fprintf(stderr, "a decoded edit does not survive encode + decode\n");
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
