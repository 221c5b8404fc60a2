#!/bin/sh
# kvlab bench end to end on a few thousand keys: exit 0, results.csv with the exact header and
# one row per run, results.json, report.md and plots; a scaling run (two record counts, recover)
# with its scaling, memory, open-time and timeline plots and .hgrm files; an open-loop run
# (--rate) with corrected and service-time percentiles; the same without gnuplot (no plots, a
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
header="engine,workload,durability,threads,ops,seconds,ops_per_sec,mb_per_sec,p50_us,p90_us,p99_us,p999_us,max_us,write_amp,space_amp,fsyncs_per_op,peak_mem_bytes,cpu_load,records,rate,service_p50_us,service_p99_us,page_cache_bytes,mem_per_key_bytes,open_s,min_1s_fraction"

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
grep -Eq '"clock_read_ns": ([1-9]|0\.0*[1-9])' out/results.json ||
    fail "results.json has no measured cost of a clock read"
grep -q "^One read of the clock costs [0-9.]* ns here" out/report.md ||
    fail "the overhead section does not give the clock's floor"
grep -q "fillsync,sync,2," out/results.csv || fail "fillsync did not run in sync"
grep -q "^## Durability sync against the disk" out/report.md ||
    fail "report.md has no table of the sync runs against the disk"
grep -q '"sync_probe_mean_us": [0-9]' out/results.json ||
    fail "results.json has no fdatasync probe for the sync runs"
[ -d data ] || fail "the bench directory was not created"
# --cpu-load: the runs beside busy-loop threads say so in every report.
"$K" bench --engines "$engines" --workloads fillsync --sync-ops 20 --threads 2 --cpu-load 1 \
    --dir data --out out5 --probes 5 --no-plots -q >log 2>&1 || fail "bench --cpu-load exited $?: $(cat log)"
[ "$(tail -n +2 out5/results.csv | cut -d, -f18 | grep -c '^1$')" -eq "$n_engines" ] ||
    fail "results.csv has no cpu_load 1"
grep -q "beside 1 busy-loop thread " out5/report.md || fail "report.md does not mark the loaded runs"
grep -q '"cpu_load": 1' out5/results.json || fail "results.json has no cpu_load"
[ "$(ls out5/hgrm/*-t2-*-load1.hgrm | wc -l)" -eq "$n_engines" ] ||
    fail "the loaded runs' .hgrm files are not named apart: $(ls out5/hgrm)"
if command -v gnuplot >/dev/null 2>&1; then
    [ -s out/throughput.svg ] && [ -s out/throughput.png ] || fail "no throughput plot"
    grep -q "(throughput.svg)" out/report.md || fail "report.md does not embed the plot"
fi
"$K" bench --engines null --num 10 --out out2 --dir data --keep --probes 0 --no-plots -q >log 2>&1 || fail "small run"

# A scaling run: two record counts, recover (the loading child killed by SIGKILL).
[ -n "$first" ] || { echo "all passed (engines: $engines; no engine for the scaling run)"; exit 0; }
"$K" bench --engines "$engines" --workloads fillrandom,readrandom,recover --num 1500,3k \
    --dir data --out scale --probes 0 -q >log 2>&1 || fail "scaling run exited $?: $(cat log)"
[ "$(tail -n +2 scale/results.csv | wc -l)" -eq $((n_engines * 3 * 2)) ] || fail "scaling rows"
grep -q "^$first,recover,os,1,[0-9]*,.*,3000,," scale/results.csv || fail "no recover row at 3k"
grep -q "^null,recover,os,1,n/a" scale/results.csv || fail "recover on null is not n/a"
grep -q '"found_records": [0-9]' scale/results.json || fail "results.json has no recovery"
case "$first" in
leveldb | rocksdb | lmdb | sqlite) ;; # the peers do not say how much log they replayed
*)
    grep -q '"log_replayed_bytes": [1-9]' scale/results.json ||
        fail "$first does not say how much log its recovering open replayed"
    ;;
esac
grep -q '"page_cache_bytes": [1-9]' scale/results.json || fail "no page cache figure"
grep -q '"mem_per_key_bytes": [0-9]' scale/results.json || fail "no memory per key"
grep -q '"open_s": [0-9]' scale/results.json || fail "no open time"
grep -q '"ops_per_sec": \[' scale/results.json || fail "no timeline in results.json"
for s in "## Scaling" "## Open and recovery" "## Throughput over time" "## Raw distributions" \
    "## Engine configuration"; do
    grep -q "^$s" scale/report.md || fail "report.md has no section $s"
done
[ -s "scale/hgrm/$first-readrandom-os-t1-n3000.hgrm" ] || fail "no .hgrm of a run"
grep -q "^#\[Max     =" "scale/hgrm/$first-readrandom-os-t1-n3000.hgrm" || fail ".hgrm format"
if command -v gnuplot >/dev/null 2>&1; then
    for p in scaling-fillrandom-os-t1 memory-readrandom-os-t1 scaling-amp-fillrandom-os-t1 open \
        timeline-readrandom-os-t1-n3000; do
        [ -s "scale/$p.svg" ] && [ -s "scale/$p.png" ] || fail "no plot $p"
        grep -q "($p.svg)" scale/report.md || fail "report.md does not embed $p"
    done
fi

# Open loop: two rates, corrected and service-time percentiles.
"$K" bench --engines "$first" --workloads readrandom --num 2000 --rate 4k,8k --arrival poisson \
    --dir data --out rate --probes 0 -q >log 2>&1 || fail "rate run exited $?: $(cat log)"
grep -q "^$first,readrandom,os,1,2000,.*,2000,4000,[0-9.]*,[0-9.]*," rate/results.csv ||
    fail "no service times in the rate run: $(cat rate/results.csv)"
grep -q "^## Open-loop latency" rate/report.md || fail "report.md has no open-loop section"
[ -s "rate/hgrm/$first-readrandom-os-t1-n2000-r8000-service.hgrm" ] || fail "no service .hgrm"
if command -v gnuplot >/dev/null 2>&1; then
    [ -s rate/rate-readrandom-os-t1.svg ] || fail "no latency-against-load plot"
fi
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
