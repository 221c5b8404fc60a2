/* Helpers for kv_dump implementations: printing on-disk bytes so a student can read them. */
#ifndef KVLAB_DUMP_H
#define KVLAB_DUMP_H

#include <stddef.h>
#include <stdio.h>

/* Prints n bytes at p as a quoted string: printable ASCII as is, everything else (and '"' and
 * '\') as \xNN; at most max bytes are shown, followed by "...(N bytes)" when cut. */
void kv_dump_bytes(FILE *out, const void *p, size_t n, size_t max);

#endif
