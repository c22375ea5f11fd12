// File: kernels/common/block_reduce.cuh
// Helpers shared by the kernels: block reductions, 16-byte packs and their alignment test,
// threads per row, dtype conversion.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace albion::kernels {

// Exchanges `value` with the lane `offset` away, for any trivially copyable T of whole 4-byte
// words (a float, or a struct of them), one shuffle per word.
template <typename T>
__device__ __forceinline__ T shuffle_xor(T value, int offset) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) % sizeof(int) == 0,
                "shuffle_xor moves trivially copyable values of whole 4-byte words");
  int words[sizeof(T) / sizeof(int)];
  memcpy(words, &value, sizeof(T));
#pragma unroll
  for (int& word : words) word = __shfl_xor_sync(0xffffffffu, word, offset);
  memcpy(&value, words, sizeof(T));
  return value;
}

// Reduces over the whole block with `op` (associative, and commutative bit for bit: the butterfly
// combines in a different order on each lane, and every thread must get the same result).
// blockDim.x must be a multiple of 32; `identity` stands in for the missing warps.
template <typename T, typename Op>
__device__ __forceinline__ T block_reduce(T value, T identity, Op op) {
  __shared__ T warp_totals[32];
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) value = op(value, shuffle_xor(value, offset));
  if (lane == 0) warp_totals[warp] = value;
  __syncthreads();
  value = lane < static_cast<int>(blockDim.x / 32) ? warp_totals[lane] : identity;
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) value = op(value, shuffle_xor(value, offset));
  __syncthreads();  // warp_totals may be reused by a following reduction
  return value;
}

__device__ __forceinline__ float block_sum(float value) {
  return block_reduce(value, 0.0f, [](float a, float b) { return a + b; });
}

// Whether a pointer can be read and written in 16-byte packs.
__host__ __device__ __forceinline__ bool aligned16(const void* pointer) {
  return reinterpret_cast<std::uintptr_t>(pointer) % 16 == 0;
}

// Threads for a block that sweeps one row of `units` loads: enough to cover a short row in one
// sweep, a power of two from 32 to 1024.
inline int threads_for_row(std::int64_t units) {
  int threads = 32;
  while (threads < 1024 && threads < units) threads *= 2;
  return threads;
}

// Note [Rows held in registers]
// A row-wise kernel (a norm) that reads its row, reduces over it, then reads it again to write
// the output waits at the reduction with nothing in flight, and a 1024-thread block of one
// 16-byte load per thread kept too few bytes moving: the row-at-a-time norms ran at 54-69% of the
// copy bandwidth on an H200 for 8,192-wide bf16 rows. Rows of up to kRowPacksPerThread packs per
// thread are therefore loaded into registers in one unrolled burst, several loads in flight per
// thread, and every later pass reads the registers (RMSNorm's bf16 forward then ran at 96%, its
// fp32 one at 97%, LayerNorm's fp32 forward at 98%, its bf16 one still at 68%). Pack p of the
// row lives in thread p % blockDim.x, slot p / blockDim.x. Smaller blocks also let several rows
// share an SM, so one row's reduction overlaps another's loads. Blocks stop at
// kMaxRegisterRowThreads, which the kernels declare in __launch_bounds__: a backward pass holding
// three packs per slot takes up to 128 registers a thread (sm_90), and 1,024 such threads would
// not fit an SM's 65,536. Longer rows (over 16,384 bf16 or 8,192 fp32 elements) keep the looping
// kernels.
constexpr int kRowPacksPerThread = 4;
constexpr int kMaxRegisterRowThreads = 512;

inline bool row_fits_registers(std::int64_t packs) { return packs <= kMaxRegisterRowThreads * kRowPacksPerThread; }

// Threads for a row held in registers: enough for kRowPacksPerThread packs each.
inline int threads_for_register_row(std::int64_t packs) {
  return threads_for_row((packs + kRowPacksPerThread - 1) / kRowPacksPerThread);
}

// kVec elements moved as one 16-byte (or smaller) load/store.
template <typename T, int kVec>
struct alignas(sizeof(T) * kVec) Pack {
  T values[kVec];
};

// The row's pack held in this thread's slot `slot` (Note [Rows held in registers]).
__device__ __forceinline__ int slot_pack(int slot) { return static_cast<int>(threadIdx.x + slot * blockDim.x); }

// Loads this thread's slots of a row of `packs` packs in one burst; slots past the row's end are
// zero, and a kernel's later passes skip them.
template <int kSlots, typename P>
__device__ __forceinline__ void load_row_slots(const P* __restrict__ row, int packs, P (&slots)[kSlots]) {
#pragma unroll
  for (int i = 0; i < kSlots; ++i) slots[i] = slot_pack(i) < packs ? row[slot_pack(i)] : P{};
}

__device__ __forceinline__ float to_float(float value) { return value; }
__device__ __forceinline__ float to_float(__nv_bfloat16 value) { return __bfloat162float(value); }

template <typename T>
__device__ __forceinline__ T from_float(float value);
template <>
__device__ __forceinline__ float from_float<float>(float value) { return value; }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float value) {
  return __float2bfloat16_rn(value);
}

}  // namespace albion::kernels
