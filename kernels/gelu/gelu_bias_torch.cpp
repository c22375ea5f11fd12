// File: kernels/gelu/gelu_bias_torch.cpp
// Torch layer of the fused bias + GELU-tanh: checks, dispatch, autograd.
#include <torch/csrc/autograd/custom_function.h>

#include "kernels/common/cpu_dispatch.h"
#include "kernels/common/kernel_device.h"
#include "kernels/common/tensor_checks.h"
#include "kernels/gelu/gelu_bias.cuh"
#include "kernels/gelu/gelu_bias.h"
#include "runtime/base/check.h"

namespace albion::kernels {
namespace {

std::int64_t check_operands(const at::Tensor& x, const at::Tensor& bias) {
  check_contiguous(x, "gelu_bias x");
  ALBION_CHECK_AS(UsageError, x.dim() >= 1 && bias.dim() == 1 && bias.size(0) == x.size(-1), "gelu_bias: bias ",
                  bias.sizes(), " does not match x ", x.sizes());
  ALBION_CHECK_AS(UsageError, x.device() == bias.device(), "gelu_bias: x on ", x.device(), ", bias on ", bias.device());
  ALBION_CHECK_AS(UsageError, at::isFloatingType(x.scalar_type()) && at::isFloatingType(bias.scalar_type()),
                  "gelu_bias: x and bias must be floating point");
  ALBION_CHECK_AS(UsageError, x.is_cuda() || x.is_cpu(), "gelu_bias: unsupported device ", x.device());
  if (runs_kernels(x)) kernel_dtype(x, "gelu_bias x");
  return x.size(-1) == 0 ? 0 : x.numel() / x.size(-1);
}

struct Outputs {
  at::Tensor output;     // forward: y; backward: dz
  at::Tensor grad_bias;  // backward with the bias gradient wanted: sum of dz over rows, in bias's dtype
};

// The forward (grad_output undefined) or the backward (grad_output given; with the bias gradient
// when want_grad_bias).
Outputs run(const at::Tensor& x, const at::Tensor& bias, const at::Tensor& grad_output, bool want_grad_bias) {
  const std::int64_t rows = check_operands(x, bias);
  const std::int64_t cols = x.size(-1);
  const bool backward = grad_output.defined();
  if (backward) {
    ALBION_CHECK_AS(UsageError, grad_output.sizes() == x.sizes() && grad_output.scalar_type() == x.scalar_type() &&
                                    grad_output.device() == x.device(),
                    "gelu_bias backward: grad_output ", grad_output.sizes(), " ", grad_output.scalar_type(), " on ",
                    grad_output.device(), " does not match x ", x.sizes(), " ", x.scalar_type(), " on ", x.device());
    check_contiguous(grad_output, "gelu_bias grad_output");
  }
  want_grad_bias = want_grad_bias && backward;
  Outputs out{at::empty_like(x), at::Tensor()};
  if (rows == 0 || cols == 0) {
    if (want_grad_bias) out.grad_bias = at::zeros_like(bias);
    return out;
  }
  if (runs_kernels(x)) {
    const KernelLaunch launch(x.device());
    const at::Tensor bias32 = bias.to(at::kFloat).contiguous();
    const at::TensorOptions fp32 = bias32.options();
    at::Tensor grad_bias32 = want_grad_bias ? at::empty({cols}, fp32) : at::Tensor();
    at::Tensor partials = want_grad_bias ? at::empty({gelu_bias_grad_segments(rows), cols}, fp32) : at::Tensor();
    GeluBiasParams p;
    p.input = x.data_ptr();
    p.bias = bias32.data_ptr<float>();
    p.grad_output = backward ? grad_output.data_ptr() : nullptr;
    p.output = out.output.data_ptr();
    p.grad_bias = want_grad_bias ? grad_bias32.data_ptr<float>() : nullptr;
    p.partials = want_grad_bias ? partials.data_ptr<float>() : nullptr;
    p.rows = rows;
    p.cols = cols;
    p.dtype = kernel_dtype(x, "gelu_bias x");
    cudaStream_t stream = launch.stream();
    if (backward) launch_gelu_bias_backward(p, stream);
    else launch_gelu_bias_forward(p, stream);
    if (want_grad_bias) out.grad_bias = grad_bias32.to(bias.scalar_type());
    return out;
  }
  const auto on_cpu = [&](auto tag) {
    using T = decltype(tag);
    const at::ScalarType type = c10::CppTypeToScalarType<T>::value;
    at::Tensor xt = x.to(type).contiguous();
    at::Tensor bt = bias.to(type).contiguous();
    at::Tensor result = at::empty_like(xt);
    if (backward) {
      at::Tensor dy = grad_output.to(type).contiguous();
      at::Tensor grad_bias = want_grad_bias ? at::empty({cols}, bt.options()) : at::Tensor();
      gelu_bias_backward_reference<T>(dy.data_ptr<T>(), xt.data_ptr<T>(), bt.data_ptr<T>(), result.data_ptr<T>(),
                                      want_grad_bias ? grad_bias.data_ptr<T>() : nullptr, rows, cols);
      if (want_grad_bias) out.grad_bias = grad_bias.to(bias.scalar_type());
    } else {
      gelu_bias_forward_reference<T>(xt.data_ptr<T>(), bt.data_ptr<T>(), result.data_ptr<T>(), rows, cols);
    }
    out.output.copy_(result);
  };
  with_reference_type(x, on_cpu);
  return out;
}

class GeluBiasFunction : public torch::autograd::Function<GeluBiasFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* context, const at::Tensor& x, const at::Tensor& bias) {
    context->save_for_backward({x, bias});
    return run(x, bias, at::Tensor(), false).output;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 torch::autograd::variable_list grads) {
    const torch::autograd::variable_list saved = context->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& bias = saved[1];
    Outputs grads_in = run(x, bias, grads[0].contiguous(), context->needs_input_grad(1));
    return {grads_in.output, grads_in.grad_bias};
  }
};

}  // namespace

at::Tensor gelu_bias_forward(const at::Tensor& x, const at::Tensor& bias) {
  return run(x, bias, at::Tensor(), false).output;
}

at::Tensor gelu_bias_backward_input(const at::Tensor& grad_output, const at::Tensor& x, const at::Tensor& bias) {
  return run(x, bias, grad_output, false).output;
}

std::pair<at::Tensor, at::Tensor> gelu_bias_backward(const at::Tensor& grad_output, const at::Tensor& x,
                                                     const at::Tensor& bias) {
  Outputs grads = run(x, bias, grad_output, true);
  return {grads.output, grads.grad_bias};
}

at::Tensor gelu_bias(const at::Tensor& x, const at::Tensor& bias) {
  return GeluBiasFunction::apply(x.contiguous(), bias.contiguous());
}

}  // namespace albion::kernels
