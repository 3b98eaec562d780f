# Herald: the two commands of the README, and a few more.
#
#   make run     install what is missing, build, init ./herald-data, serve
#   make test    install what is missing, build, run every test
#   make asan    the same tests under AddressSanitizer and UBSan
#   make bench   the benchmarks of bench/ (slow; prints ratios)

BUILD ?= build
DATA  ?= herald-data
SUDO  := $(shell [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null && echo sudo)

.PHONY: all deps build run test asan bench format clean

all: build

deps:
	@$(SUDO) scripts/install-deps

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

run: build
	$(BUILD)/src/cli/herald init --data $(DATA)
	$(BUILD)/src/cli/herald serve --data $(DATA)

test: build
	meson test -C $(BUILD) --print-errorlogs --num-processes 2

build-asan/build.ninja:
	meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false

asan: deps build-asan/build.ninja
	ninja -C build-asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	    meson test -C build-asan --print-errorlogs --num-processes 2 \
	    --timeout-multiplier 3

# Every benchmark runs, even when one fails; the status says if any did.
bench: build
	@rc=0; \
	bench/smtp-accept || rc=1; \
	bench/relay || rc=1; \
	bench/import || rc=1; \
	exit $$rc

format:
	clang-format -i src/*/*.c src/*/*.h tests/unit/*.c tests/fuzz/*.c

clean:
	rm -rf $(BUILD) build-asan
