// File: runtime/train/checkpointing.cpp
#include "runtime/train/checkpointing.h"

#include <ATen/Context.h>
#include <ATen/core/Generator.h>
#include <c10/util/accumulate.h>

#include <chrono>
#include <exception>
#include <nlohmann/json.hpp>

#include "checkpoint/audit/audit_log.h"
#include "checkpoint/format/audited_load.h"
#include "checkpoint/format/checkpoint_directory.h"
#include "checkpoint/format/checkpoint_reader.h"
#include "runtime/base/check.h"
#include "runtime/base/log.h"
#include "runtime/models/safetensors_dtype.h"
#include "runtime/models/tensor_parallel.h"
#include "runtime/train/trainer.h"
#include "runtime/train/training_state.h"

namespace albion::train {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// `object`'s string at `key`; "" when it has none or another type, which json's value() would
// throw for (a plaintext checkpoint's state is not authenticated).
std::string string_field(const nlohmann::json& object, const char* key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

// The types a checkpoint holds: parameters and optimizer state (floating point), step counters
// (I64, I32) and generator states (U8); a shard naming another is refused.
bool checkpoint_type(at::ScalarType type) {
  return at::isFloatingType(type) || type == at::kLong || type == at::kInt || type == at::kByte;
}

std::string dtype_name(at::ScalarType type) {
  const std::optional<std::string_view> name = models::safetensors_dtype(type);
  ALBION_CHECK_AS(SystemError, name && checkpoint_type(type), "checkpoint: cannot store tensors of type ",
                  at::toString(type));
  return std::string(*name);
}

at::ScalarType scalar_type(const std::string& dtype, const std::string& name) {
  const std::optional<at::ScalarType> type = models::scalar_type_of(dtype);
  ALBION_CHECK_AS(IntegrityError, type && checkpoint_type(*type), "checkpoint: tensor ", name,
                  " has unsupported dtype ", dtype);
  return *type;
}

// The random generators a rank draws from: the CPU one and, on GPU runs, its device's.
std::vector<std::pair<std::string, at::Generator>> generators(Trainer& trainer) {
  std::vector<std::pair<std::string, at::Generator>> out = {{"cpu", at::detail::getDefaultCPUGenerator()}};
  if (trainer.device().is_cuda()) out.emplace_back("cuda", at::globalContext().defaultGenerator(trainer.device()));
  return out;
}

std::string rng_tensor_name(const std::string& generator, int rank) {
  return str_cat("rng.", generator, ".rank", rank);
}

// A rank's state, copied to CPU memory: the trainer may go on while it is written.
struct Snapshot {
  std::vector<at::Tensor> tensors;  // own the bytes the request's slices point at
  checkpoint::SaveRequest request;
};

std::unique_ptr<Snapshot> take_snapshot(Trainer& trainer, std::int64_t steps_done, int rank,
                                        const std::string& recipe_ini, SnapshotBuffers& buffers) {
  TrainingState state = capture_training_state(trainer, steps_done, &buffers);
  auto snapshot = std::make_unique<Snapshot>();
  auto add = [&](const std::string& name, const std::vector<std::int64_t>& shape, std::int64_t offset,
                 at::Tensor data, bool transposed) {
    data = data.contiguous();
    snapshot->request.slices.push_back(
        {name, dtype_name(data.scalar_type()), shape, offset, data.numel(),
         {static_cast<const std::uint8_t*>(data.data_ptr()), static_cast<std::size_t>(data.nbytes())}, transposed});
    snapshot->tensors.push_back(std::move(data));
  };
  for (StateSlice& slice : state.slices) {
    add(slice.name, slice.global_shape, slice.offset, std::move(slice.data), slice.transposed);
  }
  for (auto& [name, generator] : generators(trainer)) {
    at::Tensor rng = generator.get_state();
    add(rng_tensor_name(name, rank), {rng.numel()}, 0, rng, false);
  }
  snapshot->request.step = steps_done;
  snapshot->request.recipe = recipe_ini;
  snapshot->request.data_parallel_size = trainer.parallelism().data_parallel_size();
  nlohmann::json state_json = {{"steps_done", state.steps_done},
                                {"optimizer_steps", state.optimizer_steps},
                                {"loader",
                                 {{"epoch", state.loader.epoch},
                                  {"consumed", state.loader.consumed},
                                  {"packing", trainer.recipe().data.packing}}},
                                {"optimizer", trainer.recipe().optim.name}};
  if (!trainer.tokenizer_spec().empty()) {
    state_json["tokenizer"] = {{"spec", trainer.tokenizer_spec()}, {"hash", trainer.tokenizer_hash()}};
    if (!trainer.chat_template().empty()) state_json["tokenizer"]["chat_template"] = trainer.chat_template();
  }
  if (!trainer.lora_base().empty()) {
    const LoraBase& base = trainer.lora_base();
    state_json["lora_base"] = {{"directory", base.directory}, {"sha256", base.sha256}, {"vocab_size", base.vocab_size}};
  }
  if (const std::int64_t padding = trainer.model().config().vocab_padding; padding > 0) {
    state_json["model"] = {{"vocab_padding", padding}};
  }
  snapshot->request.state_json = state_json.dump();
  return snapshot;
}

TrainingState parse_state(const std::string& json_text, const std::string& what) {
  try {
    const nlohmann::json j = nlohmann::json::parse(json_text);
    TrainingState state;
    state.steps_done = j.at("steps_done").get<std::int64_t>();
    state.optimizer_steps = j.at("optimizer_steps").get<std::int64_t>();
    state.loader.epoch = j.at("loader").at("epoch").get<std::uint64_t>();
    state.loader.consumed = j.at("loader").at("consumed").get<std::uint64_t>();
    ALBION_CHECK_AS(IntegrityError, state.steps_done >= 0 && state.optimizer_steps >= 0, what, ": negative step count");
    return state;
  } catch (const nlohmann::json::exception& error) {
    throw IntegrityError(str_cat(what, ": trainer state is malformed: ", error.what()));
  }
}

// The loader's position counts sequences as the run that saved it cut them.
void check_same_packing(const Trainer& trainer, const std::string& state_json, const fs::path& path) {
  const nlohmann::json state = nlohmann::json::parse(state_json, nullptr, /*allow_exceptions=*/false);
  std::string recorded = state.is_object() && state.contains("loader") ? string_field(state["loader"], "packing") : "";
  if (recorded.empty()) recorded = "stream";  // written before data.packing existed
  const std::string& current = trainer.recipe().data.packing;
  ALBION_CHECK_AS(UsageError, recorded == current, path.string(), ": the checkpoint's data position counts ",
                  recorded, " sequences, but recipe key 'data.packing' = ", current,
                  "; resume with the packing it was written with, or choose another checkpoint.dir");
}

// The optimizer's state is AdamW's moments, or for Muon's matrices one momentum: resumed by the same.
void check_same_optimizer(const Trainer& trainer, const std::string& state_json, const fs::path& path) {
  const nlohmann::json state = nlohmann::json::parse(state_json, nullptr, /*allow_exceptions=*/false);
  std::string recorded = state.is_object() ? string_field(state, "optimizer") : "";
  if (recorded.empty()) recorded = "adamw";  // written before optim.name existed
  const std::string& current = trainer.recipe().optim.name;
  ALBION_CHECK_AS(UsageError, recorded == current, path.string(), ": the checkpoint holds ", recorded,
                  "'s state, but recipe key 'optim.name' = ", current,
                  "; resume with the optimizer it was written with, or choose another checkpoint.dir");
}

// A resume continues adapters on the base they were trained on, or a whole model as a whole model.
void check_same_lora_base(const Trainer& trainer, const LoraBase& recorded, const fs::path& path) {
  const LoraBase& current = trainer.lora_base();
  if (recorded.empty() && current.empty()) return;
  ALBION_CHECK_AS(UsageError, !recorded.empty() && !current.empty(), path.string(), ": the checkpoint holds ",
                  recorded.empty() ? "a whole model, but the recipe trains LoRA adapters (lora.rank)"
                                   : "LoRA adapters, but the recipe trains the whole model (lora.rank = 0)",
                  "; resume with the recipe it was written with, or choose another checkpoint.dir");
  require_same_lora_base(recorded, current.directory, current.sha256, path.string());
}

std::uint64_t request_bytes(const checkpoint::SaveRequest& request) {
  std::uint64_t bytes = 0;
  for (const checkpoint::TensorSlice& slice : request.slices) bytes += slice.bytes.size();
  return bytes;
}

}  // namespace

RecordedTokenizer recorded_tokenizer(const std::string& state_json) {
  const nlohmann::json state = nlohmann::json::parse(state_json, nullptr, /*allow_exceptions=*/false);
  if (!state.is_object() || !state.contains("tokenizer") || !state["tokenizer"].is_object()) return {};
  const nlohmann::json& tokenizer = state["tokenizer"];
  return {string_field(tokenizer, "spec"), string_field(tokenizer, "hash"), string_field(tokenizer, "chat_template")};
}

LoraBase recorded_lora_base(const std::string& state_json) {
  const nlohmann::json state = nlohmann::json::parse(state_json, nullptr, /*allow_exceptions=*/false);
  if (!state.is_object() || !state.contains("lora_base") || !state["lora_base"].is_object()) return {};
  const nlohmann::json& base = state["lora_base"];
  const nlohmann::json vocab = base.value("vocab_size", nlohmann::json());
  return {string_field(base, "directory"), string_field(base, "sha256"),
          vocab.is_number_integer() ? vocab.get<std::int64_t>() : 0};
}

std::int64_t recorded_vocab_padding(const std::string& state_json, const std::string& what) {
  const nlohmann::json state = nlohmann::json::parse(state_json, nullptr, /*allow_exceptions=*/false);
  if (!state.is_object() || !state.contains("model")) return 0;
  const nlohmann::json padding = state["model"].is_object() ? state["model"].value("vocab_padding", nlohmann::json(0))
                                                            : nlohmann::json();
  ALBION_CHECK_AS(IntegrityError, padding.is_number_integer() && padding.get<std::int64_t>() >= 0, what,
                  ": the trainer state's model.vocab_padding is not a count of rows");
  return padding.get<std::int64_t>();
}

std::optional<StoredVocabulary> stored_vocabulary(const checkpoint::CheckpointReader& reader) {
  constexpr std::string_view kWeight = "model.";  // a weight's name in the state (training_state.cpp)
  for (const checkpoint::TensorInfo& info : reader.tensors()) {
    if (info.name.starts_with(kWeight) && models::holds_vocabulary_rows(info.name.substr(kWeight.size())) &&
        !info.global_shape.empty()) {
      return StoredVocabulary{info.global_shape.front(),
                              recorded_vocab_padding(reader.manifest().state_json, reader.path().string())};
    }
  }
  return std::nullopt;
}

void require_same_lora_base(const LoraBase& recorded, const std::string& current_directory,
                            const std::string& current_sha256, const std::string& what) {
  ALBION_CHECK_AS(IntegrityError, recorded.sha256 == current_sha256, what,
                  ": its LoRA adapters were trained on base weights with SHA-256 ", recorded.sha256.substr(0, 16),
                  "..., but ", current_directory, " now holds weights with SHA-256 ", current_sha256.substr(0, 16),
                  "...");
}

CheckpointHooks::CheckpointHooks(CheckpointSettings settings, checkpoint::RankGroup& group)
    : settings_(std::move(settings)), group_(group), writer_(settings_.options, group) {}

CheckpointHooks::~CheckpointHooks() {
  if (in_flight_.joinable()) in_flight_.join();
  if (failure_) {
    try {
      std::rethrow_exception(failure_);
    } catch (const std::exception& error) {
      log::error("checkpoint: ", error.what());
    }
  }
}

const std::string& CheckpointHooks::chosen_checkpoint() {
  if (chosen_) return *chosen_;
  // Rank 0 chooses, so every rank loads the same checkpoint even if a save lands meanwhile.
  std::string chosen;
  if (group_.rank() == 0) {
    if (std::optional<checkpoint::CommittedCheckpoint> newest =
            checkpoint::newest_checkpoint(settings_.options.directory)) {
      chosen = newest->path.filename().string();
    }
  }
  chosen_ = group_.broadcast(chosen);
  return *chosen_;
}

std::optional<StoredVocabulary> CheckpointHooks::resumed_vocabulary() {
  const std::string& chosen = chosen_checkpoint();
  if (chosen.empty()) return std::nullopt;
  try {
    // Kept for resume(): the manifest is read and the data key unwrapped (an HSM call) once.
    opened_ = std::make_unique<checkpoint::CheckpointReader>(settings_.options.directory / chosen,
                                                             settings_.options.key, settings_.options.shard.threads);
    return stored_vocabulary(*opened_);
  } catch (const std::exception&) {
    opened_.reset();
    return std::nullopt;  // resume() opens it again, and reports (and audits) why it cannot
  }
}

std::int64_t CheckpointHooks::resume(Trainer& trainer) {
  const fs::path directory = settings_.options.directory;
  const std::string& chosen = chosen_checkpoint();
  if (chosen.empty()) {
    log::info("no checkpoint in ", directory.string(), ": starting from step 0");
    reserve_buffers(trainer);
    return 0;
  }
  const fs::path path = directory / chosen;
  const std::string key_id = settings_.options.key != nullptr ? settings_.options.key->key_id() : "";
  const auto start = Clock::now();
  std::int64_t steps = 0;
  std::exception_ptr failure;  // each rank's, made the job's below so that none waits for a peer
  try {
    const std::unique_ptr<checkpoint::CheckpointReader> opened =
        opened_ ? std::move(opened_)
                : std::make_unique<checkpoint::CheckpointReader>(path, settings_.options.key,
                                                                 settings_.options.shard.threads);
    checkpoint::CheckpointReader& reader = *opened;
    const TrainingState header = parse_state(reader.manifest().state_json, path.string());
    auto info = [&](const std::string& name) {
      std::optional<checkpoint::TensorInfo> found = reader.tensor(name);
      ALBION_CHECK_AS(IntegrityError, found.has_value(), path.string(), ": the checkpoint has no tensor '", name, "'");
      return *found;
    };
    auto read = [&](const std::string& name, std::int64_t offset, std::int64_t numel) {
      at::Tensor out = at::empty({numel}, at::TensorOptions().dtype(scalar_type(info(name).dtype, name)));
      reader.read(name, offset, numel,
                  {static_cast<std::uint8_t*>(out.data_ptr()), static_cast<std::size_t>(out.nbytes())});
      return out;
    };
    const auto transposed = [&](const std::string& name) { return info(name).transposed; };
    const auto elements = [&](const std::string& name) { return c10::multiply_integers(info(name).global_shape); };
    const StoredTensors stored{read, transposed, elements};
    check_same_lora_base(trainer, recorded_lora_base(reader.manifest().state_json), path);
    check_same_packing(trainer, reader.manifest().state_json, path);
    check_same_optimizer(trainer, reader.manifest().state_json, path);
    steps = restore_training_state(trainer, header, stored);
    for (auto& [name, generator] : generators(trainer)) {
      // This rank's generator if the checkpoint has it; with more ranks than it was saved from, rank 0's.
      std::string rng = rng_tensor_name(name, group_.rank());
      if (!reader.tensor(rng)) rng = rng_tensor_name(name, 0);
      if (const std::optional<checkpoint::TensorInfo> found = reader.tensor(rng)) {
        generator.set_state(read(rng, 0, found->stored_elements));
      }
    }
  } catch (...) {
    failure = std::current_exception();
  }
  // A rank reads only its part: rank 0 records whether every rank's read was authentic.
  checkpoint::settle_audited_load(group_, group_.rank() == 0 ? settings_.options.audit : nullptr, path.string(),
                                  key_id, "", failure);
  log::info("resumed from ", path.string(), " at step ", steps, " (loaded in ", seconds_since(start), " s)");
  last_saved_ = steps;
  reserve_buffers(trainer);
  return steps;
}

void CheckpointHooks::reserve_buffers(Trainer& trainer) {
  if (settings_.interval == 0 || !settings_.async) return;  // no saves, or no snapshot to hold
  const auto start = Clock::now();
  reserve_snapshot_buffers(trainer, snapshot_buffers_);
  log::debug("checkpoint snapshot buffers ready in ", seconds_since(start), " s");
}

void CheckpointHooks::after_step(Trainer& trainer, std::int64_t step) {
  const std::int64_t steps_done = step + 1;
  if (settings_.interval > 0 && steps_done % settings_.interval == 0) save(trainer, steps_done);
}

void CheckpointHooks::finish(Trainer& trainer, std::int64_t steps_done) {
  if (settings_.interval > 0 && steps_done > 0 && steps_done != last_saved_) save(trainer, steps_done);
  wait_for_save_in_flight();
}

void CheckpointHooks::wait_for_save_in_flight() {
  if (in_flight_.joinable()) in_flight_.join();
  if (failure_) std::rethrow_exception(std::exchange(failure_, nullptr));
}

void CheckpointHooks::save(Trainer& trainer, std::int64_t steps_done) {
  trainer.read_queued_steps();  // a diverged step stops the run before its state is saved
  const auto start = Clock::now();
  wait_for_save_in_flight();
  // The previous save is done (waited for above), so its snapshot buffers are free to reuse.
  std::shared_ptr<Snapshot> snapshot =
      take_snapshot(trainer, steps_done, group_.rank(), settings_.recipe_ini, snapshot_buffers_);
  auto write = [this, snapshot] {
    const auto write_start = Clock::now();
    const fs::path path = writer_.save(snapshot->request);
    const double seconds = seconds_since(write_start);
    const double mib = static_cast<double>(request_bytes(snapshot->request)) / (1 << 20);
    log::info("checkpoint ", path.string(), " committed: ", mib, " MiB from this rank in ", seconds, " s (",
              seconds > 0 ? mib / seconds : 0.0, " MiB/s)");
  };
  if (settings_.async) {
    in_flight_ = std::thread([this, write] {
      try {
        write();
      } catch (...) {
        failure_ = std::current_exception();
      }
    });
  } else {
    write();
  }
  stalls_.push_back(seconds_since(start));
  last_saved_ = steps_done;
  log::info("checkpoint at step ", steps_done, ": training held ", stalls_.back(), " s",
            settings_.async ? " (snapshot; encrypting and writing in the background)" : " (synchronous save)");
}

}  // namespace albion::train
