// File: kernels/common/kernel_device.h
// Which tensors the torch layers hand to the CUDA kernels, and the device and stream to launch on.
//
// CUDA tensors run the kernels; CPU tensors run the references. The one exception is the emulated
// build of the torch layers (ALBION_KERNELS_ON_CPU_EMULATOR, tests only, kernels/emulation/):
// there, while a KernelsOnCpuEmulator scope is alive, CPU tensors run the kernels too, their own
// CUDA code on the CPU emulator of CUDA threads. That is how the layers' CUDA branches (params,
// scratch sizes, launch order, autograd wiring) and the gpu-labelled tests run without a GPU.
#pragma once

#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>

#include <optional>

namespace albion::kernels {

#ifdef ALBION_KERNELS_ON_CPU_EMULATOR
bool runs_kernels(const at::Device& device);

// While one is alive (in any thread: autograd may run backward on its own), CPU tensors run the
// kernels on the emulator.
class KernelsOnCpuEmulator {
 public:
  KernelsOnCpuEmulator();
  ~KernelsOnCpuEmulator();
  KernelsOnCpuEmulator(const KernelsOnCpuEmulator&) = delete;
  KernelsOnCpuEmulator& operator=(const KernelsOnCpuEmulator&) = delete;
};
#else
inline bool runs_kernels(const at::Device& device) { return device.is_cuda(); }
#endif

inline bool runs_kernels(const at::Tensor& tensor) { return runs_kernels(tensor.device()); }

// The device's multiprocessors, for kernels that size their grid to it; 0 for emulated CPU tensors.
int multiprocessor_count(const at::Device& device);

// For the lifetime of a launch: makes `device` the current CUDA device and names its current
// stream, which torch's caching allocator orders the layer's temporaries on. For emulated CPU
// tensors: the emulator's (synchronous) default stream.
class KernelLaunch {
 public:
  explicit KernelLaunch(const at::Device& device);
  cudaStream_t stream() const { return stream_; }

 private:
  std::optional<c10::cuda::CUDAGuard> guard_;
  cudaStream_t stream_ = nullptr;
};

}  // namespace albion::kernels
