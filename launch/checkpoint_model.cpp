// File: launch/checkpoint_model.cpp
#include "launch/checkpoint_model.h"

#include <c10/util/accumulate.h>
#include <torch/types.h>

#include <map>
#include <sstream>

#include "runtime/base/check.h"
#include "runtime/base/progress.h"
#include "runtime/train/trainer.h"

namespace albion::launch {

namespace {

constexpr const char* kModelPrefix = "model.";

}  // namespace

CheckpointModel read_checkpoint_model(checkpoint::CheckpointReader& reader, bool terminal) {
  const std::string path = reader.path().string();
  std::istringstream ini(reader.manifest().recipe);
  CheckpointModel stored;
  stored.recipe = config::parse_recipe(ini, path + " (stored recipe)", {});
  stored.config = train::recipe_model_config(stored.recipe);
  std::vector<checkpoint::TensorInfo> weights;
  double weight_bytes = 0;
  for (const checkpoint::TensorInfo& info : reader.tensors()) {
    if (!info.name.starts_with(kModelPrefix)) continue;
    ALBION_CHECK_AS(IntegrityError, info.dtype == "F32", path, ": ", info.name, " is ", info.dtype, ", expected F32");
    weights.push_back(info);
    weight_bytes += 4.0 * static_cast<double>(c10::multiply_integers(info.global_shape));
  }
  ProgressBar bar("decrypt", weight_bytes, "MB", 1e6, terminal);
  for (const checkpoint::TensorInfo& info : weights) {
    at::Tensor values = at::empty(info.global_shape, at::kFloat);
    reader.read(info.name, 0, values.numel(),
                {static_cast<std::uint8_t*>(values.data_ptr()), static_cast<std::size_t>(values.nbytes())});
    bar.advance(static_cast<double>(values.nbytes()));
    stored.parameters.emplace_back(info.name.substr(std::string(kModelPrefix).size()), values);
  }
  bar.finish();
  ALBION_CHECK_AS(IntegrityError, !stored.parameters.empty(), path, ": the checkpoint holds no model weights");
  if (stored.config.vocab_size == 0) {  // a preset that takes it from the tokenizer: the embedding knows it
    for (const auto& [name, values] : stored.parameters) {
      if (name.ends_with("wte.weight") || name.ends_with("embed_tokens.weight")) {
        stored.config.vocab_size = values.size(0);
      }
    }
  }
  return stored;
}

std::shared_ptr<models::CausalLm> load_checkpoint_model(CheckpointModel stored, const at::Device& device,
                                                        const std::string& what) {
  stored.config.validate();
  std::shared_ptr<models::CausalLm> model = models::make_model(stored.config);
  std::map<std::string, at::Tensor> weights(std::make_move_iterator(stored.parameters.begin()),
                                            std::make_move_iterator(stored.parameters.end()));
  torch::NoGradGuard no_grad;
  for (auto& [name, parameter] : model->named_parameters()) {
    auto found = weights.find(name);
    ALBION_CHECK_AS(IntegrityError, found != weights.end(), what, ": the checkpoint has no weights for '", name, "'");
    ALBION_CHECK_AS(IntegrityError, found->second.sizes() == parameter.sizes(), what, ": '", name, "' has shape ",
                    found->second.sizes(), ", the model expects ", parameter.sizes());
    parameter.copy_(found->second);
    weights.erase(found);
  }
  ALBION_CHECK_AS(IntegrityError, weights.empty(), what, ": the checkpoint has weights the model lacks, e.g. '",
                  weights.empty() ? "" : weights.begin()->first, "'");
  model->to(device);
  return model;
}

}  // namespace albion::launch
