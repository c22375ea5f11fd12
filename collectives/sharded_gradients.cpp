// File: collectives/sharded_gradients.cpp
#include "collectives/sharded_gradients.h"

#include <ATen/core/grad_mode.h>

#include "collectives/gradient_buckets.h"
#include "runtime/base/check.h"

namespace albion::collectives {

ShardedGradients::ShardedGradients(const FlatParameters& flat, std::int64_t bucket_bytes,
                                   std::shared_ptr<Communicator> comm)
    : parameters_(flat.parameters()),
      offset_in_bucket_(parameters_.size()),
      bucket_of_(parameters_.size()),
      comm_(std::move(comm)) {
  const at::NoGradGuard no_grad;
  std::int64_t shard_numel = 0;
  for (std::vector<std::size_t>& members : group_in_reverse(parameters_, bucket_bytes)) {
    // Reverse order: the bucket's last member comes first in the flat layout.
    const std::int64_t begin = flat.offset(members.back());
    const std::int64_t end = flat.offset(members.front()) + parameters_[members.front()].numel();
    for (std::size_t i : members) {
      offset_in_bucket_[i] = flat.offset(i) - begin;
      bucket_of_[i] = buckets_.size();
    }
    const ShardRange mine = shard_range(end - begin, comm_->rank(), comm_->size());
    bucket_ranges_.push_back({begin, end - begin});
    shard_ranges_.push_back({begin + mine.offset, mine.length});
    shard_offsets_.push_back(shard_numel);
    shard_numel += mine.length;
    buckets_.emplace_back();
    buckets_.back().parameters = std::move(members);
  }
  gradients_ = at::zeros({shard_numel}, parameters_.front().options().requires_grad(false));
  next_to_start_ = buckets_.size();  // nothing to finish before the first backward
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    on_gradient_accumulated(parameters_[i], [this, i] { on_gradient_ready(i); });
  }
}

ShardedGradients::~ShardedGradients() {
  for (const at::Tensor& p : parameters_) remove_gradient_hook(p);
}

void ShardedGradients::prepare_backward(bool reduce) {
  std::lock_guard lock(mutex_);
  finish_locked();
  armed_ = reduce;
  next_to_start_ = reduce ? 0 : buckets_.size();
  for (Bucket& b : buckets_) b.pending = b.parameters.size();
}

void ShardedGradients::on_gradient_ready(std::size_t parameter_index) {
  std::lock_guard lock(mutex_);
  if (!armed_) return;
  const at::NoGradGuard no_grad;
  const std::size_t b = bucket_of_[parameter_index];
  Bucket& bucket = buckets_[b];
  // A second accumulation after the bucket left (a parameter used in two backward passes of one
  // micro-batch) would be lost: refuse it rather than train on part of a gradient.
  ALBION_CHECK(b >= next_to_start_, "ZeRO: parameter ", parameter_index,
               "'s gradient arrived after its bucket was reduced");
  at::Tensor& parameter = parameters_[parameter_index];
  const at::Tensor& grad = parameter.grad();
  if (!bucket.staging.defined() && bucket.parameters.size() == 1 && grad.is_contiguous()) {
    bucket.staging = grad.view({-1});  // a bucket of one: reduced from the gradient itself
  } else {
    if (!bucket.staging.defined()) bucket.staging = at::zeros({bucket_ranges_[b].length}, gradients_.options());
    bucket.staging.narrow(0, offset_in_bucket_[parameter_index], parameter.numel()).add_(grad.reshape({-1}));
  }
  parameter.mutable_grad() = at::Tensor();  // the whole gradient is not kept beyond its bucket
  if (bucket.pending > 0) --bucket.pending;
  start_ready_buckets();
}

void ShardedGradients::start_ready_buckets() {
  while (next_to_start_ < buckets_.size() && buckets_[next_to_start_].pending == 0) start(next_to_start_++);
}

void ShardedGradients::start(std::size_t bucket) {
  InFlight flight;
  flight.bucket = bucket;
  flight.staging = std::exchange(buckets_[bucket].staging, at::Tensor());
  if (!flight.staging.defined()) flight.staging = at::zeros({bucket_ranges_[bucket].length}, gradients_.options());
  flight.received = at::empty({shard_ranges_[bucket].length}, gradients_.options());
  flight.work = comm_->reduce_scatter(flight.received, flight.staging, ReduceOp::kAvg);
  in_flight_.push_back(std::move(flight));
  while (in_flight_.size() > kBucketsInFlight) land_oldest();
}

void ShardedGradients::land_oldest() {
  InFlight flight = std::move(in_flight_.front());
  in_flight_.pop_front();
  flight.work->wait();
  gradients_.narrow(0, shard_offsets_[flight.bucket], flight.received.numel()).add_(flight.received);
}

void ShardedGradients::finish_locked() {
  const at::NoGradGuard no_grad;
  // Buckets with a parameter that got no gradient (unused this micro-batch) start now, in order.
  while (next_to_start_ < buckets_.size()) start(next_to_start_++);
  while (!in_flight_.empty()) land_oldest();
  armed_ = false;
}

void ShardedGradients::finish() {
  std::lock_guard lock(mutex_);
  finish_locked();
}

}  // namespace albion::collectives
