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
// some tensors; checkpoints hold them whole, and each rank saves its own part. A row cut's part is
// one range of the whole; another cut's part (columns, or GPT-2's q, k and v) is strided: it is
// saved as its ranges of the whole in its stored order (models::in_stored_order: a column cut's
// transposed).
struct TensorParts {
  std::shared_ptr<collectives::Communicator> group;  // null: no tensor parallelism

  // How parameter `name` is cut over the group.
  models::TensorParallelCut split(const std::string& name) const {
    return group ? models::tensor_parallel_split(name) : models::TensorParallelCut{};
  }
  // Whether parameter `name`'s part is strided in its whole tensor.
  bool strided(const std::string& name) const {
    const models::TensorParallelCut cut = split(name);
    return cut.cut() && !cut.one_range();
  }
  std::int64_t count() const { return group ? group->size() : 1; }
  std::int64_t rank() const { return group ? group->rank() : 0; }
};

std::int64_t element_count(const std::vector<std::int64_t>& shape) {
  std::int64_t count = 1;
  for (std::int64_t size : shape) count *= size;
  return count;
}

// What a capture copies, in order, on this rank: every entry that takes part in a collective is
// listed in the same order on every rank of that collective's group.
struct StateEntry {
  std::string name;
  std::vector<std::int64_t> global_shape;
  std::int64_t offset = 0;  // of the saved values in the flattened whole tensor
  // This rank's whole tensor, part or piece; undefined for the optimizer's moments before its first
  // step (`like` then says what they will be).
  at::Tensor values;
  at::Tensor like;
  models::TensorParallelCut strided;  // cut(): a strided part, of `part_shape`, saved as its ranges
  std::vector<std::int64_t> part_shape;
  bool saved_here = false;  // this rank writes the slice
  std::int64_t saved_numel = 0;
  // ZeRO-1 under tensor parallelism, a strided cut: `values` is this rank's piece (undefined: none)
  // of the part's moment, at `piece_offset` in the part; the data-parallel ranks' pieces are first
  // summed into the part. -1: not spread.
  std::int64_t piece_offset = -1;
  int summing_rank = 0;  // the data-parallel rank the pieces are summed on (it saves the part)
};

const optim::OptimizedParameter* find_piece(const std::vector<optim::OptimizedParameter>& pieces,
                                            const std::string& name) {
  for (const optim::OptimizedParameter& piece : pieces) {
    if (piece.name == name) return &piece;
  }
  return nullptr;
}

