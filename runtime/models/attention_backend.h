// File: runtime/models/attention_backend.h
// Which of torch's scaled_dot_product_attention backends (flash, cuDNN, memory-efficient, math)
// the dispatcher picks for a model's causal attention on a device and dtype: asked of torch itself
// (at::_fused_sdp_choice) with tensors of the real shape, so the log says what actually runs.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "runtime/models/model_config.h"

namespace albion::models {

// "flash_attention", "cudnn_attention", "efficient_attention", "math", ... for one sequence of
// `seq_len` tokens of `config`'s attention in `dtype` on `device`; with `document_masked`, under
// the mask of packed documents (document_attention_bias) instead of the causal flag.
std::string attention_backend(const ModelConfig& config, std::int64_t seq_len, at::Device device,
                              at::ScalarType dtype, bool document_masked = false);

}  // namespace albion::models
