// File: kernels/norm_grad/norm_parameter_grad_torch.cpp
// Torch layer of the norm parameter gradients: boundary checks, then the CUDA launcher or the CPU
// reference.

#include "kernels/common/cpu_dispatch.h"
#include "kernels/common/kernel_device.h"
#include "kernels/common/tensor_checks.h"
#include "kernels/norm_grad/norm_parameter_grad.cuh"
#include "kernels/norm_grad/norm_parameter_grad.h"
#include "runtime/base/check.h"

namespace albion::kernels {

std::pair<at::Tensor, at::Tensor> norm_parameter_grads(const at::Tensor& grad_output, const at::Tensor& input,
                                                       const at::Tensor& mean, const at::Tensor& rstd,
                                                       bool with_bias) {
  check_same_device_and_dtype(grad_output, input, "norm grad_output", "norm input");
  check_contiguous(grad_output, "norm grad_output");
  check_contiguous(input, "norm input");
  ALBION_CHECK_AS(UsageError, input.dim() >= 1 && input.size(-1) > 0 && grad_output.sizes() == input.sizes(),
                  "norm parameter gradients: grad_output ", grad_output.sizes(), " and input ", input.sizes(),
                  " must match, with a non-empty last dimension");
  const std::int64_t cols = input.size(-1);
  const std::int64_t rows = input.numel() / cols;
  const at::ScalarType statistics = statistics_type(input);
  for (const at::Tensor* t : {&mean, &rstd}) {
    if (t == &mean && !mean.defined()) continue;
    ALBION_CHECK_AS(UsageError, t->numel() == rows && t->scalar_type() == statistics &&
                                    t->device() == input.device() && t->is_contiguous(),
                    "norm parameter gradients: statistics must be ", rows, " contiguous ", statistics, " values on ",
                    input.device());
  }
  const at::TensorOptions options = input.options().dtype(statistics);
  at::Tensor grad_weight = at::empty({cols}, options);
  at::Tensor grad_bias = with_bias ? at::empty({cols}, options) : at::Tensor();
  if (runs_kernels(input)) {
    const DType dtype = kernel_dtype(input, "norm input");  // before data_ptr<float>(): fp64 is a usage error
    const KernelLaunch launch(input.device());
    const at::Tensor partials = at::empty({with_bias ? 2 : 1, norm_parameter_grad_segments(rows), cols}, options);
    NormParameterGradParams p;
    p.grad_output = grad_output.data_ptr();
    p.input = input.data_ptr();
    p.mean = mean.defined() ? mean.data_ptr<float>() : nullptr;
    p.rstd = rstd.data_ptr<float>();
    p.partials = partials.data_ptr<float>();
    p.grad_weight = grad_weight.data_ptr<float>();
    p.grad_bias = with_bias ? grad_bias.data_ptr<float>() : nullptr;
    p.rows = rows;
    p.cols = cols;
    p.dtype = dtype;
    launch_norm_parameter_grad(p, launch.stream());
    return {grad_weight, grad_bias};
  }
  ALBION_CHECK_AS(UsageError, input.is_cpu(), "norm parameter gradients: unsupported device ", input.device());
  with_reference_type(input, [&](auto tag) {
    using T = decltype(tag);
    const at::Tensor dy = grad_output.to(statistics);
    const at::Tensor x = input.to(statistics);
    norm_parameter_grad_reference<T>(dy.data_ptr<T>(), x.data_ptr<T>(), mean.defined() ? mean.data_ptr<T>() : nullptr,
                                     rstd.data_ptr<T>(), grad_weight.data_ptr<T>(),
                                     with_bias ? grad_bias.data_ptr<T>() : nullptr, rows, cols);
  });
  return {grad_weight, grad_bias};
}

}  // namespace albion::kernels
