// File: runtime/models/sampler.cpp
// Greedy and penalty / temperature / top-k / top-p sampling; contract in sampler.h.
#include "runtime/models/sampler.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/types.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "runtime/base/check.h"

namespace albion::models {
namespace {

void check_request(const CausalLm& model, const std::vector<std::int64_t>& prompt,
                   const SamplingOptions& options) {
  const std::int64_t vocab = model.config().vocab_in_use();
  ALBION_CHECK_AS(UsageError, !prompt.empty(), "sampling needs a prompt of at least one token");
  for (std::int64_t id : prompt) {
    ALBION_CHECK_AS(UsageError, id >= 0 && id < vocab, "prompt token id ", id,
                    " is outside the model's vocabulary [0, ", vocab, ")");
  }
  ALBION_CHECK_AS(UsageError, options.max_new_tokens >= 0,
                  "sampling max_new_tokens must be >= 0, got ", options.max_new_tokens);
  ALBION_CHECK_AS(UsageError, options.top_k >= 0, "sampling top_k must be >= 0, got ",
                  options.top_k);
  ALBION_CHECK_AS(UsageError, options.decoding == Decoding::kGreedy || options.temperature > 0,
                  "sampling temperature must be positive, got ", options.temperature);
  ALBION_CHECK_AS(UsageError, options.top_p > 0 && options.top_p <= 1, "sampling top_p must be in (0, 1], got ",
                  options.top_p);
  ALBION_CHECK_AS(UsageError, options.repetition_penalty > 0 && std::isfinite(options.repetition_penalty),
                  "sampling repetition_penalty must be positive, got ", options.repetition_penalty);
}

// The distinct ids of a sequence, kept as it grows (the repetition penalty's set): a token costs
// O(1), not a pass over the whole sequence, which may be 65,536 tokens long.
class DistinctIds {
 public:
  DistinctIds(std::int64_t vocab, const std::vector<std::int64_t>& prompt) : seen_(static_cast<std::size_t>(vocab)) {
    for (std::int64_t id : prompt) add(id);
  }
  void add(std::int64_t id) {
    if (seen_[static_cast<std::size_t>(id)]) return;
    seen_[static_cast<std::size_t>(id)] = true;
    ids_.push_back(id);
  }
  const std::vector<std::int64_t>& ids() const { return ids_; }

