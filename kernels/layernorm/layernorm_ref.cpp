// File: kernels/layernorm/layernorm_ref.cpp
// CPU reference of LayerNorm (layernorm.cuh has the formulas): two passes for the statistics.
#include <cmath>

#include "kernels/layernorm/layernorm.cuh"

namespace albion::kernels {

template <typename T>
void layernorm_forward_reference(const T* input, const T* weight, const T* bias, T* output, T* mean, T* rstd,
                                 std::int64_t rows, std::int64_t cols, T eps) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* x = input + r * cols;
    T sum = 0;
    for (std::int64_t c = 0; c < cols; ++c) sum += x[c];
    const T mu = sum / static_cast<T>(cols);
    T squares = 0;
    for (std::int64_t c = 0; c < cols; ++c) squares += (x[c] - mu) * (x[c] - mu);
    const T inv = T(1) / std::sqrt(squares / static_cast<T>(cols) + eps);
    for (std::int64_t c = 0; c < cols; ++c) output[r * cols + c] = (x[c] - mu) * inv * weight[c] + bias[c];
    mean[r] = mu;
    rstd[r] = inv;
  }
}

template <typename T>
void layernorm_backward_reference(const T* grad_output, const T* input, const T* weight, const T* mean,
                                  const T* rstd, T* grad_input, std::int64_t rows, std::int64_t cols) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* x = input + r * cols;
    const T* dy = grad_output + r * cols;
    T mean_g = 0;
    T mean_g_xhat = 0;
    for (std::int64_t c = 0; c < cols; ++c) {
      const T g = weight[c] * dy[c];
      mean_g += g;
      mean_g_xhat += g * (x[c] - mean[r]) * rstd[r];
    }
    mean_g /= static_cast<T>(cols);
    mean_g_xhat /= static_cast<T>(cols);
    for (std::int64_t c = 0; c < cols; ++c) {
      const T xhat = (x[c] - mean[r]) * rstd[r];
      grad_input[r * cols + c] = rstd[r] * (weight[c] * dy[c] - mean_g - xhat * mean_g_xhat);
    }
  }
}

template void layernorm_forward_reference<float>(const float*, const float*, const float*, float*, float*, float*,
                                                 std::int64_t, std::int64_t, float);
template void layernorm_forward_reference<double>(const double*, const double*, const double*, double*, double*,
                                                  double*, std::int64_t, std::int64_t, double);
template void layernorm_backward_reference<float>(const float*, const float*, const float*, const float*,
                                                  const float*, float*, std::int64_t, std::int64_t);
template void layernorm_backward_reference<double>(const double*, const double*, const double*, const double*,
                                                   const double*, double*, std::int64_t, std::int64_t);

}  // namespace albion::kernels
