# hdnsd build. Targets: all (default), deps, test, run, clean, install, deb, test-packaging. SANITIZE=address,undefined builds
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
# promtool checks the whole /metrics exposition (test/integration/test_ops_observe.py); Debian ships
# it only inside prometheus (19 MB download, ~10 s to install; its service is not started here).
DEB_PKGS += prometheus
# --setup-interface's tests (test/integration/test_setup_interface.py) and the packaging tests:
# iptables in network namespaces, systemd-analyze for the units, python3-yaml for the manifests.
DEB_PKGS += iptables systemd python3-yaml groff-base binutils

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
            $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -DHDNSD_VERSION='"$(VERSION)"' $(EXTRA_CXXFLAGS)
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

.PHONY: all build-all deps test unit integration run clean fuzz fuzz-deps fuzz-build fuzz-smoke valgrind bench bench-watch install deb test-packaging
# `all` installs the packages first, then builds in a second make: CXXFLAGS/LDLIBS come from
# pkg-config, which only knows libuv, c-ares and curl once their -dev packages are installed (a
# first `make` on a fresh machine would otherwise compile without their include flags).
all: deps
	@$(MAKE) --no-print-directory build-all
build-all: $(BUILD)/hdnsd $(BUILD)/unit_tests $(FUZZ_REPLAYS)

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
# that add coverage land in $(FUZZ_DIR)/new-corpus/<name>/ (copy the crashers into the corpus).
# The library is compiled once with clang (-fsanitize=fuzzer-no-link) and linked into every
# target. `make fuzz-smoke` is the CI run: 30 s per target (FUZZ_SMOKE_SECONDS).
FUZZ_CXX   := clang++
FUZZ_DIR   := $(BUILD)/fuzz/lf
FUZZ_SAN   := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS := -std=c++20 -g -O1 -Iinclude $(shell pkg-config --cflags $(PKGS) 2>/dev/null) \
               -DHDNSD_VERSION='"$(VERSION)"' -MMD -MP
FUZZ_FLAGS := $(FUZZ_CFLAGS) -fsanitize=fuzzer $(FUZZ_SAN)
FUZZ_LIB_OBJS := $(LIB_SRCS:%.cc=$(FUZZ_DIR)/obj/%.o)
FUZZ_BINS  := $(FUZZ_NAMES:%=$(FUZZ_DIR)/fuzz_%)
FUZZ_SMOKE_SECONDS ?= 30
$(FUZZ_DIR)/obj/%.o: %.cc
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(FUZZ_SAN) -c -o $@ $<
$(FUZZ_DIR)/libhdnsd_fuzz.a: $(FUZZ_LIB_OBJS)
	ar rcs $@ $^
$(FUZZ_DIR)/fuzz_%: test/fuzz/fuzz_%.cc $(FUZZ_DIR)/libhdnsd_fuzz.a
	$(FUZZ_CXX) $(FUZZ_FLAGS) -o $@ $< $(FUZZ_DIR)/libhdnsd_fuzz.a $(LDLIBS)
fuzz-deps:
	@$(MAKE) --no-print-directory deps DEB_PKGS="clang libclang-rt-14-dev"
fuzz-build: deps fuzz-deps
	@$(MAKE) --no-print-directory $(FUZZ_BINS)
fuzz: fuzz-build
	@set -e; for n in $(FUZZ_NAMES); do \
	  echo "== fuzz_$$n ($(FUZZ_SECONDS) s)"; \
	  mkdir -p $(FUZZ_DIR)/new-corpus/$$n; \
	  $(FUZZ_DIR)/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_DIR)/$$n- $(FUZZ_DIR)/new-corpus/$$n test/fuzz/corpus/$$n; \
	done
fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS)

# Valgrind memcheck of the daemon: serves a cluster, answers dig over UDP and TCP (cluster and
# forwarded names), reloads on SIGHUP, shuts down on SIGTERM; fails on any error or definite
# leak (test/valgrind/run.sh). ~10 s; .ci/run runs it after `make test`.
valgrind: all
	@$(MAKE) --no-print-directory deps DEB_PKGS="valgrind"
	test/valgrind/run.sh $(BUILD)/hdnsd

# Unit tests (doctest) then integration tests (pytest driving build/hdnsd with dig); one
# combined "N passed, M failed" line at the end.
test: all
	@HDNSD_BUILD=$(BUILD) test/run_tests.sh

unit: all
	$(BUILD)/unit_tests

integration: all
	HDNSD_BIN=$(BUILD)/hdnsd python3 -m pytest -q test/integration

