// File: kernels/adamw/fused_adamw_ref.cpp
// CPU reference of the fused AdamW step (fused_adamw.cuh has the formulas).
#include <c10/util/BFloat16.h>

#include <cmath>

#include "kernels/adamw/fused_adamw.cuh"

namespace albion::kernels {

void fused_adamw_reference(const std::vector<AdamWTensor>& tensors, const AdamWHyper& h) {
  const float scale = h.gradient_scale != nullptr ? *h.gradient_scale : 1.0f;
  for (const AdamWTensor& t : tensors) {
    for (std::int64_t i = 0; i < t.numel; ++i) {
      const float g = t.gradient[i] * scale;
      const float m = t.exp_avg[i] * h.beta1 + g * (1.0f - h.beta1);
      const float v = t.exp_avg_sq[i] * h.beta2 + (1.0f - h.beta2) * g * g;
      t.exp_avg[i] = m;
      t.exp_avg_sq[i] = v;
      float p = t.parameter[i];
      if (t.decayed && h.weight_decay > 0) p *= 1.0f - h.lr * h.weight_decay;
      const float denominator = std::sqrt(v / h.bias_correction2) + h.eps;
      t.parameter[i] = p + (-h.lr / h.bias_correction1) * (m / denominator);
      if (t.bf16_copy != nullptr) t.bf16_copy[i] = c10::detail::round_to_nearest_even(t.parameter[i]);  // as __float2bfloat16_rn
    }
  }
}

}  // namespace albion::kernels
