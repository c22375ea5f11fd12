// File: tests/kernels/layernorm_test.cpp
// LayerNorm: the CPU reference against at::layer_norm and its autograd (fp64), the input gradient
// against finite differences, bad inputs, a bf16 output for fp32 input against the fp32 output
// rounded (reference and kernels), the residual add in the kernels against the add apart, and
// (suite LayerNormCuda, label gpu; also on the CPU emulator in kernels_on_emulator_test) the CUDA
// kernels against the reference.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <string>
#include <tuple>

#include "kernels/layernorm/layernorm.h"
#include "runtime/base/error.h"
#include "tests/kernels/kernel_device.h"
#include "tests/kernels/relative_error.h"

namespace albion::kernels {
namespace {

double max_difference(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble).cpu() - b.to(at::kDouble).cpu()).abs().max().item<double>();
}

// Note [A norm writes its product's operand]: fp32 input with a bf16 output gives the fp32 output
// rounded, and a bf16 output gradient gives the gradients its fp32 copy gives, bit for bit; through
// the entry points (`x` shifted by an element: unaligned) and through autograd. Scope: where the
// kernels run (OnKernelDevice), or nothing for the CPU reference.
template <typename Scope>
void expect_bf16_output_is_the_fp32_output_rounded(at::Device device, std::int64_t rows, std::int64_t cols,
                                                   bool shifted) {
  SCOPED_TRACE(std::to_string(rows) + "x" + std::to_string(cols) + (shifted ? " shifted" : ""));
  at::manual_seed(cols);
  const at::Tensor storage = (at::randn({rows * cols + 1}) * 2 + 1).to(device);
  const at::Tensor x = storage.narrow(0, shifted ? 1 : 0, rows * cols).view({rows, cols});
  const at::Tensor w = at::randn({cols}).to(device), b = at::randn({cols}).to(device);
  const at::Tensor dy = at::randn({rows, cols}).to(at::kBFloat16).to(device);
  at::Tensor y, y32, dx, dx32, dw, dw32, db, db32;
  {
    const Scope scope;
    at::Tensor mean, rstd, mean32, rstd32;
    std::tie(y, mean, rstd) = layernorm_forward_with_stats(x, w, b, 1e-5, at::kBFloat16);
    std::tie(y32, mean32, rstd32) = layernorm_forward_with_stats(x, w, b, 1e-5);
    std::tie(dx, dw, db) = layernorm_backward(dy, x, w, mean, rstd, /*parameter_gradients=*/true);
    std::tie(dx32, dw32, db32) = layernorm_backward(dy.to(at::kFloat), x, w, mean32, rstd32, true);
  }
  EXPECT_TRUE(same_bits(y, y32.to(at::kBFloat16)));
  EXPECT_TRUE(same_bits(dx, dx32));
  EXPECT_TRUE(same_bits(dw, dw32));
  EXPECT_TRUE(same_bits(db, db32));

  // Autograd, as the model calls it, against the cast the product would otherwise make.
  const at::Tensor xg = x.detach().clone().requires_grad_(true);
  const at::Tensor wg = w.detach().clone().requires_grad_(true), bg = b.detach().clone().requires_grad_(true);
  torch::autograd::variable_list grads, cast_grads;
  {
    const Scope scope;
    at::Tensor out = layernorm(xg, wg, bg, 1e-5, at::kBFloat16);
    ASSERT_EQ(out.scalar_type(), at::kBFloat16);
    grads = torch::autograd::grad({out}, {xg, wg, bg}, {dy});
    cast_grads = torch::autograd::grad({layernorm(xg, wg, bg, 1e-5).to(at::kBFloat16)}, {xg, wg, bg}, {dy});
  }
  for (std::size_t i = 0; i < grads.size(); ++i) EXPECT_TRUE(same_bits(grads[i], cast_grads[i])) << "input " << i;
}

struct [[maybe_unused]] OnCpuReference {};

