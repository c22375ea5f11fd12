// File: tests/runtime/train/choice_score_test.cpp
// Multiple-choice scoring (runtime/train/choice_score.h): each choice's log-likelihood is what the
// model's own loss gives its tokens after the context, with the harness's space, truncation and
// empty-context rules; and acc and acc_norm pick their answers as lm-evaluation-harness does. (That
// a model trained a little on English prefers it to improbable bytes, and the trainer's eval.choices,
// are in trainer_test.cpp, on its dataset.)
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/base/error.h"
#include "runtime/models/causal_lm.h"
#include "runtime/models/model_config.h"
#include "runtime/tokenizers/tokenizer.h"
#include "runtime/train/choice_score.h"

namespace albion::train {
namespace {

using tokenizers::TokenId;

// -log-likelihood of `choice_ids` after `context_ids` by the model's loss: its mean over the
// choice's targets times their count.
double loss_of(models::CausalLm& model, std::vector<TokenId> context_ids, const std::vector<TokenId>& choice_ids) {
  std::vector<TokenId> ids = std::move(context_ids);
  ids.insert(ids.end(), choice_ids.begin(), choice_ids.end());
  const auto length = static_cast<std::int64_t>(ids.size()) - 1;
  const at::Tensor sequence = at::tensor(std::vector<std::int64_t>(ids.begin(), ids.end()), at::kLong).unsqueeze(0);
  at::Tensor mask = at::zeros({1, length}, at::kByte);
  const auto scored = static_cast<std::int64_t>(choice_ids.size());
  mask.narrow(1, length - scored, scored).fill_(1);
  return model.loss(sequence.narrow(1, 0, length), sequence.narrow(1, 1, length), mask).item<double>() *
         static_cast<double>(scored);
}

// A tiny GPT-2 of random weights, in eval mode without autograd, and the byte tokenizer.
class UntrainedModel {
 public:
  UntrainedModel(std::int64_t context_length, std::uint64_t seed) {
    models::ModelConfig config = models::model_preset("tiny");
    config.vocab_size = 320;
    config.context_length = context_length;
    at::manual_seed(seed);
    model_ = models::make_model(config);
    eval_mode_.emplace(*model_);
  }
  models::CausalLm& operator*() const { return *model_; }
  std::unique_ptr<tokenizers::Tokenizer> tokenizer = tokenizers::load_tokenizer("byte");

