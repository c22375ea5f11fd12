// File: kernels/cross_entropy/linear_cross_entropy.h
// The LM head's projection and softmax cross-entropy in one step, in chunks of rows, so the
// [tokens, vocab] logits never exist whole (8,192 tokens x 128,256 vocabulary is 4.2 GB in fp32,
// and eager autograd keeps that plus its gradient). When gradients are wanted, the forward turns
// each chunk's logits into their gradient in place (softmax_cross_entropy.h) and multiplies it
// into the hidden states' and the weight's gradients right away, so nothing is recomputed: the
// same three matrix products as eager, one chunk of logits alive at a time. Backward only scales
// the two gradients by the incoming one. The products run in whatever dtype torch picks (bf16
// under autocast); the softmax statistics are fp32 (fp64 for fp64 inputs).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <utility>

namespace albion::kernels {

// One chunk's softmax cross-entropy: the per-row losses [rows] (fp32, fp64 for fp64 logits; 0 where
// the target is ignore_index) of `logits` [rows, V'] and, with `write_gradient`, their gradient
// with respect to the logits, in the logits' dtype (it may reuse the logits' memory). V' is the
// weight's V rows, or more where the products are padded: the columns from V on are then -inf, no
// target is among them, and their gradient is dropped.
using ChunkCrossEntropy = std::function<std::pair<at::Tensor, at::Tensor>(
    at::Tensor logits, const at::Tensor& targets, std::int64_t ignore_index, bool write_gradient)>;

// hidden [N, H]; weight [V, H] (the LM head or the tied embedding); targets [N] int64, rows whose
// target is `ignore_index` contribute nothing. Returns the SUM of the per-row losses (fp32, fp64
// for fp64 inputs), differentiable in hidden and weight. `chunk_rows` bounds the logits held at
// once to chunk_rows x V; 0 picks as many rows as fit 1 GiB of fp32 logits (fewer, larger chunks
// keep the matrix products efficient and the weight gradient's per-chunk accumulation rare). On a
// GPU the products see the vocabulary padded to a multiple of 64 (Note [Padded vocabulary] in the
// .cpp); the result is the unpadded one's. A target outside [0, V) that is not ignore_index is a
// UsageError on the CPU and a NaN or infinite loss on a GPU (checking it there would wait for it).
at::Tensor linear_cross_entropy_sum(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                                    std::int64_t ignore_index = -100, std::int64_t chunk_rows = 0);

// The same chunked products with another softmax: `chunk_loss` (for a vocabulary cut over ranks,
// runtime/models/tensor_parallel.h, whose statistics span every rank's columns). `pad_vocabulary`:
// whether the products see the vocabulary padded to a multiple of 64; by default, where they run
// on cuBLAS, as above.
at::Tensor linear_cross_entropy_sum(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                                    std::int64_t ignore_index, std::int64_t chunk_rows,
                                    const ChunkCrossEntropy& chunk_loss,
                                    std::optional<bool> pad_vocabulary = std::nullopt);

}  // namespace albion::kernels
