// File: kernels/cross_entropy/softmax_cross_entropy.h
// Softmax cross-entropy of [rows, vocab] logits with the gradient written over the logits, one
// call for CPU and CUDA tensors: CUDA (fp32, bf16) runs softmax_cross_entropy.cu on the current
// stream, CPU (fp32, bf16, fp64) the reference. softmax_cross_entropy.cuh has the formulas.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace albion::kernels {

// logits [rows, vocab] contiguous; targets [rows] int64 on the same device. Returns the per-row
// losses (fp32; fp64 for fp64 logits; 0 for ignored rows). With `write_gradient`, logits now hold
// d(sum of losses)/d(logits) = softmax - one_hot (zero rows where ignored). `blocks`: the kernel's
// grid, 0 to let softmax_cross_entropy_blocks choose for the GPU (a block per row elsewhere); tests
// and the benchmark set it to compare schedules. The CPU reference ignores it.
at::Tensor softmax_cross_entropy_(at::Tensor& logits, const at::Tensor& targets, std::int64_t ignore_index,
                                  bool write_gradient, std::int64_t blocks = 0);

}  // namespace albion::kernels
