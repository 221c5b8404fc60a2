/* The damage campaign's table: names, sums, and the text, Markdown and CSV forms (damage.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "damage_int.h"

static const char *const kind_name[CRASH_DMG_KINDS] = {
    "flip (1 bit)",       "flips (2-8 bits)", "zeroed sectors",    "truncated",
    "bytes appended",     "deleted",          "swapped (2 files)", "replaced (other db)",
    "stale (older copy)", "KVLAB.ID damaged"};
static const char *const kind_key[CRASH_DMG_KINDS] = {
    "flip1", "flipN", "zero", "trunc", "append", "delete", "swap", "replace", "stale", "id"};
static const char *const class_name[CRASH_DMG_CLASSES] = {
    "error, file (+offset)", "error, no location", "allowed suffix loss", "no effect",
    "silent wrong answer",   "crash or hang"};
static const char *const class_key[CRASH_DMG_CLASSES] = {"err_loc", "err",   "suffix",
                                                         "intact",  "wrong", "crash"};
static const char *const state_name[2] = {"from closed", "from synced, open"};
static const char *const class_short[CRASH_DMG_CLASSES] = {"err+loc", "err",   "suffix",
                                                           "intact",  "WRONG", "crash"};

const char *crash_dmg_kind_name(crash_dmg_kind k)
{
    return k < CRASH_DMG_KINDS ? kind_name[k] : "?";
}

const char *crash_dmg_kind_key(crash_dmg_kind k)
{
    return k < CRASH_DMG_KINDS ? kind_key[k] : "?";
}

const char *crash_dmg_class_name(crash_dmg_class c)
{
    return c < CRASH_DMG_CLASSES ? class_name[c] : "?";
}

const char *crash_dmg_class_key(crash_dmg_class c)
{
    return c < CRASH_DMG_CLASSES ? class_key[c] : "?";
}

uint64_t crash_dmg_class_total(const crash_damage_table *t, crash_dmg_class c)
{
    uint64_t n = 0;
    for (int k = 0; k < CRASH_DMG_KINDS; k++)
        n += t->cell[k][c];
    return n;
}

uint64_t crash_dmg_rounds(const crash_damage_table *t)
{
    uint64_t n = 0;
    for (int c = 0; c < CRASH_DMG_CLASSES; c++)
        n += crash_dmg_class_total(t, (crash_dmg_class)c);
    return n;
}

void crash_damage_table_free(crash_damage_table *t)
{
    for (size_t i = 0; i < t->nbad; i++)
        free(t->bad[i]);
    free(t->bad);
    t->bad = NULL;
    t->nbad = 0;
}

int dmg_file_kind(crash_damage_table *t, const char *kind)
{
    for (size_t i = 0; i < t->nfile_kinds; i++)
        if (!strcmp(t->file_kind[i].name, kind))
            return (int)i;
    if (t->nfile_kinds == CRASH_DMG_FILE_KINDS - 1) {
        snprintf(t->file_kind[t->nfile_kinds].name, sizeof t->file_kind[0].name, "other");
        t->nfile_kinds++;
    }
    if (t->nfile_kinds == CRASH_DMG_FILE_KINDS)
        return CRASH_DMG_FILE_KINDS - 1;
    snprintf(t->file_kind[t->nfile_kinds].name, sizeof t->file_kind[0].name, "%s", kind);
    return (int)t->nfile_kinds++;
}

static uint64_t row_sum(const uint64_t *row)
{
    uint64_t n = 0;
    for (int c = 0; c < CRASH_DMG_CLASSES; c++)
        n += row[c];
    return n;
}

/* Sums a file kind's row over damage kinds. */
static void fk_row(const crash_damage_table *t, size_t i, uint64_t row[CRASH_DMG_CLASSES])
{
    memset(row, 0, CRASH_DMG_CLASSES * sizeof *row);
    for (int k = 0; k < CRASH_DMG_KINDS; k++)
        for (int c = 0; c < CRASH_DMG_CLASSES; c++)
            row[c] += t->file_kind[i].cell[k][c];
}

