// File: kernels/rmsnorm/rmsnorm.h
// RMSNorm for the runtime: one call for CPU and CUDA tensors. CUDA tensors (fp32, bf16) run the
// fused kernels (rmsnorm.cu) on the current stream; CPU tensors (fp32, bf16, fp64) run the
// reference (rmsnorm_ref.cpp). input [..., hidden] and weight [hidden]: same device and dtype,
// contiguous.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace albion::kernels {

// Differentiable: autograd runs rmsnorm_backward.
at::Tensor rmsnorm(const at::Tensor& input, const at::Tensor& weight, double eps);

// {input + residual, rmsnorm of that sum}, a residual branch's add before the next norm in the
// norm's kernels (Note [The residual add in the norm], kernels/layernorm/layernorm_torch.cpp); the
// reference adds, then normalises. residual: input's shape, in a dtype add_rmsnorm_takes. The sum
// comes out in input's dtype. Differentiable in all three tensors.
std::pair<at::Tensor, at::Tensor> add_rmsnorm(const at::Tensor& input, const at::Tensor& residual,
                                              const at::Tensor& weight, double eps);
// The residual dtypes add_rmsnorm takes: input's, or bf16 for fp32 input (a bf16 product's output
// added to an fp32 stream under autocast).
bool add_rmsnorm_takes(at::ScalarType input, at::ScalarType residual);

// The norm of fp32 input written `operands` times in bf16 (1 to kMaxNormOutputs, rmsnorm.cuh): one
// operand for each bf16 matrix product that reads the norm's output and nothing else reads, the
// fp32 output rounded as that product's cast under autocast rounds it (Note [One operand per
// product], rmsnorm_torch.cpp). The operands' gradients are summed in fp32 in the backward pass,
// as the casts' are. Differentiable in input and weight.
std::vector<at::Tensor> rmsnorm_operands(const at::Tensor& input, const at::Tensor& weight, double eps,
                                         std::int64_t operands);
// Whether rmsnorm_operands writes that many operands.
bool rmsnorm_operands_take(std::int64_t operands);
// {input + residual, rmsnorm_operands of that sum}: add_rmsnorm with its norm written as operands.
std::pair<at::Tensor, std::vector<at::Tensor>> add_rmsnorm_operands(const at::Tensor& input,
                                                                    const at::Tensor& residual,
                                                                    const at::Tensor& weight, double eps,
                                                                    std::int64_t operands);

// Returns y with input's shape and dtype.
at::Tensor rmsnorm_forward(const at::Tensor& input, const at::Tensor& weight, double eps);

// As above, writing into `output` (same shape, dtype and device as input, contiguous).
void rmsnorm_forward_out(at::Tensor& output, const at::Tensor& input, const at::Tensor& weight,
                         double eps);

// The forward with its statistics: {y, 1/rms per row} (fp32; fp64 for fp64 input).
std::pair<at::Tensor, at::Tensor> rmsnorm_forward_with_stats(const at::Tensor& input, const at::Tensor& weight,
                                                            double eps);
// The gradients from the forward's statistics: {d_input, d_weight}, d_weight in the statistics'
// dtype and undefined unless weight_gradient. The CUDA kernel sums d_weight in d_input's pass where
// the rows fit its registers (reading dy and x once), else a second kernel sums it. `grad_outputs`:
// the output's gradient in input's dtype, or the gradients of rmsnorm_operands's operands (bf16 for
// fp32 input, summed in fp32 in their order). `grad_sum` (optional, input's dtype): input's gradient
// from another reader, added to d_input (add_rmsnorm's sum).
std::pair<at::Tensor, at::Tensor> rmsnorm_backward(at::TensorList grad_outputs, const at::Tensor& input,
                                                   const at::Tensor& weight, const at::Tensor& inv_rms,
                                                   bool weight_gradient, const at::Tensor& grad_sum = at::Tensor());

}  // namespace albion::kernels
