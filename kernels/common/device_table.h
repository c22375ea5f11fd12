// File: kernels/common/device_table.h
// A launch table the host built (the chunk lists of the multi-tensor kernels) in device memory
// from torch's caching allocator, copied from pinned memory on the current stream: no cudaMalloc
// per step, no host stall on the copy, and memory torch can free its cache for when the device is
// nearly full. The table is valid for work queued on the current stream.
#pragma once

#include <ATen/ATen.h>

#include <cstddef>
#include <vector>

namespace albion::kernels {

at::Tensor device_table(const std::vector<std::byte>& bytes, const at::Device& device);

}  // namespace albion::kernels
