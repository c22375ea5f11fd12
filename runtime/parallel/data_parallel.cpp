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
    optimizer.set_whole_matrices(
        [this, &optimizer](const optim::MuonPieces& muon) { spread_muon_directions(optimizer.parameters(), muon); });
  }
}

// Note [Muon's matrices spread over DDP's ranks]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Under DDP every rank holds the same averaged gradients, so every rank would run the same
// Newton-Schulz iterations on every matrix: N times the work for one result. Instead each matrix
// has one owner (spread_over_ranks, by Newton-Schulz's cost, the same assignment on every rank),
// the owner orthogonalizes it, and the directions are all-gathered, as the modded-nanogpt
// speedruns do. Newton-Schulz returns bf16, so they travel in bf16 and nothing is rounded: every
// rank applies the very direction it would have computed. The matrices go in windows of
// kMuonMatricesPerRank per rank, each window's directions applied before the next, so the
// transient bf16 buffer holds a window (padded to the most loaded rank's share), not every matrix,
// and only the owner computes U. The price: one all-gather of half the Muon matrices' fp32 bytes
// per step.
//
// Under tensor parallelism each rank holds a part of a cut matrix, and the ranks of the owner's
// tensor-parallel group (which share its data-parallel rank, so own the same matrices) spread its
// matrices over themselves the same way (orthogonalize_matrices): each matrix is put together over
// the group, orthogonalized on one rank of it, broadcast back in bf16, and every rank keeps its
// part. A tensor-parallel group of 8 thus runs Newton-Schulz on each matrix once, not 8 times.
void DataParallel::spread_muon_directions(const std::vector<optim::OptimizedParameter>& parameters,
                                          const optim::MuonPieces& muon) {
  std::vector<std::size_t> matrices;  // the orthogonalized parameters' indices
  for (std::size_t i = 0; i < muon.due.size(); ++i) {
    if (muon.due[i]) matrices.push_back(i);
  }
  const int ranks = data_->size();
  const std::size_t window = kMuonMatricesPerRank * static_cast<std::size_t>(ranks * tensor_parallel_size());
  for (std::size_t first = 0; first < matrices.size(); first += window) {
    const std::size_t last = std::min(first + window, matrices.size());
    const std::vector<std::size_t> some(matrices.begin() + static_cast<std::ptrdiff_t>(first),
                                        matrices.begin() + static_cast<std::ptrdiff_t>(last));
    std::vector<double> costs;
    for (const std::size_t i : some) {
      costs.push_back(newton_schulz_cost(parameters[i].parameter.size(0), parameters[i].parameter.size(1)));
    }
    const std::vector<int> owners = spread_over_ranks(costs, ranks);
    std::vector<std::int64_t> shares(static_cast<std::size_t>(ranks), 0);  // elements each rank computes
    for (std::size_t k = 0; k < some.size(); ++k) shares[owners[k]] += parameters[some[k]].parameter.numel();
    const std::int64_t block = *std::max_element(shares.begin(), shares.end());
    const at::Tensor gathered =
        at::empty({block * ranks}, parameters[some.front()].parameter.options().dtype(at::kBFloat16));
    std::fill(shares.begin(), shares.end(), 0);  // now: elements placed in each rank's block
    std::vector<at::Tensor> slots;
    std::vector<std::size_t> mine;  // indices into `some`
    std::vector<std::string> names;
    std::vector<at::Tensor> parts;
    for (std::size_t k = 0; k < some.size(); ++k) {
      const at::Tensor& parameter = parameters[some[k]].parameter;
      const std::int64_t offset = block * owners[k] + shares[owners[k]];
      slots.push_back(gathered.narrow(0, offset, parameter.numel()).view(parameter.sizes()));
      shares[owners[k]] += parameter.numel();
      if (owners[k] != data_->rank()) continue;
      mine.push_back(k);
      names.push_back(parameters[some[k]].name);
      parts.push_back(parameter);
    }
    orthogonalize_matrices(
        names, parts, [&](std::size_t j) { return muon.nesterov(some[mine[j]]); },
        [&](std::size_t j, const at::Tensor& direction) { slots[mine[j]].copy_(direction); });
    if (ranks > 1) data_->all_gather(gathered, gathered.narrow(0, block * data_->rank(), block))->wait();
    for (std::size_t k = 0; k < some.size(); ++k) {
      const optim::OptimizedParameter& p = parameters[some[k]];
      muon.apply(some[k], slots[k], whole_muon_scale(p.name, p.parameter));
    }
  }
}

