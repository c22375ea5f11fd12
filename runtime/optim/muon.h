// File: runtime/optim/muon.h
// Muon (Jordan et al., 2024; torch.optim.Muon): the update of a weight matrix is its momentum,
// orthogonalized. Per step, with gradient g and momentum buffer B (fp32):
//   B = mu B + (1 - mu) g;    U = (1 - mu) g + mu B   (Nesterov)
//   O = NS5(U)                (five quintic Newton-Schulz iterations, in bf16: U S' V^T for U S V^T)
//   p *= 1 - lr wd;   p -= lr * 0.2 sqrt(max(rows, cols)) * O
// The 0.2 sqrt(max) factor (Moonshot's "match_rms_adamw", torch's adjust_lr_fn of that name) gives
// the update the RMS of an AdamW update, so Muon shares AdamW's learning rate, schedule and weight
// decay: a recipe switches with optim.name = muon alone. Only the hidden layers' matrices take it;
// embeddings, the LM head, norms and biases stay with AdamW (runtime/optim/adamw.h), which calls
// this for the parameters marked `orthogonalized`.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace albion::optim {

struct MuonOptions {
  double momentum = 0.95;
};

// The quintic Newton-Schulz iteration of torch.optim.Muon: the 2-D `update`, scaled to spectral
// norm at most 1, taken to about its orthogonal factor, in bf16 (wide matrices iterate on their
// transpose). Returns bf16.
at::Tensor orthogonalize(const at::Tensor& update);

// One Muon step of `parameter` (2-D) from `gradient`, `momentum` its fp32 buffer (updated in place):
// the three functions below in turn.
void muon_update(at::Tensor& parameter, const at::Tensor& gradient, at::Tensor& momentum, double lr,
                 double weight_decay, const MuonOptions& options);

// The step's parts, for ranks that hold pieces of a matrix (ZeRO's, tensor parallelism's:
// runtime/parallel/data_parallel.h):
// element-wise, on any piece: the momentum updated in place and U returned, fp32 (the two
// functions after it in turn, for callers that compute U later);
at::Tensor nesterov_momentum(const at::Tensor& gradient, at::Tensor& momentum, const MuonOptions& options);
void update_momentum(const at::Tensor& gradient, at::Tensor& momentum, const MuonOptions& options);
at::Tensor nesterov_of(const at::Tensor& gradient, const at::Tensor& momentum, const MuonOptions& options);
// the factor of a rows x cols matrix's update: 0.2 sqrt(max(rows, cols));
double muon_scale(std::int64_t rows, std::int64_t cols);
// element-wise again, `orthogonal` that of the whole U (or the piece's part of it):
// p *= 1 - lr wd;  p -= lr scale orthogonal.
void apply_muon_direction(const at::Tensor& parameter, const at::Tensor& orthogonal, double scale, double lr,
                          double weight_decay);

}  // namespace albion::optim
