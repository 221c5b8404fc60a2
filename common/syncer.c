/* The interval:MS background syncer: a thread that sleeps on a condition variable (timed, on
 * the monotonic clock) so that kv_syncer_stop() wakes it at once. */
#include "syncer.h"

#include "clock.h"

#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct kv_syncer {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    kv_status err;
    char msg[1024]; /* the message of err, taken on the syncer's thread */
    uint32_t interval_ms;
    kv_syncer_fn fn;
    void *ctx;
};

static void *syncer_main(void *arg)
{
    kv_syncer *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stop && s->err == KV_OK) {
        struct timespec deadline =
            kv_deadline_us(CLOCK_MONOTONIC, (uint64_t)s->interval_ms * 1000u);
        int rc = 0;
        while (!s->stop && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&s->cv, &s->mu, &deadline);
        if (s->stop)
            break;
        pthread_mutex_unlock(&s->mu);
        kv_status st = s->fn(s->ctx);
        pthread_mutex_lock(&s->mu);
        if (st != KV_OK) {
            s->err = st;
            snprintf(s->msg, sizeof s->msg, "%s", kv_errmsg());
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

kv_syncer *kv_syncer_start(uint32_t interval_ms, kv_syncer_fn fn, void *ctx)
{
    kv_syncer *s = calloc(1, sizeof *s);
    if (!s) {
        kv_error(KV_NOMEM, "syncer: out of memory");
        return NULL;
    }
    s->interval_ms = interval_ms ? interval_ms : 1;
    s->fn = fn;
    s->ctx = ctx;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&s->mu, NULL);
    int rc = pthread_create(&s->thread, NULL, syncer_main, s);
    if (rc != 0) {
        kv_error(KV_IO, "syncer: pthread_create: %s", strerror(rc));
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return NULL;
    }
    return s;
}

/* Returns s->err, copying its message to the caller's thread. Mutex held. */
static kv_status report(kv_syncer *s)
{
    if (s->err != KV_OK)
        kv_error(s->err, "%s", s->msg);
    return s->err;
}

kv_status kv_syncer_stop(kv_syncer *s)
{
    if (!s)
        return KV_OK;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    kv_status st = report(s);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return st;
}

kv_status kv_syncer_status(kv_syncer *s)
{
    if (!s)
        return KV_OK;
    pthread_mutex_lock(&s->mu);
    kv_status st = report(s);
    pthread_mutex_unlock(&s->mu);
    return st;
}
