// File: collectives/gradient_buckets.cpp
#include "collectives/gradient_buckets.h"

#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include "runtime/base/check.h"

namespace albion::collectives {
namespace {

class GradientReadyHook final : public torch::autograd::PostAccumulateGradHook {
 public:
  explicit GradientReadyHook(std::function<void()> ready) : ready_(std::move(ready)) {}
  void operator()(const torch::autograd::Variable&) override { ready_(); }

 private:
  std::function<void()> ready_;
};

// Makes `parameter`'s .grad() the view `slot` (into a bucket), keeping the values of a gradient
// someone put there instead (set to None: zeros). Autograd then accumulates in place.
void seat_gradient_view(at::Tensor& parameter, const at::Tensor& slot) {
  const at::Tensor& grad = parameter.grad();
  if (grad.defined() && grad.data_ptr() == slot.data_ptr()) return;
  if (grad.defined()) slot.copy_(grad);
  else slot.zero_();
  parameter.mutable_grad() = slot;
}

}  // namespace

void on_gradient_accumulated(const at::Tensor& parameter, std::function<void()> ready) {
  torch::autograd::impl::set_post_acc_grad_hooks(parameter, std::make_unique<GradientReadyHook>(std::move(ready)));
}

void remove_gradient_hook(const at::Tensor& parameter) {
  torch::autograd::impl::set_post_acc_grad_hooks(parameter, nullptr);
}

std::vector<std::vector<std::size_t>> group_in_reverse(const std::vector<at::Tensor>& parameters,
                                                       std::int64_t bucket_bytes) {
  ALBION_CHECK_AS(UsageError, bucket_bytes > 0, "gradient bucket size must be positive");
  std::vector<std::vector<std::size_t>> buckets;
  std::int64_t bytes_in_last = 0;
  for (std::size_t i = parameters.size(); i-- > 0;) {
    const at::Tensor& p = parameters[i];
    ALBION_CHECK(p.requires_grad(), "gradient buckets: parameter ", i, " does not require grad");
    ALBION_CHECK(p.device() == parameters.front().device(), "gradient buckets: parameters on several devices");
    const std::int64_t bytes = p.numel() * p.element_size();
    if (buckets.empty() || parameters[buckets.back().front()].scalar_type() != p.scalar_type() ||
        bytes_in_last + bytes > bucket_bytes) {
      buckets.emplace_back();
      bytes_in_last = 0;
    }
    buckets.back().push_back(i);
    bytes_in_last += bytes;
  }
  return buckets;
}

GradientBuckets::GradientBuckets(std::vector<at::Tensor> parameters, std::int64_t bucket_bytes,
                                 std::shared_ptr<Communicator> comm, bool overlap)
    : parameters_(std::move(parameters)),
      bucket_of_(parameters_.size()),
      slots_(parameters_.size()),
      comm_(std::move(comm)),
      overlap_(overlap) {
  std::vector<std::int64_t> offsets(parameters_.size());
  std::vector<std::int64_t> bucket_numel;
  for (std::vector<std::size_t>& members : group_in_reverse(parameters_, bucket_bytes)) {
    bucket_numel.push_back(0);
    for (std::size_t i : members) {
      offsets[i] = bucket_numel.back();
      bucket_numel.back() += parameters_[i].numel();
      bucket_of_[i] = buckets_.size();
    }
    buckets_.emplace_back();
    buckets_.back().parameters = std::move(members);
  }
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    const at::Tensor& first = parameters_[buckets_[b].parameters.front()];
    buckets_[b].flat = at::zeros({bucket_numel[b]}, first.options().requires_grad(false));
  }
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    slots_[i] = buckets_[bucket_of_[i]].flat.narrow(0, offsets[i], parameters_[i].numel()).view(parameters_[i].sizes());
  }
  seat_gradient_views();
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    on_gradient_accumulated(parameters_[i], [this, i] { on_gradient_ready(i); });
  }
}

GradientBuckets::~GradientBuckets() {
  for (const at::Tensor& p : parameters_) remove_gradient_hook(p);
}

std::vector<std::int64_t> GradientBuckets::bucket_bytes() const {
  std::vector<std::int64_t> bytes;
  for (const Bucket& b : buckets_) bytes.push_back(b.flat.numel() * b.flat.element_size());
  return bytes;
}

void GradientBuckets::seat_gradient_views() {
  // If something replaced a gradient (set it to None, assigned a new tensor), copy it back into
  // its slot so accumulation and the all-reduce see one buffer again.
  for (std::size_t i = 0; i < parameters_.size(); ++i) seat_gradient_view(parameters_[i], slots_[i]);
}

void GradientBuckets::prepare_backward(bool synchronize) {
  std::lock_guard lock(mutex_);
  seat_gradient_views();
  armed_ = synchronize && overlap_;
  next_to_start_ = 0;
  for (Bucket& b : buckets_) {
    b.pending = b.parameters.size();
    b.work.reset();
  }
}

void GradientBuckets::on_gradient_ready(std::size_t parameter_index) {
  std::lock_guard lock(mutex_);
  if (!armed_) return;
  Bucket& bucket = buckets_[bucket_of_[parameter_index]];
  if (bucket.pending > 0) --bucket.pending;
  start_ready_buckets();
}

void GradientBuckets::start_ready_buckets() {
  while (next_to_start_ < buckets_.size() && buckets_[next_to_start_].pending == 0) {
    Bucket& bucket = buckets_[next_to_start_++];
    bucket.work = comm_->all_reduce(bucket.flat, ReduceOp::kAvg);
  }
}

void GradientBuckets::finish() {
  std::vector<std::shared_ptr<Work>> works;
  {
    std::lock_guard lock(mutex_);
    armed_ = false;
    // Buckets whose parameters got no gradient this step (unused parameters), or all of them
    // without overlap, start now, still in index order.
    for (; next_to_start_ < buckets_.size(); ++next_to_start_) {
      buckets_[next_to_start_].work = comm_->all_reduce(buckets_[next_to_start_].flat, ReduceOp::kAvg);
    }
    for (Bucket& b : buckets_) works.push_back(std::exchange(b.work, nullptr));
  }
  for (const auto& work : works) work->wait();
}

void GradientBuckets::zero_gradients() {
  std::lock_guard lock(mutex_);
  for (Bucket& b : buckets_) b.flat.zero_();
}

}  // namespace albion::collectives
