// File: kernels/common/resident_blocks.cuh
// How many blocks of a kernel one multiprocessor of the current device holds at once, for kernels
// that size their grid to the device (a block per row would be too many, or each block keeps sums
// across many rows), and the cache of such occupancy answers per device that other queries share.
#pragma once

#include <cuda_runtime_api.h>

#include <map>
#include <mutex>
#include <tuple>
#include <utility>

#include "kernels/common/cuda_check.h"

namespace albion::kernels {

// An occupancy answer about a kernel, `ask()`, for the current device and `key` (the kernel and
// its launch shape). Fixed for a build and an architecture, so asked once per device and key: GPUs
// of different architectures in one process each run their own compiled image of the kernel, with
// its own register count and per-multiprocessor limits. Each call site keeps its own answers. Not
// for the CPU emulator (no device).
template <typename Key, typename Ask>
int asked_once_per_device(const Key& key, Ask ask) {
  int device = 0;
  ALBION_CUDA_CHECK(cudaGetDevice(&device));
  static std::mutex mutex;
  static std::map<std::pair<int, Key>, int> asked;
  const std::lock_guard lock(mutex);
  const auto device_key = std::make_pair(device, key);
  if (const auto found = asked.find(device_key); found != asked.end()) return found->second;
  const int answer = ask();
  asked.emplace(device_key, answer);  // only once the answer is known: an error is asked again next time
  return answer;
}

// Blocks of `threads` threads of `kernel` one multiprocessor holds at once.
inline int resident_blocks(const void* kernel, int threads) {
  return asked_once_per_device(std::make_tuple(kernel, threads), [&] {
    int blocks = 0;
    ALBION_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, threads, 0));
    return blocks;
  });
}

}  // namespace albion::kernels
