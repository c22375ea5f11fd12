// File: checkpoint/format/checkpoint_paths.cpp
#include "checkpoint/format/checkpoint_paths.h"

#include <charconv>
#include <cstdio>

namespace albion::checkpoint {

std::string step_directory_name(std::int64_t step) {
  char name[32];
  std::snprintf(name, sizeof(name), "step-%08lld", static_cast<long long>(step));
  return name;
}

std::string shard_file_name(std::uint32_t index) {
  char name[32];
  std::snprintf(name, sizeof(name), "shard-%05u.h5", index);
  return name;
}

std::optional<std::int64_t> parse_step_directory_name(std::string_view name) {
  constexpr std::string_view prefix = "step-";
  if (name.size() < prefix.size() + 8 || name.substr(0, prefix.size()) != prefix) return std::nullopt;
  std::string_view digits = name.substr(prefix.size());
  std::int64_t step = -1;
  auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), step);
  if (error != std::errc() || end != digits.data() + digits.size() || step < 0) return std::nullopt;
  // Only the canonical spelling: "step-1000" or "step-000001000" would be a second name for one step.
  if (step_directory_name(step) != name) return std::nullopt;
  return step;
}

}  // namespace albion::checkpoint