static void header(FILE *out, const crash_config *c, const crash_damage_table *t, bool md)
{
    const char *name = c->engine_vt ? c->engine_vt->name : c->engine;
    char d[32];
    uint64_t n = crash_dmg_rounds(t);
    uint64_t loc = crash_dmg_class_total(t, CRASH_DMG_ERR_LOC);
    uint64_t errs = loc + crash_dmg_class_total(t, CRASH_DMG_ERR);
    uint64_t ro = 0, wok = 0;
    for (int k = 0; k < CRASH_DMG_KINDS; k++)
        ro += t->ro_changed[k], wok += t->wrong_check_ok[k];
    fprintf(out,
            "damaged files: engine %s, %llu rounds; workload %s, %zu commits over %u keys (%llu "
            "live at the end), seed %llu, durability %s",
            name, (unsigned long long)n, c->workload, c->ops, c->keys,
            (unsigned long long)t->keys_live, (unsigned long long)c->seed,
            kv_durability_format(c->durability, d, sizeof d));
    for (size_t i = 0; i < c->n_options; i++)
        fprintf(out, ", -o %s", c->options[i]);
    fprintf(out,
            "\n%sthe clean directory: %zu files after kv_close, %zu after kv_sync with the engine "
            "open; record logs (common/reclog.h) found: %zu and %zu; read-only open: %s\n",
            md ? "\n" : "", t->files[0], t->files[1], t->logs_found[0], t->logs_found[1],
            t->read_only ? "tried first, the directory compared byte for byte"
                         : "not declared by the engine (skipped)");
    fprintf(out,
            "%serrors naming the damaged file and offset (the file alone for a whole file): %llu "
            "of %llu (%.1f%%); "
            "silent wrong answers: %llu (%llu while kv_check said ok); crashes or hangs: "
            "%llu; read-only opens that changed the directory: %llu\n",
            md ? "\n" : "", (unsigned long long)loc, (unsigned long long)errs,
            errs ? 100.0 * (double)loc / (double)errs : 0.0,
            (unsigned long long)crash_dmg_class_total(t, CRASH_DMG_WRONG), (unsigned long long)wok,
            (unsigned long long)crash_dmg_class_total(t, CRASH_DMG_CRASH), (unsigned long long)ro);
}

void crash_damage_print(FILE *out, const crash_config *c, const crash_damage_table *t)
{
    fprintf(out, "\n");
    header(out, c, t, false);
    fprintf(out, "\n%-20s %7s", "damage", "rounds");
    for (int k = 0; k < CRASH_DMG_CLASSES; k++)
        fprintf(out, " %7s", class_short[k]);
    fprintf(out, " %8s\n", "ro-wrote");
    uint64_t tot[CRASH_DMG_CLASSES] = {0}, ro = 0;
    for (int k = 0; k < CRASH_DMG_KINDS; k++) {
        fprintf(out, "%-20s %7llu", kind_name[k], (unsigned long long)row_sum(t->cell[k]));
        for (int c2 = 0; c2 < CRASH_DMG_CLASSES; c2++) {
            fprintf(out, " %7llu", (unsigned long long)t->cell[k][c2]);
            tot[c2] += t->cell[k][c2];
        }
        fprintf(out, " %8llu\n", (unsigned long long)t->ro_changed[k]);
        ro += t->ro_changed[k];
    }
    fprintf(out, "%-20s %7llu", "all", (unsigned long long)row_sum(tot));
    for (int c2 = 0; c2 < CRASH_DMG_CLASSES; c2++)
        fprintf(out, " %7llu", (unsigned long long)tot[c2]);
    fprintf(out, " %8llu\n", (unsigned long long)ro);
    for (int v = 0; v < 2; v++) {
        fprintf(out, "%-20s %7llu", state_name[v], (unsigned long long)row_sum(t->state_cell[v]));
        for (int c2 = 0; c2 < CRASH_DMG_CLASSES; c2++)
            fprintf(out, " %7llu", (unsigned long long)t->state_cell[v][c2]);
        fprintf(out, "\n");
    }
    fprintf(out, "\n%-20s %7s", "file kind", "rounds");
    for (int k = 0; k < CRASH_DMG_CLASSES; k++)
        fprintf(out, " %7s", class_short[k]);
    fprintf(out, "  wrong answers by damage\n");
    for (size_t i = 0; i < t->nfile_kinds; i++) {
        uint64_t row[CRASH_DMG_CLASSES];
        fk_row(t, i, row);
        fprintf(out, "%-20s %7llu", t->file_kind[i].name, (unsigned long long)row_sum(row));
        for (int c2 = 0; c2 < CRASH_DMG_CLASSES; c2++)
            fprintf(out, " %7llu", (unsigned long long)row[c2]);
        fprintf(out, " ");
        for (int k = 0; k < CRASH_DMG_KINDS; k++)
            if (t->file_kind[i].cell[k][CRASH_DMG_WRONG])
                fprintf(out, " %s %llu", kind_key[k],
                        (unsigned long long)t->file_kind[i].cell[k][CRASH_DMG_WRONG]);
        fprintf(out, "\n");
    }
    bool any = false;
    for (int k = 0; k < CRASH_DMG_KINDS; k++)
        if (t->first_example[k]) {
            if (!any)
                fprintf(out, "\nfirst wrong answer or crash per damage kind (replay with --at):\n");
            any = true;
            fprintf(out, "  %s, round %llu: %s\n", kind_name[k],
                    (unsigned long long)t->first_example[k], t->example[k]);
        }
}

