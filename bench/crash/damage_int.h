/* Internals of the damaged-file campaign (damage.h), shared by bench/crash/damage*.c. */
#ifndef KVLAB_CRASH_DAMAGE_INT_H
#define KVLAB_CRASH_DAMAGE_INT_H

#include "crash_int.h"
#include "damage.h"

#define DMG_SNAPS 3 /* older copies of the directory, after 1/4, 1/2 and 3/4 of the workload */

/* How a file of a clean directory changed since its tail snapshot (dmg_env.tail): that tells the
 * newest log, whose torn tail may cost a suffix. */
typedef enum dmg_age {
    DMG_OLD = 0,  /* there before, not appended to (unchanged, or rewritten in place) */
    DMG_APPENDED, /* there before and only appended to: a log being written */
    DMG_NEW,      /* created since */
    DMG_REWRITTEN /* there before, now other bytes (a log restarted by a checkpoint): every byte
                     of it written since, as for a new file */
} dmg_age;

typedef struct dmg_file {
    char *name;    /* base name in the clean directory */
    char kind[48]; /* name with every run of digits as '#' */
    int fk;        /* its index in the table's file kinds */
    uint8_t *data; /* the clean bytes (malloc'd) */
    uint64_t size;
    bool has_map; /* a record log was found in it */
    crash_reclog_map map;
    dmg_age age;
    uint64_t tail_start; /* DMG_APPENDED: its size in the tail snapshot; else 0 */
    uint64_t last_rec;   /* where its last proof of durability starts: closed, its last record
                            (the record log's, else tail_start); synced, tail_start */
    unsigned stale;      /* bit i: snapshot i holds an older, different copy */
    bool in_other;       /* the other database has a different file of the same name */
} dmg_file;

/* The two states of the clean database a round starts from. */
typedef enum dmg_state {
    DMG_CLOSED = 0, /* after kv_close: logs checkpointed, hints written, memtables flushed */
    DMG_SYNCED,     /* after kv_sync of the last commit, the engine still open (as a kill
                       would leave it): logs full of records, nothing checkpointed */
    DMG_STATES
} dmg_state;

/* One state's directory and its files, sorted by name. */
typedef struct dmg_clean {
    char *dir;
    dmg_file *f;
    size_t n;
} dmg_clean;

/* Everything the rounds share; set up once from the clean directories. */
typedef struct dmg_env {
    crash_ctx x;
    crash_workload other_w; /* the other database's workload (another seed) */
    char *other, *snap[DMG_SNAPS];
    dmg_clean clean[DMG_STATES];
    /* Per state, the tail snapshot: the directory at the last point from which the state's logs
     * prove their bytes durable to the engine, and the commits that must survive damage to the
     * bytes written after it. Closed: before the last state-changing commit (the close then
     * syncs and, on the record log, ends each log with a sync mark). Synced: just after the last
     * kv_sync that a write followed (a log records a sync only with its next write, as the
     * record log's sync marks do, reclog.h; what comes after is indistinguishable from unsynced
     * bytes, which a power loss may tear at any byte). */
    char *tail[DMG_STATES];
    size_t tail_lo[DMG_STATES];
    /* the round's state: clean[state]'s fields */
    dmg_state state;
    const char *pristine;
    dmg_file *f;
    size_t n;
    size_t last;         /* index of the last state-changing commit */
    size_t last_sync;    /* commits applied at the workload's last kv_sync (0: none) */
    uint64_t *final_ver; /* per key: the version the history ends with (0: absent) */
    uint32_t *op_commit; /* per op: the index of its commit */
    int64_t *last_op;    /* per key: index of the last op on it, -1 when never written */
    crash_damage_table *t;
} dmg_env;

/* One round's damage, as applied. */
typedef struct dmg_plan {
    crash_dmg_kind kind;
    int file, file2;    /* indexes into env->f, -1 for KVLAB.ID or none */
    char names[2][128]; /* the damaged files' names, for the location check */
    size_t nnames;
    bool whole_file; /* a whole file is missing or wrong (deleted, swapped, replaced, stale): an
                        error naming it is located; damaged bytes also want a byte offset */
    char desc[320];
    size_t lo; /* a legal state is the history after p commits for some p in [lo, ncommits] */
} dmg_plan;

/* What the child found (sent through a pipe). */
typedef struct dmg_outcome {
    uint32_t magic; /* DMG_OUTCOME_MAGIC: a whole outcome arrived */
    crash_dmg_class cls;
    bool rw_opened;  /* the normal open succeeded */
    bool ro_ran;     /* a read-only open was tried */
    bool ro_changed; /* and it changed the directory */
    bool phantom;    /* the wrong answer was a value never written */
    bool check_ok;   /* kv_check said ok in the phase with the wrong answer */
    char err[400];   /* the first error's message */
    char why[400];   /* the wrong answer, or what the read-only open changed */
} dmg_outcome;

#define DMG_OUTCOME_MAGIC 0x444d474fu

/* splitmix64 */
static inline uint64_t dmg_rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Chooses round's damage from the seed and applies it to dir, a fresh copy of the clean
 * directory. Returns 0, or -1 with errno set when a file could not be changed. */
int dmg_apply(dmg_env *e, uint64_t round, const char *dir, dmg_plan *p);

/* The child's work: the read-only and the normal open of dir, the reads and the verdict. */
void dmg_judge(dmg_env *e, const dmg_plan *p, const char *dir, dmg_outcome *out);

/* Reads a whole file into a malloc'd buffer. Returns 0 or -1 (errno set). */
int dmg_read_file(const char *path, uint8_t **data, uint64_t *size);
/* Writes size bytes as the whole file path (created or truncated). Returns 0 or -1. */
int dmg_write_file(const char *path, const void *data, uint64_t size);

/* The table's index of a file kind, adding it (the last slot collects the rest as "other"). */
int dmg_file_kind(crash_damage_table *t, const char *kind);

#endif
