// File: kernels/common/segment_sums.cuh
// The second step of a column sum done in row segments: out[c] = sum over s of
// partials[s * cols + c], in segment order (deterministic). One thread per column; launch with
// ceil(cols / kSegmentSumThreads) blocks of kSegmentSumThreads from the .cu file that owns the
// first step (launches stay in .cu files, where the CPU emulation's translator sees them).
#pragma once

#include <cstdint>

namespace albion::kernels {

constexpr int kSegmentSumThreads = 256;

// A template, so that every .cu file that launches it may define it.
template <typename Unused = void>
__global__ void add_segments_kernel(const float* __restrict__ partials, std::int64_t segments, std::int64_t cols,
                                    float* __restrict__ out) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= cols) return;
  float sum = 0.0f;
  for (std::int64_t s = 0; s < segments; ++s) sum += partials[s * cols + c];
  out[c] = sum;
}

inline unsigned segment_sum_blocks(std::int64_t cols) {
  return static_cast<unsigned>((cols + kSegmentSumThreads - 1) / kSegmentSumThreads);
}

}  // namespace albion::kernels
