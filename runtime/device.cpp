// File: runtime/device.cpp
#include "runtime/device.h"

#include <ATen/Context.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <cuda_runtime_api.h>
#include <torch/headeronly/version.h>

#include "runtime/base/check.h"

namespace albion::runtime {

std::string cuda_version_string(int encoded) {
  return str_cat(encoded / 1000, ".", (encoded % 1000) / 10);
}

namespace {

std::string cudnn_version_string(long encoded) {
  // cuDNN 9 encodes major*10000 + minor*100 + patch.
  return str_cat(encoded / 10000, ".", (encoded % 10000) / 100, ".", encoded % 100);
}

}  // namespace

ComputeReport probe_compute() {
  ComputeReport report;
  report.torch_version = TORCH_VERSION;
  const at::CUDAHooksInterface& hooks = at::detail::getCUDAHooks();
  report.torch_has_cuda = hooks.hasCUDART();
  if (report.torch_has_cuda) {
    report.torch_cuda_build = cuda_version_string(static_cast<int>(hooks.versionCUDART()));
    try {
      report.cudnn_runtime = cudnn_version_string(hooks.versionRuntimeCuDNN());
    } catch (const std::exception&) {
      report.cudnn_runtime.clear();  // torch built without cuDNN
    }
  }

  int runtime_version = 0;
  if (cudaRuntimeGetVersion(&runtime_version) == cudaSuccess) {
    report.cuda_runtime = cuda_version_string(runtime_version);
  }
  int driver_version = 0;
  if (cudaDriverGetVersion(&driver_version) == cudaSuccess && driver_version > 0) {
    report.cuda_driver = cuda_version_string(driver_version);
  }

  if (report.cuda_driver.empty()) {
    report.no_device_reason = "no NVIDIA driver found";
    return report;
  }
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    report.no_device_reason = cudaGetErrorString(status);
    cudaGetLastError();  // clear the error so later CUDA calls do not inherit it
    return report;
  }
  if (count == 0) report.no_device_reason = "no CUDA device visible";
  for (int index = 0; index < count; ++index) {
    cudaDeviceProp properties{};
    if (cudaGetDeviceProperties(&properties, index) != cudaSuccess) continue;
    CudaDeviceInfo device;
    device.index = index;
    device.name = properties.name;
    device.compute_major = properties.major;
    device.compute_minor = properties.minor;
    device.total_memory_bytes = static_cast<std::int64_t>(properties.totalGlobalMem);
    device.multiprocessors = properties.multiProcessorCount;
    report.devices.push_back(device);
  }
  return report;
}

c10::Device choose_device(const std::string& requested, int local_rank, const std::string& setting) {
  ALBION_CHECK_AS(UsageError, requested == "auto" || requested == "cpu" || requested == "cuda", setting,
                  " must be auto, cpu or cuda, got '", requested, "'");
  const int gpus = static_cast<int>(probe_compute().devices.size());
  if (requested == "cpu" || (requested == "auto" && gpus == 0)) return c10::kCPU;
  ALBION_CHECK_AS(UsageError, gpus > 0, setting, " is cuda but this machine has no CUDA device");
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(local_rank % gpus));
}

}  // namespace albion::runtime
