/* Helpers shared by the lsm tests (see lsm_testutil.h). */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lsm_testutil.h"

void lt_tiny_options(kv_options *o, const char *durability)
{
    assert_int_equal(kv_durability_parse(durability, &o->durability), KV_OK);
    const char *opts[] = {"write_buffer_size=4K",    "target_file_size=4K",
                          "l0_compaction_trigger=2", "l0_slowdown_trigger=3",
                          "l0_stop_trigger=5",       "level_base_bytes=16K",
                          "block_size=512",          "manifest_max_size=256"};
    for (size_t i = 0; i < sizeof opts / sizeof *opts; i++)
        assert_int_equal(kv_options_set(o, opts[i]), KV_OK);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

int lt_count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += ends_with(e->d_name, suffix);
    closedir(d);
    return n;
}

char *lt_find_file(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    char *best = NULL;
    struct dirent *e;
    while ((e = readdir(d)))
        if (ends_with(e->d_name, suffix) && (!best || strcmp(e->d_name, best) < 0)) {
            free(best);
            best = strdup(e->d_name);
        }
    closedir(d);
    if (!best)
        return NULL;
    size_t n = strlen(dir) + strlen(best) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", dir, best);
    free(best);
    return p;
}

unsigned long long lt_stat(kv_db *db, const char *name)
{
    kv_stats st;
    assert_int_equal(kv_stats_get(db, &st), KV_OK);
    for (size_t i = 0; i < st.n_extra; i++)
        if (!strcmp(st.extra[i].name, name))
            return st.extra[i].value;
    fail_msg("no stat %s", name);
    return 0;
}
