// File: kernels/rmsnorm/rmsnorm_ref.cpp
// CPU reference for kernels/rmsnorm/rmsnorm.cu; see rmsnorm.cuh for the contract.
#include <cmath>

#include "kernels/rmsnorm/rmsnorm.cuh"

namespace albion::kernels {

void rmsnorm_forward_reference(const float* input, const float* weight, float* output,
                               float* inv_rms, std::int64_t rows, std::int64_t cols, float eps) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* x = input + r * cols;
    float* y = output + r * cols;
    float sum_squares = 0.0f;
    for (std::int64_t c = 0; c < cols; ++c) sum_squares += x[c] * x[c];
    float scale = 1.0f / std::sqrt(sum_squares / static_cast<float>(cols) + eps);
    for (std::int64_t c = 0; c < cols; ++c) y[c] = x[c] * scale * weight[c];
    if (inv_rms != nullptr) inv_rms[r] = scale;
  }
}

}  // namespace albion::kernels
