/* Byte printing shared by every engine's kv_dump, and the picture emitter (dump.h): one tree of
 * nodes, printed either as Graphviz DOT (the language of `dot`, graphviz.org/doc/info/lang.html)
 * or as an indented text tree in the style of tree(1) with --charset=ascii. */
#include "dump.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- pictures ---- */

typedef struct pic_node {
    char *title;
    char **lines;
    size_t nlines;
    kv_pic_shape shape;
    int parent, depth;
    int first, last, next; /* children in insertion order; next sibling */
    unsigned shown;        /* children drawn */
    uint64_t hidden;       /* children counted but not drawn */
} pic_node;

typedef struct pic_link {
    int from, to;
    char *label;
} pic_link;

struct kv_pic {
    pic_node *nodes;
    size_t n, cap;
    pic_link *links;
    size_t nlinks, caplinks;
    char **strs; /* kv_pic_key and kv_pic_bytes results */
    size_t nstrs, capstrs;
    unsigned per_depth[KV_PIC_MAX_DEPTH];
    bool nomem;
};

/* vasprintf without the GNU extension: NULL when out of memory. */
static char *vfmt(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int len = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (len < 0)
        return NULL;
    char *s = malloc((size_t)len + 1);
    if (s)
        vsnprintf(s, (size_t)len + 1, fmt, ap);
    return s;
}

static bool grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return true;
    size_t nc = *cap ? *cap * 2 : 16;
    void *na = realloc(*arr, nc * size);
    if (!na)
        return false;
    *arr = na;
    *cap = nc;
    return true;
}

static int add_node(kv_pic *p, int parent, kv_pic_shape shape, char *title)
{
    if (!title || !grow((void **)&p->nodes, &p->cap, p->n, sizeof *p->nodes)) {
        free(title);
        p->nomem = true;
        return -1;
    }
    int id = (int)p->n++;
    pic_node *nd = &p->nodes[id];
    memset(nd, 0, sizeof *nd);
    nd->title = title;
    nd->shape = shape;
    nd->parent = parent;
    nd->first = nd->last = nd->next = -1;
    if (parent >= 0) {
        pic_node *pa = &p->nodes[parent];
        nd->depth = pa->depth + 1;
        if (pa->last >= 0)
            p->nodes[pa->last].next = id;
        else
            pa->first = id;
        pa->last = id;
        pa->shown++;
        p->per_depth[nd->depth]++;
    }
    return id;
}

kv_pic *kv_pic_new(const char *fmt, ...)
{
    kv_pic *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    char *title = vfmt(fmt, ap);
    va_end(ap);
    if (add_node(p, -1, KV_PIC_BOX, title) != KV_PIC_ROOT) {
        kv_pic_free(p);
        return NULL;
    }
    return p;
}

void kv_pic_free(kv_pic *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++) {
        free(p->nodes[i].title);
        for (size_t j = 0; j < p->nodes[i].nlines; j++)
            free(p->nodes[i].lines[j]);
        free(p->nodes[i].lines);
    }
    for (size_t i = 0; i < p->nlinks; i++)
        free(p->links[i].label);
    for (size_t i = 0; i < p->nstrs; i++)
        free(p->strs[i]);
    free(p->nodes);
    free(p->links);
    free(p->strs);
    free(p);
}

static bool valid(const kv_pic *p, int node)
{
    return node >= 0 && (size_t)node < p->n;
}

bool kv_pic_room(const kv_pic *p, int parent)
{
    if (!valid(p, parent))
        return false;
    const pic_node *pa = &p->nodes[parent];
    int d = pa->depth + 1;
    return d < KV_PIC_MAX_DEPTH && pa->shown < KV_PIC_MAX_CHILDREN &&
           p->per_depth[d] < KV_PIC_MAX_PER_DEPTH;
}

int kv_pic_node(kv_pic *p, int parent, kv_pic_shape shape, const char *fmt, ...)
{
    if (!valid(p, parent))
        return -1;
    if (!kv_pic_room(p, parent)) {
        p->nodes[parent].hidden++;
        return -1;
    }
    va_list ap;
    va_start(ap, fmt);
    char *title = vfmt(fmt, ap);
    va_end(ap);
    return add_node(p, parent, shape, title);
}

