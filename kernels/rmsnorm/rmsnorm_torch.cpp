// File: kernels/rmsnorm/rmsnorm_torch.cpp
// Torch layer of RMSNorm: checks tensors at the boundary, then dispatches to the CUDA launcher or
// the CPU reference.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "kernels/common/tensor_checks.h"
#include "kernels/rmsnorm/rmsnorm.cuh"
#include "kernels/rmsnorm/rmsnorm.h"
#include "runtime/base/check.h"

namespace albion::kernels {

void rmsnorm_forward_out(at::Tensor& output, const at::Tensor& input, const at::Tensor& weight,
                         double eps) {
  const DType dtype = kernel_dtype(input, "rmsnorm input");
  check_same_device_and_dtype(input, weight, "rmsnorm input", "rmsnorm weight");
  check_same_device_and_dtype(input, output, "rmsnorm input", "rmsnorm output");
  check_contiguous(input, "rmsnorm input");
  check_contiguous(weight, "rmsnorm weight");
  check_contiguous(output, "rmsnorm output");
  ALBION_CHECK_AS(UsageError, input.dim() >= 1 && weight.dim() == 1 &&
                                  weight.size(0) == input.size(-1),
                  "rmsnorm: weight of shape ", weight.sizes(), " does not match input of shape ",
                  input.sizes(), " (expected [", input.dim() ? input.size(-1) : 0, "])");
  ALBION_CHECK_AS(UsageError, output.sizes() == input.sizes(), "rmsnorm: output of shape ",
                  output.sizes(), " does not match input of shape ", input.sizes());
  ALBION_CHECK_AS(UsageError, eps > 0, "rmsnorm: eps must be positive, got ", eps);
  const std::int64_t cols = input.size(-1);
  const std::int64_t rows = cols == 0 ? 0 : input.numel() / cols;
  if (rows == 0) return;

  if (input.is_cuda()) {
    c10::cuda::CUDAGuard guard(input.device());
    RmsNormForwardParams params;
    params.input = input.data_ptr();
    params.weight = weight.data_ptr();
    params.output = output.data_ptr();
    params.rows = rows;
    params.cols = cols;
    params.eps = static_cast<float>(eps);
    params.dtype = dtype;
    launch_rmsnorm_forward(params, c10::cuda::getCurrentCUDAStream().stream());
    return;
  }

  ALBION_CHECK_AS(UsageError, input.is_cpu(), "rmsnorm: unsupported device ", input.device());
  at::Tensor input32 = input.to(at::kFloat).contiguous();
  at::Tensor weight32 = weight.to(at::kFloat).contiguous();
  at::Tensor output32 = at::empty_like(input32);
  rmsnorm_forward_reference(input32.data_ptr<float>(), weight32.data_ptr<float>(),
                            output32.data_ptr<float>(), nullptr, rows, cols,
                            static_cast<float>(eps));
  output.copy_(output32);
}

at::Tensor rmsnorm_forward(const at::Tensor& input, const at::Tensor& weight, double eps) {
  at::Tensor output = at::empty_like(input, at::MemoryFormat::Contiguous);
  rmsnorm_forward_out(output, input, weight, eps);
  return output;
}

}  // namespace albion::kernels
