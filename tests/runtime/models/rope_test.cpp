// File: tests/runtime/models/rope_test.cpp
// Llama 3 frequency scaling against the published per-frequency formula, and the rotation's
// defining properties: per-pair rotation by position * frequency, norm preserved, and attention
// scores that depend only on the distance between positions.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "runtime/models/rope.h"

namespace albion::models {
namespace {

// The reference formula as published with Llama 3.1 (apply_scaling), for one frequency.
double published_llama3_scaling(double freq, double factor, double low, double high,
                                double original) {
  const double wavelen = 2 * std::numbers::pi / freq;
  if (wavelen < original / high) return freq;
  if (wavelen > original / low) return freq / factor;
  const double smooth = (original / wavelen - low) / (high - low);
  return (1 - smooth) * freq / factor + smooth * freq;
}

TEST(Rope, Llama3ScalingMatchesPublishedFormula) {
  const RopeScaling scaling{8.0, 1.0, 4.0, 8192};
  const at::Tensor scaled = rope_inverse_frequencies(128, 500000.0, scaling);
  const at::Tensor plain = rope_inverse_frequencies(128, 500000.0, std::nullopt);
  ASSERT_EQ(scaled.size(0), 64);
  int unchanged = 0, divided = 0, blended = 0;
  for (std::int64_t i = 0; i < 64; ++i) {
    const double base = std::pow(500000.0, -static_cast<double>(2 * i) / 128.0);
    EXPECT_NEAR(plain[i].item<double>(), base, 1e-15 * base);
    const double expected = published_llama3_scaling(base, 8.0, 1.0, 4.0, 8192.0);
    EXPECT_NEAR(scaled[i].item<double>(), expected, 1e-14 * expected) << i;
    if (expected == base)
      ++unchanged;
    else if (std::abs(expected - base / 8.0) < 1e-18)
      ++divided;
    else
      ++blended;
  }
  // Llama 3.1 8B's 64 frequencies fall in all three bands.
  EXPECT_GT(unchanged, 0);
  EXPECT_GT(divided, 0);
  EXPECT_GT(blended, 0);
  EXPECT_EQ(scaled[0].item<double>(), 1.0);
  EXPECT_NEAR(scaled[63].item<double>(), plain[63].item<double>() / 8.0, 1e-20);
}

TEST(Rope, RotatesHalvesPairwiseAndDependsOnlyOnDistance) {
  const std::int64_t d = 8;
  RotaryTables rotary(rope_inverse_frequencies(d, 100.0, RopeScaling{4.0, 1.0, 4.0, 32}));
  const RotaryTables::Tables tables = rotary.get(20, at::kCPU, at::kDouble);
  ASSERT_EQ(tables.cos.sizes(), (std::vector<std::int64_t>{20, d}));
  const at::Tensor inv_freq = rope_inverse_frequencies(d, 100.0, RopeScaling{4.0, 1.0, 4.0, 32});

  at::manual_seed(0);
  const at::Tensor q = at::randn({1, 1, 20, d}, at::kDouble);
  const at::Tensor k = at::randn({1, 1, 20, d}, at::kDouble);
  // Put the same q and k vectors at every position to compare scores across positions.
  const at::Tensor q_same = q.narrow(2, 0, 1).expand({1, 1, 20, d});
  const at::Tensor k_same = k.narrow(2, 0, 1).expand({1, 1, 20, d});
  const at::Tensor rq = apply_rotary(q_same, tables.cos, tables.sin);
  const at::Tensor rk = apply_rotary(k_same, tables.cos, tables.sin);

  // Position 5, pair 2: (x[2], x[6]) turned by 5 * inv_freq[2].
  const double angle = 5 * inv_freq[2].item<double>();
  const double x1 = q[0][0][0][2].item<double>(), x2 = q[0][0][0][6].item<double>();
  EXPECT_NEAR(rq[0][0][5][2].item<double>(), x1 * std::cos(angle) - x2 * std::sin(angle), 1e-14);
  EXPECT_NEAR(rq[0][0][5][6].item<double>(), x2 * std::cos(angle) + x1 * std::sin(angle), 1e-14);

  EXPECT_TRUE(at::allclose(rq.norm(2, -1), q_same.norm(2, -1), 0.0, 1e-12));
  const auto score = [&](std::int64_t m, std::int64_t n) {
    return (rq[0][0][m] * rk[0][0][n]).sum().item<double>();
  };
  EXPECT_NEAR(score(7, 3), score(15, 11), 1e-12);
  EXPECT_NEAR(score(2, 2), score(19, 19), 1e-12);

  // A shorter request reuses the cached tables; a float activation gets fp32 tables.
  EXPECT_TRUE(at::equal(rotary.get(4, at::kCPU, at::kDouble).sin, tables.sin.narrow(0, 0, 4)));
  EXPECT_EQ(rotary.get(4, at::kCPU, at::kBFloat16).cos.scalar_type(), at::kFloat);
}

}  // namespace
}  // namespace albion::models
