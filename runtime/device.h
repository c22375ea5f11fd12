// File: runtime/device.h
// What compute this process can use: the torch build, the CUDA driver and runtime, and each CUDA
// device. Probing never throws for a missing GPU or driver: "no device" is a normal answer on a
// CPU machine; the reason is kept for `albion doctor`.
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <string>
#include <vector>

namespace albion::runtime {

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  int compute_major = 0;
  int compute_minor = 0;
  std::int64_t total_memory_bytes = 0;
  int multiprocessors = 0;
};

struct ComputeReport {
  std::string torch_version;       // e.g. "2.11.0"
  std::string torch_cuda_build;    // CUDA runtime version torch was built with, e.g. "13.0"
  bool torch_has_cuda = false;     // libtorch_cuda is loaded and registered
  std::string cudnn_runtime;       // cuDNN version loaded at run time, e.g. "9.19.0"; "" if none
  std::string cuda_driver;         // e.g. "13.0", or "" when no driver is installed
  std::string cuda_runtime;        // version of the loaded libcudart
  std::vector<CudaDeviceInfo> devices;
  std::string no_device_reason;    // why `devices` is empty, if it is
};

ComputeReport probe_compute();

// The device to train on for recipe key run.device (auto, cpu, cuda): CUDA device local_rank
// modulo the device count, or the CPU. UsageError naming `setting` for another value, or for
// cuda on a machine without one.
c10::Device choose_device(const std::string& requested, int local_rank,
                          const std::string& setting = "recipe key 'run.device'");

// "13.0" from CUDA's integer encoding 13000.
std::string cuda_version_string(int encoded);

}  // namespace albion::runtime
