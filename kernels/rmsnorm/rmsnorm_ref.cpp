// File: kernels/rmsnorm/rmsnorm_ref.cpp
// CPU reference for kernels/rmsnorm/rmsnorm.cu; see rmsnorm.cuh for the contract.
#include <cmath>

#include "kernels/rmsnorm/rmsnorm.cuh"

namespace albion::kernels {

template <typename T>
void rmsnorm_forward_reference(const T* input, const T* weight, T* output, T* inv_rms, std::int64_t rows,
                               std::int64_t cols, T eps) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* x = input + r * cols;
    T* y = output + r * cols;
    T sum_squares = 0;
    for (std::int64_t c = 0; c < cols; ++c) sum_squares += x[c] * x[c];
    const T scale = T(1) / std::sqrt(sum_squares / static_cast<T>(cols) + eps);
    for (std::int64_t c = 0; c < cols; ++c) y[c] = x[c] * scale * weight[c];
    if (inv_rms != nullptr) inv_rms[r] = scale;
  }
}

template <typename T>
void rmsnorm_backward_reference(const T* grad_output, const T* input, const T* weight, const T* inv_rms,
                                T* grad_input, std::int64_t rows, std::int64_t cols) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* x = input + r * cols;
    const T* dy = grad_output + r * cols;
    T* dx = grad_input + r * cols;
    const T scale = inv_rms[r];
    T dot = 0;  // sum of g x, g = weight * dy
    for (std::int64_t c = 0; c < cols; ++c) dot += weight[c] * dy[c] * x[c];
    const T correction = scale * scale * scale * dot / static_cast<T>(cols);
    for (std::int64_t c = 0; c < cols; ++c) dx[c] = scale * weight[c] * dy[c] - correction * x[c];
  }
}

template void rmsnorm_forward_reference<float>(const float*, const float*, float*, float*, std::int64_t,
                                               std::int64_t, float);
template void rmsnorm_forward_reference<double>(const double*, const double*, double*, double*, std::int64_t,
                                                std::int64_t, double);
template void rmsnorm_backward_reference<float>(const float*, const float*, const float*, const float*, float*,
                                                std::int64_t, std::int64_t);
template void rmsnorm_backward_reference<double>(const double*, const double*, const double*, const double*,
                                                 double*, std::int64_t, std::int64_t);

}  // namespace albion::kernels
