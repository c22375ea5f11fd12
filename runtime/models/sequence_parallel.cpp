// File: runtime/models/sequence_parallel.cpp
#include "runtime/models/sequence_parallel.h"

#include <algorithm>

#include "runtime/base/check.h"
#include "runtime/models/tensor_parallel.h"

namespace albion::models {

ResidualStream::ResidualStream(std::shared_ptr<collectives::Communicator> group, bool sequence_parallel,
                               const at::Tensor& input_ids)
    : group_(std::move(group)), batch_(input_ids.size(0)), length_(input_ids.size(1)) {
  if (!group_ || !sequence_parallel) return;
  const std::int64_t tokens = batch_ * length_;
  cut_by_tokens_ = tokens % group_->size() == 0;
  // Without gradients a batch that does not divide simply stays whole (a shorter last window,
  // a prompt); with them, the norms' partial gradients would be summed as if it had been cut.
  ALBION_CHECK_AS(UsageError, cut_by_tokens_ || !at::GradMode::is_enabled(), "sequence parallelism "
                  "(recipe key 'parallel.sequence') cuts a batch's tokens over the ", group_->size(),
                  " tensor-parallel ranks, and ", batch_, " x ", length_, " tokens do not divide evenly");
}

at::Tensor ResidualStream::to_layer(const at::Tensor& x) const {
  if (!group_) return x;
  if (!cut_by_tokens_) return enter_tensor_parallel(x, group_);
  return gather_tokens(x, group_).view({batch_, length_, -1});
}

std::vector<at::Tensor> ResidualStream::project(const at::Tensor& x, const std::vector<const AdaptableLinear*>& layers,
                                                Bias bias) const {
  std::vector<at::Tensor> outputs;
  const bool keep_part =
      cut_by_tokens_ && gather_again_ && at::GradMode::is_enabled() &&
      std::ranges::all_of(layers, [](const AdaptableLinear* l) { return l->adapter_sees_layer_input(); });
  if (!keep_part) {
    const at::Tensor whole = to_layer(x);
    for (const AdaptableLinear* layer : layers) {
      outputs.push_back(bias == Bias::kWith ? layer->forward(whole) : layer->forward_without_bias(whole));
    }
    return outputs;
  }
  // The layers' weights, then their adapters' A: all multiply the same input.
  std::vector<at::Tensor> weights, biases;
  for (const AdaptableLinear* layer : layers) {
    weights.push_back(layer->linear_weight());
    biases.push_back(bias == Bias::kWith ? layer->bias() : at::Tensor());
  }
  for (const AdaptableLinear* layer : layers) {
    if (!layer->has_lora()) continue;
    weights.push_back(layer->lora_a());
    biases.emplace_back();
  }
  const std::vector<at::Tensor> products = gathered_products(x, weights, biases, group_);
  std::size_t adapter = layers.size();
  for (const AdaptableLinear* layer : layers) {
    const at::Tensor& y = products[outputs.size()];
    const at::Tensor xa = layer->has_lora() ? products[adapter++] : at::Tensor();
    outputs.push_back(layer->with_lora_product(y, xa).view({batch_, length_, -1}));
  }
  return outputs;
}

at::Tensor ResidualStream::own_tokens(const at::Tensor& ids) const {
  if (!cut_by_tokens_) return ids;
  return tensor_parallel_part(ids.expand({batch_, length_}).reshape({-1}), 0, group_->rank(), group_->size());
}

ResidualStream ResidualStream::recomputed() const {
  ResidualStream stream = *this;
  stream.gather_again_ = false;
  return stream;
}

at::Tensor ResidualStream::from_layer(const at::Tensor& partial) const {
  if (!group_) return partial;
  if (!cut_by_tokens_) return leave_tensor_parallel(partial, group_);
  return scatter_tokens(partial.reshape({batch_ * length_, -1}), group_);
}

}  // namespace albion::models
