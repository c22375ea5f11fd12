// File: tests/kernels/gelu_bias_test.cpp
// Fused bias + GELU-tanh: the CPU reference against torch's gelu(x + b, "tanh") and its autograd,
// the backward against fp64 finite differences, the bias gradient, bad inputs, and (suite
// GeluBiasCuda, label gpu; also on the CPU emulator in kernels_on_emulator_test) CUDA against the
// reference with outputs poisoned first, including rows that are not a multiple of a 16-byte pack
// and the fused bias gradient.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <tuple>

#include "kernels/gelu/gelu_bias.h"
#include "runtime/base/error.h"
#include "tests/kernels/kernel_device.h"
#include "tests/kernels/relative_error.h"

namespace albion::kernels {
namespace {

TEST(GeluBias, ReferenceMatchesTorchAndItsAutograd) {
  for (std::int64_t cols : {1, 7, 64, 1000}) {
    at::manual_seed(cols);
    at::Tensor x = (at::randn({3, 5, cols}, at::kDouble) * 3).requires_grad_(true);
    at::Tensor b = at::randn({cols}, at::kDouble).requires_grad_(true);
    at::Tensor dy = at::randn({3, 5, cols}, at::kDouble);
    at::Tensor expected = at::gelu(x + b, "tanh");
    auto expected_grads = torch::autograd::grad({expected}, {x, b}, {dy});
    at::Tensor actual = gelu_bias(x, b);
    auto actual_grads = torch::autograd::grad({actual}, {x, b}, {dy});
    EXPECT_LT((actual - expected).abs().max().item<double>(), 1e-12) << cols;
    EXPECT_LT((actual_grads[0] - expected_grads[0]).abs().max().item<double>(), 1e-12) << cols;
    EXPECT_LT((actual_grads[1] - expected_grads[1]).abs().max().item<double>(), 1e-10) << cols;
    at::Tensor x32 = x.detach().to(at::kFloat);
    at::Tensor b32 = b.detach().to(at::kFloat);
    EXPECT_LT((gelu_bias_forward(x32, b32) - at::gelu(x32 + b32, "tanh")).abs().max().item<double>(), 1e-5) << cols;
  }
}

TEST(GeluBias, BackwardMatchesFiniteDifferences) {
  at::manual_seed(2);
  at::Tensor x = at::randn({3, 5}, at::kDouble) * 2;
  at::Tensor b = at::randn({5}, at::kDouble);
  at::Tensor dy = at::randn({3, 5}, at::kDouble);
  at::Tensor dx = gelu_bias_backward_input(dy, x, b);
  const double h = 1e-6;
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    at::Tensor plus = x.clone(), minus = x.clone();
    plus.view({-1})[i] += h;
    minus.view({-1})[i] -= h;
    const double numeric =
        ((dy * gelu_bias_forward(plus, b)).sum() - (dy * gelu_bias_forward(minus, b)).sum()).item<double>() / (2 * h);
    EXPECT_NEAR(dx.view({-1})[i].item<double>(), numeric, 1e-7) << "element " << i;
  }
}

TEST(GeluBias, BackwardGivesTheBiasGradientAsTheSumOfDx) {
  at::manual_seed(4);
  for (at::ScalarType dtype : {at::kDouble, at::kFloat, at::kBFloat16}) {
    at::Tensor x = (at::randn({2, 7, 40}) * 2).to(dtype);
    at::Tensor b = at::randn({40}).to(dtype);
    at::Tensor dy = at::randn({2, 7, 40}).to(dtype);
    auto [dx, db] = gelu_bias_backward(dy, x, b);
    EXPECT_TRUE(at::equal(dx, gelu_bias_backward_input(dy, x, b))) << dtype;
    EXPECT_EQ(db.scalar_type(), dtype);
    const at::Tensor expected = dx.to(at::kDouble).reshape({-1, 40}).sum(0);
    EXPECT_LT((db.to(at::kDouble) - expected).abs().max().item<double>(), dtype == at::kBFloat16 ? 0.1 : 1e-5)
        << dtype;
  }
  // A frozen bias: autograd asks for x's gradient alone.
  at::Tensor x = at::randn({3, 8}, at::kDouble).requires_grad_(true);
  at::Tensor frozen = at::randn({8}, at::kDouble);
  at::Tensor grad_x = torch::autograd::grad({gelu_bias(x, frozen).sum()}, {x})[0];
  EXPECT_TRUE(at::allclose(grad_x, gelu_bias_backward_input(at::ones_like(x), x.detach(), frozen)));
  // No rows: a zero bias gradient.
  auto [dx, db] = gelu_bias_backward(at::zeros({0, 6}), at::zeros({0, 6}), at::ones({6}));
  EXPECT_EQ(dx.numel(), 0);
  EXPECT_TRUE(at::equal(db, at::zeros({6})));
}

TEST(GeluBias, RefusesBadOperands) {
  EXPECT_THROW(gelu_bias_forward(at::zeros({2, 4}), at::zeros({5})), UsageError);
  EXPECT_THROW(gelu_bias_forward(at::zeros({4, 2}).t(), at::zeros({4})), UsageError);
  EXPECT_THROW(gelu_bias_forward(at::zeros({2, 4}, at::kInt), at::zeros({4})), UsageError);
}

TEST(GeluBiasCuda, KernelsMatchTheReference) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    const double tolerance = dtype == at::kFloat ? 1e-5 : 1e-2;
    for (std::int64_t cols : {3, 8, 1000, 3072}) {
      at::manual_seed(cols);
      at::Tensor x = to_kernel_device((at::randn({17, cols}) * 3).to(dtype));
      at::Tensor b = to_kernel_device(at::randn({cols}));
      at::Tensor dy = to_kernel_device(at::randn({17, cols}).to(dtype));
      at::Tensor x64 = x.cpu().to(at::kDouble), b64 = b.cpu().to(at::kDouble), dy64 = dy.cpu().to(at::kDouble);
      at::Tensor y, grad_input;
      {
        const OnKernelDevice on_device;
        poison_kernel_allocator(x.numel() * 4);
        y = gelu_bias_forward(x, b);
        poison_kernel_allocator(x.numel() * 4);
        grad_input = gelu_bias_backward_input(dy, x, b);
      }
      EXPECT_LT(max_relative_error(y, gelu_bias_forward(x64, b64).to(dtype)), tolerance) << dtype << " cols " << cols;
      at::Tensor expected = gelu_bias_backward_input(dy64, x64, b64).to(dtype);
      const double scale = expected.to(at::kDouble).abs().max().item<double>();
      const double error = (grad_input.cpu().to(at::kDouble) - expected.to(at::kDouble)).abs().max().item<double>();
      EXPECT_LT(error / scale, tolerance) << dtype << " cols " << cols;
      // The fused bias gradient, over 17 rows and over enough rows for several segments.
      for (std::int64_t rows : {17, 1000}) {
        at::Tensor xr = to_kernel_device((at::randn({rows, cols}) * 3).to(dtype));
        at::Tensor dyr = to_kernel_device(at::randn({rows, cols}).to(dtype));
        at::Tensor dx, db;
        {
          const OnKernelDevice on_device;
          poison_kernel_allocator(xr.numel() * 4);
          std::tie(dx, db) = gelu_bias_backward(dyr, xr, b);
        }
        auto [dx64, db64] = gelu_bias_backward(dyr.cpu().to(at::kDouble), xr.cpu().to(at::kDouble), b64);
        EXPECT_LT(max_error_relative_to_scale(dx, dx64), tolerance) << dtype << " " << rows << "x" << cols;
        // Summed in fp32 from unrounded products, whatever x's dtype.
        EXPECT_LT(max_error_relative_to_scale(db, db64), 1e-5) << dtype << " " << rows << "x" << cols;
      }
    }
  }
}

}  // namespace
}  // namespace albion::kernels
