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
#pragma once

#include <filesystem>

#include "runtime/models/causal_lm.h"

namespace albion::models {

// Overwrites every parameter of `model` with the checkpoint's values. UsageError naming the file
// and tensor for a missing, unexpected or misshapen tensor, a non-floating dtype, or a directory
// without weights; IntegrityError for a file that is not valid safetensors.
void load_hugging_face_weights(CausalLm& model, const std::filesystem::path& directory);

}  // namespace albion::models
