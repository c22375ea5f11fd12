// File: kernels/common/segment_sums.cuh
// Column sums over rows in two steps, for kernels whose block (x, y) reads kPackLanes consecutive
// packs of kVec columns (threadIdx.x) of every row of row segment y, kRowLanes rows at a time
// (threadIdx.y), and keeps kVec running sums per thread:
//   1. add_row_lanes: the block adds its row lanes' sums and writes one row of fp32 partials
//      [segments, cols] for its columns;
//   2. add_segments_kernel: out[c] = sum over s of partials[s * cols + c], in a fixed order
//      (deterministic), launched with segment_tile_grid(cols, 1) and segment_tile_block() from
//      the .cu file that owns step 1 (launches stay in .cu files, where the CPU emulation's
//      translator sees them).
// row_segments, segment_tile_grid/_block and segment_tile give both steps their shape.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>

#include "kernels/common/resident_blocks.cuh"

namespace albion::kernels {

// The block of every step: a warp across kPackLanes consecutive packs of a row, kRowLanes rows in
// flight.
constexpr int kPackLanes = 32;
constexpr int kRowLanes = 8;

// Rows cut into `count` segments of `rows_per` rows (the last may be shorter).
struct RowSegments {
  std::int64_t count;
  std::int64_t rows_per;
};

// Segments of about `target_rows` rows, at most `max_segments` of them, one when there are no rows.
inline RowSegments row_segments(std::int64_t rows, std::int64_t target_rows, std::int64_t max_segments) {
  const std::int64_t count = std::clamp<std::int64_t>((rows + target_rows - 1) / target_rows, 1, max_segments);
  return {count, (rows + count - 1) / count};
}

// Segments for a kernel whose blocks each take one segment of rows and keep their columns' sums
// in registers (the norms' backward passes): one per block of `kernel`, launched with `threads`
// threads, that a device of `multiprocessors` holds at once (0: unknown, as on the CPU emulator,
// and the device is not asked), of at least kMinRowsPerRegisterSegment rows, so that a segment's
// partials stay small beside the rows it read.
constexpr std::int64_t kMinRowsPerRegisterSegment = 4;
inline std::int64_t register_row_segments(std::int64_t rows, const void* kernel, int threads, int multiprocessors) {
  const std::int64_t resident =
      multiprocessors > 0 ? std::int64_t{multiprocessors} * resident_blocks(kernel, threads) : 0;
  return row_segments(rows, kMinRowsPerRegisterSegment, resident > 0 ? resident : rows).count;
}

inline dim3 segment_tile_grid(std::int64_t packs_per_row, std::int64_t segments) {
  return dim3(static_cast<unsigned>((packs_per_row + kPackLanes - 1) / kPackLanes), static_cast<unsigned>(segments));
}
inline dim3 segment_tile_block() { return dim3(kPackLanes, kRowLanes); }

// This thread's share of block (x, y): pack `pack` of every row of [begin, end), from row
// begin + threadIdx.y in steps of kRowLanes.
struct SegmentTile {
  std::int64_t pack;
  std::int64_t begin;
  std::int64_t end;
};

__device__ __forceinline__ SegmentTile segment_tile(std::int64_t rows, std::int64_t rows_per_segment) {
  const std::int64_t begin = static_cast<std::int64_t>(blockIdx.y) * rows_per_segment;
  return {static_cast<std::int64_t>(blockIdx.x) * kPackLanes + threadIdx.x, begin,
          min(rows, begin + rows_per_segment)};
}

// Called by every thread of the block. `sums` are this thread's kVec column sums; thread y == 0
// of an in-range pack lane adds the row lanes' sums in lane order and writes them to `out` (its
// columns' kVec partials; not used, and may be null, where !in_range).
template <int kVec>
__device__ __forceinline__ void add_row_lanes(float (&sums)[kVec], float* __restrict__ out, bool in_range) {
  __shared__ float lanes[kRowLanes][kVec][kPackLanes];  // [k][lane]: consecutive lanes, distinct banks
#pragma unroll
  for (int k = 0; k < kVec; ++k) lanes[threadIdx.y][k][threadIdx.x] = sums[k];
  __syncthreads();
  if (threadIdx.y == 0 && in_range) {
    for (int lane = 1; lane < kRowLanes; ++lane) {
#pragma unroll
      for (int k = 0; k < kVec; ++k) sums[k] += lanes[lane][k][threadIdx.x];
    }
#pragma unroll
    for (int k = 0; k < kVec; ++k) out[k] = sums[k];
  }
  __syncthreads();  // `lanes` is shared by every call with this kVec: a next call waits
}

// Step 2, on the same block shape: column c = pack lane (one column per "pack"), row lane y adds
// segments y, y + kRowLanes, ..., then the lanes are added in order (deterministic), so hundreds
// of segments are not one thread's serial loop. A template, so that every .cu file that launches
// it may define it.
template <typename Unused = void>
__global__ void add_segments_kernel(const float* __restrict__ partials, std::int64_t segments, std::int64_t cols,
                                    float* __restrict__ out) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * kPackLanes + threadIdx.x;
  float sum[1] = {0.0f};
  if (c < cols) {
    for (std::int64_t s = threadIdx.y; s < segments; s += kRowLanes) sum[0] += partials[s * cols + c];
  }
  add_row_lanes<1>(sum, c < cols ? out + c : nullptr, c < cols);
}

}  // namespace albion::kernels
