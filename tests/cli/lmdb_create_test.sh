#!/bin/sh
# LMDB creates its data file durably: a power cut at any file-system operation of a short sync
# workload (crashfs through FUSE, the torn policy, seeds that used to hit the window in which
# data.mdb existed with unsynced meta pages) leaves a database that opens and keeps every
# acknowledged commit. Skipped (77) without the lmdb peer or without FUSE.
# Usage: lmdb_create_test.sh KVLAB WORKDIR
set -u
K=$1
W=$2
rm -rf "$W" && mkdir -p "$W" || exit 1
trap 'rm -rf "$W"' EXIT
"$K" engines --names | grep -qx lmdb || { echo "SKIP: no lmdb peer"; exit 77; }
for seed in 1 4 6 8 9 10; do
    for policy in torn random; do
        "$K" crash --engine lmdb --durability sync --ops 30 --value-size 100 --seed $seed \
            --policy $policy --fs fuse --points all >"$W/log" 2>&1
        rc=$?
        [ $rc -eq 3 ] && grep -qi fuse "$W/log" && { echo "SKIP: FUSE not available"; exit 77; }
        if [ $rc -ne 0 ]; then
            echo "FAIL: seed $seed policy $policy exited $rc:"
            cat "$W/log"
            exit 1
        fi
    done
done
echo "ok"
