// File: kernels/common/kernel_device.cpp
#include "kernels/common/kernel_device.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAStream.h>

#include <atomic>

namespace albion::kernels {

#ifdef ALBION_KERNELS_ON_CPU_EMULATOR
namespace {
std::atomic<int> emulator_scopes{0};
}  // namespace

KernelsOnCpuEmulator::KernelsOnCpuEmulator() { ++emulator_scopes; }
KernelsOnCpuEmulator::~KernelsOnCpuEmulator() { --emulator_scopes; }

bool runs_kernels(const at::Device& device) {
  return device.is_cuda() || (device.is_cpu() && emulator_scopes.load() > 0);
}
#endif

int multiprocessor_count(const at::Device& device) {
  return device.is_cuda() ? at::cuda::getDeviceProperties(device.index())->multiProcessorCount : 0;
}

KernelLaunch::KernelLaunch(const at::Device& device) {
  if (!device.is_cuda()) return;  // emulated: launches run to completion on the calling thread
  guard_.emplace(device);
  stream_ = c10::cuda::getCurrentCUDAStream().stream();
}

}  // namespace albion::kernels
