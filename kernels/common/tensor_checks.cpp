// File: kernels/common/tensor_checks.cpp
#include "kernels/common/tensor_checks.h"

#include <ATen/MemoryOverlap.h>
#include <torch/csrc/autograd/variable.h>

#include "runtime/base/check.h"

namespace albion::kernels {

DType kernel_dtype(const at::Tensor& tensor, const char* what) {
  switch (tensor.scalar_type()) {
    case at::kFloat: return DType::kFloat32;
    case at::kBFloat16: return DType::kBFloat16;
    default:
      throw UsageError(str_cat(what, ": dtype ", tensor.scalar_type(),
                               " is not supported (expected float32 or bfloat16)"));
  }
}

void check_contiguous(const at::Tensor& tensor, const char* what) {
  ALBION_CHECK_AS(UsageError, tensor.is_contiguous(), what, ": expected a contiguous tensor, got strides ",
                  tensor.strides(), " for sizes ", tensor.sizes());
}

void check_contiguous_like(const at::Tensor& tensor, const at::Tensor& like, const char* what) {
  ALBION_CHECK_AS(UsageError,
                  tensor.sizes() == like.sizes() && tensor.device() == like.device() &&
                      tensor.scalar_type() == like.scalar_type() && tensor.is_contiguous(),
                  what, " (", tensor.scalar_type(), " ", tensor.sizes(), " on ", tensor.device(),
                  ") must be contiguous, ", like.scalar_type(), " ", like.sizes(), " on ", like.device());
}

void check_same_device_and_dtype(const at::Tensor& a, const at::Tensor& b, const char* what_a,
                                 const char* what_b) {
  ALBION_CHECK_AS(UsageError, a.device() == b.device(), what_a, " is on ", a.device(), " but ",
                  what_b, " is on ", b.device());
  ALBION_CHECK_AS(UsageError, a.scalar_type() == b.scalar_type(), what_a, " is ", a.scalar_type(),
                  " but ", what_b, " is ", b.scalar_type());
}

void check_same_or_disjoint(const at::Tensor& output, const at::Tensor& input, const char* what) {
  ALBION_CHECK_AS(UsageError, at::get_overlap_status(output, input) != at::MemOverlapStatus::Partial, what,
                  ": the output partly overlaps the input (use the same tensor, or separate memory)");
}

void mark_written_in_place(const at::Tensor& tensor) {
  if (tensor.defined()) torch::autograd::impl::bump_version(tensor);
}

}  // namespace albion::kernels
