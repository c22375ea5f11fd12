// File: kernels/rmsnorm/rmsnorm_torch.cpp
// Torch layer of RMSNorm: checks tensors at the boundary, dispatches to the CUDA launchers or the
// CPU references, and defines the autograd function.
#include <torch/csrc/autograd/custom_function.h>

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

}  // namespace

std::pair<at::Tensor, at::Tensor> rmsnorm_forward_with_stats(const at::Tensor& input, const at::Tensor& weight,
                                                            double eps) {
  ALBION_CHECK_AS(UsageError, eps > 0, "rmsnorm: eps must be positive, got ", eps);
  const std::int64_t rows = check_operands(input, weight);
  const std::int64_t cols = input.size(-1);
  at::Tensor output = at::empty_like(input);
  at::Tensor inv_rms = at::empty({rows}, input.options().dtype(statistics_type(input)));
  if (rows == 0) return {output, inv_rms};
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
    launch_rmsnorm_forward(p, launch.stream());
    return {output, inv_rms};
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
  return {output, inv_rms};
}

std::pair<at::Tensor, at::Tensor> rmsnorm_backward(const at::Tensor& grad_output, const at::Tensor& input,
                                                   const at::Tensor& weight, const at::Tensor& inv_rms,
                                                   bool weight_gradient) {
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
    const torch::autograd::variable_list saved = context->get_saved_variables();
    const at::Tensor& input = saved[0];
    const at::Tensor& weight = saved[1];
    const at::Tensor& inv_rms = saved[2];
    const at::Tensor grad_output = grads[0].contiguous();
    const bool weight_gradient = context->needs_input_grad(1);  // false: a frozen weight
    if (!context->needs_input_grad(0)) {
      if (!weight_gradient) return {at::Tensor(), at::Tensor(), at::Tensor()};
      const at::Tensor grad_weight = norm_parameter_grads(grad_output, input, at::Tensor(), inv_rms, false).first;
      return {at::Tensor(), grad_weight.to(weight.scalar_type()), at::Tensor()};
    }
    auto [grad_input, grad_weight] = rmsnorm_backward(grad_output, input, weight, inv_rms, weight_gradient);
    return {grad_input, weight_gradient ? grad_weight.to(weight.scalar_type()) : at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor rmsnorm(const at::Tensor& input, const at::Tensor& weight, double eps) {
  return RmsNormFunction::apply(input.contiguous(), weight.contiguous(), eps);
}

}  // namespace albion::kernels
