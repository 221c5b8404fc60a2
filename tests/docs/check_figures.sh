#!/bin/sh
# check_figures.sh ROOT FILE.md|DIR...: checks every figure marker (<!-- fig: ... -->) of the
# Markdown files named (a directory: its *.md) against the committed CSV files it names, paths
# relative to ROOT (the source tree). Exit 0 if every figure matches, 1 if one does not or a
# marker is broken (each named FILE:LINE), 2 on a usage error. Convention: README.md, "Figures".
set -u
if [ $# -lt 2 ]; then
    echo "usage: check_figures.sh ROOT FILE.md|DIR..." >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
root=$1
shift
files=
for a in "$@"; do
    if [ -d "$a" ]; then
        for f in "$a"/*.md; do [ -f "$f" ] && files="$files $f"; done
    elif [ -f "$a" ]; then
        files="$files $a"
    else
        echo "check_figures.sh: no such file: $a" >&2
        exit 2
    fi
done
export LC_ALL=C
# shellcheck disable=SC2086
awk -v root="$root" -f "$here/check_figures.awk" $files
