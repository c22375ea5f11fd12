// File: runtime/train/choice_score.cpp
#include "runtime/train/choice_score.h"

#include <algorithm>
#include <cctype>
#include <iterator>
#include <numeric>

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

// A question's choice as the model reads it: context then choice, and how many of its last tokens
// are the choice's.
struct ChoiceSequence {
  std::vector<tokenizers::TokenId> tokens;
  std::int64_t scored = 0;
};

std::vector<ChoiceSequence> choice_sequences(const tokenizers::Tokenizer& tokenizer,
                                             const data::ChoiceQuestion& question, std::int64_t window) {
  std::vector<tokenizers::TokenId> context = tokenizer.encode(question.context);
  if (context.empty()) {
    ALBION_CHECK_AS(UsageError, tokenizer.end_of_text().has_value(),
                    "a question with an empty context needs a tokenizer with an end-of-text token to start from");
    context.push_back(*tokenizer.end_of_text());
  }
  std::vector<ChoiceSequence> sequences;
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
    sequences.push_back({std::move(sequence), static_cast<std::int64_t>(continuation.size())});
  }
  return sequences;
}

// The inputs one sequence of `sequences` needs: all its tokens but the last.
std::int64_t inputs_of(const ChoiceSequence& sequence) {
  return static_cast<std::int64_t>(sequence.tokens.size()) - 1;
}

// The log-likelihood of every sequence's scored tokens, in one forward pass: rows padded at the end,
// which causal attention keeps out of the positions before them.
std::vector<ChoiceLikelihood> likelihoods_of(models::CausalLm& model, const std::vector<ChoiceSequence>& sequences,
                                             const at::Device& device) {
  const auto rows = static_cast<std::int64_t>(sequences.size());
  std::int64_t length = 0;
  for (const ChoiceSequence& sequence : sequences) length = std::max(length, inputs_of(sequence));
  std::vector<std::int64_t> inputs(static_cast<std::size_t>(rows * length), 0);
  std::vector<std::int64_t> targets(inputs.size(), 0);
  std::vector<std::uint8_t> scored(inputs.size(), 0);
  for (std::size_t row = 0; row < sequences.size(); ++row) {
    const auto& tokens = sequences[row].tokens;
    const auto offset = static_cast<std::ptrdiff_t>(row * static_cast<std::size_t>(length));
    std::copy(tokens.begin(), tokens.end() - 1, inputs.begin() + offset);
    std::copy(tokens.begin() + 1, tokens.end(), targets.begin() + offset);
    const std::ptrdiff_t end_of_row = offset + inputs_of(sequences[row]);
    std::fill(scored.begin() + end_of_row - sequences[row].scored, scored.begin() + end_of_row, std::uint8_t{1});
  }
  auto on_device = [&](auto& host, at::ScalarType type) {
    return at::from_blob(host.data(), {rows, length}, type).to(device);
  };
  const at::Tensor sums =
      model.target_log_likelihoods(on_device(inputs, at::kLong), on_device(targets, at::kLong),
                                   on_device(scored, at::kByte)).cpu();
  const double* sum = sums.const_data_ptr<double>();
  std::vector<ChoiceLikelihood> out;
  for (std::size_t row = 0; row < sequences.size(); ++row) out.push_back({sum[row], sequences[row].scored});
  return out;
}

}  // namespace

std::vector<ChoiceLikelihood> choice_likelihoods(models::CausalLm& model, const tokenizers::Tokenizer& tokenizer,
                                                 const data::ChoiceQuestion& question, const at::Device& device) {
  return likelihoods_of(model, choice_sequences(tokenizer, question, model.config().context_length), device);
}

ChoiceTally answer_questions(models::CausalLm& model, const tokenizers::Tokenizer& tokenizer,
                             const std::vector<data::ChoiceQuestion>& questions, std::int64_t first, std::int64_t end,
                             const at::Device& device, const AnsweredQuestion& answered) {
  // Every question's sequences first, so that a question the model cannot take fails before any work.
  std::vector<std::vector<ChoiceSequence>> sequences;
  std::vector<std::int64_t> longest;  // inputs of each question's longest choice
  for (std::int64_t i = first; i < end; ++i) {
    try {
      sequences.push_back(
          choice_sequences(tokenizer, questions.at(static_cast<std::size_t>(i)), model.config().context_length));
    } catch (const UsageError& error) {
      throw UsageError(str_cat("question ", i + 1, ": ", error.what()));
    }
    std::int64_t inputs = 0;
    for (const ChoiceSequence& sequence : sequences.back()) inputs = std::max(inputs, inputs_of(sequence));
    longest.push_back(inputs);
  }
  // Longest first, as the harness orders them: rows of like length pad little, and a batch too
  // large for the device fails at the start.
  std::vector<std::size_t> order(sequences.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return longest[a] > longest[b]; });

  ChoiceTally tally;
  for (std::size_t next = 0; next < order.size();) {
    // Whole questions while the padded batch stays within the budget (at least one); the first
    // question of a batch is its longest.
    const std::int64_t length = longest[order[next]];
    std::vector<ChoiceSequence> batch;
    std::vector<std::size_t> batched;
    for (; next < order.size(); ++next) {
      const auto rows = static_cast<std::int64_t>(batch.size() + sequences[order[next]].size());
      if (!batch.empty() && rows * length > kChoiceTokensPerForward) break;
      batched.push_back(order[next]);
      std::move(sequences[order[next]].begin(), sequences[order[next]].end(), std::back_inserter(batch));
    }
    const std::vector<ChoiceLikelihood> likelihoods = likelihoods_of(model, batch, device);
    auto row = likelihoods.begin();
    for (const std::size_t k : batched) {
      const std::int64_t i = first + static_cast<std::int64_t>(k);
      const data::ChoiceQuestion& question = questions[static_cast<std::size_t>(i)];
      const std::vector<ChoiceLikelihood> choices(row, row + static_cast<std::ptrdiff_t>(question.choices.size()));
      row += static_cast<std::ptrdiff_t>(choices.size());
      tally.add(question, choices);
      if (answered) answered(i, choices);
    }
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
