#!/bin/sh
# The long damaged-file campaign (`make damage`): `kvlab crash --damage` on every kvlab engine, on
# a database of 10,000 keys built by 30,000 commits of the mixed workload (puts, deletes, batches
# of 1 to 10 operations, a kv_sync now and then), ROUNDS damage rounds each. Each engine runs with
# small file sizes, so that its directory holds several files of each kind to delete, swap and
# replace. Writes OUT/damage-ENGINE.md and .csv per engine and OUT/summary.md (one row per
# engine with a table in OUT, so that engines run one at a time add up). Exit 0 when no engine
# gave a silent wrong answer or crashed, 1 otherwise.
#
# usage: damage-campaign.sh KVLAB OUT ROUNDS [ENGINE...]   (default: wal bitcask lsm btree)
set -u
kvlab=$1
out=$2
rounds=$3
shift 3
engines=${*:-wal bitcask lsm btree}
seed=${KVLAB_SEED:-1}
flags="--damage --workload mixed --keys 10000 --ops 30000 --seed $seed --points $rounds --out $out"

options() {
    case $1 in
    wal) echo "-o segment_size=64K -o checkpoint_bytes=1M" ;;
    bitcask) echo "-o file_size=256K -o merge_min_files=2 -o merge_fragmentation=10 -o merge_dead_bytes=256K" ;;
    lsm) echo "-o write_buffer_size=64K -o target_file_size=64K -o l0_compaction_trigger=2 -o level_base_bytes=256K -o manifest_max_size=16K" ;;
    btree) echo "-o checkpoint_bytes=4M" ;;
    *) echo "" ;;
    esac
}

mkdir -p "$out" || exit 3
status=0
for e in $engines; do
    echo "== $e: $kvlab crash $flags --engine $e $(options "$e")"
    # shellcheck disable=SC2046 # the options are words
    "$kvlab" crash $flags --engine "$e" $(options "$e") >"$out/damage-$e.log" 2>&1
    rc=$?
    sed -n '/^damaged files:/,$p' "$out/damage-$e.log"
    [ $rc -eq 0 ] || status=1
    [ $rc -le 1 ] || echo "$e: the run could not be carried out (exit $rc; $out/damage-$e.log)"
done

# The summary, from each engine's CSV (its "kind" rows sum to the engine's rounds).
{
    echo "# Damaged files: every engine"
    echo
    echo "\`make damage\` (bench/crash/damage-campaign.sh): \`kvlab crash $flags\`, per engine with"
    echo "the options in that script; one table per engine in damage-ENGINE.md."
    echo
    echo "| engine | cases | silent wrong answers | crashes or hangs | errors reported | errors naming file and offset | allowed suffix losses | no effect |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    for csv in "$out"/damage-*.csv; do
        [ -f "$csv" ] || continue
        e=${csv##*/damage-}
        e=${e%.csv}
        awk -F, -v e="$e" '
            $1 == "kind" { n += $4; loc += $5; err += $6; suf += $7; ok += $8; wr += $9; cr += $10 }
            END {
                errs = loc + err
                printf "| %s | %d | %d | %d | %d | %d (%.1f%%) | %d | %d |\n", e, n, wr, cr, errs,
                    loc, errs ? 100 * loc / errs : 0, suf, ok
            }' "$csv"
    done
} >"$out/summary.md"
cat "$out/summary.md"
exit $status
