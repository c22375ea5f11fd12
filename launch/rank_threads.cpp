// File: launch/rank_threads.cpp
#include "launch/rank_threads.h"

#include <ATen/Parallel.h>
#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

#include "runtime/base/log.h"

namespace albion::launch {
namespace {

// The cores this process may run on (its affinity mask: a Slurm or cgroup allocation, not the machine).
int usable_cores() {
  cpu_set_t mask;
  CPU_ZERO(&mask);
  if (sched_getaffinity(0, sizeof(mask), &mask) == 0) return std::max(1, CPU_COUNT(&mask));
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

}  // namespace

std::optional<int> rank_thread_count(int usable_cores, int local_ranks, const char* omp_num_threads) {
  if (omp_num_threads != nullptr && *omp_num_threads != '\0') return std::nullopt;
  return std::max(1, usable_cores / std::max(1, local_ranks));
}

void share_cores_among_local_ranks(int local_ranks) {
  const int cores = usable_cores();
  if (const std::optional<int> threads = rank_thread_count(cores, local_ranks, std::getenv("OMP_NUM_THREADS"))) {
    at::set_num_threads(*threads);
    log::info("CPU threads per rank: ", *threads, " (", cores, " cores, ", local_ranks,
              " ranks on this node; OMP_NUM_THREADS overrides)");
  }
}

}  // namespace albion::launch