 private:
  std::vector<bool> seen_;  // by id
  std::vector<std::int64_t> ids_;
};

// The logits of the ids in `seen` (distinct) penalised: divided by `penalty` where positive,
// multiplied where negative, so that either way the id becomes less likely.
at::Tensor penalise_repetition(const at::Tensor& logits, const std::vector<std::int64_t>& seen, double penalty) {
  at::Tensor penalised = logits.to(at::kCPU, at::kFloat, /*non_blocking=*/false, /*copy=*/true);
  const at::Tensor ids = at::tensor(seen, at::kLong);
  const at::Tensor values = penalised.index_select(0, ids);
  penalised.index_copy_(0, ids, at::where(values > 0, values / penalty, values * penalty));
  return penalised;
}

// The id drawn from `raw_logits`; `seen`: the distinct ids of the prompt and of what was drawn so far.
std::int64_t next_token(const at::Tensor& raw_logits, const std::vector<std::int64_t>& seen,
                        const SamplingOptions& options, at::Generator& generator) {
  const at::Tensor logits = options.repetition_penalty == 1
                                ? raw_logits
                                : penalise_repetition(raw_logits, seen, options.repetition_penalty);
  if (options.decoding == Decoding::kGreedy) return logits.argmax().item<std::int64_t>();
  at::Tensor scaled = logits.to(at::kCPU, at::kFloat) / options.temperature;
  at::Tensor candidates;  // vocabulary ids of the entries of `scaled`; undefined: all of them
  if (options.top_k > 0 && options.top_k < scaled.size(0)) {
    std::tie(scaled, candidates) = scaled.topk(options.top_k);
  }
  at::Tensor probabilities = at::softmax(scaled, 0);
  if (options.top_p < 1) {
    // topk's are sorted already. A token stays when the more likely ones sum to less than top_p,
    // so the most likely always does.
    if (!candidates.defined()) std::tie(probabilities, candidates) = probabilities.sort(0, /*descending=*/true);
    const std::int64_t kept = ((probabilities.cumsum(0) - probabilities) < options.top_p).sum().item<std::int64_t>();
    probabilities = probabilities.narrow(0, 0, kept);
    candidates = candidates.narrow(0, 0, kept);
  }
  const std::int64_t drawn =
      at::multinomial(probabilities, 1, /*replacement=*/false, generator).item<std::int64_t>();
  return candidates.defined() ? candidates[drawn].item<std::int64_t>() : drawn;
}

}  // namespace

std::vector<std::int64_t> sample(CausalLm& model, const std::vector<std::int64_t>& prompt,
                                 const SamplingOptions& options) {
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  return sample(model, prompt, options, generator);
}

std::int64_t reused_positions(const ConversationCache& conversation, const std::vector<std::int64_t>& prompt) {
  const std::size_t cached = std::min(conversation.tokens.size(), prompt.empty() ? 0 : prompt.size() - 1);
  const auto shared = std::mismatch(prompt.begin(), prompt.begin() + static_cast<std::ptrdiff_t>(cached),
                                    conversation.tokens.begin()).first;
  return shared - prompt.begin();
}

std::vector<std::int64_t> sample(CausalLm& model, const std::vector<std::int64_t>& prompt,
                                 const SamplingOptions& options, at::Generator& generator,
                                 ConversationCache* conversation) {
  check_request(model, prompt, options);
  torch::NoGradGuard no_grad;
  EvalModeScope eval(model);
  const at::Device device = model.parameters().front().device();
  const std::int64_t window = model.config().context_length;

  std::vector<std::int64_t> tokens = prompt;
  std::vector<std::int64_t> generated;
  generated.reserve(static_cast<std::size_t>(options.max_new_tokens));
  std::optional<KvCache> own_cache;
  KvCache* cache = conversation != nullptr ? &conversation->cache : &own_cache.emplace(window);
  if (conversation != nullptr) cache->truncate(reused_positions(*conversation, prompt));
  DistinctIds seen(model.config().vocab_in_use(), prompt);  // checked to lie in the vocabulary
  auto as_input = [&](std::size_t from) {
    const std::vector<std::int64_t> ids(tokens.begin() + static_cast<std::ptrdiff_t>(from), tokens.end());
    return at::tensor(ids, at::TensorOptions().dtype(at::kLong)).view({1, -1}).to(device);
  };
  for (std::int64_t step = 0; step < options.max_new_tokens; ++step) {
    if (options.stop_requested && options.stop_requested()) break;
    at::Tensor last_logits;
    if (tokens.size() <= static_cast<std::size_t>(window)) {
      // Within the window: only the tokens the cache has not seen (the prompt, then one each).
      last_logits = model.next_token_logits(as_input(static_cast<std::size_t>(cache->length())), cache)[0];
    } else {
      // Past it, the window slides, and positions with it (GPT-2's are learned): recompute it.
      last_logits = model.next_token_logits(as_input(tokens.size() - static_cast<std::size_t>(window)))[0];
    }
    // Drawn among the ids in use: a padded model draws what its published model draws, seed for
    // seed (Note [Masked vocabulary padding]).
    const std::int64_t id =
        next_token(last_logits.narrow(0, 0, model.config().vocab_in_use()), seen.ids(), options, generator);
    tokens.push_back(id);
    seen.add(id);
    generated.push_back(id);
    if (options.on_token) options.on_token(id);
  }
  if (conversation != nullptr) conversation->tokens.assign(tokens.begin(), tokens.begin() + cache->length());
  return generated;
}

}  // namespace albion::models
