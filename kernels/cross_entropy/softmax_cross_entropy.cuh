// File: kernels/cross_entropy/softmax_cross_entropy.cuh
// Softmax cross-entropy of a block of logits rows, with the gradient written over the logits in
// the same pass (the LM head's loss: linear_cross_entropy.cpp runs it chunk by chunk). Per row r
// with target t (rows whose target is ignore_index: loss 0, gradient 0):
//   loss[r]      = logsumexp(x[r, :]) - x[r, t]
//   x[r, j]     <- softmax(x[r, :])[j] - (j == t)          (when write_gradient)
// One block per row: an online max/sum pass, then a pass that writes the gradient, last packs
// first (those are the likeliest still in L2; at 128,256 entries the rows of all resident blocks
// outgrow L2, so part of the second read comes from memory). NaN anywhere in a row reaches its
// loss and its whole gradient row. fp32 or bf16 logits, fp32 arithmetic, 16-byte packs inside each row
// (rows need not start 16-byte aligned: vocabularies like GPT-2's 50,257 are odd).
// A target outside [0, vocab) that is not ignore_index gives a NaN loss and a NaN gradient row
// (a kernel cannot throw; the CPU path refuses it).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/common/dtype.h"

namespace albion::kernels {

struct SoftmaxCrossEntropyParams {
  void* logits = nullptr;                // [rows, vocab], contiguous
  const std::int64_t* targets = nullptr;  // [rows]
  float* losses = nullptr;               // [rows]
  std::int64_t rows = 0;
  std::int64_t vocab = 0;
  std::int64_t ignore_index = -100;
  bool write_gradient = true;
  DType dtype = DType::kFloat32;
};

void launch_softmax_cross_entropy(const SoftmaxCrossEntropyParams& params, cudaStream_t stream);

// CPU reference: plain loops in T (float, or double for finite-difference tests), sums in double.
// Throws UsageError for a target outside [0, vocab) that is not ignore_index.
template <typename T>
void softmax_cross_entropy_reference(T* logits, const std::int64_t* targets, T* losses, std::int64_t rows,
                                     std::int64_t vocab, std::int64_t ignore_index, bool write_gradient);

}  // namespace albion::kernels
