// File: runtime/models/safetensors_dtype.h
// torch's scalar types under their safetensors names ("F32", "BF16", "I64", ...), the spelling of
// Hugging Face weight files and of Albion's checkpoint shards alike: one table, read both ways.
#pragma once

#include <ATen/core/ScalarType.h>

#include <optional>
#include <string_view>

namespace albion::models {

// nullopt for a type safetensors has no name for here (complex, quantised, ...).
std::optional<std::string_view> safetensors_dtype(at::ScalarType type);
// nullopt for a name not in the table.
std::optional<at::ScalarType> scalar_type_of(std::string_view safetensors_dtype);

}  // namespace albion::models
