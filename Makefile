# Tusk: the two commands of the README's quick start, and the rest.
#   make run    install what is missing, build, start a scratch PostgreSQL
#               with sample data, open Tusk on it
#   make test   install what is missing, build, run the whole suite (twice:
#               a debug build, then AddressSanitizer + UBSan) inside the
#               test environment
#   make bench  the benchmarks beside their baselines (not part of test);
#               BENCH_FLAGS=--strict fails on a missed target
#   make fuzz   every libFuzzer target for FUZZ_SECONDS (default 600) each

BUILD ?= build

.PHONY: all deps build release run test bench fuzz format check-format clean

all: build

deps:
	@scripts/deps.sh

$(BUILD)/build.ninja:
	@scripts/deps.sh
	meson setup $(BUILD) --buildtype=debug

build: deps $(BUILD)/build.ninja
	@ninja -C $(BUILD)

release: deps
	@[ -f build-release/build.ninja ] || meson setup build-release --buildtype=release
	@ninja -C build-release

run: build
	@scripts/test-env.sh --services postgres,keyring --sample-data -- $(BUILD)/shell/tusk

test: deps
	@scripts/run-tests.sh

bench: release
	@scripts/test-env.sh -- scripts/bench.sh $(BENCH_FLAGS) build-release

fuzz:
	@scripts/fuzz.sh $(or $(FUZZ_SECONDS),600)

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

check-format:
	@scripts/check-format.sh

clean:
	rm -rf build build-asan build-tsan build-release build-fuzz
