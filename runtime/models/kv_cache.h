// File: runtime/models/kv_cache.h
// Keys and values of the tokens a model has already read, per attention layer, so that drawing one
// more token costs one token's forward instead of the whole context's (inference only: run under
// torch::NoGradGuard). A forward with a cache places its tokens at positions length() onwards,
// reads every cached key and value, and appends its own.
//
//   KvCache cache(model.config().context_length);
//   logits = model.forward(prompt, cache);       // positions 0 .. P-1
//   logits = model.forward(next_token, cache);   // position P
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace albion::models {

class KvCache {
 public:
  // `capacity`: the most positions it holds (the model's context length).
  explicit KvCache(std::int64_t capacity) : capacity_(capacity) {}

  std::int64_t length() const { return length_; }

  // Stores layer `layer`'s `keys` and `values` ([B, kv_heads, T, head_dim]) at positions
  // [length(), length() + T) and returns all of that layer's positions so far, [B, kv_heads,
  // length() + T, head_dim]. Storage is allocated on a layer's first call, at full capacity, in
  // the keys' dtype and device.
  std::pair<at::Tensor, at::Tensor> append(std::size_t layer, const at::Tensor& keys, const at::Tensor& values);
  // After every layer has appended the same T tokens: they are now cached.
  void advance(std::int64_t tokens);
  // Forgets positions [length, length()): the next append writes over them (a conversation's next
  // turn keeps what it shares with the last). `length` at most length().
  void truncate(std::int64_t length);

 private:
  std::int64_t capacity_;
  std::int64_t length_ = 0;
  std::vector<at::Tensor> keys_;
  std::vector<at::Tensor> values_;
};

// Causal attention of queries at positions [past, past + Tq) over keys at [0, Tk): SDPA's
// is_causal where it means exactly that (no past), no mask for a single query (it sees every
// key), an explicit lower-triangular mask otherwise. q: [B, heads, Tq, d]; k, v: [B, kv_heads, Tk,
// d]; `grouped`: fewer kv heads than query heads (GQA). `document_mask` (no past): undefined, or
// document_attention_bias's, which replaces the causal mask.
at::Tensor causal_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, std::int64_t past,
                            bool grouped, const at::Tensor& document_mask = {});

// Packed documents (Note [Attention within documents], runtime/models/causal_lm.h): from each
// token's position in its document, positions [B, T] int64 (0 where a document starts, else one
// more than the token before), the mask [B, 1, T, T] (true: may attend) that lets token i see
// tokens j <= i of its own document only, j >= i - positions[i].
at::Tensor document_causal_mask(const at::Tensor& positions);
// The same mask as SDPA adds it to the scores, in `dtype` (the queries'): 0 where a token may
// attend, -inf elsewhere. A model makes it once per forward: given the boolean mask, SDPA would
// make this itself in every layer, and keep each copy for the backward pass.
at::Tensor document_attention_bias(const at::Tensor& positions, at::ScalarType dtype);

}  // namespace albion::models
