// File: runtime/models/lora.h
// Low-rank adaptation (LoRA, Hu et al. 2021) for fine-tuning an open model on private data: the
// published weights stay frozen and each chosen linear layer learns a correction (alpha / rank) B A
// of rank `rank`, so the optimizer state, the gradients that cross the network and the checkpoints
// hold the adapters only (about 1% of the parameters at rank 8).
//
//   models::load_hugging_face_weights(*model, base);           // the frozen base
//   models::add_lora_adapters(*model, {8, 16, {"all-linear"}}); // then only adapters train
//   ... train ...
//   to_hugging_face(config, models::merged_parameters(*model)); // a plain model again
//
// The adapters' names are PEFT's ("...q_proj.lora_A.weight", "...lora_B.weight"), as are their
// initialisation (A Kaiming-uniform, B zero: training starts from the base model exactly) and
// target matching (a target names a layer by its last path components: "q_proj" matches every
// layer's query projection, "attn.c_proj" GPT-2's attention output but not its MLP's; "all-linear"
// is every linear layer except the output head), and dropout on the adapter's input in training
// mode (lora_dropout; eval mode, CausalLm's EvalModeScope, turns it off).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "runtime/models/causal_lm.h"

namespace albion::models {

struct LoraOptions {
  std::int64_t rank = 8;
  double alpha = 16;
  std::vector<std::string> targets = {"all-linear"};
  double dropout = 0;  // on the adapters' input, in training mode only
};

// Adds an adapter to each linear layer `options.targets` names (drawing A from the default
// generator of the layers' device) and freezes every other parameter (requires_grad false).
// Returns the adapted layers' paths, in registration order. UsageError naming the target for one
// that matches no linear layer (listing the layer names there are), for a rank or alpha that is
// not positive, or a dropout outside [0, 1).
std::vector<std::string> add_lora_adapters(CausalLm& model, const LoraOptions& options);

// Note [A frozen base held in bf16] (runtime/models/layers.h): stores the frozen fp32 weight of
// every linear layer in bf16, the output head's too unless it is tied to the embedding table, for
// training under bf16 autocast. Returns the bytes it frees. After the adapters are added;
// merged_parameters() still gives fp32 merged weights (the base's bf16 values plus the adapter),
// and the frozen layers without an adapter in bf16.
std::int64_t hold_frozen_weights_in_bf16(CausalLm& model);

// The model's parameters as a model without adapters holds them: each adapted weight merged with
// its adapter (new tensors), no lora_A / lora_B entries, other parameters as they are. Equal to
// named_parameters() for a model without adapters.
std::vector<std::pair<std::string, at::Tensor>> merged_parameters(CausalLm& model);

}  // namespace albion::models
