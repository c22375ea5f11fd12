// File: runtime/train/loss_score.cpp
#include "runtime/train/loss_score.h"

#include "runtime/train/parallelism.h"

namespace albion::train {

LossScore::LossScore(const at::Device& device)
    : loss_sum_(at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(device))),
      scored_(at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(device))) {}

void LossScore::add(models::CausalLm& model, const data::TokenBatch& batch) {
  // The model's loss is the mean over the batch's scored targets: weighted back by their count.
  const at::Tensor count = batch.trained_targets();
  loss_sum_ += model.loss(batch.inputs, batch.targets, batch.loss_mask, batch.positions).to(at::kDouble) * count;
  scored_ += count;
  windows_ += batch.inputs.size(0);
}

LossScore::Totals LossScore::totals() const {
  const auto scored = static_cast<std::int64_t>(scored_.item<double>());
  return {scored > 0 ? loss_sum_.item<double>() / static_cast<double>(scored) : 0.0, scored, windows_};
}

double LossScore::mean_over_data_ranks(Parallelism& parallel) const {
  // The ranks' means of both sums: their ratio is the ratio of the sums.
  const at::Tensor sums = parallel.mean(at::stack({loss_sum_, scored_})).cpu();
  const double scored = sums[1].item<double>();
  return scored > 0 ? sums[0].item<double>() / scored : 0.0;
}

LossScore::Totals LossScore::totals_over(collectives::Communicator& data_group) const {
  const at::Tensor sums = at::stack({loss_sum_, scored_, at::full_like(scored_, static_cast<double>(windows_))});
  data_group.all_reduce(sums, collectives::ReduceOp::kSum)->wait();
  const at::Tensor host = sums.cpu();
  const auto scored = static_cast<std::int64_t>(host[1].item<double>());
  return {scored > 0 ? host[0].item<double>() / static_cast<double>(scored) : 0.0, scored,
          static_cast<std::int64_t>(host[2].item<double>())};
}

}  // namespace albion::train
