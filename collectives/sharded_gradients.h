// File: collectives/sharded_gradients.h
// ZeRO's gradients: each data-parallel rank ends a step with only its shard of the summed
// gradients, Note [Sharded gradients].
//
//   FlatParameters flat(parameters);
//   ShardedGradients grads(flat, 25 << 20, data_comm);
//   for each micro-batch:  grads.prepare_backward(/*reduce=*/zero2 || last);  loss.backward();
//   grads.finish();   // gradients(): this rank's ranges of the mean over ranks, summed over micro-batches
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "collectives/communicator.h"
#include "collectives/flat_parameters.h"

namespace albion::collectives {

// Note [Sharded gradients]
// The parameters are grouped, in reverse order, into buckets of about `bucket_bytes` (as DDP's,
// collectives/gradient_buckets.h); a bucket is a range of the flat layout, and each rank owns
// shard_range() of every bucket. In a backward pass that reduces, when a parameter's gradient is
// final (a post-accumulate-grad hook) it is added into its bucket's staging buffer and the
// parameter's .grad() is released; when a bucket is complete (in index order, the same on every
// rank) its reduce-scatter(avg) starts while backward goes on, and its result is added into this
// rank's shard once it lands. At most a few buckets are in flight. In a backward pass that does
// not reduce, the gradients accumulate in .grad() as usual.
//
// ZeRO-1 reduces only in a step's last backward: the whole gradient exists while micro-batches
// accumulate, and is gone after the step. ZeRO-2 reduces in every backward (as DeepSpeed's does),
// so a rank never holds more than its shard and a few buckets, for one reduce-scatter of the
// gradients per micro-batch instead of per step.
// Buckets being reduced before the oldest is waited for (one more is being filled meanwhile).
constexpr std::size_t kBucketsInFlight = 2;

class ShardedGradients {
 public:
  // `flat`: the parameters and their layout (outlives this object); one dtype, one device.
  ShardedGradients(const FlatParameters& flat, std::int64_t bucket_bytes, std::shared_ptr<Communicator> comm);
  ~ShardedGradients();  // removes the hooks
  ShardedGradients(const ShardedGradients&) = delete;
  ShardedGradients& operator=(const ShardedGradients&) = delete;

  // Each bucket's range of the flat layout, and this rank's range of it (gradients() holds them
  // one after another, in this order).
  const std::vector<ShardRange>& bucket_ranges() const { return bucket_ranges_; }
  const std::vector<ShardRange>& shard_ranges() const { return shard_ranges_; }
  // Where each bucket's range starts in gradients().
  const std::vector<std::int64_t>& shard_offsets() const { return shard_offsets_; }
  const at::Tensor& gradients() const { return gradients_; }

  // Before each backward pass (finishing the previous one's buckets first); `reduce`: whether its
  // gradients are reduced into the shard (else they accumulate in .grad() for a later pass).
  void prepare_backward(bool reduce);
  // After the step's last backward: every bucket reduced and added into gradients().
  void finish();
  void zero_gradients() { gradients_.zero_(); }

  // Called by the hooks.
  void on_gradient_ready(std::size_t parameter_index);

 private:
  struct Bucket {
    std::vector<std::size_t> parameters;
    std::size_t pending = 0;
    at::Tensor staging;  // the micro-batch's gradients of the bucket's range, while it is needed
  };
  struct InFlight {
    std::size_t bucket = 0;
    at::Tensor staging;
    at::Tensor received;
    std::shared_ptr<Work> work;
  };
  void start_ready_buckets();  // with mutex_ held
  void start(std::size_t bucket);
  void land_oldest();
  void finish_locked();

  std::vector<at::Tensor> parameters_;
  std::vector<std::int64_t> offset_in_bucket_;  // per parameter
  std::vector<std::size_t> bucket_of_;          // per parameter
  std::vector<Bucket> buckets_;
  std::vector<ShardRange> bucket_ranges_;
  std::vector<ShardRange> shard_ranges_;
  std::vector<std::int64_t> shard_offsets_;  // of each bucket's shard in gradients_
  at::Tensor gradients_;
  std::shared_ptr<Communicator> comm_;
  std::mutex mutex_;
  bool armed_ = false;  // this backward pass reduces
  std::size_t next_to_start_ = 0;
  std::deque<InFlight> in_flight_;
};

}  // namespace albion::collectives
