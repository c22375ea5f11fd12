// File: collectives/flat_parameters.cpp
#include "collectives/flat_parameters.h"

#include <ATen/core/grad_mode.h>

#include <algorithm>

#include "runtime/base/check.h"

namespace albion::collectives {

FlatParameters::FlatParameters(std::vector<at::Tensor> parameters) : parameters_(std::move(parameters)) {
  ALBION_CHECK(!parameters_.empty(), "flat parameters: no parameters");
  const at::TensorOptions options = parameters_.front().options().requires_grad(false);
  std::int64_t total = 0;
  for (const at::Tensor& p : parameters_) {
    ALBION_CHECK(p.requires_grad(), "flat parameters: a parameter does not require grad");
    ALBION_CHECK(p.scalar_type() == options.dtype().toScalarType() && p.device() == options.device(),
                 "flat parameters: parameters differ in dtype or device (", p.scalar_type(), " on ", p.device(), ")");
    offsets_.push_back(total);
    total += p.numel();
  }
  at::NoGradGuard no_grad;
  values_ = at::empty({total}, options);
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    at::Tensor& p = parameters_[i];
    at::Tensor slot = values_.narrow(0, offsets_[i], p.numel()).view(p.sizes());
    slot.copy_(p.detach());
    p.set_data(slot);
  }
}

std::vector<ParameterSpan> FlatParameters::spans(const ShardRange& range) const {
  std::vector<ParameterSpan> spans;
  const std::int64_t begin = range.offset;
  const std::int64_t end = range.offset + range.length;
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    const std::int64_t p_begin = offsets_[i];
    const std::int64_t p_end = p_begin + parameters_[i].numel();
    const std::int64_t lo = std::max(begin, p_begin);
    const std::int64_t hi = std::min(end, p_end);
    if (lo < hi) spans.push_back({i, lo - p_begin, lo, hi - lo});
  }
  return spans;
}

}  // namespace albion::collectives
