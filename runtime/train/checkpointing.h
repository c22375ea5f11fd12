// File: runtime/train/checkpointing.h
// The trainer's checkpoints (checkpoint/ does the format, encryption and commit): every
// checkpoint.interval steps each rank snapshots its state to CPU memory (training_state.h) and a
// background thread encrypts, writes and commits it while training continues; at most one save is
// in flight, the next one waits for it. At the start, the run resumes from the newest committed
// checkpoint in the directory, if there is one; at the end (or a pre-emption) a final checkpoint
// is saved and waited for.
//
//   CheckpointHooks hooks(settings, group);      // group: all ranks (launch/ provides MPI's)
//   Trainer trainer(recipe, world, parallel, &hooks);
#pragma once

#include <cstdint>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "checkpoint/format/checkpoint_reader.h"
#include "checkpoint/format/checkpoint_writer.h"
#include "checkpoint/format/rank_group.h"
#include "runtime/train/trainer.h"
#include "runtime/train/training_hooks.h"
#include "runtime/train/training_state.h"

namespace albion::train {

// The dataset tokenizer a checkpoint's trainer state records (empty strings where it records none:
// older checkpoints, or a run whose tokenizer could not be loaded), and for a chat dataset the
// template it was rendered with. Never throws.
struct RecordedTokenizer {
  std::string spec;
  std::string hash;
  std::string chat_template;
};
RecordedTokenizer recorded_tokenizer(const std::string& state_json);

// The LoRA base a checkpoint's trainer state records (empty for a checkpoint of a full model).
// Never throws.
LoraBase recorded_lora_base(const std::string& state_json);

// The masked vocabulary padding rows of the checkpoint's model (models::ModelConfig::vocab_padding;
// 0 where none is recorded). IntegrityError naming `what` for a value that is not a count.
std::int64_t recorded_vocab_padding(const std::string& state_json, const std::string& what);

// The vocabulary of the model in a checkpoint (its embedding's rows and recorded padding); none for
// a checkpoint without vocabulary rows (LoRA adapters alone). IntegrityError as above.
std::optional<StoredVocabulary> stored_vocabulary(const checkpoint::CheckpointReader& reader);

// Adapters are a correction to one set of weights: IntegrityError naming `what` unless the base now
// in `current_directory` has the SHA-256 `recorded` names.
void require_same_lora_base(const LoraBase& recorded, const std::string& current_directory,
                            const std::string& current_sha256, const std::string& what);

struct CheckpointSettings {
  checkpoint::CheckpointOptions options;  // directory, key (null: plaintext), keep, threads, audit
  std::int64_t interval = 0;              // steps between checkpoints
  bool async = true;
  std::string recipe_ini;                 // stored in every manifest
};

class CheckpointHooks final : public TrainingHooks {
 public:
  CheckpointHooks(CheckpointSettings settings, checkpoint::RankGroup& group);
  ~CheckpointHooks() override;  // waits for a save in flight (its error is logged, not thrown)

  std::optional<StoredVocabulary> resumed_vocabulary() override;
  std::int64_t resume(Trainer& trainer) override;
  void after_step(Trainer& trainer, std::int64_t step) override;
  void finish(Trainer& trainer, std::int64_t steps_done) override;

  // Seconds the training loop was held up by each save: the snapshot (and any wait for the
  // previous save) when asynchronous, the whole save when not.
  const std::vector<double>& stall_seconds() const { return stalls_; }

 private:
  void save(Trainer& trainer, std::int64_t steps_done);
  void wait_for_save_in_flight();
  void reserve_buffers(Trainer& trainer);
  // The checkpoint the run resumes from (empty: none): the newest, chosen once, by rank 0.
  const std::string& chosen_checkpoint();

  CheckpointSettings settings_;
  checkpoint::RankGroup& group_;
  checkpoint::CheckpointWriter writer_;
  std::thread in_flight_;
  std::exception_ptr failure_;
  std::optional<std::string> chosen_;
  std::unique_ptr<checkpoint::CheckpointReader> opened_;  // the chosen one, opened by resumed_vocabulary()
  std::int64_t last_saved_ = -1;
  std::vector<double> stalls_;
  SnapshotBuffers snapshot_buffers_;
};

}  // namespace albion::train
