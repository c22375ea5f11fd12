// File: launch/memory_plan.h
// What one rank of a training job will hold, computed from the recipe and the rank count before
// anything starts, so a 64-GPU job that cannot fit is seen on the login node, not after the queue:
//
//   albion launch -n 64 --dry-run -- train recipes/llama3_70b.ini
//   albion launch: per rank: 8.82 B parameters held (8.82 B trained); weights 35.3 GB, gradients
//                  35.3 GB, AdamW state 8.8 GB (ZeRO-1 over 8), kept block inputs 1.3 GB: 80.7 GB
//
// Exact for the model states (fp32 weights, but for a LoRA base under bf16 autocast, whose
// frozen linear weights are bf16; fp32 gradients of what trains, AdamW's two fp32
// moments of it, sharded under ZeRO-1 and -2; ZeRO-2 also shards the gradients and adds the
// buckets it has in flight), as a tensor-parallel rank holds them: its part of every
// cut tensor, every replicated one whole (runtime/models/tensor_parallel.h), LoRA adapters
// included. Activations are counted only where activation checkpointing bounds them (the inputs
// of the recomputed blocks, this rank's tokens of them under sequence parallelism), and the
// attention mask of packed documents (data.document_masking); the rest depends on the attention
// backend and allocator.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "runtime/config/recipe.h"

namespace albion::launch {

struct RankMemory {
  std::int64_t parameters = 0;  // held by one rank
  std::int64_t trained = 0;     // of those, the ones the optimizer updates
  std::int64_t weight_bytes = 0;
  std::int64_t gradient_bytes = 0;
  std::int64_t optimizer_bytes = 0;
  bool muon = false;  // optim.name = muon: one moment for the hidden matrices
  // Muon under ZeRO: a window of its matrices gathered whole for their update, in an fp32 buffer
  // laid out as the trained parameters, and their directions reduce-scattered back to this rank's
  // part of it (Note [Muon on ZeRO's pieces]). Under DDP: a window's directions, each computed by
  // one rank, gathered in bf16 (Note [Muon's matrices spread over DDP's ranks]). The largest window's.
  std::int64_t muon_gather_bytes = 0;
  std::int64_t zero_stage = 0;         // parallel.zero
  bool gradients_sharded = false;      // ZeRO reduces every backward's gradients into a shard
  std::int64_t optimizer_shards = 1;   // data-parallel ranks sharing the AdamW state (ZeRO-1 and -2)
  std::int64_t kept_input_bytes = 0;   // inputs of the blocks activation checkpointing recomputes
  bool kept_inputs_whole = false;      // under tensor parallelism without sequence parallelism
  bool other_activations = true;       // blocks not recomputed keep their activations (not counted)
  std::int64_t document_mask_bytes = 0;  // one micro-batch's mask, shared by every layer

  std::int64_t total_bytes() const {
    return weight_bytes + gradient_bytes + optimizer_bytes + muon_gather_bytes + kept_input_bytes +
           document_mask_bytes;
  }
};

// The plan for one rank of a `world_size`-rank job of a validated `recipe` whose layout
// check_job_layout accepted; nullopt when the vocabulary comes from a dataset not yet prepared.
std::optional<RankMemory> plan_rank_memory(const config::Recipe& recipe, int world_size);

// One line: "8.82 B parameters held (...); weights 35.3 GB, ...: 90.1 GB".
std::string describe(const RankMemory& memory);

// A warning when `memory` alone exceeds a GPU of `device_bytes` (`device` names it), saying what
// would shrink it; empty when it fits. Not a refusal: the plan's activations are partial and the
// launching node's GPUs may not be the job's.
std::string device_memory_warning(const RankMemory& memory, std::int64_t device_bytes, const std::string& device);

}  // namespace albion::launch
