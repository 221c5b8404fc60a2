#!/bin/sh
# run_docs.sh KVLAB FILE.md|DIR...: run every ```console block of the given Markdown files
# (a DIR stands for its *.md files) with the kvlab executable KVLAB on PATH (as `kvlab`), each
# block in a fresh temporary directory under $TMPDIR (default /tmp), and compare each command's
# output with the lines written under it. The commands themselves run with TMPDIR unset, as in
# a student's shell. The convention is in tests/docs/README.md.
# Exit status: 0 when every block matches, 1 otherwise, 2 on bad usage.
set -u
if [ $# -lt 2 ]; then
    echo "usage: $0 KVLAB FILE.md|DIR..." >&2
    exit 2
fi
kvlab=$1
shift
case $kvlab in /*) ;; *) kvlab=$(pwd)/$kvlab ;; esac
if [ ! -x "$kvlab" ]; then
    echo "$0: $kvlab is not an executable" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvlab-docs.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
# $TMPDIR chose where the blocks' directories go (ctest points it into the build tree); the
# commands see the environment a student has. kvlab crash puts its scratch directories under
# $TMPDIR, else /dev/shm: the outputs in the text are those of a run in /dev/shm, and in the
# build tree each crash run of docs/lab.md would take seconds instead of a fraction of one.
unset TMPDIR
mkdir "$tmp/bin"
ln -s "$kvlab" "$tmp/bin/kvlab"
PATH=$tmp/bin:$PATH
LC_ALL=C
TZ=UTC
export PATH LC_ALL TZ
unset KVLAB_LONG

# The engines this kvlab was built with: a block tagged requires=E is skipped without E.
engines=$(kvlab engines --names | tr '\n' ' ') || { echo "$0: kvlab engines failed" >&2; exit 2; }

# Expand directories into their Markdown files (sorted by the shell's glob).
for a in "$@"; do
    shift
    if [ -d "$a" ]; then
        for f in "$a"/*.md; do [ -e "$f" ] && set -- "$@" "${f#./}"; done
    else
        set -- "$@" "$a"
    fi
done

status=0
for f in "$@"; do
    if [ ! -r "$f" ]; then
        echo "$f: cannot read" >&2
        status=1
        continue
    fi
    mkdir "$tmp/work" || exit 2
    awk -v file="$f" -v work="$tmp/work" -v engines="$engines" -f "$here/run_docs.awk" "$f" || status=1
    rm -rf "$tmp/work"
done
[ $status -eq 0 ] && echo "all console blocks match" || echo "some console blocks FAILED"
exit $status
