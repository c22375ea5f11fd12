// File: tests/kernels/fused_autograd_test.cpp
// The differentiable entry points the models call (rmsnorm, layernorm, gelu_bias, swiglu, rope_
// and rope), through autograd as training runs them: forward and backward on the kernel device
// (suite FusedAutogradCuda, label gpu; also on the CPU emulator in kernels_on_emulator_test)
// against the same graph on the CPU references in fp64, from the same rounded inputs. Outputs and
// the gradient of every input that needs one, in fp32 and bf16, with frozen parameters too: the
// layers' launches, the tensors their autograd Functions save, and the gradients they skip.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <functional>
#include <string>
#include <vector>

#include "kernels/gelu/gelu_bias.h"
#include "kernels/layernorm/layernorm.h"
#include "kernels/rmsnorm/rmsnorm.h"
#include "kernels/rope/rope.h"
#include "kernels/swiglu/swiglu.h"
#include "tests/kernels/kernel_device.h"
#include "tests/kernels/relative_error.h"
#include "tests/support/full_fp32_matmuls.h"

namespace albion::kernels {
namespace {

struct Operand {
  at::Tensor value;  // fp32, on the CPU
  bool requires_grad = true;
  bool stays_fp32 = false;  // not cast to the activations' dtype (a bias, rotary tables)
};

using Graph = std::function<at::Tensor(const std::vector<at::Tensor>&)>;

// Runs `graph` forward and backward on the kernel device in `dtype` and on the CPU in fp64, and
// compares the outputs and the gradients relative to their scale (gradients such as a norm's
// input gradient cancel to near zero in places, where element-wise error means nothing).
void expect_autograd_matches(const std::string& name, at::ScalarType dtype, const std::vector<Operand>& operands,
                             const Graph& graph) {
  std::vector<at::Tensor> device_leaves, host_leaves, device_wrt, host_wrt;
  for (const Operand& o : operands) {
    at::Tensor device = to_kernel_device(o.stays_fp32 ? o.value : o.value.to(dtype)).requires_grad_(o.requires_grad);
    // The same rounded values, in fp64: the reference sees exactly what the kernel saw.
    at::Tensor host = device.detach().cpu().to(at::kDouble).requires_grad_(o.requires_grad);
    if (o.requires_grad) {
      device_wrt.push_back(device);
      host_wrt.push_back(host);
    }
    device_leaves.push_back(std::move(device));
    host_leaves.push_back(std::move(host));
  }
  at::Tensor device_out, device_grad_out;
  std::vector<at::Tensor> device_grads;
  {
    const OnKernelDevice on_device;
    poison_kernel_allocator(operands.front().value.numel() * 4);
    device_out = graph(device_leaves);
    device_grad_out = at::randn_like(device_out);
    device_grads = torch::autograd::grad({device_out}, device_wrt, {device_grad_out});
  }
  const at::Tensor host_out = graph(host_leaves);
  const std::vector<at::Tensor> host_grads =
      torch::autograd::grad({host_out}, host_wrt, {device_grad_out.detach().cpu().to(at::kDouble)});

  const double tolerance = dtype == at::kFloat ? 1e-5 : 1e-2;
  EXPECT_EQ(device_out.scalar_type(), dtype) << name;
  EXPECT_FALSE(device_out.isnan().any().item<bool>()) << name << ": poisoned output elements";
  EXPECT_LT(max_error_relative_to_scale(device_out, host_out.to(dtype)), tolerance) << name << " " << dtype;
  ASSERT_EQ(device_grads.size(), host_grads.size());
  for (std::size_t i = 0; i < device_grads.size(); ++i) {
    ASSERT_TRUE(device_grads[i].defined()) << name << " gradient " << i;
    EXPECT_EQ(device_grads[i].scalar_type(), device_wrt[i].scalar_type()) << name << " gradient " << i;
    EXPECT_FALSE(device_grads[i].isnan().any().item<bool>()) << name << " gradient " << i << ": poisoned";
    EXPECT_LT(max_error_relative_to_scale(device_grads[i], host_grads[i].to(device_grads[i].scalar_type())),
              tolerance)
        << name << " " << dtype << " gradient " << i;
  }
}

// Rotary tables as the models build them: [positions, head_dim], each half repeating the angles.
std::pair<at::Tensor, at::Tensor> rope_tables(std::int64_t positions, std::int64_t head_dim) {
  const at::Tensor inverse = at::pow(10000.0, -at::arange(0, head_dim, 2, at::kDouble) / static_cast<double>(head_dim));
  at::Tensor angles = at::outer(at::arange(positions, at::kDouble), inverse);
  angles = at::cat({angles, angles}, -1);
  return {angles.cos().to(at::kFloat), angles.sin().to(at::kFloat)};
}

class FusedAutogradCuda : public testing::TestWithParam<at::ScalarType> {};

// 768 columns: 16-byte packs; 1001: element-wise tails. Leading dimensions as the models have them.
TEST_P(FusedAutogradCuda, Norms) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  const at::ScalarType dtype = GetParam();
  for (std::int64_t cols : {768, 1001}) {
    at::manual_seed(cols);
    const at::Tensor x = at::randn({3, 11, cols}) * 2 + 0.5;
    const at::Tensor weight = at::randn({cols});
    const at::Tensor bias = at::randn({cols});
    for (bool frozen : {false, true}) {
      const std::string suffix = " cols " + std::to_string(cols) + (frozen ? " frozen" : "");
      expect_autograd_matches("rmsnorm" + suffix, dtype, {{x}, {weight, !frozen}},
                              [](const std::vector<at::Tensor>& t) { return rmsnorm(t[0], t[1], 1e-5); });
      expect_autograd_matches("layernorm" + suffix, dtype, {{x}, {weight, !frozen}, {bias, !frozen}},
                              [](const std::vector<at::Tensor>& t) { return layernorm(t[0], t[1], t[2], 1e-5); });
    }
  }
}

TEST_P(FusedAutogradCuda, Activations) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  const at::ScalarType dtype = GetParam();
  for (std::int64_t cols : {768, 1001}) {
    at::manual_seed(cols + 1);
    const at::Tensor x = at::randn({5, 70, cols}) * 3;
    const at::Tensor other = at::randn({5, 70, cols});
    // The bias stays fp32 under bf16 activations, as GPT-2's MLP hands it over.
    for (bool frozen_bias : {false, true}) {
      expect_autograd_matches(std::string("gelu_bias") + (frozen_bias ? " frozen bias" : ""), dtype,
                              {{x}, {at::randn({cols}), !frozen_bias, /*stays_fp32=*/true}},
                              [](const std::vector<at::Tensor>& t) { return gelu_bias(t[0], t[1]); });
    }
    expect_autograd_matches("swiglu", dtype, {{x}, {other}},
                            [](const std::vector<at::Tensor>& t) { return swiglu(t[0], t[1]); });
  }
}

