// File: kernels/rmsnorm/rmsnorm.cuh
// RMSNorm over the last dimension: y = x / sqrt(mean(x^2) + eps) * weight.
// Layout: `rows` contiguous rows of `cols` elements; weight has `cols` elements; x, weight and y
// share one dtype (fp32 or bf16); statistics accumulate in fp32. `inv_rms` (optional, fp32, one per
// row) keeps 1/rms for the backward pass.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/common/dtype.h"

namespace albion::kernels {

struct RmsNormForwardParams {
  const void* input = nullptr;
  const void* weight = nullptr;
  void* output = nullptr;
  float* inv_rms = nullptr;  // may be null
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  float eps = 1e-6f;
  DType dtype = DType::kFloat32;
};

void launch_rmsnorm_forward(const RmsNormForwardParams& params, cudaStream_t stream);

// CPU reference: plain loops, fp32 inputs, fp32 accumulation. The torch layer upcasts bf16 inputs
// to fp32 before calling it, so GPU results are compared against the same rounded inputs.
void rmsnorm_forward_reference(const float* input, const float* weight, float* output,
                               float* inv_rms, std::int64_t rows, std::int64_t cols, float eps);

}  // namespace albion::kernels
