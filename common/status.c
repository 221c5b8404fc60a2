/* kv_status names and the thread-local error message (docs/design.md section 4). */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char tls_msg[1024];

const char *kv_strerror(kv_status s)
{
    static const char *const names[KV_STATUS_COUNT] = {
        "ok",       "not found", "invalid argument", "corruption",    "I/O error",
        "no space", "busy",      "poisoned",         "not supported", "out of memory",
    };
    if ((unsigned)s >= KV_STATUS_COUNT)
        return "unknown status";
    return names[s];
}

kv_status kv_error(kv_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tls_msg, sizeof tls_msg, fmt, ap);
    va_end(ap);
    return s;
}

kv_status kv_error_wrap(kv_status s, const char *fmt, ...)
{
    char prefix[512];
    char old[sizeof tls_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, tls_msg, sizeof old);
    /* prefix + ": " + old, cut to the buffer (a long message loses its tail, never its head). */
    size_t n = strlen(prefix);
    memcpy(tls_msg, prefix, n + 1);
    if (old[0] && n + 2 < sizeof tls_msg) {
        memcpy(tls_msg + n, ": ", 3);
        size_t room = sizeof tls_msg - n - 3;
        size_t m = strnlen(old, room);
        memcpy(tls_msg + n + 2, old, m);
        tls_msg[n + 2 + m] = '\0';
    }
    return s;
}

const char *kv_errmsg(void)
{
    return tls_msg;
}

void kv_errclear(void)
{
    tls_msg[0] = '\0';
}