void kv_pic_line(kv_pic *p, int node, const char *fmt, ...)
{
    if (!valid(p, node))
        return;
    pic_node *nd = &p->nodes[node];
    va_list ap;
    va_start(ap, fmt);
    char *s = vfmt(fmt, ap);
    va_end(ap);
    if (!s) {
        p->nomem = true;
        return;
    }
    char **nl = realloc(nd->lines, (nd->nlines + 1) * sizeof *nl); /* nodes have a few lines */
    if (!nl) {
        free(s);
        p->nomem = true;
        return;
    }
    nd->lines = nl;
    nd->lines[nd->nlines++] = s;
}

void kv_pic_more(kv_pic *p, int parent, uint64_t n)
{
    if (valid(p, parent))
        p->nodes[parent].hidden += n;
}

void kv_pic_link(kv_pic *p, int from, int to, const char *label)
{
    if (!valid(p, from) || !valid(p, to))
        return;
    char *l = NULL;
    if (label && !(l = strdup(label))) {
        p->nomem = true;
        return;
    }
    if (!grow((void **)&p->links, &p->caplinks, p->nlinks, sizeof *p->links)) {
        free(l);
        p->nomem = true;
        return;
    }
    p->links[p->nlinks++] = (pic_link){from, to, l};
}

static const char *keep(kv_pic *p, char *s)
{
    if (!s || !grow((void **)&p->strs, &p->capstrs, p->nstrs, sizeof *p->strs)) {
        free(s);
        p->nomem = true;
        return "?";
    }
    p->strs[p->nstrs++] = s;
    return s;
}

const char *kv_pic_key(kv_pic *p, const void *k, size_t n)
{
    const uint8_t *b = k;
    size_t show = n < KV_PIC_KEY_MAX ? n : KV_PIC_KEY_MAX;
    char *s = malloc(show * 4 + 6);
    if (!s)
        return keep(p, NULL);
    size_t o = 0;
    s[o++] = '"';
    for (size_t i = 0; i < show; i++) {
        if (b[i] >= 0x20 && b[i] < 0x7f && b[i] != '"' && b[i] != '\\')
            s[o++] = (char)b[i];
        else
            o += (size_t)sprintf(s + o, "\\x%02x", b[i]);
    }
    s[o++] = '"';
    if (show < n) {
        memcpy(s + o, "...", 3);
        o += 3;
    }
    s[o] = 0;
    return keep(p, s);
}

const char *kv_pic_bytes(kv_pic *p, uint64_t n)
{
    static const char *const unit[] = {"KiB", "MiB", "GiB", "TiB"};
    char buf[32];
    if (n < 1024) {
        snprintf(buf, sizeof buf, "%llu B", (unsigned long long)n);
    } else {
        double v = (double)n / 1024;
        int u = 0;
        while (v >= 1024 && u < 3) {
            v /= 1024;
            u++;
        }
        snprintf(buf, sizeof buf, "%.1f %s", v, unit[u]);
    }
    return keep(p, strdup(buf));
}

/* ---- DOT ---- */

/* Writes s inside a DOT double-quoted string: '"' and '\' escaped (a '\' would otherwise start
 * one of DOT's label escapes), control bytes replaced by '?'. */
static void dot_text(FILE *out, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fputc('\\', out);
        fputc(c < 0x20 || c == 0x7f ? '?' : c, out);
    }
}

static const char *dot_shape(kv_pic_shape s)
{
    switch (s) {
    case KV_PIC_FILE:
        return "shape=note";
    case KV_PIC_MEM:
        return "shape=box, style=\"rounded,dashed\"";
    case KV_PIC_GROUP:
        return "shape=folder";
    default:
        return "shape=box";
    }
}

