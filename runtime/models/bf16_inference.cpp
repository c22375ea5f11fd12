// File: runtime/models/bf16_inference.cpp
#include "runtime/models/bf16_inference.h"

#include "runtime/models/lora.h"

namespace albion::models {

std::int64_t hold_for_bf16_inference(CausalLm& model) {
  for (at::Tensor& parameter : model.parameters()) parameter.set_requires_grad(false);
  const std::int64_t freed = hold_frozen_weights_in_bf16(model);
  if (model.config().tie_embeddings) model.output_weight().set_requires_grad(true);  // Note: for the cast cache
  return freed;
}

}  // namespace albion::models