static void md_escape(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            fputs("\\|", out);
        else
            fputc(*s, out);
    }
}

static kv_status write_md(const char *path, const crash_config *c, const crash_damage_table *t)
{
    FILE *out = fopen(path, "w");
    if (!out)
        return kv_error(KV_IO, "crash: cannot write %s: %s", path, strerror(errno));
    const char *name = c->engine_vt ? c->engine_vt->name : c->engine;
    fprintf(out, "# Damaged files: %s\n\n", name);
    header(out, c, t, true);
    fprintf(out, "\n| damage | rounds |");
    for (int k = 0; k < CRASH_DMG_CLASSES; k++)
        fprintf(out, " %s |", class_name[k]);
    fprintf(out, " read-only open wrote |\n|---|---:|");
    for (int k = 0; k <= CRASH_DMG_CLASSES; k++)
        fprintf(out, "---:|");
    fprintf(out, "\n");
    uint64_t tot[CRASH_DMG_CLASSES] = {0}, ro = 0;
    for (int k = 0; k < CRASH_DMG_KINDS; k++) {
        fprintf(out, "| %s | %llu |", kind_name[k], (unsigned long long)row_sum(t->cell[k]));
        for (int c2 = 0; c2 < CRASH_DMG_CLASSES; c2++) {
            fprintf(out, " %llu |", (unsigned long long)t->cell[k][c2]);
            tot[c2] += t->cell[k][c2];
        }
        fprintf(out, " %llu |\n", (unsigned long long)t->ro_changed[k]);
        ro += t->ro_changed[k];
    }
    fprintf(out, "| **all** | **%llu** |", (unsigned long long)row_sum(tot));
    for (int c2 = 0; c2 < CRASH_DMG_CLASSES; c2++)
        fprintf(out, " **%llu** |", (unsigned long long)tot[c2]);
    fprintf(out, " **%llu** |\n", (unsigned long long)ro);
    for (int v = 0; v < 2; v++) {
        fprintf(out, "| *%s* | %llu |", state_name[v],
                (unsigned long long)row_sum(t->state_cell[v]));
        for (int c2 = 0; c2 < CRASH_DMG_CLASSES; c2++)
            fprintf(out, " %llu |", (unsigned long long)t->state_cell[v][c2]);
        fprintf(out, " |\n");
    }
    fprintf(out, "\nBy file kind (digits in names shown as `#`):\n\n| file kind | rounds |");
    for (int k = 0; k < CRASH_DMG_CLASSES; k++)
        fprintf(out, " %s |", class_name[k]);
    fprintf(out, " wrong answers by damage |\n|---|---:|");
    for (int k = 0; k < CRASH_DMG_CLASSES; k++)
        fprintf(out, "---:|");
    fprintf(out, "---|\n");
    for (size_t i = 0; i < t->nfile_kinds; i++) {
        uint64_t row[CRASH_DMG_CLASSES];
        fk_row(t, i, row);
        fprintf(out, "| `%s` | %llu |", t->file_kind[i].name, (unsigned long long)row_sum(row));
        for (int c2 = 0; c2 < CRASH_DMG_CLASSES; c2++)
            fprintf(out, " %llu |", (unsigned long long)row[c2]);
        bool any = false;
        for (int k = 0; k < CRASH_DMG_KINDS; k++)
            if (t->file_kind[i].cell[k][CRASH_DMG_WRONG]) {
                fprintf(out, "%s %s %llu", any ? "," : "", kind_key[k],
                        (unsigned long long)t->file_kind[i].cell[k][CRASH_DMG_WRONG]);
                any = true;
            }
        fprintf(out, " |\n");
    }
    bool any = false;
    for (int k = 0; k < CRASH_DMG_KINDS; k++)
        if (t->first_example[k]) {
            if (!any)
                fprintf(out, "\nFirst wrong answer or crash per damage kind (replay a round with "
                             "the same flags and `--at N -v`):\n\n");
            any = true;
            fprintf(out, "- %s, round %llu: ", kind_name[k],
                    (unsigned long long)t->first_example[k]);
            md_escape(out, t->example[k]);
            fprintf(out, "\n");
        }
    if (t->nbad) {
        fprintf(out, "\nEvery round with a silent wrong answer or a crash (%zu):\n\n", t->nbad);
        for (size_t i = 0; i < t->nbad; i++) {
            fprintf(out, "- ");
            md_escape(out, t->bad[i]);
            fprintf(out, "\n");
        }
    }
    if (fclose(out) != 0)
        return kv_error(KV_IO, "crash: cannot write %s: %s", path, strerror(errno));
    return KV_OK;
}

