// File: runtime/models/hf_export.h
// A trained Albion model as a Hugging Face transformers checkpoint directory (config.json +
// model.safetensors) that GPT2LMHeadModel / LlamaForCausalLM load with from_pretrained():
//
//   auto tensors = to_hugging_face(config, model->named_parameters());
//   checkpoint::write_safetensors(dir / "model.safetensors", to_safetensors(tensors),
//                                 hugging_face_safetensors_metadata());
//   write dir / "config.json" <- hugging_face_config_json(config)
//
// Note [Hugging Face names]
// Albion registers every parameter under its transformers state-dict key and in transformers'
// layout (gpt2.h, llama.h), so the mapping is the identity on names and values, checked
// against the layout transformers expects for the config:
//   - GPT-2's c_attn / c_proj / c_fc are HF Conv1D weights [in, out]; Albion's Conv1d stores them
//     that way already, so nothing is transposed. lm_head (an nn.Linear, [vocab, hidden]) exists
//     only when untied.
//   - Llama's q/k/v/o, gate/up/down projections are separate nn.Linear weights [out, in] on both
//     sides; nothing is fused, split or permuted (both use the rotate_half RoPE layout).
//   - Tied embeddings: no lm_head.weight is written (transformers re-ties it on load because
//     config.json says tie_word_embeddings = true). A state dict that still carries one is
//     accepted only if it equals the token embedding.
// If a layout ever diverges (a fused QKV, another Linear orientation), to_hugging_face is where
// the conversion goes, and its test fails until it does.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "checkpoint/export/safetensors.h"
#include "runtime/models/model_config.h"

namespace albion::models {

struct HfTensor {
  std::string name;  // transformers state-dict key
  at::Tensor value;  // contiguous, CPU, fp32 (config.json declares float32)
};

// The tensors of a transformers checkpoint for `config`, in transformers' registration order,
// from Albion's parameters by name (those of CausalLm::named_parameters(), any dtype or device).
// Values may share storage with the input. UsageError naming the parameter for a name the
// architecture does not have, a missing one, a wrong shape, or a tied lm_head.weight that differs
// from the embedding; the config is validated first. A config with vocab_padding gives the
// published vocabulary's rows only (Note [Masked vocabulary padding] in causal_lm.cpp).
std::vector<HfTensor> to_hugging_face(const ModelConfig& config,
                                      const std::vector<std::pair<std::string, at::Tensor>>& albion_parameters);

// config.json for `config` (model_type, sizes, RoPE, norm epsilon, tie_word_embeddings,
// architectures, torch_dtype "float32"), pretty-printed with a final newline. No token ids:
// bos/eos are null because they belong to the tokenizer, not the model. Dropout is 0, as trained.
std::string hugging_face_config_json(const ModelConfig& config);

// Views of `tensors` for write_safetensors; they borrow the tensors' storage, so `tensors` must
// outlive them. UsageError for a dtype safetensors cannot name.
std::vector<checkpoint::SafetensorsTensor> to_safetensors(const std::vector<HfTensor>& tensors);

// {"format": "pt"}, what save_pretrained() writes; transformers 4.x refuses a file whose metadata
// names another format.
std::map<std::string, std::string> hugging_face_safetensors_metadata();

}  // namespace albion::models
