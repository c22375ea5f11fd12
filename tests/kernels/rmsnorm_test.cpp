// File: tests/kernels/rmsnorm_test.cpp
// RMSNorm: the CPU reference against an independent fp64 torch composition, bad inputs, and (suite
// RmsNormCuda, label gpu; also on the CPU emulator in kernels_on_emulator_test) the CUDA kernel
// against the reference on the same bf16-rounded inputs, with outputs poisoned with NaN before each
// run, the residual add in the kernels against the add apart, and the norm written once per product
// against one fp32 output cast per product (on the CPU too). Shapes are deliberately awkward (tails,
// odd rows).
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <limits>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "kernels/rmsnorm/rmsnorm.h"
#include "runtime/base/error.h"
#include "tests/kernels/kernel_device.h"
#include "tests/kernels/relative_error.h"

namespace albion::kernels {
namespace {

// Written independently of the kernel: y = x * rsqrt(mean(x^2) + eps) * w, in fp64.
at::Tensor composition_fp64(const at::Tensor& x, const at::Tensor& w, double eps) {
  at::Tensor x64 = x.to(at::kDouble);
  return x64 * at::rsqrt(x64.pow(2).mean(-1, /*keepdim=*/true) + eps) * w.to(at::kDouble);
}

class RmsNormShapes : public testing::TestWithParam<std::tuple<int64_t, int64_t>> {};

TEST_P(RmsNormShapes, ReferenceMatchesFp64Composition) {
  auto [rows, cols] = GetParam();
  at::manual_seed(rows * 1000 + cols);
  at::Tensor x = at::randn({rows, cols}) * 3;
  at::Tensor w = at::randn({cols});
  at::Tensor y = rmsnorm_forward(x, w, 1e-5);
  ASSERT_EQ(y.sizes(), x.sizes());
  ASSERT_EQ(y.scalar_type(), at::kFloat);
  EXPECT_LT(max_relative_error(y, composition_fp64(x, w, 1e-5)), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Awkward, RmsNormShapes,
                         testing::Values(std::make_tuple(1, 1), std::make_tuple(5, 123),
                                         std::make_tuple(7, 4096), std::make_tuple(3, 4099),
                                         std::make_tuple(64, 768)));

TEST(RmsNorm, Bf16ReferenceRoundsOnlyAtTheEnds) {
  at::manual_seed(0);
  at::Tensor x = at::randn({5, 123}).to(at::kBFloat16);
  at::Tensor w = at::randn({123}).to(at::kBFloat16);
  at::Tensor y = rmsnorm_forward(x, w, 1e-6);
  ASSERT_EQ(y.scalar_type(), at::kBFloat16);
  EXPECT_LT(max_relative_error(y, composition_fp64(x, w, 1e-6)), 1e-2);
}

TEST(RmsNorm, KeepsLeadingDimensionsAndHandlesEmptyInput) {
  at::Tensor x = at::randn({2, 3, 16});
  EXPECT_EQ(rmsnorm_forward(x, at::ones({16}), 1e-6).sizes(), x.sizes());
  at::Tensor empty = at::randn({0, 16});
  EXPECT_EQ(rmsnorm_forward(empty, at::ones({16}), 1e-6).numel(), 0);
}

TEST(RmsNorm, RejectsBadInputsWithUsageErrors) {
  at::Tensor x = at::randn({4, 8});
  EXPECT_THROW(rmsnorm_forward(x, at::ones({7}), 1e-6), UsageError);                   // shape
  EXPECT_THROW(rmsnorm_forward(x.to(at::kInt), at::ones({8}, at::kInt), 1e-6), UsageError);  // dtype
  EXPECT_THROW(rmsnorm_forward(x, at::ones({8}, at::kBFloat16), 1e-6), UsageError);     // mixed
  EXPECT_THROW(rmsnorm_forward(at::randn({8, 4}).t(), at::ones({8}), 1e-6), UsageError);  // layout
  EXPECT_THROW(rmsnorm_forward(x, at::ones({8}), 0.0), UsageError);                      // eps
  // The residual in the input's dtype (or bf16 for fp32 input), of the input's shape; its gradient
  // in the input's dtype.
  const at::Tensor half = x.to(at::kBFloat16);
  EXPECT_THROW(add_rmsnorm(half, x, at::ones({8}, at::kBFloat16), 1e-6), UsageError);
  EXPECT_THROW(add_rmsnorm(x, at::zeros({8}), at::ones({8}), 1e-6), UsageError);
  auto [y, inv_rms] = rmsnorm_forward_with_stats(x, at::ones({8}), 1e-6);
  EXPECT_THROW(rmsnorm_backward(x, x, at::ones({8}), inv_rms, true, half), UsageError);
  // Operands: 1 to 6 for fp32 input; their gradients bf16, all of one dtype and shape.
  EXPECT_THROW(rmsnorm_operands(x, at::ones({8}), 1e-6, 0), UsageError);
  EXPECT_THROW(rmsnorm_operands(x, at::ones({8}), 1e-6, 7), UsageError);
  EXPECT_THROW(rmsnorm_operands(half, at::ones({8}, at::kBFloat16), 1e-6, 2), UsageError);
  EXPECT_THROW(rmsnorm_backward({x, x}, x, at::ones({8}), inv_rms, true), UsageError);
  EXPECT_THROW(rmsnorm_backward({half, x}, x, at::ones({8}), inv_rms, true), UsageError);
  EXPECT_THROW(rmsnorm_backward({half, half.narrow(0, 0, 2)}, x, at::ones({8}), inv_rms, true), UsageError);
}

// Note [One operand per product]: rmsnorm_operands (add_rmsnorm_operands where `residual_dtype` is
// given) is rmsnorm's fp32 output cast to bf16 once per product, bit for bit, and its gradients are
// the casts' (their gradients summed in fp32), up to the order of that sum; also with the last
// operand unread (its gradient undefined). On `device`: the CPU reference, or the kernels (7: element-
// wise; 1000: the row in registers, the weight's gradient summed in the pass; 16,384: looping, the
// weight's gradient apart).
void expect_operands_are_the_casts(const at::Device& device, std::optional<at::ScalarType> residual_dtype) {
  for (std::int64_t cols : {7, 1000, 16384}) {
    for (std::int64_t copies : {1, 2, 3, 6}) {
      for (bool last_read : {true, false}) {
        if (copies == 1 && !last_read) continue;
        SCOPED_TRACE("19x" + std::to_string(cols) + ", " + std::to_string(copies) + " operands" +
                     (last_read ? "" : ", the last unread") +
                     (residual_dtype ? std::string(", residual ") + c10::toString(*residual_dtype) : ""));
        at::manual_seed(cols + copies);
        const auto leaf = [&](const at::Tensor& t) { return t.to(device).requires_grad_(true); };
        const at::Tensor x = leaf(at::randn({19, cols}) * 2);
        const at::Tensor r = leaf(at::randn({19, cols}).to(residual_dtype.value_or(at::kFloat)));
        const at::Tensor w = leaf(at::randn({cols}));
        std::vector<at::Tensor> dys;
        for (std::int64_t c = 0; c < copies; ++c) dys.push_back(at::randn({19, cols}).to(at::kBFloat16).to(device));
        const at::Tensor ds = at::randn({19, cols}).to(device);
        const std::vector<at::Tensor> inputs = residual_dtype ? std::vector{x, r, w} : std::vector{x, w};

        if (!device.is_cpu()) poison_kernel_allocator(19 * cols * 4);
        at::Tensor sum, sum_apart, normed_apart;
        std::vector<at::Tensor> operands;
        if (residual_dtype) {
          std::tie(sum, operands) = add_rmsnorm_operands(x, r, w, 1e-5, copies);
          std::tie(sum_apart, normed_apart) = add_rmsnorm(x, r, w, 1e-5);
          EXPECT_TRUE(same_bits(sum, sum_apart));
        } else {
          operands = rmsnorm_operands(x, w, 1e-5, copies);
          normed_apart = rmsnorm(x, w, 1e-5);
        }
        ASSERT_EQ(operands.size(), static_cast<std::size_t>(copies));
        std::vector<at::Tensor> casts;
        for (const at::Tensor& operand : operands) {
          EXPECT_TRUE(same_bits(operand, normed_apart.to(at::kBFloat16)));
          casts.push_back(normed_apart.to(at::kBFloat16));
        }
        const std::size_t read = last_read ? copies : copies - 1;
        const auto gradients = [&](std::vector<at::Tensor> outputs, const at::Tensor& s) {
          std::vector<at::Tensor> grads(dys.begin(), dys.begin() + read);
          outputs.resize(read);
          if (residual_dtype) {
            outputs.push_back(s);
            grads.push_back(ds);
          }
          return torch::autograd::grad(outputs, inputs, grads);
        };
        const torch::autograd::variable_list actual = gradients(operands, sum);
        const torch::autograd::variable_list expected = gradients(casts, sum_apart);
        for (std::size_t i = 0; i < inputs.size(); ++i) {
          EXPECT_LT(max_error_relative_to_scale(actual[i].cpu().to(at::kFloat), expected[i].cpu().to(at::kFloat)),
                    1e-6)
              << "input " << i;
        }
      }
    }
  }
}

TEST(RmsNorm, OperandsPerProductAreTheCastsOfOneOutput) {
  expect_operands_are_the_casts(at::kCPU, std::nullopt);
}

TEST(RmsNormCuda, OperandsPerProductAreTheCastsOfOneOutput) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  const OnKernelDevice on_device;
  for (std::optional<at::ScalarType> residual : {std::optional<at::ScalarType>(), {at::kFloat}, {at::kBFloat16}}) {
    expect_operands_are_the_casts(kernel_device(), residual);
  }
}

// Written independently of the kernel, in fp64 with autograd.
TEST(RmsNorm, BackwardMatchesAutogradOfTheComposition) {
  at::manual_seed(5);
  for (std::int64_t cols : {1, 7, 64}) {
    at::Tensor x = (at::randn({3, 5, cols}, at::kDouble) * 2).requires_grad_(true);
    at::Tensor w = at::randn({cols}, at::kDouble).requires_grad_(true);
    at::Tensor dy = at::randn({3, 5, cols}, at::kDouble);
    at::Tensor expected = composition_fp64(x, w, 1e-5);
    auto expected_grads = torch::autograd::grad({expected}, {x, w}, {dy});
    at::Tensor actual = rmsnorm(x, w, 1e-5);
    auto actual_grads = torch::autograd::grad({actual}, {x, w}, {dy});
    EXPECT_LT(max_relative_error(actual, expected), 1e-12) << cols;
    EXPECT_LT((actual_grads[0] - expected_grads[0]).abs().max().item<double>(), 1e-10) << cols;
    EXPECT_LT((actual_grads[1] - expected_grads[1]).abs().max().item<double>(), 1e-10) << cols;
  }
}

TEST(RmsNorm, BackwardMatchesFiniteDifferences) {
  at::manual_seed(9);
  at::Tensor x = at::randn({2, 6}, at::kDouble);
  at::Tensor w = at::randn({6}, at::kDouble);
  at::Tensor dy = at::randn({2, 6}, at::kDouble);
  auto [y, inv_rms] = rmsnorm_forward_with_stats(x, w, 1e-5);
  at::Tensor dx = rmsnorm_backward(dy, x, w, inv_rms, /*weight_gradient=*/false).first;
  const double h = 1e-6;
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    at::Tensor plus = x.clone(), minus = x.clone();
    plus.view({-1})[i] += h;
    minus.view({-1})[i] -= h;
    const double numeric = ((dy * rmsnorm_forward(plus, w, 1e-5)).sum() - (dy * rmsnorm_forward(minus, w, 1e-5)).sum())
                               .item<double>() / (2 * h);
    EXPECT_NEAR(dx.view({-1})[i].item<double>(), numeric, 1e-7) << "element " << i;
  }
}

// Both gradients from one call, as autograd asks for them: on the kernel device the weight's is
// summed in the input gradient's pass (rows up to 8,192 bf16 or 4,096 fp32 elements; 33 rows make
// 9 row segments, the last of one row), or apart (an odd width; 16,384, in registers for bf16 and
// looped over for fp32).
TEST(RmsNormCuda, BackwardMatchesReference) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    for (std::int64_t cols : {8, 1000, 4096, 16384, 1001}) {
      at::manual_seed(cols);
      at::Tensor x = to_kernel_device(at::randn({33, cols}).to(dtype));
      at::Tensor w = to_kernel_device(at::randn({cols}).to(dtype));
      at::Tensor dy = to_kernel_device(at::randn({33, cols}).to(dtype));
      at::Tensor dx, dw;
      {
        const OnKernelDevice on_device;
        auto [y, inv_rms] = rmsnorm_forward_with_stats(x, w, 1e-5);
        poison_kernel_allocator(x.numel() * 4);
        std::tie(dx, dw) = rmsnorm_backward(dy, x, w, inv_rms, /*weight_gradient=*/true);
      }
      at::Tensor x64 = x.cpu().to(at::kDouble), w64 = w.cpu().to(at::kDouble), dy64 = dy.cpu().to(at::kDouble);
      auto [y64, inv64] = rmsnorm_forward_with_stats(x64, w64, 1e-5);
      auto [expected, expected_dw] = rmsnorm_backward(dy64, x64, w64, inv64, /*weight_gradient=*/true);
      // Absolute error relative to the gradient's scale: dx mixes two terms that cancel.
      EXPECT_LT(max_error_relative_to_scale(dx.cpu(), expected.to(dtype)), dtype == at::kFloat ? 1e-5 : 1e-2)
          << dtype << " cols " << cols;
      ASSERT_EQ(dw.scalar_type(), at::kFloat);
      EXPECT_LT(max_error_relative_to_scale(dw.cpu(), expected_dw), 1e-5) << dtype << " cols " << cols;
    }
  }
}

