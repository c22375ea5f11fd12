// File: runtime/models/layers.cpp
// Leaf modules: parameter registration, initialisation, and the forward of each.
#include "runtime/models/layers.h"

#include <ATen/autocast_mode.h>
#include <torch/types.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/layernorm/layernorm.h"
#include "kernels/linear/accumulating_linear.h"
#include "kernels/rmsnorm/rmsnorm.h"
#include "runtime/base/check.h"
#include "runtime/models/tensor_parallel.h"

namespace albion::models {
namespace {

thread_local bool skip_random_initial_values = false;

at::Tensor normal_matrix(at::IntArrayRef shape, double init_std, const at::TensorOptions& options) {
  torch::NoGradGuard no_grad;
  if (skip_random_initial_values) return at::empty(shape, options);
  return at::empty(shape, options).normal_(0.0, init_std);
}

// Whether autocast runs x's matrix products in bf16 (their operands cast to bf16).
bool bf16_products(const at::Tensor& x) {
  const at::DeviceType device = x.device().type();
  return at::autocast::is_autocast_enabled(device) && at::autocast::get_autocast_dtype(device) == at::kBFloat16;
}

}  // namespace

SkipRandomInitialValues::SkipRandomInitialValues() : previous_(skip_random_initial_values) {
  skip_random_initial_values = true;
}

SkipRandomInitialValues::~SkipRandomInitialValues() { skip_random_initial_values = previous_; }

void AdaptableLinear::add_lora(std::int64_t rank, double alpha, double dropout) {
  const at::Tensor& weight = stored_weight();
  const std::int64_t whole_in = in_features() * (cut_dim_ == 1 ? cut_count_ : 1);
  const double bound = 1.0 / std::sqrt(static_cast<double>(whole_in));
  at::Tensor a;
  {
    torch::NoGradGuard no_grad;
    a = at::empty({rank, whole_in}, weight.options()).uniform_(-bound, bound);
    if (cut_dim_ == 1) a = tensor_parallel_part(a, 1, cut_index_, cut_count_).clone();
  }
  lora_a_ = register_module("lora_A", std::make_shared<LoraFactor>(a));
  lora_b_ = register_module("lora_B", std::make_shared<LoraFactor>(at::zeros({out_features(), rank}, weight.options())));
  lora_scale_ = alpha / static_cast<double>(rank);
  lora_dropout_ = dropout;
}

at::Tensor AdaptableLinear::with_lora(at::Tensor y, const at::Tensor& x) const {
  if (!has_lora()) return y;
  return with_lora_product(std::move(y), at::linear(adapter_sees_layer_input() ? x : dropped(x), lora_a_->weight()));
}

bool AdaptableLinear::accumulates_in_place(const at::Tensor& x) const {
  return use_fused_kernel(fused_kernels_, x) && kernels::accumulates_in_place(x, stored_weight());
}

std::int64_t AdaptableLinear::hold_frozen_weight_in(at::ScalarType dtype) {
  const at::Tensor& weight = stored_weight();
  if (weight.requires_grad() || weight.scalar_type() != at::kFloat) return 0;
  const torch::NoGradGuard no_grad;
  weight.set_data(weight.to(dtype));
  return weight.numel() * (4 - static_cast<std::int64_t>(at::elementSize(dtype)));
}

at::Tensor AdaptableLinear::weight_for(const at::Tensor& x) const { return weight_as_read(stored_weight(), x); }

void AdaptableLinear::keep_part(int features, std::int64_t index, std::int64_t count, std::int64_t groups) {
  ALBION_CHECK(!has_lora(), "cannot cut a layer that has a LoRA adapter");
  ALBION_CHECK(features == 0 || groups == 1, "only a layer's outputs are cut in blocks");
  const torch::NoGradGuard no_grad;
  const at::Tensor& weight = stored_weight();
  const int dim = features == 0 ? output_dim() : 1 - output_dim();
  weight.set_(tensor_parallel_part(weight, dim, index, count, groups).clone(at::MemoryFormat::Contiguous));
  if (features == 0 && bias().defined()) bias().set_(tensor_parallel_part(bias(), 0, index, count, groups).clone());
  cut_dim_ = features;
  cut_index_ = index;
  cut_count_ = count;
}

void AdaptableLinear::check_bias_added_once() const {
  ALBION_CHECK(cut_dim_ != 1 || !bias().defined(), "a layer cut by its inputs would add its bias once per part: "
               "call forward_without_bias and add it to the sum");
}

at::Tensor AdaptableLinear::lora_a() const { return has_lora() ? lora_a_->weight() : at::Tensor(); }

at::Tensor AdaptableLinear::with_lora_product(at::Tensor y, const at::Tensor& xa) const {
  if (!xa.defined()) return y;
  return y + at::linear(xa, lora_b_->weight()) * lora_scale_;
}

// A layer whose inputs are cut draws the whole input's mask and keeps its part, so the ranks' masks
// are independent (not one pattern repeated), as they would be in one process: on CPU, the same.
at::Tensor AdaptableLinear::dropped(const at::Tensor& x) const {
  if (cut_dim_ != 1) return at::dropout(x, lora_dropout_, /*train=*/true);
  std::vector<std::int64_t> shape = x.sizes().vec();
  shape.back() *= cut_count_;
  const at::Tensor keep = at::empty(shape, x.options()).bernoulli_(1 - lora_dropout_).div_(1 - lora_dropout_);
  return x * tensor_parallel_part(keep, static_cast<int>(x.dim()) - 1, cut_index_, cut_count_);
}

at::Tensor AdaptableLinear::lora_delta() const {
  return at::mm(lora_b_->weight(), lora_a_->weight()) * lora_scale_;
}

Linear::Linear(std::int64_t in, std::int64_t out, Bias bias, double init_std,
               const at::TensorOptions& options) {
  weight_ = register_parameter("weight", normal_matrix({out, in}, init_std, options));
  if (bias == Bias::kWith) bias_ = register_parameter("bias", at::zeros({out}, options));
}

at::Tensor Linear::product(const at::Tensor& x, const at::Tensor& bias) const {
  // Note [Weight gradients accumulated in place] (kernels/linear/accumulating_linear.h).
  return accumulates_in_place(x) ? kernels::accumulating_linear(x, weight_, bias, kernels::WeightLayout::kOutByIn)
                                 : at::linear(x, weight_for(x), bias);  // an undefined bias adds nothing
}

at::Tensor Linear::forward(const at::Tensor& x) const { return forward(x, x); }

at::Tensor Linear::forward(const at::Tensor& x, const at::Tensor& adapter_input) const {
  check_bias_added_once();
  return with_lora(product(x, bias_), adapter_input);
}

at::Tensor Linear::forward_without_bias(const at::Tensor& x) const { return with_lora(product(x, at::Tensor()), x); }

at::Tensor Linear::merged_weight() const {
  return has_lora() ? weight_ + lora_delta() : weight_;
}

Conv1d::Conv1d(std::int64_t in, std::int64_t out, double init_std,
               const at::TensorOptions& options) {
  weight_ = register_parameter("weight", normal_matrix({in, out}, init_std, options));
  bias_ = register_parameter("bias", at::zeros({out}, options));
}

at::Tensor Conv1d::product(const at::Tensor& x, const at::Tensor& bias) const {
  if (accumulates_in_place(x)) return kernels::accumulating_linear(x, weight_, bias, kernels::WeightLayout::kInByOut);
  // On the flattened rows: one GEMM (the bias fused by addmm), the layout HF stores.
  std::vector<std::int64_t> out_shape = x.sizes().vec();
  out_shape.back() = weight_.size(1);
  const at::Tensor rows = x.reshape({-1, x.size(-1)});
  const at::Tensor weight = weight_for(x);
  return (bias.defined() ? at::addmm(bias, rows, weight) : at::mm(rows, weight)).view(out_shape);
}

at::Tensor Conv1d::forward_without_bias(const at::Tensor& x) const { return with_lora(product(x, at::Tensor()), x); }

at::Tensor Conv1d::forward(const at::Tensor& x) const {
  check_bias_added_once();
  return with_lora(product(x, bias_), x);
}

at::Tensor Conv1d::merged_weight() const {
  return has_lora() ? weight_ + lora_delta().t() : weight_;
}

Embedding::Embedding(std::int64_t count, std::int64_t dim, double init_std,
                     const at::TensorOptions& options) {
  weight_ = register_parameter("weight", normal_matrix({count, dim}, init_std, options));
}

at::Tensor Embedding::forward(const at::Tensor& ids) const {
  if (!cut_) return at::embedding(weight_, ids);
  const at::Tensor local = ids - first_id_;
  const at::Tensor mine = (local >= 0) & (local < weight_.size(0));
  return at::embedding(weight_, at::where(mine, local, 0)).masked_fill(~mine.unsqueeze(-1), 0);
}

void Embedding::keep_part(std::int64_t index, std::int64_t count) {
  const torch::NoGradGuard no_grad;
  first_id_ = index * (weight_.size(0) / count);
  weight_.set_(tensor_parallel_part(weight_, 0, index, count).clone());
  cut_ = true;
}

LayerNorm::LayerNorm(std::int64_t dim, double eps, const at::TensorOptions& options, bool fused)
    : eps_(eps), fused_(fused) {
  weight_ = register_parameter("weight", at::ones({dim}, options));
  bias_ = register_parameter("bias", at::zeros({dim}, options));
}

std::optional<at::ScalarType> LayerNorm::fused_output_dtype(const at::Tensor& x, bool into_product) const {
  if (!use_fused_kernel(fused_, x) || x.scalar_type() != weight_.scalar_type()) return std::nullopt;
  return into_product && bf16_products(x) && x.scalar_type() == at::kFloat ? at::kBFloat16 : x.scalar_type();
}

at::Tensor LayerNorm::forward(const at::Tensor& x) const {
  if (fused_output_dtype(x, /*into_product=*/false)) return kernels::layernorm(x, weight_, bias_, eps_);
  return at::layer_norm(x, {x.size(-1)}, weight_, bias_, eps_);
}

at::Tensor LayerNorm::forward_into_product(const at::Tensor& x) const {
  const std::optional<at::ScalarType> output = fused_output_dtype(x, /*into_product=*/true);
  return output ? kernels::layernorm(x, weight_, bias_, eps_, *output) : forward(x);
}

std::pair<at::Tensor, at::Tensor> LayerNorm::add_then_forward(const at::Tensor& x, const at::Tensor& residual,
                                                              bool into_product) const {
  const std::optional<at::ScalarType> output = fused_output_dtype(x, into_product);
  if (output && kernels::add_layernorm_takes(x.scalar_type(), residual.scalar_type(), *output) &&
      residual.sizes() == x.sizes()) {
    return kernels::add_layernorm(x, residual, weight_, bias_, eps_, *output);
  }
  at::Tensor sum = x + residual;
  return {sum, into_product ? forward_into_product(sum) : forward(sum)};
}

RmsNorm::RmsNorm(std::int64_t dim, double eps, const at::TensorOptions& options, bool fused)
    : eps_(eps), fused_(fused) {
  weight_ = register_parameter("weight", at::ones({dim}, options));
}

bool RmsNorm::runs_fused(const at::Tensor& x) const {
  return use_fused_kernel(fused_, x) && x.scalar_type() == weight_.scalar_type();
}

at::Tensor RmsNorm::forward(const at::Tensor& x) const {
  if (runs_fused(x)) return kernels::rmsnorm(x, weight_, eps_);
  const at::ScalarType stats_type = at::promote_types(x.scalar_type(), at::kFloat);
  const at::Tensor xs = x.to(stats_type);
  const at::Tensor normed = xs * at::rsqrt(xs.pow(2).mean(-1, /*keepdim=*/true) + eps_);
  return weight_ * normed.to(x.scalar_type());
}

std::pair<at::Tensor, at::Tensor> RmsNorm::add_then_forward(const at::Tensor& x, const at::Tensor& residual) const {
  if (runs_fused(x) && kernels::add_rmsnorm_takes(x.scalar_type(), residual.scalar_type()) &&
      residual.sizes() == x.sizes()) {
    return kernels::add_rmsnorm(x, residual, weight_, eps_);
  }
  at::Tensor sum = x + residual;
  return {sum, forward(sum)};
}

std::pair<at::Tensor, std::vector<at::Tensor>> RmsNorm::forward_into_products(const at::Tensor& x,
                                                                             const at::Tensor& residual,
                                                                             std::int64_t products) const {
  const bool operands = kernels::rmsnorm_operands_take(products) && bf16_products(x) && runs_fused(x);
  if (operands && x.scalar_type() == at::kFloat) {
    if (!residual.defined()) return {x, kernels::rmsnorm_operands(x, weight_, eps_, products)};
    if (kernels::add_rmsnorm_takes(x.scalar_type(), residual.scalar_type()) && residual.sizes() == x.sizes()) {
      return kernels::add_rmsnorm_operands(x, residual, weight_, eps_, products);
    }
  }
  auto [sum, normed] = residual.defined() ? add_then_forward(x, residual) : std::pair{x, forward(x)};
  return {sum, std::vector<at::Tensor>(std::max<std::int64_t>(products, 1), normed)};
}

}  // namespace albion::models
