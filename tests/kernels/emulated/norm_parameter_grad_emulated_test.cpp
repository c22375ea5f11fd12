// File: tests/kernels/emulated/norm_parameter_grad_emulated_test.cpp
// kernels/norm_grad/norm_parameter_grad.cu (two launches: per-segment partials of 16-byte packs
// through a shared-memory transpose, then the sum over segments) on the CPU emulator against its
// reference; no rows gives zeros.
#include <cstdint>
#include <tuple>

#include "kernels/norm_grad/norm_parameter_grad.cuh"
#include "tests/kernels/emulated/emulated_support.h"

namespace albion::kernels::emulated {
namespace {

class NormParameterGradEmulated : public EmulatedKernel {};

// layernorm: with mean and a bias gradient; otherwise RMSNorm's weight gradient alone. `offset`
// elements into x and dy: 1 makes them miss 16-byte alignment.
template <typename T>
void check(std::int64_t rows, std::int64_t cols, std::int64_t offset, bool layernorm) {
  SCOPED_TRACE(case_name<T>(rows, cols, offset) + (layernorm ? " layernorm" : " rmsnorm"));
  const DeviceBuffer<T> x = random_values<T>(rows * cols + offset, rows);
  const DeviceBuffer<T> dy = random_values<T>(rows * cols + offset, rows + 1);
  const DeviceBuffer<float> mean = random_values<float>(rows, rows + 2, 0.1f);
  DeviceBuffer<float> rstd = random_values<float>(rows, rows + 3);
  for (float& r : rstd) r = 1.0f + std::abs(r);
  DeviceBuffer<float> partials = poisoned<float>((layernorm ? 2 : 1) * norm_parameter_grad_segments(rows) * cols);
  DeviceBuffer<float> grad_weight = poisoned<float>(cols);
  DeviceBuffer<float> grad_bias = poisoned<float>(cols);

  NormParameterGradParams params{dy.data() + offset, x.data() + offset, layernorm ? mean.data() : nullptr, rstd.data(),
                                 partials.data(),    grad_weight.data(),
                                 layernorm ? grad_bias.data() : nullptr, rows, cols, dtype_of<T>()};
  launch_norm_parameter_grad(params, nullptr);

  const std::vector<float> xf = widened(x.data() + offset, rows * cols);
  const std::vector<float> dyf = widened(dy.data() + offset, rows * cols);
  std::vector<float> weight_expected(cols), bias_expected(cols);
  norm_parameter_grad_reference<float>(dyf.data(), xf.data(), layernorm ? mean.data() : nullptr, rstd.data(),
                                       weight_expected.data(), layernorm ? bias_expected.data() : nullptr, rows,
                                       cols);
  // Sums of signed terms: judged against their scale; fp32 accumulation in both, in different orders.
  EXPECT_LT(max_error_relative_to_scale(grad_weight, weight_expected), 1e-5);
  if (layernorm) {
    EXPECT_LT(max_error_relative_to_scale(grad_bias, bias_expected), 1e-5);
  }
}

TEST_P(NormParameterGradEmulated, MatchesReference) {
  // 33 columns or misaligned: element-wise; 64 and 768 (GPT-2's width): packs; 2049 rows: many
  // segments.
  for (auto [rows, cols, offset] :
       {std::tuple{1, 1, 0}, {0, 8, 0}, {7, 33, 0}, {300, 64, 0}, {2049, 40, 0}, {70, 768, 0}, {9, 64, 1}}) {
    for (bool layernorm : {false, true}) {
      check<float>(rows, cols, offset, layernorm);
      check<__nv_bfloat16>(rows, cols, offset, layernorm);
    }
  }
}

ALBION_EMULATED_SCHEDULES(NormParameterGradEmulated);

}  // namespace
}  // namespace albion::kernels::emulated
