// File: kernels/gelu/gelu_bias.cu
// Fused bias + GELU-tanh. Forward: a grid-stride loop over 16-byte packs (cols a multiple of the
// pack width and aligned pointers), element-wise otherwise. Backward: block (x, y) covers packs
// [32x, 32x + 32) of each row of segment y, 8 rows in flight, writes dz and, for dbias, the
// segment's column sums of dz to fp32 partials that a second launch adds in order
// (common/segment_sums.cuh): one pass over x, dy and dz instead of a further read of dz.
// Reference: gelu_bias_ref.cpp. Tests: tests/kernels/gelu_bias_test.cpp, and on the CPU emulator
// tests/kernels/emulated/gelu_bias_emulated_test.cpp.
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "kernels/common/block_reduce.cuh"
#include "kernels/common/cuda_check.h"
#include "kernels/common/segment_sums.cuh"
#include "kernels/gelu/gelu_bias.cuh"
#include "runtime/base/check.h"

namespace albion::kernels {
namespace {

constexpr int kThreads = 256;
constexpr std::int64_t kRowsPerSegment = 128;  // backward: segmented column sums (segment_sums.cuh)
constexpr std::int64_t kMaxSegments = 128;
constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kCubic = 0.044715f;
// a = k (z + c z^3) = z (k + kc z^2): one multiply-add and two multiplies.
constexpr float kCubicTerm = kSqrt2OverPi * kCubic;

// The exponential and the division of one element, in one of two precisions. bf16 results keep 8
// bits, so there the hardware's approximations serve: exp2f (ex2.approx, 2 ulps; the product's
// rounding adds ~1e-6 relative at the arguments that matter) and __fdividef (an approximate
// reciprocal and a multiply, 2 ulps) change an occasional last bf16 bit at most. The IEEE forms
// (expf's range reduction, a division with a branch to its slow path) made the bf16 forward's
// sm_90 loop ~280 instructions a pack of 8, ~164 now: it was compute-bound at 68% of the copy
// bandwidth where fp32, with half the elements a byte, reached 99%. fp32 keeps the IEEE forms
// its 1e-5 tests hold them to.
template <bool kApproximate>
__device__ __forceinline__ float exp_of_minus_2(float a) {  // exp(-2a)
  if constexpr (kApproximate) return exp2f(a * (-2.0f * 1.4426950408889634f));  // ex2.approx: 2 ulps
  return expf(-2.0f * a);
}
template <bool kApproximate>
__device__ __forceinline__ float divide(float a, float b) {
  if constexpr (kApproximate) return __fdividef(a, b);  // 0 for |b| > 2^126: a / b is below 2^-126 |a| there
  return a / b;
}

// 0.5 (1 + tanh a) is evaluated as sigmoid(2a): for z << 0, 1 + tanh(a) cancels to a few ulps
// of 1, which made the fp32 result wrong in its leading digits there.
template <bool kApproximate>
__device__ __forceinline__ float gelu(float z) {
  const float a = z * (kSqrt2OverPi + kCubicTerm * (z * z));
  // exp(+large) = inf gives -0 for z << 0, as it should.
  return divide<kApproximate>(z, 1.0f + exp_of_minus_2<kApproximate>(a));
}

template <bool kApproximate>
__device__ __forceinline__ float gelu_derivative(float z) {
  const float a = z * (kSqrt2OverPi + kCubicTerm * (z * z));
  const float e = exp_of_minus_2<kApproximate>(fabsf(a));  // in (0, 1]: cannot overflow
  const float r = divide<kApproximate>(1.0f, 1.0f + e);
  const float s = a >= 0.0f ? r : e * r;           // sigmoid(2a) = (1 + t) / 2
  const float s_complement = a >= 0.0f ? e * r : r;  // 1 - s = (1 - t) / 2, without cancellation
  // 0.5 (1 + t) + 0.5 z (1 - t^2) k (1 + 3c z^2), with 1 - t^2 = 4 s (1 - s)
  return s + z * s * s_complement * (2.0f * kSqrt2OverPi + 6.0f * kCubicTerm * (z * z));
}

template <typename T>
constexpr bool kApproximateMath = !std::is_same_v<T, float>;  // bf16 (see exp_of_minus_2)

// The fp32 bias of a pack's kVec columns: in 16-byte loads for whole packs (Note [Whole-pack
// loads], block_reduce.cuh: one element at a time, a bf16 pack's 8 bias loads each took 8 L1
// accesses across the warp), else one element.
template <int kVec>
__device__ __forceinline__ void load_bias(const float* __restrict__ bias, std::int64_t col, float (&b)[kVec]) {
  if constexpr (kVec % 4 == 0) {
    using B = Pack<float, 4>;
#pragma unroll
    for (int i = 0; i < kVec / 4; ++i) {
      const B part = load_pack(reinterpret_cast<const B*>(bias + col) + i);
#pragma unroll
      for (int k = 0; k < 4; ++k) b[4 * i + k] = part.values[k];
    }
  } else {
#pragma unroll
    for (int k = 0; k < kVec; ++k) b[k] = bias[col + k];
  }
}

template <typename T, int kVec>
__global__ void gelu_bias_forward_kernel(const T* __restrict__ input, const float* __restrict__ bias,
                                         T* __restrict__ output, std::int64_t cols, std::int64_t units) {
  using P = Pack<T, kVec>;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t u = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; u < units; u += stride) {
    const std::int64_t col = u * kVec % cols;  // kVec divides cols, so a pack never crosses a row
    const P x = reinterpret_cast<const P*>(input)[u];
    float b[kVec];
    load_bias(bias, col, b);
    P y;
#pragma unroll
    for (int k = 0; k < kVec; ++k) y.values[k] = from_float<T>(gelu<kApproximateMath<T>>(to_float(x.values[k]) + b[k]));
    reinterpret_cast<P*>(output)[u] = y;
  }
}

// grad_input = grad_output * gelu'(x + b); partials (unless null) [segments, cols] get the
// column sums of the fp32 products over each segment's rows.
template <typename T, int kVec>
__global__ void gelu_bias_backward_kernel(const T* __restrict__ input, const float* __restrict__ bias,
                                          const T* __restrict__ grad_output, T* __restrict__ grad_input,
                                          float* __restrict__ partials, std::int64_t rows, std::int64_t cols,
                                          std::int64_t rows_per_segment) {
  using P = Pack<T, kVec>;
  const std::int64_t packs_per_row = cols / kVec;
  const auto [pack, begin, end] = segment_tile(rows, rows_per_segment);
  float sums[kVec] = {};
  if (pack < packs_per_row) {
    float b[kVec];
    load_bias(bias, pack * kVec, b);
    for (std::int64_t r = begin + threadIdx.y; r < end; r += kRowLanes) {
      const std::int64_t u = r * packs_per_row + pack;
      const P x = reinterpret_cast<const P*>(input)[u];
      const P d = reinterpret_cast<const P*>(grad_output)[u];
      P g;
#pragma unroll
      for (int k = 0; k < kVec; ++k) {
        const float dz = to_float(d.values[k]) * gelu_derivative<kApproximateMath<T>>(to_float(x.values[k]) + b[k]);
        g.values[k] = from_float<T>(dz);
        sums[k] += dz;
      }
      reinterpret_cast<P*>(grad_input)[u] = g;
    }
  }
  if (partials == nullptr) return;  // the same for the whole block: no thread waits below
  const bool in_range = pack < packs_per_row;
  add_row_lanes<kVec>(sums, in_range ? partials + blockIdx.y * cols + pack * kVec : nullptr, in_range);
}

template <typename T>
void forward_typed(const GeluBiasParams& p, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  const bool vectorised = p.cols % kVec == 0 && aligned16(p.input) && aligned16(p.output) && aligned16(p.bias);
  const std::int64_t numel = p.rows * p.cols;
  const std::int64_t units = vectorised ? numel / kVec : numel;
  const auto blocks = static_cast<unsigned>(std::clamp<std::int64_t>((units + kThreads - 1) / kThreads, 1, 65535));
  const auto* x = static_cast<const T*>(p.input);
  auto* y = static_cast<T*>(p.output);
  if (vectorised) {
    gelu_bias_forward_kernel<T, kVec><<<blocks, kThreads, 0, stream>>>(x, p.bias, y, p.cols, units);
  } else {
    gelu_bias_forward_kernel<T, 1><<<blocks, kThreads, 0, stream>>>(x, p.bias, y, p.cols, units);
  }
  ALBION_CUDA_CHECK(cudaGetLastError());
}

template <typename T>
void backward_typed(const GeluBiasParams& p, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  const bool vectorised = p.cols % kVec == 0 && aligned16(p.input) && aligned16(p.output) &&
                          aligned16(p.grad_output) && aligned16(p.bias);
  const RowSegments segments = row_segments(p.rows, kRowsPerSegment, kMaxSegments);
  const dim3 grid = segment_tile_grid(vectorised ? p.cols / kVec : p.cols, segments.count);
  const dim3 block = segment_tile_block();
  const auto* x = static_cast<const T*>(p.input);
  const auto* dy = static_cast<const T*>(p.grad_output);
  auto* dx = static_cast<T*>(p.output);
  float* partials = p.grad_bias != nullptr ? p.partials : nullptr;
  if (vectorised) {
    gelu_bias_backward_kernel<T, kVec><<<grid, block, 0, stream>>>(x, p.bias, dy, dx, partials, p.rows, p.cols,
                                                                    segments.rows_per);
  } else {
    gelu_bias_backward_kernel<T, 1><<<grid, block, 0, stream>>>(x, p.bias, dy, dx, partials, p.rows, p.cols,
                                                                 segments.rows_per);
  }
  ALBION_CUDA_CHECK(cudaGetLastError());
  if (p.grad_bias != nullptr) {
    add_segments_kernel<><<<segment_tile_grid(p.cols, 1), block, 0, stream>>>(partials, segments.count, p.cols,
                                                                             p.grad_bias);
    ALBION_CUDA_CHECK(cudaGetLastError());
  }
}

void check_shape(const GeluBiasParams& p) {
  ALBION_CHECK(p.rows >= 0 && p.cols > 0, "gelu_bias: bad shape ", p.rows, "x", p.cols);
  ALBION_CHECK(p.cols <= std::int64_t{0x7fffffff} * kPackLanes, "gelu_bias: ", p.cols, " columns exceed the grid");
}

}  // namespace

std::int64_t gelu_bias_grad_segments(std::int64_t rows) {
  return row_segments(rows, kRowsPerSegment, kMaxSegments).count;
}

void launch_gelu_bias_forward(const GeluBiasParams& p, cudaStream_t stream) {
  check_shape(p);
  if (p.rows == 0) return;
  switch (p.dtype) {
    case DType::kFloat32: forward_typed<float>(p, stream); break;
    case DType::kBFloat16: forward_typed<__nv_bfloat16>(p, stream); break;
  }
}

void launch_gelu_bias_backward(const GeluBiasParams& p, cudaStream_t stream) {
  check_shape(p);
  ALBION_CHECK(p.grad_bias == nullptr || p.partials != nullptr, "gelu_bias backward: grad_bias needs partials");
  if (p.rows == 0 && p.grad_bias == nullptr) return;  // with no rows, grad_bias still gets its zeros
  switch (p.dtype) {
    case DType::kFloat32: backward_typed<float>(p, stream); break;
    case DType::kBFloat16: backward_typed<__nv_bfloat16>(p, stream); break;
  }
}

}  // namespace albion::kernels