// In place on a view of a projection's output, as Llama's attention applies it to q and k; and out
// of place.
TEST_P(FusedAutogradCuda, Rotary) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  const at::ScalarType dtype = GetParam();
  const testing_support::FullFp32Matmuls full_fp32;  // the fp32 projection below
  const std::int64_t batch = 2, length = 19, heads = 3, head_dim = 64;
  at::manual_seed(7);
  auto [cos, sin] = rope_tables(32, head_dim);
  expect_autograd_matches(
      "rope_", dtype,
      {{at::randn({batch, length, heads * head_dim})},
       {at::randn({heads * head_dim, heads * head_dim}) * 0.1},
       {cos, false, /*stays_fp32=*/true},
       {sin, false, /*stays_fp32=*/true}},
      [&](const std::vector<at::Tensor>& t) {
        // fp64 tables for the fp64 reference, fp32 for fp32 and bf16 activations.
        const at::Tensor projected = at::linear(t[0], t[1]).view({batch, length, heads, head_dim});
        return rope_(projected, t[2], t[3]);
      });
  expect_autograd_matches("rope", dtype,
                          {{at::randn({batch, length, heads, head_dim})},
                           {cos, false, /*stays_fp32=*/true},
                           {sin, false, /*stays_fp32=*/true}},
                          [](const std::vector<at::Tensor>& t) { return rope(t[0], t[1], t[2]); });
}

INSTANTIATE_TEST_SUITE_P(Dtypes, FusedAutogradCuda, testing::Values(at::kFloat, at::kBFloat16));

}  // namespace
}  // namespace albion::kernels
