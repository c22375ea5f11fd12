// File: kernels/rmsnorm/rmsnorm.cu
// RMSNorm forward and backward: one thread block per row; 16-byte packs when the row length and pointers allow,
// element-wise otherwise. Two passes over the row (sum of squares, then scale), the second served
// from L1/L2. Reference: rmsnorm_ref.cpp. Test: tests/kernels/rmsnorm_test.cpp.
#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/common/block_reduce.cuh"
#include "kernels/common/cuda_check.h"
#include "kernels/rmsnorm/rmsnorm.cuh"
#include "runtime/base/check.h"

namespace albion::kernels {
namespace {

template <typename T, int kVec>
__global__ void rmsnorm_forward_kernel(const T* __restrict__ input, const T* __restrict__ weight,
                                       T* __restrict__ output, float* __restrict__ inv_rms,
                                       std::int64_t cols, float eps) {
  using P = Pack<T, kVec>;
  const std::int64_t row = blockIdx.x;
  const P* x = reinterpret_cast<const P*>(input + row * cols);
  const P* w = reinterpret_cast<const P*>(weight);
  P* y = reinterpret_cast<P*>(output + row * cols);
  const std::int64_t packs = cols / kVec;

  float sum_squares = 0.0f;
  for (std::int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
    P v = x[p];
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      float f = to_float(v.values[k]);
      sum_squares += f * f;
    }
  }
  sum_squares = block_sum(sum_squares);
  const float scale = rsqrtf(sum_squares / static_cast<float>(cols) + eps);
  if (inv_rms != nullptr && threadIdx.x == 0) inv_rms[row] = scale;

  for (std::int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
    P v = x[p];
    P g = w[p];
    P out;
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      out.values[k] = from_float<T>(to_float(v.values[k]) * scale * to_float(g.values[k]));
    }
    y[p] = out;
  }
}

// dx = r g - r^3 x mean(g x), g = weight * dy, with r saved by the forward pass.
template <typename T, int kVec>
__global__ void rmsnorm_backward_kernel(const T* __restrict__ grad_output, const T* __restrict__ input,
                                        const T* __restrict__ weight, const float* __restrict__ inv_rms,
                                        T* __restrict__ grad_input, std::int64_t cols) {
  using P = Pack<T, kVec>;
  const std::int64_t row = blockIdx.x;
  const P* dy = reinterpret_cast<const P*>(grad_output + row * cols);
  const P* x = reinterpret_cast<const P*>(input + row * cols);
  const P* w = reinterpret_cast<const P*>(weight);
  P* dx = reinterpret_cast<P*>(grad_input + row * cols);
  const std::int64_t packs = cols / kVec;

  float dot = 0.0f;
  for (std::int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
    const P d = dy[p];
    const P v = x[p];
    const P g = w[p];
#pragma unroll
    for (int k = 0; k < kVec; ++k) dot += to_float(g.values[k]) * to_float(d.values[k]) * to_float(v.values[k]);
  }
  dot = block_sum(dot);
  const float scale = inv_rms[row];
  const float correction = scale * scale * scale * dot / static_cast<float>(cols);
  for (std::int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
    const P d = dy[p];
    const P v = x[p];
    const P g = w[p];
    P out;
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      out.values[k] = from_float<T>(scale * to_float(g.values[k]) * to_float(d.values[k]) -
                                    correction * to_float(v.values[k]));
    }
    dx[p] = out;
  }
}

template <typename T>
void launch_typed(const RmsNormForwardParams& p, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  const bool vectorised = p.cols % kVec == 0 && aligned16(p.input) && aligned16(p.weight) &&
                          aligned16(p.output);
  const std::int64_t units = vectorised ? p.cols / kVec : p.cols;
  const int threads = threads_for_row(units);
  const dim3 grid(static_cast<unsigned>(p.rows));
  const T* x = static_cast<const T*>(p.input);
  const T* w = static_cast<const T*>(p.weight);
  T* y = static_cast<T*>(p.output);
  if (vectorised) {
    rmsnorm_forward_kernel<T, kVec><<<grid, threads, 0, stream>>>(x, w, y, p.inv_rms, p.cols, p.eps);
  } else {
    rmsnorm_forward_kernel<T, 1><<<grid, threads, 0, stream>>>(x, w, y, p.inv_rms, p.cols, p.eps);
  }
  ALBION_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void launch_backward_typed(const RmsNormBackwardParams& p, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  const bool vectorised = p.cols % kVec == 0 && aligned16(p.grad_output) && aligned16(p.input) &&
                          aligned16(p.weight) && aligned16(p.grad_input);
  const std::int64_t units = vectorised ? p.cols / kVec : p.cols;
  const int threads = threads_for_row(units);
  const dim3 grid(static_cast<unsigned>(p.rows));
  const auto* dy = static_cast<const T*>(p.grad_output);
  const auto* x = static_cast<const T*>(p.input);
  const auto* w = static_cast<const T*>(p.weight);
  auto* dx = static_cast<T*>(p.grad_input);
  if (vectorised) {
    rmsnorm_backward_kernel<T, kVec><<<grid, threads, 0, stream>>>(dy, x, w, p.inv_rms, dx, p.cols);
  } else {
    rmsnorm_backward_kernel<T, 1><<<grid, threads, 0, stream>>>(dy, x, w, p.inv_rms, dx, p.cols);
  }
  ALBION_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void launch_rmsnorm_backward(const RmsNormBackwardParams& params, cudaStream_t stream) {
  ALBION_CHECK(params.rows >= 0 && params.cols > 0, "rmsnorm backward: bad shape ", params.rows, "x", params.cols);
  ALBION_CHECK(params.rows <= 0x7fffffff, "rmsnorm backward: ", params.rows, " rows exceed the grid limit");
  if (params.rows == 0) return;
  switch (params.dtype) {
    case DType::kFloat32: launch_backward_typed<float>(params, stream); break;
    case DType::kBFloat16: launch_backward_typed<__nv_bfloat16>(params, stream); break;
  }
}

void launch_rmsnorm_forward(const RmsNormForwardParams& params, cudaStream_t stream) {
  ALBION_CHECK(params.rows >= 0 && params.cols > 0, "rmsnorm: bad shape ", params.rows, "x",
               params.cols);
  ALBION_CHECK(params.rows <= 0x7fffffff, "rmsnorm: ", params.rows, " rows exceed the grid limit");
  if (params.rows == 0) return;
  switch (params.dtype) {
    case DType::kFloat32: launch_typed<float>(params, stream); break;
    case DType::kBFloat16: launch_typed<__nv_bfloat16>(params, stream); break;
  }
}

}  // namespace albion::kernels
