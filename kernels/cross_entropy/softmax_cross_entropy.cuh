// File: kernels/cross_entropy/softmax_cross_entropy.cuh
// Softmax cross-entropy of a block of logits rows, with the gradient written over the logits in
// the same pass (the LM head's loss: linear_cross_entropy.cpp runs it chunk by chunk). Per row r
// with target t (rows whose target is ignore_index: loss 0, gradient 0):
//   loss[r]      = logsumexp(x[r, :]) - x[r, t]
//   x[r, j]     <- softmax(x[r, :])[j] - (j == t)          (when write_gradient)
// Two kernels. Rows of up to kMaxRowCluster x kClusterRowThreads x kClusterRowElements entries
// (131,072) are held in registers by a cluster of blocks (Note [A row held in a cluster's registers]): one read and
// one write of each row. Longer rows, and launches that ask for `blocks`, run the looping kernel: a
// block takes a row at a time, an online max/sum pass, then a pass that writes the gradient,
// last packs first (those were read last, so they are the likeliest still in L2). NaN anywhere in
// a row reaches its loss and its whole gradient row. fp32 or bf16 logits, fp32 arithmetic, 16-byte
// packs inside each row (rows need not start 16-byte aligned: vocabularies like GPT-2's 50,257 are
// odd).
// A target outside [0, vocab) that is not ignore_index gives a NaN loss and a NaN gradient row
// (a kernel cannot throw; the CPU path refuses it).
// The same kernels also run the two halves of a vocabulary cut over ranks (Note [A softmax over
// every rank's columns] in runtime/models/tensor_parallel.cpp), whose row statistics span every
// rank's columns:
//   write_lse:  lse[r] = logsumexp(x[r, :]) over this rank's columns, read once (no target)
//   lse given:  x[r, j] <- exp(x[r, j] - lse[r]) - (j == t), lse[r] the whole row's; t outside
//               [0, vocab) is another rank's column (no one-hot here), and lse[r] = +inf zeroes
//               the row; no statistics, one read and one write.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>

#include "kernels/common/dtype.h"

namespace albion::kernels {

struct SoftmaxCrossEntropyParams {
  void* logits = nullptr;                // [rows, vocab], contiguous
  const std::int64_t* targets = nullptr;  // [rows]
  float* losses = nullptr;               // [rows]: the losses, or with write_lse the logsumexps
  std::int64_t rows = 0;
  std::int64_t vocab = 0;
  std::int64_t ignore_index = -100;
  bool write_gradient = true;
  DType dtype = DType::kFloat32;
  std::int64_t blocks = 0;  // the looping kernel's grid: 0 for a block per row (softmax_cross_entropy_blocks)
  int cluster = 0;          // > 0: the register-row kernel, with this many blocks per row (1, 2, 4 or 8)
  bool write_lse = false;      // losses get each row's logsumexp (0 where ignored); no gradient
  const float* lse = nullptr;  // [rows] given: only the gradient, with these (the looping kernel)
};

// Note [A row held in a cluster's registers]
// The looping kernel reads each row twice: once for its max and sum, once more to write the
// gradient. A row of Llama 3's 128,256-entry vocabulary (256 KB in bf16) outgrows a
// multiprocessor's shared memory, and the rows a GPU keeps in flight outgrow L2, so the second
// read comes from memory: 3 passes where 2 would do, 65% of the copy bandwidth on an H200 for
// forward and gradient together, against a ceiling of 67%. A thread-block cluster (sm_90 and
// later) holds the whole row instead: each of its blocks loads its share of the row's packs into
// registers in one burst, reduces them to a running max and sum, and the blocks combine their
// totals through each other's shared memory (kernels/common/cluster.cuh) in rank order, so every
// block gets the same bits. Each writes its share of the gradient from its registers. Pack q of
// the row lives in slot q / (cluster x threads) of thread q % threads of block rank
// q / threads % cluster: each block's warps read and write contiguous spans. A thread holds 32
// entries in either dtype (8 packs of fp32, 4 of bf16; at 8 bf16 packs nvcc 13 spilled on sm_90),
// and the kernel is built for two blocks per multiprocessor (64 registers), so one block's loads
// overlap another's reduction. Llama 3's row takes 8 blocks of 512 threads, GPT-2's padded 50,304
// entries 4.
constexpr int kClusterRowElements = 32;  // per thread
constexpr int kClusterRowThreads = 512;  // the most threads per block
constexpr int kMaxRowCluster = 8;        // the portable cluster size

// Blocks per row for the register-row kernel with rows of `vocab` entries: the smallest power of
// two whose registers hold the row, or 0 where 8 blocks would not.
inline int softmax_cross_entropy_cluster(std::int64_t vocab) {
  for (int cluster = 1; cluster <= kMaxRowCluster; cluster *= 2) {
    if (vocab <= std::int64_t{cluster} * kClusterRowThreads * kClusterRowElements) return cluster;
  }
  return 0;
}

// Whether the current GPU launches the register-row kernel in clusters of `cluster` blocks for
// `dtype` (asked once per device): sm_90 and later, with room for a cluster on the device.
bool softmax_cross_entropy_clusters_fit(DType dtype, int cluster);

// The looping kernel's grid (rows of over 131,072 entries, such as Qwen2.5's 151,936, or a launch
// that asks for it) for `rows` rows of `row_bytes` on a GPU with `multiprocessors`, each holding
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

// CPU references of the two halves (write_lse, lse given), as above.
template <typename T>
void softmax_logsumexp_reference(const T* logits, const std::int64_t* targets, T* lse, std::int64_t rows,
                                 std::int64_t vocab, std::int64_t ignore_index);
template <typename T>
void softmax_gradient_reference(T* logits, const std::int64_t* targets, const T* lse, std::int64_t rows,
                                std::int64_t vocab);

}  // namespace albion::kernels
