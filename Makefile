# The commands a newcomer types. The real build is CMake (CMakeLists.txt); this file only
# drives it.
#   make deps   install the Debian packages kvlab needs (as root; otherwise prints the line)
#   make        build into build/
#   make test   deps + build + all tests (ctest)
#   make check  the same tests under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/),
#               warnings as errors
#   make tsan   the tests under ThreadSanitizer (build-tsan/), without the production peers'
#               conformance suites (their Debian libraries are not instrumented)
#   make release-check  a Release (-O3) build with gcc, warnings as errors (build-release/)
#   make clang-check    the whole tree with clang, warnings as errors (build-clang/)
#   make bench  the default benchmark into results/latest/
#   make bench-scale  every engine and peer at 100k, 1M, 5M and 20M records into results/scale/
#               (1 h 37 min on the 2-core development VM; SCALE_NUM=100k,1M takes about 6 minutes)
#   make fuzz-smoke  every libFuzzer target for a bounded time (build-fuzz/)
#   make crash-matrix  the durability matrix into results/crash/matrix.{md,csv} and, with
#                      small sizes, matrix-small.{md,csv} (about 10 minutes each)
#   make crash-soak    the crash soak into results/crash/soak.{md,csv} (about an hour; one
#                      engine at a time: make crash-soak SOAK_ENGINES=wal,lmdb)
#   make damage the damaged-file campaign, DAMAGE_ROUNDS per engine, into results/damage/
#   make format apply clang-format to every C file

DEB_PACKAGES := cmake make gcc clang libclang-rt-14-dev pkg-config zlib1g-dev libjemalloc-dev \
	libcmocka-dev gnuplot-nox libleveldb-dev librocksdb-dev liblmdb-dev libsqlite3-dev \
	libjansson-dev clang-format libfuse3-dev fuse3 graphviz
JOBS ?= $(shell nproc)
BUILD ?= build
CTEST_ARGS ?=
DAMAGE_ROUNDS ?= 2000

# Power-loss sweeps to leave out of the matrix and the soak (ENGINE:POLICY words, e.g.
# `make crash-matrix CRASH_EXCLUDE=lmdb:torn-bytes`); by default everything runs.
CRASH_EXCLUDE ?=
SOAK_ENGINES ?=
CRASH_EXCLUDE_FLAGS = $(foreach x,$(CRASH_EXCLUDE),--exclude $(x))

.PHONY: all build deps test check tsan release-check clang-check bench bench-scale fuzz-smoke \
	format clean crash-matrix crash-soak damage

all: build

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all installed"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "deps: missing:$$missing"; \
	  echo "run: sudo apt-get install -y$$missing"; exit 1; \
	fi; \
	echo "deps: installing$$missing"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: deps
	$(MAKE) build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

check: deps
	cmake -S . -B build-asan -DKVLAB_SANITIZE=ON -DKVLAB_WERROR=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

# Tests that run a production peer in-process are left out: TSan sees the uninstrumented
# LevelDB and RocksDB libraries' own synchronisation as races. So is bench.cpuload: it counts
# the threads of its processes, and TSan's runtime starts threads of its own in them.
TSAN_EXCLUDE ?= conformance\.(leveldb|rocksdb|lmdb|sqlite)|unit\.identity_peers|crash\.crashfs|bench\.(runs|cpuload)
tsan: deps
	cmake -S . -B build-tsan -DKVLAB_TSAN=ON -DKVLAB_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build build-tsan -j $(JOBS)
	cd build-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
	  ctest --output-on-failure -j $(JOBS) -E '$(TSAN_EXCLUDE)' $(CTEST_ARGS)

release-check: deps
	cmake -S . -B build-release -DKVLAB_WERROR=ON -DCMAKE_BUILD_TYPE=Release
	cmake --build build-release -j $(JOBS)

clang-check: deps
	CC=clang cmake -S . -B build-clang -DKVLAB_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build build-clang -j $(JOBS)

bench: deps build
	./$(BUILD)/bench/kvlab bench --default --out results/latest

damage: deps build
	./bench/crash/damage-campaign.sh ./$(BUILD)/bench/kvlab results/damage $(DAMAGE_ROUNDS)

# How cost grows with the data: fillrandom, readrandom, ycsb-b and recover at each record count,
# 1M measured operations per read workload, each measured phase capped at 300 s.
SCALE_NUM ?= 100k,1M,5M,20M
SCALE_ENGINES ?= all
SCALE_OUT ?= results/scale
bench-scale: deps build
	./$(BUILD)/bench/kvlab bench --engines $(SCALE_ENGINES) \
	  --workloads fillrandom,readrandom,ycsb-b,recover --num $(SCALE_NUM) --ops 1M \
	  --max-seconds 300 --out $(SCALE_OUT)

fuzz-smoke: deps
	CC=clang cmake -S . -B build-fuzz -DKVLAB_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build build-fuzz -j $(JOBS)
	./tests/fuzz/run-smoke.sh build-fuzz

# Exit 1 of kvlab crash means violations were found and reported (in the files written): the
# target still succeeds; any other failure stops it.
crash-matrix: deps build
	./$(BUILD)/bench/kvlab crash --matrix --out results/crash $(CRASH_EXCLUDE_FLAGS); \
	  rc=$$?; [ $$rc -le 1 ]
	./$(BUILD)/bench/kvlab crash --matrix --small --out results/crash $(CRASH_EXCLUDE_FLAGS); \
	  rc=$$?; [ $$rc -le 1 ]

crash-soak: deps build
	./$(BUILD)/bench/kvlab crash --soak --out results/crash \
	  $(if $(SOAK_ENGINES),--engines $(SOAK_ENGINES)); rc=$$?; [ $$rc -le 1 ]

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-tsan build-release build-clang build-fuzz
