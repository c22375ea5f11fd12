// File: collectives/self_test.cpp
#include "collectives/self_test.h"

#include <limits>

#include "collectives/mpi_check.h"
#include "runtime/base/check.h"

namespace albion::collectives {
namespace {

// Small integers, distinct per rank and element; their sum over any number of ranks up to a few
// thousand stays below 2^24, so fp32 holds every partial sum exactly.
float input_value(int rank, std::int64_t index) {
  return static_cast<float>((rank * 7 + index * 13) % 251);
}

}  // namespace

SelfTestResult run_allreduce_self_test(MPI_Comm comm, std::int64_t elements) {
  int rank = 0;
  int size = 1;
  ALBION_MPI_CHECK(MPI_Comm_rank(comm, &rank));
  ALBION_MPI_CHECK(MPI_Comm_size(comm, &size));
  ALBION_CHECK(elements >= 0 && elements <= std::numeric_limits<int>::max(),
               "self-test size ", elements, " out of range");

  std::vector<float> buffer(static_cast<std::size_t>(elements));
  for (std::int64_t i = 0; i < elements; ++i) buffer[i] = input_value(rank, i);

  ALBION_MPI_CHECK(MPI_Barrier(comm));
  const double start = MPI_Wtime();
  ALBION_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buffer.data(), static_cast<int>(elements), MPI_FLOAT,
                                 MPI_SUM, comm));
  const double seconds = MPI_Wtime() - start;

  std::int64_t local_mismatches = 0;
  for (std::int64_t i = 0; i < elements; ++i) {
    float expected = 0.0f;
    for (int r = 0; r < size; ++r) expected += input_value(r, i);
    if (buffer[i] != expected) ++local_mismatches;
  }

  SelfTestResult result;
  result.elements = elements;
  ALBION_MPI_CHECK(MPI_Allreduce(&local_mismatches, &result.mismatches, 1, MPI_INT64_T, MPI_SUM, comm));
  ALBION_MPI_CHECK(MPI_Allreduce(&seconds, &result.seconds, 1, MPI_DOUBLE, MPI_MAX, comm));
  const double bytes = static_cast<double>(elements) * sizeof(float);
  if (result.seconds > 0 && size > 1) {
    result.bus_bandwidth_gbps = bytes * 2.0 * (size - 1) / size / result.seconds / 1e9;
  }
  return result;
}

}  // namespace albion::collectives
