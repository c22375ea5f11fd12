// File: kernels/emulation/schedule.h
// The order in which the CPU emulation of our CUDA kernels (cuda_emulation.h) runs a block's
// threads between sync points, and the grid's blocks. Tests run each kernel under several orders:
// code that needs a barrier it lacks, or assumes a warp runs in lockstep, then disagrees with itself.
#pragma once

#include <cstdint>

namespace albion::emulation {

enum class Schedule { kForward, kReverse, kShuffled };

// Applies to later launches from the calling thread; kShuffled draws a new order for every round
// of turns (and for the blocks) from a generator seeded with `seed`.
void set_schedule(Schedule schedule, std::uint64_t seed = 0);

}  // namespace albion::emulation
