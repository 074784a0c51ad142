# sonde: BPF objects → skeletons → agent → tests. See README.md.
CLANG    ?= clang
CC       ?= gcc
BPFTOOL  ?= bpftool
STRIP    ?= llvm-strip
BUILD    := build
UNAME_M  := $(shell uname -m)
ARCH     := $(subst x86_64,x86,$(subst aarch64,arm64,$(UNAME_M)))
VMLINUX  := vmlinux/$(subst aarch64,arm64,$(UNAME_M))

# One BPF object per concern; each gets a skeleton. The objects are kept
# (not deleted as intermediates): the guest test loads them for verifier logs.
BPF_OBJS := sock tcp floor tcpstate sched
USER_SRCS := $(wildcard user/*.c user/proto/*.c user/export/*.c user/host/*.c)
USER_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(USER_SRCS))
SKELS    := $(patsubst %,$(BUILD)/%.skel.h,$(BPF_OBJS))

CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Werror -Iinclude -Iuser -I$(BUILD)
LDLIBS   := -lbpf -lelf -lz -lmicrohttpd -lm
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -I$(VMLINUX) -Iinclude -Ibpf \
	-Wall -Wno-gnu-variable-sized-type-not-at-end

# Unit tests: tests/unit/test_X.c and the user/ sources each one needs.
UNIT_TESTS := http1 route metrics conntrack
test_http1_SRCS   := user/proto/http1.c
test_route_SRCS   := user/route.c
test_metrics_SRCS := user/metrics.c
test_conntrack_SRCS := user/conntrack.c user/proto/http1.c user/route.c user/proc.c user/span.c user/log.c
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

.PHONY: all deps test unit unit-asan integration guest bench run clean fuzz
.SECONDARY: $(patsubst %,$(BUILD)/%.bpf.o,$(BPF_OBJS))
all: $(BUILD)/sonde $(BUILD)/sonde-floor

deps:
	@scripts/install-deps.sh

$(BUILD)/%.bpf.o: bpf/%.bpf.c include/sonde.h $(wildcard bpf/lib/*.h) | $(BUILD)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@.tmp
	$(STRIP) -g $@.tmp -o $@   # drop DWARF, keep BTF
	@rm -f $@.tmp

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $*_bpf > $@

$(BUILD)/user/%.o: user/%.c $(SKELS) $(wildcard user/*.h user/*/*.h) include/sonde.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/sonde: $(USER_OBJS)
	$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/sonde-floor: tests/bench/floor.c $(BUILD)/floor.skel.h
	$(CC) $(CFLAGS) $< -lbpf -lelf -lz -o $@

$(BUILD):
	@mkdir -p $@

# ---- tests ----
$(BUILD)/tests/test_%: tests/unit/test_%.c $(wildcard user/*.c user/*/*.c user/*.h user/*/*.h tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $< $(test_$*_SRCS) -lm -o $@
# (unit tests link only the sources they name; the prerequisite list is broad so edits rebuild them)

$(BUILD)/tests-asan/test_%: tests/unit/test_%.c $(wildcard user/*.c user/*/*.c user/*.h user/*/*.h tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CLANG) -std=gnu11 -Wall -Wextra -Werror -Iinclude -Iuser -Itests/unit $(SAN_FLAGS) \
		$< $(test_$*_SRCS) -lm -o $@

unit: $(patsubst %,$(BUILD)/tests/test_%,$(UNIT_TESTS))
	@set -e; for t in $^; do $$t; done

unit-asan: $(patsubst %,$(BUILD)/tests-asan/test_%,$(UNIT_TESTS))
	@set -e; for t in $^; do ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $$t; done

integration: all
	python3 tests/integration/test_http.py
	python3 tests/integration/test_node_exporter.py
	python3 tests/integration/test_tcp_health.py
	python3 tests/integration/test_prometheus.py

# Fuzz targets (libFuzzer + ASan/UBSan). `make fuzz` runs each for
# FUZZ_SECONDS (default 60) from the seeds in tests/fuzz/corpus-*/; `make
# test` runs them briefly (10 s) so a crash on the seeds or nearby fails CI.
FUZZ_TARGETS := http1
FUZZ_SECONDS ?= 60
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(wildcard user/*/*.c user/*/*.h user/*.h)
	@mkdir -p $(dir $@)
	$(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Iuser \
		$< user/proto/$*.c -o $@

fuzz: $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FUZZ_TARGETS))
	@set -e; for t in $(FUZZ_TARGETS); do \
		mkdir -p $(BUILD)/fuzz/work-$$t; \
		if ! $(BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
			-artifact_prefix=$(BUILD)/fuzz/ $(BUILD)/fuzz/work-$$t tests/fuzz/corpus-$$t \
			> $(BUILD)/fuzz/$$t.log 2>&1; then \
			tail -40 $(BUILD)/fuzz/$$t.log; echo "fuzz_$$t: FAILED (input saved in $(BUILD)/fuzz/)"; exit 1; \
		fi; \
		echo "fuzz_$$t: $$(grep -E '^Done' $(BUILD)/fuzz/$$t.log)"; \
	done

# The kprobe/fentry paths on a second kernel (Debian 6.1 under QEMU TCG); the
# host kernel has neither. Downloads the kernel package once into build/guest.
guest: all
	scripts/guest-test.sh

test: deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) unit-asan
	$(MAKE) fuzz FUZZ_SECONDS=10
	$(MAKE) integration
	$(MAKE) guest

bench: deps
	$(MAKE) all
	scripts/bench.sh

run:
	@scripts/install-deps.sh build
	$(MAKE) all
	$(BUILD)/sonde $(ARGS)

clean:
	rm -rf $(BUILD)
