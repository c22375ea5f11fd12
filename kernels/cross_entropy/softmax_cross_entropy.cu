// File: kernels/cross_entropy/softmax_cross_entropy.cu
// Softmax cross-entropy with the gradient written in place, one block per row. Reference:
// softmax_cross_entropy_ref.cpp. Test: tests/kernels/softmax_cross_entropy_test.cpp.
#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>

#include "kernels/common/block_reduce.cuh"
#include "kernels/common/cuda_check.h"
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

template <typename T, int kVec>
__global__ void softmax_cross_entropy_kernel(T* __restrict__ logits, const std::int64_t* __restrict__ targets,
                                             float* __restrict__ losses, std::int64_t vocab,
                                             std::int64_t ignore_index, bool write_gradient) {
  using P = Pack<T, kVec>;
  const std::int64_t r = blockIdx.x;
  T* row = logits + r * vocab;
  const std::int64_t target = targets[r];
  const RowSplit<T, kVec> split(row, vocab);
  const P* packs = reinterpret_cast<const P*>(row + split.head);

  if (target == ignore_index) {
    if (threadIdx.x == 0) losses[r] = 0.0f;
    if (!write_gradient) return;
    const T zero = from_float<T>(0.0f);
    for (std::int64_t j = threadIdx.x; j < vocab; j += blockDim.x) row[j] = zero;
    return;
  }
  const bool valid = target >= 0 && target < vocab;

  MaxSum acc{-INFINITY, 0.0f};
  for (std::int64_t j = threadIdx.x; j < split.head; j += blockDim.x) add(acc, to_float(row[j]));
  for (std::int64_t p = threadIdx.x; p < split.packs; p += blockDim.x) {
    const P pack = packs[p];
    MaxSum local{-INFINITY, 0.0f};
#pragma unroll
    for (int k = 0; k < kVec; ++k) local.max = fmaxf(local.max, to_float(pack.values[k]));
    if (local.max != -INFINITY) {
#pragma unroll
      for (int k = 0; k < kVec; ++k) local.sum += __expf(to_float(pack.values[k]) - local.max);
    } else {
      // fmaxf skips NaN: a pack of NaNs and -infs has max -inf; keep its NaN in the sum.
#pragma unroll
      for (int k = 0; k < kVec; ++k) {
        if (isnan(to_float(pack.values[k]))) local.sum = NAN;
      }
    }
    acc = combine(acc, local);
  }
  for (std::int64_t j = split.tail + threadIdx.x; j < vocab; j += blockDim.x) add(acc, to_float(row[j]));
  // Read before the reduction's barrier, so before any thread starts overwriting the row.
  const float target_logit = valid ? to_float(row[target]) : NAN;
  const MaxSum total =
      block_reduce(acc, MaxSum{-INFINITY, 0.0f}, [](MaxSum a, MaxSum b) { return combine(a, b); });
  const float lse = total.max + logf(total.sum);
  if (threadIdx.x == 0) losses[r] = lse - target_logit;
  if (!write_gradient) return;

  const float poison = valid ? 0.0f : NAN;
  const auto gradient = [&](std::int64_t j, float x) {
    return __expf(x - lse) - (j == target ? 1.0f : 0.0f) + poison;
  };
  for (std::int64_t j = threadIdx.x; j < split.head; j += blockDim.x) {
    row[j] = from_float<T>(gradient(j, to_float(row[j])));
  }
  // Last packs first: they were read most recently, so they are the likeliest still in L2.
  P* writable = reinterpret_cast<P*>(row + split.head);
  for (std::int64_t p = split.packs - 1 - threadIdx.x; p >= 0; p -= blockDim.x) {
    P pack = writable[p];
    const std::int64_t first = split.head + p * kVec;
#pragma unroll
    for (int k = 0; k < kVec; ++k) pack.values[k] = from_float<T>(gradient(first + k, to_float(pack.values[k])));
    writable[p] = pack;
  }
  for (std::int64_t j = split.tail + threadIdx.x; j < vocab; j += blockDim.x) {
    row[j] = from_float<T>(gradient(j, to_float(row[j])));
  }
}

template <typename T>
void launch_typed(const SoftmaxCrossEntropyParams& p, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  softmax_cross_entropy_kernel<T, kVec><<<static_cast<unsigned>(p.rows), kThreads, 0, stream>>>(
      static_cast<T*>(p.logits), p.targets, p.losses, p.vocab, p.ignore_index, p.write_gradient);
  ALBION_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void launch_softmax_cross_entropy(const SoftmaxCrossEntropyParams& params, cudaStream_t stream) {
  ALBION_CHECK(params.rows >= 0 && params.vocab > 0, "softmax cross-entropy: bad shape [", params.rows, ", ",
               params.vocab, "]");
  ALBION_CHECK(params.rows <= 0x7fffffff, "softmax cross-entropy: ", params.rows, " rows exceed one grid");
  if (params.rows == 0) return;
  switch (params.dtype) {
    case DType::kFloat32: launch_typed<float>(params, stream); break;
    case DType::kBFloat16: launch_typed<__nv_bfloat16>(params, stream); break;
  }
}

}  // namespace albion::kernels
