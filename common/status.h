/* kv_status: the error codes every kvlab engine, peer and tool shares (docs/design.md section 4).
 *
 * A function that fails returns a kv_status and, through kv_error(), leaves a one-line message
 * in a thread-local buffer that names what failed (call, file, offset, errno, bad text).
 * kv.c copies that message into the handle so kv_last_error() can return it later. */
#ifndef KVLAB_STATUS_H
#define KVLAB_STATUS_H

#include <stddef.h>

typedef enum kv_status {
    KV_OK = 0,
    KV_NOT_FOUND,  /* the key is absent: not an error, no message is set */
    KV_INVALID,    /* a bad argument; nothing was written */
    KV_CORRUPTION, /* a checksum, magic or structure check failed; message names file and offset */
    KV_IO,         /* an I/O call failed; message names call, file and errno */
    KV_NOSPACE,    /* ENOSPC or EDQUOT; nothing acknowledged was lost */
    KV_BUSY,       /* another handle (any process) holds the directory lock */
    KV_POISONED,   /* an earlier fsync or write failed: writes are refused until reopened */
    KV_NOTSUP,     /* the engine cannot honour this request (for example a durability mode) */
    KV_NOMEM,      /* an allocation failed; nothing acknowledged was lost (never reported as I/O) */
} kv_status;

#define KV_STATUS_COUNT 10

/* Returns a short static name for a status ("ok", "not found", "corruption", ...).
 * Never NULL; an out-of-range value returns "unknown status". */
const char *kv_strerror(kv_status s);

/* Records a printf-style message for status s in this thread's error buffer (at most 1023 bytes,
 * longer messages are cut) and returns s, so that a caller can write
 * `return kv_error(KV_CORRUPTION, "%s: bad crc at offset %llu", path, off);`. */
kv_status kv_error(kv_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Like kv_error() but prefixes the existing message of this thread with "context: ", so that a
 * caller can add where an error came from without losing the detail. Returns s. */
kv_status kv_error_wrap(kv_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The last message recorded by kv_error() on this thread ("" if none). The pointer stays valid
 * for the thread's life; its content changes at the next kv_error() on the same thread. */
const char *kv_errmsg(void);

/* Clears this thread's message. */
void kv_errclear(void);

#endif
