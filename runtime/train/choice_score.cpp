// File: runtime/train/choice_score.cpp
#include "runtime/train/choice_score.h"

#include <algorithm>
#include <cctype>

#include "runtime/base/check.h"

namespace albion::train {
namespace {

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// Characters of UTF-8 `text` (its bytes that do not continue a character), as Python's len() counts.
std::int64_t characters(const std::string& text) {
  return std::count_if(text.begin(), text.end(),
                       [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
}

// The index of the largest score; the first of equal ones (numpy's argmax, as the harness takes it).
std::int64_t best(const std::vector<double>& scores) {
  return std::max_element(scores.begin(), scores.end()) - scores.begin();
}

}  // namespace

std::vector<ChoiceLikelihood> choice_likelihoods(models::CausalLm& model, const tokenizers::Tokenizer& tokenizer,
                                                 const data::ChoiceQuestion& question, const at::Device& device) {
  std::vector<tokenizers::TokenId> context = tokenizer.encode(question.context);
  if (context.empty()) {
    ALBION_CHECK_AS(UsageError, tokenizer.end_of_text().has_value(),
                    "a question with an empty context needs a tokenizer with an end-of-text token to start from");
    context.push_back(*tokenizer.end_of_text());
  }
  const std::int64_t window = model.config().context_length;
  // Each choice's sequence (context then choice) and how many of its last tokens are the choice's.
  std::vector<std::vector<tokenizers::TokenId>> sequences;
  std::vector<std::int64_t> scored;
  for (const std::string& choice : question.choices) {
    const bool spaced = !question.context.empty() && !is_space(question.context.back()) && !is_space(choice.front());
    std::vector<tokenizers::TokenId> sequence = context;
    const std::vector<tokenizers::TokenId> continuation = tokenizer.encode(spaced ? " " + choice : choice);
    ALBION_CHECK_AS(UsageError, static_cast<std::int64_t>(continuation.size()) <= window, "a choice of ",
                    continuation.size(), " tokens exceeds the model's context of ", window);
    sequence.insert(sequence.end(), continuation.begin(), continuation.end());
    // Inputs are all but the last token: at most `window` of them.
    const std::int64_t excess = static_cast<std::int64_t>(sequence.size()) - 1 - window;
    if (excess > 0) sequence.erase(sequence.begin(), sequence.begin() + excess);
    sequences.push_back(std::move(sequence));
    scored.push_back(static_cast<std::int64_t>(continuation.size()));
  }
  // One batch, rows padded at the end: causal attention keeps padding out of the positions before it.
  const auto rows = static_cast<std::int64_t>(sequences.size());
  std::int64_t length = 0;
  std::int64_t first_scored = window;  // the first position any row scores: the logits before it are not needed
  for (std::size_t row = 0; row < sequences.size(); ++row) {
    const auto inputs_in_row = static_cast<std::int64_t>(sequences[row].size()) - 1;
    length = std::max(length, inputs_in_row);
    first_scored = std::min(first_scored, inputs_in_row - scored[row]);
  }
  std::vector<std::int64_t> inputs(static_cast<std::size_t>(rows * length), 0);
  std::vector<std::int64_t> targets(inputs.size(), 0);
  std::vector<std::uint8_t> mask(inputs.size(), 0);
  for (std::size_t row = 0; row < sequences.size(); ++row) {
    const auto& sequence = sequences[row];
    const std::size_t offset = row * static_cast<std::size_t>(length);
    std::copy(sequence.begin(), sequence.end() - 1, inputs.begin() + static_cast<std::ptrdiff_t>(offset));
    std::copy(sequence.begin() + 1, sequence.end(), targets.begin() + static_cast<std::ptrdiff_t>(offset));
    const std::size_t end_of_row = offset + sequence.size() - 1;
    std::fill(mask.begin() + static_cast<std::ptrdiff_t>(end_of_row) - scored[row],
              mask.begin() + static_cast<std::ptrdiff_t>(end_of_row), std::uint8_t{1});
  }
  auto on_device = [&](auto& host, at::ScalarType type) {
    return at::from_blob(host.data(), {rows, length}, type).narrow(1, first_scored, length - first_scored).to(device);
  };
  const at::Tensor logits = model.forward(at::from_blob(inputs.data(), {rows, length}, at::kLong).to(device))
                                .narrow(1, first_scored, length - first_scored)
                                .to(at::kFloat);
  const at::Tensor log_probs =
      logits.log_softmax(-1).gather(-1, on_device(targets, at::kLong).unsqueeze(-1)).squeeze(-1).to(at::kDouble);
  const at::Tensor sums = log_probs.masked_fill(on_device(mask, at::kByte) == 0, 0).sum(1).cpu();
  std::vector<ChoiceLikelihood> out;
  for (std::int64_t row = 0; row < rows; ++row) {
    out.push_back({sums[row].item<double>(), scored[static_cast<std::size_t>(row)]});
  }
  return out;
}

ChoiceTally answer_questions(models::CausalLm& model, const tokenizers::Tokenizer& tokenizer,
                             const std::vector<data::ChoiceQuestion>& questions, std::int64_t first, std::int64_t end,
                             const at::Device& device, const std::function<void()>& answered) {
  ChoiceTally tally;
  for (std::int64_t i = first; i < end; ++i) {
    const data::ChoiceQuestion& question = questions.at(static_cast<std::size_t>(i));
    try {
      tally.add(question, choice_likelihoods(model, tokenizer, question, device));
    } catch (const UsageError& error) {
      throw UsageError(str_cat("question ", i + 1, ": ", error.what()));
    }
    if (answered) answered();
  }
  return tally;
}

void ChoiceTally::add(const data::ChoiceQuestion& question, const std::vector<ChoiceLikelihood>& likelihoods) {
  std::vector<double> total;
  std::vector<double> per_character;
  for (std::size_t i = 0; i < likelihoods.size(); ++i) {
    total.push_back(likelihoods[i].log_likelihood);
    per_character.push_back(likelihoods[i].log_likelihood / static_cast<double>(characters(question.choices.at(i))));
  }
  ++questions;
  correct += best(total) == question.answer;
  correct_norm += best(per_character) == question.answer;
}

ChoiceTally ChoiceTally::over(collectives::Communicator& data_group, const at::Device& device) const {
  const at::Tensor sums = counts(device);
  data_group.all_reduce(sums, collectives::ReduceOp::kSum)->wait();
  return from_counts(sums);
}

at::Tensor ChoiceTally::counts(const at::Device& device) const {
  const std::vector<double> values = {static_cast<double>(questions), static_cast<double>(correct),
                                      static_cast<double>(correct_norm)};
  return at::tensor(values, at::kDouble).to(device);
}

ChoiceTally ChoiceTally::from_counts(const at::Tensor& counts) {
  const at::Tensor host = counts.round().to(at::kLong).cpu();
  return {host[0].item<std::int64_t>(), host[1].item<std::int64_t>(), host[2].item<std::int64_t>()};
}

}  // namespace albion::train
