/* lock_assert.h: assertions that a lock a function's contract says is held really is.
 *
 * POSIX locks name no owner, so these check that the lock is held by some thread: a try-lock
 * of a held lock fails with EBUSY, whoever holds it (the owner included: POSIX defines both
 * pthread_mutex_trylock and pthread_rwlock_trywrlock so). A function called without its lock in
 * a debug build then usually finds the lock free, takes it, and the assertion stops the process
 * right there, instead of a race being left to chance. The caller's own rule ("mu held") says
 * the holder is the caller. LevelDB's mutex_.AssertHeld() and SQLite's
 * assert(sqlite3_mutex_held()) serve the same purpose.
 *
 * Like assert, they compile to nothing under NDEBUG (Release builds) and run in the Debug build
 * that `make check` tests under the sanitizers. */
#ifndef KVLAB_LOCK_ASSERT_H
#define KVLAB_LOCK_ASSERT_H

#include <assert.h>
#include <errno.h>
#include <pthread.h>

/* Asserts that mutex m (a pthread_mutex_t *) is locked. */
#define KV_ASSERT_HELD(m) assert(pthread_mutex_trylock(m) == EBUSY)

/* Asserts that read-write lock l (a pthread_rwlock_t *) is held, shared or exclusively. */
#define KV_ASSERT_RW_HELD(l) assert(pthread_rwlock_trywrlock(l) == EBUSY)

#endif
