// File: kernels/gelu/gelu_bias_ref.cpp
// CPU reference of the fused bias + GELU-tanh (gelu_bias.cuh has the formulas).
#include <cmath>
#include <numbers>
#include <vector>

#include "kernels/gelu/gelu_bias.cuh"

namespace albion::kernels {
namespace {

template <typename T>
constexpr T kSqrt2OverPi = static_cast<T>(0.79788456080286535587989211986876);
template <typename T>
constexpr T kCubic = static_cast<T>(0.044715);

}  // namespace

template <typename T>
void gelu_bias_forward_reference(const T* input, const T* bias, T* output, std::int64_t rows, std::int64_t cols) {
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < cols; ++c) {
      const T z = input[r * cols + c] + bias[c];
      const T t = std::tanh(kSqrt2OverPi<T> * (z + kCubic<T> * z * z * z));
      output[r * cols + c] = T(0.5) * z * (T(1) + t);
    }
  }
}

template <typename T>
void gelu_bias_backward_reference(const T* grad_output, const T* input, const T* bias, T* grad_input, T* grad_bias,
                                  std::int64_t rows, std::int64_t cols) {
  std::vector<double> bias_sums(grad_bias != nullptr ? cols : 0, 0.0);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < cols; ++c) {
      const T z = input[r * cols + c] + bias[c];
      const T t = std::tanh(kSqrt2OverPi<T> * (z + kCubic<T> * z * z * z));
      const T derivative = T(0.5) * (T(1) + t) +
                           T(0.5) * z * (T(1) - t * t) * kSqrt2OverPi<T> * (T(1) + T(3) * kCubic<T> * z * z);
      grad_input[r * cols + c] = grad_output[r * cols + c] * derivative;
      if (grad_bias != nullptr) bias_sums[c] += grad_input[r * cols + c];
    }
  }
  for (std::size_t c = 0; c < bias_sums.size(); ++c) grad_bias[c] = static_cast<T>(bias_sums[c]);
}

template void gelu_bias_forward_reference<float>(const float*, const float*, float*, std::int64_t, std::int64_t);
template void gelu_bias_forward_reference<double>(const double*, const double*, double*, std::int64_t, std::int64_t);
template void gelu_bias_backward_reference<float>(const float*, const float*, const float*, float*, float*,
                                                  std::int64_t, std::int64_t);
template void gelu_bias_backward_reference<double>(const double*, const double*, const double*, double*, double*,
                                                   std::int64_t, std::int64_t);

}  // namespace albion::kernels
