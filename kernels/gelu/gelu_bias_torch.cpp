// File: kernels/gelu/gelu_bias_torch.cpp
// Torch layer of the fused bias + GELU-tanh: checks, dispatch, autograd.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/csrc/autograd/custom_function.h>

#include "kernels/common/cpu_dispatch.h"
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
  if (x.is_cuda()) kernel_dtype(x, "gelu_bias x");
  return x.size(-1) == 0 ? 0 : x.numel() / x.size(-1);
}

// output = forward (grad_output undefined) or dz (grad_output given).
at::Tensor run(const at::Tensor& x, const at::Tensor& bias, const at::Tensor& grad_output) {
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
  at::Tensor output = at::empty_like(x);
  if (rows == 0) return output;
  if (x.is_cuda()) {
    c10::cuda::CUDAGuard guard(x.device());
    const at::Tensor bias32 = bias.to(at::kFloat).contiguous();
    GeluBiasParams p;
    p.input = x.data_ptr();
    p.bias = bias32.data_ptr<float>();
    p.grad_output = backward ? grad_output.data_ptr() : nullptr;
    p.output = output.data_ptr();
    p.rows = rows;
    p.cols = cols;
    p.dtype = kernel_dtype(x, "gelu_bias x");
    cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
    if (backward) launch_gelu_bias_backward(p, stream);
    else launch_gelu_bias_forward(p, stream);
    return output;
  }
  const auto on_cpu = [&](auto tag) {
    using T = decltype(tag);
    const at::ScalarType type = c10::CppTypeToScalarType<T>::value;
    at::Tensor xt = x.to(type).contiguous();
    at::Tensor bt = bias.to(type).contiguous();
    at::Tensor out = at::empty_like(xt);
    if (backward) {
      at::Tensor dy = grad_output.to(type).contiguous();
      gelu_bias_backward_reference<T>(dy.data_ptr<T>(), xt.data_ptr<T>(), bt.data_ptr<T>(), out.data_ptr<T>(), rows,
                                      cols);
    } else {
      gelu_bias_forward_reference<T>(xt.data_ptr<T>(), bt.data_ptr<T>(), out.data_ptr<T>(), rows, cols);
    }
    output.copy_(out);
  };
  with_reference_type(x, on_cpu);
  return output;
}

class GeluBiasFunction : public torch::autograd::Function<GeluBiasFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* context, const at::Tensor& x, const at::Tensor& bias) {
    context->save_for_backward({x, bias});
    return run(x, bias, at::Tensor());
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 torch::autograd::variable_list grads) {
    const torch::autograd::variable_list saved = context->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& bias = saved[1];
    at::Tensor grad_x = run(x, bias, grads[0].contiguous());
    // The bias gradient: dz summed over rows, accumulated in at least fp32.
    const at::ScalarType sum_type = at::promote_types(x.scalar_type(), at::kFloat);
    at::Tensor grad_bias = grad_x.reshape({-1, x.size(-1)}).sum(0, false, sum_type).to(bias.scalar_type());
    return {grad_x, grad_bias};
  }
};

}  // namespace

at::Tensor gelu_bias_forward(const at::Tensor& x, const at::Tensor& bias) { return run(x, bias, at::Tensor()); }

at::Tensor gelu_bias_backward_input(const at::Tensor& grad_output, const at::Tensor& x, const at::Tensor& bias) {
  return run(x, bias, grad_output);
}

at::Tensor gelu_bias(const at::Tensor& x, const at::Tensor& bias) {
  return GeluBiasFunction::apply(x.contiguous(), bias.contiguous());
}

}  // namespace albion::kernels
