#!/bin/sh
# The pictures of docs/img/ are still what kvlab draws: docs/pictures.sh is run into WORKDIR and
# every fresh .dot must equal the committed one byte for byte (the walks print no paths, times or
# random ids). The SVGs are not compared (Graphviz versions lay out differently), but when `dot`
# is installed every committed .dot must render without an error or warning, and every .dot must
# have its committed .svg. Each chapter must show its pictures.
# Usage: pictures_test.sh KVLAB SRCDIR WORKDIR
set -u
K=$1
SRC=$2
W=$3
rm -rf "$W" && mkdir -p "$W" || exit 1
failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}
sh "$SRC/docs/pictures.sh" "$K" "$W/img" || fail "docs/pictures.sh failed"
for f in "$W"/img/*.dot; do
    [ -e "$f" ] || continue
    n=$(basename "$f")
    if [ ! -e "$SRC/docs/img/$n" ]; then
        fail "docs/img/$n is missing (run: sh docs/pictures.sh build/bench/kvlab docs/img)"
    elif ! cmp -s "$f" "$SRC/docs/img/$n"; then
        fail "docs/img/$n is not what kvlab draws now (run: sh docs/pictures.sh build/bench/kvlab docs/img)"
        diff -u "$SRC/docs/img/$n" "$f" | head -n 20
    fi
done
for f in "$SRC"/docs/img/*.dot; do
    [ -e "$f" ] || continue
    n=$(basename "$f" .dot)
    [ -e "$W/img/$n.dot" ] || fail "docs/img/$n.dot is not drawn by docs/pictures.sh any more"
    [ -e "$SRC/docs/img/$n.svg" ] || fail "docs/img/$n.svg is missing"
    if command -v dot >/dev/null 2>&1; then
        dot -Tsvg "$f" >"$W/$n.svg" 2>"$W/$n.err" || fail "dot -Tsvg docs/img/$n.dot: $(cat "$W/$n.err")"
        [ -s "$W/$n.err" ] && fail "dot -Tsvg docs/img/$n.dot warns: $(cat "$W/$n.err")"
    fi
done
for pair in btree:btree-split btree:btree-free lsm:lsm bitcask:bitcask wal:wal; do
    ch=${pair%%:*}
    img=${pair#*:}
    grep -q "img/$img.svg" "$SRC/docs/$ch.md" || fail "docs/$ch.md does not show img/$img.svg"
done
if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "ok"
