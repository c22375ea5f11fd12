// File: tests/runtime/optim/optim_test.cpp
// AdamW against the update rule written out independently in fp64, weight decay only where asked,
// global-norm clipping, and the learning-rate schedules at their landmarks; and (suite AdamWCuda,
// label gpu; also on the CPU emulator in optim_on_emulator_test) the fused step and gradient norm
// against the torch path on the kernel device, and the warning when a parameter cannot take it.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "runtime/optim/adamw.h"
#include "runtime/optim/lr_schedule.h"
#include "tests/kernels/kernel_device.h"

namespace albion::optim {
namespace {

OptimizedParameter parameter(std::string name, at::Tensor tensor, bool decayed) {
  OptimizedParameter p;
  p.name = std::move(name);
  p.parameter = std::move(tensor);
  p.decayed = decayed;
  return p;
}

TEST(AdamW, MatchesTheUpdateRuleOverSeveralSteps) {
  at::manual_seed(0);
  at::Tensor w = at::randn({3, 4}, at::kDouble).to(at::kFloat);
  at::Tensor b = at::randn({4}, at::kDouble).to(at::kFloat);
  std::vector<OptimizedParameter> params = {parameter("w", w.clone().requires_grad_(), true),
                                            parameter("b", b.clone().requires_grad_(), false)};
  AdamWOptions options{0.9, 0.95, 1e-8, 0.1};
  AdamW adamw(params, options);
  // Independent fp64 reference.
  at::Tensor rw = w.to(at::kDouble), rb = b.to(at::kDouble);
  at::Tensor mw = at::zeros_like(rw), vw = at::zeros_like(rw), mb = at::zeros_like(rb), vb = at::zeros_like(rb);
  for (int t = 1; t <= 5; ++t) {
    const double lr = 1e-2 * t;
    at::Tensor gw = at::randn({3, 4}, at::kDouble), gb = at::randn({4}, at::kDouble);
    adamw.parameters()[0].parameter.mutable_grad() = gw.to(at::kFloat);
    adamw.parameters()[1].parameter.mutable_grad() = gb.to(at::kFloat);
    adamw.step(lr);
    gw = gw.to(at::kFloat).to(at::kDouble);
    gb = gb.to(at::kFloat).to(at::kDouble);
    auto update = [&](at::Tensor& p, at::Tensor& m, at::Tensor& v, const at::Tensor& g, bool decay) {
      m = 0.9 * m + 0.1 * g;
      v = 0.95 * v + 0.05 * g * g;
      const at::Tensor mhat = m / (1 - std::pow(0.9, t));
      const at::Tensor vhat = v / (1 - std::pow(0.95, t));
      if (decay) p = p - lr * 0.1 * p;
      p = p - lr * mhat / (vhat.sqrt() + 1e-8);
    };
    update(rw, mw, vw, gw, true);
    update(rb, mb, vb, gb, false);
  }
  EXPECT_TRUE(at::allclose(adamw.parameters()[0].parameter.detach().to(at::kDouble), rw, 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(adamw.parameters()[1].parameter.detach().to(at::kDouble), rb, 1e-5, 1e-6));
  EXPECT_EQ(adamw.step_count(), 5);
  EXPECT_EQ(adamw.state_bytes(), (12 + 4) * 2 * 4);
}

TEST(ClipGradNorm, ReturnsTheNormAndScalesDownToTheLimit) {
  at::Tensor a = at::zeros({2}).requires_grad_();
  at::Tensor b = at::zeros({1}).requires_grad_();
  a.mutable_grad() = at::tensor({3.0f, 0.0f});
  b.mutable_grad() = at::tensor({4.0f});
  std::vector<OptimizedParameter> params = {parameter("a", a, true), parameter("b", b, true)};
  EXPECT_NEAR(clip_grad_norm(params, 10.0, false), 5.0, 1e-6);  // under the limit: untouched
  EXPECT_FLOAT_EQ(b.grad().item<float>(), 4.0f);
  EXPECT_NEAR(clip_grad_norm(params, 1.0, false), 5.0, 1e-6);
  const double after = std::sqrt(a.grad().pow(2).sum().item<double>() + b.grad().pow(2).sum().item<double>());
  EXPECT_NEAR(after, 1.0, 1e-5);
}

// The factor the trainer clips with on the device: exactly 1 at or under the limit and for a norm
// that is not finite (those gradients are left as they are), max / (norm + 1e-6) above it.
TEST(ClipFactor, ScalesOnlyAFiniteNormAboveTheLimit) {
  const auto factor = [](double norm, double max_norm) {
    const at::Tensor f = clip_factor(at::scalar_tensor(norm, at::kDouble), max_norm);
    EXPECT_EQ(f.scalar_type(), at::kFloat);
    EXPECT_EQ(f.dim(), 0);
    return f.item<float>();
  };
  EXPECT_EQ(factor(0.5, 1.0), 1.0f);
  EXPECT_EQ(factor(1.0, 1.0), 1.0f);
  EXPECT_EQ(factor(4.0, 1.0), static_cast<float>(1.0 / (4.0 + 1e-6)));
  EXPECT_EQ(factor(std::nan(""), 1.0), 1.0f);
  EXPECT_EQ(factor(INFINITY, 1.0), 1.0f);
  EXPECT_FALSE(clip_factor(at::scalar_tensor(4.0, at::kDouble), 0.0).defined());  // no clipping
}

// AdamW::step's gradient scale is the same update as gradients scaled beforehand, bit for bit.
TEST(AdamW, AGradientScaleIsTheStepOnScaledGradients) {
  at::manual_seed(1);
  const at::Tensor w = at::randn({5, 3});
  const at::Tensor g = at::randn({5, 3});
  const at::Tensor scale = at::scalar_tensor(0.3f);
  AdamW scaled({parameter("w", w.clone().requires_grad_(), true)}, AdamWOptions{});
  AdamW beforehand({parameter("w", w.clone().requires_grad_(), true)}, AdamWOptions{});
  scaled.parameters()[0].parameter.mutable_grad() = g.clone();
  beforehand.parameters()[0].parameter.mutable_grad() = g * 0.3f;
  scaled.step(1e-2, scale);
  beforehand.step(1e-2);
  EXPECT_TRUE(at::equal(scaled.parameters()[0].parameter, beforehand.parameters()[0].parameter));
  EXPECT_FALSE(at::equal(scaled.parameters()[0].parameter, w));
}

// options.fused on the kernel device: one launch for every tensor against torch's ops per tensor,
// over awkward sizes (tails, one element), decayed or not, a frozen parameter (no gradient) and
// state created lazily on the first step, two steps with a gradient scale; then the gradient norm
// and clipping both ways.
TEST(AdamWCuda, FusedStepAndNormMatchTheTorchPath) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  using kernels::kernel_device;
  using kernels::to_kernel_device;
  const std::vector<std::int64_t> sizes = {1, 7, 1000, 4099, 65539};
  at::manual_seed(3);
  std::vector<OptimizedParameter> fused_params, torch_params;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    const at::Tensor value = at::randn({sizes[i]});
    const bool decayed = i % 2 == 0;
    fused_params.push_back(parameter("p" + std::to_string(i), to_kernel_device(value).requires_grad_(), decayed));
    torch_params.push_back(parameter("p" + std::to_string(i), to_kernel_device(value).requires_grad_(), decayed));
  }
  AdamWOptions options{0.9, 0.95, 1e-8, 0.1};
  options.fused = true;
  AdamW fused(fused_params, options);
  options.fused = false;
  AdamW torch_ops(torch_params, options);
  const std::size_t frozen = 1;  // never gets a gradient
  for (int step = 1; step <= 4; ++step) {
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      if (i == frozen) continue;
      const at::Tensor grad = to_kernel_device(at::randn({sizes[i]}) * 0.1);
      fused.parameters()[i].parameter.mutable_grad() = grad.clone();
      torch_ops.parameters()[i].parameter.mutable_grad() = grad.clone();
    }
    // Steps 1 and 3 clip (a factor under 1), as the trainer does, on the device; the torch path
    // scales its gradients in place, so the last step leaves them unscaled for the norm below.
    const at::Tensor scale = step % 2 == 1 ? to_kernel_device(at::scalar_tensor(0.25f)) : at::Tensor();
    {
      const kernels::OnKernelDevice on_device;
      fused.step(1e-2 * step, scale);
    }
    torch_ops.step(1e-2 * step, scale);
  }
  EXPECT_EQ(fused.fused_steps(), 4) << "the fused path did not run";
  EXPECT_EQ(torch_ops.fused_steps(), 0);
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    const OptimizedParameter& f = fused.parameters()[i];
    const OptimizedParameter& t = torch_ops.parameters()[i];
    EXPECT_TRUE(at::allclose(f.parameter.detach().cpu(), t.parameter.detach().cpu(), 1e-5, 1e-6)) << f.name;
    EXPECT_EQ(f.exp_avg.defined(), i != frozen) << f.name;
    if (i == frozen) {
      EXPECT_TRUE(at::equal(f.parameter.detach().cpu(), t.parameter.detach().cpu())) << "a frozen parameter moved";
      continue;
    }
    EXPECT_TRUE(at::allclose(f.exp_avg.cpu(), t.exp_avg.cpu(), 1e-5, 1e-7)) << f.name;
    EXPECT_TRUE(at::allclose(f.exp_avg_sq.cpu(), t.exp_avg_sq.cpu(), 1e-5, 1e-9)) << f.name;
  }

  double fused_norm = 0;
  {
    const kernels::OnKernelDevice on_device;
    fused_norm = clip_grad_norm(fused.parameters(), 0.5, /*fused=*/true);
  }
  const double torch_norm = clip_grad_norm(torch_ops.parameters(), 0.5, /*fused=*/false);
  EXPECT_NEAR(fused_norm, torch_norm, 1e-5 * torch_norm);
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    if (i == frozen) continue;
    const at::Tensor fused_grad = fused.parameters()[i].parameter.grad().cpu();
    EXPECT_TRUE(at::allclose(fused_grad, torch_ops.parameters()[i].parameter.grad().cpu(), 1e-5, 1e-8))
        << fused.parameters()[i].name;
  }
}

