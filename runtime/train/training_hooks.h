// File: runtime/train/training_hooks.h
// Where checkpoints (checkpoint/: save every N steps, resume) plug into the trainer loop without
// the loop knowing them. (Gradient synchronisation is the Parallelism's, runtime/train/
// parallelism.h.) The defaults do nothing: no checkpoints.
#pragma once

#include <cstdint>
#include <optional>

#include "runtime/data/token_loader.h"

namespace albion::train {

class Trainer;

// The vocabulary of a stored model: its embedding's rows, the last `padding` of them masked
// (models::ModelConfig::vocab_padding).
struct StoredVocabulary {
  std::int64_t rows = 0;
  std::int64_t padding = 0;
};

class TrainingHooks {
 public:
  virtual ~TrainingHooks() = default;
  // Before the model is built, on every rank: the vocabulary of the model resume() will restore,
  // if it restores one (the run keeps it, Note [A checkpoint's vocabulary on another number of
  // ranks] in runtime/models/tensor_parallel.h).
  virtual std::optional<StoredVocabulary> resumed_vocabulary() { return std::nullopt; }
  // Before the first step: restore state from a checkpoint; returns the step to start from.
  virtual std::int64_t resume(Trainer&) { return 0; }
  // After step `step` (0-based) completed and was logged.
  virtual void after_step(Trainer&, std::int64_t step) {}
  // After the last step, or at an early stop (a pre-empted job), with the steps done so far:
  // a final checkpoint, and waiting for one still being written.
  virtual void finish(Trainer&, std::int64_t steps_done) {}
};

}  // namespace albion::train
