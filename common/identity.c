/* identity.c: reading and writing KVLAB.ID (see identity.h). */
#include "identity.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc.h"

#define ID_TMP   KV_ID_FILE ".tmp"
#define ID_BYTES 256 /* KVLAB.ID is far smaller; a bigger file is not one */

static bool name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > KV_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* The first three lines; returns their length, or 0 when they do not fit in cap. */
static size_t head(char *out, size_t cap, const char *engine, uint32_t format)
{
    int n = snprintf(out, cap, "kvlab database\nengine %s\nformat %" PRIu32 "\n", engine, format);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* The whole canonical text of an identity; returns its length, or 0 when it does not fit. */
static size_t canonical(char *out, size_t cap, const char *engine, uint32_t format)
{
    size_t n = head(out, cap, engine, format);
    if (n == 0)
        return 0;
    int m = snprintf(out + n, cap - n, "crc %08" PRIx32 "\n", kv_crc32(out, n));
    return m > 0 && (size_t)m < cap - n ? n + (size_t)m : 0;
}

kv_status kv_identity_write(kv_fs *fs, const char *dir, const char *engine, uint32_t format)
{
    if (!name_ok(engine) || format == 0)
        return kv_error(KV_INVALID, "%s: engine name '%s' or format %" PRIu32 " unfit for %s", dir,
                        engine, format, KV_ID_FILE);
    char buf[ID_BYTES];
    size_t n = canonical(buf, sizeof buf, engine, format);
    return kv_fs_replace_file(fs, dir, KV_ID_FILE, buf, n);
}

/* Parses a whole KVLAB.ID of len bytes: it must be byte for byte the canonical text of the
 * engine and format it names, so that any change to the file is seen. */
static kv_status parse(const char *path, const char *text, size_t len, char *engine, size_t cap,
                       uint32_t *format)
{
    char e[KV_ID_MAX + 2];
    uint32_t f;
    char copy[ID_BYTES + 1];
    memcpy(copy, text, len);
    copy[len] = '\0';
    if (strlen(copy) != len ||
        sscanf(copy, "kvlab database\nengine %41[a-z0-9_-]\nformat %" SCNu32 "\n", e, &f) != 2 ||
        !name_ok(e))
        return kv_error(KV_CORRUPTION,
                        "%s: offset 0: not an identity file (want the lines 'kvlab database', "
                        "'engine NAME', 'format N', 'crc HEX')",
                        path);
    char want[ID_BYTES];
    size_t n = head(want, sizeof want, e, f), wlen = canonical(want, sizeof want, e, f);
    if (n == 0 || len < n || memcmp(want, copy, n) != 0)
        return kv_error(KV_CORRUPTION, "%s: offset 0: malformed engine or format line", path);
    if (len != wlen || memcmp(want, copy, len) != 0)
        return kv_error(KV_CORRUPTION, "%s: offset %zu: crc line does not match the lines above it",
                        path, n);
    if (strlen(e) + 1 > cap)
        return kv_error(KV_INVALID, "%s: engine name longer than the caller's buffer", path);
    memcpy(engine, e, strlen(e) + 1);
    *format = f;
    return KV_OK;
}

kv_status kv_identity_read(kv_fs *fs, const char *dir, kv_id_state *state, char *engine, size_t cap,
                           uint32_t *format)
{
    char *path = kv_path_join(dir, KV_ID_FILE);
    if (!path)
        return kv_error(KV_NOMEM, "%s: out of memory", dir);
    void *data = NULL;
    size_t len = 0;
    kv_status s = kv_fs_read_file(fs, path, ID_BYTES, &data, &len);
    if (s == KV_OK) {
        *state = KV_ID_PRESENT;
        s = parse(path, data, len, engine, cap, format);
    } else if (s == KV_INVALID) {
        s = kv_error(KV_CORRUPTION, "%s: offset %d: longer than any identity file", path, ID_BYTES);
    } else if (s == KV_NOT_FOUND) {
        kv_namelist l;
        s = kv_fs_list(fs, dir, &l);
        if (s == KV_OK) {
            *state = KV_ID_EMPTY;
            for (size_t i = 0; i < l.count; i++)
                if (strcmp(l.names[i], KV_LOCK_FILE) && strcmp(l.names[i], ID_TMP))
                    *state = KV_ID_FOREIGN;
            kv_namelist_free(&l);
        }
    }
    free(data);
    free(path);
    return s;
}
