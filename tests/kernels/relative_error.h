// File: tests/kernels/relative_error.h
// Error measures of a kernel's output against its reference, on the CPU in fp64, and the exact
// comparison for outputs that must match bit for bit.

// The largest element-wise relative error (1e-6 in the denominator keeps elements near zero from
// dominating).
#pragma once

#include <ATen/ATen.h>

namespace albion::kernels {

inline double max_relative_error(const at::Tensor& actual, const at::Tensor& expected) {
  if (expected.numel() == 0) return 0;
  at::Tensor a = actual.to(at::kDouble).cpu();
  at::Tensor e = expected.to(at::kDouble).cpu();
  return ((a - e).abs() / (e.abs() + 1e-6)).max().item<double>();
}

// The largest absolute error over the largest |expected|: for outputs that cancel to near zero
// in places (rotations, derivatives with roots), where element-wise relative error is meaningless.
inline double max_error_relative_to_scale(const at::Tensor& actual, const at::Tensor& expected) {
  if (expected.numel() == 0) return 0;
  at::Tensor a = actual.to(at::kDouble).cpu();
  at::Tensor e = expected.to(at::kDouble).cpu();
  return ((a - e).abs().max() / e.abs().max().clamp_min(1e-300)).item<double>();
}

// Whether two tensors hold the same dtype, shape and bits (on any devices).
inline bool same_bits(const at::Tensor& a, const at::Tensor& b) {
  return a.scalar_type() == b.scalar_type() && a.sizes() == b.sizes() && at::equal(a.cpu(), b.cpu());
}

}  // namespace albion::kernels
