// File: bench/sampling_throughput.cpp
// Text sampling with the KV cache (models::sample) against recomputing the whole context for each
// token (what the sampler did before it had a cache), side by side in one process: greedy draws
// from a randomly initialised preset, fp32, on CUDA when present. Prints tokens/s of each, their
// ratio, and whether both drew the same tokens.
//
//   build/bench/sampling_throughput [preset=gpt2] [prompt_tokens=16] [new_tokens=256] [rounds=3]
#include <torch/types.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "runtime/device.h"
#include "runtime/models/causal_lm.h"
#include "runtime/models/sampler.h"

using namespace albion;

namespace {

// Greedy decoding without a cache: the whole context through the model for every token.
std::vector<std::int64_t> recompute_each_token(models::CausalLm& model, std::vector<std::int64_t> tokens,
                                               std::int64_t count, const at::Device& device) {
  torch::NoGradGuard no_grad;
  std::vector<std::int64_t> out;
  for (std::int64_t i = 0; i < count; ++i) {
    const at::Tensor input = at::tensor(tokens, at::kLong).view({1, -1}).to(device);
    out.push_back(model.forward(input)[0][-1].argmax().item<std::int64_t>());
    tokens.push_back(out.back());
  }
  return out;
}

double seconds_of(const auto& work) {
  const auto start = std::chrono::steady_clock::now();
  work();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const std::string preset = argc > 1 ? argv[1] : "gpt2";
  const std::int64_t prompt_tokens = argc > 2 ? std::atoll(argv[2]) : 16;
  const std::int64_t new_tokens = argc > 3 ? std::atoll(argv[3]) : 256;
  const int rounds = argc > 4 ? std::atoi(argv[4]) : 3;

  models::ModelConfig config = models::model_preset(preset);
  if (config.vocab_size == 0) config.vocab_size = 50257;
  if (prompt_tokens + new_tokens > config.context_length) {
    std::fprintf(stderr, "prompt + new tokens must fit the context length %lld\n",
                 static_cast<long long>(config.context_length));
    return 2;
  }
  const at::Device device = runtime::choose_device("auto", 0);
  at::manual_seed(1);
  std::shared_ptr<models::CausalLm> model = models::make_model(config);
  model->to(device);
  model->eval();
  std::vector<std::int64_t> prompt;
  for (std::int64_t i = 0; i < prompt_tokens; ++i) prompt.push_back((i * 7919) % config.vocab_size);
  models::SamplingOptions options;
  options.decoding = models::Decoding::kGreedy;
  options.max_new_tokens = new_tokens;

  std::vector<double> cached_s, recomputed_s;
  bool same = true;
  for (int round = 0; round < rounds; ++round) {  // alternating, so drift hits both alike
    std::vector<std::int64_t> cached, recomputed;
    cached_s.push_back(seconds_of([&] { cached = models::sample(*model, prompt, options); }));
    recomputed_s.push_back(seconds_of([&] { recomputed = recompute_each_token(*model, prompt, new_tokens, device); }));
    same = same && cached == recomputed;
  }
  std::sort(cached_s.begin(), cached_s.end());
  std::sort(recomputed_s.begin(), recomputed_s.end());
  const double cached = cached_s[cached_s.size() / 2], recomputed = recomputed_s[recomputed_s.size() / 2];
  std::printf("%s on %s, prompt %lld, %lld new tokens, median of %d rounds\n", preset.c_str(), device.str().c_str(),
              static_cast<long long>(prompt_tokens), static_cast<long long>(new_tokens), rounds);
  std::printf("  kv cache   %8.1f tokens/s\n", static_cast<double>(new_tokens) / cached);
  std::printf("  recompute  %8.1f tokens/s\n", static_cast<double>(new_tokens) / recomputed);
  std::printf("  speedup    %8.2fx   same tokens: %s\n", recomputed / cached, same ? "yes" : "no");
  return 0;
}
