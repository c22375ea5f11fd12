// File: kernels/norm_grad/norm_parameter_grad.cu
// Column sums of a norm's parameter gradients: block (x, y) sums columns [32x, 32x + 32) over row
// segment y, 16 row lanes deep, into fp32 partials; a second launch adds the segments in order
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

constexpr int kColumns = 32;   // threadIdx.x: a warp reads 32 consecutive columns of one row
constexpr int kRowLanes = 16;  // threadIdx.y: rows in flight per block
constexpr std::int64_t kMaxSegments = 64;
constexpr std::int64_t kRowsPerSegment = 256;

template <typename T>
__global__ void partials_kernel(const T* __restrict__ grad_output, const T* __restrict__ input,
                                const float* __restrict__ mean, const float* __restrict__ rstd,
                                float* __restrict__ weight_partials, float* __restrict__ bias_partials,
                                std::int64_t rows, std::int64_t cols, std::int64_t rows_per_segment) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * kColumns + threadIdx.x;
  const std::int64_t begin = static_cast<std::int64_t>(blockIdx.y) * rows_per_segment;
  const std::int64_t end = min(rows, begin + rows_per_segment);
  float weight_sum = 0.0f;
  float bias_sum = 0.0f;
  if (c < cols) {
    for (std::int64_t r = begin + threadIdx.y; r < end; r += kRowLanes) {
      const float dy = to_float(grad_output[r * cols + c]);
      const float m = mean != nullptr ? mean[r] : 0.0f;
      weight_sum += dy * (to_float(input[r * cols + c]) - m) * rstd[r];
      bias_sum += dy;
    }
  }
  __shared__ float weight_lanes[kRowLanes][kColumns + 1];  // +1: no bank conflicts on the transpose
  __shared__ float bias_lanes[kRowLanes][kColumns + 1];
  weight_lanes[threadIdx.y][threadIdx.x] = weight_sum;
  bias_lanes[threadIdx.y][threadIdx.x] = bias_sum;
  __syncthreads();
  if (threadIdx.y != 0 || c >= cols) return;
  for (int lane = 1; lane < kRowLanes; ++lane) {
    weight_sum += weight_lanes[lane][threadIdx.x];
    bias_sum += bias_lanes[lane][threadIdx.x];
  }
  weight_partials[blockIdx.y * cols + c] = weight_sum;
  if (bias_partials != nullptr) bias_partials[blockIdx.y * cols + c] = bias_sum;
}

template <typename T>
void launch_typed(const NormParameterGradParams& p, cudaStream_t stream) {
  const std::int64_t segments = norm_parameter_grad_segments(p.rows);
  const std::int64_t rows_per_segment = (p.rows + segments - 1) / segments;
  float* weight_partials = p.partials;
  float* bias_partials = p.grad_bias != nullptr ? p.partials + segments * p.cols : nullptr;
  const dim3 grid(static_cast<unsigned>((p.cols + kColumns - 1) / kColumns), static_cast<unsigned>(segments));
  partials_kernel<T><<<grid, dim3(kColumns, kRowLanes), 0, stream>>>(
      static_cast<const T*>(p.grad_output), static_cast<const T*>(p.input), p.mean, p.rstd, weight_partials,
      bias_partials, p.rows, p.cols, rows_per_segment);
  ALBION_CUDA_CHECK(cudaGetLastError());
  const unsigned blocks = segment_sum_blocks(p.cols);
  add_segments_kernel<><<<blocks, kSegmentSumThreads, 0, stream>>>(weight_partials, segments, p.cols, p.grad_weight);
  ALBION_CUDA_CHECK(cudaGetLastError());
  if (bias_partials != nullptr) {
    add_segments_kernel<><<<blocks, kSegmentSumThreads, 0, stream>>>(bias_partials, segments, p.cols, p.grad_bias);
    ALBION_CUDA_CHECK(cudaGetLastError());
  }
}

}  // namespace

std::int64_t norm_parameter_grad_segments(std::int64_t rows) {
  return std::clamp<std::int64_t>((rows + kRowsPerSegment - 1) / kRowsPerSegment, 1, kMaxSegments);
}

void launch_norm_parameter_grad(const NormParameterGradParams& params, cudaStream_t stream) {
  ALBION_CHECK(params.rows >= 0 && params.cols > 0, "norm parameter gradients: bad shape ", params.rows, "x",
               params.cols);
  ALBION_CHECK(params.cols <= std::int64_t{0x7fffffff} * kColumns, "norm parameter gradients: ", params.cols,
               " columns exceed the grid");
  switch (params.dtype) {
    case DType::kFloat32: launch_typed<float>(params, stream); break;
    case DType::kBFloat16: launch_typed<__nv_bfloat16>(params, stream); break;
  }
}

}  // namespace albion::kernels
