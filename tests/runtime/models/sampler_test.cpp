// File: tests/runtime/models/sampler_test.cpp
// Greedy decoding equals argmax decoding written out by hand (context cropped to the window);
// top-k = 1 equals greedy; a seed fixes a sample; top-k draws stay within the k best tokens; a
// stop request ends a sample early.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/types.h>

#include "runtime/base/error.h"
#include "runtime/models/sampler.h"
#include "tests/runtime/models/model_test_support.h"

namespace albion::models {
namespace {

ModelConfig sampler_config() {
  ModelConfig c = testing::small_gpt2();
  c.vocab_size = 50;
  c.context_length = 8;  // shorter than prompt + new tokens: exercises the crop
  c.hidden_size = 32;
  c.heads = 2;
  c.kv_heads = 2;
  c.intermediate_size = 64;
  return c;
}

// Logits of the next token after `tokens`, the window cropped by hand.
at::Tensor next_logits(CausalLm& model, const std::vector<std::int64_t>& tokens) {
  torch::NoGradGuard no_grad;
  const std::int64_t window = model.config().context_length;
  const std::int64_t n = static_cast<std::int64_t>(tokens.size());
  const at::Tensor ids = at::tensor(tokens, at::kLong)
                             .narrow(0, std::max<std::int64_t>(0, n - window), std::min(n, window));
  return model.forward(ids.unsqueeze(0))[0][-1];
}

class Sampler : public ::testing::Test {
 protected:
  void SetUp() override { model_ = testing::randomised_fp64_model(sampler_config(), 11, 0.5); }
  std::shared_ptr<CausalLm> model_;
  const std::vector<std::int64_t> prompt_{3, 17, 42};
};

TEST_F(Sampler, GreedyEqualsArgmaxByHand) {
  SamplingOptions options;
  options.decoding = Decoding::kGreedy;
  options.max_new_tokens = 12;
  const std::vector<std::int64_t> generated = sample(*model_, prompt_, options);
  ASSERT_EQ(generated.size(), 12u);

  std::vector<std::int64_t> tokens = prompt_;
  for (std::int64_t step = 0; step < 12; ++step) {
    tokens.push_back(next_logits(*model_, tokens).argmax().item<std::int64_t>());
  }
  EXPECT_EQ(generated, std::vector<std::int64_t>(tokens.begin() + 3, tokens.end()));
  EXPECT_EQ(sample(*model_, prompt_, options), generated);
}

TEST_F(Sampler, TopOneEqualsGreedyAndSeedFixesSample) {
  SamplingOptions greedy;
  greedy.decoding = Decoding::kGreedy;
  greedy.max_new_tokens = 10;
  SamplingOptions top1 = greedy;
  top1.decoding = Decoding::kSample;
  top1.top_k = 1;
  top1.temperature = 2.0;
  EXPECT_EQ(sample(*model_, prompt_, top1), sample(*model_, prompt_, greedy));

  SamplingOptions hot;
  hot.max_new_tokens = 20;
  hot.temperature = 3.0;
  hot.seed = 7;
  const std::vector<std::int64_t> a = sample(*model_, prompt_, hot);
  EXPECT_EQ(sample(*model_, prompt_, hot), a);
  hot.seed = 8;
  EXPECT_NE(sample(*model_, prompt_, hot), a);

  at::Generator g1 = at::make_generator<at::CPUGeneratorImpl>(7);
  hot.seed = 0;  // ignored when a generator is given
  EXPECT_EQ(sample(*model_, prompt_, hot, g1), a);
}

TEST_F(Sampler, TopKDrawsStayAmongTheKBest) {
  SamplingOptions options;
  options.max_new_tokens = 15;
  options.top_k = 3;
  options.temperature = 5.0;
  options.seed = 3;
  const std::vector<std::int64_t> generated = sample(*model_, prompt_, options);
  std::vector<std::int64_t> tokens = prompt_;
  for (std::int64_t id : generated) {
    const at::Tensor best = std::get<1>(next_logits(*model_, tokens).topk(3));
    EXPECT_TRUE((best == id).any().item<bool>()) << id;
    tokens.push_back(id);
  }
}

TEST_F(Sampler, StopRequestEndsTheSampleEarly) {
  SamplingOptions options;
  options.decoding = Decoding::kGreedy;
  options.max_new_tokens = 10;
  const std::vector<std::int64_t> whole = sample(*model_, prompt_, options);
  int asked = 0;
  options.stop_requested = [&asked] { return ++asked > 4; };
  const std::vector<std::int64_t> cut = sample(*model_, prompt_, options);
  EXPECT_EQ(cut, std::vector<std::int64_t>(whole.begin(), whole.begin() + 4));
}

TEST_F(Sampler, RejectsBadRequestsAndRestoresMode) {
  SamplingOptions options;
  EXPECT_THROW(sample(*model_, {}, options), UsageError);
  EXPECT_THROW(sample(*model_, {1, 50}, options), UsageError);
  options.temperature = 0.0;
  EXPECT_THROW(sample(*model_, prompt_, options), UsageError);

  model_->train();
  options.temperature = 1.0;
  options.max_new_tokens = 2;
  sample(*model_, prompt_, options);
  EXPECT_TRUE(model_->is_training());
  SamplingOptions none;
  none.max_new_tokens = 0;
  EXPECT_TRUE(sample(*model_, prompt_, none).empty());
}

}  // namespace
}  // namespace albion::models
