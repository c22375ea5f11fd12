// File: runtime/parallel/data_parallel.h
// Data parallelism for the trainer (train::Parallelism), over the data-parallel communicator:
//   DataParallel   DDP: parameters replicated, gradients averaged in buckets overlapped with
//                  backward (collectives/gradient_buckets.h), every rank runs the full AdamW
//                  (Muon's Newton-Schulz iterations spread over the ranks);
//   ZeroOptimizer  ZeRO-1: parameters replicated, AdamW moments sharded 1/N over ranks on a flat
//                  buffer (collectives/flat_parameters.h): the gradients reduce-scattered in
//                  buckets during the step's last backward (collectives/sharded_gradients.h),
//                  clipped by the global norm, the local shard updated, the parameters
//                  all-gathered. A rank's shard is its range of every bucket. ZeRO-2: the same,
//                  but every micro-batch's backward reduce-scatters, so a rank never holds the
//                  whole gradient. Muon's matrices are seen whole for their update (Note [Muon on
//                  ZeRO's pieces], data_parallel.cpp).
// Both start by broadcasting rank 0's parameters, and both compute the step one process would
// compute over the same global batch (tests/runtime/parallel compare them under mpirun).
//
// Both also run over tensor-parallel groups (runtime/models/tensor_parallel.h): each rank's
// data-parallel peers hold the same part of the model, so the buckets and the flat buffer work
// unchanged; the gradient norm adds the cut parameters' squares over the tensor-parallel group,
// the LoRA factors each rank of it computed in part sum their gradients over it, and Muon puts
// each cut matrix together over it for its update.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "collectives/communicator.h"
#include "collectives/flat_parameters.h"
#include "collectives/gradient_buckets.h"
#include "collectives/sharded_gradients.h"
#include "runtime/config/recipe.h"
#include "runtime/optim/adamw.h"
#include "runtime/train/host_copy.h"
#include "runtime/train/parallelism.h"

namespace albion::parallel {

// What DDP and ZeRO share: the data-parallel communicator, means and agreement over it.
class DataParallelRanks : public train::Parallelism {
 public:
  int data_parallel_rank() const override { return data_->rank(); }
  int data_parallel_size() const override { return data_->size(); }
  at::Tensor mean(const at::Tensor& local) override;
  void sum_to_data_rank(at::Tensor& values, int root) override;
  bool any_rank(bool local) override;
  std::shared_ptr<collectives::Communicator> tensor_parallel_group() const override { return tensor_; }
  // Muon's matrices this rank orthogonalized so far: each matrix is orthogonalized by one
  // data-parallel rank a step (Note [Muon's matrices spread over DDP's ranks]).
  std::int64_t orthogonalized_here() const { return orthogonalized_here_; }

 protected:
  // `tensor`: the tensor-parallel group the trainer cuts its model over; null (or one rank) for none.
  DataParallelRanks(std::shared_ptr<collectives::Communicator> data, std::shared_ptr<collectives::Communicator> tensor);

  // For attach(): takes the trainer's device and returns its parameters, rank 0's on every rank.
  std::vector<at::Tensor> attach_parameters(train::Trainer& trainer);
  // For step(): the gradients of `parameters` (whole, or ZeRO-2's pieces) that each tensor-parallel
  // rank computed in part, summed over the group (linear, so before or after the data-parallel mean).
  void sum_partial_gradients(train::Trainer& trainer, const std::vector<optim::OptimizedParameter>& parameters);
  // The global gradient norm from squares this rank summed: [0] over cut parameters, [1] over
  // replicated ones; `over_data_ranks` when each data-parallel rank summed a shard of the gradients.
  at::Tensor global_norm(at::Tensor squares, bool over_data_ranks);
  // Muon's directions for the matrices this data-parallel rank orthogonalizes, `names[k]` shaped as
  // `parts[k]` on this rank (its part of the matrix, or all of it where it is not cut): `nesterov(k)`
  // gives matrix k's U, `take(k, direction)` receives this rank's part of orthogonalize(its whole U),
  // in bf16. Under tensor parallelism a collective over the group, whose ranks pass the same
  // matrices: each is put together, orthogonalized on one of them and sent back in parts (Note
  // [Muon's matrices spread over DDP's ranks]).
  void orthogonalize_matrices(const std::vector<std::string>& names, const std::vector<at::Tensor>& parts,
                              const std::function<at::Tensor(std::size_t)>& nesterov,
                              const std::function<void(std::size_t, const at::Tensor&)>& take);
  // muon_scale of the whole matrix `name` whose part (or whole) is `nesterov`.
  double whole_muon_scale(const std::string& name, const at::Tensor& nesterov) const;

