// File: kernels/common/tensor_checks.h
// Boundary checks for the torch layer of each kernel: device, dtype, shape and layout are checked
// here, with the expected value in the message, before a plain params struct goes to a launcher.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "kernels/common/dtype.h"

namespace albion::kernels {

// fp32 -> kFloat32, bf16 -> kBFloat16; anything else is a usage error naming `what`.
DType kernel_dtype(const at::Tensor& tensor, const char* what);

// Throws unless `tensor` is contiguous (our kernels index rows directly).
void check_contiguous(const at::Tensor& tensor, const char* what);

// Throws unless `tensor` is contiguous, with `like`'s shape, device and dtype (a gradient of the
// same tensor from another reader).
void check_contiguous_like(const at::Tensor& tensor, const at::Tensor& like, const char* what);

// Throws unless `a` and `b` live on the same device and have the same dtype.
void check_same_device_and_dtype(const at::Tensor& a, const at::Tensor& b, const char* what_a,
                                 const char* what_b);

// Throws if `output` shares some, but not all, of `input`'s memory (in place is fine; a shifted
// view would race between threads on the GPU).
void check_same_or_disjoint(const at::Tensor& output, const at::Tensor& input, const char* what);

// For tensors a kernel wrote through a raw pointer: bumps the autograd version counter, as torch's
// own in-place ops do, so that backward refuses a saved tensor changed since instead of silently
// using the new values.
void mark_written_in_place(const at::Tensor& tensor);

}  // namespace albion::kernels