// options.fused with a parameter the kernel does not take (bf16 on the kernel device): every step
// takes torch's ops, and a warning names the parameter once.
TEST(AdamWCuda, AParameterTheKernelCannotTakeIsNamedOnce) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  using kernels::to_kernel_device;
  std::vector<OptimizedParameter> params;
  params.push_back(parameter("fits", to_kernel_device(at::randn({8})).requires_grad_(), true));
  params.push_back(parameter("half", to_kernel_device(at::randn({8}).to(at::kBFloat16)).requires_grad_(), true));
  AdamWOptions options;
  options.fused = true;
  AdamW adamw(params, options);
  testing::internal::CaptureStderr();
  for (int step = 0; step < 3; ++step) {
    for (OptimizedParameter& p : adamw.parameters()) p.parameter.mutable_grad() = at::ones_like(p.parameter);
    const kernels::OnKernelDevice on_device;
    adamw.step(1e-2);
  }
  const std::string log = testing::internal::GetCapturedStderr();
  EXPECT_EQ(adamw.fused_steps(), 0);
  EXPECT_EQ(adamw.step_count(), 3);
  EXPECT_NE(log.find("AdamW: half (BFloat16, gradient BFloat16) does not fit the fused kernel"), std::string::npos)
      << log;
  EXPECT_EQ(log.find("AdamW:"), log.rfind("AdamW:")) << "warned more than once:\n" << log;
  EXPECT_FALSE(adamw.parameters()[1].parameter.detach().cpu().isnan().any().item<bool>());
}