// Who saves what, so that no rank holds much more of a checkpoint than its share (a whole 70B
// model's state is ~850 GB): tensors every data-parallel rank holds alike (parameters, DDP's
// moments) go round robin over the data-parallel ranks and, within one, over its tensor group;
// ZeRO-1's pieces are saved by the ranks holding them; a tensor-parallel part by its own rank.
std::vector<StateEntry> state_entries(Trainer& trainer, const TensorParts& parts) {
  Parallelism& parallel = trainer.parallelism();
  optim::AdamW& optimizer = parallel.optimizer(trainer);
  const bool sharded = &optimizer != &trainer.optimizer();  // ZeRO-1: moments in pieces over data ranks
  const std::int64_t data_ranks = parallel.data_parallel_size();
  const std::int64_t data_rank = parallel.data_parallel_rank();
  std::int64_t turn = 0;  // of the next tensor saved once for all ranks, the same on every rank
  std::vector<StateEntry> entries;
  std::map<std::string, std::vector<std::int64_t>> part_shapes;  // this rank's, by parameter
  for (const auto& [name, tensor] : trainer.model().named_parameters()) part_shapes[name] = tensor.sizes().vec();

  // An entry for `values`: this rank's part of parameter `parameter` (`local_numel` elements), or
  // a piece of it at `offset`; `tensor_owner`: whether this rank writes what its group holds alike.
  auto add = [&](const std::string& name, const std::string& parameter, const at::Tensor& values,
                 const at::Tensor& like, std::int64_t local_numel, std::int64_t offset, bool tensor_owner) {
    const models::TensorParallelCut split = parts.split(parameter);
    const std::vector<std::int64_t>& part_shape = part_shapes.at(parameter);
    StateEntry e;
    e.name = name;
    e.global_shape = models::tensor_parallel_global_shape(part_shape, split.dim, parts.count());
    e.offset = offset;
    e.values = values;
    e.like = like;
    e.saved_numel = local_numel;
    if (split.one_range()) {
      e.offset += parts.rank() * element_count(part_shape);
      e.saved_here = true;
    } else if (split.cut()) {
      e.strided = split;
      e.part_shape = part_shape;
      e.offset = 0;
      e.saved_numel = element_count(part_shape);
      e.saved_here = true;
    } else {
      e.saved_here = tensor_owner;
    }
    entries.push_back(std::move(e));
  };
  // The next tensor saved once for all ranks: the data-parallel rank whose group takes it and, in
  // that group, whether this rank writes it.
  struct Turn {
    std::int64_t data_owner;
    bool tensor_owner;
  };
  auto take_turn = [&] {
    const std::int64_t k = turn++;
    return Turn{k % data_ranks, (k / data_ranks) % parts.count() == parts.rank()};
  };
  auto add_moments = [&](const optim::OptimizedParameter& p, std::int64_t offset, bool tensor_owner) {
    const at::Tensor like = p.parameter.detach().to(at::kFloat);  // moments are fp32
    const std::int64_t numel = p.parameter.numel();
    add("optim.exp_avg." + p.name, p.name, p.exp_avg, like, numel, offset, tensor_owner);
    if (!p.orthogonalized) add("optim.exp_avg_sq." + p.name, p.name, p.exp_avg_sq, like, numel, offset, tensor_owner);
  };

  // Under LoRA the frozen base is not state: model.init holds it, named by its digest.
  for (auto& [name, tensor] : trainer.model().trainable_parameters()) {
    const Turn t = take_turn();
    if (t.data_owner == data_rank) add("model." + name, name, tensor, tensor, tensor.numel(), 0, t.tensor_owner);
  }
  if (!sharded) {
    for (const optim::OptimizedParameter& p : optimizer.parameters()) {
      const Turn t = take_turn();
      if (t.data_owner == data_rank) add_moments(p, 0, t.tensor_owner);
    }
    return entries;
  }
  // ZeRO-1: the same pieces on every rank of a tensor group, each written by one of them.
  std::int64_t piece_index = 0;
  for (const optim::OptimizedParameter& p : optimizer.parameters()) {
    if (parts.strided(p.name)) continue;  // below
    add_moments(p, p.offset, piece_index++ % parts.count() == parts.rank());
  }
  // Strided cuts: every data-parallel rank adds its piece to the part, in the trainer's order.
  for (const optim::OptimizedParameter& whole : trainer.optimizer().parameters()) {
    if (!parts.strided(whole.name)) continue;
    const Turn t = take_turn();
    const optim::OptimizedParameter* piece = find_piece(optimizer.parameters(), whole.name);
    optim::OptimizedParameter none;  // this rank's shard misses the parameter: it adds zeros
    none.name = whole.name;
    none.parameter = whole.parameter;
    none.orthogonalized = whole.orthogonalized;
    const std::size_t first = entries.size();
    add_moments(piece ? *piece : none, 0, t.tensor_owner);  // AdamW's two moments, Muon's one
    for (std::size_t i = first; i < entries.size(); ++i) {
      StateEntry& e = entries[i];
      e.piece_offset = piece ? piece->offset : 0;
      e.summing_rank = static_cast<int>(t.data_owner);
      e.saved_here = t.data_owner == data_rank;  // the others' pieces are summed there
    }
  }
  return entries;
}

