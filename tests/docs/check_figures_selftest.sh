#!/bin/sh
# check_figures_selftest.sh: checks that check_figures.sh passes selftest/figures/pass.md and
# fails each selftest/figures/fail_*.md (a wrong ratio, a wrong value, a wrong rounding, a
# missing file, row or column, a filter matching two rows, a marker with no number before it,
# a malformed marker), naming the file and line.
set -u
here=$(cd "$(dirname "$0")" && pwd)
dir=$here/selftest/figures
bad=0
out=$(sh "$here/check_figures.sh" "$dir" "$dir/pass.md" 2>&1)
if [ $? -ne 0 ]; then
    echo "FAIL: pass.md should pass:"; printf '%s\n' "$out"; bad=1
fi
case $out in *"13 figures checked, 0 failed"*) ;; *) echo "FAIL: pass.md should check 13 figures:"; printf '%s\n' "$out"; bad=1 ;; esac
for f in "$dir"/fail_*.md; do
    out=$(sh "$here/check_figures.sh" "$dir" "$f" 2>&1)
    st=$?
    first=$(printf '%s\n' "$out" | head -1)
    if [ $st -ne 1 ]; then
        echo "FAIL: $(basename "$f") should fail with status 1, got $st:"; printf '%s\n' "$out"; bad=1
    else
        case $first in
        "$f:1: "*) printf 'ok: %s fails: %s\n' "$(basename "$f")" "${first#"$dir"/}" ;;
        *) echo "FAIL: $(basename "$f") should name its file and line:"; printf '%s\n' "$out"; bad=1 ;;
        esac
    fi
done
[ $bad -eq 0 ] && echo "figure checker self-test passed"
exit $bad