static kv_status write_csv(const char *path, const crash_damage_table *t)
{
    FILE *out = fopen(path, "w");
    if (!out)
        return kv_error(KV_IO, "crash: cannot write %s: %s", path, strerror(errno));
    fprintf(out, "table,damage,file_kind,rounds");
    for (int k = 0; k < CRASH_DMG_CLASSES; k++)
        fprintf(out, ",%s", class_key[k]);
    fprintf(out, ",ro_changed,wrong_check_ok\n");
    for (int k = 0; k < CRASH_DMG_KINDS; k++) {
        fprintf(out, "kind,%s,all,%llu", kind_key[k], (unsigned long long)row_sum(t->cell[k]));
        for (int c2 = 0; c2 < CRASH_DMG_CLASSES; c2++)
            fprintf(out, ",%llu", (unsigned long long)t->cell[k][c2]);
        fprintf(out, ",%llu,%llu\n", (unsigned long long)t->ro_changed[k],
                (unsigned long long)t->wrong_check_ok[k]);
    }
    for (size_t i = 0; i < t->nfile_kinds; i++)
        for (int k = 0; k < CRASH_DMG_KINDS; k++) {
            const uint64_t *row = t->file_kind[i].cell[k];
            if (!row_sum(row))
                continue;
            fprintf(out, "file,%s,%s,%llu", kind_key[k], t->file_kind[i].name,
                    (unsigned long long)row_sum(row));
            for (int c2 = 0; c2 < CRASH_DMG_CLASSES; c2++)
                fprintf(out, ",%llu", (unsigned long long)row[c2]);
            fprintf(out, ",,\n");
        }
    if (fclose(out) != 0)
        return kv_error(KV_IO, "crash: cannot write %s: %s", path, strerror(errno));
    return KV_OK;
}

kv_status crash_damage_write(const char *dir, const crash_config *c, const crash_damage_table *t)
{
    if (crash_mkdir_p(dir) != 0)
        return kv_error(KV_IO, "crash: cannot make %s: %s", dir, strerror(errno));
    const char *name = c->engine_vt ? c->engine_vt->name : c->engine;
    char *md = crash_strf("%s/damage-%s.md", dir, name);
    char *csv = crash_strf("%s/damage-%s.csv", dir, name);
    kv_status s = write_md(md, c, t);
    if (s == KV_OK)
        s = write_csv(csv, t);
    free(md);
    free(csv);
    return s;
}
