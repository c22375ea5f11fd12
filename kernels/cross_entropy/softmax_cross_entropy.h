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

// The two halves of the above for a vocabulary cut over ranks, whose row statistics span every
// rank's columns (runtime/models/tensor_parallel.cpp). Each row's logsumexp over these columns
// (fp32; fp64 for fp64 logits), the logits only read; rows whose target is ignore_index are not
// read and get 0, any other target is not looked at. `blocks` as above.
at::Tensor softmax_logsumexp(const at::Tensor& logits, const at::Tensor& targets, std::int64_t ignore_index,
                             std::int64_t blocks = 0);

// logits[r, j] <- exp(logits[r, j] - lse[r]) - (j == targets[r]), lse [rows] the whole row's
// logsumexp (fp32, or the logits' dtype): a target outside [0, vocab) is another rank's column (no
// one-hot here), and lse[r] = +inf makes row r zero (an ignored row).
void softmax_gradient_(at::Tensor& logits, const at::Tensor& targets, const at::Tensor& lse);

}  // namespace albion::kernels
