// File: tests/kernels/softmax_cross_entropy_test.cpp
// Softmax cross-entropy with the gradient written over the logits: the CPU reference against
// torch's cross_entropy and its autograd, the gradient against central finite differences in
// fp64, bad targets, and (suite SoftmaxCrossEntropyCuda, label gpu; also on the CPU emulator in
// kernels_on_emulator_test) the CUDA kernel against the reference on the same rounded logits,
// losses poisoned first, odd vocabularies (rows that start off a 16-byte boundary) and a view that
// starts mid-allocation; both kernels (rows in a cluster's registers, and the looping one); grids
// of fewer blocks than rows, and how the GPU path chooses its grid. The two halves a vocabulary cut
// over ranks runs (each row's logsumexp, then the gradient from the whole row's): the references
// make the whole row's, and the kernels match them.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <limits>

#include "kernels/cross_entropy/softmax_cross_entropy.cuh"
#include "kernels/cross_entropy/softmax_cross_entropy.h"
#include "runtime/base/error.h"
#include "tests/kernels/kernel_device.h"
#include "tests/kernels/relative_error.h"

namespace albion::kernels {
namespace {

constexpr std::int64_t kIgnore = -100;

at::Tensor random_targets(std::int64_t rows, std::int64_t vocab) {
  at::Tensor targets = at::randint(vocab, {rows}, at::kLong);
  targets.index_put_({at::arange(0, rows, 4)}, kIgnore);  // every fourth row ignored
  return targets;
}

TEST(SoftmaxCrossEntropy, ReferenceMatchesTorchLossAndAutograd) {
  for (std::int64_t vocab : {1, 2, 301}) {
    at::manual_seed(vocab);
    const std::int64_t rows = 9;
    at::Tensor logits = (at::randn({rows, vocab}, at::kDouble) * 4).requires_grad_(true);
    const at::Tensor targets = random_targets(rows, vocab);
    const at::Tensor expected = at::cross_entropy_loss(logits, targets, {}, at::Reduction::None, kIgnore);
    const at::Tensor expected_grad = torch::autograd::grad({expected.sum()}, {logits})[0];

    at::Tensor work = logits.detach().clone();
    const at::Tensor losses = softmax_cross_entropy_(work, targets, kIgnore, /*write_gradient=*/true);
    EXPECT_LT(max_relative_error(losses, expected), 1e-12) << vocab;
    EXPECT_LT((work - expected_grad).abs().max().item<double>(), 1e-14) << vocab;

    // fp32 and bf16 through the float reference; without write_gradient the logits stay.
    for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
      at::Tensor low = logits.detach().to(dtype);
      const at::Tensor before = low.clone();
      const at::Tensor low_losses = softmax_cross_entropy_(low, targets, kIgnore, false);
      EXPECT_TRUE(at::equal(low, before)) << dtype;
      const at::Tensor low_expected =
          at::cross_entropy_loss(before.to(at::kDouble), targets, {}, at::Reduction::None, kIgnore);
      EXPECT_LT((low_losses.to(at::kDouble) - low_expected).abs().max().item<double>(), 1e-5) << dtype;
    }
  }
}

TEST(SoftmaxCrossEntropy, GradientMatchesFiniteDifferences) {
  at::manual_seed(3);
  const std::int64_t rows = 3, vocab = 11;
  const at::Tensor logits = at::randn({rows, vocab}, at::kDouble) * 2;
  const at::Tensor targets = at::tensor(std::vector<std::int64_t>{4, kIgnore, 10});
  at::Tensor gradient = logits.clone();
  softmax_cross_entropy_(gradient, targets, kIgnore, true);
  const auto loss_of = [&](const at::Tensor& x) {
    at::Tensor copy = x.clone();
    return softmax_cross_entropy_(copy, targets, kIgnore, false).sum().item<double>();
  };
  const double h = 1e-6;
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t j = 0; j < vocab; ++j) {
      at::Tensor plus = logits.clone(), minus = logits.clone();
      plus[r][j] += h;
      minus[r][j] -= h;
      const double numeric = (loss_of(plus) - loss_of(minus)) / (2 * h);
      EXPECT_NEAR(gradient[r][j].item<double>(), numeric, 1e-8) << r << "," << j;
    }
  }
}

