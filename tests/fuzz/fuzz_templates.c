/* fuzz_templates.c: see fuzz_templates.h. */
#include "fuzz_templates.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "kv.h"

static void set(kv_options *o, const char *kv)
{
    if (kv_options_set(o, kv) != KV_OK)
        fz_die(kv);
}

static void must(kv_status s, const char *what)
{
    if (s != KV_OK)
        fz_die(what);
}

void fz_make_template(const kv_engine *e, const char *closed, const char *crashed)
{
    kv_options o;
    kv_options_init(&o);
    if (!strcmp(e->name, "lsm")) {
        set(&o, "write_buffer_size=4096");
        set(&o, "target_file_size=4096");
        set(&o, "block_size=512");
        set(&o, "manifest_max_size=65536");
    } else if (!strcmp(e->name, "btree")) {
        set(&o, "page_size=4096");
    } else if (!strcmp(e->name, "wal")) {
        set(&o, "segment_size=4096");
        set(&o, "checkpoint_bytes=16384");
    } else if (!strcmp(e->name, "bitcask")) {
        set(&o, "file_size=4096");
        set(&o, "merge=manual");
    }
    fz_fresh_dir(closed);
    kv_db *db = NULL;
    must(kv_open_engine(e, closed, &o, &db), e->name);
    uint8_t val[6144];
    for (size_t i = 0; i < sizeof val; i++)
        val[i] = (uint8_t)('a' + i % 26);
    char key[32];
    for (unsigned i = 0; i < 160; i++) {
        int kl = snprintf(key, sizeof key, "k%07u", (i * 37) % 160);
        size_t vl = i % 23 == 0 ? 3000 + (i % 4) * 1000 : 1 + (i * 13) % 90;
        must(kv_put(db, key, (size_t)kl, val, vl), "put");
        if (i % 9 == 4) {
            kl = snprintf(key, sizeof key, "k%07u", (i * 11) % 160);
            kv_status s = kv_delete(db, key, (size_t)kl);
            if (s != KV_OK && s != KV_NOT_FOUND)
                fz_die("delete");
        }
        if (i % 40 == 39) {
            kv_batch *b = kv_batch_new();
            if (!b)
                fz_die("batch");
            for (unsigned j = 0; j < 4; j++) {
                kl = snprintf(key, sizeof key, "b%03u-%u", i, j);
                must(kv_batch_put(b, key, (size_t)kl, val, 10 + j), "batch put");
            }
            kl = snprintf(key, sizeof key, "k%07u", i / 2);
            must(kv_batch_delete(b, key, (size_t)kl), "batch delete");
            must(kv_write(db, b), "write");
            kv_batch_free(b);
        }
    }
    must(kv_sync(db), "sync");
    fz_copy_dir(closed, crashed);
    /* A few more writes after the copy, so that the closed directory's logs differ. */
    for (unsigned i = 0; i < 8; i++) {
        int kl = snprintf(key, sizeof key, "z%03u", i);
        must(kv_put(db, key, (size_t)kl, val, 20), "put");
    }
    must(kv_close(db), "close");
    kv_options_free(&o);
}
