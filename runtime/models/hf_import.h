// File: runtime/models/hf_import.h
// Starting weights from a Hugging Face transformers checkpoint, to fine-tune an open model (recipe
// key model.init): DIR/model.safetensors, or the shards DIR/model.safetensors.index.json lists.
//
// Names are transformers' state-dict keys, which are Albion's own (Note [Hugging Face names] in
// hf_export.h), with what transformers itself tolerates on load:
//   - files saved from the base model lack the "transformer." (GPT-2) or "model." (Llama) prefix;
//   - old GPT-2 files carry the attention-mask buffers "attn.bias" / "attn.masked_bias", and old
//     Llama files "rotary_emb.inv_freq": not parameters, skipped;
//   - with tied embeddings a file may still carry lm_head.weight: it must equal the embedding.
// Every parameter of the model must be there with its exact shape (so the recipe's preset must be
// the checkpoint's architecture); F32, BF16 and F16 values are converted to the parameter's dtype.
// What shapes cannot show (norm epsilon, RoPE theta and scaling) is compared with DIR/config.json
// where there is one, and each difference is a warning: the run would fine-tune another function.
// Not an error, because config.json's spelling varies with transformers' version.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runtime/models/causal_lm.h"

namespace albion::models {

// True for a directory holding a transformers model: config.json and model.safetensors (or the
// sharded index).
bool holds_hugging_face_model(const std::filesystem::path& directory);

// Overwrites every parameter of `model` with the checkpoint's values (a tensor-parallel model's part
// of them: the files hold whole tensors). A model with ModelConfig::vocab_padding takes the files'
// embedding (and untied LM head) of vocab_in_use() rows, its padding rows set to 0. UsageError naming the file
// and tensor for a missing, unexpected or misshapen tensor, a non-floating dtype, or a directory
// without weights; IntegrityError for a file that is not valid safetensors. With `sha256`, also
// sets it to hugging_face_weights_digest(directory), from the bytes already read.
void load_hugging_face_weights(CausalLm& model, const std::filesystem::path& directory,
                               std::string* sha256 = nullptr);

// The rows of `directory`'s token embedding (the vocabulary of the model it holds) as `config`'s
// architecture names it, read from the files' headers; 0 when no file holds it.
std::int64_t hugging_face_vocab_size(const ModelConfig& config, const std::filesystem::path& directory);

// SHA-256 (hex) over the bytes of `directory`'s weight files, in the order loading reads them: what
// LoRA checkpoints record of the frozen base they were trained on. UsageError as loading.
std::string hugging_face_weights_digest(const std::filesystem::path& directory);

// The model a transformers config.json describes (model_type gpt2, llama or qwen2; Llama 3's rope
// scaling or none), with Albion's defaults for what it does not say (fused kernels, no activation
// checkpointing). UsageError naming `what` and the key for another model type, a missing or
// non-integer size, another activation or rope type, a head_dim other than hidden / heads, or a
// switch Albion's layers do not compute (Llama's attention_bias and mlp_bias, Qwen 2's sliding
// window, GPT-2's scale_attn_by_inverse_layer_idx).
ModelConfig hugging_face_model_config(const nlohmann::json& json, const std::string& what);

// The hyperparameters in which a transformers config.json differs from `config`, one line each
// ("rms_norm_eps 1e-06, the preset's 1e-05"); understands transformers 4's rope_theta +
// rope_scaling and 5's rope_parameters.
std::vector<std::string> hugging_face_config_differences(const ModelConfig& config, const nlohmann::json& json);

}  // namespace albion::models