 private:
  at::NoGradGuard no_grad_;
  std::shared_ptr<models::CausalLm> model_;
  std::optional<models::EvalModeScope> eval_mode_;
};

TEST(ChoiceScore, EachLikelihoodIsTheModelsLossOfTheChoiceAfterTheContext) {
  const UntrainedModel model(64, 3);
  const auto& tokenizer = model.tokenizer;

  // One space between context and choice, unless either side has its own.
  const data::ChoiceQuestion question{"Anne was", {"here", " there", "everywhere at once"}, 0};
  const std::vector<ChoiceLikelihood> scored = choice_likelihoods(*model, *tokenizer, question, at::kCPU);
  ASSERT_EQ(scored.size(), 3u);
  const std::vector<TokenId> context = tokenizer->encode("Anne was");
  const std::vector<std::string> continuations = {" here", " there", " everywhere at once"};
  for (std::size_t i = 0; i < 3; ++i) {
    const std::vector<TokenId> choice = tokenizer->encode(continuations[i]);
    EXPECT_EQ(scored[i].tokens, static_cast<std::int64_t>(choice.size())) << continuations[i];
    const double expected = -loss_of(*model, context, choice);
    EXPECT_NEAR(scored[i].log_likelihood, expected, 1e-5 * std::abs(expected)) << continuations[i];
  }

  // An empty context starts from the end-of-text token, with no space before the choice.
  const std::vector<ChoiceLikelihood> opening =
      choice_likelihoods(*model, *tokenizer, {"", {"Anne", "Bath"}, 0}, at::kCPU);
  const double from_end_of_text = -loss_of(*model, {*tokenizer->end_of_text()}, tokenizer->encode("Anne"));
  EXPECT_NEAR(opening[0].log_likelihood, from_end_of_text, 1e-5 * std::abs(from_end_of_text));
  EXPECT_EQ(opening[0].tokens, 4);
}

// A sequence longer than the model's context keeps its last tokens: the choice whole, the
// context's end. A choice that alone exceeds the context is refused.
TEST(ChoiceScore, ALongContextLosesItsBeginning) {
  const UntrainedModel model(16, 4);
  const auto& tokenizer = model.tokenizer;
  const std::string context = "Sir Walter Elliot, of Kellynch Hall, in Somersetshire";
  const std::vector<ChoiceLikelihood> scored =
      choice_likelihoods(*model, *tokenizer, {context, {"was a man", "no"}, 0}, at::kCPU);
  const std::vector<TokenId> choice = tokenizer->encode(" was a man");
  const std::vector<TokenId> whole_context = tokenizer->encode(context);
  // 16 inputs and one more target: the last 17 - 10 context tokens.
  const std::vector<TokenId> kept(whole_context.end() - (17 - 10), whole_context.end());
  const double expected = -loss_of(*model, kept, choice);
  EXPECT_NEAR(scored[0].log_likelihood, expected, 1e-5 * std::abs(expected));
  EXPECT_THROW(choice_likelihoods(*model, *tokenizer, {context, {std::string(17, 'x'), "no"}, 0}, at::kCPU),
               UsageError);
}

// answer_questions puts several questions of different lengths in one forward pass (rows padded to
// the longest); each is scored as alone, and the vocabulary projected in chunks gives the same sums.
TEST(ChoiceScore, QuestionsAnsweredTogetherScoreAsEachAlone) {
  const UntrainedModel model(48, 5);
  const auto& tokenizer = model.tokenizer;
  const std::string book = "It is a truth universally acknowledged, that a single man in possession of a good "
                           "fortune, must be in want of a wife. However little known the feelings or views of such "
                           "a man may be on his first entering a neighbourhood";
  std::vector<data::ChoiceQuestion> questions;
  for (std::size_t i = 0; i < 300; ++i) {
    // Contexts of 0 to 90 bytes (past the window of 48), 2 to 5 choices of 1 to 20 bytes.
    data::ChoiceQuestion question{book.substr(i % 7, (i * 13) % 91), {}, static_cast<std::int64_t>(i % 2)};
    for (std::size_t c = 0; c < 2 + i % 4; ++c) {
      question.choices.push_back(book.substr(3 * c + i % 11, 1 + (i + c) % 20));
    }
    questions.push_back(std::move(question));
  }
  ChoiceTally alone;
  for (std::size_t i = 100; i < questions.size(); ++i) {
    alone.add(questions[i], choice_likelihoods(*model, *tokenizer, questions[i], at::kCPU));
  }
  std::vector<std::int64_t> order;
  const ChoiceTally together = answer_questions(
      *model, *tokenizer, questions, 100, 300, at::kCPU,
      [&](std::int64_t i, const std::vector<ChoiceLikelihood>& choices) {
        order.push_back(i);
        const std::vector<ChoiceLikelihood> expected =
            choice_likelihoods(*model, *tokenizer, questions[static_cast<std::size_t>(i)], at::kCPU);
        ASSERT_EQ(choices.size(), expected.size()) << "question " << i;
        for (std::size_t c = 0; c < choices.size(); ++c) {
          EXPECT_EQ(choices[c].tokens, expected[c].tokens) << "question " << i << " choice " << c;
          EXPECT_NEAR(choices[c].log_likelihood, expected[c].log_likelihood,
                      1e-5 * std::abs(expected[c].log_likelihood)) << "question " << i << " choice " << c;
        }
      });
  std::sort(order.begin(), order.end());  // answered longest first
  ASSERT_EQ(order.size(), 200u);
  for (std::size_t k = 0; k < order.size(); ++k) EXPECT_EQ(order[k], static_cast<std::int64_t>(100 + k));
  EXPECT_EQ(together.questions, 200);
  EXPECT_EQ(together.correct, alone.correct);
  EXPECT_EQ(together.correct_norm, alone.correct_norm);

  // The vocabulary projected a few positions at a time: the same sums.
  const at::Tensor inputs = at::randint(0, 256, {3, 40}, at::kLong);
  const at::Tensor targets = at::randint(0, 256, {3, 40}, at::kLong);
  const at::Tensor scored = at::rand({3, 40}) < 0.5;
  const at::Tensor whole = (*model).target_log_likelihoods(inputs, targets, scored);
  const at::Tensor chunked = (*model).target_log_likelihoods(inputs, targets, scored, /*chunk_positions=*/3);
  EXPECT_TRUE(at::allclose(chunked, whole, 1e-6, 0)) << chunked << whole;
  EXPECT_EQ(whole.scalar_type(), at::kDouble);
  EXPECT_LT(whole.max().item<double>(), 0);
}

// acc takes the highest log-likelihood, acc_norm the highest per character of the choice (as
// Python's len() counts them: "é" is one); a tie goes to the first choice.
TEST(ChoiceScore, AccAndAccNormPickTheirAnswersAsTheHarnessDoes) {
  ChoiceTally tally;
  const data::ChoiceQuestion short_or_long{"ctx", {"a", "bbbb"}, 1};
  tally.add(short_or_long, {{-2.0, 1}, {-4.0, 4}});  // per character: -2 and -1
  EXPECT_EQ(tally.questions, 1);
  EXPECT_EQ(tally.correct, 0);
  EXPECT_EQ(tally.correct_norm, 1);
  tally.add({"ctx", {"a", "b"}, 0}, {{-1.0, 1}, {-1.0, 1}});
  EXPECT_EQ(tally.correct, 1);
  EXPECT_EQ(tally.correct_norm, 2);
  // "\u00e9\u00e9" is 2 characters (4 bytes): per character -1.5 against "abc"'s -1.33.
  tally.add({"ctx", {"\u00e9\u00e9", "abc"}, 1}, {{-3.0, 2}, {-4.0, 3}});
  EXPECT_EQ(tally.correct_norm, 3);
  tally.add({"ctx", {"\u00e9\u00e9", "abc"}, 0}, {{-3.0, 2}, {-4.0, 3}});  // per byte, -0.75 would win
  EXPECT_EQ(tally.correct_norm, 3);
  EXPECT_EQ(tally.questions, 4);
  EXPECT_DOUBLE_EQ(tally.acc(), 0.5);
  EXPECT_DOUBLE_EQ(tally.acc_norm(), 0.75);
}

}  // namespace
}  // namespace albion::train
