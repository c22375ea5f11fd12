// File: runtime/models/sampler.h
// Autoregressive text sampling from a CausalLm: greedy (argmax) or sampled from the
// temperature-scaled distribution, optionally truncated to the top k tokens, then to the nucleus
// of top-p probability. A repetition penalty first makes every id already in the sequence less
// likely. The order is transformers': penalty, temperature, top-k, top-p. The context fed to
// the model is the last context_length tokens. While they fit in the window, a KV cache makes each
// token cost one token's forward; once the window slides, every step recomputes the whole window
// (positions shift with it). Either way only the last position's logits are computed
// (CausalLm::next_token_logits). One sequence at a time: samples during training and
// `albion generate`, not a batched serving engine.
//
// Determinism: draws come from a CPU generator (the probabilities are copied to the CPU), so a
// seed gives the same tokens on any device that produces the same logits.
#pragma once

#include <ATen/core/Generator.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "runtime/models/causal_lm.h"

namespace albion::models {

enum class Decoding { kSample, kGreedy };

struct SamplingOptions {
  std::int64_t max_new_tokens = 64;
  Decoding decoding = Decoding::kSample;
  double temperature = 1.0;  // > 0; divides the logits before the softmax (kSample only)
  std::int64_t top_k = 0;    // 0: the whole vocabulary; otherwise the k most likely tokens
  // In (0, 1]: the fewest most likely tokens whose probabilities sum to at least top_p (nucleus
  // sampling, after top_k); 1: no cut.
  double top_p = 1.0;
  // > 0: each id already in the sequence (prompt included) has its logit divided by this where
  // positive, multiplied where negative (CTRL's penalty, as transformers applies it); 1: none.
  // Greedy decoding too.
  double repetition_penalty = 1.0;
  std::uint64_t seed = 0;    // for the overload without a generator
  // Asked before each token; true ends the sample there (e.g. Ctrl-C during a long sample).
  std::function<bool()> stop_requested;
  // Told each token as soon as it is drawn (to stream text).
  std::function<void(std::int64_t)> on_token;
};

// A conversation's KV cache, kept from one sample() to the next (llama.cpp's prompt cache): a turn
// computes only the tokens of its prompt past the prefix it shares with what the cache holds (the
// last turn's prompt and answer, whatever the chat template re-renders differently), so answering
// the tenth turn does not read the nine before it again.
struct ConversationCache {
  explicit ConversationCache(std::int64_t capacity) : cache(capacity) {}
  KvCache cache;
  std::vector<std::int64_t> tokens;  // what `cache` holds: tokens[i] at position i
};
// The positions of `prompt` a sample() with `conversation` reads from its cache: the prefix shared
// with its tokens, less the prompt's last token (whose logits the first draw needs).
std::int64_t reused_positions(const ConversationCache& conversation, const std::vector<std::int64_t>& prompt);

// Returns the max_new_tokens ids generated after `prompt` (the prompt itself not included), or
// fewer when stop_requested says so. With `conversation`, its cache's shared prefix is reused and
// the cache left holding the prompt and what was drawn (the same model, device and autocast each
// call).
// UsageError for an empty prompt, ids outside the vocabulary, or bad options. Runs without
// autograd and leaves the model's train/eval mode as it found it.
std::vector<std::int64_t> sample(CausalLm& model, const std::vector<std::int64_t>& prompt,
                                 const SamplingOptions& options);
std::vector<std::int64_t> sample(CausalLm& model, const std::vector<std::int64_t>& prompt,
                                 const SamplingOptions& options, at::Generator& generator,
                                 ConversationCache* conversation = nullptr);

}  // namespace albion::models
