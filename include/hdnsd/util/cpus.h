// How many CPUs this process may use: the default of --workers (issue 7). Control path.
//
// sched_getaffinity's count (uv_available_parallelism: taskset, cpusets, a container's
// --cpuset-cpus) lowered by a CFS quota (`docker --cpus`, a Kubernetes CPU limit), which leaves
// every CPU in the affinity mask but lets the process run only quota/period of them: a pod
// limited to 2 CPUs on a 64-core node gets 2 workers, not 64 threads throttled in turn.
#pragma once

#include <optional>
#include <string_view>

namespace hdnsd::util {

// CPUs this process may use, at least 1.
unsigned usableCpus() noexcept;

// The CPUs a cgroup limit allows, rounded up: cgroup v2 cpu.max ("150000 100000" → 2) or
// v1 cpu.cfs_quota_us + cpu.cfs_period_us (quota, period). No limit ("max ...", -1): nullopt.
std::optional<unsigned> cpusOfQuota(std::string_view cpuMax) noexcept;
std::optional<unsigned> cpusOfQuota(std::string_view quota_us, std::string_view period_us) noexcept;

}  // namespace hdnsd::util
