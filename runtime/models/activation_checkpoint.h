// File: runtime/models/activation_checkpoint.h
// Activation checkpointing: a transformer block whose activations are not kept for the backward
// pass but computed again there, trading one more forward of the block for the memory of
// everything inside it (attention and MLP intermediates, norms' inputs); only the block's input
// stays. The recomputation sees what the forward saw: the same random draws (dropout; the CPU
// generator and the input's CUDA generator are rewound) and the same bf16 autocast setting, so
// the gradients are those of the plain forward.
//
// Reentrant, like torch.utils.checkpoint(use_reentrant=True): the backward of the recomputed block
// runs as its own backward pass, which accumulates the block's parameter gradients (firing the
// data-parallel gradient hooks as usual) and returns the input's gradient. The output requires a
// gradient even when the input does not (a frozen embedding under LoRA), so the adapters inside
// still train.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>

namespace albion::models {

using BlockForward = std::function<at::Tensor(const at::Tensor&)>;

// `block(input)`, its activations recomputed in the backward pass. `block` must be a pure function
// of `input`, the parameters and the random generators; it is kept until the backward pass.
at::Tensor recomputed_in_backward(BlockForward block, const at::Tensor& input);

// Whether block `index` is checkpointed when every `every`-th block is (0: none, 1: all, 2: every
// second, ...): only when training with autograd, never while decoding with a cache.
bool recompute_block(std::int64_t every, std::size_t index, bool training, bool decoding);

}  // namespace albion::models
