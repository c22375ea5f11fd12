// File: kernels/grad_norm/grad_norm.cuh
// The global L2 norm of many tensors (all of a model's gradients) in two launches instead of one
// norm kernel per tensor plus a stack and a sum: the squared norm, accumulated in fp32 within
// chunks of 64Ki elements and in fp64 across chunks, in a fixed order, so the result is
// deterministic run to run.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/common/dtype.h"

namespace albion::kernels {

struct NormTensor {
  const void* data = nullptr;  // numel elements of dtype, contiguous
  std::int64_t numel = 0;
  DType dtype = DType::kFloat32;
};

// The launch's chunk table, built on the host; the torch layer copies it to device memory
// (kernels/common/device_table.h) and provides one double of partials per chunk.
std::vector<std::byte> squared_norm_chunk_table(const std::vector<NormTensor>& tensors);
std::int64_t squared_norm_chunks(std::size_t table_bytes);

// Writes the sum of squares of every element of every tensor to `*out` (one double). All
// pointers on the current device; `stream` orders the launches. Needs at least one chunk.
void launch_squared_norm(const void* device_table, std::size_t table_bytes, double* partials, double* out,
                         cudaStream_t stream);

// CPU reference: the same sum, accumulated in fp64.
double squared_norm_reference(const std::vector<NormTensor>& tensors);

}  // namespace albion::kernels
