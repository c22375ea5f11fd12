// File: kernels/rope/rope.cuh
// Rotary position embedding in Hugging Face's "rotate_half" layout, on activations laid out
// [batch, seq, heads, head_dim] (the projection's output viewed as heads, before the transpose to
// [batch, heads, seq, head_dim]): element pair (i, i + d/2) of the head at position t turns by
// angle t * inv_freq[i]:
//   out[i]       = x[i] cos - x[i + d/2] sin
//   out[i + d/2] = x[i + d/2] cos + x[i] sin
// The backward is the same rotation by the opposite angle (sin -> -sin). cos/sin come from the
// model's tables [max_seq, head_dim] (each frequency twice, HF style); only the first half of each
// row is read. fp32 or bf16 activations, fp32 tables and arithmetic.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/common/dtype.h"

namespace albion::kernels {

struct RopeParams {
  const void* input = nullptr;
  void* output = nullptr;          // may equal input (in place)
  const float* cos = nullptr;      // [>= seq, head_dim]
  const float* sin = nullptr;
  std::int64_t batch = 0;
  std::int64_t seq = 0;
  std::int64_t heads = 0;
  std::int64_t head_dim = 0;       // even
  float direction = 1.0f;          // +1 forward, -1 backward
  DType dtype = DType::kFloat32;
};

void launch_rope(const RopeParams& params, cudaStream_t stream);

// CPU reference, T = float or double (tables in T too).
template <typename T>
void rope_reference(const T* input, T* output, const T* cos, const T* sin, std::int64_t batch, std::int64_t seq,
                    std::int64_t heads, std::int64_t head_dim, T direction);

}  // namespace albion::kernels
