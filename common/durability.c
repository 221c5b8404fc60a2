/* Durability-mode text <-> kv_durability (docs/design.md section 3). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"

kv_status kv_durability_parse(const char *text, kv_durability *out)
{
    if (!text)
        return kv_error(KV_INVALID, "durability: missing mode (none, os, interval:MS, sync)");
    kv_durability d = {KV_DURABILITY_OS, 0};
    if (!strcmp(text, "none")) {
        d.kind = KV_DURABILITY_NONE;
    } else if (!strcmp(text, "os")) {
        d.kind = KV_DURABILITY_OS;
    } else if (!strcmp(text, "sync")) {
        d.kind = KV_DURABILITY_SYNC;
    } else if (!strncmp(text, "interval:", 9)) {
        const char *num = text + 9;
        char *end = NULL;
        errno = 0;
        unsigned long long ms = (*num >= '0' && *num <= '9') ? strtoull(num, &end, 10) : 0;
        if (!end || *end || errno || ms < 1 || ms > 3600000)
            return kv_error(KV_INVALID,
                            "durability: bad interval in '%s' (want interval:MS, MS 1 to 3600000)",
                            text);
        d.kind = KV_DURABILITY_INTERVAL;
        d.interval_ms = (uint32_t)ms;
    } else {
        return kv_error(KV_INVALID, "durability: unknown mode '%s' (none, os, interval:MS, sync)",
                        text);
    }
    *out = d;
    return KV_OK;
}

char *kv_durability_format(kv_durability d, char *buf, size_t cap)
{
    switch (d.kind) {
    case KV_DURABILITY_NONE:
        snprintf(buf, cap, "none");
        break;
    case KV_DURABILITY_OS:
        snprintf(buf, cap, "os");
        break;
    case KV_DURABILITY_INTERVAL:
        snprintf(buf, cap, "interval:%u", d.interval_ms);
        break;
    case KV_DURABILITY_SYNC:
        snprintf(buf, cap, "sync");
        break;
    default:
        snprintf(buf, cap, "unknown");
        break;
    }
    return buf;
}
