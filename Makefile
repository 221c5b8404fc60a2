# The commands a newcomer types. The real build is CMake (CMakeLists.txt); this file only
# drives it.
#   make deps   install the Debian packages kvlab needs (as root; otherwise prints the line)
#   make        build into build/
#   make test   deps + build + all tests (ctest)
#   make check  the same tests under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)
#   make bench  the default benchmark into results/latest/
#   make fuzz-smoke  every libFuzzer target for a bounded time (build-fuzz/)
#   make format apply clang-format to every C file

DEB_PACKAGES := cmake make gcc clang libclang-rt-14-dev pkg-config zlib1g-dev libjemalloc-dev \
	libcmocka-dev gnuplot-nox libleveldb-dev librocksdb-dev liblmdb-dev libsqlite3-dev \
	libjansson-dev clang-format
JOBS ?= $(shell nproc)
BUILD ?= build
CTEST_ARGS ?=

.PHONY: all build deps test check bench fuzz-smoke format clean

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
	cmake -S . -B build-asan -DKVLAB_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

bench: deps build
	./$(BUILD)/bench/kvlab bench --default --out results/latest

fuzz-smoke: deps
	CC=clang cmake -S . -B build-fuzz -DKVLAB_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build build-fuzz -j $(JOBS)
	./tests/fuzz/run-smoke.sh build-fuzz

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-fuzz
