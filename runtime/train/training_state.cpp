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
  bool saved_here = true;  // this rank writes the slice (the others take part in the gathers)
  // ZeRO-1 under tensor parallelism: `values` is this rank's piece (undefined: none) of a cut
  // parameter's moment, at `piece_offset` in its part; the data-parallel ranks' pieces add up to
  // the part, which the tensor-parallel group then gathers whole. -1: not spread.
  std::int64_t piece_offset = -1;
};

const optim::OptimizedParameter* find_piece(const std::vector<optim::OptimizedParameter>& pieces,
                                            const std::string& name) {
  for (const optim::OptimizedParameter& piece : pieces) {
    if (piece.name == name) return &piece;
  }
  return nullptr;
}

std::vector<StateEntry> state_entries(Trainer& trainer, const TensorParts& parts) {
  Parallelism& parallel = trainer.parallelism();
  optim::AdamW& optimizer = parallel.optimizer(trainer);
  auto global_shape = [&](const at::Tensor& tensor, int split) {
    return models::tensor_parallel_global_shape(tensor.sizes(), split, parts.count());
  };
  const bool data_rank_0 = parallel.data_parallel_rank() == 0;
  const bool sharded = &optimizer != &trainer.optimizer();  // ZeRO-1: moments in pieces over data ranks
  std::vector<StateEntry> entries;
  // Replicated state (parameters; with DDP also the moments) comes from data-parallel rank 0 alone.
  if (!data_rank_0 && !sharded) return entries;
  if (data_rank_0) {
    // Under LoRA the frozen base is not state: model.init holds it, named by its digest.
    for (auto& [name, tensor] : trainer.model().trainable_parameters()) {
      const int split = parts.split(name);
      entries.push_back({"model." + name, global_shape(tensor, split), 0, tensor, tensor, split, parts.saves()});
    }
  }
  auto add_moments = [&](const optim::OptimizedParameter& p, int split, bool saved_here, std::int64_t offset,
                         std::int64_t piece_offset) {
    const std::vector<std::int64_t> shape =
        models::tensor_parallel_global_shape(shape_of(trainer, p.name), split, parts.count());
    const at::Tensor like = p.parameter.detach().to(at::kFloat);  // moments are fp32
    entries.push_back({"optim.exp_avg." + p.name, shape, offset, p.exp_avg, like, split, saved_here, piece_offset});
    entries.push_back(
        {"optim.exp_avg_sq." + p.name, shape, offset, p.exp_avg_sq, like, split, saved_here, piece_offset});
  };
  const bool spread = sharded && parts.group != nullptr;
  for (const optim::OptimizedParameter& p : optimizer.parameters()) {
    const int split = parts.split(p.name);
    if (!(spread && split >= 0)) add_moments(p, split, parts.saves(), p.offset, -1);
  }
  if (spread) {
    // The cut parameters' moments, in the trainer's order on every rank: each is collective.
    for (const optim::OptimizedParameter& whole : trainer.optimizer().parameters()) {
      const int split = parts.split(whole.name);
      if (split < 0) continue;
      const optim::OptimizedParameter* piece = find_piece(optimizer.parameters(), whole.name);
      optim::OptimizedParameter none;  // this rank's shard misses the parameter: it adds zeros
      none.name = whole.name;
      none.parameter = whole.parameter;
      add_moments(piece ? *piece : none, split, data_rank_0 && parts.saves(), 0, piece ? piece->offset : 0);
    }
  }
  return entries;
}

// This rank's part of a cut parameter's moment from the data-parallel ranks' pieces of it.
at::Tensor part_from_pieces(const StateEntry& e, const TensorParts& parts, Trainer& trainer) {
  std::vector<std::int64_t> shape = e.global_shape;
  shape.at(static_cast<std::size_t>(e.split)) /= parts.count();
  at::Tensor part = at::zeros(shape, e.like.options());
  if (e.values.defined()) part.view({-1}).narrow(0, e.piece_offset, e.values.numel()).copy_(e.values.view({-1}));
  trainer.parallelism().sum_over_data_ranks(part);
  return part;
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
  for (const StateEntry& entry : state_entries(trainer, parts)) {
    if (!entry.saved_here) continue;
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
    // Before the first step there are no moments.
    if (e.piece_offset >= 0 ? optimizer.step_count() == 0 : !e.values.defined()) continue;
    at::Tensor local = e.values;
    if (e.piece_offset >= 0) local = part_from_pieces(e, parts, trainer);
    // Every rank of the group takes part in the gather; its rank 0 saves.
    const at::Tensor whole = e.split >= 0 ? models::gather_tensor_parallel(local, e.split, *parts.group) : local;
    if (e.saved_here) state.slices.push_back(slice_of(e.name, e.global_shape, e.offset, whole, buffers));
  }
  if (buffers != nullptr && trainer.device().is_cuda()) {
    c10::cuda::getCurrentCUDAStream(trainer.device().index()).synchronize();  // the copies have landed
  }
  return state;
}

std::int64_t restore_training_state(Trainer& trainer, const TrainingState& header, const RangeReader& read) {
  at::NoGradGuard no_grad;
  const TensorParts parts{trainer.parallelism().tensor_parallel_group()};
  // The elements of `stored` (state of parameter `parameter`) this rank holds, shaped like `local`,
  // from `offset` in the parameter (ZeRO-1's piece) or in its part of the whole tensor (tensor
  // parallelism, where `local` may be a piece of the part too).
  auto read_local = [&](const std::string& stored, const std::string& parameter, std::int64_t offset,
                        const at::Tensor& local) {
    const int split = parts.split(parameter);
    at::Tensor values;
    if (split < 0) {
      values = read(stored, offset, local.numel());
    } else {
      const std::vector<std::int64_t> part_shape = shape_of(trainer, parameter);
      const std::int64_t part_numel = element_count(part_shape);
      const std::int64_t rank = parts.group->rank();
      at::Tensor part;
      if (split == 0) {
        part = read(stored, rank * part_numel, part_numel);  // a block of rows: one range
      } else {
        const std::vector<std::int64_t> shape = models::tensor_parallel_global_shape(part_shape, split, parts.count());
        part = models::tensor_parallel_part(read(stored, 0, element_count(shape)).view(shape), split, rank,
                                            parts.count());
      }
      values = part.reshape({-1}).narrow(0, offset, local.numel());
    }
    ALBION_CHECK(values.numel() == local.numel(), "training state: ", stored, " has ", values.numel(),
                 " elements, the model ", local.numel());
    return values.view(local.sizes());
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
