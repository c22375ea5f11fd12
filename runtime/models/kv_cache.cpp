// File: runtime/models/kv_cache.cpp
#include "runtime/models/kv_cache.h"

#include <limits>

#include "runtime/base/check.h"

namespace albion::models {

std::pair<at::Tensor, at::Tensor> KvCache::append(std::size_t layer, const at::Tensor& keys,
                                                  const at::Tensor& values) {
  const std::int64_t tokens = keys.size(2);
  ALBION_CHECK_AS(UsageError, length_ + tokens <= capacity_, "KV cache: ", length_, " + ", tokens,
                  " positions exceed the context length ", capacity_);
  if (keys_.size() <= layer) {
    keys_.resize(layer + 1);
    values_.resize(layer + 1);
  }
  if (!keys_[layer].defined()) {
    keys_[layer] = at::empty({keys.size(0), keys.size(1), capacity_, keys.size(3)}, keys.options());
    values_[layer] = at::empty({values.size(0), values.size(1), capacity_, values.size(3)}, values.options());
  }
  keys_[layer].narrow(2, length_, tokens).copy_(keys);
  values_[layer].narrow(2, length_, tokens).copy_(values);
  return {keys_[layer].narrow(2, 0, length_ + tokens), values_[layer].narrow(2, 0, length_ + tokens)};
}

void KvCache::advance(std::int64_t tokens) { length_ += tokens; }

void KvCache::truncate(std::int64_t length) {
  ALBION_CHECK(length >= 0 && length <= length_, "KV cache: cannot keep ", length, " of its ", length_, " positions");
  length_ = length;
}

at::Tensor causal_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, std::int64_t past,
                            bool grouped, const at::Tensor& document_mask) {
  if (document_mask.defined()) {
    ALBION_CHECK(past == 0, "a document mask is for whole sequences, not a KV-cached forward");
    // A bias in another dtype than the queries' (a model held in bf16, run without autocast) is cast.
    return at::scaled_dot_product_attention(q, k, v, document_mask.to(q.scalar_type()), 0.0, /*is_causal=*/false,
                                            std::nullopt, grouped);
  }
  const std::int64_t queries = q.size(2);
  if (past == 0 || queries == 1) {
    return at::scaled_dot_product_attention(q, k, v, {}, 0.0, /*is_causal=*/past == 0, std::nullopt, grouped);
  }
  // SDPA's is_causal aligns the mask to the top left; query i sits at position past + i.
  const at::Tensor mask =
      at::ones({queries, k.size(2)}, at::TensorOptions().dtype(at::kBool).device(q.device())).tril(past);
  return at::scaled_dot_product_attention(q, k, v, mask, 0.0, /*is_causal=*/false, std::nullopt, grouped);
}

at::Tensor document_causal_mask(const at::Tensor& positions) {
  ALBION_CHECK(positions.dim() == 2 && positions.scalar_type() == at::kLong, "positions must be [B, T] int64, got ",
               positions.sizes(), " ", positions.scalar_type());
  const at::Tensor index = at::arange(positions.size(1), positions.options());
  const at::Tensor query = index.view({1, -1, 1});
  const at::Tensor key = index.view({1, 1, -1});
  const at::Tensor document_start = (index - positions).unsqueeze(2);  // [B, T, 1]
  return ((key <= query) & (key >= document_start)).unsqueeze(1);
}

at::Tensor document_attention_bias(const at::Tensor& positions, at::ScalarType dtype) {
  const at::Tensor allowed = document_causal_mask(positions);
  return at::zeros(allowed.sizes(), positions.options().dtype(dtype))
      .masked_fill_(allowed.logical_not(), -std::numeric_limits<double>::infinity());
}

}  // namespace albion::models
