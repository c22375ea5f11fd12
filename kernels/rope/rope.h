// File: kernels/rope/rope.h
// Rotary position embedding for the runtime (rope.cuh has the formulas), one call for CPU and
// CUDA tensors. x: [batch, seq, heads, head_dim] contiguous, fp32 or bf16 (CPU also fp64);
// cos, sin: the model's tables [>= seq, head_dim], contiguous, fp32 (fp64 for fp64 x).
#pragma once

#include <ATen/ATen.h>

namespace albion::kernels {

// Differentiable, out of place.
at::Tensor rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

// Differentiable, in place: rotates x (which must be contiguous, typically a view of q's or k's
// projection output, which nothing else reads) and returns it; autograd sees it as modified.
at::Tensor rope_(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

// Without autograd: rotates into `output` (which may be `x` itself: in place); `inverse` turns by
// the opposite angle (the backward).
void rope_rotate_out(at::Tensor& output, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                     bool inverse);

}  // namespace albion::kernels
