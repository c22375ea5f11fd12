// File: kernels/adamw/fused_adamw.h
// One AdamW step over many tensors, for the optimizer: CUDA tensors go through one multi-tensor
// launch (fused_adamw.cu), CPU tensors through the reference. All fp32 (but the optional bf16
// copies), contiguous, on one device.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "kernels/adamw/fused_adamw.cuh"

namespace albion::kernels {

struct AdamWOperand {
  at::Tensor parameter;   // updated in place
  at::Tensor gradient;
  at::Tensor exp_avg;     // updated in place
  at::Tensor exp_avg_sq;  // updated in place
  bool decayed = true;
  at::Tensor bf16_copy;   // optional: bf16, parameter's size, written with the updated values
};

void fused_adamw_step(const std::vector<AdamWOperand>& operands, const AdamWHyper& hyper);

}  // namespace albion::kernels
