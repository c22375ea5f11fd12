// File: tests/kernels/emulated/softmax_cross_entropy_emulated_test.cpp
// kernels/cross_entropy/softmax_cross_entropy.cu on the CPU emulator against its reference: odd
// vocabularies whose rows start at every alignment, ignored rows, loss only, and the kernel's own
// contract for bad rows (NaN loss and gradient) which the reference refuses instead.
#include <cmath>
#include <cstdint>
#include <limits>
#include <tuple>

#include "kernels/cross_entropy/softmax_cross_entropy.cuh"
#include "tests/kernels/emulated/emulated_support.h"

namespace albion::kernels::emulated {
namespace {

class SoftmaxCrossEntropyEmulated : public EmulatedKernel {};

template <typename T>
void check(std::int64_t rows, std::int64_t vocab, bool write_gradient) {
  SCOPED_TRACE(dtype_name<T>() + " " + std::to_string(rows) + "x" + std::to_string(vocab) +
               (write_gradient ? "" : " loss only"));
  DeviceBuffer<T> logits = random_values<T>(rows * vocab, vocab, 4.0f);
  DeviceBuffer<std::int64_t> targets(rows);
  for (std::int64_t r = 0; r < rows; ++r) targets[r] = (r * 7919) % vocab;
  if (rows > 2) targets[1] = -100;  // ignored
  std::vector<float> expected_logits = widened(logits);
  DeviceBuffer<float> losses = poisoned<float>(rows), expected_losses(rows);

  launch_softmax_cross_entropy({logits.data(), targets.data(), losses.data(), rows, vocab, -100, write_gradient,
                                dtype_of<T>()},
                               nullptr);
  softmax_cross_entropy_reference<float>(expected_logits.data(), targets.data(), expected_losses.data(), rows, vocab,
                                         -100, write_gradient);
  EXPECT_LT(max_relative_error(widened(losses), expected_losses), 1e-5);
  // The gradient's entries are probabilities (and p - 1 at the target): relative error, element-wise.
  EXPECT_LT(max_relative_error(widened(logits), expected_logits), tolerance<T>());
}

TEST_P(SoftmaxCrossEntropyEmulated, MatchesReference) {
  for (auto [rows, vocab] : {std::tuple{1, 1}, {3, 8}, {5, 1001}, {9, 50257}, {2, 128256}}) {
    for (bool write_gradient : {true, false}) {
      check<float>(rows, vocab, write_gradient);
      check<__nv_bfloat16>(rows, vocab, write_gradient);
    }
  }
}

// Logits far from zero (exp overflows without the running max) and masked entries at -inf.
TEST_P(SoftmaxCrossEntropyEmulated, ExtremeLogits) {
  constexpr std::int64_t kVocab = 1000;
  DeviceBuffer<float> logits = random_values<float>(2 * kVocab, 3);
  for (std::int64_t j = 0; j < kVocab; ++j) logits[j] = 1e4f + logits[j];
  for (std::int64_t j = 0; j < kVocab; j += 3) logits[kVocab + j] = -INFINITY;
  DeviceBuffer<std::int64_t> targets(2);
  targets[0] = 17, targets[1] = 401;  // 401 is not masked
  std::vector<float> expected_logits = widened(logits);
  DeviceBuffer<float> losses = poisoned<float>(2);
  std::vector<float> expected_losses(2);
  launch_softmax_cross_entropy({logits.data(), targets.data(), losses.data(), 2, kVocab, -100, true,
                                DType::kFloat32},
                               nullptr);
  softmax_cross_entropy_reference<float>(expected_logits.data(), targets.data(), expected_losses.data(), 2, kVocab,
                                         -100, true);
  // 1e4 + x keeps only about three decimal digits of x in fp32; both sides see the same rounded inputs.
  EXPECT_LT(max_relative_error(widened(losses), expected_losses), 1e-5);
  EXPECT_LT(max_error_relative_to_scale(widened(logits), expected_logits), 1e-5);
  for (std::int64_t j = 0; j < kVocab; j += 3) ASSERT_EQ(logits[kVocab + j], 0.0f) << "masked entry " << j;
}

TEST_P(SoftmaxCrossEntropyEmulated, BadRowsGiveNanLossAndGradient) {
  constexpr std::int64_t kVocab = 300;
  DeviceBuffer<float> logits = random_values<float>(3 * kVocab, 1);
  logits[2 * kVocab + 17] = std::numeric_limits<float>::quiet_NaN();
  DeviceBuffer<std::int64_t> targets(3);  // row 0: outside the vocabulary; row 2: a NaN logit
  targets[0] = kVocab, targets[1] = 5, targets[2] = 9;
  DeviceBuffer<float> losses = poisoned<float>(3);
  launch_softmax_cross_entropy({logits.data(), targets.data(), losses.data(), 3, kVocab, -100, true,
                                DType::kFloat32},
                               nullptr);
  EXPECT_TRUE(std::isnan(losses[0]));
  EXPECT_FALSE(std::isnan(losses[1]));
  EXPECT_TRUE(std::isnan(losses[2]));
  for (std::int64_t j = 0; j < kVocab; ++j) {
    ASSERT_TRUE(std::isnan(logits[j])) << "row 0, entry " << j;
    ASSERT_FALSE(std::isnan(logits[kVocab + j])) << "row 1, entry " << j;
    ASSERT_TRUE(std::isnan(logits[2 * kVocab + j])) << "row 2, entry " << j;
  }
}

ALBION_EMULATED_SCHEDULES(SoftmaxCrossEntropyEmulated);

}  // namespace
}  // namespace albion::kernels::emulated
