// File: tests/runtime/optim/optim_test.cpp
// AdamW against the update rule written out independently in fp64, weight decay only where asked,
// global-norm clipping, and the learning-rate schedules at their landmarks.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <utility>

#include "runtime/optim/adamw.h"
#include "runtime/optim/lr_schedule.h"

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
