// File: tests/runtime/train/training_state_support.h
// Hooks that capture a run's training state after a given step, and restore one before the
// first step, keeping slices in memory (checkpoint/ stores them on disk); and one that poisons
// the weights, as a diverging run would have them.
#pragma once

#include <ATen/core/grad_mode.h>
#include <c10/util/accumulate.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "runtime/base/check.h"
#include "runtime/train/trainer.h"
#include "runtime/train/training_state.h"

namespace albion::testing_support {

// Slices from any number of ranks, readable by name and range.
class SliceStore {
 public:
  void add(const std::vector<train::StateSlice>& slices) {
    for (const train::StateSlice& s : slices) slices_[s.name].push_back(s);
  }
  at::Tensor read(const std::string& name, std::int64_t offset, std::int64_t numel) const {
    at::Tensor out = at::full({numel}, std::numeric_limits<float>::quiet_NaN());
    std::int64_t covered = 0;
    for (const train::StateSlice& s : slices_.at(name)) {
      const std::int64_t lo = std::max(offset, s.offset);
      const std::int64_t hi = std::min(offset + numel, s.offset + s.data.numel());
      if (lo >= hi) continue;
      out.narrow(0, lo - offset, hi - lo).copy_(s.data.narrow(0, lo - s.offset, hi - lo));
      covered += hi - lo;
    }
    ALBION_CHECK(covered == numel, "slice store: ", name, " [", offset, ", +", numel, ") not covered");
    return out;
  }
  train::StoredTensors stored() const {
    auto read_range = [this](const std::string& name, std::int64_t offset, std::int64_t numel) {
      return read(name, offset, numel);
    };
    return {read_range, [this](const std::string& name) { return slices_.at(name).front().transposed; },
            [this](const std::string& name) { return c10::multiply_integers(slices_.at(name).front().global_shape); }};
  }

 private:
  std::map<std::string, std::vector<train::StateSlice>> slices_;
};

class CaptureAfter : public train::TrainingHooks {
 public:
  explicit CaptureAfter(std::int64_t step) : step_(step) {}
  void after_step(train::Trainer& trainer, std::int64_t step) override {
    if (step == step_) state = train::capture_training_state(trainer, step + 1);
  }
  train::TrainingState state;

 private:
  std::int64_t step_;
};

class RestoreFrom : public train::TrainingHooks {
 public:
  RestoreFrom(const train::TrainingState& header, const SliceStore& store) : header_(header), store_(store) {}
  std::int64_t resume(train::Trainer& trainer) override {
    return train::restore_training_state(trainer, header_, store_.stored());
  }

 private:
  const train::TrainingState& header_;
  const SliceStore& store_;
};

// Fills every weight with NaN after step `step` (from 0), then calls `inner` (checkpoints, say).
class PoisonAfter : public train::TrainingHooks {
 public:
  explicit PoisonAfter(std::int64_t step, train::TrainingHooks* inner = nullptr) : step_(step), inner_(inner) {}
  std::int64_t resume(train::Trainer& trainer) override { return inner_ ? inner_->resume(trainer) : 0; }
  void after_step(train::Trainer& trainer, std::int64_t step) override {
    if (step == step_) {
      at::NoGradGuard no_grad;
      for (auto& [name, tensor] : trainer.model().named_parameters()) tensor.fill_(std::nan(""));
    }
    if (inner_) inner_->after_step(trainer, step);
  }
  void finish(train::Trainer& trainer, std::int64_t steps_done) override {
    if (inner_) inner_->finish(trainer, steps_done);
  }

 private:
  std::int64_t step_;
  train::TrainingHooks* inner_;
};

}  // namespace albion::testing_support
