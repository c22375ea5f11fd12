// File: kernels/grad_norm/grad_norm_ref.cpp
// CPU reference of the multi-tensor squared norm (grad_norm.cuh).
#include <c10/util/BFloat16.h>

#include "kernels/grad_norm/grad_norm.cuh"

namespace albion::kernels {

double squared_norm_reference(const std::vector<NormTensor>& tensors) {
  double sum = 0.0;
  for (const NormTensor& t : tensors) {
    for (std::int64_t i = 0; i < t.numel; ++i) {
      const double x = t.dtype == DType::kBFloat16
                           ? c10::detail::f32_from_bits(static_cast<const std::uint16_t*>(t.data)[i])
                           : static_cast<const float*>(t.data)[i];
      sum += x * x;
    }
  }
  return sum;
}

}  // namespace albion::kernels
