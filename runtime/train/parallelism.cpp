// File: runtime/train/parallelism.cpp
#include "runtime/train/parallelism.h"

#include "runtime/train/trainer.h"

namespace albion::train {

double Parallelism::step(Trainer& trainer, double lr) {
  optim::AdamW& optimizer = trainer.optimizer();
  const double grad_norm = optim::clip_grad_norm(optimizer.parameters(), trainer.recipe().optim.grad_clip,
                                                optimizer.options().fused);
  optimizer.step(lr);
  optimizer.zero_grad();
  return grad_norm;
}

optim::AdamW& Parallelism::optimizer(Trainer& trainer) { return trainer.optimizer(); }

std::int64_t Parallelism::optimizer_state_bytes(Trainer& trainer) const {
  return trainer.optimizer().state_bytes();
}

}  // namespace albion::train
