#!/bin/sh
# selftest.sh KVLAB: checks that run_docs.sh passes selftest/pass.md and fails each
# selftest/fail_*.md (a wrong line, a missing or wrong exit status, an extra line, a wildcard
# or '...' that must not match, a failing later block, an unterminated block, an unknown tag).
set -u
here=$(cd "$(dirname "$0")" && pwd)
kvlab=$1
bad=0
out=$(sh "$here/run_docs.sh" "$kvlab" "$here/selftest/pass.md" 2>&1)
if [ $? -ne 0 ]; then
    echo "FAIL: pass.md should pass:"; printf '%s\n' "$out"; bad=1
fi
case $out in *"2 skipped"*) ;; *) echo "FAIL: pass.md should skip 2 blocks:"; printf '%s\n' "$out"; bad=1 ;; esac
for f in "$here"/selftest/fail_*.md; do
    out=$(sh "$here/run_docs.sh" "$kvlab" "$f" 2>&1)
    st=$?
    if [ $st -ne 1 ]; then
        echo "FAIL: $(basename "$f") should fail with status 1, got $st:"; printf '%s\n' "$out"; bad=1
    else
        printf 'ok: %s fails: %s\n' "$(basename "$f")" "$(printf '%s\n' "$out" | grep -m1 -E 'FAIL|unterminated|unknown')"
    fi
done
[ $bad -eq 0 ] && echo "runner self-test passed"
exit $bad
