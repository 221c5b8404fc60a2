/* Helpers shared by the lsm tests: options with tiny sizes so that flushes, compactions and
 * manifest roll-overs happen within a few hundred operations, and file helpers. */
#ifndef KVLAB_LSM_TESTUTIL_H
#define KVLAB_LSM_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "kv.h"

/* Fills o (initialised by the caller) with tiny lsm sizes and the given durability text. */
void lt_tiny_options(kv_options *o, const char *durability);
/* Counts the files of dir whose name ends with suffix. */
int lt_count_files(const char *dir, const char *suffix);
/* Returns a malloc'd path of the first file in dir (by name) ending with suffix, or NULL. */
char *lt_find_file(const char *dir, const char *suffix);
/* Returns a value from the handle's stats extras (asserts it exists). */
unsigned long long lt_stat(kv_db *db, const char *name);

#endif
