// File: runtime/models/causal_lm.cpp
// What every architecture shares: the loss, parameter listing and weight-decay rule, input checks
// and the factory.
#include "runtime/models/causal_lm.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "kernels/common/kernel_device.h"
#include "kernels/cross_entropy/linear_cross_entropy.h"
#include "runtime/base/check.h"
#include "runtime/models/gpt2.h"
#include "runtime/models/layers.h"
#include "runtime/models/llama.h"
#include "runtime/models/tensor_parallel.h"

namespace albion::models {
namespace {
constexpr std::int64_t kIgnoreTarget = -100;
constexpr const char* kLmHeadName = "lm_head.weight";
}  // namespace

CausalLm::CausalLm(ModelConfig config, std::shared_ptr<collectives::Communicator> tensor_group)
    : config_(std::move(config)), tensor_group_(std::move(tensor_group)) {}

double CausalLm::residual_init_std() const {
  return kInitStd / std::sqrt(2.0 * static_cast<double>(config_.layers));
}

void CausalLm::check_input(const at::Tensor& input_ids, const KvCache* cache, const at::Tensor& positions) const {
  const std::int64_t past = cache ? cache->length() : 0;
  ALBION_CHECK(input_ids.dim() == 2 && input_ids.scalar_type() == at::kLong,
               "input_ids must be [B, T] int64, got ", input_ids.sizes(), " ",
               input_ids.scalar_type());
  // The trainer validates seq_len against the config before any work; this guards other callers.
  ALBION_CHECK_AS(UsageError, input_ids.size(1) >= 1 && past + input_ids.size(1) <= config_.context_length,
                  "sequence length ", past + input_ids.size(1),
                  " is outside [1, context_length = ", config_.context_length, "]");
  ALBION_CHECK(!positions.defined() || (cache == nullptr && positions.sizes() == input_ids.sizes()), "positions ",
               positions.sizes(), " must match input_ids ", input_ids.sizes(), " with no KV cache");
}

at::Tensor CausalLm::document_mask(const at::Tensor& positions) const {
  return positions.defined() ? document_attention_bias(positions, product_dtype(output_weight())) : at::Tensor();
}

at::Tensor CausalLm::loss(const at::Tensor& input_ids, const at::Tensor& targets, const at::Tensor& loss_mask,
                          const at::Tensor& positions) {
  ALBION_CHECK(targets.sizes() == input_ids.sizes(), "targets ", targets.sizes(),
               " must match input_ids ", input_ids.sizes());
  if (tensor_group_ || (config_.fused_kernels && kernels::runs_kernels(output_weight()))) {
    return chunked_loss(input_ids, targets, loss_mask, positions);
  }
  const at::Tensor logits = forward(input_ids, positions);
  const at::ScalarType loss_type = at::promote_types(logits.scalar_type(), at::kFloat);
  const at::Tensor flat_logits = logits.reshape({-1, logits.size(-1)}).to(loss_type);
  const at::Tensor flat_targets = targets.reshape({-1});
  if (!loss_mask.defined()) return at::cross_entropy_loss(flat_logits, flat_targets);

  ALBION_CHECK(loss_mask.sizes() == input_ids.sizes(), "loss_mask ", loss_mask.sizes(),
               " must match input_ids ", input_ids.sizes());
  const at::Tensor keep = loss_mask.reshape({-1}) != 0;
  const at::Tensor summed =
      at::cross_entropy_loss(flat_logits, at::where(keep, flat_targets, kIgnoreTarget), {},
                             at::Reduction::Sum, kIgnoreTarget);
  return summed / keep.sum().clamp_min(1).to(loss_type);
}

at::Tensor CausalLm::forward(const at::Tensor& input_ids, const at::Tensor& positions) {
  return logits_of(hidden_states(input_ids, nullptr, positions));
}

at::Tensor CausalLm::forward(const at::Tensor& input_ids, KvCache& cache) {
  ALBION_CHECK(!at::GradMode::is_enabled(), "a KV-cached forward is for inference: run it under NoGradGuard");
  const at::Tensor logits = logits_of(hidden_states(input_ids, &cache));
  cache.advance(input_ids.size(1));
  return logits;
}

at::Tensor CausalLm::next_token_logits(const at::Tensor& input_ids, KvCache* cache) {
  ALBION_CHECK(!at::GradMode::is_enabled(), "next-token logits are for inference: run them under NoGradGuard");
  const at::Tensor logits = logits_of(hidden_states(input_ids, cache).select(1, -1));
  if (cache != nullptr) cache->advance(input_ids.size(1));
  return logits;
}

at::Tensor CausalLm::target_log_likelihoods(const at::Tensor& input_ids, const at::Tensor& targets,
                                            const at::Tensor& scored, std::int64_t chunk_positions) {
  ALBION_CHECK(!at::GradMode::is_enabled(), "log-likelihoods are for evaluation: run them under NoGradGuard");
  ALBION_CHECK(targets.sizes() == input_ids.sizes() && scored.sizes() == input_ids.sizes(), "targets ",
               targets.sizes(), " and scored ", scored.sizes(), " must match input_ids ", input_ids.sizes());
  const at::Tensor hidden = hidden_states(input_ids, nullptr);
  const at::Tensor where = scored.reshape({-1}).nonzero().squeeze(1);
  const at::Tensor picked = hidden.reshape({-1, hidden.size(-1)}).index_select(0, where);
  const at::Tensor picked_targets = targets.reshape({-1}).index_select(0, where);
  const std::int64_t chunk =
      chunk_positions > 0 ? chunk_positions : std::max<std::int64_t>(1, (std::int64_t{1} << 26) / config_.vocab_size);
  std::vector<at::Tensor> log_probs;
  for (std::int64_t start = 0; start < picked.size(0); start += chunk) {
    const std::int64_t rows = std::min(chunk, picked.size(0) - start);
    const at::Tensor logits = logits_of(picked.narrow(0, start, rows)).to(at::kFloat);
    log_probs.push_back(
        logits.log_softmax(-1).gather(-1, picked_targets.narrow(0, start, rows).unsqueeze(-1)).squeeze(-1));
  }
  const at::Tensor row_of = at::div(where, input_ids.size(1), "floor");
  const at::Tensor sums = at::zeros({input_ids.size(0)}, hidden.options().dtype(at::kDouble));
  return log_probs.empty() ? sums : sums.index_add_(0, row_of, at::cat(log_probs).to(at::kDouble));
}

// Note [Masked vocabulary padding]
// A published model fine-tuned tensor-parallel may need rows its vocabulary lacks (GPT-2's 50,257
// divides by no degree): ModelConfig::vocab_padding rows, zero, that no input id looks up. Their
// logits would be 0, not small, and would take probability from the real ids, so the model would
// no longer score as published. Every softmax leaves them out: logits_of sets their logits to -inf,
// the chunked loss projects onto the rows in use only (the kernel's own padding, Note [Padded
// vocabulary], makes them -inf there), and the vocabulary-parallel loss sets the logits of the ids
// past vocab_in_use() to -inf on the ranks that hold them. Their gradient is then exactly 0, so
// AdamW leaves them at 0 and a checkpoint stores them as loaded.
at::Tensor CausalLm::logits_of(const at::Tensor& hidden) const {
  at::Tensor logits = at::linear(hidden, weight_as_read(output_weight(), hidden));
  if (tensor_group_) {
    ALBION_CHECK(!at::GradMode::is_enabled(), "a tensor-parallel model's logits are gathered for inference: run it "
                 "under NoGradGuard, and train through loss()");
    logits = gather_tensor_parallel(logits, static_cast<int>(logits.dim()) - 1, *tensor_group_);
  }
  if (config_.vocab_padding > 0) logits.narrow(-1, config_.vocab_in_use(), config_.vocab_padding).fill_(-INFINITY);
  return logits;
}

// In chunks of rows, the logits never whole. A rank of a tensor-parallel group holds its part of
// the vocabulary; the softmax over all of it takes two numbers per token from every rank
// (tensor_parallel.h). Padding rows take no part (Note [Masked vocabulary padding]).
at::Tensor CausalLm::chunked_loss(const at::Tensor& input_ids, const at::Tensor& targets, const at::Tensor& loss_mask,
                                  const at::Tensor& positions) {
  const at::Tensor hidden = hidden_states(input_ids, nullptr, positions);
  const at::Tensor flat_hidden = hidden.reshape({-1, hidden.size(-1)});
  at::Tensor flat_targets = targets.reshape({-1});
  at::Tensor kept = at::ones_like(flat_targets);
  if (loss_mask.defined()) {
    ALBION_CHECK(loss_mask.sizes() == input_ids.sizes(), "loss_mask ", loss_mask.sizes(),
                 " must match input_ids ", input_ids.sizes());
    kept = (loss_mask.reshape({-1}) != 0).to(at::kLong);
    flat_targets = at::where(kept != 0, flat_targets, kIgnoreTarget);
  }
  const at::Tensor weight = weight_as_read(output_weight(), flat_hidden);  // Note [A frozen base held in bf16]
  const std::int64_t in_use = config_.vocab_in_use();
  at::Tensor summed;
  if (tensor_group_) {
    summed = vocab_parallel_linear_cross_entropy_sum(flat_hidden, weight, flat_targets, kIgnoreTarget, *tensor_group_,
                                                     /*chunk_rows=*/0, in_use);
  } else {
    // Narrowed only where there is padding: the narrow's backward copies the whole gradient.
    const at::Tensor rows = config_.vocab_padding > 0 ? weight.narrow(0, 0, in_use) : weight;
    summed = kernels::linear_cross_entropy_sum(flat_hidden, rows, flat_targets, kIgnoreTarget);
  }
  return summed / kept.sum().clamp_min(1).to(summed.scalar_type());
}

std::vector<std::pair<std::string, at::Tensor>> CausalLm::named_parameters() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& item : torch::nn::Module::named_parameters(/*recurse=*/true)) {
    out.emplace_back(item.key(), item.value());
  }
  return out;
}

