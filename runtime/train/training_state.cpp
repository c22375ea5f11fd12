// File: runtime/train/training_state.cpp
#include "runtime/train/training_state.h"

#include <ATen/core/grad_mode.h>
#include <c10/cuda/CUDAStream.h>

#include "runtime/base/check.h"
#include "runtime/models/tensor_parallel.h"
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

// Under tensor parallelism (runtime/models/tensor_parallel.h) the ranks of a group hold parts of
// some tensors; checkpoints hold them whole, gathered to the group's rank 0, which saves them.
struct TensorParts {
  std::shared_ptr<collectives::Communicator> group;  // null: no tensor parallelism

  // The dimension parameter `name` is cut along over the group, or -1.
  int split(const std::string& name) const { return group ? models::tensor_parallel_split(name) : -1; }
  std::int64_t count() const { return group ? group->size() : 1; }
  bool saves() const { return group == nullptr || group->rank() == 0; }
};

std::int64_t element_count(const std::vector<std::int64_t>& shape) {
  std::int64_t count = 1;
  for (std::int64_t size : shape) count *= size;
  return count;
}

// What a capture copies, in order. `values` is the live tensor (this rank's part when `split` >=
// 0), undefined for the optimizer's moments before its first step (`like` then says what they will
// be).
struct StateEntry {
  std::string name;
  std::vector<std::int64_t> global_shape;
  std::int64_t offset = 0;
  at::Tensor values;
  at::Tensor like;
  int split = -1;
};

std::vector<StateEntry> state_entries(Trainer& trainer, const TensorParts& parts) {
  Parallelism& parallel = trainer.parallelism();
  optim::AdamW& optimizer = parallel.optimizer(trainer);
  auto global_shape = [&](const at::Tensor& tensor, int split) {
    return models::tensor_parallel_global_shape(tensor.sizes(), split, parts.count());
  };
  std::vector<StateEntry> entries;
  if (parallel.data_parallel_rank() != 0) {
    // Replicated state (parameters; with DDP also the moments) comes from rank 0 alone.
    if (&optimizer == &trainer.optimizer()) return entries;
  } else {
    // Under LoRA the frozen base is not state: model.init holds it, named by its digest.
    for (auto& [name, tensor] : trainer.model().trainable_parameters()) {
      const int split = parts.split(name);
      entries.push_back({"model." + name, global_shape(tensor, split), 0, tensor, tensor, split});
    }
  }
  for (const optim::OptimizedParameter& p : optimizer.parameters()) {
    const int split = parts.split(p.name);
    const std::vector<std::int64_t> shape =
        models::tensor_parallel_global_shape(shape_of(trainer, p.name), split, parts.count());
    const at::Tensor like = p.parameter.detach().to(at::kFloat);  // moments are fp32
    entries.push_back({"optim.exp_avg." + p.name, shape, p.offset, p.exp_avg, like, split});
    entries.push_back({"optim.exp_avg_sq." + p.name, shape, p.offset, p.exp_avg_sq, like, split});
  }
  return entries;
}

}  // namespace

at::Tensor SnapshotBuffers::host_buffer(const std::string& name, const at::Tensor& like) {
  return host_buffer(name, like.numel(), like.scalar_type(), like.is_cuda());
}

at::Tensor SnapshotBuffers::host_buffer(const std::string& name, std::int64_t numel, at::ScalarType dtype,
                                        bool pinned) {
  at::Tensor& buffer = buffers_[name];
  if (!buffer.defined() || buffer.numel() != numel || buffer.scalar_type() != dtype) {
    // Zero-filled, not empty: the pages are faulted in now, not during the first snapshot's copy.
    buffer = at::zeros({numel}, at::TensorOptions().dtype(dtype).pinned_memory(pinned));
  }
  return buffer;
}

void reserve_snapshot_buffers(Trainer& trainer, SnapshotBuffers& buffers) {
  at::NoGradGuard no_grad;
  const TensorParts parts{trainer.parallelism().tensor_parallel_group()};
  if (!parts.saves()) return;
  for (const StateEntry& entry : state_entries(trainer, parts)) {
    buffers.host_buffer(entry.name, element_count(entry.global_shape), entry.like.scalar_type(),
                        entry.like.is_cuda());
  }
}

TrainingState capture_training_state(Trainer& trainer, std::int64_t steps_done, SnapshotBuffers* buffers) {
  at::NoGradGuard no_grad;
  const optim::AdamW& optimizer = trainer.parallelism().optimizer(trainer);
  TrainingState state;
  state.steps_done = steps_done;
  state.optimizer_steps = optimizer.step_count();
  state.loader = trainer.train_loader().state();
  const TensorParts parts{trainer.parallelism().tensor_parallel_group()};
  for (const StateEntry& e : state_entries(trainer, parts)) {
    if (!e.values.defined()) continue;  // before the first step there are no moments
    // Every rank of the group takes part in the gather; its rank 0 saves.
    const at::Tensor whole = e.split >= 0 ? models::gather_tensor_parallel(e.values, e.split, *parts.group) : e.values;
    if (parts.saves()) state.slices.push_back(slice_of(e.name, e.global_shape, e.offset, whole, buffers));
  }
  if (buffers != nullptr && trainer.device().is_cuda()) {
    c10::cuda::getCurrentCUDAStream(trainer.device().index()).synchronize();  // the copies have landed
  }
  return state;
}

std::int64_t restore_training_state(Trainer& trainer, const TrainingState& header, const RangeReader& read) {
  at::NoGradGuard no_grad;
  const TensorParts parts{trainer.parallelism().tensor_parallel_group()};
  // The elements of `stored` (state of parameter `parameter`) this rank holds, shaped like `local`:
  // under tensor parallelism, its part of the whole tensor.
  auto read_local = [&](const std::string& stored, const std::string& parameter, std::int64_t offset,
                        const at::Tensor& local) {
    const int split = parts.split(parameter);
    if (split < 0) {
      const at::Tensor values = read(stored, offset, local.numel());
      ALBION_CHECK(values.numel() == local.numel(), "training state: ", stored, " has ", values.numel(),
                   " elements, the model ", local.numel());
      return values.view(local.sizes());
    }
    const std::vector<std::int64_t> shape = models::tensor_parallel_global_shape(local.sizes(), split, parts.count());
    return models::tensor_parallel_part(read(stored, 0, element_count(shape)).view(shape), split,
                                        parts.group->rank(), parts.count());
  };
  for (auto& [name, tensor] : trainer.model().trainable_parameters()) {
    tensor.copy_(read_local("model." + name, name, 0, tensor));
  }
  optim::AdamW& optimizer = trainer.parallelism().optimizer(trainer);
  if (header.optimizer_steps > 0) {
    for (optim::OptimizedParameter& p : optimizer.parameters()) {
      auto moment = [&](const std::string& prefix) {
        return at::empty(p.parameter.sizes(), p.parameter.options().dtype(at::kFloat))
            .copy_(read_local(prefix + p.name, p.name, p.offset, p.parameter));
      };
      p.exp_avg = moment("optim.exp_avg.");
      p.exp_avg_sq = moment("optim.exp_avg_sq.");
    }
  }
  optimizer.set_step_count(header.optimizer_steps);
  trainer.train_loader().restore(header.loader);
  return header.steps_done;
}

}  // namespace albion::train
