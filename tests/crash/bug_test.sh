#!/bin/sh
# The crash checker's mutation test, one deliberate bug (docs/lab.md) per run:
#   bug_test.sh KVLAB ENGINE BUG
# `kvlab crash --allow-bugs -o bug=BUG --engine ENGINE --points 300` must report a violation
# (exit 1), and the same run without the bug none (exit 0). A checker that passes the broken
# engine would be checking nothing.
set -u
kvlab=$1 engine=$2 bug=$3
out=$(mktemp)
trap 'rm -f "$out"' EXIT

"$kvlab" crash --allow-bugs -o bug="$bug" --engine "$engine" --points 300 >"$out" 2>&1
rc=$?
if [ "$rc" -ne 1 ] || ! grep -q '^first violation' "$out"; then
    cat "$out"
    echo "FAIL: $engine bug=$bug: the checker found no violation (exit $rc, want 1)"
    exit 1
fi
grep '^first violation' "$out"

"$kvlab" crash --allow-bugs --engine "$engine" --points 300 >"$out" 2>&1
rc=$?
if [ "$rc" -ne 0 ]; then
    cat "$out"
    echo "FAIL: $engine without a bug: exit $rc, want 0 (no violation)"
    exit 1
fi
echo "ok: $engine bug=$bug caught; without it no violation"
