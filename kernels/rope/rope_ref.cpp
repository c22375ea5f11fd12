// File: kernels/rope/rope_ref.cpp
// CPU reference of the rotary embedding (rope.cuh has the formulas). In place is allowed.
#include "kernels/rope/rope.cuh"

namespace albion::kernels {

template <typename T>
void rope_reference(const T* input, T* output, const T* cos, const T* sin, std::int64_t batch, std::int64_t seq,
                    std::int64_t heads, std::int64_t head_dim, T direction) {
  const std::int64_t half = head_dim / 2;
  for (std::int64_t b = 0; b < batch; ++b) {
    for (std::int64_t t = 0; t < seq; ++t) {
      const T* c = cos + t * head_dim;
      const T* s = sin + t * head_dim;
      for (std::int64_t h = 0; h < heads; ++h) {
        const std::int64_t row = ((b * seq + t) * heads + h) * head_dim;
        for (std::int64_t i = 0; i < half; ++i) {
          const T x1 = input[row + i];
          const T x2 = input[row + i + half];
          const T sine = direction * s[i];
          output[row + i] = x1 * c[i] - x2 * sine;
          output[row + i + half] = x2 * c[i] + x1 * sine;
        }
      }
    }
  }
}

template void rope_reference<float>(const float*, float*, const float*, const float*, std::int64_t, std::int64_t,
                                    std::int64_t, std::int64_t, float);
template void rope_reference<double>(const double*, double*, const double*, const double*, std::int64_t,
                                     std::int64_t, std::int64_t, std::int64_t, double);

}  // namespace albion::kernels
