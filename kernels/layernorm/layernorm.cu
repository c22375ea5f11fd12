// File: kernels/layernorm/layernorm.cu
// LayerNorm forward and backward: one block per row, element-wise over the row (the row is read
// from L1/L2 after the first pass). Reference: layernorm_ref.cpp. Test: tests/kernels/layernorm_test.cpp.
#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/common/block_reduce.cuh"
#include "kernels/common/cuda_check.h"
#include "kernels/layernorm/layernorm.cuh"
#include "runtime/base/check.h"

namespace albion::kernels {
namespace {

template <typename T>
__global__ void layernorm_forward_kernel(const T* __restrict__ input, const T* __restrict__ weight,
                                         const T* __restrict__ bias, T* __restrict__ output, float* __restrict__ mean,
                                         float* __restrict__ rstd, std::int64_t cols, float eps) {
  const std::int64_t row = blockIdx.x;
  const T* x = input + row * cols;
  float sum = 0.0f;
  for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) sum += to_float(x[c]);
  const float mu = block_sum(sum) / static_cast<float>(cols);
  float squares = 0.0f;
  for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float d = to_float(x[c]) - mu;
    squares += d * d;
  }
  const float inv = rsqrtf(block_sum(squares) / static_cast<float>(cols) + eps);
  for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    output[row * cols + c] = from_float<T>((to_float(x[c]) - mu) * inv * to_float(weight[c]) + to_float(bias[c]));
  }
  if (threadIdx.x == 0) {
    mean[row] = mu;
    rstd[row] = inv;
  }
}

template <typename T>
__global__ void layernorm_backward_kernel(const T* __restrict__ grad_output, const T* __restrict__ input,
                                          const T* __restrict__ weight, const float* __restrict__ mean,
                                          const float* __restrict__ rstd, T* __restrict__ grad_input,
                                          std::int64_t cols) {
  const std::int64_t row = blockIdx.x;
  const T* x = input + row * cols;
  const T* dy = grad_output + row * cols;
  const float mu = mean[row];
  const float inv = rstd[row];
  float sum_g = 0.0f;
  float sum_g_xhat = 0.0f;
  for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float g = to_float(weight[c]) * to_float(dy[c]);
    sum_g += g;
    sum_g_xhat += g * (to_float(x[c]) - mu) * inv;
  }
  const float mean_g = block_sum(sum_g) / static_cast<float>(cols);
  const float mean_g_xhat = block_sum(sum_g_xhat) / static_cast<float>(cols);
  for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const float xhat = (to_float(x[c]) - mu) * inv;
    const float g = to_float(weight[c]) * to_float(dy[c]);
    grad_input[row * cols + c] = from_float<T>(inv * (g - mean_g - xhat * mean_g_xhat));
  }
}

int threads_for(std::int64_t cols) {
  int threads = 32;
  while (threads < 1024 && threads < cols) threads *= 2;
  return threads;
}

template <typename T>
void forward_typed(const LayerNormParams& p, cudaStream_t stream) {
  layernorm_forward_kernel<T><<<static_cast<unsigned>(p.rows), threads_for(p.cols), 0, stream>>>(
      static_cast<const T*>(p.input), static_cast<const T*>(p.weight), static_cast<const T*>(p.bias),
      static_cast<T*>(p.output), p.mean, p.rstd, p.cols, p.eps);
  ALBION_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void backward_typed(const LayerNormParams& p, cudaStream_t stream) {
  layernorm_backward_kernel<T><<<static_cast<unsigned>(p.rows), threads_for(p.cols), 0, stream>>>(
      static_cast<const T*>(p.grad_output), static_cast<const T*>(p.input), static_cast<const T*>(p.weight), p.mean,
      p.rstd, static_cast<T*>(p.output), p.cols);
  ALBION_CUDA_CHECK(cudaGetLastError());
}

void check_shape(const LayerNormParams& p) {
  ALBION_CHECK(p.rows >= 0 && p.cols > 0 && p.rows <= 0x7fffffff, "layernorm: bad shape ", p.rows, "x", p.cols);
}

}  // namespace

void launch_layernorm_forward(const LayerNormParams& params, cudaStream_t stream) {
  check_shape(params);
  if (params.rows == 0) return;
  if (params.dtype == DType::kFloat32) forward_typed<float>(params, stream);
  else forward_typed<__nv_bfloat16>(params, stream);
}

void launch_layernorm_backward(const LayerNormParams& params, cudaStream_t stream) {
  check_shape(params);
  if (params.rows == 0) return;
  if (params.dtype == DType::kFloat32) backward_typed<float>(params, stream);
  else backward_typed<__nv_bfloat16>(params, stream);
}

}  // namespace albion::kernels
