// File: runtime/models/bf16_inference.h
// A model readied to run, not train, under bf16 autocast: `albion generate` and `albion eval` on a
// GPU, where the training ran under bf16 autocast.
//
// Note [Inference in the training's precision]
// On a GPU the trainer validates and prints its text samples under bf16 autocast, as it trains, so
// `albion eval` and `albion generate` score and draw under it too: their losses and samples are the
// trainer's. Nothing trains there, so every linear layer's weight is stored in bf16 once (Note [A
// frozen base held in bf16], layers.h): the values autocast's cast would give, half the memory, no
// cast per forward, and a decoded token, whose forward reads every weight once, reads 2 bytes a
// weight instead of 4 (fp32, as these commands ran before) or 6 (a cast each token). A tied head's
// table stays fp32, as the lookup reads it in training, and keeps requires_grad, which under
// no_grad computes nothing but lets autocast keep its bf16 cast for the whole scope (autocast
// caches casts of leaves that require a gradient only) instead of casting it again every token.
#pragma once

#include <cstdint>

#include "runtime/models/causal_lm.h"

namespace albion::models {

// Freezes the model (but a tied head's table, see the Note) and holds its linear weights in bf16.
// Returns the bytes it frees. For inference only: the model cannot train afterwards.
std::int64_t hold_for_bf16_inference(CausalLm& model);

}  // namespace albion::models
