// File: tests/support/hugging_face_directory.h
// Writes a model as a Hugging Face directory (model.safetensors, config.json): what recipe key
// model.init reads, and what transformers' from_pretrained loads.
#pragma once

#include <filesystem>
#include <fstream>

#include "checkpoint/export/safetensors.h"
#include "runtime/models/causal_lm.h"
#include "runtime/models/hf_export.h"

namespace albion::testing_support {

inline void write_hugging_face_directory(const models::CausalLm& model, const std::filesystem::path& directory) {
  std::filesystem::create_directories(directory);
  const std::vector<models::HfTensor> tensors = models::to_hugging_face(model.config(), model.named_parameters());
  checkpoint::write_safetensors(directory / "model.safetensors", models::to_safetensors(tensors),
                                models::hugging_face_safetensors_metadata());
  std::ofstream(directory / "config.json") << models::hugging_face_config_json(model.config());
}

}  // namespace albion::testing_support
