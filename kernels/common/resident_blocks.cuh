// File: kernels/common/resident_blocks.cuh
// How many blocks of a kernel one multiprocessor of the current device holds at once, for kernels
// that size their grid to the device (a block per row would be too many, or each block keeps sums
// across many rows).
#pragma once

#include <cuda_runtime_api.h>

#include <map>
#include <mutex>
#include <tuple>

#include "kernels/common/cuda_check.h"

namespace albion::kernels {

// Fixed for a build and an architecture, so asked once per device, kernel and block size: GPUs of
// different architectures in one process each run their own compiled image of the kernel, with
// its own register count and per-multiprocessor limits. Not for the CPU emulator (no device).
inline int resident_blocks(const void* kernel, int threads) {
  int device = 0;
  ALBION_CUDA_CHECK(cudaGetDevice(&device));
  static std::mutex mutex;
  static std::map<std::tuple<int, const void*, int>, int> asked;
  const std::lock_guard lock(mutex);
  const auto key = std::make_tuple(device, kernel, threads);
  if (const auto found = asked.find(key); found != asked.end()) return found->second;
  int blocks = 0;
  ALBION_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, threads, 0));
  asked.emplace(key, blocks);  // only once the answer is known: an error is asked again next time
  return blocks;
}

}  // namespace albion::kernels
