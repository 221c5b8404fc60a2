/* fuzz_templates.h: real engine directories for the fuzz targets and for make-corpus, written
 * by the engines themselves with one deterministic workload, so that a seed taken from them by
 * make-corpus matches the template a target fuzzes one file of. */
#ifndef KVLAB_FUZZ_TEMPLATES_H
#define KVLAB_FUZZ_TEMPLATES_H

#include "kv_engine.h"

/* Opens engine e on `closed` (created fresh) with small file/page/buffer options (so that
 * every kind of file appears: several WAL segments and a SNAPSHOT, SSTables and a manifest,
 * overflow pages, rotated Bitcask data files with hint files), writes the workload (puts of
 * 1-byte to 6-KiB values, deletes, batches), syncs, copies the directory to `crashed` while the
 * handle is still open (the state a crash would leave: logs not yet checkpointed), then closes
 * it. Aborts on any failure. */
void fz_make_template(const kv_engine *e, const char *closed, const char *crashed);

#endif