TEST(SoftmaxCrossEntropy, RefusesBadTargetsAndShapes) {
  at::Tensor logits = at::zeros({2, 5});
  EXPECT_THROW(softmax_cross_entropy_(logits, at::tensor({0, 5}, at::kLong), kIgnore, true), UsageError);
  EXPECT_THROW(softmax_cross_entropy_(logits, at::tensor({0, -1}, at::kLong), kIgnore, true), UsageError);
  EXPECT_THROW(softmax_cross_entropy_(logits, at::tensor({0}, at::kLong), kIgnore, true), UsageError);
  EXPECT_THROW(softmax_cross_entropy_(logits, at::tensor({0, 1}, at::kInt), kIgnore, true), UsageError);
  at::Tensor strided = at::zeros({5, 2}).t();
  EXPECT_THROW(softmax_cross_entropy_(strided, at::tensor({0, 1}, at::kLong), kIgnore, true), UsageError);
  at::Tensor empty_vocab = at::zeros({2, 0});
  EXPECT_THROW(softmax_cross_entropy_(empty_vocab, at::tensor({0, 1}, at::kLong), kIgnore, true), UsageError);
}

// The two halves for a vocabulary cut over ranks, on two column halves of one row as two ranks
// would hold them: their logsumexps combine to the whole row's, and the gradients from it, each
// half's targets shifted to its own columns (outside them: the other rank's), are the whole row's.
TEST(SoftmaxCrossEntropy, HalvesOverTwoRanksMakeTheWholeRow) {
  at::manual_seed(8);
  const std::int64_t rows = 9, half = 13;
  const at::Tensor logits = at::randn({rows, 2 * half}, at::kDouble) * 3;
  const at::Tensor targets = random_targets(rows, 2 * half);
  const at::Tensor kept = targets != kIgnore;
  at::Tensor whole_gradient = logits.clone();
  softmax_cross_entropy_(whole_gradient, targets, kIgnore, true);

  const at::Tensor first = logits.narrow(1, 0, half).contiguous();
  const at::Tensor second = logits.narrow(1, half, half).contiguous();
  const at::Tensor lse = at::logaddexp(softmax_logsumexp(first, targets, kIgnore),
                                       softmax_logsumexp(second, targets, kIgnore));
  EXPECT_EQ(lse.scalar_type(), at::kDouble);
  EXPECT_LT((lse - at::logsumexp(logits, 1)).masked_select(kept).abs().max().item<double>(), 1e-12);
  const at::Tensor given = at::where(kept, lse, std::numeric_limits<double>::infinity());
  at::Tensor first_gradient = first.clone(), second_gradient = second.clone();
  softmax_gradient_(first_gradient, at::where(targets < half, targets, -1), given);
  softmax_gradient_(second_gradient, targets - half, given);  // the first half's and ignored: negative
  EXPECT_LT((at::cat({first_gradient, second_gradient}, 1) - whole_gradient).abs().max().item<double>(), 1e-14);

  // bf16 logits through the fp32 reference: fp32 logsumexps; the gradient back in bf16.
  const at::Tensor low = first.to(at::kBFloat16);
  const at::Tensor low_lse = softmax_logsumexp(low, targets, kIgnore);
  EXPECT_EQ(low_lse.scalar_type(), at::kFloat);
  at::Tensor low_gradient = low.clone();
  softmax_gradient_(low_gradient, at::where(targets < half, targets, -1), given);
  EXPECT_EQ(low_gradient.scalar_type(), at::kBFloat16);
  EXPECT_LT((low_gradient.to(at::kDouble) - first_gradient).abs().max().item<double>(), 1e-2);
  EXPECT_THROW(softmax_gradient_(low_gradient, targets, given.narrow(0, 0, rows - 1)), UsageError);
}

