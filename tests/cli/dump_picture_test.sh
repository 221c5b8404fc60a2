#!/bin/sh
# kvlab dump --format dot and --tree on every engine of this build that draws pictures (btree,
# lsm, bitcask, wal): an empty database, a small one with keys that need escaping, a large one
# (the picture stays small: "... N more"), and bad usage (exit 2 with a one-line message). DOT
# output is parsed by Graphviz's `dot -Tsvg` when it is installed.
# Usage: dump_picture_test.sh KVLAB WORKDIR
set -u
K=$1
W=$2
rm -rf "$W" && mkdir -p "$W" || exit 1
cd "$W" || exit 1
. "$(dirname "$0")/testlib.sh"
HAVE_DOT=0
command -v dot >/dev/null 2>&1 && HAVE_DOT=1
# dot_ok WHAT: out holds a DOT graph: one digraph, balanced, and `dot` renders it
dot_ok() {
    head -n 1 out | grep -qx 'digraph kvlab {' || fail "$1: DOT does not start with the digraph"
    [ "$(tail -n 1 out)" = "}" ] || fail "$1: DOT does not end with }"
    if [ "$HAVE_DOT" = 1 ]; then
        dot -Tsvg out >out.svg 2>dot.err || fail "$1: dot -Tsvg rejects it: $(cat dot.err)"
        [ -s dot.err ] && fail "$1: dot -Tsvg warns: $(cat dot.err)"
    fi
}
# tree_ok WHAT ENGINE: out holds a text tree rooted at the database
tree_ok() {
    [ "$(head -n 1 out)" = "$2 database" ] || fail "$1: tree starts with '$(head -n 1 out)'"
    # every other line is a branch: a prefix of "|   " and "    " then "|-- " or "`-- "
    bad=$(sed 1d out | grep -v '^\([| ]   \)*[|`]-- ' | head -n 1)
    [ -z "$bad" ] || fail "$1: not a tree line: $bad"
}
# picture ENGINE DIR WHAT [FLAGS...]: both forms succeed and are well formed
picture() {
    e=$1
    d=$2
    what=$3
    shift 3
    expect 0 "$K" dump -e "$e" -d "$d" "$@" --format dot
    dot_ok "$e $what"
    cp out "$what.dot"
    expect 0 "$K" dump -e "$e" -d "$d" "$@" --tree
    tree_ok "$e $what" "$e"
    cp out "$what.tree"
    expect 0 "$K" dump -e "$e" -d "$d" "$@" --format tree
    cmp -s out "$what.tree" || fail "$e $what: --format tree differs from --tree"
}

for e in btree lsm bitcask wal; do
    has "$e" || continue
    # an empty database
    expect 0 "$K" load -e "$e" -d "empty-$e" --num 0
    picture "$e" "empty-$e" empty
    # keys with a control byte, a quote and a backslash: escaped as \xNN in both forms, and the
    # DOT still parses. The key sorts first, so every engine's key ranges show it.
    expect 0 "$K" put -e "$e" -d "small-$e" --hex 01225c62 76 # \x01"\b
    expect 0 "$K" put -e "$e" -d "small-$e" apple red
    picture "$e" "small-$e" small
    grep -q '"\\x01\\x22\\x5cb"' small.tree || fail "$e: key \\x01\"\\b not escaped in the tree"
    grep -q '\\"\\\\x01\\\\x22\\\\x5cb\\"' small.dot || fail "$e: escaped key not DOT-quoted"
    # the same contents draw the same picture
    expect 0 "$K" dump -e "$e" -d "small-$e" --format dot
    cmp -s out small.dot || fail "$e: two dumps of the same database differ"
done

# a large B-tree: a few nodes per level and "... N more", not thousands of nodes
if has btree; then
    expect 0 "$K" load -e btree -d big-btree --num 20000
    picture btree big-btree big
    grep -q '\.\.\. [0-9]* more' big.tree || fail "btree big: no '... N more' in the tree"
    n=$(grep -c '' big.tree)
    [ "$n" -le 60 ] || fail "btree big: the tree has $n lines"
    grep -q 'height 3' big.tree || fail "btree big: height 3 not shown"
fi
if has bitcask; then
    expect 0 "$K" load -e bitcask -d big-bitcask --num 5000
    picture bitcask big-bitcask big
    grep -q '5000 keys' big.tree || fail "bitcask big: keydir count missing"
    n=$(grep -c '' big.tree)
    [ "$n" -le 20 ] || fail "bitcask big: the keydir is not summarised ($n lines)"
fi

# bad usage: exit 2, one clear line, before the database is opened
e=$("$K" engines --names | grep -x -e btree -e lsm -e bitcask -e wal | head -n 1)
if [ -n "$e" ]; then
    expect 2 "$K" dump -e "$e" -d "small-$e" --format nonsense
    [ "$(cat err)" = "kvlab: --format: unknown format 'nonsense' (text, dot or tree) (see kvlab dump --help)" ] ||
        fail "--format nonsense: $(cat err)"
    [ -s out ] && fail "--format nonsense printed to stdout"
    expect 2 "$K" dump -e "$e" -d "small-$e" --format dot --tree
    grep -q 'contradict' err || fail "--format dot --tree: $(cat err)"
    expect 2 "$K" dump -e "$e" -d "small-$e" --tree --page 1
    grep -q 'a picture shows the whole database' err || fail "--tree --page: $(cat err)"
    expect 2 "$K" dump -e "$e" -d "small-$e" --format
    expect 0 "$K" dump -e "$e" -d "small-$e" --format tree --tree
    expect 0 "$K" dump -e "$e" -d "small-$e" --format text
    expect 1 "$K" dump -e "$e" -d nodb --format dot
    [ -e nodb ] && fail "dump --format dot created a database"
fi
# an engine that draws no pictures: exit 2 naming it
for e in lmdb sqlite leveldb rocksdb; do
    has "$e" || continue
    expect 0 "$K" put -e "$e" -d "peer-$e" apple red
    expect 2 "$K" dump -e "$e" -d "peer-$e" --format dot
    grep -q "$e: no picture of its structure" err || fail "$e --format dot: $(cat err)"
    [ "$(grep -c '' err)" = 1 ] || fail "$e --format dot: more than one line: $(cat err)"
    break
done

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "ok"
