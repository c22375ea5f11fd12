// File: runtime/train/training_hooks.h
// Where checkpoints (checkpoint/: save every N steps, resume) plug into the trainer loop without
// the loop knowing them. (Gradient synchronisation is the Parallelism's, runtime/train/
// parallelism.h.) The defaults do nothing: no checkpoints.
#pragma once

#include <cstdint>

#include "runtime/data/token_loader.h"

namespace albion::train {

class Trainer;

class TrainingHooks {
 public:
  virtual ~TrainingHooks() = default;
  // Before the first step: restore state from a checkpoint; returns the step to start from.
  virtual std::int64_t resume(Trainer&) { return 0; }
  // After step `step` (0-based) completed and was logged.
  virtual void after_step(Trainer&, std::int64_t step) {}
  // After the last step, or at an early stop (a pre-empted job), with the steps done so far:
  // a final checkpoint, and waiting for one still being written.
  virtual void finish(Trainer&, std::int64_t steps_done) {}
};

}  // namespace albion::train
