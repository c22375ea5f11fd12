// File: launch/checkpoint_model.h
// The model a checkpoint holds, decrypted into memory: its architecture, rebuilt from the recipe
// stored in the checkpoint, and its fp32 weights under the model's own parameter names. Shared by
// `albion ckpt export` (which converts the weights), `albion generate` and `albion eval` (which run
// them, on one rank or cut over a tensor-parallel group: each rank then reads only what it needs).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "checkpoint/format/checkpoint_reader.h"
#include "collectives/communicator.h"
#include "runtime/config/recipe.h"
#include "runtime/models/causal_lm.h"
#include "runtime/models/model_config.h"
#include "runtime/train/trainer.h"

namespace albion::launch {

struct CheckpointModel {
  config::Recipe recipe;  // the resolved recipe the checkpoint stores
  models::ModelConfig config;
  train::LoraBase lora_base;  // a LoRA checkpoint's frozen base; its weights are the adapters
  // The "model.*" tensors, all F32, as the checkpoint stores them (after read_checkpoint_model: as
  // `parameters` hold them, none transposed).
  std::vector<checkpoint::TensorInfo> weights;
  bool encrypted = false;
  // Only from read_checkpoint_model: CPU, fp32, whole, e.g. "wte.weight".
  std::vector<std::pair<std::string, at::Tensor>> parameters;
};

// What `reader`'s checkpoint holds for its model, before any weight is decrypted, as a model cut
// `tensor_degree` ways has it: its vocabulary padded for that degree where needed, the padding
// masked (Note [A checkpoint's vocabulary on another number of ranks] in runtime/models/
// tensor_parallel.h; load_checkpoint_model reads the stored rows into it). IntegrityError for
// weights that are not F32 or a checkpoint without any. For LoRA adapters, checks, unless
// `adapters_alone`, that their base is still where it was (UsageError) with the same weights
// (IntegrityError).
CheckpointModel describe_checkpoint_model(checkpoint::CheckpointReader& reader, std::int64_t tensor_degree = 1,
                                          bool adapters_alone = false);

// describe_checkpoint_model, and every weight read whole into `parameters`, with a progress line on
// a terminal.
CheckpointModel read_checkpoint_model(checkpoint::CheckpointReader& reader, bool terminal, bool adapters_alone = false);

// `numel` elements from `offset` of parameter `name`'s stored elements (transposed where its
// TensorInfo says), fp32 on the CPU.
using WeightRange = std::function<at::Tensor(const std::string& name, std::int64_t offset, std::int64_t numel)>;
// Straight from the checkpoint (decrypted as read); `reader` must outlive the result.
WeightRange weights_in(checkpoint::CheckpointReader& reader);
// From the weights read_checkpoint_model read; `stored` must outlive the result.
WeightRange weights_in(const CheckpointModel& stored);

struct LoadOptions {
  // Held for inference under bf16 autocast (models::hold_for_bf16_inference) before it moves to
  // the device, so the device never holds the fp32 copy.
  bool bf16_inference = false;
  bool progress = true;   // a progress line over the bytes read (one rank of a job shows it)
  bool terminal = false;  // redrawn in place on a terminal
  // The ranks the model is cut over (runtime/models/tensor_parallel.h); this rank reads its part.
  std::shared_ptr<collectives::Communicator> tensor_group;
};

// A model built from `stored` and loaded with its weights through `read`, on `device`. A LoRA
// checkpoint's model is its base, read again from the directory it records, with the adapters
// added. IntegrityError naming `what` when a parameter is missing, unexpected or of the wrong
// shape. models::merged_parameters() gives the weights of a model without adapters.
std::shared_ptr<models::CausalLm> load_checkpoint_model(const CheckpointModel& stored, const WeightRange& read,
                                                        const at::Device& device, const std::string& what,
                                                        const LoadOptions& options = {});

}  // namespace albion::launch
