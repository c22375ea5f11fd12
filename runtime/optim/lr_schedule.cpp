// File: runtime/optim/lr_schedule.cpp
#include "runtime/optim/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "runtime/base/check.h"

namespace albion::optim {

double LrSchedule::at(std::int64_t step) const {
  if (step < warmup_steps) return peak * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  if (kind == "constant") return peak;
  if (kind == "cosine") {
    const double span = static_cast<double>(std::max<std::int64_t>(1, total_steps - warmup_steps));
    const double progress = std::min(1.0, static_cast<double>(step - warmup_steps) / span);
    return min_lr + 0.5 * (peak - min_lr) * (1.0 + std::cos(std::numbers::pi * progress));
  }
  if (kind == "wsd") {
    const auto decay_steps = static_cast<std::int64_t>(std::ceil(decay_fraction * total_steps));
    const std::int64_t decay_start = std::max(warmup_steps, total_steps - decay_steps);
    if (step < decay_start) return peak;
    const double span = static_cast<double>(std::max<std::int64_t>(1, total_steps - decay_start));
    const double progress = std::min(1.0, static_cast<double>(step - decay_start + 1) / span);
    return peak + (min_lr - peak) * progress;
  }
  throw UsageError(str_cat("unknown learning-rate schedule '", kind, "'"));
}

}  // namespace albion::optim
