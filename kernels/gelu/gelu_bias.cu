// File: kernels/gelu/gelu_bias.cu
// Fused bias + GELU-tanh, forward and backward: a grid-stride loop over 16-byte packs of a row
// (cols a multiple of the pack width and aligned pointers), element-wise otherwise. Reference:
// gelu_bias_ref.cpp. Test: tests/kernels/gelu_bias_test.cpp.
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>

#include "kernels/common/block_reduce.cuh"
#include "kernels/common/cuda_check.h"
#include "kernels/gelu/gelu_bias.cuh"
#include "runtime/base/check.h"

namespace albion::kernels {
namespace {

constexpr int kThreads = 256;
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kCubic = 0.044715f;

// 0.5 (1 + tanh a) is evaluated as sigmoid(2a): for z << 0, 1 + tanh(a) cancels to a few ulps
// of 1, which made the fp32 result wrong in its leading digits there. expf, not __expf, whose
// error grows with the argument.
__device__ __forceinline__ float gelu(float z) {
  const float a = kSqrt2OverPi * (z + kCubic * z * z * z);
  return z / (1.0f + expf(-2.0f * a));  // expf(+large) = inf gives -0 for z << 0, as it should
}

__device__ __forceinline__ float gelu_derivative(float z) {
  const float a = kSqrt2OverPi * (z + kCubic * z * z * z);
  const float e = expf(-2.0f * fabsf(a));  // in (0, 1]: cannot overflow
  const float r = 1.0f / (1.0f + e);
  const float s = a >= 0.0f ? r : e * r;           // sigmoid(2a) = (1 + t) / 2
  const float s_complement = a >= 0.0f ? e * r : r;  // 1 - s = (1 - t) / 2, without cancellation
  // 0.5 (1 + t) + 0.5 z (1 - t^2) k (1 + 3c z^2), with 1 - t^2 = 4 s (1 - s)
  return s + 2.0f * z * s * s_complement * kSqrt2OverPi * (1.0f + 3.0f * kCubic * z * z);
}

// kBackward: output = grad_output * gelu'(x + b); else output = gelu(x + b).
template <typename T, int kVec, bool kBackward>
__global__ void gelu_bias_kernel(const T* __restrict__ input, const float* __restrict__ bias,
                                 const T* __restrict__ grad_output, T* __restrict__ output, std::int64_t cols,
                                 std::int64_t units) {
  using P = Pack<T, kVec>;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t u = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; u < units; u += stride) {
    const std::int64_t first = u * kVec;  // kVec divides cols, so a pack never crosses a row
    const std::int64_t col = first % cols;
    const P x = reinterpret_cast<const P*>(input)[u];
    P d;
    if constexpr (kBackward) d = reinterpret_cast<const P*>(grad_output)[u];
    P y;
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      const float z = to_float(x.values[k]) + bias[col + k];
      if constexpr (kBackward) y.values[k] = from_float<T>(to_float(d.values[k]) * gelu_derivative(z));
      else y.values[k] = from_float<T>(gelu(z));
    }
    reinterpret_cast<P*>(output)[u] = y;
  }
}

template <typename T, bool kBackward>
void launch_typed(const GeluBiasParams& p, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  const bool vectorised = p.cols % kVec == 0 && aligned16(p.input) && aligned16(p.output) &&
                          (!kBackward || aligned16(p.grad_output));
  const std::int64_t numel = p.rows * p.cols;
  const std::int64_t units = vectorised ? numel / kVec : numel;
  const auto blocks = static_cast<unsigned>(std::clamp<std::int64_t>((units + kThreads - 1) / kThreads, 1, 65535));
  const auto* x = static_cast<const T*>(p.input);
  const auto* dy = static_cast<const T*>(p.grad_output);
  auto* y = static_cast<T*>(p.output);
  if (vectorised) {
    gelu_bias_kernel<T, kVec, kBackward><<<blocks, kThreads, 0, stream>>>(x, p.bias, dy, y, p.cols, units);
  } else {
    gelu_bias_kernel<T, 1, kBackward><<<blocks, kThreads, 0, stream>>>(x, p.bias, dy, y, p.cols, units);
  }
  ALBION_CUDA_CHECK(cudaGetLastError());
}

template <bool kBackward>
void launch(const GeluBiasParams& p, cudaStream_t stream) {
  ALBION_CHECK(p.rows >= 0 && p.cols > 0, "gelu_bias: bad shape ", p.rows, "x", p.cols);
  if (p.rows == 0) return;
  switch (p.dtype) {
    case DType::kFloat32: launch_typed<float, kBackward>(p, stream); break;
    case DType::kBFloat16: launch_typed<__nv_bfloat16, kBackward>(p, stream); break;
  }
}

}  // namespace

void launch_gelu_bias_forward(const GeluBiasParams& params, cudaStream_t stream) { launch<false>(params, stream); }
void launch_gelu_bias_backward(const GeluBiasParams& params, cudaStream_t stream) { launch<true>(params, stream); }

}  // namespace albion::kernels
