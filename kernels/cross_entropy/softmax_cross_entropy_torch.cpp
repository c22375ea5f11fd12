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

namespace {

void check_rows(const at::Tensor& logits, const at::Tensor& targets, std::int64_t blocks) {
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
}

// The kernels' parameters for `logits` (on a kernel device), `dense_targets` and `out` (fp32 [rows]
// or undefined), for the grid `blocks` asks for (0: chosen as softmax_cross_entropy_.h says).
SoftmaxCrossEntropyParams kernel_params(const at::Tensor& logits, const at::Tensor& dense_targets,
                                        const at::Tensor& out, std::int64_t ignore_index, std::int64_t blocks,
                                        DType dtype) {
  SoftmaxCrossEntropyParams p;
  p.logits = logits.data_ptr();
  p.targets = dense_targets.data_ptr<std::int64_t>();
  p.losses = out.defined() ? out.data_ptr<float>() : nullptr;
  p.rows = logits.size(0);
  p.vocab = logits.size(1);
  p.ignore_index = ignore_index;
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
  return p;
}

}  // namespace

at::Tensor softmax_cross_entropy_(at::Tensor& logits, const at::Tensor& targets, std::int64_t ignore_index,
                                  bool write_gradient, std::int64_t blocks) {
  check_rows(logits, targets, blocks);
  const at::Tensor dense_targets = targets.contiguous();
  if (runs_kernels(logits)) {
    const DType dtype = kernel_dtype(logits, "cross-entropy logits");  // before anything is allocated
    const KernelLaunch launch(logits.device());
    at::Tensor losses = at::empty({logits.size(0)}, logits.options().dtype(at::kFloat));
    SoftmaxCrossEntropyParams p = kernel_params(logits, dense_targets, losses, ignore_index, blocks, dtype);
    p.write_gradient = write_gradient;
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

at::Tensor softmax_logsumexp(const at::Tensor& logits, const at::Tensor& targets, std::int64_t ignore_index,
                             std::int64_t blocks) {
  check_rows(logits, targets, blocks);
  const at::Tensor dense_targets = targets.contiguous();
  if (runs_kernels(logits)) {
    const DType dtype = kernel_dtype(logits, "cross-entropy logits");
    const KernelLaunch launch(logits.device());
    at::Tensor lse = at::empty({logits.size(0)}, logits.options().dtype(at::kFloat));
    SoftmaxCrossEntropyParams p = kernel_params(logits, dense_targets, lse, ignore_index, blocks, dtype);
    p.write_gradient = false;
    p.write_lse = true;
    launch_softmax_cross_entropy(p, launch.stream());
    return lse;
  }
  ALBION_CHECK_AS(UsageError, logits.is_cpu(), "cross-entropy: unsupported device ", logits.device());
  at::Tensor lse;
  with_reference_type(logits, [&](auto tag) {
    using T = decltype(tag);
    const at::Tensor work = logits.to(c10::CppTypeToScalarType<T>::value);
    lse = at::empty({logits.size(0)}, work.options());
    softmax_logsumexp_reference<T>(work.data_ptr<T>(), dense_targets.data_ptr<std::int64_t>(), lse.data_ptr<T>(),
                                   logits.size(0), logits.size(1), ignore_index);
  });
  return lse;
}

void softmax_gradient_(at::Tensor& logits, const at::Tensor& targets, const at::Tensor& lse) {
  check_rows(logits, targets, 0);
  ALBION_CHECK_AS(UsageError, lse.dim() == 1 && lse.size(0) == logits.size(0) && lse.device() == logits.device(),
                  "cross-entropy: logsumexps ", lse.sizes(), " on ", lse.device(), " must be [", logits.size(0),
                  "] on ", logits.device());
  if (logits.size(0) == 0) return;
  const at::Tensor dense_targets = targets.contiguous();
  if (runs_kernels(logits)) {
    const DType dtype = kernel_dtype(logits, "cross-entropy logits");
    const at::Tensor dense_lse = lse.to(at::kFloat).contiguous();
    const KernelLaunch launch(logits.device());
    SoftmaxCrossEntropyParams p = kernel_params(logits, dense_targets, at::Tensor(), -1, logits.size(0), dtype);
    p.lse = dense_lse.data_ptr<float>();  // a block per row: no statistics to gather, only the row to rewrite
    launch_softmax_cross_entropy(p, launch.stream());
    mark_written_in_place(logits);
    return;
  }
  ALBION_CHECK_AS(UsageError, logits.is_cpu(), "cross-entropy: unsupported device ", logits.device());
  with_reference_type(logits, [&](auto tag) {
    using T = decltype(tag);
    constexpr at::ScalarType kType = c10::CppTypeToScalarType<T>::value;
    at::Tensor work = logits.scalar_type() == kType ? logits : logits.to(at::kFloat);
    const at::Tensor typed_lse = lse.to(kType).contiguous();
    softmax_gradient_reference<T>(work.data_ptr<T>(), dense_targets.data_ptr<std::int64_t>(), typed_lse.data_ptr<T>(),
                                  logits.size(0), logits.size(1));
    if (work.is_same(logits)) {
      mark_written_in_place(logits);
    } else {
      logits.copy_(work);
    }
  });
}

}  // namespace albion::kernels
