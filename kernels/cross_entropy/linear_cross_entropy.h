// File: kernels/cross_entropy/linear_cross_entropy.h
// The LM head's projection and softmax cross-entropy in one step, in chunks of rows, so the
// [tokens, vocab] logits never exist whole (8,192 tokens x 128,256 vocabulary is 4.2 GB in fp32,
// and eager autograd keeps that plus its gradient). Forward keeps only each row's log-sum-exp;
// backward recomputes each chunk's logits, turns them into softmax - one_hot, and accumulates the
// hidden states' and the weight's gradients chunk by chunk. Device-agnostic (torch ops; the
// matrix products are the GPU's GEMMs), with the logits in fp32 whatever the inputs' dtype.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace albion::kernels {

// hidden [N, H]; weight [V, H] (the LM head or the tied embedding); targets [N] int64, rows whose
// target is `ignore_index` contribute nothing. Returns the SUM of the per-row losses (fp32, fp64
// for fp64 inputs), differentiable in hidden and weight. `chunk_rows` bounds the logits held at
// once to chunk_rows x V.
at::Tensor linear_cross_entropy_sum(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                                    std::int64_t ignore_index = -100, std::int64_t chunk_rows = 1024);

}  // namespace albion::kernels
