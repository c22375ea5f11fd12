// File: runtime/optim/muon.cpp
#include "runtime/optim/muon.h"

#include <algorithm>
#include <cmath>

#include "runtime/base/check.h"

namespace albion::optim {
namespace {

// The quintic's coefficients, torch.optim.Muon's defaults (Keller Jordan's choice): a steep slope
// at zero, so five steps take even tiny singular values near 1, at the price of not converging to
// exactly 1 (muon_test measures them between 0.6 and 1.25).
constexpr double kA = 3.4445;
constexpr double kB = -4.7750;
constexpr double kC = 2.0315;
constexpr int kSteps = 5;
constexpr double kEps = 1e-7;

}  // namespace

at::Tensor orthogonalize(const at::Tensor& update) {
  ALBION_CHECK(update.dim() == 2, "Muon orthogonalizes matrices, not a tensor of ", update.dim(), " dimensions");
  const bool tall = update.size(0) > update.size(1);
  at::Tensor x = update.to(at::kBFloat16);
  if (tall) x = x.t();
  x = x / x.norm().clamp_min(kEps);
  for (int i = 0; i < kSteps; ++i) {
    const at::Tensor gram = at::mm(x, x.t());
    const at::Tensor polynomial = at::addmm(gram, gram, gram, /*beta=*/kB, /*alpha=*/kC);
    x = at::addmm(x, polynomial, x, /*beta=*/kA);
  }
  return tall ? x.t() : x;
}

void muon_update(at::Tensor& parameter, const at::Tensor& gradient, at::Tensor& momentum, double lr,
                 double weight_decay, const MuonOptions& options) {
  apply_muon_direction(parameter, orthogonalize(nesterov_momentum(gradient, momentum, options)),
                       muon_scale(parameter.size(0), parameter.size(1)), lr, weight_decay);
}

at::Tensor nesterov_momentum(const at::Tensor& gradient, at::Tensor& momentum, const MuonOptions& options) {
  update_momentum(gradient, momentum, options);
  return nesterov_of(gradient, momentum, options);
}

void update_momentum(const at::Tensor& gradient, at::Tensor& momentum, const MuonOptions& options) {
  momentum.lerp_(gradient.to(at::kFloat), 1.0 - options.momentum);
}

at::Tensor nesterov_of(const at::Tensor& gradient, const at::Tensor& momentum, const MuonOptions& options) {
  return gradient.to(at::kFloat).lerp(momentum, options.momentum);
}

double muon_scale(std::int64_t rows, std::int64_t cols) {
  return 0.2 * std::sqrt(static_cast<double>(std::max(rows, cols)));
}

void apply_muon_direction(const at::Tensor& parameter, const at::Tensor& orthogonal, double scale, double lr,
                          double weight_decay) {
  if (weight_decay > 0) parameter.mul_(1.0 - lr * weight_decay);
  parameter.add_(orthogonal.to(parameter.scalar_type()), -lr * scale);
}

}  // namespace albion::optim
