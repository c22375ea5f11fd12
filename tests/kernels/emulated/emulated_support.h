// File: tests/kernels/emulated/emulated_support.h
// Helpers for the tests that run our CUDA kernels on the CPU (kernels/emulation/): buffers with a
// guard page after their end, inputs drawn in fp32 and rounded to the kernel's dtype, outputs
// poisoned with NaN, errors against the CPU references, and the thread schedules every test runs
// under.
#pragma once

#include <cuda_bf16.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <new>
#include <ostream>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "kernels/common/dtype.h"
#include "kernels/emulation/schedule.h"

namespace albion::kernels::emulated {

inline float widen(float value) { return value; }
inline float widen(__nv_bfloat16 value) { return __bfloat162float(value); }

template <typename T>
T narrow(float value) {
  if constexpr (std::is_same_v<T, float>) {
    return value;
  } else {
    return __float2bfloat16_rn(value);
  }
}

template <typename T>
constexpr DType dtype_of() {
  return std::is_same_v<T, float> ? DType::kFloat32 : DType::kBFloat16;
}

// The GPU tests' bounds: 1e-5 relative for fp32 outputs, 1e-2 for bf16.
template <typename T>
constexpr double tolerance() {
  return std::is_same_v<T, float> ? 1e-5 : 1e-2;
}

template <typename T>
std::string dtype_name() {
  return std::is_same_v<T, float> ? "fp32" : "bf16";
}

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

// n values from a normal distribution with standard deviation `scale`, in T.
template <typename T>
DeviceBuffer<T> random_values(std::size_t n, std::uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 generator(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  DeviceBuffer<T> values(n);
  for (T& v : values) v = narrow<T>(normal(generator));
  return values;
}

template <typename T>
DeviceBuffer<T> poisoned(std::size_t n) {
  return filled(n, narrow<T>(std::numeric_limits<float>::quiet_NaN()));
}

template <typename T>
std::vector<float> widened(const T* values, std::size_t n) {
  std::vector<float> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = widen(values[i]);
  return out;
}

template <typename T>
std::vector<float> widened(const DeviceBuffer<T>& values) {
  return widened(values.data(), values.size());
}

// The largest element-wise |a - e| / (|e| + 1e-6), as tests/kernels/relative_error.h; a NaN (a
// poisoned element the kernel never wrote) or a length mismatch counts as infinitely wrong.
inline double max_relative_error(std::span<const float> actual, std::span<const float> expected) {
  if (actual.size() != expected.size()) return std::numeric_limits<double>::infinity();
  double worst = 0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double error = std::abs(double{actual[i]} - expected[i]) / (std::abs(double{expected[i]}) + 1e-6);
    if (std::isnan(error)) return std::numeric_limits<double>::infinity();
    worst = std::max(worst, error);
  }
  return worst;
}

// The largest |a - e| over the largest |e|: for outputs whose terms cancel to near zero.
inline double max_error_relative_to_scale(std::span<const float> actual, std::span<const float> expected) {
  if (actual.size() != expected.size()) return std::numeric_limits<double>::infinity();
  double worst = 0, scale = 1e-300;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double error = std::abs(double{actual[i]} - expected[i]);
    if (std::isnan(error)) return std::numeric_limits<double>::infinity();
    worst = std::max(worst, error);
    scale = std::max(scale, std::abs(double{expected[i]}));
  }
  return worst / scale;
}

}  // namespace albion::kernels::emulated

namespace albion::emulation {
// Names the schedule in gtest's messages (found by argument-dependent lookup).
inline void PrintTo(Schedule schedule, std::ostream* out) {
  *out << (schedule == Schedule::kForward ? "forward" : schedule == Schedule::kReverse ? "reverse" : "shuffled");
}
}  // namespace albion::emulation

namespace albion::kernels::emulated {

// Every kernel test runs under each schedule; the shuffled one with a fixed seed, so a failure
// reproduces.
class EmulatedKernel : public testing::TestWithParam<emulation::Schedule> {
 protected:
  void SetUp() override { emulation::set_schedule(GetParam(), /*seed=*/20261202); }
  void TearDown() override { emulation::set_schedule(emulation::Schedule::kForward); }
};

inline std::string schedule_name(const testing::TestParamInfo<emulation::Schedule>& info) {
  switch (info.param) {
    case emulation::Schedule::kForward: return "Forward";
    case emulation::Schedule::kReverse: return "Reverse";
    case emulation::Schedule::kShuffled: return "Shuffled";
  }
  return "Unknown";
}

#define ALBION_EMULATED_SCHEDULES(suite)                                                                   \
  INSTANTIATE_TEST_SUITE_P(Schedules, suite,                                                              \
                           testing::Values(::albion::emulation::Schedule::kForward,                       \
                                           ::albion::emulation::Schedule::kReverse,                       \
                                           ::albion::emulation::Schedule::kShuffled),                     \
                           ::albion::kernels::emulated::schedule_name)

}  // namespace albion::kernels::emulated
