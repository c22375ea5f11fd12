// File: kernels/emulation/launch_counts.h
// How many grids of each kernel the CPU emulation (cuda_emulation.h) has run in this process, so
// that a test can tell a fused path that ran from one that silently fell back to torch's ops.
#pragma once

#include <cstdint>
#include <string_view>

namespace albion::emulation {

// Launches of `kernel` (its name without template arguments, as in "rmsnorm_forward_kernel").
std::int64_t launches(std::string_view kernel);

}  // namespace albion::emulation
