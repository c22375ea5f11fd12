// File: kernels/linear/accumulating_linear.h
// A linear layer's product under bf16 autocast whose backward adds the weight's (and the bias's)
// gradient straight into its fp32 .grad (Megatron-LM's gradient-accumulation fusion).
//
// Note [Weight gradients accumulated in place]
// Under autocast, autograd computes a weight's gradient in bf16 (rounded), casts it to fp32 (ToCopy
// backward), and adds that into .grad (AccumulateGrad): three kernels per weight per micro-batch,
// 2 + 2 + 4 + 4 + 4 + 4 bytes per parameter between them, and each micro-batch's part rounded to
// bf16 before it is summed. Here the backward hands cuBLAS the fp32 .grad as the product's output
// with beta 1 (kernels/common/product_into.h): one kernel, the .grad read and written once, nothing
// rounded to bf16 on the way. The x's gradient is autograd's as before. Autograd gets no gradient
// for the weight and bias, so their AccumulateGrad nodes add nothing; they still run their
// post-accumulate hooks, which is where data parallelism's buckets (collectives/gradient_buckets.h,
// sharded_gradients.h) learn that the gradient is complete. On the CPU the products are bf16 and
// then added (no mixed-dtype product there): autograd's values, so the CPU tests compare the two.
#pragma once

#include <ATen/ATen.h>

namespace albion::kernels {

// How the layer stores its weight: torch's Linear [out, in] (y = x W^T + b) or GPT-2's Conv1D
// [in, out] (y = x W + b).
enum class WeightLayout { kOutByIn, kInByOut };

// Whether accumulating_linear applies to x and this weight: bf16 autocast on x's device, autograd
// on, and a trainable fp32 leaf weight (not a frozen base under LoRA).
bool accumulates_in_place(const at::Tensor& x, const at::Tensor& weight);

// The product for x [..., in]: [..., out] in bf16. `bias` may be undefined (none, or added
// elsewhere, as GPT-2's fused GELU does). Backward (no double backward): x's gradient in x's dtype;
// the weight's and a trainable bias's added into their .grad (created when undefined).
at::Tensor accumulating_linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                               WeightLayout layout);

}  // namespace albion::kernels
