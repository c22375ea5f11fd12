// File: tests/runtime/models/kv_cache_test.cpp
// A KV-cached forward computes what the whole-sequence forward does: for GPT-2 and for Llama (GQA,
// RoPE scaling), a prompt then one token at a time, and a chunk of several tokens after a prefix
// (the explicit-mask path), each within 1e-10 of the uncached logits in fp64; the next token's
// logits alone are the last position's of the whole forward.
#include <gtest/gtest.h>

#include <torch/types.h>

#include "runtime/base/error.h"
#include "runtime/models/kv_cache.h"
#include "tests/runtime/models/model_test_support.h"

namespace albion::models {
namespace {

using testing::relative_error;

class KvCacheForward : public ::testing::TestWithParam<const char*> {
 protected:
  std::shared_ptr<CausalLm> model() const {
    const std::string name = GetParam();
    return testing::randomised_fp64_model(name == "gpt2" ? testing::small_gpt2() : testing::small_llama(false), 5);
  }
};

TEST_P(KvCacheForward, MatchesTheWholeSequence) {
  const std::shared_ptr<CausalLm> lm = model();
  lm->eval();
  torch::NoGradGuard no_grad;
  const std::int64_t length = lm->config().context_length;  // fills the cache exactly
  const at::Tensor ids = at::randint(lm->config().vocab_size, {1, length}, at::kLong);
  const at::Tensor whole = lm->forward(ids);

  // A prompt of 5, then one token at a time.
  KvCache cache(length);
  const at::Tensor prompt = lm->forward(ids.narrow(1, 0, 5), cache);
  EXPECT_LT(relative_error(prompt, whole.narrow(1, 0, 5)), 1e-10);
  for (std::int64_t t = 5; t < length; ++t) {
    const at::Tensor step = lm->forward(ids.narrow(1, t, 1), cache);
    ASSERT_LT(relative_error(step, whole.narrow(1, t, 1)), 1e-10) << "position " << t;
  }
  EXPECT_EQ(cache.length(), length);

  // A prefix of 7, then a chunk of 6: queries at positions 7..12 over keys 0..12.
  KvCache chunked(length);
  lm->forward(ids.narrow(1, 0, 7), chunked);
  const at::Tensor chunk = lm->forward(ids.narrow(1, 7, 6), chunked);
  EXPECT_LT(relative_error(chunk, whole.narrow(1, 7, 6)), 1e-10);
}

TEST_P(KvCacheForward, RefusesToOverflowOrToRecordAGraph) {
  const std::shared_ptr<CausalLm> lm = model();
  const std::int64_t length = lm->config().context_length;
  const at::Tensor ids = at::zeros({1, length}, at::kLong);
  KvCache cache(length);
  EXPECT_THROW(lm->forward(ids, cache), Error);  // grad mode is on
  torch::NoGradGuard no_grad;
  lm->forward(ids.narrow(1, 0, length - 1), cache);
  EXPECT_THROW(lm->forward(ids.narrow(1, 0, 2), cache), UsageError);  // one position too many
  EXPECT_NO_THROW(lm->forward(ids.narrow(1, 0, 1), cache));
}

// next_token_logits, which the sampler draws from: each row's last position only, with a cache (a
// prompt, then a token at a time) and without (a sliding window's recomputation), for 2 rows.
TEST_P(KvCacheForward, NextTokenLogitsAreTheLastPositionsOfTheWholeForward) {
  const std::shared_ptr<CausalLm> lm = model();
  lm->eval();
  const std::int64_t length = lm->config().context_length;
  const at::Tensor ids = at::randint(lm->config().vocab_size, {2, length}, at::kLong);
  EXPECT_THROW(lm->next_token_logits(ids), Error);  // grad mode is on
  torch::NoGradGuard no_grad;
  const at::Tensor whole = lm->forward(ids);
  const at::Tensor last = lm->next_token_logits(ids);
  ASSERT_EQ(last.sizes(), (std::vector<std::int64_t>{2, lm->config().vocab_size}));
  EXPECT_LT(relative_error(last, whole.select(1, -1)), 1e-12);

  KvCache cache(length);
  EXPECT_LT(relative_error(lm->next_token_logits(ids.narrow(1, 0, 5), &cache), whole.select(1, 4)), 1e-10);
  EXPECT_EQ(cache.length(), 5);
  for (std::int64_t t = 5; t < length; ++t) {
    const at::Tensor next = lm->next_token_logits(ids.narrow(1, t, 1), &cache);
    ASSERT_LT(relative_error(next, whole.select(1, t)), 1e-10) << "position " << t;
  }
  EXPECT_EQ(cache.length(), length);
}

INSTANTIATE_TEST_SUITE_P(Architectures, KvCacheForward, ::testing::Values("gpt2", "llama"));

}  // namespace
}  // namespace albion::models
