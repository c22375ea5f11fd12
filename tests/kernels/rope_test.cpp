// File: tests/kernels/rope_test.cpp
// Rotary embedding: the kernel layer against the model's own torch composition
// (models::apply_rotary on the transposed layout), the backward against finite differences in
// fp64 and against autograd through the composition, in-place use, bad inputs, and (suite
// RopeCuda, label gpu; also on the CPU emulator in kernels_on_emulator_test) CUDA against the
// reference with outputs poisoned first.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <limits>

#include "kernels/rope/rope.h"
#include "runtime/base/error.h"
#include "tests/kernels/kernel_device.h"
#include "tests/kernels/relative_error.h"

namespace albion::kernels {
namespace {

// Written independently of the kernel: HF's rotate_half on [batch, heads, seq, head_dim].
at::Tensor composition(const at::Tensor& x_bthd, const at::Tensor& cos, const at::Tensor& sin) {
  at::Tensor x = x_bthd.transpose(1, 2);
  const std::int64_t seq = x.size(2);
  const std::int64_t half = x.size(-1) / 2;
  const at::Tensor rotated = at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  at::Tensor c = cos.narrow(0, 0, seq).to(x.scalar_type());
  at::Tensor s = sin.narrow(0, 0, seq).to(x.scalar_type());
  return (x * c + rotated * s).transpose(1, 2);
}

std::pair<at::Tensor, at::Tensor> tables(std::int64_t positions, std::int64_t head_dim, at::ScalarType type) {
  at::Tensor inv = at::pow(10000.0, -at::arange(0, head_dim, 2, at::kDouble) / static_cast<double>(head_dim));
  at::Tensor angles = at::outer(at::arange(positions, at::kDouble), inv);
  angles = at::cat({angles, angles}, -1);
  return {angles.cos().to(type), angles.sin().to(type)};
}

TEST(Rope, ReferenceMatchesCompositionAndAutograd) {
  for (auto [batch, seq, heads, dim] : std::vector<std::tuple<int, int, int, int>>{{1, 1, 1, 2}, {2, 7, 3, 8}, {2, 33, 4, 64}}) {
    at::manual_seed(seq);
    auto [cos, sin] = tables(seq + 5, dim, at::kDouble);
    at::Tensor x = at::randn({batch, seq, heads, dim}, at::kDouble).requires_grad_(true);
    at::Tensor grad_out = at::randn({batch, seq, heads, dim}, at::kDouble);
    at::Tensor expected = composition(x, cos, sin);
    at::Tensor actual = rope(x, cos, sin);
    EXPECT_LT(max_relative_error(actual, expected), 1e-12);
    auto expected_grad = torch::autograd::grad({expected}, {x}, {grad_out})[0];
    auto actual_grad = torch::autograd::grad({actual}, {x}, {grad_out})[0];
    EXPECT_LT(max_relative_error(actual_grad, expected_grad), 1e-12);

    // Differentiable in place, on a view of a projection's output as the model uses it.
    at::Tensor weight = at::randn({heads * dim, heads * dim}, at::kDouble).requires_grad_(true);
    const at::Tensor input = at::randn({batch, seq, heads * dim}, at::kDouble);
    const at::Tensor in_place_out = rope_(at::linear(input, weight).view({batch, seq, heads, dim}), cos, sin);
    const at::Tensor composed_out = composition(at::linear(input, weight).view({batch, seq, heads, dim}), cos, sin);
    EXPECT_LT(max_relative_error(in_place_out, composed_out), 1e-12);
    EXPECT_LT(max_relative_error(torch::autograd::grad({in_place_out}, {weight}, {grad_out})[0],
                                 torch::autograd::grad({composed_out}, {weight}, {grad_out})[0]),
              1e-10);

    // fp32 through the float reference, and in place.
    auto [cos32, sin32] = tables(seq, dim, at::kFloat);
    at::Tensor x32 = x.detach().to(at::kFloat);
    at::Tensor in_place = x32.clone();
    rope_rotate_out(in_place, in_place, cos32, sin32, false);
    EXPECT_LT(max_relative_error(in_place, composition(x32, cos32, sin32)), 1e-5);
    // Rotating back restores the input.
    rope_rotate_out(in_place, in_place, cos32, sin32, true);
    EXPECT_LT((in_place - x32).abs().max().item<double>(), 1e-5);
  }
}

TEST(Rope, BackwardMatchesFiniteDifferences) {
  at::manual_seed(3);
  auto [cos, sin] = tables(5, 4, at::kDouble);
  at::Tensor x = at::randn({1, 5, 2, 4}, at::kDouble);
  at::Tensor grad_out = at::randn({1, 5, 2, 4}, at::kDouble);
  at::Tensor grad_x = at::empty_like(x);
  rope_rotate_out(grad_x, grad_out, cos, sin, true);
  const double h = 1e-6;
  at::Tensor flat = x.view({-1});
  for (std::int64_t i = 0; i < flat.numel(); ++i) {
    at::Tensor plus = x.clone(), minus = x.clone();
    plus.view({-1})[i] += h;
    minus.view({-1})[i] -= h;
    at::Tensor out_plus = at::empty_like(x), out_minus = at::empty_like(x);
    rope_rotate_out(out_plus, plus, cos, sin, false);
    rope_rotate_out(out_minus, minus, cos, sin, false);
    const double numeric = ((grad_out * out_plus).sum() - (grad_out * out_minus).sum()).item<double>() / (2 * h);
    EXPECT_NEAR(grad_x.view({-1})[i].item<double>(), numeric, 1e-7) << "element " << i;
  }
}

TEST(Rope, RefusesBadOperands) {
  auto [cos, sin] = tables(4, 8, at::kFloat);
  at::Tensor out = at::empty({1, 4, 2, 8});
  EXPECT_THROW(rope_rotate_out(out, at::zeros({1, 5, 2, 8}), cos, sin, false), UsageError);  // 5 > 4 positions
  at::Tensor odd = at::empty({1, 4, 2, 7});
  EXPECT_THROW(rope_rotate_out(odd, at::zeros({1, 4, 2, 7}), cos, sin, false), UsageError);
  EXPECT_THROW(rope_rotate_out(out, at::zeros({4, 2, 8}), cos, sin, false), UsageError);
  at::Tensor x64 = at::zeros({1, 4, 2, 8}, at::kDouble);
  EXPECT_THROW(rope_rotate_out(x64, x64, cos, sin, false), UsageError);  // fp32 tables for fp64 x
  // An output one position along from the input: threads would read what others wrote.
  at::Tensor buffer = at::zeros({1, 5, 2, 8});
  at::Tensor shifted = buffer.narrow(1, 1, 4);
  EXPECT_THROW(rope_rotate_out(shifted, buffer.narrow(1, 0, 4), cos, sin, false), UsageError);
}

TEST(Rope, InPlaceBumpsTheVersion) {
  auto [cos, sin] = tables(4, 8, at::kDouble);
  at::Tensor x = at::randn({1, 4, 2, 8}, at::kDouble);
  const std::int64_t before = x._version();
  rope_rotate_out(x, x, cos, sin, false);
  EXPECT_GT(x._version(), before);
}

TEST(RopeCuda, KernelMatchesTheReference) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    const double tolerance = dtype == at::kFloat ? 1e-5 : 1e-2;
    auto [cos, sin] = tables(300, 128, at::kFloat);
    const at::Tensor cos_device = to_kernel_device(cos), sin_device = to_kernel_device(sin);
    at::manual_seed(dtype == at::kFloat ? 1 : 2);
    at::Tensor x = to_kernel_device(at::randn({2, 257, 5, 128}).to(dtype));
    at::Tensor out = at::full_like(x, std::numeric_limits<float>::quiet_NaN());
    {
      const OnKernelDevice on_device;
      rope_rotate_out(out, x, cos_device, sin_device, false);
    }
    auto [cos64, sin64] = tables(300, 128, at::kDouble);
    at::Tensor expected = at::empty_like(x.cpu().to(at::kDouble));
    rope_rotate_out(expected, x.cpu().to(at::kDouble), cos64, sin64, false);
    // Relative to the largest output, not element-wise: where x1 cos - x2 sin cancels to ~0, fp32
    // tables (against fp64 ones) and fused multiply-adds leave ~1e-7 absolute, which element-wise
    // would be a large relative error of a correct kernel.
    EXPECT_LT(max_error_relative_to_scale(out, expected.to(dtype)), tolerance) << dtype;
    at::Tensor back = at::full_like(x, std::numeric_limits<float>::quiet_NaN());
    {
      const OnKernelDevice on_device;
      rope_rotate_out(back, out, cos_device, sin_device, true);
    }
    EXPECT_LT((back.to(at::kFloat) - x.to(at::kFloat)).abs().max().item<double>(), dtype == at::kFloat ? 1e-5 : 5e-2)
        << dtype;
  }
}

}  // namespace
}  // namespace albion::kernels
