// File: runtime/train/parallelism.cpp
#include "runtime/train/parallelism.h"

#include <cmath>

#include "runtime/train/trainer.h"

namespace albion::train {

double Parallelism::step(Trainer& trainer, double lr) {
  optim::AdamW& optimizer = trainer.optimizer();
  const double grad_norm = gradient_norm(optimizer.parameters(), optimizer.options().fused);
  optim::clip_to_norm(optimizer.parameters(), grad_norm, trainer.recipe().optim.grad_clip);
  optimizer.step(lr);
  optimizer.zero_grad();
  return grad_norm;
}

double Parallelism::gradient_norm(std::vector<optim::OptimizedParameter>& parameters, bool fused) {
  return std::sqrt(optim::squared_gradient_norm(parameters, fused).item<double>());
}

optim::AdamW& Parallelism::optimizer(Trainer& trainer) { return trainer.optimizer(); }

std::int64_t Parallelism::optimizer_state_bytes(Trainer& trainer) const {
  return trainer.optimizer().state_bytes();
}

}  // namespace albion::train
