// File: kernels/adamw/fused_adamw.cuh
// AdamW over many fp32 tensors in one launch (the optimizer step of a whole model, instead of ~6
// element-wise kernels per parameter tensor). Per element, in the order optim::AdamW uses:
//   g = g scale                                     (when a gradient scale is given: clipping)
//   m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2
//   p = p (1 - lr wd)                               (decayed tensors only)
//   p = p - lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps)
//   bf16_copy = bf16(p), rounded to nearest even  (where a tensor asks for one: the low-precision
//                                                   copy of an fp32 master weight, in the same pass)
// The host lists each tensor's pointers; the kernel walks fixed-size chunks of all of them.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace albion::kernels {

struct AdamWTensor {
  float* parameter = nullptr;
  const float* gradient = nullptr;
  float* exp_avg = nullptr;
  float* exp_avg_sq = nullptr;
  std::uint16_t* bf16_copy = nullptr;  // bf16 bits; nullptr: no copy
  std::int64_t numel = 0;
  bool decayed = true;
};

struct AdamWHyper {
  float lr = 0;
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0;
  float bias_correction1 = 1;  // 1 - beta1^t
  float bias_correction2 = 1;  // 1 - beta2^t
  // Optional: one float in the launch's memory (device for the kernel, host for the reference)
  // every gradient is multiplied by: a clip factor computed on the device, read there without the
  // host waiting for it. nullptr: 1.
  const float* gradient_scale = nullptr;
};

// The launch's chunk table, built on the host (empty when there is nothing to update); the torch
// layer copies it to device memory (kernels/common/device_table.h).
std::vector<std::byte> fused_adamw_chunk_table(const std::vector<AdamWTensor>& tensors);

// All pointers, the table included, on the current device; `stream` orders the launch.
void launch_fused_adamw(const void* device_table, std::size_t table_bytes, const AdamWHyper& hyper,
                        cudaStream_t stream);

// CPU reference: the same arithmetic, element by element.
void fused_adamw_reference(const std::vector<AdamWTensor>& tensors, const AdamWHyper& hyper);

}  // namespace albion::kernels
