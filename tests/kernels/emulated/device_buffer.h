// File: tests/kernels/emulated/device_buffer.h
// Memory for kernels run on the CPU emulator (kernels/emulation/), guarded like a GPU with
// compute-sanitizer: a kernel that steps past the end of a buffer faults at once.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <new>
#include <utility>

namespace albion::kernels::emulated {

// Emulated device memory: n elements whose end (rounded up to 16 bytes, so packs stay aligned)
// touches an inaccessible page, so a kernel that reads or writes past it faults at once, as
// compute-sanitizer would report it on a GPU.
template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t n) : size_(n) {
    const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    const std::size_t bytes = (n * sizeof(T) + 15) / 16 * 16;
    mapped_bytes_ = (bytes + page - 1) / page * page + page;
    void* memory = mmap(nullptr, mapped_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) throw std::bad_alloc();
    base_ = static_cast<char*>(memory);
    mprotect(base_ + mapped_bytes_ - page, page, PROT_NONE);
    data_ = reinterpret_cast<T*>(base_ + mapped_bytes_ - page - bytes);
  }
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : size_(other.size_), mapped_bytes_(other.mapped_bytes_), base_(std::exchange(other.base_, nullptr)),
        data_(other.data_) {}
  DeviceBuffer& operator=(DeviceBuffer&&) = delete;
  ~DeviceBuffer() {
    if (base_ != nullptr) munmap(base_, mapped_bytes_);
  }

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
  std::size_t mapped_bytes_;
  char* base_;
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
