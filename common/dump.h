/* Helpers for kv_dump implementations: printing on-disk bytes so a student can read them, and
 * the picture emitter behind `kvlab dump --format dot` and `kvlab dump --tree`. */
#ifndef KVLAB_DUMP_H
#define KVLAB_DUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kv.h"

/* Prints n bytes at p as a quoted string: printable ASCII as is, everything else (and '"' and
 * '\') as \xNN; at most max bytes are shown, followed by "...(N bytes)" when cut. */
void kv_dump_bytes(FILE *out, const void *p, size_t n, size_t max);

/* ---- pictures ----
 *
 * An engine's picture slot (kv_engine.h) walks its structure once and describes it as a tree of
 * nodes: the database at the root (node KV_PIC_ROOT), then files, levels, pages, each with a
 * title and a few detail lines, plus cross links (a keydir entry pointing into a data file, a
 * free page pointing to the next). The same description is printed as Graphviz DOT or as an
 * indented text tree in the style of tree(1) by kv_pic_emit, so no engine writes two printers.
 *
 * Large databases stay readable: a node shows at most KV_PIC_MAX_CHILDREN children and each depth
 * of the tree at most KV_PIC_MAX_PER_DEPTH nodes; the rest of a node's children are counted and
 * drawn as one "... N more" node. kv_pic_node returns -1 for a node that is not drawn, and every
 * call accepts -1 as a node and then does nothing, so a walk need not test what it gets back;
 * kv_pic_room tells a walk in advance, so that it can skip reading what would not be drawn.
 *
 * Memory: the picture owns every string; an allocation failure is remembered and reported by
 * kv_pic_emit as KV_NOMEM (the calls themselves cannot fail). */
typedef struct kv_pic kv_pic;

enum {
    KV_PIC_ROOT = 0,           /* the node every picture starts with: the database */
    KV_PIC_MAX_CHILDREN = 6,   /* children drawn per node */
    KV_PIC_MAX_PER_DEPTH = 10, /* nodes drawn per depth of the tree */
    KV_PIC_KEY_MAX = 20,       /* key bytes shown by kv_pic_key before "..." */
    KV_PIC_MAX_DEPTH = 32,     /* deeper nodes are not drawn */
};

/* How a node is drawn in DOT (the text tree does not distinguish them). */
typedef enum kv_pic_shape {
    KV_PIC_BOX,   /* a page, a table, a record group: a plain box */
    KV_PIC_FILE,  /* a file of the directory: a note */
    KV_PIC_MEM,   /* a structure in memory only (memtable, keydir): a rounded dashed box */
    KV_PIC_GROUP, /* a grouping of other nodes (a level, the free list): a folder */
} kv_pic_shape;

/* A new picture whose root node is titled by the printf-style fmt. NULL when out of memory
 * (kv_pic_emit is then never reached: the caller reports KV_NOMEM). Free with kv_pic_free. */
kv_pic *kv_pic_new(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kv_pic_free(kv_pic *p);

/* Whether a new child of parent would be drawn (parent drawn, its and its depth's caps not
 * reached). */
bool kv_pic_room(const kv_pic *p, int parent);

/* Adds a child of parent titled by fmt and returns its id, or -1 when it is not drawn (no room:
 * it is then counted in parent's "... N more"; or parent is -1). */
int kv_pic_node(kv_pic *p, int parent, kv_pic_shape shape, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Appends a detail line to node (a DOT label line; in the text tree, after the title). */
void kv_pic_line(kv_pic *p, int node, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Counts n more children of parent that the walk did not add (drawn as "... N more"). */
void kv_pic_more(kv_pic *p, int parent, uint64_t n);

/* A link from node `from` to node `to` outside the tree (a dashed DOT edge; in the text tree a
 * "-> title" line under from), with an optional label (NULL for none). */
void kv_pic_link(kv_pic *p, int from, int to, const char *label);

/* The n bytes at k as a quoted string for titles and lines: printable ASCII as is, other bytes
 * and '"' and '\' as \xNN, cut after KV_PIC_KEY_MAX bytes with "..." appended. The string is
 * owned by the picture and lives until kv_pic_free ("?" when out of memory). */
const char *kv_pic_key(kv_pic *p, const void *k, size_t n);

/* Bytes in a short human form for labels: "812 B", "4.0 KiB", "1.5 MiB" (string owned by the
 * picture, like kv_pic_key). */
const char *kv_pic_bytes(kv_pic *p, uint64_t n);

/* Prints the picture to out as format KV_DUMP_DOT (a `digraph`, every string quoted for DOT) or
 * KV_DUMP_TREE (one line per node, "|-- " and "`-- " branches, ASCII only). The output depends
 * only on the calls made, so a walk that visits the same structure prints the same bytes.
 * Errors: KV_NOMEM (an earlier call ran out of memory), KV_INVALID (another format), KV_IO
 * (writing out failed). */
kv_status kv_pic_emit(const kv_pic *p, FILE *out, kv_dump_format format);

#endif
