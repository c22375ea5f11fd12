// File: tests/kernels/emulated/emulated_support.h
// Helpers for the tests that run our CUDA kernels on the CPU (kernels/emulation/): inputs drawn in
// fp32 and rounded to the kernel's dtype (in guarded buffers, device_buffer.h), outputs poisoned
// with NaN, errors against the CPU references, and the thread schedules every test runs under.
#pragma once

#include <cuda_bf16.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <ostream>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "kernels/common/dtype.h"
#include "kernels/emulation/schedule.h"
#include "tests/kernels/emulated/device_buffer.h"

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

// "bf16 3x8 offset 1": a [rows, cols] case in failure messages.
template <typename T>
std::string case_name(std::int64_t rows, std::int64_t cols, std::int64_t offset) {
  return dtype_name<T>() + " " + std::to_string(rows) + "x" + std::to_string(cols) + " offset " +
         std::to_string(offset);
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
