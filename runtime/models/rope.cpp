// File: runtime/models/rope.cpp
// RoPE frequencies (with Llama 3 scaling), tables and rotation; formulas in rope.h.
#include "runtime/models/rope.h"

#include <torch/types.h>

#include <cmath>
#include <numbers>
#include <vector>

namespace albion::models {

at::Tensor rope_inverse_frequencies(std::int64_t head_dim, double theta,
                                    const std::optional<RopeScaling>& scaling) {
  std::vector<double> inv_freq(static_cast<std::size_t>(head_dim / 2));
  for (std::size_t i = 0; i < inv_freq.size(); ++i) {
    double f = std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(head_dim));
    if (scaling) {
      const double original = static_cast<double>(scaling->original_max_position);
      const double wavelength = 2.0 * std::numbers::pi / f;
      if (wavelength > original / scaling->low_freq_factor) {
        f /= scaling->factor;
      } else if (wavelength >= original / scaling->high_freq_factor) {
        const double s = (original / wavelength - scaling->low_freq_factor) /
                         (scaling->high_freq_factor - scaling->low_freq_factor);
        f = (1.0 - s) * f / scaling->factor + s * f;
      }
    }
    inv_freq[i] = f;
  }
  return at::tensor(inv_freq, at::TensorOptions().dtype(at::kDouble));
}

at::Tensor apply_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const std::int64_t half = x.size(-1) / 2;
  const at::Tensor rotated = at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos.to(x.scalar_type()) + rotated * sin.to(x.scalar_type());
}

RotaryTables::RotaryTables(at::Tensor inverse_frequencies)
    : inverse_frequencies_(std::move(inverse_frequencies)) {}

RotaryTables::Tables RotaryTables::get(std::int64_t length, at::Device device,
                                       at::ScalarType activation_type) {
  const at::ScalarType table_type = activation_type == at::kDouble ? at::kDouble : at::kFloat;
  const bool hit = cached_.cos.defined() && cached_.cos.size(0) >= length &&
                   cached_.cos.device() == device && cached_.cos.scalar_type() == table_type;
  if (!hit) {
    torch::NoGradGuard no_grad;
    const at::Tensor positions = at::arange(length, at::TensorOptions().dtype(at::kDouble));
    const at::Tensor freqs = at::outer(positions, inverse_frequencies_);
    const at::Tensor both = at::cat({freqs, freqs}, -1);
    cached_ = {both.cos().to(device, table_type), both.sin().to(device, table_type)};
  }
  return {cached_.cos.narrow(0, 0, length), cached_.sin.narrow(0, 0, length)};
}

}  // namespace albion::models
