// File: runtime/models/safetensors_dtype.cpp
#include "runtime/models/safetensors_dtype.h"

#include <array>
#include <utility>

namespace albion::models {
namespace {

constexpr std::array<std::pair<at::ScalarType, std::string_view>, 10> kNames = {{
    {at::kFloat, "F32"},
    {at::kBFloat16, "BF16"},
    {at::kHalf, "F16"},
    {at::kDouble, "F64"},
    {at::kLong, "I64"},
    {at::kInt, "I32"},
    {at::kShort, "I16"},
    {at::kChar, "I8"},
    {at::kByte, "U8"},
    {at::kBool, "BOOL"},
}};

}  // namespace

std::optional<std::string_view> safetensors_dtype(at::ScalarType type) {
  for (const auto& [scalar, name] : kNames) {
    if (scalar == type) return name;
  }
  return std::nullopt;
}

std::optional<at::ScalarType> scalar_type_of(std::string_view safetensors_dtype) {
  for (const auto& [scalar, name] : kNames) {
    if (name == safetensors_dtype) return scalar;
  }
  return std::nullopt;
}

}  // namespace albion::models
