// File: tests/kernels/kernel_device.h
// Where the gpu-labelled kernel suites (names ending in "Cuda") run the kernels.
//
// In the normal build: on the GPU, and they skip on a machine without one. In the emulated build
// (kernels_on_emulator_test, ALBION_KERNELS_ON_CPU_EMULATOR): on CPU tensors, each kernel call
// made inside an OnKernelDevice scope running the CUDA kernels' own code on the CPU emulator. So
// these suites, and the torch layers' CUDA branches they call, run on every machine; the GPU runs
// keep the last word on what the emulator does not model (timing, the memory model, fast math).
//
//   at::Tensor x = to_kernel_device(host_x);
//   { const OnKernelDevice on_device; y = rmsnorm_forward(x, w, eps); }  // the CUDA kernel
//   expected = rmsnorm_forward(host_x, host_w, eps);                      // the CPU reference
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

#include "kernels/common/kernel_device.h"
#include "tests/support/cuda_available.h"
#ifdef ALBION_KERNELS_ON_CPU_EMULATOR
#include "kernels/emulation/launch_counts.h"
#endif

namespace albion::kernels {

#ifdef ALBION_KERNELS_ON_CPU_EMULATOR
#define ALBION_SKIP_WITHOUT_KERNEL_DEVICE() \
  do {                                      \
  } while (false)
using OnKernelDevice = KernelsOnCpuEmulator;
inline at::Device kernel_device() { return at::Device(at::kCPU); }
// A copy, never the same tensor, as a GPU copy would be.
inline at::Tensor to_kernel_device(const at::Tensor& tensor) { return tensor.clone(); }
// Every CPU allocation of this test is already poisoned and guarded
// (tests/kernels/emulated/guarded_cpu_allocator.cpp).
inline void poison_kernel_allocator(std::int64_t /*bytes*/) {}
// Grids of `kernel` run so far ("rmsnorm_forward_kernel"): a fused path that silently fell back
// to torch's ops launches none. Unknown (nullopt) on a GPU.
inline std::optional<std::int64_t> kernel_launches(std::string_view kernel) { return emulation::launches(kernel); }
#else
#define ALBION_SKIP_WITHOUT_KERNEL_DEVICE() ALBION_SKIP_WITHOUT_CUDA()
struct [[maybe_unused]] OnKernelDevice {};  // CUDA tensors always run the kernels
inline at::Device kernel_device() { return at::Device(at::kCUDA, 0); }
inline at::Tensor to_kernel_device(const at::Tensor& tensor) { return tensor.to(kernel_device()); }
// Outputs a kernel allocates internally and forgets to write must not pass by luck: fill `bytes`
// of fresh CUDA memory with NaN and free it, and the caching allocator hands that block to the
// next allocations of similar size on this stream.
inline void poison_kernel_allocator(std::int64_t bytes) {
  at::full({std::max<std::int64_t>(bytes / 4, 1)}, std::numeric_limits<float>::quiet_NaN(),
           at::TensorOptions().device(kernel_device()));
}
inline std::optional<std::int64_t> kernel_launches(std::string_view /*kernel*/) { return std::nullopt; }
#endif

}  // namespace albion::kernels
