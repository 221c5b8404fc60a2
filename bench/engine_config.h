/* What each engine runs with in a benchmark, for the report: what the shared cache budget
 * (--cache-size) becomes in it, where its data lives in memory, and the settings that shape its
 * figures (the peers' as docs/peers.md gives them, kvlab's engines' from their option
 * defaults). -o options given to the run are listed after it by the report. */
#ifndef KVLAB_BENCH_ENGINE_CONFIG_H
#define KVLAB_BENCH_ENGINE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/* One paragraph of plain text about engine with a cache budget of cache bytes (0: each
 * engine's own default) into buf (cap bytes); returns buf. An unknown engine gets its
 * registry description. */
char *engine_config_text(const char *engine, uint64_t cache, char *buf, size_t cap);

#endif
