/* toy: a tiny append-only log-structured key-value engine that exists only to prove that the
 * crash checker (bench/crash/) can fail. It is NOT registered in libkvlab; tests reach it with
 * kv_open_engine() / crash_config.engine_vt.
 *
 * Format of DIR/toy.log: a 16-byte header ("KVTOYLOG", u32 version 1, u32 salt), then records
 * [u32 crc32 of the rest][u32 payload length][payload: u32 op count, then per op u8 type,
 * u32 key length, u32 value length, key, value]. One record per commit, so a batch is atomic.
 * Open replays the log and cuts the tail at the first short or checksum-failing record (the
 * Bitcask/LevelDB log recovery, simplified: the toy does not tell a torn tail from damage).
 *
 * Durability: none (commits collect in a user-space buffer, written at kv_sync/close or every
 * 64 KiB), os (one pwrite per commit), sync (pwrite + fdatasync per commit; the log's creation
 * is made durable by fsync of the directory). A failed write or sync poisons the handle.
 *
 * The option broken=... makes it deliberately wrong, for the checker's own tests:
 *   nodirsync  skip the directory fsync after creating the log (sync loses everything on power
 *              loss when the create is undone)
 *   nosync     skip the fdatasync of sync mode (acknowledged commits lost on power loss)
 *   split      write a batch as one record per operation (half a batch after a crash)
 *   nocrc      do not verify checksums at open (damaged values are served as if written)
 *   lazy       in os mode, keep commits in the user-space buffer as in none (a kill loses
 *              acknowledged commits) */
#ifndef KVLAB_TESTS_CRASH_TOY_ENGINE_H
#define KVLAB_TESTS_CRASH_TOY_ENGINE_H

#include "kv_engine.h"

extern const kv_engine toy_engine;

#endif
