// File: collectives/flat_parameters.h
// Parameters and their gradients moved into two flat buffers, for ZeRO: one reduce-scatter over
// the gradient buffer, one in-place all-gather over the parameter buffer, and shards that are
// plain ranges of both. Parameters keep their identity (the model's tensors stay the same
// objects, their storage becomes a view), so the model, autograd and checkpoints see no change.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "collectives/communicator.h"

namespace albion::collectives {

// The part of one parameter inside a range of the flat buffer.
struct ParameterSpan {
  std::size_t parameter = 0;           // index into the parameters given
  std::int64_t parameter_offset = 0;   // first element inside the parameter (flattened)
  std::int64_t flat_offset = 0;        // first element inside the flat buffer
  std::int64_t length = 0;
};

// Makes `parameter`'s .grad() the view `slot` (into a communication buffer), keeping the values of
// a gradient someone put there instead (set to None: zeros). Autograd then accumulates in place.
void seat_gradient_view(at::Tensor& parameter, const at::Tensor& slot);

class FlatParameters {
 public:
  // `parameters` in model order: one dtype, one device, all requiring grad. Their values are
  // copied into the flat buffer and, with a `gradient_buffer`, their .grad() become views of the
  // flat gradient buffer (without one, ZeRO-2's, gradients() is undefined and .grad() left alone).
  explicit FlatParameters(std::vector<at::Tensor> parameters, bool gradient_buffer = true);

  const at::Tensor& values() const { return values_; }
  const at::Tensor& gradients() const { return gradients_; }
  std::int64_t numel() const { return values_.numel(); }
  const std::vector<at::Tensor>& parameters() const { return parameters_; }
  // Where parameter `index` starts in the flat buffer.
  std::int64_t offset(std::size_t index) const { return offsets_[index]; }

  // The spans of every parameter overlapping [range.offset, range.offset + range.length).
  std::vector<ParameterSpan> spans(const ShardRange& range) const;
  // Re-points gradients replaced by someone else (set to None, reassigned) at the flat buffer.
  void seat_gradient_views();

 private:
  std::vector<at::Tensor> parameters_;
  std::vector<std::int64_t> offsets_;
  at::Tensor values_;
  at::Tensor gradients_;
};

}  // namespace albion::collectives
