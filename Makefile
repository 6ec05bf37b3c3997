# hdnsd build. Targets: all (default), deps, test, run, clean. SANITIZE=address,undefined builds
# everything with those sanitizers (into build/san-*/ so it never mixes with the normal build).
CXX      ?= g++
VERSION  := 0.1.0
PKGS     := libuv libcares libcurl
DEB_PKGS := g++ make pkg-config libc-ares-dev libuv1-dev libcurl4-openssl-dev nlohmann-json3-dev \
            doctest-dev libhttp-parser-dev bind9-dnsutils python3 python3-dnspython python3-pytest \
            iproute2 util-linux procps openssl
# kubectl checks the fake API server (test/fakeapi); Debian's kubernetes-client unless a kubectl is
# already installed (another package's /usr/bin/kubectl would make dpkg refuse the install).
DEB_PKGS += $(if $(shell command -v kubectl 2>/dev/null),,kubernetes-client)
DEB_PKGS += knot  # the authoritative upstream of test/integration/test_forward*.py

comma := ,
ifdef SANITIZE
BUILD    := build/san-$(subst $(comma),-,$(SANITIZE))
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
OPT      := -O1 -g
else
BUILD    := build
SANFLAGS :=
OPT      ?= -O2 -g
endif
CXXFLAGS := -std=c++20 $(OPT) -Wall -Wextra -Werror -Werror=vla -Iinclude -MMD -MP $(SANFLAGS) \
            $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -DHDNSD_VERSION='"$(VERSION)"'
LDLIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhttp_parser -lpthread
LDFLAGS  := $(SANFLAGS)

LIB_SRCS  := $(filter-out src/main.cc,$(shell find src -name '*.cc' | sort))
TEST_SRCS := $(shell find test/unit test/support -name '*.cc' 2>/dev/null | sort)
LIB_OBJS  := $(LIB_SRCS:%.cc=$(BUILD)/obj/%.o)
TEST_OBJS := $(TEST_SRCS:%.cc=$(BUILD)/obj/%.o)
MAIN_OBJ  := $(BUILD)/obj/src/main.o
# Fuzz targets test/fuzz/fuzz_<name>.cc, each with a seed corpus in test/fuzz/corpus/<name>/.
FUZZ_NAMES   := $(patsubst test/fuzz/fuzz_%.cc,%,$(wildcard test/fuzz/fuzz_*.cc))
FUZZ_REPLAYS := $(FUZZ_NAMES:%=$(BUILD)/fuzz/replay_%)
FUZZ_SECONDS ?= 60

.PHONY: all deps test unit integration run clean fuzz fuzz-deps bench bench-watch
all: deps $(BUILD)/hdnsd $(BUILD)/unit_tests $(FUZZ_REPLAYS)

# Installs the Debian packages the build and the tests need, only those that are missing.
deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing $$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null || \
	    { echo "make deps: apt-get install failed for: $$missing" >&2; exit 1; }; \
	fi

$(BUILD)/libhdnsd.a: $(LIB_OBJS)
	@mkdir -p $(@D)
	ar rcs $@ $^

$(BUILD)/hdnsd: $(MAIN_OBJ) $(BUILD)/libhdnsd.a
	$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/unit_tests: $(TEST_OBJS) $(BUILD)/libhdnsd.a
	$(CXX) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/%.o: %.cc
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) -c -o $@ $<

# GCC 12 at -O2 reports false array-bounds/stringop-overflow/-overread errors inside libstdc++ when a
# test builds a std::vector<uint8_t> from an initializer list (GCC bugs 107852, 105651); the
# product code keeps these warnings, the tests' packet literals do not need them.
$(BUILD)/obj/test/%.o: test/%.cc
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) -Wno-array-bounds -Wno-stringop-overflow -Wno-stringop-overread -c -o $@ $<

# g++ replay of each fuzz target's corpus (every crash found becomes a corpus file): make test
# runs them, so a fixed bug stays fixed without needing clang.
$(BUILD)/fuzz/replay_%: test/fuzz/fuzz_%.cc $(BUILD)/libhdnsd.a
	@mkdir -p $(@D)
	$(CXX) $(CXXFLAGS) -DHDNSD_FUZZ_STANDALONE -o $@ $< $(BUILD)/libhdnsd.a $(LDLIBS)

# libFuzzer with ASan+UBSan (clang from Debian): every target for FUZZ_SECONDS each; new inputs
# that add coverage land in build/fuzz/new-corpus/<name>/ (copy the crashers into the corpus).
FUZZ_CXX  := clang++
FUZZ_FLAGS := -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude \
              $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
fuzz-deps:
	@$(MAKE) --no-print-directory deps DEB_PKGS="clang libclang-rt-14-dev"
fuzz: deps fuzz-deps
	@mkdir -p build/fuzz/lf
	@set -e; for n in $(FUZZ_NAMES); do \
	  echo "== fuzz_$$n ($(FUZZ_SECONDS) s)"; \
	  $(FUZZ_CXX) $(FUZZ_FLAGS) -o build/fuzz/lf/fuzz_$$n test/fuzz/fuzz_$$n.cc $(LIB_SRCS) $(LDLIBS); \
	  mkdir -p build/fuzz/new-corpus/$$n; \
	  build/fuzz/lf/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=build/fuzz/lf/$$n- build/fuzz/new-corpus/$$n test/fuzz/corpus/$$n; \
	done

# Unit tests (doctest) then integration tests (pytest driving build/hdnsd with dig); one
# combined "N passed, M failed" line at the end.
test: all
	@HDNSD_BUILD=$(BUILD) test/run_tests.sh

unit: all
	$(BUILD)/unit_tests

integration: all
	HDNSD_BIN=$(BUILD)/hdnsd python3 -m pytest -q test/integration

run: all
	$(BUILD)/hdnsd --listen 127.0.0.1:5353 --endpoints-file examples/demo-cluster.json \
	  --metrics 127.0.0.1:9153 --log-level info

# The side-by-side benchmark (issue 7; needs root): installs the peers from Debian, measures hdnsd
# beside them and a reflector floor in a loopback-only network namespace, ~10 minutes; results in
# bench/results/<date>/. BENCH_ARGS=--quick for a 1-minute smoke run; HDNSD_FLAGS for extra flags.
bench: deps $(BUILD)/hdnsd
	bench/run --hdnsd $(BUILD)/hdnsd $(BENCH_ARGS)

# The Kubernetes API watch benchmarks (bench/watch/): event-to-answer latency, initial sync of
# 10,000 services / 100,000 endpoints, dnsperf under 1,000 events/s of churn; ~4 minutes, against
# the fake API server. An -O2 build only (not with SANITIZE). Results: bench/watch/last-results.json.
bench-watch: deps $(BUILD)/hdnsd
	@test -z "$(SANITIZE)" || { echo "bench-watch: measure an -O2 build, not SANITIZE=$(SANITIZE)" >&2; exit 1; }
	@$(MAKE) --no-print-directory deps DEB_PKGS="dnsperf"
	bench/watch/run.sh $(BUILD)/hdnsd

clean:
	rm -rf build

-include $(LIB_OBJS:.o=.d) $(TEST_OBJS:.o=.d) $(MAIN_OBJ:.o=.d)
