// File: tests/kernels/emulated/gelu_bias_emulated_test.cpp
// kernels/gelu/gelu_bias.cu on the CPU emulator against gelu_bias_ref.cpp: rows whose length is
// and is not a whole number of packs, misaligned pointers (the bias's alone too: its packs are
// loaded whole), several row segments; the backward with and without the bias gradient.
#include <cstdint>
#include <string>
#include <tuple>

#include "kernels/gelu/gelu_bias.cuh"
#include "tests/kernels/emulated/emulated_support.h"

namespace albion::kernels::emulated {
namespace {

class GeluBiasEmulated : public EmulatedKernel {};

template <typename T>
void check(std::int64_t rows, std::int64_t cols, std::int64_t offset, std::int64_t bias_offset = 0) {
  SCOPED_TRACE(case_name<T>(rows, cols, offset) + " bias offset " + std::to_string(bias_offset));
  const std::size_t n = rows * cols + offset;
  const DeviceBuffer<T> x = random_values<T>(n, cols, 3.0f);
  const DeviceBuffer<float> bias_storage = random_values<float>(cols + bias_offset, cols + 1);
  const float* bias = bias_storage.data() + bias_offset;
  const DeviceBuffer<T> dy = random_values<T>(n, cols + 2);
  DeviceBuffer<T> y = poisoned<T>(n), dz = poisoned<T>(n), dz_alone = poisoned<T>(n);
  DeviceBuffer<float> grad_bias = poisoned<float>(cols);
  DeviceBuffer<float> partials = poisoned<float>(gelu_bias_grad_segments(rows) * cols);

  GeluBiasParams p{x.data() + offset, bias, nullptr, y.data() + offset, nullptr, nullptr, rows, cols,
                   dtype_of<T>()};
  launch_gelu_bias_forward(p, nullptr);
  p.grad_output = dy.data() + offset;
  p.output = dz.data() + offset;
  p.grad_bias = grad_bias.data();
  p.partials = partials.data();
  launch_gelu_bias_backward(p, nullptr);
  p.output = dz_alone.data() + offset;  // without the bias gradient
  p.grad_bias = p.partials = nullptr;
  launch_gelu_bias_backward(p, nullptr);

  const std::vector<float> xf = widened(x.data() + offset, rows * cols);
  const std::vector<float> dyf = widened(dy.data() + offset, rows * cols);
  std::vector<float> y_expected(rows * cols), dz_expected(rows * cols), grad_bias_expected(cols);
  gelu_bias_forward_reference<float>(xf.data(), bias, y_expected.data(), rows, cols);
  gelu_bias_backward_reference<float>(dyf.data(), xf.data(), bias, dz_expected.data(),
                                      grad_bias_expected.data(), rows, cols);
  // gelu and gelu' cross zero, and dbias sums terms of both signs: judged against their scale.
  // dbias sums dz before rounding to T, so its bound is fp32's whatever T is.
  EXPECT_LT(max_error_relative_to_scale(widened(y.data() + offset, rows * cols), y_expected), tolerance<T>());
  EXPECT_LT(max_error_relative_to_scale(widened(dz.data() + offset, rows * cols), dz_expected), tolerance<T>());
  EXPECT_LT(max_error_relative_to_scale(widened(dz_alone.data() + offset, rows * cols), dz_expected), tolerance<T>());
  EXPECT_LT(max_error_relative_to_scale(widened(grad_bias), grad_bias_expected), 1e-5);
}

TEST_P(GeluBiasEmulated, MatchesReference) {
  // 300 rows: three row segments; 3072 columns: GPT-2's MLP width, 12 or 24 blocks across.
  for (auto [rows, cols, offset] :
       {std::tuple{1, 1, 0}, {3, 8, 0}, {5, 37, 0}, {4, 768, 0}, {3, 64, 1}, {300, 72, 0}, {9, 3072, 0}}) {
    check<float>(rows, cols, offset);
    check<__nv_bfloat16>(rows, cols, offset);
  }
  check<float>(4, 768, 0, /*bias_offset=*/1);
  check<__nv_bfloat16>(4, 768, 0, /*bias_offset=*/1);
}

ALBION_EMULATED_SCHEDULES(GeluBiasEmulated);

}  // namespace
}  // namespace albion::kernels::emulated
