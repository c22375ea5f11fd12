// File: runtime/parallel/data_parallel.cpp
#include "runtime/parallel/data_parallel.h"

#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <set>

#include "runtime/base/check.h"
#include "runtime/base/log.h"
#include "runtime/models/tensor_parallel.h"
#include "runtime/parallel/muon_owners.h"
#include "runtime/train/trainer.h"

namespace albion::parallel {
namespace {

using collectives::ReduceOp;

std::vector<at::Tensor> trained_parameters(train::Trainer& trainer) {
  std::vector<at::Tensor> tensors;
  std::set<const void*> seen;
  for (const optim::OptimizedParameter& p : trainer.optimizer().parameters()) {
    ALBION_CHECK(seen.insert(p.parameter.unsafeGetTensorImpl()).second, "parameter ", p.name,
                 " appears twice in the optimizer");
    tensors.push_back(p.parameter);
  }
  return tensors;
}

// The squares of the gradients of `parameters`, on `device`: [0] over those cut over a
// tensor-parallel group (when `tensor_parallel`), [1] over the others.
at::Tensor squares_cut_and_replicated(const std::vector<optim::OptimizedParameter>& parameters, bool fused,
                                      bool tensor_parallel, at::Device device) {
  std::vector<optim::OptimizedParameter> cut, replicated;
  for (const optim::OptimizedParameter& p : parameters) {
    (tensor_parallel && models::tensor_parallel_split(p.name).cut() ? cut : replicated).push_back(p);
  }
  return at::stack({optim::squared_gradient_norm(cut, fused).to(device, at::kDouble),
                    optim::squared_gradient_norm(replicated, fused).to(device, at::kDouble)});
}

}  // namespace

DataParallelRanks::DataParallelRanks(std::shared_ptr<collectives::Communicator> data,
                                     std::shared_ptr<collectives::Communicator> tensor)
    : data_(std::move(data)), tensor_(tensor != nullptr && tensor->size() > 1 ? std::move(tensor) : nullptr) {}

// The same seed makes every rank's parameters equal already; the broadcast makes it a guarantee,
// also for parameters that only rank 0 loaded.
std::vector<at::Tensor> DataParallelRanks::attach_parameters(train::Trainer& trainer) {
  device_ = trainer.device();
  asked_.clear();  // a run starts with no agreement pending
  std::vector<at::Tensor> parameters = trained_parameters(trainer);
  at::NoGradGuard no_grad;
  std::vector<std::shared_ptr<collectives::Work>> works;
  for (const at::Tensor& p : parameters) works.push_back(data_->broadcast(p.detach(), 0));
  for (const auto& work : works) work->wait();
  return parameters;
}

at::Tensor DataParallelRanks::mean(const at::Tensor& local) {
  at::Tensor result = local.detach().clone().contiguous();
  data_->all_reduce(result, ReduceOp::kAvg)->wait();
  return result;
}

// Exact for state spread over the ranks with zeros elsewhere: x + 0 is x.
void DataParallelRanks::sum_to_data_rank(at::Tensor& values, int root) {
  data_->reduce(values, ReduceOp::kSum, root)->wait();
}

bool DataParallelRanks::any_rank(bool local) {
  at::Tensor flag = at::full({1}, local ? 1 : 0, at::TensorOptions().dtype(at::kInt).device(device_));
  data_->all_reduce(flag, ReduceOp::kMax)->wait();
  // Every rank of the job, not only this rank's data-parallel peers: a tensor-parallel group whose
  // ranks disagreed would leave some waiting in a collective the others never join.
  if (tensor_) tensor_->all_reduce(flag, ReduceOp::kMax)->wait();
  asked_.emplace_back(flag);
  // On a CUDA device this call's answer is read at the next call, when the host waits for the step
  // before anyway (Note [Steps read one late]); read now, it would wait for all the queued work.
  if (device_.is_cuda() && asked_.size() < 2) return false;
  train::HostCopy answer = std::move(asked_.front());
  asked_.pop_front();
  return answer.read()[0] != 0;
}

DataParallel::DataParallel(std::shared_ptr<collectives::Communicator> data, const config::ParallelConfig& config,
                           std::shared_ptr<collectives::Communicator> tensor)
    : DataParallelRanks(std::move(data), std::move(tensor)),
      bucket_bytes_(static_cast<std::int64_t>(config.bucket_mb * (1 << 20))),
      overlap_(config.overlap) {}

void DataParallel::attach(train::Trainer& trainer) {
  buckets_ = std::make_unique<collectives::GradientBuckets>(attach_parameters(trainer), bucket_bytes_, data_, overlap_);
  log::debug("DDP over ", data_->size(), " ranks: ", buckets_->bucket_count(), " gradient bucket(s)",
             overlap_ ? ", overlapped with backward" : ", after backward");
  optim::AdamW& optimizer = trainer.optimizer();
  if (tensor_ != nullptr || data_->size() > 1) {
    optimizer.set_whole_matrices([this, &optimizer](const std::vector<at::Tensor>& nesterov) {
      return spread_muon_directions(optimizer.parameters(), nesterov);
    });
  }
}

// Note [Muon's matrices spread over DDP's ranks]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Under DDP every rank holds the same averaged gradients, so every rank would run the same
// Newton-Schulz iterations on every matrix: N times the work for one result. Instead each matrix
// has one owner (spread_over_ranks, by Newton-Schulz's cost, the same assignment on every rank),
// the owner orthogonalizes it, and the directions are all-gathered, as the modded-nanogpt
// speedruns do. Newton-Schulz returns bf16, so they travel in bf16 and nothing is rounded: every
// rank applies the very direction it would have computed. The price: one all-gather of half the
// Muon matrices' fp32 bytes per step, and a transient bf16 buffer of them (padded to the most
// loaded rank's share). Under tensor parallelism the owner's whole tensor-parallel group puts the
// matrix together (muon_direction): its ranks share their data-parallel rank, so they own the same
// matrices and their collectives pair up.
std::vector<optim::PieceDirection> DataParallel::spread_muon_directions(
    const std::vector<optim::OptimizedParameter>& parameters, const std::vector<at::Tensor>& nesterov) {
  std::vector<std::size_t> matrices;  // the orthogonalized parameters' indices
  std::vector<double> costs;
  for (std::size_t i = 0; i < nesterov.size(); ++i) {
    if (!nesterov[i].defined()) continue;
    matrices.push_back(i);
    costs.push_back(newton_schulz_cost(nesterov[i].size(0), nesterov[i].size(1)));
  }
  std::vector<optim::PieceDirection> directions(nesterov.size());
  if (matrices.empty()) return directions;
  const int ranks = data_->size();
  const std::vector<int> owners = spread_over_ranks(costs, ranks);
  std::vector<std::int64_t> shares(static_cast<std::size_t>(ranks), 0);  // elements each rank computes
  for (std::size_t k = 0; k < matrices.size(); ++k) shares[owners[k]] += nesterov[matrices[k]].numel();
  const std::int64_t block = *std::max_element(shares.begin(), shares.end());
  const at::Tensor gathered = at::empty({block * ranks}, nesterov[matrices.front()].options().dtype(at::kBFloat16));
  std::fill(shares.begin(), shares.end(), 0);  // now: elements placed in each rank's block
  for (std::size_t k = 0; k < matrices.size(); ++k) {
    const std::size_t i = matrices[k];
    const at::Tensor slot = gathered.narrow(0, block * owners[k] + shares[owners[k]], nesterov[i].numel());
    shares[owners[k]] += nesterov[i].numel();
    if (owners[k] == data_->rank()) {
      slot.copy_(muon_direction(parameters[i].name, nesterov[i]).orthogonal.reshape({-1}));
      ++orthogonalized_here_;
    }
    directions[i] = {slot.view(nesterov[i].sizes()), whole_muon_scale(parameters[i].name, nesterov[i])};
  }
  if (ranks > 1) data_->all_gather(gathered, gathered.narrow(0, block * data_->rank(), block))->wait();
  return directions;
}

optim::PieceDirection DataParallelRanks::muon_direction(const std::string& name, const at::Tensor& nesterov) {
  const models::TensorParallelCut cut = models::tensor_parallel_split(name);
  if (tensor_ == nullptr || !cut.cut()) return {optim::orthogonalize(nesterov), whole_muon_scale(name, nesterov)};
  const at::Tensor whole = models::gather_tensor_parallel(nesterov, cut.dim, *tensor_, cut.groups);
  return {models::tensor_parallel_part(optim::orthogonalize(whole), cut.dim, tensor_->rank(), tensor_->size(),
                                       cut.groups),
          whole_muon_scale(name, nesterov)};
}

double DataParallelRanks::whole_muon_scale(const std::string& name, const at::Tensor& nesterov) const {
  const models::TensorParallelCut cut = models::tensor_parallel_split(name);
  const std::vector<std::int64_t> whole = models::tensor_parallel_global_shape(
      nesterov.sizes(), tensor_ != nullptr ? cut.dim : -1, tensor_ != nullptr ? tensor_->size() : 1);
  return optim::muon_scale(whole[0], whole[1]);
}

void DataParallel::before_backward(bool last) { buckets_->prepare_backward(last); }

at::Tensor DataParallel::step(train::Trainer& trainer, double lr) {
  buckets_->finish();
  sum_partial_gradients(trainer, trainer.optimizer().parameters());
  return Parallelism::step(trainer, lr);
}

// The LoRA factors on the whole side of a cut layer and, under sequence parallelism, the norms, in
// one all-reduce. Linear, so it commutes with the data-parallel mean and may come before or after it.
void DataParallelRanks::sum_partial_gradients(train::Trainer& trainer,
                                              const std::vector<optim::OptimizedParameter>& parameters) {
  if (tensor_ == nullptr) return;
  const bool sequence_parallel = trainer.model().config().sequence_parallel;
  std::vector<at::Tensor> gradients;
  for (const optim::OptimizedParameter& p : parameters) {
    if (models::tensor_parallel_partial_gradient(p.name, sequence_parallel) && p.gradient().defined()) {
      gradients.push_back(p.gradient());
    }
  }
  if (gradients.empty()) return;
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> flat;
  for (const at::Tensor& g : gradients) flat.push_back(g.reshape({-1}));
  at::Tensor sum = at::cat(flat);
  tensor_->all_reduce(sum, ReduceOp::kSum)->wait();
  std::int64_t offset = 0;
  for (const at::Tensor& g : gradients) {
    g.copy_(sum.narrow(0, offset, g.numel()).view_as(g));
    offset += g.numel();
  }
}

// A cut parameter's squares are summed over the tensor-parallel group; a replicated one's gradient
// is the same on every rank of it and counts once.
at::Tensor DataParallelRanks::global_norm(at::Tensor squares, bool over_data_ranks) {
  if (over_data_ranks) data_->all_reduce(squares, ReduceOp::kSum)->wait();
  if (tensor_ != nullptr) tensor_->all_reduce(squares.narrow(0, 0, 1), ReduceOp::kSum)->wait();
  return squares.sum().sqrt();
}

at::Tensor DataParallel::gradient_norm(std::vector<optim::OptimizedParameter>& parameters, bool fused) {
  if (tensor_ == nullptr) return Parallelism::gradient_norm(parameters, fused);
  return global_norm(squares_cut_and_replicated(parameters, fused, true, device_), false);
}

ZeroOptimizer::ZeroOptimizer(std::shared_ptr<collectives::Communicator> data,
                             std::shared_ptr<collectives::Communicator> tensor, int stage, std::int64_t bucket_bytes)
    : DataParallelRanks(std::move(data), std::move(tensor)), stage_(stage), bucket_bytes_(bucket_bytes) {
  ALBION_CHECK(stage == 1 || stage == 2, "ZeRO stage ", stage, " (1 or 2)");
}

void ZeroOptimizer::attach(train::Trainer& trainer) {
  const std::vector<optim::OptimizedParameter>& full = trainer.optimizer().parameters();
  flat_ = std::make_unique<collectives::FlatParameters>(attach_parameters(trainer));
  gradients_ = std::make_unique<collectives::ShardedGradients>(*flat_, bucket_bytes_, data_);

  // The optimizer sees one piece per parameter overlapping this rank's ranges (a parameter lies in
  // one bucket, so it has at most one): a view of the flat parameters, with the same name and
  // weight-decay rule as the whole parameter (and its offset in it), so the element-wise update is
  // exactly the one DDP's full AdamW makes.
  std::vector<optim::OptimizedParameter> pieces;
  for (std::size_t b = 0; b < gradients_->shard_ranges().size(); ++b) {
    const collectives::ShardRange& range = gradients_->shard_ranges()[b];
    for (const collectives::ParameterSpan& span : flat_->spans(range)) {
      optim::OptimizedParameter piece;
      piece.name = full[span.parameter].name;
      piece.offset = span.parameter_offset;
      piece.parameter = flat_->values().narrow(0, span.flat_offset, span.length);
      piece.decayed = full[span.parameter].decayed;
      piece.orthogonalized = full[span.parameter].orthogonalized;
      piece.shard_gradient = gradients_->gradients().narrow(
          0, gradients_->shard_offsets()[b] + span.flat_offset - range.offset, span.length);
      pieces.push_back(std::move(piece));
      piece_parameters_.push_back(span.parameter);
    }
  }
  shard_optimizer_ = std::make_unique<optim::AdamW>(std::move(pieces), trainer.optimizer().options());
  for (std::size_t b = 0; b < gradients_->bucket_ranges().size(); ++b) {
    const std::vector<collectives::ParameterSpan> spans = flat_->spans(gradients_->bucket_ranges()[b]);
    auto orthogonalized = [&](const collectives::ParameterSpan& span) { return full[span.parameter].orthogonalized; };
    if (std::any_of(spans.begin(), spans.end(), orthogonalized)) orthogonalized_buckets_.push_back(b);
  }
  for (std::size_t p = 0; p < full.size(); ++p) {
    if (!full[p].orthogonalized) continue;
    muon_parameters_.push_back(p);
    muon_names_.push_back(full[p].name);
  }
  if (!orthogonalized_buckets_.empty()) {
    // Buckets go in reverse order (Note [Gradient buckets]): from the lowest offset to the highest.
    std::int64_t begin = flat_->numel();
    std::int64_t end = 0;
    for (const std::size_t b : orthogonalized_buckets_) {
      begin = std::min(begin, gradients_->bucket_ranges()[b].offset);
      end = std::max(end, gradients_->bucket_ranges()[b].offset + gradients_->bucket_ranges()[b].length);
      muon_shard_length_ += gradients_->shard_ranges()[b].length;
    }
    muon_extent_ = {begin, end - begin};
    shard_optimizer_->set_whole_matrices([this](const std::vector<at::Tensor>& nesterov) {
      return whole_matrix_directions(nesterov);
    });
  }
  log::debug("ZeRO-", stage_, " over ", data_->size(), " ranks: this rank updates ", gradients_->gradients().numel(),
             " of ", flat_->numel(), " elements in ", gradients_->shard_ranges().size(), " bucket(s)");
}

// ZeRO-1 reduces the accumulated gradients in the step's last backward, ZeRO-2 in every one.
void ZeroOptimizer::before_backward(bool last) { gradients_->prepare_backward(stage_ == 2 || last); }

at::Tensor ZeroOptimizer::step(train::Trainer& trainer, double lr) {
  at::NoGradGuard no_grad;
  gradients_->finish();
  // After the data-parallel mean, on the shard's pieces (a tensor-parallel group's ranks hold the
  // same pieces): the sum over the group commutes with the mean.
  sum_partial_gradients(trainer, shard_optimizer_->parameters());

  // The global norm from every shard's sums of squares.
  std::vector<optim::OptimizedParameter>& pieces = shard_optimizer_->parameters();
  at::Tensor norm = global_norm(
      squares_cut_and_replicated(pieces, shard_optimizer_->options().fused, tensor_ != nullptr, device_), true);
  shard_optimizer_->step(lr, optim::clip_factor(norm, trainer.recipe().optim.grad_clip));

  // Every bucket's values from the ranks that updated them, in place.
  const std::vector<collectives::ShardRange>& buckets = gradients_->bucket_ranges();
  const std::vector<collectives::ShardRange>& mine = gradients_->shard_ranges();
  std::vector<std::shared_ptr<collectives::Work>> works;
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    works.push_back(data_->all_gather(flat_->values().narrow(0, buckets[i].offset, buckets[i].length),
                                      flat_->values().narrow(0, mine[i].offset, mine[i].length)));
  }
  for (const auto& work : works) work->wait();
  gradients_->zero_gradients();
  return norm;
}

