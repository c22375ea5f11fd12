// File: runtime/train/training_state.h
// Everything a resumed run needs to continue as if never stopped, as plain data for checkpoint/
// to store: the steps done, the data loader's position, the optimizer's step count, and named
// tensors as flat ranges ("slices") of their global shape, so a state captured on N data-parallel
// ranks can be read back on M (each rank asks for the ranges it needs).
//
//   TrainingState mine = capture_training_state(trainer, steps_done);   // this rank's slices
//   ... checkpoint/ writes every rank's slices, reads them back ...
//   restore_training_state(trainer, header, read_range);                // before the first step
//
// Names: "model.<parameter>", "optim.exp_avg.<parameter>" and "optim.exp_avg_sq.<parameter>",
// always whole tensors in fp32 (so a CPU run resumes bit for bit), written as slices by the ranks
// that hold them, spread so that no rank holds much more than its share of a checkpoint: a tensor
// every data-parallel rank holds alike (parameters; DDP's moments) by one data-parallel rank, round
// robin; ZeRO-1's moments by the ranks whose shards they are. Under tensor parallelism a row cut's
// part is one range of the whole, written by its rank; a column cut's part is strided, so the group
// gathers it and one rank writes it (with ZeRO-1 the data-parallel ranks first sum their pieces of
// it into the part). Each rank reads back the ranges it needs, so a state saved on one layout
// (data x tensor, DDP or ZeRO-1) resumes on any other.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "runtime/data/token_loader.h"

namespace albion::train {

class Trainer;

struct StateSlice {
  std::string name;
  std::vector<std::int64_t> global_shape;
  std::int64_t offset = 0;  // first element of the global tensor's stored elements
  at::Tensor data;          // CPU, contiguous, 1-D copy
  // Stored transposed (models::stored_transposed: a tensor cut by columns under tensor parallelism).
  bool transposed = false;
};

struct TrainingState {
  std::int64_t steps_done = 0;
  std::int64_t optimizer_steps = 0;
  data::LoaderState loader;
  std::vector<StateSlice> slices;  // this rank's
};

// A saved training state's tensors, from whichever ranks saved them.
struct StoredTensors {
  // `numel` elements of tensor `name`'s stored elements from `offset`; throws if the state lacks them.
  std::function<at::Tensor(const std::string& name, std::int64_t offset, std::int64_t numel)> read;
  // Whether tensor `name` is stored transposed (StateSlice::transposed).
  std::function<bool(const std::string& name)> transposed;
  // How many elements tensor `name` has whole (StateSlice::global_shape's).
  std::function<std::int64_t(const std::string& name)> elements;
};

// Host memory a repeated capture copies into: allocated (pinned, for a GPU run) on the first
// capture and reused after, so an asynchronous checkpoint holds the trainer only for the copy, not
// for page faults or pinning. The previous snapshot must no longer be in use.
class SnapshotBuffers {
 public:
  at::Tensor host_buffer(const std::string& name, const at::Tensor& like);
  at::Tensor host_buffer(const std::string& name, std::int64_t numel, at::ScalarType dtype, bool pinned);

 private:
  std::map<std::string, at::Tensor> buffers_;
};

// Allocates (and faults in) every buffer the captures of this rank will need, so that even the
// first checkpoint's snapshot is only a copy. Call after resuming, before the first step.
void reserve_snapshot_buffers(Trainer& trainer, SnapshotBuffers& buffers);

// After step `steps_done` (the parallelism attached): copies this rank's state to the CPU, into
// `buffers` when given (then the slices alias them), else into fresh tensors.
TrainingState capture_training_state(Trainer& trainer, std::int64_t steps_done, SnapshotBuffers* buffers = nullptr);

// Before the first step (the parallelism attached): loads parameters, optimizer moments, the
// optimizer step count and the loader position. Returns the step to continue from.
std::int64_t restore_training_state(Trainer& trainer, const TrainingState& header, const StoredTensors& stored);

}  // namespace albion::train
