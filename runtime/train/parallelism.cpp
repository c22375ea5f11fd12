// File: runtime/train/parallelism.cpp
#include "runtime/train/parallelism.h"

#include "runtime/train/trainer.h"

namespace albion::train {

at::Tensor Parallelism::step(Trainer& trainer, double lr) {
  optim::AdamW& optimizer = trainer.optimizer();
  at::Tensor grad_norm = gradient_norm(optimizer.parameters(), optimizer.options().fused);
  optimizer.step(lr, optim::clip_factor(grad_norm, trainer.recipe().optim.grad_clip));
  optimizer.zero_grad();
  return grad_norm;
}

at::Tensor Parallelism::gradient_norm(std::vector<optim::OptimizedParameter>& parameters, bool fused) {
  return optim::squared_gradient_norm(parameters, fused).sqrt();
}

optim::AdamW& Parallelism::optimizer(Trainer& trainer) { return trainer.optimizer(); }

std::int64_t Parallelism::optimizer_state_bytes(Trainer& trainer) const {
  return trainer.optimizer().state_bytes();
}

}  // namespace albion::train
