// File: collectives/self_test.h
// A collective self-test every rank runs together (`albion doctor --collectives`, the README's
// smoke run, tests/collectives). Inputs are small integers stored as floats, so the sum is exact
// in any reduction order and results are checked bit for bit (the nccl-tests "verifiable" idea).
#pragma once

#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace albion::collectives {

struct SelfTestResult {
  std::int64_t elements = 0;
  double seconds = 0;
  double bus_bandwidth_gbps = 0;  // all-reduce bus bandwidth: bytes * 2(n-1)/n / time
  std::int64_t mismatches = 0;    // elements that differ from the exact sum, over all ranks
};

// All-reduces `elements` floats over `comm` with MPI and checks every element on every rank.
// Collective: every rank in `comm` must call it with the same `elements`.
SelfTestResult run_allreduce_self_test(MPI_Comm comm, std::int64_t elements);

}  // namespace albion::collectives