static void emit_dot(const kv_pic *p, FILE *out)
{
    fputs("digraph kvlab {\n", out);
    fputs("  graph [rankdir=TB, nodesep=0.25, ranksep=0.4];\n", out);
    fputs("  node [fontname=\"monospace\", fontsize=10];\n", out);
    fputs("  edge [arrowsize=0.6, fontname=\"monospace\", fontsize=9];\n", out);
    for (size_t i = 0; i < p->n; i++) {
        const pic_node *nd = &p->nodes[i];
        /* every line left-aligned (\l ends a left-justified line in a DOT label) */
        fprintf(out, "  n%zu [%s, label=\"", i, dot_shape(nd->shape));
        dot_text(out, nd->title);
        fputs("\\l", out);
        for (size_t j = 0; j < nd->nlines; j++) {
            dot_text(out, nd->lines[j]);
            fputs("\\l", out);
        }
        fputs("\"];\n", out);
        if (nd->parent >= 0)
            fprintf(out, "  n%d -> n%zu;\n", nd->parent, i);
    }
    for (size_t i = 0; i < p->n; i++) { /* after the drawn children: DOT places them right */
        const pic_node *nd = &p->nodes[i];
        if (nd->hidden) {
            fprintf(out, "  n%zu_more [shape=plaintext, label=\"... %llu more\"];\n", i,
                    (unsigned long long)nd->hidden);
            fprintf(out, "  n%zu -> n%zu_more [style=dotted];\n", i, i);
        }
    }
    for (size_t i = 0; i < p->nlinks; i++) {
        const pic_link *l = &p->links[i];
        fprintf(out, "  n%d -> n%d [style=dashed, constraint=false", l->from, l->to);
        if (l->label) {
            fputs(", label=\"", out);
            dot_text(out, l->label);
            fputc('"', out);
        }
        fputs("];\n", out);
    }
    fputs("}\n", out);
}

/* ---- text tree ---- */

static void tree_label(const pic_node *nd, FILE *out)
{
    fputs(nd->title, out);
    for (size_t j = 0; j < nd->nlines; j++)
        fprintf(out, "%s%s", j ? ", " : ": ", nd->lines[j]);
    fputc('\n', out);
}

/* Prints the children of node (links first, then child nodes, then "... N more") below a line
 * whose continuation prefix is prefix (a buffer of KV_PIC_MAX_DEPTH * 4 + 1 bytes, extended in
 * place while recursing). */
static void tree_children(const kv_pic *p, FILE *out, int node, char *prefix, size_t plen)
{
    const pic_node *nd = &p->nodes[node];
    size_t nout = 0, total = nd->shown + (nd->hidden ? 1 : 0);
    for (size_t i = 0; i < p->nlinks; i++)
        if (p->links[i].from == node)
            total++;
    for (size_t i = 0; i < p->nlinks; i++) {
        const pic_link *l = &p->links[i];
        if (l->from != node)
            continue;
        bool last = ++nout == total;
        fprintf(out, "%s%s-> %s", prefix, last ? "`-- " : "|-- ", p->nodes[l->to].title);
        if (l->label)
            fprintf(out, " (%s)", l->label);
        fputc('\n', out);
    }
    for (int c = nd->first; c >= 0; c = p->nodes[c].next) {
        bool last = ++nout == total;
        fprintf(out, "%s%s", prefix, last ? "`-- " : "|-- ");
        tree_label(&p->nodes[c], out);
        memcpy(prefix + plen, last ? "    " : "|   ", 5);
        tree_children(p, out, c, prefix, plen + 4);
        prefix[plen] = 0;
    }
    if (nd->hidden)
        fprintf(out, "%s`-- ... %llu more\n", prefix, (unsigned long long)nd->hidden);
}

kv_status kv_pic_emit(const kv_pic *p, FILE *out, kv_dump_format format)
{
    if (p->nomem)
        return kv_error(KV_NOMEM, "out of memory drawing the picture");
    if (format == KV_DUMP_DOT) {
        emit_dot(p, out);
    } else if (format == KV_DUMP_TREE) {
        char prefix[KV_PIC_MAX_DEPTH * 4 + 1] = "";
        tree_label(&p->nodes[KV_PIC_ROOT], out);
        tree_children(p, out, KV_PIC_ROOT, prefix, 0);
    } else {
        return kv_error(KV_INVALID, "kv_dump_picture: format %d is not dot or tree", (int)format);
    }
    if (ferror(out))
        return kv_error(KV_IO, "writing the picture failed");
    return KV_OK;
}
