#!/bin/sh
# kvlab load end to end: KEY<TAB>VALUE lines from stdin then get and scan; --num generated
# records (kvlab bench's keys); a malformed line (exit 3, its line number named, every record
# before it kept, none after); an empty input; usage errors (exit 2); the progress line only
# on a terminal. Usage: load_test.sh KVLAB WORKDIR
set -u
K=$1
W=$2
rm -rf "$W" && mkdir -p "$W" || exit 1
trap 'rm -rf "$W"' EXIT
cd "$W" || exit 1
fail() {
    echo "FAIL: $*"
    exit 1
}
for engine in lsm bitcask btree wal; do
    E="--engine $engine --dir db-$engine"
    # stdin: the first TAB splits; empty lines are skipped; an empty value is a value.
    printf 'apple\tred\nbanana\tyel\tlow\n\ncherry\t\n' | "$K" load $E 2>err ||
        fail "$engine: load exited $?: $(cat err)"
    [ ! -s err ] || fail "$engine: load wrote to stderr off a terminal: $(cat err)"
    [ "$("$K" get $E banana)" = "$(printf 'yel\tlow')" ] || fail "$engine: get banana"
    printf 'apple\tred\nbanana\tyel\\x09low\ncherry\t\n' >want
    "$K" scan $E >got || fail "$engine: scan exited $?"
    cmp -s want got || fail "$engine: scan after load: $(cat got)"
    # A malformed line: exit 3 naming line 3; lines 1-2 committed, line 4 not.
    printf 'd1\tone\nd2\ttwo\nno tab here\nd4\tfour\n' | "$K" load $E 2>err
    rc=$?
    [ $rc -eq 3 ] || fail "$engine: a bad line exited $rc"
    grep -q "line 3: no TAB" err || fail "$engine: the error does not name line 3: $(cat err)"
    [ "$("$K" get $E d2)" = "two" ] || fail "$engine: the record before the bad line was lost"
    "$K" get $E d4 >/dev/null 2>&1
    [ $? -eq 1 ] || fail "$engine: the record after the bad line was written"
    # An empty input commits nothing and succeeds.
    "$K" load $E </dev/null || fail "$engine: an empty input exited $?"
    [ "$("$K" scan $E -k | wc -l)" -eq 5 ] || fail "$engine: records after the empty load"
    # --num: kvlab bench's keys, in one open.
    "$K" load --engine $engine --dir num-$engine --num 3000 --value-size 40 ||
        fail "$engine: load --num exited $?"
    [ "$("$K" scan --engine $engine --dir num-$engine -k | wc -l)" -eq 3000 ] ||
        fail "$engine: --num 3000 did not make 3000 records"
    [ "$("$K" scan --engine $engine --dir num-$engine -k -n 1)" = "0000000000000000" ] ||
        fail "$engine: the first generated key"
    [ "$("$K" get --engine $engine --dir num-$engine 0000000000002999 | wc -c)" -eq 40 ] ||
        fail "$engine: a generated value is not --value-size bytes"
    "$K" check --engine $engine --dir num-$engine >/dev/null || fail "$engine: check after load"
done
# --hex, and hex that is not hex.
printf '61\t\n62\t6263\n' | "$K" load -x -e lsm -d hex || fail "load --hex exited $?"
[ "$("$K" get -e lsm -d hex b)" = "bc" ] || fail "load --hex value"
printf '6\tzz\n' | "$K" load -x -e lsm -d hex 2>err
[ $? -eq 3 ] && grep -q "line 1: the key is not hex" err || fail "bad hex: $(cat err)"
# Usage errors.
for args in "--num 10 --hex" "--value-size 10" "--num x" "extra" "--dir d" "--engine nosuch --dir d"; do
    "$K" load -e lsm -d u $args </dev/null >/dev/null 2>&1
    rc=$?
    case "$args" in --dir*) "$K" load $args </dev/null >/dev/null 2>&1; rc=$? ;; esac
    [ $rc -eq 2 ] || fail "load $args exited $rc, want 2"
done
"$K" load --help | grep -q "^usage: kvlab load" || fail "load --help"
# A key over the engine's limit (lmdb: 511 bytes) names its line.
if "$K" engines --names | grep -qx lmdb; then
    k=$(head -c 600 /dev/zero | tr '\0' k)
    printf 'a\t1\n%s\t2\n' "$k" | "$K" load -e lmdb -d lm 2>err
    [ $? -eq 3 ] && grep -q "line 2: the key is longer" err || fail "long key: $(cat err)"
    [ "$("$K" get -e lmdb -d lm a)" = "1" ] || fail "the record before the long key was lost"
fi
# The progress line goes to stderr on a terminal only (script(1) makes a pty).
if command -v script >/dev/null 2>&1; then
    script -qec "'$K' load -e lsm -d db-tty --num 2000" /dev/null </dev/null >tty ||
        fail "load on a pty exited $?"
    grep -q "load: 2000 records" tty || fail "no progress line on a terminal: $(cat tty)"
fi
echo "ok"
