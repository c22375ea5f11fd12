// File: runtime/optim/adamw.cpp
#include "runtime/optim/adamw.h"

#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cmath>

#include "kernels/adamw/fused_adamw.h"
#include "kernels/common/kernel_device.h"
#include "kernels/grad_norm/grad_norm.h"
#include "runtime/base/check.h"
#include "runtime/base/log.h"

namespace albion::optim {

AdamW::AdamW(std::vector<OptimizedParameter> parameters, AdamWOptions options)
    : parameters_(std::move(parameters)), options_(options) {}

namespace {

// One multi-tensor multiply (torch's foreach kernels on CUDA), the gradients scaled in place.
void scale_gradients(const std::vector<OptimizedParameter>& parameters, const at::Tensor& scale) {
  std::vector<at::Tensor> gradients;
  for (const OptimizedParameter& p : parameters) {
    if (p.gradient().defined()) gradients.push_back(p.gradient());
  }
  if (!gradients.empty()) at::_foreach_mul_(gradients, scale.to(gradients.front().device()));
}

}  // namespace

void AdamW::step(double lr, const at::Tensor& gradient_scale) {
  at::NoGradGuard no_grad;
  ++step_count_;
  const double bias1 = 1.0 - std::pow(options_.beta1, static_cast<double>(step_count_));
  const double bias2 = 1.0 - std::pow(options_.beta2, static_cast<double>(step_count_));
  if (options_.fused && fused_step(lr, bias1, bias2, gradient_scale)) {
    ++fused_steps_;
    orthogonalized_step(lr, gradient_scale);
    return;
  }
  if (gradient_scale.defined()) scale_gradients(parameters_, gradient_scale);
  for (OptimizedParameter& p : parameters_) {
    const at::Tensor& grad = p.gradient();
    if (!grad.defined() || p.orthogonalized) continue;
    if (!p.exp_avg.defined()) {
      p.exp_avg = at::zeros_like(p.parameter, at::kFloat);
      p.exp_avg_sq = at::zeros_like(p.parameter, at::kFloat);
    }
    const at::Tensor g = grad.to(at::kFloat);
    p.exp_avg.mul_(options_.beta1).add_(g, 1.0 - options_.beta1);
    p.exp_avg_sq.mul_(options_.beta2).addcmul_(g, g, 1.0 - options_.beta2);
    if (p.decayed && options_.weight_decay > 0) p.parameter.mul_(1.0 - lr * options_.weight_decay);
    const at::Tensor denominator = (p.exp_avg_sq / bias2).sqrt_().add_(options_.eps);
    p.parameter.addcdiv_(p.exp_avg, denominator, -lr / bias1);
  }
  orthogonalized_step(lr, {});  // the gradients are scaled already
}

void AdamW::orthogonalized_step(double lr, const at::Tensor& gradient_scale) {
  auto scaled_gradient = [&](const OptimizedParameter& p) {
    return gradient_scale.defined() ? p.gradient() * gradient_scale.to(p.gradient().device()) : p.gradient();
  };
  MuonPieces muon;
  muon.due.assign(parameters_.size(), false);
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    OptimizedParameter& p = parameters_[i];
    if (!p.gradient().defined() || !p.orthogonalized) continue;
    if (!p.exp_avg.defined()) p.exp_avg = at::zeros_like(p.parameter, at::kFloat);
    if (whole_matrices_) {
      update_momentum(scaled_gradient(p), p.exp_avg, options_.muon);
      muon.due[i] = true;
    } else {
      muon_update(p.parameter, scaled_gradient(p), p.exp_avg, lr, options_.weight_decay, options_.muon);
    }
  }
  if (!whole_matrices_) return;
  muon.nesterov = [&](std::size_t i) {
    return nesterov_of(scaled_gradient(parameters_[i]), parameters_[i].exp_avg, options_.muon);
  };
  muon.apply = [&](std::size_t i, const at::Tensor& orthogonal, double scale) {
    apply_muon_direction(parameters_[i].parameter, orthogonal, scale, lr, options_.weight_decay);
  };
  whole_matrices_(muon);
}

