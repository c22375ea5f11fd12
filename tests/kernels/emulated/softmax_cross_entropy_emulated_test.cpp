// File: tests/kernels/emulated/softmax_cross_entropy_emulated_test.cpp
// kernels/cross_entropy/softmax_cross_entropy.cu on the CPU emulator against its reference, both
// kernels (the looping one, and rows held in a cluster's registers, in the cluster the launcher
// chooses and in larger ones): odd vocabularies whose rows start at every alignment, ignored rows,
// loss only, and the kernels' own contract for bad rows (NaN loss and gradient) which the
// reference refuses instead.
#include <cmath>
#include <cstdint>
#include <limits>
#include <tuple>

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

ALBION_EMULATED_SCHEDULES(SoftmaxCrossEntropyEmulated);

}  // namespace
}  // namespace albion::kernels::emulated
