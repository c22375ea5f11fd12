// File: kernels/norm_grad/norm_parameter_grad_ref.cpp
// CPU reference of the norm parameter gradients (norm_parameter_grad.cuh has the formulas).
#include <vector>

#include "kernels/norm_grad/norm_parameter_grad.cuh"

namespace albion::kernels {

template <typename T>
void norm_parameter_grad_reference(const T* grad_output, const T* input, const T* mean, const T* rstd,
                                   T* grad_weight, T* grad_bias, std::int64_t rows, std::int64_t cols) {
  std::vector<double> weight_sums(static_cast<std::size_t>(cols), 0.0);
  std::vector<double> bias_sums(static_cast<std::size_t>(cols), 0.0);
  for (std::int64_t r = 0; r < rows; ++r) {
    const double m = mean != nullptr ? static_cast<double>(mean[r]) : 0.0;
    for (std::int64_t c = 0; c < cols; ++c) {
      const double dy = static_cast<double>(grad_output[r * cols + c]);
      weight_sums[c] += dy * (static_cast<double>(input[r * cols + c]) - m) * static_cast<double>(rstd[r]);
      bias_sums[c] += dy;
    }
  }
  for (std::int64_t c = 0; c < cols; ++c) {
    grad_weight[c] = static_cast<T>(weight_sums[c]);
    if (grad_bias != nullptr) grad_bias[c] = static_cast<T>(bias_sums[c]);
  }
}

template void norm_parameter_grad_reference<float>(const float*, const float*, const float*, const float*, float*,
                                                   float*, std::int64_t, std::int64_t);
template void norm_parameter_grad_reference<double>(const double*, const double*, const double*, const double*,
                                                    double*, double*, std::int64_t, std::int64_t);

}  // namespace albion::kernels
