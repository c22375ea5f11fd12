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
// d(sum of losses)/d(logits) = softmax - one_hot (zero rows where ignored). `blocks` = 0 runs rows
// that fit a cluster's registers there (Note [A row held in a cluster's registers]) and longer
// ones in the looping kernel on the grid softmax_cross_entropy_blocks chooses for the GPU (a block
// per row on the emulator); `blocks` > 0 runs the looping kernel on that grid, which tests and the
// benchmark use to compare the kernels. The CPU reference ignores it.
at::Tensor softmax_cross_entropy_(at::Tensor& logits, const at::Tensor& targets, std::int64_t ignore_index,
                                  bool write_gradient, std::int64_t blocks = 0);

}  // namespace albion::kernels
