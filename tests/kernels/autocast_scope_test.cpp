// File: tests/kernels/autocast_scope_test.cpp
// kernels/common/autocast_scope.h: the previous setting comes back, a disabled scope changes
// nothing, and nested scopes leave the cast cache to the outermost (as torch.autocast does);
// WeightCastsKept keeps a weight's cast across scopes until it ends.
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>

#include "kernels/common/autocast_scope.h"

namespace albion::kernels {
namespace {

TEST(Bf16AutocastScope, RestoresTheSettingAndNests) {
  ASSERT_FALSE(at::autocast::is_autocast_enabled(at::kCPU));
  {
    const Bf16AutocastScope outer(at::kCPU);
    EXPECT_TRUE(at::autocast::is_autocast_enabled(at::kCPU));
    EXPECT_EQ(at::autocast::get_autocast_dtype(at::kCPU), at::kBFloat16);
    {
      const Bf16AutocastScope inner(at::kCPU);
      const Bf16AutocastScope disabled(at::kCPU, /*enabled=*/false);
      EXPECT_TRUE(at::autocast::is_autocast_enabled(at::kCPU));
    }
    EXPECT_TRUE(at::autocast::is_autocast_enabled(at::kCPU)) << "the inner scope ended the outer one";
  }
  EXPECT_FALSE(at::autocast::is_autocast_enabled(at::kCPU));
  // Nesting is back to zero: the next scope is the outermost again.
  EXPECT_EQ(at::autocast::increment_nesting(), 1);
  at::autocast::decrement_nesting();
}

// Autocast's bf16 cast of a trainable fp32 weight in a scope of its own.
at::Tensor cast_in_a_scope(const at::Tensor& weight) {
  const Bf16AutocastScope scope(at::kCPU);
  return at::autocast::cached_cast(at::kBFloat16, weight, at::kCPU);
}

TEST(WeightCastsKept, OneCastAcrossScopesUntilItEnds) {
  const at::Tensor weight = at::randn({4, 4}).requires_grad_();
  at::Tensor first;
  {
    const WeightCastsKept kept(true);
    first = cast_in_a_scope(weight);
    EXPECT_TRUE(cast_in_a_scope(weight).is_same(first)) << "the second scope cast the weight again";
    EXPECT_TRUE(first.requires_grad()) << "the kept cast lost its autograd edge to the weight";
  }
  EXPECT_FALSE(cast_in_a_scope(weight).is_same(first)) << "the cast outlived the scope that kept it";
  {
    const WeightCastsKept not_kept(false);
    const at::Tensor again = cast_in_a_scope(weight);
    EXPECT_FALSE(cast_in_a_scope(weight).is_same(again));
  }
}

}  // namespace
}  // namespace albion::kernels
