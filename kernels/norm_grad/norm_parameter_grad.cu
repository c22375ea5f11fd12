// File: kernels/norm_grad/norm_parameter_grad.cu
// Column sums of a norm's parameter gradients: block (x, y) sums 16-byte packs [32x, 32x + 32) of
// each row (single elements where cols or the pointers do not allow packs) over row segment y,
// 8 row lanes deep, into fp32 partials; a second launch adds the segments in order
// (common/segment_sums.cuh).
// Reference: norm_parameter_grad_ref.cpp. Test: tests/kernels/norm_parameter_grad_test.cpp.
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>

#include "kernels/common/block_reduce.cuh"
#include "kernels/common/cuda_check.h"
#include "kernels/common/segment_sums.cuh"
#include "kernels/norm_grad/norm_parameter_grad.cuh"
#include "runtime/base/check.h"

namespace albion::kernels {
namespace {

constexpr std::int64_t kMaxSegments = 256;
constexpr std::int64_t kRowsPerSegment = 64;

template <typename T, int kVec>
__global__ void partials_kernel(const T* __restrict__ grad_output, const T* __restrict__ input,
                                const float* __restrict__ mean, const float* __restrict__ rstd,
                                float* __restrict__ weight_partials, float* __restrict__ bias_partials,
                                std::int64_t rows, std::int64_t cols, std::int64_t rows_per_segment) {
  using P = Pack<T, kVec>;
  const std::int64_t packs_per_row = cols / kVec;
  const auto [pack, begin, end] = segment_tile(rows, rows_per_segment);
  float weight_sums[kVec] = {};
  float bias_sums[kVec] = {};
  if (pack < packs_per_row) {
    for (std::int64_t r = begin + threadIdx.y; r < end; r += kRowLanes) {
      const P dy = reinterpret_cast<const P*>(grad_output)[r * packs_per_row + pack];
      const P x = reinterpret_cast<const P*>(input)[r * packs_per_row + pack];
      const float m = mean != nullptr ? mean[r] : 0.0f;
      const float s = rstd[r];
#pragma unroll
      for (int k = 0; k < kVec; ++k) {
        const float d = to_float(dy.values[k]);
        weight_sums[k] += d * (to_float(x.values[k]) - m) * s;
        bias_sums[k] += d;
      }
    }
  }
  const bool in_range = pack < packs_per_row;
  const std::int64_t offset = in_range ? blockIdx.y * cols + pack * kVec : 0;  // 0: not written
  add_row_lanes<kVec>(weight_sums, weight_partials + offset, in_range);
  if (bias_partials != nullptr) add_row_lanes<kVec>(bias_sums, bias_partials + offset, in_range);
}

template <typename T>
void launch_typed(const NormParameterGradParams& p, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  const bool vectorised = p.cols % kVec == 0 && aligned16(p.grad_output) && aligned16(p.input);
  const RowSegments segments = row_segments(p.rows, kRowsPerSegment, kMaxSegments);
  float* weight_partials = p.partials;
  float* bias_partials = p.grad_bias != nullptr ? p.partials + segments.count * p.cols : nullptr;
  const dim3 grid = segment_tile_grid(vectorised ? p.cols / kVec : p.cols, segments.count);
  const dim3 block = segment_tile_block();
  const auto* dy = static_cast<const T*>(p.grad_output);
  const auto* x = static_cast<const T*>(p.input);
  if (vectorised) {
    partials_kernel<T, kVec><<<grid, block, 0, stream>>>(dy, x, p.mean, p.rstd, weight_partials, bias_partials,
                                                         p.rows, p.cols, segments.rows_per);
  } else {
    partials_kernel<T, 1><<<grid, block, 0, stream>>>(dy, x, p.mean, p.rstd, weight_partials, bias_partials, p.rows,
                                                      p.cols, segments.rows_per);
  }
  ALBION_CUDA_CHECK(cudaGetLastError());
  const dim3 sum_grid = segment_tile_grid(p.cols, 1);
  add_segments_kernel<><<<sum_grid, block, 0, stream>>>(weight_partials, segments.count, p.cols, p.grad_weight);
  ALBION_CUDA_CHECK(cudaGetLastError());
  if (bias_partials != nullptr) {
    add_segments_kernel<><<<sum_grid, block, 0, stream>>>(bias_partials, segments.count, p.cols, p.grad_bias);
    ALBION_CUDA_CHECK(cudaGetLastError());
  }
}

}  // namespace

std::int64_t norm_parameter_grad_segments(std::int64_t rows) {
  return row_segments(rows, kRowsPerSegment, kMaxSegments).count;
}

void launch_norm_parameter_grad(const NormParameterGradParams& params, cudaStream_t stream) {
  ALBION_CHECK(params.rows >= 0 && params.cols > 0, "norm parameter gradients: bad shape ", params.rows, "x",
               params.cols);
  ALBION_CHECK(params.cols <= std::int64_t{0x7fffffff} * kPackLanes, "norm parameter gradients: ", params.cols,
               " columns exceed the grid");
  switch (params.dtype) {
    case DType::kFloat32: launch_typed<float>(params, stream); break;
    case DType::kBFloat16: launch_typed<__nv_bfloat16>(params, stream); break;
  }
}

}  // namespace albion::kernels
