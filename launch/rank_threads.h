// File: launch/rank_threads.h
// How many threads torch's CPU operators use on each rank. mpirun starts ranks unbound (a rank's
// threads pick their cores), and torch defaults to one thread per core in every rank, so N ranks
// on a node would run N threads per core and spin against each other at every collective: on two
// cores, a tensor-parallel run (collectives inside every layer) took 13x to 20x as long. Unless the user
// set OMP_NUM_THREADS, each rank takes its share of the cores it may run on, as torchrun does.
#pragma once

#include <optional>

namespace albion::launch {

// The intra-op thread count for one of `local_ranks` ranks sharing `usable_cores`, or nothing when
// `omp_num_threads` (the environment variable's value, null if unset) already decides.
std::optional<int> rank_thread_count(int usable_cores, int local_ranks, const char* omp_num_threads);

// Sets torch's intra-op threads for this rank as above and logs the choice.
void share_cores_among_local_ranks(int local_ranks);

}  // namespace albion::launch