  int tensor_parallel_size() const { return tensor_ != nullptr ? tensor_->size() : 1; }

  std::shared_ptr<collectives::Communicator> data_;
  std::shared_ptr<collectives::Communicator> tensor_;  // null: no tensor parallelism
  at::Device device_{at::kCPU};  // the trainer's, set by attach()
  std::int64_t orthogonalized_here_ = 0;

 private:
  std::deque<train::HostCopy> asked_;  // any_rank's agreements not read yet (one, on a CUDA device)
};

class DataParallel final : public DataParallelRanks {
 public:
  DataParallel(std::shared_ptr<collectives::Communicator> data, const config::ParallelConfig& config,
               std::shared_ptr<collectives::Communicator> tensor = nullptr);

  void attach(train::Trainer& trainer) override;
  void before_backward(bool last) override;
  at::Tensor step(train::Trainer& trainer, double lr) override;
  at::Tensor gradient_norm(std::vector<optim::OptimizedParameter>& parameters, bool fused) override;

  const collectives::GradientBuckets& buckets() const { return *buckets_; }

 private:
  // Every due parameter's direction, each computed by one rank and all-gathered, applied.
  void spread_muon_directions(const std::vector<optim::OptimizedParameter>& parameters, const optim::MuonPieces& muon);

  std::int64_t bucket_bytes_;
  bool overlap_;
  std::unique_ptr<collectives::GradientBuckets> buckets_;
};

class ZeroOptimizer final : public DataParallelRanks {
 public:
  // `stage` 1 or 2; `bucket_bytes`: the gradient buckets' size.
  explicit ZeroOptimizer(std::shared_ptr<collectives::Communicator> data,
                         std::shared_ptr<collectives::Communicator> tensor = nullptr, int stage = 1,
                         std::int64_t bucket_bytes = 25 << 20);

  void attach(train::Trainer& trainer) override;
  void before_backward(bool last) override;
  at::Tensor step(train::Trainer& trainer, double lr) override;
  std::int64_t optimizer_state_bytes(train::Trainer& trainer) const override;
  optim::AdamW& optimizer(train::Trainer&) override { return *shard_optimizer_; }

  // Bytes of gradient this rank holds between steps: its shard's.
  std::int64_t gradient_bytes() const;
  // Bytes of the fp32 buffers Muon's matrices are gathered in at each step and their directions
  // scattered back to this rank's pieces in, for the largest window (0 without Muon).
  std::int64_t muon_gather_bytes() const;
  // This rank's ranges of the flat parameter buffer, one per bucket.
  const std::vector<collectives::ShardRange>& shard_ranges() const { return gradients_->shard_ranges(); }

 private:
  // Buckets whose Muon matrices a step orthogonalizes together (Note [Muon on ZeRO's pieces]).
  struct MuonWindow {
    std::vector<std::size_t> buckets;
    collectives::ShardRange extent;     // of the flat buffer: those buckets, lowest to highest
    std::int64_t shard_length = 0;      // this rank's ranges of them, together
    std::vector<std::size_t> matrices;  // their Muon matrices, indices into flat_'s parameters
    std::vector<std::string> names;     // and their names
    std::vector<std::size_t> pieces;    // this rank's pieces of them, indices into the shard optimizer's
  };
  // For attach(): muon_windows_, from the whole parameters and each piece's bucket.
  void plan_muon_windows(const std::vector<optim::OptimizedParameter>& full,
                         const std::vector<std::size_t>& piece_buckets);
  // Muon's directions for this rank's pieces of `window`'s matrices, applied.
  void orthogonalize_window(const MuonWindow& window, const optim::MuonPieces& muon);

  int stage_;
  std::int64_t bucket_bytes_;
  std::unique_ptr<collectives::FlatParameters> flat_;
  std::unique_ptr<collectives::ShardedGradients> gradients_;
  std::unique_ptr<optim::AdamW> shard_optimizer_;
  std::vector<std::size_t> piece_parameters_;       // each piece's parameter, an index into flat_'s
  std::vector<MuonWindow> muon_windows_;
};

// DataParallel or ZeroOptimizer, as parallel.zero says, over `tensor` groups when given.
std::unique_ptr<train::Parallelism> make_data_parallelism(std::shared_ptr<collectives::Communicator> data,
                                                          const config::ParallelConfig& config,
                                                          std::shared_ptr<collectives::Communicator> tensor = nullptr);

}  // namespace albion::parallel
