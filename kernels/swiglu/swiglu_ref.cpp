// File: kernels/swiglu/swiglu_ref.cpp
// CPU reference of SwiGLU (swiglu.cuh has the formulas).
#include <cmath>

#include "kernels/swiglu/swiglu.cuh"

namespace albion::kernels {

template <typename T>
void swiglu_forward_reference(const T* gate, const T* up, T* out, std::int64_t numel) {
  for (std::int64_t i = 0; i < numel; ++i) {
    const T sigmoid = T(1) / (T(1) + std::exp(-gate[i]));
    out[i] = gate[i] * sigmoid * up[i];
  }
}

template <typename T>
void swiglu_backward_reference(const T* grad_out, const T* gate, const T* up, T* grad_gate, T* grad_up,
                               std::int64_t numel) {
  for (std::int64_t i = 0; i < numel; ++i) {
    const T sigmoid = T(1) / (T(1) + std::exp(-gate[i]));
    grad_up[i] = grad_out[i] * gate[i] * sigmoid;
    grad_gate[i] = grad_out[i] * up[i] * sigmoid * (T(1) + gate[i] * (T(1) - sigmoid));
  }
}

template void swiglu_forward_reference<float>(const float*, const float*, float*, std::int64_t);
template void swiglu_forward_reference<double>(const double*, const double*, double*, std::int64_t);
template void swiglu_backward_reference<float>(const float*, const float*, const float*, float*, float*,
                                               std::int64_t);
template void swiglu_backward_reference<double>(const double*, const double*, const double*, double*, double*,
                                                std::int64_t);

}  // namespace albion::kernels