// Note [The residual add in the norm]: add_layernorm in the kernels gives the sum, the norm and all
// four gradients of the add followed by the norm, bit for bit; with both outputs read, and with the
// norm's alone (the sum's gradient then undefined). x in `dtype`, y in `output`, the residual in
// `residual_dtype`.
void expect_add_layernorm_is_the_add_then_the_norm(at::ScalarType dtype, at::ScalarType output,
                                                   at::ScalarType residual_dtype, std::int64_t rows,
                                                   std::int64_t cols) {
  SCOPED_TRACE(std::string(c10::toString(dtype)) + " to " + c10::toString(output) + ", residual " +
               c10::toString(residual_dtype) + " " + std::to_string(rows) + "x" + std::to_string(cols));
  at::manual_seed(cols);
  const auto leaf = [](const at::Tensor& t) { return to_kernel_device(t).requires_grad_(true); };
  const at::Tensor x = leaf((at::randn({rows, cols}) * 2 + 1).to(dtype));
  const at::Tensor r = leaf(at::randn({rows, cols}).to(residual_dtype));
  const at::Tensor w = leaf(at::randn({cols}).to(dtype)), b = leaf(at::randn({cols}).to(dtype));
  const at::Tensor dy = to_kernel_device(at::randn({rows, cols}).to(output));
  const at::Tensor ds = to_kernel_device(at::randn({rows, cols}).to(dtype));
  const OnKernelDevice on_device;
  for (bool sum_read : {true, false}) {
    SCOPED_TRACE(sum_read ? "sum and norm read" : "norm read");
    poison_kernel_allocator(rows * cols * 4);
    const auto [sum, normed] = add_layernorm(x, r, w, b, 1e-5, output);
    const at::Tensor sum_apart = x + r;
    const at::Tensor normed_apart = layernorm(sum_apart, w, b, 1e-5, output);
    EXPECT_TRUE(same_bits(sum, sum_apart));
    EXPECT_TRUE(same_bits(normed, normed_apart));
    const auto gradients = [&](const at::Tensor& s, const at::Tensor& y) {
      if (!sum_read) return torch::autograd::grad({y}, {x, r, w, b}, {dy});
      return torch::autograd::grad({s, y}, {x, r, w, b}, {ds, dy});
    };
    const torch::autograd::variable_list grads = gradients(sum, normed);
    const torch::autograd::variable_list grads_apart = gradients(sum_apart, normed_apart);
    for (std::size_t i = 0; i < grads.size(); ++i) EXPECT_TRUE(same_bits(grads[i], grads_apart[i])) << "input " << i;
  }
}

TEST(LayerNorm, ReferenceMatchesTorchAndItsAutograd) {
  for (std::int64_t cols : {1, 7, 768}) {
    at::manual_seed(cols);
    at::Tensor x = (at::randn({3, 4, cols}, at::kDouble) * 2 + 1).requires_grad_(true);
    at::Tensor w = at::randn({cols}, at::kDouble).requires_grad_(true);
    at::Tensor b = at::randn({cols}, at::kDouble).requires_grad_(true);
    at::Tensor dy = at::randn({3, 4, cols}, at::kDouble);
    at::Tensor expected = at::layer_norm(x, {cols}, w, b, 1e-5);
    auto expected_grads = torch::autograd::grad({expected}, {x, w, b}, {dy});
    at::Tensor actual = layernorm(x, w, b, 1e-5);
    auto actual_grads = torch::autograd::grad({actual}, {x, w, b}, {dy});
    EXPECT_LT(max_difference(actual, expected), 1e-12) << cols;
    for (int i = 0; i < 3; ++i) EXPECT_LT(max_difference(actual_grads[i], expected_grads[i]), 1e-10) << cols << " " << i;
  }
}

TEST(LayerNorm, BackwardMatchesFiniteDifferences) {
  at::manual_seed(8);
  at::Tensor x = at::randn({2, 6}, at::kDouble);
  at::Tensor w = at::randn({6}, at::kDouble);
  at::Tensor b = at::randn({6}, at::kDouble);
  at::Tensor dy = at::randn({2, 6}, at::kDouble);
  auto [y, mean, rstd] = layernorm_forward_with_stats(x, w, b, 1e-5);
  at::Tensor dx = std::get<0>(layernorm_backward(dy, x, w, mean, rstd, /*parameter_gradients=*/false));
  const double h = 1e-6;
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    at::Tensor plus = x.clone(), minus = x.clone();
    plus.view({-1})[i] += h;
    minus.view({-1})[i] -= h;
    const double numeric = ((dy * std::get<0>(layernorm_forward_with_stats(plus, w, b, 1e-5))).sum() -
                            (dy * std::get<0>(layernorm_forward_with_stats(minus, w, b, 1e-5))).sum())
                               .item<double>() / (2 * h);
    EXPECT_NEAR(dx.view({-1})[i].item<double>(), numeric, 1e-7) << "element " << i;
  }
}

