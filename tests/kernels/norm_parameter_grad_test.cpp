// File: tests/kernels/norm_parameter_grad_test.cpp
// The norms' parameter gradients: the CPU reference against the torch composition (LayerNorm with
// mean and bias, RMSNorm without) and central finite differences in fp64, bad inputs, and (suite
// NormParameterGradCuda, label gpu; also on the CPU emulator in kernels_on_emulator_test) the CUDA
// kernels against the reference on the same rounded inputs, outputs poisoned, for row counts that
// span one and many segments and odd column counts.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <tuple>

#include "kernels/norm_grad/norm_parameter_grad.h"
#include "runtime/base/error.h"
#include "tests/kernels/kernel_device.h"
#include "tests/kernels/relative_error.h"

namespace albion::kernels {
namespace {

struct Statistics {
  at::Tensor mean;  // undefined for RMSNorm
  at::Tensor rstd;
};

Statistics statistics_of(const at::Tensor& x, bool layernorm) {
  const at::Tensor rows = x.reshape({-1, x.size(-1)}).to(x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat);
  if (!layernorm) return {at::Tensor(), at::rsqrt(rows.pow(2).mean(-1) + 1e-5)};
  return {rows.mean(-1), at::rsqrt(rows.var(-1, /*unbiased=*/false) + 1e-5)};
}

TEST(NormParameterGrad, ReferenceMatchesTorchComposition) {
  for (bool layernorm : {true, false}) {
    at::manual_seed(layernorm ? 1 : 2);
    const at::Tensor x = at::randn({3, 7, 13}, at::kDouble) * 2 + 0.5;
    const at::Tensor dy = at::randn({3, 7, 13}, at::kDouble);
    const Statistics s = statistics_of(x, layernorm);
    auto [grad_weight, grad_bias] = norm_parameter_grads(dy, x, s.mean, s.rstd, layernorm);
    const at::Tensor rows_x = x.reshape({-1, 13});
    const at::Tensor rows_dy = dy.reshape({-1, 13});
    const at::Tensor xhat = (layernorm ? rows_x - s.mean.unsqueeze(1) : rows_x) * s.rstd.unsqueeze(1);
    EXPECT_LT(max_relative_error(grad_weight, (rows_dy * xhat).sum(0)), 1e-12) << layernorm;
    EXPECT_EQ(grad_bias.defined(), layernorm);
    if (layernorm) {
      EXPECT_LT(max_relative_error(grad_bias, rows_dy.sum(0)), 1e-12);
    }
  }
}

TEST(NormParameterGrad, MatchesFiniteDifferencesOfTheAffineOutput) {
  // L(w, b) = sum(dy * (xhat * w + b)); dL/dw and dL/db by central differences.
  at::manual_seed(3);
  const at::Tensor x = at::randn({5, 6}, at::kDouble);
  const at::Tensor dy = at::randn({5, 6}, at::kDouble);
  const Statistics s = statistics_of(x, true);
  const at::Tensor xhat = (x - s.mean.unsqueeze(1)) * s.rstd.unsqueeze(1);
  const at::Tensor w = at::randn({6}, at::kDouble);
  const at::Tensor b = at::randn({6}, at::kDouble);
  const auto loss = [&](const at::Tensor& weight, const at::Tensor& bias) {
    return (dy * (xhat * weight + bias)).sum().item<double>();
  };
  auto [grad_weight, grad_bias] = norm_parameter_grads(dy, x, s.mean, s.rstd, true);
  const double h = 1e-6;
  for (std::int64_t c = 0; c < 6; ++c) {
    at::Tensor step = at::zeros({6}, at::kDouble);
    step[c] = h;
    EXPECT_NEAR(grad_weight[c].item<double>(), (loss(w + step, b) - loss(w - step, b)) / (2 * h), 1e-7) << c;
    EXPECT_NEAR(grad_bias[c].item<double>(), (loss(w, b + step) - loss(w, b - step)) / (2 * h), 1e-7) << c;
  }
}

TEST(NormParameterGrad, RefusesMismatchedInputs) {
  const at::Tensor x = at::zeros({4, 3});
  const at::Tensor rstd = at::ones({4});
  EXPECT_THROW(norm_parameter_grads(at::zeros({4, 2}), x, at::Tensor(), rstd, false), UsageError);
  EXPECT_THROW(norm_parameter_grads(at::zeros({4, 3}, at::kDouble), x, at::Tensor(), rstd, false), UsageError);
  EXPECT_THROW(norm_parameter_grads(x, x, at::Tensor(), at::ones({3}), false), UsageError);
  EXPECT_THROW(norm_parameter_grads(x, x, at::ones({4}, at::kDouble), rstd, true), UsageError);
  EXPECT_THROW(norm_parameter_grads(x.t(), x.t(), at::Tensor(), at::ones({3}), false), UsageError);
}

TEST(NormParameterGradCuda, KernelMatchesTheReference) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    const double tolerance = dtype == at::kFloat ? 1e-5 : 1e-2;
    for (const auto& [rows, cols] : {std::pair<std::int64_t, std::int64_t>{1, 7}, {33, 768}, {5000, 1000},
                                     {20000, 64}}) {
      for (bool layernorm : {true, false}) {
        at::manual_seed(rows + cols);
        const at::Tensor x = to_kernel_device((at::randn({rows, cols}) * 2 + 0.5).to(dtype));
        const at::Tensor dy = to_kernel_device(at::randn({rows, cols}).to(dtype));
        const Statistics s = statistics_of(x, layernorm);
        at::Tensor grad_weight, grad_bias;
        {
          const OnKernelDevice on_device;
          poison_kernel_allocator(cols * 4 * 2);
          std::tie(grad_weight, grad_bias) = norm_parameter_grads(dy, x, s.mean, s.rstd, layernorm);
        }
        const Statistics s64 = {layernorm ? s.mean.cpu().to(at::kDouble) : at::Tensor(), s.rstd.cpu().to(at::kDouble)};
        auto [expected_weight, expected_bias] = norm_parameter_grads(dy.cpu().to(at::kDouble), x.cpu().to(at::kDouble),
                                                                     s64.mean, s64.rstd, layernorm);
        EXPECT_FALSE(grad_weight.isnan().any().item<bool>());
        EXPECT_LT(max_error_relative_to_scale(grad_weight, expected_weight), tolerance)
            << dtype << " " << rows << "x" << cols << " layernorm " << layernorm;
        if (layernorm) {
          EXPECT_LT(max_error_relative_to_scale(grad_bias, expected_bias), tolerance)
              << dtype << " " << rows << "x" << cols;
        }
      }
    }
  }
}

}  // namespace
}  // namespace albion::kernels