void DataParallelRanks::orthogonalize_matrices(const std::vector<std::string>& names,
                                               const std::vector<at::Tensor>& parts,
                                               const std::function<at::Tensor(std::size_t)>& nesterov,
                                               const std::function<void(std::size_t, const at::Tensor&)>& take) {
  if (tensor_ == nullptr || tensor_->size() == 1) {
    for (std::size_t k = 0; k < names.size(); ++k) take(k, optim::orthogonalize(nesterov(k)));
    orthogonalized_here_ += static_cast<std::int64_t>(names.size());
    return;
  }
  // Each matrix whole on its owner of the group, the same assignment on each of its ranks.
  std::vector<models::TensorParallelCut> cuts;
  std::vector<std::vector<std::int64_t>> shapes;  // whole
  std::vector<double> costs;
  for (std::size_t k = 0; k < names.size(); ++k) {
    cuts.push_back(models::tensor_parallel_split(names[k]));
    shapes.push_back(models::tensor_parallel_global_shape(parts[k].sizes(), cuts[k].dim, tensor_->size()));
    costs.push_back(newton_schulz_cost(shapes[k][0], shapes[k][1]));
  }
  const std::vector<int> owners = spread_over_ranks(costs, tensor_->size());
  std::vector<at::Tensor> wholes(names.size());  // the matrices this rank orthogonalizes
  for (std::size_t k = 0; k < names.size(); ++k) {
    const at::Tensor u = nesterov(k);
    const at::Tensor whole =
        cuts[k].cut() ? models::gather_tensor_parallel(u, cuts[k].dim, *tensor_, cuts[k].groups) : u;
    if (owners[k] == tensor_->rank()) wholes[k] = whole;
  }
  for (std::size_t k = 0; k < names.size(); ++k) {
    if (!wholes[k].defined()) continue;
    wholes[k] = optim::orthogonalize(wholes[k]).contiguous();
    ++orthogonalized_here_;
  }
  // Back from each owner: the whole direction, of which each rank keeps its part.
  for (std::size_t k = 0; k < names.size(); ++k) {
    const at::Tensor whole =
        wholes[k].defined() ? wholes[k] : at::empty(shapes[k], parts[k].options().dtype(at::kBFloat16));
    tensor_->broadcast(whole, owners[k])->wait();
    take(k, cuts[k].cut() ? models::tensor_parallel_part(whole, cuts[k].dim, tensor_->rank(), tensor_->size(),
                                                        cuts[k].groups)
                          : whole);
    wholes[k] = at::Tensor();
  }
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
  std::vector<std::size_t> piece_buckets;  // each piece's bucket
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
      piece_buckets.push_back(b);
    }
  }
  shard_optimizer_ = std::make_unique<optim::AdamW>(std::move(pieces), trainer.optimizer().options());
  plan_muon_windows(full, piece_buckets);
  if (!muon_windows_.empty()) {
    shard_optimizer_->set_whole_matrices([this](const optim::MuonPieces& muon) {
      for (const MuonWindow& window : muon_windows_) orthogonalize_window(window, muon);
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
// what it would have computed, and applies them. The buckets go in windows of
// about kMuonMatricesPerRank matrices per rank (a parameter lies in one bucket, so a window holds
// whole matrices), one window's buffers at a time: its buckets' extent, and this rank's ranges of
// them. The momentum stays sharded; the price is one all-gather and one reduce-scatter of the Muon
// matrices in fp32 per step. Under tensor parallelism a rank's matrix is its part of a cut one, and
// its tensor-parallel group (whose ranks hold the same pieces and own the same matrices) spreads
// the owned matrices over itself as under DDP (orthogonalize_matrices).
void ZeroOptimizer::plan_muon_windows(const std::vector<optim::OptimizedParameter>& full,
                                      const std::vector<std::size_t>& piece_buckets) {
  const std::size_t per_window =
      kMuonMatricesPerRank * static_cast<std::size_t>(data_->size() * tensor_parallel_size());
  MuonWindow window;
  auto close = [&] {
    // Buckets go in reverse order (Note [Gradient buckets]): from the lowest offset to the highest.
    std::int64_t begin = flat_->numel();
    std::int64_t end = 0;
    for (const std::size_t b : window.buckets) {
      const collectives::ShardRange& bucket = gradients_->bucket_ranges()[b];
      begin = std::min(begin, bucket.offset);
      end = std::max(end, bucket.offset + bucket.length);
      window.shard_length += gradients_->shard_ranges()[b].length;
    }
    window.extent = {begin, end - begin};
    const std::vector<optim::OptimizedParameter>& pieces = shard_optimizer_->parameters();
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      const bool inside = std::find(window.buckets.begin(), window.buckets.end(), piece_buckets[i]) !=
                          window.buckets.end();
      if (inside && pieces[i].orthogonalized) window.pieces.push_back(i);
    }
    muon_windows_.push_back(std::move(window));
    window = {};
  };
  for (std::size_t b = 0; b < gradients_->bucket_ranges().size(); ++b) {
    const std::size_t before = window.matrices.size();
    for (const collectives::ParameterSpan& span : flat_->spans(gradients_->bucket_ranges()[b])) {
      if (!full[span.parameter].orthogonalized) continue;
      window.matrices.push_back(span.parameter);
      window.names.push_back(full[span.parameter].name);
    }
    if (window.matrices.size() == before) continue;  // no Muon matrix in this bucket
    window.buckets.push_back(b);
    if (window.matrices.size() >= per_window) close();
  }
  if (!window.buckets.empty()) close();
}

std::int64_t ZeroOptimizer::muon_gather_bytes() const {
  std::int64_t most = 0;
  for (const MuonWindow& window : muon_windows_) most = std::max(most, window.extent.length + window.shard_length);
  return 4 * most;
}

void ZeroOptimizer::orthogonalize_window(const MuonWindow& window, const optim::MuonPieces& muon) {
  const std::vector<optim::OptimizedParameter>& pieces = shard_optimizer_->parameters();
  const at::TensorOptions fp32 = flat_->values().options().dtype(at::kFloat);
  // Zeroed: what lies between the matrices is reduce-scattered too, as zeros, and never read.
  const at::Tensor gathered = at::zeros({window.extent.length}, fp32);
  auto flat_range = [&](std::int64_t offset, std::int64_t length) {  // offsets in the flat parameters
    return gathered.narrow(0, offset - window.extent.offset, length);
  };
  auto matrix_of = [&](std::size_t parameter) {  // an index into flat_'s parameters
    const at::Tensor& whole = flat_->parameters()[parameter];
    return flat_range(flat_->offset(parameter), whole.numel()).view(whole.sizes());
  };
  // The pieces' U put together.
  for (const std::size_t i : window.pieces) {
    ALBION_CHECK(muon.due[i], "ZeRO's piece of ", pieces[i].name, " has no gradient for Muon");
    matrix_of(piece_parameters_[i]).view({-1}).narrow(0, pieces[i].offset, pieces[i].parameter.numel())
        .copy_(muon.nesterov(i));
  }
  const std::vector<collectives::ShardRange>& buckets = gradients_->bucket_ranges();
  const std::vector<collectives::ShardRange>& mine = gradients_->shard_ranges();
  std::vector<std::shared_ptr<collectives::Work>> works;
  for (const std::size_t b : window.buckets) {
    works.push_back(data_->all_gather(flat_range(buckets[b].offset, buckets[b].length),
                                      flat_range(mine[b].offset, mine[b].length)));
  }
  for (const auto& work : works) work->wait();

  // Each matrix's direction where its U was, on its owner; zeros elsewhere.
  std::vector<double> costs;
  for (const std::size_t p : window.matrices) {
    const at::Tensor& whole = flat_->parameters()[p];
    costs.push_back(newton_schulz_cost(whole.size(0), whole.size(1)));
  }
  const std::vector<int> owners = spread_over_ranks(costs, data_->size());
  std::vector<std::size_t> owned;  // indices into window.matrices
  std::vector<std::string> names;
  std::vector<at::Tensor> parts;
  for (std::size_t k = 0; k < window.matrices.size(); ++k) {
    if (owners[k] != data_->rank()) {
      matrix_of(window.matrices[k]).zero_();
      continue;
    }
    owned.push_back(k);
    names.push_back(window.names[k]);
    parts.push_back(flat_->parameters()[window.matrices[k]]);
  }
  orthogonalize_matrices(
      names, parts, [&](std::size_t j) { return matrix_of(window.matrices[owned[j]]); },
      [&](std::size_t j, const at::Tensor& direction) { matrix_of(window.matrices[owned[j]]).copy_(direction); });
  // Summed into this rank's ranges of the window's buckets, one after another.
  const at::Tensor received = at::empty({window.shard_length}, fp32);
  std::vector<std::pair<collectives::ShardRange, std::int64_t>> placed;  // a range of mine, where it is in `received`
  std::int64_t filled = 0;
  works.clear();
  for (const std::size_t b : window.buckets) {
    works.push_back(data_->reduce_scatter(received.narrow(0, filled, mine[b].length),
                                          flat_range(buckets[b].offset, buckets[b].length),
                                          collectives::ReduceOp::kSum));
    placed.emplace_back(mine[b], filled);
    filled += mine[b].length;
  }
  for (const auto& work : works) work->wait();
  for (const std::size_t i : window.pieces) {
    const std::int64_t offset = flat_->offset(piece_parameters_[i]) + pieces[i].offset;  // in the flat parameters
    for (const auto& [range, start] : placed) {
      if (offset < range.offset || offset >= range.offset + range.length) continue;
      muon.apply(i, received.narrow(0, start + offset - range.offset, pieces[i].parameter.numel()),
                 whole_muon_scale(pieces[i].name, flat_->parameters()[piece_parameters_[i]]));
      break;
    }
  }
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