TEST(LayerNorm, FrozenParametersGetNoGradient) {
  at::manual_seed(6);
  at::Tensor x = at::randn({3, 16}, at::kDouble).requires_grad_(true);
  at::Tensor w = at::randn({16}, at::kDouble), b = at::randn({16}, at::kDouble);  // frozen
  at::Tensor dy = at::randn({3, 16}, at::kDouble);
  at::Tensor grad_x = torch::autograd::grad({layernorm(x, w, b, 1e-5)}, {x}, {dy})[0];
  at::Tensor trainable_w = w.clone().requires_grad_(true);
  auto grads = torch::autograd::grad({layernorm(x, trainable_w, b, 1e-5)}, {x, trainable_w}, {dy});
  EXPECT_TRUE(at::allclose(grad_x, grads[0]));
  EXPECT_TRUE(grads[1].defined());
}

TEST(LayerNorm, RefusesBadInputs) {
  EXPECT_THROW(layernorm(at::zeros({2, 4}), at::ones({5}), at::zeros({5}), 1e-5), UsageError);
  EXPECT_THROW(layernorm(at::zeros({2, 4}), at::ones({4}), at::zeros({3}), 1e-5), UsageError);
  EXPECT_THROW(layernorm(at::zeros({2, 4}), at::ones({4}), at::zeros({4}), 0.0), UsageError);
  // A bf16 output for fp32 input only; its gradient in the output's dtype.
  const at::Tensor half = at::zeros({2, 4}, at::kBFloat16);
  EXPECT_THROW(layernorm(half, at::ones({4}, at::kBFloat16), at::zeros({4}, at::kBFloat16), 1e-5, at::kFloat),
               UsageError);
  EXPECT_THROW(layernorm(at::zeros({2, 4}), at::ones({4}), at::zeros({4}), 1e-5, at::kHalf), UsageError);
  auto [y, mean, rstd] = layernorm_forward_with_stats(at::zeros({2, 4}), at::ones({4}), at::zeros({4}), 1e-5);
  EXPECT_THROW(layernorm_backward(at::zeros({2, 4}, at::kHalf), at::zeros({2, 4}), at::ones({4}), mean, rstd, true),
               UsageError);
  // The residual in the output's dtype (or bf16 for fp32 input), of the input's shape.
  EXPECT_THROW(add_layernorm(at::zeros({2, 4}), at::zeros({2, 4}), at::ones({4}), at::zeros({4}), 1e-5, at::kBFloat16),
               UsageError);
  const at::Tensor half_weight = at::ones({4}, at::kBFloat16), half_bias = at::zeros({4}, at::kBFloat16);
  EXPECT_THROW(add_layernorm(half, at::zeros({2, 4}), half_weight, half_bias, 1e-5), UsageError);
  EXPECT_THROW(add_layernorm(at::zeros({2, 4}), at::zeros({4}), at::ones({4}), at::zeros({4}), 1e-5), UsageError);
  EXPECT_THROW(layernorm_backward(at::zeros({2, 4}), at::zeros({2, 4}), at::ones({4}), mean, rstd, true, half),
               UsageError);
}

TEST(LayerNorm, ReferenceWritesABf16OutputAsTheFp32OutputRounded) {
  for (const auto& [cols, shifted] : {std::pair<std::int64_t, bool>{7, false}, {768, true}}) {
    expect_bf16_output_is_the_fp32_output_rounded<OnCpuReference>(at::kCPU, 5, cols, shifted);
  }
}

