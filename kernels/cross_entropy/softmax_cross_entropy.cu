// File: kernels/cross_entropy/softmax_cross_entropy.cu
// Softmax cross-entropy with the gradient written in place, a block per row at a time. Reference:
// softmax_cross_entropy_ref.cpp. Test: tests/kernels/softmax_cross_entropy_test.cpp.
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>

#include "kernels/common/block_reduce.cuh"
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

// Max and running sum of a batch of packs: one max over the batch, then exponentials that do not
// wait on each other, summed per pack (a combine per pack chained an __expf and a branch through
// every pack: the bf16 forward, with twice fp32's elements per byte, ran at 56% of the copy
// bandwidth on an H200). A batch of NaNs and -infs keeps its NaN (fmaxf skips NaN).
template <typename P, int kPacks>
__device__ __forceinline__ MaxSum batch_max_sum(const P (&batch)[kPacks]) {
  MaxSum local{-INFINITY, 0.0f};
#pragma unroll
  for (const P& pack : batch) {
#pragma unroll
    for (const auto value : pack.values) local.max = fmaxf(local.max, to_float(value));
  }
  if (local.max == -INFINITY) {
#pragma unroll
    for (const P& pack : batch) {
#pragma unroll
      for (const auto value : pack.values) {
        if (isnan(to_float(value))) local.sum = NAN;
      }
    }
    return local;
  }
  float sums[kPacks] = {};
#pragma unroll
  for (int u = 0; u < kPacks; ++u) {
#pragma unroll
    for (const auto value : batch[u].values) sums[u] += __expf(to_float(value) - local.max);
  }
#pragma unroll
  for (const float sum : sums) local.sum += sum;
  return local;
}

// Packs each thread has in flight at once: the loads go out together, then the arithmetic.
constexpr int kPacksInFlight = 4;

// One row, by the whole block.
template <typename T, int kVec>
__device__ __forceinline__ void softmax_cross_entropy_row(T* __restrict__ row, std::int64_t target,
                                                          float* __restrict__ loss, std::int64_t vocab,
                                                          std::int64_t ignore_index, bool write_gradient) {
  using P = Pack<T, kVec>;
  const std::int64_t stride = blockDim.x;
  const RowSplit<T, kVec> split(row, vocab);
  P* packs = reinterpret_cast<P*>(row + split.head);

  if (target == ignore_index) {
    if (threadIdx.x == 0) *loss = 0.0f;
    if (!write_gradient) return;
    const T zero = from_float<T>(0.0f);
    for (std::int64_t j = threadIdx.x; j < vocab; j += stride) row[j] = zero;
    return;
  }
  const bool valid = target >= 0 && target < vocab;

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
  const float target_logit = valid ? to_float(row[target]) : NAN;
  const MaxSum total =
      block_reduce(acc, MaxSum{-INFINITY, 0.0f}, [](MaxSum a, MaxSum b) { return combine(a, b); });
  const float lse = total.max + logf(total.sum);
  if (threadIdx.x == 0) *loss = lse - target_logit;
  if (!write_gradient) return;

  const float poison = valid ? 0.0f : NAN;
  const auto gradient = [&](std::int64_t j, float x) {
    return __expf(x - lse) - (j == target ? 1.0f : 0.0f) + poison;
  };
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
  p = split.packs - 1 - threadIdx.x;
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
template <typename T, int kVec>
__global__ void softmax_cross_entropy_kernel(T* __restrict__ logits, const std::int64_t* __restrict__ targets,
                                             float* __restrict__ losses, std::int64_t rows, std::int64_t vocab,
                                             std::int64_t ignore_index, bool write_gradient) {
  for (std::int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    softmax_cross_entropy_row<T, kVec>(logits + r * vocab, targets[r], losses + r, vocab, ignore_index,
                                       write_gradient);
  }
}

template <typename T>
void launch_typed(const SoftmaxCrossEntropyParams& p, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  // Capped at one grid's limit: beyond it, blocks take several rows each.
  const std::int64_t blocks = std::min<std::int64_t>(p.blocks > 0 ? std::min(p.blocks, p.rows) : p.rows, 0x7fffffff);
  softmax_cross_entropy_kernel<T, kVec><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      static_cast<T*>(p.logits), p.targets, p.losses, p.rows, p.vocab, p.ignore_index, p.write_gradient);
  ALBION_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

int softmax_cross_entropy_resident_blocks(DType dtype) {
  const void* kernel = dtype == DType::kFloat32
                           ? reinterpret_cast<const void*>(&softmax_cross_entropy_kernel<float, 4>)
                           : reinterpret_cast<const void*>(&softmax_cross_entropy_kernel<__nv_bfloat16, 8>);
  return resident_blocks(kernel, kThreads);
}

void launch_softmax_cross_entropy(const SoftmaxCrossEntropyParams& params, cudaStream_t stream) {
  ALBION_CHECK(params.rows >= 0 && params.vocab > 0, "softmax cross-entropy: bad shape [", params.rows, ", ",
               params.vocab, "]");
  ALBION_CHECK(params.blocks >= 0, "softmax cross-entropy: ", params.blocks, " blocks");
  if (params.rows == 0) return;
  switch (params.dtype) {
    case DType::kFloat32: launch_typed<float>(params, stream); break;
    case DType::kBFloat16: launch_typed<__nv_bfloat16>(params, stream); break;
  }
}

}  // namespace albion::kernels