// Note [Muon on ZeRO's pieces]
// Muon orthogonalizes a matrix whole, but a rank holds the momentum of its pieces only. As
// Moonshot's Distributed Muon does, each rank computes its pieces' Nesterov momentum U and the
// pieces are all-gathered into whole matrices (in the parameters' flat layout, bucket by bucket,
// the buckets that hold a Muon matrix only). Then, as under DDP (Note [Muon's matrices spread over
// DDP's ranks]), each matrix is orthogonalized by one rank, which writes the direction over U in
// the gathered buffer while the others zero it there, and the buckets are reduce-scattered back:
// each rank receives its pieces' directions, a sum of one bf16 value and zeros in fp32, so exactly
// what it would have computed. The momentum stays sharded; the price is one all-gather and one
// reduce-scatter of the Muon matrices in fp32 per step, and the transient buffers: from the first
// such bucket to the last (the embeddings and LM head, at the ends, left out), and this rank's
// ranges of them. Under tensor parallelism a rank's matrix is its part of a cut one:
// muon_direction gathers the parts over the tensor-parallel group (its ranks hold the same pieces
// and own the same matrices, so their collectives pair up), orthogonalizes the whole matrix and
// keeps the rank's part, for DDP (whose pieces are whole parts) as for ZeRO.
std::vector<optim::PieceDirection> ZeroOptimizer::whole_matrix_directions(const std::vector<at::Tensor>& nesterov) {
  const std::vector<optim::OptimizedParameter>& pieces = shard_optimizer_->parameters();
  const at::TensorOptions fp32 = flat_->values().options().dtype(at::kFloat);
  // Zeroed: what lies between the matrices is reduce-scattered too, as zeros, and never read.
  const at::Tensor gathered = at::zeros({muon_extent_.length}, fp32);
  auto flat_range = [&](std::int64_t offset, std::int64_t length) {  // offsets in the flat parameters
    return gathered.narrow(0, offset - muon_extent_.offset, length);
  };
  auto matrix_of = [&](std::size_t parameter) {  // an index into flat_'s parameters
    const at::Tensor& whole = flat_->parameters()[parameter];
    return flat_range(flat_->offset(parameter), whole.numel()).view(whole.sizes());
  };
  // The pieces' U put together.
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    if (!nesterov[i].defined()) continue;
    matrix_of(piece_parameters_[i]).view({-1}).narrow(0, pieces[i].offset, nesterov[i].numel()).copy_(nesterov[i]);
  }
  const std::vector<collectives::ShardRange>& buckets = gradients_->bucket_ranges();
  const std::vector<collectives::ShardRange>& mine = gradients_->shard_ranges();
  std::vector<std::shared_ptr<collectives::Work>> works;
  for (const std::size_t b : orthogonalized_buckets_) {
    works.push_back(data_->all_gather(flat_range(buckets[b].offset, buckets[b].length),
                                      flat_range(mine[b].offset, mine[b].length)));
  }
  for (const auto& work : works) work->wait();

  // Each matrix's direction where its U was, on its owner; zeros elsewhere.
  std::vector<double> costs;
  for (const std::size_t p : muon_parameters_) {
    const at::Tensor& whole = flat_->parameters()[p];
    costs.push_back(newton_schulz_cost(whole.size(0), whole.size(1)));
  }
  const std::vector<int> owners = spread_over_ranks(costs, data_->size());
  for (std::size_t k = 0; k < muon_parameters_.size(); ++k) {
    const at::Tensor matrix = matrix_of(muon_parameters_[k]);
    if (owners[k] == data_->rank()) {
      matrix.copy_(muon_direction(muon_names_[k], matrix).orthogonal);
      ++orthogonalized_here_;
    } else {
      matrix.zero_();
    }
  }
  // Summed into this rank's ranges of those buckets, one after another.
  const at::Tensor received = at::empty({muon_shard_length_}, fp32);
  std::vector<std::pair<collectives::ShardRange, std::int64_t>> placed;  // a range of mine, where it is in `received`
  std::int64_t filled = 0;
  works.clear();
  for (const std::size_t b : orthogonalized_buckets_) {
    works.push_back(data_->reduce_scatter(received.narrow(0, filled, mine[b].length),
                                          flat_range(buckets[b].offset, buckets[b].length),
                                          collectives::ReduceOp::kSum));
    placed.emplace_back(mine[b], filled);
    filled += mine[b].length;
  }
  for (const auto& work : works) work->wait();
  std::vector<optim::PieceDirection> directions(pieces.size());
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    if (!nesterov[i].defined()) continue;
    const std::int64_t offset = flat_->offset(piece_parameters_[i]) + pieces[i].offset;  // in the flat parameters
    for (const auto& [range, start] : placed) {
      if (offset < range.offset || offset >= range.offset + range.length) continue;
      directions[i] = {received.narrow(0, start + offset - range.offset, nesterov[i].numel()),
                       whole_muon_scale(pieces[i].name, flat_->parameters()[piece_parameters_[i]])};
      break;
    }
  }
  return directions;
}

std::int64_t ZeroOptimizer::gradient_bytes() const {
  return gradients_->gradients().numel() * gradients_->gradients().element_size();
}

std::int64_t ZeroOptimizer::optimizer_state_bytes(train::Trainer&) const {
  return shard_optimizer_ ? shard_optimizer_->state_bytes() : 0;
}

std::unique_ptr<train::Parallelism> make_data_parallelism(std::shared_ptr<collectives::Communicator> data,
                                                          const config::ParallelConfig& config,
                                                          std::shared_ptr<collectives::Communicator> tensor) {
  if (config.zero >= 1) {
    return std::make_unique<ZeroOptimizer>(std::move(data), std::move(tensor), static_cast<int>(config.zero),
                                           static_cast<std::int64_t>(config.bucket_mb * (1 << 20)));
  }
  return std::make_unique<DataParallel>(std::move(data), config, std::move(tensor));
}

}  // namespace albion::parallel