TEST(LayerNormCuda, KernelsMatchTheReference) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    // 7: element-wise; 768 and 4096: 16-byte packs; 4096 shifted by one element: element-wise again.
    // 16,384 bf16: the widest row held in registers (512 threads); in fp32 the looping kernel.
    // 19 rows: the parameters' gradients summed in the backward pass over 5 row segments, the last
    // of 3 rows (up to 4,096 columns; 16,384 sums them apart).
    for (const auto& [cols, shifted] : {std::pair<std::int64_t, bool>{7, false}, {768, false}, {4096, false},
                                       {4096, true}, {16384, false}}) {
      at::manual_seed(cols);
      const at::Tensor storage = to_kernel_device((at::randn({19 * cols + 1}) * 2 + 1).to(dtype));
      at::Tensor x = storage.narrow(0, shifted ? 1 : 0, 19 * cols).view({19, cols});
      at::Tensor w = to_kernel_device(at::randn({cols}).to(dtype));
      at::Tensor b = to_kernel_device(at::randn({cols}).to(dtype));
      at::Tensor dy = to_kernel_device(at::randn({19, cols}).to(dtype));
      at::Tensor y, mean, rstd, dx, dw, db;
      {
        const OnKernelDevice on_device;
        poison_kernel_allocator(19 * cols * 4);
        std::tie(y, mean, rstd) = layernorm_forward_with_stats(x, w, b, 1e-5);
        poison_kernel_allocator(19 * cols * 4);
        std::tie(dx, dw, db) = layernorm_backward(dy, x, w, mean, rstd, /*parameter_gradients=*/true);
      }
      EXPECT_FALSE(y.isnan().any().item<bool>() || dx.isnan().any().item<bool>()) << "kernel left poisoned elements";
      at::Tensor x64 = x.cpu().to(at::kDouble), w64 = w.cpu().to(at::kDouble), b64 = b.cpu().to(at::kDouble);
      auto [y64, mean64, rstd64] = layernorm_forward_with_stats(x64, w64, b64, 1e-5);
      auto [dx64, dw64, db64] =
          layernorm_backward(dy.cpu().to(at::kDouble), x64, w64, mean64, rstd64, /*parameter_gradients=*/true);
      const double tolerance = dtype == at::kFloat ? 1e-5 : 1e-2;
      EXPECT_LT(max_error_relative_to_scale(y, y64.to(dtype)), tolerance) << dtype << " " << cols << " " << shifted;
      EXPECT_LT(max_error_relative_to_scale(dx, dx64.to(dtype)), tolerance) << dtype << " " << cols << " " << shifted;
      // fp32 sums of the same inputs in either dtype: the weight's and the bias's gradients (in the
      // input gradient's pass for rows held in registers, apart otherwise).
      ASSERT_EQ(dw.scalar_type(), at::kFloat);
      EXPECT_LT(max_error_relative_to_scale(dw, dw64), 1e-5) << dtype << " " << cols << " " << shifted;
      EXPECT_LT(max_error_relative_to_scale(db, db64), 1e-5) << dtype << " " << cols << " " << shifted;
    }
  }
}

TEST(LayerNormCuda, KernelsWriteABf16OutputAsTheFp32OutputRounded) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  // 768: the row in registers, parameter sums in the pass (19 rows); shifted: element-wise; 16,384
  // fp32: the looping kernel, parameter sums apart (dy widened for them).
  for (const auto& [cols, shifted] : {std::pair<std::int64_t, bool>{7, false}, {768, false}, {768, true},
                                     {16384, false}}) {
    poison_kernel_allocator(19 * cols * 4);
    expect_bf16_output_is_the_fp32_output_rounded<OnKernelDevice>(kernel_device(), 19, cols, shifted);
  }
}

TEST(LayerNormCuda, KernelsAddTheResidualAsTheAddApart) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  // 7: element-wise; 768: the row in registers, parameter sums in the pass (19 rows); 16,384 fp32:
  // the looping kernels, parameter sums apart.
  for (std::int64_t cols : {7, 768, 16384}) {
    expect_add_layernorm_is_the_add_then_the_norm(at::kFloat, at::kFloat, at::kFloat, 19, cols);
    expect_add_layernorm_is_the_add_then_the_norm(at::kFloat, at::kFloat, at::kBFloat16, 19, cols);
    expect_add_layernorm_is_the_add_then_the_norm(at::kFloat, at::kBFloat16, at::kBFloat16, 19, cols);
    expect_add_layernorm_is_the_add_then_the_norm(at::kBFloat16, at::kBFloat16, at::kBFloat16, 19, cols);
  }
}

}  // namespace
}  // namespace albion::kernels
