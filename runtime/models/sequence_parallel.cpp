// File: runtime/models/sequence_parallel.cpp
#include "runtime/models/sequence_parallel.h"

#include "runtime/base/check.h"
#include "runtime/models/tensor_parallel.h"

namespace albion::models {

ResidualStream::ResidualStream(std::shared_ptr<collectives::Communicator> group, bool sequence_parallel,
                               const at::Tensor& input_ids)
    : group_(std::move(group)), batch_(input_ids.size(0)), length_(input_ids.size(1)) {
  if (!group_ || !sequence_parallel) return;
  const std::int64_t tokens = batch_ * length_;
  cut_by_tokens_ = tokens % group_->size() == 0;
  // Without gradients a batch that does not divide simply stays whole (a shorter last window,
  // a prompt); with them, the norms' partial gradients would be summed as if it had been cut.
  ALBION_CHECK_AS(UsageError, cut_by_tokens_ || !at::GradMode::is_enabled(), "sequence parallelism "
                  "(recipe key 'parallel.sequence') cuts a batch's tokens over the ", group_->size(),
                  " tensor-parallel ranks, and ", batch_, " x ", length_, " tokens do not divide evenly");
}

at::Tensor ResidualStream::to_layer(const at::Tensor& x) const {
  if (!group_) return x;
  if (!cut_by_tokens_) return enter_tensor_parallel(x, group_);
  return gather_tokens(x, group_).view({batch_, length_, -1});
}

at::Tensor ResidualStream::from_layer(const at::Tensor& partial) const {
  if (!group_) return partial;
  if (!cut_by_tokens_) return leave_tensor_parallel(partial, group_);
  return scatter_tokens(partial.reshape({batch_ * length_, -1}), group_);
}

}  // namespace albion::models
