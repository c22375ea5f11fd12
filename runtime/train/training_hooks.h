// File: runtime/train/training_hooks.h
// Where other parts of Albion plug into the trainer loop without the loop knowing them:
// gradient synchronisation (collectives/: DDP all-reduce, ZeRO reduce-scatter) and checkpoints
// (checkpoint/: save every N steps, resume). The defaults do nothing, which is one process
// training alone with no checkpoints.
#pragma once

#include <cstdint>

#include "runtime/data/token_loader.h"

namespace albion::train {

class Trainer;

class TrainingHooks {
 public:
  virtual ~TrainingHooks() = default;
  // After the last micro-batch's backward of a step, before clipping and the optimizer step:
  // average gradients over data-parallel ranks.
  virtual void synchronize_gradients(Trainer&) {}
  // Before the first step: restore state from a checkpoint; returns the step to start from.
  virtual std::int64_t resume(Trainer&) { return 0; }
  // After step `step` (0-based) completed and was logged.
  virtual void after_step(Trainer&, std::int64_t step) {}
};

}  // namespace albion::train
