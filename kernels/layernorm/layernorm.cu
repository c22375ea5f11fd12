// File: kernels/layernorm/layernorm.cu
// LayerNorm forward and backward: one block per row, 16-byte packs when the row length and the
// pointers allow, element-wise otherwise. Passes after the first read the row from registers when
// it fits them (Note [Rows held in registers], block_reduce.cuh), else from L1/L2.
// Reference: layernorm_ref.cpp. Test: tests/kernels/layernorm_test.cpp.
#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/common/block_reduce.cuh"
#include "kernels/common/cuda_check.h"
#include "kernels/layernorm/layernorm.cuh"
#include "runtime/base/check.h"

namespace albion::kernels {
namespace {

// One pack's share of each pass, shared by the looping kernels and those holding the row in
// registers: the sum; the sum of squared deviations; y = (x - mean) rstd w + b; the sums of
// g = w dy and g xhat; dx = rstd (g - mean(g) - xhat mean(g xhat)).
template <typename T, int kVec>
__device__ __forceinline__ void add_values(const Pack<T, kVec>& x, float& sum) {
#pragma unroll
  for (int k = 0; k < kVec; ++k) sum += to_float(x.values[k]);
}

template <typename T, int kVec>
__device__ __forceinline__ void add_squared_deviations(const Pack<T, kVec>& x, float mu, float& squares) {
#pragma unroll
  for (int k = 0; k < kVec; ++k) {
    const float d = to_float(x.values[k]) - mu;
    squares += d * d;
  }
}

template <typename T, int kVec>
__device__ __forceinline__ Pack<T, kVec> normalized(const Pack<T, kVec>& x, const Pack<T, kVec>& w,
                                                    const Pack<T, kVec>& b, float mu, float inv) {
  Pack<T, kVec> out;
#pragma unroll
  for (int k = 0; k < kVec; ++k) {
    out.values[k] = from_float<T>((to_float(x.values[k]) - mu) * inv * to_float(w.values[k]) + to_float(b.values[k]));
  }
  return out;
}

template <typename T, int kVec>
__device__ __forceinline__ void add_gradient_sums(const Pack<T, kVec>& x, const Pack<T, kVec>& dy,
                                                  const Pack<T, kVec>& w, float mu, float inv, float& sum_g,
                                                  float& sum_g_xhat) {
#pragma unroll
  for (int k = 0; k < kVec; ++k) {
    const float g = to_float(w.values[k]) * to_float(dy.values[k]);
    sum_g += g;
    sum_g_xhat += g * (to_float(x.values[k]) - mu) * inv;
  }
}

template <typename T, int kVec>
__device__ __forceinline__ Pack<T, kVec> input_gradient(const Pack<T, kVec>& x, const Pack<T, kVec>& dy,
                                                        const Pack<T, kVec>& w, float mu, float inv, float mean_g,
                                                        float mean_g_xhat) {
  Pack<T, kVec> out;
#pragma unroll
  for (int k = 0; k < kVec; ++k) {
    const float xhat = (to_float(x.values[k]) - mu) * inv;
    const float g = to_float(w.values[k]) * to_float(dy.values[k]);
    out.values[k] = from_float<T>(inv * (g - mean_g - xhat * mean_g_xhat));
  }
  return out;
}

// kVec elements per load: 16-byte packs when the row length and every pointer allow, else 1.
template <typename T, int kVec>
__global__ void layernorm_forward_kernel(const T* __restrict__ input, const T* __restrict__ weight,
                                         const T* __restrict__ bias, T* __restrict__ output, float* __restrict__ mean,
                                         float* __restrict__ rstd, std::int64_t cols, float eps) {
  using P = Pack<T, kVec>;
  const std::int64_t row = blockIdx.x;
  const P* x = reinterpret_cast<const P*>(input + row * cols);
  const P* w = reinterpret_cast<const P*>(weight);
  const P* b = reinterpret_cast<const P*>(bias);
  P* y = reinterpret_cast<P*>(output + row * cols);
  const std::int64_t packs = cols / kVec;
  float sum = 0.0f;
  for (std::int64_t p = threadIdx.x; p < packs; p += blockDim.x) add_values(x[p], sum);
  const float mu = block_sum(sum) / static_cast<float>(cols);
  float squares = 0.0f;  // two passes: no cancellation in E[x^2] - E[x]^2
  for (std::int64_t p = threadIdx.x; p < packs; p += blockDim.x) add_squared_deviations(x[p], mu, squares);
  const float inv = rsqrtf(block_sum(squares) / static_cast<float>(cols) + eps);
  for (std::int64_t p = threadIdx.x; p < packs; p += blockDim.x) y[p] = normalized(x[p], w[p], b[p], mu, inv);
  if (threadIdx.x == 0) {
    mean[row] = mu;
    rstd[row] = inv;
  }
}

// The forward pass with the row in registers: kSlots packs per thread.
template <typename T, int kVec, int kSlots>
__global__ void __launch_bounds__(kMaxRegisterRowThreads)
    layernorm_forward_registers_kernel(const T* __restrict__ input, const T* __restrict__ weight,
                                       const T* __restrict__ bias, T* __restrict__ output, float* __restrict__ mean,
                                       float* __restrict__ rstd, std::int64_t cols, float eps) {
  using P = Pack<T, kVec>;
  const std::int64_t row = blockIdx.x;
  const P* w = reinterpret_cast<const P*>(weight);
  const P* b = reinterpret_cast<const P*>(bias);
  P* y = reinterpret_cast<P*>(output + row * cols);
  const int packs = static_cast<int>(cols / kVec);
  P v[kSlots];
  load_row_slots(reinterpret_cast<const P*>(input + row * cols), packs, v);
  float sum = 0.0f;  // zero slots add nothing here, but would to the squared deviations
#pragma unroll
  for (const P& pack : v) add_values(pack, sum);
  const float mu = block_sum(sum) / static_cast<float>(cols);
  float squares = 0.0f;  // two passes: no cancellation in E[x^2] - E[x]^2
#pragma unroll
  for (int i = 0; i < kSlots; ++i) {
    if (slot_pack(i) >= packs) break;
    add_squared_deviations(v[i], mu, squares);
  }
  const float inv = rsqrtf(block_sum(squares) / static_cast<float>(cols) + eps);
#pragma unroll
  for (int i = 0; i < kSlots; ++i) {
    const int p = slot_pack(i);
    if (p >= packs) break;
    y[p] = normalized(v[i], w[p], b[p], mu, inv);
  }
  if (threadIdx.x == 0) {
    mean[row] = mu;
    rstd[row] = inv;
  }
}

template <typename T, int kVec>
__global__ void layernorm_backward_kernel(const T* __restrict__ grad_output, const T* __restrict__ input,
                                          const T* __restrict__ weight, const float* __restrict__ mean,
                                          const float* __restrict__ rstd, T* __restrict__ grad_input,
                                          std::int64_t cols) {
  using P = Pack<T, kVec>;
  const std::int64_t row = blockIdx.x;
  const P* x = reinterpret_cast<const P*>(input + row * cols);
  const P* dy = reinterpret_cast<const P*>(grad_output + row * cols);
  const P* w = reinterpret_cast<const P*>(weight);
  P* dx = reinterpret_cast<P*>(grad_input + row * cols);
  const std::int64_t packs = cols / kVec;
  const float mu = mean[row];
  const float inv = rstd[row];
  float sum_g = 0.0f;
  float sum_g_xhat = 0.0f;
  for (std::int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
    add_gradient_sums(x[p], dy[p], w[p], mu, inv, sum_g, sum_g_xhat);
  }
  const float mean_g = block_sum(sum_g) / static_cast<float>(cols);
  const float mean_g_xhat = block_sum(sum_g_xhat) / static_cast<float>(cols);
  for (std::int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
    dx[p] = input_gradient(x[p], dy[p], w[p], mu, inv, mean_g, mean_g_xhat);
  }
}

// The backward pass with the row's x, dy and weight in registers: kSlots packs each per thread.
template <typename T, int kVec, int kSlots>
__global__ void __launch_bounds__(kMaxRegisterRowThreads)
    layernorm_backward_registers_kernel(const T* __restrict__ grad_output, const T* __restrict__ input,
                                        const T* __restrict__ weight, const float* __restrict__ mean,
                                        const float* __restrict__ rstd, T* __restrict__ grad_input, std::int64_t cols) {
  using P = Pack<T, kVec>;
  const std::int64_t row = blockIdx.x;
  P* dx = reinterpret_cast<P*>(grad_input + row * cols);
  const int packs = static_cast<int>(cols / kVec);
  P v[kSlots], d[kSlots], c[kSlots];
  load_row_slots(reinterpret_cast<const P*>(input + row * cols), packs, v);
  load_row_slots(reinterpret_cast<const P*>(grad_output + row * cols), packs, d);
  load_row_slots(reinterpret_cast<const P*>(weight), packs, c);
  const float mu = mean[row];
  const float inv = rstd[row];
  float sum_g = 0.0f;  // zero slots (dy = weight = 0) add nothing
  float sum_g_xhat = 0.0f;
#pragma unroll
  for (int i = 0; i < kSlots; ++i) add_gradient_sums(v[i], d[i], c[i], mu, inv, sum_g, sum_g_xhat);
  const float mean_g = block_sum(sum_g) / static_cast<float>(cols);
  const float mean_g_xhat = block_sum(sum_g_xhat) / static_cast<float>(cols);
#pragma unroll
  for (int i = 0; i < kSlots; ++i) {
    const int p = slot_pack(i);
    if (p >= packs) break;
    dx[p] = input_gradient(v[i], d[i], c[i], mu, inv, mean_g, mean_g_xhat);
  }
}

template <typename T>
void forward_typed(const LayerNormParams& p, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  const bool vectorised = p.cols % kVec == 0 && aligned16(p.input) && aligned16(p.weight) && aligned16(p.bias) &&
                          aligned16(p.output);
  const auto* x = static_cast<const T*>(p.input);
  const auto* w = static_cast<const T*>(p.weight);
  const auto* b = static_cast<const T*>(p.bias);
  auto* y = static_cast<T*>(p.output);
  const dim3 grid(static_cast<unsigned>(p.rows));
  const int threads = threads_for_row(vectorised ? p.cols / kVec : p.cols);
  if (vectorised && row_fits_registers(p.cols / kVec)) {
    layernorm_forward_registers_kernel<T, kVec, kRowPacksPerThread>
        <<<grid, threads_for_register_row(p.cols / kVec), 0, stream>>>(x, w, b, y, p.mean, p.rstd, p.cols, p.eps);
  } else if (vectorised) {
    layernorm_forward_kernel<T, kVec><<<grid, threads, 0, stream>>>(x, w, b, y, p.mean, p.rstd, p.cols, p.eps);
  } else {
    layernorm_forward_kernel<T, 1><<<grid, threads, 0, stream>>>(x, w, b, y, p.mean, p.rstd, p.cols, p.eps);
  }
  ALBION_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void backward_typed(const LayerNormParams& p, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  const bool vectorised = p.cols % kVec == 0 && aligned16(p.grad_output) && aligned16(p.input) &&
                          aligned16(p.weight) && aligned16(p.output);
  const auto* dy = static_cast<const T*>(p.grad_output);
  const auto* x = static_cast<const T*>(p.input);
  const auto* w = static_cast<const T*>(p.weight);
  auto* dx = static_cast<T*>(p.output);
  const dim3 grid(static_cast<unsigned>(p.rows));
  const int threads = threads_for_row(vectorised ? p.cols / kVec : p.cols);
  if (vectorised && row_fits_registers(p.cols / kVec)) {
    layernorm_backward_registers_kernel<T, kVec, kRowPacksPerThread>
        <<<grid, threads_for_register_row(p.cols / kVec), 0, stream>>>(dy, x, w, p.mean, p.rstd, dx, p.cols);
  } else if (vectorised) {
    layernorm_backward_kernel<T, kVec><<<grid, threads, 0, stream>>>(dy, x, w, p.mean, p.rstd, dx, p.cols);
  } else {
    layernorm_backward_kernel<T, 1><<<grid, threads, 0, stream>>>(dy, x, w, p.mean, p.rstd, dx, p.cols);
  }
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
