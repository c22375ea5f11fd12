// File: kernels/rmsnorm/rmsnorm_torch.cpp
// Torch layer of RMSNorm: checks tensors at the boundary, dispatches to the CUDA launchers or the
// CPU references, and defines the autograd functions: the norm's, and the norm's with the residual
// add before it (Note [The residual add in the norm], kernels/layernorm/layernorm_torch.cpp: Llama's
// post_attention_layernorm after the attention, the next input_layernorm or the final norm after the
// MLP).
#include <torch/csrc/autograd/custom_function.h>

#include <tuple>
#include <utility>

#include "kernels/common/cpu_dispatch.h"
#include "kernels/common/kernel_device.h"
#include "kernels/common/tensor_checks.h"
#include "kernels/norm_grad/norm_parameter_grad.h"
#include "kernels/rmsnorm/rmsnorm.cuh"
#include "kernels/rmsnorm/rmsnorm.h"
#include "runtime/base/check.h"

namespace albion::kernels {
namespace {

// Rows of the [..., cols] input, after the checks every entry point shares.
std::int64_t check_operands(const at::Tensor& input, const at::Tensor& weight) {
  check_same_device_and_dtype(input, weight, "rmsnorm input", "rmsnorm weight");
  check_contiguous(input, "rmsnorm input");
  check_contiguous(weight, "rmsnorm weight");
  ALBION_CHECK_AS(UsageError, input.dim() >= 1 && weight.dim() == 1 && weight.size(0) == input.size(-1),
                  "rmsnorm: weight of shape ", weight.sizes(), " does not match input of shape ", input.sizes(),
                  " (expected [", input.dim() ? input.size(-1) : 0, "])");
  ALBION_CHECK_AS(UsageError, input.is_cuda() || input.is_cpu(), "rmsnorm: unsupported device ", input.device());
  ALBION_CHECK_AS(UsageError, at::isFloatingType(input.scalar_type()), "rmsnorm: input of dtype ",
                  input.scalar_type(), " is not floating point");
  if (runs_kernels(input)) kernel_dtype(input, "rmsnorm input");
  const std::int64_t cols = input.size(-1);
  return cols == 0 ? 0 : input.numel() / cols;
}

struct ForwardResult {
  at::Tensor output;
  at::Tensor inv_rms;
  at::Tensor sum;  // input + residual, where there is a residual
};

// rmsnorm_forward_with_stats of input, or of input + residual where `residual` is defined (the
// kernels only).
ForwardResult forward_with_stats(const at::Tensor& input, const at::Tensor& residual, const at::Tensor& weight,
                                 double eps) {
  ALBION_CHECK_AS(UsageError, eps > 0, "rmsnorm: eps must be positive, got ", eps);
  const std::int64_t rows = check_operands(input, weight);
  ALBION_CHECK(!residual.defined() || runs_kernels(input), "rmsnorm: the residual add runs in the kernels only");
  const std::int64_t cols = input.size(-1);
  at::Tensor output = at::empty_like(input);
  at::Tensor inv_rms = at::empty({rows}, input.options().dtype(statistics_type(input)));
  const at::Tensor sum = residual.defined() ? at::empty_like(input) : at::Tensor();
  if (rows == 0) return {output, inv_rms, sum};
  if (runs_kernels(input)) {
    const KernelLaunch launch(input.device());
    RmsNormForwardParams p;
    p.input = input.data_ptr();
    p.weight = weight.data_ptr();
    p.output = output.data_ptr();
    p.inv_rms = inv_rms.data_ptr<float>();
    p.rows = rows;
    p.cols = cols;
    p.eps = static_cast<float>(eps);
    p.dtype = kernel_dtype(input, "rmsnorm input");
    if (residual.defined()) {
      p.residual = residual.data_ptr();
      p.sum = sum.data_ptr();
      p.bf16_residual = residual.scalar_type() != input.scalar_type();
    }
    launch_rmsnorm_forward(p, launch.stream());
    return {output, inv_rms, sum};
  }
  with_reference_type(input, [&](auto tag) {
    using T = decltype(tag);
    const at::ScalarType type = c10::CppTypeToScalarType<T>::value;
    at::Tensor x = input.to(type).contiguous();
    at::Tensor w = weight.to(type).contiguous();
    at::Tensor y = at::empty_like(x);
    rmsnorm_forward_reference<T>(x.data_ptr<T>(), w.data_ptr<T>(), y.data_ptr<T>(), inv_rms.data_ptr<T>(), rows,
                                 cols, static_cast<T>(eps));
    output.copy_(y);
  });
  return {output, inv_rms, sum};
}

}  // namespace

std::pair<at::Tensor, at::Tensor> rmsnorm_forward_with_stats(const at::Tensor& input, const at::Tensor& weight,
                                                            double eps) {
  ForwardResult result = forward_with_stats(input, at::Tensor(), weight, eps);
  return {result.output, result.inv_rms};
}

std::pair<at::Tensor, at::Tensor> rmsnorm_backward(const at::Tensor& grad_output, const at::Tensor& input,
                                                   const at::Tensor& weight, const at::Tensor& inv_rms,
                                                   bool weight_gradient, const at::Tensor& grad_sum) {
  const std::int64_t rows = check_operands(input, weight);
  check_same_device_and_dtype(grad_output, input, "rmsnorm grad_output", "rmsnorm input");
  check_contiguous(grad_output, "rmsnorm grad_output");
  ALBION_CHECK_AS(UsageError,
                  grad_output.sizes() == input.sizes() && inv_rms.numel() == rows &&
                      inv_rms.scalar_type() == statistics_type(input) && inv_rms.device() == input.device() &&
                      inv_rms.is_contiguous(),
                  "rmsnorm backward: grad_output ", grad_output.sizes(), " or statistics ", inv_rms.sizes(), " ",
                  inv_rms.scalar_type(), " on ", inv_rms.device(), " do not match input ", input.sizes(), " on ",
                  input.device());
  ALBION_CHECK_AS(UsageError,
                  !grad_sum.defined() || (grad_sum.sizes() == input.sizes() && grad_sum.device() == input.device() &&
                                          grad_sum.scalar_type() == input.scalar_type() && grad_sum.is_contiguous()),
                  "rmsnorm backward: grad_sum must be contiguous, of input's shape, device and dtype");
  const std::int64_t cols = input.size(-1);
  at::Tensor grad_input = at::empty_like(input);
  const auto weight_apart = [&] {
    return weight_gradient
               ? norm_parameter_grads(grad_output, input, /*mean=*/at::Tensor(), inv_rms, /*with_bias=*/false).first
               : at::Tensor();
  };
  if (rows == 0) return {grad_input, weight_apart()};
  if (runs_kernels(input)) {
    const KernelLaunch launch(input.device());
    RmsNormBackwardParams p;
    p.grad_output = grad_output.data_ptr();
    p.input = input.data_ptr();
    p.weight = weight.data_ptr();
    p.inv_rms = inv_rms.data_ptr<float>();
    p.grad_input = grad_input.data_ptr();
    p.rows = rows;
    p.cols = cols;
    p.dtype = kernel_dtype(input, "rmsnorm input");
    p.grad_sum = grad_sum.defined() ? grad_sum.data_ptr() : nullptr;
    const std::int64_t segments =
        weight_gradient ? rmsnorm_backward_weight_segments(p, multiprocessor_count(input.device())) : 0;
    if (segments == 0) {
      launch_rmsnorm_backward(p, launch.stream());
      return {grad_input, weight_apart()};
    }
    // Summed in the same pass.
    at::Tensor grad_weight = at::empty({cols}, inv_rms.options());
    const at::Tensor partials = at::empty({segments, cols}, inv_rms.options());
    p.grad_weight = grad_weight.data_ptr<float>();
    p.weight_partials = partials.data_ptr<float>();
    p.weight_segments = segments;
    launch_rmsnorm_backward(p, launch.stream());
    return {grad_input, grad_weight};
  }
  with_reference_type(input, [&](auto tag) {
    using T = decltype(tag);
    const at::ScalarType type = c10::CppTypeToScalarType<T>::value;
    at::Tensor dy = grad_output.to(type).contiguous();
    at::Tensor x = input.to(type).contiguous();
    at::Tensor w = weight.to(type).contiguous();
    at::Tensor dx = at::empty_like(x);
    rmsnorm_backward_reference<T>(dy.data_ptr<T>(), x.data_ptr<T>(), w.data_ptr<T>(), inv_rms.data_ptr<T>(),
                                  dx.data_ptr<T>(), rows, cols);
    grad_input.copy_(dx);
    if (grad_sum.defined()) grad_input.add_(grad_sum);  // rounded once more, as the kernel rounds
  });
  return {grad_input, weight_apart()};
}

void rmsnorm_forward_out(at::Tensor& output, const at::Tensor& input, const at::Tensor& weight, double eps) {
  check_same_device_and_dtype(input, output, "rmsnorm input", "rmsnorm output");
  check_contiguous(output, "rmsnorm output");
  ALBION_CHECK_AS(UsageError, output.sizes() == input.sizes(), "rmsnorm: output of shape ", output.sizes(),
                  " does not match input of shape ", input.sizes());
  output.copy_(rmsnorm_forward_with_stats(input, weight, eps).first);
}

at::Tensor rmsnorm_forward(const at::Tensor& input, const at::Tensor& weight, double eps) {
  return rmsnorm_forward_with_stats(input, weight, eps).first;
}

namespace {

// The gradients of a norm's input (the normalised tensor, `input`: x, or x + r) and weight from the
// saved tensors {input, weight, inv_rms}, the weight being input `weight_index` of the autograd
// function; `grad_sum` (may be undefined): the input's gradient from its other reader, added to the
// input's. Undefined where not wanted.
std::pair<at::Tensor, at::Tensor> norm_gradients(torch::autograd::AutogradContext* context,
                                                 const at::Tensor& grad_output, const at::Tensor& grad_sum,
                                                 bool input_gradient, int weight_index) {
  const torch::autograd::variable_list saved = context->get_saved_variables();
  const at::Tensor& input = saved[0];
  const at::Tensor& weight = saved[1];
  const at::Tensor& inv_rms = saved[2];
  const bool weight_gradient = context->needs_input_grad(weight_index);  // false: a frozen weight
  at::Tensor grad_input, grad_weight;
  if (input_gradient) {
    std::tie(grad_input, grad_weight) =
        rmsnorm_backward(grad_output, input, weight, inv_rms, weight_gradient, grad_sum);
  } else if (weight_gradient) {
    grad_weight = norm_parameter_grads(grad_output, input, at::Tensor(), inv_rms, /*with_bias=*/false).first;
  }
  return {grad_input, weight_gradient ? grad_weight.to(weight.scalar_type()) : at::Tensor()};
}

class RmsNormFunction : public torch::autograd::Function<RmsNormFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* context, const at::Tensor& input,
                            const at::Tensor& weight, double eps) {
    auto [output, inv_rms] = rmsnorm_forward_with_stats(input, weight, eps);
    context->save_for_backward({input, weight, inv_rms});
    return output;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 torch::autograd::variable_list grads) {
    auto [grad_input, grad_weight] = norm_gradients(context, grads[0].contiguous(), at::Tensor(),
                                                    context->needs_input_grad(0), /*weight_index=*/1);
    return {grad_input, grad_weight, at::Tensor()};
  }
};