bool AdamW::fused_step(double lr, double bias1, double bias2, const at::Tensor& gradient_scale) {
  std::vector<kernels::AdamWOperand> operands;
  for (OptimizedParameter& p : parameters_) {
    const at::Tensor& grad = p.gradient();
    if (!grad.defined() || p.orthogonalized) continue;
    // Where the kernel's contract does not hold, the torch path takes all of them.
    if (!kernels::runs_kernels(p.parameter)) return false;  // the CPU: torch's ops are its path
    if (p.parameter.scalar_type() != at::kFloat || grad.scalar_type() != at::kFloat ||
        !p.parameter.is_contiguous() || !grad.is_contiguous()) {
      if (!warned_unfused_) {
        log::warning("AdamW: ", p.name, " (", p.parameter.scalar_type(), ", gradient ", grad.scalar_type(),
                     p.parameter.is_contiguous() && grad.is_contiguous() ? "" : ", not contiguous",
                     ") does not fit the fused kernel (fp32, contiguous); every step takes torch's ops");
        warned_unfused_ = true;
      }
      return false;
    }
    if (!p.exp_avg.defined()) {
      p.exp_avg = at::zeros_like(p.parameter, at::kFloat);
      p.exp_avg_sq = at::zeros_like(p.parameter, at::kFloat);
    }
    operands.push_back({p.parameter, grad, p.exp_avg, p.exp_avg_sq, p.decayed, at::Tensor()});
  }
  kernels::AdamWHyper hyper;
  hyper.lr = static_cast<float>(lr);
  hyper.beta1 = static_cast<float>(options_.beta1);
  hyper.beta2 = static_cast<float>(options_.beta2);
  hyper.eps = static_cast<float>(options_.eps);
  hyper.weight_decay = static_cast<float>(options_.weight_decay);
  hyper.bias_correction1 = static_cast<float>(bias1);
  hyper.bias_correction2 = static_cast<float>(bias2);
  at::Tensor scale;  // kept alive until the launch is queued
  if (gradient_scale.defined() && !operands.empty()) {
    scale = gradient_scale.to(operands.front().parameter.device(), at::kFloat);
    hyper.gradient_scale = scale.data_ptr<float>();
  }
  kernels::fused_adamw_step(operands, hyper);
  return true;
}

void AdamW::zero_grad() {
  for (OptimizedParameter& p : parameters_) {
    if (p.parameter.grad().defined()) p.parameter.mutable_grad().zero_();
  }
}

std::int64_t AdamW::state_bytes() const {
  std::int64_t bytes = 0;
  for (const OptimizedParameter& p : parameters_) {
    if (p.exp_avg.defined()) bytes += p.exp_avg.numel() * 4;
    if (p.exp_avg_sq.defined()) bytes += p.exp_avg_sq.numel() * 4;
  }
  return bytes;
}

at::Tensor squared_gradient_norm(const std::vector<OptimizedParameter>& parameters, bool fused) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> gradients;
  for (const OptimizedParameter& p : parameters) {
    if (p.gradient().defined()) gradients.push_back(p.gradient());
  }
  if (gradients.empty()) return at::zeros({}, at::kDouble);
  const auto fits_the_kernel = [](const at::Tensor& g) {
    return kernels::runs_kernels(g) && g.is_contiguous() &&
           (g.scalar_type() == at::kFloat || g.scalar_type() == at::kBFloat16);
  };
  if (fused && std::all_of(gradients.begin(), gradients.end(), fits_the_kernel)) {
    return kernels::squared_norm(gradients);  // two launches for the whole model
  }
  std::vector<at::Tensor> squares;
  // fp32 accumulation per tensor (no full-size temporary), fp64 across tensors.
  for (const at::Tensor& grad : gradients) {
    squares.push_back(at::linalg_vector_norm(grad, 2, std::nullopt, false, at::kFloat).pow(2));
  }
  return at::stack(squares).to(at::kDouble).sum();
}

at::Tensor clip_factor(const at::Tensor& norm, double max_norm) {
  if (!(max_norm > 0)) return {};
  at::NoGradGuard no_grad;
  const at::Tensor norm64 = norm.to(at::kDouble);
  const at::Tensor clips = at::logical_and(norm64.isfinite(), norm64 > max_norm);
  // In fp64, then rounded once to fp32: the factor the host-side clip multiplied by.
  const at::Tensor clipped = at::full_like(norm64, max_norm) / (norm64 + 1e-6);  // a division, as on the host
  return at::where(clips, clipped, at::ones_like(norm64)).to(at::kFloat);
}

double clip_grad_norm(std::vector<OptimizedParameter>& parameters, double max_norm, bool fused) {
  const at::Tensor norm = squared_gradient_norm(parameters, fused).sqrt();
  if (const at::Tensor factor = clip_factor(norm, max_norm); factor.defined()) scale_gradients(parameters, factor);
  return norm.item<double>();
}

}  // namespace albion::optim
