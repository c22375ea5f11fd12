// File: collectives/flat_parameters.h
// Parameters moved into one flat buffer, for ZeRO: shards are plain ranges of it, and the updated
// shards come back with in-place all-gathers (the gradients are collectives/sharded_gradients.h's).
// Parameters keep their identity (the model's tensors stay the same objects, their storage
// becomes a view), so the model, autograd and checkpoints see no change.
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

class FlatParameters {
 public:
  // `parameters` in model order: one dtype, one device, all requiring grad. Their values are
  // copied into the flat buffer.
  explicit FlatParameters(std::vector<at::Tensor> parameters);

  const at::Tensor& values() const { return values_; }
  std::int64_t numel() const { return values_.numel(); }
  const std::vector<at::Tensor>& parameters() const { return parameters_; }
  // Where parameter `index` starts in the flat buffer.
  std::int64_t offset(std::size_t index) const { return offsets_[index]; }

  // The spans of every parameter overlapping [range.offset, range.offset + range.length).
  std::vector<ParameterSpan> spans(const ShardRange& range) const;

 private:
  std::vector<at::Tensor> parameters_;
  std::vector<std::int64_t> offsets_;
  at::Tensor values_;
};

}  // namespace albion::collectives
