/* damage.h: the damaged-file campaign of the crash checker (`kvlab crash --damage`).
 *
 * A hostile user's experiment, automated. The workload (crash_oracle.h) writes a database
 * cleanly, with snapshots of the directory taken on the way; a second database is written with
 * another seed. The clean directory is kept in two states: as kv_close left it, and as it was
 * after a kv_sync of the last commit with the engine still open (what a killed process leaves:
 * logs full of records, nothing checkpointed). Each round copies one of the two (drawn at
 * random), applies one seeded damage of one kind
 * (the list below) and asks the engine, in a forked child under an alarm, for everything: a
 * read-only open first where the engine declares one (after which every file must be byte for
 * byte unchanged), then a normal open; in each, kv_get of every key of the workload, a full
 * scan, and kv_check. The answers are compared with the history:
 *
 *  - a value that was never written for its key is always a wrong answer;
 *  - a stale value, a vanished key or a deleted key come back is a wrong answer, unless the
 *    damage is a torn tail of the newest log (its last record touched, a truncation, bytes
 *    appended) and the state equals the history cut after some commit, a suffix lost;
 *  - a key that a call reported an error for (KV_CORRUPTION, KV_IO...) is no answer at all.
 *
 * Each round gets one class: an error naming the damaged file and a byte offset ("offset N"; for
 * a whole file deleted, swapped, replaced or stale, naming the file is enough), an error without
 * them, an allowed suffix loss, no visible effect (every answer right, no
 * error), a silent wrong answer, or a crash or hang of the child. The damage kinds follow the
 * storage fault studies (Bairavasundaram et al., "An Analysis of Data Corruption in the Storage
 * Stack", FAST 2008; Ganesan et al., "Redundancy Does Not Imply Fault Tolerance", FAST 2017).
 *
 * Flips are weighted towards the structure of each file, found without knowing the engine:
 * headers and footers of every file, and the frame fields (crc, header crc, length, type) and the
 * last record of every log written with the record log (common/reclog.h), found by the records'
 * own checksums. */
#ifndef KVLAB_CRASH_DAMAGE_H
#define KVLAB_CRASH_DAMAGE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "crash.h"

/* The damage kinds, one per round. */
typedef enum crash_dmg_kind {
    CRASH_DMG_FLIP1 = 0, /* one bit flipped */
    CRASH_DMG_FLIPN,     /* 2 to 8 bits flipped, half within one sector */
    CRASH_DMG_ZERO,      /* 1 to 8 aligned 512-byte sectors zeroed */
    CRASH_DMG_TRUNC,     /* the file cut short */
    CRASH_DMG_APPEND,    /* bytes appended: zeros, random bytes, or a copy of its own tail */
    CRASH_DMG_DELETE,    /* the file deleted */
    CRASH_DMG_SWAP,      /* two files of the same kind exchanged */
    CRASH_DMG_REPLACE,   /* the file replaced by the one of the same name of another database */
    CRASH_DMG_STALE,     /* the file replaced by an older copy from earlier in the workload */
    CRASH_DMG_ID,        /* KVLAB.ID flipped, cut, zeroed, deleted or naming another engine */
    CRASH_DMG_KINDS
} crash_dmg_kind;

/* The outcome classes of a round, from best to worst. */
typedef enum crash_dmg_class {
    CRASH_DMG_ERR_LOC = 0, /* an error naming the damaged file and a byte offset (or the file
                              alone when a whole file is wrong) */
    CRASH_DMG_ERR,         /* an error without them */
    CRASH_DMG_SUFFIX,      /* no error; a torn tail of the newest log cost a suffix (allowed) */
    CRASH_DMG_INTACT,      /* no error and every answer right: the damage did not show */
    CRASH_DMG_WRONG,       /* a silent wrong answer */
    CRASH_DMG_CRASH,       /* the child crashed, hung (alarm), or a sanitizer reported */
    CRASH_DMG_CLASSES
} crash_dmg_class;

#define CRASH_DMG_FILE_KINDS 40 /* file kinds tracked per table; more are summed as "other" */

