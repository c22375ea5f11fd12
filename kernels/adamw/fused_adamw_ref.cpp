// File: kernels/adamw/fused_adamw_ref.cpp
// CPU reference of the fused AdamW step (fused_adamw.cuh has the formulas).
#include <cmath>
#include <cstring>

#include "kernels/adamw/fused_adamw.cuh"

namespace albion::kernels {
namespace {

// fp32 -> bf16 bits, round to nearest, ties to even (as __float2bfloat16_rn); NaN stays NaN.
std::uint16_t to_bfloat16_bits(float value) {
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  if (std::isnan(value)) return static_cast<std::uint16_t>((bits >> 16) | 0x40);
  bits += 0x7fff + ((bits >> 16) & 1);
  return static_cast<std::uint16_t>(bits >> 16);
}

}  // namespace

void fused_adamw_reference(const std::vector<AdamWTensor>& tensors, const AdamWHyper& h) {
  for (const AdamWTensor& t : tensors) {
    for (std::int64_t i = 0; i < t.numel; ++i) {
      const float g = t.gradient[i];
      const float m = t.exp_avg[i] * h.beta1 + g * (1.0f - h.beta1);
      const float v = t.exp_avg_sq[i] * h.beta2 + (1.0f - h.beta2) * g * g;
      t.exp_avg[i] = m;
      t.exp_avg_sq[i] = v;
      float p = t.parameter[i];
      if (t.decayed && h.weight_decay > 0) p *= 1.0f - h.lr * h.weight_decay;
      const float denominator = std::sqrt(v / h.bias_correction2) + h.eps;
      t.parameter[i] = p + (-h.lr / h.bias_correction1) * (m / denominator);
      if (t.bf16_copy != nullptr) t.bf16_copy[i] = to_bfloat16_bits(t.parameter[i]);
    }
  }
}

}  // namespace albion::kernels
