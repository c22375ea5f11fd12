// File: runtime/models/rope.h
// Rotary position embedding as Llama uses it in the Hugging Face layout ("rotate_half"): the head
// dimension is split into halves [x1, x2] and pair (x1[i], x2[i]) is rotated by position *
// inv_freq[i]:
//   out = x * cos + rotate_half(x) * sin,   rotate_half([x1, x2]) = [-x2, x1]
// with cos/sin holding each frequency twice ([f0..f(d/2-1), f0..f(d/2-1)]).
//
// Llama 3 frequency scaling ("llama3" rope_type), applied per inverse frequency f, wavelength
// w = 2 pi / f, L = original_max_position:
//   w < L / high_freq_factor  -> f             (short wavelengths: unchanged)
//   w > L / low_freq_factor   -> f / factor    (long wavelengths: slowed down)
//   otherwise                 -> (1 - s) f / factor + s f,  s = (L / w - low) / (high - low)
// Frequencies and the cos/sin tables are computed in fp64 and only then cast, so positions near
// 128k keep their accuracy whatever the activation dtype.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <optional>

#include "runtime/models/model_config.h"

namespace albion::models {

// inv_freq[i] = theta^(-2i / head_dim), i in [0, head_dim / 2), scaled when `scaling` is set;
// fp64 on CPU.
at::Tensor rope_inverse_frequencies(std::int64_t head_dim, double theta,
                                    const std::optional<RopeScaling>& scaling);

// x: [..., T, head_dim]; cos, sin: [T, head_dim] (broadcast over the leading dims).
at::Tensor apply_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

// The cos/sin tables for positions [0, length), cached per device and dtype: fp64 for fp64
// activations, fp32 otherwise (apply_rotary casts to the activation dtype).
class RotaryTables {
 public:
  explicit RotaryTables(at::Tensor inverse_frequencies);

  struct Tables {
    at::Tensor cos;
    at::Tensor sin;
  };
  Tables get(std::int64_t length, at::Device device, at::ScalarType activation_type);

 private:
  at::Tensor inverse_frequencies_;  // fp64, CPU
  Tables cached_;                   // for positions [0, cached_.cos.size(0))
};

}  // namespace albion::models
