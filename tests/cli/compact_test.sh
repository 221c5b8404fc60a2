#!/bin/sh
# kvlab compact on every engine of this build: bitcask merge, wal checkpoint + truncation, lsm
# full compaction, btree checkpoint; peers and bad usage exit 2, a missing database exits 3.
# After each step the data must read back as written (a deleted key stays deleted, after a
# reopen too), kv_check must pass, and the directory must have changed the way the step says.
# Usage: compact_test.sh KVLAB WORKDIR
set -u
K=$1
W=$2
rm -rf "$W" && mkdir -p "$W" || exit 1
cd "$W" || exit 1
. "$(dirname "$0")/testlib.sh"
count() { # count DIR SUFFIX: files of DIR ending in SUFFIX
    ls "$1" | grep -c "$2\$"
}
# fill ENGINE DIR [FLAGS...]: five sessions (so that engines that start a file per open have
# several): apple written twice, banana deleted, cherry kept.
fill() {
    e=$1
    d=$2
    shift 2
    expect 0 "$K" put -e "$e" -d "$d" "$@" apple red
    expect 0 "$K" put -e "$e" -d "$d" "$@" banana yellow
    expect 0 "$K" put -e "$e" -d "$d" "$@" apple green
    expect 0 "$K" put -e "$e" -d "$d" "$@" cherry dark-red
    expect 0 "$K" del -e "$e" -d "$d" "$@" banana
}
# same ENGINE DIR: the data is what fill wrote, and check passes.
same() {
    expect 0 "$K" get -e "$1" -d "$2" apple
    [ "$(cat out)" = green ] || fail "$1: apple is '$(cat out)' after compact, want green"
    expect 0 "$K" get -e "$1" -d "$2" cherry
    [ "$(cat out)" = dark-red ] || fail "$1: cherry is '$(cat out)' after compact"
    expect 1 "$K" get -e "$1" -d "$2" banana
    expect 0 "$K" scan -e "$1" -d "$2" --keys-only
    [ "$(tr '\n' ' ' <out)" = "apple cherry " ] || fail "$1: scan after compact: $(cat out)"
    expect 0 "$K" check -e "$1" -d "$2"
}

expect 0 "$K" compact --help
grep -q "^usage: kvlab compact" out || fail "compact --help has no usage line"
expect 2 "$K" compact -d db
[ "$(cat err)" = "kvlab: compact needs --engine (see kvlab compact --help)" ] ||
    fail "compact without --engine: $(cat err)"
expect 2 "$K" compact -e nosuchengine -d db
expect 2 "$K" compact -e "$("$K" engines --names | head -n 1)"
[ "$(wc -l <err)" -eq 1 ] || fail "compact without --dir: $(cat err)"
tested=""

if has bitcask; then
    # no background merge: the files stay as the commands made them until compact
    M="-o merge=manual"
    fill bitcask bc $M
    data_before=$(count bc .data)
    [ "$data_before" -ge 3 ] || fail "bitcask: $data_before data files before the merge"
    expect 0 "$K" compact -e bitcask -d bc $M
    grep -q "^bitcask merge" out || fail "bitcask: no merge line: $(cat out)"
    grep -q "^  [~ ] MANIFEST " out || fail "bitcask: MANIFEST is not listed"
    grep -q "^  - .*\.data .*-> deleted" out || fail "bitcask: no data file deleted"
    grep -q "^total: .* -> " out || fail "bitcask: no total line"
    [ -f bc/MANIFEST ] || fail "bitcask: no MANIFEST after compact"
    [ "$(count bc .data)" -lt "$data_before" ] || fail "bitcask: merge left $(count bc .data) data files"
    [ "$(count bc .hint)" -ge 1 ] || fail "bitcask: merge wrote no hint file"
    same bitcask bc
    tested="$tested bitcask"
fi

if has wal; then
    fill wal wl
    first=$(ls wl | grep '\.wal$' | head -n 1)
    expect 0 "$K" compact -e wal -d wl
    grep -q "^wal checkpoint" out || fail "wal: no checkpoint line: $(cat out)"
    grep -q "^  + SNAPSHOT " out || fail "wal: SNAPSHOT not listed as new: $(cat out)"
    grep -q "^  - $first .*-> deleted" out || fail "wal: the first segment $first was not deleted"
    [ -f wl/SNAPSHOT ] || fail "wal: no SNAPSHOT"
    [ ! -e "wl/$first" ] || fail "wal: $first still exists after the checkpoint"
    same wal wl
    tested="$tested wal"
fi

if has lsm; then
    # no background compaction at 4 level-0 tables: the tables stay as the commands made them
    T="-o l0_compaction_trigger=8"
    fill lsm ls $T
    [ "$(count ls .sst)" -ge 3 ] || fail "lsm: $(count ls .sst) tables before compact, want >= 3"
    expect 0 "$K" compact -e lsm -d ls $T
    grep -q "^lsm full compaction" out || fail "lsm: no compaction line: $(cat out)"
    grep -q "^tables per level: L0=[3-9] -> L1=1\$" out ||
        fail "lsm: levels line: $(grep '^tables per level' out)"
    [ "$(count ls .sst)" -eq 1 ] || fail "lsm: $(count ls .sst) tables after compact, want 1"
    same lsm ls
    expect 0 "$K" stats -e lsm -d ls
    grep -q "live_keys_estimate  *2 " out || fail "lsm: tombstone or old versions kept: $(grep live_keys out)"
    tested="$tested lsm"
fi

if has btree; then
    fill btree bt
    expect 0 "$K" compact -e btree -d bt
    grep -q "^btree checkpoint" out || fail "btree: no checkpoint line: $(cat out)"
    grep -q "^written by the step: [0-9]* bytes" out || fail "btree: no written line: $(cat out)"
    grep -q "btree.db" out || fail "btree: btree.db not listed"
    same btree bt
    tested="$tested btree"
fi

for peer in leveldb rocksdb lmdb sqlite; do
    has "$peer" || continue
    expect 0 "$K" put -e "$peer" -d "p-$peer" k v
    expect 2 "$K" compact -e "$peer" -d "p-$peer"
    [ "$(wc -l <err)" -eq 1 ] || fail "$peer: error is not one line: $(cat err)"
    grep -q "not supported" err || fail "$peer: error does not say not supported: $(cat err)"
    [ ! -s out ] || fail "$peer: compact printed on stdout: $(cat out)"
    tested="$tested $peer"
done

# A missing database is a data error, and compact never creates it.
eng=$("$K" engines --names | head -n 1)
if [ -n "$eng" ]; then
    expect 3 "$K" compact -e "$eng" -d no-such-db
    [ ! -e no-such-db ] || fail "compact created the missing directory"
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "all passed (engines:${tested:- none})"
