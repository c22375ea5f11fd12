// File: tests/kernels/relative_error.h
// The largest element-wise relative error of `actual` against `expected` (on the CPU, in fp64;
// 1e-6 in the denominator keeps elements near zero from dominating).
#pragma once

#include <ATen/ATen.h>

namespace albion::kernels {

inline double max_relative_error(const at::Tensor& actual, const at::Tensor& expected) {
  if (expected.numel() == 0) return 0;
  at::Tensor a = actual.to(at::kDouble).cpu();
  at::Tensor e = expected.to(at::kDouble).cpu();
  return ((a - e).abs() / (e.abs() + 1e-6)).max().item<double>();
}

}  // namespace albion::kernels
