// File: collectives/gradient_buckets.h
// Data-parallel gradient averaging overlapped with backward (DDP), Note [Gradient buckets].
//
//   GradientBuckets buckets(parameters, 25 << 20, data_comm, /*overlap=*/true);
//   for each micro-batch:  buckets.prepare_backward(last_micro_batch);  loss.backward();
//   buckets.finish();      // every .grad() now holds the mean over the data-parallel ranks
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "collectives/communicator.h"

namespace albion::collectives {

// Calls `ready` each time a backward pass has accumulated `parameter`'s gradient (the autograd
// engine's post-accumulate-grad hook, replacing any other); remove_gradient_hook takes it away.
void on_gradient_accumulated(const at::Tensor& parameter, std::function<void()> ready);
void remove_gradient_hook(const at::Tensor& parameter);

// Note [Gradient buckets]
// Parameters are grouped, in reverse order (backward produces the last layers' gradients first),
// into buckets of about `bucket_bytes`. Each bucket owns one flat buffer, and each parameter's
// .grad() is a view into it, so autograd accumulates straight into the buffer and the all-reduce
// needs no copies. A post-accumulate-grad hook on every parameter counts the bucket's gradients;
// when the last one of a bucket is final, the bucket's all-reduce(avg) starts while backward goes
// on with earlier layers. Buckets start strictly in index order, so every rank issues the same
// collectives in the same order even if its hooks fire in another. Only the step's last micro-
// batch is "armed": on the others, gradients accumulate locally and nothing is communicated.
// Averaging over ranks after the trainer's 1/accumulation scaling gives exactly the gradient of
// the mean loss over the global batch, as one process would compute it.

// The grouping of Note [Gradient buckets]: parameter indices, in reverse order, into buckets of
// about `bucket_bytes` (a larger parameter alone); a dtype change also starts a bucket.
std::vector<std::vector<std::size_t>> group_in_reverse(const std::vector<at::Tensor>& parameters,
                                                       std::int64_t bucket_bytes);

class GradientBuckets {
 public:
  // `parameters` in model order, all requiring grad, on one device. `overlap` false starts every
  // all-reduce in finish() (synchronising after backward, for comparison).
  GradientBuckets(std::vector<at::Tensor> parameters, std::int64_t bucket_bytes,
                  std::shared_ptr<Communicator> comm, bool overlap);
  ~GradientBuckets();  // removes the hooks
  GradientBuckets(const GradientBuckets&) = delete;
  GradientBuckets& operator=(const GradientBuckets&) = delete;

  // Before each backward: `synchronize` is true for the one whose gradients are final.
  void prepare_backward(bool synchronize);
  // After the final backward: starts the buckets not started yet and waits for all.
  void finish();
  // Zeroes every gradient in place (they stay views into the buckets).
  void zero_gradients();

  std::size_t bucket_count() const { return buckets_.size(); }
  std::vector<std::int64_t> bucket_bytes() const;

  // Called by the hooks.
  void on_gradient_ready(std::size_t parameter_index);

 private:
  struct Bucket {
    at::Tensor flat;
    std::vector<std::size_t> parameters;
    std::size_t pending = 0;
    std::shared_ptr<Work> work;
  };
  void start_ready_buckets();  // with mutex_ held
  void seat_gradient_views();

  std::vector<at::Tensor> parameters_;
  std::vector<std::size_t> bucket_of_;   // per parameter
  std::vector<at::Tensor> slots_;        // per parameter: its view into its bucket
  std::vector<Bucket> buckets_;
  std::shared_ptr<Communicator> comm_;
  bool overlap_;
  std::mutex mutex_;
  bool armed_ = false;
  std::size_t next_to_start_ = 0;
};

}  // namespace albion::collectives
