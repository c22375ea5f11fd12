// File: runtime/train/host_copy.cpp
#include "runtime/train/host_copy.h"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

namespace albion::train {

HostCopy::HostCopy(const at::Tensor& values) {
  const at::Tensor flat = values.detach().reshape({-1}).to(at::kDouble);
  if (!flat.is_cuda()) {
    host_ = flat.clone();  // the values as they are now, as a CUDA copy holds them
    return;
  }
  const c10::cuda::CUDAGuard on_device(flat.device());
  host_ = at::empty(flat.sizes(), flat.options().device(at::kCPU).pinned_memory(true));
  host_.copy_(flat, /*non_blocking=*/true);
  copied_.emplace(cudaEventDisableTiming);
  copied_->record(c10::cuda::getCurrentCUDAStream(flat.device().index()));
}

std::vector<double> HostCopy::read() {
  if (copied_) copied_->synchronize();
  const double* values = host_.const_data_ptr<double>();
  return {values, values + host_.numel()};
}

}  // namespace albion::train
