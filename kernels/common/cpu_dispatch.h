// File: kernels/common/cpu_dispatch.h
// The CPU references run in double for fp64 tensors (finite-difference tests) and in float for
// everything else (bf16 is upcast, so a GPU result is compared against the same rounded inputs):
//
//   with_reference_type(input, [&](auto tag) { using T = decltype(tag); ... });
#pragma once

#include <ATen/ATen.h>

namespace albion::kernels {

template <typename Run>
void with_reference_type(const at::Tensor& input, Run run) {
  if (input.scalar_type() == at::kDouble) run(double{});
  else run(float{});
}

// fp64 statistics for fp64 inputs, fp32 otherwise.
inline at::ScalarType statistics_type(const at::Tensor& input) {
  return input.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

}  // namespace albion::kernels
