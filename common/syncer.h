/* The background syncer of the `interval:MS` durability mode: a thread that calls fn(ctx) every
 * interval_ms milliseconds until stopped (docs/design.md section 3). The engine's fn does its
 * fdatasync; an error it returns is kept (kv_syncer_status) and the thread stops calling fn, so
 * a failed fsync is never retried: the engine poisons its handle. */
#ifndef KVLAB_SYNCER_H
#define KVLAB_SYNCER_H

#include <stdint.h>

#include "status.h"

typedef struct kv_syncer kv_syncer;
typedef kv_status (*kv_syncer_fn)(void *ctx);

/* Starts the thread. Returns NULL when the thread cannot be made (message in kv_errmsg()). */
kv_syncer *kv_syncer_start(uint32_t interval_ms, kv_syncer_fn fn, void *ctx);

/* Stops and joins the thread (it does not call fn again) and frees s. NULL allowed. Returns the
 * first error fn returned, or KV_OK. */
kv_status kv_syncer_stop(kv_syncer *s);

/* The first error fn returned so far, or KV_OK (also for s == NULL). kv_syncer_status and
 * kv_syncer_stop copy that error's message to the calling thread (kv_errmsg). */
kv_status kv_syncer_status(kv_syncer *s);

#endif
