// File: kernels/grad_norm/grad_norm_torch.cpp
// Torch layer of the multi-tensor squared norm: checks every tensor, then two launches (CUDA) or
// the reference (CPU).

#include "kernels/common/device_table.h"
#include "kernels/common/kernel_device.h"
#include "kernels/common/tensor_checks.h"
#include "kernels/grad_norm/grad_norm.h"
#include "runtime/base/check.h"

namespace albion::kernels {

at::Tensor squared_norm(const std::vector<at::Tensor>& tensors) {
  const at::Device device = tensors.empty() ? at::Device(at::kCPU) : tensors.front().device();
  std::vector<NormTensor> views;
  for (const at::Tensor& t : tensors) {
    ALBION_CHECK_AS(UsageError, t.defined() && t.device() == device, "squared norm: every tensor must be on ",
                    device);
    check_contiguous(t, "squared norm input");
    views.push_back({t.data_ptr(), t.numel(), kernel_dtype(t, "squared norm input")});
  }
  if (runs_kernels(device)) {
    const KernelLaunch launch(device);
    const auto doubles = at::TensorOptions().dtype(at::kDouble).device(device);
    const std::vector<std::byte> chunks = squared_norm_chunk_table(views);
    if (chunks.empty()) return at::zeros({}, doubles);
    const at::Tensor table = device_table(chunks, device);
    at::Tensor partials = at::empty({squared_norm_chunks(chunks.size())}, doubles);
    at::Tensor out = at::empty({}, doubles);
    launch_squared_norm(table.data_ptr(), chunks.size(), partials.data_ptr<double>(), out.data_ptr<double>(),
                        launch.stream());
    return out;
  }
  ALBION_CHECK_AS(UsageError, device.is_cpu(), "squared norm: unsupported device ", device);
  return at::scalar_tensor(squared_norm_reference(views), at::kDouble);
}

}  // namespace albion::kernels
