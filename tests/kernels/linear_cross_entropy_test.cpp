// File: tests/kernels/linear_cross_entropy_test.cpp
// The chunked projection + cross-entropy against torch's eager composition (linear, then
// cross_entropy with ignored rows): the same summed loss and the same gradients for the hidden
// states and the weight, for chunk sizes that do and do not divide the rows; against finite
// differences in fp64; in fp32 and bf16; under bf16 autocast; a frozen weight; no gradients at
// all; and (suite LinearCrossEntropyCuda, label gpu; also on the CPU emulator in
// kernels_on_emulator_test) on a GPU in fp32 and under bf16 autocast, as the runtime runs it.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include "kernels/common/autocast_scope.h"
#include "kernels/cross_entropy/linear_cross_entropy.h"
#include "runtime/base/error.h"
#include "tests/kernels/kernel_device.h"
#include "tests/kernels/relative_error.h"

namespace albion::kernels {
namespace {

TEST(LinearCrossEntropy, MatchesEagerLossAndGradients) {
  for (at::ScalarType dtype : {at::kDouble, at::kFloat}) {
    const double tolerance = dtype == at::kDouble ? 1e-10 : 1e-4;
    for (std::int64_t chunk : {1, 7, 64, 1000}) {
      at::manual_seed(chunk);
      const std::int64_t rows = 37, hidden_size = 16, vocab = 301;
      at::Tensor hidden = at::randn({rows, hidden_size}, dtype).requires_grad_(true);
      at::Tensor weight = (at::randn({vocab, hidden_size}, dtype) * 0.5).requires_grad_(true);
      at::Tensor targets = at::randint(vocab, {rows}, at::kLong);
      targets.index_put_({at::arange(0, rows, 5)}, -100);  // ignored rows

      at::Tensor expected = at::cross_entropy_loss(at::linear(hidden, weight), targets, {}, at::Reduction::Sum, -100);
      auto expected_grads = torch::autograd::grad({expected}, {hidden, weight});
      at::Tensor actual = linear_cross_entropy_sum(hidden, weight, targets, -100, chunk);
      auto actual_grads = torch::autograd::grad({actual}, {hidden, weight});
      EXPECT_NEAR(actual.item<double>(), expected.item<double>(), tolerance * std::abs(expected.item<double>()))
          << dtype << " chunk " << chunk;
      EXPECT_LT((actual_grads[0] - expected_grads[0]).abs().max().item<double>(), tolerance) << dtype << " " << chunk;
      EXPECT_LT((actual_grads[1] - expected_grads[1]).abs().max().item<double>(), tolerance) << dtype << " " << chunk;
    }
  }
}

TEST(LinearCrossEntropy, GradientsMatchFiniteDifferences) {
  at::manual_seed(17);
  const at::Tensor hidden = at::randn({7, 5}, at::kDouble);
  const at::Tensor weight = at::randn({11, 5}, at::kDouble);
  const at::Tensor targets = at::tensor(std::vector<std::int64_t>{3, -100, 0, 10, 7, 7, 1});
  const auto loss = [&](const at::Tensor& h, const at::Tensor& w) {
    at::NoGradGuard no_grad;
    return linear_cross_entropy_sum(h, w, targets, -100, 3).item<double>();
  };
  const at::Tensor h = hidden.clone().requires_grad_(true);
  const at::Tensor w = weight.clone().requires_grad_(true);
  const auto grads = torch::autograd::grad({linear_cross_entropy_sum(h, w, targets, -100, 3)}, {h, w});
  const double step = 1e-6;
  for (int which = 0; which < 2; ++which) {
    const at::Tensor& base = which == 0 ? hidden : weight;
    for (std::int64_t i = 0; i < base.numel(); i += 3) {  // every third element
      at::Tensor plus = base.clone(), minus = base.clone();
      plus.view(-1)[i] += step;
      minus.view(-1)[i] -= step;
      const double numeric = which == 0 ? (loss(plus, weight) - loss(minus, weight)) / (2 * step)
                                        : (loss(hidden, plus) - loss(hidden, minus)) / (2 * step);
      EXPECT_NEAR(grads[which].view(-1)[i].item<double>(), numeric, 1e-7) << which << " " << i;
    }
  }
}

TEST(LinearCrossEntropy, FrozenWeightAndNoGradients) {
  at::manual_seed(5);
  const at::Tensor hidden = at::randn({29, 8}, at::kDouble).requires_grad_(true);
  const at::Tensor weight = at::randn({53, 8}, at::kDouble);  // frozen: no gradient wanted
  const at::Tensor targets = at::randint(53, {29}, at::kLong);
  const at::Tensor expected = at::cross_entropy_loss(at::linear(hidden, weight), targets, {}, at::Reduction::Sum);
  const at::Tensor expected_grad = torch::autograd::grad({expected}, {hidden})[0];
  const at::Tensor actual = linear_cross_entropy_sum(hidden, weight, targets, -100, 8);
  EXPECT_LT((torch::autograd::grad({actual}, {hidden})[0] - expected_grad).abs().max().item<double>(), 1e-12);
  {
    at::NoGradGuard no_grad;
    const at::Tensor loss_only = linear_cross_entropy_sum(hidden, weight, targets, -100, 8);
    EXPECT_FALSE(loss_only.requires_grad());
    EXPECT_NEAR(loss_only.item<double>(), expected.item<double>(), 1e-10);
  }
}

TEST(LinearCrossEntropy, Bf16InputsMatchEagerOnTheSameRoundedValues) {
  at::manual_seed(11);
  at::Tensor hidden = at::randn({40, 16}).to(at::kBFloat16).requires_grad_(true);
  at::Tensor weight = (at::randn({97, 16}) * 0.5).to(at::kBFloat16).requires_grad_(true);
  const at::Tensor targets = at::randint(97, {40}, at::kLong);
  const at::Tensor expected =
      at::cross_entropy_loss(at::linear(hidden, weight).to(at::kFloat), targets, {}, at::Reduction::Sum);
  const auto expected_grads = torch::autograd::grad({expected}, {hidden, weight});
  const at::Tensor actual = linear_cross_entropy_sum(hidden, weight, targets, -100, 16);
  const auto actual_grads = torch::autograd::grad({actual}, {hidden, weight});
  EXPECT_EQ(actual_grads[0].scalar_type(), at::kBFloat16);
  EXPECT_EQ(actual_grads[1].scalar_type(), at::kBFloat16);
  EXPECT_NEAR(actual.item<double>(), expected.item<double>(), 1e-2 * std::abs(expected.item<double>()));
  for (int i = 0; i < 2; ++i) {
    const double scale = expected_grads[i].abs().max().item<double>();
    EXPECT_LT((actual_grads[i] - expected_grads[i]).abs().max().item<double>(), 2e-2 * scale) << i;
  }
}

TEST(LinearCrossEntropy, RefusesTargetsOutsideTheVocabulary) {
  EXPECT_THROW(linear_cross_entropy_sum(at::zeros({2, 3}), at::zeros({5, 3}), at::tensor({0, 5}, at::kLong)),
               UsageError);
  EXPECT_THROW(linear_cross_entropy_sum(at::zeros({2, 3}), at::zeros({5, 3}), at::tensor({-2, 1}, at::kLong)),
               UsageError);
}

TEST(LinearCrossEntropy, RefusesASecondBackwardAndDoubleBackward) {
  at::Tensor hidden = at::randn({6, 4}, at::kDouble).requires_grad_(true);
  at::Tensor weight = at::randn({9, 4}, at::kDouble).requires_grad_(true);
  const at::Tensor targets = at::randint(9, {6}, at::kLong);
  const at::Tensor twice = linear_cross_entropy_sum(hidden, weight, targets);
  torch::autograd::grad({twice}, {hidden}, {}, /*retain_graph=*/true);
  EXPECT_THROW(torch::autograd::grad({twice}, {hidden}), UsageError);
  const at::Tensor second_order = linear_cross_entropy_sum(hidden, weight, targets);
  EXPECT_THROW(torch::autograd::grad({second_order}, {hidden}, {}, /*retain_graph=*/true, /*create_graph=*/true),
               UsageError);
}

// Against torch's eager composition on the same device, with or without bf16 autocast over fp32
// parameters (the runtime's mixed precision): odd vocabulary, chunks that do not divide the rows.
void expect_matches_eager(at::DeviceType device, bool autocast) {
  at::manual_seed(13);
  const auto options = at::TensorOptions().device(device);
  at::Tensor hidden = at::randn({300, 64}, options).requires_grad_(true);
  at::Tensor weight = (at::randn({5003, 64}, options) * 0.2).requires_grad_(true);
  at::Tensor targets = at::randint(5003, {300}, options.dtype(at::kLong));
  targets.index_put_({at::arange(0, 300, 7, options.dtype(at::kLong))}, -100);
  at::Tensor expected, actual;
  std::vector<at::Tensor> expected_grads, actual_grads;
  {
    const Bf16AutocastScope scope(device, autocast);
    expected = at::cross_entropy_loss(at::linear(hidden, weight), targets, {}, at::Reduction::Sum, -100);
    expected_grads = torch::autograd::grad({expected}, {hidden, weight});
    actual = linear_cross_entropy_sum(hidden, weight, targets, -100, 128);
    actual_grads = torch::autograd::grad({actual}, {hidden, weight});
  }
  const double tolerance = autocast ? 1e-2 : 1e-5;
  EXPECT_NEAR(actual.item<double>(), expected.item<double>(), tolerance * std::abs(expected.item<double>()))
      << "autocast " << autocast;
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(actual_grads[i].scalar_type(), at::kFloat);
    const double scale = expected_grads[i].abs().max().item<double>();
    EXPECT_LT((actual_grads[i] - expected_grads[i]).abs().max().item<double>(), tolerance * scale)
        << "autocast " << autocast << " gradient " << i;
  }
}

// On the CPU, autocast's bf16 products reach the fp32 gradients through a bf16 temporary.
TEST(LinearCrossEntropy, MatchesEagerUnderCpuAutocast) { expect_matches_eager(at::kCPU, true); }

// On the GPU they go straight into fp32 (cuBLAS with an fp32 output); in the emulated build the
// kernel device is the CPU, so its products go as above and the cross-entropy kernel is emulated.
TEST(LinearCrossEntropyCuda, MatchesEagerInFp32AndUnderAutocast) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  // One scope over both comparisons: the eager expected values are plain torch ops (at::linear,
  // at::cross_entropy_loss), which it leaves alone, so only linear_cross_entropy_sum (forward and
  // backward) runs the kernels.
  const OnKernelDevice on_device;
  expect_matches_eager(kernel_device().type(), false);
  expect_matches_eager(kernel_device().type(), true);
}

TEST(LinearCrossEntropy, RefusesBadShapes) {
  EXPECT_THROW(linear_cross_entropy_sum(at::zeros({4, 3}), at::zeros({5, 2}), at::zeros({4}, at::kLong)), UsageError);
  EXPECT_THROW(linear_cross_entropy_sum(at::zeros({4, 3}), at::zeros({5, 3}), at::zeros({3}, at::kLong)), UsageError);
  EXPECT_THROW(linear_cross_entropy_sum(at::zeros({4, 3}), at::zeros({5, 3}), at::zeros({4}, at::kLong), -100, -1),
               UsageError);
  // A weight on another device (meta stands in for a GPU here): a usage error, not torch's.
  EXPECT_THROW(linear_cross_entropy_sum(at::zeros({4, 3}), at::zeros({5, 3}, at::Device(at::kMeta)),
                                        at::zeros({4}, at::kLong)),
               UsageError);
}

}  // namespace
}  // namespace albion::kernels
