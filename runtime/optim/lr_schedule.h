// File: runtime/optim/lr_schedule.h
// Learning rate at each optimizer step: linear warmup from 0 to the peak over warmup_steps, then
//   cosine    peak -> min_lr following half a cosine over the remaining steps;
//   wsd       peak held, then linear decay to min_lr over the last decay_fraction of the steps;
//   constant  peak.
// Steps are 0-based; step s trains with lr(s). warmup uses (s + 1) / warmup so step 0 is not 0.
#pragma once

#include <cstdint>
#include <string>

namespace albion::optim {

struct LrSchedule {
  std::string kind = "cosine";
  double peak = 1e-3;
  double min_lr = 0;
  std::int64_t warmup_steps = 0;
  std::int64_t total_steps = 1;
  double decay_fraction = 0.2;

  double at(std::int64_t step) const;
};

}  // namespace albion::optim
