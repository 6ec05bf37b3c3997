// The CFS quota → CPUs rounding behind --workers' default (util/cpus.h).
#include "hdnsd/util/cpus.h"

#include <doctest/doctest.h>
#include <uv.h>

using hdnsd::util::cpusOfQuota;

TEST_CASE("cpus: cgroup v2 cpu.max, rounded up; no limit is nullopt") {
  CHECK(cpusOfQuota("200000 100000\n") == 2u);
  CHECK(cpusOfQuota("150000 100000") == 2u);  // 1.5 CPUs: 2 workers, each throttled a little
  CHECK(cpusOfQuota("50000 100000") == 1u);   // half a CPU still needs one
  CHECK(!cpusOfQuota("max 100000\n"));
  CHECK(!cpusOfQuota(""));                    // no file (cgroup v1, not mounted)
  CHECK(!cpusOfQuota("garbage"));
}

TEST_CASE("cpus: cgroup v1 cfs_quota_us and cfs_period_us") {
  CHECK(cpusOfQuota("400000\n", "100000\n") == 4u);
  CHECK(!cpusOfQuota("-1\n", "100000\n"));  // v1's "no limit"
  CHECK(!cpusOfQuota("100000", "0"));
  CHECK(!cpusOfQuota("", ""));
}

TEST_CASE("cpus: usableCpus is at least one and at most what the affinity mask allows") {
  unsigned n = hdnsd::util::usableCpus();
  CHECK(n >= 1);
  CHECK(n <= uv_available_parallelism());
}
