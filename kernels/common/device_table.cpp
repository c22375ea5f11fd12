// File: kernels/common/device_table.cpp
#include "kernels/common/device_table.h"

#include <cstring>

namespace albion::kernels {

at::Tensor device_table(const std::vector<std::byte>& bytes, const at::Device& device) {
  const auto size = static_cast<std::int64_t>(bytes.size());
  // Pinned only for a GPU (pinning needs one); the emulated CPU launches read the host table.
  at::Tensor host = at::empty({size}, at::TensorOptions().dtype(at::kByte).pinned_memory(device.is_cuda()));
  std::memcpy(host.data_ptr(), bytes.data(), bytes.size());
  at::Tensor table = at::empty({size}, at::TensorOptions().dtype(at::kByte).device(device));
  // Asynchronous from pinned memory; torch's host allocator keeps `host` until the copy is done.
  table.copy_(host, /*non_blocking=*/true);
  return table;
}

}  // namespace albion::kernels
