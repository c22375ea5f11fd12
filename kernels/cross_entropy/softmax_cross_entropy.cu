// File: kernels/cross_entropy/softmax_cross_entropy.cu
// Softmax cross-entropy with the gradient written in place: rows held in a cluster's registers,
// or a block per row at a time (softmax_cross_entropy.cuh). Reference:
// softmax_cross_entropy_ref.cpp. Tests: tests/kernels/softmax_cross_entropy_test.cpp, and on the
// CPU emulator tests/kernels/emulated/softmax_cross_entropy_emulated_test.cpp.
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <tuple>
#include <utility>

#include "kernels/common/block_reduce.cuh"
#include "kernels/common/cluster.cuh"
#include "kernels/common/cuda_check.h"
#include "kernels/common/resident_blocks.cuh"
#include "kernels/cross_entropy/softmax_cross_entropy.cuh"
#include "runtime/base/check.h"

namespace albion::kernels {
namespace {

constexpr int kThreads = 512;

// A running softmax denominator: sum of exp(x - max) over the elements seen so far.
struct MaxSum {
  float max;
  float sum;
};

// One exponential per merge; NaN anywhere reaches the sum.
__device__ __forceinline__ MaxSum combine(MaxSum a, MaxSum b) {
  if (a.max < b.max) {
    const MaxSum larger = b;
    b = a;
    a = larger;
  }
  // b.max == -inf: b saw nothing, only -inf (sum 0), or a NaN before any finite value (sum NaN,
  // which must survive: the NaN is in no max).
  if (b.max == -INFINITY) return {a.max, isnan(b.sum) ? b.sum : a.sum};
  return {a.max, a.sum + b.sum * __expf(b.max - a.max)};
}

__device__ __forceinline__ void add(MaxSum& acc, float x) { acc = combine(acc, MaxSum{x, 1.0f}); }

// A row split into an unaligned head, 16-byte packs and a tail.
template <typename T, int kVec>
struct RowSplit {
  std::int64_t head;   // scalar elements before the first 16-byte boundary
  std::int64_t packs;  // whole packs after it
  std::int64_t tail;   // index of the first element after the packs

  __device__ RowSplit(const T* row, std::int64_t n) {
    const auto misalignment = static_cast<std::int64_t>(reinterpret_cast<std::uintptr_t>(row) % 16);
    head = misalignment == 0 ? 0 : min(n, (16 - misalignment) / static_cast<std::int64_t>(sizeof(T)));
    packs = (n - head) / kVec;
    tail = head + packs * kVec;
  }
};

// Entry k of `pack` in fp32. kFromWords: read from the pack's 32-bit words (a bf16 is the top
// half of its fp32), so ptxas keeps a bf16 pack live as its 4 words, not as 8 16-bit pieces in a
// register each (which spilled the cluster kernel's row on sm_90). The looping kernels keep
// to_float: their packs do not stay live, and the word reads took the loss kernel from 48 to 60
// registers.
template <bool kFromWords, typename P>
__device__ __forceinline__ float entry(const P& pack, int k) {
  if constexpr (kFromWords && sizeof(pack.values[0]) == 2) {
    const unsigned word = reinterpret_cast<const unsigned*>(&pack)[k / 2];
    return __uint_as_float(k % 2 == 0 ? word << 16 : word & 0xffff0000u);
  } else {
    return to_float(pack.values[k]);
  }
}

// Max and running sum of a batch of packs: one max over the batch, then exponentials that do not
// wait on each other, summed per pack (a combine per pack chained an __expf and a branch through
// every pack: the bf16 forward, with twice fp32's elements per byte, ran at 56% of the copy
// bandwidth on an H200). A batch of NaNs and -infs keeps its NaN (fmaxf skips NaN).
template <bool kFromWords = false, typename P, int kPacks>
__device__ __forceinline__ MaxSum batch_max_sum(const P (&batch)[kPacks]) {
  constexpr int kEntries = static_cast<int>(sizeof(P::values) / sizeof(P::values[0]));
  MaxSum local{-INFINITY, 0.0f};
#pragma unroll
  for (const P& pack : batch) {
#pragma unroll
    for (int k = 0; k < kEntries; ++k) local.max = fmaxf(local.max, entry<kFromWords>(pack, k));
  }
  if (local.max == -INFINITY) {
#pragma unroll
    for (const P& pack : batch) {
#pragma unroll
      for (int k = 0; k < kEntries; ++k) {
        if (isnan(entry<kFromWords>(pack, k))) local.sum = NAN;
      }
    }
    return local;
  }
  float sums[kPacks] = {};
#pragma unroll
  for (int u = 0; u < kPacks; ++u) {
#pragma unroll
    for (int k = 0; k < kEntries; ++k) sums[u] += __expf(entry<kFromWords>(batch[u], k) - local.max);
  }
#pragma unroll
  for (const float sum : sums) local.sum += sum;
  return local;
}

// The gradient of entry j of a row: softmax - one-hot, NaN where the target is not in the row.
struct RowGradient {
  float lse;
  std::int64_t target;
  float poison;  // 0, or NaN for a target outside the vocabulary

