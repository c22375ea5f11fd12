// File: tests/kernels/autocast_scope_test.cpp
// kernels/common/autocast_scope.h: the previous setting comes back, a disabled scope changes
// nothing, and nested scopes leave the cast cache to the outermost (as torch.autocast does).
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

}  // namespace
}  // namespace albion::kernels