// Note [The residual add in the norm]: add_rmsnorm in the kernels gives the sum, the norm and all
// three gradients of the add followed by the norm, bit for bit; with both outputs read, and with the
// norm's alone (the sum's gradient then undefined). 7: element-wise; 1000: the row in registers,
// the weight's gradient summed in the pass (19 rows); 16,384 fp32: the looping kernels, the
// weight's gradient apart.
TEST(RmsNormCuda, KernelsAddTheResidualAsTheAddApart) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  for (const auto& [dtype, residual_dtype] : {std::pair{at::kFloat, at::kFloat}, {at::kFloat, at::kBFloat16},
                                              {at::kBFloat16, at::kBFloat16}}) {
    for (std::int64_t cols : {7, 1000, 16384}) {
      SCOPED_TRACE(std::string(c10::toString(dtype)) + ", residual " + c10::toString(residual_dtype) + " 19x" +
                   std::to_string(cols));
      at::manual_seed(cols);
      const auto leaf = [](const at::Tensor& t) { return to_kernel_device(t).requires_grad_(true); };
      const at::Tensor x = leaf((at::randn({19, cols}) * 2).to(dtype));
      const at::Tensor r = leaf(at::randn({19, cols}).to(residual_dtype));
      const at::Tensor w = leaf(at::randn({cols}).to(dtype));
      const at::Tensor dy = to_kernel_device(at::randn({19, cols}).to(dtype));
      const at::Tensor ds = to_kernel_device(at::randn({19, cols}).to(dtype));
      const OnKernelDevice on_device;
      for (bool sum_read : {true, false}) {
        SCOPED_TRACE(sum_read ? "sum and norm read" : "norm read");
        poison_kernel_allocator(19 * cols * 4);
        const auto [sum, normed] = add_rmsnorm(x, r, w, 1e-5);
        const at::Tensor sum_apart = x + r;
        const at::Tensor normed_apart = rmsnorm(sum_apart, w, 1e-5);
        EXPECT_TRUE(same_bits(sum, sum_apart));
        EXPECT_TRUE(same_bits(normed, normed_apart));
        const auto gradients = [&](const at::Tensor& s, const at::Tensor& y) {
          if (!sum_read) return torch::autograd::grad({y}, {x, r, w}, {dy});
          return torch::autograd::grad({s, y}, {x, r, w}, {ds, dy});
        };
        const torch::autograd::variable_list grads = gradients(sum, normed);
        const torch::autograd::variable_list grads_apart = gradients(sum_apart, normed_apart);
        for (std::size_t i = 0; i < grads.size(); ++i) {
          EXPECT_TRUE(same_bits(grads[i], grads_apart[i])) << "input " << i;
        }
      }
    }
  }
}