TEST(LrSchedule, CosineWarmupAndFloor) {
  LrSchedule s{"cosine", 1.0, 0.1, 10, 110, 0.2};
  EXPECT_DOUBLE_EQ(s.at(0), 0.1);   // (0 + 1) / 10 of the peak
  EXPECT_DOUBLE_EQ(s.at(9), 1.0);
  EXPECT_DOUBLE_EQ(s.at(10), 1.0);  // cosine starts at the peak
  EXPECT_NEAR(s.at(60), 0.55, 1e-12);  // half way: the midpoint of peak and floor
  EXPECT_NEAR(s.at(110), 0.1, 1e-12);
  EXPECT_NEAR(s.at(500), 0.1, 1e-12);  // never below the floor
}

TEST(LrSchedule, WarmupStableDecay) {
  LrSchedule s{"wsd", 1.0, 0.0, 10, 100, 0.2};
  EXPECT_DOUBLE_EQ(s.at(50), 1.0);
  EXPECT_DOUBLE_EQ(s.at(79), 1.0);
  EXPECT_NEAR(s.at(89), 0.5, 1e-12);
  EXPECT_NEAR(s.at(99), 0.0, 1e-12);
  EXPECT_DOUBLE_EQ((LrSchedule{"constant", 2.0, 0, 0, 10, 0.2}.at(7)), 2.0);
}

}  // namespace
}  // namespace albion::optim
