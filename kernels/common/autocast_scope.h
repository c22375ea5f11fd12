// File: kernels/common/autocast_scope.h
// bf16 autocast on one device type for a scope: matrix products in bf16, reductions in fp32,
// parameters and optimizer state stay fp32 (master weights). The previous setting comes back
// however the scope ends; a disabled scope changes nothing; nested scopes keep the cast cache.
#pragma once

#include <ATen/autocast_mode.h>

namespace albion::kernels {

class Bf16AutocastScope {
 public:
  explicit Bf16AutocastScope(at::DeviceType device, bool enabled = true)
      : device_(device),
        enabled_(enabled),
        was_enabled_(at::autocast::is_autocast_enabled(device)),
        previous_dtype_(at::autocast::get_autocast_dtype(device)) {
    if (!enabled_) return;
    at::autocast::set_autocast_dtype(device_, at::kBFloat16);
    at::autocast::set_autocast_enabled(device_, true);
    at::autocast::increment_nesting();
  }
  ~Bf16AutocastScope() {
    if (!enabled_) return;
    at::autocast::set_autocast_enabled(device_, was_enabled_);
    at::autocast::set_autocast_dtype(device_, previous_dtype_);
    // As torch.autocast: the cached casts of the weights live until the outermost scope ends.
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  }
  Bf16AutocastScope(const Bf16AutocastScope&) = delete;
  Bf16AutocastScope& operator=(const Bf16AutocastScope&) = delete;

 private:
  at::DeviceType device_;
  bool enabled_;
  bool was_enabled_;
  at::ScalarType previous_dtype_;
};

}  // namespace albion::kernels