// {input + residual, its norm} in one kernel each way.
class AddRmsNormFunction : public torch::autograd::Function<AddRmsNormFunction> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* context, const at::Tensor& input,
                                                const at::Tensor& residual, const at::Tensor& weight, double eps) {
    ForwardResult result = forward_with_stats(input, residual, weight, eps);
    context->save_for_backward({result.sum, weight, result.inv_rms});
    context->set_materialize_grads(false);  // an output nothing read: no zeros to add
    return {result.sum, result.output};
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 torch::autograd::variable_list grads) {
    // A sum or a norm nothing read has no gradient (undefined).
    const at::Tensor grad_sum = grads[0].defined() ? grads[0].contiguous() : at::Tensor();
    at::Tensor grad_input = grad_sum, grad_weight;
    if (grads[1].defined()) {
      std::tie(grad_input, grad_weight) =
          norm_gradients(context, grads[1].contiguous(), grad_sum,
                         context->needs_input_grad(0) || context->needs_input_grad(1), /*weight_index=*/2);
    }
    // x's and r's gradient is the sum's; autograd casts r's to r's dtype.
    return {grad_input, grad_input, grad_weight, at::Tensor()};
  }
};

}  // namespace

at::Tensor rmsnorm(const at::Tensor& input, const at::Tensor& weight, double eps) {
  return RmsNormFunction::apply(input.contiguous(), weight.contiguous(), eps);
}

bool add_rmsnorm_takes(at::ScalarType input, at::ScalarType residual) {
  return residual == input || (residual == at::kBFloat16 && input == at::kFloat);
}

std::pair<at::Tensor, at::Tensor> add_rmsnorm(const at::Tensor& input, const at::Tensor& residual,
                                              const at::Tensor& weight, double eps) {
  ALBION_CHECK_AS(UsageError,
                  residual.sizes() == input.sizes() && residual.device() == input.device() &&
                      add_rmsnorm_takes(input.scalar_type(), residual.scalar_type()),
                  "add_rmsnorm: residual (", residual.scalar_type(), " ", residual.sizes(), " on ", residual.device(),
                  ") must have input's shape ", input.sizes(), ", device and dtype ", input.scalar_type(),
                  " (or bf16 for fp32 input)");
  if (!runs_kernels(input)) {  // the reference: the add, then the norm
    at::Tensor sum = input + residual;
    return {sum, rmsnorm(sum, weight, eps)};
  }
  const torch::autograd::variable_list outputs =
      AddRmsNormFunction::apply(input.contiguous(), residual.contiguous(), weight.contiguous(), eps);
  return {outputs[0], outputs[1]};
}

}  // namespace albion::kernels
