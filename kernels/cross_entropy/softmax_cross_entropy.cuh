// File: kernels/cross_entropy/softmax_cross_entropy.cuh
// Softmax cross-entropy of a block of logits rows, with the gradient written over the logits in
// the same pass (the LM head's loss: linear_cross_entropy.cpp runs it chunk by chunk). Per row r
// with target t (rows whose target is ignore_index: loss 0, gradient 0):
//   loss[r]      = logsumexp(x[r, :]) - x[r, t]
//   x[r, j]     <- softmax(x[r, :])[j] - (j == t)          (when write_gradient)
// A block takes a row at a time: an online max/sum pass, then a pass that writes the gradient,
// last packs first (those were read last, so they are the likeliest still in L2). NaN anywhere in
// a row reaches its loss and its whole gradient row. fp32 or bf16 logits, fp32 arithmetic, 16-byte
// packs inside each row (rows need not start 16-byte aligned: vocabularies like GPT-2's 50,257 are
// odd).
// A target outside [0, vocab) that is not ignore_index gives a NaN loss and a NaN gradient row
// (a kernel cannot throw; the CPU path refuses it).
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
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
  std::int64_t blocks = 0;  // the grid: 0 for a block per row (softmax_cross_entropy_blocks)
};

// The grid for `rows` rows of `row_bytes` on a GPU with `multiprocessors`, each holding
// `resident_blocks` of this kernel (softmax_cross_entropy_resident_blocks), and an L2 of
// `l2_bytes`. A block per row keeps as many rows in flight as the GPU holds blocks. While those
// rows fit in half of L2, the gradient pass re-reads each row from L2. Past that (GPT-2's
// vocabulary in fp32, Llama 3's in bf16) much of the second read would come from memory, up to a
// third more traffic; then a grid of fewer blocks per multiprocessor (halving down to one) takes
// the rows in turn. Where even one per multiprocessor outgrows half of L2 (GPT-2's vocabulary in
// fp32 on an H100, Llama 3's), a block per row again: on an H200 at 4,096 x 128,256, one block per
// multiprocessor ran at 56% (bf16) and 59% (fp32) of the copy bandwidth, a block per row at 65%
// and 67%; too few threads in flight cost more than the second read's misses.
inline std::int64_t softmax_cross_entropy_blocks(std::int64_t rows, std::int64_t row_bytes, int multiprocessors,
                                                 int resident_blocks, std::int64_t l2_bytes) {
  if (multiprocessors <= 0 || resident_blocks <= 0) return rows;
  const auto fits = [&](std::int64_t per_multiprocessor) {
    return per_multiprocessor * multiprocessors * row_bytes <= l2_bytes / 2;
  };
  std::int64_t per_multiprocessor = resident_blocks;
  while (per_multiprocessor > 1 && !fits(per_multiprocessor)) per_multiprocessor /= 2;
  if (per_multiprocessor == resident_blocks || !fits(per_multiprocessor)) return rows;
  return std::min<std::int64_t>(rows, per_multiprocessor * multiprocessors);
}

// Blocks of the kernel for `dtype` that one multiprocessor of the current GPU holds at once.
int softmax_cross_entropy_resident_blocks(DType dtype);

void launch_softmax_cross_entropy(const SoftmaxCrossEntropyParams& params, cudaStream_t stream);

// CPU reference: plain loops in T (float, or double for finite-difference tests), sums in double.
// Throws UsageError for a target outside [0, vocab) that is not ignore_index.
template <typename T>
void softmax_cross_entropy_reference(T* logits, const std::int64_t* targets, T* losses, std::int64_t rows,
                                     std::int64_t vocab, std::int64_t ignore_index, bool write_gradient);

}  // namespace albion::kernels
