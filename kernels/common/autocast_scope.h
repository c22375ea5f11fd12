// File: kernels/common/autocast_scope.h
// bf16 autocast on one device type for a scope: matrix products in bf16, reductions in fp32,
// parameters and optimizer state stay fp32 (master weights). The previous setting comes back
// however the scope ends; a disabled scope changes nothing; nested scopes keep the cast cache.
// WeightCastsKept keeps that cache across several such scopes (a step's micro-batches).
#pragma once

#include <ATen/autocast_mode.h>

namespace albion::kernels {

// Note [Weights cast once per step]
// Autocast caches its bf16 cast of each trainable fp32 weight until the outermost scope ends, and
// a training step opens one scope per micro-batch: every micro-batch cast every weight again, one
// kernel per weight reading 4 bytes and writing 2 per parameter. Held around a step's micro-batches
// and ended before the optimizer changes the weights, this scope makes the micro-batches' scopes
// nested ones, so each weight is cast once a step. The cast carries the autograd edge to its weight
// (the torch pinned here gives it one even when made without autograd, as in an activation
// checkpoint's first forward; activation_checkpoint_test holds it to that), and every
// micro-batch's backward passes through it. The cache is one for the process, as torch's is: a
// scope ending on another thread (the recomputation in a CUDA backward) may clear it early, which
// only costs casts again.
class WeightCastsKept {
 public:
  explicit WeightCastsKept(bool enabled) : enabled_(enabled) {
    if (enabled_) at::autocast::increment_nesting();
  }
  ~WeightCastsKept() {
    if (enabled_ && at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  }
  WeightCastsKept(const WeightCastsKept&) = delete;
  WeightCastsKept& operator=(const WeightCastsKept&) = delete;

 private:
  bool enabled_;
};

class Bf16AutocastScope {
 public:
  explicit Bf16AutocastScope(at::DeviceType device, bool enabled = true)
      : device_(device),
        enabled_(enabled),
        was_enabled_(at::autocast::is_autocast_enabled(device)),
        previous_dtype_(at::autocast::get_autocast_dtype(device)),
        casts_(enabled) {
    if (!enabled_) return;
    at::autocast::set_autocast_dtype(device_, at::kBFloat16);
    at::autocast::set_autocast_enabled(device_, true);
  }
  ~Bf16AutocastScope() {
    if (!enabled_) return;
    at::autocast::set_autocast_enabled(device_, was_enabled_);
    at::autocast::set_autocast_dtype(device_, previous_dtype_);
  }
  Bf16AutocastScope(const Bf16AutocastScope&) = delete;
  Bf16AutocastScope& operator=(const Bf16AutocastScope&) = delete;

 private:
  at::DeviceType device_;
  bool enabled_;
  bool was_enabled_;
  at::ScalarType previous_dtype_;
  // As torch.autocast: the cached casts of the weights live until the outermost scope ends.
  WeightCastsKept casts_;
};

}  // namespace albion::kernels