  __device__ __forceinline__ float operator()(std::int64_t j, float x) const {
    return __expf(x - lse) - (j == target ? 1.0f : 0.0f) + poison;
  }
};

// Packs each thread has in flight at once: the loads go out together, then the arithmetic.
constexpr int kPacksInFlight = 4;

// One row, by the whole block. kGivenLse: only the gradient, from `given_lse` (a template
// parameter: the branch took the loss kernel from 48 to 72 registers on sm_90, one block of 512
// threads per multiprocessor where there were two).
template <typename T, int kVec, bool kGivenLse>
__device__ __forceinline__ void softmax_cross_entropy_row(T* __restrict__ row, std::int64_t target,
                                                          float* __restrict__ loss, std::int64_t vocab,
                                                          std::int64_t ignore_index, bool write_gradient,
                                                          bool write_lse, float given_lse) {
  using P = Pack<T, kVec>;
  const std::int64_t stride = blockDim.x;
  const RowSplit<T, kVec> split(row, vocab);
  P* packs = reinterpret_cast<P*>(row + split.head);

  if (!kGivenLse && target == ignore_index) {
    if (threadIdx.x == 0) *loss = 0.0f;
    if (!write_gradient) return;
    const T zero = from_float<T>(0.0f);
    for (std::int64_t j = threadIdx.x; j < vocab; j += stride) row[j] = zero;
    return;
  }
  const bool valid = target >= 0 && target < vocab;
  RowGradient gradient{given_lse, valid ? target : -1, 0.0f};  // another rank's target: no one-hot
  if constexpr (!kGivenLse) {
    MaxSum acc{-INFINITY, 0.0f};
    for (std::int64_t j = threadIdx.x; j < split.head; j += stride) add(acc, to_float(row[j]));
    std::int64_t p = threadIdx.x;
    for (; p + (kPacksInFlight - 1) * stride < split.packs; p += kPacksInFlight * stride) {
      P batch[kPacksInFlight];
#pragma unroll
      for (int u = 0; u < kPacksInFlight; ++u) batch[u] = packs[p + u * stride];
      acc = combine(acc, batch_max_sum(batch));
    }
    for (; p < split.packs; p += stride) {
      const P one[1] = {packs[p]};
      acc = combine(acc, batch_max_sum(one));
    }
    for (std::int64_t j = split.tail + threadIdx.x; j < vocab; j += stride) add(acc, to_float(row[j]));
    // Read before the reduction's barrier, so before any thread starts overwriting the row.
    const float target_logit = valid && !write_lse ? to_float(row[target]) : NAN;
    const MaxSum total =
        block_reduce(acc, MaxSum{-INFINITY, 0.0f}, [](MaxSum a, MaxSum b) { return combine(a, b); });
    const float lse = total.max + logf(total.sum);
    if (threadIdx.x == 0) *loss = write_lse ? lse : lse - target_logit;
    if (!write_gradient) return;
    gradient = RowGradient{lse, target, valid ? 0.0f : NAN};
  }

  const auto rewrite = [&](std::int64_t q, P& pack) {
    const std::int64_t first = split.head + q * kVec;
#pragma unroll
    for (int k = 0; k < kVec; ++k) pack.values[k] = from_float<T>(gradient(first + k, to_float(pack.values[k])));
    packs[q] = pack;
  };
  for (std::int64_t j = threadIdx.x; j < split.head; j += stride) {
    row[j] = from_float<T>(gradient(j, to_float(row[j])));
  }
  // Last packs first: they were read most recently, so they are the likeliest still in L2.
  std::int64_t p = split.packs - 1 - threadIdx.x;
  for (; p - (kPacksInFlight - 1) * stride >= 0; p -= kPacksInFlight * stride) {
    P batch[kPacksInFlight];
#pragma unroll
    for (int u = 0; u < kPacksInFlight; ++u) batch[u] = packs[p - u * stride];
#pragma unroll
    for (int u = 0; u < kPacksInFlight; ++u) rewrite(p - u * stride, batch[u]);
  }
  for (; p >= 0; p -= stride) {
    P pack = packs[p];
    rewrite(p, pack);
  }
  for (std::int64_t j = split.tail + threadIdx.x; j < vocab; j += stride) {
    row[j] = from_float<T>(gradient(j, to_float(row[j])));
  }
}

// Block b takes rows b, b + gridDim.x, ...: one row each when the grid has a block per row.
template <typename T, int kVec, bool kGivenLse>
__global__ void softmax_cross_entropy_kernel(T* __restrict__ logits, const std::int64_t* __restrict__ targets,
                                             float* __restrict__ losses, std::int64_t rows, std::int64_t vocab,
                                             std::int64_t ignore_index, bool write_gradient, bool write_lse,
                                             const float* __restrict__ given_lse) {
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    // With a given logsumexp there are no losses (and no offsets from a null pointer).
    softmax_cross_entropy_row<T, kVec, kGivenLse>(logits + r * vocab, targets[r], kGivenLse ? nullptr : losses + r,
                                                  vocab, ignore_index, write_gradient, write_lse,
                                                  kGivenLse ? given_lse[r] : 0.0f);
  }
}

// One row by the `cluster` blocks of this thread's cluster, held in registers (Note [A row held in
// a cluster's registers]). Every block of the cluster takes every row of the kernel's loop, so they
// all reach the same cluster barriers.
template <typename T, int kVec>
__device__ __forceinline__ void softmax_cross_entropy_row_in_registers(T* __restrict__ row, std::int64_t target,
                                                                       float* __restrict__ loss, std::int64_t vocab,
                                                                       std::int64_t ignore_index, bool write_gradient,
                                                                       bool write_lse, unsigned cluster,
                                                                       unsigned rank) {
  using P = Pack<T, kVec>;
  constexpr int kSlots = kClusterRowElements / kVec;
  const RowSplit<T, kVec> split(row, vocab);
  P* packs = reinterpret_cast<P*>(row + split.head);
  // 32-bit indices within the row (rows are under 2^31 entries): 64-bit ones took the registers
  // of a pack per slot.
  const int row_packs = static_cast<int>(split.packs);
  const int head = static_cast<int>(split.head);
  const int first_pack = static_cast<int>(rank * blockDim.x + threadIdx.x);  // slot s: first_pack + s * stride
  const int stride = static_cast<int>(cluster * blockDim.x);
  // The head's scalars live in block 0, the tail's in the last block, one per thread at most.
  const int head_index = rank == 0 && static_cast<int>(threadIdx.x) < head ? static_cast<int>(threadIdx.x) : -1;
  const int tail_index = rank == cluster - 1 && split.tail + threadIdx.x < vocab
                             ? static_cast<int>(split.tail + threadIdx.x)
                             : -1;

  if (target == ignore_index) {
    if (rank == 0 && threadIdx.x == 0) *loss = 0.0f;
    if (!write_gradient) return;
    P zero;
#pragma unroll
    for (auto& value : zero.values) value = from_float<T>(0.0f);
#pragma unroll
    for (int s = 0; s < kSlots; ++s) {
      if (first_pack + s * stride < row_packs) packs[first_pack + s * stride] = zero;
    }
    if (head_index >= 0) row[head_index] = zero.values[0];
    if (tail_index >= 0) row[tail_index] = zero.values[0];
    return;
  }
  const bool valid = target >= 0 && target < vocab;

  // One burst of loads; slots past the row's end hold -inf, which adds nothing to the sum.
  P slots[kSlots];
  P empty;
#pragma unroll
  for (auto& value : empty.values) value = from_float<T>(-INFINITY);
#pragma unroll
  for (int s = 0; s < kSlots; ++s) {
    slots[s] = first_pack + s * stride < row_packs ? load_pack(packs + first_pack + s * stride) : empty;
  }
  const float head_value = head_index >= 0 ? to_float(row[head_index]) : 0.0f;
  const float tail_value = tail_index >= 0 ? to_float(row[tail_index]) : 0.0f;
  MaxSum acc = batch_max_sum</*kFromWords=*/true>(slots);
  if (head_index >= 0) add(acc, head_value);
  if (tail_index >= 0) add(acc, tail_value);
  // Read before the first barrier, so before any block of the cluster starts overwriting the row.
  const float target_logit = rank == 0 && threadIdx.x == 0 && valid && !write_lse ? to_float(row[target]) : NAN;

  MaxSum total = block_reduce(acc, MaxSum{-INFINITY, 0.0f}, [](MaxSum a, MaxSum b) { return combine(a, b); });
  if (cluster > 1) {
    __shared__ MaxSum block_totals[1];
    __shared__ MaxSum row_totals[1];
    if (threadIdx.x == 0) block_totals[0] = total;
    cluster_sync();
    if (threadIdx.x == 0) {  // in rank order, so every block of the cluster gets the same bits
      MaxSum row_total = *cluster_shared(block_totals, 0);
      for (unsigned r = 1; r < cluster; ++r) row_total = combine(row_total, *cluster_shared(block_totals, r));
      row_totals[0] = row_total;
    }
    // No block goes on (to overwrite its block_totals with the next row's, or to return) while
    // another may still read them; the barrier also shows row_totals to the whole block.
    cluster_sync();
    total = row_totals[0];
  }
  const float lse = total.max + logf(total.sum);
  if (rank == 0 && threadIdx.x == 0) *loss = write_lse ? lse : lse - target_logit;
  if (!write_gradient) return;

  const RowGradient gradient{lse, target, valid ? 0.0f : NAN};
#pragma unroll
  for (int s = 0; s < kSlots; ++s) {
    const int q = first_pack + s * stride;
    if (q >= row_packs) continue;
    const int first = head + q * kVec;
    P pack;
#pragma unroll
    for (int k = 0; k < kVec; ++k) pack.values[k] = from_float<T>(gradient(first + k, entry<true>(slots[s], k)));
    packs[q] = pack;
  }
  if (head_index >= 0) row[head_index] = from_float<T>(gradient(head_index, head_value));
  if (tail_index >= 0) row[tail_index] = from_float<T>(gradient(tail_index, tail_value));
}

// Cluster c (blocks c * cluster .. c * cluster + cluster - 1) takes rows c, c + clusters, ...
template <typename T, int kVec>
__global__ void __launch_bounds__(kClusterRowThreads, 2)
    softmax_cross_entropy_cluster_kernel(T* __restrict__ logits, const std::int64_t* __restrict__ targets,
                                         float* __restrict__ losses, std::int64_t rows, std::int64_t vocab,
                                         std::int64_t ignore_index, bool write_gradient, bool write_lse,
                                         unsigned cluster) {
  const unsigned rank = cluster > 1 ? cluster_rank() : 0;
  for (std::int64_t r = blockIdx.x / cluster; r < rows; r += gridDim.x / cluster) {
    softmax_cross_entropy_row_in_registers<T, kVec>(logits + r * vocab, targets[r], losses + r, vocab, ignore_index,
                                                    write_gradient, write_lse, cluster, rank);
  }
}

template <typename T>
void launch_in_registers(const SoftmaxCrossEntropyParams& p, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  // Threads enough for kClusterRowElements entries each across the cluster's blocks.
  const std::int64_t per_block = (p.vocab + p.cluster - 1) / p.cluster;
  const int threads =
      std::min(kClusterRowThreads, threads_for_row((per_block + kClusterRowElements - 1) / kClusterRowElements));
  ALBION_CHECK(p.vocab <= std::int64_t{p.cluster} * threads * kClusterRowElements, "softmax cross-entropy: rows of ",
               p.vocab, " entries do not fit the registers of ", p.cluster, " blocks");
  // Capped at one grid's limit: beyond it, clusters take several rows each.
  const std::int64_t clusters = std::min<std::int64_t>(p.rows, 0x7fffffff / p.cluster);
  const auto cluster = static_cast<unsigned>(p.cluster);
  launch_in_clusters("softmax_cross_entropy_cluster_kernel", &softmax_cross_entropy_cluster_kernel<T, kVec>,
                     dim3(static_cast<unsigned>(clusters * p.cluster)), dim3(threads), cluster, stream,
                     static_cast<T*>(p.logits), p.targets, p.losses, p.rows, p.vocab, p.ignore_index,
                     p.write_gradient, p.write_lse, cluster);
}

template <typename T>
void launch_typed(const SoftmaxCrossEntropyParams& p, cudaStream_t stream) {
  if (p.cluster > 0) {
    launch_in_registers<T>(p, stream);
    return;
  }
  constexpr int kVec = 16 / sizeof(T);
  // Capped at one grid's limit: beyond it, blocks take several rows each.
  const std::int64_t blocks = std::min<std::int64_t>(p.blocks > 0 ? std::min(p.blocks, p.rows) : p.rows, 0x7fffffff);
  const auto grid = static_cast<unsigned>(blocks);
  auto* const logits = static_cast<T*>(p.logits);
  if (p.lse != nullptr) {
    softmax_cross_entropy_kernel<T, kVec, true><<<grid, kThreads, 0, stream>>>(
        logits, p.targets, p.losses, p.rows, p.vocab, p.ignore_index, p.write_gradient, p.write_lse, p.lse);
  } else {
    softmax_cross_entropy_kernel<T, kVec, false><<<grid, kThreads, 0, stream>>>(
        logits, p.targets, p.losses, p.rows, p.vocab, p.ignore_index, p.write_gradient, p.write_lse, p.lse);
  }
  ALBION_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

int softmax_cross_entropy_resident_blocks(DType dtype) {
  const void* kernel = dtype == DType::kFloat32
                           ? reinterpret_cast<const void*>(&softmax_cross_entropy_kernel<float, 4, false>)
                           : reinterpret_cast<const void*>(&softmax_cross_entropy_kernel<__nv_bfloat16, 8, false>);
  return resident_blocks(kernel, kThreads);
}

bool softmax_cross_entropy_clusters_fit(DType dtype, int cluster) {
  if (cluster == 1) return true;  // a plain launch
  const void* kernel = dtype == DType::kFloat32
                           ? reinterpret_cast<const void*>(&softmax_cross_entropy_cluster_kernel<float, 4>)
                           : reinterpret_cast<const void*>(&softmax_cross_entropy_cluster_kernel<__nv_bfloat16, 8>);
  // 0 where the GPU cannot run such clusters: before sm_90 (no image of the kernel), or no room.
  return asked_once_per_device(std::make_tuple(kernel, cluster), [&] {
           return active_clusters(kernel, kClusterRowThreads, static_cast<unsigned>(cluster));
         }) > 0;
}

void launch_softmax_cross_entropy(const SoftmaxCrossEntropyParams& params, cudaStream_t stream) {
  ALBION_CHECK(params.rows >= 0 && params.vocab > 0, "softmax cross-entropy: bad shape [", params.rows, ", ",
               params.vocab, "]");
  ALBION_CHECK(params.blocks >= 0, "softmax cross-entropy: ", params.blocks, " blocks");
  ALBION_CHECK(params.cluster >= 0 && params.cluster <= kMaxRowCluster && (params.cluster & (params.cluster - 1)) == 0,
               "softmax cross-entropy: a cluster of ", params.cluster, " blocks (1, 2, 4 or 8)");
  ALBION_CHECK(!params.write_lse || !params.write_gradient, "softmax cross-entropy: write_lse writes no gradient");
  ALBION_CHECK(params.lse == nullptr || (params.write_gradient && !params.write_lse && params.cluster == 0),
               "softmax cross-entropy: a given logsumexp is for the looping kernel's gradient alone");
  if (params.rows == 0) return;
  switch (params.dtype) {
    case DType::kFloat32: launch_typed<float>(params, stream); break;
    case DType::kBFloat16: launch_typed<__nv_bfloat16>(params, stream); break;
  }
}

}  // namespace albion::kernels
