// File: runtime/train/choice_score.h
// Multiple-choice accuracy (HellaSwag and the like, `albion eval --choices`): the model answers a
// question with the choice it finds most likely after the context, as lm-evaluation-harness
// scores them (on the text as given: the harness cleans HellaSwag's text first).
//
// Each choice is appended to the context after one space (the harness's delimiter; none where the
// context is empty, ends in whitespace, or the choice begins with it), context and choice
// tokenized apart, and the choice's tokens scored by the log-probability the model gives each
// after everything before it. An empty context starts from the tokenizer's end-of-text, as a
// document does in a token stream. A sequence longer than the model's context keeps its last
// tokens.
//   acc:      the choice with the highest log-likelihood is the answer;
//   acc_norm: the same, with each log-likelihood divided by its choice's length in characters (the
//             harness's normalisation, which stops a long choice losing for its length alone).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "collectives/communicator.h"
#include "runtime/data/choice_questions.h"
#include "runtime/models/causal_lm.h"
#include "runtime/tokenizers/tokenizer.h"

namespace albion::train {

struct ChoiceLikelihood {
  double log_likelihood = 0;  // natural log, summed over the choice's tokens
  std::int64_t tokens = 0;
};

// Each of `question`'s choices, in one forward pass over them all (the caller holds NoGradGuard and
// eval mode). UsageError where a choice alone exceeds the model's context, or where the context is
// empty and the tokenizer has no end-of-text.
std::vector<ChoiceLikelihood> choice_likelihoods(models::CausalLm& model, const tokenizers::Tokenizer& tokenizer,
                                                 const data::ChoiceQuestion& question, const at::Device& device);

struct ChoiceTally;

// Tokens (rows x padded length) answer_questions puts in one forward pass: whole questions, as many
// as fit (at least one), as a training micro-batch of 8 x 1024.
inline constexpr std::int64_t kChoiceTokensPerForward = 8192;

// Answers questions[first, end), longest first, in forward passes of several questions
// (kChoiceTokensPerForward), calling `answered` with each question's index and its choices'
// likelihoods (for a progress bar). UsageError naming the question's number (from 1) where the
// model cannot take it, before any forward pass.
using AnsweredQuestion = std::function<void(std::int64_t question, const std::vector<ChoiceLikelihood>& choices)>;
ChoiceTally answer_questions(models::CausalLm& model, const tokenizers::Tokenizer& tokenizer,
                             const std::vector<data::ChoiceQuestion>& questions, std::int64_t first, std::int64_t end,
                             const at::Device& device, const AnsweredQuestion& answered = {});

struct ChoiceTally {
  std::int64_t questions = 0;
  std::int64_t correct = 0;       // by acc
  std::int64_t correct_norm = 0;  // by acc_norm

  void add(const data::ChoiceQuestion& question, const std::vector<ChoiceLikelihood>& likelihoods);
  double acc() const { return questions > 0 ? static_cast<double>(correct) / static_cast<double>(questions) : 0; }
  double acc_norm() const {
    return questions > 0 ? static_cast<double>(correct_norm) / static_cast<double>(questions) : 0;
  }
  // The three counts as an fp64 tensor on `device`, for a collective to sum, and back (rounded:
  // a mean over ranks times their number is the sum).
  at::Tensor counts(const at::Device& device) const;
  static ChoiceTally from_counts(const at::Tensor& counts);
  // Collective over `data_group`, whose ranks scored different questions: the tally of them all.
  // `device`: where the group's collectives take tensors.
  ChoiceTally over(collectives::Communicator& data_group, const at::Device& device) const;
};

}  // namespace albion::train
