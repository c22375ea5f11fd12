// File: tests/kernels/swiglu_test.cpp
// SwiGLU: the CPU reference against torch's own silu(gate) * up and its autograd, the backward
// against central finite differences in fp64, bad inputs, and (suite SwiGluCuda, label gpu; also on
// the CPU emulator in kernels_on_emulator_test) the CUDA kernels against the reference on the same
// bf16-rounded inputs, outputs poisoned first. Sizes include tails (not a multiple of a 16-byte
// pack) and a misaligned view.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <tuple>

#include "kernels/swiglu/swiglu.h"
#include "runtime/base/error.h"
#include "tests/kernels/kernel_device.h"
#include "tests/kernels/relative_error.h"

namespace albion::kernels {
namespace {

const std::vector<std::vector<std::int64_t>> kShapes = {{0}, {1}, {7}, {3, 37}, {4, 1024}, {2, 3, 4097}};

TEST(SwiGlu, ReferenceMatchesTorchForwardAndAutograd) {
  for (const auto& shape : kShapes) {
    at::manual_seed(static_cast<std::uint64_t>(shape.back()));
    at::Tensor gate = (at::randn(shape, at::kDouble) * 3).requires_grad_(true);
    at::Tensor up = at::randn(shape, at::kDouble).requires_grad_(true);
    at::Tensor grad_out = at::randn(shape, at::kDouble);

    at::Tensor expected = at::silu(gate) * up;
    auto expected_grads = torch::autograd::grad({expected}, {gate, up}, {grad_out});
    at::Tensor actual = swiglu(gate, up);
    auto actual_grads = torch::autograd::grad({actual}, {gate, up}, {grad_out});
    EXPECT_LT(max_relative_error(actual, expected), 1e-12) << shape;
    EXPECT_LT(max_relative_error(actual_grads[0], expected_grads[0]), 1e-10) << shape;
    EXPECT_LT(max_relative_error(actual_grads[1], expected_grads[1]), 1e-10) << shape;

    // fp32 through the float reference.
    at::Tensor gate32 = gate.detach().to(at::kFloat);
    at::Tensor up32 = up.detach().to(at::kFloat);
    EXPECT_LT(max_relative_error(swiglu_forward(gate32, up32), at::silu(gate32) * up32), 1e-5) << shape;
  }
}

TEST(SwiGlu, BackwardMatchesFiniteDifferences) {
  at::manual_seed(7);
  const std::int64_t n = 19;
  at::Tensor gate = at::randn({n}, at::kDouble) * 2;
  at::Tensor up = at::randn({n}, at::kDouble);
  at::Tensor grad_out = at::randn({n}, at::kDouble);
  auto [grad_gate, grad_up] = swiglu_backward(grad_out, gate, up);
  // d/dx sum(grad_out * f(x)) by central differences, one element at a time.
  const double h = 1e-6;
  for (std::int64_t i = 0; i < n; ++i) {
    for (int which = 0; which < 2; ++which) {
      at::Tensor plus_g = gate.clone(), minus_g = gate.clone(), plus_u = up.clone(), minus_u = up.clone();
      if (which == 0) {
        plus_g[i] += h;
        minus_g[i] -= h;
      } else {
        plus_u[i] += h;
        minus_u[i] -= h;
      }
      const double f_plus = (grad_out * swiglu_forward(plus_g, plus_u)).sum().item<double>();
      const double f_minus = (grad_out * swiglu_forward(minus_g, minus_u)).sum().item<double>();
      const double numeric = (f_plus - f_minus) / (2 * h);
      const double analytic = (which == 0 ? grad_gate : grad_up)[i].item<double>();
      EXPECT_NEAR(analytic, numeric, 1e-7 * std::max(1.0, std::abs(numeric))) << "element " << i << " input " << which;
    }
  }
}

TEST(SwiGlu, RefusesMismatchedOperands) {
  EXPECT_THROW(swiglu_forward(at::zeros({4}), at::zeros({5})), UsageError);
  EXPECT_THROW(swiglu_forward(at::zeros({4}), at::zeros({4}, at::kDouble)), UsageError);
  EXPECT_THROW(swiglu_forward(at::zeros({4, 4}).t(), at::zeros({4, 4})), UsageError);
}

TEST(SwiGluCuda, KernelsMatchTheReference) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    const double tolerance = dtype == at::kFloat ? 1e-5 : 1e-2;
    for (const auto& shape : kShapes) {
      at::manual_seed(11);
      at::Tensor gate = to_kernel_device((at::randn(shape) * 3).to(dtype));
      at::Tensor up = to_kernel_device(at::randn(shape).to(dtype));
      at::Tensor grad_out = to_kernel_device(at::randn(shape).to(dtype));
      // The reference sees the same (bf16-rounded) values, computed in fp64.
      at::Tensor g64 = gate.cpu().to(at::kDouble), u64 = up.cpu().to(at::kDouble), d64 = grad_out.cpu().to(at::kDouble);
      at::Tensor out, grad_gate, grad_up;
      {
        const OnKernelDevice on_device;
        poison_kernel_allocator(gate.numel() * 4);
        out = swiglu_forward(gate, up);
        poison_kernel_allocator(gate.numel() * 8);
        std::tie(grad_gate, grad_up) = swiglu_backward(grad_out, gate, up);
      }
      auto [ref_gate, ref_up] = swiglu_backward(d64, g64, u64);
      // Compare in the output dtype's precision: round the reference the way the kernel stores.
      EXPECT_LT(max_relative_error(out, swiglu_forward(g64, u64).to(dtype)), tolerance) << dtype << " " << shape;
      // d silu(g)/dg has a root at g = -1.2785, where fp32 keeps only absolute accuracy (torch's own
      // fp32 silu backward is off by 5e-4 element-wise there): compared against the scale.
      EXPECT_LT(max_error_relative_to_scale(grad_gate, ref_gate.to(dtype)), tolerance) << dtype << " " << shape;
      EXPECT_LT(max_relative_error(grad_up, ref_up.to(dtype)), tolerance) << dtype << " " << shape;
    }
    // A view starting 1 element in: not 16-byte aligned, so the scalar path runs.
    at::Tensor base = at::randn({1025}, at::TensorOptions().dtype(dtype).device(kernel_device()));
    at::Tensor gate = base.narrow(0, 1, 1024);
    at::Tensor up = base.narrow(0, 0, 1024).contiguous();
    at::Tensor expected = swiglu_forward(gate.cpu().to(at::kDouble), up.cpu().to(at::kDouble)).to(dtype);
    at::Tensor out;
    {
      const OnKernelDevice on_device;
      out = swiglu_forward(gate, up);
    }
    EXPECT_LT(max_relative_error(out, expected), tolerance) << dtype << " misaligned";
  }
}

}  // namespace
}  // namespace albion::kernels
