// File: kernels/cross_entropy/softmax_cross_entropy_torch.cpp
// Torch layer of the softmax cross-entropy: boundary checks, then the CUDA launcher or the CPU
// reference.

#include <ATen/cuda/CUDAContext.h>

#include "kernels/common/cpu_dispatch.h"
#include "kernels/common/kernel_device.h"
#include "kernels/common/tensor_checks.h"
#include "kernels/cross_entropy/softmax_cross_entropy.cuh"
#include "kernels/cross_entropy/softmax_cross_entropy.h"
#include "runtime/base/check.h"

namespace albion::kernels {

at::Tensor softmax_cross_entropy_(at::Tensor& logits, const at::Tensor& targets, std::int64_t ignore_index,
                                  bool write_gradient, std::int64_t blocks) {
  ALBION_CHECK_AS(UsageError, blocks >= 0, "cross-entropy: blocks must not be negative, got ", blocks);
  ALBION_CHECK_AS(UsageError, logits.dim() == 2 && logits.size(1) > 0, "cross-entropy: logits ", logits.sizes(),
                  " must be [rows, vocab] with a non-empty vocabulary");
  ALBION_CHECK_AS(UsageError, targets.dim() == 1 && targets.size(0) == logits.size(0) &&
                                  targets.scalar_type() == at::kLong,
                  "cross-entropy: targets ", targets.sizes(), " ", targets.scalar_type(), " must be [",
                  logits.size(0), "] int64");
  ALBION_CHECK_AS(UsageError, targets.device() == logits.device(), "cross-entropy: targets are on ",
                  targets.device(), " but logits on ", logits.device());
  check_contiguous(logits, "cross-entropy logits");
  const at::Tensor dense_targets = targets.contiguous();
  if (runs_kernels(logits)) {
    const DType dtype = kernel_dtype(logits, "cross-entropy logits");  // before anything is allocated
    const KernelLaunch launch(logits.device());
    at::Tensor losses = at::empty({logits.size(0)}, logits.options().dtype(at::kFloat));
    SoftmaxCrossEntropyParams p;
    p.logits = logits.data_ptr();
    p.targets = dense_targets.data_ptr<std::int64_t>();
    p.losses = losses.data_ptr<float>();
    p.rows = logits.size(0);
    p.vocab = logits.size(1);
    p.ignore_index = ignore_index;
    p.write_gradient = write_gradient;
    p.dtype = dtype;
    p.blocks = blocks;
    const int cluster = blocks == 0 ? softmax_cross_entropy_cluster(p.vocab) : 0;
    if (cluster > 0 && (!logits.is_cuda() || softmax_cross_entropy_clusters_fit(dtype, cluster))) {
      p.cluster = cluster;  // Note [A row held in a cluster's registers]
    } else if (blocks == 0 && logits.is_cuda()) {
      const cudaDeviceProp* device = at::cuda::getCurrentDeviceProperties();
      p.blocks = softmax_cross_entropy_blocks(p.rows, p.vocab * static_cast<std::int64_t>(logits.element_size()),
                                              device->multiProcessorCount,
                                              softmax_cross_entropy_resident_blocks(dtype), device->l2CacheSize);
    }
    launch_softmax_cross_entropy(p, launch.stream());
    if (write_gradient) mark_written_in_place(logits);
    return losses;
  }
  ALBION_CHECK_AS(UsageError, logits.is_cpu(), "cross-entropy: unsupported device ", logits.device());
  at::Tensor losses;
  with_reference_type(logits, [&](auto tag) {
    using T = decltype(tag);
    // bf16 runs on an fp32 copy whose gradient is rounded back.
    at::Tensor work = logits.scalar_type() == c10::CppTypeToScalarType<T>::value ? logits : logits.to(at::kFloat);
    losses = at::empty({logits.size(0)}, work.options());
    softmax_cross_entropy_reference<T>(work.data_ptr<T>(), dense_targets.data_ptr<std::int64_t>(),
                                       losses.data_ptr<T>(), logits.size(0), logits.size(1), ignore_index,
                                       write_gradient);
    if (write_gradient && !work.is_same(logits)) logits.copy_(work);
    if (write_gradient && work.is_same(logits)) mark_written_in_place(logits);
  });
  return losses;
}

}  // namespace albion::kernels
