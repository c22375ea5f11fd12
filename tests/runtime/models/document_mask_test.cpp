// File: tests/runtime/models/document_mask_test.cpp
// Attention within documents (Note [Attention within documents], runtime/models/causal_lm.h): the
// mask lets a token see its own document's earlier tokens and nothing else, and so does its
// additive form; a sequence of packed documents, each numbered from 0, gives every document the
// logits it has alone, for GPT-2 and Llama (GQA, RoPE scaling, tied and untied), in fp64, rows
// laid out differently in one batch; training through it, the loss and gradients are the same with
// activations recomputed.
#include <gtest/gtest.h>

#include <torch/types.h>

#include <vector>

#include "runtime/base/error.h"
#include "runtime/models/kv_cache.h"
#include "tests/runtime/models/model_test_support.h"

namespace albion::models {
namespace {

using testing::relative_error;

// Positions [1, T] for documents of these lengths laid end to end.
at::Tensor positions_of(const std::vector<std::int64_t>& lengths) {
  std::vector<std::int64_t> positions;
  for (std::int64_t length : lengths) {
    for (std::int64_t i = 0; i < length; ++i) positions.push_back(i);
  }
  return at::tensor(positions, at::kLong).unsqueeze(0);
}

TEST(DocumentMask, LetsATokenSeeItsOwnDocumentsEarlierTokensOnly) {
  // Documents [0, 2), [2, 5), [5, 6) in one row.
  const at::Tensor mask = document_causal_mask(positions_of({2, 3, 1}));
  ASSERT_EQ(mask.sizes(), (std::vector<std::int64_t>{1, 1, 6, 6}));
  const std::vector<std::int64_t> document = {0, 0, 1, 1, 1, 2};
  for (std::int64_t i = 0; i < 6; ++i) {
    for (std::int64_t j = 0; j < 6; ++j) {
      EXPECT_EQ(mask[0][0][i][j].item<bool>(), j <= i && document[j] == document[i]) << i << ", " << j;
    }
  }
  // As SDPA adds it to the scores: 0 where allowed, -inf elsewhere, in the dtype asked for.
  const at::Tensor bias = document_attention_bias(positions_of({2, 3, 1}), at::kBFloat16);
  EXPECT_EQ(bias.scalar_type(), at::kBFloat16);
  EXPECT_TRUE((bias == 0).equal(mask));
  EXPECT_TRUE(bias.masked_select(mask.logical_not()).isneginf().all().item<bool>());
  // Numbered from 0 to the end: the causal mask.
  EXPECT_TRUE(document_causal_mask(positions_of({6})).equal(at::ones({1, 1, 6, 6}, at::kBool).tril()));
}

class PackedDocuments : public ::testing::TestWithParam<const char*> {
 protected:
  ModelConfig config() const {
    const std::string name = GetParam();
    if (name == "gpt2") return testing::small_gpt2();
    return testing::small_llama(name == "llama-tied");
  }
};

TEST_P(PackedDocuments, GiveEachDocumentItsLogitsAlone) {
  const std::shared_ptr<CausalLm> lm = testing::randomised_fp64_model(config(), 8);
  lm->eval();
  torch::NoGradGuard no_grad;
  const std::int64_t length = lm->config().context_length;
  // Two rows, documents cut at different places (the second row's first runs to its end).
  const std::vector<std::vector<std::int64_t>> layouts = {{7, 1, 10, length - 18}, {length - 5, 5}};
  const at::Tensor ids = at::randint(lm->config().vocab_size, {2, length}, at::kLong);
  const at::Tensor positions = at::cat({positions_of(layouts[0]), positions_of(layouts[1])});
  const at::Tensor packed = lm->forward(ids, positions);
  for (std::int64_t row = 0; row < 2; ++row) {
    std::int64_t start = 0;
    for (std::int64_t document : layouts[static_cast<std::size_t>(row)]) {
      const at::Tensor alone = lm->forward(ids.narrow(0, row, 1).narrow(1, start, document));
      EXPECT_LT(relative_error(packed.narrow(0, row, 1).narrow(1, start, document), alone), 1e-10)
          << GetParam() << " row " << row << " document at " << start;
      start += document;
    }
  }
  // Without positions the later documents see the earlier ones: the check above can fail.
  const at::Tensor across = lm->forward(ids);
  EXPECT_GT(relative_error(across.narrow(1, 7, 1), packed.narrow(1, 7, 1)), 1e-3);
  // One document numbered from 0 is the plain causal forward.
  const at::Tensor whole = at::arange(length, at::kLong).expand({2, length});
  EXPECT_LT(relative_error(lm->forward(ids, whole), across), 1e-12);
}

TEST_P(PackedDocuments, TrainTheSameWithActivationsRecomputed) {
  auto loss_and_gradients = [&](std::int64_t recompute_every) {
    ModelConfig c = config();
    c.recompute_every = recompute_every;
    const std::shared_ptr<CausalLm> lm = testing::randomised_fp64_model(c, 9);
    at::manual_seed(3);
    const at::Tensor ids = at::randint(c.vocab_size, {2, c.context_length}, at::kLong);
    const at::Tensor positions = at::cat({positions_of({5, c.context_length - 5}), positions_of({c.context_length})});
    const at::Tensor loss = lm->loss(ids, ids.roll(-1, 1), {}, positions);
    loss.backward();
    std::vector<at::Tensor> out = {loss.detach()};
    for (const auto& [name, p] : lm->named_parameters()) out.push_back(p.grad());
    return out;
  };
  const std::vector<at::Tensor> kept = loss_and_gradients(0), recomputed = loss_and_gradients(1);
  ASSERT_EQ(kept.size(), recomputed.size());
  for (std::size_t i = 0; i < kept.size(); ++i) {
    EXPECT_LT(relative_error(recomputed[i], kept[i]), 1e-12) << GetParam() << " tensor " << i;
  }
}

TEST(DocumentMask, PositionsMustMatchTheIdsAndTakeNoCache) {
  const std::shared_ptr<CausalLm> lm = testing::randomised_fp64_model(testing::small_llama(false), 1);
  torch::NoGradGuard no_grad;
  const at::Tensor ids = at::randint(97, {1, 6}, at::kLong);
  EXPECT_THROW(lm->forward(ids, positions_of({3, 2})), Error);
  KvCache cache(24);
  EXPECT_THROW(lm->hidden_states(ids, &cache, positions_of({3, 3})), Error);
}

INSTANTIATE_TEST_SUITE_P(Architectures, PackedDocuments, ::testing::Values("gpt2", "llama", "llama-tied"));

}  // namespace
}  // namespace albion::models
