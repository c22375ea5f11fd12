// File: kernels/common/product_into.h
// A matrix product written into a tensor that already exists, in that tensor's dtype: the fused LM
// head's gradients and the weight gradients accumulated in place (kernels/linear/).
#pragma once

#include <ATen/ATen.h>

namespace albion::kernels {

// out = a b, or out += a b with `accumulate`, in out's dtype and without a temporary: directly
// when the dtypes agree, and on CUDA also for bf16/fp16 operands into fp32 (cuBLAS accumulates in
// fp32 and writes fp32, so autocast's products reach the fp32 gradients unrounded); otherwise
// through a product in the operands' dtype.
void product_into(at::Tensor out, const at::Tensor& a, const at::Tensor& b, bool accumulate);

}  // namespace albion::kernels
