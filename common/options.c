/* kv_options: the common options and engine-specific key=value extras (docs/design.md section 2).
 * An unknown extra key is rejected by kv_open, never ignored. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"

void kv_options_init(kv_options *o)
{
    memset(o, 0, sizeof *o);
    o->durability.kind = KV_DURABILITY_OS;
    o->create_if_missing = true;
    o->read_only = false;
}

kv_status kv_options_set(kv_options *o, const char *kv)
{
    const char *eq = kv ? strchr(kv, '=') : NULL;
    if (!eq || eq == kv)
        return kv_error(KV_INVALID, "option '%s': want key=value", kv ? kv : "(null)");
    size_t klen = (size_t)(eq - kv);
    char *key = strndup(kv, klen);
    char *value = strdup(eq + 1);
    if (!key || !value) {
        free(key);
        free(value);
        return kv_error(KV_INVALID, "option '%s': out of memory", kv);
    }
    for (size_t i = 0; i < o->n_extra; i++) {
        if (!strcmp(o->extra[i].key, key)) {
            free(key);
            free(o->extra[i].value);
            o->extra[i].value = value;
            return KV_OK;
        }
    }
    kv_option *n = realloc(o->extra, (o->n_extra + 1) * sizeof *n);
    if (!n) {
        free(key);
        free(value);
        return kv_error(KV_INVALID, "option '%s': out of memory", kv);
    }
    o->extra = n;
    o->extra[o->n_extra].key = key;
    o->extra[o->n_extra].value = value;
    o->n_extra++;
    return KV_OK;
}

void kv_options_free(kv_options *o)
{
    for (size_t i = 0; i < o->n_extra; i++) {
        free(o->extra[i].key);
        free(o->extra[i].value);
    }
    free(o->extra);
    o->extra = NULL;
    o->n_extra = 0;
}

const char *kv_options_get(const kv_options *o, const char *key)
{
    for (size_t i = 0; o && i < o->n_extra; i++)
        if (!strcmp(o->extra[i].key, key))
            return o->extra[i].value;
    return NULL;
}

kv_status kv_options_get_u64(const kv_options *o, const char *key, uint64_t min, uint64_t max,
                             uint64_t *out)
{
    const char *v = kv_options_get(o, key);
    if (!v)
        return KV_OK;
    char *end = NULL;
    errno = 0;
    unsigned long long n = (*v >= '0' && *v <= '9') ? strtoull(v, &end, 10) : 0;
    if (!end || errno)
        return kv_error(KV_INVALID, "option %s=%s: not a number", key, v);
    uint64_t mult = 1;
    if (*end == 'K' || *end == 'k')
        mult = 1ull << 10;
    else if (*end == 'M' || *end == 'm')
        mult = 1ull << 20;
    else if (*end == 'G' || *end == 'g')
        mult = 1ull << 30;
    if (mult != 1)
        end++;
    if (*end)
        return kv_error(KV_INVALID, "option %s=%s: not a number (suffixes K, M, G)", key, v);
    if (n > UINT64_MAX / mult)
        return kv_error(KV_INVALID, "option %s=%s: too large", key, v);
    uint64_t r = n * mult;
    if (r < min || r > max)
        return kv_error(KV_INVALID, "option %s=%s: out of range [%llu, %llu]", key, v,
                        (unsigned long long)min, (unsigned long long)max);
    *out = r;
    return KV_OK;
}

void kv_stats_add(kv_stats *s, const char *name, uint64_t value)
{
    if (s->n_extra >= KV_STATS_EXTRA_MAX)
        return;
    kv_stat_counter *c = &s->extra[s->n_extra++];
    snprintf(c->name, sizeof c->name, "%s", name);
    c->value = value;
}

kv_status kv_options_get_bug(const kv_options *o, const char *engine, const char *const *names,
                             int *bug)
{
    const char *v = kv_options_get(o, "bug");
    if (!v)
        return KV_OK;
    if (!o->allow_bugs)
        return kv_error(KV_INVALID,
                        "option bug=%s deliberately breaks %s's crash safety (docs/lab.md); it is "
                        "refused unless the caller sets kv_options.allow_bugs (the command line's "
                        "--allow-bugs)",
                        v, engine);
    if (!names)
        return KV_OK;
    char list[512];
    size_t len = 0;
    list[0] = '\0';
    for (int i = 0; names[i]; i++) {
        if (!strcmp(v, names[i])) {
            *bug = i + 1;
            return KV_OK;
        }
        int n = snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", names[i]);
        if (n > 0 && (size_t)n < sizeof list - len)
            len += (size_t)n;
    }
    return kv_error(KV_INVALID, "option bug=%s: engine %s has no such bug (it has: %s)", v, engine,
                    len ? list : "none");
}
