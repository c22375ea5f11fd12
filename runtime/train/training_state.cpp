// File: runtime/train/training_state.cpp
#include "runtime/train/training_state.h"

#include <ATen/core/grad_mode.h>
#include <c10/cuda/CUDAStream.h>

#include "runtime/base/check.h"
#include "runtime/train/trainer.h"

namespace albion::train {
namespace {

StateSlice slice_of(const std::string& name, const std::vector<std::int64_t>& shape, std::int64_t offset,
                    const at::Tensor& values, SnapshotBuffers* buffers) {
  const at::Tensor flat = values.detach().reshape({-1});
  if (buffers == nullptr) return {name, shape, offset, flat.to(at::kCPU, /*non_blocking=*/false, /*copy=*/true)};
  at::Tensor host = buffers->host_buffer(name, flat);
  host.copy_(flat, /*non_blocking=*/flat.is_cuda());  // pinned: device copies overlap, one sync below
  return {name, shape, offset, host};
}

std::vector<std::int64_t> shape_of(Trainer& trainer, const std::string& parameter) {
  for (auto& [name, tensor] : trainer.model().named_parameters()) {
    if (name == parameter) return tensor.sizes().vec();
  }
  throw SystemError(str_cat("training state: the model has no parameter '", parameter, "'"));
}


// What a capture copies, in order. `values` is the live tensor, undefined for the optimizer's
// moments before its first step (`like` then says what they will be).
struct StateEntry {
  std::string name;
  std::vector<std::int64_t> global_shape;
  std::int64_t offset = 0;
  at::Tensor values;
  at::Tensor like;
};

std::vector<StateEntry> state_entries(Trainer& trainer) {
  Parallelism& parallel = trainer.parallelism();
  optim::AdamW& optimizer = parallel.optimizer(trainer);
  std::vector<StateEntry> entries;
  if (parallel.data_parallel_rank() != 0) {
    // Replicated state (parameters; with DDP also the moments) comes from rank 0 alone.
    if (&optimizer == &trainer.optimizer()) return entries;
  } else {
    // Under LoRA the frozen base is not state: model.init holds it, named by its digest.
    for (auto& [name, tensor] : trainer.model().trainable_parameters()) {
      entries.push_back({"model." + name, tensor.sizes().vec(), 0, tensor, tensor});
    }
  }
  for (const optim::OptimizedParameter& p : optimizer.parameters()) {
    const std::vector<std::int64_t> shape = shape_of(trainer, p.name);
    const at::Tensor like = p.parameter.detach().to(at::kFloat);  // moments are fp32
    entries.push_back({"optim.exp_avg." + p.name, shape, p.offset, p.exp_avg, like});
    entries.push_back({"optim.exp_avg_sq." + p.name, shape, p.offset, p.exp_avg_sq, like});
  }
  return entries;
}

}  // namespace

at::Tensor SnapshotBuffers::host_buffer(const std::string& name, const at::Tensor& like) {
  at::Tensor& buffer = buffers_[name];
  if (!buffer.defined() || buffer.numel() != like.numel() || buffer.scalar_type() != like.scalar_type()) {
    // Zero-filled, not empty: the pages are faulted in now, not during the first snapshot's copy.
    buffer = at::zeros({like.numel()}, at::TensorOptions().dtype(like.scalar_type()).pinned_memory(like.is_cuda()));
  }
  return buffer;
}

void reserve_snapshot_buffers(Trainer& trainer, SnapshotBuffers& buffers) {
  at::NoGradGuard no_grad;
  for (const StateEntry& entry : state_entries(trainer)) buffers.host_buffer(entry.name, entry.like);
}

TrainingState capture_training_state(Trainer& trainer, std::int64_t steps_done, SnapshotBuffers* buffers) {
  at::NoGradGuard no_grad;
  const optim::AdamW& optimizer = trainer.parallelism().optimizer(trainer);
  TrainingState state;
  state.steps_done = steps_done;
  state.optimizer_steps = optimizer.step_count();
  state.loader = trainer.train_loader().state();
  for (const StateEntry& e : state_entries(trainer)) {
    if (!e.values.defined()) continue;  // before the first step there are no moments
    state.slices.push_back(slice_of(e.name, e.global_shape, e.offset, e.values, buffers));
  }
  if (buffers != nullptr && trainer.device().is_cuda()) {
    c10::cuda::getCurrentCUDAStream(trainer.device().index()).synchronize();  // the copies have landed
  }
  return state;
}

std::int64_t restore_training_state(Trainer& trainer, const TrainingState& header, const RangeReader& read) {
  at::NoGradGuard no_grad;
  for (auto& [name, tensor] : trainer.model().trainable_parameters()) {
    at::Tensor values = read("model." + name, 0, tensor.numel());
    ALBION_CHECK(values.numel() == tensor.numel(), "training state: model.", name, " has ", values.numel(),
                 " elements, the model ", tensor.numel());
    tensor.copy_(values.view(tensor.sizes()));
  }
  optim::AdamW& optimizer = trainer.parallelism().optimizer(trainer);
  if (header.optimizer_steps > 0) {
    for (optim::OptimizedParameter& p : optimizer.parameters()) {
      const std::int64_t numel = p.parameter.numel();
      const at::TensorOptions options = p.parameter.options().dtype(at::kFloat);
      p.exp_avg = read("optim.exp_avg." + p.name, p.offset, numel).to(options).view(p.parameter.sizes()).clone();
      p.exp_avg_sq = read("optim.exp_avg_sq." + p.name, p.offset, numel).to(options).view(p.parameter.sizes()).clone();
    }
  }
  optimizer.set_step_count(header.optimizer_steps);
  trainer.train_loader().restore(header.loader);
  return header.steps_done;
}

}  // namespace albion::train
