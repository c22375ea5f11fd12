// File: tests/runtime/models/sampler_test.cpp
// Greedy decoding equals argmax decoding written out by hand (context cropped to the window);
// top-k = 1 equals greedy; a seed fixes a sample; top-k draws stay within the k best tokens; top-p
// draws come from the renormalised nucleus, after top-k; a repetition penalty lowers what was seen,
// as transformers does; a stop request ends a sample early; a conversation's cache draws as none.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/types.h>

#include <cmath>
#include <map>
#include <set>

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

TEST_F(Sampler, TopOneOrATinyTopPEqualsGreedyAndSeedFixesSample) {
  SamplingOptions greedy;
  greedy.decoding = Decoding::kGreedy;
  greedy.max_new_tokens = 10;
  SamplingOptions top1 = greedy;
  top1.decoding = Decoding::kSample;
  top1.top_k = 1;
  top1.temperature = 2.0;
  EXPECT_EQ(sample(*model_, prompt_, top1), sample(*model_, prompt_, greedy));
  SamplingOptions tiny_top_p = top1;
  tiny_top_p.top_k = 0;
  tiny_top_p.top_p = 1e-9;  // the most likely token alone
  EXPECT_EQ(sample(*model_, prompt_, tiny_top_p), sample(*model_, prompt_, greedy));

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

// The nucleus by hand: the most likely ids (after temperature) whose probabilities, before each,
// sum to less than top_p, with those probabilities renormalised.
std::map<std::int64_t, double> nucleus(const at::Tensor& logits, double temperature, double top_p) {
  const auto [probabilities, ids] = at::softmax(logits / temperature, 0).sort(0, /*descending=*/true);
  std::map<std::int64_t, double> kept;
  double before = 0;
  for (std::int64_t i = 0; i < probabilities.size(0) && before < top_p; ++i) {
    kept[ids[i].item<std::int64_t>()] = probabilities[i].item<double>();
    before += probabilities[i].item<double>();
  }
  for (auto& [id, probability] : kept) probability /= before;
  return kept;
}

// Top-k draws stay among the k best; with top-p too, within the nucleus of those k.
TEST_F(Sampler, TopKDrawsStayAmongTheKBestAndTopPInTheirNucleus) {
  for (const double top_p : {1.0, 0.6}) {
    SamplingOptions options;
    options.max_new_tokens = 15;
    options.top_k = 3;
    options.top_p = top_p;
    options.temperature = 5.0;
    options.seed = 3;
    std::vector<std::int64_t> tokens = prompt_;
    for (std::int64_t id : sample(*model_, prompt_, options)) {
      const auto [best, best_ids] = next_logits(*model_, tokens).topk(3);
      std::set<std::int64_t> allowed;  // as vocabulary ids
      for (const auto& [position, probability] : nucleus(best, 5.0, top_p)) {
        allowed.insert(best_ids[position].item<std::int64_t>());
      }
      EXPECT_TRUE(allowed.contains(id)) << id << " top_p " << top_p;
      tokens.push_back(id);
    }
  }
}

TEST_F(Sampler, TopPDrawsFromTheRenormalisedNucleus) {
  SamplingOptions options;
  options.max_new_tokens = 1;
  options.temperature = 4.0;
  options.top_p = 0.5;
  const std::map<std::int64_t, double> expected = nucleus(next_logits(*model_, prompt_), 4.0, 0.5);
  ASSERT_GE(expected.size(), 4u) << "the test wants a nucleus of several ids";
  ASSERT_LT(expected.size(), 40u) << "and a cut";
  constexpr int kDraws = 3000;
  std::map<std::int64_t, int> drawn;
  for (int seed = 0; seed < kDraws; ++seed) {
    options.seed = static_cast<std::uint64_t>(seed);
    const std::int64_t id = sample(*model_, prompt_, options).at(0);
    ASSERT_TRUE(expected.contains(id)) << id << " is outside the nucleus";
    ++drawn[id];
  }
  for (const auto& [id, probability] : expected) {
    const double sigma = std::sqrt(probability * (1 - probability) / kDraws);
    EXPECT_NEAR(static_cast<double>(drawn[id]) / kDraws, probability, 5 * sigma) << id;
  }
}

TEST_F(Sampler, RepetitionPenaltyLowersEveryIdAlreadySeen) {
  for (const Decoding decoding : {Decoding::kGreedy, Decoding::kSample}) {
    SamplingOptions options;
    options.decoding = decoding;
    options.max_new_tokens = 12;
    options.temperature = 1.5;
    options.repetition_penalty = 1.8;
    options.seed = 5;
    const std::vector<std::int64_t> generated = sample(*model_, prompt_, options);

    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(5);
    std::vector<std::int64_t> tokens = prompt_;
    for (std::size_t step = 0; step < generated.size(); ++step) {
      at::Tensor logits = next_logits(*model_, tokens).to(at::kFloat);
      for (std::int64_t id : std::set<std::int64_t>(tokens.begin(), tokens.end())) {
        const float value = logits[id].item<float>();
        logits[id] = value > 0 ? value / 1.8f : value * 1.8f;
      }
      tokens.push_back(decoding == Decoding::kGreedy
                           ? logits.argmax().item<std::int64_t>()
                           : at::multinomial(at::softmax(logits / 1.5, 0), 1, false, generator).item<std::int64_t>());
    }
    EXPECT_EQ(generated, std::vector<std::int64_t>(tokens.begin() + 3, tokens.end()))
        << (decoding == Decoding::kGreedy ? "greedy" : "sampled");
    options.repetition_penalty = 1.0;
    EXPECT_NE(sample(*model_, prompt_, options), generated) << "the test wants a penalty that changes the text";
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

// A conversation's KV cache kept between samples: each turn reads only what follows the prefix
// it shares with the cache, and draws what a sample without the cache draws, seed for seed, also
// when the history was edited, when a turn repeats the last prompt, and past the window (which
// slides, recomputed, and leaves the cache as it was).
TEST(ConversationCacheTest, EachTurnReadsOnlyWhatTheCacheLacksAndDrawsAsWithoutIt) {
  ModelConfig config = sampler_config();
  config.context_length = 40;
  const std::shared_ptr<CausalLm> model = testing::randomised_fp64_model(config, 12, 0.5);
  for (const Decoding decoding : {Decoding::kGreedy, Decoding::kSample}) {
    SamplingOptions options;
    options.decoding = decoding;
    options.max_new_tokens = 6;
    at::Generator cached_draws = at::make_generator<at::CPUGeneratorImpl>(5);
    at::Generator fresh_draws = at::make_generator<at::CPUGeneratorImpl>(5);
    ConversationCache conversation(config.context_length);
    // Draws after `prompt` with the cache and without it; returns what was drawn.
    auto turn = [&](const std::vector<std::int64_t>& prompt, std::int64_t expected_reuse) {
      EXPECT_EQ(reused_positions(conversation, prompt), expected_reuse);
      const std::vector<std::int64_t> drawn = sample(*model, prompt, options, cached_draws, &conversation);
      EXPECT_EQ(drawn, sample(*model, prompt, options, fresh_draws));
      return drawn;
    };
    std::vector<std::int64_t> prompt = {3, 17, 42};
    const std::vector<std::int64_t> first = turn(prompt, 0);
    // The cache holds the prompt and every drawn token but the last, which was never read.
    std::vector<std::int64_t> held = prompt;
    held.insert(held.end(), first.begin(), first.end() - 1);
    EXPECT_EQ(conversation.tokens, held);
    EXPECT_EQ(conversation.cache.length(), 8);

    prompt.insert(prompt.end(), first.begin(), first.end());
    prompt.insert(prompt.end(), {5, 9, 11});
    turn(prompt, 8);
    turn(prompt, static_cast<std::int64_t>(prompt.size()) - 1);  // the same prompt again
    std::vector<std::int64_t> edited = prompt;
    edited[2] = 7;
    turn(edited, 2);
    std::vector<std::int64_t> past_window(45, 4);  // 45 + 6 > 40: the window slides
    past_window.front() = 3;
    turn(past_window, 1);
    EXPECT_EQ(conversation.tokens, std::vector<std::int64_t>{3});  // the recomputed windows were not cached
    turn(edited, 1);
  }
}

TEST_F(Sampler, RejectsBadRequestsAndRestoresMode) {
  SamplingOptions options;
  EXPECT_THROW(sample(*model_, {}, options), UsageError);
  EXPECT_THROW(sample(*model_, {1, 50}, options), UsageError);
  options.temperature = 0.0;
  EXPECT_THROW(sample(*model_, prompt_, options), UsageError);
  options.temperature = 1.0;
  for (double top_p : {0.0, -0.5, 1.5}) {
    options.top_p = top_p;
    EXPECT_THROW(sample(*model_, prompt_, options), UsageError) << top_p;
  }
  options.top_p = 1.0;
  options.repetition_penalty = 0.0;
  EXPECT_THROW(sample(*model_, prompt_, options), UsageError);
  options.repetition_penalty = 1.0;

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
