// File: tests/kernels/emulated/softmax_cross_entropy_emulated_test.cpp
// kernels/cross_entropy/softmax_cross_entropy.cu on the CPU emulator against its reference, both
// kernels (the looping one, and rows held in a cluster's registers, in the cluster the launcher
// chooses and in larger ones): odd vocabularies whose rows start at every alignment, ignored rows,
// loss only, and the kernels' own contract for bad rows (NaN loss and gradient) which the
// reference refuses instead; the two halves a vocabulary cut over ranks runs (each row's
// logsumexp, then the gradient from a given one).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <tuple>
#include <vector>

#include "kernels/cross_entropy/softmax_cross_entropy.cuh"
#include "tests/kernels/emulated/emulated_support.h"

namespace albion::kernels::emulated {
namespace {

class SoftmaxCrossEntropyEmulated : public EmulatedKernel {};

// Runs the looping kernel where cluster is 0, else the register-row kernel in clusters of that many.
void launch(void* logits, const std::int64_t* targets, float* losses, std::int64_t rows, std::int64_t vocab,
            bool write_gradient, DType dtype, int cluster) {
  SoftmaxCrossEntropyParams p{logits, targets, losses, rows, vocab, -100, write_gradient, dtype};
  p.cluster = cluster;
  launch_softmax_cross_entropy(p, nullptr);
}

// The clusters to run a row of `vocab` in: 0 (the looping kernel), the launcher's choice, and 8.
std::vector<int> clusters_for(std::int64_t vocab) {
  const int chosen = softmax_cross_entropy_cluster(vocab);
  EXPECT_GT(chosen, 0) << "a row of " << vocab << " should fit";
  return chosen == kMaxRowCluster ? std::vector<int>{0, chosen} : std::vector<int>{0, chosen, kMaxRowCluster};
}

template <typename T>
void check(std::int64_t rows, std::int64_t vocab, bool write_gradient, int cluster) {
  SCOPED_TRACE(dtype_name<T>() + " " + std::to_string(rows) + "x" + std::to_string(vocab) +
               (write_gradient ? "" : " loss only") + " cluster " + std::to_string(cluster));
  DeviceBuffer<T> logits = random_values<T>(rows * vocab, vocab, 4.0f);
  DeviceBuffer<std::int64_t> targets(rows);
  for (std::int64_t r = 0; r < rows; ++r) targets[r] = (r * 7919) % vocab;
  if (rows > 2) targets[1] = -100;  // ignored
  std::vector<float> expected_logits = widened(logits);
  DeviceBuffer<float> losses = poisoned<float>(rows), expected_losses(rows);

  launch(logits.data(), targets.data(), losses.data(), rows, vocab, write_gradient, dtype_of<T>(), cluster);
  softmax_cross_entropy_reference<float>(expected_logits.data(), targets.data(), expected_losses.data(), rows, vocab,
                                         -100, write_gradient);
  EXPECT_LT(max_relative_error(widened(losses), expected_losses), 1e-5);
  // The gradient's entries are probabilities (and p - 1 at the target): relative error, element-wise.
  EXPECT_LT(max_relative_error(widened(logits), expected_logits), tolerance<T>());
}

TEST_P(SoftmaxCrossEntropyEmulated, MatchesReference) {
  for (auto [rows, vocab] : {std::tuple{1, 1}, {3, 8}, {5, 1001}, {9, 50257}, {2, 128256}}) {
    for (bool write_gradient : {true, false}) {
      for (int cluster : clusters_for(vocab)) check<float>(rows, vocab, write_gradient, cluster);
      for (int cluster : clusters_for(vocab)) check<__nv_bfloat16>(rows, vocab, write_gradient, cluster);
    }
  }
}

// Where the blocks' registers run out: rows of exactly 32 entries a thread (1,024: one block of 32
// threads; 32,768: two of 512), and one pack more, in both dtypes.
TEST_P(SoftmaxCrossEntropyEmulated, RowsAtTheEdgeOfAClustersRegisters) {
  EXPECT_EQ(softmax_cross_entropy_cluster(1024), 1);
  EXPECT_EQ(softmax_cross_entropy_cluster(16384), 1);
  EXPECT_EQ(softmax_cross_entropy_cluster(16385), 2);
  EXPECT_EQ(softmax_cross_entropy_cluster(131072), 8);
  EXPECT_EQ(softmax_cross_entropy_cluster(131073), 0);
  EXPECT_EQ(softmax_cross_entropy_cluster(128256), 8);  // Llama 3's vocabulary
  EXPECT_EQ(softmax_cross_entropy_cluster(50304), 4);   // GPT-2's, padded
  for (std::int64_t vocab : {1024, 1032, 32768, 32776}) {
    check<float>(2, vocab, true, softmax_cross_entropy_cluster(vocab));
    check<__nv_bfloat16>(2, vocab, true, softmax_cross_entropy_cluster(vocab));
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
  std::vector<float> expected_losses(2);
  softmax_cross_entropy_reference<float>(expected_logits.data(), targets.data(), expected_losses.data(), 2, kVocab,
                                         -100, true);
  for (int cluster : clusters_for(kVocab)) {
    SCOPED_TRACE("cluster " + std::to_string(cluster));
    DeviceBuffer<float> work = copied(logits);
    DeviceBuffer<float> losses = poisoned<float>(2);
    launch(work.data(), targets.data(), losses.data(), 2, kVocab, true, DType::kFloat32, cluster);
    // 1e4 + x keeps only about three decimal digits of x in fp32; both sides see the same rounded inputs.
    EXPECT_LT(max_relative_error(widened(losses), expected_losses), 1e-5);
    EXPECT_LT(max_error_relative_to_scale(widened(work), expected_logits), 1e-5);
    for (std::int64_t j = 0; j < kVocab; j += 3) ASSERT_EQ(work[kVocab + j], 0.0f) << "masked entry " << j;
  }
}

TEST_P(SoftmaxCrossEntropyEmulated, BadRowsGiveNanLossAndGradient) {
  constexpr std::int64_t kVocab = 300;
  DeviceBuffer<float> logits = random_values<float>(3 * kVocab, 1);
  logits[2 * kVocab + 17] = std::numeric_limits<float>::quiet_NaN();
  DeviceBuffer<std::int64_t> targets(3);  // row 0: outside the vocabulary; row 2: a NaN logit
  targets[0] = kVocab, targets[1] = 5, targets[2] = 9;
  for (int cluster : clusters_for(kVocab)) {
    SCOPED_TRACE("cluster " + std::to_string(cluster));
    DeviceBuffer<float> work = copied(logits);
    DeviceBuffer<float> losses = poisoned<float>(3);
    launch(work.data(), targets.data(), losses.data(), 3, kVocab, true, DType::kFloat32, cluster);
    EXPECT_TRUE(std::isnan(losses[0]));
    EXPECT_FALSE(std::isnan(losses[1]));
    EXPECT_TRUE(std::isnan(losses[2]));
    for (std::int64_t j = 0; j < kVocab; ++j) {
      ASSERT_TRUE(std::isnan(work[j])) << "row 0, entry " << j;
      ASSERT_FALSE(std::isnan(work[kVocab + j])) << "row 1, entry " << j;
      ASSERT_TRUE(std::isnan(work[2 * kVocab + j])) << "row 2, entry " << j;
    }
  }
}

// The two halves of a vocabulary cut over ranks. Each row's logsumexp (both kernels; logits only
// read; ignored rows 0, a row of -inf -inf, a NaN NaN), then the gradient from a given logsumexp
// (the looping kernel): a target outside the row (another rank's) adds no one-hot, +inf zeroes its
// row, -inf entries get 0, a NaN logsumexp makes the row NaN.
template <typename T>
void check_halves(std::int64_t rows, std::int64_t vocab) {
  SCOPED_TRACE(dtype_name<T>() + " " + std::to_string(rows) + "x" + std::to_string(vocab));
  DeviceBuffer<T> logits = random_values<T>(rows * vocab, vocab + 1, 4.0f);
  for (std::int64_t j = 0; j < vocab; j += 2) logits[j] = narrow<T>(-INFINITY);  // row 0: half masked
  for (std::int64_t j = 0; j < vocab; ++j) logits[vocab + j] = narrow<T>(-INFINITY);  // row 1: all
  logits[2 * vocab + vocab / 2] = narrow<T>(NAN);
  DeviceBuffer<std::int64_t> targets(rows);
  for (std::int64_t r = 0; r < rows; ++r) targets[r] = (r * 7919 + 1) % vocab;
  targets[1] = vocab + 1;  // another rank's
  targets[3] = -100;       // ignored
  targets[4] = vocab + 5;  // another rank's
  std::vector<float> expected_lse(rows);
  const std::vector<float> before = widened(logits);
  softmax_logsumexp_reference<float>(before.data(), targets.data(), expected_lse.data(), rows, vocab, -100);
  EXPECT_EQ(expected_lse[1], -INFINITY);
  EXPECT_TRUE(std::isnan(expected_lse[2]));
  for (int cluster : clusters_for(vocab)) {
    SCOPED_TRACE("cluster " + std::to_string(cluster));
    DeviceBuffer<float> lse = poisoned<float>(rows);
    SoftmaxCrossEntropyParams p{logits.data(), targets.data(), lse.data(), rows, vocab, -100, false, dtype_of<T>()};
    p.write_lse = true;
    p.cluster = cluster;
    launch_softmax_cross_entropy(p, nullptr);
    EXPECT_EQ(lse[1], -INFINITY);
    EXPECT_TRUE(std::isnan(lse[2]));
    for (const std::int64_t r : {std::int64_t{1}, std::int64_t{2}}) lse[r] = expected_lse[r] = 0;  // compared above
    EXPECT_LT(max_relative_error(widened(lse), expected_lse), 1e-5);
    const std::vector<float> after = widened(logits);
    for (std::size_t i = 0; i < after.size(); ++i) {
      ASSERT_TRUE(std::isnan(before[i]) ? std::isnan(after[i]) : after[i] == before[i]) << "read only: " << i;
    }
  }

  DeviceBuffer<float> given(rows);
  for (std::int64_t r = 0; r < rows; ++r) given[r] = expected_lse[r] + 0.25f;  // any row's, not only its own
  given[1] = 0.0f;
  given[2] = NAN;  // as the ranks' sums make it: the whole row NaN
  given[3] = INFINITY;
  DeviceBuffer<T> gradient = copied(logits);
  std::vector<float> expected_gradient = before;
  softmax_gradient_reference<float>(expected_gradient.data(), targets.data(), given.data(), rows, vocab);
  SoftmaxCrossEntropyParams p{gradient.data(), targets.data(), nullptr, rows, vocab, -100, true, dtype_of<T>()};
  p.lse = given.data();
  launch_softmax_cross_entropy(p, nullptr);
  const std::vector<float> actual = widened(gradient);
  for (std::int64_t j = 0; j < vocab; ++j) {
    ASSERT_TRUE(std::isnan(actual[2 * vocab + j])) << "the NaN's row, entry " << j;
    ASSERT_EQ(actual[3 * vocab + j], 0.0f) << "the ignored row, entry " << j;
    ASSERT_EQ(actual[vocab + j], 0.0f) << "the row of -inf, entry " << j;
  }
  const auto without_row_2 = [&](std::vector<float> values) {
    std::fill_n(values.begin() + 2 * vocab, vocab, 0.0f);
    return values;
  };
  EXPECT_LT(max_relative_error(without_row_2(actual), without_row_2(expected_gradient)), tolerance<T>());
  float row_4_sum = 0.0f;  // another rank's target: a softmax's share of the row, no -1 here
  for (std::int64_t j = 0; j < vocab; ++j) row_4_sum += actual[4 * vocab + j];
  EXPECT_GT(row_4_sum, 0.0f);
}

TEST_P(SoftmaxCrossEntropyEmulated, HalvesForAVocabularyCutOverRanks) {
  for (const std::int64_t vocab : {8, 1001, 25129}) {  // 25,129: GPT-2's padded 50,258 on each of 2 ranks
    check_halves<float>(6, vocab);
    check_halves<__nv_bfloat16>(6, vocab);
  }
}

ALBION_EMULATED_SCHEDULES(SoftmaxCrossEntropyEmulated);

}  // namespace
}  // namespace albion::kernels::emulated
