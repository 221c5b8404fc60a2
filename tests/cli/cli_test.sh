#!/bin/sh
# kvlab's subcommands and exit codes. Usage: cli_test.sh KVLAB WORKDIR
# Uses lmdb when it is built, else the first registered engine; without any engine only the
# usage paths are tested (and a note says so).
set -u
K=$1
W=$2
rm -rf "$W" && mkdir -p "$W" || exit 1
cd "$W" || exit 1
. "$(dirname "$0")/testlib.sh"

# one_line_error TEXT: stderr is exactly one line, equal to TEXT when TEXT is not empty.
one_line_error() {
    [ "$(wc -l <err)" -eq 1 ] || fail "stderr is not one line: $(cat err)"
    [ -z "$1" ] || [ "$(cat err)" = "$1" ] || fail "stderr '$(cat err)', want '$1'"
}

# Top level.
expect 0 "$K" --help
grep -q "exit codes" out || fail "kvlab --help lacks the exit codes"
expect 2 "$K"
expect 2 "$K" nosuchcommand
one_line_error "kvlab: unknown command 'nosuchcommand' (see kvlab --help)"
expect 2 "$K" --foo
one_line_error ""
for c in put get del scan load stats check dump compact engines bench; do
    expect 0 "$K" "$c" --help
    grep -q "^usage: kvlab $c" out || fail "kvlab $c --help has no usage line"
    expect 2 "$K" "$c" --no-such-flag
    one_line_error "kvlab: unknown flag --no-such-flag (see kvlab $c --help)"
done
expect 0 "$K" help put
grep -q "^usage: kvlab put" out || fail "kvlab help put"
expect 0 "$K" engines
grep -q "^null (kvlab bench only)" out || fail "kvlab engines does not list null"
expect 0 "$K" engines --names
engine=""
grep -qx lmdb out && engine=lmdb
[ -n "$engine" ] || engine=$(head -n 1 out)
expect 2 "$K" engines nosuchengine
one_line_error "kvlab: unknown engine 'nosuchengine' (see kvlab engines --help)"

# Usage errors that need no engine.
expect 2 "$K" get --dir db k
one_line_error "kvlab: get needs --engine (see kvlab get --help)"
expect 2 "$K" get --engine nosuch --dir db k
one_line_error ""
expect 2 "$K" bench --threads 0
one_line_error "kvlab: --threads: 0 is outside [1, 1024] (see kvlab bench --help)"
expect 2 "$K" bench --num lots
one_line_error ""
expect 2 "$K" bench --workloads fillseq,nope
one_line_error ""
expect 2 "$K" bench --durability os,eventually
one_line_error ""

if [ -z "$engine" ]; then
    echo "note: no engine is built in; the data commands were not tested"
else
    E="--engine $engine --dir db"
    expect 0 "$K" put $E k v
    expect 0 "$K" get $E k
    [ "$(cat out)" = "v" ] || fail "get printed '$(cat out)', want 'v'"
    [ "$(wc -c <out)" -eq 1 ] || fail "get added bytes to the value when stdout is no tty"
    expect 1 "$K" get $E missing
    one_line_error "kvlab: get: key not found"
    # Values from stdin: '-' and an omitted value.
    printf 'line 1\nline 2\n' | "$K" put $E k2 - || fail "put from stdin (-)"
    printf 'x\ty' | "$K" put $E k3 || fail "put from stdin (omitted)"
    expect 0 "$K" get $E k2
    [ "$(cat out)" = "$(printf 'line 1\nline 2')" ] || fail "stdin value: '$(cat out)'"
    expect 0 "$K" get $E --hex 6b33
    [ "$(cat out)" = "780979" ] || fail "get --hex printed '$(cat out)'"
    expect 0 "$K" put $E --hex 6b34 00ff
    expect 0 "$K" get $E 6b34 --hex
    [ "$(cat out)" = "00ff" ] || fail "put --hex then get --hex printed '$(cat out)'"
    expect 0 "$K" scan $E
    [ "$(wc -l <out)" -eq 4 ] || fail "scan printed $(wc -l <out) lines, want 4"
    [ "$(sed -n 3p out)" = "$(printf 'k3\tx\\x09y')" ] || fail "scan escaping: $(sed -n 3p out)"
    expect 0 "$K" scan $E --from k2 --to k4 --keys-only
    [ "$(cat out | tr '\n' ' ')" = "k2 k3 " ] || fail "scan range: $(cat out)"
    expect 0 "$K" scan $E --limit 1
    [ "$(wc -l <out)" -eq 1 ] || fail "scan --limit 1"
    expect 2 "$K" scan $E --limit many
    one_line_error ""
    expect 0 "$K" del $E k
    expect 1 "$K" get $E k
    expect 0 "$K" del $E never-existed
    expect 0 "$K" stats $E
    grep -q "disk_bytes" out || fail "stats has no disk_bytes line"
    expect 0 "$K" check $E
    [ "$(cat out)" = "ok" ] || fail "check printed '$(cat out)'"
    expect 0 "$K" dump $E
    [ -s out ] || fail "dump printed nothing"
    expect 0 "$K" put $E --durability sync k5 v5
    expect 2 "$K" put $E --durability bogus k v
    one_line_error ""
    expect 2 "$K" put $E -o no_such_option=1 k v
    one_line_error ""
    expect 2 "$K" put $E
    one_line_error "kvlab: put needs a KEY (see kvlab put --help)"
    expect 2 "$K" get $E a b
    one_line_error "kvlab: unexpected argument 'b' (see kvlab get --help)"
    # A missing database is "not found" and is not created; a file in place of the directory is
    # an I/O error.
    expect 1 "$K" get --engine "$engine" --dir no-such-db k
    one_line_error ""
    [ ! -e no-such-db ] || fail "get created the missing database directory"
    echo "not a directory" >afile
    expect 3 "$K" put --engine "$engine" --dir afile k v
    one_line_error ""
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "all passed (engine: ${engine:-none})"