# The demo keeps the invoking user: started as root, hdnsd would otherwise drop to `nobody`,
# who cannot read a checkout under /root (mode 0700). Port 5353 needs no privilege anyway.
run: all
	$(BUILD)/hdnsd --listen 127.0.0.1:5353 --endpoints-file examples/demo-cluster.json \
	  --metrics 127.0.0.1:9153 --log-level info $(if $(filter 0,$(shell id -u)),--user root)

# The side-by-side benchmark (issue 7; needs root): installs the peers from Debian, measures hdnsd
# beside them and a reflector floor in a loopback-only network namespace, ~10 minutes; results in
# bench/results/<date>/. BENCH_ARGS=--quick for a 1-minute smoke run; HDNSD_FLAGS for extra flags.
bench: all
	bench/run --hdnsd $(BUILD)/hdnsd $(BENCH_ARGS)

# The Kubernetes API watch benchmarks (bench/watch/): event-to-answer latency, initial sync of
# 10,000 services / 100,000 endpoints, dnsperf under 1,000 events/s of churn; ~4 minutes, against
# the fake API server. An -O2 build only (not with SANITIZE). Results: bench/watch/last-results.json.
bench-watch: all
	@test -z "$(SANITIZE)" || { echo "bench-watch: measure an -O2 build, not SANITIZE=$(SANITIZE)" >&2; exit 1; }
	@$(MAKE) --no-print-directory deps DEB_PKGS="dnsperf"
	bench/watch/run.sh $(BUILD)/hdnsd

# `make install [DESTDIR=...] [PREFIX=/usr]`: the binary, the systemd units (ExecStart follows
# PREFIX), the man page, and /etc/hdnsd/hdnsd.json unless one is there. debian/rules uses it.
PREFIX           ?= /usr/local
SYSTEMD_UNIT_DIR ?= /lib/systemd/system
install: $(BUILD)/hdnsd
	install -D -m 0755 $(BUILD)/hdnsd $(DESTDIR)$(PREFIX)/sbin/hdnsd
	install -d $(DESTDIR)$(SYSTEMD_UNIT_DIR) $(DESTDIR)$(PREFIX)/share/man/man8
	sed 's#/usr/sbin/hdnsd#$(PREFIX)/sbin/hdnsd#' systemd/hdnsd.service > $(DESTDIR)$(SYSTEMD_UNIT_DIR)/hdnsd.service
	install -m 0644 systemd/hdnsd.socket $(DESTDIR)$(SYSTEMD_UNIT_DIR)/hdnsd.socket
	install -m 0644 man/hdnsd.8 $(DESTDIR)$(PREFIX)/share/man/man8/hdnsd.8
	test -e $(DESTDIR)/etc/hdnsd/hdnsd.json || install -D -m 0644 packaging/debian/hdnsd.json $(DESTDIR)/etc/hdnsd/hdnsd.json

# The Debian package, built by dpkg-buildpackage from a copy of this tree (packaging/debian is
# its debian/ directory): $(DEB_OUT)/hdnsd_$(VERSION)_<arch>.deb, then lintian (with the overrides
# in packaging/debian/hdnsd.lintian-overrides). A full -O2 build: ~5 minutes on 2 cores.
DEB_OUT ?= build/deb
deb:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(DEB_PKGS) debhelper dpkg-dev fakeroot lintian"
	rm -rf $(DEB_OUT) && mkdir -p $(DEB_OUT)/hdnsd-$(VERSION)
	tar --exclude=./build --exclude=./.git --exclude=./bench/results --exclude=__pycache__ \
	  --exclude=.pytest_cache -cf - . | tar -xf - -C $(DEB_OUT)/hdnsd-$(VERSION)
	cp -r packaging/debian $(DEB_OUT)/hdnsd-$(VERSION)/debian
	cd $(DEB_OUT)/hdnsd-$(VERSION) && DEB_BUILD_OPTIONS="parallel=2 $(DEB_BUILD_OPTIONS)" dpkg-buildpackage -b -us -uc
	lintian --fail-on error,warning $(DEB_OUT)/hdnsd_$(VERSION)_*.changes

# The .deb's own tests (install into a scratch root, run the installed binary and units): a
# separate target because building the package takes minutes; .ci/run calls it after make test.
test-packaging: deb
	HDNSD_DEB=$$(ls $(DEB_OUT)/hdnsd_$(VERSION)_*.deb) python3 -m pytest -q -p no:cacheprovider test/integration/test_packaging_deb.py

clean:
	rm -rf build

-include $(LIB_OBJS:.o=.d) $(TEST_OBJS:.o=.d) $(MAIN_OBJ:.o=.d) $(FUZZ_LIB_OBJS:.o=.d)
