#!/bin/sh
# pictures.sh: draws the pictures of docs/img/ from small databases built with the steps of
# docs/tutorial.md (the section each one follows is named below), one per engine chapter:
#
#   btree-split  tutorial 3.1 and 3.2: twelve keys, then a thirteenth that splits the root
#   btree-free   tutorial 3.3: four deletes merge the leaves back; two pages go on the free list
#   lsm          tutorial 5.4: four puts and a delete (four level-0 tables and the memtable), the
#                full compaction, then two more puts
#   bitcask      tutorial 4: four sessions (a put twice, a delete): dead bytes and hint files
#   wal          tutorial 2.4: twelve puts and a delete in 4 KiB segments, the checkpoint, then
#                twelve more puts (a second segment after the snapshot)
#
# Each is written as NAME.dot (`kvlab dump --format dot`) and, when Graphviz's `dot` is installed,
# NAME.svg (`dot -Tsvg`). The .dot files depend only on the steps (no paths, times or random
# ids), so tests/docs/pictures_test.sh can check that the committed ones are still what kvlab
# draws. Regenerate after changing a picture walk or an engine's layout:
#
#   sh docs/pictures.sh build/bench/kvlab docs/img
#
# Usage: pictures.sh KVLAB OUTDIR. Scratch databases go to a directory made under OUTDIR and
# removed at the end. Exit 0, or 1 when a step fails (its output is shown).
set -u
if [ $# -ne 2 ]; then
    echo "usage: pictures.sh KVLAB OUTDIR" >&2
    exit 2
fi
K=$1
OUT=$2
mkdir -p "$OUT" || exit 1
W=$(mktemp -d "$OUT/pictures-work.XXXXXX") || exit 1
trap 'rm -rf "$W"' EXIT
export LC_ALL=C TZ=UTC

run() { # run CMD...: the command must succeed; its output is dropped
    if ! out=$("$@" 2>&1 </dev/null); then
        echo "pictures.sh: failed: $*" >&2
        echo "$out" >&2
        exit 1
    fi
}
draw() { # draw NAME ENGINE DIR [FLAGS...]
    name=$1
    e=$2
    d=$3
    shift 3
    "$K" dump -e "$e" -d "$d" "$@" --format dot >"$OUT/$name.dot" || {
        echo "pictures.sh: kvlab dump --format dot failed for $name" >&2
        exit 1
    }
    if command -v dot >/dev/null 2>&1; then
        dot -Tsvg "$OUT/$name.dot" >"$OUT/$name.svg" || {
            echo "pictures.sh: dot -Tsvg failed for $name" >&2
            exit 1
        }
    fi
}
v() { # a value of N zero-padded digits ending in $2
    printf "%0${1}d" "$2"
}

# btree (tutorial 3.1 to 3.3)
d=$W/btree
for i in $(seq 10 21); do run "$K" put -e btree -d "$d" "key$i" "$(v 300 "$i")"; done
run "$K" put -e btree -d "$d" key22 "$(v 300 22)"
draw btree-split btree "$d"
for i in 22 21 20 19; do run "$K" del -e btree -d "$d" "key$i"; done
draw btree-free btree "$d"

# lsm (tutorial 5.4)
d=$W/lsm
o="-o l0_compaction_trigger=8"
run "$K" put -e lsm -d "$d" $o apple red
run "$K" put -e lsm -d "$d" $o banana yellow
run "$K" put -e lsm -d "$d" $o cherry dark-red
run "$K" put -e lsm -d "$d" $o apple green
run "$K" del -e lsm -d "$d" $o banana
run "$K" compact -e lsm -d "$d" $o
run "$K" put -e lsm -d "$d" $o date brown
run "$K" put -e lsm -d "$d" $o elderberry purple
draw lsm lsm "$d" $o

# bitcask (tutorial 4)
d=$W/bitcask
o="-o merge=manual"
run "$K" put -e bitcask -d "$d" $o apple red
run "$K" put -e bitcask -d "$d" $o banana yellow
run "$K" put -e bitcask -d "$d" $o apple green
run "$K" del -e bitcask -d "$d" $o banana
draw bitcask bitcask "$d" $o

# wal (tutorial 2.4)
d=$W/wal
o="-o segment_size=4K"
for i in $(seq 10 21); do run "$K" put -e wal -d "$d" $o "key$i" "$(v 400 "$i")"; done
run "$K" del -e wal -d "$d" $o key10
run "$K" compact -e wal -d "$d" $o
for i in $(seq 22 33); do run "$K" put -e wal -d "$d" $o "key$i" "$(v 400 "$i")"; done
draw wal wal "$d" $o
exit 0