std::vector<std::pair<std::string, at::Tensor>> CausalLm::trainable_parameters() const {
  std::vector<std::pair<std::string, at::Tensor>> out = named_parameters();
  std::erase_if(out, [](const auto& item) { return !item.second.requires_grad(); });
  return out;
}

bool CausalLm::is_weight_decayed(const std::string& name) const {
  const auto parameters = torch::nn::Module::named_parameters(/*recurse=*/true);
  const at::Tensor* parameter = parameters.find(name);
  // A tied output projection is the embedding table; state dicts still name it.
  if (parameter == nullptr && name == kLmHeadName && config_.tie_embeddings) return false;
  ALBION_CHECK(parameter != nullptr, "the ", architecture_name(config_.architecture),
               " model has no parameter '", name, "'");
  return parameter->dim() == 2 && !is_embedding_table(name);
}

std::shared_ptr<CausalLm> make_model(const ModelConfig& config, at::Device device,
                                     std::shared_ptr<collectives::Communicator> tensor_group, InitialValues values) {
  config.validate();
  std::optional<SkipRandomInitialValues> skip;
  if (values == InitialValues::kNone) skip.emplace();
  if (tensor_group != nullptr) {
    check_tensor_parallel_degree(config, tensor_group->size());
    if (tensor_group->size() == 1) tensor_group.reset();
  }
  const at::TensorOptions options = at::TensorOptions().dtype(at::kFloat).device(device);
  std::shared_ptr<CausalLm> model;
  switch (config.architecture) {
    case Architecture::kGpt2: model = std::make_shared<Gpt2>(config, options, std::move(tensor_group)); break;
    case Architecture::kLlama: model = std::make_shared<Llama>(config, options, std::move(tensor_group)); break;
  }
  ALBION_CHECK(model != nullptr, "unhandled architecture");
  for (const std::shared_ptr<torch::nn::Module>& module : model->modules()) {
    if (auto* layer = dynamic_cast<AdaptableLinear*>(module.get())) layer->use_fused_kernels(config.fused_kernels);
  }
  return model;
}

}  // namespace albion::models
