// File: runtime/models/attention_backend.cpp
#include "runtime/models/attention_backend.h"

#include <ATen/SDPBackend.h>
#include <ATen/core/grad_mode.h>

#include <optional>

#include "runtime/models/kv_cache.h"

namespace albion::models {

std::string attention_backend(const ModelConfig& config, std::int64_t seq_len, at::Device device,
                              at::ScalarType dtype, bool document_masked) {
  at::NoGradGuard no_grad;
  const at::TensorOptions options = at::TensorOptions().device(device).dtype(dtype);
  // [batch, heads, seq, head_dim], as the models call it (k and v with their own head count).
  const at::Tensor q = at::empty({1, config.heads, seq_len, config.head_dim()}, options);
  const at::Tensor kv = at::empty({1, config.kv_heads, seq_len, config.head_dim()}, options);
  std::optional<at::Tensor> mask;  // an undefined tensor would not do: SDPA checks a mask that is there
  if (document_masked) {
    mask = document_attention_bias(at::arange(seq_len, options.dtype(at::kLong)).unsqueeze(0), dtype);
  }
  const auto choice = static_cast<at::SDPBackend>(
      at::_fused_sdp_choice(q, kv, kv, mask, 0.0, /*is_causal=*/!document_masked, std::nullopt,
                            /*enable_gqa=*/config.kv_heads != config.heads));
  switch (choice) {
    case at::SDPBackend::math: return "math";
    case at::SDPBackend::flash_attention: return "flash_attention";
    case at::SDPBackend::efficient_attention: return "efficient_attention";
    case at::SDPBackend::cudnn_attention: return "cudnn_attention";
    case at::SDPBackend::overrideable: return "overrideable";
    case at::SDPBackend::error: break;
  }
  return "none (no backend accepts these inputs)";
}

}  // namespace albion::models
