// File: tests/kernels/poison.h
// Outputs a kernel allocates internally and forgets to write must not pass by luck: fill `bytes`
// of fresh CUDA memory with NaN and free it, and the caching allocator hands that block to the
// next allocations of similar size on this stream.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <limits>

namespace albion::kernels {

inline void poison_cuda_allocator(std::int64_t bytes) {
  at::full({std::max<std::int64_t>(bytes / 4, 1)}, std::numeric_limits<float>::quiet_NaN(),
           at::TensorOptions().device(at::kCUDA));
}

}  // namespace albion::kernels
