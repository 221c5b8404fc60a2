/* bc_startup.h: the start-up accelerations, and the one seam between them and the core start-up
 * (bc_recover.c).
 *
 * The core rebuilds the keydir the way the Bitcask paper describes: one data file after
 * another, from its hint file when that is valid, else by scanning the file, inserting each
 * entry in turn. On a database of millions of keys that is dominated by three costs the paper
 * does not discuss, and each has its remedy here:
 *   - a keydir insert is a cache miss at a random place in a large table: entries are staged in
 *     batches and each slot is prefetched a few inserts before its use, so the misses overlap;
 *   - reading, checking and decoding the hint files needs nothing from the keydir: a reader
 *     thread does it on the second core and hands over ready-made slots (bc_hintload.h);
 *   - the kernel zeroes each page of a fresh keydir table where it is first written: the table
 *     is sized once from the hint headers and faulted in by a prefault thread (bc_prefault.h).
 *
 * Nothing here changes what start-up finds: the same entries reach the keydir in the same order
 * per file, and every check of the core is made (the reader checks a hint file's crcs before it
 * hands over its first entry). `-o startup=plain` switches all of it off; the core then runs
 * alone, and the tests open the same databases both ways.
 *
 * The core calls the functions below only when db->startup_fast is set, each at one place:
 * begin before the first file, load_hint for a file with a hint, stage for each entry a scan or
 * a hint walk on the core's thread finds, drain (or drop) at the end of that walk, end after the
 * last file. Only the opening thread calls them. */
#ifndef KVLAB_BC_STARTUP_H
#define KVLAB_BC_STARTUP_H

#include <stdbool.h>
#include <stddef.h>

#include "bc_int.h"

typedef struct bc_startup bc_startup;

/* Starts the accelerations for loading db->files[0..db->nfiles), whose hint files are
 * hpaths[i] (NULL: none; the array and its strings stay the caller's until bc_startup_end):
 * sizes the keydir from the hint headers' entry counts, starts the hint reader thread when two
 * CPUs are there, and the prefault thread for the keydir's table. Returns the state (owned by
 * the caller, freed by bc_startup_end), or NULL when there is no memory for it: the core then
 * loads alone. Never fails otherwise: each acceleration that cannot start is simply left out. */
bc_startup *bc_startup_begin(bc_db *db, char *const *hpaths);

/* Loads file number i (c->file, whose hint is hpaths[i]) from the entries the reader thread
 * decoded, when the reader took that file: returns true and sets *s to the result (KV_OK;
 * KV_CORRUPTION or KV_INVALID for a damaged hint, which the core then scans; KV_NOMEM).
 * Returns false when the reader is not running; the core then reads the hint itself. */
bool bc_startup_load_hint(bc_startup *su, bc_load_ctx *c, size_t i, kv_status *s);

/* Takes one entry found on the core's thread (key bytes must stay valid until the next
 * bc_startup_drain or bc_startup_drop) into the current batch, inserting the batch when it is
 * full. Errors: KV_NOMEM. */
kv_status bc_startup_stage(bc_startup *su, bc_load_ctx *c, const bc_rec *r, uint32_t hash);
/* Inserts the staged entries of c->file. Errors: KV_NOMEM. */
kv_status bc_startup_drain(bc_startup *su, bc_load_ctx *c);
/* Forgets the staged entries (a walk that failed: the scan finds them again). */
void bc_startup_drop(bc_startup *su);

/* Stops and joins both threads (on every path, before anything may free the keydir's table),
 * records their work in db's start-up statistics and frees su. NULL is a no-op. */
void bc_startup_end(bc_startup *su, bc_db *db);

#endif