/* The table of one campaign. */
typedef struct crash_damage_table {
    uint64_t cell[CRASH_DMG_KINDS][CRASH_DMG_CLASSES]; /* rounds per damage kind and class */
    uint64_t ro_changed[CRASH_DMG_KINDS]; /* rounds whose read-only open changed the directory */
    uint64_t wrong_check_ok[CRASH_DMG_KINDS];  /* wrong answers while kv_check said ok */
    uint64_t state_cell[2][CRASH_DMG_CLASSES]; /* rounds per starting state (after kv_close;
                                                  after kv_sync, still open) and class */
    size_t nfile_kinds;
    struct {
        char name[48]; /* file name with each run of digits as '#': "#.sst", "MANIFEST-#" */
        uint64_t cell[CRASH_DMG_KINDS][CRASH_DMG_CLASSES];
    } file_kind[CRASH_DMG_FILE_KINDS];
    bool read_only; /* the engine declares a read-only open: it was tried first */
    uint64_t first_example[CRASH_DMG_KINDS]; /* first round with a wrong answer or crash, 0 none */
    char example[CRASH_DMG_KINDS][400];      /* its damage and what went wrong */
    char **bad;  /* every round with a wrong answer or a crash: "round N: damage: what" */
    size_t nbad; /* (malloc'd; freed by crash_damage_table_free) */
    /* What the campaign ran on. */
    size_t files[2];      /* files in the clean directory, closed and synced-open */
    size_t logs_found[2]; /* of those, record logs found */
    uint64_t keys_live;   /* keys present at the end of the history */
} crash_damage_table;

/* The campaign: c->points rounds (default 50; c->at: only that round). Fills *res as
 * crash_damage_run does and *t, which must be zeroed (calloc) or hold an earlier campaign's
 * table (its list is freed, the rest zeroed first). Returns as crash_run: KV_OK when the run could
 * be carried out (wrong answers, crashes and read-only writes are counted as violations in *res),
 * KV_INVALID (bad config), KV_IO (scratch directory), or the error of writing the database. */
kv_status crash_damage_campaign(const crash_config *c, crash_result *res, crash_damage_table *t);

/* Frees the list of bad rounds that t holds (not t itself). */
void crash_damage_table_free(crash_damage_table *t);

/* Prints the per-kind and per-file-kind tables of t (text, for a terminal). */
void crash_damage_print(FILE *out, const crash_config *c, const crash_damage_table *t);

/* Writes t as DIR/damage-ENGINE.md (Markdown: the tables, then every round with a wrong answer
 * or a crash) and DIR/damage-ENGINE.csv (one row per damage kind and class counts, then one per
 * file kind), creating DIR. Errors: KV_IO naming the file. */
kv_status crash_damage_write(const char *dir, const crash_config *c, const crash_damage_table *t);

/* Names: "flip (1 bit)", ... and "error, file+offset", ...; short ones for CSV headers. */
const char *crash_dmg_kind_name(crash_dmg_kind k);
const char *crash_dmg_kind_key(crash_dmg_kind k);
const char *crash_dmg_class_name(crash_dmg_class c);
const char *crash_dmg_class_key(crash_dmg_class c);

/* Sums of t: rounds in class c over all kinds; all rounds. */
uint64_t crash_dmg_class_total(const crash_damage_table *t, crash_dmg_class c);
uint64_t crash_dmg_rounds(const crash_damage_table *t);

/* A record log found in a file's bytes without knowing its engine: the first offset (within the
 * first 64 KiB) where a record framed by common/reclog.h starts, the seed its checksums use
 * (recovered from its header CRC by running CRC32 backwards, then confirmed by the record's own
 * CRC), and the records that follow. */
typedef struct crash_reclog_map {
    uint32_t seed;
    uint64_t first; /* offset of the first record */
    uint64_t end;   /* offset just past the last valid record */
    uint64_t *off;  /* record offsets, n of them (malloc'd) */
    uint32_t *len;  /* their payload lengths */
    uint8_t *type;  /* their types */
    size_t n;
} crash_reclog_map;

/* Looks for a record log in data (size bytes). Returns true and fills *m (free with
 * crash_reclog_map_free) when at least one record was found and the records reach the end of the
 * file or number at least 2. */
bool crash_reclog_find(const uint8_t *data, uint64_t size, crash_reclog_map *m);
void crash_reclog_map_free(crash_reclog_map *m);

#endif
