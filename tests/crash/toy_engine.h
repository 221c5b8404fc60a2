/* toy: a tiny append-only log-structured key-value engine that exists only to prove that the
 * crash checker (bench/crash/) can fail. It is NOT registered in libkvlab; tests reach it with
 * kv_open_engine() / crash_config.engine_vt.
 *
 * Files. DIR/toy.log: a 24-byte header ("KVTOYLOG", u32 version 2, u32 zero, u64 salt), then
 * records framed by the record log (common/reclog.h, seeded with the salt): one record of type 1
 * per commit (payload: u32 op count, then per op u8 type, u32 key length, u32 value length, key,
 * value), so a batch is atomic, and the record log's sync marks. DIR/toy.meta: 24 bytes naming
 * the log ("KVTOYMET", u32 version, u32 CRC32, u64 the log's salt), so that a missing, replaced or
 * re-created log is corruption, not an empty database. Open replays the log with the record
 * log's scanner: a torn tail is cut (in memory only when read-only), damage followed by a sync
 * mark that says it was durable is KV_CORRUPTION naming file and offset.
 *
 * Durability: none (commits collect in a user-space buffer, written at kv_sync/close or every
 * 64 KiB), os (one pwrite per commit), sync (pwrite + fdatasync per commit; the log's creation
 * is made durable by fsync of the directory). A failed write or sync poisons the handle. A clean
 * close ends the log with a sync mark. Read-only opens (kv_options.read_only) write nothing.
 *
 * The option broken=... makes it deliberately wrong, for the checker's own tests:
 *   nodirsync  skip the directory fsync after creating the log (sync loses everything on power
 *              loss when the create is undone)
 *   nosync     skip the fdatasync of sync mode (acknowledged commits lost on power loss)
 *   split      write a batch as one record per operation (half a batch after a crash)
 *   nocrc      walk the log by its length fields without checking any CRC (damaged values are
 *              served as if written)
 *   lazy       in os mode, keep commits in the user-space buffer as in none (a kill loses
 *              acknowledged commits)
 *   rowrite    a read-only open still cuts a torn tail off the log (it changes the directory) */
#ifndef KVLAB_TESTS_CRASH_TOY_ENGINE_H
#define KVLAB_TESTS_CRASH_TOY_ENGINE_H

#include "kv_engine.h"

extern const kv_engine toy_engine;

#endif
