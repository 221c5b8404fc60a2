#!/bin/sh
# kvlab bench end to end on a few thousand keys: exit 0, results.csv with the exact header and
# one row per run, results.json, report.md and plots; the same without gnuplot (no plots, a
# note); exit 2 for bad values. Usage: bench_smoke.sh KVLAB WORKDIR
set -u
K=$1
W=$2
rm -rf "$W" && mkdir -p "$W" || exit 1
cd "$W" || exit 1
fail() {
    echo "FAIL: $*"
    exit 1
}
header="engine,workload,durability,threads,ops,seconds,ops_per_sec,mb_per_sec,p50_us,p90_us,p99_us,p999_us,max_us,write_amp,space_amp,fsyncs_per_op,peak_mem_bytes,cpu_load"

engines=null
first=$("$K" engines --names | head -n 1)
[ -n "$first" ] && engines="null,$first"
"$K" bench --engines "$engines" --workloads fillrandom,readrandom,ycsb-e,fillsync \
    --num 2000 --sync-ops 20 --threads 1,2 --dir data --out out --probes 5 -q >log 2>&1 ||
    fail "bench exited $?: $(cat log)"
[ "$(head -n 1 out/results.csv)" = "$header" ] || fail "results.csv header: $(head -n 1 out/results.csv)"
n_engines=$(echo "$engines" | tr ',' '\n' | wc -l)
want=$((n_engines * 4 * 2))
[ "$(tail -n +2 out/results.csv | wc -l)" -eq "$want" ] || fail "results.csv rows: want $want"
grep -q '"runs"' out/results.json || fail "results.json has no runs"
grep -q '"git_commit"' out/results.json || fail "results.json has no git_commit"
grep -q "^# kvlab benchmark report" out/report.md || fail "report.md"
grep -q "^## Harness overhead" out/report.md || fail "report.md has no overhead section"
grep -q "fillsync,sync,2," out/results.csv || fail "fillsync did not run in sync"
grep -q "^## Durability sync against the disk" out/report.md ||
    fail "report.md has no table of the sync runs against the disk"
grep -q '"sync_probe_mean_us": [0-9]' out/results.json ||
    fail "results.json has no fdatasync probe for the sync runs"
[ -d data ] || fail "the bench directory was not created"
# --cpu-load: the runs beside busy-loop threads say so in every report.
"$K" bench --engines "$engines" --workloads fillsync --sync-ops 20 --threads 2 --cpu-load 1 \
    --dir data --out out5 --probes 5 --no-plots -q >log 2>&1 || fail "bench --cpu-load exited $?: $(cat log)"
[ "$(tail -n +2 out5/results.csv | grep -c ',1$')" -eq "$n_engines" ] || fail "results.csv has no cpu_load 1"
grep -q "beside 1 busy-loop thread " out5/report.md || fail "report.md does not mark the loaded runs"
grep -q '"cpu_load": 1' out5/results.json || fail "results.json has no cpu_load"
if command -v gnuplot >/dev/null 2>&1; then
    [ -s out/throughput.svg ] && [ -s out/throughput.png ] || fail "no throughput plot"
    grep -q "(throughput.svg)" out/report.md || fail "report.md does not embed the plot"
fi
"$K" bench --engines null --num 10 --out out2 --dir data --keep --probes 0 --no-plots -q >log 2>&1 || fail "small run"
# Without gnuplot (an empty PATH) the CSV, JSON and Markdown are still written, and the
# report says why there are no plots.
env PATH=/nonexistent "$K" bench --engines null --workloads fillseq --num 100 --out out4 \
    --dir data --probes 0 -q >log 2>&1 || fail "bench without gnuplot exited $?: $(cat log)"
[ -s out4/results.csv ] && [ -s out4/results.json ] || fail "no CSV or JSON without gnuplot"
grep -q "gnuplot was not found" out4/report.md || fail "report.md does not say gnuplot is missing"
[ ! -e out4/throughput.svg ] || fail "plots without gnuplot?"
"$K" bench --engines null --key-size 2 --num 1000 --out out3 --dir data >log 2>&1
[ $? -eq 2 ] || fail "a key too short for the records is not a usage error"
[ "$(wc -l <log)" -eq 1 ] || fail "usage error is not one line: $(cat log)"
echo "all passed (engines: $engines)"
