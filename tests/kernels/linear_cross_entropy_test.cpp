// File: tests/kernels/linear_cross_entropy_test.cpp
// The chunked projection + cross-entropy against torch's eager composition (linear, then
// cross_entropy with ignored rows): the same summed loss and the same gradients for the hidden
// states and the weight, for chunk sizes that do and do not divide the rows; and in fp32.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include "kernels/cross_entropy/linear_cross_entropy.h"
#include "runtime/base/error.h"

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

TEST(LinearCrossEntropy, RefusesBadShapes) {
  EXPECT_THROW(linear_cross_entropy_sum(at::zeros({4, 3}), at::zeros({5, 2}), at::zeros({4}, at::kLong)), UsageError);
  EXPECT_THROW(linear_cross_entropy_sum(at::zeros({4, 3}), at::zeros({5, 3}), at::zeros({3}, at::kLong)), UsageError);
  EXPECT_THROW(linear_cross_entropy_sum(at::zeros({4, 3}), at::zeros({5, 3}), at::zeros({4}, at::kLong), -100, 0),
               UsageError);
}

}  // namespace
}  // namespace albion::kernels
