// File: tests/kernels/emulated/device_buffer.h
// Memory for kernels run on the CPU emulator (kernels/emulation/), guarded like a GPU with
// compute-sanitizer: a kernel that steps past the end of a buffer faults at once.
#pragma once

#include <algorithm>
#include <cstddef>
#include <utility>

#include "tests/kernels/emulated/guarded_memory.h"

namespace albion::kernels::emulated {

// Emulated device memory: n elements ending at a guard page (guarded_memory.h).
template <typename T>
class DeviceBuffer {
 public:
  // The end rounded up to 16 bytes, so packs stay aligned.
  explicit DeviceBuffer(std::size_t n)
      : size_(n), memory_(map_guarded(n * sizeof(T), 16)), data_(reinterpret_cast<T*>(memory_.data)) {}
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : size_(other.size_), memory_(std::exchange(other.memory_, GuardedMemory{})), data_(other.data_) {}
  DeviceBuffer& operator=(DeviceBuffer&&) = delete;
  ~DeviceBuffer() { unmap_guarded(memory_); }

  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }
  T& operator[](std::size_t i) { return data_[i]; }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }

 private:
  std::size_t size_;
  GuardedMemory memory_;
  T* data_;
};

template <typename T>
DeviceBuffer<T> filled(std::size_t n, T value) {
  DeviceBuffer<T> buffer(n);
  for (T& v : buffer) v = value;
  return buffer;
}

template <typename T>
DeviceBuffer<T> copied(const DeviceBuffer<T>& source) {
  DeviceBuffer<T> buffer(source.size());
  std::copy(source.begin(), source.end(), buffer.begin());
  return buffer;
}

}  // namespace albion::kernels::emulated
