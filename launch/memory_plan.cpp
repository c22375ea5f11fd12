// File: launch/memory_plan.cpp
#include "launch/memory_plan.h"

#include <algorithm>
#include <cstdio>

#include "collectives/device_mesh.h"
#include "collectives/sharded_gradients.h"
#include "launch/job_layout.h"
#include "runtime/base/check.h"
#include "runtime/models/causal_lm.h"
#include "runtime/models/lora.h"
#include "runtime/models/tensor_parallel.h"
#include "runtime/parallel/muon_owners.h"
#include "runtime/train/trainer.h"

namespace albion::launch {
namespace {

constexpr std::int64_t kFp32 = 4;
constexpr std::int64_t kBf16 = 2;

struct TrainedParameter {
  std::int64_t elements = 0;  // as a rank holds them
  bool muon = false;          // a matrix Muon updates
};

// About the largest window of Muon matrices a step orthogonalizes together, kMuonMatricesPerRank per
// rank of the `data` x `tensor` mesh, taken from the last parameter back as ZeRO's buckets go:
// under ZeRO an fp32 span of the parameters from its first matrix to its last, plus this rank's
// share of it (Note [Muon on ZeRO's pieces]; the run's windows are whole buckets); under DDP the
// matrices alone, in bf16 (Note [Muon's matrices spread over DDP's ranks]).
std::int64_t muon_window_bytes(const std::vector<TrainedParameter>& trained, bool zero, std::int64_t data,
                               std::int64_t tensor) {
  const std::size_t per_window = parallel::kMuonMatricesPerRank * static_cast<std::size_t>(data * tensor);
  std::int64_t most = 0;
  std::int64_t span = 0;          // elements from the window's first matrix on
  std::int64_t through_last = 0;  // from its first matrix through its latest
  std::int64_t matrices = 0;      // elements of its matrices
  std::size_t count = 0;          // its matrices
  auto close = [&] {
    most = std::max(most, zero ? kFp32 * (through_last + through_last / data) : kBf16 * matrices);
    span = through_last = matrices = 0;
    count = 0;
  };
  for (auto parameter = trained.rbegin(); parameter != trained.rend(); ++parameter) {
    if (!parameter->muon) {
      if (count > 0) span += parameter->elements;
      continue;
    }
    span += parameter->elements;
    through_last = span;
    matrices += parameter->elements;
    if (++count == per_window) close();
  }
  if (count > 0) close();
  return most;
}

// `value` in thousand millions (`decimals` after the point) from 1e9, else in millions.
std::string in_units(std::int64_t value, int decimals, const char* billions, const char* millions) {
  char text[32];
  if (value >= 1'000'000'000) {
    std::snprintf(text, sizeof text, "%.*f %s", decimals, static_cast<double>(value) / 1e9, billions);
  } else {
    std::snprintf(text, sizeof text, "%.1f %s", static_cast<double>(value) / 1e6, millions);
  }
  return text;
}

std::string gigabytes(std::int64_t bytes) { return in_units(bytes, 1, "GB", "MB"); }
std::string billions(std::int64_t count) { return in_units(count, 2, "B", "M"); }

}  // namespace

std::optional<RankMemory> plan_rank_memory(const config::Recipe& recipe, int world_size) {
  const models::ModelConfig config = planned_model_config(recipe);
  if (config.vocab_size == 0) return std::nullopt;  // not prepared yet, or sealed under a key
  const collectives::DeviceMesh mesh(world_size, static_cast<int>(recipe.parallel.tensor),
                                     static_cast<int>(recipe.parallel.pipeline));
  // Shapes only: the whole model on the meta device, each tensor then counted as a rank holds it.
  const std::shared_ptr<models::CausalLm> model = models::make_model(config, at::kMeta);
  // Under bf16 autocast, which runs on GPUs.
  const bool bf16_autocast = recipe.run.device != "cpu" && recipe.precision.dtype != "fp32";
  if (recipe.lora.rank > 0) {
    models::add_lora_adapters(*model, train::recipe_lora_options(recipe));
    if (bf16_autocast) models::hold_frozen_weights_in_bf16(*model);  // Note [A frozen base held in bf16]
  }
  auto held = [&](const std::string& name, const at::Tensor& tensor) {
    return tensor.numel() / (models::tensor_parallel_split(name).cut() ? mesh.tensor() : 1);
  };
  RankMemory memory;
  for (const auto& [name, tensor] : model->named_parameters()) {
    memory.parameters += held(name, tensor);
    memory.weight_bytes += held(name, tensor) * static_cast<std::int64_t>(tensor.element_size());
  }
  std::int64_t moments = 0;  // fp32 tensors of optimizer state: AdamW's two, Muon's one
  std::vector<TrainedParameter> trained;  // in the optimizer's (the flat buffer's) order
  for (const auto& [name, tensor] : model->trainable_parameters()) {
    memory.trained += held(name, tensor);
    const bool muon = train::takes_muon(recipe, *model, name, tensor);
    moments += held(name, tensor) * (muon ? 1 : 2);
    trained.push_back({held(name, tensor), muon});
  }
  memory.muon = recipe.optim.name == "muon";
  memory.zero_stage = recipe.parallel.zero;
  memory.optimizer_shards = recipe.parallel.zero >= 1 ? mesh.data() : 1;
  // ZeRO reduces every backward's gradients into its shard (ZeRO-2; ZeRO-1 when a step has one
  // micro-batch) and then holds the shard and its buckets in flight (collectives/sharded_gradients.h).
  memory.gradients_sharded = recipe.parallel.zero == 2 ||
                             (recipe.parallel.zero == 1 && recipe.train.accumulation_steps(mesh.data()) == 1);
  memory.gradient_bytes = memory.gradients_sharded
                              ? kFp32 * memory.trained / mesh.data() +
                                    static_cast<std::int64_t>(collectives::kBucketsInFlight + 1) *
                                        static_cast<std::int64_t>(recipe.parallel.bucket_mb * (1 << 20))
                              : kFp32 * memory.trained;
  memory.optimizer_bytes = kFp32 * moments / memory.optimizer_shards;
  if (memory.muon && (recipe.parallel.zero >= 1 || mesh.data() > 1)) {
    memory.muon_gather_bytes = muon_window_bytes(trained, recipe.parallel.zero >= 1, mesh.data(), mesh.tensor());
  }
  const std::int64_t every = config.recompute_every;
  if (every > 0) {
    const std::int64_t recomputed = (config.layers + every - 1) / every;
    memory.kept_input_bytes =
        recomputed * recipe.train.micro_batch * recipe.train.seq_len * config.hidden_size * kFp32;
    // Sequence parallelism: each rank keeps its tokens (the recipe checked that they divide).
    if (config.sequence_parallel) memory.kept_input_bytes /= mesh.tensor();
    memory.kept_inputs_whole = !config.sequence_parallel && mesh.tensor() > 1;
    memory.other_activations = every > 1;
  }
  if (recipe.data.document_masking) {  // in the queries' dtype (Note [Attention within documents])
    memory.document_mask_bytes =
        recipe.train.micro_batch * recipe.train.seq_len * recipe.train.seq_len * (bf16_autocast ? 2 : kFp32);
  }
  return memory;
}

std::string describe(const RankMemory& memory) {
  std::string line = billions(memory.parameters) + " parameters held (" + billions(memory.trained) +
                     " trained); weights " + gigabytes(memory.weight_bytes) + ", gradients " +
                     gigabytes(memory.gradient_bytes);
  if (memory.gradients_sharded) line += " (a shard and the buckets in flight)";
  line += (memory.muon ? ", Muon and AdamW state " : ", AdamW state ") + gigabytes(memory.optimizer_bytes);
  if (memory.optimizer_shards > 1) {
    line += str_cat(" (ZeRO-", memory.zero_stage, " over ", memory.optimizer_shards, ")");
  }
  if (memory.muon_gather_bytes > 0) line += ", Muon's matrices gathered " + gigabytes(memory.muon_gather_bytes);
  if (memory.kept_input_bytes > 0) line += ", kept block inputs " + gigabytes(memory.kept_input_bytes);
  if (memory.document_mask_bytes > 0) line += ", document mask " + gigabytes(memory.document_mask_bytes);
  line += ": " + gigabytes(memory.total_bytes());
  if (memory.other_activations) line += ", plus the activations of blocks not recomputed";
  return line;
}

std::string device_memory_warning(const RankMemory& memory, std::int64_t device_bytes, const std::string& device) {
  if (memory.total_bytes() <= device_bytes) return "";
  return str_cat("a rank will hold ", gigabytes(memory.total_bytes()), ", more than the ", gigabytes(device_bytes),
                 " of this node's ", device, ": more tensor-parallel ranks (parallel.tensor), ",
                 memory.kept_inputs_whole ? "sequence parallelism (parallel.sequence), " : "",
                 memory.gradients_sharded ? "" : str_cat("ZeRO-", memory.zero_stage + 1, " (parallel.zero = ",
                                                         memory.zero_stage + 1, "), "),
                 "LoRA (lora.rank) or activation checkpointing ",
                 "(model.activation_checkpointing) would shrink it");
}

}  // namespace albion::launch
