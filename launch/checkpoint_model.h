// File: launch/checkpoint_model.h
// The model a checkpoint holds, decrypted into memory: its architecture, rebuilt from the recipe
// stored in the checkpoint, and its fp32 weights under the model's own parameter names. Shared by
// `albion ckpt export` (which converts the weights), `albion generate` and `albion eval` (which run them).
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "checkpoint/format/checkpoint_reader.h"
#include "runtime/config/recipe.h"
#include "runtime/models/causal_lm.h"
#include "runtime/models/model_config.h"
#include "runtime/train/trainer.h"

namespace albion::launch {

struct CheckpointModel {
  config::Recipe recipe;  // the resolved recipe the checkpoint stores
  models::ModelConfig config;
  std::vector<std::pair<std::string, at::Tensor>> parameters;  // CPU, fp32, e.g. "wte.weight"
  train::LoraBase lora_base;  // a LoRA checkpoint's frozen base; `parameters` are its adapters
};

// Reads every "model.*" tensor of `reader`'s checkpoint, with a progress line on a terminal.
// IntegrityError for weights that are not F32 or a checkpoint without any. For LoRA adapters, checks
// first, unless `adapters_alone`, that their base is still where it was (UsageError) with the same
// weights (IntegrityError).
CheckpointModel read_checkpoint_model(checkpoint::CheckpointReader& reader, bool terminal, bool adapters_alone = false);

// A model built from `stored` and loaded with its weights, on `device`. A LoRA checkpoint's model is
// its base, read again from the directory it records, with the adapters added. IntegrityError
// naming `what` when a parameter is missing, unexpected or of the wrong shape.
// models::merged_parameters() gives the weights of a model without adapters. With `bf16_inference`,
// the model is held for inference under bf16 autocast (models::hold_for_bf16_inference) before it
// moves to `device`, so the device never holds the fp32 copy.
std::shared_ptr<models::CausalLm> load_checkpoint_model(CheckpointModel stored, const at::Device& device,
                                                        const std::string& what, bool bf16_inference = false);

}  // namespace albion::launch
