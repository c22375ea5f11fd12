// File: runtime/train/device_peak.cpp
#include "runtime/train/device_peak.h"

#include <utility>
#include <vector>

namespace albion::train {

std::optional<double> peak_bf16_flops(const std::string& device_name) {
  // Most specific names first: "H100 PCIe" before "H100".
  static const std::vector<std::pair<std::string, double>> kPeaks = {
      {"GB300", 2.5e15},    {"B300", 2.25e15},      {"GB200", 2.5e15},     {"B200", 2.25e15},
      {"GH200", 989e12},    {"H200 NVL", 835e12},   {"H200", 989e12},      {"H100 PCIe", 756e12},
      {"H100 NVL", 835e12}, {"H100", 989e12},       {"A100", 312e12},      {"L40S", 362e12},
      {"A10G", 70e12},
  };
  for (const auto& [name, peak] : kPeaks) {
    if (device_name.find(name) != std::string::npos) return peak;
  }
  return std::nullopt;
}

}  // namespace albion::train
