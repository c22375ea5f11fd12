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

// Two sums over the whole block in one reduction (one round of barriers, not two), each the same
// bits as block_sum gives it.
struct FloatPair {
  float first;
  float second;
};

__device__ __forceinline__ FloatPair block_sum_pair(float first, float second) {
  return block_reduce(FloatPair{first, second}, FloatPair{0.0f, 0.0f},
                      [](FloatPair a, FloatPair b) { return FloatPair{a.first + b.first, a.second + b.second}; });
}

// Whether a pointer can be read and written in 16-byte packs.
__host__ __device__ __forceinline__ bool aligned16(const void* pointer) {
  return reinterpret_cast<std::uintptr_t>(pointer) % 16 == 0;
}

// Whether a pointer can be read and written as values of P (a Pack narrower than 16 bytes: a bf16
// operand beside fp32 ones, kVec elements in 8 bytes).
template <typename P>
__host__ __device__ __forceinline__ bool aligned_for(const void* pointer) {
  return reinterpret_cast<std::uintptr_t>(pointer) % alignof(P) == 0;
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

// Note [Whole-pack loads]
// A pack read through a reference to its elements (`f(w[p])`, where f reads w.values[k]) is loaded
// by nvcc 13 one element at a time: sm_90 code of LayerNorm's bf16 forward held 64 16-bit loads of
// the weight and bias for its 4 loads of x, and each such load across a warp is its own L1 access
// of the warp's 512-byte span, where one 16-byte load takes the same accesses for 8 elements. At
// 2 bytes an element moved, those accesses, not DRAM, set the pace. load_pack reads the whole pack
// as 16-byte (or 8-byte) words (on the CPU emulator too, where UBSan checks their alignment).
template <typename P>
__device__ __forceinline__ P load_pack(const P* __restrict__ pointer) {
  static_assert(std::is_trivially_copyable_v<P>, "load_pack reads plain packs");
  if constexpr (sizeof(P) % 16 == 0 || sizeof(P) == 8) {
    using Word = std::conditional_t<sizeof(P) % 16 == 0, uint4, uint2>;
    constexpr int kWords = static_cast<int>(sizeof(P) / sizeof(Word));
    Word words[kWords];
#pragma unroll
    for (int i = 0; i < kWords; ++i) words[i] = reinterpret_cast<const Word*>(pointer)[i];
    P pack;
    memcpy(&pack, words, sizeof(P));
    return pack;
  } else {
    return *pointer;
  }
}

// The row's pack held in this thread's slot `slot` (Note [Rows held in registers]).
__device__ __forceinline__ int slot_pack(int slot) { return static_cast<int>(threadIdx.x + slot * blockDim.x); }

// Loads this thread's slots of a row of `packs` packs in one burst; slots past the row's end are
// zero, and a kernel's later passes skip them.
template <int kSlots, typename P>
__device__ __forceinline__ void load_row_slots(const P* __restrict__ row, int packs, P (&slots)[kSlots]) {
#pragma unroll
  for (int i = 0; i < kSlots; ++i) slots[i] = slot_pack(i) < packs ? row[slot_pack(i)] : P{};
}

// Note [Parameter gradients in the backward pass]
// A norm's parameter gradients are column sums over rows (dw = sum dy xhat, db = sum dy). Summed
// by a second kernel they cost another read of dy and x: 7 passes over [rows, cols] where the
// backward needs 5 (forward: read x, write y; backward: read dy and x, write dx), 71% of the copy
// bandwidth at best. In the register-row layout a thread keeps the same columns row after row, so
// a backward kernel whose block takes a segment of rows (grid: as many blocks as the device holds
// at once, register_row_segments) keeps its columns' sums in registers, writes one row of fp32
// partials per block, and a small second launch adds those in order (segment_sums.cuh). The sums
// take kVec floats per pack, so these kernels hold one pack per thread (kSummingPacksPerThread), in
// blocks of up to 1,024 threads: at 2 or 4 packs, nvcc 13's bf16 LayerNorm kernel spilled on
// sm_90; at 1 every variant takes at most 64 registers, without spills. Each thread loads the next
// row's dy and x before the block reduces the current one, so a block keeps loads in flight
// through its reductions (rows as wide as 1,024 packs leave one block per multiprocessor).
// Rows over 1,024 packs (8,192 bf16 or 4,096 fp32 elements) keep the separate sum.
constexpr int kSummingPacksPerThread = 1;
constexpr int kMaxSummingRowThreads = 1024;

inline bool row_fits_summing_registers(std::int64_t packs) {
  return packs <= kMaxSummingRowThreads * kSummingPacksPerThread;
}

inline int threads_for_summing_row(std::int64_t packs) {
  return threads_for_row((packs + kSummingPacksPerThread - 1) / kSummingPacksPerThread);
}

// Calls body(row, d, v) for each row of [begin, end) with this thread's slots of that row's dy and
// x, the next row's already loading (Note [Parameter gradients in the backward pass]). dy's slots
// come from load_dy(offset, packs, d): the row's first pack, and 0 packs past the segment's last
// row (where nothing may be read), for a dy that is more than one array (RMSNorm's several readers).
template <int kSlots, typename D, typename P, typename LoadDy, typename Body>
__device__ __forceinline__ void for_each_segment_row_of(LoadDy load_dy, const P* __restrict__ x, std::int64_t begin,
                                                        std::int64_t end, int packs, Body body) {
  const auto load = [&](std::int64_t row, D(&d)[kSlots], P(&v)[kSlots]) {
    const bool inside = row < end;
    const std::int64_t offset = inside ? row * packs : 0;
    load_dy(offset, inside ? packs : 0, d);
    load_row_slots(x + offset, inside ? packs : 0, v);
  };
  D d[kSlots];
  P v[kSlots];
  load(begin, d, v);
  for (std::int64_t row = begin; row < end; ++row) {
    D next_d[kSlots];  // in flight through this row's reductions
    P next_v[kSlots];
    load(row + 1, next_d, next_v);
    body(row, d, v);
#pragma unroll
    for (int i = 0; i < kSlots; ++i) {
      d[i] = next_d[i];
      v[i] = next_v[i];
    }
  }
}

// As above for dy in one row-major array of packs D (of another dtype than x's, with as many
// elements, or x's).
template <int kSlots, typename D, typename P, typename Body>
__device__ __forceinline__ void for_each_segment_row(const D* __restrict__ dy, const P* __restrict__ x,
                                                     std::int64_t begin, std::int64_t end, int packs, Body body) {
  const auto load_dy = [dy](std::int64_t offset, int row_packs, D(&d)[kSlots]) {
    load_row_slots(dy + offset, row_packs, d);
  };
  for_each_segment_row_of<kSlots, D>(load_dy, x, begin, end, packs, body);
}

// Per-column sums a register-row kernel keeps across the rows it takes: kVec floats for each of
// this thread's slots, the slot's columns. Stored as one row of fp32 partials [packs * kVec];
// slots past the row's end hold nothing and are not stored.
template <int kSlots, int kVec>
__device__ __forceinline__ void store_slot_sums(const float (&sums)[kSlots][kVec], float* __restrict__ row,
                                                int packs) {
  using P = Pack<float, kVec>;
#pragma unroll
  for (int i = 0; i < kSlots; ++i) {
    const int p = slot_pack(i);
    if (p >= packs) break;
    P out;
#pragma unroll
    for (int k = 0; k < kVec; ++k) out.values[k] = sums[i][k];
    reinterpret_cast<P*>(row)[p] = out;
  }
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

// a + b, rounded to a's dtype as torch's add rounds: a norm's residual add (b in the output's dtype,
// or bf16 beside fp32) and, in its backward pass, dx plus the sum's other gradient (both in x's).
template <typename T, typename B, int kVec>
__device__ __forceinline__ Pack<T, kVec> summed(const Pack<T, kVec>& a, const Pack<B, kVec>& b) {
  Pack<T, kVec> out;
#pragma unroll
  for (int k = 0; k < kVec; ++k) out.values[k] = from_float<T>(to_float(a.values[k]) + to_float(b.values[k]));
  return out;
}

// Row `row` of an optional operand of `cols` elements a row, as packs P: null stays null.
template <typename P, typename E>
__device__ __forceinline__ P* optional_row(E* base, std::int64_t row, std::int64_t cols) {
  return base == nullptr ? nullptr : reinterpret_cast<P*>(base + row * cols);
}

// A norm's residual add on a row held in registers: where `residual` (R) is not null, adds this
// thread's slots of its row to the row's slots v and writes the sums (T, as rounded) to that row of
// sum_output; zero slots stay zero.
template <typename T, typename R, int kVec, int kSlots>
__device__ __forceinline__ void add_residual_slots(Pack<T, kVec> (&v)[kSlots], const R* __restrict__ residual,
                                                   T* __restrict__ sum_output, std::int64_t row, std::int64_t cols) {
  if (residual == nullptr) return;
  const int packs = static_cast<int>(cols / kVec);
  Pack<R, kVec> r[kSlots];
  load_row_slots(reinterpret_cast<const Pack<R, kVec>*>(residual + row * cols), packs, r);
  auto* s = reinterpret_cast<Pack<T, kVec>*>(sum_output + row * cols);
#pragma unroll
  for (int i = 0; i < kSlots; ++i) {
    v[i] = summed(v[i], r[i]);
    if (slot_pack(i) < packs) s[slot_pack(i)] = v[i];
  }
}

}  // namespace albion::kernels