// --- CUDA (label gpu) -----------------------------------------------------------------------------

class RmsNormCuda : public testing::TestWithParam<std::tuple<int64_t, int64_t, at::ScalarType>> {};

TEST_P(RmsNormCuda, KernelMatchesReference) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  auto [rows, cols, dtype] = GetParam();
  at::manual_seed(rows + cols);
  // Inputs rounded to the kernel's dtype first; the reference computes from the same values.
  at::Tensor x = (at::randn({rows, cols}) * 2).to(dtype);
  at::Tensor w = at::randn({cols}).to(dtype);
  at::Tensor expected = rmsnorm_forward(x, w, 1e-5);

  at::Tensor x_device = to_kernel_device(x);
  at::Tensor w_device = to_kernel_device(w);
  at::Tensor y_device = at::full_like(x_device, std::numeric_limits<float>::quiet_NaN());  // poisoned
  {
    const OnKernelDevice on_device;
    rmsnorm_forward_out(y_device, x_device, w_device, 1e-5);
  }
  const double tolerance = dtype == at::kFloat ? 1e-5 : 1e-2;
  EXPECT_FALSE(y_device.isnan().any().item<bool>()) << "kernel left poisoned elements";
  EXPECT_LT(max_relative_error(y_device, expected), tolerance);
}

INSTANTIATE_TEST_SUITE_P(
    Awkward, RmsNormCuda,
    testing::Combine(testing::Values<int64_t>(1, 5, 300),
                     testing::Values<int64_t>(1, 123, 768, 4099, 8192),
                     testing::Values(at::kFloat, at::kBFloat16)));

TEST(RmsNormMisalignedCuda, ViewOffByOneElementTakesTheScalarPath) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  // A view starting one element in: not 16-byte aligned, so the kernel must not use packs.
  at::Tensor storage = at::randn({1 + 4 * 64}, kernel_device());
  at::Tensor x = storage.narrow(0, 1, 4 * 64).view({4, 64});
  at::Tensor w = at::randn({64}, kernel_device());
  at::Tensor y;
  {
    const OnKernelDevice on_device;
    y = rmsnorm_forward(x, w, 1e-5);
  }
  EXPECT_LT(max_relative_error(y, rmsnorm_forward(x.cpu(), w.cpu(), 1e-5)), 1e-5);
}

}  // namespace
}  // namespace albion::kernels
