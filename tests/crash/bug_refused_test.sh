#!/bin/sh
# -o bug=NAME without --allow-bugs is refused with a message and exit 2 (docs/lab.md): by
# `kvlab crash` itself, and by the library for every other command (kv_open wants
# kv_options.allow_bugs, which only `kvlab crash --allow-bugs` sets).
#   bug_refused_test.sh KVLAB WORKDIR
set -u
kvlab=$1 work=$2
rm -rf "$work"
mkdir -p "$work"
fail=0

expect() { # expect WANT_RC PATTERN CMD...
    want=$1 pat=$2
    shift 2
    "$@" >"$work/out" 2>&1
    rc=$?
    if [ "$rc" -ne "$want" ] || ! grep -q -- "$pat" "$work/out"; then
        cat "$work/out"
        echo "FAIL: $* (exit $rc, want $want and '$pat')"
        fail=1
    fi
}

expect 2 "add --allow-bugs" "$kvlab" crash --engine wal -o bug=no_dir_fsync --points 5
expect 2 "kv_options.allow_bugs" "$kvlab" put --engine wal --dir "$work/db" -o bug=no_dir_fsync k v
expect 2 "kv_options.allow_bugs" "$kvlab" put --engine lsm --dir "$work/db2" -o bug=wal_no_fsync k v
# Nothing was created by the refused opens.
[ ! -e "$work/db" ] || { echo "FAIL: a refused open created $work/db"; fail=1; }
# With --allow-bugs: a bug the engine does not have is refused, naming the ones it has.
expect 2 "has no such bug" "$kvlab" crash --allow-bugs --engine bitcask -o bug=nope --points 5
# The warning line.
expect 0 "warning: --allow-bugs" "$kvlab" crash --allow-bugs --engine wal --points 5
exit $fail