// This rank's slices of `local`, entry `e`'s values: one, or a strided part's ranges of its stored
// tensor (copied to the host once, in its stored order).
void add_slices(const StateEntry& e, const at::Tensor& local, const TensorParts& parts, SnapshotBuffers* buffers,
                std::vector<StateSlice>& slices) {
  if (!e.strided.cut()) {
    slices.push_back(slice_of(e.name, e.global_shape, e.offset, local, buffers));
    return;
  }
  const at::Tensor stored = slice_of(e.name, e.global_shape, 0,
                                     models::in_stored_order(local.detach().view(e.part_shape), e.strided), buffers)
                                .data;
  std::int64_t done = 0;
  for (const models::ElementRange& range :
       models::tensor_parallel_stored_ranges(e.strided, e.part_shape, parts.rank(), parts.count())) {
    slices.push_back({e.name, e.global_shape, range.offset, stored.narrow(0, done, range.numel),
                      models::stored_transposed(e.strided)});
    done += range.numel;
  }
}

// This rank's part of a cut parameter's moment from the data-parallel ranks' pieces of it, on the
// data-parallel rank that saves it (a reduce: the others need not receive it).
at::Tensor part_from_pieces(const StateEntry& e, Trainer& trainer) {
  at::Tensor part = at::zeros(e.part_shape, e.like.options());
  if (e.values.defined()) part.view({-1}).narrow(0, e.piece_offset, e.values.numel()).copy_(e.values.view({-1}));
  trainer.parallelism().sum_to_data_rank(part, e.summing_rank);
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
    if (entry.saved_here) {
      buffers.host_buffer(entry.name, entry.saved_numel, entry.like.scalar_type(), entry.like.is_cuda());
    }
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
    const at::Tensor local = e.piece_offset >= 0 ? part_from_pieces(e, trainer) : e.values;
    if (e.saved_here) add_slices(e, local, parts, buffers, state.slices);
  }
  if (buffers != nullptr && trainer.device().is_cuda()) {
    c10::cuda::getCurrentCUDAStream(trainer.device().index()).synchronize();  // the copies have landed
  }
  return state;
}

std::int64_t restore_training_state(Trainer& trainer, const TrainingState& header, const StoredTensors& stored) {
  at::NoGradGuard no_grad;
  const TensorParts parts{trainer.parallelism().tensor_parallel_group()};
  // The elements of tensor `name` (state of parameter `parameter`) this rank holds, shaped like
  // `local`, from `offset` in the parameter (ZeRO-1's piece) or in its part of the whole tensor
  // (tensor parallelism, where `local` may be a piece of the part too).
  auto read_local = [&](const std::string& name, const std::string& parameter, std::int64_t offset,
                        const at::Tensor& local) {
    const models::TensorParallelCut cut = parts.split(parameter);
    const bool transposed = stored.transposed(name);
    std::function<at::Tensor(std::int64_t, std::int64_t)> read = [&](std::int64_t at, std::int64_t numel) {
      return stored.read(name, at, numel);
    };
    if (models::holds_vocabulary_rows(parameter) && !transposed) {
      // Note [A checkpoint's vocabulary on another number of ranks]
      read = models::read_with_zeros_past(std::move(read), stored.elements(name), local.scalar_type());
    }
    at::Tensor values;
    if (!cut.cut() && !transposed) {
      values = read(offset, local.numel());
    } else {
      values = models::read_tensor_parallel_part(read, cut, shape_of(trainer, parameter), parts.rank(),
                                                 parts.count(), transposed)
                   .reshape({-1})
                   .narrow(0, offset, local.numel());
    }
    ALBION_CHECK(values.numel() == local.numel(), "training state: ", name, " has ", values.numel(),
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
      if (!p.orthogonalized) p.exp_avg_sq = moment("optim.exp_avg_sq.");  // Muon keeps one moment
    }
  }
  optimizer.set_step_count(header.optimizer_steps);
  trainer.train_loader().restore(header.loader);
  return header.steps_done;
}

}  // namespace albion::train
