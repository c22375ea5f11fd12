// File: kernels/layernorm/layernorm.h
// LayerNorm for the runtime: CUDA tensors (fp32, bf16) run the kernels of layernorm.cu; CPU
// tensors (fp32, bf16, fp64) run the reference. input [..., hidden]; weight and bias [hidden] of
// input's dtype and device; all contiguous. The output is in input's dtype, or in `output_dtype`:
// bf16 for fp32 input, the operand of a bf16 product (Note [A norm writes its product's operand],
// layernorm_torch.cpp); its gradient then comes in that dtype.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <tuple>
#include <utility>

namespace albion::kernels {

// Differentiable in input, weight and bias.
at::Tensor layernorm(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias, double eps,
                     std::optional<at::ScalarType> output_dtype = std::nullopt);

// {input + residual, layernorm of that sum}, a residual branch's add before the next norm in the
// norm's kernels (Note [The residual add in the norm], layernorm_torch.cpp); the reference
// adds, then normalises. residual: input's shape, in a dtype add_layernorm_takes. The sum comes
// out in input's dtype. Differentiable in all four tensors.
std::pair<at::Tensor, at::Tensor> add_layernorm(const at::Tensor& input, const at::Tensor& residual,
                                                const at::Tensor& weight, const at::Tensor& bias, double eps,
                                                std::optional<at::ScalarType> output_dtype = std::nullopt);
// The residual dtypes add_layernorm takes: the output's, or bf16 for fp32 input (a bf16 product's
// output added to an fp32 stream whose norm writes fp32).
bool add_layernorm_takes(at::ScalarType input, at::ScalarType residual, at::ScalarType output);

// {y, mean, rstd}; the statistics are fp32 (fp64 for fp64 input), one per row.
std::tuple<at::Tensor, at::Tensor, at::Tensor> layernorm_forward_with_stats(
    const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias, double eps,
    std::optional<at::ScalarType> output_dtype = std::nullopt);
// The gradients from the forward's statistics, grad_output in the output's dtype: {d_input (in
// input's dtype), d_weight, d_bias}, the last two in the statistics' dtype and undefined unless
// parameter_gradients. The CUDA kernel sums them in d_input's pass where the rows fit its
// registers (reading dy and x once), else a second kernel sums them. `grad_sum` (optional, input's
// dtype): input's gradient from another reader, added to d_input (add_layernorm's sum).
std::tuple<at::Tensor, at::Tensor, at::Tensor> layernorm_backward(const at::Tensor& grad_output,
                                                                  const at::Tensor& input, const at::Tensor& weight,
                                                                  const at::Tensor& mean, const at::Tensor& rstd,
                                                                  bool parameter_gradients,
                                                                  const at::Tensor& grad_sum = at::Tensor());

}  // namespace albion::kernels
