#!/bin/sh
# kvlab get ends its output with a newline only when stdout is a terminal; through a pipe it
# writes the value's bytes exactly; --raw never adds the newline, on a terminal or after --hex.
# The terminal is a pseudo-terminal made by script(1) (util-linux); skipped (77) without it.
# Usage: get_tty_test.sh KVLAB WORKDIR
set -u
K=$1
W=$2
command -v script >/dev/null 2>&1 || { echo "SKIP: no script(1)"; exit 77; }
rm -rf "$W" && mkdir -p "$W" || exit 1
trap 'rm -rf "$W"' EXIT
cd "$W" || exit 1
fail() {
    echo "FAIL: $*"
    exit 1
}
E="--engine lsm --dir db"
"$K" put $E k v || fail "put exited $?"
# On a pty the line discipline turns "\n" into "\r\n".
"$K" get $E k >out || fail "get exited $?"
[ "$(od -An -c out | tr -d ' ')" = "v" ] || fail "get through a file: $(od -An -c out)"
script -qec "'$K' get $E k" /dev/null </dev/null >tty || fail "get on a pty exited $?"
[ "$(od -An -c tty | tr -d ' ')" = 'v\r\n' ] || fail "get on a pty: $(od -An -c tty)"
script -qec "'$K' get --raw $E k" /dev/null </dev/null >tty || fail "get --raw on a pty exited $?"
[ "$(od -An -c tty | tr -d ' ')" = "v" ] || fail "get --raw on a pty: $(od -An -c tty)"
"$K" get --hex $E 6b >out || fail "get --hex exited $?"
[ "$(od -An -c out | tr -d ' ')" = '76\n' ] || fail "get --hex: $(od -An -c out)"
"$K" get --hex --raw $E 6b >out || fail "get --hex --raw exited $?"
[ "$(od -An -c out | tr -d ' ')" = "76" ] || fail "get --hex --raw: $(od -An -c out)"
echo "ok"