// The grid the GPU path chooses (softmax_cross_entropy_blocks): a block per row while the rows the
// resident blocks keep in flight fit in half of L2; past that, fewer blocks looping over the rows;
// a block per row again where even one block per multiprocessor's rows would not fit.
TEST(SoftmaxCrossEntropy, GridKeepsRowsInFlightWithinHalfOfL2) {
  constexpr std::int64_t kMiB = 1 << 20;
  constexpr int kH100 = 132;  // multiprocessors; L2 50 MiB (the H200: 60 MiB)
  // A block per row: 4 resident blocks x 132 x 40 KB = 21 MB fits in 25 MiB.
  EXPECT_EQ(softmax_cross_entropy_blocks(8192, 40'000, kH100, 4, 50 * kMiB), 8192);
  // GPT-2's vocabulary in bf16 (100.5 KB rows): 2 blocks per multiprocessor fit in the H200's 30
  // MiB, only 1 in the H100's 25; 3 resident blocks halve to 1.
  EXPECT_EQ(softmax_cross_entropy_blocks(8192, 2 * 50'257, kH100, 4, 60 * kMiB), 2 * kH100);
  EXPECT_EQ(softmax_cross_entropy_blocks(8192, 2 * 50'257, kH100, 4, 50 * kMiB), kH100);
  EXPECT_EQ(softmax_cross_entropy_blocks(8192, 2 * 50'257, kH100, 3, 60 * kMiB), kH100);
  // GPT-2's in fp32: one block per multiprocessor fits the H200's 30 MiB, not the H100's 25.
  EXPECT_EQ(softmax_cross_entropy_blocks(8192, 4 * 50'257, kH100, 2, 60 * kMiB), kH100);
  EXPECT_EQ(softmax_cross_entropy_blocks(8192, 4 * 50'257, kH100, 2, 50 * kMiB), 8192);
  // Llama 3's in bf16 or fp32 fits at none: a block per row.
  EXPECT_EQ(softmax_cross_entropy_blocks(8192, 2 * 128'256, kH100, 2, 60 * kMiB), 8192);
  EXPECT_EQ(softmax_cross_entropy_blocks(8192, 4 * 128'256, kH100, 4, 60 * kMiB), 8192);
  // Never more blocks than rows; one resident block, or an unknown device, gets a block per row.
  EXPECT_EQ(softmax_cross_entropy_blocks(7, 4 * 128'256, kH100, 4, 50 * kMiB), 7);
  EXPECT_EQ(softmax_cross_entropy_blocks(8192, 4 * 128'256, kH100, 1, 50 * kMiB), 8192);
  EXPECT_EQ(softmax_cross_entropy_blocks(8192, 4 * 128'256, 0, 0, 0), 8192);
}

class SoftmaxCrossEntropyCuda : public testing::TestWithParam<std::tuple<std::int64_t, at::ScalarType>> {};

TEST_P(SoftmaxCrossEntropyCuda, KernelMatchesTheReference) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  const auto [vocab, dtype] = GetParam();
  at::manual_seed(vocab);
  const std::int64_t rows = 37;
  // One spare row in front: the view starts `vocab` elements into the allocation.
  const at::Tensor storage = to_kernel_device((at::randn({rows + 1, vocab}) * 3).to(dtype));
  at::Tensor logits = storage.clone().narrow(0, 1, rows);
  const at::Tensor targets = to_kernel_device(random_targets(rows, vocab));
  const double tolerance = dtype == at::kFloat ? 1e-5 : 1e-2;

  // fp64, so a copy even where .cpu() is not one (the emulated build): the reference's in-place
  // gradient never lands in the logits the kernel overwrites below.
  at::Tensor expected_gradient = logits.cpu().to(at::kDouble);
  const at::Tensor expected_losses = softmax_cross_entropy_(expected_gradient, targets.cpu(), kIgnore, true);
  // blocks 0: the kernel the launcher chooses (rows held in a cluster's registers, up to 131,072
  // entries); blocks = rows: the looping kernel, a block per row.
  for (std::int64_t blocks : {std::int64_t{0}, rows}) {
    SCOPED_TRACE("blocks " + std::to_string(blocks));
    at::Tensor gradient = logits.clone();
    at::Tensor losses;
    {
      const OnKernelDevice on_device;
      poison_kernel_allocator(rows * 4);
      losses = softmax_cross_entropy_(gradient, targets, kIgnore, true, blocks);
    }
    EXPECT_FALSE(losses.isnan().any().item<bool>());
    // Relative to scale: a confident row's loss (lse - x_t) and its target's gradient (p - 1)
    // cancel, leaving fp32 an absolute accuracy of ~1e-7 there, in torch's kernels as in ours.
    EXPECT_LT(max_error_relative_to_scale(losses, expected_losses), tolerance) << vocab << " " << dtype;
    EXPECT_LT(max_error_relative_to_scale(gradient, expected_gradient), tolerance) << vocab << " " << dtype;

    // Loss only: the logits stay as they were.
    at::Tensor untouched = storage.clone().narrow(0, 1, rows);
    const at::Tensor before = untouched.clone();
    at::Tensor loss_only;
    {
      const OnKernelDevice on_device;
      loss_only = softmax_cross_entropy_(untouched, targets, kIgnore, false, blocks);
    }
    EXPECT_TRUE(at::equal(untouched, before));
    EXPECT_LT(max_error_relative_to_scale(loss_only, expected_losses), tolerance);
  }
}

// The two halves for a vocabulary cut over ranks against their references: each row's logsumexp
// (the kernel the launcher chooses and the looping one; the logits only read), then the gradient
// from given logsumexps, targets outside the row (another rank's) and ignored rows (+inf) included.
TEST_P(SoftmaxCrossEntropyCuda, HalvesMatchTheReferences) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  const auto [vocab, dtype] = GetParam();
  at::manual_seed(vocab + 1);
  const std::int64_t rows = 11;
  const at::Tensor logits = to_kernel_device((at::randn({rows, vocab}) * 3).to(dtype));
  // Row 1's target is another rank's; every fourth row is ignored.
  const at::Tensor targets = to_kernel_device(random_targets(rows, vocab).index_put_({1}, vocab + 3));
  const double tolerance = dtype == at::kFloat ? 1e-5 : 1e-2;
  const at::Tensor host = logits.cpu().to(at::kDouble);
  const at::Tensor expected_lse = softmax_logsumexp(host, targets.cpu(), kIgnore);
  for (std::int64_t blocks : {std::int64_t{0}, rows}) {
    SCOPED_TRACE("blocks " + std::to_string(blocks));
    const at::Tensor before = logits.clone();
    at::Tensor lse;
    {
      const OnKernelDevice on_device;
      poison_kernel_allocator(rows * 4);
      lse = softmax_logsumexp(logits, targets, kIgnore, blocks);
    }
    EXPECT_TRUE(at::equal(logits, before));
    EXPECT_LT(max_relative_error(lse.cpu().to(at::kDouble), expected_lse), 1e-6) << vocab << " " << dtype;
  }
  const at::Tensor given =
      at::where(targets.cpu() != kIgnore, expected_lse, std::numeric_limits<double>::infinity());
  at::Tensor expected_gradient = host.clone();
  softmax_gradient_(expected_gradient, targets.cpu(), given);
  at::Tensor gradient = logits.clone();
  {
    const OnKernelDevice on_device;
    softmax_gradient_(gradient, targets, to_kernel_device(given.to(at::kFloat)));
  }
  EXPECT_LT(max_error_relative_to_scale(gradient, expected_gradient), tolerance) << vocab << " " << dtype;
  EXPECT_TRUE(gradient.cpu().index({at::arange(0, rows, 4)}).eq(0).all().item<bool>()) << "ignored rows";
}

// Blocks that take several rows each, in turn (the grid for rows that outgrow L2), write the same
// bits as a block per row: each row is still one block's, swept by the same threads.
TEST(SoftmaxCrossEntropyGridCuda, FewerBlocksThanRowsGiveTheSameBits) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  at::manual_seed(11);
  const std::int64_t rows = 37;
  const std::int64_t vocab = 4099;  // rows start at every 16-byte offset
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    const at::Tensor logits = to_kernel_device((at::randn({rows, vocab}) * 3).to(dtype));
    const at::Tensor targets = to_kernel_device(random_targets(rows, vocab));
    at::Tensor per_row_gradient = logits.clone();
    at::Tensor per_row_losses;
    {
      const OnKernelDevice on_device;
      per_row_losses = softmax_cross_entropy_(per_row_gradient, targets, kIgnore, true, rows);
    }
    for (std::int64_t blocks : {1, 5, 36}) {
      at::Tensor gradient = logits.clone();
      at::Tensor losses;
      at::Tensor loss_only;
      {
        const OnKernelDevice on_device;
        poison_kernel_allocator(rows * 4);
        losses = softmax_cross_entropy_(gradient, targets, kIgnore, true, blocks);
        at::Tensor untouched = logits.clone();
        loss_only = softmax_cross_entropy_(untouched, targets, kIgnore, false, blocks);
      }
      EXPECT_TRUE(at::equal(losses, per_row_losses)) << dtype << " " << blocks;
      EXPECT_TRUE(at::equal(loss_only, per_row_losses)) << dtype << " " << blocks;
      EXPECT_TRUE(at::equal(gradient, per_row_gradient)) << dtype << " " << blocks;
    }
  }
}

TEST(SoftmaxCrossEntropyBadTargetCuda, GivesNaN) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  at::Tensor logits = at::randn({2, 7}, at::TensorOptions().device(kernel_device()));
  const at::Tensor targets = to_kernel_device(at::tensor({3, 7}, at::kLong));
  at::Tensor losses;
  {
    const OnKernelDevice on_device;
    losses = softmax_cross_entropy_(logits, targets, kIgnore, true).cpu();
  }
  EXPECT_FALSE(std::isnan(losses[0].item<float>()));
  EXPECT_TRUE(std::isnan(losses[1].item<float>()));
  EXPECT_TRUE(logits[1].isnan().all().item<bool>());
}

// A NaN logit anywhere makes its row's loss and whole gradient row NaN: in a row's scalar head
// (rows of 4099 start at every 16-byte offset), inside a pack, in a pack of NaNs and -infs, in a
// short row; so divergence is never hidden behind a finite loss.
TEST(SoftmaxCrossEntropyNanCuda, ANaNLogitReachesLossAndGradient) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    for (std::int64_t vocab : {7, 4099}) {
      for (std::int64_t column : std::vector<std::int64_t>{0, 1, 2, vocab / 2, vocab - 2}) {
        const std::int64_t rows = 8;
        at::Tensor logits = at::randn({rows, vocab});
        if (column >= 7 && column + 8 < vocab) logits.narrow(1, column - 7, 15).fill_(-inf);  // NaN among -infs
        logits.select(1, column).fill_(nan);
        logits = to_kernel_device(logits.to(dtype));
        const at::Tensor targets =
            at::full({rows}, vocab - 1, at::TensorOptions().dtype(at::kLong).device(kernel_device()));
        at::Tensor loss_only = logits.clone();
        {
          const OnKernelDevice on_device;  // no reference here: both calls run the kernel
          EXPECT_TRUE(softmax_cross_entropy_(loss_only, targets, kIgnore, false).isnan().all().item<bool>())
              << dtype << " " << vocab << " " << column;
          EXPECT_TRUE(softmax_cross_entropy_(logits, targets, kIgnore, true).isnan().all().item<bool>());
        }
        EXPECT_TRUE(logits.isnan().all().item<bool>()) << dtype << " " << vocab << " " << column;
      }
    }
  }
}

// 16,001: some thread's last batch of packs ends exactly at either end of the row (fp32 and bf16);
// 50,257 takes a cluster of 4 blocks, 128,256 (Llama 3's) one of 8.
INSTANTIATE_TEST_SUITE_P(Vocabularies, SoftmaxCrossEntropyCuda,
                         testing::Combine(testing::Values<std::int64_t>(1, 7, 8, 4099, 16001, 50257, 128256),
                                          testing::Values(at::kFloat, at::kBFloat16)));

}  // namespace
}  // namespace albion::kernels
