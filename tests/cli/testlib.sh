# testlib.sh: what the command-line tests share. Sourced by a test after it has set K (the
# kvlab executable) and moved into its work directory.
failures=0

# fail TEXT: records a failure and prints it; the test exits 1 at the end when any was made.
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# expect CODE CMD...: runs CMD with stdout in out, stderr in err; checks the exit code.
expect() {
    want=$1
    shift
    "$@" >out 2>err </dev/null
    rc=$?
    [ "$rc" -eq "$want" ] || fail "$* -> exit $rc, want $want; stderr: $(cat err)"
}

# has ENGINE: whether this kvlab was built with it.
has() {
    "$K" engines --names | grep -qx "$1"
}
