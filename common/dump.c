/* Byte printing shared by every engine's kv_dump. */
#include "dump.h"

#include <ctype.h>
#include <stdint.h>

void kv_dump_bytes(FILE *out, const void *p, size_t n, size_t max)
{
    const uint8_t *b = p;
    size_t show = n < max ? n : max;
    fputc('"', out);
    for (size_t i = 0; i < show; i++) {
        if (isprint(b[i]) && b[i] != '"' && b[i] != '\\')
            fputc(b[i], out);
        else
            fprintf(out, "\\x%02x", b[i]);
    }
    fputc('"', out);
    if (show < n)
        fprintf(out, "...(%zu bytes)", n);
}
